package devenv

import (
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/policy"
)

func TestDevPolicyValidates(t *testing.T) {
	// As root, kaginashi dev lets the dev user in as root: the one
	// finding allowed, and only then.
	for _, u := range []string{"alice", "root"} {
		doc, err := devPolicy(Info{Region: "us-east-1", AccountID: "123456789012", InstanceID: "i-0123456789abcdef0", OSUser: u, SSHPort: 2222})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range policy.Validate([]byte(doc), policy.ValidateOptions{}) {
			if (f.Type == policy.FindingError || f.Type == policy.FindingSecurityWarning) && !(u == "root" && f.Code == "EIC_ROOT_LOGIN") {
				t.Errorf("the dev policy for %s: %s %s: %s", u, f.Type, f.Code, f.Message)
			}
		}
	}
	doc, _ := devPolicy(Info{Region: "us-east-1", AccountID: "123456789012", InstanceID: "i-0123456789abcdef0", OSUser: "root", SSHPort: 2222})
	for _, want := range []string{`"ec2:osuser": "root"`, `"ec2-instance-connect:remotePort": "2222"`, `instance/i-0123456789abcdef0"`, `user/dev"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("the dev policy lacks %s:\n%s", want, doc)
		}
	}
}

func TestSSHDConfig(t *testing.T) {
	cfg := sshdConfig("/var/lib/kd", 2222, sshdPlan{command: []string{"/usr/bin/env", "/opt/kaginashi-agent", "authorized-keys"}, user: "alice", version: [2]int{9, 8}})
	for _, want := range []string{
		"\nPort 2222\n", "\nListenAddress 127.0.0.1\n", "\nAuthorizedKeysFile none\n", "\nPasswordAuthentication no\n",
		"\nAuthorizedKeysCommand /usr/bin/env /opt/kaginashi-agent authorized-keys --data-dir /var/lib/kd/agent %u %f\n",
		"\nAuthorizedKeysCommandUser alice\n", "\nHostKey /var/lib/kd/sshd/ssh_host_ed25519_key\n", "\nPerSourcePenalties no\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("sshd_config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(sshdConfig("/d", 1, sshdPlan{command: []string{"/a"}, user: "u", version: [2]int{9, 2}}), "PerSourcePenalties") {
		t.Error("PerSourcePenalties for an sshd older than 9.8, which would refuse it")
	}
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		pw, err := newPassword(20)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 20 || seen[pw] || !strings.ContainsAny(pw, "0123456789") || !strings.ContainsAny(pw, "-_.+=@") ||
			strings.ToLower(pw) == pw || strings.ToUpper(pw) == pw {
			t.Fatalf("password %q: want 20 characters of every kind, all different", pw)
		}
		seen[pw] = true
	}
}

func TestPathSafe(t *testing.T) {
	for p, want := range map[string]bool{"/work/main/.kaginashi-dev": true, "/home/a b/kd": false, "/tmp/x%u": false, "/tmp/#x": false} {
		if pathSafe.MatchString(p) != want {
			t.Errorf("pathSafe(%q) = %v", p, !want)
		}
	}
}

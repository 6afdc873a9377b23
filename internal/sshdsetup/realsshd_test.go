package sshdsetup

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// requireSSHD returns the real sshd. A machine without it fails the test
// (scripts/deps.sh test installs it); KAGINASHI_SKIP_SSHD=1 skips.
func requireSSHD(t *testing.T) (sshd, keygen string) {
	t.Helper()
	if os.Getenv("KAGINASHI_SKIP_SSHD") == "1" {
		t.Skip("KAGINASHI_SKIP_SSHD=1: not testing against the real sshd")
	}
	sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		p, err := exec.LookPath("sshd")
		if err != nil {
			t.Fatal("OpenSSH's sshd is not installed (no /usr/sbin/sshd, none on PATH): run scripts/deps.sh test " +
				"(or apt-get install openssh-server), or set KAGINASHI_SKIP_SSHD=1 to skip the tests with the real sshd")
		}
		sshd = p
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatal("ssh-keygen is not installed: run scripts/deps.sh test (or apt-get install openssh-client), or set KAGINASHI_SKIP_SSHD=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("the real-sshd tests run as root (sshd -t needs its privilege separation directory and root-owned paths)")
	}
	// sshd -t refuses to run without its privilege separation directory,
	// which systemd creates only when the service starts.
	if _, err := os.Stat("/run/sshd"); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshd -t needs /run/sshd: %v", err)
		}
	}
	return sshd, keygen
}

// realTree copies a fixture to DIR/etc/ssh, pointing its Includes of
// /etc/ssh/... at the copy, so sshd reads nothing of this machine's /etc/ssh.
func realTree(t *testing.T, fixture string) (etc string) {
	t.Helper()
	etc = filepath.Join(t.TempDir(), "etc", "ssh")
	rewrite := func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte("Include /etc/ssh/"), []byte("Include "+etc+"/"))
	}
	src := filepath.Join(fixtures, fixture)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "sshd_config"), rewrite(readFile(t, filepath.Join(src, "sshd_config"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(src, "sshd_config.d")); err == nil {
		os.Mkdir(filepath.Join(etc, "sshd_config.d"), 0o755)
		for _, e := range ents {
			b := rewrite(readFile(t, filepath.Join(src, "sshd_config.d", e.Name())))
			if err := os.WriteFile(filepath.Join(etc, "sshd_config.d", e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return etc
}

// TestRealSSHD sets up, checks with `sshd -T` (the effective configuration
// as sshd itself computes it) and removes on every fixture, validating with
// the real `sshd -t`.
func TestRealSSHD(t *testing.T) {
	sshd, keygen := requireSSHD(t)
	hostKey := filepath.Join(t.TempDir(), "host_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	effective := func(t *testing.T, cfg string) string {
		t.Helper()
		out, err := exec.Command(sshd, "-T", "-f", cfg, "-h", hostKey).CombinedOutput()
		if err != nil {
			t.Fatalf("sshd -T: %v: %s", err, out)
		}
		return string(out)
	}
	opts := func(etc string) Options {
		return Options{
			ConfigPath:  filepath.Join(etc, "sshd_config"),
			CommandPath: "/usr/bin/true", // root-owned all the way up, as sshd wants
			CommandArgs: []string{"authorized-keys", "--data-dir", "/var/lib/kaginashi-agent"},
			User:        "kaginashi-test",
			StateDir:    filepath.Join(filepath.Dir(filepath.Dir(etc)), "state"),
			SSHD:        sshd,
			SSHDArgs:    []string{"-h", hostKey},
			Reload:      func(context.Context) error { return nil },
			CreateUser:  func(context.Context, string) error { return nil },
			SystemdDirs: []string{filepath.Join(filepath.Dir(filepath.Dir(etc)), "systemd")},
		}
	}
	const wantAKC = "authorizedkeyscommand /usr/bin/true authorized-keys --data-dir /var/lib/kaginashi-agent %u %f\n"
	const wantUser = "authorizedkeyscommanduser kaginashi-test\n"

	for _, d := range distros {
		t.Run(d.dir, func(t *testing.T) {
			etc := realTree(t, d.dir)
			o := opts(etc)
			before := snapshotDir(t, etc)
			if eff := effective(t, o.ConfigPath); strings.Contains(eff, wantAKC) {
				t.Fatal("the stock file already has our command?")
			}
			rep, err := Setup(context.Background(), o)
			if err != nil {
				t.Fatalf("Setup: %v\n%v", err, rep)
			}
			if rep.Mechanism != d.mech || !rep.Validated {
				t.Fatalf("report: %+v", rep)
			}
			eff := effective(t, o.ConfigPath)
			if !strings.Contains(eff, wantAKC) || !strings.Contains(eff, wantUser) || !strings.Contains(eff, "pubkeyauthentication yes\n") {
				t.Fatalf("sshd -T does not show kaginashi's settings:\n%s", eff)
			}
			st, err := Inspect(o)
			if err != nil || !st.Configured || !strings.HasPrefix(st.SSHDVersion, "OpenSSH_") || !st.IncludeSupported {
				t.Fatalf("Inspect: %v %+v", err, st)
			}
			rep, err = Remove(context.Background(), o)
			if err != nil || !rep.ByteIdentical || !rep.Validated {
				t.Fatalf("Remove: %v %+v", err, rep)
			}
			sameSnapshot(t, "after Remove", before, snapshotDir(t, etc))
			if strings.Contains(effective(t, o.ConfigPath), wantAKC) {
				t.Fatal("sshd -T still shows our command after Remove")
			}
		})
	}

	// sshd -t itself rejects a bad line: everything is put back.
	for _, fixture := range []string{"debian-9", "debian-12", "rhel-9"} {
		t.Run("rollback/"+fixture, func(t *testing.T) {
			etc := realTree(t, fixture)
			o := opts(etc)
			o.extraLines = []string{"BogusOption yes"}
			before := snapshotDir(t, etc)
			_, err := Setup(context.Background(), o)
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), "Bad configuration option: BogusOption") {
				t.Fatalf("want sshd's rejection, got %v", err)
			}
			sameSnapshot(t, "after the rollback", before, snapshotDir(t, etc))
		})
	}
}

// TestParserAgreesWithSSHD compares the parser's effective global values
// with what `sshd -T` prints for the same files.
func TestParserAgreesWithSSHD(t *testing.T) {
	sshd, keygen := requireSSHD(t)
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	cases := []map[string]string{
		{"main": "authorizedKEYScommand=/usr/bin/a %u\nAuthorizedKeysCommand /usr/bin/b\nAuthorizedKeysCommandUser = nobody\n"},
		{"main": "\"AuthorizedKeysCommand\" /usr/bin/a %u %f # trailing words\nPubkeyAuthentication\tno\nAuthorizedKeysCommandUser 'no body'\n"},
		{"main": "Include DIR/d/*.conf\nAuthorizedKeysCommandUser main\n",
			"d/50-b.conf": "AuthorizedKeysCommandUser fifty\nAuthorizedKeysFile fifty\n",
			"d/10-a.conf": "Match User x\nAuthorizedKeysCommandUser inmatch\n",
			"d/.h.conf":   "AuthorizedKeysFile hidden\n"},
		{"main": "Match User bob\n  Include DIR/inc\nAuthorizedKeysFile bob\nMatch all\nAuthorizedKeysFile all\n",
			"inc": "AuthorizedKeysCommand /usr/bin/bob\n"},
		{"main": "Include DIR/inc\nAuthorizedKeysCommand /usr/bin/after\nAuthorizedKeysCommandUser nobody\n",
			"inc": "Match Address 10.0.0.0/8\nAuthorizedKeysCommand /usr/bin/net10\n"},
		{"main": "Match all\nPubkeyAuthentication no\n"},
	}
	keys := map[string]string{
		"authorizedkeyscommand":     "none",
		"authorizedkeyscommanduser": "none",
		"pubkeyauthentication":      "yes",
		"authorizedkeysfile":        ".ssh/authorized_keys .ssh/authorized_keys2",
	}
	for i, files := range cases {
		base := filepath.Join(dir, string(rune('a'+i)))
		for name, content := range files {
			p := filepath.Join(base, name)
			if name == "main" {
				p = filepath.Join(base, "sshd_config")
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "DIR", base)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfgPath := filepath.Join(base, "sshd_config")
		out, err := exec.Command(sshd, "-T", "-f", cfgPath, "-h", hostKey).CombinedOutput()
		if err != nil {
			t.Fatalf("case %d: sshd -T: %v: %s", i, err, out)
		}
		sshdSays := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			k, v, _ := strings.Cut(l, " ")
			if _, ok := keys[k]; ok {
				sshdSays[k] = v
			}
		}
		cfg, err := parseConfig(rootFS{}, cfgPath)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for k, def := range keys {
			want := def
			var d *Directive
			if k == "authorizedkeyscommanduser" {
				d = effectiveUser(cfg)
			} else {
				d = cfg.effective(k)
			}
			if d != nil {
				switch k {
				case "authorizedkeyscommand":
					want = d.Value
				case "pubkeyauthentication":
					want = strings.ToLower(firstArg(d))
				default:
					want = strings.Join(d.args, " ")
				}
			}
			if sshdSays[k] != want {
				t.Errorf("case %d %s: sshd says %q, the parser %q", i, k, sshdSays[k], want)
			}
		}
	}
}

// TestReloadByPidFile starts a real sshd on a loopback port and makes it
// re-read its configuration the way Reload does without systemd.
func TestReloadByPidFile(t *testing.T) {
	sshd, keygen := requireSSHD(t)
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pidFile := filepath.Join(dir, "sshd.pid")
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte("ListenAddress "+addr+"\nPidFile "+pidFile+"\nUsePAM no\n"), 0o644)
	var logs syncbuf.Buffer
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfg, "-h", hostKey)
	cmd.Stderr = &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, "sshd to write its pid file", func() bool { _, err := os.Stat(pidFile); return err == nil })

	// A stale pid file (not an sshd) is skipped.
	stale := filepath.Join(dir, "stale.pid")
	os.WriteFile(stale, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	msg, err := reloadByPidFile(filepath.Join(dir, "missing.pid"), stale, pidFile)
	if err != nil || !strings.Contains(msg, strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("reload: %q %v", msg, err)
	}
	waitFor(t, "sshd to restart on SIGHUP", func() bool { return strings.Contains(logs.String(), "Received SIGHUP; restarting.") })
	if msg, err := reloadByPidFile(stale); err != nil || !strings.Contains(msg, "not seem to be running") {
		t.Fatalf("no sshd: %q %v", msg, err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

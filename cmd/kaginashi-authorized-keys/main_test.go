package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// TestMain lets the test binary act as kaginashi-authorized-keys.
func TestMain(m *testing.M) {
	if os.Getenv("KAGINASHI_AKC_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func exe(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"KAGINASHI_AKC_AS_MAIN=1", "PATH=/usr/bin:/bin"} // sshd's clean environment
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// dataDir is an agent data directory with one valid record for alice.
func dataDir(t *testing.T) (string, keyrecord.Record) {
	t.Helper()
	dir := t.TempDir()
	pk, priv, _ := ed25519.GenerateKey(rand.Reader)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	b, _ := json.Marshal(authkeys.Public{InstanceID: "i-0123456789abcdef0", SigningKey: pk, ExpiryOption: true})
	os.WriteFile(authkeys.PublicPath(dir), b, 0o644)
	kp, _, _ := ed25519.GenerateKey(rand.Reader)
	blob := append([]byte("\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"), kp...)
	sum := sha256.Sum256(blob)
	now := time.Now().Unix()
	r := keyrecord.Record{RequestID: "req-1", InstanceID: "i-0123456789abcdef0", OSUser: "alice",
		PublicKey: "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob), Fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]),
		CallerARN: "arn:aws:iam::123456789012:user/alice", IssuedAt: now, ExpiresAt: now + 60}
	if err := r.Sign(priv); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(authkeys.Records{Records: []keyrecord.Record{r}})
	os.WriteFile(authkeys.RecordsPath(dir), b, 0o644)
	return dir, r
}

func TestForms(t *testing.T) {
	dir, r := dataDir(t)
	want := r.AuthorizedKeysLine(0, true) + "\n"
	// Both forms, as setup-sshd writes it (with the subcommand word) and
	// without; the same output, exit 0, nothing on stderr.
	for _, args := range [][]string{
		{"authorized-keys", "--data-dir", dir, "alice", r.Fingerprint},
		{"--data-dir", dir, "alice", r.Fingerprint},
		{"authorized-keys", "--data-dir", dir, "alice"},
	} {
		if code, out, errs := exe(t, args...); code != 0 || out != want || errs != "" {
			t.Errorf("%q: exit %d, %q, %q; want 0, %q", args, code, out, errs, want)
		}
	}
	for _, args := range [][]string{
		{"authorized-keys", "--data-dir", dir, "bob", r.Fingerprint},
		{"--data-dir", dir, "alice", "SHA256:nope"},
		// "authorized-keys" first is always the subcommand word.
		{"--data-dir", dir, "authorized-keys"},
	} {
		if code, out, errs := exe(t, args...); code != 0 || out != "" || errs != "" {
			t.Errorf("%q: exit %d, %q, %q; want 0 and nothing", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{}, {"authorized-keys"}, {"--no-such-flag", "alice"}, {"authorized-keys", "a", "b", "c"}, {"--version", "alice"}} {
		if code, out, errs := exe(t, args...); code != 2 || out != "" || errs == "" {
			t.Errorf("%q: exit %d, %q, %q; want 2 and usage on stderr", args, code, out, errs)
		}
	}
	// Usage on stderr even for --help: stdout is sshd's authorized_keys.
	if code, out, errs := exe(t, "--help"); code != 0 || out != "" || errs != "usage: kaginashi-authorized-keys "+authkeys.Usage+"\n" {
		t.Errorf("--help: exit %d, %q, %q", code, out, errs)
	}
	if code, out, errs := exe(t, "authorized-keys", "--help"); code != 0 || out != "" || errs != "usage: kaginashi-authorized-keys authorized-keys "+authkeys.Usage+"\n" {
		t.Errorf("authorized-keys --help: exit %d, %q, %q", code, out, errs)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := exe(t, "--version"); code != 0 || out != "kaginashi-authorized-keys "+authkeys.Version+"\n" {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

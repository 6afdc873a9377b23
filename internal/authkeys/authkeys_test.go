package authkeys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

const testInstance = "i-0123456789abcdef0"

// fixture is an agent data directory: a pinned signing key and records.
type fixture struct {
	dir  string
	priv ed25519.PrivateKey
	pub  Public
	now  time.Time // host clock; the records are issued at now + skew
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	pk, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: t.TempDir(), priv: priv, now: time.Unix(1_800_000_000, 0),
		pub: Public{InstanceID: testInstance, SigningKey: pk, ExpiryOption: true}}
	if err := os.MkdirAll(filepath.Join(f.dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.writePublic(t)
	return f
}

func (f *fixture) writePublic(t testing.TB) {
	t.Helper()
	b, err := json.Marshal(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(PublicPath(f.dir), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// record makes a record for user with a fresh key, issued at the server's
// now, signed by signer.
func (f *fixture) record(t testing.TB, user string, signer ed25519.PrivateKey) keyrecord.Record {
	t.Helper()
	kp, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blob := append([]byte("\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"), kp...)
	sum := sha256.Sum256(blob)
	id := make([]byte, 8)
	rand.Read(id)
	serverNow := f.now.Add(time.Duration(f.pub.ClockSkewMillis) * time.Millisecond).Unix()
	r := keyrecord.Record{
		RequestID: "req-" + hex.EncodeToString(id), InstanceID: testInstance, OSUser: user,
		PublicKey: "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob), Fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]),
		CallerARN: "arn:aws:iam::123456789012:user/alice", IssuedAt: serverNow, ExpiresAt: serverNow + 60,
	}
	if err := r.Sign(signer); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) writeRecords(t testing.TB, recs ...keyrecord.Record) {
	t.Helper()
	b, err := json.MarshalIndent(Records{Records: recs}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(RecordsPath(f.dir), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serve runs AuthorizedKeys at host time now and returns its output and
// the request IDs it reported as provided.
func (f *fixture) serve(t testing.TB, user, fp string, now time.Time) (string, []string) {
	t.Helper()
	var out bytes.Buffer
	var ids []string
	if err := AuthorizedKeys(f.dir, user, fp, now, &out, func(r keyrecord.Record) { ids = append(ids, r.RequestID) }); err != nil {
		t.Fatal(err)
	}
	return out.String(), ids
}

func line(r keyrecord.Record, skew time.Duration) string {
	return r.AuthorizedKeysLine(-skew, true) + "\n"
}

func TestAuthorizedKeys(t *testing.T) {
	f := newFixture(t)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	a1, a2 := f.record(t, "alice", f.priv), f.record(t, "alice", f.priv)
	b1 := f.record(t, "bob", f.priv)
	forged := f.record(t, "alice", stranger)
	other := f.record(t, "alice", f.priv)
	other.InstanceID = "i-00000000000000001"
	other.Sign(f.priv)
	tampered := f.record(t, "alice", f.priv)
	tampered.ExpiresAt-- // still well formed, no longer what was signed
	f.writeRecords(t, a1, forged, b1, other, tampered, a2)

	for _, tc := range []struct {
		name, user, fp string
		at             time.Time
		want           []keyrecord.Record
	}{
		{"all of alice's valid keys", "alice", "", f.now, []keyrecord.Record{a1, a2}},
		{"the one sshd asks by fingerprint", "alice", a2.Fingerprint, f.now, []keyrecord.Record{a2}},
		{"bob's", "bob", "", f.now, []keyrecord.Record{b1}},
		{"bob's key asked as alice", "alice", b1.Fingerprint, f.now, nil},
		{"a forged record's fingerprint", "alice", forged.Fingerprint, f.now, nil},
		{"no such user", "carol", "", f.now, nil},
		{"one second before expiry", "alice", a1.Fingerprint, f.now.Add(59 * time.Second), []keyrecord.Record{a1}},
		{"at expiry", "alice", a1.Fingerprint, f.now.Add(60 * time.Second), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ids := f.serve(t, tc.user, tc.fp, tc.at)
			var want string
			var wantIDs []string
			for _, r := range tc.want {
				want += line(r, 0)
				wantIDs = append(wantIDs, r.RequestID)
			}
			if out != want || strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
				t.Errorf("got %q (provided %v), want %q (%v)", out, ids, want, wantIDs)
			}
		})
	}
}

// TestClockSkew: expiry is judged on the server's clock (host clock +
// clockSkewMillis), and the expiry-time printed for sshd is on the host's.
func TestClockSkew(t *testing.T) {
	f := newFixture(t)
	f.pub.ClockSkewMillis = 30_000 // the server is 30 s ahead
	f.writePublic(t)
	r := f.record(t, "alice", f.priv) // issued at server time now+30s, expires at now+90s
	f.writeRecords(t, r)
	if out, _ := f.serve(t, "alice", "", f.now.Add(59*time.Second)); out != line(r, 30*time.Second) {
		t.Errorf("59 s in on the host's clock (89 s on the server's): %q, want %q", out, line(r, 30*time.Second))
	}
	if out, _ := f.serve(t, "alice", "", f.now.Add(60*time.Second)); out != "" {
		t.Errorf("60 s in on the host's clock (90 s on the server's): %q, want nothing", out)
	}
	// The expiry-time sshd enforces is on the host's clock: 30 s earlier
	// than the server's.
	if want := time.Unix(r.ExpiresAt, 0).Add(-30 * time.Second).UTC().Format("20060102150405Z"); !strings.Contains(line(r, 30*time.Second), want) {
		t.Errorf("line %q does not carry the host-clock expiry %s", line(r, 30*time.Second), want)
	}
}

// TestRetiredSigningKeys is the contract with the agent's signing-key
// rollover: identity.json's retiredSigningKeys, [{"key": base64, "until":
// Unix ms}], written here as raw JSON the way the agent writes it. A record
// signed by a retired key is served while the server-corrected now is
// before its until, and not from then on; an unrelated key never is.
func TestRetiredSigningKeys(t *testing.T) {
	f := newFixture(t)
	oldPub, oldPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	const skew = 5_000
	serverNow := f.now.Add(skew * time.Millisecond)
	until := serverNow.Add(30 * time.Second).UnixMilli()
	ident := `{"instanceId":"` + testInstance + `","signingKey":"` + base64.StdEncoding.EncodeToString(f.pub.SigningKey) +
		`","retiredSigningKeys":[{"key":"` + base64.StdEncoding.EncodeToString(oldPub) + `","until":` + strconv.FormatInt(until, 10) + `}],` +
		`"clockSkewMillis":` + strconv.Itoa(skew) + `,"expiryOption":true}`
	if err := os.WriteFile(PublicPath(f.dir), []byte(ident), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublic(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.RetiredSigningKeys) != 1 || !bytes.Equal(pub.RetiredSigningKeys[0].Key, oldPub) || pub.RetiredSigningKeys[0].Until != until {
		t.Fatalf("retiredSigningKeys read as %+v", pub.RetiredSigningKeys)
	}
	f.pub = pub
	byOld, byNew, byStranger := f.record(t, "alice", oldPriv), f.record(t, "alice", f.priv), f.record(t, "alice", stranger)
	f.writeRecords(t, byOld, byNew, byStranger)

	justBefore := time.UnixMilli(until - 1).Add(-skew * time.Millisecond) // host clock
	if out, _ := f.serve(t, "alice", byOld.Fingerprint, justBefore); out != line(byOld, skew*time.Millisecond) {
		t.Errorf("signed by the retired key, 1 ms before its until: %q, want it served", out)
	}
	atUntil := time.UnixMilli(until).Add(-skew * time.Millisecond)
	if out, _ := f.serve(t, "alice", byOld.Fingerprint, atUntil); out != "" {
		t.Errorf("signed by the retired key, at its until: %q, want nothing", out)
	}
	if out, _ := f.serve(t, "alice", byNew.Fingerprint, atUntil); out == "" {
		t.Errorf("signed by the current key: not served")
	}
	if out, _ := f.serve(t, "alice", byStranger.Fingerprint, f.now); out != "" {
		t.Errorf("signed by an unrelated key: %q, want nothing", out)
	}
	// A malformed retired key verifies nothing and breaks nothing.
	f.pub.RetiredSigningKeys = append(f.pub.RetiredSigningKeys, RetiredKey{Key: []byte("short"), Until: until})
	if err := f.pub.VerifyRecord(&byStranger, testInstance, "alice", serverNow); !errors.Is(err, keyrecord.ErrSignature) {
		t.Errorf("with a malformed retired key: %v, want ErrSignature", err)
	}
}

func TestNotEnrolledAndBadFiles(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := AuthorizedKeys(dir, "alice", "", time.Now(), &out, nil); err != nil || out.Len() != 0 {
		t.Errorf("not enrolled: %q, %v; want nothing, no error", out.String(), err)
	}
	f := newFixture(t)
	f.writeRecords(t, f.record(t, "alice", f.priv))
	for name, content := range map[string]string{
		"identity.json": `{"instanceId":"` + testInstance + `","signingKey":"AAAA"}`,
		"records.json":  `{"records":[{"requestId":`,
	} {
		p := filepath.Join(f.dir, "keys", name)
		old, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(content), 0o644)
		out.Reset()
		err := AuthorizedKeys(f.dir, "alice", "", f.now, &out, nil)
		if err == nil || out.Len() != 0 || !strings.Contains(err.Error(), name) {
			t.Errorf("broken %s: %q, %v; want no keys and an error naming the file", name, out.String(), err)
		}
		os.WriteFile(p, old, 0o644)
	}
	for _, odd := range []func(string) error{
		func(p string) error { return os.Mkdir(p, 0o755) },
		func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		os.Remove(RecordsPath(f.dir))
		if err := odd(RecordsPath(f.dir)); err != nil {
			t.Fatal(err)
		}
		if err := AuthorizedKeys(f.dir, "alice", "", f.now, &out, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("records.json a directory or FIFO: %v", err)
		}
	}
	big := make([]byte, maxPublic+1)
	os.WriteFile(PublicPath(f.dir), big, 0o644)
	if err := AuthorizedKeys(f.dir, "alice", "", f.now, &out, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized identity.json: %v", err)
	}
}

// TestDeps keeps the AuthorizedKeysCommand binary small: none of what
// makes kaginashi-agent slow to start, nor any network code, may creep in.
func TestDeps(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "github.com/kaginashi/kaginashi/cmd/kaginashi-authorized-keys").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		deps[d] = true
	}
	for _, bad := range []string{"net", "net/http", "crypto/tls", "crypto/x509", "log/slog", "log/syslog", "log", "regexp",
		"github.com/kaginashi/kaginashi/internal/agent", "github.com/kaginashi/kaginashi/internal/agentproto", "github.com/hashicorp/yamux"} {
		if deps[bad] {
			t.Errorf("cmd/kaginashi-authorized-keys links %s", bad)
		}
	}
	if !deps["github.com/kaginashi/kaginashi/internal/authkeys"] {
		t.Errorf("go list output does not look right:\n%s", out)
	}
}

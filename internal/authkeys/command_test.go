package authkeys

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// sink is a unixgram socket standing in for /dev/log.
func sink(t *testing.T) (string, func() []string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, func() []string {
		var msgs []string
		buf := make([]byte, 8192)
		for {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				return msgs
			}
			msgs = append(msgs, string(buf[:n]))
		}
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	a1, a2, b1 := f.record(t, "alice", f.priv), f.record(t, "alice", f.priv), f.record(t, "bob", f.priv)
	f.writeRecords(t, a1, a2, b1)
	sock, read := sink(t)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(args, Env{Name: "kaginashi-agent authorized-keys", Stdout: &out, Stderr: &errb, Now: func() time.Time { return f.now }, SyslogSocket: sock})
		return code, out.String(), errb.String()
	}
	usage := "usage: kaginashi-agent authorized-keys [--data-dir DIR] USER [FINGERPRINT]\n"
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"--data-dir", f.dir, "alice", a2.Fingerprint}, 0, line(a2, 0), ""},
		{[]string{"--data-dir=" + f.dir, "alice"}, 0, line(a1, 0) + line(a2, 0), ""},
		{[]string{"-data-dir", f.dir, "bob"}, 0, line(b1, 0), ""},
		{[]string{"--data-dir", f.dir, "--", "alice", a1.Fingerprint}, 0, line(a1, 0), ""},
		{[]string{"--data-dir", f.dir, "carol"}, 0, "", ""},
		{[]string{"--data-dir", filepath.Join(f.dir, "missing"), "alice"}, 0, "", ""},
		{[]string{"--help"}, 0, "", usage},
		{[]string{"--data-dir", f.dir, "-h", "x"}, 0, "", usage},
		{[]string{"--data-dir", f.dir}, 2, "", usage},
		{[]string{"--data-dir", f.dir, "alice", a1.Fingerprint, "extra"}, 2, "", usage},
		{[]string{"--data-dir", f.dir, "-alice"}, 2, "", usage},
		{[]string{"--no-such-flag", "alice"}, 2, "", usage},
		// Hostile input: quotes, newlines, options: never printed.
		{[]string{"--data-dir", f.dir, "alice\nssh-ed25519 AAAA", `command="sh" ` + a1.Fingerprint}, 0, "", ""},
		{[]string{"--data-dir", f.dir, "alice", a1.Fingerprint + "\n"}, 0, "", ""},
	} {
		code, out, errs := run(tc.args...)
		if code != tc.code || out != tc.stdout || errs != tc.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out, errs, tc.code, tc.stdout, tc.stderr)
		}
	}
	msgs := read()
	// One line per key served: 1 + 2 + 1 + 1.
	if len(msgs) != 5 {
		t.Fatalf("%d syslog lines, want 5:\n%s", len(msgs), strings.Join(msgs, ""))
	}
	// log/syslog's local format: <PRI>Stamp TAG[PID]: MSG\n.
	re := regexp.MustCompile(`^<86>([A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}) kaginashi-agent\[` + strconv.Itoa(os.Getpid()) + `\]: (.*)\n$`)
	m := re.FindStringSubmatch(msgs[0])
	if m == nil {
		t.Fatalf("syslog line %q is not <86>Stamp kaginashi-agent[PID]: MSG\\n", msgs[0])
	}
	if m[1] != f.now.Format(time.Stamp) {
		t.Errorf("syslog time %q, want %q", m[1], f.now.Format(time.Stamp))
	}
	want := "Providing ssh key from kaginashi with fingerprint: " + a2.Fingerprint + ", request-id: " + a2.RequestID +
		", for IAM principal: arn:aws:iam::123456789012:user/alice, user: alice"
	if m[2] != want {
		t.Errorf("syslog message %q, want %q", m[2], want)
	}
	// A broken data directory: no keys, exit 0, the reason on stderr.
	os.WriteFile(RecordsPath(f.dir), []byte("{"), 0o644)
	if code, out, errs := run("--data-dir", f.dir, "alice"); code != 0 || out != "" || !strings.HasPrefix(errs, "kaginashi-agent authorized-keys: "+RecordsPath(f.dir)) {
		t.Errorf("broken records.json: exit %d, %q, %q", code, out, errs)
	}
}

// TestSyslogDown: no syslog socket, or one nobody reads, never holds the
// command up for more than the budget.
func TestSyslogDown(t *testing.T) {
	f := newFixture(t)
	r := f.record(t, "alice", f.priv)
	now := func() time.Time { return f.now }
	t0 := time.Now()
	LogProvided(filepath.Join(t.TempDir(), "nothing"), "kaginashi-agent", now, []keyrecord.Record{r})
	if d := time.Since(t0); d > 50*time.Millisecond {
		t.Errorf("no socket: %v", d)
	}
	// A socket whose queue is full: writes block until SO_SNDTIMEO.
	p := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	many := make([]keyrecord.Record, 5000)
	for i := range many {
		many[i] = r
	}
	t0 = time.Now()
	LogProvided(p, "kaginashi-agent", now, many)
	if d := time.Since(t0); d > syslogBudget+200*time.Millisecond {
		t.Errorf("a stalled syslog held the command %v, budget %v", d, syslogBudget)
	}
}

// FuzzRun: whatever USER and FINGERPRINT a client makes sshd pass, the
// command prints only whole lines of verified records for exactly that
// user (and fingerprint), and exits 0, or 2 for a command line that is not
// sshd's.
func FuzzRun(f *testing.F) {
	fx := newFixture(f)
	a1, a2, b1 := fx.record(f, "alice", fx.priv), fx.record(f, "alice", fx.priv), fx.record(f, "bob", fx.priv)
	fx.writeRecords(f, a1, a2, b1)
	byUser := map[string][]keyrecord.Record{"alice": {a1, a2}, "bob": {b1}}
	f.Add("alice", a1.Fingerprint)
	f.Add("alice", "")
	f.Add("bob", b1.Fingerprint)
	f.Add("alice\n", a1.Fingerprint)
	f.Add("-alice", "--data-dir=/")
	f.Add("--", "alice")
	f.Fuzz(func(t *testing.T, user, fp string) {
		var out, errb bytes.Buffer
		args := []string{"--data-dir", fx.dir, user}
		if fp != "" {
			args = append(args, fp)
		}
		code := Run(args, Env{Name: "authorized-keys", Stdout: &out, Stderr: &errb, Now: func() time.Time { return fx.now }, SyslogSocket: "/nonexistent"})
		if code == 2 {
			if out.Len() != 0 {
				t.Fatalf("usage error with output %q", out.String())
			}
			return
		}
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var want string
		for _, r := range byUser[user] {
			if fp == "" || fp == r.Fingerprint {
				want += line(r, 0)
			}
		}
		// The flag package reads "--" and a USER that is a flag
		// differently; the output can still only be one user's records.
		if out.String() != want {
			served := false
			for _, rs := range byUser {
				var all string
				for _, r := range rs {
					all += line(r, 0)
				}
				served = served || strings.Contains(all, out.String())
			}
			if !served {
				t.Fatalf("user %q fingerprint %q: printed %q", user, fp, out.String())
			}
		}
	})
}

package authkeys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// refusalSink binds the agent's refusal socket of dir, as the agent does.
func refusalSink(t *testing.T, dir string) func() []string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: RefusalSocketPath(dir), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() []string {
		var msgs []string
		buf := make([]byte, 1024)
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

func refusals(pairs ...any) Refusals {
	var r Refusals
	for i := 0; i+1 < len(pairs); i += 2 {
		for j, k := range AKCReasons {
			if k == pairs[i].(string) {
				r[j] = uint64(pairs[i+1].(int))
			}
		}
	}
	return r
}

// TestServeRefusals: which records sshd asked about count as refused, and
// why; served keys and keys kaginashi never pushed count nothing.
func TestServeRefusals(t *testing.T) {
	f := newFixture(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	good := f.record(t, "alice", f.priv)
	forged := f.record(t, "alice", other)
	bobs := f.record(t, "bob", f.priv)
	old := f.record(t, "alice", f.priv)
	old.IssuedAt -= 120
	old.ExpiresAt -= 120
	if err := old.Sign(f.priv); err != nil {
		t.Fatal(err)
	}
	elsewhere := f.record(t, "alice", f.priv)
	elsewhere.InstanceID = "i-0123456789abcdef1"
	if err := elsewhere.Sign(f.priv); err != nil {
		t.Fatal(err)
	}
	f.writeRecords(t, good, forged, bobs, old, elsewhere)
	for _, tc := range []struct {
		name, user, fp string
		served         bool
		want           Refusals
	}{
		{"served", "alice", good.Fingerprint, true, Refusals{}},
		{"a key kaginashi never pushed", "alice", "SHA256:" + strings.Repeat("A", 43), false, Refusals{}},
		{"bad signature", "alice", forged.Fingerprint, false, refusals(AKCSignature, 1)},
		{"pushed for another user", "alice", bobs.Fingerprint, false, refusals(AKCUser, 1)},
		{"expired", "alice", old.Fingerprint, false, refusals(AKCExpired, 1)},
		{"another instance", "alice", elsewhere.Fingerprint, false, refusals(AKCInstance, 1)},
		// Without %f: every record of the user that fails, but not the
		// expired one (it says nothing about this login).
		{"no fingerprint", "alice", "", true, refusals(AKCSignature, 1, AKCInstance, 1)},
		{"no fingerprint, no refused records", "bob", "", true, Refusals{}},
	} {
		var out bytes.Buffer
		var got Refusals
		if err := Serve(f.dir, tc.user, tc.fp, f.now, &out, nil, &got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: refused %v, want %v", tc.name, got, tc.want)
		}
		if (out.Len() > 0) != tc.served {
			t.Errorf("%s: output %q", tc.name, out.String())
		}
	}

	// A data directory that cannot be read: one "unreadable".
	os.WriteFile(PublicPath(f.dir), []byte("{not json"), 0o644)
	var got Refusals
	if err := Serve(f.dir, "alice", good.Fingerprint, f.now, &bytes.Buffer{}, nil, &got); err == nil {
		t.Error("a broken identity.json gave no error")
	}
	if got != refusals(AKCUnreadable, 1) {
		t.Errorf("broken identity.json: refused %v", got)
	}
	f.writePublic(t)
	os.WriteFile(RecordsPath(f.dir), []byte("{not json"), 0o644)
	got = Refusals{}
	Serve(f.dir, "alice", good.Fingerprint, f.now, &bytes.Buffer{}, nil, &got)
	if got != refusals(AKCUnreadable, 1) {
		t.Errorf("broken records.json: refused %v", got)
	}
	// Not enrolled: no keys and nothing refused.
	os.Remove(PublicPath(f.dir))
	got = Refusals{}
	if err := Serve(f.dir, "alice", good.Fingerprint, f.now, &bytes.Buffer{}, nil, &got); err != nil || got.Total() != 0 {
		t.Errorf("not enrolled: %v, refused %v", err, got)
	}
}

// TestRunSendsRefusals: the command sends one datagram per login that
// refused something, to the data directory's socket, and none otherwise.
func TestRunSendsRefusals(t *testing.T) {
	f := newFixture(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	good, forged, bobs := f.record(t, "alice", f.priv), f.record(t, "alice", other), f.record(t, "bob", f.priv)
	f.writeRecords(t, good, forged, bobs)
	read := refusalSink(t, f.dir)
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		Run(append([]string{"--data-dir", f.dir}, args...), Env{Name: "t", Stdout: &out, Stderr: &errb, Now: func() time.Time { return f.now },
			SyslogSocket: "/nonexistent/log"})
		return out.String()
	}
	if out := run("alice", good.Fingerprint); out == "" {
		t.Error("the good key was not served")
	}
	if msgs := read(); len(msgs) != 0 {
		t.Errorf("a served key sent %q", msgs)
	}
	run("alice", forged.Fingerprint)
	run("alice", bobs.Fingerprint)
	run("alice", "SHA256:"+strings.Repeat("B", 43))
	msgs := read()
	if strings.Join(msgs, "|") != "akc1 signature=1|akc1 user=1" {
		t.Errorf("datagrams %q, want one per refusing login", msgs)
	}
	for _, m := range msgs {
		if strings.Contains(m, "alice") || strings.Contains(m, "SHA256") || strings.Contains(m, "bob") {
			t.Errorf("datagram %q carries what the client chose", m)
		}
	}
}

// TestSendRefusalsNoAgent: without the agent's socket (no metrics, agent
// down) the command does not wait and does not fail.
func TestSendRefusalsNoAgent(t *testing.T) {
	r := refusals(AKCSignature, 1)
	start := time.Now()
	SendRefusals(t.TempDir(), &r)
	SendRefusals("/nonexistent", &r)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("SendRefusals without a socket took %v", d)
	}
}

// TestSendRefusalsFullQueue: an agent that does not read (its queue full)
// never blocks the command.
func TestSendRefusalsFullQueue(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(dir+"/keys", 0o755)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: RefusalSocketPath(dir), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := refusals(AKCExpired, 3)
	start := time.Now()
	for i := 0; i < 2000; i++ { // far more than the socket's queue holds
		SendRefusals(dir, &r)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("2000 sends to a full queue took %v", d)
	}
}

func TestRefusalsRoundTrip(t *testing.T) {
	for _, r := range []Refusals{refusals(AKCSignature, 1), refusals(AKCUser, 2, AKCUnreadable, 1), refusals(AKCExpired, 100000, AKCMalformed, 7, AKCInstance, 1)} {
		b := AppendRefusals(nil, &r)
		got, err := ParseRefusals(b)
		if err != nil || got != r {
			t.Errorf("%q: %v %v, want %v", b, got, err, r)
		}
	}
	big := refusals(AKCSignature, 1)
	big[0] = 1 << 40
	if got, err := ParseRefusals(AppendRefusals(nil, &big)); err != nil || got[0] != maxRefusalCount {
		t.Errorf("a count past the cap: %v %v", got, err)
	}
	for _, bad := range []string{"", "akc1", "akc2 signature=1", "akc1signature=1", "akc1 signature=0", "akc1 signature=01",
		"akc1 signature=+1", "akc1 signature=-1", "akc1 signature=100001", "akc1 signature=1 signature=1", "akc1 alice=1",
		"akc1 signature", "akc1  signature=1", "akc1 signature=1 ", "akc1 signature=1\n", "akc1 signature=99999999999999999999",
		"akc1 " + strings.Repeat("x", 300)} {
		if r, err := ParseRefusals([]byte(bad)); err == nil {
			t.Errorf("ParseRefusals(%q) = %v, want an error", bad, r)
		}
	}
}

func FuzzParseRefusals(f *testing.F) {
	f.Add([]byte("akc1 signature=1"))
	f.Add([]byte("akc1 user=2 expired=3 unreadable=1"))
	f.Add([]byte("akc1 signature=1 signature=1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRefusals(b)
		if err != nil {
			return
		}
		if r.Total() == 0 {
			t.Fatalf("%q parsed to no counts", b)
		}
		for _, n := range r {
			if n > maxRefusalCount {
				t.Fatalf("%q: count %d past the cap", b, n)
			}
		}
		// What parses is what AppendRefusals writes, byte for byte.
		if again := AppendRefusals(nil, &r); !bytes.Equal(again, b) {
			t.Fatalf("%q parsed to %v, which writes %q", b, r, again)
		}
	})
}

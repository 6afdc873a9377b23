package recording

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func meta(id string) *Meta {
	return &Meta{ID: id, UserName: "alice", UserARN: "arn:aws:iam::123456789012:user/alice", InstanceID: "i-0123456789abcdef0", OSUser: "ec2-user"}
}

func TestWriteAndParse(t *testing.T) {
	c := &clock{time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Width: 80, Height: 24, Kaginashi: meta(NewID())}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(1500 * time.Millisecond)
	jp := []byte("こんにちは\r\n")
	// A multi-byte rune split between two reads is recorded whole.
	if err := w.Output(jp[:4]); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Second)
	if err := w.Output(jp[4:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte{0xe3, 0x81}); err != nil { // held back
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h, evs, err := Parse(&buf, 0)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, buf.String())
	}
	if h.Version != 2 || h.Width != 80 || h.Height != 24 || h.Timestamp != c.t.Add(-2500*time.Millisecond).Unix() || h.Kaginashi.UserName != "alice" {
		t.Errorf("header %+v", h)
	}
	want := []Event{{1.5, "o", "こ"}, {2.5, "o", "んにちは\r\n"}, {2.5, "r", "100x30"}, {2.5, "o", "\ufffd\ufffd"}}
	if len(evs) != len(want) {
		t.Fatalf("events %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
}

// failingWriter fails from the nth write on.
type failingWriter struct {
	n      int
	writes int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	if f.writes >= f.n {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// A write error is returned at once and from every later call: the
// session must end (fail closed).
func TestWriteErrorFailsClosed(t *testing.T) {
	fw := &failingWriter{n: 3}
	w, err := NewWriter(fw, Header{Width: 80, Height: 24}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("two")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("second output: %v, want the disk's error", err)
	}
	if err := w.Output([]byte("three")); err == nil {
		t.Fatal("an output after a failure succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failure returned no error")
	}
	if _, err := NewWriter(&failingWriter{n: 1}, Header{Width: 1, Height: 1}, nil); err == nil {
		t.Fatal("a header that cannot be written did not fail")
	}
}

func TestCreateListOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recordings")
	c := &clock{time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	var ids []string
	for i, user := range []string{"alice", "bob", "alice"} {
		m := meta(NewID())
		m.UserName = user
		w, err := Create(dir, Header{Width: 80, Height: 24, Kaginashi: m}, c.now)
		if err != nil {
			t.Fatal(err)
		}
		_ = w.Output([]byte("x"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		c.t = c.t.Add(time.Duration(i+1) * time.Minute)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v %v, want 0700", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(dir, ids[0]+".cast"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v %v, want 0600", fi.Mode(), err)
	}
	_ = os.WriteFile(filepath.Join(dir, "junk.cast"), []byte("{}"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "rec-00000000000000000000.cast"), []byte("not json\n"), 0o600)

	all, err := List(dir, Filter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("List = %+v, %v", all, err)
	}
	if all[0].ID != ids[2] || all[2].ID != ids[0] {
		t.Errorf("List order %v, want newest first (%v reversed)", all, ids)
	}
	alice, _ := List(dir, Filter{UserName: "alice"})
	if len(alice) != 2 {
		t.Errorf("alice's recordings: %+v", alice)
	}
	late, _ := List(dir, Filter{From: time.Date(2026, 11, 28, 10, 0, 30, 0, time.UTC)})
	if len(late) != 2 {
		t.Errorf("From filter: %+v", late)
	}
	if _, err := Open(dir, "../../etc/passwd"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with a path: %v", err)
	}
	f, err := Open(dir, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, evs, err := Parse(f, 0)
	if err != nil || h.Kaginashi.UserName != "bob" || len(evs) != 1 {
		t.Errorf("Parse(%s) = %+v %+v %v", ids[1], h, evs, err)
	}
	// Never over an existing recording.
	if _, err := Create(dir, Header{Width: 80, Height: 24, Kaginashi: meta(ids[0])}, nil); err == nil {
		t.Error("Create over an existing recording succeeded")
	}
	if l, err := List(filepath.Join(dir, "none"), Filter{}); err != nil || len(l) != 0 {
		t.Errorf("List of a missing dir = %v %v", l, err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"version":   `{"version":1,"width":80,"height":24}`,
		"size":      `{"version":2,"width":0,"height":24}`,
		"event":     `{"version":2,"width":80,"height":24}` + "\n[1, \"o\"]",
		"types":     `{"version":2,"width":80,"height":24}` + "\n[\"1\", \"o\", \"x\"]",
		"backwards": `{"version":2,"width":80,"height":24}` + "\n[2, \"o\", \"x\"]\n[1, \"o\", \"y\"]",
	} {
		if _, _, err := Parse(strings.NewReader(in), 0); err == nil {
			t.Errorf("%s: Parse accepted %q", name, in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":2,"width":80,"height":24,"timestamp":1}` + "\n[0.5, \"o\", \"hi\"]\n[1, \"r\", \"10x10\"]\n"))
	f.Add([]byte(`{"version":2,"width":80,"height":24}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, evs, err := Parse(bytes.NewReader(b), 4096)
		if err != nil {
			return
		}
		// What parses survives a rewrite.
		var buf bytes.Buffer
		c := &clock{time.Unix(h.Timestamp, 0)}
		w, err := NewWriter(&buf, h, c.now)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Code == "o" {
				_ = w.Output([]byte(ev.Data))
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Parse(&buf, 0); err != nil {
			t.Fatalf("rewritten recording does not parse: %v\n%s", err, buf.String())
		}
	})
}

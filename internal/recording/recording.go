// Package recording writes and reads terminal session recordings in
// asciinema's asciicast v2 format (https://docs.asciinema.org/manual/asciicast/v2/):
// a JSON header line, then one JSON array per event, [seconds, "o", data].
// Any player of the format (the console's, asciinema's) plays them.
//
// Recordings fail closed: every event is written through to the file as
// it happens and a write error is returned at once, so that the caller
// ends the session rather than let it go on unrecorded.
package recording

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Header is the asciicast v2 header. Kaginashi says who recorded what;
// players ignore fields they do not know.
type Header struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Kaginashi *Meta             `json:"kaginashi,omitempty"`
}

// Meta is kaginashi's own header field.
type Meta struct {
	ID         string `json:"id"`
	UserName   string `json:"userName"`
	UserARN    string `json:"userArn"`
	InstanceID string `json:"instanceId"`
	OSUser     string `json:"osUser"`
	// Input is true when keystrokes are recorded too ("i" events). By
	// default only output is: what people type includes passwords typed
	// at prompts that do not echo them.
	Input bool `json:"input,omitempty"`
}

// Event is one recorded event: seconds since the start, the code ("o"
// output, "i" input, "r" resize to "COLSxROWS"), and the data.
type Event struct {
	Time float64
	Code string
	Data string
}

// MaxHeader bounds the header line a reader accepts.
const MaxHeader = 64 << 10

// NewID makes a recording ID: "rec-" and 20 hex digits.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "rec-" + hex.EncodeToString(b[:])
}

var idPattern = regexp.MustCompile(`^rec-[0-9a-f]{20}$`)

// ValidID reports whether id is a recording ID (and so a safe file name).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Writer appends events to a recording.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	closer  io.Closer
	start   time.Time
	now     func() time.Time
	pending []byte // an incomplete UTF-8 sequence held for the next output
	err     error
	n       int64
}

// NewWriter writes the header to w and returns a writer for the events.
// now is the clock (time.Now when nil); the start is h.Timestamp's moment
// as now tells it.
func NewWriter(w io.Writer, h Header, now func() time.Time) (*Writer, error) {
	if now == nil {
		now = time.Now
	}
	h.Version = 2
	start := now()
	if h.Timestamp == 0 {
		h.Timestamp = start.Unix()
	}
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("recording: encoding the header: %w", err)
	}
	rw := &Writer{w: w, start: start, now: now}
	if err := rw.writeLine(line); err != nil {
		return nil, err
	}
	return rw, nil
}

// Create makes DIR/ID.cast (the directory 0700, the file 0600, never an
// existing one) and writes the header.
func Create(dir string, h Header, now func() time.Time) (*Writer, error) {
	if h.Kaginashi == nil || !ValidID(h.Kaginashi.ID) {
		return nil, errors.New("recording: the header needs a valid kaginashi.id")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, h.Kaginashi.ID+".cast"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	w, err := NewWriter(f, h, now)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.closer = f
	return w, nil
}

func (w *Writer) writeLine(line []byte) error {
	if w.err != nil {
		return w.err
	}
	line = append(line, '\n')
	n, err := w.w.Write(line)
	w.n += int64(n)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("recording: %w", err)
	}
	return w.err
}

func (w *Writer) event(code string, data []byte) error {
	t := w.now().Sub(w.start).Seconds()
	if t < 0 {
		t = 0
	}
	line, err := json.Marshal([]any{json.Number(fmt.Sprintf("%.6f", t)), code, string(data)})
	if err != nil {
		return err
	}
	return w.writeLine(line)
}

// Output records terminal output. A UTF-8 sequence split between two
// reads is held back and recorded whole with the next output, so that
// Japanese (any multi-byte text) plays back intact.
func (w *Writer) Output(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	data := append(w.pending, b...)
	cut := completeUTF8(data)
	w.pending = append([]byte(nil), data[cut:]...)
	if cut == 0 {
		return nil
	}
	return w.event("o", data[:cut])
}

// Input records keystrokes (only for recordings whose header says so).
func (w *Writer) Input(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.event("i", b)
}

// Resize records a terminal size change.
func (w *Writer) Resize(cols, rows int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.event("r", fmt.Appendf(nil, "%dx%d", cols, rows))
}

// Bytes is how much has been written.
func (w *Writer) Bytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close writes what output is held back and closes the file. The error is
// the first write error, if any.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 && w.err == nil {
		_ = w.event("o", w.pending)
		w.pending = nil
	}
	err := w.err
	if w.closer != nil {
		if cerr := w.closer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("recording: %w", cerr)
		}
		w.closer = nil
	}
	return err
}

// completeUTF8 returns how much of b ends on a rune boundary: a trailing
// incomplete (but so far valid) sequence of at most 3 bytes is excluded.
func completeUTF8(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return len(b) // ASCII: complete
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return len(b)
			}
			return len(b) - i
		}
	}
	return len(b)
}

// ReadHeader reads a recording's header line.
func ReadHeader(r io.Reader) (Header, error) {
	br := bufio.NewReaderSize(r, 4096)
	line, err := readLine(br, MaxHeader)
	if err != nil {
		return Header{}, err
	}
	return parseHeader(line)
}

func parseHeader(line []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return Header{}, fmt.Errorf("recording: the header is not JSON: %w", err)
	}
	if h.Version != 2 {
		return Header{}, fmt.Errorf("recording: version %d, want asciicast v2", h.Version)
	}
	if h.Width < 1 || h.Height < 1 || h.Width > 10000 || h.Height > 10000 {
		return Header{}, fmt.Errorf("recording: terminal size %dx%d is not valid", h.Width, h.Height)
	}
	return h, nil
}

func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) == 0 {
				return nil, io.EOF
			}
			if err != io.EOF {
				return nil, fmt.Errorf("recording: %w", err)
			}
		}
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("recording: a line longer than %d bytes", max)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// Parse reads a whole recording: its header and events, at most maxLine
// bytes per line (0: 1 MiB). Times must not go backwards.
func Parse(r io.Reader, maxLine int) (Header, []Event, error) {
	if maxLine <= 0 {
		maxLine = 1 << 20
	}
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := readLine(br, MaxHeader)
	if err != nil {
		if err == io.EOF {
			return Header{}, nil, errors.New("recording: empty")
		}
		return Header{}, nil, err
	}
	h, err := parseHeader(line)
	if err != nil {
		return Header{}, nil, err
	}
	var evs []Event
	last := 0.0
	for n := 2; ; n++ {
		line, err := readLine(br, maxLine)
		if err == io.EOF {
			return h, evs, nil
		}
		if err != nil {
			return h, evs, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(line, &raw); err != nil || len(raw) != 3 {
			return h, evs, fmt.Errorf("recording: line %d is not an event [time, code, data]", n)
		}
		var ev Event
		if json.Unmarshal(raw[0], &ev.Time) != nil || json.Unmarshal(raw[1], &ev.Code) != nil || json.Unmarshal(raw[2], &ev.Data) != nil {
			return h, evs, fmt.Errorf("recording: line %d: an event is [number, string, string]", n)
		}
		if ev.Time < last || ev.Time > 1e9 {
			return h, evs, fmt.Errorf("recording: line %d: time %v goes backwards or is out of range", n, ev.Time)
		}
		if ev.Code == "" || strings.ContainsAny(ev.Code, "\x00\n") {
			return h, evs, fmt.Errorf("recording: line %d: empty event code", n)
		}
		last = ev.Time
		evs = append(evs, ev)
	}
}

// Info describes a stored recording for lists.
type Info struct {
	ID              string    `json:"id"`
	UserName        string    `json:"userName"`
	UserARN         string    `json:"userArn"`
	InstanceID      string    `json:"instanceId"`
	OSUser          string    `json:"osUser"`
	StartTime       time.Time `json:"startTime"`
	EndTime         time.Time `json:"endTime"`
	Bytes           int64     `json:"bytes"`
	DurationSeconds float64   `json:"durationSeconds"`
}

// Filter narrows List; zero fields match everything.
type Filter struct {
	UserName   string
	InstanceID string
	From, To   time.Time // by start time: From inclusive, To exclusive
}

// List returns the recordings in dir, newest first. The end is the file's
// last write, so a running session's recording shows how far it got.
// Files that are not recordings are skipped.
func List(dir string, f Filter) ([]Info, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return []Info{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	out := []Info{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".cast")
		if !ok || !ValidID(id) || !e.Type().IsRegular() {
			continue
		}
		info, err := stat(filepath.Join(dir, e.Name()))
		if err != nil || info.ID != id {
			continue
		}
		if (f.UserName != "" && info.UserName != f.UserName) || (f.InstanceID != "" && info.InstanceID != f.InstanceID) ||
			(!f.From.IsZero() && info.StartTime.Before(f.From)) || (!f.To.IsZero() && !info.StartTime.Before(f.To)) {
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartTime.Equal(out[j].StartTime) {
			return out[i].StartTime.After(out[j].StartTime)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func stat(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	h, err := ReadHeader(f)
	if err != nil {
		return Info{}, err
	}
	if h.Kaginashi == nil {
		return Info{}, errors.New("recording: not kaginashi's")
	}
	m := h.Kaginashi
	start := time.Unix(h.Timestamp, 0).UTC()
	end := fi.ModTime().UTC()
	d := end.Sub(start).Seconds()
	if d < 0 {
		d = 0
	}
	return Info{ID: m.ID, UserName: m.UserName, UserARN: m.UserARN, InstanceID: m.InstanceID, OSUser: m.OSUser,
		StartTime: start, EndTime: end, Bytes: fi.Size(), DurationSeconds: d}, nil
}

// Get returns one recording's description.
func Get(dir, id string) (Info, error) {
	if !ValidID(id) {
		return Info{}, os.ErrNotExist
	}
	return stat(filepath.Join(dir, id+".cast"))
}

// Open opens one recording for reading; os.ErrNotExist for an unknown or
// malformed ID.
func Open(dir, id string) (*os.File, error) {
	if !ValidID(id) {
		return nil, os.ErrNotExist
	}
	return os.Open(filepath.Join(dir, id+".cast"))
}

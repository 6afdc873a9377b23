package audit

import (
	"fmt"
	"os"
	"sync"
)

// FileSink is the JSON-lines file (--audit-log): appended to, 0600, and
// reopened by path on Reopen (SIGHUP), so that logrotate can move the file
// away and the next event starts a new one without a restart.
type FileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFileSink opens (creating, 0600) path for appending.
func OpenFileSink(path string) (*FileSink, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &FileSink{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return f, nil
}

// Write appends one record.
func (s *FileSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, fmt.Errorf("audit log %s: closed", s.path)
	}
	return s.f.Write(b)
}

// Reopen opens the path afresh and closes the old file. When the path
// cannot be opened, the old file is kept, so no event is lost to the
// rotation, and the error says why.
func (s *FileSink) Reopen() error {
	f, err := openAppend(s.path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

//go:build unix

package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestAuditLogNamedPipe: an --audit-log that is a named pipe, read by a
// reader that stops at the first EOF (cat, a simple log shipper), keeps
// that reader while the server runs. The start-up check opened the pipe for writing
// and closed it again: the reader saw EOF and went away, and the server's
// own open then blocked for ever waiting for a reader — the server never
// started.
func TestAuditLogNamedPipe(t *testing.T) {
	fx := t.TempDir()
	fifo := filepath.Join(fx, "audit.pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		// Unblock a writer still waiting for a reader (the failure).
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			f.Close()
		}
	})
	var got bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		f, err := os.Open(fifo) // blocks until a writer opens it
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = io.Copy(&got, f) // until the first EOF, as cat
	}()

	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: filepath.Join(fx, "kd"), Insecure: true, Listen: "127.0.0.1:0", Stdout: io.Discard, NoConsole: true,
			AuditLog: fifo, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not start with a named pipe as its audit log")
	}
	select {
	case <-read:
		t.Fatalf("the pipe's reader saw EOF while the server was running (read %q)", got.String())
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	<-read
}

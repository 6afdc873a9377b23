package agentmetrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/kaginashi/kaginashi/internal/authkeys"
)

// AddRefusals adds the AuthorizedKeysCommand's refusals of one login.
func (r *Registry) AddRefusals(ref *authkeys.Refusals) {
	for i, n := range ref {
		if n > 0 {
			r.akcRefused[i].Add(n)
		}
	}
}

// ServeRefusals binds the AuthorizedKeysCommand's refusal socket of the
// data directory dir (authkeys.RefusalSocketPath; internal/authkeys'
// refusals.go says why a datagram socket) and counts what arrives on it
// until ctx ends or stop is called (stop also waits for the socket to be
// removed: call it before the process exits). It returns once the socket
// is bound, or why it could not be: the agent then runs without these
// counts.
//
// The socket is mode 0666: sshd runs the command as an unprivileged user
// (AuthorizedKeysCommandUser), which needs write permission to send. Only
// the agent (root) can create files in keys/, so nobody else can put a
// socket of their own in its place. What arrives is parsed strictly
// (authkeys.ParseRefusals) and anything else is dropped.
func (r *Registry) ServeRefusals(ctx context.Context, dir string, log *slog.Logger) (stop func(), err error) {
	path := authkeys.RefusalSocketPath(dir)
	// A socket left by an agent that did not stop cleanly is replaced;
	// anything else at that path is not ours to remove.
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("refusal socket %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("refusal socket: removing a stale one: %w", err)
		}
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("refusal socket: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		c.Close()
		os.Remove(path)
		return nil, fmt.Errorf("refusal socket: %w", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			c.Close()
			os.Remove(path)
		})
	}
	context.AfterFunc(ctx, stop)
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := c.ReadFromUnix(buf)
			if err != nil {
				// A datagram socket's read fails only once closed, or for
				// good: no retry loop to spin in.
				if !errors.Is(err, net.ErrClosed) {
					log.Warn("the refusal socket failed; the AuthorizedKeysCommand's refusals are no longer counted", "err", err)
				}
				return
			}
			ref, err := authkeys.ParseRefusals(buf[:n])
			if err != nil {
				log.Debug("dropped a datagram on the refusal socket", "err", err, "bytes", n)
				continue
			}
			r.AddRefusals(&ref)
		}
	}()
	return stop, nil
}

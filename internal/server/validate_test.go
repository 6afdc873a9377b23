package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefusedStartLeavesNothing: each bad option is refused before the
// data directory (master key, database) is created.
func TestRefusedStartLeavesNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"short account", func(o *Options) { o.AccountID = "12345" }, "--account-id"},
		{"letters in account", func(o *Options) { o.AccountID = "12345678901a" }, "--account-id"},
		{"region with a slash", func(o *Options) { o.Region = "us-east-1/x" }, "--region"},
		{"region in capitals", func(o *Options) { o.Region = "US-EAST-1" }, "--region"},
		{"listen without port", func(o *Options) { o.Listen = "localhost" }, "--listen"},
		{"listen port too big", func(o *Options) { o.Listen = ":70000" }, "--listen"},
		{"metrics listen", func(o *Options) { o.MetricsListen = "9090" }, "--metrics-listen"},
		{"public URL without scheme", func(o *Options) { o.PublicURL = "kaginashi.example.com" }, "--public-url"},
		{"peer URL", func(o *Options) { o.PeerURL = "ftp://x" }, "--peer-url"},
		{"store scheme", func(o *Options) { o.StoreURL = "mysql://u:secret@h/db" }, "--store"},
		{"sqlite without path", func(o *Options) { o.StoreURL = "sqlite:" }, "--store"},
		{"trusted proxy", func(o *Options) { o.TrustedProxies = []string{"10.0.0.0/99"} }, "--trusted-proxy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kd")
			o := Options{DataDir: dir, Insecure: true, Listen: "127.0.0.1:0", Stdout: io.Discard,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			c.set(&o)
			// A start that is not refused serves until this ends.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := Run(ctx, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want an error naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the store URL's password: %v", err)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				entries, _ := os.ReadDir(dir)
				t.Errorf("refused start (%v) left the data dir behind: %v", err, entries)
			}
		})
	}
}

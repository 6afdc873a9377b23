package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMetricsOnTheAPIAddressLeavesNothing: --metrics-listen on --listen's
// address is refused before the data dir. The bind-and-release check of
// the metrics port ran before the API listener existed, so it passed; the
// API then took the port, and the metrics listener failed only after
// master.key and the database had been written.
func TestMetricsOnTheAPIAddressLeavesNothing(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	free.Close()
	for _, metrics := range []string{addr, ":" + port, "localhost:" + port} {
		t.Run(metrics, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kd")
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			o := Options{DataDir: dir, Insecure: true, Listen: addr, MetricsListen: metrics, Stdout: io.Discard, NoConsole: true,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(string) { cancel() }}
			err := Run(ctx, o)
			if err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
				t.Errorf("Run = %v, want an error naming --metrics-listen", err)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				entries, _ := os.ReadDir(dir)
				t.Errorf("refused start (%v) left the data dir behind: %v", err, entries)
			}
		})
	}
}

package cli

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// newLogger is the process's structured logger: text for people, JSON
// with KAGINASHI_LOG_FORMAT=json; KAGINASHI_LOG_LEVEL=debug for more.
func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("KAGINASHI_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(os.Getenv("KAGINASHI_LOG_FORMAT"), "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

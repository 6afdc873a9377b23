package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/server"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// Server is a serving kaginashi process with what clients need to reach it.
type Server struct {
	*Proc
	Engine    string // sqlite or postgres
	StoreURL  string // as the server opens it
	Region    string
	Account   string
	Root      Creds
	HTTP      *http.Client
	Calls     *CallLog
	StartedAt time.Time
}

// Creds are an access key.
type Creds struct {
	Who    string // "root", a user name, or "" for keys nobody owns
	ID     string
	Secret string
}

// Engines are the store engines every API flow runs on.
var Engines = []string{"sqlite", "postgres"}

// StoreFor returns the --store URL for an engine ("" for SQLite's default).
// PostgreSQL needs pgtest.Main in the suite's TestMain.
func StoreFor(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case "sqlite":
		return ""
	case "postgres":
		return pgtest.Start(t)
	}
	t.Fatalf("unknown engine %q", engine)
	return ""
}

// StartServer starts a server on engine with the given extra flags and
// stops it (asserting a clean exit) when the test ends.
func StartServer(t testing.TB, engine string, args ...string) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	storeURL := StoreFor(t, engine)
	p := StartProc(t, ServerConfig{DataDir: dir, Store: storeURL, Args: args})
	t.Cleanup(func() { p.Stop(t) })
	return NewServer(t, p, engine)
}

// NewServer describes a serving process for clients: its root credentials,
// account and region, an HTTP client trusting its CA.
func NewServer(t testing.TB, p *Proc, engine string) *Server {
	t.Helper()
	s := &Server{Proc: p, Engine: engine, StoreURL: p.Cfg.Store, Calls: &CallLog{}, StartedAt: time.Now()}
	if s.StoreURL == "" {
		s.StoreURL = "sqlite:" + filepath.Join(p.Cfg.DataDir, "kaginashi.db")
	}
	s.HTTP = p.HTTPClient(t)
	root, err := ReadRootCredentials(filepath.Join(p.Cfg.DataDir, "root-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	s.Root = root
	s.Account, s.Region = p.Identity(t)
	return s
}

// ReadRootCredentials parses DIR/root-credentials (AWS credentials-file
// format, profile kaginashi-root).
func ReadRootCredentials(path string) (Creds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Creds{}, err
	}
	c := Creds{Who: "root"}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section != "kaginashi-root" {
				continue
			}
			switch strings.TrimSpace(k) {
			case "aws_access_key_id":
				c.ID = strings.TrimSpace(v)
			case "aws_secret_access_key":
				c.Secret = strings.TrimSpace(v)
			}
		}
	}
	if c.ID == "" || c.Secret == "" {
		return c, fmt.Errorf("%s: no [kaginashi-root] aws_access_key_id / aws_secret_access_key:\n%s", path, b)
	}
	return c, nil
}

// OpenStore opens the server's database from the test process (SQLite in
// WAL mode admits a second process), closed when the test ends.
func (s *Server) OpenStore(t testing.TB) store.Store {
	t.Helper()
	st, err := server.OpenStore(context.Background(), s.StoreURL)
	if err != nil {
		t.Fatalf("opening the server's store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

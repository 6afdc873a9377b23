// Package pgtest starts a real, private PostgreSQL server for tests: initdb
// into a temporary directory, postgres listening only on a unix socket in
// that directory, trust authentication. No mock stands in for PostgreSQL.
//
// A test package shares one server and gives each test a database of its
// own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.Start(t) // a fresh, empty database
//		...
//	}
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb
// and postgres run as the "postgres" system user (Debian's postgresql
// package creates it), which owns the temporary directory.
//
// Without the server binaries the tests fail, telling how to install them
// (scripts/deps.sh test); KAGINASHI_SKIP_POSTGRES=1 skips them instead.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SkipEnv names the variable that, set to 1, skips PostgreSQL tests.
const SkipEnv = "KAGINASHI_SKIP_POSTGRES"

// shared is the one server of a test binary. It is package state because
// tests reach it through Start and only TestMain (Main) can stop it after
// the last test.
var shared struct {
	mu   sync.Mutex
	main bool // Main is running the tests, so the server will be stopped
	srv  *Server
	err  error // a failed start, reported to every test that asks
}

// Main runs the package's tests and then stops the shared server, if a
// test started it. Call it from TestMain.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	srv := shared.srv
	shared.mu.Unlock()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Start returns the URL of a new, empty database on the package's shared
// server, starting the server on first use. The database is dropped when
// the test ends.
func Start(t testing.TB) string {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skip("PostgreSQL tests skipped: " + SkipEnv + "=1")
	}
	shared.mu.Lock()
	if !shared.main {
		shared.mu.Unlock()
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain, so that the shared server is stopped after the tests")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = NewServer(context.Background())
	}
	srv, err := shared.srv, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return srv.NewDatabase(t)
}

// Server is a running PostgreSQL server in a temporary directory.
type Server struct {
	dir     string // data/, the socket and the log live here
	log     string
	cmd     *exec.Cmd
	done    chan struct{} // closed once postgres has exited
	waitErr error         // set before done closes
	dbs     atomic.Int64  // databases made so far, for unique names
	stop    sync.Once
	stopErr error
	opts    Options
}

// Options change how NewServerWith runs the cluster.
type Options struct {
	// Durable keeps PostgreSQL's durability defaults (fsync, synchronous
	// commit, full page writes), for benchmarks of "durable before the
	// answer leaves"; tests trade them for speed.
	Durable bool
	// Settings are extra "name=value" server settings (-c).
	Settings []string
}

// binaries are the server programs of one PostgreSQL installation.
type binaries struct{ initdb, postgres string }

// findBinaries prefers Debian's layout, newest major version first, and
// falls back to PATH (other distributions, Homebrew).
func findBinaries(debianGlob string) (binaries, error) {
	dirs, _ := filepath.Glob(debianGlob)
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		b := binaries{filepath.Join(d, "initdb"), filepath.Join(d, "postgres")}
		if isExec(b.initdb) && isExec(b.postgres) {
			return b, nil
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return binaries{initdb, postgres}, nil
	}
	return binaries{}, errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH: " +
		"run scripts/deps.sh test to install them (Debian's postgresql package), or set " + SkipEnv + "=1 to skip the PostgreSQL tests")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runAs returns the credential to run the server with: none normally, the
// postgres user's when we are root.
func runAs(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL must run as the postgres user, which does not exist (%v): run scripts/deps.sh test", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// serverEnv is a small, predictable environment: no PG* variables from
// the caller's shell, the C locale, UTC.
func serverEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC"}
}

// NewServer initializes a cluster in a new temporary directory and starts
// postgres on it. Stop it with Stop.
func NewServer(ctx context.Context) (*Server, error) { return NewServerWith(ctx, Options{}) }

// NewServerWith is NewServer with options.
func NewServerWith(ctx context.Context, o Options) (*Server, error) {
	bin, err := findBinaries("/usr/lib/postgresql/*/bin")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kaginashi-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, log: filepath.Join(dir, "postgres.log"), done: make(chan struct{}), opts: o}
	if err := s.start(ctx, bin); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin binaries) error {
	cred, err := runAs(s.dir)
	if err != nil {
		return err
	}
	data := filepath.Join(s.dir, "data")

	var out bytes.Buffer
	initArgs := []string{"-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"}
	if !s.opts.Durable {
		initArgs = append(initArgs, "--no-sync")
	}
	initdb := exec.CommandContext(ctx, bin.initdb, initArgs...)
	initdb.Dir = s.dir // the postgres user may not be able to enter our working directory
	initdb.Env = serverEnv()
	initdb.Stdout, initdb.Stderr = &out, &out
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := initdb.Run(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out.Bytes())
	}

	logf, err := os.OpenFile(s.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	// Only a unix socket in the private directory: no port to collide
	// with another server (Debian's own cluster listens on 5432). Nothing
	// here must survive a crash, so durability is traded for speed.
	args := []string{"-D", data, "-k", s.dir, "-c", "listen_addresses=", "-c", "max_connections=200"}
	if !s.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB")
	}
	for _, o := range s.opts.Settings {
		if o = strings.TrimSpace(o); o != "" {
			args = append(args, "-c", o)
		}
	}
	s.cmd = exec.Command(bin.postgres, args...)
	s.cmd.Dir = s.dir
	s.cmd.Env = serverEnv()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// If the test binary dies without stopping the server (a panic, a
	// go test -timeout kill), the kernel sends postgres SIGQUIT: immediate
	// shutdown instead of an orphaned server.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits,
		// not the process; the Go runtime may retire an idle thread. So
		// this goroutine keeps its thread, blocked in Wait, for as long as
		// postgres runs.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited (%v):\n%s", s.waitErr, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("pgtest: postgres not ready after 60s (%v):\n%s", err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// URL is a connection URL for database db on this server.
func (s *Server) URL(db string) string {
	q := url.Values{"host": {s.dir}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// NewDatabase creates an empty database, drops it when t ends, and
// returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	if err := s.admin(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		// FORCE: a test that failed may have left connections open.
		if err := s.admin(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return s.URL(name)
}

func (s *Server) admin(ctx context.Context, sql string) error { return s.Exec(ctx, "postgres", sql) }

// Exec runs one statement on database db.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the server down (fast shutdown: sessions are ended) and
// removes its directory.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				s.cmd.Process.Kill()
				<-s.done
				s.stopErr = errors.New("pgtest: postgres did not stop within 30s; killed")
			}
		}
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pgtest: %w", err)
		}
	})
	return s.stopErr
}

// Dir is the server's temporary directory (for logs when debugging).
func (s *Server) Dir() string { return s.dir }

// PID is the postmaster's process ID (benchmarks count its CPU).
func (s *Server) PID() int { return s.cmd.Process.Pid }

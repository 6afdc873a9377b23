package main

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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a private PostgreSQL cluster in a temporary directory,
// listening only on a unix socket there. internal/store/postgres/pgtest
// does the same for tests, but it trades durability for speed
// (fsync=off, synchronous_commit=off) and hands databases out per
// testing.TB; a benchmark of "durable before the answer leaves" needs the
// production defaults, so this is the small equivalent with PostgreSQL's
// own defaults, plus whatever -pg-opts adds.
type pgServer struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func findPG() (initdb, postgres string, err error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if _, e1 := os.Stat(i); e1 == nil {
			if _, e2 := os.Stat(p); e2 == nil {
				return i, p, nil
			}
		}
	}
	i, e1 := exec.LookPath("initdb")
	p, e2 := exec.LookPath("postgres")
	if e1 == nil && e2 == nil {
		return i, p, nil
	}
	return "", "", errors.New("PostgreSQL server binaries not found (run scripts/deps.sh test, or -targets bare,sqlite)")
}

// pgCredential: PostgreSQL refuses to run as root, so as root it runs as
// the postgres user, which then owns the directory.
func pgCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// startPG initializes and starts a cluster. opts are extra "name=value"
// settings (-c).
func startPG(ctx context.Context, opts []string) (*pgServer, error) {
	initdb, postgres, err := findPG()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kaginashi-bench-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := pgCredential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC"}
	data := filepath.Join(dir, "data")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out.Bytes())
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	if cred != nil {
		_ = os.Chown(logf.Name(), int(cred.Uid), int(cred.Gid))
	}
	args := []string{"-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "max_connections=200",
		"-c", "shared_preload_libraries=pg_stat_statements"}
	for _, o := range opts {
		if o = strings.TrimSpace(o); o != "" {
			args = append(args, "-c", o)
		}
	}
	s := &pgServer{dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(postgres, args...)
	s.cmd.Dir, s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = dir, env, logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig follows the thread that started the child: keep it.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited (%v):\n%s", s.err, log)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("postgres not ready after 60s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL of database db.
func (s *pgServer) URL(db string) string {
	q := url.Values{"host": {s.dir}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Exec runs one statement on database db.
func (s *pgServer) Exec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// Settings reads the durability settings in force, for the report.
func (s *pgServer) Settings(ctx context.Context) string {
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "?"
	}
	defer c.Close(ctx)
	var parts []string
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers"} {
		var v string
		if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err == nil {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}

// stmtStat is one pg_stat_statements row.
type stmtStat struct {
	Query  string
	Calls  int64
	TotalM float64 // total execution time, ms
}

// Statements reads pg_stat_statements for database db, most called first.
func (s *pgServer) Statements(ctx context.Context, db string) ([]stmtStat, error) {
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT regexp_replace(query, '\s+', ' ', 'g'), calls, total_exec_time
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY calls DESC LIMIT 15`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (stmtStat, error) {
		var st stmtStat
		err := r.Scan(&st.Query, &st.Calls, &st.TotalM)
		return st, err
	})
}

// Stop shuts the cluster down and removes its directory.
func (s *pgServer) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

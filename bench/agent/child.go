package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	_ "expvar" // runtime.MemStats at /debug/vars, next to pprof
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // the children serve pprof on a side port
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/server"
)

// The servers run in child processes — this program started again with
// KAGINASHI_BENCH_ROLE set — so that their RSS and CPU time are theirs
// alone, apart from the simulated agents and the load generator:
//
//	server  server.Run, as `kaginashi server` runs it (TLS, SQLite), with
//	        net/http/pprof on a side port
//	bare    the baseline for 10,000 agents: the same TLS configuration
//	        (certificate, agent CA, client-certificate check), HTTP
//	        upgrade and yamux settings, answering hellos and heartbeats —
//	        and nothing else (no store, no API)
const (
	envRole = "KAGINASHI_BENCH_ROLE"
	envData = "KAGINASHI_BENCH_DATA"
	// envNoKeepAlive=1 turns the bare holder's yamux keepalive off (the
	// what-if of part 4: liveness from the agents' heartbeats alone).
	envNoKeepAlive = "KAGINASHI_BENCH_NO_KEEPALIVE"
)

// The deployment's identity: the account and region of
// examples/seed-policy-filled.json.
const (
	benchRegion  = "ap-northeast-1"
	benchAccount = "123456789012"
)

// childMain runs a child role and exits.
func childMain(role string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pp, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		fmt.Printf("PPROF %s\n", pp.Addr())
		go func() { _ = http.Serve(pp, nil) }()
	}
	switch role {
	case "server":
		err = childServer(ctx)
	case "bare":
		err = childBare(ctx)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/agent %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func childServer(ctx context.Context) error {
	dir := os.Getenv(envData)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return server.Run(ctx, server.Options{
		AuditLinger: server.DefaultAuditLinger,
		DataDir:     dir,
		Listen:      "127.0.0.1:0",
		Region:      benchRegion,
		AccountID:   benchAccount,
		RateLimit:   -1, // the benchmark's pushes are not to be throttled
		Stdout:      io.Discard,
		Log:         log,
		Ready: func(base string) {
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "https://"))
			fmt.Printf("READY https://localhost:%s\n", port)
		},
	})
}

// childBare serves the agent protocol's floor on the kaginashi server's
// data directory (its TLS certificate and agent CA), after that server
// stopped.
func childBare(ctx context.Context) error {
	dir := os.Getenv(envData)
	key, created, err := seal.LoadOrCreate(filepath.Join(dir, "master.key"))
	if err != nil || created {
		return fmt.Errorf("the server's master key: created %v, %v", created, err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		return err
	}
	st, err := server.OpenStore(ctx, "sqlite:"+filepath.Join(dir, "kaginashi.db"))
	if err != nil {
		return err
	}
	keys, err := gateway.LoadKeys(ctx, st, sealer, time.Now())
	st.Close()
	if err != nil {
		return err
	}
	cert, _, err := bootstrap.EnsureTLS(dir, []string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		return err
	}
	pool := keys.CAPool()
	keepAlive := os.Getenv(envNoKeepAlive) != "1"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+agentproto.ConnectPath, func(w http.ResponseWriter, r *http.Request) {
		bareConnect(w, r, pool, keepAlive)
	})
	srv := &http.Server{ // kaginashi's limits
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)).Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	fmt.Printf("READY https://localhost:%d\n", ln.Addr().(*net.TCPAddr).Port)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return srv.Close()
}

// bareConnect is gateway.HandleConnect without the store: the client
// certificate checked again, the upgrade, yamux with the gateway's
// settings, the hello answered, every heartbeat answered.
func bareConnect(w http.ResponseWriter, r *http.Request, pool *x509.CertPool, keepAlive bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, "no client certificate", http.StatusUnauthorized)
		return
	}
	cert := r.TLS.PeerCertificates[0]
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil ||
		inventory.ValidInstanceID(cert.Subject.CommonName) != nil {
		http.Error(w, "bad client certificate", http.StatusUnauthorized)
		return
	}
	id := cert.Subject.CommonName
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + agentproto.UpgradeProtocol + "\r\nConnection: Upgrade\r\n\r\n"); err != nil || brw.Flush() != nil {
		conn.Close()
		return
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = keepAlive
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.ConnectionWriteTimeout = 10 * time.Second
	mux, err := yamux.Server(bufConn{conn, brw.Reader}, cfg)
	if err != nil {
		conn.Close()
		return
	}
	defer mux.Close()
	stream, err := mux.AcceptStream()
	if err != nil {
		return
	}
	defer stream.Close()
	c := agentproto.NewConn(stream)
	var h agentproto.Header
	var hello agentproto.Hello
	if c.Recv(&h) != nil || h.Type != agentproto.TypeControl || c.Recv(&hello) != nil || hello.InstanceID != id {
		return
	}
	if c.Send(agentproto.Beat{ServerTime: time.Now().UnixMilli(), Echo: hello.LocalTime}) != nil {
		return
	}
	go func() {
		for {
			st, err := mux.AcceptStream()
			if err != nil {
				return
			}
			st.Close()
		}
	}()
	for {
		var hb agentproto.Heartbeat
		if c.Recv(&hb) != nil {
			return
		}
		if c.Send(agentproto.Beat{ServerTime: time.Now().UnixMilli(), Echo: hb.LocalTime}) != nil {
			return
		}
	}
}

// bufConn reads first what an HTTP reader had buffered.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// --- the parent's side ------------------------------------------------------

// child is a running server child process.
type child struct {
	role  string
	cmd   *exec.Cmd
	pid   int
	url   string // https://localhost:PORT
	pprof string // 127.0.0.1:PORT
	log   string
	done  chan struct{}
	err   error
}

// startChild starts this program in role with data directory dir, its
// stderr in logPath, and waits until it serves.
func startChild(role, dir, logPath string, env ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &child{role: role, cmd: exec.Command(self), log: logPath, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), envRole+"="+role, envData+"="+dir)
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stderr = lf
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	c.pid = c.cmd.Process.Pid
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() {
		c.err = c.cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	timeout := time.After(90 * time.Second)
	for c.url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				<-c.done
				return nil, fmt.Errorf("%s child exited (%v) before serving; see %s:\n%s", role, c.err, logPath, tail(logPath))
			}
			if v, ok := strings.CutPrefix(l, "PPROF "); ok {
				c.pprof = v
			}
			if v, ok := strings.CutPrefix(l, "READY "); ok {
				c.url = v
			}
		case <-timeout:
			c.stop()
			return nil, fmt.Errorf("%s child not serving after 90s; see %s", role, logPath)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop ends the child with SIGTERM (SIGKILL after 30 s).
func (c *child) stop() error {
	if c.exited() {
		return errors.New(c.role + " child had exited already")
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New(c.role + " child did not stop within 30s of SIGTERM")
	}
	return nil
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

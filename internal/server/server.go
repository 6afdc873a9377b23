// Package server assembles the kaginashi server from its parts — data
// directory, store, services, API handler, TLS listener — and runs it until
// its context ends. It is the composition root: the CLI turns flags into
// Options, tests start servers with it directly.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/awsapi"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/bulkio"
	"github.com/kaginashi/kaginashi/internal/clientip"
	"github.com/kaginashi/kaginashi/internal/connect"
	"github.com/kaginashi/kaginashi/internal/console"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/metrics"
	"github.com/kaginashi/kaginashi/internal/peer"
	"github.com/kaginashi/kaginashi/internal/ratelimit"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/internal/webui"
)

// DefaultAuditLinger is --audit-commit-linger's default. On this project's
// 2-core benchmark machine, 2 ms turned 1.3 events per commit into 5–8
// and cut SendSSHPublicKey's CPU per call by about 15 % (BENCHMARKS.md).
const DefaultAuditLinger = 2 * time.Millisecond

// DefaultUnauthenticatedAuditRate and DefaultUnauthenticatedAuditBurst
// are --unauthenticated-audit-rate's and -burst's defaults: far above
// what a client with a wrong key or clock sends (its SDK does not retry
// authentication errors), far below what a flood sends (2,000 unsigned
// calls took 7.8 s from one client: S6-H5's measurement).
const (
	DefaultUnauthenticatedAuditRate  = 5.0
	DefaultUnauthenticatedAuditBurst = 50
)

// Options configure a server. Zero values take the documented defaults.
type Options struct {
	DataDir   string
	Listen    string // default ":8443"
	PublicURL string // default https://localhost:PORT
	StoreURL  string // sqlite:PATH (default DIR/kaginashi.db) or postgres://...
	Region    string // default us-east-1 (fixed at first start)
	AccountID string // default generated (fixed at first start)
	TLSCert   string
	TLSKey    string
	Insecure  bool // plain HTTP

	// AuditLog, when set, also appends every audit event to this JSON-lines file.
	AuditLog string
	// RateLimit is API calls per second per access key (0: 50), RateBurst
	// the bucket size (0: 100). A negative RateLimit disables throttling.
	RateLimit float64
	RateBurst int
	// UnauthenticatedAuditRate is, per source address, how many calls a
	// second refused before a principal is known (missing or bad
	// signature, unknown access key) are audited one by one (0:
	// DefaultUnauthenticatedAuditRate; negative: all of them), with
	// bursts of UnauthenticatedAuditBurst (0: 50). Calls beyond it are
	// answered the same and summed up in one UnauthenticatedCallsSuppressed
	// event per source every UnauthenticatedSummaryEvery (0: a minute)
	// and at shutdown.
	UnauthenticatedAuditRate    float64
	UnauthenticatedAuditBurst   int
	UnauthenticatedSummaryEvery time.Duration
	// KeyLifetime shortens pushed keys' 60 s (tests of expiry only; it
	// cannot lengthen them).
	KeyLifetime time.Duration
	// MaxTunnelDuration caps tunnels (default and most: 1 hour);
	// MaxTunnels is how many run at once (default 1000).
	MaxTunnelDuration time.Duration
	MaxTunnels        int
	// MaxTunnelsPerUser is how many one principal may hold (default 100).
	MaxTunnelsPerUser int
	// NoConsole turns the web console off (--console=false); by default
	// it is served on the API's listener.
	NoConsole bool
	// TrustedProxies are CIDRs (or addresses) of reverse proxies whose
	// X-Forwarded-For and X-Forwarded-Proto are believed: aws:SourceIp is
	// then the first address, from the right, that is not one of them.
	TrustedProxies []string
	// MetricsListen, when set, serves Prometheus metrics (GET /metrics)
	// on a listener of its own: plain HTTP, meant for localhost or a
	// private network, never the public API port.
	MetricsListen string
	// AuditRetention is how long audit events are kept in the store
	// (0: forever); older ones are deleted in batches every hour.
	AuditRetention time.Duration
	// AuditLinger (DefaultAuditLinger from the command line; zero here
	// means off) is how long an audit commit may wait for the events of
	// calls already being served, so that a busy server commits many
	// events per transaction (0: never wait). Idle servers never wait.
	AuditLinger time.Duration
	// Version is the build's version, for kaginashi_build_info.
	Version string
	// CertCheckEvery is how often the TLS certificate is checked for
	// renewal or changed files (default 1 minute).
	CertCheckEvery time.Duration
	// MetricsReady, when set, receives the metrics listener's address.
	MetricsReady func(addr string)
	// PeerURL is where the other replicas reach this one (PostgreSQL
	// stores only; default: --listen's address when it names one, else
	// the host's first non-loopback address, with the listener's port).
	// PeerCA verifies the replicas' certificates (default: DIR/tls/ca.pem,
	// or with --tls-cert the system's roots and that chain).
	PeerURL string
	PeerCA  string
	// PeerListen, when set, serves the peer API (/_peer/...) and /healthz
	// on a listener of its own, with the API listener's TLS, and the API
	// listener answers /_peer/... with 404: replica traffic can then stay
	// on a private interface. The default peer URL is then made from this
	// address. PostgreSQL stores only.
	PeerListen string
	// RefusePeerAuthV1 refuses peer requests signed v1 (--peer-auth-v1=false),
	// which this release otherwise accepts from replicas not yet upgraded.
	RefusePeerAuthV1 bool

	Stdout io.Writer // where first-start credentials are printed
	Log    *slog.Logger
	Now    func() time.Time
	Getenv func(string) string

	// Ready, when set, receives the server's base URL once it serves.
	Ready func(baseURL string)
}

func (o *Options) defaults() error {
	if o.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	o.DataDir = abs
	if o.Listen == "" {
		o.Listen = ":8443"
	}
	if o.StoreURL == "" {
		o.StoreURL = "sqlite:" + filepath.Join(o.DataDir, "kaginashi.db")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.Insecure && o.TLSCert != "" {
		return errors.New("--insecure-http and --tls-cert exclude each other")
	}
	if o.RateLimit == 0 {
		o.RateLimit = 50
	}
	if o.RateBurst == 0 {
		o.RateBurst = 100
	}
	if o.UnauthenticatedAuditRate == 0 {
		o.UnauthenticatedAuditRate = DefaultUnauthenticatedAuditRate
	}
	if o.UnauthenticatedAuditBurst == 0 {
		o.UnauthenticatedAuditBurst = DefaultUnauthenticatedAuditBurst
	}
	if math.IsNaN(o.UnauthenticatedAuditRate) || math.IsInf(o.UnauthenticatedAuditRate, 0) || o.UnauthenticatedAuditBurst < 0 {
		return errors.New("--unauthenticated-audit-rate must be a number of calls a second (0: audit all) and --unauthenticated-audit-burst a positive count")
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.AuditLinger < 0 || o.AuditLinger > time.Second {
		return errors.New("--audit-commit-linger must be between 0 (off) and 1s")
	}
	if o.AuditRetention < 0 {
		return errors.New("--audit-retention must not be negative (0 keeps events forever)")
	}
	if o.CertCheckEvery <= 0 {
		o.CertCheckEvery = time.Minute
	}
	return o.validate()
}

// OpenStore opens a store URL: sqlite:PATH or postgres://... .
func OpenStore(ctx context.Context, storeURL string) (store.Store, error) {
	switch {
	case strings.HasPrefix(storeURL, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(strings.TrimPrefix(storeURL, "sqlite:"), "//"))
	case strings.HasPrefix(storeURL, "postgres://"), strings.HasPrefix(storeURL, "postgresql://"):
		return postgres.Open(ctx, storeURL)
	}
	return nil, fmt.Errorf("--store %q: want sqlite:PATH or postgres://...", storeURL)
}

// Run serves until ctx ends, then stops gracefully.
func Run(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	log := o.Log
	// Listening needs no data dir: a port in use is refused before
	// anything is created in it.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.Listen, err)
	}
	defer ln.Close()
	// The peer listener too, for the same reason.
	var peerLn net.Listener
	if o.PeerListen != "" {
		if peerLn, err = net.Listen("tcp", o.PeerListen); err != nil {
			return fmt.Errorf("--peer-listen %s: %w", o.PeerListen, err)
		}
		defer peerLn.Close()
		if o.PeerURL != "" {
			if p, differs := peerURLPortDiffers(o.PeerURL, peerLn.Addr().(*net.TCPAddr).Port); differs {
				log.Warn("--peer-url names another port than --peer-listen's: right behind NAT or a port mapping, otherwise the other replicas will not reach this one",
					"peerURL", o.PeerURL, "peerURLPort", p, "peerListen", peerLn.Addr().String())
			}
		}
	}
	// PostgreSQL is reached, and the server lock taken, before the data
	// dir is made: an unreachable store, or maintenance running, refuses
	// the start with nothing made. SQLite's file needs the directory
	// first. A start refused later, while a data dir it made is still
	// empty, removes it again (makeDataDir).
	storeFirst := !strings.HasPrefix(o.StoreURL, "sqlite:")
	undoDataDir, serving := func() {}, false
	defer func() {
		if !serving {
			undoDataDir()
		}
	}()
	if !storeFirst {
		if undoDataDir, err = makeDataDir(o.DataDir); err != nil {
			return err
		}
	}
	st, err := OpenStore(ctx, o.StoreURL)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()
	// Held while the server runs, so that offline maintenance
	// (rotate-master-key) refuses to run beside it.
	unlock, lockHeld, err := holdServerLock(ctx, st, log)
	if err != nil {
		return err
	}
	defer unlock()
	if storeFirst {
		if undoDataDir, err = makeDataDir(o.DataDir); err != nil {
			return err
		}
	}
	sealer, err := bootstrap.OpenSealer(ctx, st, filepath.Join(o.DataDir, "master.key"), log)
	if err != nil {
		return err
	}
	id, err := bootstrap.EnsureIdentity(ctx, st, o.AccountID, o.Region)
	if err != nil {
		return err
	}

	scheme := "https"
	if o.Insecure {
		scheme = "http"
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if o.PublicURL == "" {
		o.PublicURL = fmt.Sprintf("%s://localhost:%d", scheme, port)
	}
	pub, err := url.Parse(o.PublicURL)
	if err != nil || pub.Host == "" {
		return fmt.Errorf("--public-url %q is not a URL", o.PublicURL)
	}

	iamSvc := iam.NewService(st, sealer, id.Account, id.Region, o.Now)
	if err := iamSvc.InstallAWSManagedPolicies(ctx); err != nil {
		return err
	}
	authz := iam.NewAuthorizer(st, sealer, id.Account)
	inv, err := inventory.New(ctx, st, id.Account, id.Region, o.PublicURL, inventory.NewEndpointID, o.Now())
	if err != nil {
		return err
	}
	rootKey, err := bootstrap.EnsureRootCredentials(ctx, iamSvc, st, sealer, o.DataDir, o.Getenv, o.Stdout)
	if err != nil {
		return err
	}
	gwKeys, err := gateway.LoadKeys(ctx, st, sealer, o.Now())
	if err != nil {
		return err
	}
	tokens := gateway.NewTokens(st, o.Now)
	gw := gateway.New(st, gwKeys, tokens, log, o.Now)
	defer gw.Close()

	var sink io.Writer
	var fileSink *audit.FileSink
	if o.AuditLog != "" {
		fileSink, err = audit.OpenFileSink(o.AuditLog)
		if err != nil {
			return fmt.Errorf("--audit-log: %w", err)
		}
		defer fileSink.Close()
		sink = fileSink
	}
	auditor := audit.NewWriter(st, sink, log, audit.WithClock(o.Now), audit.WithRecoveryProbe(auditProbeEvery, id.Account, id.Region), audit.WithLinger(o.AuditLinger))
	defer auditor.Close()
	// recorder is what the API records through: the writer, timed when
	// metrics are on.
	var recorder audit.Recorder = auditor
	var reg *metrics.Registry
	var apiMetrics awsapi.Metrics
	if o.MetricsListen != "" {
		reg = metrics.New(o.Version)
		recorder = reg.TimeAudit(auditor)
		apiMetrics = reg
	}

	sig, err := awsapi.NewSigV4(id.Region, authz, o.Now)
	if err != nil {
		return err
	}
	var limiter awsapi.Limiter
	if o.RateLimit > 0 {
		limiter = ratelimit.New(o.RateLimit, o.RateBurst, o.Now)
	}
	// Calls refused before a principal is known cost no credentials: a
	// budget per source bounds their audit rows (summaries beyond it).
	var unauth *audit.Unauthenticated
	var unauthBudget awsapi.UnauthenticatedBudget
	if o.UnauthenticatedAuditRate > 0 {
		unauth = &audit.Unauthenticated{
			Sampler: ratelimit.NewSampler(o.UnauthenticatedAuditRate, o.UnauthenticatedAuditBurst, 0, o.Now), Audit: recorder,
			Every:   o.UnauthenticatedSummaryEvery,
			Account: id.Account, Region: id.Region, Log: log, Now: o.Now,
		}
		unauthBudget = unauth
		go unauth.Run(ctx)
		// The last summaries, once nothing is served any more: deferred
		// after the audit writer's Close, so it runs before it, and after
		// the HTTP server's graceful stop at the end of Run.
		defer func() {
			if err := unauth.Flush(context.WithoutCancel(ctx)); err != nil {
				log.Error("audit: recording the last summary of unauthenticated calls failed", "err", err)
			}
		}()
	}
	// Replicas sharing PostgreSQL route pushes and tunnels to the one
	// holding the agent (peer.go).
	routeLn, routeListen := ln, o.Listen
	if peerLn != nil {
		routeLn, routeListen = peerLn, o.PeerListen
	}
	agents, router, err := newRouter(&o, routeLn, routeListen, scheme, pub, gw, st, sealer, auditor, id)
	if err != nil {
		return err
	}
	connectSvc := connect.NewService(st, agents, o.Now)
	if o.KeyLifetime > 0 {
		connectSvc.ShortenLifetime(o.KeyLifetime)
		log.Warn("pushed keys live shorter than 60 s (--key-lifetime): for tests only", "lifetime", o.KeyLifetime)
	}
	proxies, err := clientip.ParsePrefixes(o.TrustedProxies)
	if err != nil {
		return err
	}
	resolver := clientip.New(proxies)
	api := awsapi.New(awsapi.Config{Region: id.Region, Account: id.Account, Proxies: resolver,
		Tunnel: awsapi.TunnelLimits{MaxDuration: o.MaxTunnelDuration, MaxConcurrent: o.MaxTunnels, MaxPerUser: o.MaxTunnelsPerUser}}, awsapi.Deps{
		Auth: sig, Authz: authz, IAM: iamSvc, Inventory: inv, Instances: st, Connect: connectSvc, Tokens: tokens, Tunnels: agents,
		Audit: recorder, AuditLog: auditor, Limiter: limiter, Metrics: apiMetrics, Log: log, Now: o.Now,
		Unauthenticated: unauthBudget,
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz(auditor.Health))
	mux.Handle("POST /{$}", api)
	// Any other method on / (PUT, DELETE, PATCH, OPTIONS): 405 with Allow,
	// in the shape of the API the request is written for.
	mux.HandleFunc("/{$}", api.ServeMethodNotAllowed)
	if o.NoConsole {
		mux.Handle("GET /{$}", api)
	} else {
		con, err := console.New(console.Config{Account: id.Account, Region: id.Region, PublicURL: o.PublicURL, DataDir: o.DataDir,
			Insecure: o.Insecure, Proxies: resolver}, console.Deps{
			API: api, IAM: iamSvc, Authz: authz, Store: st, Inventory: inv, Tunnels: agents, Audit: auditor,
			Assets: webui.FS(), Log: log, Now: o.Now, Unauthenticated: unauthBudget,
		})
		if err != nil {
			return err
		}
		con.Routes(mux)
		// GET / is the console's page, unless it is a signed AWS Query call.
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			if console.IsAPIRequest(r) {
				api.ServeHTTP(w, r)
				return
			}
			con.ServeIndex(w, r)
		})
	}
	mux.HandleFunc("GET /openTunnel", api.ServeOpenTunnel)
	if reg != nil {
		mux.HandleFunc("POST "+agentproto.EnrollPath, reg.Enrollments(gw.HandleEnroll))
	} else {
		mux.HandleFunc("POST "+agentproto.EnrollPath, gw.HandleEnroll)
	}
	mux.HandleFunc("GET "+agentproto.ConnectPath, gw.HandleConnect)
	// With --peer-listen the peer API is on its own listener only; here
	// /_peer/... then matches nothing and gets the mux's plain 404, as
	// any path that does not exist.
	if router != nil && peerLn == nil {
		mux.Handle(peer.PathPrefix, router)
	}

	// drainH2Body around every route: an HTTP/2 client gets the whole
	// answer to a body the handler did not read to its end — the API's
	// or the console's 413 over 1 MiB, and any answer given before the
	// body was read (the console's 401 and 403, a refused enrolment).
	srv := newHTTPServer(drainH2Body(mux, readTimeout), log)
	var peerSrv *http.Server
	if peerLn != nil {
		peerSrv = newHTTPServer(peerMux(healthz(auditor.Health), router), log)
	}
	caPath, caPin := "", ""
	var certs *bootstrap.CertSource
	if !o.Insecure {
		if o.TLSCert != "" {
			certs, err = bootstrap.FileCerts(o.TLSCert, o.TLSKey, log)
			if err != nil {
				return err
			}
		} else {
			var files bootstrap.TLSFiles
			certs, files, err = bootstrap.GeneratedCerts(o.DataDir, certNames(pub.Hostname()), o.Now, log)
			if err != nil {
				return err
			}
			caPath = files.CA
			if b, err := os.ReadFile(files.CA); err == nil {
				if block, _ := pem.Decode(b); block != nil {
					sum := sha256.Sum256(block.Bytes)
					caPin = "sha256:" + hex.EncodeToString(sum[:])
				}
			}
		}
		// Agents authenticate with client certificates from the agent CA;
		// other clients present none and are not asked to.
		// GetCertificate, not Certificates: the certificate is renewed
		// (generated) or re-read (files) while the server runs.
		srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12,
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: gwKeys.CAPool()}
		if peerSrv != nil {
			// The same certificate source, so renewals and replaced
			// files reach both listeners. Replicas authenticate with
			// the HMAC key, not certificates: none is asked for.
			peerSrv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
		}
		go certs.Run(ctx, o.CertCheckEvery)
	}
	if router != nil {
		roots, err := peerRoots(&o, caPath)
		if err != nil {
			return err
		}
		router.SetRootCAs(roots)
		if err := router.Start(ctx); err != nil {
			return err
		}
	}

	go purgeKeys(ctx, st, o.Now, log)
	retention := &audit.Retention{Store: st, Audit: recorder, Keep: o.AuditRetention, Account: id.Account, Region: id.Region,
		Log: log, Now: o.Now}
	if reg != nil {
		retention.Deleted = reg.AuditDeleted
	}
	go retention.Run(ctx)
	go reloadOnHangup(ctx, certs, fileSink, log)

	if reg != nil {
		registerGauges(reg, gw, api, auditor, certs)
		if router != nil {
			// Nonzero while a replica not yet upgraded still signs peer
			// requests v1 (peer/auth.go): alert on it after an upgrade.
			reg.GaugeFunc("kaginashi_peer_v1_last_accepted_timestamp_seconds", "When this replica last accepted a peer request signed v1, by a replica not yet upgraded (Unix time; 0: none since start).",
				func() float64 {
					if t := router.LastV1(); !t.IsZero() {
						return float64(t.Unix())
					}
					return 0
				})
			reg.CounterFunc("kaginashi_peer_requests_refused_total", "Peer requests (/_peer/...) this replica refused: failed authentication, or v1 with --peer-auth-v1=false. The log has the first per source address a minute at WARN.",
				func() float64 { return float64(router.Refused()) })
		}
		reg.CounterFunc("kaginashi_unauthenticated_calls_suppressed_total", "Calls refused before a principal was known (no or bad signature, unknown access key) that were answered but not audited one by one, being over their source address's --unauthenticated-audit-rate: the audit trail sums them up in UnauthenticatedCallsSuppressed events.",
			func() float64 { return float64(unauth.Suppressed()) })
		reg.GaugeFunc("kaginashi_server_lock_held", "1 while this server holds the store's server lock (shared), which keeps rotate-master-key away; 0 while it is taking it again after losing it.",
			func() float64 {
				if lockHeld() {
					return 1
				}
				return 0
			})
		addr, err := reg.Listen(ctx, o.MetricsListen, log)
		if err != nil {
			return err
		}
		log.Info("metrics serving", "listen", addr.String(), "path", "/metrics")
		if o.MetricsReady != nil {
			o.MetricsReady(addr.String())
		}
	}

	// Say where we serve before serving, so that whoever sees /healthz
	// answer also finds this line.
	log.Info("kaginashi serving", "url", o.PublicURL, "listen", ln.Addr().String(), "account", id.Account, "region", id.Region,
		"store", storeKind(o.StoreURL), "ca", caPath, "caPin", caPin, "rootAccessKeyId", rootKey)
	if peerLn != nil {
		log.Info("peer listener serving", "listen", peerLn.Addr().String(), "paths", peer.PathPrefix+" and /healthz")
	}
	errc := make(chan error, 2)
	serve := func(srv *http.Server, ln net.Listener) {
		if o.Insecure {
			errc <- srv.Serve(ln)
		} else {
			// bulkio under TLS: the connections that become tunnels
			// (agents', clients' WebSockets, replicas' spliced tunnels)
			// switch to bulk transfer.
			errc <- srv.ServeTLS(bulkio.Listener{Listener: ln}, "", "")
		}
	}
	serving = true
	go serve(srv, ln)
	if peerSrv != nil {
		go serve(peerSrv, peerLn)
	}
	if o.Ready != nil {
		o.Ready(fmt.Sprintf("%s://127.0.0.1:%d", scheme, port))
	}
	select {
	case err := <-errc:
		if peerSrv != nil {
			_ = peerSrv.Close()
		}
		_ = srv.Close()
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("kaginashi stopping")
	if router != nil {
		router.Stop(context.WithoutCancel(ctx))
	}
	gw.Close()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if peerSrv != nil {
		// Concurrently: each may wait for its requests to end.
		peerDone := make(chan error, 1)
		go func() { peerDone <- peerSrv.Shutdown(shutdownCtx) }()
		defer func() {
			if err := <-peerDone; err != nil {
				log.Warn("graceful stop of the peer listener timed out", "err", err)
			}
		}()
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("graceful stop timed out", "err", err)
	}
	return nil
}

// newHTTPServer is the API's and the peer listener's server: the same
// limits on both.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// certNames are the generated certificate's names: the loopback names, the
// host name, and the public URL's host.
func certNames(publicHost string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	for _, n := range names {
		if n == publicHost {
			return names
		}
	}
	return append(names, publicHost)
}

func storeKind(u string) string {
	if strings.HasPrefix(u, "sqlite:") {
		return u
	}
	if pu, err := url.Parse(u); err == nil {
		return "postgres://" + pu.Host + pu.Path // no credentials in the log
	}
	return "postgres"
}

// purgeKeys drops key records an hour after they expired.
func purgeKeys(ctx context.Context, st store.Store, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := st.PurgeKeyRecords(ctx, now().Add(-time.Hour)); err != nil {
				log.Warn("purging expired key records failed", "err", err)
			} else if n > 0 {
				log.Debug("purged expired key records", "count", n)
			}
		}
	}
}

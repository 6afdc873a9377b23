package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/clientip"
	"github.com/kaginashi/kaginashi/internal/iam"
)

// regionRE is a region name's shape: lowercase words joined by hyphens
// (us-east-1, eu-central-2, or a name of the operator's own). It goes
// into ARNs and SigV4 credential scopes, so nothing else may be in it.
var regionRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// validate checks every option that can be checked without touching the
// data directory, so that a start refused for a typo leaves nothing
// behind (no master key, no database).
func (o *Options) validate() error {
	if o.AccountID != "" {
		if err := iam.ValidAccountID(o.AccountID); err != nil {
			return fmt.Errorf("--account-id: %w", err)
		}
	}
	if o.Region != "" && (len(o.Region) > 32 || !regionRE.MatchString(o.Region)) {
		return fmt.Errorf("--region %q: want a region name such as us-east-1 (lowercase letters, digits and hyphens)", o.Region)
	}
	if err := checkHostPort(o.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", o.Listen, err)
	}
	if o.MetricsListen != "" {
		if err := checkHostPort(o.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen %q: %w", o.MetricsListen, err)
		}
		// checkFiles binds --metrics-listen before the API listener
		// exists, so only this finds the two on one port before the
		// data dir is written.
		if sameListenAddr(o.MetricsListen, o.Listen) {
			return fmt.Errorf("--metrics-listen %s: the same address as --listen %s; give the metrics a port (or interface) of their own", o.MetricsListen, o.Listen)
		}
	}
	if o.PeerListen != "" {
		if err := o.checkPeerListen(); err != nil {
			return err
		}
	}
	if o.PublicURL != "" {
		if u, err := url.Parse(o.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("--public-url %q: want https://HOST[:PORT]", o.PublicURL)
		}
	}
	if o.PeerURL != "" {
		if u, err := url.Parse(o.PeerURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("--peer-url %q: want https://HOST:PORT", o.PeerURL)
		}
	}
	if err := checkStoreURL(o.StoreURL); err != nil {
		return err
	}
	if _, err := clientip.ParsePrefixes(o.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	if o.RateBurst < 0 {
		return errors.New("--rate-burst must not be negative")
	}
	if o.MaxTunnels < 0 {
		return errors.New("--max-tunnels must not be negative")
	}
	if d := o.MaxTunnelDuration; d < 0 || d > time.Hour || (d != 0 && (d < time.Second || d%time.Second != 0)) {
		// It was silently cut to 1h; and the policy key
		// ec2-instance-connect:maxTunnelDuration counts whole seconds.
		return fmt.Errorf("--max-tunnel-duration %s: want whole seconds from 1s to 1h (the cap AWS has too)", d)
	}
	return o.checkFiles()
}

// checkFiles checks the files and addresses the options name outside the
// data directory, without creating anything: each of these used to be
// found only after master.key and the database had been written.
func (o *Options) checkFiles() error {
	if o.TLSCert != "" {
		// Read again by the server (bootstrap.FileCerts); a start reads
		// them twice, so that a bad pair is found before the data dir.
		if _, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	}
	if o.PeerCA != "" {
		if _, err := peerRoots(&Options{PeerCA: o.PeerCA}, ""); err != nil {
			return fmt.Errorf("--peer-ca: %w", err)
		}
	}
	if o.AuditLog != "" {
		// Who could redirect the file (a link at its path, a directory
		// others can write): refused at every open too (audit.FileSink).
		if err := audit.CheckPath(o.AuditLog); err != nil {
			return fmt.Errorf("--audit-log: %w", err)
		}
		if err := checkAppendable(o.AuditLog, o.DataDir); err != nil {
			return fmt.Errorf("--audit-log %s: %w", o.AuditLog, err)
		}
	}
	if o.MetricsListen != "" {
		// Bound for real only once the server is up (metricslisten);
		// a port in use is found now by binding it and letting go.
		ln, err := net.Listen("tcp", o.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		_ = ln.Close()
	}
	return nil
}

// checkAppendable says whether the server will be able to open path for
// appending (audit.OpenFileSink), creating nothing: an existing file is
// opened without O_CREATE and closed; for a new one, its directory must
// exist and be writable — unless that directory is the data dir, which
// the server creates.
func checkAppendable(path, dataDir string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if fi.IsDir() {
			return errors.New("is a directory; give a file name")
		}
		if fi.Mode()&fs.ModeNamedPipe != 0 {
			// A named pipe (a log shipper's): opening it for writing
			// blocks until a reader comes, and closing it again ends
			// the reader's stream (EOF) before the server opens it for
			// real. access(2) opens nothing.
			if err := canWrite(path); err != nil {
				return fmt.Errorf("cannot be opened for appending: %w", err)
			}
			return nil
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("cannot be opened for appending: %w", err)
		}
		return f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(abs)
	di, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && dir == dataDir:
		return nil // made with the data dir, writable by the server
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("its directory %s does not exist", dir)
	case err != nil:
		return err
	case !di.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := canCreateIn(dir); err != nil {
		return fmt.Errorf("cannot create a file in %s: %w", dir, err)
	}
	return nil
}

// checkHostPort accepts HOST:PORT and :PORT, port 0 to 65535 (0 or
// empty: any, as net.Listen takes it).
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want HOST:PORT or :PORT")
	}
	if port == "" {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

// checkStoreURL accepts the shapes OpenStore opens: sqlite:PATH and
// postgres://... (postgresql://...).
func checkStoreURL(s string) error {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		if strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//") == "" {
			return fmt.Errorf("--store %q: sqlite:PATH needs a path", s)
		}
		return nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			// Not the parse error itself: it repeats the URL, password and all.
			return errors.New("--store: the postgres:// URL does not parse")
		}
		return nil
	}
	// Only the scheme: whatever follows may hold a password.
	scheme, _, _ := strings.Cut(s, ":")
	return fmt.Errorf("--store: %q is not a store scheme: want sqlite:PATH or postgres://...", scheme)
}

// checkPeerListen refuses a --peer-listen that cannot work: not an
// address, with a store no other replica can share, or the address of
// --listen or --metrics-listen (the second listen would fail, and the
// metrics one only after the data dir is written). A port in use is found
// by Run, which opens the peer listener right after the API's.
func (o *Options) checkPeerListen() error {
	if err := checkHostPort(o.PeerListen); err != nil {
		return fmt.Errorf("--peer-listen %q: %w", o.PeerListen, err)
	}
	if strings.HasPrefix(o.StoreURL, "sqlite:") {
		return fmt.Errorf("--peer-listen %s: replicas route to each other only when they share a PostgreSQL store (--store postgres://...); with SQLite there is no other replica", o.PeerListen)
	}
	if sameListenAddr(o.PeerListen, o.Listen) {
		return fmt.Errorf("--peer-listen %s: the same address as --listen %s; give the peer API a port (or interface) of its own", o.PeerListen, o.Listen)
	}
	if o.MetricsListen != "" && sameListenAddr(o.PeerListen, o.MetricsListen) {
		return fmt.Errorf("--peer-listen %s: the same address as --metrics-listen %s", o.PeerListen, o.MetricsListen)
	}
	return nil
}

// sameListenAddr says whether two listen addresses (checked by
// checkHostPort) would take the same port: the same port number, not 0
// (any free port), on the same host or with either on every interface
// (an empty host, 0.0.0.0 or ::). A host name counts as the addresses it
// resolves to, as net.Listen resolves it (localhost and 127.0.0.1 are
// one); a name that does not resolve is compared as written, and its
// listen fails later anyway.
func sameListenAddr(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	na, errA := strconv.Atoi(pa)
	nb, errB := strconv.Atoi(pb)
	if errA != nil || errB != nil || na == 0 || na != nb {
		return false
	}
	every := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || (ip != nil && ip.IsUnspecified())
	}
	if every(ha) || every(hb) || strings.EqualFold(ha, hb) {
		return true
	}
	ipsA, ipsB := hostIPs(ha), hostIPs(hb)
	for _, x := range ipsA {
		for _, y := range ipsB {
			if x.Equal(y) {
				return true
			}
		}
	}
	return false
}

// hostIPs is a listen host's addresses: the IP it is, or what the name
// resolves to (within 2 s; none when it does not).
func hostIPs(h string) []net.IP {
	if ip := net.ParseIP(h); ip != nil {
		return []net.IP{ip}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, h)
	if err != nil {
		return nil
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips
}

// makeDataDir makes the data dir (bootstrap.EnsureDataDir) and returns
// undo, which removes what this call made — the directory and any missing
// parents it made with it — as long as it is still empty: Run calls it
// when a start is refused after the data dir was made (a new replica's
// DIR without the master key its PostgreSQL's secrets are sealed with,
// an --account-id the store disagrees with), so that such a start leaves
// nothing either. os.Remove removes only an empty directory: nothing
// written in it is ever taken.
func makeDataDir(dir string) (undo func(), err error) {
	top := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := bootstrap.EnsureDataDir(dir); err != nil {
		return func() {}, err
	}
	if top == "" {
		return func() {}, nil // it was there before
	}
	return func() {
		for d := dir; ; d = filepath.Dir(d) {
			if os.Remove(d) != nil || d == top {
				return
			}
		}
	}, nil
}

package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/peer"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// agentRouter is what the API, the console and key delivery use of the
// agents: the gateway alone (one server), or the peer router in front of
// it (replicas sharing PostgreSQL).
type agentRouter interface {
	Deliver(ctx context.Context, rec store.KeyRecord) error
	OpenTunnel(ctx context.Context, instanceID string, port int) (io.ReadWriteCloser, error)
	Connected(instanceID string) bool
	SSHPort(instanceID string) (int, bool)
	AllowedPorts(instanceID string) ([]int, bool)
}

// newRouter puts the peer router in front of the gateway when the store is
// PostgreSQL (the only engine replicas can share; with SQLite there is no
// other replica to route to, and agents' connections cost no store write).
// Its TLS roots are set by peerRoots once the TLS material exists. ln is
// the listener the peer API is served on (--peer-listen's, else the API's)
// and listen the address it was asked for, which the default peer URL is
// made from.
func newRouter(o *Options, ln net.Listener, listen string, scheme string, pub *url.URL, gw *gateway.Gateway, st store.Store, sealer *seal.Sealer,
	rec audit.Recorder, id bootstrap.Identity) (agentRouter, *peer.Router, error) {
	sessions, ok := st.(store.AgentSessions)
	if !ok || strings.HasPrefix(o.StoreURL, "sqlite:") {
		if o.PeerURL != "" {
			o.Log.Warn("--peer-url is ignored: routing between replicas needs a shared PostgreSQL store")
		}
		return gw, nil, nil
	}
	peerURL := o.PeerURL
	if peerURL == "" {
		var err error
		if peerURL, err = defaultPeerURL(scheme, ln.Addr().(*net.TCPAddr), listen); err != nil {
			return nil, nil, err
		}
	}
	key, err := sealer.DeriveKey(peer.KeyPurpose, 32)
	if err != nil {
		return nil, nil, err
	}
	r, err := peer.New(peer.Config{ReplicaID: peer.NewReplicaID(), PeerURL: peerURL, Key: key, ServerName: pub.Hostname(),
		Account: id.Account, Region: id.Region, RefuseV1: o.RefusePeerAuthV1}, gw, sessions, rec, o.Log, o.Now)
	if err != nil {
		return nil, nil, err
	}
	o.Log.Info("routing between replicas", "peerURL", peerURL, "acceptsPeerAuthV1", !o.RefusePeerAuthV1)
	return r, r, nil
}

// defaultPeerURL is the listener's address when it names one, else the
// host's first non-loopback address, with the listener's port.
func defaultPeerURL(scheme string, addr *net.TCPAddr, listen string) (string, error) {
	port := strconv.Itoa(addr.Port)
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			return scheme + "://" + net.JoinHostPort(host, port), nil
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("--peer-url: cannot list this host's addresses: %w", err)
	}
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() {
			continue
		}
		if n.IP.To4() != nil {
			return scheme + "://" + net.JoinHostPort(n.IP.String(), port), nil
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	if v6 != "" {
		return scheme + "://" + net.JoinHostPort(v6, port), nil
	}
	return "", errors.New("--peer-url: this host has no non-loopback address; give --peer-url (the URL other replicas reach this one at)")
}

// peerRoots are the CAs that verify other replicas' certificates: --peer-ca;
// else the generated CA (DIR/tls/ca.pem, which replicas share with the
// rest of DIR/tls); else, with --tls-cert, the system's roots plus the
// certificates of that chain (a private CA's chain then verifies too).
func peerRoots(o *Options, caPath string) (*x509.CertPool, error) {
	var files []string
	var pool *x509.CertPool
	switch {
	case o.PeerCA != "":
		pool, files = x509.NewCertPool(), []string{o.PeerCA}
	case caPath != "":
		pool, files = x509.NewCertPool(), []string{caPath}
	case o.TLSCert != "":
		sys, err := x509.SystemCertPool()
		if err != nil {
			sys = x509.NewCertPool()
		}
		pool, files = sys, []string{o.TLSCert}
	default:
		return nil, nil
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Clean(f))
		if err != nil {
			return nil, fmt.Errorf("peer CA: %w", err)
		}
		n := 0
		for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("peer CA %s: %w", f, err)
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("peer CA %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}

// peerMux is what the --peer-listen listener serves: the peer API and
// /healthz (for the private network's load balancers), nothing else — the
// AWS APIs, console, agent enrolment and tunnels 404 there, so that the
// private port is no second way in to them.
func peerMux(health http.HandlerFunc, router *peer.Router) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", health)
	if router != nil {
		mux.Handle(peer.PathPrefix, router)
	}
	return mux
}

// peerURLPortDiffers says whether the peer URL names another port than the
// peer listener's (a URL without a port names its scheme's default). That
// is right behind NAT or a port mapping, and otherwise a mistake that only
// shows when another replica fails to reach this one, so it is logged but
// not refused. It returns the URL's port.
func peerURLPortDiffers(peerURL string, port int) (string, bool) {
	u, err := url.Parse(peerURL)
	if err != nil {
		return "", false // validate has refused it already
	}
	p := u.Port()
	if p == "" {
		p = "443"
		if u.Scheme == "http" {
			p = "80"
		}
	}
	return p, p != strconv.Itoa(port)
}

// Package clientip finds who made an HTTP request: the TCP peer, or — when
// the peer is a reverse proxy the operator trusts — the address the proxies
// recorded in X-Forwarded-For. The answer becomes aws:SourceIp, which
// policies and sign-in throttling rely on, so only trusted hops count: a
// client can put anything in X-Forwarded-For, and a proxy only appends.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which peers are trusted proxies. The zero value and nil
// trust none: the TCP peer is the client.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a resolver trusting the given networks.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// ParsePrefixes reads CIDRs or bare addresses (a /32 or /128).
func ParsePrefixes(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR such as 10.0.0.0/8 or an address", v)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want a CIDR such as 10.0.0.0/8 or an address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (r *Resolver) trusts(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(req *http.Request) (netip.Addr, string) {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, host
	}
	return a.Unmap(), a.Unmap().String()
}

// IP returns the client's address. Behind trusted proxies it walks
// X-Forwarded-For from the right (the hop nearest this server) and stops
// at the first address that is not a trusted proxy; a malformed entry
// stops the walk at the last hop that could be checked.
func (r *Resolver) IP(req *http.Request) string {
	a, s := peer(req)
	if !a.IsValid() || !r.trusts(a) {
		return s
	}
	var hops []string
	for _, h := range req.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := s
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return client
		}
		client = h.Unmap().String()
		if !r.trusts(h) {
			return client
		}
	}
	return client
}

// Secure reports whether the client's connection is TLS: this server's
// own, or a trusted proxy's that says so in X-Forwarded-Proto.
func (r *Resolver) Secure(req *http.Request) bool {
	if req.TLS != nil {
		return true
	}
	a, _ := peer(req)
	return a.IsValid() && r.trusts(a) && strings.EqualFold(strings.TrimSpace(req.Header.Get("X-Forwarded-Proto")), "https")
}

package clientip

import (
	"crypto/tls"
	"net/http"
	"testing"
)

func TestIP(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(trusted)
	for _, tc := range []struct {
		name, peer string
		xff        []string
		resolver   *Resolver
		want       string
	}{
		{"no proxy trusted: the peer, whatever the header says", "198.51.100.7:1234", []string{"203.0.113.9"}, nil, "198.51.100.7"},
		{"an untrusted peer's header is ignored", "198.51.100.7:1234", []string{"203.0.113.9"}, r, "198.51.100.7"},
		{"one trusted proxy", "10.1.2.3:443", []string{"203.0.113.9"}, r, "203.0.113.9"},
		{"a spoofed leftmost entry does not count", "10.1.2.3:443", []string{"1.2.3.4, 203.0.113.9"}, r, "203.0.113.9"},
		{"two trusted hops", "192.0.2.1:443", []string{"203.0.113.9, 10.9.9.9"}, r, "203.0.113.9"},
		{"header split over lines", "10.1.2.3:443", []string{"1.2.3.4", "203.0.113.9"}, r, "203.0.113.9"},
		{"all trusted: the leftmost", "10.1.2.3:443", []string{"10.0.0.5"}, r, "10.0.0.5"},
		{"malformed entry stops the walk", "10.1.2.3:443", []string{"203.0.113.9, garbage"}, r, "10.1.2.3"},
		{"no header: the proxy itself", "10.1.2.3:443", nil, r, "10.1.2.3"},
		{"IPv6 and mapped IPv4", "[::ffff:10.1.2.3]:443", []string{"2001:db8::1"}, r, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.resolver.IP(req); got != tc.want {
				t.Errorf("IP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecure(t *testing.T) {
	trusted, _ := ParsePrefixes([]string{"10.0.0.0/8"})
	r := New(trusted)
	req := func(peer, proto string, tlsOn bool) *http.Request {
		q := &http.Request{RemoteAddr: peer, Header: http.Header{}}
		if proto != "" {
			q.Header.Set("X-Forwarded-Proto", proto)
		}
		if tlsOn {
			q.TLS = &tls.ConnectionState{}
		}
		return q
	}
	if !r.Secure(req("198.51.100.7:1", "", true)) {
		t.Error("own TLS is secure")
	}
	if r.Secure(req("198.51.100.7:1", "https", false)) {
		t.Error("an untrusted peer's X-Forwarded-Proto counted")
	}
	if !r.Secure(req("10.0.0.1:1", "https", false)) {
		t.Error("a trusted proxy's X-Forwarded-Proto ignored")
	}
	var none *Resolver
	if none.Secure(req("10.0.0.1:1", "https", false)) {
		t.Error("nil resolver trusted a header")
	}
}

func TestParsePrefixes(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "host.example", "10.0.0.1/8/1"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzIP(f *testing.F) {
	trusted, _ := ParsePrefixes([]string{"10.0.0.0/8", "::1"})
	r := New(trusted)
	f.Add("10.0.0.1:80", "203.0.113.1, 10.0.0.2")
	f.Add("[::1]:80", ",,, ::ffff:1.2.3.4")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		req := &http.Request{RemoteAddr: peer, Header: http.Header{"X-Forwarded-For": {xff}}}
		_ = r.IP(req)
		_ = r.Secure(req)
	})
}

package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

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
	if o.MaxTunnelDuration < 0 {
		return errors.New("--max-tunnel-duration must not be negative")
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

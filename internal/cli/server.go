package cli

import (
	"errors"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/server"
)

func newServerCmd(stdio IO) *cobra.Command {
	var o server.Options
	consoleOn := true
	peerAuthV1 := true
	c := &cobra.Command{
		Use:   "server --data-dir DIR [--listen ADDR] [--public-url URL] [--store URL] [--region R] [--account-id N] [--tls-cert F --tls-key F] [--insecure-http]",
		Short: "Run the kaginashi server: AWS-compatible IAM, STS, EC2 and Instance Connect APIs",
		Long: `Run the server. On first start it creates, in the data directory: a TLS CA
(tls/ca.pem, for AWS_CA_BUNDLE) and certificate, the master key that encrypts
secrets at rest (master.key, unless KAGINASHI_MASTER_KEY is set), the account
ID, and root credentials (root-credentials, profile kaginashi-root, printed
once) unless KAGINASHI_ROOT_ACCESS_KEY_ID / KAGINASHI_ROOT_SECRET_ACCESS_KEY
are set. Later starts resume everything. SIGTERM or SIGINT stops it gracefully.

Replicas sharing one PostgreSQL (--store postgres://..., the same master key
and DIR/tls) forward key pushes and tunnels to the replica holding the host's
agent, at its --peer-url. --peer-listen ADDR puts that traffic on a listener of
its own, e.g. a private interface; the public listener then answers /_peer/
with 404.

Point the aws CLI at it:
  export AWS_ENDPOINT_URL=https://localhost:8443 AWS_CA_BUNDLE=DIR/tls/ca.pem
  export AWS_SHARED_CREDENTIALS_FILE=DIR/root-credentials AWS_PROFILE=kaginashi-root
  aws sts get-caller-identity`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.DataDir == "" {
				return usageErr("--data-dir is required")
			}
			if err := checkPublicURL(o.PublicURL); err != nil {
				return usageErr("--public-url %q: %v", o.PublicURL, err)
			}
			o.NoConsole = !consoleOn
			if o.UnauthenticatedAuditRate == 0 {
				o.UnauthenticatedAuditRate = -1 // the flag's 0: audit every call (Options' 0 is the default)
			}
			o.RefusePeerAuthV1 = !peerAuthV1
			o.Stdout = stdio.Out
			o.Version = Version
			o.Log = newLogger(stdio.Err)
			return server.Run(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "directory for the database, keys and TLS files (required)")
	f.StringVar(&o.Listen, "listen", ":8443", "address to listen on")
	f.StringVar(&o.PublicURL, "public-url", "", "URL clients and agents use to reach the server (default https://localhost:PORT)")
	f.StringVar(&o.StoreURL, "store", "", "sqlite:PATH (default DIR/kaginashi.db) or postgres://USER:PASS@HOST/DB")
	f.StringVar(&o.Region, "region", "", "region of this deployment, fixed at first start (default us-east-1)")
	f.StringVar(&o.AccountID, "account-id", "", "12-digit account ID, fixed at first start (default generated)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate chain (PEM) instead of the generated one")
	f.StringVar(&o.TLSKey, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	f.BoolVar(&o.Insecure, "insecure-http", false, "serve plain HTTP (only behind a TLS-terminating proxy, or for tests)")
	f.StringSliceVar(&o.TrustedProxies, "trusted-proxy", nil, "a reverse proxy (CIDR or address, repeatable) whose X-Forwarded-For/-Proto are believed for aws:SourceIp and TLS")
	f.StringVar(&o.AuditLog, "audit-log", "", "also append audit events to this JSON-lines file")
	f.Float64Var(&o.RateLimit, "rate-limit", 50, "API calls per second per access key (negative: no limit)")
	f.IntVar(&o.RateBurst, "rate-burst", 100, "burst size of the per-key rate limit")
	f.Float64Var(&o.UnauthenticatedAuditRate, "unauthenticated-audit-rate", server.DefaultUnauthenticatedAuditRate, "per source address, calls a second refused before a principal is known (no or bad signature, unknown key) that are audited one by one; the rest are answered the same and summed up in one UnauthenticatedCallsSuppressed event per source a minute (0: audit all)")
	f.IntVar(&o.UnauthenticatedAuditBurst, "unauthenticated-audit-burst", server.DefaultUnauthenticatedAuditBurst, "burst size of --unauthenticated-audit-rate")
	f.DurationVar(&o.UnauthenticatedSummaryEvery, "unauthenticated-audit-summary-every", time.Minute, "how often the UnauthenticatedCallsSuppressed summaries are recorded (tests)")
	_ = f.MarkHidden("unauthenticated-audit-summary-every")
	f.DurationVar(&o.MaxTunnelDuration, "max-tunnel-duration", time.Hour, "longest a tunnel may stay open (at most 1h)")
	f.IntVar(&o.MaxTunnels, "max-tunnels", 1000, "tunnels open at once through this server")
	f.IntVar(&o.MaxTunnelsPerUser, "max-tunnels-per-user", 100, "tunnels one user (or root) may hold open at once through this server (0: up to --max-tunnels)")
	f.BoolVar(&consoleOn, "console", true, "serve the web console (https://SERVER/) on the API's listener")
	f.StringVar(&o.MetricsListen, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (plain HTTP: bind to localhost or a private network; default off)")
	f.DurationVar(&o.AuditLinger, "audit-commit-linger", server.DefaultAuditLinger, "under concurrent calls, let an audit commit wait up to this long for the events of calls being served, to commit them together (0: never wait; idle servers never wait)")
	f.DurationVar(&o.AuditRetention, "audit-retention", 0, "delete audit events older than this from the store, hourly, e.g. 2160h for CloudTrail's 90 days (default 0: keep forever)")
	f.StringVar(&o.PeerURL, "peer-url", "", "URL the other replicas reach this one at, with a PostgreSQL store (default: --peer-listen's address, else --listen's, or when that is a wildcard this host's first non-loopback address, with the port)")
	f.StringVar(&o.PeerListen, "peer-listen", "", "serve the replicas' peer API (/_peer/...) and /healthz on this address of its own (e.g. a private interface), with the API's TLS; the API listener then answers /_peer/ with 404 (PostgreSQL stores only; default: the peer API is on --listen)")
	f.BoolVar(&peerAuthV1, "peer-auth-v1", true, "accept peer requests signed v1 by replicas not yet upgraded (false: refuse them once every replica runs this release; the next release refuses v1 always)")
	f.StringVar(&o.PeerCA, "peer-ca", "", "CA certificates (PEM) that verify the other replicas (default DIR/tls/ca.pem, or with --tls-cert the system's roots and that chain)")
	f.DurationVar(&o.KeyLifetime, "key-lifetime", 0, "shorten pushed keys' 60 s lifetime (tests of expiry only)")
	_ = f.MarkHidden("key-lifetime")
	c.AddCommand(newRotateMasterKeyCmd(stdio))
	c.AddCommand(newRotateSigningKeyCmd(stdio))
	c.AddCommand(newRotateAgentCACmd(stdio))
	return c
}

// checkPublicURL accepts what clients and agents can be sent to:
// https://HOST[:PORT] (http:// behind nothing, for tests), nothing after
// the host. The server builds EICE DNS names, the console's links and the
// hosts' --server from it, so a typo found now is not found later by
// every agent.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return errors.New("want https://HOST[:PORT]")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("want an https:// URL (https://HOST[:PORT])")
	case u.User != nil:
		return errors.New("no user name or password in it")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("nothing after the host and port: the API, tunnels and console are served at the root")
	case u.Port() != "" && !validPort(u.Port()):
		return errors.New("the port must be 1 to 65535")
	}
	return nil
}

func validPort(p string) bool {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return n >= 1
}

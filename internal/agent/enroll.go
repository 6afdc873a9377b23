package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// Trust says how the agent recognizes the server on first contact: a CA
// file (the server's DIR/tls/ca.pem), or the SHA-256 of a certificate in
// the server's chain (sha256:HEX), or neither: the system's roots.
type Trust struct {
	CAFile string
	Pin    string
}

// tlsConfig builds the client TLS configuration. With a pin, the first
// chain certificate that matches is saved as the server CA for later
// connections (savedCA).
func (t Trust) tlsConfig(serverName string, savedCA *[]byte) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	switch {
	case t.CAFile != "":
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
		if savedCA != nil {
			*savedCA = b
		}
	case t.Pin != "":
		want, err := parsePin(t.Pin)
		if err != nil {
			return nil, err
		}
		// The chain is checked against the pin instead of a root store:
		// the pinned certificate must be in the chain the server sends,
		// and the chain must verify up to it.
		cfg.InsecureSkipVerify = true //nolint:gosec // replaced by VerifyPeerCertificate below
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, 0, len(raw))
			for _, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			}
			for _, c := range certs {
				if sum := sha256.Sum256(c.Raw); bytes.Equal(sum[:], want) {
					pool := x509.NewCertPool()
					pool.AddCert(c)
					inter := x509.NewCertPool()
					for _, ic := range certs[1:] {
						inter.AddCert(ic)
					}
					if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: serverName}); err != nil && !bytes.Equal(certs[0].Raw, c.Raw) {
						return fmt.Errorf("the server's certificate does not chain to the pinned one: %w", err)
					}
					if savedCA != nil {
						*savedCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
					}
					return nil
				}
			}
			return errors.New("no certificate in the server's chain matches --ca-pin")
		}
	}
	return cfg, nil
}

func parsePin(pin string) ([]byte, error) {
	h, ok := strings.CutPrefix(strings.ToLower(pin), "sha256:")
	if !ok {
		return nil, errors.New("--ca-pin: want sha256:HEX")
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("--ca-pin: want sha256: and 64 hex digits")
	}
	return b, nil
}

// EnrollOptions are the one-time enrollment inputs.
type EnrollOptions struct {
	Server string // https://server:8443
	Token  string
	Trust  Trust
	Tags   []agentproto.Tag
	Now    func() time.Time
}

// Enroll obtains an identity: a new key pair, and from the server an
// instance ID, a client certificate and the record-signing key to pin. An
// agent that has an identity already presents it, and keeps its instance
// ID.
func Enroll(ctx context.Context, p Paths, o EnrollOptions) (Config, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Config{}, fmt.Errorf("--server %q: want https://HOST[:PORT]", o.Server)
	}
	if err := p.ensureDirs(); err != nil {
		return Config{}, err
	}
	if o.Trust == (Trust{}) && p.enrolled() {
		// Re-enrolling with neither --ca-file nor --ca-pin: keep trusting
		// the CA pinned at the first enrollment rather than falling back
		// to the system's roots, which would widen what the agent trusts.
		if _, err := os.Stat(p.serverCA()); err == nil {
			o.Trust.CAFile = p.serverCA()
		}
	}
	var savedCA []byte
	tcfg, err := o.Trust.tlsConfig(u.Hostname(), &savedCA)
	if err != nil {
		return Config{}, err
	}
	// Prove the old identity, if any, so the instance ID stays.
	if old, err := tls.LoadX509KeyPair(p.cert(), p.key()); err == nil {
		tcfg.Certificates = []tls.Certificate{old}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Config{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Config{}, err
	}
	host, _ := os.Hostname()
	body, _ := json.Marshal(agentproto.EnrollRequest{Token: o.Token, PublicKey: spki, Hostname: host, Tags: o.Tags})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tcfg, Proxy: http.ProxyFromEnvironment}, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.Server, "/")+agentproto.EnrollPath, bytes.NewReader(body))
	if err != nil {
		return Config{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Config{}, fmt.Errorf("enroll: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e agentproto.ErrorResponse
		if json.Unmarshal(rb, &e) == nil && e.Error != "" {
			return Config{}, fmt.Errorf("enroll: the server refused: %s", e.Error)
		}
		return Config{}, fmt.Errorf("enroll: the server answered %s", resp.Status)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(rb, &er); err != nil {
		return Config{}, fmt.Errorf("enroll: bad answer: %w", err)
	}
	if len(er.SigningKey) != ed25519.PublicKeySize || er.InstanceID == "" {
		return Config{}, errors.New("enroll: the answer lacks an identity")
	}
	if savedCA == nil {
		// Trusted through the system roots: pin the root the chain was
		// verified to — not the top certificate the server sent, which is
		// usually an intermediate that public CAs rotate (Let's Encrypt
		// picks among several at each renewal): pinning that would cut the
		// agent off at the server's next certificate renewal.
		if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
			return Config{}, errors.New("enroll: the server's certificate chain was not verified; pass --ca-file or --ca-pin")
		}
		chain := resp.TLS.VerifiedChains[0]
		savedCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1].Raw})
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Config{}, err
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	cfg := Config{Server: strings.TrimSuffix(o.Server, "/"), InstanceID: er.InstanceID}
	steps := []struct {
		path string
		data []byte
	}{
		{p.key(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{p.cert(), er.Certificate},
		{p.serverCA(), savedCA},
	}
	for _, s := range steps {
		if err := writeAtomic(s.path, s.data, 0o600); err != nil {
			return Config{}, err
		}
	}
	if err := writeJSON(p.config(), cfg, 0o600); err != nil {
		return Config{}, err
	}
	pubState := Public{InstanceID: er.InstanceID, SigningKey: er.SigningKey, ClockSkewMillis: er.ServerTime - now.UnixMilli()}
	if old, err := p.LoadPublic(); err == nil {
		pubState.ExpiryOption = old.ExpiryOption
	}
	if err := writeJSON(p.public(), pubState, 0o644); err != nil {
		return Config{}, err
	}
	// The status file describes the previous identity's agent — revoked,
	// perhaps: doctor must not report that for the new one before it
	// runs. (A running agent writes it again.)
	if err := os.Remove(p.status()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("removing the previous identity's %s: %w", StatusFile, err)
	}
	return cfg, nil
}

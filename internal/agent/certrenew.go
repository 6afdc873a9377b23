package agent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// renewCert stores the client certificate the server sent with the answer
// to the hello (during an agent CA rotation: one from the new CA), once it
// checks that it certifies this agent's own key and instance, and reports
// whether it did: the agent then reconnects at once to present it — the
// server counts an agent as moved to the new CA only when it connects with
// its certificate, and rotate-agent-ca --finish waits for that. A
// certificate that does not fit is refused and the old one kept.
func (a *Agent) renewCert(b agentproto.Beat) bool {
	if b.Certificate == nil {
		return false
	}
	if err := a.storeCert(b.Certificate); err != nil {
		a.log.Error("refused the client certificate the server sent; keeping the current one", "err", err)
		return false
	}
	a.log.Info("stored a new client certificate from the server's current agent CA; reconnecting with it")
	return true
}

func (a *Agent) storeCert(pemBytes []byte) error {
	block, rest := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("not one PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	key, err := a.paths.loadKey()
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return errors.New("the certificate is not for this agent's key")
	}
	if cert.Subject.CommonName != a.cfg.InstanceID {
		return fmt.Errorf("the certificate is for %q, not this instance %s", cert.Subject.CommonName, a.cfg.InstanceID)
	}
	clientAuth := false
	for _, u := range cert.ExtKeyUsage {
		clientAuth = clientAuth || u == x509.ExtKeyUsageClientAuth
	}
	if !clientAuth {
		return errors.New("the certificate is not for client authentication")
	}
	return writeAtomic(a.paths.cert(), pem.EncodeToMemory(block), 0o600)
}

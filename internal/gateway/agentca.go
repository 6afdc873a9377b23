package gateway

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// CAID names an agent CA: the fingerprint of its public key.
func CAID(ca *x509.Certificate) string { return KeyFingerprint(ca.RawSubjectPublicKeyInfo) }

func loadPrevCA(ctx context.Context, st store.Store) (*x509.Certificate, error) {
	v, ok, err := st.GetMeta(ctx, metaAgentCAPrevious)
	if err != nil || !ok {
		return nil, err
	}
	return parseCertPEM(v)
}

func parseCertPEM(v string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(v))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("agent CA: no certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	return c, nil
}

// renewCert puts in a hello's answer a new client certificate for an agent
// whose certificate is from the previous agent CA.
func (g *Gateway) renewCert(s *session, b *agentproto.Beat, now time.Time) {
	if s.renew == nil || g.keys == nil {
		return
	}
	cert, err := g.keys.IssueClientCert(s.instanceID, s.renew, now)
	if err != nil {
		g.log.Error("issuing a certificate from the new agent CA failed", "instance", s.instanceID, "err", err)
		return
	}
	b.Certificate = cert
	g.log.Info("agent presented a certificate of the previous agent CA; sending one from the current CA", "instance", s.instanceID)
}

// recordAgentCA notes that an instance's agent holds a certificate of the
// current agent CA (it enrolled, or was just sent one), for
// rotate-agent-ca --finish. Best effort: a failure only makes --finish
// count the instance as pending.
func (g *Gateway) recordAgentCA(ctx context.Context, id string, now time.Time) {
	ac, ok := g.store.(store.AgentCAs)
	if !ok || g.keys == nil {
		return
	}
	if err := ac.SetAgentCA(ctx, id, CAID(g.keys.CA), now); err != nil {
		g.log.Warn("recording an agent's CA failed", "instance", id, "err", err)
	}
}

// CARotation says what RotateAgentCA or FinishAgentCA did.
type CARotation struct {
	// Old and New name the CAs (CAID).
	Old, New string
	// Pending are the instances whose agents are not known to hold a
	// certificate of the new CA (FinishAgentCA).
	Pending []string
	// Finished: the old CA is no longer trusted.
	Finished bool
}

// ErrRotationPending: a previous agent CA rotation is not finished.
var ErrRotationPending = errors.New("an agent CA rotation is in progress: finish it first (kaginashi server rotate-agent-ca --finish)")

// ErrAgentsPending: --finish found agents still on the old CA.
var ErrAgentsPending = errors.New("some enrolled instances have not connected since the agent CA rotation")

// RotateAgentCA makes a new agent CA (its key sealed with the master key)
// and keeps the old CA's certificate as the previous one, still trusted
// for client certificates until FinishAgentCA; the old CA's private key is
// deleted, so it issues nothing more. One transaction; the caller holds
// the maintenance lock. A rotation in progress must be finished first.
func RotateAgentCA(ctx context.Context, m store.Maintenance, sealer *seal.Sealer, now time.Time) (CARotation, error) {
	var res CARotation
	err := m.UpdateMeta(ctx, []string{metaAgentCA, metaAgentCAPrevious}, func(cur map[string]string) (map[string]string, []string, error) {
		if _, ok := cur[metaAgentCAPrevious]; ok {
			return nil, nil, ErrRotationPending
		}
		val, ok := cur[metaAgentCA]
		if !ok {
			return nil, nil, errors.New("this store has no agent CA yet: start the server once first")
		}
		var sc sealedCA
		if err := json.Unmarshal([]byte(val), &sc); err != nil {
			return nil, nil, fmt.Errorf("agent CA: %w", err)
		}
		old, err := parseCertPEM(sc.Cert)
		if err != nil {
			return nil, nil, err
		}
		// The master key must open the current CA: a wrong key would
		// otherwise seal the new CA's key with a key the server lacks.
		ct, err := decode64(sc.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("agent CA key: %w", err)
		}
		if _, err := sealer.Open(ct, metaAgentCA); err != nil {
			return nil, nil, fmt.Errorf("agent CA key: cannot open it with this master key: %w", err)
		}
		fresh, err := newCA(sealer, now)
		if err != nil {
			return nil, nil, err
		}
		var nsc sealedCA
		if err := json.Unmarshal([]byte(fresh), &nsc); err != nil {
			return nil, nil, err
		}
		nc, err := parseCertPEM(nsc.Cert)
		if err != nil {
			return nil, nil, err
		}
		res = CARotation{Old: CAID(old), New: CAID(nc)}
		return map[string]string{metaAgentCA: fresh, metaAgentCAPrevious: sc.Cert}, nil, nil
	})
	if err != nil {
		return CARotation{}, err
	}
	return res, nil
}

// FinishAgentCA stops trusting the previous agent CA. Agents that have not
// connected since the rotation still hold its certificates and would be
// cut off (they must enroll again): without force it refuses while there
// are any, and says which.
func FinishAgentCA(ctx context.Context, st store.Store, m store.Maintenance, force bool) (CARotation, error) {
	var res CARotation
	ac, ok := st.(store.AgentCAs)
	if !ok {
		return res, fmt.Errorf("the %T store does not track agent CAs", st)
	}
	err := m.UpdateMeta(ctx, []string{metaAgentCA, metaAgentCAPrevious}, func(cur map[string]string) (map[string]string, []string, error) {
		prev, ok := cur[metaAgentCAPrevious]
		if !ok {
			return nil, nil, errors.New("no agent CA rotation is in progress: nothing to finish")
		}
		old, err := parseCertPEM(prev)
		if err != nil {
			return nil, nil, err
		}
		var sc sealedCA
		if err := json.Unmarshal([]byte(cur[metaAgentCA]), &sc); err != nil {
			return nil, nil, fmt.Errorf("agent CA: %w", err)
		}
		ca, err := parseCertPEM(sc.Cert)
		if err != nil {
			return nil, nil, err
		}
		res.Old, res.New = CAID(old), CAID(ca)
		if res.Pending, err = ac.InstancesNotOnCA(ctx, res.New); err != nil {
			return nil, nil, err
		}
		if len(res.Pending) > 0 && !force {
			return nil, nil, fmt.Errorf("%w: %d", ErrAgentsPending, len(res.Pending))
		}
		res.Finished = true
		return nil, []string{metaAgentCAPrevious}, nil
	})
	return res, err
}

func decode64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

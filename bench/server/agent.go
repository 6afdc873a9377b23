package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/pprof"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// fakeAgent is the host side of the agent protocol, reduced to what a
// SendSSHPublicKey needs: enrolled with a join token, connected (mTLS,
// HTTP upgrade, yamux, hello), it verifies every pushed record as the
// real agent does (keyrecord.Record.Verify against the signing key pinned
// at enrollment: the Ed25519 verification is most of a real agent's work
// per push) and acknowledges it. It does not persist records: the real
// agent rewrites its file of held records (no fsync) per push, a cost
// that grows with the records held, which at this benchmark's rate (some
// hundreds of pushes a second per host, held 60 s) no real host sees.
// Its goroutines carry the pprof label side=agent.
type fakeAgent struct {
	instanceID string
	signingKey ed25519.PublicKey
	// legacyPush: the hello lists no features, so the server opens a
	// stream per push, as for agents before the key stream.
	legacyPush bool
}

// enrollFakeAgent enrolls one agent through the server's enrollment
// endpoint and keeps it connected until ctx ends.
func enrollFakeAgent(ctx context.Context, base string, ca *x509.CertPool, token string, n int, legacyPush bool) (*fakeAgent, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(agentproto.EnrollRequest{Token: token, PublicKey: spki, Hostname: fmt.Sprintf("bench-host-%d", n)})
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	tcfg := &tls.Config{RootCAs: ca, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tcfg}, Timeout: 30 * time.Second}
	resp, err := hc.Post(base+agentproto.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("enroll: %s: %s", resp.Status, rb)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(rb, &er); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(er.Certificate, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, fmt.Errorf("enroll: the issued certificate: %w", err)
	}
	if len(er.SigningKey) != ed25519.PublicKeySize {
		return nil, errors.New("enroll: no record signing key in the answer")
	}
	a := &fakeAgent{instanceID: er.InstanceID, signingKey: ed25519.PublicKey(er.SigningKey), legacyPush: legacyPush}
	tcfg = tcfg.Clone()
	tcfg.Certificates = []tls.Certificate{cert}
	connected := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels("side", "agent"), func(ctx context.Context) {
		err := a.session(ctx, u.Host, tcfg, connected)
		if err != nil && ctx.Err() == nil {
			progress("agent %s: %v", a.instanceID, err)
		}
	})
	select {
	case err := <-connected:
		if err != nil {
			return nil, err
		}
	case <-time.After(30 * time.Second):
		return nil, errors.New("agent: not connected after 30s")
	}
	return a, nil
}

// session dials, upgrades and serves key pushes until ctx ends.
func (a *fakeAgent) session(ctx context.Context, host string, tcfg *tls.Config, connected chan<- error) error {
	fail := func(err error) error {
		select {
		case connected <- err:
		default:
		}
		return err
	}
	d := &tls.Dialer{Config: tcfg}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fail(err)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	req := "GET " + agentproto.ConnectPath + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: kaginashi-bench-agent\r\nConnection: Upgrade\r\nUpgrade: " + agentproto.UpgradeProtocol + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fail(fmt.Errorf("connect: %s %s", resp.Status, b))
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(bufConn{conn, br}, cfg)
	if err != nil {
		return fail(err)
	}
	defer mux.Close()
	ctl, err := mux.OpenStream()
	if err != nil {
		return fail(err)
	}
	c := agentproto.NewConn(ctl)
	inv := agentproto.Inventory{Hostname: "bench-host", OSID: "debian", OSVersion: "12", Platform: "Linux/UNIX",
		DefaultUser: "admin", DefaultUserExists: true, Architecture: "x86_64", AgentVersion: "bench", SSHDConfigured: true, AllowedPorts: []int{22}}
	if err := c.Send(agentproto.Header{Type: agentproto.TypeControl}); err != nil {
		return fail(err)
	}
	if err := c.Send(agentproto.Hello{InstanceID: a.instanceID, Inventory: inv, LocalTime: time.Now().UnixMilli(),
		Features: a.features()}); err != nil {
		return fail(err)
	}
	var beat agentproto.Beat
	if err := c.Recv(&beat); err != nil {
		return fail(fmt.Errorf("no answer to hello: %w", err))
	}
	if beat.Error != "" {
		return fail(errors.New(beat.Error))
	}
	connected <- nil
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			return err
		}
		go func() {
			defer st.Close()
			sc := agentproto.NewConn(st)
			var h agentproto.Header
			if sc.Recv(&h) != nil {
				return
			}
			if h.Type == agentproto.TypeKeys {
				// As the real agent: pushes one after the other on one
				// stream, each acknowledged with its ID.
				for {
					var kp agentproto.KeyPush
					if sc.Recv(&kp) != nil {
						return
					}
					ack := agentproto.Ack{ID: kp.ID, OK: true}
					if err := kp.Record.Verify(a.signingKey, a.instanceID, "", time.Now()); err != nil {
						ack = agentproto.Ack{ID: kp.ID, Error: err.Error()}
					}
					if sc.Send(ack) != nil {
						return
					}
				}
			}
			if h.Type != agentproto.TypeKey {
				_ = sc.Send(agentproto.Ack{Error: "the benchmark agent takes keys only"})
				return
			}
			var kp agentproto.KeyPush
			if sc.Recv(&kp) != nil {
				return
			}
			if err := kp.Record.Verify(a.signingKey, a.instanceID, "", time.Now()); err != nil {
				_ = sc.Send(agentproto.Ack{Error: err.Error()})
				return
			}
			_ = sc.Send(agentproto.Ack{OK: true})
		}()
	}
}

// bufConn reads through the reader that read the upgrade response.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (a *fakeAgent) features() []string {
	if a.legacyPush {
		return nil
	}
	return []string{agentproto.FeatureKeyStream}
}

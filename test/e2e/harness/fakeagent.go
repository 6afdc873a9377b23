package harness

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// FakeAgent stands in for the host agent of an instance that a test put in
// the store itself (with an ID of its choosing): it connects the way an
// agent does (client certificate, HTTP upgrade, yamux, hello), reports the
// instance's stored facts as its inventory, and verifies and acknowledges
// every key record pushed to it. The API suite needs one per running
// instance: SendSSHPublicKey answers Success only once an agent took the key.
//
// It obtains its client certificate the way no real agent can, from the
// agent CA in the server's store, unsealed with the server's master key.
type FakeAgent struct {
	InstanceID string

	mu      sync.Mutex
	records []keyrecord.Record
}

// Records are the key records the agent accepted.
func (a *FakeAgent) Records() []keyrecord.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]keyrecord.Record(nil), a.records...)
}

// ConnectFakeAgent connects a FakeAgent for instance id (in st, the
// server's store opened by the test) and returns once the server has
// registered it. It disconnects when the test ends.
func (s *Server) ConnectFakeAgent(t testing.TB, st store.Store, id string) *FakeAgent {
	t.Helper()
	ctx := context.Background()
	key, created, err := seal.LoadOrCreate(filepath.Join(s.Cfg.DataDir, "master.key"))
	if err != nil || created {
		t.Fatalf("the server's master key: created %v, %v", created, err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := gateway.LoadKeys(ctx, st, sealer, time.Now())
	if err != nil {
		t.Fatalf("the server's agent CA: %v", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := keys.IssueClientCert(id, pub, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.GetInstance(ctx, id)
	if err != nil {
		t.Fatalf("instance %s: %v", id, err)
	}
	in.AgentKey = gateway.KeyFingerprint(spki)
	if err := st.PutInstance(ctx, in); err != nil {
		t.Fatal(err)
	}

	caPEM, err := os.ReadFile(s.CAPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tcfg := &tls.Config{ServerName: "localhost", RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), tcfg)
	if err != nil {
		t.Fatalf("fake agent %s: %v", id, err)
	}
	a := &FakeAgent{InstanceID: id}
	mux, err := a.handshake(conn, in)
	if err != nil {
		conn.Close()
		t.Fatalf("fake agent %s: %v", id, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.serve(mux, keys.Signer.Public().(ed25519.PublicKey))
	}()
	t.Cleanup(func() {
		mux.Close()
		<-done
	})
	return a
}

// handshake upgrades the connection and says hello.
func (a *FakeAgent) handshake(conn net.Conn, in store.Instance) (*yamux.Session, error) {
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	req := "GET " + agentproto.ConnectPath + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: kaginashi-e2e-fake-agent\r\n" +
		"Connection: Upgrade\r\nUpgrade: " + agentproto.UpgradeProtocol + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("connect: %s %s", resp.Status, b)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(bufferedConn{conn, br}, cfg)
	if err != nil {
		return nil, err
	}
	ctl, err := mux.OpenStream()
	if err != nil {
		mux.Close()
		return nil, err
	}
	var ipv6 []string
	if in.IPv6 != "" {
		ipv6 = []string{in.IPv6}
	}
	inv := agentproto.Inventory{
		Hostname: in.Hostname, OSID: in.OSID, OSVersion: in.OSVersion, OSPrettyName: in.OSPrettyName, Platform: in.Platform,
		DefaultUser: in.DefaultUser, DefaultUserExists: in.DefaultUserExists, Kernel: in.Kernel, Architecture: in.Architecture,
		PrivateIP: in.PrivateIP, IPv6: ipv6, HostKeys: in.HostKeys, SSHDVersion: in.SSHDVersion, SSHDConfigured: in.SSHDConfigured,
		AgentVersion: in.AgentVersion,
	}
	c := agentproto.NewConn(ctl)
	if err := c.Send(agentproto.Header{Type: agentproto.TypeControl}); err != nil {
		mux.Close()
		return nil, err
	}
	if err := c.Send(agentproto.Hello{InstanceID: a.InstanceID, Inventory: inv, LocalTime: time.Now().UnixMilli()}); err != nil {
		mux.Close()
		return nil, err
	}
	var beat agentproto.Beat
	if err := c.Recv(&beat); err != nil {
		mux.Close()
		return nil, fmt.Errorf("no answer to hello: %w", err)
	}
	if beat.Error != "" {
		mux.Close()
		return nil, errors.New(beat.Error)
	}
	_ = conn.SetDeadline(time.Time{})
	return mux, nil
}

// serve answers key pushes until the session ends.
func (a *FakeAgent) serve(mux *yamux.Session, signer ed25519.PublicKey) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(10 * time.Second))
			c := agentproto.NewConn(st)
			var h agentproto.Header
			if c.Recv(&h) != nil {
				return
			}
			if h.Type != agentproto.TypeKey {
				_ = c.Send(agentproto.Ack{Error: "the e2e fake agent takes keys only"})
				return
			}
			var kp agentproto.KeyPush
			if c.Recv(&kp) != nil {
				return
			}
			if err := kp.Record.Verify(signer, a.InstanceID, "", time.Now()); err != nil {
				_ = c.Send(agentproto.Ack{Error: err.Error()})
				return
			}
			a.mu.Lock()
			a.records = append(a.records, kp.Record)
			a.mu.Unlock()
			_ = c.Send(agentproto.Ack{OK: true})
		}()
	}
}

// bufferedConn reads through the reader that read the upgrade response.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

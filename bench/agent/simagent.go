package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// A simulated agent is the host agent's protocol without the host: it
// enrolls with a join token (its own Ed25519 key, the client certificate
// the server issues), connects over real loopback TCP and TLS with that
// certificate, upgrades, runs yamux with the agent's settings, says hello
// with an inventory the size of a real one, sends a heartbeat every 20 s
// (with a fresh inventory every 5 min) and reconnects with the agent's
// backoff when the connection ends. It verifies every pushed key record
// against the server key pinned at enrollment — signature, instance ID,
// expiry — before it acknowledges it. It does not write the record to disk
// (10,000 of them share one disk and two cores with the server).
type simAgent struct {
	n    int
	id   string
	tcfg *tls.Config
	src  net.IP
}

// fleet is the simulated agents and their counters.
type fleet struct {
	agents []*simAgent
	signer ed25519.PublicKey // pinned at enrollment
	pool   *x509.CertPool    // the server's TLS CA

	heartbeatEvery time.Duration
	inventoryEvery time.Duration

	// counters, cumulative
	connected   atomic.Int64 // sessions up now
	sessions    atomic.Int64 // sessions ever established
	dropped     atomic.Int64 // sessions that ended while the round ran
	failed      atomic.Int64 // connection attempts that failed
	heartbeats  atomic.Int64 // heartbeats answered
	slowBeats   atomic.Int64 // heartbeats answered after more than 1 s
	inventories atomic.Int64 // of which carried an inventory
	acks        atomic.Int64 // key records verified and acknowledged
	refused     atomic.Int64 // key records that failed verification
}

// inventoryTemplate is a typical host's report: three host keys (an RSA
// one among them), addresses, OS and sshd facts.
var inventoryTemplate = func() agentproto.Inventory {
	hk := func(kind string, n int) string {
		b := make([]byte, n)
		_, _ = crand.Read(b)
		return kind + " " + base64.StdEncoding.EncodeToString(b)
	}
	return agentproto.Inventory{
		OSID: "debian", OSVersion: "12", OSPrettyName: "Debian GNU/Linux 12 (bookworm)", Platform: "Linux/UNIX",
		DefaultUser: "admin", DefaultUserExists: true, Kernel: "6.1.0-28-amd64", Architecture: "x86_64",
		PrivateIP: "10.0.12.34", IPv4: []string{"10.0.12.34"}, IPv6: []string{"fd00:12::34"},
		HostKeys:    []string{hk("ssh-ed25519", 51), hk("ecdsa-sha2-nistp256", 104), hk("ssh-rsa", 407)},
		SSHDVersion: "OpenSSH_9.2p1 Debian-2+deb12u3", SSHDConfigured: true, AgentVersion: "bench", AllowedPorts: []int{22},
	}
}()

// enroll enrolls n agents with token through POST /agent/v1/enroll,
// conc at a time, and returns the time it took.
func (f *fleet) enroll(ctx context.Context, base, token string, n, conc int, sources []net.IP) (time.Duration, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	f.agents = make([]*simAgent, n)
	var (
		next    atomic.Int64
		firstMu sync.Mutex
		first   error
		signer  atomic.Pointer[ed25519.PublicKey]
		wg      sync.WaitGroup
	)
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				a, err := enrollOne(ctx, hc, base, token, i)
				if err != nil {
					firstMu.Lock()
					if first == nil {
						first = fmt.Errorf("agent %d: %w", i, err)
					}
					firstMu.Unlock()
					next.Store(int64(n))
					return
				}
				a.src = sources[i%len(sources)]
				cert := tls.Certificate{Certificate: [][]byte{a.certDER}, PrivateKey: a.priv}
				a.tcfg = &tls.Config{ServerName: "localhost", RootCAs: f.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				f.agents[i] = &a.simAgent
				signer.Store(&a.signing)
				if (i+1)%1000 == 0 {
					progress("  enrolled %d/%d", i+1, n)
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f.signer = *signer.Load()
	return time.Since(t0), nil
}

type enrolled struct {
	simAgent
	certDER []byte
	priv    ed25519.PrivateKey
	signing ed25519.PublicKey
}

func enrollOne(ctx context.Context, hc *http.Client, base, token string, i int) (*enrolled, error) {
	pub, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(agentproto.EnrollRequest{Token: token, PublicKey: spki, Hostname: fmt.Sprintf("sim-%05d", i)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+agentproto.EnrollPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("enroll: %s: %s", resp.Status, rb)
	}
	var er agentproto.EnrollResponse
	if err := json.Unmarshal(rb, &er); err != nil {
		return nil, err
	}
	block, _ := pem.Decode(er.Certificate)
	if block == nil || len(er.SigningKey) != ed25519.PublicKeySize {
		return nil, errors.New("enroll: no certificate or signing key in the answer")
	}
	return &enrolled{simAgent: simAgent{n: i, id: er.InstanceID}, certDER: block.Bytes, priv: priv, signing: er.SigningKey}, nil
}

// round is one set of sessions of the fleet against one server.
type round struct {
	f       *fleet
	addr    string // 127.0.0.1:PORT
	ctx     context.Context
	cancel  context.CancelFunc
	sem     chan struct{}
	wg      sync.WaitGroup
	firstWG sync.WaitGroup
	mu      sync.Mutex
	connect []time.Duration // each agent's first connection: dial to hello answered
}

// start connects agents (conc connection attempts in flight at most) and
// keeps them connected until stop.
func (f *fleet) start(ctx context.Context, addr string, conc int) *round {
	r := &round{f: f, addr: addr, sem: make(chan struct{}, conc)}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r
}

// add connects agents and waits until each has been connected once (or
// timeout); it returns the time that took and how many made it.
func (r *round) add(agents []*simAgent, timeout time.Duration) (time.Duration, int) {
	t0 := time.Now()
	var done atomic.Int64
	r.firstWG.Add(len(agents))
	for _, a := range agents {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			var once sync.Once
			first := func(d time.Duration) {
				once.Do(func() {
					r.mu.Lock()
					r.connect = append(r.connect, d)
					r.mu.Unlock()
					done.Add(1)
					r.firstWG.Done()
				})
			}
			a.run(r, first)
			once.Do(func() { r.firstWG.Done() }) // never connected
		}()
	}
	all := make(chan struct{})
	go func() { r.firstWG.Wait(); close(all) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		select {
		case <-all:
			return time.Since(t0), int(done.Load())
		case <-deadline:
			return time.Since(t0), int(done.Load())
		case <-tick.C:
			progress("  %d/%d connected after %s (%d failed attempts)", done.Load(), len(agents), time.Since(t0).Round(time.Second), r.f.failed.Load())
		}
	}
}

// stop disconnects every agent of the round.
func (r *round) stop() {
	r.cancel()
	r.wg.Wait()
}

// run keeps one agent connected until the round ends, reconnecting with
// the agent's backoff (100 ms doubling to 2 s, jittered).
func (a *simAgent) run(r *round, first func(time.Duration)) {
	backoff := 100 * time.Millisecond
	for r.ctx.Err() == nil {
		up, err := a.session(r, first)
		if r.ctx.Err() != nil {
			return
		}
		if up {
			r.f.dropped.Add(1)
			backoff = 100 * time.Millisecond
		} else {
			r.f.failed.Add(1)
		}
		_ = err
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// session runs one connection; up says whether it got as far as the
// hello's answer.
func (a *simAgent) session(r *round, first func(time.Duration)) (up bool, err error) {
	f := r.f
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		return false, r.ctx.Err()
	}
	held := true
	release := func() {
		if held {
			<-r.sem
			held = false
		}
	}
	defer release()
	t0 := time.Now()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: a.src}, Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(r.ctx, "tcp", r.addr)
	if err != nil {
		return false, err
	}
	conn := tls.Client(raw, a.tcfg)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET " + agentproto.ConnectPath + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: kaginashi-agent/bench\r\nConnection: Upgrade\r\nUpgrade: " + agentproto.UpgradeProtocol + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return false, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return false, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return false, fmt.Errorf("connect: %s", resp.Status)
	}
	cfg := yamux.DefaultConfig() // the agent's settings (internal/agent/run.go)
	cfg.LogOutput = io.Discard
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.EnableKeepAlive = false // like the agent: liveness from the heartbeats
	mux, err := yamux.Client(bufConn{conn, br}, cfg)
	if err != nil {
		conn.Close()
		return false, err
	}
	defer mux.Close()
	ctl, err := mux.OpenStream()
	if err != nil {
		return false, err
	}
	c := agentproto.NewConn(ctl)
	inv := inventoryTemplate
	inv.Hostname = fmt.Sprintf("sim-%05d", a.n)
	if err := c.Send(agentproto.Header{Type: agentproto.TypeControl}); err != nil {
		return false, err
	}
	if err := c.Send(agentproto.Hello{InstanceID: a.id, Inventory: inv, LocalTime: time.Now().UnixMilli()}); err != nil {
		return false, err
	}
	var beat agentproto.Beat
	if err := c.Recv(&beat); err != nil {
		return false, fmt.Errorf("no answer to hello: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	release()
	f.sessions.Add(1)
	f.connected.Add(1)
	defer f.connected.Add(-1)
	first(time.Since(t0))

	go a.acceptStreams(f, mux)

	// A fleet that has run for a while: each agent's heartbeat and
	// inventory fall at a random point of their periods.
	timer := time.NewTimer(rand.N(f.heartbeatEvery))
	defer timer.Stop()
	lastInv := time.Now().Add(-rand.N(f.inventoryEvery))
	for {
		select {
		case <-r.ctx.Done():
			return true, nil
		case <-mux.CloseChan():
			return true, errors.New("the connection closed")
		case <-timer.C:
		}
		timer.Reset(f.heartbeatEvery)
		t0 := time.Now()
		hb := agentproto.Heartbeat{LocalTime: t0.UnixMilli()}
		if t0.Sub(lastInv) >= f.inventoryEvery {
			hb.Inventory, lastInv = &inv, t0
			f.inventories.Add(1)
		}
		_ = ctl.SetDeadline(t0.Add(15 * time.Second))
		if err := c.Send(hb); err != nil {
			return true, err
		}
		if err := c.Recv(&beat); err != nil {
			return true, err
		}
		f.heartbeats.Add(1)
		if time.Since(t0) > time.Second {
			f.slowBeats.Add(1)
		}
	}
}

// acceptStreams answers key pushes as the agent does, less the disk.
func (a *simAgent) acceptStreams(f *fleet, mux *yamux.Session) {
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(10 * time.Second))
			c := agentproto.NewConn(st)
			var h agentproto.Header
			if c.Recv(&h) != nil {
				return
			}
			if h.Type != agentproto.TypeKey {
				_ = c.Send(agentproto.Ack{Error: "unknown stream type"})
				return
			}
			var kp agentproto.KeyPush
			if c.Recv(&kp) != nil {
				return
			}
			if err := kp.Record.Verify(f.signer, a.id, "", time.Now()); err != nil {
				f.refused.Add(1)
				_ = c.Send(agentproto.Ack{Error: err.Error()})
				return
			}
			f.acks.Add(1)
			_ = c.Send(agentproto.Ack{OK: true})
		}()
	}
}

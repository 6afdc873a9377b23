package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Handing the tunnel to ssh.
//
// `kaginashi ssh` opens the tunnel itself while ssh starts, instead of
// leaving it to a second kaginashi that ssh's ProxyCommand would start
// only once ssh is up (and that would load the configuration, and make a
// TLS handshake, again). ssh still needs a ProxyCommand to get a
// connection that is not a TCP address; with ProxyUseFdpass=yes that
// command passes ssh a socket and exits, and ssh then reads and writes
// the socket itself. The ProxyCommand, `kaginashi open-tunnel --fd-from
// SOCKET`, connects to the login's private agent socket — in its 0700
// directory: only this user reaches it — asks for the connection with an
// agent extension request, and passes its end of that unix connection to
// ssh (SCM_RIGHTS). The kaginashi that started ssh carries the other end
// to the tunnel.
//
// Riding on the agent's socket, rather than a socket of its own, keeps
// one socket per login, which only lists and signs with one key and hands
// over one connection.

// HandoffExtension is the agent extension request (SSH_AGENTC_EXTENSION)
// that takes the connection. After SSH_AGENT_SUCCESS the connection
// carries the tunnel's bytes and no more agent messages.
const HandoffExtension = "tunnel-handoff@kaginashi"

// Agent protocol numbers (draft-miller-ssh-agent).
const (
	agentcExtension = 27
	agentSuccess    = 6
)

// handoff is a private agent's offer of one connection, and when its
// key may be used.
type handoff struct {
	ch    chan net.Conn // capacity 1: the connection taken
	taken bool          // under PrivateAgent.mu

	keysReady <-chan struct{} // nil: at once
	keysCtx   context.Context
}

// handoffLocked is a.handoff, made on first use; a.mu is held.
func (a *PrivateAgent) handoffLocked() *handoff {
	if a.handoff == nil {
		a.handoff = &handoff{ch: make(chan net.Conn, 1)}
	}
	return a.handoff
}

// OfferConnection makes the agent hand over one connection: the first
// that sends the HandoffExtension request is answered SSH_AGENT_SUCCESS
// and arrives on the returned channel, a plain byte stream from then on,
// which the caller closes. Requests after it fail. Call it before the
// ProxyCommand can run.
func (a *PrivateAgent) OfferConnection() <-chan net.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.handoffLocked().ch
}

// HoldKeys makes the agent answer requests for its key (list, sign) only
// once ready is closed, or fail them when ctx ends first. ssh asks only
// when user authentication starts, after the key exchange, just before
// sshd looks for the key: so the key exchange need not wait for the key's
// push, only authentication does.
func (a *PrivateAgent) HoldKeys(ctx context.Context, ready <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.handoffLocked()
	h.keysReady, h.keysCtx = ready, ctx
}

var errKeyNotReady = errors.New("the key was not pushed")

// waitKeys waits for HoldKeys' ready.
func (h handoffAgent) waitKeys() error {
	h.a.mu.Lock()
	var (
		ready <-chan struct{}
		ctx   context.Context
	)
	if h.a.handoff != nil {
		ready, ctx = h.a.handoff.keysReady, h.a.handoff.keysCtx
	}
	h.a.mu.Unlock()
	if ready == nil {
		return nil
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return errKeyNotReady
	}
}

func (h handoffAgent) List() ([]*agent.Key, error) {
	if err := h.waitKeys(); err != nil {
		return nil, err
	}
	return h.ExtendedAgent.List()
}

func (h handoffAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	if err := h.waitKeys(); err != nil {
		return nil, err
	}
	return h.ExtendedAgent.Sign(key, data)
}

func (h handoffAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	if err := h.waitKeys(); err != nil {
		return nil, err
	}
	return h.ExtendedAgent.SignWithFlags(key, data, flags)
}

func (h handoffAgent) Signers() ([]ssh.Signer, error) {
	if err := h.waitKeys(); err != nil {
		return nil, err
	}
	return h.ExtendedAgent.Signers()
}

// serve runs the agent protocol on c until the peer leaves (then closes
// c), or hands c over.
func (a *PrivateAgent) serve(ro agent.ExtendedAgent, c net.Conn) {
	hc := &handoffConn{Conn: c}
	_ = agent.ServeAgent(handoffAgent{ExtendedAgent: ro, a: a, c: hc}, hc)
	if hc.taken {
		a.handoff.ch <- c // taken once: never blocks
		return
	}
	c.Close()
}

// handoffConn ends the agent protocol once the connection is taken: the
// agent server's next read sees the end, and the bytes after the request
// stay unread for the tunnel.
type handoffConn struct {
	net.Conn
	taken bool // set by Extension, on the agent server's goroutine
}

func (c *handoffConn) Read(p []byte) (int, error) {
	if c.taken {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// handoffAgent is the read-only agent plus the handoff request.
type handoffAgent struct {
	agent.ExtendedAgent
	a *PrivateAgent
	c *handoffConn
}

func (h handoffAgent) Extension(typ string, contents []byte) ([]byte, error) {
	if typ != HandoffExtension {
		return h.ExtendedAgent.Extension(typ, contents)
	}
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	if h.a.handoff == nil || h.a.handoff.taken || h.a.conns == nil {
		return nil, agent.ErrExtensionUnsupported
	}
	h.a.handoff.taken, h.c.taken = true, true
	return nil, nil // SSH_AGENT_SUCCESS
}

// errNoHandoff is a refused handoff request.
var errNoHandoff = errors.New("no connection to take: the kaginashi that started ssh has none (or has handed it over already)")

// takeHandoff asks the agent at the other end of c for its connection.
// It reads exactly the answer, so that what follows stays in c. (The
// agent package's client reads ahead on connections it can close.)
func takeHandoff(c net.Conn) error {
	name := HandoffExtension
	msg := make([]byte, 4+1+4+len(name))
	binary.BigEndian.PutUint32(msg, uint32(1+4+len(name)))
	msg[4] = agentcExtension
	binary.BigEndian.PutUint32(msg[5:], uint32(len(name)))
	copy(msg[9:], name)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1024 {
		return fmt.Errorf("an answer of %d bytes", n)
	}
	rep := make([]byte, n)
	if _, err := io.ReadFull(c, rep); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if rep[0] != agentSuccess {
		return errNoHandoff
	}
	return nil
}

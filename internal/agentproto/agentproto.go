// Package agentproto is the protocol between kaginashi's server and its
// host agents: enrollment over HTTPS, then one outbound TLS connection per
// agent, upgraded from HTTP and multiplexed with yamux.
//
// Every yamux stream begins with one JSON line naming what it carries. The
// agent opens the control stream (hello, then heartbeats with clock
// readings and inventory updates); the server opens one long-lived stream
// for key pushes (a stream per push for agents that predate it) and a
// stream per tunnel. An agent obeys exactly two things: key records signed by
// the server key it pinned at enrollment, and tunnels to local ports on its
// own allow-list. Nothing here can make it run a command.
//
// Standard library only: the agent binary stays small.
package agentproto

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// HTTP paths and the Upgrade token of the agent connection.
const (
	EnrollPath      = "/agent/v1/enroll"
	ConnectPath     = "/agent/v1/connect"
	UpgradeProtocol = "kaginashi-agent/1"
)

// IdentityRevoked is the error text of the server's 403 to an agent
// connection whose identity is no longer valid (the instance was
// deregistered, or enrolled again with another key). The agent stops for
// good on it (and only on it: a proxy's 403 is retried), so the server
// says it only when the store says so, never for a failure to read it.
const IdentityRevoked = "this agent identity is no longer valid; enroll again"

// Tag is a key and value.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EnrollRequest is what an agent sends, with its join token, to enroll.
// An agent re-enrolling presents its old client certificate over mTLS and
// keeps its instance ID.
type EnrollRequest struct {
	Token     string `json:"token"`
	PublicKey []byte `json:"publicKey"` // PKIX DER of the agent's Ed25519 key
	Hostname  string `json:"hostname"`
	Tags      []Tag  `json:"tags,omitempty"`
}

// EnrollResponse is the agent's identity.
type EnrollResponse struct {
	InstanceID string `json:"instanceId"`
	// Certificate is the client certificate (PEM) for the agent's key.
	Certificate []byte `json:"certificate"`
	// SigningKey is the server's Ed25519 public key that signs key records.
	SigningKey []byte `json:"signingKey"`
	ServerTime int64  `json:"serverTime"` // Unix milliseconds
}

// ErrorResponse is the body of a refused enrollment or connection.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Inventory is what an agent reports about its host.
type Inventory struct {
	Hostname          string   `json:"hostname"`
	OSID              string   `json:"osId"`
	OSVersion         string   `json:"osVersion"`
	OSPrettyName      string   `json:"osPrettyName"`
	Platform          string   `json:"platform"`
	DefaultUser       string   `json:"defaultUser"`
	DefaultUserExists bool     `json:"defaultUserExists"`
	Kernel            string   `json:"kernel"`
	Architecture      string   `json:"architecture"`
	PrivateIP         string   `json:"privateIp"`
	IPv4              []string `json:"ipv4"`
	IPv6              []string `json:"ipv6"`
	HostKeys          []string `json:"hostKeys"`
	SSHDVersion       string   `json:"sshdVersion"`
	SSHDConfigured    bool     `json:"sshdConfigured"`
	AgentVersion      string   `json:"agentVersion"`
	AllowedPorts      []int    `json:"allowedPorts"`
	// SSHPort is the port the host's sshd listens on (0: unknown, an
	// older agent); tunnels may always reach it.
	SSHPort int `json:"sshPort,omitempty"`
}

// Stream types: the first line of every stream.
const (
	TypeControl = "control" // agent → server: Hello, then Heartbeats
	TypeKey     = "key"     // server → agent: one KeyPush, one Ack back
	TypeTunnel  = "tunnel"  // server → agent: one TunnelOpen, one Ack, then raw bytes
	TypeRevoke  = "revoke"  // server → agent: one Revoke, one Ack back
	// TypeKeys is a long-lived stream of KeyPushes, each with an ID, that
	// the agent answers with Acks carrying the same ID. The server opens
	// it (once per session) only to agents whose Hello lists
	// FeatureKeyStream; it saves a stream's open and close frames on
	// every push, on both sides.
	TypeKeys = "keys"
)

// Features an agent lists in its Hello.
const (
	// FeatureKeyStream: the agent serves TypeKeys streams.
	FeatureKeyStream = "key-stream"
)

// Header opens a stream.
type Header struct {
	Type string `json:"type"`
}

// Hello starts the control stream.
type Hello struct {
	InstanceID string    `json:"instanceId"`
	Inventory  Inventory `json:"inventory"`
	LocalTime  int64     `json:"localTime"` // Unix milliseconds
	// SigningKey is the record-signing key the agent pinned (Ed25519
	// public key), so that the server sends only the endorsement links
	// from it to the current key (see Beat.SigningKeyChain). Agents
	// before 2026-11-28 do not send it.
	SigningKey []byte `json:"signingKey,omitempty"`
	// Features are the optional parts of the protocol the agent speaks
	// (Feature*). Agents before 2026-11-28 send none.
	Features []string `json:"features,omitempty"`
	// SigningKeyProblem: see Heartbeat.SigningKeyProblem.
	SigningKeyProblem string `json:"signingKeyProblem,omitempty"`
}

// MaxSigningKeyProblem bounds SigningKeyProblem; the server cuts longer ones.
const MaxSigningKeyProblem = 512

// Has reports whether the hello lists a feature.
func (h *Hello) Has(feature string) bool {
	for _, f := range h.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// Heartbeat goes agent → server on the control stream, periodically; it
// may carry a fresh inventory. The server answers each with a Beat.
type Heartbeat struct {
	LocalTime int64      `json:"localTime"`
	Inventory *Inventory `json:"inventory,omitempty"`
	// ClockSkewMillis is the agent's latest estimate of server minus host
	// time, reported for the inventory.
	ClockSkewMillis int64 `json:"clockSkewMillis"`
	// SigningKeyProblem says why logins with pushed keys fail on this
	// host because of the record-signing key, as the agent sees it, or
	// is empty: the server signs with a key the agent cannot trust, the
	// AuthorizedKeysCommand cannot read the pinned key, or pushed records
	// keep failing their signature check. Sent with the hello and every
	// heartbeat, so that a problem and its end reach the server within a
	// heartbeat; plain text, at most MaxSigningKeyProblem bytes. Agents
	// before 2026-11-29 do not send it.
	SigningKeyProblem string `json:"signingKeyProblem,omitempty"`
}

// Beat answers a Hello or a Heartbeat with the server's clock, so the agent
// can measure the skew (halving the round trip).
type Beat struct {
	ServerTime int64  `json:"serverTime"`
	Echo       int64  `json:"echo"` // the LocalTime it answers
	Error      string `json:"error,omitempty"`

	// The answer to a Hello (never a heartbeat's) also carries, when the
	// agent pinned another record-signing key than the server's current
	// one: SigningKey, the current key, and SigningKeyChain, the
	// endorsement links from the agent's pinned key (all of them, when
	// the Hello did not say which key it pinned) to the current one. The
	// agent adopts SigningKey only if the chain leads there from its
	// pinned key (see WalkChain). Older agents ignore both fields.
	SigningKey      []byte    `json:"signingKey,omitempty"`
	SigningKeyChain []KeyLink `json:"signingKeyChain,omitempty"`
	// Certificate (PEM), in the answer to a Hello during an agent CA
	// rotation, is a new client certificate for the agent's own key and
	// instance ID, from the new CA: the agent stores it as identity.crt
	// and reconnects at once, presenting it.
	Certificate []byte `json:"certificate,omitempty"`
}

// KeyPush carries one signed key record.
type KeyPush struct {
	// ID, on a TypeKeys stream, is what the Ack answering it carries
	// (0 on a TypeKey stream).
	ID     uint64           `json:"id,omitempty"`
	Record keyrecord.Record `json:"record"`
}

// Revoke withdraws a pushed record whose acknowledgement came too late:
// the API answered failure, so the key must not work. The agent drops the
// record if it holds it, and refuses it if it arrives later. (Agents that
// predate it answer "unknown stream type".)
type Revoke struct {
	RequestID string `json:"requestId"`
}

// TunnelOpen asks for a connection to 127.0.0.1:Port on the host.
type TunnelOpen struct {
	Port int `json:"port"`
}

// Ack answers a KeyPush or a TunnelOpen.
type Ack struct {
	// ID is the KeyPush's it answers, on a TypeKeys stream.
	ID    uint64 `json:"id,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// MaxMessage bounds one JSON line.
const MaxMessage = 256 << 10

// Conn reads and writes JSON lines on a stream. The reader is buffered:
// after a tunnel's Ack, Reader() must be used for the raw bytes, since it
// may hold bytes already read.
type Conn struct {
	r *bufio.Reader
	w io.Writer
}

// NewConn wraps a stream.
func NewConn(rw io.ReadWriter) *Conn { return NewConnSize(rw, 4096) }

// NewConnSize wraps a stream with a read buffer of size bytes (at least
// 16): small for a long-lived stream of small messages, such as the
// server's side of thousands of control streams. A longer line takes
// several reads.
func NewConnSize(rw io.ReadWriter, size int) *Conn {
	return &Conn{r: bufio.NewReaderSize(rw, size), w: rw}
}

// Reader is the stream's reader, including buffered bytes.
func (c *Conn) Reader() io.Reader { return c.r }

// Send writes one message as a JSON line.
func (c *Conn) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return errors.New("agentproto: message too large")
	}
	_, err = c.w.Write(append(b, '\n'))
	return err
}

// Recv reads one JSON line into v.
func (c *Conn) Recv(v any) error {
	var line []byte
	for {
		part, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return err
		}
		line = append(line, part...)
		if len(line) > MaxMessage {
			return errors.New("agentproto: message too large")
		}
		if !isPrefix {
			break
		}
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("agentproto: bad message: %w", err)
	}
	return nil
}

package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// keysAgent is a stand-in agent that serves the key stream the way
// internal/agent's serveKeys does (a push it can parse is a key it
// stores) and notes what it stored and what was withdrawn.
type keysAgent struct {
	mu      sync.Mutex
	stored  map[string]bool
	revoked map[string]bool
	// hold, while open, keeps the agent from reading its key stream (a
	// busy or stalled host); ack false: it never answers pushes.
	hold   chan struct{}
	noAck  bool
	pushed chan string // each stored request ID, as it is stored
}

func newKeysAgent() *keysAgent {
	hold := make(chan struct{})
	close(hold)
	return &keysAgent{stored: map[string]bool{}, revoked: map[string]bool{}, hold: hold, pushed: make(chan string, 64)}
}

func (k *keysAgent) has(m map[string]bool, id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return m[id]
}

func (k *keysAgent) serve(mux *yamux.Session) {
	for {
		s, err := mux.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer s.Close()
			c := agentproto.NewConn(s)
			var h agentproto.Header
			if c.Recv(&h) != nil {
				return
			}
			switch h.Type {
			case agentproto.TypeKeys:
				<-k.hold
				for {
					var kp agentproto.KeyPush
					if c.Recv(&kp) != nil {
						return
					}
					if kp.ID == 0 {
						continue // the test's filler
					}
					k.mu.Lock()
					k.stored[kp.Record.RequestID] = true
					k.mu.Unlock()
					k.pushed <- kp.Record.RequestID
					if k.noAck {
						continue
					}
					if c.Send(agentproto.Ack{ID: kp.ID, OK: true}) != nil {
						return
					}
				}
			case agentproto.TypeRevoke:
				var rv agentproto.Revoke
				if c.Recv(&rv) != nil {
					return
				}
				k.mu.Lock()
				k.revoked[rv.RequestID] = true
				k.mu.Unlock()
				_ = c.Send(agentproto.Ack{OK: true})
			}
		}()
	}
}

// requireWithdrawnIfStored fails the test when the agent stored a key
// the API answered failure for and no withdrawal reached it.
func (k *keysAgent) requireWithdrawnIfStored(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if k.has(k.revoked, id) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if k.has(k.stored, id) {
		t.Fatalf("the agent stored %s, the API answered failure, and no withdrawal reached the agent", id)
	}
}

// TestKeyStreamPartialWriteWithdraws: a push whose write fails part-way
// (the agent's window filled: a stalled or malicious agent) may still
// reach the agent whole — here every byte but the newline went out, and
// the stream's end completes the line. The API answers failure, so the
// key must be withdrawn, as for a push that timed out.
func TestKeyStreamPartialWriteWithdraws(t *testing.T) {
	g, st := newSigningGateway(t)
	g.PushTimeout = 300 * time.Millisecond
	a := connectWith(t, g, st, 0, testInventory, []string{agentproto.FeatureKeyStream})
	ag := newKeysAgent()
	ag.hold = make(chan struct{})
	go ag.serve(a.mux)

	g.mu.Lock()
	s := g.sessions[testID]
	g.mu.Unlock()
	ks, err := s.keyStreamFor(0)
	if err != nil {
		t.Fatal(err)
	}
	// The push the gateway will write (ID 1: the stream's first).
	rec := testKeyRecord(t, "req-partial")
	kr := keyrecord.Record{RequestID: rec.RequestID, InstanceID: rec.InstanceID, OSUser: rec.OSUser, PublicKey: rec.PublicKey,
		Fingerprint: rec.Fingerprint, CallerARN: rec.CallerARN, IssuedAt: rec.CreatedAt.Unix(), ExpiresAt: rec.ExpiresAt.Unix()}
	if err := kr.Sign(g.keys.Signer); err != nil {
		t.Fatal(err)
	}
	msg, err := json.Marshal(agentproto.KeyPush{ID: 1, Record: kr})
	if err != nil {
		t.Fatal(err)
	}
	// Fill the agent's window (yamux's initial 256 KiB; the agent reads
	// nothing yet) so that exactly the push without its newline fits.
	fill := 256*1024 - len(keysStreamHeader) - len(msg)
	var pad bytes.Buffer
	for rest := fill; rest > 0; {
		n := rest
		if n > 4003 {
			n = 4000 // and at least 3 left for the last line
		}
		pad.WriteString("{}" + strings.Repeat(" ", n-3) + "\n")
		rest -= n
	}
	if _, err := ks.st.Write(pad.Bytes()); err != nil {
		t.Fatal(err)
	}

	err = g.Deliver(t.Context(), rec)
	if apierr.KindOf(err) != apierr.Unavailable {
		t.Fatalf("a push that could not be written: %v, want Unavailable", err)
	}
	close(ag.hold) // the agent catches up
	select {
	case <-ag.pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("the test's premise failed: the agent did not get the push")
	}
	ag.requireWithdrawnIfStored(t, rec.RequestID)
}

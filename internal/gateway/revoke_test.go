package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// TestLateAckWithdrawn: when the agent acknowledges a key after the push
// timed out (the API answered failure), the server withdraws it.
func TestLateAckWithdrawn(t *testing.T) {
	g, st := newSigningGateway(t)
	a := connect(t, g, st, 0, testInventory)

	revoked := make(chan string, 1)
	go func() {
		for {
			s, err := a.mux.AcceptStream()
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
				case agentproto.TypeKey:
					var kp agentproto.KeyPush
					if c.Recv(&kp) != nil {
						return
					}
					time.Sleep(600 * time.Millisecond) // too late
					_ = c.Send(agentproto.Ack{OK: true})
				case agentproto.TypeRevoke:
					var rv agentproto.Revoke
					if c.Recv(&rv) != nil {
						return
					}
					_ = c.Send(agentproto.Ack{OK: true})
					revoked <- rv.RequestID
				}
			}()
		}
	}()

	rec := testKeyRecord(t, "req-late-1")
	err := g.Deliver(t.Context(), rec)
	if apierr.KindOf(err) != apierr.Unavailable || !strings.Contains(err.Error(), "in time") {
		t.Fatalf("a push acknowledged too late: %v, want Unavailable", err)
	}
	select {
	case id := <-revoked:
		if id != rec.RequestID {
			t.Errorf("withdrew %q, want %q", id, rec.RequestID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late key was not withdrawn")
	}
}

// TestWithdrawalAfterReconnect: when the agent's connection dies after a
// push timed out and before the withdrawal reached it, the withdrawal is
// sent again when the agent reconnects.
func TestWithdrawalAfterReconnect(t *testing.T) {
	g, st := newSigningGateway(t)
	first := connect(t, g, st, 0, testInventory)
	// The first connection takes the key, acknowledges too late, and dies
	// as the withdrawal comes.
	go func() {
		for {
			s, err := first.mux.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				c := agentproto.NewConn(s)
				var h agentproto.Header
				if c.Recv(&h) != nil {
					return
				}
				if h.Type == agentproto.TypeRevoke {
					first.mux.Close()
					return
				}
				var kp agentproto.KeyPush
				if c.Recv(&kp) != nil {
					return
				}
				time.Sleep(400 * time.Millisecond)
				_ = c.Send(agentproto.Ack{OK: true})
			}()
		}
	}()
	rec := testKeyRecord(t, "req-lost-1")
	if err := g.Deliver(t.Context(), rec); apierr.KindOf(err) != apierr.Unavailable {
		t.Fatalf("a push acknowledged too late: %v, want Unavailable", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Connected(testID) {
		if time.Now().After(deadline) {
			t.Fatal("the first connection did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}

	second := connect(t, g, st, 0, testInventory)
	revoked := make(chan string, 1)
	go func() {
		s, err := second.mux.AcceptStream()
		if err != nil {
			return
		}
		c := agentproto.NewConn(s)
		var h agentproto.Header
		var rv agentproto.Revoke
		if c.Recv(&h) != nil || h.Type != agentproto.TypeRevoke || c.Recv(&rv) != nil {
			return
		}
		_ = c.Send(agentproto.Ack{OK: true})
		revoked <- rv.RequestID
	}()
	select {
	case id := <-revoked:
		if id != rec.RequestID {
			t.Errorf("withdrew %q after the reconnection, want %q", id, rec.RequestID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the withdrawal was not sent again to the reconnected agent")
	}
	// Acknowledged: nothing is pending any more.
	deadline = time.Now().Add(2 * time.Second)
	for {
		g.mu.Lock()
		n := len(g.withdrawals)
		g.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d instances still have pending withdrawals", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newSigningGateway is a test gateway with a record-signing key and a
// short push timeout.
func newSigningGateway(t *testing.T) (*Gateway, *countingStore) {
	t.Helper()
	g, st := newTestGateway(t)
	sealer, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	if g.keys, err = LoadKeys(t.Context(), st, sealer, time.Now()); err != nil {
		t.Fatal(err)
	}
	g.PushTimeout = 200 * time.Millisecond
	return g, st
}

// testKeyRecord is a key record for the test instance with a new key.
func testKeyRecord(t *testing.T, requestID string) store.KeyRecord {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	return store.KeyRecord{RequestID: requestID, InstanceID: testID, OSUser: "ec2-user",
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), Fingerprint: ssh.FingerprintSHA256(sp),
		CallerARN: "arn:aws:iam::123456789012:user/alice", CreatedAt: now, ExpiresAt: now.Add(60 * time.Second)}
}

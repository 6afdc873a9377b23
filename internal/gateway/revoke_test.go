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
	g, st := newTestGateway(t)
	sealer, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	if g.keys, err = LoadKeys(t.Context(), st, sealer, time.Now()); err != nil {
		t.Fatal(err)
	}
	g.PushTimeout = 200 * time.Millisecond
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

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec := store.KeyRecord{RequestID: "req-late-1", InstanceID: testID, OSUser: "ec2-user",
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), Fingerprint: ssh.FingerprintSHA256(sp),
		CallerARN: "arn:aws:iam::123456789012:user/alice", CreatedAt: now, ExpiresAt: now.Add(60 * time.Second)}
	err = g.Deliver(t.Context(), rec)
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

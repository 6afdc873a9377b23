package gateway

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// serveTunnels answers the test agent's tunnel streams: it accepts each,
// sends "hi", and then either closes the stream (a host that ends the
// connection) or leaves it open.
func serveTunnels(a *testAgent, closeAfter bool) {
	go func() {
		for {
			s, err := a.mux.AcceptStream()
			if err != nil {
				return
			}
			c := agentproto.NewConn(s)
			var h agentproto.Header
			var to agentproto.TunnelOpen
			if c.Recv(&h) != nil || h.Type != agentproto.TypeTunnel || c.Recv(&to) != nil {
				s.Close()
				continue
			}
			_ = c.Send(agentproto.Ack{OK: true})
			_, _ = s.Write([]byte("hi"))
			if closeAfter {
				s.Close()
			}
		}
	}()
}

// A host that closes its end gives the tunnel a clean io.EOF; an agent
// connection lost mid-tunnel gives ErrTargetLost, so the tunnel closes
// with an error and its reason (before, both were io.EOF and a lost agent
// closed the WebSocket with 1000, as if the host had logged out).
func TestTunnelStreamTellsLostAgentFromEnd(t *testing.T) {
	g, st := newTestGateway(t)
	a := connect(t, g, st, 0, testInventory)
	serveTunnels(a, true)
	tun, err := g.OpenTunnel(t.Context(), testID, 22)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(tun); err != nil || string(b) != "hi" {
		t.Fatalf("a host that closes: read %q, %v; want \"hi\" and a clean end", b, err)
	}
	tun.Close()

	g2, st2 := newTestGateway(t)
	a2 := connect(t, g2, st2, 0, testInventory)
	serveTunnels(a2, false)
	tun2, err := g2.OpenTunnel(t.Context(), testID, 22)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(tun2, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(tun2)
		done <- err
	}()
	a2.mux.Close() // the agent's connection is lost
	select {
	case err := <-done:
		if !errors.Is(err, ErrTargetLost) {
			t.Fatalf("the agent lost mid-tunnel: %v, want ErrTargetLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel's read did not end when the agent's connection was lost")
	}
}

package agent

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// TestKeyStream: on the server's long-lived key stream, the agent answers
// every push with an ack carrying the push's ID, accepts good records,
// refuses others with the reason, and keeps serving after a refusal.
func TestKeyStream(t *testing.T) {
	now := time.Now()
	k := genKey(t)
	a := rolloverAgent(t, pubKey(k), now)

	srvConn, agentConn := net.Pipe()
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	srv, err := yamux.Server(srvConn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := yamux.Client(agentConn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	go a.acceptStreams(t.Context(), cli)

	st, err := srv.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c := agentproto.NewConn(st)
	if err := c.Send(agentproto.Header{Type: agentproto.TypeKeys}); err != nil {
		t.Fatal(err)
	}
	good := signedRecord(t, k, now)
	forged := signedRecord(t, genKey(t), now) // signed by a key the agent never pinned
	pushes := []agentproto.KeyPush{{ID: 7, Record: forged}, {ID: 8, Record: good}}
	for _, p := range pushes {
		if err := c.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pushes {
		var ack agentproto.Ack
		if err := c.Recv(&ack); err != nil {
			t.Fatal(err)
		}
		if ack.ID != p.ID {
			t.Fatalf("ack for ID %d, want %d", ack.ID, p.ID)
		}
		if want := p.Record.RequestID == good.RequestID; ack.OK != want || (!ack.OK && ack.Error == "") {
			t.Fatalf("push %d: ack %+v, want ok=%v (with a reason when refused)", p.ID, ack, want)
		}
	}
	a.mu.Lock()
	got := a.records
	a.mu.Unlock()
	if len(got) != 1 || got[0].RequestID != good.RequestID {
		t.Fatalf("records %+v, want only the good one", got)
	}
}

//go:build unix

package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"
)

func startAgent(t *testing.T, withKey bool) (*PrivateAgent, *EphemeralKey) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	var key *EphemeralKey
	if withKey {
		var err error
		if key, err = NewEphemeralKey(); err != nil {
			t.Fatal(err)
		}
	}
	a, err := StartPrivateAgent(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, key
}

func dialAgent(t *testing.T, a *PrivateAgent) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The handoff takes one connection, which then carries raw bytes both
// ways; the agent still serves its key on other connections.
func TestHandoff(t *testing.T) {
	a, key := startAgent(t, true)
	// Not offered yet: refused.
	if err := takeHandoff(dialAgent(t, a)); !errors.Is(err, errNoHandoff) {
		t.Fatalf("before OfferConnection: %v; want refused", err)
	}
	offered := a.OfferConnection()
	helper := dialAgent(t, a)
	if err := takeHandoff(helper); err != nil {
		t.Fatalf("takeHandoff: %v", err)
	}
	var parent net.Conn
	select {
	case parent = <-offered:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not handed over")
	}
	defer parent.Close()
	// Bytes that look like agent requests are not served: they are the
	// tunnel's.
	for _, msg := range [][]byte{{0, 0, 0, 1, 11}, []byte("SSH-2.0-OpenSSH_9.2\r\n")} {
		if _, err := helper.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(parent, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("helper → parent: %q %v; want %q", got, err, msg)
		}
		if _, err := parent.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(helper, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("parent → helper: %q %v; want %q", got, err, msg)
		}
	}
	// Once only.
	if err := takeHandoff(dialAgent(t, a)); !errors.Is(err, errNoHandoff) {
		t.Errorf("a second handoff: %v; want refused", err)
	}
	keys, err := agent.NewClient(dialAgent(t, a)).List()
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Blob, key.Public.Marshal()) {
		t.Errorf("the agent after the handoff: %v %v", keys, err)
	}
	// Closing the agent leaves the handed-over connection to its owner.
	a.Close()
	if _, err := parent.Write([]byte("x")); err != nil {
		t.Errorf("the handed-over connection was closed with the agent: %v", err)
	}
}

// A keyless agent is a socket for the handoff only.
func TestHandoffKeyless(t *testing.T) {
	a, _ := startAgent(t, false)
	if a.PubFile != "" {
		t.Errorf("PubFile %q; want none", a.PubFile)
	}
	if ents, _ := os.ReadDir(a.Dir); len(ents) != 1 {
		t.Errorf("%s holds %d entries; want the socket alone", a.Dir, len(ents))
	}
	if keys, err := agent.NewClient(dialAgent(t, a)).List(); err != nil || len(keys) != 0 {
		t.Errorf("List: %v %v; want no key", keys, err)
	}
	offered := a.OfferConnection()
	if err := takeHandoff(dialAgent(t, a)); err != nil {
		t.Fatal(err)
	}
	(<-offered).Close()
}

// HoldKeys: the key is listed and used only once ready; a request fails
// when the context ends first.
func TestHoldKeys(t *testing.T) {
	a, _ := startAgent(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	a.HoldKeys(ctx, ready)
	listed := make(chan error, 1)
	go func() {
		_, err := agent.NewClient(dialAgent(t, a)).List()
		listed <- err
	}()
	select {
	case err := <-listed:
		t.Fatalf("List answered (%v) before the key was ready", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(ready)
	if err := <-listed; err != nil {
		t.Fatalf("List once ready: %v", err)
	}

	a2, _ := startAgent(t, true)
	a2.HoldKeys(ctx, make(chan struct{}))
	go func() {
		_, err := agent.NewClient(dialAgent(t, a2)).List()
		listed <- err
	}()
	cancel()
	select {
	case err := <-listed:
		if err == nil {
			t.Error("List succeeded though the key never became ready")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("List still waits after the context ended")
	}
}

// PassHandoff gives ssh (here: the test, on a socket pair as ssh makes
// for a ProxyUseFdpass ProxyCommand) a descriptor of the handed-over
// connection, and SSHGone tells when ssh has ended.
func TestPassHandoff(t *testing.T) {
	a, _ := startAgent(t, true)
	offered := a.OfferConnection()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	sshEnd, helperEnd := os.NewFile(uintptr(fds[0]), "ssh"), os.NewFile(uintptr(fds[1]), "helper")
	defer sshEnd.Close()
	defer helperEnd.Close()
	if SSHGone(helperEnd) {
		t.Error("SSHGone with ssh's end open")
	}
	if err := PassHandoff(context.Background(), a.Socket, helperEnd); err != nil {
		t.Fatal(err)
	}
	// What ssh's mm_receive_fd does.
	buf, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := syscall.Recvmsg(int(sshEnd.Fd()), buf, oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v %v", msgs, err)
	}
	got, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != 1 {
		t.Fatalf("rights: %v %v", got, err)
	}
	f := os.NewFile(uintptr(got[0]), "passed")
	sshConn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer sshConn.Close()
	parent := <-offered
	defer parent.Close()
	if _, err := sshConn.Write([]byte("SSH-2.0-test\r\n")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 14)
	if _, err := io.ReadFull(parent, b); err != nil || string(b) != "SSH-2.0-test\r\n" {
		t.Fatalf("through the passed descriptor: %q %v", b, err)
	}
	sshEnd.Close()
	if !SSHGone(helperEnd) {
		t.Error("SSHGone false after ssh's end closed")
	}
	// Nothing left to take.
	fds2, _ := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	out := os.NewFile(uintptr(fds2[1]), "helper2")
	defer out.Close()
	defer syscall.Close(fds2[0])
	if err := PassHandoff(context.Background(), a.Socket, out); !errors.Is(err, errNoHandoff) {
		t.Errorf("a second PassHandoff: %v; want refused", err)
	}
}

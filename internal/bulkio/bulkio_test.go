package bulkio

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

func tlsPair(t *testing.T) (client, server *tls.Conn) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulkio"}, DNSNames: []string{"bulkio"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := tls.NewListener(Listener{ln}, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	done := make(chan *tls.Conn, 1)
	go func() {
		c, err := tl.Accept()
		if err != nil {
			done <- nil
			return
		}
		tc := c.(*tls.Conn)
		_ = tc.Handshake()
		done <- tc
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = tls.Client(Wrap(raw), &tls.Config{RootCAs: pool, ServerName: "bulkio"})
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.Fatal("no server connection")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestBulkBothWays moves data both ways at once through batched
// connections, in writes of many sizes, and compares checksums.
func TestBulkBothWays(t *testing.T) {
	c, s := tlsPair(t)
	bc, bs := Batch(c), Batch(s)
	if _, ok := bc.(*batched); !ok {
		t.Fatal("Batch did not take the client's connection")
	}
	const size = 64 << 20
	send := func(w io.Writer, seed byte) []byte {
		h := sha256.New()
		src := mrand.NewChaCha8([32]byte{seed})
		r := mrand.New(mrand.NewPCG(uint64(seed), 1))
		buf := make([]byte, 1<<20)
		for sent := 0; sent < size; {
			n := min(size-sent, 1+r.IntN(len(buf)))
			src.Read(buf[:n])
			h.Write(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				t.Error(err)
				break
			}
			sent += n
		}
		return h.Sum(nil)
	}
	recv := func(r io.Reader) []byte {
		h := sha256.New()
		if n, err := io.CopyN(h, r, size); err != nil || n != size {
			t.Errorf("received %d: %v", n, err)
		}
		return h.Sum(nil)
	}
	sent1, sent2, got1, got2 := make(chan []byte, 1), make(chan []byte, 1), make(chan []byte, 1), make(chan []byte, 1)
	go func() { sent1 <- send(bc, 1) }()
	go func() { sent2 <- send(bs, 2) }()
	go func() { got1 <- recv(bs) }()
	go func() { got2 <- recv(bc) }()
	if !bytes.Equal(<-sent1, <-got1) || !bytes.Equal(<-sent2, <-got2) {
		t.Fatal("checksums differ")
	}
}

// TestDeadlineAndEOF: a read deadline ends a bulk read waiting on an idle
// socket, and the connection still works after it; the peer's close is
// io.EOF.
func TestDeadlineAndEOF(t *testing.T) {
	c, s := tlsPair(t)
	bc, bs := Batch(c), Batch(s)
	_ = bs.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := bs.Read(make([]byte, 100))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	raw := s.NetConn().(*Conn)
	if raw.rbuf != nil {
		t.Error("an idle bulk connection holds a read buffer")
	}
	_ = bs.SetReadDeadline(time.Time{})
	// crypto/tls gives up on a connection after a timeout mid-record; on
	// an idle one it can go on.
	go bc.Write([]byte("hello"))
	got := make([]byte, 5)
	if _, err := io.ReadFull(bs, got); err != nil || string(got) != "hello" {
		t.Fatalf("after the deadline: %q %v", got, err)
	}
	c.NetConn().Close()
	if _, err := bs.Read(got); err == nil {
		t.Fatal("read after the peer's close succeeded")
	}
}

// TestPassThrough: without Bulk, a Conn is its connection.
func TestPassThrough(t *testing.T) {
	a, b := net.Pipe()
	c := Wrap(a)
	go b.Write([]byte("abc"))
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "abc" {
		t.Fatal(got, err)
	}
	if Batch(c) != net.Conn(c) {
		t.Fatal("Batch changed a connection without TLS")
	}
}

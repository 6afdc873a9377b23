package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAKID    = "AKIAIOSFODNN7EXAMPLE"
	testSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	otherAKID   = "AKIAI44QH8DHBEXAMPLE"
	otherSecret = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
	testRegion  = "us-east-1"
	testToken   = "FwoGZXIvYXdzEBYaDExampleSessionToken+/="
	eiceHost    = "eice-0123456789abcdef0.1a2b3c4d.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
)

var (
	testTime     = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	testServices = []string{"iam", "sts", "ec2", "ec2-instance-connect"}
	testKeys     = map[string]string{testAKID: testSecret, otherAKID: otherSecret}
	testCreds    = aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
)

func testLookup(_ context.Context, id string) (string, error) {
	if s, ok := testKeys[id]; ok {
		return s, nil
	}
	return "", fmt.Errorf("no key %s: %w", id, ErrUnknownKey)
}

// newVerifier returns a verifier whose clock reads now. manual skips the
// SDK signer. The returned func reports how the last verified request's
// signature was computed.
func newVerifier(t testing.TB, now time.Time, manual bool) (*Verifier, func() (sdk, seen bool)) {
	t.Helper()
	v, err := New(Config{
		Region:   testRegion,
		Services: testServices,
		Lookup:   testLookup,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var used, seen bool
	v.manualOnly = manual
	v.trace = func(sdk bool) { mu.Lock(); used, seen = sdk, true; mu.Unlock() }
	return v, func() (bool, bool) { mu.Lock(); defer mu.Unlock(); u, s := used, seen; seen = false; return u, s }
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// newClientRequest builds an outgoing request with a body.
func newClientRequest(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// sdkSign signs req with the real SDK signer, header form.
func sdkSign(t testing.TB, req *http.Request, body []byte, creds aws.Credentials, service string, at time.Time) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexSHA256(body), service, testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// sdkPresign presigns req with the real SDK signer and returns the URL.
func sdkPresign(t testing.TB, req *http.Request, creds aws.Credentials, service string, at time.Time) string {
	t.Helper()
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hexSHA256(nil), service, testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// serverRequest turns an outgoing request into what an http.Server hands
// its handler: written to the wire and read back (Host moves to r.Host,
// header keys are canonicalized, RequestURI is the raw target).
func serverRequest(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	return readWire(t, wire.Bytes())
}

func readWire(t testing.TB, wire []byte) (*http.Request, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatalf("reading request back: %v\n%s", err, wire)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

// presignedServerRequest is a GET of a presigned URL as a server sees it,
// with the WebSocket handshake headers a client adds (unsigned).
func presignedServerRequest(t testing.TB, url string) *http.Request {
	t.Helper()
	req := newClientRequest(t, http.MethodGet, url, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("User-Agent", "aws-cli/2.0 awscrt")
	r, _ := serverRequest(t, req)
	return r
}

// mustVerify checks that both ways of computing the signature accept r,
// and that the SDK signer was (sdk) or was not used.
func mustVerify(t testing.TB, r *http.Request, body []byte, now time.Time, sdk bool) *Identity {
	t.Helper()
	v, used := newVerifier(t, now, false)
	id, err := v.Verify(context.Background(), r, body)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if u, _ := used(); u != sdk {
		t.Errorf("signature computed with the SDK signer = %v, want %v", u, sdk)
	}
	vm, _ := newVerifier(t, now, true)
	idm, err := vm.Verify(context.Background(), r, body)
	if err != nil {
		t.Fatalf("Verify (hand-built canonical request): %v", err)
	}
	if *id != *idm {
		t.Errorf("identities differ: %+v vs %+v", id, idm)
	}
	return id
}

// mustFail checks that both ways reject r with kind, and that the message
// contains want.
func mustFail(t testing.TB, r *http.Request, body []byte, now time.Time, kind Kind, want string) *Error {
	t.Helper()
	var first *Error
	for _, manual := range []bool{false, true} {
		v, _ := newVerifier(t, now, manual)
		id, err := v.Verify(context.Background(), r, body)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Verify = %+v, %v; want a %v *Error", id, err, kind)
		}
		if id != nil {
			t.Errorf("Verify returned an identity with an error")
		}
		if e.Kind != kind {
			t.Fatalf("kind = %v (%s), want %v", e.Kind, e.Message, kind)
		}
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q does not contain %q", e.Message, want)
		}
		if strings.Contains(e.Error(), testSecret) || strings.Contains(e.Error(), otherSecret) {
			t.Errorf("error reveals a secret: %v", e)
		}
		if first == nil {
			first = e
		}
	}
	return first
}

// testServer runs the verifier (both ways) in an httptest server and
// answers every verified request with resp(r); results receives each
// request's outcome.
type outcome struct {
	id     *Identity
	err    error
	sdk    bool
	manual error
}

func testServer(t *testing.T, now func() time.Time, resp func(w http.ResponseWriter, r *http.Request, body []byte)) (*httptest.Server, <-chan outcome) {
	t.Helper()
	ch := make(chan outcome, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		v, used := newVerifier(t, now(), false)
		vm, _ := newVerifier(t, now(), true)
		id, err := v.Verify(r.Context(), r, body)
		_, merr := vm.Verify(r.Context(), r, body)
		sdk, _ := used()
		ch <- outcome{id: id, err: err, sdk: sdk, manual: merr}
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "%v", err)
			return
		}
		resp(w, r, body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func next(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("no request reached the server")
	}
	return outcome{}
}

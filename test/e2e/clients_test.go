package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	binenc "encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// --- client options (the clients are harness.Server's) ------------------------

// shiftedSigner is the SDK's signer with a fake clock: it signs as if it
// were now+shift.
type shiftedSigner struct {
	inner *v4.Signer
	shift time.Duration
}

func (s shiftedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, hash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	return s.inner.SignHTTP(ctx, c, r, hash, service, region, t.Add(s.shift), optFns...)
}

// replaceBody swaps the serialized body for b before the request is signed,
// so that the server sees a correctly signed request with this body.
func replaceBody(b []byte) harness.ClientOpt {
	return harness.WithMiddleware(func(st *middleware.Stack) error {
		return st.Serialize.Add(middleware.SerializeMiddlewareFunc("e2eReplaceBody",
			func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
				req := in.Request.(*smithyhttp.Request)
				r, err := req.SetStream(strings.NewReader(string(b)))
				if err != nil {
					return middleware.SerializeOutput{}, middleware.Metadata{}, err
				}
				r.ContentLength = int64(len(b))
				in.Request = r
				return next.HandleSerialize(ctx, in)
			}), middleware.After)
	})
}

// setHeader sets a header before signing (e.g. another X-Amz-Target).
func setHeader(k, v string) harness.ClientOpt {
	return harness.WithMiddleware(func(st *middleware.Stack) error {
		return st.Serialize.Add(middleware.SerializeMiddlewareFunc("e2eSetHeader",
			func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
				in.Request.(*smithyhttp.Request).Header.Set(k, v)
				return next.HandleSerialize(ctx, in)
			}), middleware.After)
	})
}

// stripAuth removes the signature after signing: a request with no
// Authorization header at all.
func stripAuth() harness.ClientOpt {
	return harness.WithMiddleware(func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("e2eStripAuth",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				h := in.Request.(*smithyhttp.Request).Header
				h.Del("Authorization")
				h.Del("X-Amz-Date")
				h.Del("X-Amz-Content-Sha256")
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

// --- SSH keys ------------------------------------------------------------------

func ecdsaKey(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return harness.AuthorizedKey(t, &k.PublicKey)
}

func rsaKey(t testing.TB, bits int) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return harness.AuthorizedKey(t, &k.PublicKey)
}

// skEd25519Key is a FIDO security-key public key line
// (sk-ssh-ed25519@openssh.com), which Instance Connect refuses.
func skEd25519Key(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	put := func(s []byte) {
		b = binenc.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	put([]byte("sk-ssh-ed25519@openssh.com"))
	put(pub)
	put([]byte("ssh:"))
	return "sk-ssh-ed25519@openssh.com " + base64.StdEncoding.EncodeToString(b) + " fido@kaginashi"
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)[:n]
}

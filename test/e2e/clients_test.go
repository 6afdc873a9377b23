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
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/crypto/ssh"
)

// --- the record of every call, for the audit check -------------------------

// sentCall is one API call a test made and what came back.
type sentCall struct {
	Who       string // "root", a user name, or "" (unauthenticated)
	Service   string // the SDK's service ID: IAM, STS, EC2, EC2 Instance Connect, CloudTrail
	Op        string // the event name the audit must show; "-": not checked
	RequestID string
	Code      string // the error code, "" for success
	Status    int
}

type callLog struct {
	mu    sync.Mutex
	calls []sentCall
}

func (l *callLog) add(c sentCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *callLog) all() []sentCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sentCall(nil), l.calls...)
}

// recordCalls is SDK middleware that logs each call's outcome.
func recordCalls(l *callLog, who, op string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("e2eRecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				c := sentCall{Who: who, Service: awsmiddleware.GetServiceID(ctx), Op: op}
				if c.Op == "" {
					c.Op = awsmiddleware.GetOperationName(ctx)
				}
				var re *awshttp.ResponseError
				switch {
				case err == nil && awsmiddleware.GetRawResponse(md) == nil:
					return out, md, err // presigned, not sent
				case err == nil:
					c.RequestID, _ = awsmiddleware.GetRequestIDMetadata(md)
					c.Status = 200
				case errors.As(err, &re):
					c.RequestID, c.Status = re.ServiceRequestID(), re.HTTPStatusCode()
					var ae smithy.APIError
					if errors.As(err, &ae) {
						c.Code = ae.ErrorCode()
					}
				default:
					return out, md, err // no answer: nothing to audit
				}
				l.add(c)
				return out, md, err
			}), middleware.After)
	}
}

// --- clients -------------------------------------------------------------------

// signerV4 is the SigV4 signer interface every service client takes.
type signerV4 interface {
	SignHTTP(ctx context.Context, credentials aws.Credentials, r *http.Request, payloadHash string, service string, region string, signingTime time.Time, optFns ...func(*v4.SignerOptions)) error
}

// shiftedSigner is the SDK's signer with a fake clock: it signs as if it
// were now+shift.
type shiftedSigner struct {
	inner *v4.Signer
	shift time.Duration
}

func (s shiftedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, hash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	return s.inner.SignHTTP(ctx, c, r, hash, service, region, t.Add(s.shift), optFns...)
}

type clientConf struct {
	who        string
	region     string
	op         string // overrides the recorded operation name
	signer     signerV4
	apiOptions []func(*middleware.Stack) error
}

type clientOpt func(*clientConf)

// inRegion signs for another region than the server's.
func inRegion(r string) clientOpt { return func(c *clientConf) { c.region = r } }

// withSigner replaces the SDK's signer.
func withSigner(s signerV4) clientOpt { return func(c *clientConf) { c.signer = s } }

// asWho records the calls as made by who ("" = unauthenticated).
func asWho(who string) clientOpt { return func(c *clientConf) { c.who = who } }

// auditedAs records the calls under another event name ("-": any).
func auditedAs(op string) clientOpt { return func(c *clientConf) { c.op = op } }

// withMiddleware adds SDK middleware.
func withMiddleware(f func(*middleware.Stack) error) clientOpt {
	return func(c *clientConf) { c.apiOptions = append(c.apiOptions, f) }
}

// replaceBody swaps the serialized body for b before the request is signed,
// so that the server sees a correctly signed request with this body.
func replaceBody(b []byte) clientOpt {
	return withMiddleware(func(st *middleware.Stack) error {
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
func setHeader(k, v string) clientOpt {
	return withMiddleware(func(st *middleware.Stack) error {
		return st.Serialize.Add(middleware.SerializeMiddlewareFunc("e2eSetHeader",
			func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
				in.Request.(*smithyhttp.Request).Header.Set(k, v)
				return next.HandleSerialize(ctx, in)
			}), middleware.After)
	})
}

// stripAuth removes the signature after signing: a request with no
// Authorization header at all.
func stripAuth() clientOpt {
	return withMiddleware(func(st *middleware.Stack) error {
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

// config is an SDK configuration for creds against the server: its URL as
// BaseEndpoint, an HTTP client trusting its CA, no retries (every answer is
// the server's first), every call recorded for the audit check.
func (s *Server) config(c Creds, opts ...clientOpt) (aws.Config, clientConf) {
	cc := clientConf{who: c.Who, region: s.Region}
	for _, o := range opts {
		o(&cc)
	}
	cfg := aws.Config{
		Region:       cc.region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.ID, c.Secret, ""),
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   s.HTTP,
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	cfg.APIOptions = append(cfg.APIOptions, cc.apiOptions...)
	cfg.APIOptions = append(cfg.APIOptions, recordCalls(s.Calls, cc.who, cc.op))
	return cfg, cc
}

// IAM is a global service: SDKs sign it for us-east-1 whatever the region.
func (s *Server) IAM(c Creds, opts ...clientOpt) *iam.Client {
	cfg, cc := s.config(c, append([]clientOpt{inRegion("us-east-1")}, opts...)...)
	return iam.NewFromConfig(cfg, func(o *iam.Options) {
		if cc.signer != nil {
			o.HTTPSignerV4 = cc.signer
		}
	})
}

func (s *Server) STS(c Creds, opts ...clientOpt) *sts.Client {
	cfg, cc := s.config(c, opts...)
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if cc.signer != nil {
			o.HTTPSignerV4 = cc.signer
		}
	})
}

func (s *Server) EC2(c Creds, opts ...clientOpt) *ec2.Client {
	cfg, cc := s.config(c, opts...)
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if cc.signer != nil {
			o.HTTPSignerV4 = cc.signer
		}
	})
}

func (s *Server) EIC(c Creds, opts ...clientOpt) *ec2instanceconnect.Client {
	cfg, cc := s.config(c, opts...)
	return ec2instanceconnect.NewFromConfig(cfg, func(o *ec2instanceconnect.Options) {
		if cc.signer != nil {
			o.HTTPSignerV4 = cc.signer
		}
	})
}

func (s *Server) CT(c Creds, opts ...clientOpt) *cloudtrail.Client {
	cfg, cc := s.config(c, opts...)
	return cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
		if cc.signer != nil {
			o.HTTPSignerV4 = cc.signer
		}
	})
}

// --- errors --------------------------------------------------------------------

// statusOf is the HTTP status of an SDK error (0 if it has none).
func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// wantCode asserts that err is an API error with code and, unless 0, HTTP
// status, as the SDK parsed it.
func wantCode(t testing.TB, err error, code string, status int) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %q (%v), want %q", ae.ErrorCode(), err, code)
	}
	if status != 0 && statusOf(err) != status {
		t.Fatalf("%s: HTTP status %d, want %d", code, statusOf(err), status)
	}
	if ae.ErrorMessage() == "" {
		t.Errorf("%s without a message", code)
	}
	return ae
}

// wantTyped asserts that err is the SDK's typed error T with HTTP status
// (unless 0).
func wantTyped[T error](t testing.TB, err error, status int) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("want %T, got %v", target, err)
	}
	if status != 0 && statusOf(err) != status {
		t.Fatalf("%T: HTTP status %d, want %d", target, statusOf(err), status)
	}
	return target
}

func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// --- SSH keys ------------------------------------------------------------------

// ed25519Key is a fresh "ssh-ed25519 AAAA... comment" line.
func ed25519Key(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub) + " e2e@kaginashi"
}

func authorizedKey(t testing.TB, pub any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

func ecdsaKey(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, &k.PublicKey)
}

func rsaKey(t testing.TB, bits int) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, &k.PublicKey)
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

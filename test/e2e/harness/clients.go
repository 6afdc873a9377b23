package harness

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
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
	"golang.org/x/crypto/ssh"
)

// --- the record of every call, for the audit check -------------------------

// SentCall is one API call a test made and what came back.
type SentCall struct {
	Who       string // "root", a user name, or "" (unauthenticated)
	Service   string // the SDK's service ID: IAM, STS, EC2, EC2 Instance Connect, CloudTrail
	Op        string // the event name the audit must show; "-": not checked
	RequestID string
	Code      string // the error code, "" for success
	Status    int
}

// CallLog collects SentCalls.
type CallLog struct {
	mu    sync.Mutex
	calls []SentCall
}

// Add records a call.
func (l *CallLog) Add(c SentCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// All is every call recorded so far.
func (l *CallLog) All() []SentCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SentCall(nil), l.calls...)
}

// RecordCalls is SDK middleware that logs each call's outcome.
func RecordCalls(l *CallLog, who, op string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("e2eRecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				c := SentCall{Who: who, Service: awsmiddleware.GetServiceID(ctx), Op: op}
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
				l.Add(c)
				return out, md, err
			}), middleware.After)
	}
}

// --- clients -------------------------------------------------------------------

// SignerV4 is the SigV4 signer interface every service client takes.
type SignerV4 interface {
	SignHTTP(ctx context.Context, credentials aws.Credentials, r *http.Request, payloadHash string, service string, region string, signingTime time.Time, optFns ...func(*v4.SignerOptions)) error
}

// ClientConf is how a client is made.
type ClientConf struct {
	Who        string
	Region     string
	Op         string // overrides the recorded operation name
	Signer     SignerV4
	APIOptions []func(*middleware.Stack) error
}

// ClientOpt changes a ClientConf.
type ClientOpt func(*ClientConf)

// InRegion signs for another region than the server's.
func InRegion(r string) ClientOpt { return func(c *ClientConf) { c.Region = r } }

// WithSigner replaces the SDK's signer.
func WithSigner(s SignerV4) ClientOpt { return func(c *ClientConf) { c.Signer = s } }

// AsWho records the calls as made by who ("" = unauthenticated).
func AsWho(who string) ClientOpt { return func(c *ClientConf) { c.Who = who } }

// AuditedAs records the calls under another event name ("-": any).
func AuditedAs(op string) ClientOpt { return func(c *ClientConf) { c.Op = op } }

// WithMiddleware adds SDK middleware.
func WithMiddleware(f func(*middleware.Stack) error) ClientOpt {
	return func(c *ClientConf) { c.APIOptions = append(c.APIOptions, f) }
}

// Config is an SDK configuration for creds against the server: its URL as
// BaseEndpoint, an HTTP client trusting its CA, no retries (every answer is
// the server's first), every call recorded for the audit check.
func (s *Server) Config(c Creds, opts ...ClientOpt) (aws.Config, ClientConf) {
	cc := ClientConf{Who: c.Who, Region: s.Region}
	for _, o := range opts {
		o(&cc)
	}
	cfg := aws.Config{
		Region:       cc.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.ID, c.Secret, ""),
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   s.HTTP,
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	cfg.APIOptions = append(cfg.APIOptions, cc.APIOptions...)
	cfg.APIOptions = append(cfg.APIOptions, RecordCalls(s.Calls, cc.Who, cc.Op))
	return cfg, cc
}

// IAM is a global service: SDKs sign it for us-east-1 whatever the region.
func (s *Server) IAM(c Creds, opts ...ClientOpt) *iam.Client {
	cfg, cc := s.Config(c, append([]ClientOpt{InRegion("us-east-1")}, opts...)...)
	return iam.NewFromConfig(cfg, func(o *iam.Options) {
		if cc.Signer != nil {
			o.HTTPSignerV4 = cc.Signer
		}
	})
}

func (s *Server) STS(c Creds, opts ...ClientOpt) *sts.Client {
	cfg, cc := s.Config(c, opts...)
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if cc.Signer != nil {
			o.HTTPSignerV4 = cc.Signer
		}
	})
}

func (s *Server) EC2(c Creds, opts ...ClientOpt) *ec2.Client {
	cfg, cc := s.Config(c, opts...)
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if cc.Signer != nil {
			o.HTTPSignerV4 = cc.Signer
		}
	})
}

func (s *Server) EIC(c Creds, opts ...ClientOpt) *ec2instanceconnect.Client {
	cfg, cc := s.Config(c, opts...)
	return ec2instanceconnect.NewFromConfig(cfg, func(o *ec2instanceconnect.Options) {
		if cc.Signer != nil {
			o.HTTPSignerV4 = cc.Signer
		}
	})
}

func (s *Server) CT(c Creds, opts ...ClientOpt) *cloudtrail.Client {
	cfg, cc := s.Config(c, opts...)
	return cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
		if cc.Signer != nil {
			o.HTTPSignerV4 = cc.Signer
		}
	})
}

// --- errors --------------------------------------------------------------------

// StatusOf is the HTTP status of an SDK error (0 if it has none).
func StatusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// WantCode asserts that err is an API error with code and, unless 0, HTTP
// status, as the SDK parsed it.
func WantCode(t testing.TB, err error, code string, status int) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %q (%v), want %q", ae.ErrorCode(), err, code)
	}
	if status != 0 && StatusOf(err) != status {
		t.Fatalf("%s: HTTP status %d, want %d", code, StatusOf(err), status)
	}
	if ae.ErrorMessage() == "" {
		t.Errorf("%s without a message", code)
	}
	return ae
}

// WantTyped asserts that err is the SDK's typed error T with HTTP status
// (unless 0).
func WantTyped[T error](t testing.TB, err error, status int) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("want %T, got %v", target, err)
	}
	if status != 0 && StatusOf(err) != status {
		t.Fatalf("%T: HTTP status %d, want %d", target, StatusOf(err), status)
	}
	return target
}

// Must fails the test on err: Must(c.Op(...))(t).
func Must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// --- SSH keys and policies -----------------------------------------------------

// Ed25519Key is a fresh "ssh-ed25519 AAAA... comment" line.
func Ed25519Key(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return AuthorizedKey(t, pub) + " e2e@kaginashi"
}

// AuthorizedKey is the "type base64" line of a public key.
func AuthorizedKey(t testing.TB, pub any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

// RawSeedPolicy is examples/seed-policy.json as it is, placeholders and all.
func RawSeedPolicy(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "seed-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// SeedPolicy is examples/seed-policy.json with its placeholders (region,
// account ID) filled in.
func SeedPolicy(t testing.TB, region, account string) string {
	t.Helper()
	s := RawSeedPolicy(t)
	if !strings.Contains(s, "リージョン") || !strings.Contains(s, "アカウントID") {
		t.Fatalf("examples/seed-policy.json has no placeholders any more:\n%s", s)
	}
	return strings.NewReplacer("リージョン", region, "アカウントID", account).Replace(s)
}

// Doc builds a policy document from statements.
func Doc(statements ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	return string(b)
}

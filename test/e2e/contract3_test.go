package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestContract3 checks lines of issue #3's contract that an acceptance
// test written from the text would try and the other tests did
// not: found by the audit of session 6.
func TestContract3(t *testing.T) {
	t.Parallel()
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1")
	e := &env{Server: s}
	t.Run("credential scope names another service", func(t *testing.T) {
		testScopedToAnotherService(t, e)
	})
}

// serviceSigner signs every request for one SigV4 service name, whatever
// the client is for.
type serviceSigner struct{ service string }

func (s serviceSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, hash, _, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, hash, s.service, region, t, optFns...)
}

// testScopedToAnotherService: §2 "credential scope (region, service)
// checked". One listener serves every API, so a request signed for another
// of them (an STS call signed for iam) is a scope error in the words and
// the shape of the API the client speaks — as AWS's endpoint for that
// service answers it — not an unknown Version or operation of the API the
// scope happens to name. A service kaginashi does not serve (s3) is the
// same error, in the client's shape too.
func testScopedToAnotherService(t *testing.T, e *env) {
	want := map[string]codeStatus{
		"IAM": {"SignatureDoesNotMatch", 403}, "STS": {"SignatureDoesNotMatch", 403}, "EC2": {"AuthFailure", 401},
		"EIC": {"InvalidSignatureException", 403}, "CloudTrail": {"InvalidSignatureException", 403},
	}
	own := map[string]string{"IAM": "iam", "STS": "sts", "EC2": "ec2", "EIC": "ec2-instance-connect", "CloudTrail": "cloudtrail"}
	others := map[string][]string{
		"IAM": {"sts", "ec2", "s3"}, "STS": {"iam", "ec2-instance-connect", "s3"}, "EC2": {"sts", "iam", "s3"},
		"EIC": {"ec2", "cloudtrail", "sts", "s3"}, "CloudTrail": {"ec2-instance-connect", "iam", "s3"},
	}
	for _, svc := range services {
		for _, signed := range others[svc.name] {
			t.Run(svc.name+"/signed for "+signed, func(t *testing.T) {
				err := svc.call(e, e.Root, harness.AsWho(""), harness.WithSigner(serviceSigner{signed}))
				w := want[svc.name]
				ae := harness.WantCode(t, err, w.code, w.status)
				if msg := ae.ErrorMessage(); !strings.Contains(msg, "Credential should be scoped to correct service") ||
					!strings.Contains(msg, "'"+own[svc.name]+"'") || !strings.Contains(msg, "'"+signed+"'") {
					t.Errorf("message %q: want it to name the service to sign for (%s) and the one signed for (%s)", msg, own[svc.name], signed)
				}
			})
		}
		// The positive control: the same signer with the right name (this
		// server has no instances: the push gets as far as the lookup).
		err := svc.call(e, e.Root, harness.WithSigner(serviceSigner{own[svc.name]}))
		if svc.name == "EIC" {
			t.Run("EIC/signed for ec2-instance-connect", func(t *testing.T) { harness.WantCode(t, err, "EC2InstanceNotFoundException", 404) })
		} else if err != nil {
			t.Errorf("%s signed for %s: %v", svc.name, own[svc.name], err)
		}
	}
}

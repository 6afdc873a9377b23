package awsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/sigv4"
)

// Services whose requests the API accepts, by SigV4 signing name.
var signingNames = []string{"iam", "sts", "ec2", "ec2-instance-connect", "cloudtrail", "kaginashi"}

// globalRegion is where SDKs sign IAM (a global service) and, by default,
// STS: us-east-1, whatever the deployment's region.
const globalRegion = "us-east-1"

// SigV4 authenticates requests with AWS Signature Version 4 against the
// access keys the authorizer knows.
type SigV4 struct {
	regional *sigv4.Verifier
	global   *sigv4.Verifier // IAM and STS signed for us-east-1; nil when the region is us-east-1
	authz    *iam.Authorizer
}

// NewSigV4 makes the authenticator for a deployment's region.
func NewSigV4(region string, authz *iam.Authorizer, now func() time.Time) (*SigV4, error) {
	lookup := func(ctx context.Context, id string) (string, error) {
		secret, _, err := authz.Credentials(ctx, id)
		if errors.Is(err, iam.ErrUnknownKey) {
			return "", fmt.Errorf("%w: %s", sigv4.ErrUnknownKey, id)
		}
		return secret, err
	}
	a := &SigV4{authz: authz}
	var err error
	if a.regional, err = sigv4.New(sigv4.Config{Region: region, Services: signingNames, Lookup: lookup, Now: now}); err != nil {
		return nil, err
	}
	if region != globalRegion {
		if a.global, err = sigv4.New(sigv4.Config{Region: globalRegion, Services: []string{"iam", "sts"}, Lookup: lookup, Now: now}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Authenticate verifies the request and resolves its signer.
func (a *SigV4) Authenticate(ctx context.Context, r *http.Request, body []byte) (*Auth, error) {
	v := a.regional
	if a.global != nil && scopeRegion(r) == globalRegion {
		switch scopeService(r) {
		case "iam", "sts":
			v = a.global
		}
	}
	id, err := v.Verify(ctx, r, body)
	if err != nil {
		return nil, mapSigV4(err)
	}
	if id.SessionToken != "" {
		// kaginashi issues no temporary credentials, so no session token
		// can be valid; refusing it keeps a stolen long-term key from
		// passing for a session.
		return nil, apierr.New(apierr.UnknownAccessKey, "The security token included in the request is invalid.")
	}
	_, p, err := a.authz.Credentials(ctx, id.AccessKeyID)
	if err != nil {
		if errors.Is(err, iam.ErrUnknownKey) {
			return nil, apierr.New(apierr.UnknownAccessKey, "The security token included in the request is invalid.")
		}
		return nil, err
	}
	return &Auth{Principal: p, Service: id.Service, Region: id.Region, SignedAt: id.SignedAt, Presigned: id.Presigned}, nil
}

// scopeRegion reads the region from the credential scope.
func scopeRegion(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if h := r.Header.Get("Authorization"); h != "" {
		if i := strings.Index(h, "Credential="); i >= 0 {
			cred = h[i+len("Credential="):]
			if j := strings.IndexAny(cred, ", "); j >= 0 {
				cred = cred[:j]
			}
		}
	}
	parts := strings.Split(cred, "/")
	if len(parts) == 5 {
		return parts[2]
	}
	return ""
}

// mapSigV4 turns verification failures into API errors, with AWS's words.
func mapSigV4(err error) error {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return apierr.Wrap(err, "verifying the signature")
	}
	switch se.Kind {
	case sigv4.MissingAuth:
		return apierr.New(apierr.MissingAuth, "Request is missing Authentication Token")
	case sigv4.UnknownKey:
		return apierr.New(apierr.UnknownAccessKey, "The security token included in the request is invalid.")
	case sigv4.SignatureMismatch, sigv4.WrongScope:
		// AWS answers a wrong region or service scope with
		// SignatureDoesNotMatch too ("Credential should be scoped to ...").
		return apierr.New(apierr.SignatureMismatch, "%s", se.Message)
	case sigv4.Expired, sigv4.Skewed:
		return apierr.New(apierr.ExpiredSignature, "%s", se.Message)
	}
	return apierr.New(apierr.InvalidSignature, "%s", se.Message)
}

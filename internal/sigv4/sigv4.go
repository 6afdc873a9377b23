// Package sigv4 verifies AWS Signature Version 4 on incoming requests, in
// both forms: the Authorization header (every API call of the AWS CLI and
// SDKs) and the presigned query string (the EICE openTunnel WebSocket URL).
//
// The expected signature is computed by the AWS SDK for Go v2's own signer
// on a request rebuilt from what the client signed; where that signer
// cannot reproduce what a client signed (see sdk.go) the canonical request
// is built by hand, the same way. Verify only authenticates: it says which
// access key signed the request, or why it cannot tell. Mapping the failure
// kinds to a protocol's error codes is the caller's job.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures a Verifier.
type Config struct {
	// Region is the only region accepted in the credential scope.
	Region string
	// Services are the accepted signing names, e.g. "iam", "sts", "ec2",
	// "ec2-instance-connect". With more than one, the caller must check
	// Identity.Service against the API the request is for.
	Services []string
	// Lookup returns the secret access key for an access key ID, or an error
	// wrapping ErrUnknownKey when the key does not exist or is inactive. Any
	// other error is passed back from Verify as a server fault.
	Lookup func(ctx context.Context, accessKeyID string) (secret string, err error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxSkew is how far the request date may be from now; 5 minutes when
	// zero, as on AWS.
	MaxSkew time.Duration
}

// Verifier checks SigV4 signatures. It is safe for concurrent use.
type Verifier struct {
	region   string
	services []string
	lookup   func(context.Context, string) (string, error)
	now      func() time.Time
	maxSkew  time.Duration
	// manualOnly skips the SDK signer (tests and benchmarks compare the
	// two ways); trace, when set, is told which way a verified request's
	// signature was computed.
	manualOnly bool
	trace      func(sdk bool)
	// signers are the SDK signers, one per access key (signers.go).
	signers *signerCache
}

// Identity is who signed a verified request.
type Identity struct {
	AccessKeyID string
	Region      string
	Service     string
	SignedAt    time.Time
	Presigned   bool
	// SessionToken is X-Amz-Security-Token as sent, "" if none. Verify does
	// not check it: a caller that issues temporary credentials must check
	// that it belongs to AccessKeyID; one that does not must refuse it.
	SessionToken string
	// UnsignedPayload is true when the body is not covered by the
	// signature (x-amz-content-sha256: UNSIGNED-PAYLOAD, or a presigned URL
	// signed that way). A caller may refuse such requests when the body
	// matters.
	UnsignedPayload bool
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Region == "" || !allBytes(cfg.Region, isScopeByte) {
		return nil, fmt.Errorf("sigv4: region %q is not a valid region name", cfg.Region)
	}
	if len(cfg.Services) == 0 {
		return nil, errors.New("sigv4: no services to accept")
	}
	for _, s := range cfg.Services {
		if s == "" || !allBytes(s, isScopeByte) {
			return nil, fmt.Errorf("sigv4: service %q is not a valid signing name", s)
		}
	}
	if cfg.Lookup == nil {
		return nil, errors.New("sigv4: Lookup is required")
	}
	if cfg.MaxSkew < 0 {
		return nil, errors.New("sigv4: MaxSkew must not be negative")
	}
	v := &Verifier{
		region:   cfg.Region,
		services: slices.Clone(cfg.Services),
		lookup:   cfg.Lookup,
		now:      cfg.Now,
		maxSkew:  cfg.MaxSkew,
		signers:  newSignerCache(),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSkew == 0 {
		v.maxSkew = 5 * time.Minute
	}
	return v, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Verify checks the signature of r, whose body the caller has already read
// (bounded) into body, and returns who signed it. A failed verification is
// an *Error; any other error is a failure of Lookup.
//
// Checks run from cheap to dear: the form and bounds of the auth data, the
// scope, the clock, the body hash and the signed headers' size, then the
// key lookup and the signature. Where clients differ, each candidate is
// tried (at most four signatures, only when the first does not match): the
// path as sent and, if different, with dot and empty segments removed
// (botocore signs that form); for a presigned URL, the body's hash and then
// UNSIGNED-PAYLOAD.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (*Identity, error) {
	p, params, e := parseRequest(r)
	if e != nil {
		return nil, e
	}
	fail := func(e *Error) (*Identity, error) {
		e.AccessKeyID = p.accessKeyID
		return nil, e
	}
	if e := v.checkScope(p); e != nil {
		return fail(e)
	}
	if e := v.checkTime(p); e != nil {
		return fail(e)
	}

	// The payload hashes the client may have signed with.
	bodyHash := sha256.Sum256(body)
	var hashBuf [64]byte
	hex.Encode(hashBuf[:], bodyHash[:])
	bodyHex := string(hashBuf[:])
	var payloads []string
	switch cs := p.contentSHA256; {
	case cs == unsignedPayload:
		payloads = []string{unsignedPayload}
	case cs != "":
		var got [32]byte
		if len(cs) != 64 || !allBytes(cs, isHex) {
			return fail(malformed("x-amz-content-sha256 must be %s or a hex SHA-256 digest, not %s", unsignedPayload, quote(cs)))
		}
		hex.Decode(got[:], []byte(cs))
		if got != bodyHash {
			return fail(newErr(SignatureMismatch, msgContentSHA256))
		}
		payloads = []string{cs}
	case p.presigned:
		// No hash is sent with a presigned URL. botocore and the Go clients
		// sign the body's hash (the empty string's for a GET); a client may
		// also have signed UNSIGNED-PAYLOAD, as S3 presigned URLs do.
		payloads = []string{bodyHex, unsignedPayload}
	default:
		payloads = []string{bodyHex}
	}

	headers, e := gatherHeaders(r, p.signedHeaders)
	if e != nil {
		return fail(e)
	}
	in := &canonInput{method: r.Method, query: canonicalQuery(params, p.presigned), headers: headers, p: p}
	path := wirePath(r)
	if len(path) > maxPathLen {
		return fail(malformed("The request path is longer than %d bytes", maxPathLen))
	}
	paths := []string{path}
	if np := removeDotSegments(path); np != path && path != "" {
		paths = append(paths, np)
	}

	secret, err := v.lookup(ctx, p.accessKeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return fail(newErr(UnknownKey, msgUnknownKey))
		}
		return nil, fmt.Errorf("sigv4: looking up access key %s: %w", quote(p.accessKeyID), err)
	}

	cl, useSDK := sdkCanSign(in)
	useSDK = useSDK && !v.manualOnly
	var key []byte
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for _, path := range paths {
		for _, ph := range payloads {
			var want [32]byte
			ok := false
			if useSDK {
				want, ok = sdkSignature(ctx, v.signers, in, cl, secret, path, ph)
			}
			if !ok {
				if key == nil {
					key = signingKey(secret, p.credDate, p.region, p.service)
				}
				want, *bp = manualSignature(*bp, in, key, path, ph)
			}
			if hmac.Equal(want[:], p.signature[:]) {
				if v.trace != nil {
					v.trace(ok)
				}
				return &Identity{
					AccessKeyID:     p.accessKeyID,
					Region:          p.region,
					Service:         p.service,
					SignedAt:        p.signedAt,
					Presigned:       p.presigned,
					SessionToken:    p.sessionToken,
					UnsignedPayload: ph == unsignedPayload,
				}, nil
			}
		}
	}
	return fail(newErr(SignatureMismatch, msgSignatureMismatch))
}

// parseRequest finds the auth data in r — the Authorization header or the
// presigned query — and parses all of it.
func parseRequest(r *http.Request) (*parsed, []queryParam, *Error) {
	params, e := parseQuery(r.URL.RawQuery)
	if e != nil {
		return nil, nil, e
	}
	presign, sigv2 := false, false
	for i := range params {
		switch params[i].key {
		case qAlgorithm, qCredential, qSignature:
			presign = true
		case "SignatureVersion", "AWSAccessKeyId":
			sigv2 = true
		}
	}
	authz := r.Header["Authorization"]
	p := &parsed{}
	switch {
	case presign && len(authz) > 0:
		return nil, nil, malformed(msgTwoMechanisms)
	case len(authz) > 1:
		return nil, nil, malformed("The request has %d Authorization headers; it must have one", len(authz))
	case len(authz) == 1:
		e = p.parseHeaderForm(r, authz[0])
	case presign:
		p.presigned = true
		e = p.parsePresigned(r, params)
	case sigv2:
		return nil, nil, newErr(UnsupportedAlgorithm, "Signature Version 2 is not supported; sign requests with Signature Version 4 (%s)", algorithm)
	default:
		return nil, nil, newErr(MissingAuth, msgMissingAuth)
	}
	if e != nil {
		return nil, nil, e
	}
	return p, params, nil
}

func (p *parsed) parseHeaderForm(r *http.Request, authz string) *Error {
	f, e := parseAuthorization(authz)
	if e != nil {
		return e
	}
	if e := p.parseCredential(f.credential); e != nil {
		return e
	}
	if e := p.parseSignedHeaders(f.signedHeaders); e != nil {
		return e
	}
	if e := p.parseSignature(f.signature); e != nil {
		return e
	}
	// X-Amz-Date wins over Date when both are present.
	if d, ok, e := single(r.Header, "X-Amz-Date", 16); e != nil {
		return e
	} else if ok {
		t, good := parseAmzDate(d)
		if !good {
			return malformed("X-Amz-Date %s must have the form YYYYMMDDTHHMMSSZ", quote(d))
		}
		p.signedAt, p.dateHeader = t, "x-amz-date"
	} else if d, ok, e := single(r.Header, "Date", maxDateHeaderLen); e != nil {
		return e
	} else if ok {
		t, good := parseHTTPDate(d)
		if !good {
			return malformed("Date %s is not an HTTP date", quote(d))
		}
		p.signedAt, p.dateHeader = t, "date"
	} else {
		return malformed("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	p.amzDate = p.signedAt.Format(amzDateForm)
	tok, _, e := single(r.Header, "X-Amz-Security-Token", maxSessionTokenLen)
	if e != nil {
		return e
	}
	p.sessionToken = tok
	cs, _, e := single(r.Header, "X-Amz-Content-Sha256", 64)
	if e != nil {
		return e
	}
	p.contentSHA256 = cs
	return nil
}

// single returns the one value of a header, with a bound on its length.
func single(h http.Header, key string, max int) (string, bool, *Error) {
	vs := h[key]
	switch {
	case len(vs) == 0:
		return "", false, nil
	case len(vs) > 1:
		return "", false, malformed("The request has %d %s headers; at most one is allowed", len(vs), key)
	case len(vs[0]) > max:
		return "", false, malformed("The %s header is longer than %d bytes", key, max)
	}
	return vs[0], true, nil
}

func (p *parsed) parsePresigned(r *http.Request, params []queryParam) *Error {
	var alg, cred, date, expires, signed, sig, token, cs *string
	for i := range params {
		var dst **string
		switch params[i].key {
		case qAlgorithm:
			dst = &alg
		case qCredential:
			dst = &cred
		case qDate:
			dst = &date
		case qExpires:
			dst = &expires
		case qSignedHeaders:
			dst = &signed
		case qSignature:
			dst = &sig
		case qSecurityToken:
			dst = &token
		case qContentSHA256:
			dst = &cs
		default:
			continue
		}
		if *dst != nil {
			return malformed("The query parameter %s appears more than once", params[i].key)
		}
		*dst = &params[i].value
	}
	var missing []string
	for _, m := range []struct {
		v    *string
		name string
	}{{alg, qAlgorithm}, {cred, qCredential}, {sig, qSignature}, {date, qDate}, {signed, qSignedHeaders}} {
		if m.v == nil {
			missing = append(missing, m.name)
		}
	}
	if missing != nil {
		return malformed("Query-string authentication version 4 requires the %s, %s, %s, %s and %s parameters; missing: %s",
			qAlgorithm, qCredential, qSignature, qDate, qSignedHeaders, strings.Join(missing, ", "))
	}
	if *alg != algorithm {
		return newErr(UnsupportedAlgorithm, "X-Amz-Algorithm only supports %s, not %s", algorithm, quote(*alg))
	}
	if e := p.parseCredential(*cred); e != nil {
		return e
	}
	if e := p.parseSignedHeaders(*signed); e != nil {
		return e
	}
	if e := p.parseSignature(*sig); e != nil {
		return e
	}
	t, ok := parseAmzDate(*date)
	if !ok {
		return malformed("X-Amz-Date %s must have the form YYYYMMDDTHHMMSSZ", quote(*date))
	}
	p.signedAt, p.amzDate = t, *date
	p.expires = DefaultPresignExpiry
	if expires != nil {
		n, ok := digits(*expires)
		if !ok || len(*expires) > 7 || n < 1 || time.Duration(n)*time.Second > MaxPresignExpiry {
			return malformed("X-Amz-Expires must be a whole number of seconds from 1 to %d, not %s", int64(MaxPresignExpiry/time.Second), quote(*expires))
		}
		p.expires = time.Duration(n) * time.Second
	}
	if token != nil {
		if len(*token) > maxSessionTokenLen {
			return malformed("X-Amz-Security-Token is longer than %d bytes", maxSessionTokenLen)
		}
		p.sessionToken = *token
	}
	// A hash sent with a presigned request — as a header, or hoisted into
	// the query by a signer — is what the client signed with.
	hcs, ok, e := single(r.Header, "X-Amz-Content-Sha256", 64)
	if e != nil {
		return e
	}
	switch {
	case ok:
		p.contentSHA256 = hcs
	case cs != nil:
		p.contentSHA256 = *cs
	}
	return nil
}

func (v *Verifier) checkScope(p *parsed) *Error {
	if p.region != v.region {
		return newErr(WrongScope, "Credential should be scoped to a valid region, not '%s'.", p.region)
	}
	if !slices.Contains(v.services, p.service) {
		want := "'" + strings.Join(v.services, "' or '") + "'"
		return newErr(WrongScope, "Credential should be scoped to correct service: %s, not '%s'.", want, p.service)
	}
	if p.credDate != p.amzDate[:8] {
		return newErr(WrongScope, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			p.credDate, p.amzDate[:8], p.amzDate)
	}
	return nil
}

func (v *Verifier) checkTime(p *parsed) *Error {
	now := v.now().UTC()
	f := func(t time.Time) string { return t.Format(amzDateForm) }
	if late := now.Add(v.maxSkew); p.signedAt.After(late) {
		return newErr(Skewed, "Signature not yet current: %s is still later than %s (%s + %s)",
			p.amzDate, f(late), f(now), window(v.maxSkew))
	}
	if p.presigned {
		if p.signedAt.Add(p.expires).Before(now.Truncate(time.Second)) {
			return newErr(Expired, "Signature expired: %s is now earlier than %s (%s - %s)",
				p.amzDate, f(now.Add(-p.expires)), f(now), window(p.expires))
		}
		return nil
	}
	if early := now.Add(-v.maxSkew); p.signedAt.Before(early.Truncate(time.Second)) {
		return newErr(Skewed, "Signature expired: %s is now earlier than %s (%s - %s)",
			p.amzDate, f(early), f(now), window(v.maxSkew))
	}
	return nil
}

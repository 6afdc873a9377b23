package sigv4

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says why a request failed verification. Kinds are protocol-neutral:
// the caller maps them to InvalidClientTokenId, SignatureDoesNotMatch,
// AuthFailure, … for its protocol.
type Kind int

// The kinds, roughly in the order Verify checks them.
const (
	// MissingAuth: no Authorization header and no presigned query.
	MissingAuth Kind = iota + 1
	// Malformed: the Authorization header, the presigned query parameters,
	// the credential, the date or a bound on any of them is wrong.
	Malformed
	// UnsupportedAlgorithm: signed with something other than
	// AWS4-HMAC-SHA256 (Signature Version 2, SigV4a, a bearer token, …).
	UnsupportedAlgorithm
	// WrongScope: the credential scope names a region or service this
	// verifier does not accept, or a day other than the request date's.
	WrongScope
	// Skewed: the request date is more than MaxSkew away from now (for a
	// presigned URL: more than MaxSkew in the future).
	Skewed
	// Expired: a presigned URL is past X-Amz-Date + X-Amz-Expires.
	Expired
	// UnknownKey: Lookup does not know the access key ID.
	UnknownKey
	// SignatureMismatch: the signature, or the x-amz-content-sha256
	// header, does not match the request.
	SignatureMismatch
)

var kindNames = [...]string{
	MissingAuth:          "MissingAuth",
	Malformed:            "Malformed",
	UnsupportedAlgorithm: "UnsupportedAlgorithm",
	WrongScope:           "WrongScope",
	Skewed:               "Skewed",
	Expired:              "Expired",
	UnknownKey:           "UnknownKey",
	SignatureMismatch:    "SignatureMismatch",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is the one error type Verify returns for a request that fails
// verification. Message is meant for the client (it never holds the secret
// or the expected signature); AccessKeyID is the key the request claimed,
// when it got that far, for the caller's logs.
//
// Verify returns other errors only when Lookup fails for a reason other
// than ErrUnknownKey (a store outage): those are server faults.
type Error struct {
	Kind        Kind
	Message     string
	AccessKeyID string
}

func (e *Error) Error() string { return "sigv4: " + e.Kind.String() + ": " + e.Message }

// KindOf returns the Kind of a verification error, or 0 for nil and for
// errors that are not an *Error (server faults).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// ErrUnknownKey is what Lookup returns (possibly wrapped) for an access key
// ID it does not know, or one that is inactive.
var ErrUnknownKey = errors.New("sigv4: unknown access key")

func newErr(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Error { return newErr(Malformed, format, args...) }

// Client-facing messages, worded like AWS's own where AWS has one.
const (
	msgMissingAuth       = "Request is missing Authentication Token"
	msgUnknownKey        = "The security token included in the request is invalid."
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
	msgContentSHA256     = "The provided 'x-amz-content-sha256' header does not match what was computed."
	msgTwoMechanisms     = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified"
)

// quote renders client-supplied text for a message: at most 64 bytes, and
// only printable ASCII (anything else becomes '?'), so a hostile value can
// neither flood nor forge a log line.
func quote(s string) string {
	const max = 64
	cut := len(s) > max
	if cut {
		s = s[:max]
	}
	var b strings.Builder
	b.Grow(len(s) + 5)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	if cut {
		b.WriteString("...")
	}
	b.WriteByte('\'')
	return b.String()
}

// window renders a duration the way AWS's skew messages do: "5 min." or
// "90 sec.".
func window(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", int64(d/time.Minute))
	}
	return fmt.Sprintf("%d sec.", int64(d/time.Second))
}

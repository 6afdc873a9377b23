// Package apierr is the error type services return: a kind that says what
// went wrong in protocol-neutral terms, a message for the caller, and an
// optional explicit code. Each wire protocol (IAM/STS Query, EC2 Query,
// Instance Connect JSON) maps kinds to its own codes and HTTP statuses once,
// at the edge (internal/awsapi).
package apierr

import (
	"errors"
	"fmt"
)

// Kind classifies an error independently of the protocol.
type Kind int

// Kinds, roughly in the order a request can fail.
const (
	Internal Kind = iota // a server fault: 500, the message is generic
	// Authentication.
	MissingAuth       // no credentials at all
	UnknownAccessKey  // the access key does not exist or is inactive
	SignatureMismatch // the signature or the signed body is wrong
	ExpiredSignature  // presigned URL expired or request time skewed
	InvalidSignature  // malformed auth, wrong region/service scope
	// Request shape.
	UnknownOperation // no such action / target
	InvalidInput     // a parameter is missing, malformed or out of range
	MalformedPolicy  // a policy document has ERROR findings
	TooLarge         // the body exceeds the limit
	Throttled        // the caller's rate limit is exhausted
	// Authorization.
	AccessDenied
	// Resources.
	NotFound
	AlreadyExists
	Conflict      // DeleteConflict: dependents remain
	LimitExceeded // a quota
	Unavailable   // a dependency is down (the instance's agent)
	InvalidState  // the resource is in the wrong state
	Unsupported   // a feature kaginashi does not offer (serial console)
	DryRun        // EC2 DryRun: the request would have succeeded
)

// Error is a service error. Code, when set, overrides the protocol's
// default code for the kind (e.g. EC2's "InvalidInstanceID.NotFound").
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Details carries structured extras a protocol may render, such as a
	// policy's findings for MalformedPolicyDocument.
	Details any
	// Err is the underlying cause, logged but never sent to the caller.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New makes an error of a kind with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// WithCode makes an error with an explicit wire code.
func WithCode(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap makes an Internal error around a cause; the caller sees only a
// generic message, the log sees the cause.
func Wrap(err error, what string) *Error {
	return &Error{Kind: Internal, Message: "internal error while " + what, Err: err}
}

// As returns err as an *Error, wrapping unknown errors as Internal.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Message: "internal error", Err: err}
}

// KindOf returns the kind of err (Internal for foreign errors).
func KindOf(err error) Kind { return As(err).Kind }

// Package awsapi speaks AWS's wire protocols on POST /: the Query protocol
// with XML answers for IAM, STS and EC2, and JSON 1.1 for EC2 Instance
// Connect. Every call takes one path: authenticate (SigV4) → throttle →
// decode and validate → authorize (policy) → run → audit (durable) →
// answer. Errors from anywhere are mapped to the protocol's codes here,
// once.
package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/clientip"
	"github.com/kaginashi/kaginashi/internal/connect"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// MaxBody bounds a request body: AWS's own limits are far below it.
const MaxBody = 1 << 20

// Auth is an authenticated request's signer.
type Auth struct {
	Principal *iam.Principal
	Service   string // the SigV4 signing name: iam, sts, ec2, ec2-instance-connect
	Region    string
	// SignedAt is X-Amz-Date; Presigned says the signature came in the
	// query (a presigned URL, a bearer token until it expires).
	SignedAt  time.Time
	Presigned bool
}

// Authenticator verifies a request's signature.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte) (*Auth, error)
}

// AuditReader looks audit events up (CloudTrail LookupEvents).
type AuditReader interface {
	Lookup(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, string, error)
}

// Limiter throttles calls per access key.
type Limiter interface {
	Allow(key string) bool
}

// Config is what the handler needs to know about the deployment.
type Config struct {
	Region  string
	Account string
	// Proxies are the reverse proxies trusted to say, in X-Forwarded-For
	// and X-Forwarded-Proto, who the client is (nil: none).
	Proxies *clientip.Resolver
	Tunnel  TunnelLimits
}

// Deps are the services behind the API.
type Deps struct {
	Auth      Authenticator
	Authz     *iam.Authorizer
	IAM       *iam.Service
	Inventory *inventory.Service
	Instances InstanceReader // SendSSHPublicKey's cached instance read; nil: Inventory
	Connect   *connect.Service
	Tokens    *gateway.Tokens // join tokens; nil disables the kaginashi API
	Tunnels   Tunneler        // tunnels through agents; nil disables /openTunnel
	Audit     audit.Recorder
	AuditLog  AuditReader
	Limiter   Limiter // may be nil
	Metrics   Metrics // may be nil
	Log       *slog.Logger
	Now       func() time.Time

	// Unauthenticated bounds the audit rows of calls refused before a
	// principal is known (nil: every one is audited); see record.
	Unauthenticated UnauthenticatedBudget
}

// Handler serves the AWS APIs.
type Handler struct {
	cfg  Config
	deps Deps
	ops  map[protocol]map[string]*op

	tunnelLimits TunnelLimits
	tunnelSlots  chan struct{}
	userTunnels  userTunnels
}

// New makes the handler.
func New(cfg Config, deps Deps) *Handler {
	h := &Handler{cfg: cfg, deps: deps, ops: map[protocol]map[string]*op{}, tunnelLimits: cfg.Tunnel}
	if h.tunnelLimits.MaxDuration <= 0 || h.tunnelLimits.MaxDuration > time.Hour {
		h.tunnelLimits.MaxDuration = time.Hour
	}
	if h.tunnelLimits.MaxConcurrent <= 0 {
		h.tunnelLimits.MaxConcurrent = 1000
	}
	h.tunnelSlots = make(chan struct{}, h.tunnelLimits.MaxConcurrent)
	if h.tunnelLimits.MaxPerUser <= 0 || h.tunnelLimits.MaxPerUser > h.tunnelLimits.MaxConcurrent {
		h.tunnelLimits.MaxPerUser = h.tunnelLimits.MaxConcurrent
	}
	h.ops[protoIAM] = iamOps()
	h.ops[protoSTS] = stsOps()
	h.ops[protoEC2] = ec2Ops()
	h.ops[protoEIC] = eicOps()
	h.ops[protoCT] = ctOps()
	h.ops[protoKG] = kgOps()
	return h
}

// op is one API operation.
type op struct {
	name     string // CreateUser
	action   string // iam:CreateUser
	readOnly bool
	// run decodes the request, calls c.authorize exactly once before it
	// touches anything, does the work, and returns the result to encode.
	run func(c *call) (any, error)
}

// call is one request on its way through the handler.
type call struct {
	ctx context.Context
	h   *Handler
	// arrived says the call's audit event is about to be recorded (nil
	// without an expecting recorder).
	arrived   func()
	proto     protocol
	op        *op
	params    *params // Query protocols
	body      []byte  // JSON protocol
	auth      *Auth
	info      iam.RequestInfo
	requestID string
	name      string // the operation asked for, known or not

	authorized bool
	decision   *iam.Decision
	// response is what the audit event records as responseElements.
	response map[string]any
	// extra goes to the event's additionalEventData.
	extra map[string]any
	// afterRecord, when set by the operation, runs once its audit event
	// is recorded, before the answer: SendSSHPublicKey's wait for its key
	// record, queued to commit in the event's transaction.
	afterRecord func() error
	// writeAhead is the mutating call's committed pending event (see
	// writeAheadEvent); the call's final event replaces it.
	writeAhead *audit.Event
}

func newRequestID() string {
	// The first 6 bytes are the time in milliseconds (as in a version 7
	// UUID), the other 10 random: time-ordered IDs keep the store's index
	// of key records by request ID growing at its end (one page per batch
	// of pushes, not one random page per push).
	var b [16]byte
	_, _ = rand.Read(b[6:])
	ms := time.Now().UnixMilli()
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (h *Handler) now() time.Time {
	if h.deps.Now != nil {
		return h.deps.Now()
	}
	return time.Now()
}

func (h *Handler) clientIP(r *http.Request) string { return h.cfg.Proxies.IP(r) }

// ServeHTTP handles POST / (and GET / with a signed query) for every API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{ctx: r.Context(), h: h, requestID: newRequestID()}
	c.info = iam.RequestInfo{SourceIP: h.clientIP(r), UserAgent: r.UserAgent(), Secure: h.cfg.Proxies.Secure(r), Time: h.now().UTC(), Region: h.cfg.Region}
	c.proto = guessProtocol(r)

	// The operation's name is known before authentication, so that even a
	// refused call is audited under it; nothing acts on it until then.
	target := r.Header.Get("X-Amz-Target")
	if isJSON(c.proto) {
		c.name = target[strings.LastIndexByte(target, '.')+1:]
	}

	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		h.fail(w, c, apierr.New(apierr.UnknownOperation, "Method %s is not supported; AWS APIs use POST /.", r.Method))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		h.fail(w, c, apierr.New(apierr.InvalidInput, "Could not read the request body."))
		return
	}
	if len(body) > MaxBody {
		h.fail(w, c, apierr.New(apierr.TooLarge, "The request body exceeds the maximum of %d bytes.", MaxBody))
		return
	}
	// From here the call is the server's to finish: its event will come
	// soon. Not while the client sends its body (slowly, for up to the
	// server's ReadTimeout: any client can), or every audit commit would
	// linger for it.
	if ex, ok := h.deps.Audit.(audit.Expecter); ok {
		c.arrived = ex.Expect()
		defer c.arrived()
	}

	// spoken is the API the request is written for by its own markers (a
	// JSON API's X-Amz-Target, a Query API's Version), whatever its
	// credential scope says; see the scope check after authentication.
	spoken := protoUnknown
	if target != "" {
		spoken = jsonProtocolOf(target)
	}
	// Query protocols carry their parameters in the form body (POST) or
	// the query string (GET); decode before authenticating so that the
	// protocol is known for error shapes, but act on nothing yet. A JSON
	// request signed for a Query API is not decoded: it is refused below.
	var form url.Values
	if target == "" || (!isJSON(c.proto) && !isJSON(spoken)) {
		form, err = url.ParseQuery(string(body))
		if r.Method == http.MethodGet {
			form, err = url.ParseQuery(r.URL.RawQuery)
		}
		if target == "" {
			spoken = queryProtocolOf(form.Get("Version"), protoUnknown)
		}
		if !isJSON(c.proto) {
			// Without a credential scope naming an API served here (an
			// unsigned request, or one signed for s3), the form's Version
			// tells the Query APIs apart, for EC2's and STS's shapes.
			if protocolOf(scopeService(r)) == protoUnknown && spoken != protoUnknown {
				c.proto = spoken
			}
			if err != nil {
				h.fail(w, c, apierr.New(apierr.InvalidInput, "The request body is not a valid form."))
				return
			}
			c.name = form.Get("Action")
		}
	}

	auth, err := h.deps.Auth.Authenticate(c.ctx, r, body)
	if err != nil {
		h.fail(w, c, err)
		return
	}
	c.auth = auth
	c.info.Region = auth.Region
	if p := protocolOf(auth.Service); p != protoUnknown {
		c.proto = p
	}
	// One listener serves every API, so the scope's service picks the API.
	// A request written for another of them (an STS call signed for iam,
	// an Instance Connect call signed for ec2) was signed for the wrong
	// service: AWS's endpoint for the API the client speaks refuses that
	// as a scope error, in that API's shape, which its SDK can parse. Left
	// to the scope's API it would be an unknown Version or operation in a
	// shape the client cannot read.
	if spoken != protoUnknown && spoken != c.proto {
		signed := auth.Service
		c.proto = spoken
		if isJSON(spoken) {
			c.name = target[strings.LastIndexByte(target, '.')+1:]
		} else {
			c.name = form.Get("Action")
		}
		h.fail(w, c, apierr.New(apierr.SignatureMismatch, "Credential should be scoped to correct service: '%s', not '%s'.", signingName(spoken), signed))
		return
	}
	if h.deps.Limiter != nil && !h.deps.Limiter.Allow(auth.Principal.AccessKeyID) {
		h.fail(w, c, apierr.New(apierr.Throttled, "Rate exceeded"))
		return
	}

	switch {
	case isJSON(c.proto):
		// botocore sends the Smithy namespace too:
		// com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents.
		prefix := ""
		if i := strings.LastIndexByte(target, '.'); i > 0 {
			prefix = target[:i]
		}
		if prefix != targetPrefix[c.proto] && !strings.HasSuffix(prefix, "."+targetPrefix[c.proto]) {
			h.fail(w, c, apierr.New(apierr.UnknownOperation, "Unknown target %q; %s targets are %s.<Operation>.", target, serviceName[c.proto], targetPrefix[c.proto]))
			return
		}
		c.body = body
	default:
		c.params = newParams(form)
		if v := form.Get("Version"); v != "" && v != apiVersion[c.proto] {
			h.fail(w, c, apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Version %q is not supported; use %s.", v, apiVersion[c.proto]))
			return
		}
	}
	result, ae := h.execute(c)
	if ae != nil {
		h.writeError(w, c, ae)
		return
	}
	h.writeResult(w, c, result)
}

// execute is the part of every call after authentication and decoding of
// the envelope, shared by ServeHTTP and Invoke (the console): find the
// operation, run it (it authorizes before touching anything), refuse an
// operation that did not authorize, and audit the outcome durably. An
// error is returned only once it is audited (or the audit failed, which
// makes it a server error).
func (h *Handler) execute(c *call) (any, *apierr.Error) {
	o, ok := h.ops[c.proto][c.name]
	if !ok {
		return nil, h.failed(c, apierr.New(apierr.UnknownOperation, "Could not find operation %q for version %s of %s.", c.name, apiVersion[c.proto], serviceName[c.proto]))
	}
	c.op = o
	return h.runOp(c)
}

// runOp runs c.op and audits the outcome (see execute).
func (h *Handler) runOp(c *call) (any, *apierr.Error) {
	o := c.op
	result, err := o.run(c)
	if err == nil && !c.authorized {
		// An operation that forgot to authorize must not answer: there is
		// no side door.
		err = apierr.Wrap(errors.New("operation "+o.name+" did not authorize"), "authorizing")
	}
	if err != nil {
		if c.afterRecord != nil {
			_ = c.afterRecord() // never left queued
		}
		return nil, h.failed(c, err)
	}
	rerr := h.record(c, nil)
	if c.afterRecord != nil {
		// Called even when the event failed: a queued write must not
		// wait for someone else's commit.
		if err := c.afterRecord(); err != nil {
			// Rare: the key record failed on its own after its batch did
			// (a duplicate request ID, say).
			// The store left the success event out (it follows its key
			// record in the group commit), so the call records its
			// failure instead, durably, before answering it.
			if errors.Is(rerr, store.ErrKeyRecordFailed) {
				return nil, h.failed(c, err) // logs it at ERROR
			}
			if rerr == nil {
				// Not left out (the store's memory of failed key records
				// was full): the event says Success, the caller hears an
				// error. A second event would make two for one call.
				h.deps.Log.Error("key record not stored after its audit event said Success", "requestID", c.requestID, "err", err)
				return nil, apierr.As(err)
			}
		}
	}
	if rerr != nil {
		return nil, apierr.Wrap(rerr, "recording the audit event")
	}
	return result, nil
}

// authorize decides the call's action on resource with the global keys and
// extra condition keys. Denied calls return AccessDenied in the protocol's
// words.
func (c *call) authorize(resource string, extra func(*policy.Context)) error {
	if c.authorized {
		return apierr.Wrap(errors.New("authorized twice"), "authorizing")
	}
	c.authorized = true
	rc := iam.BaseContext(c.auth.Principal, c.info)
	if extra != nil {
		extra(rc)
	}
	d, err := c.h.deps.Authz.Authorize(c.ctx, c.auth.Principal, c.op.action, resource, rc)
	if err != nil {
		return err
	}
	c.decision = d
	if !d.Allowed {
		return &apierr.Error{Kind: apierr.AccessDenied, Message: iam.DeniedMessage(c.auth.Principal, d)}
	}
	return c.writeAheadEvent()
}

// ownAudit are the mutating operations that make their change durable
// with their event another way, so they take no write-ahead event:
// SendSSHPublicKey's key record commits in its event's transaction, and
// OpenTunnel's event is committed before any byte flows.
var ownAudit = map[string]bool{"SendSSHPublicKey": true, "OpenTunnel": true}

// writeAheadEvent commits the pending event of a mutating call, once it is
// allowed and before it changes anything: with the store's change and
// its event in two commits, a disk that fills in between would otherwise
// leave a change without an event (an attacker can fill the disk: every
// call, even a refused one, writes an event). If the pending event
// cannot be committed, the call is refused and nothing changes; if the
// final event (record, under the same event ID) cannot be, the pending
// one stays: the change is audited, its outcome unknown.
func (c *call) writeAheadEvent() error {
	h := c.h
	if h.deps.Audit == nil || c.op.readOnly || c.writeAhead != nil || (c.proto == protoEIC && ownAudit[c.op.name]) {
		return nil
	}
	ev := h.event(c, nil)
	ev.ResponseElements = nil // not known yet
	ev.WriteAhead = true
	c.auditArrived()
	if err := h.deps.Audit.Record(context.WithoutCancel(c.ctx), ev); err != nil {
		h.deps.Log.Error("write-ahead audit event not recorded; the call is refused", "requestID", c.requestID, "op", opName(c), "err", err)
		return apierr.Wrap(err, "recording the write-ahead audit event")
	}
	c.writeAhead = ev
	return nil
}

// allowAlways marks a call that AWS allows to every authenticated caller
// (sts:GetCallerIdentity): the one exception to policy evaluation.
func (c *call) allowAlways() {
	c.authorized = true
	c.decision = &iam.Decision{Allowed: true, Result: policy.Allowed, Action: c.op.action, Resource: "*"}
	c.extra = map[string]any{"decidedBy": "always allowed for authenticated callers"}
}

// fail answers an error and records it.
func (h *Handler) fail(w http.ResponseWriter, c *call, err error) {
	h.writeError(w, c, h.failed(c, err))
}

// failed logs a server-side error, records the failed call, and returns
// the error to answer (a server error when the event could not be
// recorded).
func (h *Handler) failed(c *call, err error) *apierr.Error {
	ae := apierr.As(err)
	if ae.Kind == apierr.Internal {
		h.deps.Log.Error("request failed", "requestID", c.requestID, "op", opName(c), "err", ae.Err)
	}
	if rerr := h.record(c, ae); rerr != nil {
		h.deps.Log.Error("audit event not recorded", "requestID", c.requestID, "err", rerr)
		ae = apierr.Wrap(rerr, "recording the audit event")
	}
	return ae
}

func opName(c *call) string {
	if c.op != nil {
		return c.op.name
	}
	return truncate(c.name, 128)
}

// record writes the call's audit event; an error means it is not durable.
// For a call with a write-ahead event, it is that event's final version.
func (h *Handler) record(c *call, failure *apierr.Error) error {
	if h.deps.Audit == nil {
		return nil
	}
	if failure != nil && c.auth == nil && failure.Kind != apierr.Internal && h.deps.Unauthenticated != nil {
		// Refused before a principal is known: anyone can send these,
		// without credentials, as fast as the server answers. Within the
		// source's budget each is audited; beyond it the call is
		// answered the same but only counted, for a summary event
		// (audit.Unauthenticated), so that a flood cannot fill the
		// store, whose failure stops every audited call for everyone.
		code, _, _ := errorCode(c.proto, failure)
		if !h.deps.Unauthenticated.Admit(c.info.SourceIP, code) {
			c.auditArrived()
			h.observe(c, code, failure, nil)
			return nil
		}
	}
	ev := h.event(c, failure)
	if c.writeAhead != nil {
		ev.Completes, c.writeAhead = c.writeAhead, nil
	}
	c.auditArrived()
	err := h.deps.Audit.Record(context.WithoutCancel(c.ctx), ev)
	if err != nil && ev.Completes != nil {
		h.deps.Log.Error("final audit event not recorded; its write-ahead event stays, outcome pending",
			"requestID", c.requestID, "op", opName(c), "eventID", ev.EventID, "err", err)
	}
	h.observe(c, ev.ErrorCode, failure, err)
	return err
}

// event is the call's audit event as it stands.
func (h *Handler) event(c *call, failure *apierr.Error) *audit.Event {
	ev := &audit.Event{
		EventTime:           c.info.Time,
		EventSource:         eventSource[c.proto],
		EventName:           opName(c),
		AWSRegion:           c.info.Region,
		SourceIPAddress:     c.info.SourceIP,
		UserAgent:           c.info.UserAgent,
		RequestID:           c.requestID,
		RecipientAccountID:  h.cfg.Account,
		ResponseElements:    c.response,
		AdditionalEventData: map[string]any{},
	}
	if c.op != nil {
		ev.ReadOnly = c.op.readOnly
	}
	if c.params != nil {
		ev.RequestParameters = c.params.record()
	} else if c.body != nil {
		ev.RequestParameters = jsonRecord(c.body)
	}
	if c.auth != nil {
		p := c.auth.Principal
		ev.UserIdentity = audit.Identity{Type: p.Type(), PrincipalID: p.UserID, ARN: p.ARN, AccountID: p.Account, AccessKeyID: p.AccessKeyID, UserName: p.UserName,
			SessionContext: sessionContextOf(c.ctx, p)}
	} else {
		ev.UserIdentity = audit.Identity{Type: "Unknown"}
	}
	if c.decision != nil {
		ev.AdditionalEventData["decision"] = c.decision.Result.String()
		if c.decision.Root {
			ev.AdditionalEventData["decidedBy"] = "root"
		}
		if len(c.decision.Matched) > 0 {
			var ms []map[string]any
			for _, m := range c.decision.Matched {
				ms = append(ms, map[string]any{"policy": m.Policy, "sid": m.Sid, "index": m.Index})
			}
			ev.AdditionalEventData["matchedStatements"] = ms
		}
	}
	for k, v := range c.extra {
		ev.AdditionalEventData[k] = v
	}
	if len(ev.AdditionalEventData) == 0 {
		ev.AdditionalEventData = nil
	}
	if failure != nil {
		code, _, _ := errorCode(c.proto, failure)
		ev.ErrorCode, ev.ErrorMessage = code, failure.Message
		ev.ResponseElements = nil
	}
	return ev
}

// requireNoErrors returns the params' decoding error, if any.
func (c *call) decoded() error {
	if c.params != nil {
		return c.params.err()
	}
	return nil
}

// invalidf is an InvalidInput error.
func invalidf(format string, args ...any) error {
	return apierr.New(apierr.InvalidInput, format, args...)
}

func (c *call) String() string { return fmt.Sprintf("%s %s", serviceName[c.proto], opName(c)) }

// auditArrived says the call's event is about to be recorded.
func (c *call) auditArrived() {
	if c.arrived != nil {
		c.arrived()
	}
}

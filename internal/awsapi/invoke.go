package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/policy"
)

// The console (internal/console) authenticates people with its own
// sessions, then runs every action through the functions here: the same
// operation table, authorization, throttling and audit as a SigV4 request
// — only the authentication step differs. There is no second
// implementation of any operation and no way to skip the policy.

type consoleSessionKey struct{}

// WithConsoleSession marks ctx as a console session's request, begun at
// created: audit events of calls made with it carry CloudTrail's
// userIdentity.sessionContext.
func WithConsoleSession(ctx context.Context, created time.Time) context.Context {
	return context.WithValue(ctx, consoleSessionKey{}, created)
}

// sessionContextOf is the audit sessionContext of a console principal.
func sessionContextOf(ctx context.Context, p *iam.Principal) *audit.SessionContext {
	if p == nil || !p.Console {
		return nil
	}
	sc := &audit.SessionContext{Attributes: audit.SessionAttributes{MFAAuthenticated: "false"}}
	if p.MFA {
		sc.Attributes.MFAAuthenticated = "true"
	}
	if created, ok := ctx.Value(consoleSessionKey{}).(time.Time); ok {
		sc.Attributes.CreationDate = isoTime(created)
	}
	return sc
}

// InvokeError is a failed Invoke in the protocol's words: the code and
// HTTP status the AWS API would have answered.
type InvokeError struct {
	Kind      apierr.Kind
	Code      string
	Status    int
	Message   string
	RequestID string
	// Findings are the policy validator's findings of a malformed policy
	// document, when there are any.
	Findings []policy.Finding
}

func (e *InvokeError) Error() string { return e.Code + ": " + e.Message }

// newCall is a call for an already-authenticated principal.
func (h *Handler) newCall(ctx context.Context, p *iam.Principal, info iam.RequestInfo, proto protocol, service string) *call {
	if info.Time.IsZero() {
		info.Time = h.now().UTC()
	}
	if info.Region == "" {
		info.Region = h.cfg.Region
	}
	c := &call{ctx: ctx, h: h, proto: proto, requestID: newRequestID(), info: info}
	if p != nil {
		c.auth = &Auth{Principal: p, Service: service, Region: info.Region}
	}
	return c
}

// throttled applies the per-caller rate limit: access keys by their ID,
// console sessions by their principal.
func (h *Handler) throttled(p *iam.Principal) bool {
	if h.deps.Limiter == nil {
		return false
	}
	key := p.AccessKeyID
	if key == "" {
		key = "console:" + p.ARN
	}
	return !h.deps.Limiter.Allow(key)
}

// invokeError maps an audited failure to the protocol's code.
func (h *Handler) invokeError(c *call, ae *apierr.Error) *InvokeError {
	code, status, _ := errorCode(c.proto, ae)
	e := &InvokeError{Kind: ae.Kind, Code: code, Status: status, Message: ae.Message, RequestID: c.requestID}
	if ae.Kind == apierr.Internal {
		e.Message = "We encountered an internal error. Please try again. (request " + c.requestID + ")"
	}
	if fs, ok := ae.Details.([]policy.Finding); ok {
		e.Findings = fs
	}
	return e
}

// Invoke runs one API operation for an already-authenticated principal
// (a console session): service is the SigV4 signing name (iam, sts, ec2,
// ec2-instance-connect, cloudtrail, kaginashi), action the operation's
// name; Query services take params (flat AWS Query parameters, without
// Action and Version), JSON services jsonBody. It takes exactly the path of
// ServeHTTP after authentication: throttle, decode, authorize, run, audit.
// The result is the operation's result value (see ResultJSON); errors are
// *InvokeError, already audited.
func (h *Handler) Invoke(ctx context.Context, p *iam.Principal, info iam.RequestInfo, service, action string, params url.Values, jsonBody []byte) (any, error) {
	if p == nil {
		return nil, errors.New("awsapi: Invoke without a principal")
	}
	proto := protocolOf(service)
	c := h.newCall(ctx, p, info, proto, service)
	c.name = action
	if proto == protoUnknown {
		return nil, h.invokeError(c, h.failed(c, apierr.New(apierr.UnknownOperation, "Unknown service %q; use one of %s.", truncate(service, 64), strings.Join(signingNames, ", "))))
	}
	if h.throttled(p) {
		return nil, h.invokeError(c, h.failed(c, apierr.New(apierr.Throttled, "Rate exceeded")))
	}
	if isJSON(proto) {
		if len(jsonBody) > MaxBody {
			return nil, h.invokeError(c, h.failed(c, apierr.New(apierr.TooLarge, "The request body exceeds the maximum of %d bytes.", MaxBody)))
		}
		c.body = jsonBody
		if c.body == nil {
			c.body = []byte("{}")
		}
	} else {
		form := url.Values{}
		for k, v := range params {
			if k == "Action" || k == "Version" {
				continue
			}
			form[k] = v
		}
		c.params = newParams(form)
	}
	result, ae := h.execute(c)
	if ae != nil {
		return nil, h.invokeError(c, ae)
	}
	return result, nil
}

// Operation is an action served outside the AWS APIs (the console's
// instance list, its session recordings) that still takes the API's
// path: authorized by policy, throttled, audited.
type Operation struct {
	// Service is the event source's service: ec2, kaginashi, ...
	Service  string
	Name     string // the audit event's name
	Action   string // the IAM action it is authorized as
	ReadOnly bool
	// Params become the event's requestParameters.
	Params map[string]any
	// Run must call Call.Authorize before it touches anything.
	Run func(c *Call) (any, error)
}

// Call is an Operation on its way through the handler.
type Call struct{ c *call }

// Authorize decides the operation's action on resource with the global
// condition keys and keys; a denial is an AccessDenied error to return.
func (oc *Call) Authorize(resource string, keys map[string]string) error {
	return oc.c.authorize(resource, func(rc *policy.Context) {
		for k, v := range keys {
			rc.Set(k, v)
		}
	})
}

// Extra adds to the audit event's additionalEventData.
func (oc *Call) Extra(key string, value any) {
	if oc.c.extra == nil {
		oc.c.extra = map[string]any{}
	}
	oc.c.extra[key] = value
}

// RequestID is the call's request ID.
func (oc *Call) RequestID() string { return oc.c.requestID }

// Context is the call's context.
func (oc *Call) Context() context.Context { return oc.c.ctx }

// InvokeOperation runs o for p as Invoke runs an API operation.
func (h *Handler) InvokeOperation(ctx context.Context, p *iam.Principal, info iam.RequestInfo, o Operation) (any, error) {
	if p == nil {
		return nil, errors.New("awsapi: InvokeOperation without a principal")
	}
	proto := protocolOf(o.Service)
	c := h.newCall(ctx, p, info, proto, o.Service)
	c.name = o.Name
	c.op = &op{name: o.Name, action: o.Action, readOnly: o.ReadOnly, run: func(c *call) (any, error) { return o.Run(&Call{c}) }}
	c.body, _ = json.Marshal(orEmpty(o.Params))
	if h.throttled(p) {
		return nil, h.invokeError(c, h.failed(c, apierr.New(apierr.Throttled, "Rate exceeded")))
	}
	result, ae := h.runOp(c)
	if ae != nil {
		return nil, h.invokeError(c, ae)
	}
	return result, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// RecordEvent audits something that is not a decision (a console terminal
// session's start and end) under the principal; an error means the event
// is not durable. errCode, when set, marks the event as failed.
func (h *Handler) RecordEvent(ctx context.Context, p *iam.Principal, info iam.RequestInfo, service, name string, params, extra map[string]any, errCode, errMsg string) error {
	c := h.newCall(ctx, p, info, protocolOf(service), service)
	c.name = name
	c.op = &op{name: name}
	c.body, _ = json.Marshal(orEmpty(params))
	c.extra = extra
	var failure *apierr.Error
	if errCode != "" {
		failure = &apierr.Error{Kind: apierr.InvalidInput, Code: errCode, Message: errMsg}
	}
	return h.record(c, failure)
}

// ResultJSON encodes an Invoke result as the console's JSON: JSON
// services' results as their wire JSON; Query services' results with the
// wire's XML element names as keys (for IAM and STS those are the AWS
// member names: UserName, Arn, Users), their list wrappers (member, item)
// turned into arrays, attributes and envelopes dropped.
func ResultJSON(service string, result any) ([]byte, error) {
	if result == nil {
		return []byte("{}"), nil
	}
	if isJSON(protocolOf(service)) {
		return json.Marshal(result)
	}
	return json.Marshal(xmlValue(reflect.ValueOf(result)))
}

var timeType = reflect.TypeFor[time.Time]()

// xmlValue is v as encoding/xml would name it, for encoding/json.
func xmlValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			return v.Interface()
		}
		if list, ok := wrapperList(v); ok {
			return list
		}
		out := map[string]any{}
		xmlFields(v, out)
		return out
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes() // base64, as the wire's blobs
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = xmlValue(v.Index(i))
		}
		return out
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return v.Interface()
	}
	return nil
}

// wrapperList recognises a list wrapper: a struct whose one field is a
// slice tagged member or item (IAM's <Tags><member>…).
func wrapperList(v reflect.Value) (any, bool) {
	t := v.Type()
	if t.NumField() != 1 || !t.Field(0).IsExported() {
		return nil, false
	}
	name, _, _ := strings.Cut(t.Field(0).Tag.Get("xml"), ",")
	if (name != "member" && name != "item") || t.Field(0).Type.Kind() != reflect.Slice {
		return nil, false
	}
	return xmlValue(v.Field(0)), true
}

func xmlFields(v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		// Embedded envelopes (xmlns, requestId) and unexported fields are
		// the wire's framing, not the result.
		if f.Anonymous || !f.IsExported() || f.Name == "XMLName" {
			continue
		}
		tag := f.Tag.Get("xml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "attr") {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(opts, "omitempty") && fv.IsZero() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := strings.Split(name, ">")
		val := xmlValue(fv)
		if fv.Kind() == reflect.Slice && len(path) == 2 && (path[1] == "member" || path[1] == "item") {
			out[path[0]] = val
			continue
		}
		m := out
		for _, p := range path[:len(path)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[path[len(path)-1]] = val
	}
}

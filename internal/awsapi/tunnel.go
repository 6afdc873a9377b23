package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/bulkio"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
	"github.com/kaginashi/kaginashi/policy"
)

// EC2 Instance Connect Endpoint's open-tunnel: GET /openTunnel, presigned
// with SigV4 (service ec2-instance-connect), upgraded to a WebSocket whose
// binary frames carry one TCP connection to a port of the instance —
// spliced through the agent's outbound connection.

// Tunneler opens a connection to a port of an instance, through its agent.
type Tunneler interface {
	OpenTunnel(ctx context.Context, instanceID string, port int) (io.ReadWriteCloser, error)
}

// TunnelLimits bound tunnels.
type TunnelLimits struct {
	// MaxDuration caps maxTunnelDuration (and is the default): 3600 s.
	MaxDuration time.Duration
	// MaxConcurrent is how many tunnels the endpoint holds at once (per
	// server process). AWS allows 20; kaginashi's default is 1000.
	MaxConcurrent int
	// MaxPerUser is how many of them one principal may hold (0 or more
	// than MaxConcurrent: MaxConcurrent), so that one user cannot take
	// every slot from the others.
	MaxPerUser int
}

// userTunnels counts the tunnels each principal holds open here.
type userTunnels struct {
	mu sync.Mutex
	n  map[string]int
}

// take counts a tunnel for arn unless it holds max already.
func (u *userTunnels) take(arn string, max int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[arn] >= max {
		return false
	}
	if u.n == nil {
		u.n = map[string]int{}
	}
	u.n[arn]++
	return true
}

// release uncounts a tunnel taken for arn.
func (u *userTunnels) release(arn string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[arn]--; u.n[arn] <= 0 {
		delete(u.n, arn)
	}
}

type tunnelError struct {
	ErrorCode string `json:"ErrorCode"`
	Message   string `json:"Message"`
}

// ServeOpenTunnel handles GET /openTunnel.
func (h *Handler) ServeOpenTunnel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := &call{ctx: ctx, h: h, requestID: newRequestID(), proto: protoEIC, name: "OpenTunnel"}
	c.info.SourceIP, c.info.UserAgent, c.info.Secure, c.info.Time, c.info.Region = h.clientIP(r), r.UserAgent(), h.cfg.Proxies.Secure(r), h.now().UTC(), h.cfg.Region
	c.op = &op{name: "OpenTunnel", action: "ec2-instance-connect:OpenTunnel"}
	q := r.URL.Query()
	c.response = nil
	c.extra = map[string]any{}
	refuse := func(status int, code string, err error) {
		ae := apierr.As(err)
		msg := ae.Message
		if ae.Kind == apierr.Internal {
			h.deps.Log.Error("open tunnel failed", "requestID", c.requestID, "err", ae.Err)
			msg = "We encountered an internal error. Please try again. (request " + c.requestID + ")"
		}
		_ = h.record(c, &apierr.Error{Kind: ae.Kind, Code: code, Message: msg})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-RequestId", c.requestID)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(tunnelError{ErrorCode: code, Message: msg})
	}
	if h.deps.Tunnels == nil {
		refuse(http.StatusNotImplemented, "UnsupportedOperation", apierr.New(apierr.Unsupported, "tunnels are not enabled on this server"))
		return
	}

	auth, err := h.deps.Auth.Authenticate(ctx, r, nil)
	if err != nil {
		code, status, _ := errorCode(protoEIC, apierr.As(err))
		refuse(status, code, err)
		return
	}
	c.auth, c.info.Region = auth, auth.Region
	if auth.Service != "ec2-instance-connect" {
		refuse(http.StatusForbidden, "InvalidSignatureException", apierr.New(apierr.SignatureMismatch, "Credential should be scoped to correct service: 'ec2-instance-connect', not '%s'.", auth.Service))
		return
	}
	if auth.Presigned {
		// A presigned URL is a bearer token wherever it is written down
		// (shell history, proxy logs): whatever X-Amz-Expires says, it
		// opens tunnels for a minute, the AWS CLI's own choice.
		if age := h.now().Sub(auth.SignedAt); age > TunnelURLLifetime {
			e := apierr.New(apierr.ExpiredSignature, "Signature expired: the open-tunnel URL was signed at %s, %s ago; open-tunnel URLs are valid for %s whatever X-Amz-Expires says. Sign a new one right before connecting (and check this machine's clock).",
				auth.SignedAt.UTC().Format(time.RFC3339), age.Truncate(time.Second), TunnelURLLifetime)
			code, status, _ := errorCode(protoEIC, apierr.As(e))
			refuse(status, code, e)
			return
		}
	}
	if h.deps.Limiter != nil && !h.deps.Limiter.Allow(auth.Principal.AccessKeyID) {
		refuse(http.StatusTooManyRequests, "ThrottlingException", apierr.New(apierr.Throttled, "Rate exceeded"))
		return
	}

	// Parameters, as the AWS CLI and other EICE clients send them.
	c.body, _ = json.Marshal(map[string]string{
		"instanceConnectEndpointId": q.Get("instanceConnectEndpointId"), "remotePort": q.Get("remotePort"),
		"privateIpAddress": q.Get("privateIpAddress"), "instanceId": q.Get("instanceId"), "maxTunnelDuration": q.Get("maxTunnelDuration"),
	})
	invalid := func(format string, args ...any) {
		refuse(http.StatusBadRequest, "InvalidParameter", apierr.New(apierr.InvalidInput, format, args...))
	}
	ep, err := h.deps.Inventory.Endpoint(ctx)
	if err != nil {
		refuse(http.StatusInternalServerError, "InternalError", err)
		return
	}
	if id := q.Get("instanceConnectEndpointId"); id != ep.ID {
		invalid("The instance connect endpoint ID %q does not exist; this server's endpoint is %s.", truncate(id, 64), ep.ID)
		return
	}
	port := 22
	if v := q.Get("remotePort"); v != "" {
		if port, err = strconv.Atoi(v); err != nil || port < 1 || port > 65535 {
			invalid("The specified RemotePort is not valid. Specify a port from 1 to 65535.")
			return
		}
	}
	maxDur := h.tunnelLimits.MaxDuration
	durKey := int(maxDur / time.Second)
	if v := q.Get("maxTunnelDuration"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || d < 1 || time.Duration(d)*time.Second > maxDur {
			invalid("maxTunnelDuration must be from 1 to %d seconds.", int(maxDur/time.Second))
			return
		}
		maxDur, durKey = time.Duration(d)*time.Second, d
	}
	ip, instanceID := q.Get("privateIpAddress"), q.Get("instanceId")
	if ip == "" && instanceID == "" {
		invalid("Give privateIpAddress (or kaginashi's instanceId) to say which instance to reach.")
		return
	}
	if ip != "" {
		// An address, as the condition key's IpAddress operators read it:
		// not an EC2 filter value, whose wildcards would find a host that
		// a Deny on its address was meant to protect.
		a, ok := inventory.ParseAddr(ip)
		if !ok {
			invalid("privateIpAddress %q is not an IP address: give the target's address, such as 10.0.1.12.", truncate(ip, 64))
			return
		}
		ip = a.String()
	}
	if instanceID != "" {
		if err := inventory.ValidInstanceID(instanceID); err != nil {
			invalid("%v", apierr.As(err).Message)
			return
		}
	}

	// Find the target before authorizing (its address is a condition key),
	// but reveal nothing about it until the caller is allowed.
	var target *store.Instance
	var lookupErr error
	sharing := 0  // instances found at the address
	otherIP := "" // the address of instanceId, when privateIpAddress is another
	if instanceID != "" {
		in, err := h.deps.Inventory.Instance(ctx, instanceID)
		switch {
		case err == nil && (ip == "" || in.PrivateIP == ip):
			target = &in
			ip = in.PrivateIP
		case err == nil:
			otherIP = in.PrivateIP
		}
		lookupErr = err
	} else {
		pg, err := h.deps.Inventory.Describe(ctx, nil, []inventory.Filter{{Name: "private-ip-address", Values: []string{ip}}}, 0, "")
		if err == nil {
			sharing = len(pg.Instances)
			if sharing == 1 {
				target = &pg.Instances[0]
			}
		}
		lookupErr = err
	}
	if lookupErr != nil && apierr.KindOf(lookupErr) != apierr.NotFound {
		// A failing store is not a missing instance (the same answer for
		// every instance, so nothing leaks before authorization).
		refuse(http.StatusInternalServerError, "InternalError", apierr.Wrap(lookupErr, "finding the instance"))
		return
	}
	c.extra["remotePort"], c.extra["maxTunnelDuration"] = port, durKey
	if err := c.authorize(ep.ARN, func(rc *policy.Context) {
		rc.Set("ec2-instance-connect:remotePort", strconv.Itoa(port))
		rc.Set("ec2-instance-connect:maxTunnelDuration", strconv.Itoa(durKey))
		if ip != "" {
			rc.Set("ec2-instance-connect:privateIpAddress", ip)
		}
		resourceTags(ep.Tags, "aws:ResourceTag/", "ec2:ResourceTag/")(rc)
	}); err != nil {
		refuse(http.StatusForbidden, "AccessDeniedException", err)
		return
	}
	if target == nil && sharing > 1 {
		// Not the first of them: a policy may allow one and not the other,
		// and they cannot be told apart by address.
		invalid("%d instances report private IP address %s; give instanceId (kaginashi's extension) to say which one to reach.", sharing, ip)
		return
	}
	if target == nil && otherIP != "" {
		invalid("Instance %s has private IP address %s, not %s: give one of instanceId and privateIpAddress, or both for the same instance.", instanceID, otherIP, ip)
		return
	}
	if target == nil {
		invalid("No instance of this account has %s.", orStr(instanceID, "private IP address "+ip))
		return
	}
	c.extra["instanceId"] = target.ID
	if err := wstunnel.CheckUpgrade(r); err != nil {
		invalid("open-tunnel is a WebSocket (binary messages carry the connection's bytes): %v.", err)
		return
	}

	select {
	case h.tunnelSlots <- struct{}{}:
		defer func() { <-h.tunnelSlots }()
	default:
		refuse(http.StatusTooManyRequests, "TooManyTunnels", apierr.New(apierr.Throttled, "The endpoint holds its maximum of %d concurrent tunnels. Close one and try again.", h.tunnelLimits.MaxConcurrent))
		return
	}
	arn := auth.Principal.ARN
	if !h.userTunnels.take(arn, h.tunnelLimits.MaxPerUser) {
		refuse(http.StatusTooManyRequests, "TooManyTunnels", apierr.New(apierr.Throttled, "You hold the maximum of %d concurrent tunnels per user on this server (--max-tunnels-per-user). Close one and try again.", h.tunnelLimits.MaxPerUser))
		return
	}
	defer h.userTunnels.release(arn)
	openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stream, err := h.deps.Tunnels.OpenTunnel(openCtx, target.ID, port)
	cancel()
	var te *gateway.TunnelError
	switch {
	case errors.Is(err, gateway.ErrNotConnected):
		refuse(http.StatusServiceUnavailable, "InstanceUnavailable", apierr.New(apierr.Unavailable, "The agent of instance %s is not connected; the host may be down or unable to reach the server.", target.ID))
		return
	case errors.As(err, &te):
		refuse(http.StatusBadRequest, "TargetRefused", apierr.New(apierr.InvalidInput, "%s", te.Reason))
		return
	case err != nil:
		refuse(http.StatusBadGateway, "TargetUnreachable", apierr.New(apierr.Unavailable, "Unable to connect to target: %v", err))
		return
	}
	defer stream.Close()

	// The open is audited before any byte flows.
	if err := h.record(c, nil); err != nil {
		refuse(http.StatusInternalServerError, "InternalError", apierr.Wrap(err, "recording the audit event"))
		return
	}
	ws, err := wstunnel.Accept(w, r, http.Header{"X-Amzn-RequestId": {c.requestID}})
	if err != nil {
		h.deps.Log.Warn("open tunnel: the WebSocket handshake failed", "requestID", c.requestID, "err", err)
		h.recordClose(c, target.ID, h.now(), 0, 0, "handshake failed")
		return
	}
	start := h.now()
	up, down, reason := splice(ws, stream, maxDur)
	h.recordClose(c, target.ID, start, up, down, reason)
}

// TunnelURLLifetime is how long after its X-Amz-Date a presigned
// open-tunnel URL opens tunnels, however long its X-Amz-Expires (the AWS
// CLI signs for 60 s; Go's PresignHTTP sets none, whose default window is
// longer for other presigned calls).
const TunnelURLLifetime = 60 * time.Second

// closeLinger is how long the server waits, after its close frame, for
// the client's answering close before it drops the connection: closing
// with the client's data unread would reset the connection, and a reset
// can destroy the last bytes and the close frame before the client has
// read them.
const closeLinger = 2 * time.Second

// splice copies between the WebSocket and the agent stream until one side
// ends or the duration runs out. It closes the WebSocket with 1000 for a
// clean end (the host closed the connection, or the client did), another
// code with a reason otherwise, and returns the bytes sent up (client →
// host) and down, and the close reason.
//
// Backpressure is end to end with bounded memory: each direction holds at
// most one buffer (none, or a small one, while idle: see bulkio), a write
// blocks until the next hop takes the bytes
// (TCP to the client; the yamux stream's window towards the agent, which
// opens only as the agent writes to the host's service), and a blocked
// writer stops its reader.
func splice(ws *wstunnel.Conn, stream io.ReadWriteCloser, maxDur time.Duration) (up, down int64, reason string) {
	var upN, downN atomic.Int64
	clientDone := make(chan error, 1)
	hostDone := make(chan error, 1)
	go func() { // client → host
		var err, werr error
		for {
			// A buffer only once data is there: an idle tunnel holds none.
			if err = ws.Wait(); err != nil {
				break
			}
			bp := bulkio.Get()
			var n int
			n, err = ws.ReadBatch(*bp)
			if n > 0 && werr == nil {
				// After a failed write, keep reading (and dropping) until
				// the client's close: the server's own close frame must
				// reach it.
				if _, werr = stream.Write((*bp)[:n]); werr == nil {
					upN.Add(int64(n))
				}
			}
			bulkio.Put(bp)
			if err != nil {
				break
			}
		}
		if err == io.EOF {
			err = nil
		}
		clientDone <- err
	}()
	go func() { // host → client
		var buf bulkio.Adaptive
		defer buf.Release()
		var err error
		for {
			b := buf.Buf()
			n, rerr := stream.Read(b)
			if n > 0 {
				if _, werr := ws.Write(b[:n]); werr != nil {
					err = clientWriteError{werr}
					break
				}
				downN.Add(int64(n))
			}
			buf.Used(n) // after the write: it may give b back
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
		}
		hostDone <- err
	}()

	timer := time.NewTimer(maxDur)
	defer timer.Stop()
	code, why := wstunnel.StatusNormalClosure, ""
	clientEnded, hostEnded := false, false
	select {
	case err := <-hostDone:
		hostEnded = true
		var cw clientWriteError
		switch {
		case errors.As(err, &cw):
			why = "client connection lost"
		case err != nil:
			code, why = wstunnel.StatusInternalError, "Connection to target lost"
		}
	case err := <-clientDone:
		clientEnded = true
		var pe *wstunnel.ProtocolError
		var ce *wstunnel.CloseError
		switch {
		case errors.As(err, &pe):
			code, why = pe.Code, pe.Reason
		case errors.As(err, &ce):
			code, why = ce.Code, fmt.Sprintf("closed by the client with code %d: %s", ce.Code, ce.Reason)
		case err != nil:
			why = "client connection lost"
		}
	case <-timer.C:
		code, why = wstunnel.StatusPolicyViolation, "Maximum tunnel duration reached"
	}

	// The host side ends now: no half-close in this protocol, the client's
	// end is the tunnel's end.
	stream.Close()
	if d, ok := stream.(interface{ SetDeadline(time.Time) error }); ok {
		_ = d.SetDeadline(time.Now()) // unblocks the copy from the host
	}
	if !clientEnded {
		ws.SendClose(code, why)
		select {
		case <-clientDone:
			clientEnded = true
		case <-time.After(closeLinger):
		}
	}
	ws.Close()
	if !clientEnded {
		<-clientDone
	}
	if !hostEnded {
		<-hostDone
	}
	if why == "" {
		why = "closed"
	}
	return upN.Load(), downN.Load(), why
}

// clientWriteError is a failed write towards the client.
type clientWriteError struct{ error }

func (e clientWriteError) Unwrap() error { return e.error }

// recordClose audits a tunnel's end with the bytes each way.
func (h *Handler) recordClose(c *call, instanceID string, start time.Time, up, down int64, reason string) {
	cc := *c
	cc.name = "CloseTunnel"
	cc.op = &op{name: "CloseTunnel", action: "ec2-instance-connect:OpenTunnel"}
	cc.requestID = newRequestID()
	cc.info.Time = h.now().UTC()
	cc.decision = nil
	cc.extra = map[string]any{"instanceId": instanceID, "openRequestId": c.requestID, "bytesUp": up, "bytesDown": down,
		"durationSeconds": h.now().Sub(start).Seconds(), "closeReason": reason}
	h.tunnelClosed(up, down)
	if err := h.record(&cc, nil); err != nil {
		h.deps.Log.Error("the tunnel's close event was not recorded", "requestID", c.requestID, "err", err)
	}
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

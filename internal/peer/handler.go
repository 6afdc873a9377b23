package peer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
)

// ServeHTTP serves the peer API (mount it at PathPrefix). Every request
// must carry a valid AuthHeader; nothing else is accepted there, and no
// IAM applies: the calling replica authorized the work.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body []byte
	if req.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, 64<<10+1))
		if err != nil || len(body) > 64<<10 {
			writeErr(w, http.StatusBadRequest, "Invalid", "the request body is unreadable or too large")
			return
		}
	}
	a, err := r.verifier.Verify(req, body)
	if err != nil {
		r.refused(req, err)
		writeErr(w, http.StatusUnauthorized, "Unauthenticated", errAuth.Error())
		return
	}
	from := a.Replica
	if a.Version == V1 {
		r.sawV1(from)
	}
	switch {
	case req.Method == http.MethodPost && req.URL.Path == pathDeliver:
		r.serveDeliver(w, req, from, body)
	case req.Method == http.MethodPost && req.URL.Path == pathRevoke:
		r.serveRevoke(w, from, body)
	case req.Method == http.MethodPost && req.URL.Path == pathEndSession:
		r.serveEndSession(w, req, from, body)
	case req.Method == http.MethodGet && req.URL.Path == pathTunnel:
		r.serveTunnel(w, req, from)
	default:
		writeErr(w, http.StatusNotFound, "Invalid", "no such peer operation")
	}
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(peerError{Code: code, Message: msg})
}

// event is a peer audit event: the holder's record of work it did for
// another replica (the API call itself is audited where it arrived).
func (r *Router) event(req *http.Request, name, from string, params map[string]any, failure error) *audit.Event {
	ev := &audit.Event{
		EventTime: r.now().UTC(), EventSource: "kaginashi.peer", EventName: name, AWSRegion: r.cfg.Region,
		SourceIPAddress: req.RemoteAddr, UserAgent: "kaginashi-replica/" + from,
		UserIdentity:       audit.Identity{Type: "AWSService", PrincipalID: "replica:" + from},
		RequestParameters:  params,
		EventType:          "AwsServiceEvent",
		RecipientAccountID: r.cfg.Account,
	}
	if failure != nil {
		ae := apierr.As(failure)
		ev.ErrorCode, ev.ErrorMessage = "Unavailable", ae.Message
		if ae.Kind == apierr.InvalidInput {
			ev.ErrorCode = "TargetRefused"
		}
	}
	return ev
}

func (r *Router) record(ctx context.Context, ev *audit.Event) {
	if r.audit == nil {
		return
	}
	if err := r.audit.Record(context.WithoutCancel(ctx), ev); err != nil {
		r.log.Error("a peer audit event was not recorded", "event", ev.EventName, "err", err)
	}
}

func (r *Router) serveDeliver(w http.ResponseWriter, req *http.Request, from string, body []byte) {
	var dr deliverRequest
	if err := json.Unmarshal(body, &dr); err != nil || inventory.ValidInstanceID(dr.Record.InstanceID) != nil || dr.Record.RequestID == "" {
		writeErr(w, http.StatusBadRequest, "Invalid", "not a delivery request")
		return
	}
	params := map[string]any{"instanceId": dr.Record.InstanceID, "requestId": dr.Record.RequestID, "osUser": dr.Record.OSUser,
		"callerArn": dr.Record.CallerARN, "fingerprint": dr.Record.Fingerprint, "fromReplica": from}
	if !r.gw.Connected(dr.Record.InstanceID) {
		err := apierr.New(apierr.Unavailable, "The agent of instance %s is not connected; the host may be down or unable to reach the server. Try again later.", dr.Record.InstanceID)
		r.record(req.Context(), r.event(req, "PeerDeliver", from, params, err))
		writeErr(w, http.StatusServiceUnavailable, "NotConnected", apierr.As(err).Message)
		return
	}
	budget := min(time.Duration(dr.BudgetMillis)*time.Millisecond, r.gw.PushTimeout)
	ctx, cancel := context.WithTimeout(req.Context(), max(budget, 0))
	defer cancel()
	// The gateway withdraws the key when the budget runs out before the
	// agent's acknowledgement (or the caller hangs up).
	err := r.gw.Deliver(ctx, dr.Record)
	r.record(req.Context(), r.event(req, "PeerDeliver", from, params, err))
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "Unavailable", apierr.As(err).Message)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
}

func (r *Router) serveRevoke(w http.ResponseWriter, from string, body []byte) {
	var rr struct {
		InstanceID string `json:"instanceId"`
		RequestID  string `json:"requestId"`
	}
	if err := json.Unmarshal(body, &rr); err != nil || inventory.ValidInstanceID(rr.InstanceID) != nil || rr.RequestID == "" || len(rr.RequestID) > 128 {
		writeErr(w, http.StatusBadRequest, "Invalid", "not a revoke request")
		return
	}
	if !r.gw.Revoke(rr.InstanceID, rr.RequestID) {
		writeErr(w, http.StatusServiceUnavailable, "NotConnected", "the agent is not connected here")
		return
	}
	r.log.Info("withdrawing a key for another replica", "instance", rr.InstanceID, "request", rr.RequestID, "fromReplica", from)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
}

// serveTunnel opens the agent stream and splices it to the caller's
// WebSocket. Duration limits and byte counts for the user's audit are the
// originating replica's; this one records the splice as PeerTunnel.
func (r *Router) serveTunnel(w http.ResponseWriter, req *http.Request, from string) {
	q := req.URL.Query()
	id := q.Get("instanceId")
	port, err := strconv.Atoi(q.Get("port"))
	if inventory.ValidInstanceID(id) != nil || err != nil || port < 1 || port > 65535 {
		writeErr(w, http.StatusBadRequest, "Invalid", "not a tunnel request")
		return
	}
	if err := wstunnel.CheckUpgrade(req); err != nil {
		writeErr(w, http.StatusBadRequest, "Invalid", "a peer tunnel is a WebSocket: "+err.Error())
		return
	}
	params := map[string]any{"instanceId": id, "remotePort": port, "fromReplica": from}
	openCtx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	st, err := r.gw.OpenTunnel(openCtx, id, port)
	cancel()
	var te *gateway.TunnelError
	switch {
	case errors.Is(err, gateway.ErrNotConnected):
		r.record(req.Context(), r.event(req, "PeerTunnel", from, params, apierr.New(apierr.Unavailable, "not connected")))
		writeErr(w, http.StatusServiceUnavailable, "NotConnected", "the agent is not connected here")
		return
	case errors.As(err, &te):
		r.record(req.Context(), r.event(req, "PeerTunnel", from, params, apierr.New(apierr.InvalidInput, "%s", te.Reason)))
		writeErr(w, http.StatusBadRequest, "Refused", te.Reason)
		return
	case err != nil:
		r.record(req.Context(), r.event(req, "PeerTunnel", from, params, apierr.New(apierr.Unavailable, "%v", err)))
		writeErr(w, http.StatusBadGateway, "Unavailable", "Unable to connect to target: "+err.Error())
		return
	}
	defer st.Close()
	ws, err := wstunnel.Accept(w, req, nil)
	if err != nil {
		r.log.Warn("peer tunnel: the WebSocket handshake failed", "instance", id, "err", err)
		return
	}
	start := r.now()
	up, down, reason := relay(ws, st)
	params["bytesUp"], params["bytesDown"], params["closeReason"] = up, down, reason
	params["durationSeconds"] = r.now().Sub(start).Seconds()
	r.record(req.Context(), r.event(req, "PeerTunnel", from, params, nil))
}

// closeLinger is how long the holder waits for the caller's answering
// close before dropping the connection (see awsapi's splice).
const closeLinger = 2 * time.Second

// relay copies between the peer WebSocket and the agent stream until one
// side ends. Backpressure: each direction is one blocking copy (ws.WriteTo
// writes into the yamux stream's window; ws.ReadFrom onto TCP), so a slow
// reader anywhere stops the reading here.
func relay(ws *wstunnel.Conn, st io.ReadWriteCloser) (up, down int64, reason string) {
	upc := make(chan error, 1)
	downc := make(chan error, 1)
	go func() {
		n, err := ws.WriteTo(st)
		up = n
		upc <- err
	}()
	go func() {
		n, err := io.Copy(ws, st)
		down = n
		downc <- err
	}()
	select {
	case err := <-downc:
		// The host side ended: tell the caller, wait for its close.
		code, why := wstunnel.StatusNormalClosure, ""
		if err != nil {
			code, why = wstunnel.StatusInternalError, "Connection to target lost"
		}
		ws.SendClose(code, why)
		select {
		case <-upc:
		case <-time.After(closeLinger):
		}
		ws.Close()
		st.Close()
		reason = "host closed"
		if why != "" {
			reason = why
		}
	case err := <-upc:
		// The caller ended (its client went away, or the duration ran
		// out there): end the host side.
		st.Close()
		if d, ok := st.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Now())
		}
		ws.Close()
		<-downc
		reason = "caller closed"
		if err != nil {
			reason = "caller connection lost"
		}
	}
	return up, down, reason
}

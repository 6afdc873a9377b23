package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/inventory"
)

// pathEndSession asks the holder to end an instance's agent session
// (POST, {"instanceId": "i-...", "reason": "..."}): a deregistered
// instance's, whatever its key (reason "deregistered", or none: replicas
// before 2026-11-29 send none), or that of an identity a re-enrollment
// replaced (reason "replaced": only if the session's agent key is no
// longer the instance's, as the holder reads it from the store).
const pathEndSession = "/_peer/end-session"

const (
	reasonDeregistered = "deregistered"
	reasonReplaced     = "replaced"
)

// endSessionRequest and endSessionAnswer are the body and the answer of
// pathEndSession.
type endSessionRequest struct {
	InstanceID string `json:"instanceId"`
	Reason     string `json:"reason"`
}

type endSessionAnswer struct {
	Ended bool `json:"ended"`
}

// EndSession ends a deregistered instance's agent session: here, and at
// the replica the store names as holding it, if another. Call it after
// the instance is deleted from the store (which already keeps every
// replica from routing a key or a tunnel to it, and refuses the agent's
// next connection): this makes the end prompt. ended says a session was
// ended somewhere.
func (r *Router) EndSession(ctx context.Context, instanceID string) (ended bool, err error) {
	ended, err = r.gw.EndSession(ctx, instanceID)
	if err != nil {
		return ended, err
	}
	r.cacheMu.Lock()
	delete(r.cache, instanceID)
	r.cacheMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, endedThere, err := r.askHolder(ctx, instanceID, reasonDeregistered)
	return ended || endedThere, err
}

// IdentityReplaced asks the replica holding the instance's agent session,
// if another, to end it should its agent key no longer be the instance's:
// a re-enrollment here replaced it (gateway.ReplacedHook; the gateway
// ended such a session here itself). Best effort, logged: the replaced
// identity is refused at its next connection and its next inventory
// write anyway; this makes the end prompt.
func (r *Router) IdentityReplaced(ctx context.Context, instanceID string) {
	r.cacheMu.Lock()
	delete(r.cache, instanceID)
	r.cacheMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if asked, ended, err := r.askHolder(ctx, instanceID, reasonReplaced); err != nil {
		r.log.Warn("asking the replica holding a re-enrolled instance's agent session to end the replaced one failed", "instance", instanceID, "err", err)
	} else if asked {
		r.log.Info("asked the replica holding a re-enrolled instance's agent session to end the replaced one", "instance", instanceID, "ended", ended)
	}
}

// askHolder posts an end-session request for reason to the replica the
// store names as holding the instance's agent session, if another; asked
// says there was one, which has answered, and ended what it answered: it
// ended a session (false: it held none any more, or for reason replaced,
// the one it held has the instance's current key).
func (r *Router) askHolder(ctx context.Context, instanceID, reason string) (asked, ended bool, err error) {
	h, ok, err := r.holder(ctx, instanceID)
	if err != nil {
		return false, false, fmt.Errorf("locating the agent's replica: %w", err)
	}
	if !ok {
		return false, false, nil
	}
	body, err := json.Marshal(endSessionRequest{InstanceID: instanceID, Reason: reason})
	if err != nil {
		return false, false, err
	}
	status, answer, perr, err := r.post(ctx, h, pathEndSession, body)
	switch {
	case err != nil:
		return false, false, fmt.Errorf("asking replica %s (%s) to end the session: %w", h.ReplicaID, h.PeerURL, err)
	case status == http.StatusUnauthorized:
		r.refusedByPeer(h, instanceID)
		return false, false, fmt.Errorf("replica %s refused this replica's peer authentication", h.ReplicaID)
	case status != http.StatusOK:
		return false, false, fmt.Errorf("replica %s: %s", h.ReplicaID, perr.Message)
	}
	var a endSessionAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return true, false, fmt.Errorf("replica %s answered the end-session request with %.64q: %w", h.ReplicaID, answer, err)
	}
	return true, a.Ended, nil
}

// serveEndSession is POST /_peer/end-session: the calling replica has
// deleted the instance (and authorized and audited the call), or
// re-enrolled it; this one ends its agent's session, if it holds it (for
// a re-enrollment: if its key is no longer the instance's), and audits
// PeerEndSession.
func (r *Router) serveEndSession(w http.ResponseWriter, req *http.Request, from string, body []byte) {
	var er endSessionRequest
	if err := json.Unmarshal(body, &er); err != nil || inventory.ValidInstanceID(er.InstanceID) != nil {
		writeErr(w, http.StatusBadRequest, "Invalid", "not an end-session request")
		return
	}
	var (
		ended bool
		err   error
	)
	switch er.Reason {
	case "", reasonDeregistered:
		er.Reason = reasonDeregistered
		ended, err = r.gw.EndSession(req.Context(), er.InstanceID)
	case reasonReplaced:
		ended, err = r.gw.EndReplacedSession(req.Context(), er.InstanceID)
	default:
		writeErr(w, http.StatusBadRequest, "Invalid", "not an end-session reason")
		return
	}
	params := map[string]any{"instanceId": er.InstanceID, "fromReplica": from, "reason": er.Reason, "sessionEnded": ended}
	if err != nil {
		err = apierr.Wrap(err, "ending the session")
	}
	r.record(req.Context(), r.event(req, "PeerEndSession", from, params, err))
	if err != nil {
		r.log.Error("ending an agent session for another replica failed", "instance", er.InstanceID, "reason", er.Reason, "fromReplica", from, "err", err)
		writeErr(w, http.StatusInternalServerError, "Internal", "ending the session failed")
		return
	}
	msg := "ended a deregistered instance's agent session for another replica"
	if er.Reason == reasonReplaced {
		msg = "ended a re-enrolled instance's replaced agent session for another replica"
	}
	r.log.Info(msg, "instance", er.InstanceID, "ended", ended, "fromReplica", from)
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(endSessionAnswer{Ended: ended})
	_, _ = w.Write(append(b, '\n'))
}

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

// pathEndSession asks the holder to end a deregistered instance's agent
// session (POST, {"instanceId": "i-..."}).
const pathEndSession = "/_peer/end-session"

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
	h, ok, err := r.holder(ctx, instanceID)
	if err != nil {
		return ended, fmt.Errorf("locating the agent's replica: %w", err)
	}
	if !ok {
		return ended, nil
	}
	body, err := json.Marshal(map[string]string{"instanceId": instanceID})
	if err != nil {
		return ended, err
	}
	status, perr, err := r.post(ctx, h, pathEndSession, body)
	switch {
	case err != nil:
		return ended, fmt.Errorf("asking replica %s (%s) to end the session: %w", h.ReplicaID, h.PeerURL, err)
	case status == http.StatusUnauthorized:
		r.refusedByPeer(h, instanceID)
		return ended, fmt.Errorf("replica %s refused this replica's peer authentication", h.ReplicaID)
	case status != http.StatusOK:
		return ended, fmt.Errorf("replica %s: %s", h.ReplicaID, perr.Message)
	}
	// The store named the holder, which has now ended the session (or
	// found it ended already).
	return true, nil
}

// serveEndSession is POST /_peer/end-session: the calling replica has
// deleted the instance (and authorized and audited the call); this one
// ends its agent's session, if it holds it, and audits PeerEndSession.
func (r *Router) serveEndSession(w http.ResponseWriter, req *http.Request, from string, body []byte) {
	var er struct {
		InstanceID string `json:"instanceId"`
	}
	if err := json.Unmarshal(body, &er); err != nil || inventory.ValidInstanceID(er.InstanceID) != nil {
		writeErr(w, http.StatusBadRequest, "Invalid", "not an end-session request")
		return
	}
	ended, err := r.gw.EndSession(req.Context(), er.InstanceID)
	params := map[string]any{"instanceId": er.InstanceID, "fromReplica": from, "sessionEnded": ended}
	if err != nil {
		err = apierr.Wrap(err, "ending the session")
	}
	r.record(req.Context(), r.event(req, "PeerEndSession", from, params, err))
	if err != nil {
		r.log.Error("ending a deregistered instance's agent session for another replica failed", "instance", er.InstanceID, "fromReplica", from, "err", err)
		writeErr(w, http.StatusInternalServerError, "Internal", "ending the session failed")
		return
	}
	r.log.Info("ended a deregistered instance's agent session for another replica", "instance", er.InstanceID, "ended", ended, "fromReplica", from)
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(map[string]bool{"ended": ended})
	_, _ = w.Write(append(b, '\n'))
}

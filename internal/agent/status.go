package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Status is what the running agent last knew about its connection, kept
// in DIR/status.json for `kaginashi doctor` (which runs in another
// process, perhaps long after the agent stopped). It holds nothing secret.
type Status struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	Server     string `json:"server"`
	InstanceID string `json:"instanceId"`
	Connected  bool   `json:"connected"`
	// ConnectedAt is when the current (or last) connection came up;
	// LastBeat when the server last answered a heartbeat.
	ConnectedAt time.Time `json:"connectedAt,omitzero"`
	LastBeat    time.Time `json:"lastBeat,omitzero"`
	// HeartbeatSeconds is how often the agent reports in: a LastBeat much
	// older than that means the agent is gone or stuck.
	HeartbeatSeconds int `json:"heartbeatSeconds"`
	// ClockSkewMillis is server time minus host time, as last measured.
	ClockSkewMillis int64 `json:"clockSkewMillis"`
	// LastError is why the last connection attempt failed or ended.
	LastError string `json:"lastError,omitempty"`
	// Revoked says the agent stopped for good at RevokedAt because the
	// server no longer accepts its identity (ErrIdentityRevoked; the
	// process exited with ExitIdentityRevoked): the host must enroll
	// again, or be decommissioned. Enroll deletes the status file.
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	// SigningKey names the record-signing key the agent trusts
	// (SHA256:...); SigningKeyError says why it did not adopt the key the
	// server signs with now (a broken or unrelated endorsement chain):
	// until that is solved, records the server pushes are refused.
	SigningKey      string `json:"signingKey,omitempty"`
	SigningKeyError string `json:"signingKeyError,omitempty"`
	// SigningKeyProblem is every signing-key problem the agent reports to
	// the server (keyhealth.go): SigningKeyError's, or the pinned key
	// unreadable by the AuthorizedKeysCommand on disk, or pushes failing
	// their signature check.
	SigningKeyProblem string    `json:"signingKeyProblem,omitempty"`
	UpdatedAt         time.Time `json:"updatedAt"`
}

// StatusFile is the status file's name in the data directory.
const StatusFile = "status.json"

func (p Paths) status() string { return filepath.Join(p.Dir, StatusFile) }

// ReadStatus reads the status the agent of a data directory last wrote.
func (p Paths) ReadStatus() (Status, error) {
	var st Status
	b, err := readBounded(p.status(), 64<<10)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", p.status(), err)
	}
	return st, nil
}

// Enrolled says whether the data directory holds an enrolled identity.
func (p Paths) Enrolled() bool { return p.enrolled() }

// LoadConfig reads agent.json: the server URL and the instance ID.
func (p Paths) LoadConfig() (Config, error) { return p.loadConfig() }

// ServerCAFile is the pinned server CA (or certificate) the agent trusts.
func (p Paths) ServerCAFile() string { return p.serverCA() }

// setStatus updates the status file. It is advisory: a failure is logged
// at debug level and never stops the agent. No fsync: after a crash a
// stale or missing status only makes doctor say so.
func (a *Agent) setStatus(update func(*Status)) {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	st := a.status
	st.PID = os.Getpid()
	st.Version = Version
	st.Server = a.cfg.Server
	st.InstanceID = a.cfg.InstanceID
	st.HeartbeatSeconds = int(a.Heartbeat / time.Second)
	st.ClockSkewMillis = a.skew()
	update(&st)
	st.UpdatedAt = a.now().UTC()
	a.status = st
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	tmp := a.paths.status() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		a.log.Debug("writing the status file failed", "err", err)
		return
	}
	if err := os.Rename(tmp, a.paths.status()); err != nil {
		a.log.Debug("writing the status file failed", "err", err)
	}
}

package agent

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/authkeys"
)

// Signing-key health: the problems with the record-signing key that make
// every login with a pushed key fail on this host, which the agent reports
// to the server (Hello and Heartbeat .SigningKeyProblem) as well as in its
// log, status and metrics — the server is where an operator of many hosts
// looks, and the agent's own log is on the host that cannot be logged in
// to. Three are known:
//
//   - rollover: the server signs with a key the pinned one does not
//     endorse (Status.SigningKeyError);
//   - on disk: the AuthorizedKeysCommand, which sshd runs as an
//     unprivileged user and which reads keys/identity.json rather than
//     asking the agent, cannot read the pinned key there, or finds another
//     one — the agent itself verifies pushes against its memory, so pushes
//     succeed and only the logins fail;
//   - refusals: pushed records keep failing their signature check (the
//     server's key changed without an endorsement the agent saw, or the
//     records are forged) — sigStreakProblem of them in a row, none
//     accepted in between.

// sigStreakProblem is how many pushed records in a row, refused for their
// signature, make a problem (one could be a forgery; several in a row,
// with none accepted, is a key the agent does not have).
const sigStreakProblem = 3

// checkDiskKey reads keys/identity.json as the AuthorizedKeysCommand does
// and compares its signing key with the agent's; it also checks that the
// file and the directories above it are readable by others (the command
// runs as sshd's AuthorizedKeysCommandUser, not root; the agent makes
// them 0644, 0755 and 0711). It returns the problem, or "".
func (a *Agent) checkDiskKey() string {
	pub, err := authkeys.LoadPublic(a.paths.Dir)
	if err != nil {
		return "the AuthorizedKeysCommand cannot read the pinned signing key: " + err.Error()
	}
	if want := a.pinnedKey(); !bytes.Equal(pub.SigningKey, want) {
		return fmt.Sprintf("%s holds signing key %s, not the one the agent pinned (%s): logins check pushed keys against the wrong key",
			a.paths.public(), agentproto.KeyID(pub.SigningKey), agentproto.KeyID(want))
	}
	for _, c := range []struct {
		path string
		bit  os.FileMode
	}{{a.paths.Dir, 0o001}, {a.paths.keysDir(), 0o001}, {a.paths.public(), 0o004}} {
		st, err := os.Stat(c.path)
		if err != nil {
			return "the AuthorizedKeysCommand cannot read the pinned signing key: " + err.Error()
		}
		if st.Mode().Perm()&c.bit == 0 {
			return fmt.Sprintf("%s is mode %s: sshd's AuthorizedKeysCommandUser (not root) cannot read the pinned signing key through it",
				c.path, "0"+strconv.FormatUint(uint64(st.Mode().Perm()), 8))
		}
	}
	return ""
}

// syncKeyProblemStatus writes the problem to status.json when it changed
// (for kaginashi-agent doctor, which runs in another process).
func (a *Agent) syncKeyProblemStatus() {
	p := a.signingKeyProblem()
	a.statusMu.Lock()
	same := a.status.SigningKeyProblem == p
	a.statusMu.Unlock()
	if !same {
		a.setStatus(func(st *Status) { st.SigningKeyProblem = p })
	}
}

// noteSignature counts a pushed record's outcome for the refusal streak.
func (a *Agent) noteSignature(reason string) {
	defer a.syncKeyProblemStatus()
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	switch reason {
	case RefusedSignature:
		a.sigStreak++
		if a.sigStreak == sigStreakProblem {
			a.log.Error("logins with pushed keys fail on this host: " + streakProblem(a.sigStreak, a.pinnedKey()))
		}
	case "":
		a.sigStreak = 0
	}
}

func streakProblem(n int, pinned []byte) string {
	return fmt.Sprintf("the last %d pushed key records failed their signature check against the pinned key %s (a server key this agent has no endorsement for?)",
		n, agentproto.KeyID(pinned))
}

// refreshKeyHealth runs checkDiskKey and logs a problem when it appears
// or changes, and its end.
func (a *Agent) refreshKeyHealth() {
	defer a.syncKeyProblemStatus()
	p := a.checkDiskKey()
	a.keyMu.Lock()
	old := a.diskKeyProblem
	a.diskKeyProblem = p
	a.keyMu.Unlock()
	switch {
	case p != "" && p != old:
		a.log.Error("logins with pushed keys will fail on this host: "+p, "file", a.paths.public())
	case p == "" && old != "":
		a.log.Info("the AuthorizedKeysCommand can read the pinned signing key again")
	}
}

// signingKeyProblem is the problem to report, "" when none: a rollover the
// agent cannot follow first (it explains the others), then the key on
// disk, then the refusal streak.
func (a *Agent) signingKeyProblem() string {
	a.statusMu.Lock()
	p := a.status.SigningKeyError
	a.statusMu.Unlock()
	if p == "" {
		a.keyMu.Lock()
		streak := a.sigStreak
		p = a.diskKeyProblem
		a.keyMu.Unlock()
		if p == "" && streak >= sigStreakProblem {
			p = streakProblem(streak, a.pinnedKey())
		}
	}
	if len(p) > agentproto.MaxSigningKeyProblem {
		p = p[:agentproto.MaxSigningKeyProblem]
	}
	return p
}

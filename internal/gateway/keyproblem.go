package gateway

import (
	"strings"
	"unicode"

	"github.com/kaginashi/kaginashi/internal/agentproto"
)

// An agent's signing-key problem (agentproto.Heartbeat.SigningKeyProblem)
// makes every login with a pushed key fail on its host while pushes may
// still succeed, so the server is where it must show: DescribeInstances
// has no field for it, so the server logs it (WARN when it appears or
// changes, INFO when it ends), counts the agents reporting one
// (kaginashi_agents_signing_key_problem), and the console's terminal says
// it when the host's sshd refuses the key (SigningKeyProblem). It lives
// with the session: an agent reports it again with its next hello.

// cleanKeyProblem bounds what an agent sent: valid UTF-8, no control
// characters, at most agentproto.MaxSigningKeyProblem bytes.
func cleanKeyProblem(p string) string {
	p = strings.ToValidUTF8(p, "?")
	p = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, p)
	if len(p) > agentproto.MaxSigningKeyProblem {
		p = strings.ToValidUTF8(p[:agentproto.MaxSigningKeyProblem], "")
	}
	return strings.TrimSpace(p)
}

// noteKeyProblem records the problem an agent's hello or heartbeat
// reported and logs a change.
func (g *Gateway) noteKeyProblem(s *session, reported string) {
	p := cleanKeyProblem(reported)
	g.mu.Lock()
	old := s.keyProblem
	s.keyProblem = p
	g.mu.Unlock()
	switch {
	case p != "" && p != old:
		g.log.Warn("an agent reports a signing-key problem: logins with keys pushed to its host fail until it is solved (kaginashi-agent doctor on the host)",
			"instance", s.instanceID, "problem", p)
	case p == "" && old != "":
		g.log.Info("an agent's signing-key problem is solved", "instance", s.instanceID)
	}
}

// SigningKeyProblem is the signing-key problem the instance's agent
// reports, "" when none or when it is not connected here.
func (g *Gateway) SigningKeyProblem(instanceID string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.sessions[instanceID]; s != nil {
		return s.keyProblem
	}
	return ""
}

// SigningKeyProblems counts the agents connected here that report a
// signing-key problem.
func (g *Gateway) SigningKeyProblems() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, s := range g.sessions {
		if s.keyProblem != "" {
			n++
		}
	}
	return n
}

// Package doctor is `kaginashi doctor` (and `kaginashi-agent doctor`): checks
// that say, for a host or for a user, whether keyless logins can work, and
// for each failure how to fix it.
//
// Host checks read the agent's data directory (its enrolment and the
// status file the running agent keeps), sshd's configuration and the
// machine. User checks ask the server, with the user's own credentials:
// who am I, would the policy allow SendSSHPublicKey and OpenTunnel (and
// which statement decides), is the host's agent online, and does a tunnel
// open. Every dependency on the outside world is a field of the options,
// so each check is tested with fakes.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status of a check.
type Status string

// Statuses. Only Fail makes the report not OK: Warn is something to look
// at that does not stop logins, Skip a check that could not run (its
// message says why).
const (
	OK   Status = "ok"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Check is one check's outcome.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Report is every check's outcome.
type Report struct {
	Checks []Check `json:"checks"`
	OK     bool    `json:"ok"`
}

// NewReport makes a report of checks.
func NewReport(checks ...[]Check) Report {
	r := Report{Checks: []Check{}, OK: true}
	for _, cs := range checks {
		for _, c := range cs {
			r.Checks = append(r.Checks, c)
			if c.Status == Fail {
				r.OK = false
			}
		}
	}
	return r
}

// WriteJSON writes {"checks":[{"name","status","message","fix"}],"ok":bool}.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes one line per check, and the fix under each failure or
// warning.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %-28s %s\n", strings.ToUpper(string(c.Status)), c.Name, c.Message)
		if c.Fix != "" && (c.Status == Fail || c.Status == Warn) {
			for i, l := range strings.Split(c.Fix, "\n") {
				prefix := "      fix: "
				if i > 0 {
					prefix = "           "
				}
				b.WriteString(prefix + l + "\n")
			}
		}
	}
	fails, warns := 0, 0
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	switch {
	case fails > 0:
		fmt.Fprintf(&b, "\n%d check(s) failed, %d warning(s).\n", fails, warns)
	case warns > 0:
		fmt.Fprintf(&b, "\nAll checks passed, with %d warning(s).\n", warns)
	default:
		b.WriteString("\nAll checks passed.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// New makes a check's outcome; fix matters for Fail and Warn.
func New(name string, st Status, fix, format string, a ...any) Check {
	return Check{Name: name, Status: st, Message: fmt.Sprintf(format, a...), Fix: fix}
}

func ok(name, format string, a ...any) Check {
	return Check{Name: name, Status: OK, Message: fmt.Sprintf(format, a...)}
}

func fail(name, fix, format string, a ...any) Check {
	return Check{Name: name, Status: Fail, Message: fmt.Sprintf(format, a...), Fix: fix}
}

func warn(name, fix, format string, a ...any) Check {
	return Check{Name: name, Status: Warn, Message: fmt.Sprintf(format, a...), Fix: fix}
}

func skip(name, format string, a ...any) Check {
	return Check{Name: name, Status: Skip, Message: fmt.Sprintf(format, a...)}
}

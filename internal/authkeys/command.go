package authkeys

import (
	"errors"
	"flag"
	"io"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// Env is what Run takes from the process: its streams, clock and syslog
// socket, so tests can give their own.
type Env struct {
	// Name is the command as its messages name it, e.g.
	// "kaginashi-agent authorized-keys".
	Name           string
	Stdout, Stderr io.Writer
	Now            func() time.Time
	// SyslogSocket is the syslog socket for the authpriv lines: "" is the
	// host's /dev/log.
	SyslogSocket string
	// SyslogTag is the tag of the lines; "" is "kaginashi-agent", the same
	// whichever binary sshd runs, so the host's auth log reads the same.
	SyslogTag string
}

// Usage is the argument synopsis after the command's name.
const Usage = "[--data-dir DIR] USER [FINGERPRINT]"

// Run is the AuthorizedKeysCommand's command line, args being what follows
// "authorized-keys": [--data-dir DIR] USER [FINGERPRINT]. It returns the
// exit status. It never fails loudly: any trouble reading or verifying
// means no keys (exit 0), with a message on stderr for sshd's log; only a
// command line that is not sshd's (a usage error) exits 2.
//
// USER and FINGERPRINT are chosen by whoever connects to sshd. They are
// parsed by the standard flag package exactly as kaginashi-agent always
// parsed them (a USER starting with "-" is a usage error), compared with
// validated record fields, and never printed: the output is built from
// verified records only, one line per key.
func Run(args []string, env Env) int {
	fs := flag.NewFlagSet(env.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", DefaultDataDir, "agent state directory")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		// On stderr: stdout is what sshd reads as authorized_keys, and
		// carries key lines only, whatever the arguments (a USER of "-h"
		// is one way here).
		io.WriteString(env.Stderr, "usage: "+env.Name+" "+Usage+"\n")
		return 0
	}
	if err != nil || fs.NArg() < 1 || fs.NArg() > 2 {
		io.WriteString(env.Stderr, "usage: "+env.Name+" "+Usage+"\n")
		return 2
	}
	user, fp := fs.Arg(0), fs.Arg(1)
	now := time.Now
	if env.Now != nil {
		now = env.Now
	}
	var provided []keyrecord.Record
	var refused Refusals
	err = Serve(*dataDir, user, fp, now(), env.Stdout, func(r keyrecord.Record) {
		provided = append(provided, r)
	}, &refused)
	if err != nil {
		io.WriteString(env.Stderr, env.Name+": "+err.Error()+"\n")
	}
	// Before the syslog lines, which may wait on a stalled syslog daemon;
	// this never waits (SendRefusals).
	SendRefusals(*dataDir, &refused)
	tag := env.SyslogTag
	if tag == "" {
		tag = "kaginashi-agent"
	}
	LogProvided(env.SyslogSocket, tag, now, provided)
	return 0
}

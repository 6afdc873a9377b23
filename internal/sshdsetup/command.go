package sshdsetup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// AKCBinary is the small AuthorizedKeysCommand binary
// (cmd/kaginashi-authorized-keys): the same code as `kaginashi-agent
// authorized-keys`, linked without the agent's network, TLS and HTTP code,
// so it starts in about the time of an empty Go program. It takes the same
// arguments, so the AuthorizedKeysCommand line differs only in the binary.
const AKCBinary = "kaginashi-authorized-keys"

// AgentBinary is kaginashi-agent's name, the fallback command.
const AgentBinary = "kaginashi-agent"

// Command is the binary setup-sshd has sshd run, and why.
type Command struct {
	Path  string // absolute path of the binary (before any install where sshd accepts it)
	Small bool   // kaginashi-authorized-keys, not kaginashi-agent itself
	Why   string // for people
}

// PickCommand chooses what sshd runs as the AuthorizedKeysCommand for the
// agent binary agent (the running kaginashi-agent, symlinks resolved) of
// version version: kaginashi-authorized-keys from the same directory when it
// is there, trustworthy, and answers --version with the same version;
// otherwise kaginashi-agent itself. Both print the same keys.
//
// The candidate is run (as whoever runs setup-sshd, root), so it must be
// as trustworthy as the agent: owned by root or by the agent binary's owner,
// not writable by group or others, in a directory not writable by group or
// others — a kaginashi-authorized-keys dropped next to an agent in /tmp by
// someone else is not run, and the agent is used instead.
func PickCommand(ctx context.Context, agent, version string) Command {
	fallback := func(why string) Command {
		return Command{Path: agent, Why: why + "; using " + AgentBinary + " itself"}
	}
	small := filepath.Join(filepath.Dir(agent), AKCBinary)
	fi, err := os.Stat(small)
	if err != nil {
		return fallback(fmt.Sprintf("no %s next to %s", AKCBinary, agent))
	}
	if why := untrusted(agent, small, fi); why != "" {
		return fallback(fmt.Sprintf("%s %s", small, why))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, small, "--version")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		return fallback(fmt.Sprintf("%s --version failed: %v", small, err))
	}
	want := AKCBinary + " " + version + "\n"
	if !bytes.Equal(out, []byte(want)) {
		return fallback(fmt.Sprintf("%s is another build (%q, want %q)", small, bytes.TrimSpace(out), want[:len(want)-1]))
	}
	return Command{Path: small, Small: true, Why: fmt.Sprintf("%s %s, next to %s: the small AuthorizedKeysCommand binary (faster start-up on every login, no network code)", AKCBinary, version, agent)}
}

// untrusted says why setup-sshd must not run small ("" if it may).
func untrusted(agent, small string, fi os.FileInfo) string {
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "is not an executable file"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "has no owner information"
	}
	var owner uint32 = 0
	if ai, err := os.Stat(agent); err == nil {
		if ast, ok := ai.Sys().(*syscall.Stat_t); ok {
			owner = ast.Uid
		}
	}
	if st.Uid != 0 && st.Uid != owner {
		return fmt.Sprintf("is owned by uid %d, neither root nor the agent binary's owner", st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("is writable by group or others (mode %04o)", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(small))
	if err != nil {
		return "is in an unreadable directory"
	}
	if di.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("is in a directory writable by group or others (mode %04o)", di.Mode().Perm())
	}
	return ""
}

// IsAuthorizedKeysCommand says whether argv (an AuthorizedKeysCommand's
// words) runs kaginashi's command: `kaginashi-agent authorized-keys ...` or
// `kaginashi-authorized-keys authorized-keys ...`.
func IsAuthorizedKeysCommand(argv []string) bool {
	if len(argv) < 2 || argv[1] != "authorized-keys" {
		return false
	}
	b := filepath.Base(argv[0])
	return b == AgentBinary || b == AKCBinary
}

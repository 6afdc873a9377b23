// Command kaginashi-authorized-keys is kaginashi's AuthorizedKeysCommand on
// its own: the same code as `kaginashi-agent authorized-keys` (package
// internal/authkeys), in a binary that links nothing else — no network, no
// TLS, no HTTP — so that what sshd starts on every login attempt, with a
// user name and fingerprint the client chose, starts in about the time of an
// empty Go program and holds only the code the job needs.
//
//	kaginashi-authorized-keys authorized-keys [--data-dir DIR] USER [FINGERPRINT]
//	kaginashi-authorized-keys [--data-dir DIR] USER [FINGERPRINT]
//	kaginashi-authorized-keys --version
//
// The first form takes exactly kaginashi-agent's arguments, so that
// `kaginashi-agent setup-sshd` writes the same AuthorizedKeysCommand line
// whichever binary it picks; it is the one setup-sshd writes. In the
// second, a first argument "authorized-keys" is always the subcommand
// word: a local user of that name is served only through the first form.
// Output, exit status and syslog line are kaginashi-agent's.
package main

import (
	"os"

	"github.com/kaginashi/kaginashi/internal/authkeys"
)

const name = "kaginashi-authorized-keys"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 1 && args[0] == "--version" {
		// setup-sshd asks this to be sure it pairs with the agent next to it.
		os.Stdout.WriteString(name + " " + authkeys.Version + "\n")
		return 0
	}
	cmd := name
	if len(args) > 0 && args[0] == "authorized-keys" {
		args = args[1:]
		cmd += " authorized-keys"
	}
	return authkeys.Run(args, authkeys.Env{
		Name:   cmd,
		Stdout: os.Stdout, Stderr: os.Stderr,
		// A test's own syslog socket (sshd passes no environment of its
		// own, so only a wrapper script sets it); the host's otherwise.
		SyslogSocket: os.Getenv("KAGINASHI_SYSLOG_SOCKET"),
	})
}

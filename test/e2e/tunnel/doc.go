// Package tunnel holds kaginashi's end-to-end tests of the client commands
// that reach hosts through the server's tunnels: `kaginashi ssh`,
// `kaginashi ssh-config` with plain ssh, scp, sftp, rsync and git, and
// `kaginashi ssh-proxy`. A real `kaginashi server`, real `kaginashi-agent`
// processes and private sshds on loopback ports that the tests reach only
// through the tunnel (except for baselines), with the real OpenSSH client.
// There is no non-test code here; what it shares with the other suites is
// in test/e2e/harness.
//
//	go test -race ./test/e2e/tunnel/
//
// The tests run as root (sshd must, and they add a local user for the run
// and remove it afterwards). They need openssh-server, openssh-client,
// rsync and git (scripts/deps.sh test installs them); without root, or
// with KAGINASHI_SKIP_SSHD=1, they are skipped. KAGINASHI_E2E_RACE=1
// builds the binaries with -race too.
package tunnel

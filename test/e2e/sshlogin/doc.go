// Package sshlogin holds kaginashi's end-to-end tests of keyless login: a
// real `kaginashi server`, real `kaginashi-agent` processes enrolled with
// join tokens, Debian's OpenSSH sshd started by the tests on loopback ports
// with kaginashi-agent as its AuthorizedKeysCommand, and the real ssh
// client. There is no non-test code here; what it shares with the API
// suite is in test/e2e/harness.
//
//	go test -race ./test/e2e/sshlogin/
//
// The tests run as root (sshd must, and they add two local users for the
// run and remove them afterwards). They need openssh-server and
// openssh-client (scripts/deps.sh test installs them); without root, or
// with KAGINASHI_SKIP_SSHD=1, they are skipped. KAGINASHI_E2E_RACE=1
// builds the binaries with -race too.
package sshlogin

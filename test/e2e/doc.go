// Package e2e holds kaginashi's end-to-end tests: they build the kaginashi
// binary, start real `kaginashi server` processes on SQLite and on a real
// PostgreSQL server, and talk to them with the AWS SDK for Go v2 and the
// preinstalled aws CLI, exactly as users do. There is no non-test code
// here: what it shares with the login suite (test/e2e/sshlogin) is in
// test/e2e/harness.
//
//	go test -race ./test/e2e/...
//
// Set KAGINASHI_E2E_RACE=1 to build the server binary with -race too, and
// KAGINASHI_SKIP_POSTGRES=1 to skip the PostgreSQL runs.
package e2e

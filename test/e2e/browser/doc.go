// Package browser runs the web console's browser tests (test/browser,
// Playwright's playwright-core driving Debian's chromium) against a real
// world: a `kaginashi server`, a real `kaginashi-agent` and a private
// OpenSSH sshd behind it, and a local user to log in as. The Go test sets
// the world up and runs `node test/browser/run.mjs`, failing on its exit
// code and showing its output.
//
//	go test ./test/e2e/browser/
//
// The test's sshd listens on a free loopback port, which the agent allows
// and the console's Connect panel is given ("SSH port", the terminal's port
// parameter), so the suite never needs port 22. The tests run as root
// (sshd and the test user need it); without root, or with
// KAGINASHI_SKIP_SSHD=1 or KAGINASHI_SKIP_BROWSER=1, they are skipped.
// They need chromium, Node.js and test/browser/node_modules
// (scripts/deps.sh test installs them). Screenshots go to
// test/browser/screenshots/ (not in git).
package browser

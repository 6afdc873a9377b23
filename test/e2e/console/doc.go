// Package console tests the web console's server side end to end: a real
// server, a real agent and a real OpenSSH sshd behind it, and the console's
// HTTP API and terminal WebSocket driven with Go's HTTP client and
// github.com/coder/websocket (the browser tests, with Chromium, are in
// test/e2e/browser).
package console

// Package tunneldata holds kaginashi's end-to-end tests of the tunnel's
// data path (issue #5, §1 and §3): a real `kaginashi server`, real
// `kaginashi-agent` processes, Debian's OpenSSH sshd and ssh client, and
// TCP services of the test process that the agents allow. The test reaches
// the services only through tunnels: `kaginashi open-tunnel` as ssh's
// ProxyCommand, the client library in-process (client.DialTunnel), and a
// third-party WebSocket client with a URL presigned by the AWS SDK.
//
//	go test -race ./test/e2e/tunneldata/
//
// What they check: gigabytes both ways with equal checksums; 50 tunnels at
// once; backpressure with bounded memory (a stalled reader stops the
// sender, and the server's resident memory stays put); the maximum
// duration and the concurrency limit; ports the agent does not allow; IAM
// conditions on the port; close codes and reasons; empty and text frames;
// the prompt exit of open-tunnel's stdio mode; the audit events with the
// bytes each way.
//
// The ssh test runs as root (sshd needs it) with openssh-server and
// openssh-client installed; without them, or with KAGINASHI_SKIP_SSHD=1,
// it is skipped and the others still run. KAGINASHI_E2E_RACE=1 builds the
// binaries with -race too.
package tunneldata

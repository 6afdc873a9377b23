// Package agentmetrics holds the end-to-end test of the host agent's
// Prometheus metrics (kaginashi-agent run --metrics-listen, issue #4): a
// real `kaginashi server`, a real `kaginashi-agent` process, a key pushed
// with the AWS SDK's SendSSHPublicKey, tunnels opened with the client
// library to a TCP service of the test process, and /metrics scraped over
// HTTP and parsed with Prometheus's own text parser. It also reports the
// idle agent's resident memory with and without the flag.
//
//	go test -race ./test/e2e/agentmetrics/
//
// KAGINASHI_E2E_RACE=1 builds the binaries with -race too.
package agentmetrics

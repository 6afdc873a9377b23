package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/uuid"
)

// Target is a server under load: where it listens, the CA that signs its
// certificate, and the credentials and instances requests use.
type Target struct {
	Name      string
	URL       string // https://127.0.0.1:PORT/
	CA        *x509.CertPool
	Region    string
	Keys      []aws.Credentials
	Instances []string
	PGPID     int    // the postmaster, whose processes' CPU counts too
	PGDB      string // the target's PostgreSQL database
}

// Result is one measured run.
type Result struct {
	Target      string
	Concurrency int
	Offered     float64 // open-loop rate, req/s; 0 for closed-loop
	Duration    time.Duration
	OK          int64
	Errors      int64
	// Completed counts every answered request, warm-up and window edges
	// included (for per-request server-side counters).
	Completed  int64
	ErrorKinds map[string]int64 // "HTTP 500: <body start>" or the transport error
	Latencies  []time.Duration  // successful requests, sorted
	CPU        cpuUse           // over the measured window
	PGStats    []stmtStat       // PostgreSQL statements over warm-up and window
	// SlowPeriods counts requests slower than the p99 goal by the 100 ms
	// period of the window they were due in: a few crowded periods are
	// stalls, an even spread is queueing.
	SlowPeriods map[time.Duration]int
}

// CPUPerRequest is CPU time (this process, clients included, and
// PostgreSQL) per successful request.
func (r *Result) CPUPerRequest() time.Duration {
	return (r.CPU.self + r.CPU.postgres) / time.Duration(max(r.OK, 1))
}

// Rate is successful requests per second.
func (r *Result) Rate() float64 { return float64(r.OK) / r.Duration.Seconds() }

// Quantile of the successful requests' latencies (nearest rank).
func (r *Result) Quantile(q float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*q+0.999999) - 1
	return r.Latencies[min(max(i, 0), n-1)]
}

const (
	sdkUserAgent = "aws-sdk-go-v2/1.48.0 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/ec2instanceconnect#1.44.6 m/E kaginashi-bench"
	eicTarget    = "AWSEC2InstanceConnectService.SendSSHPublicKey"
)

// workerStats is one client's tally; merged after the run.
type workerStats struct {
	slow      []time.Time // when requests over the p99 goal were due
	ok, errs  int64
	completed atomic.Int64
	kinds     map[string]int64
	latencies []time.Duration
}

// runLoad drives t with c closed-loop clients, each on its own keep-alive
// HTTP/1.1 connection, every request freshly SigV4-signed with the SDK's
// signer as the SDK's ec2instanceconnect client signs it. The first warmup
// is not counted; a request counts if it starts and ends within the
// measured window.
//
// With rate > 0 the load is open-loop instead: requests are due at a fixed
// rate whatever the answers do, c connections take them in turn, and a
// request's latency runs from when it was due, so time spent queued
// behind a slow server counts (no coordinated omission).
func runLoad(ctx context.Context, t *Target, c int, rate float64, warmup, dur time.Duration, sshKey string, during func(start bool)) *Result {
	signer := v4.NewSigner()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// winStart is when the measured window opened (Unix ns, 0 before);
	// measuring is false again once it closed.
	var winStart atomic.Int64
	var measuring atomic.Bool
	var due chan time.Time
	if rate > 0 {
		due = make(chan time.Time, 1<<17)
		go func() {
			start := time.Now()
			for i := int64(0); ; i++ {
				at := start.Add(time.Duration(float64(i) * 1e9 / rate))
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				select {
				case due <- at:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	stats := make([]*workerStats, c)
	var wg sync.WaitGroup
	transports := make([]*http.Transport, c)
	for w := 0; w < c; w++ {
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: t.CA, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
			MaxIdleConnsPerHost: 1,
			MaxConnsPerHost:     1,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		}
		transports[w] = tr
		client := &http.Client{Transport: tr}
		ws := &workerStats{kinds: map[string]int64{}, latencies: make([]time.Duration, 0, 1<<14)}
		stats[w] = ws
		creds := t.Keys[w%len(t.Keys)]
		bodies := make([][]byte, len(t.Instances))
		for i, id := range t.Instances {
			bodies[i] = fmt.Appendf(nil, `{"InstanceId":%q,"InstanceOSUser":"ec2-user","SSHPublicKey":%q}`, id, sshKey)
		}
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
			defer wg.Done()
			for n := w; ctx.Err() == nil; n++ {
				body := bodies[n%len(bodies)]
				var start time.Time
				if due != nil {
					select {
					case start = <-due:
					case <-ctx.Done():
						return
					}
				} else {
					start = time.Now()
				}
				err := doSigned(ctx, client, signer, t, creds, body)
				elapsed := time.Since(start)
				if err == nil || ctx.Err() == nil {
					ws.completed.Add(1)
				}
				// Closed loop: what started in the window and ended in it.
				// Open loop: what ended in the window, however long it was
				// queued (an overloaded server's backlog is its latency).
				ws0 := winStart.Load()
				if ctx.Err() != nil || ws0 == 0 || !measuring.Load() || (due == nil && start.UnixNano() < ws0) {
					continue
				}
				if err != nil {
					ws.errs++
					ws.kinds[err.Error()]++
					continue
				}
				ws.ok++
				ws.latencies = append(ws.latencies, elapsed)
				if elapsed > goalP99 {
					ws.slow = append(ws.slow, start)
				}
			}
		})
	}
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
	}
	if during != nil {
		during(true)
	}
	cpu0 := sampleCPU(t.PGPID)
	began := time.Now()
	measuring.Store(true)
	winStart.Store(began.UnixNano())
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(began)
	cpu1 := sampleCPU(t.PGPID)
	if during != nil {
		during(false)
	}
	cancel()
	wg.Wait()
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}

	r := &Result{Target: t.Name, Concurrency: c, Offered: rate, Duration: elapsed, ErrorKinds: map[string]int64{}, CPU: cpuBetween(cpu0, cpu1),
		SlowPeriods: map[time.Duration]int{}}
	for _, ws := range stats {
		r.OK += ws.ok
		r.Errors += ws.errs
		r.Completed += ws.completed.Load()
		for k, v := range ws.kinds {
			r.ErrorKinds[k] += v
		}
		r.Latencies = append(r.Latencies, ws.latencies...)
		for _, at := range ws.slow {
			r.SlowPeriods[max(at.Sub(began), 0)/(100*time.Millisecond)]++
		}
	}
	slices.Sort(r.Latencies)
	return r
}

// httpError is a non-200 answer.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// doSigned sends one SendSSHPublicKey request the way the SDK client does:
// JSON 1.1 headers, an invocation ID, the payload hash, SigV4 over them.
func doSigned(ctx context.Context, client *http.Client, signer *v4.Signer, t *Target, creds aws.Credentials, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", eicTarget)
	req.Header.Set("User-Agent", sdkUserAgent)
	req.Header.Set("Amz-Sdk-Invocation-Id", uuid.NewString())
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	sum := sha256.Sum256(body)
	if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ec2-instance-connect", t.Region, time.Now().UTC()); err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		s := strings.Join(strings.Fields(string(b)), " ")
		if len(s) > 160 {
			s = s[:160] + "…"
		}
		return &httpError{status: resp.StatusCode, body: s}
	}
	return nil
}

// errorSummary lists a result's error kinds, most frequent first.
func errorSummary(r *Result) []string {
	type kv struct {
		k string
		v int64
	}
	var kvs []kv
	for k, v := range r.ErrorKinds {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v })
	var out []string
	for _, e := range kvs {
		out = append(out, fmt.Sprintf("%d × %s", e.v, e.k))
	}
	return out
}

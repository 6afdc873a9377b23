package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// fleetConfig is part 4's knobs.
type fleetConfig struct {
	agents      int
	sources     int
	enrollConc  int
	connectConc int
	settle      time.Duration
	idle        time.Duration
	pushes      int
	profile     time.Duration // CPU profile of the server at N agents (0: none)
	bare        bool
	whatIf      bool // also the bare holder without yamux keepalives (the agents send none)
	quietWait   time.Duration
	noisy       float64
}

// holdResult is one server holding the fleet.
type holdResult struct {
	mem0        memInfo // before any agent connected
	memAll      memInfo // with all connected, after settling
	memAllEnd   memInfo // at the end of the idle window
	connectTime time.Duration
	connected   int
	connectLat  []time.Duration
	idle        windowResult // server, this process (the agents)
	beats       int64        // heartbeats answered in the idle window
	invs        int64        // of which carried an inventory
	slowBeats   int64
	dropped     int64 // sessions ended during the phase
	failed      int64 // connection attempts failed during the phase

	otherConnect float64 // other processes' CPU before connecting, cores
}

// fleetResult is part 4's outcome.
type fleetResult struct {
	cfg          fleetConfig
	enrollTime   time.Duration
	memEnrolled  memInfo
	mem1         memInfo
	memAfterPush memInfo
	push1, pushN []time.Duration
	push1Errs    []string
	pushNErrs    []string
	acks         int64
	refused      int64
	otherPush1   float64
	otherPushN   float64
	kg           holdResult
	bare         *holdResult
	bareNoKA     *holdResult
	goroutines   int
	memstats     map[string]float64
	cpuTop       string
	heapTop      string
	profileDir   string
	rlimit       uint64
}

// benchFleet runs part 4: a fresh server child, N enrolled simulated
// agents, pushes with one and with N connected, the idle window; then
// the bare baseline holding the same agents.
func benchFleet(ctx context.Context, e *env, fc fleetConfig) (*fleetResult, error) {
	res := &fleetResult{cfg: fc, rlimit: e.nofile}
	dir := filepath.Join(e.work, "fleet-server")
	creds := rootCreds()
	progress("part 4: starting a server for %d agents…", fc.agents)
	srv, err := startChild("server", dir, filepath.Join(e.work, "fleet-server.log"), rootEnv(creds)...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !srv.exited() {
			_ = srv.stop()
		}
	}()
	a, err := newAPI(srv.url, dir, creds)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1" + srv.url[strings.LastIndexByte(srv.url, ':'):]
	sleepCtx(ctx, 3*time.Second)
	res.kg.mem0, _ = procMem(srv.pid)

	var sources []net.IP
	for i := 0; i < fc.sources; i++ {
		sources = append(sources, net.IPv4(127, 0, 0, byte(2+i)))
	}
	f := &fleet{pool: a.pool, heartbeatEvery: 20 * time.Second, inventoryEvery: 5 * time.Minute}
	tok, err := a.joinToken(ctx, fc.agents)
	if err != nil {
		return nil, err
	}
	progress("part 4: enrolling %d agents with one join token (MaxUses %d), %d at a time…", fc.agents, fc.agents, fc.enrollConc)
	if res.enrollTime, err = f.enroll(ctx, srv.url, tok, fc.agents, fc.enrollConc, sources); err != nil {
		return nil, err
	}
	progress("  enrolled in %s", res.enrollTime.Round(time.Millisecond))
	res.memEnrolled, _ = procMem(srv.pid)

	r := f.start(ctx, addr, fc.connectConc)
	defer r.stop()
	if _, n := r.add(f.agents[:1], time.Minute); n != 1 {
		return nil, fmt.Errorf("agent 0 did not connect")
	}
	sleepCtx(ctx, time.Second)
	res.mem1, _ = procMem(srv.pid)
	c := a.eic()
	keys := make([]sshKey, 32)
	for i := range keys {
		if keys[i], err = newSSHKey("", ""); err != nil {
			return nil, err
		}
	}
	pushes := func(n int, connected int) ([]time.Duration, []string) {
		var ds []time.Duration
		var errs []string
		for i := -20; i < n && ctx.Err() == nil; i++ { // 20 warm-up pushes
			ag := f.agents[rand.N(connected)]
			d, err := a.push(ctx, c, ag.id, "ec2-user", keys[rand.N(len(keys))].line)
			if i < 0 {
				continue
			}
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			ds = append(ds, d)
		}
		return ds, errs
	}
	res.otherPush1 = waitQuiet(ctx, fc.quietWait, fc.noisy, srv.pid)
	progress("part 4: %d pushes with 1 agent connected…", fc.pushes)
	res.push1, res.push1Errs = pushes(fc.pushes, 1)
	progress("  p50 %s ms, p99 %s ms, %d errors", ms(quantile(res.push1, 0.5)), ms(quantile(res.push1, 0.99)), len(res.push1Errs))

	res.kg.otherConnect = waitQuiet(ctx, fc.quietWait, fc.noisy, srv.pid)
	progress("part 4: connecting %d agents, %d handshakes in flight at most…", fc.agents-1, fc.connectConc)
	d0, f0 := f.dropped.Load(), f.failed.Load()
	var connected int
	res.kg.connectTime, connected = r.add(f.agents[1:], 15*time.Minute)
	res.kg.connected = connected + 1
	res.kg.connectLat = append(res.kg.connectLat, r.connect[1:]...)
	progress("  %d connected in %s", res.kg.connected, res.kg.connectTime.Round(time.Millisecond))
	if srv.exited() {
		return nil, fmt.Errorf("the server exited while the agents connected: %v\n%s", srv.err, tail(srv.log))
	}
	hold(ctx, e, srv, f, fc, &res.kg)
	res.kg.dropped, res.kg.failed = f.dropped.Load()-d0, f.failed.Load()-f0

	if fc.profile > 0 && ctx.Err() == nil {
		progress("part 4: profiling the server for %s…", fc.profile)
		res.profileDir = e.work
		res.cpuTop, res.heapTop, res.goroutines, res.memstats = profileServer(srv, e.work, fc.profile)
	}
	res.otherPushN = waitQuiet(ctx, fc.quietWait, fc.noisy, srv.pid)
	progress("part 4: %d pushes to random agents of %d connected…", fc.pushes, f.connected.Load())
	res.pushN, res.pushNErrs = pushes(fc.pushes, len(f.agents))
	progress("  p50 %s ms, p99 %s ms, %d errors", ms(quantile(res.pushN, 0.5)), ms(quantile(res.pushN, 0.99)), len(res.pushNErrs))
	res.memAfterPush, _ = procMem(srv.pid)
	res.acks, res.refused = f.acks.Load(), f.refused.Load()
	r.stop()
	if err := srv.stop(); err != nil {
		progress("  %v", err)
	}
	if !fc.bare || ctx.Err() != nil {
		return res, ctx.Err()
	}

	if res.bare, err = holdBare(ctx, e, f, fc, dir, "bare", false); err != nil {
		return nil, err
	}
	if fc.whatIf && ctx.Err() == nil {
		if res.bareNoKA, err = holdBare(ctx, e, f, fc, dir, "bare-no-keepalive", true); err != nil {
			return nil, err
		}
	}
	return res, ctx.Err()
}

// holdBare connects the fleet to the bare holder (on the kaginashi
// server's data directory: the same certificate and agent CA) and measures
// it as hold does; noKeepAlive turns the holder's yamux keepalives off too
// (the agents, like kaginashi-agent, never ping: heartbeats are their
// liveness), as kaginashi's server has them.
func holdBare(ctx context.Context, e *env, f *fleet, fc fleetConfig, dir, name string, noKeepAlive bool) (*holdResult, error) {
	if noKeepAlive {
		progress("part 4: the bare holder without yamux keepalives, as kaginashi's server (liveness from the heartbeats alone)…")
	} else {
		progress("part 4: the bare baseline: the same agents against a TLS + yamux holder without kaginashi…")
	}
	var env []string
	if noKeepAlive {
		env = append(env, envNoKeepAlive+"=1")
	}
	bare, err := startChild("bare", dir, filepath.Join(e.work, "fleet-"+name+".log"), env...)
	if err != nil {
		return nil, err
	}
	bare.role = name
	defer func() {
		if !bare.exited() {
			_ = bare.stop()
		}
	}()
	sleepCtx(ctx, 3*time.Second)
	h := &holdResult{}
	h.mem0, _ = procMem(bare.pid)
	addr := "127.0.0.1" + bare.url[strings.LastIndexByte(bare.url, ':'):]
	d0, f0 := f.dropped.Load(), f.failed.Load()
	h.otherConnect = waitQuiet(ctx, fc.quietWait, fc.noisy, bare.pid)
	r := f.start(ctx, addr, fc.connectConc)
	defer r.stop()
	h.connectTime, h.connected = r.add(f.agents, 15*time.Minute)
	h.connectLat = r.connect
	progress("  %d connected in %s", h.connected, h.connectTime.Round(time.Millisecond))
	hold(ctx, e, bare, f, fc, h)
	h.dropped, h.failed = f.dropped.Load()-d0, f.failed.Load()-f0
	r.stop()
	if err := bare.stop(); err != nil {
		progress("  %v", err)
	}
	return h, ctx.Err()
}

// hold lets the connected fleet settle, then measures the server's memory
// and its CPU over the idle window.
func hold(ctx context.Context, e *env, srv *child, f *fleet, fc fleetConfig, h *holdResult) {
	progress("  settling %s (every agent's first heartbeat falls in its first 20 s)…", fc.settle)
	sleepCtx(ctx, fc.settle)
	h.memAll, _ = procMem(srv.pid)
	progress("  %s: RSS %s MiB with %d agents connected; idle window of %s…", srv.role, mib(h.memAll.RSS), f.connected.Load(), fc.idle)
	waitQuiet(ctx, fc.quietWait, fc.noisy, srv.pid)
	b0, i0, s0 := f.heartbeats.Load(), f.inventories.Load(), f.slowBeats.Load()
	w := startWindow(srv.pid, os.Getpid())
	sleepCtx(ctx, fc.idle)
	h.idle = w.end()
	h.beats, h.invs, h.slowBeats = f.heartbeats.Load()-b0, f.inventories.Load()-i0, f.slowBeats.Load()-s0
	h.memAllEnd, _ = procMem(srv.pid)
	progress("  %s: %.1f %% of one core over %s (%d heartbeats answered); RSS %s MiB", srv.role,
		100*cores(h.idle.CPU[0], h.idle.Wall), h.idle.Wall.Round(time.Second), h.beats, mib(h.memAllEnd.RSS))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// profileServer takes the server's CPU profile over d, its heap profile,
// goroutine count and runtime memory statistics, and summarizes the
// profiles with `go tool pprof -top`.
func profileServer(srv *child, dir string, d time.Duration) (cpuTop, heapTop string, goroutines int, memstats map[string]float64) {
	get := func(path, file string) error {
		hc := &http.Client{Timeout: d + time.Minute}
		resp, err := hc.Get("http://" + srv.pprof + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	top := func(file string, args ...string) string {
		cmd := exec.Command(goBinary(), append(append([]string{"tool", "pprof", "-top", "-nodecount=25"}, args...), filepath.Join(dir, file))...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Sprintf("go tool pprof: %v\n%s", err, b)
		}
		return string(b)
	}
	if err := get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d/time.Second)), "server-cpu.pprof"); err != nil {
		cpuTop = err.Error()
	} else {
		cpuTop = top("server-cpu.pprof")
	}
	if err := get("/debug/pprof/heap", "server-heap.pprof"); err != nil {
		heapTop = err.Error()
	} else {
		heapTop = top("server-heap.pprof", "-sample_index=inuse_space")
	}
	if err := get("/debug/pprof/goroutine?debug=1", "server-goroutines.txt"); err == nil {
		b, _ := os.ReadFile(filepath.Join(dir, "server-goroutines.txt"))
		_, _ = fmt.Sscanf(string(b), "goroutine profile: total %d", &goroutines)
	}
	if err := get("/debug/vars", "server-vars.json"); err == nil {
		b, _ := os.ReadFile(filepath.Join(dir, "server-vars.json"))
		var v struct {
			Memstats map[string]any `json:"memstats"`
		}
		if json.Unmarshal(b, &v) == nil {
			memstats = map[string]float64{}
			for _, k := range []string{"HeapInuse", "HeapSys", "StackInuse", "Sys", "HeapObjects", "NumGC", "GCCPUFraction"} {
				if x, ok := v.Memstats[k].(float64); ok {
					memstats[k] = x
				}
			}
		}
	}
	return cpuTop, heapTop, goroutines, memstats
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Goals of issue #4 §3.
const (
	goalAuthP50   = 2 * time.Millisecond
	goalAuthP99   = 5 * time.Millisecond
	goalIdleRSS   = 15_000_000 // bytes: 15 MB
	goalIdleCPU   = 0.001      // "≈ 0": at most 0.1 % of one core
	goalLogin     = 1.10
	goalFleetRSS  = 1 << 30 // 1 GiB
	goalFleetIdle = 0.10    // of one core
)

type report struct {
	cfg                   config
	machine               []string
	loadBefore, loadAfter string
	started, finished     time.Time
	authKeys              *authKeysResult
	idle                  *idleResult
	login                 *loginResult
	fleet                 *fleetResult
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Host agent — issue #4 §3\n\n")
	p("Written by `go run ./bench/agent` (bench/agent). Every figure stands next to a baseline measured in the same run on this machine.\n\n")
	p("### Machine\n\n")
	for _, l := range r.machine {
		p("- %s\n", l)
	}
	if r.login != nil {
		p("- %s; sshd %s\n", r.login.sshVersion, r.login.sshdV)
	}
	p("- load average before the run: %s, after: %s; run took %s\n\n", r.loadBefore, r.loadAfter, r.finished.Sub(r.started).Round(time.Second))
	p("### Command\n\n```\n%s\n```\n\n", command())

	if a := r.authKeys; a != nil {
		r.partAuthKeys(p, a)
	}
	if i := r.idle; i != nil {
		r.partIdle(p, i)
	}
	if l := r.login; l != nil {
		r.partLogin(p, l)
	}
	if f := r.fleet; f != nil {
		r.partFleet(p, f)
	}
	return b.String()
}

// command is how this run was started.
func command() string {
	args := []string{"go run ./bench/agent"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + a + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

func (r *report) partAuthKeys(p func(string, ...any), a *authKeysResult) {
	p("### 1. AuthorizedKeysCommand wall time per call\n\n")
	p("**Goal:** p50 ≤ 2 ms, p99 ≤ 5 ms, for what `kaginashi-agent setup-sshd` has sshd run (here %s). **Baselines:** a static empty Go binary (built like the agent: CGO_ENABLED=0, -trimpath -ldflags '-s -w') and /bin/true, exec'd the same way in the same loop.\n\n", "`"+filepath.Base(a.installed)+"`")
	p("setup-sshd picks `kaginashi-authorized-keys` — the AuthorizedKeysCommand alone (package internal/authkeys), without the agent's network, TLS and HTTP code — when it sits next to the agent with the same version, as `make build` leaves them; `kaginashi-agent authorized-keys` runs the same code inside the whole agent and is the fallback. Both are measured. ")
	p("Each call is what sshd does: fork+exec as user nobody with only PATH in the environment, stdout read through a pipe, timed from start to exit. ")
	p("The data directory holds an enrolled identity and %d active records pushed through the API for %d users; the asked user (%s) has 2 keys and sshd's %%f selects one. ", a.records, a.users, askedUser)
	p("The commands run interleaved, their order rotating, %d times each after 50 warm-up rounds (%s in all; other processes used %.2f cores meanwhile). ", len(a.cases[0].times), a.wall.Round(time.Second), a.other)
	p("Binary sizes: kaginashi-authorized-keys %s MiB, kaginashi-agent %s MiB, empty Go %s MiB.\n\n", mib(a.akcSize), mib(a.agentSize), mib(a.emptySize))
	base := a.base.times
	tru := a.tru.times
	p("| command | n | p50 ms | p90 ms | p99 ms | max ms | p50 ÷ empty Go | p99 ÷ empty Go | p50 ÷ /bin/true |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range a.cases {
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", c.name, len(c.times), ms(quantile(c.times, 0.5)), ms(quantile(c.times, 0.9)),
			ms(quantile(c.times, 0.99)), ms(quantile(c.times, 1)), ratio(quantile(c.times, 0.5), quantile(base, 0.5)),
			ratio(quantile(c.times, 0.99), quantile(base, 0.99)), ratio(quantile(c.times, 0.5), quantile(tru, 0.5)))
	}
	main, logged := a.served.times, a.logged.times
	p("\n**Goal met:** %s for the served key as sshd calls it here (p50 %s ms, p99 %s ms); %s with the syslog line written (p50 %s ms, p99 %s ms; the socket received %d lines for %d calls that log, warm-up included).\n\n",
		yesNo(quantile(main, 0.5) <= goalAuthP50 && quantile(main, 0.99) <= goalAuthP99), ms(quantile(main, 0.5)), ms(quantile(main, 0.99)),
		yesNo(quantile(logged, 0.5) <= goalAuthP50 && quantile(logged, 0.99) <= goalAuthP99), ms(quantile(logged, 0.5)), ms(quantile(logged, 0.99)),
		a.syslogSeen, a.syslogCalls)
}

func (r *report) partIdle(p func(string, ...any), i *idleResult) {
	p("### 2. Idle agent: memory and CPU\n\n")
	p("**Goal:** RSS ≤ 15 MB, CPU idle ≈ 0 (read here as ≤ 0.1 %% of one core). **Baseline:** a static Go program that only sleeps (the Go runtime's RSS floor), over the same window.\n\n")
	p("The real `kaginashi-agent run` (static binary), enrolled with a join token and connected to a real server (server.Run in a child process) over mTLS + yamux, after part 1's pushes; ")
	p("measured over %s: VmRSS/VmHWM from /proc/PID/status, CPU as utime+stime from /proc/PID/stat (10 ms ticks) and, finer, the threads' schedstat run time. The agent reconnected %d times in the window.\n\n", i.window.Round(time.Second), i.reconnects)
	p("| process | VmRSS MiB | VmHWM MiB | threads | utime+stime ms | schedstat ms | %% of one core |\n|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, m memInfo, cpu, sched time.Duration) {
		p("| %s | %s | %s | %d | %d | %.1f | %.3f %% |\n", name, mib(m.RSS), mib(m.HWM), m.Threads, cpu.Milliseconds(), float64(sched)/1e6, 100*cores(sched, i.window))
	}
	row("kaginashi-agent run (connected, idle)", i.agentMem, i.agentCPU, i.agentSched)
	row("baseline: sleeping Go program", i.sleepMem, i.sleepCPU, i.sleepSched)
	p("\nAgent RSS ÷ baseline RSS: %.2f×. ", float64(i.agentMem.RSS)/float64(max(i.sleepMem.RSS, 1)))
	cpu := cores(max(i.agentSched, i.agentCPU), i.window)
	p("**Goal met:** RSS %s (%.1f MB); CPU %s (%.3f %% of one core, %.1f ms per minute).\n\n",
		yesNo(i.agentMem.RSS <= goalIdleRSS), float64(i.agentMem.RSS)/1e6, yesNo(cpu <= goalIdleCPU), 100*cpu, float64(max(i.agentSched, i.agentCPU))/1e6*float64(time.Minute)/float64(i.window))
}

func (r *report) partLogin(p func(string, ...any), l *loginResult) {
	p("### 3. Push + `ssh host true` vs `ssh -i static_key host true`\n\n")
	p("**Goal:** ratio ≤ 1.10. **Baseline:** `ssh -i static_key root@127.0.0.1 true` against the same sshd, the key in its AuthorizedKeysFile.\n\n")
	p("A private Debian sshd on loopback (UsePAM no, its own host key) with `AuthorizedKeysFile` holding the static key and `AuthorizedKeysCommand %s authorized-keys --data-dir DIR %%u %%f` (what setup-sshd picks, as in part 1) run as nobody, the binary in a root-owned 0755 directory under /run. ", l.akc)
	p("A keyless round: SendSSHPublicKey of a fresh Ed25519 key for root through the AWS SDK for Go v2 ec2instanceconnect client (one client, its connection kept alive; no retries), then `ssh -i` with it — sshd finds it in no file and runs the command (twice: for the key query and for the signed attempt). ")
	p("%d rounds of each after 3 warm-up rounds, interleaved, alternating which goes first. Other processes used %s cores just before. This VM has no /dev/log, so the AuthorizedKeysCommand skips its syslog line here (part 1 shows its cost).\n\n", l.rounds, coresOr(l.other))
	p("| | n | median ms | p90 ms | min ms | max ms | median ÷ static |\n|---|---:|---:|---:|---:|---:|---:|\n")
	st := quantile(l.static, 0.5)
	row := func(name string, ds []time.Duration) {
		p("| %s | %d | %s | %s | %s | %s | %s |\n", name, len(ds), ms(quantile(ds, 0.5)), ms(quantile(ds, 0.9)), ms(quantile(ds, 0)), ms(quantile(ds, 1)), ratio(quantile(ds, 0.5), st))
	}
	row("baseline: `ssh -i static_key host true`", l.static)
	row("SendSSHPublicKey (SDK call)", l.push)
	row("`ssh -i pushed_key host true`", l.pushedSSH)
	row("**push + ssh**", l.total)
	ratioV := float64(quantile(l.total, 0.5)) / float64(st)
	p("\n**Goal met:** %s — median(push + ssh) ÷ median(static ssh) = %.2f.\n\n", yesNo(ratioV <= goalLogin), ratioV)
}

func (r *report) partFleet(p func(string, ...any), f *fleetResult) {
	fc := f.cfg
	p("### 4. %d agents held by one server\n\n", fc.agents)
	p("**Goals:** server RSS ≤ 1 GiB and idle CPU ≤ 10 %% of one core with all connected; SendSSHPublicKey p99 reported next to the p99 with 1 agent connected. ")
	p("**Baselines:** the same server before the agents connected and with 1 agent; and a bare holder — kaginashi's TLS configuration (its certificate, its agent CA verifying the client certificates), the HTTP upgrade and yamux settings, answering hellos and heartbeats, and nothing else (no store, no API) — holding the same agents. A second bare holder has its yamux keepalives off too, as kaginashi's server does; the agents never ping (kaginashi-agent's liveness is its 20 s heartbeat), so there the connections carry nothing but heartbeats.\n\n")
	p("The server is server.Run in a child process (SQLite, TLS, throttling off), fresh for this part. Each simulated agent (in the benchmark process) enrolled through POST /agent/v1/enroll with one join token (MaxUses %d, created through the API), so it has its own Ed25519 key and the client certificate the server issued; ", fc.agents)
	p("it connects over real loopback TCP + TLS from one of %d source addresses (127.0.0.2…), upgrades, runs yamux with the agent's settings (no keepalive pings), says hello with an inventory the size of a real host's, sends a heartbeat every 20 s (an inventory every 5 min; both at a random phase, as in a fleet that has been up a while), reconnects with the agent's backoff, and verifies every pushed record (signature against the key pinned at enrollment, instance, expiry) before acknowledging it — it does not write it to disk. ", fc.sources)
	p("At most %d connection attempts are in flight. RLIMIT_NOFILE raised to %d for the benchmark and the servers.\n\n", fc.connectConc, f.rlimit)
	p("Enrollment of %d agents, %d at a time: %s (%.0f per second); server RSS after it %s MiB.\n\n", fc.agents, fc.enrollConc, f.enrollTime.Round(time.Millisecond), float64(fc.agents)/f.enrollTime.Seconds(), mib(f.memEnrolled.RSS))

	kg, bare, noKA := &f.kg, f.bare, f.bareNoKA
	p("| | kaginashi | bare TLS + yamux holder | kaginashi ÷ bare |")
	if noKA != nil {
		p(" bare, no yamux keepalives (kaginashi's setting) | ÷ bare |")
	}
	p("\n|---|---:|---:|---:|")
	if noKA != nil {
		p("---:|---:|")
	}
	p("\n")
	// row prints a figure for each server; num, when set, gives the
	// ratio columns.
	row := func(name string, str func(h *holdResult) string, num func(h *holdResult) float64) {
		v := func(h *holdResult) string {
			if h == nil {
				return "–"
			}
			return str(h)
		}
		rt := func(a, b *holdResult) string {
			if num == nil || a == nil || b == nil || num(b) == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f×", num(a)/num(b))
		}
		p("| %s | %s | %s | %s |", name, v(kg), v(bare), rt(kg, bare))
		if noKA != nil {
			p(" %s | %s |", v(noKA), rt(noKA, bare))
		}
		p("\n")
	}
	perAgent := func(h *holdResult) float64 {
		return float64(h.memAll.RSS-h.mem0.RSS) / float64(max(h.connected, 1)) / 1024
	}
	idlePct := func(h *holdResult) float64 { return 100 * cores(h.idle.CPU[0], h.idle.Wall) }
	perBeat := func(h *holdResult) float64 {
		return float64(h.idle.CPU[0].Microseconds()) / float64(max(h.beats, 1))
	}
	row("agents connected", func(h *holdResult) string { return fmt.Sprint(h.connected) }, nil)
	row("time to connect all", func(h *holdResult) string { return h.connectTime.Round(time.Millisecond).String() },
		func(h *holdResult) float64 { return h.connectTime.Seconds() })
	row("other processes' CPU just before connecting, cores", func(h *holdResult) string { return coresOr(h.otherConnect) }, nil)
	row("one connection (dial → hello answered), p50 / p99 ms", func(h *holdResult) string {
		return ms(quantile(h.connectLat, 0.5)) + " / " + ms(quantile(h.connectLat, 0.99))
	}, nil)
	row("RSS before any agent, MiB", func(h *holdResult) string { return mib(h.mem0.RSS) }, func(h *holdResult) float64 { return float64(h.mem0.RSS) })
	row("**RSS with all connected**, MiB", func(h *holdResult) string { return mib(h.memAll.RSS) }, func(h *holdResult) float64 { return float64(h.memAll.RSS) })
	row("RSS at the end of the idle window, MiB", func(h *holdResult) string { return mib(h.memAllEnd.RSS) }, func(h *holdResult) float64 { return float64(h.memAllEnd.RSS) })
	row("peak RSS (VmHWM), MiB", func(h *holdResult) string { return mib(h.memAllEnd.HWM) }, nil)
	row("RSS per agent (with all connected − before), KiB", func(h *holdResult) string { return fmt.Sprintf("%.0f", perAgent(h)) }, perAgent)
	row(fmt.Sprintf("**idle CPU over %s**, %% of one core", fc.idle), func(h *holdResult) string { return fmt.Sprintf("%.1f %%", idlePct(h)) }, idlePct)
	row("heartbeats answered in the window (with an inventory)", func(h *holdResult) string { return fmt.Sprintf("%d (%d)", h.beats, h.invs) }, nil)
	row("server CPU per heartbeat (keepalives included), µs", func(h *holdResult) string { return fmt.Sprintf("%.0f", perBeat(h)) }, perBeat)
	row("heartbeats answered after > 1 s", func(h *holdResult) string { return fmt.Sprint(h.slowBeats) }, nil)
	row("sessions dropped / failed connection attempts", func(h *holdResult) string { return fmt.Sprintf("%d / %d", h.dropped, h.failed) }, nil)
	row("simulated agents' CPU in the window (benchmark process), cores", func(h *holdResult) string { return fmt.Sprintf("%.2f", cores(h.idle.CPU[1], h.idle.Wall)) }, nil)
	row("other processes' CPU in the window, cores", func(h *holdResult) string { return fmt.Sprintf("%.2f", cores(h.idle.Other, h.idle.Wall)) }, nil)
	p("\nServer RSS ÷ its RSS before any agent: %.2f×.\n\n", float64(kg.memAll.RSS)/float64(max(kg.mem0.RSS, 1)))

	p("SendSSHPublicKey through the AWS SDK (root credentials, one client, sequential, 20 warm-up calls not counted), each to a random connected agent, which verifies and acknowledges before the API answers:\n\n")
	p("| agents connected | n | p50 ms | p90 ms | p99 ms | max ms | errors | p50 ÷ 1 agent | p99 ÷ 1 agent | other processes, cores |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	p1, p99 := quantile(f.push1, 0.5), quantile(f.push1, 0.99)
	p("| 1 | %d | %s | %s | %s | %s | %d | 1.00× | 1.00× | %s |\n", len(f.push1), ms(p1), ms(quantile(f.push1, 0.9)), ms(p99), ms(quantile(f.push1, 1)), len(f.push1Errs), coresOr(f.otherPush1))
	p("| %d | %d | %s | %s | %s | %s | %d | %s | %s | %s |\n", kg.connected, len(f.pushN), ms(quantile(f.pushN, 0.5)), ms(quantile(f.pushN, 0.9)), ms(quantile(f.pushN, 0.99)), ms(quantile(f.pushN, 1)),
		len(f.pushNErrs), ratio(quantile(f.pushN, 0.5), p1), ratio(quantile(f.pushN, 0.99), p99), coresOr(f.otherPushN))
	p("\nKey records acknowledged by the simulated agents: %d; refused: %d. Server RSS after the pushes: %s MiB.\n", f.acks, f.refused, mib(f.memAfterPush.RSS))
	for _, errs := range [][]string{f.push1Errs, f.pushNErrs} {
		if len(errs) > 0 {
			p("First push error: `%s`\n", errs[0])
		}
	}
	p("\n**Goals met:** RSS ≤ 1 GiB %s (at most %s MiB after settling, over the idle window and after the pushes); idle CPU ≤ 10 %% of one core %s (%.1f %%); SendSSHPublicKey p99 with %d agents %s ms = %s the p99 with 1 agent (%s ms).\n\n",
		yesNo(max(kg.memAll.RSS, kg.memAllEnd.RSS, f.memAfterPush.RSS) <= goalFleetRSS), mib(max(kg.memAll.RSS, kg.memAllEnd.RSS, f.memAfterPush.RSS)),
		yesNo(idlePct(kg) <= 100*goalFleetIdle), idlePct(kg), kg.connected, ms(quantile(f.pushN, 0.99)), ratio(quantile(f.pushN, 0.99), p99), ms(p99))

	if f.memstats != nil || f.cpuTop != "" {
		p("#### Server profile with %d agents connected (idle)\n\n", kg.connected)
		if f.memstats != nil {
			m := f.memstats
			p("Go runtime: HeapInuse %s MiB, StackInuse %s MiB, Sys %s MiB; %d goroutines (%.1f per agent); GC CPU fraction %.4f.\n\n",
				mib(int64(m["HeapInuse"])), mib(int64(m["StackInuse"])), mib(int64(m["Sys"])), f.goroutines, float64(f.goroutines)/float64(max(kg.connected, 1)), m["GCCPUFraction"])
		}
		if f.cpuTop != "" {
			p("CPU, %s (`go tool pprof -top`):\n\n```\n%s```\n\n", fc.profile, trimTop(f.cpuTop, 30))
		}
		if f.heapTop != "" {
			p("Heap in use:\n\n```\n%s```\n\n", trimTop(f.heapTop, 25))
		}
	}
}

// trimTop keeps pprof's header and the first n rows.
func trimTop(s string, n int) string {
	var out []string
	rows := -1 // before the column header
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") {
			continue
		}
		if rows >= 0 {
			if rows == n || l == "" {
				break
			}
			rows++
		}
		out = append(out, l)
		if strings.Contains(l, "flat%") {
			rows = 0
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// coresOr formats a quiet-wait reading ("–" when none was taken).
func coresOr(c float64) string {
	if c < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", c)
}

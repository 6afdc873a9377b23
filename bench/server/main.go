// Command server benchmarks kaginashi's SendSSHPublicKey end to end (issue
// #3 §6): SigV4-signing clients against the real server on SQLite and on
// PostgreSQL, each figure as a ratio to a bare net/http TLS handler
// measured in the same run with the same load generator.
//
//	go run ./bench/server                      # the table, on stdout
//	go run ./bench/server -o /tmp/server.md    # and the section in a file
//	go run ./bench/server -profile /tmp/prof   # with CPU, block, mutex and goroutine profiles
//
// Everything runs in this process: the bare server, kaginashi (server.Run
// with TLS, throttling off, a temporary data directory), one benchmark
// agent per instance (SendSSHPublicKey delivers every key to the
// instance's agent before answering) and the clients. Goroutines carry
// pprof labels side=server|client|agent and target=..., so
// `go tool pprof -tagfocus side=server` shows the servers' share only.
// PostgreSQL is a private cluster (initdb into a temporary directory, unix
// socket only) with PostgreSQL's default durability settings.
//
// Closed-loop cells (-c) measure the most each target serves; open-loop
// cells (-open) offer a fixed fraction of the bare rate and measure the
// latency at that rate, queueing included. The machine is shared: before
// each cell the program waits for other processes to leave the CPU idle,
// and measures a disturbed cell again (-quiet-wait, -noisy, -retries).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with -pprof, on a side port
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// Goal of issue #3 §6.
const (
	goalRatio = 0.25
	goalP99   = 20 * time.Millisecond
)

type config struct {
	clients   []int
	warmup    time.Duration
	duration  time.Duration
	rounds    int
	targets   []string
	users     int
	instances int
	policy    string
	out       string
	profile   string
	pprofAddr string
	pgOpts    []string
	verbose   bool
	legacy    bool
	split     bool
	quietWait time.Duration
	noisy     float64
	retries   int
	open      []float64
}

func main() {
	var cfg config
	var clients, targets, pgOpts, open string
	flag.StringVar(&clients, "c", "16,64", "concurrent clients (keep-alive connections), comma-separated")
	flag.StringVar(&open, "open", "0.25", "open-loop cells: offered rates as fractions of the bare closed-loop rate, comma-separated (empty: none)")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up before each measured window (not counted)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured window per target and concurrency")
	flag.IntVar(&cfg.rounds, "rounds", 1, "repeat every measurement; the table shows the median round by rate")
	flag.StringVar(&targets, "targets", "bare,sqlite,postgres", "what to measure: bare, sqlite, postgres, postgres-pool16 (kaginashi on PostgreSQL with pool_max_conns=16 in the store URL, a what-if); bare is the baseline and always runs")
	flag.IntVar(&cfg.users, "users", 4, "IAM users with the seed policy; each gets 2 access keys, spread over the clients")
	flag.IntVar(&cfg.instances, "instances", 8, "running instances the requests cycle through")
	flag.StringVar(&cfg.policy, "policy", "examples/seed-policy-filled.json", "the users' policy (the seed policy, filled for ap-northeast-1 / 123456789012)")
	flag.StringVar(&cfg.out, "o", "", "also write the results section (markdown) to this file")
	flag.StringVar(&cfg.profile, "profile", "", "write CPU, block, mutex, allocation (start and end: diff with -diff_base) and goroutine profiles of each kaginashi window to this directory (skews the figures)")
	flag.StringVar(&cfg.pprofAddr, "pprof", "", "serve net/http/pprof on this side address, e.g. 127.0.0.1:6060")
	flag.StringVar(&pgOpts, "pg-opts", "", "extra PostgreSQL settings, comma-separated, e.g. synchronous_commit=off")
	flag.DurationVar(&cfg.quietWait, "quiet-wait", 60*time.Second, "before each cell, wait up to this long for other processes to leave the CPU idle (0: don't)")
	flag.Float64Var(&cfg.noisy, "noisy", 0.15, "other processes' CPU use (cores) above which a cell counts as disturbed")
	flag.IntVar(&cfg.retries, "retries", 2, "measure a disturbed cell again up to this many times, keeping the least disturbed")
	flag.BoolVar(&cfg.split, "split", true, "after the cells, run one CPU-profiled window per target and report where the CPU went: server, benchmark agents, load generator, runtime (not with -profile)")
	flag.BoolVar(&cfg.legacy, "legacy-push", false, "benchmark agents list no protocol features, so the server opens a stream per key push (agents before the key stream), for comparison")
	flag.BoolVar(&cfg.verbose, "v", false, "log the servers' warnings and progress details")
	flag.Parse()
	for _, s := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("-c %q: want positive integers", clients)
		}
		cfg.clients = append(cfg.clients, n)
	}
	for _, s := range strings.Split(open, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 2 {
			fatalf("-open %q: want fractions such as 0.25", open)
		}
		cfg.open = append(cfg.open, f)
	}
	cfg.targets = []string{"bare"}
	for _, t := range strings.Split(targets, ",") {
		switch t = strings.TrimSpace(t); t {
		case "bare", "":
		case "sqlite", "postgres", "postgres-pool16":
			cfg.targets = append(cfg.targets, t)
		default:
			fatalf("-targets: unknown %q", t)
		}
	}
	if pgOpts != "" {
		cfg.pgOpts = strings.Split(pgOpts, ",")
	}
	if cfg.users < 1 || cfg.instances < 1 {
		fatalf("-users and -instances must be at least 1")
	}
	if cfg.rounds < 1 {
		cfg.rounds = 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Args); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/server: "+format+"\n", args...)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/server: "+format+"\n", args...)
}

func run(ctx context.Context, cfg config, argv []string) error {
	if cfg.pprofAddr != "" {
		go func() {
			progress("pprof on http://%s/debug/pprof/", cfg.pprofAddr)
			if err := http.ListenAndServe(cfg.pprofAddr, nil); err != nil {
				progress("pprof: %v", err)
			}
		}()
	}
	if cfg.profile != "" {
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return err
		}
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		runtime.SetMutexProfileFraction(10)
	}
	loadBefore := loadAvg()

	tmp, err := os.MkdirTemp("", "kaginashi-bench-server-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	srvCtx, stopServers := context.WithCancel(ctx)
	defer stopServers()

	// Requests cut off at the end of a window fail server-side with
	// "context canceled", logged at ERROR: expected, so quiet by default.
	level := slog.LevelError + 4
	if cfg.verbose {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	setup := kaginashiSetup{users: cfg.users, instances: cfg.instances, policyPath: cfg.policy, log: logger, legacyPush: cfg.legacy}

	var targets []*Target
	var serverErrs []<-chan error
	bare, err := startBare(srvCtx, filepath.Join(tmp, "bare"), cfg.instances)
	if err != nil {
		return fmt.Errorf("bare server: %w", err)
	}
	targets = append(targets, bare)
	var pg *pgtest.Server
	pgSettings := ""
	for _, name := range cfg.targets[1:] {
		switch name {
		case "sqlite":
			dir := filepath.Join(tmp, "sqlite")
			t, errc, err := startKaginashi(srvCtx, "kaginashi sqlite", dir, "sqlite:"+filepath.Join(dir, "kaginashi.db"), setup)
			if err != nil {
				return err
			}
			targets, serverErrs = append(targets, t), append(serverErrs, errc)
		case "postgres", "postgres-pool16":
			if pg == nil {
				progress("starting a private PostgreSQL…")
				pg, err = startPG(ctx, cfg.pgOpts)
				if err != nil {
					return err
				}
				defer pg.Stop()
				pgSettings = pgSettingsOf(ctx, pg)
			}
			db, label, params := "kaginashi", "kaginashi postgres", ""
			if name == "postgres-pool16" {
				db, label, params = "kaginashi_pool16", "kaginashi postgres pool16", "&pool_max_conns=16"
			}
			if err := pg.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
				return err
			}
			if err := pg.Exec(ctx, db, "CREATE EXTENSION pg_stat_statements"); err != nil {
				return err
			}
			t, errc, err := startKaginashi(srvCtx, label, filepath.Join(tmp, db), pg.URL(db)+params, setup)
			if err != nil {
				return err
			}
			t.PGPID, t.PGDB = pg.PID(), db
			targets, serverErrs = append(targets, t), append(serverErrs, errc)
		}
	}
	sshKey, err := newSSHKey()
	if err != nil {
		return err
	}

	// results[target][cell] holds one Result per round. Each round runs
	// the closed-loop cells, then the open-loop ones, whose rate is a
	// fraction of the round's best bare closed-loop rate.
	results := map[string]map[cell][]*Result{}
	var pgStats []string
	for round := 1; round <= cfg.rounds; round++ {
		var cells []cell
		for _, c := range cfg.clients {
			cells = append(cells, cell{clients: c})
		}
		for _, f := range cfg.open {
			cells = append(cells, cell{clients: slices.Max(cfg.clients), frac: f})
		}
		bareBest := 0.0
		for _, cl := range cells {
			rate := 0.0
			if cl.frac > 0 {
				rate = cl.frac * bareBest
			}
			for _, t := range targets {
				if err := ctx.Err(); err != nil {
					return err
				}
				for i, errc := range serverErrs {
					select {
					case err := <-errc:
						return fmt.Errorf("%s stopped: %v", targets[i+1].Name, err)
					default:
					}
				}
				var r *Result
				for attempt := 0; ; attempt++ {
					if cfg.quietWait > 0 {
						waitQuiet(ctx, cfg.quietWait, cfg.noisy, t.PGPID)
					}
					progress("round %d/%d: %s, %s: %s warm-up + %s…", round, cfg.rounds, t.Name, cl.describe(rate), cfg.warmup, cfg.duration)
					var during func(bool)
					if cfg.profile != "" && t != bare {
						during = profiler(cfg.profile, fmt.Sprintf("%s-%s-r%d-a%d", strings.ReplaceAll(t.Name, " ", "-"), cl.slug(), round, attempt))
					}
					if t.PGDB != "" {
						_ = pg.Exec(ctx, t.PGDB, "SELECT pg_stat_statements_reset()")
					}
					rr := runLoad(ctx, t, cl.clients, rate, cfg.warmup, cfg.duration, sshKey, during)
					if t.PGDB != "" {
						rr.PGStats, _ = pgStatements(ctx, pg, t.PGDB)
					}
					other := cores(rr.CPU.other, rr.CPU.wall)
					if cfg.verbose {
						progress("  %s", slowSummary(rr))
					}
					progress("  %.0f req/s, p50 %s, p99 %s, %d errors; CPU %.2f cores (other processes %.2f), %s/req",
						rr.Rate(), fmtDur(rr.Quantile(0.50)), fmtDur(rr.Quantile(0.99)), rr.Errors,
						cores(rr.CPU.self+rr.CPU.postgres, rr.CPU.wall), other, fmtMicros(rr.CPUPerRequest()))
					if r == nil || other < cores(r.CPU.other, r.CPU.wall) {
						r = rr
					}
					if other <= cfg.noisy || attempt >= cfg.retries || ctx.Err() != nil {
						break
					}
					progress("  other processes used %.2f cores (> %.2f): measuring again (%d/%d)", other, cfg.noisy, attempt+1, cfg.retries)
				}
				if t == bare && cl.frac == 0 {
					bareBest = max(bareBest, r.Rate())
				}
				if results[t.Name] == nil {
					results[t.Name] = map[cell][]*Result{}
				}
				results[t.Name][cl] = append(results[t.Name][cl], r)
				if t.PGDB != "" && round == cfg.rounds && r.PGStats != nil {
					pgStats = append(pgStats, formatPGStats(t.Name, cl.describe(rate), r, r.PGStats)...)
				}
			}
		}
	}
	var splits []*sideSplit
	if cfg.split && cfg.profile == "" {
		for _, t := range targets {
			if cfg.quietWait > 0 {
				waitQuiet(ctx, cfg.quietWait, cfg.noisy, t.PGPID)
			}
			progress("CPU split: %s, %d clients: %s warm-up + %s, profiled…", t.Name, cfg.clients[0], cfg.warmup, cfg.duration)
			sp, err := measureSplit(ctx, t, cfg.clients[0], cfg.warmup, cfg.duration, sshKey)
			if err != nil {
				return err
			}
			splits = append(splits, sp)
		}
	}
	loadAfter := loadAvg()

	var sb strings.Builder
	writeReport(&sb, cfg, argv, targets, results, loadBefore, loadAfter, pgSettings, pgStats)
	writeSplit(&sb, cfg.clients[0], splits)
	fmt.Print(sb.String())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(sb.String()), 0o644); err != nil {
			return err
		}
		progress("wrote %s", cfg.out)
	}
	stopServers()
	for _, errc := range serverErrs {
		select {
		case <-errc:
		case <-time.After(35 * time.Second):
		}
	}
	return nil
}

// profiler returns a window hook writing a CPU profile of the window, block
// and mutex profiles at its start and end (compare with pprof -base), and
// goroutine profiles sampled every 200 ms (merge them: a wall-clock view).
func profiler(dir, name string) func(bool) {
	var cpu *os.File
	stopSampling := make(chan struct{})
	done := make(chan struct{})
	snapshot := func(kind, suffix string) {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-%s.pb.gz", kind, name, suffix)))
		if err != nil {
			progress("profile: %v", err)
			return
		}
		defer f.Close()
		if err := pprof.Lookup(kind).WriteTo(f, 0); err != nil {
			progress("profile: %v", err)
		}
	}
	return func(start bool) {
		if start {
			snapshot("block", "start")
			snapshot("mutex", "start")
			snapshot("allocs", "start")
			var err error
			cpu, err = os.Create(filepath.Join(dir, "cpu-"+name+".pb.gz"))
			if err == nil {
				err = pprof.StartCPUProfile(cpu)
			}
			if err != nil {
				progress("profile: %v", err)
			}
			gdir := filepath.Join(dir, "goroutine-"+name)
			_ = os.MkdirAll(gdir, 0o755)
			go func() {
				defer close(done)
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-stopSampling:
						return
					case <-tick.C:
						f, err := os.Create(filepath.Join(gdir, fmt.Sprintf("%03d.pb.gz", i)))
						if err != nil {
							continue
						}
						_ = pprof.Lookup("goroutine").WriteTo(f, 0)
						f.Close()
					}
				}
			}()
			return
		}
		close(stopSampling)
		<-done
		pprof.StopCPUProfile()
		if cpu != nil {
			cpu.Close()
		}
		snapshot("block", "end")
		snapshot("mutex", "end")
		snapshot("allocs", "end")
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

// waitQuiet waits, up to limit, for a second in which other processes use
// at most noisy cores: the machine is shared, and the figures are only
// comparable when nothing else runs.
func waitQuiet(ctx context.Context, limit time.Duration, noisy float64, pgPID int) {
	deadline := time.Now().Add(limit)
	for {
		a := sampleCPU(pgPID)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		u := cpuBetween(a, sampleCPU(pgPID))
		o := cores(u.other+u.self+u.postgres, u.wall)
		if o <= noisy {
			return
		}
		if time.Now().After(deadline) {
			progress("  the machine is still busy (%.2f cores used by others); measuring anyway", o)
			return
		}
	}
}

// slowSummary tells whether the requests over the p99 goal came in bursts.
func slowSummary(r *Result) string {
	total := 0
	var counts []int
	for _, n := range r.SlowPeriods {
		total += n
		counts = append(counts, n)
	}
	slices.Sort(counts)
	slices.Reverse(counts)
	top := 0
	for i := 0; i < len(counts) && i < 5; i++ {
		top += counts[i]
	}
	return fmt.Sprintf("%d requests over %s, due in %d of %d 100-ms periods; the 5 worst periods hold %d",
		total, fmtDur(goalP99), len(r.SlowPeriods), int(r.Duration/(100*time.Millisecond)), top)
}

func cores(d, wall time.Duration) float64 { return d.Seconds() / wall.Seconds() }

func fmtMicros(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// median returns the round with the median rate, and the min and max rate.
func median(rs []*Result) (*Result, float64, float64) {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b *Result) int { return cmp.Compare(a.Rate(), b.Rate()) })
	return s[(len(s)-1)/2], s[0].Rate(), s[len(s)-1].Rate()
}

func formatPGStats(name, cellName string, r *Result, sts []stmtStat) []string {
	out := []string{fmt.Sprintf("%s, %s: %d requests answered over warm-up and window", name, cellName, r.Completed)}
	out = append(out, fmt.Sprintf("  %9s  %9s  %12s  %s", "calls", "per req", "mean exec", "statement"))
	for _, s := range sts {
		q := s.Query
		if len(q) > 90 {
			q = q[:90] + "…"
		}
		out = append(out, fmt.Sprintf("  %9d  %9.2f  %9.3f ms  %s", s.Calls, float64(s.Calls)/float64(max(r.Completed, 1)), s.TotalM/float64(max(s.Calls, 1)), q))
	}
	return out
}

// cell is one load shape: closed-loop with clients connections, or, with
// frac > 0, open-loop at frac of the round's best bare rate over clients
// connections.
type cell struct {
	clients int
	frac    float64
}

func (c cell) describe(rate float64) string {
	if c.frac == 0 {
		return fmt.Sprintf("%d clients", c.clients)
	}
	return fmt.Sprintf("open loop at %.0f %% of bare (%.0f req/s), %d connections", c.frac*100, rate, c.clients)
}

func (c cell) slug() string {
	if c.frac == 0 {
		return fmt.Sprintf("c%d", c.clients)
	}
	return fmt.Sprintf("open%.0f", c.frac*100)
}

// label is the table's load column.
func (c cell) label(r *Result) string {
	if c.frac == 0 {
		return fmt.Sprintf("%d closed-loop", c.clients)
	}
	return fmt.Sprintf("open %.0f/s (%.0f %%), %d conns", r.Offered, c.frac*100, c.clients)
}

func writeReport(w io.Writer, cfg config, argv []string, targets []*Target, results map[string]map[cell][]*Result,
	loadBefore, loadAfter, pgSettings string, pgStats []string) {
	fmt.Fprintf(w, "### Run of %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "- machine: nproc %d, %s, %s, GOMAXPROCS %d\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "- load average before: %s; after: %s\n", loadBefore, loadAfter)
	fmt.Fprintf(w, "- command: `go run ./bench/server %s`\n", strings.Join(argv[1:], " "))
	fmt.Fprintf(w, "- each cell: %s warm-up, then %s measured; %d round(s)%s; %d users × 2 access keys; %d instances, each with a connected (benchmark) agent\n",
		cfg.warmup, cfg.duration, cfg.rounds, map[bool]string{true: " (median round by rate shown, min–max in the req/s column)", false: ""}[cfg.rounds > 1], cfg.users, cfg.instances)
	if pgSettings != "" {
		fmt.Fprintf(w, "- PostgreSQL: %s\n", pgSettings)
	}
	if cfg.profile != "" {
		fmt.Fprintf(w, "- **profiling was on** (CPU, block, mutex, goroutine sampling): figures are skewed\n")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| target | load | req/s | ratio to bare | p50 | p99 | p99.9 | errors | CPU/req | cores busy | goal (≥ %.0f %% of bare, p99 ≤ %s, 0 errors) |\n", goalRatio*100, fmtDur(goalP99))
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:---|")
	var errLines, noisy, pgShare []string
	met, rows := 0, 0
	var cells []cell
	for _, c := range cfg.clients {
		cells = append(cells, cell{clients: c})
	}
	for _, f := range cfg.open {
		cells = append(cells, cell{clients: slices.Max(cfg.clients), frac: f})
	}
	bareBest := 0.0
	for _, c := range cfg.clients {
		if runs := results[targets[0].Name][cell{clients: c}]; len(runs) > 0 {
			m, _, _ := median(runs)
			bareBest = max(bareBest, m.Rate())
		}
	}
	for _, cl := range cells {
		baseRuns := results[targets[0].Name][cl]
		if len(baseRuns) == 0 {
			continue
		}
		base, _, _ := median(baseRuns)
		baseRate := base.Rate()
		if cl.frac > 0 {
			baseRate = bareBest // open loop: against the bare closed-loop rate
		}
		for _, t := range targets {
			runs := results[t.Name][cl]
			if len(runs) == 0 {
				continue
			}
			r, lo, hi := median(runs)
			rate := fmt.Sprintf("%.0f", r.Rate())
			if len(runs) > 1 {
				rate += fmt.Sprintf(" (%.0f–%.0f)", lo, hi)
			}
			ratio := r.Rate() / baseRate
			goal := "baseline"
			if t != targets[0] || cl.frac > 0 {
				var why []string
				if cl.frac > 0 {
					if r.Rate() < 0.98*r.Offered {
						why = append(why, "rate: fell behind the offered load")
					}
				} else if ratio < goalRatio {
					why = append(why, "rate")
				}
				if r.Quantile(0.99) > goalP99 {
					why = append(why, "p99")
				}
				if r.Errors > 0 {
					why = append(why, "errors")
				}
				goal = "no (" + strings.Join(why, ", ") + ")"
				if len(why) == 0 {
					goal = "**yes**"
				}
				if t == targets[0] {
					goal = "reference: " + strings.TrimPrefix(goal, "**")
					goal = strings.TrimSuffix(goal, "**")
				} else {
					rows++
					if len(why) == 0 {
						met++
					}
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.1f %% | %s | %s | %s | %d | %s | %.2f | %s |\n", t.Name, cl.label(r), rate, ratio*100,
				fmtDur(r.Quantile(0.50)), fmtDur(r.Quantile(0.99)), fmtDur(r.Quantile(0.999)), r.Errors,
				fmtMicros(r.CPUPerRequest()), cores(r.CPU.self+r.CPU.postgres, r.CPU.wall), goal)
			if r.CPU.postgres > 0 {
				pgShare = append(pgShare, fmt.Sprintf("%s, %s: %s", t.Name, cl.label(r), fmtMicros(r.CPU.postgres/time.Duration(max(r.OK, 1)))))
			}
			for _, rr := range runs {
				if o := cores(rr.CPU.other, rr.CPU.wall); o > cfg.noisy {
					noisy = append(noisy, fmt.Sprintf("%s, %s: %.2f cores", t.Name, cl.label(rr), o))
				}
				for _, e := range errorSummary(rr) {
					errLines = append(errLines, fmt.Sprintf("- %s, %s: %s", t.Name, cl.label(rr), e))
				}
			}
		}
	}
	fmt.Fprintf(w, "\nGoal met for %d of %d kaginashi rows.\n", met, rows)
	fmt.Fprintf(w, "\nClosed loop: each client sends its next request when the previous answer arrives. Open loop: requests are due at the offered rate whatever the answers do; latency counts from when a request was due, queueing included; the ratio is to the bare closed-loop rate (the best of the closed-loop cells), and the rate goal is keeping up with the offered load. CPU/req: CPU time of this process (servers, load generator and agents together) and of PostgreSQL's processes over the window, per successful request; cores busy: the same per second of wall time (the machine has %d).\n", runtime.NumCPU())
	if len(pgShare) > 0 {
		fmt.Fprintf(w, "\nPostgreSQL's processes' part of CPU/req: %s.\n", strings.Join(pgShare, "; "))
	}
	if len(noisy) > 0 {
		fmt.Fprintf(w, "\n**Warning: other processes used more than %.2f cores during measured windows** (those figures are unreliable): %s.\n", cfg.noisy, strings.Join(noisy, "; "))
	}
	if len(errLines) > 0 {
		fmt.Fprintf(w, "\nErrors (any non-200 answer or transport error):\n\n%s\n", strings.Join(errLines, "\n"))
	}
	if len(pgStats) > 0 {
		fmt.Fprintf(w, "\nPostgreSQL statements during the last round's PostgreSQL cells (pg_stat_statements, most called first):\n\n```\n%s\n```\n", strings.Join(pgStats, "\n"))
	}
}

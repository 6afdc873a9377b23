// Command agent benchmarks kaginashi's host side (issue #4 §3): the
// AuthorizedKeysCommand's cost per call, the idle agent's memory and CPU,
// a keyless login through a real sshd against a static-key login, and one
// server holding 10,000 agents. Every figure stands next to a baseline
// measured in the same run on this machine.
//
//	go run ./bench/agent                         # everything; the report on stdout
//	go run ./bench/agent -o /tmp/agent.md        # and the markdown section in a file
//	go run ./bench/agent -parts 4 -agents 2000   # one part, smaller
//
// Parts 1–3 need root (sshd, and the AuthorizedKeysCommand runs as
// nobody) and Debian's openssh-server and openssh-client. They share one
// kaginashi server and one real `kaginashi-agent run`, enrolled with a join
// token, its binary built static (CGO_ENABLED=0, `make build`'s flags) into
// a root-owned directory under /run that sshd accepts.
//
// The servers run as child processes — this program started again in a
// server role (server.Run, as `kaginashi server` runs it, with pprof on a
// side port) — so that their RSS and CPU time are theirs alone. Part 4's
// simulated agents run in this process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

type config struct {
	out       string
	parts     []int
	execs     int
	idle      time.Duration
	rounds    int
	fleet     fleetConfig
	keep      bool
	quietWait time.Duration
	noisy     float64
}

// env is what the parts share.
type env struct {
	root, work, safe             string
	agentBin, emptyBin, sleepBin string
	akcBin                       string // kaginashi-authorized-keys, next to agentBin
	// akc is what setup-sshd has sshd run for agentBin
	// (sshdsetup.PickCommand): akcBin when it pairs with the agent.
	akc    sshdsetup.Command
	server *child
	api    *api
	agent  *hostAgent
	nofile uint64
}

func (e *env) agentPaths() agent.Paths { return agent.Paths{Dir: e.agent.dir} }

func main() {
	if role := os.Getenv(envRole); role != "" {
		childMain(role)
		return
	}
	var cfg config
	var parts string
	flag.StringVar(&cfg.out, "o", "", "also write the markdown section to this file")
	flag.StringVar(&parts, "parts", "1,2,3,4", "which parts to run: 1 AuthorizedKeysCommand, 2 idle agent, 3 ssh login, 4 10k agents")
	flag.IntVar(&cfg.execs, "execs", 2000, "part 1: sequential execs of each command")
	flag.DurationVar(&cfg.idle, "idle", 30*time.Second, "part 2: the idle window")
	flag.IntVar(&cfg.rounds, "rounds", 30, "part 3: login rounds of each kind (interleaved)")
	flag.IntVar(&cfg.fleet.agents, "agents", 10000, "part 4: simulated agents")
	flag.IntVar(&cfg.fleet.sources, "sources", 4, "part 4: loopback source addresses for the agents (127.0.0.2, ...)")
	flag.IntVar(&cfg.fleet.enrollConc, "enroll-conc", 8, "part 4: concurrent enrollments")
	flag.IntVar(&cfg.fleet.connectConc, "connect-conc", 64, "part 4: connection attempts in flight at most")
	flag.DurationVar(&cfg.fleet.settle, "settle", 25*time.Second, "part 4: wait after the last agent connected, before measuring")
	flag.DurationVar(&cfg.fleet.idle, "fleet-idle", 60*time.Second, "part 4: the server's idle window with all agents connected")
	flag.IntVar(&cfg.fleet.pushes, "pushes", 300, "part 4: SendSSHPublicKey calls with 1 and with all agents connected")
	flag.DurationVar(&cfg.fleet.profile, "profile", 30*time.Second, "part 4: CPU-profile the server this long with all agents connected (0: don't)")
	flag.BoolVar(&cfg.fleet.bare, "bare", true, "part 4: also hold the agents with the bare TLS+yamux baseline")
	flag.BoolVar(&cfg.fleet.whatIf, "whatif", true, "part 4: and the bare holder with yamux keepalives off, like kaginashi's server (the agents never ping)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the working directories (logs, profiles, data directories)")
	flag.DurationVar(&cfg.quietWait, "quiet-wait", 60*time.Second, "before latency measurements, wait up to this long for other processes to leave the CPU idle (0: don't)")
	flag.Float64Var(&cfg.noisy, "noisy", 0.15, "other processes' CPU use (cores) under which the machine counts as quiet")
	flag.Parse()
	for _, p := range strings.Split(parts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 4 {
			fatalf("-parts %q: want numbers from 1 to 4", parts)
		}
		cfg.parts = append(cfg.parts, n)
	}
	cfg.fleet.quietWait, cfg.fleet.noisy = cfg.quietWait, cfg.noisy
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/agent: "+format+"\n", args...)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/agent: "+format+"\n", args...)
}

// raiseNofile lifts RLIMIT_NOFILE to at least want (root may raise the
// hard limit too); the server children inherit it.
func raiseNofile(want uint64) uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	if l.Cur >= want {
		return l.Cur
	}
	nl := syscall.Rlimit{Cur: want, Max: max(l.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		nl = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}

func run(ctx context.Context, cfg config) error {
	has := func(p int) bool { return slices.Contains(cfg.parts, p) }
	rep := &report{cfg: cfg, machine: machine(), loadBefore: loadAvg(), started: time.Now()}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	e := &env{root: root}
	e.nofile = raiseNofile(uint64(2*cfg.fleet.agents + 4096))
	if e.work, err = os.MkdirTemp("", "kaginashi-bench-agent-"); err != nil {
		return err
	}
	if cfg.keep {
		progress("working directory: %s", e.work)
	} else {
		defer os.RemoveAll(e.work)
	}

	if has(1) || has(2) || has(3) {
		if os.Geteuid() != 0 {
			return fmt.Errorf("parts 1-3 run as root (sshd; the AuthorizedKeysCommand runs as nobody): run as root or with -parts 4")
		}
		if e.safe, err = safeDir(); err != nil {
			return err
		}
		if cfg.keep {
			progress("sshd-safe directory: %s", e.safe)
		} else {
			defer os.RemoveAll(e.safe)
		}
		bin := filepath.Join(e.safe, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			return err
		}
		progress("building the static agent and the baseline programs…")
		e.agentBin, e.emptyBin, e.sleepBin = filepath.Join(bin, "kaginashi-agent"), filepath.Join(bin, "empty"), filepath.Join(bin, "sleep")
		if err := goBuild(root, e.agentBin, "./cmd/kaginashi-agent"); err != nil {
			return err
		}
		e.akcBin = filepath.Join(bin, sshdsetup.AKCBinary)
		if err := goBuild(root, e.akcBin, "./cmd/kaginashi-authorized-keys"); err != nil {
			return err
		}
		// Built alike, both report the same version: setup-sshd picks the
		// small one, and the goals are judged on what it picks.
		e.akc = sshdsetup.PickCommand(ctx, e.agentBin, agent.Version)
		progress("setup-sshd would have sshd run %s (%s)", e.akc.Path, e.akc.Why)
		if err := buildProgram(e.work, e.emptyBin, "empty", emptySrc); err != nil {
			return err
		}
		if err := buildProgram(e.work, e.sleepBin, "sleep", sleepSrc); err != nil {
			return err
		}
		if err := startShared(ctx, e); err != nil {
			if e.server != nil {
				_ = e.server.stop()
			}
			return err
		}
		defer e.agent.stop()
		defer e.server.stop()

		if has(1) {
			progress("part 1: the AuthorizedKeysCommand, %d execs of each command…", cfg.execs)
			waitQuiet(ctx, cfg.quietWait, cfg.noisy, e.server.pid, e.agent.pid())
			if rep.authKeys, err = benchAuthKeys(ctx, e, cfg.execs); err != nil {
				return fmt.Errorf("part 1: %w", err)
			}
		}
		if has(2) {
			progress("part 2: the idle agent over %s…", cfg.idle)
			if rep.idle, err = benchIdle(ctx, e, cfg.idle); err != nil {
				return fmt.Errorf("part 2: %w", err)
			}
		}
		if has(3) {
			progress("part 3: %d logins of each kind through sshd…", cfg.rounds)
			other := waitQuiet(ctx, cfg.quietWait, cfg.noisy, e.server.pid, e.agent.pid())
			if rep.login, err = benchLogin(ctx, e, cfg.rounds); err != nil {
				return fmt.Errorf("part 3: %w", err)
			}
			rep.login.other = other
		}
		e.agent.stop()
		_ = e.server.stop()
	}
	if has(4) {
		if rep.fleet, err = benchFleet(ctx, e, cfg.fleet); err != nil {
			return fmt.Errorf("part 4: %w", err)
		}
	}
	rep.loadAfter = loadAvg()
	rep.finished = time.Now()
	text := rep.markdown()
	fmt.Print(text)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(text), 0o644); err != nil {
			return err
		}
		progress("wrote %s", cfg.out)
	}
	return nil
}

// startShared starts parts 1–3's server and enrolls and starts the real
// agent, its data directory in the sshd-safe directory.
func startShared(ctx context.Context, e *env) error {
	creds := rootCreds()
	dir := filepath.Join(e.work, "server")
	progress("starting the server and enrolling the agent…")
	srv, err := startChild("server", dir, filepath.Join(e.work, "server.log"), rootEnv(creds)...)
	if err != nil {
		return err
	}
	e.server = srv
	if e.api, err = newAPI(srv.url, dir, creds); err != nil {
		return err
	}
	tok, err := e.api.joinToken(ctx, 1)
	if err != nil {
		return err
	}
	e.agent, err = startHostAgent(e.agentBin, filepath.Join(e.safe, "agent-data"), srv.url, e.api.caPath, tok)
	return err
}

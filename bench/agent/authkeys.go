package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// execCase is one command timed by the AuthorizedKeysCommand benchmark.
type execCase struct {
	name  string
	argv  []string
	env   []string
	check func(stdout string) error
	times []time.Duration
}

// authKeysResult is part 1's outcome.
type authKeysResult struct {
	cases []*execCase
	// The cases the report singles out: what setup-sshd installs (the
	// goal's subject) with and without its syslog line, and the baselines.
	served, logged, base, tru *execCase
	installed                 string // the binary setup-sshd picks, for the report
	records                   int    // active records in the data directory
	users                     int
	agentSize, akcSize        int64
	emptySize                 int64
	syslogSeen                int64
	syslogCalls               int     // calls that logged, warm-up included
	other                     float64 // other processes' CPU during the run, cores
	wall                      time.Duration
}

// keyFixture is what part 1 pushes: records for a few users, the asked
// user with two keys.
var fixtureUsers = []string{"ec2-user", "admin", "ubuntu", "centos", "deploy"}

const askedUser = "ec2-user"

// benchAuthKeys pushes ~10 records through the API to the real agent,
// then execs the AuthorizedKeysCommand the way sshd does — as nobody, with
// a clean environment, stdout read through a pipe — n times: the small
// kaginashi-authorized-keys that setup-sshd installs and `kaginashi-agent
// authorized-keys` (its fallback, the same code in the whole agent),
// interleaved with the baselines: a static empty Go binary and /bin/true.
func benchAuthKeys(ctx context.Context, e *env, n int) (*authKeysResult, error) {
	res := &authKeysResult{users: len(fixtureUsers)}
	c := e.api.eic()
	var asked []sshKey
	pushStart := time.Now()
	for _, u := range fixtureUsers {
		for k := 0; k < 2; k++ {
			key, err := newSSHKey("", "")
			if err != nil {
				return nil, err
			}
			_, err = c.SendSSHPublicKey(ctx, eicInput(e.agent.id, u, key.line))
			if err != nil {
				return nil, fmt.Errorf("SendSSHPublicKey %s: %w", u, err)
			}
			res.records++
			if u == askedUser {
				asked = append(asked, key)
			}
		}
	}
	recs, err := e.agentPaths().LoadRecords()
	if err != nil {
		return nil, err
	}
	if len(recs) < res.records {
		return nil, fmt.Errorf("the agent persisted %d records, want at least %d", len(recs), res.records)
	}
	res.records = len(recs)

	// A syslog socket of our own for the variant that logs: this VM has
	// no /dev/log, so without it the agent's syslog line is skipped (the
	// dial fails at once), as it is in part 3's logins.
	sock := filepath.Join(e.safe, "syslog.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	if err := os.Chmod(sock, 0o666); err != nil {
		return nil, err
	}
	var seen atomic.Int64
	go func() {
		buf := make([]byte, 8192)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			if bytes.Contains(buf[:n], []byte(asked[0].fp)) {
				seen.Add(1)
			}
		}
	}()

	cleanEnv := []string{"PATH=/usr/bin:/bin"} // sshd gives the command no more
	wantKey := func(k sshKey) func(string) error {
		want := " " + strings.Join(strings.Fields(k.line)[:2], " ") + "\n"
		return func(out string) error {
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, `expiry-time="`) || !strings.HasSuffix(out, want) {
				return fmt.Errorf("printed %q, want one line ending %q", out, want)
			}
			return nil
		}
	}
	wantNothing := func(out string) error {
		if out != "" {
			return fmt.Errorf("printed %q, want nothing", out)
		}
		return nil
	}
	type binary struct {
		label string // as the table names it
		argv  []string
	}
	small := binary{"kaginashi-authorized-keys authorized-keys", []string{e.akcBin, "authorized-keys", "--data-dir", e.agent.dir}}
	whole := binary{"kaginashi-agent authorized-keys", []string{e.agentBin, "authorized-keys", "--data-dir", e.agent.dir}}
	with := func(b binary, more ...string) []string { return append(append([]string(nil), b.argv...), more...) }
	cases := func(b binary, role string) []*execCase {
		return []*execCase{
			{name: b.label + " USER FINGERPRINT — a key served (" + role + "; no syslog daemon, as in part 3)",
				argv: with(b, askedUser, asked[0].fp), env: cleanEnv, check: wantKey(asked[0])},
			{name: "the same, logging its syslog line to a socket",
				argv: with(b, askedUser, asked[0].fp), env: append(cleanEnv, "KAGINASHI_SYSLOG_SOCKET="+sock), check: wantKey(asked[0])},
			{name: b.label + " USER FINGERPRINT — no key for that user",
				argv: with(b, "nokeys", asked[0].fp), env: cleanEnv, check: wantNothing},
		}
	}
	// The report's goal verdict is on what setup-sshd has sshd run.
	first, second := cases(small, "as sshd calls it: what setup-sshd installs"), cases(whole, "setup-sshd's fallback")
	res.installed = e.akc.Path
	if !e.akc.Small {
		first, second = cases(whole, "as sshd calls it: what setup-sshd installs here"), cases(small, "not picked by setup-sshd here")
	}
	res.served, res.logged = first[0], first[1]
	res.base = &execCase{name: "baseline: static empty Go binary", argv: []string{e.emptyBin}, env: cleanEnv, check: wantNothing}
	res.tru = &execCase{name: "baseline: /bin/true", argv: []string{"/bin/true"}, env: cleanEnv, check: wantNothing}
	res.cases = append(append(first, second...), res.base, res.tru)
	cred, err := nobody()
	if err != nil {
		return nil, err
	}
	run := func(c *execCase) (time.Duration, error) {
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Env = c.env
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if err != nil {
			return d, fmt.Errorf("%s: %v: %s", c.argv[0], err, errb.String())
		}
		if err := c.check(out.String()); err != nil {
			return d, fmt.Errorf("%s: %v (stderr %q)", strings.Join(c.argv, " "), err, errb.String())
		}
		return d, nil
	}
	// Warm-up: page cache, the dynamic loader's cache for /bin/true.
	for i := 0; i < 50; i++ {
		for _, c := range res.cases {
			if _, err := run(c); err != nil {
				return nil, err
			}
		}
	}
	// The records live 60 s from their push: stop well before.
	limit := pushStart.Add(50 * time.Second)
	w := startWindow(os.Getpid())
	for i := 0; i < n; i++ {
		if time.Now().After(limit) {
			progress("  stopped after %d rounds: the pushed records expire 60 s after the push", i)
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for j := range res.cases {
			c := res.cases[(i+j)%len(res.cases)] // rotate the order
			d, err := run(c)
			if err != nil {
				return nil, err
			}
			c.times = append(c.times, d)
		}
	}
	wr := w.end()
	res.other, res.wall = cores(wr.Other, wr.Wall), wr.Wall
	time.Sleep(100 * time.Millisecond) // the last syslog datagrams
	res.syslogSeen = seen.Load()
	if fi, err := os.Stat(e.agentBin); err == nil {
		res.agentSize = fi.Size()
	}
	if fi, err := os.Stat(e.akcBin); err == nil {
		res.akcSize = fi.Size()
	}
	res.syslogCalls = len(first[1].times) + len(second[1].times) + 2*50
	if fi, err := os.Stat(e.emptyBin); err == nil {
		res.emptySize = fi.Size()
	}
	return res, nil
}

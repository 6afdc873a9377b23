package main

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// idleResult is part 2's outcome: the real agent and the sleeping Go
// program over the same window.
type idleResult struct {
	window     time.Duration
	agentMem   memInfo
	sleepMem   memInfo
	agentCPU   time.Duration // utime+stime
	agentSched time.Duration // schedstat
	sleepCPU   time.Duration
	sleepSched time.Duration
	reconnects int // the agent's reconnections during the window, from its log
}

// benchIdle measures the connected agent's resident memory and CPU time
// over window, next to a static Go program that only sleeps (the Go
// runtime's floor), started a few seconds before.
func benchIdle(ctx context.Context, e *env, window time.Duration) (*idleResult, error) {
	sleeper := exec.Command(e.sleepBin)
	if err := sleeper.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	}()
	select { // both settle: the sleeper starts, the agent finished part 1's work
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Second):
	}
	before := strings.Count(e.agent.out.String(), `msg="connected to the server"`)
	w := startWindow(e.agent.pid(), sleeper.Process.Pid)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(window):
	}
	r := w.end()
	res := &idleResult{window: r.Wall, agentCPU: r.CPU[0], sleepCPU: r.CPU[1], agentSched: r.Sched[0], sleepSched: r.Sched[1],
		reconnects: strings.Count(e.agent.out.String(), `msg="connected to the server"`) - before}
	var err error
	if res.agentMem, err = procMem(e.agent.pid()); err != nil {
		return nil, err
	}
	if res.sleepMem, err = procMem(sleeper.Process.Pid); err != nil {
		return nil, err
	}
	return res, nil
}

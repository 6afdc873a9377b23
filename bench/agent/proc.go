package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's utime and stime (100 on Linux).
const clockTick = 100

// procCPU is a process's utime+stime from /proc/PID/stat: the figure the
// issue asks for, in 10 ms ticks.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // state(3) ppid(4) ... utime(14) stime(15)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / clockTick, nil
}

// procSched is the CPU time of a process's live threads from
// /proc/PID/task/*/schedstat, in nanoseconds: the same quantity as
// utime+stime at a resolution that can see an idle agent's few
// milliseconds.
func procSched(pid int) time.Duration {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) > 0 {
			n, _ := strconv.ParseInt(fields[0], 10, 64)
			ns += n
		}
	}
	return time.Duration(ns)
}

// memInfo is a process's resident memory from /proc/PID/status.
type memInfo struct {
	RSS, HWM int64 // bytes: VmRSS, VmHWM (peak)
	Threads  int
}

func procMem(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	var m memInfo
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		case "Threads":
			m.Threads = int(n)
		}
	}
	return m, nil
}

// machineBusy is the non-idle CPU time of all CPUs since boot.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is counted in user already
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick
}

// cpuWindow measures a time window: the CPU of the processes of interest
// and of everything else on the machine (other sessions' work disturbs
// latency figures; the report shows how much there was).
type cpuWindow struct {
	pids  []int
	start time.Time
	busy  time.Duration
	cpu   []time.Duration
	sched []time.Duration
}

func startWindow(pids ...int) *cpuWindow {
	w := &cpuWindow{pids: pids, start: time.Now(), busy: machineBusy()}
	for _, p := range pids {
		c, _ := procCPU(p)
		w.cpu = append(w.cpu, c)
		w.sched = append(w.sched, procSched(p))
	}
	return w
}

// windowResult is what a window cost each process.
type windowResult struct {
	Wall  time.Duration
	CPU   []time.Duration // utime+stime, per pid
	Sched []time.Duration // schedstat, per pid
	Other time.Duration   // every other process on the machine
}

func (w *cpuWindow) end() windowResult {
	r := windowResult{Wall: time.Since(w.start)}
	busy := machineBusy() - w.busy
	var ours time.Duration
	for i, p := range w.pids {
		c, _ := procCPU(p)
		r.CPU = append(r.CPU, c-w.cpu[i])
		r.Sched = append(r.Sched, procSched(p)-w.sched[i])
		ours += c - w.cpu[i]
	}
	r.Other = max(busy-ours, 0)
	return r
}

// cores is CPU time per wall time.
func cores(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(cpu) / float64(wall)
}

// waitQuiet waits up to max for the machine's other processes (all but
// pids and this one) to use less than noisy cores over 2 s, so that
// latency figures are not measured while another session's build runs.
// It returns the other processes' use in the last sample.
func waitQuiet(ctx context.Context, maxWait time.Duration, noisy float64, pids ...int) float64 {
	if maxWait <= 0 {
		return -1
	}
	deadline := time.Now().Add(maxWait)
	pids = append([]int{os.Getpid()}, pids...)
	announced := false
	for {
		w := startWindow(pids...)
		select {
		case <-ctx.Done():
			return -1
		case <-time.After(2 * time.Second):
		}
		r := w.end()
		other := cores(r.Other, r.Wall)
		if other <= noisy || time.Now().After(deadline) {
			if announced {
				progress("  other processes now use %.2f cores", other)
			}
			return other
		}
		if !announced {
			progress("  waiting up to %s for other processes to quiet down (they use %.2f cores)…", maxWait.Round(time.Second), other)
			announced = true
		}
	}
}

// loadAvg is /proc/loadavg's three figures.
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

// machine describes this machine for the report.
func machine() []string {
	var lines []string
	lines = append(lines, fmt.Sprintf("nproc: %d", runtime.NumCPU()))
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				lines = append(lines, "CPU: "+strings.TrimSpace(v))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(l); len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			lines = append(lines, fmt.Sprintf("memory: %.1f GiB", float64(kb)/(1<<20)))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		lines = append(lines, "kernel: "+strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				lines = append(lines, "OS: "+strings.Trim(v, `"`))
			}
		}
	}
	lines = append(lines, "Go: "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return lines
}

// --- statistics -------------------------------------------------------------

// quantile is the nearest-rank quantile of ds (sorted in place).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func yesNo(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "**no**"
}

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 100

// cpuSample is CPU time used so far: by this process (servers and clients),
// by the PostgreSQL processes, and by the whole machine.
type cpuSample struct {
	wall     time.Time
	self     time.Duration
	postgres time.Duration
	busy     time.Duration // all CPUs, non-idle (/proc/stat)
}

func sampleCPU(pgPID int) cpuSample {
	s := cpuSample{wall: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pgPID > 0 {
		s.postgres = procTreeCPU(pgPID)
	}
	s.busy = machineBusy()
	return s
}

// procTreeCPU sums utime+stime of pid and its children (the postmaster
// and its backends).
func procTreeCPU(pid int) time.Duration {
	var ticks int64
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		self, _ := strconv.Atoi(strings.Fields(s)[0])
		ppid, _ := strconv.Atoi(f[1])
		if self != pid && ppid != pid {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / clockTick
}

// machineBusy is the non-idle CPU time of all CPUs since boot.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are in user already
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick
}

// cpuUse is what a window cost.
type cpuUse struct {
	self, postgres, other time.Duration
	wall                  time.Duration
}

func cpuBetween(a, b cpuSample) cpuUse {
	u := cpuUse{self: b.self - a.self, postgres: b.postgres - a.postgres, wall: b.wall.Sub(a.wall)}
	u.other = max(b.busy-a.busy-u.self-u.postgres, 0)
	return u
}

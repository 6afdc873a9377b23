package devenv

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a process the dev environment started: the agent or sshd.
type child struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	done     chan struct{}
	waitErr  error
	stopping chan struct{}
	// tree: stop its descendants too. sshd's per-connection processes
	// start their own sessions (setsid), so they are not in its process
	// group and outlive it unless found and stopped.
	tree bool
	// desc are the descendants found by snapshot, before anything
	// stopped: once the agent is gone, a session's sshd process ends and
	// its command, reparented to init, would no longer be found.
	desc []int
}

// start runs bin with args, its output appended to DIR/logs/NAME.log. If it
// exits before stop, cancel ends the run with the reason and its log's
// tail.
func (e *env) start(ctx context.Context, cancel context.CancelCauseFunc, name string, tree bool, bin string, args ...string) (*child, error) {
	logf, err := e.logFile(name + ".log")
	if err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: exec.Command(bin, args...), logPath: logf.Name(), done: make(chan struct{}), stopping: make(chan struct{}), tree: tree}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Env = childEnv()
	c.cmd.Dir = e.dir
	c.cmd.SysProcAttr = childAttr()
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	logf.Close() // the child has its own copy
	e.children = append(e.children, c)
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
		select {
		case <-c.stopping:
		default:
			cancel(fmt.Errorf("%s exited unexpectedly (%v); the end of its log (%s):\n%s", name, c.waitErr, c.logPath, tail(c.logPath, 15)))
		}
	}()
	return c, nil
}

// childEnv is a small, predictable environment: no AWS settings or
// credentials of this shell leak into the agent or sshd.
func childEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	for _, k := range []string{"HOME", "USER", "LOGNAME", "TZ", "KAGINASHI_LOG_LEVEL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child (and, for a tree, to its descendants),
// waits up to 10 s, then SIGKILLs what is left.
func (c *child) stop(log *slog.Logger) {
	select {
	case <-c.stopping:
		return
	default:
		close(c.stopping)
	}
	desc := c.desc
	if c.tree && c.cmd.Process != nil {
		for _, pid := range descendants(c.cmd.Process.Pid) {
			if !slices.Contains(desc, pid) {
				desc = append(desc, pid)
			}
		}
	}
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, pid := range desc {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		log.Warn("did not stop within 10 s; killing it", "process", c.name)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range desc {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	log.Info("stopped", "process", c.name, "descendants", len(desc))
}

// snapshot records the child's descendants (see desc).
func (c *child) snapshot() {
	if c.tree && c.cmd.Process != nil && !c.exited() {
		c.desc = descendants(c.cmd.Process.Pid)
	}
}

// alive says whether pid runs (a zombie does not count: it is only waiting
// to be reaped by its parent).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return syscall.Kill(pid, 0) == nil && !procAvailable()
	}
	_, state, ok := parseStat(b)
	return ok && state != 'Z' && state != 'X'
}

func procAvailable() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// descendants lists every process below pid, from /proc (empty where there
// is no /proc).
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, ent := range ents {
		p, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		if ppid, _, ok := parseStat(b); ok {
			kids[ppid] = append(kids[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
				queue = append(queue, k)
			}
		}
	}
	return out
}

// parseStat reads the parent PID and state from /proc/PID/stat: "pid
// (comm) state ppid ...", where comm may hold spaces and parentheses, so
// the fields start after the last ')'.
func parseStat(b []byte) (ppid int, state byte, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	return ppid, f[0][0], true
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

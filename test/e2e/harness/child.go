package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process is a child process of a test (an agent, an sshd, a client)
// whose output the test reads.
type Process struct {
	Name   string
	Cmd    *exec.Cmd
	Stdout *SyncBuffer // its stdout: the same buffer as Output unless split
	Output *SyncBuffer // its stderr, and its stdout unless split
	done   chan struct{}
	err    error
}

// NewProcess prepares (does not start) bin with args and exactly env,
// both of its streams going to Output. Set Cmd's fields, or point
// Cmd.Stdout at a buffer of its own and Stdout with it, before Start.
func NewProcess(name string, env []string, bin string, args ...string) *Process {
	p := &Process{Name: name, Cmd: exec.Command(bin, args...), Output: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd.Env = env
	p.Stdout = p.Output
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	return p
}

// Spawn starts a process (see Start).
func Spawn(t testing.TB, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := NewProcess(name, env, bin, args...)
	p.Start(t)
	return p
}

// Start starts the process. When the test ends, a process still running
// gets SIGTERM, and SIGKILL 10 s later; a data race that a binary built
// with -race (KAGINASHI_E2E_RACE=1) reported fails the test.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.Cmd.Process.Kill()
				<-p.done
			}
		}
		if strings.Contains(p.Output.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: data race\n%s", p.Name, p.Output)
		}
	})
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (Cmd.Wait's error); valid once Done is
// closed.
func (p *Process) Err() error { return p.err }

// Exited says whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL (a crash: nothing is flushed or said goodbye) and
// waits for the exit.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatalf("killing %s: %v", p.Name, err)
	}
	<-p.done
}

// WaitOutput waits until Output holds want at least n times; it fails the
// test if the process exits first or timeout passes.
func (p *Process) WaitOutput(t testing.TB, want string, n int, timeout time.Duration) {
	t.Helper()
	p.WaitIn(t, p.Output, want, n, timeout)
}

// WaitIn is WaitOutput on out (Stdout when it is split).
func (p *Process) WaitIn(t testing.TB, out *SyncBuffer, want string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(out.String(), want) < n {
		if p.Exited() {
			// It may have said it, and exited, since the count above:
			// all its output is in once it has exited (Wait returns
			// after the copying ends).
			if strings.Count(out.String(), want) >= n {
				return
			}
			t.Fatalf("%s exited (%v) before saying %q\noutput:\n%s", p.Name, p.err, want, p.outputs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say %q (%d times) within %v\noutput:\n%s", p.Name, want, n, timeout, p.outputs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Process) outputs() string {
	if p.Stdout == p.Output {
		return p.Output.String()
	}
	return fmt.Sprintf("%s\n%s", p.Stdout, p.Output)
}

// BaseEnv is the environment child processes start from: this PATH, and
// nothing of the developer's locale, time zone or AWS setup.
func BaseEnv() []string { return []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "TZ=UTC"} }

// RaceBuilt says whether the binaries were built with -race
// (KAGINASHI_E2E_RACE=1), which makes every process several times slower.
func RaceBuilt() bool { return os.Getenv("KAGINASHI_E2E_RACE") == "1" }

// Bound is a time limit the product promises, stretched for race-built
// binaries.
func Bound(d time.Duration) time.Duration {
	if RaceBuilt() {
		return 4 * d
	}
	return d
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

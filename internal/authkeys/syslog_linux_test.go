//go:build linux

package authkeys

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// TestSyslogBudgetSurvivesSignals: a signal interrupting a write blocked on
// a stalled syslog fails it with EINTR (a socket with SO_SNDTIMEO is never
// restarted), and the retry must wait only the time left, not the whole
// timeout set before the write: a signal just before the deadline held the
// command up to twice the budget (TestSyslogDown saw 623 ms on a loaded
// machine, where the Go runtime's own signals land at random). The signal
// is aimed at the writing thread, 40 ms before the deadline.
func TestSyslogBudgetSurvivesSignals(t *testing.T) {
	f := newFixture(t)
	r := f.record(t, "alice", f.priv)
	now := func() time.Time { return f.now }
	p := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // never read: its queue fills and the writes block
	many := make([]keyrecord.Record, 5000)
	for i := range many {
		many[i] = r
	}
	tid := make(chan int, 1)
	took := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		// Not unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		tid <- syscall.Gettid()
		t0 := time.Now()
		LogProvided(p, "kaginashi-agent", now, many)
		took <- time.Since(t0)
	}()
	id := <-tid
	time.Sleep(time.Until(start.Add(syslogBudget - 40*time.Millisecond)))
	// SIGURG: the runtime's preemption signal, harmless to any thread.
	if err := syscall.Tgkill(os.Getpid(), id, syscall.SIGURG); err != nil {
		t.Fatal(err)
	}
	if d := <-took; d > syslogBudget+200*time.Millisecond {
		t.Errorf("a signal during a stalled syslog write held the command %v, budget %v", d, syslogBudget)
	}
}

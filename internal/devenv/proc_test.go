package devenv

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ppid  int
		state byte
		ok    bool
	}{
		{"123 (sshd) S 45 123 123 0 -1", 45, 'S', true},
		{"123 (a) b (c)) Z 7 1 1", 7, 'Z', true},
		{"123 (x", 0, 0, false},
		{"123 (x) S notanumber", 0, 0, false},
		{"", 0, 0, false},
	} {
		ppid, state, ok := parseStat([]byte(tc.in))
		if ppid != tc.ppid || state != tc.state || ok != tc.ok {
			t.Errorf("parseStat(%q) = %d %q %v, want %d %q %v", tc.in, ppid, state, ok, tc.ppid, tc.state, tc.ok)
		}
	}
}

// TestDescendants finds a grandchild that started its own session, as
// sshd's per-connection processes do.
func TestDescendants(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sh", "-c", "setsid sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var d []int
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if d = descendants(cmd.Process.Pid); len(d) > 0 {
			break
		}
	}
	if len(d) != 1 {
		t.Fatalf("descendants of sh: %v, want the sleep", d)
	}
	if !alive(d[0]) {
		t.Errorf("alive(%d) = false for a running process", d[0])
	}
	if slices.Contains(descendants(os.Getpid()), os.Getpid()) {
		t.Error("a process is its own descendant")
	}
	cmd.Process.Kill()
	os.FindProcess(d[0])
	p, _ := os.FindProcess(d[0])
	p.Kill()
}

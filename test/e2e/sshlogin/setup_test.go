package sshlogin

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// testSetupSSHD runs `kaginashi-agent setup-sshd` on copies of stock
// sshd_config files, each serving a real sshd: the login works once sshd
// is set up (and reloaded), and `setup-sshd --remove` puts the file back
// byte for byte, after which sshd no longer asks kaginashi.
//
// Debian 12's file includes sshd_config.d/*.conf, so setup-sshd writes a
// drop-in and leaves the main file alone; Debian 9's does not, so it gets
// a marked block, which --remove must take out exactly. The copies start
// with this test's own lines (port, host key, PidFile, no PAM), then the
// stock file with its Include pointed at the copy's directory.
//
// The real binary changes this machine in two ways, both undone here: it
// creates the AuthorizedKeysCommandUser "kaginashi" when missing (it is
// removed at the end if this test created it), and it reloads sshd, which
// without systemd means SIGHUP to the PidFile of the configuration it
// edits: the test's sshd. Where systemd runs an ssh or sshd unit, the
// binary would reload that one, so there the test calls the same code
// (package sshdsetup) with a Reload hook for its own sshd instead.
func testSetupSSHD(t *testing.T, s *harness.Server, a *hostAgent) {
	if _, err := user.Lookup(sshdsetup.DefaultUser); err != nil {
		t.Cleanup(func() {
			if _, err := user.Lookup(sshdsetup.DefaultUser); err == nil {
				delUser(sshdsetup.DefaultUser)
			}
		})
	}
	root := s.EIC(s.Root)
	userA := world.userA
	// setup-sshd picks the small kaginashi-authorized-keys next to the
	// agent binary; an agent with none next to it falls back to itself.
	// One fixture each, so both lines sshd may get are logged in through.
	alone := filepath.Join(world.safe, "agent-alone")
	if err := os.Mkdir(alone, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(alone) }) // world.safe outlives the test (go test -count=2)
	agentAlone := filepath.Join(alone, "kaginashi-agent")
	b, err := os.ReadFile(world.agent)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, agentAlone, b, 0o755)
	for _, tc := range []struct {
		fixture string
		dropIn  bool
		agent   string // the kaginashi-agent that runs setup-sshd
		command string // the AuthorizedKeysCommand binary it must pick
	}{{"debian-12", true, world.agent, world.akc}, {"debian-9", false, agentAlone, agentAlone}} {
		// One after the other: both record their state in the agent's
		// data directory.
		t.Run(tc.fixture, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "sshd_config.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			stock := readFixture(t, tc.fixture)
			main := strings.ReplaceAll(stock, "Include /etc/ssh/sshd_config.d/", "Include "+dir+"/sshd_config.d/")
			if tc.dropIn == (main == stock) {
				t.Fatalf("the %s fixture's Include of /etc/ssh/sshd_config.d changed", tc.fixture)
			}
			sshd := startSSHD(t, sshdOptions{dir: dir, main: &main})
			before, err := os.ReadFile(sshd.Config)
			if err != nil {
				t.Fatal(err)
			}
			k1 := newKey(t)
			push(t, root, a.id, userA, k1)
			sshd.wantRefused(t, userA, k1) // sshd does not ask kaginashi yet

			out := runSetupSSHD(t, tc.agent, sshd, a.dir)
			if !strings.Contains(out, "AuthorizedKeysCommand: using "+tc.command+" (") {
				t.Errorf("setup-sshd did not say it uses %s:\n%s", tc.command, out)
			}
			dropIn := filepath.Join(dir, "sshd_config.d", sshdsetup.DropInName)
			after, _ := os.ReadFile(sshd.Config)
			wantLines := []string{
				"AuthorizedKeysCommand " + tc.command + " authorized-keys --data-dir " + a.dir + " %u %f",
				"AuthorizedKeysCommandUser " + sshdsetup.DefaultUser,
			}
			where := after
			if tc.dropIn {
				if !bytes.Equal(after, before) {
					t.Errorf("setup-sshd changed the main file although it includes sshd_config.d")
				}
				where, err = os.ReadFile(dropIn)
				if err != nil {
					t.Fatalf("no drop-in: %v\n%s", err, out)
				}
			}
			for _, l := range wantLines {
				if !strings.Contains(string(where), "\n"+l+"\n") {
					t.Errorf("setup-sshd did not write %q:\n%s\noutput:\n%s", l, where, out)
				}
			}
			sshd.wantLogin(t, userA, k1)

			out = runSetupSSHD(t, tc.agent, sshd, a.dir, "--remove")
			restored, err := os.ReadFile(sshd.Config)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(restored, before) {
				t.Errorf("after setup-sshd --remove, %s is not byte-identical to before\nbefore:\n%q\nafter:\n%q\noutput:\n%s", sshd.Config, before, restored, out)
			}
			if _, err := os.Stat(dropIn); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the drop-in is still there after --remove: %v", err)
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "sshd_config.d")); len(ents) != 0 {
				t.Errorf("sshd_config.d holds %d files after --remove, want none as before", len(ents))
			}
			k2 := newKey(t)
			push(t, root, a.id, userA, k2)
			sshd.wantRefused(t, userA, k2) // sshd does not ask kaginashi any more
		})
	}
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "internal", "sshdsetup", "testdata", "sshd_config", name, "sshd_config"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runSetupSSHD runs agentBin's setup-sshd (with args, e.g. --remove) on
// sshd's configuration and waits for sshd to have reloaded it.
func runSetupSSHD(t *testing.T, agentBin string, sshd *sshdProc, dataDir string, args ...string) string {
	t.Helper()
	listening := strings.Count(sshd.Output.String(), "Server listening on")
	if systemdSSHD() {
		t.Log("systemd runs this machine: calling sshdsetup with a Reload hook instead of the binary, which would reload the machine's own sshd")
		pick := sshdsetup.PickCommand(context.Background(), agentBin, agent.Version)
		o := sshdsetup.Options{
			ConfigPath: sshd.Config, CommandPath: pick.Path, CommandArgs: []string{"authorized-keys", "--data-dir", dataDir},
			StateDir: filepath.Join(dataDir, "sshd-setup"),
			Reload: func(context.Context) error {
				return sshd.Cmd.Process.Signal(syscall.SIGHUP)
			},
		}
		var rep *sshdsetup.Report
		var err error
		if len(args) > 0 && args[0] == "--remove" {
			rep, err = sshdsetup.Remove(context.Background(), o)
		} else {
			rep, err = sshdsetup.Setup(context.Background(), o)
		}
		if err != nil {
			t.Fatalf("sshdsetup %v: %v", args, err)
		}
		sshd.WaitListening(t, listening+1)
		return "AuthorizedKeysCommand: using " + pick.Path + " (" + pick.Why + ")\n" + rep.String()
	}
	cmd := exec.Command(agentBin, append([]string{"setup-sshd", "--sshd-config", sshd.Config, "--data-dir", dataDir}, args...)...)
	cmd.Env = harness.BaseEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kaginashi-agent setup-sshd %v: %v\n%s", args, err, out)
	}
	if !strings.Contains(string(out), "sent SIGHUP to sshd (pid "+strconv.Itoa(sshd.Cmd.Process.Pid)) {
		t.Errorf("setup-sshd %v did not reload the test's sshd:\n%s", args, out)
	}
	sshd.WaitListening(t, listening+1)
	return string(out)
}

// systemdSSHD says whether systemd runs this machine: then setup-sshd
// reloads sshd through systemctl (the machine's own ssh or sshd unit), not
// through the PidFile of the configuration it edited.
func systemdSSHD() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// --- syslog ----------------------------------------------------------------

// syslogSink is a unixgram socket standing in for /dev/log.
type syslogSink struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenSyslog(t *testing.T) *syslogSink {
	t.Helper()
	dir, err := os.MkdirTemp(world.safe, "syslog-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &syslogSink{path: filepath.Join(dir, "log")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// The AuthorizedKeysCommandUser (nobody) sends to it.
	if err := os.Chmod(s.path, 0o666); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8192)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// find returns the first message containing sub ("" if none).
func (s *syslogSink) find(sub string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.Contains(m, sub) {
			return m
		}
	}
	return ""
}

// wait waits for a message containing sub.
func (s *syslogSink) wait(t *testing.T, sub string, timeout time.Duration) string {
	t.Helper()
	var m string
	deadline := time.Now().Add(timeout)
	for m = s.find(sub); m == ""; m = s.find(sub) {
		if time.Now().After(deadline) {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("no syslog message with %q within %v; got:\n%s", sub, timeout, strings.Join(s.msgs, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return m
}

// syslogWrapper is an AuthorizedKeysCommand that runs authorized-keys with
// KAGINASHI_SYSLOG_SOCKET set. It has to exist because sshd runs the
// command with a clean environment (PATH, USER, LOGNAME, HOME and LANG
// only: OpenSSH's subprocess()), so the variable cannot come from sshd's
// own environment; and it is a root-owned script in the safe directory,
// because sshd applies the same ownership and mode rules to it as to the
// binary.
func syslogWrapper(t *testing.T, socket string) string {
	t.Helper()
	dir, err := os.MkdirTemp(world.safe, "wrapper-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "authorized-keys")
	writeFile(t, p, []byte("#!/bin/sh\nKAGINASHI_SYSLOG_SOCKET="+socket+" exec "+world.akc+` authorized-keys "$@"`+"\n"), 0o755)
	return p
}

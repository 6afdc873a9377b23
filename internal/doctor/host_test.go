package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/agent/hostinfo"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fakeHost is a healthy host; each test breaks one thing.
type fakeHost struct {
	dir      string
	status   *agent.Status // nil: no status file
	enrolled bool
	validate error
	state    *sshdsetup.State
	inspect  error
	pathErr  error
	pathWarn []string
	info     *hostinfo.Info
	reachErr error
	date     time.Time
	alive    bool
}

func healthy(t *testing.T) *fakeHost {
	dir := t.TempDir()
	return &fakeHost{
		dir: dir, enrolled: true, alive: true,
		status: &agent.Status{PID: 4242, Server: "https://kg.example:8443", InstanceID: "i-0123456789abcdef0", Connected: true,
			ConnectedAt: now.Add(-time.Hour), LastBeat: now.Add(-10 * time.Second), HeartbeatSeconds: 20, ClockSkewMillis: 120},
		state: &sshdsetup.State{Configured: true, Mechanism: sshdsetup.MechanismDropIn,
			AuthorizedKeysCommand: &sshdsetup.Directive{File: "/etc/ssh/sshd_config.d/60-kaginashi.conf", Line: 2,
				Value: "/usr/local/sbin/kaginashi-agent authorized-keys --data-dir " + dir + " %u %f"}},
		info: &hostinfo.Info{OSID: "debian", OSVersion: "12", OSPrettyName: "Debian GNU/Linux 12 (bookworm)", DefaultUser: "admin", DefaultUserExists: true,
			SSHDVersion: "OpenSSH_9.2p1", SSHDMajor: 9, SSHDMinor: 2},
		date: now.Add(time.Second),
	}
}

func (f *fakeHost) run(t *testing.T) map[string]Check {
	t.Helper()
	if f.enrolled {
		b, _ := json.Marshal(agent.Config{Server: "https://kg.example:8443", InstanceID: "i-0123456789abcdef0"})
		mustWrite(t, filepath.Join(f.dir, "agent.json"), b)
		mustWrite(t, filepath.Join(f.dir, "identity.crt"), []byte("cert"))
	}
	if f.status != nil {
		b, _ := json.Marshal(f.status)
		mustWrite(t, filepath.Join(f.dir, agent.StatusFile), b)
	}
	checks := Host(context.Background(), HostOptions{
		AgentDataDir: f.dir, SSHDConfig: "/etc/ssh/sshd_config", Now: func() time.Time { return now },
		Validate:  func(context.Context, string) error { return f.validate },
		Inspect:   func(string) (*sshdsetup.State, error) { return f.state, f.inspect },
		CheckPath: func(string) ([]string, error) { return f.pathWarn, f.pathErr },
		HostInfo:  func(context.Context) (*hostinfo.Info, error) { return f.info, nil },
		Reach: func(context.Context, string, string) (time.Time, error) {
			return f.date, f.reachErr
		},
		Alive: func(int) bool { return f.alive },
	})
	m := map[string]Check{}
	for _, c := range checks {
		if _, dup := m[c.Name]; dup {
			t.Errorf("check %s twice", c.Name)
		}
		m[c.Name] = c
	}
	return m
}

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// want asserts a check's status and that its message and fix hold the
// given pieces.
func want(t *testing.T, m map[string]Check, name string, st Status, msg, fix string) {
	t.Helper()
	c, found := m[name]
	if !found {
		t.Fatalf("no %s check in %v", name, m)
	}
	if c.Status != st || !strings.Contains(c.Message, msg) || !strings.Contains(c.Fix, fix) {
		t.Errorf("%s = %+v, want status %s, message with %q, fix with %q", name, c, st, msg, fix)
	}
	if (st == Fail) && c.Fix == "" {
		t.Errorf("%s fails without a fix: %+v", name, c)
	}
}

func TestHostHealthy(t *testing.T) {
	m := healthy(t).run(t)
	for _, name := range []string{"agent-enrolled", "agent-connected", "sshd-config-valid", "sshd-wired", "akc-path", "default-user", "os-supported", "server-reachable", "clock-skew"} {
		want(t, m, name, OK, "", "")
	}
	want(t, m, "clock-skew", OK, "120ms (as the agent measured it)", "")
	if len(m) != 9 {
		t.Errorf("%d checks, want 9: %v", len(m), m)
	}
}

func TestHostBroken(t *testing.T) {
	for _, tc := range []struct {
		name           string
		breakIt        func(*fakeHost)
		check          string
		status         Status
		msg, fix       string
		alsoSkippedTag string
	}{
		{"not enrolled", func(f *fakeHost) { f.enrolled = false; f.status = nil }, "agent-enrolled", Fail, "not enrolled", "kaginashi-agent install-service", "agent-connected"},
		{"never ran", func(f *fakeHost) { f.status = nil }, "agent-connected", Fail, "has not reported", "systemctl start kaginashi-agent", ""},
		{"agent gone", func(f *fakeHost) { f.alive = false }, "agent-connected", Fail, "not running (pid 4242", "systemctl start", ""},
		{"disconnected", func(f *fakeHost) { f.status.Connected = false; f.status.LastError = "dial tcp: connection refused" }, "agent-connected", Fail, "connection refused", "server-reachable", ""},
		{"stuck", func(f *fakeHost) { f.status.LastBeat = now.Add(-5 * time.Minute) }, "agent-connected", Fail, "has not heard from the server since 5m0s ago", "restart", ""},
		{"sshd -t fails", func(f *fakeHost) { f.validate = errors.New("line 3: Bad configuration option: Foo") }, "sshd-config-valid", Fail, "Bad configuration option", "sshd -t", ""},
		{"not wired", func(f *fakeHost) {
			f.state = &sshdsetup.State{Conflicts: []sshdsetup.Conflict{{Message: "PubkeyAuthentication no"}}}
		}, "sshd-wired", Fail, "PubkeyAuthentication no", "kaginashi-agent setup-sshd", "akc-path"},
		{"another command", func(f *fakeHost) {
			f.state = &sshdsetup.State{AuthorizedKeysCommand: &sshdsetup.Directive{File: "/etc/ssh/sshd_config", Line: 7, Value: "/usr/share/ec2-instance-connect/eic_run_authorized_keys %u %f"}}
		}, "sshd-wired", Fail, "eic_run_authorized_keys", "remove that line", "akc-path"},
		{"unreadable config", func(f *fakeHost) { f.inspect = errors.New("permission denied") }, "sshd-wired", Fail, "permission denied", "readable", "akc-path"},
		{"unsafe path", func(f *fakeHost) {
			f.pathErr = &sshdsetup.UnsafePathError{Path: "/usr/local/sbin/kaginashi-agent", Component: "/usr/local/sbin", Kind: "directory", Reason: "is group-writable (mode 0775)", Fix: "chmod go-w /usr/local/sbin"}
		}, "akc-path", Fail, "/usr/local/sbin is group-writable", "chmod go-w /usr/local/sbin", ""},
		{"path warning", func(f *fakeHost) { f.pathWarn = []string{"not executable by others"} }, "akc-path", Warn, "not executable by others", "chmod o+rx", ""},
		{"other data dir", func(f *fakeHost) {
			f.state.AuthorizedKeysCommand.Value = "/usr/local/sbin/kaginashi-agent authorized-keys %u %f"
		}, "akc-data-dir", Warn, agent.DefaultDataDir, "setup-sshd --data-dir", ""},
		{"no default user", func(f *fakeHost) { f.info.DefaultUserExists = false }, "default-user", Warn, "admin", "useradd -m admin", ""},
		{"unknown OS", func(f *fakeHost) { f.info.OSID, f.info.OSPrettyName = "plan9", "" }, "os-supported", Warn, "not among the tested", "", ""},
		{"derivative OS", func(f *fakeHost) {
			f.info.OSID, f.info.OSIDLike, f.info.OSPrettyName = "linuxmint", "ubuntu debian", "Linux Mint 22"
		}, "os-supported", OK, "Linux Mint 22", "", ""},
		{"old sshd", func(f *fakeHost) { f.info.SSHDVersion, f.info.SSHDMajor, f.info.SSHDMinor = "OpenSSH_6.6p1", 6, 6 }, "os-supported", Fail, "older than OpenSSH 7.4", "upgrade openssh-server", ""},
		{"unreachable", func(f *fakeHost) { f.reachErr = errors.New("i/o timeout") }, "server-reachable", Fail, "i/o timeout", "kg.example:8443", ""},
		{"skew", func(f *fakeHost) { f.status.ClockSkewMillis = -6500 }, "clock-skew", Fail, "-6.5s off", "timedatectl set-ntp true", ""},
		{"unendorsed signing key", func(f *fakeHost) {
			f.status.SigningKeyError = "the server signs with SHA256:x, which this agent cannot trust: no endorsement starts at the pinned signing key"
		}, "signing-key", Fail, "cannot trust", "enrol this host again", ""},
		{"pinned key unreadable on disk", func(f *fakeHost) {
			f.status.SigningKeyProblem = "/var/lib/kaginashi-agent/keys/identity.json is mode 0600: sshd's AuthorizedKeysCommandUser (not root) cannot read the pinned signing key through it"
		}, "signing-key", Fail, "is mode 0600", "chmod 0644", ""},
		{"skew from Date", func(f *fakeHost) { f.alive = false; f.date = now.Add(-30 * time.Second) }, "clock-skew", Fail, "Date header", "timedatectl", ""},
		{"no clock at all", func(f *fakeHost) { f.alive = false; f.date = time.Time{} }, "clock-skew", Skip, "could tell", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy(t)
			tc.breakIt(f)
			m := f.run(t)
			want(t, m, tc.check, tc.status, tc.msg, tc.fix)
			if tc.alsoSkippedTag != "" {
				want(t, m, tc.alsoSkippedTag, Skip, "", "")
			}
			if tc.status == Fail && NewReport(checksOf(m)).OK {
				t.Error("the report is OK although a check failed")
			}
		})
	}
}

func checksOf(m map[string]Check) []Check {
	var cs []Check
	for _, c := range m {
		cs = append(cs, c)
	}
	return cs
}

func TestReport(t *testing.T) {
	r := NewReport([]Check{New("a", OK, "", "fine")}, []Check{New("b", Warn, "do x", "hmm"), New("c", Skip, "", "n/a")})
	if !r.OK {
		t.Error("warnings and skips made the report fail")
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Checks []map[string]any `json:"checks"`
		OK     *bool            `json:"ok"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.OK == nil || !*back.OK || len(back.Checks) != 3 {
		t.Fatalf("JSON %s: %v", js.String(), err)
	}
	if back.Checks[1]["name"] != "b" || back.Checks[1]["status"] != "warn" || back.Checks[1]["fix"] != "do x" || back.Checks[1]["message"] != "hmm" {
		t.Errorf("JSON check: %v", back.Checks[1])
	}
	if _, has := back.Checks[0]["fix"]; has {
		t.Errorf("an ok check has a fix field: %v", back.Checks[0])
	}

	r = NewReport([]Check{New("d", Fail, "run y\nthen z", "broken")})
	if r.OK {
		t.Error("a failure left the report OK")
	}
	var txt bytes.Buffer
	_ = r.WriteText(&txt)
	for _, s := range []string{"FAIL  d", "broken", "fix: run y", "           then z", "1 check(s) failed"} {
		if !strings.Contains(txt.String(), s) {
			t.Errorf("text output lacks %q:\n%s", s, txt.String())
		}
	}
}

func TestDataDirArg(t *testing.T) {
	for in, want := range map[string]string{
		"/a/kaginashi-agent authorized-keys --data-dir /x %u %f":              "/x",
		"/a/kaginashi-agent authorized-keys --data-dir=/y %u %f":              "/y",
		"/a/kaginashi-agent authorized-keys %u %f":                            agent.DefaultDataDir,
		"/usr/bin/env /b/kaginashi-agent authorized-keys --data-dir /z %u %f": "/z",
	} {
		if got := dataDirArg(in); got != want {
			t.Errorf("dataDirArg(%q) = %q, want %q", in, got, want)
		}
	}
}

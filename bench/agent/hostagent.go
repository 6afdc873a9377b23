package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// hostAgent is a real `kaginashi-agent run` process.
type hostAgent struct {
	dir  string // its data directory
	id   string // instance ID
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

// startHostAgent enrolls and runs the agent binary against the server at
// base, trusting caPath, and waits until it is connected.
func startHostAgent(bin, dir, base, caPath, token string) (*hostAgent, error) {
	a := &hostAgent{dir: dir, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	a.cmd = exec.Command(bin, "run", "--server", base, "--data-dir", dir, "--ca-file", caPath, "--join-token", token)
	a.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "TZ=UTC", "HOME=/"}
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = a.cmd.Wait()
		close(a.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.out.String(), `msg="connected to the server"`) {
		select {
		case <-a.done:
			return nil, fmt.Errorf("kaginashi-agent run exited:\n%s", a.out)
		default:
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, fmt.Errorf("kaginashi-agent run not connected after 30s:\n%s", a.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(dir, "agent.json"))
	if err != nil {
		a.stop()
		return nil, err
	}
	var cfg agent.Config
	if err := json.Unmarshal(b, &cfg); err != nil || !strings.HasPrefix(cfg.InstanceID, "i-") {
		a.stop()
		return nil, fmt.Errorf("agent.json: %v %s", err, b)
	}
	a.id = cfg.InstanceID
	return a, nil
}

func (a *hostAgent) pid() int { return a.cmd.Process.Pid }

func (a *hostAgent) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// nobody is the unprivileged user the AuthorizedKeysCommand runs as
// (kaginashi's own AuthorizedKeysCommandUser is a system user like it).
func nobody() (*syscall.Credential, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

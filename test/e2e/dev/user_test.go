package dev

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

const (
	userPrefix = "kgd-"
	userGECOS  = "kaginashi dev e2e test user"
)

// TestDevNormalUser runs kaginashi dev as a normal user: sshd runs as that
// user and logs in only that user, and nothing needs root.
func TestDevNormalUser(t *testing.T) {
	if skipped != "" {
		t.Skip(skipped)
	}
	reapStaleUsers()
	name := userPrefix + strconv.Itoa(os.Getpid())
	home := filepath.Join("/tmp", name)
	out, err := exec.Command("useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh", "--password", "*", "--comment", userGECOS, name).CombinedOutput()
	if err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "--remove", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "mail spool") {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
		os.RemoveAll(home)
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The user must reach the binaries.
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	as := func(c *exec.Cmd) {
		if c.SysProcAttr == nil {
			c.SysProcAttr = &syscall.SysProcAttr{}
		}
		c.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C", "USER=" + name, "LOGNAME=" + name}
		c.Dir = home
	}
	dataDir := filepath.Join(home, "kd")
	p := startDev(t, dataDir, harness.FreePort(t), as)
	printed := parse(t, p.stdout.String())
	if !strings.Contains(printed.login, " "+name+"@i-") {
		t.Errorf("the ssh line does not log in as %s: %s", name, printed.login)
	}
	cmd := exec.Command("bash", "-euc", strings.Join(append(printed.exports, printed.login+" -- id -un"), "\n"))
	as(cmd)
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(got), name+"\n") {
		t.Fatalf("as %s, the printed ssh line: %v\n%s\nkaginashi dev:\n%s", name, err, got, p.stderr)
	}
	// Another user cannot be chosen.
	bad := exec.Command(filepath.Join(bin, "kaginashi"), "dev", "--data-dir", filepath.Join(home, "kd2"), "--os-user", "root")
	as(bad)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "can only log you in as yourself") {
		t.Errorf("as %s, kaginashi dev --os-user root: %v\n%s", name, err, out)
	}
	p.interrupt(t)
	if left := pidsUnder(dataDir); len(left) > 0 {
		t.Errorf("processes left:\n%s", strings.Join(left, "\n"))
	}
}

// reapStaleUsers removes the users of earlier runs whose process is gone.
func reapStaleUsers() {
	for _, u := range harness.StaleUsers(userPrefix, userGECOS) {
		if out, err := exec.Command("userdel", "--remove", u).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "dev: userdel %s: %v: %s\n", u, err, out)
		}
	}
}

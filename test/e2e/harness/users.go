package harness

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// AddUser adds a local user for logins with a shell, home directory home
// (not created) and no usable password: "*" rather than useradd's
// default "!", which sshd (with UsePAM no) treats as a locked account and
// refuses even with a valid key. gecos marks the suite's users for
// StaleUsers.
func AddUser(name, home, gecos string) error {
	out, err := exec.Command("useradd", "--no-create-home", "--home-dir", home, "--shell", "/bin/sh",
		"--password", "*", "--comment", gecos, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	return nil
}

// StaleUsers are the local users named PREFIX<pid>... with comment gecos
// whose test process is gone (a run killed before its cleanup), for the
// suite to delete.
func StaleUsers(prefix, gecos string) []string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return nil
	}
	defer f.Close()
	var stale []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 5 || fields[4] != gecos || !strings.HasPrefix(fields[0], prefix) {
			continue
		}
		if _, gone := StalePID(strings.TrimPrefix(fields[0], prefix)); gone {
			stale = append(stale, fields[0])
		}
	}
	return stale
}

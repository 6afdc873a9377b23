// Package harness is what kaginashi's end-to-end suites share: building
// the binaries, starting and stopping `kaginashi server` processes, SDK
// clients pointed at them, and a lightweight stand-in for a connected host
// agent; and for the suites behind a real OpenSSH sshd (sshlogin, tunnel,
// tunneldata, console, browser, dev): child processes (child.go), private
// sshds and the root-owned agent copy their AuthorizedKeysCommand needs
// (sshd.go), real enrolled agents (agent.go), local login users
// (users.go). The suites are separate packages so that `go test ./test/...`
// runs them in parallel.
package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Kaginashi is the kaginashi binary that Launch runs. A suite's TestMain
// sets it after building the binary (Build).
var Kaginashi string

// ModuleRoot is the directory of kaginashi's go.mod.
func ModuleRoot() (string, error) { return moduleRoot() }

var moduleRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command(goBinary(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside kaginashi's module")
	}
	return filepath.Dir(mod), nil
})

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Build builds the main packages pkgs (module-relative, "./cmd/kaginashi")
// into dir, each under its last path element. KAGINASHI_E2E_RACE=1 builds
// them with -race.
func Build(dir string, pkgs ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	for _, pkg := range pkgs {
		args := []string{"build", "-o", filepath.Join(dir, filepath.Base(pkg))}
		if os.Getenv("KAGINASHI_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command(goBinary(), append(args, pkg)...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return nil
}

// TempDir makes a directory PARENT/PREFIX<pid>-XXXX for one test process,
// first removing the directories of earlier runs whose process is gone
// (TestMain often cannot clean up: pgtest.Main exits the process).
func TempDir(parent, prefix string) (string, error) {
	ReapStale(parent, prefix)
	return os.MkdirTemp(parent, prefix+strconv.Itoa(os.Getpid())+"-")
}

// ReapStale removes PARENT/PREFIX<pid>-* of test processes that no longer
// exist.
func ReapStale(parent, prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, prefix+"*"))
	for _, d := range dirs {
		if pid, ok := StalePID(strings.TrimPrefix(filepath.Base(d), prefix)); ok && pid != os.Getpid() {
			os.RemoveAll(d)
		}
	}
}

// StalePID reads the pid at the start of "PID-..." and says whether that
// process is gone.
func StalePID(s string) (int, bool) {
	pidStr, _, _ := strings.Cut(s, "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// BuildKaginashi builds ./cmd/kaginashi, and the main packages more, into
// a new TempDir(os.TempDir(), prefix) and points Kaginashi at it. The
// caller removes the directory (also on error, when it is not "").
func BuildKaginashi(prefix string, more ...string) (string, error) {
	bin, err := TempDir(os.TempDir(), prefix)
	if err != nil {
		return "", err
	}
	if err := Build(bin, append([]string{"./cmd/kaginashi"}, more...)...); err != nil {
		return bin, err
	}
	Kaginashi = filepath.Join(bin, "kaginashi")
	return bin, nil
}

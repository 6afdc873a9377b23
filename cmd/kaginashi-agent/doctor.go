package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/doctor"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// doctorCmd runs the host checks (package doctor, as `kaginashi doctor`
// does on a host) and returns the exit status: 0 no failure, 1 a failure,
// 2 usage.
func doctorCmd(args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	dataDir := fs.String("data-dir", agent.DefaultDataDir, "agent state directory")
	config := fs.String("sshd-config", sshdsetup.DefaultConfigPath, "sshd_config to check")
	output := fs.String("output", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || (*output != "text" && *output != "json") {
		fmt.Fprintln(os.Stderr, "usage: kaginashi-agent doctor [--data-dir DIR] [--sshd-config PATH] [--output text|json]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := doctor.NewReport(doctor.Host(ctx, doctor.HostOptions{AgentDataDir: *dataDir, SSHDConfig: *config}))
	var err error
	if *output == "json" {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kaginashi-agent doctor:", err)
		return 2
	}
	if !rep.OK {
		return 1
	}
	return 0
}

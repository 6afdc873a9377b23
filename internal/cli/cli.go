// Package cli is kaginashi's command line: the server, the agent tools and
// the client commands all hang off one cobra command tree. Commands are
// thin: they parse flags, call the packages that do the work and print.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	ExitOK       = 0
	ExitFindings = 1 // the command ran and found a problem (e.g. ERROR findings)
	ExitUsage    = 2 // bad flags or arguments, unreadable input
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// exitError carries an exit code out of a command. Its message, if any, has
// already been printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr marks an error as the caller's mistake: exit code 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	return report(root.ExecuteContext(ctx), stdio.Err)
}

// report writes a command's error to w, as "kaginashi: ...", and returns
// the exit code.
func report(err error, w io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		// A command may wrap an error that was already told (an
		// exitError without a message, e.g. a tunnel's close reason
		// printed as it happened): it stays silent, not "exit 1".
		for {
			inner, ok := ee.err.(*exitError)
			if !ok {
				break
			}
			ee = inner
		}
		if ee.err != nil {
			fmt.Fprintf(w, "kaginashi: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(w, "kaginashi: %v\n", err)
	return ExitUsage
}

func newRoot(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "kaginashi",
		Short: "Self-hosted, AWS-compatible EC2 Instance Connect: SSH with no long-lived key",
		Long: `kaginashi (鍵なし, "without a key") lets people log in to their own Linux servers
over SSH with no long-lived key and no password. IAM-style JSON policies decide
who may reach which host as which OS user.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newPolicyCmd(stdio), newServerCmd(stdio), newAuditCmd(stdio), newAgentTokenCmd(stdio), newOpenTunnelCmd(stdio),
		newSSHCmd(stdio), newSSHConfigCmd(stdio), newSSHProxyCmd(stdio))
	root.AddCommand(newDevCmd(stdio), newDoctorCmd(stdio))
	root.AddCommand(newInstanceCmd(stdio))
	return root
}

// exactArgs is cobra.ExactArgs with a usage exit code and a clearer text.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s takes %s (see '%s --help')", c.CommandPath(), what, c.CommandPath())
		}
		return nil
	}
}

// maxInput bounds what a command reads from a file or stdin: policies are a
// few KiB; anything huge is a mistake (or /dev/zero).
const maxInput = 10 << 20

// readInput reads a named file, or standard input for "-".
func readInput(stdio IO, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = stdio.In
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, usageErr("reading %s: %v", name, err)
	}
	if len(data) > maxInput {
		return nil, usageErr("%s is larger than %d MiB; a policy is a few KiB", name, maxInput>>20)
	}
	return data, nil
}

// outputFlag is the --output flag of commands that print results.
type outputFlag struct{ v string }

func (o *outputFlag) register(c *cobra.Command, allowed ...string) {
	c.Flags().StringVarP(&o.v, "output", "o", allowed[0], "output format: "+joinOr(allowed))
	c.PreRunE = chainPreRun(c.PreRunE, func(*cobra.Command, []string) error {
		for _, a := range allowed {
			if o.v == a {
				return nil
			}
		}
		return usageErr("--output %q: want %s", o.v, joinOr(allowed))
	})
}

func joinOr(vs []string) string {
	switch len(vs) {
	case 1:
		return vs[0]
	case 2:
		return vs[0] + " or " + vs[1]
	}
	s := ""
	for i, v := range vs {
		switch {
		case i == len(vs)-1:
			s += ", or " + v
		case i > 0:
			s += ", " + v
		default:
			s = v
		}
	}
	return s
}

func chainPreRun(a, b func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	if a == nil {
		return b
	}
	return func(c *cobra.Command, args []string) error {
		if err := a(c, args); err != nil {
			return err
		}
		return b(c, args)
	}
}

// Package cli is the wharf command tree: the client commands over
// pkg/client, and the daemons (hub, agent, dev) handed in by main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Version is set at build time (-ldflags -X).
var Version = "dev"

// Daemon registers a daemon's flags on fs and returns the function that
// runs it with the parsed values.
type Daemon func(fs *pflag.FlagSet) func(ctx context.Context) error

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // a request or a daemon failed
	ExitUsage  = 2 // bad usage
)

// failure marks an error that is not the user's usage: exit code 1.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

func fail(err error) error {
	if err == nil {
		return nil
	}
	return failure{err}
}

// usageError is a usage mistake found by our own checks: exit code 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main runs the CLI with os.Args and returns the exit code.
func Main(hub, agent Daemon) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, hub, agent)
}

// Run runs the command tree with args and returns the exit code. Tests call
// it directly.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, hub, agent Daemon) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := e.root(hub, agent)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var f failure
	if errors.As(err, &f) {
		var ae *apitypes.Error
		if errors.As(err, &ae) {
			msg := "Error: " + ae.Message
			if ae.Field != "" {
				msg += fmt.Sprintf(" (field %s)", ae.Field)
			}
			fmt.Fprintln(stderr, msg)
		} else {
			fmt.Fprintln(stderr, "Error:", err)
		}
		return ExitFailed
	}
	fmt.Fprintln(stderr, "Error:", err)
	fmt.Fprintln(stderr, "Run 'wharf --help' for usage.")
	return ExitUsage
}

// env carries the global flags and streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	addr, token    string
	tenant, output string
	stale          bool
}

func (e *env) root(hub, agent Daemon) *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "Wharf: a multi-cloud container platform",
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch e.output {
			case "table", "json", "yaml":
				return nil
			}
			return usagef("-o must be table, json or yaml, not %q", e.output)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.addr, "addr", "", "hub API address (default $WHARF_ADDR, the login config, or "+defaultAddr+")")
	pf.StringVar(&e.token, "token", "", "API token (default $WHARF_TOKEN or the login config)")
	pf.StringVar(&e.tenant, "tenant", "", "tenant to act on (admin tokens)")
	pf.StringVarP(&e.output, "output", "o", "table", "output format: table, json or yaml")
	pf.BoolVar(&e.stale, "stale", false, "read from the node's replica without asking the leader")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })

	root.AddCommand(
		daemonCmd("hub", "Run a hub node", hub),
		daemonCmd("agent", "Run an agent", agent),
		e.devCmd(hub, agent), e.demoCmd(),
		e.keygenCmd(),
		e.loginCmd(),
		e.statusCmd(),
		e.bootstrapCmd(),
		e.tenantCmd(),
		e.tokenCmd(),
		e.poolCmd(),
		e.appCmd(),
		e.routeCmd(),
		e.drillCmd(),
		e.logDrainCmd(),
		e.alertCmd(),
		e.certCmd(),
		e.joinTokenCmd(),
		e.hostCmd(),
		e.eventsCmd(),
	)
	return root
}

// group makes a parent command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usagef("%s needs a subcommand: see '%s --help'", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}

func daemonCmd(name, short string, d Daemon) *cobra.Command {
	c := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs}
	if d == nil {
		c.RunE = func(*cobra.Command, []string) error {
			return usagef("wharf %s is not available in this build yet", name)
		}
		c.DisableFlagParsing = true
		return c
	}
	run := d(c.Flags())
	c.RunE = func(cmd *cobra.Command, _ []string) error { return fail(run(cmd.Context())) }
	return c
}

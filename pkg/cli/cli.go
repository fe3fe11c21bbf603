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
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/internal/version"
)

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
	var u usageError
	if err == nil || errors.As(err, &u) {
		return err // a usage mistake found once the hub answered
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
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, args: args}
	root := e.root(hub, agent)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var x exitError
	if errors.As(err, &x) { // wharf app exec: the command's code, or ExitWharf
		if x.err != nil {
			fmt.Fprintln(stderr, "Error:", e.explain(x.err))
		}
		return x.code
	}
	var f failure
	if errors.As(err, &f) {
		fmt.Fprintln(stderr, "Error:", e.explain(err))
		return ExitFailed
	}
	fmt.Fprintln(stderr, "Error:", err)
	path := "wharf"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
	return ExitUsage
}

// env carries the global flags and streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	args           []string // the command line, for messages about it
	addr, token    string
	tenant, output string
	stale          bool

	// Set by client(), for messages about the connection.
	addrUsed    string
	addrDefault bool // no address was configured: the default was tried
	tokenSet    bool
	// onRetry hears the API's retries while the hub has no leader; a
	// rollout's progress sets it to print them in place.
	onRetry   func(err error)
	lastRetry string
}

func (e *env) root(hub, agent Daemon) *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "Wharf: a multi-cloud container platform",
		Version:       version.Get().Version,
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
	root.SetFlagErrorFunc(flagError)

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
		e.providerCmd(),
		e.machineCmd(),
		e.appCmd(),
		e.routeCmd(),
		e.drillCmd(),
		e.logDrainCmd(),
		e.alertCmd(),
		e.certCmd(),
		e.registryCmd(),
		e.joinTokenCmd(),
		e.hostCmd(),
		e.eventsCmd(),
		e.auditCmd(),
		e.secretCmd(),
		e.usageCmd(),
		e.planCmd(), e.billCmd(), e.invoiceCmd(),
		e.versionCmd(),
	)
	return root
}

// group makes a parent command that only holds subcommands. Its first
// argument must name one: anything else is reported as an unknown command
// with the nearest names, before the flags meant for a subcommand are
// looked at (so `app deplyo --image x` is not "unknown flag: --image").
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:                use,
		Short:              short,
		Args:               cobra.ArbitraryArgs,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return usagef("%s needs a subcommand: see '%s --help'", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}

// unknownCommand is cobra's own wording for the root, for every level.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only where it suggests itself
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageError{msg}
}

// flagError is a flag the parser refused, with the nearest flag of the
// command when the name looks mistyped.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) || ne.GetSpecifiedShortnames() != "" {
		return usageError{msg}
	}
	name := ne.GetSpecifiedName()
	best, bestD := "", 3 // farther than 2 edits is not a typo
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best != "" {
		msg += "\n\nDid you mean this?\n\t--" + best
	}
	return usageError{msg}
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// negativeNumber returns the first argument of the command line that is a
// negative number ("-3"), which the flag parser takes for a flag.
func (e *env) negativeNumber() string {
	for _, a := range e.args {
		if a == "--" {
			break
		}
		if len(a) > 1 && a[0] == '-' {
			if _, err := strconv.Atoi(a[1:]); err == nil {
				return a
			}
		}
	}
	return ""
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

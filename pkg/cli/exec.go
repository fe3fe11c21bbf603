package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// ExitWharf is the exit code of `wharf app exec` when Wharf itself failed
// (no such app or instance, refused, the hub or agent lost), as opposed
// to the command's own exit code, which becomes the CLI's.
const ExitWharf = 255

// exitError ends the CLI with code; err, when set, is printed first.
type exitError struct {
	code int
	err  error
}

func (x exitError) Error() string {
	if x.err != nil {
		return x.err.Error()
	}
	return fmt.Sprintf("exit status %d", x.code)
}

// appExecCmd is `wharf app exec APP [--instance ID] [-it] -- CMD ARGS...`.
func (e *env) appExecCmd() *cobra.Command {
	var instance string
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec APP [--instance ID] [-it] -- CMD ARGS...",
		Short: "Run a command in an instance of an app (the first running one, or --instance); its exit code becomes wharf's, 255 when Wharf failed",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("give the app and the command: wharf app exec APP -- CMD ARGS...")
			}
			if dash := cmd.ArgsLenAtDash(); dash != -1 && dash != 1 {
				return usagef("give exactly one APP before -- (got %d)", dash)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return exitError{ExitWharf, err}
			}
			code, err := e.exec(cmd.Context(), c, args[0], client.ExecOptions{Tenant: e.tenant, Instance: instance, Cmd: args[1:], TTY: tty}, stdin)
			if err != nil {
				return exitError{ExitWharf, err}
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "the instance to run in (default: the app's first running one)")
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "run the command on a terminal (with -i on a terminal: raw mode, resized with the window)")
	return cmd
}

// exec runs the command with the CLI's streams; with a TTY and a local
// terminal on stdin, that terminal is in raw mode meanwhile and its size
// changes are sent along.
func (e *env) exec(ctx context.Context, c *client.Client, app string, o client.ExecOptions, stdin bool) (int, error) {
	o.Stdout, o.Stderr = e.stdout, e.stderr
	if stdin {
		o.Stdin = e.stdin
	}
	in, _ := e.stdin.(*os.File)
	if o.TTY && in != nil && term.IsTerminal(int(in.Fd())) {
		if cols, rows, err := term.GetSize(int(in.Fd())); err == nil {
			o.Size = apitypes.TermSize{Cols: uint16(cols), Rows: uint16(rows)}
		}
		if stdin {
			old, err := term.MakeRaw(int(in.Fd()))
			if err != nil {
				return -1, fmt.Errorf("raw mode on the terminal: %w", err)
			}
			// Raw mode hands ^C and the like to the command: the
			// session ends when the command does.
			defer term.Restore(int(in.Fd()), old)
		}
		resize := make(chan apitypes.TermSize, 1)
		stop := onResize(func() {
			if cols, rows, err := term.GetSize(int(in.Fd())); err == nil {
				select {
				case <-resize:
				default:
				}
				resize <- apitypes.TermSize{Cols: uint16(cols), Rows: uint16(rows)}
			}
		})
		defer stop()
		o.Resize = resize
	}
	return c.Apps().Exec(ctx, app, o)
}

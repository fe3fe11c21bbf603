package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// secretCmd is `wharf secret set|unset|ls APP ...`: an app's secrets,
// injected into its instances' environment. Values are never shown.
func (e *env) secretCmd() *cobra.Command {
	var wait waitFlags
	var fromFile []string
	var fromStdin string
	set := &cobra.Command{Use: "set APP [NAME=VALUE...] [--from-file NAME=PATH...] [--from-stdin NAME]",
		Short: "Set secrets of an app (merged with the others) and wait until the app rolled out with them",
		Long: `Set secrets of an app (merged with the others) and wait until the app rolled out with them.

A value given as NAME=VALUE is visible to other users of this machine (in the
process list) and stays in the shell's history: prefer --from-file or
--from-stdin for real secrets. Both take the bytes exactly as they are (no
trailing newline is dropped: printf '%s' "$PW" | wharf secret set web
--from-stdin DB_PASSWORD).`,
		Args: cobra.MinimumNArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if len(args) < 2 && len(fromFile) == 0 && fromStdin == "" {
				return usagef("give at least one NAME=VALUE, --from-file NAME=PATH or --from-stdin NAME after the app's name")
			}
			req := apitypes.SecretsRequest{}
			if len(args) > 1 {
				var err error
				if req, err = apitypes.ParseSecretArgs(args[1:]); err != nil {
					return usagef("%v", err)
				}
			}
			if err := e.secretValues(req, fromFile, fromStdin); err != nil {
				return err
			}
			if err := req.Validate(); err != nil {
				return usagef("%v", err)
			}
			s, err := c.Apps().SetSecrets(cmd.Context(), args[0], req, e.write())
			if err != nil {
				return err
			}
			return e.secretsDone(cmd, c, wait, s, "set")
		})}
	wait.add(set)
	set.Flags().StringArrayVar(&fromFile, "from-file", nil, "NAME=PATH: the secret's value is the file's content (repeatable)")
	set.Flags().StringVar(&fromStdin, "from-stdin", "", "NAME: the secret's value is everything read from standard input")
	var unwait waitFlags
	unset := &cobra.Command{Use: "unset APP NAME [NAME...]",
		Short: "Remove secrets of an app and wait until the app rolled out without them",
		Args:  cobra.MinimumNArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if len(args) < 2 {
				return usagef("name at least one secret after the app's name")
			}
			for _, name := range args[1:] {
				if err := apitypes.CheckSecretName(name); err != nil {
					return usagef("%v", err)
				}
			}
			for _, name := range args[1:] {
				if err := c.Apps().UnsetSecret(cmd.Context(), args[0], name, e.write()); err != nil {
					return err
				}
			}
			s, _, err := c.Apps().Secrets(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.secretsDone(cmd, c, unwait, s, "unset")
		})}
	unwait.add(unset)
	ls := &cobra.Command{Use: "ls APP", Short: "List the names of an app's secrets (never their values)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			s, _, err := c.Apps().Secrets(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(s.Names))
			for _, n := range s.Names {
				rows = append(rows, []string{n})
			}
			return e.print(s, []string{"NAME"}, rows)
		})}
	return group("secret", "Manage apps' secrets (sealed at rest, injected into the instances' environment)", set, unset, ls)
}

// secretValues adds to req the values read from files and standard
// input; a name given twice, in any form, is a usage error.
func (e *env) secretValues(req apitypes.SecretsRequest, fromFile []string, fromStdin string) error {
	add := func(name string, r io.Reader, from string) error {
		if err := apitypes.CheckSecretName(name); err != nil {
			return usagef("%v", err)
		}
		if _, dup := req[name]; dup {
			return usagef("secret %s given twice", name)
		}
		// One byte over the limit is enough to refuse it.
		b, err := io.ReadAll(io.LimitReader(r, apitypes.MaxSecretValue+1))
		if err != nil {
			return fmt.Errorf("read secret %s from %s: %w", name, from, err)
		}
		req[name] = string(b)
		return nil
	}
	for _, f := range fromFile {
		name, path, ok := strings.Cut(f, "=")
		if !ok || path == "" {
			return usagef("--from-file %q is not NAME=PATH", f)
		}
		fh, err := os.Open(path)
		if err != nil {
			return usagef("--from-file %s: %v", name, err)
		}
		err = add(name, fh, path)
		fh.Close()
		if err != nil {
			return err
		}
	}
	if fromStdin != "" {
		return add(fromStdin, e.stdin, "standard input")
	}
	return nil
}

// secretsDone reports a change of an app's secrets and, unless detached,
// waits for the version it made to roll out.
func (e *env) secretsDone(cmd *cobra.Command, c *client.Client, w waitFlags, s *apitypes.Secrets, verb string) error {
	if e.output == "table" {
		fmt.Fprintf(e.stdout, "secrets of app %s %s; it has %s (version %d)\n", s.App, verb, names(s.Names), s.Version)
	}
	if !w.detach {
		a, err := e.waitRollout(cmd.Context(), c, s.App, s.Version, w.timeout)
		if err != nil {
			return err
		}
		if e.output == "table" {
			fmt.Fprintf(e.stdout, "app %s version %d: %s ready\n", a.Name, a.Version, plural(deref(a.Instances), "instance"))
		}
	}
	if e.output != "table" {
		return e.print(s, nil, nil)
	}
	return nil
}

func names(ns []string) string {
	if len(ns) == 0 {
		return "no secrets"
	}
	return strings.Join(ns, ", ")
}

package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// secretCmd is `wharf secret set|unset|ls APP ...`: an app's secrets,
// injected into its instances' environment. Values are never shown.
func (e *env) secretCmd() *cobra.Command {
	var wait waitFlags
	set := &cobra.Command{Use: "set APP NAME=VALUE [NAME=VALUE...]",
		Short: "Set secrets of an app (merged with the others) and wait until the app rolled out with them",
		Args:  cobra.MinimumNArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if len(args) < 2 {
				return usagef("give at least one NAME=VALUE after the app's name")
			}
			req, err := apitypes.ParseSecretArgs(args[1:])
			if err != nil {
				return usagef("%v", err)
			}
			s, err := c.Apps().SetSecrets(cmd.Context(), args[0], req, e.write())
			if err != nil {
				return err
			}
			return e.secretsDone(cmd, c, wait, s, "set")
		})}
	wait.add(set)
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

package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// appVerbCmds are `wharf app restart|stop|start NAME`: each waits, like
// scale, until the change has rolled out (--detach does not).
func (e *env) appVerbCmds() []*cobra.Command {
	verbs := []struct {
		use, short, done string
		call             func(a *client.Apps, ctx context.Context, name string, o *client.WriteOptions) (*apitypes.App, error)
	}{
		{"restart", "Replace every instance of an app (same spec, new version) and wait until it runs", "restarting app %s as version %d\n", (*client.Apps).Restart},
		{"stop", "Run no instance of an app, remembering its count, and wait until every instance stopped", "stopping app %s (version %d)\n", (*client.Apps).Stop},
		{"start", "Run a stopped app's remembered count again and wait until it runs", "starting app %s (version %d)\n", (*client.Apps).Start},
	}
	var cmds []*cobra.Command
	for _, v := range verbs {
		var wait waitFlags
		cmd := &cobra.Command{Use: v.use + " NAME", Short: v.short, Args: cobra.ExactArgs(1),
			RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
				a, err := v.call(c.Apps(), cmd.Context(), args[0], e.write())
				if err != nil {
					return err
				}
				if e.output == "table" {
					fmt.Fprintf(e.stdout, v.done, a.Name, a.Version)
				}
				return e.finish(cmd, c, wait, a, a.Version)
			})}
		wait.add(cmd)
		cmds = append(cmds, cmd)
	}
	return cmds
}

// hostUndrainCmd is `wharf host undrain ID`.
func (e *env) hostUndrainCmd() *cobra.Command {
	return &cobra.Command{Use: "undrain ID", Short: "Make a draining or drained host ready again", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			h, err := c.Hosts().Undrain(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(h, nil, nil)
			}
			fmt.Fprintf(e.stdout, "host %s is %s\n", h.Name, h.State)
			return nil
		})}
}

// auditCmd is `wharf audit [--since 1h] [--limit N] [--tenant T]`.
func (e *env) auditCmd() *cobra.Command {
	var since string
	var limit int
	cmd := &cobra.Command{Use: "audit [--since 1h] [--limit N]",
		Short: "List the audit log: every mutating request, who made it and how it ended (admin: all or --tenant; tenant-admin: its tenant's)",
		Args:  cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if since != "" {
				if d, err := time.ParseDuration(since); err != nil || d < 0 {
					if _, err := time.Parse(time.RFC3339, since); err != nil {
						return usagef("--since must be a duration such as 1h or an RFC 3339 time, not %q", since)
					}
				}
			}
			if limit < 0 {
				return usagef("--limit must be 0 (the server's default) or more, not %d", limit)
			}
			es, err := c.Audit(cmd.Context(), client.AuditQuery{Since: since, Limit: limit}, e.query())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(es))
			for _, a := range es {
				actor := a.Actor
				if actor == "" {
					actor = "(no valid token)"
				} else if a.ActorID != "" {
					actor += " (" + a.ActorID + ")"
				}
				rows = append(rows, []string{a.Time.UTC().Format(time.RFC3339), actor, orDash(a.Role), orDash(a.Tenant), a.Method, a.Path, strconv.Itoa(a.Status), orDash(a.Object)})
			}
			return e.print(es, []string{"TIME", "ACTOR", "ROLE", "TENANT", "METHOD", "PATH", "STATUS", "OBJECT"}, rows)
		})}
	cmd.Flags().StringVar(&since, "since", "", "only entries since this long ago (1h) or this RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many of the newest entries (0: the server's default, 1000)")
	return cmd
}

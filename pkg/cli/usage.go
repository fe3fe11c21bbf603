package cli

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// usageCmd is `wharf usage [--tenant T] [--app A] [--from T] [--to T]
// [--group hour|day|app]`: metered usage per app and period.
func (e *env) usageCmd() *cobra.Command {
	var app, from, to, group string
	cmd := &cobra.Command{Use: "usage [--app A] [--from RFC3339] [--to RFC3339] [--group hour|day|app]",
		Short: "Show metered usage per app (default: this month, per hour; the open hour is not final)",
		Args:  cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			q := client.UsageQuery{App: app, Group: group}
			for _, f := range []struct {
				name, v string
				into    *time.Time
			}{{"--from", from, &q.From}, {"--to", to, &q.To}} {
				if f.v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, f.v)
				if err != nil {
					return usagef("%s must be an RFC 3339 time such as 2026-12-01T00:00:00Z, not %q", f.name, f.v)
				}
				*f.into = t
			}
			switch group {
			case "", apitypes.UsageByHour, apitypes.UsageByDay, apitypes.UsageByApp:
			default:
				return usagef("--group must be hour, day or app, not %q", group)
			}
			us, err := c.Usage(cmd.Context(), q, e.query())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(us))
			for _, u := range us {
				final := "no"
				if u.Final {
					final = "yes"
				}
				rows = append(rows, []string{u.Tenant, u.App, u.From.UTC().Format(time.RFC3339), u.To.UTC().Format(time.RFC3339),
					strconv.FormatInt(u.InstanceSeconds, 10), string(u.CPUCoreSeconds), string(u.MemoryGBSeconds),
					strconv.FormatInt(u.Requests, 10), strconv.FormatInt(u.EgressBytes, 10), strconv.FormatInt(u.LogBytes, 10), final})
			}
			return e.print(us, []string{"TENANT", "APP", "FROM", "TO", "INSTANCE-S", "CPU-CORE-S", "MEMORY-GB-S", "REQUESTS", "EGRESS-BYTES", "LOG-BYTES", "FINAL"}, rows)
		})}
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "only this app")
	f.StringVar(&from, "from", "", "start (RFC 3339; default: the start of this month, UTC)")
	f.StringVar(&to, "to", "", "end (RFC 3339; default: now)")
	f.StringVar(&group, "group", "", "hour (default), day (UTC) or app")
	return cmd
}

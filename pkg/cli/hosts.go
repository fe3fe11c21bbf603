package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

func (e *env) joinTokenCmd() *cobra.Command {
	var req apitypes.JoinTokenRequest
	var ttl time.Duration
	create := &cobra.Command{Use: "create", Short: "Create a join token for agents of one pool (shown once)", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			req.TTL = apitypes.Duration(ttl)
			t, err := c.JoinTokens().Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(t, nil, nil)
			}
			fmt.Fprintf(e.stdout, "Join token %s for pool %s, expires %s, shown once:\n%s\n", t.ID, t.Pool, t.ExpiresAt.Format(time.RFC3339), t.Token)
			return nil
		})}
	create.Flags().StringVar(&req.Pool, "pool", "", "the pool agents join")
	create.Flags().DurationVar(&ttl, "ttl", apitypes.DefaultJoinTokenTTL, "how long the token is valid")
	create.Flags().IntVar(&req.Uses, "uses", 0, "how many agents may use it (0: unlimited)")
	_ = create.MarkFlagRequired("pool")
	ls := &cobra.Command{Use: "ls", Short: "List join tokens", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ts, _, err := c.JoinTokens().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, t := range ts {
				uses := fmt.Sprintf("%d/%d", t.Used, t.Uses)
				if t.Uses == 0 {
					uses = fmt.Sprintf("%d/unlimited", t.Used)
				}
				rows = append(rows, []string{t.ID, t.Pool, uses, t.ExpiresAt.Format(time.RFC3339)})
			}
			return e.print(ts, []string{"ID", "POOL", "USED", "EXPIRES"}, rows)
		})}
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke a join token", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.JoinTokens().Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked join token %s\n", args[0])
			return nil
		})}
	return group("join-token", "Manage agent join tokens", create, ls, revoke)
}

// ago formats an optional past time as "1.2s ago (2026-...)".
func ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprintf("%s ago (%s)", time.Since(*t).Round(100*time.Millisecond), t.Format(time.RFC3339))
}

// until formats an optional future time as "in 23h59m (2026-...)".
func until(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprintf("in %s (%s)", time.Until(*t).Round(time.Second), t.Format(time.RFC3339))
}

func (e *env) hostCmd() *cobra.Command {
	var pool string
	ls := &cobra.Command{Use: "ls", Short: "List hosts", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			hs, _, err := c.Hosts().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			var shown []apitypes.Host
			for _, h := range hs {
				if pool != "" && h.Pool != pool {
					continue
				}
				shown = append(shown, h)
				st := h.State
				if h.Disconnected {
					st += " (disconnected)"
				}
				rows = append(rows, []string{h.ID, h.Name, h.Pool, h.Datacenter, st, strconv.Itoa(h.CPUs), orDash(h.AgentVersion), age(h.EnrolledAt)})
			}
			return e.print(shown, []string{"ID", "NAME", "POOL", "DATACENTER", "STATE", "CPUS", "AGENT", "AGE"}, rows)
		})}
	ls.Flags().StringVar(&pool, "pool", "", "only hosts of this pool")
	show := &cobra.Command{Use: "show ID", Short: "Show a host", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			h, _, err := c.Hosts().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printKV(h, [][2]string{{"ID", h.ID}, {"Name", h.Name}, {"Pool", h.Pool}, {"Datacenter", h.Datacenter},
				{"State", h.State}, {"Disconnected", strconv.FormatBool(h.Disconnected)}, {"OS/Arch", orDash(strings.Trim(h.OS+"/"+h.Arch, "/"))},
				{"CPUs", strconv.Itoa(h.CPUs)}, {"Memory", fmt.Sprintf("%d MB", h.MemoryBytes>>20)}, {"Drivers", orDash(strings.Join(h.Drivers, ","))}, {"Agent version", orDash(h.AgentVersion)},
				{"Disk", fmt.Sprintf("%d GB", h.DiskBytes>>30)}, {"Addresses", orDash(strings.Join(h.Addresses, ","))},
				{"Provider", orDash(strings.Trim(h.Provider+" "+h.Region+" "+h.Zone, " "))}, {"Labels", labels(h.Labels)},
				{"Enrolled", age(h.EnrolledAt) + " ago"}, {"Last heartbeat", ago(h.LastHeartbeat)}, {"Hub node", orDash(h.HubNode)},
				{"Machine", orDash(strings.TrimSpace(h.Machine + " " + h.ProviderID))},
				{"Certificate expires", until(h.CertNotAfter)}})
		})}
	drain := &cobra.Command{Use: "drain ID", Short: "Mark a host draining", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			h, err := c.Hosts().Drain(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "host %s is %s\n", h.Name, h.State)
			return nil
		})}
	rm := &cobra.Command{Use: "rm ID", Short: "Remove a host (its agent can no longer connect)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			h, _, err := c.Hosts().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			if err := c.Hosts().Remove(cmd.Context(), args[0]); err != nil {
				return err
			}
			if h.Machine != "" {
				fmt.Fprintf(e.stdout, "host %s runs on machine %s: it is drained, then the machine deleted and the host removed\n", args[0], h.Machine)
				return nil
			}
			fmt.Fprintf(e.stdout, "removed host %s\n", args[0])
			return nil
		})}
	return group("host", "Manage enrolled hosts", ls, show, drain, e.hostUndrainCmd(), rm)
}

func (e *env) eventsCmd() *cobra.Command {
	var after uint64
	c := &cobra.Command{Use: "events", Short: "List events (hosts, instances, drills; with a tenant: its apps' canaries, dropped log lines, drain failures, alerts)", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			evs, _, err := c.Events(cmd.Context(), after, e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, ev := range evs {
				rows = append(rows, []string{ev.Time.Format(time.RFC3339), ev.Type, ev.Message})
			}
			return e.print(evs, []string{"TIME", "TYPE", "MESSAGE"}, rows)
		})}
	c.Flags().Uint64Var(&after, "after", 0, "only events after this index")
	return c
}

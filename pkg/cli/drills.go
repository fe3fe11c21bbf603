package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

func (e *env) drillCmd() *cobra.Command {
	var req apitypes.DrillRequest
	run := &cobra.Command{Use: "run (--pool P | --datacenter DC) --mode cutoff|evacuate", Short: "Start a failover drill", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			d, err := c.Drills().Run(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "drill %s started: %s of %s%s, %s; follow it with wharf drill show %s\n", d.ID, d.Mode, d.Pool, d.Datacenter, plural(len(d.Hosts), "host"), d.ID)
			return nil
		})}
	run.Flags().StringVar(&req.Pool, "pool", "", "the pool to drill")
	run.Flags().StringVar(&req.Datacenter, "datacenter", "", "the datacenter to drill")
	run.Flags().StringVar(&req.Mode, "mode", "", "cutoff (behave as lost) or evacuate (move everything off)")
	ls := &cobra.Command{Use: "ls", Short: "List drills", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ds, _, err := c.Drills().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, d := range ds {
				rows = append(rows, []string{d.ID, d.Mode, d.Pool + d.Datacenter, d.State, ms(d.DetectedMs), ms(d.ReadyMs), ms(d.RoutedMs), strconv.FormatUint(d.FailedRequests, 10), age(d.StartedAt)})
			}
			return e.print(ds, []string{"ID", "MODE", "TARGET", "STATE", "DETECTED", "READY", "ROUTED", "FAILED", "AGE"}, rows)
		})}
	show := &cobra.Command{Use: "show ID", Short: "Show a drill's report", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			d, _, err := c.Drills().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printKV(d, [][2]string{{"id", d.ID}, {"mode", d.Mode}, {"target", d.Pool + d.Datacenter}, {"state", d.State},
				{"hosts", strconv.Itoa(len(d.Hosts))}, {"apps", strconv.Itoa(len(d.Apps))},
				{"detected", ms(d.DetectedMs)}, {"replacements scheduled", ms(d.ScheduledMs)}, {"replacements ready", ms(d.ReadyMs)},
				{"routes updated everywhere", ms(d.RoutedMs)}, {"failed requests", strconv.FormatUint(d.FailedRequests, 10)}})
		})}
	end := &cobra.Command{Use: "end ID", Short: "End a drill: the target comes back, failback follows each app's policy", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			d, err := c.Drills().End(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "drill %s ended\n", d.ID)
			return nil
		})}
	return group("drill", "Run failover drills (admin)", run, ls, show, end)
}

// ms prints a drill milestone.
func ms(v int64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%d ms", v)
}

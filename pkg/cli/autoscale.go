package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// autoscaleCmd is `wharf app autoscale APP [flags]` (set or change the
// policy; flags not given keep the current policy's values), `--off`, and
// `wharf app autoscale show APP`.
func (e *env) autoscaleCmd() *cobra.Command {
	var (
		lo, hi, qps, cpu, mem int
		window, delay         time.Duration
		schedules             []string
		off                   bool
	)
	cmd := &cobra.Command{
		Use:   "autoscale APP [--min N] [--max N] [--qps N] [--cpu PCT] [--memory PCT] [--window D] [--scale-down-delay D] [--schedule 'CRON@TZ=MIN:MAX']... | --off",
		Short: "Scale an app by CPU, memory, requests per second and schedules (--off: scale it by hand again)",
		Long: `Scale an app by CPU, memory, requests per second and schedules.

The count is the largest that any target asks for: --qps requests per second
per instance, --cpu and --memory percent of the app's cpu and memory per
instance, averaged over --window (10s). It goes up at once and down only to
the highest count wanted over --scale-down-delay (60s). --min 0 lets an app
with no routed request for the delay scale to zero; a request wakes it.
--schedule 'CRON[@TZ]=MIN[:MAX]' (repeatable) replaces the bounds from when
CRON fires until another schedule fires, e.g. '0 9 * * 1-5@Asia/Shanghai=5:20'.
Flags not given keep the current policy's values. While a policy is set,
'wharf app scale' is refused; --off hands the count back (it stays at the
last decision).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			changed := false
			for _, n := range []string{"min", "max", "qps", "cpu", "memory", "window", "scale-down-delay", "schedule"} {
				changed = changed || f.Changed(n)
			}
			if off && changed {
				return usagef("--off removes the policy: give it alone")
			}
			if !off && !changed {
				return usagef("give the policy's flags (--min, --max, --qps, ...), or --off; 'wharf app autoscale show %s' shows it", args[0])
			}
			var parsed []apitypes.AutoscaleSchedule
			for _, s := range schedules {
				sc, err := apitypes.ParseAutoscaleSchedule(s)
				if err != nil {
					var ae *apitypes.Error
					if errors.As(err, &ae) {
						return usagef("--schedule: %s", ae.Message)
					}
					return usagef("--schedule: %v", err)
				}
				parsed = append(parsed, sc)
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
				ctx := cmd.Context()
				if off {
					a, err := c.Apps().AutoscaleOff(ctx, args[0], e.write())
					if err != nil {
						return err
					}
					if e.output != "table" {
						return e.print(a, nil, nil)
					}
					fmt.Fprintf(e.stdout, "app %s: autoscaling off; it stays at %s\n", a.Name, plural(deref(a.Instances), "instance"))
					return nil
				}
				a, _, err := c.Apps().Get(ctx, args[0], e.query())
				if err != nil {
					return err
				}
				var p apitypes.Autoscale
				if a.Autoscale != nil {
					p = *a.Autoscale
				} else if !f.Changed("max") {
					return usagef("app %s has no autoscale policy yet: --max is required", args[0])
				}
				if f.Changed("min") {
					p.Min = &lo
				}
				set := func(name string, dst *int, v int) {
					if f.Changed(name) {
						*dst = v
					}
				}
				set("max", &p.Max, hi)
				set("qps", &p.QPS, qps)
				set("cpu", &p.CPU, cpu)
				set("memory", &p.Memory, mem)
				if f.Changed("window") {
					p.Window = apitypes.Duration(window)
				}
				if f.Changed("scale-down-delay") {
					p.ScaleDownDelay = apitypes.Duration(delay)
				}
				if f.Changed("schedule") {
					p.Schedules = parsed
				}
				a, err = c.Apps().Autoscale(ctx, args[0], p, e.write())
				if err != nil {
					return err
				}
				if e.output != "table" {
					return e.print(a, nil, nil)
				}
				fmt.Fprintf(e.stdout, "app %s: %s; now %s\n", a.Name, describePolicy(a.Autoscale), plural(deref(a.Instances), "instance"))
				return nil
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&lo, "min", 1, "fewest instances (0: scale to zero when idle)")
	f.IntVar(&hi, "max", 0, "most instances")
	f.IntVar(&qps, "qps", 0, "target routed requests per second per instance (0: none)")
	f.IntVar(&cpu, "cpu", 0, "target CPU in percent of the app's cpu (0: none)")
	f.IntVar(&mem, "memory", 0, "target memory in percent of the app's memory (0: none)")
	f.DurationVar(&window, "window", 0, "what the targets are averaged over (default 10s)")
	f.DurationVar(&delay, "scale-down-delay", 0, "scale down only to the highest count wanted over this (default 60s)")
	f.StringArrayVar(&schedules, "schedule", nil, "CRON[@TZ]=MIN[:MAX]: bounds from when CRON fires (repeatable)")
	f.BoolVar(&off, "off", false, "remove the policy: the count stays and is yours to set")
	cmd.AddCommand(e.autoscaleShowCmd())
	return cmd
}

func (e *env) autoscaleShowCmd() *cobra.Command {
	return &cobra.Command{Use: "show APP", Short: "Show an app's autoscaling: policy, current inputs and bounds, last decisions", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			st, _, err := c.Apps().AutoscaleStatus(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(st, nil, nil)
			}
			if st.Policy == nil {
				fmt.Fprintf(e.stdout, "app %s is not autoscaled (%s)\n", st.App, plural(st.Instances, "instance"))
				return printDecisions(e, st.Decisions)
			}
			pct := func(v *float64) string {
				if v == nil {
					return "-"
				}
				return fmt.Sprintf("%.0f%%", *v)
			}
			last := "-"
			if st.LastRequest != nil {
				last = age(*st.LastRequest) + " ago"
			}
			mode := ""
			if st.Panic {
				mode = " (panic)"
			}
			if err := e.printKV(st, [][2]string{
				{"App", st.App},
				{"Policy", describePolicy(st.Policy)},
				{"Bounds now", fmt.Sprintf("%d to %d (%s)", st.Min, st.Max, orDash(st.Bounds))},
				{"Instances", fmt.Sprintf("%d (%d ready)", st.Instances, st.Ready)},
				{"QPS", fmt.Sprintf("%.1f/s", st.QPS)},
				{"CPU", pct(st.CPU)},
				{"Memory", pct(st.Memory)},
				{"Last request", last},
				{"Wanted", fmt.Sprintf("%d%s: %s", st.Wanted, mode, orDash(st.WantedReason))},
				{"Reason", orDash(st.Reason)},
			}); err != nil {
				return err
			}
			return printDecisions(e, st.Decisions)
		})}
}

func printDecisions(e *env, ds []apitypes.Deployment) error {
	if len(ds) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout, "\nLast decisions:")
	var rows [][]string
	for _, d := range ds {
		rows = append(rows, []string{strconv.Itoa(d.Instances), age(d.Time), d.Message})
	}
	return e.print(ds, []string{"INSTANCES", "AGE", "MESSAGE"}, rows)
}

// describePolicy is a policy on one line.
func describePolicy(p *apitypes.Autoscale) string {
	if p == nil {
		return "none"
	}
	lo := 1
	if p.Min != nil {
		lo = *p.Min
	}
	parts := []string{fmt.Sprintf("%d to %d instances", lo, p.Max)}
	if p.QPS > 0 {
		parts = append(parts, fmt.Sprintf("qps %d/instance", p.QPS))
	}
	if p.CPU > 0 {
		parts = append(parts, fmt.Sprintf("cpu %d%%", p.CPU))
	}
	if p.Memory > 0 {
		parts = append(parts, fmt.Sprintf("memory %d%%", p.Memory))
	}
	parts = append(parts, "window "+p.Window.String(), "scale-down delay "+p.ScaleDownDelay.String())
	for _, s := range p.Schedules {
		parts = append(parts, fmt.Sprintf("schedule %q@%s=%d:%d", s.Cron, s.Timezone, s.Min, s.Max))
	}
	return strings.Join(parts, ", ")
}

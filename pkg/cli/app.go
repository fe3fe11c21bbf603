package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// readManifest reads wharf.yaml (or JSON) strictly: unknown fields are
// reported, so typos never pass silently.
func readManifest(path string, stdin io.Reader) (apitypes.AppSpec, error) {
	var spec apitypes.AppSpec
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return spec, usagef("read manifest: %v", err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return spec, usagef("%s: %v", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, usagef("%s: %s", path, strings.TrimPrefix(err.Error(), "json: "))
	}
	return spec, nil
}

func parsePort(s string) (apitypes.Port, error) {
	num, proto, _ := strings.Cut(s, "/")
	n, err := strconv.Atoi(num)
	if err != nil {
		return apitypes.Port{}, usagef("--port %q: want PORT[/tcp|udp]", s)
	}
	return apitypes.Port{ContainerPort: n, Protocol: proto}, nil
}

func (e *env) appCmd() *cobra.Command {
	var (
		file       string
		spec       apitypes.AppSpec
		instances  int
		ports      []string
		envs       []string
		healthPath string
		wait       waitFlags
	)
	deploy := &cobra.Command{
		Use:   "deploy [NAME] (--image IMG | --command CMD | -f wharf.yaml)",
		Short: "Create or update an app and wait until it runs (a new version when image, command, env, resources, ports or health change)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := spec
			if file != "" {
				m, err := readManifest(file, e.stdin)
				if err != nil {
					return err
				}
				s = m
			}
			if len(args) == 1 {
				if s.Name != "" && s.Name != args[0] {
					return usagef("the manifest names app %q, the command line %q", s.Name, args[0])
				}
				s.Name = args[0]
			}
			if s.Name == "" {
				return usagef("name the app: wharf app deploy NAME --image IMG (or a manifest with name)")
			}
			if cmd.Flags().Changed("instances") {
				s.Instances = &instances
			}
			if healthPath != "" {
				s.Health = &apitypes.Health{HTTP: healthPath}
			}
			for _, p := range ports {
				pp, err := parsePort(p)
				if err != nil {
					return err
				}
				s.Ports = append(s.Ports, pp)
			}
			env, err := parseKV("--env", envs)
			if err != nil {
				return err
			}
			if env != nil {
				if s.Env == nil {
					s.Env = map[string]string{}
				}
				for k, v := range env {
					s.Env[k] = v
				}
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				app, created, _, err := c.Apps().Put(cmd.Context(), s, e.write())
				if err != nil {
					return err
				}
				if e.output == "table" {
					if created {
						fmt.Fprintf(e.stdout, "created app %s version %d\n", app.Name, app.Version)
					} else {
						fmt.Fprintf(e.stdout, "updated app %s: version %d\n", app.Name, app.Version)
					}
				}
				return e.finish(cmd, c, wait, app, app.Version)
			})(cmd, args)
		},
	}
	f := deploy.Flags()
	f.StringVarP(&file, "file", "f", "", "manifest (wharf.yaml, or - for stdin)")
	f.StringVar(&spec.Image, "image", "", "container image")
	f.StringSliceVar(&spec.Command, "command", nil, "command and arguments (comma-separated), for the exec driver")
	f.IntVar(&instances, "instances", 1, "desired instances")
	f.IntVar(&spec.CPU, "cpu", 0, "CPU millicores per instance (default 100)")
	f.IntVar(&spec.Memory, "memory", 0, "memory MB per instance (default 128)")
	f.StringArrayVar(&ports, "port", nil, "container port, e.g. 8080 or 53/udp (repeatable)")
	f.StringArrayVar(&envs, "env", nil, "environment variable K=V (repeatable)")
	f.StringSliceVar(&spec.Pools, "pool", nil, "pools in order of preference (repeatable)")
	f.StringVar(&healthPath, "health-path", "", "HTTP health check path on the first port (an instance is ready once it answers 2xx/3xx)")
	wait.add(deploy)

	ls := &cobra.Command{Use: "ls", Short: "List apps", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			as, _, err := c.Apps().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			return e.printApps(as, as)
		})}
	show := &cobra.Command{Use: "show NAME", Short: "Show an app", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			a, _, err := c.Apps().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(a, nil, nil)
			}
			what := a.Image
			if what == "" {
				what = strings.Join(a.Command, " ")
			}
			return e.printKV(a, [][2]string{{"Name", a.Name}, {"Tenant", a.Tenant}, {"Version", fmt.Sprintf("%d (latest %d)", a.Version, a.LatestVersion)},
				{"Image", orDash(what)}, {"Instances", strconv.Itoa(deref(a.Instances))}, {"CPU", fmt.Sprintf("%dm", a.CPU)}, {"Memory", fmt.Sprintf("%d MB", a.Memory)},
				{"Pools", orDash(strings.Join(a.Pools, ","))}, {"Updated", age(a.UpdatedAt) + " ago"}})
		})}
	rm := &cobra.Command{Use: "rm NAME", Short: "Delete an app", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Apps().Delete(cmd.Context(), args[0], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted app %s\n", args[0])
			return nil
		})}
	var scaleWait, rollbackWait, promoteWait, abortWait waitFlags
	scale := &cobra.Command{Use: "scale NAME INSTANCES", Short: "Set the desired instance count and wait until it runs", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return usagef("INSTANCES must be a number, not %q", args[1])
			}
			if n < 0 {
				return usagef("INSTANCES must be 0 or more, not %d", n)
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
				a, err := c.Apps().Scale(cmd.Context(), args[0], n, e.write())
				if err != nil {
					return err
				}
				if e.output == "table" {
					fmt.Fprintf(e.stdout, "scaled app %s to %s\n", a.Name, plural(deref(a.Instances), "instance"))
				}
				return e.finish(cmd, c, scaleWait, a, a.Version)
			})(cmd, args)
		}}
	scaleWait.add(scale)
	// "-3" looks like a flag to the parser: say what is wrong with it.
	scale.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if n := e.negativeNumber(); n != "" {
			return usagef("INSTANCES must be 0 or more, not %s (wharf app scale NAME INSTANCES)", n)
		}
		return flagError(cmd, err)
	})
	rollback := &cobra.Command{Use: "rollback NAME VERSION", Short: "Make an earlier version current again and wait until it runs", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[1])
			if err != nil {
				return usagef("VERSION must be a number, not %q", args[1])
			}
			if v < 1 {
				return usagef("VERSION must be 1 or more, not %d", v)
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
				a, err := c.Apps().Rollback(cmd.Context(), args[0], v, e.write())
				if err != nil {
					return err
				}
				if e.output == "table" {
					fmt.Fprintf(e.stdout, "app %s is at version %d\n", a.Name, a.Version)
				}
				return e.finish(cmd, c, rollbackWait, a, a.Version)
			})(cmd, args)
		}}
	rollbackWait.add(rollback)
	rollback.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if n := e.negativeNumber(); n != "" {
			return usagef("VERSION must be 1 or more, not %s (wharf app rollback NAME VERSION)", n)
		}
		return flagError(cmd, err)
	})
	versions := &cobra.Command{Use: "versions NAME", Short: "List an app's versions; CURRENT marks the one that runs", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			vs, _, err := c.Apps().Versions(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(vs, nil, nil)
			}
			a, _, err := c.Apps().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, v := range vs {
				what := v.Spec.Image
				if what == "" {
					what = strings.Join(v.Spec.Command, " ")
				}
				rows = append(rows, []string{versionMark(a, v.Version), strconv.Itoa(v.Version), orDash(what), fmt.Sprintf("%dm", v.Spec.CPU), fmt.Sprintf("%d MB", v.Spec.Memory), age(v.CreatedAt)})
			}
			return e.print(vs, []string{"CURRENT", "VERSION", "IMAGE", "CPU", "MEMORY", "AGE"}, rows)
		})}
	history := &cobra.Command{Use: "history NAME", Short: "Show an app's deployments, rollbacks and scalings", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ds, _, err := c.Apps().History(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, d := range ds {
				rows = append(rows, []string{strconv.FormatUint(d.Index, 10), d.Kind, strconv.Itoa(d.Version), strconv.Itoa(d.Instances), orDash(d.Strategy), age(d.Time), d.Message})
			}
			return e.print(ds, []string{"INDEX", "KIND", "VERSION", "INSTANCES", "STRATEGY", "AGE", "MESSAGE"}, rows)
		})}
	instancesCmd := &cobra.Command{Use: "instances NAME", Short: "List an app's instances", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			is, _, err := c.Apps().Instances(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printInstances(is)
		})}
	statusCmd := &cobra.Command{Use: "status NAME", Short: "Show an app's rollout: instances wanted, placed, started, ready, and why any are not", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			is, _, err := c.Apps().Instances(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			a, _, err := c.Apps().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printStatus(summarize(a, is))
		})}
	promote := &cobra.Command{Use: "promote NAME", Short: "Roll a canary's version out to every instance", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			a, err := c.Apps().Promote(cmd.Context(), args[0], e.write())
			if err != nil {
				return err
			}
			if e.output == "table" {
				fmt.Fprintf(e.stdout, "app %s: version %d promoted\n", a.Name, a.Version)
			}
			return e.finish(cmd, c, promoteWait, a, a.Version)
		})}
	promoteWait.add(promote)
	failback := &cobra.Command{Use: "failback NAME", Short: "Move instances in failover pools back to the app's own pools", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if _, err := c.Apps().Failback(cmd.Context(), args[0], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "app %s: failing back to its own pools\n", args[0])
			return nil
		})}
	abort := &cobra.Command{Use: "abort NAME", Short: "End a canary: the version it replaced is current again", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			a, err := c.Apps().Abort(cmd.Context(), args[0], e.write())
			if err != nil {
				return err
			}
			if e.output == "table" {
				fmt.Fprintf(e.stdout, "app %s: canary aborted, back to version %d\n", a.Name, a.Version)
			}
			return e.finish(cmd, c, abortWait, a, a.Version)
		})}
	abortWait.add(abort)
	subs := []*cobra.Command{deploy, ls, show, rm, scale, rollback, versions, history, instancesCmd, statusCmd, promote, abort, failback, e.statsCmd(), e.metricsCmd(), e.logsCmd(), e.autoscaleCmd(), e.appExecCmd()}
	return group("app", "Deploy and manage apps", append(subs, e.appVerbCmds()...)...)
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func (e *env) printApps(v any, as []apitypes.App) error {
	var rows [][]string
	for _, a := range as {
		what := a.Image
		if what == "" {
			what = strings.Join(a.Command, " ")
		}
		rows = append(rows, []string{a.Tenant, a.Name, strconv.Itoa(a.Version), strconv.Itoa(deref(a.Instances)), what, age(a.UpdatedAt)})
	}
	return e.print(v, []string{"TENANT", "NAME", "VERSION", "INSTANCES", "IMAGE", "UPDATED"}, rows)
}

// versionMark is the CURRENT column of `app versions`.
func versionMark(a *apitypes.App, v int) string {
	switch {
	case v == a.Version && a.CanaryFrom != 0:
		return "* (canary)"
	case v == a.Version:
		return "*"
	case v == a.CanaryFrom:
		return "* (canary base)"
	}
	return ""
}

// instanceState is the STATE column: the state, and "stopping" for an
// instance told to stop that still runs.
func instanceState(i apitypes.Instance) string {
	if i.Desired == "stop" && i.State != "stopping" && !gone(i) {
		return i.State + " (stopping)"
	}
	return i.State
}

// messageWidth is the MESSAGE column's width when the terminal's is not
// known.
const messageWidth = 60

func (e *env) printInstances(is []apitypes.Instance) error {
	if e.output != "table" {
		return e.print(is, nil, nil)
	}
	var rows [][]string
	for _, i := range is {
		why := instanceProblem{Reason: i.Reason, Message: i.Message}.why()
		rows = append(rows, []string{i.ID, orDash(i.HostName), strconv.Itoa(i.Version), instanceState(i), strconv.FormatBool(i.Ready), orDash(i.Address), strconv.Itoa(i.Restarts), age(i.CreatedAt), why})
	}
	header := []string{"ID", "HOST", "VERSION", "STATE", "READY", "ADDRESS", "RESTARTS", "AGE", "MESSAGE"}
	// The message is the last column: it gets what the others leave.
	room := messageWidth
	if w := width(e.stdout); w > 0 {
		used := 0
		for col := 0; col < len(header)-1; col++ {
			n := len(header[col])
			for _, r := range rows {
				n = max(n, len(r[col]))
			}
			used += n + 2
		}
		room = max(w-used, 20)
	}
	for _, r := range rows {
		r[len(r)-1] = orDash(shorten(r[len(r)-1], room))
	}
	return e.print(is, header, rows)
}

func (e *env) printStatus(st appStatus) error {
	if e.output != "table" {
		return e.print(st, nil, nil)
	}
	version := strconv.Itoa(st.Version)
	if st.CanaryFrom != 0 {
		version += fmt.Sprintf(" (canary beside version %d)", st.CanaryFrom)
	}
	wanted := strconv.Itoa(st.Wanted)
	if st.Wanted != st.Instances {
		wanted += fmt.Sprintf(" (of %d)", st.Instances)
	}
	rolled := "no"
	if st.Done {
		rolled = "yes"
	}
	kv := [][2]string{{"Name", st.Name}, {"Version", version}, {"Wanted", wanted},
		{"Placed", strconv.Itoa(st.Placed)}, {"Started", strconv.Itoa(st.Started)}, {"Ready", strconv.Itoa(st.Ready)}}
	if st.Others > 0 {
		kv = append(kv, [2]string{"Other versions", plural(st.Others, "instance") + " still running"})
	}
	if st.Stopping > 0 {
		kv = append(kv, [2]string{"Stopping", plural(st.Stopping, "instance")})
	}
	kv = append(kv, [2]string{"Rolled out", rolled}, [2]string{"Pending", orDash(st.Pending)})
	if err := e.printKV(st, kv); err != nil {
		return err
	}
	if len(st.Problems) > 0 {
		fmt.Fprintln(e.stdout, "Not ready:")
		for _, p := range st.Problems {
			fmt.Fprintf(e.stdout, "  %s\n", p.line())
		}
	}
	return nil
}

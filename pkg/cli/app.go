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
	)
	deploy := &cobra.Command{
		Use:   "deploy [NAME] (--image IMG | --command CMD | -f wharf.yaml)",
		Short: "Create or update an app (a new version when image, command, env, resources, ports or health change)",
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
				if e.output != "table" {
					return e.print(app, nil, nil)
				}
				if created {
					fmt.Fprintf(e.stdout, "created app %s version %d\n", app.Name, app.Version)
				} else {
					fmt.Fprintf(e.stdout, "updated app %s: version %d\n", app.Name, app.Version)
				}
				return nil
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
	scale := &cobra.Command{Use: "scale NAME INSTANCES", Short: "Set the desired instance count", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return usagef("INSTANCES must be a number, not %q", args[1])
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
				a, err := c.Apps().Scale(cmd.Context(), args[0], n, e.write())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "scaled app %s to %d instances\n", a.Name, deref(a.Instances))
				return nil
			})(cmd, args)
		}}
	rollback := &cobra.Command{Use: "rollback NAME VERSION", Short: "Make an earlier version current again", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[1])
			if err != nil {
				return usagef("VERSION must be a number, not %q", args[1])
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
				a, err := c.Apps().Rollback(cmd.Context(), args[0], v, e.write())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "app %s is at version %d\n", a.Name, a.Version)
				return nil
			})(cmd, args)
		}}
	versions := &cobra.Command{Use: "versions NAME", Short: "List an app's versions", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			vs, _, err := c.Apps().Versions(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, v := range vs {
				rows = append(rows, []string{strconv.Itoa(v.Version), orDash(v.Spec.Image), fmt.Sprintf("%dm", v.Spec.CPU), fmt.Sprintf("%d MB", v.Spec.Memory), age(v.CreatedAt)})
			}
			return e.print(vs, []string{"VERSION", "IMAGE", "CPU", "MEMORY", "AGE"}, rows)
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
			var rows [][]string
			for _, i := range is {
				st := i.State
				if i.Desired == "stop" && i.State != "stopped" {
					st += " (stopping)"
				}
				rows = append(rows, []string{i.ID, orDash(i.HostName), strconv.Itoa(i.Version), st, strconv.FormatBool(i.Ready), orDash(i.Address), strconv.Itoa(i.Restarts), age(i.CreatedAt)})
			}
			return e.print(is, []string{"ID", "HOST", "VERSION", "STATE", "READY", "ADDRESS", "RESTARTS", "AGE"}, rows)
		})}
	statusCmd := &cobra.Command{Use: "status NAME", Short: "Show an app's rollout: instances wanted, placed, ready, and why any are pending", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			a, _, err := c.Apps().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			is, _, err := c.Apps().Instances(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			running, ready, current := 0, 0, 0
			for _, i := range is {
				if i.Desired != "run" {
					continue
				}
				if i.State == "running" {
					running++
				}
				if i.Ready {
					ready++
				}
				if i.Version == a.Version {
					current++
				}
			}
			return e.printKV(a, [][2]string{{"Name", a.Name}, {"Version", strconv.Itoa(a.Version)}, {"Wanted", strconv.Itoa(deref(a.Instances))},
				{"Placed (current version)", strconv.Itoa(current)}, {"Running", strconv.Itoa(running)}, {"Ready", strconv.Itoa(ready)}, {"Pending", orDash(a.Pending)}})
		})}
	promote := &cobra.Command{Use: "promote NAME", Short: "Roll a canary's version out to every instance", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			a, err := c.Apps().Promote(cmd.Context(), args[0], e.write())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "app %s: version %d promoted\n", a.Name, a.Version)
			return nil
		})}
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
			fmt.Fprintf(e.stdout, "app %s: canary aborted, back to version %d\n", a.Name, a.Version)
			return nil
		})}
	return group("app", "Deploy and manage apps", deploy, ls, show, rm, scale, rollback, versions, history, instancesCmd, statusCmd, promote, abort, failback, e.statsCmd(), e.metricsCmd(), e.logsCmd())
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

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// poolFlags are the flags of pool create and pool update.
type poolFlags struct {
	req            apitypes.PoolRequest
	labels         []string
	template       []string
	minHosts       int
	maxHosts       int
	scaleDownAfter time.Duration
	bootTimeout    time.Duration
}

func (f *poolFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.req.Datacenter, "datacenter", "", "datacenter of the pool (default dc1)")
	fs.StringVar(&f.req.Region, "region", "", "region (a label; provisioned pools create machines in their provider's region)")
	fs.StringVar(&f.req.Provider, "provider", "", "with --template or --max-hosts: the provider account the pool creates its hosts in; else the pool's provider: aws, aliyun, vsphere, openstack, ssh, baremetal or kubernetes")
	fs.StringArrayVar(&f.labels, "label", nil, "label k=v (repeatable)")
	fs.StringSliceVar(&f.req.Drivers, "drivers", nil, "drivers the pool's hosts run: docker, exec, kubernetes (comma-separated); apps none of them runs are refused")
	fs.StringArrayVar(&f.template, "template", nil, "machine template k=v,k2=v2 (repeatable); a list value is ;-separated or its key repeated, e.g. security_groups=sg-1;sg-2 or hosts=10.0.0.1:22 --template hosts=10.0.0.2:22")
	fs.IntVar(&f.minHosts, "min-hosts", 0, "hosts the pool keeps at least")
	fs.IntVar(&f.maxHosts, "max-hosts", 0, "hosts the pool grows to at most")
	fs.DurationVar(&f.scaleDownAfter, "scale-down-after", 0, "an idle host above min-hosts is removed after this long (default 10m)")
	fs.DurationVar(&f.bootTimeout, "boot-timeout", 0, "a machine whose agent has not enrolled after this long is replaced (default 10m)")
}

// provisioning reports whether the flags ask for a provision.
func (f *poolFlags) provisioning(fs *pflag.FlagSet) bool {
	for _, n := range []string{"template", "min-hosts", "max-hosts", "scale-down-after", "boot-timeout"} {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

func (e *env) poolCmd() *cobra.Command {
	var cf poolFlags
	create := &cobra.Command{Use: "create NAME", Short: "Create a pool (with --provider, --template and --max-hosts, one that creates its own hosts)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := cf.req
			req.Name = args[0]
			l, err := parseKV("--label", cf.labels)
			if err != nil {
				return err
			}
			req.Labels = l
			if cf.provisioning(cmd.Flags()) {
				if req.Provider == "" {
					return usagef("a provisioned pool needs --provider ACCOUNT (see wharf provider ls)")
				}
				tmpl, err := parseTemplate(cf.template, nil)
				if err != nil {
					return err
				}
				req.Provision = &apitypes.Provision{Provider: req.Provider, Template: tmpl, MinHosts: cf.minHosts, MaxHosts: cf.maxHosts,
					ScaleDownAfter: apitypes.Duration(cf.scaleDownAfter), BootTimeout: apitypes.Duration(cf.bootTimeout)}
				req.Provider = ""
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				p, err := c.Pools().Create(cmd.Context(), req)
				if err != nil {
					return err
				}
				return e.printPools(p, []apitypes.Pool{*p})
			})(cmd, args)
		}}
	cf.register(create.Flags())

	var uf poolFlags
	update := &cobra.Command{Use: "update NAME", Short: "Change a pool: what the flags say, the rest as it is", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			p, _, err := c.Pools().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			req, err := uf.apply(cmd.Flags(), p)
			if err != nil {
				return err
			}
			out, err := c.Pools().Update(cmd.Context(), req)
			if err != nil {
				return err
			}
			return e.printPools(out, []apitypes.Pool{*out})
		})}
	uf.register(update.Flags())

	ls := &cobra.Command{Use: "ls", Short: "List pools", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ps, _, err := c.Pools().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			return e.printPools(ps, ps)
		})}
	show := &cobra.Command{Use: "show NAME", Short: "Show a pool: its provision, capacity and usage, hosts and machines by state", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			p, _, err := c.Pools().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printKV(p, poolKV(p))
		})}
	rm := &cobra.Command{Use: "rm NAME", Short: "Delete a pool", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Pools().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted pool %s\n", args[0])
			return nil
		})}
	return group("pool", "Manage resource pools", create, update, ls, show, rm)
}

// apply returns the whole pool p with what the changed flags say: PUT
// takes the whole pool.
func (f *poolFlags) apply(fs *pflag.FlagSet, p *apitypes.Pool) (apitypes.PoolRequest, error) {
	req := apitypes.PoolRequest{Name: p.Name, Datacenter: p.Datacenter, Region: p.Region, Provider: p.Provider, Labels: p.Labels, Drivers: p.Drivers}
	if p.Provision != nil {
		pr := *p.Provision
		req.Provision = &pr
	}
	if fs.Changed("datacenter") {
		req.Datacenter = f.req.Datacenter
	}
	if fs.Changed("region") {
		req.Region = f.req.Region
	}
	if fs.Changed("drivers") {
		req.Drivers = f.req.Drivers
	}
	if fs.Changed("label") {
		l, err := parseKV("--label", f.labels)
		if err != nil {
			return req, err
		}
		req.Labels = l
	}
	if req.Provision == nil && !f.provisioning(fs) {
		if fs.Changed("provider") {
			req.Provider = f.req.Provider
		}
		return req, nil
	}
	if req.Provision == nil {
		if !fs.Changed("provider") {
			return req, usagef("pool %s creates no hosts yet: give --provider ACCOUNT with --template and --max-hosts", p.Name)
		}
		req.Provision = &apitypes.Provision{}
	}
	pr := req.Provision
	if fs.Changed("provider") {
		pr.Provider = f.req.Provider
	}
	if fs.Changed("template") {
		// Keys given replace theirs; the others stay.
		t, err := parseTemplate(f.template, pr.Template)
		if err != nil {
			return req, err
		}
		pr.Template = t
	}
	if fs.Changed("min-hosts") {
		pr.MinHosts = f.minHosts
	}
	if fs.Changed("max-hosts") {
		pr.MaxHosts = f.maxHosts
	}
	if fs.Changed("scale-down-after") {
		pr.ScaleDownAfter = apitypes.Duration(f.scaleDownAfter)
	}
	if fs.Changed("boot-timeout") {
		pr.BootTimeout = apitypes.Duration(f.bootTimeout)
	}
	return req, nil
}

// parseTemplate turns --template k=v,k2=v2 flags into a JSON object, on
// top of base (an existing template, or nil). A value with ";" or a key
// given more than once becomes a list.
func parseTemplate(flags []string, base json.RawMessage) (json.RawMessage, error) {
	obj := map[string]any{}
	if len(bytes.TrimSpace(base)) > 0 {
		if err := json.Unmarshal(base, &obj); err != nil {
			return nil, fmt.Errorf("the pool's template is not a JSON object: %w", err)
		}
	}
	vals, isList := map[string][]string{}, map[string]bool{}
	var order []string
	for _, fl := range flags {
		for _, kv := range strings.Split(fl, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if k = strings.TrimSpace(k); !ok || k == "" {
				return nil, usagef("--template %q: want KEY=VALUE,KEY=VALUE", fl)
			}
			if _, seen := vals[k]; seen {
				isList[k] = true
			} else {
				order = append(order, k)
				vals[k] = nil
			}
			isList[k] = isList[k] || strings.Contains(v, ";")
			for _, x := range strings.Split(v, ";") {
				if x = strings.TrimSpace(x); x != "" {
					vals[k] = append(vals[k], x)
				}
			}
		}
	}
	for _, k := range order {
		switch v := vals[k]; {
		case isList[k]:
			obj[k] = v
		case len(v) == 1:
			obj[k] = v[0]
		default:
			delete(obj, k) // "k=" removes a key
		}
	}
	return json.Marshal(obj)
}

func (e *env) printPools(v any, ps []apitypes.Pool) error {
	var rows [][]string
	for _, p := range ps {
		prov := "-"
		if pr := p.Provision; pr != nil {
			prov = fmt.Sprintf("%s %d-%d", pr.Provider, pr.MinHosts, pr.MaxHosts)
		}
		rows = append(rows, []string{p.Name, p.Datacenter, orDash(p.Region), orDash(p.Provider), prov, labels(p.Labels), age(p.CreatedAt)})
	}
	return e.print(v, []string{"NAME", "DATACENTER", "REGION", "PROVIDER", "PROVISION", "LABELS", "AGE"}, rows)
}

func poolKV(p *apitypes.Pool) [][2]string {
	kv := [][2]string{{"Name", p.Name}, {"Datacenter", p.Datacenter}, {"Region", orDash(p.Region)}, {"Provider", orDash(p.Provider)},
		{"Labels", orDash(labels(p.Labels))}, {"Drivers", orDash(strings.Join(p.Drivers, ","))}}
	if pr := p.Provision; pr != nil {
		kv = append(kv, [2]string{"Provision", fmt.Sprintf("%s, %d to %d hosts, scale down after %s, boot timeout %s", pr.Provider, pr.MinHosts, pr.MaxHosts, pr.ScaleDownAfter.D(), pr.BootTimeout.D())},
			[2]string{"Template", string(pr.Template)})
	}
	if c := p.Capacity; c != nil {
		kv = append(kv, [2]string{"Capacity", fmt.Sprintf("%dm CPU, %d MB memory (ready hosts)", c.CPU, c.Memory)})
	}
	if u := p.Usage; u != nil {
		kv = append(kv, [2]string{"Usage", fmt.Sprintf("%dm CPU, %d MB memory, %d instances", u.CPU, u.Memory, u.Instances)})
	}
	if p.HostsByState != nil {
		kv = append(kv, [2]string{"Hosts", orDash(counts(p.HostsByState))})
	}
	if p.MachinesByState != nil {
		kv = append(kv, [2]string{"Machines", orDash(counts(p.MachinesByState))})
	}
	return append(kv, [2]string{"Created", p.CreatedAt.Format(time.RFC3339)})
}

// counts shows a count per state, e.g. "ready=2 down=1", states sorted.
func counts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+strconv.Itoa(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// readFileArg reads a value given as @FILE, else returns it as is.
func readFileArg(v string) (string, error) {
	if !strings.HasPrefix(v, "@") {
		return v, nil
	}
	b, err := os.ReadFile(v[1:])
	if err != nil {
		return "", usagef("read %s: %v", v[1:], err)
	}
	return string(b), nil
}

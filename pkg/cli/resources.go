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

// api runs fn with a client; request errors become exit code 1.
func (e *env) api(fn func(cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		return fail(fn(cmd, c, args))
	}
}

func (e *env) tenantCmd() *cobra.Command {
	var req apitypes.TenantRequest
	var logAge time.Duration
	create := &cobra.Command{Use: "create NAME", Short: "Create a tenant", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			req.Name, req.Quota.LogAge = args[0], apitypes.Duration(logAge)
			t, err := c.Tenants().Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			return e.printTenants(t, []apitypes.Tenant{*t})
		})}
	create.Flags().StringSliceVar(&req.Pools, "pools", nil, "pools the tenant may use (default: all)")
	create.Flags().IntVar(&req.Quota.Instances, "quota-instances", 0, "most instances in all (0: no limit)")
	create.Flags().IntVar(&req.Quota.CPU, "quota-cpu", 0, "most CPU millicores in all (0: no limit)")
	create.Flags().IntVar(&req.Quota.Memory, "quota-memory", 0, "most memory MB in all (0: no limit)")
	create.Flags().Int64Var(&req.Quota.LogBytes, "log-bytes", 0, "logs each hub node keeps for the tenant, in bytes (0: the hub's --log-retention-bytes)")
	create.Flags().DurationVar(&logAge, "log-age", 0, "how long the tenant's logs are kept (0: the hub's --log-retention-age)")
	ls := &cobra.Command{Use: "ls", Short: "List tenants", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ts, _, err := c.Tenants().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			return e.printTenants(ts, ts)
		})}
	show := &cobra.Command{Use: "show NAME", Short: "Show a tenant", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			t, _, err := c.Tenants().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printTenants(t, []apitypes.Tenant{*t})
		})}
	rm := &cobra.Command{Use: "rm NAME", Short: "Delete a tenant (it must have no apps)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Tenants().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted tenant %s\n", args[0])
			return nil
		})}
	return group("tenant", "Manage tenants (admin)", create, ls, show, rm)
}

func quota(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func (e *env) printTenants(v any, ts []apitypes.Tenant) error {
	var rows [][]string
	for _, t := range ts {
		rows = append(rows, []string{t.Name, orDash(strings.Join(t.Pools, ",")), quota(t.Quota.Instances), quota(t.Quota.CPU), quota(t.Quota.Memory), age(t.CreatedAt)})
	}
	return e.print(v, []string{"NAME", "POOLS", "MAX INSTANCES", "MAX CPU", "MAX MEMORY", "AGE"}, rows)
}

func (e *env) tokenCmd() *cobra.Command {
	var req apitypes.TokenRequest
	var role string
	create := &cobra.Command{Use: "create", Short: "Create a token (its secret is shown once)", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			req.Role, req.Tenant = apitypes.Role(role), e.tenant
			t, err := c.Tokens().Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(t, nil, nil)
			}
			fmt.Fprintf(e.stdout, "Token %s (%s%s), shown once:\n%s\n", t.ID, t.Role, map[bool]string{true: ", tenant " + t.Tenant}[t.Tenant != ""], t.Secret)
			return nil
		})}
	create.Flags().StringVar(&req.Name, "name", "", "a name to recognise the token by")
	create.Flags().StringVar(&role, "role", "", "admin, tenant-admin, developer or viewer")
	_ = create.MarkFlagRequired("role")
	ls := &cobra.Command{Use: "ls", Short: "List tokens", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ts, _, err := c.Tokens().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, t := range ts {
				rows = append(rows, []string{t.ID, orDash(t.Name), string(t.Role), orDash(t.Tenant), age(t.CreatedAt)})
			}
			return e.print(ts, []string{"ID", "NAME", "ROLE", "TENANT", "AGE"}, rows)
		})}
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Tokens().Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked token %s\n", args[0])
			return nil
		})}
	return group("token", "Manage API tokens", create, ls, revoke)
}

func (e *env) poolCmd() *cobra.Command {
	var req apitypes.PoolRequest
	var lbls []string
	create := &cobra.Command{Use: "create NAME", Short: "Create a pool", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			l, err := parseKV("--label", lbls)
			if err != nil {
				return err
			}
			req.Labels = l
			return e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				p, err := c.Pools().Create(cmd.Context(), req)
				if err != nil {
					return err
				}
				return e.printPools(p, []apitypes.Pool{*p})
			})(cmd, args)
		}}
	create.Flags().StringVar(&req.Datacenter, "datacenter", "", "datacenter of the pool (default dc1)")
	create.Flags().StringVar(&req.Region, "region", "", "region")
	create.Flags().StringVar(&req.Provider, "provider", "", "aws, aliyun, vsphere, openstack, baremetal or kubernetes")
	create.Flags().StringArrayVar(&lbls, "label", nil, "label k=v (repeatable)")
	create.Flags().StringSliceVar(&req.Drivers, "drivers", nil, "drivers the pool's hosts run: docker, exec, kubernetes (comma-separated); apps none of them runs are refused")
	ls := &cobra.Command{Use: "ls", Short: "List pools", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ps, _, err := c.Pools().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			return e.printPools(ps, ps)
		})}
	show := &cobra.Command{Use: "show NAME", Short: "Show a pool", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			p, _, err := c.Pools().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printPools(p, []apitypes.Pool{*p})
		})}
	rm := &cobra.Command{Use: "rm NAME", Short: "Delete a pool", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Pools().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted pool %s\n", args[0])
			return nil
		})}
	return group("pool", "Manage resource pools", create, ls, show, rm)
}

func (e *env) printPools(v any, ps []apitypes.Pool) error {
	var rows [][]string
	for _, p := range ps {
		rows = append(rows, []string{p.Name, p.Datacenter, orDash(p.Region), orDash(p.Provider), labels(p.Labels), age(p.CreatedAt)})
	}
	return e.print(v, []string{"NAME", "DATACENTER", "REGION", "PROVIDER", "LABELS", "AGE"}, rows)
}

func parseKV(flag string, vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q: want KEY=VALUE", flag, v)
		}
		m[k] = val
	}
	return m, nil
}

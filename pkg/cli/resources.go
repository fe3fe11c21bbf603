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
	return group("tenant", "Manage tenants (admin)", create, ls, show, rm, e.setPlanCmd(), e.setBudgetCmd())
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
		rows = append(rows, []string{t.Name, orDash(strings.Join(t.Pools, ",")), quota(t.Quota.Instances), quota(t.Quota.CPU), quota(t.Quota.Memory), orDash(t.Plan), budget(t), age(t.CreatedAt)})
	}
	return e.print(v, []string{"NAME", "POOLS", "MAX INSTANCES", "MAX CPU", "MAX MEMORY", "PLAN", "BUDGET", "AGE"}, rows)
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

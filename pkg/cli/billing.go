package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// planCmd is `wharf plan create|ls|show|rm`.
func (e *env) planCmd() *cobra.Command {
	var req apitypes.PlanRequest
	create := &cobra.Command{Use: "create NAME --currency USD --price instance_hour=0.01,... [--included KEY=QTY,...] [--monthly-fee 5.00]",
		Short: "Create a price plan (admin)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			req.Name = args[0]
			if req.Currency == "" {
				return usagef("--currency is required (an ISO 4217 code such as USD)")
			}
			p, err := c.Plans().Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			return e.printPlan(p)
		})}
	create.Flags().StringVar(&req.Currency, "currency", "", "ISO 4217 currency code (USD, EUR, CNY, JPY...)")
	create.Flags().StringToStringVar(&req.Prices, "price", nil, "prices per unit: instance_hour, cpu_core_hour, memory_gb_hour, requests_million, egress_gb, log_gb (decimals)")
	create.Flags().StringToStringVar(&req.Included, "included", nil, "quantities included per month, same keys (decimals)")
	create.Flags().StringVar(&req.MonthlyFee, "monthly-fee", "", "monthly fee (e.g. 5.00)")
	ls := &cobra.Command{Use: "ls", Short: "List price plans", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ps, _, err := c.Plans().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, p := range ps {
				rows = append(rows, []string{p.Name, p.Currency, orDash(p.MonthlyFee), labels(p.Prices), labels(p.Included)})
			}
			return e.print(ps, []string{"NAME", "CURRENCY", "MONTHLY FEE", "PRICES", "INCLUDED"}, rows)
		})}
	show := &cobra.Command{Use: "show NAME", Short: "Show a price plan", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			p, _, err := c.Plans().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printPlan(p)
		})}
	rm := &cobra.Command{Use: "rm NAME", Short: "Delete a price plan no tenant is on (admin)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Plans().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted plan %s\n", args[0])
			return nil
		})}
	return group("plan", "Manage price plans", create, ls, show, rm)
}

func (e *env) printPlan(p *apitypes.Plan) error {
	kv := [][2]string{{"name", p.Name}, {"currency", p.Currency}, {"monthly fee", orDash(p.MonthlyFee)}}
	for _, k := range []string{"instance_hour", "cpu_core_hour", "memory_gb_hour", "requests_million", "egress_gb", "log_gb"} {
		v := orDash(p.Prices[k])
		if inc := p.Included[k]; inc != "" {
			v += " (" + inc + " included per month)"
		}
		kv = append(kv, [2]string{k, v})
	}
	return e.printKV(p, kv)
}

// setPlanCmd is `wharf tenant set-plan TENANT PLAN`.
func (e *env) setPlanCmd() *cobra.Command {
	return &cobra.Command{Use: "set-plan TENANT PLAN", Short: "Move a tenant to a plan (the first applies from this hour, a change from the next)",
		Args: cobra.ExactArgs(2),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			t, err := c.Tenants().Update(cmd.Context(), args[0], apitypes.TenantUpdate{Plan: &args[1]})
			if err != nil {
				return err
			}
			from := "-"
			if n := len(t.PlanHistory); n > 0 {
				from = t.PlanHistory[n-1].From.Format("2006-01-02T15:04Z07:00")
			}
			if e.output != "table" {
				return e.print(t, nil, nil)
			}
			fmt.Fprintf(e.stdout, "tenant %s: plan %s from %s\n", t.Name, t.Plan, from)
			return nil
		})}
}

// setBudgetCmd is `wharf tenant set-budget TENANT AMOUNT|none [--hard-stop]
// [--webhook URL]`.
func (e *env) setBudgetCmd() *cobra.Command {
	var hardStop bool
	var webhook string
	cmd := &cobra.Command{Use: "set-budget TENANT AMOUNT|none [--hard-stop] [--webhook URL]", Short: "Set a tenant's monthly budget, in its plan's currency",
		Args: cobra.ExactArgs(2),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			amount := args[1]
			if amount == "none" {
				amount = ""
			}
			upd := apitypes.TenantUpdate{Budget: &amount, BudgetHardStop: &hardStop}
			if cmd.Flags().Changed("webhook") {
				upd.BudgetWebhook = &webhook
			}
			t, err := c.Tenants().Update(cmd.Context(), args[0], upd)
			if err != nil {
				return err
			}
			if e.output != "table" {
				return e.print(t, nil, nil)
			}
			if t.Budget == "" {
				fmt.Fprintf(e.stdout, "tenant %s: no budget\n", t.Name)
				return nil
			}
			stop := ""
			if t.BudgetHardStop {
				stop = " (hard stop)"
			}
			fmt.Fprintf(e.stdout, "tenant %s: budget %s per month%s\n", t.Name, t.Budget, stop)
			return nil
		})}
	cmd.Flags().BoolVar(&hardStop, "hard-stop", false, "refuse new instances while the month's total is at or over the budget")
	cmd.Flags().StringVar(&webhook, "webhook", "", "URL the 80% and 100% alerts are posted to (\"\" for none)")
	return cmd
}

// billCmd is `wharf bill ls [--tenant T] [--from DAY] [--to DAY]`.
func (e *env) billCmd() *cobra.Command {
	var from, to string
	ls := &cobra.Command{Use: "ls [--from YYYY-MM-DD] [--to YYYY-MM-DD]", Short: "List daily bills (default: this month up to today)", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			bills, err := c.Bills(cmd.Context(), from, to, e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, b := range bills {
				hours := b.From.Format("15:04") + "-" + b.To.Format("15:04")
				if b.To.Sub(b.From) == 24*time.Hour {
					hours = "all day"
				}
				rows = append(rows, []string{b.Day, b.Tenant, b.Plan, hours, b.Total, b.Currency, fmt.Sprint(b.Final)})
			}
			return e.print(bills, []string{"DAY", "TENANT", "PLAN", "HOURS", "TOTAL", "CURRENCY", "FINAL"}, rows)
		})}
	ls.Flags().StringVar(&from, "from", "", "first day (YYYY-MM-DD)")
	ls.Flags().StringVar(&to, "to", "", "last day, included (YYYY-MM-DD)")
	return group("bill", "Daily bills", ls)
}

// invoiceCmd is `wharf invoice show [--tenant T] [--month YYYY-MM] [-o
// table|json|yaml|csv|html]`; an admin without --tenant gets every tenant's.
func (e *env) invoiceCmd() *cobra.Command {
	var month string
	show := &cobra.Command{Use: "show [--month YYYY-MM]", Short: "Show a monthly invoice (default: this month's, not final yet)", Args: cobra.NoArgs,
		// -o also takes csv and html here: the hub renders them.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch e.output {
			case "table", "json", "yaml", "csv", "html":
				return nil
			}
			return usagef("-o must be table, json, yaml, csv or html, not %q", e.output)
		},
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if e.output == "csv" || e.output == "html" {
				b, err := c.InvoiceDocument(cmd.Context(), month, e.output, e.query())
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(b)
				return err
			}
			b, err := c.InvoiceDocument(cmd.Context(), month, "json", e.query())
			if err != nil {
				return err
			}
			var invs []apitypes.Invoice
			if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
				err = json.Unmarshal(b, &invs)
			} else {
				var inv apitypes.Invoice
				err = json.Unmarshal(b, &inv)
				invs = []apitypes.Invoice{inv}
				if err == nil && e.output != "table" {
					return e.print(inv, nil, nil)
				}
			}
			if err != nil {
				return fmt.Errorf("decode invoices: %w", err)
			}
			if e.output != "table" {
				return e.print(invs, nil, nil)
			}
			return e.printInvoices(invs)
		})}
	show.Flags().StringVar(&month, "month", "", "the month (YYYY-MM; default: this month)")
	return group("invoice", "Monthly invoices", show)
}

func (e *env) printInvoices(invs []apitypes.Invoice) error {
	var rows [][]string
	for _, inv := range invs {
		for _, l := range inv.Lines {
			rows = append(rows, []string{inv.Tenant, inv.Month, l.Plan, l.Item, l.Quantity, l.Unit, l.UnitPrice, l.Amount})
		}
		state := "not final"
		if inv.Final {
			state = "final"
		}
		rows = append(rows, []string{inv.Tenant, inv.Month, "", "TOTAL", "", "", "", inv.Total + " " + inv.Currency + " (" + state + ")"})
	}
	if len(invs) == 0 {
		fmt.Fprintln(e.stdout, "no invoices")
		return nil
	}
	return e.print(invs, strings.Fields("TENANT MONTH PLAN ITEM QUANTITY UNIT UNIT_PRICE AMOUNT"), rows)
}

// budget is a tenant's budget column: the amount, with the hard stop and
// the month's state when known.
func budget(t apitypes.Tenant) string {
	if t.Budget == "" {
		return "-"
	}
	s := t.Budget
	if t.BudgetHardStop {
		s += " (hard stop)"
	}
	if st := t.BudgetStatus; st != nil && st.Over {
		s += ", over"
	}
	return s
}

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// logsCmd is `wharf app logs NAME [-f] [--since 10m] [--instance ID]
// [--grep TEXT]`: lines as "TIME INSTANCE STREAM LINE", or NDJSON with
// -o json.
func (e *env) logsCmd() *cobra.Command {
	var o client.LogOptions
	cmd := &cobra.Command{Use: "logs NAME [-f] [--since 10m] [--instance ID] [--grep TEXT]", Short: "Show (and follow) an app's logs, merged from every instance", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if o.Since < 0 {
				return usagef("--since must be positive")
			}
			o.Tenant = e.tenant
			enc := json.NewEncoder(e.stdout)
			err := c.Apps().Logs(cmd.Context(), args[0], o, func(l apitypes.LogLine) error {
				if e.output == "json" {
					return enc.Encode(l)
				}
				more := ""
				if l.Partial {
					more = " …"
				}
				_, err := fmt.Fprintf(e.stdout, "%s %s %s %s%s\n", l.Time.Format("2006-01-02T15:04:05.000Z07:00"), l.Instance, l.Stream, l.Line, more)
				return err
			})
			if errors.Is(err, client.ErrLogsTruncated) {
				fmt.Fprintf(e.stderr, "warning: %v\n", err)
				return nil
			}
			return err
		})}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().DurationVar(&o.Since, "since", 0, "only lines newer than this (e.g. 10m; default: all retained)")
	cmd.Flags().StringVar(&o.Instance, "instance", "", "only this instance's lines")
	cmd.Flags().StringVar(&o.Grep, "grep", "", "only lines containing this text")
	cmd.Flags().IntVar(&o.Limit, "tail", 0, "only the newest N lines (default 10000)")
	return cmd
}

func (e *env) logDrainCmd() *cobra.Command {
	var rawURL string
	add := &cobra.Command{Use: "add APP --url syslog+tls://HOST:PORT | syslog://HOST:PORT | loki+http://HOST:PORT | es+http://HOST:PORT/INDEX", Short: "Forward an app's logs to syslog (RFC 5424), Loki or Elasticsearch",
		Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if rawURL == "" {
				return usagef("--url is required")
			}
			d, err := c.LogDrains().Add(cmd.Context(), args[0], rawURL, e.write())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "log drain %s: %s -> %s\n", d.ID, d.App, d.URL)
			return nil
		})}
	add.Flags().StringVar(&rawURL, "url", "", "where to send the lines")
	ls := &cobra.Command{Use: "ls APP", Short: "List an app's log drains", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ds, _, err := c.LogDrains().List(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, d := range ds {
				rows = append(rows, []string{d.ID, d.Kind, d.URL, d.CreatedAt.Format(time.RFC3339)})
			}
			return e.print(ds, []string{"ID", "KIND", "URL", "CREATED"}, rows)
		})}
	rm := &cobra.Command{Use: "rm APP ID", Short: "Remove a log drain", Args: cobra.ExactArgs(2),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.LogDrains().Delete(cmd.Context(), args[0], args[1], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed log drain %s\n", args[1])
			return nil
		})}
	return group("log-drain", "Forward app logs to syslog, Loki or Elasticsearch", add, ls, rm)
}

func (e *env) alertCmd() *cobra.Command {
	var r apitypes.AlertRule
	var forDur time.Duration
	add := &cobra.Command{Use: "add [APP] --metric cpu|memory|qps|restarts|host_down (--above V | --below V) [--for 1m] [--pool P] [--webhook URL --secret S]",
		Short: "Alert when an app's (or, admins, a pool's) metric crosses a threshold",
		Args:  cobra.MaximumNArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			rule := r
			if len(args) == 1 {
				rule.App = args[0]
			}
			if (rule.App == "") == (rule.Pool == "") {
				return usagef("name an app (argument) or a pool (--pool), not both")
			}
			if forDur > 0 {
				rule.For = forDur.String()
			}
			out, err := c.Alerts().Add(cmd.Context(), rule, e.write())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "alert rule %s: %s\n", out.ID, describeRule(*out))
			return nil
		})}
	f := add.Flags()
	f.StringVar(&r.Metric, "metric", "", "cpu, memory, qps, restarts (apps); cpu, memory, host_down (pools)")
	f.StringVar(&r.Above, "above", "", "fire above this value: 80% (cpu, memory), 512MiB (memory), 100 (qps, restarts, host_down)")
	f.StringVar(&r.Below, "below", "", "fire below this value")
	f.DurationVar(&forDur, "for", 0, "how long the condition must hold (restarts: the counting window)")
	f.StringVar(&r.Pool, "pool", "", "a pool rule (admins) instead of an app rule")
	f.StringVar(&r.Webhook, "webhook", "", "URL notified (JSON POST) when the rule fires and resolves")
	f.StringVar(&r.Secret, "secret", "", "key of the webhook's HMAC-SHA256 signature (X-Wharf-Signature)")
	ls := &cobra.Command{Use: "ls", Short: "List alert rules and which fire", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			rs, _, err := c.Alerts().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, x := range rs {
				target := x.App
				if x.Pool != "" {
					target = "pool " + x.Pool
				}
				rows = append(rows, []string{x.ID, target, describeRule(x), orDash(x.State), orDash(x.Webhook)})
			}
			return e.print(rs, []string{"ID", "ON", "RULE", "STATE", "WEBHOOK"}, rows)
		})}
	rm := &cobra.Command{Use: "rm ID", Short: "Remove an alert rule", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Alerts().Delete(cmd.Context(), args[0], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed alert rule %s\n", args[0])
			return nil
		})}
	return group("alert", "Manage alert rules", add, ls, rm)
}

func describeRule(r apitypes.AlertRule) string {
	var b strings.Builder
	b.WriteString(r.Metric)
	if r.Above != "" {
		b.WriteString(" above " + r.Above)
	}
	if r.Below != "" {
		b.WriteString(" below " + r.Below)
	}
	if r.For != "" && r.For != "0s" {
		b.WriteString(" for " + r.For)
	}
	return b.String()
}

package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

func (e *env) routeCmd() *cobra.Command {
	var req apitypes.RouteRequest
	add := &cobra.Command{Use: "add APP (--host DOMAIN [--path /P] | --tcp [--port N] --target-port N)", Short: "Route a domain and path, or a router TCP port, to an app",
		Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			r, err := c.Routes().Add(cmd.Context(), args[0], req, e.write())
			if err != nil {
				return err
			}
			if r.TCP {
				fmt.Fprintf(e.stdout, "route %s: router port %d -> %s port %d\n", r.ID, r.Port, r.App, r.TargetPort)
			} else {
				fmt.Fprintf(e.stdout, "route %s: %s%s -> %s\n", r.ID, r.Host, r.Path, r.App)
			}
			return nil
		})}
	add.Flags().StringVar(&req.Host, "host", "", "domain to route (HTTP and HTTPS)")
	add.Flags().StringVar(&req.Path, "path", "", "path prefix (default /)")
	add.Flags().BoolVar(&req.TCP, "tcp", false, "a TCP route on a router port")
	add.Flags().IntVar(&req.Port, "port", 0, "router TCP port, 30000-32767 (default: the lowest free one)")
	add.Flags().IntVar(&req.TargetPort, "target-port", 0, "the instances' container port (default: the app's first port)")
	ls := &cobra.Command{Use: "ls [APP]", Short: "List routes (an app's, with its default route, or the tenant's)", Args: cobra.MaximumNArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			app := ""
			if len(args) == 1 {
				app = args[0]
			}
			rs, _, err := c.Routes().List(cmd.Context(), app, e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, r := range rs {
				id, target := orDash(r.ID), r.Host+r.Path
				if r.Default {
					id = "(default)"
				}
				if r.TCP {
					target = fmt.Sprintf("tcp :%d -> %d", r.Port, r.TargetPort)
				}
				rows = append(rows, []string{id, r.App, target})
			}
			return e.print(rs, []string{"ID", "APP", "ROUTE"}, rows)
		})}
	rm := &cobra.Command{Use: "rm APP ID", Short: "Remove a route", Args: cobra.ExactArgs(2),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Routes().Delete(cmd.Context(), args[0], args[1], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed route %s\n", args[1])
			return nil
		})}
	return group("route", "Manage app routes", add, ls, rm)
}

func (e *env) certCmd() *cobra.Command {
	var domain, certFile, keyFile string
	add := &cobra.Command{Use: "add --domain D --cert FILE --key FILE", Short: "Upload a TLS certificate for a domain", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			cert, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			out, err := c.Certs().Add(cmd.Context(), apitypes.CertRequest{Domain: domain, Cert: string(cert), Key: string(key)}, e.write())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "certificate for %s stored (names %s, expires %s)\n", out.Domain, strings.Join(out.Names, ","), out.NotAfter.Format(time.DateOnly))
			return nil
		})}
	add.Flags().StringVar(&domain, "domain", "", "domain the certificate serves")
	add.Flags().StringVar(&certFile, "cert", "", "PEM certificate (chain, leaf first)")
	add.Flags().StringVar(&keyFile, "key", "", "PEM private key")
	for _, f := range []string{"domain", "cert", "key"} {
		_ = add.MarkFlagRequired(f)
	}
	ls := &cobra.Command{Use: "ls", Short: "List certificates", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			cs, _, err := c.Certs().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, x := range cs {
				rows = append(rows, []string{x.Domain, strings.Join(x.Names, ","), x.NotAfter.Format(time.DateOnly), age(x.CreatedAt)})
			}
			return e.print(cs, []string{"DOMAIN", "NAMES", "EXPIRES", "AGE"}, rows)
		})}
	rm := &cobra.Command{Use: "rm DOMAIN", Short: "Remove a certificate", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Certs().Delete(cmd.Context(), args[0], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed the certificate for %s\n", args[0])
			return nil
		})}
	return group("cert", "Manage TLS certificates", add, ls, rm)
}

// statsCmd is `wharf app stats NAME`: the app's router traffic in 10 s
// rows over the last minutes.
func (e *env) statsCmd() *cobra.Command {
	var since time.Duration
	c := &cobra.Command{Use: "stats NAME", Short: "Show an app's traffic through the routers", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			secs, _, err := c.Apps().Stats(cmd.Context(), args[0], since, e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, r := range trafficRows(secs, 10) {
				rows = append(rows, []string{time.Unix(r.Unix, 0).Format(time.TimeOnly), strconv.FormatUint(r.Requests, 10),
					fmt.Sprintf("%.1f", float64(r.Requests)/10), class(r, 2), class(r, 3), class(r, 4), class(r, 5),
					strconv.FormatUint(r.BytesOut, 10), quantile(r, 0.5), quantile(r, 0.99)})
			}
			return e.print(secs, []string{"TIME", "REQUESTS", "QPS", "2XX", "3XX", "4XX", "5XX", "BYTES", "P50", "P99"}, rows)
		})}
	c.Flags().DurationVar(&since, "since", 5*time.Minute, "how far back (at most 15m)")
	return c
}

// trafficRows sums seconds into rows of width seconds.
func trafficRows(secs []apitypes.TrafficSecond, width int64) []apitypes.TrafficSecond {
	var out []apitypes.TrafficSecond
	for _, s := range secs {
		start := s.Unix - s.Unix%width
		if len(out) == 0 || out[len(out)-1].Unix != start {
			out = append(out, apitypes.TrafficSecond{Unix: start, BoundsMs: s.BoundsMs})
		}
		r := &out[len(out)-1]
		r.Requests += s.Requests
		r.BytesOut += s.BytesOut
		for len(r.Status) < len(s.Status) {
			r.Status = append(r.Status, 0)
		}
		for i, v := range s.Status {
			r.Status[i] += v
		}
		for len(r.Latency) < len(s.Latency) {
			r.Latency = append(r.Latency, 0)
		}
		for i, v := range s.Latency {
			r.Latency[i] += v
		}
	}
	return out
}

func class(r apitypes.TrafficSecond, c int) string {
	if c-1 < len(r.Status) {
		return strconv.FormatUint(r.Status[c-1], 10)
	}
	return "0"
}

// quantile reads q from a row's latency histogram: the upper bound of the
// bucket holding it.
func quantile(r apitypes.TrafficSecond, q float64) string {
	var total uint64
	for _, n := range r.Latency {
		total += n
	}
	if total == 0 {
		return "-"
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, n := range r.Latency {
		seen += n
		if seen >= rank {
			if i < len(r.BoundsMs) {
				return fmt.Sprintf("<%gms", r.BoundsMs[i])
			}
			break
		}
	}
	if len(r.BoundsMs) > 0 {
		return fmt.Sprintf(">%gms", r.BoundsMs[len(r.BoundsMs)-1])
	}
	return "-"
}

// metricsCmd is `wharf app metrics NAME`: per instance, CPU (cores, over
// the last minute) and memory now.
func (e *env) metricsCmd() *cobra.Command {
	return &cobra.Command{Use: "metrics NAME", Short: "Show an app's CPU and memory per instance", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ss, _, err := c.Apps().Metrics(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, s := range ss {
				cpu, mem := "-", "-"
				if pts := s.Metrics["container_cpu_usage_seconds_total"]; len(pts) >= 2 {
					last := pts[len(pts)-1]
					first := pts[0]
					for _, p := range pts {
						if p.T >= last.T-60 {
							first = p
							break
						}
					}
					if last.T > first.T {
						cpu = fmt.Sprintf("%.2f", (last.V-first.V)/float64(last.T-first.T))
					}
				}
				if pts := s.Metrics["container_memory_working_set_bytes"]; len(pts) > 0 {
					mem = fmt.Sprintf("%.1f MB", pts[len(pts)-1].V/(1<<20))
				}
				rows = append(rows, []string{s.ID, orDash(s.Host), cpu, mem})
			}
			return e.print(ss, []string{"INSTANCE", "HOST", "CPU (cores, 1m)", "MEMORY"}, rows)
		})}
}

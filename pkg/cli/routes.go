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
					target = fmt.Sprintf("tcp :%d -> %s", r.Port, strconv.Itoa(r.TargetPort))
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

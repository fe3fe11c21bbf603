package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// providerFlags are the flags of provider add and provider update.
type providerFlags struct {
	req         apitypes.ProviderRequest
	credentials []string
	credsFile   string
}

func (f *providerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.req.Type, "type", "", "aws, aliyun, vsphere, openstack or ssh")
	fs.StringVar(&f.req.Region, "region", "", "the cloud region machines are created in")
	fs.StringVar(&f.req.Endpoint, "endpoint", "", "the cloud's API address, when not its own (vSphere: https://HOST/sdk; OpenStack: Keystone v3; a simulator)")
	fs.BoolVar(&f.req.Insecure, "insecure", false, "do not verify the endpoint's TLS certificate")
	fs.StringArrayVar(&f.credentials, "credential", nil, "credential k=v (repeatable); v=@FILE reads a file (a private key); a map entry is k.KEY=v (host_key_fingerprints.HOST:PORT=SHA256:...)")
	fs.StringVar(&f.credsFile, "credentials-file", "", "the credentials as a JSON object, from a file (- for stdin)")
}

// request builds the request from the flags, the credentials from either
// --credential or --credentials-file.
func (e *env) providerRequest(f *providerFlags, name string) (apitypes.ProviderRequest, error) {
	req := f.req
	req.Name = name
	if req.Type == "" {
		return req, usagef("give --type (%s)", strings.Join(apitypes.ProviderTypes, ", "))
	}
	switch {
	case len(f.credentials) > 0 && f.credsFile != "":
		return req, usagef("give --credential or --credentials-file, not both")
	case f.credsFile != "":
		var b []byte
		var err error
		if f.credsFile == "-" {
			b, err = io.ReadAll(e.stdin)
		} else {
			b, err = os.ReadFile(f.credsFile)
		}
		if err != nil {
			return req, usagef("--credentials-file: %v", err)
		}
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			return req, usagef("--credentials-file %s is not a JSON object", f.credsFile)
		}
		req.Credentials, _ = json.Marshal(obj)
	case len(f.credentials) > 0:
		obj := map[string]any{}
		for _, kv := range f.credentials {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return req, usagef("--credential %q: want KEY=VALUE", strings.SplitN(kv, "=", 2)[0]+"=...")
			}
			v, err := readFileArg(v)
			if err != nil {
				return req, err
			}
			if top, sub, nested := strings.Cut(k, "."); nested {
				m, _ := obj[top].(map[string]string)
				if m == nil {
					m = map[string]string{}
					obj[top] = m
				}
				m[sub] = v
				continue
			}
			obj[k] = v
		}
		req.Credentials, _ = json.Marshal(obj)
	default:
		return req, usagef("give the credentials: --credential KEY=VALUE (repeatable) or --credentials-file FILE")
	}
	return req, nil
}

func (e *env) providerCmd() *cobra.Command {
	var af providerFlags
	add := &cobra.Command{Use: "add NAME", Short: "Add a provider account (its credentials are checked with the cloud, then kept encrypted)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := e.providerRequest(&af, args[0])
			if err != nil {
				return err
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				p, err := c.Providers().Create(cmd.Context(), req)
				if err != nil {
					return err
				}
				return e.printProviders(p, []apitypes.Provider{*p})
			})(cmd, args)
		}}
	af.register(add.Flags())
	var uf providerFlags
	update := &cobra.Command{Use: "update NAME", Short: "Replace a provider account, credentials included (checked again)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := e.providerRequest(&uf, args[0])
			if err != nil {
				return err
			}
			return e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				p, err := c.Providers().Update(cmd.Context(), req)
				if err != nil {
					return err
				}
				return e.printProviders(p, []apitypes.Provider{*p})
			})(cmd, args)
		}}
	uf.register(update.Flags())
	ls := &cobra.Command{Use: "ls", Short: "List provider accounts", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ps, _, err := c.Providers().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			return e.printProviders(ps, ps)
		})}
	show := &cobra.Command{Use: "show NAME", Short: "Show a provider account (never its credentials)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			p, _, err := c.Providers().Get(cmd.Context(), args[0], e.query())
			if err != nil {
				return err
			}
			return e.printKV(p, [][2]string{{"Name", p.Name}, {"Type", p.Type}, {"Region", orDash(p.Region)}, {"Endpoint", orDash(p.Endpoint)},
				{"Insecure", fmt.Sprint(p.Insecure)}, {"Credentials", orDash(p.Credentials)}, {"Pools", orDash(strings.Join(p.Pools, ","))},
				{"Created", p.CreatedAt.Format(time.RFC3339)}})
		})}
	rm := &cobra.Command{Use: "rm NAME", Short: "Delete a provider account (refused while a pool uses it)", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Providers().Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted provider %s\n", args[0])
			return nil
		})}
	return group("provider", "Manage provider accounts (clouds and SSH) that provisioned pools create hosts in", add, update, ls, show, rm)
}

func (e *env) printProviders(v any, ps []apitypes.Provider) error {
	var rows [][]string
	for _, p := range ps {
		rows = append(rows, []string{p.Name, p.Type, orDash(p.Region), orDash(p.Endpoint), orDash(p.Credentials), orDash(strings.Join(p.Pools, ",")), age(p.CreatedAt)})
	}
	return e.print(v, []string{"NAME", "TYPE", "REGION", "ENDPOINT", "CREDENTIALS", "POOLS", "AGE"}, rows)
}

func (e *env) machineCmd() *cobra.Command {
	var pool string
	ls := &cobra.Command{Use: "ls", Short: "List the machines provisioned pools created", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ms, _, err := c.Machines().List(cmd.Context(), pool, e.query())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, m := range ms {
				rows = append(rows, []string{m.ID, m.Pool, m.Provider, orDash(m.ProviderID), m.State, orDash(m.Host), age(m.CreatedAt), orDash(m.Error)})
			}
			return e.print(ms, []string{"ID", "POOL", "PROVIDER", "PROVIDER-ID", "STATE", "HOST", "AGE", "ERROR"}, rows)
		})}
	ls.Flags().StringVar(&pool, "pool", "", "only this pool's machines")
	return group("machine", "Machines of provisioned pools", ls)
}

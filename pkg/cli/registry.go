package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// registryPasswordEnv gives registry add the password when stdin does
// not: a password never travels in argv, where every user of the host
// sees it.
const registryPasswordEnv = "WHARF_REGISTRY_PASSWORD"

// registryPassword reads the password from stdin (--password-stdin: up
// to the first line break) or else from $WHARF_REGISTRY_PASSWORD.
func (e *env) registryPassword(fromStdin bool) (string, error) {
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(e.stdin, 8192))
		if err != nil {
			return "", usagef("--password-stdin: %v", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimSuffix(pw, "\r")
		if pw == "" {
			return "", usagef("--password-stdin: stdin holds no password")
		}
		return pw, nil
	}
	if pw := os.Getenv(registryPasswordEnv); pw != "" {
		return pw, nil
	}
	return "", usagef("give the password on stdin with --password-stdin, or in $%s (never as an argument)", registryPasswordEnv)
}

func (e *env) registryCmd() *cobra.Command {
	var username string
	var passwordStdin bool
	add := &cobra.Command{Use: "add SERVER --username U --password-stdin", Short: "Store the tenant's credentials for a private registry (the password is kept encrypted; adding a server again replaces them)",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return usagef("give --username")
			}
			pw, err := e.registryPassword(passwordStdin)
			if err != nil {
				return err
			}
			req := apitypes.RegistryRequest{Server: args[0], Username: username, Password: pw}
			return e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				r, err := c.Registries().Add(cmd.Context(), req, e.write())
				if err != nil {
					return err
				}
				if e.output != "table" {
					return e.printRegistries(r, nil)
				}
				fmt.Fprintf(e.stdout, "registry %s stored for tenant %s (user %s)\n", r.Server, r.Tenant, r.Username)
				return nil
			})(cmd, args)
		}}
	add.Flags().StringVar(&username, "username", "", "the registry user")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin (else $"+registryPasswordEnv+")")
	ls := &cobra.Command{Use: "ls", Short: "List the tenant's private registries (server and username)", Args: cobra.NoArgs,
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			rs, _, err := c.Registries().List(cmd.Context(), e.query())
			if err != nil {
				return err
			}
			return e.printRegistries(rs, rs)
		})}
	rm := &cobra.Command{Use: "rm SERVER", Short: "Remove the tenant's credentials for a registry", Args: cobra.ExactArgs(1),
		RunE: e.api(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.Registries().Delete(cmd.Context(), args[0], e.write()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed registry %s\n", args[0])
			return nil
		})}
	return group("registry", "Manage the tenant's private image registries (credentials the Docker driver pulls with)", add, ls, rm)
}

func (e *env) printRegistries(v any, rs []apitypes.Registry) error {
	var rows [][]string
	for _, r := range rs {
		rows = append(rows, []string{r.Server, r.Username, r.Tenant, age(r.CreatedAt)})
	}
	return e.print(v, []string{"SERVER", "USERNAME", "TENANT", "AGE"}, rows)
}

package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (e *env) keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new cluster key (give the same one to every hub node)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return fail(err)
			}
			fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(b))
			return nil
		},
	}
}

func (e *env) loginCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "login",
		Short: "Check a token and save it, with the address, to ~/.config/wharf/config.yaml",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if e.token == "" {
				fmt.Fprint(e.stderr, "Token: ")
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return usagef("no token given: use --token or type it at the prompt")
				}
				e.token = strings.TrimSpace(line)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			self, err := c.Tokens().Self(cmd.Context())
			if err != nil {
				return fail(err)
			}
			path, err := saveFileConfig(fileConfig{Addr: c.Address(), Token: e.token})
			if err != nil {
				return fail(err)
			}
			who := string(self.Role)
			if self.Tenant != "" {
				who += " of tenant " + self.Tenant
			}
			fmt.Fprintf(e.stdout, "Logged in to %s as %s (%s). Saved to %s\n", c.Address(), orDash(self.Name), who, path)
			return nil
		},
	}
}

func (e *env) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this hub node, the leader, the peers and the Raft index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return fail(err)
			}
			if e.output != "table" {
				return e.print(st, nil, nil)
			}
			e.printKV(st, [][2]string{{"Node", st.Node}, {"Datacenter", st.Datacenter}, {"State", st.State}, {"Leader", orDash(st.Leader)},
				{"Index", strconv.FormatUint(st.Index, 10)}, {"Bootstrapped", strconv.FormatBool(st.Bootstrapped)}})
			fmt.Fprintln(e.stdout)
			var rows [][]string
			for _, p := range st.Peers {
				role := "follower"
				if p.Leader {
					role = "leader"
				}
				if !p.Voter {
					role += " (non-voter)"
				}
				rows = append(rows, []string{orDash(p.Name), p.Address, role, p.ID})
			}
			return e.print(st, []string{"PEER", "ADDRESS", "ROLE", "ID"}, rows)
		},
	}
}

func (e *env) bootstrapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "Get the first admin token (works once per cluster)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			b, err := c.Bootstrap(cmd.Context())
			if err != nil {
				return fail(err)
			}
			if e.output != "table" {
				return e.print(b, nil, nil)
			}
			fmt.Fprintf(e.stdout, "Admin token (shown once, keep it safe):\n%s\n", b.Token)
			return nil
		},
	}
}

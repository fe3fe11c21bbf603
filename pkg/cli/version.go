package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/internal/version"
)

// versionOutput is what `wharf version -o json|yaml` prints.
type versionOutput struct {
	Client version.Info   `json:"client"`
	Server *serverVersion `json:"server,omitempty"`
	// Note says why there is no server version.
	Note string `json:"note,omitempty"`
}

// serverVersion is the version of the hub node that answered.
type serverVersion struct {
	Version string `json:"version"`
	Node    string `json:"node,omitempty"`
	Address string `json:"address"`
}

// versionTimeout bounds the wait for a hub: the client's own version is
// worth printing at once even when the hub's address leads nowhere.
const versionTimeout = 3 * time.Second

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client's version and, when a hub answers, the hub's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := versionOutput{Client: version.Get()}
			// No hub, or a bad address, is not a failure here: the client's
			// version stands on its own.
			if c, err := e.client(); err != nil {
				out.Note = "no hub asked: " + err.Error()
			} else {
				ctx, cancel := context.WithTimeout(cmd.Context(), versionTimeout)
				st, err := c.Status(ctx)
				cancel()
				if err != nil {
					out.Note = fmt.Sprintf("no hub answered at %s: %v", c.Address(), err)
				} else {
					out.Server = &serverVersion{Version: st.Version, Node: st.Node, Address: c.Address()}
				}
			}
			if e.output != "table" {
				return e.print(out, nil, nil)
			}
			kv := [][2]string{{"Client", out.Client.String()}}
			if s := out.Server; s != nil {
				v := s.Version
				if v == "" {
					v = "unknown (the hub does not say)"
				}
				kv = append(kv, [2]string{"Server", fmt.Sprintf("%s (node %s at %s)", v, orDash(s.Node), s.Address)})
			}
			if err := e.printKV(out, kv); err != nil {
				return err
			}
			if out.Note != "" {
				fmt.Fprintln(e.stderr, "Note:", out.Note)
			}
			return nil
		},
	}
}

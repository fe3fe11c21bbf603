package cli

import (
	"cmp"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/internal/demo"
)

// demoCmd runs the demo app that `wharf dev` deploys as hello: hidden from
// the help, as it is an app, not a command people type.
func (e *env) demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "demo",
		Short:  "Run the built-in demo HTTP app on $PORT (default 8080)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _ := os.Hostname()
			return fail(demo.Run(cmd.Context(), demo.Config{
				Addr: net.JoinHostPort("", cmp.Or(os.Getenv("PORT"), "8080")),
				// The agent names the app and the instance in the
				// environment; the hostname is the instance id too.
				App:      os.Getenv("WHARF_APP"),
				Instance: cmp.Or(os.Getenv("WHARF_INSTANCE"), host),
				Log:      e.stdout,
			}))
		},
	}
}

package hub

import (
	"context"

	"github.com/wharf-platform/wharf/hub/api"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/gateway"
)

// execRoute runs the API's execs through this node's agent gateway and
// names the other nodes' API addresses for the agents connected there.
type execRoute struct {
	gw *gateway.Gateway
	cl *cluster.Cluster
}

func (e execRoute) Connected(hostID string) bool { return e.gw.Connected(hostID) }

func (e execRoute) Exec(ctx context.Context, hostID string, r api.ExecRequest) (int, error) {
	return e.gw.Exec(ctx, hostID, gateway.ExecRequest{Instance: r.Instance, Cmd: r.Cmd, TTY: r.TTY, Size: r.Size, Resize: r.Resize,
		Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr})
}

func (e execRoute) APIAddr(node string) string {
	for _, m := range e.cl.Members() {
		if m.Name == node && m.Alive {
			return m.HTTPAddr
		}
	}
	return ""
}

package gateway

import (
	"fmt"

	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// negotiate picks the protocol version of a connection from the agent's
// Hello: the highest one both speak. When there is none, the error's code
// and message tell the agent what to do: an agent too old for this hub
// stops and says which version to upgrade to; an agent newer than this
// hub retries, since a rolling upgrade of the hub may be under way.
func negotiate(h *wire.Hello) (uint32, error) {
	hub, offered := wire.Supported(), h.Offered()
	v, code := wire.Negotiate(hub, offered)
	hubVersion := version.Get().Version
	agentVersion := h.AgentVersion
	if agentVersion == "" {
		agentVersion = "(unknown version)"
	}
	switch code {
	case wire.CodeOK:
		return v, nil
	case wire.CodeAgentTooOld:
		err := fmt.Errorf("this hub speaks protocol %v; agent %s speaks %v: upgrade the agent to at least %s (this hub's version)", hub, agentVersion, offered, hubVersion)
		if h.ProtocolMin == 0 {
			// A protocol 1 agent stops only on CodeUnauthorized (it retries
			// every other code forever); stopping, with this message, is
			// what it should do.
			return 0, codeError{wire.CodeUnauthorized, err}
		}
		return 0, codeError{wire.CodeAgentTooOld, err}
	case wire.CodeHubTooOld:
		return 0, codeError{wire.CodeHubTooOld, fmt.Errorf("this hub speaks protocol %v; agent %s speaks %v: the hub is older than this agent: upgrade the hub, or run an agent of version %s", hub, agentVersion, offered, hubVersion)}
	}
	return 0, codeError{wire.CodeProtocol, fmt.Errorf("hello offers no protocol version (%v)", offered)}
}

package agent

import (
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// ErrAgentTooOld is returned when the hub speaks only protocol versions
// newer than this agent's: the agent exits non-zero with the hub's
// one-line advice (which version to upgrade to). Retrying cannot help.
var ErrAgentTooOld = errors.New("agent too old for the hub")

// protocols returns the protocol versions the agent offers.
func (a *Agent) protocols() wire.Range {
	if a.cfg.Protocols == (wire.Range{}) {
		return wire.Supported()
	}
	return a.cfg.Protocols
}

// hello opens a session: the host, the protocol versions the agent speaks,
// its version (which the hub names in its advice when they share none).
func (a *Agent) hello(hostID string) *wire.Hello {
	h := &wire.Hello{HostId: hostID, AgentVersion: version.Get().Version}
	h.Offer(a.protocols())
	if w := a.work.Load(); w != nil {
		h.LastAssignmentVersion = w.Applied()
	}
	return h
}

// checkWelcome refuses a hub's pick of a protocol this agent does not
// speak (a hub that ignored the range).
func (a *Agent) checkWelcome(w *wire.Welcome) error {
	if r := a.protocols(); !r.Contains(w.ProtocolVersion) {
		return fmt.Errorf("%w: the hub picked protocol %d; this agent speaks %v", wire.ErrUnknownMessage, w.ProtocolVersion, r)
	}
	return nil
}

// versionRefusal sorts out a session that ended on the protocol version:
// an agent too old for the hub ends with fatal; a hub too old for the
// agent (what a protocol 1 hub says with CodeVersion, too) gives the
// reason to log while the agent retries.
func versionRefusal(hub string, err error) (fatal error, hubTooOld string) {
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) {
		return nil, ""
	}
	switch wire.Code(ae.ErrorCode) {
	case wire.CodeAgentTooOld:
		return fmt.Errorf("%w: hub %s: %s", ErrAgentTooOld, hub, ae.ErrorMessage), ""
	case wire.CodeHubTooOld, wire.CodeVersion:
		return nil, ae.ErrorMessage
	}
	return nil, ""
}

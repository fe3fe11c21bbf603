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

// offered returns the protocol versions the agent offers: those of
// Config.Protocols, or those this build speaks.
func offered(configured wire.Range) wire.Range {
	if configured == (wire.Range{}) {
		return wire.Supported()
	}
	return configured
}

// hello opens a session: the host, the protocol versions the agent speaks,
// its version (which the hub names in its advice when they share none),
// and the version of the assignments it keeps.
func hello(hostID string, offer wire.Range, applied uint64) *wire.Hello {
	h := &wire.Hello{HostId: hostID, AgentVersion: version.Get().Version, LastAssignmentVersion: applied}
	h.Offer(offer)
	return h
}

// checkWelcome refuses a hub's pick of a protocol this agent does not
// speak (a hub that ignored the range).
func checkWelcome(offer wire.Range, w *wire.Welcome) error {
	if !offer.Contains(w.ProtocolVersion) {
		return fmt.Errorf("%w: the hub picked protocol %d; this agent speaks %v", wire.ErrUnknownMessage, w.ProtocolVersion, offer)
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

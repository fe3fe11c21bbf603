package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/wire"
)

func TestVersionRefusal(t *testing.T) {
	refused := func(code wire.Code, msg string) error {
		return &quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(code), ErrorMessage: msg}
	}
	tests := []struct {
		name      string
		err       error
		fatal     bool
		hubTooOld string
	}{
		{"agent too old: stop", refused(wire.CodeAgentTooOld, "upgrade the agent to at least v2"), true, ""},
		{"hub too old: retry", refused(wire.CodeHubTooOld, "upgrade the hub"), false, "upgrade the hub"},
		{"a protocol 1 hub: retry", refused(wire.CodeVersion, "protocol version 2 is not supported (hub speaks 1)"), false, "protocol version 2 is not supported (hub speaks 1)"},
		{"anything else: not about versions", refused(wire.CodeUnavailable, "no leader"), false, ""},
		{"not a refusal", errors.New("timeout"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fatal, hubTooOld := versionRefusal("h:7481", tt.err)
			if (fatal != nil) != tt.fatal || hubTooOld != tt.hubTooOld {
				t.Fatalf("got %v, %q", fatal, hubTooOld)
			}
			if fatal != nil && (!errors.Is(fatal, ErrAgentTooOld) || !strings.Contains(fatal.Error(), "hub h:7481: upgrade the agent to at least v2")) {
				t.Fatalf("fatal error %q", fatal)
			}
		})
	}
}

func TestCheckWelcome(t *testing.T) {
	if err := checkWelcome(offered(wire.Range{}), &wire.Welcome{ProtocolVersion: wire.ProtocolMax}); err != nil {
		t.Fatalf("this build's version refused: %v", err)
	}
	if err := checkWelcome(offered(wire.Range{}), &wire.Welcome{ProtocolVersion: wire.ProtocolMax + 1}); err == nil {
		t.Fatal("a version outside the agent's range accepted")
	}
	configured := wire.Range{Min: 3, Max: 4}
	if err := checkWelcome(offered(configured), &wire.Welcome{ProtocolVersion: 4}); err != nil {
		t.Fatalf("a configured version refused: %v", err)
	}
	if h := hello("h1", offered(configured), 7); h.Offered() != configured || h.AgentVersion == "" || h.LastAssignmentVersion != 7 {
		t.Fatalf("hello offers %v (agent version %q, assignments %d), want %v", h.Offered(), h.AgentVersion, h.LastAssignmentVersion, configured)
	}
}

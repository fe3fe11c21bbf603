package gateway

import (
	"errors"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/wire"
)

func TestNegotiate(t *testing.T) {
	hubVersion := version.Get().Version
	offer := func(min, max uint32) *wire.Hello {
		h := &wire.Hello{HostId: "h1", AgentVersion: "v0.9"}
		h.Offer(wire.Range{Min: min, Max: max})
		return h
	}
	tests := []struct {
		name  string
		hello *wire.Hello
		want  uint32
		code  wire.Code
		msg   []string
	}{
		{"this build", offer(wire.ProtocolMin, wire.ProtocolMax), wire.ProtocolMax, wire.CodeOK, nil},
		{"newer agent that still speaks ours", offer(wire.ProtocolMin, wire.ProtocolMax+3), wire.ProtocolMax, wire.CodeOK, nil},
		{"agent too old", offer(wire.ProtocolMin-1, wire.ProtocolMin-1), 0, wire.CodeAgentTooOld,
			[]string{"this hub speaks protocol " + wire.Supported().String(), "agent v0.9 speaks 1..1", "upgrade the agent to at least " + hubVersion}},
		// A protocol 1 agent stops only on CodeUnauthorized.
		{"protocol 1 agent", &wire.Hello{ProtocolVersion: 1, HostId: "h1", AgentVersion: "v0.9"}, 0, wire.CodeUnauthorized,
			[]string{"agent v0.9 speaks 1..1", "upgrade the agent to at least " + hubVersion}},
		{"hub too old", offer(wire.ProtocolMax+1, wire.ProtocolMax+2), 0, wire.CodeHubTooOld,
			[]string{"the hub is older than this agent: upgrade the hub, or run an agent of version " + hubVersion}},
		{"no range", &wire.Hello{HostId: "h1"}, 0, wire.CodeProtocol, []string{"no protocol version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := negotiate(tt.hello)
			if v != tt.want || closeCode(err) != tt.code {
				t.Fatalf("got %d, code %d (%v); want %d, code %d", v, closeCode(err), err, tt.want, tt.code)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q lacks %q", err, m)
				}
			}
			var ce codeError
			if err != nil && (!errors.As(err, &ce) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("%q is not a one-line coded error", err)
			}
		})
	}
}

func TestInstanceState(t *testing.T) {
	for v := range wire.InstanceState_name {
		s, ok := instanceState(wire.InstanceState(v))
		if ok != (v != 0) || (ok && s == "") {
			t.Errorf("%v: %q, %v", wire.InstanceState(v), s, ok)
		}
	}
	if _, ok := instanceState(wire.InstanceState(99)); ok {
		t.Error("a state from a newer agent was taken")
	}
	if s, _ := instanceState(wire.InstanceRunning); s != "running" {
		t.Errorf("running is %q", s)
	}
}

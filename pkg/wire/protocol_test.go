package wire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name       string
		hub, agent Range
		want       uint32
		code       Code
	}{
		{"same range", Range{2, 2}, Range{2, 2}, 2, CodeOK},
		{"highest common", Range{2, 4}, Range{1, 3}, 3, CodeOK},
		{"agent newer but overlapping", Range{2, 3}, Range{3, 5}, 3, CodeOK},
		{"agent too old", Range{2, 3}, Range{1, 1}, 0, CodeAgentTooOld},
		{"hub too old", Range{2, 2}, Range{3, 4}, 0, CodeHubTooOld},
		{"empty agent range", Range{2, 2}, Range{3, 2}, 0, CodeProtocol},
		{"no version at all", Range{2, 2}, Range{}, 0, CodeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, code := Negotiate(tt.hub, tt.agent)
			if v != tt.want || code != tt.code {
				t.Fatalf("Negotiate(%v, %v) = %d, %d; want %d, %d", tt.hub, tt.agent, v, code, tt.want, tt.code)
			}
			if code == CodeOK && (!tt.hub.Contains(v) || !tt.agent.Contains(v)) {
				t.Fatalf("picked %d, outside a range", v)
			}
		})
	}
}

func TestHelloRange(t *testing.T) {
	var h Hello
	h.Offer(Range{2, 5})
	if h.ProtocolVersion != 5 || h.ProtocolMin != 2 || h.Offered() != (Range{2, 5}) {
		t.Fatalf("offer 2..5: %v, offered %v", &h, h.Offered())
	}
	// What a protocol 1 agent sends: a version, no range.
	legacy := &Hello{ProtocolVersion: 1, HostId: "h1"}
	b, _ := proto.Marshal(legacy)
	var got Hello
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Offered() != (Range{1, 1}) {
		t.Fatalf("a protocol 1 Hello offers %v, want 1..1", got.Offered())
	}
	if v, code := Negotiate(Supported(), got.Offered()); code != CodeAgentTooOld {
		t.Fatalf("this build negotiated %d (code %d) with a protocol 1 agent", v, code)
	}
}

// legacyInstance encodes an instance as protocol 1 did: typed fields
// absent, the desired state and failover mode as strings.
func legacyInstance(t *testing.T, id, desired, failover string) []byte {
	t.Helper()
	b, err := proto.Marshal(&Instance{Id: id, App: "db", MaxDisconnectMs: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if desired != "" {
		b = protowire.AppendTag(b, legacyDesiredState, protowire.BytesType)
		b = protowire.AppendString(b, desired)
	}
	if failover != "" {
		b = protowire.AppendTag(b, legacyFailoverMode, protowire.BytesType)
		b = protowire.AppendString(b, failover)
	}
	return b
}

func TestUpgradeLegacy(t *testing.T) {
	var a []byte
	a = protowire.AppendTag(a, 1, protowire.VarintType)
	a = protowire.AppendVarint(a, 7)
	for _, in := range [][]byte{
		legacyInstance(t, "fenced", "run", "fenced"),
		legacyInstance(t, "plain", "run", ""),
		legacyInstance(t, "stopping", "stop", "availability"),
	} {
		a = protowire.AppendTag(a, 2, protowire.BytesType)
		a = protowire.AppendBytes(a, in)
	}
	var got Assignments
	if err := proto.Unmarshal(a, &got); err != nil {
		t.Fatal(err)
	}
	if got.Instances[0].Failover != FailoverMode_FAILOVER_MODE_UNSPECIFIED {
		t.Fatal("the typed field is set before the upgrade: the test proves nothing")
	}
	UpgradeLegacy(&got)
	want := []struct {
		desired  DesiredState
		failover FailoverMode
	}{{DesiredRun, FailoverFenced}, {DesiredRun, FailoverMode_FAILOVER_MODE_UNSPECIFIED}, {DesiredStop, FailoverAvailability}}
	for i, w := range want {
		in := got.Instances[i]
		if in.Desired != w.desired || in.Failover != w.failover || in.MaxDisconnectMs != 1500 {
			t.Errorf("instance %s: desired %v failover %v max %d; want %v %v 1500", in.Id, in.Desired, in.Failover, in.MaxDisconnectMs, w.desired, w.failover)
		}
	}
	// Typed fields win over strings, and current encodings are untouched.
	cur := &Assignments{Instances: []*Instance{{Id: "i", Desired: DesiredRun, Failover: FailoverAvailability}}}
	UpgradeLegacy(cur)
	if cur.Instances[0].Desired != DesiredRun || cur.Instances[0].Failover != FailoverAvailability {
		t.Fatalf("a current encoding changed: %v", cur.Instances[0])
	}
}

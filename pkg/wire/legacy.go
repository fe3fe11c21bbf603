package wire

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers protocol 1 used for strings that are enums now; reserved
// in wire.proto.
const (
	legacyDesiredState = 12 // Instance.desired_state: "run" or "stop"
	legacyFailoverMode = 13 // Instance.failover_mode: "availability" or "fenced"
)

// UpgradeLegacy fills in the typed fields of instances decoded from a
// protocol 1 encoding, from the strings protocol 1 wrote (kept by the
// decoder as unknown fields). An agent upgraded in place reads the
// assignments its older build kept on disk: without this, a fenced
// instance would lose its fence until the hub's next change, and the hub
// does not resend assignments the agent already applied.
func UpgradeLegacy(a *Assignments) {
	for _, in := range a.GetInstances() {
		b := in.ProtoReflect().GetUnknown()
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				break
			}
			b = b[n:]
			var s string
			if typ == protowire.BytesType {
				v, m := protowire.ConsumeBytes(b)
				if m < 0 {
					break
				}
				s, n = string(v), m
			} else if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				break
			}
			b = b[n:]
			switch {
			case num == legacyDesiredState && in.Desired == DesiredState_DESIRED_STATE_UNSPECIFIED:
				switch s {
				case "run":
					in.Desired = DesiredRun
				case "stop":
					in.Desired = DesiredStop
				}
			case num == legacyFailoverMode && in.Failover == FailoverMode_FAILOVER_MODE_UNSPECIFIED:
				switch s {
				case "fenced":
					in.Failover = FailoverFenced
				case "availability":
					in.Failover = FailoverAvailability
				}
			}
		}
	}
}

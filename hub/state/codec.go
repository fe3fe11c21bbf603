package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A Raft log entry is in one of two forms:
//
//   - JSON: the type byte, then the JSON request (every type; the only
//     form before the binary one existed, so every older log holds it);
//   - binary: BinaryMarker, the type byte, then the request in the binary
//     form of codec_wire.go (the commands of codec_app.go).
//
// BinaryMarker is a type value the enum reserves and never assigns, and
// it lacks the ignore flag: an entry of the JSON form begins with an
// assigned type (with or without the flag), so no entry any version wrote
// begins with it, and an older node that reads one fails on an unknown
// type instead of skipping it.

// BinaryMarker begins an entry of the binary form. Reserved: never a
// command type.
const BinaryMarker MessageType = 127

// Encode makes a Raft log entry in the JSON form, which every hub version
// reads. Writers that know what the cluster's voters read (the API, the
// audit log) use EncodeFor with the cluster's EntryFormat instead: a node
// of an earlier version, in a cluster upgraded one node at a time, would
// fail on a form it does not read.
func Encode(t MessageType, req any) ([]byte, error) {
	return encodeJSON(t, req)
}

// EntryFormat is the newest form of log entries this version reads. Each
// hub node publishes its own; a cluster writes the newest form every
// voter reads (EncodeFor):
//
//	1: JSON (every version);
//	2: the binary form of codec_wire.go;
//	3: AuditedRequest, a write and its audit entry in one entry.
//
// Nodes of versions before the number was published read format 2 but do
// not say so: they count as 1.
const EntryFormat = FormatAudited

// The log entry formats.
const (
	FormatJSON    = 1
	FormatBinary  = 2
	FormatAudited = 3
)

// EncodeFor makes a Raft log entry that nodes reading format f (and
// later ones) read: the binary form where the type has one and f allows
// it, else JSON.
func EncodeFor(f int, t MessageType, req any) ([]byte, error) {
	if f >= FormatBinary {
		return EncodeBinary(t, req)
	}
	return encodeJSON(t, req)
}

// EncodeBinary makes a Raft log entry in the binary form when the type
// has one and the request can be carried in it exactly as in JSON, else
// in the JSON form. Only for clusters whose every node reads the binary
// form.
func EncodeBinary(t MessageType, req any) ([]byte, error) {
	if b, err := encodeBinary(t, req); err == nil {
		return b, nil
	}
	return encodeJSON(t, req)
}

// encodeJSON makes an entry of the JSON form.
func encodeJSON(t MessageType, req any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	if err := json.NewEncoder(&buf).Encode(req); err != nil {
		return nil, fmt.Errorf("encode %d: %w", t, err)
	}
	return buf.Bytes(), nil
}

// encodeBinary makes an entry of the binary form, or returns errNotBinary.
func encodeBinary(t MessageType, req any) ([]byte, error) {
	e := wenc{b: make([]byte, 2, 512)}
	e.b[0], e.b[1] = byte(BinaryMarker), byte(t)
	switch r := req.(type) {
	case *AppUpsertRequest:
		if t&^IgnoreUnknownTypeFlag != AppUpsertType {
			return nil, errNotBinary
		}
		encodeAppUpsert(&e, r)
	case *AuditRecordRequest:
		if t&^IgnoreUnknownTypeFlag != AuditRecordType {
			return nil, errNotBinary
		}
		encodeAuditRecord(&e, r)
	case *AuditedRequest:
		if t&^IgnoreUnknownTypeFlag != AuditedType {
			return nil, errNotBinary
		}
		encodeAudited(&e, r)
	default:
		return nil, errNotBinary
	}
	if e.bad {
		return nil, errNotBinary
	}
	return e.b, nil
}

// decodeBinary decodes the body of a binary entry of type t.
func decodeBinary(t MessageType, b []byte) (any, error) {
	switch t {
	case AppUpsertType:
		return decodeAppUpsert(b)
	case AuditRecordType:
		return decodeAuditRecord(b)
	case AuditedType:
		return decodeAudited(b)
	}
	return nil, fmt.Errorf("%w %d (binary form)", ErrUnknownType, t)
}

// entryType returns the type byte of an entry of either form, with its
// ignore flag.
func entryType(b []byte) (MessageType, bool) {
	switch {
	case len(b) == 0:
		return 0, false
	case MessageType(b[0]) != BinaryMarker:
		return MessageType(b[0]), true
	case len(b) >= 2:
		return MessageType(b[1]), true
	}
	return 0, false
}

// newRequest returns a pointer to a zero request of type t, or nil when the
// type is unknown.
func newRequest(t MessageType) any {
	switch t {
	case BootstrapType:
		return &BootstrapRequest{}
	case TenantCreateType:
		return &TenantCreateRequest{}
	case TenantDeleteType:
		return &TenantDeleteRequest{}
	case TokenCreateType:
		return &TokenCreateRequest{}
	case TokenDeleteType:
		return &TokenDeleteRequest{}
	case PoolCreateType:
		return &PoolCreateRequest{}
	case PoolDeleteType:
		return &PoolDeleteRequest{}
	case AppUpsertType:
		return &AppUpsertRequest{}
	case RouteAddType:
		return &RouteAddRequest{}
	case LogDrainAddType:
		return &LogDrainAddRequest{}
	case LogDrainDeleteType:
		return &LogDrainDeleteRequest{}
	case AlertAddType:
		return &AlertAddRequest{}
	case AlertDeleteType:
		return &AlertDeleteRequest{}
	case RouteDeleteType:
		return &RouteDeleteRequest{}
	case CertPutType:
		return &CertPutRequest{}
	case CertDeleteType:
		return &CertDeleteRequest{}
	case AppFailbackType:
		return &AppFailbackRequest{}
	case DrillStartType:
		return &DrillStartRequest{}
	case DrillReportType:
		return &DrillReportRequest{}
	case DrillEndType:
		return &DrillEndRequest{}
	case AppDeleteType:
		return &AppDeleteRequest{}
	case AppScaleType:
		return &AppScaleRequest{}
	case AppRollbackType:
		return &AppRollbackRequest{}
	case AgentCACreateType:
		return &AgentCACreateRequest{}
	case JoinTokenCreateType:
		return &JoinTokenCreateRequest{}
	case JoinTokenDeleteType:
		return &JoinTokenDeleteRequest{}
	case HostEnrollType:
		return &HostEnrollRequest{}
	case HostStateType:
		return &HostStateRequest{}
	case HostStatesType:
		return &HostStatesRequest{}
	case HostDeleteType:
		return &HostDeleteRequest{}
	case EventRecordType:
		return &EventRecordRequest{}
	case HostInventoryType:
		return &HostInventoryRequest{}
	case PlanApplyType:
		return &PlanApplyRequest{}
	case InstanceUpdateType:
		return &InstanceUpdateRequest{}
	case AppCanaryType:
		return &AppCanaryRequest{}
	case ProviderCreateType:
		return &ProviderCreateRequest{}
	case ProviderUpdateType:
		return &ProviderUpdateRequest{}
	case ProviderDeleteType:
		return &ProviderDeleteRequest{}
	case PoolUpdateType:
		return &PoolUpdateRequest{}
	case MachineCreateType:
		return &MachineCreateRequest{}
	case MachineUpdateType:
		return &MachineUpdateRequest{}
	case MachineDeleteType:
		return &MachineDeleteRequest{}
	case ProviderResealType:
		return &ProviderResealRequest{}
	case RegistryPutType:
		return &RegistryPutRequest{}
	case RegistryDeleteType:
		return &RegistryDeleteRequest{}
	case RegistryResealType:
		return &RegistryResealRequest{}
	case UsageCountersType:
		return &UsageCountersRequest{}
	case CloseHourType:
		return &CloseHourRequest{}
	case PlanCreateType:
		return &PlanCreateRequest{}
	case PlanDeleteType:
		return &PlanDeleteRequest{}
	case TenantUpdateType:
		return &TenantUpdateRequest{}
	case BudgetCheckType:
		return &BudgetCheckRequest{}
	case BudgetNotifiedType:
		return &BudgetNotifiedRequest{}
	case AuditRecordType:
		return &AuditRecordRequest{}
	case AuditedType:
		return &AuditedRequest{}
	case AppRestartType:
		return &AppRestartRequest{}
	case AppStopType:
		return &AppStopRequest{}
	case AppStartType:
		return &AppStartRequest{}
	case AutoscaleType:
		return &AutoscaleRequest{}
	case SecretsSetType:
		return &SecretsSetRequest{}
	case SecretsUnsetType:
		return &SecretsUnsetRequest{}
	case SecretsResealType:
		return &SecretsResealRequest{}
	}
	return nil
}

// ErrUnknownType is returned by Decode for a type this version does not know.
var ErrUnknownType = errors.New("unknown message type")

// Decode parses a log entry made by Encode, of either form. Unknown fields
// are accepted (a newer node may have added some); malformed JSON or
// binary, trailing data and unknown types are errors. The ignore flag is
// stripped from the returned type.
func Decode(b []byte) (MessageType, any, error) {
	raw, ok := entryType(b)
	if !ok {
		return 0, nil, errors.New("empty log entry")
	}
	t := raw &^ IgnoreUnknownTypeFlag
	if MessageType(b[0]) == BinaryMarker {
		req, err := decodeBinary(t, b[2:])
		if err != nil {
			if errors.Is(err, ErrUnknownType) {
				return t, nil, err
			}
			return t, nil, fmt.Errorf("decode message type %d: %w", t, err)
		}
		return t, req, nil
	}
	req := newRequest(t)
	if req == nil {
		return t, nil, fmt.Errorf("%w %d", ErrUnknownType, t)
	}
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	if err := dec.Decode(req); err != nil {
		return t, nil, fmt.Errorf("decode message type %d: %w", t, err)
	}
	if dec.More() {
		return t, nil, fmt.Errorf("decode message type %d: trailing data", t)
	}
	return t, req, nil
}

package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Encode makes a Raft log entry: the type byte, then the JSON request.
func Encode(t MessageType, req any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	if err := json.NewEncoder(&buf).Encode(req); err != nil {
		return nil, fmt.Errorf("encode %d: %w", t, err)
	}
	return buf.Bytes(), nil
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

// Decode parses a log entry made by Encode. Unknown fields are accepted (a
// newer node may have added some); malformed JSON, trailing data and
// unknown types are errors. The ignore flag is stripped from the returned
// type.
func Decode(b []byte) (MessageType, any, error) {
	if len(b) == 0 {
		return 0, nil, errors.New("empty log entry")
	}
	t := MessageType(b[0]) &^ IgnoreUnknownTypeFlag
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

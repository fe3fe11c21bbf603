package state

import (
	"time"
)

// MessageType is the first byte of every Raft log entry the FSM applies. The
// enum is append-only: never renumber or reuse a value.
type MessageType uint8

// Message types.
const (
	BootstrapType       MessageType = 0
	TenantCreateType    MessageType = 1
	TenantDeleteType    MessageType = 2
	TokenCreateType     MessageType = 3
	TokenDeleteType     MessageType = 4
	PoolCreateType      MessageType = 5
	PoolDeleteType      MessageType = 6
	AppUpsertType       MessageType = 7
	AppDeleteType       MessageType = 8
	AppScaleType        MessageType = 9
	AppRollbackType     MessageType = 10
	AgentCACreateType   MessageType = 11
	JoinTokenCreateType MessageType = 12
	JoinTokenDeleteType MessageType = 13
	HostEnrollType      MessageType = 14
	HostStateType       MessageType = 15
	HostDeleteType      MessageType = 16
	EventRecordType     MessageType = 17
	HostInventoryType   MessageType = 18
	PlanApplyType       MessageType = 19
	InstanceUpdateType  MessageType = 20
	AppCanaryType       MessageType = 21
	RouteAddType        MessageType = 22
	RouteDeleteType     MessageType = 23
	CertPutType         MessageType = 24
	CertDeleteType      MessageType = 25
	AppFailbackType     MessageType = 26
	DrillStartType      MessageType = 27
	DrillReportType     MessageType = 28
	DrillEndType        MessageType = 29
	LogDrainAddType     MessageType = 30
	LogDrainDeleteType  MessageType = 31
	AlertAddType        MessageType = 32
	AlertDeleteType     MessageType = 33
	ProviderCreateType  MessageType = 34
	ProviderUpdateType  MessageType = 35
	ProviderDeleteType  MessageType = 36
	PoolUpdateType      MessageType = 37
	MachineCreateType   MessageType = 38
	MachineUpdateType   MessageType = 39
	MachineDeleteType   MessageType = 40
	ProviderResealType  MessageType = 41

	// Billing: plans, tenants' plans and budgets.
	PlanCreateType     MessageType = 48
	PlanDeleteType     MessageType = 49
	TenantUpdateType   MessageType = 50
	BudgetCheckType    MessageType = 51
	BudgetNotifiedType MessageType = 52

	// Autoscaling: the autoscaler's decisions.
	AutoscaleType MessageType = 53

	// Liveness: many hosts' state changes in one entry.
	HostStatesType MessageType = 79

	// 127 is BinaryMarker (codec.go), which begins an entry of the binary
	// form: reserved, never a command type.
)

// IgnoreUnknownTypeFlag marks a message that an older FSM that does not know
// its type may skip instead of failing (as in Nomad).
const IgnoreUnknownTypeFlag MessageType = 128

// A Raft log entry is: one MessageType byte, then the JSON encoding of the
// request struct of that type; or, for the commands that have one, the
// binary form (codec.go). Every time a request needs is carried in it
// (Time), so that Apply is deterministic.

// BootstrapRequest hands out the first admin token. It fails with a conflict
// once any bootstrap has been applied.
type BootstrapRequest struct {
	Token Token // Role admin; SecretHash set by the API node
	Time  time.Time
}

// TenantCreateRequest creates a tenant; conflict if the name is taken.
type TenantCreateRequest struct {
	Tenant Tenant
	Time   time.Time
}

// TenantDeleteRequest deletes a tenant and its tokens; not found if absent,
// conflict while it still has apps.
type TenantDeleteRequest struct {
	Name string
	// Time is when it was deleted: its billing history (kept) ends at
	// the next hour.
	Time time.Time `json:",omitzero"`
}

// TokenCreateRequest creates a token; the tenant (if any) must exist
// (refused otherwise), the ID must be new (conflict).
type TokenCreateRequest struct {
	Token Token
	Time  time.Time
}

// TokenDeleteRequest revokes a token. When Tenant is not "", the token must
// belong to that tenant (not found otherwise).
type TokenDeleteRequest struct {
	ID     string
	Tenant string
}

// PoolCreateRequest creates a pool; conflict if the name is taken.
type PoolCreateRequest struct {
	Pool Pool
	Time time.Time
}

// PoolDeleteRequest deletes a pool; not found if absent, conflict while an
// app names it in pools or failover_pools.
type PoolDeleteRequest struct {
	Name string
}

// AppUpsertRequest creates or updates an app. Spec has been validated and
// normalized by the API node.
//
// Create (no app of that name in the tenant): version 1; Spec.Instances nil
// means 1. Update: if the version fields differ from the current version, a
// new version LatestVersion+1 is created and made current; Spec.Instances
// nil keeps the current count.
//
// CAS: when CAS is non-nil the write happens only if the app's ModifyIndex
// equals *CAS (0: the app must not exist), else conflict. Create is true for
// POST: conflict if the app exists. Update is true for PUT without CAS: not
// found if the app does not exist.
//
// The tenant must exist; every pool in Spec.Pools and Spec.FailoverPools
// must exist and be allowed for the tenant; and the tenant's quota must hold
// for the sum over its apps of instances, instances*cpu and
// instances*memory. Failing these is refused (422).
type AppUpsertRequest struct {
	Tenant string
	Spec   AppSpec
	CAS    *uint64
	Create bool
	Update bool
	Time   time.Time
}

// AppDeleteRequest deletes an app and its versions. CAS as in AppUpsertRequest.
type AppDeleteRequest struct {
	Tenant string
	Name   string
	CAS    *uint64
	Time   time.Time // when its instances were asked to stop
}

// AppScaleRequest sets the desired instance count (quota checked).
type AppScaleRequest struct {
	Tenant    string
	Name      string
	Instances int
	Time      time.Time
}

// AppRollbackRequest makes an earlier version current again, without a new
// version number. Not found if the version does not exist.
type AppRollbackRequest struct {
	Tenant  string
	Name    string
	Version int
	Time    time.Time
}

// AppCanaryRequest ends a canary update: Promote rolls the new version out
// to every instance; otherwise (abort) the version the canary replaced is
// current again. Conflict when no canary is in progress.
type AppCanaryRequest struct {
	Tenant  string
	Name    string
	Promote bool
	Time    time.Time
}

// AgentCACreateRequest stores the agent CA; conflict if one exists (the
// first leader's wins).
type AgentCACreateRequest struct {
	CA   AgentCA
	Time time.Time
}

// JoinTokenCreateRequest creates a join token. The pool must exist and the
// agent CA too (refused otherwise).
type JoinTokenCreateRequest struct {
	Token JoinToken
	Time  time.Time
}

// JoinTokenDeleteRequest revokes a join token; not found if absent.
type JoinTokenDeleteRequest struct {
	ID string
}

// HostEnrollRequest uses a join token to register a host. Refused (with an
// event recorded by a separate EventRecordRequest from the gateway) when the
// token is unknown, revoked, expired at Time, used up, or its secret hash
// differs; conflict when the name is taken in the pool.
//
// A token bound to a machine (JoinToken.Machine) makes the host that
// machine's host and the machine ready; MachineID, the id the agent
// reports, is only a cross-check: when set it must name the token's
// machine (refused otherwise).
type HostEnrollRequest struct {
	TokenID    string
	SecretHash string
	Host       Host
	MachineID  string
	Time       time.Time
}

// HostStateRequest changes a host's state and disconnected flag, recording
// an event with Reason. Not found if the host is absent.
type HostStateRequest struct {
	ID           string
	State        string
	Disconnected bool
	Reason       string
	Time         time.Time
	// From, when set, is the state the writer saw: the change is refused
	// (a conflict) when the host is in another state by now. A verdict
	// made from an older look (liveness judging a host "ready" that an
	// admin has drained since) must not undo a newer change.
	From string `json:",omitempty"`
}

// HostStatesRequest changes many hosts' states at once: the liveness
// tracker's verdicts of one look, so that a datacenter of thousands of
// hosts falling silent is one Raft entry (a few), not one per host. Each
// change is judged alone, as a HostStateRequest with the request's Time:
// one whose host is gone, whose From no longer holds or whose state is
// unknown is skipped, and the others apply.
type HostStatesRequest struct {
	Changes []HostStateChange
	Time    time.Time
}

// HostStateChange is one host's change in a HostStatesRequest.
type HostStateChange struct {
	ID           string
	State        string
	Disconnected bool   `json:",omitempty"`
	Reason       string `json:",omitempty"`
	From         string `json:",omitempty"`
}

// HostDeleteRequest removes a host; its certificate stops working.
type HostDeleteRequest struct {
	ID   string
	Time time.Time
}

// HostInventoryRequest replaces a host's inventory with what its agent
// reported after enrolment; not found if the host is absent.
type HostInventoryRequest struct {
	ID        string
	Inventory Inventory
}

// EventRecordRequest records an event that no other command records (a
// refused enrollment, say).
type EventRecordRequest struct {
	Event Event
}

// AppFailbackRequest asks for an app's instances in failover pools to move
// back to its own pools (failback manual).
type AppFailbackRequest struct {
	Tenant, Name string
	Time         time.Time
}

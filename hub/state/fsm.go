package state

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// FSM applies committed Raft log entries to the Store. Apply is
// deterministic: everything it needs travels in the entry.
type FSM struct {
	store *Store
	log   *slog.Logger
	// txns counts the write transactions begun, so that a row can tell
	// whether the transaction writing it made it (instanceSet.gen).
	txns uint64
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM that writes store.
func NewFSM(store *Store, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &FSM{store: store, log: logger}
}

// Store returns the store the FSM writes.
func (f *FSM) Store() *Store { return f.store }

// Apply implements raft.FSM. It returns nil or a *Error. Either the whole
// command is written or nothing is.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	if err := f.apply(l.Index, l.Data); err != nil {
		return err
	}
	return nil
}

var _ raft.BatchingFSM = (*FSM)(nil)

// ApplyBatch implements raft.BatchingFSM: Raft hands over the entries
// committed together. They are applied in one write transaction (one
// commit, and the tree nodes their commands share copied once instead of
// once per command), with the results and the state of applying them one
// by one: a command that fails drops the transaction, the commands before
// it are applied again in a new one, and it fails alone, as in Apply.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	for i := 0; i < len(logs); {
		i += f.applyRun(logs[i:], out[i:])
	}
	return out
}

// applyRun applies logs in one transaction up to the first that fails,
// writes their results to out and returns how many it answered (at least
// one).
func (f *FSM) applyRun(logs []*raft.Log, out []interface{}) int {
	db, _ := f.store.current()
	txn := db.Txn(true)
	defer txn.Abort()
	f.txns++
	var changes []change
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if e := f.applyIn(txn, f.txns, l.Index, l.Data, &changes); e != nil {
			if i == 0 {
				out[0] = e
				return 1
			}
			// The run before it succeeded on this state: it does again.
			txn.Abort()
			return f.applyRun(logs[:i], out[:i])
		}
	}
	if err := recordChanges(txn, changes); err != nil {
		// Not expected (an insert into a table of our own): the last
		// command fails alone, as if it had failed itself.
		txn.Abort()
		if len(logs) == 1 {
			out[0] = &Error{Kind: KindInternal, Msg: err.Error()}
			return 1
		}
		return f.applyRun(logs[:len(logs)-1], out[:len(logs)-1])
	}
	txn.Commit()
	return len(logs)
}

func (f *FSM) apply(index uint64, data []byte) *Error {
	db, _ := f.store.current()
	txn := db.Txn(true)
	defer txn.Abort()
	f.txns++
	var changes []change
	if e := f.applyIn(txn, f.txns, index, data, &changes); e != nil {
		return e
	}
	if err := recordChanges(txn, changes); err != nil {
		return &Error{Kind: KindInternal, Msg: err.Error()}
	}
	txn.Commit()
	return nil
}

// applyIn applies one command in txn, the gen-th write transaction, and
// adds the apps and hosts it changes to changes (for recordChanges). On
// an error txn holds part of the command's writes: the caller must abort
// it.
func (f *FSM) applyIn(txn *memdb.Txn, gen, index uint64, data []byte, changes *[]change) *Error {
	t, req, err := Decode(data)
	if err != nil {
		if raw, _ := entryType(data); errors.Is(err, ErrUnknownType) && raw&IgnoreUnknownTypeFlag != 0 {
			f.log.Debug("skipping unknown message type", "type", t, "index", index)
			return nil
		}
		return &Error{Kind: KindInternal, Msg: err.Error()}
	}
	audited, _ := req.(*AuditedRequest)
	skip := false
	if audited != nil {
		if req, skip, err = f.unwrap(audited, index); err != nil {
			return &Error{Kind: KindInternal, Msg: err.Error()}
		}
	}
	w := &writer{txn: txn, gen: gen, index: index, changes: changes, m: meterScratch{now: commandTime(req)}}
	if !skip {
		if e := w.dispatch(req); e != nil {
			return e
		}
	}
	if audited != nil {
		if e := w.auditRecord(&AuditRecordRequest{Entries: []AuditEntry{audited.Entry}, Keep: audited.Keep}); e != nil {
			return e
		}
	}
	if e := w.flushAlloc(); e != nil {
		return e
	}
	for _, t := range w.touched {
		if err := txn.Insert(tableIndex, &IndexEntry{Table: t, Index: index}); err != nil {
			return &Error{Kind: KindInternal, Msg: err.Error()}
		}
	}
	return nil
}

// unwrap decodes the command an AuditedRequest carries. skip says it is
// of a type this version does not know and marked to be skipped: its
// audit entry is recorded all the same, as a newer node records it.
func (f *FSM) unwrap(a *AuditedRequest, index uint64) (req any, skip bool, err error) {
	t, req, err := Decode(a.Command)
	if err != nil {
		if raw, _ := entryType(a.Command); errors.Is(err, ErrUnknownType) && raw&IgnoreUnknownTypeFlag != 0 {
			f.log.Debug("skipping unknown message type", "type", t, "index", index)
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("audited command: %w", err)
	}
	if t == AuditedType {
		return nil, false, errors.New("an audited command holds another audited command")
	}
	return req, false, nil
}

// writer applies one command inside one write transaction.
type writer struct {
	txn *memdb.Txn
	// gen numbers txn among the FSM's write transactions: rows it made
	// carry it (instanceSet.gen).
	gen   uint64
	index uint64
	// touched lists the tables the command changed, each once: a
	// command touches a handful, so a slice is cheaper than a set.
	touched []string
	// s reads the transaction; made on first use.
	s      *Snapshot
	events int // events recorded by this command so far
	// alloc holds, per host, the CPU and memory this command's instance
	// changes add (or release), for flushAlloc.
	alloc map[string][2]int
	// bump holds the hosts whose assignments the command changed, for
	// flushAlloc.
	bump map[string]bool
	// changes collects the apps and hosts the transaction's commands
	// changed (noteAppChange, noteHostChange); changedApp and changedHost
	// are the last ones this command added.
	changes     *[]change
	changedApp  [2]string
	changedHost string
	// m is the command's time and what its metering wrote so far.
	m meterScratch
}

func (w *writer) dispatch(req any) *Error {
	switch r := req.(type) {
	case *BootstrapRequest:
		return w.bootstrap(r)
	case *TenantCreateRequest:
		return w.tenantCreate(r)
	case *TenantDeleteRequest:
		return w.tenantDelete(r)
	case *TokenCreateRequest:
		return w.tokenCreate(r)
	case *TokenDeleteRequest:
		return w.tokenDelete(r)
	case *PoolCreateRequest:
		return w.poolCreate(r)
	case *PoolDeleteRequest:
		return w.poolDelete(r)
	case *AppUpsertRequest:
		return w.appUpsert(r)
	case *AppDeleteRequest:
		return w.appDelete(r)
	case *AppScaleRequest:
		return w.appScale(r)
	case *AppRollbackRequest:
		return w.appRollback(r)
	case *AgentCACreateRequest:
		return w.agentCACreate(r)
	case *JoinTokenCreateRequest:
		return w.joinTokenCreate(r)
	case *JoinTokenDeleteRequest:
		return w.joinTokenDelete(r)
	case *HostEnrollRequest:
		return w.hostEnroll(r)
	case *HostStateRequest:
		return w.hostState(r)
	case *HostStatesRequest:
		return w.hostStates(r)
	case *HostDeleteRequest:
		return w.hostDelete(r)
	case *EventRecordRequest:
		return w.event(r.Event)
	case *HostInventoryRequest:
		return w.hostInventory(r)
	case *PlanApplyRequest:
		return w.planApply(r)
	case *InstanceUpdateRequest:
		return w.instanceUpdate(r)
	case *AppCanaryRequest:
		return w.appCanary(r)
	case *RouteAddRequest:
		return w.routeAdd(r)
	case *RouteDeleteRequest:
		return w.routeDelete(r)
	case *CertPutRequest:
		return w.certPut(r)
	case *CertDeleteRequest:
		return w.certDelete(r)
	case *AppFailbackRequest:
		return w.appFailback(r)
	case *DrillStartRequest:
		return w.drillStart(r)
	case *DrillReportRequest:
		return w.drillReport(r)
	case *DrillEndRequest:
		return w.drillEnd(r)
	case *LogDrainAddRequest:
		return w.logDrainAdd(r)
	case *LogDrainDeleteRequest:
		return w.logDrainDelete(r)
	case *AlertAddRequest:
		return w.alertAdd(r)
	case *AlertDeleteRequest:
		return w.alertDelete(r)
	case *ProviderCreateRequest:
		return w.providerCreate(r)
	case *ProviderUpdateRequest:
		return w.providerUpdate(r)
	case *ProviderDeleteRequest:
		return w.providerDelete(r)
	case *ProviderResealRequest:
		return w.providerReseal(r)
	case *RegistryPutRequest:
		return w.registryPut(r)
	case *RegistryDeleteRequest:
		return w.registryDelete(r)
	case *RegistryResealRequest:
		return w.registryReseal(r)
	case *PoolUpdateRequest:
		return w.poolUpdate(r)
	case *MachineCreateRequest:
		return w.machineCreate(r)
	case *MachineUpdateRequest:
		return w.machineUpdate(r)
	case *MachineDeleteRequest:
		return w.machineDelete(r)
	case *UsageCountersRequest:
		return w.usageCounters(r)
	case *CloseHourRequest:
		return w.closeHour(r)
	case *PlanCreateRequest:
		return w.planCreate(r)
	case *PlanDeleteRequest:
		return w.planDelete(r)
	case *TenantUpdateRequest:
		return w.tenantUpdate(r)
	case *BudgetCheckRequest:
		return w.budgetCheck(r)
	case *BudgetNotifiedRequest:
		return w.budgetNotified(r)
	case *AuditRecordRequest:
		return w.auditRecord(r)
	case *AppRestartRequest:
		return w.appLifecycle(AppRestartType, (*AppLifecycleRequest)(r))
	case *AppStopRequest:
		return w.appLifecycle(AppStopType, (*AppLifecycleRequest)(r))
	case *AppStartRequest:
		return w.appLifecycle(AppStartType, (*AppLifecycleRequest)(r))
	case *AutoscaleRequest:
		return w.autoscale(r)
	case *SecretsSetRequest:
		return w.secretsSet(r)
	case *SecretsUnsetRequest:
		return w.secretsUnset(r)
	case *SecretsResealRequest:
		return w.secretsReseal(r)
	}
	return Errorf(KindInternal, "no handler for %T", req)
}

func (w *writer) insert(table string, obj any) *Error {
	if err := w.txn.Insert(table, obj); err != nil {
		return Errorf(KindInternal, "insert %s: %v", table, err)
	}
	w.touch(table, obj)
	return nil
}

func (w *writer) delete(table string, obj any) *Error {
	if err := w.txn.Delete(table, obj); err != nil {
		return Errorf(KindInternal, "delete %s: %v", table, err)
	}
	w.touch(table, obj)
	return nil
}

// touch notes that the command changed obj in table: the table's index
// moves, and a host or an app goes into the log of changes.
func (w *writer) touch(table string, obj any) {
	switch table {
	case TableHosts:
		w.noteHostChange(obj.(*Host).ID)
	case TableApps:
		a := obj.(*App)
		w.noteAppChange(a.Tenant, a.Name)
	}
	w.touchTable(table)
}

func (w *writer) touchTable(table string) {
	if !slices.Contains(w.touched, table) {
		w.touched = append(w.touched, table)
	}
}

func (w *writer) snap() *Snapshot {
	if w.s == nil {
		w.s = &Snapshot{txn: w.txn}
	}
	return w.s
}

func (w *writer) meta(m *Meta, existing *Meta) {
	if existing != nil {
		m.CreateIndex = existing.CreateIndex
	} else {
		m.CreateIndex = w.index
	}
	m.ModifyIndex = w.index
}

package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// TableAudit holds the audit log: one row per mutating API request,
// oldest first, bounded by the Keep of the command that wrote the newest.
const TableAudit = "audit"

// Day-2 commands. They start at 60, leaving 53-59 free for commands that
// branches written at the same time add after the billing ones.
const (
	AuditRecordType MessageType = 60
	AppRestartType  MessageType = 61
	AppStopType     MessageType = 62
	AppStartType    MessageType = 63
)

// DefaultAuditKeep is how many audit entries are kept when a command does
// not say.
const DefaultAuditKeep = 10000

// AuditEntry is one mutating API request: who did what to which object,
// and how it ended. It never holds a request body.
type AuditEntry struct {
	// Seq numbers the entries from 1 without gaps (assigned by the FSM).
	Seq uint64
	// Index is the Raft index of the command that recorded the entry.
	Index   uint64
	Time    time.Time
	Actor   string // the token's name; "" when the request had no valid token
	ActorID string // the token's id
	Role    string
	Tenant  string
	Method  string
	Path    string // without the query string
	Status  int
	Object  string // the name or id acted on
	Node    string // the hub node that answered
}

// AuditRecordRequest appends entries to the audit log, then, once the
// log holds more than Keep+Keep/100 entries, drops the oldest down to Keep
// (zero: DefaultAuditKeep).
type AuditRecordRequest struct {
	Entries []AuditEntry
	Keep    int
}

func auditSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableAudit, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: uint64Index[AuditEntry]{func(o *AuditEntry) uint64 { return o.Seq }}},
	}}
}

func (w *writer) auditRecord(r *AuditRecordRequest) *Error {
	keep := r.Keep
	if keep <= 0 {
		keep = DefaultAuditKeep
	}
	var next, first uint64 = 1, 0
	if last, err := w.txn.Last(TableAudit, "id"); err != nil {
		return Errorf(KindInternal, "audit: %v", err)
	} else if last != nil {
		next = last.(*AuditEntry).Seq + 1
	}
	if f, err := w.txn.First(TableAudit, "id"); err != nil {
		return Errorf(KindInternal, "audit: %v", err)
	} else if f != nil {
		first = f.(*AuditEntry).Seq
	}
	for _, e := range r.Entries {
		e.Seq, e.Index = next, w.index
		next++
		if first == 0 {
			first = e.Seq
		}
		if err := w.insert(TableAudit, &e); err != nil {
			return err
		}
	}
	// Entries are numbered without gaps and dropped oldest first, so the
	// count is the span between the first and the next sequence number.
	// The log may grow 1% past keep before it is cut back to keep: the
	// deletions of one cut share their copied tree nodes, which makes an
	// entry's share of the cut cheap.
	if next-first <= uint64(keep+keep/100) {
		return nil
	}
	for ; next-first > uint64(keep); first++ {
		obj, err := w.txn.First(TableAudit, "id", first)
		if err != nil {
			return Errorf(KindInternal, "audit: %v", err)
		}
		if obj != nil {
			if e := w.delete(TableAudit, obj); e != nil {
				return e
			}
		}
	}
	return nil
}

// AuditLog returns the audit log, oldest first.
func (s *Snapshot) AuditLog(ws memdb.WatchSet) ([]*AuditEntry, error) {
	return list[AuditEntry](s, ws, TableAudit, "id")
}

// AuditedType commits a write together with its audit entry (format 3).
const AuditedType MessageType = 78

// AuditedRequest applies Command, a log entry of either form (never
// itself an AuditedRequest), and when it succeeds appends Entry to the
// audit log, trimmed as by an AuditRecordRequest with Keep: a write and
// its audit entry in one Raft commit. When Command fails nothing is
// written, and the request's entry is recorded on its own.
type AuditedRequest struct {
	Command []byte
	Entry   AuditEntry
	Keep    int
}

// EncodeAudited makes the entry of an AuditedRequest, for clusters whose
// every voter reads FormatAudited.
func EncodeAudited(command []byte, e AuditEntry, keep int) ([]byte, error) {
	return EncodeFor(FormatAudited, AuditedType, &AuditedRequest{Command: command, Entry: e, Keep: keep})
}

package state

import (
	"fmt"
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

// auditChunkSize is how many entries one row of the audit table holds.
const auditChunkSize = 128

// auditChunk is one row of the audit table: the entries numbered
// N*auditChunkSize+1 to (N+1)*auditChunkSize, of which arr[from:n] are in
// the log. The log is append-only and dropped oldest first, so a row of
// entries costs every node one tree update per appended entry instead of
// one per entry inserted and one per entry dropped, with no tree node per
// entry.
//
// Rows share their array: appending writes arr[n] in place and commits a
// new row with n+1. That is safe because no committed row reaches past
// its own n (a reader of an older row never reads the slot written), the
// FSM is the only writer and writes one transaction at a time, and a slot
// written by an aborted transaction is reached by no row and written
// again by the next append. Dropping entries commits a row with a larger
// from, or deletes the row; the array is never written below n.
type auditChunk struct {
	N       uint64
	from, n int
	arr     *[auditChunkSize]AuditEntry
}

// first and next are the sequence numbers of the row's first entry and of
// the one after its last.
func (c *auditChunk) first() uint64 { return c.N*auditChunkSize + uint64(c.from) + 1 }
func (c *auditChunk) next() uint64  { return c.N*auditChunkSize + uint64(c.n) + 1 }

func auditSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableAudit, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: uint64Index[auditChunk]{func(o *auditChunk) uint64 { return o.N }}},
	}}
}

// auditTail returns the audit table's last row, nil when it is empty.
func auditTail(txn *memdb.Txn) (*auditChunk, error) {
	obj, err := txn.Last(TableAudit, "id")
	if err != nil || obj == nil {
		return nil, err
	}
	return obj.(*auditChunk), nil
}

// putAudit appends e, numbered e.Seq, after tail (the table's last row,
// nil when it is empty) and returns the new last row. e.Seq must follow
// tail's last entry; any number will do in an empty table (a snapshot's
// first entry, after older ones were dropped).
func putAudit(txn *memdb.Txn, tail *auditChunk, e AuditEntry) (*auditChunk, error) {
	if e.Seq == 0 || tail != nil && e.Seq != tail.next() {
		want := uint64(1)
		if tail != nil {
			want = tail.next()
		}
		return nil, fmt.Errorf("audit entry %d out of order: the next is %d", e.Seq, want)
	}
	n, pos := (e.Seq-1)/auditChunkSize, int((e.Seq-1)%auditChunkSize)
	row := &auditChunk{N: n, from: pos, n: pos + 1}
	if tail != nil && tail.N == n {
		row.from, row.arr = tail.from, tail.arr
	} else {
		row.arr = new([auditChunkSize]AuditEntry)
	}
	row.arr[pos] = e
	return row, txn.Insert(TableAudit, row)
}

// trimAudit drops the entries numbered below cut.
func trimAudit(txn *memdb.Txn, cut uint64) error {
	it, err := txn.Get(TableAudit, "id")
	if err != nil {
		return err
	}
	var drop []*auditChunk
	var keep *auditChunk
	for obj := it.Next(); obj != nil; obj = it.Next() {
		c := obj.(*auditChunk)
		if c.next() <= cut {
			drop = append(drop, c)
			continue
		}
		if c.first() < cut {
			keep = &auditChunk{N: c.N, from: int(cut - c.N*auditChunkSize - 1), n: c.n, arr: c.arr}
		}
		break
	}
	for _, c := range drop {
		if err := txn.Delete(TableAudit, c); err != nil {
			return err
		}
	}
	if keep != nil {
		return txn.Insert(TableAudit, keep)
	}
	return nil
}

// eachAudit calls fn with every entry of the rows it iterates, oldest
// first.
func eachAudit(it memdb.ResultIterator, fn func(*AuditEntry) error) error {
	for obj := it.Next(); obj != nil; obj = it.Next() {
		c := obj.(*auditChunk)
		for i := c.from; i < c.n; i++ {
			if err := fn(&c.arr[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writer) auditRecord(r *AuditRecordRequest) *Error {
	keep := r.Keep
	if keep <= 0 {
		keep = DefaultAuditKeep
	}
	tail, err := auditTail(w.txn)
	if err != nil {
		return Errorf(KindInternal, "audit: %v", err)
	}
	next := uint64(1)
	if tail != nil {
		next = tail.next()
	}
	for _, e := range r.Entries {
		e.Seq, e.Index = next, w.index
		next++
		if tail, err = putAudit(w.txn, tail, e); err != nil {
			return Errorf(KindInternal, "audit: %v", err)
		}
	}
	w.touchTable(TableAudit)
	head, err := w.txn.First(TableAudit, "id")
	if err != nil || head == nil {
		return Errorf(KindInternal, "audit: no first row after an append: %v", err)
	}
	// Entries are numbered without gaps and dropped oldest first, so the
	// count is the span between the first and the next sequence number.
	// The log may grow 1% past keep before it is cut back to keep, so that
	// most appends drop nothing.
	if next-head.(*auditChunk).first() <= uint64(keep+keep/100) {
		return nil
	}
	if err := trimAudit(w.txn, next-uint64(keep)); err != nil {
		return Errorf(KindInternal, "audit: %v", err)
	}
	return nil
}

// AuditLog returns the audit log, oldest first. The entries are shared
// with the store: read-only.
func (s *Snapshot) AuditLog(ws memdb.WatchSet) ([]*AuditEntry, error) {
	it, err := s.txn.Get(TableAudit, "id")
	if err != nil {
		return nil, err
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	var out []*AuditEntry
	err = eachAudit(it, func(e *AuditEntry) error { out = append(out, e); return nil })
	return out, err
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

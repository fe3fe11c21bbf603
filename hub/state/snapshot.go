package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// snapshotFormat is the version of the snapshot stream. A stream is JSON
// lines: a header, one record per object (index and meta rows included),
// and a trailer with the record count, so a truncated stream is detected.
const snapshotFormat = 1

type snapHeader struct {
	Format int `json:"format"`
	// Metering is 1 in snapshots that hold metering state; one without
	// (written before metering) gets its running instances' counts on
	// restore.
	Metering int `json:"metering,omitempty"`
}

type snapRecord struct {
	Table  string          `json:"t,omitempty"`
	Object json.RawMessage `json:"o,omitempty"`
	End    bool            `json:"end,omitempty"`
	Count  int             `json:"count,omitempty"`
}

// snapshotTables lists every table in the order a snapshot writes them.
var snapshotTables = append(append([]string(nil), objectTables...), tableIndex, tableMeta, tableMeter)

func newObject(table string) any {
	switch table {
	case TableTenants:
		return &Tenant{}
	case TableTokens:
		return &Token{}
	case TablePools:
		return &Pool{}
	case TableApps:
		return &App{}
	case TableAppVersions:
		return &AppVersion{}
	case TableAgentCA:
		return &AgentCA{}
	case TableJoinTokens:
		return &JoinToken{}
	case TableInstances:
		return &Instance{}
	case TableDeployments:
		return &Deployment{}
	case TableRoutes:
		return &Route{}
	case TableCerts:
		return &Cert{}
	case TableDrills:
		return &Drill{}
	case TableLogDrains:
		return &LogDrain{}
	case TableAlerts:
		return &Alert{}
	case TableHosts:
		return &Host{}
	case TableProviders:
		return &ProviderAccount{}
	case TableMachines:
		return &Machine{}
	case TablePlans:
		return &Plan{}
	case TableRegistries:
		return &Registry{}
	case TableAudit:
		return &AuditEntry{}
	case TableEvents:
		return &Event{}
	case tableIndex:
		return &IndexEntry{}
	case tableMeta:
		return &metaEntry{}
	case TableUsage:
		return &UsageRow{}
	case TableUsageSegments:
		return &UsageSegment{}
	case TableUsageCounters:
		return &UsageCounter{}
	case TableUsageBatches:
		return &UsageBatch{}
	case TableUsageHosts:
		return &UsageHost{}
	case TableBillingTenants:
		return &BillingTenant{}
	case tableMeter:
		return &meterEntry{}
	}
	return nil
}

// Snapshot implements raft.FSM: it captures a read transaction; the
// streaming happens in Persist, concurrently with further Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	db, _ := f.store.current()
	return &fsmSnapshot{txn: db.Txn(false)}, nil
}

type fsmSnapshot struct {
	txn *memdb.Txn
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(s.txn, sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

func writeSnapshot(txn *memdb.Txn, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapHeader{Format: snapshotFormat, Metering: 1}); err != nil {
		return err
	}
	n := 0
	for _, table := range snapshotTables {
		// A record is what json.Encoder writes for
		// snapRecord{Table: table, Object: b}, framed by hand: encoding
		// the record would copy and re-scan each object's JSON, which is
		// already compact and HTML-escaped, as Marshal leaves it.
		prefix := `{"t":` + strconv.Quote(table) + `,"o":`
		err := eachRecord(txn, table, func(obj any) error {
			b, err := json.Marshal(obj)
			if err != nil {
				return fmt.Errorf("snapshot %s: %w", table, err)
			}
			bw.WriteString(prefix)
			bw.Write(b)
			if _, err := bw.WriteString("}\n"); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := enc.Encode(snapRecord{End: true, Count: n}); err != nil {
		return err
	}
	return bw.Flush()
}

// eachRecord calls fn with every record of table a snapshot holds, in
// order: its rows, except that the audit log's rows of entries are
// recorded entry by entry, as the log was stored before it was stored in
// rows, and the instances one by one in id order, as they were stored
// before they were kept per app and host (so snapshots stay what they
// were).
func eachRecord(txn *memdb.Txn, table string, fn func(any) error) error {
	if table == TableInstances {
		// Kept in rows per app and host, recorded one by one in id order.
		return eachInstance(txn, nil, func(i *Instance) error { return fn(i) })
	}
	it, err := txn.Get(table, "id")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", table, err)
	}
	if table == TableAudit {
		return eachAudit(it, func(e *AuditEntry) error { return fn(e) })
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if err := fn(obj); err != nil {
			return err
		}
	}
	return nil
}

// Restore implements raft.FSM: it builds a new database from the stream and
// swaps it in only when the whole stream was read and checked.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.store.replace(db)
	return nil
}

func readSnapshot(r io.Reader) (*memdb.MemDB, error) {
	db, err := newDB()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 1<<16)
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	var h snapHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %d is not supported (want %d)", h.Format, snapshotFormat)
	}
	txn := db.Txn(true)
	defer txn.Abort()
	insts, err := restoreRecords(br, txn)
	if err != nil {
		return nil, err
	}
	if err := loadInstances(txn, insts); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if h.Metering == 0 {
		if err := upgradeMetering(txn); err != nil {
			return nil, fmt.Errorf("snapshot: metering: %w", err)
		}
	}
	if err := setWatchFloor(txn); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	txn.Commit()
	return db, nil
}

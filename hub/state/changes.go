package state

import (
	"github.com/hashicorp/go-memdb"
)

// tableChanges is a log of what the recent commands changed: the apps
// whose record was written or removed (a spec, a count, a status such as
// Pending) or whose instances were, and the hosts whose record was
// written or removed (an allocation, a state, an inventory). A planner
// round reads it to look at only those apps and hosts (ChangedSince).
//
// One row per write transaction (a batch of commands Raft committed
// together) that changed an app or a host, keyed by the transaction's
// last Raft index: writing it costs one insert per batch, where a second
// index on a row per app cost a delete and an insert per app and command.
// Rows older than changesKept Raft indexes are dropped, a few thousand at
// a time, and the floor records up to where: a reader asking about
// changes since an index below it is told the log is incomplete, and
// looks at everything.
//
// Derived and never snapshotted: a restore leaves the log empty with its
// floor at the restored index.
const tableChanges = "changes"

// changesKept is how many Raft indexes of changes the log keeps at least
// (at most twice as many): a planner more than that behind reads every
// app and host. Seconds of a busy cluster's writes, where the planner
// runs a round every few milliseconds; not more, since every change kept
// is memory the collector marks. A variable so that a test can make it
// small.
var changesKept uint64 = 1 << 12

// changeRow is one row of tableChanges. The row whose Last is 0 holds
// only Floor.
type changeRow struct {
	Last    uint64 // the highest Index in Changes: the row's key
	Changes []change
	// Floor (in row 0 only): changes at or below this index are no
	// longer all in the log.
	Floor uint64
}

// change is one app or one host a command changed: Host is set for a
// host, Tenant and App for an app.
type change struct {
	Index       uint64
	Tenant, App string
	Host        string
}

func changesSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableChanges, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: uint64Index[changeRow]{func(o *changeRow) uint64 { return o.Last }}},
	}}
}

// noteAppChange records that the command changes the app's record or
// instances, once per command when it writes many instances of one app
// in a row.
func (w *writer) noteAppChange(tenant, app string) {
	if w.changedApp == [2]string{tenant, app} {
		return
	}
	w.changedApp = [2]string{tenant, app}
	*w.changes = append(*w.changes, change{Index: w.index, Tenant: tenant, App: app})
}

// noteHostChange records that the command writes or removes the host's
// record, once per command when it writes the same host in a row.
func (w *writer) noteHostChange(id string) {
	if w.changedHost == id {
		return
	}
	w.changedHost = id
	*w.changes = append(*w.changes, change{Index: w.index, Host: id})
}

// recordChanges writes the changes a transaction's commands made (in
// index order) as one row, and drops the rows that fell out of the kept
// range.
func recordChanges(txn *memdb.Txn, changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	last := changes[len(changes)-1].Index
	if err := txn.Insert(tableChanges, &changeRow{Last: last, Changes: changes}); err != nil {
		return err
	}
	if last <= 2*changesKept {
		return nil
	}
	oldest, err := txn.LowerBound(tableChanges, "id", uint64(1))
	if err != nil {
		return err
	}
	obj := oldest.Next()
	if obj == nil || obj.(*changeRow).Last >= last-2*changesKept {
		return nil
	}
	// Drop the rows at or below the cut, and raise the floor to it.
	cut := last - changesKept
	var drop []*changeRow
	for ; obj != nil && obj.(*changeRow).Last <= cut; obj = oldest.Next() {
		drop = append(drop, obj.(*changeRow))
	}
	for _, r := range drop {
		if err := txn.Delete(tableChanges, r); err != nil {
			return err
		}
	}
	return txn.Insert(tableChanges, &changeRow{Floor: cut})
}

// setChangesFloor starts a restored database's log: empty, and
// incomplete up to the restored index.
func setChangesFloor(txn *memdb.Txn, idx uint64) error {
	return txn.Insert(tableChanges, &changeRow{Floor: idx})
}

// AppsChangedSince is ChangedSince for the apps alone.
func (s *Snapshot) AppsChangedSince(ws memdb.WatchSet, idx uint64, fn func(tenant, app string)) (bool, error) {
	return s.ChangedSince(ws, idx, fn, nil)
}

// ChangedSince calls app once with every app whose record or one of whose
// instances was written or removed after Raft index idx, and
// host once with the id of every host whose record was written or
// removed since (either may be nil), and adds to ws a channel that fires
// when any app or host changes so. It returns false, having called
// neither, when the log no longer holds everything since idx (idx is
// older than the kept range, or than the restore that started this
// database): the caller must then look at every app and host. An app or
// host deleted since may be among those it names.
func (s *Snapshot) ChangedSince(ws memdb.WatchSet, idx uint64, app func(tenant, app string), host func(id string)) (bool, error) {
	if err := s.WatchChanges(ws); err != nil {
		return false, err
	}
	if f, err := s.txn.First(tableChanges, "id", uint64(0)); err != nil {
		return false, err
	} else if f != nil && idx < f.(*changeRow).Floor {
		return false, nil
	}
	it, err := s.txn.LowerBound(tableChanges, "id", idx+1)
	if err != nil {
		return false, err
	}
	var apps map[[2]string]bool
	var hosts map[string]bool
	for obj := it.Next(); obj != nil; obj = it.Next() {
		for _, c := range obj.(*changeRow).Changes {
			switch {
			case c.Index <= idx:
			case c.Host != "":
				if host != nil && !hosts[c.Host] {
					if hosts == nil {
						hosts = map[string]bool{}
					}
					hosts[c.Host] = true
					host(c.Host)
				}
			case app != nil && !apps[[2]string{c.Tenant, c.App}]:
				if apps == nil {
					apps = map[[2]string]bool{}
				}
				apps[[2]string{c.Tenant, c.App}] = true
				app(c.Tenant, c.App)
			}
		}
	}
	return true, nil
}

// WatchChanges adds to ws a channel that fires when any app's instances
// or status, or any host's record, change (when the log of changes
// grows).
func (s *Snapshot) WatchChanges(ws memdb.WatchSet) error {
	if ws == nil {
		return nil
	}
	all, err := s.txn.Get(tableChanges, "id")
	if err != nil {
		return err
	}
	ws.Add(all.WatchCh())
	return nil
}

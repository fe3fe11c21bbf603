package state

import (
	"github.com/hashicorp/go-memdb"
)

// tableAppChanges is a log of which apps the recent commands changed: an
// app whose instances were written or removed, or whose status changed
// without its modify index (Pending, Noticed). The leader's planner reads
// it to find the apps a round must look at (AppsChangedSince).
//
// One row per write transaction (a batch of commands Raft committed
// together) that changed an app, keyed by the transaction's last Raft
// index: writing it costs one insert per batch, where a second index on
// a row per app cost a delete and an insert per app and command. Rows
// older than appChangesKept Raft indexes are dropped, a few thousand at a
// time, and floorChanges records up to where: a reader asking about
// changes since an index below it is told the log is incomplete, and
// looks at every app.
//
// Derived and never snapshotted: a restore leaves the log empty with its
// floor at the restored index.
const tableAppChanges = "app_changes"

// appChangesKept is how many Raft indexes of changes the log keeps at
// least (at most twice as many): a planner more than that behind reads
// every app. Seconds of a busy cluster's writes, where the planner runs a
// round every few milliseconds; not more, since every change kept is
// memory the collector marks. A variable so that a test can make it
// small.
var appChangesKept uint64 = 1 << 12

// appChanges is one row of tableAppChanges. The row whose Last is 0
// holds only Floor.
type appChanges struct {
	Last    uint64 // the highest Index in Changes: the row's key
	Changes []appChange
	// Floor (in row 0 only): changes at or below this index are no
	// longer all in the log.
	Floor uint64
}

// appChange is one app a command changed.
type appChange struct {
	Index       uint64
	Tenant, App string
}

func appChangesSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableAppChanges, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: uint64Index[appChanges]{func(o *appChanges) uint64 { return o.Last }}},
	}}
}

// noteAppChange records that the command changes the app's instances or
// status, once per command when it writes many instances of one app in a
// row.
func (w *writer) noteAppChange(tenant, app string) {
	if w.changedApp == [2]string{tenant, app} {
		return
	}
	w.changedApp = [2]string{tenant, app}
	*w.changes = append(*w.changes, appChange{Index: w.index, Tenant: tenant, App: app})
}

// recordAppChanges writes the changes a transaction's commands made (in
// index order) as one row, and drops the rows that fell out of the kept
// range.
func recordAppChanges(txn *memdb.Txn, changes []appChange) error {
	if len(changes) == 0 {
		return nil
	}
	last := changes[len(changes)-1].Index
	if err := txn.Insert(tableAppChanges, &appChanges{Last: last, Changes: changes}); err != nil {
		return err
	}
	if last <= 2*appChangesKept {
		return nil
	}
	oldest, err := txn.LowerBound(tableAppChanges, "id", uint64(1))
	if err != nil {
		return err
	}
	obj := oldest.Next()
	if obj == nil || obj.(*appChanges).Last >= last-2*appChangesKept {
		return nil
	}
	// Drop the rows at or below the cut, and raise the floor to it.
	cut := last - appChangesKept
	var drop []*appChanges
	for ; obj != nil && obj.(*appChanges).Last <= cut; obj = oldest.Next() {
		drop = append(drop, obj.(*appChanges))
	}
	for _, r := range drop {
		if err := txn.Delete(tableAppChanges, r); err != nil {
			return err
		}
	}
	return txn.Insert(tableAppChanges, &appChanges{Floor: cut})
}

// setAppChangesFloor starts a restored database's log: empty, and
// incomplete up to the restored index.
func setAppChangesFloor(txn *memdb.Txn, idx uint64) error {
	return txn.Insert(tableAppChanges, &appChanges{Floor: idx})
}

// AppsChangedSince calls fn once with every app one of whose instances
// was written or removed, or whose status changed, after Raft index idx,
// and adds to ws a channel that fires when any app changes so. It
// returns false, having called fn for none, when the log no longer holds
// everything since idx (idx is older than the kept range, or than the
// restore that started this database): the caller must then look at
// every app. An app deleted since may be among those it names.
func (s *Snapshot) AppsChangedSince(ws memdb.WatchSet, idx uint64, fn func(tenant, app string)) (bool, error) {
	if err := s.WatchAppChanges(ws); err != nil {
		return false, err
	}
	if f, err := s.txn.First(tableAppChanges, "id", uint64(0)); err != nil {
		return false, err
	} else if f != nil && idx < f.(*appChanges).Floor {
		return false, nil
	}
	it, err := s.txn.LowerBound(tableAppChanges, "id", idx+1)
	if err != nil {
		return false, err
	}
	var seen map[[2]string]bool
	for obj := it.Next(); obj != nil; obj = it.Next() {
		for _, c := range obj.(*appChanges).Changes {
			if c.Index <= idx {
				continue
			}
			k := [2]string{c.Tenant, c.App}
			if seen == nil {
				seen = map[[2]string]bool{}
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			fn(c.Tenant, c.App)
		}
	}
	return true, nil
}

// WatchAppChanges adds to ws a channel that fires when any app's
// instances or status change (when the log of changed apps grows).
func (s *Snapshot) WatchAppChanges(ws memdb.WatchSet) error {
	if ws == nil {
		return nil
	}
	all, err := s.txn.Get(tableAppChanges, "id")
	if err != nil {
		return err
	}
	ws.Add(all.WatchCh())
	return nil
}

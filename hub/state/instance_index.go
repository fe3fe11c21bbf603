package state

import (
	"github.com/hashicorp/go-memdb"
)

// tableWatch holds watch indexes: per app, the last Raft index that
// created or deleted it, changed its status without its modify index
// (Pending, Noticed: status, not spec) or removed its last instance (the
// writes of its instances are in its row of instances:
// instanceSet.index); per host, the last that changed its state,
// inventory or existence (not its allocation, which every placement on
// it changes). A blocking query on one app's instances
// watches these rows, so that it answers when what it shows changes and
// not on every write of the instances or hosts tables (with 1,000 apps
// changing, a watcher of one app would otherwise be answered on nearly
// every write).
//
// The table is derived and never snapshotted: snapshots stay what they
// were, and a restore sets every app's and host's row to the restored
// state's latest index, and floorKey too, which a row missing since then
// reports. So on every node a row's value is at least the index of the
// last change it stands for and rises with every later one, which is what
// a blocking query needs; two nodes may differ below that (one replayed
// the log, one restored a snapshot), which at worst answers a watcher
// once early. Rows of deleted apps and hosts stay until the next restart:
// a few dozen bytes each.
const tableWatch = "watch_index"

// floorKey is the row that holds the floor.
const floorKey = "floor"

// watchEntry is one row of tableWatch.
type watchEntry struct {
	Key   string
	Index uint64
}

func watchSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableWatch, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: stringIndex(func(o *watchEntry) string { return o.Key })},
	}}
}

func appWatchKey(tenant, app string) string { return "app/" + tenant + "/" + app }
func hostWatchKey(id string) string         { return "host/" + id }

// AppInstancesIndex returns a Raft index that rises whenever one of an
// app's instances is written or removed or the app's status changes
// (which leaves its modify index alone), and adds to ws a channel that
// fires when it does. It is at least the index of the last such change;
// with the app's modify index it covers every change of the app and its
// instances.
func (s *Snapshot) AppInstancesIndex(ws memdb.WatchSet, tenant, app string) uint64 {
	idx := s.watchIndex(ws, appWatchKey(tenant, app))
	ch, obj, err := s.txn.FirstWatch(tableAppInstances, "id", tenant, app)
	if err != nil {
		return idx
	}
	if ws != nil {
		ws.Add(ch)
	}
	if obj != nil {
		idx = max(idx, obj.(*instanceSet).index)
	}
	return idx
}

// HostIndex returns a Raft index that rises whenever a host's state,
// inventory or existence changes (not its allocation), and adds to ws a
// channel that fires when it does. It is at least the index of the last
// such change.
func (s *Snapshot) HostIndex(ws memdb.WatchSet, id string) uint64 {
	return s.watchIndex(ws, hostWatchKey(id))
}

// WatchHosts adds to ws one channel that fires whenever any host's
// HostIndex moves. A query that depends on the states of many hosts
// watches this channel and reads their indexes with a nil WatchSet: one
// channel instead of one per host keeps its wait a plain select (go-memdb
// starts a goroutine for every 32 channels past the first 32), at the cost
// of waking when an unrelated host changes, which is rare, and answering
// only if its own index moved.
func (s *Snapshot) WatchHosts(ws memdb.WatchSet) error {
	if ws == nil {
		return nil
	}
	it, err := s.txn.Get(tableWatch, "id_prefix", "host/")
	if err != nil {
		return err
	}
	ws.Add(it.WatchCh())
	return nil
}

func (s *Snapshot) watchIndex(ws memdb.WatchSet, key string) uint64 {
	ch, obj, err := s.txn.FirstWatch(tableWatch, "id", key)
	if err != nil {
		return 0
	}
	if ws != nil {
		ws.Add(ch)
	}
	if obj != nil {
		return obj.(*watchEntry).Index
	}
	if obj, err := s.txn.First(tableWatch, "id", floorKey); err == nil && obj != nil {
		return obj.(*watchEntry).Index
	}
	return 0
}

// noteAppStatus records that the command changes an app's status (not
// its spec, so not its modify index) in its watch row. The write of the
// app's record that goes with it puts the app in the log of changes.
func (w *writer) noteAppStatus(tenant, app string) *Error {
	return w.noteWatch(appWatchKey(tenant, app))
}

// noteWatch records that the command changes what key stands for.
func (w *writer) noteWatch(key string) *Error {
	if err := writeWatch(w.txn, key, w.index); err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	return nil
}

// writeWatch sets key's watch row to index, unless it holds it already.
func writeWatch(txn *memdb.Txn, key string, index uint64) error {
	old, err := txn.First(tableWatch, "id", key)
	if err != nil {
		return err
	}
	if old != nil && old.(*watchEntry).Index == index {
		return nil
	}
	return txn.Insert(tableWatch, &watchEntry{Key: key, Index: index})
}

// setWatchFloor makes every row of a restored database report at least
// the restored state's latest index: the floor, and a row at the floor
// for every app and host, so that a query watches its own row rather than
// the part of the table where a missing row would be. The log of changed
// apps starts empty, incomplete up to that index.
func setWatchFloor(txn *memdb.Txn) error {
	idx := (&Snapshot{txn: txn}).LatestIndex()
	if err := txn.Insert(tableWatch, &watchEntry{Key: floorKey, Index: idx}); err != nil {
		return err
	}
	if err := setChangesFloor(txn, idx); err != nil {
		return err
	}
	apps, err := txn.Get(TableApps, "id")
	if err != nil {
		return err
	}
	for obj := apps.Next(); obj != nil; obj = apps.Next() {
		a := obj.(*App)
		if err := txn.Insert(tableWatch, &watchEntry{Key: appWatchKey(a.Tenant, a.Name), Index: idx}); err != nil {
			return err
		}
	}
	hosts, err := txn.Get(TableHosts, "id")
	if err != nil {
		return err
	}
	for obj := hosts.Next(); obj != nil; obj = hosts.Next() {
		if err := txn.Insert(tableWatch, &watchEntry{Key: hostWatchKey(obj.(*Host).ID), Index: idx}); err != nil {
			return err
		}
	}
	return nil
}

package state

import (
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// The instances of one app and of one host are kept as rows of their own,
// each holding its instances in id order, rather than as two more indexes
// of the instances table.
//
// Why: go-memdb keeps every index as a radix tree with a node, a leaf and
// a channel per entry. With 50,000 instances, the "app" and "host"
// indexes were 100,000 such entries, two thirds of what the instances
// cost the heap, all of which the garbage collector marks on every cycle
// and every instance write copied a path in. An app's row (a few dozen
// pointers) and a host's (a handful) are a few thousand entries in all,
// and a write copies one short list in each.
//
// Both tables are derived from the instances table and never snapshotted:
// a restore builds them again (buildInstanceSets). The writer keeps them
// with every instance it writes or removes (putInstance, dropInstance,
// setInstance), and a committed row's list is never changed: the first
// write of a row in a transaction replaces it with a new list, so a reader
// holding an older state keeps the list it read. Later writes of the same
// row in the same transaction (a plan placing fifty instances of an app,
// a batch of reports from one host) change that new list in place: no
// reader can hold it before the transaction commits, and an aborted
// transaction's rows are dropped with it.
const (
	tableAppInstances  = "app_instances"
	tableHostInstances = "host_instances"
)

// instanceSet is one row of tableAppInstances (Tenant and App set) or of
// tableHostInstances (Host set).
type instanceSet struct {
	Tenant, App string
	Host        string
	List        []*Instance // by ID; never changed once committed
	// gen is the FSM's number of the write transaction that made the row
	// (writer.gen; 0 for a restore's rows): a row with the writer's own
	// gen is uncommitted, and the writer may change it in place.
	gen uint64
}

func instanceSetSchemas() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableAppInstances: {Name: tableAppInstances, Indexes: map[string]*memdb.IndexSchema{
			// A tenant's apps are a prefix of "id" (tenantInstances).
			"id": {Name: "id", Unique: true, Indexer: stringPairIndex(func(o *instanceSet) string { return o.Tenant }, func(o *instanceSet) string { return o.App })},
		}},
		tableHostInstances: {Name: tableHostInstances, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: stringIndex(func(o *instanceSet) string { return o.Host })},
		}},
	}
}

// AppInstances returns the instances of one app, sorted by id. The slice
// is the caller's; the instances are shared and must not be changed.
func (s *Snapshot) AppInstances(ws memdb.WatchSet, tenant, app string) ([]*Instance, error) {
	l, err := s.instanceSet(ws, tableAppInstances, tenant, app)
	return slices.Clone(l), err
}

// HostInstances returns the instances placed on one host, sorted by id.
// The slice is the caller's; the instances are shared and must not be
// changed.
func (s *Snapshot) HostInstances(ws memdb.WatchSet, host string) ([]*Instance, error) {
	l, err := s.instanceSet(ws, tableHostInstances, host)
	return slices.Clone(l), err
}

// tenantInstances returns the instances of a tenant's apps, app by app.
func (s *Snapshot) tenantInstances(tenant string) ([]*Instance, error) {
	// The tenant in full, then an empty app prefix: "acme" must not
	// match the apps of "acme2".
	it, err := s.txn.Get(tableAppInstances, "id_prefix", tenant, "")
	if err != nil {
		return nil, err
	}
	var out []*Instance
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*instanceSet).List...)
	}
	return out, nil
}

// instanceSet returns the list of the row args names (shared: not to be
// changed) and adds to ws a channel that fires when the row does, which
// is whenever one of its instances is written or removed.
func (s *Snapshot) instanceSet(ws memdb.WatchSet, table string, args ...any) ([]*Instance, error) {
	ch, obj, err := s.txn.FirstWatch(table, "id", args...)
	if err != nil {
		return nil, err
	}
	if ws != nil {
		ws.Add(ch)
	}
	if obj == nil {
		return nil, nil
	}
	return obj.(*instanceSet).List, nil
}

// setInstance writes n over old (nil for a new instance) in the instances
// table and in its app's and host's rows; n nil removes old. It records
// nothing else (no allocation, metering or watch index: putInstance and
// dropInstance do).
func (w *writer) setInstance(old, n *Instance) *Error {
	var err error
	if n != nil {
		err = w.txn.Insert(TableInstances, n)
	} else {
		err = w.txn.Delete(TableInstances, old)
	}
	if err != nil {
		return Errorf(KindInternal, "instances: %v", err)
	}
	w.touch(TableInstances)
	if err := updateInstanceSets(w.txn, w.gen, old, n); err != nil {
		return Errorf(KindInternal, "instances: %v", err)
	}
	return nil
}

// updateInstanceSets replaces old (nil: none) with n (nil: none) in the
// rows of their apps and hosts, in the gen-th write transaction.
func updateInstanceSets(txn *memdb.Txn, gen uint64, old, n *Instance) error {
	if old != nil && (n == nil || old.Tenant != n.Tenant || old.App != n.App || old.Host != n.Host) {
		// Gone, or moved to another row (the scheduler never moves an
		// instance; this keeps the rows right if a command ever did).
		if err := replaceInSet(txn, gen, &instanceSet{Tenant: old.Tenant, App: old.App}, old.ID, nil); err != nil {
			return err
		}
		if err := replaceInSet(txn, gen, &instanceSet{Host: old.Host}, old.ID, nil); err != nil {
			return err
		}
	}
	if n == nil {
		return nil
	}
	if err := replaceInSet(txn, gen, &instanceSet{Tenant: n.Tenant, App: n.App}, n.ID, n); err != nil {
		return err
	}
	return replaceInSet(txn, gen, &instanceSet{Host: n.Host}, n.ID, n)
}

// replaceInSet puts n (nil: nothing) in place of the instance id in the
// row key names: an app's row when key has Tenant and App, else a host's.
// A row the gen-th transaction made is changed in place; any other is
// written again with a new list. A row left empty is deleted.
func replaceInSet(txn *memdb.Txn, gen uint64, key *instanceSet, id string, n *Instance) error {
	table, args := tableHostInstances, []any{key.Host}
	if key.App != "" {
		table, args = tableAppInstances, []any{key.Tenant, key.App}
	}
	obj, err := txn.First(table, "id", args...)
	if err != nil {
		return err
	}
	var row *instanceSet
	var list []*Instance
	if obj != nil {
		row = obj.(*instanceSet)
		list = row.List
	}
	i, found := slices.BinarySearchFunc(list, id, func(e *Instance, id string) int { return strings.Compare(e.ID, id) })
	if row != nil && row.gen == gen && (n != nil || len(list) > 1) {
		switch {
		case n != nil && found:
			row.List[i] = n
		case n != nil:
			row.List = slices.Insert(row.List, i, n)
		case found:
			row.List = slices.Delete(row.List, i, i+1)
		}
		return nil
	}
	var next []*Instance
	switch {
	case n != nil && found:
		next = slices.Clone(list)
		next[i] = n
	case n != nil:
		next = make([]*Instance, len(list)+1)
		copy(next, list[:i])
		next[i] = n
		copy(next[i+1:], list[i:])
	case !found:
		return nil
	case len(list) == 1:
		return txn.Delete(table, obj)
	default:
		next = make([]*Instance, 0, len(list)-1)
		next = append(append(next, list[:i]...), list[i+1:]...)
	}
	key.List, key.gen = next, gen
	return txn.Insert(table, key)
}

// buildInstanceSets fills the app and host rows from the instances table,
// as a restore needs: the table is read in id order, so every list is.
func buildInstanceSets(txn *memdb.Txn) error {
	it, err := txn.Get(TableInstances, "id")
	if err != nil {
		return err
	}
	type appKey struct{ tenant, app string }
	apps := map[appKey][]*Instance{}
	hosts := map[string][]*Instance{}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		i := obj.(*Instance)
		k := appKey{i.Tenant, i.App}
		apps[k] = append(apps[k], i)
		hosts[i.Host] = append(hosts[i.Host], i)
	}
	for k, l := range apps {
		if err := txn.Insert(tableAppInstances, &instanceSet{Tenant: k.tenant, App: k.app, List: slices.Clip(l)}); err != nil {
			return err
		}
	}
	for h, l := range hosts {
		if err := txn.Insert(tableHostInstances, &instanceSet{Host: h, List: slices.Clip(l)}); err != nil {
			return err
		}
	}
	return nil
}

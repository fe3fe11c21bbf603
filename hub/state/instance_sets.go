package state

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// Instances are kept in rows, not in a go-memdb table of their own: a row
// per app and a row per host, each holding its instances in id order, and
// rows of ids (tableInstanceIDs) to find an instance by id.
//
// Why: go-memdb keeps every index as a radix tree with a node, a leaf and
// a channel per entry. A table of 50,000 instances indexed by id, app and
// host was 150,000 such entries, most of what a node's state held, all of
// which the garbage collector marked on every cycle, and every instance
// write copied a path in each tree. The rows are a few thousand entries
// in all, and a write copies a short list or two.
//
// A snapshot still records the instances one by one in id order, as it
// did when they were a table (eachInstance), and a restore builds the
// rows again (loadInstances). The writer keeps the rows with every
// instance it writes or removes (setInstance), and a committed row's list
// is never changed: the first write of a row in a transaction replaces it
// with a new list, so a reader holding an older state keeps the list it
// read. Later writes of the same row in the same transaction (a plan
// placing fifty instances of an app, a batch of reports from one host)
// change that new list in place: no reader can hold it before the
// transaction commits, and an aborted transaction's rows are dropped with
// it.
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
	// index is the Raft index of the last command that changed the row
	// (0 for a restore's rows, whose apps' watch rows hold the restored
	// index): with the app's watch row, what AppInstancesIndex reports.
	index uint64
	// gen is the FSM's number of the write transaction that made the row
	// (writer.gen; 0 for a restore's rows): a row with the writer's own
	// gen is uncommitted, and the writer may change it in place.
	gen uint64
}

func instanceSchemas() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableInstanceIDs: instanceIDSchema(),
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
	row, err := first[instanceSet](s, ws, table, "id", args...)
	if err != nil || row == nil {
		return nil, err
	}
	return row.List, nil
}

// setInstance writes n over old (nil for a new instance) in the
// instances' ids and in its app's and host's rows; n nil removes old. A
// new instance's id must be free: planApply, the only command that places
// instances, refuses a taken one. It records nothing else (no allocation,
// metering or watch index: putInstance and dropInstance do).
func (w *writer) setInstance(old, n *Instance) *Error {
	if n != nil && (n.ID == "" || n.Host == "" || n.Tenant == "" || n.App == "") {
		return Errorf(KindInternal, "instance %q lacks an id, host, tenant or app", n.ID)
	}
	w.touchTable(TableInstances)
	if err := updateInstanceIDs(w.txn, w.gen, old, n); err != nil {
		return Errorf(KindInternal, "instances: %v", err)
	}
	if err := updateInstanceSets(w.txn, w.gen, w.index, old, n); err != nil {
		return Errorf(KindInternal, "instances: %v", err)
	}
	return nil
}

// updateInstanceIDs records where old and n are, when that changes.
func updateInstanceIDs(txn *memdb.Txn, gen uint64, old, n *Instance) error {
	if old != nil && (n == nil || old.ID != n.ID) {
		if err := setInstanceID(txn, gen, old.ID, ""); err != nil {
			return err
		}
	}
	if n != nil && (old == nil || old.ID != n.ID || old.Host != n.Host) {
		return setInstanceID(txn, gen, n.ID, n.Host)
	}
	return nil
}

// updateInstanceSets replaces old (nil: none) with n (nil: none) in the
// rows of their apps and hosts, in the gen-th write transaction, by the
// command at Raft index index (0: a restore's).
func updateInstanceSets(txn *memdb.Txn, gen, index uint64, old, n *Instance) error {
	if old != nil && (n == nil || old.Tenant != n.Tenant || old.App != n.App || old.Host != n.Host) {
		// Gone, or moved to another row (the scheduler never moves an
		// instance; this keeps the rows right if a command ever did).
		if err := replaceInSet(txn, gen, index, &instanceSet{Tenant: old.Tenant, App: old.App}, old.ID, nil); err != nil {
			return err
		}
		if err := replaceInSet(txn, gen, index, &instanceSet{Host: old.Host}, old.ID, nil); err != nil {
			return err
		}
	}
	if n == nil {
		return nil
	}
	if err := replaceInSet(txn, gen, index, &instanceSet{Tenant: n.Tenant, App: n.App}, n.ID, n); err != nil {
		return err
	}
	return replaceInSet(txn, gen, index, &instanceSet{Host: n.Host}, n.ID, n)
}

// replaceInSet puts n (nil: nothing) in place of the instance id in the
// row key names: an app's row when key has Tenant and App, else a host's.
// A row the gen-th transaction made is changed in place; any other is
// written again with a new list. Either way the row's index becomes
// index. A row left empty is deleted; an app's, whose index then goes
// with it, leaves index in the app's watch row instead.
func replaceInSet(txn *memdb.Txn, gen, index uint64, key *instanceSet, id string, n *Instance) error {
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
	i, found := searchID(list, id)
	if row != nil && row.gen == gen && (n != nil || len(list) > 1) {
		switch {
		case n != nil && found:
			row.List[i] = n
		case n != nil:
			row.List = slices.Insert(row.List, i, n)
		case found:
			row.List = slices.Delete(row.List, i, i+1)
		}
		row.index = max(row.index, index)
		return nil
	}
	var next []*Instance
	switch {
	case n != nil && found:
		next = slices.Clone(list)
		next[i] = n
	case n != nil:
		next = withInserted(list, i, n)
	case !found:
		return nil
	case len(list) == 1:
		if err := txn.Delete(table, obj); err != nil {
			return err
		}
		if key.App != "" && index > 0 {
			return writeWatch(txn, appWatchKey(key.Tenant, key.App), index)
		}
		return nil
	default:
		next = withDeleted(list, i)
	}
	key.List, key.gen, key.index = next, gen, index
	if row != nil {
		key.index = max(row.index, index)
	}
	return txn.Insert(table, key)
}

// withInserted returns a new slice: s with v inserted at k.
func withInserted[T any](s []T, k int, v T) []T {
	out := make([]T, len(s)+1)
	copy(out, s[:k])
	out[k] = v
	copy(out[k+1:], s[k:])
	return out
}

// withDeleted returns a new slice: s without its element k.
func withDeleted[T any](s []T, k int) []T {
	out := make([]T, 0, len(s)-1)
	return append(append(out, s[:k]...), s[k+1:]...)
}

// buildInstanceSets fills the app and host rows with insts, sorted by
// id, as a restore needs.
func buildInstanceSets(txn *memdb.Txn, insts []*Instance) error {
	type appKey struct{ tenant, app string }
	apps := map[appKey][]*Instance{}
	hosts := map[string][]*Instance{}
	for _, i := range insts {
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

// tableInstanceIDs finds an instance by id: the ids of every instance in
// order, each with its host, in rows of at most idChunkMax (a chunk's key
// is its first id). The instance itself is in its host's row. A chunk
// changes only when an instance is placed or removed, not when it is
// reported, and 50,000 ids make about a thousand rows instead of a tree
// entry each, while a change copies at most 64 ids.
//
// Chunks follow the rows' rule: a committed chunk is never changed; the
// first change in a transaction copies it, later ones in the same
// transaction change the copy in place.
const tableInstanceIDs = "instance_ids"

// idChunkMax is the most ids a chunk holds: a fuller one is split in two.
const idChunkMax = 64

// idChunk is one row of tableInstanceIDs.
type idChunk struct {
	First string   // IDs[0]: the row's key
	IDs   []string // sorted
	Hosts []string // Hosts[k] holds IDs[k]
	gen   uint64   // as instanceSet.gen
}

func instanceIDSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableInstanceIDs, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: stringIndex(func(o *idChunk) string { return o.First })},
	}}
}

// idChunkOf returns the chunk where id is or belongs: the last whose first
// id is at most id, or the first chunk when id comes before every chunk;
// nil when there is none.
func idChunkOf(txn *memdb.Txn, id string) (*idChunk, error) {
	it, err := txn.ReverseLowerBound(tableInstanceIDs, "id", id)
	if err != nil {
		return nil, err
	}
	obj := it.Next()
	if obj == nil {
		if obj, err = txn.First(tableInstanceIDs, "id"); err != nil || obj == nil {
			return nil, err
		}
	}
	return obj.(*idChunk), nil
}

// instanceHost returns the host of instance id ("" when there is none).
func instanceHost(txn *memdb.Txn, id string) (string, error) {
	c, err := idChunkOf(txn, id)
	if err != nil || c == nil {
		return "", err
	}
	if k, ok := slices.BinarySearch(c.IDs, id); ok {
		return c.Hosts[k], nil
	}
	return "", nil
}

// searchID finds where instance id is or belongs in list, sorted by id.
func searchID(list []*Instance, id string) (int, bool) {
	return slices.BinarySearchFunc(list, id, func(e *Instance, id string) int { return strings.Compare(e.ID, id) })
}

// findInstance returns instance id from a host's list (nil when absent).
func findInstance(list []*Instance, id string) *Instance {
	if k, ok := searchID(list, id); ok {
		return list[k]
	}
	return nil
}

// Instance returns an instance by id, and adds to ws channels that fire
// when it is written or when an instance is placed or removed.
func (s *Snapshot) Instance(ws memdb.WatchSet, id string) (*Instance, error) {
	if ws != nil {
		all, err := s.txn.Get(tableInstanceIDs, "id")
		if err != nil {
			return nil, err
		}
		ws.Add(all.WatchCh())
	}
	host, err := instanceHost(s.txn, id)
	if err != nil || host == "" {
		return nil, err
	}
	return s.instanceOn(ws, host, id)
}

// instanceOn returns instance id if it is on host (nil when it is not),
// and adds to ws a channel that fires when an instance on host is
// written, placed or removed.
func (s *Snapshot) instanceOn(ws memdb.WatchSet, host, id string) (*Instance, error) {
	l, err := s.instanceSet(ws, tableHostInstances, host)
	if err != nil {
		return nil, err
	}
	return findInstance(l, id), nil
}

// Instances returns every instance, sorted by id, and adds to ws a
// channel that fires when any instance is written, placed or removed.
func (s *Snapshot) Instances(ws memdb.WatchSet) ([]*Instance, error) {
	var out []*Instance
	err := eachInstance(s.txn, ws, func(i *Instance) error { out = append(out, i); return nil })
	return out, err
}

// eachInstance calls fn with every instance in id order.
func eachInstance(txn *memdb.Txn, ws memdb.WatchSet, fn func(*Instance) error) error {
	hosts, err := txn.Get(tableHostInstances, "id")
	if err != nil {
		return err
	}
	if ws != nil {
		ws.Add(hosts.WatchCh())
	}
	onHost := map[string][]*Instance{}
	for obj := hosts.Next(); obj != nil; obj = hosts.Next() {
		row := obj.(*instanceSet)
		onHost[row.Host] = row.List
	}
	chunks, err := txn.Get(tableInstanceIDs, "id")
	if err != nil {
		return err
	}
	for obj := chunks.Next(); obj != nil; obj = chunks.Next() {
		c := obj.(*idChunk)
		for k, id := range c.IDs {
			i := findInstance(onHost[c.Hosts[k]], id)
			if i == nil {
				return fmt.Errorf("instance %s is on host %s by its id, not in the host's list", id, c.Hosts[k])
			}
			if err := fn(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// setInstanceID records that instance id is on host ("": removes it), in
// the gen-th write transaction.
func setInstanceID(txn *memdb.Txn, gen uint64, id, host string) error {
	c, err := idChunkOf(txn, id)
	if err != nil {
		return err
	}
	if c == nil {
		if host == "" {
			return nil
		}
		return txn.Insert(tableInstanceIDs, &idChunk{First: id, IDs: []string{id}, Hosts: []string{host}, gen: gen})
	}
	k, found := slices.BinarySearch(c.IDs, id)
	if found && c.Hosts[k] == host || !found && host == "" {
		return nil
	}
	ids, hosts := c.IDs, c.Hosts
	owned := c.gen == gen
	switch {
	case found && host != "":
		if !owned {
			ids, hosts = slices.Clone(ids), slices.Clone(hosts)
		}
		hosts[k] = host
	case host != "" && owned:
		ids, hosts = slices.Insert(ids, k, id), slices.Insert(hosts, k, host)
	case host != "":
		ids, hosts = withInserted(ids, k, id), withInserted(hosts, k, host)
	case owned:
		ids, hosts = slices.Delete(ids, k, k+1), slices.Delete(hosts, k, k+1)
	default:
		ids, hosts = withDeleted(ids, k), withDeleted(hosts, k)
	}
	if c.gen == gen && len(ids) > 0 && ids[0] == c.First && len(ids) <= idChunkMax {
		// This transaction's own chunk, under the same key.
		c.IDs, c.Hosts = ids, hosts
		return nil
	}
	if len(ids) == 0 || ids[0] != c.First {
		if err := txn.Delete(tableInstanceIDs, c); err != nil {
			return err
		}
	}
	return putIDChunks(txn, gen, ids, hosts)
}

// putIDChunks writes ids and hosts as chunks of at most idChunkMax, each
// split from the next: a chunk grown past the limit becomes two halves.
func putIDChunks(txn *memdb.Txn, gen uint64, ids, hosts []string) error {
	for len(ids) > 0 {
		n := len(ids)
		if n > idChunkMax {
			n = min(n/2, idChunkMax)
		}
		// Clipped, so that growing one chunk in place never writes into
		// the next one's part of a shared array.
		c := &idChunk{First: ids[0], IDs: slices.Clip(ids[:n]), Hosts: slices.Clip(hosts[:n]), gen: gen}
		if err := txn.Insert(tableInstanceIDs, c); err != nil {
			return err
		}
		ids, hosts = ids[n:], hosts[n:]
	}
	return nil
}

// loadInstances puts a restored snapshot's instances, sorted by id, into
// the empty tables: ids, apps' rows and hosts' rows.
func loadInstances(txn *memdb.Txn, insts []*Instance) error {
	ids, hosts := make([]string, len(insts)), make([]string, len(insts))
	for k, i := range insts {
		if i.ID == "" || i.Host == "" || i.Tenant == "" || i.App == "" {
			return fmt.Errorf("instance %q lacks an id, host, tenant or app", i.ID)
		}
		if k > 0 && insts[k-1].ID >= i.ID {
			return fmt.Errorf("instance %s follows %s: instances are recorded once each, by id", i.ID, insts[k-1].ID)
		}
		ids[k], hosts[k] = i.ID, i.Host
	}
	// Restored chunks are half full, so that placements fill them before
	// they split.
	for len(ids) > 0 {
		n := min(len(ids), idChunkMax/2)
		if err := putIDChunks(txn, 0, ids[:n], hosts[:n]); err != nil {
			return err
		}
		ids, hosts = ids[n:], hosts[n:]
	}
	return buildInstanceSets(txn, insts)
}

package state

import (
	"context"
	"sort"
	"sync"

	"github.com/hashicorp/go-memdb"
)

// Store is the hub's in-memory, indexed, MVCC state. Only the FSM writes it.
// A restore swaps in a new database and wakes every blocked query.
type Store struct {
	mu      sync.RWMutex
	db      *memdb.MemDB
	abandon chan struct{} // closed when db is replaced
}

// NewStore returns an empty store.
func NewStore() (*Store, error) {
	db, err := newDB()
	if err != nil {
		return nil, err
	}
	return &Store{db: db, abandon: make(chan struct{})}, nil
}

func (s *Store) current() (*memdb.MemDB, chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db, s.abandon
}

// replace swaps in db (after a restore) and wakes blocked queries.
func (s *Store) replace(db *memdb.MemDB) {
	s.mu.Lock()
	old := s.abandon
	s.db, s.abandon = db, make(chan struct{})
	s.mu.Unlock()
	close(old)
}

// Snapshot returns an immutable, consistent view of the store.
func (s *Store) Snapshot() *Snapshot {
	db, _ := s.current()
	return &Snapshot{txn: db.Txn(false)}
}

// Watch returns a snapshot like Snapshot and adds to ws a channel that
// fires when the store's database is replaced (a restore, such as a
// follower installing the leader's snapshot). A watcher of the
// snapshot's tables must also wait on it: the replaced database's
// channels never fire again.
func (s *Store) Watch(ws memdb.WatchSet) *Snapshot {
	db, abandon := s.current()
	ws.Add(abandon)
	return &Snapshot{txn: db.Txn(false)}
}

// Blocking runs fn against a fresh snapshot and, while the index fn returns
// is not above minIndex, waits for something fn read to change (or ctx to
// end) and runs it again. A timeout is not an error: the last answer is
// returned.
func (s *Store) Blocking(ctx context.Context, minIndex uint64, fn func(ws memdb.WatchSet, snap *Snapshot) (uint64, error)) (uint64, error) {
	for {
		db, abandon := s.current()
		ws := memdb.NewWatchSet()
		ws.Add(abandon)
		idx, err := fn(ws, &Snapshot{txn: db.Txn(false)})
		if err != nil || minIndex == 0 || idx > minIndex {
			return idx, err
		}
		if ws.WatchCtx(ctx) != nil {
			return idx, nil
		}
	}
}

// Snapshot is a read-only view of the store at one point in time. Getters
// return (nil, nil) when the object does not exist. ws may be nil; when not,
// it gathers the channels that fire when what was read changes.
type Snapshot struct {
	txn *memdb.Txn
}

func first[T any](s *Snapshot, ws memdb.WatchSet, table, index string, args ...any) (*T, error) {
	ch, obj, err := s.txn.FirstWatch(table, index, args...)
	if err != nil {
		return nil, err
	}
	if ws != nil {
		ws.Add(ch)
	}
	if obj == nil {
		return nil, nil
	}
	return obj.(*T), nil
}

func list[T any](s *Snapshot, ws memdb.WatchSet, table, index string, args ...any) ([]*T, error) {
	return appendList[T](nil, s, ws, table, index, args...)
}

// appendList is list appending to out.
func appendList[T any](out []*T, s *Snapshot, ws memdb.WatchSet, table, index string, args ...any) ([]*T, error) {
	it, err := s.txn.Get(table, index, args...)
	if err != nil {
		return out, err
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*T))
	}
	return out, nil
}

// listFrom lists a table's objects from the first whose index value is
// at least args, in that index's order. LowerBound iterators carry no
// watch channel: ws watches the whole table.
func listFrom[T any](s *Snapshot, ws memdb.WatchSet, table, index string, args ...any) ([]*T, error) {
	it, err := s.txn.LowerBound(table, index, args...)
	if err != nil {
		return nil, err
	}
	if ws != nil {
		all, err := s.txn.Get(table, "id")
		if err != nil {
			return nil, err
		}
		ws.Add(all.WatchCh())
	}
	var out []*T
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*T))
	}
	return out, nil
}

// Tenant returns the named tenant.
func (s *Snapshot) Tenant(ws memdb.WatchSet, name string) (*Tenant, error) {
	return first[Tenant](s, ws, TableTenants, "id", name)
}

// Tenants returns every tenant, sorted by name.
func (s *Snapshot) Tenants(ws memdb.WatchSet) ([]*Tenant, error) {
	return list[Tenant](s, ws, TableTenants, "id")
}

// Token returns the token with that ID.
func (s *Snapshot) Token(ws memdb.WatchSet, id string) (*Token, error) {
	return first[Token](s, ws, TableTokens, "id", id)
}

// TokenByHash returns the token whose secret hashes to hash.
func (s *Snapshot) TokenByHash(ws memdb.WatchSet, hash string) (*Token, error) {
	return first[Token](s, ws, TableTokens, "hash", hash)
}

// Tokens returns the tokens of tenant ("" for all tokens), sorted by ID.
func (s *Snapshot) Tokens(ws memdb.WatchSet, tenant string) ([]*Token, error) {
	if tenant == "" {
		return list[Token](s, ws, TableTokens, "id")
	}
	out, err := list[Token](s, ws, TableTokens, "tenant", tenant)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// Pool returns the named pool.
func (s *Snapshot) Pool(ws memdb.WatchSet, name string) (*Pool, error) {
	return first[Pool](s, ws, TablePools, "id", name)
}

// Pools returns every pool, sorted by name.
func (s *Snapshot) Pools(ws memdb.WatchSet) ([]*Pool, error) {
	return list[Pool](s, ws, TablePools, "id")
}

// App returns one app of a tenant.
func (s *Snapshot) App(ws memdb.WatchSet, tenant, name string) (*App, error) {
	return first[App](s, ws, TableApps, "id", tenant, name)
}

// Apps returns the apps of tenant ("" for every tenant), sorted by tenant
// and name.
func (s *Snapshot) Apps(ws memdb.WatchSet, tenant string) ([]*App, error) {
	if tenant == "" {
		return list[App](s, ws, TableApps, "id")
	}
	// The tenant in full, then an empty name prefix: "acme" must not
	// match the apps of "acme2".
	return list[App](s, ws, TableApps, "id_prefix", tenant, "")
}

// AppVersion returns one version of an app.
func (s *Snapshot) AppVersion(ws memdb.WatchSet, tenant, app string, version int) (*AppVersion, error) {
	return first[AppVersion](s, ws, TableAppVersions, "id", tenant, app, version)
}

// AppVersions returns every version of an app, oldest first.
func (s *Snapshot) AppVersions(ws memdb.WatchSet, tenant, app string) ([]*AppVersion, error) {
	return list[AppVersion](s, ws, TableAppVersions, "id_prefix", appPrefix(tenant, app)...)
}

// Index returns the highest Raft index that changed any of tables.
func (s *Snapshot) Index(tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		obj, err := s.txn.First(tableIndex, "id", t)
		if err == nil && obj != nil && obj.(*IndexEntry).Index > max {
			max = obj.(*IndexEntry).Index
		}
	}
	return max
}

// WatchTables is Index that also adds to ws a watch firing when any of
// tables next changes.
func (s *Snapshot) WatchTables(ws memdb.WatchSet, tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		ch, obj, err := s.txn.FirstWatch(tableIndex, "id", t)
		if err != nil {
			continue
		}
		if obj == nil {
			// A table never written has no entry, and the watch of a
			// missing entry is that of a node the other tables' entries
			// share: it would fire on every write. The table's own tree
			// fires when its first row (and its entry) is written; the
			// instances' is their ids' table.
			tree := t
			if t == TableInstances {
				tree = tableInstanceIDs
			}
			if it, err := s.txn.Get(tree, "id"); err == nil {
				ch = it.WatchCh()
			}
		}
		ws.Add(ch)
		if obj != nil && obj.(*IndexEntry).Index > max {
			max = obj.(*IndexEntry).Index
		}
	}
	return max
}

// LatestIndex returns the highest Raft index that changed anything.
func (s *Snapshot) LatestIndex() uint64 {
	it, err := s.txn.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var max uint64
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if e := obj.(*IndexEntry); e.Index > max {
			max = e.Index
		}
	}
	return max
}

// Bootstrapped reports whether the ACL bootstrap has happened.
func (s *Snapshot) Bootstrapped() bool {
	obj, err := s.txn.First(tableMeta, "id", "meta")
	return err == nil && obj != nil && obj.(*metaEntry).Bootstrapped
}

// WatchIndex returns LatestIndex and adds to ws a channel that fires when
// any table changes.
func (s *Snapshot) WatchIndex(ws memdb.WatchSet) uint64 {
	it, err := s.txn.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	ws.Add(it.WatchCh())
	var max uint64
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if e := obj.(*IndexEntry); e.Index > max {
			max = e.Index
		}
	}
	return max
}

const agentCAID = "agent-ca"

// AgentCA returns the agent CA, or nil before the first leader made it.
func (s *Snapshot) AgentCA(ws memdb.WatchSet) (*AgentCA, error) {
	return first[AgentCA](s, ws, TableAgentCA, "id", agentCAID)
}

// JoinToken returns a join token.
func (s *Snapshot) JoinToken(ws memdb.WatchSet, id string) (*JoinToken, error) {
	return first[JoinToken](s, ws, TableJoinTokens, "id", id)
}

// JoinTokens returns every join token, sorted by ID.
func (s *Snapshot) JoinTokens(ws memdb.WatchSet) ([]*JoinToken, error) {
	return list[JoinToken](s, ws, TableJoinTokens, "id")
}

// Host returns a host.
func (s *Snapshot) Host(ws memdb.WatchSet, id string) (*Host, error) {
	return first[Host](s, ws, TableHosts, "id", id)
}

// HostByName returns the host of that name in a pool.
func (s *Snapshot) HostByName(ws memdb.WatchSet, pool, name string) (*Host, error) {
	return first[Host](s, ws, TableHosts, "pool_name", pool, name)
}

// PoolHosts returns the hosts of one pool, sorted by name.
func (s *Snapshot) PoolHosts(ws memdb.WatchSet, pool string) ([]*Host, error) {
	// The pool in full, then an empty name prefix: "bj" must not match
	// the hosts of "bj2".
	return list[Host](s, ws, TableHosts, "pool_name_prefix", pool, "")
}

// Hosts returns every host, sorted by ID.
func (s *Snapshot) Hosts(ws memdb.WatchSet) ([]*Host, error) {
	return list[Host](s, ws, TableHosts, "id")
}

// AppendHosts is Hosts appending to dst: a caller that lists every host
// again and again (the planner, every round) reuses one slice.
func (s *Snapshot) AppendHosts(ws memdb.WatchSet, dst []*Host) ([]*Host, error) {
	return appendList(dst, s, ws, TableHosts, "id")
}

// Events returns the events recorded after index (0: all), oldest first.
func (s *Snapshot) Events(ws memdb.WatchSet, after uint64) ([]*Event, error) {
	return listFrom[Event](s, ws, TableEvents, "id", after+1, 0)
}

// WaitIndex waits until the store holds the write of Raft index idx (every
// successful command changes the store) or ctx ends.
func (s *Store) WaitIndex(ctx context.Context, idx uint64) error {
	if s.Snapshot().LatestIndex() >= idx {
		return nil // the usual case on the leader: Raft answers once applied
	}
	_, err := s.Blocking(ctx, idx-1, func(ws memdb.WatchSet, snap *Snapshot) (uint64, error) {
		return snap.WatchIndex(ws), nil
	})
	if err == nil && s.Snapshot().LatestIndex() < idx {
		err = ctx.Err()
	}
	return err
}

package api

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// instancesCache shares an app's instance list between the queries that
// read it at the same state: when one write wakes 1,000 watchers of an
// app, the node builds and encodes their answer once. An answer is a function of the
// state, which a Raft index names on a node (the FSM is deterministic), of
// the tenant and of the app; it carries the watches its building added,
// which every query that uses it adds to its own. The zero value is ready.
//
// An answer built again with the same bytes as the last one keeps the
// last one's index: a write that the list does not show (the app's count
// changed, and the planner has not placed the new instance yet; a host of
// the app's changed in a way the list does not show) does not wake its
// watchers for the answer they already hold. The index stays at least
// that of the last change of the answer, which is what a blocking query
// needs.
type instancesCache struct {
	mu sync.Mutex
	m  map[string]*appAnswer // by tenant + "/" + app
}

// appAnswer is one app's latest answer. Its lock is held while the answer
// is built, so an app's answers are built one at a time and in the order
// of the states they were built at: the answers a node gives for an app
// form one sequence whose index rises whenever the answer changes. That
// is what lets an unchanged answer keep its index (a build racing with a
// later one must not compare itself with an answer older than one
// already given). It also builds the answer for 1,000 woken watchers once
// rather than once per watcher that arrived before the first finished.
type appAnswer struct {
	mu   sync.Mutex
	last *cachedInstances
}

type cachedInstances struct {
	at   uint64 // the state's latest index
	body encodedJSON
	idx  uint64
	ws   memdb.WatchSet // read-only once cached
}

// encodedJSON is an answer already encoded as writeJSON encodes it.
type encodedJSON []byte

// maxCachedApps bounds the cache; past it, it starts over.
const maxCachedApps = 4096

// get returns build's answer for the app at snap (or at a later state),
// encoded, building and encoding it only when no query did at that state
// or a later one.
func (c *instancesCache) get(ws memdb.WatchSet, snap *state.Snapshot, tenant, name string,
	build func(memdb.WatchSet, *state.Snapshot, string, string) ([]apitypes.Instance, uint64, error)) (encodedJSON, uint64, error) {
	key := tenant + "/" + name
	at := snap.LatestIndex()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedApps {
		c.m = map[string]*appAnswer{}
	}
	a := c.m[key]
	if a == nil {
		a = &appAnswer{}
		c.m[key] = a
	}
	c.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.last; e != nil && e.at >= at {
		for ch := range e.ws {
			ws.Add(ch)
		}
		return e.body, e.idx, nil
	}
	own := memdb.NewWatchSet()
	out, idx, err := build(own, snap, tenant, name)
	for ch := range own {
		ws.Add(ch)
	}
	if err != nil {
		return nil, idx, err
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(out); err != nil {
		return nil, idx, err
	}
	body := buf.Bytes()
	if e := a.last; e != nil && e.idx <= idx && bytes.Equal(e.body, body) {
		idx, body = e.idx, e.body
	}
	a.last = &cachedInstances{at: at, body: body, idx: idx, ws: own}
	return body, idx, nil
}

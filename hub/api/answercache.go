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
type instancesCache struct {
	mu sync.Mutex
	m  map[string]*cachedInstances // by tenant + "/" + app
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

// get returns build's answer for the app at snap, encoded, building and
// encoding it only when no query did at the same state.
func (c *instancesCache) get(ws memdb.WatchSet, snap *state.Snapshot, tenant, name string,
	build func(memdb.WatchSet, *state.Snapshot, string, string) ([]apitypes.Instance, uint64, error)) (encodedJSON, uint64, error) {
	key := tenant + "/" + name
	at := snap.LatestIndex()
	c.mu.Lock()
	e := c.m[key]
	c.mu.Unlock()
	if e == nil || e.at != at {
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
		e = &cachedInstances{at: at, body: buf.Bytes(), idx: idx, ws: own}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedApps {
			c.m = map[string]*cachedInstances{}
		}
		if old := c.m[key]; old == nil || old.at < at {
			c.m[key] = e
		}
		c.mu.Unlock()
		return e.body, idx, nil
	}
	for ch := range e.ws {
		ws.Add(ch)
	}
	return e.body, e.idx, nil
}

package gateway

import (
	"bytes"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// Route table deltas. Every agent's router gets its pool's whole table,
// and a busy cluster changes it with almost every write (an instance
// ready, another stopped): at 1,000 apps of 50 instances, 1.8 MB to each
// agent of the pool for every change, most of it unchanged. An agent of
// protocol 5 and up that holds a recent table is sent only the apps that
// changed since (wire.ApplyRouteDelta rebuilds the whole table on its
// side); a new session, an agent too far behind, or one that asks
// (RouteAck.want_whole) gets the whole table.

// keptChanges is how many of a pool's last table changes a delta can
// span; an agent further behind gets the whole table.
const keptChanges = 128

// appPart is one app's part of a table: its entry and routes, and their
// encoding, which tells whether it changed.
type appPart struct {
	app  *wire.RouteApp
	http []*wire.HTTPRoute
	tcp  []*wire.TCPRoute
	sum  []byte
}

// tableChange is what one published table changed over the one before,
// of version from.
type tableChange struct {
	from  uint64
	apps  []string // apps changed, added or removed
	certs bool     // certificates changed
}

// certsSum encodes t's certificates, which tells whether they changed.
func certsSum(t *wire.RouteTable) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&wire.RouteTable{Certs: t.Certs})
}

// diffParts is what a table of parts and certs changes over cur.
func diffParts(cur *poolTable, parts map[string]*appPart, certs []byte) tableChange {
	c := tableChange{from: cur.table.Version, certs: !bytes.Equal(cur.certs, certs)}
	for k, p := range parts {
		if old := cur.parts[k]; old == nil || (old != p && !bytes.Equal(old.sum, p.sum)) {
			c.apps = append(c.apps, k)
		}
	}
	for k := range cur.parts {
		if parts[k] == nil {
			c.apps = append(c.apps, k)
		}
	}
	slices.Sort(c.apps)
	return c
}

// deltaFrom returns the frames of a delta from version base to pt's
// table (one, or its parts), or nil when pt's history does not reach back
// to base, the delta would be no smaller than the whole table, or it
// cannot be sent. Made once per base, for every agent at it.
func (pt *poolTable) deltaFrom(base uint64, limit int) [][]byte {
	pt.deltaMu.Lock()
	defer pt.deltaMu.Unlock()
	if frames, ok := pt.deltas[base]; ok {
		return frames
	}
	frames := pt.makeDelta(base, limit)
	if pt.deltas == nil {
		pt.deltas = map[uint64][][]byte{}
	}
	pt.deltas[base] = frames
	return frames
}

func (pt *poolTable) makeDelta(base uint64, limit int) [][]byte {
	i := slices.IndexFunc(pt.history, func(c tableChange) bool { return c.from == base })
	if i < 0 {
		return nil
	}
	d := &wire.RouteTable{Version: pt.table.Version, BaseVersion: base}
	var keys []string
	for _, c := range pt.history[i:] {
		keys = append(keys, c.apps...)
		d.CertsChanged = d.CertsChanged || c.certs
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		p := pt.parts[k]
		if p == nil {
			d.RemovedApps = append(d.RemovedApps, k)
			continue
		}
		d.Apps = append(d.Apps, p.app)
		d.Http = append(d.Http, p.http...)
		d.Tcp = append(d.Tcp, p.tcp...)
	}
	if d.CertsChanged {
		d.Certs = pt.table.Certs
	}
	frames, err := tableFrames(d, limit)
	if err != nil || framesSize(frames) >= pt.size {
		return nil
	}
	return frames
}

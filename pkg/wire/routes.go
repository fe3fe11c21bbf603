package wire

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
)

// ErrRouteBase is a route table delta over a table other than the one
// held.
var ErrRouteBase = errors.New("route table delta over another table")

// ApplyRouteDelta returns the whole table that delta d (base_version set)
// makes of the whole table cur; ErrRouteBase when cur is not d's base.
// Neither is changed.
func ApplyRouteDelta(cur, d *RouteTable) (*RouteTable, error) {
	if d.GetBaseVersion() == 0 {
		return nil, errors.New("route table: not a delta")
	}
	if cur == nil || cur.GetBaseVersion() != 0 || cur.GetVersion() != d.GetBaseVersion() {
		return nil, fmt.Errorf("%w: the delta's base is version %d, the table held is version %d", ErrRouteBase, d.GetBaseVersion(), cur.GetVersion())
	}
	touched := make(map[string]bool, len(d.Apps)+len(d.RemovedApps))
	for _, a := range d.Apps {
		touched[a.Key] = true
	}
	for _, k := range d.RemovedApps {
		touched[k] = true
	}
	out := &RouteTable{Version: d.Version, Certs: cur.Certs}
	if d.CertsChanged {
		out.Certs = d.Certs
	}
	out.Apps = make([]*RouteApp, 0, len(cur.Apps)+len(d.Apps))
	for _, a := range cur.Apps {
		if !touched[a.Key] {
			out.Apps = append(out.Apps, a)
		}
	}
	out.Apps = append(out.Apps, d.Apps...)
	for _, r := range cur.Http {
		if !touched[r.App] {
			out.Http = append(out.Http, r)
		}
	}
	out.Http = append(out.Http, d.Http...)
	for _, r := range cur.Tcp {
		if !touched[r.App] {
			out.Tcp = append(out.Tcp, r)
		}
	}
	out.Tcp = append(out.Tcp, d.Tcp...)
	SortRouteTable(out)
	return out, nil
}

// SortRouteTable puts a table in the order the hub builds it in: apps by
// key, HTTP routes by host and path, TCP routes by port. A list already in
// order (most of a table joined from its parts) is only checked.
func SortRouteTable(t *RouteTable) {
	sortStable(t.Apps, func(a, b *RouteApp) int { return cmp.Compare(a.Key, b.Key) })
	sortStable(t.Http, func(a, b *HTTPRoute) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.App, b.App))
	})
	sortStable(t.Tcp, func(a, b *TCPRoute) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.App, b.App))
	})
}

func sortStable[E any](s []E, cmp func(a, b E) int) {
	if !slices.IsSortedFunc(s, cmp) {
		slices.SortStableFunc(s, cmp)
	}
}

// MaxRouteParts bounds the parts of one route table, each within the
// agents' frame limit: 64 MiB at 4 MiB a frame, some 35,000 apps of 50
// instances routed on one pool.
const MaxRouteParts = 16

// SplitRouteTable returns t as the parts it is sent in: t alone when its
// envelope encodes in at most limit bytes, else parts whose envelopes
// each do. Every part carries t's version, base and certs_changed; each
// app goes whole into one part with its routes; all parts but the last
// have more set. An app with its routes, or a certificate, that does not
// fit in a part alone is an error, and so are more parts than an agent
// joins (MaxRouteParts). t is not changed.
func SplitRouteTable(t *RouteTable, limit int) ([]*RouteTable, error) {
	if envelopeSize(t) <= limit {
		return []*RouteTable{t}, nil
	}
	head := func() *RouteTable {
		return &RouteTable{Version: t.Version, BaseVersion: t.BaseVersion, CertsChanged: t.CertsChanged, More: true}
	}
	// A part's lists have the room its header leaves, less the few bytes
	// by which the length of a larger table encodes longer.
	room := limit - envelopeSize(head()) - 4
	if room <= 0 {
		return nil, fmt.Errorf("route table version %d: a part of at most %d bytes holds no more than its header", t.Version, limit)
	}
	// What goes in a part, each a table of its own, in t's order: each
	// app with its routes, then routes of no app in t (none in a table
	// the hub builds), the certificates and the apps removed.
	items := make([]*RouteTable, 0, len(t.Apps)+len(t.Certs)+len(t.RemovedApps))
	byApp := make(map[string]*RouteTable, len(t.Apps))
	for _, a := range t.Apps {
		it := &RouteTable{Apps: []*RouteApp{a}}
		items = append(items, it)
		if byApp[a.Key] == nil {
			byApp[a.Key] = it
		}
	}
	for _, r := range t.Http {
		if it := byApp[r.App]; it != nil {
			it.Http = append(it.Http, r)
		} else {
			items = append(items, &RouteTable{Http: []*HTTPRoute{r}})
		}
	}
	for _, r := range t.Tcp {
		if it := byApp[r.App]; it != nil {
			it.Tcp = append(it.Tcp, r)
		} else {
			items = append(items, &RouteTable{Tcp: []*TCPRoute{r}})
		}
	}
	for _, c := range t.Certs {
		items = append(items, &RouteTable{Certs: []*RouteCert{c}})
	}
	for _, k := range t.RemovedApps {
		items = append(items, &RouteTable{RemovedApps: []string{k}})
	}
	var parts []*RouteTable
	part, used := head(), 0
	for _, it := range items {
		// The lists of a table encode one after the other, so sizes add.
		size := proto.Size(it)
		if size > room {
			return nil, fmt.Errorf("route table version %d: %s takes %d bytes, more than a part of at most %d bytes holds", t.Version, itemName(it), size, limit)
		}
		if used+size > room {
			parts = append(parts, part)
			if len(parts) == MaxRouteParts {
				return nil, fmt.Errorf("route table version %d takes more than %d parts of at most %d bytes, the most an agent joins", t.Version, MaxRouteParts, limit)
			}
			part, used = head(), 0
		}
		used += size
		part.Apps = append(part.Apps, it.Apps...)
		part.Http = append(part.Http, it.Http...)
		part.Tcp = append(part.Tcp, it.Tcp...)
		part.Certs = append(part.Certs, it.Certs...)
		part.RemovedApps = append(part.RemovedApps, it.RemovedApps...)
	}
	part.More = false
	return append(parts, part), nil
}

// itemName names what one of SplitRouteTable's items holds.
func itemName(it *RouteTable) string {
	switch {
	case len(it.Apps) > 0:
		return "app " + it.Apps[0].Key
	case len(it.Http) > 0:
		return "route " + it.Http[0].Host + it.Http[0].Path
	case len(it.Tcp) > 0:
		return fmt.Sprintf("TCP route %d", it.Tcp[0].Port)
	case len(it.Certs) > 0:
		return "the certificate of " + it.Certs[0].Domain
	}
	return "removed app " + it.RemovedApps[0]
}

func envelopeSize(t *RouteTable) int {
	return proto.Size(&Envelope{Msg: &Envelope_RouteTable{RouteTable: t}})
}

// RouteParts joins the parts of route tables as an agent receives them.
// The zero value is ready, and takes at most MaxRouteParts parts a table.
type RouteParts struct {
	// Max bounds the parts of one table (0: MaxRouteParts).
	Max int

	held *RouteTable
	n    int
}

// Add takes a table or a part of one, and returns the table once its
// last part is in: t itself when it came in one piece; nil, and no
// error, while parts are due. A part of another version or base than the
// ones before it, or parts past the bound, are an error (ErrCorrupt), and
// what was gathered is dropped.
func (p *RouteParts) Add(t *RouteTable) (*RouteTable, error) {
	if p.held == nil && !t.GetMore() {
		return t, nil
	}
	if h := p.held; h != nil && (t.GetVersion() != h.Version || t.GetBaseVersion() != h.BaseVersion) {
		p.Reset()
		return nil, fmt.Errorf("%w: a route table part of version %d (base %d) among the parts of version %d (base %d)",
			ErrCorrupt, t.GetVersion(), t.GetBaseVersion(), h.Version, h.BaseVersion)
	}
	if p.n++; p.n > cmp.Or(p.Max, MaxRouteParts) {
		p.Reset()
		return nil, fmt.Errorf("%w: route table version %d in more than %d parts", ErrCorrupt, t.GetVersion(), cmp.Or(p.Max, MaxRouteParts))
	}
	if p.held == nil {
		p.held = &RouteTable{Version: t.Version, BaseVersion: t.BaseVersion}
	}
	h := p.held
	h.Apps = append(h.Apps, t.Apps...)
	h.Http = append(h.Http, t.Http...)
	h.Tcp = append(h.Tcp, t.Tcp...)
	h.Certs = append(h.Certs, t.Certs...)
	h.RemovedApps = append(h.RemovedApps, t.RemovedApps...)
	h.CertsChanged = h.CertsChanged || t.CertsChanged
	if t.More {
		return nil, nil
	}
	p.Reset()
	SortRouteTable(h)
	return h, nil
}

// Reset drops the parts gathered (a new session starts with none).
func (p *RouteParts) Reset() { p.held, p.n = nil, 0 }

package wire

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
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
// key, HTTP routes by host and path, TCP routes by port.
func SortRouteTable(t *RouteTable) {
	slices.SortStableFunc(t.Apps, func(a, b *RouteApp) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortStableFunc(t.Http, func(a, b *HTTPRoute) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.App, b.App))
	})
	slices.SortStableFunc(t.Tcp, func(a, b *TCPRoute) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.App, b.App))
	})
}

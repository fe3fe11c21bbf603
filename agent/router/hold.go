package router

import (
	"net/http"
	"time"
)

// route returns the app a request for host and path goes to, nil for none.
func (c *compiled) route(host, path string) *appState {
	for _, rt := range c.hosts[host] {
		if pathMatches(path, rt.Path) {
			if app := c.apps[rt.App]; app != nil {
				return app
			}
			return &appState{key: rt.App}
		}
	}
	return nil
}

// resignal: a request held this long is counted as held again, so that
// the hub sees the app wanted for as long as requests wait (it is not
// idle while its first instance starts), and a wake-up lost on the way
// (a hub leader change) is asked for again.
const resignal = time.Second

// wait holds a request for an app without a ready instance until a
// table gives it one (then ok), its hold time runs out, the client goes
// away, or its route goes; full when too many requests wait already.
// The hold is counted in the stats: that is what wakes the app.
func (r *Router) wait(req *http.Request, host string, app *appState) (_ *appState, _ Backend, ok, full bool) {
	if r.held.Add(1) > int64(r.cfg.MaxHeld) {
		r.held.Add(-1)
		return app, Backend{}, false, true
	}
	defer r.held.Add(-1)
	r.stats.hold(app.key, r.cfg.Clock().Unix())
	timeout := time.NewTimer(app.hold)
	defer timeout.Stop()
	again := time.NewTicker(resignal)
	defer again.Stop()
	for {
		tbl := r.table.Load()
		a := tbl.route(host, req.URL.Path)
		if a == nil {
			return app, Backend{}, false, false
		}
		app = a
		if b, ok := a.pick(""); ok {
			return a, b, true, false
		}
		if a.hold == 0 {
			return a, Backend{}, false, false
		}
		select {
		case <-tbl.changed:
		case <-again.C:
			now := r.cfg.Clock().Unix()
			r.stats.hold(a.key, now)
			r.stats.arrive(a.key, now)
		case <-timeout.C:
			return a, Backend{}, false, false
		case <-req.Context().Done():
			return a, Backend{}, false, false
		}
	}
}

// Held returns how many requests wait for an instance now.
func (r *Router) Held() int { return int(r.held.Load()) }

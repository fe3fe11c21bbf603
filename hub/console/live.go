package console

import "net/http"

// registerLive adds the console's live parts: the followed log view and
// drills run and watched from the browser.
func (c *Console) registerLive(mux *http.ServeMux) {
	for name, t := range drillPages() {
		c.pages[name] = t
	}
	mux.HandleFunc("GET /ui/apps/{tenant}/{app}/logs/stream", c.logStream)
	mux.HandleFunc("POST /ui/drills", c.post(c.runDrill))
	mux.HandleFunc("GET /ui/drills/{id}", c.get(c.drill))
	mux.HandleFunc("GET /ui/drills/{id}/timeline", c.fragment(c.drillTimeline))
	mux.HandleFunc("POST /ui/drills/{id}/end", c.post(c.endDrill))
}

// fragment wraps a live fragment (a part of a page its script reloads):
// signed out it answers 401, which sends the script to the login page.
func (c *Console) fragment(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r, s)
	}
}

// live reports whether a session is still open, without counting the
// question as a use (a stream left open must not keep a session alive).
func (ss *sessions) live(id string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	return s != nil && ss.now().Sub(s.lastUsed) <= ss.idle
}

package e2e

import (
	"net/http"
	"testing"
)

// routedLoad sends requests for host through one router and counts those
// the router routed (whatever the backend answered; not its own 404s):
// what the router's usage counts must come to.
type routedLoad struct {
	t          *testing.T
	addr, host string
	sent       int64
}

// get sends one request and reports whether the router routed it.
func (l *routedLoad) get() bool {
	req, _ := http.NewRequest("GET", "http://"+l.addr+"/", nil)
	req.Host = l.host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false
	}
	l.sent++
	return true
}

// send sends n requests, each of which must be routed.
func (l *routedLoad) send(n int) {
	l.t.Helper()
	for range n {
		if !l.get() {
			l.t.Fatalf("the router lost %s's route", l.host)
		}
	}
}

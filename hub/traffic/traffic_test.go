package traffic

import (
	"testing"
	"time"
)

func TestStoreSumsRoutersAndForgets(t *testing.T) {
	var s Store
	s.Window = time.Minute
	now := time.Unix(1_000_000, 0)
	a := Second{App: "acme/web", Unix: now.Unix() - 2, Requests: 10, Status: []uint64{0, 9, 0, 0, 1}, BytesOut: 100, Latency: []uint64{10}}
	b := Second{App: "acme/web", Unix: now.Unix() - 2, Requests: 5, Status: []uint64{0, 5}, BytesOut: 50, Latency: []uint64{3, 2}}
	c := Second{App: "acme/web", Unix: now.Unix() - 1, Requests: 1, Status: []uint64{0, 1}}
	s.Add(now, []Second{a, b, c, {App: "acme/web", Unix: now.Unix() - 3600, Requests: 99}})
	got := s.Since("acme/web", now.Add(-time.Hour))
	if len(got) != 2 {
		t.Fatalf("seconds: %+v", got)
	}
	if g := got[0]; g.Requests != 15 || g.Status[1] != 14 || g.Status[4] != 1 || g.BytesOut != 150 || g.Latency[0] != 13 || g.Latency[1] != 2 {
		t.Fatalf("summed second: %+v", g)
	}
	if q := s.QPS("acme/web", now, 10*time.Second); q != 1.6 {
		t.Fatalf("qps over 10 s: %v, want 1.6", q)
	}
	s.Add(now.Add(2*time.Minute), nil)
	if got := s.Since("acme/web", time.Time{}); len(got) != 0 {
		t.Fatalf("seconds outside the window kept: %+v", got)
	}
}

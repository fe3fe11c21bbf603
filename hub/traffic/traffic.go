// Package traffic keeps the routers' recent per-app access counts on the
// hub leader: requests, status classes, bytes and latency per app per
// second, summed over every router, for the last few minutes. It lives
// outside Raft: it is telemetry that a new leader rebuilds from the next
// reports (QPS autoscaling and `wharf app stats` need only the recent
// past; metering keeps its own totals).
package traffic

import (
	"sort"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Second is one app's traffic in one second, from one router or summed.
type Second = apitypes.TrafficSecond

// Store sums reports per app per second and keeps Window of them.
type Store struct {
	Window time.Duration // zero: 15 minutes

	mu   sync.Mutex
	apps map[string]map[int64]*Second
}

// Add sums reports into the store and drops seconds older than the
// window (relative to now).
func (s *Store) Add(now time.Time, reports []Second) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = map[string]map[int64]*Second{}
	}
	oldest := now.Add(-s.window()).Unix()
	for _, r := range reports {
		if r.Unix < oldest || r.App == "" {
			continue
		}
		secs := s.apps[r.App]
		if secs == nil {
			secs = map[int64]*Second{}
			s.apps[r.App] = secs
		}
		cur := secs[r.Unix]
		if cur == nil {
			cur = &Second{App: r.App, Unix: r.Unix, BoundsMs: r.BoundsMs}
			secs[r.Unix] = cur
		}
		cur.Requests += r.Requests
		cur.Held += r.Held
		cur.BytesOut += r.BytesOut
		cur.Status = addInto(cur.Status, r.Status)
		cur.Latency = addInto(cur.Latency, r.Latency)
	}
	for app, secs := range s.apps {
		for u := range secs {
			if u < oldest {
				delete(secs, u)
			}
		}
		if len(secs) == 0 {
			delete(s.apps, app)
		}
	}
}

func (s *Store) window() time.Duration {
	if s.Window <= 0 {
		return 15 * time.Minute
	}
	return s.Window
}

func addInto(dst, src []uint64) []uint64 {
	for len(dst) < len(src) {
		dst = append(dst, 0)
	}
	for i, v := range src {
		dst[i] += v
	}
	return dst
}

// Since returns an app's seconds from since on, oldest first.
func (s *Store) Since(app string, since time.Time) []Second {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Second
	for u, sec := range s.apps[app] {
		if u >= since.Unix() {
			c := *sec
			c.Status = append([]uint64(nil), sec.Status...)
			c.Latency = append([]uint64(nil), sec.Latency...)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unix < out[j].Unix })
	return out
}

// QPS returns an app's mean requests per second over the last d before
// now (the autoscaler's input), counting seconds without traffic.
func (s *Store) QPS(app string, now time.Time, d time.Duration) float64 {
	secs := s.Since(app, now.Add(-d))
	var n uint64
	for _, x := range secs {
		if x.Unix < now.Unix() {
			n += x.Requests
		}
	}
	if d < time.Second {
		return 0
	}
	return float64(n) / d.Seconds()
}

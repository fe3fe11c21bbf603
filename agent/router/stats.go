package router

import (
	"sort"
	"sync"
	"time"
)

// stats counts traffic per app per second until TakeStats collects it.
type stats struct {
	mu   sync.Mutex
	secs map[statKey]*AppSecond
	sig  signals
}

type statKey struct {
	app  string
	unix int64
}

// keepSeconds bounds what is kept if nobody collects.
const keepSeconds = 300

func (s *stats) add(app string, unix int64, status int, bytes int64, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secs == nil {
		s.secs = map[statKey]*AppSecond{}
	}
	k := statKey{app, unix}
	x := s.secs[k]
	if x == nil {
		x = &AppSecond{App: app, Unix: unix, LatencyBuckets: make([]uint64, len(LatencyBounds)+1)}
		s.secs[k] = x
	}
	x.Requests++
	x.BytesOut += uint64(max(bytes, 0))
	switch status / 100 {
	case 1:
		x.Status1xx++
	case 2:
		x.Status2xx++
	case 3:
		x.Status3xx++
	case 4:
		x.Status4xx++
	default:
		x.Status5xx++
	}
	i := sort.Search(len(LatencyBounds), func(i int) bool { return d <= LatencyBounds[i] })
	x.LatencyBuckets[i]++
}

// hold counts a request that began waiting for an instance of app.
func (s *stats) hold(app string, unix int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secs == nil {
		s.secs = map[statKey]*AppSecond{}
	}
	k := statKey{app, unix}
	x := s.secs[k]
	if x == nil {
		x = &AppSecond{App: app, Unix: unix, LatencyBuckets: make([]uint64, len(LatencyBounds)+1)}
		s.secs[k] = x
	}
	x.Held++
}

// TakeStats returns, and forgets, the seconds that have ended (per the
// router's clock), oldest first.
func (r *Router) TakeStats() []AppSecond {
	now := r.cfg.Clock().Unix()
	r.stats.mu.Lock()
	defer r.stats.mu.Unlock()
	var out []AppSecond
	for k, x := range r.stats.secs {
		if k.unix < now {
			if k.unix >= now-keepSeconds {
				out = append(out, *x)
			}
			delete(r.stats.secs, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Unix != out[j].Unix {
			return out[i].Unix < out[j].Unix
		}
		return out[i].App < out[j].App
	})
	return out
}

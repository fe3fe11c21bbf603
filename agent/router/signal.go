package router

import (
	"sort"
	"sync/atomic"
	"time"
)

// A router sees a burst before anyone else: each second's counts reach
// the hub only after the second ends, with the agent's next heartbeat,
// and the hub leader's autoscaler a relay round later. So the hub gives
// each app a rate (its policy's idea of a burst); the moment an app's
// requests within the current second reach that rate, the router says
// so at once (Bursts, TakeBursts), once per app per second.
//
// A request counts when it arrives, not when it is answered: a burst
// that saturates the instances it has is answered at their pace, and
// counting answers would read the burst as no bigger than that pace
// (the very moment more instances are needed).

// minSignalElapsed is the least part of a second a rate is measured
// over: a handful of requests in the first milliseconds of a second is
// no rate yet.
const minSignalElapsed = 250 * time.Millisecond

// Burst is one app's rate crossing its signal rate within a second that
// has not ended yet.
type Burst struct {
	App  string
	Unix int64 // the second
	// Requests arrived in the second so far (and ones still held from an
	// earlier second), and the
	// time from the first of them to the count: the rate is measured from
	// the first request, so a burst that begins late in a second is not
	// diluted by the quiet part before it.
	Requests uint64
	Elapsed  time.Duration
	// Rate is the signal rate crossed (requests per second).
	Rate uint32
}

// signals is the stats' part that watches for bursts; stats.mu guards it.
type signals struct {
	rates map[string]uint32 // per app; absent: none
	// on is rates, for a look without the lock on every request's
	// arrival (most apps have no rate).
	on      atomic.Pointer[map[string]uint32]
	arrived map[string]secondCount // per app with a rate
	clock   func() time.Time
	sent    map[string]int64 // per app, the last second signalled
	first   map[string]firstCount
	// pending are the bursts not taken yet, by app (the latest wins);
	// notify (capacity 1) is signalled when one is added.
	pending map[string]Burst
	notify  chan struct{}
}

// SetSignalRates sets, per app key, the rate (requests per second) whose
// crossing within a second is signalled; an app absent or at 0 gets no
// signal. It replaces the previous rates.
func (r *Router) SetSignalRates(rates map[string]uint32) {
	s := &r.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sig.rates = rates
	s.sig.on.Store(&rates)
	s.sig.clock = r.cfg.Clock
	for app := range s.sig.sent {
		if rates[app] == 0 {
			delete(s.sig.sent, app)
		}
	}
	for app := range s.sig.first {
		if rates[app] == 0 {
			delete(s.sig.first, app)
		}
	}
	for app := range s.sig.arrived {
		if rates[app] == 0 {
			delete(s.sig.arrived, app)
		}
	}
}

// secondCount counts an app's arrivals in one second.
type secondCount struct {
	unix int64
	n    uint64
}

// arrive counts a request of app arriving in second unix (or one still
// held for an instance when a new second begins: the demand is still
// there) toward its signal rate.
func (s *stats) arrive(app string, unix int64) {
	if on := s.sig.on.Load(); on == nil || (*on)[app] == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.sig
	if g.arrived == nil {
		g.arrived = map[string]secondCount{}
	}
	c := g.arrived[app]
	if c.unix != unix {
		c = secondCount{unix: unix}
	}
	c.n++
	g.arrived[app] = c
	g.check(app, unix, c.n)
}

// Bursts is signalled when TakeBursts has something to return.
func (r *Router) Bursts() <-chan struct{} {
	s := &r.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig.ch()
}

// TakeBursts returns, and forgets, the bursts seen since the last call,
// by app.
func (r *Router) TakeBursts() []Burst {
	s := &r.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Burst, 0, len(s.sig.pending))
	for _, b := range s.sig.pending {
		out = append(out, b)
	}
	clear(s.sig.pending)
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}

// firstCount is when the first request of an app's second was counted.
type firstCount struct {
	unix int64
	at   time.Time
}

func (g *signals) ch() chan struct{} {
	if g.notify == nil {
		g.notify = make(chan struct{}, 1)
	}
	return g.notify
}

// check looks at an app's second after an arrival, n its arrivals so
// far: when they reach the app's rate over the time since the first of them (once
// they have come for minSignalElapsed, or at once when they are a whole
// second's worth), a burst is pending, once per second. Measuring from
// the first request keeps a burst that begins late in a second at its
// real rate; waiting for a part of a second keeps a handful of requests
// at once from passing for a rate.
// Callers hold stats.mu.
func (g *signals) check(app string, unix int64, n uint64) {
	rate := g.rates[app]
	if rate == 0 || g.sent[app] == unix {
		return
	}
	now := g.clock()
	if g.first == nil {
		g.first = map[string]firstCount{}
	}
	f, ok := g.first[app]
	if !ok || f.unix != unix {
		f = firstCount{unix: unix, at: now}
		g.first[app] = f
	}
	elapsed := now.Sub(f.at)
	if elapsed < minSignalElapsed && n < uint64(rate) {
		return // too early to tell a rate, short of a whole second's worth
	}
	measured := min(max(elapsed, minSignalElapsed), time.Second)
	// n requests from the first are n-1 gaps: (n-1) / measured >= rate,
	// or a whole second's worth.
	if n < uint64(rate) && float64(n-1)*float64(time.Second) < float64(rate)*float64(measured) {
		return
	}
	if g.sent == nil {
		g.sent = map[string]int64{}
	}
	if g.pending == nil {
		g.pending = map[string]Burst{}
	}
	g.sent[app] = unix
	g.pending[app] = Burst{App: app, Unix: unix, Requests: n, Elapsed: min(max(elapsed, 0), time.Second), Rate: rate}
	select {
	case g.ch() <- struct{}{}:
	default:
	}
}

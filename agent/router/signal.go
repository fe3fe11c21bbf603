package router

import (
	"sort"
	"time"
)

// A router sees a burst before anyone else: each second's counts reach
// the hub only after the second ends, with the agent's next heartbeat,
// and the hub leader's autoscaler a relay round later. So the hub gives
// each app a rate (its policy's idea of a burst); the moment an app's
// requests within the current second reach that rate, the router says
// so at once (Bursts, TakeBursts), once per app per second.

// minSignalElapsed is the least part of a second a rate is measured
// over: a handful of requests in the first milliseconds of a second is
// no rate yet.
const minSignalElapsed = 250 * time.Millisecond

// Burst is one app's rate crossing its signal rate within a second that
// has not ended yet.
type Burst struct {
	App  string
	Unix int64 // the second
	// Requests counted in the second so far (held ones included), and how
	// far into the second the count was taken.
	Requests uint64
	Elapsed  time.Duration
	// Rate is the signal rate crossed (requests per second).
	Rate uint32
}

// signals is the stats' part that watches for bursts; stats.mu guards it.
type signals struct {
	rates map[string]uint32 // per app; absent: none
	clock func() time.Time
	sent  map[string]int64 // per app, the last second signalled
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
	s.sig.clock = r.cfg.Clock
	for app := range s.sig.sent {
		if rates[app] == 0 {
			delete(s.sig.sent, app)
		}
	}
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

func (g *signals) ch() chan struct{} {
	if g.notify == nil {
		g.notify = make(chan struct{}, 1)
	}
	return g.notify
}

// check looks at an app's second x after a count: when its requests so
// far reach the app's rate over the part of the second gone (once
// minSignalElapsed of it is, or at once when they are a whole second's
// worth), a burst is pending, once per second. Waiting for a part of the
// second keeps the rate the hub reads from it near the real one.
// Callers hold stats.mu.
func (g *signals) check(x *AppSecond) {
	rate := g.rates[x.App]
	if rate == 0 || g.sent[x.App] == x.Unix {
		return
	}
	n := x.Requests + x.Held
	elapsed := g.clock().Sub(time.Unix(x.Unix, 0))
	if elapsed < minSignalElapsed && n < uint64(rate) {
		return // too early to tell a rate, short of a whole second's worth
	}
	measured := min(max(elapsed, minSignalElapsed), time.Second)
	// n / measured >= rate, in integers.
	if float64(n)*float64(time.Second) < float64(rate)*float64(measured) {
		return
	}
	if g.sent == nil {
		g.sent = map[string]int64{}
	}
	if g.pending == nil {
		g.pending = map[string]Burst{}
	}
	g.sent[x.App] = x.Unix
	g.pending[x.App] = Burst{App: x.App, Unix: x.Unix, Requests: n, Elapsed: min(max(elapsed, 0), time.Second), Rate: rate}
	select {
	case g.ch() <- struct{}{}:
	default:
	}
}

package traffic

import (
	"context"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// A router that sees a burst says so within the second (RateSignal),
// not a second and a heartbeat later with its counts. A node relays such
// a signal to the leader at once, outside the once-a-second batch of
// counts, where the autoscaler takes it (Bursts).

// Burst is one router's signal: an app's requests within a second that
// had not ended reached the rate the hub gave it.
type Burst struct {
	App  string `json:"app"`
	Host string `json:"host"` // the router's
	Unix int64  `json:"unix"`
	// Requests counted in the second, ElapsedMs from the first of them.
	Requests  uint64 `json:"requests"`
	ElapsedMs uint32 `json:"elapsed_ms"`
	// SignalRps is the rate it crossed.
	SignalRps uint32 `json:"signal_rps"`
}

// minBurstElapsed is the least time a burst's rate is taken over
// (routers signal before a quarter second only for a whole second's
// worth of requests).
const minBurstElapsed = 250 * time.Millisecond

// Rate is the requests per second the burst shows: the gaps between its
// requests (one fewer than they) over the time they came in, at least
// minBurstElapsed.
func (b Burst) Rate() float64 {
	if b.Requests < 2 {
		return 0
	}
	d := min(max(time.Duration(b.ElapsedMs)*time.Millisecond, minBurstElapsed), time.Second)
	return float64(b.Requests-1) / d.Seconds()
}

// burstQueue bounds the signals waiting for the autoscaler (or, on a
// follower, for the relay): beyond it a signal is dropped, and the
// counts that follow tell the same a moment later.
const burstQueue = 1024

var burstRPC = cluster.RPC[[]Burst, struct{}]{Name: "traffic-burst", Req: cluster.JSON[[]Burst]{}, Resp: cluster.None{}, MaxBody: 1 << 20}

// burstHandler is the leader's end of the relay.
func (s *Service) burstHandler() cluster.Handler {
	return burstRPC.Serve(func(_ context.Context, bs []Burst) (struct{}, error) {
		s.deliver(bs)
		return struct{}{}, nil
	})
}

// Signal takes one router's bursts (from the gateway) without waiting:
// on the leader they go to Bursts, on a follower to the leader.
func (s *Service) Signal(from pki.AgentIdentity, r *wire.RateSignal) {
	bs := make([]Burst, 0, len(r.GetApps()))
	for _, a := range r.GetApps() {
		if a.App == "" {
			continue
		}
		bs = append(bs, Burst{App: a.App, Host: from.HostID, Unix: a.Unix, Requests: a.Requests, ElapsedMs: a.ElapsedMs, SignalRps: a.SignalRps})
	}
	if len(bs) == 0 {
		return
	}
	if s.cl.IsLeader() {
		s.deliver(bs)
		return
	}
	select {
	case s.relay() <- bs:
	default:
	}
}

// Bursts delivers the routers' signals on the leader.
func (s *Service) Bursts() <-chan Burst { return s.burstCh() }

func (s *Service) deliver(bs []Burst) {
	ch := s.burstCh()
	for _, b := range bs {
		select {
		case ch <- b:
		default:
			return
		}
	}
}

func (s *Service) burstCh() chan Burst {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bursts == nil {
		s.bursts = make(chan Burst, burstQueue)
	}
	return s.bursts
}

func (s *Service) relay() chan []Burst {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.toLeader == nil {
		s.toLeader = make(chan []Burst, burstQueue)
	}
	return s.toLeader
}

// relayBursts sends a follower's signals to the leader as they come,
// until ctx ends.
func (s *Service) relayBursts(ctx context.Context) {
	in := s.relay()
	for {
		var bs []Burst
		select {
		case <-ctx.Done():
			return
		case bs = <-in:
		}
		if s.cl.IsLeader() { // became the leader meanwhile
			s.deliver(bs)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := burstRPC.CallLeader(cctx, s.cl, bs); err != nil && ctx.Err() == nil {
			s.log.Debug("burst relay", "err", err) // the counts follow anyway
		}
		cancel()
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/hubconn"
	"github.com/wharf-platform/wharf/agent/identity"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// errRotated ends a session whose certificate was renewed: QUIC has no
// post-handshake client auth, so the agent reconnects with the new one.
var errRotated = errors.New("certificate renewed")

// errCut ends sessions while the agent is cut off from the hub.
var errCut = errors.New("cut off from the hub (fault injection)")

// connect stays connected to a hub node until ctx ends, reconnecting with
// jittered exponential backoff; it fails only when retrying cannot help.
func (a *Agent) connect(ctx context.Context, ctl *control.Control) error {
	var bo backoff
	for i := 0; ctx.Err() == nil; i++ {
		hubs := a.hubs.All()
		hub := hubs[i%len(hubs)]
		err := a.session(ctx, ctl, hub)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRotated) {
			i-- // same hub, new certificate, at once
			continue
		}
		var ae *quic.ApplicationError
		if errors.As(err, &ae) && wire.Code(ae.ErrorCode) == wire.CodeUnauthorized {
			return fmt.Errorf("hub %s refused this agent: %s", hub, ae.ErrorMessage)
		}
		fatal, hubTooOld := versionRefusal(hub, err)
		if fatal != nil {
			return fatal
		}
		answered := a.connected.Swap(false) && a.acked.Load()-a.ackedBefore.Load() >= stableAcks
		sleep := bo.next(answered, rand.Int64N)
		if hubTooOld != "" {
			a.log.Warn("hub too old for this agent; retrying, as a rolling upgrade of the hub may be under way", "hub", hub, "reason", hubTooOld, "retry_in", sleep.Round(time.Millisecond))
		} else {
			a.log.Warn("hub connection lost", "hub", hub, "err", err, "retry_in", sleep.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
	}
	return nil
}

const (
	// firstBackoff bounds the first wait after a connection is lost:
	// full jitter over it, so that a hub node that restarts is not met
	// by all its agents at the same instant.
	firstBackoff = time.Second
	maxBackoff   = 10 * time.Second
	// stableAcks is how many heartbeats a connection must have had
	// acknowledged for its loss to start the waits over from
	// firstBackoff. One lost before (a hub node too busy to answer its
	// agents in time) counts as a failed attempt: a fleet reconnecting to
	// a busy node then waits longer each time instead of trying again at
	// once, which only adds handshakes to what the node cannot keep up
	// with.
	stableAcks = 5
)

// backoff is the wait between connection attempts: drawn at random below
// a bound that doubles with each attempt, from firstBackoff to maxBackoff,
// and starts over after a connection on which the hub answered.
type backoff struct{ bound time.Duration }

// next returns the wait before the next attempt; answered says whether
// the connection just lost had stableAcks heartbeats acknowledged. rnd(n)
// draws from [0, n).
func (b *backoff) next(answered bool, rnd func(int64) int64) time.Duration {
	if b.bound == 0 || answered {
		b.bound = firstBackoff
	}
	sleep := time.Duration(rnd(int64(b.bound)))
	b.bound = min(b.bound*2, maxBackoff)
	return sleep
}

// session runs one connection: Hello and Welcome, then heartbeats, with
// what the hub sends dispatched to the features registered with ctl and
// what they send up interleaved.
func (a *Agent) session(ctx context.Context, ctl *control.Control, hub string) error {
	if a.cut.Load() {
		return errCut
	}
	id := a.id.Current()
	conn, err := hubconn.Dial(ctx, hub, id.CAFP, &id.Cert)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShutdown), "agent stopping")
	offer := offered(a.cfg.Protocols)
	var applied uint64
	if w := a.work.Load(); w != nil {
		applied = w.Applied()
	}
	s, env, err := hubconn.Exchange(ctx, conn, wire.StreamControl, &wire.Envelope{Msg: &wire.Envelope_Hello{Hello: hello(id.HostID, offer, applied)}})
	if err != nil {
		return err
	}
	welcome := env.GetWelcome()
	if welcome == nil {
		return fmt.Errorf("%w: want Welcome", wire.ErrUnknownMessage)
	}
	if err := checkWelcome(offer, welcome); err != nil {
		return err
	}
	a.ackedBefore.Store(a.acked.Load())
	a.connected.Store(true)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	if err := ctl.Dispatch(ctx, control.Inbound{Env: env, Reply: s.Send}); err != nil {
		return err
	}
	feeds := ctl.Feeds()
	for _, f := range feeds {
		if f.First == nil {
			continue
		}
		if m := f.First(); m != nil {
			if err := s.Send(m); err != nil {
				return err
			}
		}
	}
	a.log.Info("connected", "hub", hub, "node", welcome.HubNode)
	a.hub.Store(hub)
	// What a feed has to send on a change comes through one channel.
	changes := make(chan func() *wire.Envelope)
	for _, f := range feeds {
		if f.Conn != nil {
			wg.Add(1)
			go func() { defer wg.Done(); f.Conn(ctx, conn) }()
		}
		if f.Changed != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case <-f.Changed:
					}
					select {
					case <-ctx.Done():
						return
					case changes <- f.OnChange:
					}
				}
			}()
		}
	}
	interval := time.Duration(welcome.HeartbeatIntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}
	errc := make(chan error, 1)
	sent := &sendTimes{at: map[uint64]time.Time{}}
	// A hub node killed without a word (or cut off) leaves the QUIC
	// connection open until its idle timeout; missing acknowledgements
	// tell sooner.
	silentAfter := max(5*interval, 5*time.Second)
	var lastAck atomic.Int64
	lastAck.Store(time.Now().UnixNano())
	// The reader ends with the connection, after the session.
	go func() {
		for {
			env, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			in := control.Inbound{Env: env, Reply: s.Send}
			if ack := env.GetHeartbeatAck(); ack != nil {
				lastAck.Store(time.Now().UnixNano())
				in.Sent = sent.take(ack.Seq)
			}
			if err := ctl.Dispatch(ctx, in); err != nil {
				errc <- err
				return
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	renew := time.NewTimer(time.Until(identity.RenewAt(id.Cert.Leaf)))
	defer renew.Stop()
	for seq := uint64(1); ; seq++ {
		if a.cut.Load() {
			return errCut
		}
		now := time.Now()
		if since := now.Sub(time.Unix(0, lastAck.Load())); since > silentAfter {
			return fmt.Errorf("hub node %s silent for %s", hub, since.Round(time.Millisecond))
		}
		sent.put(seq, now)
		hb := &wire.Heartbeat{Seq: seq, SentUnixMs: now.UnixMilli()}
		if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_Heartbeat{Heartbeat: hb}}); err != nil {
			return err
		}
		for _, f := range feeds {
			if f.Tick == nil {
				continue
			}
			if m := f.Tick(now); m != nil {
				if err := s.Send(m); err != nil {
					return err
				}
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				return err
			case onChange := <-changes:
				if m := onChange(); m != nil {
					if err := s.Send(m); err != nil {
						return err
					}
				}
			case <-renew.C:
				if err := a.id.Renew(ctx, conn); err != nil {
					a.log.Warn("certificate renewal", "err", err)
					renew.Reset(10 * time.Second)
					continue
				}
				return errRotated
			case <-t.C:
				break wait
			}
		}
	}
}

// handleSession registers what the session itself does with the hub's
// messages: an Error ends it; acknowledged heartbeats are counted and
// timed.
func (a *Agent) handleSession(c *control.Control) {
	c.Handle(&wire.Envelope_Error{}, func(_ context.Context, in control.Inbound) error {
		e := in.Env.GetError()
		return &quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(e.Code), ErrorMessage: e.Message}
	})
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in control.Inbound) error {
		a.acked.Add(1)
		if a.cfg.OnAck != nil && !in.Sent.IsZero() {
			a.cfg.OnAck(time.Since(in.Sent))
		}
		return nil
	})
}

// sendTimes remembers when recent heartbeats were sent (monotonic clock), to
// time their acknowledgements.
type sendTimes struct {
	mu sync.Mutex
	at map[uint64]time.Time
}

func (s *sendTimes) put(seq uint64, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[seq] = t
	delete(s.at, seq-64) // unacknowledged ones do not pile up
}

func (s *sendTimes) take(seq uint64) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.at[seq]
	delete(s.at, seq)
	return t
}

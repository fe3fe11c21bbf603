package api

import (
	"context"
	"sync"
	"time"
)

// readGate shares linearizable-read barriers between concurrent reads. A
// barrier (Raft's read index: on a follower a call to the leader, on the
// leader a heartbeat round) covers every write acknowledged before it
// started, so every read that arrived before a barrier started may use
// it. A read that arrives while one is under way waits for the next,
// which starts when that one ends and serves every read that arrived
// meanwhile: when 1,000 watchers of one app are answered at once and ask
// again, the node makes one or two barriers instead of 1,000 (each, on a
// follower, an RPC to the leader).
type readGate struct {
	barrier func(context.Context) error
	timeout time.Duration // of one barrier

	mu      sync.Mutex
	next    *readRound // the round that starts when the running one ends
	running bool
}

type readRound struct {
	done chan struct{}
	err  error
}

func newReadGate(barrier func(context.Context) error, timeout time.Duration) *readGate {
	return &readGate{barrier: barrier, timeout: timeout}
}

// wait returns once a barrier that started after the call has passed, with
// its error, or ctx's when ctx ends first.
func (g *readGate) wait(ctx context.Context) error {
	g.mu.Lock()
	r := g.next
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		g.next = r
	}
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run makes barriers while reads wait for one.
func (g *readGate) run() {
	for {
		g.mu.Lock()
		r := g.next
		g.next = nil
		if r == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		// Not a reader's context: the barrier serves them all, and one
		// reader giving up must not fail the others.
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		r.err = g.barrier(ctx)
		cancel()
		close(r.done)
	}
}

package agent

import (
	"testing"
	"time"
)

// TestBackoffStartsOverOnlyAfterAnAnsweredConnection: the bound on the
// wait doubles with each failed attempt up to maxBackoff; a connection
// lost before the hub acknowledged stableAcks heartbeats on it (a node too
// busy to answer) counts as a failed attempt, and only one the hub
// answered on starts the waits over.
func TestBackoffStartsOverOnlyAfterAnAnsweredConnection(t *testing.T) {
	var b backoff
	top := func(n int64) int64 { return n - 1 } // the longest wait the bound allows
	step := func(answered bool, want time.Duration) {
		t.Helper()
		if got := b.next(answered, top) + 1; got != want {
			t.Fatalf("after a connection answered %v: wait bound %v, want %v", answered, got, want)
		}
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, maxBackoff, maxBackoff} {
		step(false, want) // failed attempts, or connections the hub did not answer on
	}
	step(true, firstBackoff) // a connection the hub answered on: start over
	step(false, 2*time.Second)
	// Waits are drawn below the bound.
	var c backoff
	for range 100 {
		if w := c.next(false, func(n int64) int64 { return n / 2 }); w <= 0 || w > maxBackoff/2 {
			t.Fatalf("wait %v outside (0, %v]", w, maxBackoff/2)
		}
	}
}

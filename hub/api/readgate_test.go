package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadGate: concurrent reads share barriers, yet none is served by a
// barrier that started before it arrived; errors reach every read of
// their round; a reader that gives up returns at once.
func TestReadGate(t *testing.T) {
	var started atomic.Int64
	release := make(chan error)
	g := newReadGate(func(ctx context.Context) error {
		started.Add(1)
		select {
		case err := <-release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, 10*time.Second)
	type result struct {
		err   error
		round int64 // barriers started when the read returned
	}
	read := func() chan result {
		ch := make(chan result, 1)
		go func() {
			err := g.wait(context.Background())
			ch <- result{err, started.Load()}
		}()
		return ch
	}
	waitStarted := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for started.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("barrier %d never started", n)
			}
			time.Sleep(time.Millisecond)
		}
	}

	a := read()
	waitStarted(1)
	// Arrived while barrier 1 runs: served by barrier 2, with the others
	// that arrive meanwhile.
	var late []chan result
	for range 100 {
		late = append(late, read())
	}
	time.Sleep(20 * time.Millisecond)
	release <- nil
	if r := <-a; r.err != nil {
		t.Fatal(r.err)
	}
	waitStarted(2)
	select {
	case <-late[0]:
		t.Fatal("a read that arrived during barrier 1 was served by it")
	case <-time.After(20 * time.Millisecond):
	}
	boom := errors.New("no leader")
	release <- boom
	for _, ch := range late {
		if r := <-ch; !errors.Is(r.err, boom) || r.round != 2 {
			t.Fatalf("late read: %v after %d barriers, want barrier 2's error", r.err, r.round)
		}
	}

	// A reader that gives up returns at once; the barrier goes on for
	// the others.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- g.wait(ctx) }()
	waitStarted(3)
	other := read()
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
	release <- nil
	waitStarted(4)
	release <- nil
	if r := <-other; r.err != nil || r.round != 4 {
		t.Fatalf("read after a cancelled one: %v after %d barriers", r.err, r.round)
	}
}

package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunAll: the runners run together; one that fails stops the others
// and its error is returned; one that ends early without error does not;
// all have returned when runAll does.
func TestRunAll(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Int32
	waiter := runFunc(func(ctx context.Context) error { <-ctx.Done(); stopped.Add(1); return nil })
	early := runFunc(func(context.Context) error { return nil })
	failing := runFunc(func(context.Context) error { time.Sleep(20 * time.Millisecond); return boom })
	if err := runAll(context.Background(), waiter, early, waiter, failing); !errors.Is(err, boom) {
		t.Fatalf("runAll: %v, want %v", err, boom)
	}
	if n := stopped.Load(); n != 2 {
		t.Fatalf("%d runners stopped before runAll returned, want 2", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := runAll(ctx, waiter, early); err != nil {
		t.Fatalf("runAll until ctx ends: %v", err)
	}
}

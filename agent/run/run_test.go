package run

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAll: the runners run together; one that fails stops the others
// and its error is returned; one that ends early without error does not;
// all have returned when All does.
func TestAll(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Int32
	waiter := Func(func(ctx context.Context) error { <-ctx.Done(); stopped.Add(1); return nil })
	early := Func(func(context.Context) error { return nil })
	failing := Func(func(context.Context) error { time.Sleep(20 * time.Millisecond); return boom })
	if err := All(context.Background(), waiter, early, waiter, failing); !errors.Is(err, boom) {
		t.Fatalf("All: %v, want %v", err, boom)
	}
	if n := stopped.Load(); n != 2 {
		t.Fatalf("%d runners stopped before All returned, want 2", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := All(ctx, waiter, early); err != nil {
		t.Fatalf("All until ctx ends: %v", err)
	}
}

// TestBestEffort: a best-effort runner's failure is logged and stops
// nothing else.
func TestBestEffort(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	var stopped atomic.Bool
	waiter := Func(func(ctx context.Context) error { <-ctx.Done(); stopped.Store(true); return nil })
	failing := BestEffort(log, "collector", Func(func(context.Context) error { return errors.New("no cgroups") }))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := All(ctx, waiter, failing); err != nil {
		t.Fatalf("All: %v, want nil", err)
	}
	if !stopped.Load() || ctx.Err() == nil {
		t.Fatal("a best-effort failure stopped the other runners before ctx ended")
	}
	if !strings.Contains(logged.String(), "collector") || !strings.Contains(logged.String(), "no cgroups") {
		t.Fatalf("failure not logged: %q", logged.String())
	}
}

// Package run runs the agent's long-lived parts together: one failure
// stops them all, and a part that may fail without taking the agent down
// (a metrics collector that cannot start) is marked best effort.
package run

import (
	"context"
	"log/slog"
	"sync"
)

// Runner is a long-lived part of the agent.
type Runner interface {
	Run(ctx context.Context) error
}

// Func makes a function a Runner.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// BestEffort is a runner whose failure is logged and ends only itself:
// the agent goes on without it, as it keeps running its instances
// without a hub.
func BestEffort(log *slog.Logger, what string, r Runner) Runner {
	return Func(func(ctx context.Context) error {
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what, "err", err)
		}
		return nil
	})
}

// All runs the runners together until ctx ends or one of them fails,
// then stops them all and waits for them; it returns the first failure.
// A runner that returns nil early just ends.
func All(ctx context.Context, runners ...Runner) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}

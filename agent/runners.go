package agent

import (
	"context"
	"log/slog"
	"sync"
)

// runner is a long-lived part of the agent.
type runner interface {
	Run(ctx context.Context) error
}

// runFunc makes a function a runner.
type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

// bestEffort is a runner whose failure is logged and ends only itself:
// the agent goes on without it (a metrics collector that cannot start,
// say), as it keeps running its instances without a hub.
func bestEffort(log *slog.Logger, what string, r runner) runner {
	return runFunc(func(ctx context.Context) error {
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what, "err", err)
		}
		return nil
	})
}

// runAll runs the runners together until ctx ends or one of them fails,
// then stops them all and waits for them; it returns the first failure.
// A runner that returns nil early just ends.
func runAll(ctx context.Context, runners ...runner) error {
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

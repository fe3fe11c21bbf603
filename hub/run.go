package hub

import (
	"context"
	"fmt"
)

// runner is a long-lived part of a node: it works until ctx ends.
type runner interface {
	Run(ctx context.Context) error
}

// runFunc makes a function a runner.
type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

// task is a runner with the name its failures carry.
type task struct {
	name string
	r    runner
}

// runAll runs the tasks together until ctx ends or one of them returns (a
// part that stops leaves the others without it: they stop too), waits for
// every one, and returns the first failure.
func runAll(ctx context.Context, tasks []task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(tasks))
	for _, t := range tasks {
		go func() {
			err := t.r.Run(ctx)
			if err != nil {
				err = fmt.Errorf("%s: %w", t.name, err)
			}
			errc <- err
		}()
	}
	var first error
	for range tasks {
		err := <-errc
		cancel()
		if first == nil {
			first = err
		}
	}
	return first
}

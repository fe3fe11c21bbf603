package drain

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Default backoff of Deliver, used when its base or max is not positive.
const (
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
)

// Deliver sends batch with s, retrying failures until it succeeds or ctx
// ends. The n-th wait after a failure is a random duration between half and
// all of min(base·2ⁿ⁻¹, max), so waits grow but senders that failed together
// spread out. onFailure, if not nil, is called after each failed attempt
// with the attempt number (from 1) and the error.
//
// Deliver returns nil on success, ctx's error if ctx ended first, and the
// error itself if it matches ErrPermanent: retrying cannot fix it.
func Deliver(ctx context.Context, s Sender, batch []Line, base, max time.Duration, onFailure func(attempt int, err error)) error {
	return deliver(ctx, s, batch, base, max, onFailure, sleep)
}

// deliver is Deliver with the wait injected for tests.
func deliver(ctx context.Context, s Sender, batch []Line, base, max time.Duration, onFailure func(int, error), wait func(context.Context, time.Duration) error) error {
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if max <= 0 {
		max = DefaultBackoffMax
	}
	if max < base {
		max = base
	}
	ceiling := base
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.Send(ctx, batch)
		if err == nil {
			return nil
		}
		if onFailure != nil {
			onFailure(attempt, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrPermanent) {
			return err
		}
		d := ceiling/2 + rand.N(ceiling/2+1)
		if err := wait(ctx, d); err != nil {
			return err
		}
		if ceiling > max/2 {
			ceiling = max
		} else {
			ceiling *= 2
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package drain

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// flakySender fails its first n sends, with err if set.
type flakySender struct {
	n     int
	err   error
	sends []time.Time
}

func (s *flakySender) Send(ctx context.Context, lines []Line) error {
	s.sends = append(s.sends, time.Now())
	if len(s.sends) <= s.n {
		if s.err != nil {
			return s.err
		}
		return fmt.Errorf("attempt %d: receiver busy", len(s.sends))
	}
	return nil
}

func (s *flakySender) Close() error { return nil }

func TestDeliverBackoff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base, max time.Duration
		ceilings  []time.Duration // the upper bound of each wait
	}{
		{"doubles up to max", 10 * time.Millisecond, 70 * time.Millisecond,
			[]time.Duration{10, 20, 40, 70, 70, 70}},
		{"defaults", 0, 0,
			[]time.Duration{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000}},
		{"max below base", 50 * time.Millisecond, time.Millisecond,
			[]time.Duration{50, 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &flakySender{n: len(tc.ceilings)}
			var waits []time.Duration
			wait := func(ctx context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}
			var attempts []int
			onFailure := func(n int, err error) {
				attempts = append(attempts, n)
				if want := fmt.Sprintf("attempt %d: receiver busy", n); err.Error() != want {
					t.Errorf("onFailure(%d, %q), want error %q", n, err, want)
				}
			}
			if err := deliver(context.Background(), s, nil, tc.base, tc.max, onFailure, wait); err != nil {
				t.Fatal(err)
			}
			if len(s.sends) != len(tc.ceilings)+1 {
				t.Errorf("%d sends, want %d", len(s.sends), len(tc.ceilings)+1)
			}
			var want []int
			for i := range tc.ceilings {
				want = append(want, i+1)
			}
			if !reflect.DeepEqual(attempts, want) {
				t.Errorf("onFailure attempts %v, want %v", attempts, want)
			}
			if len(waits) != len(tc.ceilings) {
				t.Fatalf("waits %v, want %d", waits, len(tc.ceilings))
			}
			for i, d := range waits {
				c := tc.ceilings[i] * time.Millisecond
				if d < c/2 || d > c {
					t.Errorf("wait %d is %v, want within [%v, %v]", i+1, d, c/2, c)
				}
			}
		})
	}
}

func TestDeliverJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		s := &flakySender{n: 1}
		deliver(context.Background(), s, nil, time.Second, time.Second, nil, func(_ context.Context, d time.Duration) error {
			seen[d] = true
			return nil
		})
	}
	if len(seen) < 2 {
		t.Errorf("20 first waits were all %v: no jitter", seen)
	}
}

func TestDeliverWaitsForReal(t *testing.T) {
	s := &flakySender{n: 3}
	base := 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Deliver(ctx, s, nil, base, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(s.sends); i++ {
		gap := s.sends[i].Sub(s.sends[i-1])
		if floor := base << (i - 1) / 2; gap < floor {
			t.Errorf("gap before attempt %d is %v, want at least %v", i+1, gap, floor)
		}
	}
}

func TestDeliverStopsWhenContextEnds(t *testing.T) {
	t.Run("cancelled between attempts", func(t *testing.T) {
		s := &flakySender{n: 1 << 30}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := Deliver(ctx, s, nil, time.Millisecond, time.Millisecond, func(n int, _ error) {
			if n == 3 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || len(s.sends) != 3 {
			t.Errorf("Deliver: %v after %d sends, want context.Canceled after 3", err, len(s.sends))
		}
	})
	t.Run("deadline during a wait", func(t *testing.T) {
		s := &flakySender{n: 1 << 30}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := Deliver(ctx, s, nil, time.Hour, time.Hour, nil)
		if !errors.Is(err, context.DeadlineExceeded) || len(s.sends) != 1 {
			t.Errorf("Deliver: %v after %d sends, want context.DeadlineExceeded after 1", err, len(s.sends))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Deliver returned after %v", d)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		s := &flakySender{}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := Deliver(ctx, s, nil, time.Millisecond, time.Millisecond, nil); !errors.Is(err, context.Canceled) || len(s.sends) != 0 {
			t.Errorf("Deliver: %v after %d sends", err, len(s.sends))
		}
	})
}

func TestDeliverStopsOnPermanent(t *testing.T) {
	s := &flakySender{n: 5, err: permanent("loki: 400 Bad Request")}
	var attempts []int
	err := Deliver(context.Background(), s, nil, time.Millisecond, time.Millisecond, func(n int, _ error) {
		attempts = append(attempts, n)
	})
	if !errors.Is(err, ErrPermanent) || err.Error() != "loki: 400 Bad Request" {
		t.Errorf("Deliver: %v, want the permanent error", err)
	}
	if len(s.sends) != 1 || !reflect.DeepEqual(attempts, []int{1}) {
		t.Errorf("%d sends, onFailure %v; want 1 and [1]", len(s.sends), attempts)
	}
}

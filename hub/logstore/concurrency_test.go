package logstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentAppendQueryFollow(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.SegmentBytes = 32 << 10 // rotations while queries run
	s := openT(t, cfg)
	const perWriter = 3000
	writers := []struct{ tenant, app, inst string }{
		{"t1", "web", "w1"}, {"t1", "web", "w2"}, {"t1", "web", "w3"}, {"t1", "api", "a1"}, {"t2", "web", "x1"},
	}
	wantWeb := 3 * perWriter

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for wi, w := range writers {
		wg.Go(func() {
			seq := uint64(0)
			for seq < perWriter {
				var batch []Record
				// Resend the last few lines (an unacknowledged suffix)
				// before new ones.
				for q := seq - min(seq, 3) + 1; q <= min(seq+50, perWriter); q++ {
					batch = append(batch, recIn(w.tenant, w.app, w.inst, q, int(q)*len(writers)+wi, fmt.Sprintf("%s %d", w.inst, q)))
				}
				n, err := s.Append(batch)
				if err != nil {
					errc <- err
					return
				}
				if want := int(min(seq+50, perWriter) - seq); n != want {
					errc <- fmt.Errorf("%s: stored %d, want %d", w.inst, n, want)
					return
				}
				seq = min(seq+50, perWriter)
			}
		})
	}
	// Followers of t1/web: each record exactly once, via Wait + AfterPos.
	for range 2 {
		wg.Go(func() {
			seen := map[string]bool{}
			var after uint64
			for len(seen) < wantWeb {
				if err := s.Wait(ctx, after); err != nil {
					errc <- fmt.Errorf("follower wait: %w (seen %d)", err, len(seen))
					return
				}
				recs, last, err := s.Query(Query{Tenant: "t1", App: "web", AfterPos: after, Limit: 1 << 30})
				if err != nil {
					errc <- err
					return
				}
				for _, r := range recs {
					k := fmt.Sprintf("%s#%d", r.Instance, r.Seq)
					if seen[k] || r.Pos <= after || r.Pos > last {
						errc <- fmt.Errorf("follower: %s pos %d seen %v, window (%d, %d]", k, r.Pos, seen[k], after, last)
						return
					}
					seen[k] = true
				}
				after = last
			}
		})
	}
	// Tails, checking order, while Enforce runs too.
	wg.Go(func() {
		for ctx.Err() == nil && s.Stats().Records < int64(len(writers)*perWriter) {
			recs, _, err := s.Query(Query{Tenant: "t1", App: "web", Limit: 25})
			if err != nil {
				errc <- err
				return
			}
			for i := 1; i < len(recs); i++ {
				a, b := recs[i-1], recs[i]
				if hitCmp(&hit{t: a.Time.UnixNano(), r: a}, &hit{t: b.Time.UnixNano(), r: b}) >= 0 {
					errc <- fmt.Errorf("tail out of order: %v", keys(recs))
					return
				}
			}
			if err := s.Enforce(); err != nil {
				errc <- err
				return
			}
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if st := s.Stats(); st.Records != int64(len(writers)*perWriter) || st.LastPos != uint64(len(writers)*perWriter) {
		t.Fatalf("stats %+v", st)
	}
	if n := len(queryAll(t, s, "t1", "web")); n != wantWeb {
		t.Fatalf("web holds %d records, want %d", n, wantWeb)
	}
}

func TestWait(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	ctx := context.Background()

	t.Run("wakes on append", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, s.Stats().LastPos) }()
		select {
		case err := <-done:
			t.Fatalf("Wait returned before an append: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		mustAppend(t, s, 1, rec("a", s.Stats().LastPos+1, 1, "x"))
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not wake on append")
		}
	})
	t.Run("not on a duplicate", func(t *testing.T) {
		last := s.Stats().LastPos
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, last) }()
		mustAppend(t, s, 0, rec("a", 1, 1, "dup"))
		select {
		case err := <-done:
			t.Fatalf("Wait returned without a new record: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		mustAppend(t, s, 1, rec("a", 100, 1, "new"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("returns at once when behind", func(t *testing.T) {
		if err := s.Wait(ctx, s.Stats().LastPos-1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ctx cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, s.Stats().LastPos) }()
		time.Sleep(10 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return on cancel")
		}
	})
	t.Run("close", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, s.Stats().LastPos) }()
		time.Sleep(10 * time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Wait after close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return on close")
		}
	})
}

func TestCloseStopsBackgroundGoroutine(t *testing.T) {
	// Counted by name, one per goroutine whose stack holds the loop (a
	// goroutine running the loop's deferred calls names it twice):
	// other tests' goroutines come and go meanwhile.
	loops := func() int {
		buf := make([]byte, 1<<22)
		n := 0
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "logstore.(*Store).enforceLoop") {
				n++
			}
		}
		return n
	}
	before := loops()
	cfg, _ := testConfig(t, "")
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, 1, rec("a", 1, 1, "x"))
	waitFor(t, "the retention loop to run", func() bool { return loops() == before+1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retention loop to exit", func() bool { return loops() == before })
}

package gcfloor

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		base       int
		live, room uint64
		want       int
	}{
		{100, 45 * mb, 128 * mb, 285}, // a small hub: the heap may grow by 128 MB
		{100, 128 * mb, 128 * mb, 100},
		{100, 500 * mb, 128 * mb, 100}, // a big one keeps the base
		{200, 100 * mb, 128 * mb, 200},
		{100, 0, 128 * mb, 12800}, // nothing live yet: counted as 1 MB
	} {
		if got := Percent(tc.base, tc.live, tc.room); got != tc.want {
			t.Errorf("Percent(%d, %d MB, %d MB) = %d, want %d", tc.base, tc.live/mb, tc.room/mb, got, tc.want)
		}
	}
}

// TestRunRaisesThenRestores: with a small live heap the percent rises to
// give the headroom; when Run ends the base comes back.
func TestRunRaisesThenRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, 1<<30, time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	p := 100
	for p <= 100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		p = CurrentPercent()
	}
	cancel()
	<-done
	if p <= 100 {
		t.Fatalf("GC percent %d with a 1 GB headroom and a test's heap, want it raised", p)
	}
	if got := CurrentPercent(); got != 100 {
		t.Fatalf("GC percent %d after Run ended, want the base 100 back", got)
	}
}

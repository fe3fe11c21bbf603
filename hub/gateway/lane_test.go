package gateway

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// waitLaneIdle waits until l has no goroutine.
func waitLaneIdle[T any](t *testing.T, l *lane[T]) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		running, waiting := l.running, len(l.waiting)
		l.mu.Unlock()
		if !running {
			if waiting != 0 {
				t.Fatalf("lane stopped with %d jobs waiting", waiting)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("lane still running")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLaneRunsInOrderAndEndsItsGoroutine(t *testing.T) {
	var mu sync.Mutex
	var got []int
	release := make(chan struct{})
	l := &lane[int]{limit: 3, run: func(v int) {
		if v == 0 {
			<-release // hold the first job so the others wait
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	}}
	if !l.push(0) {
		t.Fatal("empty lane refused a job")
	}
	// Job 0 may still be waiting rather than running: wait until it runs,
	// so that exactly three more fill the lane.
	for {
		l.mu.Lock()
		n := len(l.waiting)
		l.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for v := 1; v <= 3; v++ {
		if !l.push(v) {
			t.Fatalf("job %d refused below the limit", v)
		}
	}
	if l.push(4) {
		t.Fatal("a full lane took a fourth waiting job")
	}
	close(release)
	waitLaneIdle(t, l)
	if want := []int{0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if l.waiting != nil {
		t.Fatalf("an idle lane kept its buffer (cap %d)", cap(l.waiting))
	}

	// It starts again for the next job.
	if !l.push(5) {
		t.Fatal("idle lane refused a job")
	}
	waitLaneIdle(t, l)
	if got[len(got)-1] != 5 {
		t.Fatalf("ran %v, want 5 last", got)
	}
}

func TestLaneKeepsTheNewest(t *testing.T) {
	var mu sync.Mutex
	var got []string
	started, release := make(chan struct{}), make(chan struct{})
	l := &lane[string]{limit: 1, newest: true, run: func(v string) {
		if v == "first" {
			close(started)
			<-release
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	}}
	l.push("first")
	<-started
	for _, v := range []string{"older", "old", "newest"} {
		if !l.push(v) {
			t.Fatalf("a lane keeping the newest refused %q", v)
		}
	}
	close(release)
	waitLaneIdle(t, l)
	if want := []string{"first", "newest"}; !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
}

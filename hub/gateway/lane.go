package gateway

import "sync"

// lane runs the jobs given to it one at a time, in the order given, on a
// goroutine that exists only while jobs wait: a connection whose agent
// sent one inventory an hour ago holds no goroutine and no buffer for it.
// Thousands of idle agents are the common case, and each parked goroutine
// costs its stack.
type lane[T any] struct {
	run func(T)
	// limit bounds the jobs waiting (not counting the one running).
	limit int
	// newest keeps only the latest job waiting: a full lane replaces its
	// waiting job instead of refusing the new one.
	newest bool

	mu      sync.Mutex
	waiting []T
	running bool
}

// push queues v. It reports false, changing nothing, when the lane is full
// (never for a lane keeping the newest).
func (l *lane[T]) push(v T) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waiting) >= l.limit {
		if !l.newest {
			return false
		}
		clear(l.waiting)
		l.waiting = l.waiting[:0]
	}
	l.waiting = append(l.waiting, v)
	if !l.running {
		l.running = true
		go l.drain()
	}
	return true
}

func (l *lane[T]) drain() {
	for {
		l.mu.Lock()
		if len(l.waiting) == 0 {
			l.running, l.waiting = false, nil
			l.mu.Unlock()
			return
		}
		v := l.waiting[0]
		var zero T
		l.waiting[0] = zero
		l.waiting = l.waiting[1:]
		l.mu.Unlock()
		l.run(v)
	}
}

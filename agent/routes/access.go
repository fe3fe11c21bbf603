package routes

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-platform/wharf/agent/logship"
	"github.com/wharf-platform/wharf/agent/router"
)

// The router's access lines follow the app's log path: each finished
// request becomes a line of stream "router" in the app's logs, under the
// instance name "router-<host id>" (one seq sequence per host and app).
// The router hands entries over without blocking; a goroutine writes them
// to the log buffer in batches. When it falls behind by accessQueue
// entries, newer ones are dropped and counted.
const accessQueue = 16384

// accessFlush is how long access lines wait to be written in a batch.
const accessFlush = 20 * time.Millisecond

// access holds the router's access lines on their way to the log buffer:
// a slice that grows as lines arrive and that the writer takes whole, so
// a host whose router serves nothing holds no queue (a channel of
// accessQueue entries would be ~3 MB per agent, and scanned by every
// garbage collection).
type access struct {
	mu      sync.Mutex
	pending []router.AccessEntry
	spare   []router.AccessEntry // the writer's last batch, emptied, for reuse
	ready   chan struct{}        // signalled when pending stops being empty
	dropped atomic.Uint64
}

func newAccess() *access { return &access{ready: make(chan struct{}, 1)} }

// add is the router's AccessLog callback.
func (a *access) add(e router.AccessEntry) {
	a.mu.Lock()
	if len(a.pending) >= accessQueue {
		a.mu.Unlock()
		a.dropped.Add(1)
		return
	}
	if a.pending == nil {
		a.pending, a.spare = a.spare, nil
	}
	a.pending = append(a.pending, e)
	first := len(a.pending) == 1
	a.mu.Unlock()
	if first {
		select {
		case a.ready <- struct{}{}:
		default:
		}
	}
}

// take returns the waiting entries; give them back with recycle.
func (a *access) take() []router.AccessEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.pending
	a.pending = nil
	return b
}

// recycle keeps a taken batch's array for the next lines, unless it grew
// large in a burst.
func (a *access) recycle(b []router.AccessEntry) {
	if cap(b) > 1024 {
		return
	}
	clear(b)
	a.mu.Lock()
	a.spare = b[:0]
	a.mu.Unlock()
}

// accessLine formats one entry.
func accessLine(e router.AccessEntry) string {
	if e.TCP {
		return fmt.Sprintf("%s tcp %dB %s instance=%s", e.RemoteAddr, e.BytesOut, e.Duration.Round(time.Microsecond), e.Instance)
	}
	return fmt.Sprintf("%s %q %d %dB %s host=%s id=%s instance=%s", e.RemoteAddr, e.Method+" "+e.Path, e.Status, e.BytesOut,
		e.Duration.Round(time.Microsecond), e.Host, e.RequestID, e.Instance)
}

// WriteLines writes the router's access lines to buf, as those of the
// instance "router-<hostID>" of each app, until ctx ends.
func (r *Routes) WriteLines(ctx context.Context, buf *logship.Buffer, hostID string) {
	a, log := r.access, r.log.Warn
	byApp := map[string][]logship.Entry{}
	flush := func() {
		for app, es := range byApp {
			if err := buf.AppendBatch(app+"/router-"+hostID, es); err != nil {
				log("keep router access lines", "app", app, "lines", len(es), "err", err)
			}
			delete(byApp, app)
		}
		if n := a.dropped.Swap(0); n > 0 {
			log("router access lines dropped: the log buffer fell behind", "lines", n)
		}
	}
	collect := func() {
		b := a.take()
		for _, e := range b {
			byApp[e.App] = append(byApp[e.App], logship.Entry{Time: e.Time, Stream: "router", Text: accessLine(e)})
		}
		a.recycle(b)
	}
	for {
		select {
		case <-ctx.Done():
			collect()
			flush()
			return
		case <-a.ready:
		}
		// Lines that arrive within accessFlush go in the same batch.
		select {
		case <-ctx.Done():
		case <-time.After(accessFlush):
		}
		collect()
		flush()
	}
}

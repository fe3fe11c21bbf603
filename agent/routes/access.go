package routes

import (
	"context"
	"fmt"
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

// access holds the router's access lines on their way to the log buffer.
type access struct {
	ch      chan router.AccessEntry
	dropped atomic.Uint64
}

func newAccess() *access {
	return &access{ch: make(chan router.AccessEntry, accessQueue)}
}

// add is the router's AccessLog callback.
func (a *access) add(e router.AccessEntry) {
	select {
	case a.ch <- e:
	default:
		a.dropped.Add(1)
	}
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
	t := time.NewTicker(accessFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case e := <-a.ch:
			byApp[e.App] = append(byApp[e.App], logship.Entry{Time: e.Time, Stream: "router", Text: accessLine(e)})
		case <-t.C:
			flush()
		}
	}
}

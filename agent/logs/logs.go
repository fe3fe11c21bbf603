// Package logs captures the instances' output into the agent's on-disk
// buffer (agent/logship) and ships it to the hub on logs streams.
package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/logship"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Logs flow: each running instance's output is followed through its driver
// (capture), kept in the on-disk buffer (agent/logship) under the source
// "tenant/app/instance", and shipped on the logs stream of the current hub
// connection (ship) until the hub acknowledges it. A restarted agent
// resumes capture after the newest line the buffer stored per stream and
// shipping after the last acknowledged seq.
const (
	// logBatchLines and logBatchBytes bound one LogBatch.
	logBatchLines = 8192
	logBatchBytes = 1 << 20
	// logWindow is how many batches may await their ack.
	logWindow = 4
	// captureFlush is how long captured lines wait to be written in a
	// batch; capturePieces writes at once when that many are pending.
	captureFlush  = 20 * time.Millisecond
	capturePieces = 1024
	// captureRetry is the pause before following an instance's output
	// again after the follow failed.
	captureRetry = time.Second
)

// Shipper captures and ships the instances' output.
type Shipper struct {
	buf *logship.Buffer
	drv driver.Driver
	log *slog.Logger

	mu        sync.Mutex
	capturing map[string]bool // instance ids being followed

	captured atomic.Uint64 // lines (pieces) stored in the buffer

	// reporting is set while a batch carrying drops awaits its ack, so
	// pipelined batches do not report the same drops twice.
	reporting atomic.Bool
}

// New makes a shipper of buf's lines that captures through drv.
func New(buf *logship.Buffer, drv driver.Driver, log *slog.Logger) *Shipper {
	return &Shipper{buf: buf, drv: drv, log: log, capturing: map[string]bool{}}
}

// source names an instance's lines in the buffer and on the wire.
func source(in *wire.Instance) string { return in.Tenant + "/" + in.App + "/" + in.Id }

// follow starts capturing every wanted instance not yet followed; each
// follow ends by itself when its instance is removed.
func (l *Shipper) follow(ctx context.Context, want []*wire.Instance) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range want {
		if l.capturing[in.Id] || in.Desired == wire.DesiredStop {
			continue
		}
		l.capturing[in.Id] = true
		go l.capture(ctx, in.Id, source(in))
	}
}

// capture follows one instance's output into the buffer until the
// instance is gone (its follow ends without error and it is not found).
func (l *Shipper) capture(ctx context.Context, id, src string) {
	defer func() {
		l.mu.Lock()
		delete(l.capturing, id)
		l.mu.Unlock()
	}()
	w := &captureWriter{buf: l.buf, src: src, log: l.log, captured: &l.captured}
	defer w.close()
	for ctx.Err() == nil {
		last := l.buf.Last(src)
		var since time.Time
		for _, t := range last {
			if since.IsZero() || t.Before(since) {
				since = t
			}
		}
		err := l.drv.Logs(ctx, id, driver.LogOptions{Since: since, Follow: true}, func(line driver.LogLine) error {
			if t, ok := last[line.Stream]; ok && !line.Time.IsZero() && !line.Time.After(t) {
				return nil // stored before a restart
			}
			return w.add(line)
		})
		w.flush()
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, driver.ErrNotFound) {
			if _, ierr := l.drv.Inspect(ctx, id); errors.Is(ierr, driver.ErrNotFound) {
				return
			}
		} else {
			l.log.Warn("follow instance output", "instance", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(captureRetry):
		}
	}
}

// captureWriter batches one instance's lines into buffer appends.
type captureWriter struct {
	buf *logship.Buffer
	src string
	log *slog.Logger

	mu       sync.Mutex
	pending  []logship.Entry
	timer    *time.Timer // flushes what is pending after captureFlush
	failed   bool        // the last append failed (logged once until one works)
	captured *atomic.Uint64
}

// close flushes what is pending for good. (An idle instance costs no
// timer: add arms one with the first line pending.)
func (w *captureWriter) close() {
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.flush()
}

func (w *captureWriter) add(line driver.LogLine) error {
	w.mu.Lock()
	if len(w.pending) == 0 {
		if w.timer == nil {
			w.timer = time.AfterFunc(captureFlush, w.flush)
		} else {
			w.timer.Reset(captureFlush)
		}
	}
	w.pending = append(w.pending, logship.Entry{Time: line.Time, Stream: line.Stream, Text: line.Line})
	full := len(w.pending) >= capturePieces
	w.mu.Unlock()
	if full {
		w.flush()
	}
	return nil
}

func (w *captureWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return
	}
	err := w.buf.AppendBatch(w.src, w.pending)
	switch {
	case err != nil && !w.failed:
		// A full disk or a closed buffer: the lines are lost, and said so.
		w.log.Error("keep instance output", "source", w.src, "lines", len(w.pending), "err", err)
		w.failed = true
	case err == nil:
		w.failed = false
		w.captured.Add(uint64(len(w.pending)))
	}
	clear(w.pending)
	w.pending = w.pending[:0]
}

// CaptureWanted keeps every wanted instance's output followed until ctx
// ends.
func (l *Shipper) CaptureWanted(ctx context.Context, wanted func() []*wire.Instance) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		l.follow(ctx, wanted())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ShipOn ships logs on conn until ctx ends, opening a new logs stream
// after a refused batch.
func (l *Shipper) ShipOn(ctx context.Context, conn *quic.Conn) {
	for ctx.Err() == nil {
		err := l.ship(ctx, conn)
		if ctx.Err() != nil || conn.Context().Err() != nil {
			return
		}
		l.log.Warn("log shipping", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// inflight is a sent batch awaiting its ack.
type inflight struct {
	id    uint64
	acks  map[string]uint64
	drops map[string]logship.DropInfo
}

// ship sends the buffer's lines on a logs stream of conn until the
// connection or ctx ends, or the hub refuses a batch. Everything not
// acknowledged is sent again on the next connection.
func (l *Shipper) ship(ctx context.Context, conn *quic.Conn) error {
	st, err := openStream(ctx, conn, wire.StreamLogs)
	if err != nil {
		return err
	}
	defer st.CancelRead(quic.StreamErrorCode(wire.CodeShutdown))
	defer st.Close()
	s := wire.NewStream(st, 0)
	l.buf.Rewind()
	l.reporting.Store(false)
	defer l.reporting.Store(false)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	window := make(chan inflight, logWindow)
	go func() {
		for {
			env, err := s.Recv()
			if err != nil {
				cancel(err)
				return
			}
			ack := env.GetLogAck()
			if ack == nil {
				cancel(fmt.Errorf("%w: want LogAck", wire.ErrUnknownMessage))
				return
			}
			var p inflight
			select {
			case p = <-window:
			default:
			}
			if p.id != ack.Id {
				cancel(fmt.Errorf("%w: ack for batch %d, expected %d", wire.ErrCorrupt, ack.Id, p.id))
				return
			}
			if ack.Error != "" {
				cancel(fmt.Errorf("hub kept no copy of log batch %d: %s", ack.Id, ack.Error))
				return
			}
			if err := l.buf.Ack(p.acks); err != nil {
				cancel(err)
				return
			}
			if len(p.drops) > 0 {
				if err := l.buf.AckDropped(p.drops); err != nil {
					l.log.Warn("forget reported log drops", "err", err)
				}
				l.reporting.Store(false)
			}
		}
	}()
	var carry []logship.Line
	var spare []*wire.LogLine
	for id := uint64(1); ; id++ {
		lines := carry
		if len(lines) == 0 {
			lines, err = l.buf.ReadWait(ctx, logBatchLines)
			if err != nil {
				if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
					return c
				}
				return err
			}
		}
		var drops map[string]logship.DropInfo
		if !l.reporting.Load() {
			if drops = l.buf.Dropped(); len(drops) > 0 {
				l.reporting.Store(true)
			}
		}
		b, p, n := batch(id, lines, drops, spare)
		carry = lines[n:]
		select {
		case window <- p:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_LogBatch{LogBatch: b}}); err != nil {
			return err
		}
		spare = b.Lines // marshalled: the structs can carry the next batch
	}
}

// batch builds a LogBatch from a prefix of lines (at most logBatchBytes of
// text, at least one line) and the drops to report; it returns how many
// lines it took. It reuses the structs of spare, a sent batch's lines.
func batch(id uint64, lines []logship.Line, drops map[string]logship.DropInfo, spare []*wire.LogLine) (*wire.LogBatch, inflight, int) {
	b := &wire.LogBatch{Id: id, Lines: spare[:0]}
	p := inflight{id: id, acks: map[string]uint64{}}
	index := map[string]uint32{}
	src := func(name string) uint32 {
		i, ok := index[name]
		if !ok {
			i = uint32(len(b.Sources))
			index[name] = i
			b.Sources = append(b.Sources, name)
		}
		return i
	}
	size, n := 0, 0
	for _, ln := range lines {
		if n > 0 && size+len(ln.Text) > logBatchBytes {
			break
		}
		size += len(ln.Text)
		n++
		// The text's bytes, not a copy: marshalling only reads them.
		text := unsafe.Slice(unsafe.StringData(ln.Text), len(ln.Text))
		var wl *wire.LogLine
		if n-1 < len(spare) {
			wl = spare[n-1]
		} else {
			wl = &wire.LogLine{}
		}
		wl.Source, wl.Stream, wl.Seq, wl.UnixNano, wl.Text, wl.Partial = src(ln.Instance), ln.Stream, ln.Seq, ln.Time.UnixNano(), text, ln.Partial
		b.Lines = append(b.Lines, wl)
		p.acks[ln.Instance] = max(p.acks[ln.Instance], ln.Seq)
	}
	if len(drops) > 0 {
		p.drops = drops
		for name, d := range drops {
			b.Drops = append(b.Drops, &wire.LogDrop{Source: src(name), Count: d.Count, First: d.First, Last: d.Last})
		}
	}
	return b, p, n
}

// Captured counts the lines (pieces) captured into the buffer.
func (l *Shipper) Captured() uint64 { return l.captured.Load() }

// openStream opens a stream of kind on conn.
func openStream(ctx context.Context, conn *quic.Conn, kind wire.StreamKind) (*quic.Stream, error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write([]byte{byte(kind)}); err != nil {
		return nil, err
	}
	return st, nil
}

package logship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wharf-platform/wharf/internal/seglog"
)

// readChunk is how much Read reads from a segment at once.
const readChunk = 512 << 10

// Read returns up to max of the next unacked lines after the read cursor,
// in append order, and advances the cursor past them. It does not block;
// an empty result means nothing new. Lines returned together with an error
// are valid.
func (b *Buffer) Read(max int) ([]Line, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	var out []Line
	for len(out) < max {
		seg := b.cursorSeg()
		if b.cur.off >= seg.size {
			if seg == b.active() {
				break
			}
			b.cur = cursor{id: seg.id + 1, off: segHeaderLen}
			continue
		}
		if c, ok := b.cache.get(b.cur); ok {
			b.cur.off += c.size
			if is := b.inst[c.line.Instance]; is == nil || c.line.Seq > is.acked {
				out = append(out, c.line)
			}
			continue
		}
		buf, err := b.readAt(seg, b.cur.off)
		if err != nil {
			return out, err
		}
		// One string for the chunk: lines' texts are its substrings.
		sh := &sharedAt{shared: &shared{str: string(buf), names: b.names}}
		pos := 0
		for pos < len(buf) && len(out) < max {
			sh.off = pos
			l, n, err := decodeRecordShared(buf[pos:], sh)
			if errors.Is(err, seglog.ErrShort) && pos > 0 {
				break // the rest is in the next chunk
			}
			if err != nil {
				return out, fmt.Errorf("logship: read %s at offset %d: %w", seg.path, b.cur.off+int64(pos), err)
			}
			pos += n
			if is := b.inst[l.Instance]; is != nil && l.Seq <= is.acked {
				continue
			}
			out = append(out, l)
		}
		b.cur.off += int64(pos)
	}
	return out, nil
}

// cursorSeg returns the segment under the cursor, moving the cursor to the
// start of the next segment if its own was deleted.
func (b *Buffer) cursorSeg() *segment {
	for _, s := range b.segs {
		if s.id == b.cur.id {
			return s
		}
		if s.id > b.cur.id {
			b.cur = cursor{id: s.id, off: segHeaderLen}
			return s
		}
	}
	// Unreachable: the active segment has the highest id.
	s := b.active()
	b.cur = cursor{id: s.id, off: s.size}
	return s
}

// readAt reads a chunk of seg at off holding at least one whole record.
func (b *Buffer) readAt(seg *segment, off int64) ([]byte, error) {
	if b.rf == nil || b.rfID != seg.id {
		if b.rf != nil {
			b.rf.Close()
			b.rf = nil
		}
		f, err := os.Open(seg.path)
		if err != nil {
			return nil, fmt.Errorf("logship: open segment for read: %w", err)
		}
		b.rf, b.rfID = f, seg.id
	}
	avail := seg.size - off
	buf, err := b.readFull(min(avail, readChunk), off)
	if err != nil {
		return nil, err
	}
	if n, err := recordLen(buf); err == nil && int64(n) > int64(len(buf)) && int64(n) <= avail {
		return b.readFull(int64(n), off)
	}
	return buf, nil
}

func (b *Buffer) readFull(n, off int64) ([]byte, error) {
	if int64(cap(b.rbuf)) < n {
		b.rbuf = make([]byte, n)
	}
	buf := b.rbuf[:n]
	if _, err := b.rf.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("logship: read segment: %w", err)
	} else if err != nil {
		return nil, fmt.Errorf("logship: segment shorter than recorded size: %w", io.ErrUnexpectedEOF)
	}
	return buf, nil
}

// ReadWait is Read that blocks until at least one line is available, ctx
// is done (ctx.Err is returned) or the buffer is closed (ErrClosed).
func (b *Buffer) ReadWait(ctx context.Context, max int) ([]Line, error) {
	for {
		lines, err := b.Read(max)
		if err != nil || len(lines) > 0 || max <= 0 {
			return lines, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.done:
			return nil, ErrClosed
		case <-b.notify:
		}
	}
}

// Rewind moves the read cursor back to the first unacked line, so the next
// Reads resend everything not acknowledged (use after a reconnect).
func (b *Buffer) Rewind() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.cur = cursor{id: b.segs[0].id, off: segHeaderLen}
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

package logship

import (
	"bytes"
	"io"
	"sync"
	"unicode/utf8"
)

// splitLine appends the pieces of one line to dst: pieces of at most max
// bytes, all Partial except the last. With more set, the line continues
// later (the last piece is Partial too). Cuts fall on a UTF-8 rune start
// when one lies within the last utf8.UTFMax-1 bytes before max.
func splitLine(dst []piece, text string, max int, more bool) []piece {
	for len(text) > max {
		cut := cutPoint(text, max)
		dst = append(dst, piece{text: text[:cut], partial: true})
		text = text[cut:]
	}
	return append(dst, piece{text: text, partial: more})
}

// cutPoint returns where to cut s (len(s) > max): max, or a little less so
// a multi-byte rune is not split.
func cutPoint[T string | []byte](s T, max int) int {
	for k := max; k > 0 && k > max-utf8.UTFMax; k-- {
		if utf8.RuneStart(s[k]) {
			return k
		}
	}
	return max
}

// lineWriter turns a byte stream into lines; see Buffer.Writer.
type lineWriter struct {
	b                *Buffer
	instance, stream string

	mu      sync.Mutex
	pending []byte // bytes of the current, unterminated line
	pieces  []piece
	closed  bool
}

// Writer returns a writer for a process's stdout or stderr pipe. It splits
// the stream on "\n" (dropping a "\r" right before it) across arbitrary
// write boundaries; each Write appends its complete lines as one batch.
// A line longer than MaxLineBytes is stored as MaxLineBytes pieces marked
// Partial as soon as they are full, so memory stays bounded; the piece
// ending the line is not Partial. Close appends the unterminated last line,
// if any. Write fails only when the buffer fails or is closed; the bytes of
// a failed Write are not retried.
func (b *Buffer) Writer(instance, stream string) io.WriteCloser {
	return &lineWriter{b: b, instance: instance, stream: stream}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	max := w.b.cfg.MaxLineBytes
	w.pieces = w.pieces[:0]
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w.pending = append(w.pending, rest...)
			break
		}
		w.pending = append(w.pending, rest[:i]...)
		line := bytes.TrimSuffix(w.pending, []byte{'\r'})
		w.pieces = splitLine(w.pieces, string(line), max, false)
		w.pending = w.pending[:0]
		rest = rest[i+1:]
	}
	// Emit full pieces of an over-long unterminated line now. A lone "\r"
	// past max is kept back: it may be the end of a "\r\n".
	for len(w.pending) > max+1 || (len(w.pending) == max+1 && w.pending[max] != '\r') {
		cut := cutPoint(w.pending, max)
		w.pieces = append(w.pieces, piece{text: string(w.pending[:cut]), partial: true})
		w.pending = w.pending[:copy(w.pending, w.pending[cut:])]
	}
	if err := w.b.appendPieces(w.instance, w.stream, w.pieces); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close appends the unterminated last line, if any, and closes the writer.
// It does not close the Buffer.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if len(w.pending) == 0 {
		return nil
	}
	line := bytes.TrimSuffix(w.pending, []byte{'\r'})
	w.pending = nil
	return w.b.appendPieces(w.instance, w.stream, splitLine(nil, string(line), w.b.cfg.MaxLineBytes, false))
}

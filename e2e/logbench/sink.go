package logbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
)

const (
	// readBufSize is a connection's initial read buffer.
	readBufSize = 256 << 10
	// maxFrame bounds one message (a line or an octet-counted frame), and
	// so a connection's buffer.
	maxFrame = 64 << 20
	// maxTracked bounds the numbers the bitmap holds (256 MiB of bitmap);
	// a larger number counts as unnumbered.
	maxTracked = 1 << 31
)

// ErrSinkClosed is returned by WaitCount once the sink is closed.
var ErrSinkClosed = errors.New("sink closed")

// Sink is a TCP server on 127.0.0.1 that counts received log messages and
// checks their numbers (see the package doc).
//
// Each connection's framing is detected from its first bytes: a 1 to 9
// digit length, a space and '<' mean RFC 6587 octet counting ("LEN SP
// MSG", every frame one message, newlines inside it included); anything
// else is newline-delimited (RFC 6587 non-transparent framing with LF, or
// plain text lines), where each non-empty line is one message, and a final
// unterminated line is a message when the connection ends. A WriteLines line
// starts with 12 digits, so it is never taken for a frame length.
type Sink struct {
	ln   net.Listener
	wg   sync.WaitGroup
	done chan struct{}

	count atomic.Int64
	bytes atomic.Int64

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	seen      []uint64 // bit i: number i arrived
	dups      map[int64]int64
	unnumbers int64 // messages without a (trackable) number
	waiters   []waiter
	err       error // first framing error
}

type waiter struct {
	n  int64
	ch chan struct{}
}

// NewSink listens on a free port of 127.0.0.1 and serves until Close.
func NewSink() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Sink{
		ln:    ln,
		done:  make(chan struct{}),
		conns: make(map[net.Conn]struct{}),
		dups:  make(map[int64]int64),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the host:port the sink listens on.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Count returns the number of messages received so far.
func (s *Sink) Count() int64 { return s.count.Load() }

// Bytes returns the bytes received so far, framing included.
func (s *Sink) Bytes() int64 { return s.bytes.Load() }

// Unnumbered returns how many received messages had no 12-digit number
// (or one too large to track, ≥ 2^31); they are in Count but not in Check.
func (s *Sink) Unnumbered() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unnumbers
}

// Err returns the first framing error seen on any connection (a bad or
// truncated octet-counted frame, a message over 64 MiB), or nil. The
// connection that had it was closed.
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Check looks at the numbers [0, n): missing is how many never arrived,
// dup how many extra copies arrived (a number received three times adds
// two). Numbers ≥ n are ignored.
func (s *Sink) Check(n int) (missing, dup int) {
	if n <= 0 {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	have := 0
	full := min(n/64, len(s.seen))
	for _, w := range s.seen[:full] {
		have += bits.OnesCount64(w)
	}
	if full < len(s.seen) && n%64 != 0 {
		have += bits.OnesCount64(s.seen[full] & (1<<(n%64) - 1))
	}
	for v, d := range s.dups {
		if v < int64(n) {
			dup += int(d)
		}
	}
	return n - have, dup
}

// WaitCount blocks until Count ≥ n, ctx is done or the sink is closed. It
// wakes as soon as the message that reaches n is counted.
func (s *Sink) WaitCount(ctx context.Context, n int64) error {
	s.mu.Lock()
	if s.count.Load() >= n {
		s.mu.Unlock()
		return nil
	}
	w := waiter{n: n, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-s.done:
		s.dropWaiter(w)
		return ErrSinkClosed
	case <-ctx.Done():
		s.dropWaiter(w)
		return fmt.Errorf("wait for %d messages, have %d: %w", n, s.count.Load(), context.Cause(ctx))
	}
}

func (s *Sink) dropWaiter(w waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.waiters {
		if x.ch == w.ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// Close stops listening, closes every connection and waits for their
// goroutines. Messages already counted stay counted.
func (s *Sink) Close() error {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil
	default:
	}
	close(s.done)
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Sink) accept() {
	defer s.wg.Done()
	// Ends when Close closes the listener.
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.fail(fmt.Errorf("accept: %w", err))
			return
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Sink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// framing of a connection.
type framing uint8

const (
	framingUnknown framing = iota
	framingNewline
	framingOctet
)

// batch is what one read of a connection yields, recorded under one lock.
type batch struct {
	msgs  int64
	nums  []int64
	unnum int64
}

func (s *Sink) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, readBufSize)
	start, end := 0, 0 // unparsed data is buf[start:end]
	mode := framingUnknown
	var b batch
	// Ends at EOF, on a read error (Close closes c) or on a framing error.
	for {
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if end == len(buf) {
			if len(buf) >= maxFrame+16 {
				s.fail(fmt.Errorf("%s: message over %d bytes", c.RemoteAddr(), maxFrame))
				return
			}
			nb := make([]byte, min(2*len(buf), maxFrame+16))
			copy(nb, buf[:end])
			buf = nb
		}
		n, rerr := c.Read(buf[end:])
		end += n
		s.bytes.Add(int64(n))
		eof := rerr != nil
		if mode == framingUnknown {
			mode = detect(buf[start:end], eof)
		}
		var used int
		var ferr error
		b.msgs, b.nums, b.unnum = 0, b.nums[:0], 0
		switch mode {
		case framingNewline:
			used = b.newlines(buf[start:end], eof)
		case framingOctet:
			used, ferr = b.frames(buf[start:end], eof)
		}
		start += used
		s.record(&b)
		if ferr != nil {
			s.fail(fmt.Errorf("%s: %w", c.RemoteAddr(), ferr))
			return
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, net.ErrClosed) {
				s.fail(fmt.Errorf("read %s: %w", c.RemoteAddr(), rerr))
			}
			return
		}
	}
}

// detect decides a connection's framing from its first bytes, or returns
// framingUnknown while they are too few to tell (and more may come).
func detect(p []byte, eof bool) framing {
	i := 0
	for i < len(p) && i < 10 && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	switch {
	case i == 0 || i == 10:
		return framingNewline
	case i+1 < len(p):
		if p[i] == ' ' && p[i+1] == '<' {
			return framingOctet
		}
		return framingNewline
	case i < len(p) && p[i] != ' ':
		return framingNewline
	case eof:
		return framingNewline
	}
	return framingUnknown
}

// newlines adds the complete lines of p to b and returns the bytes used;
// at eof a final unterminated line counts too.
func (b *batch) newlines(p []byte, eof bool) int {
	used := 0
	for used < len(p) {
		i := bytes.IndexByte(p[used:], '\n')
		if i < 0 {
			if eof {
				b.add(p[used:])
				return len(p)
			}
			break
		}
		if i > 0 {
			b.add(p[used : used+i])
		}
		used += i + 1
	}
	return used
}

// frames adds the complete octet-counted frames of p to b and returns the
// bytes used.
func (b *batch) frames(p []byte, eof bool) (int, error) {
	used := 0
	for used < len(p) {
		q := p[used:]
		i, size := 0, 0
		for i < len(q) && q[i] >= '0' && q[i] <= '9' {
			size = size*10 + int(q[i]-'0')
			i++
			if size > maxFrame {
				return used, fmt.Errorf("octet-counted frame over %d bytes", maxFrame)
			}
		}
		if i == len(q) {
			break // length not complete yet
		}
		if i == 0 || q[i] != ' ' {
			return used, fmt.Errorf("octet counting: bad frame length %q", q[:min(len(q), i+1)])
		}
		if len(q) < i+1+size {
			break
		}
		b.add(q[i+1 : i+1+size])
		used += i + 1 + size
	}
	if eof && used < len(p) {
		return used, fmt.Errorf("octet counting: connection ended inside a frame (%d bytes left)", len(p)-used)
	}
	return used, nil
}

func (b *batch) add(msg []byte) {
	b.msgs++
	if v, ok := firstNumber(msg); ok && v < maxTracked {
		b.nums = append(b.nums, v)
	} else {
		b.unnum++
	}
}

// firstNumber returns the first run of exactly 12 decimal digits in msg.
func firstNumber(msg []byte) (int64, bool) {
	run := 0
	for i, c := range msg {
		if c >= '0' && c <= '9' {
			run++
			continue
		}
		if run == numDigits {
			return parseDigits(msg[i-numDigits : i]), true
		}
		run = 0
	}
	if run == numDigits {
		return parseDigits(msg[len(msg)-numDigits:]), true
	}
	return 0, false
}

func parseDigits(p []byte) int64 {
	var v int64
	for _, c := range p {
		v = v*10 + int64(c-'0')
	}
	return v
}

func (s *Sink) record(b *batch) {
	if b.msgs == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range b.nums {
		w := int(v / 64)
		if w >= len(s.seen) {
			ns := make([]uint64, max(w+1, 2*len(s.seen), 1024))
			copy(ns, s.seen)
			s.seen = ns
		}
		bit := uint64(1) << (v % 64)
		if s.seen[w]&bit != 0 {
			s.dups[v]++
		} else {
			s.seen[w] |= bit
		}
	}
	s.unnumbers += b.unnum
	n := s.count.Add(b.msgs)
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if n >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.waiters = kept
}

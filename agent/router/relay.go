package router

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A TCP route's connections are relayed by a few event loops, each with
// an epoll instance of its own, rather than by two goroutines per
// connection copying one way each.
//
// Two copying goroutines cost three system calls per chunk and direction
// (the chunk in, the chunk out, and a read that finds the socket empty
// before the goroutine parks) and two goroutine hand-offs. Go's poller
// cannot skip that last read: it does not say whether the peer has
// closed, so a short read does not tell "empty" from "empty, then end of
// stream". A loop here watches its sockets level-triggered with
// EPOLLRDHUP: a socket is reported while it has data or has reached its
// end, so each chunk costs one read and one write, and the end of a
// stream is one more read that returns 0.
//
// The loop never blocks a thread: its epoll descriptor is itself watched
// by Go's poller (an epoll instance is readable while it has events), and
// the loop parks like any goroutine waiting for a read when it has
// nothing to do.

// relayLinger is how long a connection's client side may keep sending
// once its instance has ended its side (a variable for tests).
var relayLinger = time.Minute

// relayEnd is one socket of a relayed connection.
type relayEnd struct {
	fd   int
	gen  uint32
	pair *relayPair
	peer *relayEnd
	// out holds what was read from the peer and not yet written to
	// this socket; the peer is not read until it is written.
	out  []byte
	eof  bool   // this socket's input has ended
	mask uint32 // the events registered for it
}

// want is the events the loop waits for on e.
func (e *relayEnd) want() uint32 {
	var m uint32
	if !e.eof && len(e.peer.out) == 0 {
		m |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if len(e.out) > 0 {
		m |= unix.EPOLLOUT
	}
	return m
}

// relayPair is one relayed connection: a client and an instance.
type relayPair struct {
	client, up relayEnd
	toClient   int64
	linger     time.Time // set when the instance's side ends
	closed     bool      // loop-owned
	err        error
	done       chan struct{}
}

// relayLoop serves the pairs given to it.
type relayLoop struct {
	epfd int
	f    *os.File // epfd, watched by Go's poller
	rc   syscall.RawConn
	buf  []byte

	mu     sync.Mutex
	slots  []*relayEnd // by descriptor
	gen    uint32
	closed bool

	lingering []*relayPair // loop-owned
	deadline  time.Time    // the read deadline set on f, zero for none
}

// relayer spreads pairs over its loops, started on first use.
type relayer struct {
	mu     sync.Mutex
	loops  []*relayLoop // set once
	closed bool
	next   atomic.Uint32
	wg     sync.WaitGroup
}

// start returns the loops, starting them if need be. A failure (no
// descriptor left, say) is returned, and the next connection tries again.
func (r *relayer) start() ([]*relayLoop, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("relay: router closed")
	}
	if r.loops != nil {
		return r.loops, nil
	}
	var loops []*relayLoop
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		l, err := newRelayLoop()
		if err != nil {
			for _, l := range loops {
				l.f.Close()
			}
			return nil, err
		}
		loops = append(loops, l)
	}
	for _, l := range loops {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			l.run()
		}()
	}
	r.loops = loops
	return loops, nil
}

// close ends every relayed connection and waits for the loops to stop.
func (r *relayer) close() {
	r.mu.Lock()
	r.closed = true
	loops := r.loops
	r.mu.Unlock()
	for _, l := range loops {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.f.Close()
	}
	r.wg.Wait()
}

// relay copies both ways between client and up until both sides have
// ended (half closes are passed on), either fails, or the relayer
// closes. It takes both connections over (and closes them) and returns
// the bytes sent to the client.
func (r *relayer) relay(client, up net.Conn) (int64, error) {
	loops, err := r.start()
	if err != nil {
		client.Close()
		up.Close()
		return 0, err
	}
	cfd, err := detach(client)
	if err != nil {
		up.Close()
		return 0, err
	}
	ufd, err := detach(up)
	if err != nil {
		unix.Close(cfd)
		return 0, err
	}
	l := loops[int(r.next.Add(1))%len(loops)]
	p := &relayPair{done: make(chan struct{})}
	p.client = relayEnd{fd: cfd, pair: p, peer: &p.up}
	p.up = relayEnd{fd: ufd, pair: p, peer: &p.client}
	if err := l.add(p); err != nil {
		return 0, err
	}
	<-p.done
	return p.toClient, p.err
}

// detach takes c's socket over: a duplicate of its descriptor (which
// keeps the socket non-blocking), with c closed, so that Go's poller no
// longer watches it.
func detach(c net.Conn) (int, error) {
	defer c.Close()
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("relay: %T has no descriptor", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("relay: dup: %w", derr)
	}
	return nfd, nil
}

func newRelayLoop() (*relayLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("relay: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("relay: epoll: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile is watched by Go's
	// poller.
	f := os.NewFile(uintptr(epfd), "relay-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &relayLoop{epfd: epfd, f: f, rc: rc, buf: make([]byte, 64<<10)}, nil
}

// add registers p's sockets; on an error it closes them and p is not
// served. The loop closes sockets only with l.mu held, so that neither
// socket is closed (and its number reused) between the two additions.
func (l *relayLoop) add(p *relayPair) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ends := [2]*relayEnd{&p.client, &p.up}
	var err error
	if l.closed {
		err = errors.New("relay: router closed")
	}
	for _, e := range ends {
		if err != nil {
			break
		}
		l.gen++
		e.gen = l.gen
		e.mask = unix.EPOLLIN | unix.EPOLLRDHUP
		for len(l.slots) <= e.fd {
			l.slots = append(l.slots, make([]*relayEnd, len(l.slots)+64)...)
		}
		l.slots[e.fd] = e
		ev := unix.EpollEvent{Events: e.mask, Fd: int32(e.fd), Pad: int32(e.gen)}
		if cerr := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, e.fd, &ev); cerr != nil {
			err = fmt.Errorf("relay: epoll add: %w", cerr)
		}
	}
	if err != nil {
		// An event the loop already holds for the socket added first
		// finds no slot, or another socket's generation.
		for _, e := range ends {
			if e.fd < len(l.slots) && l.slots[e.fd] == e {
				l.slots[e.fd] = nil
			}
			unix.Close(e.fd)
		}
	}
	return err
}

// run serves the loop's pairs until the loop is closed, then ends those
// left.
func (l *relayLoop) run() {
	events := make([]unix.EpollEvent, 256)
	ends := make([]*relayEnd, len(events))
	for {
		n, err := l.wait(events)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		l.mu.Lock()
		for i := 0; i < n; i++ {
			ends[i] = nil
			if fd := int(events[i].Fd); fd < len(l.slots) {
				if e := l.slots[fd]; e != nil && e.gen == uint32(events[i].Pad) {
					ends[i] = e
				}
			}
		}
		l.mu.Unlock()
		for i := 0; i < n; i++ {
			if e := ends[i]; e != nil && !e.pair.closed {
				l.serve(e, events[i].Events)
			}
			ends[i] = nil
		}
		if err != nil {
			l.sweep()
		}
		if n > 0 {
			runtime.Gosched() // other goroutines share the P
		}
	}
	l.mu.Lock()
	var left []*relayPair
	for _, e := range l.slots {
		if e != nil && e == &e.pair.client {
			left = append(left, e.pair)
		}
	}
	l.mu.Unlock()
	for _, p := range left {
		l.end(p, errors.New("relay: router closed"))
	}
}

// wait returns the events ready now, parking until there are some.
func (l *relayLoop) wait(events []unix.EpollEvent) (int, error) {
	n, werr := 0, error(nil)
	err := l.rc.Read(func(uintptr) bool {
		n, werr = unix.EpollWait(l.epfd, events, 0)
		if werr == unix.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil
	})
	if werr != nil {
		return 0, werr
	}
	return n, err
}

// serve handles the events reported for e.
func (l *relayLoop) serve(e *relayEnd, ev uint32) {
	p := e.pair
	moved := false
	if ev&unix.EPOLLOUT != 0 && len(e.out) > 0 {
		w, err := write(e.fd, e.out)
		if err != nil {
			l.end(p, err)
			return
		}
		e.out = e.out[w:]
		if len(e.out) == 0 {
			e.out = e.out[:0:cap(e.out)]
		}
		moved = true
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !e.eof && len(e.peer.out) == 0 {
		if err := l.read(e); err != nil {
			l.end(p, err)
			return
		}
		moved = true
	}
	if !moved && ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// Reset, or closed both ways, with nothing left to read or
		// write: it would be reported again and again.
		l.end(p, errors.New("relay: connection reset"))
		return
	}
	if p.client.eof && p.up.eof && len(p.client.out) == 0 && len(p.up.out) == 0 {
		l.end(p, nil)
		return
	}
	for _, x := range [2]*relayEnd{e, e.peer} {
		if m := x.want(); m != x.mask {
			ev := unix.EpollEvent{Events: m, Fd: int32(x.fd), Pad: int32(x.gen)}
			if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, x.fd, &ev); err != nil {
				l.end(p, fmt.Errorf("relay: epoll: %w", err))
				return
			}
			x.mask = m
		}
	}
}

// read moves one chunk from e to its peer, or notes e's end and passes
// it on.
func (l *relayLoop) read(e *relayEnd) error {
	n, err := unix.Read(e.fd, l.buf)
	for err == unix.EINTR {
		n, err = unix.Read(e.fd, l.buf)
	}
	switch {
	case err == unix.EAGAIN:
		return nil
	case err != nil:
		return err
	case n == 0:
		e.eof = true
		if err := unix.Shutdown(e.peer.fd, unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
			return err
		}
		if e == &e.pair.up {
			l.linger(e.pair)
		}
		return nil
	}
	if e == &e.pair.up {
		e.pair.toClient += int64(n)
	}
	w, err := write(e.peer.fd, l.buf[:n])
	if err != nil {
		return err
	}
	if w < n {
		e.peer.out = append(e.peer.out, l.buf[w:n]...)
	}
	return nil
}

// write writes what the socket takes now.
func write(fd int, b []byte) (int, error) {
	n, err := unix.Write(fd, b)
	for err == unix.EINTR {
		n, err = unix.Write(fd, b)
	}
	if err == unix.EAGAIN {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// linger gives p's client relayLinger to end its side, now that the
// instance has ended its own.
func (l *relayLoop) linger(p *relayPair) {
	p.linger = time.Now().Add(relayLinger)
	l.lingering = append(l.lingering, p)
	if l.deadline.IsZero() {
		l.deadline = p.linger
		l.f.SetReadDeadline(p.linger)
	}
}

// sweep, at the read deadline, ends the pairs whose client has lingered
// too long, and sets the deadline to the next linger's end.
func (l *relayLoop) sweep() {
	now := time.Now()
	var next time.Time
	kept := l.lingering[:0]
	for _, p := range l.lingering {
		if p.closed {
			continue
		}
		if !now.Before(p.linger) {
			l.end(p, nil)
			continue
		}
		if next.IsZero() || p.linger.Before(next) {
			next = p.linger
		}
		kept = append(kept, p)
	}
	clear(l.lingering[len(kept):])
	l.lingering = kept
	l.deadline = next
	l.f.SetReadDeadline(next)
}

// end closes p's sockets and hands it back to its caller.
func (l *relayLoop) end(p *relayPair, err error) {
	if p.closed {
		return
	}
	p.closed = true
	l.mu.Lock()
	for _, e := range []*relayEnd{&p.client, &p.up} {
		if l.slots[e.fd] == e {
			l.slots[e.fd] = nil
		}
	}
	p.err = err
	unix.Close(p.client.fd)
	unix.Close(p.up.fd)
	l.mu.Unlock()
	close(p.done)
}

package netlab

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a userspace TCP proxy that adds latency, retransmission-like
// loss and stalls to the connections through it (the kernel here has no
// netem). Bytes are never dropped or reordered, as TCP would not either:
// a "lost" chunk arrives late, a stalled connection holds its data until
// it is released.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	mu       sync.Mutex
	cond     *sync.Cond // signalled when stalled turns false or closing
	latency  time.Duration
	loss     float64
	penalty  time.Duration
	stalled  bool
	closing  bool
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	accepted int
}

// NewProxy serves on ln (e.g. net.Listen on 127.0.0.1:0, or Host.Listen
// to put the proxy inside a host) and forwards every connection to target,
// dialed with dial (nil: from the test process; Host.Dial: from a host).
// t.Cleanup closes it and waits for its goroutines.
func NewProxy(t testing.TB, ln net.Listener, target string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Proxy {
	t.Helper()
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	p := &Proxy{t: t, ln: ln, target: target, dial: dial, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every chunk by d in each direction.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// SetLoss makes each chunk "lost" with probability prob: it arrives
// penalty later (on top of the latency), as after a retransmission.
func (p *Proxy) SetLoss(prob float64, penalty time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loss, p.penalty = prob, penalty
}

// SetStalled holds (true) or releases (false) all data through the proxy;
// new connections are still accepted and dialed.
func (p *Proxy) SetStalled(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = on
	p.cond.Broadcast()
}

// ResetAll closes every connection through the proxy.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Accepted is the number of connections accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closing = true
	p.cond.Broadcast()
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers c; false if the proxy is closing (c is then closed).
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.mu.Lock()
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := p.dial(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, c) }()
	go func() { defer wg.Done(); p.pipe(c, up) }()
	wg.Wait()
}

// chunk is data read at some time, due for writing at another.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, delaying chunks; when either side ends, both
// are closed.
func (p *Proxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ch := range q {
			if d := time.Until(ch.due); d > 0 {
				time.Sleep(d)
			}
			if !p.waitUnstalled() {
				break
			}
			if _, err := dst.Write(ch.data); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		for range q { // drain so the reader never blocks
		}
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			delay := p.latency
			if p.loss > 0 && rand.Float64() < p.loss {
				delay += p.penalty
			}
			p.mu.Unlock()
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	close(q)
	<-done
}

// waitUnstalled blocks while the proxy is stalled; false once closing.
func (p *Proxy) waitUnstalled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.stalled && !p.closing {
		p.cond.Wait()
	}
	return !p.closing
}

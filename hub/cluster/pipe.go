package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The forwarding pipe: a follower sends the API's small requests to the
// leader over one long-lived connection of their own (ALPN wharf-fwd/1)
// instead of one HTTP exchange each. Requests and answers are frames
// that carry an id, and answers come back in the order they finish. Each
// side writes through one goroutine that flushes only when nothing more
// is queued, so the requests that arrive together, and the answers that
// one Raft commit finishes together, share TLS records and system calls;
// the leader parses no HTTP for them. Requests the pipe does not carry
// (a body over maxWholeBody or of unknown length, an upgrade) are proxied
// as HTTP, and so is everything when the leader does not speak the pipe's
// protocol (a node of an older version).
//
// Frames, both ways: a 4-byte big-endian length, then the fields. Strings
// and byte fields are a uvarint length and the bytes; a header is a
// uvarint count of (name, value) pairs. A request frame is its id (8
// bytes), the RPC handler's name, the method, the request URI, the Host
// and the header, then the body to the frame's end; an answer frame is
// the request's id, the status (2 bytes) and the header, then the body.

const alpnFwd = "wharf-fwd/1"

const (
	// maxFwdHead bounds what precedes the body in a frame.
	maxFwdHead = 64 << 10
	// maxFwdRequest and maxFwdAnswer bound whole frames.
	maxFwdRequest = maxWholeBody + maxFwdHead
	maxFwdAnswer  = maxRPCBody + maxFwdHead
	// maxFwdHeaders bounds a frame's header pairs.
	maxFwdHeaders = 256
	// fwdTimeout bounds one forwarded request (the leader's own commits
	// time out well before it).
	fwdTimeout = 2 * time.Minute
	// fwdRetryDial is how long a follower proxies as HTTP after it could
	// not open a pipe to a node.
	fwdRetryDial = 10 * time.Second
)

var errBadFrame = errors.New("malformed forwarding frame")

// fwdRequest is one forwarded request.
type fwdRequest struct {
	id     uint64
	name   string // the RPC handler
	method string
	uri    string
	host   string
	header http.Header
	body   []byte
}

// fwdAnswer is the leader's answer to one.
type fwdAnswer struct {
	id     uint64
	status int
	header http.Header
	body   []byte
}

// hopHeaders are a connection's own, never forwarded (as a proxy drops
// them).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHeader(b []byte, h http.Header) []byte {
	n := 0
	for k, vs := range h {
		if !hopHeaders[k] {
			n += len(vs)
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for k, vs := range h {
		if hopHeaders[k] {
			continue
		}
		for _, v := range vs {
			b = appendStr(appendStr(b, k), v)
		}
	}
	return b
}

// frameStart reserves a frame's length; frameEnd fills it in.
func frameStart(b []byte) []byte { return append(b, 0, 0, 0, 0) }

func frameEnd(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func (q *fwdRequest) encode() []byte {
	b := frameStart(make([]byte, 0, 128+len(q.uri)+len(q.body)))
	b = binary.BigEndian.AppendUint64(b, q.id)
	b = appendStr(b, q.name)
	b = appendStr(b, q.method)
	b = appendStr(b, q.uri)
	b = appendStr(b, q.host)
	b = appendHeader(b, q.header)
	return frameEnd(append(b, q.body...), 0)
}

func (a *fwdAnswer) encode() []byte {
	b := frameStart(make([]byte, 0, 64+len(a.body)))
	b = binary.BigEndian.AppendUint64(b, a.id)
	b = binary.BigEndian.AppendUint16(b, uint16(a.status))
	b = appendHeader(b, a.header)
	return frameEnd(append(b, a.body...), 0)
}

// frameReader decodes a frame's fields; the first error sticks.
type frameReader struct {
	b   []byte
	err error
}

func (r *frameReader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errBadFrame
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *frameReader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.err = errBadFrame
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *frameReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadFrame
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *frameReader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBadFrame
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *frameReader) header() http.Header {
	n := r.uvarint()
	if r.err != nil || n > maxFwdHeaders {
		r.err = errBadFrame
		return nil
	}
	h := make(http.Header, n)
	for range n {
		k, v := r.str(), r.str()
		if r.err != nil {
			return nil
		}
		h[k] = append(h[k], v)
	}
	return h
}

// rest is the body: what remains, copied out of the frame.
func (r *frameReader) rest() []byte {
	if r.err != nil || len(r.b) == 0 {
		return nil
	}
	return bytes.Clone(r.b)
}

func decodeFwdRequest(b []byte) (*fwdRequest, error) {
	r := frameReader{b: b}
	q := &fwdRequest{id: r.u64(), name: r.str(), method: r.str(), uri: r.str(), host: r.str(), header: r.header()}
	q.body = r.rest()
	if r.err != nil {
		return nil, r.err
	}
	if q.name == "" || q.method == "" || q.uri == "" || q.uri[0] != '/' {
		return nil, errBadFrame
	}
	return q, nil
}

func decodeFwdAnswer(b []byte) (*fwdAnswer, error) {
	r := frameReader{b: b}
	a := &fwdAnswer{id: r.u64(), status: int(r.u16()), header: r.header()}
	a.body = r.rest()
	if r.err != nil {
		return nil, r.err
	}
	if a.status < 100 || a.status > 999 {
		return nil, errBadFrame
	}
	return a, nil
}

// readFrame reads one frame of at most limit bytes.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if int64(size) > int64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, over %d", errBadFrame, size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// frameWriter writes frames to a connection from one goroutine, flushing
// only when no other frame is queued.
type frameWriter struct {
	conn    net.Conn
	queue   chan []byte
	done    chan struct{}
	once    sync.Once
	flushes atomic.Int64 // writes to the connection, for tests
}

func newFrameWriter(conn net.Conn) *frameWriter {
	w := &frameWriter{conn: conn, queue: make(chan []byte, 256), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *frameWriter) run() {
	bw := bufio.NewWriterSize(writeCounter{w.conn, &w.flushes}, 64<<10)
	for {
		select {
		case b := <-w.queue:
			if _, err := bw.Write(b); err != nil {
				w.stop()
				return
			}
			if len(w.queue) > 0 {
				continue
			}
			if err := bw.Flush(); err != nil {
				w.stop()
				return
			}
		case <-w.done:
			return
		}
	}
}

// send queues a frame; false when the connection is done.
func (w *frameWriter) send(b []byte) bool {
	select {
	case w.queue <- b:
		return true
	case <-w.done:
		return false
	}
}

// stop ends the writer and closes the connection (which ends its reader).
func (w *frameWriter) stop() {
	w.once.Do(func() {
		close(w.done)
		w.conn.Close()
	})
}

// writeCounter counts the writes made on a connection.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// The leader's side.

// servePipes answers the pipes followers open, until the mux closes.
func (c *Cluster) servePipes(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c.pipeWG.Add(1)
		go func() {
			defer c.pipeWG.Done()
			c.servePipe(conn)
		}()
	}
}

// servePipe reads a follower's requests and answers each through its
// RPC handler as it finishes. A malformed frame ends the connection; the
// requests under way on it are cancelled, as a proxied request's are
// when its connection goes.
func (c *Cluster) servePipe(conn net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	out := newFrameWriter(conn)
	var wg sync.WaitGroup
	defer func() {
		out.stop()
		cancel()
		wg.Wait()
	}()
	br := bufio.NewReaderSize(conn, 32<<10)
	for {
		b, err := readFrame(br, maxFwdRequest)
		if err == nil {
			var q *fwdRequest
			if q, err = decodeFwdRequest(b); err == nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out.send(c.answerPiped(ctx, q, conn.RemoteAddr().String()).encode())
				}()
				continue
			}
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.log.Warn("forwarding pipe closed", "remote", conn.RemoteAddr(), "err", err)
		}
		return
	}
}

// answerPiped runs one forwarded request through its handler.
func (c *Cluster) answerPiped(ctx context.Context, q *fwdRequest, remote string) *fwdAnswer {
	a := &fwdAnswer{id: q.id}
	h := c.rpcHandler(q.name)
	if h == nil {
		a.status, a.body = http.StatusNotFound, []byte("no RPC handler "+strconv.Quote(q.name)+"\n")
		return a
	}
	r, err := http.NewRequestWithContext(ctx, q.method, q.uri, bytes.NewReader(q.body))
	if err != nil {
		a.status, a.body = http.StatusBadRequest, []byte(err.Error()+"\n")
		return a
	}
	r.RequestURI, r.Host, r.RemoteAddr = q.uri, q.host, remote
	r.Header = q.header
	r.ContentLength = int64(len(q.body))
	if len(q.body) == 0 {
		r.Body = http.NoBody
	}
	rec := &pipeRecorder{header: http.Header{}}
	if !c.servePiped(h, rec, r) {
		a.status, a.body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`+"\n")
		a.header = http.Header{"Content-Type": {"application/json"}}
		return a
	}
	if rec.over {
		a.status, a.body = http.StatusBadGateway, []byte(fmt.Sprintf("the answer is over %d bytes, too large to forward\n", maxRPCBody))
		return a
	}
	a.status, a.header, a.body = rec.code, rec.header, rec.body.Bytes()
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a
}

// servePiped runs h, and recovers from its panic as net/http would for
// a proxied request (which would otherwise end the process): false when
// it panicked.
func (c *Cluster) servePiped(h http.Handler, w http.ResponseWriter, r *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			ok = false
			if p != http.ErrAbortHandler {
				c.log.Error("panic serving a forwarded request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			}
		}
	}()
	h.ServeHTTP(w, r)
	return true
}

// pipeRecorder keeps a handler's answer, up to maxRPCBody.
type pipeRecorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
	over   bool
}

func (r *pipeRecorder) Header() http.Header { return r.header }

func (r *pipeRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *pipeRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len()+len(b) > maxRPCBody {
		r.over = true
		return 0, errors.New("answer too large to forward")
	}
	return r.body.Write(b)
}

// The follower's side.

// pipes are this node's pipes, by the address of the node they go to.
type pipes struct {
	mu     sync.Mutex
	open   map[string]*pipe
	noDial map[string]time.Time // until when to proxy as HTTP instead
}

// pipe is one connection to the leader and the requests waiting on it.
type pipe struct {
	out     *frameWriter
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan *fwdAnswer
	dead    chan struct{}
	err     error        // why it died, set before dead is closed
	sent    atomic.Int64 // requests sent, for tests
}

// pipeTo returns an open pipe to addr, opening one if needed, or nil
// when none can be opened now (the caller proxies as HTTP).
func (c *Cluster) pipeTo(addr string) *pipe {
	ps := &c.pipes
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.open[addr]; p != nil {
		select {
		case <-p.dead:
			delete(ps.open, addr)
		default:
			return p
		}
	}
	if time.Now().Before(ps.noDial[addr]) {
		return nil
	}
	// Requests that arrive meanwhile wait for this dial, rather than each
	// open a connection of its own. Not on the request's context: a
	// client that leaves must not mark the leader as one to proxy to.
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	conn, err := c.mux.dial(dctx, addr, alpnFwd)
	cancel()
	if err != nil {
		c.log.Debug("no forwarding pipe; proxying as HTTP", "leader", addr, "err", err)
		if ps.noDial == nil {
			ps.noDial = map[string]time.Time{}
		}
		ps.noDial[addr] = time.Now().Add(fwdRetryDial)
		return nil
	}
	p := &pipe{out: newFrameWriter(conn), waiting: map[uint64]chan *fwdAnswer{}, dead: make(chan struct{})}
	go p.read(conn)
	if ps.open == nil {
		ps.open = map[string]*pipe{}
	}
	// A pipe to a former leader that nothing waits on is closed: requests
	// go to one leader at a time.
	for other, op := range ps.open {
		if op.idle() {
			op.out.stop()
			delete(ps.open, other)
		}
	}
	ps.open[addr] = p
	return p
}

// idle tells whether no request waits on p.
func (p *pipe) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting) == 0
}

// read delivers answers until the connection ends, then fails the
// requests still waiting.
func (p *pipe) read(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 32<<10)
	var err error
	for {
		var b []byte
		if b, err = readFrame(br, maxFwdAnswer); err != nil {
			break
		}
		var a *fwdAnswer
		if a, err = decodeFwdAnswer(b); err != nil {
			break
		}
		p.mu.Lock()
		ch := p.waiting[a.id]
		delete(p.waiting, a.id)
		p.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
	p.out.stop()
	p.mu.Lock()
	p.err = err
	close(p.dead)
	p.mu.Unlock()
}

// roundTrip sends q and waits for its answer.
func (p *pipe) roundTrip(ctx context.Context, q *fwdRequest) (*fwdAnswer, error) {
	ch := make(chan *fwdAnswer, 1)
	p.mu.Lock()
	select {
	case <-p.dead:
		p.mu.Unlock()
		return nil, p.err
	default:
	}
	p.next++
	q.id = p.next
	p.sent.Add(1)
	p.waiting[q.id] = ch
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		delete(p.waiting, q.id)
		p.mu.Unlock()
	}
	if !p.out.send(q.encode()) {
		forget()
		return nil, errors.New("connection closed")
	}
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-p.dead:
		select {
		case a := <-ch: // answered just before the connection ended
			return a, nil
		default:
		}
		if p.err == nil || errors.Is(p.err, io.EOF) {
			return nil, errors.New("connection closed")
		}
		return nil, p.err
	}
}

// pipeable reports whether r can go through a pipe, given its body as
// smallBody read it.
func pipeable(r *http.Request, body []byte) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	return body != nil || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody
}

// forward sends r through p and writes the answer to w.
func (p *pipe) forward(w http.ResponseWriter, r *http.Request, addr, name string, body []byte) {
	header := r.Header.Clone()
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := header["X-Forwarded-For"]; len(prior) > 0 {
			ip = fmt.Sprint(prior[len(prior)-1], ", ", ip)
		}
		header.Set("X-Forwarded-For", ip)
	}
	q := &fwdRequest{name: name, method: r.Method, uri: r.URL.RequestURI(), host: r.Host, header: header, body: body}
	ctx, cancel := context.WithTimeout(r.Context(), fwdTimeout)
	defer cancel()
	a, err := p.roundTrip(ctx, q)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		jsonError(w, http.StatusServiceUnavailable, fmt.Sprintf("no cluster leader: forward to %s: %v", addr, err))
		return
	}
	h := w.Header()
	for k, vs := range a.header {
		if !hopHeaders[k] && k != "Content-Length" {
			h[k] = vs
		}
	}
	if a.status != http.StatusNoContent && a.status != http.StatusNotModified && a.status >= 200 {
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
	}
	w.WriteHeader(a.status)
	w.Write(a.body)
}

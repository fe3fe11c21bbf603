package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// The plain HTTP listener's own HTTP/1.1 server. net/http's server costs,
// per request, a goroutine (its background read), deadline changes, a
// Request with its header map and a response writer; here a connection's
// goroutine parses the request in its read buffer, writes it to a pooled
// keep-alive connection to the instance, and passes the answer's head and
// body through, filtered, without a map. A request it does not handle
// exactly (HTTP/1.0, chunked or Expect bodies, upgrades, escaped paths,
// odd headers, no route or no ready instance: holds, 404, 503) is left
// unread and the connection is handed, with what is buffered, to
// net/http and ServeHTTP for the rest of its life.

const (
	maxFastHead = 16 << 10 // larger heads go to net/http
	// watchAfter: an instance silent this long gets the client
	// watched, so that a client going away ends the exchange.
	watchAfter = time.Second
)

// connListener hands connections to an http.Server.
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *connListener) Addr() net.Addr { return l.addr }

// give hands c over; false when the listener is closed.
func (l *connListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

// bufConn is a connection whose first bytes are in a bufio.Reader.
type bufConn struct {
	net.Conn
	r io.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// clientReader reads a client connection, first the byte a watcher read.
type clientReader struct {
	c       *net.TCPConn
	pending []byte
}

func (cr *clientReader) Read(p []byte) (int, error) {
	if len(cr.pending) > 0 {
		n := copy(p, cr.pending)
		cr.pending = cr.pending[n:]
		return n, nil
	}
	return cr.c.Read(p)
}

// front is the fast server's state.
type front struct {
	fallback *connListener
	mu       sync.Mutex
	closing  bool
	idle     map[*frontConn]bool // every open connection: true while between requests
}

type frontConn struct {
	c      *net.TCPConn
	cr     clientReader
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string // the client's IP
	raddr  string
	// idleUntil is the read deadline when it is the idle one, else zero.
	idleUntil time.Time
	q         frontReq // the request being served
}

// serveFront accepts on ln until it is closed.
func (r *Router) serveFront(ln net.Listener) {
	defer r.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, or a connection reset before
			// it was accepted: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Warn("router accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			r.front.fallback.give(c)
			continue
		}
		fc := &frontConn{c: tc, raddr: tc.RemoteAddr().String()}
		fc.remote, _, _ = net.SplitHostPort(fc.raddr)
		fc.cr.c = tc
		r.front.mu.Lock()
		if r.front.closing {
			r.front.mu.Unlock()
			c.Close()
			continue
		}
		r.front.idle[fc] = true
		r.front.mu.Unlock()
		r.wg.Add(1)
		go r.serveFrontConn(fc)
	}
}

// shutdownFront closes idle connections now and, after grace, all.
func (r *Router) shutdownFront(grace time.Duration) {
	f := &r.front
	f.mu.Lock()
	f.closing = true
	for fc, idle := range f.idle {
		if idle {
			fc.c.Close()
		}
	}
	f.mu.Unlock()
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.idle)
		f.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	for fc := range f.idle {
		fc.c.Close()
	}
	f.mu.Unlock()
}

// setIdle marks fc between requests (or not); false when the router is
// shutting down and fc must close.
func (r *Router) setIdle(fc *frontConn, idle bool) bool {
	r.front.mu.Lock()
	defer r.front.mu.Unlock()
	if r.front.closing && idle {
		return false
	}
	r.front.idle[fc] = idle
	return true
}

func (r *Router) serveFrontConn(fc *frontConn) {
	defer r.wg.Done()
	handed := false
	defer func() {
		r.front.mu.Lock()
		delete(r.front.idle, fc)
		r.front.mu.Unlock()
		if fc.br != nil {
			if !handed {
				fc.br.Reset(nil)
				frontReaders.Put(fc.br)
			}
			fc.bw.Reset(nil)
			frontWriters.Put(fc.bw)
		}
		if !handed {
			fc.c.Close()
		}
	}()
	fc.br = frontReaders.Get().(*bufio.Reader)
	fc.br.Reset(&fc.cr)
	fc.bw = frontWriters.Get().(*bufio.Writer)
	fc.bw.Reset(fc.c)
	for {
		if fc.br.Buffered() == 0 {
			if !r.setIdle(fc, true) {
				return
			}
			// The idle deadline moves at most once a second: a
			// deadline change costs a runtime timer update.
			slack := min(time.Second, r.cfg.IdleTimeout/10)
			if now := time.Now(); fc.idleUntil.Sub(now) < r.cfg.IdleTimeout-slack {
				fc.idleUntil = now.Add(r.cfg.IdleTimeout)
				_ = fc.c.SetReadDeadline(fc.idleUntil)
			}
			if _, err := fc.br.Peek(1); err != nil {
				return
			}
			if !r.setIdle(fc, false) {
				return
			}
		}
		// A head that arrived whole (the usual case) needs no deadline
		// of its own.
		if b, _ := fc.br.Peek(fc.br.Buffered()); !bytes.Contains(b, []byte("\r\n\r\n")) {
			fc.setReadDeadline(time.Now().Add(r.cfg.HeaderTimeout))
		}
		head, ok, err := peekHead(fc.br)
		if err != nil {
			return // the head timed out, or the client left
		}
		if !ok {
			handed = r.handOff(fc)
			return
		}
		q := &fc.q
		if !q.parse(head) {
			handed = r.handOff(fc)
			return
		}
		keep, handoff := r.serveFast(fc, q, len(head))
		if handoff {
			handed = r.handOff(fc)
			return
		}
		if !keep {
			return
		}
	}
}

// setReadDeadline sets a read deadline other than the idle one.
func (fc *frontConn) setReadDeadline(t time.Time) {
	fc.idleUntil = time.Time{}
	_ = fc.c.SetReadDeadline(t)
}

// handOff gives the connection, its unread bytes first, to net/http.
func (r *Router) handOff(fc *frontConn) bool {
	_ = fc.c.SetReadDeadline(time.Time{})
	if err := fc.bw.Flush(); err != nil {
		return false
	}
	return r.front.fallback.give(&bufConn{Conn: fc.c, r: fc.br})
}

var frontReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxFastHead) }}
var frontWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}

// peekHead returns a request's head, through its blank line, without
// consuming it; false (for net/http) when it is larger than the buffer or
// has bare line feeds; an error when the connection fails first.
func peekHead(br *bufio.Reader) ([]byte, bool, error) {
	for n := br.Buffered(); ; {
		b, _ := br.Peek(n)
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return b[:i+4], true, nil
		}
		if bytes.Contains(b, []byte("\n\n")) {
			return nil, false, nil // bare line feeds: net/http's to parse
		}
		if n >= br.Size() {
			return nil, false, nil
		}
		if _, err := br.Peek(n + 1); err != nil {
			return nil, false, err
		}
		n = br.Buffered()
	}
}

// frontReq is a parsed request head; its slices point into the buffer.
type frontReq struct {
	method, uri, path, host []byte
	reqID                   []byte
	length                  int64 // -1: none given
	close                   bool
	isHead                  bool     // HEAD: the answer has no body
	headers                 [][]byte // lines to forward, without CRLF
	hbuf                    [32][]byte
}

var (
	hHost     = []byte("Host")
	hLength   = []byte("Content-Length")
	hConn     = []byte("Connection")
	hReqID    = []byte("X-Request-Id")
	hTE       = []byte("Transfer-Encoding")
	hExpect   = []byte("Expect")
	hUpgrade  = []byte("Upgrade")
	hTe       = []byte("Te")
	hTrailer  = []byte("Trailer")
	hKeep     = []byte("Keep-Alive")
	hPConn    = []byte("Proxy-Connection")
	hPAuthz   = []byte("Proxy-Authorization")
	hPAuthn   = []byte("Proxy-Authenticate")
	hXFF      = []byte("X-Forwarded-For")
	hXFH      = []byte("X-Forwarded-Host")
	hXFP      = []byte("X-Forwarded-Proto")
	vClose    = []byte("close")
	vKeep     = []byte("keep-alive")
	http11    = []byte("HTTP/1.1")
	crlf      = []byte("\r\n")
	colon     = []byte(":")
	spaceByte = byte(' ')
)

// parse reads a head; false for anything the fast path leaves to
// net/http (which also answers malformed requests).
func (q *frontReq) parse(head []byte) bool {
	*q = frontReq{length: -1}
	q.headers = q.hbuf[:0]
	line, rest, _ := bytes.Cut(head, crlf)
	m, after, ok := bytes.Cut(line, []byte{spaceByte})
	if !ok || len(m) == 0 || !isToken(m) {
		return false
	}
	uri, ver, ok := bytes.Cut(after, []byte{spaceByte})
	if !ok || !bytes.Equal(ver, http11) || len(uri) == 0 || uri[0] != '/' {
		return false
	}
	q.method, q.uri = m, uri
	q.isHead = string(m) == http.MethodHead
	q.path = uri
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		q.path = uri[:i]
	}
	for _, c := range uri {
		if c <= ' ' || c == 0x7f || c == '%' || c == '#' {
			return false // escaped paths are routed by their decoded form: net/http's
		}
	}
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, crlf)
		k, v, ok := bytes.Cut(line, colon)
		if !ok || len(k) == 0 || !isToken(k) {
			return false
		}
		v = bytes.TrimLeft(bytes.TrimRight(v, " \t"), " \t")
		for _, c := range v {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return false
			}
		}
		switch {
		case bytes.EqualFold(k, hHost):
			if q.host != nil || len(v) == 0 {
				return false
			}
			q.host = v
			continue
		case bytes.EqualFold(k, hLength):
			// Digits only, as net/http reads it: no sign, no list.
			n, err := strconv.ParseUint(string(v), 10, 63)
			if q.length >= 0 || err != nil || len(v) == 0 || v[0] < '0' || v[0] > '9' {
				return false
			}
			q.length = int64(n)
			continue
		case bytes.EqualFold(k, hConn):
			switch {
			case bytes.EqualFold(v, vClose):
				q.close = true
			case bytes.EqualFold(v, vKeep):
			default:
				return false // other headers named hop-by-hop
			}
			continue
		case bytes.EqualFold(k, hReqID):
			if q.reqID != nil {
				return false
			}
			q.reqID = v
			continue
		case bytes.EqualFold(k, hTE), bytes.EqualFold(k, hExpect), bytes.EqualFold(k, hUpgrade),
			bytes.EqualFold(k, hTe), bytes.EqualFold(k, hTrailer):
			return false
		case bytes.EqualFold(k, hKeep), bytes.EqualFold(k, hPConn), bytes.EqualFold(k, hPAuthz), bytes.EqualFold(k, hPAuthn),
			bytes.EqualFold(k, hXFF), bytes.EqualFold(k, hXFH), bytes.EqualFold(k, hXFP):
			continue // hop-by-hop, or set by the router
		}
		q.headers = append(q.headers, line)
	}
	return q.host != nil
}

func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// routeHost normalises a Host header as ServeHTTP does.
func routeHost(h []byte) string {
	s := string(bytes.ToLower(h))
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

var errClientGone = errors.New("client went away")

// serveFast answers one request. keep: the connection may carry another;
// handoff: the request is unread and net/http is to serve it.
func (r *Router) serveFast(fc *frontConn, q *frontReq, headLen int) (keep, handoff bool) {
	start := r.cfg.Clock()
	host := routeHost(q.host)
	app := r.table.Load().route(host, string(q.path))
	if app == nil {
		return false, true
	}
	b, ok := app.pick("")
	if !ok {
		return false, true
	}
	r.stats.arrive(app.key, start.Unix())
	id := ""
	if q.reqID != nil && len(q.reqID) <= 128 && bytes.IndexAny(q.reqID, " \t") < 0 {
		id = string(q.reqID)
	} else {
		id = newRequestID()
	}
	// The head's bytes are overwritten once a body is read: what the
	// access log needs of them is copied first.
	var method, path string
	if r.cfg.AccessLog != nil {
		method, path = string(q.method), string(q.path)
	}
	status, n, err := r.exchangeFast(fc, q, headLen, app, b, id)
	if status == 0 {
		status = http.StatusBadGateway // no answer: counted as net/http's path counts it
	}
	d := r.cfg.Clock().Sub(start)
	r.stats.add(app.key, start.Unix(), status, n, d)
	if r.cfg.AccessLog != nil {
		r.cfg.AccessLog(AccessEntry{App: app.key, Instance: b.Instance, Method: method, Host: host, Path: path,
			RemoteAddr: fc.raddr, RequestID: id, Status: status, BytesOut: n, Duration: d, Time: start})
	}
	return err == nil && !q.close, false
}

// exchangeFast forwards the request to b (another instance once, when the
// dial fails and the request may be repeated), and the answer to the
// client. It returns the status the client got and the body bytes.
func (r *Router) exchangeFast(fc *frontConn, q *frontReq, headLen int, app *appState, b Backend, id string) (int, int64, error) {
	canRepeat := q.length <= 0 && idempotent(string(q.method))
	retried := false
	consumed := false
	for attempt := 0; ; attempt++ {
		bc, reused, err := r.conn(b.Addr)
		if err != nil {
			if canRepeat && !retried {
				if nb, ok := app.pick(b.Instance); ok && nb.Instance != b.Instance {
					b, retried = nb, true
					continue
				}
			}
			r.log.Debug("proxy", "app", app.key, "instance", b.Instance, "err", err)
			return r.badGateway(fc, headLen, consumed, id)
		}
		bw := bc.bw
		bw.Write(q.method)
		bw.WriteByte(' ')
		bw.Write(q.uri)
		bw.WriteString(" HTTP/1.1\r\nHost: ")
		bw.Write(q.host)
		bw.WriteString("\r\n")
		for _, h := range q.headers {
			bw.Write(h)
			bw.WriteString("\r\n")
		}
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(fc.remote)
		bw.WriteString("\r\nX-Forwarded-Host: ")
		bw.Write(q.host)
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ")
		bw.WriteString(id)
		bw.WriteString("\r\n")
		if q.length > 0 || (q.length == 0 && hasBody(q.method)) || (q.length < 0 && hasBody(q.method)) {
			bw.WriteString("Content-Length: ")
			bw.WriteString(strconv.FormatInt(max(q.length, 0), 10))
			bw.WriteString("\r\n")
		}
		bw.WriteString("\r\n")
		if !consumed {
			_, _ = fc.br.Discard(headLen)
			consumed = true
		}
		if q.length > 0 {
			fc.setReadDeadline(time.Time{}) // a body has no deadline, as with net/http
			if _, err := io.CopyN(bw, fc.br, q.length); err != nil {
				bc.release()
				return 0, 0, errClientGone
			}
		}
		if err := bw.Flush(); err != nil {
			bc.release()
			if reused && canRepeat && attempt < 2 {
				continue
			}
			return r.badGateway(fc, headLen, consumed, id)
		}
		status, n, started, err := r.relay(fc, q, bc, id)
		if err == nil {
			return status, n, nil
		}
		bc.release()
		if !started && reused && canRepeat && attempt < 2 && !errors.Is(err, errClientGone) {
			continue
		}
		r.log.Debug("proxy", "app", app.key, "instance", b.Instance, "err", err)
		if !started && !errors.Is(err, errClientGone) {
			return r.badGateway(fc, headLen, consumed, id)
		}
		return status, n, err
	}
}

func hasBody(m []byte) bool {
	s := string(m)
	return s == http.MethodPost || s == http.MethodPut || s == http.MethodPatch
}

// badGateway answers 502; the request's body, if any, is not read, so the
// connection closes after.
func (r *Router) badGateway(fc *frontConn, headLen int, consumed bool, id string) (int, int64, error) {
	if !consumed {
		_, _ = fc.br.Discard(headLen)
	}
	fc.bw.WriteString("HTTP/1.1 502 Bad Gateway\r\nX-Request-Id: ")
	fc.bw.WriteString(id)
	fc.bw.WriteString("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	_ = fc.bw.Flush()
	return http.StatusBadGateway, 0, errors.New("bad gateway")
}

// relay reads the instance's answer on bc and passes it to the client.
// started: the client has been sent part of it.
func (r *Router) relay(fc *frontConn, q *frontReq, bc *backendConn, id string) (status int, n int64, started bool, err error) {
	// A silent instance gets the client watched (after watchAfter), so
	// that a client that goes away ends the exchange.
	_ = bc.c.SetReadDeadline(time.Now().Add(watchAfter))
	var w *watcher
	var line, part []byte
	for {
		line, err = bc.br.ReadSlice('\n')
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && w == nil {
			// ReadSlice hands back (and drops) a partial line.
			part = append(part, line...)
			_ = bc.c.SetReadDeadline(time.Time{})
			w = watch(fc, bc)
			continue
		}
		break
	}
	if len(part) > 0 && err == nil {
		line = append(part, line...)
	}
	if w == nil {
		_ = bc.c.SetReadDeadline(time.Time{})
	} else {
		if gone := w.stop(fc, r.cfg.IdleTimeout); gone {
			return 0, 0, false, errClientGone
		}
	}
	if err != nil {
		return 0, 0, false, err
	}
	status, length, chunked, closeAfter, err := r.relayHead(fc, q, bc, line, id)
	if err != nil {
		return 0, 0, false, err
	}
	noBody := q.isHead || status == http.StatusNoContent || status == http.StatusNotModified
	switch {
	case noBody:
	case chunked:
		n, err = relayChunked(fc, bc)
	case length >= 0:
		n, err = relayN(fc, bc, length)
	default:
		n, err = relayN(fc, bc, -1) // until the instance closes
		closeAfter = true
	}
	if err != nil {
		return status, n, true, err
	}
	if ferr := fc.bw.Flush(); ferr != nil {
		bc.release()
		return status, n, true, errClientGone
	}
	if closeAfter {
		bc.release()
	} else {
		r.pool.put(bc, time.Now())
	}
	if closeAfter && length < 0 && !chunked && !noBody {
		return status, n, true, errors.New("answer delimited by close")
	}
	return status, n, true, nil
}

package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The HTTP/1.x fast path. httputil.ReverseProxy over http.Transport costs
// two goroutine hand-offs per request (the transport's read and write
// loops), a clone of the request, header maps built and copied, and a
// flush per body write. forward writes the request straight onto an idle
// keep-alive connection to the instance from the router's own pool, reads
// the answer on the handler's goroutine, and streams the body through a
// pooled buffer. Anything it does not handle (upgrades, request bodies of
// unknown length, Expect, HTTP/2 from the client) goes through
// ReverseProxy as before.

// idlePerBackend bounds the idle connections kept per instance address.
const idlePerBackend = 256

// idleTimeout: an idle connection older than this is closed rather than
// reused (instances commonly close theirs after 60 s or more).
const idleTimeout = 50 * time.Second

// backendConn is one keep-alive connection to an instance.
type backendConn struct {
	addr string
	c    *net.TCPConn
	raw  syscall.RawConn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was put back
}

// backendPool keeps idle connections per instance address.
type backendPool struct {
	mu   sync.Mutex
	idle map[string][]*backendConn
}

func (p *backendPool) get(addr string) *backendConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[addr]
	if len(l) == 0 {
		return nil
	}
	bc := l[len(l)-1]
	l[len(l)-1] = nil
	p.idle[addr] = l[:len(l)-1]
	return bc
}

func (p *backendPool) put(bc *backendConn, now time.Time) {
	bc.idle = now
	p.mu.Lock()
	if p.idle == nil {
		p.idle = map[string][]*backendConn{}
	}
	l := p.idle[bc.addr]
	if len(l) >= idlePerBackend {
		p.mu.Unlock()
		bc.c.Close()
		return
	}
	p.idle[bc.addr] = append(l, bc)
	p.mu.Unlock()
}

// closeAll closes every idle connection.
func (p *backendPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, l := range p.idle {
		for _, bc := range l {
			bc.c.Close()
		}
		delete(p.idle, addr)
	}
}

// peekAfter: a connection idle longer than this is checked before reuse.
// Instances close idle connections on their idle timeout (seconds) or when
// they stop, which they do after leaving the routers' tables and a drain
// delay; one used within the last moment is live, and skipping the check
// saves a system call per request under load.
const peekAfter = 100 * time.Millisecond

// alive reports whether an idle connection can carry a request: the
// instance has not closed it (no EOF, no stray bytes waiting) and it is
// not older than idleTimeout. One non-blocking peek, no goroutine.
func (bc *backendConn) alive(now time.Time) bool {
	idle := now.Sub(bc.idle)
	if idle > idleTimeout || bc.br.Buffered() > 0 {
		return false
	}
	if idle < peekAfter {
		return true
	}
	ok := false
	var b [1]byte
	err := bc.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && ok
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var bufioReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
var bufioWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

// fastPathOK reports whether forward handles req.
func fastPathOK(req *http.Request) bool {
	if req.ProtoMajor != 1 || req.ContentLength < 0 || len(req.TransferEncoding) > 0 {
		return false
	}
	h := req.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && len(h["Te"]) == 0 && len(h["Trailer"]) == 0
}

// errNoConn: no connection to any instance could be made.
var errNoConn = errors.New("no connection to an instance")

// forward proxies req to tg's backend (another once, when the dial fails
// and the request may be repeated) and answers 502 when it cannot.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, tg *target, id string) {
	canRepeat := idempotent(req.Method) && req.ContentLength == 0
	for attempt := 0; ; attempt++ {
		bc, reused, err := r.conn(tg.backend.Addr)
		if err != nil {
			if canRepeat && !tg.retried {
				if b, ok := tg.app.pick(tg.backend.Instance); ok && b.Instance != tg.backend.Instance {
					tg.backend, tg.retried = b, true
					continue
				}
			}
			r.log.Debug("proxy", "app", tg.app.key, "instance", tg.backend.Instance, "err", err)
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		started, err := r.exchange(w, req, tg, id, bc)
		if err == nil {
			return
		}
		bc.release()
		// A reused connection the instance closed under us, before any
		// answer: a repeatable request goes again on a new connection.
		if !started && reused && canRepeat && attempt < 2 {
			continue
		}
		r.log.Debug("proxy", "app", tg.app.key, "instance", tg.backend.Instance, "err", err)
		if !started {
			w.WriteHeader(http.StatusBadGateway)
		}
		return
	}
}

// conn returns an idle live connection to addr, or a new one.
func (r *Router) conn(addr string) (bc *backendConn, reused bool, err error) {
	now := time.Now()
	for {
		bc = r.pool.get(addr)
		if bc == nil {
			break
		}
		if bc.alive(now) {
			return bc, true, nil
		}
		bc.c.Close()
		bc.release()
	}
	c, err := r.dialer.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, false, fmt.Errorf("%w: not TCP", errNoConn)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		c.Close()
		return nil, false, err
	}
	br := bufioReaders.Get().(*bufio.Reader)
	br.Reset(tc)
	bw := bufioWriters.Get().(*bufio.Writer)
	bw.Reset(tc)
	return &backendConn{addr: addr, c: tc, raw: raw, br: br, bw: bw}, false, nil
}

// release gives a closed connection's buffers back.
func (bc *backendConn) release() {
	bc.c.Close()
	if bc.br != nil {
		bc.br.Reset(nil)
		bufioReaders.Put(bc.br)
		bc.bw.Reset(nil)
		bufioWriters.Put(bc.bw)
		bc.br, bc.bw = nil, nil
	}
}

// hopHeaders are not forwarded (RFC 9110 7.6.1), nor are the X-Forwarded
// headers a client sent: the router sets its own.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Request-Id": true,
}

// exchange sends req on bc and streams the answer to w. started: the
// client has been answered (in part); the connection is then not retried.
// On success bc is back in the pool or closed.
func (r *Router) exchange(w http.ResponseWriter, req *http.Request, tg *target, id string, bc *backendConn) (started bool, err error) {
	// The client going away ends the exchange (and the connection).
	stop := context.AfterFunc(req.Context(), func() { _ = bc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	bw := bc.bw
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.Host) // the app sees the name it was called by
	bw.WriteString("\r\n")
	conn := req.Header["Connection"]
	for k, vv := range req.Header {
		if hopHeaders[k] || (len(conn) > 0 && listed(conn, k)) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(req.Host)
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(tg.proto)
	bw.WriteString("\r\nX-Request-Id: ")
	bw.WriteString(id)
	bw.WriteString("\r\n")
	if req.ContentLength > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if req.ContentLength > 0 {
		if _, err := io.CopyN(bw, req.Body, req.ContentLength); err != nil {
			return false, fmt.Errorf("request body: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return false, err
	}

	var resp *http.Response
	for {
		if resp, err = http.ReadResponse(bc.br, req); err != nil {
			return false, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx informational answers (103 Early Hints): not passed on.
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return false, errors.New("instance switched protocols without an upgrade asked for")
	}
	dst := w.Header()
	rconn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if k == "Connection" || k == "Keep-Alive" || k == "Proxy-Connection" || k == "Trailer" || k == "Transfer-Encoding" || k == "Upgrade" ||
			(len(rconn) > 0 && listed(rconn, k)) {
			continue
		}
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
		} else {
			dst[k] = vv
		}
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	werr := copyBody(w, resp.Body, bc.br, resp.ContentLength)
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	if werr != nil {
		resp.Body.Close()
		bc.release()
		return true, nil // the client or the instance went away mid-answer: nothing more to do
	}
	resp.Body.Close()
	if resp.Close || req.Close || !stop() {
		bc.release()
		return true, nil
	}
	r.pool.put(bc, time.Now())
	return true, nil
}

// copyBody streams an answer's body to the client through a pooled
// buffer. It flushes to the client only before waiting on the instance,
// so that a body already read goes out with the headers in one write
// while long polls and event streams still flow.
func copyBody(w http.ResponseWriter, body io.Reader, br *bufio.Reader, length int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var written int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			written += int64(n)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		if br.Buffered() == 0 && (length < 0 || written < length) {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}
}

// listed reports whether name is among the comma-separated tokens of a
// Connection header.
func listed(conn []string, name string) bool {
	for _, v := range conn {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// newRequestID returns 16 hex digits. Not a secret: it ties log lines of
// one request together, so the runtime's fast per-thread generator serves.
func newRequestID() string {
	const hexd = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = hexd[v&15]
		v >>= 4
	}
	return string(b[:])
}

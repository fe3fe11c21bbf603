package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// mux accepts TLS connections on the Raft port and hands each to Raft or to
// the internal RPC server by its negotiated ALPN protocol.
type mux struct {
	ln        net.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	advertise net.Addr
	blocked   func(string) bool
	log       *slog.Logger

	raft chan net.Conn
	rpc  chan net.Conn
	fwd  chan net.Conn // forwarding pipes (pipe.go)

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup

	connsMu sync.Mutex
	conns   map[*trackedConn]struct{} // every live connection, closed by close()
}

// trackedConn removes itself from the mux's set when closed, so that
// close() can end connections Raft's pool and the RPC client would keep.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.m.connsMu.Lock()
		delete(t.m.conns, t)
		t.m.connsMu.Unlock()
	})
	return t.Conn.Close()
}

// track registers c; it returns false (and closes c) when the mux is closed.
func (m *mux) track(c net.Conn) (net.Conn, bool) {
	t := &trackedConn{Conn: c, m: m}
	m.connsMu.Lock()
	defer m.connsMu.Unlock()
	if m.conns == nil {
		c.Close()
		return nil, false
	}
	m.conns[t] = struct{}{}
	return t, true
}

func newMux(bind string, advertise net.Addr, serverTLS, clientTLS *tls.Config, blocked func(string) bool, log *slog.Logger) (*mux, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	return &mux{
		ln: ln, serverTLS: serverTLS, clientTLS: clientTLS, advertise: advertise, blocked: blocked, log: log,
		raft: make(chan net.Conn), rpc: make(chan net.Conn), fwd: make(chan net.Conn), closed: make(chan struct{}),
		conns: map[*trackedConn]struct{}{},
	}, nil
}

// serve accepts connections until close.
func (m *mux) serve() {
	m.wg.Add(1)
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Warn("raft port accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.handshake(c)
		}()
	}
}

func (m *mux) handshake(c net.Conn) {
	c, ok := m.track(c)
	if !ok {
		return
	}
	if m.blocked != nil {
		if m.blocked(remoteIP(c)) {
			c.Close()
			return
		}
		c = newFaultConn(c, m.blocked, m.closed)
	}
	tc := tls.Server(c, m.serverTLS)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		m.log.Debug("raft port handshake refused", "remote", c.RemoteAddr(), "err", err)
		tc.Close()
		return
	}
	var ch chan net.Conn
	switch tc.ConnectionState().NegotiatedProtocol {
	case alpnRaft:
		ch = m.raft
	case alpnRPC:
		ch = m.rpc
	case alpnFwd:
		ch = m.fwd
	default:
		tc.Close()
		return
	}
	select {
	case ch <- tc:
	case <-m.closed:
		tc.Close()
	}
}

// dial opens a TLS connection to a hub node's Raft port speaking proto.
func (m *mux) dial(ctx context.Context, addr, proto string) (net.Conn, error) {
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, ok := m.track(c)
	if !ok {
		return nil, net.ErrClosed
	}
	if m.blocked != nil {
		if m.blocked(remoteIP(c)) {
			c.Close()
			return nil, errors.New("network cut (test fault)")
		}
		c = newFaultConn(c, m.blocked, m.closed)
	}
	cfg := m.clientTLS.Clone()
	cfg.NextProtos = []string{proto}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != proto {
		tc.Close()
		return nil, errors.New("peer does not speak " + proto)
	}
	return tc, nil
}

func (m *mux) close() {
	m.closeOnce.Do(func() {
		close(m.closed)
		m.ln.Close()
		m.connsMu.Lock()
		conns := m.conns
		m.conns = nil
		m.connsMu.Unlock()
		for c := range conns {
			c.Conn.Close()
		}
	})
	m.wg.Wait()
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	m      *mux
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(m *mux, ch chan net.Conn) *chanListener {
	return &chanListener{m: m, ch: ch, closed: make(chan struct{})}
}

// Accept returns the next connection. It hides the *tls.Conn type so that
// net/http does not try to dispatch on our custom ALPN protocol.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return plainConn{c}, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

type plainConn struct{ net.Conn }

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}
func (l *chanListener) Addr() net.Addr { return l.m.advertise }

// streamLayer is Raft's transport over the mux.
type streamLayer struct {
	*chanListener
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.m.dial(ctx, string(address), alpnRaft)
}

func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return ""
	}
	return host
}

package router

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// tcpListener serves one TCP route's router port.
type tcpListener struct {
	ln  net.Listener
	app string
	mu  sync.Mutex
}

func (l *tcpListener) close() { l.ln.Close() }

// applyTCP opens listeners for new ports, retargets kept ones and closes
// those of removed routes (their open connections may finish).
func (r *Router) applyTCP(routes []TCPRoute) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[int]string{}
	for _, rt := range routes {
		want[rt.Port] = rt.App
	}
	for port, l := range r.tcp {
		if _, ok := want[port]; !ok {
			l.close()
			delete(r.tcp, port)
		}
	}
	var errs []error
	for port, app := range want {
		if l := r.tcp[port]; l != nil {
			l.mu.Lock()
			l.app = app
			l.mu.Unlock()
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(r.cfg.TCPBind, strconv.Itoa(port)))
		if err != nil {
			errs = append(errs, fmt.Errorf("tcp route port %d: %w", port, err))
			continue
		}
		l := &tcpListener{ln: ln, app: app}
		r.tcp[port] = l
		r.wg.Add(1)
		go r.acceptTCP(l)
	}
	return errors.Join(errs...)
}

// TCPAddr returns the address a TCP route's port listens on ("" when none).
func (r *Router) TCPAddr(port int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.tcp[port]; l != nil {
		return l.ln.Addr().String()
	}
	return ""
}

func (r *Router) acceptTCP(l *tcpListener) {
	defer r.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		app := l.app
		l.mu.Unlock()
		r.wg.Add(1)
		go r.proxyTCP(c, app)
	}
}

// proxyTCP relays a client to an instance of app (relay.go) and waits
// for the connection to end.
func (r *Router) proxyTCP(c net.Conn, key string) {
	defer r.wg.Done()
	defer c.Close()
	start := r.cfg.Clock()
	r.stats.arrive(key, start.Unix())
	st := r.table.Load().apps[key]
	var b Backend
	var up net.Conn
	ok := false
	for avoid := ""; st != nil; {
		var found bool
		if b, found = st.pick(avoid); !found || (avoid != "" && b.Instance == avoid) {
			break
		}
		var err error
		if up, err = net.DialTimeout("tcp", b.Addr, r.cfg.DialTimeout); err == nil {
			ok = true
			break
		}
		if avoid != "" {
			break
		}
		avoid = b.Instance // one retry elsewhere
	}
	if !ok {
		r.stats.add(key, start.Unix(), 503, 0, r.cfg.Clock().Sub(start))
		return
	}
	remote := c.RemoteAddr().String()
	n, err := r.relays.relay(c, up)
	if err != nil {
		r.log.Debug("tcp route", "app", key, "instance", b.Instance, "err", err)
	}
	d := r.cfg.Clock().Sub(start)
	r.stats.add(key, start.Unix(), 200, n, d)
	if r.cfg.AccessLog != nil {
		r.cfg.AccessLog(AccessEntry{App: key, Instance: b.Instance, RemoteAddr: remote, BytesOut: n, Duration: d, Time: start, TCP: true})
	}
}

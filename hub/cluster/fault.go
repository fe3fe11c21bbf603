package cluster

import (
	"errors"
	"net"
	"sync"
	"time"
)

// faultConn cuts a connection once blocked(remote IP) turns true: reads and
// writes fail and a watchdog closes it, as a network partition would. It is
// used only when Config.Blocked is set (tests).
type faultConn struct {
	net.Conn
	ip      string
	blocked func(string) bool
	once    sync.Once
	done    chan struct{}
	stop    <-chan struct{} // the mux closed
}

var errCut = errors.New("network cut (test fault)")

func newFaultConn(c net.Conn, blocked func(string) bool, stop <-chan struct{}) net.Conn {
	f := &faultConn{Conn: c, ip: remoteIP(c), blocked: blocked, done: make(chan struct{}), stop: stop}
	go f.watch()
	return f
}

func (f *faultConn) watch() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-f.stop:
			return
		case <-t.C:
			if f.blocked(f.ip) {
				f.Close()
				return
			}
		}
	}
}

func (f *faultConn) Read(b []byte) (int, error) {
	if f.blocked(f.ip) {
		f.Close()
		return 0, errCut
	}
	n, err := f.Conn.Read(b)
	if f.blocked(f.ip) {
		f.Close()
		return 0, errCut
	}
	return n, err
}

func (f *faultConn) Write(b []byte) (int, error) {
	if f.blocked(f.ip) {
		f.Close()
		return 0, errCut
	}
	return f.Conn.Write(b)
}

func (f *faultConn) Close() error {
	err := f.Conn.Close()
	f.once.Do(func() { close(f.done) })
	return err
}

// cut closes at once every connection whose remote IP blocked now refuses,
// so that a partition also ends the streams already open across it (Raft's
// pooled connections, the RPC client's), not only on their next read or
// write or at the watchdog's next tick.
func (m *mux) cut() {
	if m.blocked == nil {
		return
	}
	var victims []*trackedConn
	m.connsMu.Lock()
	for c := range m.conns {
		if m.blocked(remoteIP(c)) {
			victims = append(victims, c)
		}
	}
	m.connsMu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}

// EnforceBlocked applies a change of Config.Blocked to the connections
// already open: those it now refuses are closed at once. Tests call it
// right after cutting the network.
func (c *Cluster) EnforceBlocked() {
	if c.mux != nil {
		c.mux.cut()
	}
}

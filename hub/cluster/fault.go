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

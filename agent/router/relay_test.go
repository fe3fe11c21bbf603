package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// instance listens on loopback and runs serve for each connection.
func instance(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

// tcpRoute starts a router whose TCP route leads to the instance at addr,
// and returns the router and the route's address.
func tcpRoute(t *testing.T, addr string, cfg Config) (*Router, string) {
	t.Helper()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	r := start(t, &Table{Apps: []App{{Key: "acme/db", Backends: []Backend{{Instance: "d", Addr: addr, Version: 1}}}},
		TCP: []TCPRoute{{Port: port, App: "acme/db"}}}, cfg)
	return r, r.TCPAddr(port)
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// An instance that writes and closes at once sends its data and its end
// together: the client gets both.
func TestRelayDataAndEndTogether(t *testing.T) {
	greeting := bytes.Repeat([]byte("hello "), 1000)
	addr := instance(t, func(c *net.TCPConn) { c.Write(greeting) })
	_, route := tcpRoute(t, addr, Config{})
	for i := 0; i < 50; i++ {
		c := dialTCP(t, route)
		b, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(b, greeting) {
			t.Fatalf("round %d: %d bytes, %v", i, len(b), err)
		}
		c.Close()
	}
}

// Both directions at once, more than the sockets' buffers hold, through
// a reader slower than the writer: the relay holds what a socket does not
// take and stops reading its peer until it does; nothing is lost or
// reordered, and half closes pass both ways.
func TestRelayBothWaysUnderBackpressure(t *testing.T) {
	addr := instance(t, echo)
	logged := make(chan AccessEntry, 1)
	_, route := tcpRoute(t, addr, Config{AccessLog: func(e AccessEntry) { logged <- e }})
	payload := make([]byte, 16<<20)
	rand.Read(payload)
	c := dialTCP(t, route)
	go func() {
		c.Write(payload)
		c.CloseWrite()
	}()
	h := sha256.New()
	buf := make([]byte, 4096)
	n := 0
	for {
		k, err := c.Read(buf)
		h.Write(buf[:k])
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if n < 1<<20 {
			time.Sleep(time.Millisecond) // slow at first: the relay must hold
		}
	}
	if want := sha256.Sum256(payload); n != len(payload) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echoed %d bytes of %d, or other bytes", n, len(payload))
	}
	select {
	case e := <-logged:
		if !e.TCP || e.BytesOut != int64(len(payload)) || e.App != "acme/db" {
			t.Fatalf("access log: %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not logged")
	}
}

// Many connections at once, each with its own bytes: no connection sees
// another's.
func TestRelayConnectionsKeepTheirOwnBytes(t *testing.T) {
	addr := instance(t, echo)
	_, route := tcpRoute(t, addr, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", route)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			for j := 0; j < 20; j++ {
				msg := fmt.Sprintf("conn %d message %d;", i, j)
				if _, err := io.WriteString(c, msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
					errs <- fmt.Errorf("conn %d: %q for %q (%v)", i, got, msg, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// An instance that resets its connection ends the client's too, and the
// router keeps no descriptor of either.
func TestRelayResetEndsBothAndLeaksNothing(t *testing.T) {
	addr := instance(t, func(c *net.TCPConn) {
		b := make([]byte, 1)
		c.Read(b)
		c.SetLinger(0) // close sends a reset
	})
	_, route := tcpRoute(t, addr, Config{})
	// The loops' own descriptors exist from the first connection on.
	c := dialTCP(t, route)
	c.Write([]byte("x"))
	io.ReadAll(c)
	c.Close()
	time.Sleep(100 * time.Millisecond)
	before := openFiles(t)
	for i := 0; i < 100; i++ {
		c := dialTCP(t, route)
		c.Write([]byte("x"))
		// An end or a reset both end it; either will do, but it must end
		// (ReadAll returns at the deadline otherwise).
		var ne net.Error
		if _, err := io.ReadAll(c); errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the client's connection outlived its instance's reset")
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for openFiles(t) > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := openFiles(t); n > before {
		t.Fatalf("%d descriptors open after 100 reset connections, %d before", n, before)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Once the instance has ended its side, a client that never ends its own
// is cut off after relayLinger; until the instance ends, a client that
// has ended its side still gets the answer, however late.
func TestRelayLinger(t *testing.T) {
	// Restored after the routers stop (cleanups run last first).
	t.Cleanup(func(d time.Duration) func() { return func() { relayLinger = d } }(relayLinger))
	relayLinger = 300 * time.Millisecond

	slow := instance(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c) // until the client ends its side
		time.Sleep(2 * relayLinger)
		c.Write(b)
	})
	_, route := tcpRoute(t, slow, Config{})
	late := dialTCP(t, route)
	late.Write([]byte("late answer"))
	late.CloseWrite()
	if b, err := io.ReadAll(late); err != nil || string(b) != "late answer" {
		t.Fatalf("a half-closed client's answer: %q %v", b, err)
	}

	cut := make(chan time.Duration, 1)
	ending := instance(t, func(c *net.TCPConn) {
		c.CloseWrite()
		start := time.Now()
		io.ReadAll(c) // until the router ends the connection
		cut <- time.Since(start)
	})
	_, route = tcpRoute(t, ending, Config{})
	stay := dialTCP(t, route) // never ends its side
	if b, err := io.ReadAll(stay); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v", b, err)
	}
	select {
	case d := <-cut:
		if d < relayLinger/2 {
			t.Fatalf("cut off after %v, before the linger of %v", d, relayLinger)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that never ends its side was never cut off")
	}
}

// Stopping the router ends the TCP connections it relays.
func TestRelayEndsWithTheRouter(t *testing.T) {
	addr := instance(t, echo)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	r, err := New(Config{HTTPAddr: "127.0.0.1:0", TCPBind: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(&Table{Apps: []App{{Key: "a/b", Backends: []Backend{{Instance: "i", Addr: addr, Version: 1}}}},
		TCP: []TCPRoute{{Port: port, App: "a/b"}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	c := dialTCP(t, r.TCPAddr(port))
	c.Write([]byte("ping"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return while a TCP connection was open")
	}
	if _, err := c.Read(b); err == nil {
		t.Fatal("the connection outlived the router")
	}
}

// An instance that ends its side and then resets the connection ends the
// relayed connection at once, not after the linger: the reset is all
// that is left to report on that socket (reported again and again until
// the relay acts on it).
func TestRelayResetAfterEnd(t *testing.T) {
	addr := instance(t, func(c *net.TCPConn) {
		c.CloseWrite()
		time.Sleep(50 * time.Millisecond)
		c.SetLinger(0)
	})
	logged := make(chan AccessEntry, 1)
	_, route := tcpRoute(t, addr, Config{AccessLog: func(e AccessEntry) { logged <- e }})
	c := dialTCP(t, route) // keeps its side open, and writes nothing
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v", b, err)
	}
	select {
	case <-logged:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived its instance's reset")
	}
}

package netlab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAddRemoveHostOffTestGoroutine: hosts come and go while the lab
// runs (machines a simulated cloud creates and deletes), from any
// goroutine; a removed host's processes, namespace and veth are gone and
// its address is not handed out again.
func TestAddRemoveHostOffTestGoroutine(t *testing.T) {
	Require(t)
	lab := New(t, Options{})
	dc := lab.AddDC("a")
	first := dc.AddHost("a1")
	type added struct {
		h   *Host
		err error
	}
	ch := make(chan added)
	go func() {
		h, err := dc.TryAddHost("i-0123456789abcdef0")
		ch <- added{h, err}
	}()
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	h := a.h
	if _, err := dc.TryAddHost("i-0123456789abcdef0"); err == nil {
		t.Fatal("a second host of one name was added")
	}
	if _, err := dc.TryAddHost("Bad_Name"); err == nil {
		t.Fatal("a bad name was accepted")
	}
	cmd := h.Command(context.Background(), "sleep", "300")
	if err := h.Start(cmd); err != nil {
		t.Fatal(err)
	}
	go func() { ch <- added{err: lab.RemoveHost(h)} }()
	if err := (<-ch).err; err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done(cmd):
	case <-time.After(5 * time.Second):
		t.Fatal("the removed host's process still runs")
	}
	if lab.Host(h.Name()) != nil || len(dc.Hosts()) != 1 {
		t.Fatalf("the lab still lists the removed host: %v", dc.Hosts())
	}
	if out, _ := run("ip", "netns", "list"); strings.Contains(out, h.NS()) {
		t.Fatalf("namespace %s left", h.NS())
	}
	// The kernel destroys a namespace's interfaces, and so the pair's host
	// end, after the namespace's last reference is gone: not at once.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := run("ip", "-o", "link", "show")
		if !strings.Contains(out, h.Veth()+"@") && !strings.Contains(out, h.Veth()+":") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth %s left", h.Veth())
		}
	}
	if err := lab.RemoveHost(h); err != nil {
		t.Fatalf("a second removal: %v", err)
	}
	next := dc.AddHost("a3")
	if next.IP() == h.IP() || next.IP() == first.IP() {
		t.Fatalf("address %s handed out again", next.IP())
	}
	// The new host works: it reaches the first one.
	ln, err := first.Listen("tcp", first.AddrPort(7000))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := next.Dial(ctx, "tcp", first.AddrPort(7000))
	if err != nil {
		t.Fatalf("dial from the new host: %v", err)
	}
	conn.Close()
}

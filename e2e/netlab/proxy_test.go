package netlab

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func TestProxy(t *testing.T) {
	Require(t)
	lab := New(t, Options{})
	a1, b1 := lab.AddDC("a").AddHost("a1"), lab.AddDC("b").AddHost("b1")
	startEcho(t, a1)

	// The proxy lives in b1 and dials a1 from b1: traffic crosses the DCs.
	ln, err := b1.Listen("tcp", "0.0.0.0:7100")
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, ln, a1.AddrPort(echoPort), b1.Dial)
	via := b1.AddrPort(7100)

	rtt := func() time.Duration {
		t.Helper()
		start := time.Now()
		if err := echo(rootDial, via, 3*time.Second); err != nil {
			t.Fatalf("echo through proxy: %v", err)
		}
		return time.Since(start)
	}
	if d := rtt(); d > 150*time.Millisecond {
		t.Errorf("round trip without latency took %v", d)
	}
	p.SetLatency(100 * time.Millisecond)
	if d := rtt(); d < 200*time.Millisecond || d > time.Second {
		t.Errorf("round trip with 100ms latency each way took %v, want ≥200ms", d)
	}
	p.SetLatency(0)
	p.SetLoss(1, 150*time.Millisecond)
	if d := rtt(); d < 300*time.Millisecond || d > time.Second {
		t.Errorf("round trip with every chunk lost (150ms penalty) took %v, want ≥300ms", d)
	}
	p.SetLoss(0, 0)

	// Stall: data is held, then delivered intact.
	c, err := net.DialTimeout("tcp", via, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	p.SetStalled(true)
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil {
		t.Errorf("stalled proxy delivered %q", line)
	}
	p.SetStalled(false)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "held\n" {
		t.Errorf("after release: %q, %v; want the held line", line, err)
	}

	// ResetAll closes the connections through it.
	p.ResetAll()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("connection survived ResetAll")
	}
	if n := p.Accepted(); n < 4 {
		t.Errorf("accepted %d connections, want ≥4", n)
	}
}

package routes

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestRateSignalGoesUpAtOnce: a table's signal rate reaches the router;
// a request that crosses it makes the session's feed send a RateSignal
// at once (not with the next heartbeat), on protocol 4. A session of
// protocol 3, whose hub would take it for an unknown message, gets no
// such feed.
func TestRateSignalGoesUpAtOnce(t *testing.T) {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(bln)
	defer backend.Close()
	r, err := New(Config{HTTPAddr: "127.0.0.1:0", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	c := control.New()
	r.Register(c)
	welcome := func(protocol uint32) {
		t.Helper()
		in := control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_Welcome{Welcome: &wire.Welcome{ProtocolVersion: protocol}}}}
		if err := c.Dispatch(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	signalFeed := func() *control.Feed {
		for _, f := range c.Feeds() {
			if f.Changed != nil && f.OnChange != nil {
				return &f
			}
		}
		return nil
	}
	// A rate of 1/s: the first request crosses it.
	table := &wire.RouteTable{Version: 1, Apps: []*wire.RouteApp{{Key: "t/a", SignalRps: 1, Backends: []*wire.Backend{{Instance: "a-1", Addr: bln.Addr().String()}}}},
		Http: []*wire.HTTPRoute{{Host: "a.example", App: "t/a"}}}
	if err := c.Dispatch(ctx, control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: table}},
		Reply: func(*wire.Envelope) error { return nil }}); err != nil {
		t.Fatal(err)
	}

	welcome(wire.ProtocolRateSignal - 1)
	if f := signalFeed(); f != nil {
		t.Fatal("a protocol 3 session would be sent RateSignal")
	}
	welcome(wire.ProtocolRateSignal)
	f := signalFeed()
	if f == nil {
		t.Fatal("no RateSignal feed on a protocol 4 session")
	}
	httpAddr, _ := r.Addrs()
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/", nil)
	req.Host = "a.example"
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-f.Changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no burst signalled for a request over the rate")
	}
	sig := f.OnChange().GetRateSignal()
	if len(sig.GetApps()) != 1 {
		t.Fatalf("rate signal %v", sig)
	}
	if a := sig.Apps[0]; a.App != "t/a" || a.Requests != 1 || a.SignalRps != 1 || a.Unix < sent.Unix() || a.ElapsedMs > 1000 {
		t.Fatalf("rate signal %v", a)
	}
	if m := f.OnChange(); m != nil {
		t.Fatalf("a signal sent twice: %v", m)
	}
}

package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/logship"
	"github.com/wharf-platform/wharf/agent/router"
	"github.com/wharf-platform/wharf/pkg/wire"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRouterTable(t *testing.T) {
	in := &wire.RouteTable{Version: 9,
		Apps: []*wire.RouteApp{{Key: "t/a", Backends: []*wire.Backend{{Instance: "a-1", Addr: "10.0.0.1:8080", Version: 2}},
			Weights: map[uint32]uint32{1: 90, 2: 10}}},
		Http:  []*wire.HTTPRoute{{Host: "a.example", Path: "/api", App: "t/a"}},
		Tcp:   []*wire.TCPRoute{{Port: 30001, App: "t/a"}},
		Certs: []*wire.RouteCert{{Domain: "a.example", CertPem: []byte("c"), KeyPem: []byte("k")}},
	}
	want := &router.Table{Version: 9,
		Apps: []router.App{{Key: "t/a", Backends: []router.Backend{{Instance: "a-1", Addr: "10.0.0.1:8080", Version: 2}},
			Weights: map[uint32]uint32{1: 90, 2: 10}}},
		HTTP:  []router.HTTPRoute{{Host: "a.example", Path: "/api", App: "t/a"}},
		TCP:   []router.TCPRoute{{Port: 30001, App: "t/a"}},
		Certs: []router.Cert{{Domain: "a.example", CertPEM: []byte("c"), KeyPEM: []byte("k")}},
	}
	if got := routerTable(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("routerTable:\n got %+v\nwant %+v", got, want)
	}
}

// pushTable dispatches an empty route table of version and returns the
// version acknowledged.
func pushTable(t *testing.T, c *control.Control, version uint64) uint64 {
	t.Helper()
	return dispatchTable(t, c, &wire.RouteTable{Version: version}).Version
}

// dispatchTable dispatches a route table and returns its acknowledgement.
func dispatchTable(t *testing.T, c *control.Control, table *wire.RouteTable) *wire.RouteAck {
	t.Helper()
	var ack *wire.RouteAck
	in := control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: table}},
		Reply: func(e *wire.Envelope) error { ack = e.GetRouteAck(); return nil }}
	if err := c.Dispatch(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if ack == nil {
		t.Fatal("route table not acknowledged")
	}
	return ack
}

// TestWithoutRouter: an agent without router addresses serves nothing
// and acknowledges each table as is, so the hub does not push it again.
func TestWithoutRouter(t *testing.T) {
	r, err := New(Config{Logger: discard, OnRoutes: func(uint64) { t.Error("told of a table no router serves") }})
	if err != nil {
		t.Fatal(err)
	}
	c := control.New()
	r.Register(c)
	if v := pushTable(t, c, 4); v != 4 || r.Version() != 0 {
		t.Fatalf("acknowledged %d, serving %d; want 4, 0", v, r.Version())
	}
	if h, s := r.Addrs(); h != "" || s != "" {
		t.Fatalf("addresses %q %q without a router", h, s)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run without a router: %v", err)
	}
}

// TestRouterServesAndLogsAccess: a pushed table is served and
// acknowledged with its version; a request through it is counted for the
// hub and becomes an access line of the app's in the log buffer.
func TestRouterServesAndLogsAccess(t *testing.T) {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(bln)
	defer backend.Close()

	var told []uint64
	r, err := New(Config{HTTPAddr: "127.0.0.1:0", Logger: discard, OnRoutes: func(v uint64) { told = append(told, v) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	buf, err := logship.Open(logship.Config{Dir: t.TempDir(), Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	wrote := make(chan struct{})
	go func() { r.WriteLines(ctx, buf, "h-1"); close(wrote) }()

	c := control.New()
	r.Register(c)
	table := &wire.RouteTable{Version: 3, Apps: []*wire.RouteApp{{Key: "t/a", Backends: []*wire.Backend{{Instance: "a-1", Addr: bln.Addr().String()}}}},
		Http: []*wire.HTTPRoute{{Host: "a.example", App: "t/a"}}}
	var ack *wire.RouteAck
	in := control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: table}},
		Reply: func(e *wire.Envelope) error { ack = e.GetRouteAck(); return nil }}
	if err := c.Dispatch(ctx, in); err != nil {
		t.Fatal(err)
	}
	if ack.GetVersion() != 3 || r.Version() != 3 || len(told) != 1 || told[0] != 3 {
		t.Fatalf("ack %v, serving %d, told %v; want 3", ack, r.Version(), told)
	}
	httpAddr, _ := r.Addrs()
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/x", nil)
	req.Host = "a.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hi" {
		t.Fatalf("through the router: %d %q", resp.StatusCode, body)
	}

	lines := waitLines(t, buf)
	if lines[0].Instance != "t/a/router-h-1" || lines[0].Stream != "router" || !strings.Contains(lines[0].Text, `"GET /x" 200`) {
		t.Fatalf("access line %+v", lines[0])
	}
	feeds := c.Feeds()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st := feeds[0].Tick(time.Now()).GetAccessStats(); st != nil {
			if st.Seconds[0].App != "t/a" || st.Seconds[0].Requests != 1 {
				t.Fatalf("access stats %v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no access stats after the second ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-wrote
}

func waitLines(t *testing.T, buf *logship.Buffer) []logship.Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lines, err := buf.ReadWait(ctx, 10)
	if err != nil || len(lines) == 0 {
		t.Fatalf("no access line in the buffer: %v", err)
	}
	return lines
}

// TestAccessDropsWhenFull: the router never waits on the log buffer;
// entries beyond the queue are dropped and counted.
func TestAccessDropsWhenFull(t *testing.T) {
	a := newAccess()
	for range accessQueue + 5 {
		a.add(router.AccessEntry{App: "t/a"})
	}
	if n := a.dropped.Load(); n != 5 {
		t.Fatalf("dropped %d, want 5", n)
	}
}

func TestAccessLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    router.AccessEntry
		want string
	}{
		{"http", router.AccessEntry{RemoteAddr: "1.2.3.4:5", Method: "GET", Path: "/x", Status: 200, BytesOut: 2, Duration: 1500 * time.Microsecond,
			Host: "a.example", RequestID: "r1", Instance: "a-1"}, `1.2.3.4:5 "GET /x" 200 2B 1.5ms host=a.example id=r1 instance=a-1`},
		{"tcp", router.AccessEntry{TCP: true, RemoteAddr: "1.2.3.4:5", BytesOut: 10, Duration: time.Second, Instance: "a-1"}, `1.2.3.4:5 tcp 10B 1s instance=a-1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := accessLine(tc.e); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestAccessHoldsNoQueueIdle: a router that serves nothing holds no
// queue; a batch's array is reused for the next lines unless a burst made
// it large.
func TestAccessHoldsNoQueueIdle(t *testing.T) {
	a := newAccess()
	if a.pending != nil || a.spare != nil {
		t.Fatal("an idle access log holds a queue")
	}
	for range 3 {
		a.add(router.AccessEntry{App: "t/a", Path: "/x"})
	}
	b := a.take()
	if len(b) != 3 || a.pending != nil {
		t.Fatalf("took %d entries, %d left", len(b), len(a.pending))
	}
	a.recycle(b)
	a.add(router.AccessEntry{App: "t/a"})
	if len(a.pending) != 1 || &a.pending[0] != &b[:1][0] || b[1].Path != "" {
		t.Fatal("the taken batch's array was not reused, emptied")
	}
	for range 2000 {
		a.add(router.AccessEntry{App: "t/a"})
	}
	a.recycle(a.take())
	if a.spare != nil {
		t.Fatalf("a burst's array of %d kept", cap(a.pending))
	}
}

// TestOlderRouteTableNotApplied: a table older than the one served (from
// a hub node behind the cluster) changes nothing; the ack names the
// version served.
func TestOlderRouteTableNotApplied(t *testing.T) {
	r, c := runningRouter(t)
	if v := pushTable(t, c, 7); v != 7 || r.Version() != 7 {
		t.Fatalf("ack %d, serving %d after table 7", v, r.Version())
	}
	if v := pushTable(t, c, 5); v != 7 || r.Version() != 7 {
		t.Fatalf("ack %d, serving %d after the older table 5, want 7 kept", v, r.Version())
	}
	if v := pushTable(t, c, 8); v != 8 || r.Version() != 8 {
		t.Fatalf("ack %d, serving %d after table 8", v, r.Version())
	}
}

// TestRouterAppliesDeltas: a delta over the table served changes only
// the apps it names (a new app served, a removed one gone, the others
// left as they were); a delta over another table is not applied, and is
// acknowledged with the version served and a request for a whole table.
func TestRouterAppliesDeltas(t *testing.T) {
	r, c := runningRouter(t)
	backendAddr, status := servedBy(t, r)
	push := func(table *wire.RouteTable) *wire.RouteAck { t.Helper(); return dispatchTable(t, c, table) }
	app := func(key string) *wire.RouteApp {
		return &wire.RouteApp{Key: key, Backends: []*wire.Backend{{Instance: key + "-1", Addr: backendAddr}}}
	}
	if ack := push(&wire.RouteTable{Version: 5, Apps: []*wire.RouteApp{app("t/a"), app("t/b")},
		Http: []*wire.HTTPRoute{{Host: "a.example", App: "t/a"}, {Host: "b.example", App: "t/b"}}}); ack.Version != 5 || ack.WantWhole {
		t.Fatalf("whole table acknowledged %v", ack)
	}
	if ack := push(&wire.RouteTable{Version: 7, BaseVersion: 5, Apps: []*wire.RouteApp{app("t/c")},
		Http: []*wire.HTTPRoute{{Host: "c.example", App: "t/c"}}, RemovedApps: []string{"t/b"}}); ack.Version != 7 || ack.WantWhole {
		t.Fatalf("delta acknowledged %v", ack)
	}
	if a, b, c := status("a.example"), status("b.example"), status("c.example"); a != 200 || b != 404 || c != 200 {
		t.Fatalf("after the delta: a %d, b %d, c %d; want 200, 404, 200", a, b, c)
	}
	if ack := push(&wire.RouteTable{Version: 9, BaseVersion: 8, RemovedApps: []string{"t/a"}}); ack.Version != 7 || !ack.WantWhole {
		t.Fatalf("a delta over another table acknowledged %v, want version 7 and a request for a whole table", ack)
	}
	if a := status("a.example"); a != 200 || r.Version() != 7 {
		t.Fatalf("after a delta over another table: a %d, serving %d; want 200, 7", a, r.Version())
	}
}

// TestRouterJoinsTablesInParts: a table sent in parts is served once its
// last part is in, the table held serving until then, and acknowledged
// only then; a part of another table among them ends the session, and a
// new session starts with no part held.
func TestRouterJoinsTablesInParts(t *testing.T) {
	r, c := runningRouter(t)
	backendAddr, status := servedBy(t, r)
	// send dispatches one part; it returns the acknowledgement, if any.
	send := func(part *wire.RouteTable) (*wire.RouteAck, error) {
		var ack *wire.RouteAck
		err := c.Dispatch(context.Background(), control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: part}},
			Reply: func(e *wire.Envelope) error { ack = e.GetRouteAck(); return nil }})
		return ack, err
	}
	table := &wire.RouteTable{Version: 3}
	for i := range 40 {
		key := fmt.Sprintf("t/app%02d", i)
		table.Apps = append(table.Apps, &wire.RouteApp{Key: key, Backends: []*wire.Backend{{Instance: key + "-1", Addr: backendAddr}}})
		table.Http = append(table.Http, &wire.HTTPRoute{Host: fmt.Sprintf("app%02d.example", i), App: key})
	}
	wire.SortRouteTable(table)
	if ack := dispatchTable(t, c, &wire.RouteTable{Version: 2, Apps: table.Apps[:1], Http: table.Http[:1]}); ack.Version != 2 {
		t.Fatalf("the first table acknowledged %v", ack)
	}
	parts, err := wire.SplitRouteTable(table, proto.Size(table)/3)
	if err != nil || len(parts) < 3 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	for _, part := range parts[:len(parts)-1] {
		if ack, err := send(part); err != nil || ack != nil {
			t.Fatalf("a part before the last: acknowledged %v, %v", ack, err)
		}
	}
	if a, b := status("app00.example"), status("app39.example"); a != 200 || b != 404 || r.Version() != 2 {
		t.Fatalf("before the last part: app00 %d, app39 %d, serving %d; want 200, 404, 2", a, b, r.Version())
	}
	if ack, err := send(parts[len(parts)-1]); err != nil || ack.GetVersion() != 3 {
		t.Fatalf("the last part: acknowledged %v, %v", ack, err)
	}
	if a, b := status("app00.example"), status("app39.example"); a != 200 || b != 200 {
		t.Fatalf("after the last part: app00 %d, app39 %d", a, b)
	}

	next, err := wire.SplitRouteTable(&wire.RouteTable{Version: 5, Apps: table.Apps, Http: table.Http}, proto.Size(table)/3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send(next[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := send(&wire.RouteTable{Version: 6}); !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("a table amid another's parts: %v", err)
	}
	// A session of its own: what a lost one sent in part is dropped.
	if _, err := send(next[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Dispatch(context.Background(), control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_Welcome{Welcome: &wire.Welcome{ProtocolVersion: wire.ProtocolMax}}},
		Reply: func(*wire.Envelope) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if ack := dispatchTable(t, c, &wire.RouteTable{Version: 7, Apps: table.Apps[:1], Http: table.Http[:1]}); ack.Version != 7 || status("app39.example") != 404 {
		t.Fatalf("a whole table in a new session: acknowledged %v", ack)
	}
}

// servedBy starts a backend that answers with the request's host, and
// returns its address and status, which asks r's router for host.
func servedBy(t *testing.T, r *Routes) (string, func(host string) int) {
	t.Helper()
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) })}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(bln)
	t.Cleanup(func() { backend.Close() })
	return bln.Addr().String(), func(host string) int {
		t.Helper()
		httpAddr, _ := r.Addrs()
		req, _ := http.NewRequest("GET", "http://"+httpAddr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
}

// runningRouter returns routes serving HTTP on a loopback port until the
// test ends, registered on a control of their own.
func runningRouter(t *testing.T) (*Routes, *control.Control) {
	t.Helper()
	r, err := New(Config{HTTPAddr: "127.0.0.1:0", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	c := control.New()
	r.Register(c)
	return r, c
}

// TestConvertKeepsTheSameRoutes: a table whose HTTP routes are, in order,
// those converted last (a delta's table carries new route objects for
// the apps it names) passes the router the same slice, so that the router
// keeps its index of them; other routes are converted anew.
func TestConvertKeepsTheSameRoutes(t *testing.T) {
	routes := func(path string) []*wire.HTTPRoute {
		return []*wire.HTTPRoute{{Host: "a.example.com", App: "t/a"}, {Host: "b.example.com", Path: path, App: "t/a"}}
	}
	apps := []*wire.RouteApp{{Key: "t/a"}}
	out1, conv := convertTable(&wire.RouteTable{Version: 1, Apps: apps, Http: routes("/x")}, converted{})
	out2, conv := convertTable(&wire.RouteTable{Version: 2, Apps: apps, Http: routes("/x")}, conv)
	if len(out2.HTTP) != 2 || &out2.HTTP[0] != &out1.HTTP[0] {
		t.Fatalf("the same routes were converted again: %+v", out2.HTTP)
	}
	out3, conv := convertTable(&wire.RouteTable{Version: 3, Apps: apps, Http: routes("/y")}, conv)
	want := []router.HTTPRoute{{Host: "a.example.com", App: "t/a"}, {Host: "b.example.com", Path: "/y", App: "t/a"}}
	if !reflect.DeepEqual(out3.HTTP, want) || &out3.HTTP[0] == &out2.HTTP[0] {
		t.Fatalf("a changed route: %+v (a new slice: %v), want %+v", out3.HTTP, &out3.HTTP[0] != &out2.HTTP[0], want)
	}
	out4, _ := convertTable(&wire.RouteTable{Version: 4, Apps: apps, Http: routes("/y")[:1]}, conv)
	if !reflect.DeepEqual(out4.HTTP, want[:1]) {
		t.Fatalf("a removed route: %+v", out4.HTTP)
	}
}

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// pipeSent is how many requests a node sent through its pipe to addr.
func pipeSent(c *Cluster, addr string) int64 {
	c.pipes.mu.Lock()
	defer c.pipes.mu.Unlock()
	if p := c.pipes.open[addr]; p != nil {
		return p.sent.Load()
	}
	return 0
}

// apiCluster is a 3-node cluster whose "api" RPC handler on each node is
// h(that node's name).
func apiCluster(t *testing.T, h func(name string) http.HandlerFunc) []*node {
	t.Helper()
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	nodes := cluster3(t, key)
	for _, n := range nodes {
		if err := n.c.Handle(Raw("api", h(n.cfg.NodeName))); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// pipeCluster is a 3-node cluster whose "api" handler is h on every node,
// and its leader and a follower.
func pipeCluster(t *testing.T, h http.HandlerFunc) (leader, follower *node) {
	t.Helper()
	nodes := apiCluster(t, func(string) http.HandlerFunc { return h })
	leader = leaderOf(nodes)
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	knowsLeader(t, follower, leader)
	return leader, follower
}

// knowsLeader waits until n knows leader as the leader (it forwards
// nothing before).
func knowsLeader(t *testing.T, n, leader *node) {
	t.Helper()
	waitFor(t, 10*time.Second, "the follower to know the leader", func() bool {
		addr, _ := n.c.raft.LeaderWithID()
		return string(addr) == leader.c.raftAddr
	})
}

// TestPipeCarriesRequests: what a follower sends through its pipe
// reaches the leader's handler as it was sent (method, escaped path and
// query, Host, every header but a connection's own, the client's address
// in X-Forwarded-For, the body), and the handler's answer comes back as
// it was written (status, headers, body, a body-less 204).
func TestPipeCarriesRequests(t *testing.T) {
	type seen struct {
		method, uri, path, host, body string
		header                        http.Header
		length                        int64
	}
	got := make(chan seen, 1)
	leader, follower := pipeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.URL.Path, r.Host, string(b), r.Header, r.ContentLength}
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.Header().Set("Connection", "close") // a connection's own: not passed on
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, "taken")
	})
	addr := leader.c.raftAddr

	r := httptest.NewRequest(http.MethodPost, "http://wharf.example/v1/apps/a%2Fb/scale?tenant=t1&x=%20", strings.NewReader(`{"instances":3}`))
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("Authorization", "Bearer secret")
	r.Header.Add("X-Many", "1")
	r.Header.Add("X-Many", "2")
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	r.Header.Set("Te", "trailers")
	w := httptest.NewRecorder()
	if !follower.c.ProxyToLeader(w, r, "api") {
		t.Fatal("the follower did not forward")
	}
	s := <-got
	want := seen{
		method: http.MethodPost, uri: "/v1/apps/a%2Fb/scale?tenant=t1&x=%20", path: "/v1/apps/a/b/scale",
		host: "wharf.example", body: `{"instances":3}`, length: int64(len(`{"instances":3}`)),
	}
	header := s.header
	s.header = nil
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("the leader's handler saw %+v, want %+v", s, want)
	}
	if header.Get("Authorization") != "Bearer secret" || !reflect.DeepEqual(header["X-Many"], []string{"1", "2"}) ||
		header.Get("X-Forwarded-For") != "198.51.100.1, 192.0.2.7" || header.Get("Te") != "" {
		t.Fatalf("headers at the leader: %v", header)
	}
	if w.Code != http.StatusConflict || w.Body.String() != "taken" || !reflect.DeepEqual(w.Header()["X-Multi"], []string{"a", "b"}) ||
		w.Header().Get("Connection") != "" || w.Header().Get("Content-Length") != "5" {
		t.Fatalf("answer %d %q %v", w.Code, w.Body, w.Header())
	}
	if pipeSent(follower.c, addr) != 1 {
		t.Fatalf("%d requests went through the pipe, want 1", pipeSent(follower.c, addr))
	}

	r = httptest.NewRequest(http.MethodDelete, "/v1/apps/web", nil)
	w = httptest.NewRecorder()
	follower.c.ProxyToLeader(w, r, "api")
	if s := <-got; s.method != http.MethodDelete || s.body != "" || s.length != 0 {
		t.Fatalf("a request without a body arrived as %+v", s)
	}
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("answer %d %q, want 204 and no body", w.Code, w.Body)
	}

	// A handler the leader does not have: its 404, not the follower's.
	w = httptest.NewRecorder()
	follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/v1/x", nil), "nosuch")
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "nosuch") {
		t.Fatalf("unknown handler: %d %q", w.Code, w.Body)
	}
	// Too large for the pipe, or streamed: HTTP, as before.
	big := strings.Repeat("y", maxWholeBody+1)
	w = httptest.NewRecorder()
	follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPut, "/v1/apps/big", strings.NewReader(big)), "api")
	if s := <-got; s.body != big || w.Code != http.StatusConflict {
		t.Fatalf("a large body: %d bytes arrived, answer %d", len(s.body), w.Code)
	}
	chunked := httptest.NewRequest(http.MethodPut, "/v1/apps/chunked", io.NopCloser(strings.NewReader("abc")))
	chunked.ContentLength = -1
	follower.c.ProxyToLeader(httptest.NewRecorder(), chunked, "api")
	if s := <-got; s.body != "abc" {
		t.Fatalf("a body of unknown length arrived as %q", s.body)
	}
	if n := pipeSent(follower.c, addr); n != 3 {
		t.Fatalf("%d requests went through the pipe, want 3 (the large and the streamed ones as HTTP)", n)
	}
}

// TestPipeConcurrentAnswersOutOfOrder: many requests at once share the
// pipe, each gets its own answer, and a slow one does not hold up those
// sent after it.
func TestPipeConcurrentAnswersOutOfOrder(t *testing.T) {
	release := make(chan struct{})
	leader, follower := pipeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	slow := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/slow", strings.NewReader("slow")), "api")
		slow <- w
	}()
	waitFor(t, 10*time.Second, "the slow request sent", func() bool { return pipeSent(follower.c, leader.c.raftAddr) == 1 })
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Repeat(string(rune('a'+i%26)), 1+i)
			w := httptest.NewRecorder()
			follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/fast", strings.NewReader(body)), "api")
			if w.Code != http.StatusOK || w.Body.String() != body {
				wrong.Add(1)
			}
		}()
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d of 200 requests got a wrong answer", wrong.Load())
	}
	close(release)
	if w := <-slow; w.Body.String() != "slow" {
		t.Fatalf("the slow request's answer: %d %q", w.Code, w.Body)
	}
}

// TestPipeLost: when the pipe's connection goes, the requests waiting on
// it are answered 503 (and the leader's handlers are cancelled, as for a
// proxied request whose connection went), and the next request opens a
// new pipe.
func TestPipeLost(t *testing.T) {
	entered := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	leader, follower := pipeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			entered <- struct{}{}
			<-r.Context().Done()
			cancelled <- struct{}{}
			return
		}
		io.WriteString(w, "ok")
	})
	addr := leader.c.raftAddr
	hung := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/hang", nil), "api")
		hung <- w
	}()
	<-entered
	follower.c.pipes.mu.Lock()
	p := follower.c.pipes.open[addr]
	follower.c.pipes.mu.Unlock()
	p.out.conn.Close()
	select {
	case w := <-hung:
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "no cluster leader") {
			t.Fatalf("a request on a lost pipe was answered %d %q", w.Code, w.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request on a lost pipe was never answered")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader's handler was not cancelled when the pipe went")
	}
	w := httptest.NewRecorder()
	follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/again", nil), "api")
	if w.Code != http.StatusOK || w.Body.String() != "ok" || pipeSent(follower.c, addr) != 1 {
		t.Fatalf("after the loss: %d %q, %d sent on the new pipe", w.Code, w.Body, pipeSent(follower.c, addr))
	}
}

// TestPipeRefusesMalformedFrames: a frame over the limit, or one that
// does not decode, ends that connection at the leader, which goes on
// serving the others.
func TestPipeRefusesMalformedFrames(t *testing.T) {
	leader, follower := pipeCluster(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for name, frame := range map[string][]byte{
		"over the limit": binary.BigEndian.AppendUint32(nil, maxFwdRequest+1),
		"truncated":      append(binary.BigEndian.AppendUint32(nil, 3), 1, 2, 3),
		"no uri":         (&fwdRequest{id: 1, name: "api", method: "GET"}).encode(),
		"a string past its frame": append(binary.BigEndian.AppendUint32(nil, 10),
			0, 0, 0, 0, 0, 0, 0, 1, 200, 1),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := follower.c.mux.dial(ctx, leader.c.raftAddr, alpnFwd)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(frame)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Fatalf("%s: the leader answered instead of closing", name)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: the leader kept the connection", name)
		}
		conn.Close()
	}
	w := httptest.NewRecorder()
	follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/v1/x", nil), "api")
	if w.Code != http.StatusOK || pipeSent(follower.c, leader.c.raftAddr) != 1 {
		t.Fatalf("after the malformed frames: %d %q", w.Code, w.Body)
	}
}

// TestPipeDialFailure: a node no pipe can be opened to (down, or of a
// version without pipes) is not dialed again for every request.
func TestPipeDialFailure(t *testing.T) {
	_, follower := pipeCluster(t, func(w http.ResponseWriter, r *http.Request) {})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	defer ln.Close()
	for range 3 {
		if p := follower.c.pipeTo(ln.Addr().String()); p != nil {
			t.Fatal("a pipe opened to a listener that closes every connection")
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d dials, want 1 until fwdRetryDial passes", n)
	}
}

// blockingConn's first Write waits for release.
type blockingConn struct {
	net.Conn
	release chan struct{}
	once    sync.Once
}

func (c *blockingConn) Write(b []byte) (int, error) {
	c.once.Do(func() { <-c.release })
	return c.Conn.Write(b)
}

// TestFrameWriterCoalesces: frames queued while the connection is busy go
// out together, in one write, and in order.
func TestFrameWriterCoalesces(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	bc := &blockingConn{Conn: a, release: make(chan struct{})}
	fw := newFrameWriter(bc)
	defer fw.stop()
	frames := make([][]byte, 10)
	for i := range frames {
		frames[i] = (&fwdAnswer{id: uint64(i), status: 200, body: []byte(strings.Repeat("z", i))}).encode()
	}
	fw.send(frames[0])
	waitFor(t, 5*time.Second, "the first frame taken", func() bool { return len(fw.queue) == 0 })
	for _, f := range frames[1:] {
		fw.send(f)
	}
	close(bc.release)
	br := bufio.NewReader(b)
	for i := range frames {
		f, err := readFrame(br, maxFwdAnswer)
		if err != nil {
			t.Fatal(err)
		}
		if ans, err := decodeFwdAnswer(f); err != nil || ans.id != uint64(i) {
			t.Fatalf("frame %d: %+v %v", i, ans, err)
		}
	}
	if n := fw.flushes.Load(); n != 2 {
		t.Fatalf("10 frames, 9 of them queued behind the first, took %d writes, want 2", n)
	}
}

// FuzzFwdFrames: the frame decoders take any bytes without panicking, and
// what they accept encodes back to a frame that decodes the same.
func FuzzFwdFrames(f *testing.F) {
	q := &fwdRequest{id: 7, name: "api", method: "PUT", uri: "/v1/apps/web?tenant=t", host: "h",
		header: http.Header{"Authorization": {"Bearer x"}}, body: []byte(`{"image":"x"}`)}
	f.Add(q.encode()[4:])
	f.Add((&fwdAnswer{id: 7, status: 201, header: http.Header{"A": {"1", "2"}}, body: []byte("ok")}).encode()[4:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := decodeFwdRequest(b); err == nil {
			again, err := decodeFwdRequest(q.encode()[4:])
			if err != nil || !reflect.DeepEqual(q, again) {
				t.Fatalf("request %+v encoded and decoded as %+v (%v)", q, again, err)
			}
		}
		if a, err := decodeFwdAnswer(b); err == nil {
			again, err := decodeFwdAnswer(a.encode()[4:])
			if err != nil || !reflect.DeepEqual(a, again) {
				t.Fatalf("answer %+v encoded and decoded as %+v (%v)", a, again, err)
			}
		}
		if _, err := readFrame(bytes.NewReader(b), 1<<10); err == nil && len(b) < 4 {
			t.Fatal("a frame read from fewer than 4 bytes")
		}
	})
}

// TestPipeFollowsTheLeader: when the leader changes, a follower opens a
// pipe to the new one and closes the idle pipe to the old.
func TestPipeFollowsTheLeader(t *testing.T) {
	nodes := apiCluster(t, func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }
	})
	old := leaderOf(nodes)
	var follower, next *node
	for _, n := range nodes {
		switch {
		case n == old:
		case follower == nil:
			follower = n
		default:
			next = n
		}
	}
	knowsLeader(t, follower, old)
	ask := func() string {
		w := httptest.NewRecorder()
		follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/v1/x", nil), "api")
		return w.Body.String()
	}
	if got := ask(); got != old.cfg.NodeName {
		t.Fatalf("answered by %q, want the leader %s", got, old.cfg.NodeName)
	}
	follower.c.pipes.mu.Lock()
	first := follower.c.pipes.open[old.c.raftAddr]
	follower.c.pipes.mu.Unlock()
	if err := old.c.raft.LeadershipTransferToServer(raft.ServerID(next.cfg.NodeID), raft.ServerAddress(next.c.raftAddr)).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the new leader answering", func() bool { return ask() == next.cfg.NodeName })
	follower.c.pipes.mu.Lock()
	open := len(follower.c.pipes.open)
	follower.c.pipes.mu.Unlock()
	if open != 1 || pipeSent(follower.c, next.c.raftAddr) == 0 {
		t.Fatalf("%d pipes open after the leader changed, want 1, to the new leader", open)
	}
	select {
	case <-first.dead:
	case <-time.After(10 * time.Second):
		t.Fatal("the pipe to the former leader stayed open")
	}
}

// TestPipeHandlerPanic: a handler that panics on a forwarded request is
// answered 500, as net/http recovers a proxied one, and neither the
// leader nor the pipe goes down with it.
func TestPipeHandlerPanic(t *testing.T) {
	leader, follower := pipeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("handler bug")
		}
		io.WriteString(w, "ok")
	})
	w := httptest.NewRecorder()
	follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/panic", nil), "api")
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "internal error") {
		t.Fatalf("a panicking handler was answered %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	follower.c.ProxyToLeader(w, httptest.NewRequest(http.MethodPost, "/after", nil), "api")
	if w.Code != http.StatusOK || w.Body.String() != "ok" || pipeSent(follower.c, leader.c.raftAddr) != 2 {
		t.Fatalf("after the panic: %d %q, %d through the pipe", w.Code, w.Body, pipeSent(follower.c, leader.c.raftAddr))
	}
}

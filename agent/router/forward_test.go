package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingBackend answers with what it saw and counts the connections it
// accepted.
func countingBackend(t testing.TB, h http.HandlerFunc) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	conns := 0
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, func() int { mu.Lock(); defer mu.Unlock(); return conns }
}

func oneApp(s *httptest.Server) *Table {
	return &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w", Addr: addr(s), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}}}
}

// rawClient speaks HTTP/1.1 keep-alive to the router over one connection.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRouter(t *testing.T, r *Router) *rawClient {
	t.Helper()
	h, _ := r.Addr()
	c, err := net.Dial("tcp", h.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) do(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	rc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(rc.c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestFastPathReusesInstanceConnections(t *testing.T) {
	s, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	r := start(t, oneApp(s), Config{})
	rc := dialRouter(t, r)
	for i := 0; i < 20; i++ {
		if resp, body := rc.do(t, "GET / HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := conns(); n != 1 {
		t.Fatalf("20 sequential requests opened %d connections to the instance, want 1", n)
	}
}

func TestFastPathHeadersAndBody(t *testing.T) {
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "dropped")
		w.Header().Set("X-End", "kept")
		fmt.Fprintf(w, "%s %s len=%d body=%s xff=%q xfh=%q xfp=%q hop=%q keep=%q te=%q id=%v",
			r.Method, r.URL.RequestURI(), r.ContentLength, b, r.Header.Values("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Hop"), r.Header.Get("X-Keep"), r.Header.Get("Keep-Alive"),
			len(r.Header.Get("X-Request-Id")) > 0)
	})
	r := start(t, oneApp(s), Config{})
	rc := dialRouter(t, r)
	resp, body := rc.do(t, "POST /a%2Fb/c?q=1&r=%20 HTTP/1.1\r\nHost: w.example.com\r\nContent-Length: 5\r\n"+
		"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Keep: yes\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\nhello")
	want := `POST /a%2Fb/c?q=1&r=%20 len=5 body=hello xff=["127.0.0.1"] xfh="w.example.com" xfp="http" hop="" keep="yes" te="" id=true`
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q\nwant %q", resp.StatusCode, body, want)
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("X-End") != "kept" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("answer headers: %v", resp.Header)
	}
	// A POST without a body carries Content-Length: 0; HEAD has no body.
	if resp, body := rc.do(t, "POST /e HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || !strings.HasPrefix(body, "POST /e len=0 body=") {
		t.Fatalf("empty POST: %d %q", resp.StatusCode, body)
	}
	if resp, body := rc.do(t, "GET /after HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /after") {
		t.Fatalf("GET after: %d %q", resp.StatusCode, body)
	}
}

// An instance that closes its idle keep-alive connections (a restart, its
// idle timeout): the next request, a POST that must not be repeated, goes
// on a new connection and succeeds.
func TestFastPathSkipsConnectionsTheInstanceClosed(t *testing.T) {
	s, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Method) })
	r := start(t, oneApp(s), Config{})
	rc := dialRouter(t, r)
	for i := 0; i < 3; i++ {
		if resp, body := rc.do(t, "GET / HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || body != "GET" {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
		s.CloseClientConnections() // the instance drops its idle connections
		time.Sleep(peekAfter + 20*time.Millisecond)
		if resp, body := rc.do(t, "POST / HTTP/1.1\r\nHost: w.example.com\r\nContent-Length: 1\r\n\r\nx"); resp.StatusCode != 200 || body != "POST" {
			t.Fatalf("POST after the instance closed the idle connection: %d %q", resp.StatusCode, body)
		}
		s.CloseClientConnections()
		time.Sleep(peekAfter + 20*time.Millisecond)
	}
	if n := conns(); n != 6 {
		t.Fatalf("connections to the instance: %d, want 6", n)
	}
}

// A streamed answer (server-sent events) reaches the client as it is
// written, not when it ends.
func TestFastPathStreams(t *testing.T) {
	release := make(chan struct{})
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: two\n\n")
	})
	defer close(release)
	r := start(t, oneApp(s), Config{})
	rc := dialRouter(t, r)
	rc.c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(rc.c, "GET /events HTTP/1.1\r\nHost: w.example.com\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event before the stream ended: %q %v", line, err)
	}
}

// A client that goes away while the instance has not answered frees the
// exchange (and its connection to the instance).
func TestFastPathClientGoneEndsExchange(t *testing.T) {
	entered := make(chan struct{}, 1)
	gone := make(chan struct{}, 1)
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	done := make(chan AccessEntry, 1)
	r := start(t, oneApp(s), Config{AccessLog: func(e AccessEntry) { done <- e }})
	rc := dialRouter(t, r)
	io.WriteString(rc.c, "GET /slow HTTP/1.1\r\nHost: w.example.com\r\n\r\n")
	<-entered
	rc.c.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the instance's request was not ended when the client went away")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the router's handler did not return")
	}
}

// An answer the client cannot take in full (chunked, of unknown length)
// still arrives whole and in order.
func TestFastPathChunkedLargeAnswer(t *testing.T) {
	const size = 1 << 20
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1000)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		for n := 0; n < size; n += len(b) {
			w.Write(b[:min(len(b), size-n)])
		}
	})
	r := start(t, oneApp(s), Config{})
	rc := dialRouter(t, r)
	for i := 0; i < 2; i++ {
		resp, body := rc.do(t, "GET /big HTTP/1.1\r\nHost: w.example.com\r\n\r\n")
		if resp.StatusCode != 200 || len(body) != size || body[999] != byte('a'+999%26) || body[size-1] != byte('a'+(size-1)%1000%26) {
			t.Fatalf("big answer %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
}

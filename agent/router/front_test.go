package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawBackend is an instance that answers every request with a fixed
// byte string, whatever HTTP it is, and closes when close is set.
func rawBackend(t *testing.T, answer string, closeAfter bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func rawApp(a string) *Table {
	return &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w", Addr: a, Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}}}
}

func TestFrontPipelinedRequests(t *testing.T) {
	s, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	r := start(t, oneApp(s), Config{})
	rc := dialRouter(t, r)
	rc.c.SetDeadline(time.Now().Add(5 * time.Second))
	var reqs strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: w.example.com\r\n\r\n", i)
	}
	io.WriteString(rc.c, reqs.String())
	for i := 0; i < 10; i++ {
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != fmt.Sprintf("/%d", i) {
			t.Fatalf("answer %d: %q", i, b)
		}
	}
	if n := conns(); n != 1 {
		t.Fatalf("instance connections: %d", n)
	}
}

// A connection whose later request the fast server does not handle (an
// upgrade, HTTP/1.0, a chunked body, a request without a route) goes on
// through net/http with the same answers as before.
func TestFrontHandsOverWhatItDoesNotHandle(t *testing.T) {
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s body=%s xff=%s", r.Proto, r.Method, r.URL.Path, b, r.Header.Get("X-Forwarded-For"))
	})
	r := start(t, oneApp(s), Config{})
	for _, tc := range []struct{ name, req, want string }{
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: w.example.com\r\n\r\n", "HTTP/1.1 GET /old body= xff=127.0.0.1"},
		{"chunked body", "POST /c HTTP/1.1\r\nHost: w.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 POST /c body=hello xff=127.0.0.1"},
		{"bare line feeds", "GET /lf HTTP/1.1\nHost: w.example.com\n\n", "HTTP/1.1 GET /lf body= xff=127.0.0.1"},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: w.example.com\r\n\r\n", "HTTP/1.1 GET /a b body= xff=127.0.0.1"},
	} {
		rc := dialRouter(t, r)
		if resp, body := rc.do(t, "GET /first HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || !strings.HasPrefix(body, "HTTP/1.1 GET /first") {
			t.Fatalf("%s: first request: %d %q", tc.name, resp.StatusCode, body)
		}
		if resp, body := rc.do(t, tc.req); resp.StatusCode != 200 || body != tc.want {
			t.Fatalf("%s: %d %q, want %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	rc := dialRouter(t, r)
	if resp, _ := rc.do(t, "GET / HTTP/1.1\r\nHost: nowhere.example.com\r\n\r\n"); resp.StatusCode != 404 {
		t.Fatalf("no route: %d", resp.StatusCode)
	}
	// Smuggling attempts get net/http's 400, not a forward.
	for _, bad := range []string{
		"POST / HTTP/1.1\r\nHost: w.example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"GET / HTTP/1.1\r\nHost: w.example.com\r\nX-Bad : x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: w.example.com\r\nHost: other.example.com\r\n\r\n",
	} {
		rc := dialRouter(t, r)
		if resp, _ := rc.do(t, bad); resp.StatusCode != 400 {
			t.Fatalf("%q: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestFrontPassesAnswersThrough(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		closeAfter   bool
		status       int
		body         string
		trailer      string
	}{
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n", false, 200, "abcde", "5"},
		{"HTTP/1.0 closing", "HTTP/1.0 201 Created\r\nX-A: 1\r\n\r\nuntil close", true, 201, "until close", ""},
		{"204", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false, 204, "", ""},
		{"early hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, "ok", ""},
		{"bad header", "HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nok", true, 502, "", ""},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", true, 502, "", ""},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", true, 502, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, rawApp(rawBackend(t, tc.answer, tc.closeAfter)), Config{})
			rc := dialRouter(t, r)
			for i := 0; i < 2; i++ {
				resp, body := rc.do(t, "GET / HTTP/1.1\r\nHost: w.example.com\r\n\r\n")
				if resp.StatusCode != tc.status || body != tc.body || resp.Trailer.Get("X-Sum") != tc.trailer || resp.Header.Get("X-Request-Id") == "" {
					t.Fatalf("request %d: %d %q trailer %v headers %v", i, resp.StatusCode, body, resp.Trailer, resp.Header)
				}
				if resp.Close {
					rc = dialRouter(t, r)
				}
			}
		})
	}
}

// Requests that reach the fast server are counted and logged as those
// through net/http are.
func TestFrontStatsAndAccessLog(t *testing.T) {
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot); fmt.Fprint(w, "tea") })
	logged := make(chan AccessEntry, 10)
	now := time.Unix(1000, 0)
	r := start(t, oneApp(s), Config{AccessLog: func(e AccessEntry) { logged <- e }, Clock: func() time.Time { return now }})
	rc := dialRouter(t, r)
	resp, _ := rc.do(t, "GET /pot?x=1 HTTP/1.1\r\nHost: W.Example.com.:80\r\nX-Request-Id: abc\r\n\r\n")
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Request-Id") != "abc" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	e := <-logged
	if e.App != "acme/web" || e.Instance != "w" || e.Method != "GET" || e.Host != "w.example.com" || e.Path != "/pot" || e.Status != 418 || e.BytesOut != 3 || e.RequestID != "abc" {
		t.Fatalf("access entry %+v", e)
	}
	// After a body larger than the read buffer the entry still has the
	// request's method and path.
	body := strings.Repeat("b", 100<<10)
	if resp, _ := rc.do(t, "PUT /upload HTTP/1.1\r\nHost: w.example.com\r\nContent-Length: 102400\r\n\r\n"+body); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if e := <-logged; e.Method != "PUT" || e.Path != "/upload" {
		t.Fatalf("access entry after a large body %+v", e)
	}
	now = now.Add(2 * time.Second)
	st := r.TakeStats()
	if len(st) != 1 || st[0].Requests != 2 || st[0].Status4xx != 2 || st[0].BytesOut != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// A head that does not arrive in HeaderTimeout, and a connection idle
// for IdleTimeout, are closed.
func TestFrontTimeouts(t *testing.T) {
	s, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	r := start(t, oneApp(s), Config{HeaderTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	closedWithin := func(rc *rawClient, d time.Duration) bool {
		rc.c.SetReadDeadline(time.Now().Add(d))
		_, err := rc.br.ReadByte()
		return err == io.EOF
	}
	rc := dialRouter(t, r)
	io.WriteString(rc.c, "GET / HTTP/1.1\r\nHost: w.exa")
	if !closedWithin(rc, 3*time.Second) {
		t.Fatal("a partial head kept its connection open past HeaderTimeout")
	}
	rc = dialRouter(t, r)
	if resp, body := rc.do(t, "GET / HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	began := time.Now()
	if !closedWithin(rc, 3*time.Second) {
		t.Fatal("an idle connection stayed open past IdleTimeout")
	}
	if d := time.Since(began); d < 300*time.Millisecond {
		t.Fatalf("an idle connection was closed after %v, before IdleTimeout", d)
	}
}

// An instance that sends part of its status line and then pauses past the
// client watch (1 s) is still relayed whole.
func TestFrontSlowStatusLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 2")
		time.Sleep(watchAfter + 300*time.Millisecond)
		io.WriteString(c, "00 OK\r\nContent-Length: 4\r\n\r\nslow")
	}()
	r := start(t, rawApp(ln.Addr().String()), Config{})
	rc := dialRouter(t, r)
	if resp, body := rc.do(t, "GET / HTTP/1.1\r\nHost: w.example.com\r\n\r\n"); resp.StatusCode != 200 || body != "slow" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

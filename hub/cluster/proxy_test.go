package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestProxyToLeader: a follower hands a request, body and path included,
// to the leader's handler and copies its answer back; the leader itself
// declines. A small request goes through the follower's pipe to the
// leader, a large one as HTTP. HTTP forwarding reuses its copy buffers,
// which httputil.ReverseProxy would otherwise allocate (32 KB) for each
// request.
func TestProxyToLeader(t *testing.T) {
	nodes := apiCluster(t, func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Answered-By", name)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
		}
	})
	body := `{"image":"x"}`
	forward := func(n *node) (*httptest.ResponseRecorder, bool) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPut, "/v1/apps/web", strings.NewReader(body))
		return w, n.c.ProxyToLeader(w, r, "api")
	}
	var leader, follower *node
	waitFor(t, 15*time.Second, "a follower that forwards to the leader", func() bool {
		leader = leaderOf(nodes)
		if leader == nil {
			return false
		}
		for _, n := range nodes {
			if n == leader {
				continue
			}
			w, ok := forward(n)
			if ok && w.Code == http.StatusCreated {
				follower = n
				return true
			}
		}
		return false
	})
	if _, ok := forward(leader); ok {
		t.Fatal("the leader forwarded a request to itself")
	}
	w, _ := forward(follower)
	if got, want := w.Body.String(), `PUT /v1/apps/web {"image":"x"}`; got != want || w.Header().Get("X-Answered-By") != leader.cfg.NodeName {
		t.Fatalf("forwarded answer %q from %q, want %q from %q", got, w.Header().Get("X-Answered-By"), want, leader.cfg.NodeName)
	}
	if pipeSent(follower.c, leader.c.raftAddr) == 0 {
		t.Fatal("a small request did not go through the pipe")
	}
	// Sequential requests reuse one buffer: each returns it to the free
	// list and the next takes it again. Without the pool the list stays
	// empty; without reuse every request adds a new one (up to 64). These
	// bodies are too large for the pipe.
	body = `{"image":"x","pad":"` + strings.Repeat("x", maxWholeBody) + `"}`
	for len(proxyFree) > 0 {
		<-proxyFree
	}
	const n = 200
	for i, failed := 0, 0; i < n; {
		if w, ok := forward(follower); ok && w.Code == http.StatusCreated {
			i++
			continue
		} else if failed++; failed > 50 {
			t.Fatalf("forwarding keeps failing: %v %d %s", ok, w.Code, w.Body)
		}
		waitFor(t, 15*time.Second, "a leader again", func() bool { return leaderOf(nodes) != nil })
		for _, o := range nodes {
			if o != leaderOf(nodes) {
				follower = o
			}
		}
	}
	if free := len(proxyFree); free < 1 || free > 4 {
		t.Fatalf("after %d forwarded requests the free list holds %d copy buffers, want 1 to 4", n, free)
	}
}

// TestWholeBodyForwardsInOneWrite: a small request body read whole lets
// the forwarding transport write the request, headers and body, in one
// write (one TLS record between nodes); a streamed body costs two. Bodies
// past maxWholeBody still stream, and every body arrives intact; a body
// shorter than its length is an error.
func TestWholeBodyForwardsInOneWrite(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer backend.Close()
	var writes atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return writeCounter{c, &writes}, err
	}}
	defer tr.CloseIdleConnections()
	addr := strings.TrimPrefix(backend.URL, "http://")
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forward(w, r, addr, "api", tr, nil) // as ProxyToLeader does on a follower, without a pipe
	}))
	defer front.Close()
	for _, size := range []int{250, 3000, maxWholeBody, maxWholeBody + 1, 1 << 20} {
		body := strings.Repeat("x", size)
		before := writes.Load()
		resp, err := http.Post(front.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != body {
			t.Fatalf("%d bytes: %d came back", size, len(got))
		}
		if n := writes.Load() - before; size <= 3000 && n != 1 { // fits the transport's 4 KB write buffer
			t.Fatalf("a %d-byte request was forwarded in %d writes, want 1", size, n)
		}
	}
	short := httptest.NewRequest(http.MethodPut, "/v1/apps/web", nil)
	short.ContentLength, short.Body = 10, io.NopCloser(strings.NewReader("abc"))
	if _, err := smallBody(short); err == nil {
		t.Fatal("a body shorter than its length was read without an error")
	}
}

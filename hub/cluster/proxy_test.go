package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProxyToLeader: a follower hands a request, body and path included,
// to the leader's handler and copies its answer back; the leader itself
// declines. Forwarding reuses its copy buffers, which
// httputil.ReverseProxy would otherwise allocate (32 KB) for each request.
func TestProxyToLeader(t *testing.T) {
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	nodes := cluster3(t, key)
	for _, n := range nodes {
		name := n.cfg.NodeName
		err := n.c.Handle(Raw("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Answered-By", name)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
		})))
		if err != nil {
			t.Fatal(err)
		}
	}
	forward := func(n *node) (*httptest.ResponseRecorder, bool) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPut, "/v1/apps/web", strings.NewReader(`{"image":"x"}`))
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
	// Sequential requests reuse one buffer: each returns it to the free
	// list and the next takes it again. Without the pool the list stays
	// empty; without reuse every request adds a new one (up to 64).
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

package router

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestHoldUntilAnInstanceIsReady: a request for an app without a ready
// instance but with a hold waits, is counted as held (what wakes the app
// on the hub), and is served once a table brings an instance; without a
// hold it is a 503 at once; a hold that runs out is a 503; beyond
// MaxHeld a request is a 503 with Retry-After at once.
func TestHoldUntilAnInstanceIsReady(t *testing.T) {
	b := backend(t, "woke")
	empty := func(hold time.Duration) *Table {
		return &Table{Version: 1, Apps: []App{{Key: "acme/zero", Hold: hold}}, HTTP: []HTTPRoute{{Host: "zero.test", App: "acme/zero"}}}
	}
	r := start(t, empty(3*time.Second), Config{MaxHeld: 1})

	type answer struct {
		code int
		body string
		took time.Duration
	}
	held := make(chan answer, 1)
	go func() {
		start := time.Now()
		h, _ := r.Addr()
		req, _ := http.NewRequest("GET", "http://"+h.String()+"/", nil)
		req.Host = "zero.test"
		resp, err := client.Do(req)
		if err != nil {
			held <- answer{0, err.Error(), time.Since(start)}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		held <- answer{resp.StatusCode, string(b), time.Since(start)}
	}()
	waitHeld(t, r, 1)
	// A second request finds the queue full.
	resp, _ := get(t, r, "GET", "zero.test", "/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("beyond MaxHeld: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	time.Sleep(300 * time.Millisecond)
	if err := r.Apply(&Table{Version: 2, Apps: []App{{Key: "acme/zero", Hold: 3 * time.Second, Backends: []Backend{{Instance: "i1", Addr: addr(b), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "zero.test", App: "acme/zero"}}}); err != nil {
		t.Fatal(err)
	}
	a := <-held
	if a.code != 200 || a.body != "woke" || a.took < 300*time.Millisecond {
		t.Fatalf("held request: %d %q after %s, want 200 from the new instance after the table came", a.code, a.body, a.took)
	}
	time.Sleep(1100 * time.Millisecond) // the second ends
	var heldN uint64
	for _, s := range r.TakeStats() {
		if s.App == "acme/zero" {
			heldN += s.Held
		}
	}
	if heldN != 1 {
		t.Fatalf("held count %d, want 1", heldN)
	}

	// A hold that runs out, and no hold at all.
	if err := r.Apply(empty(400 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if resp, _ := get(t, r, "GET", "zero.test", "/"); resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("a hold that ran out: %d after %s, want 503 after 400ms", resp.StatusCode, time.Since(start))
	}
	if err := r.Apply(empty(0)); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if resp, _ := get(t, r, "GET", "zero.test", "/"); resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) > time.Second {
		t.Fatalf("no hold: %d after %s, want 503 at once", resp.StatusCode, time.Since(start))
	}
	if r.Held() != 0 {
		t.Fatalf("%d requests still counted as held", r.Held())
	}
}

func waitHeld(t *testing.T, r *Router, n int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r.Held() == n {
			return
		}
	}
	t.Fatalf("%d held, want %d", r.Held(), n)
}

package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitBurst waits for the router's burst signal.
func waitBurst(t *testing.T, r *Router, within time.Duration) []Burst {
	t.Helper()
	select {
	case <-r.Bursts():
		return r.TakeBursts()
	case <-time.After(within):
		return nil
	}
}

// TestSignalWithinTheSecond: once an app's requests within the current
// second reach its signal rate over the time since the first of them,
// the router signals a burst at once (the second's counts are not even
// collectable yet), once per app per second; below the rate, or without
// a rate, it says nothing.
func TestSignalWithinTheSecond(t *testing.T) {
	web := backend(t, "web")
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).Add(600 * time.Millisecond).UnixNano())
	r := start(t, &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w", Addr: addr(web), Version: 1}}},
		{Key: "acme/calm", Backends: []Backend{{Instance: "c", Addr: addr(web), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}, {Host: "c.example.com", App: "acme/calm"}}},
		Config{Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	r.SetSignalRates(map[string]uint32{"acme/web": 10})
	// The first request 600 ms into the second (the quiet part before
	// it does not count), two more 300 ms later: 2 gaps in 300 ms, under
	// 10/s. The app without a rate gets no signal whatever its load.
	get(t, r, "GET", "w.example.com", "/")
	now.Store(time.Unix(1000, 0).Add(900 * time.Millisecond).UnixNano())
	get(t, r, "GET", "w.example.com", "/")
	get(t, r, "GET", "w.example.com", "/")
	for range 20 {
		get(t, r, "GET", "c.example.com", "/")
	}
	if b := waitBurst(t, r, 300*time.Millisecond); b != nil {
		t.Fatalf("signalled under the rate: %+v", b)
	}
	// The 4th: 3 gaps in 300 ms, 10/s.
	get(t, r, "GET", "w.example.com", "/")
	b := waitBurst(t, r, 5*time.Second)
	if len(b) != 1 || b[0] != (Burst{App: "acme/web", Unix: 1000, Requests: 4, Elapsed: 300 * time.Millisecond, Rate: 10}) {
		t.Fatalf("bursts: %+v, want acme/web's 4 requests in 300 ms of second 1000", b)
	}
	if got := r.TakeStats(); len(got) != 0 {
		t.Fatalf("the signal came after the second was over: %+v", got)
	}
	// Once per second.
	for range 10 {
		get(t, r, "GET", "w.example.com", "/")
	}
	if b := waitBurst(t, r, 300*time.Millisecond); b != nil {
		t.Fatalf("a second signal within the second: %+v", b)
	}
	// The next second signals again. Requests at once are no rate yet
	// (measured over at least 250 ms) unless they are a whole second's
	// worth.
	now.Store(time.Unix(1001, 0).Add(10 * time.Millisecond).UnixNano())
	for range 9 {
		get(t, r, "GET", "w.example.com", "/")
	}
	if b := waitBurst(t, r, 300*time.Millisecond); b != nil {
		t.Fatalf("9 requests 10 ms into a second signalled: %+v", b)
	}
	get(t, r, "GET", "w.example.com", "/")
	if b := waitBurst(t, r, 5*time.Second); len(b) != 1 || b[0].Unix != 1001 || b[0].Requests != 10 || b[0].Elapsed != 0 {
		t.Fatalf("bursts in the next second: %+v", b)
	}
	// Without rates, nothing.
	r.SetSignalRates(nil)
	now.Store(time.Unix(1002, 0).Add(500 * time.Millisecond).UnixNano())
	for range 20 {
		get(t, r, "GET", "w.example.com", "/")
	}
	if b := waitBurst(t, r, 300*time.Millisecond); b != nil {
		t.Fatalf("signalled without a rate: %+v", b)
	}
}

// TestSignalWakesOnAHeldRequest: a request held for an app without an
// instance counts toward its rate: at a rate of 1 (an app at zero), the
// first held request is signalled while it waits.
func TestSignalWakesOnAHeldRequest(t *testing.T) {
	r := start(t, &Table{Version: 1, Apps: []App{{Key: "acme/zero", Hold: 2 * time.Second}}, HTTP: []HTTPRoute{{Host: "zero.test", App: "acme/zero"}}}, Config{})
	r.SetSignalRates(map[string]uint32{"acme/zero": 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, r, "GET", "zero.test", "/")
	}()
	b := waitBurst(t, r, time.Second)
	if len(b) != 1 || b[0].App != "acme/zero" || b[0].Requests != 1 {
		t.Fatalf("bursts while a request is held: %+v", b)
	}
	select {
	case <-done:
		t.Fatal("the request was no longer held when the signal came")
	default:
	}
	<-done
}

// TestSignalCountsArrivals: a burst that saturates the app's only
// instance is signalled while its requests wait for answers: they count
// when they arrive, not when the instance gets round to them.
func TestSignalCountsArrivals(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Add(1)
		<-release
		fmt.Fprint(w, "late")
	}))
	defer slow.Close()
	r := start(t, &Table{Apps: []App{{Key: "acme/slow", Backends: []Backend{{Instance: "s", Addr: addr(slow), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "slow.test", App: "acme/slow"}}},
		// One instant: on a loaded machine the requests could straddle
		// a second, each part short of the rate.
		Config{Clock: func() time.Time { return time.Unix(1000, 0) }})
	const n = 8
	r.SetSignalRates(map[string]uint32{"acme/slow": n})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get(t, r, "GET", "slow.test", "/")
		}()
	}
	defer func() { close(release); wg.Wait() }()
	b := waitBurst(t, r, 5*time.Second)
	if len(b) != 1 || b[0].App != "acme/slow" || b[0].Requests != n {
		t.Fatalf("bursts while %d requests wait for the instance (%d reached it, none answered): %+v", n, arrived.Load(), b)
	}
}

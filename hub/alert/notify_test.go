package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// delivery is one request a test receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is an httptest webhook answering with the given statuses in
// turn (the last one from then on) and recording what it gets.
type receiver struct {
	mu       sync.Mutex
	got      []delivery
	statuses []int
	srv      *httptest.Server
}

func newReceiver(t testing.TB, statuses ...int) *receiver {
	t.Helper()
	rc := &receiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{r.Header.Clone(), body})
		code := rc.statuses[min(len(rc.got), len(rc.statuses))-1]
		rc.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "answer "+strconv.Itoa(code))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// serve starts a webhook with a custom handler and returns its URL.
func serve(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func transition(t testing.TB) Transition {
	return Transition{
		Rule:  Rule{ID: "r1", Tenant: "acme", App: "web", Metric: MetricCPU, Above: th(t, "80%"), For: Duration(time.Minute)},
		State: Firing, Value: 91.5, Since: at(0), At: at(60),
	}
}

// fast retries quickly.
var fast = Notifier{Base: time.Millisecond, Max: 4 * time.Millisecond}

func TestNotifySignedBody(t *testing.T) {
	rc := newReceiver(t, http.StatusNoContent)
	n := fast
	if err := n.Notify(context.Background(), rc.srv.URL, "s3cret", transition(t)); err != nil {
		t.Fatal(err)
	}
	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	d := got[0]
	if err := Verify("s3cret", d.header, d.body, time.Now(), time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The documented scheme, computed independently of the package.
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(d.header.Get(HeaderTimestamp) + "." + string(d.body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); d.header.Get(HeaderSignature) != want {
		t.Fatalf("signature %q, want %q", d.header.Get(HeaderSignature), want)
	}
	if ts, err := strconv.ParseInt(d.header.Get(HeaderTimestamp), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Fatalf("timestamp %q is not unix seconds of now", d.header.Get(HeaderTimestamp))
	}
	if err := Verify("wrong", d.header, d.body, time.Now(), time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify with the wrong secret: %v, want ErrSignature", err)
	}
	if h := d.header; h.Get("Content-Type") != "application/json" || h.Get(HeaderEvent) != "alert.firing" {
		t.Fatalf("headers: %v", h)
	}
	var note Notification
	if err := json.Unmarshal(d.body, &note); err != nil {
		t.Fatal(err)
	}
	if note.ID == "" || d.header.Get(HeaderDelivery) != note.ID {
		t.Fatalf("delivery header %q, body id %q", d.header.Get(HeaderDelivery), note.ID)
	}
	var fields map[string]any
	_ = json.Unmarshal(d.body, &fields)
	want := map[string]any{
		"id": note.ID, "rule_id": "r1", "tenant": "acme", "app": "web", "metric": "cpu",
		"condition": "above 80%", "for": "1m0s", "state": "firing", "value": 91.5,
		"since": "2030-01-02T03:04:05Z", "at": "2030-01-02T03:05:05Z",
	}
	if len(fields) != len(want) {
		t.Fatalf("body %s: fields %v, want %v", d.body, fields, want)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Fatalf("body %s: %s = %v, want %v", d.body, k, fields[k], v)
		}
	}

	// Resolved event, no secret: no signature, which Verify refuses.
	tr := transition(t)
	tr.State = Resolved
	if err := n.Notify(context.Background(), rc.srv.URL, "", tr); err != nil {
		t.Fatal(err)
	}
	d = rc.deliveries()[1]
	if d.header.Get(HeaderEvent) != "alert.resolved" || d.header.Get(HeaderSignature) != "" {
		t.Fatalf("unsigned resolved headers: %v", d.header)
	}
	if d.header.Get(HeaderDelivery) == note.ID {
		t.Fatal("firing and resolved share a delivery id")
	}
	if err := Verify("s3cret", d.header, d.body, time.Now(), time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify of an unsigned delivery: %v", err)
	}
}

func TestNotifyRetriesThenSucceeds(t *testing.T) {
	rc := newReceiver(t, 503, 503, 429, 200)
	n := fast
	if err := n.Notify(context.Background(), rc.srv.URL, "k", transition(t)); err != nil {
		t.Fatal(err)
	}
	got := rc.deliveries()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4", len(got))
	}
	for i, d := range got {
		if id := d.header.Get(HeaderDelivery); id != got[0].header.Get(HeaderDelivery) || id == "" {
			t.Fatalf("attempt %d: delivery id %q, first was %q", i, id, got[0].header.Get(HeaderDelivery))
		}
		if string(d.body) != string(got[0].body) {
			t.Fatalf("attempt %d: body changed", i)
		}
		if err := Verify("k", d.header, d.body, time.Now(), time.Minute); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// The id is the transition's: sending it again keeps it.
	if err := n.Notify(context.Background(), rc.srv.URL, "k", transition(t)); err != nil {
		t.Fatal(err)
	}
	if id := rc.deliveries()[4].header.Get(HeaderDelivery); id != got[0].header.Get(HeaderDelivery) {
		t.Fatalf("re-sent transition has id %q, want %q", id, got[0].header.Get(HeaderDelivery))
	}
}

func TestNotifyGivesUp(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int
		attempts int
		frag     string
	}{
		{"400 is permanent", []int{400}, 1, `attempt 1: 400 Bad Request: "answer 400"`},
		{"redirect is permanent", []int{302}, 1, "attempt 1: 302 Found"},
		{"503 until attempts run out", []int{503}, 3, "attempt 3: 503 Service Unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, c.statuses...)
			n := fast
			n.Attempts = 3
			err := n.Notify(context.Background(), rc.srv.URL+"/tok3n", "", transition(t))
			if err == nil || !strings.Contains(err.Error(), c.frag) {
				t.Fatalf("Notify: %v, want it to contain %q", err, c.frag)
			}
			if got := len(rc.deliveries()); got != c.attempts {
				t.Fatalf("%d attempts, want %d", got, c.attempts)
			}
		})
	}
}

func TestNotifyNetworkErrorHidesURL(t *testing.T) {
	rc := newReceiver(t, 200)
	url := rc.srv.URL + "/tok3n"
	rc.srv.Close() // nothing listens any more
	n := fast
	n.Attempts = 2
	err := n.Notify(context.Background(), url, "", transition(t))
	if err == nil || !strings.Contains(err.Error(), "attempt 2") {
		t.Fatalf("Notify: %v, want a failure after 2 attempts", err)
	}
	if strings.Contains(err.Error(), "tok3n") {
		t.Fatalf("error leaks the URL: %v", err)
	}
}

func TestNotifyStopsOnCancel(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		url := serve(t, func(w http.ResponseWriter, r *http.Request) {
			// The first attempt fails; the hour's wait must end early.
			time.AfterFunc(50*time.Millisecond, cancel)
			w.WriteHeader(503)
		})
		n := Notifier{Base: time.Hour, Max: time.Hour}
		tr, done := transition(t), make(chan error, 1)
		go func() { done <- n.Notify(ctx, url, "", tr) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Notify: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Notify still waiting 10s after its context ended")
		}
	})
	t.Run("during a request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		url := serve(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body) // lets the server notice the client leaving
			cancel()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
		n := fast
		err := n.Notify(ctx, url, "", transition(t))
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "attempt 1") {
			t.Fatalf("Notify: %v, want context.Canceled at attempt 1", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		rc := newReceiver(t, 200)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := fast
		if err := n.Notify(ctx, rc.srv.URL, "", transition(t)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Notify: %v", err)
		}
		if len(rc.deliveries()) != 0 {
			t.Fatal("posted with a cancelled context")
		}
	})
}

func TestNotifyRetryAfterCappedAtMax(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(429)
		}
	})
	n := Notifier{Base: time.Millisecond, Max: 50 * time.Millisecond}
	if err := n.Notify(context.Background(), url, "", transition(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d attempts, want 2", len(times))
	}
	// Retry-After made the wait Max, not Base, and not an hour.
	if d := times[1].Sub(times[0]); d < 50*time.Millisecond || d > 10*time.Second {
		t.Fatalf("waited %v between attempts, want Max (50ms)", d)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_900_000_000, 0)
	signed := func(ts int64, secret string) http.Header {
		h := http.Header{}
		s := strconv.FormatInt(ts, 10)
		h.Set(HeaderTimestamp, s)
		h.Set(HeaderSignature, "sha256="+sign(secret, s, body))
		return h
	}
	cases := []struct {
		name   string
		header http.Header
		body   []byte
		want   error
	}{
		{"good", signed(now.Unix(), "k"), body, nil},
		{"4 minutes old", signed(now.Unix()-240, "k"), body, nil},
		{"6 minutes old", signed(now.Unix()-360, "k"), body, ErrTimestamp},
		{"6 minutes ahead", signed(now.Unix()+360, "k"), body, ErrTimestamp},
		{"far past", signed(-1<<62, "k"), body, ErrTimestamp},
		{"wrong secret", signed(now.Unix(), "K"), body, ErrSignature},
		{"tampered body", signed(now.Unix(), "k"), []byte(`{"id":"y"}`), ErrSignature},
		{"no timestamp", func() http.Header { h := signed(now.Unix(), "k"); h.Del(HeaderTimestamp); return h }(), body, ErrTimestamp},
		{"timestamp changed", func() http.Header {
			h := signed(now.Unix(), "k")
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10))
			return h
		}(), body, ErrSignature},
		{"no signature", func() http.Header { h := signed(now.Unix(), "k"); h.Del(HeaderSignature); return h }(), body, ErrSignature},
		{"not hex", func() http.Header { h := signed(now.Unix(), "k"); h.Set(HeaderSignature, "sha256=zz"); return h }(), body, ErrSignature},
		{"other scheme", func() http.Header {
			h := signed(now.Unix(), "k")
			h.Set(HeaderSignature, "sha1="+sign("k", h.Get(HeaderTimestamp), body))
			return h
		}(), body, ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify("k", c.header, c.body, now, 0)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
	if err := Verify("", signed(now.Unix(), ""), body, now, time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify without a secret: %v", err)
	}
}

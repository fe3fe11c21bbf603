package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	Name, Data string
}

// sseStream reads a text/event-stream answer event by event.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
}

// openStream GETs an event stream through the browser's session; the
// answer must be 200.
func (b *browser) openStream(path string) *sseStream {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	hc := *b.hc
	hc.Timeout = 0 // a stream lasts
	resp, err := hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		b.t.Fatalf("GET %s answered %d (%s), want an event stream", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 1024)}
	go func() {
		defer close(s.events)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimSuffix(l, "\n")
			switch {
			case l == "":
				if ev.Data != "" || ev.Name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(l, "event: "):
				ev.Name = l[len("event: "):]
			case strings.HasPrefix(l, "data: "):
				ev.Data = l[len("data: "):]
			}
		}
	}()
	b.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.resp.Body.Close() }

// next returns the next event other than a keepalive, or fails the test
// after the timeout.
func (s *sseStream) next(t *testing.T, timeout time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return sseEvent{}
}

// line decodes a line event.
func (ev sseEvent) line(t *testing.T) apitypes.LogLine {
	t.Helper()
	if ev.Name != "" {
		t.Fatalf("got event %q (%s), want a log line", ev.Name, ev.Data)
	}
	var l apitypes.LogLine
	if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
		t.Fatalf("a line event that is not a log line: %q: %v", ev.Data, err)
	}
	return l
}

// logFeed appends lines to a hub node's log store, as the log service
// keeps an agent's.
type logFeed struct {
	t     testing.TB
	store *logstore.Store
	mu    sync.Mutex
	seq   map[string]uint64
}

func newLogFeed(t testing.TB, e *env) *logFeed {
	return &logFeed{t: t, store: e.hubs.Nodes[0].Hub().LogStore(), seq: map[string]uint64{}}
}

func (f *logFeed) add(tenant, app, instance string, lines ...string) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	recs := make([]logstore.Record, len(lines))
	for i, l := range lines {
		f.seq[instance]++
		recs[i] = logstore.Record{Time: time.Now(), Tenant: tenant, App: app, Instance: instance, Stream: "stdout", Seq: f.seq[instance], Line: l, Primary: true}
	}
	if _, err := f.store.Append(recs); err != nil {
		f.t.Fatal(err)
	}
}

// goroutinesIn counts the goroutines whose stack has any of these frames.
func goroutinesIn(frames ...string) int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range frames {
			if strings.Contains(g, f) {
				n++
				break
			}
		}
	}
	return n
}

// The frames of a followed log view: the console's stream and the API's
// follow behind it.
var streamFrames = []string{"console.(*Console).logStream", "console.readLines", "logs.(*Service).Read"}

func TestLogStreamFollowsNewLinesWithFilters(t *testing.T) {
	e := newEnv(t)
	feed := newLogFeed(t, e)
	feed.add("alpha", "web-alpha", "web-alpha-1", "old needle 1", "old hay")
	b := newBrowser(t, e.url)
	b.login(e.admin)

	before := goroutinesIn(streamFrames...)
	s := b.openStream("/ui/apps/alpha/web-alpha/logs/stream?grep=needle")
	if ev := s.next(t, 30*time.Second); ev.Name != "reset" {
		t.Fatalf("the stream starts with %+v, want a reset", ev)
	}
	// It starts with the newest matching lines.
	if l := s.next(t, 30*time.Second).line(t); l.Line != "old needle 1" || l.Instance != "web-alpha-1" {
		t.Fatalf("the first line is %+v", l)
	}
	// Then follows: lines stored after it opened arrive, filtered.
	feed.add("alpha", "web-alpha", "web-alpha-1", "new hay", "new needle 2")
	feed.add("alpha", "web-alpha", "web-alpha-2", "new needle 3")
	feed.add("beta", "web-beta", "web-beta-1", "needle of another tenant")
	got := map[string]bool{}
	for len(got) < 2 {
		got[s.next(t, 30*time.Second).line(t).Line] = true
	}
	if !got["new needle 2"] || !got["new needle 3"] {
		t.Fatalf("followed lines: %v, want new needle 2 and 3", got)
	}
	select {
	case ev := <-s.events:
		if ev.Name == "" {
			t.Fatalf("a line the filter leaves out arrived: %s", ev.Data)
		}
	case <-time.After(time.Second):
	}

	// The instance filter.
	si := b.openStream("/ui/apps/alpha/web-alpha/logs/stream?instance=web-alpha-2")
	if ev := si.next(t, 30*time.Second); ev.Name != "reset" {
		t.Fatalf("the stream starts with %+v", ev)
	}
	if l := si.next(t, 30*time.Second).line(t); l.Instance != "web-alpha-2" || l.Line != "new needle 3" {
		t.Fatalf("the instance's stream starts with %+v", l)
	}
	feed.add("alpha", "web-alpha", "web-alpha-1", "not this instance")
	feed.add("alpha", "web-alpha", "web-alpha-2", "this instance")
	if l := si.next(t, 30*time.Second).line(t); l.Line != "this instance" {
		t.Fatalf("the instance's stream followed with %+v", l)
	}

	// The client goes away: the stream and the API's follow behind it end.
	if n := goroutinesIn(streamFrames...); n <= before {
		t.Fatalf("%d goroutines of open streams, want more than %d", n, before)
	}
	s.close()
	si.close()
	hubtest.WaitUntil(t, 30*time.Second, "the streams' goroutines gone", func() error {
		if n := goroutinesIn(streamFrames...); n > before {
			return fmt.Errorf("%d goroutines of streams left (%d before)", n, before)
		}
		return nil
	})
}

func TestLogStreamRespectsTheSession(t *testing.T) {
	e := newEnv(t)
	feed := newLogFeed(t, e)
	feed.add("alpha", "web-alpha", "web-alpha-1", "alpha's line")
	feed.add("beta", "web-beta", "web-beta-1", "beta's line")

	// Signed out: 401, nothing streamed.
	b := newBrowser(t, e.url)
	resp, body := b.get("/ui/apps/alpha/web-alpha/logs/stream")
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "alpha's line") {
		t.Fatalf("signed out, the stream answered %d:\n%s", resp.StatusCode, body)
	}

	// A viewer may read its tenant's logs, as through the API, and not
	// another tenant's.
	v := newBrowser(t, e.url)
	v.login(e.viewer)
	s := v.openStream("/ui/apps/alpha/web-alpha/logs/stream")
	if ev := s.next(t, 30*time.Second); ev.Name != "reset" {
		t.Fatalf("the viewer's stream starts with %+v", ev)
	}
	if l := s.next(t, 30*time.Second).line(t); l.Line != "alpha's line" {
		t.Fatalf("the viewer's stream: %+v", l)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/ui/apps/beta/web-beta/logs/stream", http.StatusNotFound},
		{"/ui/apps/alpha/nope/logs/stream", http.StatusNotFound},
		{"/ui/apps/alpha/web-alpha/logs/stream?grep=" + strings.Repeat("x", 1025), http.StatusBadRequest},
	} {
		resp, body := v.get(tc.path)
		if resp.StatusCode != tc.code || strings.Contains(body, "beta's line") {
			t.Errorf("GET %.60s answered %d, want %d:\n%s", tc.path, resp.StatusCode, tc.code, body)
		}
	}

	// Signing out ends the open stream: an end event, then the close.
	_, page := v.get("/ui/apps")
	if resp, _ := v.post("/ui/logout", url.Values{"csrf": {csrf(t, page)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout answered %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("the stream closed without an end event")
			}
			if ev.Name == "end" {
				if _, ok := <-s.events; ok {
					t.Fatal("the stream went on after its end event")
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("the stream outlived its session by 30 s")
		}
	}
}

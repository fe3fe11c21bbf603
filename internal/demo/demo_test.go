package demo

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHandler(t *testing.T) {
	h := Handler(Config{App: "hello", Instance: "hello-3f2a"})
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/", 200, "Hello from Wharf: app hello, instance hello-3f2a\n"},
		{"GET", "/healthz", 200, "ok\n"},
		{"GET", "/nope", 404, ""},
		{"POST", "/", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", rec.Body.String(), tt.body)
			}
		})
	}
}

func TestHandlerDefaults(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(Config{}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Body.String(); got != "Hello from Wharf: app demo, instance unknown\n" {
		t.Fatalf("body %q", got)
	}
}

// TestRequestLogBounded: a line per request up to MaxLogged, then one line
// saying that logging stopped, then nothing.
func TestRequestLogBounded(t *testing.T) {
	tests := []struct {
		name      string
		max, reqs int
		lines     int
	}{
		{"under the bound", 3, 2, 2},
		{"at the bound", 3, 3, 3},
		{"over the bound", 3, 10, 4},
		{"off", -1, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log lockedBuffer
			h := Handler(Config{App: "hello", Log: &log, MaxLogged: tt.max})
			for range tt.reqs {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
			}
			lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
			if log.String() == "" {
				lines = nil
			}
			if len(lines) != tt.lines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.lines, log.String())
			}
			if tt.lines > 0 && (!strings.HasPrefix(lines[0], "GET /healthz ") || !strings.HasSuffix(lines[0], " 200")) {
				t.Fatalf("first line %q, want GET /healthz ... 200", lines[0])
			}
			if tt.reqs > tt.max && tt.max > 0 && !strings.Contains(lines[len(lines)-1], "not logged") {
				t.Fatalf("last line %q does not say logging stopped", lines[len(lines)-1])
			}
		})
	}
}

// TestServeStops: Serve answers until its context ends, then returns nil
// after logging its start and stop.
func TestServeStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Config{App: "hello", Instance: "i-1", Log: &log}) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "app hello, instance i-1") {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	out := log.String()
	for _, want := range []string{"demo app hello (instance i-1) listening on", "GET / ", "demo app hello (instance i-1) stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still listening after Serve returned")
	}
}

func TestRunNeedsAddr(t *testing.T) {
	if err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("Run without an address succeeded")
	}
}

package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemoCommand: wharf demo serves on $PORT, names the app and instance
// the agent puts in its environment, and exits 0 when its context ends (as
// on SIGTERM).
func TestDemoCommand(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	t.Setenv("PORT", strconv.Itoa(port))
	t.Setenv("WHARF_APP", "hello")
	t.Setenv("WHARF_INSTANCE", "hello-1a2b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncWriter
	code := make(chan int, 1)
	go func() { code <- Run(ctx, []string{"demo"}, nil, &out, io.Discard, nil, nil) }()
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf demo does not answer on $PORT: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, "app hello, instance hello-1a2b") {
		t.Fatalf("GET / = %q", body)
	}
	cancel()
	select {
	case c := <-code:
		if c != ExitOK {
			t.Fatalf("exit code %d after the context ended, want 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wharf demo did not stop when its context ended")
	}
	if s := out.String(); !strings.Contains(s, "listening on") || !strings.Contains(s, "GET / ") {
		t.Fatalf("output lacks the startup or request line:\n%s", s)
	}
}

// syncWriter is a buffer safe for a writer and a reader in two goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientClosedIsNotAFailure: a request given up by its client (a
// watcher that disconnects while its blocking query waits) is answered
// 499 and not logged as the server's failure; a cancellation the client
// did not cause stays a 500, logged.
func TestClientClosedIsNotAFailure(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	logs.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httptest.NewRequest("GET", "/v1/apps/web/instances?index=5", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	f.api.writeError(w, gone, fmt.Errorf("read barrier: %w", context.Canceled))
	if w.Code != statusClientClosed || logs.Len() != 0 {
		t.Fatalf("client gone: status %d, logged %q; want %d and nothing logged", w.Code, logs.String(), statusClientClosed)
	}
	w = httptest.NewRecorder()
	f.api.writeError(w, httptest.NewRequest("GET", "/v1/apps/web/instances", nil), fmt.Errorf("read barrier: %w", context.Canceled))
	if w.Code != 500 || !strings.Contains(logs.String(), "request failed") {
		t.Fatalf("cancelled with the client there: status %d, logged %q; want 500, logged", w.Code, logs.String())
	}
}

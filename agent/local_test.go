package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/agent/identity"
)

func TestLocalEndpoints(t *testing.T) {
	a := &Agent{id: &identity.Keeper{}}
	hubs := []string{"127.0.0.1:7481"}
	a.hubs.Store(&hubs)
	srv := httptest.NewServer(a.localHandler())
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz while disconnected: %d %s", code, body)
	}
	a.connected.Store(true)
	a.acked.Add(7)
	code, body = get("/healthz")
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK || !h.Connected || h.Acked != 7 || len(h.Hubs) != 1 {
		t.Fatalf("/healthz while connected: %d %s %v", code, body, err)
	}
	code, body = get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, "wharf_agent_connected 1") || !strings.Contains(body, "wharf_agent_heartbeats_acked_total 7") {
		t.Fatalf("/metrics: %d %s", code, body)
	}
}

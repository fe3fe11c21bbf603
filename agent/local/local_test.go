package local

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEndpoints: /healthz is 503 until connected, then 200 with the
// agent's health; /metrics shows the same, and what only it shows.
func TestEndpoints(t *testing.T) {
	var cur atomic.Pointer[Status]
	cur.Store(&Status{Health: Health{Hubs: []string{"127.0.0.1:7481"}}})
	srv := httptest.NewServer(Handler(func() Status { return *cur.Load() }))
	defer srv.Close()

	code, body := get(t, srv.URL+"/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz while disconnected: %d %s", code, body)
	}
	notAfter := time.Unix(1_900_000_000, 0)
	cur.Store(&Status{Health: Health{HostID: "h-1", Connected: true, Acked: 7, Hubs: []string{"127.0.0.1:7481"}, Hub: "127.0.0.1:7481",
		GossipPeers: 2, LogsUnacked: 5}, CertRotations: 3, CertNotAfter: notAfter})
	code, body = get(t, srv.URL+"/healthz")
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK || !h.Connected || h.Acked != 7 || len(h.Hubs) != 1 ||
		h.HostID != "h-1" || h.Hub != "127.0.0.1:7481" || h.GossipPeers != 2 || h.LogsUnacked != 5 {
		t.Fatalf("/healthz while connected: %d %s %v", code, body, err)
	}
	code, body = get(t, srv.URL+"/metrics")
	for _, want := range []string{"wharf_agent_connected 1", "wharf_agent_heartbeats_acked_total 7", "wharf_agent_cert_rotations_total 3",
		"wharf_agent_cert_not_after_seconds 1.9e+09", "wharf_agent_gossip_peers 2", "wharf_agent_logs_unacked 5"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q: %d %s", want, code, body)
		}
	}
}

// TestServe: the endpoints are served on the address until ctx ends; a
// taken address is an error naming the flag.
func TestServe(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	status := func() Status { return Status{Health: Health{Connected: true}} }
	if err := Serve(context.Background(), addr, status, log); err == nil || !strings.Contains(err.Error(), "--local-addr") {
		t.Fatalf("Serve on a taken address: %v", err)
	}
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, status, log) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after ctx ended: %v", err)
	}
}

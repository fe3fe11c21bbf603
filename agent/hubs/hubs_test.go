package hubs

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/pkg/wire"
)

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []string
		want []string
	}{
		{"nothing new", []string{"h1:7481"}, []string{"h1:7481"}, []string{"h1:7481"}},
		{"appended in order", []string{"h2:7481"}, []string{"h1:7481", "h2:7481", "h3:7481"}, []string{"h2:7481", "h1:7481", "h3:7481"}},
		{"empty and repeated ignored", nil, []string{"", "h1:7481", "h1:7481"}, []string{"h1:7481"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := merge(tc.a, tc.b); !slices.Equal(got, tc.want) {
				t.Fatalf("merge(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// TestWelcomeLearntAndRemembered: the hub nodes a Welcome names are
// tried after the configured ones, and a list opened again on the same
// dir (a restarted agent) still has them.
func TestWelcomeLearntAndRemembered(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := Open(dir, []string{"a:7481"}, log)
	c := control.New()
	l.Register(c)
	welcome := &wire.Envelope{Msg: &wire.Envelope_Welcome{Welcome: &wire.Welcome{HubAddrs: []string{"a:7481", "b:7481", "c:7481"}}}}
	if err := c.Dispatch(context.Background(), control.Inbound{Env: welcome}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:7481", "b:7481", "c:7481"}
	if got := l.All(); !slices.Equal(got, want) {
		t.Fatalf("after Welcome: %v, want %v", got, want)
	}
	if got := Open(dir, []string{"z:7481"}, log).All(); !slices.Equal(got, append([]string{"z:7481"}, want...)) {
		t.Fatalf("reopened with another configured hub: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, File)); err != nil {
		t.Fatal(err)
	}
}

// TestHeartbeatAckTeachesNewNodes: a hub node added after the Welcome,
// named by a heartbeat ack, is learnt and remembered; an ack naming none
// changes nothing.
func TestHeartbeatAckTeachesNewNodes(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := Open(dir, []string{"a:7481"}, log)
	c := control.New()
	l.Register(c)
	ack := func(addrs ...string) {
		t.Helper()
		env := &wire.Envelope{Msg: &wire.Envelope_HeartbeatAck{HeartbeatAck: &wire.HeartbeatAck{Seq: 10, HubAddrs: addrs}}}
		if err := c.Dispatch(context.Background(), control.Inbound{Env: env}); err != nil {
			t.Fatal(err)
		}
	}
	ack()
	if got := l.All(); !slices.Equal(got, []string{"a:7481"}) {
		t.Fatalf("after an ack naming no hub: %v", got)
	}
	ack("a:7481", "d:7481")
	want := []string{"a:7481", "d:7481"}
	if got := l.All(); !slices.Equal(got, want) {
		t.Fatalf("after an ack naming a new node: %v, want %v", got, want)
	}
	if got := Open(dir, nil, log).All(); !slices.Equal(got, want) {
		t.Fatalf("reopened: %v, want the learnt node remembered", got)
	}
}

// TestNothingNewWritesNothing: a Welcome naming only known hubs leaves
// the data dir alone.
func TestNothingNewWritesNothing(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir, []string{"a:7481"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Learn([]string{"a:7481", ""})
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("data dir holds %d files, want none", len(ents))
	}
}

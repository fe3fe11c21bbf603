package workload

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/agent/logship"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// oneLine writes one line of its own to the buffer, as the router's
// access lines do.
type oneLine struct{ hostID chan string }

func (o oneLine) WriteLines(ctx context.Context, buf *logship.Buffer, hostID string) {
	buf.Append("t/a/router-"+hostID, "router", "GET /")
	o.hostID <- hostID
	<-ctx.Done()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAssignmentsRunAndReport: assignments from the hub are kept and
// acknowledged, their instances run on the driver, the first report of a
// session holds them all, and other lines reach the log buffer.
func TestAssignmentsRunAndReport(t *testing.T) {
	host := fake.NewHost()
	lines := oneLine{hostID: make(chan string, 1)}
	w, err := New(Config{HostID: "h-1", Driver: fake.New(host), DataDir: t.TempDir(), DrainDelay: -1, Lines: lines,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	c := control.New()
	w.Register(c)

	var ack *wire.AssignmentAck
	m := &wire.Assignments{Version: 1, Instances: []*wire.Instance{{Id: "i1", App: "a", Tenant: "t", Version: 1, Image: "x"}}}
	in := control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_Assignments{Assignments: m}},
		Reply: func(e *wire.Envelope) error { ack = e.GetAssignmentAck(); return nil }}
	if err := c.Dispatch(ctx, in); err != nil {
		t.Fatal(err)
	}
	if ack.GetVersion() != 1 || w.Applied() != 1 {
		t.Fatalf("ack %v, applied %d; want version 1", ack, w.Applied())
	}
	waitFor(t, "the instance running", func() bool { return slices.Contains(host.Running(), "i1") })
	feeds := c.Feeds()
	if len(feeds) != 1 || feeds[0].Conn == nil || feeds[0].Changed == nil {
		t.Fatalf("feeds %+v: want one with log shipping and status changes", feeds)
	}
	r := feeds[0].First().GetStatusReport()
	if r == nil || len(r.Instances) != 1 || r.Instances[0].Id != "i1" {
		t.Fatalf("first report %v, want i1", r)
	}
	if got := <-lines.hostID; got != "h-1" {
		t.Fatalf("lines written for host %q", got)
	}
	waitFor(t, "the line in the buffer", func() bool { st, _ := w.LogStats(); return st.Unacked >= 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

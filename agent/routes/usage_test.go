package routes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/router"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// sums adds up a report's requests and egress per app.
func sums(r *wire.UsageReport) map[string][2]uint64 {
	out := map[string][2]uint64{}
	for _, c := range r.GetCounts() {
		x := out[c.App]
		out[c.App] = [2]uint64{x[0] + c.Requests, x[1] + c.EgressBytes}
	}
	return out
}

// TestLedgerKeepsUntilAcked: counts go into one report at a time, per app
// and metered hour (the hub's); the report stays, with its seq, until its
// ack; what is counted meanwhile waits for the next report; a restart from
// the data dir keeps the report in flight and the open counts.
func TestLedgerKeepsUntilAcked(t *testing.T) {
	dir := t.TempDir()
	l, err := openLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.setHour(10)
	l.add([]router.AppSecond{{App: "t/a", Unix: 100, Requests: 3, BytesOut: 30}, {App: "t/a", Unix: 109, Requests: 1, BytesOut: 10},
		{App: "t/a", Unix: 110, Requests: 2, BytesOut: 20}, {App: "t/b", Unix: 101, Requests: 5}, {App: "t/c", Unix: 101}})
	r1, err := l.report()
	if err != nil || r1 == nil {
		t.Fatalf("report: %v %v", r1, err)
	}
	want := map[string]bool{"t/a@100": true, "t/a@110": true, "t/b@100": true}
	if len(r1.Counts) != len(want) {
		t.Fatalf("counts %v, want one per app and hour of %v", r1.Counts, want)
	}
	for _, c := range r1.Counts {
		if !want[fmt.Sprintf("%s@%d", c.App, c.HourUnix)] {
			t.Fatalf("count %v not per app and hour", c)
		}
	}
	if s := sums(r1); s["t/a"] != [2]uint64{6, 60} || s["t/b"] != [2]uint64{5, 0} {
		t.Fatalf("sums %v", s)
	}
	l.add([]router.AppSecond{{App: "t/a", Unix: 120, Requests: 7, BytesOut: 70}})
	if again, _ := l.report(); again != r1 {
		t.Fatal("a report in flight was replaced before its ack")
	}
	l.acked(r1.Seq + 1) // not its seq: nothing
	if l.unacked() != 6+5+7 {
		t.Fatalf("%d requests unacked, want 18", l.unacked())
	}
	if err := l.save(); err != nil {
		t.Fatal(err)
	}

	// Restarted from the data dir: the same report, then the rest.
	l2, err := openLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	r1b, _ := l2.report()
	if r1b.Seq != r1.Seq || fmt.Sprint(sums(r1b)) != fmt.Sprint(sums(r1)) {
		t.Fatalf("after a restart: %v, want %v", r1b, r1)
	}
	l2.acked(r1.Seq)
	r2, _ := l2.report()
	if r2 == nil || r2.Seq != r1.Seq+1 || sums(r2)["t/a"] != [2]uint64{7, 70} {
		t.Fatalf("the next report: %v", r2)
	}
	l2.acked(r2.Seq)
	if r, _ := l2.report(); r != nil || l2.unacked() != 0 {
		t.Fatalf("all acked, yet %v (%d unacked)", r, l2.unacked())
	}
	// A new ledger (no file) starts above any seq a clock-started one used.
	if err := os.Remove(filepath.Join(dir, usageFile)); err != nil {
		t.Fatal(err)
	}
	if l3, _ := openLedger(dir); l3.seq <= r2.Seq {
		t.Fatalf("a fresh ledger starts at seq %d, not above %d", l3.seq, r2.Seq)
	}
}

// TestLedgerBounded: past maxUsageKeys open counts, the oldest hour's
// move into the next hour: none is lost.
func TestLedgerBounded(t *testing.T) {
	l, _ := openLedger("")
	l.setHour(1)
	var total uint64
	for i := range maxUsageKeys + 50 {
		l.add([]router.AppSecond{{App: "t/a", Unix: int64(1000 + i), Requests: 1}})
		total++
	}
	if len(l.open) > maxUsageKeys {
		t.Fatalf("%d open counts, bound %d", len(l.open), maxUsageKeys)
	}
	r, _ := l.report()
	if got := sums(r)["t/a"][0]; got != total {
		t.Fatalf("%d requests reported, %d counted", got, total)
	}
}

// TestUsageFeedResends: a session sends the report once (and again only
// after resendAfter); a new session sends it again; an ack lets the next
// report go.
func TestUsageFeedResends(t *testing.T) {
	r, err := New(Config{Logger: discard, HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := control.New()
	r.Register(c)
	r.usage.add([]router.AppSecond{{App: "t/a", Unix: time.Now().Unix() - 1, Requests: 4}})
	// session starts a session with a hub node whose Welcome names its
	// metered hour (0: a node that takes no usage reports) and returns
	// its usage feed.
	session := func(hourSecs int64) control.Feed {
		welcome := control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_Welcome{Welcome: &wire.Welcome{UsageHourSeconds: hourSecs}}}}
		if err := c.Dispatch(context.Background(), welcome); err != nil {
			t.Fatal(err)
		}
		feeds := c.Feeds()
		return feeds[len(feeds)-1]
	}
	now := time.Now()
	if m := session(0).Tick(now); m != nil {
		t.Fatalf("sent to a hub node that takes no usage reports: %v", m)
	}
	s1 := session(3600)
	first := s1.Tick(now).GetUsageReport()
	if first == nil || sums(first)["t/a"][0] != 4 {
		t.Fatalf("first tick: %v", first)
	}
	if m := s1.Tick(now.Add(time.Second)); m != nil {
		t.Fatalf("sent again within the session before resendAfter: %v", m)
	}
	if m := s1.Tick(now.Add(resendAfter + time.Second)).GetUsageReport(); m.GetSeq() != first.Seq {
		t.Fatalf("after resendAfter: %v, want seq %d again", m, first.Seq)
	}
	s2 := session(5) // a new session, to another hub node
	if m := s2.Tick(now).GetUsageReport(); m.GetSeq() != first.Seq {
		t.Fatalf("new session: %v, want seq %d again", m, first.Seq)
	}
	ack := control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_UsageAck{UsageAck: &wire.UsageAck{Seq: first.Seq}}}}
	if err := c.Dispatch(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	if m := s2.Tick(now.Add(time.Second)); m != nil {
		t.Fatalf("nothing left to report, yet %v", m)
	}
	r.usage.add([]router.AppSecond{{App: "t/a", Unix: 1003, Requests: 2}})
	if m := s2.Tick(now.Add(2 * time.Second)).GetUsageReport(); m.GetSeq() != first.Seq+1 || m.Counts[0].HourUnix != 1000 {
		t.Fatalf("the next report, in the hub's 5 s hours: %v", m)
	}
}

package logstore

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flood appends n records of about 230 bytes to tenant/app, at times
// from sec on, instance inst from seq first.
func flood(t testing.TB, s *Store, tenant, app, inst string, first uint64, sec, n int) {
	t.Helper()
	line := strings.Repeat("z", 200)
	var batch []Record
	for i := range n {
		batch = append(batch, recIn(tenant, app, inst, first+uint64(i), sec+i, line))
		if len(batch) == 100 || i == n-1 {
			mustAppend(t, s, len(batch), batch...)
			batch = batch[:0]
		}
	}
}

func mustEnforce(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Enforce(); err != nil {
		t.Fatalf("enforce: %v", err)
	}
}

func TestRetentionBySizePerTenant(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.Default.MaxBytes = 256 << 10
	cfg.SegmentBytes = 16 << 10
	s := openT(t, cfg)
	// A quiet tenant with old logs, then a flood of 1 MiB from another
	// tenant's two apps, newer than all of them.
	flood(t, s, "quiet", "web", "q", 1, 0, 500)
	quiet := queryAll(t, s, "quiet", "web")
	flood(t, s, "loud", "web", "l1", 1, 1000, 2500)
	flood(t, s, "loud", "api", "l2", 1, 1000, 2500)
	mustEnforce(t, s)

	st := s.Stats()
	if got := queryAll(t, s, "quiet", "web"); len(got) != len(quiet) {
		t.Fatalf("quiet tenant lost records: %d of %d left", len(got), len(quiet))
	}
	loud := st.TenantBytes["loud"]
	if loud > cfg.Default.MaxBytes || loud < cfg.Default.MaxBytes-2*cfg.SegmentBytes {
		t.Fatalf("loud tenant holds %d bytes, want at most %d and not much less", loud, cfg.Default.MaxBytes)
	}
	if dir := dirSize(t, filepath.Join(cfg.Dir, "loud")); dir != loud {
		t.Fatalf("loud tenant's files hold %d bytes, stats say %d", dir, loud)
	}
	// The oldest went first, from both apps: each keeps its newest.
	for _, app := range []string{"web", "api"} {
		got := queryAll(t, s, "loud", app)
		if len(got) == 0 || len(got) == 2500 || got[len(got)-1].Seq != 2500 {
			t.Fatalf("loud/%s: %d records left, last %+v", app, len(got), got[len(got)-1])
		}
		if want := uint64(2500 - len(got) + 1); got[0].Seq != want {
			t.Fatalf("loud/%s: oldest left is seq %d, want %d (a contiguous newest suffix)", app, got[0].Seq, want)
		}
	}
}

func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestRetentionByAge(t *testing.T) {
	cfg, clk := testConfig(t, "")
	cfg.Default.MaxAge = time.Hour
	cfg.SegmentBytes = 8 << 10
	s := openT(t, cfg)
	// Records an hour apart in time: at 0s.. and at 3600s...
	flood(t, s, "t1", "web", "old", 1, 0, 100)
	flood(t, s, "t1", "api", "old", 1, 0, 100)
	flood(t, s, "t1", "web", "new", 1, 3600, 100)
	mustEnforce(t, s)
	if n := len(queryAll(t, s, "t1", "web")); n != 200 {
		t.Fatalf("nothing is old yet, but %d of 200 left", n)
	}
	clk.Advance(time.Hour + 100*time.Second) // cutoff at 100s: the first 100 records end at 99s
	mustEnforce(t, s)
	// Whole segments go: old records sharing a segment with new ones
	// stay, at most a segment's worth, and they are the newest old ones.
	got := queryAll(t, s, "t1", "web")
	oldLeft := len(got) - 100
	if oldLeft < 0 || oldLeft > 40 || got[oldLeft].Instance != "new" {
		t.Fatalf("after age retention: %d records, %d old", len(got), oldLeft)
	}
	if oldLeft > 0 && got[0].Seq != uint64(100-oldLeft+1) {
		t.Fatalf("oldest old record left is seq %d, want %d", got[0].Seq, 100-oldLeft+1)
	}
	if got := queryAll(t, s, "t1", "api"); len(got) != 0 {
		t.Fatalf("api kept %d old records", len(got))
	}
	// The emptied app's directory is gone.
	if _, err := os.Stat(filepath.Join(cfg.Dir, "t1", "api")); !os.IsNotExist(err) {
		t.Fatalf("api dir still there: %v", err)
	}
	clk.Advance(time.Hour)
	mustEnforce(t, s)
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 || st.Segments != 0 {
		t.Fatalf("stats after everything expired: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "t1")); !os.IsNotExist(err) {
		t.Fatalf("tenant dir still there: %v", err)
	}
	// The store keeps working: the tenant comes back.
	mustAppend(t, s, 1, rec("new", 101, 3*3600, "back"))
	equalKeys(t, "back", queryAll(t, s, "t1", "web"), []string{"new#101:back"})
}

func TestRetentionTenantOverride(t *testing.T) {
	cfg, clk := testConfig(t, "")
	cfg.SegmentBytes = 64 << 10
	var calls atomic.Int64
	cfg.TenantLimits = func(tenant string) Retention {
		calls.Add(1)
		switch tenant {
		case "small":
			return Retention{MaxBytes: 64 << 10} // MaxAge: Default's
		case "short":
			return Retention{MaxAge: time.Minute}
		}
		return Retention{}
	}
	s := openT(t, cfg)
	// Limits of a new tenant are fetched by the next Enforce.
	for _, tenant := range []string{"small", "short", "other"} {
		flood(t, s, tenant, "web", "i", 1, 0, 1)
	}
	mustEnforce(t, s)
	for _, tenant := range []string{"small", "short", "other"} {
		flood(t, s, tenant, "web", "i", 2, 1, 999) // ~230 KiB each
	}
	clk.Advance(time.Minute + 1000*time.Second)
	mustEnforce(t, s)
	if calls.Load() == 0 {
		t.Fatal("TenantLimits not called")
	}
	st := s.Stats()
	// small: a quarter of 64 KiB per segment, at most 64 KiB kept.
	if b := st.TenantBytes["small"]; b > 64<<10 || b < 32<<10 {
		t.Errorf("small tenant holds %d bytes, want (32 KiB, 64 KiB]", b)
	}
	if b := st.TenantBytes["short"]; b != 0 {
		t.Errorf("short tenant holds %d bytes, want 0 (all older than a minute)", b)
	}
	if n := len(queryAll(t, s, "other", "web")); n != 1000 {
		t.Errorf("other tenant kept %d of 1000 records", n)
	}
	if n := len(queryAll(t, s, "small", "web")); n == 0 || n >= 1000 {
		t.Errorf("small tenant kept %d of 1000 records", n)
	}
}

func TestDedupSurvivesRetentionAndRestart(t *testing.T) {
	cfg, clk := testConfig(t, "")
	cfg.Default.MaxAge = time.Hour
	cfg.SegmentBytes = 8 << 10
	s := openT(t, cfg)
	flood(t, s, "t1", "web", "a", 1, 0, 300)
	mustAppend(t, s, 1, recIn("t2", "web", "keep", 1, 2*3600, "newest"))
	flood(t, s, "t1", "web", "b", 1, 0, 10) // the store's last positions, about to be deleted
	lastPos := s.Stats().LastPos
	// The agents are still there, resending (an instance with no Append
	// for longer than MaxAge would be forgotten: TestIdleInstancesForgotten).
	// Background passes may run at any time; none changes the outcome.
	clk.Advance(30 * time.Minute)
	mustAppend(t, s, 0, rec("a", 300, 299, "a 300"), rec("b", 10, 9, "b 10"))
	clk.Advance(30*time.Minute + 400*time.Second)
	mustEnforce(t, s)
	if n := len(queryAll(t, s, "t1", "web")); n != 0 {
		t.Fatalf("%d records survived retention", n)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, stateName)); err != nil {
		t.Fatalf("no state file after retention: %v", err)
	}
	s = reopen(t, s, cfg)
	// The agent resends: all duplicates.
	for _, batch := range [][]Record{
		{rec("a", 1, 4000, "again")},
		{rec("a", 300, 4000, "again")},
		{rec("b", 10, 4000, "again")},
	} {
		mustAppend(t, s, 0, batch...)
	}
	mustAppend(t, s, 2, rec("a", 301, 4000, "new a"), rec("b", 11, 4000, "new b"))
	got := queryAll(t, s, "t1", "web")
	equalKeys(t, "after retention and restart", got, []string{"a#301:new a", "b#11:new b"})
	if got[0].Pos <= lastPos {
		t.Fatalf("pos %d after restart, but %d was handed out before", got[0].Pos, lastPos)
	}
}

func TestIdleInstancesForgotten(t *testing.T) {
	cfg, clk := testConfig(t, "")
	cfg.Default.MaxAge = time.Hour
	s := openT(t, cfg)
	// Background passes may run between any two steps; the clock moves so
	// that none changes the outcome.
	mustAppend(t, s, 1, rec("gone", 5, 0, "old"))
	mustAppend(t, s, 1, rec("alive", 5, 0, "old"))
	clk.Advance(50 * time.Minute)
	mustAppend(t, s, 1, rec("alive", 6, 7200, "new")) // keeps the segment young
	clk.Advance(20 * time.Minute)
	mustEnforce(t, s)
	// "gone" had no Append for 70 minutes, but it still has records.
	if st := s.Stats(); st.Instances != 2 || st.Records != 3 {
		t.Fatalf("stats %+v, want 2 instances and 3 records", st)
	}
	clk.Advance(80 * time.Minute)                        // t0+2h30m
	mustAppend(t, s, 0, rec("alive", 6, 7200, "resend")) // activity, no record
	clk.Advance(40 * time.Minute)                        // t0+3h10m: the segment (newest at t0+2h) expires
	mustEnforce(t, s)
	if st := s.Stats(); st.Records != 0 || st.Instances != 1 {
		t.Fatalf("stats %+v, want no records and only \"alive\" remembered", st)
	}
	s = reopen(t, s, cfg)
	mustAppend(t, s, 0, rec("alive", 6, 7200, "resend"))
	// A forgotten instance starts over (any resend of it would be older
	// than MaxAge and deleted at the next pass).
	mustAppend(t, s, 1, rec("gone", 1, 4*3600, "restarted"))
}

func TestAppendPastMaxBytesTriggersEnforce(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.Default.MaxBytes = 64 << 10
	s := openT(t, cfg)
	flood(t, s, "t1", "web", "i", 1, 0, 1000) // ~230 KiB
	waitFor(t, "background retention", func() bool {
		return s.Stats().TenantBytes["t1"] <= cfg.Default.MaxBytes
	})
	got := queryAll(t, s, "t1", "web")
	if len(got) == 0 || got[len(got)-1].Seq != 1000 {
		t.Fatalf("newest records not kept")
	}
}

func TestSegmentSizeClamped(t *testing.T) {
	for _, tc := range []struct {
		maxBytes, segBytes, want int64
	}{
		{0, 0, DefaultSegmentBytes},
		{1 << 20, 0, 256 << 10},
		{1 << 20, 100, MinSegmentBytes},
		{1 << 10, 0, MinSegmentBytes},
	} {
		cfg := Config{Dir: "x", Default: Retention{MaxBytes: tc.maxBytes}, SegmentBytes: tc.segBytes}
		if err := cfg.normalize(); err != nil {
			t.Fatal(err)
		}
		if cfg.SegmentBytes != tc.want {
			t.Errorf("%+v: segment bytes %d, want %d", tc, cfg.SegmentBytes, tc.want)
		}
	}
	for _, bad := range []Config{{}, {Dir: "x", SegmentBytes: -1}, {Dir: "x", Default: Retention{MaxAge: -1}}} {
		if err := bad.normalize(); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

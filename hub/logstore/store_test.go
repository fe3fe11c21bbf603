package logstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAppendQueryRoundTrip(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	in := []Record{
		{Time: t0.Add(time.Nanosecond), Tenant: "t1", App: "web", Instance: "i-1", Stream: "stdout", Seq: 1, Line: "hello"},
		{Time: t0.Add(2 * time.Second), Tenant: "t1", App: "web", Instance: "i-1", Stream: "stderr", Seq: 2, Line: "a long line, first piece", Partial: true},
		{Time: t0.Add(3 * time.Second), Tenant: "t1", App: "web", Instance: "i-1", Stream: "stderr", Seq: 3, Line: ""},
		{Time: t0.Add(4 * time.Second), Tenant: "t1", App: "web", Instance: "i-2", Stream: "router", Seq: 99, Line: "GET / 200", Pos: 12345},
		{Time: t0.Add(-time.Hour), Tenant: "t1", App: "web", Instance: "i-2", Stream: "event", Seq: 100, Line: "bytes \x00\xff are kept"},
	}
	mustAppend(t, s, len(in), in...)
	got := queryAll(t, s, "t1", "web")
	if len(got) != len(in) {
		t.Fatalf("got %d records, want %d", len(got), len(in))
	}
	// Time order: the last input (an hour early) comes first.
	want := append([]Record{in[4]}, in[:4]...)
	for i := range want {
		w, g := want[i], got[i]
		if !g.Time.Equal(w.Time) || g.Tenant != w.Tenant || g.App != w.App || g.Instance != w.Instance ||
			g.Stream != w.Stream || g.Seq != w.Seq || g.Line != w.Line || g.Partial != w.Partial {
			t.Errorf("record %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
	// Positions follow append order, from 1; the input Pos is ignored.
	for i, wantPos := range []uint64{5, 1, 2, 3, 4} {
		if got[i].Pos != wantPos {
			t.Errorf("record %d pos %d, want %d", i, got[i].Pos, wantPos)
		}
	}
	if _, last := mustQuery(t, s, Query{Tenant: "t1", App: "web"}); last != 5 {
		t.Errorf("last pos %d, want 5", last)
	}
	st := s.Stats()
	if st.Records != 5 || st.Segments != 1 || st.LastPos != 5 || st.Bytes <= 0 || st.TenantBytes["t1"] != st.Bytes || st.Instances != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestQueryTimeOrderAcrossInstances(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	// Three instances, appended in separate calls, with interleaved times
	// and ties: order is (time, instance, seq).
	mustAppend(t, s, 3, rec("c", 1, 5, "c1"), rec("c", 2, 5, "c2"), rec("c", 3, 1, "c3"))
	mustAppend(t, s, 2, rec("a", 1, 5, "a1"), rec("a", 2, 7, "a2"))
	mustAppend(t, s, 3, rec("b", 1, 0, "b1"), rec("b", 2, 5, "b2"), rec("b", 3, 9, "b3"))
	equalKeys(t, "time order", queryAll(t, s, "t1", "web"), []string{
		"b#1:b1", "c#3:c3", "a#1:a1", "b#2:b2", "c#1:c1", "c#2:c2", "a#2:a2", "b#3:b3",
	})
}

func TestQueryFilters(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	// i-1 logs at even seconds, i-2 at odd ones: 0..19.
	for sec := range 20 {
		inst := fmt.Sprintf("i-%d", sec%2+1)
		line := fmt.Sprintf("line %d", sec)
		if sec%5 == 0 {
			line += " ERROR"
		}
		mustAppend(t, s, 1, rec(inst, uint64(sec/2+1), sec, line))
	}
	mustAppend(t, s, 1, recIn("t1", "api", "i-9", 1, 3, "other app ERROR"))
	mustAppend(t, s, 1, recIn("t2", "web", "i-1", 100, 3, "other tenant ERROR"))
	// Pos of "line N" is N+1.
	lines := func(secs ...int) []string {
		out := make([]string, len(secs))
		for i, sec := range secs {
			line := fmt.Sprintf("line %d", sec)
			if sec%5 == 0 {
				line += " ERROR"
			}
			out[i] = fmt.Sprintf("i-%d#%d:%s", sec%2+1, sec/2+1, line)
		}
		return out
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"all", Query{}, lines(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)},
		{"instance", Query{Instance: "i-2"}, lines(1, 3, 5, 7, 9, 11, 13, 15, 17, 19)},
		{"grep", Query{Grep: "ERROR"}, lines(0, 5, 10, 15)},
		{"grep is case sensitive", Query{Grep: "error"}, nil},
		{"since inclusive", Query{Since: at(17)}, lines(17, 18, 19)},
		{"until exclusive", Query{Until: at(2)}, lines(0, 1)},
		{"range", Query{Since: at(5), Until: at(8)}, lines(5, 6, 7)},
		{"after pos", Query{AfterPos: 17}, lines(17, 18, 19)},
		{"after last pos", Query{AfterPos: 22}, nil},
		{"limit keeps newest", Query{Limit: 3}, lines(17, 18, 19)},
		{"limit with filters", Query{Instance: "i-1", Grep: "ERROR", Limit: 1}, lines(10)},
		{"everything", Query{Instance: "i-1", Since: at(2), Until: at(15), Grep: "line 1", AfterPos: 11, Limit: 2}, lines(12, 14)},
		{"unknown instance", Query{Instance: "i-3"}, nil},
		{"unknown app", Query{App: "nope"}, nil},
		{"unknown tenant", Query{Tenant: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Tenant = cmpOr(q.Tenant, "t1")
			q.App = cmpOr(q.App, "web")
			got, last := mustQuery(t, s, q)
			equalKeys(t, "query", got, tc.want)
			if last != 22 {
				t.Errorf("last pos %d, want 22", last)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestQueryLimitAcrossSegmentsAndBlocks(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.SegmentBytes = 200 << 10 // several segments of several blocks
	s := openT(t, cfg)
	const n = 6000
	line := strings.Repeat("x", 150)
	var batch []Record
	for i := range n {
		// Three instances; times mostly increasing with some jitter so
		// blocks overlap in time.
		sec := i - (i%7)*3
		batch = append(batch, rec(fmt.Sprintf("i-%d", i%3), uint64(i/3+1), sec, fmt.Sprintf("%d %s", i, line)))
		if len(batch) == 500 {
			mustAppend(t, s, len(batch), batch...)
			batch = batch[:0]
		}
	}
	if st := s.Stats(); st.Segments < 4 || st.Records != n {
		t.Fatalf("stats %+v, want several segments", st)
	}
	all := queryAll(t, s, "t1", "web")
	if len(all) != n {
		t.Fatalf("got %d records, want %d", len(all), n)
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if hitCmp(&hit{t: a.Time.UnixNano(), r: a}, &hit{t: b.Time.UnixNano(), r: b}) >= 0 {
			t.Fatalf("records %d and %d out of order: %+v, %+v", i-1, i, a, b)
		}
	}
	for _, limit := range []int{1, 10, 333, 2500} {
		got, _ := mustQuery(t, s, Query{Tenant: "t1", App: "web", Limit: limit})
		equalKeys(t, fmt.Sprintf("limit %d", limit), got, keys(all[n-limit:]))
	}
	got, _ := mustQuery(t, s, Query{Tenant: "t1", App: "web", Limit: 50, Instance: "i-1", Until: all[3000].Time})
	var want []Record
	for _, r := range all {
		if r.Instance == "i-1" && r.Time.Before(all[3000].Time) {
			want = append(want, r)
		}
	}
	equalKeys(t, "limit with until", got, keys(want[len(want)-50:]))
	if _, _, err := s.Query(Query{Tenant: "t1", App: "web"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustQuery(t, s, Query{Tenant: "t1", App: "web"}); len(got) != n {
		t.Fatalf("default limit returned %d, want %d", len(got), n)
	}
}

func TestDefaultLimit(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	batch := make([]Record, DefaultQueryLimit+5)
	for i := range batch {
		batch[i] = rec("i", uint64(i+1), i, "l")
	}
	mustAppend(t, s, len(batch), batch...)
	got, _ := mustQuery(t, s, Query{Tenant: "t1", App: "web"})
	if len(got) != DefaultQueryLimit || got[0].Seq != 6 {
		t.Fatalf("got %d records from seq %d, want %d from 6", len(got), got[0].Seq, DefaultQueryLimit)
	}
}

func TestDedup(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	mustAppend(t, s, 3, rec("a", 1, 1, "a1"), rec("a", 2, 2, "a2"), rec("a", 3, 3, "a3"))
	// A resend of an unacknowledged suffix plus new lines: only new ones.
	mustAppend(t, s, 2, rec("a", 2, 2, "a2"), rec("a", 3, 3, "a3"), rec("a", 4, 4, "a4"), rec("a", 5, 5, "a5"))
	// A lower seq after a higher one is dropped, also within one call.
	mustAppend(t, s, 1, rec("a", 7, 7, "a7"), rec("a", 6, 6, "a6"), rec("a", 7, 7, "a7 again"))
	mustAppend(t, s, 0, rec("a", 6, 6, "a6"))
	// Another instance, and the same instance name in another app or
	// tenant, have their own seqs.
	mustAppend(t, s, 1, rec("b", 1, 1, "b1"))
	mustAppend(t, s, 1, recIn("t1", "api", "a", 1, 1, "api a1"))
	mustAppend(t, s, 1, recIn("t2", "web", "a", 1, 1, "t2 a1"))
	equalKeys(t, "web", queryAll(t, s, "t1", "web"), []string{"a#1:a1", "b#1:b1", "a#2:a2", "a#3:a3", "a#4:a4", "a#5:a5", "a#7:a7"})
	equalKeys(t, "api", queryAll(t, s, "t1", "api"), []string{"a#1:api a1"})
	equalKeys(t, "t2", queryAll(t, s, "t2", "web"), []string{"a#1:t2 a1"})
	// Gaps are fine (seqs lost on the agent): only "above the highest".
	mustAppend(t, s, 1, rec("a", 100, 100, "a100"))
}

func TestInvalidStoresNothing(t *testing.T) {
	long := strings.Repeat("n", MaxNameBytes+1)
	for _, tc := range []struct {
		name   string
		mutate func(*Record)
		want   string
	}{
		{"empty tenant", func(r *Record) { r.Tenant = "" }, "empty tenant"},
		{"empty app", func(r *Record) { r.App = "" }, "empty app"},
		{"empty instance", func(r *Record) { r.Instance = "" }, "empty instance"},
		{"long tenant", func(r *Record) { r.Tenant = long }, "tenant of 254 bytes"},
		{"long app", func(r *Record) { r.App = long }, "app of 254 bytes"},
		{"long instance", func(r *Record) { r.Instance = long }, "instance of 254 bytes"},
		{"long stream", func(r *Record) { r.Stream = long }, "stream of 254 bytes"},
		{"slash in app", func(r *Record) { r.App = "../../etc" }, "contains '/'"},
		{"slash in tenant", func(r *Record) { r.Tenant = "a/b" }, "contains '/'"},
		{"dotdot tenant", func(r *Record) { r.Tenant = ".." }, `tenant ".."`},
		{"dot app", func(r *Record) { r.App = "." }, `app "."`},
		{"NUL in instance", func(r *Record) { r.Instance = "i\x00" }, "contains NUL"},
		{"zero seq", func(r *Record) { r.Seq = 0 }, "zero seq"},
		{"long line", func(r *Record) { r.Line = strings.Repeat("x", MaxLineBytes+1) }, "line of 1048577 bytes"},
		{"zero time", func(r *Record) { r.Time = time.Time{} }, "out of range"},
		{"time past int64 ns", func(r *Record) { r.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := testConfig(t, "")
			s := openT(t, cfg)
			mustAppend(t, s, 1, rec("a", 1, 1, "first"))
			batch := []Record{rec("a", 2, 2, "ok"), rec("b", 1, 2, "ok"), rec("a", 3, 3, "bad"), rec("a", 4, 4, "ok")}
			tc.mutate(&batch[2])
			if err := batch[2].Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want ErrInvalid about %s", err, tc.want)
			}
			if err := batch[1].Validate(); err != nil {
				t.Fatalf("Validate of a valid record: %v", err)
			}
			n, err := s.Append(batch)
			if n != 0 || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "record 2") {
				t.Fatalf("append = %d, %v; want 0 and ErrInvalid about record 2: %s", n, err, tc.want)
			}
			equalKeys(t, "after invalid", queryAll(t, s, "t1", "web"), []string{"a#1:first"})
			if st := s.Stats(); st.LastPos != 1 || st.Records != 1 || st.Instances != 1 {
				t.Fatalf("stats after invalid append: %+v", st)
			}
			// Nothing was consumed: the valid records go in afterwards.
			mustAppend(t, s, 2, batch[0], batch[1])
		})
	}
	// The longest valid names and line are accepted.
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	max := strings.Repeat("m", MaxNameBytes)
	r := Record{Time: t0, Tenant: max, App: max, Instance: max, Stream: max, Seq: 1<<64 - 1, Line: strings.Repeat("l", MaxLineBytes)}
	mustAppend(t, s, 1, r)
	got := queryAll(t, s, max, max)
	if len(got) != 1 || got[0].Line != r.Line || got[0].Seq != r.Seq || got[0].Stream != max {
		t.Fatalf("max record did not round trip")
	}
}

func TestQueryInvalid(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	for _, q := range []Query{
		{App: "web"},
		{Tenant: "t1"},
		{Tenant: "t1", App: "a/b"},
		{Tenant: "..", App: "web"},
		{Tenant: "t1", App: "web", Limit: -1},
	} {
		if _, _, err := s.Query(q); !errors.Is(err, ErrInvalid) {
			t.Errorf("query %+v: err %v, want ErrInvalid", q, err)
		}
	}
}

func TestClosed(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([]Record{rec("a", 1, 1, "x")}); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, _, err := s.Query(Query{Tenant: "t1", App: "web"}); !errors.Is(err, ErrClosed) {
		t.Errorf("query after close: %v", err)
	}
	if err := s.Enforce(); !errors.Is(err, ErrClosed) {
		t.Errorf("enforce after close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v", err)
	}
}

func TestDirName(t *testing.T) {
	for in, want := range map[string]string{
		"acme":                   "acme",
		"web-1.prod":             "web-1.prod",
		"Acme":                   "%41cme",
		"_state":                 "%5Fstate",
		".hidden":                "%2Ehidden",
		"a..b":                   "a..b",
		"a b%c":                  "a%20b%25c",
		"\\..\\":                 "%5C..%5C",
		"caf\xc3\xa9":            "caf%C3%A9",
		"~x":                     "%7Ex",
		strings.Repeat("a", 200): strings.Repeat("a", 200),
	} {
		if got := dirName(in); got != want {
			t.Errorf("dirName(%q) = %q, want %q", in, got, want)
		}
	}
	long := dirName(strings.Repeat("a", 201))
	if len(long) != 33 || long[0] != '~' {
		t.Errorf("long name escaped to %q", long)
	}
	if dirName(strings.Repeat("A", 100)) == dirName(strings.Repeat("A", 101)) {
		t.Error("hashed names collide")
	}
}

func TestOddNamesRoundTrip(t *testing.T) {
	cfg, _ := testConfig(t, "")
	s := openT(t, cfg)
	names := []string{"Acme Corp", "_state", ".x", "..x", "~", strings.Repeat("Ü", 120), "a\\b", "%41"}
	for i, n := range names {
		mustAppend(t, s, 1, recIn(n, n, "i", 1, i, n))
	}
	// "%41" and "A" must not share a directory.
	mustAppend(t, s, 1, recIn("A", "A", "i", 1, 0, "A"))
	s = reopen(t, s, cfg)
	for _, n := range append(names, "A") {
		equalKeys(t, n, queryAll(t, s, n, n), []string{"i#1:" + n})
	}
	if st := s.Stats(); len(st.TenantBytes) != len(names)+1 {
		t.Fatalf("tenants after reopen: %v", st.TenantBytes)
	}
}

package logstore

import (
	"testing"
	"time"
)

// TestStartAt: the position a reader starts from to see every record of an
// app stamped at or after a time, across segments, with records out of
// time order, other apps in between, and none yet.
func TestStartAt(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.SegmentBytes = MinSegmentBytes
	s := openT(t, cfg)
	if pos, err := s.StartAt("t1", "web", t0); err != nil || pos != 0 {
		t.Fatalf("empty store: %d %v", pos, err)
	}
	mustAppend(t, s, 3, rec("a", 1, 0, "x"), rec("a", 2, 10, "y"), recIn("t1", "api", "b", 1, 20, "other app"))
	// Enough records to span several segments.
	big := make([]byte, 512)
	for i := range big {
		big[i] = 'z'
	}
	for i := range 200 {
		mustAppend(t, s, 1, rec("a", uint64(3+i), 30+i, string(big)))
	}
	mustAppend(t, s, 2, rec("a", 1000, 5, "late but old"), rec("a", 1001, 500, "new"))
	if segs := segFiles(t, cfg.Dir); len(segs) < 2 {
		t.Fatalf("want several segments, have %d", len(segs))
	}
	all := queryAll(t, s, "t1", "web")
	posOf := func(line string, seq uint64) uint64 {
		for _, r := range all {
			if r.Seq == seq && (line == "" || r.Line == line) {
				return r.Pos
			}
		}
		t.Fatalf("no record %d", seq)
		return 0
	}
	last := s.Stats().LastPos
	for _, tc := range []struct {
		name  string
		since time.Time
		want  uint64
	}{
		{"before everything", t0.Add(-time.Hour), posOf("x", 1) - 1},
		{"the second record", t0.Add(10 * time.Second), posOf("y", 2) - 1},
		{"between records", t0.Add(5 * time.Second), posOf("y", 2) - 1},
		{"in a later segment", t0.Add(130 * time.Second), posOf("", 103) - 1},
		{"only the last", t0.Add(400 * time.Second), posOf("new", 1001) - 1},
		{"after everything", t0.Add(time.Hour), last},
	} {
		pos, err := s.StartAt("t1", "web", tc.since)
		if err != nil || pos != tc.want {
			t.Errorf("%s: StartAt = %d, %v; want %d", tc.name, pos, err, tc.want)
		}
	}
	if _, err := s.StartAt("t1", "no/such", t0); err == nil {
		t.Error("a bad app name was accepted")
	}
}

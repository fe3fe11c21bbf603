package logstore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScanOldestFirstPrimaryOnly: Scan pages through an app's records in
// append order from a position, primary ones only when asked, across
// segments and a restart; the Primary flag survives on disk.
func TestScanOldestFirstPrimaryOnly(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.SegmentBytes = 4 << 10
	s := openT(t, cfg)
	var recs []Record
	for i := 1; i <= 300; i++ {
		recs = append(recs, Record{Time: t0.Add(time.Duration(300-i) * time.Second), // times go backwards: order is by Pos
			Tenant: "t1", App: "web", Instance: "i1", Stream: "stdout", Seq: uint64(i), Line: fmt.Sprintf("line %d %s", i, strings.Repeat("x", 40)), Primary: i%3 != 0})
	}
	if _, err := s.Append(recs[:150]); err != nil {
		t.Fatal(err)
	}
	// Another app in between must not show.
	if _, err := s.Append([]Record{{Time: t0, Tenant: "t1", App: "other", Instance: "o1", Stream: "stdout", Seq: 1, Line: "other", Primary: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(recs[150:]); err != nil {
		t.Fatal(err)
	}
	page := func(s *Store, primaryOnly bool) []uint64 {
		var seqs []uint64
		var after uint64
		for {
			got, _, err := s.Scan("t1", "web", after, primaryOnly, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				return seqs
			}
			for _, r := range got {
				if r.Pos <= after {
					t.Fatalf("pos %d after %d", r.Pos, after)
				}
				after = r.Pos
				if r.Primary != (r.Seq%3 != 0) {
					t.Fatalf("seq %d: primary %v", r.Seq, r.Primary)
				}
				seqs = append(seqs, r.Seq)
			}
		}
	}
	check := func(s *Store) {
		t.Helper()
		all, prim := page(s, false), page(s, true)
		if len(all) != 300 || len(prim) != 200 {
			t.Fatalf("scan: %d records, %d primary", len(all), len(prim))
		}
		for i, seq := range all {
			if seq != uint64(i+1) {
				t.Fatalf("record %d has seq %d: not in append order", i, seq)
			}
		}
	}
	check(s)
	check(reopen(t, s, cfg))
}

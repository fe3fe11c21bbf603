package logstore

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestQueryMatchesOracle stores records with times scattered so blocks and
// segments overlap heavily in time (late copies from a peer, clock skew),
// then checks many queries against a brute-force evaluation.
func TestQueryMatchesOracle(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.SegmentBytes = 256 << 10
	s := openT(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	insts := []string{"a", "b", "c", "d"}
	seqs := map[string]uint64{}
	var all []Record
	for range 60 {
		var batch []Record
		for range 10 + rng.IntN(90) {
			in := insts[rng.IntN(len(insts))]
			seqs[in]++
			// Times in a 600 s window, in ms, so ties and overlaps abound.
			ms := rng.IntN(600_000)
			if rng.IntN(4) == 0 {
				ms -= ms % 1000 // many exact ties
			}
			line := fmt.Sprintf("%s-%d %s", in, seqs[in], strings.Repeat("q", rng.IntN(900)))
			if rng.IntN(10) == 0 {
				line += " needle"
			}
			batch = append(batch, Record{Time: t0.Add(time.Duration(ms) * time.Millisecond), Tenant: "t1", App: "web",
				Instance: in, Stream: "stdout", Seq: seqs[in], Line: line})
		}
		mustAppend(t, s, len(batch), batch...)
	}
	all = queryAll(t, s, "t1", "web")
	if st := s.Stats(); len(all) != int(st.Records) || st.Segments < 3 {
		t.Fatalf("stats %+v, %d records queried", st, len(all))
	}
	oracle := func(q Query) []Record {
		var out []Record
		for _, r := range all {
			if (q.Since.IsZero() || !r.Time.Before(q.Since)) && (q.Until.IsZero() || r.Time.Before(q.Until)) &&
				(q.Instance == "" || r.Instance == q.Instance) && strings.Contains(r.Line, q.Grep) && r.Pos > q.AfterPos {
				out = append(out, r)
			}
		}
		slices.SortFunc(out, func(a, b Record) int {
			return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Instance, b.Instance), cmp.Compare(a.Seq, b.Seq))
		})
		if limit := cmp.Or(q.Limit, DefaultQueryLimit); len(out) > limit {
			out = out[len(out)-limit:]
		}
		return out
	}
	last := uint64(len(all))
	for i := range 300 {
		q := Query{Tenant: "t1", App: "web", Limit: 1 + rng.IntN(400)}
		if rng.IntN(3) == 0 {
			q.Since = t0.Add(time.Duration(rng.IntN(600)) * time.Second)
		}
		if rng.IntN(3) == 0 {
			q.Until = t0.Add(time.Duration(rng.IntN(600)) * time.Second)
		}
		if rng.IntN(3) == 0 {
			q.Instance = insts[rng.IntN(len(insts))]
		}
		if rng.IntN(4) == 0 {
			q.Grep = "needle"
		}
		if rng.IntN(3) == 0 {
			q.AfterPos = uint64(rng.IntN(int(last)))
		}
		if i%50 == 0 {
			q.Limit = 0
		}
		got, gotLast := mustQuery(t, s, q)
		if want := oracle(q); !slices.Equal(got, want) {
			t.Fatalf("query %d %+v: %d records, oracle %d\n got  %.10q\n want %.10q", i, q, len(got), len(want), keys(got), keys(want))
		}
		if gotLast != last {
			t.Fatalf("last pos %d, want %d", gotLast, last)
		}
	}
}

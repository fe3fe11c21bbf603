package logstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/killtest"
)

// killChildEnv names the directory a re-executed test binary appends to.
const killChildEnv = "WHARF_LOGSTORE_KILL_CHILD_DIR"

// killInsts are the instances the child appends to: several apps and
// tenants, so one Append call writes several segment files.
var killInsts = []struct{ tenant, app, inst string }{
	{"t1", "web", "w1"}, {"t1", "web", "w2"}, {"t1", "api", "a1"}, {"t2", "web", "x1"},
}

const killBatch = 20 // seqs per instance per Append

func killLine(inst string, seq uint64) string {
	return fmt.Sprintf("%s %d %s", inst, seq, strings.Repeat("k", int(seq%113)))
}

// killChild appends until it is killed. After each Append returns it
// prints "ack N": every instance's seqs up to N are stored.
func killChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	// Records are stamped from t0, long ago: keep them.
	s, err := Open(Config{Dir: dir, SegmentBytes: 16 << 10, Default: Retention{MaxAge: 100 * 365 * 24 * time.Hour}})
	if err != nil {
		fail(err)
	}
	deadline := time.Now().Add(time.Minute) // never outlive a lost parent
	batch := make([]Record, 0, killBatch*len(killInsts))
	for seq := uint64(1); time.Now().Before(deadline); {
		batch = batch[:0]
		for range killBatch {
			for _, k := range killInsts {
				batch = append(batch, Record{
					Time: t0.Add(time.Duration(seq) * time.Millisecond), Tenant: k.tenant, App: k.app,
					Instance: k.inst, Stream: "stdout", Seq: seq, Line: killLine(k.inst, seq),
				})
			}
			seq++
		}
		n, err := s.Append(batch)
		if err != nil {
			fail(err)
		}
		if n != len(batch) {
			fail(fmt.Errorf("stored %d of %d", n, len(batch)))
		}
		fmt.Printf("ack %d\n", seq-1)
	}
	os.Exit(3)
}

func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	// Different kill points land in different phases (mid write, segment
	// rotation, between the writes of one call).
	for _, killAt := range []uint64{100, 2020, 6660} {
		t.Run(fmt.Sprint(killAt), func(t *testing.T) { killAndRecover(t, killAt) })
	}
}

func killAndRecover(t *testing.T, killAt uint64) {
	dir := t.TempDir()
	var acked uint64
	killtest.Run(t, killChildEnv, dir, func(line string) bool {
		var n uint64
		if _, err := fmt.Sscanf(line, "ack %d", &n); err == nil {
			acked = n
		}
		return acked >= killAt
	})

	cfg, _ := testConfig(t, dir)
	s := openT(t, cfg)
	positions := map[uint64]bool{}
	var maxPos uint64
	highest := map[string]uint64{}
	for _, k := range killInsts {
		recs, _ := mustQuery(t, s, Query{Tenant: k.tenant, App: k.app, Instance: k.inst, Limit: 1 << 30})
		for i, r := range recs {
			want := uint64(i + 1)
			if r.Seq != want || r.Line != killLine(k.inst, want) || r.Stream != "stdout" || !r.Time.Equal(t0.Add(time.Duration(want)*time.Millisecond)) {
				t.Fatalf("%s record %d: seq %d line %.20q, want seq %d", k.inst, i, r.Seq, r.Line, want)
			}
			if r.Pos == 0 || positions[r.Pos] {
				t.Fatalf("%s seq %d: pos %d zero or repeated", k.inst, r.Seq, r.Pos)
			}
			positions[r.Pos] = true
			maxPos = max(maxPos, r.Pos)
		}
		n := uint64(len(recs))
		if n < acked {
			t.Fatalf("%s: recovered seqs 1..%d, child had Append return for 1..%d", k.inst, n, acked)
		}
		highest[k.inst] = n
	}
	t.Logf("child acknowledged up to seq %d; recovered %v", acked, highest)
	if m := glob(t, dir, "*"+corruptSuffix); len(m) > 0 {
		t.Fatalf("recovery set files aside: %v", m)
	}
	if st := s.Stats(); st.LastPos < maxPos {
		t.Fatalf("last pos %d below recovered pos %d", st.LastPos, maxPos)
	}
	// The agents resend what they did not see acknowledged, plus new lines:
	// exactly the new lines are stored, after every recovered position.
	for _, k := range killInsts {
		var batch []Record
		for seq := acked + 1; seq <= highest[k.inst]+1; seq++ {
			batch = append(batch, recIn(k.tenant, k.app, k.inst, seq, 0, killLine(k.inst, seq)))
		}
		mustAppend(t, s, 1, batch...)
		recs, _ := mustQuery(t, s, Query{Tenant: k.tenant, App: k.app, Instance: k.inst, AfterPos: maxPos})
		if len(recs) != 1 || recs[0].Seq != highest[k.inst]+1 {
			t.Fatalf("%s after resend: %v", k.inst, keys(recs))
		}
	}
	// No stray files at the top level.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() && e.Name() != lockName && e.Name() != stateName {
			t.Errorf("unexpected file %s", filepath.Join(dir, e.Name()))
		}
	}
}

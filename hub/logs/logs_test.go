package logs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestJSONSizeBoundsEncoding(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "<html>&amp;", "tab\tnl\n\x01", "naïve ☃", "\xff\xfe bad", "line\u2028sep"} {
		b, _ := json.Marshal(s)
		if got := jsonSize(s); got < len(b) {
			t.Errorf("jsonSize(%q) = %d < %d encoded", s, got, len(b))
		}
	}
}

// TestMergeLogs: answers of several nodes merge in time order, each
// (instance, seq) once.
func TestMergeLogs(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	l := func(inst string, seq uint64, sec int) apitypes.LogLine {
		return apitypes.LogLine{Time: t0.Add(time.Duration(sec) * time.Second), Instance: inst, Seq: seq, Line: inst}
	}
	got := merge(map[string]answer{
		"a": {Lines: []apitypes.LogLine{l("i1", 1, 1), l("i1", 2, 3), l("i2", 1, 2)}},
		"b": {Lines: []apitypes.LogLine{l("i1", 2, 3), l("i2", 1, 2), l("i2", 2, 4)}},
	})
	want := []apitypes.LogLine{l("i1", 1, 1), l("i2", 1, 2), l("i1", 2, 3), l("i2", 2, 4)}
	if len(got) != len(want) {
		t.Fatalf("merged %d lines: %+v", len(got), got)
	}
	for i := range want {
		if got[i].Instance != want[i].Instance || got[i].Seq != want[i].Seq {
			t.Fatalf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestLogsAnswerBounded: one node's answer keeps the newest lines within
// the internal RPC's limit and says it left older ones out.
func TestLogsAnswerBounded(t *testing.T) {
	s, err := logstore.Open(logstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	var recs []logstore.Record
	for i := 1; i <= 100; i++ { // 100 x 200 KiB
		recs = append(recs, logstore.Record{Time: t0.Add(time.Duration(i) * time.Millisecond), Tenant: "acme", App: "web", Instance: "i1",
			Stream: "stdout", Seq: uint64(i), Line: strings.Repeat("<", 200<<10)}) // escaped six-fold in JSON
	}
	if _, err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	svc := New(Config{Store: s})
	ans, err := svc.serveQuery(context.Background(), query{Tenant: "acme", App: "web", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := queryRPC.Resp.Marshal(ans); len(b) > 16<<20 {
		t.Fatalf("answer of %d bytes", len(b))
	}
	if !ans.Truncated || len(ans.Lines) == 0 || len(ans.Lines) >= 100 || ans.Lines[len(ans.Lines)-1].Seq != 100 {
		t.Fatalf("truncated %v, %d lines, last %d", ans.Truncated, len(ans.Lines), ans.Lines[len(ans.Lines)-1].Seq)
	}
}

// TestTenantLogRetention: a tenant's quota sets its log retention; zero
// fields and unknown tenants fall back to the node's defaults.
func TestTenantLogRetention(t *testing.T) {
	h := statetest.New(t)
	h.Must(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "small",
		Quota: state.Quota{LogBytes: 5 << 20, LogAge: state.Duration(48 * time.Hour)}}, Time: statetest.T0})
	limits := TenantRetention(h.Store())
	if got := limits("small"); got.MaxBytes != 5<<20 || got.MaxAge != 48*time.Hour {
		t.Fatalf("small: %+v", got)
	}
	if got := limits("acme"); got != (logstore.Retention{}) {
		t.Fatalf("acme (no log quota): %+v", got)
	}
	if got := limits("nobody"); got != (logstore.Retention{}) {
		t.Fatalf("unknown tenant: %+v", got)
	}
}

package state

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func auditEntry(n int) AuditEntry {
	return AuditEntry{Time: t0.Add(time.Duration(n) * time.Second), Actor: "ci", ActorID: "tok-1", Role: "developer", Tenant: "acme",
		Method: "POST", Path: "/v1/apps/web/scale", Status: 200, Object: "web", Node: "hub1"}
}

func auditSeqs(t *testing.T, h *harness) []uint64 {
	t.Helper()
	es, err := h.snap().AuditLog(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestAuditRecordNumbersAndKeeps(t *testing.T) {
	h := newHarness(t)
	h.must(AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{auditEntry(1), auditEntry(2)}, Keep: 3})
	if got := auditSeqs(t, h); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("seqs %v, want [1 2]", got)
	}
	es, _ := h.snap().AuditLog(nil)
	if es[0].Index != 1 || es[1].Index != 1 || es[1].Path != "/v1/apps/web/scale" || es[1].Status != 200 {
		t.Fatalf("entry %+v: want index 1 and the fields as sent", *es[1])
	}
	h.must(AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{auditEntry(3), auditEntry(4), auditEntry(5)}, Keep: 3})
	if got := auditSeqs(t, h); !reflect.DeepEqual(got, []uint64{3, 4, 5}) {
		t.Fatalf("after 5 entries with keep 3: seqs %v, want [3 4 5]", got)
	}
	// A larger keep later keeps more; numbering never restarts.
	h.must(AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{auditEntry(6)}, Keep: 10})
	if got := auditSeqs(t, h); !reflect.DeepEqual(got, []uint64{3, 4, 5, 6}) {
		t.Fatalf("seqs %v, want [3 4 5 6]", got)
	}
	// A smaller one trims at once.
	h.must(AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{auditEntry(7)}, Keep: 1})
	if got := auditSeqs(t, h); !reflect.DeepEqual(got, []uint64{7}) {
		t.Fatalf("seqs %v, want [7]", got)
	}
	if idx := h.snap().Index(TableAudit); idx != h.index {
		t.Fatalf("audit table index %d, want %d", idx, h.index)
	}

	// Snapshot and restore keep the log and its numbering.
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	h2.index = h.index
	h2.must(AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{auditEntry(8)}})
	if got := auditSeqs(t, h2); !reflect.DeepEqual(got, []uint64{7, 8}) {
		t.Fatalf("after restore: seqs %v, want [7 8]", got)
	}
}

func TestAuditDefaultKeep(t *testing.T) {
	h := newHarness(t)
	batch := make([]AuditEntry, 0, 1000)
	for i := range 1000 {
		batch = append(batch, auditEntry(i))
	}
	for range DefaultAuditKeep/1000 + 2 {
		h.must(AuditRecordType, &AuditRecordRequest{Entries: batch})
	}
	seqs := auditSeqs(t, h)
	if len(seqs) != DefaultAuditKeep || seqs[0] != 2001 {
		t.Fatalf("%d entries from seq %d, want %d from 2001", len(seqs), seqs[0], DefaultAuditKeep)
	}
}

func TestAppLifecycle(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web: version 2, 3 instances
	app := func() *App {
		a, err := h.snap().App(nil, "acme", "web")
		if err != nil || a == nil {
			t.Fatalf("app: %v", err)
		}
		return a
	}
	lastKind := func() string {
		ds, _ := h.snap().History(nil, "acme", "web")
		return ds[len(ds)-1].Kind
	}
	req := func(at time.Duration) AppLifecycleRequest {
		return AppLifecycleRequest{Tenant: "acme", Name: "web", Time: t0.Add(at)}
	}

	r := req(time.Hour)
	h.must(AppRestartType, (*AppRestartRequest)(&r))
	a := app()
	if a.Version != 3 || a.LatestVersion != 3 || *a.Spec.Instances != 3 || lastKind() != DeployRestart {
		t.Fatalf("after restart: version %d latest %d instances %d history %q; want 3, 3, 3, restart", a.Version, a.LatestVersion, *a.Spec.Instances, lastKind())
	}
	v2, _ := h.snap().AppVersion(nil, "acme", "web", 2)
	v3, _ := h.snap().AppVersion(nil, "acme", "web", 3)
	if v3 == nil || !v2.Spec.Equal(v3.Spec) {
		t.Fatalf("restart's version 3 %+v differs from version 2 %+v", v3, v2)
	}

	h.must(AppStopType, (*AppStopRequest)(&r))
	a = app()
	if !a.Stopped || a.StoppedInstances != 3 || *a.Spec.Instances != 0 || lastKind() != DeployStop || a.Version != 3 {
		t.Fatalf("after stop: %+v, history %q", a, lastKind())
	}
	for _, tt := range []struct {
		name string
		t    MessageType
		req  any
	}{
		{"stop twice", AppStopType, (*AppStopRequest)(&r)},
		{"restart while stopped", AppRestartType, (*AppRestartRequest)(&r)},
	} {
		var se *Error
		if err := h.apply(tt.t, tt.req); !errors.As(err, &se) || se.Kind != KindConflict {
			t.Fatalf("%s: %v, want a conflict", tt.name, err)
		}
	}
	// An update that names no count keeps the app stopped.
	s := a.Spec
	s.Instances = nil
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0.Add(2 * time.Hour)})
	if a = app(); !a.Stopped || a.StoppedInstances != 3 {
		t.Fatalf("a PUT without a count unstopped the app: %+v", a)
	}

	h.must(AppStartType, (*AppStartRequest)(&r))
	a = app()
	if a.Stopped || a.StoppedInstances != 0 || *a.Spec.Instances != 3 || lastKind() != DeployStart {
		t.Fatalf("after start: %+v, history %q", a, lastKind())
	}
	var se *Error
	if err := h.apply(AppStartType, (*AppStartRequest)(&r)); !errors.As(err, &se) || se.Kind != KindConflict {
		t.Fatalf("start of a running app: %v, want a conflict", err)
	}
	// Scaling a stopped app ends the stop.
	h.must(AppStopType, (*AppStopRequest)(&r))
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0})
	if a = app(); a.Stopped || *a.Spec.Instances != 2 {
		t.Fatalf("after scaling a stopped app: %+v", a)
	}
	missing := AppLifecycleRequest{Tenant: "acme", Name: "nope", Time: t0}
	if err := h.apply(AppRestartType, (*AppRestartRequest)(&missing)); !errors.As(err, &se) || se.Kind != KindNotFound {
		t.Fatalf("restart of a missing app: %v, want not found", err)
	}
}

// BenchmarkApplyAuditRecord measures the FSM's cost of one audit entry
// in a full log (10,000 kept: every apply also drops the oldest), the
// extra work each audited write brings to every hub node.
func BenchmarkApplyAuditRecord(b *testing.B) {
	h := newHarness(b)
	batch := make([]AuditEntry, 0, 1000)
	for i := range 1000 {
		batch = append(batch, auditEntry(i))
	}
	for range DefaultAuditKeep / 1000 {
		h.must(AuditRecordType, &AuditRecordRequest{Entries: batch})
	}
	msg, err := Encode(AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{auditEntry(0)}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.index++
		if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: msg}); r != nil {
			b.Fatal(r)
		}
	}
}

// TestAuditedCommand: an audited command writes the command and its
// entry together, or neither.
func TestAuditedCommand(t *testing.T) {
	h := newHarness(t)
	fill(h)
	before := len(auditSeqs(t, h))
	scale := func(f int, name string, n int) []byte {
		return mustEncodeFor(f, AppScaleType, &AppScaleRequest{Tenant: "acme", Name: name, Instances: n, Time: t0.Add(time.Hour)})
	}
	e := auditEntry(1)
	h.must(AuditedType, &AuditedRequest{Command: scale(EntryFormat, "web", 5), Entry: e, Keep: 100})
	if a, _ := h.snap().App(nil, "acme", "web"); a == nil || *a.Spec.Instances != 5 {
		t.Fatalf("app after the audited scale: %+v, want 5 instances", a)
	}
	es, err := h.snap().AuditLog(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != before+1 {
		t.Fatalf("%d audit entries, want %d", len(es), before+1)
	}
	got := es[len(es)-1]
	if got.Index != h.index || got.Path != e.Path || got.Status != 200 || got.Actor != "ci" {
		t.Fatalf("entry %+v: want the fields sent and the command's index %d", *got, h.index)
	}

	// A command that fails writes neither, and fails with its own error.
	for name, bad := range map[string][]byte{
		"an unknown app":           scale(1, "nope", 2),
		"a nested audited command": mustEncodeFor(EntryFormat, AuditedType, &AuditedRequest{Command: scale(1, "web", 6), Entry: e}),
		"an unknown type":          {100, '{', '}'},
		"a malformed command":      {byte(AppScaleType), '{'},
		"an empty command":         nil,
	} {
		err := h.apply(AuditedType, &AuditedRequest{Command: bad, Entry: e, Keep: 100})
		if err == nil {
			t.Fatalf("%s: applied", name)
		}
		if name == "an unknown app" && !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v, want not found", name, err)
		}
		if n := len(auditSeqs(t, h)); n != before+1 {
			t.Fatalf("%s: %d audit entries, want %d", name, n, before+1)
		}
		if a, _ := h.snap().App(nil, "acme", "web"); *a.Spec.Instances != 5 {
			t.Fatalf("%s: the app changed to %d instances", name, *a.Spec.Instances)
		}
	}

	// A command of a type this version does not know, marked to be
	// skipped, is skipped; its entry is kept, as a newer node keeps it.
	h.must(AuditedType, &AuditedRequest{Command: []byte{byte(MessageType(100) | IgnoreUnknownTypeFlag), '{', '}'}, Entry: auditEntry(2), Keep: 100})
	if n := len(auditSeqs(t, h)); n != before+2 {
		t.Fatalf("%d audit entries after a skipped command, want %d", n, before+2)
	}

	// Keep trims the log as an audit record does.
	h.must(AuditedType, &AuditedRequest{Command: scale(1, "web", 4), Entry: auditEntry(3), Keep: 1})
	if got := auditSeqs(t, h); len(got) != 1 || got[0] != uint64(before+3) {
		t.Fatalf("seqs %v after keep 1, want [%d]", got, before+3)
	}
}

// TestAuditRowsKeepSnapshots: the audit log's rows share arrays that
// appends write in place. A snapshot taken earlier reads exactly the
// entries it held however many entries are appended and dropped after
// it, across row boundaries, while it is read (run with -race); a slot
// written by an aborted transaction shows nowhere and is written again.
func TestAuditRowsKeepSnapshots(t *testing.T) {
	h := newHarness(t)
	record := func(from, n, keep int) {
		var es []AuditEntry
		for i := range n {
			es = append(es, auditEntry(from+i))
		}
		h.must(AuditRecordType, &AuditRecordRequest{Entries: es, Keep: keep})
	}
	record(0, auditChunkSize-3, 1000) // the first row nearly full
	before := h.snap()
	want, err := before.AuditLog(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSeqs := make([]uint64, len(want))
	wantTimes := make([]time.Time, len(want))
	for i, e := range want {
		wantSeqs[i], wantTimes[i] = e.Seq, e.Time
	}
	check := func(s *Snapshot) error {
		es, err := s.AuditLog(nil)
		if err != nil {
			return err
		}
		if len(es) != len(wantSeqs) {
			return fmt.Errorf("the earlier snapshot reads %d entries, want %d", len(es), len(wantSeqs))
		}
		for i, e := range es {
			if e.Seq != wantSeqs[i] || !e.Time.Equal(wantTimes[i]) {
				return fmt.Errorf("entry %d of the earlier snapshot is %d at %s, want %d at %s", i, e.Seq, e.Time, wantSeqs[i], wantTimes[i])
			}
		}
		return nil
	}

	// A transaction that appends and is aborted.
	db, _ := h.fsm.Store().current()
	txn := db.Txn(true)
	tail, err := auditTail(txn)
	if err != nil || tail == nil {
		t.Fatalf("tail %v: %v", tail, err)
	}
	aborted := auditEntry(9999)
	aborted.Seq, aborted.Path = tail.next(), "/aborted"
	if _, err := putAudit(txn, tail, aborted); err != nil {
		t.Fatal(err)
	}
	txn.Abort()

	read := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for {
			if err := check(before); err != nil {
				read <- err
				return
			}
			select {
			case <-stop:
				read <- nil
				return
			default:
			}
		}
	}()
	// Three rows and more, with the log trimmed to 200 as it goes.
	for k := range 10 {
		record(1000+40*k, 40, 200)
	}
	close(stop)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if err := check(before); err != nil {
		t.Fatal(err)
	}
	got := auditSeqs(t, h)
	if len(got) != 200 {
		t.Fatalf("%d entries, want 200", len(got))
	}
	last := uint64(auditChunkSize - 3 + 400)
	for i, s := range got {
		if s != last-199+uint64(i) {
			t.Fatalf("seqs %v: want %d to %d without gaps", got, last-199, last)
		}
	}
	es, _ := h.snap().AuditLog(nil)
	for _, e := range es {
		if e.Path == "/aborted" {
			t.Fatalf("entry %d is the aborted transaction's", e.Seq)
		}
	}
}

// TestAuditRestoreChecksOrder: a snapshot's audit entries are restored
// into rows from wherever the log started (mid-row after a trim), and a
// stream whose entries skip or repeat a number is refused.
func TestAuditRestoreChecksOrder(t *testing.T) {
	h := newHarness(t)
	var es []AuditEntry
	for i := range 300 {
		es = append(es, auditEntry(i))
	}
	h.must(AuditRecordType, &AuditRecordRequest{Entries: es, Keep: 250}) // seqs 51-300: from mid-row
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if got, want := auditSeqs(t, h2), auditSeqs(t, h); !reflect.DeepEqual(got, want) || len(got) != 250 || got[0] != 51 {
		t.Fatalf("restored seqs %v, want %v (51 to 300)", got, want)
	}
	var again bytes.Buffer
	snapshotTo(t, h2.fsm, &again)
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Fatal("a snapshot of the restored state differs from the one restored")
	}

	for _, c := range []struct{ name, from, to string }{
		{"a number skipped", `"Seq":120,`, `"Seq":121,`},
		{"a number repeated", `"Seq":200,`, `"Seq":199,`},
		{"numbered zero", `"Seq":51,`, `"Seq":0,`},
	} {
		bad := bytes.Replace(buf.Bytes(), []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, buf.Bytes()) {
			t.Fatalf("%s: %s not in the snapshot", c.name, c.from)
		}
		h3 := newHarness(t)
		err := h3.fsm.Restore(nopCloser{bytes.NewBuffer(bad)})
		if err == nil || !strings.Contains(err.Error(), "out of order") {
			t.Fatalf("%s: restore gave %v, want an out-of-order error", c.name, err)
		}
		if es, _ := h3.snap().AuditLog(nil); len(es) != 0 {
			t.Fatalf("%s: a refused restore left %d audit entries", c.name, len(es))
		}
	}
}

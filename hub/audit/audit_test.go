package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// committer decodes what it is given; slow makes each commit take a while
// so that concurrent records pile up.
type committer struct {
	mu      sync.Mutex
	batches [][]state.AuditEntry
	keep    []int
	slow    time.Duration
	fail    error
}

func (c *committer) EntryFormat() int { return state.EntryFormat }

func (c *committer) Apply(_ context.Context, msg []byte) (uint64, error) {
	time.Sleep(c.slow)
	t, req, err := state.Decode(msg)
	if err != nil || t != state.AuditRecordType {
		return 0, errors.New("not an audit record")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	r := req.(*state.AuditRecordRequest)
	c.batches = append(c.batches, r.Entries)
	c.keep = append(c.keep, r.Keep)
	return uint64(len(c.batches)), nil
}

func (c *committer) entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, b := range c.batches {
		n += len(b)
	}
	return n
}

func TestGroupCommit(t *testing.T) {
	c := &committer{slow: 20 * time.Millisecond}
	r, err := New(Config{Cluster: c, Keep: 500})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := apitypes.AuditEntry{Time: time.Now(), Actor: "ci", ActorID: "t1", Method: "POST", Path: "/v1/apps", Status: 201, Object: string(rune('a' + i%26))}
			if err := r.Record(context.Background(), e); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := c.entries(); n != 64 {
		t.Fatalf("%d entries committed, want 64", n)
	}
	if len(c.batches) >= 64 || len(c.batches) == 0 {
		t.Fatalf("64 concurrent records took %d commits: no group commit", len(c.batches))
	}
	for _, k := range c.keep {
		if k != 500 {
			t.Fatalf("commit with keep %d, want 500", k)
		}
	}
}

func TestAnonymousLimit(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	c := &committer{}
	r, err := New(Config{Cluster: c, AnonymousRate: 2, AnonymousBurst: 3, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	anon := apitypes.AuditEntry{Method: "POST", Path: "/v1/tenants", Status: 401}
	record := func(e apitypes.AuditEntry, times int) {
		for range times {
			if err := r.Record(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
	}
	record(anon, 10)
	if n := c.entries(); n != 3 {
		t.Fatalf("10 anonymous refusals at once: %d recorded, want the burst of 3", n)
	}
	now = now.Add(time.Second) // 2 tokens back
	record(anon, 10)
	if n := c.entries(); n != 5 {
		t.Fatalf("after a second: %d recorded, want 5", n)
	}
	// Successes without a token (the bootstrap) and anything with a token
	// are never limited.
	record(apitypes.AuditEntry{Method: "POST", Path: "/v1/bootstrap", Status: 200}, 5)
	record(apitypes.AuditEntry{ActorID: "t1", Method: "POST", Path: "/v1/apps", Status: 403}, 5)
	if n := c.entries(); n != 15 {
		t.Fatalf("%d recorded, want 15", n)
	}
}

func TestCommitFailure(t *testing.T) {
	c := &committer{fail: errors.New("no leader")}
	r, err := New(Config{Cluster: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Record(context.Background(), apitypes.AuditEntry{ActorID: "t1", Method: "DELETE", Status: 204}); err == nil {
		t.Fatal("a failed commit was reported as recorded")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Cluster succeeded")
	}
	if _, err := New(Config{Cluster: c, Keep: -1}); err == nil {
		t.Fatal("New with a negative Keep succeeded")
	}
}

// TestFold: a write carries its entry when every voter reads such an
// entry, and the entry is the one given; an anonymous refusal is never
// folded.
func TestFold(t *testing.T) {
	c := &committer{}
	r, err := New(Config{Cluster: c, Keep: 300})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := state.EncodeFor(state.EntryFormat, state.AppScaleType, &state.AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	e := apitypes.AuditEntry{Time: time.Now(), Actor: "ci", ActorID: "t1", Tenant: "acme", Method: "POST", Path: "/v1/apps/web/scale", Status: 200, Object: "web", Node: "hub0"}
	b, ok := r.Fold(state.EntryFormat, cmd, e)
	if !ok {
		t.Fatal("not folded in a cluster that reads audited entries")
	}
	mt, req, err := state.Decode(b)
	if err != nil || mt != state.AuditedType {
		t.Fatalf("folded entry decodes to type %d, %v", mt, err)
	}
	a := req.(*state.AuditedRequest)
	if string(a.Command) != string(cmd) || a.Keep != 300 || a.Entry.Path != e.Path || a.Entry.Status != 200 || a.Entry.ActorID != "t1" || !a.Entry.Time.Equal(e.Time) {
		t.Fatalf("folded %+v, want the command, keep 300 and the entry given", a)
	}
	if _, ok := r.Fold(state.EntryFormat, cmd, apitypes.AuditEntry{Method: "POST", Path: "/v1/apps", Status: 401}); ok {
		t.Fatal("an anonymous refusal was folded")
	}
	if _, ok := r.Fold(state.FormatBinary, cmd, e); ok {
		t.Fatal("folded in a cluster with a voter that cannot read audited entries")
	}
}

package logstore

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/killtest"
)

func TestMain(m *testing.M) {
	if dir := killtest.Child(killChildEnv); dir != "" {
		killChild(dir) // never returns
	}
	os.Exit(m.Run())
}

// t0 is the fake clock's start.
var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is a deterministic Config.Now; it only moves when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testConfig(t testing.TB, dir string) (Config, *fakeClock) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	clk := &fakeClock{t: t0}
	return Config{
		Dir:    dir,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
		Now:    clk.Now,
	}, clk
}

// openT opens a store that is closed when the test ends (unless the test
// closed it).
func openT(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && err != ErrClosed {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func reopen(t testing.TB, s *Store, cfg Config) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openT(t, cfg)
}

// rec builds a record of tenant "t1", app "web" unless changed; its time is
// t0 plus sec seconds.
func rec(inst string, seq uint64, sec int, line string) Record {
	return Record{
		Time: t0.Add(time.Duration(sec) * time.Second), Tenant: "t1", App: "web",
		Instance: inst, Stream: "stdout", Seq: seq, Line: line,
	}
}

func recIn(tenant, app, inst string, seq uint64, sec int, line string) Record {
	r := rec(inst, seq, sec, line)
	r.Tenant, r.App = tenant, app
	return r
}

func mustAppend(t testing.TB, s *Store, want int, recs ...Record) {
	t.Helper()
	n, err := s.Append(recs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if n != want {
		t.Fatalf("append stored %d of %d, want %d", n, len(recs), want)
	}
}

func mustQuery(t testing.TB, s *Store, q Query) ([]Record, uint64) {
	t.Helper()
	recs, last, err := s.Query(q)
	if err != nil {
		t.Fatalf("query %+v: %v", q, err)
	}
	return recs, last
}

// keys renders records compactly: "inst#seq:line".
func keys(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s#%d:%s", r.Instance, r.Seq, r.Line)
	}
	return out
}

func equalKeys(t testing.TB, what string, got []Record, want []string) {
	t.Helper()
	if g := keys(got); !slices.Equal(g, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, g, want)
	}
}

// queryAll returns every record of tenant/app.
func queryAll(t testing.TB, s *Store, tenant, app string) []Record {
	t.Helper()
	recs, _ := mustQuery(t, s, Query{Tenant: tenant, App: app, Limit: 1 << 30})
	return recs
}

// segFiles lists the segment files under dir, sorted.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Ext(p) == segSuffix {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package logship

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wharf-platform/wharf/internal/killtest"
)

func TestMain(m *testing.M) {
	if dir := killtest.Child(killChildEnv); dir != "" {
		killChild(dir) // never returns
	}
	goleak.VerifyTestMain(m)
}

// fakeClock is a deterministic Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return Config{
		Dir:    dir,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
		Now:    clk.Now,
	}
}

// openT opens a buffer that is closed when the test ends.
func openT(t testing.TB, cfg Config) *Buffer {
	t.Helper()
	b, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func mustAppend(t testing.TB, b *Buffer, instance, stream, text string) {
	t.Helper()
	if err := b.Append(instance, stream, text); err != nil {
		t.Fatalf("append %s/%s %q: %v", instance, stream, text, err)
	}
}

func mustAck(t testing.TB, b *Buffer, acks map[string]uint64) {
	t.Helper()
	if err := b.Ack(acks); err != nil {
		t.Fatalf("ack %v: %v", acks, err)
	}
}

// readAll reads until Read returns nothing.
func readAll(t testing.TB, b *Buffer) []Line {
	t.Helper()
	var all []Line
	for {
		lines, err := b.Read(7)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if len(lines) == 0 {
			return all
		}
		all = append(all, lines...)
	}
}

// key renders lines compactly for comparisons.
func key(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		p := ""
		if l.Partial {
			p = "+"
		}
		out[i] = fmt.Sprintf("%s/%s#%d:%s%s", l.Instance, l.Stream, l.Seq, l.Text, p)
	}
	return out
}

func equalKeys(t testing.TB, what string, got []Line, want []string) {
	t.Helper()
	if g := key(got); !slices.Equal(g, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, g, want)
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func dirBytes(t testing.TB, dir string) int64 {
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

func filterOut(lines []string, drop func(string) bool) []string {
	var out []string
	for _, l := range lines {
		if !drop(l) {
			out = append(out, l)
		}
	}
	return out
}

func hasPrefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

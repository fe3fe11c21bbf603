package logship

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendReadAckRewind(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxBytes, cfg.SegmentBytes = 64<<10, 300
	b := openT(t, cfg)

	var want []string
	for i := 1; i <= 30; i++ {
		for _, in := range []struct{ inst, stream string }{{"a", "stdout"}, {"b", "stderr"}, {"a", "router"}} {
			text := fmt.Sprintf("%s-%s-%d", in.inst, in.stream, i)
			mustAppend(t, b, in.inst, in.stream, text)
		}
	}
	seq := map[string]uint64{}
	for i := 1; i <= 30; i++ {
		for _, in := range []struct{ inst, stream string }{{"a", "stdout"}, {"b", "stderr"}, {"a", "router"}} {
			seq[in.inst]++
			want = append(want, fmt.Sprintf("%s/%s#%d:%s-%s-%d", in.inst, in.stream, seq[in.inst], in.inst, in.stream, i))
		}
	}
	if n := len(segFiles(t, cfg.Dir)); n < 3 {
		t.Fatalf("want several segments, got %d", n)
	}
	got := readAll(t, b)
	equalKeys(t, "first read", got, want)
	for i := 1; i < len(got); i++ {
		if !got[i].Time.After(got[i-1].Time) {
			t.Fatalf("time not from Config.Now: %v then %v", got[i-1].Time, got[i].Time)
		}
	}
	if more, _ := b.Read(10); len(more) != 0 {
		t.Fatalf("read after end returned %v", key(more))
	}

	// Ack a through 40 and b through 10, then rewind: only the rest comes back.
	mustAck(t, b, map[string]uint64{"a": 40, "b": 10})
	b.Rewind()
	rest := filterOut(want, func(s string) bool {
		var inst, stream string
		var n uint64
		fmt.Sscanf(strings.NewReplacer("/", " ", "#", " ", ":", " ").Replace(s), "%s %s %d", &inst, &stream, &n)
		return (inst == "a" && n <= 40) || (inst == "b" && n <= 10)
	})
	equalKeys(t, "after rewind", readAll(t, b), rest)
	if st := b.Stats(); st.Unacked != uint64(len(rest)) {
		t.Fatalf("stats unacked = %d, want %d", st.Unacked, len(rest))
	}

	// Ack everything: all but the active segment leave the disk.
	mustAck(t, b, map[string]uint64{"a": 60, "b": 30})
	if files := segFiles(t, cfg.Dir); len(files) != 1 {
		t.Fatalf("after full ack %d segments on disk: %v", len(files), files)
	}
	st := b.Stats()
	if st.Unacked != 0 || st.Segments != 1 || st.Bytes != dirBytes(t, cfg.Dir) {
		t.Fatalf("stats after full ack = %+v, disk %d", st, dirBytes(t, cfg.Dir))
	}
	b.Rewind()
	if lines := readAll(t, b); len(lines) != 0 {
		t.Fatalf("acked lines came back: %v", key(lines))
	}
	// Lower and unknown acks are ignored, excessive ones clamped.
	mustAck(t, b, map[string]uint64{"a": 1, "zzz": 5, "b": 1000})
	mustAppend(t, b, "b", "stdout", "next")
	equalKeys(t, "after clamped ack", readAll(t, b), []string{"b/stdout#31:next"})
}

func TestReopenAfterClose(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.SegmentBytes = 256
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		mustAppend(t, b, "a", "stdout", fmt.Sprint("a", i))
		mustAppend(t, b, "b", "stdout", fmt.Sprint("b", i))
	}
	if got := len(readAll(t, b)); got != 40 {
		t.Fatalf("read %d lines", got)
	}
	mustAck(t, b, map[string]uint64{"a": 15, "b": 3})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := b.Append("a", "stdout", "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}

	b = openT(t, cfg)
	var want []string
	for i := 1; i <= 20; i++ {
		if i > 15 {
			want = append(want, fmt.Sprintf("a/stdout#%d:a%d", i, i))
		}
		if i > 3 {
			want = append(want, fmt.Sprintf("b/stdout#%d:b%d", i, i))
		}
	}
	equalKeys(t, "after reopen", readAll(t, b), want)
	mustAppend(t, b, "a", "stdout", "new")
	mustAppend(t, b, "c", "stdout", "new")
	equalKeys(t, "new appends", readAll(t, b), []string{"a/stdout#21:new", "c/stdout#1:new"})
}

func TestSeqSurvivesFullAckAndDrops(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxBytes, cfg.SegmentBytes = 2048, 256
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// "acked": everything acked, so every segment of it is deleted.
	for i := 1; i <= 10; i++ {
		mustAppend(t, b, "acked", "stdout", fmt.Sprint("line ", i))
	}
	mustAck(t, b, map[string]uint64{"acked": 10})
	// "lost": all its lines are dropped by a flood from "noisy".
	for i := 1; i <= 5; i++ {
		mustAppend(t, b, "lost", "stdout", fmt.Sprint("line ", i))
	}
	for i := 1; i <= 200; i++ {
		mustAppend(t, b, "noisy", "stdout", fmt.Sprint("flood ", i))
	}
	if d := b.Dropped()["lost"]; d != (DropInfo{Count: 5, First: 1, Last: 5}) {
		t.Fatalf("dropped[lost] = %+v", d)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, cfg)
	if d := b.Dropped()["lost"]; d != (DropInfo{Count: 5, First: 1, Last: 5}) {
		t.Fatalf("drop report not persisted: %+v", d)
	}
	b.Ack(map[string]uint64{"noisy": 200})
	readAll(t, b)
	mustAppend(t, b, "acked", "stdout", "after")
	mustAppend(t, b, "lost", "stdout", "after")
	equalKeys(t, "seqs after restart", readAll(t, b), []string{"acked/stdout#11:after", "lost/stdout#6:after"})
	if taken := b.TakeDropped(); len(taken) == 0 {
		t.Fatal("TakeDropped returned nothing")
	}
	if d := b.Dropped(); len(d) != 0 {
		t.Fatalf("Dropped after TakeDropped = %v", d)
	}
}

func TestFullBufferDropsOldest(t *testing.T) {
	tests := []struct {
		name     string
		ackFirst uint64 // ack a through this before flooding
		readPre  int    // lines read before flooding
	}{
		{name: "no acks"},
		{name: "some acked", ackFirst: 10},
		{name: "cursor mid-way", readPre: 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.MaxBytes, cfg.SegmentBytes = 4096, 512
			b := openT(t, cfg)
			const n = 400
			for i := 1; i <= 20; i++ {
				mustAppend(t, b, "a", "stdout", fmt.Sprintf("a line %d", i))
			}
			if tt.ackFirst > 0 {
				mustAck(t, b, map[string]uint64{"a": tt.ackFirst})
			}
			if tt.readPre > 0 {
				if l, err := b.Read(tt.readPre); err != nil || len(l) != tt.readPre {
					t.Fatalf("pre-read: %d lines, %v", len(l), err)
				}
			}
			var bLines uint64
			for i := 21; i <= n; i++ {
				mustAppend(t, b, "a", "stdout", fmt.Sprintf("a line %d", i))
				if i%3 == 0 {
					bLines++
					mustAppend(t, b, "b", "stderr", fmt.Sprintf("b line %d", bLines))
				}
				if got := dirBytes(t, cfg.Dir); got > cfg.MaxBytes {
					t.Fatalf("disk usage %d > MaxBytes %d", got, cfg.MaxBytes)
				}
			}
			b.Rewind()
			got := readAll(t, b)
			if len(got) == 0 {
				t.Fatal("nothing survived")
			}
			first := map[string]uint64{}
			next := map[string]uint64{}
			for _, l := range got {
				if first[l.Instance] == 0 {
					first[l.Instance] = l.Seq
				} else if l.Seq != next[l.Instance] {
					t.Fatalf("gap in survivors of %s: got %d want %d", l.Instance, l.Seq, next[l.Instance])
				}
				next[l.Instance] = l.Seq + 1
			}
			if next["a"] != n+1 || next["b"] != bLines+1 {
				t.Fatalf("newest lines missing: next %v", next)
			}
			// Every unacked line older than the survivors is counted, exactly.
			drops := b.Dropped()
			for inst, f := range first {
				low := uint64(1)
				if inst == "a" && tt.ackFirst > 0 {
					low = tt.ackFirst + 1
				}
				want := DropInfo{Count: f - low, First: low, Last: f - 1}
				if f == low {
					want = DropInfo{}
				}
				if drops[inst] != want {
					t.Fatalf("drops[%s] = %+v, want %+v (first survivor %d)", inst, drops[inst], want, f)
				}
			}
			if st := b.Stats(); st.Unacked != uint64(len(got)) || st.Bytes != dirBytes(t, cfg.Dir) {
				t.Fatalf("stats %+v, read %d lines, disk %d", st, len(got), dirBytes(t, cfg.Dir))
			}
			if d := b.TakeDropped(); d["a"].Count == 0 || len(b.Dropped()) != 0 {
				t.Fatalf("TakeDropped %v then Dropped %v", d, b.Dropped())
			}
		})
	}
}

func TestAppendSplitsLongLines(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxLineBytes = 4
	b := openT(t, cfg)
	for _, text := range []string{"", "abcd", "abcdefghij", "ab€de"} {
		mustAppend(t, b, "i", "stdout", text)
	}
	equalKeys(t, "split", readAll(t, b), []string{
		"i/stdout#1:", "i/stdout#2:abcd",
		"i/stdout#3:abcd+", "i/stdout#4:efgh+", "i/stdout#5:ij",
		"i/stdout#6:ab+", "i/stdout#7:€d+", "i/stdout#8:e",
	})
}

func TestReadWait(t *testing.T) {
	b := openT(t, testConfig(t, ""))
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := b.ReadWait(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadWait on empty buffer: %v", err)
	}
	got := make(chan []Line)
	go func() {
		lines, _ := b.ReadWait(context.Background(), 10)
		got <- lines
	}()
	mustAppend(t, b, "i", "stdout", "hello")
	equalKeys(t, "ReadWait", <-got, []string{"i/stdout#1:hello"})

	errc := make(chan error)
	go func() {
		_, err := b.ReadWait(context.Background(), 10)
		errc <- err
	}()
	b.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadWait after Close: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"empty dir", func(c *Config) { c.Dir = "" }, false},
		{"tiny max bytes", func(c *Config) { c.MaxBytes = 100 }, false},
		{"segment clamped", func(c *Config) { c.MaxBytes = 4096; c.SegmentBytes = 1 << 20 }, true},
		{"tiny segment", func(c *Config) { c.SegmentBytes = 10 }, false},
		{"line too short", func(c *Config) { c.MaxLineBytes = 2 }, false},
		{"line too long", func(c *Config) { c.MaxLineBytes = 2 << 20 }, false},
		{"negative interval", func(c *Config) { c.Sync.Interval = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			tt.modify(&cfg)
			b, err := Open(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("Open err = %v, want ok=%v", err, tt.ok)
			}
			if b != nil {
				if b.cfg.SegmentBytes > b.cfg.MaxBytes/4 {
					t.Fatalf("segment bytes %d not clamped to %d", b.cfg.SegmentBytes, b.cfg.MaxBytes/4)
				}
				b.Close()
			}
		})
	}
	b := openT(t, testConfig(t, ""))
	for _, in := range []string{"", strings.Repeat("x", maxNameBytes+1)} {
		if err := b.Append(in, "stdout", "x"); err == nil {
			t.Fatalf("Append with instance of %d bytes succeeded", len(in))
		}
	}
}

func TestConcurrentAppendReadAck(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxBytes, cfg.SegmentBytes = 64<<20, 4096
	b := openT(t, cfg)
	const writers, perWriter = 6, 1500

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			inst := fmt.Sprint("inst-", w)
			for i := 1; i <= perWriter; i++ {
				if err := b.Append(inst, "stdout", fmt.Sprint(i)); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	last := map[string]uint64{}
	for total := 0; total < writers*perWriter; {
		lines, err := b.ReadWait(ctx, 100)
		if err != nil {
			t.Fatalf("ReadWait after %d lines: %v", total, err)
		}
		acks := map[string]uint64{}
		for _, l := range lines {
			if l.Seq != last[l.Instance]+1 || l.Text != fmt.Sprint(l.Seq) {
				t.Fatalf("%s: got seq %d text %q after seq %d", l.Instance, l.Seq, l.Text, last[l.Instance])
			}
			last[l.Instance] = l.Seq
			acks[l.Instance] = l.Seq
		}
		total += len(lines)
		mustAck(t, b, acks)
	}
	wg.Wait()
	if st := b.Stats(); st.Unacked != 0 || st.Segments > 2 || st.Dropped != 0 {
		t.Fatalf("stats after everything acked: %+v", st)
	}
}

func TestAppendBatchKeepsTimesAndLastSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Config{Dir: dir, MaxLineBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 5)
	err = b.AppendBatch("a/b/i1", []Entry{
		{Time: t0, Stream: "stdout", Text: "one"},
		{Time: t0.Add(time.Second), Stream: "stderr", Text: "two that is long"},
		{Time: t0.Add(2 * time.Second), Stream: "stdout", Text: "three"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := b.Read(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 || lines[1].Stream != "stderr" || !lines[1].Partial || !lines[1].Time.Equal(t0.Add(time.Second)) || lines[3].Text != "three" || lines[3].Seq != 4 {
		t.Fatalf("lines: %+v", lines)
	}
	want := map[string]time.Time{"stdout": t0.Add(2 * time.Second), "stderr": t0.Add(time.Second)}
	check := func(b *Buffer) {
		t.Helper()
		got := b.Last("a/b/i1")
		if len(got) != 2 || !got["stdout"].Equal(want["stdout"]) || !got["stderr"].Equal(want["stderr"]) {
			t.Fatalf("last = %v, want %v", got, want)
		}
	}
	check(b)
	// Acked and deleted segments: the state file must still know.
	if err := b.Ack(map[string]uint64{"a/b/i1": 4}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(Config{Dir: dir, MaxLineBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check(b)
	if n := b.Stats().Unacked; n != 0 {
		t.Fatalf("unacked after restart = %d", n)
	}
}

func TestAckDroppedKeepsLaterDrops(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxBytes, cfg.SegmentBytes = 4096, 512
	b := openT(t, cfg)
	flood := func(from, to int) {
		for i := from; i <= to; i++ {
			mustAppend(t, b, "a", "stdout", fmt.Sprintf("a line %d", i))
		}
	}
	flood(1, 200)
	report := b.Dropped()
	if report["a"].Count == 0 {
		t.Fatal("no drops to report")
	}
	flood(201, 400) // more drops after the report was taken
	before := b.Dropped()["a"]
	if err := b.AckDropped(report); err != nil {
		t.Fatal(err)
	}
	after := b.Dropped()["a"]
	if after.Count != before.Count-report["a"].Count || after.First != report["a"].Last+1 || after.Last != before.Last {
		t.Fatalf("report %+v, before %+v, after %+v", report["a"], before, after)
	}
	if err := b.AckDropped(map[string]DropInfo{"a": after}); err != nil {
		t.Fatal(err)
	}
	if d := b.Dropped(); len(d) != 0 {
		t.Fatalf("drops left after acking all: %v", d)
	}
}

// TestReadCacheMatchesDisk: lines served from the in-memory cache equal
// those read back from the segments, across rotations, acks and drops.
func TestReadCacheMatchesDisk(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxBytes, cfg.SegmentBytes = 64<<10, 4<<10
	b := openT(t, cfg)
	for i := 1; i <= 2000; i++ {
		inst := fmt.Sprintf("i%d", i%3)
		mustAppend(t, b, inst, "stdout", fmt.Sprintf("line %d %s", i, strings.Repeat("x", i%50)))
		if i%500 == 0 {
			mustAck(t, b, map[string]uint64{inst: uint64(i / 6)})
		}
	}
	b.Rewind()
	fromCache := readAll(t, b)
	b.mu.Lock()
	b.cache.reset()
	b.mu.Unlock()
	b.Rewind()
	fromDisk := readAll(t, b)
	if len(fromCache) == 0 || !reflect.DeepEqual(fromCache, fromDisk) {
		t.Fatalf("cache gave %d lines, disk %d; equal: %v", len(fromCache), len(fromDisk), reflect.DeepEqual(fromCache, fromDisk))
	}
}

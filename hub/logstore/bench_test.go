package logstore

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func benchConfig(b *testing.B) Config {
	return Config{
		Dir:     b.TempDir(),
		Logger:  slog.New(slog.DiscardHandler),
		Default: Retention{MaxBytes: 512 << 20}, // also exercise retention
	}
}

// BenchmarkAppend appends batches of 1000 records with 200-byte lines, as
// an agent's shipper would; records/s is the figure of merit.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name  string
		apps  int
		insts int
	}{
		{"apps=1", 1, 4},
		{"apps=10", 10, 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openT(b, benchConfig(b))
			line := strings.Repeat("x", 200)
			batch := make([]Record, 1000)
			seqs := make([]uint64, bc.insts)
			for i := range batch {
				k := i % bc.insts
				batch[i] = Record{
					Tenant: "tenant-1", App: fmt.Sprintf("app-%d", k%bc.apps),
					Instance: fmt.Sprintf("instance-%d", k), Stream: "stdout", Line: line,
				}
			}
			base := time.Now()
			b.SetBytes(int64(len(batch) * len(line)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				now := base.Add(time.Duration(n) * time.Millisecond)
				for i := range batch {
					k := i % bc.insts
					seqs[k]++
					batch[i].Seq, batch[i].Time = seqs[k], now
				}
				if stored, err := s.Append(batch); err != nil || stored != len(batch) {
					b.Fatalf("append: %d, %v", stored, err)
				}
				n++
			}
			b.ReportMetric(float64(n*len(batch))/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkQuery queries one app holding 200k records (about 46 MiB).
func BenchmarkQuery(b *testing.B) {
	cfg := benchConfig(b)
	s := openT(b, cfg)
	const n = 200_000
	base := time.Now().Add(-time.Hour) // well inside MaxAge
	batch := make([]Record, 0, 1000)
	for i := range n {
		line := fmt.Sprintf("%07d %s", i, strings.Repeat("x", 192))
		if i%1000 == 0 {
			line += " needle"
		}
		batch = append(batch, Record{
			Time: base.Add(time.Duration(i) * time.Millisecond), Tenant: "tenant-1", App: "app",
			Instance: fmt.Sprintf("instance-%d", i%4), Stream: "stdout", Seq: uint64(i/4 + 1), Line: line,
		})
		if len(batch) == cap(batch) {
			if _, err := s.Append(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	last := s.Stats().LastPos
	for _, bc := range []struct {
		name string
		q    Query
		want int
	}{
		{"tail100", Query{Limit: 100}, 100},
		{"follow", Query{AfterPos: last - 50}, 50},
		{"range1000", Query{Since: base.Add(100 * time.Second), Until: base.Add(101 * time.Second)}, 1000},
		{"grep-fullscan", Query{Grep: "needle"}, n / 1000},
		{"tail10000", Query{}, DefaultQueryLimit},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := bc.q
			q.Tenant, q.App = "tenant-1", "app"
			b.ReportAllocs()
			for b.Loop() {
				recs, _, err := s.Query(q)
				if err != nil || len(recs) != bc.want {
					b.Fatalf("query: %d records, %v", len(recs), err)
				}
			}
			if bc.name == "grep-fullscan" {
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "scanned/s")
			}
		})
	}
}

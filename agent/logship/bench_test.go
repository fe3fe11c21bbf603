package logship

import (
	"strings"
	"testing"
)

func BenchmarkAppend(b *testing.B) {
	line := strings.Repeat("x", 120) // a typical log line
	for _, bc := range []struct {
		name string
		sync SyncPolicy
	}{
		{"default", SyncPolicy{}},
		{"every-append", SyncEveryAppend()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b, "")
			cfg.Sync = bc.sync
			cfg.MaxBytes = 64 << 20 // exercise drops and rotation too
			buf := openT(b, cfg)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if err := buf.Append("instance-1", "stdout", line); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

func BenchmarkWriter(b *testing.B) {
	chunk := []byte(strings.Repeat(strings.Repeat("y", 79)+"\n", 50)) // 50 lines a write
	buf := openT(b, testConfig(b, ""))
	w := buf.Writer("instance-1", "stdout")
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*50)/b.Elapsed().Seconds(), "lines/s")
}

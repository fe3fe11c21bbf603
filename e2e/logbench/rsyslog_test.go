package logbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireRsyslogd skips the test when rsyslogd is not installed, or fails
// it when WHARF_REQUIRE_RSYSLOG=1.
func requireRsyslogd(tb testing.TB) {
	tb.Helper()
	if _, err := (Rsyslog{}).binary(); err != nil {
		if os.Getenv("WHARF_REQUIRE_RSYSLOG") == "1" {
			tb.Fatalf("WHARF_REQUIRE_RSYSLOG=1: %v", err)
		}
		tb.Skip(err)
	}
}

// writeFiles writes files × lines numbered lines of size bytes, numbers
// running on from file to file, and returns their paths.
func writeFiles(tb testing.TB, dir string, files, lines, size int) []string {
	tb.Helper()
	var paths []string
	start := time.Now()
	var total int64
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("app%d.log", i))
		n, err := WriteLines(p, i*lines, lines, size)
		if err != nil {
			tb.Fatal(err)
		}
		total += n
		paths = append(paths, p)
	}
	d := time.Since(start)
	tb.Logf("wrote %d files, %.1f MiB in %v (%.0f MiB/s)", files, mib(total), d.Round(time.Millisecond), mib(total)/d.Seconds())
	return paths
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// runRsyslog runs r over fresh files and checks that every line arrived
// exactly once and that rsyslogd is gone afterwards.
func runRsyslog(tb testing.TB, r Rsyslog, files, lines, size int) RsyslogRun {
	tb.Helper()
	requireRsyslogd(tb)
	dir := tb.TempDir()
	paths := writeFiles(tb, dir, files, lines, size)
	s := newSink(tb)
	total := int64(files * lines)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := r.Run(ctx, dir, paths, s.Addr(), total, s)
	if err != nil {
		tb.Fatal(err)
	}
	pid := rsyslogPID(tb, run.Dir)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("rsyslogd %d still exists after Run: %v", pid, err)
	}
	missing, dup := s.Check(int(total))
	if run.Lines != total || s.Count() != total || missing != 0 || dup != 0 || s.Unnumbered() != 0 || s.Err() != nil {
		tb.Fatalf("lines %d (sink %d) of %d: missing %d, dup %d, unnumbered %d, framing %v",
			run.Lines, s.Count(), total, missing, dup, s.Unnumbered(), s.Err())
	}
	// Raw lines arrive byte for byte; RFC 5424 adds a header and framing.
	if raw := r.Format == FormatRaw; raw && s.Bytes() != run.Bytes || !raw && s.Bytes() <= run.Bytes {
		tb.Fatalf("%v: sink got %d bytes for %d bytes of files", r.Format, s.Bytes(), run.Bytes)
	}
	if run.Bytes != total*int64(size) || run.Wall <= 0 || run.CPU <= 0 || run.FirstLine <= 0 || run.FirstLine > run.Wall {
		tb.Fatalf("implausible run: %+v", run)
	}
	tb.Logf("rsyslog %v, %d workers, CPUs %v: %d lines, %.1f MiB in %v (first line after %v), CPU %v: %.1f MiB/s, %.1f MiB/s per core, %.0f lines/s; sink got %.1f MiB",
		r.Format, max(r.Workers, 1), r.CPUs, run.Lines, mib(run.Bytes), run.Wall.Round(time.Millisecond), run.FirstLine.Round(time.Millisecond),
		run.CPU, run.MiBps, run.MiBpsPerCore, float64(run.Lines)/run.Wall.Seconds(), mib(s.Bytes()))
	return run
}

// rsyslogPID reads the pidfile rsyslogd wrote in a run's directory.
func rsyslogPID(tb testing.TB, dir string) int {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "rsyslogd.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return pid
}

func TestRunRsyslog(t *testing.T) {
	tests := []struct {
		name               string
		r                  Rsyslog
		files, lines, size int
		maxCores           float64 // 0: any
	}{
		{"raw", Rsyslog{}, 2, 200_000, 200, 0},
		{"rfc5424 octet counted", Rsyslog{Format: FormatRFC5424}, 2, 50_000, 200, 0},
		{"long lines", Rsyslog{}, 1, 2000, 20_000, 0},
		{"two workers", Rsyslog{Workers: 2}, 2, 50_000, 200, 0},
		// Pinned to one CPU, rsyslogd's threads share it.
		{"pinned", Rsyslog{CPUs: []int{0}}, 2, 100_000, 200, 1.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := runRsyslog(t, tt.r, tt.files, tt.lines, tt.size)
			if cores := run.CPU.Seconds() / run.Wall.Seconds(); tt.maxCores > 0 && cores > tt.maxCores && run.CPU-run.Wall > 20*time.Millisecond {
				t.Fatalf("rsyslogd used %.2f cores (CPU %v over %v), want at most %.2f", cores, run.CPU, run.Wall, tt.maxCores)
			}
		})
	}
}

func TestRunRsyslogConfig(t *testing.T) {
	requireRsyslogd(t)
	dir := t.TempDir()
	paths := writeFiles(t, dir, 1, 100, 100)
	s := newSink(t)
	run, err := RunRsyslog(context.Background(), dir, paths, s.Addr(), 100, s)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(run.Dir, "rsyslog.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Only imfile: no /dev/log, no kernel log, no journal.
	for _, m := range []string{"imuxsock", "imklog", "imjournal", "imtcp", "imudp"} {
		if strings.Contains(string(conf), m) {
			t.Errorf("config loads %s", m)
		}
	}
	for _, want := range []string{`mode="inotify"`, `readMode="0"`, `reopenOnTruncate="off"`, `addMetadata="off"`,
		`processInternalMessages="on"`, `workDirectory="` + filepath.Join(run.Dir, "work") + `"`, `string="%msg%\n"`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %s", want)
		}
	}
	// rsyslogd's own messages (its start, a warning) go to internal.log,
	// never to the sink, which has exactly the file's lines. (The file
	// may not exist yet: rsyslogd is killed as soon as the lines are in.)
	internal, _ := os.ReadFile(filepath.Join(run.Dir, "internal.log"))
	out, _ := os.ReadFile(filepath.Join(run.Dir, "rsyslogd.out"))
	t.Logf("config:\n%s\ninternal.log:\n%s\nrsyslogd.out:\n%s", conf, internal, out)
	if s.Count() != 100 || s.Unnumbered() != 0 {
		t.Fatalf("sink: %d messages, %d unnumbered", s.Count(), s.Unnumbered())
	}
}

func TestRunRsyslogErrors(t *testing.T) {
	requireRsyslogd(t)
	dir := t.TempDir()
	paths := writeFiles(t, dir, 1, 100, 100)
	s := newSink(t)
	t.Run("more lines expected than written", func(t *testing.T) {
		if _, err := RunRsyslog(context.Background(), dir, paths, s.Addr(), 101, s); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := RunRsyslog(context.Background(), dir, []string{filepath.Join(dir, "nope")}, s.Addr(), 1, s); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("no binary", func(t *testing.T) {
		_, err := Rsyslog{Path: filepath.Join(dir, "nope")}.Run(context.Background(), dir, paths, s.Addr(), 100, s)
		if !errors.Is(err, ErrNoRsyslogd) {
			t.Fatalf("err %v, want ErrNoRsyslogd", err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		// rsyslogd ships to another sink: s never sees a line, the run
		// must end on the stall, and rsyslogd must be gone.
		other := newSink(t)
		start := time.Now()
		run, err := Rsyslog{Stall: time.Second}.Run(context.Background(), dir, paths, other.Addr(), 100, s)
		if err == nil || !strings.Contains(err.Error(), "stalled at 0 of 100") {
			t.Fatalf("err %v, want a stall", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("stall noticed after %v", d)
		}
		pid := rsyslogPID(t, run.Dir)
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("rsyslogd %d still exists after a stall: %v", pid, err)
		}
		waitCount(t, other, 100)
	})
	t.Run("rsyslogd exits", func(t *testing.T) {
		fake := filepath.Join(t.TempDir(), "rsyslogd")
		script := "#!/bin/sh\n[ \"$1\" = -N1 ] && exit 0\necho giving up; exit 3\n"
		if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Rsyslog{Path: fake}.Run(context.Background(), dir, paths, s.Addr(), 100, s)
		if err == nil || !strings.Contains(err.Error(), "rsyslogd exited") || !strings.Contains(err.Error(), "giving up") {
			t.Fatalf("err %v, want the exit and its output", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := RunRsyslog(ctx, dir, paths, newSink(t).Addr(), 100, s)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the deadline", err)
		}
	})
}

// BenchmarkRsyslogImfile ships 1M lines of 200 bytes (2 files of 500k,
// ~191 MiB) through rsyslogd once per configuration, whatever b.N is, and
// reports MiB/s (wall), MiB/s per CPU-second of rsyslogd, lines/s and the
// cores rsyslogd kept busy. One run can be off by a lot on a shared
// machine: use -count and take medians.
func BenchmarkRsyslogImfile(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    Rsyslog
	}{
		{"raw", Rsyslog{}},
		{"raw-cpu0", Rsyslog{CPUs: []int{0}}},
		{"rfc5424", Rsyslog{Format: FormatRFC5424}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			run := runRsyslog(b, bc.r, 2, 500_000, 200)
			b.ReportMetric(run.MiBps, "MiB/s")
			b.ReportMetric(run.MiBpsPerCore, "MiB/s/core")
			b.ReportMetric(float64(run.Lines)/run.Wall.Seconds(), "lines/s")
			b.ReportMetric(run.CPU.Seconds()/run.Wall.Seconds(), "cores")
			b.ReportMetric(0, "ns/op")
		})
	}
}

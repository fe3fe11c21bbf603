package logbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newSink returns a sink closed at the end of the test.
func newSink(t testing.TB) *Sink {
	t.Helper()
	s, err := NewSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// send writes chunks to the sink over one connection, each in its own
// Write, and closes it.
func send(t testing.TB, s *Sink, chunks ...string) {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ch := range chunks {
		if _, err := io.WriteString(c, ch); err != nil {
			t.Fatal(err)
		}
		if len(chunks) > 1 {
			// Let the sink read the pieces apart.
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// waitCount waits up to 10 s for the sink to count n messages.
func waitCount(t testing.TB, s *Sink, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitCount(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// streamFile copies a file to the sink over one TCP connection.
func streamFile(t testing.TB, s *Sink, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.Copy(c, f); err != nil {
		t.Fatal(err)
	}
}

func TestSinkChecksStreamedFile(t *testing.T) {
	const n, size = 100_000, 200
	tests := []struct {
		name        string
		write       [][2]int // first, count
		count       int64
		missing     int
		dup         int
		bytesPerMsg int64
	}{
		{"every line once", [][2]int{{0, n}}, n, 0, 0, size},
		{"a duplicated line", [][2]int{{0, n}, {4242, 1}}, n + 1, 0, 1, size},
		{"a skipped line", [][2]int{{0, 777}, {778, n - 778}}, n - 1, 1, 0, size},
		{"both, and lines past n", [][2]int{{0, 10}, {11, n - 11}, {0, 1}, {n, 5}}, n + 5, 1, 1, size},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			var written int64
			for _, w := range tt.write {
				b, err := WriteLines(path, w[0], w[1], size)
				if err != nil {
					t.Fatal(err)
				}
				written += b
			}
			s := newSink(t)
			streamFile(t, s, path)
			waitCount(t, s, tt.count)
			// The connection is closed: wait for the sink to finish it
			// before reading the totals.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			missing, dup := s.Check(n)
			if s.Count() != tt.count || missing != tt.missing || dup != tt.dup {
				t.Fatalf("count %d, missing %d, dup %d; want %d, %d, %d", s.Count(), missing, dup, tt.count, tt.missing, tt.dup)
			}
			if s.Bytes() != written || s.Unnumbered() != 0 || s.Err() != nil {
				t.Fatalf("bytes %d (wrote %d), unnumbered %d, err %v", s.Bytes(), written, s.Unnumbered(), s.Err())
			}
		})
	}
}

// frame octet-counts msg.
func frame(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func TestSinkFraming(t *testing.T) {
	rfc := func(n int, rest string) string {
		return fmt.Sprintf("<13>1 2026-01-02T03:04:05.123456+00:00 host12 logbench0 - - - %012d %s", n, rest)
	}
	multi := rfc(1, "first line\nsecond line 000000000077 \nthird\n")
	tests := []struct {
		name       string
		chunks     []string
		count      int64
		check      int
		missing    int
		dup        int
		unnumbered int64
	}{
		{"octet counted", []string{frame(rfc(0, "a")) + frame(rfc(1, "b")) + frame(rfc(2, "c"))}, 3, 3, 0, 0, 0},
		{"octet counted with newlines in a message", []string{frame(rfc(0, "a\n")) + frame(multi) + frame(rfc(2, "\n\nc\n"))}, 3, 3, 0, 0, 0},
		{"octet counted split everywhere", splitEvery(frame(rfc(0, "a"))+frame(multi)+frame(rfc(2, "c")), 7), 3, 3, 0, 0, 0},
		{"octet counted byte by byte", splitEvery(frame(rfc(0, "x\ny")), 1), 1, 1, 0, 0, 0},
		{"octet counted dup and gap", []string{frame(rfc(0, "")) + frame(rfc(0, "")) + frame(rfc(3, ""))}, 3, 4, 2, 1, 0},
		{"octet counted without a number", []string{frame("<13>1 - - - - - - hello 123")}, 1, 0, 0, 0, 1},
		{"syslog newline framed", []string{rfc(0, "a") + "\n" + rfc(1, "b") + "\n"}, 2, 2, 0, 0, 0},
		{"plain lines, empty lines skipped, last unterminated", []string{"000000000000 a\n\n\n000000000001 b\n000000000002 c"}, 3, 3, 0, 0, 0},
		{"plain lines split everywhere", splitEvery("000000000000 a\n000000000001 b\n000000000002 c\n", 4), 3, 3, 0, 0, 0},
		{"digits then no '<' is plain text", []string{"12 apples 000000000000\n"}, 1, 1, 0, 0, 0},
		{"a longer digit run is not a number", []string{"0000000000001 a\n"}, 1, 1, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t)
			send(t, s, tt.chunks...)
			waitCount(t, s, tt.count)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			missing, dup := s.Check(tt.check)
			if s.Count() != tt.count || missing != tt.missing || dup != tt.dup || s.Unnumbered() != tt.unnumbered {
				t.Fatalf("count %d, missing %d, dup %d, unnumbered %d; want %d, %d, %d, %d",
					s.Count(), missing, dup, s.Unnumbered(), tt.count, tt.missing, tt.dup, tt.unnumbered)
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if want := int64(len(strings.Join(tt.chunks, ""))); s.Bytes() != want {
				t.Fatalf("bytes %d, want %d", s.Bytes(), want)
			}
		})
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestSinkFramingErrors(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		count int64
	}{
		{"bad length", frame("<13>1 000000000000 a") + "x7 <13>1 zzz", 1},
		{"truncated frame", frame("<13>1 000000000000 a") + "50 <13>1 short", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t)
			send(t, s, tt.data)
			waitCount(t, s, tt.count)
			// The connection ends after its framing error.
			deadline := time.Now().Add(10 * time.Second)
			for s.Err() == nil && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if s.Err() == nil {
				t.Fatal("no framing error")
			}
			t.Log(s.Err())
			if s.Count() != tt.count {
				t.Fatalf("count %d, want %d", s.Count(), tt.count)
			}
		})
	}
}

func TestSinkConnections(t *testing.T) {
	// Several connections with different framings at once: one bitmap.
	s := newSink(t)
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			var b strings.Builder
			for j := range 1000 {
				n := i*1000 + j
				if i%2 == 0 {
					fmt.Fprintf(&b, "%012d plain\n", n)
				} else {
					b.WriteString(frame(fmt.Sprintf("<13>1 - h t - - - %012d framed", n)))
				}
			}
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, b.String()); err != nil {
				t.Error(err)
			}
		}()
	}
	for range 4 {
		<-done
	}
	waitCount(t, s, 4000)
	if missing, dup := s.Check(4000); missing != 0 || dup != 0 || s.Err() != nil {
		t.Fatalf("missing %d, dup %d, err %v", missing, dup, s.Err())
	}
}

func TestSinkWaitCount(t *testing.T) {
	s := newSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitCount(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCount on an idle sink: %v", err)
	}
	if err := s.WaitCount(context.Background(), 0); err != nil {
		t.Fatalf("WaitCount(0): %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.WaitCount(context.Background(), 1000) }()
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrSinkClosed) {
			t.Fatalf("WaitCount after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitCount did not end when the sink closed")
	}
}

func TestFirstNumber(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"000000000042 x", 42, true},
		{"000000000042", 42, true},
		{"<13>1 2026-01-02T03:04:05Z h 123456789012 999999999999", 123456789012, true},
		{"1234567890123 000000000007", 7, true},
		{"12345678901 x", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got, ok := firstNumber([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("firstNumber(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkSink reports how fast one connection of 200-byte lines is
// counted and checked: the sink must be much faster than what it measures.
func BenchmarkSink(b *testing.B) {
	path := filepath.Join(b.TempDir(), "log")
	const n, size = 200_000, 200
	if _, err := WriteLines(path, 0, n, size); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	s := newSink(b)
	b.SetBytes(int64(len(data)))
	var want int64
	for b.Loop() {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(data); err != nil {
			b.Fatal(err)
		}
		c.Close()
		want += n
		waitCount(b, s, want)
	}
}

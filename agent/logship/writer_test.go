package logship

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestWriterSplitsLines(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   []string // Text, "+" suffix for Partial
	}{
		{"one write", 16, []string{"a\nb\n"}, []string{"a", "b"}},
		{"split across writes", 16, []string{"hel", "lo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"byte by byte", 16, strings.Split("ab\ncd\n", ""), []string{"ab", "cd"}},
		{"crlf", 16, []string{"a\r\nb\r", "\nc\rd\n"}, []string{"a", "b", "c\rd"}},
		{"empty lines", 16, []string{"\n\n", "x\n\n"}, []string{"", "", "x", ""}},
		{"unterminated flushed on close", 16, []string{"a\nta", "il"}, []string{"a", "tail"}},
		{"unterminated cr dropped on close", 16, []string{"tail\r"}, []string{"tail"}},
		{"long line one write", 4, []string{"abcdefghij\n"}, []string{"abcd+", "efgh+", "ij"}},
		{"long line exact multiple", 4, []string{"abcdefgh\n"}, []string{"abcd+", "efgh"}},
		{"long line across writes", 4, []string{"ab", "cdef", "g", "hij\nk\n"}, []string{"abcd+", "efgh+", "ij", "k"}},
		{"long line exact with crlf", 4, []string{"abcd\r", "\n"}, []string{"abcd"}},
		{"long line cr inside", 4, []string{"abcd\r", "x\n"}, []string{"abcd+", "\rx"}},
		{"long unterminated", 4, []string{"abcdefghij"}, []string{"abcd+", "efgh+", "ij"}},
		{"utf8 not cut", 4, []string{"ab€cd\n"}, []string{"ab+", "€c+", "d"}},
		{"nothing", 4, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.MaxLineBytes = tt.max
			b := openT(t, cfg)
			w := b.Writer("i", "stderr")
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("write %q: %d, %v", s, n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			lines := readAll(t, b)
			var got []string
			for i, l := range lines {
				if l.Seq != uint64(i+1) || l.Stream != "stderr" || l.Instance != "i" {
					t.Fatalf("line %d: %+v", i, l)
				}
				if len(l.Text) > tt.max {
					t.Fatalf("piece %q longer than %d", l.Text, tt.max)
				}
				s := l.Text
				if l.Partial {
					s += "+"
				}
				got = append(got, s)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if _, err := w.Write([]byte("x\n")); !errors.Is(err, ErrClosed) {
				t.Fatalf("write after close: %v", err)
			}
		})
	}
}

func TestWriterInterleavedStreams(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MaxLineBytes = 4
	b := openT(t, cfg)
	out, errw := b.Writer("i", "stdout"), b.Writer("i", "stderr")
	for _, step := range []struct {
		w io.Writer
		s string
	}{{out, "abcdef"}, {errw, "E\n"}, {out, "gh\n"}} {
		if _, err := step.w.Write([]byte(step.s)); err != nil {
			t.Fatal(err)
		}
	}
	// Pieces of one line share instance and stream but not necessarily
	// consecutive seqs.
	equalKeys(t, "interleaved", readAll(t, b), []string{
		"i/stdout#1:abcd+", "i/stderr#2:E", "i/stdout#3:efgh",
	})
}

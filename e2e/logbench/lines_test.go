package logbench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteLines(t *testing.T) {
	tests := []struct {
		name           string
		first, n, size int
	}{
		{"minimal lines", 0, 3, MinLineSize},
		{"200 bytes", 7, 1000, 200},
		{"longer than the filler", 999_999_999_990, 10, 400},
		{"lines over a chunk", 3, 3, 3 << 20},
		{"none", 5, 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			got, err := WriteLines(path, tt.first, tt.n, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(tt.n * tt.size); got != want || int64(len(data)) != want {
				t.Fatalf("wrote %d bytes, file has %d, want %d", got, len(data), want)
			}
			for i := range tt.n {
				line := data[i*tt.size : (i+1)*tt.size]
				if prefix := fmt.Sprintf("%012d ", tt.first+i); string(line[:13]) != prefix {
					t.Fatalf("line %d starts %q, want %q", i, line[:13], prefix)
				}
				if bytes.IndexByte(line, '\n') != tt.size-1 {
					t.Fatalf("line %d: newline at %d, want only at %d", i, bytes.IndexByte(line, '\n'), tt.size-1)
				}
				if v, ok := firstNumber(line[:tt.size-1]); !ok || v != int64(tt.first+i) {
					t.Fatalf("line %d: first number %d, %v", i, v, ok)
				}
				if bytes.ContainsAny(line[13:], "0123456789") {
					t.Fatalf("line %d: digits in the filler", i)
				}
			}
		})
	}
}

func TestWriteLinesAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	for _, first := range []int{0, 10} {
		if _, err := WriteLines(path, first, 10, 50); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 20*50 || string(data[19*50:19*50+12]) != "000000000019" {
		t.Fatalf("file: %d bytes, last line %q", len(data), data[len(data)-50:])
	}
}

func TestWriteLinesRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name           string
		first, n, size int
	}{
		{"too short", 0, 1, MinLineSize - 1},
		{"negative first", -1, 1, 100},
		{"negative count", 0, -1, 100},
		{"numbers too large", maxNumber - 1, 2, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := WriteLines(filepath.Join(dir, tt.name), tt.first, tt.n, tt.size); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// BenchmarkWriteLines reports the write speed (must be well over 500 MB/s):
// 64 MiB of 200-byte lines per op, into one file rewritten each op.
func BenchmarkWriteLines(b *testing.B) {
	path := filepath.Join(b.TempDir(), "log")
	const size, n = 200, 64 << 20 / 200
	b.SetBytes(size * n)
	for b.Loop() {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		if _, err := WriteLines(path, 0, n, size); err != nil {
			b.Fatal(err)
		}
	}
}

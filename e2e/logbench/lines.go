package logbench

import (
	"fmt"
	"os"
)

const (
	// numDigits is the width of a line number; a line starts with the
	// number and a space.
	numDigits = 12
	// MinLineSize is the shortest line WriteLines writes: the number, a
	// space and '\n', no filler.
	MinLineSize = numDigits + 2
	// maxNumber bounds line numbers to what numDigits can hold.
	maxNumber = 1_000_000_000_000
)

// filler is repeated after the number. It holds no digits, so a line's
// only 12-digit run is its number, and it does not start with '<', so a line
// is never mistaken for an octet-counted syslog frame.
const filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua "

// WriteLines appends n lines numbered first, first+1, … to path (created
// if missing) and returns the bytes written. Every line is exactly size
// bytes including its '\n' (size ≥ MinLineSize): the number as %012d, a
// space, then filler letters. Writes go out in chunks of about 1 MiB, so
// this runs at page-cache speed; it does not fsync.
func WriteLines(path string, first, n, size int) (int64, error) {
	switch {
	case size < MinLineSize:
		return 0, fmt.Errorf("line size %d: at least %d bytes", size, MinLineSize)
	case first < 0 || n < 0:
		return 0, fmt.Errorf("lines %d+%d: negative", first, n)
	case first+n > maxNumber:
		return 0, fmt.Errorf("lines %d+%d: numbers past %d digits", first, n, numDigits)
	}
	line := make([]byte, size)
	line[numDigits] = ' '
	for i := numDigits + 1; i < size-1; i++ {
		line[i] = filler[(i-numDigits-1)%len(filler)]
	}
	line[size-1] = '\n'

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	var written int64
	buf := make([]byte, 0, max(1<<20, size))
	for i := first; i < first+n; i++ {
		if len(buf)+size > cap(buf) {
			m, err := f.Write(buf)
			written += int64(m)
			if err != nil {
				f.Close()
				return written, err
			}
			buf = buf[:0]
		}
		off := len(buf)
		buf = append(buf, line...)
		putNumber(buf[off:off+numDigits], i)
	}
	m, err := f.Write(buf)
	written += int64(m)
	if err != nil {
		f.Close()
		return written, err
	}
	return written, f.Close()
}

// putNumber writes v as len(dst) decimal digits, zero-padded.
func putNumber(dst []byte, v int) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

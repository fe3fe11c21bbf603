package exec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Log files hold one line per line the instance wrote:
//
//	2026-05-07T21:09:36.123456789Z the line
//
// The supervisor stamps each line as it reads it from the instance's pipe.
// Files are appended to across restarts of the instance and removed with it.

// maxLine is the longest line kept whole; longer ones are split.
const maxLine = 64 << 10

// followPoll is how often a follower looks for new lines.
const followPoll = 50 * time.Millisecond

// copyLines reads r line by line and appends each line, stamped, to w. It
// reads to the end even when w fails (a full disk), so that the instance
// never blocks on, or dies of, its own output; it then returns w's first
// error.
func copyLines(w io.Writer, r io.Reader, now func() time.Time) error {
	br := bufio.NewReaderSize(r, maxLine)
	buf := make([]byte, 0, 256)
	var werr error
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && werr == nil {
			line = bytes.TrimSuffix(line, []byte("\n"))
			buf = now().UTC().AppendFormat(buf[:0], time.RFC3339Nano)
			buf = append(buf, ' ')
			buf = append(buf, line...)
			buf = append(buf, '\n')
			_, werr = w.Write(buf)
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return werr
		default:
			return err
		}
	}
}

// parseLine parses one line of a log file (without its newline).
func parseLine(b []byte, stream string) driver.LogLine {
	ts, rest, ok := bytes.Cut(b, []byte(" "))
	t, err := parseStamp(ts)
	if !ok || err != nil {
		return driver.LogLine{Stream: stream, Line: string(b)}
	}
	return driver.LogLine{Time: t, Stream: stream, Line: string(bytes.TrimSuffix(rest, []byte("\r")))}
}

// parseStamp parses the supervisor's stamps, "2006-01-02T15:04:05.999999999Z"
// (UTC, 1 to 9 fraction digits, or none), without time.Parse's generality;
// anything else goes to time.Parse.
func parseStamp(b []byte) (time.Time, error) {
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	if len(b) >= 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[len(b)-1] == 'Z' {
		y, ok1 := num(b[0:4])
		mo, ok2 := num(b[5:7])
		d, ok3 := num(b[8:10])
		h, ok4 := num(b[11:13])
		mi, ok5 := num(b[14:16])
		s, ok6 := num(b[17:19])
		frac := b[19 : len(b)-1]
		ns, ok7 := 0, true
		if len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				ok7 = false
			} else {
				ns, ok7 = num(frac[1:])
				for i := len(frac) - 1; i < 9; i++ {
					ns *= 10
				}
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
			if t.Day() == d { // not Feb 30
				return t, nil
			}
		}
	}
	return time.Parse(time.RFC3339Nano, string(b))
}

// tailChunk bounds one read of a log file, so that a follower catching up
// with a large backlog holds a bounded buffer.
const tailChunk = 1 << 20

// tail reads the complete lines appended to one log file.
type tail struct {
	stream  string
	f       *os.File
	partial []byte
	buf     []byte
}

func openTail(path, stream string) (*tail, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &tail{stream: stream}, nil // nothing written yet
	}
	if err != nil {
		return nil, err
	}
	return &tail{stream: stream, f: f}, nil
}

func (t *tail) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// read returns the lines completed since the last call.
func (t *tail) read(path string) ([]driver.LogLine, error) {
	if t.f == nil {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		t.f = f
	}
	if t.buf == nil {
		t.buf = make([]byte, tailChunk+2*maxLine) // a partial line is at most maxLine and its stamp
	}
	// The partial line first, then up to tailChunk new bytes.
	b := append(t.buf[:0], t.partial...)
	n, err := io.ReadFull(t.f, t.buf[len(b):len(b)+tailChunk])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	b = t.buf[:len(b)+n]
	var out []driver.LogLine
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		out = append(out, parseLine(b[:i], t.stream))
		b = b[i+1:]
	}
	t.partial = append(t.partial[:0], b...)
	return out, nil
}

// mergeLines merges two streams, each in time order, into one in time
// order; on equal times a's line comes first.
func mergeLines(a, b []driver.LogLine) []driver.LogLine {
	out := make([]driver.LogLine, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].Time.Before(a[0].Time) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// Logs implements driver.Driver.
func (d *Driver) Logs(ctx context.Context, instanceID string, opts driver.LogOptions, fn func(driver.LogLine) error) error {
	dir, err := d.ownDir(instanceID)
	if err != nil {
		return err
	}
	outPath, errPath := filepath.Join(dir, fileStdout), filepath.Join(dir, fileStderr)
	out, err := openTail(outPath, "stdout")
	if err != nil {
		return err
	}
	defer out.close()
	errT, err := openTail(errPath, "stderr")
	if err != nil {
		return err
	}
	defer errT.close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		o, err := out.read(outPath)
		if err != nil {
			return err
		}
		e, err := errT.read(errPath)
		if err != nil {
			return err
		}
		for _, l := range mergeLines(o, e) {
			if !opts.Since.IsZero() && l.Time.Before(opts.Since) {
				continue
			}
			if err := fn(l); err != nil {
				return err
			}
		}
		if !opts.Follow {
			return nil
		}
		if len(o)+len(e) > 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, fileState)); errors.Is(err, os.ErrNotExist) {
			return nil // removed by Stop
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
}

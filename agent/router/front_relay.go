package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// relayHead reads the instance's answer head (status line first, in
// line; 1xx answers skipped) and writes it, filtered, to the client's
// buffer. Nothing reaches the client before the head is whole and valid:
// on an error the buffer is dropped.
func (r *Router) relayHead(fc *frontConn, q *frontReq, bc *backendConn, line []byte, id string) (status int, length int64, chunked, closeAfter bool, err error) {
	defer func() {
		if err != nil {
			fc.bw.Reset(fc.c)
		}
	}()
	for {
		if len(line) < 14 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[12] != ' ' && line[12] != '\r' && line[12] != '\n' {
			return 0, 0, false, false, fmt.Errorf("instance answered %q", bytes.TrimSpace(line))
		}
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return 0, 0, false, false, fmt.Errorf("instance answered %q", bytes.TrimSpace(line))
		}
		if status >= 200 {
			break
		}
		if status == 101 {
			return 0, 0, false, false, errors.New("instance switched protocols without an upgrade asked for")
		}
		// 1xx informational answers (103 Early Hints): not passed on.
		for {
			if line, err = bc.br.ReadSlice('\n'); err != nil {
				return 0, 0, false, false, err
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
		if line, err = bc.br.ReadSlice('\n'); err != nil {
			return 0, 0, false, false, err
		}
	}
	http10 := line[7] == '0' // closes after the answer unless it says keep-alive
	sawKeep := false
	bw := fc.bw
	bw.WriteString("HTTP/1.1")
	bw.Write(bytes.TrimRight(line[8:], "\r\n"))
	bw.WriteString("\r\nX-Request-Id: ")
	bw.WriteString(id)
	bw.WriteString("\r\n")
	length = -1
	for {
		if line, err = bc.br.ReadSlice('\n'); err != nil {
			return 0, 0, false, false, err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, colon)
		if !ok || len(k) == 0 || !isToken(k) || bytes.IndexByte(line, '\r') >= 0 {
			return 0, 0, false, false, fmt.Errorf("instance sent header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, hLength):
			n, perr := strconv.ParseInt(string(v), 10, 64)
			if perr != nil || n < 0 || (length >= 0 && n != length) {
				return 0, 0, false, false, fmt.Errorf("instance sent Content-Length %q", v)
			}
			length = n
			continue
		case bytes.EqualFold(k, hTE):
			if !bytes.EqualFold(v, []byte("chunked")) {
				return 0, 0, false, false, fmt.Errorf("instance sent Transfer-Encoding %q", v)
			}
			chunked = true
			continue
		case bytes.EqualFold(k, hConn):
			for _, tok := range bytes.Split(v, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				switch {
				case bytes.EqualFold(tok, vClose):
					closeAfter = true
				case bytes.EqualFold(tok, vKeep):
					sawKeep = true
				case len(tok) > 0:
					return 0, 0, false, false, fmt.Errorf("instance named %q hop-by-hop", tok)
				}
			}
			continue
		case bytes.EqualFold(k, hKeep), bytes.EqualFold(k, hPConn), bytes.EqualFold(k, hUpgrade):
			continue
		}
		bw.Write(line)
		bw.WriteString("\r\n")
	}
	closeAfter = closeAfter || (http10 && !sawKeep)
	if chunked {
		length = -1
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	} else if length >= 0 {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(length, 10))
		bw.WriteString("\r\n")
	}
	noBody := q.isHead || status == 204 || status == 304
	if q.close || (!chunked && length < 0 && !noBody) {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	return status, length, chunked, closeAfter, nil
}

// waitBackend flushes what the client's buffer holds when reading the
// instance would block, so that streamed answers flow.
func waitBackend(fc *frontConn, bc *backendConn) error {
	if bc.br.Buffered() == 0 && fc.bw.Buffered() > 0 {
		if err := fc.bw.Flush(); err != nil {
			return errClientGone
		}
	}
	return nil
}

// relayN passes length body bytes (-1: until the instance closes).
func relayN(fc *frontConn, bc *backendConn, length int64) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for length < 0 || n < length {
		if err := waitBackend(fc, bc); err != nil {
			return n, err
		}
		want := int64(len(buf))
		if length >= 0 {
			want = min(want, length-n)
		}
		nr, rerr := bc.br.Read(buf[:want])
		if nr > 0 {
			if _, err := fc.bw.Write(buf[:nr]); err != nil {
				return n, errClientGone
			}
			n += int64(nr)
		}
		if rerr == io.EOF && length < 0 {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
	return n, nil
}

// relayChunked passes a chunked body, framing and trailers as sent.
func relayChunked(fc *frontConn, bc *backendConn) (int64, error) {
	var n int64
	for {
		if err := waitBackend(fc, bc); err != nil {
			return n, err
		}
		line, err := bc.br.ReadSlice('\n')
		if err != nil {
			return n, err
		}
		sz, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 64)
		if err != nil || size < 0 {
			return n, fmt.Errorf("instance sent chunk size %q", bytes.TrimSpace(line))
		}
		fc.bw.Write(bytes.TrimSpace(line))
		fc.bw.WriteString("\r\n")
		if size == 0 {
			for { // trailers, then the blank line
				if err := waitBackend(fc, bc); err != nil {
					return n, err
				}
				if line, err = bc.br.ReadSlice('\n'); err != nil {
					return n, err
				}
				t := bytes.TrimRight(line, "\r\n")
				if bytes.IndexByte(t, '\r') >= 0 {
					return n, errors.New("instance sent a bad trailer")
				}
				fc.bw.Write(t)
				if _, err := fc.bw.WriteString("\r\n"); err != nil {
					return n, errClientGone
				}
				if len(t) == 0 {
					return n, nil
				}
			}
		}
		m, err := relayN(fc, bc, size)
		n += m
		if err != nil {
			return n, err
		}
		if err := waitBackend(fc, bc); err != nil {
			return n, err
		}
		if line, err = bc.br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(line, "\r\n")) != 0 {
			return n, errors.New("instance sent a chunk without its CRLF")
		}
		if _, err := fc.bw.WriteString("\r\n"); err != nil {
			return n, errClientGone
		}
	}
}

// watcher reads the client while the instance is slow to answer: an
// error there means the client went away, and the wait ends.
type watcher struct {
	done chan struct{}
	gone bool
	b    [1]byte
	n    int
}

func watch(fc *frontConn, bc *backendConn) *watcher {
	w := &watcher{done: make(chan struct{})}
	fc.setReadDeadline(time.Time{})
	go func() {
		defer close(w.done)
		n, err := fc.c.Read(w.b[:])
		w.n = n
		if n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			w.gone = true
			_ = bc.c.SetReadDeadline(time.Unix(1, 0))
		}
	}()
	return w
}

// stop ends the watch; a byte it read is kept for the next request.
func (w *watcher) stop(fc *frontConn, idle time.Duration) (gone bool) {
	fc.setReadDeadline(time.Unix(1, 0))
	<-w.done
	if w.n > 0 {
		fc.cr.pending = append(fc.cr.pending, w.b[:w.n]...)
	}
	fc.setReadDeadline(time.Now().Add(idle))
	return w.gone
}

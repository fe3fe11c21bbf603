package installer

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// download serves the wharf binary at /download/wharf-OS-ARCH.
//
// A client that accepts gzip (curl --compressed) gets it compressed, about
// a third of the bytes. The binary is compressed once, by the first such
// request, and kept in memory until the file changes; requests that come
// while it is being compressed get the binary as it is rather than wait.
//
// A download ends as soon as its request's context does: a hub node that
// stops (its server's base context ends) cuts its downloads at once, so
// that their installs go on to the next node, instead of feeding them to
// the last byte while the node shuts down.
type download struct {
	binary string // "" = this process's executable

	mu          sync.Mutex
	gz          *gzipped // the last compressed copy, nil before the first
	compressing bool
}

// gzipped is the binary compressed, with the size and modification time
// of the file it was made from.
type gzipped struct {
	size    int64
	modTime time.Time
	data    []byte
}

func (d *download) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("file") != "wharf-"+runtime.GOOS+"-"+runtime.GOARCH {
		http.Error(w, "this hub serves only wharf-"+runtime.GOOS+"-"+runtime.GOARCH, http.StatusNotFound)
		return
	}
	exe := d.binary
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	f, err := os.Open(exe)
	if err != nil {
		http.Error(w, "open the wharf binary: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "open the wharf binary: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// A write blocked on a slow client returns at once once the deadline
	// has passed; the handler then ends and the server closes the
	// connection mid-body, which the client sees as a failed download.
	rc := http.NewResponseController(w)
	stop := context.AfterFunc(r.Context(), func() { _ = rc.SetWriteDeadline(time.Now()) })
	defer stop()

	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		if gz := d.compressed(r.Context(), f, st); gz != nil {
			w.Header().Set("Content-Encoding", "gzip")
			http.ServeContent(w, r, "", gz.modTime, bytes.NewReader(gz.data))
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			http.Error(w, "read the wharf binary: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// compressed returns the binary's compressed copy. The first caller for a
// version of the file makes it (from f, which it reads to the end);
// callers while that runs, or after it failed, get nil.
func (d *download) compressed(ctx context.Context, f *os.File, st os.FileInfo) *gzipped {
	d.mu.Lock()
	if gz := d.gz; gz != nil && gz.size == st.Size() && gz.modTime.Equal(st.ModTime()) {
		d.mu.Unlock()
		return gz
	}
	if d.compressing {
		d.mu.Unlock()
		return nil
	}
	d.compressing = true
	d.mu.Unlock()

	data, err := compress(ctx, f, st.Size())
	d.mu.Lock()
	defer d.mu.Unlock()
	d.compressing = false
	if err != nil {
		return nil
	}
	d.gz = &gzipped{size: st.Size(), modTime: st.ModTime(), data: data}
	return d.gz
}

// compress gzips r (size bytes) at the fastest level: about a second of
// CPU for an 80 MB binary, and most of the gain of the slower levels. It
// stops when ctx ends.
func compress(ctx context.Context, r io.Reader, size int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(size / 3))
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	chunk := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := r.Read(chunk)
		if n > 0 {
			if _, werr := zw.Write(chunk[:n]); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the wharf binary: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// acceptsGzip reports whether an Accept-Encoding header value admits gzip
// (named without q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

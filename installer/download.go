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
// a third of the bytes. The first such request starts the compression, in
// the background, and the copy is kept in memory until the file changes;
// requests that come before it is ready get the binary as it is rather
// than wait.
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
		if gz := d.compressed(exe, st); gz != nil {
			w.Header().Set("Content-Encoding", "gzip")
			http.ServeContent(w, r, "", gz.modTime, bytes.NewReader(gz.data))
			return
		}
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// compressed returns the binary's compressed copy if it is made, and
// else starts making it: the clients of the meantime get the binary as it
// is (on a busy hub the compression takes seconds, which a client would
// take for a stall). A compression that fails is tried again by the next
// gzip client.
func (d *download) compressed(path string, st os.FileInfo) *gzipped {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gz := d.gz; gz != nil && gz.size == st.Size() && gz.modTime.Equal(st.ModTime()) {
		return gz
	}
	if !d.compressing {
		d.compressing = true
		// Bounded work (one read of the file), so it needs no context.
		go d.compress(path, st)
	}
	return nil
}

// compress makes the compressed copy of the binary at path, which was
// of st's size and time when asked for.
func (d *download) compress(path string, st os.FileInfo) {
	data, err := gzipFile(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.compressing = false
	if err == nil {
		d.gz = &gzipped{size: st.Size(), modTime: st.ModTime(), data: data}
	}
}

// gzipFile compresses a file at the fastest level: about a second of CPU
// for an 80 MB binary, to about 30% of its size, most of what the slower
// levels gain.
func gzipFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if st, err := f.Stat(); err == nil {
		buf.Grow(int(st.Size() / 3))
	}
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(zw, f); err != nil {
		return nil, fmt.Errorf("compress %s: %w", path, err)
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

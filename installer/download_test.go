package installer

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// testBinary writes size bytes of half-compressible content (random
// bytes, then as many zeros) to a file and returns its path and content.
func testBinary(t testing.TB, size int) (string, []byte) {
	t.Helper()
	content := make([]byte, size)
	if _, err := rand.Read(content[:size/2]); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wharf")
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	return path, content
}

var downloadPath = "/download/wharf-" + runtime.GOOS + "-" + runtime.GOARCH

// TestDownloadGzip: a client that accepts gzip gets the binary
// compressed, from one compression kept for the next clients; others get
// it as it is.
func TestDownloadGzip(t *testing.T) {
	bin, content := testBinary(t, 4<<20)
	d := &download{binary: bin}
	srv := httptest.NewServer(Handler(func(string) []string { return nil }, bin))
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	mux.Handle("GET /download/{file}", d)
	direct := httptest.NewServer(mux)
	t.Cleanup(direct.Close)

	get := func(url, acceptEncoding string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+downloadPath, nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		// No transparent decompression: the test reads the wire.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	// The first gzip client starts the compression and gets the binary
	// as it is; the compressed copy is there soon after.
	if resp, body := get(srv.URL, "gzip"); resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, content) {
		t.Fatalf("the first gzip client got %q encoding, %d bytes; want the binary as it is", resp.Header.Get("Content-Encoding"), len(body))
	}
	waitFor(t, "the compressed copy", func() bool {
		resp, _ := get(srv.URL, "gzip")
		return resp.Header.Get("Content-Encoding") == "gzip"
	})
	for _, tc := range []struct {
		acceptEncoding string
		gzip           bool
	}{
		{"", false},
		{"identity", false},
		{"gzip", true},
		{"deflate, gzip, br, zstd", true}, // curl --compressed
		{"br;q=1.0, gzip;q=0", false},
		{"GZIP;q=0.5", true},
	} {
		resp, body := get(srv.URL, tc.acceptEncoding)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Accept-Encoding %q: status %d", tc.acceptEncoding, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", tc.acceptEncoding, resp.Header.Get("Content-Encoding"))
		}
		if tc.gzip {
			if len(body) > len(content)*6/10 {
				t.Errorf("Accept-Encoding %q: %d bytes on the wire for a %d-byte binary half of zeros", tc.acceptEncoding, len(body), len(content))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, content) {
			t.Fatalf("Accept-Encoding %q: the body (%d bytes) is not the binary", tc.acceptEncoding, len(body))
		}
	}

	// Compressed once: later gzip clients get the same copy.
	copyOf := func() *gzipped { d.mu.Lock(); defer d.mu.Unlock(); return d.gz }
	get(direct.URL, "gzip")
	waitFor(t, "the compressed copy", func() bool { return copyOf() != nil })
	first := copyOf()
	for range 3 {
		if resp, _ := get(direct.URL, "gzip"); resp.Header.Get("Content-Encoding") != "gzip" || copyOf() != first {
			t.Fatal("the binary was compressed again for a later client")
		}
	}
	// A changed binary is served as it is until it is compressed anew.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(bin, later, later); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(direct.URL, "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("a changed binary was served from the old compressed copy")
	}
	waitFor(t, "the new compressed copy", func() bool { c := copyOf(); return c != nil && c != first })
}

// TestDownloadEndsWithTheServer: a download in flight ends as soon as the
// server's base context does (a hub node shutting down), rather than
// running on to its last byte.
func TestDownloadEndsWithTheServer(t *testing.T) {
	const size = 64 << 20
	bin := filepath.Join(t.TempDir(), "wharf")
	f, err := os.Create(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil { // sparse: quick to make
		t.Fatal(err)
	}
	f.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	srv := httptest.NewUnstartedServer(Handler(func(string) []string { return nil }, bin))
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	t.Cleanup(srv.Close)

	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(mustRequest(t, srv.URL+downloadPath))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, size)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	stop() // the node shuts down with the download under way
	start := time.Now()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n+1<<20 >= size {
		t.Fatalf("the download ran on after the server's context ended: %d more bytes, %v", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the download took %v to end", took)
	}
}

func mustRequest(t testing.TB, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

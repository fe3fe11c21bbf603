package router

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// FuzzFrontParse: whatever request head the fast path accepts, net/http
// reads too, and the same way (method, target, host, body length and
// whether the connection closes after it). A head the two read apart
// would let a request be framed one way by the router and another way by
// whatever reads it next.
func FuzzFrontParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"POST /x?y=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nX-Request-Id: r1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: +5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\n Folded: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nX: a\x00b\r\n\r\n",
		"GET /%2e%2e/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			head = append(head, "\r\n\r\n"...)
		}
		if bytes.Count(head, []byte("\r\n\r\n")) != 1 {
			return // peekHead hands parse exactly one head
		}
		var q frontReq
		if !q.parse(head) {
			return // net/http's to read, or to refuse
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("the fast path accepted a head net/http refuses (%v): %q", err, head)
		}
		want := q.length
		if want < 0 {
			want = 0
		}
		if req.Method != string(q.method) || req.RequestURI != string(q.uri) || req.Host != string(q.host) ||
			req.ContentLength != want || req.Close != q.close || len(req.TransferEncoding) > 0 {
			t.Fatalf("read apart: fast %q %q host %q length %d close %v; net/http %q %q host %q length %d close %v te %v; head %q",
				q.method, q.uri, q.host, q.length, q.close, req.Method, req.RequestURI, req.Host, req.ContentLength, req.Close, req.TransferEncoding, head)
		}
	})
}

package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is an HTTP instance answering with its name.
func backend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Saw-Host", r.Host)
		w.Header().Set("X-Saw-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Saw-Proto", r.Header.Get("X-Forwarded-Proto"))
		w.Header().Set("X-Saw-Id", r.Header.Get("X-Request-Id"))
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// start runs a router on loopback with t applied.
func start(t testing.TB, tbl *Table, cfg Config) *Router {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	cfg.TCPBind = "127.0.0.1"
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tbl != nil {
		if err := r.Apply(tbl); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t testing.TB, r *Router, method, host, path string) (*http.Response, string) {
	t.Helper()
	h, _ := r.Addr()
	req, _ := http.NewRequest(method, "http://"+h.String()+path, nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutingByHostAndPath(t *testing.T) {
	web, api := backend(t, "web"), backend(t, "api")
	r := start(t, &Table{Version: 7,
		Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w1", Addr: addr(web), Version: 1}}},
			{Key: "acme/api", Backends: []Backend{{Instance: "a1", Addr: addr(api), Version: 1}}},
			{Key: "acme/empty"}},
		HTTP: []HTTPRoute{{Host: "www.example.com", Path: "/", App: "acme/web"}, {Host: "www.example.com", Path: "/api", App: "acme/api"},
			{Host: "empty.example.com", Path: "/", App: "acme/empty"}}}, Config{})
	if r.Version() != 7 {
		t.Fatalf("version %d", r.Version())
	}
	for _, tc := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"www.example.com", "/", 200, "web"},
		{"WWW.Example.COM:7080", "/x", 200, "web"},
		{"www.example.com", "/api", 200, "api"},
		{"www.example.com", "/api/v1", 200, "api"},
		{"www.example.com", "/apix", 200, "web"}, // prefixes end on a segment
		{"nobody.example.com", "/", 404, ""},
		{"empty.example.com", "/", 503, ""},
	} {
		resp, body := get(t, r, "GET", tc.host, tc.path)
		if resp.StatusCode != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
	}
	resp, _ := get(t, r, "GET", "www.example.com", "/")
	if resp.Header.Get("X-Saw-Host") != "www.example.com" || resp.Header.Get("X-Saw-For") != "127.0.0.1" ||
		resp.Header.Get("X-Saw-Proto") != "http" || resp.Header.Get("X-Saw-Id") == "" || resp.Header.Get("X-Request-Id") != resp.Header.Get("X-Saw-Id") {
		t.Fatalf("forwarded headers: %v", resp.Header)
	}
}

func TestWeightedCanaryAndRoundRobin(t *testing.T) {
	a, b, c := backend(t, "v1a"), backend(t, "v1b"), backend(t, "v2")
	r := start(t, &Table{Apps: []App{{Key: "acme/web", Weights: map[uint32]uint32{1: 90, 2: 10},
		Backends: []Backend{{Instance: "a", Addr: addr(a), Version: 1}, {Instance: "b", Addr: addr(b), Version: 1}, {Instance: "c", Addr: addr(c), Version: 2}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}}}, Config{})
	seen := map[string]int{}
	for i := 0; i < 200; i++ {
		_, body := get(t, r, "GET", "w.example.com", "/")
		seen[body]++
	}
	if seen["v2"] != 20 || seen["v1a"] != 90 || seen["v1b"] != 90 {
		t.Fatalf("200 requests at 90/10 over 2+1 instances: %v", seen)
	}
}

// TestApplyKeepsEachAppsRotation: new tables many times a second (a busy
// cluster's) do not start an app's round-robin over at its first
// instance: one that leaves the app as it was keeps its rotation, and
// one that changes the app carries each version's place over.
func TestApplyKeepsEachAppsRotation(t *testing.T) {
	var backends []Backend
	for _, name := range []string{"a", "b", "c", "d"} {
		backends = append(backends, Backend{Instance: name, Addr: addr(backend(t, name)), Version: 1})
	}
	spare := Backend{Instance: "e", Addr: addr(backend(t, "e")), Version: 1}
	table := func(v uint64, web []Backend) *Table {
		return &Table{Version: v, Apps: []App{{Key: "acme/web", Backends: web},
			{Key: "acme/other", Backends: []Backend{{Instance: fmt.Sprint("o", v), Addr: "127.0.0.1:1", Version: 1}}}},
			HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}}}
	}
	r := start(t, table(1, backends), Config{})
	seen := map[string]int{}
	for v := range uint64(40) {
		_, body := get(t, r, "GET", "w.example.com", "/")
		seen[body]++
		if err := r.Apply(table(v+2, backends)); err != nil {
			t.Fatal(err)
		}
	}
	if seen["a"] != 10 || seen["b"] != 10 || seen["c"] != 10 || seen["d"] != 10 {
		t.Fatalf("40 requests over 4 instances, a new table (another app changed) after each: %v", seen)
	}
	clear(seen)
	for v := range uint64(40) {
		_, body := get(t, r, "GET", "w.example.com", "/")
		seen[body]++
		web := backends
		if v%2 == 0 {
			web = append(slices.Clone(backends), spare)
		}
		if err := r.Apply(table(v+100, web)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		if seen[name] < 5 {
			t.Fatalf("40 requests, the app itself changed after each: %v", seen)
		}
	}
}

func TestRetryOnlyIdempotentDialFailures(t *testing.T) {
	live := backend(t, "live")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	r := start(t, &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "dead", Addr: deadAddr, Version: 1}, {Instance: "live", Addr: addr(live), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}}}, Config{})
	posts502 := 0
	for i := 0; i < 10; i++ {
		resp, body := get(t, r, "GET", "w.example.com", "/")
		if resp.StatusCode != 200 || body != "live" {
			t.Fatalf("GET with one dead instance: %d %q", resp.StatusCode, body)
		}
		// A retried request carries one X-Forwarded-For entry (the
		// client's address), not one per attempt.
		if xff := resp.Header.Get("X-Saw-For"); xff != "127.0.0.1" {
			t.Fatalf("X-Forwarded-For after a retry: %q", xff)
		}
		if resp, _ := get(t, r, "POST", "w.example.com", "/"); resp.StatusCode == http.StatusBadGateway {
			posts502++
		}
	}
	if posts502 == 0 {
		t.Fatal("POSTs were retried (none failed although half went to a dead instance)")
	}
}

func TestStatsAndAccessLog(t *testing.T) {
	web := backend(t, "web")
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	var logged, entries atomic.Int64
	r := start(t, &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w", Addr: addr(web), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}, {Host: "x.example.com", App: "acme/none"}}},
		Config{Clock: func() time.Time { return time.Unix(0, now.Load()) }, AccessLog: func(e AccessEntry) {
			defer entries.Add(1)
			if e.App == "acme/web" && e.Status == 200 && e.Instance == "w" {
				logged.Add(1)
			}
		}})
	for i := 0; i < 3; i++ {
		get(t, r, "GET", "w.example.com", "/")
	}
	get(t, r, "GET", "x.example.com", "/")
	// Counting and logging follow the response: wait for all four.
	for deadline := time.Now().Add(5 * time.Second); entries.Load() < 4 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := r.TakeStats(); len(got) != 0 {
		t.Fatalf("the current second was taken: %+v", got)
	}
	now.Store(time.Unix(1001, 0).UnixNano())
	got := r.TakeStats()
	if len(got) != 2 {
		t.Fatalf("stats: %+v", got)
	}
	var web1 *AppSecond
	for i := range got {
		if got[i].App == "acme/web" {
			web1 = &got[i]
		}
	}
	if web1 == nil || web1.Unix != 1000 || web1.Requests != 3 || web1.Status2xx != 3 || web1.BytesOut != 9 || web1.LatencyBuckets[0] != 3 {
		t.Fatalf("acme/web second: %+v", web1)
	}
	if logged.Load() != 3 {
		t.Fatalf("access log entries: %d", logged.Load())
	}
	if again := r.TakeStats(); len(again) != 0 {
		t.Fatalf("taken twice: %+v", again)
	}
}

func selfSigned(t testing.TB, name string) ([]byte, []byte, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), pool
}

// TestApplyParsesOnlyNewCertificates: a table whose certificate is the
// one served reuses it; a new one for the domain is parsed and served.
func TestApplyParsesOnlyNewCertificates(t *testing.T) {
	cert, key, _ := selfSigned(t, "*.example.com")
	r := start(t, &Table{Version: 1, Certs: []Cert{{Domain: "*.example.com", CertPEM: cert, KeyPEM: key}}}, Config{})
	first := r.table.Load().certs["*.example.com"]
	if first == nil {
		t.Fatal("no certificate served")
	}
	if err := r.Apply(&Table{Version: 2, Certs: []Cert{{Domain: "*.Example.com", CertPEM: slices.Clone(cert), KeyPEM: slices.Clone(key)}}}); err != nil {
		t.Fatal(err)
	}
	if got := r.table.Load().certs["*.example.com"]; got != first {
		t.Fatal("the same certificate was parsed again")
	}
	cert2, key2, _ := selfSigned(t, "*.example.com")
	if err := r.Apply(&Table{Version: 3, Certs: []Cert{{Domain: "*.example.com", CertPEM: cert2, KeyPEM: key2}}}); err != nil {
		t.Fatal(err)
	}
	got := r.table.Load().certs["*.example.com"]
	if got == first || !bytes.Equal(got.Certificate[0], mustDER(t, cert2)) {
		t.Fatal("a renewed certificate is not the one served")
	}
}

// TestApplyKeepsTheHostsOfTheSameRoutes: a table passing the routes of
// the last one again (the same slice) keeps its index of hosts, which a
// table of a thousand routed apps otherwise builds anew; a table with
// other routes, or equal ones in another slice, builds its own and routes
// by it.
func TestApplyKeepsTheHostsOfTheSameRoutes(t *testing.T) {
	web, api := backend(t, "web"), backend(t, "api")
	apps := func(v uint64) []App {
		return []App{{Key: "acme/web", Backends: []Backend{{Instance: fmt.Sprint("w", v), Addr: addr(web), Version: 1}}},
			{Key: "acme/api", Backends: []Backend{{Instance: "a", Addr: addr(api), Version: 1}}}}
	}
	routes := []HTTPRoute{{Host: "www.example.com", App: "acme/web"}, {Host: "WWW.example.com", Path: "/api", App: "acme/api"}}
	r := start(t, &Table{Version: 1, Apps: apps(1), HTTP: routes}, Config{})
	hosts := func() uintptr { return reflect.ValueOf(r.table.Load().hosts).Pointer() }
	first := hosts()
	if err := r.Apply(&Table{Version: 2, Apps: apps(2), HTTP: routes}); err != nil {
		t.Fatal(err)
	}
	if hosts() != first {
		t.Fatal("the same routes' hosts were built again")
	}
	if _, body := get(t, r, "GET", "www.example.com", "/api/x"); body != "api" {
		t.Fatalf("/api/x after a table with the same routes went to %q", body)
	}
	if err := r.Apply(&Table{Version: 3, Apps: apps(3), HTTP: slices.Clone(routes)}); err != nil {
		t.Fatal(err)
	}
	if hosts() == first {
		t.Fatal("routes in another slice were taken as the same without a look")
	}
	moved := slices.Clone(routes)
	moved[1].App = "acme/web"
	if err := r.Apply(&Table{Version: 4, Apps: apps(4), HTTP: moved}); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, r, "GET", "www.example.com", "/api/x"); body != "web" {
		t.Fatalf("/api/x after its route moved to acme/web went to %q", body)
	}
}

func mustDER(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

func TestHTTPSBySNIWithHTTP2(t *testing.T) {
	web := backend(t, "web")
	cert, key, pool := selfSigned(t, "*.example.com")
	r := start(t, &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w", Addr: addr(web), Version: 1}}}},
		HTTP:  []HTTPRoute{{Host: "www.example.com", App: "acme/web"}},
		Certs: []Cert{{Domain: "*.example.com", CertPEM: cert, KeyPEM: key}}}, Config{HTTPSAddr: "127.0.0.1:0"})
	_, s := r.Addr()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.String())
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DialContext: dial, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://www.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "web" || resp.ProtoMajor != 2 || resp.Header.Get("X-Saw-Proto") != "https" {
		t.Fatalf("https: %d %q HTTP/%d proto %q", resp.StatusCode, b, resp.ProtoMajor, resp.Header.Get("X-Saw-Proto"))
	}
	if _, err := c.Get("https://other.test/"); err == nil {
		t.Fatal("a name without a certificate got a TLS handshake")
	}
	if err := r.Apply(&Table{Certs: []Cert{{Domain: "bad.example.com", CertPEM: []byte("x"), KeyPEM: []byte("y")}}}); err == nil || !strings.Contains(err.Error(), "bad.example.com") {
		t.Fatalf("a bad certificate: %v", err)
	}
	if resp, _ := c.Get("https://www.example.com/"); resp == nil || resp.StatusCode != 200 {
		t.Fatal("a refused table replaced the served one")
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	// An upgrade-speaking echo backend (no WebSocket library: the upgrade
	// is what the proxy must pass through).
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	}))
	defer ws.Close()
	r := start(t, &Table{Apps: []App{{Key: "acme/ws", Backends: []Backend{{Instance: "w", Addr: addr(ws), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "ws.example.com", App: "acme/ws"}}}, Config{})
	h, _ := r.Addr()
	conn, err := net.Dial("tcp", h.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:hello\n" {
		t.Fatalf("after the upgrade: %q %v", line, err)
	}
}

func TestTCPRoutes(t *testing.T) {
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	r := start(t, nil, Config{})
	tbl := &Table{Apps: []App{{Key: "acme/db", Backends: []Backend{{Instance: "d", Addr: echo.Addr().String(), Version: 1}}}},
		TCP: []TCPRoute{{Port: port, App: "acme/db"}}}
	if err := r.Apply(tbl); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.TCPAddr(port))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "ping")
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "ping" {
		t.Fatalf("echo through the TCP route: %q", b)
	}
	// A taken port is reported; the rest still applies. Removing the
	// route closes its port.
	taken, _ := net.Listen("tcp", "127.0.0.1:0")
	defer taken.Close()
	tbl.TCP = append(tbl.TCP, TCPRoute{Port: taken.Addr().(*net.TCPAddr).Port, App: "acme/db"})
	if err := r.Apply(tbl); err == nil {
		t.Fatal("a taken port was not reported")
	}
	if r.TCPAddr(port) == "" {
		t.Fatal("a taken port dropped the other route")
	}
	if err := r.Apply(&Table{}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Fatal("a removed TCP route still listens")
	}
}

func FuzzRouteLookup(f *testing.F) {
	for _, s := range []string{"www.example.com", "WWW.EXAMPLE.COM:80", "[::1]:80", "", ":", "a..b", "x.example.com."} {
		f.Add(s, "/api/x")
	}
	r, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	r.Apply(&Table{Apps: []App{{Key: "a/b"}}, HTTP: []HTTPRoute{{Host: "www.example.com", Path: "/api", App: "a/b"}}})
	f.Fuzz(func(t *testing.T, host, path string) {
		req := httptest.NewRequest("GET", "http://x/", nil)
		req.Host = host
		req.URL.Path = path
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != 404 && w.Code != 503 {
			t.Fatalf("%q %q: %d", host, path, w.Code)
		}
	})
}

func BenchmarkProxy(b *testing.B) {
	web := backend(b, "web")
	r := start(b, &Table{Apps: []App{{Key: "acme/web", Backends: []Backend{{Instance: "w", Addr: addr(web), Version: 1}}}},
		HTTP: []HTTPRoute{{Host: "w.example.com", App: "acme/web"}}}, Config{})
	h, _ := r.Addr()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", "http://"+h.String()+"/", nil)
			req.Host = "w.example.com"
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

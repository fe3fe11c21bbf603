package drain

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testTLS makes a self-signed CA and a server certificate for 127.0.0.1
// and localhost signed by it. It returns the server's config and a client
// config that trusts only that CA.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wharf drain test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return server, client
}

// testLines is a batch that exercises the formats: every stream, characters
// that need escaping somewhere, non-ASCII text, a leading U+FEFF, an empty
// line and a long one.
func testLines() []Line {
	t0 := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
	mk := func(i int, tenant, app, inst, stream, text string) Line {
		return Line{
			Time:     t0.Add(time.Duration(i) * time.Millisecond),
			Tenant:   tenant,
			App:      app,
			Instance: inst,
			Stream:   stream,
			Seq:      uint64(100 + i),
			Line:     text,
		}
	}
	return []Line{
		mk(0, "acme", "web", "web-1", "stdout", "GET / 200"),
		mk(1, "acme", "web", "web-1", "stderr", `panic: bad [thing] "quoted" \ back]slash`),
		mk(2, "acme", "web", "web-2", "router", "Grüße, 世界 🚢"),
		mk(3, "acme", "worker", "worker-1", "stdout", "\uFEFFstarts with a BOM"),
		mk(4, "acme", "web", "web-1", "stdout", ""),
		mk(5, "acme", "web", "web-1", "stdout", "long: "+strings.Repeat("0123456789abcdef", 1250)),
		mk(6, "acme", "web", "web-1", "stderr", "second error line\twith tab"),
	}
}

// testContext ends after 10s, so that a retry loop that never succeeds
// fails the test instead of hanging it.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lokiLines is a Loki push endpoint that records the lines it gets, in
// order of arrival; lines returns a copy.
func lokiLines(t testing.TB) (url string, lines func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var push struct {
			Streams []struct {
				Values [][2]string `json:"values"`
			} `json:"streams"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &push); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		for _, s := range push.Streams {
			for _, v := range s.Values {
				got = append(got, v[1])
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// selfSigned returns a PEM certificate for names valid in [from, to) and
// its PEM key.
func selfSigned(t testing.TB, from, to time.Time, names ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: from, NotAfter: to}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func TestRoutesAndCerts(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	var rt apitypes.Route
	f.ok("acme/developer", "POST", "/v1/apps/web/routes", apitypes.RouteRequest{Host: "WWW.Example.com.", Path: "/api/"}, &rt)
	if rt.Host != "www.example.com" || rt.Path != "/api" || rt.ID == "" {
		t.Fatalf("route not normalized: %+v", rt)
	}
	var tcp apitypes.Route
	f.ok("acme/developer", "POST", "/v1/apps/web/routes", apitypes.RouteRequest{TCP: true, TargetPort: 5432}, &tcp)
	if tcp.Port != apitypes.TCPPortMin {
		t.Fatalf("tcp route port: %+v", tcp)
	}
	var rs []apitypes.Route
	f.ok("acme/viewer", "GET", "/v1/apps/web/routes", nil, &rs)
	if len(rs) != 3 || !rs[0].Default || rs[0].Host != "web.acme.localhost" {
		t.Fatalf("app routes: %+v", rs)
	}

	certPEM, keyPEM := selfSigned(t, now.Add(-time.Hour), now.Add(24*time.Hour), "www.example.com")
	_, otherKey := selfSigned(t, now.Add(-time.Hour), now.Add(24*time.Hour), "www.example.com")
	oldCert, oldKey := selfSigned(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "www.example.com")
	shopCert, shopKey := selfSigned(t, now.Add(-time.Hour), now.Add(24*time.Hour), "shop.example.org")

	before := f.api.cfg.Store.Snapshot().LatestIndex()
	for _, tc := range []struct {
		name, who, method, path string
		body                    any
		code                    int
		field, msg              string
	}{
		{"invalid domain", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"bad_domain.com"}`, 400, "host", "DNS label"},
		{"single label", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"intranet"}`, 400, "host", "two labels"},
		{"wildcard route", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"*.example.com"}`, 400, "host", "wildcard"},
		{"unclean path", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"a.example.com","path":"/a/../b"}`, 400, "path", "clean"},
		{"unknown field", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"a.example.com","weight":3}`, 400, "weight", "unknown field"},
		{"port out of range", "acme/developer", "POST", "/v1/apps/web/routes", `{"tcp":true,"port":8080}`, 400, "port", "30000"},
		{"port on http route", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"a.example.com","port":30001}`, 400, "port", "TCP"},
		{"taken tcp port", "beta/developer", "POST", "/v1/apps/web/routes", `{"tcp":true,"port":30000}`, 409, "port", "taken"},
		{"another tenant's domain", "beta/developer", "POST", "/v1/apps/web/routes", `{"host":"www.example.com","path":"/x"}`, 409, "host", "another tenant"},
		{"another tenant's default domain", "beta/developer", "POST", "/v1/apps/web/routes", `{"host":"web.acme.localhost"}`, 400, "host", "apps domain"},
		{"same host and path", "acme/developer", "POST", "/v1/apps/web/routes", `{"host":"www.example.com","path":"/api"}`, 409, "path", "already"},
		{"mismatched key", "acme/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "www.example.com", Cert: certPEM, Key: otherKey}, 400, "key", "match"},
		{"expired", "acme/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "www.example.com", Cert: oldCert, Key: oldKey}, 400, "cert", "expired"},
		{"names do not cover", "acme/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "www.example.com", Cert: shopCert, Key: shopKey}, 400, "cert", "cover"},
		{"not PEM", "acme/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "www.example.com", Cert: "hello", Key: "world"}, 400, "cert", ""},
		{"cert for another tenant's domain", "beta/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "www.example.com", Cert: certPEM, Key: keyPEM}, 409, "domain", "another tenant"},
		{"wildcard too wide", "beta/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "*.com", Cert: certPEM, Key: keyPEM}, 400, "domain", "two labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b, _ := f.do(tc.who, tc.method, tc.path, tc.body)
			var e apitypes.Error
			json.Unmarshal(b, &e)
			if code != tc.code || e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("%d %s, want %d field %q containing %q", code, b, tc.code, tc.field, tc.msg)
			}
		})
	}
	if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
		t.Fatalf("refused requests moved the index from %d to %d", before, after)
	}

	var c apitypes.Cert
	f.ok("acme/developer", "POST", "/v1/certs", apitypes.CertRequest{Domain: "www.example.com", Cert: certPEM, Key: keyPEM}, &c)
	if c.Domain != "www.example.com" || c.NotAfter.IsZero() || len(c.Names) != 1 {
		t.Fatalf("cert: %+v", c)
	}
	var cs []apitypes.Cert
	f.ok("acme/viewer", "GET", "/v1/certs", nil, &cs)
	if len(cs) != 1 {
		t.Fatalf("certs: %+v", cs)
	}
	if _, b, _ := f.do("acme/viewer", "GET", "/v1/certs", nil); strings.Contains(string(b), "PRIVATE KEY") {
		t.Fatal("a certificate listing shows the key")
	}
	f.ok("acme/developer", "DELETE", "/v1/apps/web/routes/"+rt.ID, nil, nil)
	f.ok("acme/developer", "DELETE", "/v1/certs/www.example.com", nil, nil)
	f.ok("beta/developer", "POST", "/v1/apps/web/routes", apitypes.RouteRequest{Host: "www.example.com"}, nil)
}

package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func TestCARoundTripAndAgentIdentity(t *testing.T) {
	ca, err := NewCA("wharf agents", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCA(ca.CertPEM(), ca.KeyPEM())
	if err != nil || again.Fingerprint() != ca.Fingerprint() || !strings.HasPrefix(ca.Fingerprint(), "sha256:") {
		t.Fatalf("parse CA: %v", err)
	}
	other, _ := NewCA("other", now, 0)
	if _, err := ParseCA(ca.CertPEM(), other.KeyPEM()); err == nil {
		t.Fatal("a CA with another CA's key was accepted")
	}

	key, _, err := NewAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := CreateCSR(key, "node-7")
	if err != nil {
		t.Fatal(err)
	}
	id := AgentIdentity{HostID: "h-123", Pool: "aws-bj"}
	certPEM, err := again.SignAgentCSR(csr, id, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err != nil {
		t.Fatalf("agent cert does not verify against its CA: %v", err)
	}
	opts.Roots = other.Pool()
	if _, err := cert.Verify(opts); err == nil {
		t.Fatal("agent cert verifies against another CA")
	}
	got, err := IdentityFromCert(cert)
	if err != nil || got != id {
		t.Fatalf("identity %+v %v, want %+v", got, err, id)
	}
	if d := cert.NotAfter.Sub(now); d != time.Hour {
		t.Fatalf("lifetime not applied: %v", cert.NotAfter)
	}
}

func TestSignAgentCSRRefusesBadInput(t *testing.T) {
	ca, _ := NewCA("wharf agents", now, 0)
	key, _, _ := NewAgentKey()
	csr, _ := CreateCSR(key, "n")
	tampered := append([]byte(nil), csr...)
	tampered[len(tampered)-5] ^= 0xff
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCSR, _ := CreateCSR(edKey, "n")
	for name, tc := range map[string]struct {
		csr []byte
		id  AgentIdentity
		ttl time.Duration
		ok  bool
	}{
		"garbage":     {[]byte("nope"), AgentIdentity{"h", "p"}, time.Hour, false},
		"tampered":    {tampered, AgentIdentity{"h", "p"}, time.Hour, false},
		"no pool":     {csr, AgentIdentity{HostID: "h"}, time.Hour, false},
		"no lifetime": {csr, AgentIdentity{"h", "p"}, 0, false},
		"ed25519":     {edCSR, AgentIdentity{"h", "p"}, time.Hour, true},
	} {
		_, err := ca.SignAgentCSR(tc.csr, tc.id, now, tc.ttl)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", name, err, tc.ok)
		}
	}
}

func TestJoinTokens(t *testing.T) {
	ca, _ := NewCA("wharf agents", now, 0)
	tok, err := NewJoinToken(ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if strings.ContainsAny(s, " '\"$`\\/=+") {
		t.Fatalf("token %q is not shell-safe", s)
	}
	back, err := ParseJoinToken(s)
	if err != nil || back != tok {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if !SecretMatches(tok.Secret, HashSecret(tok.Secret)) || SecretMatches("x", HashSecret(tok.Secret)) {
		t.Fatal("secret hashing")
	}
	for _, bad := range []string{"", "WJ1", "WJ2." + s[4:], strings.Replace(s, "WJ1.", "WJ1.zz", 1), s + ".x", s[:len(s)-3]} {
		if _, err := ParseJoinToken(bad); err == nil {
			t.Errorf("ParseJoinToken(%q) accepted", bad)
		}
	}
}

// TestPinnedHandshake runs real TLS handshakes: the pin accepts the hub of
// the token's cluster and refuses another cluster's hub.
func TestPinnedHandshake(t *testing.T) {
	ca, _ := NewCA("wharf agents", now, 0)
	other, _ := NewCA("other cluster", now, 0)
	serve := func(c *CA) string {
		cert, err := c.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		return ln.Addr().String()
	}
	good, bad := serve(ca), serve(other)
	cfg := PinnedTLSConfig(ca.Fingerprint(), nil)
	c, err := tls.Dial("tcp", good, cfg)
	if err != nil {
		t.Fatalf("pinned handshake with the right hub: %v", err)
	}
	c.Close()
	if c, err := tls.Dial("tcp", bad, cfg); err == nil || !errors.Is(err, ErrCAMismatch) && !strings.Contains(err.Error(), "CA does not match") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("handshake with another cluster's hub: %v", err)
	}
}

func FuzzParseJoinToken(f *testing.F) {
	tok, _ := NewJoinToken("sha256:" + strings.Repeat("ab", 32))
	f.Add(tok.String())
	f.Add("WJ1...")
	f.Fuzz(func(t *testing.T, s string) {
		jt, err := ParseJoinToken(s)
		if err != nil {
			return
		}
		if again, err := ParseJoinToken(jt.String()); err != nil || again != jt {
			t.Fatalf("a parsed token does not round-trip: %q", s)
		}
	})
}

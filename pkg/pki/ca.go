// Package pki owns the agent trust chain: the agent CA (kept in Raft by the
// hub), agent and gateway certificates, the agent identity carried in them,
// and join tokens that pin the CA before an agent sends any secret.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// CA is the agent certificate authority.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// DefaultCALifetime is how long a new agent CA is valid.
const DefaultCALifetime = 10 * 365 * 24 * time.Hour

// NewCA creates a self-signed ECDSA P-256 CA valid from now for lifetime
// (DefaultCALifetime when zero).
func NewCA(commonName string, now time.Time, lifetime time.Duration) (*CA, error) {
	if lifetime == 0 {
		lifetime = DefaultCALifetime
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Wharf"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// ParseCA loads a CA from PEM (as stored in Raft).
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("CA key does not match its certificate")
	}
	return &CA{cert: cert, key: key, pem: certPEM}, nil
}

// Cert returns the CA certificate.
func (c *CA) Cert() *x509.Certificate { return c.cert }

// CertPEM returns the CA certificate in PEM.
func (c *CA) CertPEM() []byte { return c.pem }

// KeyPEM returns the CA's private key in PEM (PKCS #8).
func (c *CA) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		panic(err) // only for key types we never create
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Fingerprint returns "sha256:" and the hex SHA-256 of the CA certificate.
func (c *CA) Fingerprint() string { return Fingerprint(c.cert) }

// Fingerprint returns "sha256:" and the hex SHA-256 of cert's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Pool returns a pool holding only this CA.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Backdate is how far before their issue certificates start, for clocks
// that lag.
const Backdate = time.Minute

// AgentIdentity is who an agent certificate speaks for.
type AgentIdentity struct {
	HostID string
	Pool   string
}

// identityURI encodes an identity in a certificate URI SAN.
func identityURI(id AgentIdentity) *url.URL {
	return &url.URL{Scheme: "wharf", Host: "agent", Path: "/host/" + id.HostID + "/pool/" + id.Pool}
}

// IdentityFromCert reads the identity of a verified agent certificate.
func IdentityFromCert(cert *x509.Certificate) (AgentIdentity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != "wharf" || u.Host != "agent" {
			continue
		}
		// /host/<id>/pool/<pool>
		parts := strings.Split(u.Path, "/")
		if len(parts) == 5 && parts[1] == "host" && parts[3] == "pool" && parts[2] != "" && parts[4] != "" {
			return AgentIdentity{HostID: parts[2], Pool: parts[4]}, nil
		}
	}
	return AgentIdentity{}, errors.New("certificate carries no Wharf agent identity")
}

// SignAgentCSR issues a client+server certificate for an agent from its
// CSR, bound to id, valid for ttl. Only ECDSA P-256 and Ed25519 keys are
// accepted.
func (c *CA) SignAgentCSR(csrDER []byte, id AgentIdentity, now time.Time, ttl time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("CSR key must be ECDSA P-256 or Ed25519")
		}
	case ed25519.PublicKey:
	default:
		return nil, errors.New("CSR key must be ECDSA P-256 or Ed25519")
	}
	if id.HostID == "" || id.Pool == "" {
		return nil, errors.New("agent identity needs a host id and a pool")
	}
	if ttl <= 0 {
		return nil, errors.New("certificate lifetime must be positive")
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: id.HostID, OrganizationalUnit: []string{id.Pool}},
		URIs:         []*url.URL{identityURI(id)},
		NotBefore:    now.Add(-Backdate),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// IssueServer issues a server certificate (for the QUIC gateway) for names
// and ips, with a fresh key.
func (c *CA) IssueServer(names []string, ips []net.IP, now time.Time, ttl time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "wharf gateway"},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(eq)
	return ok && e.Equal(b)
}

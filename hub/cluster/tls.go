package cluster

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// serverName is the name every hub node's internal certificate carries.
const serverName = "hub.wharf.internal"

// ALPN protocols multiplexed on the Raft port.
const (
	alpnRaft = "wharf-raft/1"
	alpnRPC  = "wharf-rpc/1"
)

// internalCA builds the hub-internal CA from the cluster key. Ed25519
// signatures are deterministic and the template is fixed, so every node
// builds the very same certificate: only holders of the key can issue
// certificates that other nodes accept.
func internalCA(key []byte) (*x509.Certificate, ed25519.PrivateKey, error) {
	priv := caKey(key)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wharf hub internal CA"},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2120, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, nil, fmt.Errorf("internal CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, priv, err
}

// tlsConfigs returns the server and client TLS configs of this node: a fresh
// leaf key signed by the internal CA, TLS 1.3, mutual authentication.
func tlsConfigs(key []byte, nodeName string) (server, client *tls.Config, err error) {
	ca, caPriv, err := internalCA(key)
	if err != nil {
		return nil, nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	leaf := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeName},
		DNSNames:     []string{serverName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caPriv)
	if err != nil {
		return nil, nil, fmt.Errorf("node certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{alpnRaft, alpnRPC, alpnFwd},
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
	}
	return server, client, nil
}

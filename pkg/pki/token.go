package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// joinTokenPrefix starts every join token; the 1 is the format version.
const joinTokenPrefix = "WJ1"

// JoinToken is what an admin hands to a new agent: the agent CA's
// fingerprint (to pin the hub before sending anything secret), and the
// token's id and secret. Its string form is one shell-safe word:
//
//	WJ1.<64 hex: SHA-256 of the CA certificate>.<16 hex: id>.<base64url secret>
type JoinToken struct {
	CAFingerprint string // "sha256:<hex>"
	ID            string
	Secret        string
}

// NewJoinToken makes a token with a random id and secret for a CA.
func NewJoinToken(caFingerprint string) (JoinToken, error) {
	if _, err := fingerprintHex(caFingerprint); err != nil {
		return JoinToken{}, err
	}
	b := make([]byte, 8+32)
	if _, err := rand.Read(b); err != nil {
		return JoinToken{}, err
	}
	return JoinToken{CAFingerprint: caFingerprint, ID: hex.EncodeToString(b[:8]), Secret: base64.RawURLEncoding.EncodeToString(b[8:])}, nil
}

// String returns the token's one-word form.
func (t JoinToken) String() string {
	h, _ := fingerprintHex(t.CAFingerprint)
	return strings.Join([]string{joinTokenPrefix, h, t.ID, t.Secret}, ".")
}

// ParseJoinToken reads a token's one-word form.
func ParseJoinToken(s string) (JoinToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 || parts[0] != joinTokenPrefix {
		return JoinToken{}, errors.New("not a Wharf join token (want WJ1.<ca hash>.<id>.<secret>)")
	}
	if _, err := fingerprintHex("sha256:" + parts[1]); err != nil {
		return JoinToken{}, err
	}
	if len(parts[2]) != 16 {
		return JoinToken{}, errors.New("bad join token id")
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return JoinToken{}, errors.New("bad join token id")
	}
	if sec, err := base64.RawURLEncoding.DecodeString(parts[3]); err != nil || len(sec) != 32 {
		return JoinToken{}, errors.New("bad join token secret")
	}
	return JoinToken{CAFingerprint: "sha256:" + parts[1], ID: parts[2], Secret: parts[3]}, nil
}

func fingerprintHex(fp string) (string, error) {
	h, ok := strings.CutPrefix(fp, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size || strings.ToLower(h) != h {
		return "", fmt.Errorf("bad CA fingerprint %q (want sha256:<64 lower-case hex>)", fp)
	}
	return h, nil
}

// HashSecret is how the hub stores a join token's secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with a stored hash in constant time.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// ErrCAMismatch is returned when the server's CA is not the pinned one.
var ErrCAMismatch = errors.New("the hub's CA does not match the join token: wrong cluster or a man in the middle")

// PinnedTLSConfig is for an agent's first (enrollment) connection: it cannot
// verify the hub by name yet, so it accepts the server only if its chain
// verifies against a CA certificate, presented in that chain, whose
// fingerprint is the pinned one.
func PinnedTLSConfig(fingerprint string, nextProtos []string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the pin check below
		NextProtos:         nextProtos,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyPinned(cs.PeerCertificates, fingerprint)
		},
	}
}

// VerifyPinned checks that chain[0] is issued by a certificate in chain
// whose fingerprint is fingerprint.
func VerifyPinned(chain []*x509.Certificate, fingerprint string) error {
	if len(chain) == 0 {
		return errors.New("the hub presented no certificate")
	}
	for _, c := range chain[1:] {
		if !c.IsCA || Fingerprint(c) != fingerprint {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("hub certificate: %w", err)
		}
		return nil
	}
	return ErrCAMismatch
}

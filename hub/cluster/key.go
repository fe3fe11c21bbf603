package cluster

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeySize is the size of a raw cluster key.
const KeySize = 32

// GenerateKey returns a new cluster key, base64 (standard encoding).
func GenerateKey() string {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ParseKey decodes a cluster key made by GenerateKey (`wharf keygen`).
func ParseKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("cluster key is not base64: make one with `wharf keygen`")
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("cluster key is %d bytes, want %d: make one with `wharf keygen`", len(b), KeySize)
	}
	return b, nil
}

// derive returns n bytes derived from the cluster key for one purpose, so
// that the gossip key and the CA key are independent.
func derive(key []byte, info string, n int) []byte {
	b, err := hkdf.Key(sha256.New, key, nil, info, n)
	if err != nil {
		panic(err) // only for n too large
	}
	return b
}

func gossipKey(key []byte) []byte { return derive(key, "wharf gossip v1", 32) }

func caKey(key []byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(key, "wharf hub ca v1", ed25519.SeedSize))
}

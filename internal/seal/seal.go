// Package seal encrypts small secrets at rest (provider credentials in the
// Raft log and snapshots) with AES-256-GCM under a keyring.
//
// A sealed value is: one version byte (1), the 4-byte id of the key that
// sealed it, a 12-byte random nonce, then the GCM ciphertext and tag. The
// caller's additional data (e.g. the account's name) is authenticated but
// not stored, so a sealed value copied to another object does not open.
// The key id lets a hub tell which values a key rotation has not re-sealed
// yet; a keyring opens with any key it holds and seals with its current one.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// KeySize is the size of a data key.
const KeySize = 32

// version is the first byte of every sealed value.
const version = 1

const (
	idSize    = 4
	nonceSize = 12
	overhead  = 1 + idSize + nonceSize + 16 // version, key id, nonce, GCM tag
)

// Errors Open returns.
var (
	// ErrUnknownKey: the value was sealed under a key the keyring does not
	// hold (a rotated-out cluster key, or another cluster's).
	ErrUnknownKey = errors.New("sealed under a key this hub does not have")
	// ErrCorrupt: the value is malformed, or its authentication failed
	// (tampered with, or opened with the wrong additional data).
	ErrCorrupt = errors.New("sealed value is corrupt or was tampered with")
)

// dataKeyLabel separates the data key from every other key derived from
// the cluster key.
const dataKeyLabel = "wharf data key v1"

// DeriveKey returns the data key derived from a cluster key (HKDF-SHA256
// with a fixed label): every hub node with the same cluster key derives the
// same data key, and the data key reveals nothing of the cluster key.
func DeriveKey(clusterKey []byte) ([]byte, error) {
	if len(clusterKey) == 0 {
		return nil, errors.New("derive data key: empty cluster key")
	}
	return hkdf.Key(sha256.New, clusterKey, nil, dataKeyLabel, KeySize)
}

// GenerateKey returns a new random data key.
func GenerateKey() []byte {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on the platforms we run on
	}
	return b
}

type key struct {
	id   uint32
	aead cipher.AEAD
	mac  []byte // a subkey for Derive, never the sealing key itself
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("data key is %d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("wharf derive subkey v1"))
	return &key{id: KeyID(raw), aead: aead, mac: m.Sum(nil)}, nil
}

// KeyID is the id a sealed value carries for a data key: the first four
// bytes of the key's SHA-256 (enough to tell keys apart, useless to find
// the key).
func KeyID(raw []byte) uint32 {
	sum := sha256.Sum256(raw)
	return binary.BigEndian.Uint32(sum[:idSize])
}

// Keyring seals with its current key and opens with any of its keys. It is
// immutable and safe for concurrent use.
type Keyring struct {
	current *key
	keys    map[uint32]*key
}

// NewKeyring returns a keyring that seals with current and also opens
// values sealed with any of previous (after a key rotation). Nil or empty
// previous keys are skipped.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	cur, err := newKey(current)
	if err != nil {
		return nil, err
	}
	r := &Keyring{current: cur, keys: map[uint32]*key{cur.id: cur}}
	for i, raw := range previous {
		if len(raw) == 0 {
			continue
		}
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		if _, dup := r.keys[k.id]; !dup {
			r.keys[k.id] = k
		}
	}
	return r, nil
}

// Derive is a secret every holder of the current key computes alike, and
// nobody without it can: HMAC-SHA256 of label and data under a subkey of
// the current key. A key rotation changes what it gives.
func (r *Keyring) Derive(label string, data []byte) []byte {
	m := hmac.New(sha256.New, r.current.mac)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// CurrentID is the id of the key Seal uses.
func (r *Keyring) CurrentID() uint32 { return r.current.id }

// Seal encrypts plain under the current key, authenticating ad with it.
func (r *Keyring) Seal(plain, ad []byte) ([]byte, error) {
	out := make([]byte, 1+idSize+nonceSize, overhead+len(plain))
	out[0] = version
	binary.BigEndian.PutUint32(out[1:], r.current.id)
	if _, err := rand.Read(out[1+idSize:]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	nonce := out[1+idSize:]
	return r.current.aead.Seal(out, nonce, plain, ad), nil
}

// Open decrypts a value made by Seal with the same ad, under whichever of
// the keyring's keys sealed it.
func (r *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	id, err := SealedKeyID(sealed)
	if err != nil {
		return nil, err
	}
	k, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("key %08x: %w", id, ErrUnknownKey)
	}
	nonce := sealed[1+idSize : 1+idSize+nonceSize]
	plain, err := k.aead.Open(nil, nonce, sealed[1+idSize+nonceSize:], ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// IsCurrent reports whether sealed was sealed under the current key (a
// value that is not needs re-sealing after a rotation).
func (r *Keyring) IsCurrent(sealed []byte) bool {
	id, err := SealedKeyID(sealed)
	return err == nil && id == r.current.id
}

// Reseal opens sealed with any known key and seals it again under the
// current one.
func (r *Keyring) Reseal(sealed, ad []byte) ([]byte, error) {
	plain, err := r.Open(sealed, ad)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return r.Seal(plain, ad)
}

// SealedKeyID returns the id of the key a sealed value names.
func SealedKeyID(sealed []byte) (uint32, error) {
	if len(sealed) < overhead {
		return 0, ErrCorrupt
	}
	if sealed[0] != version {
		return 0, fmt.Errorf("sealed value version %d is not supported: %w", sealed[0], ErrCorrupt)
	}
	return binary.BigEndian.Uint32(sealed[1:]), nil
}

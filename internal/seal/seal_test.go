package seal

import (
	"bytes"
	"errors"
	"testing"
)

func ring(t *testing.T, cur []byte, prev ...[]byte) *Keyring {
	t.Helper()
	r, err := NewKeyring(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	r := ring(t, GenerateKey())
	for _, plain := range [][]byte{nil, []byte("x"), []byte(`{"secret_access_key":"wJalrXUtnFEMI"}`), bytes.Repeat([]byte("k"), 5000)} {
		s, err := r.Seal(plain, []byte("provider/aws1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) >= 8 && bytes.Contains(s, plain) { // shorter ones may occur by chance
			t.Fatal("the sealed value holds the plain text")
		}
		if !r.IsCurrent(s) {
			t.Fatal("a fresh value is not under the current key")
		}
		got, err := r.Open(s, []byte("provider/aws1"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, %v; want %q", got, err, plain)
		}
		again, _ := r.Seal(plain, []byte("provider/aws1"))
		if bytes.Equal(s, again) {
			t.Fatal("two seals of one value are equal: the nonce is not random")
		}
	}
}

func TestRefusals(t *testing.T) {
	r := ring(t, GenerateKey())
	s, err := r.Seal([]byte("hunter2"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(s)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name   string
		ring   *Keyring
		sealed []byte
		ad     string
		want   error
	}{
		{"wrong key", ring(t, GenerateKey()), s, "a", ErrUnknownKey},
		{"other additional data", r, s, "b", ErrCorrupt},
		{"tampered ciphertext", r, flip(len(s) - 20), "a", ErrCorrupt},
		{"tampered tag", r, flip(len(s) - 1), "a", ErrCorrupt},
		{"tampered nonce", r, flip(6), "a", ErrCorrupt},
		{"tampered key id", r, flip(2), "a", ErrUnknownKey},
		{"unknown version", r, flip(0), "a", ErrCorrupt},
		{"truncated", r, s[:10], "a", ErrCorrupt},
		{"empty", r, nil, "a", ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.ring.Open(c.sealed, []byte(c.ad))
			if !errors.Is(err, c.want) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := GenerateKey(), GenerateKey()
	old := ring(t, oldKey)
	s, err := old.Seal([]byte("secret"), []byte("acct"))
	if err != nil {
		t.Fatal(err)
	}
	// A hub given the new key alone cannot open the old value...
	if _, err := ring(t, newKey).Open(s, []byte("acct")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new key alone: %v, want ErrUnknownKey", err)
	}
	// ...with the old one as previous it can, and sees it needs re-sealing.
	rotated := ring(t, newKey, oldKey, nil)
	if rotated.IsCurrent(s) {
		t.Fatal("a value under the previous key counts as current")
	}
	re, err := rotated.Reseal(s, []byte("acct"))
	if err != nil {
		t.Fatal(err)
	}
	if !rotated.IsCurrent(re) {
		t.Fatal("a re-sealed value is not under the current key")
	}
	if id, _ := SealedKeyID(re); id != KeyID(newKey) || id != rotated.CurrentID() {
		t.Fatalf("re-sealed key id %08x, want %08x", id, KeyID(newKey))
	}
	// The re-sealed value opens without the old key.
	if got, err := ring(t, newKey).Open(re, []byte("acct")); err != nil || string(got) != "secret" {
		t.Fatalf("Open after rotation = %q, %v", got, err)
	}
}

func TestDeriveKey(t *testing.T) {
	ck := bytes.Repeat([]byte{7}, 32)
	a, err := DeriveKey(ck)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DeriveKey(ck)
	other, _ := DeriveKey(bytes.Repeat([]byte{8}, 32))
	if !bytes.Equal(a, b) || len(a) != KeySize {
		t.Fatal("derivation is not deterministic")
	}
	if bytes.Equal(a, other) || bytes.Equal(a, ck) {
		t.Fatal("derived keys do not depend on the cluster key, or equal it")
	}
	if _, err := DeriveKey(nil); err == nil {
		t.Fatal("an empty cluster key derived a key")
	}
	if _, err := NewKeyring(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

func TestDerive(t *testing.T) {
	a, b := GenerateKey(), GenerateKey()
	ra, _ := NewKeyring(a)
	ra2, _ := NewKeyring(a, b)
	rb, _ := NewKeyring(b, a)
	x := ra.Derive("join", []byte("m-1"))
	if len(x) != 32 || !bytes.Equal(x, ra2.Derive("join", []byte("m-1"))) {
		t.Fatal("one current key derives one secret")
	}
	for _, other := range [][]byte{ra.Derive("join", []byte("m-2")), ra.Derive("joim", []byte("m-1")), rb.Derive("join", []byte("m-1"))} {
		if bytes.Equal(x, other) {
			t.Fatal("another label, data or current key derived the same secret")
		}
	}
}

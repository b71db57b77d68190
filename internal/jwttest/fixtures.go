package jwttest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Material is key material generated once per test binary: RSA key
// generation is the slowest thing the tests do, and every test wants
// fresh-looking keys. Tests must not modify it.
type Material struct {
	RSA     [3]*rsa.PrivateKey
	RSA1024 *rsa.PrivateKey                 // too small to be used: for refusal tests
	EC      map[string][2]*ecdsa.PrivateKey // by curve name (P-256, P-384, P-521)
	Ed      [2]ed25519.PrivateKey
	HMAC    map[int][2][]byte // by size in bytes: 16, 31, 32, 48, 64
}

// Shared returns the test binary's key material, generating it on first
// use. It is computed once and never changed, so tests may share it.
var Shared = sync.OnceValue(func() *Material {
	m := &Material{EC: map[string][2]*ecdsa.PrivateKey{}, HMAC: map[int][2][]byte{}}
	var err error
	for i := range m.RSA {
		if m.RSA[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	if m.RSA1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		panic(err)
	}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		var pair [2]*ecdsa.PrivateKey
		for i := range pair {
			if pair[i], err = ecdsa.GenerateKey(c, rand.Reader); err != nil {
				panic(err)
			}
		}
		m.EC[c.Params().Name] = pair
	}
	for i := range m.Ed {
		if _, m.Ed[i], err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	}
	for _, size := range []int{16, 31, 32, 48, 64} {
		var pair [2][]byte
		for i := range pair {
			pair[i] = make([]byte, size)
			_, _ = rand.Read(pair[i])
		}
		m.HMAC[size] = pair
	}
	return m
})

// Fixture returns a signing key for alg with the given kid, backed by the
// shared material. Slots 0 and 1 are different keys of the same type, so a
// test can sign with "the other key" under the same kid.
func Fixture(t testing.TB, alg, kid string, slot int) *Key {
	t.Helper()
	m := Shared()
	k := &Key{Kid: kid, Alg: alg}
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		k.Private = m.RSA[slot]
	case alg == "ES256":
		k.Private = m.EC["P-256"][slot]
	case alg == "ES384":
		k.Private = m.EC["P-384"][slot]
	case alg == "ES512":
		k.Private = m.EC["P-521"][slot]
	case alg == "EdDSA", alg == "Ed25519":
		k.Private = m.Ed[slot]
	case alg == "HS256":
		k.Secret = m.HMAC[32][slot]
	case alg == "HS384":
		k.Secret = m.HMAC[48][slot]
	case alg == "HS512":
		k.Secret = m.HMAC[64][slot]
	default:
		t.Fatalf("jwttest.Fixture: no material for %q", alg)
	}
	return k
}

// NestedObjects returns n nested JSON objects with a scalar at the bottom,
// {"a":{"a":...1...}}, for depth-limit tests.
func NestedObjects(n int) string {
	return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
}

// MustJSON marshals v, failing the test on error.
func MustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package jwttest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// IdPClaims is the i-th of a series of distinct access tokens shaped like
// a Keycloak or Auth0 one, valid for ttl from now: the registered claims
// plus azp, sid, scope, roles, email and profile claims, nested realm and
// resource roles; about 750 bytes of JSON. The benchmarks and
// bench/gentokens (-shape idp) both sign it.
func IdPClaims(i int, now time.Time, ttl time.Duration) map[string]any {
	return map[string]any{
		"exp": now.Add(ttl).Unix(), "iat": now.Unix(), "auth_time": now.Unix() - 60,
		"jti": fmt.Sprintf("6f1c2a9e-%08x-4d1b-9c3e-58a7d0b1e2f4", i),
		"iss": "https://idp.example/", "aud": []string{"api", "account"},
		"sub": fmt.Sprintf("f3b9c2d4-%08x-4a8e-b7d1-0c9e8f7a6b5d", i),
		"typ": "Bearer", "azp": "web-frontend", "sid": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "acr": "1",
		"allowed-origins": []string{"https://app.example.com"},
		"realm_access":    map[string]any{"roles": []string{"offline_access", "uma_authorization", "default-roles-example", "editor"}},
		"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}},
		"scope":           "openid profile email read:docs write:docs",
		"email_verified":  true, "name": "Jane Q. Doe", "preferred_username": fmt.Sprintf("jane.doe%d", i),
		"given_name": "Jane", "family_name": "Doe", "email": fmt.Sprintf("jane.doe%d@example.com", i),
		"roles": []string{"editor", "viewer"},
	}
}

// WycheproofDir returns where Project Wycheproof's JOSE vectors are:
// $WYCHEPROOF_DIR if set and holding them, else committed (a path relative
// to the calling test's package). Missing vectors fail the test: a skip
// would hide a whole suite.
func WycheproofDir(t testing.TB, committed string) string {
	t.Helper()
	candidates := []string{os.Getenv("WYCHEPROOF_DIR"), committed}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "json_web_signature_test.json")); err == nil {
			return dir
		}
	}
	t.Fatalf("Wycheproof JOSE vectors not found in %q; set WYCHEPROOF_DIR", candidates)
	return ""
}

package jose

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

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// keyMaterial is generated once per test binary: RSA key generation is the
// slowest thing these tests do.
type keyMaterial struct {
	rsa     [2]*rsa.PrivateKey
	rsa1024 *rsa.PrivateKey
	ec      map[string][2]*ecdsa.PrivateKey // by curve name
	ed      [2]ed25519.PrivateKey
	hmac    map[int][2][]byte // by size in bytes
}

var material = sync.OnceValue(func() *keyMaterial {
	m := &keyMaterial{ec: map[string][2]*ecdsa.PrivateKey{}, hmac: map[int][2][]byte{}}
	var err error
	for i := range m.rsa {
		if m.rsa[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	if m.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		panic(err)
	}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		var pair [2]*ecdsa.PrivateKey
		for i := range pair {
			if pair[i], err = ecdsa.GenerateKey(c, rand.Reader); err != nil {
				panic(err)
			}
		}
		m.ec[c.Params().Name] = pair
	}
	for i := range m.ed {
		if _, m.ed[i], err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	}
	for _, size := range []int{31, 32, 48, 64} {
		var pair [2][]byte
		for i := range pair {
			pair[i] = make([]byte, size)
			_, _ = rand.Read(pair[i])
		}
		m.hmac[size] = pair
	}
	return m
})

// fixture returns a signing key for alg with the given kid, backed by the
// shared material; slots 0 and 1 are different keys of the same type.
func fixture(t testing.TB, alg, kid string, slot int) *jwttest.Key {
	t.Helper()
	m := material()
	k := &jwttest.Key{Kid: kid, Alg: alg}
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		k.Private = m.rsa[slot]
	case alg == "ES256":
		k.Private = m.ec["P-256"][slot]
	case alg == "ES384":
		k.Private = m.ec["P-384"][slot]
	case alg == "ES512":
		k.Private = m.ec["P-521"][slot]
	case alg == "EdDSA", alg == "Ed25519":
		k.Private = m.ed[slot]
	case alg == "HS256":
		k.Secret = m.hmac[32][slot]
	case alg == "HS384":
		k.Secret = m.hmac[48][slot]
	case alg == "HS512":
		k.Secret = m.hmac[64][slot]
	default:
		t.Fatalf("fixture: no material for %q", alg)
	}
	return k
}

// parseTestKeys imports the public JWKs of keys, failing the test if any
// is dropped.
func parseTestKeys(t testing.TB, opts ImportOptions, keys ...*jwttest.Key) []*Key {
	t.Helper()
	got, warnings, err := ParseKeys(jwttest.JWKS(keys...), opts)
	if err != nil {
		t.Fatalf("ParseKeys: %v (warnings %q)", err, warnings)
	}
	if len(got) != len(keys) {
		t.Fatalf("ParseKeys kept %d of %d keys: %q", len(got), len(keys), warnings)
	}
	return got
}

// nestObjects returns n nested objects with a scalar at the bottom:
// {"a":{"a":...1...}}.
func nestObjects(n int) string {
	return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

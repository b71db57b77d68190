package keyimport

import (
	"encoding/base64"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// fixture is jwttest.Fixture: a signing key for alg backed by the test
// binary's shared material; slots 0 and 1 are different keys of one type.
func fixture(t testing.TB, alg, kid string, slot int) *jwttest.Key {
	t.Helper()
	return jwttest.Fixture(t, alg, kid, slot)
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

// strictB64 decodes base64url as tokens are encoded: unpadded, canonical.
var strictB64 = base64.RawURLEncoding.Strict()

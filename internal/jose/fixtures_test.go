package jose

import (
	"encoding/json"
	"strings"
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

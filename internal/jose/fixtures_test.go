package jose

import (
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// fixture is jwttest.Fixture: a signing key for alg backed by the test
// binary's shared material; slots 0 and 1 are different keys of one type.
func fixture(t testing.TB, alg, kid string, slot int) *jwttest.Key {
	t.Helper()
	return jwttest.Fixture(t, alg, kid, slot)
}

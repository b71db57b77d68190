package jwtauth

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// The import rules themselves are tested in internal/jose (key_test.go);
// these tests cover what keySet adds: order, fingerprints and selection on
// a set, and parseKeySet's mapping of allowHMAC.

// LoadOptions is what the root tests pass to loadTestSet.
type LoadOptions = keyimport.ImportOptions

// strictB64 decodes base64url the way tokens must be encoded: unpadded,
// canonical trailing bits.
var strictB64 = base64.RawURLEncoding.Strict()

// samePublicKey compares public keys of any supported type.
func samePublicKey(a, b any) bool {
	if secret, ok := a.(jose.HMACSecret); ok {
		other, ok := b.([]byte)
		return ok && bytes.Equal(secret, other)
	}
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// TestParseKeySet: the set keeps the usable keys in published order with
// their warnings, admits oct keys only with allowHMAC, and an error never
// comes with a set.
func TestParseKeySet(t *testing.T) {
	es := fixtureKey(t, "ES256", "es", 0)
	hs := fixtureKey(t, "HS256", "hs", 0)
	rs := fixtureKey(t, "RS256", "rs", 0)
	enc := &jwttest.Key{Kid: "enc", Alg: "RS256", Use: "enc", Private: jwttest.Shared().RSA[1]}
	doc := jwttest.JWKS(es, hs, enc, rs)
	cases := []struct {
		name      string
		data      []byte
		allowHMAC bool
		wantErr   bool
		kids      []string
		warnings  int
	}{
		{"oct refused without allowHMAC", doc, false, false, []string{"es", "rs"}, 2},
		{"oct kept with allowHMAC", doc, true, false, []string{"es", "hs", "rs"}, 1},
		{"PEM gives a kid-less key", es.PublicPEM(), false, false, []string{""}, 0},
		{"only unusable keys", jwttest.JWKS(enc), true, true, nil, 1},
		{"not a key set", []byte(`{"kty":"EC"}`), true, true, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, warnings, err := parseKeySet(tc.data, tc.allowHMAC)
			if len(warnings) != tc.warnings {
				t.Fatalf("warnings %q, want %d", warnings, tc.warnings)
			}
			if tc.wantErr {
				if err == nil || set != nil {
					t.Fatalf("set %v err %v, want an error and no set", set, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseKeySet: %v (%q)", err, warnings)
			}
			if got := set.Kids(); !slices.Equal(got, tc.kids) {
				t.Fatalf("kids %q, want %q (warnings %q)", got, tc.kids, warnings)
			}
			for _, k := range set.Keys {
				if !set.Has(k.Fingerprint()) {
					t.Fatalf("key %q: the set does not know its fingerprint", k.ID)
				}
			}
		})
	}
}

// TestKeySetFingerprints: a reload of the same keys gives the same
// fingerprints (the token cache relies on it); another kid or key does not.
func TestKeySetFingerprints(t *testing.T) {
	a := fixtureKey(t, "ES256", "a", 0)
	aOther := fixtureKey(t, "ES256", "a", 1)
	b := fixtureKey(t, "ES256", "b", 0)
	s1 := loadTestSet(t, LoadOptions{}, a, b)
	s2 := loadTestSet(t, LoadOptions{}, b, a)
	s3 := loadTestSet(t, LoadOptions{}, aOther)
	for _, k := range s1.Keys {
		if k.Fingerprint() == "" || !s2.Has(k.Fingerprint()) {
			t.Fatalf("key %q lost its fingerprint across a reload", k.ID)
		}
	}
	if s3.Has(s1.Keys[0].Fingerprint()) {
		t.Fatal("a different key under the same kid has the same fingerprint")
	}
	if s1.Keys[0].Fingerprint() == s1.Keys[1].Fingerprint() {
		t.Fatal("same material under two kids has one fingerprint")
	}
	var nilSet *keySet
	if nilSet.Has(s1.Keys[0].Fingerprint()) || nilSet.Kids() != nil || nilSet.Select("a", "ES256") != nil {
		t.Fatal("a nil set must hold nothing")
	}
}

// TestKeySetSelect: a set selects by the candidate rules of keyimport.Select
// (tested in full there): kid, type and curve fit, the key's own alg.
func TestKeySetSelect(t *testing.T) {
	es := fixtureKey(t, "ES256", "k", 0)
	rs := fixtureKey(t, "RS256", "k", 0)
	noKid := fixtureKey(t, "ES384", "", 0)
	hs := fixtureKey(t, "HS384", "h", 0)
	set := loadTestSet(t, LoadOptions{AllowHMAC: true}, es, rs, noKid, hs)
	cases := []struct {
		kid, alg string
		want     *jwttest.Key
	}{
		{"k", "ES256", es},
		{"k", "RS256", rs},
		{"k", "RS384", nil}, // rs has alg RS256
		{"k", "ES384", nil}, // curve mismatch
		{"", "ES384", noKid},
		{"zzz", "ES384", nil}, // the kid-less key is not the set's only key
		{"h", "HS384", hs},
		{"h", "HS256", nil},
		{"k", "none", nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("kid %q alg %s", tc.kid, tc.alg), func(t *testing.T) {
			got := set.Select(tc.kid, tc.alg)
			switch {
			case tc.want == nil && got != nil:
				t.Fatalf("selected %q (%T), want none", got.ID, got.Public)
			case tc.want != nil && got == nil:
				t.Fatal("selected none")
			case tc.want != nil && !isKey(got, tc.want):
				t.Fatalf("selected %q (%T), want %q (%T)", got.ID, got.Public, tc.want.Kid, tc.want.Public())
			}
		})
	}
}

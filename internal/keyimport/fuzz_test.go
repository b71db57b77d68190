package keyimport

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// FuzzParseKeySet: the importer never panics, and every key it returns obeys
// the import rules: RSA ≥ MinRSABits with a sane exponent, EC on
// P-256/384/521, Ed25519 of 32 bytes, HMAC only with AllowHMAC and ≥
// MinHMACBytes, a known alg that fits, at most MaxKeys keys, each with a
// fingerprint.
func FuzzParseKeySet(f *testing.F) {
	keys := []*jwttest.Key{
		fixture(f, "RS256", "rs", 0), fixture(f, "PS512", "ps", 1), fixture(f, "ES256", "e1", 0),
		fixture(f, "ES384", "e2", 0), fixture(f, "ES512", "e3", 0), fixture(f, "EdDSA", "ed", 0),
		fixture(f, "HS256", "h1", 0), fixture(f, "HS512", "h2", 0),
	}
	f.Add(jwttest.JWKS(keys...), true)
	f.Add(jwttest.JWKS(keys...), false)
	for _, k := range keys {
		f.Add(jwttest.JWKS(k), true)
		if k.Private != nil {
			f.Add(jwttest.JWKSOf(k.PrivateJWK()), false)
			f.Add(k.PublicPEM(), false)
			f.Add(k.CertPEM(f), false)
		}
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`), false)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","alg":"HS256"}]}`), true)
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQ"}]}`), false)
	f.Add([]byte(`{"keys":[{"kty":"oct","KTY":"RSA","k":"AAAA"}],"USE":"sig"}`), true)
	f.Add([]byte(`{"keys":[]}`), false)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), false)

	f.Fuzz(func(t *testing.T, data []byte, allowHMAC bool) {
		got, _, err := ParseKeys(data, ImportOptions{AllowHMAC: allowHMAC})
		if err != nil {
			if got != nil {
				t.Fatal("error with keys")
			}
			return
		}
		if len(got) == 0 || len(got) > MaxKeys {
			t.Fatalf("%d keys", len(got))
		}
		for i, k := range got {
			if k.Fingerprint() == "" {
				t.Fatalf("key %d has no fingerprint", i)
			}
			if k.Alg != "" && !jose.Fits(k.Public, k.Alg) {
				t.Fatalf("key %d has alg %q that does not fit %T", i, k.Alg, k.Public)
			}
			switch pub := k.Public.(type) {
			case *rsa.PublicKey:
				if pub.N.BitLen() < MinRSABits || pub.E < 3 || pub.E%2 == 0 {
					t.Fatalf("key %d: RSA of %d bits, e=%d", i, pub.N.BitLen(), pub.E)
				}
			case *ecdsa.PublicKey:
				if _, err := pub.ECDH(); err != nil {
					t.Fatalf("key %d: EC point not valid: %v", i, err)
				}
				switch pub.Curve {
				case elliptic.P256(), elliptic.P384(), elliptic.P521():
				default:
					t.Fatalf("key %d: curve %s", i, pub.Curve.Params().Name)
				}
			case ed25519.PublicKey:
				if len(pub) != ed25519.PublicKeySize {
					t.Fatalf("key %d: Ed25519 of %d bytes", i, len(pub))
				}
			case jose.HMACSecret:
				if !allowHMAC || len(pub) < MinHMACBytes {
					t.Fatalf("key %d: HMAC secret of %d bytes, AllowHMAC %v", i, len(pub), allowHMAC)
				}
			default:
				t.Fatalf("key %d: unexpected type %T", i, pub)
			}
		}
	})
}

package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// rfc7638Key is the example key of RFC 7638 §3.1.
const rfc7638Key = `{"kty":"RSA",` +
	`"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",` +
	`"e":"AQAB","alg":"RS256","kid":"2011-04-29"}`

func thumbprintB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestThumbprintRFC7638KnownAnswer(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal([]byte(rfc7638Key), &m); err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("Thumbprint = %s, want %s (RFC 7638 §3.1)", got, want)
	}
}

// jwxThumbprint is an independent implementation to agree with.
func jwxThumbprint(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return thumbprintB64(sum)
}

func TestThumbprintAgreesWithJWX(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  crypto.PublicKey
		jwk  map[string]any
	}{
		{"EC P-256", &ecKey.PublicKey, map[string]any{
			"kty": "EC", "crv": "P-256", "x": thumbprintB64(raw[1:33]), "y": thumbprintB64(raw[33:]),
			"kid": "ignored", "use": "sig", "alg": "ES256",
		}},
		{"OKP Ed25519", edPub, map[string]any{
			"kty": "OKP", "crv": "Ed25519", "x": thumbprintB64(edPub), "alg": "EdDSA",
		}},
		{"RSA", &rsaKey.PublicKey, map[string]any{
			"kty": "RSA", "n": thumbprintB64(rsaKey.N.Bytes()), "e": thumbprintB64(big.NewInt(int64(rsaKey.E)).Bytes()),
			"d": "private members are not hashed",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Thumbprint(tt.jwk)
			if err != nil {
				t.Fatal(err)
			}
			if want := jwxThumbprint(t, tt.pub); got != want {
				t.Fatalf("Thumbprint = %s, jwx says %s", got, want)
			}
		})
	}
}

func TestThumbprintRefuses(t *testing.T) {
	tests := []struct {
		name string
		jwk  map[string]any
		want string
	}{
		{"no kty", map[string]any{"crv": "Ed25519", "x": "abc"}, "kty"},
		{"kty not a string", map[string]any{"kty": 1, "crv": "Ed25519", "x": "abc"}, "kty"},
		{"oct", map[string]any{"kty": "oct", "k": "abc"}, "unsupported kty"},
		{"EC without y", map[string]any{"kty": "EC", "crv": "P-256", "x": "abc"}, `"y"`},
		{"RSA without e", map[string]any{"kty": "RSA", "n": "abc"}, `"e"`},
		{"OKP x not a string", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": 5}, `"x"`},
		{"empty member", map[string]any{"kty": "OKP", "crv": "", "x": "abc"}, `"crv"`},
		{"needs escaping", map[string]any{"kty": "OKP", "crv": "Ed\"25519", "x": "abc"}, "escaping"},
		{"non-ASCII", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "ab\u00e9"}, "escaping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Thumbprint(tt.jwk)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Thumbprint = %q, %v; want an error mentioning %s", got, err, tt.want)
			}
		})
	}
}

func TestThumbprintCovers(t *testing.T) {
	tests := []struct {
		name string
		jwk  map[string]any
		want bool
	}{
		{"EC members only", map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}, true},
		{"RSA members only", map[string]any{"kty": "RSA", "n": "a", "e": "AQAB"}, true},
		{"OKP members only", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "a"}, true},
		{"EC with kid", map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "1"}, false},
		{"EC with alg", map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "alg": "ES256"}, false},
		{"EC with d", map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}, false},
		{"RSA with use", map[string]any{"kty": "RSA", "n": "a", "e": "AQAB", "use": "sig"}, false},
		{"EC without y", map[string]any{"kty": "EC", "crv": "P-256", "x": "a"}, false},
		{"EC with y swapped for another member", map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "Y": "b"}, false},
		{"oct", map[string]any{"kty": "oct", "k": "a"}, false},
		{"no kty", map[string]any{"crv": "P-256", "x": "a", "y": "b"}, false},
		{"kty not a string", map[string]any{"kty": 1, "crv": "P-256", "x": "a", "y": "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ThumbprintCovers(tt.jwk); got != tt.want {
				t.Fatalf("ThumbprintCovers = %t, want %t", got, tt.want)
			}
		})
	}
}

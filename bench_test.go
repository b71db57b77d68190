package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Benchmarks report ratios against a baseline measured in the same run:
// each algorithm has a "stdlib" sub-benchmark (the raw signature check alone,
// the physical floor) beside "verifier" (decode + key lookup + signature +
// claims). Compare them with benchstat or by eye; never assert timings.

// benchSetup returns a verifier trusting key and a realistic token it signed
// (padded with a claim so the token is about tokenSize bytes).
func benchSetup(b *testing.B, key *jwttest.Key, tokenSize int) (*Verifier, string) {
	b.Helper()
	set, _, err := parseKeySet(jwttest.JWKS(key), false)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier([]*IssuerPolicy{{
		Issuer: "https://idp.example/", Algorithms: jose.DefaultAlgorithms(), Audience: []string{"api"},
		Keys: &staticKeySource{set: set},
	}}, VerifierOptions{Leeway: 30 * time.Second})
	claims := jwttest.Claims("https://idp.example/", "api", time.Hour)
	claims["scope"] = "read:docs write:docs"
	tok := jwttest.Sign(b, key, nil, claims)
	if pad := tokenSize - len(tok); pad > 0 {
		claims["pad"] = strings.Repeat("x", pad*3/4)
		tok = jwttest.Sign(b, key, nil, claims)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatalf("setup token does not verify: %v", err)
	}
	return v, tok
}

func benchKeys(b *testing.B) map[string]*jwttest.Key {
	return map[string]*jwttest.Key{
		"RS256": jwttest.NewRSA(b, 2048, "rsa", "RS256"),
		"ES256": jwttest.NewEC(b, "ES256", "ec"),
		"EdDSA": jwttest.NewEd25519(b, "ed", "EdDSA"),
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		key := benchKeys(b)[alg]
		v, tok := benchSetup(b, key, 0)
		b.Run(alg+"/stdlib", func(b *testing.B) {
			dot := strings.LastIndexByte(tok, '.')
			input := tok[:dot]
			sig, _ := strictB64.DecodeString(tok[dot+1:])
			pub := key.Public()
			b.ReportAllocs()
			for b.Loop() {
				if !rawVerify(alg, pub, input, sig) {
					b.Fatal("raw verify failed")
				}
			}
		})
		b.Run(alg+"/verifier", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rawVerify is the standard library's check alone, written the way a
// caller who already holds the parsed key and signature would.
func rawVerify(alg string, pub any, input string, sig []byte) bool {
	switch alg {
	case "RS256":
		digest := sha256.Sum256([]byte(input))
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig) == nil
	case "ES256":
		digest := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub.(*ecdsa.PublicKey), digest[:], r, s)
	default:
		return ed25519.Verify(pub.(ed25519.PublicKey), []byte(input), sig)
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	v, tok := benchSetup(b, jwttest.NewEC(b, "ES256", "ec"), 1024)
	cache, err := newTokenCache(defaultCacheSize, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	res, err := v.Verify(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	cache.put(tok, res)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := cache.get(tok); !ok {
			b.Fatal("cache miss")
		}
	}
}

// bareHandler passes every request on: the baseline of BenchmarkServeHTTP.
type bareHandler struct{}

func (bareHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// BenchmarkServeHTTP measures the handler against a bare next handler, with
// the token cache on (one repeated token) and off (full verification).
func BenchmarkServeHTTP(b *testing.B) {
	key := jwttest.NewEC(b, "ES256", "ec")
	dir := b.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwttest.JWKS(key), 0o600); err != nil {
		b.Fatal(err)
	}
	tok := jwttest.Sign(b, key, nil, jwttest.Claims("https://idp.example/", "api", time.Hour))
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	run := func(b *testing.B, h caddyhttp.MiddlewareHandler) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			repl := caddy.NewReplacer()
			req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, req, next); err != nil || w.Code != http.StatusNoContent {
				b.Fatalf("status %d err %v", w.Code, err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) {
		run(b, bareHandler{})
	})
	for _, size := range []int{defaultCacheSize, 0} {
		name := "jwt_auth_cached"
		if size == 0 {
			name = "jwt_auth_uncached"
		}
		b.Run(name, func(b *testing.B) {
			h := &Handler{Config: Config{
				Issuers:   []IssuerConfig{{Issuer: "https://idp.example/", JWKSFile: jwksFile, Audience: []string{"api"}}},
				CacheSize: &size,
			}}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			if err := h.Provision(ctx); err != nil {
				b.Fatal(err)
			}
			defer h.Cleanup()
			run(b, h)
		})
	}
}

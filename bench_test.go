package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
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

// benchSetup returns a verifier trusting key and a token it signed: the
// small claim set of jwttest.Claims, or with idp an IdP-shaped access token
// of about 1 KiB (jwttest.IdPClaims).
func benchSetup(b *testing.B, key *jwttest.Key, idp bool) (*tokenVerifier, string) {
	b.Helper()
	v := benchVerifier(b, key)
	tok := benchToken(b, key, idp, 0)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatalf("setup token does not verify: %v", err)
	}
	return v, tok
}

func benchVerifier(b *testing.B, key *jwttest.Key) *tokenVerifier {
	b.Helper()
	set, _, err := parseKeySet(jwttest.JWKS(key), false)
	if err != nil {
		b.Fatal(err)
	}
	return newTokenVerifier([]*issuerPolicy{{
		Issuer: "https://idp.example/", Algorithms: jose.DefaultAlgorithms(), Audience: []string{"api"},
		Keys: &staticKeySource{set: set},
	}}, verifierOptions{Leeway: 30 * time.Second})
}

// benchToken signs the i-th distinct token of its shape.
func benchToken(b *testing.B, key *jwttest.Key, idp bool, i int) string {
	b.Helper()
	claims := jwttest.Claims("https://idp.example/", "api", time.Hour)
	claims["scope"] = "read:docs write:docs"
	if idp {
		claims = jwttest.IdPClaims(i, time.Now(), time.Hour)
	}
	claims["jti"] = fmt.Sprintf("%08d-%s", i, claims["jti"])
	return jwttest.Sign(b, key, nil, claims)
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
		v, tok := benchSetup(b, key, false)
		_, idpTok := benchSetup(b, key, true)
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
		if alg == "RS256" {
			// The modulus precomputed once (jose.Prepare), as the verifier
			// does for every imported RSA key of the usual shape.
			b.Run(alg+"/prepared", func(b *testing.B) {
				dot := strings.LastIndexByte(tok, '.')
				input := tok[:dot]
				sig, _ := strictB64.DecodeString(tok[dot+1:])
				prepared := jose.Prepare(key.Public())
				b.ReportAllocs()
				for b.Loop() {
					if !jose.VerifyPrepared(alg, prepared, input, sig) {
						b.Fatal("prepared verify failed")
					}
				}
			})
		}
		for name, tok := range map[string]string{"verifier": tok, "verifier_idp": idpTok} {
			b.Run(alg+"/"+name, func(b *testing.B) {
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
	v, tok := benchSetup(b, jwttest.NewEC(b, "ES256", "ec"), true)
	cache, err := newTokenCache(defaultCacheSize, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	res, err := v.Verify(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	cache.put(cache.slot(tok), res)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := cache.get(cache.slot(tok)); !ok {
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
// the token cache on (one repeated token) and off (cache_size 0: full
// verification), for the IdP-shaped token and ("_small") the small one.
// "placeholders" is the cached path with a next handler that reads two user
// placeholders, as a header_up or a log would.
func BenchmarkServeHTTP(b *testing.B) {
	key := jwttest.NewEC(b, "ES256", "ec")
	dir := b.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwttest.JWKS(key), 0o600); err != nil {
		b.Fatal(err)
	}
	tokens := map[bool]string{true: benchToken(b, key, true, 0), false: benchToken(b, key, false, 0)}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	readPlaceholders := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl.ReplaceAll("{http.auth.user.id} {http.auth.user.email}", "") == " " {
			b.Fatal("placeholders are empty")
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	run := func(b *testing.B, h caddyhttp.MiddlewareHandler, tok string, next caddyhttp.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			serveOnce(b, h, tok, next)
		}
	}
	handler := func(b *testing.B, size int) *Handler {
		h := &Handler{Config: Config{
			Issuers:   []IssuerConfig{{Issuer: "https://idp.example/", JWKSFile: jwksFile, Audience: []string{"api"}}},
			CacheSize: &size,
		}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		b.Cleanup(cancel)
		if err := h.Provision(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Cleanup() })
		return h
	}
	b.Run("bare", func(b *testing.B) {
		run(b, bareHandler{}, tokens[true], next)
	})
	for _, idp := range []bool{true, false} {
		suffix := ""
		if !idp {
			suffix = "_small"
		}
		b.Run("jwt_auth_cached"+suffix, func(b *testing.B) {
			run(b, handler(b, defaultCacheSize), tokens[idp], next)
		})
		b.Run("jwt_auth_uncached"+suffix, func(b *testing.B) {
			run(b, handler(b, 0), tokens[idp], next)
		})
	}
	// distinct: the default cache, full, and every request a token it has
	// never seen (many users, or an attacker): a miss and an insertion that
	// evicts, on top of a full verification. Compare with jwt_auth_uncached.
	b.Run("jwt_auth_distinct", func(b *testing.B) {
		h := handler(b, defaultCacheSize)
		for i := range defaultCacheSize {
			serveOnce(b, h, benchToken(b, key, true, i), next)
		}
		i := defaultCacheSize
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			i++
			tok := benchToken(b, key, true, i)
			b.StartTimer()
			serveOnce(b, h, tok, next)
		}
	})
	b.Run("jwt_auth_cached_placeholders", func(b *testing.B) {
		run(b, handler(b, defaultCacheSize), tokens[true], readPlaceholders)
	})
}

// serveOnce sends one request with tok through h and fails unless next
// answered it.
func serveOnce(b *testing.B, h caddyhttp.MiddlewareHandler, tok string, next caddyhttp.Handler) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	repl := caddy.NewReplacer()
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, req, next); err != nil || w.Code != http.StatusNoContent {
		b.Fatalf("status %d err %v", w.Code, err)
	}
}

// BenchmarkCacheEntry reports what one verified-token cache entry keeps on
// the heap (B/entry, objects/entry: the GC's mark work for a full cache),
// filling a default-size cache with distinct IdP-shaped tokens through the
// handler's own verify path. Each token is a fresh copy, as a request's
// header would be, so an entry that retains the token is charged for it.
func BenchmarkCacheEntry(b *testing.B) {
	const n = 2000
	key := jwttest.NewEC(b, "ES256", "ec")
	v := benchVerifier(b, key)
	toks := make([]string, n)
	for i := range toks {
		toks[i] = benchToken(b, key, true, i)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	var perEntry, objects float64
	for b.Loop() {
		c, err := newTokenCache(defaultCacheSize, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		a := &authenticator{verifier: v, cache: c, cfg: &Config{}}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, tok := range toks {
			if _, err := a.verify(req, credential{token: strings.Clone(tok)}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		objects = float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / n
		runtime.KeepAlive(a)
	}
	b.ReportMetric(perEntry, "B/entry")
	b.ReportMetric(objects, "objects/entry")
	b.ReportMetric(float64(len(toks[0])), "token-bytes")
}

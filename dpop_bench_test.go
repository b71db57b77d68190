package jwtauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// BenchmarkDPoP prices a DPoP request (README, "Sender-constrained
// tokens"): "cached_dpop" is the handler with a cached DPoP-bound token and
// a fresh ES256 proof per request; "cached_bearer" is the same handler with
// a cached unbound token (the cached path alone); "proof_signature" is the
// standard library's ES256 check of one proof, the floor of any proof
// check. The figure of merit is
//
//	cached_dpop / (cached_bearer + proof_signature)
//
// which stays close to 1 when the proof check adds little besides its
// signature. BENCHMARKS.md records it; timings are never asserted.
func BenchmarkDPoP(b *testing.B) {
	signer := jwttest.NewEC(b, "ES256", "ec")
	dir := b.TempDir()
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwttest.JWKS(signer), 0o600); err != nil {
		b.Fatal(err)
	}
	proofKey := newTestProofKey(b, jwttest.NewEC(b, "ES256", ""))
	const issuer, url = "https://idp.example/", "http://api.example.com/orders"
	claims := jwttest.Claims(issuer, "api", time.Hour)
	bearer := jwttest.Sign(b, signer, nil, claims)
	claims["cnf"] = map[string]any{"jkt": proofKey.jkt}
	bound := jwttest.Sign(b, signer, nil, claims)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	newHandler := func(b *testing.B) *Handler {
		b.Helper()
		h := &Handler{Config: Config{
			Issuers: []IssuerConfig{{Issuer: issuer, JWKSFile: jwksFile, Audience: []string{"api"}}},
			DPoP:    modeAllowed,
		}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		b.Cleanup(cancel)
		if err := h.Provision(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Cleanup() })
		return h
	}
	serve := func(b *testing.B, h *Handler, authorization, proof string) {
		req := httptest.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", authorization)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		repl := caddy.NewReplacer()
		req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, req, next); err != nil || w.Code != http.StatusNoContent {
			b.Fatalf("status %d err %v", w.Code, err)
		}
	}
	// proofs makes n distinct proofs for the request (each is accepted
	// once), before the clock starts.
	proofs := func(b *testing.B, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = proofKey.sign(b, nil, map[string]any{"htu": url, "iat": time.Now().Unix(), "ath": accessTokenHash(bound)})
		}
		return out
	}

	b.Run("cached_bearer", func(b *testing.B) {
		h := newHandler(b)
		serve(b, h, "Bearer "+bearer, "") // fills the cache
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			serve(b, h, "Bearer "+bearer, "")
		}
	})
	b.Run("cached_dpop", func(b *testing.B) {
		h := newHandler(b)
		ps := proofs(b, b.N+1)
		serve(b, h, "DPoP "+bound, ps[b.N]) // fills the cache
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			serve(b, h, "DPoP "+bound, ps[i])
		}
	})
	b.Run("proof_signature", func(b *testing.B) {
		proof := proofs(b, 1)[0]
		dot := strings.LastIndexByte(proof, '.')
		input := proof[:dot]
		sig, err := strictB64.DecodeString(proof[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		pub := proofKey.key.Public()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if !rawVerify("ES256", pub, input, sig) {
				b.Fatal("raw verify failed")
			}
		}
	})
}

// BenchmarkDPoPReplayLookup is the replay memory's answer for a proof it
// already holds (a replay), in a memory of 100,000 live entries: the
// lookup half of its cost (BenchmarkReplaySeen in dpop_replay_test.go is
// the insert half and the bytes per entry).
func BenchmarkDPoPReplayLookup(b *testing.B) {
	const n = defaultReplayCapacity
	now := time.Now()
	m := newReplayMemory(2*n, time.Hour)
	for i := range n {
		if m.seen(replayBenchKey(uint64(i)), now) != replayFresh {
			b.Fatal("distinct proof refused")
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if m.seen(replayBenchKey(uint64(i%n)), now) != replaySeen {
			b.Fatal("replay accepted")
		}
	}
}

package jwtauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// cacheFixture verifies a real token so the cache holds a real Result.
func cacheFixture(t *testing.T, claims map[string]any) (*tokenCache, *staticKeySource, string, *Result, *jwttest.Key) {
	t.Helper()
	key := jwttest.NewEC(t, "ES256", "k1")
	src := &staticKeySource{set: loadTestSet(t, LoadOptions{}, key)}
	v := NewVerifier([]*IssuerPolicy{{Issuer: "https://idp.example/", Algorithms: jose.DefaultAlgorithms(), Keys: src}},
		VerifierOptions{Leeway: 30 * time.Second})
	tok := jwttest.Sign(t, key, nil, claims)
	res, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newTokenCache(100, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c, src, tok, res, key
}

func TestTokenCache(t *testing.T) {
	claims := func() map[string]any { return jwttest.Claims("https://idp.example/", "", time.Hour) }

	t.Run("hit returns the same result", func(t *testing.T) {
		c, _, tok, res, _ := cacheFixture(t, claims())
		c.put(tok, res)
		if got, ok := c.get(tok); !ok || got != res {
			t.Fatal("expected a hit with the stored result")
		}
		if _, ok := c.get(tok + "x"); ok {
			t.Fatal("a different token must miss")
		}
	})
	t.Run("miss once the verifying key left the set", func(t *testing.T) {
		c, src, tok, res, _ := cacheFixture(t, claims())
		c.put(tok, res)
		src.set = loadTestSet(t, LoadOptions{}, jwttest.NewEC(t, "ES256", "k1")) // same kid, new key
		if _, ok := c.get(tok); ok {
			t.Fatal("hit although the key that verified the token was rotated out")
		}
	})
	t.Run("hit survives a re-fetch of the same keys", func(t *testing.T) {
		c, src, tok, res, key := cacheFixture(t, claims())
		c.put(tok, res)
		src.set = loadTestSet(t, LoadOptions{}, key) // new KeySet value, same key
		if _, ok := c.get(tok); !ok {
			t.Fatal("miss although the same key is still published")
		}
	})
	t.Run("miss once exp plus leeway has passed", func(t *testing.T) {
		c, _, tok, res, _ := cacheFixture(t, claims())
		c.put(tok, res)
		c.now = func() time.Time { return res.Expiry.Add(31 * time.Second) }
		if _, ok := c.get(tok); ok {
			t.Fatal("hit for an expired token")
		}
		c.now = time.Now
		if _, ok := c.get(tok); ok {
			t.Fatal("an expired entry must be dropped, not kept")
		}
	})
	t.Run("tokens over 4 KiB are not cached", func(t *testing.T) {
		cl := claims()
		cl["pad"] = strings.Repeat("x", maxCachedTokenSize)
		c, _, tok, res, _ := cacheFixture(t, cl)
		c.put(tok, res)
		if _, ok := c.get(tok); ok {
			t.Fatalf("a %d-byte token was cached", len(tok))
		}
	})
	t.Run("size 0 disables the cache", func(t *testing.T) {
		c, err := newTokenCache(0, time.Second)
		if err != nil || c != nil {
			t.Fatalf("want a nil cache, got %v %v", c, err)
		}
		c.put("t", &Result{}) // a nil cache is safe to use
		if _, ok := c.get("t"); ok {
			t.Fatal("nil cache hit")
		}
	})
}

// TestVerifyNeverCachesRejections drives the handler's verify path: a
// rejected token must be verified (and rejected) again every time.
func TestVerifyNeverCachesRejections(t *testing.T) {
	c, src, tok, _, _ := cacheFixture(t, jwttest.Claims("https://idp.example/", "", time.Hour))
	v := NewVerifier([]*IssuerPolicy{{Issuer: "https://idp.example/", Algorithms: jose.DefaultAlgorithms(), Audience: []string{"other"}, Keys: src}},
		VerifierOptions{})
	a := &authenticator{verifier: v, cache: c}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for range 2 {
		if _, err := a.verify(req, credential{token: tok}); ReasonOf(err) != ReasonWrongAudience {
			t.Fatalf("got %v, want wrong_audience", err)
		}
	}
	if n := c.entries.EstimatedSize(); n != 0 {
		t.Fatalf("cache holds %d entries after rejections", n)
	}
}

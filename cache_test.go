package jwtauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// cacheFixture verifies a real token so the cache holds a real verifiedToken.
func cacheFixture(t *testing.T, claims map[string]any) (*tokenCache, *staticKeySource, string, *verifiedToken, *jwttest.Key) {
	t.Helper()
	key := jwttest.NewEC(t, "ES256", "k1")
	src := &staticKeySource{set: loadTestSet(t, LoadOptions{}, key)}
	v := newTokenVerifier([]*issuerPolicy{{Issuer: "https://idp.example/", Algorithms: jose.DefaultAlgorithms(), Keys: src}},
		verifierOptions{Leeway: 30 * time.Second})
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

	t.Run("hit returns the verified result", func(t *testing.T) {
		cl := claims()
		cl["realm_access"] = map[string]any{"roles": []string{"a", "b"}}
		cl["n"] = 1.5e3
		c, _, tok, res, _ := cacheFixture(t, cl)
		res.userID = "user-123"
		c.put(c.slot(tok), res)
		got, ok := c.get(c.slot(tok))
		if !ok {
			t.Fatal("expected a hit")
		}
		if got.Token != nil || got.Issuer != res.Issuer || got.Key != res.Key || !got.Expiry.Equal(res.Expiry) || got.userID != "user-123" {
			t.Fatalf("hit %+v differs from the stored result %+v", got, res)
		}
		if !reflect.DeepEqual(got.Claims(), res.Claims()) {
			t.Fatalf("cached claims %v, verified claims %v", got.Claims(), res.Claims())
		}
		if _, ok := c.get(c.slot(tok + "x")); ok {
			t.Fatal("a different token must miss")
		}
	})
	t.Run("each hit decodes its own claims, once", func(t *testing.T) {
		c, _, tok, res, _ := cacheFixture(t, claims())
		c.put(c.slot(tok), res)
		first, _ := c.get(c.slot(tok))
		second, _ := c.get(c.slot(tok))
		if first == second {
			t.Fatal("two hits share one verifiedToken")
		}
		m := first.Claims()
		if reflect.ValueOf(first.Claims()).Pointer() != reflect.ValueOf(m).Pointer() {
			t.Fatal("a second Claims call decoded the payload again")
		}
		m["sub"] = "changed"
		if second.Claims()["sub"] != "user-123" {
			t.Fatal("one request's claims leaked into another's")
		}
	})
	t.Run("an entry costs one node and the payload", func(t *testing.T) {
		// The entry must not hold the decoded token: its maps are what made
		// a full cache expensive to keep.
		c, _, tok, res, _ := cacheFixture(t, claims())
		c.put(c.slot(tok), res)
		e, ok := c.entries.GetIfPresent(c.slot(tok).key)
		if !ok || string(e.payload) != string(res.Token.Payload()) {
			t.Fatal("the entry does not hold the verified payload")
		}
	})
	t.Run("miss once the verifying key left the set", func(t *testing.T) {
		c, src, tok, res, _ := cacheFixture(t, claims())
		c.put(c.slot(tok), res)
		src.set = loadTestSet(t, LoadOptions{}, jwttest.NewEC(t, "ES256", "k1")) // same kid, new key
		if _, ok := c.get(c.slot(tok)); ok {
			t.Fatal("hit although the key that verified the token was rotated out")
		}
	})
	t.Run("hit survives a re-fetch of the same keys", func(t *testing.T) {
		c, src, tok, res, key := cacheFixture(t, claims())
		c.put(c.slot(tok), res)
		src.set = loadTestSet(t, LoadOptions{}, key) // new keySet value, same key
		if _, ok := c.get(c.slot(tok)); !ok {
			t.Fatal("miss although the same key is still published")
		}
	})
	t.Run("miss once exp plus leeway has passed", func(t *testing.T) {
		c, _, tok, res, _ := cacheFixture(t, claims())
		c.put(c.slot(tok), res)
		c.now = func() time.Time { return res.Expiry.Add(31 * time.Second) }
		if _, ok := c.get(c.slot(tok)); ok {
			t.Fatal("hit for an expired token")
		}
		c.now = time.Now
		if _, ok := c.get(c.slot(tok)); ok {
			t.Fatal("an expired entry must be dropped, not kept")
		}
	})
	t.Run("tokens over 4 KiB are not cached", func(t *testing.T) {
		cl := claims()
		cl["pad"] = strings.Repeat("x", maxCachedTokenSize)
		c, _, tok, res, _ := cacheFixture(t, cl)
		c.put(c.slot(tok), res)
		if _, ok := c.get(c.slot(tok)); ok {
			t.Fatalf("a %d-byte token was cached", len(tok))
		}
	})
	t.Run("size 0 disables the cache", func(t *testing.T) {
		c, err := newTokenCache(0, time.Second)
		if err != nil || c != nil {
			t.Fatalf("want a nil cache, got %v %v", c, err)
		}
		c.put(c.slot("t"), &verifiedToken{}) // a nil cache is safe to use
		if _, ok := c.get(c.slot("t")); ok {
			t.Fatal("nil cache hit")
		}
	})
}

// TestVerifyNeverCachesRejections drives the handler's verify path: a
// rejected token must be verified (and rejected) again every time.
func TestVerifyNeverCachesRejections(t *testing.T) {
	c, src, tok, _, _ := cacheFixture(t, jwttest.Claims("https://idp.example/", "", time.Hour))
	v := newTokenVerifier([]*issuerPolicy{{Issuer: "https://idp.example/", Algorithms: jose.DefaultAlgorithms(), Audience: []string{"other"}, Keys: src}},
		verifierOptions{})
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

// TestCachedHitPublishesLikeAMiss drives a provisioned handler twice with
// one token: the second request is answered from the cache, and its
// placeholders and claim headers must be exactly those of the first,
// verified one, although its claims are decoded from the cached payload.
func TestCachedHitPublishesLikeAMiss(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwttest.JWKS(key), 0o600); err != nil {
		t.Fatal(err)
	}
	claims := jwttest.Claims("https://idp.example/", "api", time.Hour)
	claims["email"] = "jane@example.com"
	claims["realm_access"] = map[string]any{"roles": []string{"editor", "viewer"}}
	claims["n"] = 12.5
	tok := jwttest.Sign(t, key, nil, claims)
	h := &Handler{Config: Config{
		Issuers:      []IssuerConfig{{Issuer: "https://idp.example/", JWKSFile: jwksFile, Audience: []string{"api"}}},
		ClaimHeaders: []ClaimHeader{{Claim: "email", Header: "X-Email"}, {Claim: "realm_access.roles", Header: "X-Roles"}},
	}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	keys := []string{"id", "sub", "email", "realm_access.roles", "aud", "n", "exp", "absent", "realm_access"}
	seen := func() map[string]string {
		r, repl := requestWithReplacer()
		r.Header.Set("Authorization", "Bearer "+tok)
		got := map[string]string{}
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			for _, k := range keys {
				got[k], _ = repl.GetString(userPlaceholderPrefix + k)
			}
			got["X-Email"], got["X-Roles"] = r.Header.Get("X-Email"), r.Header.Get("X-Roles")
			return nil
		})
		if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
			t.Fatal(err)
		}
		return got
	}
	miss := seen()
	if n := h.auth.cache.entries.EstimatedSize(); n != 1 {
		t.Fatalf("cache holds %d entries after the first request, want 1", n)
	}
	hit := seen()
	if miss["id"] != "user-123" || miss["X-Roles"] != "editor,viewer" || miss["realm_access.roles"] != "editor,viewer" {
		t.Fatalf("uncached placeholders wrong: %v", miss)
	}
	if !reflect.DeepEqual(hit, miss) {
		t.Fatalf("cached request published %v, uncached %v", hit, miss)
	}
}

// TestCacheEvictsInTheInsertingRequest: a full cache evicts within put
// itself (runInline), never in a goroutine that has to wait for a core.
// On one P nothing else runs during the loop, so with otter's default
// executor the cache would grow past its bound here.
func TestCacheEvictsInTheInsertingRequest(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const size = 100
	c, err := newTokenCache(size, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := &verifiedToken{Token: &jose.JWS{}, Expiry: time.Now().Add(time.Hour)}
	for i := range 20 * size {
		c.put(c.slot(fmt.Sprintf("token-%d", i)), res)
		if n := c.entries.EstimatedSize(); n > size {
			t.Fatalf("after %d inserts the cache holds %d entries, over its %d", i+1, n, size)
		}
	}
}

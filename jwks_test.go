package jwtauth

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Tests of what both source types share: the URL rules, the pool and the
// user registry that decides whose logger, storage and tuning a shared
// source uses.

func TestCheckFetchURL(t *testing.T) {
	ok := []string{
		"https://idp.example/jwks",
		"https://idp.example:8443/.well-known/jwks.json",
		"http://127.0.0.1:8080/jwks",
		"http://127.9.9.9/jwks",
		"http://localhost/jwks",
		"http://LOCALHOST:1/jwks",
		"http://[::1]:9000/jwks",
	}
	bad := []string{
		"http://idp.example/jwks",
		"http://10.0.0.1/jwks",
		"http://[::2]/jwks",
		"http://localhost.evil.example/jwks",
		"http://127.0.0.1.nip.io/jwks",
		"ftp://idp.example/jwks",
		"file:///etc/jwks.json",
		"https:///jwks",
		"idp.example/jwks",
		"https://idp.example/%zz",
		"",
	}
	for _, u := range ok {
		if err := checkFetchURL(u); err != nil {
			t.Errorf("checkFetchURL(%q) = %v, want nil", u, err)
		}
	}
	for _, u := range bad {
		if err := checkFetchURL(u); err == nil {
			t.Errorf("checkFetchURL(%q) = nil, want an error", u)
		}
	}
	if err := checkFetchURL("http://user:hunter2@idp.example/jwks"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error must exist and not leak the password: %v", err)
	}
}

// poolEntries counts pooled fetchers for issuer.
func poolEntries(issuer string) int {
	n := 0
	fetchers.Range(func(_, v any) bool {
		if src, ok := v.(pooledSource); ok && src.base().id.Issuer == issuer {
			n++
		}
		return true
	})
	return n
}

func TestProvisionAndCleanupBalanceThePool(t *testing.T) {
	srv := jwttest.NewServer(t, jwttest.NewEC(t, "ES256", "k1"))
	good := IssuerConfig{Issuer: "https://pool-balance.example/", JWKSURL: srv.JWKSURL()}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	// The second issuer's file is missing: Provision fails after acquiring
	// the first, and must give it back itself. Caddy then calls Cleanup,
	// which must not release anything a second time.
	bad := &Handler{Config: Config{Issuers: []IssuerConfig{good,
		{Issuer: "https://pool-balance-file.example/", JWKSFile: t.TempDir() + "/missing.json"}}}}
	if err := bad.Provision(ctx); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("Provision with a missing jwks_file: %v, want the acquire error", err)
	}
	if err := bad.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := poolEntries(good.Issuer); n != 0 {
		t.Fatalf("failed Provision left %d fetchers", n)
	}

	// Two handlers share one fetcher; it lives until the last Cleanup, and
	// a repeated Cleanup releases nothing more.
	h1 := &Handler{Config: Config{Issuers: []IssuerConfig{good}}}
	h2 := &Handler{Config: Config{Issuers: []IssuerConfig{good}}}
	for _, h := range []*Handler{h1, h2} {
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if h1.auth.sources[good.Issuer] != h2.auth.sources[good.Issuer] || poolEntries(good.Issuer) != 1 {
		t.Fatal("two handlers with the same source do not share one fetcher")
	}
	shared := h1.auth.sources[good.Issuer].(*urlSource)
	_ = h1.Cleanup()
	_ = h1.Cleanup()
	if poolEntries(good.Issuer) != 1 || shared.ctx.Err() != nil {
		t.Fatal("a repeated Cleanup released the other handler's fetcher")
	}
	_ = h2.Cleanup()
	if poolEntries(good.Issuer) != 0 || shared.ctx.Err() == nil {
		t.Fatal("the last Cleanup did not destruct the fetcher")
	}
}

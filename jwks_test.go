package jwtauth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

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

// TestUserRegistryNewestLiveUserSpeaks: the newest registered user that is
// still live is the one in force; releasing it falls back to the one before.
func TestUserRegistryNewestLiveUserSpeaks(t *testing.T) {
	a := &sourceUser{tuning: sourceTuning{RefreshInterval: time.Minute}}
	b := &sourceUser{tuning: sourceTuning{RefreshInterval: time.Hour}}
	c := &sourceUser{tuning: sourceTuning{RefreshInterval: time.Second}}
	var r userRegistry
	r.init(a)
	steps := []struct {
		name string
		do   func()
		want *sourceUser
	}{
		{"first user", func() {}, a},
		{"a reload registers the new config", func() { r.add(b) }, b},
		{"the reload fails and cleans up", func() { r.remove(b) }, a},
		{"a reload that succeeds", func() { r.add(c) }, c},
		{"the old config is cleaned up", func() { r.remove(a) }, c},
		{"releasing an unknown user changes nothing", func() { r.remove(b) }, c},
		{"the last release keeps the last user for Destruct's logs", func() { r.remove(c) }, c},
	}
	for _, s := range steps {
		s.do()
		if got := r.newest(); got != s.want {
			t.Fatalf("%s: newest is the user with refresh %s, want %s", s.name, got.tuning.RefreshInterval, s.want.tuning.RefreshInterval)
		}
	}
}

// TestOneSourcePerKeySourceWhateverTheTuning: two handlers of one config
// name the same source with different settings. They share one source, a
// warning names it with the values in use, the newest handler's tuning is in
// force, and releasing that handler puts the other's back.
func TestOneSourcePerKeySourceWhateverTheTuning(t *testing.T) {
	srv := jwttest.NewServer(t, jwttest.NewEC(t, "ES256", "k1"))
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	core, logs := observer.New(zap.InfoLevel)
	ic := IssuerConfig{Issuer: "https://tuning.example/", JWKSURL: srv.JWKSURL()}
	slow := Config{Issuers: []IssuerConfig{ic}, RefreshInterval: caddy.Duration(time.Hour)}
	fast := Config{Issuers: []IssuerConfig{ic}, RefreshInterval: caddy.Duration(time.Minute), MaxStale: caddy.Duration(2 * time.Hour)}
	first := &authenticator{cfg: &Config{}, logger: zap.New(core), sources: map[string]keySource{}}
	second := &authenticator{cfg: &Config{}, logger: zap.New(core), sources: map[string]keySource{}}
	s1, err := first.acquire(ctx, slow.sourceConfigFor(ic))
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	if n := logs.FilterMessageSnippet("different fetch settings").Len(); n != 0 {
		t.Fatalf("%d tuning warnings with a single user", n)
	}
	s2, err := second.acquire(ctx, fast.sourceConfigFor(ic))
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 || poolEntries(ic.Issuer) != 1 {
		t.Fatalf("one key source with two tunings became %d pooled sources", poolEntries(ic.Issuer))
	}
	warned := logs.FilterMessageSnippet("different fetch settings").All()
	if len(warned) != 1 {
		t.Fatalf("%d tuning warnings, want 1", len(warned))
	}
	fields := warned[0].ContextMap()
	if fields["source"] != srv.JWKSURL() || fields["refresh_interval"] != time.Minute || fields["max_stale"] != 2*time.Hour {
		t.Fatalf("warning does not name the source and the values in use: %v", fields)
	}
	if got := s1.base().tuning().RefreshInterval; got != time.Minute {
		t.Fatalf("refresh_interval in force %s, want the newest handler's 1m", got)
	}
	if err := second.release(); err != nil {
		t.Fatal(err)
	}
	if got := s1.base().tuning(); got.RefreshInterval != time.Hour || got.MaxStale != defaultMaxStale {
		t.Fatalf("after releasing the newest handler the tuning is %+v, want the remaining handler's", got)
	}
}

// TestTuningOfAnotherConfigIsNoConflict: during a reload the old and the new
// config are both live; a changed setting is not two handlers disagreeing.
func TestTuningOfAnotherConfigIsNoConflict(t *testing.T) {
	srv := jwttest.NewServer(t, jwttest.NewEC(t, "ES256", "k1"))
	core, logs := observer.New(zap.InfoLevel)
	ic := IssuerConfig{Issuer: "https://reload-tuning.example/", JWKSURL: srv.JWKSURL()}
	var auths []*authenticator
	for _, refresh := range []time.Duration{time.Hour, time.Minute} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		a := &authenticator{cfg: &Config{}, logger: zap.New(core), sources: map[string]keySource{}}
		cfg := Config{Issuers: []IssuerConfig{ic}, RefreshInterval: caddy.Duration(refresh)}
		if _, err := a.acquire(ctx, cfg.sourceConfigFor(ic)); err != nil {
			t.Fatal(err)
		}
		auths = append(auths, a)
	}
	defer func() {
		for _, a := range auths {
			_ = a.release()
		}
	}()
	if n := logs.FilterMessageSnippet("different fetch settings").Len(); n != 0 {
		t.Fatalf("a reload changing refresh_interval warned %d times", n)
	}
	if got := auths[0].sources[ic.Issuer].(pooledSource).base().tuning().RefreshInterval; got != time.Minute {
		t.Fatalf("refresh_interval %s, want the new config's", got)
	}
}

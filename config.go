package jwtauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// Defaults of the options (README "Options").
const (
	defaultLeeway             = 30 * time.Second
	defaultMaxTokenSize       = 16 << 10
	defaultUserClaim          = "sub"
	defaultRefreshInterval    = 10 * time.Minute
	defaultMinRefreshInterval = 10 * time.Second
	defaultFetchTimeout       = 10 * time.Second
	defaultMaxStale           = 24 * time.Hour
	defaultCacheSize          = 10000
	minIntervalFloor          = time.Second
)

// IssuerConfig is one trusted issuer and where its keys come from. Its
// audience, algorithms and token types, when set, replace the top-level
// defaults (never extend them).
type IssuerConfig struct {
	// Issuer is compared byte for byte with the token's "iss".
	Issuer string `json:"issuer"`
	// JWKSURL is the key set's URL; with JWKSFile empty too, the URL is
	// found through OpenID Connect discovery from Issuer.
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSFile is a local JWKS or PEM file.
	JWKSFile   string   `json:"jwks_file,omitempty"`
	Audience   []string `json:"audience,omitempty"`
	Algorithms []string `json:"algorithms,omitempty"`
	TokenType  []string `json:"token_type,omitempty"`
}

// ClaimHeader copies a claim (dotted path) into a request header.
type ClaimHeader struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}

// Config is the JSON configuration shared by the handler and the
// authentication provider; the Caddyfile adapts to it (README "JSON").
type Config struct {
	// Issuers trusted by this handler; the token's iss picks one.
	Issuers []IssuerConfig `json:"issuers,omitempty"`
	// Audience: aud must contain at least one of these (default for issuers).
	Audience []string `json:"audience,omitempty"`
	// Algorithms accepted (default for issuers); default: every asymmetric one.
	Algorithms []string `json:"algorithms,omitempty"`
	// TokenType lists accepted JOSE typ values (default for issuers); default any.
	TokenType []string `json:"token_type,omitempty"`
	// Leeway is the clock skew allowed for exp, nbf and iat; absent: 30s.
	// A pointer, so that 0 (no leeway at all) can be configured.
	Leeway *caddy.Duration `json:"leeway,omitempty"`
	// MaxLifetime rejects tokens living longer than this (exp-iat, or exp-now without iat).
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// Sources of the credential; default the Authorization header, Bearer scheme.
	Sources []TokenSource `json:"sources,omitempty"`
	// MaxTokenSize in bytes; default 16 KiB.
	MaxTokenSize int `json:"max_token_size,omitempty"`
	// UserClaim becomes {http.auth.user.id}; default sub.
	UserClaim string `json:"user_claim,omitempty"`
	// Require lists claim rules; any failure answers 403.
	Require []ClaimRule `json:"require,omitempty"`
	// ClaimHeaders copy claims into request headers.
	ClaimHeaders []ClaimHeader `json:"claim_headers,omitempty"`
	// StripToken removes the credential before passing the request on.
	StripToken bool `json:"strip_token,omitempty"`
	// Optional lets requests without any credential pass unauthenticated.
	Optional bool `json:"optional,omitempty"`
	// ReportOnly verifies every request as usual but lets each one go on:
	// a valid token is published as usual, anything else passes
	// unauthenticated and is only logged (info) and counted as the
	// rejection it would have been. Default off; not with Optional.
	ReportOnly bool `json:"report_only,omitempty"`
	// AllowPreflight lets CORS preflight requests pass without a token.
	AllowPreflight bool `json:"allow_preflight,omitempty"`
	// RefreshInterval applies when the JWKS response has no usable max-age; default 10m.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// MinRefreshInterval is the floor between two fetches of one source; default 10s.
	MinRefreshInterval caddy.Duration `json:"min_refresh_interval,omitempty"`
	// FetchTimeout bounds one key fetch; default 10s.
	FetchTimeout caddy.Duration `json:"fetch_timeout,omitempty"`
	// MaxStale is the longest a last-good key set is used while its source is unreachable; default 24h.
	MaxStale caddy.Duration `json:"max_stale,omitempty"`
	// CacheSize is the number of verified tokens remembered; 0 disables; default 10000.
	CacheSize *int `json:"cache_size,omitempty"`
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// leeway is the configured clock skew, or the default when absent.
func (c *Config) leeway() time.Duration {
	if c.Leeway == nil {
		return defaultLeeway
	}
	return time.Duration(*c.Leeway)
}

func (c *Config) sources() []TokenSource {
	if len(c.Sources) == 0 {
		return defaultSources
	}
	return c.Sources
}

func (c *Config) maxTokenSize() int {
	if c.MaxTokenSize <= 0 {
		return defaultMaxTokenSize
	}
	return c.MaxTokenSize
}

func (c *Config) userClaim() string {
	if c.UserClaim == "" {
		return defaultUserClaim
	}
	return c.UserClaim
}

// effective returns the issuer's lists, falling back to the top-level ones.
func (c *Config) effective(ic IssuerConfig) (aud, algs, types []string) {
	aud, algs, types = ic.Audience, ic.Algorithms, ic.TokenType
	if len(aud) == 0 {
		aud = c.Audience
	}
	if len(algs) == 0 {
		algs = c.Algorithms
	}
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	if len(types) == 0 {
		types = c.TokenType
	}
	return aud, algs, types
}

// sourceConfigFor is the pool identity of an issuer's key source.
func (c *Config) sourceConfigFor(ic IssuerConfig) sourceConfig {
	_, algs, _ := c.effective(ic)
	allowHMAC := ic.JWKSFile != "" && slices.ContainsFunc(algs, func(a string) bool { return strings.HasPrefix(a, "HS") })
	return sourceConfig{
		Issuer:             ic.Issuer,
		JWKSURL:            ic.JWKSURL,
		JWKSFile:           ic.JWKSFile,
		AllowHMAC:          allowHMAC,
		FetchTimeout:       durationOr(c.FetchTimeout, defaultFetchTimeout),
		RefreshInterval:    durationOr(c.RefreshInterval, defaultRefreshInterval),
		MinRefreshInterval: durationOr(c.MinRefreshInterval, defaultMinRefreshInterval),
		MaxStale:           durationOr(c.MaxStale, defaultMaxStale),
	}
}

// newAuthenticator validates cfg and acquires one pooled fetcher per issuer.
// On failure it releases what it acquired, so Cleanup has nothing to do.
func newAuthenticator(ctx caddy.Context, cfg *Config) (*authenticator, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("jwt_auth: %w", err)
	}
	if err := registerMetrics(ctx); err != nil {
		return nil, fmt.Errorf("jwt_auth: %w", err)
	}
	a := &authenticator{cfg: cfg, logger: ctx.Logger(), sources: map[string]*fetcher{}}
	if len(cfg.Audience) == 0 && slices.ContainsFunc(cfg.Issuers, func(ic IssuerConfig) bool { return len(ic.Audience) == 0 }) {
		a.logger.Warn("no audience configured: tokens issued for any audience of this issuer are accepted")
	}
	policies := make([]*IssuerPolicy, 0, len(cfg.Issuers))
	storage := contextStorage(ctx)
	for _, ic := range cfg.Issuers {
		f, err := a.acquire(cfg.sourceConfigFor(ic), storage)
		if err != nil {
			_ = a.release()
			return nil, fmt.Errorf("jwt_auth: issuer %q: %w", ic.Issuer, err)
		}
		aud, algs, types := cfg.effective(ic)
		policies = append(policies, &IssuerPolicy{Issuer: ic.Issuer, Algorithms: algs, Audience: aud, TokenTypes: types, Keys: f})
	}
	leeway := cfg.leeway()
	cacheSize := defaultCacheSize
	if cfg.CacheSize != nil {
		cacheSize = *cfg.CacheSize
	}
	cache, err := newTokenCache(cacheSize, leeway)
	if err != nil {
		_ = a.release()
		return nil, fmt.Errorf("jwt_auth: token cache: %w", err)
	}
	a.cache = cache
	a.verifier = NewVerifier(policies, VerifierOptions{
		Leeway:      leeway,
		MaxLifetime: time.Duration(cfg.MaxLifetime),
		Require:     cfg.Require,
	})
	return a, nil
}

// acquire takes (or creates) the pooled fetcher for sc. A fetcher already
// running keeps its keys and schedule (so a reload causes no fetch and no
// 503); it adopts this config's logger and storage, the newest ones.
func (a *authenticator) acquire(sc sourceConfig, storage certmagic.Storage) (*fetcher, error) {
	key := sc.poolKey()
	val, loaded, err := fetchers.LoadOrNew(key, func() (caddy.Destructor, error) {
		f := newFetcher(sc, a.logger, storage)
		if err := f.start(); err != nil {
			f.cancel()
			return nil, err
		}
		return f, nil
	})
	if err != nil {
		// LoadOrNew counts a user even when it hands back another caller's
		// constructor error; that entry is already gone from the pool, so
		// there is nothing to release.
		return nil, err
	}
	f := val.(*fetcher)
	if loaded {
		f.adopt(a.logger, storage)
	}
	a.acquired = append(a.acquired, key)
	a.sources[sc.Issuer] = f
	if a.cfg.ReportOnly {
		a.markReportOnly(key)
	}
	return f, nil
}

// release gives back every pooled fetcher this authenticator acquired. It is
// safe to call more than once: the list is emptied on the first call.
func (a *authenticator) release() error {
	var errs []error
	for _, key := range a.acquired {
		if _, err := fetchers.Delete(key); err != nil {
			errs = append(errs, err)
		}
	}
	a.acquired = nil
	return errors.Join(errs...)
}

package jwtauth

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// Defaults of SPEC "Caddyfile".
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
// authentication provider (SPEC "Caddyfile", JSON form).
type Config struct {
	// Issuers trusted by this handler; the token's iss picks one.
	Issuers []IssuerConfig `json:"issuers,omitempty"`
	// Audience: aud must contain at least one of these (default for issuers).
	Audience []string `json:"audience,omitempty"`
	// Algorithms accepted (default for issuers); default: every asymmetric one.
	Algorithms []string `json:"algorithms,omitempty"`
	// TokenType lists accepted JOSE typ values (default for issuers); default any.
	TokenType []string `json:"token_type,omitempty"`
	// Leeway is the clock skew allowed for exp, nbf and iat; default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
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
		algs = jose.DefaultAlgorithms()
	}
	if len(types) == 0 {
		types = c.TokenType
	}
	return aud, algs, types
}

// validate is every configuration rule of SPEC "Caddyfile". The Caddyfile
// parser reports the same errors with file and line; Provision runs it first
// for JSON configs, before anything is acquired.
func (c *Config) validate() error {
	if len(c.Issuers) == 0 {
		return errors.New("at least one issuer is required")
	}
	seen := map[string]bool{}
	for _, ic := range c.Issuers {
		if err := c.validateIssuer(ic); err != nil {
			return err
		}
		if seen[ic.Issuer] {
			return fmt.Errorf("issuer %q is listed twice", ic.Issuer)
		}
		seen[ic.Issuer] = true
	}
	if err := validateAlgorithms(c.Algorithms); err != nil {
		return err
	}
	for _, d := range []struct {
		name  string
		value caddy.Duration
		floor time.Duration
	}{
		{"leeway", c.Leeway, 0}, {"max_lifetime", c.MaxLifetime, 0},
		{"refresh_interval", c.RefreshInterval, minIntervalFloor},
		{"min_refresh_interval", c.MinRefreshInterval, minIntervalFloor},
		{"fetch_timeout", c.FetchTimeout, 0}, {"max_stale", c.MaxStale, 0},
	} {
		if err := checkDuration(d.name, time.Duration(d.value), d.floor); err != nil {
			return err
		}
	}
	if c.MaxTokenSize < 0 {
		return errors.New("max_token_size must not be negative")
	}
	if c.CacheSize != nil && *c.CacheSize < 0 {
		return errors.New("cache_size must not be negative")
	}
	return c.validatePolicy()
}

func (c *Config) validateIssuer(ic IssuerConfig) error {
	if ic.Issuer == "" {
		return errors.New("issuer must not be empty")
	}
	if ic.JWKSURL != "" && ic.JWKSFile != "" {
		return fmt.Errorf("issuer %q: jwks_url and jwks_file are mutually exclusive", ic.Issuer)
	}
	if ic.JWKSURL != "" {
		if err := checkFetchURL(ic.JWKSURL); err != nil {
			return fmt.Errorf("issuer %q: jwks_url: %w", ic.Issuer, err)
		}
	}
	if ic.JWKSURL == "" && ic.JWKSFile == "" {
		if err := checkFetchURL(discoveryURL(ic.Issuer)); err != nil {
			return fmt.Errorf("issuer %q: without jwks_url or jwks_file the issuer must be an https URL for OpenID Connect discovery: %w", ic.Issuer, err)
		}
		if u, _ := url.Parse(ic.Issuer); u != nil && (u.RawQuery != "" || u.Fragment != "") {
			return fmt.Errorf("issuer %q: an issuer used for discovery has no query or fragment", ic.Issuer)
		}
	}
	return validateAlgorithms(ic.Algorithms)
}

func validateAlgorithms(algs []string) error {
	for _, a := range algs {
		if jose.LookupAlgorithm(a) == nil {
			return fmt.Errorf("unknown algorithm %q (known: %s HS256 HS384 HS512)", a, strings.Join(jose.DefaultAlgorithms(), " "))
		}
	}
	return nil
}

func checkDuration(name string, d, floor time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must not be negative", name)
	}
	if d != 0 && d < floor {
		return fmt.Errorf("%s must be at least %s", name, floor)
	}
	return nil
}

func (c *Config) validatePolicy() error {
	for _, s := range c.Sources {
		n := 0
		for _, v := range []string{s.Header, s.Query, s.Cookie} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return errors.New("each token source names exactly one of header, query or cookie")
		}
		if s.Scheme != "" && s.Header == "" {
			return errors.New("a token source's scheme applies to a header only")
		}
	}
	for _, rule := range c.Require {
		if rule.Claim == "" || len(rule.Values) == 0 {
			return errors.New("require needs a claim and at least one value")
		}
	}
	for _, ch := range c.ClaimHeaders {
		if ch.Claim == "" || ch.Header == "" {
			return errors.New("claim_header needs a claim and a header name")
		}
		if !validHeaderName(ch.Header) {
			return fmt.Errorf("claim_header: %q is not a valid header name", ch.Header)
		}
	}
	return nil
}

// validHeaderName reports an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
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
	leeway := durationOr(cfg.Leeway, defaultLeeway)
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

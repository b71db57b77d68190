package jwtauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
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
	// DPoP and MTLS replace the top-level modes for this issuer's tokens.
	DPoP string `json:"dpop,omitempty"`
	MTLS string `json:"mtls,omitempty"`
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
	// Resource makes the handler an OAuth protected resource (RFC 9728):
	// it serves the resource's metadata, names it in every challenge and
	// makes the resource the default audience. Default: none.
	Resource *ResourceConfig `json:"resource,omitempty"`
	// DPoP is off, allowed or required (RFC 9449): whether tokens bound to
	// a DPoP key (cnf.jkt) are accepted, with a valid proof and the DPoP
	// scheme, and whether unbound tokens still are. Default allowed.
	DPoP string `json:"dpop,omitempty"`
	// DPoPAlgorithms are the accepted proof algorithms, asymmetric only;
	// default ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA
	// Ed25519.
	DPoPAlgorithms []string `json:"dpop_algorithms,omitempty"`
	// DPoPMaxAge is how old a proof's iat may be, plus leeway; default 60s.
	// It is also the lifetime step of server nonces.
	DPoPMaxAge caddy.Duration `json:"dpop_max_age,omitempty"`
	// DPoPNonce demands server-issued nonces in proofs (RFC 9449 §9).
	DPoPNonce bool `json:"dpop_nonce,omitempty"`
	// DPoPReplaySize bounds the DPoP replay memory, in proofs remembered
	// (about 60 bytes each); when full, new proofs are refused. Default
	// 100000.
	DPoPReplaySize int `json:"dpop_replay_size,omitempty"`
	// MTLS is off, allowed or required (RFC 8705): whether tokens bound to
	// the TLS client certificate (cnf x5t#S256) are accepted, and whether
	// unbound tokens still are. Default off.
	MTLS string `json:"mtls,omitempty"`
}

// dpopMode is the issuer's effective dpop mode.
func (c *Config) dpopMode(ic IssuerConfig) string {
	return firstMode(ic.DPoP, c.DPoP, defaultDPoPMode)
}

// mtlsMode is the issuer's effective mtls mode.
func (c *Config) mtlsMode(ic IssuerConfig) string {
	return firstMode(ic.MTLS, c.MTLS, defaultMTLSMode)
}

func firstMode(modes ...string) string {
	for _, m := range modes {
		if m != "" {
			return m
		}
	}
	return ""
}

// dpopAccepted reports whether some issuer accepts DPoP-bound tokens, and
// so whether the DPoP scheme is a credential source.
func (c *Config) dpopAccepted() bool {
	return slices.ContainsFunc(c.Issuers, func(ic IssuerConfig) bool { return c.dpopMode(ic) != modeOff })
}

// bearerAccepted reports whether some issuer accepts tokens without DPoP,
// and so whether a Bearer challenge is worth sending.
func (c *Config) bearerAccepted() bool {
	return len(c.Issuers) == 0 || slices.ContainsFunc(c.Issuers, func(ic IssuerConfig) bool { return c.dpopMode(ic) != modeRequired })
}

func (c *Config) dpopAlgorithms() []string {
	if len(c.DPoPAlgorithms) == 0 {
		return defaultDPoPAlgorithms()
	}
	return c.DPoPAlgorithms
}

func (c *Config) dpopMaxAge() time.Duration {
	return durationOr(c.DPoPMaxAge, defaultDPoPMaxAge)
}

// dpopReplaySize is DPoPReplaySize with its default applied.
func (c *Config) dpopReplaySize() int {
	if c.DPoPReplaySize <= 0 {
		return defaultReplayCapacity
	}
	return c.DPoPReplaySize
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

// credentialSources are the sources a credential is read from: the
// configured ones, plus Authorization: DPoP when some issuer accepts DPoP.
func (c *Config) credentialSources() []TokenSource {
	if !c.dpopAccepted() {
		return c.sources()
	}
	return append(slices.Clip(c.sources()), dpopSource)
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

// readClaims are the claim paths the handler reads from every verified
// token: the user claim and the claim headers' claims.
func (c *Config) readClaims() []string {
	paths := []string{c.userClaim()}
	for _, ch := range c.ClaimHeaders {
		paths = append(paths, ch.Claim)
	}
	return paths
}

// effective returns the issuer's lists, falling back to the top-level ones.
// With a resource and no audience configured anywhere for the issuer, the
// audience is exactly the resource identifier (RFC 8707 §2: a token for
// another resource must not be accepted here).
func (c *Config) effective(ic IssuerConfig) (aud, algs, types []string) {
	aud, algs, types = ic.Audience, ic.Algorithms, ic.TokenType
	if len(aud) == 0 {
		aud = c.Audience
	}
	if len(aud) == 0 && c.Resource != nil {
		aud = []string{c.Resource.Resource}
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

// resourceInputs is what the resource metadata says about this config:
// the DPoP proof algorithms when some issuer accepts DPoP, whether every
// issuer requires it, and whether certificate-bound tokens are accepted.
func (c *Config) resourceInputs() resourceInputs {
	issuers := make([]string, 0, len(c.Issuers))
	in := resourceInputs{Sources: c.sources(), Require: c.Require}
	for _, ic := range c.Issuers {
		issuers = append(issuers, ic.Issuer)
		if c.mtlsMode(ic) != modeOff {
			in.MTLS = true
		}
	}
	in.Issuers = issuers
	if c.dpopAccepted() {
		in.DPoPAlgorithms = c.dpopAlgorithms()
		in.DPoPRequired = !c.bearerAccepted()
	}
	return in
}

// sourceConfigFor is an issuer's key source as this config sees it: its
// identity (which pooled source) and this config's tuning of it.
func (c *Config) sourceConfigFor(ic IssuerConfig) sourceConfig {
	_, algs, _ := c.effective(ic)
	allowHMAC := ic.JWKSFile != "" && slices.ContainsFunc(algs, func(a string) bool { return strings.HasPrefix(a, "HS") })
	return sourceConfig{
		sourceID: sourceID{Issuer: ic.Issuer, JWKSURL: ic.JWKSURL, JWKSFile: ic.JWKSFile, AllowHMAC: allowHMAC},
		sourceTuning: sourceTuning{
			FetchTimeout:       durationOr(c.FetchTimeout, defaultFetchTimeout),
			RefreshInterval:    durationOr(c.RefreshInterval, defaultRefreshInterval),
			MinRefreshInterval: durationOr(c.MinRefreshInterval, defaultMinRefreshInterval),
			MaxStale:           durationOr(c.MaxStale, defaultMaxStale),
		},
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
	a := &authenticator{cfg: cfg, logger: ctx.Logger(), sources: map[string]keySource{}, credentialSources: cfg.credentialSources()}
	if len(cfg.Audience) == 0 && cfg.Resource == nil && slices.ContainsFunc(cfg.Issuers, func(ic IssuerConfig) bool { return len(ic.Audience) == 0 }) {
		a.logger.Warn("no audience configured: tokens issued for any audience of this issuer are accepted")
	}
	if cfg.Resource != nil {
		res, err := newProtectedResource(cfg.Resource, cfg.resourceInputs())
		if err != nil {
			return nil, fmt.Errorf("jwt_auth: %w", err)
		}
		a.resource = res
	}
	hooks := verifierHooks{replayFull: a.warnReplayFull}
	if cfg.DPoPNonce {
		nonces, err := loadNonces(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("jwt_auth: %w", err)
		}
		a.nonces, hooks.nonces = nonces, nonces
	}
	verifier, err := newVerifier(cfg, func(ic IssuerConfig) (keySource, error) {
		f, err := a.acquire(ctx, cfg.sourceConfigFor(ic))
		if err != nil {
			return nil, err
		}
		return f, nil
	}, hooks)
	if err != nil {
		_ = a.release()
		return nil, fmt.Errorf("jwt_auth: %w", err)
	}
	cacheSize := defaultCacheSize
	if cfg.CacheSize != nil {
		cacheSize = *cfg.CacheSize
	}
	cache, err := newTokenCache(cacheSize, cfg.leeway())
	if err != nil {
		_ = a.release()
		return nil, fmt.Errorf("jwt_auth: token cache: %w", err)
	}
	a.cache = cache
	a.verifier = verifier
	return a, nil
}

// loadNonces builds the DPoP nonce source from the secret shared through
// Caddy storage (dpop_nonce.go), so every instance on that storage accepts
// the others' nonces.
func loadNonces(ctx caddy.Context, cfg *Config) (*dpopNonces, error) {
	storage := contextStorage(ctx)
	if storage == nil {
		return nil, errors.New("dpop_nonce needs Caddy storage for the nonce secret")
	}
	key, err := loadNonceKey(ctx, storage)
	if err != nil {
		return nil, fmt.Errorf("dpop_nonce: %w", err)
	}
	return newDPoPNonces(key, cfg.dpopMaxAge()), nil
}

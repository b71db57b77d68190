package jwtauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// maxMaxTokenSize caps max_token_size: a credential is read into memory
// whole before anything else looks at it.
const maxMaxTokenSize = 1 << 30

// validate is every configuration rule, written once. The Caddyfile parser
// checks only syntax and then runs validate, reporting its error with the
// file and line; Provision runs it first for JSON configs, before anything
// is acquired. Defaults are not filled in: an absent option stays absent.
func (c *Config) validate() error {
	if len(c.Issuers) == 0 {
		return errors.New("at least one issuer is required")
	}
	seen := map[string]bool{}
	for _, ic := range c.Issuers {
		if err := validateIssuer(ic); err != nil {
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
	if err := c.validateDurations(); err != nil {
		return err
	}
	if c.MaxTokenSize < 0 {
		return errors.New("max_token_size must not be negative")
	}
	if c.MaxTokenSize > maxMaxTokenSize {
		return fmt.Errorf("max_token_size must be at most %d bytes (1GiB)", maxMaxTokenSize)
	}
	if c.CacheSize != nil && *c.CacheSize < 0 {
		return errors.New("cache_size must not be negative")
	}
	if c.Resource != nil {
		if err := c.Resource.validate(); err != nil {
			return err
		}
	}
	if err := c.validateBinding(); err != nil {
		return err
	}
	return c.validatePolicy()
}

// validateBinding: the sender-constraint options (RFC 9449, RFC 8705).
func (c *Config) validateBinding() error {
	if err := validateMode("dpop", c.DPoP); err != nil {
		return err
	}
	if err := validateMode("mtls", c.MTLS); err != nil {
		return err
	}
	for _, ic := range c.Issuers {
		if err := validateMode("dpop", ic.DPoP); err != nil {
			return fmt.Errorf("issuer %q: %w", ic.Issuer, err)
		}
		if err := validateMode("mtls", ic.MTLS); err != nil {
			return fmt.Errorf("issuer %q: %w", ic.Issuer, err)
		}
	}
	for _, a := range c.DPoPAlgorithms {
		// A proof proves possession of a private key; a shared secret
		// (HS*) proves nothing, and none is no signature at all.
		if alg := jose.LookupAlgorithm(a); alg == nil || !alg.Asymmetric() {
			return fmt.Errorf("dpop_algorithms: %q is not an asymmetric JWS algorithm (known: %s)", a, strings.Join(defaultDPoPAlgorithms(), " "))
		}
	}
	if c.DPoPReplaySize < 0 {
		return errors.New("dpop_replay_size must not be negative")
	}
	if c.DPoPMaxAge < 0 {
		return errors.New("dpop_max_age must not be negative")
	}
	if c.DPoPNonce && !c.dpopAccepted() {
		return errors.New("dpop_nonce needs dpop allowed or required for at least one issuer")
	}
	return nil
}

// validateMode: a dpop or mtls mode is off, allowed or required (or
// absent: the default).
func validateMode(option, mode string) error {
	switch mode {
	case "", modeOff, modeAllowed, modeRequired:
		return nil
	}
	return fmt.Errorf("%s must be off, allowed or required, not %q", option, mode)
}

func validateIssuer(ic IssuerConfig) error {
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
	if err := validateAlgorithms(ic.Algorithms); err != nil {
		return fmt.Errorf("issuer %q: %w", ic.Issuer, err)
	}
	return nil
}

func validateAlgorithms(algs []string) error {
	for _, a := range algs {
		if jose.LookupAlgorithm(a) == nil {
			return fmt.Errorf("unknown algorithm %q (known: %s HS256 HS384 HS512)", a, strings.Join(jose.DefaultAlgorithms(), " "))
		}
	}
	return nil
}

// validateDurations: no duration is negative, and the refresh intervals,
// when set, are at least minIntervalFloor (a smaller one would let a
// misconfiguration hammer the issuer).
func (c *Config) validateDurations() error {
	var leeway caddy.Duration
	if c.Leeway != nil {
		leeway = *c.Leeway
	}
	for _, d := range []struct {
		name  string
		value caddy.Duration
		floor time.Duration
	}{
		{"leeway", leeway, 0}, {"max_lifetime", c.MaxLifetime, 0},
		{"refresh_interval", c.RefreshInterval, minIntervalFloor},
		{"min_refresh_interval", c.MinRefreshInterval, minIntervalFloor},
		{"fetch_timeout", c.FetchTimeout, 0}, {"max_stale", c.MaxStale, 0},
	} {
		if d.value < 0 {
			return fmt.Errorf("%s must not be negative", d.name)
		}
		if d.value != 0 && time.Duration(d.value) < d.floor {
			return fmt.Errorf("%s must be at least %s", d.name, d.floor)
		}
	}
	return nil
}

func (c *Config) validatePolicy() error {
	if c.ReportOnly && c.Optional {
		// optional would hide the would-be missing rejections report-only
		// mode exists to show.
		return errors.New("report_only and optional are mutually exclusive")
	}
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

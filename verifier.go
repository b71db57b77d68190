package jwtauth

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// maxNumericDate is 9999-12-31T23:59:59Z: larger "exp" values are bugs or
// attacks (1e30 overflows time arithmetic), never real tokens.
const maxNumericDate = 253402300799

// KeySource supplies one issuer's current keys. Implementations live in
// jwks.go; the verifier sees only this.
type KeySource interface {
	// KeySet returns the usable set, or nil while the issuer has none
	// (never loaded, or dropped after max_stale).
	KeySet() *KeySet
	// RefreshForUnknownKey is called when no key fits a token. It may fetch
	// (coalesced and rate-limited by the source) and returns the set to try
	// again with, possibly the same one. It returns within the fetch timeout.
	RefreshForUnknownKey(ctx context.Context, kid string) *KeySet
	// RetryAfter is how long until the source next tries to load keys,
	// for the Retry-After header of a 503.
	RetryAfter() time.Duration
}

// IssuerPolicy is what the verifier knows about one trusted issuer.
type IssuerPolicy struct {
	Issuer     string          // compared byte for byte with "iss"
	Algorithms []string        // accepted "alg" values
	Audience   []string        // "aud" must contain one of these; empty: not checked
	TokenTypes []string        // accepted "typ" values; empty: any
	Keys       KeySource       // where this issuer's keys come from
	algs       map[string]bool // Algorithms as a set
	types      []string        // TokenTypes normalized
}

// Verifier checks tokens as SPEC "Verification" steps 2–5 say. It has no
// Caddy types so the CLI and the tests use exactly the same code. It is safe
// for concurrent use once built.
type Verifier struct {
	issuers     map[string]*IssuerPolicy
	leeway      time.Duration
	maxLifetime time.Duration
	require     []ClaimRule
	now         func() time.Time
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	Leeway      time.Duration    // clock skew allowed for exp, nbf and iat
	MaxLifetime time.Duration    // 0: no limit
	Require     []ClaimRule      // claim rules checked last (403 on failure)
	Now         func() time.Time // nil: time.Now
}

// NewVerifier builds a verifier for the given issuers.
func NewVerifier(issuers []*IssuerPolicy, opts VerifierOptions) *Verifier {
	v := &Verifier{
		issuers:     make(map[string]*IssuerPolicy, len(issuers)),
		leeway:      opts.Leeway,
		maxLifetime: opts.MaxLifetime,
		require:     opts.Require,
		now:         opts.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	for _, p := range issuers {
		p.algs = make(map[string]bool, len(p.Algorithms))
		for _, a := range p.Algorithms {
			p.algs[a] = true
		}
		p.types = make([]string, len(p.TokenTypes))
		for i, t := range p.TokenTypes {
			p.types[i] = normalizeType(t)
		}
		v.issuers[p.Issuer] = p
	}
	return v
}

// Result is a verified token.
type Result struct {
	Token  *jose.JWS
	Issuer *IssuerPolicy
	Key    *jose.Key
	Expiry time.Time
}

// Verify decodes, selects the key for, verifies and checks token. The error
// is always a *Rejection whose Reason is the first rule that failed.
func (v *Verifier) Verify(ctx context.Context, token string) (*Result, error) {
	t, rej := decodeToken(token)
	if rej != nil {
		return nil, rej
	}
	res, err := v.verifyDecoded(ctx, t)
	if rej, ok := err.(*Rejection); ok {
		rej.Issuer, rej.Kid = t.Issuer, t.Kid
	}
	return res, err
}

func (v *Verifier) verifyDecoded(ctx context.Context, t *jose.JWS) (*Result, error) {
	issuer, key, err := v.SelectKey(ctx, t)
	if err != nil {
		return nil, err
	}
	if !jose.Verify(t.Alg, key.Public, t.SigningInput(), t.Signature()) {
		return nil, reject(ReasonBadSignature, "signature does not verify with key %.64q", key.ID)
	}
	exp, err := v.CheckClaims(t, issuer)
	if err != nil {
		return nil, err
	}
	return &Result{Token: t, Issuer: issuer, Key: key, Expiry: exp}, nil
}

// SelectKey is SPEC step 3: pick the issuer by the unverified iss, check the
// alg against its policy and find the key in its configured source only.
func (v *Verifier) SelectKey(ctx context.Context, t *jose.JWS) (*IssuerPolicy, *jose.Key, error) {
	issuer := v.issuers[t.Issuer]
	if issuer == nil {
		return nil, nil, reject(ReasonWrongIssuer, "issuer %.128q is not configured", t.Issuer)
	}
	if !issuer.algs[t.Alg] {
		return issuer, nil, reject(ReasonForbiddenAlg, "alg %s is not allowed for this issuer", t.Alg)
	}
	set := issuer.Keys.KeySet()
	if set == nil {
		return issuer, nil, reject(ReasonKeysUnavailable, "no usable key set for issuer %.128q yet", t.Issuer)
	}
	if key := set.Select(t.Kid, t.Alg); key != nil {
		return issuer, key, nil
	}
	if key := issuer.Keys.RefreshForUnknownKey(ctx, t.Kid).Select(t.Kid, t.Alg); key != nil {
		return issuer, key, nil
	}
	return issuer, nil, reject(ReasonUnknownKid, "no %s key with kid %.128q", t.Alg, t.Kid)
}

// CheckClaims is SPEC step 5 after the signature has verified. It returns the
// token's expiry.
func (v *Verifier) CheckClaims(t *jose.JWS, issuer *IssuerPolicy) (time.Time, error) {
	now := v.now()
	times, err := readTimes(t.Claims)
	if err != nil {
		return time.Time{}, err
	}
	if !times.hasExp {
		return time.Time{}, reject(ReasonMalformed, "exp claim is required")
	}
	if !times.exp.After(now.Add(-v.leeway)) {
		return time.Time{}, reject(ReasonExpired, "expired at %s, now %s, leeway %s", utc(times.exp), utc(now), v.leeway)
	}
	if times.hasNbf && times.nbf.After(now.Add(v.leeway)) {
		return time.Time{}, reject(ReasonNotYetValid, "nbf %s is after now %s + leeway %s", utc(times.nbf), utc(now), v.leeway)
	}
	if times.hasIat && times.iat.After(now.Add(v.leeway)) {
		return time.Time{}, reject(ReasonNotYetValid, "iat %s is after now %s + leeway %s", utc(times.iat), utc(now), v.leeway)
	}
	if err := v.checkLifetime(times, now); err != nil {
		return time.Time{}, err
	}
	if err := checkAudience(t.Claims, issuer.Audience); err != nil {
		return time.Time{}, err
	}
	if len(issuer.types) > 0 && !slices.Contains(issuer.types, normalizeType(t.Typ)) {
		return time.Time{}, reject(ReasonWrongType, "typ %.64q is not one of %v", t.Typ, issuer.TokenTypes)
	}
	if _, bound := t.Claims["cnf"]; bound {
		return time.Time{}, reject(ReasonBoundToken, "token is bound to a key (cnf); proof-of-possession is not supported")
	}
	for _, rule := range v.require {
		if err := rule.Check(t.Claims); err != nil {
			return time.Time{}, err
		}
	}
	return times.exp, nil
}

func (v *Verifier) checkLifetime(times tokenTimes, now time.Time) error {
	if v.maxLifetime <= 0 {
		return nil
	}
	start := now
	if times.hasIat {
		start = times.iat
	}
	if life := times.exp.Sub(start); life > v.maxLifetime {
		return reject(ReasonTooOld, "lifetime %s exceeds max_lifetime %s", life, v.maxLifetime)
	}
	return nil
}

func checkAudience(claims map[string]any, want []string) error {
	if len(want) == 0 {
		return nil
	}
	var have []string
	switch aud := claims["aud"].(type) {
	case nil:
	case string:
		have = []string{aud}
	case []any:
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return reject(ReasonMalformed, "aud array holds a non-string")
			}
			have = append(have, s)
		}
	default:
		return reject(ReasonMalformed, "aud is neither a string nor an array")
	}
	for _, a := range have {
		if slices.Contains(want, a) {
			return nil
		}
	}
	return reject(ReasonWrongAudience, "aud %.128q does not contain any of %v", have, want)
}

// normalizeType folds a JOSE typ for comparison (RFC 7515 §4.1.9: case-
// insensitive, "application/" optional).
func normalizeType(typ string) string {
	typ = strings.ToLower(typ)
	return strings.TrimPrefix(typ, "application/")
}

type tokenTimes struct {
	exp, nbf, iat          time.Time
	hasExp, hasNbf, hasIat bool
}

func readTimes(claims map[string]any) (tokenTimes, error) {
	var tt tokenTimes
	var err error
	if tt.exp, tt.hasExp, err = numericDate(claims, "exp"); err != nil {
		return tt, err
	}
	if tt.nbf, tt.hasNbf, err = numericDate(claims, "nbf"); err != nil {
		return tt, err
	}
	if tt.iat, tt.hasIat, err = numericDate(claims, "iat"); err != nil {
		return tt, err
	}
	return tt, nil
}

// numericDate reads an RFC 7519 NumericDate: a JSON number in
// [0, 253402300799], fractions allowed.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	raw, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := raw.(json.Number)
	if !ok {
		return time.Time{}, false, reject(ReasonMalformed, "%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, reject(ReasonMalformed, "%s is not a date in [0, %d]", name, maxNumericDate)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Issuers returns the configured issuer policies.
func (v *Verifier) Issuers() []*IssuerPolicy {
	out := make([]*IssuerPolicy, 0, len(v.issuers))
	for _, p := range v.issuers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *IssuerPolicy) int { return strings.Compare(a.Issuer, b.Issuer) })
	return out
}

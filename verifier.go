package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// issuerPolicy is what the verifier knows about one trusted issuer.
// newTokenVerifier copies it: changing a policy after the verifier is built has
// no effect, and the verifier never writes to it.
type issuerPolicy struct {
	Issuer     string    // compared byte for byte with "iss"
	Algorithms []string  // accepted "alg" values
	Audience   []string  // "aud" must contain one of these; empty: not checked
	TokenTypes []string  // accepted "typ" values; empty: any
	Keys       keySource // where this issuer's keys come from
	// DPoP and MTLS are the issuer's binding modes: off, allowed or
	// required. Empty: allowed for DPoP, off for mTLS.
	DPoP, MTLS string
}

// issuerState is the verifier's own copy of a policy and what it derives
// from it once, so the hot path does no normalizing.
type issuerState struct {
	policy issuerPolicy
	algs   map[string]bool // policy.Algorithms as a set
	types  []string        // policy.TokenTypes normalized
}

// tokenVerifier checks tokens in the order of docs/design.md "Verification
// order": decode, issuer, alg, key, signature, claims. It has no Caddy types
// so the CLI and the tests run exactly the handler's code. It is safe for
// concurrent use once built.
type tokenVerifier struct {
	issuers     map[string]*issuerState
	issuerNames string // the configured issuers, for the wrong_issuer detail
	leeway      time.Duration
	maxLifetime time.Duration
	require     []ClaimRule
	now         func() time.Time
	dpop        dpopSettings
	// claimNames are the top-level claims decoded on the request path:
	// checkedClaims, the roots of the rules and the caller's ReadClaims.
	// The payload's other members are checked but decoded only when a
	// placeholder asks for them (verifiedToken.Claims).
	claimNames []string
}

// checkedClaims are the claims checkClaims reads; never written.
var checkedClaims = [...]string{"iss", "exp", "nbf", "iat", "sub", "jti", "aud", "cnf"}

// verifierOptions configure a tokenVerifier.
type verifierOptions struct {
	Leeway      time.Duration    // clock skew allowed for exp, nbf and iat; 0: none
	MaxLifetime time.Duration    // 0: no limit
	Require     []ClaimRule      // claim rules checked last (403 on failure)
	Now         func() time.Time // nil: time.Now
	// ReadClaims are claim paths the caller reads from every verified
	// token (the user claim, claim headers): their top-level claims are
	// decoded with the verifier's own, not on demand.
	ReadClaims []string
	// DPoPAlgorithms are the accepted proof algorithms; nil: every
	// asymmetric one. Symmetric ones are refused regardless.
	DPoPAlgorithms []string
	// DPoPMaxAge is how old a proof's iat may be (plus Leeway); 0: 60s.
	DPoPMaxAge time.Duration
	// DPoPReplaySize bounds the replay memory; 0: 100000.
	DPoPReplaySize int

	// nonces, when set, demands server nonces in proofs (RFC 9449 §9).
	nonces *dpopNonces
	// replayFull is called when the replay memory refuses a proof.
	replayFull func()
}

// newVerifier builds the verifier of a validated cfg. It is the one
// construction shared by Provision and `caddy jwt verify`, which differ only
// in where an issuer's keys come from: keysFor (the fetcher pool, or a set
// loaded once).
func newVerifier(cfg *Config, keysFor func(IssuerConfig) (keySource, error), hooks verifierHooks) (*tokenVerifier, error) {
	policies := make([]*issuerPolicy, 0, len(cfg.Issuers))
	for _, ic := range cfg.Issuers {
		keys, err := keysFor(ic)
		if err != nil {
			return nil, fmt.Errorf("issuer %q: %w", ic.Issuer, err)
		}
		aud, algs, types := cfg.effective(ic)
		policies = append(policies, &issuerPolicy{Issuer: ic.Issuer, Algorithms: algs, Audience: aud, TokenTypes: types, Keys: keys,
			DPoP: cfg.dpopMode(ic), MTLS: cfg.mtlsMode(ic)})
	}
	return newTokenVerifier(policies, verifierOptions{
		Leeway:      cfg.leeway(),
		MaxLifetime: time.Duration(cfg.MaxLifetime),
		Require:     cfg.Require,
		ReadClaims:  cfg.readClaims(),
		// The handler's nonce source and warning; the CLI has neither.
		DPoPAlgorithms: cfg.dpopAlgorithms(),
		DPoPMaxAge:     cfg.dpopMaxAge(),
		DPoPReplaySize: cfg.dpopReplaySize(),
		nonces:         hooks.nonces,
		replayFull:     hooks.replayFull,
	}), nil
}

// verifierHooks are what a verifier built from a Config takes from the
// handler rather than from the Config: the DPoP nonce source (nil when
// dpop_nonce is off or unavailable, as in the CLI) and the replay-full
// warning.
type verifierHooks struct {
	nonces     *dpopNonces
	replayFull func()
}

// newTokenVerifier builds a verifier for the given issuers. It copies the
// policies and rules; the caller's values are never modified.
func newTokenVerifier(issuers []*issuerPolicy, opts verifierOptions) *tokenVerifier {
	v := &tokenVerifier{
		issuers:     make(map[string]*issuerState, len(issuers)),
		leeway:      opts.Leeway,
		maxLifetime: opts.MaxLifetime,
		now:         opts.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.dpop = dpopSettings{
		algorithms: slices.Clone(opts.DPoPAlgorithms),
		maxAge:     opts.DPoPMaxAge,
		nonces:     opts.nonces,
		replayFull: opts.replayFull,
	}
	if v.dpop.algorithms == nil {
		v.dpop.algorithms = defaultDPoPAlgorithms()
	}
	if v.dpop.maxAge <= 0 {
		v.dpop.maxAge = defaultDPoPMaxAge
	}
	// A proof accepted at t has iat ≤ t + leeway and stays acceptable until
	// iat + max_age + leeway: the window covers that (dpop_replay.go).
	replaySize := opts.DPoPReplaySize
	if replaySize <= 0 {
		replaySize = defaultReplayCapacity
	}
	v.dpop.replay = newReplayMemory(replaySize, v.dpop.maxAge+2*v.leeway)
	v.dpop.keys = newProofKeyCache(defaultProofKeyCapacity)
	v.claimNames = append(v.claimNames, checkedClaims[:]...)
	for _, r := range opts.Require {
		v.require = append(v.require, ClaimRule{Claim: r.Claim, Values: slices.Clone(r.Values)})
		v.claimNames = append(v.claimNames, claimRoot(r.Claim))
	}
	for _, path := range opts.ReadClaims {
		v.claimNames = append(v.claimNames, claimRoot(path))
	}
	slices.Sort(v.claimNames)
	v.claimNames = slices.Compact(v.claimNames)
	names := make([]string, 0, len(issuers))
	for _, p := range issuers {
		st := &issuerState{
			policy: issuerPolicy{
				Issuer:     p.Issuer,
				Algorithms: slices.Clone(p.Algorithms),
				Audience:   slices.Clone(p.Audience),
				TokenTypes: slices.Clone(p.TokenTypes),
				Keys:       p.Keys,
				DPoP:       p.DPoP,
				MTLS:       p.MTLS,
			},
			algs:  make(map[string]bool, len(p.Algorithms)),
			types: make([]string, len(p.TokenTypes)),
		}
		for _, a := range p.Algorithms {
			st.algs[a] = true
		}
		for i, t := range p.TokenTypes {
			st.types[i] = normalizeType(t)
		}
		v.issuers[p.Issuer] = st
		names = append(names, fmt.Sprintf("%.128q", p.Issuer))
	}
	slices.Sort(names)
	v.issuerNames = strings.Join(names, " ")
	return v
}

// verifiedToken is a verified token.
type verifiedToken struct {
	// Token is the decoded token, with the verifier's claimNames decoded
	// (jose.DecodeSelected); nil for a result answered from the
	// verified-token cache. Claims gives all the claims of either.
	Token *jose.JWS
	// Issuer is the verifier's own copy of the issuer's policy; read only.
	Issuer *issuerPolicy
	Key    *keyimport.Key
	Expiry time.Time
	// binding is the token's cnf, kept so that the binding checks run on
	// every request, verified-token cache hits included.
	binding binding

	payload []byte         // a cached result's verified payload
	claims  map[string]any // Claims' decoding of the whole payload
	userID  string         // user_claim rendered, set by the authenticator
}

// Binding is the {http.auth.binding} value of the verified token: bearer,
// dpop, mtls or dpop+mtls.
func (r *verifiedToken) Binding() string { return r.binding.label() }

// The names of the verification steps, in the order they run, as the trace
// and `caddy jwt verify` show them.
const (
	stepDecode      = "decode"
	stepIssuer      = "issuer"
	stepAlg         = "alg"
	stepKey         = "key"
	stepSignature   = "signature"
	stepClaimTypes  = "claim_types"
	stepExp         = "exp"
	stepNbf         = "nbf"
	stepIat         = "iat"
	stepMaxLifetime = "max_lifetime"
	stepAud         = "aud"
	stepTyp         = "typ"
	stepRequire     = "require" // one step per rule
)

// traceStep is one check the verifier ran: its name, whether it passed, and
// the values behind the verdict (for a failure, the rejection's detail).
type traceStep struct {
	Name   string
	OK     bool
	Detail string
}

// trace collects the steps of one verification for `caddy jwt verify`. The
// handler passes a nil *trace: every recording site is guarded so that the
// hot path formats nothing and allocates nothing for it.
type trace struct {
	steps []traceStep
}

// pass records a passed step. Call it only under `if tr != nil`, so its
// arguments are not even built on the hot path.
func (tr *trace) pass(name, format string, args ...any) {
	if tr != nil {
		tr.steps = append(tr.steps, traceStep{Name: name, OK: true, Detail: fmt.Sprintf(format, args...)})
	}
}

// fail records a failed step with the rejection's own detail and returns
// err, so a rejection is written once and traced where it is returned.
func (tr *trace) fail(name string, err error) error {
	if tr != nil {
		detail := err.Error()
		if rej, ok := err.(*Rejection); ok && rej.Detail != "" {
			detail = rej.Detail
		}
		tr.steps = append(tr.steps, traceStep{Name: name, Detail: detail})
	}
	return err
}

// Verify decodes, selects the key for, verifies and checks token, as a
// Bearer token presented without TLS. The error is always a *Rejection
// whose Reason is the first rule that failed.
func (v *tokenVerifier) Verify(ctx context.Context, token string) (*verifiedToken, error) {
	return v.verifyPresented(ctx, token, nil, nil)
}

// verify is Verify, recording each step into tr when tr is not nil.
func (v *tokenVerifier) verify(ctx context.Context, token string, tr *trace) (*verifiedToken, error) {
	return v.verifyPresented(ctx, token, nil, tr)
}

// verifyPresented is the verification of a token presented as p (nil: as
// a Bearer token without TLS), recording each step into tr when tr is not
// nil.
func (v *tokenVerifier) verifyPresented(ctx context.Context, token string, p *presentation, tr *trace) (*verifiedToken, error) {
	t, rej := decodeRejection(jose.DecodeSelected(token, v.claimNames))
	if rej != nil {
		return nil, tr.fail(stepDecode, rej)
	}
	if tr != nil {
		tr.pass(stepDecode, "alg %s, kid %.128q, typ %.64q, iss %.128q", t.Alg, t.Kid, t.Typ, t.Issuer)
	}
	res, err := v.verifyDecoded(ctx, t, p, tr)
	if rej, ok := err.(*Rejection); ok {
		rej.Issuer, rej.Kid = t.Issuer, t.Kid
	}
	return res, err
}

func (v *tokenVerifier) verifyDecoded(ctx context.Context, t *jose.JWS, p *presentation, tr *trace) (*verifiedToken, error) {
	issuer, err := v.selectIssuer(t, tr)
	if err != nil {
		return nil, err
	}
	key, err := selectKey(ctx, t, issuer, tr)
	if err != nil {
		return nil, err
	}
	if !key.Verify(t.Alg, t.SigningInput(), t.Signature()) {
		return nil, tr.fail(stepSignature, reject(ReasonBadSignature, "%s signature does not verify with key %.64q", t.Alg, key.ID))
	}
	if tr != nil {
		tr.pass(stepSignature, "%s signature verifies with key %.128q", t.Alg, key.ID)
	}
	exp, b, err := v.checkClaims(t, issuer, p, tr)
	if err != nil {
		return nil, err
	}
	return &verifiedToken{Token: t, Issuer: &issuer.policy, Key: key, Expiry: exp, binding: b}, nil
}

// selectIssuer picks the issuer by the unverified iss and checks the alg
// against its policy (docs/design.md "Verification order").
func (v *tokenVerifier) selectIssuer(t *jose.JWS, tr *trace) (*issuerState, error) {
	issuer := v.issuers[t.Issuer]
	if issuer == nil {
		return nil, tr.fail(stepIssuer, reject(ReasonWrongIssuer, "issuer %.128q is not configured (configured: %s)", t.Issuer, v.issuerNames))
	}
	if tr != nil {
		tr.pass(stepIssuer, "iss %.128q is configured", t.Issuer)
	}
	if !issuer.algs[t.Alg] {
		return nil, tr.fail(stepAlg, reject(ReasonForbiddenAlg, "alg %s is not allowed for this issuer (allowed: %s)", t.Alg, strings.Join(issuer.policy.Algorithms, " ")))
	}
	if tr != nil {
		tr.pass(stepAlg, "%s is allowed (%s)", t.Alg, strings.Join(issuer.policy.Algorithms, " "))
	}
	return issuer, nil
}

// selectKey finds the token's key in the issuer's configured source only,
// never in the token. A miss costs one unknown-kid refresh; its rejection
// says why no key fits, because "unknown_kid" alone sends the operator to a
// kid list that may well contain the kid.
func selectKey(ctx context.Context, t *jose.JWS, issuer *issuerState, tr *trace) (*keyimport.Key, error) {
	keys := issuer.policy.Keys
	set := keys.keySet()
	if set == nil {
		keys.KeysWanted()
		return nil, tr.fail(stepKey, reject(ReasonKeysUnavailable, "no usable key set for issuer %.128q yet", t.Issuer))
	}
	if key := set.Select(t.Kid, t.Alg); key != nil {
		if tr != nil {
			tr.pass(stepKey, "kid %.128q: %s; the set has kids %s", key.ID, describeKey(key), kidList(set))
		}
		return key, nil
	}
	fresh := keys.RefreshForUnknownKid(ctx)
	if key := fresh.Select(t.Kid, t.Alg); key != nil {
		if tr != nil {
			tr.pass(stepKey, "kid %.128q: %s, found by an unknown-kid refresh; the set has kids %s", key.ID, describeKey(key), kidList(fresh))
		}
		return key, nil
	}
	return nil, tr.fail(stepKey, &Rejection{Reason: ReasonUnknownKid, Detail: explainMiss(fresh, t.Kid, t.Alg, fresh != set)})
}

// explainMiss words why set has no key for a token with this kid and alg,
// from Select's verdict (Select returned nil for this set). It runs on
// rejections only.
func explainMiss(set *keySet, kid, alg string, newSet bool) string {
	refresh := "unknown-kid refresh: no newer set"
	if newSet {
		refresh = "unknown-kid refresh: checked the newer set"
	}
	if set == nil {
		return fmt.Sprintf("the issuer has no key set (%s)", refresh)
	}
	if kid == "" {
		fitting := 0
		for _, k := range set.Keys {
			// Select over a set of this key alone judges whether it fits.
			if (&keySet{Keys: []*keyimport.Key{k}}).Select(k.ID, alg) != nil {
				fitting++
			}
		}
		if fitting == 0 {
			return fmt.Sprintf("the token has no kid and no key in the set can verify %s; the set has kids %s (%s)", alg, kidList(set), refresh)
		}
		return fmt.Sprintf("the token has no kid and %d keys in the set can verify %s: the token must name its key (%s)", fitting, alg, refresh)
	}
	var sameKid []string
	for _, k := range set.Keys {
		if k.ID == kid {
			sameKid = append(sameKid, "an "+describeKey(k))
		}
	}
	if len(sameKid) > 0 {
		return fmt.Sprintf("kid %.128q is in the key set but is %s, which cannot verify %s (%s)", kid, strings.Join(sameKid, " and "), alg, refresh)
	}
	if len(set.Keys) == 1 && set.Keys[0].ID == "" {
		return fmt.Sprintf("no key with kid %.128q in the set; its only key has no kid and is an %s, which cannot verify %s (%s)", kid, describeKey(set.Keys[0]), alg, refresh)
	}
	return fmt.Sprintf("no key with kid %.128q in the set (%s); the set has kids %s", kid, refresh, kidList(set))
}

// describeKey names a key's type and its own alg: "EC P-256 key (alg ES256)".
func describeKey(k *keyimport.Key) string {
	var kind string
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		kind = fmt.Sprintf("RSA %d-bit", pub.N.BitLen())
	case *ecdsa.PublicKey:
		kind = "EC " + pub.Curve.Params().Name
	case ed25519.PublicKey:
		kind = "Ed25519"
	case jose.HMACSecret:
		kind = fmt.Sprintf("HMAC %d-byte", len(pub))
	default:
		kind = fmt.Sprintf("%T", pub)
	}
	if k.Alg == "" {
		return kind + " key (no alg)"
	}
	return kind + " key (alg " + k.Alg + ")"
}

// kidList shows the first kids of a set, each bounded, for a readable detail.
func kidList(set *keySet) string {
	const shown = 8
	kids := set.Kids()
	parts := make([]string, 0, min(len(kids), shown)+1)
	for i, kid := range kids {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(kids)-shown))
			break
		}
		parts = append(parts, fmt.Sprintf("%.64q", kid))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkClaims runs the claim checks after the signature has verified, in
// the order of docs/design.md "Verification order". It returns the token's
// expiry.
func (v *tokenVerifier) checkClaims(t *jose.JWS, issuer *issuerState, p *presentation, tr *trace) (time.Time, binding, error) {
	times, err := checkClaimTypes(t.Claims)
	if err != nil {
		return time.Time{}, binding{}, tr.fail(stepClaimTypes, err)
	}
	if tr != nil {
		tr.pass(stepClaimTypes, "exp, nbf, iat: NumericDates; sub, jti: strings; aud: string or array of strings (RFC 7519 §4.1)")
	}
	now := v.now()
	if err := v.checkTimes(times, now, tr); err != nil {
		return time.Time{}, binding{}, err
	}
	if err := v.checkLifetime(times, now, tr); err != nil {
		return time.Time{}, binding{}, err
	}
	if err := checkAudience(t.Claims["aud"], issuer.policy.Audience, tr); err != nil {
		return time.Time{}, binding{}, err
	}
	if len(issuer.types) > 0 && !slices.Contains(issuer.types, normalizeType(t.Typ)) {
		return time.Time{}, binding{}, tr.fail(stepTyp, reject(ReasonWrongType, "typ %.64q is not one of %q", t.Typ, issuer.policy.TokenTypes))
	}
	if tr != nil {
		if len(issuer.types) == 0 {
			tr.pass(stepTyp, "no token_type configured: any typ is accepted")
		} else {
			tr.pass(stepTyp, "typ %.64q is one of %q", t.Typ, issuer.policy.TokenTypes)
		}
	}
	b, err := parseCnf(t.Claims)
	if err != nil {
		return time.Time{}, binding{}, tr.fail(stepCnf, err)
	}
	if err := v.checkBinding(&issuer.policy, b, p, tr); err != nil {
		return time.Time{}, binding{}, err
	}
	for _, rule := range v.require {
		if err := rule.Check(t.Claims); err != nil {
			return time.Time{}, binding{}, tr.fail(stepRequire, err)
		}
		if tr != nil {
			tr.pass(stepRequire, "claim %s has %q", rule.Claim, rule.Values)
		}
	}
	return times.exp, b, nil
}

// checkTimes: exp is required and must be after now − leeway; nbf and iat,
// when present, must not be after now + leeway.
func (v *tokenVerifier) checkTimes(times tokenTimes, now time.Time, tr *trace) error {
	if !times.hasExp {
		return tr.fail(stepExp, reject(ReasonMalformed, "exp claim is required"))
	}
	if !times.exp.After(now.Add(-v.leeway)) {
		return tr.fail(stepExp, reject(ReasonExpired, "%s", v.clockDetail(stepExp, times.exp, now, false)))
	}
	if tr != nil {
		tr.pass(stepExp, "%s", v.clockDetail(stepExp, times.exp, now, true))
	}
	if err := v.checkNotAfter(stepNbf, times.nbf, times.hasNbf, now, tr); err != nil {
		return err
	}
	return v.checkNotAfter(stepIat, times.iat, times.hasIat, now, tr)
}

// checkNotAfter is the nbf and iat rule: when present, not after now + leeway.
func (v *tokenVerifier) checkNotAfter(name string, at time.Time, present bool, now time.Time, tr *trace) error {
	switch {
	case !present:
		if tr != nil {
			tr.pass(name, "absent")
		}
	case at.After(now.Add(v.leeway)):
		return tr.fail(name, reject(ReasonNotYetValid, "%s", v.clockDetail(name, at, now, false)))
	case tr != nil:
		tr.pass(name, "%s", v.clockDetail(name, at, now, true))
	}
	return nil
}

// clockDetail shows the arithmetic of a time check: "exp … (expired 10m
// ago) is not after now − leeway = …". exp passes when after now − leeway;
// nbf and iat when not after now + leeway.
func (v *tokenVerifier) clockDetail(name string, at, now time.Time, ok bool) string {
	bound, sign := now.Add(v.leeway), "+"
	if name == stepExp {
		bound, sign = now.Add(-v.leeway), "−"
	}
	verb := "is after"
	if (name == stepExp) != ok {
		verb = "is not after"
	}
	return fmt.Sprintf("%s %s (%s) %s now %s leeway = %s (now %s, leeway %s)",
		name, utc(at), relativeTime(name, at, now), verb, sign, utc(bound), utc(now), v.leeway)
}

// checkLifetime: exp − iat (exp − now without iat) must not exceed
// max_lifetime, when one is configured.
func (v *tokenVerifier) checkLifetime(times tokenTimes, now time.Time, tr *trace) error {
	if v.maxLifetime <= 0 {
		if tr != nil {
			tr.pass(stepMaxLifetime, "no max_lifetime configured")
		}
		return nil
	}
	start, from := now, "now"
	if times.hasIat {
		start, from = times.iat, "iat"
	}
	life := times.exp.Sub(start)
	if life > v.maxLifetime {
		return tr.fail(stepMaxLifetime, reject(ReasonTooOld, "lifetime exp − %s = %s exceeds max_lifetime %s", from, life, v.maxLifetime))
	}
	if tr != nil {
		tr.pass(stepMaxLifetime, "lifetime exp − %s = %s ≤ max_lifetime %s", from, life, v.maxLifetime)
	}
	return nil
}

// checkAudience: when an audience is configured, aud (already known to be a
// string or an array of strings) must contain one of its values.
func checkAudience(aud any, want []string, tr *trace) error {
	if len(want) == 0 {
		if tr != nil {
			tr.pass(stepAud, "no audience configured: any aud is accepted")
		}
		return nil
	}
	found, match := false, ""
	switch a := aud.(type) {
	case string:
		found, match = slices.Contains(want, a), a
	case []any:
		for _, e := range a {
			if s, _ := e.(string); slices.Contains(want, s) {
				found, match = true, s
				break
			}
		}
	}
	if !found {
		return tr.fail(stepAud, reject(ReasonWrongAudience, "aud %.128s does not contain any of %q", compactJSON(aud), want))
	}
	if tr != nil {
		tr.pass(stepAud, "aud %.128s contains %q", compactJSON(aud), match)
	}
	return nil
}

// normalizeType folds a JOSE typ for comparison (RFC 7515 §4.1.9: case-
// insensitive, "application/" optional).
func normalizeType(typ string) string {
	typ = strings.ToLower(typ)
	return strings.TrimPrefix(typ, "application/")
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// relativeTime words a claim's time against now: "expires in 4m",
// "expired 1h ago", "issued 2h ago", "valid since 3m", "not valid for 5m".
func relativeTime(claim string, at, now time.Time) string {
	d := at.Sub(now)
	future := d > 0
	span := humanDuration(d.Abs())
	switch {
	case claim == "exp" && future:
		return "expires in " + span
	case claim == "exp":
		return "expired " + span + " ago"
	case claim == "nbf" && future:
		return "not valid for another " + span
	case claim == "nbf":
		return "valid since " + span + " ago"
	case future:
		return "issued " + span + " in the future"
	default:
		return "issued " + span + " ago"
	}
}

// humanDuration rounds d to its two largest units: 45s, 4m, 1h5m, 3d2h.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

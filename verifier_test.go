package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// This file holds the verifier's unit tests (decode, issuer, key, signature
// and claim checks, docs/design.md "Verification order") and the fixtures
// the other verifier-level test files share: real keys generated once per
// test binary, a static keySource and token helpers.

const testIssuer = "https://issuer.example"

// testNow is the verifier's clock in every test here, so time rules are
// checked at exact boundaries rather than "about now".
var testNow = time.Unix(1_750_000_000, 0)

// fixtureKey is jwttest.Fixture: a signing key for alg backed by the test
// binary's shared material. slot 0 and 1 are different keys of the same
// type, so a test can sign with "the other key" under the same kid.
func fixtureKey(t testing.TB, alg, kid string, slot int) *jwttest.Key {
	t.Helper()
	return jwttest.Fixture(t, alg, kid, slot)
}

// isKey reports whether the loaded key k is the fixture key want: same kid
// and same key material.
func isKey(k *keyimport.Key, want *jwttest.Key) bool {
	return k.ID == want.Kid && samePublicKey(k.Public, want.Public())
}

// staticKeySource is a keySource with a fixed set. RefreshForUnknownKid
// returns the same set (or `after`, when set, to model a fetch that found a
// rotated key) and counts its calls so tests can see the unknown-kid path;
// KeysWanted calls are counted too.
type staticKeySource struct {
	set       *keySet
	after     *keySet
	refreshes atomic.Int32
	wanted    atomic.Int32
}

func (s *staticKeySource) keySet() *keySet { return s.set }

func (s *staticKeySource) KeysWanted() { s.wanted.Add(1) }

func (s *staticKeySource) RefreshForUnknownKid(context.Context) *keySet {
	s.refreshes.Add(1)
	if s.after != nil {
		return s.after
	}
	return s.set
}

func (s *staticKeySource) RetryAfter() time.Duration { return time.Second }

// loadTestSet builds a keySet from the public JWKs of keys, failing the test
// if parseKeySet drops any of them: a fixture that silently loses a key would
// turn "accepted with the right key" tests into "unknown_kid" noise.
func loadTestSet(t testing.TB, opts LoadOptions, keys ...*jwttest.Key) *keySet {
	t.Helper()
	set, warnings, err := parseKeySet(jwttest.JWKS(keys...), opts.AllowHMAC)
	if err != nil {
		t.Fatalf("parseKeySet: %v (warnings %q)", err, warnings)
	}
	if len(set.Keys) != len(keys) {
		t.Fatalf("parseKeySet kept %d of %d keys: %q", len(set.Keys), len(keys), warnings)
	}
	return set
}

// allAlgorithms is every algorithm the verifier knows, HMAC included.
var allAlgorithms = append(jose.DefaultAlgorithms(), "HS256", "HS384", "HS512")

// testPolicy is an issuer policy for testIssuer over a static key set.
func testPolicy(set *keySet, algs ...string) (*issuerPolicy, *staticKeySource) {
	if len(algs) == 0 {
		algs = allAlgorithms
	}
	src := &staticKeySource{set: set}
	return &issuerPolicy{Issuer: testIssuer, Algorithms: algs, Keys: src}, src
}

// testVerifier builds a verifier at testNow with the options given.
func testVerifier(opts verifierOptions, policies ...*issuerPolicy) *tokenVerifier {
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	return newTokenVerifier(policies, opts)
}

const testLeeway = 30 * time.Second

// testClaims is a valid claim set at testNow, with overrides applied: a nil
// override deletes the claim.
func testClaims(overrides map[string]any) map[string]any {
	c := map[string]any{
		"iss": testIssuer,
		"sub": "user-123",
		"iat": testNow.Unix(),
		"nbf": testNow.Unix(),
		"exp": testNow.Add(5 * time.Minute).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// rawClaims renders claims as JSON with some members given as raw JSON text
// (exotic numbers like 1e30 or 1749999970.5 that a Go value cannot spell).
func rawClaims(t testing.TB, claims map[string]any, raw map[string]string) []byte {
	t.Helper()
	c := maps.Clone(claims)
	for k, v := range raw {
		c[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	return b
}

// headerJSON is the default header jwttest.Sign would write, as bytes.
func headerJSON(t testing.TB, k *jwttest.Key, extra map[string]any) []byte {
	t.Helper()
	h := map[string]any{"alg": k.Alg, "typ": "JWT"}
	if k.Kid != "" {
		h["kid"] = k.Kid
	}
	for name, v := range extra {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatalf("marshal header: %v", err)
	}
	return b
}

// wantReason runs v on token and checks the outcome: want "" means the token
// must be accepted.
func wantReason(t testing.TB, v *tokenVerifier, token string, want Reason) *verifiedToken {
	t.Helper()
	res, err := v.Verify(context.Background(), token)
	got := ReasonOf(err)
	if err != nil && got == "" {
		t.Fatalf("Verify returned a non-rejection error: %v", err)
	}
	switch {
	case want == "" && err != nil:
		t.Fatalf("Verify rejected a valid token: %v", err)
	case want != "" && err == nil:
		t.Fatalf("Verify accepted a token that must be rejected with %s", want)
	case got != want:
		t.Fatalf("Verify: reason %q (%v), want %q", got, err, want)
	}
	return res
}

// tamper flips one bit in the middle of the token's signature segment while
// keeping it canonical base64url, so the failure is bad_signature rather
// than malformed.
func tamperSignature(t testing.TB, token string) string {
	t.Helper()
	dot := strings.LastIndexByte(token, '.')
	sig, err := strictB64.DecodeString(token[dot+1:])
	if err != nil || len(sig) == 0 {
		t.Fatalf("tamperSignature: %v", err)
	}
	sig[len(sig)/2] ^= 0x01
	return token[:dot+1] + jwttest.B64(sig)
}

// TestVerifyEveryAlgorithm signs with each algorithm family and checks
// accept, tamper and wrong-key rejections, with the key set loaded the way
// the module does (HMAC only with AllowHMAC).
func TestVerifyEveryAlgorithm(t *testing.T) {
	for _, alg := range allAlgorithms {
		t.Run(alg, func(t *testing.T) {
			key := fixtureKey(t, alg, "kid-"+alg, 0)
			other := fixtureKey(t, alg, "kid-"+alg, 1) // same kid, different key
			set := loadTestSet(t, LoadOptions{AllowHMAC: strings.HasPrefix(alg, "HS")}, key)
			policy, _ := testPolicy(set)
			v := testVerifier(verifierOptions{Leeway: testLeeway}, policy)

			t.Run("valid token is accepted with its key", func(t *testing.T) {
				res := wantReason(t, v, jwttest.Sign(t, key, nil, testClaims(nil)), "")
				if res.Key.ID != key.Kid || res.Token.Alg != alg || res.Issuer.Issuer != policy.Issuer || res.Issuer.Keys != policy.Keys {
					t.Fatalf("result: key %q alg %q issuer %v", res.Key.ID, res.Token.Alg, res.Issuer.Issuer)
				}
				if want := testNow.Add(5 * time.Minute); !res.Expiry.Equal(want) {
					t.Fatalf("Expiry %v, want %v", res.Expiry, want)
				}
			})
			t.Run("flipped signature bit is bad_signature", func(t *testing.T) {
				wantReason(t, v, tamperSignature(t, jwttest.Sign(t, key, nil, testClaims(nil))), ReasonBadSignature)
			})
			t.Run("changed claims under the old signature is bad_signature", func(t *testing.T) {
				good := jwttest.Sign(t, key, nil, testClaims(nil))
				forged := jwttest.Sign(t, key, nil, testClaims(map[string]any{"sub": "admin"}))
				parts, forgedParts := strings.Split(good, "."), strings.Split(forged, ".")
				wantReason(t, v, parts[0]+"."+forgedParts[1]+"."+parts[2], ReasonBadSignature)
			})
			t.Run("signed by another key under the same kid is bad_signature", func(t *testing.T) {
				wantReason(t, v, jwttest.Sign(t, other, nil, testClaims(nil)), ReasonBadSignature)
			})
			t.Run("empty signature is bad_signature", func(t *testing.T) {
				tok := jwttest.Sign(t, key, nil, testClaims(nil))
				wantReason(t, v, tok[:strings.LastIndexByte(tok, '.')+1], ReasonBadSignature)
			})
			t.Run("alg not in the issuer's list is forbidden_alg", func(t *testing.T) {
				others := make([]string, 0, len(allAlgorithms))
				for _, a := range allAlgorithms {
					if a != alg {
						others = append(others, a)
					}
				}
				p, src := testPolicy(set, others...)
				wantReason(t, testVerifier(verifierOptions{}, p), jwttest.Sign(t, key, nil, testClaims(nil)), ReasonForbiddenAlg)
				if n := src.refreshes.Load(); n != 0 {
					t.Fatalf("forbidden alg caused %d key refreshes", n)
				}
			})
		})
	}
}

// TestVerifyHMACNeedsAllowHMAC: the same oct JWKS loaded remote-style keeps
// no key, so HS* can only ever work from a jwks_file (README "Keys").
func TestVerifyHMACNeedsAllowHMAC(t *testing.T) {
	key := fixtureKey(t, "HS256", "hs", 0)
	if _, _, err := parseKeySet(jwttest.JWKS(key), false); err == nil {
		t.Fatal("an oct-only JWKS loaded without AllowHMAC must have no usable key")
	}
}

// verifyCase is one row of the rule tables: a token built by the test, the
// verifier configuration and the expected reason ("" = accepted).
type verifyCase struct {
	name    string
	set     *keySet               // nil: the default set of the table
	noKeys  bool                  // the source has no set at all
	after   *keySet               // what an unknown-kid refresh finds
	policy  func(p *issuerPolicy) // adjust the issuer policy
	opts    verifierOptions       // Now is filled in; Leeway too, unless noLeeway
	token   func(t *testing.T) string
	want    Reason
	wantKey *jwttest.Key // for accepted tokens: the key that must have been used
	refresh *int32       // expected RefreshForUnknownKid calls; nil: not checked

	noLeeway bool   // keep opts.Leeway 0 instead of testLeeway
	step     string // for rejections: the trace step that must fail; "": not checked
	detail   string // for rejections: text the rejection's detail must contain
}

// calls is a verifyCase.refresh value.
func calls(n int32) *int32 { return &n }

func runVerifyCases(t *testing.T, defaultSet *keySet, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := defaultSet
			if tc.set != nil {
				set = tc.set
			}
			if tc.noKeys {
				set = nil
			}
			policy, src := testPolicy(set)
			src.after = tc.after
			if tc.policy != nil {
				tc.policy(policy)
			}
			opts := tc.opts
			if opts.Leeway == 0 && !tc.noLeeway {
				opts.Leeway = testLeeway
			}
			v := testVerifier(opts, policy)
			token := tc.token(t)
			res := wantReason(t, v, token, tc.want)
			if tc.wantKey != nil {
				if !isKey(res.Key, tc.wantKey) {
					t.Fatalf("verified with key %q (%T), want %q (%T)", res.Key.ID, res.Key.Public, tc.wantKey.Kid, tc.wantKey.Public())
				}
			}
			if tc.refresh != nil {
				if got := src.refreshes.Load(); got != *tc.refresh {
					t.Fatalf("RefreshForUnknownKid called %d times, want %d", got, *tc.refresh)
				}
			}
			// KeysWanted is the source's cue to load: exactly when no set.
			wanted := int32(0)
			if tc.noKeys {
				wanted = 1
			}
			if got := src.wanted.Load(); got != wanted {
				t.Fatalf("KeysWanted called %d times, want %d", got, wanted)
			}
			checkTrace(t, v, token, tc)
		})
	}
}

// checkTrace runs the same verification again with a trace: the verdict
// must be the same, every step but a failing last one must have passed, and
// the failing step must carry the rejection's own detail.
func checkTrace(t *testing.T, v *tokenVerifier, token string, tc verifyCase) {
	t.Helper()
	tr := new(trace)
	_, err := v.verify(context.Background(), token, tr)
	if got := ReasonOf(err); got != tc.want {
		t.Fatalf("traced verification: reason %q, untraced %q", got, tc.want)
	}
	if len(tr.steps) == 0 {
		t.Fatal("the trace is empty")
	}
	for _, s := range tr.steps[:len(tr.steps)-1] {
		if !s.OK {
			t.Fatalf("step %s failed but verification went on: %+v", s.Name, tr.steps)
		}
	}
	last := tr.steps[len(tr.steps)-1]
	if err == nil {
		if !last.OK {
			t.Fatalf("accepted, but the last step failed: %+v", last)
		}
		return
	}
	rej := err.(*Rejection)
	if last.OK || last.Detail != rej.Detail {
		t.Fatalf("last step %+v, want a failure with the rejection's detail %q", last, rej.Detail)
	}
	if tc.step != "" && last.Name != tc.step {
		t.Fatalf("failing step %q, want %q (%s)", last.Name, tc.step, last.Detail)
	}
	if !strings.Contains(rej.Detail, tc.detail) {
		t.Fatalf("detail %q lacks %q", rej.Detail, tc.detail)
	}
}

// TestVerifyDecodeRules covers the strict decoding through the verifier.
func TestVerifyDecodeRules(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	set := loadTestSet(t, LoadOptions{}, key)
	sign := func(hdr map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return jwttest.Sign(t, key, hdr, testClaims(nil)) }
	}
	raw := func(header, payload string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return jwttest.SignRaw(t, key, "ES256", []byte(header), []byte(payload))
		}
	}
	validPayload := string(rawClaims(t, testClaims(nil), nil))
	cases := []verifyCase{
		{name: "baseline is accepted", token: sign(nil), wantKey: key},
		{name: "two segments is malformed", token: func(t *testing.T) string {
			tok := sign(nil)(t)
			return tok[:strings.LastIndexByte(tok, '.')]
		}, want: ReasonMalformed},
		{name: "header that is not JSON is malformed", token: raw(`not json`, validPayload), want: ReasonMalformed},
		{name: "header that is a JSON array is malformed", token: raw(`["alg","ES256"]`, validPayload), want: ReasonMalformed},
		{name: "claims that are not an object are malformed", token: raw(`{"alg":"ES256","kid":"k1"}`, `"just a string"`), want: ReasonMalformed},
		{name: "kid that is a number is malformed", token: sign(map[string]any{"kid": 7}), want: ReasonMalformed, step: "decode"},
		{name: "kid of 256 bytes is allowed", token: sign(map[string]any{"kid": strings.Repeat("k", 256)}),
			set: loadTestSet(t, LoadOptions{}, fixtureKey(t, "ES256", strings.Repeat("k", 256), 0))},
		{name: "kid of 257 bytes is malformed", token: sign(map[string]any{"kid": strings.Repeat("k", 257)}), want: ReasonMalformed},
		{name: "typ that is not a string is malformed", token: sign(map[string]any{"typ": true}), want: ReasonMalformed},
		{name: "iss that is a number is malformed", token: func(t *testing.T) string {
			return jwttest.Sign(t, key, nil, testClaims(map[string]any{"iss": 42}))
		}, want: ReasonMalformed},
		{name: "alg absent is forbidden_alg", token: sign(map[string]any{"alg": nil}), want: ReasonForbiddenAlg},
		{name: "alg none is forbidden_alg", token: sign(map[string]any{"alg": "none"}), want: ReasonForbiddenAlg, step: "decode"},
		{name: "alg unknown is forbidden_alg", token: sign(map[string]any{"alg": "RS1"}), want: ReasonForbiddenAlg},
		{name: "alg in the wrong case is forbidden_alg", token: sign(map[string]any{"alg": "es256"}), want: ReasonForbiddenAlg},
		{name: "crit is malformed", token: sign(map[string]any{"crit": []string{"exp"}, "exp": 1}), want: ReasonMalformed},
		{name: "b64 is malformed", token: sign(map[string]any{"b64": true}), want: ReasonMalformed},
		{name: "zip is malformed", token: sign(map[string]any{"zip": "DEF"}), want: ReasonMalformed},
		{name: "enc is malformed", token: sign(map[string]any{"enc": "A128GCM"}), want: ReasonMalformed},
		{name: "cty JWT is malformed", token: sign(map[string]any{"cty": "JWT"}), want: ReasonMalformed},
		{name: "cty jwt in lower case is malformed", token: sign(map[string]any{"cty": "jwt"}), want: ReasonMalformed},
		{name: "cty application/jwt is malformed", token: sign(map[string]any{"cty": "application/JWT"}), want: ReasonMalformed},
		{name: "cty that is not JWT is accepted", token: sign(map[string]any{"cty": "json"}), wantKey: key},
	}
	runVerifyCases(t, set, cases)
}

// TestVerifyKeySelection covers issuer, alg policy and key selection.
func TestVerifyKeySelection(t *testing.T) {
	es := fixtureKey(t, "ES256", "k-es", 0)
	rs := fixtureKey(t, "RS256", "k-rs", 0)
	set := loadTestSet(t, LoadOptions{}, es, rs)
	signWith := func(k *jwttest.Key, hdr map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return jwttest.Sign(t, k, hdr, testClaims(nil)) }
	}
	noKid := map[string]any{"kid": nil}

	kidless := fixtureKey(t, "ES256", "", 0)
	kidlessSet := loadTestSet(t, LoadOptions{}, kidless)
	es2 := fixtureKey(t, "ES256", "k-es-2", 1)
	twoES := loadTestSet(t, LoadOptions{}, es, es2)
	kidlessPlusOther := loadTestSet(t, LoadOptions{}, kidless, rs)

	// The same kid on an EC and an RSA key: a token must get the key whose
	// type fits its alg, in either order.
	sameKidEC := fixtureKey(t, "ES256", "shared", 0)
	sameKidRSA := fixtureKey(t, "RS256", "shared", 0)
	sameKidECFirst := loadTestSet(t, LoadOptions{}, sameKidEC, sameKidRSA)
	sameKidRSAFirst := loadTestSet(t, LoadOptions{}, sameKidRSA, sameKidEC)

	// Keys without "alg" in their JWK fit any alg of their type.
	rsNoAlg := fixtureKey(t, "RS256", "k-rs-any", 0)
	rsNoAlg.OmitAlg = true
	noAlgSet := loadTestSet(t, LoadOptions{}, rsNoAlg)
	edNoAlg := fixtureKey(t, "EdDSA", "k-ed", 0)
	edNoAlg.OmitAlg = true
	edNoAlgSet := loadTestSet(t, LoadOptions{}, edNoAlg)
	ed := fixtureKey(t, "EdDSA", "k-ed", 0)
	edSet := loadTestSet(t, LoadOptions{}, ed)

	rotated := fixtureKey(t, "ES256", "k-new", 1)
	afterRotation := loadTestSet(t, LoadOptions{}, es, rs, rotated)

	cases := []verifyCase{
		{name: "kid match picks that key (EC)", token: signWith(es, nil), wantKey: es},
		{name: "kid match picks that key (RSA)", token: signWith(rs, nil), wantKey: rs},
		{name: "no key set at all is keys_unavailable", noKeys: true, token: signWith(es, nil), want: ReasonKeysUnavailable, refresh: calls(0),
			step: "key", detail: `no usable key set for issuer "https://issuer.example"`},
		{name: "unknown iss is wrong_issuer", token: func(t *testing.T) string {
			return jwttest.Sign(t, es, nil, testClaims(map[string]any{"iss": "https://other.example"}))
		}, want: ReasonWrongIssuer, step: "issuer", detail: `issuer "https://other.example" is not configured (configured: "https://issuer.example")`},
		{name: "absent iss is wrong_issuer", token: func(t *testing.T) string {
			return jwttest.Sign(t, es, nil, testClaims(map[string]any{"iss": nil}))
		}, want: ReasonWrongIssuer},
		{name: "alg outside the issuer's algorithms is forbidden_alg", token: signWith(rs, nil),
			policy: func(p *issuerPolicy) { p.Algorithms = []string{"ES256"} }, want: ReasonForbiddenAlg, refresh: calls(0),
			step: "alg", detail: "alg RS256 is not allowed for this issuer (allowed: ES256)"},
		{name: "unknown kid is unknown_kid after one refresh", token: signWith(fixtureKey(t, "ES256", "k-missing", 0), nil),
			want: ReasonUnknownKid, refresh: calls(1), step: "key",
			detail: `no key with kid "k-missing" in the set (unknown-kid refresh: no newer set); the set has kids ["k-es" "k-rs"]`},
		{name: "unknown kid still missing from a refreshed set", after: afterRotation, token: signWith(fixtureKey(t, "ES256", "k-gone", 0), nil),
			want: ReasonUnknownKid, refresh: calls(1), step: "key",
			detail: `no key with kid "k-gone" in the set (unknown-kid refresh: checked the newer set); the set has kids ["k-es" "k-rs" "k-new"]`},
		{name: "unknown kid found by the refresh is accepted", after: afterRotation, token: signWith(rotated, nil),
			wantKey: rotated, refresh: calls(1)},
		{name: "known kid never triggers a refresh", token: signWith(es, nil), wantKey: es, refresh: calls(0)},
		{name: "the set's only key without kid serves any token kid", set: kidlessSet,
			token: signWith(fixtureKey(t, "ES256", "whatever", 0), nil), wantKey: kidless},
		{name: "a kid-less key among others does not serve an unknown kid", set: kidlessPlusOther,
			token: signWith(fixtureKey(t, "ES256", "whatever", 0), nil), want: ReasonUnknownKid, refresh: calls(1),
			detail: `no key with kid "whatever" in the set (unknown-kid refresh: no newer set); the set has kids ["" "k-rs"]`},
		{name: "the set's only key without kid but of another type is unknown_kid", set: kidlessSet,
			token: signWith(fixtureKey(t, "RS256", "whatever", 0), nil), want: ReasonUnknownKid, refresh: calls(1),
			detail: `no key with kid "whatever" in the set; its only key has no kid and is an EC P-256 key (alg ES256), which cannot verify RS256`},
		{name: "token without kid and no key of its type is unknown_kid", set: kidlessSet, token: signWith(rs, noKid),
			want: ReasonUnknownKid, detail: "the token has no kid and no key in the set can verify RS256"},
		{name: "token without kid uses the one key fitting its alg", token: signWith(es, noKid), wantKey: es},
		{name: "token without kid uses the one RSA key", token: signWith(rs, noKid), wantKey: rs},
		{name: "token without kid and two fitting keys is unknown_kid", set: twoES, token: signWith(es, noKid),
			want: ReasonUnknownKid, refresh: calls(1), detail: "the token has no kid and 2 keys in the set can verify ES256: the token must name its key"},
		{name: "token without kid and a kid-less set", set: kidlessSet, token: signWith(kidless, nil), wantKey: kidless},
		{name: "key alg must equal the header alg (RS384 under an RS256 key)",
			token: signWith(rs, map[string]any{"alg": "RS384"}), want: ReasonUnknownKid, refresh: calls(1),
			detail: `kid "k-rs" is in the key set but is an RSA 2048-bit key (alg RS256), which cannot verify RS384`},
		{name: "key alg must equal the header alg (PS256 under an RS256 key)",
			token: signWith(rs, map[string]any{"alg": "PS256"}), want: ReasonUnknownKid, refresh: calls(1),
			detail: `kid "k-rs" is in the key set but is an RSA 2048-bit key (alg RS256), which cannot verify PS256`},
		{name: "key without alg serves RS384", set: noAlgSet, token: signWith(rsNoAlg, map[string]any{"alg": "RS384"}), wantKey: rsNoAlg},
		{name: "key without alg serves PS512", set: noAlgSet, token: signWith(rsNoAlg, map[string]any{"alg": "PS512"}), wantKey: rsNoAlg},
		{name: "EdDSA key without alg serves Ed25519", set: edNoAlgSet, token: signWith(edNoAlg, map[string]any{"alg": "Ed25519"}), wantKey: edNoAlg},
		{name: "EdDSA key does not serve Ed25519", set: edSet, token: signWith(ed, map[string]any{"alg": "Ed25519"}),
			want: ReasonUnknownKid, detail: `kid "k-ed" is in the key set but is an Ed25519 key (alg EdDSA), which cannot verify Ed25519`},
		{name: "EC key does not serve an RSA alg under its kid", token: func(t *testing.T) string {
			return jwttest.Sign(t, rs, map[string]any{"kid": "k-es"}, testClaims(nil))
		}, want: ReasonUnknownKid, step: "key",
			detail: `kid "k-es" is in the key set but is an EC P-256 key (alg ES256), which cannot verify RS256 (unknown-kid refresh: no newer set)`},
		{name: "same kid on two keys, neither fitting, names both", set: sameKidECFirst, token: func(t *testing.T) string {
			return jwttest.Sign(t, es, map[string]any{"alg": "ES384", "kid": "shared"}, testClaims(nil))
		}, want: ReasonUnknownKid,
			detail: `kid "shared" is in the key set but is an EC P-256 key (alg ES256) and an RSA 2048-bit key (alg RS256), which cannot verify ES384`},
		{name: "same kid, EC first: ES256 token gets the EC key", set: sameKidECFirst, token: signWith(sameKidEC, nil), wantKey: sameKidEC},
		{name: "same kid, EC first: RS256 token gets the RSA key", set: sameKidECFirst, token: signWith(sameKidRSA, nil), wantKey: sameKidRSA},
		{name: "same kid, RSA first: ES256 token gets the EC key", set: sameKidRSAFirst, token: signWith(sameKidEC, nil), wantKey: sameKidEC},
		{name: "same kid, RSA first: RS256 token gets the RSA key", set: sameKidRSAFirst, token: signWith(sameKidRSA, nil), wantKey: sameKidRSA},
		{name: "ES384 token never gets a P-256 key", token: func(t *testing.T) string {
			// Signed with the P-256 key but labelled ES384: the curve
			// binding must refuse the key, not try the math.
			return jwttest.Sign(t, es, map[string]any{"alg": "ES384"}, testClaims(nil))
		}, want: ReasonUnknownKid, detail: `kid "k-es" is in the key set but is an EC P-256 key (alg ES256), which cannot verify ES384`},
	}
	runVerifyCases(t, set, cases)
}

// TestVerifyClaimRules covers the claim checks at their boundaries.
func TestVerifyClaimRules(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	set := loadTestSet(t, LoadOptions{}, key)
	now := testNow.Unix()
	claims := func(over map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return jwttest.Sign(t, key, nil, testClaims(over)) }
	}
	rawNums := func(over map[string]any, raw map[string]string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return jwttest.SignRaw(t, key, "ES256", headerJSON(t, key, nil), rawClaims(t, testClaims(over), raw))
		}
	}
	withHeader := func(hdr map[string]any, over map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return jwttest.Sign(t, key, hdr, testClaims(over)) }
	}
	aud := func(p *issuerPolicy) { p.Audience = []string{"api", "api2"} }
	typ := func(types ...string) func(p *issuerPolicy) {
		return func(p *issuerPolicy) { p.TokenTypes = types }
	}
	life := verifierOptions{MaxLifetime: time.Hour}
	leeway := int64(testLeeway / time.Second)

	cases := []verifyCase{
		// exp: required, a NumericDate in range, and exp <= now-leeway is expired.
		{name: "exp absent is malformed", token: claims(map[string]any{"exp": nil}), want: ReasonMalformed, step: "exp", detail: "exp claim is required"},
		{name: "exp as a string is malformed", token: claims(map[string]any{"exp": fmt.Sprint(now + 60)}), want: ReasonMalformed, step: "claim_types"},
		{name: "exp exactly now-leeway is expired", token: claims(map[string]any{"exp": now - leeway}), want: ReasonExpired,
			step: "exp", detail: "exp 2025-06-15T15:06:10Z (expired 30s ago) is not after now − leeway = 2025-06-15T15:06:10Z (now 2025-06-15T15:06:40Z, leeway 30s)"},
		{name: "exp one second after now-leeway is accepted", token: claims(map[string]any{"exp": now - leeway + 1})},
		{name: "exp half a second after now-leeway is accepted", token: rawNums(nil, map[string]string{"exp": fmt.Sprintf("%d.5", now-leeway)})},
		{name: "exp half a second before now-leeway is expired", token: rawNums(nil, map[string]string{"exp": fmt.Sprintf("%d.5", now-leeway-1)}), want: ReasonExpired},
		{name: "exp in exponent form is a number", token: rawNums(nil, map[string]string{"exp": "1.7500003E9"})},
		{name: "exp 0 is expired", token: claims(map[string]any{"exp": 0}), want: ReasonExpired},
		{name: "exp negative is malformed", token: claims(map[string]any{"exp": -1}), want: ReasonMalformed},
		{name: "exp 253402300799 is accepted", token: claims(map[string]any{"exp": 253402300799})},
		{name: "exp 253402300800 is malformed", token: claims(map[string]any{"exp": 253402300800}), want: ReasonMalformed},
		{name: "exp 1e30 is malformed", token: rawNums(nil, map[string]string{"exp": "1e30"}), want: ReasonMalformed},
		{name: "exp null is malformed", token: rawNums(nil, map[string]string{"exp": "null"}), want: ReasonMalformed},

		// Registered claim types (RFC 7519 §4.1), checked whether or not the
		// claim is used: sub and jti strings, aud a string or an array of
		// strings. A signed sub ["admin"] must not become the user "admin".
		{name: "sub as an array is malformed", token: claims(map[string]any{"sub": []string{"admin"}}), want: ReasonMalformed, step: "claim_types", detail: "sub is not a string"},
		{name: "sub as a number is malformed", token: claims(map[string]any{"sub": 42}), want: ReasonMalformed, step: "claim_types"},
		{name: "sub null is malformed", token: rawNums(nil, map[string]string{"sub": "null"}), want: ReasonMalformed, step: "claim_types"},
		{name: "sub as an object is malformed", token: claims(map[string]any{"sub": map[string]any{"id": "admin"}}), want: ReasonMalformed, step: "claim_types"},
		{name: "sub true is malformed", token: claims(map[string]any{"sub": true}), want: ReasonMalformed, step: "claim_types"},
		{name: "sub empty string is a string", token: claims(map[string]any{"sub": ""})},
		{name: "sub absent is accepted", token: claims(map[string]any{"sub": nil})},
		{name: "jti as a number is malformed", token: claims(map[string]any{"jti": 7}), want: ReasonMalformed, step: "claim_types", detail: "jti is not a string"},
		{name: "jti null is malformed", token: rawNums(nil, map[string]string{"jti": "null"}), want: ReasonMalformed, step: "claim_types"},
		{name: "jti as a string is accepted", token: claims(map[string]any{"jti": "a1b2"})},
		{name: "aud array with a number is malformed without an audience configured", token: claims(map[string]any{"aud": []any{"x", 1}}),
			want: ReasonMalformed, step: "claim_types", detail: "aud array holds a non-string"},
		{name: "aud a number is malformed without an audience configured", token: claims(map[string]any{"aud": 5}), want: ReasonMalformed, step: "claim_types"},
		{name: "aud null is malformed", token: rawNums(nil, map[string]string{"aud": "null"}), want: ReasonMalformed, step: "claim_types"},
		{name: "aud null is malformed with an audience configured", policy: aud, token: rawNums(nil, map[string]string{"aud": "null"}), want: ReasonMalformed},
		{name: "aud an object is malformed", token: claims(map[string]any{"aud": map[string]any{"x": "api"}}), want: ReasonMalformed, step: "claim_types"},
		{name: "aud array of strings without an audience configured is accepted", token: claims(map[string]any{"aud": []string{"x", "y"}})},
		{name: "aud empty array without an audience configured is accepted", token: claims(map[string]any{"aud": []string{}})},
		{name: "wrong sub type beats expired", token: claims(map[string]any{"sub": 1, "exp": now - 3600}), want: ReasonMalformed},

		// nbf and iat: > now+leeway is not yet valid.
		{name: "nbf exactly now+leeway is accepted", token: claims(map[string]any{"nbf": now + leeway})},
		{name: "nbf one second after now+leeway is not_yet_valid", token: claims(map[string]any{"nbf": now + leeway + 1}), want: ReasonNotYetValid,
			step: "nbf", detail: "(not valid for another 31s) is after now + leeway = 2025-06-15T15:07:10Z"},
		{name: "nbf absent is accepted", token: claims(map[string]any{"nbf": nil})},
		{name: "nbf as a string is malformed", token: claims(map[string]any{"nbf": "soon"}), want: ReasonMalformed},
		{name: "iat exactly now+leeway is accepted", token: claims(map[string]any{"iat": now + leeway})},
		{name: "iat one second after now+leeway is not_yet_valid", token: claims(map[string]any{"iat": now + leeway + 1}), want: ReasonNotYetValid,
			step: "iat", detail: "(issued 31s in the future) is after now + leeway"},
		{name: "iat absent is accepted", token: claims(map[string]any{"iat": nil})},
		{name: "iat negative is malformed", token: claims(map[string]any{"iat": -5}), want: ReasonMalformed},
		{name: "zero leeway: nbf one second ahead is not_yet_valid", noLeeway: true,
			token: claims(map[string]any{"nbf": now + 1}), want: ReasonNotYetValid, step: "nbf"},
		{name: "zero leeway: nbf now is accepted", noLeeway: true, token: claims(map[string]any{"nbf": now})},
		{name: "zero leeway: exp now is expired", noLeeway: true, token: claims(map[string]any{"exp": now}), want: ReasonExpired, step: "exp"},
		{name: "zero leeway: exp one second ahead is accepted", noLeeway: true, token: claims(map[string]any{"exp": now + 1})},

		// max_lifetime: exp-iat, or exp-now without iat.
		{name: "lifetime exactly max_lifetime is accepted", opts: life,
			token: claims(map[string]any{"iat": now, "exp": now + 3600})},
		{name: "lifetime one second over max_lifetime is too_old", opts: life,
			token: claims(map[string]any{"iat": now, "exp": now + 3601}), want: ReasonTooOld, step: "max_lifetime", detail: "lifetime exp − iat = 1h0m1s exceeds max_lifetime 1h0m0s"},
		{name: "old iat with long lifetime is too_old", opts: life,
			token: claims(map[string]any{"iat": now - 7200, "exp": now + 60}), want: ReasonTooOld},
		{name: "without iat, exp-now over max_lifetime is too_old", opts: life,
			token: claims(map[string]any{"iat": nil, "exp": now + 3601}), want: ReasonTooOld, detail: "lifetime exp − now = 1h0m1s"},
		{name: "without iat, exp-now within max_lifetime is accepted", opts: life,
			token: claims(map[string]any{"iat": nil, "exp": now + 3599})},
		{name: "no max_lifetime allows a year", token: claims(map[string]any{"exp": now + 365*24*3600})},

		// aud: string or array, must contain one configured value.
		{name: "aud string matching is accepted", policy: aud, token: claims(map[string]any{"aud": "api2"})},
		{name: "aud array containing one is accepted", policy: aud, token: claims(map[string]any{"aud": []string{"x", "api"}})},
		{name: "aud string not matching is wrong_audience", policy: aud, token: claims(map[string]any{"aud": "API"}), want: ReasonWrongAudience},
		{name: "aud array not matching is wrong_audience", policy: aud, token: claims(map[string]any{"aud": []string{"x", "y"}}), want: ReasonWrongAudience,
			step: "aud", detail: `aud ["x","y"] does not contain any of ["api" "api2"]`},
		{name: "aud empty array is wrong_audience", policy: aud, token: claims(map[string]any{"aud": []string{}}), want: ReasonWrongAudience},
		{name: "aud missing when configured is wrong_audience", policy: aud, token: claims(nil), want: ReasonWrongAudience},
		{name: "aud a number is malformed", policy: aud, token: claims(map[string]any{"aud": 5}), want: ReasonMalformed},
		{name: "aud array with a number is malformed", policy: aud, token: claims(map[string]any{"aud": []any{"api", 5}}), want: ReasonMalformed},
		{name: "aud anything when not configured is accepted", token: claims(map[string]any{"aud": "whatever"})},

		// typ: case-insensitive, application/ optional, only when configured.
		{name: "typ at+jwt accepted", policy: typ("at+jwt"), token: withHeader(map[string]any{"typ": "at+jwt"}, nil)},
		{name: "typ application/at+jwt accepted for at+jwt", policy: typ("at+jwt"), token: withHeader(map[string]any{"typ": "application/at+jwt"}, nil)},
		{name: "typ AT+JWT accepted for at+jwt", policy: typ("at+jwt"), token: withHeader(map[string]any{"typ": "AT+JWT"}, nil)},
		{name: "typ Application/At+Jwt accepted for application/at+jwt", policy: typ("application/at+jwt"), token: withHeader(map[string]any{"typ": "Application/At+Jwt"}, nil)},
		{name: "typ JWT rejected for at+jwt", policy: typ("at+jwt"), token: withHeader(map[string]any{"typ": "JWT"}, nil), want: ReasonWrongType, step: "typ"},
		{name: "typ absent rejected for at+jwt", policy: typ("at+jwt"), token: withHeader(map[string]any{"typ": nil}, nil), want: ReasonWrongType},
		{name: "typ xat+jwt rejected for at+jwt", policy: typ("at+jwt"), token: withHeader(map[string]any{"typ": "xat+jwt"}, nil), want: ReasonWrongType},
		{name: "typ one of several accepted", policy: typ("JWT", "at+jwt"), token: withHeader(map[string]any{"typ": "jwt"}, nil)},
		{name: "typ anything when not configured", token: withHeader(map[string]any{"typ": "secevent+jwt"}, nil)},

		// cnf: bound tokens are refused until binding is supported.
		{name: "cnf jkt is bound_token", token: claims(map[string]any{"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}), want: ReasonBoundToken, step: "cnf"},
		{name: "cnf x5t#S256 is bound_token", token: claims(map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}), want: ReasonBoundToken},
		{name: "cnf null is still bound_token", token: rawNums(nil, map[string]string{"cnf": "null"}), want: ReasonBoundToken},

		// Order: the first failing rule decides.
		{name: "expired and wrong audience is expired", policy: aud, token: claims(map[string]any{"exp": now - 3600, "aud": "x"}), want: ReasonExpired},
		{name: "wrong audience and wrong type is wrong_audience", policy: func(p *issuerPolicy) { aud(p); typ("at+jwt")(p) },
			token: claims(map[string]any{"aud": "x"}), want: ReasonWrongAudience},
		{name: "wrong type and cnf is wrong_type", policy: typ("at+jwt"), token: claims(map[string]any{"cnf": map[string]any{}}), want: ReasonWrongType},
		{name: "cnf and failing require is bound_token", opts: verifierOptions{Require: []ClaimRule{{Claim: "role", Values: []string{"x"}}}},
			token: claims(map[string]any{"cnf": map[string]any{}}), want: ReasonBoundToken},
		{name: "bad signature beats expired", token: func(t *testing.T) string {
			return tamperSignature(t, jwttest.Sign(t, key, nil, testClaims(map[string]any{"exp": now - 3600})))
		}, want: ReasonBadSignature},
	}
	runVerifyCases(t, set, cases)
}

// TestVerifyRequireRules covers `require`: scope/scp split on spaces,
// arrays element by element, dotted paths, scalars by rendered form.
func TestVerifyRequireRules(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	set := loadTestSet(t, LoadOptions{}, key)
	extra := map[string]any{
		"scope":             "read write  admin:all",
		"scp":               []string{"files.read", "mail.send"},
		"roles":             []string{"viewer", "editor"},
		"realm_access":      map[string]any{"roles": []string{"offline_access", "uma_authorization"}},
		"realm_access.x":    "literal dotted name",
		"name":              "Ada Lovelace",
		"level":             3,
		"email_verified":    true,
		"disabled":          false,
		"org":               map[string]any{"id": 12, "tier": map[string]any{"name": "gold"}},
		"mixed":             []any{"a", 1, true},
		"permissions_count": json.RawMessage("1e3"),
	}
	token := func(t *testing.T) string { return jwttest.Sign(t, key, nil, testClaims(extra)) }
	rules := func(r ...ClaimRule) verifierOptions { return verifierOptions{Require: r} }
	rule := func(claim string, values ...string) ClaimRule { return ClaimRule{Claim: claim, Values: values} }

	cases := []verifyCase{
		{name: "scope values split on spaces", opts: rules(rule("scope", "read", "admin:all"))},
		{name: "scope missing one value is claim_mismatch", opts: rules(rule("scope", "read", "delete")), want: ReasonClaimMismatch,
			step: "require", detail: `claim scope lacks "delete"`},
		{name: "scope matches whole words only", opts: rules(rule("scope", "rea")), want: ReasonClaimMismatch},
		{name: "scope string with a space is not one value", opts: rules(rule("scope", "read write")), want: ReasonClaimMismatch},
		{name: "scp array matched element by element", opts: rules(rule("scp", "mail.send"))},
		{name: "array claim needs every value", opts: rules(rule("roles", "viewer", "editor"))},
		{name: "array claim missing a value is claim_mismatch", opts: rules(rule("roles", "viewer", "owner")), want: ReasonClaimMismatch},
		{name: "dotted path into nested object", opts: rules(rule("realm_access.roles", "offline_access"))},
		{name: "dotted path two levels deep", opts: rules(rule("org.tier.name", "gold"))},
		{name: "dotted path never reads a literal dotted name", opts: rules(rule("realm_access.x", "literal dotted name")), want: ReasonClaimMismatch},
		{name: "dotted path through a non-object is claim_mismatch", opts: rules(rule("name.first", "Ada")), want: ReasonClaimMismatch},
		{name: "non-scope string compared whole", opts: rules(rule("name", "Ada Lovelace"))},
		{name: "non-scope string is not split", opts: rules(rule("name", "Ada")), want: ReasonClaimMismatch},
		{name: "number by rendered form", opts: rules(rule("level", "3"))},
		{name: "number in another spelling does not match", opts: rules(rule("level", "3.0")), want: ReasonClaimMismatch},
		{name: "exponent number by plain rendering", opts: rules(rule("permissions_count", "1000"))},
		{name: "nested number by rendered form", opts: rules(rule("org.id", "12"))},
		{name: "true by rendered form", opts: rules(rule("email_verified", "true"))},
		{name: "false by rendered form", opts: rules(rule("disabled", "false"))},
		{name: "bool true does not match false", opts: rules(rule("email_verified", "false")), want: ReasonClaimMismatch},
		{name: "mixed array elements rendered one by one", opts: rules(rule("mixed", "a", "1", "true"))},
		{name: "absent claim is claim_mismatch", opts: rules(rule("groups", "admins")), want: ReasonClaimMismatch},
		{name: "every rule must pass", opts: rules(rule("scope", "read"), rule("roles", "owner")), want: ReasonClaimMismatch},
		{name: "all rules passing", opts: rules(rule("scope", "write"), rule("roles", "editor"), rule("level", "3"))},
		{name: "a rule on an object claim compares compact JSON", opts: rules(rule("org.tier", `{"name":"gold"}`))},
	}
	for i := range cases {
		cases[i].token = token
	}
	runVerifyCases(t, set, cases)
}

// TestVerifierIssuers checks that several issuers keep their own keys and
// policies: a token from issuer A is never checked with B's keys.
func TestVerifierIssuers(t *testing.T) {
	keyA := fixtureKey(t, "ES256", "shared-kid", 0)
	keyB := fixtureKey(t, "ES256", "shared-kid", 1)
	srcA := &staticKeySource{set: loadTestSet(t, LoadOptions{}, keyA)}
	srcB := &staticKeySource{set: loadTestSet(t, LoadOptions{}, keyB)}
	v := testVerifier(verifierOptions{},
		&issuerPolicy{Issuer: "https://a.example", Algorithms: []string{"ES256"}, Keys: srcA},
		&issuerPolicy{Issuer: "https://b.example", Algorithms: []string{"ES256"}, Audience: []string{"b-api"}, Keys: srcB},
	)
	tokA := jwttest.Sign(t, keyA, nil, testClaims(map[string]any{"iss": "https://a.example"}))
	tokB := jwttest.Sign(t, keyB, nil, testClaims(map[string]any{"iss": "https://b.example", "aud": "b-api"}))
	if res := wantReason(t, v, tokA, ""); res.Issuer.Issuer != "https://a.example" {
		t.Fatalf("issuer %q", res.Issuer.Issuer)
	}
	wantReason(t, v, tokB, "")
	// A's key signing a token that claims to be from B: B's key set decides.
	wantReason(t, v, jwttest.Sign(t, keyA, nil, testClaims(map[string]any{"iss": "https://b.example", "aud": "b-api"})), ReasonBadSignature)
	// B's audience rule does not leak into A.
	wantReason(t, v, jwttest.Sign(t, keyA, nil, testClaims(map[string]any{"iss": "https://a.example", "aud": "zzz"})), "")
}

// TestNewVerifierOwnsItsPolicies: the verifier copies what it is given and
// writes nothing back, so a caller changing its policy or rules afterwards
// changes nothing, and the policy is never mutated by the verifier.
func TestNewVerifierOwnsItsPolicies(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	policy, _ := testPolicy(loadTestSet(t, LoadOptions{}, key), "ES256")
	policy.Audience = []string{"api"}
	policy.TokenTypes = []string{"Application/AT+JWT"}
	rules := []ClaimRule{{Claim: "scope", Values: []string{"read"}}}
	before := *policy
	before.Algorithms = slices.Clone(policy.Algorithms)
	before.Audience = slices.Clone(policy.Audience)
	before.TokenTypes = slices.Clone(policy.TokenTypes)
	v := testVerifier(verifierOptions{Leeway: testLeeway, Require: rules}, policy)
	if !reflect.DeepEqual(*policy, before) {
		t.Fatalf("newTokenVerifier changed its input policy: %+v, was %+v", *policy, before)
	}
	good := jwttest.Sign(t, key, map[string]any{"typ": "at+jwt"}, testClaims(map[string]any{"aud": "api", "scope": "read"}))
	wantReason(t, v, good, "")

	policy.Algorithms[0] = "RS256"
	policy.Audience[0] = "other"
	policy.TokenTypes[0] = "JWT"
	rules[0].Values[0] = "write"
	wantReason(t, v, good, "")
}

// TestVerifyRejectionsCarryReasons: every rejection is a *Rejection whose
// message starts with its code and never contains the token.
func TestVerifyRejectionsCarryReasons(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	policy, _ := testPolicy(loadTestSet(t, LoadOptions{}, key))
	v := testVerifier(verifierOptions{}, policy)
	tok := tamperSignature(t, jwttest.Sign(t, key, nil, testClaims(nil)))
	_, err := v.Verify(context.Background(), tok)
	if ReasonOf(err) != ReasonBadSignature {
		t.Fatalf("reason %q", ReasonOf(err))
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), tok[:20]) {
		t.Fatalf("error echoes the token: %v", err)
	}
	if !strings.HasPrefix(err.Error(), string(ReasonBadSignature)) {
		t.Fatalf("error %q does not start with its code", err)
	}
	if ReasonOf(nil) != "" || ReasonOf(fmt.Errorf("plain")) != "" {
		t.Fatal("ReasonOf of a non-rejection must be empty")
	}
	if ReasonOf(fmt.Errorf("wrapped: %w", ReasonExpired)) != ReasonExpired {
		t.Fatal("ReasonOf must see a wrapped Reason")
	}
}

// TestVerifyTraceNamesEveryStep: an accepted token's trace lists every check
// the verifier ran, in order, one require step per rule.
func TestVerifyTraceNamesEveryStep(t *testing.T) {
	key := fixtureKey(t, "ES256", "k-new", 0)
	policy, src := testPolicy(loadTestSet(t, LoadOptions{}, fixtureKey(t, "ES256", "k-old", 1)), "ES256")
	src.after = loadTestSet(t, LoadOptions{}, key)
	policy.Audience = []string{"api"}
	policy.TokenTypes = []string{"at+jwt"}
	v := testVerifier(verifierOptions{Leeway: testLeeway, MaxLifetime: time.Hour, Require: []ClaimRule{
		{Claim: "scope", Values: []string{"read"}}, {Claim: "roles", Values: []string{"admin"}},
	}}, policy)
	tok := jwttest.Sign(t, key, map[string]any{"typ": "at+jwt"}, testClaims(map[string]any{
		"aud": []string{"other", "api"}, "scope": "read write", "roles": []string{"admin"},
	}))
	tr := new(trace)
	if _, err := v.verify(context.Background(), tok, tr); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range tr.steps {
		if !s.OK || s.Detail == "" {
			t.Errorf("step %+v: want a pass with a detail", s)
		}
		got = append(got, s.Name)
	}
	want := "decode issuer alg key signature claim_types exp nbf iat max_lifetime aud typ cnf binding require require"
	if strings.Join(got, " ") != want {
		t.Fatalf("steps %q, want %q", strings.Join(got, " "), want)
	}
	for i, frag := range map[int]string{
		3:  `kid "k-new": EC P-256 key (alg ES256), found by an unknown-kid refresh`,
		6:  "(expires in 5m) is after now − leeway",
		9:  "lifetime exp − iat = 5m0s ≤ max_lifetime 1h0m0s",
		10: `aud ["other","api"] contains "api"`,
		14: `claim scope has ["read"]`,
	} {
		if !strings.Contains(tr.steps[i].Detail, frag) {
			t.Errorf("step %s detail %q lacks %q", tr.steps[i].Name, tr.steps[i].Detail, frag)
		}
	}
}

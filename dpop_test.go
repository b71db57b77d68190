package jwtauth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

const (
	testProofURL   = "https://api.example.com/resource"
	testProofToken = "header.payload.signature-of-the-access-token"
)

var testProofTime = time.Unix(1_700_000_000, 0)

// proofKey is a DPoP client key: a real key pair and its public JWK with
// only the members a client would send.
type testProofKey struct {
	key *jwttest.Key
	jwk map[string]any
	jkt string
}

func newTestProofKey(t testing.TB, k *jwttest.Key) *testProofKey {
	t.Helper()
	k.Kid, k.OmitAlg, k.Use = "", true, "-"
	jwk := k.JWK()
	jkt, err := jose.Thumbprint(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return &testProofKey{key: k, jwk: jwk, jkt: jkt}
}

func randomJTI(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// proofClaims are the claims of a proof that passes every check.
func proofClaims(t testing.TB) map[string]any {
	return map[string]any{
		"jti": randomJTI(t),
		"htm": http.MethodGet,
		"htu": testProofURL,
		"iat": testProofTime.Unix(),
		"ath": accessTokenHash(testProofToken),
	}
}

// sign builds a proof; hdr and claims override the passing defaults, a nil
// value deleting the member.
func (k *testProofKey) sign(t testing.TB, hdr, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"typ": dpopProofType, "jwk": k.jwk}
	for name, v := range hdr {
		h[name] = v
	}
	c := proofClaims(t)
	for name, v := range claims {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	return jwttest.Sign(t, k.key, h, c)
}

func newTestCheck(proof, jkt string) *dpopCheck {
	return &dpopCheck{
		Proof:       proof,
		Method:      http.MethodGet,
		URL:         testProofURL,
		AccessToken: testProofToken,
		JKT:         jkt,
		Algorithms:  jose.DefaultAlgorithms(),
		MaxAge:      60 * time.Second,
		Leeway:      5 * time.Second,
		Now:         testProofTime,
		Replay:      newReplayMemory(1000, 70*time.Second),
	}
}

func TestDPoPProofAccepted(t *testing.T) {
	keys := []*jwttest.Key{
		jwttest.NewEC(t, "ES256", ""),
		jwttest.NewEC(t, "ES384", ""),
		jwttest.NewEC(t, "ES512", ""),
		jwttest.NewRSA(t, 2048, "", "RS256"),
		jwttest.NewRSA(t, 2048, "", "PS256"),
		jwttest.NewEd25519(t, "", "EdDSA"),
		jwttest.NewEd25519(t, "", "Ed25519"),
	}
	for _, k := range keys {
		t.Run(k.Alg, func(t *testing.T) {
			pk := newTestProofKey(t, k)
			c := newTestCheck(pk.sign(t, nil, nil), pk.jkt)
			jkt, err := verifyDPoPProof(c)
			if err != nil {
				t.Fatalf("valid proof refused: %v", err)
			}
			if jkt != pk.jkt {
				t.Fatalf("jkt = %s, want %s", jkt, pk.jkt)
			}
		})
	}
}

func TestDPoPProofRejections(t *testing.T) {
	es := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	es384 := newTestProofKey(t, jwttest.NewEC(t, "ES384", ""))
	rs := newTestProofKey(t, jwttest.NewRSA(t, 2048, "", "RS256"))
	rsSmall := newTestProofKey(t, jwttest.NewRSA(t, 1024, "", "RS256"))
	ed := newTestProofKey(t, jwttest.NewEd25519(t, "", "EdDSA"))
	hs := jwttest.NewHMAC(t, 32, "", "HS256")
	now := testProofTime
	long := strings.Repeat("a", maxJTILength+1)

	offCurve := map[string]any{}
	for k, v := range es.jwk {
		offCurve[k] = v
	}
	offCurve["y"] = offCurve["x"]

	nonces := newDPoPNonces(make([]byte, nonceKeySize), 60*time.Second)

	tests := []struct {
		name   string
		proof  func(t *testing.T) string
		adjust func(c *dpopCheck)
		want   Reason
		detail string // names the rule, so a case still refused by a later rule fails
	}{
		{name: "too large", detail: "larger than", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return es.sign(t, nil, map[string]any{"pad": strings.Repeat("x", maxDPoPProofSize)})
			}},
		{name: "not a compact JWS", detail: "3 dot-separated", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return "a.b" }},
		{name: "duplicate header member", detail: "duplicate member", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return jwttest.SignRaw(t, es.key, "ES256",
					[]byte(`{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256"}`), []byte(`{}`))
			}},
		{name: "alg none", detail: "none", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"alg": "none"}, nil) }},
		{name: "typ missing", detail: "typ", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"typ": nil}, nil) }},
		{name: "typ JWT", detail: "typ", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"typ": "JWT"}, nil) }},
		{name: "typ in other case", detail: "typ", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"typ": "DPoP+JWT"}, nil) }},
		{name: "alg not in dpop_algorithms", detail: "not an allowed proof algorithm", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return rs.sign(t, nil, nil) },
			adjust: func(c *dpopCheck) { c.Algorithms = []string{"ES256"}; c.JKT = rs.jkt }},
		{name: "HS256 even when listed", detail: "not an allowed proof algorithm", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return jwttest.Sign(t, hs, map[string]any{"typ": dpopProofType, "jwk": es.jwk}, proofClaims(t))
			},
			adjust: func(c *dpopCheck) { c.Algorithms = []string{"HS256", "ES256"} }},
		{name: "jwk missing", detail: "jwk is missing", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": nil}, nil) }},
		{name: "jwk not an object", detail: "jwk is missing", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": es.jkt}, nil) }},
		{name: "jwk with EC private member d", detail: "private member", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": es.key.PrivateJWK()}, nil) }},
		{name: "jwk with RSA private members", detail: "private member", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return rs.sign(t, map[string]any{"jwk": rs.key.PrivateJWK()}, nil) },
			adjust: func(c *dpopCheck) { c.JKT = rs.jkt }},
		{name: "jwk symmetric", detail: "private member", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": hs.JWK()}, nil) }},
		{name: "jwk point not on the curve", detail: "not on curve", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": offCurve}, nil) }},
		{name: "RSA key under 2048 bits", detail: "2048", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return rsSmall.sign(t, nil, nil) },
			adjust: func(c *dpopCheck) { c.JKT = rsSmall.jkt }},
		{name: "P-384 key with ES256", detail: "does not fit", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return es384.sign(t, map[string]any{"alg": "ES256"}, nil) },
			adjust: func(c *dpopCheck) { c.JKT = es384.jkt }},
		{name: "RSA key with ES256", detail: "does not fit", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": rs.jwk}, nil) },
			adjust: func(c *dpopCheck) { c.JKT = rs.jkt }},
		{name: "Ed25519 key with ES256", detail: "does not fit", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return es.sign(t, map[string]any{"jwk": ed.jwk}, nil) },
			adjust: func(c *dpopCheck) { c.JKT = ed.jkt }},
		{name: "signed by another key", detail: "signature", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				other := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
				return other.sign(t, map[string]any{"jwk": es.jwk}, nil)
			}},
		{name: "jti missing", detail: "jti", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"jti": nil}) }},
		{name: "jti empty", detail: "jti", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"jti": ""}) }},
		{name: "jti too long", detail: "jti", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"jti": long}) }},
		{name: "jti a number", detail: "jti", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"jti": 12345}) }},
		{name: "htm missing", detail: "htm", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"htm": nil}) }},
		{name: "htm other method", detail: "htm", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"htm": "POST"}) }},
		{name: "htm lower case", detail: "htm", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"htm": "get"}) }},
		{name: "htu missing", detail: "htu", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"htu": nil}) }},
		{name: "htu other path", detail: "htu", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"htu": testProofURL + "/other"}) }},
		{name: "htu other host", detail: "htu", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return es.sign(t, nil, map[string]any{"htu": "https://evil.example.com/resource"})
			}},
		{name: "iat missing", detail: "iat", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"iat": nil}) }},
		{name: "iat a string", detail: "iat", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"iat": "1700000000"}) }},
		{name: "iat older than max age and leeway", detail: "older", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return es.sign(t, nil, map[string]any{"iat": now.Add(-66 * time.Second).Unix()})
			}},
		{name: "iat beyond leeway in the future", detail: "future", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return es.sign(t, nil, map[string]any{"iat": now.Add(6 * time.Second).Unix()})
			}},
		{name: "nonce required, none", detail: "nonce", want: ReasonDPoPNonce,
			proof:  func(t *testing.T) string { return es.sign(t, nil, nil) },
			adjust: func(c *dpopCheck) { c.Nonces = nonces }},
		{name: "nonce required, stale", detail: "nonce", want: ReasonDPoPNonce,
			proof: func(t *testing.T) string {
				return es.sign(t, nil, map[string]any{"nonce": nonces.current(now.Add(-2 * time.Minute))})
			},
			adjust: func(c *dpopCheck) { c.Nonces = nonces }},
		{name: "nonce required, not a string", detail: "nonce", want: ReasonDPoPNonce,
			proof:  func(t *testing.T) string { return es.sign(t, nil, map[string]any{"nonce": 1}) },
			adjust: func(c *dpopCheck) { c.Nonces = nonces }},
		{name: "ath missing", detail: "ath", want: ReasonDPoPProof,
			proof: func(t *testing.T) string { return es.sign(t, nil, map[string]any{"ath": nil}) }},
		{name: "ath of another token", detail: "ath", want: ReasonDPoPProof,
			proof: func(t *testing.T) string {
				return es.sign(t, nil, map[string]any{"ath": accessTokenHash(testProofToken + "x")})
			}},
		{name: "token bound to another key", detail: "cnf.jkt", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return es.sign(t, nil, nil) },
			adjust: func(c *dpopCheck) { c.JKT = rs.jkt }},
		{name: "token not bound", detail: "cnf.jkt", want: ReasonDPoPProof,
			proof:  func(t *testing.T) string { return es.sign(t, nil, nil) },
			adjust: func(c *dpopCheck) { c.JKT = "" }},
	}
	// Every case runs with no key cache and with one that already holds
	// every usable key of the table, so no rule is skipped on a cache hit.
	warm := warmProofKeyCache(t, es, es384, rs, ed)
	for _, cache := range []*proofKeyCache{nil, warm} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/cached=%t", tt.name, cache != nil), func(t *testing.T) {
				c := newTestCheck(tt.proof(t), es.jkt)
				c.Keys = cache
				if tt.adjust != nil {
					tt.adjust(c)
				}
				_, err := verifyDPoPProof(c)
				if got := ReasonOf(err); got != tt.want {
					t.Fatalf("reason = %q (%v), want %q", got, err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.detail) {
					t.Fatalf("refused for %q, want the rule about %q", err, tt.detail)
				}
				if n := c.Replay.len(); n != 0 {
					t.Fatalf("a refused proof was remembered (%d entries)", n)
				}
				if cache != nil && cache.len() != 4 {
					t.Fatalf("a refused proof changed the key cache (%d entries, want 4)", cache.len())
				}
			})
		}
	}
}

// warmProofKeyCache returns a key cache holding keys, each stored by an
// accepted proof.
func warmProofKeyCache(t *testing.T, keys ...*testProofKey) *proofKeyCache {
	t.Helper()
	cache := newProofKeyCache(defaultProofKeyCapacity)
	for _, k := range keys {
		c := newTestCheck(k.sign(t, nil, nil), k.jkt)
		c.Keys = cache
		if _, err := verifyDPoPProof(c); err != nil {
			t.Fatalf("warming the key cache: %v", err)
		}
	}
	if cache.len() != len(keys) {
		t.Fatalf("key cache holds %d keys, want %d", cache.len(), len(keys))
	}
	return cache
}

func TestDPoPProofWindowEdgesAndOptionalParts(t *testing.T) {
	es := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	nonces := newDPoPNonces(make([]byte, nonceKeySize), 60*time.Second)
	tests := []struct {
		name   string
		claims map[string]any
		adjust func(c *dpopCheck)
	}{
		{name: "iat at the oldest edge", claims: map[string]any{"iat": testProofTime.Add(-65 * time.Second).Unix()}},
		{name: "iat at the future edge", claims: map[string]any{"iat": testProofTime.Add(5 * time.Second).Unix()}},
		{name: "fractional iat", claims: map[string]any{"iat": float64(testProofTime.Unix()) + 0.5}},
		{name: "htu with query and fragment", claims: map[string]any{"htu": testProofURL + "?a=1#f"}},
		{name: "htu in another spelling", claims: map[string]any{"htu": "HTTPS://API.example.com:443/%72esource"}},
		{name: "current nonce", claims: map[string]any{"nonce": nonces.current(testProofTime)},
			adjust: func(c *dpopCheck) { c.Nonces = nonces }},
		{name: "previous step's nonce", claims: map[string]any{"nonce": nonces.current(testProofTime.Add(-time.Minute))},
			adjust: func(c *dpopCheck) { c.Nonces = nonces }},
		{name: "nonce ignored when not demanded", claims: map[string]any{"nonce": "anything"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCheck(es.sign(t, nil, tt.claims), es.jkt)
			if tt.adjust != nil {
				tt.adjust(c)
			}
			if _, err := verifyDPoPProof(c); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestDPoPProofReplay(t *testing.T) {
	es := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	proof := es.sign(t, nil, nil)
	c := newTestCheck(proof, es.jkt)
	if _, err := verifyDPoPProof(c); err != nil {
		t.Fatalf("first use refused: %v", err)
	}
	if _, err := verifyDPoPProof(c); ReasonOf(err) != ReasonDPoPReplay {
		t.Fatalf("second use: %v, want %s", err, ReasonDPoPReplay)
	}
	// The same jti from another key is another proof.
	other := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	jti := c.Replay
	c2 := newTestCheck(other.sign(t, nil, map[string]any{"jti": "shared-jti"}), other.jkt)
	c2.Replay = jti
	c3 := newTestCheck(es.sign(t, nil, map[string]any{"jti": "shared-jti"}), es.jkt)
	c3.Replay = jti
	if _, err := verifyDPoPProof(c2); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyDPoPProof(c3); err != nil {
		t.Fatalf("same jti under another key refused: %v", err)
	}
}

func TestDPoPProofReplayMemoryFull(t *testing.T) {
	es := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	mem := newReplayMemory(1, time.Minute)
	warned := 0
	check := func(proof string) error {
		c := newTestCheck(proof, es.jkt)
		c.Replay, c.ReplayFull = mem, func() { warned++ }
		_, err := verifyDPoPProof(c)
		return err
	}
	// A refused proof does not take the only slot...
	if err := check(es.sign(t, nil, map[string]any{"ath": "wrong"})); ReasonOf(err) != ReasonDPoPProof {
		t.Fatalf("bad proof: %v", err)
	}
	if err := check(es.sign(t, nil, nil)); err != nil {
		t.Fatalf("first good proof: %v", err)
	}
	// ...a good one does, and the next is refused with a warning.
	if err := check(es.sign(t, nil, nil)); ReasonOf(err) != ReasonDPoPReplay || warned != 1 {
		t.Fatalf("proof into a full memory: %v, %d warnings; want %s and 1", err, warned, ReasonDPoPReplay)
	}
}

func TestDPoPHeader(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		ok    bool
	}{
		{"one", []string{"a.b.c"}, true},
		{"none", nil, false},
		{"empty", []string{""}, false},
		{"two identical", []string{"a.b.c", "a.b.c"}, false},
		{"two different", []string{"a.b.c", "d.e.f"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, l := range tt.lines {
				r.Header.Add("DPoP", l)
			}
			got, err := dpopHeader(r)
			if tt.ok {
				if err != nil || got != tt.lines[0] {
					t.Fatalf("dpopHeader = %q, %v", got, err)
				}
				return
			}
			if ReasonOf(err) != ReasonDPoPProof {
				t.Fatalf("dpopHeader = %q, %v; want %s", got, err, ReasonDPoPProof)
			}
		})
	}
}

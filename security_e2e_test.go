package jwtauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// The attack table (security_test.go) replayed through a real Caddy: each
// attack must get its documented status and WWW-Authenticate challenge, and the
// upstream behind the handler (a reverse_proxy to a server that counts its
// requests) must never see it. Like every caddytest test, none of these may
// run in parallel.

// useRealClock points testNow, the clock of every attack-table token, at the
// wall clock for the duration of t, so table tokens are current for a real
// Caddy (which verifies against time.Now). Safe because no test in this
// package runs in parallel while a caddytest test runs.
func useRealClock(t *testing.T) {
	t.Helper()
	saved := testNow
	testNow = time.Now().Truncate(time.Second)
	t.Cleanup(func() { testNow = saved })
}

// countingUpstream is the protected backend: it counts every request.
type countingUpstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	t.Helper()
	u := &countingUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		fmt.Fprint(w, "from upstream")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// securityE2E is one Caddy with several jwt_auth policies over the attack
// environment's issuer, each on its own path prefix, all proxying to up.
type securityE2E struct {
	tc   *caddytest.Tester
	env  *attackEnv
	jwks *jwttest.Server
	up   *countingUpstream
	weak *jwttest.Key // RSA-1024, published in the remote JWKS
}

const (
	pathDefault = "/api"       // the defaults: asymmetric algorithms, 16 KiB tokens
	pathHS      = "/hs/api"    // HS256 allowed (but the remote set has no oct key)
	pathAT      = "/at/api"    // token_type at+jwt
	pathAud     = "/aud/api"   // audience https://api.example
	pathSmall   = "/small/api" // max_token_size 2KiB
)

func startSecurityE2E(t *testing.T) *securityE2E {
	t.Helper()
	useRealClock(t)
	s := &securityE2E{env: newAttackEnv(t), up: newCountingUpstream(t)}
	e := s.env
	s.weak = &jwttest.Key{Kid: "weak-1024", Alg: "RS256", Private: jwttest.Shared().RSA1024}
	s.jwks = jwttest.NewServer(t, e.rs, e.ps, e.ps384, e.es, e.es384, e.ed, e.rsAny, e.sharedEC, e.sharedRSA, s.weak)

	route := func(prefix, extra string) string {
		return fmt.Sprintf(`
	handle %s* {
		jwt_auth {
			issuer %s
			jwks_url %s
%s
		}
		reverse_proxy %s
	}`, prefix, testIssuer, s.jwks.JWKSURL(), extra, s.up.srv.Listener.Addr())
	}
	s.tc = startCaddy(t,
		route("/hs/", "\t\t\talgorithms "+strings.Join(jose.DefaultAlgorithms(), " ")+" HS256")+
			route("/at/", "\t\t\ttoken_type at+jwt")+
			route("/aud/", "\t\t\taudience https://api.example")+
			route("/small/", "\t\t\tmax_token_size 2KiB")+
			route("/", ""))

	// Wait for the keys, then check that each policy lets an honest token
	// through to the upstream: every rejection below is the attack's doing.
	honest := jwttest.Sign(t, e.rs, nil, testClaims(nil))
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := get(t, s.tc, pathDefault, honest)
		if resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("keys not loaded within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, tok := range map[string]string{
		pathDefault: honest,
		pathHS:      honest,
		pathSmall:   honest,
		pathAT:      jwttest.Sign(t, e.es, map[string]any{"typ": "at+jwt"}, testClaims(nil)),
		pathAud:     jwttest.Sign(t, e.es, nil, testClaims(map[string]any{"aud": "https://api.example"})),
	} {
		s.wantPass(t, path, tok)
	}
	return s
}

// wantPass sends tok and asserts that it reached the upstream exactly once.
func (s *securityE2E) wantPass(t *testing.T, path, tok string, headers ...string) {
	t.Helper()
	before := s.up.hits.Load()
	resp, body := get(t, s.tc, path, tok, headers...)
	if resp.StatusCode != http.StatusOK || body != "from upstream" || s.up.hits.Load() != before+1 {
		t.Fatalf("%s: honest request got %d %q (upstream hits %d→%d)", path, resp.StatusCode, body, before, s.up.hits.Load())
	}
}

// wantRejected sends the request and asserts status, challenge and that the
// upstream saw nothing.
func (s *securityE2E) wantRejected(t *testing.T, path, tok string, status int, challenge string, headers ...string) {
	t.Helper()
	before := s.up.hits.Load()
	resp, body := get(t, s.tc, path, tok, headers...)
	if n := s.up.hits.Load() - before; n != 0 || body == "from upstream" {
		t.Fatalf("the upstream was reached %d times (status %d)", n, resp.StatusCode)
	}
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
	}
	if len(tok) > 16 && strings.Contains(body, tok[:16]) {
		t.Fatal("the response echoes the token")
	}
}

// invalidTokenChallenge and invalidRequestChallenge are the challenges of README "Answers".
func invalidTokenChallenge(r Reason) string { return fmt.Sprintf(invalidToken, r) }

func invalidRequestChallenge(r Reason) string { return fmt.Sprintf(invalidRequest, r) }

const noTokenChallenge = `Bearer realm="localhost"`

// e2eAttacks names the attack-table rows replayed through Caddy and the path
// whose policy matches the row's policy function (none: the default path).
var e2eAttacks = map[string]string{
	"alg none":                              pathDefault,
	"alg nOnE":                              pathDefault,
	"alg none with a valid RS256 signature": pathDefault,
	"alg missing":                           pathDefault,
	"HS256 keyed with the RSA public key PEM":       pathDefault,
	"HS256 keyed with the RSA JWK JSON":             pathDefault,
	"HS256 allowed: keyed with RSA PEM":             pathHS,
	"HS256 allowed: no kid, keyed with RSA PEM":     pathHS,
	"shared kid: HS256 keyed with the RSA PEM":      pathHS,
	"header RS512, RS256 signature, key alg RS256":  pathDefault,
	"shared kid: RS256 signature labelled ES256":    pathDefault,
	"embedded jwk, attacker kid":                    pathDefault,
	"embedded jwk, legitimate kid":                  pathDefault,
	"x5c with the attacker's certificate":           pathDefault,
	"jku at the attacker's JWKS":                    pathDefault,
	"jku with a legitimate kid":                     pathDefault,
	"x5u at the attacker's server":                  pathDefault,
	"kid of 10 KB":                                  pathDefault,
	"kid path traversal":                            pathDefault,
	"ECDSA r=s=0":                                   pathDefault,
	"ECDSA DER-encoded signature":                   pathDefault,
	"PS256 with the maximal salt":                   pathDefault,
	"crit [b64] with b64 false":                     pathDefault,
	"crit [x-unknown]":                              pathDefault,
	"zip DEF":                                       pathDefault,
	"JWE compact":                                   pathDefault,
	"nested JWS (cty JWT)":                          pathDefault,
	"flattened JSON serialization":                  pathDefault,
	"JSON serialization with forged outer claims":   pathDefault,
	"padding = on the signature":                    pathDefault,
	"padding = on the header":                       pathDefault,
	"standard base64 alphabet":                      pathDefault,
	"non-canonical trailing bits in the signature":  pathDefault,
	"duplicate alg in the header":                   pathDefault,
	"duplicate sub in the claims":                   pathDefault,
	"escaped duplicate iss in the claims":           pathDefault,
	"invalid UTF-8 in the claims":                   pathDefault,
	"exp missing":                                   pathDefault,
	"exp 1e30":                                      pathDefault,
	"exp as a string":                               pathDefault,
	"nbf in the future":                             pathDefault,
	"iss with a trailing slash":                     pathDefault,
	"aud for another API":                           pathAud,
	"typ JWT when at+jwt is required":               pathAT,
	"ID token shaped token when at+jwt is required": pathAT,
	"DPoP-bound token (cnf.jkt)":                    pathDefault,
	"mTLS-bound token (cnf.x5t#S256)":               pathDefault,
}

func TestSecurityE2EAttackTable(t *testing.T) {
	s := startSecurityE2E(t)
	byName := map[string]attack{}
	for _, a := range attackTable(s.env) {
		byName[a.name] = a
	}
	for name, path := range e2eAttacks {
		a, ok := byName[name]
		if !ok {
			t.Errorf("attack %q is not in the attack table", name)
			continue
		}
		if a.want == "" {
			t.Errorf("attack %q is a control, not an attack", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			s.wantRejected(t, path, a.token(t, s.env), http.StatusUnauthorized, invalidTokenChallenge(a.want))
		})
	}
	// The controls of the table pass through Caddy too, so the rejections
	// above are not an artefact of the setup.
	for _, name := range []string{"baseline RS256", "baseline PS384", "honest token carrying jwk, jku, x5u and x5c is accepted",
		"PS256 with salt length 32 is accepted", "shared kid: RS256 token verifies with the RSA key"} {
		t.Run(name, func(t *testing.T) { s.wantPass(t, pathDefault, byName[name].token(t, s.env)) })
	}
	s.wantPass(t, pathAT, byName["typ at+jwt is accepted"].token(t, s.env))
	if n := s.env.jwksHits.Load(); n != 0 {
		t.Fatalf("Caddy fetched the attacker's jku/x5u %d times", n)
	}
}

func TestSecurityE2EWeakRemoteKey(t *testing.T) {
	s := startSecurityE2E(t)
	// The 1024-bit key is in the issuer's own JWKS, validly signing: it is
	// skipped at load, so its kid is unknown (and the re-fetch that an
	// unknown kid triggers skips it again).
	tok := jwttest.Sign(t, s.weak, nil, testClaims(nil))
	s.wantRejected(t, pathDefault, tok, http.StatusUnauthorized, invalidTokenChallenge(ReasonUnknownKid))
	// The rest of that set is in use.
	s.wantPass(t, pathDefault, jwttest.Sign(t, s.env.ps, nil, testClaims(nil)))
}

func TestSecurityE2ECredentialTransport(t *testing.T) {
	s := startSecurityE2E(t)
	e := s.env
	rs := jwttest.Sign(t, e.rs, nil, testClaims(nil))
	es := jwttest.Sign(t, e.es, nil, testClaims(nil))

	t.Run("Authorization twice with different tokens", func(t *testing.T) {
		s.wantRejected(t, pathDefault, "", http.StatusBadRequest, invalidRequestChallenge(ReasonMultipleCredentials),
			"Authorization: Bearer "+rs, "Authorization: Bearer "+es)
	})
	t.Run("a valid token beside a forged one", func(t *testing.T) {
		forged := byAttackName(t, e, "alg none")
		s.wantRejected(t, pathDefault, "", http.StatusBadRequest, invalidRequestChallenge(ReasonMultipleCredentials),
			"Authorization: Bearer "+rs, "Authorization: Bearer "+forged)
	})
	t.Run("Authorization twice with the same token", func(t *testing.T) {
		s.wantPass(t, pathDefault, "", "Authorization: Bearer "+rs, "Authorization: Bearer "+rs)
	})
	// Other schemes are not ours: the request has no token at all (RFC 6750
	// §3.1: no error attribute when no credentials were sent).
	for _, line := range []string{"BearerXYZ " + rs, "Bearer" + rs, "Bearer-" + rs, "Basic dXNlcjpwYXNz", "Token " + rs, "JWT " + rs, rs} {
		t.Run("Authorization: "+line[:12], func(t *testing.T) {
			s.wantRejected(t, pathDefault, "", http.StatusUnauthorized, noTokenChallenge, "Authorization: "+line)
		})
	}
	// DPoP is a scheme of ours (dpop allowed by default): an unbound token
	// sent with it is a failed proof, answered in a DPoP challenge.
	t.Run("Authorization: DPoP with an unbound token", func(t *testing.T) {
		s.wantRejected(t, pathDefault, "", http.StatusUnauthorized,
			`DPoP realm="localhost", error="invalid_dpop_proof", error_description="dpop_proof", algs="`+strings.Join(defaultDPoPAlgorithms(), " ")+`"`,
			"Authorization: DPoP "+rs)
	})
	t.Run("Bearer without a token", func(t *testing.T) {
		s.wantRejected(t, pathDefault, "", http.StatusUnauthorized, invalidTokenChallenge(ReasonMalformed), "Authorization: Bearer")
	})
	t.Run("token in the query is not read by default", func(t *testing.T) {
		s.wantRejected(t, pathDefault+"?access_token="+rs, "", http.StatusUnauthorized, noTokenChallenge)
	})
	t.Run("over the default max_token_size", func(t *testing.T) {
		big := jwttest.Sign(t, e.rs, nil, testClaims(map[string]any{"pad": strings.Repeat("x", 16<<10)}))
		s.wantRejected(t, pathDefault, big, http.StatusBadRequest, invalidRequestChallenge(ReasonTooLarge))
	})
	t.Run("over a configured max_token_size, checked before decoding", func(t *testing.T) {
		// Malformed (kid of 10 KB) on the default path; too large here.
		s.wantRejected(t, pathSmall, byAttackName(t, e, "kid of 10 KB"), http.StatusBadRequest, invalidRequestChallenge(ReasonTooLarge))
	})
}

// byAttackName builds the token of one attack-table row.
func byAttackName(t *testing.T, e *attackEnv, name string) string {
	t.Helper()
	for _, a := range attackTable(e) {
		if a.name == name {
			return a.token(t, e)
		}
	}
	t.Fatalf("attack %q not in the table", name)
	return ""
}

package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// DPoP through a real Caddy: tokens from a real issuer key, proofs signed
// with real client keys, and an upstream that counts what reaches it.

const dpopE2EIssuer = "https://idp.dpop.test"

type dpopE2E struct {
	tc     *caddytest.Tester
	issuer *jwttest.Key
	client *testProofKey
	up     *countingUpstream
	seen   atomic.Value // the last X-Binding the upstream saw
}

// startDPoPE2E runs one Caddy with a route per mode, all proxying to one
// upstream that records {http.auth.binding}.
// startDPoPE2E serves the DPoP routes; rootExtra adds options to the
// jwt_auth of the "/" route.
func startDPoPE2E(t *testing.T, global string, rootExtra ...string) *dpopE2E {
	t.Helper()
	e := &dpopE2E{issuer: jwttest.NewEC(t, "ES256", "idp-1"), client: newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))}
	e.up = newCountingUpstream(t)
	inner := e.up.srv.Config.Handler
	e.up.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.seen.Store(r.Header.Get("X-Binding"))
		inner.ServeHTTP(w, r)
	})
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwttest.JWKS(e.issuer), 0o600); err != nil {
		t.Fatal(err)
	}
	route := func(prefix, extra string) string {
		return fmt.Sprintf(`
	handle %s* {
		jwt_auth {
			issuer %s
			jwks_file %s
			audience api
%s
		}
		reverse_proxy %s {
			header_up X-Binding {http.auth.binding}
		}
	}`, prefix, dpopE2EIssuer, file, extra, e.up.srv.Listener.Addr())
	}
	site := route("/req/", "\t\t\tdpop required") + route("/off/", "\t\t\tdpop off") +
		route("/nonce/", "\t\t\tdpop_nonce") + route("/", strings.Join(rootExtra, "\n"))
	if global == "" {
		global = globalOptions
	}
	e.tc = caddytest.NewTester(t)
	e.tc.InitServer(global+"\n"+siteURL+" {\n"+site+"\n}\n", "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return e
}

// token issues an access token, bound to jkt when it is not empty.
func (e *dpopE2E) token(t *testing.T, jkt string) string {
	t.Helper()
	c := jwttest.Claims(dpopE2EIssuer, "api", 5*time.Minute)
	if jkt != "" {
		c["cnf"] = map[string]any{"jkt": jkt}
	}
	return jwttest.Sign(t, e.issuer, nil, c)
}

// proof is a valid proof by k for GET url over tok, edited by claims (a
// nil value deletes the member) and hdr.
func dpopProof(t *testing.T, k *testProofKey, url, tok string, hdr, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"htu": url, "iat": time.Now().Unix(), "ath": accessTokenHash(tok)}
	for name, v := range claims {
		c[name] = v
	}
	return k.sign(t, hdr, c)
}

// dpopRequest is one request to the test Caddy.
type dpopRequest struct {
	method, path, host string
	headers            []string // "Name: value", added in order
}

func (e *dpopE2E) send(t *testing.T, rq dpopRequest) (*http.Response, string) {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	req, err := http.NewRequest(rq.method, siteURL+rq.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rq.host != "" {
		req.Host = rq.host
	}
	for _, h := range rq.headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := e.tc.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp)
}

// wantPass asserts the request reached the upstream with binding.
func (e *dpopE2E) wantPass(t *testing.T, rq dpopRequest, binding string) *http.Response {
	t.Helper()
	before := e.up.hits.Load()
	resp, body := e.send(t, rq)
	if resp.StatusCode != http.StatusOK || e.up.hits.Load() != before+1 {
		t.Fatalf("status %d %q (challenge %q), want a pass", resp.StatusCode, body, resp.Header.Values("WWW-Authenticate"))
	}
	if got, _ := e.seen.Load().(string); got != binding {
		t.Fatalf("{http.auth.binding} = %q, want %q", got, binding)
	}
	return resp
}

// wantRefused asserts a 401 with one challenge of scheme, error and reason,
// and that the upstream was not reached.
func (e *dpopE2E) wantRefused(t *testing.T, rq dpopRequest, scheme, errCode string, reason Reason) *http.Response {
	t.Helper()
	before := e.up.hits.Load()
	resp, body := e.send(t, rq)
	if n := e.up.hits.Load() - before; n != 0 {
		t.Fatalf("the upstream was reached (status %d)", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d %q, want 401", resp.StatusCode, body)
	}
	want := fmt.Sprintf(`%s realm="localhost", error="%s", error_description="%s"`, scheme, errCode, reason)
	if scheme == schemeDPoP {
		want += `, algs="` + strings.Join(defaultDPoPAlgorithms(), " ") + `"`
	}
	if got := resp.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != want {
		t.Fatalf("WWW-Authenticate %q, want [%s]", got, want)
	}
	return resp
}

const dpopURL = siteURL + "/api/resource"

func dpopHeaders(tok, proof string) []string {
	return []string{"Authorization: DPoP " + tok, "DPoP: " + proof}
}

func TestDPoPE2EProofAttacks(t *testing.T) {
	e := startDPoPE2E(t, "")
	tok := e.token(t, e.client.jkt)
	other := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	weak := newTestProofKey(t, &jwttest.Key{Alg: "RS256", Private: jwttest.Shared().RSA1024})
	hmacKey := jwttest.NewHMAC(t, 32, "", "HS256")
	proof := func(hdr, claims map[string]any) string { return dpopProof(t, e.client, dpopURL, tok, hdr, claims) }
	b64 := func(v any) string {
		raw, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	claims := map[string]any{"jti": "j-none", "htm": "GET", "htu": dpopURL, "iat": time.Now().Unix(), "ath": accessTokenHash(tok)}
	noneProof := b64(map[string]any{"alg": "none", "typ": dpopProofType, "jwk": e.client.jwk}) + "." + b64(claims) + "."
	hsProof := jwttest.Sign(t, hmacKey, map[string]any{"typ": dpopProofType, "jwk": e.client.jwk}, claims)
	valid := strings.Split(proof(nil, nil), ".")
	jsonProof := fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, valid[0], valid[1], valid[2])
	private := e.client.key.PrivateJWK()
	unbound := e.token(t, "")

	for _, c := range []struct {
		name    string
		headers []string
		reason  Reason
		errCode string
	}{
		{"wrong method", dpopHeaders(tok, proof(nil, map[string]any{"htm": "POST"})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"wrong path", dpopHeaders(tok, proof(nil, map[string]any{"htu": siteURL + "/api/other"})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"wrong host", dpopHeaders(tok, proof(nil, map[string]any{"htu": "http://evil.example:9080/api/resource"})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"wrong scheme", dpopHeaders(tok, proof(nil, map[string]any{"htu": "https://localhost:9080/api/resource"})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"iat too old", dpopHeaders(tok, proof(nil, map[string]any{"iat": time.Now().Add(-3 * time.Minute).Unix()})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"iat in the future", dpopHeaders(tok, proof(nil, map[string]any{"iat": time.Now().Add(2 * time.Minute).Unix()})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"ath missing", dpopHeaders(tok, proof(nil, map[string]any{"ath": nil})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"ath of another token", dpopHeaders(tok, proof(nil, map[string]any{"ath": accessTokenHash(unbound)})), ReasonDPoPProof, "invalid_dpop_proof"},
		{"another key (jkt mismatch)", dpopHeaders(tok, dpopProof(t, other, dpopURL, tok, nil, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"typ jwt", dpopHeaders(tok, proof(map[string]any{"typ": "JWT"}, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"typ in upper case", dpopHeaders(tok, proof(map[string]any{"typ": "DPoP+JWT"}, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"typ with application/", dpopHeaders(tok, proof(map[string]any{"typ": "application/dpop+jwt"}, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"typ missing", dpopHeaders(tok, proof(map[string]any{"typ": nil}, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"alg none", dpopHeaders(tok, noneProof), ReasonDPoPProof, "invalid_dpop_proof"},
		{"alg HS256", dpopHeaders(tok, hsProof), ReasonDPoPProof, "invalid_dpop_proof"},
		{"RS256 with a 1024-bit key", dpopHeaders(tok, dpopProof(t, weak, dpopURL, tok, nil, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"private members in the jwk", dpopHeaders(tok, proof(map[string]any{"jwk": private}, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"two DPoP lines", append(dpopHeaders(tok, proof(nil, nil)), "DPoP: "+proof(nil, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"no DPoP header", []string{"Authorization: DPoP " + tok}, ReasonDPoPProof, "invalid_dpop_proof"},
		{"not a JWS", dpopHeaders(tok, "not-a-jws"), ReasonDPoPProof, "invalid_dpop_proof"},
		{"JSON serialization", dpopHeaders(tok, jsonProof), ReasonDPoPProof, "invalid_dpop_proof"},
		{"a proof over a token without cnf", dpopHeaders(unbound, dpopProof(t, e.client, dpopURL, unbound, nil, nil)), ReasonDPoPProof, "invalid_dpop_proof"},
		{"the token tampered", dpopHeaders(tok[:len(tok)-2]+"AA", proof(nil, nil)), ReasonBadSignature, "invalid_token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.wantRefused(t, dpopRequest{path: "/api/resource", headers: c.headers}, schemeDPoP, c.errCode, c.reason)
		})
	}
	// The weak key must be refused for its size, not for its alg.
	if weak.key.Alg != "RS256" {
		t.Fatal("weak key is not RS256")
	}
}

func TestDPoPE2ENormalizedURLsPass(t *testing.T) {
	e := startDPoPE2E(t, "")
	tok := e.token(t, e.client.jkt)
	for _, c := range []struct {
		name, path, host, htu string
	}{
		{"exact", "/api/resource", "", dpopURL},
		{"upper-case scheme and host", "/api/resource", "", "HTTP://LOCALHOST:9080/api/resource"},
		{"explicit default port", "/api/resource", "localhost", "http://localhost:80/api/resource"},
		{"request with a query", "/api/resource?page=2", "", dpopURL},
		{"htu with a query and fragment", "/api/resource", "", dpopURL + "?x=1#f"},
		{"percent-encoding normalized", "/api/%7Eres", "", siteURL + "/api/~res"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rq := dpopRequest{path: c.path, host: c.host, headers: dpopHeaders(tok, dpopProof(t, e.client, c.htu, tok, nil, nil))}
			e.wantPass(t, rq, "dpop")
		})
	}
}

func TestDPoPE2EPresentationAndModes(t *testing.T) {
	e := startDPoPE2E(t, "")
	bound := e.token(t, e.client.jkt)
	unbound := e.token(t, "")
	at := func(path string) string { return siteURL + path }

	// A DPoP-bound token is never a bearer token (RFC 9449 §7.2).
	e.wantRefused(t, dpopRequest{path: "/api/x", headers: []string{"Authorization: Bearer " + bound}}, schemeBearer, "invalid_token", ReasonBoundToken)
	e.wantRefused(t, dpopRequest{path: "/api/x", headers: []string{"Authorization: Bearer " + bound, "DPoP: " + dpopProof(t, e.client, at("/api/x"), bound, nil, nil)}}, schemeBearer, "invalid_token", ReasonBoundToken)
	// An unbound token passes as a bearer token where DPoP is allowed.
	e.wantPass(t, dpopRequest{path: "/api/x", headers: []string{"Authorization: Bearer " + unbound}}, "bearer")
	// Case-insensitive scheme.
	e.wantPass(t, dpopRequest{path: "/api/x", headers: []string{"Authorization: dpop " + bound, "DPoP: " + dpopProof(t, e.client, at("/api/x"), bound, nil, nil)}}, "dpop")

	// Two credentials: a Bearer and a DPoP line.
	resp, _ := e.send(t, dpopRequest{path: "/api/x", headers: []string{"Authorization: Bearer " + unbound, "Authorization: DPoP " + bound, "DPoP: " + dpopProof(t, e.client, at("/api/x"), bound, nil, nil)}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error_description="multiple_credentials"`) {
		t.Fatalf("Bearer and DPoP lines: %d %q, want 400 multiple_credentials", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// dpop required: an unbound token is refused with the DPoP challenge.
	e.wantRefused(t, dpopRequest{path: "/req/x", headers: []string{"Authorization: Bearer " + unbound}}, schemeDPoP, "invalid_token", ReasonUnboundToken)
	e.wantPass(t, dpopRequest{path: "/req/x", headers: dpopHeaders(bound, dpopProof(t, e.client, at("/req/x"), bound, nil, nil))}, "dpop")

	// dpop off: a DPoP-bound token is refused, in the challenge of the scheme used.
	e.wantRefused(t, dpopRequest{path: "/off/x", headers: []string{"Authorization: Bearer " + bound}}, schemeBearer, "invalid_token", ReasonBoundToken)
	e.wantPass(t, dpopRequest{path: "/off/x", headers: []string{"Authorization: Bearer " + unbound}}, "bearer")
	// With dpop off the DPoP scheme is not a source at all.
	resp, _ = e.send(t, dpopRequest{path: "/off/x", headers: dpopHeaders(bound, dpopProof(t, e.client, at("/off/x"), bound, nil, nil))})
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || len(got) != 1 || got[0] != `Bearer realm="localhost"` {
		t.Fatalf("DPoP scheme with dpop off: %d %q, want the plain Bearer challenge", resp.StatusCode, got)
	}
}

func TestDPoPE2ENoTokenChallenges(t *testing.T) {
	e := startDPoPE2E(t, "")
	dpop := `DPoP realm="localhost", algs="` + strings.Join(defaultDPoPAlgorithms(), " ") + `"`
	for path, want := range map[string][]string{
		"/api/x": {`Bearer realm="localhost"`, dpop},
		"/req/x": {dpop},
		"/off/x": {`Bearer realm="localhost"`},
	} {
		resp, _ := e.send(t, dpopRequest{path: path})
		got := resp.Header.Values("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: %d %q, want 401 %q", path, resp.StatusCode, got, want)
		}
	}
}

func TestDPoPE2EReplayAndCacheHit(t *testing.T) {
	e := startDPoPE2E(t, "")
	tok := e.token(t, e.client.jkt)
	p := dpopProof(t, e.client, dpopURL, tok, nil, nil)
	rq := dpopRequest{path: "/api/resource", headers: dpopHeaders(tok, p)}
	e.wantPass(t, rq, "dpop")
	// The same proof again: a replay, although the token is now cached.
	e.wantRefused(t, rq, schemeDPoP, "invalid_dpop_proof", ReasonDPoPReplay)
	// The cached token with a bad proof: the binding is still checked.
	bad := dpopRequest{path: "/api/resource", headers: dpopHeaders(tok, dpopProof(t, e.client, dpopURL, tok, nil, map[string]any{"htm": "DELETE"}))}
	e.wantRefused(t, bad, schemeDPoP, "invalid_dpop_proof", ReasonDPoPProof)
	// The cached token without the DPoP scheme.
	e.wantRefused(t, dpopRequest{path: "/api/resource", headers: []string{"Authorization: Bearer " + tok}}, schemeBearer, "invalid_token", ReasonBoundToken)
	// And a fresh proof still passes.
	e.wantPass(t, dpopRequest{path: "/api/resource", headers: dpopHeaders(tok, dpopProof(t, e.client, dpopURL, tok, nil, nil))}, "dpop")
}

func TestDPoPE2EReplayMemoryFull(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	global := globalOptionsLogging(logFile, "WARN")
	e := startDPoPE2E(t, global, "\t\t\tdpop_replay_size 1")
	tok := e.token(t, e.client.jkt)
	e.wantPass(t, dpopRequest{path: "/api/resource", headers: dpopHeaders(tok, dpopProof(t, e.client, dpopURL, tok, nil, nil))}, "dpop")
	// A fresh proof the full memory cannot remember is refused, never
	// accepted unremembered.
	e.wantRefused(t, dpopRequest{path: "/api/resource", headers: dpopHeaders(tok, dpopProof(t, e.client, dpopURL, tok, nil, nil))}, schemeDPoP, "invalid_dpop_proof", ReasonDPoPReplay)
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(logFile)
		if strings.Contains(string(data), "DPoP replay memory is full") {
			if strings.Contains(string(data), tok) {
				t.Fatal("the log holds the token")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replay-full warning in the log:\n%s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDPoPE2ENonces(t *testing.T) {
	e := startDPoPE2E(t, "")
	key, err := loadNonceKey(context.Background(), caddy.DefaultStorage)
	if err != nil {
		t.Fatal(err)
	}
	nonces := newDPoPNonces(key, defaultDPoPMaxAge)
	tok := e.token(t, e.client.jkt)
	url := siteURL + "/nonce/x"
	with := func(nonce any) dpopRequest {
		return dpopRequest{path: "/nonce/x", headers: dpopHeaders(tok, dpopProof(t, e.client, url, tok, nil, map[string]any{"nonce": nonce}))}
	}
	wantNonceHeader := func(resp *http.Response) string {
		t.Helper()
		n := resp.Header.Get("DPoP-Nonce")
		if !nonces.valid(n, time.Now()) {
			t.Fatalf("DPoP-Nonce %q is not a current nonce", n)
		}
		return n
	}
	// No nonce: refused with use_dpop_nonce and a nonce to use.
	resp := e.wantRefused(t, with(nil), schemeDPoP, "use_dpop_nonce", ReasonDPoPNonce)
	n := wantNonceHeader(resp)
	// The nonce handed out passes, and the 200 carries a nonce too.
	wantNonceHeader(e.wantPass(t, with(n), "dpop"))
	// A made-up nonce, and one two steps old, are refused.
	e.wantRefused(t, with(randomJTI(t)+randomJTI(t)), schemeDPoP, "use_dpop_nonce", ReasonDPoPNonce)
	e.wantRefused(t, with(nonces.current(time.Now().Add(-2*defaultDPoPMaxAge))), schemeDPoP, "use_dpop_nonce", ReasonDPoPNonce)
	// The previous step's nonce still passes.
	e.wantPass(t, with(nonces.current(time.Now().Add(-defaultDPoPMaxAge))), "dpop")
	// A refusal for another reason over the DPoP scheme carries a nonce as well.
	resp = e.wantRefused(t, dpopRequest{path: "/nonce/x", headers: dpopHeaders(tok, "not-a-jws")}, schemeDPoP, "invalid_dpop_proof", ReasonDPoPProof)
	wantNonceHeader(resp)
	// A Bearer request gets none.
	resp, _ = e.send(t, dpopRequest{path: "/nonce/x", headers: []string{"Authorization: Bearer " + e.token(t, "")}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("DPoP-Nonce") != "" {
		t.Fatalf("Bearer request: %d, DPoP-Nonce %q; want 200 without a nonce", resp.StatusCode, resp.Header.Get("DPoP-Nonce"))
	}
}

package jwtauth

import (
	"encoding/json"
	"fmt"
	"io"
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

// End-to-end tests through a real in-process Caddy (caddytest). All of them
// share the one Caddy of this test binary, so none may run in parallel.

const siteURL = "http://localhost:9080"

// globalOptions are required by caddytest (see DEVELOPERS.md).
const globalOptions = `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 1ns
}
`

// globalOptionsLogging is globalOptions with Caddy's own log written to
// path, as JSON at level.
func globalOptionsLogging(path, level string) string {
	return strings.Replace(globalOptions, "\tgrace_period 1ns\n",
		fmt.Sprintf("\tgrace_period 1ns\n\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel %s\n\t}\n", path, level), 1)
}

// startCaddy loads a Caddyfile whose site block is http://localhost:9080.
func startCaddy(t *testing.T, siteBody string) *caddytest.Tester {
	t.Helper()
	tc := caddytest.NewTester(t)
	tc.InitServer(globalOptions+"\n"+siteURL+" {\n"+siteBody+"\n}\n", "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return tc
}

// get sends a GET to path with an optional bearer token and extra headers
// ("Name: value") and returns the response with its body read.
func get(t *testing.T, tc *caddytest.Tester, path, token string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, siteURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := tc.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// e2eFixture is an issuer with one ES256 key served by a real JWKS server.
type e2eFixture struct {
	issuer string
	key    *jwttest.Key
	jwks   *jwttest.Server
}

func newFixture(t *testing.T) *e2eFixture {
	t.Helper()
	key := jwttest.NewEC(t, "ES256", "key-1")
	srv := jwttest.NewServer(t, key)
	return &e2eFixture{issuer: "https://idp.example/", key: key, jwks: srv}
}

// ready waits until the fixture's keys are loaded in Caddy (they are
// fetched in the background, so the first request may otherwise see 503).
func (f *e2eFixture) ready(t *testing.T, tc *caddytest.Tester) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	// First the status endpoint: this fixture's source holds its key. A
	// request alone can pass this wait too early when its 401 comes from
	// another provider (the provider form next to http_basic).
	for !f.sourceLoaded(t) {
		if time.Now().After(deadline) {
			t.Fatal("keys not loaded within 10s (status)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		resp, _ := get(t, tc, "/", f.token(t, nil))
		// The provider form answers keys_unavailable with 401, so the
		// Retry-After header is what tells "no keys yet" apart.
		if resp.StatusCode != http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("keys not loaded within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sourceLoaded reports whether /jwt_auth/status shows the fixture's key set
// URL with a key.
func (f *e2eFixture) sourceLoaded(t *testing.T) bool {
	t.Helper()
	var doc struct {
		Issuers []struct {
			URL  string   `json:"url"`
			Kids []string `json:"kids"`
		} `json:"issuers"`
	}
	if err := json.Unmarshal([]byte(adminGet(t, "/jwt_auth/status")), &doc); err != nil {
		return false
	}
	for _, is := range doc.Issuers {
		if is.URL == f.jwks.JWKSURL() && len(is.Kids) > 0 {
			return true
		}
	}
	return false
}

// token signs claims for the fixture's issuer (aud "api", 5 minutes) with
// edit applied to the claim set.
func (f *e2eFixture) token(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	claims := jwttest.Claims(f.issuer, "api", 5*time.Minute)
	if edit != nil {
		edit(claims)
	}
	return jwttest.Sign(t, f.key, nil, claims)
}

// block is the jwt_auth directive for the fixture plus extra options.
func (f *e2eFixture) block(extra string) string {
	return fmt.Sprintf("jwt_auth {\n\tissuer %s\n\tjwks_url %s\n\taudience api\n%s\n}", f.issuer, f.jwks.JWKSURL(), extra)
}

func TestEndToEndValidTokenPublishesClaims(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block("")+`
	respond "id={http.auth.user.id} iss={http.auth.user.iss} role={http.auth.user.realm_access.roles} n={http.auth.user.n} big={http.auth.user.big} ok={http.auth.user.ok}"`)
	f.ready(t, tc)
	tok := f.token(t, func(c map[string]any) {
		c["realm_access"] = map[string]any{"roles": []string{"admin", "dev"}}
		c["n"] = 1.5e3
		c["ok"] = true
		c["id"] = "must-not-win"
	})
	// A number the float64 round-trip would corrupt, spliced in as raw JSON text.
	tok = f.withRawClaim(t, tok, `"big":12345678901234567890`)
	resp, body := get(t, tc, "/", tok)
	want := "id=user-123 iss=https://idp.example/ role=admin,dev n=1500 big=12345678901234567890 ok=true"
	if resp.StatusCode != http.StatusOK || body != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	// The scheme is case-insensitive (RFC 7235 §2.1).
	if resp, _ := get(t, tc, "/", "", "Authorization: bearer "+tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("lower-case scheme: got %d", resp.StatusCode)
	}
}

// withRawClaim re-signs tok with one raw JSON member added to its claims.
func (f *e2eFixture) withRawClaim(t *testing.T, tok, member string) string {
	t.Helper()
	parsed, err := jose.Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.TrimSuffix(string(parsed.Payload()), "}") + "," + member + "}"
	header := []byte(fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"JWT"}`, f.key.Kid))
	return jwttest.SignRaw(t, f.key, "ES256", header, []byte(payload))
}

func TestEndToEndRejections(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block("\trequire scope write:docs")+"\n\trespond \"secret\"")
	f.ready(t, tc)
	other := jwttest.NewEC(t, "ES256", "key-1") // same kid, different key
	scoped := func(c map[string]any) { c["scope"] = "read:docs write:docs" }
	cases := []struct {
		name, token, status, challenge string
	}{
		{"no token", "", "401", `Bearer realm="localhost"`},
		{"bad signature", jwttest.Sign(t, other, nil, f.claims(scoped)), "401",
			`Bearer realm="localhost", error="invalid_token", error_description="bad_signature"`},
		{"expired", f.token(t, func(c map[string]any) {
			scoped(c)
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
		}), "401", `Bearer realm="localhost", error="invalid_token", error_description="expired"`},
		{"wrong issuer", f.token(t, func(c map[string]any) { scoped(c); c["iss"] = "https://evil.example/" }), "401",
			`Bearer realm="localhost", error="invalid_token", error_description="wrong_issuer"`},
		{"wrong audience", f.token(t, func(c map[string]any) { scoped(c); c["aud"] = "other" }), "401",
			`Bearer realm="localhost", error="invalid_token", error_description="wrong_audience"`},
		{"garbage", "not.a.token", "401",
			`Bearer realm="localhost", error="invalid_token", error_description="malformed"`},
		{"missing scope", f.token(t, func(c map[string]any) { c["scope"] = "read:docs" }), "403",
			`Bearer realm="localhost", error="insufficient_scope", error_description="claim_mismatch", scope="write:docs"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, tc, "/", c.token)
			if fmt.Sprint(resp.StatusCode) != c.status || body == "secret" {
				t.Fatalf("status %d body %q, want %s", resp.StatusCode, body, c.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != c.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
		})
	}
	if resp, body := get(t, tc, "/", f.token(t, scoped)); resp.StatusCode != 200 || body != "secret" {
		t.Fatalf("valid scoped token: %d %q", resp.StatusCode, body)
	}
}

func (f *e2eFixture) claims(edit func(map[string]any)) map[string]any {
	c := jwttest.Claims(f.issuer, "api", 5*time.Minute)
	edit(c)
	return c
}

func TestEndToEndUnavailableThenRecovers(t *testing.T) {
	f := newFixture(t)
	f.jwks.SetMode(jwttest.Down)
	tc := startCaddy(t, f.block("")+"\n\trespond \"ok\"")
	tok := f.token(t, nil)
	resp, _ := get(t, tc, "/", tok)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("issuer down at start: got %d, want 503", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra < "1" || len(ra) > 2 {
		t.Fatalf("Retry-After %q, want 1–30", ra)
	}
	if resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatal("a 503 must not carry a challenge")
	}
	f.jwks.SetMode(jwttest.Normal)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, tc, "/", tok)
		if resp.StatusCode == http.StatusOK && body == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d 10s after the issuer came back", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestEndToEndHandleErrorsRendersReason(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block("")+`
	respond "ok"
	handle_errors {
		respond "{err.status_code} {err.message}"
	}`)
	f.ready(t, tc)
	resp, body := get(t, tc, "/", "a.b.c")
	if resp.StatusCode != 401 || body != "401 malformed" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error_description="malformed"`) {
		t.Fatalf("challenge lost under handle_errors: %q", resp.Header.Get("WWW-Authenticate"))
	}
}

func TestEndToEndReverseProxyOnlyWithValidToken(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	var gotUser, gotAuth atomic.Value
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		gotUser.Store(r.Header.Get("X-User"))
		gotAuth.Store(r.Header.Get("Authorization"))
		fmt.Fprint(w, "from upstream")
	}))
	t.Cleanup(upstream.Close)
	tc := startCaddy(t, f.block("")+fmt.Sprintf(`
	reverse_proxy %s {
		header_up X-User {http.auth.user.id}
	}`, upstream.Listener.Addr()))
	f.ready(t, tc)
	hits.Store(0) // ready() itself got through with a valid token
	for _, bad := range []string{"", "x.y.z", f.token(t, func(c map[string]any) { c["aud"] = "nope" })} {
		if resp, _ := get(t, tc, "/", bad); resp.StatusCode == 200 {
			t.Fatalf("token %.10q reached the upstream", bad)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("upstream reached %d times without a valid token", n)
	}
	resp, body := get(t, tc, "/", f.token(t, nil))
	if resp.StatusCode != 200 || body != "from upstream" || gotUser.Load() != "user-123" {
		t.Fatalf("valid token: %d %q X-User=%v", resp.StatusCode, body, gotUser.Load())
	}
}

func TestEndToEndJSONConfigBehavesLikeCaddyfile(t *testing.T) {
	f := newFixture(t)
	tc := caddytest.NewTester(t)
	tc.InitServer(fmt.Sprintf(`{
	"admin": {"listen": "localhost:2999"},
	"apps": {"http": {"http_port": 9080, "https_port": 9443, "grace_period": 1, "servers": {"srv0": {
		"listen": [":9080"],
		"routes": [{"handle": [
			{"handler": "jwt_auth", "issuers": [{"issuer": %q, "jwks_url": %q, "audience": ["api"]}]},
			{"handler": "static_response", "body": "hi {http.auth.user.id}"}
		]}],
		"automatic_https": {"disable": true}
	}}},
	"pki": {"certificate_authorities": {"local": {"install_trust": false}}}}
}`, f.issuer, f.jwks.JWKSURL()), "json")
	f.ready(t, tc)
	if resp, body := get(t, tc, "/", f.token(t, nil)); resp.StatusCode != 200 || body != "hi user-123" {
		t.Fatalf("valid: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, tc, "/", ""); resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

func TestJSONConfigIsValidatedInProvision(t *testing.T) {
	caddytest.AssertLoadError(t, `{
	"admin": {"listen": "localhost:2999"},
	"apps": {"http": {"servers": {"srv0": {"listen": [":9080"], "routes": [{"handle": [
		{"handler": "jwt_auth", "issuers": [{"issuer": "https://idp.example/", "jwks_url": "http://idp.example/jwks"}]}
	]}]}}}}
}`, "json", "must use https")
}

func TestEndToEndExpressionMatcherOnClaim(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, `route {
		`+f.block("")+`
		@admins expression `+"`{http.auth.user.role} == \"admin\"`"+`
		respond @admins "admin area"
		respond "user area"
	}`)
	f.ready(t, tc)
	for role, want := range map[string]string{"admin": "admin area", "viewer": "user area"} {
		tok := f.token(t, func(c map[string]any) { c["role"] = role })
		if resp, body := get(t, tc, "/", tok); resp.StatusCode != 200 || body != want {
			t.Fatalf("role %s: got %d %q, want %q", role, resp.StatusCode, body, want)
		}
	}
	if resp, _ := get(t, tc, "/", ""); resp.StatusCode != 401 {
		t.Fatalf("no token: got %d", resp.StatusCode)
	}
}

// TestEndToEndUserPlaceholdersNeverLiteral: the http.auth.user. namespace
// is the handler's, so header_up never sends a placeholder's text to a
// backend as if it were an identity: an absent claim is empty, and so is
// every user placeholder of a request that passes without a verified token.
func TestEndToEndUserPlaceholdersNeverLiteral(t *testing.T) {
	f := newFixture(t)
	up := newEchoUpstream(t)
	tc := startCaddy(t, f.block("\toptional\n\tallow_preflight")+`
	reverse_proxy `+up.addr()+` {
		header_up X-User {http.auth.user.id}
		header_up X-Email {http.auth.user.email}
		header_up X-Org {http.auth.user.org.id}
	}`)
	f.ready(t, tc)
	withClaims := f.token(t, func(c map[string]any) {
		c["email"] = "a@example.com"
		c["org"] = map[string]any{"id": 42}
	})
	preflight := []string{"Origin: https://app.example", "Access-Control-Request-Method: POST"}
	cases := []struct {
		name, method string
		headers      []string
		want         [3]string // X-User, X-Email, X-Org as the upstream sees them
	}{
		{"anonymous under optional", http.MethodGet, nil, [3]string{"", "", ""}},
		{"claims absent", http.MethodGet, []string{"Authorization: Bearer " + f.token(t, nil)}, [3]string{"user-123", "", ""}},
		{"claims present", http.MethodGet, []string{"Authorization: Bearer " + withClaims}, [3]string{"user-123", "a@example.com", "42"}},
		{"preflight", http.MethodOptions, preflight, [3]string{"", "", ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.reset()
			if resp, body := do(t, tc, c.method, "/", c.headers...); resp.StatusCode != http.StatusOK || body != "upstream" {
				t.Fatalf("got %d %q, want the upstream's 200", resp.StatusCode, body)
			}
			seen := up.last(t).Header
			for i, name := range []string{"X-User", "X-Email", "X-Org"} {
				for _, v := range seen.Values(name) {
					if strings.Contains(v, "{") {
						t.Fatalf("%s reached the backend as the literal %q", name, v)
					}
				}
				if got := seen.Get(name); got != c.want[i] {
					t.Errorf("%s = %q, want %q", name, got, c.want[i])
				}
			}
		})
	}
}

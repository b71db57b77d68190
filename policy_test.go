package jwtauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// End-to-end tests of the policy options (issue 4) through a real Caddy.
// The recipe constants are the README's "Recipes" verbatim
// (TestReadmeShowsTestedRecipes checks it); a test substitutes only the
// site address, the JWKS URLs, the upstream address and the log path.

// recipeSite is the site address every recipe uses; tests serve it on siteURL.
const recipeSite = "api.example.com"

// recipeUpstream is the backend address every recipe proxies to.
const recipeUpstream = "localhost:8000"

// startRecipe loads recipe with its site served at siteURL, the upstream
// replaced by up, and each old→new pair of subst applied.
func startRecipe(t *testing.T, recipe string, up *echoUpstream, subst ...string) *caddytest.Tester {
	t.Helper()
	if !strings.HasPrefix(recipe, recipeSite+" {") {
		t.Fatalf("recipe does not start with %q", recipeSite)
	}
	cfg := siteURL + strings.TrimPrefix(recipe, recipeSite)
	if up != nil {
		subst = append(subst, recipeUpstream, up.addr())
	}
	cfg = strings.NewReplacer(subst...).Replace(cfg)
	tc := caddytest.NewTester(t)
	tc.InitServer(globalOptions+"\n"+cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return tc
}

// echoUpstream is a real backend that records what reached it.
type echoUpstream struct {
	srv  *httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	seen *http.Request
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	u := &echoUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.seen = r.Clone(r.Context())
		u.mu.Unlock()
		fmt.Fprint(w, "upstream")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *echoUpstream) addr() string { return u.srv.Listener.Addr().String() }

// last is the latest request the upstream received.
func (u *echoUpstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		t.Fatal("upstream never reached")
	}
	return u.seen
}

// reset forgets earlier requests (ready() itself may reach the upstream).
func (u *echoUpstream) reset() {
	u.mu.Lock()
	u.seen = nil
	u.mu.Unlock()
	u.hits.Store(0)
}

// fixtureFor is an issuer named iss with one key served by its own JWKS server.
func fixtureFor(t *testing.T, iss string, key *jwttest.Key) *e2eFixture {
	t.Helper()
	return &e2eFixture{issuer: iss, key: key, jwks: jwttest.NewServer(t, key)}
}

// sign issues a token from f with claims edited by edit (aud "api" by default).
func (f *e2eFixture) sign(t *testing.T, aud string, edit func(map[string]any)) string {
	t.Helper()
	c := jwttest.Claims(f.issuer, aud, 5*time.Minute)
	if edit != nil {
		edit(c)
	}
	return jwttest.Sign(t, f.key, nil, c)
}

// do sends method to path with "Name: value" headers.
func do(t *testing.T, tc *caddytest.Tester, method, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, siteURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := tc.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := fmt.Fprint(&b, readAll(t, resp)); err != nil {
		t.Fatal(err)
	}
	return resp, b.String()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// expect checks status, challenge (when want != "-") and whether the body
// came from the upstream.
func expect(t *testing.T, resp *http.Response, body string, status int, challenge string, upstream bool) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d (body %q), want %d", resp.StatusCode, body, status)
	}
	if challenge != "-" {
		if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
			t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
		}
	}
	if (body == "upstream") != upstream {
		t.Fatalf("body %q: upstream reached = %v, want %v", body, body == "upstream", upstream)
	}
}

const (
	realmChallenge = `Bearer realm="localhost"`
	invalidToken   = `Bearer realm="localhost", error="invalid_token", error_description="%s"`
	invalidRequest = `Bearer realm="localhost", error="invalid_request", error_description="%s"`
	insufficient   = `Bearer realm="localhost", error="insufficient_scope", error_description="claim_mismatch"`
)

const migrationRecipe = `api.example.com {
	jwt_auth {
		audience api
		issuer https://old-idp.example.com/ {
			jwks_url https://old-idp.example.com/jwks.json
		}
		issuer https://new-idp.example.com/ {
			jwks_url https://new-idp.example.com/jwks.json
			algorithms ES256
		}
	}
	reverse_proxy localhost:8000 {
		header_up X-User-Id {http.auth.user.id}
		header_up X-User-Issuer {http.auth.user.iss}
	}
}
`

func TestPolicySeveralIssuers(t *testing.T) {
	oldIdP := fixtureFor(t, "https://old-idp.example.com/", jwttest.NewRSA(t, 2048, "old-1", "RS256"))
	newIdP := fixtureFor(t, "https://new-idp.example.com/", jwttest.NewEC(t, "ES256", "new-1"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, migrationRecipe, up,
		"https://old-idp.example.com/jwks.json", oldIdP.jwks.JWKSURL(),
		"https://new-idp.example.com/jwks.json", newIdP.jwks.JWKSURL())
	oldIdP.ready(t, tc)
	newIdP.ready(t, tc)

	for _, f := range []*e2eFixture{oldIdP, newIdP} {
		up.reset()
		resp, body := get(t, tc, "/", f.sign(t, "api", func(c map[string]any) { c["sub"] = "u-" + f.key.Kid }))
		expect(t, resp, body, 200, "", true)
		seen := up.last(t)
		if seen.Header.Get("X-User-Id") != "u-"+f.key.Kid || seen.Header.Get("X-User-Issuer") != f.issuer {
			t.Fatalf("upstream got X-User-Id %q X-User-Issuer %q", seen.Header.Get("X-User-Id"), seen.Header.Get("X-User-Issuer"))
		}
	}

	// Only the token's own issuer's keys can verify it.
	sameKid := jwttest.NewEC(t, "ES256", "old-1")
	oldClaimsNewKey := jwttest.Sign(t, newIdP.key, nil, jwttest.Claims(oldIdP.issuer, "api", time.Minute))
	cases := []struct {
		name, token, reason string
	}{
		{"iss of old, signed by new's key", oldClaimsNewKey, "unknown_kid"},
		{"iss of old, new's EC key under old's RSA kid", jwttest.Sign(t, newIdP.key, map[string]any{"kid": "old-1"}, jwttest.Claims(oldIdP.issuer, "api", time.Minute)), "unknown_kid"},
		{"iss of new, signed by old's key", jwttest.Sign(t, oldIdP.key, nil, jwttest.Claims(newIdP.issuer, "api", time.Minute)), "forbidden_alg"},
		{"iss of new, foreign key with old's kid", jwttest.Sign(t, sameKid, nil, jwttest.Claims(newIdP.issuer, "api", time.Minute)), "unknown_kid"},
		{"top-level audience applies to every block", newIdP.sign(t, "other", nil), "wrong_audience"},
		{"unknown issuer", jwttest.Sign(t, newIdP.key, nil, jwttest.Claims("https://new-idp.example.com", "api", time.Minute)), "wrong_issuer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.reset()
			resp, body := get(t, tc, "/", c.token)
			expect(t, resp, body, 401, fmt.Sprintf(invalidToken, c.reason), false)
			if up.hits.Load() != 0 {
				t.Fatal("upstream reached")
			}
		})
	}
}

// A block's values replace the top-level defaults, never extend them.
func TestPolicyIssuerBlockReplacesDefaults(t *testing.T) {
	// Same kid and type on purpose: only the issuer decides which set is used.
	a := fixtureFor(t, "https://a.example/", jwttest.NewEC(t, "ES256", "k"))
	b := fixtureFor(t, "https://b.example/", jwttest.NewEC(t, "ES256", "k"))
	tc := startCaddy(t, fmt.Sprintf(`jwt_auth {
		audience api
		issuer %s {
			jwks_url %s
			audience api-a
		}
		issuer %s {
			jwks_url %s
		}
	}
	respond "ok {http.auth.user.iss}"`, a.issuer, a.jwks.JWKSURL(), b.issuer, b.jwks.JWKSURL()))
	a.ready(t, tc)
	b.ready(t, tc)
	for _, c := range []struct {
		f      *e2eFixture
		aud    string
		status int
	}{{a, "api-a", 200}, {a, "api", 401}, {b, "api", 200}, {b, "api-a", 401}} {
		resp, body := get(t, tc, "/", c.f.sign(t, c.aud, nil))
		if resp.StatusCode != c.status {
			t.Fatalf("%s aud %s: %d %q, want %d", c.f.issuer, c.aud, resp.StatusCode, body, c.status)
		}
	}
	// iss of A signed with B's key under the same kid: A's set decides.
	for _, pair := range [][2]*e2eFixture{{a, b}, {b, a}} {
		tok := jwttest.Sign(t, pair[1].key, nil, jwttest.Claims(pair[0].issuer, "api-a", time.Minute))
		if pair[0] == b {
			tok = jwttest.Sign(t, pair[1].key, nil, jwttest.Claims(pair[0].issuer, "api", time.Minute))
		}
		resp, body := get(t, tc, "/", tok)
		expect(t, resp, body, 401, fmt.Sprintf(invalidToken, "bad_signature"), false)
	}
}

const keycloakRecipe = `api.example.com {
	jwt_auth {
		issuer https://keycloak.example.com/realms/acme
		jwks_url https://keycloak.example.com/realms/acme/protocol/openid-connect/certs
		audience orders-api
		user_claim preferred_username
		require realm_access.roles orders-admin
		claim_header realm_access.roles X-User-Roles
	}
	reverse_proxy localhost:8000 {
		header_up X-User {http.auth.user.id}
	}
}
`

func TestPolicyRecipeKeycloakRoles(t *testing.T) {
	f := fixtureFor(t, "https://keycloak.example.com/realms/acme", jwttest.NewRSA(t, 2048, "kc-1", "RS256"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, keycloakRecipe, up,
		"https://keycloak.example.com/realms/acme/protocol/openid-connect/certs", f.jwks.JWKSURL())
	f.ready(t, tc)
	roles := func(r ...any) func(map[string]any) {
		return func(c map[string]any) {
			c["preferred_username"] = "alice"
			c["realm_access"] = map[string]any{"roles": r}
		}
	}
	up.reset()
	resp, body := get(t, tc, "/", f.sign(t, "orders-api", roles("offline_access", "orders-admin")), "X-User-Roles: forged")
	expect(t, resp, body, 200, "", true)
	if got := up.last(t).Header; got.Get("X-User") != "alice" || strings.Join(got.Values("X-User-Roles"), "|") != "offline_access,orders-admin" {
		t.Fatalf("upstream headers %v", got)
	}
	for name, edit := range map[string]func(map[string]any){
		"role missing":        roles("offline_access"),
		"role is a substring": roles("orders-admin-2"),
		"no realm_access":     nil,
		"roles not nested":    func(c map[string]any) { c["realm_access.roles"] = []any{"orders-admin"} },
	} {
		resp, body := get(t, tc, "/", f.sign(t, "orders-api", edit))
		if resp.StatusCode != 403 || resp.Header.Get("WWW-Authenticate") != insufficient || body == "upstream" {
			t.Fatalf("%s: %d %q %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
}

const auth0Recipe = `api.example.com {
	jwt_auth {
		issuer https://acme.eu.auth0.com/
		jwks_url https://acme.eu.auth0.com/.well-known/jwks.json
		audience https://api.example.com/orders
		require permissions read:orders
	}
	reverse_proxy localhost:8000
}
`

func TestPolicyRecipeAuth0Permissions(t *testing.T) {
	f := fixtureFor(t, "https://acme.eu.auth0.com/", jwttest.NewRSA(t, 2048, "a0", "RS256"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, auth0Recipe, up, "https://acme.eu.auth0.com/.well-known/jwks.json", f.jwks.JWKSURL())
	f.ready(t, tc)
	const aud = "https://api.example.com/orders"
	perms := func(v any) func(map[string]any) {
		return func(c map[string]any) { c["permissions"] = v }
	}
	cases := []struct {
		name   string
		aud    string
		edit   func(map[string]any)
		status int
	}{
		{"permission present", aud, perms([]any{"write:orders", "read:orders"}), 200},
		{"audience in an array", "", func(c map[string]any) {
			c["aud"] = []any{aud, "https://acme.eu.auth0.com/userinfo"}
			c["permissions"] = []any{"read:orders"}
		}, 200},
		{"permission absent", aud, perms([]any{"write:orders"}), 403},
		{"empty permissions", aud, perms([]any{}), 403},
		// Only scope/scp are split on spaces; other strings compare whole.
		{"space-separated string is one value", aud, perms("read:orders write:orders"), 403},
		{"exact string", aud, perms("read:orders"), 200},
		{"wrong audience", "https://api.example.com", perms([]any{"read:orders"}), 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, tc, "/", f.sign(t, c.aud, c.edit))
			want := map[int]string{200: "", 403: insufficient, 401: fmt.Sprintf(invalidToken, "wrong_audience")}[c.status]
			expect(t, resp, body, c.status, want, c.status == 200)
		})
	}
}

const scopePerRouteRecipe = `api.example.com {
	handle /admin/* {
		jwt_auth {
			issuer https://idp.example.com/
			jwks_url https://idp.example.com/.well-known/jwks.json
			audience api
			require scope admin
		}
		reverse_proxy localhost:8000
	}
	handle {
		jwt_auth {
			issuer https://idp.example.com/
			jwks_url https://idp.example.com/.well-known/jwks.json
			audience api
		}
		@readonly {
			method POST PUT PATCH DELETE
			expression ` + "`" + `!{http.auth.user.scope}.matches("(^| )orders:write( |$)")` + "`" + `
		}
		respond @readonly "orders:write scope required" 403
		reverse_proxy localhost:8000
	}
}
`

func TestPolicyRecipeScopePerRoute(t *testing.T) {
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, scopePerRouteRecipe, up, "https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL())
	f.ready(t, tc)
	scope := func(s any) string {
		return f.sign(t, "api", func(c map[string]any) {
			if s != nil {
				c["scope"] = s
			}
		})
	}
	cases := []struct {
		name, method, path, token string
		status                    int
		challenge                 string
		upstream                  bool
	}{
		{"admin scope", "GET", "/admin/users", scope("read admin"), 200, "", true},
		{"scp-style array", "GET", "/admin/users", scope([]any{"admin"}), 200, "", true},
		{"no admin scope", "GET", "/admin/users", scope("read orders:write"), 403, insufficient + `, scope="admin"`, false},
		{"scope absent", "GET", "/admin/users", scope(nil), 403, insufficient + `, scope="admin"`, false},
		{"admin route without token", "GET", "/admin/users", "", 401, realmChallenge, false},
		{"read without scope", "GET", "/orders", scope(nil), 200, "", true},
		{"write with scope", "POST", "/orders", scope("orders:read orders:write"), 200, "", true},
		{"write without scope", "POST", "/orders", scope("orders:read"), 403, "", false},
		{"write with a longer scope", "DELETE", "/orders/1", scope("orders:writer"), 403, "", false},
		{"write with no scope claim", "PUT", "/orders/1", scope(nil), 403, "", false},
		{"write without token", "POST", "/orders", "", 401, realmChallenge, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.token != "" {
				hdr = append(hdr, "Authorization: Bearer "+c.token)
			}
			resp, body := do(t, tc, c.method, c.path, hdr...)
			expect(t, resp, body, c.status, c.challenge, c.upstream)
			if c.status == 403 && c.challenge == "" && body != "orders:write scope required" {
				t.Fatalf("body %q", body)
			}
		})
	}
}

const identityHeadersRecipe = `api.example.com {
	jwt_auth {
		issuer https://idp.example.com/
		jwks_url https://idp.example.com/.well-known/jwks.json
		audience api
		claim_header sub X-User-Id
		claim_header email X-User-Email
		claim_header org.id X-Org-Id
		strip_token
	}
	reverse_proxy localhost:8000
}
`

func TestPolicyRecipeIdentityHeaders(t *testing.T) {
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, identityHeadersRecipe, up, "https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL())
	f.ready(t, tc)
	forged := []string{"X-User-Id: admin", "x-user-email: admin@evil.example", "X-Org-Id: 1", "X-Org-Id: 2"}
	cases := []struct {
		name string
		edit func(map[string]any)
		want map[string][]string // header → values at the upstream; nil means absent
	}{
		{"claims present", func(c map[string]any) {
			c["email"] = "alice@example.com"
			c["org"] = map[string]any{"id": json.Number("12345678901234567890")}
		}, map[string][]string{"X-User-Id": {"user-123"}, "X-User-Email": {"alice@example.com"}, "X-Org-Id": {"12345678901234567890"}}},
		{"claims absent", func(c map[string]any) { delete(c, "sub") },
			map[string][]string{"X-User-Id": nil, "X-User-Email": nil, "X-Org-Id": nil}},
		{"control characters never copied", func(c map[string]any) {
			c["email"] = "a@example.com\r\nX-Admin: 1"
			c["org"] = map[string]any{"id": "a\x00b"}
		}, map[string][]string{"X-User-Id": {"user-123"}, "X-User-Email": nil, "X-Org-Id": nil, "X-Admin": nil}},
		{"tab is allowed", func(c map[string]any) { c["email"] = "a\tb" },
			map[string][]string{"X-User-Email": {"a\tb"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.reset()
			resp, body := get(t, tc, "/?keep=1", f.sign(t, "api", c.edit), forged...)
			expect(t, resp, body, 200, "", true)
			seen := up.last(t)
			for name, want := range c.want {
				if got := seen.Header.Values(name); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatalf("upstream %s = %q, want %q", name, got, want)
				}
			}
			if seen.Header.Get("Authorization") != "" || seen.URL.RawQuery != "keep=1" {
				t.Fatalf("token not stripped: Authorization %q, query %q", seen.Header.Get("Authorization"), seen.URL.RawQuery)
			}
		})
	}
	// Rejected requests never reach the upstream, forged headers or not.
	up.reset()
	resp, body := get(t, tc, "/", "", forged...)
	expect(t, resp, body, 401, realmChallenge, false)
}

// A forged identity header is removed on every path: anonymous under
// optional, a preflight, a claim the token lacks.
func TestPolicyForgedHeaderRemovedOnEveryPath(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block(`
	claim_header email X-Email
	optional
	allow_preflight`)+`
	respond "email=[{header.X-Email}] id=[{http.auth.user.id}]"`)
	f.ready(t, tc)
	forged := "X-Email: admin@evil.example"
	cases := []struct {
		name, method, token string
		headers             []string
		want                string
	}{
		// The user placeholders are ours: empty without a verified token, never literal.
		{"anonymous", "GET", "", nil, "email=[] id=[]"},
		{"claim absent", "GET", f.token(t, nil), nil, "email=[] id=[user-123]"},
		{"claim present", "GET", f.token(t, func(c map[string]any) { c["email"] = "a@b" }), nil, "email=[a@b] id=[user-123]"},
		{"preflight", "OPTIONS", "", []string{"Origin: https://app.example", "Access-Control-Request-Method: POST"}, "email=[] id=[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := append([]string{forged}, c.headers...)
			if c.token != "" {
				hdr = append(hdr, "Authorization: Bearer "+c.token)
			}
			resp, body := do(t, tc, c.method, "/", hdr...)
			if resp.StatusCode != 200 || body != c.want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, c.want)
			}
		})
	}
}

const tokenSourcesRecipe = `api.example.com {
	log {
		output file /var/log/caddy/api.log
		format filter {
			request>uri query {
				delete access_token
			}
			request>headers>X-Api-Token delete
		}
	}
	jwt_auth {
		issuer https://idp.example.com/
		jwks_url https://idp.example.com/.well-known/jwks.json
		audience api
		from_header X-Api-Token
		from_query access_token
		strip_token
	}
	reverse_proxy localhost:8000
}
`

func TestPolicyRecipeQueryAndHeaderTokensKeptOutOfLog(t *testing.T) {
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k"))
	up := newEchoUpstream(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	tc := startRecipe(t, tokenSourcesRecipe, up,
		"https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL(), "/var/log/caddy/api.log", logPath)
	waitFor200(t, func() int {
		resp, _ := get(t, tc, "/?access_token="+f.sign(t, "api", nil), "")
		return resp.StatusCode
	})

	queryTok := f.sign(t, "api", func(c map[string]any) { c["sub"] = "by-query" })
	headerTok := f.sign(t, "api", func(c map[string]any) { c["sub"] = "by-header" })
	up.reset()
	resp, body := get(t, tc, "/q?a=1&access_token="+queryTok+"&b=2", "")
	expect(t, resp, body, 200, "", true)
	if q := up.last(t).URL.RawQuery; q != "a=1&b=2" {
		t.Fatalf("upstream query %q", q)
	}
	up.reset()
	resp, body = get(t, tc, "/h", "", "X-Api-Token: "+headerTok)
	expect(t, resp, body, 200, "", true)
	if up.last(t).Header.Get("X-Api-Token") != "" {
		t.Fatal("header token reached the upstream")
	}
	// Only the listed sources are read: a Bearer token is not a credential here.
	resp, body = get(t, tc, "/", headerTok)
	expect(t, resp, body, 401, realmChallenge, false)
	resp, body = get(t, tc, "/?access_token="+queryTok, "", "X-Api-Token: "+headerTok)
	expect(t, resp, body, 400, fmt.Sprintf(invalidRequest, "multiple_credentials"), false)

	logText := waitForLog(t, logPath, "/h")
	for _, tok := range []string{queryTok, headerTok} {
		if strings.Contains(logText, tok) || strings.Contains(logText, tok[:40]) {
			t.Fatalf("a token reached the access log:\n%s", logText)
		}
	}
	if !strings.Contains(logText, `"user_id":"by-query"`) {
		t.Fatalf("access log lacks the user id:\n%s", logText)
	}
}

// TestPolicyAccessLogShowsQueryTokenWithoutFilter is the control of the
// test above: Caddy logs the original URI, strip_token or not.
func TestPolicyAccessLogShowsQueryTokenWithoutFilter(t *testing.T) {
	f := newFixture(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	tc := startCaddy(t, fmt.Sprintf("log {\n\toutput file %s\n}\n", logPath)+f.block("\tfrom_query access_token\n\tstrip_token")+"\n\trespond ok")
	tok := f.token(t, nil)
	waitFor200(t, func() int { resp, _ := get(t, tc, "/?access_token="+tok, ""); return resp.StatusCode })
	if logText := waitForLog(t, logPath, "access_token"); !strings.Contains(logText, tok) {
		t.Fatalf("expected the unfiltered log to show the token:\n%s", logText)
	}
}

// waitFor200 retries until the keys are loaded (status not 503) and the
// answer is 200.
func waitFor200(t *testing.T, try func() int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status := try()
		if status == http.StatusOK {
			return
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("status %d while waiting for 200", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForLog returns the access log once it mentions marker.
func waitForLog(t *testing.T, path, marker string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), marker) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log never mentioned %q:\n%s", marker, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const cookieRecipe = `api.example.com {
	jwt_auth {
		issuer https://idp.example.com/
		jwks_url https://idp.example.com/.well-known/jwks.json
		audience api
		from_header Authorization Bearer
		from_cookie session_jwt
		strip_token
	}
	reverse_proxy localhost:8000
}
`

func TestPolicyRecipeCookieToken(t *testing.T) {
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, cookieRecipe, up, "https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL())
	f.ready(t, tc)
	tok, other := f.sign(t, "api", nil), f.sign(t, "api", func(c map[string]any) { c["sub"] = "other" })
	cases := []struct {
		name, path, bearer string
		headers            []string
		status             int
		challenge          string
		cookieUpstream     string
	}{
		{"cookie", "/", "", []string{"Cookie: theme=dark; session_jwt=" + tok + "; lang=en"}, 200, "", "theme=dark; lang=en"},
		{"bearer", "/", tok, []string{"Cookie: theme=dark"}, 200, "", "theme=dark"},
		{"same token twice", "/", tok, []string{"Cookie: session_jwt=" + tok}, 200, "", ""},
		{"different tokens", "/", other, []string{"Cookie: session_jwt=" + tok}, 400, fmt.Sprintf(invalidRequest, "multiple_credentials"), ""},
		{"two cookies", "/", "", []string{"Cookie: session_jwt=" + tok + "; session_jwt=" + other}, 400, fmt.Sprintf(invalidRequest, "multiple_credentials"), ""},
		{"query not configured", "/?access_token=" + tok, "", nil, 401, realmChallenge, ""},
		{"invalid cookie token", "/", "", []string{"Cookie: session_jwt=x.y.z"}, 401, fmt.Sprintf(invalidToken, "malformed"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.reset()
			resp, body := get(t, tc, c.path, c.bearer, c.headers...)
			expect(t, resp, body, c.status, c.challenge, c.status == 200)
			if c.status == 200 {
				seen := up.last(t)
				if got := strings.Join(seen.Header.Values("Cookie"), "|"); got != c.cookieUpstream || seen.Header.Get("Authorization") != "" {
					t.Fatalf("upstream Cookie %q Authorization %q, want Cookie %q", got, seen.Header.Get("Authorization"), c.cookieUpstream)
				}
			}
		})
	}
}

// Sources not configured are never read, and nothing is stripped without
// strip_token.
func TestPolicyDefaultSourceAndNoStrip(t *testing.T) {
	f := newFixture(t)
	up := newEchoUpstream(t)
	tc := startCaddy(t, f.block("")+"\n\treverse_proxy "+up.addr())
	f.ready(t, tc)
	tok := f.token(t, nil)
	for _, h := range [][]string{{"Cookie: jwt=" + tok}, {"X-Token: " + tok}} {
		resp, body := get(t, tc, "/?access_token="+tok, "", h...)
		expect(t, resp, body, 401, realmChallenge, false)
	}
	up.reset()
	resp, body := get(t, tc, "/?access_token=x", tok, "Cookie: jwt=y")
	expect(t, resp, body, 200, "", true)
	seen := up.last(t)
	if seen.Header.Get("Authorization") != "Bearer "+tok || seen.URL.RawQuery != "access_token=x" || seen.Header.Get("Cookie") != "jwt=y" {
		t.Fatalf("request changed without strip_token: %v %q", seen.Header, seen.URL.RawQuery)
	}
}

func TestPolicyMaxTokenSize(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, nil)
	tc := startCaddy(t, f.block(fmt.Sprintf("\tmax_token_size %d", len(tok)))+"\n\trespond ok")
	f.ready(t, tc)
	resp, body := get(t, tc, "/", tok)
	expect(t, resp, body, 200, "", false)
	long := f.token(t, func(c map[string]any) { c["pad"] = strings.Repeat("x", 20) })
	resp, body = get(t, tc, "/", long)
	expect(t, resp, body, 400, fmt.Sprintf(invalidRequest, "too_large"), false)
	resp, body = get(t, tc, "/", "", "Authorization: Bearer")
	expect(t, resp, body, 401, fmt.Sprintf(invalidToken, "malformed"), false)
}

func TestPolicyOptional(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block("\toptional\n\trequire role admin")+`
	respond "id=[{http.auth.user.id}] role=[{http.auth.user.role}]"`)
	f.ready(t, tc)
	cases := []struct {
		name, token, challenge string
		status                 int
		body                   string
	}{
		// Anonymous: every user placeholder is empty, never the literal text.
		{"no token passes anonymous", "", "", 200, "id=[] role=[]"},
		{"valid token", f.token(t, func(c map[string]any) { c["role"] = "admin" }), "", 200, "id=[user-123] role=[admin]"},
		{"require still applies to a token", f.token(t, func(c map[string]any) { c["role"] = "viewer" }), insufficient, 403, ""},
		{"invalid token is rejected", "x.y.z", fmt.Sprintf(invalidToken, "malformed"), 401, ""},
		{"expired token is rejected", f.token(t, func(c map[string]any) {
			c["role"] = "admin"
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		}), fmt.Sprintf(invalidToken, "expired"), 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, tc, "/", c.token)
			if resp.StatusCode != c.status || resp.Header.Get("WWW-Authenticate") != c.challenge || (c.status == 200 && body != c.body) {
				t.Fatalf("got %d %q %q, want %d %q %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, c.status, c.challenge, c.body)
			}
		})
	}
	// "Bearer" alone is a presented (malformed) credential, not "no token".
	resp, body := get(t, tc, "/", "", "Authorization: Bearer")
	expect(t, resp, body, 401, fmt.Sprintf(invalidToken, "malformed"), false)
}

const corsRecipe = `api.example.com {
	header {
		Access-Control-Allow-Origin https://app.example.com
		Access-Control-Allow-Headers "Authorization, Content-Type"
		Access-Control-Allow-Methods "GET, POST, PUT, DELETE"
		Access-Control-Max-Age 600
		Vary Origin
	}
	jwt_auth {
		issuer https://idp.example.com/
		jwks_url https://idp.example.com/.well-known/jwks.json
		audience api
		allow_preflight
	}
	@preflight method OPTIONS
	respond @preflight 204
	reverse_proxy localhost:8000
}
`

func TestPolicyRecipeCORS(t *testing.T) {
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k"))
	up := newEchoUpstream(t)
	tc := startRecipe(t, corsRecipe, up, "https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL())
	f.ready(t, tc)
	preflight := []string{"Origin: https://app.example.com", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization"}
	cases := []struct {
		name, method, token string
		headers             []string
		status              int
		upstream            bool
	}{
		{"preflight passes without token", "OPTIONS", "", preflight, 204, false},
		{"OPTIONS without Origin needs a token", "OPTIONS", "", preflight[1:], 401, false},
		{"OPTIONS without request method needs a token", "OPTIONS", "", preflight[:1], 401, false},
		{"GET without token", "GET", "", preflight[:1], 401, false},
		{"GET with token", "GET", f.token(t, nil), preflight[:1], 200, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := c.headers
			if c.token != "" {
				hdr = append(hdr, "Authorization: Bearer "+c.token)
			}
			resp, body := do(t, tc, c.method, "/", hdr...)
			expect(t, resp, body, c.status, "-", c.upstream)
			// The browser reads a 401 only if it carries the CORS headers.
			if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
				t.Fatalf("no CORS header on %d", resp.StatusCode)
			}
		})
	}
}

func TestPolicyPreflightNeedsTheOption(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block("")+"\n\trespond ok")
	f.ready(t, tc)
	resp, body := do(t, tc, "OPTIONS", "/", "Origin: https://app.example", "Access-Control-Request-Method: POST")
	expect(t, resp, body, 401, realmChallenge, false)
}

// recipes are the README's tested configurations.
var recipes = map[string]string{
	"migration": migrationRecipe, "keycloak": keycloakRecipe, "auth0": auth0Recipe,
	"scope per route": scopePerRouteRecipe, "identity headers": identityHeadersRecipe,
	"token sources": tokenSourcesRecipe, "cookie": cookieRecipe, "cors": corsRecipe,
}

func TestReadmeShowsTestedRecipes(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, recipe := range recipes {
		if !strings.Contains(string(readme), "```caddyfile\n"+recipe+"```\n") {
			t.Errorf("README.md does not show the %s recipe verbatim:\n%s", name, recipe)
		}
	}
}

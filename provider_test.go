package jwtauth

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"golang.org/x/crypto/bcrypt"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// providerBody is what the route after the authentication handler answers:
// the user placeholders Caddy sets from the provider's User, one nested
// claim, and the request as the next handler sees it.
const providerBody = `id=[{http.auth.user.id}] email=[{http.auth.user.email}] roles=[{http.auth.user.realm_access.roles}] ` +
	`x-email=[{http.request.header.X-Email}] authz=[{http.request.header.Authorization}] uri=[{http.request.uri}]`

// providerConfig is a JSON config whose only route is Caddy's authentication
// handler with providers (a JSON object) and then providerBody.
func providerConfig(providers string) string {
	return fmt.Sprintf(`{
	"admin": {"listen": "localhost:2999"},
	"apps": {"http": {"http_port": 9080, "https_port": 9443, "grace_period": 1, "servers": {"srv0": {
		"listen": [":9080"],
		"routes": [{"handle": [
			{"handler": "authentication", "providers": %s},
			{"handler": "static_response", "body": %q}
		]}],
		"automatic_https": {"disable": true}
	}}},
	"pki": {"certificate_authorities": {"local": {"install_trust": false}}}}
}`, providers, providerBody)
}

// jwtProvider is the provider's JSON for f plus extra members.
func jwtProvider(f *e2eFixture, extra string) string {
	return fmt.Sprintf(`{"issuers": [{"issuer": %q, "jwks_url": %q}], "audience": ["api"]%s}`, f.issuer, f.jwks.JWKSURL(), extra)
}

func startJSON(t *testing.T, cfg string) *caddytest.Tester {
	t.Helper()
	tc := caddytest.NewTester(t)
	tc.InitServer(cfg, "json")
	if t.Failed() {
		t.FailNow()
	}
	return tc
}

func basicAuth(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestProviderBesideHTTPBasic(t *testing.T) {
	f := newFixture(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	providers := fmt.Sprintf(`{
		"jwt_auth": %s,
		"http_basic": {"accounts": [{"username": "ops", "password": %q}]}
	}`, jwtProvider(f, `, "claim_headers": [{"claim": "email", "header": "X-Email"}], "strip_token": true, "sources": [{"header": "Authorization", "scheme": "Bearer"}, {"query": "access_token"}]`), hash)
	tc := startJSON(t, providerConfig(providers))
	f.ready(t, tc)

	tok := f.token(t, func(c map[string]any) {
		c["email"] = "alice@example.com"
		c["realm_access"] = map[string]any{"roles": []any{"a", "b"}}
		c["id"] = "not-the-user"
	})
	cases := []struct {
		name, path string
		headers    []string
		status     int
		body       string
	}{
		{"bearer token", "/p?x=1", []string{"Authorization: Bearer " + tok, "X-Email: forged@evil.example"}, 200,
			"id=[user-123] email=[alice@example.com] roles=[a,b] x-email=[alice@example.com] authz=[] uri=[/p?x=1]"},
		{"query token stripped", "/p?access_token=" + tok + "&x=1", nil, 200,
			"id=[user-123] email=[alice@example.com] roles=[a,b] x-email=[alice@example.com] authz=[] uri=[/p?x=1]"},
		{"basic auth", "/", []string{basicAuth("ops", "s3cret")}, 200,
			"id=[ops] email=[{http.auth.user.email}] roles=[{http.auth.user.realm_access.roles}] x-email=[] authz=[" + strings.TrimPrefix(basicAuth("ops", "s3cret"), "Authorization: ") + "] uri=[/]"},
		{"wrong password", "/", []string{basicAuth("ops", "nope")}, 401, ""},
		{"no credentials", "/", nil, 401, ""},
		{"invalid token", "/", []string{"Authorization: Bearer x.y.z"}, 401, ""},
		{"wrong audience", "/", []string{"Authorization: Bearer " + f.token(t, func(c map[string]any) { c["aud"] = "other" })}, 401, ""},
		{"two different tokens", "/?access_token=" + f.token(t, nil), []string{"Authorization: Bearer " + tok}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, tc, c.path, "", c.headers...)
			if resp.StatusCode != c.status || (c.status == 200 && body != c.body) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, c.status, c.body)
			}
			if c.status == 401 {
				// Caddy replays one failed provider's challenge: Basic or ours.
				if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") && !strings.HasPrefix(ch, `Bearer realm="localhost"`) {
					t.Fatalf("WWW-Authenticate %q", ch)
				}
			}
		})
	}
}

// With jwt_auth as the only provider its challenge reaches the client
// unchanged, and every rejection is Caddy's 401.
func TestProviderAlwaysAnswers401WithOurChallenge(t *testing.T) {
	f := newFixture(t)
	tc := startJSON(t, providerConfig(`{"jwt_auth": `+jwtProvider(f, `, "max_token_size": 600`)+`}`))
	f.ready(t, tc)
	long := f.token(t, func(c map[string]any) { c["pad"] = strings.Repeat("x", 600) })
	cases := []struct {
		name      string
		headers   []string
		challenge string
	}{
		{"no token", nil, realmChallenge},
		{"bearer without token", []string{"Authorization: Bearer"}, fmt.Sprintf(invalidToken, "malformed")},
		{"bad signature", []string{"Authorization: Bearer " + jwttest.Sign(t, jwttest.NewEC(t, "ES256", "key-1"), nil, jwttest.Claims(f.issuer, "api", time.Minute))}, fmt.Sprintf(invalidToken, "bad_signature")},
		{"multiple credentials", []string{"Authorization: Bearer a.b.c", "Authorization: Bearer d.e.f"}, fmt.Sprintf(invalidRequest, "multiple_credentials")},
		{"too large", []string{"Authorization: Bearer " + long}, fmt.Sprintf(invalidRequest, "too_large")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, tc, "/", "", c.headers...)
			expect(t, resp, body, 401, c.challenge, false)
			if strings.Contains(body, "id=") {
				t.Fatal("the next handler ran")
			}
		})
	}
	if resp, body := get(t, tc, "/", f.token(t, nil)); resp.StatusCode != 200 || !strings.HasPrefix(body, "id=[user-123]") {
		t.Fatalf("valid token: %d %q", resp.StatusCode, body)
	}
}

func TestProviderKeysUnavailableIs401(t *testing.T) {
	f := newFixture(t)
	f.jwks.SetMode(jwttest.Down)
	tc := startJSON(t, providerConfig(`{"jwt_auth": `+jwtProvider(f, "")+`}`))
	resp, body := get(t, tc, "/", f.token(t, nil))
	expect(t, resp, body, 401, realmChallenge, false)
	if ra := resp.Header.Get("Retry-After"); ra == "" || len(ra) > 2 {
		t.Fatalf("Retry-After %q, want 1–30", ra)
	}
}

func TestProviderPreflightOnlyWithOption(t *testing.T) {
	f := newFixture(t)
	preflight := []string{"Origin: https://app.example", "Access-Control-Request-Method: POST"}
	for _, c := range []struct {
		extra  string
		status int
	}{{"", 401}, {`, "allow_preflight": true`, 200}} {
		tc := startJSON(t, providerConfig(`{"jwt_auth": `+jwtProvider(f, c.extra)+`}`))
		f.ready(t, tc)
		resp, body := do(t, tc, http.MethodOptions, "/", preflight...)
		if resp.StatusCode != c.status {
			t.Fatalf("preflight with %q: %d %q, want %d", c.extra, resp.StatusCode, body, c.status)
		}
		// A passed preflight has no user: its placeholders are empty, never literal.
		if c.status == 200 && !strings.HasPrefix(body, "id=[] email=[] roles=[] ") {
			t.Fatalf("preflight body %q: user placeholders not empty", body)
		}
		if resp, _ := do(t, tc, http.MethodOptions, "/", preflight[0]); resp.StatusCode != 401 {
			t.Fatalf("OPTIONS without request method: %d", resp.StatusCode)
		}
	}
}

// optional, require and report_only are config errors in the provider form, refused
// before any key source is acquired (the JWKS server is never asked).
func TestProviderRefusesOptionalRequireAndReportOnly(t *testing.T) {
	f := newFixture(t)
	for extra, msg := range map[string]string{
		`, "optional": true`:    "optional is not supported in the authentication provider",
		`, "report_only": true`: "report_only is not supported in the authentication provider",
		`, "require": [{"claim": "scope", "values": ["read"]}]`: "require is not supported in the authentication provider",
		`, "algorithms": ["none"]`:                              "unknown algorithm",
	} {
		caddytest.AssertLoadError(t, providerConfig(`{"jwt_auth": `+jwtProvider(f, extra)+`}`), "json", msg)
	}
	time.Sleep(100 * time.Millisecond) // a background fetch, had one started, would have arrived
	if n := f.jwks.Hits(); n != 0 {
		t.Fatalf("the JWKS was fetched %d times for refused configs", n)
	}
}

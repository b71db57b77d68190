package jwtauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// The resource option wired into the handler: Caddyfile, JSON validation,
// the audience rule, and through a real Caddy the metadata document and the
// challenges.

func TestResourceCaddyfile(t *testing.T) {
	h, err := parseHandler(`jwt_auth {
		issuer https://auth.example.com
		resource https://mcp.example.com/mcp {
			scopes_supported mcp:read
			scopes_supported mcp:write
			resource_name "Acme tools"
			resource_documentation https://docs.example.com/mcp
			resource_policy_uri https://example.com/privacy
			resource_tos_uri http://example.com/terms
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := &ResourceConfig{
		Resource: "https://mcp.example.com/mcp", ScopesSupported: []string{"mcp:read", "mcp:write"},
		ResourceName: "Acme tools", ResourceDocumentation: "https://docs.example.com/mcp",
		ResourcePolicyURI: "https://example.com/privacy", ResourceTOSURI: "http://example.com/terms",
	}
	if !reflect.DeepEqual(h.Resource, want) {
		t.Fatalf("got %+v, want %+v", h.Resource, want)
	}
	short, err := parseHandler("jwt_auth {\n issuer https://auth.example.com\n resource http://localhost:9080/mcp\n}")
	if err != nil || !reflect.DeepEqual(short.Resource, &ResourceConfig{Resource: "http://localhost:9080/mcp"}) {
		t.Fatalf("short form: %+v, %v", short.Resource, err)
	}
}

func TestResourceCaddyfileErrors(t *testing.T) {
	const iss = "issuer https://auth.example.com\n"
	for _, c := range []struct {
		name string
		body string // inside jwt_auth { ... }, which opens on line 1
		msg  string
		line int
	}{
		{"no URL", iss + " resource", "wrong argument count", 3},
		{"two URLs", iss + " resource https://a.example/ https://b.example/", "wrong argument count", 3},
		{"http to a remote host", iss + " resource http://mcp.example.com/mcp", "must use https", 3},
		{"relative", iss + " resource /mcp", "no host", 3},
		{"query", iss + " resource https://mcp.example.com/mcp?v=1", "no query", 3},
		{"fragment", iss + " resource https://mcp.example.com/mcp#x", "no fragment", 3},
		{"twice", iss + " resource https://a.example/\n resource https://b.example/", "resource given twice", 4},
		{"unknown option", iss + " resource https://a.example/ {\n resource_name x\n audience y\n }", `unknown resource option "audience"`, 5},
		{"scopes_supported without values", iss + " resource https://a.example/ {\n scopes_supported\n }", "wrong argument count", 4},
		{"name with two values", iss + " resource https://a.example/ {\n resource_name a b\n }", "wrong argument count", 4},
		{"documentation not a URL", iss + " resource https://a.example/ {\n resource_name ok\n resource_documentation docs\n }", "resource_documentation", 5},
		{"tos mailto", iss + " resource https://a.example/ {\n resource_tos_uri mailto:a@example.com\n }", "resource_tos_uri", 4},
		{"bad scope token", iss + " resource https://a.example/ {\n scopes_supported \"a b\"\n }", "scope token", 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			input := "jwt_auth {\n " + c.body + "\n}"
			_, err := parseHandler(input)
			if err == nil {
				t.Fatalf("no error for:\n%s", input)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not contain %q", err, c.msg)
			}
			if at := fmt.Sprintf(", at Testfile:%d", c.line); !strings.HasSuffix(err.Error(), at) {
				t.Fatalf("error %q does not end with %q", err, at)
			}
		})
	}
}

// A JSON config is held to the same rules at the top of Provision.
func TestResourceJSONValidate(t *testing.T) {
	base := func(rc *ResourceConfig) Config {
		return Config{Issuers: []IssuerConfig{{Issuer: "https://auth.example.com"}}, Resource: rc}
	}
	for _, c := range []struct {
		name string
		rc   *ResourceConfig
		msg  string
	}{
		{"empty resource", &ResourceConfig{}, "resource must not be empty"},
		{"http remote", &ResourceConfig{Resource: "http://mcp.example.com/"}, "must use https"},
		{"query", &ResourceConfig{Resource: "https://mcp.example.com/?a"}, "no query"},
		{"policy relative", &ResourceConfig{Resource: "https://mcp.example.com/", ResourcePolicyURI: "policy"}, "resource_policy_uri"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base(c.rc)
			if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("validate() = %v, want an error containing %q", err, c.msg)
			}
		})
	}
	ok := base(&ResourceConfig{Resource: "https://mcp.example.com/mcp"})
	if err := ok.validate(); err != nil {
		t.Fatalf("valid resource refused: %v", err)
	}
}

func TestResourceAudienceRule(t *testing.T) {
	const res = "https://mcp.example.com/mcp"
	for _, c := range []struct {
		name     string
		cfg      Config
		issuer   IssuerConfig
		audience []string
	}{
		{"no audience anywhere: exactly the resource", Config{Resource: &ResourceConfig{Resource: res}}, IssuerConfig{Issuer: "a"}, []string{res}},
		{"top-level audience replaces it", Config{Audience: []string{"api://mcp"}, Resource: &ResourceConfig{Resource: res}}, IssuerConfig{Issuer: "a"}, []string{"api://mcp"}},
		{"issuer audience replaces it", Config{Resource: &ResourceConfig{Resource: res}}, IssuerConfig{Issuer: "a", Audience: []string{"x"}}, []string{"x"}},
		{"no resource: no audience", Config{}, IssuerConfig{Issuer: "a"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			aud, _, _ := c.cfg.effective(c.issuer)
			if !slices.Equal(aud, c.audience) {
				t.Fatalf("audience %q, want %q", aud, c.audience)
			}
		})
	}
}

func TestResourceEndToEnd(t *testing.T) {
	f := newFixture(t)
	const res = siteURL + "/api"
	const mdPath = "/.well-known/oauth-protected-resource/api"
	const md = `, resource_metadata="` + siteURL + mdPath + `"`
	tc := startCaddy(t, fmt.Sprintf(`jwt_auth {
		issuer %s
		jwks_url %s
		resource %s {
			resource_name "Test API"
		}
		require scope read
		require roles admin
	}
	respond "upstream"`, f.issuer, f.jwks.JWKSURL(), res))
	tok := func(aud any, scope string, roles ...string) string {
		return f.token(t, func(c map[string]any) {
			c["aud"], c["scope"], c["roles"] = aud, scope, roles
		})
	}
	good := tok(res, "read write", "admin")
	eventually(t, 10*time.Second, "keys loaded", func() bool { return statusOfToken(t, tc, good) != http.StatusServiceUnavailable })

	// The document, without a token.
	resp, body := do(t, tc, "GET", mdPath)
	wantDoc := `{"resource":"` + res + `","authorization_servers":["` + f.issuer + `"],"bearer_methods_supported":["header"],"scopes_supported":["read"],"resource_name":"Test API","dpop_signing_alg_values_supported":["` + strings.Join(defaultDPoPAlgorithms(), `","`) + `"]}` + "\n"
	if resp.StatusCode != 200 || body != wantDoc || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Cache-Control") != "public, max-age=3600" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("metadata: %d %v\n%s\nwant %s", resp.StatusCode, resp.Header, body, wantDoc)
	}
	if resp, _ := do(t, tc, "POST", mdPath); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("POST metadata: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = do(t, tc, "OPTIONS", mdPath, "Origin: https://app.example", "Access-Control-Request-Method: GET")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != "GET, HEAD, OPTIONS" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	for _, c := range []struct {
		name      string
		path      string
		headers   []string
		status    int
		challenge string
	}{
		{"valid token for the resource", "/", []string{"Authorization: Bearer " + good}, 200, ""},
		{"no token", "/", nil, 401, realmChallenge + md + `, scope="read"`},
		{"near the metadata path is protected", mdPath + "/", nil, 401, realmChallenge + md + `, scope="read"`},
		{"token for another audience", "/", []string{"Authorization: Bearer " + tok("api", "read", "admin")}, 401,
			fmt.Sprintf(invalidToken, "wrong_audience") + md + `, scope="read"`},
		{"audience with a trailing slash is another one", "/", []string{"Authorization: Bearer " + tok(res+"/", "read", "admin")}, 401,
			fmt.Sprintf(invalidToken, "wrong_audience") + md + `, scope="read"`},
		{"audience array holding the resource", "/", []string{"Authorization: Bearer " + tok([]string{"other", res}, "read", "admin")}, 200, ""},
		{"missing scope: 403 names the rule's scope", "/", []string{"Authorization: Bearer " + tok(res, "write", "admin")}, 403,
			insufficient + `, scope="read"` + md},
		{"missing role: 403 names no scope", "/", []string{"Authorization: Bearer " + tok(res, "read", "user")}, 403,
			insufficient + md},
		{"two credentials: 400", "/", []string{"Authorization: Bearer " + good, "Authorization: Bearer x" + good}, 400,
			fmt.Sprintf(invalidRequest, "multiple_credentials") + md},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, tc, "GET", c.path, c.headers...)
			wantBody := c.status == 200
			if c.challenge == "" {
				c.challenge = "-"
			}
			expect(t, resp, body, c.status, c.challenge, wantBody)
		})
	}

	// The status endpoint names the resource and its metadata URL.
	sresp, err := http.Get("http://localhost:2999/jwt_auth/status")
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	var st struct {
		Resources []resourceStatus `json:"resources"`
	}
	if err := json.NewDecoder(sresp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if want := []resourceStatus{{Resource: res, MetadataURL: siteURL + mdPath}}; !reflect.DeepEqual(st.Resources, want) {
		t.Fatalf("status resources %+v, want %+v", st.Resources, want)
	}
}

// Without resource nothing changes: no document, no extra challenge
// attributes.
func TestResourceAbsentChangesNothing(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block("\trequire scope read")+"\n\trespond \"upstream\"")
	f.ready(t, tc)
	resp, body := do(t, tc, "GET", "/.well-known/oauth-protected-resource")
	expect(t, resp, body, 401, realmChallenge, false)
}

// The authentication-provider form cannot serve the document, so resource
// is refused there before anything is acquired.
func TestResourceRefusedInProvider(t *testing.T) {
	f := newFixture(t)
	caddytest.AssertLoadError(t, providerConfig(`{"jwt_auth": `+jwtProvider(f, `, "resource": {"resource": "https://mcp.example.com/mcp"}`)+`}`),
		"json", "resource is not supported in the authentication provider")
	time.Sleep(100 * time.Millisecond) // a background fetch, had one started, would have arrived
	if n := f.jwks.Hits(); n != 0 {
		t.Fatalf("the JWKS was fetched %d times for a refused config", n)
	}
}

// caddy jwt verify --config shows the resource and applies its audience.
func TestResourceCLIVerify(t *testing.T) {
	f := newCLIFixture(t)
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	writeFile(t, cfg, `http://localhost:8080 {
	jwt_auth {
		issuer `+f.issuer+`
		jwks_url `+f.srv.JWKSURL()+`
		resource https://mcp.example.com/mcp
	}
	respond "ok"
}`)
	const line = `resource "https://mcp.example.com/mcp", metadata at https://mcp.example.com/.well-known/oauth-protected-resource/mcp`
	code, out, errOut := cliRun(t, "", "verify", "--config", cfg, f.token(t, func(c map[string]any) { c["aud"] = "https://mcp.example.com/mcp" }))
	if code != 0 || !strings.Contains(out, line+"\n") {
		t.Fatalf("exit %d, want 0 and %q\n%s%s", code, line, out, errOut)
	}
	code, out, _ = cliRun(t, "", "verify", "--config", cfg, f.token(t, func(c map[string]any) { c["aud"] = "api" }))
	if code != 1 || !strings.Contains(out, "wrong_audience") {
		t.Fatalf("token for another audience: exit %d\n%s", code, out)
	}
}

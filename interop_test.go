package jwtauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// Interop with a real, certified OpenID provider: panva's oidc-provider
// (internal/oidcprovider, version pinned in its package.json), run with
// node. Its client-credentials access tokens (ES256, typ at+jwt) must pass
// with only the issuer configured (keys found through discovery), and keep
// passing across a rotation of the provider's keys.

const oidcProviderDir = "internal/oidcprovider"

// oidcProvider is a running internal/oidcprovider/server.js.
type oidcProvider struct {
	issuer string
}

// startOIDCProvider starts the provider, with env ("NAME=value") added to
// its environment, and returns once it serves. A missing node or
// node_modules fails the test: CI installs them (.ci/run runs npm ci), and a
// skipped interop test would prove nothing.
func startOIDCProvider(t *testing.T, env ...string) *oidcProvider {
	t.Helper()
	return &oidcProvider{issuer: startNode(t, oidcProviderDir, "oidc-provider", "READY ", env, "server.js", "0")}
}

// token gets a client-credentials access token.
func (p *oidcProvider) token(t *testing.T) string {
	t.Helper()
	return p.clientCredentials(t, "caddy-interop", "interop-secret-0123456789abcdef",
		url.Values{"scope": {"api:read"}})
}

// clientCredentials runs the client-credentials grant for the client with
// the extra form values and returns the access token.
func (p *oidcProvider) clientCredentials(t *testing.T, clientID, secret string, form url.Values) string {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	req, err := http.NewRequest(http.MethodPost, p.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, body)
	}
	return out.AccessToken
}

// admin calls one of server.js's test hooks and returns the signing kid.
func (p *oidcProvider) admin(t *testing.T, action string) string {
	t.Helper()
	resp, err := http.Post(p.issuer+"/__admin/"+action, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	kid, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", action, resp.StatusCode, kid)
	}
	return string(kid)
}

func TestInteropOIDCProvider(t *testing.T) {
	op := startOIDCProvider(t)
	first := op.token(t)
	tok, err := jose.Decode(first)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Alg != "ES256" || tok.Typ != "at+jwt" || tok.Issuer != op.issuer {
		t.Fatalf("provider token: alg %s typ %s iss %s", tok.Alg, tok.Typ, tok.Issuer)
	}

	// Only the issuer: discovery finds the keys.
	tc := startCaddy(t, fmt.Sprintf("jwt_auth {\n\tissuer %s\n}\nrespond \"hello {http.auth.user.id}\"", op.issuer))
	eventually(t, 10*time.Second, "provider token accepted with only issuer configured", func() bool {
		resp, body := get(t, tc, "/", first)
		return resp.StatusCode == 200 && body == "hello caddy-interop"
	})

	// issuer with an explicit jwks_url (the provider's own, read from its
	// discovery document here only to learn the path).
	tc.InitServer(fmt.Sprintf("%s\n%s {\n\tjwt_auth {\n\t\tissuer %s\n\t\tjwks_url %s\n\t}\n\trespond \"hello {http.auth.user.id}\"\n}\n",
		globalOptions, siteURL, op.issuer, providerJWKSURI(t, op.issuer)), "caddyfile")
	eventually(t, 10*time.Second, "provider token accepted with issuer and jwks_url", func() bool {
		resp, body := get(t, tc, "/", first)
		return resp.StatusCode == 200 && body == "hello caddy-interop"
	})

	// A real policy for this provider, and fast refreshes for the rotation.
	tc.InitServer(fmt.Sprintf(`%s
%s {
	jwt_auth {
		issuer %s
		audience urn:jwtauth:api
		token_type at+jwt
		require scope api:read
		refresh_interval 1s
		min_refresh_interval 1s
	}
	respond "hello {http.auth.user.id}"
}
`, globalOptions, siteURL, op.issuer), "caddyfile")
	eventually(t, 10*time.Second, "provider token accepted under the full policy", func() bool {
		return statusOfToken(t, tc, first) == 200
	})

	// Rotation: a new key signs, the old one stays published for a while.
	oldKid := tok.Kid
	newKid := op.admin(t, "rotate")
	second := op.token(t)
	if k, _ := jose.Decode(second); k == nil || k.Kid != newKid || newKid == oldKid {
		t.Fatalf("rotation did not change the signing key (%s → %s)", oldKid, newKid)
	}
	eventually(t, 10*time.Second, "token of the rotated-in key accepted", func() bool {
		return statusOfToken(t, tc, second) == 200
	})
	if s := statusOfToken(t, tc, first); s != 200 {
		t.Fatalf("token of the still-published old key: %d", s)
	}
	// Retirement: the old key leaves the JWKS; its tokens stop working,
	// new ones keep passing.
	op.admin(t, "retire")
	eventually(t, 10*time.Second, "token of the retired key rejected", func() bool {
		return statusOfToken(t, tc, first) == 401
	})
	if s := statusOfToken(t, tc, op.token(t)); s != 200 {
		t.Fatalf("fresh token after retirement: %d", s)
	}
}

// providerJWKSURI reads jwks_uri from the provider's discovery document.
func providerJWKSURI(t *testing.T, issuer string) string {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.JWKSURI == "" {
		t.Fatalf("discovery document: %v (jwks_uri %q)", err, doc.JWKSURI)
	}
	return doc.JWKSURI
}

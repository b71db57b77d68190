package jwtauth

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// DPoP interop with two independent implementations: oidc-provider
// (internal/oidcprovider, run with DPOP=1) issues a DPoP-bound at+jwt
// (cnf.jkt) to a client that sent a proof to its token endpoint, and
// panva's dpop package (internal/dpoppeer/client.mjs) is that client: it
// holds the key, gets the token and makes the proofs for the requests to a
// real Caddy. jwt_auth must accept the token only with the DPoP scheme and
// a fresh proof of that key for that request.

// dpopClientRequest is one request client.mjs makes a proof for.
type dpopClientRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// dpopClientResult is what client.mjs prints.
type dpopClientResult struct {
	AccessToken string   `json:"accessToken"`
	TokenType   string   `json:"tokenType"`
	JKT         string   `json:"jkt"`
	Proofs      []string `json:"proofs"`
}

// dpopClient runs internal/dpoppeer/client.mjs once against the provider's
// token endpoint as the provider's DPoP client, with a proof per request.
func dpopClient(t *testing.T, op *oidcProvider, requests ...dpopClientRequest) dpopClientResult {
	t.Helper()
	var res dpopClientResult
	runNode(t, dpopPeerDir, "dpop", "client.mjs", map[string]any{
		"alg": "ES256", "tokenEndpoint": op.issuer + "/token",
		"clientId": "dpop-client", "clientSecret": "dpop-secret-0123456789abcdef0123",
		"scope": "api:read", "requests": requests,
	}, &res)
	if len(res.Proofs) != len(requests) {
		t.Fatalf("DPoP client made %d proofs for %d requests", len(res.Proofs), len(requests))
	}
	return res
}

// sendAuth sends GET path with an Authorization header (scheme and token)
// and, when proof is not empty, a DPoP header.
func sendAuth(t *testing.T, client *http.Client, url, authorization, proof string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// challengeFor returns the WWW-Authenticate value of the given scheme.
func challengeFor(resp *http.Response, scheme string) string {
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if s, _, _ := strings.Cut(v, " "); strings.EqualFold(s, scheme) {
			return v
		}
	}
	return ""
}

func TestInteropDPoPBoundProviderTokens(t *testing.T) {
	op := startOIDCProvider(t, "DPOP=1")
	bearer := op.token(t) // the provider's other client: an unbound token
	dc := dpopClient(t, op,
		dpopClientRequest{http.MethodGet, siteURL + "/orders"},
		dpopClientRequest{http.MethodGet, siteURL + "/orders"},
		dpopClientRequest{http.MethodGet, siteURL + "/other"},
		dpopClientRequest{http.MethodPost, siteURL + "/orders"},
	)
	fresh, again, otherURL, otherMethod := dc.Proofs[0], dc.Proofs[1], dc.Proofs[2], dc.Proofs[3]

	// The provider really bound the token to the client's key.
	tok, err := jose.Decode(dc.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	cnf, _ := tok.Claims["cnf"].(map[string]any)
	if dc.TokenType != "DPoP" || tok.Typ != "at+jwt" || cnf["jkt"] != dc.JKT {
		t.Fatalf("provider token: token_type %s, typ %s, cnf %v; want DPoP, at+jwt, jkt %s", dc.TokenType, tok.Typ, cnf, dc.JKT)
	}

	tc := startCaddy(t, fmt.Sprintf(`jwt_auth {
		issuer %s
		audience urn:jwtauth:api
		token_type at+jwt
		dpop allowed
	}
	respond "{http.auth.binding} {http.auth.user.id}"`, op.issuer))
	eventually(t, 10*time.Second, "the provider's keys loaded", func() bool {
		resp, _ := sendAuth(t, tc.Client, siteURL+"/orders", "Bearer "+bearer, "")
		return resp.StatusCode == http.StatusOK
	})

	// An unbound token still passes as a bearer token under dpop allowed.
	if resp, body := sendAuth(t, tc.Client, siteURL+"/orders", "Bearer "+bearer, ""); resp.StatusCode != 200 || body != "bearer caddy-interop" {
		t.Fatalf("unbound bearer token: %d %q", resp.StatusCode, body)
	}
	// The same bound token presented as a bearer token is refused: whoever
	// copied it does not hold the key (RFC 9449 §7.2).
	resp, body := sendAuth(t, tc.Client, siteURL+"/orders", "Bearer "+dc.AccessToken, "")
	assertRejected(t, "bound token as Bearer", resp, body, "bound_token")
	// With the DPoP scheme and the client's proof for this request: passes.
	resp, body = sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+dc.AccessToken, fresh)
	if resp.StatusCode != 200 || body != "dpop dpop-client" {
		t.Fatalf("DPoP token with its proof: %d %q (%s)", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	// A second proof of the same key (new jti) passes too; the first one
	// replayed does not.
	if resp, body := sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+dc.AccessToken, again); resp.StatusCode != 200 {
		t.Fatalf("second proof: %d %q", resp.StatusCode, body)
	}
	resp, body = sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+dc.AccessToken, fresh)
	assertRejected(t, "replayed proof", resp, body, "dpop_replay")
	if c := challengeFor(resp, "DPoP"); !strings.Contains(c, `error="invalid_dpop_proof"`) {
		t.Errorf("replay challenge %q, want a DPoP challenge with invalid_dpop_proof", c)
	}
	// A proof made for another URL or method, or none at all.
	resp, body = sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+dc.AccessToken, otherURL)
	assertRejected(t, "proof for another URL", resp, body, "dpop_proof")
	resp, body = sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+dc.AccessToken, otherMethod)
	assertRejected(t, "proof for another method", resp, body, "dpop_proof")
	resp, body = sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+dc.AccessToken, "")
	assertRejected(t, "DPoP scheme without a proof", resp, body, "dpop_proof")
	// An unbound token with the DPoP scheme is refused (RFC 9449 §7.1).
	resp, body = sendAuth(t, tc.Client, siteURL+"/orders", "DPoP "+bearer, fresh)
	assertRejected(t, "unbound token with the DPoP scheme", resp, body, "dpop_proof")

	// No token: one challenge per accepted scheme, Bearer first.
	resp, _ = sendAuth(t, tc.Client, siteURL+"/orders", "", "")
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || len(got) != 2 ||
		!strings.HasPrefix(got[0], "Bearer ") || !strings.HasPrefix(got[1], "DPoP ") {
		t.Fatalf("no token: %d %q, want Bearer then DPoP challenges", resp.StatusCode, got)
	}
}

// TestInteropDPoPRequiredRefusesProviderBearerTokens: under dpop required
// the provider's unbound token is unbound_token, answered with the DPoP
// challenge, while its DPoP-bound one passes.
func TestInteropDPoPRequiredRefusesProviderBearerTokens(t *testing.T) {
	op := startOIDCProvider(t, "DPOP=1")
	bearer := op.token(t)
	dc := dpopClient(t, op, dpopClientRequest{http.MethodGet, siteURL + "/"})
	tc := startCaddy(t, fmt.Sprintf(`jwt_auth {
		issuer %s
		audience urn:jwtauth:api
		dpop required
	}
	respond "{http.auth.binding}"`, op.issuer))
	var resp *http.Response
	var body string
	eventually(t, 10*time.Second, "the provider's keys loaded", func() bool {
		resp, body = sendAuth(t, tc.Client, siteURL+"/", "Bearer "+bearer, "")
		return resp.Header.Get("Retry-After") == ""
	})
	assertRejected(t, "unbound token under dpop required", resp, body, "unbound_token")
	if c := challengeFor(resp, "DPoP"); !strings.Contains(c, `error="invalid_token"`) {
		t.Errorf("unbound_token challenge %q, want the DPoP challenge", c)
	}
	if resp, body := sendAuth(t, tc.Client, siteURL+"/", "DPoP "+dc.AccessToken, dc.Proofs[0]); resp.StatusCode != 200 || body != "dpop" {
		t.Fatalf("DPoP-bound token under dpop required: %d %q", resp.StatusCode, body)
	}
}

// assertRejected checks a 401 whose reason code is want, in the body
// Caddy writes for an error and in the challenge.
func assertRejected(t *testing.T, what string, resp *http.Response, body string, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s: status %d, want 401 (body %q)", what, resp.StatusCode, body)
		return
	}
	challenges := strings.Join(resp.Header.Values("WWW-Authenticate"), " | ")
	if !strings.Contains(challenges, `error_description="`+want+`"`) {
		t.Errorf("%s: challenge %q, want error_description=%q", what, challenges, want)
	}
}

package jwtauth

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestResourceConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rc      ResourceConfig
		wantErr string // "" = valid
	}{
		{"https with path", ResourceConfig{Resource: "https://mcp.example.com/mcp"}, ""},
		{"https origin only", ResourceConfig{Resource: "https://mcp.example.com"}, ""},
		{"https with port", ResourceConfig{Resource: "https://mcp.example.com:8443/a/b/"}, ""},
		{"http localhost", ResourceConfig{Resource: "http://localhost:9080/mcp"}, ""},
		{"http 127.0.0.1", ResourceConfig{Resource: "http://127.0.0.1/mcp"}, ""},
		{"http [::1]", ResourceConfig{Resource: "http://[::1]:8080/"}, ""},
		{"all block members", ResourceConfig{
			Resource: "https://mcp.example.com/mcp", ScopesSupported: []string{"mcp:read", "mcp:write"},
			ResourceName: "Example MCP", ResourceDocumentation: "https://docs.example.com/mcp",
			ResourcePolicyURI: "http://example.com/policy", ResourceTOSURI: "https://example.com/tos?lang=en",
		}, ""},
		{"empty", ResourceConfig{}, "must not be empty"},
		{"http remote host", ResourceConfig{Resource: "http://mcp.example.com/mcp"}, "must use https"},
		{"other scheme", ResourceConfig{Resource: "ftp://mcp.example.com/mcp"}, "must use https"},
		{"relative", ResourceConfig{Resource: "/mcp"}, "no host"},
		{"opaque", ResourceConfig{Resource: "urn:example:mcp"}, "no host"},
		{"query", ResourceConfig{Resource: "https://mcp.example.com/mcp?x=1"}, "no query"},
		{"empty query", ResourceConfig{Resource: "https://mcp.example.com/mcp?"}, "no query"},
		{"fragment", ResourceConfig{Resource: "https://mcp.example.com/mcp#top"}, "no fragment"},
		{"empty fragment", ResourceConfig{Resource: "https://mcp.example.com/mcp#"}, "no fragment"},
		{"userinfo", ResourceConfig{Resource: "https://user:pw@mcp.example.com/mcp"}, "no userinfo"},
		{"documentation relative", ResourceConfig{Resource: "https://a.example/", ResourceDocumentation: "/docs"}, "resource_documentation"},
		{"policy not http", ResourceConfig{Resource: "https://a.example/", ResourcePolicyURI: "mailto:x@example.com"}, "resource_policy_uri"},
		{"tos no host", ResourceConfig{Resource: "https://a.example/", ResourceTOSURI: "https:///tos"}, "resource_tos_uri"},
		{"scope with space", ResourceConfig{Resource: "https://a.example/", ScopesSupported: []string{"a b"}}, "scope token"},
		{"scope with quote", ResourceConfig{Resource: "https://a.example/", ScopesSupported: []string{`a"`}}, "scope token"},
		{"empty scope", ResourceConfig{Resource: "https://a.example/", ScopesSupported: []string{""}}, "scope token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rc.validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error leaks userinfo: %v", err)
			}
		})
	}
}

func TestResourceMetadataURL(t *testing.T) {
	for _, tc := range []struct{ resource, want, path string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/", "https://mcp.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/a/b/", "https://mcp.example.com/.well-known/oauth-protected-resource/a/b/", "/.well-known/oauth-protected-resource/a/b/"},
		{"http://localhost:9080/mcp", "http://localhost:9080/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"HTTPS://mcp.example.com:443/mcp", "https://mcp.example.com:443/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/a%2Fb", "https://mcp.example.com/.well-known/oauth-protected-resource/a%2Fb", "/.well-known/oauth-protected-resource/a/b"},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			p, err := newProtectedResource(&ResourceConfig{Resource: tc.resource}, resourceInputs{})
			if err != nil {
				t.Fatal(err)
			}
			if p.metadataURL != tc.want || p.path != tc.path {
				t.Fatalf("metadata URL %q path %q, want %q %q", p.metadataURL, p.path, tc.want, tc.path)
			}
		})
	}
}

func TestResourceDocument(t *testing.T) {
	const res = "https://mcp.example.com/mcp"
	issuers := []string{"https://b.example.com", "https://a.example.com"}
	authz := []any{"https://b.example.com", "https://a.example.com"}
	for _, tc := range []struct {
		name string
		rc   ResourceConfig
		in   resourceInputs
		want map[string]any
	}{
		{
			name: "minimal: default source",
			rc:   ResourceConfig{Resource: res},
			in:   resourceInputs{Issuers: issuers, Sources: defaultSources},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header"}},
		},
		{
			name: "resource kept byte for byte",
			rc:   ResourceConfig{Resource: "HTTPS://MCP.example.com:443"},
			in:   resourceInputs{Issuers: issuers[:1], Sources: defaultSources},
			want: map[string]any{"resource": "HTTPS://MCP.example.com:443", "authorization_servers": authz[:1], "bearer_methods_supported": []any{"header"}},
		},
		{
			name: "header in any case, query access_token",
			rc:   ResourceConfig{Resource: res},
			in: resourceInputs{Issuers: issuers, Sources: []TokenSource{
				{Cookie: "session"}, {Query: "access_token"}, {Header: "authorization", Scheme: "Bearer"}, {Header: "X-Token"},
			}},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header", "query"}},
		},
		{
			name: "cookie, other header and other query are not RFC 6750 methods",
			rc:   ResourceConfig{Resource: res},
			in:   resourceInputs{Issuers: issuers, Sources: []TokenSource{{Cookie: "t"}, {Header: "X-Token"}, {Query: "token"}}},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{}},
		},
		{
			name: "scopes from require scope and scp rules, each once, others ignored",
			rc:   ResourceConfig{Resource: res},
			in: resourceInputs{Issuers: issuers, Sources: defaultSources, Require: []ClaimRule{
				{Claim: "scope", Values: []string{"mcp:read", "mcp:tools"}}, {Claim: "roles", Values: []string{"admin"}},
				{Claim: "scp", Values: []string{"mcp:tools", "mcp:write"}},
			}},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header"},
				"scopes_supported": []any{"mcp:read", "mcp:tools", "mcp:write"}},
		},
		{
			name: "block scopes replace the rules' scopes",
			rc:   ResourceConfig{Resource: res, ScopesSupported: []string{"a", "b"}},
			in:   resourceInputs{Issuers: issuers, Sources: defaultSources, Require: []ClaimRule{{Claim: "scope", Values: []string{"c"}}}},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header"},
				"scopes_supported": []any{"a", "b"}},
		},
		{
			name: "every block member, dpop required, mtls",
			rc: ResourceConfig{Resource: res, ResourceName: "Tools & <more>", ResourceDocumentation: "https://docs.example.com/?a=1&b=2",
				ResourcePolicyURI: "https://example.com/policy", ResourceTOSURI: "https://example.com/tos"},
			in: resourceInputs{Issuers: issuers, Sources: defaultSources, DPoPAlgorithms: []string{"ES256", "EdDSA"}, DPoPRequired: true, MTLS: true},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header"},
				"resource_name": "Tools & <more>", "resource_documentation": "https://docs.example.com/?a=1&b=2",
				"resource_policy_uri": "https://example.com/policy", "resource_tos_uri": "https://example.com/tos",
				"dpop_signing_alg_values_supported": []any{"ES256", "EdDSA"}, "dpop_bound_access_tokens_required": true,
				"tls_client_certificate_bound_access_tokens": true},
		},
		{
			name: "dpop allowed: algorithms only",
			rc:   ResourceConfig{Resource: res},
			in:   resourceInputs{Issuers: issuers, Sources: defaultSources, DPoPAlgorithms: []string{"ES256"}},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header"},
				"dpop_signing_alg_values_supported": []any{"ES256"}},
		},
		{
			name: "dpop off: required flag without algorithms means nothing",
			rc:   ResourceConfig{Resource: res},
			in:   resourceInputs{Issuers: issuers, Sources: defaultSources, DPoPRequired: true},
			want: map[string]any{"resource": res, "authorization_servers": authz, "bearer_methods_supported": []any{"header"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newProtectedResource(&tc.rc, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(p.document, &got); err != nil {
				t.Fatalf("document is not JSON: %v\n%s", err, p.document)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("document members:\n got %v\nwant %v\nkeys got %v", got, tc.want, slices.Sorted(maps.Keys(got)))
			}
		})
	}
}

// The document is encoded once: changing the configuration afterwards
// changes nothing that is served.
func TestResourceDocumentPreparedOnce(t *testing.T) {
	rc := &ResourceConfig{Resource: "https://mcp.example.com/mcp", ScopesSupported: []string{"a"}}
	in := resourceInputs{Issuers: []string{"https://auth.example.com"}, Sources: defaultSources}
	p, err := newProtectedResource(rc, in)
	if err != nil {
		t.Fatal(err)
	}
	before := string(p.document)
	rc.Resource, rc.ScopesSupported[0] = "https://evil.example.com", "b"
	in.Issuers[0] = "https://evil.example.com"
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p.path, nil))
	if w.Body.String() != before || strings.Contains(before, "evil") {
		t.Fatalf("served %s, prepared %s", w.Body.String(), before)
	}
}

func TestResourceServeHTTP(t *testing.T) {
	p, err := newProtectedResource(&ResourceConfig{Resource: "https://mcp.example.com/mcp"},
		resourceInputs{Issuers: []string{"https://auth.example.com"}, Sources: defaultSources})
	if err != nil {
		t.Fatal(err)
	}
	const path = "/.well-known/oauth-protected-resource/mcp"
	doc := string(p.document)
	for _, tc := range []struct {
		name       string
		method     string
		target     string
		header     map[string]string
		match      bool
		status     int
		wantHeader map[string]string // "" = must be absent
		body       string
	}{
		{name: "GET", method: "GET", target: path, match: true, status: 200, body: doc, wantHeader: map[string]string{
			"Content-Type": "application/json", "Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*", "Allow": "",
		}},
		{name: "GET with query", method: "GET", target: path + "?x=1", match: true, status: 200, body: doc},
		{name: "GET cross-origin", method: "GET", target: path, header: map[string]string{"Origin": "https://app.example"}, match: true, status: 200, body: doc,
			wantHeader: map[string]string{"Access-Control-Allow-Origin": "*"}},
		{name: "HEAD", method: "HEAD", target: path, match: true, status: 200, body: "", wantHeader: map[string]string{
			"Content-Type": "application/json", "Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*",
		}},
		{name: "preflight", method: "OPTIONS", target: path, match: true, status: 204,
			header: map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "mcp-protocol-version"},
			wantHeader: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
				"Access-Control-Allow-Headers": "*", "Allow": "GET, HEAD, OPTIONS", "Content-Type": ""}},
		{name: "plain OPTIONS", method: "OPTIONS", target: path, match: true, status: 204,
			wantHeader: map[string]string{"Allow": "GET, HEAD, OPTIONS", "Access-Control-Allow-Methods": ""}},
		{name: "POST", method: "POST", target: path, match: true, status: 405, body: "",
			wantHeader: map[string]string{"Allow": "GET, HEAD, OPTIONS", "Content-Type": ""}},
		{name: "PUT", method: "PUT", target: path, match: true, status: 405, wantHeader: map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "DELETE", method: "DELETE", target: path, match: true, status: 405, wantHeader: map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "trailing slash", method: "GET", target: path + "/", match: false},
		{name: "prefix only", method: "GET", target: "/.well-known/oauth-protected-resource", match: false},
		{name: "longer path", method: "GET", target: path + "/x", match: false},
		{name: "other case", method: "GET", target: "/.well-known/oauth-protected-resource/MCP", match: false},
		{name: "resource itself", method: "GET", target: "/mcp", match: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if got := p.matches(r); got != tc.match {
				t.Fatalf("matches = %v, want %v", got, tc.match)
			}
			if !tc.match {
				return
			}
			srv := httptest.NewServer(p)
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 || tc.status == 405 {
				if string(body) != tc.body {
					t.Fatalf("body %q, want %q", body, tc.body)
				}
			}
			for k, want := range tc.wantHeader {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if tc.method == "HEAD" && resp.ContentLength != int64(len(doc)) {
				t.Errorf("HEAD Content-Length %d, want %d", resp.ContentLength, len(doc))
			}
		})
	}
}

func TestResourceDecoratesChallenges(t *testing.T) {
	const md = `Bearer realm="h", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
	for _, tc := range []struct {
		name   string
		rules  []ClaimRule
		status int
		want   string
	}{
		{"401 without scope rules", []ClaimRule{{Claim: "roles", Values: []string{"x"}}}, 401, md},
		{"401 with scope rules", []ClaimRule{{Claim: "scope", Values: []string{"a", "b"}}, {Claim: "scp", Values: []string{"b", "c"}}}, 401, md + `, scope="a b c"`},
		{"403 names no scope itself", []ClaimRule{{Claim: "scope", Values: []string{"a"}}}, 403, md},
		{"400", []ClaimRule{{Claim: "scope", Values: []string{"a"}}}, 400, md},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newProtectedResource(&ResourceConfig{Resource: "https://mcp.example.com/mcp"}, resourceInputs{Require: tc.rules})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.decorate(bearerChallenge("h"), tc.status).String(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

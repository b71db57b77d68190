package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// The README's "Protect an MCP server" recipe end to end: a real OAuth
// authorization server (oidc-provider, issuing RFC 8707 audience-restricted
// at+jwt tokens), an MCP server and an MCP client both built with the
// official MCP TypeScript SDK (internal/mcpinterop, versions pinned in its
// package-lock.json), and Caddy with jwt_auth in between. The client is
// given only the URL and its client credentials.

const mcpInteropDir = "internal/mcpinterop"

// mcpRecipe is the README's recipe verbatim (TestReadmeShowsMCPRecipe).
const mcpRecipe = `mcp.example.com {
	jwt_auth {
		issuer https://auth.example.com
		resource https://mcp.example.com/mcp
		require scope mcp:tools
	}
	reverse_proxy localhost:8000 {
		header_up X-User {http.auth.user.id}
	}
}
`

// The MCP client of server.js (MCP_RESOURCES mode).
const (
	mcpClientID     = "mcp-client"
	mcpClientSecret = "mcp-secret-0123456789abcdef0123"
)

func TestReadmeShowsMCPRecipe(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```caddyfile\n"+mcpRecipe+"```\n") {
		t.Errorf("README.md does not show the MCP recipe verbatim:\n%s", mcpRecipe)
	}
}

// startMCPServer runs internal/mcpinterop/server.mjs and returns its address.
func startMCPServer(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + startNode(t, mcpInteropDir, "@modelcontextprotocol/sdk", "listening ", nil, "server.mjs", "0")
}

// mcpClientResult is client.mjs's output line.
type mcpClientResult struct {
	Tools         []string `json:"tools"`
	Whoami        string   `json:"whoami"`
	TokenRequests int      `json:"token_requests"`
	Resource      string   `json:"resource"`
	MetadataURL   string   `json:"metadata_url"`
}

// runMCPClient runs internal/mcpinterop/client.mjs against url, with the
// client's registered issuer and scope.
func runMCPClient(t *testing.T, url, issuer, scope string) mcpClientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeFor(t, mcpInteropDir, "@modelcontextprotocol/sdk"), "client.mjs", url, mcpClientID, mcpClientSecret, issuer, scope)
	cmd.Dir = mcpInteropDir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("MCP client failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var res mcpClientResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("MCP client output: %v\n%s", err, stdout.String())
	}
	return res
}

// tokenFor gets a client-credentials token of the MCP client for resource
// (RFC 8707), with scope when not empty.
func (p *oidcProvider) tokenFor(t *testing.T, resource, scope string) string {
	t.Helper()
	form := url.Values{"resource": {resource}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return p.clientCredentials(t, mcpClientID, mcpClientSecret, form)
}

// mcpPost sends an MCP initialize request to /mcp with the token, as an
// MCP client's first request would be.
func mcpPost(t *testing.T, tc *caddytest.Tester, token string) (*http.Response, string) {
	t.Helper()
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"go-test","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, siteURL+"/mcp", strings.NewReader(initialize))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := tc.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestMCPInterop(t *testing.T) {
	const resource = siteURL + "/mcp"
	const other = siteURL + "/other"
	const metadataURL = siteURL + "/.well-known/oauth-protected-resource/mcp"
	op := startOIDCProvider(t, "MCP_RESOURCES="+resource+" "+other)
	upstream := startMCPServer(t)

	cfg := strings.NewReplacer(
		"https://mcp.example.com/mcp", resource,
		"mcp.example.com {", siteURL+" {",
		"https://auth.example.com", op.issuer,
		"localhost:8000", upstream,
	).Replace(mcpRecipe)
	tc := caddytest.NewTester(t)
	tc.InitServer(globalOptions+"\n"+cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	good := op.tokenFor(t, resource, "mcp:tools")
	eventually(t, 10*time.Second, "provider keys loaded through discovery", func() bool {
		resp, _ := mcpPost(t, tc, good)
		return resp.StatusCode == http.StatusOK
	})

	// What the client starts from: the 401 and the document it points to.
	resp, body := mcpPost(t, tc, "")
	wantChallenge := `Bearer realm="localhost", resource_metadata="` + metadataURL + `", scope="mcp:tools"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != wantChallenge {
		t.Fatalf("no token: %d %q %s, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, wantChallenge)
	}
	resp, body = get(t, tc, "/.well-known/oauth-protected-resource/mcp", "")
	wantDoc := `{"resource":"` + resource + `","authorization_servers":["` + op.issuer + `"],"bearer_methods_supported":["header"],"scopes_supported":["mcp:tools"],` +
		`"dpop_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","RS256","RS384","RS512","EdDSA","Ed25519"]}` + "\n"
	if resp.StatusCode != 200 || body != wantDoc {
		t.Fatalf("metadata: %d %s, want %s", resp.StatusCode, body, wantDoc)
	}

	// The official SDK client discovers everything from the 401, gets a
	// token for the resource and uses the tool through Caddy.
	res := runMCPClient(t, resource, op.issuer, "mcp:tools")
	want := mcpClientResult{Tools: []string{"whoami"}, Whoami: mcpClientID, TokenRequests: 1, Resource: resource, MetadataURL: metadataURL}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("MCP client: %+v, want %+v", res, want)
	}

	// A token of the same issuer for another resource is refused.
	resp, body = mcpPost(t, tc, op.tokenFor(t, other, "mcp:tools"))
	wantChallenge = `Bearer realm="localhost", error="invalid_token", error_description="wrong_audience", resource_metadata="` + metadataURL + `", scope="mcp:tools"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != wantChallenge {
		t.Fatalf("token for %s: %d %q %s, want 401 %q", other, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, wantChallenge)
	}
	// A token for this resource without the scope: 403 naming it.
	resp, body = mcpPost(t, tc, op.tokenFor(t, resource, ""))
	wantChallenge = `Bearer realm="localhost", error="insufficient_scope", error_description="claim_mismatch", scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	if resp.StatusCode != 403 || resp.Header.Get("WWW-Authenticate") != wantChallenge {
		t.Fatalf("token without scope: %d %q %s, want 403 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, wantChallenge)
	}
}

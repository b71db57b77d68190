// An MCP client built with the official MCP TypeScript SDK, for the jwt_auth
// MCP end-to-end test (mcp_interop_test.go). It is configured with nothing
// but the MCP server's URL and its OAuth client credentials: everything else
// it discovers the way the MCP authorization spec says, from the server's
// 401 alone (WWW-Authenticate resource_metadata → RFC 9728 protected
// resource metadata → RFC 8414 / OpenID authorization server metadata →
// token endpoint), then requests a client-credentials token for the
// resource (RFC 8707), lists the tools and calls whoami.
//
// Usage: node client.mjs <url> <client_id> <client_secret> <expected_issuer> [<scope>]
//   (or MCP_URL, MCP_CLIENT_ID, MCP_CLIENT_SECRET, MCP_EXPECTED_ISSUER, MCP_SCOPE).
// expected_issuer is not a discovery input: the SDK refuses to send the
// credentials to any other authorization server than the one they were
// issued by, whatever the resource metadata names. scope is part of the
// client's registration too: for the client-credentials grant the SDK
// requests only the provider's configured scope (it uses the challenge's
// scope and scopes_supported for the authorization-code flow only).
// Prints one JSON line {"tools":[...],"whoami":"...","token_requests":n,
// "resource":"...","metadata_url":"..."} and exits 0; on any failure it
// prints the error and exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, clientSecret, expectedIssuer, scope] = [
  process.argv[2] ?? process.env.MCP_URL,
  process.argv[3] ?? process.env.MCP_CLIENT_ID,
  process.argv[4] ?? process.env.MCP_CLIENT_SECRET,
  process.argv[5] ?? process.env.MCP_EXPECTED_ISSUER,
  process.argv[6] ?? process.env.MCP_SCOPE,
];

// observe records what the SDK fetched, to report how it discovered (the
// requests themselves are the SDK's own, unchanged).
const seen = { tokenRequests: 0, resource: '', metadataUrl: '' };
async function observe(input, init) {
  const target = String(input instanceof Request ? input.url : input);
  if (target.includes('/.well-known/oauth-protected-resource')) {
    seen.metadataUrl = target;
  }
  if (init?.method === 'POST' && init.body instanceof URLSearchParams && init.body.get('grant_type') === 'client_credentials') {
    seen.tokenRequests++;
    seen.resource = init.body.get('resource') ?? '';
  }
  return fetch(input, init);
}

async function main() {
  if (!url || !clientId || !clientSecret || !expectedIssuer) {
    throw new Error('usage: node client.mjs <url> <client_id> <client_secret> <expected_issuer> [<scope>]');
  }
  const authProvider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer, scope });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider, fetch: observe });
  const client = new Client({ name: 'jwtauth-mcp-interop-client', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  await transport.close();
  if (result.isError) {
    throw new Error(`whoami failed: ${JSON.stringify(result.content)}`);
  }
  console.log(JSON.stringify({
    tools: tools.map((t) => t.name),
    whoami: result.content.map((c) => c.text).join(''),
    token_requests: seen.tokenRequests,
    resource: seen.resource,
    metadata_url: seen.metadataUrl,
  }));
}

main().then(() => process.exit(0), (err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});

// A real, certified OpenID provider (panva/node-oidc-provider) for the
// jwt_auth interop test (interop_test.go). It listens on 127.0.0.1 (port
// from argv[2], 0 = any), prints "READY <issuer>" once it serves, and issues
// client-credentials access tokens as JWTs (ES256, typ at+jwt) through the
// resource indicators feature.
//
// MCP_RESOURCES (space-separated URLs, unset by default) adds protected
// resources for the MCP end-to-end test (mcp_interop_test.go): a token
// requested with one of them as its RFC 8707 `resource` gets exactly that
// string as its `aud`, with the scope mcp:tools; and the client `mcp-client`
// may ask for them. Without it the provider behaves as before.
//
// DPOP=1 (unset by default) turns on the provider's DPoP feature (RFC 9449)
// for the DPoP interop test (dpop_interop_test.go): a token request that
// carries a DPoP proof gets a DPoP-bound token (token_type DPoP, cnf.jkt in
// the JWT), and the client `dpop-client` must send one (its
// dpop_bound_access_tokens metadata). Without it DPoP is off and every
// token is a bearer token.
//
// Test-only admin hooks, outside the provider's routes:
//   POST /__admin/rotate  adds a new ES256 key in front (it signs from now on)
//                         and keeps the previous ones published, the way an
//                         IdP rotates without breaking tokens in flight;
//   POST /__admin/retire  unpublishes every key but the newest.
// Both answer with the signing kid. Keys cannot be changed on a running
// Provider, so each change builds a new one with the same issuer, clients
// and settings and swaps it in; the HTTP server and port stay.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

export const client = {
  client_id: 'caddy-interop',
  client_secret: 'interop-secret-0123456789abcdef',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

export const resource = 'urn:jwtauth:api';

export const mcpClient = {
  client_id: 'mcp-client',
  client_secret: 'mcp-secret-0123456789abcdef0123',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

export const dpopClient = {
  client_id: 'dpop-client',
  client_secret: 'dpop-secret-0123456789abcdef0123',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  dpop_bound_access_tokens: true,
};

const dpop = process.env.DPOP === '1';

const mcpResources = (process.env.MCP_RESOURCES || '').split(' ').filter(Boolean);

// resourceServer describes what a token for `indicator` looks like: the
// interop API, or (with MCP_RESOURCES) an MCP resource whose audience is the
// indicator itself, byte for byte.
function resourceServer(indicator) {
  const common = { accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
  if (indicator === resource) {
    return { ...common, scope: 'api:read api:write', audience: resource };
  }
  if (mcpResources.includes(indicator)) {
    return { ...common, scope: 'mcp:tools', audience: indicator };
  }
  throw new errors.InvalidTarget();
}

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `es256-${randomUUID()}`, alg: 'ES256', use: 'sig' };
}

function buildProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    clients: [client, ...(mcpResources.length ? [mcpClient] : []), ...(dpop ? [dpopClient] : [])],
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      dPoP: { enabled: dpop, requireNonce: () => false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => resourceServer(indicator),
      },
    },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    enabledJWA: { idTokenSigningAlgValues: ['ES256'], dPoPSigningAlgValues: ['ES256', 'PS256', 'EdDSA'] },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

const keys = [newSigningKey()];
let callback = null;

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__admin/rotate') {
    keys.unshift(newSigningKey());
    return swap(res);
  }
  if (req.method === 'POST' && req.url === '/__admin/retire') {
    keys.splice(1);
    return swap(res);
  }
  return callback(req, res);
});

function swap(res) {
  callback = buildProvider(issuer, keys).callback();
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(keys[0].kid);
}

let issuer = '';
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  callback = buildProvider(issuer, keys).callback();
  console.log(`READY ${issuer}`);
});

// The Go test kills the process; also leave when its stdin closes, so a
// crashed test never leaves a provider behind.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

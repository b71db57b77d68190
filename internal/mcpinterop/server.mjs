// An MCP server built with the official MCP TypeScript SDK, for the jwt_auth
// MCP end-to-end test (mcp_interop_test.go). It has no authorization code at
// all: jwt_auth in front of it (Caddy) is the OAuth protected resource.
//
// Usage: node server.mjs [port]   (or MCP_PORT; 0 = any free port)
// It listens on 127.0.0.1, serves the Streamable HTTP transport at /mcp in
// stateless mode, and prints "listening <port>" once ready.
//
// Its one tool, whoami, answers with the X-User request header, which only
// the proxy sets (from the verified token's subject): a tool result naming
// the client proves the request came through jwt_auth.
import { createServer } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

function newServer() {
  const server = new McpServer({ name: 'jwtauth-mcp-interop', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Names the caller, as the proxy in front of this server verified it (X-User header).' },
    async (extra) => {
      const user = extra.requestInfo?.headers?.['x-user'] ?? '';
      return { content: [{ type: 'text', text: user }] };
    },
  );
  return server;
}

const http = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (path !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  if (req.method !== 'POST') {
    // Stateless: no server-initiated stream (GET) and no session (DELETE).
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (err) {
    console.error('mcp request failed:', err);
    if (!res.headersSent) {
      res.writeHead(500).end();
    }
  }
});

http.listen(Number(process.argv[2] ?? process.env.MCP_PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${http.address().port}`);
});

// Leave when the parent test goes away, also if it crashed.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

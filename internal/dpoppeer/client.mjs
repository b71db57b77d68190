// A real DPoP client for the jwt_auth interop test (dpop_interop_test.go):
// with panva's dpop package it (a) gets a DPoP-bound access token from an
// OAuth token endpoint (client credentials, RFC 9449 §5: the token request
// carries a proof), and (b) makes one proof per listed request to a
// resource server, each with the ath of that token (RFC 9449 §4.2).
//
// stdin:  {"alg": "ES256", "tokenEndpoint": "http://...", "clientId": "...",
//          "clientSecret": "...", "scope": "...",
//          "requests": [{"method": "GET", "url": "http://..."}, ...]}
// stdout: {"accessToken": "...", "tokenType": "DPoP", "jkt": "...",
//          "proofs": ["...", ...]}
//
// The key pair is fresh for every run and never leaves this process.
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const keypair = await generateKeyPair(req.alg)

const tokenProof = await generateProof(keypair, req.tokenEndpoint, 'POST')
const basic = Buffer.from(`${encodeURIComponent(req.clientId)}:${encodeURIComponent(req.clientSecret)}`).toString('base64')
const res = await fetch(req.tokenEndpoint, {
  method: 'POST',
  headers: {
    authorization: `Basic ${basic}`,
    'content-type': 'application/x-www-form-urlencoded',
    dpop: tokenProof,
  },
  body: new URLSearchParams({ grant_type: 'client_credentials', scope: req.scope }),
})
const body = await res.json()
if (res.status !== 200) {
  process.stderr.write(`token endpoint: ${res.status} ${JSON.stringify(body)}\n`)
  process.exit(1)
}

const proofs = []
for (const r of req.requests || []) {
  proofs.push(await generateProof(keypair, r.url, r.method, undefined, body.access_token))
}

process.stdout.write(JSON.stringify({
  accessToken: body.access_token,
  tokenType: body.token_type,
  jkt: await calculateThumbprint(keypair.publicKey),
  proofs,
}) + '\n')

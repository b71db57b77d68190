// A real DPoP client for the jwt_auth peer test (dpop_peer_test.go): panva's
// dpop package, on the runtime's WebCrypto, makes one RFC 9449 proof.
//
// stdin:  {"alg": "ES256", "method": "GET", "url": "https://...",
//          "accessToken": "...", "nonce": "..."}   (nonce optional)
// stdout: {"proof": "...", "jkt": "...", "publicJwk": {...}}
//
// The key pair is fresh for every run and never leaves this process.
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const keypair = await generateKeyPair(req.alg)
const proof = await generateProof(keypair, req.url, req.method, req.nonce, req.accessToken)
const jkt = await calculateThumbprint(keypair.publicKey)
const { kty, crv, e, n, x, y } = await crypto.subtle.exportKey('jwk', keypair.publicKey)

process.stdout.write(JSON.stringify({ proof, jkt, publicJwk: { kty, crv, e, n, x, y } }) + '\n')

package jwtauth

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// dpopProofType is the only typ a proof may have (RFC 9449 §4.2).
const dpopProofType = "dpop+jwt"

// maxDPoPProofSize bounds the DPoP header before it is decoded: a proof is
// a header with one public key, five short claims and a signature, under
// 3 KiB even with a 4096-bit RSA key.
const maxDPoPProofSize = 8 << 10

// maxJTILength bounds the proof's jti. RFC 9449 §4.2 asks for at least 96
// bits of randomness; 256 bytes leaves room for any encoding of that.
const maxJTILength = 256

// privateJWKMembers are the JWK members that carry private key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). A proof's jwk must hold a
// public key only (RFC 9449 §4.3 check 7).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// dpopHeader returns the request's single DPoP header line. Zero lines or
// several, identical or not, are refused (RFC 9449 §4.3 check 1): with two
// proofs there is no telling which one the client meant.
func dpopHeader(r *http.Request) (string, error) {
	lines := r.Header.Values("DPoP")
	switch {
	case len(lines) == 0:
		return "", reject(ReasonDPoPProof, "no DPoP header")
	case len(lines) > 1:
		return "", reject(ReasonDPoPProof, "%d DPoP header lines, want exactly one", len(lines))
	case lines[0] == "":
		return "", reject(ReasonDPoPProof, "empty DPoP header")
	}
	return lines[0], nil
}

// dpopCheck holds what checking one proof needs. It depends on no handler
// state, so the verifier, the CLI and tests call it alike.
type dpopCheck struct {
	Proof       string   // the DPoP header value
	Method      string   // the request method, compared with htm
	URL         string   // the request URL (dpopRequestURL), compared with htu
	AccessToken string   // the token presented with the proof, hashed into ath
	JKT         string   // the token's cnf.jkt
	Algorithms  []string // dpop_algorithms; symmetric ones are refused regardless
	MaxAge      time.Duration
	Leeway      time.Duration
	Now         time.Time
	Nonces      *dpopNonces   // nil when no server nonce is demanded
	Replay      *replayMemory // the handler's replay memory
	// Keys, when set, remembers the public keys of accepted proofs so a
	// client reusing its key is not imported again (dpop_keycache.go);
	// nil imports every proof's jwk.
	Keys *proofKeyCache
	// ReplayFull, when set, is called when the replay memory refuses a
	// proof for want of room, so the caller can log a warning.
	ReplayFull func()
}

// verifyDPoPProof checks a DPoP proof against the request and the token it
// comes with (RFC 9449 §4.3) and returns the thumbprint of the proof's key.
// The first failure decides: every failure is ReasonDPoPProof except a
// missing or stale nonce (ReasonDPoPNonce) and a replay (ReasonDPoPReplay).
// The replay memory is consulted last, so a proof that fails any other
// check is never remembered and cannot crowd out honest ones.
func verifyDPoPProof(c *dpopCheck) (string, error) {
	if len(c.Proof) > maxDPoPProofSize {
		return "", reject(ReasonDPoPProof, "proof larger than %d bytes", maxDPoPProofSize)
	}
	p, err := decodeProof(c.Proof)
	if err != nil {
		return "", reject(ReasonDPoPProof, "proof: %v", rejectionDetail(err))
	}
	if p.typ != dpopProofType {
		return "", reject(ReasonDPoPProof, "typ %.32q is not %s", p.typ, dpopProofType)
	}
	if !slices.Contains(c.Algorithms, p.alg) || isSymmetricAlg(p.alg) {
		return "", reject(ReasonDPoPProof, "alg %s is not an allowed proof algorithm", p.alg)
	}
	key, jkt, imported, err := c.proofKey(p)
	if err != nil {
		return "", err
	}
	if !verifyProofSignature(p, key) {
		return "", reject(ReasonDPoPProof, "bad proof signature")
	}
	jti, err := c.checkClaims(p.claims)
	if err != nil {
		return "", err
	}
	if jkt != c.JKT {
		return "", reject(ReasonDPoPProof, "proof key thumbprint does not match the token's cnf.jkt")
	}
	switch c.Replay.seen(newReplayKey(jkt, jti), c.Now) {
	case replaySeen:
		return "", reject(ReasonDPoPReplay, "proof already used")
	case replayFull:
		if c.ReplayFull != nil {
			c.ReplayFull()
		}
		return "", reject(ReasonDPoPReplay, "replay memory full")
	}
	if imported {
		// Only now: the key is bound to a verified token and has
		// signed an accepted proof.
		c.Keys.put(jkt, key)
	}
	return jkt, nil
}

// proofKey returns the header's jwk as a public key with its RFC 7638
// thumbprint. The key must be public, usable (the same rules as keys in a
// key set: RSA ≥ 2048 bits, EC on its curve) and fit the proof's alg.
// imported reports a key that was imported rather than found in c.Keys and
// may be stored there once the proof is accepted.
func (c *dpopCheck) proofKey(p *decodedProof) (key crypto.PublicKey, jkt string, imported bool, err error) {
	member, ok := p.header["jwk"].(map[string]any)
	if !ok {
		return nil, "", false, reject(ReasonDPoPProof, "header jwk is missing or not an object")
	}
	// Before any cache lookup: a jwk with private parts is refused even
	// when its public members are those of a remembered key.
	for _, name := range privateJWKMembers {
		if _, ok := member[name]; ok {
			return nil, "", false, reject(ReasonDPoPProof, "header jwk has private member %q", name)
		}
	}
	if jkt, err = jose.Thumbprint(member); err != nil {
		return nil, "", false, reject(ReasonDPoPProof, "header jwk: %v", err)
	}
	cacheable := c.Keys != nil && jose.ThumbprintCovers(member)
	found := false
	if cacheable {
		key, found = c.Keys.get(jkt)
	}
	if !found {
		if key, err = importProofKey(member); err != nil {
			return nil, "", false, err
		}
		imported = cacheable
	}
	// After the lookup: the key is bound to its alg, not to the first
	// proof it came with.
	if !jose.Fits(key, p.alg) {
		return nil, "", false, reject(ReasonDPoPProof, "header jwk does not fit alg %s", p.alg)
	}
	return key, jkt, imported, nil
}

// importProofKey imports a proof's jwk with the same importer and usability
// rules as keys in a key set; a symmetric key cannot prove possession, so
// HMAC is never admitted.
func importProofKey(member map[string]any) (crypto.PublicKey, error) {
	raw, err := json.Marshal(member)
	if err != nil {
		return nil, reject(ReasonDPoPProof, "header jwk: %v", err)
	}
	key, _, err := keyimport.ImportJWK(raw, keyimport.ImportOptions{})
	if err != nil {
		return nil, reject(ReasonDPoPProof, "header jwk: %v", err)
	}
	return key.Public, nil
}

// checkClaims runs the claim checks of RFC 9449 §4.3 (checks 3, 8–12) and
// returns the jti for the replay memory.
func (c *dpopCheck) checkClaims(claims map[string]any) (string, error) {
	jti, ok := claims["jti"].(string)
	if !ok || jti == "" || len(jti) > maxJTILength {
		return "", reject(ReasonDPoPProof, "jti must be a string of 1 to %d bytes", maxJTILength)
	}
	if htm, ok := claims["htm"].(string); !ok || htm != c.Method {
		return "", reject(ReasonDPoPProof, "htm does not match the request method")
	}
	if htu, ok := claims["htu"].(string); !ok || !htuMatches(htu, c.URL) {
		return "", reject(ReasonDPoPProof, "htu does not match the request URL")
	}
	iat, present, err := numericDate(claims, "iat")
	if err != nil {
		return "", reject(ReasonDPoPProof, "%v", rejectionDetail(err))
	}
	if !present {
		return "", reject(ReasonDPoPProof, "no iat")
	}
	if iat.Before(c.Now.Add(-c.MaxAge - c.Leeway)) {
		return "", reject(ReasonDPoPProof, "iat %s is older than dpop_max_age", utc(iat))
	}
	if iat.After(c.Now.Add(c.Leeway)) {
		return "", reject(ReasonDPoPProof, "iat %s is in the future", utc(iat))
	}
	if c.Nonces != nil {
		nonce, _ := claims["nonce"].(string)
		if !c.Nonces.valid(nonce, c.Now) {
			return "", reject(ReasonDPoPNonce, "proof has no current server nonce")
		}
	}
	if ath, ok := claims["ath"].(string); !ok || !athMatches(ath, c.AccessToken) {
		return "", reject(ReasonDPoPProof, "ath does not match the access token")
	}
	return jti, nil
}

// athLen is the length of an ath: SHA-256 in unpadded base64url.
const athLen = 43

// accessTokenHash is the proof's ath for token (RFC 9449 §4.2).
func accessTokenHash(token string) string {
	var buf [athLen]byte
	return string(encodeAccessTokenHash(&buf, token))
}

// athMatches reports whether ath is the hash of token, without allocating.
func athMatches(ath, token string) bool {
	var buf [athLen]byte
	return len(ath) == athLen && string(encodeAccessTokenHash(&buf, token)) == ath
}

func encodeAccessTokenHash(buf *[athLen]byte, token string) []byte {
	sum := sha256.Sum256([]byte(token))
	base64.RawURLEncoding.Encode(buf[:], sum[:])
	return buf[:]
}

// rejectionDetail is the detail of a rejection from a shared check, whose
// own reason code does not apply to a proof.
func rejectionDetail(err error) string {
	if rej, ok := err.(*Rejection); ok && rej.Detail != "" {
		return rej.Detail
	}
	return err.Error()
}

// The adapters below are the only places the proof check touches the JOSE
// primitives shared with token verification: the same strict decoder, the
// same signature code and the same key rules, so a proof is never held to
// weaker rules than a token.

// decodedProof is what the proof check needs from a decoded JWS.
type decodedProof struct {
	alg, typ       string
	header, claims map[string]any
	signingInput   string
	signature      []byte
}

// decodeProof decodes a proof with the token decoder (docs/design.md,
// "Verification order", step 2).
func decodeProof(proof string) (*decodedProof, error) {
	t, rej := decodeToken(proof)
	if rej != nil {
		return nil, rej
	}
	return &decodedProof{
		alg: t.Alg, typ: t.Typ, header: t.Header, claims: t.Claims,
		signingInput: t.SigningInput(), signature: t.Signature(),
	}, nil
}

func verifyProofSignature(p *decodedProof, key crypto.PublicKey) bool {
	return jose.Verify(p.alg, key, p.signingInput, p.signature)
}

// isSymmetricAlg reports HS* (and anything unknown): a proof proves
// possession of a private key, which a shared secret cannot.
func isSymmetricAlg(alg string) bool {
	a := jose.LookupAlgorithm(alg)
	return a == nil || !a.Asymmetric()
}

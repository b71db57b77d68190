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
	key, jkt, err := proofKey(p)
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
	return jkt, nil
}

// proofKey imports the header's jwk and returns it with its RFC 7638
// thumbprint. The key must be public, usable (the same rules as keys in a
// key set: RSA ≥ 2048 bits, EC on its curve) and fit the proof's alg.
func proofKey(p *decodedProof) (crypto.PublicKey, string, error) {
	member, ok := p.header["jwk"].(map[string]any)
	if !ok {
		return nil, "", reject(ReasonDPoPProof, "header jwk is missing or not an object")
	}
	for _, name := range privateJWKMembers {
		if _, ok := member[name]; ok {
			return nil, "", reject(ReasonDPoPProof, "header jwk has private member %q", name)
		}
	}
	jkt, err := jose.Thumbprint(member)
	if err != nil {
		return nil, "", reject(ReasonDPoPProof, "header jwk: %v", err)
	}
	raw, err := json.Marshal(member)
	if err != nil {
		return nil, "", reject(ReasonDPoPProof, "header jwk: %v", err)
	}
	// The same importer and usability rules as keys in a key set; a
	// symmetric key cannot prove possession, so HMAC is never admitted.
	key, _, err := jose.ImportJWK(raw, jose.ImportOptions{})
	if err != nil {
		return nil, "", reject(ReasonDPoPProof, "header jwk: %v", err)
	}
	if !jose.Fits(key.Public, p.alg) {
		return nil, "", reject(ReasonDPoPProof, "header jwk does not fit alg %s", p.alg)
	}
	public := key.Public
	return public, jkt, nil
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
	if ath, ok := claims["ath"].(string); !ok || ath != accessTokenHash(c.AccessToken) {
		return "", reject(ReasonDPoPProof, "ath does not match the access token")
	}
	return jti, nil
}

// accessTokenHash is the proof's ath for token (RFC 9449 §4.2).
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
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

package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// maxKidLength bounds the kid we accept: a real kid is a thumbprint or a short
// name, and a bound keeps logs and lookups cheap (SPEC step 2).
const maxKidLength = 256

// keyFamily is the kind of key an algorithm verifies with.
type keyFamily int

const (
	familyRSA keyFamily = iota + 1
	familyEC
	familyEd25519
	familyHMAC
)

// algorithm describes one JWS "alg" we can verify.
type algorithm struct {
	name   string
	family keyFamily
	hash   crypto.Hash    // unused for EdDSA
	pss    bool           // RSASSA-PSS rather than PKCS #1 v1.5
	curve  elliptic.Curve // ES*: the only curve this alg may use
	minKey int            // HS*: minimum secret length in bytes (RFC 7518 §3.2)
}

// algorithms is the registry of supported JWS algorithms. It is read-only.
var algorithms = map[string]*algorithm{
	"RS256":   {name: "RS256", family: familyRSA, hash: crypto.SHA256},
	"RS384":   {name: "RS384", family: familyRSA, hash: crypto.SHA384},
	"RS512":   {name: "RS512", family: familyRSA, hash: crypto.SHA512},
	"PS256":   {name: "PS256", family: familyRSA, hash: crypto.SHA256, pss: true},
	"PS384":   {name: "PS384", family: familyRSA, hash: crypto.SHA384, pss: true},
	"PS512":   {name: "PS512", family: familyRSA, hash: crypto.SHA512, pss: true},
	"ES256":   {name: "ES256", family: familyEC, hash: crypto.SHA256, curve: elliptic.P256()},
	"ES384":   {name: "ES384", family: familyEC, hash: crypto.SHA384, curve: elliptic.P384()},
	"ES512":   {name: "ES512", family: familyEC, hash: crypto.SHA512, curve: elliptic.P521()},
	"EdDSA":   {name: "EdDSA", family: familyEd25519},
	"Ed25519": {name: "Ed25519", family: familyEd25519},
	"HS256":   {name: "HS256", family: familyHMAC, hash: crypto.SHA256, minKey: 32},
	"HS384":   {name: "HS384", family: familyHMAC, hash: crypto.SHA384, minKey: 48},
	"HS512":   {name: "HS512", family: familyHMAC, hash: crypto.SHA512, minKey: 64},
}

// DefaultAlgorithms are accepted when the configuration names none: every
// asymmetric algorithm we support. HMAC must be asked for explicitly.
var DefaultAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "Ed25519",
}

// IsKnownAlgorithm reports whether name is a JWS algorithm this module can verify.
func IsKnownAlgorithm(name string) bool { return algorithms[name] != nil }

// JWS is a compact JWS decoded by our strict rules but not yet verified.
type JWS struct {
	Alg    string         // header "alg"
	Kid    string         // header "kid", "" when absent
	Typ    string         // header "typ", "" when absent
	Header map[string]any // every header member
	Claims map[string]any // the payload as a JSON object; numbers are json.Number
	Issuer string         // the unverified "iss" claim, "" when absent

	signingInput string // header.payload, exactly as received
	signature    []byte
	payload      []byte
}

// Payload returns the decoded payload bytes.
func (t *JWS) Payload() []byte { return t.payload }

// DecodeCompact decodes a compact-serialized JWS with SPEC step 2's rules and
// no cryptography. Every failure is ReasonMalformed except a missing, "none"
// or unknown alg, which is ReasonForbiddenAlg.
func DecodeCompact(token string) (*JWS, error) {
	t, err := decodeSegments(token)
	if err != nil {
		return nil, err
	}
	if err := t.readHeader(); err != nil {
		return nil, err
	}
	claims, err := parseStrictObject(t.payload)
	if err != nil {
		return nil, reject(ReasonMalformed, "claims: %v", err)
	}
	t.Claims = claims
	if iss, ok := claims["iss"]; ok {
		s, isString := iss.(string)
		if !isString {
			return nil, reject(ReasonMalformed, "claim iss is not a string")
		}
		t.Issuer = s
	}
	return t, nil
}

// DecodeCompactJWS is DecodeCompact for a JWS whose payload need not be a
// JSON object (Wycheproof's vectors sign plain text): header rules apply in
// full, the payload is left as bytes.
func DecodeCompactJWS(token string) (*JWS, error) {
	t, err := decodeSegments(token)
	if err != nil {
		return nil, err
	}
	if err := t.readHeader(); err != nil {
		return nil, err
	}
	return t, nil
}

// decodeSegments splits and base64url-decodes the three segments. The
// alphabet check comes first because Go's decoder skips CR and LF, and a
// token must have exactly one spelling.
func decodeSegments(token string) (*JWS, error) {
	if strings.Count(token, ".") != 2 {
		return nil, reject(ReasonMalformed, "want 3 dot-separated segments, got %d", strings.Count(token, ".")+1)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !isBase64URLChar(c) && c != '.' {
			return nil, reject(ReasonMalformed, "byte %d is not base64url", i)
		}
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	t := &JWS{signingInput: token[:last]}
	header, err := decodeSegment(token[:first])
	if err != nil {
		return nil, reject(ReasonMalformed, "header: %v", err)
	}
	t.payload, err = decodeSegment(token[first+1 : last])
	if err != nil {
		return nil, reject(ReasonMalformed, "payload: %v", err)
	}
	t.signature, err = decodeSegment(token[last+1:])
	if err != nil {
		return nil, reject(ReasonMalformed, "signature: %v", err)
	}
	if t.Header, err = parseStrictObject(header); err != nil {
		return nil, reject(ReasonMalformed, "header: %v", err)
	}
	return t, nil
}

func isBase64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// strictB64 rejects padding and non-zero trailing bits, so a token has one
// encoding only (no malleable twins that defeat caches and replay checks).
var strictB64 = base64.RawURLEncoding.Strict()

func decodeSegment(s string) ([]byte, error) {
	return strictB64.DecodeString(s)
}

// forbiddenHeaders are header members that change how a JWS must be
// processed (RFC 7515 §4.1.11 crit, RFC 7797 b64, JWE's zip and enc). We
// support none of them, so their presence alone makes the token malformed.
var forbiddenHeaders = []string{"crit", "b64", "zip", "enc"}

func (t *JWS) readHeader() error {
	for _, name := range forbiddenHeaders {
		if _, ok := t.Header[name]; ok {
			return reject(ReasonMalformed, "header %q is not supported", name)
		}
	}
	var err error
	if t.Kid, err = optionalString(t.Header, "kid"); err != nil {
		return err
	}
	if len(t.Kid) > maxKidLength {
		return reject(ReasonMalformed, "kid longer than %d bytes", maxKidLength)
	}
	if t.Typ, err = optionalString(t.Header, "typ"); err != nil {
		return err
	}
	cty, err := optionalString(t.Header, "cty")
	if err != nil {
		return err
	}
	if strings.EqualFold(cty, "JWT") || strings.EqualFold(cty, "application/jwt") {
		return reject(ReasonMalformed, "nested JWT (cty %q) is not supported", cty)
	}
	alg, present := t.Header["alg"]
	if !present {
		return reject(ReasonForbiddenAlg, "no alg")
	}
	name, ok := alg.(string)
	if !ok {
		return reject(ReasonMalformed, "alg is not a string")
	}
	if algorithms[name] == nil {
		return reject(ReasonForbiddenAlg, "alg %.32q is not supported", name)
	}
	t.Alg = name
	return nil
}

func optionalString(obj map[string]any, name string) (string, error) {
	v, ok := obj[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", reject(ReasonMalformed, "header %s is not a string", name)
	}
	return s, nil
}

// VerifySignature checks sig over signingInput with key under alg, using the
// standard library only. It returns false for any mismatch of key type and
// algorithm, so the caller cannot be confused into, say, HMAC with an RSA key.
func VerifySignature(alg string, key crypto.PublicKey, signingInput string, sig []byte) bool {
	a := algorithms[alg]
	if a == nil {
		return false
	}
	switch a.family {
	case familyRSA:
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return false
		}
		digest := hashOf(a.hash, signingInput)
		if a.pss {
			return rsa.VerifyPSS(pub, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.hash}) == nil
		}
		return rsa.VerifyPKCS1v15(pub, a.hash, digest, sig) == nil
	case familyEC:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != a.curve {
			return false
		}
		return verifyECDSA(pub, hashOf(a.hash, signingInput), sig)
	case familyEd25519:
		pub, ok := key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			return false
		}
		return ed25519.Verify(pub, []byte(signingInput), sig)
	case familyHMAC:
		secret, ok := key.(hmacSecret)
		if !ok || len(secret) < a.minKey {
			return false
		}
		mac := hmac.New(a.hash.New, secret)
		mac.Write([]byte(signingInput))
		return hmac.Equal(mac.Sum(nil), sig)
	}
	return false
}

// verifyECDSA checks a JWS ECDSA signature: R‖S, each exactly the curve's
// byte size (RFC 7518 §3.4; DER or short forms are rejected), with r and s in
// [1, n−1] before the math runs.
func verifyECDSA(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	params := pub.Curve.Params()
	size := (params.BitSize + 7) / 8
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(params.N) >= 0 || s.Cmp(params.N) >= 0 {
		return false
	}
	return ecdsa.Verify(pub, digest, r, s)
}

func hashOf(h crypto.Hash, input string) []byte {
	d := h.New()
	d.Write([]byte(input))
	return d.Sum(nil)
}

// hmacSecret is an HMAC key from a local jwks_file. A distinct type keeps
// raw byte slices from ever being taken for a key by accident.
type hmacSecret []byte

// String hides the secret from any %v that might reach a log.
func (hmacSecret) String() string { return "[hmac secret]" }

// fitsAlgorithm reports whether a key of this type may verify alg (SPEC step 3).
func fitsAlgorithm(key crypto.PublicKey, a *algorithm) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return a.family == familyRSA
	case *ecdsa.PublicKey:
		return a.family == familyEC && k.Curve == a.curve
	case ed25519.PublicKey:
		return a.family == familyEd25519
	case hmacSecret:
		return a.family == familyHMAC && len(k) >= a.minKey
	}
	return false
}

// String renders a JWS for debugging without its signature.
func (t *JWS) String() string {
	return fmt.Sprintf("JWS{alg=%s kid=%.32q iss=%.64q}", t.Alg, t.Kid, t.Issuer)
}

// Package jwttest provides test helpers that mint real keys, real signed
// JWTs and a real JWKS endpoint (with fault injection) for the plugin's
// tests. It uses only the standard library so that the tests do not trust
// the same JOSE library the plugin uses to verify tokens: a bug shared by
// signer and verifier would otherwise go unnoticed.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// Key is a signing key pair with its JWK metadata.
type Key struct {
	Kid     string        // "" means the JWK has no kid
	Alg     string        // JWS alg used by Sign by default, e.g. "ES256"; also written as the JWK "alg" unless OmitAlg
	OmitAlg bool          // do not write "alg" into the JWK
	Use     string        // JWK "use"; "" writes the default "sig", "-" omits it
	Private crypto.Signer // nil for HMAC
	Secret  []byte        // HMAC secret (kty oct) for HS*
}

// NewRSA generates an RSA key of the given size for alg (RS256/384/512 or
// PS256/384/512; "" means RS256). Go refuses keys under 1024 bits.
func NewRSA(t testing.TB, bits int, kid, alg string) *Key {
	t.Helper()
	if alg == "" {
		alg = "RS256"
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("jwttest: rsa key: %v", err)
	}
	return &Key{Kid: kid, Alg: alg, Private: priv}
}

// NewEC generates an ECDSA key on the curve that alg requires
// (ES256 -> P-256, ES384 -> P-384, ES512 -> P-521). Note the argument order
// (alg before kid) differs from the other constructors.
func NewEC(t testing.TB, alg, kid string) *Key {
	t.Helper()
	var c elliptic.Curve
	switch alg {
	case "ES256":
		c = elliptic.P256()
	case "ES384":
		c = elliptic.P384()
	case "ES512":
		c = elliptic.P521()
	default:
		t.Fatalf("jwttest: NewEC: unsupported alg %q", alg)
	}
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatalf("jwttest: ec key: %v", err)
	}
	return &Key{Kid: kid, Alg: alg, Private: priv}
}

// NewEd25519 generates an Ed25519 key; alg is "EdDSA" (the default when "")
// or "Ed25519" (the newer fully-specified name from RFC 9864).
func NewEd25519(t testing.TB, kid, alg string) *Key {
	t.Helper()
	if alg == "" {
		alg = "EdDSA"
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("jwttest: ed25519 key: %v", err)
	}
	return &Key{Kid: kid, Alg: alg, Private: priv}
}

// NewHMAC generates a random HMAC secret of size bytes (32 when size <= 0)
// for alg (HS256/384/512; "" means HS256).
func NewHMAC(t testing.TB, size int, kid, alg string) *Key {
	t.Helper()
	if size <= 0 {
		size = 32
	}
	if alg == "" {
		alg = "HS256"
	}
	secret := make([]byte, size)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("jwttest: hmac secret: %v", err)
	}
	return &Key{Kid: kid, Alg: alg, Secret: secret}
}

// Public returns the verification key: *rsa.PublicKey, *ecdsa.PublicKey,
// ed25519.PublicKey, or the []byte secret for HMAC keys.
func (k *Key) Public() crypto.PublicKey {
	if k.Private != nil {
		return k.Private.Public()
	}
	return k.Secret
}

// B64 encodes b as unpadded base64url, the encoding JWS and JWK use.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK returns the public JWK for k. For HMAC keys it necessarily contains the
// secret ("k"), since that is what a verifier needs. It panics on a Key with
// neither Private nor Secret, which is a bug in the calling test.
func (k *Key) JWK() map[string]any {
	m := map[string]any{}
	if k.Kid != "" {
		m["kid"] = k.Kid
	}
	if k.Alg != "" && !k.OmitAlg {
		m["alg"] = k.Alg
	}
	switch k.Use {
	case "":
		m["use"] = "sig"
	case "-":
	default:
		m["use"] = k.Use
	}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = B64(pub.N.Bytes())
		m["e"] = B64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		// Bytes gives 0x04||X||Y with fixed-size coordinates; RFC 7518 6.2.1.2
		// requires the full curve size, which big.Int.Bytes would not give.
		raw, err := pub.Bytes()
		if err != nil {
			panic(fmt.Sprintf("jwttest: ec public key: %v", err))
		}
		n := (len(raw) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = pub.Curve.Params().Name
		m["x"] = B64(raw[1 : 1+n])
		m["y"] = B64(raw[1+n:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = B64(pub)
	case []byte:
		if pub == nil {
			panic("jwttest: Key has neither Private nor Secret")
		}
		m["kty"] = "oct"
		m["k"] = B64(pub)
	default:
		panic(fmt.Sprintf("jwttest: unsupported key type %T", pub))
	}
	return m
}

// PrivateJWK returns the JWK including private members (d, p, q, dp, dq, qi
// for RSA; d for EC and OKP), e.g. for tests of configs that must reject them.
func (k *Key) PrivateJWK() map[string]any {
	m := k.JWK()
	switch priv := k.Private.(type) {
	case *rsa.PrivateKey:
		m["d"] = B64(priv.D.Bytes())
		m["p"] = B64(priv.Primes[0].Bytes())
		m["q"] = B64(priv.Primes[1].Bytes())
		m["dp"] = B64(priv.Precomputed.Dp.Bytes())
		m["dq"] = B64(priv.Precomputed.Dq.Bytes())
		m["qi"] = B64(priv.Precomputed.Qinv.Bytes())
	case *ecdsa.PrivateKey:
		d, err := priv.Bytes()
		if err != nil {
			panic(fmt.Sprintf("jwttest: ec private key: %v", err))
		}
		m["d"] = B64(d)
	case ed25519.PrivateKey:
		m["d"] = B64(priv.Seed())
	}
	return m
}

// JWKS returns {"keys":[...]} with the public JWK of each key.
func JWKS(keys ...*Key) []byte {
	jwks := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		jwks = append(jwks, k.JWK())
	}
	return JWKSOf(jwks...)
}

// JWKSOf returns {"keys":[...]} with exactly the given maps, for crafting
// odd sets (duplicate kids, unknown kty, private members, ...).
func JWKSOf(jwks ...map[string]any) []byte {
	if jwks == nil {
		jwks = []map[string]any{} // "keys":[] rather than "keys":null
	}
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		panic(fmt.Sprintf("jwttest: marshal jwks: %v", err))
	}
	return b
}

// PublicPEM returns the public key as a "PUBLIC KEY" (PKIX) PEM block.
// It panics for HMAC keys, which have no public half.
func (k *Key) PublicPEM() []byte {
	if k.Private == nil {
		panic("jwttest: PublicPEM on a key without a private/public pair")
	}
	der, err := x509.MarshalPKIXPublicKey(k.Private.Public())
	if err != nil {
		panic(fmt.Sprintf("jwttest: marshal public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// CertPEM returns a self-signed "CERTIFICATE" PEM for the key, valid from an
// hour ago for a day, for configs that accept a certificate instead of a key.
func (k *Key) CertPEM(t testing.TB) []byte {
	t.Helper()
	if k.Private == nil {
		t.Fatalf("jwttest: CertPEM needs an asymmetric key")
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "jwttest " + k.Kid},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Private.Public(), k.Private)
	if err != nil {
		t.Fatalf("jwttest: create certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Claims returns a fresh valid claim set: iss, sub "user-123", aud (if
// aud != ""), iat and nbf now, exp now+ttl (NumericDate seconds), random jti.
// It is a plain map so tests can delete or corrupt any member.
func Claims(iss, aud string, ttl time.Duration) map[string]any {
	now := time.Now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti) // crypto/rand.Read never fails on supported platforms
	c := map[string]any{
		"iss": iss,
		"sub": "user-123",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": hex.EncodeToString(jti),
	}
	if aud != "" {
		c["aud"] = aud
	}
	return c
}

// Sign builds a compact JWS. The header starts as {"alg":k.Alg,"typ":"JWT"}
// plus "kid" when k.Kid != ""; entries in hdr override and a nil value in hdr
// deletes the member. Claims are json.Marshal'ed (nil claims become {}).
//
// The signature uses the final header "alg" when it is a string SignInput
// supports (so hdr {"alg":"none"} yields an unsigned token and
// {"alg":"PS256"} really signs PS256); otherwise (alg deleted, non-string or
// unknown) it uses k.Alg, so a token can carry a lying or missing alg.
func Sign(t testing.TB, k *Key, hdr map[string]any, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": k.Alg, "typ": "JWT"}
	if k.Kid != "" {
		h["kid"] = k.Kid
	}
	for name, v := range hdr {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	alg := k.Alg
	if a, ok := h["alg"].(string); ok && knownAlg(a) {
		alg = a
	}
	if claims == nil {
		claims = map[string]any{}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatalf("jwttest: marshal header: %v", err)
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("jwttest: marshal claims: %v", err)
	}
	return SignRaw(t, k, alg, hb, pb)
}

// SignRaw signs exactly the given header and payload bytes (it base64url
// encodes them itself) with alg, for attack tests that need malformed JSON,
// duplicate members or a header alg that differs from the signing alg.
func SignRaw(t testing.TB, k *Key, alg string, header, payload []byte) string {
	t.Helper()
	input := B64(header) + "." + B64(payload)
	return input + "." + B64(SignInput(t, k, alg, []byte(input)))
}

// SignInput returns the raw signature of signingInput under alg:
// RS*: PKCS#1 v1.5; PS*: PSS with salt length = hash length; ES*: fixed-size
// R||S, each half the key's curve byte size; EdDSA/Ed25519: ed25519;
// HS*: HMAC with k.Secret; "none": empty. A key of the wrong type for alg
// (or HS* without a Secret) fails the test. The hash comes from alg and the
// size from the key, so e.g. ES384 over a P-256 key is possible on purpose.
func SignInput(t testing.TB, k *Key, alg string, signingInput []byte) []byte {
	t.Helper()
	if alg == "none" {
		return nil
	}
	if !knownAlg(alg) {
		t.Fatalf("jwttest: unsupported alg %q", alg)
	}
	if alg == "EdDSA" || alg == "Ed25519" {
		priv, ok := k.Private.(ed25519.PrivateKey)
		if !ok {
			t.Fatalf("jwttest: %s needs an Ed25519 key, have %T", alg, k.Private)
		}
		return ed25519.Sign(priv, signingInput)
	}
	hash := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[2:]]
	if alg[:2] == "HS" {
		if len(k.Secret) == 0 {
			t.Fatalf("jwttest: %s needs Key.Secret", alg)
		}
		mac := hmac.New(hash.New, k.Secret)
		mac.Write(signingInput)
		return mac.Sum(nil)
	}
	h := hash.New()
	h.Write(signingInput)
	digest := h.Sum(nil)
	var (
		sig []byte
		err error
	)
	switch priv := k.Private.(type) {
	case *rsa.PrivateKey:
		switch alg[:2] {
		case "RS":
			sig, err = rsa.SignPKCS1v15(rand.Reader, priv, hash, digest)
		case "PS":
			sig, err = rsa.SignPSS(rand.Reader, priv, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		default:
			t.Fatalf("jwttest: %s cannot be signed with an RSA key", alg)
		}
	case *ecdsa.PrivateKey:
		if alg[:2] != "ES" {
			t.Fatalf("jwttest: %s cannot be signed with an EC key", alg)
		}
		// JWS wants R||S (RFC 7518 3.4), not the ASN.1 DER that SignASN1 gives.
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, priv, digest)
		if err == nil {
			size := (priv.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	default:
		t.Fatalf("jwttest: %s cannot be signed with key type %T", alg, k.Private)
	}
	if err != nil {
		t.Fatalf("jwttest: sign %s: %v", alg, err)
	}
	return sig
}

// knownAlg reports whether SignInput can produce alg.
func knownAlg(alg string) bool {
	switch alg {
	case "none", "EdDSA", "Ed25519":
		return true
	}
	if len(alg) != 5 {
		return false
	}
	switch alg[:2] {
	case "HS", "RS", "PS", "ES":
	default:
		return false
	}
	switch alg[2:] {
	case "256", "384", "512":
		return true
	}
	return false
}

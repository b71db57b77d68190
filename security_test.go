package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// This file is the attack table: every entry is a real token, built here
// with real keys and real signatures, that a verifier must refuse. Each
// entry names the RFC 8725 (JWT BCP) section or the CVE class it stands for.
// The reason code asserted follows docs/design.md "Verification order", so
// a change in the order of the checks shows up here too.

// attackEnv holds the legitimate issuer's keys (loaded remote-style, without
// AllowHMAC) and an attacker's own keys that are in no set.
type attackEnv struct {
	rs, ps, ps384, es, es384, ed *jwttest.Key // in the issuer's set
	rsAny                        *jwttest.Key // RSA key in the set without "alg"
	sharedEC, sharedRSA          *jwttest.Key // one kid, two key types, both in the set
	attackerEC, attackerRSA      *jwttest.Key // not in any set
	set                          *keySet
	jwksHits                     atomic.Int32 // requests to the attacker's jku/x5u server
	jwksURL                      string
}

func newAttackEnv(t testing.TB) *attackEnv {
	t.Helper()
	e := &attackEnv{
		rs:          fixtureKey(t, "RS256", "rsa-1", 0),
		ps:          fixtureKey(t, "PS256", "ps-1", 1),
		ps384:       fixtureKey(t, "PS384", "ps384-1", 1),
		es:          fixtureKey(t, "ES256", "ec-1", 0),
		es384:       fixtureKey(t, "ES384", "ec384-1", 0),
		ed:          fixtureKey(t, "EdDSA", "ed-1", 0),
		rsAny:       fixtureKey(t, "RS256", "rsa-any", 2),
		sharedEC:    fixtureKey(t, "ES256", "shared", 1),
		sharedRSA:   fixtureKey(t, "RS256", "shared", 2),
		attackerEC:  fixtureKey(t, "ES256", "attacker", 1),
		attackerRSA: fixtureKey(t, "RS256", "attacker", 1),
	}
	e.rsAny.OmitAlg = true
	e.set = loadTestSet(t, LoadOptions{}, e.rs, e.ps, e.ps384, e.es, e.es384, e.ed, e.rsAny, e.sharedEC, e.sharedRSA)

	// The attacker's key server: if the verifier ever followed jku or x5u,
	// it would find the attacker's key here and accept the token.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwttest.JWKS(e.attackerEC, e.attackerRSA))
	}))
	t.Cleanup(srv.Close)
	e.jwksURL = srv.URL + "/jwks.json"
	return e
}

// attack is one row of the table.
type attack struct {
	name   string
	policy func(p *issuerPolicy) // adjust the issuer's policy (e.g. allow HS256)
	token  func(t testing.TB, e *attackEnv) string
	want   Reason // "" means the token is legitimate and must pass
}

// Token builders shared by the table.

func signed(k *jwttest.Key, hdr map[string]any, over map[string]any) func(testing.TB, *attackEnv) string {
	return func(t testing.TB, _ *attackEnv) string { return jwttest.Sign(t, k, hdr, testClaims(over)) }
}

// signedAs signs header and claims JSON exactly as given with signAlg, which
// may differ from the header's alg.
func signedAs(t testing.TB, k *jwttest.Key, signAlg, header string, claims []byte) string {
	t.Helper()
	return jwttest.SignRaw(t, k, signAlg, []byte(header), claims)
}

func validClaimsJSON(t testing.TB) []byte { return rawClaims(t, testClaims(nil), nil) }

// withSignature replaces token's signature with sig.
func withSignature(token string, sig []byte) string {
	return token[:strings.LastIndexByte(token, '.')+1] + jwttest.B64(sig)
}

// signingInputOf is the header.payload part of a compact token.
func signingInputOf(token string) string { return token[:strings.LastIndexByte(token, '.')] }

// hs256 signs token's signing input with secret, as an attacker who knows
// the bytes of a public key would.
func hs256Forgery(t testing.TB, k *jwttest.Key, secret []byte) string {
	t.Helper()
	header := `{"alg":"HS256","kid":"` + k.Kid + `","typ":"JWT"}`
	return jwttest.SignRaw(t, &jwttest.Key{Secret: secret}, "HS256", []byte(header), validClaimsJSON(t))
}

// ecdsaSig builds a raw R‖S signature for a curve of size bytes per half.
func ecdsaSig(r, s *big.Int, size int) []byte {
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return sig
}

// pssForgery signs with RSASSA-PSS and a salt length other than the hash
// length RFC 7518 §3.5 fixes.
func pssForgery(t testing.TB, k *jwttest.Key, alg string, saltLen int) string {
	t.Helper()
	header := `{"alg":"` + alg + `","kid":"` + k.Kid + `"}`
	input := jwttest.B64([]byte(header)) + "." + jwttest.B64(validClaimsJSON(t))
	hash := map[string]crypto.Hash{"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512}[alg]
	h := hash.New()
	h.Write([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, k.Private.(*rsa.PrivateKey), hash, h.Sum(nil), &rsa.PSSOptions{SaltLength: saltLen})
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + jwttest.B64(sig)
}

// mutateSegment changes one segment of token by f.
func mutateSegment(token string, i int, f func(string) string) string {
	parts := strings.Split(token, ".")
	parts[i] = f(parts[i])
	return strings.Join(parts, ".")
}

// nonCanonical flips the unused low bits of a segment's last character, so
// a lenient decoder still reads the same bytes.
func nonCanonical(t testing.TB, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var unused int
	switch len(seg) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		t.Fatalf("segment of length %d has no unused bits", len(seg))
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	mutated := seg[:len(seg)-1] + string(alphabet[last|(1<<unused-1)])
	want, _ := base64.RawURLEncoding.DecodeString(seg)
	got, err := base64.RawURLEncoding.DecodeString(mutated)
	if err != nil || string(got) != string(want) || mutated == seg {
		t.Fatalf("nonCanonical did not build a lenient twin (%v)", err)
	}
	return mutated
}

// attackTable returns the attacks against e, each with the reason that
// must refuse it.
func attackTable(e *attackEnv) []attack {
	now := testNow.Unix()
	allowHS := func(p *issuerPolicy) { p.Algorithms = append(jose.DefaultAlgorithms(), "HS256") }
	requireAT := func(p *issuerPolicy) { p.TokenTypes = []string{"at+jwt"} }
	requireAud := func(p *issuerPolicy) { p.Audience = []string{"https://api.example"} }
	rsaDER, _ := x509.MarshalPKIXPublicKey(e.rs.Public())
	rsaPKCS1 := x509.MarshalPKCS1PublicKey(e.rs.Public().(*rsa.PublicKey))
	rsaJWK, _ := json.Marshal(e.rs.JWK())
	ecDER, _ := x509.MarshalPKIXPublicKey(e.es.Public())
	ecN := e.es.Private.(*ecdsa.PrivateKey).Curve.Params().N

	return []attack{
		// Baselines: the environment accepts honest tokens, so every
		// rejection below is caused by the attack, not the setup.
		{name: "baseline RS256", token: signed(e.rs, nil, nil)},
		{name: "baseline ES256", token: signed(e.es, nil, nil)},
		{name: "baseline PS384", token: signed(e.ps384, nil, nil)},

		// --- alg none and missing alg ---
		// RFC 8725 §2.1, CVE-2015-9235 class: "none" must never verify.
		{name: "alg none", token: signed(e.rs, map[string]any{"alg": "none"}, nil), want: ReasonForbiddenAlg},
		// RFC 8725 §2.1: case variants slip past case-sensitive deny lists.
		{name: "alg None", token: signed(e.rs, map[string]any{"alg": "None"}, nil), want: ReasonForbiddenAlg},
		// RFC 8725 §2.1: upper-case variant.
		{name: "alg NONE", token: signed(e.rs, map[string]any{"alg": "NONE"}, nil), want: ReasonForbiddenAlg},
		// RFC 8725 §2.1: mixed case.
		{name: "alg nOnE", token: signed(e.rs, map[string]any{"alg": "nOnE"}, nil), want: ReasonForbiddenAlg},
		// RFC 8725 §2.1: none with a real RS256 signature still attached.
		{name: "alg none with a valid RS256 signature", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.rs, "RS256", `{"alg":"none","kid":"rsa-1"}`, validClaimsJSON(t))
		}, want: ReasonForbiddenAlg},
		// RFC 8725 §3.1: a missing alg must not default to anything.
		{name: "alg missing", token: signed(e.rs, map[string]any{"alg": nil}, nil), want: ReasonForbiddenAlg},
		// RFC 8725 §3.1: empty alg.
		{name: "alg empty", token: signed(e.rs, map[string]any{"alg": ""}, nil), want: ReasonForbiddenAlg},
		// RFC 8725 §3.1: alg of the wrong JSON type.
		{name: "alg null", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.rs, "RS256", `{"alg":null,"kid":"rsa-1"}`, validClaimsJSON(t))
		}, want: ReasonMalformed},

		// --- algorithm substitution ---
		// RFC 8725 §3.1: header RS512 over a key published for RS256, with
		// a signature that is valid under RS256.
		{name: "header RS512, RS256 signature, key alg RS256", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.rs, "RS256", `{"alg":"RS512","kid":"rsa-1"}`, validClaimsJSON(t))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.1: PKCS#1 v1.5 signature under a PS256 key.
		{name: "header RS256, valid RS256 signature, key alg PS256", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.ps, "RS256", `{"alg":"RS256","kid":"ps-1"}`, validClaimsJSON(t))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.1: PSS signature labelled PKCS#1 under a key without alg.
		{name: "header RS256, PS256 signature, key without alg", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.rsAny, "PS256", `{"alg":"RS256","kid":"rsa-any"}`, validClaimsJSON(t))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.1: hash substitution under a key without alg.
		{name: "header RS512, RS256 signature, key without alg", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.rsAny, "RS256", `{"alg":"RS512","kid":"rsa-any"}`, validClaimsJSON(t))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.1: ES384 label over a P-256 key (curve binding).
		{name: "header ES384 over a P-256 key", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.es, "ES384", `{"alg":"ES384","kid":"ec-1"}`, validClaimsJSON(t))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.1: EdDSA label under an EC kid.
		{name: "header EdDSA with an EC key's kid", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.ed, "EdDSA", `{"alg":"EdDSA","kid":"ec-1"}`, validClaimsJSON(t))
		}, want: ReasonUnknownKid},

		// --- RS/HS key confusion ---
		// CVE-2016-10555 class (RFC 8725 §2.1): HMAC keyed with the RSA public
		// key as PEM; HS256 is not in the default algorithms.
		{name: "HS256 keyed with the RSA public key PEM", token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.rs, e.rs.PublicPEM())
		}, want: ReasonForbiddenAlg},
		// CVE-2016-10555 class: the same with DER (PKIX) bytes.
		{name: "HS256 keyed with the RSA public key DER", token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.rs, rsaDER)
		}, want: ReasonForbiddenAlg},
		// CVE-2016-10555 class: the same with the JWK JSON bytes.
		{name: "HS256 keyed with the RSA JWK JSON", token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.rs, rsaJWK)
		}, want: ReasonForbiddenAlg},
		// CVE-2016-10555 class: HS256 allowed for the issuer, but the remote
		// set holds no oct key, so no key can be found for it.
		{name: "HS256 allowed: keyed with RSA PEM", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.rs, e.rs.PublicPEM())
		}, want: ReasonUnknownKid},
		// CVE-2016-10555 class: PKCS#1 DER as the secret.
		{name: "HS256 allowed: keyed with RSA PKCS#1 DER", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.rs, rsaPKCS1)
		}, want: ReasonUnknownKid},
		// CVE-2016-10555 class: JWK JSON as the secret.
		{name: "HS256 allowed: keyed with RSA JWK JSON", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.rs, rsaJWK)
		}, want: ReasonUnknownKid},
		// CVE-2016-10555 class with an EC key (Wycheproof's symmetry confusion).
		{name: "HS256 allowed: keyed with EC public key DER", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.es, ecDER)
		}, want: ReasonUnknownKid},
		// CVE-2016-10555 class: no kid, so "the only key fitting HS256".
		{name: "HS256 allowed: no kid, keyed with RSA PEM", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return jwttest.SignRaw(t, &jwttest.Key{Secret: e.rs.PublicPEM()}, "HS256", []byte(`{"alg":"HS256"}`), validClaimsJSON(t))
		}, want: ReasonUnknownKid},

		// --- keys from the token ---
		// CVE-2018-0114 class (RFC 8725 §3.10): embedded jwk with the
		// attacker's key and kid.
		{name: "embedded jwk, attacker kid", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"jwk": e.attackerEC.JWK()}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// CVE-2018-0114 class: embedded jwk claiming the legitimate kid.
		{name: "embedded jwk, legitimate kid", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"jwk": e.attackerEC.JWK(), "kid": "ec-1"}, testClaims(nil))
		}, want: ReasonBadSignature},
		// CVE-2018-0114 class: embedded jwk and no kid at all; the set has
		// two ES256 keys, so none is "the only one fitting".
		{name: "embedded jwk, no kid", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"jwk": e.attackerEC.JWK(), "kid": nil}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// CVE-2018-0114 class: embedded jwk, no kid, one fitting key in the set.
		{name: "embedded jwk, no kid, single ES384 key", token: func(t testing.TB, e *attackEnv) string {
			k := fixtureKey(t, "ES384", "", 1)
			return jwttest.Sign(t, k, map[string]any{"jwk": k.JWK()}, testClaims(nil))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.10: x5c chain with the attacker's certificate.
		{name: "x5c with the attacker's certificate", token: func(t testing.TB, e *attackEnv) string {
			block, _ := pem.Decode(e.attackerRSA.CertPEM(t))
			der := base64.StdEncoding.EncodeToString(block.Bytes)
			return jwttest.Sign(t, e.attackerRSA, map[string]any{"x5c": []string{der}, "kid": "rsa-1"}, testClaims(nil))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.10 / §2.9 (SSRF): jku at the attacker's server.
		{name: "jku at the attacker's JWKS", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"jku": e.jwksURL}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.10 / §2.9: jku with a legitimate kid.
		{name: "jku with a legitimate kid", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"jku": e.jwksURL, "kid": "ec-1"}, testClaims(nil))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.10 / §2.9: x5u at the attacker's server.
		{name: "x5u at the attacker's server", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerRSA, map[string]any{"x5u": e.jwksURL}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.10: those headers are ignored, not fatal, on an honest token.
		{name: "honest token carrying jwk, jku, x5u and x5c is accepted", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.es, map[string]any{"jwk": e.attackerEC.JWK(), "jku": e.jwksURL, "x5u": e.jwksURL, "x5c": []string{"AAAA"}}, testClaims(nil))
		}},

		// --- kid injection ---
		// RFC 8725 §3.10: kid used as a file path.
		{name: "kid path traversal", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"kid": "../../../../etc/passwd"}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.10: /dev/null kid with an empty HMAC key (classic CTF).
		{name: "kid /dev/null with an empty HS256 key", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return jwttest.SignRaw(t, &jwttest.Key{Secret: []byte{0}}, "HS256", []byte(`{"alg":"HS256","kid":"/dev/null"}`), validClaimsJSON(t))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.10: kid used in SQL.
		{name: "kid SQL injection", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"kid": "x' UNION SELECT 'secret' -- "}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.10: a 10 KB kid (log and lookup abuse).
		{name: "kid of 10 KB", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.es, map[string]any{"kid": strings.Repeat("A", 10<<10)}, testClaims(nil))
		}, want: ReasonMalformed},
		// RFC 8725 §3.10: kid with a NUL to truncate a C-string lookup.
		{name: "kid with NUL", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.attackerEC, map[string]any{"kid": "ec-1\x00attacker"}, testClaims(nil))
		}, want: ReasonUnknownKid},
		// RFC 8725 §3.10: kid of the wrong type.
		{name: "kid as an object", token: signed(e.es, map[string]any{"kid": map[string]any{"$ne": ""}}, nil), want: ReasonMalformed},

		// --- ECDSA signature encoding ---
		// CVE-2022-21449 class ("psychic signatures"): r = s = 0.
		{name: "ECDSA r=s=0", token: func(t testing.TB, e *attackEnv) string {
			return withSignature(jwttest.Sign(t, e.es, nil, testClaims(nil)), make([]byte, 64))
		}, want: ReasonBadSignature},
		// CVE-2022-21449 class, P-384.
		{name: "ECDSA P-384 r=s=0", token: func(t testing.TB, e *attackEnv) string {
			return withSignature(jwttest.Sign(t, e.es384, nil, testClaims(nil)), make([]byte, 96))
		}, want: ReasonBadSignature},
		// CVE-2022-21449 class: r = n, s = n (both reduce to zero).
		{name: "ECDSA r=s=n", token: func(t testing.TB, e *attackEnv) string {
			return withSignature(jwttest.Sign(t, e.es, nil, testClaims(nil)), ecdsaSig(ecN, ecN, 32))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.4: r ≥ n with a real s.
		{name: "ECDSA r=n", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, ecdsaSig(ecN, new(big.Int).SetBytes(sig[32:]), 32))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.4: s ≥ n: s+n still fits for a small s? Use s = n+1.
		{name: "ECDSA s=n+1", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, ecdsaSig(new(big.Int).SetBytes(sig[:32]), new(big.Int).Add(ecN, big.NewInt(1)), 32))
		}, want: ReasonBadSignature},
		// RFC 7518 §3.4: a DER (ASN.1) signature over the right input.
		{name: "ECDSA DER-encoded signature", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			d := sha256.Sum256([]byte(signingInputOf(tok)))
			der, err := ecdsa.SignASN1(rand.Reader, e.es.Private.(*ecdsa.PrivateKey), d[:])
			if err != nil {
				t.Fatal(err)
			}
			return withSignature(tok, der)
		}, want: ReasonBadSignature},
		// RFC 7518 §3.4: a valid R‖S with one leading zero byte.
		{name: "ECDSA signature 65 bytes", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, append([]byte{0}, sig...))
		}, want: ReasonBadSignature},
		// RFC 7518 §3.4 / RFC 8725 §2.6: r ‖ 0x00 ‖ s still decodes to the
		// same (r, s) if the halves are split at the curve size, so only the
		// exact-length rule stops this malleable twin of a valid signature.
		{name: "ECDSA signature with a zero byte before s", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, append(append(append([]byte{}, sig[:32]...), 0), sig[32:]...))
		}, want: ReasonBadSignature},
		// RFC 7518 §3.4: truncated to 63 bytes.
		{name: "ECDSA signature 63 bytes", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, sig[:63])
		}, want: ReasonBadSignature},
		// RFC 7518 §3.4: P-256 halves padded to P-521 size.
		{name: "ECDSA signature padded to 132 bytes", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, ecdsaSig(new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]), 66))
		}, want: ReasonBadSignature},
		// RFC 8725 §3.3: RSA signature one byte longer (leading zero).
		{name: "RSA signature with a leading zero byte", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.rs, nil, testClaims(nil))
			sig, _ := strictB64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
			return withSignature(tok, append([]byte{0}, sig...))
		}, want: ReasonBadSignature},
		// RFC 7518 §3.5: PS384 with a 32-byte salt instead of 48.
		{name: "PS384 with salt length 32", token: func(t testing.TB, e *attackEnv) string {
			return pssForgery(t, e.ps384, "PS384", 32)
		}, want: ReasonBadSignature},
		// RFC 7518 §3.5: PS256 with the maximal salt (PSSSaltLengthAuto).
		{name: "PS256 with the maximal salt", token: func(t testing.TB, e *attackEnv) string {
			return pssForgery(t, e.ps, "PS256", rsa.PSSSaltLengthAuto)
		}, want: ReasonBadSignature},
		// RFC 7518 §3.5: PS256 with no salt.
		{name: "PS256 with salt length 0", token: func(t testing.TB, e *attackEnv) string {
			return pssForgery(t, e.ps, "PS256", 0)
		}, want: ReasonBadSignature},
		// Control: the same helper with the RFC's salt length is accepted,
		// so the rejections above are about the salt alone.
		{name: "PS256 with salt length 32 is accepted", token: func(t testing.TB, e *attackEnv) string {
			return pssForgery(t, e.ps, "PS256", 32)
		}},
		{name: "PS384 with salt length 48 is accepted", token: func(t testing.TB, e *attackEnv) string {
			return pssForgery(t, e.ps384, "PS384", 48)
		}},

		// --- unsupported JOSE features ---
		// RFC 8725 §3.1 / RFC 7515 §4.1.11: crit naming a known extension.
		{name: "crit [b64] with b64 false", token: signed(e.es, map[string]any{"crit": []string{"b64"}, "b64": false}, nil), want: ReasonMalformed},
		// RFC 7515 §4.1.11: crit naming an unknown parameter.
		{name: "crit [x-unknown]", token: signed(e.es, map[string]any{"crit": []string{"x-unknown"}, "x-unknown": 1}, nil), want: ReasonMalformed},
		// RFC 7515 §4.1.11: crit empty (itself invalid).
		{name: "crit []", token: signed(e.es, map[string]any{"crit": []string{}}, nil), want: ReasonMalformed},
		// RFC 7797: unencoded payload without crit.
		{name: "b64 false", token: signed(e.es, map[string]any{"b64": false}, nil), want: ReasonMalformed},
		// RFC 8725 §3.6: compression.
		{name: "zip DEF", token: signed(e.es, map[string]any{"zip": "DEF"}, nil), want: ReasonMalformed},
		// RFC 8725 §2.8: a JWE (five segments) is not a signed token.
		{name: "JWE compact", token: func(t testing.TB, e *attackEnv) string {
			h := jwttest.B64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa-1"}`))
			return h + "." + jwttest.B64(make([]byte, 256)) + "." + jwttest.B64(make([]byte, 12)) + "." + jwttest.B64(validClaimsJSON(t)) + "." + jwttest.B64(make([]byte, 16))
		}, want: ReasonMalformed},
		// RFC 8725 §2.8: JWE alg dir with enc, squeezed into three segments.
		{name: "enc header in a three-segment token", token: signed(e.es, map[string]any{"enc": "A256GCM"}, nil), want: ReasonMalformed},
		// RFC 8725 §2.8 / RFC 7519 §5.2: nested JWT.
		{name: "nested JWS (cty JWT)", token: func(t testing.TB, e *attackEnv) string {
			inner := jwttest.Sign(t, e.attackerEC, nil, testClaims(map[string]any{"sub": "admin"}))
			return jwttest.SignRaw(t, e.es, "ES256", []byte(`{"alg":"ES256","kid":"ec-1","cty":"JWT"}`), []byte(inner))
		}, want: ReasonMalformed},

		// --- serializations ---
		// CVE-2022-39227 class: flattened JSON serialization.
		{name: "flattened JSON serialization", token: func(t testing.TB, e *attackEnv) string {
			p := strings.Split(jwttest.Sign(t, e.es, nil, testClaims(nil)), ".")
			return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`
		}, want: ReasonMalformed},
		// CVE-2022-39227 class: general JSON serialization.
		{name: "general JSON serialization", token: func(t testing.TB, e *attackEnv) string {
			p := strings.Split(jwttest.Sign(t, e.es, nil, testClaims(nil)), ".")
			return `{"payload":"` + p[1] + `","signatures":[{"protected":"` + p[0] + `","signature":"` + p[2] + `"}]}`
		}, want: ReasonMalformed},
		// CVE-2022-39227 class: valid signed payload, forged outer claims.
		{name: "JSON serialization with forged outer claims", token: func(t testing.TB, e *attackEnv) string {
			p := strings.Split(jwttest.Sign(t, e.es, nil, testClaims(nil)), ".")
			return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `","sub":"admin","iss":"` + testIssuer + `"}`
		}, want: ReasonMalformed},
		// CVE-2022-39227: the compact token as a JSON member name.
		{name: "compact token smuggled as a JSON key", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(nil))
			p := strings.Split(tok, ".")
			return `{"  ` + tok + `  ":"","protected":"` + p[0] + `","payload":"` + jwttest.B64([]byte(`{"sub":"admin"}`)) + `","signature":"` + p[2] + `"}`
		}, want: ReasonMalformed},

		// --- segment structure and encoding (RFC 8725 §2.6: one spelling) ---
		// RFC 7515 §7.1: two segments.
		{name: "two segments", token: func(t testing.TB, e *attackEnv) string {
			return signingInputOf(jwttest.Sign(t, e.es, nil, testClaims(nil)))
		}, want: ReasonMalformed},
		// RFC 7515 §7.1: four segments.
		{name: "four segments", token: func(t testing.TB, e *attackEnv) string { return jwttest.Sign(t, e.es, nil, testClaims(nil)) + ".AAAA" }, want: ReasonMalformed},
		// RFC 7515 §7.1: four segments, the extra one empty.
		{name: "trailing dot", token: func(t testing.TB, e *attackEnv) string { return jwttest.Sign(t, e.es, nil, testClaims(nil)) + "." }, want: ReasonMalformed},
		// RFC 7515 §7.1: many dots.
		{name: "many dots", token: func(t testing.TB, e *attackEnv) string {
			return strings.ReplaceAll(jwttest.Sign(t, e.es, nil, testClaims(nil)), ".", "....")
		}, want: ReasonMalformed},
		// RFC 7515 §7.1: only dots.
		{name: "only dots", token: func(testing.TB, *attackEnv) string { return ".." }, want: ReasonMalformed},
		// RFC 7515 §2: base64url padding.
		{name: "padding = on the signature", token: func(t testing.TB, e *attackEnv) string {
			return jwttest.Sign(t, e.es, nil, testClaims(nil)) + "=="
		}, want: ReasonMalformed},
		// RFC 7515 §2: padding on the header.
		{name: "padding = on the header", token: func(t testing.TB, e *attackEnv) string {
			return mutateSegment(jwttest.Sign(t, e.es, nil, testClaims(nil)), 0, func(s string) string { return s + strings.Repeat("=", (4-len(s)%4)%4) + "=" })
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: standard-alphabet + and / for - and _.
		{name: "standard base64 alphabet", token: func(t testing.TB, e *attackEnv) string {
			tok := jwttest.Sign(t, e.es, nil, testClaims(map[string]any{"pad": "??????~~~~~~"}))
			std := strings.NewReplacer("-", "+", "_", "/").Replace(tok)
			if !strings.ContainsAny(std, "+") || !strings.ContainsAny(std, "/") {
				t.Fatal("token has no - or _ to replace")
			}
			return std
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: non-canonical trailing bits in the signature.
		{name: "non-canonical trailing bits in the signature", token: func(t testing.TB, e *attackEnv) string {
			return mutateSegment(jwttest.Sign(t, e.es, nil, testClaims(nil)), 2, func(s string) string { return nonCanonical(t, s) })
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: non-canonical trailing bits in the header.
		{name: "non-canonical trailing bits in the header", token: func(t testing.TB, e *attackEnv) string {
			for _, typ := range []string{"JWT", "JWTx", "JWTxy"} {
				tok := jwttest.Sign(t, e.es, map[string]any{"typ": typ}, testClaims(nil))
				if h := strings.Split(tok, ".")[0]; len(h)%4 != 0 {
					// Re-sign so only the encoding, not the signature, is wrong.
					input := nonCanonical(t, h) + "." + strings.Split(tok, ".")[1]
					return input + "." + jwttest.B64(jwttest.SignInput(t, e.es, "ES256", []byte(input)))
				}
			}
			t.Fatal("no header length with unused bits")
			return ""
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: CR LF inside a segment (Go's decoder skips them).
		{name: "CRLF inside the payload", token: func(t testing.TB, e *attackEnv) string {
			return mutateSegment(jwttest.Sign(t, e.es, nil, testClaims(nil)), 1, func(s string) string { return s[:8] + "\r\n" + s[8:] })
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: LF inside the signature.
		{name: "LF inside the signature", token: func(t testing.TB, e *attackEnv) string {
			return mutateSegment(jwttest.Sign(t, e.es, nil, testClaims(nil)), 2, func(s string) string { return s[:8] + "\n" + s[8:] })
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: a space inside the header.
		{name: "space inside the header", token: func(t testing.TB, e *attackEnv) string {
			return mutateSegment(jwttest.Sign(t, e.es, nil, testClaims(nil)), 0, func(s string) string { return s[:4] + " " + s[4:] })
		}, want: ReasonMalformed},
		// RFC 8725 §2.6: a tab at the end.
		{name: "tab after the token", token: func(t testing.TB, e *attackEnv) string { return jwttest.Sign(t, e.es, nil, testClaims(nil)) + "\t" }, want: ReasonMalformed},

		// --- JSON parser differentials (RFC 8725 §2.6, RFC 7515 §5.2) ---
		// Duplicate alg: a lenient parser keeps the last, another the first.
		{name: "duplicate alg in the header", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1","alg":"none"}`, validClaimsJSON(t))
		}, want: ReasonMalformed},
		// Duplicate kid in the header.
		{name: "duplicate kid in the header", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"attacker","kid":"ec-1"}`, validClaimsJSON(t))
		}, want: ReasonMalformed},
		// Duplicate sub in the claims.
		{name: "duplicate sub in the claims", token: func(t testing.TB, e *attackEnv) string {
			c := strings.TrimSuffix(string(validClaimsJSON(t)), "}") + `,"sub":"admin"}`
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, []byte(c))
		}, want: ReasonMalformed},
		// Duplicate exp, one expired.
		{name: "duplicate exp in the claims", token: func(t testing.TB, e *attackEnv) string {
			c := strings.TrimSuffix(string(validClaimsJSON(t)), "}") + `,"exp":1}`
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, []byte(c))
		}, want: ReasonMalformed},
		// Duplicate spelled with an escape.
		{name: "escaped duplicate iss in the claims", token: func(t testing.TB, e *attackEnv) string {
			c := strings.TrimSuffix(string(validClaimsJSON(t)), "}") + `,"\u0069ss":"https://evil.example"}`
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, []byte(c))
		}, want: ReasonMalformed},
		// Duplicate inside a nested claim.
		{name: "duplicate inside a nested claim", token: func(t testing.TB, e *attackEnv) string {
			c := strings.TrimSuffix(string(validClaimsJSON(t)), "}") + `,"realm_access":{"roles":["user"],"roles":["admin"]}}`
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, []byte(c))
		}, want: ReasonMalformed},
		// RFC 8725 §3.7: invalid UTF-8 in the claims.
		{name: "invalid UTF-8 in the claims", token: func(t testing.TB, e *attackEnv) string {
			c := strings.TrimSuffix(string(validClaimsJSON(t)), "}") + ",\"name\":\"\xc0\xaf\"}"
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, []byte(c))
		}, want: ReasonMalformed},

		// --- time claims (RFC 7519 §4.1.4/5/6) ---
		{name: "exp missing", token: signed(e.es, nil, map[string]any{"exp": nil}), want: ReasonMalformed},
		// exp 0 is 1970-01-01, a valid date long past.
		{name: "exp 0", token: signed(e.es, nil, map[string]any{"exp": 0}), want: ReasonExpired},
		{name: "exp as a string", token: signed(e.es, nil, map[string]any{"exp": "9999999999"}), want: ReasonMalformed},
		{name: "exp negative", token: signed(e.es, nil, map[string]any{"exp": -1}), want: ReasonMalformed},
		// 1e30 overflows int64 seconds: a naive conversion wraps to the past or future.
		{name: "exp 1e30", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, rawClaims(t, testClaims(nil), map[string]string{"exp": "1e30"}))
		}, want: ReasonMalformed},
		// One second after 9999-12-31T23:59:59Z.
		{name: "exp 253402300800", token: signed(e.es, nil, map[string]any{"exp": 253402300800}), want: ReasonMalformed},
		{name: "exp as a bool", token: signed(e.es, nil, map[string]any{"exp": true}), want: ReasonMalformed},
		{name: "exp as an array", token: signed(e.es, nil, map[string]any{"exp": []int64{now + 60}}), want: ReasonMalformed},
		{name: "nbf in the future", token: signed(e.es, nil, map[string]any{"nbf": now + 3600}), want: ReasonNotYetValid},
		{name: "iat in the future", token: signed(e.es, nil, map[string]any{"iat": now + 3600}), want: ReasonNotYetValid},
		{name: "nbf 1e30", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.es, "ES256", `{"alg":"ES256","kid":"ec-1"}`, rawClaims(t, testClaims(nil), map[string]string{"nbf": "1e30"}))
		}, want: ReasonMalformed},

		// --- issuer (RFC 8725 §3.8) ---
		{name: "iss with a trailing slash", token: signed(e.es, nil, map[string]any{"iss": testIssuer + "/"}), want: ReasonWrongIssuer},
		{name: "iss in another case", token: signed(e.es, nil, map[string]any{"iss": strings.ToUpper(testIssuer)}), want: ReasonWrongIssuer},
		{name: "iss with a trailing space", token: signed(e.es, nil, map[string]any{"iss": testIssuer + " "}), want: ReasonWrongIssuer},
		{name: "iss as an array", token: signed(e.es, nil, map[string]any{"iss": []string{testIssuer}}), want: ReasonMalformed},
		{name: "iss missing", token: signed(e.es, nil, map[string]any{"iss": nil}), want: ReasonWrongIssuer},

		// --- audience (RFC 8725 §3.9) ---
		{name: "aud missing when configured", policy: requireAud, token: signed(e.es, nil, nil), want: ReasonWrongAudience},
		{name: "aud for another API", policy: requireAud, token: signed(e.es, nil, map[string]any{"aud": "https://other.example"}), want: ReasonWrongAudience},
		{name: "aud as a prefix", policy: requireAud, token: signed(e.es, nil, map[string]any{"aud": "https://api.example.evil"}), want: ReasonWrongAudience},

		// --- token type (RFC 8725 §3.11, §3.12; RFC 9068 §4) ---
		{name: "typ JWT when at+jwt is required", policy: requireAT, token: signed(e.es, nil, nil), want: ReasonWrongType},
		// An OpenID ID token replayed as an access token (RFC 9068 §4).
		{name: "ID token shaped token when at+jwt is required", policy: requireAT, token: signed(e.es, map[string]any{"typ": "JWT"},
			map[string]any{"nonce": "n-0S6_WzA2Mj", "azp": "client-1", "aud": "client-1", "auth_time": now - 60}), want: ReasonWrongType},
		{name: "typ missing when at+jwt is required", policy: requireAT, token: signed(e.es, map[string]any{"typ": nil}, nil), want: ReasonWrongType},
		{name: "typ at+jwt is accepted", policy: requireAT, token: signed(e.es, map[string]any{"typ": "at+jwt"}, nil)},

		// --- sender-constrained tokens (RFC 9449 §7.2, RFC 8705 §3) ---
		{name: "DPoP-bound token (cnf.jkt)", token: signed(e.es, nil, map[string]any{"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}), want: ReasonBoundToken},
		{name: "mTLS-bound token (cnf.x5t#S256)", token: signed(e.es, nil, map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}), want: ReasonBoundToken},

		// --- one kid, two key types (RFC 8725 §3.1: key bound to its alg) ---
		{name: "shared kid: ES256 token verifies with the EC key", token: signed(e.sharedEC, nil, nil)},
		{name: "shared kid: RS256 token verifies with the RSA key", token: signed(e.sharedRSA, nil, nil)},
		// ES256 label, RSA signature: the EC key is chosen and refuses it.
		{name: "shared kid: RS256 signature labelled ES256", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.sharedRSA, "RS256", `{"alg":"ES256","kid":"shared"}`, validClaimsJSON(t))
		}, want: ReasonBadSignature},
		// RS256 label, EC signature: the RSA key is chosen and refuses it.
		{name: "shared kid: ES256 signature labelled RS256", token: func(t testing.TB, e *attackEnv) string {
			return signedAs(t, e.sharedEC, "ES256", `{"alg":"RS256","kid":"shared"}`, validClaimsJSON(t))
		}, want: ReasonBadSignature},
		// CVE-2016-10555 class through the shared kid.
		{name: "shared kid: HS256 keyed with the RSA PEM", policy: allowHS, token: func(t testing.TB, e *attackEnv) string {
			return hs256Forgery(t, e.sharedRSA, e.sharedRSA.PublicPEM())
		}, want: ReasonUnknownKid},
	}

}

func TestAttacks(t *testing.T) {
	e := newAttackEnv(t)
	attacks := attackTable(e)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			policy, _ := testPolicy(e.set, jose.DefaultAlgorithms()...)
			if a.policy != nil {
				a.policy(policy)
			}
			v := testVerifier(verifierOptions{Leeway: testLeeway}, policy)
			res := wantReason(t, v, a.token(t, e), a.want)
			if a.want == "" && res.Key.ID == "shared" {
				want := e.sharedRSA
				if strings.HasPrefix(res.Token.Alg, "ES") {
					want = e.sharedEC
				}
				if !isKey(res.Key, want) {
					t.Fatalf("alg %s verified with the wrong key (%T)", res.Token.Alg, res.Key.Public)
				}
			}
		})
	}
	if n := e.jwksHits.Load(); n != 0 {
		t.Fatalf("the verifier fetched the attacker's jku/x5u %d times", n)
	}
}

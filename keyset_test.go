package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// modJWK returns k's public JWK with members changed: a nil value deletes.
func modJWK(k *jwttest.Key, changes map[string]any) map[string]any {
	m := k.JWK()
	for name, v := range changes {
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
	}
	return m
}

// offCurveJWK is a P-256 JWK whose y no longer satisfies the curve equation.
func offCurveJWK(t *testing.T, k *jwttest.Key) map[string]any {
	t.Helper()
	m := k.JWK()
	y, err := strictB64.DecodeString(m["y"].(string))
	if err != nil {
		t.Fatal(err)
	}
	y[len(y)-1] ^= 0x01
	m["y"] = jwttest.B64(y)
	return m
}

// TestParseKeySetSkipsUnusableKeys: each unusable key is skipped with one
// warning while the good key next to it is kept, so one bad key never fails
// the set (SPEC "Keys").
func TestParseKeySetSkipsUnusableKeys(t *testing.T) {
	good := fixtureKey(t, "ES256", "good", 0)
	rsaKey := fixtureKey(t, "RS256", "rsa", 0)
	small := &jwttest.Key{Kid: "rsa1024", Alg: "RS256", Private: testKeys().rsa1024}
	oct := fixtureKey(t, "HS256", "oct", 0)
	short := &jwttest.Key{Kid: "short", Alg: "HS256", Secret: testKeys().hmac[31][0]}
	p256 := fixtureKey(t, "ES256", "p256", 1)

	cases := []struct {
		name      string
		jwk       map[string]any
		tail      string // raw members appended after the JWK's own
		opts      LoadOptions
		kept      bool   // the odd key is kept (as well as the good one)
		warnMatch string // substring of the warning, "" = no warning expected
	}{
		{name: "RSA 1024 bits is skipped", jwk: small.JWK(), warnMatch: "1024 bits"},
		{name: "RSA 2048 bits is kept", jwk: rsaKey.JWK(), kept: true},
		// e = 1 makes "signature = padded message" verify (Wycheproof jwk 9).
		{name: "RSA exponent 1 is skipped", jwk: modJWK(rsaKey, map[string]any{"e": "AQ"}), warnMatch: "exponent"},
		{name: "RSA even exponent is skipped", jwk: modJWK(rsaKey, map[string]any{"e": "Ag"}), warnMatch: "exponent"},
		{name: "use enc is skipped", jwk: modJWK(rsaKey, map[string]any{"use": "enc"}), warnMatch: "use"},
		{name: "use empty string is skipped", jwk: modJWK(rsaKey, map[string]any{"use": ""}), warnMatch: "use"},
		{name: "use absent is kept", jwk: modJWK(rsaKey, map[string]any{"use": nil}), kept: true},
		{name: "key_ops sign only is skipped", jwk: modJWK(rsaKey, map[string]any{"key_ops": []string{"sign"}}), warnMatch: "key_ops"},
		{name: "key_ops empty is skipped", jwk: modJWK(rsaKey, map[string]any{"key_ops": []string{}}), warnMatch: "key_ops"},
		{name: "key_ops verify is kept", jwk: modJWK(rsaKey, map[string]any{"key_ops": []string{"sign", "verify"}}), kept: true},
		{name: "RSA private parts are ignored with a warning", jwk: rsaKey.PrivateJWK(), kept: true, warnMatch: "private"},
		{name: "EC private part is ignored with a warning", jwk: p256.PrivateJWK(), kept: true, warnMatch: "private"},
		{name: "Ed25519 private part is ignored with a warning", jwk: fixtureKey(t, "EdDSA", "ed", 0).PrivateJWK(), kept: true, warnMatch: "private"},
		{name: "oct without AllowHMAC is skipped", jwk: oct.JWK(), warnMatch: "oct"},
		{name: "oct with AllowHMAC is kept", jwk: oct.JWK(), opts: LoadOptions{AllowHMAC: true}, kept: true},
		{name: "oct of 31 bytes is skipped even with AllowHMAC", jwk: short.JWK(), opts: LoadOptions{AllowHMAC: true}, warnMatch: "31 bytes"},
		{name: "oct empty is skipped", jwk: modJWK(oct, map[string]any{"k": ""}), opts: LoadOptions{AllowHMAC: true}, warnMatch: "skipped"},
		{name: "EC point off the curve is skipped", jwk: offCurveJWK(t, p256), warnMatch: "skipped"},
		{name: "EC alg ES384 on a P-256 key is skipped", jwk: modJWK(p256, map[string]any{"alg": "ES384"}), warnMatch: "does not fit"},
		{name: "EC crv P-384 with P-256 coordinates is skipped", jwk: modJWK(p256, map[string]any{"crv": "P-384"}), warnMatch: "skipped"},
		{name: "EC secp256k1 is skipped", jwk: modJWK(p256, map[string]any{"crv": "secp256k1", "alg": nil}), warnMatch: "skipped"},
		{name: "RSA with alg ES256 is skipped", jwk: modJWK(rsaKey, map[string]any{"alg": "ES256"}), warnMatch: "does not fit"},
		{name: "alg RSA1_5 (encryption) is skipped", jwk: modJWK(rsaKey, map[string]any{"alg": "RSA1_5"}), warnMatch: "RSA1_5"},
		{name: "alg none is skipped", jwk: modJWK(rsaKey, map[string]any{"alg": "none"}), warnMatch: "none"},
		{name: "unknown kty is skipped", jwk: map[string]any{"kty": "XYZ", "kid": "x", "n": "AQAB"}, warnMatch: "skipped"},
		{name: "kty missing is skipped", jwk: modJWK(rsaKey, map[string]any{"kty": nil}), warnMatch: "skipped"},
		{name: "OKP X25519 is skipped", jwk: map[string]any{"kty": "OKP", "crv": "X25519", "kid": "x", "x": jwttest.B64(make([]byte, 32))}, warnMatch: "skipped"},
		{name: "RSA modulus missing is skipped", jwk: modJWK(rsaKey, map[string]any{"n": nil}), warnMatch: "skipped"},
		{name: "kid as a number is skipped", jwk: modJWK(rsaKey, map[string]any{"kid": 5}), warnMatch: "kid"},
		{name: "use as a number is skipped", jwk: modJWK(rsaKey, map[string]any{"use": 1}), warnMatch: "use"},
		{name: "key_ops as a string is skipped", jwk: modJWK(rsaKey, map[string]any{"key_ops": "verify"}), warnMatch: "key_ops"},
		// Member names are case-sensitive: an upper-case twin is just an
		// unknown member and must not change how the real one is read.
		// The twins go last (tail) because encoding/json lets the last
		// case-insensitive match win.
		{name: "USE sig does not override use enc", jwk: modJWK(rsaKey, map[string]any{"use": "enc"}), tail: `"USE":"sig"`, warnMatch: "use"},
		{name: "KEY_OPS verify does not override key_ops encrypt", jwk: modJWK(rsaKey, map[string]any{"key_ops": []string{"encrypt"}}), tail: `"KEY_OPS":["verify"]`, warnMatch: "key_ops"},
		{name: "ALG does not override alg", jwk: modJWK(p256, map[string]any{"alg": "ES384"}), tail: `"ALG":"ES256"`, warnMatch: "does not fit"},
		{name: "KTY RSA does not smuggle an oct key", jwk: oct.JWK(), tail: `"KTY":"RSA"`, warnMatch: "skipped"},
		// jwx reads "D" as a private part; whatever it makes of it, the
		// key must fail closed rather than load as something odd.
		{name: "an upper-case D fails closed", jwk: p256.JWK(), tail: `"D":"AAAA"`, warnMatch: "skipped"},
		{name: "an upper-case D with a real d value fails closed", jwk: p256.JWK(), tail: `"D":"` + p256.PrivateJWK()["d"].(string) + `"`, warnMatch: "skipped"},
		{name: "an Alg member alone is not alg", jwk: modJWK(p256, map[string]any{"alg": nil, "Alg": "RS256"}), kept: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			odd, err := json.Marshal(tc.jwk)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tail != "" {
				odd = append(append(odd[:len(odd)-1], ','), tc.tail+"}"...)
			}
			doc := []byte(`{"keys":[` + mustJSON(t, good.JWK()) + `,` + string(odd) + `]}`)
			set, warnings, err := ParseKeySet(doc, tc.opts)
			if err != nil {
				t.Fatalf("the set failed because of one key: %v (%q)", err, warnings)
			}
			want := []string{"good"}
			if tc.kept {
				want = append(want, fmt.Sprint(tc.jwk["kid"]))
			}
			if got := set.Kids(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("kept kids %q, want %q (warnings %q)", got, want, warnings)
			}
			switch {
			case tc.warnMatch == "" && len(warnings) != 0:
				t.Fatalf("unexpected warnings %q", warnings)
			case tc.warnMatch != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warnMatch)):
				t.Fatalf("warnings %q, want one containing %q", warnings, tc.warnMatch)
			}
			if tc.warnMatch != "" && !tc.kept && !strings.Contains(warnings[0], "key 1") {
				t.Fatalf("warning %q does not name the key's position", warnings[0])
			}
		})
	}
}

// TestParseKeySetPrivatePartsGiveThePublicKey: a JWK with private members is
// used as its public half only, and that half verifies real signatures.
func TestParseKeySetPrivatePartsGiveThePublicKey(t *testing.T) {
	for _, alg := range []string{"RS256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			k := fixtureKey(t, alg, "priv", 0)
			set, warnings, err := ParseKeySet(jwttest.JWKSOf(k.PrivateJWK()), LoadOptions{})
			if err != nil || len(set.Keys) != 1 || len(warnings) != 1 {
				t.Fatalf("set %v warnings %q err %v", set, warnings, err)
			}
			switch pub := set.Keys[0].Public.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
				if !samePublicKey(pub, k.Public()) {
					t.Fatal("imported public key differs from the signer's")
				}
			default:
				t.Fatalf("kept a %T, want a public key", pub)
			}
			input := "header.payload"
			if !VerifySignature(alg, set.Keys[0].Public, input, jwttest.SignInput(t, k, alg, []byte(input))) {
				t.Fatal("the public half does not verify the private key's signature")
			}
		})
	}
}

// samePublicKey compares public keys of any supported type.
func samePublicKey(a, b any) bool {
	if secret, ok := a.(hmacSecret); ok {
		other, ok := b.([]byte)
		return ok && bytes.Equal(secret, other)
	}
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func TestParseKeySetWholeDocument(t *testing.T) {
	good := fixtureKey(t, "ES256", "good", 0)
	cases := []struct {
		name string
		doc  string
	}{
		{"empty keys array", `{"keys":[]}`},
		{"keys null", `{"keys":null}`},
		{"no keys member", `{"other":[]}`},
		{"keys not an array", `{"keys":{}}`},
		{"not JSON", `<html>`},
		{"empty input", ``},
		{"JSON array", `[]`},
		{"duplicate keys member", `{"keys":[],"keys":` + string(bytes.TrimPrefix(jwttest.JWKS(good), []byte(`{"keys":`)))},
		{"trailing garbage", string(jwttest.JWKS(good)) + `x`},
		{"only unusable keys", string(jwttest.JWKSOf(modJWK(good, map[string]any{"use": "enc"})))},
		{"a single JWK, not a set", mustJSON(t, good.JWK())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, _, err := ParseKeySet([]byte(tc.doc), LoadOptions{AllowHMAC: true})
			if err == nil {
				t.Fatalf("accepted: %d keys", len(set.Keys))
			}
			if set != nil {
				t.Fatal("an error came with a set")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestParseKeySetCapsAt100Keys: at most 100 usable keys are used, with a
// warning, and the set still loads.
func TestParseKeySetCapsAt100Keys(t *testing.T) {
	base := fixtureKey(t, "ES256", "", 0)
	jwks := make([]map[string]any, 0, 130)
	// Unusable keys first: they do not count against the cap.
	for i := 0; i < 10; i++ {
		jwks = append(jwks, modJWK(base, map[string]any{"kid": fmt.Sprintf("enc-%d", i), "use": "enc"}))
	}
	for i := 0; i < 120; i++ {
		jwks = append(jwks, modJWK(base, map[string]any{"kid": fmt.Sprintf("k%03d", i)}))
	}
	set, warnings, err := ParseKeySet(jwttest.JWKSOf(jwks...), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != maxKeysPerSet {
		t.Fatalf("kept %d keys, want %d", len(set.Keys), maxKeysPerSet)
	}
	if set.Keys[0].ID != "k000" || set.Keys[99].ID != "k099" {
		t.Fatalf("kept %q…%q, want the first 100 in order", set.Keys[0].ID, set.Keys[99].ID)
	}
	if last := warnings[len(warnings)-1]; !strings.Contains(last, "100") || len(warnings) != 11 {
		t.Fatalf("warnings %q", warnings)
	}
}

// TestParseKeySetPEM: PUBLIC KEY and CERTIFICATE blocks, one or more; other
// blocks skipped with a warning.
func TestParseKeySetPEM(t *testing.T) {
	rs := fixtureKey(t, "RS256", "", 0)
	ec := fixtureKey(t, "ES384", "", 0)
	ed := fixtureKey(t, "EdDSA", "", 0)
	ec2 := fixtureKey(t, "ES256", "", 1)
	rsaPriv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKeys().rsa[0])})
	pkcs8, err := x509.MarshalPKCS8PrivateKey(testKeys().ec["P-256"][1])
	if err != nil {
		t.Fatal(err)
	}
	ecPriv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	small := (&jwttest.Key{Private: testKeys().rsa1024}).PublicPEM()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, []byte("\n")) }

	cases := []struct {
		name     string
		data     []byte
		want     []*jwttest.Key
		warnings int
	}{
		{"one RSA PUBLIC KEY", rs.PublicPEM(), []*jwttest.Key{rs}, 0},
		{"one EC PUBLIC KEY", ec.PublicPEM(), []*jwttest.Key{ec}, 0},
		{"one Ed25519 PUBLIC KEY", ed.PublicPEM(), []*jwttest.Key{ed}, 0},
		{"one CERTIFICATE", rs.CertPEM(t), []*jwttest.Key{rs}, 0},
		{"EC CERTIFICATE", ec2.CertPEM(t), []*jwttest.Key{ec2}, 0},
		{"several blocks in order", cat(rs.PublicPEM(), ec.CertPEM(t), ed.PublicPEM()), []*jwttest.Key{rs, ec, ed}, 0},
		{"leading whitespace", cat([]byte("\n\n  "), ec.PublicPEM()), []*jwttest.Key{ec}, 0},
		{"private key block skipped", cat(rsaPriv, ec.PublicPEM()), []*jwttest.Key{ec}, 1},
		{"PKCS#8 private key block skipped", cat(ec.PublicPEM(), ecPriv), []*jwttest.Key{ec}, 1},
		{"RSA 1024 block skipped", cat(small, ed.PublicPEM()), []*jwttest.Key{ed}, 1},
		{"RSA exponent 1 block skipped", cat(rsaPEMWithExponent(t, 1), ed.PublicPEM()), []*jwttest.Key{ed}, 1},
		{"corrupt block skipped", cat(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}), rs.PublicPEM()), []*jwttest.Key{rs}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, warnings, err := ParseKeySet(tc.data, LoadOptions{})
			if err != nil {
				t.Fatalf("ParseKeySet: %v (%q)", err, warnings)
			}
			if len(warnings) != tc.warnings {
				t.Fatalf("warnings %q, want %d", warnings, tc.warnings)
			}
			if len(set.Keys) != len(tc.want) {
				t.Fatalf("kept %d keys, want %d", len(set.Keys), len(tc.want))
			}
			for i, k := range set.Keys {
				want := tc.want[i]
				if !samePublicKey(k.Public, want.Public()) || k.ID != "" || k.Alg != "" {
					t.Fatalf("key %d: %T kid %q alg %q is not the expected key", i, k.Public, k.ID, k.Alg)
				}
				// The imported key really verifies, and is the one selected.
				input := "h.p"
				if !VerifySignature(want.Alg, k.Public, input, jwttest.SignInput(t, want, want.Alg, []byte(input))) {
					t.Fatalf("key %d does not verify a %s signature", i, want.Alg)
				}
				if got := set.Select("any-kid", want.Alg); len(set.Keys) == 1 && got != k {
					t.Fatalf("the set's only kid-less key is not selected for %s", want.Alg)
				}
			}
		})
	}

	for name, data := range map[string][]byte{
		"only a private key block": rsaPriv,
		"only an RSA 1024 block":   small,
		"PEM header without block": []byte("-----BEGIN PUBLIC KEY-----\nnot base64\n"),
	} {
		t.Run(name+" fails the set", func(t *testing.T) {
			if set, w, err := ParseKeySet(data, LoadOptions{}); err == nil {
				t.Fatalf("accepted %d keys (%q)", len(set.Keys), w)
			}
		})
	}
}

// TestKeySetFingerprints: a reload of the same keys gives the same
// fingerprints (the token cache relies on it); another kid or key does not.
func TestKeySetFingerprints(t *testing.T) {
	a := fixtureKey(t, "ES256", "a", 0)
	aOther := fixtureKey(t, "ES256", "a", 1)
	b := fixtureKey(t, "ES256", "b", 0)
	s1 := loadTestSet(t, LoadOptions{}, a, b)
	s2 := loadTestSet(t, LoadOptions{}, b, a)
	s3 := loadTestSet(t, LoadOptions{}, aOther)
	for _, k := range s1.Keys {
		if k.Fingerprint() == "" || !s2.Has(k.Fingerprint()) {
			t.Fatalf("key %q lost its fingerprint across a reload", k.ID)
		}
	}
	if s3.Has(s1.Keys[0].Fingerprint()) {
		t.Fatal("a different key under the same kid has the same fingerprint")
	}
	if s1.Keys[0].Fingerprint() == s1.Keys[1].Fingerprint() {
		t.Fatal("same material under two kids has one fingerprint")
	}
	var nilSet *KeySet
	if nilSet.Has(s1.Keys[0].Fingerprint()) || nilSet.Kids() != nil || nilSet.Select("a", "ES256") != nil {
		t.Fatal("a nil set must hold nothing")
	}
}

// TestKeySetSelect exercises SPEC step 3's candidate rules directly.
func TestKeySetSelect(t *testing.T) {
	es := fixtureKey(t, "ES256", "k", 0)
	rs := fixtureKey(t, "RS256", "k", 0)
	noKid := fixtureKey(t, "ES384", "", 0)
	hs := fixtureKey(t, "HS384", "h", 0)
	hsShort := &jwttest.Key{Kid: "h32", Alg: "", Secret: testKeys().hmac[32][0], OmitAlg: true}
	set := loadTestSet(t, LoadOptions{AllowHMAC: true}, es, rs, noKid, hs, hsShort)
	cases := []struct {
		kid, alg string
		want     *jwttest.Key
	}{
		{"k", "ES256", es},
		{"k", "RS256", rs},
		{"k", "RS384", nil}, // rs has alg RS256
		{"k", "ES384", nil}, // curve mismatch
		{"", "ES384", noKid},
		{"", "ES256", es}, // the one ES256-fitting key, though it has a kid
		{"", "RS256", rs},
		{"zzz", "ES384", nil}, // the kid-less key is not the set's only key
		{"h", "HS384", hs},
		{"h", "HS256", nil}, // alg mismatch
		{"h32", "HS256", hsShort},
		{"h32", "HS384", nil}, // 32 bytes are too short for HS384
		{"h32", "HS512", nil},
		{"k", "none", nil},
		{"k", "", nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("kid %q alg %s", tc.kid, tc.alg), func(t *testing.T) {
			got := set.Select(tc.kid, tc.alg)
			switch {
			case tc.want == nil && got != nil:
				t.Fatalf("selected %q (%T), want none", got.ID, got.Public)
			case tc.want != nil && got == nil:
				t.Fatal("selected none")
			case tc.want != nil && !isKey(got, tc.want):
				t.Fatalf("selected %q (%T), want %q (%T)", got.ID, got.Public, tc.want.Kid, tc.want.Public())
			}
		})
	}
}

// TestVerifySignatureRefusesKeyTypeConfusion: VerifySignature itself never
// uses a key with an algorithm of another family, whatever the caller did.
func TestVerifySignatureRefusesKeyTypeConfusion(t *testing.T) {
	rs := fixtureKey(t, "RS256", "", 0)
	ec := fixtureKey(t, "ES256", "", 0)
	ed := fixtureKey(t, "EdDSA", "", 0)
	input := "a.b"
	der, _ := x509.MarshalPKIXPublicKey(rs.Public())
	cases := []struct {
		name string
		alg  string
		key  any
		sig  []byte
	}{
		{"HS256 with an RSA public key", "HS256", rs.Public(), hmacWith(t, der, input)},
		{"HS256 with raw bytes", "HS256", der, hmacWith(t, der, input)},
		{"RS256 with an EC key", "RS256", ec.Public(), jwttest.SignInput(t, rs, "RS256", []byte(input))},
		{"ES384 with a P-256 key", "ES384", ec.Public(), jwttest.SignInput(t, ec, "ES384", []byte(input))},
		{"EdDSA with an EC key", "EdDSA", ec.Public(), jwttest.SignInput(t, ed, "EdDSA", []byte(input))},
		{"unknown alg", "XS256", rs.Public(), jwttest.SignInput(t, rs, "RS256", []byte(input))},
		{"nil key", "RS256", nil, jwttest.SignInput(t, rs, "RS256", []byte(input))},
		{"hmacSecret too short for HS512", "HS512", hmacSecret(testKeys().hmac[48][0]), hmacWith(t, testKeys().hmac[48][0], input)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if VerifySignature(tc.alg, tc.key, input, tc.sig) {
				t.Fatal("verified")
			}
		})
	}
}

// hmacWith computes HS256 (or HS512 for 48+ byte secrets used as HS512) of
// input with secret through jwttest, the way an attacker would.
func hmacWith(t *testing.T, secret []byte, input string) []byte {
	t.Helper()
	alg := "HS256"
	if len(secret) == 48 {
		alg = "HS512"
	}
	return jwttest.SignInput(t, &jwttest.Key{Secret: secret}, alg, []byte(input))
}

// rsaPEMWithExponent is the fixture RSA modulus with public exponent e, as
// a PUBLIC KEY block (x509 marshals any exponent; loading must refuse bad ones).
func rsaPEMWithExponent(t *testing.T, e int) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: testKeys().rsa[0].N, E: e})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

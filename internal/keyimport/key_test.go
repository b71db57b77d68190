package keyimport

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

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

// withTail appends raw members after the JWK's own: encoding/json lets the
// last case-insensitive match win, so a twin placed last is the one a
// case-insensitive reader would take.
func withTail(t *testing.T, m map[string]any, tail string) []byte {
	t.Helper()
	b := []byte(jwttest.MustJSON(t, m))
	if tail != "" {
		b = append(append(b[:len(b)-1], ','), tail+"}"...)
	}
	return b
}

func kidsOf(keys []*Key) []string {
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.ID
	}
	return kids
}

// TestParseKeysSkipsUnusableKeys: each unusable key is skipped with one
// warning while the good key next to it is kept, so one bad key never fails
// the set.
func TestParseKeysSkipsUnusableKeys(t *testing.T) {
	good := fixture(t, "ES256", "good", 0)
	rsaKey := fixture(t, "RS256", "rsa", 0)
	small := &jwttest.Key{Kid: "rsa1024", Alg: "RS256", Private: jwttest.Shared().RSA1024}
	oct := fixture(t, "HS256", "oct", 0)
	short := &jwttest.Key{Kid: "short", Alg: "HS256", Secret: jwttest.Shared().HMAC[31][0]}
	p256 := fixture(t, "ES256", "p256", 1)

	cases := []struct {
		name      string
		jwk       map[string]any
		tail      string // raw members appended after the JWK's own
		opts      ImportOptions
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
		{name: "key_ops a string, not an array, is skipped", jwk: modJWK(rsaKey, map[string]any{"key_ops": "verify"}), warnMatch: "key_ops"},
		// RFC 7517 §4.3 allows values beyond the registered ones.
		{name: "key_ops verify with an unregistered value is kept", jwk: modJWK(rsaKey, map[string]any{"key_ops": []string{"verify", "x-audit"}}), kept: true},
		{name: "RSA private parts are ignored with a warning", jwk: rsaKey.PrivateJWK(), kept: true, warnMatch: "private"},
		{name: "EC private part is ignored with a warning", jwk: p256.PrivateJWK(), kept: true, warnMatch: "private"},
		{name: "Ed25519 private part is ignored with a warning", jwk: fixture(t, "EdDSA", "ed", 0).PrivateJWK(), kept: true, warnMatch: "private"},
		{name: "oct without AllowHMAC is skipped", jwk: oct.JWK(), warnMatch: "oct"},
		{name: "oct with AllowHMAC is kept", jwk: oct.JWK(), opts: ImportOptions{AllowHMAC: true}, kept: true},
		{name: "oct of 31 bytes is skipped even with AllowHMAC", jwk: short.JWK(), opts: ImportOptions{AllowHMAC: true}, warnMatch: "31 bytes"},
		{name: "oct empty is skipped", jwk: modJWK(oct, map[string]any{"k": ""}), opts: ImportOptions{AllowHMAC: true}, warnMatch: "skipped"},
		{name: "oct of 32 bytes with alg HS384 does not fit", jwk: modJWK(oct, map[string]any{"alg": "HS384"}), opts: ImportOptions{AllowHMAC: true}, warnMatch: "does not fit"},
		{name: "EC point off the curve is skipped", jwk: offCurveJWK(t, p256), warnMatch: "skipped"},
		{name: "EC alg ES384 on a P-256 key is skipped", jwk: modJWK(p256, map[string]any{"alg": "ES384"}), warnMatch: "does not fit"},
		{name: "EC crv P-384 with P-256 coordinates is skipped", jwk: modJWK(p256, map[string]any{"crv": "P-384"}), warnMatch: "skipped"},
		{name: "EC secp256k1 is skipped", jwk: modJWK(p256, map[string]any{"crv": "secp256k1", "alg": nil}), warnMatch: "skipped"},
		{name: "RSA with alg ES256 is skipped", jwk: modJWK(rsaKey, map[string]any{"alg": "ES256"}), warnMatch: "does not fit"},
		{name: "alg RSA1_5 (encryption) is skipped", jwk: modJWK(rsaKey, map[string]any{"alg": "RSA1_5"}), warnMatch: "RSA1_5"},
		{name: "alg none is skipped", jwk: modJWK(rsaKey, map[string]any{"alg": "none"}), warnMatch: "none"},
		{name: "alg ES521 (no JWA name) is skipped", jwk: modJWK(p256, map[string]any{"alg": "ES521"}), warnMatch: "skipped"},
		{name: "unknown kty is skipped", jwk: map[string]any{"kty": "XYZ", "kid": "x", "n": "AQAB"}, warnMatch: "skipped"},
		{name: "kty missing is skipped", jwk: modJWK(rsaKey, map[string]any{"kty": nil}), warnMatch: "skipped"},
		{name: "kty in lower case is skipped", jwk: modJWK(rsaKey, map[string]any{"kty": "rsa"}), warnMatch: "skipped"},
		{name: "OKP X25519 is skipped", jwk: map[string]any{"kty": "OKP", "crv": "X25519", "kid": "x", "x": jwttest.B64(make([]byte, 32))}, warnMatch: "skipped"},
		{name: "RSA modulus missing is skipped", jwk: modJWK(rsaKey, map[string]any{"n": nil}), warnMatch: "skipped"},
		{name: "kid as a number is skipped", jwk: modJWK(rsaKey, map[string]any{"kid": 5}), warnMatch: "kid"},
		{name: "use as a number is skipped", jwk: modJWK(rsaKey, map[string]any{"use": 1}), warnMatch: "use"},
		// Member names are case-sensitive (RFC 7517 §4): an upper-case
		// twin is an unknown member and must not change how the real one
		// is read. TestImportJudgesTheKeyJWXImports checks the same inputs
		// against jwx itself.
		{name: "USE sig does not override use enc", jwk: modJWK(rsaKey, map[string]any{"use": "enc"}), tail: `"USE":"sig"`, warnMatch: "use"},
		{name: "USE enc does not override use sig", jwk: rsaKey.JWK(), tail: `"USE":"enc"`, kept: true},
		{name: "KEY_OPS verify does not override key_ops encrypt", jwk: modJWK(rsaKey, map[string]any{"key_ops": []string{"encrypt"}}), tail: `"KEY_OPS":["verify"]`, warnMatch: "key_ops"},
		{name: "ALG does not override alg", jwk: modJWK(p256, map[string]any{"alg": "ES384"}), tail: `"ALG":"ES256"`, warnMatch: "does not fit"},
		{name: "KTY RSA does not smuggle an oct key", jwk: oct.JWK(), tail: `"KTY":"RSA"`, warnMatch: "skipped"},
		{name: "KTY oct does not turn an RSA key symmetric", jwk: rsaKey.JWK(), tail: `"KTY":"oct"`, opts: ImportOptions{AllowHMAC: true}, warnMatch: "skipped"},
		{name: "an upper-case D fails closed", jwk: p256.JWK(), tail: `"D":"AAAA"`, warnMatch: "skipped"},
		{name: "an upper-case D with a real d value fails closed", jwk: p256.JWK(), tail: `"D":"` + p256.PrivateJWK()["d"].(string) + `"`, warnMatch: "skipped"},
		{name: "an Alg member alone is not alg", jwk: modJWK(p256, map[string]any{"alg": nil, "Alg": "RS256"}), kept: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			odd := withTail(t, tc.jwk, tc.tail)
			doc := []byte(`{"keys":[` + jwttest.MustJSON(t, good.JWK()) + `,` + string(odd) + `]}`)
			keys, warnings, err := ParseKeys(doc, tc.opts)
			if err != nil {
				t.Fatalf("the set failed because of one key: %v (%q)", err, warnings)
			}
			want := []string{"good"}
			if tc.kept {
				want = append(want, fmt.Sprint(tc.jwk["kid"]))
			}
			if got := kidsOf(keys); !slices.Equal(got, want) {
				t.Fatalf("kept kids %q, want %q (warnings %q)", got, want, warnings)
			}
			switch {
			case tc.warnMatch == "" && len(warnings) != 0:
				t.Fatalf("unexpected warnings %q", warnings)
			case tc.warnMatch != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warnMatch)):
				t.Fatalf("warnings %q, want one containing %q", warnings, tc.warnMatch)
			}
			if tc.warnMatch != "" && !tc.kept && !strings.HasPrefix(warnings[0], "key 1: skipped: ") {
				t.Fatalf("warning %q does not name the key's position", warnings[0])
			}
			// ImportJWK on the lone JWK decides the same way.
			k, warn, err := ImportJWK(odd, tc.opts)
			if (k != nil) != tc.kept || (err == nil) != tc.kept {
				t.Fatalf("ImportJWK: key %v err %v, want kept=%v", k, err, tc.kept)
			}
			if tc.kept && (warn != "") != (tc.warnMatch != "") {
				t.Fatalf("ImportJWK warning %q, want one containing %q", warn, tc.warnMatch)
			}
		})
	}
}

// TestImportJudgesTheKeyJWXImports is the regression test for the reader
// differential: for JWKs whose members have case twins (and others), the
// decision is the one jwx's own parse implies, and the imported key is the
// key jwx exports. It holds whatever jwx does with the twins.
func TestImportJudgesTheKeyJWXImports(t *testing.T) {
	rsaKey := fixture(t, "RS256", "rsa", 0)
	p256 := fixture(t, "ES256", "p256", 0)
	oct := fixture(t, "HS256", "oct", 0)
	inputs := map[string][]byte{
		"use enc + USE sig":         withTail(t, modJWK(rsaKey, map[string]any{"use": "enc"}), `"USE":"sig"`),
		"use sig + USE enc":         withTail(t, rsaKey.JWK(), `"USE":"enc"`),
		"USE sig alone":             withTail(t, modJWK(rsaKey, map[string]any{"use": nil}), `"USE":"sig"`),
		"USE enc alone":             withTail(t, modJWK(rsaKey, map[string]any{"use": nil}), `"USE":"enc"`),
		"Use enc alone":             withTail(t, modJWK(rsaKey, map[string]any{"use": nil}), `"Use":"enc"`),
		"key_ops encrypt + KEY_OPS": withTail(t, modJWK(rsaKey, map[string]any{"key_ops": []string{"encrypt"}}), `"KEY_OPS":["verify"]`),
		"KEY_OPS sign alone":        withTail(t, rsaKey.JWK(), `"KEY_OPS":["sign"]`),
		"alg ES384 + ALG ES256":     withTail(t, modJWK(p256, map[string]any{"alg": "ES384"}), `"ALG":"ES256"`),
		"ALG ES384 alone":           withTail(t, modJWK(p256, map[string]any{"alg": nil}), `"ALG":"ES384"`),
		"kid a + KID b":             withTail(t, p256.JWK(), `"KID":"b"`),
		"kty oct + KTY RSA":         withTail(t, oct.JWK(), `"KTY":"RSA"`),
		"kty RSA + KTY oct":         withTail(t, rsaKey.JWK(), `"KTY":"oct"`),
		"kty EC + KTY RSA":          withTail(t, p256.JWK(), `"KTY":"RSA"`),
		"D alongside public EC":     withTail(t, p256.JWK(), `"D":"`+p256.PrivateJWK()["d"].(string)+`"`),
		"d private EC":              []byte(jwttest.MustJSON(t, p256.PrivateJWK())),
		"plain RSA":                 []byte(jwttest.MustJSON(t, rsaKey.JWK())),
		"plain oct":                 []byte(jwttest.MustJSON(t, oct.JWK())),
	}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			key, _, err := ImportJWK(raw, ImportOptions{AllowHMAC: true})
			parsed, jwxErr := jwk.ParseKey(raw)
			if jwxErr != nil {
				if err == nil {
					t.Fatalf("imported a key jwx does not parse: %v", jwxErr)
				}
				return
			}
			use, hasUse := parsed.KeyUsage()
			ops, hasOps := parsed.KeyOps()
			alg, hasAlg := parsed.Algorithm()
			kid, _ := parsed.KeyID()
			wantKept := (!hasUse || use == "sig") && (!hasOps || slices.Contains(ops, jwk.KeyOpVerify)) &&
				(!hasAlg || jose.LookupAlgorithm(alg.String()) != nil)
			if !wantKept {
				if err == nil {
					t.Fatalf("kept a key jwx reads as use %q/%v, key_ops %v/%v, alg %v/%v", use, hasUse, ops, hasOps, alg, hasAlg)
				}
				return
			}
			if err != nil {
				// Only the key-material rules may refuse it now.
				if !strings.Contains(err.Error(), "does not fit") && !strings.Contains(err.Error(), "RSA") &&
					!strings.Contains(err.Error(), "EC") && !strings.Contains(err.Error(), "HMAC") {
					t.Fatalf("refused a key jwx reads as usable: %v", err)
				}
				return
			}
			if key.ID != kid || (hasAlg && key.Alg != alg.String()) || (!hasAlg && key.Alg != "") {
				t.Fatalf("key kid %q alg %q, jwx read kid %q alg %v", key.ID, key.Alg, kid, alg)
			}
			pub, err := jwk.PublicRawKeyOf(parsed)
			if err != nil {
				if raw, rawErr := jwxExportSymmetric(parsed); rawErr == nil {
					pub = raw
				} else {
					t.Fatalf("jwx cannot export what we imported: %v", err)
				}
			}
			if !samePublicKey(key.Public, pub) {
				t.Fatalf("imported %T differs from jwx's %T", key.Public, pub)
			}
		})
	}
}

// jwxExportSymmetric exports a jwx symmetric key's secret.
func jwxExportSymmetric(k jwk.Key) ([]byte, error) {
	var secret []byte
	err := jwk.Export(k, &secret)
	return secret, err
}

// samePublicKey compares public keys of any supported type.
func samePublicKey(a, b any) bool {
	if secret, ok := a.(jose.HMACSecret); ok {
		other, ok := b.([]byte)
		return ok && bytes.Equal(secret, other)
	}
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// TestParseKeysPrivatePartsGiveThePublicKey: a JWK with private members is
// used as its public half only, and that half verifies real signatures.
func TestParseKeysPrivatePartsGiveThePublicKey(t *testing.T) {
	for _, alg := range []string{"RS256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			k := fixture(t, alg, "priv", 0)
			keys, warnings, err := ParseKeys(jwttest.JWKSOf(k.PrivateJWK()), ImportOptions{})
			if err != nil || len(keys) != 1 || len(warnings) != 1 {
				t.Fatalf("keys %v warnings %q err %v", keys, warnings, err)
			}
			switch pub := keys[0].Public.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
				if !samePublicKey(pub, k.Public()) {
					t.Fatal("imported public key differs from the signer's")
				}
			default:
				t.Fatalf("kept a %T, want a public key", pub)
			}
			input := "header.payload"
			if !jose.Verify(alg, keys[0].Public, input, jwttest.SignInput(t, k, alg, []byte(input))) {
				t.Fatal("the public half does not verify the private key's signature")
			}
		})
	}
}

func TestParseKeysWholeDocument(t *testing.T) {
	good := fixture(t, "ES256", "good", 0)
	cases := []struct {
		name string
		doc  string
	}{
		{"empty keys array", `{"keys":[]}`},
		{"keys null", `{"keys":null}`},
		{"no keys member", `{"other":[]}`},
		{"keys not an array", `{"keys":{}}`},
		{"keys an array nested elsewhere only", `{"x":{"keys":[` + jwttest.MustJSON(t, good.JWK()) + `]}}`},
		{"not JSON", `<html>`},
		{"empty input", ``},
		{"JSON array", `[]`},
		{"duplicate keys member", `{"keys":[],"keys":` + string(bytes.TrimPrefix(jwttest.JWKS(good), []byte(`{"keys":`)))},
		{"duplicate member inside a key", `{"keys":[` + string(withTail(t, good.JWK(), `"kid":"other"`)) + `]}`},
		{"a key nested too deep", `{"keys":[` + string(withTail(t, good.JWK(), `"x":`+jwttest.NestedObjects(jose.MaxDepth))) + `]}`},
		{"invalid UTF-8", `{"keys":[` + string(withTail(t, good.JWK(), "\"x\":\"\xff\"")) + `]}`},
		{"trailing garbage", string(jwttest.JWKS(good)) + `x`},
		{"only unusable keys", string(jwttest.JWKSOf(modJWK(good, map[string]any{"use": "enc"})))},
		{"a single JWK, not a set", jwttest.MustJSON(t, good.JWK())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, _, err := ParseKeys([]byte(tc.doc), ImportOptions{AllowHMAC: true})
			if err == nil {
				t.Fatalf("accepted: %d keys", len(keys))
			}
			if keys != nil {
				t.Fatal("an error came with keys")
			}
		})
	}
}

// TestImportJWK: the single-JWK entry point applies the strict parser
// itself, since its bytes come straight from a request.
func TestImportJWK(t *testing.T) {
	ec := fixture(t, "ES256", "k", 0)
	key, warning, err := ImportJWK([]byte(jwttest.MustJSON(t, ec.JWK())), ImportOptions{})
	if err != nil || warning != "" || key.ID != "k" || key.Alg != "ES256" || !samePublicKey(key.Public, ec.Public()) {
		t.Fatalf("key %+v warning %q err %v", key, warning, err)
	}
	for name, raw := range map[string]string{
		"duplicate member": string(withTail(t, ec.JWK(), `"x":"AAAA"`)),
		"a JWK Set":        string(jwttest.JWKS(ec)),
		"trailing data":    jwttest.MustJSON(t, ec.JWK()) + "{}",
		"not an object":    `"k"`,
		"oct without HMAC": jwttest.MustJSON(t, fixture(t, "HS256", "h", 0).JWK()),
	} {
		t.Run(name, func(t *testing.T) {
			if k, _, err := ImportJWK([]byte(raw), ImportOptions{}); err == nil {
				t.Fatalf("imported %+v", k)
			}
		})
	}
}

// TestParseKeysCapsAtMaxKeys: at most MaxKeys usable keys are used, with a
// warning, and the set still loads.
func TestParseKeysCapsAtMaxKeys(t *testing.T) {
	base := fixture(t, "ES256", "", 0)
	jwks := make([]map[string]any, 0, 130)
	// Unusable keys first: they do not count against the cap.
	for i := 0; i < 10; i++ {
		jwks = append(jwks, modJWK(base, map[string]any{"kid": fmt.Sprintf("enc-%d", i), "use": "enc"}))
	}
	for i := 0; i < 120; i++ {
		jwks = append(jwks, modJWK(base, map[string]any{"kid": fmt.Sprintf("k%03d", i)}))
	}
	keys, warnings, err := ParseKeys(jwttest.JWKSOf(jwks...), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != MaxKeys || MaxKeys != 100 {
		t.Fatalf("kept %d keys, want %d", len(keys), MaxKeys)
	}
	if keys[0].ID != "k000" || keys[99].ID != "k099" {
		t.Fatalf("kept %q…%q, want the first 100 in order", keys[0].ID, keys[99].ID)
	}
	if last := warnings[len(warnings)-1]; !strings.Contains(last, "100") || len(warnings) != 11 {
		t.Fatalf("warnings %q", warnings)
	}
}

// TestParseKeysPEM: PUBLIC KEY and CERTIFICATE blocks, one or more; other
// blocks skipped with a warning.
func TestParseKeysPEM(t *testing.T) {
	rs := fixture(t, "RS256", "", 0)
	ec := fixture(t, "ES384", "", 0)
	ed := fixture(t, "EdDSA", "", 0)
	ec2 := fixture(t, "ES256", "", 1)
	rsaPriv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(jwttest.Shared().RSA[0])})
	pkcs8, err := x509.MarshalPKCS8PrivateKey(jwttest.Shared().EC["P-256"][1])
	if err != nil {
		t.Fatal(err)
	}
	ecPriv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	small := (&jwttest.Key{Private: jwttest.Shared().RSA1024}).PublicPEM()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, []byte("\n")) }

	cases := []struct {
		name     string
		data     []byte
		want     []*jwttest.Key
		warnings []string // substrings, one per warning
	}{
		{"one RSA PUBLIC KEY", rs.PublicPEM(), []*jwttest.Key{rs}, nil},
		{"one EC PUBLIC KEY", ec.PublicPEM(), []*jwttest.Key{ec}, nil},
		{"one Ed25519 PUBLIC KEY", ed.PublicPEM(), []*jwttest.Key{ed}, nil},
		{"one CERTIFICATE", rs.CertPEM(t), []*jwttest.Key{rs}, nil},
		{"EC CERTIFICATE", ec2.CertPEM(t), []*jwttest.Key{ec2}, nil},
		{"several blocks in order", cat(rs.PublicPEM(), ec.CertPEM(t), ed.PublicPEM()), []*jwttest.Key{rs, ec, ed}, nil},
		{"leading whitespace", cat([]byte("\n\n  "), ec.PublicPEM()), []*jwttest.Key{ec}, nil},
		{"private key block skipped", cat(rsaPriv, ec.PublicPEM()), []*jwttest.Key{ec}, []string{"PEM block 0: skipped: type"}},
		{"PKCS#8 private key block skipped", cat(ec.PublicPEM(), ecPriv), []*jwttest.Key{ec}, []string{"PEM block 1: skipped: type"}},
		{"RSA 1024 block skipped", cat(small, ed.PublicPEM()), []*jwttest.Key{ed}, []string{"1024 bits"}},
		{"RSA exponent 1 block skipped", cat(rsaPEMWithExponent(t, 1), ed.PublicPEM()), []*jwttest.Key{ed}, []string{"exponent"}},
		{"RSA exponent 4 block skipped", cat(rsaPEMWithExponent(t, 4), ed.PublicPEM()), []*jwttest.Key{ed}, []string{"exponent"}},
		{"RSA exponent 65537 block kept", rsaPEMWithExponent(t, 65537), []*jwttest.Key{rs}, nil},
		{"X25519 block skipped", cat(x25519PEM(t), ed.PublicPEM()), []*jwttest.Key{ed}, []string{"unsupported key type"}},
		{"corrupt block skipped", cat(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}), rs.PublicPEM()), []*jwttest.Key{rs}, []string{"PEM block 0: skipped"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, warnings, err := ParseKeys(tc.data, ImportOptions{AllowHMAC: true})
			if err != nil {
				t.Fatalf("ParseKeys: %v (%q)", err, warnings)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %q", warnings, tc.warnings)
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Fatalf("warning %q, want one containing %q", warnings[i], w)
				}
			}
			if len(keys) != len(tc.want) {
				t.Fatalf("kept %d keys, want %d", len(keys), len(tc.want))
			}
			for i, k := range keys {
				want := tc.want[i]
				if !samePublicKey(k.Public, want.Public()) || k.ID != "" || k.Alg != "" {
					t.Fatalf("key %d: %T kid %q alg %q is not the expected key", i, k.Public, k.ID, k.Alg)
				}
				// The imported key really verifies, and is the one selected.
				input := "h.p"
				if !jose.Verify(want.Alg, k.Public, input, jwttest.SignInput(t, want, want.Alg, []byte(input))) {
					t.Fatalf("key %d does not verify a %s signature", i, want.Alg)
				}
				if got := Select(keys, "any-kid", want.Alg); len(keys) == 1 && got != k {
					t.Fatalf("the only kid-less key is not selected for %s", want.Alg)
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
			if keys, w, err := ParseKeys(data, ImportOptions{}); err == nil {
				t.Fatalf("accepted %d keys (%q)", len(keys), w)
			}
		})
	}
}

// TestFingerprints: a re-import of the same keys gives the same
// fingerprints (the token cache relies on it); another kid or key does not.
func TestFingerprints(t *testing.T) {
	a := fixture(t, "ES256", "a", 0)
	aOther := fixture(t, "ES256", "a", 1)
	b := fixture(t, "ES256", "b", 0)
	h := fixture(t, "HS256", "h", 0)
	s1 := parseTestKeys(t, ImportOptions{AllowHMAC: true}, a, b, h)
	s2 := parseTestKeys(t, ImportOptions{AllowHMAC: true}, h, b, a)
	s3 := parseTestKeys(t, ImportOptions{}, aOther)
	fps := func(keys []*Key) map[string]bool {
		m := map[string]bool{}
		for _, k := range keys {
			m[k.Fingerprint()] = true
		}
		return m
	}
	for _, k := range s1 {
		if k.Fingerprint() == "" || !fps(s2)[k.Fingerprint()] {
			t.Fatalf("key %q lost its fingerprint across a re-import", k.ID)
		}
	}
	if fps(s3)[s1[0].Fingerprint()] {
		t.Fatal("a different key under the same kid has the same fingerprint")
	}
	if s1[0].Fingerprint() == s1[1].Fingerprint() {
		t.Fatal("same material under two kids has one fingerprint")
	}
}

// TestSelect exercises the candidate rules: kid match, the only kid-less
// key, type/curve/length fit and the key's own alg.
func TestSelect(t *testing.T) {
	es := fixture(t, "ES256", "k", 0)
	rs := fixture(t, "RS256", "k", 0)
	noKid := fixture(t, "ES384", "", 0)
	hs := fixture(t, "HS384", "h", 0)
	hsShort := &jwttest.Key{Kid: "h32", Alg: "", Secret: jwttest.Shared().HMAC[32][0], OmitAlg: true}
	fixtures := []*jwttest.Key{es, rs, noKid, hs, hsShort}
	keys := parseTestKeys(t, ImportOptions{AllowHMAC: true}, fixtures...)
	single := parseTestKeys(t, ImportOptions{}, noKid)
	twoES := parseTestKeys(t, ImportOptions{}, es, fixture(t, "ES256", "k2", 1))
	cases := []struct {
		name     string
		keys     []*Key
		kid, alg string
		want     int // index into keys, -1 = none
	}{
		{"kid and alg match", keys, "k", "ES256", 0},
		{"same kid, the key whose type fits", keys, "k", "RS256", 1},
		{"the key's own alg binds it", keys, "k", "RS384", -1},
		{"curve mismatch", keys, "k", "ES384", -1},
		{"no kid: the one key that fits", keys, "", "ES384", 2},
		{"no kid: the one ES256 key, though it has a kid", keys, "", "ES256", 0},
		{"no kid: RS256", keys, "", "RS256", 1},
		{"no kid, two keys fit: none", twoES, "", "ES256", -1},
		{"unknown kid: the kid-less key is not the only key", keys, "zzz", "ES384", -1},
		{"unknown kid: the only key, kid-less", single, "zzz", "ES384", 0},
		{"unknown kid: the only key must still fit", single, "zzz", "ES256", -1},
		{"HMAC kid and alg", keys, "h", "HS384", 3},
		{"HMAC alg mismatch", keys, "h", "HS256", -1},
		{"HMAC of 32 bytes, no alg, HS256", keys, "h32", "HS256", 4},
		{"HMAC of 32 bytes is too short for HS384", keys, "h32", "HS384", -1},
		{"HMAC of 32 bytes is too short for HS512", keys, "h32", "HS512", -1},
		{"alg none", keys, "k", "none", -1},
		{"alg empty", keys, "k", "", -1},
		{"no keys", nil, "k", "ES256", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Select(tc.keys, tc.kid, tc.alg)
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("selected %q (%T), want none", got.ID, got.Public)
			case tc.want >= 0 && got != tc.keys[tc.want]:
				t.Fatalf("selected %v, want key %d (%q)", got, tc.want, tc.keys[tc.want].ID)
			}
		})
	}
}

// TestVerifyRefusesKeyTypeConfusion: Verify itself never uses a key with an
// algorithm of another family, whatever the caller did.
func TestVerifyRefusesKeyTypeConfusion(t *testing.T) {
	rs := fixture(t, "RS256", "", 0)
	ec := fixture(t, "ES256", "", 0)
	ed := fixture(t, "EdDSA", "", 0)
	input := "a.b"
	der, err := x509.MarshalPKIXPublicKey(rs.Public())
	if err != nil {
		t.Fatal(err)
	}
	hmacWith := func(secret []byte, alg string) []byte {
		return jwttest.SignInput(t, &jwttest.Key{Secret: secret}, alg, []byte(input))
	}
	cases := []struct {
		name string
		alg  string
		key  any
		sig  []byte
	}{
		{"HS256 with an RSA public key", "HS256", rs.Public(), hmacWith(der, "HS256")},
		{"HS256 with raw bytes", "HS256", der, hmacWith(der, "HS256")},
		{"RS256 with an EC key", "RS256", ec.Public(), jwttest.SignInput(t, rs, "RS256", []byte(input))},
		{"ES384 with a P-256 key", "ES384", ec.Public(), jwttest.SignInput(t, ec, "ES384", []byte(input))},
		{"EdDSA with an EC key", "EdDSA", ec.Public(), jwttest.SignInput(t, ed, "EdDSA", []byte(input))},
		{"unknown alg", "XS256", rs.Public(), jwttest.SignInput(t, rs, "RS256", []byte(input))},
		{"nil key", "RS256", nil, jwttest.SignInput(t, rs, "RS256", []byte(input))},
		{"HMAC secret too short for HS512", "HS512", jose.HMACSecret(jwttest.Shared().HMAC[48][0]), hmacWith(jwttest.Shared().HMAC[48][0], "HS512")},
		{"HMAC secret of 31 bytes for HS256", "HS256", jose.HMACSecret(jwttest.Shared().HMAC[31][0]), hmacWith(jwttest.Shared().HMAC[31][0], "HS256")},
		{"RSA private key", "RS256", jwttest.Shared().RSA[0], jwttest.SignInput(t, rs, "RS256", []byte(input))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if jose.Verify(tc.alg, tc.key, input, tc.sig) {
				t.Fatal("verified")
			}
		})
	}
}

// TestVerifyEveryAlgorithm: each algorithm verifies its own signature and
// refuses a flipped bit, a truncated signature and another key.
func TestVerifyEveryAlgorithm(t *testing.T) {
	for _, alg := range jose.KnownAlgorithms() {
		t.Run(alg, func(t *testing.T) {
			k, other := fixture(t, alg, "", 0), fixture(t, alg, "", 1)
			input := "eyJhbGciOiJ4In0.eyJ4IjoxfQ"
			sig := jwttest.SignInput(t, k, alg, []byte(input))
			pub := k.Public()
			otherPub := other.Public()
			if k.Secret != nil {
				pub, otherPub = jose.HMACSecret(k.Secret), jose.HMACSecret(other.Secret)
			}
			if !jose.Verify(alg, pub, input, sig) {
				t.Fatal("a real signature does not verify")
			}
			flipped := slices.Clone(sig)
			flipped[len(flipped)/2] ^= 0x10
			for name, bad := range map[string][]byte{"flipped bit": flipped, "truncated": sig[:len(sig)-1], "extended": append(slices.Clone(sig), 0), "empty": nil} {
				if jose.Verify(alg, pub, input, bad) {
					t.Fatalf("%s signature verifies", name)
				}
			}
			if jose.Verify(alg, otherPub, input, sig) {
				t.Fatal("another key verifies")
			}
			if jose.Verify(alg, pub, input+"x", sig) {
				t.Fatal("another signing input verifies")
			}
		})
	}
}

// rsaPEMWithExponent is the fixture RSA modulus with public exponent e, as
// a PUBLIC KEY block (x509 marshals any exponent; import must refuse bad ones).
func rsaPEMWithExponent(t *testing.T, e int) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: jwttest.Shared().RSA[0].N, E: e})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// x25519PEM is a PUBLIC KEY block for an X25519 key, which crypto/x509
// parses but no JWS algorithm uses.
func x25519PEM(t *testing.T) []byte {
	t.Helper()
	// SubjectPublicKeyInfo for X25519 (RFC 8410 §4): OID 1.3.101.110.
	der := append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00}, bytes.Repeat([]byte{9}, 32)...)
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestHMACSecretHidden: formatting an HMAC key never prints its bytes.
func TestHMACSecretHidden(t *testing.T) {
	secret := jose.HMACSecret("0123456789abcdef0123456789abcdef")
	key := &Key{ID: "h", Public: secret}
	for _, format := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x"} {
		for _, v := range []any{secret, key, *key} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, "0123456789abcdef") || strings.Contains(out, "30313233") {
				t.Fatalf("%s of %T printed the secret: %s", format, v, out)
			}
		}
	}
}

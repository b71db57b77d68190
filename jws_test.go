package jwtauth

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Known-answer tests from the RFCs: the JWS layer must verify the published
// examples byte for byte (Wycheproof covers RS*, PS*, ES* and HS* but has
// no EdDSA group).
func TestVerifySignatureRFCExamples(t *testing.T) {
	b64 := func(s string) []byte {
		b, err := strictB64.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name  string
		token string
		key   any
	}{
		{
			// RFC 7515 Appendix A.1: HS256, with CR LF inside the JSON.
			name:  "RFC 7515 A.1 HS256",
			token: "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
			key:   hmacSecret(b64("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")),
		},
		{
			// RFC 8037 Appendix A.4: Ed25519 over "Example of Ed25519 signing".
			name:  "RFC 8037 A.4 EdDSA",
			token: "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
			key:   ed25519.PublicKey(b64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jws, err := DecodeCompactJWS(tc.token)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !VerifySignature(jws.Alg, tc.key, jws.signingInput, jws.signature) {
				t.Fatal("the RFC example does not verify")
			}
			forged := []byte(jws.signingInput)
			forged[len(forged)-1] ^= 1
			if VerifySignature(jws.Alg, tc.key, string(forged), jws.signature) {
				t.Fatal("a changed signing input verifies")
			}
		})
	}
}

func TestDecodeCompactFields(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	tok := jwttest.SignRaw(t, key, "ES256",
		[]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt","x-custom":[1]}`),
		[]byte(`{"iss":"https://i.example","exp":1.75e9,"n":12345678901234567890,"nested":{"a":true}}`))
	jws, err := DecodeCompact(tok)
	if err != nil {
		t.Fatal(err)
	}
	if jws.Alg != "ES256" || jws.Kid != "k1" || jws.Typ != "at+jwt" || jws.Issuer != "https://i.example" {
		t.Fatalf("fields: %+v", jws)
	}
	if n, ok := jws.Claims["n"].(json.Number); !ok || n != "12345678901234567890" {
		t.Fatalf("big number became %#v", jws.Claims["n"])
	}
	if _, ok := jws.Header["x-custom"]; !ok {
		t.Fatal("unknown header members must be kept, not refused")
	}
	if !strings.HasPrefix(string(jws.Payload()), `{"iss"`) {
		t.Fatalf("Payload() = %q", jws.Payload())
	}
	if s := jws.String(); strings.Contains(s, tok[strings.LastIndexByte(tok, '.')+1:]) || !strings.Contains(s, "ES256") {
		t.Fatalf("String() = %q", s)
	}
	if !VerifySignature("ES256", key.Public(), jws.signingInput, jws.signature) {
		t.Fatal("signature does not verify")
	}
}

// TestDecodeCompactRules covers SPEC step 2 at the decoder, including the
// JWS-only variant Wycheproof uses.
func TestDecodeCompactRules(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	tok := func(header, payload string) string {
		return jwttest.SignRaw(t, key, "ES256", []byte(header), []byte(payload))
	}
	claims := `{"iss":"x"}`
	cases := []struct {
		name            string
		token           string
		want, wantJWSOf Reason // DecodeCompact, DecodeCompactJWS ("" = accepted)
	}{
		{"valid", tok(`{"alg":"ES256"}`, claims), "", ""},
		{"whitespace in header JSON", tok(" {\n\t\"alg\" : \"ES256\" }\r\n", claims), "", ""},
		{"plain-text payload", tok(`{"alg":"ES256"}`, "Example of Ed25519 signing"), ReasonMalformed, ""},
		{"empty payload", tok(`{"alg":"ES256"}`, ""), ReasonMalformed, ""},
		{"payload a JSON array", tok(`{"alg":"ES256"}`, `[1]`), ReasonMalformed, ""},
		{"payload with duplicate names", tok(`{"alg":"ES256"}`, `{"a":1,"a":2}`), ReasonMalformed, ""},
		{"iss not a string", tok(`{"alg":"ES256"}`, `{"iss":["x"]}`), ReasonMalformed, ""},
		{"alg not a string", tok(`{"alg":256}`, claims), ReasonMalformed, ReasonMalformed},
		{"alg none", tok(`{"alg":"none"}`, claims), ReasonForbiddenAlg, ReasonForbiddenAlg},
		{"alg HS256 is known", tok(`{"alg":"HS256"}`, claims), "", ""},
		{"alg ES256K is unknown", tok(`{"alg":"ES256K"}`, claims), ReasonForbiddenAlg, ReasonForbiddenAlg},
		{"alg RSA-OAEP (JWE) is unknown", tok(`{"alg":"RSA-OAEP"}`, claims), ReasonForbiddenAlg, ReasonForbiddenAlg},
		{"crit before alg none: malformed wins", tok(`{"alg":"none","crit":["x"]}`, claims), ReasonMalformed, ReasonMalformed},
		{"kid empty string", tok(`{"alg":"ES256","kid":""}`, claims), "", ""},
		{"kid null", tok(`{"alg":"ES256","kid":null}`, claims), ReasonMalformed, ReasonMalformed},
		{"typ number", tok(`{"alg":"ES256","typ":1}`, claims), ReasonMalformed, ReasonMalformed},
		{"cty number", tok(`{"alg":"ES256","cty":1}`, claims), ReasonMalformed, ReasonMalformed},
		{"header duplicate", tok(`{"alg":"ES256","alg":"ES256"}`, claims), ReasonMalformed, ReasonMalformed},
		{"header with invalid UTF-8", tok("{\"alg\":\"ES256\",\"x\":\"\xff\"}", claims), ReasonMalformed, ReasonMalformed},
		{"header too deep", tok(`{"alg":"ES256","x":`+nestObjects(maxJSONDepth)+`}`, claims), ReasonMalformed, ReasonMalformed},
		{"empty header segment", "." + jwttest.B64([]byte(claims)) + ".AA", ReasonMalformed, ReasonMalformed},
		{"non-ASCII byte", tok(`{"alg":"ES256"}`, claims) + "é", ReasonMalformed, ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCompact(tc.token)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("DecodeCompact: %q (%v), want %q", got, err, tc.want)
			}
			_, err = DecodeCompactJWS(tc.token)
			if got := ReasonOf(err); got != tc.wantJWSOf {
				t.Fatalf("DecodeCompactJWS: %q (%v), want %q", got, err, tc.wantJWSOf)
			}
		})
	}
}

// TestAlgorithmRegistry pins the algorithm list: the defaults are every
// asymmetric algorithm and nothing else; HMAC is known but never a default.
func TestAlgorithmRegistry(t *testing.T) {
	for _, a := range DefaultAlgorithms {
		if !IsKnownAlgorithm(a) || strings.HasPrefix(a, "HS") {
			t.Fatalf("default %q", a)
		}
	}
	if len(DefaultAlgorithms) != 11 {
		t.Fatalf("%d default algorithms, SPEC lists 11", len(DefaultAlgorithms))
	}
	for _, a := range []string{"none", "None", "", "HS1", "RS1", "ES256K", "PS256 ", "rs256", "EDDSA", "A256GCM", "dir"} {
		if IsKnownAlgorithm(a) {
			t.Fatalf("%q must not be a known algorithm", a)
		}
	}
	for _, a := range []string{"HS256", "HS384", "HS512"} {
		if !IsKnownAlgorithm(a) {
			t.Fatalf("%q must be known (for jwks_file configs)", a)
		}
	}
}

package jose

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Known-answer tests from the RFCs: the JWS layer must verify the published
// examples byte for byte (Wycheproof covers RS*, PS*, ES* and HS* but has
// no EdDSA group).
func TestVerifyRFCExamples(t *testing.T) {
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
			key:   HMACSecret(b64("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")),
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
			jws, err := DecodeJWS(tc.token)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !Verify(jws.Alg, tc.key, jws.SigningInput(), jws.Signature()) {
				t.Fatal("the RFC example does not verify")
			}
			forged := []byte(jws.SigningInput())
			forged[len(forged)-1] ^= 1
			if Verify(jws.Alg, tc.key, string(forged), jws.Signature()) {
				t.Fatal("a changed signing input verifies")
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	key := fixture(t, "ES256", "k1", 0)
	tok := jwttest.SignRaw(t, key, "ES256",
		[]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt","x-custom":[1]}`),
		[]byte(`{"iss":"https://i.example","exp":1.75e9,"n":12345678901234567890,"nested":{"a":true}}`))
	jws, err := Decode(tok)
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
	if want := tok[:strings.LastIndexByte(tok, '.')]; jws.SigningInput() != want {
		t.Fatalf("SigningInput() = %q, want %q", jws.SigningInput(), want)
	}
	if s := jws.String(); strings.Contains(s, tok[strings.LastIndexByte(tok, '.')+1:]) || !strings.Contains(s, "ES256") {
		t.Fatalf("String() = %q", s)
	}
	if !Verify("ES256", key.Public(), jws.SigningInput(), jws.Signature()) {
		t.Fatal("signature does not verify")
	}
	if raw, err := DecodeJWS(tok); err != nil || raw.Claims != nil || raw.Issuer != "" {
		t.Fatalf("DecodeJWS: %+v, %v: the payload must be left alone", raw, err)
	}
}

// kindOf returns the kind of a decode error, 0 for nil; anything but an
// *Error fails the test.
func kindOf(t *testing.T, err error) ErrorKind {
	t.Helper()
	if err == nil {
		return 0
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *jose.Error", err, err)
	}
	if e.Detail == "" || !strings.Contains(e.Error(), e.Detail) {
		t.Fatalf("error %q has no detail", e.Error())
	}
	return e.Kind
}

// TestDecodeRules covers the decoder's rules, including the payload-agnostic
// DecodeJWS variant Wycheproof uses, and the exact mapping of failures to
// kinds: alg absent, "none" or unknown is ForbiddenAlg, all else Malformed.
func TestDecodeRules(t *testing.T) {
	key := fixture(t, "ES256", "k1", 0)
	tok := func(header, payload string) string {
		return jwttest.SignRaw(t, key, "ES256", []byte(header), []byte(payload))
	}
	claims := `{"iss":"x"}`
	const ok ErrorKind = 0
	cases := []struct {
		name          string
		token         string
		want, wantJWS ErrorKind // Decode, DecodeJWS
	}{
		{"valid", tok(`{"alg":"ES256"}`, claims), ok, ok},
		{"whitespace in header JSON", tok(" {\n\t\"alg\" : \"ES256\" }\r\n", claims), ok, ok},
		{"plain-text payload", tok(`{"alg":"ES256"}`, "Example of Ed25519 signing"), Malformed, ok},
		{"empty payload", tok(`{"alg":"ES256"}`, ""), Malformed, ok},
		{"payload a JSON array", tok(`{"alg":"ES256"}`, `[1]`), Malformed, ok},
		{"payload with duplicate names", tok(`{"alg":"ES256"}`, `{"a":1,"a":2}`), Malformed, ok},
		{"iss not a string", tok(`{"alg":"ES256"}`, `{"iss":["x"]}`), Malformed, ok},
		{"iss null", tok(`{"alg":"ES256"}`, `{"iss":null}`), Malformed, ok},
		{"alg absent", tok(`{"kid":"k1"}`, claims), ForbiddenAlg, ForbiddenAlg},
		{"alg not a string", tok(`{"alg":256}`, claims), Malformed, Malformed},
		{"alg none", tok(`{"alg":"none"}`, claims), ForbiddenAlg, ForbiddenAlg},
		{"alg None", tok(`{"alg":"None"}`, claims), ForbiddenAlg, ForbiddenAlg},
		{"alg HS256 is known", tok(`{"alg":"HS256"}`, claims), ok, ok},
		{"alg ES256K is unknown", tok(`{"alg":"ES256K"}`, claims), ForbiddenAlg, ForbiddenAlg},
		{"alg RSA-OAEP (JWE) is unknown", tok(`{"alg":"RSA-OAEP"}`, claims), ForbiddenAlg, ForbiddenAlg},
		{"crit before alg none: malformed wins", tok(`{"alg":"none","crit":["x"]}`, claims), Malformed, Malformed},
		{"b64 header", tok(`{"alg":"ES256","b64":false}`, claims), Malformed, Malformed},
		{"zip header", tok(`{"alg":"ES256","zip":"DEF"}`, claims), Malformed, Malformed},
		{"enc header", tok(`{"alg":"ES256","enc":"A128GCM"}`, claims), Malformed, Malformed},
		{"nested JWT cty", tok(`{"alg":"ES256","cty":"JWT"}`, claims), Malformed, Malformed},
		{"nested JWT cty media type", tok(`{"alg":"ES256","cty":"Application/JWT"}`, claims), Malformed, Malformed},
		{"other cty", tok(`{"alg":"ES256","cty":"json"}`, claims), ok, ok},
		{"kid empty string", tok(`{"alg":"ES256","kid":""}`, claims), ok, ok},
		{"kid null", tok(`{"alg":"ES256","kid":null}`, claims), Malformed, Malformed},
		{"kid at the length limit", tok(`{"alg":"ES256","kid":"`+strings.Repeat("k", MaxKidLength)+`"}`, claims), ok, ok},
		{"kid over the length limit", tok(`{"alg":"ES256","kid":"`+strings.Repeat("k", MaxKidLength+1)+`"}`, claims), Malformed, Malformed},
		{"typ number", tok(`{"alg":"ES256","typ":1}`, claims), Malformed, Malformed},
		{"cty number", tok(`{"alg":"ES256","cty":1}`, claims), Malformed, Malformed},
		{"header duplicate", tok(`{"alg":"ES256","alg":"ES256"}`, claims), Malformed, Malformed},
		{"header with invalid UTF-8", tok("{\"alg\":\"ES256\",\"x\":\"\xff\"}", claims), Malformed, Malformed},
		{"header too deep", tok(`{"alg":"ES256","x":`+jwttest.NestedObjects(MaxDepth)+`}`, claims), Malformed, Malformed},
		{"header a JSON array", jwttest.B64([]byte(`["ES256"]`)) + "." + jwttest.B64([]byte(claims)) + ".AA", Malformed, Malformed},
		{"empty header segment", "." + jwttest.B64([]byte(claims)) + ".AA", Malformed, Malformed},
		{"two segments", jwttest.B64([]byte(`{"alg":"ES256"}`)) + "." + jwttest.B64([]byte(claims)), Malformed, Malformed},
		{"four segments", tok(`{"alg":"ES256"}`, claims) + ".AA", Malformed, Malformed},
		{"padding", tok(`{"alg":"ES256"}`, claims) + "=", Malformed, Malformed},
		{"standard base64 alphabet", jwttest.B64([]byte(`{"alg":"ES256"}`)) + "." + jwttest.B64([]byte(claims)) + ".+/+/", Malformed, Malformed},
		{"CR LF inside a segment", strings.Replace(tok(`{"alg":"ES256"}`, claims), ".", "\r\n.", 1), Malformed, Malformed},
		{"non-canonical trailing bits", jwttest.B64([]byte(`{"alg":"ES256"}`)) + "." + jwttest.B64([]byte(claims)) + ".AB", Malformed, Malformed},
		{"non-ASCII byte", tok(`{"alg":"ES256"}`, claims) + "é", Malformed, Malformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.token)
			if got := kindOf(t, err); got != tc.want {
				t.Fatalf("Decode: %v (%v), want %v", got, err, tc.want)
			}
			_, err = DecodeJWS(tc.token)
			if got := kindOf(t, err); got != tc.wantJWS {
				t.Fatalf("DecodeJWS: %v (%v), want %v", got, err, tc.wantJWS)
			}
		})
	}
}

// TestAlgorithmRegistry pins the algorithm list: the defaults are every
// asymmetric algorithm and nothing else; HMAC is known but never a default.
func TestAlgorithmRegistry(t *testing.T) {
	defaults := DefaultAlgorithms()
	want := []string{"ES256", "ES384", "ES512", "Ed25519", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
	if !slices.Equal(defaults, want) {
		t.Fatalf("DefaultAlgorithms() = %q, want %q", defaults, want)
	}
	for _, a := range defaults {
		alg := LookupAlgorithm(a)
		if alg == nil || alg.Name() != a || !alg.Asymmetric() {
			t.Fatalf("default %q: %+v", a, alg)
		}
	}
	// A fresh slice each call: a caller's edit cannot change the defaults.
	defaults[0] = "HS256"
	if DefaultAlgorithms()[0] != "ES256" {
		t.Fatal("DefaultAlgorithms returned shared storage")
	}
	known := KnownAlgorithms()
	if len(known) != 14 || !slices.IsSorted(known) {
		t.Fatalf("KnownAlgorithms() = %q", known)
	}
	known[0] = "none"
	if LookupAlgorithm("none") != nil || KnownAlgorithms()[0] == "none" {
		t.Fatal("KnownAlgorithms returned shared storage")
	}
	for _, a := range []string{"none", "None", "", "HS1", "RS1", "ES256K", "PS256 ", "rs256", "EDDSA", "A256GCM", "dir", "ES521"} {
		if LookupAlgorithm(a) != nil {
			t.Fatalf("%q must not be a known algorithm", a)
		}
	}
	for _, a := range []string{"HS256", "HS384", "HS512"} {
		alg := LookupAlgorithm(a)
		if alg == nil || alg.Asymmetric() || slices.Contains(DefaultAlgorithms(), a) {
			t.Fatalf("%q must be known, symmetric and never a default", a)
		}
	}
}

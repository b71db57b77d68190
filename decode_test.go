package jwtauth

import (
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// TestDecodeTokenReasons: decodeToken maps the JOSE decoder's kinds to
// exactly two answers, forbidden_alg for an absent, "none" or unknown alg
// and malformed for everything else, and carries the decoder's detail.
// (The decoding rules themselves are tested in internal/jose.)
func TestDecodeTokenReasons(t *testing.T) {
	key := fixtureKey(t, "ES256", "k1", 0)
	tok := func(header, payload string) string {
		return jwttest.SignRaw(t, key, "ES256", []byte(header), []byte(payload))
	}
	claims := `{"iss":"x"}`
	cases := []struct {
		name   string
		token  string
		want   Reason // "" = decoded
		detail string
	}{
		{"valid", tok(`{"alg":"ES256","kid":"k1"}`, claims), "", ""},
		{"alg absent", tok(`{"kid":"k1"}`, claims), ReasonForbiddenAlg, "no alg"},
		{"alg none", tok(`{"alg":"none"}`, claims), ReasonForbiddenAlg, `alg "none" is not supported`},
		{"alg unknown", tok(`{"alg":"ES256K"}`, claims), ReasonForbiddenAlg, `alg "ES256K" is not supported`},
		{"alg not a string", tok(`{"alg":1}`, claims), ReasonMalformed, "alg is not a string"},
		{"crit with alg none", tok(`{"alg":"none","crit":["x"]}`, claims), ReasonMalformed, `header "crit" is not supported`},
		{"claims not an object", tok(`{"alg":"ES256"}`, `[]`), ReasonMalformed, "claims: not a JSON object"},
		{"iss not a string", tok(`{"alg":"ES256"}`, `{"iss":1}`), ReasonMalformed, "claim iss is not a string"},
		{"two segments", "e30.e30", ReasonMalformed, "want 3 dot-separated segments, got 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jws, rej := decodeToken(tc.token)
			if tc.want == "" {
				if rej != nil || jws == nil || jws.Alg != "ES256" || jws.Issuer != "x" {
					t.Fatalf("decodeToken: %+v, %v", jws, rej)
				}
				return
			}
			if jws != nil || rej == nil {
				t.Fatalf("decodeToken: %+v, %v, want %s", jws, rej, tc.want)
			}
			if rej.Reason != tc.want || rej.Detail != tc.detail {
				t.Fatalf("rejection %q / %q, want %q / %q", rej.Reason, rej.Detail, tc.want, tc.detail)
			}
			if ReasonOf(error(rej)) != tc.want {
				t.Fatalf("ReasonOf = %q", ReasonOf(rej))
			}
		})
	}
}

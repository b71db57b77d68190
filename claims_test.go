package jwtauth

import (
	"strings"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// claimFromJSON parses `{"v": text}` with the token parser and returns v, so
// renderClaim is tested on exactly the values a token yields (json.Number,
// []any, map[string]any), not on Go values a token can never produce.
func claimFromJSON(t *testing.T, text string) any {
	t.Helper()
	obj, err := jose.ParseObject([]byte(`{"v":` + text + `}`))
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return obj["v"]
}

func TestRenderClaim(t *testing.T) {
	cases := []struct {
		name, json, want string
	}{
		{"string as is", `"Ada Lovelace"`, "Ada Lovelace"},
		{"string with escapes decoded", `"line\nbreak \u00e9"`, "line\nbreak é"},
		{"empty string", `""`, ""},
		{"integer", `42`, "42"},
		{"negative integer", `-7`, "-7"},
		{"zero", `0`, "0"},
		{"negative zero keeps its text", `-0`, "-0"},
		{"fraction keeps its text", `1.50`, "1.50"},
		{"exponent 1e3", `1e3`, "1000"},
		{"exponent upper case with plus", `1E+3`, "1000"},
		{"negative exponent 1.5e-3", `1.5e-3`, "0.0015"},
		{"exponent moving the point inside", `123.456e1`, "1234.56"},
		{"exponent on a fraction to an integer", `2.5e1`, "25"},
		{"negative number with exponent", `-2.5E+2`, "-250"},
		{"zero with exponent", `0.0e5`, "0"},
		{"small exponent trims zeros", `25e-4`, "0.0025"},
		{"exponent zero", `7e0`, "7"},
		{"big integer stays exact", `12345678901234567890123456789`, "12345678901234567890123456789"},
		{"big integer with exponent stays exact", `123456789012345678901e10`, "1234567890123456789010000000000"},
		{"unix time in exponent form", `1.7500003E9`, "1750000300"},
		{"true", `true`, "true"},
		{"false", `false`, "false"},
		{"null renders empty", `null`, ""},
		{"array of strings joined", `["a","b","c"]`, "a,b,c"},
		{"array of one string", `["only"]`, "only"},
		{"empty array", `[]`, ""},
		{"object JSON is not HTML-escaped", `{"h":"<a&b>"}`, `{"h":"<a&b>"}`},
		{"array element with a comma renders JSON", `["a,b","c"]`, `["a,b","c"]`},
		{"array of numbers renders JSON", `[1,2.50,3]`, `[1,2.50,3]`},
		{"mixed array renders JSON", `["a",1,true,null]`, `["a",1,true,null]`},
		{"nested array renders JSON", `[["a"],["b"]]`, `[["a"],["b"]]`},
		{"object renders compact JSON with sorted keys", `{ "b" : 1 , "a" : "x" }`, `{"a":"x","b":1}`},
		{"nested object compact", `{"r":{"roles":["x","y"]}}`, `{"r":{"roles":["x","y"]}}`},
		{"empty object", `{}`, `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderClaim(claimFromJSON(t, tc.json)); got != tc.want {
				t.Fatalf("renderClaim(%s) = %q, want %q", tc.json, got, tc.want)
			}
		})
	}
}

// TestRenderClaimHugeExponent: an exponent beyond any float64 keeps the JSON
// text instead of padding without bound, and a large but sane one is exact.
func TestRenderClaimHugeExponent(t *testing.T) {
	if got := renderClaim(claimFromJSON(t, `1e401`)); got != "1e401" {
		t.Fatalf("1e401 rendered as %.40q", got)
	}
	if got := renderClaim(claimFromJSON(t, `1e400`)); got != "1"+strings.Repeat("0", 400) {
		t.Fatalf("1e400 rendered as %.40q…", got)
	}
	if got := renderClaim(claimFromJSON(t, `1e-5`)); got != "0.00001" {
		t.Fatalf("1e-5 rendered as %q", got)
	}
	if got := renderClaim(claimFromJSON(t, `1e00000000000000000000000000002`)); got != "100" {
		t.Fatalf("1e0…2 rendered as %q", got)
	}
}

func TestLookupClaim(t *testing.T) {
	claims, err := jose.ParseObject([]byte(`{
		"sub": "u1",
		"realm_access": {"roles": ["a", "b"], "deep": {"x": 1}},
		"a.b": "literal",
		"n": null,
		"arr": [{"k": "v"}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		found bool
		want  string // rendered
	}{
		{"sub", true, "u1"},
		{"realm_access.roles", true, "a,b"},
		{"realm_access.deep.x", true, "1"},
		{"realm_access", true, `{"deep":{"x":1},"roles":["a","b"]}`},
		{"a.b", false, ""},   // a dot always means nesting
		{"n", true, ""},      // present but null
		{"n.x", false, ""},   // null is not an object
		{"sub.x", false, ""}, // a string is not an object
		{"arr.0", false, ""}, // no array indexing
		{"arr.k", false, ""}, // nor reaching into array elements
		{"realm_access.missing", false, ""},
		{"missing", false, ""},
		{"", false, ""},
		{"realm_access.", false, ""},
		{".sub", false, ""},
	}
	for _, tc := range cases {
		t.Run("path "+tc.path, func(t *testing.T) {
			v, found := lookupClaim(claims, tc.path)
			if found != tc.found {
				t.Fatalf("found = %v, want %v", found, tc.found)
			}
			if found && renderClaim(v) != tc.want {
				t.Fatalf("value %q, want %q", renderClaim(v), tc.want)
			}
		})
	}
}

func TestClaimRuleCheck(t *testing.T) {
	claims, err := jose.ParseObject([]byte(`{
		"scope": "read  write\tadmin",
		"scp": "files.read",
		"roles": ["r1", "r2"],
		"aud": "a b",
		"n": 1e2,
		"flag": true
	}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		rule ClaimRule
		ok   bool
	}{
		{"scope split", ClaimRule{"scope", []string{"write", "read"}}, true},
		{"scope tab separated", ClaimRule{"scope", []string{"admin"}}, true},
		{"scope lacking", ClaimRule{"scope", []string{"delete"}}, false},
		{"scp string split", ClaimRule{"scp", []string{"files.read"}}, true},
		{"other strings whole", ClaimRule{"aud", []string{"a"}}, false},
		{"other strings whole match", ClaimRule{"aud", []string{"a b"}}, true},
		{"array elements", ClaimRule{"roles", []string{"r2", "r1"}}, true},
		{"array lacking", ClaimRule{"roles", []string{"r3"}}, false},
		{"number rendered", ClaimRule{"n", []string{"100"}}, true},
		{"number raw text does not match", ClaimRule{"n", []string{"1e2"}}, false},
		{"bool rendered", ClaimRule{"flag", []string{"true"}}, true},
		{"absent claim", ClaimRule{"nope", []string{"x"}}, false},
		{"no values needs only presence", ClaimRule{"flag", nil}, true},
		{"no values but absent", ClaimRule{"nope", nil}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rule.Check(claims)
			if tc.ok && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !tc.ok && ReasonOf(err) != ReasonClaimMismatch {
				t.Fatalf("Check: %v, want claim_mismatch", err)
			}
		})
	}
}

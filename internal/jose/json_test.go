package jose

import (
	"encoding/json"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
	"reflect"
	"strings"
	"testing"
)

func TestParseObject(t *testing.T) {
	cases := []struct {
		name  string
		input string
		ok    bool
	}{
		{"empty object", `{}`, true},
		{"simple members", `{"a":1,"b":"x","c":true,"d":null,"e":[],"f":{}}`, true},
		{"whitespace everywhere", " \t\r\n{ \"a\" : [ 1 , 2 ] }\n ", true},
		{"escaped names that differ", `{"a":1,"\u0062":2}`, true},

		// Duplicate member names, at any depth and however they are spelled.
		{"duplicate at top", `{"a":1,"a":1}`, false},
		{"duplicate with different values", `{"sub":"user","sub":"admin"}`, false},
		{"duplicate at depth 2", `{"x":{"a":1,"a":2}}`, false},
		{"duplicate inside an array element", `{"x":[{"a":1},{"b":1,"b":2}]}`, false},
		{"duplicate deep", `{"x":{"y":{"z":{"k":1,"k":1}}}}`, false},
		{"duplicate spelled with an escape", `{"alg":"ES256","\u0061lg":"none"}`, false},
		{"duplicate spelled with escaped slash", `{"a/b":1,"a\/b":2}`, false},
		{"same name in sibling objects is fine", `{"x":{"a":1},"y":{"a":1}}`, true},

		// Depth.
		{"nesting at the limit", jwttest.NestedObjects(MaxDepth), true},
		{"nesting one past the limit", jwttest.NestedObjects(MaxDepth + 1), false},
		{"deep arrays", `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false},
		{"very deep arrays stop early", `{"a":` + strings.Repeat("[", 100000) + `}`, false},

		// UTF-8.
		{"valid UTF-8 text", "{\"name\":\"Zoë 日本 🙂\"}", true},
		{"invalid byte in a value", "{\"a\":\"\xff\"}", false},
		{"invalid byte in a name", "{\"\xfe\":1}", false},
		{"overlong encoding", "{\"a\":\"\xc0\xaf\"}", false},
		{"UTF-8 encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", false},
		{"truncated sequence", "{\"a\":\"\xe6\x97\"}", false},
		{"invalid byte outside strings", "{\"a\":1}\xff", false},

		// Strings.
		{"raw control character", "{\"a\":\"x\x01y\"}", false},
		{"raw tab in a string", "{\"a\":\"x\ty\"}", false},
		{"raw newline in a string", "{\"a\":\"x\ny\"}", false},
		{"escaped control characters", `{"a":"\t\n\r\b\f\"\\\/\u0000"}`, true},
		{"bad escape letter", `{"a":"\x41"}`, false},
		{"short unicode escape", `{"a":"\u12"}`, false},
		{"backslash at the end", `{"a":"\`, false},
		{"unterminated string", `{"a":"abc`, false},
		{"single quotes", `{'a':1}`, false},
		{"unquoted name", `{a:1}`, false},

		// Trailing data and structure.
		{"trailing object", `{} {}`, false},
		{"trailing garbage", `{}x`, false},
		{"trailing comma in object", `{"a":1,}`, false},
		{"trailing comma in array", `{"a":[1,]}`, false},
		{"missing colon", `{"a" 1}`, false},
		{"missing comma", `{"a":1 "b":2}`, false},
		{"unterminated object", `{"a":1`, false},
		{"unterminated array", `{"a":[1`, false},
		{"empty input", ``, false},
		{"only whitespace", "  ", false},
		{"top-level array", `[]`, false},
		{"top-level string", `"s"`, false},
		{"top-level number", `1`, false},
		{"top-level null", `null`, false},
		{"form feed is not whitespace", "{\f}", false},
		{"NUL after object", "{}\x00", false},
		{"BOM before object", "\xef\xbb\xbf{}", false},
		{"comment", `{/*c*/}`, false},

		// Literals.
		{"true false null", `{"a":true,"b":false,"c":null}`, true},
		{"truncated literal", `{"a":tru}`, false},
		{"capitalised literal", `{"a":True}`, false},
		{"literal with suffix", `{"a":nullx}`, false},
		{"NaN", `{"a":NaN}`, false},
		{"Infinity", `{"a":Infinity}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseObject([]byte(tc.input))
			if tc.ok && err != nil {
				t.Fatalf("rejected valid JSON: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("accepted %.80q", tc.input)
			}
		})
	}
}

// TestParseObjectNumbers checks the RFC 8259 number grammar and that
// numbers keep their exact text.
func TestParseObjectNumbers(t *testing.T) {
	valid := []string{"0", "-0", "1", "-1", "10", "1.5", "0.000", "1e5", "1E5", "1e+5", "1e-5", "-1.5e10",
		"1.0E-0", "12345678901234567890123456789", "1e400", "0e0"}
	invalid := []string{"01", "-01", "00", "-", "+1", "1.", ".5", "1.e5", "1e", "1e+", "1e-", "--1", "0x10",
		"1_000", "- 1", "1 .5", "Infinity", "-Infinity", "0.", "1e5.5"}
	for _, n := range valid {
		t.Run("valid "+n, func(t *testing.T) {
			obj, err := ParseObject([]byte(`{"n":` + n + `}`))
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if got, ok := obj["n"].(json.Number); !ok || string(got) != n {
				t.Fatalf("value %#v, want json.Number(%q)", obj["n"], n)
			}
			// encoding/json agrees that it is valid JSON.
			if !json.Valid([]byte(n)) {
				t.Fatalf("encoding/json rejects %s", n)
			}
		})
	}
	for _, n := range invalid {
		t.Run("invalid "+n, func(t *testing.T) {
			if _, err := ParseObject([]byte(`{"n":` + n + `}`)); err == nil {
				t.Fatalf("accepted %q", n)
			}
			if json.Valid([]byte(n)) {
				t.Fatalf("encoding/json accepts %q: the case is wrong", n)
			}
		})
	}
}

// TestParseObjectValues checks the decoded shape against encoding/json
// (with UseNumber) on duplicate-free input, the contract FuzzStrictJSON
// checks at scale.
func TestParseObjectValues(t *testing.T) {
	input := `{"s":"a\"b\u00e9","n":-1.25e3,"b":true,"z":null,"arr":[1,"x",[],{}],"obj":{"k":{"k2":[false]}}}`
	got, err := ParseObject([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	want := decodeWithStdlib(t, []byte(input))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("strict parser: %#v\nencoding/json: %#v", got, want)
	}
}

// decodeWithStdlib decodes data as encoding/json does with UseNumber.
func decodeWithStdlib(t testing.TB, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return v
}

// TestArrayMember: the span-recording parse accepts and refuses exactly
// what ParseObject does, and each span is the element's exact bytes.
func TestArrayMember(t *testing.T) {
	cases := []struct {
		name  string
		input string
		elems []string // nil with found false: no such array
		found bool
		ok    bool
	}{
		{"two elements", `{"keys":[{"a":1}, {"b":[2]} ]}`, []string{`{"a":1}`, `{"b":[2]}`}, true, true},
		{"white space around elements", "{\"keys\":[ \n1 ,\t\"x\"\r\n]}", []string{`1`, `"x"`}, true, true},
		{"empty array", `{"keys":[]}`, nil, true, true},
		{"nested keys member is not recorded", `{"x":{"keys":[1]}}`, nil, false, true},
		{"keys inside an element is not recorded", `{"keys":[{"keys":[1,2]}]}`, []string{`{"keys":[1,2]}`}, true, true},
		{"keys not an array", `{"keys":{"a":1}}`, nil, false, true},
		{"keys null", `{"keys":null}`, nil, false, true},
		{"no keys member", `{"other":[1]}`, nil, false, true},
		{"escaped member name is the same name", `{"\u006beys":[true]}`, []string{`true`}, true, true},
		{"duplicate keys member", `{"keys":[1],"keys":[2]}`, nil, false, false},
		{"duplicate inside an element", `{"keys":[{"kty":"EC","kty":"RSA"}]}`, nil, false, false},
		{"duplicate after the array", `{"keys":[1],"x":{"a":1,"a":2}}`, nil, false, false},
		{"too deep inside an element", `{"keys":[` + jwttest.NestedObjects(MaxDepth-1) + `]}`, nil, false, false},
		{"at the depth limit inside an element", `{"keys":[` + jwttest.NestedObjects(MaxDepth-2) + `]}`, []string{jwttest.NestedObjects(MaxDepth - 2)}, true, true},
		{"trailing data", `{"keys":[1]} x`, nil, false, false},
		{"invalid UTF-8", "{\"keys\":[\"\xff\"]}", nil, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			elems, found, err := ArrayMember([]byte(tc.input), "keys")
			_, strictErr := ParseObject([]byte(tc.input))
			if (err == nil) != (strictErr == nil) {
				t.Fatalf("arrayMember err %v, ParseObject err %v", err, strictErr)
			}
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if found != tc.found {
				t.Fatalf("found %v, want %v", found, tc.found)
			}
			var got []string
			for _, e := range elems {
				got = append(got, string(e))
			}
			if !reflect.DeepEqual(got, tc.elems) {
				t.Fatalf("elements %q, want %q", got, tc.elems)
			}
		})
	}
}

package jose

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// The fuzz targets of this package. Run each with
//
//	go test -run='^$' -fuzz=FuzzDecodeCompact -fuzztime=60s ./internal/jose
//
// Without -fuzz, `go test` runs their seed corpora as ordinary tests.

// FuzzDecodeCompact: the decoders never panic, fail only with an *Error of a
// known kind, and whatever they accept is a canonical compact JWS that
// obeys every decoding rule, checked here independently of the decoder.
func FuzzDecodeCompact(f *testing.F) {
	key := fixture(f, "ES256", "k", 0)
	for _, h := range []string{`{"alg":"ES256"}`, `{"alg":"ES256","kid":"k","typ":"at+jwt"}`, `{"alg":"none"}`, `{}`,
		`{"alg":"ES256","crit":["b64"]}`, `{"alg":"ES256","alg":"ES256"}`, `{"alg":"HS256","cty":"JWT"}`, `{"alg":["ES256"]}`} {
		for _, p := range []string{`{"iss":"https://i.example","exp":1}`, `{"iss":1}`, `text`, `{"a":1,"a":2}`, ``} {
			f.Add(jwttest.SignRaw(f, key, "ES256", []byte(h), []byte(p)))
		}
	}
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "e30.e30.", "eyJhbGciOiJFUzI1NiJ9.e30.", "e30.e30.e30", "=.=.=", "eyJhbGciOiJFUzI1NiJ9\r\n.e30.AA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, decode := range []func(string) (*JWS, error){Decode, DecodeJWS} {
			jws, err := decode(token)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || (e.Kind != Malformed && e.Kind != ForbiddenAlg) {
					t.Fatalf("decode answered %v (%T)", err, err)
				}
				continue
			}
			checkDecoded(t, token, jws)
		}
	})
}

// checkDecoded asserts the decoding rules on an accepted token.
func checkDecoded(t *testing.T, token string, jws *JWS) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted %d segments", len(parts))
	}
	for i, p := range parts {
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != p {
			t.Fatalf("segment %d is not canonical base64url: %q", i, p)
		}
	}
	if jws.SigningInput() != parts[0]+"."+parts[1] {
		t.Fatal("signing input is not the received header.payload")
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !bytes.Equal(sig, jws.Signature()) {
		t.Fatal("signature bytes differ from the segment")
	}
	if LookupAlgorithm(jws.Alg) == nil || jws.Header["alg"] != jws.Alg {
		t.Fatalf("accepted alg %q", jws.Alg)
	}
	if len(jws.Kid) > MaxKidLength {
		t.Fatalf("accepted a kid of %d bytes", len(jws.Kid))
	}
	for _, h := range []string{"crit", "b64", "zip", "enc"} {
		if _, ok := jws.Header[h]; ok {
			t.Fatalf("accepted header %q", h)
		}
	}
	if cty, _ := jws.Header["cty"].(string); strings.EqualFold(cty, "jwt") || strings.EqualFold(cty, "application/jwt") {
		t.Fatal("accepted a nested JWT")
	}
	if jws.Claims != nil {
		if iss, ok := jws.Claims["iss"]; ok && iss != jws.Issuer {
			t.Fatalf("Issuer %q, claim %#v", jws.Issuer, iss)
		}
	}
}

// FuzzStrictJSON: the strict parser accepts exactly the inputs
// encoding/json accepts as one object that are valid UTF-8, free of
// duplicate member names and within MaxDepth, and then decodes the same
// value; the span-recording and the selective variants agree with it.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":"\u0061","\u0061":1}`,
		`{"n":-1.5e-3,"t":true,"f":false}`, "{\"a\":\"\xff\"}", `{"a":1} x`, `[]`, `{"a":"\ud800","b":"\udc00"}`,
		`{"\ud800":1,"\udc00":2}`, jwttest.NestedObjects(MaxDepth), jwttest.NestedObjects(MaxDepth + 1), `{"a":[[[[[[]]]]]]}`,
		`{"keys":[{"kty":"EC"}, 1 ,"x"]}`, `{"keys":{"a":[]}}`, `{"b":{"x":1,"x":2},"iss":"i"}`, `{"b":[{"y":[1,{"z":{}}]}],"\u0061":"e"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseObject(data)
		facts, stdErr := stdlibJSONFacts(data)
		want := stdErr == nil && facts.object && utf8.Valid(data) && !facts.duplicate && facts.maxDepth <= MaxDepth
		if (err == nil) != want {
			t.Fatalf("strict parser err=%v; encoding/json err=%v object=%v dup=%v depth=%d utf8=%v",
				err, stdErr, facts.object, facts.duplicate, facts.maxDepth, utf8.Valid(data))
		}
		elems, found, spanErr := ArrayMember(data, "keys")
		if (spanErr == nil) != (err == nil) {
			t.Fatalf("arrayMember err=%v, ParseObject err=%v", spanErr, err)
		}
		wanted := []string{"a", "iss", "keys"}
		selected, selErr := parseObject(string(data), wanted, true)
		if (selErr == nil) != (err == nil) || err != nil && selErr.Error() != err.Error() {
			t.Fatalf("selective parse err=%v, ParseObject err=%v", selErr, err)
		}
		if err != nil {
			return
		}
		for name, v := range got {
			if _, kept := selected[name]; kept != slices.Contains(wanted, name) || kept && !reflect.DeepEqual(selected[name], v) {
				t.Fatalf("selective parse kept %q=%#v (%v); ParseObject has %#v", name, selected[name], kept, v)
			}
		}
		if len(selected) > len(got) {
			t.Fatalf("selective parse made up members: %#v", selected)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var std map[string]any
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(got, std) {
			t.Fatalf("values differ:\nstrict %#v\nstdlib %#v", got, std)
		}
		// Each recorded span decodes to the matching array element.
		arr, isArray := got["keys"].([]any)
		if found != isArray || len(elems) != len(arr) {
			t.Fatalf("found %v with %d spans; keys is %T of %d", found, len(elems), got["keys"], len(arr))
		}
		for i, e := range elems {
			var v any
			d := json.NewDecoder(bytes.NewReader(e))
			d.UseNumber()
			if err := d.Decode(&v); err != nil || d.More() || !reflect.DeepEqual(v, arr[i]) {
				t.Fatalf("span %d %q decodes to %#v (%v), element is %#v", i, e, v, err, arr[i])
			}
		}
	})
}

// jsonFacts are what encoding/json's token stream says about an input.
type jsonFacts struct {
	object    bool // the single top-level value is an object
	duplicate bool // some object repeats a (decoded) member name
	maxDepth  int  // the deepest value, counting enclosing containers
}

func stdlibJSONFacts(data []byte) (jsonFacts, error) {
	var facts jsonFacts
	if !json.Valid(data) {
		return facts, errors.New("encoding/json: not valid")
	}
	type frame struct {
		object    bool
		names     map[string]bool
		expectKey bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return facts, err
		}
		if delim, ok := tok.(json.Delim); ok && (delim == '}' || delim == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.object && top.expectKey {
				name := tok.(string)
				if top.names[name] {
					facts.duplicate = true
				}
				top.names[name] = true
				top.expectKey = false
				continue
			}
			if top.object {
				top.expectKey = true // this token is the member's value
			}
		}
		// tok is a value at depth len(stack).
		if len(stack) > facts.maxDepth {
			facts.maxDepth = len(stack)
		}
		if first {
			facts.object = tok == json.Delim('{')
			first = false
		}
		if delim, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{object: delim == '{', names: map[string]bool{}, expectKey: delim == '{'})
		}
	}
	return facts, nil
}

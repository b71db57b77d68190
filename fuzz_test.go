package jwtauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// The fuzz targets. Run each with
//
//	go test -run='^$' -fuzz=FuzzDecodeCompact -fuzztime=60s .
//
// Without -fuzz, `go test` runs their seed corpora as ordinary tests.

// FuzzDecodeCompact: the decoder never panics, only ever answers malformed
// or forbidden_alg, and whatever it accepts is a canonical compact JWS that
// obeys every SPEC step 2 rule.
func FuzzDecodeCompact(f *testing.F) {
	e := newAttackEnv(f)
	for _, a := range attackTable(e) {
		f.Add(a.token(f, e))
	}
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "e30.e30.", "eyJhbGciOiJFUzI1NiJ9.e30.", "e30.e30.e30", "=.=.="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, decode := range []func(string) (*JWS, error){DecodeCompact, DecodeCompactJWS} {
			jws, err := decode(token)
			if err != nil {
				if r := ReasonOf(err); r != ReasonMalformed && r != ReasonForbiddenAlg {
					t.Fatalf("decode answered %q (%v)", r, err)
				}
				continue
			}
			checkDecoded(t, token, jws)
		}
	})
}

// checkDecoded asserts SPEC step 2 on an accepted token, independently of
// the decoder's own code.
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
	if jws.signingInput != parts[0]+"."+parts[1] {
		t.Fatal("signing input is not the received header.payload")
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !bytes.Equal(sig, jws.signature) {
		t.Fatal("signature bytes differ from the segment")
	}
	if !IsKnownAlgorithm(jws.Alg) || jws.Header["alg"] != jws.Alg {
		t.Fatalf("accepted alg %q", jws.Alg)
	}
	if len(jws.Kid) > maxKidLength {
		t.Fatalf("accepted a kid of %d bytes", len(jws.Kid))
	}
	for _, h := range forbiddenHeaders {
		if _, ok := jws.Header[h]; ok {
			t.Fatalf("accepted header %q", h)
		}
	}
	if cty, _ := jws.Header["cty"].(string); strings.EqualFold(cty, "jwt") || strings.EqualFold(cty, "application/jwt") {
		t.Fatal("accepted a nested JWT")
	}
}

// fuzzSigners are the keys FuzzVerify signs with, all in the verifier's set.
func fuzzSigners(tb testing.TB) []*jwttest.Key {
	return []*jwttest.Key{
		fixtureKey(tb, "ES256", "ec", 0),
		fixtureKey(tb, "HS256", "hs", 0),
		fixtureKey(tb, "EdDSA", "ed", 0),
		fixtureKey(tb, "RS256", "rs", 0),
		fixtureKey(tb, "PS384", "ps", 1),
	}
}

// FuzzVerify: the verifier never panics, answers only closed-list codes,
// and accepts a token only if its signing input verifies, by a separate
// standard-library check, under a key of the configured set. Half of the
// inputs are signed with a real key (so the fuzzer explores the claim
// checks), the other half carry a mutated real signature.
func FuzzVerify(f *testing.F) {
	signers := fuzzSigners(f)
	set := loadTestSet(f, LoadOptions{AllowHMAC: true}, signers...)
	policy, _ := testPolicy(set)
	policy.Audience = []string{"api"}
	v := testVerifier(VerifierOptions{Leeway: testLeeway, Require: []ClaimRule{{Claim: "scope", Values: []string{"read"}}}}, policy)
	claims := string(rawClaims(f, testClaims(map[string]any{"aud": "api", "scope": "read write"}), nil))

	for i, k := range signers {
		f.Add(`{"alg":"`+k.Alg+`","kid":"`+k.Kid+`"}`, claims, uint16(2*i))
		f.Add(`{"alg":"`+k.Alg+`","kid":"`+k.Kid+`"}`, claims, uint16(2*i+1))
		f.Add(`{"alg":"`+k.Alg+`"}`, claims, uint16(2*i))
	}
	for _, h := range []string{`{"alg":"none"}`, `{"alg":"HS256","kid":"ec"}`, `{"alg":"ES256","kid":"ec","crit":["b64"]}`,
		`{"alg":"ES256","kid":"ec","alg":"ES256"}`, `{"alg":"Ed25519","kid":"ed"}`, `{"alg":"PS256","kid":"rs"}`} {
		f.Add(h, claims, uint16(0))
	}
	for _, c := range []string{`{}`, `{"iss":"` + testIssuer + `","exp":1e30}`, `{"iss":"` + testIssuer + `","exp":"1"}`,
		`{"iss":"` + testIssuer + `","exp":9999999999,"aud":["api"],"scope":"read","cnf":{}}`} {
		f.Add(`{"alg":"ES256","kid":"ec"}`, c, uint16(0))
	}

	f.Fuzz(func(t *testing.T, header, payload string, mode uint16) {
		signer := signers[int(mode>>1)%len(signers)]
		input := jwttest.B64([]byte(header)) + "." + jwttest.B64([]byte(payload))
		sig := jwttest.SignInput(t, signer, signer.Alg, []byte(input))
		signed := mode&1 == 0
		if !signed {
			// Flip one bit chosen by mode; sig is never empty here.
			i := int(mode>>4) % len(sig)
			sig[i] ^= 1 << (mode >> 1 & 7)
		}
		token := input + "." + jwttest.B64(sig)
		res, err := v.Verify(context.Background(), token)
		if err != nil {
			if r := ReasonOf(err); r == "" || !isClosedListReason(r) {
				t.Fatalf("non-rejection error %v", err)
			}
			return
		}
		if !signed {
			t.Fatalf("accepted a token whose signature was altered (%s)", signer.Alg)
		}
		if !set.Has(res.Key.Fingerprint()) {
			t.Fatal("accepted with a key that is not in the configured set")
		}
		if !stdlibVerifies(res.Token.Alg, res.Key.Public, input, sig) {
			t.Fatalf("accepted %s token whose signature the standard library does not verify with the chosen key", res.Token.Alg)
		}
	})
}

func isClosedListReason(r Reason) bool {
	for _, known := range Reasons() {
		if r == known {
			return true
		}
	}
	return false
}

// stdlibVerifies is a second, deliberately separate implementation of the
// JWA signature checks, on the standard library only.
func stdlibVerifies(alg string, key crypto.PublicKey, input string, sig []byte) bool {
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	digest := func(h crypto.Hash) []byte { d := h.New(); d.Write([]byte(input)); return d.Sum(nil) }
	switch {
	case alg == "EdDSA" || alg == "Ed25519":
		pub, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, []byte(input), sig)
	case len(alg) != 5:
		return false
	}
	h, ok := hashes[alg[2:]]
	if !ok {
		return false
	}
	switch alg[:2] {
	case "HS":
		secret, ok := key.(hmacSecret)
		if !ok {
			return false
		}
		mac := hmac.New(h.New, secret)
		mac.Write([]byte(input))
		return hmac.Equal(mac.Sum(nil), sig)
	case "RS":
		pub, ok := key.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(pub, h, digest(h), sig) == nil
	case "PS":
		pub, ok := key.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(pub, h, digest(h), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case "ES":
		pub, ok := key.(*ecdsa.PublicKey)
		curves := map[string]elliptic.Curve{"256": elliptic.P256(), "384": elliptic.P384(), "512": elliptic.P521()}
		if !ok || pub.Curve != curves[alg[2:]] {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest(h), r, s)
	}
	return false
}

// FuzzParseKeySet: the loader never panics, and every key it returns obeys
// SPEC "Keys": RSA ≥ 2048 bits, EC on P-256/384/521, Ed25519 of 32 bytes,
// HMAC only with AllowHMAC and ≥ 32 bytes, a known alg that fits, at most
// 100 keys, each with a fingerprint the set knows.
func FuzzParseKeySet(f *testing.F) {
	keys := []*jwttest.Key{
		fixtureKey(f, "RS256", "rs", 0), fixtureKey(f, "PS512", "ps", 1), fixtureKey(f, "ES256", "e1", 0),
		fixtureKey(f, "ES384", "e2", 0), fixtureKey(f, "ES512", "e3", 0), fixtureKey(f, "EdDSA", "ed", 0),
		fixtureKey(f, "HS256", "h1", 0), fixtureKey(f, "HS512", "h2", 0),
	}
	f.Add(jwttest.JWKS(keys...), true)
	f.Add(jwttest.JWKS(keys...), false)
	for _, k := range keys {
		f.Add(jwttest.JWKS(k), true)
		if k.Private != nil {
			f.Add(jwttest.JWKSOf(k.PrivateJWK()), false)
			f.Add(k.PublicPEM(), false)
			f.Add(k.CertPEM(f), false)
		}
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`), false)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","alg":"HS256"}]}`), true)
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQ"}]}`), false)
	f.Add([]byte(`{"keys":[]}`), false)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), false)

	f.Fuzz(func(t *testing.T, data []byte, allowHMAC bool) {
		set, warnings, err := ParseKeySet(data, LoadOptions{AllowHMAC: allowHMAC})
		if err != nil {
			if set != nil {
				t.Fatal("error with a set")
			}
			return
		}
		_ = warnings
		if len(set.Keys) == 0 || len(set.Keys) > maxKeysPerSet {
			t.Fatalf("set of %d keys", len(set.Keys))
		}
		for i, k := range set.Keys {
			if k.Fingerprint() == "" || !set.Has(k.Fingerprint()) {
				t.Fatalf("key %d has no known fingerprint", i)
			}
			if k.Alg != "" && (!IsKnownAlgorithm(k.Alg) || !fitsAlgorithm(k.Public, algorithms[k.Alg])) {
				t.Fatalf("key %d has alg %q that does not fit %T", i, k.Alg, k.Public)
			}
			switch pub := k.Public.(type) {
			case *rsa.PublicKey:
				if pub.N.BitLen() < minRSABits {
					t.Fatalf("key %d: RSA of %d bits", i, pub.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if _, err := pub.ECDH(); err != nil {
					t.Fatalf("key %d: EC point not valid: %v", i, err)
				}
				switch pub.Curve {
				case elliptic.P256(), elliptic.P384(), elliptic.P521():
				default:
					t.Fatalf("key %d: curve %s", i, pub.Curve.Params().Name)
				}
			case ed25519.PublicKey:
				if len(pub) != ed25519.PublicKeySize {
					t.Fatalf("key %d: Ed25519 of %d bytes", i, len(pub))
				}
			case hmacSecret:
				if !allowHMAC || len(pub) < 32 {
					t.Fatalf("key %d: HMAC secret of %d bytes, AllowHMAC %v", i, len(pub), allowHMAC)
				}
			default:
				t.Fatalf("key %d: unexpected type %T", i, pub)
			}
		}
	})
}

// FuzzStrictJSON: the strict parser accepts exactly the inputs encoding/json
// accepts as one object that are valid UTF-8, free of duplicate member
// names and within the depth limit, and then decodes the same value.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":"\u0061","\u0061":1}`,
		`{"n":-1.5e-3,"t":true,"f":false}`, "{\"a\":\"\xff\"}", `{"a":1} x`, `[]`, `{"a":"\ud800","b":"\udc00"}`,
		`{"\ud800":1,"\udc00":2}`, nestObjects(maxJSONDepth), nestObjects(maxJSONDepth + 1), `{"a":[[[[[[]]]]]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseStrictObject(data)
		facts, stdErr := stdlibJSONFacts(data)
		want := stdErr == nil && facts.object && utf8.Valid(data) && !facts.duplicate && facts.maxDepth <= maxJSONDepth
		if (err == nil) != want {
			t.Fatalf("strict parser err=%v; encoding/json err=%v object=%v dup=%v depth=%d utf8=%v",
				err, stdErr, facts.object, facts.duplicate, facts.maxDepth, utf8.Valid(data))
		}
		if err != nil {
			return
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

// fuzzExtractConfigs are the source configurations FuzzExtractToken runs
// each input against: the default, each source kind alone, two schemes on
// one header, and everything at once.
var fuzzExtractConfigs = [][]TokenSource{
	defaultSources,
	{{Header: "X-Token"}},
	{{Query: "access_token"}},
	{{Cookie: "jwt"}},
	{{Header: "Authorization", Scheme: "Bearer"}, {Header: "Authorization", Scheme: "DPoP"}},
	{{Header: "Authorization"}},
	{{Header: "Authorization", Scheme: "Bearer"}, {Header: "x-token"}, {Query: "access_token"}, {Query: "t"}, {Cookie: "jwt"}},
}

// FuzzExtractToken: the extractor never panics, answers only
// malformed, multiple_credentials or too_large, returns only a value the
// request presented (computed here independently), never more than maxSize
// bytes, and never a token when two different values were presented.
func FuzzExtractToken(f *testing.F) {
	tok := "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"
	seeds := []struct {
		headers, query, cookie string
	}{
		{"Authorization: Bearer " + tok, "", ""},
		{"Authorization: bEaReR\t" + tok, "", ""},
		{"Authorization: Bearer " + tok + "\nAuthorization: Bearer " + tok, "", ""},
		{"Authorization: Bearer " + tok + "\nAuthorization: Bearer a.b.c", "", ""},
		{"Authorization: BearerXYZ " + tok, "", ""},
		{"Authorization: Basic dXNlcjpwdw==\nAuthorization: Bearer " + tok, "", ""},
		{"Authorization: Bearer", "", ""},
		{"Authorization: Bearer    ", "", ""},
		{"Authorization: DPoP " + tok, "", ""},
		{"X-Token:  " + tok + " ", "", ""},
		{"x-token: a\nX-TOKEN: b", "", ""},
		{"", "access_token=" + tok, ""},
		{"", "x=1&access_token=" + tok + "&access_token=" + tok, ""},
		{"", "access_token=a&access_token=b", ""},
		{"", "access_token=&t=" + tok, ""},
		{"", "access_token=%zz&access_token=a%2Eb", ""},
		{"", "access_token=a;access_token=b", ""},
		{"", "", "jwt=" + tok},
		{"", "", "a=1; jwt=" + tok + "; jwt=x"},
		{"", "", `jwt="` + tok + `"`},
		{"Cookie: jwt=a", "", "jwt=b"},
		{"Authorization: Bearer " + tok, "access_token=" + tok, "jwt=" + tok},
		{"Authorization: Bearer " + tok, "access_token=other", ""},
	}
	for i, s := range seeds {
		f.Add(s.headers, s.query, s.cookie, uint8(i), uint16(16<<10))
		f.Add(s.headers, s.query, s.cookie, uint8(len(fuzzExtractConfigs)-1), uint16(4))
	}
	f.Fuzz(func(t *testing.T, headers, query, cookie string, config uint8, size uint16) {
		sources := fuzzExtractConfigs[int(config)%len(fuzzExtractConfigs)]
		maxSize := int(size) + 1
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/", RawQuery: query}, Header: http.Header{}}
		for _, line := range strings.Split(headers, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && name != "" {
				r.Header.Add(name, strings.TrimLeft(value, " "))
			}
		}
		if cookie != "" {
			r.Header.Add("Cookie", cookie)
		}
		presented := presentedCredentials(r, sources)

		token, err := extractToken(r, sources, maxSize)
		if err != nil {
			switch ReasonOf(err) {
			case ReasonMalformed, ReasonMultipleCredentials, ReasonTooLarge:
			default:
				t.Fatalf("answered %v", err)
			}
			if token != "" {
				t.Fatalf("token %q returned with error %v", token, err)
			}
			return
		}
		if token == "" {
			if len(presented) != 0 {
				t.Fatalf("no token although %v was presented", presented)
			}
			return
		}
		if !presented[token] {
			t.Fatalf("token %q was not presented (presented %v)", token, presented)
		}
		if len(presented) > 1 {
			t.Fatalf("token %q returned although %d different values were presented", token, len(presented))
		}
		if len(token) > maxSize {
			t.Fatalf("token of %d bytes over max %d", len(token), maxSize)
		}
	})
}

// presentedCredentials is the set of non-empty credentials r carries for
// sources, read with the standard library only: a header line of the
// source's name with its scheme (case-insensitive) followed by a space or
// tab, or any line without a scheme; every query value; every cookie.
func presentedCredentials(r *http.Request, sources []TokenSource) map[string]bool {
	out := map[string]bool{}
	add := func(v string) {
		if v != "" {
			out[v] = true
		}
	}
	for _, src := range sources {
		switch {
		case src.Header != "":
			for _, line := range r.Header[http.CanonicalHeaderKey(src.Header)] {
				if src.Scheme == "" {
					add(strings.TrimSpace(line))
					continue
				}
				n := len(src.Scheme)
				if len(line) > n && strings.EqualFold(line[:n], src.Scheme) && (line[n] == ' ' || line[n] == '\t') {
					add(strings.TrimSpace(line[n:]))
				}
			}
		case src.Query != "":
			q, _ := url.ParseQuery(r.URL.RawQuery)
			for _, v := range q[src.Query] {
				add(v)
			}
		case src.Cookie != "":
			for _, c := range r.Cookies() {
				if c.Name == src.Cookie {
					add(c.Value)
				}
			}
		}
	}
	return out
}

// fuzzCaddyfileSeeds are real jwt_auth blocks (README, tests, examples)
// without the "jwt_auth {" line and the closing brace.
var fuzzCaddyfileSeeds = []string{
	"issuer https://idp.example/\n",
	"issuer https://idp.example/\njwks_url https://idp.example/.well-known/jwks.json\naudience api\n",
	"issuer https://a.example/ {\n\tjwks_url https://a.example/jwks\n\taudience api-a\n\talgorithms RS256\n\ttoken_type at+jwt\n}\n" +
		"issuer https://b.example/ {\n\tjwks_file /etc/keys/b.pem\n}\naudience api other\nalgorithms ES256 EdDSA\ntoken_type JWT\n" +
		"leeway 1m\nmax_lifetime 1h\nfrom_header Authorization Bearer\nfrom_header X-Token\nfrom_query access_token\nfrom_cookie jwt\n" +
		"max_token_size 8KiB\nuser_claim email\nrequire scope read write\nrequire realm_access.roles admin\nclaim_header sub X-User\n" +
		"strip_token\noptional\nallow_preflight\nrefresh_interval 5m\nmin_refresh_interval 30s\nfetch_timeout 5s\nmax_stale 12h\ncache_size 0\n",
	"issuer my-issuer\njwks_file /etc/caddy/keys.json\nalgorithms HS256\n",
	"issuer http://127.0.0.1:8080/realms/x\n",
	"issuer https://login.microsoftonline.com/tid/v2.0\naudience api://app\nrequire roles Admin\n",
	"issuer \"https://idp.example/\" {\n}\n",
	"issuer a\nissuer b\njwks_url https://x/jwks\n",
	"issuer a {\n\toptional\n}\n",
	"issuer a\njwks_file f\nmax_token_size 2GiB\n",
	"issuer a\njwks_file f\ncache_size -1\n",
	"issuer a\njwks_file f\nleeway -1s\n",
	"issuer a\njwks_file f\nrefresh_interval 1ms\n",
	"issuer a\njwks_url http://idp.example/jwks\n",
	"issuer a\njwks_file f\nclaim_header sub \"X User\"\n",
	"issuer a\njwks_file f\nalgorithms none\n",
	"issuer a {\n\tjwks_url https://a/jwks\n\tjwks_file f\n}\n",
	"issuer a\njwks_file f\nfrom_header\n",
	"{\n}\n",
	"",
	"issuer a\nissuer a\njwks_file f\n",
	"issuer not-a-url\n",
	"issuer https://idp.example/?tenant=1\n",
	"issuer `a b` {\njwks_file <<EOF\n\tfile\n\tEOF\n}\n",
}

// FuzzUnmarshalCaddyfile: the Caddyfile parser never panics on any text in
// a jwt_auth block, and every config it accepts passes Config.validate(),
// also after the JSON round trip that `caddy adapt` performs.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range fuzzCaddyfileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		input := "jwt_auth {\n" + body + "\n}\n"
		if _, err := caddyfile.Tokenize([]byte(input), "Caddyfile"); err != nil {
			return // NewTestDispenser would log.Fatal; the lexer is Caddy's, not ours
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			return
		}
		if err := h.Config.validate(); err != nil {
			t.Fatalf("accepted a config that validate refuses: %v\n%s", err, input)
		}
		raw, err := json.Marshal(h.Config)
		if err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("JSON of an accepted config does not load: %v\n%s", err, raw)
		}
		if err := back.validate(); err != nil {
			t.Fatalf("JSON of an accepted config fails validate: %v\n%s", err, raw)
		}
	})
}

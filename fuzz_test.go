package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// The fuzz targets of the root package (the JOSE layer's are in
// internal/jose/fuzz_test.go). Run each with
//
//	go test -run='^$' -fuzz=FuzzVerify -fuzztime=60s .
//
// Without -fuzz, `go test` runs their seed corpora as ordinary tests.

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
	v := testVerifier(verifierOptions{Leeway: testLeeway, Require: []ClaimRule{{Claim: "scope", Values: []string{"read"}}}}, policy)
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
		secret, ok := key.(jose.HMACSecret)
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

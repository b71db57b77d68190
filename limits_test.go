package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// The size and count limits of docs/design.md "Verification order" and "Key sources", each tested
// at its boundary: the last allowed value works, the first one past it is
// refused. Limits already pinned elsewhere are not repeated here: over
// 1 MiB in Huge mode and over 256 KiB discovery (jwks_test.go), the first 100
// of 120 keys in keyimport.ParseKeys (internal/jose/key_test.go), a cross-host redirect
// (jwks_test.go), kid of 256 and 257 bytes (verifier_test.go), header nesting
// (jws_test.go).

// paddedJWKS is a JWKS holding key and an unusable padding key, exactly
// size bytes long.
func paddedJWKS(t *testing.T, key *jwttest.Key, size int) []byte {
	t.Helper()
	pad := func(n int) []byte {
		return jwttest.JWKSOf(key.JWK(), map[string]any{"kty": "oct", "kid": "padding", "use": "enc", "k": strings.Repeat("A", n)})
	}
	body := pad(size - len(pad(0)))
	if len(body) != size {
		t.Fatalf("padded JWKS of %d bytes, want %d", len(body), size)
	}
	return body
}

func TestLimitJWKSBodyIsOneMiB(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	srv.SetBody(paddedJWKS(t, key, maxJWKSBytes))
	f := newTestSource(t, testSource(srv.JWKSURL()), nil)
	if res := f.fetchOnce(); res.err != nil || f.keySet().Select("k1", "ES256") == nil {
		t.Fatalf("JWKS of exactly 1 MiB: %v", res.err)
	}
	srv.SetBody(paddedJWKS(t, key, maxJWKSBytes+1))
	f = newTestSource(t, testSource(srv.JWKSURL()), nil)
	if res := f.fetchOnce(); res.err == nil || !strings.Contains(res.err.Error(), "larger than") || f.keySet() != nil {
		t.Fatalf("JWKS of 1 MiB + 1 byte: err %v, set %v", res.err, f.keySet())
	}
	// Huge mode: a valid set far over the cap, read only up to the cap.
	srv.SetMode(jwttest.Huge)
	if res := f.fetchOnce(); res.err == nil || !strings.Contains(res.err.Error(), "larger than") {
		t.Fatalf("Huge: %v", res.err)
	}
}

func TestLimitDiscoveryDocumentIs256KiB(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	keys := jwttest.NewServer(t, key)
	var mu sync.Mutex
	var doc []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	setDoc := func(size int) {
		build := func(n int) []byte {
			b, _ := json.Marshal(map[string]any{"issuer": srv.URL, "jwks_uri": keys.JWKSURL(), "pad": strings.Repeat("x", n)})
			return b
		}
		b := build(size - len(build(0)))
		if len(b) != size {
			t.Fatalf("document of %d bytes, want %d", len(b), size)
		}
		mu.Lock()
		doc = b
		mu.Unlock()
	}
	sc := testSource("")
	sc.Issuer = srv.URL
	setDoc(maxDiscoveryBytes)
	f := newTestSource(t, sc, nil)
	if res := f.fetchOnce(); res.err != nil || f.keySet().Select("k1", "ES256") == nil {
		t.Fatalf("discovery document of exactly 256 KiB: %v", res.err)
	}
	setDoc(maxDiscoveryBytes + 1)
	hits := keys.Hits()
	f = newTestSource(t, sc, nil)
	if res := f.fetchOnce(); res.err == nil || !strings.Contains(res.err.Error(), "larger than") || f.keySet() != nil {
		t.Fatalf("discovery document of 256 KiB + 1: %v", res.err)
	}
	if keys.Hits() != hits {
		t.Fatal("the jwks_uri of an oversized discovery document was fetched")
	}
}

// TestLimitHundredKeysPerRemoteSet: a remote set of 101 usable keys loads,
// the first 100 verify tokens, the 101st is unknown.
func TestLimitHundredKeysPerRemoteSet(t *testing.T) {
	base := jwttest.NewEC(t, "ES256", "")
	jwks := make([]map[string]any, 0, keyimport.MaxKeys+1)
	for i := 0; i <= keyimport.MaxKeys; i++ {
		j := base.JWK()
		j["kid"] = fmt.Sprintf("k%03d", i)
		jwks = append(jwks, j)
	}
	srv := jwttest.NewServer(t)
	srv.SetBody(jwttest.JWKSOf(jwks...))
	f := newTestSource(t, testSource(srv.JWKSURL()), nil)
	if res := f.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	v := newTokenVerifier([]*issuerPolicy{{Issuer: "https://idp.example/", Algorithms: []string{"ES256"}, Keys: f}}, verifierOptions{})
	sign := func(kid string) string {
		k := *base
		k.Kid = kid
		return jwttest.Sign(t, &k, nil, jwttest.Claims("https://idp.example/", "api", time.Minute))
	}
	for _, kid := range []string{"k000", fmt.Sprintf("k%03d", keyimport.MaxKeys-1)} {
		if _, err := v.Verify(context.Background(), sign(kid)); err != nil {
			t.Fatalf("kid %s: %v", kid, err)
		}
	}
	_, err := v.Verify(context.Background(), sign(fmt.Sprintf("k%03d", keyimport.MaxKeys)))
	if ReasonOf(err) != ReasonUnknownKid {
		t.Fatalf("key number %d: %v, want unknown_kid", keyimport.MaxKeys+1, err)
	}
}

// TestLimitRedirectFromHTTPSToHTTP: a real https JWKS endpoint redirecting
// to plain http on the same host is refused before any http request.
func TestLimitRedirectFromHTTPSToHTTP(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	var plainHits int
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/jwks", http.StatusMovedPermanently)
		case "/to-http":
			http.Redirect(w, r, "http://"+r.Host+"/jwks", http.StatusFound)
		default:
			_, _ = w.Write(jwttest.JWKS(key))
		}
	}))
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		plainHits++
		mu.Unlock()
		_, _ = w.Write(jwttest.JWKS(key))
	}))
	t.Cleanup(plain.Close)
	trust := func(f *urlSource) {
		f.transport.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	}

	f := newTestSource(t, testSource(srv.URL+"/moved"), nil)
	trust(f)
	if res := f.fetchOnce(); res.err != nil || f.keySet() == nil {
		t.Fatalf("https same-host redirect: %v", res.err)
	}
	f = newTestSource(t, testSource(srv.URL+"/to-http"), nil)
	trust(f)
	if res := f.fetchOnce(); res.err == nil || !strings.Contains(res.err.Error(), "https to http") || f.keySet() != nil {
		t.Fatalf("https to http redirect: %v", res.err)
	}
	// To plain http on another (loopback) host: refused as another host.
	redirect := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/jwks", http.StatusFound))
	t.Cleanup(redirect.Close)
	f = newTestSource(t, testSource(redirect.URL+"/jwks"), nil)
	f.transport.TLSClientConfig = redirect.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	if res := f.fetchOnce(); res.err == nil || f.keySet() != nil {
		t.Fatalf("redirect to http on another host: %v", res.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if plainHits != 0 {
		t.Fatalf("the plain-http target was reached %d times", plainHits)
	}
}

// tokenOfLength signs, with key, a token exactly n bytes long whose claims
// are claims plus a "pad" string, with an "x" header member to reach
// lengths base64url cannot spell from the claims alone.
func tokenOfLength(t *testing.T, key *jwttest.Key, claims map[string]any, n int) string {
	t.Helper()
	sigLen := len(jwttest.SignInput(t, key, key.Alg, []byte("probe")))
	b64 := base64.RawURLEncoding.EncodedLen
	base, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	for hpad := 0; hpad < 4; hpad++ {
		header := fmt.Sprintf(`{"alg":%q,"kid":%q,"x":%q}`, key.Alg, key.Kid, strings.Repeat("h", hpad))
		// payload = base without "}" + `,"pad":"` + p + `"}`
		fixed := b64(len(header)) + 1 + 1 + b64(sigLen)
		for p := max(0, (n-fixed)*3/4-len(base)-16); p < n; p++ {
			payloadLen := len(base) - 1 + len(`,"pad":""}`) + p
			if total := fixed + b64(payloadLen); total == n {
				payload := string(base[:len(base)-1]) + `,"pad":"` + strings.Repeat("p", p) + `"}`
				tok := jwttest.SignRaw(t, key, key.Alg, []byte(header), []byte(payload))
				if len(tok) != n {
					t.Fatalf("token of %d bytes, want %d", len(tok), n)
				}
				return tok
			} else if total > n {
				break
			}
		}
	}
	t.Fatalf("no token of %d bytes", n)
	return ""
}

func TestLimitMaxTokenSizeExtract(t *testing.T) {
	for _, c := range []struct {
		max, size int
		want      Reason
	}{
		{defaultMaxTokenSize, defaultMaxTokenSize, ""},
		{defaultMaxTokenSize, defaultMaxTokenSize + 1, ReasonTooLarge},
		{1000, 1000, ""},
		{1000, 1001, ReasonTooLarge},
	} {
		tok := strings.Repeat("a", c.size)
		for _, r := range []*http.Request{
			request("/", "Authorization: Bearer "+tok),
			request("/?access_token=" + tok),
		} {
			got, err := extractToken(r, []TokenSource{{Header: "Authorization", Scheme: "Bearer"}, {Query: "access_token"}}, c.max)
			if ReasonOf(err) != c.want || (c.want == "" && got != tok) {
				t.Fatalf("max %d, token of %d bytes: %v", c.max, c.size, err)
			}
		}
	}
}

// TestLimitMaxTokenSizeEndToEnd: through Caddy, a signed token of exactly
// max_token_size bytes verifies (no other header or JSON size limit comes
// first), one byte more is 400 too_large; with the default of 16 KiB and
// with a configured 24 KiB that lets a 15 KiB claim set through.
func TestLimitMaxTokenSizeEndToEnd(t *testing.T) {
	f := newFixture(t)
	up := newCountingUpstream(t)
	// Caddy's own header limit (max_header_size, 16 KiB plus net/http's
	// 4 KiB slack) applies to header tokens first: raise it so the
	// configured max_token_size is what decides.
	tc := caddytest.NewTester(t)
	tc.InitServer(strings.Replace(globalOptions, "grace_period 1ns", "grace_period 1ns\n\tservers {\n\t\tmax_header_size 64KiB\n\t}", 1)+
		"\n"+siteURL+" {\n"+`
	handle /big/* {
		`+f.block("\tmax_token_size 24KiB")+`
		reverse_proxy `+up.srv.Listener.Addr().String()+`
	}
	handle {
		`+f.block("")+`
		reverse_proxy `+up.srv.Listener.Addr().String()+`
	}`+"\n}\n", "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	f.ready(t, tc)
	claims := jwttest.Claims(f.issuer, "api", 5*time.Minute)
	for _, c := range []struct {
		path string
		max  int
	}{{"/", defaultMaxTokenSize}, {"/big/x", 24 << 10}} {
		for _, size := range []int{c.max, c.max + 1} {
			tok := tokenOfLength(t, f.key, claims, size)
			before := up.hits.Load()
			resp, body := get(t, tc, c.path, tok)
			switch {
			case size <= c.max && (resp.StatusCode != 200 || body != "from upstream" || up.hits.Load() != before+1):
				t.Fatalf("%s: token of exactly %d bytes: %d %q", c.path, size, resp.StatusCode, body)
			case size > c.max && (resp.StatusCode != 400 || up.hits.Load() != before ||
				resp.Header.Get("WWW-Authenticate") != fmt.Sprintf(invalidRequest, ReasonTooLarge)):
				t.Fatalf("%s: token of %d bytes: %d %q", c.path, size, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// A 15 KiB claim set (a 20 KiB token) under the configured limit.
	big := map[string]any{}
	for k, v := range claims {
		big[k] = v
	}
	big["groups"] = strings.Repeat("g", 15<<10)
	tok := jwttest.Sign(t, f.key, nil, big)
	if resp, _ := get(t, tc, "/big/x", tok); resp.StatusCode != 200 {
		t.Fatalf("15 KiB claims under max_token_size 24KiB: %d", resp.StatusCode)
	}
	if resp, _ := get(t, tc, "/", tok); resp.StatusCode != 400 {
		t.Fatalf("15 KiB claims under the default 16 KiB: %d, want 400", resp.StatusCode)
	}
}

// TestLimitJSONSizeComesFromMaxTokenSize: the verifier itself has no JSON
// size limit of its own: a 12 KiB header and a 15 KiB claim set verify.
func TestLimitJSONSizeComesFromMaxTokenSize(t *testing.T) {
	key := fixtureKey(t, "ES256", "ec-1", 0)
	policy, _ := testPolicy(loadTestSet(t, LoadOptions{}, key), "ES256")
	v := testVerifier(verifierOptions{Leeway: testLeeway}, policy)
	header := fmt.Sprintf(`{"alg":"ES256","kid":"ec-1","x5c_like":%q}`, strings.Repeat("h", 12<<10))
	claims := rawClaims(t, testClaims(map[string]any{"groups": strings.Repeat("g", 15<<10)}), nil)
	if len(claims) < 15<<10 {
		t.Fatalf("claims of %d bytes", len(claims))
	}
	wantReason(t, v, jwttest.SignRaw(t, key, "ES256", []byte(header), claims), "")
}

// TestLimitClaimsNestingDepth: claims nested up to jose.MaxDepth verify, one
// level deeper is malformed, for objects and arrays alike.
func TestLimitClaimsNestingDepth(t *testing.T) {
	key := fixtureKey(t, "ES256", "ec-1", 0)
	policy, _ := testPolicy(loadTestSet(t, LoadOptions{}, key), "ES256")
	v := testVerifier(verifierOptions{Leeway: testLeeway}, policy)
	nestArrays := func(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }
	for _, c := range []struct {
		name, value string
		want        Reason
	}{
		// The claim set is depth 0, its members' values depth 1.
		{"objects at the limit", jwttest.NestedObjects(jose.MaxDepth - 1), ""},
		{"objects one past the limit", jwttest.NestedObjects(jose.MaxDepth), ReasonMalformed},
		{"arrays at the limit", nestArrays(jose.MaxDepth - 1), ""},
		{"arrays one past the limit", nestArrays(jose.MaxDepth), ReasonMalformed},
		{"5000 levels", nestArrays(5000), ReasonMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims := rawClaims(t, testClaims(nil), map[string]string{"deep": c.value})
			wantReason(t, v, jwttest.SignRaw(t, key, "ES256", []byte(`{"alg":"ES256","kid":"ec-1"}`), claims), c.want)
		})
	}
}

package jwttest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keyFromJWK rebuilds a verification key from a public JWK using only the
// JWK members, so the tests prove the JWK (not just the Key) is correct.
func keyFromJWK(t *testing.T, m map[string]any) crypto.PublicKey {
	t.Helper()
	dec := func(name string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(m[name].(string))
		if err != nil {
			t.Fatalf("JWK member %s: %v", name, err)
		}
		return b
	}
	switch m["kty"] {
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(dec("n")), E: int(new(big.Int).SetBytes(dec("e")).Int64())}
	case "EC":
		curves := map[any]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		c := curves[m["crv"]]
		size := (c.Params().BitSize + 7) / 8
		x, y := dec("x"), dec("y")
		if len(x) != size || len(y) != size {
			t.Fatalf("EC coordinates not fixed-size: %d/%d, want %d", len(x), len(y), size)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	case "OKP":
		return ed25519.PublicKey(dec("x"))
	case "oct":
		return dec("k")
	}
	t.Fatalf("unknown kty %v", m["kty"])
	return nil
}

// verify checks a compact JWS with crypto/* directly and returns its claims.
func verify(t *testing.T, pub crypto.PublicKey, alg, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	input := []byte(parts[0] + "." + parts[1])
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	hash := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[len(alg)-3:]]
	var digest []byte
	if hash != 0 {
		h := hash.New()
		h.Write(input)
		digest = h.Sum(nil)
	}
	ok := false
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(alg, "PS") {
			ok = rsa.VerifyPSS(p, hash, digest, sig, &rsa.PSSOptions{SaltLength: hash.Size()}) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(p, hash, digest, sig) == nil
		}
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		ok = ecdsa.Verify(p, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	case ed25519.PublicKey:
		ok = ed25519.Verify(p, input, sig)
	case []byte:
		mac := hmac.New(hash.New, p)
		mac.Write(input)
		ok = hmac.Equal(mac.Sum(nil), sig)
	}
	if !ok {
		t.Fatalf("%s signature does not verify", alg)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func header(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSignVerifiesForEveryAlg(t *testing.T) {
	rsaKey := NewRSA(t, 2048, "r", "RS256")
	keys := []*Key{
		rsaKey,
		{Kid: "r384", Alg: "RS384", Private: rsaKey.Private},
		{Kid: "r512", Alg: "RS512", Private: rsaKey.Private},
		{Kid: "p256", Alg: "PS256", Private: rsaKey.Private},
		{Kid: "p384", Alg: "PS384", Private: rsaKey.Private},
		{Kid: "p512", Alg: "PS512", Private: rsaKey.Private},
		NewEC(t, "ES256", "e256"),
		NewEC(t, "ES384", "e384"),
		NewEC(t, "ES512", "e512"),
		NewEd25519(t, "ed", "EdDSA"),
		NewEd25519(t, "ed2", "Ed25519"),
		NewHMAC(t, 32, "h256", "HS256"),
		NewHMAC(t, 48, "h384", "HS384"),
		NewHMAC(t, 64, "h512", "HS512"),
	}
	for _, k := range keys {
		t.Run(k.Alg, func(t *testing.T) {
			tok := Sign(t, k, nil, Claims("https://issuer", "api", time.Minute))
			jwk := k.JWK()
			if jwk["kid"] != k.Kid || jwk["alg"] != k.Alg || jwk["use"] != "sig" {
				t.Fatalf("JWK metadata: %v", jwk)
			}
			claims := verify(t, keyFromJWK(t, jwk), k.Alg, tok)
			if claims["iss"] != "https://issuer" || claims["aud"] != "api" || claims["sub"] != "user-123" {
				t.Fatalf("claims: %v", claims)
			}
			h := header(t, tok)
			if h["alg"] != k.Alg || h["kid"] != k.Kid || h["typ"] != "JWT" {
				t.Fatalf("header: %v", h)
			}
			if _, ok := jwk["d"]; ok {
				t.Fatal("public JWK leaks d")
			}
		})
	}
}

func TestECSignatureIsFixedSize(t *testing.T) {
	for alg, size := range map[string]int{"ES256": 64, "ES384": 96, "ES512": 132} {
		k := NewEC(t, alg, "")
		// Many signatures, so a short R or S (leading zero) would show up.
		for range 50 {
			if n := len(SignInput(t, k, alg, []byte("x"))); n != size {
				t.Fatalf("%s signature is %d bytes, want %d", alg, n, size)
			}
		}
	}
}

func TestHeaderOverridesAndDeletes(t *testing.T) {
	k := NewEC(t, "ES256", "kid-1")
	tok := Sign(t, k, map[string]any{"kid": nil, "typ": "at+jwt", "crit": []string{"x"}}, nil)
	h := header(t, tok)
	if _, ok := h["kid"]; ok || h["typ"] != "at+jwt" || h["crit"] == nil {
		t.Fatalf("header: %v", h)
	}
	verify(t, k.Public(), "ES256", tok)

	if tok := Sign(t, k, map[string]any{"alg": "none"}, nil); !strings.HasSuffix(tok, ".") {
		t.Fatalf("alg none should give an empty signature: %s", tok)
	}
	// An unknown header alg is kept verbatim while signing with k.Alg.
	tok = Sign(t, k, map[string]any{"alg": "XX999"}, nil)
	if header(t, tok)["alg"] != "XX999" {
		t.Fatal("lying alg not kept")
	}
	verify(t, k.Public(), "ES256", tok)
}

func TestAlgConfusionTokenVerifiesAsHMACOverPEM(t *testing.T) {
	// The classic attack: HS256 keyed with the RSA public key's PEM.
	r := NewRSA(t, 2048, "r", "RS256")
	evil := &Key{Secret: r.PublicPEM()}
	tok := SignRaw(t, evil, "HS256", []byte(`{"alg":"HS256","kid":"r"}`), []byte(`{"sub":"admin"}`))
	verify(t, r.PublicPEM(), "HS256", tok)
}

func TestJWKOptions(t *testing.T) {
	k := NewEd25519(t, "", "")
	k.OmitAlg, k.Use = true, "-"
	jwk := k.JWK()
	for _, m := range []string{"kid", "alg", "use"} {
		if _, ok := jwk[m]; ok {
			t.Errorf("JWK has %q: %v", m, jwk)
		}
	}
	k.Use = "enc"
	if k.JWK()["use"] != "enc" {
		t.Error("custom use not written")
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(JWKS(k, NewHMAC(t, 0, "h", "")), &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS: %v %v", set, err)
	}
	if string(JWKSOf()) != `{"keys":[]}` {
		t.Fatalf("empty JWKSOf: %s", JWKSOf())
	}
}

func TestPrivateJWK(t *testing.T) {
	r := NewRSA(t, 2048, "r", "")
	m := r.PrivateJWK()
	priv := r.Private.(*rsa.PrivateKey)
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if m[name] == nil {
			t.Fatalf("RSA private JWK lacks %s", name)
		}
	}
	if m["d"] != B64(priv.D.Bytes()) {
		t.Fatal("wrong d")
	}
	e := NewEC(t, "ES512", "")
	if d, _ := base64.RawURLEncoding.DecodeString(e.PrivateJWK()["d"].(string)); len(d) != 66 {
		t.Fatalf("P-521 d is %d bytes", len(d))
	}
	ed := NewEd25519(t, "", "")
	if ed.PrivateJWK()["d"] != B64(ed.Private.(ed25519.PrivateKey).Seed()) {
		t.Fatal("wrong OKP d")
	}
}

func TestPEMs(t *testing.T) {
	for _, k := range []*Key{NewRSA(t, 2048, "", ""), NewEC(t, "ES384", ""), NewEd25519(t, "", "")} {
		block, _ := pem.Decode(k.PublicPEM())
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil || block.Type != "PUBLIC KEY" {
			t.Fatalf("PublicPEM: %v %s", err, block.Type)
		}
		block, _ = pem.Decode(k.CertPEM(t))
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil || block.Type != "CERTIFICATE" {
			t.Fatalf("CertPEM: %v", err)
		}
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if !pub.(equaler).Equal(k.Public()) || !cert.PublicKey.(equaler).Equal(k.Public()) {
			t.Fatalf("%T: PEM keys differ from Public()", pub)
		}
	}
}

func TestClaims(t *testing.T) {
	c := Claims("iss", "", time.Hour)
	if _, ok := c["aud"]; ok {
		t.Fatal("aud set although empty")
	}
	if c["exp"].(int64)-c["iat"].(int64) != 3600 || c["nbf"] != c["iat"] {
		t.Fatalf("times: %v", c)
	}
	if c["jti"] == Claims("iss", "", time.Hour)["jti"] {
		t.Fatal("jti not random")
	}
}

// get fetches url, sending If-None-Match when etag != "".
func get(t *testing.T, url, etag string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestServerNormalETagAndRotation(t *testing.T) {
	k1, k2 := NewEC(t, "ES256", "k1"), NewEC(t, "ES256", "k2")
	s := NewServer(t, k1)
	s.SetCacheControl("max-age=60")

	resp, body := get(t, s.JWKSURL(), "")
	if resp.StatusCode != 200 || !bytes.Equal(body, JWKS(k1)) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("normal: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Fatal("no Cache-Control")
	}
	etag := resp.Header.Get("ETag")
	if resp, _ = get(t, s.JWKSURL(), etag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}

	s.SetKeys(k1, k2)
	resp, body = get(t, s.JWKSURL(), etag)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag || !bytes.Equal(body, JWKS(k1, k2)) {
		t.Fatalf("after rotation: %d etag %s", resp.StatusCode, resp.Header.Get("ETag"))
	}
	s.SetBody([]byte(`{"keys":"odd"}`))
	if _, body = get(t, s.JWKSURL(), ""); string(body) != `{"keys":"odd"}` {
		t.Fatalf("SetBody: %s", body)
	}
	s.SetETag(false)
	if resp, _ = get(t, s.JWKSURL(), "*"); resp.StatusCode != 200 || resp.Header.Get("ETag") != "" {
		t.Fatal("ETag not disabled")
	}
	if s.Hits() != 5 || s.NotModified() != 1 {
		t.Fatalf("hits %d notModified %d", s.Hits(), s.NotModified())
	}
}

func TestServerModes(t *testing.T) {
	k := NewEC(t, "ES256", "k")
	s := NewServer(t, k)
	check := func(m Mode, status int, ok func([]byte) bool) {
		t.Helper()
		s.SetMode(m)
		resp, body := get(t, s.JWKSURL(), "")
		if resp.StatusCode != status || !ok(body) {
			t.Fatalf("mode %d: %d %.80q", m, resp.StatusCode, body)
		}
	}
	isJSON := func(b []byte) bool { return json.Valid(b) }
	check(Status500, 500, func([]byte) bool { return true })
	check(Garbage, 200, func(b []byte) bool { return len(b) > 0 && !json.Valid(b) })
	check(Empty, 200, func(b []byte) bool { return len(b) == 0 })
	check(EmptySet, 200, func(b []byte) bool { return string(b) == `{"keys":[]}` })
	check(Huge, 200, func(b []byte) bool { return len(b) > 1<<20 && isJSON(b) })
	check(Normal, 200, func(b []byte) bool { return bytes.Equal(b, JWKS(k)) })
}

func TestServerDownKeepsPort(t *testing.T) {
	s := NewServer(t, NewEd25519(t, "k", ""))
	get(t, s.JWKSURL(), "") // leaves a keep-alive connection in the client pool
	s.SetMode(Down)
	for range 2 { // twice: the pooled connection must be dead too
		_, err := http.Get(s.JWKSURL())
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
			t.Fatalf("Down: err = %v", err)
		}
	}
	_, err := http.Get(s.JWKSURL())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Down: want connection refused, got %v", err)
	}
	s.SetMode(Normal)
	if resp, _ := get(t, s.JWKSURL(), ""); resp.StatusCode != 200 {
		t.Fatal("not back up on the same URL")
	}
	s.Close()
	s.Close() // idempotent
	s.SetMode(Normal)
	if _, err := http.Get(s.JWKSURL()); err == nil {
		t.Fatal("closed server must not reopen")
	}
}

func TestServerDelayHonoursClientCancel(t *testing.T) {
	s := NewServer(t)
	s.SetDelay(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.JWKSURL(), nil)
	start := time.Now()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("expected timeout")
	}
	// Close waits for handlers, so it returning quickly proves the handler
	// did not sit out the whole delay.
	s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestServerDiscovery(t *testing.T) {
	s := NewServer(t)
	var doc map[string]any
	_, body := get(t, s.URL()+"/.well-known/openid-configuration", "")
	if err := json.Unmarshal(body, &doc); err != nil || doc["issuer"] != s.URL() || doc["jwks_uri"] != s.JWKSURL() {
		t.Fatalf("discovery: %s %v", body, err)
	}
	s.SetIssuer("https://idp.example")
	_, body = get(t, s.URL()+"/.well-known/openid-configuration", "")
	if !strings.Contains(string(body), `"issuer":"https://idp.example"`) || s.DiscoveryHits() != 2 || s.Hits() != 0 {
		t.Fatalf("discovery: %s hits %d/%d", body, s.DiscoveryHits(), s.Hits())
	}
}

// Command gentokens writes a key set and tokens for bench/run.sh: one
// jwks.json, the same public key as pub.pem (for HAProxy's jwt_verify) and
// a file of distinct tokens, all signed by one fresh key of the chosen
// algorithm. It is a benchmark tool, not part of the plugin.
package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

func main() {
	alg := flag.String("alg", "ES256", "RS256, ES256 or EdDSA")
	n := flag.Int("n", 1000, "number of distinct tokens")
	shape := flag.String("shape", "small", "claim set: small (iss, sub, aud, scope, iat, exp: ~300 bytes) or idp (an IdP-shaped access token: ~1 KiB)")
	out := flag.String("out", ".", "output directory")
	flag.Parse()
	if *shape != "small" && *shape != "idp" {
		fmt.Fprintln(os.Stderr, "gentokens: -shape must be small or idp")
		os.Exit(2)
	}
	if err := run(*alg, *n, *shape, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gentokens:", err)
		os.Exit(1)
	}
}

func run(alg string, n int, shape, out string) error {
	signer, jwk, pub, err := newKey(alg)
	if err != nil {
		return err
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	if err := os.WriteFile(filepath.Join(out, "jwks.json"), jwks, 0o644); err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": alg, "kid": "bench", "typ": "JWT"})
	now := time.Now()
	// Signing (RS256 above all) dominates: one worker per core.
	tokens := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				claims, _ := json.Marshal(claimsOf(shape, i, now))
				input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
				sig, err := signer(input)
				if err != nil {
					failed.Store(err)
					return
				}
				tokens[i] = input + "." + enc.EncodeToString(sig)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	f, err := os.Create(filepath.Join(out, "tokens.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for _, t := range tokens {
		fmt.Fprintln(w, t)
	}
	return w.Flush()
}

// claimsOf is the i-th token's claim set. idp is jwttest.IdPClaims, the
// shape the plugin's benchmarks use: a Keycloak- or Auth0-like access token.
func claimsOf(shape string, i int, now time.Time) map[string]any {
	if shape == "small" {
		return map[string]any{
			"iss": "https://idp.example/", "sub": fmt.Sprintf("user-%d", i), "aud": "api",
			"scope": "read:docs write:docs", "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(),
		}
	}
	return jwttest.IdPClaims(i, now, 2*time.Hour)
}

// newKey makes a key of alg: its signer, its public JWK and its public key.
func newKey(alg string) (func(string) ([]byte, error), map[string]any, crypto.PublicKey, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch alg {
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, nil, err
		}
		jwk := map[string]any{"kty": "RSA", "kid": "bench", "alg": alg, "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
		return func(in string) ([]byte, error) {
			d := sha256.Sum256([]byte(in))
			return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		}, jwk, &k.PublicKey, nil
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, nil, err
		}
		pub, _ := k.PublicKey.ECDH()
		raw := pub.Bytes() // 0x04 || X || Y
		jwk := map[string]any{"kty": "EC", "crv": "P-256", "kid": "bench", "alg": alg, "x": b64(raw[1:33]), "y": b64(raw[33:])}
		return func(in string) ([]byte, error) {
			d := sha256.Sum256([]byte(in))
			r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
			if err != nil {
				return nil, err
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return sig, nil
		}, jwk, &k.PublicKey, nil
	case "EdDSA":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, nil, err
		}
		jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "bench", "alg": alg, "x": b64(pub)}
		return func(in string) ([]byte, error) { return ed25519.Sign(priv, []byte(in)), nil }, jwk, pub, nil
	}
	return nil, nil, nil, fmt.Errorf("unsupported alg %q", alg)
}

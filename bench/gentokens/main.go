// Command gentokens writes a key set and tokens for bench/run.sh: one
// jwks.json and a file of distinct tokens, all signed by one fresh key of
// the chosen algorithm. It is a benchmark tool, not part of the plugin.
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
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

func main() {
	alg := flag.String("alg", "ES256", "RS256, ES256 or EdDSA")
	n := flag.Int("n", 1000, "number of distinct tokens")
	out := flag.String("out", ".", "output directory")
	flag.Parse()
	if err := run(*alg, *n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gentokens:", err)
		os.Exit(1)
	}
}

func run(alg string, n int, out string) error {
	signer, jwk, err := newKey(alg)
	if err != nil {
		return err
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	if err := os.WriteFile(filepath.Join(out, "jwks.json"), jwks, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "tokens.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": alg, "kid": "bench", "typ": "JWT"})
	now := time.Now()
	for i := range n {
		claims, _ := json.Marshal(map[string]any{
			"iss": "https://idp.example/", "sub": fmt.Sprintf("user-%d", i), "aud": "api",
			"scope": "read:docs write:docs", "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(),
		})
		input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
		sig, err := signer(input)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s.%s\n", input, enc.EncodeToString(sig))
	}
	return w.Flush()
}

func newKey(alg string) (func(string) ([]byte, error), map[string]any, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch alg {
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, err
		}
		jwk := map[string]any{"kty": "RSA", "kid": "bench", "alg": alg, "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
		return func(in string) ([]byte, error) {
			d := sha256.Sum256([]byte(in))
			return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		}, jwk, nil
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
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
		}, jwk, nil
	case "EdDSA":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "bench", "alg": alg, "x": b64(pub)}
		return func(in string) ([]byte, error) { return ed25519.Sign(priv, []byte(in)), nil }, jwk, nil
	}
	return nil, nil, fmt.Errorf("unsupported alg %q", alg)
}

// Command demotoken prints a fresh one-hour token for Caddyfile.example's
// demo issuer. DEMO ONLY: its private key is published right here, so
// anyone can mint these tokens; never trust demo/jwks.json in production.
package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

// Demo-only key material, matching demo/jwks.json (kid demo-2026).
const (
	demoSeed   = "NDgEibf9ViwCwLpIVq55JBuXM1boPBycghXCU-SMXpk"
	demoKid    = "demo-2026"
	demoIssuer = "https://demo-issuer.example"
	demoAud    = "demo-api"
)

func main() {
	sub := flag.String("sub", "demo-user", "subject (becomes {http.auth.user.id})")
	ttl := flag.Duration("ttl", time.Hour, "lifetime; negative for an expired token")
	scope := flag.String("scope", "read:docs", "space-separated scopes")
	flag.Parse()
	tok, err := mint(*sub, *scope, time.Now(), *ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demotoken:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}

// mint signs an EdDSA token for the demo issuer.
func mint(sub, scope string, now time.Time, ttl time.Duration) (string, error) {
	seed, err := base64.RawURLEncoding.DecodeString(demoSeed)
	if err != nil {
		return "", err
	}
	key := ed25519.NewKeyFromSeed(seed)
	header, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": demoKid})
	iat := now.Unix()
	if ttl < 0 {
		iat = now.Add(2 * ttl).Unix() // an expired token was also issued in the past
	}
	claims, err := json.Marshal(map[string]any{
		"iss": demoIssuer, "sub": sub, "aud": demoAud, "scope": scope,
		"iat": iat, "exp": now.Add(ttl).Unix(),
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	return input + "." + enc.EncodeToString(ed25519.Sign(key, []byte(input))), nil
}

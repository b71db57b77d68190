package jwtauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// dpopPeerDir holds a real DPoP client: panva's dpop package (pinned in its
// package.json and package-lock.json) making proofs with WebCrypto keys.
const dpopPeerDir = "internal/dpoppeer"

type peerProof struct {
	Proof     string         `json:"proof"`
	JKT       string         `json:"jkt"`
	PublicJWK map[string]any `json:"publicJwk"`
}

// peerMakeProof runs the peer once. A missing node or node_modules fails
// the test: CI installs them (.ci/run runs npm ci), and a skipped peer test
// would prove nothing.
func peerMakeProof(t *testing.T, req map[string]any) peerProof {
	t.Helper()
	var p peerProof
	runNode(t, dpopPeerDir, "dpop", "proof.mjs", req, &p)
	return p
}

// TestDPoPPeerProofs checks that proofs from an independent implementation
// pass our check, that its thumbprint is ours, and that the same proof for
// another URL, method or token is refused.
func TestDPoPPeerProofs(t *testing.T) {
	const url = "https://api.example.com/orders/42"
	const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwZWVyIn0.c2lnbmF0dXJl"
	nonces := newDPoPNonces(make([]byte, nonceKeySize), time.Minute)
	for _, alg := range []string{"ES256", "RS256", "PS256", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			now := time.Now()
			nonce := nonces.current(now)
			p := peerMakeProof(t, map[string]any{
				"alg": alg, "method": http.MethodPost, "url": url + "?page=2", "accessToken": token, "nonce": nonce,
			})
			ours, err := jose.Thumbprint(p.PublicJWK)
			if err != nil {
				t.Fatal(err)
			}
			if ours != p.JKT {
				t.Fatalf("our thumbprint %s, the peer's %s", ours, p.JKT)
			}
			check := func(mutate func(c *dpopCheck)) error {
				c := &dpopCheck{
					Proof: p.Proof, Method: http.MethodPost, URL: url, AccessToken: token, JKT: p.JKT,
					Algorithms: jose.DefaultAlgorithms(), MaxAge: time.Minute, Leeway: 5 * time.Second,
					Now: time.Now(), Nonces: nonces, Replay: newReplayMemory(10, 70*time.Second),
				}
				if mutate != nil {
					mutate(c)
				}
				_, err := verifyDPoPProof(c)
				return err
			}
			if err := check(nil); err != nil {
				t.Fatalf("peer proof refused: %v", err)
			}
			refusals := []struct {
				name   string
				mutate func(c *dpopCheck)
				want   Reason
			}{
				{"tampered URL", func(c *dpopCheck) { c.URL = "https://api.example.com/orders/43" }, ReasonDPoPProof},
				{"other method", func(c *dpopCheck) { c.Method = http.MethodGet }, ReasonDPoPProof},
				{"other token", func(c *dpopCheck) { c.AccessToken = token + "x" }, ReasonDPoPProof},
				{"token bound to another key", func(c *dpopCheck) { c.JKT = ours[1:] + "A" }, ReasonDPoPProof},
				{"nonce from another secret", func(c *dpopCheck) {
					c.Nonces = newDPoPNonces(bytes.Repeat([]byte{9}, nonceKeySize), time.Minute)
				}, ReasonDPoPNonce},
			}
			for _, r := range refusals {
				if err := check(r.mutate); ReasonOf(err) != r.want {
					t.Errorf("%s: %v, want %s", r.name, err, r.want)
				}
			}
			// The peer's proof with its htu rewritten to the request URL
			// of another resource, signature kept: the signature fails.
			tampered := tamperHTU(t, p.Proof, "https://api.example.com/orders/43")
			err = check(func(c *dpopCheck) { c.Proof, c.URL = tampered, "https://api.example.com/orders/43" })
			if ReasonOf(err) != ReasonDPoPProof || !strings.Contains(err.Error(), "signature") {
				t.Errorf("tampered htu: %v, want a %s signature failure", err, ReasonDPoPProof)
			}
		})
	}
}

// tamperHTU replaces the htu claim of a compact JWS, keeping its header and
// signature.
func tamperHTU(t *testing.T, proof, htu string) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["htu"] = htu
	if payload, err = json.Marshal(claims); err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

package jwtauth

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// DPoP server nonces across a fleet (RFC 9449 §9): two real Caddy
// processes built from ./cmd/caddy share a file_system storage, and so the
// nonce secret (jwt_auth/dpop/nonce_key). A nonce one instance hands out in
// its DPoP-Nonce header works in a proof sent to the other, which is why
// dpop_nonce is the answer to replay memories being per instance.
func TestMultiProcessDPoPNonceAcceptedAcrossInstances(t *testing.T) {
	bin := buildCaddy(t)
	storage := t.TempDir()
	f := newFixture(t)
	site := f.block("\tdpop_nonce") + "\n\trespond \"{http.auth.binding}\""
	a := startCaddyProcess(t, bin, storage, 3021, 9191, site)
	b := startCaddyProcess(t, bin, storage, 3022, 9192, site)

	key := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	token := f.token(t, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": key.jkt} })
	proof := func(p *caddyProcess, nonce string) string {
		claims := map[string]any{"htu": p.url, "iat": time.Now().Unix(), "ath": accessTokenHash(token)}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		return key.sign(t, nil, claims)
	}
	send := func(p *caddyProcess, proof string) (*http.Response, string) {
		return sendAuth(t, http.DefaultClient, p.url, "DPoP "+token, proof)
	}

	// A proof without a nonce: A demands one and hands it out.
	var resp *http.Response
	var body string
	eventually(t, 10*time.Second, "instance A loads the keys", func() bool {
		resp, body = send(a, proof(a, ""))
		return resp.Header.Get("Retry-After") == ""
	})
	assertRejected(t, "proof without a nonce on A", resp, body, "dpop_nonce")
	if c := challengeFor(resp, "DPoP"); !strings.Contains(c, `error="use_dpop_nonce"`) {
		t.Errorf("A's challenge %q, want use_dpop_nonce", c)
	}
	nonceA := resp.Header.Get("DPoP-Nonce")
	if nonceA == "" {
		t.Fatal("A's 401 has no DPoP-Nonce header")
	}

	// A's nonce in a proof for B: B accepts it.
	eventually(t, 10*time.Second, "instance B loads the keys", func() bool {
		resp, body = send(b, proof(b, nonceA))
		return resp.Header.Get("Retry-After") == ""
	})
	if resp.StatusCode != 200 || body != "dpop" {
		t.Fatalf("A's nonce on B: %d %q (%q)", resp.StatusCode, body, resp.Header.Values("WWW-Authenticate"))
	}
	nonceB := resp.Header.Get("DPoP-Nonce")
	if nonceB == "" {
		t.Fatal("B's 200 to a DPoP request has no DPoP-Nonce header")
	}
	if _, err := os.Stat(filepath.Join(storage, filepath.FromSlash(nonceKeyStorageKey))); err != nil {
		t.Fatalf("the nonce secret is not in the shared storage: %v", err)
	}
	// And the other way round; a nonce neither handed out is refused.
	if resp, body := send(a, proof(a, nonceB)); resp.StatusCode != 200 || body != "dpop" {
		t.Fatalf("B's nonce on A: %d %q", resp.StatusCode, body)
	}
	resp, body = send(b, proof(b, flipLastChar(nonceA)))
	assertRejected(t, "a forged nonce on B", resp, body, "dpop_nonce")
}

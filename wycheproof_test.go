package jwtauth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// TestWycheproofFullVerifier runs the Project Wycheproof JOSE vectors
// (Apache License 2.0; internal/keyimport/testdata/wycheproof/README.md has the
// source, the snapshot and the licence) through the full tokenVerifier. The JWS
// layer's verdict on each vector is checked in internal/jose; here the
// property is that the tokenVerifier never accepts one (their payloads are no
// JWT claim sets with exp) and always answers with a closed-list reason.
func TestWycheproofFullVerifier(t *testing.T) {
	dir := wycheproofDir(t)
	for _, file := range []struct {
		name   string
		jwkSet bool // the group keys are JWK Sets, not single JWKs
	}{{"json_web_signature_test.json", false}, {"json_web_key_test.json", true}} {
		data, err := os.ReadFile(filepath.Join(dir, file.name))
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			TestGroups []struct {
				Private, Public json.RawMessage
				Tests           []struct {
					TcID int    `json:"tcId"`
					JWS  string `json:"jws"`
				}
			} `json:"testGroups"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		reasons := map[Reason]int{}
		n := 0
		for _, g := range f.TestGroups {
			raw := g.Public
			if len(raw) == 0 {
				raw = g.Private
			}
			if !file.jwkSet {
				raw = json.RawMessage(`{"keys":[` + string(raw) + `]}`)
			}
			// The most permissive configuration: HMAC allowed, every
			// algorithm, one issuer "" (the vectors have no iss); a
			// group whose keys do not load has no key set at all.
			set, _, _ := parseKeySet(raw, true)
			policy, _ := testPolicy(set)
			policy.Issuer = ""
			verifier := testVerifier(verifierOptions{}, policy)
			for _, tc := range g.Tests {
				n++
				_, err := verifier.Verify(context.Background(), tc.JWS)
				switch r := ReasonOf(err); {
				case err == nil:
					t.Errorf("%s tcId %d: the tokenVerifier accepted a vector whose payload is no JWT claim set", file.name, tc.TcID)
				case !isClosedListReason(r):
					t.Errorf("%s tcId %d: answered %v, not a closed-list reason", file.name, tc.TcID, err)
				default:
					reasons[r]++
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no vectors", file.name)
		}
		t.Logf("%s: %d vectors, tokenVerifier rejections %v", file.name, n, reasons)
	}
}

// wycheproofDir is where the vectors are committed, beside the key import's
// own Wycheproof suite (or $WYCHEPROOF_DIR).
func wycheproofDir(t *testing.T) string {
	return jwttest.WycheproofDir(t, filepath.Join("internal", "keyimport", "testdata", "wycheproof"))
}

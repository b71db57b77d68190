package jwtauth

import (
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// fuzzProofReasons are the only codes a proof check may answer with.
var fuzzProofReasons = map[Reason]bool{ReasonDPoPProof: true, ReasonDPoPReplay: true, ReasonDPoPNonce: true}

// FuzzDPoPProof: the proof check never panics, answers only dpop_proof,
// dpop_replay or dpop_nonce, and accepts a proof only if its signing input
// verifies, by a separate standard-library check, under the key the token is
// bound to; an accepted proof is refused as a replay the second time. Run it
// with
//
//	go test -run='^$' -fuzz=FuzzDPoPProof -fuzztime=60s .
//
// mode picks the signer (bits 1–2), whether the signature is kept (bit 0
// clear) or has one bit flipped (bit 0 set, the position from bits 4 and
// up), and whether server nonces are demanded (bit 3). The seeds are real
// proofs, each with the header its signer would send.
func FuzzDPoPProof(f *testing.F) {
	signers := []*testProofKey{
		newTestProofKey(f, jwttest.NewEC(f, "ES256", "")),
		newTestProofKey(f, jwttest.NewEd25519(f, "", "EdDSA")),
		newTestProofKey(f, jwttest.NewRSA(f, 2048, "", "PS256")),
	}
	nonces := newDPoPNonces(make([]byte, nonceKeySize), 60*time.Second)
	nonce := nonces.current(testProofTime)

	for i, s := range signers {
		hdr := jwttest.MustJSON(f, map[string]any{"typ": dpopProofType, "alg": s.key.Alg, "jwk": s.jwk})
		claims := proofClaims(f)
		// The valid seeds must pass, or the fuzzer starts with no accepted
		// proof to mutate.
		valid := signedProof(f, s, hdr, jwttest.MustJSON(f, claims))
		if _, err := verifyDPoPProof(newTestCheck(valid, s.jkt)); err != nil {
			f.Fatalf("%s seed proof refused: %v", s.key.Alg, err)
		}
		f.Add(hdr, jwttest.MustJSON(f, claims), uint16(i<<1))   // valid
		f.Add(hdr, jwttest.MustJSON(f, claims), uint16(i<<1|1)) // tampered signature
		claims["nonce"] = nonce
		f.Add(hdr, jwttest.MustJSON(f, claims), uint16(i<<1|8)) // valid with a nonce
		delete(claims, "nonce")
		f.Add(hdr, jwttest.MustJSON(f, claims), uint16(i<<1|8)) // nonce missing
		// Signed by the other signer's key but naming this one's jwk.
		f.Add(hdr, jwttest.MustJSON(f, claims), uint16((i+1)%len(signers)<<1))
	}
	es := signers[0]
	for _, h := range []string{
		`{"typ":"dpop+jwt","alg":"none","jwk":` + jwttest.MustJSON(f, es.jwk) + `}`,
		`{"typ":"JWT","alg":"ES256","jwk":` + jwttest.MustJSON(f, es.jwk) + `}`,
		`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`,
		`{"typ":"dpop+jwt","alg":"ES256"}`,
		`{"typ":"dpop+jwt","alg":"ES256","jwk":` + strings.Replace(jwttest.MustJSON(f, es.jwk), `{`, `{"d":"AAAA",`, 1) + `}`,
		`{"typ":"dpop+jwt","alg":"ES384","jwk":` + jwttest.MustJSON(f, es.jwk) + `}`,
		`{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":` + jwttest.MustJSON(f, es.jwk) + `}`,
	} {
		f.Add(h, jwttest.MustJSON(f, proofClaims(f)), uint16(0))
	}
	hdr := jwttest.MustJSON(f, map[string]any{"typ": dpopProofType, "alg": "ES256", "jwk": es.jwk})
	for _, c := range []string{
		`{}`,
		`{"jti":"a","htm":"GET","htu":"` + testProofURL + `","iat":1e30,"ath":"` + accessTokenHash(testProofToken) + `"}`,
		`{"jti":"a","htm":"GET","htu":"` + testProofURL + `?q=1#f","iat":1700000000,"ath":"` + accessTokenHash(testProofToken) + `"}`,
		`{"jti":"a","htm":"GET","htu":"HTTPS://API.example.com:443/resource","iat":1700000000,"ath":"` + accessTokenHash(testProofToken) + `"}`,
		`{"jti":["a"],"htm":"GET","htu":"` + testProofURL + `","iat":"1700000000"}`,
	} {
		f.Add(hdr, c, uint16(0))
	}

	f.Fuzz(func(t *testing.T, header, payload string, mode uint16) {
		signer := signers[int(mode>>1&3)%len(signers)]
		input, sig := signProofInput(t, signer, header, payload)
		signed := mode&1 == 0
		if !signed {
			i := int(mode>>4) % len(sig)
			sig[i] ^= 1 << (mode >> 1 & 7)
		}
		c := newTestCheck(input+"."+jwttest.B64(sig), signer.jkt)
		if mode&8 != 0 {
			c.Nonces = nonces
		}
		jkt, err := verifyDPoPProof(c)
		if err != nil {
			if !fuzzProofReasons[ReasonOf(err)] {
				t.Fatalf("answer %v (reason %q) is not a proof reason", err, ReasonOf(err))
			}
			return
		}
		if !signed {
			t.Fatalf("accepted a %s proof whose signature was altered", signer.key.Alg)
		}
		if jkt != signer.jkt {
			t.Fatalf("accepted with thumbprint %s, the token is bound to %s", jkt, signer.jkt)
		}
		alg, _ := decodedAlg(header)
		if !stdlibVerifies(alg, signer.key.Public(), input, sig) {
			t.Fatalf("accepted an %s proof the standard library does not verify with the bound key", alg)
		}
		if _, err := verifyDPoPProof(c); ReasonOf(err) != ReasonDPoPReplay {
			t.Fatalf("the same proof again: %v, want %s", err, ReasonDPoPReplay)
		}
	})
}

// signProofInput signs header and payload, as given, with k.
func signProofInput(tb testing.TB, k *testProofKey, header, payload string) (string, []byte) {
	input := jwttest.B64([]byte(header)) + "." + jwttest.B64([]byte(payload))
	return input, jwttest.SignInput(tb, k.key, k.key.Alg, []byte(input))
}

func signedProof(tb testing.TB, k *testProofKey, header, payload string) string {
	input, sig := signProofInput(tb, k, header, payload)
	return input + "." + jwttest.B64(sig)
}

// decodedAlg reads alg from a header the proof check accepted, with the
// strict JSON parser the check itself uses (an accepted header parses).
func decodedAlg(header string) (string, error) {
	obj, err := jose.ParseObject([]byte(header))
	if err != nil {
		return "", err
	}
	alg, _ := obj["alg"].(string)
	return alg, nil
}

package jose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"
)

// referenceECDSA is the JWS ECDSA check written the plain way: r and s as
// big.Ints, range-checked, then ecdsa.Verify. verifyECDSA, which writes the
// DER itself for ecdsa.VerifyASN1, must agree with it on every input.
func referenceECDSA(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	params := pub.Curve.Params()
	size := (params.BitSize + 7) / 8
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(params.N) >= 0 || s.Cmp(params.N) >= 0 {
		return false
	}
	return ecdsa.Verify(pub, digest, r, s)
}

// ecdsaVariants returns a valid R‖S signature over digest and the edge
// cases of its encoding: r and s with leading zero bytes and with the top
// bit set (DER must add or drop a zero byte), n−1, n, n+1, 0, all ones,
// each half swapped in, and lengths one byte off.
func ecdsaVariants(t testing.TB, key *ecdsa.PrivateKey, digest []byte) [][]byte {
	t.Helper()
	params := key.Curve.Params()
	size := (params.BitSize + 7) / 8
	r, s, err := ecdsa.Sign(rand.Reader, key, digest)
	if err != nil {
		t.Fatal(err)
	}
	fixed := func(x *big.Int) []byte {
		if x.Sign() < 0 || x.BitLen() > 8*size {
			return make([]byte, size)
		}
		return x.FillBytes(make([]byte, size))
	}
	join := func(a, b []byte) []byte { return append(append([]byte(nil), a...), b...) }
	one := big.NewInt(1)
	scalars := []*big.Int{
		big.NewInt(0), one, big.NewInt(0x7f), big.NewInt(0x80), big.NewInt(0xff), big.NewInt(0x100),
		new(big.Int).Sub(params.N, one), params.N, new(big.Int).Add(params.N, one),
		new(big.Int).Rsh(params.N, 8), new(big.Int).Lsh(one, uint(8*size-1)),
		new(big.Int).Sub(new(big.Int).Lsh(one, uint(8*size)), one),
	}
	valid := join(fixed(r), fixed(s))
	out := [][]byte{valid, valid[:len(valid)-1], append(join(valid, nil), 0), nil}
	for _, x := range scalars {
		out = append(out, join(fixed(x), fixed(s)), join(fixed(r), fixed(x)), join(fixed(x), fixed(x)))
	}
	flipped := join(valid, nil)
	flipped[size/2] ^= 0x10
	return append(out, flipped, join(fixed(s), fixed(r)))
}

func TestVerifyECDSAAgreesWithBigIntPath(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		a := LookupAlgorithm(alg)
		t.Run(alg, func(t *testing.T) {
			for range 20 {
				key, err := ecdsa.GenerateKey(a.curve, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				digest := digestOf(a.hash, "payload", new([64]byte))
				for i, sig := range ecdsaVariants(t, key, digest) {
					got, want := a.verifyECDSA(&key.PublicKey, digest, sig, nil), referenceECDSA(&key.PublicKey, digest, sig)
					if got != want {
						t.Fatalf("variant %d (%x): verifyECDSA %v, big.Int path %v", i, sig, got, want)
					}
					if i == 0 && !got {
						t.Fatal("a valid signature does not verify")
					}
				}
			}
		})
	}
}

// TestSignatureDERRoundTrips checks the encoder against the standard
// library's own DER of the same signature, for r and s of every length.
func TestSignatureDERRoundTrips(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := LookupAlgorithm("ES512")
	digest := sha256.Sum256([]byte("x"))
	for range 200 {
		der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := parseSignatureDER(der)
		if err != nil {
			t.Fatal(err)
		}
		raw := append(r.FillBytes(make([]byte, a.scalarSize)), s.FillBytes(make([]byte, a.scalarSize))...)
		got := appendSignatureDER(nil, raw[:a.scalarSize], raw[a.scalarSize:])
		if string(got) != string(der) {
			t.Fatalf("DER of r‖s %x:\n got %x\nwant %x", raw, got, der)
		}
	}
}

// parseSignatureDER reads r and s back from the standard library's DER
// with encoding/asn1's generic parser.
func parseSignatureDER(der []byte) (*big.Int, *big.Int, error) {
	var sig struct{ R, S *big.Int }
	_, err := asn1.Unmarshal(der, &sig)
	return sig.R, sig.S, err
}

// FuzzVerifyECDSA feeds arbitrary signatures to verifyECDSA and the big.Int
// path for a fixed P-256 key and digest, seeded with the edge cases.
func FuzzVerifyECDSA(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	a := LookupAlgorithm("ES256")
	digest := digestOf(a.hash, "payload", new([64]byte))
	for _, sig := range ecdsaVariants(f, key, digest) {
		f.Add(sig)
	}
	f.Fuzz(func(t *testing.T, sig []byte) {
		if got, want := a.verifyECDSA(&key.PublicKey, digest, sig, nil), referenceECDSA(&key.PublicKey, digest, sig); got != want {
			t.Fatalf("verifyECDSA %v, big.Int path %v for %x", got, want, sig)
		}
	})
}

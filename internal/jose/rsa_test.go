package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

// rawRSASign returns em^d mod n as a signature of the key's length: a
// "signature" over any encoding, so the tests can hand both verifiers
// encodings that are wrong in exactly one place.
func rawRSASign(key *rsa.PrivateKey, em []byte) []byte {
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), key.D, key.N)
	return s.FillBytes(make([]byte, key.Size()))
}

// pkcs1v15Encoding is EMSA-PKCS1-v1_5 (RFC 8017 §9.2) of digest for a key
// of size bytes.
func pkcs1v15Encoding(size int, h crypto.Hash, digest []byte) []byte {
	t := append(append([]byte(nil), digestInfoPrefixes[h]...), digest...)
	em := make([]byte, size)
	em[1] = 0x01
	for i := 2; i < size-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-len(t):], t)
	return em
}

// rsaVariants are signatures by key over input's digest under h: the valid
// one, over encodings changed in each part (leading bytes, padding,
// separator, DigestInfo, digest, a shorter padding with bytes after the
// digest), and values that are not signatures (0, 1, n−1, n, the wrong
// length).
func rsaVariants(key *rsa.PrivateKey, h crypto.Hash, digest []byte) [][]byte {
	size := key.Size()
	valid := pkcs1v15Encoding(size, h, digest)
	padEnd := size - len(digestInfoPrefixes[h]) - len(digest) - 1
	mutate := func(f func(em []byte)) []byte {
		em := append([]byte(nil), valid...)
		f(em)
		return rawRSASign(key, em)
	}
	other := crypto.SHA512
	if h == crypto.SHA512 {
		other = crypto.SHA256
	}
	n := key.N.FillBytes(make([]byte, size))
	nMinus1 := new(big.Int).Sub(key.N, big.NewInt(1)).FillBytes(make([]byte, size))
	sig := rawRSASign(key, valid)
	return [][]byte{
		sig,
		mutate(func(em []byte) { em[0] = 0x01 }),
		mutate(func(em []byte) { em[1] = 0x02 }),
		mutate(func(em []byte) { em[2] = 0xfe }),
		mutate(func(em []byte) { em[padEnd-1] = 0x00 }),
		mutate(func(em []byte) { em[padEnd] = 0x01 }),
		mutate(func(em []byte) { em[padEnd+3] ^= 0x01 }), // DigestInfo's algorithm
		mutate(func(em []byte) { copy(em[padEnd+1:], digestInfoPrefixes[other][:10]) }), // another hash's DigestInfo head
		mutate(func(em []byte) { em[size-1] ^= 0x01 }),                                  // the digest
		mutate(func(em []byte) { // padding two bytes short, garbage after the digest
			copy(em[padEnd-2:], em[padEnd:])
			em[size-2], em[size-1] = 0xaa, 0xbb
		}),
		make([]byte, size), append(make([]byte, size-1), 1), nMinus1, n,
		sig[1:], append(append([]byte(nil), sig...), 0), append([]byte{0}, sig...), nil,
	}
}

func TestVerifyPreparedAgreesWithCryptoRSA(t *testing.T) {
	for _, bits := range []int{2048, 3072} {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		p := Prepare(&key.PublicKey)
		if p.rsa == nil {
			t.Fatalf("%d-bit key with e=65537 is not on the fast path", bits)
		}
		for _, alg := range []string{"RS256", "RS384", "RS512"} {
			a := LookupAlgorithm(alg)
			const input = "header.payload"
			digest := digestOf(a.hash, input, new([64]byte))
			for i, sig := range rsaVariants(key, a.hash, digest) {
				got := VerifyPrepared(alg, p, input, sig)
				want := rsa.VerifyPKCS1v15(&key.PublicKey, a.hash, digest, sig) == nil
				if got != want {
					t.Fatalf("%d bits %s variant %d: fast path %v, crypto/rsa %v", bits, alg, i, got, want)
				}
				if i == 0 && !got {
					t.Fatalf("%d bits %s: a valid signature does not verify", bits, alg)
				}
			}
		}
	}
}

// TestPrepareKeepsUnusualKeysOnCryptoRSA: only RSA keys of the usual shape
// get the fast path; PSS goes to crypto/rsa even with a prepared key.
func TestPrepareKeepsUnusualKeysOnCryptoRSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e3 := key.PublicKey
	e3.E = 3
	odd := rsa.PublicKey{N: new(big.Int).Rsh(key.N, 4), E: 65537} // 2044 bits: not whole bytes
	for name, pub := range map[string]crypto.PublicKey{"e=3": &e3, "1024 bits": &small.PublicKey, "2044 bits": &odd, "EC": &ec.PublicKey} {
		if Prepare(pub).rsa != nil {
			t.Errorf("%s took the fast path", name)
		}
	}
	digest := digestOf(crypto.SHA256, "in", new([64]byte))
	pss, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		t.Fatal(err)
	}
	if p := Prepare(&key.PublicKey); !VerifyPrepared("PS256", p, "in", pss) || VerifyPrepared("RS256", p, "in", pss) {
		t.Fatal("a PS256 signature does not verify as PS256 only")
	}
}

// FuzzVerifyPrepared compares the fast path with crypto/rsa for a fixed
// 2048-bit key on arbitrary encodings (signed with the private key, so the
// padding checks are reached) and on arbitrary signature bytes.
func FuzzVerifyPrepared(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	p := Prepare(&key.PublicKey)
	digest := digestOf(crypto.SHA256, "header.payload", new([64]byte))
	valid := pkcs1v15Encoding(key.Size(), crypto.SHA256, digest)
	f.Add(valid, []byte{})
	f.Add(valid[:200], valid)
	f.Fuzz(func(t *testing.T, em, sig []byte) {
		if len(em) == key.Size() && new(big.Int).SetBytes(em).Cmp(key.N) < 0 {
			signed := rawRSASign(key, em)
			got := VerifyPrepared("RS256", p, "header.payload", signed)
			if want := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest, signed) == nil; got != want {
				t.Fatalf("encoding %x: fast path %v, crypto/rsa %v", em, got, want)
			}
		}
		got := VerifyPrepared("RS256", p, "header.payload", sig)
		if want := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest, sig) == nil; got != want {
			t.Fatalf("signature %x: fast path %v, crypto/rsa %v", sig, got, want)
		}
	})
}

package jose

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha512"

	"filippo.io/bigmod"
)

// PreparedKey is a verification key with the work that depends only on the
// key done once, at import: for an RSA key of the usual shape, its modulus
// in the form the modular arithmetic needs. crypto/rsa redoes that
// conversion on every call, about a third of an RS256 check. Any other key
// is verified exactly as Verify does. Values are read-only.
type PreparedKey struct {
	Public crypto.PublicKey
	rsa    *rsaModulus // nil: crypto/rsa verifies
}

// rsaModulus is an RSA public key ready for RSASSA-PKCS1-v1_5 checks with
// filippo.io/bigmod, the standard library's own constant-time modular
// arithmetic (crypto/internal/fips140/bigmod) published as a module.
type rsaModulus struct {
	n    *bigmod.Modulus
	size int // the modulus' length in bytes: the length of every signature
}

// Prepare returns pub prepared for VerifyPrepared. Only the RSA keys nearly
// every issuer uses get the fast path: public exponent 65537 and a modulus
// of 2048 to 4096 bits, whole bytes, odd. Anything unusual keeps crypto/rsa,
// with its own rules for it.
func Prepare(pub crypto.PublicKey) *PreparedKey {
	p := &PreparedKey{Public: pub}
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k.E != 65537 || k.N.BitLen()%8 != 0 || k.N.BitLen() < 2048 || k.N.BitLen() > 4096 || k.N.Bit(0) != 1 {
		return p
	}
	n, err := bigmod.NewModulus(k.N.Bytes())
	if err != nil {
		return p
	}
	p.rsa = &rsaModulus{n: n, size: len(k.N.Bytes())}
	return p
}

// VerifyPrepared is Verify with a prepared key: RS256, RS384 and RS512 over
// a fast-path RSA key check the signature with the precomputed modulus;
// everything else goes to Verify.
func VerifyPrepared(alg string, key *PreparedKey, signingInput string, sig []byte) bool {
	a := algorithms[alg]
	if key.rsa == nil || a == nil || a.family != familyRSA || a.pss {
		return Verify(alg, key.Public, signingInput, sig)
	}
	return key.rsa.verifyPKCS1v15(a.hash, digestOf(a.hash, signingInput, new([sha512.Size]byte)), sig)
}

// digestInfoPrefixes are the DER DigestInfo headers of RFC 8017 §9.2 note 1
// for the hashes of RS256, RS384 and RS512.
var digestInfoPrefixes = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// verifyPKCS1v15 is RSASSA-PKCS1-V1_5-VERIFY (RFC 8017 §8.2.2): the
// signature, exactly the modulus' length and below it, raised to 65537 must
// be, byte for byte, the one encoding EMSA-PKCS1-v1_5 gives the digest:
// 0x00 0x01, 0xff padding, 0x00, DigestInfo. Comparing the whole encoding,
// as crypto/rsa does, leaves no parsing to be lenient in.
func (m *rsaModulus) verifyPKCS1v15(h crypto.Hash, digest, sig []byte) bool {
	prefix := digestInfoPrefixes[h]
	if len(sig) != m.size || prefix == nil {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sig, m.n) // refuses s ≥ n
	if err != nil {
		return false
	}
	em := bigmod.NewNat().ExpShortVarTime(s, 65537, m.n).Bytes(m.n)
	t := len(prefix) + len(digest)
	padEnd := len(em) - t - 1 // the 0x00 before DigestInfo
	if len(em) != m.size || padEnd < 2+8 || em[0] != 0x00 || em[1] != 0x01 || em[padEnd] != 0x00 {
		return false
	}
	for _, b := range em[2:padEnd] {
		if b != 0xff {
			return false
		}
	}
	return bytes.Equal(em[padEnd+1:padEnd+1+len(prefix)], prefix) && bytes.Equal(em[len(em)-len(digest):], digest)
}

package jose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512" // also registers SHA-384 and SHA-512
	"slices"
)

// keyFamily is the kind of key an algorithm verifies with.
type keyFamily int

const (
	familyRSA keyFamily = iota + 1
	familyEC
	familyEd25519
	familyHMAC
)

// Algorithm is one JWS "alg" (RFC 7518 §3, RFC 8037 §3.1, RFC 9864) this
// package can verify. Values come from LookupAlgorithm and are read-only.
type Algorithm struct {
	name   string
	family keyFamily
	hash   crypto.Hash    // unused for EdDSA
	pss    bool           // RSASSA-PSS rather than PKCS #1 v1.5
	curve  elliptic.Curve // ES*: the only curve this alg may use
	minKey int            // HS*: minimum secret length in bytes (RFC 7518 §3.2)

	// ES*, set once by init: the byte size of r and s (RFC 7518 §3.4) and
	// the group order n in that many big-endian bytes.
	scalarSize int
	order      []byte
}

// algorithms is the registry of supported JWS algorithms. It is never
// written after initialisation and never handed out.
var algorithms = map[string]*Algorithm{
	"RS256":   {name: "RS256", family: familyRSA, hash: crypto.SHA256},
	"RS384":   {name: "RS384", family: familyRSA, hash: crypto.SHA384},
	"RS512":   {name: "RS512", family: familyRSA, hash: crypto.SHA512},
	"PS256":   {name: "PS256", family: familyRSA, hash: crypto.SHA256, pss: true},
	"PS384":   {name: "PS384", family: familyRSA, hash: crypto.SHA384, pss: true},
	"PS512":   {name: "PS512", family: familyRSA, hash: crypto.SHA512, pss: true},
	"ES256":   {name: "ES256", family: familyEC, hash: crypto.SHA256, curve: elliptic.P256()},
	"ES384":   {name: "ES384", family: familyEC, hash: crypto.SHA384, curve: elliptic.P384()},
	"ES512":   {name: "ES512", family: familyEC, hash: crypto.SHA512, curve: elliptic.P521()},
	"EdDSA":   {name: "EdDSA", family: familyEd25519},
	"Ed25519": {name: "Ed25519", family: familyEd25519},
	"HS256":   {name: "HS256", family: familyHMAC, hash: crypto.SHA256, minKey: 32},
	"HS384":   {name: "HS384", family: familyHMAC, hash: crypto.SHA384, minKey: 48},
	"HS512":   {name: "HS512", family: familyHMAC, hash: crypto.SHA512, minKey: 64},
}

// commonValues are the JSON strings nearly every token header carries,
// boxed once so that parsing one allocates nothing for it: the algorithm
// names and the usual typ values. Never written after init.
var commonValues = map[string]any{}

func init() {
	for _, typ := range []string{"JWT", "at+jwt", "application/at+jwt", "dpop+jwt"} {
		commonValues[typ] = typ
	}
	for name, a := range algorithms {
		commonValues[name] = name
		if a.family == familyEC {
			params := a.curve.Params()
			a.scalarSize = (params.BitSize + 7) / 8
			a.order = params.N.FillBytes(make([]byte, a.scalarSize))
		}
	}
}

// LookupAlgorithm returns the algorithm registered under name (JWA names
// are case-sensitive), or nil if this package cannot verify it. "none" is
// never registered.
func LookupAlgorithm(name string) *Algorithm { return algorithms[name] }

// Name returns the algorithm's JWA name, e.g. "ES256".
func (a *Algorithm) Name() string { return a.name }

// Asymmetric reports whether the algorithm verifies with a public key, that
// is, it is not an HMAC algorithm. Contexts where the verifier must not hold
// the signing secret (a DPoP proof, a remote key set) accept only these.
func (a *Algorithm) Asymmetric() bool { return a.family != familyHMAC }

// DefaultAlgorithms returns, in a new slice on each call, the algorithms
// accepted when a configuration names none: every asymmetric algorithm this
// package supports. HMAC must be asked for explicitly.
func DefaultAlgorithms() []string {
	var names []string
	for _, name := range KnownAlgorithms() {
		if algorithms[name].Asymmetric() {
			names = append(names, name)
		}
	}
	return names
}

// KnownAlgorithms returns, sorted and in a new slice on each call, the name
// of every algorithm this package can verify, HMAC included.
func KnownAlgorithms() []string {
	names := make([]string, 0, len(algorithms))
	for name := range algorithms {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Fits reports whether key, a standard-library public key or an HMACSecret,
// may verify alg: its type matches the algorithm's family, an EC key is on
// the algorithm's curve, and an HMAC secret is long enough for its hash.
func Fits(key crypto.PublicKey, alg string) bool {
	a := algorithms[alg]
	return a != nil && a.fits(key)
}

func (a *Algorithm) fits(key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return a.family == familyRSA
	case *ecdsa.PublicKey:
		return a.family == familyEC && k.Curve == a.curve
	case ed25519.PublicKey:
		return a.family == familyEd25519
	case HMACSecret:
		return a.family == familyHMAC && len(k) >= a.minKey
	}
	return false
}

// Verify checks sig over signingInput with key under alg, with the standard
// library only: RSASSA-PKCS1-v1_5, RSASSA-PSS with the salt length equal to
// the hash length (RFC 7518 §3.5), ECDSA over R‖S of exactly twice the
// field size with r and s in [1, n−1] (RFC 7518 §3.4), Ed25519 (RFC 8037),
// and HMAC compared in constant time. It returns false whenever key does
// not fit alg, so a caller cannot be led into, say, HMAC with an RSA key.
func Verify(alg string, key crypto.PublicKey, signingInput string, sig []byte) bool {
	a := algorithms[alg]
	if a == nil || !a.fits(key) {
		return false
	}
	switch a.family {
	case familyRSA:
		pub := key.(*rsa.PublicKey)
		d := digestOf(a.hash, signingInput, new([sha512.Size]byte))
		if a.pss {
			return rsa.VerifyPSS(pub, a.hash, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.hash}) == nil
		}
		return rsa.VerifyPKCS1v15(pub, a.hash, d, sig) == nil
	case familyEC:
		sc := new(ecdsaScratch)
		return a.verifyECDSA(key.(*ecdsa.PublicKey), digestOf(a.hash, signingInput, &sc.digest), sig, sc.der[:0])
	case familyEd25519:
		pub := key.(ed25519.PublicKey)
		if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			return false
		}
		return ed25519.Verify(pub, []byte(signingInput), sig)
	case familyHMAC:
		mac := hmac.New(a.hash.New, key.(HMACSecret))
		mac.Write([]byte(signingInput))
		return hmac.Equal(mac.Sum(nil), sig)
	}
	return false
}

// verifyECDSA checks a JWS ECDSA signature: R‖S, each exactly the curve's
// byte size (RFC 7518 §3.4; DER or short forms are rejected), with r and s
// in [1, n−1] before the math runs. The standard library's math checks it:
// ecdsa.VerifyASN1 of the same r and s in DER, which the function writes
// into der's spare capacity. ecdsa.Verify would do the same conversion
// itself, from two big.Ints made for the call, in about a dozen
// allocations.
func (a *Algorithm) verifyECDSA(pub *ecdsa.PublicKey, digest, sig, der []byte) bool {
	if len(sig) != 2*a.scalarSize {
		return false
	}
	r, s := sig[:a.scalarSize], sig[a.scalarSize:]
	if !inOrder(r, a.order) || !inOrder(s, a.order) {
		return false
	}
	return ecdsa.VerifyASN1(pub, digest, appendSignatureDER(der, r, s))
}

// ecdsaScratch is the memory of one ECDSA verification: the digest and the
// signature's DER. The standard library keeps neither, but passing them to
// it makes both escape, so they share one allocation.
type ecdsaScratch struct {
	digest [sha512.Size]byte
	der    [maxSignatureDER]byte
}

// inOrder reports 0 < x < n, for x and n big-endian and of one length.
func inOrder(x, n []byte) bool {
	return bytes.Compare(x, n) < 0 && len(bytes.TrimLeft(x, "\x00")) > 0
}

// maxSignatureDER bounds the DER of a P-521 signature: a SEQUENCE (tag and
// a two-byte length) of two INTEGERs of at most 67 bytes (66 plus a zero
// that keeps them positive), each with a tag and a one-byte length.
const maxSignatureDER = 3 + 2*(2+67)

// appendSignatureDER appends the ECDSA-Sig-Value (RFC 5480 §2.2.3, X.690
// DER) of r and s, both non-zero and big-endian, to b: each INTEGER in its
// minimal form, as ecdsa.VerifyASN1's parser requires.
func appendSignatureDER(b, r, s []byte) []byte {
	r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
	body := derIntegerLen(r) + derIntegerLen(s)
	b = append(b, 0x30) // SEQUENCE
	if body >= 0x80 {
		b = append(b, 0x81) // long form: one length byte follows
	}
	b = append(b, byte(body))
	return appendDERInteger(appendDERInteger(b, r), s)
}

// derIntegerLen is the encoded size of the INTEGER appendDERInteger writes.
func derIntegerLen(x []byte) int {
	if x[0]&0x80 != 0 {
		return 3 + len(x)
	}
	return 2 + len(x)
}

// appendDERInteger appends x (no leading zero bytes, not empty) as a DER
// INTEGER, with a zero byte first when its top bit would make it negative.
func appendDERInteger(b, x []byte) []byte {
	b = append(b, 0x02) // INTEGER
	if x[0]&0x80 != 0 {
		return append(append(b, byte(len(x)+1), 0), x...)
	}
	return append(append(b, byte(len(x))), x...)
}

// digestOf hashes a signing input into out and returns the digest. SHA-256,
// the hash of nearly every token, takes the input through a stack buffer
// when it fits, so hashing allocates nothing.
func digestOf(h crypto.Hash, input string, out *[sha512.Size]byte) []byte {
	var buf [4 << 10]byte
	if h == crypto.SHA256 && len(input) <= len(buf) {
		d := sha256.Sum256(append(buf[:0], input...))
		return append(out[:0], d[:]...)
	}
	d := h.New()
	d.Write([]byte(input))
	return d.Sum(out[:0])
}

// HMACSecret is a symmetric (kty "oct") verification key. A distinct type
// keeps a raw byte slice, such as a PEM file's bytes, from ever being taken
// for an HMAC key by accident (the RS256/HS256 confusion of RFC 8725 §2.1).
type HMACSecret []byte

// String hides the secret from any %v or %s that might reach a log.
func (HMACSecret) String() string { return "[hmac secret]" }

// GoString hides the secret from %#v.
func (HMACSecret) GoString() string { return "jose.HMACSecret{[hidden]}" }

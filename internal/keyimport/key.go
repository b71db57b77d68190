package keyimport

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"math"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Limits on imported keys.
const (
	// MaxKeys is how many usable keys ParseKeys keeps from one document;
	// the rest are dropped with a warning.
	MaxKeys = 100
	// MinRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3
	// requires 2048 bits).
	MinRSABits = 2048
	// MinHMACBytes is the smallest HMAC secret accepted: 256 bits, what
	// HS256 needs (RFC 7518 §3.2); HS384 and HS512 need more, see Fits.
	MinHMACBytes = 32
)

// Key is one usable verification key, converted to a standard-library
// public key once, on import, so verification never re-parses a JWK.
type Key struct {
	ID     string           // the JWK's kid; "" when absent (always for PEM)
	Alg    string           // the JWK's own alg; "" when absent (always for PEM)
	Public crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or HMACSecret

	// fingerprint identifies kid + key material, so a verified-token
	// cache can tell that "the key that verified it" is still in the
	// current set even after a re-fetch built new Key values.
	fingerprint string
	// prepared is Public with its per-key verification work done once
	// (jose.Prepare); nil for a Key not made by this package.
	prepared *jose.PreparedKey
}

// Verify checks sig over signingInput under alg with the key, as
// jose.Verify does, using the work Prepare did once at import.
func (k *Key) Verify(alg, signingInput string, sig []byte) bool {
	if k.prepared == nil {
		return jose.Verify(alg, k.Public, signingInput, sig)
	}
	return jose.VerifyPrepared(alg, k.prepared, signingInput, sig)
}

// Fingerprint returns a stable identifier of the key's kid and material:
// two imports of the same JWK give the same value, another kid or another
// key a different one.
func (k *Key) Fingerprint() string { return k.fingerprint }

// Fits reports whether the key may verify a token signed with alg: the key
// type fits alg (see Fits) and the key's own alg, if any, is alg
// (RFC 8725 §3.1: a key is bound to its algorithm).
func (k *Key) Fits(alg string) bool {
	return jose.Fits(k.Public, alg) && (k.Alg == "" || k.Alg == alg)
}

// Select returns the key of keys that verifies a token with this kid and
// alg: the keys whose kid equals the token's, plus the only key if keys
// holds exactly one and it has no kid; of those, the first that Fits alg.
// A token without kid uses the only key that fits its alg, and none when
// several do (a token must name its key then).
func Select(keys []*Key, kid, alg string) *Key {
	if jose.LookupAlgorithm(alg) == nil {
		return nil
	}
	if kid == "" {
		var only *Key
		for _, k := range keys {
			if k.Fits(alg) {
				if only != nil {
					return nil
				}
				only = k
			}
		}
		return only
	}
	for _, k := range keys {
		if k.ID == kid && k.Fits(alg) {
			return k
		}
	}
	if len(keys) == 1 && keys[0].ID == "" && keys[0].Fits(alg) {
		return keys[0]
	}
	return nil
}

// ImportOptions say which keys an import may produce.
type ImportOptions struct {
	// AllowHMAC admits symmetric (kty "oct") keys. Default: false, and a
	// symmetric key is skipped with a warning.
	AllowHMAC bool
}

// symmetricRefused is the warning for an HMAC key where none is allowed.
const symmetricRefused = "symmetric (oct) key; allowed only from jwks_file with an HS* algorithm configured"

// ParseKeys reads a JWK Set (RFC 7517 §5) or PEM data (PUBLIC KEY and
// CERTIFICATE blocks) and returns its usable verification keys in document
// order, at most MaxKeys. A key that is unusable is skipped with a warning
// naming its position and the reason, never failing the rest; a usable key
// with something worth the operator's attention (private members, which are
// ignored) comes with a warning too. err means the data as a whole is
// unreadable or holds no usable key.
//
// A JWK is usable when jwx imports it, its "use" is absent or "sig", its
// "key_ops" is absent or contains "verify", its "alg", if any, is one this
// package verifies and fits the key, and the key itself passes the checks
// of every import: RSA of at least MinRSABits with an odd exponent of at
// least 3, EC on P-256, P-384 or P-521 with the point on the curve, Ed25519
// of 32 bytes, HMAC only with AllowHMAC and of at least MinHMACBytes.
func ParseKeys(data []byte, opts ImportOptions) (keys []*Key, warnings []string, err error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		keys, warnings, err = parsePEM(trimmed)
	} else {
		keys, warnings, err = parseJWKS(trimmed, opts)
	}
	if err != nil {
		return nil, warnings, err
	}
	if len(keys) == 0 {
		return nil, warnings, errors.New("no usable verification key")
	}
	return keys, warnings, nil
}

// parseJWKS validates the whole document once with the strict parser
// (duplicate member names at any depth, depth, UTF-8), which also yields
// each "keys" element's bytes; jwx then parses each element once, and every
// decision about the key is read from what jwx parsed.
func parseJWKS(data []byte, opts ImportOptions) ([]*Key, []string, error) {
	elems, found, err := jose.ArrayMember(data, "keys")
	if err != nil {
		return nil, nil, fmt.Errorf("JWKS is not a valid JSON object: %w", err)
	}
	if !found {
		return nil, nil, errors.New(`JWKS has no "keys" array`)
	}
	var keys []*Key
	var warnings []string
	for i, raw := range elems {
		if len(keys) == MaxKeys {
			warnings = append(warnings, fmt.Sprintf("only the first %d usable keys are used", MaxKeys))
			break
		}
		k, warn, err := importJWK(raw, opts)
		switch {
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("key %d: skipped: %v", i, err))
		case warn != "":
			warnings = append(warnings, fmt.Sprintf("key %d: %s", i, warn))
		}
		if k != nil {
			keys = append(keys, k)
		}
	}
	return keys, warnings, nil
}

// ImportJWK imports one JWK object (RFC 7517 §4), such as the "jwk" header
// of a DPoP proof, by the rules of ParseKeys. raw is first checked by the
// strict parser (a JWK with duplicate member names is refused). err says
// why the key is unusable; a warning with a key says what was ignored.
func ImportJWK(raw []byte, opts ImportOptions) (*Key, string, error) {
	if _, err := jose.ParseObject(raw); err != nil {
		return nil, "", fmt.Errorf("JWK is not a valid JSON object: %w", err)
	}
	return importJWK(raw, opts)
}

// importJWK is ImportJWK for bytes the strict parser has already accepted.
// jwx is the only reader of raw: use, key_ops, alg, kid and private
// material are all taken from its parsed key, so no second reader can see
// a different key than the one imported (JWK member names are
// case-sensitive, RFC 7517 §4, and a "USE" or "KTY" twin is just an
// unknown member to jwx and therefore to us).
func importJWK(raw []byte, opts ImportOptions) (*Key, string, error) {
	parsed, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, "", err
	}
	if use, ok := parsed.KeyUsage(); ok && use != "sig" {
		return nil, "", fmt.Errorf("use %.16q is not sig", use)
	}
	if ops, ok := parsed.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, "", errors.New("key_ops does not include verify")
	}
	alg := ""
	if a, ok := parsed.Algorithm(); ok {
		alg = a.String()
		if jose.LookupAlgorithm(alg) == nil {
			return nil, "", fmt.Errorf("alg %.32q is not a supported signature algorithm", alg)
		}
	}
	kid, _ := parsed.KeyID()
	var warning string
	if asym, ok := parsed.(jwk.AsymmetricKey); ok && asym.IsPrivate() {
		warning = "private key material ignored: publish only public keys"
		if parsed, err = parsed.PublicKey(); err != nil {
			return nil, "", err
		}
	}
	var public any
	if err := jwk.Export(parsed, &public); err != nil {
		return nil, "", err
	}
	key, err := newKey(kid, alg, public, opts)
	if err != nil {
		return nil, "", err
	}
	if alg != "" && !jose.Fits(key.Public, alg) {
		return nil, "", fmt.Errorf("alg %s does not fit the key type", alg)
	}
	return key, warning, nil
}

// newKey checks a public key, as jwx or crypto/x509 produced it, against
// the usability rules every import shares, and wraps it.
func newKey(kid, alg string, public any, opts ImportOptions) (*Key, error) {
	var material []byte
	switch k := public.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is below %d", k.N.BitLen(), MinRSABits)
		}
		// e = 1 makes "signature = padded message" verify; an even e is
		// no RSA key; Go's crypto/rsa refuses e above 2^31−1 anyway.
		if k.E < 3 || k.E%2 == 0 || k.E > math.MaxInt32 {
			return nil, fmt.Errorf("RSA public exponent %d is not an odd number from 3 to 2^31-1", k.E)
		}
		material = x509.MarshalPKCS1PublicKey(k)
	case *ecdsa.PublicKey:
		// ECDH() validates the point: it fails for points off the curve
		// and for curves other than P-256, P-384 and P-521.
		ecdhKey, err := k.ECDH()
		if err != nil {
			return nil, fmt.Errorf("EC key is not a valid P-256/384/521 point: %w", err)
		}
		material = ecdhKey.Bytes()
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key has the wrong length")
		}
		material = k
	case []byte:
		if !opts.AllowHMAC {
			return nil, errors.New(symmetricRefused)
		}
		if len(k) < MinHMACBytes {
			return nil, fmt.Errorf("HMAC key of %d bytes is below %d", len(k), MinHMACBytes)
		}
		public = jose.HMACSecret(slices.Clone(k))
		material = k
	default:
		return nil, fmt.Errorf("unsupported key type %T", public)
	}
	sum := sha256.Sum256(append([]byte(kid+"\x00"), material...))
	return &Key{ID: kid, Alg: alg, Public: public, fingerprint: hex.EncodeToString(sum[:]), prepared: jose.Prepare(public)}, nil
}

// parsePEM reads every PUBLIC KEY and CERTIFICATE block with crypto/x509;
// other blocks (private keys above all) are skipped with a warning.
func parsePEM(data []byte) ([]*Key, []string, error) {
	var keys []*Key
	var warnings []string
	for i := 0; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if len(keys) == MaxKeys {
			warnings = append(warnings, fmt.Sprintf("only the first %d usable keys are used", MaxKeys))
			break
		}
		key, err := pemKey(block)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("PEM block %d: skipped: %v", i, err))
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 && len(warnings) == 0 {
		return nil, nil, errors.New("no PEM block found")
	}
	return keys, warnings, nil
}

func pemKey(block *pem.Block) (*Key, error) {
	var public any
	switch block.Type {
	case "PUBLIC KEY":
		var err error
		if public, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return nil, err
		}
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		public = cert.PublicKey
	default:
		return nil, fmt.Errorf("type %q is not PUBLIC KEY or CERTIFICATE", block.Type)
	}
	// A PEM file never carries an HMAC key; crypto/x509 never yields one.
	return newKey("", "", public, ImportOptions{})
}

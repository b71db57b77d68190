package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Limits on key sets (SPEC "Keys").
const (
	maxKeysPerSet = 100
	minRSABits    = 2048
)

// Key is one usable verification key, converted to a standard-library public
// key once, when its set is loaded, so the hot path never re-parses a JWK.
type Key struct {
	ID     string           // kid; "" when the JWK has none
	Alg    string           // the JWK's own alg; "" when absent
	Public crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or an HMAC secret

	// fingerprint identifies kid + key material, so a verified-token cache
	// can tell that "the key that verified it" is still in the current set
	// even after a re-fetch built new Key values.
	fingerprint string
}

// Fingerprint returns a stable identifier of the key's id and material.
func (k *Key) Fingerprint() string { return k.fingerprint }

// KeySet is an immutable set of usable keys, in the order they were published.
type KeySet struct {
	Keys         []*Key
	fingerprints map[string]bool
}

// LoadOptions say which keys a source may contribute.
type LoadOptions struct {
	// AllowHMAC admits "oct" keys; SPEC allows it only for a local
	// jwks_file whose issuer explicitly lists an HS* algorithm.
	AllowHMAC bool
}

// Kids returns the key ids of the set, in order ("" for a key without one).
func (s *KeySet) Kids() []string {
	if s == nil {
		return nil
	}
	kids := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		kids[i] = k.ID
	}
	return kids
}

// Has reports whether the set still holds a key with this fingerprint.
func (s *KeySet) Has(fingerprint string) bool {
	return s != nil && s.fingerprints[fingerprint]
}

// Select returns the key that verifies a token with this kid and alg, as
// SPEC step 3 says: keys whose kid equals the token's, plus the set's only key
// if it has no kid; of those, the first whose type fits alg and whose own alg,
// if any, equals it. A token without kid uses the only key fitting its alg.
func (s *KeySet) Select(kid, alg string) *Key {
	a := algorithms[alg]
	if s == nil || a == nil {
		return nil
	}
	fits := func(k *Key) bool { return fitsAlgorithm(k.Public, a) && (k.Alg == "" || k.Alg == alg) }
	if kid == "" {
		var only *Key
		for _, k := range s.Keys {
			if fits(k) {
				if only != nil {
					return nil // ambiguous: a token must name its key
				}
				only = k
			}
		}
		return only
	}
	for _, k := range s.Keys {
		if k.ID == kid && fits(k) {
			return k
		}
	}
	if len(s.Keys) == 1 && s.Keys[0].ID == "" && fits(s.Keys[0]) {
		return s.Keys[0]
	}
	return nil
}

// ParseKeySet reads a JWKS document or PEM data (PUBLIC KEY and CERTIFICATE
// blocks) and keeps only usable public verification keys. Unusable keys are
// skipped with a warning, never failing the set; an error means the data as a
// whole is unreadable or holds no usable key.
func ParseKeySet(data []byte, opts LoadOptions) (*KeySet, []string, error) {
	trimmed := bytes.TrimSpace(data)
	var (
		keys     []*Key
		warnings []string
		err      error
	)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		keys, warnings, err = parsePEMKeys(trimmed)
	} else {
		keys, warnings, err = parseJWKS(trimmed, opts)
	}
	if err != nil {
		return nil, warnings, err
	}
	if len(keys) == 0 {
		return nil, warnings, errors.New("no usable verification key")
	}
	set := &KeySet{Keys: keys, fingerprints: make(map[string]bool, len(keys))}
	for _, k := range keys {
		set.fingerprints[k.fingerprint] = true
	}
	return set, warnings, nil
}

func parseJWKS(data []byte, opts LoadOptions) ([]*Key, []string, error) {
	if _, err := parseStrictObject(data); err != nil {
		return nil, nil, fmt.Errorf("JWKS is not a valid JSON object: %w", err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`JWKS has no "keys" array`)
	}
	var keys []*Key
	var warnings []string
	for i, raw := range doc.Keys {
		if len(keys) == maxKeysPerSet {
			warnings = append(warnings, fmt.Sprintf("only the first %d usable keys are used", maxKeysPerSet))
			break
		}
		k, warn := importJWK(raw, opts)
		if warn != "" {
			warnings = append(warnings, fmt.Sprintf("key %d: %s", i, warn))
		}
		if k != nil {
			keys = append(keys, k)
		}
	}
	return keys, warnings, nil
}

// jwkMeta are the JWK members we judge before importing; jwx does the rest.
type jwkMeta struct {
	Kty    string
	Kid    *string
	Alg    string
	Use    *string
	KeyOps []string
	D      *string
}

// readJWKMeta takes jwkMeta's members from the strictly parsed JWK by their
// exact names. JWK member names are case-sensitive (RFC 7517 §4), and
// encoding/json matches struct fields case-insensitively, so {"use":"enc",
// "USE":"sig"} would read as "sig" here while jwx imports a use:enc key.
// A JSON null counts as absent, as it did with encoding/json.
func readJWKMeta(obj map[string]any) (jwkMeta, error) {
	var meta jwkMeta
	str := func(name string) (*string, error) {
		v, ok := obj[name]
		if !ok || v == nil {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("member %s is not a string", name)
		}
		return &s, nil
	}
	var err error
	var kty, alg *string
	if kty, err = str("kty"); err != nil {
		return meta, err
	}
	if alg, err = str("alg"); err != nil {
		return meta, err
	}
	if meta.Kid, err = str("kid"); err != nil {
		return meta, err
	}
	if meta.Use, err = str("use"); err != nil {
		return meta, err
	}
	if meta.D, err = str("d"); err != nil {
		return meta, err
	}
	if kty != nil {
		meta.Kty = *kty
	}
	if alg != nil {
		meta.Alg = *alg
	}
	if ops, ok := obj["key_ops"]; ok && ops != nil {
		list, ok := ops.([]any)
		if !ok {
			return meta, errors.New("member key_ops is not an array")
		}
		meta.KeyOps = make([]string, 0, len(list))
		for _, op := range list {
			s, ok := op.(string)
			if !ok {
				return meta, errors.New("member key_ops holds a non-string")
			}
			meta.KeyOps = append(meta.KeyOps, s)
		}
	}
	return meta, nil
}

// importJWK converts one JWKS element into a Key, or explains why not. A
// non-empty warning with a Key means the key is used but something about it
// deserves the operator's attention.
func importJWK(raw json.RawMessage, opts LoadOptions) (*Key, string) {
	obj, err := parseStrictObject(raw)
	if err != nil {
		return nil, fmt.Sprintf("skipped: %v", err)
	}
	meta, err := readJWKMeta(obj)
	if err != nil {
		return nil, fmt.Sprintf("skipped: %v", err)
	}
	if meta.Use != nil && *meta.Use != "sig" {
		return nil, fmt.Sprintf("skipped: use %.16q is not sig", *meta.Use)
	}
	if meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify") {
		return nil, "skipped: key_ops does not include verify"
	}
	if meta.Kty == "oct" && !opts.AllowHMAC {
		return nil, "skipped: symmetric (oct) key; allowed only from jwks_file with an HS* algorithm configured"
	}
	if meta.Alg != "" && algorithms[meta.Alg] == nil {
		return nil, fmt.Sprintf("skipped: alg %.32q is not a supported signature algorithm", meta.Alg)
	}
	parsed, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Sprintf("skipped: %v", err)
	}
	var warning string
	if meta.D != nil && meta.Kty != "oct" {
		warning = "private key material ignored: publish only public keys"
		if parsed, err = jwk.PublicKeyOf(parsed); err != nil {
			return nil, fmt.Sprintf("skipped: %v", err)
		}
	}
	var public any
	if err := jwk.Export(parsed, &public); err != nil {
		return nil, fmt.Sprintf("skipped: %v", err)
	}
	if _, secret := public.([]byte); secret && !opts.AllowHMAC {
		// Whatever kty said to us, jwx made a symmetric key of it.
		return nil, "skipped: symmetric key; allowed only from jwks_file with an HS* algorithm configured"
	}
	kid := ""
	if meta.Kid != nil {
		kid = *meta.Kid
	}
	key, err := newKey(kid, meta.Alg, public)
	if err != nil {
		return nil, fmt.Sprintf("skipped: %v", err)
	}
	if meta.Alg != "" && !fitsAlgorithm(key.Public, algorithms[meta.Alg]) {
		return nil, fmt.Sprintf("skipped: alg %s does not fit the key type", meta.Alg)
	}
	return key, warning
}

// newKey checks a public key against our usability rules and wraps it.
func newKey(kid, alg string, public any) (*Key, error) {
	var material []byte
	switch k := public.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is below %d", k.N.BitLen(), minRSABits)
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
		if len(k) < 32 {
			return nil, fmt.Errorf("HMAC key of %d bytes is below 32", len(k))
		}
		public = hmacSecret(slices.Clone(k))
		material = k
	default:
		return nil, fmt.Errorf("unsupported key type %T", public)
	}
	sum := sha256.Sum256(append([]byte(kid+"\x00"), material...))
	return &Key{ID: kid, Alg: alg, Public: public, fingerprint: hex.EncodeToString(sum[:])}, nil
}

// parsePEMKeys reads every PUBLIC KEY and CERTIFICATE block; other blocks
// (private keys above all) are skipped with a warning.
func parsePEMKeys(data []byte) ([]*Key, []string, error) {
	var keys []*Key
	var warnings []string
	for i := 0; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if len(keys) == maxKeysPerSet {
			warnings = append(warnings, fmt.Sprintf("only the first %d usable keys are used", maxKeysPerSet))
			break
		}
		if block.Type != "PUBLIC KEY" && block.Type != "CERTIFICATE" {
			warnings = append(warnings, fmt.Sprintf("PEM block %d: skipped: type %q is not PUBLIC KEY or CERTIFICATE", i, block.Type))
			continue
		}
		parsed, err := jwk.ParseKey(pem.EncodeToMemory(block), jwk.WithPEM(true))
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("PEM block %d: skipped: %v", i, err))
			continue
		}
		var public any
		if err := jwk.Export(parsed, &public); err != nil {
			warnings = append(warnings, fmt.Sprintf("PEM block %d: skipped: %v", i, err))
			continue
		}
		key, err := newKey("", "", public)
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

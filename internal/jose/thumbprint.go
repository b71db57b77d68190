package jose

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// thumbprintMembers lists, per kty, the members RFC 7638 §3.2 hashes, already
// in lexicographic order (RFC 7638 §3.3): EC from RFC 7638 §3.2.1, RSA from
// §3.2.2, OKP from RFC 8037 §2.
var thumbprintMembers = map[string][]string{
	"EC":  {"crv", "kty", "x", "y"},
	"RSA": {"e", "kty", "n"},
	"OKP": {"crv", "kty", "x"},
}

// Thumbprint returns the RFC 7638 JWK thumbprint of jwk with SHA-256, unpadded
// base64url, as it appears in a token's cnf.jkt (RFC 9449 §6.1). Only the
// required members of the key type count; every other member (kid, alg, use,
// private parts) is ignored, so a key has one thumbprint however it is
// decorated. The members must be strings of printable ASCII without '"' or
// '\': then the JSON text is the members written out literally, with no
// escaping rules to agree on (RFC 7638 §3.3). Real key members are base64url
// or curve names, so nothing legitimate is refused.
func Thumbprint(jwk map[string]any) (string, error) {
	kty, ok := jwk["kty"].(string)
	if !ok {
		return "", fmt.Errorf("jwk thumbprint: kty is missing or not a string")
	}
	members := thumbprintMembers[kty]
	if members == nil {
		return "", fmt.Errorf("jwk thumbprint: unsupported kty %.16q", kty)
	}
	// Sized for the largest common key (RSA 4096: n is 683 characters),
	// so the JSON text is built without allocating; longer ones grow.
	b := make([]byte, 0, 768)
	b = append(b, '{')
	for i, name := range members {
		v, ok := jwk[name].(string)
		if !ok || v == "" {
			return "", fmt.Errorf("jwk thumbprint: %s member %q is missing or not a string", kty, name)
		}
		if !literalJSON(v) {
			return "", fmt.Errorf("jwk thumbprint: %s member %q has characters that need JSON escaping", kty, name)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":"`...)
		b = append(b, v...)
		b = append(b, '"')
	}
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// literalJSON reports whether s can be written inside a JSON string as is.
func literalJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ThumbprintCovers reports whether jwk has exactly the members its RFC 7638
// thumbprint hashes (RFC 7638 §3.2) and no other. For such a jwk, and when
// Thumbprint accepts it, the thumbprint determines the whole jwk: every
// member's value is hashed, written out without escaping, so two of them
// with one thumbprint are the same jwk. A cache of imported keys may then
// be keyed by the thumbprint alone.
func ThumbprintCovers(jwk map[string]any) bool {
	kty, _ := jwk["kty"].(string)
	members := thumbprintMembers[kty]
	if members == nil || len(jwk) != len(members) {
		return false
	}
	for _, name := range members {
		if _, ok := jwk[name]; !ok {
			return false
		}
	}
	return true
}

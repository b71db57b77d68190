package jwtauth

import (
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// keySet is an immutable set of usable keys of one key source, in the
// order they were published. Keys must not be modified after the set is
// built: the verifier and the verified-token cache read it concurrently.
type keySet struct {
	Keys         []*keyimport.Key
	fingerprints map[string]bool
}

// parseKeySet imports a JWKS document or PEM data (see keyimport.ParseKeys for
// the usability rules) into a keySet. allowHMAC admits "oct" keys, which
// only a local jwks_file whose issuer lists an HS* algorithm may contribute
// (docs/design.md "Key sources"). Unusable keys are skipped with a warning; an error means
// the data as a whole is unreadable or holds no usable key.
func parseKeySet(data []byte, allowHMAC bool) (*keySet, []string, error) {
	keys, warnings, err := keyimport.ParseKeys(data, keyimport.ImportOptions{AllowHMAC: allowHMAC})
	if err != nil {
		return nil, warnings, err
	}
	set := &keySet{Keys: keys, fingerprints: make(map[string]bool, len(keys))}
	for _, k := range keys {
		set.fingerprints[k.Fingerprint()] = true
	}
	return set, warnings, nil
}

// Kids returns the key ids of the set, in order ("" for a key without one).
func (s *keySet) Kids() []string {
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
func (s *keySet) Has(fingerprint string) bool {
	return s != nil && s.fingerprints[fingerprint]
}

// Select returns the key that verifies a token with this kid and alg, by
// the rule of docs/design.md "Verification order" (keyimport.Select): keys whose
// kid equals the token's, plus the set's only key if it has no kid; of
// those, the first whose type fits alg and whose own alg, if any, equals
// it. A token without kid uses the only key fitting its alg.
func (s *keySet) Select(kid, alg string) *keyimport.Key {
	if s == nil {
		return nil
	}
	return keyimport.Select(s.Keys, kid, alg)
}

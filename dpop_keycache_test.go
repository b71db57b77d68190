package jwtauth

import (
	"crypto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// equalPublic is the Equal method every standard-library public key has.
type equalPublic interface{ Equal(x crypto.PublicKey) bool }

func TestProofKeyCacheOneEntryPerKey(t *testing.T) {
	keys := []*testProofKey{
		newTestProofKey(t, jwttest.NewEC(t, "ES256", "")),
		newTestProofKey(t, jwttest.NewEC(t, "ES256", "")),
		newTestProofKey(t, jwttest.NewRSA(t, 2048, "", "PS256")),
		newTestProofKey(t, jwttest.NewEd25519(t, "", "EdDSA")),
	}
	cache := warmProofKeyCache(t, keys...)
	for i, k := range keys {
		got, ok := cache.get(k.jkt)
		if !ok {
			t.Fatalf("key %d not cached", i)
		}
		if !got.(equalPublic).Equal(k.key.Public()) {
			t.Fatalf("key %d: the cache holds another key under its thumbprint", i)
		}
		// A second proof from the same key is a hit and changes nothing.
		c := newTestCheck(k.sign(t, nil, nil), k.jkt)
		c.Keys = cache
		if _, err := verifyDPoPProof(c); err != nil {
			t.Fatalf("key %d: proof with a cached key refused: %v", i, err)
		}
	}
	if cache.len() != len(keys) {
		t.Fatalf("%d entries, want %d", cache.len(), len(keys))
	}
	// One key's proof cannot be verified with another's cached key: a proof
	// signed by key 0 presenting key 1's jwk fails its signature.
	c := newTestCheck(keys[0].sign(t, map[string]any{"jwk": keys[1].jwk}, nil), keys[1].jkt)
	c.Keys = cache
	if _, err := verifyDPoPProof(c); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("proof signed by another key: %v, want a signature failure", err)
	}
}

// A jwk with the thumbprint of a cached key but any member besides the
// thumbprint's is never answered from the cache: each of these is refused
// by the full importer (or the private-member check before it) although its
// thumbprint is that of a cached, usable key.
func TestProofKeyCacheNotConfusedBySameThumbprint(t *testing.T) {
	es := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range es.jwk {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		jwk    map[string]any
		detail string
	}{
		{"private member d", es.key.PrivateJWK(), "private member"},
		{"symmetric member k", with(map[string]any{"k": "AAAA"}), "private member"},
		{"use enc", with(map[string]any{"use": "enc"}), "use"},
		{"key_ops without verify", with(map[string]any{"key_ops": []any{"sign"}}), "key_ops"},
		{"alg of another key type", with(map[string]any{"alg": "RS256"}), "alg"},
		{"unknown alg", with(map[string]any{"alg": "XS256"}), "alg"},
		{"kid not a string", with(map[string]any{"kid": 7}), "kid"},
	}
	cache := warmProofKeyCache(t, es)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCheck(es.sign(t, map[string]any{"jwk": tt.jwk}, nil), es.jkt)
			c.Keys = cache
			_, err := verifyDPoPProof(c)
			if ReasonOf(err) != ReasonDPoPProof || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("refusal %v, want %s about %q", err, ReasonDPoPProof, tt.detail)
			}
			if cache.len() != 1 {
				t.Fatalf("%d entries, want 1", cache.len())
			}
		})
	}
}

func TestProofKeyCacheStoresOnlyAcceptedMinimalKeys(t *testing.T) {
	es := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	other := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	withKid := map[string]any{"kid": "client-1"}
	for k, v := range es.jwk {
		withKid[k] = v
	}
	cache := newProofKeyCache(defaultProofKeyCapacity)
	check := func(proof, jkt string) error {
		c := newTestCheck(proof, jkt)
		c.Keys = cache
		_, err := verifyDPoPProof(c)
		return err
	}
	// Refused after the import (bound to another key, wrong ath): not stored.
	if err := check(es.sign(t, nil, nil), other.jkt); err == nil {
		t.Fatal("proof for a token bound to another key accepted")
	}
	if err := check(es.sign(t, nil, map[string]any{"ath": "wrong"}), es.jkt); err == nil {
		t.Fatal("proof with a wrong ath accepted")
	}
	// Accepted, but the jwk has a member the thumbprint does not cover.
	if err := check(es.sign(t, map[string]any{"jwk": withKid}, nil), es.jkt); err != nil {
		t.Fatalf("proof with a kid in its jwk refused: %v", err)
	}
	if n := cache.len(); n != 0 {
		t.Fatalf("%d entries after no cacheable accepted proof, want 0", n)
	}
	if err := check(es.sign(t, nil, nil), es.jkt); err != nil {
		t.Fatal(err)
	}
	if n := cache.len(); n != 1 {
		t.Fatalf("%d entries after an accepted proof, want 1", n)
	}
}

func TestProofKeyCacheBounded(t *testing.T) {
	keys := make([]*testProofKey, 3)
	for i := range keys {
		keys[i] = newTestProofKey(t, jwttest.NewEd25519(t, "", "EdDSA"))
	}
	cache := newProofKeyCache(2)
	for _, k := range keys {
		cache.put(k.jkt, k.key.Public())
		cache.put(k.jkt, k.key.Public()) // a second put of a held key is a no-op
	}
	if cache.len() != 2 {
		t.Fatalf("%d entries, want the capacity 2", cache.len())
	}
	if _, ok := cache.get(keys[0].jkt); ok {
		t.Fatal("oldest entry not evicted")
	}
	for _, k := range keys[1:] {
		if _, ok := cache.get(k.jkt); !ok {
			t.Fatal("newer entry evicted")
		}
	}
	empty := newProofKeyCache(0)
	empty.put(keys[0].jkt, keys[0].key.Public())
	if empty.len() != 0 {
		t.Fatal("a cache of capacity 0 stored a key")
	}
}

func TestProofKeyCacheConcurrent(t *testing.T) {
	keys := make([]*testProofKey, 4)
	for i := range keys {
		keys[i] = newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	}
	proofs := make([][]string, len(keys))
	for i, k := range keys {
		for range 8 {
			proofs[i] = append(proofs[i], k.sign(t, nil, nil))
		}
	}
	cache := newProofKeyCache(2) // smaller than the clients: evictions race with hits
	replay := newReplayMemory(1000, 70*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys)*8)
	for i, k := range keys {
		for _, proof := range proofs[i] {
			wg.Go(func() {
				c := newTestCheck(proof, k.jkt)
				c.Keys, c.Replay = cache, replay
				if _, err := verifyDPoPProof(c); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent proof refused: %v", err)
	}
	if n := cache.len(); n > 2 {
		t.Fatalf("%d entries, over the capacity 2", n)
	}
}

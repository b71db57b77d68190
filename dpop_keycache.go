package jwtauth

import (
	"crypto"
	"sync"
)

// defaultProofKeyCapacity is how many DPoP public keys a verifier keeps
// imported. A client keeps its DPoP key for the life of its tokens, so this
// many clients active at once pay the key import once; more clients only
// cost an import per proof again, never an error.
const defaultProofKeyCapacity = 4096

// proofKeyCache remembers the public keys of accepted DPoP proofs by their
// RFC 7638 thumbprint, so a client sending the same jwk with every proof
// pays its import once (RFC 9449 §4.3 check 7 still runs on every proof:
// the private-member check before any lookup, the alg fit after it).
//
// An entry is only ever stored and looked up for a jwk made of exactly its
// thumbprint's members (jose.ThumbprintCovers). Such a jwk is determined by
// its thumbprint: the thumbprint hashes every member's value written out
// unambiguously, so two jwks with one thumbprint are the same jwk, and the
// importer, which reads nothing else, yields the same key for both. A jwk
// with any other member (kid, alg, use, x5c, private parts...) is imported
// every time, by the full importer.
//
// Keys are stored only once their proof has been fully accepted with a
// verified token bound to them, so a client without such a token cannot
// fill the cache. It is bounded (oldest entry out first) and safe for
// concurrent use; each verifier has its own.
type proofKeyCache struct {
	mu    sync.RWMutex
	keys  map[string]crypto.PublicKey // by thumbprint
	order []string                    // ring of the thumbprints, oldest at next
	next  int
}

func newProofKeyCache(capacity int) *proofKeyCache {
	return &proofKeyCache{
		keys:  make(map[string]crypto.PublicKey, capacity),
		order: make([]string, 0, capacity),
	}
}

// get returns the key stored for thumbprint jkt, if any.
func (c *proofKeyCache) get(jkt string) (crypto.PublicKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	key, ok := c.keys[jkt]
	return key, ok
}

// put stores key under its thumbprint jkt, evicting the oldest entry when
// the cache is full.
func (c *proofKeyCache) put(jkt string, key crypto.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[jkt]; ok || cap(c.order) == 0 {
		return
	}
	if len(c.order) < cap(c.order) {
		c.order = append(c.order, jkt)
	} else {
		delete(c.keys, c.order[c.next])
		c.order[c.next] = jkt
		c.next = (c.next + 1) % len(c.order)
	}
	c.keys[jkt] = key
}

// len is the number of keys held.
func (c *proofKeyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}

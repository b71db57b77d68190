package jwtauth

import (
	"crypto/sha256"
	"time"

	"github.com/maypok86/otter/v2"
)

// maxCachedTokenSize keeps the cache's memory bounded by bytes as well as
// entries: real access tokens are well under 4 KiB, and a client that sends
// bigger ones pays for verification every time.
const maxCachedTokenSize = 4 << 10

// tokenCache remembers verified tokens (docs/design.md "Verified-token cache"),
// so a client repeating its token costs a hash and a lookup instead of a
// signature check. Entries are keyed by SHA-256 of the token bytes, hold the
// verification result, and count as hits only while the key that verified
// them is still in the issuer's current set and exp (with leeway) is ahead.
// Rejections are never cached. No expiry timer is configured: otter would
// start a goroutine per cache for it, and the size bound plus the checks on
// every hit already make stale entries harmless.
type tokenCache struct {
	entries *otter.Cache[[sha256.Size]byte, *Result]
	leeway  time.Duration
	now     func() time.Time
}

// newTokenCache returns nil when size is 0 (caching disabled).
func newTokenCache(size int, leeway time.Duration) (*tokenCache, error) {
	if size <= 0 {
		return nil, nil
	}
	c, err := otter.New(&otter.Options[[sha256.Size]byte, *Result]{MaximumSize: size})
	if err != nil {
		return nil, err
	}
	return &tokenCache{entries: c, leeway: leeway, now: time.Now}, nil
}

// get returns the cached result for token if it is still good.
func (c *tokenCache) get(token string) (*Result, bool) {
	if c == nil || len(token) > maxCachedTokenSize {
		return nil, false
	}
	key := sha256.Sum256([]byte(token))
	res, ok := c.entries.GetIfPresent(key)
	if !ok {
		cacheMiss()
		return nil, false
	}
	if !res.Expiry.After(c.now().Add(-c.leeway)) || !res.Issuer.Keys.KeySet().Has(res.Key.Fingerprint()) {
		c.entries.Invalidate(key)
		cacheMiss()
		return nil, false
	}
	cacheHit()
	return res, true
}

// put remembers a verified token.
func (c *tokenCache) put(token string, res *Result) {
	if c == nil || len(token) > maxCachedTokenSize {
		return
	}
	c.entries.Set(sha256.Sum256([]byte(token)), res)
}

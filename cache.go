package jwtauth

import (
	"crypto/sha256"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

// maxCachedTokenSize keeps the cache's memory bounded by bytes as well as
// entries: real access tokens are well under 4 KiB, and a client that sends
// bigger ones pays for verification every time.
const maxCachedTokenSize = 4 << 10

// tokenCache remembers verified tokens (docs/design.md "Verified-token cache"),
// so a client repeating its token costs a hash and a lookup instead of a
// signature check. Entries are keyed by SHA-256 of the token bytes, hold what
// the request path needs of the verification result (cachedToken), and count
// as hits only while the key that verified them is still in the issuer's
// current set and exp (with leeway) is ahead. Rejections are never cached.
// No expiry timer is configured: otter would start a goroutine per cache for
// it, and the size bound plus the checks on every hit already make stale
// entries harmless.
type tokenCache struct {
	entries *otter.Cache[[sha256.Size]byte, cachedToken]
	leeway  time.Duration
	now     func() time.Time
}

// cachedToken is one cache entry, kept inline in otter's node. A full cache
// holds many of them for as long as the process runs, so each costs the
// garbage collector little: the verified payload as one pointer-free byte
// slice (claims are decoded again only when a placeholder, a claim header or
// the provider asks for them, see verifiedToken.Claims), the expiry as an integer,
// and pointers only to the long-lived issuer policy and key, plus the user
// id. A field the request path must check on every hit (a token binding's
// thumbprint, say) belongs here too, as a string or fixed-size array.
type cachedToken struct {
	payload []byte         // the verified payload JSON; never modified
	issuer  *issuerPolicy  // the verifier's own copy; read only
	key     *keyimport.Key // the key that verified the token
	userID  string         // the user_claim rendered, "" when absent
	binding binding        // the token's cnf: checked again on every hit
	expSec  int64          // exp as Unix seconds and nanoseconds: no
	expNsec int32          // *time.Location pointer, no overflow before year 9999
}

// cacheSlot is a token's place in the cache: its key, hashed once per
// request for the lookup and reused by put on a miss. ok is false for a
// token the cache never holds (too big, or caching disabled).
type cacheSlot struct {
	key [sha256.Size]byte
	ok  bool
}

// runInline is the cache's executor: otter's maintenance (draining its write
// buffer, evicting) runs in the goroutine of the request that inserted. By
// default otter starts a goroutine for it, which holds the eviction lock
// from the moment it is scheduled until it runs; on a busy server with few
// cores (GOMAXPROCS=1 in bench/run.sh) it waits behind every request doing
// signature math, and inserts that find the write buffer full wait for it.
// Under tokens that never repeat that made the cache's p99 about 2.4× that
// of cache_size 0; inline, about 1.2× (BENCHMARKS.md). The work per insert is
// a few map and list operations either way.
func runInline(fn func()) { fn() }

// newTokenCache returns nil when size is 0 (caching disabled).
func newTokenCache(size int, leeway time.Duration) (*tokenCache, error) {
	if size <= 0 {
		return nil, nil
	}
	c, err := otter.New(&otter.Options[[sha256.Size]byte, cachedToken]{MaximumSize: size, Executor: runInline})
	if err != nil {
		return nil, err
	}
	return &tokenCache{entries: c, leeway: leeway, now: time.Now}, nil
}

// slot hashes token, unless the cache would never hold it.
func (c *tokenCache) slot(token string) cacheSlot {
	if c == nil || len(token) > maxCachedTokenSize {
		return cacheSlot{}
	}
	return cacheSlot{key: sha256Of(token), ok: true}
}

// sha256Of hashes s. The copy of a string into the []byte that
// sha256.Sum256 takes is on the stack for any cacheable token, so a hit
// allocates nothing for hashing.
func sha256Of(s string) [sha256.Size]byte {
	var buf [maxCachedTokenSize]byte
	return sha256.Sum256(append(buf[:0], s...))
}

// get returns the cached result in slot if it is still good.
func (c *tokenCache) get(s cacheSlot) (*verifiedToken, bool) {
	if !s.ok {
		return nil, false
	}
	e, ok := c.entries.GetIfPresent(s.key)
	if !ok {
		cacheMiss()
		return nil, false
	}
	exp := time.Unix(e.expSec, int64(e.expNsec))
	if !exp.After(c.now().Add(-c.leeway)) || !e.issuer.Keys.keySet().Has(e.key.Fingerprint()) {
		c.entries.Invalidate(s.key)
		cacheMiss()
		return nil, false
	}
	cacheHit()
	return &verifiedToken{Issuer: e.issuer, Key: e.key, Expiry: exp, payload: e.payload, userID: e.userID, binding: e.binding}, true
}

// put remembers a verified token in slot.
func (c *tokenCache) put(s cacheSlot, res *verifiedToken) {
	if !s.ok {
		return
	}
	c.entries.Set(s.key, cachedToken{
		payload: res.Token.Payload(), issuer: res.Issuer, key: res.Key,
		userID: res.userID, binding: res.binding, expSec: res.Expiry.Unix(), expNsec: int32(res.Expiry.Nanosecond()),
	})
}

// Claims returns all the token's verified claims, decoded from its
// verified payload on the first call only: a request pays for the decoding
// when a placeholder or the provider asks, and at most once, since every
// cache hit returns a verifiedToken of its own. The payload parsed when it
// was verified and the parser is deterministic, so it parses again; were it
// ever not to, the claims are empty rather than unverified.
func (r *verifiedToken) Claims() map[string]any {
	if r.claims == nil {
		payload := r.payload
		if r.Token != nil {
			payload = r.Token.Payload()
		}
		claims, err := jose.ParseObject(payload)
		if err != nil {
			claims = map[string]any{}
		}
		r.claims = claims
	}
	return r.claims
}

// namedClaims returns claims holding at least the configuration's own (the
// verifier's claimNames: registered, rules, user claim, claim headers): the
// decoded token's when it was just verified, else all of them.
func (r *verifiedToken) namedClaims() map[string]any {
	if r.Token != nil {
		return r.Token.Claims
	}
	return r.Claims()
}

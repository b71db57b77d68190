package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// storagePrefix is where key sets live in Caddy's storage.
const storagePrefix = "jwt_auth/jwks/"

// maxClockSkew is how far in the future a stored fetched_at may lie (another
// instance's clock) before the record is taken for garbage.
const maxClockSkew = time.Minute

// storedKeySet is a remote source's last good JWKS as kept in Caddy's
// storage, so another instance sharing the storage can start while the IdP
// is down, and can use the set instead of fetching it again (docs/design.md,
// "Key sources"). Storage is trusted like Caddy's TLS keys: whoever can
// write it can already replace certificates (docs/design.md, "Trust
// boundaries"); still, a record is checked and parsed like a fetched body.
type storedKeySet struct {
	URL       string    `json:"url"`        // the JWKS URL the body came from
	FetchedAt time.Time `json:"fetched_at"` // when the IdP last served or confirmed it
	ETag      string    `json:"etag,omitempty"`
	Body      string    `json:"body"`
	// MaxAgeSeconds is the freshness lifetime the IdP gave with it
	// (Cache-Control max-age or Expires); 0 or absent: none, so the
	// refresh period is refresh_interval. Instances that use the record
	// instead of fetching plan their next refresh from it.
	MaxAgeSeconds int64 `json:"max_age,omitempty"`
}

// maxAge is the record's freshness lifetime.
func (r *storedKeySet) maxAge() time.Duration {
	return time.Duration(min(max(r.MaxAgeSeconds, 0), int64(maxRefresh/time.Second))) * time.Second
}

// storageKey names a source's record: SHA-256 of its configured URL
// (jwks_url, or the discovery URL for a discovery source, so the record is
// found before discovery has run).
func storageKey(sourceURL string) string {
	sum := sha256.Sum256([]byte(sourceURL))
	return storagePrefix + hex.EncodeToString(sum[:]) + ".json"
}

// lockName is the storage lock of the source whose record is at key: the
// instance holding it is the one fetching for the fleet.
func lockName(key string) string {
	return strings.ReplaceAll(strings.TrimSuffix(key, ".json"), "/", "_")
}

// contextStorage returns the config's storage, or nil for a context that
// belongs to no config (the CLI, unit tests): caddy.Context.Storage panics
// there rather than returning nil.
func contextStorage(ctx caddy.Context) (s certmagic.Storage) {
	defer func() {
		if recover() != nil {
			s = nil
		}
	}()
	return ctx.Storage()
}

// keyStore is one source's record in storage and what this instance knows
// about it: the fetched_at of its own latest write, so it can tell whether
// a coordinated fetch was stored, and the last record it ignored, so a bad
// record is reported once rather than on every read. The storage
// itself is passed in on each call: it is the newest live user's, which
// changes with reloads.
type keyStore struct {
	key string // storageKey of the source

	mu         sync.Mutex
	wroteAt    time.Time         // fetched_at of this instance's latest write
	ignoredSum [sha256.Size]byte // the record last ignored as invalid
}

// recordCheck is what a stored record must agree with to be used.
type recordCheck struct {
	jwksURL  string // the configured jwks_url; "" for a discovery source
	maxStale time.Duration
	now      time.Time
}

// read returns the raw record, nil when nothing is stored. An error is the
// storage's (unreachable, timed out, unreadable), not the record's.
func (k *keyStore) read(ctx context.Context, s certmagic.Storage) ([]byte, error) {
	data, err := s.Load(ctx, k.key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", k.key, err)
	}
	return data, nil
}

// firstIgnore reports whether data is not the record ignored last time, and
// remembers it: a record that fails its checks is logged once.
func (k *keyStore) firstIgnore(data []byte) bool {
	sum := sha256.Sum256(data)
	k.mu.Lock()
	defer k.mu.Unlock()
	first := sum != k.ignoredSum
	k.ignoredSum = sum
	return first
}

// wroteCurrent reports whether st, the set served now, is the one this
// instance wrote last.
func (k *keyStore) wroteCurrent(st *keyState) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return st != nil && !k.wroteAt.IsZero() && st.fetchedAt.UTC().Equal(k.wroteAt)
}

// decodeStored checks a stored record against its source and max_stale and
// parses its keys exactly as a fetched body would be.
func decodeStored(data []byte, check recordCheck) (*storedKeySet, *keySet, error) {
	var rec storedKeySet
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, nil, fmt.Errorf("decoding record: %w", err)
	}
	if check.jwksURL != "" && rec.URL != check.jwksURL {
		return nil, nil, fmt.Errorf("record is for %q, not %q", redactURL(rec.URL), redactURL(check.jwksURL))
	}
	if err := checkFetchURL(rec.URL); err != nil {
		return nil, nil, err
	}
	if rec.FetchedAt.After(check.now.Add(maxClockSkew)) {
		return nil, nil, fmt.Errorf("fetched_at %s is in the future", rec.FetchedAt.UTC().Format(time.RFC3339))
	}
	if age := check.now.Sub(rec.FetchedAt); check.maxStale > 0 && age > check.maxStale {
		return nil, nil, fmt.Errorf("record is %s old, more than max_stale %s", age.Round(time.Second), check.maxStale)
	}
	set, _, err := parseKeySet([]byte(rec.Body), false)
	if err != nil {
		return nil, nil, fmt.Errorf("stored body: %w", err)
	}
	return &rec, set, nil
}

// store writes rec. Every successful fetch is written, a 304 too: the new
// fetched_at is how the other instances see the set is current and need not
// fetch it themselves.
func (k *keyStore) store(ctx context.Context, s certmagic.Storage, rec storedKeySet) error {
	if rec.Body == "" {
		return nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err // cannot happen: strings, a number and a time
	}
	if err := s.Store(ctx, k.key, data); err != nil {
		return fmt.Errorf("storing %s: %w", k.key, err)
	}
	k.mu.Lock()
	k.wroteAt = rec.FetchedAt
	k.mu.Unlock()
	return nil
}

// persist writes the current body, as confirmed at fetchedAt with the
// freshness lifetime maxAge, to the newest user's storage. A failure is
// reported once per episode (storageFailed), never fatal: storage is shared
// state and a fallback, not a dependency of serving.
func (s *urlSource) persist(jwksURL string, fetchedAt time.Time, maxAge time.Duration) {
	storage := s.storage()
	if storage == nil {
		return
	}
	body, etag := s.origin.snapshot()
	ctx, cancel := context.WithTimeout(s.ctx, s.tuning().FetchTimeout)
	defer cancel()
	rec := storedKeySet{URL: jwksURL, FetchedAt: fetchedAt.UTC(), ETag: etag, Body: string(body),
		MaxAgeSeconds: int64(maxAge.Round(time.Second) / time.Second)}
	if err := s.store.store(ctx, storage, rec); err != nil {
		s.storageFailed("storing the key set", err)
	}
}

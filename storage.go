package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// storagePrefix is where key sets live in Caddy's storage.
const storagePrefix = "jwt_auth/jwks/"

// maxClockSkew is how far in the future a stored fetched_at may lie (another
// instance's clock) before the record is taken for garbage.
const maxClockSkew = time.Minute

// storedKeySet is a remote source's last good JWKS as kept in Caddy's
// storage, so another instance sharing the storage can start while the IdP
// is down. Storage is trusted like Caddy's TLS keys: whoever can write it
// can already replace certificates (docs/design.md, "Trust boundaries").
type storedKeySet struct {
	URL       string    `json:"url"`        // the JWKS URL the body came from
	FetchedAt time.Time `json:"fetched_at"` // when the IdP last served or confirmed it
	ETag      string    `json:"etag,omitempty"`
	Body      string    `json:"body"`
}

// storageKey names a source's record: SHA-256 of its configured URL
// (jwks_url, or the discovery URL for a discovery source, so the record is
// found before discovery has run).
func storageKey(sourceURL string) string {
	sum := sha256.Sum256([]byte(sourceURL))
	return storagePrefix + hex.EncodeToString(sum[:]) + ".json"
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

// keyStore is one source's record in storage and what it knows about it:
// the body last written or read, and its fetched_at, so an unchanged set is
// not rewritten on every fetch. The storage itself is passed in on each
// call: it is the newest live user's, which changes with reloads.
type keyStore struct {
	key string // storageKey of the source

	mu           sync.Mutex
	persistedSum [sha256.Size]byte // body last written to (or read from) storage
	persistedAt  time.Time         // its fetched_at
}

// recordCheck is what a stored record must agree with to be used.
type recordCheck struct {
	jwksURL  string // the configured jwks_url; "" for a discovery source
	maxStale time.Duration
	now      time.Time
}

// load reads and checks the record, parsing its keys exactly as a fetched
// body would be. It returns nil and no error when nothing is stored.
func (k *keyStore) load(ctx context.Context, s certmagic.Storage, check recordCheck) (*storedKeySet, *KeySet, error) {
	data, err := s.Load(ctx, k.key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading: %w", err)
	}
	rec, set, err := decodeStored(data, check)
	if err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	k.persistedSum, k.persistedAt = sha256.Sum256([]byte(rec.Body)), rec.FetchedAt
	k.mu.Unlock()
	return rec, set, nil
}

// decodeStored checks a stored record against its source and max_stale and
// parses its keys.
func decodeStored(data []byte, check recordCheck) (*storedKeySet, *KeySet, error) {
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

// store writes rec when its body differs from the one last written or read.
// The same body is written again only once the stored fetched_at is half of
// max_stale old: without that, a key set that never changes would look
// older than max_stale to an instance starting from storage while the IdP
// is down, though the IdP confirmed it minutes ago. It reports whether it
// wrote.
func (k *keyStore) store(ctx context.Context, s certmagic.Storage, rec storedKeySet, maxStale time.Duration) (bool, error) {
	sum := sha256.Sum256([]byte(rec.Body))
	k.mu.Lock()
	due := sum != k.persistedSum || (maxStale > 0 && rec.FetchedAt.Sub(k.persistedAt) >= maxStale/2)
	k.mu.Unlock()
	if rec.Body == "" || !due {
		return false, nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, err // cannot happen: strings and a time
	}
	if err := s.Store(ctx, k.key, data); err != nil {
		return false, err
	}
	k.mu.Lock()
	k.persistedSum, k.persistedAt = sum, rec.FetchedAt
	k.mu.Unlock()
	return true, nil
}

// loadStored serves the stored set, if it is younger than max_stale, until
// the first fetch replaces or confirms it. It runs on the loop, before that
// first fetch, so it never blocks Provision.
func (s *urlSource) loadStored() {
	storage := s.storage()
	if storage == nil {
		return
	}
	tuning := s.tuning()
	ctx, cancel := context.WithTimeout(s.ctx, tuning.FetchTimeout)
	defer cancel()
	rec, set, err := s.store.load(ctx, storage, recordCheck{jwksURL: s.id.JWKSURL, maxStale: tuning.MaxStale, now: time.Now()})
	if err != nil {
		s.logger().Warn("ignoring stored key set", zap.String("issuer", s.id.Issuer),
			zap.String("key", s.store.key), zap.Error(err))
		return
	}
	if rec == nil {
		return
	}
	s.origin.replace(rec.URL, rec.ETag, []byte(rec.Body))
	if s.state.Load() == nil {
		s.install(set, "stored", rec.URL, rec.FetchedAt)
	}
}

// persist writes the current body to the newest user's storage when due
// (keyStore.store). Failures are logged, never fatal: storage is a fallback.
func (s *urlSource) persist(jwksURL string, fetchedAt time.Time) {
	storage := s.storage()
	if storage == nil {
		return
	}
	body, etag := s.origin.snapshot()
	tuning := s.tuning()
	ctx, cancel := context.WithTimeout(s.ctx, tuning.FetchTimeout)
	defer cancel()
	rec := storedKeySet{URL: jwksURL, FetchedAt: fetchedAt.UTC(), ETag: etag, Body: string(body)}
	if _, err := s.store.store(ctx, storage, rec, tuning.MaxStale); err != nil {
		s.logger().Warn("storing key set failed", zap.String("issuer", s.id.Issuer),
			zap.String("key", s.store.key), zap.Error(err))
	}
}

package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// storedKeySet is the record of SPEC "Keys": the last good JWKS of a source,
// so another instance sharing the storage can start while the IdP is down.
// Storage is trusted like Caddy's TLS keys: whoever can write it can already
// replace certificates.
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

func (f *fetcher) currentStorage() certmagic.Storage {
	if ref := f.storage.Load(); ref != nil {
		return ref.s
	}
	return nil
}

// loadStored serves the stored set, if it is younger than max_stale, until
// the first fetch replaces or confirms it. It runs on the loop, before that
// first fetch, so it never blocks Provision.
func (f *fetcher) loadStored() {
	s := f.currentStorage()
	if s == nil {
		return
	}
	key := storageKey(f.cfg.sourceURL())
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.FetchTimeout)
	defer cancel()
	data, err := s.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		f.logger.Load().Warn("loading stored key set failed", zap.String("issuer", f.cfg.Issuer),
			zap.String("key", key), zap.Error(err))
		return
	}
	rec, set, err := f.decodeStored(data, time.Now())
	if err != nil {
		f.logger.Load().Warn("ignoring stored key set", zap.String("issuer", f.cfg.Issuer),
			zap.String("key", key), zap.Error(err))
		return
	}
	f.mu.Lock()
	f.etag, f.etagURL, f.body = rec.ETag, rec.URL, []byte(rec.Body)
	f.persistedSum, f.persistedAt = sha256.Sum256(f.body), rec.FetchedAt
	f.mu.Unlock()
	if f.state.Load() == nil {
		f.install(set, "stored", rec.URL, rec.FetchedAt)
	}
}

// decodeStored checks a stored record against this source and max_stale and
// parses its keys exactly as a fetched body would be.
func (f *fetcher) decodeStored(data []byte, now time.Time) (*storedKeySet, *KeySet, error) {
	var rec storedKeySet
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, nil, fmt.Errorf("decoding record: %w", err)
	}
	if f.cfg.JWKSURL != "" && rec.URL != f.cfg.JWKSURL {
		return nil, nil, fmt.Errorf("record is for %q, not %q", redactURL(rec.URL), redactURL(f.cfg.JWKSURL))
	}
	if err := checkFetchURL(rec.URL); err != nil {
		return nil, nil, err
	}
	if rec.FetchedAt.After(now.Add(maxClockSkew)) {
		return nil, nil, fmt.Errorf("fetched_at %s is in the future", rec.FetchedAt.UTC().Format(time.RFC3339))
	}
	if age := now.Sub(rec.FetchedAt); f.cfg.MaxStale > 0 && age > f.cfg.MaxStale {
		return nil, nil, fmt.Errorf("record is %s old, more than max_stale %s", age.Round(time.Second), f.cfg.MaxStale)
	}
	set, _, err := parseKeySet([]byte(rec.Body), false)
	if err != nil {
		return nil, nil, fmt.Errorf("stored body: %w", err)
	}
	return &rec, set, nil
}

// persist writes the current body to storage when it differs from the one
// last written or read. The same body is written again only once the stored
// fetched_at is half of max_stale old: without that, a key set that never
// changes would look older than max_stale to an instance starting from
// storage while the IdP is down, though the IdP confirmed it minutes ago.
// Failures are logged, never fatal: storage is a fallback.
func (f *fetcher) persist(jwksURL string, fetchedAt time.Time) {
	s := f.currentStorage()
	if s == nil {
		return
	}
	f.mu.Lock()
	body, etag := f.body, f.etag
	sum := sha256.Sum256(body)
	due := sum != f.persistedSum || (f.cfg.MaxStale > 0 && fetchedAt.Sub(f.persistedAt) >= f.cfg.MaxStale/2)
	f.mu.Unlock()
	if len(body) == 0 || !due {
		return
	}
	data, err := json.Marshal(storedKeySet{URL: jwksURL, FetchedAt: fetchedAt.UTC(), ETag: etag, Body: string(body)})
	if err != nil {
		return // cannot happen: strings and a time
	}
	key := storageKey(f.cfg.sourceURL())
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.FetchTimeout)
	defer cancel()
	if err := s.Store(ctx, key, data); err != nil {
		f.logger.Load().Warn("storing key set failed", zap.String("issuer", f.cfg.Issuer),
			zap.String("key", key), zap.Error(err))
		return
	}
	f.mu.Lock()
	f.persistedSum, f.persistedAt = sum, fetchedAt
	f.mu.Unlock()
}

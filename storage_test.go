package jwtauth

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Persistence of a URL source's key set in Caddy's storage, against real
// FileStorage directories.

func TestStoragePersistsAndRestores(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	store := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	sc := testSource(srv.JWKSURL())
	a := newTestSource(t, sc, store)
	if res := a.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	if store.stores != 1 {
		t.Fatalf("%d writes after the first fetch, want 1", store.stores)
	}
	raw, err := store.Load(context.Background(), storageKey(srv.JWKSURL()))
	if err != nil {
		t.Fatal(err)
	}
	var rec storedKeySet
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.URL != srv.JWKSURL() || rec.ETag == "" || rec.Body != string(jwttest.JWKS(key)) || time.Since(rec.FetchedAt) > time.Minute {
		t.Fatalf("stored record %+v", rec)
	}
	// Same body again (a 304 and then a full 200): no write.
	a.fetchOnce()
	srv.SetETag(false)
	a.fetchOnce()
	if store.stores != 1 {
		t.Fatalf("unchanged body written again (%d writes)", store.stores)
	}
	// A rotation is written.
	srv.SetKeys(key, jwttest.NewEC(t, "ES256", "k2"))
	a.fetchOnce()
	if store.stores != 2 {
		t.Fatalf("changed body not written (%d writes)", store.stores)
	}

	// A second instance starts while the issuer is down: it serves the
	// stored set before any fetch, with the stored age.
	srv.SetMode(jwttest.Down)
	b := newTestSource(t, sc, store)
	b.loadStored()
	st := b.state.Load()
	if st == nil || st.source != "stored" || st.set.Select("k2", "ES256") == nil {
		t.Fatalf("stored set not served: %+v", st)
	}
	if res := b.fetchOnce(); res.err == nil || b.KeySet() == nil {
		t.Fatal("a failed fetch must keep the stored set")
	}

	// Older than max_stale: not loaded.
	sc.MaxStale = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	c := newTestSource(t, sc, store)
	c.loadStored()
	if c.state.Load() != nil {
		t.Fatal("a stored set older than max_stale was loaded")
	}
	// A record for another URL under this key (storage is shared): ignored.
	other := testSource("https://other.example/jwks")
	d := newTestSource(t, other, store)
	if err := store.Store(context.Background(), storageKey(other.JWKSURL), raw); err != nil {
		t.Fatal(err)
	}
	d.loadStored()
	if d.state.Load() != nil {
		t.Fatal("a record naming another URL was loaded")
	}
}

func TestStorageRewritesAnUnchangedSetBeforeItLooksStale(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	store := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	sc := testSource(srv.JWKSURL())
	sc.MaxStale = 200 * time.Millisecond
	f := newTestSource(t, sc, store)
	f.fetchOnce()
	f.fetchOnce() // 304 at once: not written
	if store.stores != 1 {
		t.Fatalf("%d writes, want 1", store.stores)
	}
	time.Sleep(120 * time.Millisecond) // past max_stale/2
	f.fetchOnce()                      // 304 again: the confirmation is written
	if store.stores != 2 {
		t.Fatalf("%d writes, want 2: an instance starting from storage would see a stale set", store.stores)
	}
}

// countingStorage is a real FileStorage that counts writes.
type countingStorage struct {
	certmagic.Storage
	mu     sync.Mutex
	stores int
}

func (s *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	s.stores++
	s.mu.Unlock()
	return s.Storage.Store(ctx, key, value)
}

package jwtauth

import (
	"context"
	"encoding/json"
	"strings"
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
	srv.SetCacheControl("max-age=300")
	store := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	sc := testSource(srv.JWKSURL())
	a := newTestSource(t, sc, store)
	if res := a.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	rec := loadRecord(t, store, srv.JWKSURL())
	if store.stores != 1 || rec.URL != srv.JWKSURL() || rec.ETag == "" || rec.Body != string(jwttest.JWKS(key)) ||
		time.Since(rec.FetchedAt) > time.Minute || rec.MaxAgeSeconds != 300 {
		t.Fatalf("after the first fetch: %d writes, record %+v", store.stores, rec)
	}
	// Every successful fetch is written, a 304 too: its fetched_at tells
	// the other instances the set is current.
	first := rec.FetchedAt
	if res := a.fetchOnce(); res.err != nil || srv.NotModified() != 1 {
		t.Fatalf("second fetch: %v, %d answered 304", res.err, srv.NotModified())
	}
	rec = loadRecord(t, store, srv.JWKSURL())
	if store.stores != 2 || !rec.FetchedAt.After(first) || rec.Body != string(jwttest.JWKS(key)) {
		t.Fatalf("a 304 must refresh the record's fetched_at: %d writes, %+v", store.stores, rec)
	}
	srv.SetKeys(key, jwttest.NewEC(t, "ES256", "k2"))
	a.fetchOnce()
	if rec = loadRecord(t, store, srv.JWKSURL()); store.stores != 3 || !strings.Contains(rec.Body, `"k2"`) {
		t.Fatalf("a rotation must be written: %d writes, %+v", store.stores, rec)
	}

	// A second instance starts while the issuer is down: it serves the
	// stored set before any fetch, with the stored time.
	srv.SetMode(jwttest.Down)
	b := newTestSource(t, sc, store)
	b.refresh(causeStart)
	st := b.state.Load()
	if st == nil || st.source != "stored" || st.set.Select("k2", "ES256") == nil || !st.fetchedAt.Equal(rec.FetchedAt) {
		t.Fatalf("stored set not served: %+v", st)
	}
	if res := b.fetchOnce(); res.err == nil || b.keySet() == nil {
		t.Fatal("a failed fetch must keep the stored set")
	}

	// Older than max_stale: not served.
	sc.MaxStale = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	c := newTestSource(t, sc, store)
	c.refresh(causeStart)
	if c.state.Load() != nil {
		t.Fatal("a stored set older than max_stale was served")
	}
	// A record for another URL under this key (storage is shared): ignored.
	other := testSource("https://other.example/jwks")
	d := newTestSource(t, other, store)
	raw, err := store.Load(context.Background(), storageKey(srv.JWKSURL()))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Store(context.Background(), storageKey(other.JWKSURL), raw); err != nil {
		t.Fatal(err)
	}
	d.refresh(causeStart)
	if d.state.Load() != nil {
		t.Fatal("a record naming another URL was served")
	}
}

// A stored record is parsed like a fetched body: one that fails any check
// is never served, whoever wrote it.
func TestStoredRecordIsValidatedLikeAFetchedBody(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	srv.SetMode(jwttest.Down) // whatever is served comes from storage
	good := string(jwttest.JWKS(key))
	now := time.Now().UTC()
	for _, tc := range []struct {
		name string
		rec  storedKeySet
		raw  string
	}{
		{name: "not JSON", raw: "{not json"},
		{name: "body not a key set", rec: storedKeySet{URL: srv.JWKSURL(), FetchedAt: now, Body: "<html>"}},
		{name: "no usable key", rec: storedKeySet{URL: srv.JWKSURL(), FetchedAt: now, Body: `{"keys":[]}`}},
		{name: "another URL", rec: storedKeySet{URL: "https://evil.example/jwks", FetchedAt: now, Body: good}},
		{name: "http to a remote host", rec: storedKeySet{URL: "http://idp.example/jwks", FetchedAt: now, Body: good}},
		{name: "fetched in the future", rec: storedKeySet{URL: srv.JWKSURL(), FetchedAt: now.Add(time.Hour), Body: good}},
		{name: "older than max_stale", rec: storedKeySet{URL: srv.JWKSURL(), FetchedAt: now.Add(-2 * time.Hour), Body: good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &certmagic.FileStorage{Path: t.TempDir()}
			data := []byte(tc.raw)
			if tc.raw == "" {
				data, _ = json.Marshal(tc.rec)
			}
			if err := store.Store(context.Background(), storageKey(srv.JWKSURL()), data); err != nil {
				t.Fatal(err)
			}
			for _, cause := range []refreshCause{causeStart, causeScheduled, causeUnknownKid} {
				s := newTestSource(t, testSource(srv.JWKSURL()), store)
				s.refresh(cause)
				if s.state.Load() != nil {
					t.Fatalf("cause %d: record served", cause)
				}
			}
		})
	}
	// The control: the same record, valid, is served.
	store := &certmagic.FileStorage{Path: t.TempDir()}
	data, _ := json.Marshal(storedKeySet{URL: srv.JWKSURL(), FetchedAt: now, Body: good})
	if err := store.Store(context.Background(), storageKey(srv.JWKSURL()), data); err != nil {
		t.Fatal(err)
	}
	s := newTestSource(t, testSource(srv.JWKSURL()), store)
	s.refresh(causeStart)
	if s.keySet() == nil {
		t.Fatal("a valid record was not served")
	}
}

// loadRecord reads and decodes the source's record.
func loadRecord(t *testing.T, store certmagic.Storage, url string) storedKeySet {
	t.Helper()
	raw, err := store.Load(context.Background(), storageKey(url))
	if err != nil {
		t.Fatal(err)
	}
	var rec storedKeySet
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
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

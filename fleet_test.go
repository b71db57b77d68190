package jwtauth

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Fleet coordination (docs/design.md, "Key sources") between several URL
// sources of one process sharing a real FileStorage directory, each playing
// one instance: every step is driven by hand, so each rule is observable.
// multiprocess_fleet_test.go runs the same against real Caddy processes.

// fleetMember is one simulated instance with its own observed logger.
type fleetMember struct {
	*urlSource
	logs *observer.ObservedLogs
}

func newFleetMember(t *testing.T, sc sourceConfig, storage certmagic.Storage) fleetMember {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s := newURLSource(sc.sourceID, &sourceUser{logger: zap.New(core), storage: storage, tuning: sc.sourceTuning})
	t.Cleanup(func() {
		s.cancel()
		s.transport.CloseIdleConnections()
	})
	return fleetMember{urlSource: s, logs: logs}
}

func (m fleetMember) warnings(msg string) int {
	return m.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessage(msg).Len()
}

const storageWarning = "shared storage failed; fetching keys without it until it works again"

func TestFleetScheduledRefreshUsesAnotherInstancesCurrentRecord(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	srv.SetCacheControl("max-age=2")
	store := &certmagic.FileStorage{Path: t.TempDir()}
	sc := testSource(srv.JWKSURL())
	a, b := newFleetMember(t, sc, store), newFleetMember(t, sc, store)
	adopted := jwksFetchesTotal.WithLabelValues(sc.Issuer, "adopted")
	before := value(t, adopted)

	if res := a.refresh(causeStart); res.err != nil || srv.Hits() != 1 {
		t.Fatalf("first instance: %v, %d fetches", res.err, srv.Hits())
	}
	res := b.refresh(causeStart)
	st := b.state.Load()
	if srv.Hits() != 1 || st == nil || st.source != "stored" || !st.fetchedAt.Equal(a.state.Load().fetchedAt) {
		t.Fatalf("second instance fetched (%d fetches) or did not adopt: %+v", srv.Hits(), st)
	}
	if got := value(t, adopted) - before; got != 1 {
		t.Fatalf("adopted counter grew by %v, want 1", got)
	}
	// Its next refresh is planned from the record: one period after it
	// was fetched, not after it was read.
	if due := res.at.Add(res.next); due.Before(st.fetchedAt.Add(2*time.Second)) || due.After(st.fetchedAt.Add(2200*time.Millisecond)) {
		t.Fatalf("next refresh at %s, want within 2s–2.2s of %s", due, st.fetchedAt)
	}
	if status := b.status(time.Now()); status.Source == nil || *status.Source != "stored" {
		t.Fatalf("status of an adopted set: %+v", status)
	}
	// A current record saves the fetch whoever stored it: a's own, after
	// an unknown-kid fetch moved it, saves a's scheduled one.
	a.refresh(causeScheduled)
	if srv.Hits() != 1 {
		t.Fatalf("%d fetches although the stored set is current, want 1", srv.Hits())
	}
	// Past the refresh period, the first instance due fetches and the
	// next one uses its record.
	time.Sleep(2100 * time.Millisecond)
	b.refresh(causeScheduled)
	if srv.Hits() != 2 || b.state.Load().source != "fetched" {
		t.Fatalf("a record older than the period was used: %d fetches, %+v", srv.Hits(), b.state.Load())
	}
	a.refresh(causeScheduled)
	if srv.Hits() != 2 || a.state.Load().source != "stored" {
		t.Fatalf("the second instance due fetched too: %d fetches, %+v", srv.Hits(), a.state.Load())
	}
}

func TestFleetUnknownKidRule(t *testing.T) {
	k1, k2 := jwttest.NewEC(t, "ES256", "k1"), jwttest.NewEC(t, "ES256", "k2")
	tuning := sourceTuning{RefreshInterval: time.Hour, MinRefreshInterval: time.Second, MaxStale: 24 * time.Hour}
	old, _, err := parseKeySet(jwttest.JWKS(k1), false)
	if err != nil {
		t.Fatal(err)
	}
	rotated, _, err := parseKeySet(jwttest.JWKS(k1, k2), false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cur := &keyState{set: old, fetchedAt: now.Add(-10 * time.Second)}
	for _, tc := range []struct {
		name  string
		cause refreshCause
		age   time.Duration
		set   *keySet
		newer bool
		want  bool
	}{
		{"kid: fetched within min_refresh_interval", causeUnknownKid, 500 * time.Millisecond, old, false, true},
		{"kid: newer record with other keys", causeUnknownKid, 5 * time.Second, rotated, true, true},
		{"kid: newer record, same keys", causeUnknownKid, 5 * time.Second, old, true, false},
		{"kid: older record with other keys", causeUnknownKid, 5 * time.Second, rotated, false, false},
		{"scheduled: within the period", causeScheduled, 30 * time.Minute, old, true, true},
		{"scheduled: past the period", causeScheduled, 61 * time.Minute, rotated, true, false},
		{"start: within the period", causeStart, 59 * time.Minute, old, true, true},
	} {
		rec := &storedKeySet{FetchedAt: now.Add(-tc.age)}
		if got := savesFetch(rec, tc.set, cur, tc.newer, tc.cause, tuning, now); got != tc.want {
			t.Errorf("%s: savesFetch = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFleetUnknownKidRotation(t *testing.T) {
	k1, k2 := jwttest.NewEC(t, "ES256", "k1"), jwttest.NewEC(t, "ES256", "k2")
	srv := jwttest.NewServer(t, k1)
	store := &certmagic.FileStorage{Path: t.TempDir()}
	sc := testSource(srv.JWKSURL())
	a, b := newFleetMember(t, sc, store), newFleetMember(t, sc, store)
	a.refresh(causeStart)
	b.refresh(causeStart)
	srv.SetKeys(k1, k2)

	// Within min_refresh_interval of a's fetch, b's unknown kid uses the
	// stored set: the fleet fetched it just now.
	b.refresh(causeUnknownKid)
	if srv.Hits() != 1 || b.keySet().Select("k2", "ES256") != nil {
		t.Fatalf("%d fetches, want 1 (k2 cannot be known yet)", srv.Hits())
	}
	time.Sleep(sc.MinRefreshInterval)
	b.refresh(causeUnknownKid)
	if srv.Hits() != 2 || b.keySet().Select("k2", "ES256") == nil {
		t.Fatalf("%d fetches, k2 not found after min_refresh_interval", srv.Hits())
	}
	// a finds the new key in the record b stored: no fetch.
	a.refresh(causeUnknownKid)
	if srv.Hits() != 2 || a.keySet().Select("k2", "ES256") == nil {
		t.Fatalf("%d fetches, want 2; a has k2: %v", srv.Hits(), a.keySet().Select("k2", "ES256") != nil)
	}
}

// An instance that finds the lock held waits for the holder's record
// instead of fetching; a lock that stays busy past fetch_timeout means
// fetching alone, with one warning.
func TestFleetLockHolderFetchesForTheOthers(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	store := &certmagic.FileStorage{Path: t.TempDir()}
	sc := testSource(srv.JWKSURL())
	holder, waiter := newFleetMember(t, sc, store), newFleetMember(t, sc, store)
	name := lockName(holder.store.key)
	if err := store.Lock(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	done := make(chan fetchResult, 1)
	go func() { done <- waiter.refresh(causeStart) }()
	time.Sleep(3 * lockPoll)
	if srv.Hits() != 0 {
		t.Fatal("fetched while another instance holds the lock")
	}
	holder.fetchOnce() // the holder's fetch, stored
	if err := store.Unlock(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err != nil || srv.Hits() != 1 || waiter.state.Load().source != "stored" {
		t.Fatalf("waiter: %v, %d fetches, %+v", res.err, srv.Hits(), waiter.state.Load())
	}
	if _, err := os.Stat(filepath.Join(store.Path, "locks")); err != nil {
		t.Fatal(err)
	}

	// A lock nobody releases: fetch alone after fetch_timeout, warn once.
	sc.FetchTimeout = 600 * time.Millisecond
	stuck := newFleetMember(t, sc, store)
	stuck.refresh(causeStart) // adopts the holder's set
	if err := store.Lock(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Unlock(context.Background(), name) })
	for range 2 {
		time.Sleep(sc.MinRefreshInterval) // the stored record is no longer "just fetched"
		started := time.Now()
		if res := stuck.refresh(causeUnknownKid); res.err != nil {
			t.Fatal(res.err)
		}
		if took := time.Since(started); took > 3*sc.FetchTimeout {
			t.Fatalf("refresh took %s with a stuck lock", took)
		}
	}
	if srv.Hits() != 3 || stuck.warnings(storageWarning) != 1 {
		t.Fatalf("%d fetches (want 3), %d warnings (want 1)", srv.Hits(), stuck.warnings(storageWarning))
	}
}

// A storage that fails never fails the source: it fetches alone, serves,
// warns once per episode, and says when storage works again.
func TestFleetStorageFailureFetchesAloneAndWarnsOncePerEpisode(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	dir := t.TempDir()
	store := &certmagic.FileStorage{Path: dir}
	sc := testSource(srv.JWKSURL())
	s := newFleetMember(t, sc, store)
	// jwt_auth/jwks is a regular file: reads and writes under it fail
	// (the tests run as root, which file modes would not stop).
	jwks := filepath.Join(dir, filepath.FromSlash(storagePrefix))
	if err := os.MkdirAll(filepath.Dir(jwks), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Clean(jwks), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if res := s.refresh(causeScheduled); res.err != nil || s.keySet() == nil || srv.Hits() != i+1 {
			t.Fatalf("refresh %d: %v, %d fetches", i, res.err, srv.Hits())
		}
	}
	if n := s.warnings(storageWarning); n != 1 {
		t.Fatalf("%d storage warnings for one episode, want 1", n)
	}
	if err := os.Remove(filepath.Clean(jwks)); err != nil {
		t.Fatal(err)
	}
	s.refresh(causeScheduled)
	if s.logs.FilterMessage("shared storage works again").Len() != 1 {
		t.Fatal("no notice that storage works again")
	}
	if rec := loadRecord(t, store, srv.JWKSURL()); rec.Body == "" {
		t.Fatal("nothing stored once storage works")
	}
}

// Many instances whose schedules coincide: one fetches, the others use its
// record.
func TestFleetCoincidingRefreshesFetchOnce(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	srv.SetDelay(100 * time.Millisecond) // a fetch long enough to overlap
	store := &certmagic.FileStorage{Path: t.TempDir()}
	sc := testSource(srv.JWKSURL())
	const n = 8
	var wg sync.WaitGroup
	for range n {
		m := newFleetMember(t, sc, store)
		wg.Go(func() {
			if res := m.refresh(causeStart); res.err != nil || m.keySet() == nil {
				t.Errorf("refresh: %v", res.err)
			}
		})
	}
	wg.Wait()
	if srv.Hits() != 1 {
		t.Fatalf("%d instances starting at once made %d fetches, want 1", n, srv.Hits())
	}
}

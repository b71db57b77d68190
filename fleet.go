package jwtauth

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Fleet coordination (docs/design.md, "Key sources"): instances sharing a
// storage module share the work of fetching through it, so the IdP sees
// about one fetch per key source and refresh period for the whole fleet.
// Before fetching, an instance reads the stored record and uses it when
// another instance stored it recently enough; otherwise it takes the
// source's storage lock, reads again, and only then fetches and stores.
//
// The lock is advisory: storage modules implement it loosely, and a missed
// lock costs one extra fetch, never a wrong key set, because a record is
// checked and parsed like a fetched body. A storage that fails or hangs
// never blocks serving: the instance fetches on its own, as it would
// without a shared storage, and warns once per episode.

// refreshCause is why a refresh runs; it decides which stored record saves
// the fetch.
type refreshCause int

const (
	// causeStart is the loader's first turn: a stored set is served at
	// once, current or not, and saves the fetch while it is current.
	causeStart refreshCause = iota
	// causeScheduled is the end of a refresh period, or a request that
	// found no set: a record stored within the current period saves it.
	causeScheduled
	// causeUnknownKid is a token whose kid the set lacks: a record newer
	// than the set with other keys (it may hold the kid), or one fetched
	// less than min_refresh_interval ago, saves it.
	causeUnknownKid
)

// lockPoll bounds one attempt at the storage lock; between attempts the
// record is read again, so an instance waiting for another's fetch uses its
// result as soon as it is stored rather than when the lock comes free.
const lockPoll = 250 * time.Millisecond

// refresh is one turn of the loader or of an unknown kid: a set another
// instance stored when it saves the fetch, else a fetch under the source's
// storage lock. The storage steps are bounded by fetch_timeout together; a
// failure of any of them means fetching alone.
func (s *urlSource) refresh(cause refreshCause) fetchResult {
	storage := s.storage()
	if storage == nil || s.ctx.Err() != nil {
		return s.fetchOnce()
	}
	tuning := s.tuning()
	ctx, cancel := context.WithTimeout(s.ctx, tuning.FetchTimeout)
	defer cancel()
	res, ok, err := s.useStored(ctx, storage, tuning, cause)
	switch {
	case err != nil:
		return s.fetchAlone("reading the stored key set", err)
	case ok:
		return res
	}
	name := lockName(s.store.key)
	for {
		locked, err := lockAttempt(ctx, storage, name)
		switch {
		case locked:
			defer s.unlock(storage, name, tuning.FetchTimeout)
			// Read again: whoever held the lock before may just have
			// stored the set.
			res, ok, err := s.useStored(ctx, storage, tuning, cause)
			if err != nil {
				s.storageFailed("reading the stored key set", err)
			} else if ok {
				return res
			}
			res = s.fetchOnce()
			if res.err == nil && s.store.wroteCurrent(s.state.Load()) {
				s.storageWorked()
			}
			return res
		case s.ctx.Err() != nil:
			return s.fetchOnce() // shutting down: returns at once
		case err != nil:
			return s.fetchAlone("locking the stored key set", err)
		case ctx.Err() != nil:
			return s.fetchAlone("waiting for the stored key set's lock",
				fmt.Errorf("still busy (or the storage does not answer) after fetch_timeout %s", tuning.FetchTimeout))
		}
		// Another instance holds the lock, so it is fetching.
		res, ok, err := s.useStored(ctx, storage, tuning, cause)
		switch {
		case err != nil:
			return s.fetchAlone("reading the stored key set", err)
		case ok:
			return res
		}
	}
}

// lockAttempt tries once, for at most lockPoll, to take the lock: TryLock
// where the storage has it, else Lock bounded by the attempt. It reports
// busy (false, nil) only after the attempt's time has passed, so a TryLock
// that answers at once does not spin. An error is the storage's.
func lockAttempt(ctx context.Context, storage certmagic.Storage, name string) (bool, error) {
	attempt, cancel := context.WithTimeout(ctx, lockPoll)
	defer cancel()
	var err error
	if tl, ok := storage.(certmagic.TryLocker); ok {
		var locked bool
		if locked, err = tl.TryLock(attempt, name); locked {
			return true, nil
		}
	} else if err = storage.Lock(attempt, name); err == nil {
		return true, nil
	}
	if err != nil && attempt.Err() == nil {
		return false, err
	}
	<-attempt.Done()
	return false, nil
}

// unlock releases the lock even while the source shuts down, so the fleet
// does not wait for it to go stale.
func (s *urlSource) unlock(storage certmagic.Storage, name string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := storage.Unlock(ctx, name); err != nil {
		s.storageFailed("releasing the stored key set's lock", err)
	}
}

// fetchAlone fetches without coordination after a storage failure.
func (s *urlSource) fetchAlone(what string, err error) fetchResult {
	s.storageFailed(what, err)
	return s.fetchOnce()
}

// useStored reads the record and reports whether it saves this refresh's
// fetch, with the result to plan the next refresh from. At start it also
// serves a valid stored set at once, current or not. An error is the
// storage's; a record that fails its checks is ignored (and logged once).
func (s *urlSource) useStored(ctx context.Context, storage certmagic.Storage, tuning sourceTuning, cause refreshCause) (fetchResult, bool, error) {
	data, err := s.store.read(ctx, storage)
	if err != nil || data == nil {
		return fetchResult{}, false, err
	}
	now := time.Now()
	rec, set, err := decodeStored(data, recordCheck{jwksURL: s.id.JWKSURL, maxStale: tuning.MaxStale, now: now})
	if err != nil {
		if s.store.firstIgnore(data) {
			s.logger().Warn("ignoring stored key set", zap.String("issuer", s.id.Issuer),
				zap.String("key", s.store.key), zap.Error(err))
		}
		return fetchResult{}, false, nil
	}
	cur := s.state.Load()
	newer := cur == nil || rec.FetchedAt.After(cur.fetchedAt)
	if savesFetch(rec, set, cur, newer, cause, tuning, now) {
		at := rec.FetchedAt
		if newer {
			s.adopt(rec, set)
		} else {
			at = cur.fetchedAt
		}
		s.storageWorked()
		return fetchResult{at: at, maxAge: rec.maxAge(), next: successDelay(tuning, rec.maxAge())}, true, nil
	}
	if cause == causeStart && cur == nil {
		// Serve it while the fetch runs: the IdP may be down.
		s.origin.replace(rec.URL, rec.ETag, []byte(rec.Body))
		s.install(set, "stored", rec.URL, rec.FetchedAt)
	}
	return fetchResult{}, false, nil
}

// savesFetch is the fleet rule: whether a valid record another instance
// stored makes this refresh's fetch unnecessary. cur is the set served now
// (nil: none), newer whether rec was fetched after it.
func savesFetch(rec *storedKeySet, set *keySet, cur *keyState, newer bool, cause refreshCause, tuning sourceTuning, now time.Time) bool {
	age := now.Sub(rec.FetchedAt)
	if cause == causeUnknownKid {
		if age < tuning.MinRefreshInterval {
			return true
		}
		added, removed := diffKids(cur, set)
		return newer && (cur == nil || len(added) > 0 || len(removed) > 0)
	}
	return age < refreshPeriod(tuning, rec.maxAge())
}

// adopt serves a set another instance fetched and stored, as if this
// instance had fetched it then: max_stale and the backoff restart from the
// record, and the next conditional request carries its ETag.
func (s *urlSource) adopt(rec *storedKeySet, set *keySet) {
	s.origin.replace(rec.URL, rec.ETag, []byte(rec.Body))
	s.install(set, "stored", rec.URL, rec.FetchedAt)
	s.sched.succeeded()
	s.failing.Store(false)
	observeAdopted(s.id.Issuer)
}

// storageFailed reports a storage failure once per episode: the first
// failure after storage worked warns, later ones are debug lines, so a
// storage that is down does not log on every refresh.
func (s *urlSource) storageFailed(what string, err error) {
	fields := []zap.Field{zap.String("issuer", s.id.Issuer), zap.String("key", s.store.key),
		zap.String("operation", what), zap.Error(err)}
	if s.storageBad.CompareAndSwap(false, true) {
		s.logger().Warn("shared storage failed; fetching keys without it until it works again", fields...)
		return
	}
	s.logger().Debug("shared storage still failing", fields...)
}

// storageWorked ends an episode of storage failures: a whole coordinated
// refresh worked (a set another instance stored was used, or one fetched
// under the lock was stored). A write alone does not end it: with the lock
// or the reads failing, that would warn again on every fetch.
func (s *urlSource) storageWorked() {
	if s.storageBad.CompareAndSwap(true, false) {
		s.logger().Info("shared storage works again", zap.String("issuer", s.id.Issuer), zap.String("key", s.store.key))
	}
}

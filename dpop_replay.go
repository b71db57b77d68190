package jwtauth

import (
	"crypto/sha256"
	"hash/maphash"
	"sync"
	"time"
)

// defaultReplayCapacity is how many live proofs the replay memory holds
// before it refuses new ones: enough for about 1,500 DPoP requests a second
// with the default 60 s window, at under 100 bytes per entry (a few MB).
const defaultReplayCapacity = 100_000

// replayKey is the fixed-size identity of a proof, the first 16 bytes of
// SHA-256(jkt "\x00" jti). Hashing keeps every entry the same size whatever
// the client puts in jti (up to 256 bytes), and 128 bits make an accidental
// collision, which would refuse one honest proof, negligible.
type replayKey [16]byte

func newReplayKey(jkt, jti string) replayKey {
	// A thumbprint (43 bytes) and a jti of at most maxJTILength fit the
	// buffer, which then stays on the stack.
	b := make([]byte, 0, 64+maxJTILength)
	b = append(b, jkt...)
	b = append(b, 0)
	b = append(b, jti...)
	sum := sha256.Sum256(b)
	var k replayKey
	copy(k[:], sum[:])
	return k
}

// replayVerdict is the replay memory's answer for one proof.
type replayVerdict int

const (
	// replayFresh: first use; the proof is now remembered.
	replayFresh replayVerdict = iota
	// replaySeen: the proof was already used within its window.
	replaySeen
	// replayFull: the memory holds only live proofs and cannot take this
	// one. Accepting it unremembered would allow its replay, so it is
	// refused like a replay; the caller logs a warning.
	replayFull
)

// replayMemory remembers DPoP proofs for their acceptance window so each is
// accepted once (RFC 9449 §11.1). It is bounded: it never forgets a live
// entry to make room, it refuses instead. It is safe for concurrent use and
// shared by every route of a handler.
//
// Every entry lives for the same window, so entries expire in the order they
// were added: each shard keeps a FIFO of deadlines next to its set, and
// expiring is popping the front, with no scan. The window must cover the
// last moment a proof's iat is still acceptable: a proof accepted at time t
// has iat ≤ t + leeway and stays acceptable until iat + max_age + leeway, so
// max_age + 2·leeway from t suffices.
type replayMemory struct {
	window time.Duration
	seed   maphash.Seed // picks the shard; random so clients cannot aim at one
	shards []replayShard
}

type replayShard struct {
	mu    sync.Mutex
	limit int
	live  map[replayKey]struct{}
	queue []replayEntry // oldest first; queue[head:] are live or not yet popped
	head  int
}

type replayEntry struct {
	key      replayKey
	deadline int64 // unix nanoseconds after which the proof is unacceptable
}

// replayShardSize is the number of entries per shard we aim for: large
// enough that the split does not make one shard fill early, small enough
// that concurrent requests rarely wait on the same lock.
const replayShardSize = 2048

// newReplayMemory returns a memory of about capacity entries (rounded up
// to a multiple of the shard count) that remembers each proof for window.
// Entries spread over the shards by a keyed hash, so under heavy load one
// shard may report full a little before the whole memory holds capacity.
func newReplayMemory(capacity int, window time.Duration) *replayMemory {
	if capacity < 1 {
		capacity = 1
	}
	n := 1
	for n < 64 && n*replayShardSize < capacity {
		n *= 2
	}
	m := &replayMemory{window: window, seed: maphash.MakeSeed(), shards: make([]replayShard, n)}
	per := (capacity + n - 1) / n
	for i := range m.shards {
		m.shards[i].limit = per
		m.shards[i].live = make(map[replayKey]struct{})
	}
	return m
}

// seen records the proof identified by key, used at now, and says whether it
// is fresh. now comes from the caller so a whole request is judged at one
// instant; goroutines racing with slightly different clocks only make an
// entry live a little longer, never shorter.
func (m *replayMemory) seen(key replayKey, now time.Time) replayVerdict {
	s := &m.shards[maphash.Comparable(m.seed, key)%uint64(len(m.shards))]
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(t)
	if _, ok := s.live[key]; ok {
		return replaySeen
	}
	if len(s.live) >= s.limit {
		return replayFull
	}
	s.live[key] = struct{}{}
	s.queue = append(s.queue, replayEntry{key: key, deadline: t + int64(m.window)})
	return replayFresh
}

// expire forgets every entry whose deadline has passed.
func (s *replayShard) expire(now int64) {
	for s.head < len(s.queue) && s.queue[s.head].deadline < now {
		delete(s.live, s.queue[s.head].key)
		s.head++
	}
	// Reclaim the popped prefix once it is half the slice, so the queue's
	// memory stays proportional to the live entries.
	if s.head > 0 && s.head >= len(s.queue)/2 {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.head = 0
	}
}

// len returns the number of entries held, expired ones not yet popped
// included; for tests and metrics.
func (m *replayMemory) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.live)
		s.mu.Unlock()
	}
	return n
}

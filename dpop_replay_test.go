package jwtauth

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReplayKeySeparatesJKTAndJTI(t *testing.T) {
	if newReplayKey("a", "bc") == newReplayKey("ab", "c") {
		t.Fatal("jkt and jti run together: (a, bc) and (ab, c) share a key")
	}
	if newReplayKey("jkt", "1") != newReplayKey("jkt", "1") {
		t.Fatal("the key is not deterministic")
	}
}

func TestReplayMemory(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const window = 70 * time.Second
	a, b := newReplayKey("jkt", "a"), newReplayKey("jkt", "b")
	other := newReplayKey("other-jkt", "a")
	tests := []struct {
		name  string
		steps []struct {
			key  replayKey
			at   time.Duration
			want replayVerdict
		}
	}{
		{"first use fresh, second refused", []struct {
			key  replayKey
			at   time.Duration
			want replayVerdict
		}{{a, 0, replayFresh}, {a, time.Second, replaySeen}}},
		{"another jti or key is fresh", []struct {
			key  replayKey
			at   time.Duration
			want replayVerdict
		}{{a, 0, replayFresh}, {b, 0, replayFresh}, {other, 0, replayFresh}}},
		{"remembered through the last instant of the window", []struct {
			key  replayKey
			at   time.Duration
			want replayVerdict
		}{{a, 0, replayFresh}, {a, window, replaySeen}}},
		{"forgotten after the window", []struct {
			key  replayKey
			at   time.Duration
			want replayVerdict
		}{{a, 0, replayFresh}, {a, window + time.Nanosecond, replayFresh}, {a, window + time.Second, replaySeen}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newReplayMemory(100, window)
			for i, st := range tt.steps {
				if got := m.seen(st.key, t0.Add(st.at)); got != st.want {
					t.Fatalf("step %d: seen = %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

func TestReplayMemoryFullRefusesAndKeepsLiveEntries(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const capacity, window = 50, time.Minute
	m := newReplayMemory(capacity, window)
	for i := range capacity {
		if got := m.seen(newReplayKey("k", string(rune('A'+i))), t0); got != replayFresh {
			t.Fatalf("entry %d: %v, want fresh", i, got)
		}
	}
	if got := m.seen(newReplayKey("k", "new"), t0.Add(time.Second)); got != replayFull {
		t.Fatalf("new proof in a full memory: %v, want replayFull", got)
	}
	// Nothing live was dropped to make room.
	for i := range capacity {
		if got := m.seen(newReplayKey("k", string(rune('A'+i))), t0.Add(2*time.Second)); got != replaySeen {
			t.Fatalf("live entry %d after a full refusal: %v, want replaySeen", i, got)
		}
	}
	// Room comes back when the window passes.
	if got := m.seen(newReplayKey("k", "new"), t0.Add(window+time.Second)); got != replayFresh {
		t.Fatalf("after the window: %v, want fresh", got)
	}
	if n := m.len(); n != 1 {
		t.Fatalf("len after expiry = %d, want 1", n)
	}
}

func TestReplayMemoryCapacityIsBounded(t *testing.T) {
	for _, capacity := range []int{1, 7, 2048, 2049, 100_000, 1_000_000} {
		m := newReplayMemory(capacity, time.Minute)
		total := 0
		for i := range m.shards {
			total += m.shards[i].limit
		}
		if total < capacity || total >= capacity+len(m.shards) {
			t.Errorf("capacity %d: shards hold %d in %d shards", capacity, total, len(m.shards))
		}
	}
}

func TestReplayMemoryConcurrentUseAcceptsOnce(t *testing.T) {
	m := newReplayMemory(10_000, time.Minute)
	now := time.Now()
	const goroutines, keys = 8, 500
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range keys {
				if m.seen(newReplayKey("jkt", string(binary.AppendUvarint(nil, uint64(i)))), now) == replayFresh {
					fresh.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := fresh.Load(); got != keys {
		t.Fatalf("%d fresh verdicts for %d distinct proofs used by %d goroutines", got, keys, goroutines)
	}
}

func TestReplayMemoryQueueShrinks(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	m := newReplayMemory(100, time.Second)
	for i := range 1000 {
		m.seen(newReplayKey("jkt", string(binary.AppendUvarint(nil, uint64(i)))), t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	s := &m.shards[0]
	if live := len(s.queue) - s.head; live > 20 || len(s.queue) > 40 {
		t.Fatalf("queue holds %d slots (%d live) for a 1 s window at 10/s", len(s.queue), live)
	}
}

// replayBenchKey is a distinct key per i without hashing, so the benchmark
// measures the memory itself.
func replayBenchKey(i uint64) replayKey {
	var k replayKey
	binary.LittleEndian.PutUint64(k[:], i)
	binary.LittleEndian.PutUint64(k[8:], i*0x9e3779b97f4a7c15)
	return k
}

// BenchmarkReplaySeen adds b.N distinct proofs and reports the time per
// proof and the heap bytes each entry costs (map slot plus queue slot).
func BenchmarkReplaySeen(b *testing.B) {
	now := time.Now()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := newReplayMemory(2*b.N, time.Hour) // shards fill unevenly; leave room
	b.ResetTimer()
	for i := range b.N {
		if m.seen(replayBenchKey(uint64(i)), now) != replayFresh {
			b.Fatal("distinct proof refused")
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "B/entry")
	runtime.KeepAlive(m)
}

// BenchmarkReplaySeenParallel is the contended case: every core adding
// proofs to one memory at once.
func BenchmarkReplaySeenParallel(b *testing.B) {
	now := time.Now()
	m := newReplayMemory(2*b.N+1024, time.Hour) // shards fill unevenly; leave room
	var next atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m.seen(replayBenchKey(next.Add(1)), now) != replayFresh {
				b.Error("distinct proof refused")
				return
			}
		}
	})
}

package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Unit tests of the URL source against real HTTP servers (jwttest.Server or
// httptest) and real keys. The loop is not started unless a test says so:
// fetchOnce is driven by hand so every step is observable.

func testSource(url string) sourceConfig {
	return sourceConfig{
		sourceID: sourceID{Issuer: "https://idp.example/", JWKSURL: url},
		sourceTuning: sourceTuning{
			FetchTimeout:       2 * time.Second,
			RefreshInterval:    time.Minute,
			MinRefreshInterval: time.Second,
			MaxStale:           time.Hour,
		},
	}
}

// newTestSource builds a URL source whose loop is not running, with sc's
// tuning, a test logger and storage (nil: none); cleanup stops it.
func newTestSource(t *testing.T, sc sourceConfig, storage certmagic.Storage) *urlSource {
	t.Helper()
	s := newURLSource(sc.sourceID, &sourceUser{logger: zaptest.NewLogger(t), storage: storage, tuning: sc.sourceTuning})
	t.Cleanup(func() {
		s.cancel()
		s.transport.CloseIdleConnections()
	})
	return s
}

// failures is the source's consecutive failure count and latest error.
func failures(s *urlSource) (int, string) {
	_, lastError := s.sched.snapshot()
	return s.sched.failureCount(), lastError
}

func TestCacheLifetime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"absent", nil, 0},
		{"max-age", map[string]string{"Cache-Control": "public, max-age=300"}, 300 * time.Second},
		{"max-age quoted", map[string]string{"Cache-Control": `max-age="60"`}, time.Minute},
		{"max-age minus Age", map[string]string{"Cache-Control": "max-age=300", "Age": "100"}, 200 * time.Second},
		{"Age beyond max-age", map[string]string{"Cache-Control": "max-age=300", "Age": "900"}, 0},
		{"max-age=0", map[string]string{"Cache-Control": "max-age=0"}, 0},
		{"no-cache wins", map[string]string{"Cache-Control": "max-age=300, no-cache"}, 0},
		{"no-store wins", map[string]string{"Cache-Control": "no-store, max-age=300"}, 0},
		{"garbage max-age", map[string]string{"Cache-Control": "max-age=soon"}, 0},
		{"negative max-age", map[string]string{"Cache-Control": "max-age=-5"}, 0},
		{"huge max-age capped at 24h", map[string]string{"Cache-Control": "max-age=99999999999"}, 24 * time.Hour},
		{"max-age beats Expires", map[string]string{"Cache-Control": "max-age=10", "Expires": now.Add(time.Hour).Format(http.TimeFormat)}, 10 * time.Second},
		{"Expires", map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat)}, time.Hour},
		{"Expires in the past", map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"Expires far ahead capped", map[string]string{"Expires": now.Add(90 * 24 * time.Hour).Format(http.TimeFormat)}, 24 * time.Hour},
		{"Expires unparsable", map[string]string{"Expires": "0"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.headers {
				h.Set(k, v)
			}
			if got := cacheLifetime(h, now); got != c.want {
				t.Fatalf("cacheLifetime = %s, want %s", got, c.want)
			}
		})
	}
}

func TestSuccessDelayClampsAndJitters(t *testing.T) {
	tuning := sourceTuning{RefreshInterval: 10 * time.Minute, MinRefreshInterval: 10 * time.Second, MaxStale: 72 * time.Hour}
	check := func(maxAge, lo, hi time.Duration) {
		t.Helper()
		seen := map[time.Duration]bool{}
		for range 200 {
			d := successDelay(tuning, maxAge)
			if d < lo || d > hi {
				t.Fatalf("successDelay(%s) = %s, want within [%s, %s]", maxAge, d, lo, hi)
			}
			seen[d] = true
		}
		if lo != hi && len(seen) < 2 {
			t.Fatalf("successDelay(%s): no jitter across 200 draws", maxAge)
		}
	}
	check(0, 10*time.Minute, 10*time.Minute)                        // no max-age: refresh_interval exactly
	check(time.Second, 10*time.Second, 11*time.Second)              // floor: min_refresh_interval (+10%)
	check(time.Hour, time.Hour, time.Hour+6*time.Minute)            // as given (+10%)
	check(48*time.Hour, 24*time.Hour, 24*time.Hour+144*time.Minute) // ceiling: 24h (+10%)

	// Never later than half of max_stale, so a set is re-checked before it
	// could be dropped.
	tuning.MaxStale = 4 * time.Second
	check(time.Hour, 2*time.Second, 2*time.Second)
	check(0, 2*time.Second, 2*time.Second)
}

func TestBackoffBounds(t *testing.T) {
	for _, refresh := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Minute} {
		tuning := sourceTuning{RefreshInterval: refresh}
		for _, haveSet := range []bool{false, true} {
			limit := refresh
			if !haveSet {
				limit = min(refresh, 30*time.Second)
			}
			var prevBase time.Duration
			for n := 1; n <= 40; n++ {
				hi := time.Duration(0)
				for range 50 {
					d := backoff(tuning, n, haveSet)
					if d < time.Second || d > limit {
						t.Fatalf("refresh %s set %v failures %d: backoff %s outside [1s, %s]", refresh, haveSet, n, d, limit)
					}
					hi = max(hi, d)
				}
				if hi < prevBase {
					t.Fatalf("refresh %s set %v: backoff shrank at failure %d (%s < %s)", refresh, haveSet, n, hi, prevBase)
				}
				prevBase = min(time.Second<<min(n-1, 16), limit)
			}
			if d := backoff(tuning, 1, haveSet); d > min(1500*time.Millisecond, limit) {
				t.Fatalf("first retry after %s, want at most 1.5s", d)
			}
			if d := backoff(tuning, 40, haveSet); refresh == 10*time.Minute && !haveSet && d != 30*time.Second {
				t.Fatalf("without a set the backoff must reach exactly 30s, got %s", d)
			}
		}
	}
}

func TestRedirectsStayOnTheSameHost(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	keys := jwttest.NewServer(t, key) // 127.0.0.1:<port A>
	// Same host, same port: followed.
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/jwks", http.StatusMovedPermanently)
			return
		}
		_, _ = w.Write(jwttest.JWKS(key))
	}))
	t.Cleanup(same.Close)
	f := newTestSource(t, testSource(same.URL+"/old"), nil)
	if res := f.fetchOnce(); res.err != nil || f.keySet() == nil {
		t.Fatalf("same-host redirect: %v", res.err)
	}
	// Another host (127.0.0.1 on another port is another origin): refused,
	// and the target never sees a request.
	other := httptest.NewServer(http.RedirectHandler(keys.JWKSURL(), http.StatusFound))
	t.Cleanup(other.Close)
	f = newTestSource(t, testSource(other.URL+"/jwks"), nil)
	res := f.fetchOnce()
	if res.err == nil || !strings.Contains(res.err.Error(), "another host") {
		t.Fatalf("cross-host redirect: err = %v, want refusal", res.err)
	}
	if f.keySet() != nil || keys.Hits() != 0 {
		t.Fatalf("cross-host redirect was followed (hits %d)", keys.Hits())
	}
	// https to http on the same host: refused by the policy itself.
	from, _ := http.NewRequest(http.MethodGet, "https://idp.example/jwks", nil)
	to, _ := http.NewRequest(http.MethodGet, "http://idp.example/jwks", nil)
	if err := sameHostRedirects(to, []*http.Request{from}); err == nil {
		t.Fatal("https to http redirect accepted")
	}
}

// TestRedirectLimitIsExact: a chain of exactly maxRedirects same-host
// redirects is followed; one more is refused, and its target never asked.
func TestRedirectLimitIsExact(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	var mu sync.Mutex
	reached := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached[r.URL.Path]++
		mu.Unlock()
		// /hop/N redirects to /hop/N-1; /hop/0 serves the set.
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/hop/%d", &n); err == nil && n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
			return
		}
		_, _ = w.Write(jwttest.JWKS(key))
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		hops int
		ok   bool
	}{{1, true}, {maxRedirects, true}, {maxRedirects + 1, false}} {
		t.Run(fmt.Sprintf("%d redirects", c.hops), func(t *testing.T) {
			mu.Lock()
			clear(reached)
			mu.Unlock()
			f := newTestSource(t, testSource(fmt.Sprintf("%s/hop/%d", srv.URL, c.hops)), nil)
			res := f.fetchOnce()
			if c.ok != (res.err == nil) || c.ok != (f.keySet() != nil) {
				t.Fatalf("%d redirects: err %v, set %v; want ok=%v", c.hops, res.err, f.keySet() != nil, c.ok)
			}
			if !c.ok && !strings.Contains(res.err.Error(), "redirects") {
				t.Fatalf("refusal does not say why: %v", res.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := reached["/hop/0"]; (got == 1) != c.ok {
				t.Fatalf("end of the chain asked %d times, want ok=%v", got, c.ok)
			}
		})
	}
}

func TestBadResponsesNeverReplaceAGoodSet(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "good")
	srv := jwttest.NewServer(t, key)
	srv.SetETag(false) // every fetch is a full one
	f := newTestSource(t, testSource(srv.JWKSURL()), nil)
	if res := f.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	good := f.keySet()
	if good.Select("good", "ES256") == nil {
		t.Fatal("good key not loaded")
	}
	unusable := jwttest.JWKSOf(map[string]any{"kty": "oct", "kid": "sym", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})
	modes := []struct {
		name  string
		apply func()
		want  string
	}{
		{"down", func() { srv.SetMode(jwttest.Down) }, "connect"},
		{"500", func() { srv.SetMode(jwttest.Status500) }, "status 500"},
		{"garbage", func() { srv.SetMode(jwttest.Garbage) }, "key set"},
		{"empty body", func() { srv.SetMode(jwttest.Empty) }, "empty response"},
		{"empty set", func() { srv.SetMode(jwttest.EmptySet) }, "no usable"},
		{"over 1 MiB", func() { srv.SetMode(jwttest.Huge) }, "larger than"},
		{"no usable key", func() { srv.SetMode(jwttest.Normal); srv.SetBody(unusable) }, "no usable"},
	}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			m.apply()
			res := f.fetchOnce()
			if res.err == nil || !strings.Contains(res.err.Error(), m.want) {
				t.Fatalf("err = %v, want one containing %q", res.err, m.want)
			}
			if f.keySet() != good {
				t.Fatal("the good set was replaced")
			}
			if n, lastError := failures(f); n != i+1 || !f.failing.Load() || lastError == "" {
				t.Fatalf("failure not recorded: count %d failing %v", n, f.failing.Load())
			}
			// With a set kept, the retry may wait up to refresh_interval.
			if res.next < time.Second || res.next > time.Minute {
				t.Fatalf("retry in %s", res.next)
			}
		})
	}
	srv.SetBody(nil)
	if res := f.fetchOnce(); res.err != nil || f.sched.failureCount() != 0 || f.failing.Load() {
		t.Fatalf("recovery: err %v, failures %d", res.err, f.sched.failureCount())
	}
}

func TestNotModifiedIsASuccessfulFetch(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	srv.SetCacheControl("max-age=120")
	f := newTestSource(t, testSource(srv.JWKSURL()), nil)
	if res := f.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	first := f.state.Load()
	// Fail once so the 304 has something to reset.
	srv.SetMode(jwttest.Status500)
	if res := f.fetchOnce(); res.err == nil {
		t.Fatal("500 accepted")
	}
	srv.SetMode(jwttest.Normal)
	time.Sleep(10 * time.Millisecond) // so fetchedAt visibly moves
	res := f.fetchOnce()
	if res.err != nil {
		t.Fatalf("304: %v", res.err)
	}
	if srv.NotModified() != 1 {
		t.Fatalf("server answered %d times 304, want 1 (If-None-Match not sent?)", srv.NotModified())
	}
	now := f.state.Load()
	if now.set != first.set || !now.fetchedAt.After(first.fetchedAt) {
		t.Fatal("304 must keep the set and restart its age")
	}
	if n, lastError := failures(f); n != 0 || f.failing.Load() || lastError != "" {
		t.Fatal("304 not counted as a success")
	}
	if res.next < 120*time.Second || res.next > 132*time.Second {
		t.Fatalf("304's max-age not followed: next in %s", res.next)
	}
	// A rotated set changes the ETag: a full 200 replaces the set.
	srv.SetKeys(key, jwttest.NewEC(t, "ES256", "k2"))
	if res := f.fetchOnce(); res.err != nil || f.keySet().Select("k2", "ES256") == nil {
		t.Fatalf("rotation after 304s: %v", res.err)
	}
}

func TestDiscovery(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	sc := testSource("")
	sc.Issuer = srv.URL()
	f := newTestSource(t, sc, nil)
	if res := f.fetchOnce(); res.err != nil || f.keySet() == nil {
		t.Fatalf("discovery: %v", res.err)
	}
	if srv.DiscoveryHits() != 1 || srv.Hits() != 1 {
		t.Fatalf("discovery hits %d, jwks hits %d", srv.DiscoveryHits(), srv.Hits())
	}
	// A trailing slash in the configured issuer is not the same issuer
	// (Discovery §4.3: exact match), so its document is refused.
	sc.Issuer = srv.URL() + "/"
	f = newTestSource(t, sc, nil)
	if res := f.fetchOnce(); res.err == nil || !strings.Contains(res.err.Error(), "does not equal") {
		t.Fatalf("issuer mismatch accepted: %v", res.err)
	}
	srv.SetIssuer("https://evil.example")
	sc.Issuer = srv.URL()
	f = newTestSource(t, sc, nil)
	res := f.fetchOnce()
	if res.err == nil || !strings.Contains(res.err.Error(), "evil.example") || f.keySet() != nil {
		t.Fatalf("foreign issuer accepted: %v", res.err)
	}
	// Without a set, the retry comes within 1–1.5 s.
	if res.next < time.Second || res.next > 1500*time.Millisecond {
		t.Fatalf("first retry in %s", res.next)
	}
}

func TestDiscoveryLimits(t *testing.T) {
	var doc []byte
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	set := func(v map[string]any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		doc = b
		mu.Unlock()
	}
	sc := testSource("")
	sc.Issuer = srv.URL
	for _, c := range []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"over 256 KiB", map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks", "pad": strings.Repeat("x", 256<<10)}, "larger than"},
		{"jwks_uri over plain http", map[string]any{"issuer": srv.URL, "jwks_uri": "http://idp.example/jwks"}, "must use https"},
		{"no jwks_uri", map[string]any{"issuer": srv.URL}, "no jwks_uri"},
	} {
		t.Run(c.name, func(t *testing.T) {
			set(c.doc)
			f := newTestSource(t, sc, nil)
			if res := f.fetchOnce(); res.err == nil || !strings.Contains(res.err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", res.err, c.want)
			}
		})
	}
}

func TestUnknownKidFetchesAreCoalescedAndRateLimited(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	srv.SetDelay(200 * time.Millisecond) // keep the first fetch in flight while the others arrive
	f := newTestSource(t, testSource(srv.JWKSURL()), nil)
	if res := f.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	time.Sleep(time.Second) // the initial fetch used up this slot
	srv.SetKeys(key, jwttest.NewEC(t, "ES256", "k2"))
	before := srv.Hits()
	var wg sync.WaitGroup
	found := make(chan bool, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set := f.RefreshForUnknownKid(context.Background())
			found <- set.Select("k2", "ES256") != nil
		}()
	}
	wg.Wait()
	close(found)
	if n := srv.Hits() - before; n != 1 {
		t.Fatalf("100 concurrent unknown kids caused %d fetches, want 1", n)
	}
	waited := 0
	for ok := range found {
		if ok {
			waited++
		}
	}
	// The triggering request waited for the fetch and got the new key;
	// most others were turned away at once with the old set.
	if waited < 1 || waited == 100 {
		t.Fatalf("%d of 100 callers saw the refreshed set, want the trigger and not all", waited)
	}
	// Within min_refresh_interval no new fetch at all.
	f.RefreshForUnknownKid(context.Background())
	if n := srv.Hits() - before; n != 1 {
		t.Fatalf("a second unknown kid within min_refresh_interval fetched (%d)", n)
	}
}

func TestUnknownKidWaitIsBoundedByFetchTimeout(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	sc := testSource(srv.JWKSURL())
	sc.FetchTimeout = 300 * time.Millisecond
	f := newTestSource(t, sc, nil)
	if res := f.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	srv.SetDelay(5 * time.Second)
	time.Sleep(sc.MinRefreshInterval)
	start := time.Now()
	set := f.RefreshForUnknownKid(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Fatalf("unknown-kid wait took %s with fetch_timeout %s", took, sc.FetchTimeout)
	}
	if set == nil || set.Select("k1", "ES256") == nil {
		t.Fatal("a slow issuer must leave the old set in place")
	}
}

func TestMaxStaleDropsTheSetOnlyWhileFailing(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	sc := testSource(srv.JWKSURL())
	sc.MaxStale = 300 * time.Millisecond
	f := newTestSource(t, sc, nil)
	if res := f.fetchOnce(); res.err != nil {
		t.Fatal(res.err)
	}
	time.Sleep(400 * time.Millisecond)
	// Older than max_stale, but nothing has failed: still served.
	if f.keySet() == nil {
		t.Fatal("an old set whose issuer has not failed was dropped")
	}
	srv.SetMode(jwttest.Down)
	res := f.fetchOnce()
	if res.err == nil || f.keySet() != nil || f.state.Load() != nil {
		t.Fatal("a set older than max_stale survived a failed fetch")
	}
	if res.next > 1500*time.Millisecond {
		t.Fatalf("without a set the retry must come soon, not in %s", res.next)
	}
	srv.SetMode(jwttest.Normal)
	if res := f.fetchOnce(); res.err != nil || f.keySet() == nil {
		t.Fatalf("recovery: %v", res.err)
	}
}

func TestDestructLeavesNothingRunning(t *testing.T) {
	key := jwttest.NewEC(t, "ES256", "k1")
	srv := jwttest.NewServer(t, key)
	sc := testSource(srv.JWKSURL())
	f := newURLSource(sc.sourceID, &sourceUser{logger: zaptest.NewLogger(t), tuning: sc.sourceTuning})
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.keySet() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no set")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// An unknown-kid fetch stuck on a slow server while the fetcher goes.
	srv.SetDelay(time.Minute)
	time.Sleep(time.Second)
	go f.RefreshForUnknownKid(context.Background())
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := f.Destruct(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Destruct took %s", took)
	}
	select {
	case <-f.done:
	default:
		t.Fatal("loop still running")
	}
}

// TestNewUserRetunesTheWaitingLoop: a reload that shortens refresh_interval
// takes effect at once, not after the old interval has run out; the reload
// that reverts it (a failed one) restores the old pace.
func TestNewUserRetunesTheWaitingLoop(t *testing.T) {
	srv := jwttest.NewServer(t, jwttest.NewEC(t, "ES256", "k1"))
	sc := testSource(srv.JWKSURL())
	sc.RefreshInterval = time.Hour
	sc.MaxStale = 0
	s := newURLSource(sc.sourceID, &sourceUser{logger: zaptest.NewLogger(t), tuning: sc.sourceTuning})
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	eventually(t, 5*time.Second, "first fetch", func() bool { return s.keySet() != nil })
	eventually(t, time.Second, "the loop plans the next fetch", func() bool { next, _ := s.sched.snapshot(); return time.Until(next) > 50*time.Minute })
	fast := sc.sourceTuning
	fast.RefreshInterval = time.Second
	user := &sourceUser{logger: zaptest.NewLogger(t), tuning: fast}
	s.users.add(user)
	hits := srv.Hits()
	eventually(t, 3*time.Second, "a fetch on the new 1s schedule", func() bool { return srv.Hits() > hits })
	s.users.remove(user)
	eventually(t, 3*time.Second, "back on the hourly schedule", func() bool { next, _ := s.sched.snapshot(); return time.Until(next) > 50*time.Minute })
}

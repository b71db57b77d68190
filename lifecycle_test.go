package jwtauth

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/certmagic"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// TestMain points Caddy's default storage at a fresh directory: URL sources
// persist key sets there, and a set left by an earlier run for
// a reused loopback port must never leak into this one.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jwtauth-storage-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddy.DefaultStorage = &certmagic.FileStorage{Path: dir}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// End-to-end key lifecycle tests (docs/design.md, "Key sources") through
// the one in-process Caddy of this test binary, against the fault-injecting
// jwttest.Server. None may run in parallel. Intervals are short (1s) so nothing sleeps long:
// every wait polls against a deadline.

// fastRefresh makes a fetcher refresh every second and allows an unknown-kid
// fetch every second.
const fastRefresh = "\trefresh_interval 1s\n\tmin_refresh_interval 1s\n\tfetch_timeout 2s"

// try sends one GET with a bearer token and returns status, a header and
// the body, or the transport error; it never fails the test, so it may run
// off the test goroutine.
func try(client *http.Client, token string) (int, http.Header, string, error) {
	req, err := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	if err != nil {
		return 0, nil, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body), err
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusOfToken is the status a request with tok gets.
func statusOfToken(t *testing.T, tc *caddytest.Tester, tok string) int {
	t.Helper()
	resp, _ := get(t, tc, "/", tok)
	return resp.StatusCode
}

func TestLifecycleRotationWithoutRestart(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block(fastRefresh)+"\n\trespond \"ok\"")
	f.ready(t, tc)
	old := f.key
	oldToken := f.token(t, nil)
	if s := statusOfToken(t, tc, oldToken); s != 200 {
		t.Fatalf("before rotation: %d", s)
	}
	// The IdP publishes a new key next to the old one and signs with it.
	next := jwttest.NewEC(t, "ES256", "key-2")
	f.jwks.SetKeys(old, next)
	f.key = next
	eventually(t, 5*time.Second, "token of the new kid accepted", func() bool {
		return statusOfToken(t, tc, f.token(t, nil)) == 200
	})
	if s := statusOfToken(t, tc, oldToken); s != 200 {
		t.Fatalf("old key still published, old token got %d", s)
	}
	// The IdP retires the old key: its tokens stop working, also the one
	// the verified-token cache remembers.
	f.jwks.SetKeys(next)
	eventually(t, 5*time.Second, "token of the removed kid rejected", func() bool {
		resp, _ := get(t, tc, "/", oldToken)
		return resp.StatusCode == 401 && strings.Contains(resp.Header.Get("WWW-Authenticate"), "unknown_kid")
	})
	if s := statusOfToken(t, tc, f.token(t, nil)); s != 200 {
		t.Fatalf("new key after retirement: %d", s)
	}
}

func TestLifecycleStartWithIssuerDown(t *testing.T) {
	f := newFixture(t)
	f.jwks.SetMode(jwttest.Down)
	tc := startCaddy(t, f.block(fastRefresh)+"\n\trespond \"ok\"")
	resp, _ := get(t, tc, "/", f.token(t, nil))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("issuer down at start: %d, want 503", resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 30 {
		t.Fatalf("Retry-After %q, want 1–30", resp.Header.Get("Retry-After"))
	}
	// Several seconds of outage: the backoff grows, yet the site recovers
	// within seconds of the IdP, with no reload.
	time.Sleep(3 * time.Second)
	f.jwks.SetMode(jwttest.Normal)
	up := time.Now()
	eventually(t, 10*time.Second, "200 once the issuer is up", func() bool {
		return statusOfToken(t, tc, f.token(t, nil)) == 200
	})
	t.Logf("recovered %s after the issuer came up", time.Since(up).Round(time.Millisecond))
}

func TestLifecycleIssuerFailuresKeepLoadedKeys(t *testing.T) {
	f := newFixture(t)
	f.jwks.SetETag(false) // every refresh is a full fetch that could replace the set
	tc := startCaddy(t, f.block(fastRefresh)+"\n\trespond \"ok\"")
	f.ready(t, tc)
	for _, m := range []struct {
		name string
		mode jwttest.Mode
	}{
		{"down", jwttest.Down}, {"500", jwttest.Status500}, {"garbage", jwttest.Garbage},
		{"empty", jwttest.Empty}, {"empty set", jwttest.EmptySet}, {"huge", jwttest.Huge},
	} {
		t.Run(m.name, func(t *testing.T) {
			f.jwks.SetMode(m.mode)
			defer f.jwks.SetMode(jwttest.Normal)
			hits := f.jwks.Hits()
			// Keep asserting 200 until the fetcher has tried the broken
			// server at least once (backoff is at most refresh_interval,
			// 1s, plus jitter; the deadline is generous for a loaded CI).
			refreshed := func() bool { return m.mode == jwttest.Down || f.jwks.Hits() > hits }
			end := time.Now().Add(1600 * time.Millisecond)
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(end) || !refreshed() {
				if time.Now().After(deadline) {
					t.Fatal("no refresh was attempted during the failure")
				}
				if s := statusOfToken(t, tc, f.token(t, nil)); s != 200 {
					t.Fatalf("valid token got %d while the issuer answers %s", s, m.name)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

func TestLifecycleUnknownKidFlood(t *testing.T) {
	f := newFixture(t)
	// No background refreshes during the flood: every fetch counted is one
	// the unknown kids caused.
	tc := startCaddy(t, f.block("\trefresh_interval 1h\n\tmin_refresh_interval 1s")+"\n\trespond \"ok\"")
	f.ready(t, tc)
	time.Sleep(1100 * time.Millisecond) // let the slot the first fetch used expire
	attacker := jwttest.NewEC(t, "ES256", "attacker")
	const requests, workers = 1000, 50
	tokens := make(chan string, requests)
	for i := range requests {
		claims := jwttest.Claims(f.issuer, "api", time.Minute)
		tokens <- jwttest.Sign(t, attacker, map[string]any{"kid": fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano())}, claims)
	}
	close(tokens)
	before := f.jwks.Hits()
	start := time.Now()
	var wg sync.WaitGroup
	var unexpected atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range tokens {
				status, h, _, err := try(tc.Client, tok)
				if err != nil || status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "unknown_kid") {
					unexpected.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	fetches := f.jwks.Hits() - before
	t.Logf("%d requests with random unknown kids in %s caused %d JWKS fetches", requests, took.Round(time.Millisecond), fetches)
	if n := unexpected.Load(); n != 0 {
		t.Fatalf("%d requests were not rejected with unknown_kid", n)
	}
	// One fetch per min_refresh_interval (1s) at most, plus one for a slot
	// opening at the edge.
	limit := int(took/time.Second) + 2
	if fetches < 1 || fetches > limit {
		t.Fatalf("%d fetches in %s, want 1..%d", fetches, took, limit)
	}
	if s := statusOfToken(t, tc, f.token(t, nil)); s != 200 {
		t.Fatalf("valid token after the flood: %d", s)
	}
}

func TestLifecycleETagNotModified(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block(fastRefresh)+"\n\trespond \"ok\"")
	f.ready(t, tc)
	eventually(t, 6*time.Second, "two 304 answers", func() bool { return f.jwks.NotModified() >= 2 })
	if full := f.jwks.Hits() - f.jwks.NotModified(); full != 1 {
		t.Fatalf("%d full responses, want only the first (the rest conditional)", full)
	}
	if s := statusOfToken(t, tc, f.token(t, nil)); s != 200 {
		t.Fatalf("after 304s: %d", s)
	}
	// A rotation changes the ETag and is picked up.
	next := jwttest.NewEC(t, "ES256", "key-2")
	f.jwks.SetKeys(next)
	f.key = next
	eventually(t, 5*time.Second, "rotated key after 304s", func() bool {
		return statusOfToken(t, tc, f.token(t, nil)) == 200
	})
}

func TestLifecycleMaxStale(t *testing.T) {
	f := newFixture(t)
	tc := startCaddy(t, f.block(fastRefresh+"\n\tmax_stale 3s")+"\n\trespond \"ok\"")
	f.ready(t, tc)
	f.jwks.SetMode(jwttest.Down)
	down := time.Now()
	if s := statusOfToken(t, tc, f.token(t, nil)); s != 200 {
		t.Fatalf("right after the outage began: %d", s)
	}
	var resp *http.Response
	eventually(t, 8*time.Second, "503 once the set is older than max_stale", func() bool {
		resp, _ = get(t, tc, "/", f.token(t, nil))
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// The set was fetched at most one refresh (1s) before the outage.
	if since := time.Since(down); since < 2*time.Second {
		t.Fatalf("set dropped %s into the outage, before max_stale", since)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 30 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	f.jwks.SetMode(jwttest.Normal)
	eventually(t, 10*time.Second, "200 after the issuer returns", func() bool {
		return statusOfToken(t, tc, f.token(t, nil)) == 200
	})
}

func TestLifecycleReloadWithUnchangedSource(t *testing.T) {
	f := newFixture(t)
	config := func(body string) string {
		return globalOptions + "\n" + siteURL + " {\n" + f.block("\trefresh_interval 1h") + "\n\trespond \"" + body + "\"\n}\n"
	}
	tc := startCaddy(t, f.block("\trefresh_interval 1h")+"\n\trespond \"v0\"")
	f.ready(t, tc)
	hits := f.jwks.Hits()
	stop := make(chan struct{})
	var statuses sync.Map // status -> count
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: tc.Client.Transport, Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, _, _, err := try(client, f.token(t, nil))
				if err != nil {
					status = -1
				}
				n, _ := statuses.LoadOrStore(status, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		}()
	}
	for i := 1; i <= 5; i++ {
		tc.InitServer(config(fmt.Sprintf("v%d", i)), "caddyfile")
	}
	close(stop)
	wg.Wait()
	statuses.Range(func(k, v any) bool {
		t.Logf("during reloads: status %v × %d", k, v.(*atomic.Int64).Load())
		// -1 is a connection Caddy closed while swapping listeners on
		// reload (grace_period 1ns): no HTTP answer, so not ours to judge.
		// Any HTTP status other than 200 (a 503 above all) is a failure.
		if k.(int) != 200 && k.(int) != -1 {
			t.Errorf("status %v during reloads with an unchanged key source", k)
		}
		return true
	})
	if ok, _ := statuses.Load(200); ok == nil || ok.(*atomic.Int64).Load() == 0 {
		t.Error("no request succeeded during the reloads")
	}
	if n := f.jwks.Hits() - hits; n != 0 {
		t.Fatalf("5 reloads with an unchanged source fetched %d times", n)
	}
	if resp, body := get(t, tc, "/", f.token(t, nil)); resp.StatusCode != 200 || body != "v5" {
		t.Fatalf("after reloads: %d %q", resp.StatusCode, body)
	}
}

// packageGoroutines counts goroutines running code of this package, not
// counting the tests' own (Caddy and net/http have goroutines of their own
// that goleak would see too).
func packageGoroutines() (int, string) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "caddy-jwt-auth.") && !strings.Contains(g, "_test.go") {
			n++
			ours = append(ours, g)
		}
	}
	return n, strings.Join(ours, "\n\n")
}

func TestLifecycleReloadsLeakNoGoroutines(t *testing.T) {
	a := newFixture(t)
	b := newFixture(t)
	b.issuer = "https://other-idp.example/"
	site := func(f *e2eFixture, body string) string {
		return globalOptions + "\n" + siteURL + " {\n" + f.block(fastRefresh) + "\n\trespond \"" + body + "\"\n}\n"
	}
	tc := startCaddy(t, a.block(fastRefresh)+"\n\trespond \"a\"")
	a.ready(t, tc)
	settle := func(limit int) (int, string) {
		tc.Client.CloseIdleConnections()
		var n int
		var stacks string
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, stacks = packageGoroutines()
			if n <= limit || time.Now().After(deadline) {
				return n, stacks
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	before, _ := settle(0)
	if before < 1 {
		t.Fatal("no fetcher goroutine found: the count would prove nothing")
	}
	// 30 reloads: A→A' keeps the fetcher, A'→B creates one for B and
	// destructs A's, B→A the other way round. Each config gets a request.
	for i := 1; i <= 30; i++ {
		var f *e2eFixture
		var body string
		switch i % 3 {
		case 1:
			f, body = a, "a-prime"
		case 2:
			f, body = b, "b"
		default:
			f, body = a, "a"
		}
		tc.InitServer(site(f, body), "caddyfile")
		eventually(t, 5*time.Second, "config "+body+" serves", func() bool {
			resp, got := get(t, tc, "/", f.token(t, nil))
			return resp.StatusCode == 200 && got == body
		})
	}
	after, stacks := settle(before)
	t.Logf("goroutines in this package: %d before, %d after 30 reloads", before, after)
	if after > before {
		t.Fatalf("goroutines grew from %d to %d:\n%s", before, after, stacks)
	}
}

// TestLifecycleJWKSFileRevocationIgnoresMtime: removing a key from a
// jwks_file revokes it within 5 s although the new file keeps the old
// modification time (cp -p, rsync -t, tar -x) and refresh_interval is an
// hour, including for a token the verified-token cache remembers.
func TestLifecycleJWKSFileRevocationIgnoresMtime(t *testing.T) {
	const issuer = "https://file-idp.example/"
	kept, revoked := jwttest.NewEC(t, "ES256", "kept"), jwttest.NewEC(t, "ES256", "revoked")
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, jwttest.JWKS(kept, revoked), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := startCaddy(t, "jwt_auth {\n\tissuer "+issuer+"\n\tjwks_file "+path+"\n\taudience api\n\trefresh_interval 1h\n}\nrespond \"ok\"")
	keptToken := jwttest.Sign(t, kept, nil, jwttest.Claims(issuer, "api", 5*time.Minute))
	revokedToken := jwttest.Sign(t, revoked, nil, jwttest.Claims(issuer, "api", 5*time.Minute))
	hits := value(t, tokenCacheHits)
	for range 3 {
		if s := statusOfToken(t, tc, revokedToken); s != 200 {
			t.Fatalf("before the swap: %d", s)
		}
	}
	if value(t, tokenCacheHits)-hits < 2 {
		t.Fatal("the token was not served from the verified-token cache: the test would not cover it")
	}
	replaceKeepingMtime(t, path, jwttest.JWKS(kept))
	swapped := time.Now()
	eventually(t, 5*time.Second, "the removed key's token rejected", func() bool {
		resp, _ := get(t, tc, "/", revokedToken)
		return resp.StatusCode == 401 && strings.Contains(resp.Header.Get("WWW-Authenticate"), "unknown_kid")
	})
	t.Logf("revoked %s after the swap", time.Since(swapped).Round(time.Millisecond))
	if s := statusOfToken(t, tc, keptToken); s != 200 {
		t.Fatalf("the key still in the file: %d", s)
	}
}

// TestLifecycleFailedReloadKeepsTheRunningConfigsLoggerAndStorage: config A
// runs with its own log file and storage directory. Config B shares A's key
// source, has a log file and storage of its own, and fails in a handler
// provisioned after jwt_auth, so Caddy keeps A. The shared source must then
// log and persist through A again, not through B's cleaned-up modules.
func TestLifecycleFailedReloadKeepsTheRunningConfigsLoggerAndStorage(t *testing.T) {
	f := newFixture(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	config := func(dir, after string) string {
		return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 1ns
	storage file_system %s
	log {
		output file %s
		format json
		level INFO
	}
}

%s {
	route {
		%s
		%s
		respond "ok"
	}
}
`, filepath.Join(dir, "storage"), filepath.Join(dir, "caddy.log"), siteURL, strings.ReplaceAll(f.block(fastRefresh), "\n", "\n\t\t"), after)
	}
	tc := caddytest.NewTester(t)
	tc.InitServer(config(dirA, ""), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	// Unload A before the directories go.
	t.Cleanup(func() { tc.InitServer(globalOptions+"\n"+siteURL+" {\n\trespond \"bye\"\n}\n", "caddyfile") })
	f.ready(t, tc)
	record := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "storage", filepath.FromSlash(storageKey(f.jwks.JWKSURL()))))
		return string(b)
	}
	logged := func(dir, kid string) bool {
		b, _ := os.ReadFile(filepath.Join(dir, "caddy.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"key set changed"`) && strings.Contains(line, `"added":["`+kid+`"]`) {
				return true
			}
		}
		return false
	}
	eventually(t, 5*time.Second, "A stores and logs the first set", func() bool {
		return strings.Contains(record(dirA), `\"kid\":\"key-1\"`) && logged(dirA, "key-1")
	})

	failing := `reverse_proxy 127.0.0.1:1 {
			transport http {
				tls_trust_pool file ` + filepath.Join(dirB, "missing-ca.pem") + `
			}
		}`
	resp, err := http.Post("http://localhost:2999/load", "text/caddyfile", strings.NewReader(config(dirB, failing)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "missing-ca.pem") {
		t.Fatalf("config B loaded (%d %s); it must fail after jwt_auth is provisioned", resp.StatusCode, body)
	}
	if s := statusOfToken(t, tc, f.token(t, nil)); s != 200 {
		t.Fatalf("config A after the failed reload: %d", s)
	}

	// The IdP rotates: the source logs and persists the new set, through A.
	next := jwttest.NewEC(t, "ES256", "key-2")
	f.jwks.SetKeys(f.key, next)
	eventually(t, 8*time.Second, "A's storage and log get the rotated set", func() bool {
		return strings.Contains(record(dirA), `\"kid\":\"key-2\"`) && logged(dirA, "key-2")
	})
	if strings.Contains(record(dirB), "key-2") || logged(dirB, "key-2") {
		t.Fatal("the rotated set went to the failed config's storage or log")
	}
}

package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// urlSource keeps a remote issuer's key set fresh in the background: OpenID
// Connect discovery when no jwks_url is given, conditional GETs, backoff,
// max_stale and the unknown-kid refresh (docs/design.md, "Key sources").
// Its mutable state is in small groups, each with its own guard: the key
// set and failing flag are atomics read on every request; sched says when
// to fetch; origin is what the current set was parsed from; store is what
// storage holds; storageBad marks an episode of storage trouble.
type urlSource struct {
	sourceBase
	client    *http.Client
	transport *http.Transport
	ctx       context.Context // from context.Background: outlives configs, not the pool entry
	cancel    context.CancelFunc
	started   atomic.Bool   // start ran, so done will be closed
	done      chan struct{} // closed when loop returns
	wake      chan struct{} // KeysWanted nudges the loop while there is no set
	group     singleflight.Group

	failing    atomic.Bool            // the latest fetch failed: max_stale is counting
	discovered atomic.Pointer[string] // jwks_uri from discovery; nil: discover on the next fetch
	sched      fetchSchedule
	origin     fetchedBody
	store      keyStore
	storageBad atomic.Bool // storage failed since it last worked: warned once
}

// fetchSchedule is when the source fetches and how its latest fetches went.
type fetchSchedule struct {
	mu          sync.Mutex
	lastAttempt time.Time // start of the latest fetch, for rate limits
	nextAttempt time.Time // when the loop fetches next, for Retry-After
	failures    int       // consecutive failed fetches, for backoff
	lastError   string
}

// fetchedBody is the response the current set came from: its ETag for
// conditional requests (valid for etagURL only), and the body for storage.
type fetchedBody struct {
	mu      sync.Mutex
	etag    string
	etagURL string
	body    []byte
}

func newURLSource(id sourceID, first *sourceUser) *urlSource {
	ctx, cancel := context.WithCancel(context.Background())
	s := &urlSource{
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		store:  keyStore{key: storageKey(id.sourceURL())},
	}
	s.init(id, first)
	s.client, s.transport = newHTTPClient()
	return s
}

// newHTTPClient returns a client of its own (so Destruct can close its idle
// connections), with redirects kept to the same host. Dialing and the TLS
// handshake have fixed ceilings; every request also runs under a context
// bounded by the fetch_timeout in force, which may change with the users.
func newHTTPClient() (*http.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, CheckRedirect: sameHostRedirects}, tr
}

// sameHostRedirects follows at most maxRedirects redirects, never to another
// host and never from https to http: a JWKS that moves elsewhere is a config
// change. via holds the requests made so far, so the n-th redirect sees n.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("more than %d redirects", maxRedirects)
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Host, first.Host) {
		return fmt.Errorf("redirect to another host %q refused", req.URL.Host)
	}
	if first.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirect from https to http refused")
	}
	return nil
}

// start launches the refresh loop. It never blocks: the stored set and the
// first fetch come from the loop.
func (s *urlSource) start() error {
	s.started.Store(true)
	go s.loop()
	return nil
}

// loadOnce fetches the set one time, bounded by fetch_timeout, without the
// loop's bookkeeping (the CLI reports errors itself).
func (s *urlSource) loadOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.tuning().FetchTimeout)
	defer cancel()
	_, err := s.fetch(ctx, time.Now())
	return err
}

// Destruct stops the loop and waits for it and for any fetch an unknown kid
// started, then lets go of the connections. The pool calls it when the last
// user releases, so nothing the source started outlives it.
func (s *urlSource) Destruct() error {
	s.cancel()
	if s.started.Load() {
		<-s.done
	}
	// Do joins a fetch still in flight (and returns once it ends) or runs
	// this no-op: either way no fetch goroutine is left afterwards.
	s.group.Do("fetch", func() (any, error) { return fetchResult{}, nil })
	s.transport.CloseIdleConnections()
	forgetIssuerMetrics(s.id.Issuer)
	return nil
}

// loop runs the source: the stored set first (served at once, and used
// instead of a fetch while it is current), then one refresh per period.
func (s *urlSource) loop() {
	defer close(s.done)
	cause := causeStart
	for {
		res := s.refreshShared(cause)
		cause = causeScheduled
		if !s.wait(res) {
			return
		}
	}
}

// wait sleeps until the next fetch is due, a request wants keys, or the
// source stops (false). A change of users re-plans the wait with the new
// tuning, so a reload that shortens refresh_interval takes effect without
// waiting out the old one.
func (s *urlSource) wait(res fetchResult) bool {
	next := res.next
	for {
		s.sched.setNext(res.at.Add(next))
		timer := time.NewTimer(time.Until(res.at.Add(next)))
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return false
		case <-s.wake:
			timer.Stop()
			return true
		case <-timer.C:
			return true
		case <-s.users.changed:
			timer.Stop()
			next = s.plan(res)
		}
	}
}

type fetchResult struct {
	at     time.Time     // when the fetch started
	maxAge time.Duration // freshness lifetime the server gave
	next   time.Duration // delay after at until the next fetch
	err    error
}

// refreshShared runs one refresh (fleet.go), coalesced with any already in
// flight.
func (s *urlSource) refreshShared(cause refreshCause) fetchResult {
	v, _, _ := s.group.Do("fetch", func() (any, error) {
		return s.refresh(cause), nil
	})
	return v.(fetchResult)
}

// fetchOnce performs a fetch and updates state, logs, metrics and backoff.
func (s *urlSource) fetchOnce() fetchResult {
	at := s.sched.attempt()
	tuning := s.tuning()
	ctx, cancel := context.WithTimeout(s.ctx, tuning.FetchTimeout)
	defer cancel()
	maxAge, err := s.fetch(ctx, at)
	if s.ctx.Err() != nil {
		// Shutting down: the error is ours, not the issuer's.
		return fetchResult{at: at, next: tuning.RefreshInterval, err: s.ctx.Err()}
	}
	observeFetch(s.id.Issuer, err)
	res := fetchResult{at: at, maxAge: maxAge, err: err}
	if err == nil {
		s.sched.succeeded()
		s.failing.Store(false)
		res.next = s.plan(res)
		return res
	}
	failures := s.sched.failed(err)
	s.failing.Store(true)
	s.warnFailure(err, failures)
	s.discovered.Store(nil) // discover again next time: the jwks_uri may have moved
	s.dropIfStale()
	res.next = s.plan(res)
	return res
}

// plan is how long after res the next fetch comes, with the tuning in force.
func (s *urlSource) plan(res fetchResult) time.Duration {
	if res.err == nil {
		return successDelay(s.tuning(), res.maxAge)
	}
	return backoff(s.tuning(), s.sched.failureCount(), s.state.Load() != nil)
}

// target is the JWKS URL a fetch can go to without discovery, or "".
func (s *urlSource) target() string {
	if s.id.JWKSURL != "" {
		return s.id.JWKSURL
	}
	if d := s.discovered.Load(); d != nil {
		return *d
	}
	return ""
}

// warnFailure logs a failed fetch with how old the kept set is.
func (s *urlSource) warnFailure(err error, failures int) {
	target := s.target()
	if target == "" {
		target = s.id.sourceURL()
	}
	fields := []zap.Field{zap.String("issuer", s.id.Issuer), zap.String("url", redactURL(target)), zap.Error(err)}
	if st := s.state.Load(); st != nil {
		fields = append(fields, zap.Duration("kept_set_age", time.Since(st.fetchedAt).Round(time.Second)))
		s.logger().Warn("fetching JWKS failed; keeping the last good key set", fields...)
		return
	}
	fields = append(fields, zap.Int("consecutive_failures", failures))
	s.logger().Warn("fetching JWKS failed; no key set for this issuer yet", fields...)
}

// dropIfStale forgets a set older than max_stale, so an issuer that stays
// unreachable ends in 503 rather than trusting keys it may have revoked.
func (s *urlSource) dropIfStale() {
	st := s.state.Load()
	maxStale := s.tuning().MaxStale
	if st != nil && tooOld(st, maxStale) && s.state.CompareAndSwap(st, nil) {
		s.logger().Warn("dropping key set older than max_stale: its issuer stays unreachable",
			zap.String("issuer", s.id.Issuer), zap.Duration("max_stale", maxStale),
			zap.Duration("age", time.Since(st.fetchedAt).Round(time.Second)))
	}
}

func tooOld(st *keyState, maxStale time.Duration) bool {
	return maxStale > 0 && time.Since(st.fetchedAt) > maxStale
}

// successDelay is refreshPeriod plus, after a max-age, up to 10% jitter so
// a fleet does not fetch in lockstep. Either way it is at most half of
// max_stale, so a set is always re-checked well before it could be dropped.
func successDelay(t sourceTuning, maxAge time.Duration) time.Duration {
	d := periodBase(t, maxAge)
	if maxAge > 0 {
		d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	}
	return capByMaxStale(t, d)
}

// refreshPeriod is how long a set fetched with the freshness lifetime maxAge
// stays current, before jitter: the server's max-age clamped to
// [min_refresh_interval, 24h], else refresh_interval, and at most half of
// max_stale.
func refreshPeriod(t sourceTuning, maxAge time.Duration) time.Duration {
	return capByMaxStale(t, periodBase(t, maxAge))
}

func periodBase(t sourceTuning, maxAge time.Duration) time.Duration {
	if maxAge > 0 {
		return min(max(maxAge, t.MinRefreshInterval), maxRefresh)
	}
	return t.RefreshInterval
}

func capByMaxStale(t sourceTuning, d time.Duration) time.Duration {
	if t.MaxStale > 0 {
		d = min(d, max(t.MaxStale/2, minBackoff))
	}
	return d
}

// backoff grows from 1 s, doubling per consecutive failure, with up to 50%
// jitter: up to refresh_interval while a set is kept, and up to 30 s while
// the issuer has none (so a site recovers within seconds of its IdP).
func backoff(t sourceTuning, failures int, haveSet bool) time.Duration {
	limit := t.RefreshInterval
	if !haveSet {
		limit = min(limit, maxEmptyBackoff)
	}
	limit = max(limit, minBackoff)
	base := min(minBackoff<<min(max(failures-1, 0), 16), limit)
	return min(base+time.Duration(rand.Int64N(int64(base)/2+1)), limit)
}

// fetch GETs the JWKS (discovering its URL first if need be) and installs it
// as fetched at started: the start of the fetch, not its end, so the time
// never flatters the set and, stored, spaces the fleet's fetches by whole
// min_refresh_intervals as an instance's own are. It returns the freshness
// lifetime the server gave.
func (s *urlSource) fetch(ctx context.Context, started time.Time) (time.Duration, error) {
	jwksURL, err := s.resolveJWKSURL(ctx)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	etag := s.origin.conditionalETag(jwksURL, s.state.Load() != nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer drainAndClose(resp.Body)
	maxAge := cacheLifetime(resp.Header, time.Now())
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return maxAge, s.confirm(jwksURL, started, maxAge)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := readCapped(resp.Body, maxJWKSBytes)
	if err != nil {
		return 0, err
	}
	return maxAge, s.accept(jwksURL, resp.Header.Get("ETag"), body, started, maxAge)
}

// resolveJWKSURL returns jwks_url, or the jwks_uri found by discovery.
func (s *urlSource) resolveJWKSURL(ctx context.Context) (string, error) {
	if target := s.target(); target != "" {
		return target, nil
	}
	discovered, err := s.discover(ctx)
	if err != nil {
		return "", err
	}
	s.discovered.Store(&discovered)
	return discovered, nil
}

// confirm handles a 304: the kept set is current again, which is a
// successful fetch (max_stale restarts), stored so the fleet sees it too.
func (s *urlSource) confirm(jwksURL string, fetchedAt time.Time, maxAge time.Duration) error {
	st := s.state.Load()
	if st == nil {
		return errors.New("304 Not Modified but no key set is kept")
	}
	s.state.Store(&keyState{set: st.set, fetchedAt: fetchedAt, source: "fetched", url: jwksURL})
	s.persist(jwksURL, fetchedAt, maxAge)
	return nil
}

// accept parses a 200 body and, if it holds usable keys, installs and
// persists it. A bad body leaves the current set as it is.
func (s *urlSource) accept(jwksURL, etag string, body []byte, fetchedAt time.Time, maxAge time.Duration) error {
	set, warnings, err := parseKeySet(body, false)
	if err != nil {
		return fmt.Errorf("key set: %w", err)
	}
	if s.origin.replace(jwksURL, etag, body) {
		s.logWarnings(warnings) // once per new body, not once per refresh
	}
	s.install(set, "fetched", jwksURL, fetchedAt)
	s.persist(jwksURL, fetchedAt, maxAge)
	return nil
}

// conditionalETag is the If-None-Match value for jwksURL: only while there
// is a set to keep, and only for the URL that ETag came from.
func (b *fetchedBody) conditionalETag(jwksURL string, haveSet bool) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !haveSet || b.etagURL != jwksURL {
		return ""
	}
	return b.etag
}

// replace records a 200 response and reports whether its body is new.
func (b *fetchedBody) replace(jwksURL, etag string, body []byte) (changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed = string(body) != string(b.body)
	b.etag, b.etagURL, b.body = etag, jwksURL, body
	return changed
}

// snapshot returns the body and its ETag.
func (b *fetchedBody) snapshot() (body []byte, etag string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.body, b.etag
}

// attempt records that a fetch starts now, and returns now.
func (f *fetchSchedule) attempt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAttempt = time.Now()
	return f.lastAttempt
}

// claim records a fetch starting now if the latest one began at least
// interval ago, and reports whether it did.
func (f *fetchSchedule) claim(interval time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.lastAttempt) < interval {
		return false
	}
	f.lastAttempt = time.Now()
	return true
}

// due reports whether the latest fetch began at least interval ago.
func (f *fetchSchedule) due(interval time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.lastAttempt) >= interval
}

func (f *fetchSchedule) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures, f.lastError = 0, ""
}

// failed records a failure and returns how many in a row there have been.
func (f *fetchSchedule) failed(err error) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures++
	f.lastError = err.Error()
	return f.failures
}

func (f *fetchSchedule) failureCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures
}

func (f *fetchSchedule) setNext(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextAttempt = t
}

// snapshot returns the next attempt and the latest error ("" if none).
func (f *fetchSchedule) snapshot() (next time.Time, lastError string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextAttempt, f.lastError
}

// discover reads the issuer's OpenID configuration and returns its jwks_uri.
func (s *urlSource) discover(ctx context.Context) (string, error) {
	target := discoveryURL(s.id.Issuer)
	if err := checkFetchURL(target); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer drainAndClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery: status %d", resp.StatusCode)
	}
	body, err := readCapped(resp.Body, maxDiscoveryBytes)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	return parseDiscovery(body, s.id.Issuer)
}

// parseDiscovery checks a discovery document and returns its jwks_uri. Its
// issuer must equal the configured one exactly (OpenID Connect Discovery
// §4.3), or a document could hand us another issuer's keys.
func parseDiscovery(body []byte, issuer string) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("discovery: document issuer %.128q does not equal the configured issuer %.128q", doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return "", errors.New("discovery: document has no jwks_uri")
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

// drainAndClose reads a little of what is left so the connection can be
// reused, then closes the body.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// readCapped reads at most limit bytes and fails on more, so a hostile or
// broken server cannot make us buffer without bound.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	if len(body) == 0 {
		return nil, errors.New("empty response")
	}
	return body, nil
}

// cacheLifetime reads the freshness lifetime of a response: max-age minus
// Age, else Expires minus now. no-cache, no-store, max-age=0 or an already
// expired response mean "use refresh_interval", reported as 0.
func cacheLifetime(h http.Header, now time.Time) time.Duration {
	var lifetime time.Duration
	found := false
	for _, cc := range h.Values("Cache-Control") {
		for directive := range strings.SplitSeq(strings.ToLower(cc), ",") {
			directive = strings.TrimSpace(directive)
			if directive == "no-cache" || directive == "no-store" {
				return 0
			}
			if v, ok := strings.CutPrefix(directive, "max-age="); ok && !found {
				secs, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
				if err != nil || secs <= 0 {
					return 0
				}
				lifetime = time.Duration(min(secs, int64(maxRefresh/time.Second))) * time.Second
				found = true
			}
		}
	}
	if found {
		if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
			lifetime -= time.Duration(min(age, int64(maxRefresh/time.Second))) * time.Second
		}
		return max(lifetime, 0)
	}
	if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
		return min(max(exp.Sub(now), 0), maxRefresh)
	}
	return 0
}

// keySet implements keySource. A set older than max_stale whose issuer's
// latest fetch failed is not used any more.
func (s *urlSource) keySet() *keySet {
	st := s.state.Load()
	if st == nil || (s.failing.Load() && tooOld(st, s.tuning().MaxStale)) {
		return nil
	}
	return st.set
}

// KeysWanted implements keySource: it wakes the loop (at most once per
// min_refresh_interval), so traffic gets a recovered issuer noticed without
// waiting for the backoff.
func (s *urlSource) KeysWanted() {
	if !s.sched.due(s.tuning().MinRefreshInterval) {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RefreshForUnknownKid implements keySource: one fetch in flight and at
// most one per min_refresh_interval; the request that triggers it waits
// (bounded by fetch_timeout), the rest get the current set at once — which
// still lacks their kid, so they are rejected without a fetch until the
// next slot. With a shared storage the slot may be served by a set another
// instance stored instead (fleet.go).
func (s *urlSource) RefreshForUnknownKid(ctx context.Context) *keySet {
	tuning := s.tuning()
	if s.ctx.Err() != nil || !s.sched.claim(tuning.MinRefreshInterval) {
		return s.keySet()
	}
	// The fetch runs on the source's context, not the request's: a client
	// that gives up must not abort a fetch other requests will benefit from.
	ch := s.group.DoChan("fetch", func() (any, error) { return s.refresh(causeUnknownKid), nil })
	timer := time.NewTimer(tuning.FetchTimeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-timer.C:
	}
	return s.keySet()
}

// RetryAfter implements keySource.
func (s *urlSource) RetryAfter() time.Duration {
	next, _ := s.sched.snapshot()
	return time.Until(next)
}

// status implements pooledSource. The URL is the one the current set came
// from, else the configured or discovered one, never with userinfo.
func (s *urlSource) status(now time.Time) fetcherStatus {
	st, ks := s.baseStatus(now)
	next, lastError := s.sched.snapshot()
	if !next.IsZero() {
		next = next.UTC()
		st.NextRefresh = &next
	}
	if lastError != "" {
		st.LastError = &lastError
	}
	switch {
	case ks != nil && ks.url != "":
		st.URL = ks.url
	case s.target() != "":
		st.URL = s.target()
	default:
		st.URL = s.id.sourceURL()
	}
	st.URL = redactURL(st.URL) // userinfo never leaves the process
	return st
}

package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Limits on what a key source will read and how often (SPEC "Keys").
const (
	maxJWKSBytes      = 1 << 20
	maxDiscoveryBytes = 256 << 10
	maxRefresh        = 24 * time.Hour
	minBackoff        = time.Second
	maxEmptyBackoff   = 30 * time.Second
	maxRedirects      = 3
	dialTimeout       = 10 * time.Second
)

// sourceConfig identifies one key source. Two handlers whose configs are
// equal share one fetcher (see pool.go), so every field that changes
// behaviour belongs here.
type sourceConfig struct {
	Issuer             string
	JWKSURL            string // "" with JWKSFile "": OpenID Connect discovery
	JWKSFile           string
	AllowHMAC          bool
	FetchTimeout       time.Duration
	RefreshInterval    time.Duration
	MinRefreshInterval time.Duration
	MaxStale           time.Duration
}

func (c sourceConfig) poolKey() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// sourceURL is the URL the source is configured with: jwks_url, or the
// discovery document's URL. It names the source in storage and in logs
// before discovery has run.
func (c sourceConfig) sourceURL() string {
	if c.JWKSURL != "" {
		return c.JWKSURL
	}
	return discoveryURL(c.Issuer)
}

// discoveryURL is the issuer minus one trailing "/", plus the well-known path
// (OpenID Connect Discovery §4).
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// checkFetchURL enforces SPEC "Keys": https, or http to a loopback host only,
// so keys can never be swapped by someone on the network path.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("URL %q has no host", redactURL(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("URL %q must use https (http is allowed only for loopback hosts)", redactURL(raw))
	default:
		return fmt.Errorf("URL %q must use https", redactURL(raw))
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops userinfo so credentials in a URL never reach a log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// keyState is a loaded key set and when its source last vouched for it.
type keyState struct {
	set       *KeySet
	fetchedAt time.Time // last 200 or 304 (for a stored set: as stored)
	source    string    // "fetched", "stored" or "file"
	url       string
}

// storageRef wraps the storage interface so it fits an atomic.Pointer.
type storageRef struct{ s certmagic.Storage }

// fetcher keeps one issuer's key set fresh in the background. It is shared
// through the pool and implements caddy.Destructor.
type fetcher struct {
	cfg       sourceConfig
	client    *http.Client
	transport *http.Transport
	ctx       context.Context // from context.Background: outlives configs, not the pool entry
	cancel    context.CancelFunc
	done      chan struct{} // closed when loop returns
	wake      chan struct{} // a request nudges the loop while there is no set
	logger    atomic.Pointer[zap.Logger]
	storage   atomic.Pointer[storageRef] // nil or nil s: no persistence
	state     atomic.Pointer[keyState]
	failing   atomic.Bool // the latest fetch failed: max_stale is counting
	group     singleflight.Group

	mu           sync.Mutex
	lastAttempt  time.Time // start of the latest fetch, for rate limits
	nextAttempt  time.Time // when the loop fetches next, for Retry-After
	lastError    string
	etag         string // ETag of body, valid for etagURL only
	etagURL      string
	body         []byte // the body behind the current set, for storage
	jwksURL      string // configured or discovered
	fileModTime  time.Time
	failureCount int
	persistedSum [sha256.Size]byte // body last written to (or read from) storage
	persistedAt  time.Time         // its fetched_at
}

// newFetcher builds a fetcher; start launches it. storage may be nil (no
// persistence).
func newFetcher(cfg sourceConfig, logger *zap.Logger, storage certmagic.Storage) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetcher{
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		jwksURL: cfg.JWKSURL,
	}
	f.client, f.transport = newHTTPClient(cfg.FetchTimeout)
	f.adopt(logger, storage)
	return f
}

// adopt makes f log to logger and persist to storage from now on: the pool
// calls it for every config that acquires f, so the newest config wins.
func (f *fetcher) adopt(logger *zap.Logger, storage certmagic.Storage) {
	if logger == nil {
		logger = zap.NewNop()
	}
	f.logger.Store(logger)
	f.storage.Store(&storageRef{s: storage})
}

// newHTTPClient returns a client of its own (so Destruct can close its idle
// connections) with a timeout on every phase and redirects kept to the same
// host.
func newHTTPClient(timeout time.Duration) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(timeout, dialTimeout), KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, dialTimeout),
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: sameHostRedirects}, tr
}

// sameHostRedirects follows at most a few redirects, never to another host
// and never from https to http: a JWKS that moves elsewhere is a config change.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.New("too many redirects")
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

// start launches the refresh loop. For a file source the first read is
// synchronous, so a missing or broken file is a config error. A remote
// source never blocks here: its stored set and first fetch come from the
// loop.
func (f *fetcher) start() error {
	if f.cfg.JWKSFile != "" {
		if err := f.readFile(); err != nil {
			return err
		}
	}
	go f.loop()
	return nil
}

// Destruct stops the loop and waits for it and for any fetch an unknown kid
// started, then lets go of the fetcher's connections. The pool calls it when
// the last user releases, so nothing the fetcher started outlives it.
func (f *fetcher) Destruct() error {
	f.cancel()
	<-f.done
	// Do joins a fetch still in flight (and returns once it ends) or runs
	// this no-op: either way no fetch goroutine is left afterwards.
	f.group.Do("fetch", func() (any, error) { return fetchResult{}, nil })
	f.transport.CloseIdleConnections()
	forgetIssuerMetrics(f.cfg.Issuer)
	return nil
}

func (f *fetcher) loop() {
	defer close(f.done)
	if f.cfg.JWKSFile == "" {
		f.loadStored()
	}
	for {
		delay := f.refresh()
		f.mu.Lock()
		f.nextAttempt = time.Now().Add(delay)
		f.mu.Unlock()
		timer := time.NewTimer(delay)
		select {
		case <-f.ctx.Done():
			timer.Stop()
			return
		case <-f.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// refresh loads keys once and returns how long to wait before the next time.
func (f *fetcher) refresh() time.Duration {
	if f.cfg.JWKSFile != "" {
		if err := f.readFile(); err != nil && f.ctx.Err() == nil {
			f.logger.Load().Warn("reading jwks_file failed; keeping the last good key set",
				zap.String("file", f.cfg.JWKSFile), zap.Error(err))
		}
		return f.cfg.RefreshInterval
	}
	return f.fetchShared().next
}

type fetchResult struct {
	next time.Duration
	err  error
}

// fetchShared runs one fetch, coalesced with any already in flight.
func (f *fetcher) fetchShared() fetchResult {
	v, _, _ := f.group.Do("fetch", func() (any, error) {
		return f.fetchOnce(), nil
	})
	return v.(fetchResult)
}

// fetchOnce performs a fetch and updates state, logs, metrics and backoff.
func (f *fetcher) fetchOnce() fetchResult {
	f.mu.Lock()
	f.lastAttempt = time.Now()
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.FetchTimeout)
	defer cancel()
	maxAge, err := f.fetch(ctx)
	if f.ctx.Err() != nil {
		// Shutting down: the error is ours, not the issuer's.
		return fetchResult{next: f.cfg.RefreshInterval, err: f.ctx.Err()}
	}
	observeFetch(f.cfg.Issuer, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.failureCount = 0
		f.lastError = ""
		f.failing.Store(false)
		return fetchResult{next: f.successDelay(maxAge)}
	}
	f.failureCount++
	f.lastError = err.Error()
	f.failing.Store(true)
	f.warnFailure(err)
	if f.cfg.JWKSURL == "" {
		f.jwksURL = "" // discover again next time: the jwks_uri may have moved
	}
	f.dropIfStale()
	return fetchResult{next: f.backoff(f.state.Load() != nil), err: err}
}

// jwksURLOrDiscovery is the URL the next fetch starts from.
func (f *fetcher) jwksURLOrDiscovery() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jwksURL != "" {
		return f.jwksURL
	}
	return f.cfg.sourceURL()
}

// warnFailure logs a failed fetch with how old the kept set is. Call with
// f.mu held.
func (f *fetcher) warnFailure(err error) {
	target := f.jwksURL
	if target == "" {
		target = f.cfg.sourceURL()
	}
	fields := []zap.Field{zap.String("issuer", f.cfg.Issuer), zap.String("url", redactURL(target)), zap.Error(err)}
	if st := f.state.Load(); st != nil {
		fields = append(fields, zap.Duration("kept_set_age", time.Since(st.fetchedAt).Round(time.Second)))
		f.logger.Load().Warn("fetching JWKS failed; keeping the last good key set", fields...)
		return
	}
	fields = append(fields, zap.Int("consecutive_failures", f.failureCount))
	f.logger.Load().Warn("fetching JWKS failed; no key set for this issuer yet", fields...)
}

// dropIfStale forgets a set older than max_stale, so an issuer that stays
// unreachable ends in 503 rather than trusting keys it may have revoked.
func (f *fetcher) dropIfStale() {
	st := f.state.Load()
	if st != nil && f.tooOld(st) && f.state.CompareAndSwap(st, nil) {
		f.logger.Load().Warn("dropping key set older than max_stale: its issuer stays unreachable",
			zap.String("issuer", f.cfg.Issuer), zap.Duration("max_stale", f.cfg.MaxStale),
			zap.Duration("age", time.Since(st.fetchedAt).Round(time.Second)))
	}
}

func (f *fetcher) tooOld(st *keyState) bool {
	return f.cfg.MaxStale > 0 && time.Since(st.fetchedAt) > f.cfg.MaxStale
}

// successDelay follows the server's max-age, clamped to
// [min_refresh_interval, 24h], with up to 10% jitter so a fleet does not
// fetch in lockstep; without one it is refresh_interval. Either way it is at
// most half of max_stale, so a set is always re-checked well before it could
// be dropped.
func (f *fetcher) successDelay(maxAge time.Duration) time.Duration {
	d := f.cfg.RefreshInterval
	if maxAge > 0 {
		d = min(max(maxAge, f.cfg.MinRefreshInterval), maxRefresh)
		d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	}
	if f.cfg.MaxStale > 0 {
		d = min(d, max(f.cfg.MaxStale/2, minBackoff))
	}
	return d
}

// backoff grows from 1 s, doubling per consecutive failure, with up to 50%
// jitter: up to refresh_interval while a set is kept, and up to 30 s while
// the issuer has none (so a site recovers within seconds of its IdP).
func (f *fetcher) backoff(haveSet bool) time.Duration {
	limit := f.cfg.RefreshInterval
	if !haveSet {
		limit = min(limit, maxEmptyBackoff)
	}
	limit = max(limit, minBackoff)
	base := min(minBackoff<<min(max(f.failureCount-1, 0), 16), limit)
	return min(base+time.Duration(rand.Int64N(int64(base)/2+1)), limit)
}

// fetch GETs the JWKS (discovering its URL first if need be) and installs it.
// It returns the freshness lifetime the server gave.
func (f *fetcher) fetch(ctx context.Context) (time.Duration, error) {
	jwksURL, err := f.resolveJWKSURL(ctx)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	etag := f.conditionalETag(jwksURL)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer drainAndClose(resp.Body)
	maxAge := cacheLifetime(resp.Header, time.Now())
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return maxAge, f.confirm(jwksURL)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := readCapped(resp.Body, maxJWKSBytes)
	if err != nil {
		return 0, err
	}
	return maxAge, f.accept(jwksURL, resp.Header.Get("ETag"), body)
}

// resolveJWKSURL returns jwks_url, or the jwks_uri found by discovery.
func (f *fetcher) resolveJWKSURL(ctx context.Context) (string, error) {
	f.mu.Lock()
	jwksURL := f.jwksURL
	f.mu.Unlock()
	if jwksURL != "" {
		return jwksURL, nil
	}
	discovered, err := f.discover(ctx)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.jwksURL = discovered
	f.mu.Unlock()
	return discovered, nil
}

// conditionalETag is the If-None-Match value for jwksURL: only while there
// is a set to keep, and only for the URL that ETag came from.
func (f *fetcher) conditionalETag(jwksURL string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.Load() == nil || f.etagURL != jwksURL {
		return ""
	}
	return f.etag
}

// confirm handles a 304: the kept set is current again, which is a
// successful fetch (max_stale restarts).
func (f *fetcher) confirm(jwksURL string) error {
	st := f.state.Load()
	if st == nil {
		return errors.New("304 Not Modified but no key set is kept")
	}
	now := time.Now()
	f.state.Store(&keyState{set: st.set, fetchedAt: now, source: "fetched", url: jwksURL})
	f.persist(jwksURL, now)
	return nil
}

// accept parses a 200 body and, if it holds usable keys, installs and
// persists it. A bad body leaves the current set as it is.
func (f *fetcher) accept(jwksURL, etag string, body []byte) error {
	set, warnings, err := parseKeySet(body, false)
	if err != nil {
		return fmt.Errorf("key set: %w", err)
	}
	f.mu.Lock()
	changed := string(body) != string(f.body)
	f.etag, f.etagURL, f.body = etag, jwksURL, body
	f.mu.Unlock()
	if changed {
		f.logWarnings(warnings) // once per new body, not once per refresh
	}
	now := time.Now()
	f.install(set, "fetched", jwksURL, now)
	f.persist(jwksURL, now)
	return nil
}

// discover reads the issuer's OpenID configuration and returns its jwks_uri.
func (f *fetcher) discover(ctx context.Context) (string, error) {
	target := discoveryURL(f.cfg.Issuer)
	if err := checkFetchURL(target); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
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
	return parseDiscovery(body, f.cfg.Issuer)
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

// readFile loads jwks_file when its modification time has changed.
func (f *fetcher) readFile() error {
	info, err := os.Stat(f.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("jwks_file: %w", err)
	}
	f.mu.Lock()
	unchanged := info.ModTime().Equal(f.fileModTime) && f.state.Load() != nil
	f.mu.Unlock()
	if unchanged {
		return nil
	}
	data, err := os.ReadFile(f.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("jwks_file: %w", err)
	}
	set, warnings, err := parseKeySet(data, f.cfg.AllowHMAC)
	f.logWarnings(warnings)
	if err != nil {
		return fmt.Errorf("jwks_file %s: %w", f.cfg.JWKSFile, err)
	}
	f.mu.Lock()
	f.fileModTime = info.ModTime()
	f.mu.Unlock()
	f.install(set, "file", f.cfg.JWKSFile, time.Now())
	return nil
}

// install replaces the current set and logs which kids came and went.
func (f *fetcher) install(set *KeySet, source, from string, fetchedAt time.Time) {
	old := f.state.Swap(&keyState{set: set, fetchedAt: fetchedAt, source: source, url: from})
	added, removed := diffKids(old, set)
	if len(added) > 0 || len(removed) > 0 {
		f.logger.Load().Info("key set changed", zap.String("issuer", f.cfg.Issuer),
			zap.String("source", source), zap.String("url", redactURL(from)),
			zap.Strings("added", added), zap.Strings("removed", removed))
	}
}

// diffKids names the keys (by kid) that set adds to and removes from old,
// comparing key material so a re-used kid with a new key counts as both.
func diffKids(old *keyState, set *KeySet) (added, removed []string) {
	before := map[string]bool{}
	if old != nil {
		for _, k := range old.set.Keys {
			before[k.Fingerprint()] = true
		}
	}
	for _, k := range set.Keys {
		if !before[k.Fingerprint()] {
			added = append(added, truncate(k.ID, 128))
		}
		delete(before, k.Fingerprint())
	}
	if old != nil {
		for _, k := range old.set.Keys {
			if before[k.Fingerprint()] {
				removed = append(removed, truncate(k.ID, 128))
			}
		}
	}
	return added, removed
}

func (f *fetcher) logWarnings(warnings []string) {
	for _, w := range warnings {
		f.logger.Load().Warn("key set entry skipped", zap.String("issuer", f.cfg.Issuer), zap.String("detail", w))
	}
}

// KeySet implements KeySource. A set older than max_stale whose issuer's
// latest fetch failed is not used any more. While there is no set it nudges
// the loop (at most once per min_refresh_interval), so traffic gets a
// recovered issuer noticed without waiting for the backoff.
func (f *fetcher) KeySet() *KeySet {
	st := f.state.Load()
	if st != nil && !(f.failing.Load() && f.tooOld(st)) {
		return st.set
	}
	f.nudge()
	return nil
}

func (f *fetcher) nudge() {
	if f.cfg.JWKSFile != "" {
		return
	}
	f.mu.Lock()
	due := time.Since(f.lastAttempt) >= f.cfg.MinRefreshInterval
	f.mu.Unlock()
	if due {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// RefreshForUnknownKey implements KeySource: one fetch in flight and at most
// one per min_refresh_interval; the request that triggers it waits (bounded by
// fetch_timeout), the rest get the current set at once — which still lacks
// their kid, so they are rejected without a fetch until the next slot.
func (f *fetcher) RefreshForUnknownKey(ctx context.Context, _ string) *KeySet {
	if f.cfg.JWKSFile != "" || f.ctx.Err() != nil {
		return f.KeySet()
	}
	f.mu.Lock()
	allowed := time.Since(f.lastAttempt) >= f.cfg.MinRefreshInterval
	if allowed {
		f.lastAttempt = time.Now() // claim the slot before the fetch starts
	}
	f.mu.Unlock()
	if !allowed {
		return f.KeySet()
	}
	// The fetch runs on the fetcher's context, not the request's: a client
	// that gives up must not abort a fetch other requests will benefit from.
	ch := f.group.DoChan("fetch", func() (any, error) { return f.fetchOnce(), nil })
	timer := time.NewTimer(f.cfg.FetchTimeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-timer.C:
	}
	return f.KeySet()
}

// RetryAfter implements KeySource.
func (f *fetcher) RetryAfter() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Until(f.nextAttempt)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

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
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Limits on what a key source will read (SPEC "Keys").
const (
	maxJWKSBytes      = 1 << 20
	maxDiscoveryBytes = 256 << 10
	maxRefresh        = 24 * time.Hour
	minBackoff        = time.Second
	maxEmptyBackoff   = 30 * time.Second
	maxRedirects      = 3
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

// keyState is a loaded key set and when it was fetched.
type keyState struct {
	set       *KeySet
	fetchedAt time.Time
	source    string // "fetched", "stored" or "file"
	url       string
}

// fetcher keeps one issuer's key set fresh in the background. It is shared
// through the pool and implements caddy.Destructor.
type fetcher struct {
	cfg    sourceConfig
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}
	logger atomic.Pointer[zap.Logger]
	state  atomic.Pointer[keyState]
	group  singleflight.Group

	mu           sync.Mutex
	lastAttempt  time.Time // start of the latest fetch, for rate limits
	nextAttempt  time.Time // when the loop fetches next, for Retry-After
	lastError    string
	etag         string
	jwksURL      string // configured or discovered
	fileModTime  time.Time
	failureCount int
}

func newFetcher(cfg sourceConfig, logger *zap.Logger) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetcher{
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		jwksURL: cfg.JWKSURL,
	}
	f.client = &http.Client{Timeout: cfg.FetchTimeout, CheckRedirect: sameHostRedirects}
	f.logger.Store(logger)
	return f
}

// sameHostRedirects follows at most a few redirects, never to another host
// and never from https to http: a JWKS that moves elsewhere is a config change.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.New("too many redirects")
	}
	first := via[0].URL
	if req.URL.Host != first.Host {
		return fmt.Errorf("redirect to another host %q refused", req.URL.Host)
	}
	if first.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirect from https to http refused")
	}
	return nil
}

// start launches the refresh loop. For a file source the first read is
// synchronous, so a missing or broken file is a config error.
func (f *fetcher) start() error {
	if f.cfg.JWKSFile != "" {
		if err := f.readFile(); err != nil {
			return err
		}
	}
	go f.loop()
	return nil
}

// Destruct stops the loop; the pool calls it when the last user releases.
func (f *fetcher) Destruct() error {
	f.cancel()
	<-f.done
	forgetIssuerMetrics(f.cfg.Issuer)
	return nil
}

func (f *fetcher) loop() {
	defer close(f.done)
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
		if f.state.Load() != nil || f.ctx.Err() == nil {
			if err := f.readFile(); err != nil {
				f.logger.Load().Warn("reading jwks_file failed; keeping the last good key set",
					zap.String("file", f.cfg.JWKSFile), zap.Error(err))
			}
		}
		return f.cfg.RefreshInterval
	}
	res := f.fetchShared()
	return res.next
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

// fetchOnce performs a fetch and updates state, logs and backoff.
func (f *fetcher) fetchOnce() fetchResult {
	f.mu.Lock()
	f.lastAttempt = time.Now()
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.FetchTimeout)
	defer cancel()
	maxAge, err := f.fetch(ctx)
	observeFetch(f.cfg.Issuer, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.failureCount = 0
		f.lastError = ""
		return fetchResult{next: f.successDelay(maxAge)}
	}
	f.failureCount++
	f.lastError = err.Error()
	f.dropIfStale()
	st := f.state.Load()
	fields := []zap.Field{zap.String("issuer", f.cfg.Issuer), zap.String("url", redactURL(f.jwksURLOrDiscovery())), zap.Error(err)}
	if st != nil {
		fields = append(fields, zap.Duration("kept_set_age", time.Since(st.fetchedAt).Round(time.Second)))
	}
	if f.ctx.Err() == nil {
		f.logger.Load().Warn("fetching JWKS failed; keeping the last good key set", fields...)
	}
	return fetchResult{next: f.backoff(st != nil), err: err}
}

func (f *fetcher) jwksURLOrDiscovery() string {
	if f.jwksURL != "" {
		return f.jwksURL
	}
	return discoveryURL(f.cfg.Issuer)
}

// dropIfStale forgets a set older than max_stale, so an issuer that stays
// unreachable ends in 503 rather than trusting keys it may have revoked.
func (f *fetcher) dropIfStale() {
	st := f.state.Load()
	if st != nil && f.cfg.MaxStale > 0 && time.Since(st.fetchedAt) > f.cfg.MaxStale {
		f.state.Store(nil)
		f.logger.Load().Warn("dropping key set older than max_stale",
			zap.String("issuer", f.cfg.Issuer), zap.Duration("max_stale", f.cfg.MaxStale))
	}
}

// successDelay follows the server's max-age, clamped to
// [min_refresh_interval, 24h], with up to 10% jitter so a fleet does not
// fetch in lockstep.
func (f *fetcher) successDelay(maxAge time.Duration) time.Duration {
	if maxAge <= 0 {
		return f.cfg.RefreshInterval
	}
	d := min(max(maxAge, f.cfg.MinRefreshInterval), maxRefresh)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// backoff doubles from 1 s with jitter: up to 30 s while the issuer has no
// usable set (so a site recovers quickly), else up to refresh_interval.
func (f *fetcher) backoff(haveSet bool) time.Duration {
	limit := f.cfg.RefreshInterval
	if !haveSet {
		limit = min(limit, maxEmptyBackoff)
	}
	d := minBackoff << min(f.failureCount-1, 16)
	d = min(d, limit)
	return d/2 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// fetch GETs the JWKS (discovering its URL first if need be) and installs it.
// It returns the max-age the server asked for.
func (f *fetcher) fetch(ctx context.Context) (time.Duration, error) {
	f.mu.Lock()
	jwksURL, etag := f.jwksURL, f.etag
	f.mu.Unlock()
	if jwksURL == "" {
		discovered, err := f.discover(ctx)
		if err != nil {
			return 0, err
		}
		jwksURL = discovered
		f.mu.Lock()
		f.jwksURL = discovered
		f.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if etag != "" && f.state.Load() != nil {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	maxAge := cacheLifetime(resp.Header, time.Now())
	if resp.StatusCode == http.StatusNotModified {
		if st := f.state.Load(); st != nil {
			f.state.Store(&keyState{set: st.set, fetchedAt: time.Now(), source: "fetched", url: jwksURL})
		}
		return maxAge, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := readCapped(resp.Body, maxJWKSBytes)
	if err != nil {
		return 0, err
	}
	set, warnings, err := ParseKeySet(body, LoadOptions{})
	f.logWarnings(warnings)
	if err != nil {
		return 0, err
	}
	f.install(set, "fetched", jwksURL)
	f.mu.Lock()
	f.etag = resp.Header.Get("ETag")
	f.mu.Unlock()
	return maxAge, nil
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
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery: status %d", resp.StatusCode)
	}
	body, err := readCapped(resp.Body, maxDiscoveryBytes)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != f.cfg.Issuer {
		return "", fmt.Errorf("discovery: document issuer %.128q does not equal the configured issuer", doc.Issuer)
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

// readCapped reads at most limit bytes and fails on more, so a hostile or
// broken server cannot make us buffer without bound.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	if len(body) == 0 {
		return nil, errors.New("empty response")
	}
	return body, nil
}

// cacheLifetime reads max-age (or Expires) from a response. no-cache,
// no-store or max-age=0 mean "use refresh_interval", reported as 0.
func cacheLifetime(h http.Header, now time.Time) time.Duration {
	cc := strings.ToLower(h.Get("Cache-Control"))
	for directive := range strings.SplitSeq(cc, ",") {
		directive = strings.TrimSpace(directive)
		if directive == "no-cache" || directive == "no-store" {
			return 0
		}
		if v, ok := strings.CutPrefix(directive, "max-age="); ok {
			secs, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || secs <= 0 {
				return 0
			}
			return time.Duration(min(secs, int64(maxRefresh/time.Second))) * time.Second
		}
	}
	if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
		return max(exp.Sub(now), 0)
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
	set, warnings, err := ParseKeySet(data, LoadOptions{AllowHMAC: f.cfg.AllowHMAC})
	f.logWarnings(warnings)
	if err != nil {
		return fmt.Errorf("jwks_file %s: %w", f.cfg.JWKSFile, err)
	}
	f.mu.Lock()
	f.fileModTime = info.ModTime()
	f.mu.Unlock()
	f.install(set, "file", f.cfg.JWKSFile)
	return nil
}

// install replaces the current set and logs which kids came and went.
func (f *fetcher) install(set *KeySet, source, from string) {
	old := f.state.Swap(&keyState{set: set, fetchedAt: time.Now(), source: source, url: from})
	added, removed := diffKids(old, set)
	if len(added) > 0 || len(removed) > 0 {
		f.logger.Load().Info("key set changed", zap.String("issuer", f.cfg.Issuer),
			zap.String("source", source), zap.Strings("added", added), zap.Strings("removed", removed))
	}
}

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
		f.logger.Load().Warn("key set entry", zap.String("issuer", f.cfg.Issuer), zap.String("detail", w))
	}
}

// KeySet implements KeySource. While there is no set it nudges the loop
// (at most once a second) so a recovered issuer is noticed at once.
func (f *fetcher) KeySet() *KeySet {
	if st := f.state.Load(); st != nil {
		return st.set
	}
	f.mu.Lock()
	due := time.Since(f.lastAttempt) >= minBackoff
	f.mu.Unlock()
	if due && f.cfg.JWKSFile == "" {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// RefreshForUnknownKey implements KeySource: one fetch in flight and at most
// one per min_refresh_interval; the request that triggers it waits (bounded by
// fetch_timeout), the rest get the current set at once.
func (f *fetcher) RefreshForUnknownKey(ctx context.Context, _ string) *KeySet {
	if f.cfg.JWKSFile != "" {
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

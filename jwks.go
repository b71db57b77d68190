package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Limits on what a key source will read and how often (docs/design.md,
// "Key sources").
const (
	maxJWKSBytes      = 1 << 20
	maxDiscoveryBytes = 256 << 10
	maxRefresh        = 24 * time.Hour
	minBackoff        = time.Second
	maxEmptyBackoff   = 30 * time.Second
	maxRedirects      = 3 // redirects followed; the next one is refused
	dialTimeout       = 10 * time.Second
)

// keySource supplies one issuer's current keys to the verifier. urlSource
// and fileSource are the module's implementations; the CLI uses a set loaded
// once.
type keySource interface {
	// keySet is a pure read: the usable set, or nil while the issuer has
	// none (never loaded, or dropped after max_stale).
	keySet() *keySet
	// KeysWanted tells the source that a request found no set, so it may
	// wake its loader (at most once per min_refresh_interval). It never
	// blocks.
	KeysWanted()
	// RefreshForUnknownKid is a coalesced, rate-limited re-fetch for a
	// token whose key is not in the set. It waits at most fetch_timeout and
	// returns the set to try again with, possibly the same one.
	RefreshForUnknownKid(ctx context.Context) *keySet
	// RetryAfter is how long until the source next tries to load keys,
	// for the Retry-After header of a 503.
	RetryAfter() time.Duration
}

// pooledSource is a keySource as the pool, the admin API and the CLI see it.
// urlSource (source_url.go) and fileSource (source_file.go) implement it;
// newKeySource is the one place that picks between them.
type pooledSource interface {
	keySource
	caddy.Destructor
	// base is the part every source shares: identity, users, current set.
	base() *sourceBase
	// start launches the background loader. An error is a config error.
	start() error
	// loadOnce loads keys one time without the loader (the CLI).
	loadOnce(ctx context.Context) error
	// status snapshots the source for GET /jwt_auth/status and the metrics.
	status(now time.Time) fetcherStatus
}

// sourceID identifies one key source: handlers whose sourceIDs are equal
// share one pooled source, whatever their tuning. AllowHMAC belongs here
// because it changes what a jwks_file yields.
type sourceID struct {
	Issuer    string
	JWKSURL   string // "" with JWKSFile "": OpenID Connect discovery
	JWKSFile  string
	AllowHMAC bool
}

func (id sourceID) poolKey() string {
	b, _ := json.Marshal(id)
	return string(b)
}

// sourceURL is the URL a remote source is configured with: jwks_url, or the
// discovery document's URL. It names the source in storage and in logs
// before discovery has run.
func (id sourceID) sourceURL() string {
	if id.JWKSURL != "" {
		return id.JWKSURL
	}
	return discoveryURL(id.Issuer)
}

// name is how logs and warnings name the source: the file path or the
// configured URL without userinfo.
func (id sourceID) name() string {
	if id.JWKSFile != "" {
		return id.JWKSFile
	}
	return redactURL(id.sourceURL())
}

// sourceTuning is how a source paces itself. It is not part of the source's
// identity: it comes from the newest live user (userRegistry).
type sourceTuning struct {
	FetchTimeout       time.Duration
	RefreshInterval    time.Duration
	MinRefreshInterval time.Duration
	MaxStale           time.Duration
}

func (t sourceTuning) fields() []zap.Field {
	return []zap.Field{zap.Duration("fetch_timeout", t.FetchTimeout), zap.Duration("refresh_interval", t.RefreshInterval),
		zap.Duration("min_refresh_interval", t.MinRefreshInterval), zap.Duration("max_stale", t.MaxStale)}
}

// sourceConfig is one handler's view of an issuer's key source.
type sourceConfig struct {
	sourceID
	sourceTuning
}

// discoveryURL is the issuer minus one trailing "/", plus the well-known path
// (OpenID Connect Discovery §4).
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// checkFetchURL allows https, or http to a loopback host only, so keys can
// never be swapped by someone on the network path (docs/design.md, "Trust
// boundaries").
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

// newKeySource builds the source sc names, with first as its first user.
// Call start to launch it, or loadOnce for a single load.
func newKeySource(sc sourceConfig, first *sourceUser) pooledSource {
	if sc.JWKSFile != "" {
		return newFileSource(sc.sourceID, first)
	}
	return newURLSource(sc.sourceID, first)
}

// keyState is a loaded key set and when its source last vouched for it.
type keyState struct {
	set       *keySet
	fetchedAt time.Time // last 200 or 304, or when the file content was read (for a stored set: as stored)
	source    string    // "fetched", "stored" or "file"
	url       string
}

// sourceBase is what both source types share: who they are, who uses them,
// and the key set they currently serve.
type sourceBase struct {
	id    sourceID
	users userRegistry
	state atomic.Pointer[keyState]
}

// init sets the identity and the first user; the source types call it
// right after allocating themselves.
func (b *sourceBase) init(id sourceID, first *sourceUser) {
	b.id = id
	b.users.init(first)
}

func (b *sourceBase) base() *sourceBase { return b }

// logger, storage and tuning are the newest live user's.
func (b *sourceBase) logger() *zap.Logger        { return b.users.newest().logger }
func (b *sourceBase) storage() certmagic.Storage { return b.users.newest().storage }
func (b *sourceBase) tuning() sourceTuning       { return b.users.newest().tuning }

// install replaces the current set and logs which kids came and went.
func (b *sourceBase) install(set *keySet, source, from string, fetchedAt time.Time) {
	old := b.state.Swap(&keyState{set: set, fetchedAt: fetchedAt, source: source, url: from})
	added, removed := diffKids(old, set)
	if len(added) > 0 || len(removed) > 0 {
		b.logger().Info("key set changed", zap.String("issuer", b.id.Issuer),
			zap.String("source", source), zap.String("url", redactURL(from)),
			zap.Strings("added", added), zap.Strings("removed", removed))
	}
}

// diffKids names the keys (by kid) that set adds to and removes from old,
// comparing key material so a re-used kid with a new key counts as both.
func diffKids(old *keyState, set *keySet) (added, removed []string) {
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

func (b *sourceBase) logWarnings(warnings []string) {
	for _, w := range warnings {
		b.logger().Warn("key set entry skipped", zap.String("issuer", b.id.Issuer), zap.String("detail", w))
	}
}

// baseStatus is the part of a status both source types fill the same way:
// the issuer and what the current set holds.
func (b *sourceBase) baseStatus(now time.Time) (fetcherStatus, *keyState) {
	st := fetcherStatus{Issuer: b.id.Issuer, Kids: []string{}, Algorithms: []string{}}
	for _, u := range b.users.snapshot() {
		st.ReportOnly = st.ReportOnly || u.reportOnly
	}
	ks := b.state.Load()
	if ks != nil {
		source, fetched := ks.source, ks.fetchedAt.UTC()
		age := roundMillis(now.Sub(ks.fetchedAt).Seconds())
		st.Source, st.FetchedAt, st.AgeSeconds = &source, &fetched, &age
		st.Kids = ks.set.Kids()
		st.Algorithms = verifiableAlgorithms(ks.set)
	}
	return st, ks
}

// sourceUser is one acquirer of a pooled source (a handler of some config)
// with the logger, storage and tuning that config gives it.
type sourceUser struct {
	// config identifies the config that registered the user: Caddy creates
	// one metrics registry per config load, shared by all its modules.
	// It is only compared, never used.
	config  *prometheus.Registry
	logger  *zap.Logger
	storage certmagic.Storage // nil: no persistence
	tuning  sourceTuning
	// resource is the handler's protected resource, for the status
	// endpoint; nil without one.
	resource *resourceStatus
	// reportOnly: the handler does not enforce its verdicts, which the
	// status endpoint shows on the source.
	reportOnly bool
}

// userRegistry lists a source's live users in registration order; the
// newest live one speaks for the source. A reload provisions the new config
// (registering its users) before the old one is cleaned up, so the source
// moves to the new config's logger, storage and tuning; a reload that fails
// cleans up its own users, so the source is back on the running config's.
type userRegistry struct {
	mu   sync.Mutex
	live []*sourceUser
	// current is the last of live. It is kept after the last release so
	// Destruct can still log.
	current atomic.Pointer[sourceUser]
	// changed is signalled (never blocking) when current changes, so a
	// loader can re-plan with the new tuning.
	changed chan struct{}
}

func (r *userRegistry) init(first *sourceUser) {
	if first.logger == nil {
		first.logger = zap.NewNop()
	}
	r.live = []*sourceUser{first}
	r.changed = make(chan struct{}, 1)
	r.current.Store(first)
}

func (r *userRegistry) newest() *sourceUser { return r.current.Load() }

// snapshot returns the live users, oldest first.
func (r *userRegistry) snapshot() []*sourceUser {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.live)
}

// add registers u as the newest user. It returns the live users of the same
// config whose tuning differs from u's: those handlers now run on u's.
func (r *userRegistry) add(u *sourceUser) (disagree []*sourceUser) {
	if u.logger == nil {
		u.logger = zap.NewNop()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.live {
		if o.config == u.config && o.tuning != u.tuning {
			disagree = append(disagree, o)
		}
	}
	r.live = append(r.live, u)
	r.setCurrent(u)
	return disagree
}

// remove unregisters u; the newest remaining user takes over.
func (r *userRegistry) remove(u *sourceUser) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range r.live {
		if o == u {
			r.live = append(r.live[:i], r.live[i+1:]...)
			break
		}
	}
	if n := len(r.live); n > 0 {
		r.setCurrent(r.live[n-1])
	}
}

// setCurrent is called with r.mu held.
func (r *userRegistry) setCurrent(u *sourceUser) {
	if r.current.Swap(u) == u {
		return
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

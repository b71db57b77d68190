package jwtauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// The Prometheus collectors (README "Metrics and status").
//
// They are package-level mutable state on purpose: Caddy gives every config
// load a fresh registry, and a counter must keep counting across reloads
// rather than restart at zero each time a handler is provisioned. Each
// Provision registers the same collectors into the current config's registry
// (registerMetrics), so they appear on the admin /metrics endpoint.
//
// Label values are bounded: result and reason come from closed lists and
// issuer from the configuration, never from a token (no kid, subject or raw
// iss ever becomes a label).
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "jwt_auth", Name: "requests_total",
		Help: "Requests seen by jwt_auth, by result (accepted, anonymous, preflight, rejected, forbidden, unavailable, report_only) and reason code (none when not rejected).",
	}, []string{"result", "reason"})

	jwksFetchesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "jwt_auth", Name: "jwks_fetches_total",
		Help: "Key set fetches per issuer, by result: success (including 304 Not Modified), failure, or adopted (a set another instance sharing the storage fetched, used instead of fetching).",
	}, []string{"issuer", "result"})

	tokenCacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "jwt_auth", Name: "token_cache_hits_total",
		Help: "Requests answered from the verified-token cache.",
	})

	tokenCacheMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "jwt_auth", Name: "token_cache_misses_total",
		Help: "Cacheable tokens not found (or no longer valid) in the verified-token cache.",
	})

	keySetCollector = poolCollector{
		keys: prometheus.NewDesc("caddy_jwt_auth_jwks_keys",
			"Usable keys in the issuer's current key set (0 while it has none).", []string{"issuer"}, nil),
		age: prometheus.NewDesc("caddy_jwt_auth_jwks_age_seconds",
			"Seconds since the issuer's current key set was fetched or read; absent while it has none.", []string{"issuer"}, nil),
	}
)

// Request results, the values of requests_total's result label; a refused
// request's comes from its reason's row in reasonTable, and a request a
// report-only handler would have refused is report_only, whatever the
// reason, which the reason label carries.
const (
	resultAccepted    = "accepted"
	resultAnonymous   = "anonymous"
	resultPreflight   = "preflight"
	resultRejected    = "rejected"
	resultForbidden   = "forbidden"
	resultUnavailable = "unavailable"
	resultReportOnly  = "report_only"
)

// reasonNone is the reason label of a request that was not rejected.
const reasonNone = "none"

// registerMetrics adds the collectors to the registry of the config being
// provisioned. Several handlers in one config register the same collectors:
// that is expected, so AlreadyRegisteredError is not an error.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil // a bare context (unit tests): nothing exposes metrics
	}
	for _, c := range []prometheus.Collector{requestsTotal, jwksFetchesTotal, tokenCacheHits, tokenCacheMisses, keySetCollector} {
		var already prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &already) {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}

// passCounters are the requests_total series of the passing results,
// resolved once, so a passing request adds to its counter without hashing
// label values. Never written after init.
var passCounters = map[string]prometheus.Counter{
	resultAccepted:  requestsTotal.WithLabelValues(resultAccepted, reasonNone),
	resultAnonymous: requestsTotal.WithLabelValues(resultAnonymous, reasonNone),
	resultPreflight: requestsTotal.WithLabelValues(resultPreflight, reasonNone),
}

// observeRequest counts one request that reached the handler.
func observeRequest(result string, reason Reason) {
	if c, ok := passCounters[result]; ok && reason == "" {
		c.Inc()
		return
	}
	label := string(reason)
	if label == "" {
		label = reasonNone
	}
	requestsTotal.WithLabelValues(result, label).Inc()
}

// resultOf is the result label of a request refused for reason.
func resultOf(reason Reason) string { return rowOf(reason).result }

// observeFetch counts one key set fetch of issuer; a 304 is a success.
func observeFetch(issuer string, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	jwksFetchesTotal.WithLabelValues(issuer, result).Inc()
}

// observeAdopted counts a fetch saved by a set another instance fetched and
// stored (fleet.go): with a shared storage, adopted against success shows
// how much of the fetching the fleet shares.
func observeAdopted(issuer string) {
	jwksFetchesTotal.WithLabelValues(issuer, "adopted").Inc()
}

// forgetIssuerMetrics deletes an issuer's fetch series when its source is
// destructed, unless another live source of the same issuer (another
// handler configured it with another jwks_url or jwks_file) still counts
// into them. The keys and age series need no deletion: poolCollector reads
// them from the live pool at scrape time.
func forgetIssuerMetrics(issuer string) {
	live := false
	fetchers.Range(func(_, v any) bool {
		if src, ok := v.(pooledSource); ok && src.base().id.Issuer == issuer {
			live = true
		}
		return !live
	})
	if !live {
		jwksFetchesTotal.DeletePartialMatch(prometheus.Labels{"issuer": issuer})
	}
}

// cacheHit counts a request answered from the verified-token cache.
func cacheHit() { tokenCacheHits.Inc() }

// cacheMiss counts a cacheable token that had to be verified.
func cacheMiss() { tokenCacheMisses.Inc() }

// poolCollector reports every pooled source's key count and set age,
// computed at scrape time so the age is exact and a destructed source's
// series disappear with it.
type poolCollector struct {
	keys, age *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.age
}

// Collect implements prometheus.Collector. A series must be unique per
// label set, and the only label is the issuer, while one issuer can have two
// sources (handlers giving it different jwks_url or jwks_file values). Then
// the least healthy source speaks for the issuer: one without a set, else
// the one with the oldest set. An alert on jwks_keys == 0 or on the age
// thus fires when any source of the issuer is in trouble; the status
// endpoint lists every source separately.
func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	worst := map[string]fetcherStatus{}
	var issuers []string
	for _, st := range poolStatus(time.Now()) {
		cur, seen := worst[st.Issuer]
		if !seen {
			issuers = append(issuers, st.Issuer)
		}
		if !seen || lessHealthy(st, cur) {
			worst[st.Issuer] = st
		}
	}
	for _, iss := range issuers { // sorted: poolStatus sorts by issuer
		st := worst[iss]
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(len(st.Kids)), iss)
		if st.AgeSeconds != nil {
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, *st.AgeSeconds, iss)
		}
	}
}

// lessHealthy orders two sources of one issuer: no set is worse than one,
// and an older set is worse than a newer one.
func lessHealthy(a, b fetcherStatus) bool {
	if (a.AgeSeconds == nil) != (b.AgeSeconds == nil) {
		return a.AgeSeconds == nil
	}
	return a.AgeSeconds != nil && *a.AgeSeconds > *b.AgeSeconds
}

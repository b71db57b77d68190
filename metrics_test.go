package jwtauth

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newMetricsContext is a caddy.Context with its own fresh registry, as each
// config load gets.
func newMetricsContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func TestRegisterMetricsTwiceIntoOneRegistry(t *testing.T) {
	ctx := newMetricsContext(t)
	for i := range 2 { // two handlers in one config
		if err := registerMetrics(ctx); err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
	}
	// A new config's registry gets the same collectors, so counts carry on.
	next := newMetricsContext(t)
	if err := registerMetrics(next); err != nil {
		t.Fatal(err)
	}
	before := value(t, requestsTotal.WithLabelValues(resultRejected, string(ReasonExpired)))
	observeRequest(resultOf(ReasonExpired), ReasonExpired)
	for _, reg := range []*prometheus.Registry{ctx.GetMetricsRegistry(), next.GetMetricsRegistry()} {
		families, err := reg.Gather() // the registry is pedantic: this also checks the collectors' consistency
		if err != nil {
			t.Fatal(err)
		}
		got := seriesValue(families, "caddy_jwt_auth_requests_total", map[string]string{"result": "rejected", "reason": "expired"})
		if got != before+1 {
			t.Fatalf("requests_total{rejected,expired} = %v, want %v", got, before+1)
		}
	}
}

func TestRegisterMetricsReportsRealConflicts(t *testing.T) {
	ctx := newMetricsContext(t)
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_jwt_auth_token_cache_hits_total", Help: "someone else's"})
	if err := ctx.GetMetricsRegistry().Register(clash); err != nil {
		t.Fatal(err)
	}
	err := registerMetrics(ctx)
	var already prometheus.AlreadyRegisteredError
	if err == nil || errors.As(err, &already) {
		t.Fatalf("a different collector under our name must be an error, got %v", err)
	}
}

func seriesValue(families []*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func TestResultOfStatus(t *testing.T) {
	for reason, want := range map[Reason]string{
		ReasonMissing: resultRejected, ReasonTooLarge: resultRejected, ReasonMultipleCredentials: resultRejected,
		ReasonBadSignature: resultRejected, ReasonClaimMismatch: resultForbidden, ReasonKeysUnavailable: resultUnavailable,
	} {
		if got := resultOf(reason); got != want {
			t.Errorf("%s: result %q, want %q", reason, got, want)
		}
	}
}

func TestObserveFetchAndForgetIssuer(t *testing.T) {
	const iss = "https://forget-me.example/"
	observeFetch(iss, nil)
	observeFetch(iss, nil)
	observeFetch(iss, errors.New("status 500"))
	if got := value(t, jwksFetchesTotal.WithLabelValues(iss, "success")); got != 2 {
		t.Fatalf("success = %v, want 2", got)
	}
	if got := value(t, jwksFetchesTotal.WithLabelValues(iss, "failure")); got != 1 {
		t.Fatalf("failure = %v, want 1", got)
	}
	forgetIssuerMetrics(iss) // no fetcher of this issuer is in the pool
	ch := make(chan prometheus.Metric, 100)
	jwksFetchesTotal.Collect(ch)
	close(ch)
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, lp := range pb.GetLabel() {
			if lp.GetValue() == iss {
				t.Fatalf("series of %s survived forgetIssuerMetrics", iss)
			}
		}
	}
}

func TestCacheCounters(t *testing.T) {
	hits, misses := value(t, tokenCacheHits), value(t, tokenCacheMisses)
	cacheHit()
	cacheMiss()
	cacheMiss()
	if got := value(t, tokenCacheHits) - hits; got != 1 {
		t.Errorf("hits grew by %v, want 1", got)
	}
	if got := value(t, tokenCacheMisses) - misses; got != 2 {
		t.Errorf("misses grew by %v, want 2", got)
	}
}

// value reads the single series of a counter or gauge collector.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	m, ok := <-ch
	if !ok {
		t.Fatal("collector returned no series")
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.GetCounter() != nil {
		return pb.GetCounter().GetValue()
	}
	return pb.GetGauge().GetValue()
}

// TestREADMEReasonTable keeps the README's reason table the same closed list
// as Reasons(), with the status each code is answered with.
func TestREADMEReasonTable(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Reason codes\n")
	if !ok {
		t.Fatal(`README has no "## Reason codes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 6 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	if len(rows) != len(Reasons()) {
		t.Errorf("README table has %d codes, Reasons() %d", len(rows), len(Reasons()))
	}
	for _, r := range Reasons() {
		if got, want := rows[string(r)], strconv.Itoa(statusOf(r)); got != want {
			t.Errorf("README row for %s: status %q, want %q", r, got, want)
		}
	}
}

package jwtauth

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminStatus{})
}

// Interface guards.
var _ caddy.AdminRouter = (*AdminStatus)(nil)

// AdminStatus is the admin API module serving GET /jwt_auth/status: every
// key source in use, its keys and its health. Caddy provisions admin modules
// before the HTTP app, so it holds no state and reads the fetcher pool at
// request time.
type AdminStatus struct{}

// CaddyModule returns the Caddy module information.
func (AdminStatus) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.jwt_auth",
		New: func() caddy.Module { return new(AdminStatus) },
	}
}

// Routes implements caddy.AdminRouter.
func (a *AdminStatus) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/jwt_auth/status", Handler: caddy.AdminHandlerFunc(a.serveStatus)}}
}

// statusResponse is the body of GET /jwt_auth/status.
type statusResponse struct {
	Issuers []fetcherStatus `json:"issuers"`
}

// fetcherStatus is one key source as the status endpoint shows it. Fields
// that are unknown (no set loaded yet, no error) are null rather than absent,
// so a script can rely on every key being there.
type fetcherStatus struct {
	Issuer string `json:"issuer"`
	// Source is "fetched", "stored" or "file"; null while no set is loaded.
	Source *string `json:"source"`
	// URL is the JWKS URL (configured or discovered) or the jwks_file path.
	URL  string   `json:"url"`
	Kids []string `json:"kids"`
	// Algorithms are the JWS algorithms the loaded keys can verify: a key's
	// own alg, else every algorithm its type fits. The handler's algorithms
	// option narrows what is actually accepted.
	Algorithms  []string   `json:"algorithms"`
	FetchedAt   *time.Time `json:"fetched_at"`
	AgeSeconds  *float64   `json:"age_seconds"`
	NextRefresh *time.Time `json:"next_refresh"`
	LastError   *string    `json:"last_error"`
	// ReportOnly: a report_only handler uses this source, so some of the
	// requests verified with it are not enforced.
	ReportOnly bool `json:"report_only"`
}

// newerThan orders two sources of one issuer: a loaded set beats none, then
// the more recently fetched wins.
func (s fetcherStatus) newerThan(o fetcherStatus) bool {
	if (s.FetchedAt == nil) != (o.FetchedAt == nil) {
		return s.FetchedAt != nil
	}
	return s.FetchedAt != nil && s.FetchedAt.After(*o.FetchedAt)
}

func (a *AdminStatus) serveStatus(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(statusResponse{Issuers: poolStatus(time.Now())}); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("encoding status: %w", err)}
	}
	return nil
}

// poolStatus snapshots every pooled fetcher, sorted by issuer then URL.
func poolStatus(now time.Time) []fetcherStatus {
	out := []fetcherStatus{}
	fetchers.Range(func(_, v any) bool {
		if f, ok := v.(*fetcher); ok {
			out = append(out, f.status(now))
		}
		return true
	})
	slices.SortFunc(out, func(a, b fetcherStatus) int {
		if c := strings.Compare(a.Issuer, b.Issuer); c != 0 {
			return c
		}
		return strings.Compare(a.URL, b.URL)
	})
	return out
}

// status snapshots the fetcher: the key state is one atomic value and the
// rest is read under f.mu, so the result is consistent with itself.
func (f *fetcher) status(now time.Time) fetcherStatus {
	st := fetcherStatus{Issuer: f.cfg.Issuer, Kids: []string{}, Algorithms: []string{}, ReportOnly: reportOnlyUsed(f.cfg)}
	f.mu.Lock()
	st.URL = f.jwksURL
	if f.cfg.JWKSFile != "" {
		st.URL = f.cfg.JWKSFile
	} else if st.URL == "" {
		st.URL = discoveryURL(f.cfg.Issuer)
	}
	if !f.nextAttempt.IsZero() {
		next := f.nextAttempt.UTC()
		st.NextRefresh = &next
	}
	if f.lastError != "" {
		msg := f.lastError
		st.LastError = &msg
	}
	f.mu.Unlock()
	if ks := f.state.Load(); ks != nil {
		source, fetched := ks.source, ks.fetchedAt.UTC()
		age := math.Round(now.Sub(ks.fetchedAt).Seconds()*1000) / 1000
		st.Source, st.FetchedAt, st.AgeSeconds = &source, &fetched, &age
		if ks.url != "" && f.cfg.JWKSFile == "" {
			st.URL = ks.url
		}
		st.Kids = ks.set.Kids()
		st.Algorithms = verifiableAlgorithms(ks.set)
	}
	if f.cfg.JWKSFile == "" {
		st.URL = redactURL(st.URL) // userinfo never leaves the process
	}
	return st
}

// verifiableAlgorithms lists, sorted, the algorithms some key of set can
// verify, by the same fit rule as key selection.
func verifiableAlgorithms(set *KeySet) []string {
	names := []string{}
	for name, a := range algorithms {
		if slices.ContainsFunc(set.Keys, func(k *Key) bool {
			return fitsAlgorithm(k.Public, a) && (k.Alg == "" || k.Alg == name)
		}) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

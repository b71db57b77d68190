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

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/keyimport"
)

func init() {
	caddy.RegisterModule(AdminStatus{})
}

// Interface guards.
var _ caddy.AdminRouter = (*AdminStatus)(nil)

// AdminStatus is the admin API module serving GET /jwt_auth/status: every
// key source in use, its keys and its health. Caddy provisions admin modules
// before the HTTP app, so it holds no state and reads the key source pool at
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
	// Resources are the protected resources (RFC 9728) that provisioned
	// handlers publish, sorted by resource.
	Resources []resourceStatus `json:"resources"`
}

// resourceStatus is one published resource and where its metadata is.
type resourceStatus struct {
	Resource    string `json:"resource"`
	MetadataURL string `json:"metadata_url"`
}

// fetcherStatus is one key source as the status endpoint shows it (and the
// metrics read it). Fields
// that are unknown (no set loaded yet, no error) are null rather than absent,
// so a script can rely on every key being there.
type fetcherStatus struct {
	Issuer string `json:"issuer"`
	// Source is "fetched" (this instance fetched or confirmed the set),
	// "stored" (read from Caddy's storage: at start, or adopted from
	// another instance sharing it, with that record's fetched_at) or
	// "file"; null while no set is loaded.
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

func (a *AdminStatus) serveStatus(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(statusResponse{Issuers: poolStatus(time.Now()), Resources: resourcesStatus()}); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("encoding status: %w", err)}
	}
	return nil
}

// poolStatus snapshots every pooled source, sorted by issuer then URL. Each
// source type fills in its own status.
func poolStatus(now time.Time) []fetcherStatus {
	out := []fetcherStatus{}
	fetchers.Range(func(_, v any) bool {
		if src, ok := v.(pooledSource); ok {
			out = append(out, src.status(now))
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

// resourcesStatus lists the resources of the live handlers, sorted: each
// handler registers its resource with the key sources it uses, so the pool
// that holds the sources is also the one place that knows them.
func resourcesStatus() []resourceStatus {
	seen := map[resourceStatus]bool{}
	fetchers.Range(func(_, v any) bool {
		if src, ok := v.(pooledSource); ok {
			for _, u := range src.base().users.snapshot() {
				if u.resource != nil {
					seen[*u.resource] = true
				}
			}
		}
		return true
	})
	out := make([]resourceStatus, 0, len(seen))
	for rs := range seen {
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b resourceStatus) int { return strings.Compare(a.Resource, b.Resource) })
	return out
}

// roundMillis rounds seconds to milliseconds, enough for an age.
func roundMillis(secs float64) float64 { return math.Round(secs*1000) / 1000 }

// verifiableAlgorithms lists, sorted, the algorithms some key of set can
// verify, by the same fit rule as key selection.
func verifiableAlgorithms(set *keySet) []string {
	names := []string{}
	for _, name := range jose.KnownAlgorithms() {
		if slices.ContainsFunc(set.Keys, func(k *keyimport.Key) bool { return k.Fits(name) }) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

package jwtauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// tokenVerifier rules replayed through a real Caddy: the registered-claim types
// and the unknown_kid detail, as a client and an operator see them. Like
// every caddytest test, none of these may run in parallel.

// verifierE2E is one Caddy with debug logging to a file and three policies
// over the fixture's issuer, all proxying to a counting upstream: "/aud/"
// with an audience, "/strict/" with leeway 0, every other path with the
// defaults.
type verifierE2E struct {
	tc      *caddytest.Tester
	f       *e2eFixture
	up      *countingUpstream
	logFile string
}

func startVerifierE2E(t *testing.T) *verifierE2E {
	t.Helper()
	e := &verifierE2E{f: newFixture(t), up: newCountingUpstream(t), logFile: filepath.Join(t.TempDir(), "caddy.log")}
	route := func(matcher, extra string) string {
		return fmt.Sprintf(`
	handle %s {
		jwt_auth {
			issuer %s
			jwks_url %s
%s
		}
		reverse_proxy %s
	}`, matcher, e.f.issuer, e.f.jwks.JWKSURL(), extra, e.up.srv.Listener.Addr())
	}
	e.tc = caddytest.NewTester(t)
	e.tc.InitServer(globalOptionsLogging(e.logFile, "DEBUG")+fmt.Sprintf(`%s {%s%s
}
`, siteURL, route("/aud/*", "\t\t\taudience api")+route("/strict/*", "\t\t\tleeway 0"), route("", "")), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	e.f.ready(t, e.tc)
	return e
}

// wantUpstream sends tok to path and asserts it reached the upstream once.
func (e *verifierE2E) wantUpstream(t *testing.T, path, tok string) {
	t.Helper()
	before := e.up.hits.Load()
	resp, body := get(t, e.tc, path, tok)
	if resp.StatusCode != http.StatusOK || body != "from upstream" || e.up.hits.Load() != before+1 {
		t.Fatalf("%s: honest token got %d %q", path, resp.StatusCode, body)
	}
}

// wantRejected sends tok to path and asserts a 401 with reason and that
// the upstream saw nothing.
func (e *verifierE2E) wantRejected(t *testing.T, path, tok string, reason Reason) {
	t.Helper()
	before := e.up.hits.Load()
	resp, body := get(t, e.tc, path, tok)
	if n := e.up.hits.Load() - before; n != 0 || body == "from upstream" {
		t.Fatalf("%s: the upstream was reached %d times (status %d)", path, n, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s: status %d, want 401 (body %q)", path, resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("WWW-Authenticate"), fmt.Sprintf(invalidToken, reason); got != want {
		t.Fatalf("%s: WWW-Authenticate %q, want %q", path, got, want)
	}
}

// rejectionLogs returns the "request rejected" entries of the log once one
// of them has this reason.
func (e *verifierE2E) rejectionLogs(t *testing.T, reason Reason) []map[string]any {
	t.Helper()
	var entries []map[string]any
	for _, line := range waitLogLines(t, e.logFile, fmt.Sprintf(`"reason":%q`, reason)) {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == "request rejected" {
			entries = append(entries, entry)
		}
	}
	return entries
}

// TestEndToEndRegisteredClaimTypes: a validly signed token whose sub, jti or
// aud has the wrong JSON type is malformed on every route (with or without
// an audience configured) and never reaches the upstream; before this rule
// sub ["admin"] passed and became the user "admin".
func TestEndToEndRegisteredClaimTypes(t *testing.T) {
	e := startVerifierE2E(t)
	f := e.f
	for _, path := range []string{"/", "/aud/x"} {
		e.wantUpstream(t, path, f.token(t, func(c map[string]any) { c["jti"] = "id-1" }))
	}
	without := func(names ...string) string {
		return f.token(t, func(c map[string]any) {
			for _, n := range names {
				delete(c, n)
			}
		})
	}
	cases := []struct{ name, token, detail string }{
		{"sub array", f.token(t, func(c map[string]any) { c["sub"] = []string{"admin"} }), "sub is not a string"},
		{"sub number", f.token(t, func(c map[string]any) { c["sub"] = 42 }), "sub is not a string"},
		{"sub null", f.withRawClaim(t, without("sub"), `"sub":null`), "sub is not a string"},
		{"jti number", f.token(t, func(c map[string]any) { c["jti"] = 7 }), "jti is not a string"},
		{"aud array with a number", f.token(t, func(c map[string]any) { c["aud"] = []any{"api", 1} }), "aud array holds a non-string"},
		{"aud number", f.token(t, func(c map[string]any) { c["aud"] = 5 }), "aud is neither a string nor an array of strings"},
		{"aud null", f.withRawClaim(t, without("aud"), `"aud":null`), "aud is neither a string nor an array of strings"},
	}
	for _, c := range cases {
		for _, path := range []string{"/", "/aud/x"} {
			t.Run(c.name+path, func(t *testing.T) {
				e.wantRejected(t, path, c.token, ReasonMalformed)
			})
		}
	}
	details := map[string]bool{}
	for _, entry := range e.rejectionLogs(t, ReasonMalformed) {
		details[fmt.Sprint(entry["detail"])] = true
	}
	for _, c := range cases {
		if !details[c.detail] {
			t.Errorf("no malformed rejection logged with detail %q; got %v", c.detail, details)
		}
	}
}

// TestEndToEndUnknownKidDetail: a kid that is in the set on a key unfit for
// the token's alg is still unknown_kid to the client, but the debug line
// says why, distinct from a kid that is not in the set at all.
func TestEndToEndUnknownKidDetail(t *testing.T) {
	e := startVerifierE2E(t)
	f := e.f // one EC P-256 key, kid "key-1", alg ES256
	rsa := jwttest.NewRSA(t, 2048, f.key.Kid, "RS256")
	wrongType := jwttest.Sign(t, rsa, nil, f.claims(func(map[string]any) {}))
	absent := jwttest.Sign(t, jwttest.NewEC(t, "ES256", "rotated-in"), nil, f.claims(func(map[string]any) {}))
	e.wantRejected(t, "/", wrongType, ReasonUnknownKid)
	e.wantRejected(t, "/", absent, ReasonUnknownKid)

	want := map[string]string{ // kid → detail prefix
		"key-1":      `kid "key-1" is in the key set but is an EC P-256 key (alg ES256), which cannot verify RS256`,
		"rotated-in": `no key with kid "rotated-in" in the set`,
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := map[string]string{}
		for _, entry := range e.rejectionLogs(t, ReasonUnknownKid) {
			found[fmt.Sprint(entry["kid"])] = fmt.Sprint(entry["detail"])
		}
		missing := ""
		for kid, prefix := range want {
			if !strings.HasPrefix(found[kid], prefix) {
				missing = fmt.Sprintf("kid %s: detail %q, want prefix %q", kid, found[kid], prefix)
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEndLeewayZero: "leeway 0" in a Caddyfile means no clock skew at
// all, not the 30s default.
func TestEndToEndLeewayZero(t *testing.T) {
	e := startVerifierE2E(t)
	justExpired := e.f.token(t, func(c map[string]any) {
		c["iat"], c["exp"] = time.Now().Add(-time.Minute).Unix(), time.Now().Add(-5*time.Second).Unix()
	})
	e.wantUpstream(t, "/", justExpired)
	e.wantRejected(t, "/strict/x", justExpired, ReasonExpired)
	e.wantUpstream(t, "/strict/x", e.f.token(t, nil))
}

package jwtauth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// End-to-end observability tests: metrics scraped from the real admin
// /metrics, the admin status endpoint and the rejection log, all through the
// one in-process Caddy of this test binary (no t.Parallel).

const adminURL = "http://localhost:2999"

// adminGet GETs an admin API path and returns its body.
func adminGet(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(adminURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// metricValue finds the sample of name whose labels are exactly labels in a
// Prometheus text exposition.
func metricValue(body, name string, labels map[string]string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, rawLabels, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		got := map[string]string{}
		for _, m := range labelPair.FindAllStringSubmatch(rawLabels, -1) {
			got[m[1]] = m[2]
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		return v, err == nil
	}
	return 0, false
}

// counter reads a counter, 0 when the series does not exist yet.
func counter(body, name string, labels map[string]string) float64 {
	v, _ := metricValue(body, name, labels)
	return v
}

func requests(result, reason string) map[string]string {
	return map[string]string{"result": result, "reason": reason}
}

func TestEndToEndMetricsOnAdminEndpoint(t *testing.T) {
	f := newFixture(t)
	f.issuer = "https://metrics-idp.example/" // a series no other test touches
	tc := startCaddy(t, f.block("\trequire scope write\n\toptional\n\tallow_preflight")+"\n\trespond \"ok\"")
	f.ready(t, tc)
	before := adminGet(t, "/metrics")

	good := f.token(t, func(c map[string]any) { c["scope"] = "write" })
	for range 3 {
		if resp, _ := get(t, tc, "/", good); resp.StatusCode != 200 {
			t.Fatalf("valid token: %d", resp.StatusCode)
		}
	}
	expired := f.token(t, func(c map[string]any) {
		c["scope"] = "write"
		c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
	})
	secretKid := jwttest.NewEC(t, "ES256", "kid-must-not-be-a-label")
	sends := []struct {
		token  string
		header string
		status int
	}{
		{expired, "", 401},
		{expired, "", 401},
		{f.token(t, nil), "", 403}, // no scope: claim_mismatch
		{jwttest.Sign(t, secretKid, nil, f.claims(func(c map[string]any) { c["iss"] = "https://evil-iss.example/" })), "", 401},
		{"", "", 200}, // optional: anonymous
		{"", "Origin: https://app.example", 200},
	}
	for _, s := range sends {
		headers := []string{}
		if s.header != "" {
			headers = append(headers, s.header, "Access-Control-Request-Method: GET")
		}
		req := func() int {
			if s.header == "" {
				resp, _ := get(t, tc, "/", s.token, headers...)
				return resp.StatusCode
			}
			r, _ := http.NewRequest(http.MethodOptions, siteURL+"/", nil)
			for _, h := range headers {
				name, value, _ := strings.Cut(h, ":")
				r.Header.Set(name, strings.TrimSpace(value))
			}
			resp, err := tc.Client.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}()
		if req != s.status {
			t.Fatalf("request %+v: status %d, want %d", s, req, s.status)
		}
	}

	after := adminGet(t, "/metrics")
	const reqs = "caddy_jwt_auth_requests_total"
	for _, c := range []struct {
		labels map[string]string
		delta  float64
	}{
		{requests("accepted", "none"), 3},
		{requests("rejected", "expired"), 2},
		{requests("forbidden", "claim_mismatch"), 1},
		{requests("rejected", "wrong_issuer"), 1},
		{requests("anonymous", "none"), 1},
		{requests("preflight", "none"), 1},
	} {
		if d := counter(after, reqs, c.labels) - counter(before, reqs, c.labels); d != c.delta {
			t.Errorf("%s%v grew by %v, want %v", reqs, c.labels, d, c.delta)
		}
	}
	// The good token: one miss then two hits; each of the four rejected
	// tokens one miss; anonymous and preflight requests never look.
	for name, want := range map[string]float64{"caddy_jwt_auth_token_cache_hits_total": 2, "caddy_jwt_auth_token_cache_misses_total": 5} {
		if d := counter(after, name, map[string]string{}) - counter(before, name, map[string]string{}); d != want {
			t.Errorf("%s grew by %v, want %v", name, d, want)
		}
	}
	iss := map[string]string{"issuer": f.issuer}
	if v, ok := metricValue(after, "caddy_jwt_auth_jwks_keys", iss); !ok || v != 1 {
		t.Errorf("jwks_keys = %v (present %v), want 1", v, ok)
	}
	if v, ok := metricValue(after, "caddy_jwt_auth_jwks_age_seconds", iss); !ok || v < 0 || v > 30 {
		t.Errorf("jwks_age_seconds = %v (present %v), want a fresh set", v, ok)
	}
	if v := counter(after, "caddy_jwt_auth_jwks_fetches_total", map[string]string{"issuer": f.issuer, "result": "success"}); v != 1 {
		t.Errorf("jwks_fetches_total success = %v, want 1 (one start-up fetch)", v)
	}
	for _, leak := range []string{"evil-iss", "kid-must-not-be-a-label", "user-123"} {
		if strings.Contains(after, leak) {
			t.Errorf("/metrics exposes token data %q as a label", leak)
		}
	}

	// Replacing the config destructs the issuer's fetcher: its series go too.
	other := newFixture(t)
	tc2 := startCaddy(t, other.block("")+"\n\trespond \"ok\"")
	other.ready(t, tc2)
	gone := adminGet(t, "/metrics")
	if strings.Contains(gone, `issuer="`+f.issuer+`"`) {
		t.Errorf("series of a destructed issuer remain:\n%s", grepLines(gone, f.issuer))
	}
	if counter(gone, reqs, requests("accepted", "none")) < counter(after, reqs, requests("accepted", "none")) {
		t.Error("requests_total restarted on reload; counters must survive it")
	}
}

func grepLines(body, substr string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// statusIssuer is one entry of GET /jwt_auth/status, decoded loosely so a
// missing key shows up as a test failure rather than a zero value.
type statusIssuer map[string]any

func fetchStatus(t *testing.T) map[string]statusIssuer {
	t.Helper()
	var doc struct {
		Issuers []statusIssuer `json:"issuers"`
	}
	body := adminGet(t, "/jwt_auth/status")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, body)
	}
	out := map[string]statusIssuer{}
	for _, is := range doc.Issuers {
		for _, key := range []string{"issuer", "source", "url", "kids", "algorithms", "fetched_at", "age_seconds", "next_refresh", "last_error"} {
			if _, ok := is[key]; !ok {
				t.Fatalf("status entry lacks %q: %v", key, is)
			}
		}
		out[is["issuer"].(string)] = is
	}
	return out
}

func TestEndToEndAdminStatus(t *testing.T) {
	good := newFixture(t)
	bad := jwttest.NewServer(t, jwttest.NewEC(t, "ES256", "never-seen"))
	bad.SetMode(jwttest.Status500)
	const badIssuer = "https://down-idp.example/"
	tc := startCaddy(t, fmt.Sprintf(`jwt_auth {
		issuer %s {
			jwks_url %s
		}
		issuer %s {
			jwks_url %s
		}
		audience api
		refresh_interval 1s
		min_refresh_interval 1s
	}
	respond "ok"`, good.issuer, good.jwks.JWKSURL(), badIssuer, bad.JWKSURL()))
	good.ready(t, tc)

	// After a successful fetch.
	// next_refresh is set once the loop has scheduled its next run, just after the fetch.
	st := waitStatus(t, func(s map[string]statusIssuer) bool {
		return s[badIssuer] != nil && s[badIssuer]["last_error"] != nil && s[good.issuer] != nil && s[good.issuer]["next_refresh"] != nil
	})
	g := st[good.issuer]
	if g == nil {
		t.Fatalf("no status for %s: %v", good.issuer, st)
	}
	if g["source"] != "fetched" || g["url"] != good.jwks.JWKSURL() || fmt.Sprint(g["kids"]) != "[key-1]" ||
		fmt.Sprint(g["algorithms"]) != "[ES256]" || g["last_error"] != nil {
		t.Errorf("good issuer status = %v", g)
	}
	fetched, err := time.Parse(time.RFC3339Nano, fmt.Sprint(g["fetched_at"]))
	if err != nil || time.Since(fetched) > time.Minute || time.Since(fetched) < 0 {
		t.Errorf("fetched_at %v: %v", g["fetched_at"], err)
	}
	if age, ok := g["age_seconds"].(float64); !ok || age < 0 || age > 60 {
		t.Errorf("age_seconds %v", g["age_seconds"])
	}
	if next, err := time.Parse(time.RFC3339Nano, fmt.Sprint(g["next_refresh"])); err != nil || next.Before(fetched) {
		t.Errorf("next_refresh %v: %v", g["next_refresh"], err)
	}

	// An issuer whose every fetch failed: no set, the error shown.
	b := st[badIssuer]
	if b["source"] != nil || fmt.Sprint(b["kids"]) != "[]" || b["fetched_at"] != nil || b["age_seconds"] != nil ||
		!strings.Contains(fmt.Sprint(b["last_error"]), "500") {
		t.Errorf("failing issuer status = %v", b)
	}

	// The good issuer's IdP fails next: the kept set stays, the error shows.
	good.jwks.SetMode(jwttest.Status500)
	st = waitStatus(t, func(s map[string]statusIssuer) bool { return s[good.issuer]["last_error"] != nil })
	g = st[good.issuer]
	if !strings.Contains(fmt.Sprint(g["last_error"]), "status 500") || g["source"] != "fetched" || fmt.Sprint(g["kids"]) != "[key-1]" {
		t.Errorf("after a failed fetch: %v", g)
	}
	if resp, _ := get(t, tc, "/", good.token(t, nil)); resp.StatusCode != 200 {
		t.Errorf("kept set no longer serves: %d", resp.StatusCode)
	}
}

// waitStatus polls the status endpoint until cond holds (10 s at most).
func waitStatus(t *testing.T, cond func(map[string]statusIssuer) bool) map[string]statusIssuer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := fetchStatus(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never reached the expected state: %v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEndToEndRejectionLogLine(t *testing.T) {
	f := newFixture(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	tc := caddytest.NewTester(t)
	tc.InitServer(globalOptionsLogging(logFile, "DEBUG")+fmt.Sprintf(`%s {
	%s
	respond "ok"
}
`, siteURL, f.block("")), "caddyfile")
	f.ready(t, tc)
	other := jwttest.NewEC(t, "ES256", "key-1")
	forged := jwttest.Sign(t, other, nil, f.claims(func(map[string]any) {}))
	if resp, _ := get(t, tc, "/", forged); resp.StatusCode != 401 {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	lines := waitLogLines(t, logFile, `"reason":"bad_signature"`)
	var found map[string]any
	for _, l := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			continue
		}
		if entry["msg"] == "request rejected" && entry["reason"] == "bad_signature" {
			found = entry
		}
		// The readiness probe may have met a 503 (keys not loaded yet),
		// which Caddy itself logs at ERROR; a 4xx never is.
		if status, _ := entry["status"].(float64); entry["level"] == "error" && status < 500 {
			t.Errorf("a 4xx rejection logged at ERROR: %s", l)
		}
	}
	if found == nil {
		t.Fatalf("no rejection line in the log:\n%s", strings.Join(lines, "\n"))
	}
	if found["level"] != "debug" || found["issuer"] != f.issuer || found["kid"] != "key-1" || found["client_ip"] != "127.0.0.1" {
		t.Errorf("rejection line = %v", found)
	}
	sig := forged[strings.LastIndexByte(forged, '.')+1:]
	for _, l := range lines {
		if strings.Contains(l, sig) {
			t.Fatalf("the token reached the log: %s", l)
		}
	}
}

// waitLogLines reads the log file until a line contains want (5 s at most):
// the file writer is buffered by the OS, not by Caddy, but be patient.
func waitLogLines(t *testing.T, path, want string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) || time.Now().After(deadline) {
			return strings.Split(strings.TrimSpace(string(data)), "\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

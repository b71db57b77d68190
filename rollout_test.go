package jwtauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// End-to-end tests of report-only mode (README "Rolling out jwt_auth")
// through a real Caddy, a real upstream and real logs.

// reportOnlyRecipe is the README's report-only step verbatim
// (TestReadmeShowsRolloutRecipe checks it).
const reportOnlyRecipe = `api.example.com {
	log_append jwt_verdict {http.auth.jwt.verdict}
	jwt_auth {
		issuer https://idp.example.com/
		jwks_url https://idp.example.com/.well-known/jwks.json
		audience api
		require scope orders:read
		claim_header sub X-User-Id
		strip_token
		report_only
	}
	reverse_proxy localhost:8000 {
		header_up X-Jwt-Verdict {http.auth.jwt.verdict}
		header_up X-User {http.auth.user.id}
	}
	log {
		output file /var/log/caddy/api.log
	}
}
`

// reportOnlyQuery is the README's query of what would fail, by reason.
const reportOnlyQuery = `sum by (reason) (rate(caddy_jwt_auth_requests_total{result="report_only"}[5m]))`

// reportOnlyLogMsg is the message of the info line of a would-be rejection.
const reportOnlyLogMsg = "request would be rejected (report_only)"

func TestReadmeShowsRolloutRecipe(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Rolling out jwt_auth\n")
	if !ok {
		t.Fatal(`README has no "## Rolling out jwt_auth" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for name, text := range map[string]string{
		"report-only recipe": "```caddyfile\n" + reportOnlyRecipe + "```\n",
		"query":              "```promql\n" + reportOnlyQuery + "\n```\n",
		"enforcing step":     "delete the `report_only`\nline",
	} {
		if !strings.Contains(section, text) {
			t.Errorf("the rollout section does not show the %s verbatim:\n%s", name, text)
		}
	}
}

// startWithDebugLog is startRecipe with Caddy's own log written, as JSON at
// DEBUG, to logPath.
func startWithDebugLog(t *testing.T, logPath, recipe string, up *echoUpstream, subst ...string) *caddytest.Tester {
	t.Helper()
	global := globalOptionsLogging(logPath, "DEBUG")
	cfg := siteURL + strings.TrimPrefix(recipe, recipeSite)
	subst = append(subst, recipeUpstream, up.addr())
	tc := caddytest.NewTester(t)
	tc.InitServer(global+"\n"+strings.NewReplacer(subst...).Replace(cfg), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return tc
}

// waitVerdict sends tok until the upstream sees want as the verdict: in
// report-only mode every answer is 200, so the status cannot tell that the
// keys are loaded.
func waitVerdict(t *testing.T, tc *caddytest.Tester, up *echoUpstream, tok, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		up.reset()
		get(t, tc, "/ready", tok)
		if up.hits.Load() > 0 && up.last(t).Header.Get("X-Jwt-Verdict") == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("verdict %q never seen", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logEntries decodes the JSON lines of a log file.
func logEntries(t *testing.T, lines []string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err == nil {
			out = append(out, e)
		}
	}
	return out
}

func TestReportOnlyRecipe(t *testing.T) {
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k"))
	up := newEchoUpstream(t)
	dir := t.TempDir()
	caddyLog, accessLog := filepath.Join(dir, "caddy.log"), filepath.Join(dir, "access.log")
	jwksSubst := []string{"https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL(), "/var/log/caddy/api.log", accessLog}
	tc := startWithDebugLog(t, caddyLog, reportOnlyRecipe, up, jwksSubst...)

	scoped := func(c map[string]any) { c["scope"] = "orders:read" }
	valid := f.sign(t, "api", scoped)
	waitVerdict(t, tc, up, valid, "accepted")

	forger := jwttest.NewEC(t, "ES256", "k") // same kid, another key
	cases := []struct {
		name, token, verdict, user string
	}{
		{"missing", "", "missing", ""},
		{"bad_signature", jwttest.Sign(t, forger, nil, f.claims(scoped)), "bad_signature", ""},
		{"expired", f.sign(t, "api", func(c map[string]any) {
			scoped(c)
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		}), "expired", ""},
		{"wrong_audience", f.sign(t, "other-api", scoped), "wrong_audience", ""},
		{"claim_mismatch", f.sign(t, "api", nil), "claim_mismatch", ""},
		{"accepted", valid, "accepted", "user-123"},
	}
	before := adminGet(t, "/metrics")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.reset()
			resp, body := get(t, tc, "/"+c.name, c.token, "X-User-Id: forged", "X-User: forged")
			// Nothing is enforced: the backend's answer, no challenge, no Retry-After.
			expect(t, resp, body, 200, "", true)
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After %q on a report-only answer", ra)
			}
			seen := up.last(t)
			for header, want := range map[string]string{
				"X-Jwt-Verdict": c.verdict,
				"X-User-Id":     c.user, // the claim header; the forged copy is always gone
				"X-User":        c.user, // {http.auth.user.id}: empty, never the literal text
				"Authorization": "",     // strip_token, valid token or not
			} {
				if got := seen.Header.Get(header); got != want {
					t.Errorf("upstream %s = %q, want %q", header, got, want)
				}
			}
		})
	}

	// Counted once each: the valid token accepted, the others report_only
	// with the reason they would have been refused for, none as refused.
	after := adminGet(t, "/metrics")
	const reqs = "caddy_jwt_auth_requests_total"
	for _, c := range cases {
		result, reason := resultReportOnly, c.verdict
		if c.verdict == "accepted" {
			result, reason = resultAccepted, reasonNone
		}
		if d := counter(after, reqs, requests(result, reason)) - counter(before, reqs, requests(result, reason)); d != 1 {
			t.Errorf("requests_total{%s,%s} grew by %v, want 1", result, reason, d)
		}
		if c.verdict != "accepted" {
			refusal := resultOf(Reason(c.verdict))
			if d := counter(after, reqs, requests(refusal, reason)) - counter(before, reqs, requests(refusal, reason)); d != 0 {
				t.Errorf("requests_total{%s,%s} grew by %v in report-only mode", refusal, reason, d)
			}
		}
	}

	// One info line per would-be rejection, never a token in any line.
	lines := waitLogLines(t, caddyLog, `"reason":"claim_mismatch"`)
	entries := logEntries(t, lines)
	perReason := map[string]int{}
	warned := false
	for _, e := range entries {
		if e["level"] == "error" {
			t.Errorf("report-only mode logged an error: %v", e)
		}
		if e["level"] == "warn" && strings.HasPrefix(fmt.Sprint(e["msg"]), "report_only is set: nothing is enforced") {
			warned = true
		}
		if e["msg"] == "request rejected" {
			t.Errorf("report-only mode wrote an enforcing rejection line: %v", e)
		}
		if e["msg"] != reportOnlyLogMsg {
			continue
		}
		reason := fmt.Sprint(e["reason"])
		perReason[reason]++
		wantIssuer, wantKid := f.issuer, "k"
		if reason == "missing" {
			wantIssuer, wantKid = "", ""
		}
		if e["level"] != "info" || e["issuer"] != wantIssuer || e["kid"] != wantKid || e["client_ip"] != "127.0.0.1" {
			t.Errorf("would-be rejection line = %v", e)
		}
	}
	if !warned {
		t.Error("Provision did not warn that nothing is enforced")
	}
	for _, c := range cases {
		want := 1
		if c.verdict == "accepted" {
			want = 0
		}
		if perReason[c.verdict] != want {
			t.Errorf("%d info lines for %s, want %d", perReason[c.verdict], c.verdict, want)
		}
	}

	// The access log carries the verdict of each request.
	access := logEntries(t, strings.Split(waitForLog(t, accessLog, "/accepted"), "\n"))
	verdicts := map[string]any{}
	for _, e := range access {
		if req, ok := e["request"].(map[string]any); ok {
			verdicts[fmt.Sprint(req["uri"])] = e["jwt_verdict"]
		}
	}
	for _, c := range cases {
		if got := verdicts["/"+c.name]; got != c.verdict {
			t.Errorf("access log jwt_verdict of /%s = %v, want %q", c.name, got, c.verdict)
		}
	}

	// Step 2, enforcing: the recipe without report_only refuses, and the
	// access log still carries the reason.
	enforcing := strings.Replace(reportOnlyRecipe, "\t\treport_only\n", "", 1)
	if enforcing == reportOnlyRecipe {
		t.Fatal("the recipe has no report_only line to delete")
	}
	tc = startWithDebugLog(t, caddyLog, enforcing, up, jwksSubst...)
	up.reset()
	resp, body := get(t, tc, "/enforced", cases[2].token)
	expect(t, resp, body, 401, fmt.Sprintf(`Bearer realm="localhost", error="invalid_token", error_description="%s"`, "expired"), false)
	access = logEntries(t, strings.Split(waitForLog(t, accessLog, "/enforced"), "\n"))
	last := access[len(access)-1]
	if req, _ := last["request"].(map[string]any); req["uri"] != "/enforced" || last["jwt_verdict"] != "expired" || last["status"] != float64(401) {
		t.Errorf("enforcing access log line = %v", last)
	}

	// No token, not even its signature, in any log line at DEBUG.
	logs := readFile(t, caddyLog) + readFile(t, accessLog)
	for _, c := range cases {
		if c.token == "" {
			continue
		}
		sig := c.token[strings.LastIndexByte(c.token, '.')+1:]
		if strings.Contains(logs, c.token) || strings.Contains(logs, sig) {
			t.Errorf("the %s token reached a log", c.name)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReportOnlyKeysUnavailable: without any key set, report-only mode
// still lets the request go on, without Retry-After, and says why; the
// status endpoint marks the source as report-only until the last
// report-only handler using it is gone.
func TestReportOnlyKeysUnavailable(t *testing.T) {
	down := newFixture(t)
	down.issuer = "https://report-only-down.example/"
	down.jwks.SetMode(jwttest.Status500)
	enforced := newFixture(t)
	enforced.issuer = "https://report-only-peer.example/"
	const respond = `
		respond "verdict={http.auth.jwt.verdict} id=[{http.auth.user.id}] email=[{http.auth.user.email}]"`
	tc := startCaddy(t, "handle /ro/* {\n"+down.block("\treport_only")+respond+"\n}\nhandle {\n"+enforced.block("")+respond+"\n}")
	resp, body := get(t, tc, "/ro/x", down.token(t, nil))
	if want := "verdict=keys_unavailable id=[] email=[]"; resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	if h := resp.Header.Get("Retry-After") + resp.Header.Get("WWW-Authenticate"); h != "" {
		t.Fatalf("report-only answer carries %q", h)
	}
	enforced.ready(t, tc)
	// The enforcing handler publishes its verdict too.
	if _, body := get(t, tc, "/", enforced.token(t, nil)); body != "verdict=accepted id=[user-123] email=[]" {
		t.Fatalf("enforcing handler body %q", body)
	}

	st := waitStatus(t, func(s map[string]statusIssuer) bool { return s[down.issuer] != nil && s[enforced.issuer] != nil })
	if st[down.issuer]["report_only"] != true || st[enforced.issuer]["report_only"] != false {
		t.Fatalf("status report_only: %v (report-only source), %v (enforcing source)", st[down.issuer]["report_only"], st[enforced.issuer]["report_only"])
	}

	// The same source, now enforced: the mark is released with the old config.
	tc = startCaddy(t, down.block("")+respond)
	if resp, _ := get(t, tc, "/", down.token(t, nil)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("enforcing without keys: %d, want 503", resp.StatusCode)
	}
	st = fetchStatus(t)
	if st[down.issuer] == nil || st[down.issuer]["report_only"] != false {
		t.Fatalf("after the reload the source is still marked report-only: %v", st[down.issuer])
	}
}

// TestVerdictPlaceholderInEveryMode: decide publishes its verdict whatever
// the mode, and report-only mode turns every refusal into a passing report
// that keeps the reason.
func TestVerdictPlaceholderInEveryMode(t *testing.T) {
	preflight := []string{"Origin: https://app.example", "Access-Control-Request-Method: POST"}
	cases := []struct {
		name    string
		cfg     Config
		headers []string
		verdict string
		result  string
		passes  bool
	}{
		{"preflight", Config{AllowPreflight: true}, preflight, "preflight", resultPreflight, true},
		{"anonymous", Config{Optional: true}, nil, "anonymous", resultAnonymous, true},
		{"enforced missing", Config{}, nil, "missing", resultRejected, false},
		{"enforced malformed", Config{Optional: true}, []string{"Authorization: Bearer"}, "malformed", resultRejected, false},
		{"enforced too_large", Config{MaxTokenSize: 8}, []string{"Authorization: Bearer 0123456789"}, "too_large", resultRejected, false},
		{"reported missing", Config{ReportOnly: true}, nil, "missing", resultReportOnly, true},
		{"reported malformed", Config{ReportOnly: true}, []string{"Authorization: Bearer"}, "malformed", resultReportOnly, true},
		{"reported multiple_credentials", Config{ReportOnly: true, Sources: []TokenSource{{Header: "A"}, {Header: "B"}}},
			[]string{"A: x", "B: y"}, "multiple_credentials", resultReportOnly, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, repl := requestWithReplacer()
			if len(c.headers) > 0 && c.headers[0] == preflight[0] {
				r.Method = http.MethodOptions
			}
			for _, h := range c.headers {
				name, value, _ := strings.Cut(h, ":")
				r.Header.Add(name, strings.TrimSpace(value))
			}
			a := &authenticator{cfg: &c.cfg, credentialSources: c.cfg.credentialSources()}
			v := a.decide(r)
			if got, _ := repl.GetString(verdictPlaceholder); got != c.verdict || v.result != c.result || v.passes() != c.passes {
				t.Fatalf("verdict %q, result %q, passes %v; want %q, %q, %v", got, v.result, v.passes(), c.verdict, c.result, c.passes)
			}
			if c.result == resultReportOnly && (v.reported == nil || string(v.reason()) != c.verdict) {
				t.Fatalf("report-only verdict lost its reason: %+v", v)
			}
		})
	}
}

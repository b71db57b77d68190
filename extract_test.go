package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// request builds a request to target with "Name: value" header lines.
func request(target string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		r.Header.Add(name, strings.TrimSpace(value))
	}
	return r
}

func TestExtractToken(t *testing.T) {
	all := []TokenSource{
		{Header: "Authorization", Scheme: "Bearer"}, {Header: "X-Token"},
		{Query: "access_token"}, {Cookie: "jwt"},
	}
	cases := []struct {
		name    string
		sources []TokenSource
		target  string
		headers []string
		max     int
		token   string
		reason  Reason
	}{
		{name: "no credential", target: "/"},
		{name: "bearer", target: "/", headers: []string{"Authorization: Bearer a.b.c"}, token: "a.b.c"},
		{name: "scheme case-insensitive", target: "/", headers: []string{"Authorization: bEaReR a.b.c"}, token: "a.b.c"},
		{name: "tab after scheme", target: "/", headers: []string{"Authorization: Bearer\ta.b.c"}, token: "a.b.c"},
		{name: "other scheme ignored", target: "/", headers: []string{"Authorization: Basic dXNlcjpwdw=="}},
		{name: "scheme prefix is another scheme", target: "/", headers: []string{"Authorization: BearerX a.b.c"}},
		{name: "basic beside bearer", target: "/", headers: []string{"Authorization: Basic x", "Authorization: Bearer a.b.c"}, token: "a.b.c"},
		{name: "bearer without token", target: "/", headers: []string{"Authorization: Bearer"}, reason: ReasonMalformed},
		{name: "bearer with spaces only", target: "/", headers: []string{"Authorization: Bearer    "}, reason: ReasonMalformed},
		{name: "identical duplicates count once", target: "/", headers: []string{"Authorization: Bearer a.b.c", "Authorization: Bearer a.b.c"}, token: "a.b.c"},
		{name: "two header tokens", target: "/", headers: []string{"Authorization: Bearer a.b.c", "Authorization: Bearer d.e.f"}, reason: ReasonMultipleCredentials},
		{name: "query not read by default", target: "/?access_token=a.b.c"},
		{name: "cookie not read by default", target: "/", headers: []string{"Cookie: jwt=a.b.c"}},
		{name: "raw header", sources: all, target: "/", headers: []string{"X-Token:  a.b.c "}, token: "a.b.c"},
		{name: "query", sources: all, target: "/?x=1&access_token=a.b.c", token: "a.b.c"},
		{name: "empty query ignored", sources: all, target: "/?access_token=", token: ""},
		{name: "cookie", sources: all, target: "/", headers: []string{"Cookie: a=1; jwt=a.b.c"}, token: "a.b.c"},
		{name: "same token in header and query", sources: all, target: "/?access_token=a.b.c", headers: []string{"Authorization: Bearer a.b.c"}, token: "a.b.c"},
		{name: "header and different query", sources: all, target: "/?access_token=d.e.f", headers: []string{"Authorization: Bearer a.b.c"}, reason: ReasonMultipleCredentials},
		{name: "two query values", sources: all, target: "/?access_token=a.b.c&access_token=d.e.f", reason: ReasonMultipleCredentials},
		{name: "two cookies", sources: all, target: "/", headers: []string{"Cookie: jwt=a.b.c", "Cookie: jwt=d.e.f"}, reason: ReasonMultipleCredentials},
		{name: "cookie and raw header", sources: all, target: "/", headers: []string{"Cookie: jwt=a.b.c", "X-Token: d.e.f"}, reason: ReasonMultipleCredentials},
		{name: "only listed sources", sources: []TokenSource{{Query: "t"}}, target: "/?access_token=x.y.z", headers: []string{"Authorization: Bearer a.b.c"}},
		{name: "at max size", target: "/", headers: []string{"Authorization: Bearer 12345"}, max: 5, token: "12345"},
		{name: "over max size", target: "/", headers: []string{"Authorization: Bearer 123456"}, max: 5, reason: ReasonTooLarge},
		{name: "oversized query", sources: all, target: "/?access_token=123456", max: 5, reason: ReasonTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sources := c.sources
			if sources == nil {
				sources = defaultSources
			}
			maxSize := c.max
			if maxSize == 0 {
				maxSize = defaultMaxTokenSize
			}
			token, err := extractToken(request(c.target, c.headers...), sources, maxSize)
			if got := ReasonOf(err); got != c.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, c.reason)
			}
			if token != c.token {
				t.Fatalf("token %q, want %q", token, c.token)
			}
			if err != nil && strings.Contains(err.Error(), "a.b.c") {
				t.Fatalf("error echoes the token: %v", err)
			}
		})
	}
}

func TestStripCredentials(t *testing.T) {
	all := []TokenSource{
		{Header: "Authorization", Scheme: "Bearer"}, {Header: "X-Token"},
		{Query: "access_token"}, {Cookie: "jwt"},
	}
	cases := []struct {
		name        string
		sources     []TokenSource
		target      string
		headers     []string
		wantURI     string
		wantHeaders http.Header // the complete set of remaining headers
	}{
		{
			name: "bearer removed, basic kept", sources: defaultSources, target: "/p",
			headers:     []string{"Authorization: Bearer a.b.c", "Authorization: Basic x", "Accept: */*"},
			wantURI:     "/p",
			wantHeaders: http.Header{"Authorization": {"Basic x"}, "Accept": {"*/*"}},
		},
		{
			name: "query removed, other parameters untouched", sources: all,
			target:      "/p?z=2&access_token=a.b.c&a=%2f+x&access_token=d&q",
			wantURI:     "/p?z=2&a=%2f+x&q",
			wantHeaders: http.Header{},
		},
		{
			name: "escaped parameter name removed", sources: all,
			target:      "/p?access%5Ftoken=a.b.c&b=1",
			wantURI:     "/p?b=1",
			wantHeaders: http.Header{},
		},
		{
			name: "only parameter removed", sources: all, target: "/p?access_token=a.b.c",
			wantURI: "/p", wantHeaders: http.Header{},
		},
		{
			name: "cookie removed, others verbatim", sources: all, target: "/",
			headers:     []string{`Cookie: a="quoted value"; jwt=a.b.c; b=2`, "Cookie: jwt=a.b.c"},
			wantURI:     "/",
			wantHeaders: http.Header{"Cookie": {`a="quoted value"; b=2`}},
		},
		{
			name: "raw header and bearer removed", sources: all, target: "/",
			headers:     []string{"X-Token: a.b.c", "Authorization: Bearer a.b.c", "X-Other: 1"},
			wantURI:     "/",
			wantHeaders: http.Header{"X-Other": {"1"}},
		},
		{
			name: "unconfigured sources kept", sources: defaultSources, target: "/?access_token=a.b.c",
			headers:     []string{"Cookie: jwt=a.b.c"},
			wantURI:     "/?access_token=a.b.c",
			wantHeaders: http.Header{"Cookie": {"jwt=a.b.c"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(c.target, c.headers...)
			stripCredentials(r, c.sources)
			if r.RequestURI != c.wantURI || r.URL.RequestURI() != c.wantURI {
				t.Fatalf("URI %q / %q, want %q", r.RequestURI, r.URL.RequestURI(), c.wantURI)
			}
			if !reflect.DeepEqual(r.Header, c.wantHeaders) {
				t.Fatalf("headers %v, want %v", r.Header, c.wantHeaders)
			}
			if tok, err := extractToken(r, c.sources, defaultMaxTokenSize); tok != "" || err != nil {
				t.Fatalf("after stripping, a credential is still found: %q %v", tok, err)
			}
		})
	}
}

func TestFromHeader(t *testing.T) {
	cases := []struct {
		line, scheme, token string
		matched             bool
		reason              Reason
	}{
		{"Bearer x", "Bearer", "x", true, ""},
		{"DPoP x", "DPoP", "x", true, ""},
		{"DPoP x", "Bearer", "", false, ""},
		{"Bear", "Bearer", "", false, ""},
		{"Bearer", "Bearer", "", true, ReasonMalformed},
		{"Bearerx", "Bearer", "", false, ""},
		{"  raw  ", "", "raw", true, ""},
		{"", "", "", true, ""},
	}
	for _, c := range cases {
		token, matched, err := fromHeader(c.line, c.scheme)
		if token != c.token || matched != c.matched || ReasonOf(err) != c.reason {
			t.Errorf("fromHeader(%q, %q) = %q, %v, %v; want %q, %v, %q", c.line, c.scheme, token, matched, err, c.token, c.matched, c.reason)
		}
	}
}

func TestWarnLoggedSources(t *testing.T) {
	cases := []struct {
		sources []TokenSource
		want    []string // the field value each warning names
	}{
		{nil, nil},
		{defaultSources, nil},
		{[]TokenSource{{Header: "authorization"}, {Cookie: "jwt"}}, nil},
		{[]TokenSource{{Query: "access_token"}, {Header: "X-Api-Token"}}, []string{"access_token", "X-Api-Token"}},
	}
	for _, c := range cases {
		core, logs := observer.New(zap.WarnLevel)
		warnLoggedSources(zap.New(core), c.sources)
		var got []string
		for _, e := range logs.All() {
			for _, f := range e.Context {
				got = append(got, f.String)
			}
			if !strings.Contains(e.Message, "log filter") {
				t.Errorf("warning %q does not point to the log filter", e.Message)
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("sources %+v: warnings name %q, want %q", c.sources, got, c.want)
		}
	}
}

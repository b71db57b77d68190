package jwtauth

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestHTUMatches(t *testing.T) {
	tests := []struct {
		name     string
		htu, url string
		want     bool
	}{
		{"identical", "https://api.example.com/resource", "https://api.example.com/resource", true},
		// RFC 3986 §6.2.2's example, on http.
		{"RFC 3986 6.2.2", "hTTp://a/./b/../b/%63/%7bfoo%7d", "http://a/b/c/%7Bfoo%7D", true},
		// §6.2.2.1: scheme and host are case-insensitive.
		{"RFC 3986 6.2.2.1 case", "HTTP://www.EXAMPLE.com/", "http://www.example.com/", true},
		{"hex digits upper-cased", "http://a/%c3%a4", "http://a/%C3%A4", true},
		// §6.2.2.2: unreserved characters are the same encoded or not.
		{"RFC 3986 6.2.2.2 tilde", "http://example.com/%7Esmith/home.html", "http://example.com/~smith/home.html", true},
		{"encoded letter in host", "http://%45xample.com/", "http://example.com/", true},
		// §6.2.2.3 with the dot-segment examples of §5.2.4.
		{"RFC 3986 5.2.4 /a/b/c/./../../g", "http://a/a/b/c/./../../g", "http://a/a/g", true},
		{"RFC 3986 5.2.4 mid/content=5/../6", "http://a/mid/content=5/../6", "http://a/mid/6", true},
		{"encoded dot segment", "http://a/b/%2E%2E/c", "http://a/c", true},
		{"dot segments above the root", "http://a/../../g", "http://a/g", true},
		// §6.2.3: these four are equivalent.
		{"RFC 3986 6.2.3 no path", "http://example.com", "http://example.com/", true},
		{"RFC 3986 6.2.3 empty port", "http://example.com:/", "http://example.com/", true},
		{"RFC 3986 6.2.3 default port", "http://example.com:80/", "http://example.com/", true},
		{"https default port", "https://example.com:443/x", "https://example.com/x", true},
		{"port with leading zero", "https://example.com:0443/x", "https://example.com/x", true},
		{"IPv6 literal with default port", "https://[::1]:443/", "https://[::1]/", true},
		{"query ignored", "https://a/r?x=1", "https://a/r", true},
		{"fragment ignored", "https://a/r#frag", "https://a/r?y=2", true},
		{"raw non-ASCII equals its encoding", "https://a/\u00e4", "https://a/%C3%A4", true},

		{"other path", "https://a/r", "https://a/s", false},
		{"path is case-sensitive", "https://a/R", "https://a/r", false},
		{"trailing slash matters", "https://a/r/", "https://a/r", false},
		{"encoded slash is not a slash", "https://a/b%2Fc", "https://a/b/c", false},
		{"other host", "https://b/r", "https://a/r", false},
		{"other port", "https://a:8443/r", "https://a/r", false},
		{"http is not https", "http://a/r", "https://a/r", false},
		{"https port on http", "http://a:443/r", "https://a/r", false},
		{"userinfo", "https://user@a/r", "https://a/r", false},
		{"other scheme", "ftp://a/r", "ftp://a/r", false},
		{"relative", "/r", "/r", false},
		{"no authority", "https:/r", "https:/r", false},
		{"empty host", "https:///r", "https:///r", false},
		{"malformed escape", "https://a/%G1", "https://a/%G1", false},
		{"truncated escape", "https://a/%4", "https://a/%4", false},
		{"port not a number", "https://a:x/r", "https://a:x/r", false},
		{"port out of range", "https://a:65536/r", "https://a:65536/r", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htuMatches(tt.htu, tt.url); got != tt.want {
				a, errA := normalizeHTTPURL(tt.htu)
				b, errB := normalizeHTTPURL(tt.url)
				t.Fatalf("htuMatches = %v, want %v (%q %v / %q %v)", got, tt.want, a, errA, b, errB)
			}
			if got := htuMatches(tt.url, tt.htu); got != tt.want {
				t.Fatalf("not symmetric")
			}
		})
	}
}

func TestNormalizeHTTPURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"HTTPS://Example.COM:443", "https://example.com/"},
		{"http://a:8080/%7e%2f%41", "http://a:8080/~%2FA"},
		{"http://a/with space", "http://a/with%20space"},
		{"http://[FE80::1]:8080/", "http://[fe80::1]:8080/"},
	}
	for _, tt := range tests {
		if got, err := normalizeHTTPURL(tt.in); err != nil || got != tt.want {
			t.Errorf("normalizeHTTPURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// dpopCaddyRequest prepares r the way Caddy's server does, so the original
// request and the trusted_proxy variable are in its context.
func dpopCaddyRequest(r *http.Request, trustedProxy bool) *http.Request {
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
	caddyhttp.SetVar(r.Context(), caddyhttp.TrustedProxyVarKey, trustedProxy)
	return r
}

func TestDPoPRequestURL(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		tls     bool
		headers map[string]string
		trusted bool
		caddy   bool
		rewrite string // a later handler's rewrite of the path
		want    string
	}{
		{name: "plain http", target: "/a%2Fb?x=1", caddy: true, want: "http://example.com/a%2Fb"},
		{name: "tls", target: "/r", tls: true, caddy: true, want: "https://example.com/r"},
		{name: "host header with port", target: "/r", headers: map[string]string{"Host": "API.example.com:8443"}, caddy: true,
			want: "http://API.example.com:8443/r"},
		{name: "rewrite does not change the path", target: "/original/path", caddy: true, rewrite: "/rewritten",
			want: "http://example.com/original/path"},
		{name: "forwarded headers from an untrusted peer are ignored", target: "/r", caddy: true,
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			want:    "http://example.com/r"},
		{name: "forwarded headers from a trusted proxy count", target: "/r", caddy: true, trusted: true,
			headers: map[string]string{"X-Forwarded-Proto": "HTTPS", "X-Forwarded-Host": "public.example"},
			want:    "https://public.example/r"},
		{name: "first forwarded value", target: "/r", caddy: true, trusted: true,
			headers: map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "first.example, second.example"},
			want:    "https://first.example/r"},
		{name: "forwarded proto that is not http(s) is ignored", target: "/r", tls: true, caddy: true, trusted: true,
			headers: map[string]string{"X-Forwarded-Proto": "gopher"},
			want:    "https://example.com/r"},
		{name: "absolute-form target", target: "http://example.com/abs?q=1", caddy: true, want: "http://example.com/abs"},
		{name: "absolute-form target without path", target: "http://example.com?q=1", caddy: true, want: "http://example.com/"},
		{name: "outside Caddy", target: "/plain?x", want: "http://example.com/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			for k, v := range tt.headers {
				if k == "Host" {
					r.Host = v
				} else {
					r.Header.Set(k, v)
				}
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.caddy {
				r = dpopCaddyRequest(r, tt.trusted)
			}
			if tt.rewrite != "" {
				r.URL.Path, r.URL.RawPath, r.RequestURI = tt.rewrite, "", tt.rewrite
			}
			if got := dpopRequestURL(r); got != tt.want {
				t.Fatalf("dpopRequestURL = %q, want %q", got, tt.want)
			}
		})
	}
}

package jwtauth

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func intPtr(n int) *int { return &n }

// parseHandler runs the Caddyfile parser on input, as httpcaddyfile would.
func parseHandler(input string) (*Handler, error) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return &h, err
}

func TestUnmarshalCaddyfileFullGrammar(t *testing.T) {
	h, err := parseHandler(`jwt_auth {
		issuer https://a.example/ {
			jwks_url https://a.example/jwks
			audience api-a
			algorithms RS256
			token_type at+jwt
		}
		issuer https://b.example/ {
			jwks_file /etc/keys/b.pem
		}
		audience api other
		algorithms ES256 EdDSA
		token_type JWT
		leeway 5s
		max_lifetime 1h
		from_header Authorization Bearer
		from_header X-Token
		from_query access_token
		from_cookie jwt
		max_token_size 8KiB
		user_claim preferred_username
		require scope read:docs write:docs
		require realm_access.roles admin
		claim_header sub X-User-Id
		claim_header realm_access.roles X-Roles
		strip_token
		optional
		allow_preflight
		refresh_interval 5m
		min_refresh_interval 2s
		fetch_timeout 3s
		max_stale 1h
		cache_size 0
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Issuers: []IssuerConfig{
			{Issuer: "https://a.example/", JWKSURL: "https://a.example/jwks", Audience: []string{"api-a"}, Algorithms: []string{"RS256"}, TokenType: []string{"at+jwt"}},
			{Issuer: "https://b.example/", JWKSFile: "/etc/keys/b.pem"},
		},
		Audience:    []string{"api", "other"},
		Algorithms:  []string{"ES256", "EdDSA"},
		TokenType:   []string{"JWT"},
		Leeway:      new(caddy.Duration(5 * time.Second)),
		MaxLifetime: caddy.Duration(time.Hour),
		Sources: []TokenSource{
			{Header: "Authorization", Scheme: "Bearer"}, {Header: "X-Token"}, {Query: "access_token"}, {Cookie: "jwt"},
		},
		MaxTokenSize: 8 << 10,
		UserClaim:    "preferred_username",
		Require: []ClaimRule{
			{Claim: "scope", Values: []string{"read:docs", "write:docs"}},
			{Claim: "realm_access.roles", Values: []string{"admin"}},
		},
		ClaimHeaders: []ClaimHeader{
			{Claim: "sub", Header: "X-User-Id"}, {Claim: "realm_access.roles", Header: "X-Roles"},
		},
		StripToken: true, Optional: true, AllowPreflight: true,
		RefreshInterval:    caddy.Duration(5 * time.Minute),
		MinRefreshInterval: caddy.Duration(2 * time.Second),
		FetchTimeout:       caddy.Duration(3 * time.Second),
		MaxStale:           caddy.Duration(time.Hour),
		CacheSize:          intPtr(0),
	}
	if !reflect.DeepEqual(h.Config, want) {
		got, _ := json.Marshal(h.Config)
		exp, _ := json.Marshal(want)
		t.Fatalf("parsed config\n got %s\nwant %s", got, exp)
	}
}

func TestUnmarshalCaddyfileShortForm(t *testing.T) {
	cases := []struct {
		name, input string
		want        IssuerConfig
	}{
		{"jwks_url", "jwt_auth {\n issuer https://idp.example/\n jwks_url https://idp.example/keys\n}",
			IssuerConfig{Issuer: "https://idp.example/", JWKSURL: "https://idp.example/keys"}},
		{"jwks_url before issuer", "jwt_auth {\n jwks_url http://127.0.0.1:8080/keys\n issuer idp\n}",
			IssuerConfig{Issuer: "idp", JWKSURL: "http://127.0.0.1:8080/keys"}},
		{"jwks_file", "jwt_auth {\n issuer idp\n jwks_file keys.json\n}",
			IssuerConfig{Issuer: "idp", JWKSFile: "keys.json"}},
		{"discovery", "jwt_auth {\n issuer https://idp.example/realms/x\n}",
			IssuerConfig{Issuer: "https://idp.example/realms/x"}},
		{"localhost over http", "jwt_auth {\n issuer a\n jwks_url http://localhost/jwks\n}",
			IssuerConfig{Issuer: "a", JWKSURL: "http://localhost/jwks"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := parseHandler(c.input)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Issuers) != 1 || !reflect.DeepEqual(h.Issuers[0], c.want) {
				t.Fatalf("issuers %+v, want [%+v]", h.Issuers, c.want)
			}
			if h.Sources != nil || h.Require != nil || h.CacheSize != nil {
				t.Fatalf("defaults must stay unset in JSON: %+v", h.Config)
			}
		})
	}
}

func TestUnmarshalCaddyfileSizes(t *testing.T) {
	for in, want := range map[string]int{"100": 100, "16KiB": 16 << 10, "1kb": 1000, "2MiB": 2 << 20} {
		h, err := parseHandler("jwt_auth {\n issuer i\n jwks_file f\n max_token_size " + in + "\n}")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if h.MaxTokenSize != want {
			t.Fatalf("max_token_size %s = %d, want %d", in, h.MaxTokenSize, want)
		}
	}
}

// TestUnmarshalCaddyfileErrors checks every configuration error of SPEC
// "Caddyfile" fails while parsing, with a message naming file and line.
func TestUnmarshalCaddyfileErrors(t *testing.T) {
	const ok = "issuer https://idp.example/\n jwks_url https://idp.example/jwks\n"
	cases := []struct {
		name  string
		body  string // inside jwt_auth { ... }, which opens on line 1
		msg   string
		line  int
		extra string // text after the closing brace of the block
	}{
		{name: "unknown subdirective", body: ok + " frobnicate yes", msg: `unknown subdirective "frobnicate"`, line: 4},
		{name: "argument on directive line", body: ok, msg: "wrong argument count", line: 1, extra: "args"},
		{name: "missing issuer", body: "audience api", msg: "at least one issuer is required", line: 3},
		{name: "empty block", body: "", msg: "at least one issuer is required", line: 3},
		{name: "issuer without value", body: "issuer", msg: "wrong argument count", line: 2},
		{name: "issuer with two values", body: "issuer a b\n jwks_file f", msg: "wrong argument count", line: 2},
		{name: "issuer listed twice", body: "issuer a {\n jwks_file f\n }\n issuer a {\n jwks_file g\n }", msg: `issuer "a" is listed twice`, line: 8},
		{name: "empty issuer", body: `issuer ""` + "\n jwks_file f", msg: "issuer must not be empty", line: 4},
		{name: "malformed jwks_url", body: "issuer a\n jwks_url ://bad", msg: "jwks_url: invalid URL", line: 3},
		{name: "jwks_url without host", body: "issuer a\n jwks_url https:///jwks", msg: "has no host", line: 3},
		{name: "jwks_url ftp", body: "issuer a\n jwks_url ftp://idp.example/jwks", msg: "must use https", line: 3},
		{name: "http to a non-loopback host", body: "issuer a\n jwks_url http://idp.example/jwks", msg: "must use https (http is allowed only for loopback hosts)", line: 3},
		{name: "http in an issuer block", body: "issuer a {\n jwks_url http://10.0.0.1/jwks\n }", msg: "must use https", line: 3},
		{name: "discovery from a non-URL issuer", body: "issuer my-idp", msg: "without jwks_url or jwks_file the issuer must be an https URL", line: 3},
		{name: "discovery over http", body: "issuer http://idp.example", msg: "must use https", line: 3},
		{name: "discovery issuer with query", body: "issuer https://idp.example/?x=1", msg: "no query or fragment", line: 3},
		{name: "unknown algorithm", body: ok + " algorithms RS256 none", msg: `unknown algorithm "none"`, line: 4},
		{name: "unknown algorithm in issuer block", body: "issuer a {\n jwks_file f\n algorithms HS1\n }", msg: `unknown algorithm "HS1"`, line: 4},
		{name: "algorithms without values", body: ok + " algorithms", msg: "wrong argument count", line: 4},
		{name: "audience without values", body: ok + " audience", msg: "wrong argument count", line: 4},
		{name: "bad duration", body: ok + " leeway soon", msg: "leeway: ", line: 4},
		{name: "negative duration", body: ok + " max_stale -1h", msg: "max_stale must not be negative", line: 4},
		{name: "refresh_interval below floor", body: ok + " refresh_interval 500ms", msg: "refresh_interval must be at least 1s", line: 4},
		{name: "min_refresh_interval below floor", body: ok + " min_refresh_interval 10ms", msg: "min_refresh_interval must be at least 1s", line: 4},
		{name: "duration with two values", body: ok + " fetch_timeout 1s 2s", msg: "wrong argument count", line: 4},
		{name: "top-level jwks_url with several issuers", body: "issuer a\n issuer b\n jwks_url https://idp.example/jwks", msg: "top-level jwks_url or jwks_file needs exactly one issuer", line: 5},
		{name: "top-level jwks_file with several issuers", body: "issuer a\n jwks_file f\n issuer b", msg: "needs exactly one issuer", line: 5},
		{name: "top-level jwks_url with jwks_file", body: "issuer a\n jwks_url https://idp.example/jwks\n jwks_file f", msg: "jwks_url and jwks_file are mutually exclusive", line: 4},
		{name: "jwks_url with jwks_file in a block", body: "issuer a {\n jwks_file f\n jwks_url https://idp.example/jwks\n }", msg: "jwks_url and jwks_file are mutually exclusive", line: 4},
		{name: "key source at top and in block", body: "issuer a {\n jwks_file f\n }\n jwks_file g", msg: `issuer "a": key source given both at top level and in its block`, line: 6},
		{name: "unknown issuer option", body: "issuer a {\n jwks_file f\n leeway 5s\n }", msg: `unknown issuer option "leeway"`, line: 4},
		{name: "unknown issuer flag", body: "issuer a {\n jwks_file f\n strip_token\n }", msg: `unknown issuer option "strip_token"`, line: 4},
		{name: "bad max_token_size", body: ok + " max_token_size lots", msg: `max_token_size: invalid size "lots"`, line: 4},
		{name: "zero max_token_size", body: ok + " max_token_size 0", msg: "max_token_size: invalid size", line: 4},
		{name: "huge max_token_size", body: ok + " max_token_size 2GiB", msg: "max_token_size: invalid size", line: 4},
		{name: "bad cache_size", body: ok + " cache_size many", msg: `cache_size: "many" is not a non-negative integer`, line: 4},
		{name: "negative cache_size", body: ok + " cache_size -1", msg: "not a non-negative integer", line: 4},
		{name: "claim_header with bad header name", body: ok + " claim_header sub X-User:Id", msg: `claim_header: "X-User:Id" is not a valid header name`, line: 4},
		{name: "claim_header with one argument", body: ok + " claim_header sub", msg: "claim_header needs a claim and a header name", line: 4},
		{name: "require without values", body: ok + " require scope", msg: "require needs a claim and at least one value", line: 4},
		{name: "from_header without name", body: ok + " from_header", msg: "wrong argument count", line: 4},
		{name: "from_header with three arguments", body: ok + " from_header Authorization Bearer x", msg: "wrong argument count", line: 4},
		{name: "from_query without name", body: ok + " from_query", msg: "wrong argument count", line: 4},
		{name: "from_cookie with two names", body: ok + " from_cookie a b", msg: "wrong argument count", line: 4},
		{name: "flag with argument", body: ok + " strip_token yes", msg: "wrong argument count", line: 4},
		{name: "user_claim without value", body: ok + " user_claim", msg: "wrong argument count", line: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			input := "jwt_auth " + c.extra + " {\n " + c.body + "\n}"
			_, err := parseHandler(input)
			if err == nil {
				t.Fatalf("no error for:\n%s", input)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not contain %q", err, c.msg)
			}
			if at := fmt.Sprintf(", at Testfile:%d", c.line); !strings.HasSuffix(err.Error(), at) {
				t.Fatalf("error %q does not end with %q", err, at)
			}
		})
	}
}

// TestJSONConfigErrorsMatchCaddyfile: a JSON config is checked by the same
// rules at the top of Provision, before any key source is acquired.
func TestJSONConfigErrorsMatchCaddyfile(t *testing.T) {
	bad := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"no issuer", Config{}, "at least one issuer is required"},
		{"both sources", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f", JWKSURL: "https://x/"}}}, "mutually exclusive"},
		{"http", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSURL: "http://x.example/"}}}, "must use https"},
		{"algorithm", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, Algorithms: []string{"none"}}, "unknown algorithm"},
		{"floor", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, RefreshInterval: caddy.Duration(time.Millisecond)}, "at least 1s"},
		{"max_token_size", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, MaxTokenSize: -1}, "max_token_size"},
		{"cache_size", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, CacheSize: intPtr(-5)}, "cache_size"},
		{"source with two places", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, Sources: []TokenSource{{Header: "A", Query: "q"}}}, "exactly one of header, query or cookie"},
		{"empty source", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, Sources: []TokenSource{{}}}, "exactly one of header, query or cookie"},
		{"scheme on a query", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, Sources: []TokenSource{{Query: "q", Scheme: "Bearer"}}}, "scheme applies to a header only"},
		{"require without values", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, Require: []ClaimRule{{Claim: "scope"}}}, "require needs"},
		{"claim header name", Config{Issuers: []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}, ClaimHeaders: []ClaimHeader{{Claim: "sub", Header: "X User"}}}, "not a valid header name"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.validate()
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("validate() = %v, want an error containing %q", err, c.msg)
			}
		})
	}
}

// adaptCaddyfile is a full configuration, every option set, whose JSON form
// must use SPEC's field names.
const adaptCaddyfile = `{
	admin localhost:2999
	http_port 9080
}

:9080 {
	jwt_auth /api/* {
		issuer https://a.example/ {
			jwks_url https://a.example/jwks
			audience api-a
			algorithms RS256 PS256
			token_type at+jwt
		}
		issuer https://b.example/ {
			jwks_file /etc/keys/b.pem
		}
		audience api
		algorithms ES256
		token_type JWT
		leeway 5s
		max_lifetime 1h
		from_header Authorization Bearer
		from_query access_token
		from_cookie jwt
		max_token_size 8KiB
		user_claim email
		require scope read
		claim_header sub X-User-Id
		strip_token
		optional
		allow_preflight
		refresh_interval 5m
		min_refresh_interval 2s
		fetch_timeout 3s
		max_stale 1h
		cache_size 0
	}
	basic_auth /admin/* {
		admin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
	respond "ok"
}
`

const adaptJSON = `{
	"admin": {
		"listen": "localhost:2999"
	},
	"apps": {
		"http": {
			"http_port": 9080,
			"servers": {
				"srv0": {
					"listen": [
						":9080"
					],
					"routes": [
						{
							"match": [
								{
									"path": [
										"/api/*"
									]
								}
							],
							"handle": [
								{
									"algorithms": [
										"ES256"
									],
									"allow_preflight": true,
									"audience": [
										"api"
									],
									"cache_size": 0,
									"claim_headers": [
										{
											"claim": "sub",
											"header": "X-User-Id"
										}
									],
									"fetch_timeout": 3000000000,
									"handler": "jwt_auth",
									"issuers": [
										{
											"algorithms": [
												"RS256",
												"PS256"
											],
											"audience": [
												"api-a"
											],
											"issuer": "https://a.example/",
											"jwks_url": "https://a.example/jwks",
											"token_type": [
												"at+jwt"
											]
										},
										{
											"issuer": "https://b.example/",
											"jwks_file": "/etc/keys/b.pem"
										}
									],
									"leeway": 5000000000,
									"max_lifetime": 3600000000000,
									"max_stale": 3600000000000,
									"max_token_size": 8192,
									"min_refresh_interval": 2000000000,
									"optional": true,
									"refresh_interval": 300000000000,
									"require": [
										{
											"claim": "scope",
											"values": [
												"read"
											]
										}
									],
									"sources": [
										{
											"header": "Authorization",
											"scheme": "Bearer"
										},
										{
											"query": "access_token"
										},
										{
											"cookie": "jwt"
										}
									],
									"strip_token": true,
									"token_type": [
										"JWT"
									],
									"user_claim": "email"
								}
							]
						},
						{
							"match": [
								{
									"path": [
										"/admin/*"
									]
								}
							],
							"handle": [
								{
									"handler": "authentication",
									"providers": {
										"http_basic": {
											"accounts": [
												{
													"password": "$2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG",
													"username": "admin"
												}
											],
											"hash": {
												"algorithm": "bcrypt"
											},
											"hash_cache": {}
										}
									}
								}
							]
						},
						{
							"handle": [
								{
									"body": "ok",
									"handler": "static_response"
								}
							]
						}
					]
				}
			}
		}
	}
}`

// TestCaddyfileAdaptsToSpecJSON also proves the directive order: jwt_auth
// comes before basic_auth without any `order` option.
func TestCaddyfileAdaptsToSpecJSON(t *testing.T) {
	caddytest.AssertAdapt(t, adaptCaddyfile, "caddyfile", adaptJSON)
}

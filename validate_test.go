package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// configCase is one configuration in both forms: the body of a jwt_auth
// block and the handler's JSON fields it adapts to. $FILE and $URL stand
// for a real JWKS file and a real JWKS server, so that a valid config also
// provisions.
type configCase struct {
	name      string
	caddyfile string
	json      string
	// err is validate's message for an invalid config, "" for a valid one.
	err string
}

// configCorpus covers every rule of Config.validate that the Caddyfile can
// express, plus valid configs at the edges of those rules.
var configCorpus = []configCase{
	// Valid.
	{name: "short form with a file", caddyfile: "issuer a\njwks_file $FILE",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}]}`},
	{name: "short form with a loopback http URL", caddyfile: "issuer a\njwks_url $URL",
		json: `{"issuers":[{"issuer":"a","jwks_url":"$URL"}]}`},
	{name: "two issuers with blocks", caddyfile: "issuer a {\njwks_file $FILE\nalgorithms ES256\n}\nissuer b {\njwks_url $URL\naudience x\n}",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","algorithms":["ES256"]},{"issuer":"b","jwks_url":"$URL","audience":["x"]}]}`},
	{name: "leeway 0 is kept", caddyfile: "issuer a\njwks_file $FILE\nleeway 0",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"leeway":0}`},
	{name: "refresh intervals at the floor", caddyfile: "issuer a\njwks_file $FILE\nrefresh_interval 1s\nmin_refresh_interval 1s",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"refresh_interval":1000000000,"min_refresh_interval":1000000000}`},
	{name: "max_token_size at the limit, cache off", caddyfile: "issuer a\njwks_file $FILE\nmax_token_size 1GiB\ncache_size 0",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"max_token_size":1073741824,"cache_size":0}`},
	{name: "policy options", caddyfile: "issuer a\njwks_file $FILE\nrequire scope read\nclaim_header sub X-User\nfrom_query t",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"require":[{"claim":"scope","values":["read"]}],"claim_headers":[{"claim":"sub","header":"X-User"}],"sources":[{"query":"t"}]}`},

	{name: "binding options", caddyfile: "issuer a {\njwks_file $FILE\ndpop off\nmtls required\n}\ndpop required\ndpop_algorithms ES256 EdDSA\ndpop_max_age 30s\nmtls allowed",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","dpop":"off","mtls":"required"}],"dpop":"required","dpop_algorithms":["ES256","EdDSA"],"dpop_max_age":30000000000,"mtls":"allowed"}`},

	// Sender-constrained tokens.
	{name: "unknown dpop mode", caddyfile: "issuer a\njwks_file $FILE\ndpop sometimes",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"dpop":"sometimes"}`, err: `dpop must be off, allowed or required, not "sometimes"`},
	{name: "unknown mtls mode", caddyfile: "issuer a\njwks_file $FILE\nmtls on",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"mtls":"on"}`, err: `mtls must be off, allowed or required, not "on"`},
	{name: "unknown dpop mode in an issuer block", caddyfile: "issuer a {\njwks_file $FILE\ndpop Required\n}",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","dpop":"Required"}]}`, err: `issuer "a": dpop must be off, allowed or required, not "Required"`},
	{name: "unknown mtls mode in an issuer block", caddyfile: "issuer a {\njwks_file $FILE\nmtls yes\n}",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","mtls":"yes"}]}`, err: `issuer "a": mtls must be off, allowed or required, not "yes"`},
	{name: "symmetric dpop algorithm", caddyfile: "issuer a\njwks_file $FILE\ndpop_algorithms ES256 HS256",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"dpop_algorithms":["ES256","HS256"]}`, err: `dpop_algorithms: "HS256" is not an asymmetric JWS algorithm (known: ` + strings.Join(defaultDPoPAlgorithms(), " ") + `)`},
	{name: "dpop algorithm none", caddyfile: "issuer a\njwks_file $FILE\ndpop_algorithms none",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"dpop_algorithms":["none"]}`, err: `dpop_algorithms: "none" is not an asymmetric JWS algorithm (known: ` + strings.Join(defaultDPoPAlgorithms(), " ") + `)`},
	{name: "unknown dpop algorithm", caddyfile: "issuer a\njwks_file $FILE\ndpop_algorithms ES257",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"dpop_algorithms":["ES257"]}`, err: `dpop_algorithms: "ES257" is not an asymmetric JWS algorithm (known: ` + strings.Join(defaultDPoPAlgorithms(), " ") + `)`},
	{name: "negative dpop_max_age", caddyfile: "issuer a\njwks_file $FILE\ndpop_max_age -1s",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"dpop_max_age":-1000000000}`, err: "dpop_max_age must not be negative"},
	{name: "dpop_nonce with dpop off", caddyfile: "issuer a\njwks_file $FILE\ndpop off\ndpop_nonce",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"dpop":"off","dpop_nonce":true}`, err: "dpop_nonce needs dpop allowed or required for at least one issuer"},

	// Issuers.
	{name: "no issuer", caddyfile: "audience api",
		json: `{"audience":["api"]}`, err: "at least one issuer is required"},
	{name: "empty issuer", caddyfile: `issuer ""` + "\njwks_file $FILE",
		json: `{"issuers":[{"issuer":"","jwks_file":"$FILE"}]}`, err: "issuer must not be empty"},
	{name: "issuer listed twice", caddyfile: "issuer a {\njwks_file $FILE\n}\nissuer a {\njwks_file $FILE\n}",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"},{"issuer":"a","jwks_file":"$FILE"}]}`, err: `issuer "a" is listed twice`},
	{name: "jwks_url and jwks_file", caddyfile: "issuer a {\njwks_file $FILE\njwks_url $URL\n}",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","jwks_url":"$URL"}]}`, err: `issuer "a": jwks_url and jwks_file are mutually exclusive`},
	{name: "short form jwks_url and jwks_file", caddyfile: "issuer a\njwks_url $URL\njwks_file $FILE",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","jwks_url":"$URL"}]}`, err: `issuer "a": jwks_url and jwks_file are mutually exclusive`},
	{name: "malformed jwks_url", caddyfile: "issuer a\njwks_url ://bad",
		json: `{"issuers":[{"issuer":"a","jwks_url":"://bad"}]}`, err: `issuer "a": jwks_url: invalid URL: parse "://bad": missing protocol scheme`},
	{name: "jwks_url without host", caddyfile: "issuer a\njwks_url https:///jwks",
		json: `{"issuers":[{"issuer":"a","jwks_url":"https:///jwks"}]}`, err: `issuer "a": jwks_url: URL "https:///jwks" has no host`},
	{name: "jwks_url over ftp", caddyfile: "issuer a\njwks_url ftp://idp.example/jwks",
		json: `{"issuers":[{"issuer":"a","jwks_url":"ftp://idp.example/jwks"}]}`, err: `issuer "a": jwks_url: URL "ftp://idp.example/jwks" must use https`},
	{name: "http to a non-loopback host", caddyfile: "issuer a {\njwks_url http://10.0.0.1/jwks\n}",
		json: `{"issuers":[{"issuer":"a","jwks_url":"http://10.0.0.1/jwks"}]}`, err: `issuer "a": jwks_url: URL "http://10.0.0.1/jwks" must use https (http is allowed only for loopback hosts)`},
	{name: "discovery from a non-URL issuer", caddyfile: "issuer my-idp",
		json: `{"issuers":[{"issuer":"my-idp"}]}`, err: `issuer "my-idp": without jwks_url or jwks_file the issuer must be an https URL for OpenID Connect discovery: URL "my-idp/.well-known/openid-configuration" has no host`},
	{name: "discovery over http", caddyfile: "issuer http://idp.example",
		json: `{"issuers":[{"issuer":"http://idp.example"}]}`, err: `issuer "http://idp.example": without jwks_url or jwks_file the issuer must be an https URL for OpenID Connect discovery: URL "http://idp.example/.well-known/openid-configuration" must use https (http is allowed only for loopback hosts)`},
	{name: "discovery issuer with a query", caddyfile: "issuer https://idp.example/?x=1",
		json: `{"issuers":[{"issuer":"https://idp.example/?x=1"}]}`, err: `issuer "https://idp.example/?x=1": an issuer used for discovery has no query or fragment`},

	// Algorithms.
	{name: "unknown algorithm", caddyfile: "issuer a\njwks_file $FILE\nalgorithms RS256 none",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"algorithms":["RS256","none"]}`, err: `unknown algorithm "none" (known: ` + strings.Join(jose.DefaultAlgorithms(), " ") + ` HS256 HS384 HS512)`},
	{name: "unknown algorithm in an issuer block", caddyfile: "issuer a {\njwks_file $FILE\nalgorithms HS1\n}",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE","algorithms":["HS1"]}]}`, err: `issuer "a": unknown algorithm "HS1" (known: ` + strings.Join(jose.DefaultAlgorithms(), " ") + ` HS256 HS384 HS512)`},

	// Durations.
	{name: "negative leeway", caddyfile: "issuer a\njwks_file $FILE\nleeway -1s",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"leeway":-1000000000}`, err: "leeway must not be negative"},
	{name: "negative max_lifetime", caddyfile: "issuer a\njwks_file $FILE\nmax_lifetime -1h",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"max_lifetime":-3600000000000}`, err: "max_lifetime must not be negative"},
	{name: "negative fetch_timeout", caddyfile: "issuer a\njwks_file $FILE\nfetch_timeout -1s",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"fetch_timeout":-1000000000}`, err: "fetch_timeout must not be negative"},
	{name: "negative max_stale", caddyfile: "issuer a\njwks_file $FILE\nmax_stale -1h",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"max_stale":-3600000000000}`, err: "max_stale must not be negative"},
	{name: "refresh_interval below the floor", caddyfile: "issuer a\njwks_file $FILE\nrefresh_interval 500ms",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"refresh_interval":500000000}`, err: "refresh_interval must be at least 1s"},
	{name: "min_refresh_interval below the floor", caddyfile: "issuer a\njwks_file $FILE\nmin_refresh_interval 10ms",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"min_refresh_interval":10000000}`, err: "min_refresh_interval must be at least 1s"},

	// Sizes.
	{name: "max_token_size above 1GiB", caddyfile: "issuer a\njwks_file $FILE\nmax_token_size 2GiB",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"max_token_size":2147483648}`, err: "max_token_size must be at most 1073741824 bytes (1GiB)"},
	{name: "negative cache_size", caddyfile: "issuer a\njwks_file $FILE\ncache_size -1",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"cache_size":-1}`, err: "cache_size must not be negative"},

	// Policy.
	{name: "require with an empty claim", caddyfile: "issuer a\njwks_file $FILE\n" + `require "" admin`,
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"require":[{"claim":"","values":["admin"]}]}`, err: "require needs a claim and at least one value"},
	{name: "claim_header with an empty claim", caddyfile: "issuer a\njwks_file $FILE\n" + `claim_header "" X-User`,
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"claim_headers":[{"claim":"","header":"X-User"}]}`, err: "claim_header needs a claim and a header name"},
	{name: "claim_header with a bad header name", caddyfile: "issuer a\njwks_file $FILE\nclaim_header sub X-User:Id",
		json: `{"issuers":[{"issuer":"a","jwks_file":"$FILE"}],"claim_headers":[{"claim":"sub","header":"X-User:Id"}]}`, err: `claim_header: "X-User:Id" is not a valid header name`},
}

// TestConfigCorpusBothForms feeds every corpus config through the Caddyfile
// adapter and, as JSON, through Provision: both must accept the same
// configs and refuse the others with the same message, the Caddyfile's
// naming the file and the line of the block's end.
func TestConfigCorpusBothForms(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwttest.JWKS(jwttest.NewEC(t, "ES256", "k")), 0o600); err != nil {
		t.Fatal(err)
	}
	url := jwttest.NewServer(t, jwttest.NewEC(t, "ES256", "k")).JWKSURL()
	subst := strings.NewReplacer("$FILE", file, "$URL", url)
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter registered")
	}
	for _, c := range configCorpus {
		t.Run(c.name, func(t *testing.T) {
			body, jsonFields := subst.Replace(c.caddyfile), subst.Replace(c.json)
			caddyfile := ":9080 {\n\tjwt_auth {\n" + body + "\n\t}\n}\n"
			endLine := strings.Count(caddyfile, "\n") - 1 // the jwt_auth block's closing brace
			adapted, _, cfErr := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
			jsonErr := provisionJSON(t, jsonFields)

			if c.err == "" {
				if cfErr != nil || jsonErr != nil {
					t.Fatalf("valid config refused: Caddyfile: %v; JSON: %v", cfErr, jsonErr)
				}
				if got := adaptedHandler(t, adapted); !jsonEqual(t, got, `{"handler":"jwt_auth",`+jsonFields[1:]) {
					t.Fatalf("the Caddyfile adapts to\n%s\nnot the JSON form\n%s", got, jsonFields)
				}
				return
			}
			if jsonErr == nil || jsonErr.Error() != "jwt_auth: "+c.err {
				t.Errorf("JSON: Provision = %v, want %q", jsonErr, "jwt_auth: "+c.err)
			}
			wantSuffix := ": " + c.err + ", at Caddyfile:" + strconv.Itoa(endLine)
			if cfErr == nil || !strings.HasSuffix(cfErr.Error(), wantSuffix) {
				t.Errorf("Caddyfile: Adapt = %v, want an error ending %q", cfErr, wantSuffix)
			}
		})
	}
}

// provisionJSON decodes fields as a handler's JSON, as Caddy does, and
// provisions it; a handler that provisions is cleaned up again.
func provisionJSON(t *testing.T, fields string) error {
	t.Helper()
	var h Handler
	dec := json.NewDecoder(strings.NewReader(fields))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("corpus JSON %s: %v", fields, err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		return err
	}
	if err := h.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	return nil
}

// adaptedHandler is the jwt_auth handler of an adapted one-site config.
func adaptedHandler(t *testing.T, adapted []byte) []byte {
	t.Helper()
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, route := range srv.Routes {
			for _, h := range route.Handle {
				if bytes.Contains(h, []byte(`"handler":"jwt_auth"`)) {
					return h
				}
			}
		}
	}
	t.Fatalf("no jwt_auth handler in %s", adapted)
	return nil
}

func jsonEqual(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestValidateJSONOnlyRules covers the rules only a JSON config can break:
// the Caddyfile cannot spell these configurations.
func TestValidateJSONOnlyRules(t *testing.T) {
	iss := []IssuerConfig{{Issuer: "a", JWKSFile: "f"}}
	bad := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"negative max_token_size", Config{Issuers: iss, MaxTokenSize: -1}, "max_token_size must not be negative"},
		{"source with two places", Config{Issuers: iss, Sources: []TokenSource{{Header: "A", Query: "q"}}}, "each token source names exactly one of header, query or cookie"},
		{"empty source", Config{Issuers: iss, Sources: []TokenSource{{}}}, "each token source names exactly one of header, query or cookie"},
		{"scheme on a query", Config{Issuers: iss, Sources: []TokenSource{{Query: "q", Scheme: "Bearer"}}}, "a token source's scheme applies to a header only"},
		{"require without values", Config{Issuers: iss, Require: []ClaimRule{{Claim: "scope"}}}, "require needs a claim and at least one value"},
		{"claim_header without header", Config{Issuers: iss, ClaimHeaders: []ClaimHeader{{Claim: "sub"}}}, "claim_header needs a claim and a header name"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if err := c.cfg.validate(); err == nil || err.Error() != c.msg {
				t.Fatalf("validate() = %v, want %q", err, c.msg)
			}
		})
	}
}

// TestLeewayZeroIsConfigurable: absent means the default, an explicit 0
// means none, in both forms.
func TestLeewayZeroIsConfigurable(t *testing.T) {
	zero := caddy.Duration(0)
	five := caddy.Duration(5 * time.Second)
	for _, c := range []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		{"absent", Config{}, defaultLeeway},
		{"zero", Config{Leeway: &zero}, 0},
		{"set", Config{Leeway: &five}, 5 * time.Second},
	} {
		if got := c.cfg.leeway(); got != c.want {
			t.Errorf("%s: leeway() = %s, want %s", c.name, got, c.want)
		}
	}
	h, err := parseHandler("jwt_auth {\n issuer a\n jwks_file f\n leeway 0\n}")
	if err != nil {
		t.Fatal(err)
	}
	if h.Leeway == nil || *h.Leeway != 0 {
		t.Fatalf("leeway 0 parsed as %v, want a pointer to 0", h.Leeway)
	}
	out, err := json.Marshal(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"leeway":0`)) {
		t.Fatalf("leeway 0 is lost in JSON: %s", out)
	}
}

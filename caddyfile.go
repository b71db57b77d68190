package jwtauth

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("jwt_auth", parseCaddyfile)
	// Authentication runs before basic_auth, so no `order` option is needed.
	httpcaddyfile.RegisterDirectiveOrder("jwt_auth", httpcaddyfile.Before, "basic_auth")
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	jwt_auth [<matcher>] {
//		issuer <string> [{ jwks_url|jwks_file|audience|algorithms|token_type ... }]
//		jwks_url <url>
//		jwks_file <path>
//		audience <aud...>
//		algorithms <alg...>
//		token_type <typ...>
//		leeway <duration>
//		max_lifetime <duration>
//		from_header <name> [<scheme>]
//		from_query <param>
//		from_cookie <name>
//		max_token_size <size>
//		user_claim <claim>
//		require <claim> <value...>
//		claim_header <claim> <Header>
//		strip_token
//		optional
//		report_only
//		allow_preflight
//		refresh_interval <duration>
//		min_refresh_interval <duration>
//		fetch_timeout <duration>
//		max_stale <duration>
//		cache_size <n>
//		dpop off|allowed|required
//		dpop_algorithms <alg...>
//		dpop_max_age <duration>
//		dpop_replay_size <n>
//		dpop_nonce
//		mtls off|allowed|required
//		resource <url> [{ scopes_supported|resource_name|resource_documentation|resource_policy_uri|resource_tos_uri ... }]
//	}
//
// The parser checks syntax only (argument counts, unknown subdirectives,
// durations, sizes and integers that do not parse); every other rule is
// Config.validate's, run at the end with the error naming the file and line
// of the block's end, the same rules a JSON config meets in Provision.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	var top IssuerConfig // top-level jwks_url/jwks_file of the short form
	for d.NextBlock(0) {
		if err := h.unmarshalOption(d, &top); err != nil {
			return err
		}
	}
	if top.JWKSURL != "" || top.JWKSFile != "" {
		if len(h.Issuers) != 1 {
			return d.Errf("top-level jwks_url or jwks_file needs exactly one issuer; with several, put it in each issuer's block")
		}
		ic := &h.Issuers[0]
		if ic.JWKSURL != "" || ic.JWKSFile != "" {
			return d.Errf("issuer %q: key source given both at top level and in its block", ic.Issuer)
		}
		ic.JWKSURL, ic.JWKSFile = top.JWKSURL, top.JWKSFile
	}
	if err := h.validate(); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

func (h *Handler) unmarshalOption(d *caddyfile.Dispenser, top *IssuerConfig) error {
	switch name := d.Val(); name {
	case "issuer":
		return h.unmarshalIssuer(d)
	case "resource":
		return h.unmarshalResource(d)
	case "jwks_url", "jwks_file", "audience", "algorithms", "token_type":
		return h.unmarshalIssuerOption(d, top, true)
	case "dpop":
		return stringArg(d, &h.DPoP)
	case "mtls":
		return stringArg(d, &h.MTLS)
	case "dpop_algorithms":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		h.DPoPAlgorithms = append(h.DPoPAlgorithms, args...)
	case "dpop_max_age":
		return parseDurationArg(d, &h.DPoPMaxAge)
	case "dpop_nonce":
		return flag(d, &h.DPoPNonce)
	case "leeway":
		h.Leeway = new(caddy.Duration)
		return parseDurationArg(d, h.Leeway)
	case "max_lifetime":
		return parseDurationArg(d, &h.MaxLifetime)
	case "refresh_interval":
		return parseDurationArg(d, &h.RefreshInterval)
	case "min_refresh_interval":
		return parseDurationArg(d, &h.MinRefreshInterval)
	case "fetch_timeout":
		return parseDurationArg(d, &h.FetchTimeout)
	case "max_stale":
		return parseDurationArg(d, &h.MaxStale)
	case "from_header":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return d.ArgErr()
		}
		src := TokenSource{Header: args[0]}
		if len(args) == 2 {
			src.Scheme = args[1]
		}
		h.Sources = append(h.Sources, src)
	case "from_query":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		h.Sources = append(h.Sources, TokenSource{Query: v})
	case "from_cookie":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		h.Sources = append(h.Sources, TokenSource{Cookie: v})
	case "max_token_size":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		// 0 is refused here because the JSON form cannot tell it from
		// absent; the upper bound is validate's.
		size, err := humanize.ParseBytes(v)
		if err != nil || size == 0 || size > uint64(math.MaxInt) {
			return d.Errf("max_token_size: invalid size %q", v)
		}
		h.MaxTokenSize = int(size)
	case "user_claim":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		h.UserClaim = v
	case "require":
		args := d.RemainingArgs()
		if len(args) < 2 {
			return d.Errf("require needs a claim and at least one value")
		}
		h.Require = append(h.Require, ClaimRule{Claim: args[0], Values: args[1:]})
	case "claim_header":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("claim_header needs a claim and a header name")
		}
		h.ClaimHeaders = append(h.ClaimHeaders, ClaimHeader{Claim: args[0], Header: args[1]})
	case "strip_token":
		return flag(d, &h.StripToken)
	case "optional":
		return flag(d, &h.Optional)
	case "report_only":
		return flag(d, &h.ReportOnly)
	case "allow_preflight":
		return flag(d, &h.AllowPreflight)
	case "cache_size":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return d.Errf("cache_size: %q is not an integer", v)
		}
		h.CacheSize = &n
	case "dpop_replay_size":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n == 0 {
			// 0 would read as "absent" in JSON: the default.
			return d.Errf("dpop_replay_size: %q is not a positive integer", v)
		}
		h.DPoPReplaySize = n
	default:
		return d.Errf("unknown subdirective %q", name)
	}
	return nil
}

// unmarshalIssuer reads `issuer <string> [{ ... }]`.
func (h *Handler) unmarshalIssuer(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	ic := IssuerConfig{Issuer: d.Val()}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := h.unmarshalIssuerOption(d, &ic, false); err != nil {
			return err
		}
	}
	h.Issuers = append(h.Issuers, ic)
	return nil
}

// unmarshalResource reads `resource <url> [{ ... }]`. Each value is checked
// as it is read, so an error names its own line.
func (h *Handler) unmarshalResource(d *caddyfile.Dispenser) error {
	if h.Resource != nil {
		return d.Errf("resource given twice")
	}
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	rc := &ResourceConfig{Resource: v}
	if err := rc.validate(); err != nil {
		return d.Errf("%v", err)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name == "scopes_supported" {
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			rc.ScopesSupported = append(rc.ScopesSupported, args...)
		} else {
			dst, ok := map[string]*string{
				"resource_name":          &rc.ResourceName,
				"resource_documentation": &rc.ResourceDocumentation,
				"resource_policy_uri":    &rc.ResourcePolicyURI,
				"resource_tos_uri":       &rc.ResourceTOSURI,
			}[name]
			if !ok {
				return d.Errf("unknown resource option %q", name)
			}
			if *dst, err = singleArg(d); err != nil {
				return err
			}
		}
		if err := rc.validate(); err != nil {
			return d.Errf("%v", err)
		}
	}
	h.Resource = rc
	return nil
}

// unmarshalIssuerOption reads an option that an issuer block may set, or
// (topLevel) its default for every issuer.
func (h *Handler) unmarshalIssuerOption(d *caddyfile.Dispenser, ic *IssuerConfig, topLevel bool) error {
	name := d.Val()
	switch name {
	case "jwks_url", "jwks_file":
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		if name == "jwks_url" {
			ic.JWKSURL = v
		} else {
			ic.JWKSFile = v
		}
		return nil
	case "dpop", "mtls":
		if !topLevel {
			if name == "dpop" {
				return stringArg(d, &ic.DPoP)
			}
			return stringArg(d, &ic.MTLS)
		}
	}
	target := map[string]*[]string{"audience": &ic.Audience, "algorithms": &ic.Algorithms, "token_type": &ic.TokenType}
	if topLevel {
		target = map[string]*[]string{"audience": &h.Audience, "algorithms": &h.Algorithms, "token_type": &h.TokenType}
	}
	// Name the option before counting its arguments, so a misplaced
	// top-level flag in an issuer block is reported as what it is.
	dst, ok := target[name]
	if !ok {
		return d.Errf("unknown issuer option %q", name)
	}
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

func singleArg(d *caddyfile.Dispenser) (string, error) {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.ArgErr()
	}
	return args[0], nil
}

func stringArg(d *caddyfile.Dispenser, dst *string) error {
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func flag(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

func parseDurationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s: %v", name, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

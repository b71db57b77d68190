// Package jwtauth is a Caddy HTTP handler that lets through only requests
// carrying a valid JWT from a configured issuer, verified against the
// issuer's published keys (JWKS).
package jwtauth

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// Handler is the jwt_auth HTTP handler: it verifies the request's JWT and
// either passes the request on with the claims as placeholders and headers,
// or answers with an RFC 6750 error.
type Handler struct {
	Config

	auth *authenticator
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.jwt_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the configuration (again, for JSON configs) and acquires
// the key sources. It never blocks on the network.
func (h *Handler) Provision(ctx caddy.Context) error {
	auth, err := newAuthenticator(ctx, &h.Config)
	if err != nil {
		return err
	}
	h.auth = auth
	warnLoggedSources(h.auth.logger, h.Sources)
	if h.ReportOnly {
		h.auth.logger.Warn("report_only is set: nothing is enforced; every request goes on, whatever its token")
	}
	if h.Optional && len(h.Require) > 0 {
		h.auth.logger.Warn("optional is set: anonymous requests pass without the require rules being checked")
	}
	return nil
}

// Validate is satisfied once Provision has built the authenticator; the
// configuration itself was checked at the top of Provision.
func (h *Handler) Validate() error {
	if h.auth == nil {
		return fmt.Errorf("jwt_auth: not provisioned")
	}
	return nil
}

// Cleanup releases the key sources Provision acquired, exactly once.
func (h *Handler) Cleanup() error {
	if h.auth == nil {
		return nil
	}
	return h.auth.release()
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The resource metadata is public (RFC 9728 §3): a client fetches it
	// before it has a token.
	if res := h.auth.resource; res != nil && res.matches(r) {
		res.ServeHTTP(w, r)
		return nil
	}
	v := h.auth.decide(r)
	h.auth.setNonce(w, v)
	if !v.passes() {
		return h.auth.refuse(w, r, v, handlerForm)
	}
	h.auth.pass(r, v)
	return next.ServeHTTP(w, r)
}

// isPreflight recognizes a CORS preflight (Fetch standard §3.2.2): browsers
// never attach credentials to it, so it cannot carry a token.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// authenticator is the provisioned, request-time half of a Config, shared by
// Handler and Provider.
type authenticator struct {
	cfg      *Config
	verifier *tokenVerifier
	// credentialSources are cfg's, computed once: read on every request.
	credentialSources []TokenSource
	logger            *zap.Logger
	acquired          []sourceLease // pooled sources this instance holds
	cache             *tokenCache
	sources           map[string]keySource
	resource          *protectedResource // nil without a resource
	nonces            *dpopNonces        // nil without dpop_nonce
	// replayWarnedAt is when the last replay-full warning was logged (unix
	// nanoseconds), so a flood of proofs logs one line per interval.
	replayWarnedAt atomic.Int64
}

// replayWarnInterval spaces the replay-full warnings.
const replayWarnInterval = 10 * time.Second

// warnReplayFull logs that the DPoP replay memory refused a proof for want
// of room, at most once per replayWarnInterval.
func (a *authenticator) warnReplayFull() {
	now := time.Now().UnixNano()
	last := a.replayWarnedAt.Load()
	if now-last < int64(replayWarnInterval) || !a.replayWarnedAt.CompareAndSwap(last, now) {
		return
	}
	a.logger.Warn("DPoP replay memory is full: new proofs are refused as replays until entries expire (raise capacity or lower dpop_max_age)")
}

// setNonce gives every answer to a request that used the DPoP scheme the
// current server nonce (RFC 9449 §8), passed or refused, before anything
// is written.
func (a *authenticator) setNonce(w http.ResponseWriter, v verdict) {
	if a.nonces != nil && v.dpop {
		w.Header().Set("DPoP-Nonce", a.nonces.current(time.Now()))
	}
}

// dropClientIdentityHeaders removes client-sent copies of the claim
// headers. Identity headers are ours alone: this runs before anything else,
// so no path (anonymous, preflight, absent claim) lets a forged one through.
func (a *authenticator) dropClientIdentityHeaders(r *http.Request) {
	for _, ch := range a.cfg.ClaimHeaders {
		r.Header.Del(ch.Header)
	}
}

// verify answers from the verified-token cache or runs the verifier. The
// token is hashed once, for the lookup and, on a miss, the insert. A cache
// hit skips the signature and claims but never the binding checks: the
// proof and the connection are new on every request.
func (a *authenticator) verify(r *http.Request, cred credential) (*verifiedToken, error) {
	p := presentationOf(r, cred)
	slot := a.cache.slot(cred.token)
	if res, ok := a.cache.get(slot); ok {
		if err := a.verifier.checkBinding(res.Issuer, res.binding, &p, nil); err != nil {
			return nil, err
		}
		return res, nil
	}
	res, err := a.verifier.verifyPresented(r.Context(), cred.token, &p, nil)
	if err != nil {
		return nil, err
	}
	if v, ok := lookupClaim(res.namedClaims(), a.cfg.userClaim()); ok {
		// A clone: the claim's text shares its memory with the whole decoded
		// payload, which the cache entry must not keep a second copy of.
		res.userID = strings.Clone(renderClaim(v))
	}
	a.cache.put(slot, res)
	return res, nil
}

// publish exposes a verified token's claims to the rest of the route: as
// the placeholders id answers, and as the claim headers. The claims of a
// cached token are decoded only if a claim header or placeholder needs them.
func (a *authenticator) publish(r *http.Request, id *identity, res *verifiedToken) {
	id.set(res)
	id.binding = res.Binding()
	// A static value shadows every provider, so an identity set earlier in
	// the route (basic_auth, another authentication) must not outlive ours:
	// removed, it leaves the key to the identity's provider.
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Delete(userPlaceholderPrefix + "id")
	}
	if len(a.cfg.ClaimHeaders) == 0 {
		return
	}
	claims := res.namedClaims()
	for _, ch := range a.cfg.ClaimHeaders {
		v, ok := lookupClaim(claims, ch.Claim)
		if !ok {
			continue
		}
		text := renderClaim(v)
		if hasControlChars(text) {
			a.logger.Debug("claim not copied to header: control characters", zap.String("claim", ch.Claim), zap.String("header", ch.Header))
			continue
		}
		r.Header.Set(ch.Header, text)
	}
}

// hasControlChars reports bytes that must never reach a header value:
// 0x00–0x1F except tab, and DEL (RFC 9110 §5.5).
func hasControlChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// userPlaceholderPrefix is the namespace of the user placeholders. It is
// this handler's: every key under it is answered, so none is ever left as
// literal text for header_up to send to a backend as if it were an identity.
const userPlaceholderPrefix = "http.auth.user."

// identityVar names the request variable holding the request's *identity,
// so that several jwt_auth handlers (or providers) on one request share one
// placeholder provider: a replacer's providers can only be appended, and
// the first that answers a key wins.
const identityVar = "jwt_auth.identity"

// identity is the request's user as the {http.auth.user.*} placeholders see
// it. The zero value is the anonymous user: every placeholder is "".
type identity struct {
	res     *verifiedToken // the verified token; nil for the anonymous user
	binding string         // {http.auth.binding}
}

// bindingPlaceholder is how the verified token was bound: bearer, dpop,
// mtls or dpop+mtls; "" for a request without a verified token.
const bindingPlaceholder = "http.auth.binding"

// requestIdentity returns the request's identity, installing it as the
// replacer's lazy provider of every {http.auth.user.*} key on first use, so
// a request pays only for the placeholders something actually reads.
func requestIdentity(r *http.Request) *identity {
	if id, ok := caddyhttp.GetVar(r.Context(), identityVar).(*identity); ok {
		return id
	}
	id := new(identity)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(id.placeholder)
	}
	caddyhttp.SetVar(r.Context(), identityVar, id)
	return id
}

// set makes the identity a verified token's.
func (id *identity) set(res *verifiedToken) { id.res = res }

// placeholder answers bindingPlaceholder and every key under
// userPlaceholderPrefix: "id" is the user_claim (never a claim named
// "id"), any other key the claim at that dotted path rendered by
// renderClaim, and an absent claim "". The claims are decoded on the first
// key other than "id" (verifiedToken.Claims).
func (id *identity) placeholder(key string) (any, bool) {
	if key == bindingPlaceholder {
		return id.binding, true
	}
	path, ok := strings.CutPrefix(key, userPlaceholderPrefix)
	if !ok {
		return nil, false
	}
	if id.res == nil {
		return "", true
	}
	if path == "id" {
		return id.res.userID, true
	}
	v, found := lookupClaim(id.res.Claims(), path)
	if !found {
		return "", true
	}
	return renderClaim(v), true
}

// String keeps the identity out of {http.vars.*} and the vars matcher:
// the claims are reachable only through the user placeholders.
func (*identity) String() string { return "" }

// Package jwtauth is a Caddy HTTP handler that lets through only requests
// carrying a valid JWT from a configured issuer, verified against the
// issuer's published keys (JWKS).
package jwtauth

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
	h.auth.dropClientIdentityHeaders(r)
	if h.AllowPreflight && isPreflight(r) {
		observeRequest(resultPreflight, "")
		return next.ServeHTTP(w, r)
	}
	res, found, err := h.auth.authenticate(r)
	if !found && h.Optional {
		observeRequest(resultAnonymous, "")
		return next.ServeHTTP(w, r)
	}
	if err != nil {
		return h.auth.answer(w, r, err)
	}
	h.auth.accept(r, res)
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
	verifier *Verifier
	logger   *zap.Logger
	acquired []sourceLease // pooled sources this instance holds
	cache    *tokenCache
	sources  map[string]keySource
}

// dropClientIdentityHeaders removes client-sent copies of the claim
// headers. Identity headers are ours alone: this runs before anything else,
// so no path (anonymous, preflight, absent claim) lets a forged one through.
func (a *authenticator) dropClientIdentityHeaders(r *http.Request) {
	for _, ch := range a.cfg.ClaimHeaders {
		r.Header.Del(ch.Header)
	}
}

// authenticate extracts and verifies the request's credential. found is
// false when the request carries none; err is then the "missing" rejection.
func (a *authenticator) authenticate(r *http.Request) (res *Result, found bool, err error) {
	token, err := extractToken(r, a.cfg.sources(), a.cfg.maxTokenSize())
	if err != nil {
		return nil, true, err
	}
	if token == "" {
		return nil, false, reject(ReasonMissing, "no credential")
	}
	res, err = a.verify(r, token)
	return res, true, err
}

// accept passes a verified request on: claims published, counted, and the
// credential stripped when asked.
func (a *authenticator) accept(r *http.Request, res *Result) {
	a.publish(r, res)
	observeRequest(resultAccepted, "")
	if a.cfg.StripToken {
		stripCredentials(r, a.cfg.sources())
	}
}

// verify answers from the verified-token cache or runs the verifier.
func (a *authenticator) verify(r *http.Request, token string) (*Result, error) {
	if res, ok := a.cache.get(token); ok {
		return res, nil
	}
	res, err := a.verifier.Verify(r.Context(), token)
	if err != nil {
		return nil, err
	}
	a.cache.put(token, res)
	return res, nil
}

// publish exposes a verified token's claims to the rest of the route.
func (a *authenticator) publish(r *http.Request, res *Result) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	claims := res.Token.Claims
	userID := ""
	if v, ok := LookupClaim(claims, a.cfg.userClaim()); ok {
		userID = RenderClaim(v)
	}
	if repl != nil {
		repl.Set("http.auth.user.id", userID)
		repl.Map(claimProvider(claims))
	}
	for _, ch := range a.cfg.ClaimHeaders {
		v, ok := LookupClaim(claims, ch.Claim)
		if !ok {
			continue
		}
		text := RenderClaim(v)
		if hasControlChars(text) {
			a.logger.Debug("claim not copied to header: control characters", zap.String("claim", ch.Claim), zap.String("header", ch.Header))
			continue
		}
		r.Header.Set(ch.Header, text)
	}
}

const userPlaceholderPrefix = "http.auth.user."

// claimProvider resolves {http.auth.user.<dotted.path>} on demand, so a
// request pays only for the placeholders something actually reads. The id
// is set statically and never shadowed by a claim named "id".
func claimProvider(claims map[string]any) caddy.ReplacerFunc {
	return func(key string) (any, bool) {
		path, ok := strings.CutPrefix(key, userPlaceholderPrefix)
		if !ok || path == "id" {
			return nil, false
		}
		v, found := LookupClaim(claims, path)
		if !found {
			return nil, false
		}
		return RenderClaim(v), true
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

// answer turns a rejection into the RFC 6750 response of SPEC "Answers": the
// challenge header is set here and the error returned as a caddyhttp.Error
// whose message is the bare reason code, so handle_errors can render it.
func (a *authenticator) answer(w http.ResponseWriter, r *http.Request, err error) error {
	reason := ReasonOf(err)
	if reason == "" {
		reason = ReasonMalformed
	}
	status := statusOf(reason)
	if challenge := challengeFor(realmOf(r), err); challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if reason == ReasonKeysUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(a.retryAfterSeconds()))
	}
	a.logRejection(r, reason, err)
	observeRequest(resultOf(status), reason)
	return caddyhttp.Error(status, reason)
}

func statusOf(reason Reason) int {
	switch reason {
	case ReasonMultipleCredentials, ReasonTooLarge:
		return http.StatusBadRequest
	case ReasonClaimMismatch:
		return http.StatusForbidden
	case ReasonKeysUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnauthorized
	}
}

// challengeFor builds the WWW-Authenticate value (RFC 6750 §3); a 503 has
// none because the client did nothing wrong.
func challengeFor(realm string, err error) string {
	reason := ReasonOf(err)
	base := `Bearer realm="` + quoteEscape(realm) + `"`
	switch reason {
	case ReasonMissing:
		return base
	case ReasonKeysUnavailable:
		return ""
	case ReasonMultipleCredentials, ReasonTooLarge:
		return base + `, error="invalid_request", error_description="` + string(reason) + `"`
	case ReasonClaimMismatch:
		c := base + `, error="insufficient_scope", error_description="claim_mismatch"`
		if rej, ok := err.(*Rejection); ok && rej.Scope != "" {
			c += `, scope="` + quoteEscape(rej.Scope) + `"`
		}
		return c
	default:
		return base + `, error="invalid_token", error_description="` + string(reason) + `"`
	}
}

// realmOf is the request's host without port: the protection space a
// client's credentials belong to.
func realmOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	return host
}

// quoteEscape makes s safe inside an RFC 9110 quoted-string.
func quoteEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			// dropped: never valid in a header
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// retryAfterSeconds is the soonest next key-fetch attempt among the
// issuers, clamped to SPEC's 1–30 s.
func (a *authenticator) retryAfterSeconds() int {
	soonest := 30 * time.Second
	for _, f := range a.sources {
		if f.KeySet() == nil {
			soonest = min(soonest, f.RetryAfter())
		}
	}
	secs := int((soonest + time.Second - 1) / time.Second)
	return min(max(secs, 1), 30)
}

// logRejection writes SPEC's one debug line per rejection: reason, issuer,
// kid and client IP, each bounded, never the token.
func (a *authenticator) logRejection(r *http.Request, reason Reason, err error) {
	ce := a.logger.Check(zapcore.DebugLevel, "request rejected")
	if ce == nil {
		return
	}
	fields := []zap.Field{zap.String("reason", string(reason)), zap.String("client_ip", clientIP(r))}
	if rej, ok := err.(*Rejection); ok {
		fields = append(fields, zap.String("issuer", truncate(rej.Issuer, 128)),
			zap.String("kid", truncate(rej.Kid, 128)), zap.String("detail", truncate(rej.Detail, 256)))
	}
	ce.Write(fields...)
}

func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

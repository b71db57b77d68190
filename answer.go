package jwtauth

import (
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

// How a request is answered (docs/design.md "Answers"). The flow is the same
// for the handler and the provider: decide computes one verdict per request;
// a passing verdict is carried out by pass, a refusing one by refuse, which
// renders the answer from the reason's row in reasonTable, sets its headers,
// logs and counts it. In report-only mode decide turns a refusing verdict
// into a reporting one, which pass carries out: the request goes on
// unauthenticated, and the would-be rejection is logged and counted.

// reasonRow is how one reason is answered and counted.
type reasonRow struct {
	reason Reason
	// status is the handler's HTTP status for the reason.
	status int
	// result is the requests_total result label.
	result string
	// errorCode is the RFC 6750 §3.1 error attribute of the challenge; ""
	// for a challenge without one, the answer to a request that presented
	// no credential at all (RFC 6750 §3.1, last paragraph).
	errorCode string
	// dpopErrorCode replaces errorCode in a DPoP challenge for the proof's
	// own failures (RFC 9449 §7.1, §8); "": errorCode.
	dpopErrorCode string
	// noChallenge: the handler's answer carries no WWW-Authenticate, because
	// the client did nothing wrong (the keys are unavailable).
	noChallenge bool
	// retryAfter: the answer carries Retry-After, the seconds until the
	// next key fetch attempt.
	retryAfter bool
}

// reasonTable is the one mapping from reason to status, challenge and
// metric label, in the order of the README's reason table.
var reasonTable = [...]reasonRow{
	{reason: ReasonMissing, status: http.StatusUnauthorized, result: resultRejected},
	{reason: ReasonMultipleCredentials, status: http.StatusBadRequest, result: resultRejected, errorCode: "invalid_request"},
	{reason: ReasonTooLarge, status: http.StatusBadRequest, result: resultRejected, errorCode: "invalid_request"},
	{reason: ReasonMalformed, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonForbiddenAlg, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonWrongIssuer, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonUnknownKid, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonBadSignature, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonExpired, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonNotYetValid, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonTooOld, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonWrongAudience, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonWrongType, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonBoundToken, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonUnboundToken, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonDPoPProof, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token", dpopErrorCode: "invalid_dpop_proof"},
	{reason: ReasonDPoPReplay, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token", dpopErrorCode: "invalid_dpop_proof"},
	{reason: ReasonDPoPNonce, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token", dpopErrorCode: "use_dpop_nonce"},
	{reason: ReasonCertMismatch, status: http.StatusUnauthorized, result: resultRejected, errorCode: "invalid_token"},
	{reason: ReasonClaimMismatch, status: http.StatusForbidden, result: resultForbidden, errorCode: "insufficient_scope"},
	{reason: ReasonKeysUnavailable, status: http.StatusServiceUnavailable, result: resultUnavailable, noChallenge: true, retryAfter: true},
}

// rowOf is reason's row. A reason missing from the table is a programming
// error; it is answered like malformed rather than with a made-up status.
func rowOf(reason Reason) reasonRow {
	for _, row := range reasonTable {
		if row.reason == reason {
			return row
		}
	}
	return rowOf(ReasonMalformed)
}

// statusOf is the handler's HTTP status for reason.
func statusOf(reason Reason) int { return rowOf(reason).status }

// verdict is what decide concluded about one request, computed once and
// then carried out.
type verdict struct {
	// result is the requests_total result label: accepted, anonymous,
	// preflight, report_only, or the refusing reason's label.
	result string
	// res is the verified token of an accepted request.
	res *verifiedToken
	// rej is why the request is refused; nil when it passes.
	rej *Rejection
	// reported is the rejection a report-only handler lets pass: what it
	// would have answered had it enforced.
	reported *Rejection
	// dpop: the credential came with the DPoP scheme, so every answer
	// carries the current server nonce (when nonces are demanded).
	dpop bool
}

// passes reports a verdict that lets the request go on.
func (v verdict) passes() bool { return v.rej == nil }

// reason is the refusing (or, in report-only mode, the would-be refusing)
// reason, or "" for a request that was not rejected.
func (v verdict) reason() Reason {
	switch {
	case v.rej != nil:
		return v.rej.Reason
	case v.reported != nil:
		return v.reported.Reason
	}
	return ""
}

// verdictPlaceholder is the key of {http.auth.jwt.verdict}: the reason code
// of a rejected (or, in report-only mode, would-be rejected) request, else
// the result: accepted, anonymous or preflight. An access log or header_up
// reads it; it is the handler's own namespace, outside http.auth.user.
const verdictPlaceholder = "http.auth.jwt.verdict"

// text is the verdict as {http.auth.jwt.verdict} shows it.
func (v verdict) text() string {
	if reason := v.reason(); reason != "" {
		return string(reason)
	}
	return v.result
}

func refused(err error) verdict {
	rej := rejectionOf(err)
	return verdict{result: rowOf(rej.Reason).result, rej: rej}
}

// refusedPresented is refused for a credential presented with cred's
// scheme: its challenge is of that scheme unless the rejection names
// another (unbound_token names the required one).
func refusedPresented(err error, cred credential) verdict {
	v := refused(err)
	v.dpop = cred.dpop
	if v.rej.scheme == "" && cred.dpop {
		v.rej.scheme = schemeDPoP
	}
	return v
}

// decide concludes what to do with r: judge's verdict, which report-only
// mode turns from a refusal into a report, published as
// {http.auth.jwt.verdict} in every mode.
func (a *authenticator) decide(r *http.Request) verdict {
	v := a.judge(r)
	if a.cfg.ReportOnly && v.rej != nil {
		v = verdict{result: resultReportOnly, reported: v.rej, dpop: v.dpop}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(verdictPlaceholder, v.text())
	}
	return v
}

// judge runs the request path on r: client copies of the identity headers
// removed, then the preflight pass, extraction, the anonymous pass and
// verification, in that order.
func (a *authenticator) judge(r *http.Request) verdict {
	// Identity headers are ours alone: removed before anything else, so no
	// path (anonymous, preflight, refused, absent claim) lets a forged one through.
	a.dropClientIdentityHeaders(r)
	if a.cfg.AllowPreflight && isPreflight(r) {
		return verdict{result: resultPreflight}
	}
	cred, err := extractCredential(r, a.credentialSources, a.cfg.maxTokenSize())
	if err != nil {
		return refusedPresented(err, cred)
	}
	if cred.token == "" {
		if a.cfg.Optional {
			return verdict{result: resultAnonymous}
		}
		return refused(reject(ReasonMissing, "no credential"))
	}
	res, err := a.verify(r, cred)
	if err != nil {
		return refusedPresented(err, cred)
	}
	return verdict{result: resultAccepted, res: res, dpop: cred.dpop}
}

// pass carries out a passing verdict: the http.auth.user.* placeholders
// answer for the verified token, or are all empty without one; the claim
// headers are set only for a verified token; the request is counted, and a
// would-be rejection logged; and the credential, valid or not, is stripped
// when asked, so no credential ever reaches the next handler.
func (a *authenticator) pass(r *http.Request, v verdict) {
	id := requestIdentity(r)
	observeRequest(v.result, v.reason())
	if v.reported != nil {
		a.logRejection(r, v.reported, zapcore.InfoLevel, "request would be rejected (report_only)")
	}
	if v.res != nil {
		a.publish(r, id, v.res)
	}
	if a.cfg.StripToken {
		stripCredentials(r, a.credentialSources)
		// The proof is part of the credential: it names the token (ath).
		r.Header.Del("DPoP")
	}
}

// answerForm is who sends the answer to a refused request.
type answerForm int

const (
	// handlerForm: the jwt_auth handler answers with the reason's status.
	handlerForm answerForm = iota
	// providerForm: Caddy's authentication handler answers, always 401.
	providerForm
)

// answer is the rendered refusal of one request.
type answer struct {
	status int
	// challenges are the WWW-Authenticate values, one header line each
	// (RFC 9110 §11.6.1), so another scheme can stand beside Bearer.
	challenges []challenge
	// retryAfter is the Retry-After value in seconds; 0 means none.
	retryAfter int
}

// render builds the answer to rej from its row. In the provider form the
// status is 401 whatever the reason, and a 401 must carry a challenge
// (RFC 9110 §15.5.2): a reason whose handler answer has none gets the plain
// one, without an error attribute.
func (a *authenticator) render(r *http.Request, rej *Rejection, form answerForm) answer {
	row := rowOf(rej.Reason)
	ans := answer{status: row.status}
	if row.retryAfter {
		ans.retryAfter = a.retryAfterSeconds()
	}
	realm := realmOf(r)
	switch {
	case form == providerForm && row.noChallenge:
		ans.challenges = append(ans.challenges, a.plainChallenge(rej.scheme, realm))
	case rej.Reason == ReasonMissing:
		ans.challenges = a.missingChallenges(realm)
	case !row.noChallenge:
		ans.challenges = append(ans.challenges, a.errorChallenge(realm, rej, row))
	}
	if form == providerForm {
		ans.status = http.StatusUnauthorized
	}
	if a.resource != nil {
		for i, c := range ans.challenges {
			ans.challenges[i] = a.resource.decorate(c, ans.status)
		}
	}
	return ans
}

// write sets the answer's headers. The headers go out before the error is
// returned, so handle_errors (or Caddy's own 401) sends them.
func (ans answer) write(h http.Header) {
	for _, c := range ans.challenges {
		h.Add("WWW-Authenticate", c.String())
	}
	if ans.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ans.retryAfter))
	}
}

// refuse carries out a refusing verdict: headers set, one debug line
// logged, the request counted, and the caddyhttp.Error returned whose
// message ({http.error.message}) is the bare reason code.
func (a *authenticator) refuse(w http.ResponseWriter, r *http.Request, v verdict, form answerForm) error {
	ans := a.render(r, v.rej, form)
	ans.write(w.Header())
	a.logRejection(r, v.rej, zapcore.DebugLevel, "request rejected")
	observeRequest(v.result, v.reason())
	return caddyhttp.Error(ans.status, v.rej.Reason)
}

// challenge is one WWW-Authenticate challenge: an auth-scheme and its
// auth-params, in order (RFC 9110 §11.6.1).
type challenge struct {
	scheme string
	params []authParam
}

// authParam is one auth-param, always sent as a quoted-string.
type authParam struct{ name, value string }

// with returns c with one more auth-param.
func (c challenge) with(name, value string) challenge {
	c.params = append(c.params[:len(c.params):len(c.params)], authParam{name, value})
	return c
}

// String renders the challenge as a header value.
func (c challenge) String() string {
	var b strings.Builder
	b.WriteString(c.scheme)
	for i, p := range c.params {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.name)
		b.WriteString(`="`)
		b.WriteString(quoteEscape(p.value))
		b.WriteByte('"')
	}
	return b.String()
}

// bearerChallenge is the RFC 6750 §3 challenge without an error: the
// answer to a request that presented no credential.
func bearerChallenge(realm string) challenge {
	return challenge{scheme: "Bearer"}.with("realm", realm)
}

// dpopChallenge is the RFC 9449 §7.1 challenge without an error.
func dpopChallenge(realm string) challenge {
	return challenge{scheme: schemeDPoP}.with("realm", realm)
}

// plainChallenge is the challenge of scheme without an error; a DPoP one
// names the accepted proof algorithms.
func (a *authenticator) plainChallenge(scheme, realm string) challenge {
	if scheme == schemeDPoP {
		return dpopChallenge(realm).with("algs", strings.Join(a.cfg.dpopAlgorithms(), " "))
	}
	return bearerChallenge(realm)
}

// missingChallenges answer a request without a credential: one challenge
// per scheme some issuer accepts, Bearer first (RFC 9449 §7.1).
func (a *authenticator) missingChallenges(realm string) []challenge {
	var cs []challenge
	if a.cfg.bearerAccepted() {
		cs = append(cs, bearerChallenge(realm))
	}
	if a.cfg.dpopAccepted() {
		cs = append(cs, a.plainChallenge(schemeDPoP, realm))
	}
	return cs
}

// errorChallenge is the challenge for rej, of the scheme it names: its
// error attribute from the row (a DPoP challenge's own for proof
// failures), the reason code as error_description, for a failed scope rule
// the scope the token lacked (RFC 6750 §3), and for DPoP the accepted
// proof algorithms (RFC 9449 §7.1).
func (a *authenticator) errorChallenge(realm string, rej *Rejection, row reasonRow) challenge {
	c, code := bearerChallenge(realm), row.errorCode
	if rej.scheme == schemeDPoP {
		c = dpopChallenge(realm)
		if row.dpopErrorCode != "" {
			code = row.dpopErrorCode
		}
	}
	if code != "" {
		c = c.with("error", code).with("error_description", string(rej.Reason))
		if code == "insufficient_scope" && rej.Scope != "" {
			c = c.with("scope", rej.Scope)
		}
	}
	if rej.scheme == schemeDPoP {
		c = c.with("algs", strings.Join(a.cfg.dpopAlgorithms(), " "))
	}
	return c
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

// Retry-After bounds: soon enough that a client retries promptly, never so
// far that it gives up on a service that recovers in seconds.
const (
	minRetryAfter = 1 * time.Second
	maxRetryAfter = 30 * time.Second
)

// retryAfterSeconds is the soonest next key-fetch attempt among the
// issuers without a usable set, within 1–30 s.
func (a *authenticator) retryAfterSeconds() int {
	soonest := maxRetryAfter
	for _, f := range a.sources {
		if f.keySet() == nil {
			soonest = min(soonest, f.RetryAfter())
		}
	}
	soonest = min(max(soonest, minRetryAfter), maxRetryAfter)
	return int((soonest + time.Second - 1) / time.Second)
}

// logRejection writes the one line per rejection: reason, issuer, kid and
// client IP, each bounded, never the token. A rejection is logged at debug:
// a 4xx is the client's doing, never an ERROR, and a 503 is logged by Caddy
// itself. A would-be rejection of report-only mode is logged at info, as
// it is the only trace the mode leaves of what it would have refused.
func (a *authenticator) logRejection(r *http.Request, rej *Rejection, level zapcore.Level, msg string) {
	ce := a.logger.Check(level, msg)
	if ce == nil {
		return
	}
	ce.Write(zap.String("reason", string(rej.Reason)), zap.String("client_ip", clientIP(r)),
		zap.String("issuer", truncate(rej.Issuer, 128)), zap.String("kid", truncate(rej.Kid, 128)),
		zap.String("detail", truncate(rej.Detail, 256)))
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

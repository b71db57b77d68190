package jwtauth

import (
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// TokenSource is one place a credential may come from: exactly one of
// Header, Query or Cookie is set.
type TokenSource struct {
	Header string `json:"header,omitempty"`
	// Scheme is the authentication scheme before the token in Header
	// ("Bearer"), compared case-insensitively; empty: the header value is
	// the raw token.
	Scheme string `json:"scheme,omitempty"`
	Query  string `json:"query,omitempty"`
	Cookie string `json:"cookie,omitempty"`
}

// defaultSources is RFC 6750 §2.1: the Authorization header, Bearer scheme.
var defaultSources = []TokenSource{{Header: "Authorization", Scheme: "Bearer"}}

// dpopSource is the DPoP authorization scheme (RFC 9449 §7.1), a source in
// addition to the configured ones when some issuer accepts DPoP.
var dpopSource = TokenSource{Header: "Authorization", Scheme: schemeDPoP}

// isDPoPSource reports a source that reads the DPoP scheme.
func isDPoPSource(src TokenSource) bool {
	return strings.EqualFold(src.Header, dpopSource.Header) && strings.EqualFold(src.Scheme, dpopSource.Scheme)
}

// credential is the request's token and how it came: with the DPoP scheme
// or any other way.
type credential struct {
	token string
	dpop  bool
}

// extractToken is extractCredential's token alone.
func extractToken(r *http.Request, sources []TokenSource, maxSize int) (string, error) {
	cred, err := extractCredential(r, sources, maxSize)
	return cred.token, err
}

// extractCredential finds the request's credential (docs/design.md
// "Request path"). It returns an empty token and no error when there is
// none. Identical duplicates count as one; two different credentials are
// ambiguous (which one did the client mean, and which one will the backend
// read?) and rejected — and so is one token sent both with the DPoP scheme
// and another way, which would leave its binding rules to the order of the
// sources. On a rejection the credential still says whether the DPoP
// scheme was used, for the challenge.
func extractCredential(r *http.Request, sources []TokenSource, maxSize int) (credential, error) {
	var cred credential
	var query url.Values
	add := func(value string, dpop bool) error {
		if cred.token != "" && (value != cred.token || dpop != cred.dpop) {
			return reject(ReasonMultipleCredentials, "more than one credential")
		}
		cred = credential{token: value, dpop: dpop}
		return nil
	}
	for _, src := range sources {
		var values []string
		dpop := isDPoPSource(src)
		switch {
		case src.Header != "":
			for _, line := range r.Header.Values(src.Header) {
				v, matched, err := fromHeader(line, src.Scheme)
				if err != nil {
					return credential{dpop: dpop}, err
				}
				if matched {
					values = append(values, v)
				}
			}
		case src.Query != "":
			if query == nil {
				query = r.URL.Query()
			}
			values = query[src.Query]
		case src.Cookie != "":
			for _, c := range r.CookiesNamed(src.Cookie) {
				values = append(values, c.Value)
			}
		}
		for _, v := range values {
			if v == "" {
				continue
			}
			if err := add(v, dpop); err != nil {
				return credential{}, err
			}
		}
	}
	if len(cred.token) > maxSize {
		return credential{dpop: cred.dpop}, reject(ReasonTooLarge, "credential of %d bytes exceeds max_token_size %d", len(cred.token), maxSize)
	}
	return cred, nil
}

// fromHeader reads one header line. With a scheme, lines of other schemes
// are not ours (matched false); "Bearer" with nothing after it is malformed.
func fromHeader(line, scheme string) (token string, matched bool, err error) {
	if scheme == "" {
		return strings.TrimSpace(line), true, nil
	}
	if len(line) < len(scheme) || !strings.EqualFold(line[:len(scheme)], scheme) {
		return "", false, nil
	}
	rest := line[len(scheme):]
	if rest == "" || strings.TrimSpace(rest) == "" {
		return "", true, reject(ReasonMalformed, "%s scheme without a token", scheme)
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false, nil // "BearerXYZ" is another scheme
	}
	return strings.TrimSpace(rest), true, nil
}

// stripCredentials removes every configured source's credential from r, so
// the next handler (or upstream) never sees a token (strip_token). Whatever
// is not a credential is passed on byte for byte: other query parameters
// keep their order and encoding, other cookies their exact text.
func stripCredentials(r *http.Request, sources []TokenSource) {
	for _, src := range sources {
		switch {
		case src.Header != "":
			stripHeader(r.Header, src)
		case src.Query != "":
			stripQuery(r, src.Query)
		case src.Cookie != "":
			stripCookie(r.Header, src.Cookie)
		}
	}
}

func stripHeader(h http.Header, src TokenSource) {
	var keep []string
	for _, line := range h.Values(src.Header) {
		if _, matched, _ := fromHeader(line, src.Scheme); !matched {
			keep = append(keep, line)
		}
	}
	h.Del(src.Header)
	for _, line := range keep {
		h.Add(src.Header, line)
	}
}

// stripQuery drops the pairs named param from the raw query. Re-encoding
// url.Values instead would sort and re-escape the rest, which a backend
// verifying a signed URL would notice.
func stripQuery(r *http.Request, param string) {
	if r.URL.RawQuery == "" {
		return
	}
	pairs := strings.Split(r.URL.RawQuery, "&")
	kept := pairs[:0]
	for _, pair := range pairs {
		rawKey, _, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(rawKey); err == nil && key == param {
			continue
		}
		kept = append(kept, pair)
	}
	r.URL.RawQuery = strings.Join(kept, "&")
	r.RequestURI = r.URL.RequestURI()
}

// stripCookie drops the cookies named name from every Cookie line, keeping
// the others' text as sent (re-serializing parsed cookies would silently drop
// any that net/http considers invalid).
func stripCookie(h http.Header, name string) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	h.Del("Cookie")
	for _, line := range lines {
		var kept []string
		for part := range strings.SplitSeq(line, ";") {
			cookieName, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.TrimSpace(cookieName) == name {
				continue
			}
			if strings.TrimSpace(part) != "" {
				kept = append(kept, strings.TrimSpace(part))
			}
		}
		if len(kept) > 0 {
			h.Add("Cookie", strings.Join(kept, "; "))
		}
	}
}

// warnLoggedSources warns about credential sources Caddy's access log
// records verbatim: it redacts only the Authorization and Cookie headers, so
// a query or custom-header token needs the log filter the README shows.
func warnLoggedSources(logger *zap.Logger, sources []TokenSource) {
	for _, src := range sources {
		switch {
		case src.Query != "":
			logger.Warn("token read from a query parameter: Caddy's access log records it unless a log filter deletes it (see README)",
				zap.String("query", src.Query))
		case src.Header != "" && !strings.EqualFold(src.Header, "Authorization"):
			logger.Warn("token read from a custom header: Caddy's access log records it unless a log filter deletes it (see README)",
				zap.String("header", src.Header))
		}
	}
}

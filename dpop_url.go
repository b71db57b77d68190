package jwtauth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// dpopRequestURL returns the URL the client addressed, to compare with a
// proof's htu (RFC 9449 §4.3 check 9): https when the connection is TLS,
// else http; the Host header; and the path exactly as the client sent it,
// taken from Caddy's copy of the original request so that a rewrite or uri
// handler earlier in the route changes nothing. X-Forwarded-Proto and
// X-Forwarded-Host replace the scheme and host only when Caddy trusts the
// immediate peer as a proxy (the server's trusted_proxies): from anyone
// else they are just client-chosen text. Query and fragment are left out.
func dpopRequestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := strings.ToLower(firstForwardedValue(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstForwardedValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + requestPath(r)
}

// firstForwardedValue returns the first element of a comma-separated forwarded
// header: the value the proxy nearest the client saw.
func firstForwardedValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// requestPath is the path of the request target as received, before any
// handler rewrote it.
func requestPath(r *http.Request) string {
	target := r.RequestURI
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		target = orig.RequestURI
		if target == "" && orig.URL != nil {
			return orig.URL.EscapedPath()
		}
	}
	if target == "" && r.URL != nil {
		return r.URL.EscapedPath()
	}
	// The absolute form (RFC 9112 §3.2.2), sent to proxies: keep only its
	// path.
	if i := strings.Index(target, "://"); i >= 0 && !strings.HasPrefix(target, "/") {
		rest := target[i+3:]
		slash := strings.IndexAny(rest, "/?#")
		if slash < 0 || rest[slash] != '/' {
			return "/"
		}
		target = rest[slash:]
	}
	path, _, _ := strings.Cut(target, "?")
	return path
}

// htuMatches reports whether a proof's htu names the request URL: both are
// normalized per RFC 3986 §6.2.2–6.2.3 and compared without query and
// fragment (RFC 9449 §4.3). A URL that cannot be normalized matches nothing.
func htuMatches(htu, requestURL string) bool {
	a, err := normalizeHTTPURL(htu)
	if err != nil {
		return false
	}
	b, err := normalizeHTTPURL(requestURL)
	return err == nil && a == b
}

// normalizeHTTPURL returns scheme://host[:port]/path of an http or https URL
// after syntax-based normalization (RFC 3986 §6.2.2: scheme and host
// lower-cased, percent-encoding hex upper-cased, percent-encoded unreserved
// characters decoded, dot segments removed) and scheme-based normalization
// (§6.2.3: the scheme's default port and an empty port dropped, an empty
// path made "/"). Query and fragment are dropped. Bytes a URI may not
// contain (spaces, non-ASCII) are percent-encoded, as a URL serializer
// would; a malformed percent-encoding, userinfo or a bad port is an error.
func normalizeHTTPURL(s string) (string, error) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", errors.New("not an absolute URL with an authority")
	}
	scheme = strings.ToLower(scheme)
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", fmt.Errorf("scheme %.16q is not http or https", scheme)
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.ContainsRune(authority, '@') {
		return "", errors.New("userinfo is not allowed")
	}
	host, port, err := uriSplitHostPort(authority)
	if err != nil {
		return "", err
	}
	if host, err = normalizePercent(host, true); err != nil {
		return "", fmt.Errorf("host: %w", err)
	}
	if host == "" {
		return "", errors.New("empty host")
	}
	if path, err = normalizePercent(path, false); err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	path = removeDotSegments(path)
	if path == "" {
		path = "/"
	}
	if port != "" && port != defaultPort {
		host += ":" + port
	}
	return scheme + "://" + host + path, nil
}

// uriSplitHostPort separates the port, if any, and returns it in canonical
// decimal ("" for none or an empty one).
func uriSplitHostPort(authority string) (host, port string, err error) {
	host = authority
	if strings.HasPrefix(authority, "[") { // IP literal (RFC 3986 §3.2.2)
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", "", errors.New("unclosed IP literal")
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" && port[0] != ':' {
			return "", "", errors.New("junk after IP literal")
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i+1:]
	}
	if port == "" {
		return host, "", nil
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", "", errors.New("port is not a number")
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", "", errors.New("port out of range")
	}
	return host, strconv.FormatUint(n, 10), nil
}

// normalizePercent applies RFC 3986 §6.2.2.1–6.2.2.2 to one component:
// %XX of an unreserved character is decoded, other %XX get upper-case hex,
// and bytes that may not appear in a URI are encoded. With lower, the
// component is a host and its letters are lower-cased.
func normalizePercent(s string, lower bool) (string, error) {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !uriIsHex(s[i+1]) || !uriIsHex(s[i+2]) {
				return "", errors.New("malformed percent-encoding")
			}
			v := uriUnhex(s[i+1])<<4 | uriUnhex(s[i+2])
			i += 2
			if uriUnreserved(v) {
				if lower {
					v = uriLower(v)
				}
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteByte(hex[v>>4])
				b.WriteByte(hex[v&15])
			}
		case uriUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/[]", c) >= 0:
			if lower {
				c = uriLower(c)
			}
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String(), nil
}

func uriUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func uriIsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func uriUnhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func uriLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// removeDotSegments is RFC 3986 §5.2.4, applied to an absolute path.
func removeDotSegments(in string) string {
	var out []string // output segments, each with its leading "/"
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "." || in == "..":
			in = ""
		default:
			end := strings.IndexByte(in[1:], '/')
			if end < 0 {
				end = len(in)
			} else {
				end++
			}
			out = append(out, in[:end])
			in = in[end:]
		}
	}
	return strings.Join(out, "")
}

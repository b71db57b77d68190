package jose

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// MaxKidLength bounds the kid a token may carry: a real kid is a thumbprint
// or a short name, and a bound keeps logs and lookups cheap.
const MaxKidLength = 256

// ErrorKind classifies why a compact JWS was refused before any
// cryptography ran.
type ErrorKind int

const (
	// Malformed: the token is not a compact JWS under the strict rules of
	// this package (segments, base64url, JSON, header member types,
	// unsupported header parameters).
	Malformed ErrorKind = iota + 1
	// ForbiddenAlg: the header has no alg, alg "none", or an alg this
	// package cannot verify.
	ForbiddenAlg
)

// String names the kind.
func (k ErrorKind) String() string {
	switch k {
	case Malformed:
		return "malformed"
	case ForbiddenAlg:
		return "forbidden alg"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is the error Decode and DecodeJWS return. Detail never contains
// the token or its signature, only bounded excerpts of header values.
type Error struct {
	Kind   ErrorKind // which rule class refused the token
	Detail string    // which rule, in plain words, for logs and the CLI
}

// Error implements error.
func (e *Error) Error() string { return e.Kind.String() + ": " + e.Detail }

func malformed(format string, args ...any) *Error {
	return &Error{Kind: Malformed, Detail: fmt.Sprintf(format, args...)}
}

// JWS is a compact JWS decoded by the strict rules of Decode or DecodeJWS
// but not yet verified.
type JWS struct {
	Alg    string         // header "alg", always a known algorithm
	Kid    string         // header "kid", "" when absent
	Typ    string         // header "typ", "" when absent
	Header map[string]any // every header member
	Claims map[string]any // the payload's members (Decode), or those named to DecodeSelected; numbers are json.Number
	Issuer string         // the unverified "iss" claim, "" when absent (Decode, DecodeSelected)

	signingInput string // header.payload, exactly as received
	signature    []byte
	payload      []byte
	payloadText  string // payload as a string, shared with the header's text
}

// SigningInput returns the JWS Signing Input (RFC 7515 §2): the first two
// segments and the dot between them, exactly as received.
func (t *JWS) SigningInput() string { return t.signingInput }

// Signature returns the decoded signature. Callers must not modify it.
func (t *JWS) Signature() []byte { return t.signature }

// Payload returns the decoded payload bytes. Callers must not modify them.
func (t *JWS) Payload() []byte { return t.payload }

// String renders a JWS for debugging without its signature or payload.
func (t *JWS) String() string {
	return fmt.Sprintf("JWS{alg=%s kid=%.32q iss=%.64q}", t.Alg, t.Kid, t.Issuer)
}

// Decode decodes a compact-serialized JWT (RFC 7519 §7.2, the steps before
// signature validation): exactly three canonical base64url segments, a strict JSON
// header with a known alg and no parameter that would change processing,
// and a payload that is a strict JSON object whose "iss", if present, is a
// string. No cryptography runs. The error is always an *Error: kind
// ForbiddenAlg for an absent, "none" or unknown alg, Malformed otherwise.
func Decode(token string) (*JWS, error) {
	return decode(token, nil, false)
}

// DecodeSelected is Decode building only the claims named in claims, and
// iss: every rule still applies to the whole payload, but the other members
// are checked and left undecoded in Payload, so a verifier that reads a
// handful of a token's claims pays for no others.
func DecodeSelected(token string, claims []string) (*JWS, error) {
	if !slices.Contains(claims, "iss") {
		claims = append(claims[:len(claims):len(claims)], "iss")
	}
	return decode(token, claims, true)
}

func decode(token string, want []string, selective bool) (*JWS, error) {
	t, err := DecodeJWS(token)
	if err != nil {
		return nil, err
	}
	claims, err := parseObject(t.payloadText, want, selective)
	if err != nil {
		return nil, malformed("claims: %v", err)
	}
	t.Claims = claims
	if iss, ok := claims["iss"]; ok {
		s, isString := iss.(string)
		if !isString {
			return nil, malformed("claim iss is not a string")
		}
		t.Issuer = s
	}
	return t, nil
}

// DecodeJWS is Decode for a JWS whose payload need not be a JSON object
// (test vectors sign plain text): the segment and header rules apply in
// full, the payload is left as bytes and Claims stays nil.
func DecodeJWS(token string) (*JWS, error) {
	t, err := decodeSegments(token)
	if err != nil {
		return nil, err
	}
	if err := t.readHeader(); err != nil {
		return nil, err
	}
	return t, nil
}

// decodeSegments splits and base64url-decodes the three segments. The
// alphabet check comes first because Go's decoder skips CR and LF, and a
// token must have exactly one spelling.
func decodeSegments(token string) (*JWS, *Error) {
	if n := strings.Count(token, "."); n != 2 {
		return nil, malformed("want 3 dot-separated segments, got %d", n+1)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !isBase64URLChar(c) && c != '.' {
			return nil, malformed("byte %d is not base64url", i)
		}
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	t := &JWS{signingInput: token[:last]}
	// The three segments decode into one buffer: one allocation per token.
	segs := [3]string{token[:first], token[first+1 : last], token[last+1:]}
	buf := make([]byte, strictB64.DecodedLen(len(segs[0]))+strictB64.DecodedLen(len(segs[1]))+strictB64.DecodedLen(len(segs[2])))
	buf0 := buf
	var parts [3][]byte
	for i, seg := range segs {
		n, err := strictB64.Decode(buf, []byte(seg))
		if err != nil {
			return nil, malformed("%s: %v", [...]string{"header", "payload", "signature"}[i], err)
		}
		parts[i], buf = buf[:n:n], buf[n:]
	}
	t.payload, t.signature = parts[1], parts[2]
	// Header and payload lie side by side in buf: one string holds both, and
	// every string the parser returns is a substring of it.
	text := string(buf0[:len(parts[0])+len(parts[1])])
	t.payloadText = text[len(parts[0]):]
	var err error
	if t.Header, err = parseObject(text[:len(parts[0])], nil, false); err != nil {
		return nil, malformed("header: %v", err)
	}
	return t, nil
}

func isBase64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// strictB64 rejects padding and non-zero trailing bits, so a token has one
// encoding only (no malleable twins that defeat caches and replay checks).
var strictB64 = base64.RawURLEncoding.Strict()

// forbiddenHeaders are header members that change how a JWS must be
// processed (RFC 7515 §4.1.11 crit, RFC 7797 b64, JWE's zip and enc). None
// is supported, so their presence alone makes the token malformed.
var forbiddenHeaders = [...]string{"crit", "b64", "zip", "enc"}

// readHeader checks the header members in a fixed order: a malformed
// header wins over a forbidden alg, so {"alg":"none","crit":[…]} is
// malformed whatever order its members come in.
func (t *JWS) readHeader() *Error {
	for _, name := range forbiddenHeaders {
		if _, ok := t.Header[name]; ok {
			return malformed("header %q is not supported", name)
		}
	}
	var err *Error
	if t.Kid, err = optionalString(t.Header, "kid"); err != nil {
		return err
	}
	if len(t.Kid) > MaxKidLength {
		return malformed("kid longer than %d bytes", MaxKidLength)
	}
	if t.Typ, err = optionalString(t.Header, "typ"); err != nil {
		return err
	}
	cty, err := optionalString(t.Header, "cty")
	if err != nil {
		return err
	}
	if strings.EqualFold(cty, "JWT") || strings.EqualFold(cty, "application/jwt") {
		return malformed("nested JWT (cty %q) is not supported", cty)
	}
	alg, present := t.Header["alg"]
	if !present {
		return &Error{Kind: ForbiddenAlg, Detail: "no alg"}
	}
	name, ok := alg.(string)
	if !ok {
		return malformed("alg is not a string")
	}
	if LookupAlgorithm(name) == nil {
		return &Error{Kind: ForbiddenAlg, Detail: fmt.Sprintf("alg %.32q is not supported", name)}
	}
	t.Alg = name
	return nil
}

func optionalString(obj map[string]any, name string) (string, *Error) {
	v, ok := obj[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", malformed("header %s is not a string", name)
	}
	return s, nil
}

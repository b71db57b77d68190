package jwtauth

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxNumericDate is 9999-12-31T23:59:59Z: larger "exp" values are bugs or
// attacks (1e30 overflows time arithmetic), never real tokens.
const maxNumericDate = 253402300799

// tokenTimes are a token's exp, nbf and iat, read once.
type tokenTimes struct {
	exp, nbf, iat          time.Time
	hasExp, hasNbf, hasIat bool
}

// checkClaimTypes enforces the types of the registered claims (RFC 7519
// §4.1) before any of them is used: exp, nbf and iat are NumericDates; sub
// and jti, when present, are strings; aud is a string or an array of
// strings, whether or not an audience is configured. A signed token with
// "sub": ["admin"] is malformed, not the user "admin". It returns the times.
func checkClaimTypes(claims map[string]any) (tokenTimes, error) {
	var tt tokenTimes
	var err error
	if tt.exp, tt.hasExp, err = numericDate(claims, "exp"); err != nil {
		return tt, err
	}
	if tt.nbf, tt.hasNbf, err = numericDate(claims, "nbf"); err != nil {
		return tt, err
	}
	if tt.iat, tt.hasIat, err = numericDate(claims, "iat"); err != nil {
		return tt, err
	}
	for _, name := range [...]string{"sub", "jti"} {
		if v, ok := claims[name]; ok {
			if _, isString := v.(string); !isString {
				return tt, reject(ReasonMalformed, "%s is not a string", name)
			}
		}
	}
	return tt, checkAudienceType(claims)
}

// checkAudienceType: aud, when present, is a string or an array of strings
// (RFC 7519 §4.1.3). JSON null is present and neither.
func checkAudienceType(claims map[string]any) error {
	aud, ok := claims["aud"]
	if !ok {
		return nil
	}
	switch a := aud.(type) {
	case string:
		return nil
	case []any:
		for _, e := range a {
			if _, isString := e.(string); !isString {
				return reject(ReasonMalformed, "aud array holds a non-string")
			}
		}
		return nil
	default:
		return reject(ReasonMalformed, "aud is neither a string nor an array of strings")
	}
}

// numericDate reads an RFC 7519 NumericDate: a JSON number in
// [0, 253402300799], fractions allowed.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	raw, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := raw.(json.Number)
	if !ok {
		return time.Time{}, false, reject(ReasonMalformed, "%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, reject(ReasonMalformed, "%s is not a date in [0, %d]", name, maxNumericDate)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// ClaimRule is one `require <claim> <value...>`: every value must be present
// in the claim at the dotted path Claim.
type ClaimRule struct {
	Claim  string   `json:"claim"`
	Values []string `json:"values"`
}

// isScope reports whether the rule is on an OAuth scope claim, whose string
// form is a space-separated list (RFC 8693 §4.2, and Entra's "scp").
func (r ClaimRule) isScope() bool { return r.Claim == "scope" || r.Claim == "scp" }

// Check returns a claim_mismatch rejection unless every value is present.
func (r ClaimRule) Check(claims map[string]any) error {
	have, found := lookupClaim(claims, r.Claim)
	if !found {
		return r.mismatch("claim %s is absent", r.Claim)
	}
	present := claimValues(have, r.isScope())
	for _, want := range r.Values {
		if !slices.Contains(present, want) {
			return r.mismatch("claim %s lacks %.64q", r.Claim, want)
		}
	}
	return nil
}

// mismatch builds the claim_mismatch rejection; a scope rule also names
// the scopes it wanted, for the challenge's scope attribute (RFC 6750 §3).
func (r ClaimRule) mismatch(format string, args ...any) *Rejection {
	rej := reject(ReasonClaimMismatch, format, args...)
	if r.isScope() {
		rej.Scope = strings.Join(r.Values, " ")
	}
	return rej
}

// claimValues lists the comparable values of a claim: array elements one by
// one, a scope string split on spaces, any other scalar as rendered.
func claimValues(v any, splitSpaces bool) []string {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, renderClaim(e))
		}
		return out
	case string:
		if splitSpaces {
			return strings.Fields(x)
		}
		return []string{x}
	default:
		return []string{renderClaim(x)}
	}
}

// lookupClaim follows a dotted path (realm_access.roles) through nested
// objects. A dot always means nesting; a claim whose own name contains a dot
// is not reachable, which keeps the syntax unambiguous.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// claimRoot is the top-level claim of a dotted path, the one lookupClaim
// looks up first.
func claimRoot(path string) string {
	root, _, _ := strings.Cut(path, ".")
	return root
}

// renderClaim turns a claim value into placeholder and header text: strings
// as they are, numbers from their JSON text without exponent or rounding,
// booleans as true/false, arrays of strings joined with "," (compact JSON if
// an element itself holds a ","), anything else as compact JSON. JSON null
// renders as the empty string, like an absent claim.
func renderClaim(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return plainNumber(string(x))
	case bool:
		if x {
			return "true"
		}
		return "false"
	case []any:
		if s, ok := joinStrings(x); ok {
			return s
		}
	}
	return compactJSON(v)
}

// compactJSON renders v as compact JSON without encoding/json's HTML
// escaping, so "<" in a claim stays "<" rather than becoming \u003c.
func compactJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func joinStrings(arr []any) (string, bool) {
	parts := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok || strings.Contains(s, ",") {
			return "", false
		}
		parts[i] = s
	}
	return strings.Join(parts, ","), true
}

// plainNumber rewrites a JSON number's text without an exponent, exactly
// (1.5e3 → 1500, 25e-4 → 0.0025), so no claim is ever float-rounded.
func plainNumber(text string) string {
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(text), "e")
	if !hasExp {
		return text
	}
	sign := ""
	if strings.HasPrefix(mantissa, "-") {
		sign, mantissa = "-", mantissa[1:]
	}
	intPart, fracPart, _ := strings.Cut(mantissa, ".")
	digits := intPart + fracPart
	exp := 0
	expNeg := strings.HasPrefix(expText, "-")
	for _, c := range strings.TrimLeft(expText, "+-") {
		exp = exp*10 + int(c-'0')
		if exp > 400 { // beyond any float64; keep the JSON text rather than pad forever
			return text
		}
	}
	if expNeg {
		exp = -exp
	}
	point := len(intPart) + exp // position of the decimal point within digits
	switch {
	case point <= 0:
		digits = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		digits += strings.Repeat("0", point-len(digits))
	default:
		digits = digits[:point] + "." + digits[point:]
	}
	return sign + trimNumber(digits)
}

// trimNumber drops redundant leading zeros of the integer part and trailing
// zeros of the fraction.
func trimNumber(s string) string {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	if hasFrac {
		frac = strings.TrimRight(frac, "0")
	}
	if frac == "" {
		return intPart
	}
	return intPart + "." + frac
}

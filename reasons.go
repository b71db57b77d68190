package jwtauth

import (
	"errors"
	"fmt"
)

// Reason is a rejection code from the closed list of the README's "Reason
// codes". The same string appears in error_description,
// {http.error.message}, logs, metrics and the CLI, so operators can grep one
// word end to end.
type Reason string

// The reason codes. Adding one is a contract change: give it a row in
// reasonTable (answer.go) and in the README's reason table.
const (
	ReasonMissing             Reason = "missing"
	ReasonMultipleCredentials Reason = "multiple_credentials"
	ReasonTooLarge            Reason = "too_large"
	ReasonMalformed           Reason = "malformed"
	ReasonForbiddenAlg        Reason = "forbidden_alg"
	ReasonWrongIssuer         Reason = "wrong_issuer"
	ReasonUnknownKid          Reason = "unknown_kid"
	ReasonBadSignature        Reason = "bad_signature"
	ReasonExpired             Reason = "expired"
	ReasonNotYetValid         Reason = "not_yet_valid"
	ReasonTooOld              Reason = "too_old"
	ReasonWrongAudience       Reason = "wrong_audience"
	ReasonWrongType           Reason = "wrong_type"
	ReasonBoundToken          Reason = "bound_token"
	ReasonClaimMismatch       Reason = "claim_mismatch"
	ReasonKeysUnavailable     Reason = "keys_unavailable"
)

// Reasons returns every reason code, in the order of the README's reason
// table. The slice is the caller's own copy.
func Reasons() []Reason {
	out := make([]Reason, len(reasonTable))
	for i, row := range reasonTable {
		out[i] = row.reason
	}
	return out
}

// Error makes a bare Reason usable as the error inside caddyhttp.Error, so
// {http.error.message} is exactly the code and nothing from the token.
func (r Reason) Error() string { return string(r) }

// Rejection is the error the verifier returns: a reason code for the client
// and a detail for the debug log and the CLI. The detail never contains the
// token or its signature.
type Rejection struct {
	Reason Reason
	Detail string
	// Scope holds the values of a failed scope/scp rule, space-separated,
	// for the scope attribute of an insufficient_scope challenge.
	Scope string
	// Issuer and Kid are the token's unverified iss and kid, when it got
	// far enough to have them, for the rejection's log line.
	Issuer, Kid string
	// scheme is the auth-scheme whose challenge answers the rejection
	// (schemeBearer or schemeDPoP): the scheme the token came with, or for
	// unbound_token the scheme the handler requires. Empty: Bearer.
	scheme string
}

// Error implements error.
func (r *Rejection) Error() string {
	if r.Detail == "" {
		return string(r.Reason)
	}
	return string(r.Reason) + ": " + r.Detail
}

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// asRejection is the one way to read a rejection out of an error chain: a
// *Rejection anywhere in it, or a bare Reason (wrapped in a Rejection
// without detail). ok is false for any other error, or nil.
func asRejection(err error) (rej *Rejection, ok bool) {
	if errors.As(err, &rej) {
		return rej, true
	}
	var r Reason
	if errors.As(err, &r) {
		return &Rejection{Reason: r}, true
	}
	return nil, false
}

// ReasonOf returns the reason code carried by err, or "" if err is not a
// rejection.
func ReasonOf(err error) Reason {
	if rej, ok := asRejection(err); ok {
		return rej.Reason
	}
	return ""
}

// rejectionOf is err as the rejection a request is answered with: an error
// that carries no reason (which the verifier never returns) is answered as
// malformed rather than leaking its text.
func rejectionOf(err error) *Rejection {
	if rej, ok := asRejection(err); ok {
		return rej
	}
	return &Rejection{Reason: ReasonMalformed, Detail: err.Error()}
}

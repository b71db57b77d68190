package jwtauth

import (
	"errors"
	"fmt"
)

// Reason is a rejection code from the closed list in SPEC "Answers". The same
// string appears in error_description, {http.error.message}, logs, metrics and
// the CLI, so operators can grep one word end to end.
type Reason string

// The reason codes. Adding one is a contract change: update README and SPEC.
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

// AllReasons lists every reason code, in the order of SPEC "Answers".
var AllReasons = []Reason{
	ReasonMissing, ReasonMultipleCredentials, ReasonTooLarge, ReasonMalformed,
	ReasonForbiddenAlg, ReasonWrongIssuer, ReasonUnknownKid, ReasonBadSignature,
	ReasonExpired, ReasonNotYetValid, ReasonTooOld, ReasonWrongAudience,
	ReasonWrongType, ReasonBoundToken, ReasonClaimMismatch, ReasonKeysUnavailable,
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

// ReasonOf returns the reason code carried by err, or "" if err is not a
// rejection.
func ReasonOf(err error) Reason {
	var rej *Rejection
	if errors.As(err, &rej) {
		return rej.Reason
	}
	var r Reason
	if errors.As(err, &r) {
		return r
	}
	return ""
}

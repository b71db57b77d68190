package jwtauth

import (
	"errors"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
)

// decodeToken decodes a compact JWT and all its claims with jose.Decode.
// No cryptography runs. The *Rejection is nil exactly when the token
// decoded.
func decodeToken(token string) (*jose.JWS, *Rejection) {
	return decodeRejection(jose.Decode(token))
}

// decodeRejection maps a decoding failure to the answer the client gets:
// an absent, "none" or unknown alg is forbidden_alg, every other decoding
// failure is malformed.
func decodeRejection(t *jose.JWS, err error) (*jose.JWS, *Rejection) {
	if err == nil {
		return t, nil
	}
	var jerr *jose.Error
	if !errors.As(err, &jerr) {
		return nil, reject(ReasonMalformed, "%v", err)
	}
	reason := ReasonMalformed
	if jerr.Kind == jose.ForbiddenAlg {
		reason = ReasonForbiddenAlg
	}
	return nil, &Rejection{Reason: reason, Detail: jerr.Detail}
}

package jwtauth

// The reason codes of sender-constrained tokens (RFC 9449 DPoP, RFC 8705
// mTLS). Like the others they appear verbatim in error_description, logs,
// metrics and the CLI.
const (
	// ReasonUnboundToken: the handler requires a binding method and the
	// token has no cnf member for it.
	ReasonUnboundToken Reason = "unbound_token"
	// ReasonDPoPProof: the DPoP proof is missing, malformed, or fails any
	// check of RFC 9449 §4.3 other than replay and nonce.
	ReasonDPoPProof Reason = "dpop_proof"
	// ReasonDPoPReplay: the proof was already used within its window, or
	// the replay memory is full and cannot remember it.
	ReasonDPoPReplay Reason = "dpop_replay"
	// ReasonDPoPNonce: the handler demands server nonces and the proof has
	// none, or a stale or foreign one (RFC 9449 §9).
	ReasonDPoPNonce Reason = "dpop_nonce"
	// ReasonCertMismatch: the token's cnf x5t#S256 does not match the TLS
	// client certificate, or there is none (RFC 8705 §3).
	ReasonCertMismatch Reason = "cert_mismatch"
)

package jwtauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sender-constrained tokens (RFC 9449 DPoP, RFC 8705 mTLS). A token with a
// cnf claim names a key its presenter must prove it holds; the checks here
// run on every request, verified-token cache hits included, because the
// proof (or the connection) is new on every request even when the token is
// not.

// The values of the dpop and mtls options.
const (
	modeOff      = "off"
	modeAllowed  = "allowed"
	modeRequired = "required"
)

// Defaults of the DPoP options.
const (
	defaultDPoPMode   = modeAllowed
	defaultMTLSMode   = modeOff
	defaultDPoPMaxAge = 60 * time.Second
)

// defaultDPoPAlgorithms are the proof algorithms accepted when
// dpop_algorithms is absent: every asymmetric JWS algorithm.
func defaultDPoPAlgorithms() []string {
	return []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA", "Ed25519"}
}

// The auth-schemes a challenge can name.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// The cnf members we can check (RFC 9449 §6.1, RFC 8705 §3.1).
const (
	cnfJKT  = "jkt"
	cnfX5T  = "x5t#S256"
	stepCnf = "cnf"
	// stepBinding is the proof-of-possession check: the DPoP proof, the
	// client certificate, or nothing for a bearer token.
	stepBinding = "binding"
)

// binding is what a token's cnf claim binds it to. The verified-token
// cache keeps it with the result, so a cache hit still runs the checks.
type binding struct {
	jkt string // cnf.jkt: RFC 7638 thumbprint of the DPoP key
	x5t string // cnf["x5t#S256"]: SHA-256 of the client certificate (DER)
}

// label is the {http.auth.binding} value of a token that passed its checks.
func (b binding) label() string {
	switch {
	case b.jkt != "" && b.x5t != "":
		return "dpop+mtls"
	case b.jkt != "":
		return "dpop"
	case b.x5t != "":
		return "mtls"
	}
	return "bearer"
}

// parseCnf reads the token's cnf claim. A cnf member we cannot check
// (jwk, kid, anything else) refuses the token, also beside one we can:
// the issuer bound the token to that key too, and accepting it without the
// check would make it a weaker token than issued.
func parseCnf(claims map[string]any) (binding, error) {
	raw, present := claims["cnf"]
	if !present {
		return binding{}, nil
	}
	cnf, ok := raw.(map[string]any)
	if !ok {
		return binding{}, reject(ReasonBoundToken, "cnf is not a JSON object")
	}
	if len(cnf) == 0 {
		return binding{}, reject(ReasonBoundToken, "cnf names no confirmation method")
	}
	var b binding
	for name, v := range cnf {
		s, isString := v.(string)
		switch {
		case name != cnfJKT && name != cnfX5T:
			return binding{}, reject(ReasonBoundToken, "cnf member %.64q cannot be checked (only %s and %s can)", name, cnfJKT, cnfX5T)
		case !isString || s == "":
			return binding{}, reject(ReasonBoundToken, "cnf %s is not a non-empty string", name)
		case name == cnfJKT:
			b.jkt = s
		default:
			b.x5t = s
		}
	}
	return b, nil
}

// presentation is how the request presented its token: what the binding
// checks need from it. The handler builds it from the request
// (presentationOf); `caddy jwt verify` from its flags.
type presentation struct {
	// token is the access token as presented, hashed into the proof's ath.
	token string
	// dpop: the token came with the DPoP auth-scheme (RFC 9449 §7.1).
	dpop bool
	// proof is the request's single DPoP header; proofErr why there is
	// none (no line, several, empty).
	proof    string
	proofErr error
	method   string // compared with the proof's htm
	url      string // the request URL (dpopRequestURL), compared with htu
	// cert is the TLS client certificate, nil without one.
	cert *x509.Certificate
}

// presentationOf reads how the request presented cred. Only the connection's own client
// certificate counts: certificate headers from proxies are not read.
func presentationOf(r *http.Request, cred credential) presentation {
	p := presentation{token: cred.token, dpop: cred.dpop, method: r.Method}
	if cred.dpop {
		p.proof, p.proofErr = dpopHeader(r)
		p.url = dpopRequestURL(r)
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		p.cert = r.TLS.PeerCertificates[0]
	}
	return p
}

// dpopSettings are the handler-wide DPoP settings and state the proof
// check uses.
type dpopSettings struct {
	algorithms []string
	maxAge     time.Duration
	nonces     *dpopNonces    // nil: no server nonces demanded
	replay     *replayMemory  // one per verifier, so per handler
	replayFull func()         // warns when the replay memory refuses a proof
	keys       *proofKeyCache // imported proof keys, one cache per verifier
}

// dpopMode and mtlsMode are the issuer's effective modes; a policy built
// directly (newTokenVerifier) without them gets the defaults.
func (p *issuerPolicy) dpopMode() string {
	if p.DPoP == "" {
		return defaultDPoPMode
	}
	return p.DPoP
}

func (p *issuerPolicy) mtlsMode() string {
	if p.MTLS == "" {
		return defaultMTLSMode
	}
	return p.MTLS
}

// checkBinding is every sender-constraint rule, in one place: the issuer's
// modes, how the token was presented, then the DPoP proof and the client
// certificate. It runs in the verifier's cnf step and again on every
// verified-token cache hit. p nil is a Bearer presentation without TLS.
func (v *tokenVerifier) checkBinding(pol *issuerPolicy, b binding, p *presentation, tr *trace) error {
	if p == nil {
		p = &presentation{}
	}
	if err := checkModes(pol, b, p); err != nil {
		return tr.fail(stepCnf, err)
	}
	if tr != nil {
		tr.pass(stepCnf, "%s (dpop %s, mtls %s)", describeBinding(b, p), pol.dpopMode(), pol.mtlsMode())
	}
	if b.jkt == "" && b.x5t == "" {
		if tr != nil {
			tr.pass(stepBinding, "bearer token: no proof of possession needed")
		}
		return nil
	}
	if b.jkt != "" {
		if err := v.checkProof(b, p); err != nil {
			return tr.fail(stepBinding, err)
		}
		if tr != nil {
			tr.pass(stepBinding, "DPoP proof: one DPoP header; typ %s; alg allowed (%s); public jwk fits alg; signature verifies; jti fresh; htm %s; htu matches %s; iat within dpop_max_age %s ± leeway %s; %s; ath matches the token; jwk thumbprint equals cnf.jkt %.64q",
				dpopProofType, strings.Join(v.dpop.algorithms, " "), p.method, p.url, v.dpop.maxAge, v.leeway, v.nonceDetail(), b.jkt)
		}
	}
	if b.x5t != "" {
		if err := checkCertificate(b, p); err != nil {
			return tr.fail(stepBinding, err)
		}
		if tr != nil {
			tr.pass(stepBinding, "client certificate SHA-256 %s equals cnf x5t#S256 (subject %.128q)", b.x5t, p.cert.Subject.String())
		}
	}
	return nil
}

// checkModes: the rules that depend on the modes and the scheme only.
func checkModes(pol *issuerPolicy, b binding, p *presentation) error {
	dpop, mtls := pol.dpopMode(), pol.mtlsMode()
	switch {
	case b.jkt != "" && dpop == modeOff:
		return reject(ReasonBoundToken, "the token is DPoP-bound (cnf.jkt) and dpop is off for this issuer")
	case b.x5t != "" && mtls == modeOff:
		return reject(ReasonBoundToken, "the token is certificate-bound (cnf x5t#S256) and mtls is off for this issuer")
	case dpop == modeRequired && b.jkt == "":
		rej := reject(ReasonUnboundToken, "dpop required: the token has no cnf.jkt")
		rej.scheme = schemeDPoP
		return rej
	case mtls == modeRequired && b.x5t == "":
		rej := reject(ReasonUnboundToken, "mtls required: the token has no cnf x5t#S256")
		rej.scheme = schemeBearer
		return rej
	case b.jkt != "" && !p.dpop:
		// RFC 9449 §7.2: a DPoP-bound token is never a bearer token.
		return reject(ReasonBoundToken, "the token is DPoP-bound (cnf.jkt) but was not presented with the DPoP scheme")
	case b.jkt == "" && p.dpop:
		return reject(ReasonDPoPProof, "the token presented with the DPoP scheme is not DPoP-bound (no cnf.jkt)")
	}
	return nil
}

// checkProof runs the full proof check (dpop.go) for a DPoP-bound token.
func (v *tokenVerifier) checkProof(b binding, p *presentation) error {
	if p.proofErr != nil {
		return p.proofErr
	}
	if p.proof == "" {
		return reject(ReasonDPoPProof, "no DPoP header")
	}
	_, err := verifyDPoPProof(&dpopCheck{
		Proof: p.proof, Method: p.method, URL: p.url, AccessToken: p.token,
		JKT: b.jkt, Algorithms: v.dpop.algorithms, MaxAge: v.dpop.maxAge, Leeway: v.leeway,
		Now: v.now(), Nonces: v.dpop.nonces, Replay: v.dpop.replay, ReplayFull: v.dpop.replayFull,
		Keys: v.dpop.keys,
	})
	return err
}

// checkCertificate: the TLS client certificate's SHA-256 (DER, base64url)
// must equal cnf x5t#S256 (RFC 8705 §3.1).
func checkCertificate(b binding, p *presentation) error {
	if p.cert == nil {
		return reject(ReasonCertMismatch, "the token is certificate-bound and the connection has no TLS client certificate")
	}
	if got := certThumbprint(p.cert); got != b.x5t {
		return reject(ReasonCertMismatch, "client certificate SHA-256 %s does not equal cnf x5t#S256 %.64q", got, b.x5t)
	}
	return nil
}

// certThumbprint is the RFC 8705 §3.1 x5t#S256 of cert.
func certThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// nonceDetail says for the trace whether the proof's nonce was checked.
func (v *tokenVerifier) nonceDetail() string {
	if v.dpop.nonces == nil {
		return "no server nonce demanded"
	}
	return "nonce current"
}

func describeBinding(b binding, p *presentation) string {
	scheme := "without the DPoP scheme"
	if p.dpop {
		scheme = "with the DPoP scheme"
	}
	var bound []string
	if b.jkt != "" {
		bound = append(bound, fmt.Sprintf("DPoP key cnf.jkt %.64q", b.jkt))
	}
	if b.x5t != "" {
		bound = append(bound, fmt.Sprintf("client certificate cnf x5t#S256 %.64q", b.x5t))
	}
	if len(bound) == 0 {
		return "no cnf claim: a bearer token, presented " + scheme
	}
	return "bound to the " + strings.Join(bound, " and the ") + ", presented " + scheme
}

package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCnf(t *testing.T) {
	for _, c := range []struct {
		name string
		cnf  any
		want binding
		err  bool
	}{
		{name: "jkt", cnf: map[string]any{"jkt": "abc"}, want: binding{jkt: "abc"}},
		{name: "x5t#S256", cnf: map[string]any{"x5t#S256": "xyz"}, want: binding{x5t: "xyz"}},
		{name: "both", cnf: map[string]any{"jkt": "abc", "x5t#S256": "xyz"}, want: binding{jkt: "abc", x5t: "xyz"}},
		{name: "empty object", cnf: map[string]any{}, err: true},
		{name: "jwk", cnf: map[string]any{"jwk": map[string]any{"kty": "EC"}}, err: true},
		{name: "kid", cnf: map[string]any{"kid": "k"}, err: true},
		{name: "jkt beside an uncheckable member", cnf: map[string]any{"jkt": "abc", "jwk": map[string]any{}}, err: true},
		{name: "jkt not a string", cnf: map[string]any{"jkt": 1.0}, err: true},
		{name: "empty jkt", cnf: map[string]any{"jkt": ""}, err: true},
		{name: "not an object", cnf: "abc", err: true},
		{name: "null", cnf: nil, err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseCnf(map[string]any{"cnf": c.cnf})
			if c.err {
				if ReasonOf(err) != ReasonBoundToken {
					t.Fatalf("err %v, want bound_token", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	if b, err := parseCnf(map[string]any{}); err != nil || b.label() != "bearer" {
		t.Fatalf("no cnf: %+v %v", b, err)
	}
}

func TestBindingLabel(t *testing.T) {
	for b, want := range map[binding]string{
		{}: "bearer", {jkt: "a"}: "dpop", {x5t: "b"}: "mtls", {jkt: "a", x5t: "b"}: "dpop+mtls",
	} {
		if got := b.label(); got != want {
			t.Errorf("%+v: %q, want %q", b, got, want)
		}
	}
}

// TestCheckModes is every rule that depends on the modes and the scheme.
func TestCheckModes(t *testing.T) {
	jkt, x5t, both := binding{jkt: "a"}, binding{x5t: "b"}, binding{jkt: "a", x5t: "b"}
	bearer, dpop := &presentation{}, &presentation{dpop: true}
	for _, c := range []struct {
		name       string
		dpop, mtls string
		b          binding
		p          *presentation
		want       Reason
		scheme     string
	}{
		{name: "defaults: unbound bearer passes", b: binding{}, p: bearer},
		{name: "defaults: DPoP-bound with DPoP passes", b: jkt, p: dpop},
		{name: "DPoP-bound as Bearer", b: jkt, p: bearer, want: ReasonBoundToken},
		{name: "unbound with the DPoP scheme", b: binding{}, p: dpop, want: ReasonDPoPProof},
		{name: "dpop off: DPoP-bound", dpop: modeOff, b: jkt, p: dpop, want: ReasonBoundToken},
		{name: "dpop required: unbound", dpop: modeRequired, b: binding{}, p: bearer, want: ReasonUnboundToken, scheme: schemeDPoP},
		{name: "dpop required: mTLS-bound only", dpop: modeRequired, mtls: modeAllowed, b: x5t, p: bearer, want: ReasonUnboundToken, scheme: schemeDPoP},
		{name: "mtls off (default): certificate-bound", b: x5t, p: bearer, want: ReasonBoundToken},
		{name: "mtls allowed: certificate-bound", mtls: modeAllowed, b: x5t, p: bearer},
		{name: "mtls allowed: unbound", mtls: modeAllowed, b: binding{}, p: bearer},
		{name: "mtls required: unbound", mtls: modeRequired, b: binding{}, p: bearer, want: ReasonUnboundToken, scheme: schemeBearer},
		{name: "both bound, mtls off", b: both, p: dpop, want: ReasonBoundToken},
		{name: "both bound, both allowed", mtls: modeAllowed, b: both, p: dpop},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkModes(&issuerPolicy{DPoP: c.dpop, MTLS: c.mtls}, c.b, c.p)
			if ReasonOf(err) != c.want {
				t.Fatalf("reason %q (%v), want %q", ReasonOf(err), err, c.want)
			}
			if c.scheme != "" && err.(*Rejection).scheme != c.scheme {
				t.Fatalf("challenge scheme %q, want %q", err.(*Rejection).scheme, c.scheme)
			}
		})
	}
}

// newTestCert makes a self-signed client certificate.
func newTestCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestMTLSBinding runs the certificate check on requests carrying a real
// TLS connection state, through the verifier's binding step.
func TestMTLSBinding(t *testing.T) {
	client, other := newTestCert(t, "client"), newTestCert(t, "other")
	v := newTokenVerifier(nil, verifierOptions{})
	bound := binding{x5t: certThumbprint(client)}
	req := func(certs ...*x509.Certificate) *presentation {
		r := httptest.NewRequest("GET", "https://api.example/x", nil)
		if certs != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: certs}
		} else {
			r.TLS = &tls.ConnectionState{}
		}
		p := presentationOf(r, credential{token: "t"})
		return &p
	}
	for _, c := range []struct {
		name string
		mtls string
		b    binding
		p    *presentation
		want Reason
	}{
		{name: "the bound certificate", mtls: modeAllowed, b: bound, p: req(client)},
		{name: "the bound certificate first in the chain", mtls: modeRequired, b: bound, p: req(client, other)},
		{name: "another certificate", mtls: modeAllowed, b: bound, p: req(other), want: ReasonCertMismatch},
		{name: "the bound certificate second in the chain", mtls: modeAllowed, b: bound, p: req(other, client), want: ReasonCertMismatch},
		{name: "no certificate", mtls: modeAllowed, b: bound, p: req(), want: ReasonCertMismatch},
		{name: "a forged certificate header is not read", mtls: modeAllowed, b: bound, p: func() *presentation {
			r := httptest.NewRequest("GET", "https://api.example/x", nil)
			r.Header.Set("X-Client-Cert", "whatever")
			p := presentationOf(r, credential{token: "t"})
			return &p
		}(), want: ReasonCertMismatch},
		{name: "unbound token over mTLS is a bearer token", mtls: modeAllowed, b: binding{}, p: req(client)},
		{name: "mtls off refuses the bound token", mtls: modeOff, b: bound, p: req(client), want: ReasonBoundToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := new(trace)
			err := v.checkBinding(&issuerPolicy{MTLS: c.mtls}, c.b, c.p, tr)
			if ReasonOf(err) != c.want {
				t.Fatalf("reason %q (%v), want %q", ReasonOf(err), err, c.want)
			}
			last := tr.steps[len(tr.steps)-1]
			if (err == nil) != last.OK {
				t.Fatalf("trace %+v does not match the verdict", tr.steps)
			}
		})
	}
}

func TestExtractCredentialScheme(t *testing.T) {
	sources := []TokenSource{{Header: "Authorization", Scheme: "Bearer"}, {Query: "t"}, dpopSource}
	for _, c := range []struct {
		name    string
		target  string
		headers []string
		want    credential
		reason  Reason
	}{
		{name: "Bearer", target: "/", headers: []string{"Bearer a.b.c"}, want: credential{token: "a.b.c"}},
		{name: "DPoP", target: "/", headers: []string{"DPoP a.b.c"}, want: credential{token: "a.b.c", dpop: true}},
		{name: "dpop in lower case", target: "/", headers: []string{"dpop a.b.c"}, want: credential{token: "a.b.c", dpop: true}},
		{name: "two identical DPoP lines", target: "/", headers: []string{"DPoP a.b.c", "DPoP a.b.c"}, want: credential{token: "a.b.c", dpop: true}},
		{name: "Bearer and DPoP, different tokens", target: "/", headers: []string{"Bearer x.y.z", "DPoP a.b.c"}, reason: ReasonMultipleCredentials},
		{name: "Bearer and DPoP, one token", target: "/", headers: []string{"Bearer a.b.c", "DPoP a.b.c"}, reason: ReasonMultipleCredentials},
		{name: "query and DPoP", target: "/?t=a.b.c", headers: []string{"DPoP a.b.c"}, reason: ReasonMultipleCredentials},
		{name: "DPoP without a token", target: "/", headers: []string{"DPoP "}, reason: ReasonMalformed, want: credential{dpop: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.target, nil)
			for _, h := range c.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := extractCredential(r, sources, defaultMaxTokenSize)
			if ReasonOf(err) != c.reason || got != c.want {
				t.Fatalf("got %+v, %v; want %+v, %q", got, err, c.want, c.reason)
			}
		})
	}
	// Without the DPoP source the scheme is not read.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "DPoP a.b.c")
	if got, err := extractCredential(r, defaultSources, defaultMaxTokenSize); got.token != "" || err != nil {
		t.Fatalf("DPoP read without the DPoP source: %+v %v", got, err)
	}
}

func TestCredentialSourcesAndResourceInputs(t *testing.T) {
	iss := func(dpop, mtls string) IssuerConfig { return IssuerConfig{Issuer: "a", DPoP: dpop, MTLS: mtls} }
	for _, c := range []struct {
		name         string
		cfg          Config
		dpopSource   bool
		algs         bool
		required     bool
		mtls         bool
		bearerChalls bool
	}{
		{name: "defaults", cfg: Config{Issuers: []IssuerConfig{iss("", "")}}, dpopSource: true, algs: true, bearerChalls: true},
		{name: "dpop off", cfg: Config{DPoP: modeOff, Issuers: []IssuerConfig{iss("", "")}}, bearerChalls: true},
		{name: "dpop required", cfg: Config{DPoP: modeRequired, Issuers: []IssuerConfig{iss("", "")}}, dpopSource: true, algs: true, required: true},
		{name: "issuer replaces the top level", cfg: Config{DPoP: modeOff, Issuers: []IssuerConfig{iss(modeRequired, "")}}, dpopSource: true, algs: true, required: true},
		{name: "mtls allowed", cfg: Config{MTLS: modeAllowed, Issuers: []IssuerConfig{iss("", "")}}, dpopSource: true, algs: true, mtls: true, bearerChalls: true},
		{name: "mtls required in an issuer", cfg: Config{Issuers: []IssuerConfig{iss(modeOff, modeRequired)}}, mtls: true, bearerChalls: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := slices.Contains(c.cfg.credentialSources(), dpopSource); got != c.dpopSource {
				t.Errorf("DPoP source %v, want %v", got, c.dpopSource)
			}
			in := c.cfg.resourceInputs()
			if (in.DPoPAlgorithms != nil) != c.algs || in.DPoPRequired != c.required || in.MTLS != c.mtls {
				t.Errorf("resource inputs %+v", in)
			}
			if c.cfg.bearerAccepted() != c.bearerChalls {
				t.Errorf("bearerAccepted %v, want %v", !c.bearerChalls, c.bearerChalls)
			}
		})
	}
}

// TestRenderBindingChallenges: the scheme and error of each new code's
// challenge, from the one reason table.
func TestRenderBindingChallenges(t *testing.T) {
	a := &authenticator{cfg: &Config{Issuers: []IssuerConfig{{Issuer: "a"}}, DPoPAlgorithms: []string{"ES256", "EdDSA"}}}
	r := httptest.NewRequest("GET", "http://api.example/x", nil)
	for _, c := range []struct {
		reason Reason
		scheme string
		want   string
	}{
		{ReasonDPoPProof, schemeDPoP, `DPoP realm="api.example", error="invalid_dpop_proof", error_description="dpop_proof", algs="ES256 EdDSA"`},
		{ReasonDPoPReplay, schemeDPoP, `DPoP realm="api.example", error="invalid_dpop_proof", error_description="dpop_replay", algs="ES256 EdDSA"`},
		{ReasonDPoPNonce, schemeDPoP, `DPoP realm="api.example", error="use_dpop_nonce", error_description="dpop_nonce", algs="ES256 EdDSA"`},
		{ReasonExpired, schemeDPoP, `DPoP realm="api.example", error="invalid_token", error_description="expired", algs="ES256 EdDSA"`},
		{ReasonUnboundToken, schemeDPoP, `DPoP realm="api.example", error="invalid_token", error_description="unbound_token", algs="ES256 EdDSA"`},
		{ReasonUnboundToken, "", `Bearer realm="api.example", error="invalid_token", error_description="unbound_token"`},
		{ReasonCertMismatch, "", `Bearer realm="api.example", error="invalid_token", error_description="cert_mismatch"`},
		{ReasonBoundToken, "", `Bearer realm="api.example", error="invalid_token", error_description="bound_token"`},
	} {
		ans := a.render(r, &Rejection{Reason: c.reason, scheme: c.scheme}, handlerForm)
		if ans.status != 401 || len(ans.challenges) != 1 || ans.challenges[0].String() != c.want {
			t.Errorf("%s/%s: %d %v, want %s", c.reason, c.scheme, ans.status, ans.challenges, c.want)
		}
	}
	var names []string
	for _, rr := range Reasons() {
		names = append(names, string(rr))
	}
	for _, code := range []Reason{ReasonUnboundToken, ReasonDPoPProof, ReasonDPoPReplay, ReasonDPoPNonce, ReasonCertMismatch} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+string(code)+" ") {
			t.Errorf("%s missing from Reasons()", code)
		}
	}
}

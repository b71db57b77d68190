package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Certificate-bound tokens (RFC 8705) through a real HTTPS listener: the
// test makes a CA, two client certificates and a server certificate for
// localhost, serves https://localhost:9443 with tls client_auth, and sends
// tokens whose cnf["x5t#S256"] names one client certificate over
// connections made with each of them, or with none.

// httpsSiteURL is the site of these tests. Clients connect by name: with
// client authentication Caddy refuses a request whose Host is not the
// connection's SNI name (421), and an IP address sends no SNI at all.
const httpsSiteURL = "https://localhost:9443"

// testPKI is a CA with what it issued, as files Caddy can read and as
// values the test clients use.
type testPKI struct {
	dir                   string
	caFile                string
	serverCert, serverKey string
	pool                  *x509.CertPool
	client, other         tls.Certificate
}

// newTestPKI writes every file as .pem: caddytest rewrites any "/x.crt"
// and "/x.key" path of a config into its own directory.
func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey := newP256(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jwt_auth test client CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.pool.AddCert(ca)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, *ecdsa.PrivateKey) {
		key := newP256(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     dns,
		}
		if dns != nil {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	serverDER, serverKey := issue(2, "localhost", x509.ExtKeyUsageServerAuth, []string{"localhost"})
	p.serverCert = p.write(t, "server.pem", "CERTIFICATE", serverDER)
	p.serverKey = p.write(t, "server-key.pem", "PRIVATE KEY", marshalKey(t, serverKey))
	clientDER, clientKey := issue(3, "client", x509.ExtKeyUsageClientAuth, nil)
	otherDER, otherKey := issue(4, "other client", x509.ExtKeyUsageClientAuth, nil)
	p.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	p.other = tls.Certificate{Certificate: [][]byte{otherDER}, PrivateKey: otherKey}
	return p
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (p *testPKI) write(t *testing.T, name, block string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: block, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// x5t is the RFC 8705 §3.1 confirmation of a certificate:
// base64url(SHA-256(DER)).
func x5t(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// clientWith is an HTTPS client trusting the test CA that presents cert
// (none when cert is nil), with its own connections.
func (p *testPKI) clientWith(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true},
	}
}

// siteTLS is the tls directive of the test site.
func (p *testPKI) siteTLS() string {
	return `	tls ` + p.serverCert + ` ` + p.serverKey + ` {
		client_auth {
			mode verify_if_given
			trust_pool file ` + p.caFile + `
		}
	}
`
}

func TestEndToEndMTLSBoundTokens(t *testing.T) {
	pki := newTestPKI(t)
	f := newFixture(t)
	tc := caddytest.NewTester(t)
	tc.InitServer(globalOptions+"\n"+httpsSiteURL+" {\n"+pki.siteTLS()+`
	handle /required/* {
		`+strings.ReplaceAll(f.block("\tmtls required"), "\n", "\n\t\t")+`
		respond "{http.auth.binding}"
	}
	handle {
		`+strings.ReplaceAll(f.block("\tmtls allowed\n\tdpop allowed"), "\n", "\n\t\t")+`
		respond "{http.auth.binding}"
	}
}
`, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	withClient, withOther, without := pki.clientWith(&pki.client), pki.clientWith(&pki.other), pki.clientWith(nil)
	unbound := f.token(t, nil)
	eventually(t, 10*time.Second, "keys loaded", func() bool {
		resp, _ := sendAuth(t, withClient, httpsSiteURL+"/", "Bearer "+unbound, "")
		return resp.StatusCode == 200
	})

	bound := f.token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": x5t(pki.client)} })
	proofKey := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	both := f.token(t, func(c map[string]any) {
		c["cnf"] = map[string]any{"x5t#S256": x5t(pki.client), "jkt": proofKey.jkt}
	})
	proof := func(path, token string) string {
		return proofKey.sign(t, nil, map[string]any{
			"htu": httpsSiteURL + path, "iat": time.Now().Unix(), "ath": accessTokenHash(token),
		})
	}

	cases := []struct {
		name          string
		client        *http.Client
		path          string
		authorization string
		proof         string
		status        int
		want          string // the binding on 200, else the reason code
	}{
		{"bound token, its certificate", withClient, "/", "Bearer " + bound, "", 200, "mtls"},
		{"bound token, another certificate", withOther, "/", "Bearer " + bound, "", 401, "cert_mismatch"},
		{"bound token, no certificate", without, "/", "Bearer " + bound, "", 401, "cert_mismatch"},
		{"unbound token over mTLS", withClient, "/", "Bearer " + unbound, "", 200, "bearer"},
		{"bound both ways, both proven", withClient, "/", "DPoP " + both, proof("/", both), 200, "dpop+mtls"},
		{"bound both ways, another certificate", withOther, "/", "DPoP " + both, proof("/", both), 401, "cert_mismatch"},
		{"bound both ways, no certificate", without, "/", "DPoP " + both, proof("/", both), 401, "cert_mismatch"},
		{"bound both ways, proof for another URL", withClient, "/", "DPoP " + both, proof("/elsewhere", both), 401, "dpop_proof"},
		{"bound both ways, as a bearer token", withClient, "/", "Bearer " + both, "", 401, "bound_token"},
		{"mtls required, its certificate", withClient, "/required/x", "Bearer " + bound, "", 200, "mtls"},
		{"mtls required, unbound token", withClient, "/required/x", "Bearer " + unbound, "", 401, "unbound_token"},
		{"mtls required, another certificate", withOther, "/required/x", "Bearer " + bound, "", 401, "cert_mismatch"},
	}
	for _, c := range cases {
		resp, body := sendAuth(t, c.client, httpsSiteURL+c.path, c.authorization, c.proof)
		if c.status == 200 {
			if resp.StatusCode != 200 || body != c.want {
				t.Errorf("%s: %d %q (%q), want 200 %q", c.name, resp.StatusCode, body, resp.Header.Values("WWW-Authenticate"), c.want)
			}
			continue
		}
		assertRejected(t, c.name, resp, body, c.want)
	}

	// By IP address the client sends no SNI, and with client
	// authentication Caddy refuses a Host that is not the SNI name: 421,
	// before jwt_auth runs (the README's mTLS recipe says so).
	ipClient := pki.clientWith(&pki.client)
	ipClient.Transport.(*http.Transport).TLSClientConfig.ServerName = "" // verified by its IP SAN
	if resp, _ := sendAuth(t, ipClient, "https://127.0.0.1:9443/", "Bearer "+bound, ""); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("by IP address: %d, want 421", resp.StatusCode)
	}
}

// mtlsRecipe is the README's mTLS recipe verbatim
// (TestReadmeShowsMTLSRecipe checks it). The test substitutes only the site
// address, the certificate paths, the JWKS URL and the upstream address.
const mtlsRecipe = `api.example.com {
	tls /etc/caddy/server.crt /etc/caddy/server.key {
		client_auth {
			mode verify_if_given
			trust_pool file /etc/caddy/client-ca.crt
		}
	}
	jwt_auth {
		issuer https://idp.example.com/
		jwks_url https://idp.example.com/.well-known/jwks.json
		audience api
		mtls required
	}
	reverse_proxy localhost:8000 {
		header_up X-Auth-Binding {http.auth.binding}
	}
}
`

func TestPolicyRecipeMTLS(t *testing.T) {
	pki := newTestPKI(t)
	f := fixtureFor(t, "https://idp.example.com/", jwttest.NewEC(t, "ES256", "k1"))
	up := newEchoUpstream(t)
	cfg := strings.NewReplacer(
		recipeSite+" {", httpsSiteURL+" {",
		"/etc/caddy/server.crt", pki.serverCert,
		"/etc/caddy/server.key", pki.serverKey,
		"/etc/caddy/client-ca.crt", pki.caFile,
		"https://idp.example.com/.well-known/jwks.json", f.jwks.JWKSURL(),
		recipeUpstream, up.addr(),
	).Replace(mtlsRecipe)
	tc := caddytest.NewTester(t)
	tc.InitServer(globalOptions+"\n"+cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	withClient, withOther, without := pki.clientWith(&pki.client), pki.clientWith(&pki.other), pki.clientWith(nil)
	bound := f.sign(t, "api", func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": x5t(pki.client)} })
	eventually(t, 10*time.Second, "keys loaded", func() bool {
		resp, _ := sendAuth(t, withClient, httpsSiteURL+"/", "Bearer "+bound, "")
		return resp.StatusCode == 200
	})
	up.reset()
	if resp, body := sendAuth(t, withClient, httpsSiteURL+"/orders", "Bearer "+bound, ""); resp.StatusCode != 200 || body != "upstream" {
		t.Fatalf("bound token with its certificate: %d %q", resp.StatusCode, body)
	}
	if got := up.last(t).Header.Get("X-Auth-Binding"); got != "mtls" {
		t.Errorf("upstream saw X-Auth-Binding %q, want mtls", got)
	}
	resp, body := sendAuth(t, withOther, httpsSiteURL+"/orders", "Bearer "+bound, "")
	assertRejected(t, "another certificate", resp, body, "cert_mismatch")
	resp, body = sendAuth(t, without, httpsSiteURL+"/orders", "Bearer "+bound, "")
	assertRejected(t, "no certificate", resp, body, "cert_mismatch")
	resp, body = sendAuth(t, withClient, httpsSiteURL+"/orders", "Bearer "+f.sign(t, "api", nil), "")
	assertRejected(t, "unbound token", resp, body, "unbound_token")
	if c := challengeFor(resp, "Bearer"); !strings.Contains(c, `error="invalid_token"`) {
		t.Errorf("unbound_token challenge %q, want the Bearer challenge", c)
	}
	if up.hits.Load() != 1 {
		t.Errorf("upstream reached %d times, want once (only the bound token with its certificate)", up.hits.Load())
	}
}

func TestReadmeShowsMTLSRecipe(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```caddyfile\n"+mtlsRecipe+"```\n") {
		t.Errorf("README.md does not show the mTLS recipe verbatim:\n%s", mtlsRecipe)
	}
}

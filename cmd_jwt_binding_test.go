package jwtauth

import (
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// TestCLIVerifyBinding: --dpop, --method, --url and --cert present the
// token as a request would, and the trace explains the binding step.
func TestCLIVerifyBinding(t *testing.T) {
	f := newCLIFixture(t)
	client := newTestProofKey(t, jwttest.NewEC(t, "ES256", ""))
	const url = "https://api.example/orders"
	bound := f.token(t, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": client.jkt} })
	proof := func(claims map[string]any) string {
		c := map[string]any{"htu": url, "iat": time.Now().Unix(), "ath": accessTokenHash(bound)}
		for k, v := range claims {
			c[k] = v
		}
		return client.sign(t, nil, c)
	}
	cert := newTestCert(t, "cli-client")
	certFile := filepath.Join(t.TempDir(), "client.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	mtlsCfg := filepath.Join(t.TempDir(), "Caddyfile")
	writeFile(t, mtlsCfg, "{\n\tadmin off\n}\n:8080 {\n\tjwt_auth {\n\t\tissuer "+f.issuer+"\n\t\tjwks_file "+f.jwksFile+"\n\t\taudience api\n\t\tmtls allowed\n\t}\n}\n")
	certBound := f.token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": certThumbprint(cert)} })
	base := []string{"verify", "--issuer", f.issuer, "--jwks-file", f.jwksFile, "--audience", "api"}

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		last   string
		detail string
	}{
		{name: "valid proof", args: append(base, "--dpop", proof(nil), "--url", url, bound), code: exitOK, detail: "jwk thumbprint equals cnf.jkt"},
		{name: "proof for another method", args: append(base, "--dpop", proof(map[string]any{"htm": "POST"}), "--url", url, bound), code: exitRejected, last: "rejected: dpop_proof", detail: "htm does not match the request method"},
		{name: "bound token without a proof", args: append(base, bound), code: exitRejected, last: "rejected: bound_token", detail: "not presented with the DPoP scheme"},
		{name: "certificate-bound token with its certificate", args: []string{"verify", "--config", mtlsCfg, "--cert", certFile, certBound}, code: exitOK, detail: "equals cnf x5t#S256"},
		{name: "certificate-bound token without a certificate", args: []string{"verify", "--config", mtlsCfg, certBound}, code: exitRejected, last: "rejected: cert_mismatch", detail: "no TLS client certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := cliRun(t, "", c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			if !strings.Contains(out, c.detail) || (c.last != "" && !strings.Contains(out, c.last)) {
				t.Fatalf("output lacks %q / %q:\n%s", c.detail, c.last, out)
			}
			if strings.Contains(out, bound) {
				t.Fatal("the output echoes the token")
			}
		})
	}
	if code, _, errOut := cliRun(t, "", append(base, "--dpop", proof(nil), bound)...); code != exitUsage || !strings.Contains(errOut, "--url") {
		t.Fatalf("--dpop without --url: exit %d %q", code, errOut)
	}
}

package jwtauth

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// cliRun runs `caddy jwt args...` through the command function.
func cliRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runJWT(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliFixture is an issuer with one ES256 key, served by a real JWKS server
// and also written to a file.
type cliFixture struct {
	issuer   string
	key      *jwttest.Key
	srv      *jwttest.Server
	jwksFile string
}

func newCLIFixture(t *testing.T) *cliFixture {
	t.Helper()
	key := jwttest.NewEC(t, "ES256", "cli-key")
	srv := jwttest.NewServer(t, key)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwttest.JWKS(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cliFixture{issuer: srv.URL(), key: key, srv: srv, jwksFile: file}
}

func (f *cliFixture) token(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	c := jwttest.Claims(f.issuer, "api", 5*time.Minute)
	if edit != nil {
		edit(c)
	}
	return jwttest.Sign(t, f.key, nil, c)
}

var stepLine = regexp.MustCompile(`(?m)^  (pass|FAIL|skip)\s+(\S+)`)

// steps returns "step=status" for each step line, in order.
func steps(out string) []string {
	var s []string
	for _, m := range stepLine.FindAllStringSubmatch(out, -1) {
		s = append(s, m[2]+"="+m[1])
	}
	return s
}

// failingStep returns the one FAIL step, or "".
func failingStep(t *testing.T, out string) string {
	t.Helper()
	var failed []string
	for _, s := range steps(out) {
		if name, ok := strings.CutSuffix(s, "=FAIL"); ok {
			failed = append(failed, name)
		}
	}
	if len(failed) > 1 {
		t.Fatalf("more than one failing step %v in:\n%s", failed, out)
	}
	return strings.Join(failed, "")
}

func TestCLIVerify(t *testing.T) {
	f := newCLIFixture(t)
	other := jwttest.NewEC(t, "ES256", "cli-key") // same kid, another key
	expired := f.token(t, func(c map[string]any) {
		c["iat"], c["nbf"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	})
	cases := []struct {
		name, token, fail, verdict string
		code                       int
	}{
		{"valid", f.token(t, nil), "", "accepted", 0},
		{"expired", expired, "exp", "rejected: expired (HTTP 401)", 1},
		{"wrong audience", f.token(t, func(c map[string]any) { c["aud"] = "other" }), "aud", "rejected: wrong_audience (HTTP 401)", 1},
		{"bad signature", jwttest.Sign(t, other, nil, jwttest.Claims(f.issuer, "api", 5*time.Minute)), "signature", "rejected: bad_signature (HTTP 401)", 1},
		{"unknown kid", jwttest.Sign(t, jwttest.NewEC(t, "ES256", "rotated-away"), nil, jwttest.Claims(f.issuer, "api", time.Minute)), "key", "rejected: unknown_kid (HTTP 401)", 1},
		{"wrong issuer", f.token(t, func(c map[string]any) { c["iss"] = "https://elsewhere.example" }), "issuer", "rejected: wrong_issuer (HTTP 401)", 1},
		{"garbage", "a.b", "decode", "rejected: malformed (HTTP 401)", 1},
	}
	sources := map[string][]string{
		"jwks-url":  {"--jwks-url", f.srv.JWKSURL()},
		"jwks-file": {"--jwks-file", f.jwksFile},
		"discovery": nil,
	}
	for srcName, src := range sources {
		for _, c := range cases {
			t.Run(srcName+"/"+c.name, func(t *testing.T) {
				args := append([]string{"verify", "--issuer", f.issuer, "--audience", "api"}, src...)
				code, out, errOut := cliRun(t, "", append(args, c.token)...)
				if code != c.code {
					t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
				}
				if got := failingStep(t, out); got != c.fail {
					t.Fatalf("failing step %q, want %q\n%s", got, c.fail, out)
				}
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if last := lines[len(lines)-1]; last != c.verdict {
					t.Fatalf("last line %q, want %q", last, c.verdict)
				}
			})
		}
	}
}

func TestCLIVerifyShowsStepsAndClockArithmetic(t *testing.T) {
	f := newCLIFixture(t)
	tok := f.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() })
	// Flags after the token work too, and "-" reads standard input.
	code, out, _ := cliRun(t, "Bearer "+tok+"\n", "verify", "-", "--issuer", f.issuer, "--jwks-file", f.jwksFile, "--leeway", "1m")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// The steps the verifier ran, up to the failing one.
	want := []string{"size=pass", "decode=pass", "issuer=pass", "alg=pass", "key=pass", "signature=pass", "claim_types=pass", "exp=FAIL"}
	if got := steps(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %v, want %v\n%s", got, want, out)
	}
	if !regexp.MustCompile(`FAIL  exp +exp \S+Z \(expired 10m ago\) is not after now − leeway = \S+Z`).MatchString(out) {
		t.Fatalf("exp line lacks the clock arithmetic:\n%s", out)
	}
	if !strings.Contains(out, `key           kid "cli-key": EC P-256 key (alg ES256); the set has kids ["cli-key"]`) {
		t.Fatalf("key lookup line lacks the set's kids:\n%s", out)
	}
	// Within the leeway the same kind of token passes, and every check says why.
	tok = f.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-20 * time.Second).Unix() })
	code, out, _ = cliRun(t, "", "verify", "--issuer", f.issuer, "--jwks-file", f.jwksFile, "--leeway", "1m", tok)
	if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "(expired 20s ago) is after now − leeway") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	want = []string{"size=pass", "decode=pass", "issuer=pass", "alg=pass", "key=pass", "signature=pass", "claim_types=pass",
		"exp=pass", "nbf=pass", "iat=pass", "max_lifetime=pass", "aud=pass", "typ=pass", "cnf=pass", "binding=pass"}
	if got := steps(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %v, want %v\n%s", got, want, out)
	}
}

// TestCLIVerifyLeeway: --leeway 0 means no skew at all (not the default),
// and without the flag the default 30s applies.
func TestCLIVerifyLeeway(t *testing.T) {
	f := newCLIFixture(t)
	justExpired := f.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Second).Unix() })
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"zero", []string{"--leeway", "0"}, 1, "leeway 0s)"},
		{"default", nil, 0, "leeway 30s)"},
		{"explicit", []string{"--leeway", "10s"}, 0, "leeway 10s)"},
		{"zero in a Caddyfile", []string{"--config", leewayZeroCaddyfile(t, f)}, 1, "leeway 0s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"verify", justExpired}, c.args...)
			if c.args == nil || c.args[0] != "--config" {
				args = append(args, "--issuer", f.issuer, "--jwks-file", f.jwksFile)
			}
			code, out, errOut := cliRun(t, "", args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, c.code, c.want, out, errOut)
			}
		})
	}
}

func leewayZeroCaddyfile(t *testing.T, f *cliFixture) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	writeFile(t, path, "http://localhost:8080 {\n\tjwt_auth {\n\t\tissuer "+f.issuer+"\n\t\tjwks_file "+f.jwksFile+"\n\t\tleeway 0\n\t}\n\trespond ok\n}\n")
	return path
}

// TestCLIVerifyUnknownKidSaysWhy: a kid that is in the set but on a key that
// cannot verify the token's alg is still unknown_kid, and the output says
// so instead of sending the operator to a kid list that contains it.
func TestCLIVerifyUnknownKidSaysWhy(t *testing.T) {
	ec := jwttest.NewEC(t, "ES256", "k1")
	rsa := jwttest.NewRSA(t, 2048, "k1", "RS256")
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, string(jwttest.JWKS(ec)))
	iss := "https://idp.example"
	tok := jwttest.Sign(t, rsa, nil, jwttest.Claims(iss, "api", time.Minute))
	missing := jwttest.Sign(t, jwttest.NewEC(t, "ES256", "k2"), nil, jwttest.Claims(iss, "api", time.Minute))
	for _, c := range []struct{ token, detail string }{
		{tok, `FAIL  key           kid "k1" is in the key set but is an EC P-256 key (alg ES256), which cannot verify RS256`},
		{missing, `FAIL  key           no key with kid "k2" in the set`},
	} {
		code, out, errOut := cliRun(t, "", "verify", "--issuer", iss, "--jwks-file", file, c.token)
		if code != 1 || !strings.Contains(out, c.detail) || !strings.HasSuffix(strings.TrimSpace(out), "rejected: unknown_kid (HTTP 401)") {
			t.Fatalf("exit %d, want 1 with %q\n%s%s", code, c.detail, out, errOut)
		}
	}
}

func TestCLIVerifyWithCaddyfile(t *testing.T) {
	f := newCLIFixture(t)
	dir := t.TempDir()
	one := filepath.Join(dir, "Caddyfile")
	writeFile(t, one, `http://localhost:8080 {
	jwt_auth {
		issuer `+f.issuer+`
		jwks_url `+f.srv.JWKSURL()+`
		audience api
		require scope write
	}
	respond "ok"
}`)
	good := f.token(t, func(c map[string]any) { c["scope"] = "read write" })
	if code, out, errOut := cliRun(t, "", "verify", "--config", one, good); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ := cliRun(t, "", "verify", "--config", one, f.token(t, func(c map[string]any) { c["scope"] = "read" }))
	if code != 1 || failingStep(t, out) != "require" || !strings.HasSuffix(strings.TrimSpace(out), "rejected: claim_mismatch (HTTP 403)") {
		t.Fatalf("require from the Caddyfile not applied: exit %d\n%s", code, out)
	}

	two := filepath.Join(dir, "Caddyfile.two")
	writeFile(t, two, `http://localhost:8080 {
	route /a/* {
		jwt_auth {
			issuer `+f.issuer+`
			jwks_url `+f.srv.JWKSURL()+`
		}
	}
	route /b/* {
		jwt_auth {
			issuer `+f.issuer+`
			jwks_file `+f.jwksFile+`
		}
	}
	respond "ok"
}`)
	if code, _, errOut := cliRun(t, "", "verify", "--config", two, good); code != 2 || !strings.Contains(errOut, "2 jwt_auth handlers") {
		t.Fatalf("two handlers: exit %d, %s", code, errOut)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	f := newCLIFixture(t)
	tok := f.token(t, nil)
	for name, args := range map[string][]string{
		"no subcommand":        {},
		"unknown subcommand":   {"inspect", tok},
		"no token":             {"verify", "--issuer", f.issuer},
		"two tokens":           {"verify", "--issuer", f.issuer, tok, tok},
		"no issuer":            {"verify", tok},
		"unknown flag":         {"verify", "--issuer", f.issuer, "--bogus", tok},
		"http to remote host":  {"verify", "--issuer", "https://idp.example", "--jwks-url", "http://idp.example/jwks", tok},
		"url and file":         {"verify", "--issuer", f.issuer, "--jwks-url", f.srv.JWKSURL(), "--jwks-file", f.jwksFile, tok},
		"config and flags":     {"verify", "--config", "Caddyfile.example", "--audience", "x", tok},
		"missing config file":  {"verify", "--config", filepath.Join(t.TempDir(), "nope"), tok},
		"bad leeway":           {"verify", "--issuer", f.issuer, "--leeway", "soon", tok},
		"decode without token": {"decode"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, out, errOut := cliRun(t, "", args...); code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
			}
		})
	}
}

func TestCLIHelpIsNotAnError(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"verify", "-h"}, {"decode", "--help"}} {
		if code, out, errOut := cliRun(t, "", args...); code != 0 || out+errOut == "" {
			t.Errorf("%v: exit %d, output %q", args, code, out+errOut)
		}
	}
}

func TestCLIKeysUnavailable(t *testing.T) {
	f := newCLIFixture(t)
	f.srv.SetMode(jwttest.Status500)
	code, out, _ := cliRun(t, "", "verify", "--issuer", f.issuer, "--jwks-url", f.srv.JWKSURL(), f.token(t, nil))
	if code != 1 || failingStep(t, out) != "key" || !strings.Contains(out, "could not load from "+f.srv.JWKSURL()+": status 500") ||
		!strings.HasSuffix(strings.TrimSpace(out), "rejected: keys_unavailable (HTTP 503)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestCLIDecode(t *testing.T) {
	f := newCLIFixture(t)
	tok := f.token(t, func(c map[string]any) {
		c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		c["exp"] = time.Now().Add(4*time.Minute + 30*time.Second).Unix()
		delete(c, "nbf")
	})
	code, out, _ := cliRun(t, tok, "decode", "-")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"UNVERIFIED", `"alg": "ES256"`, `"kid": "cli-key"`, `"sub": "user-123"`,
		"(expires in 4m)", "(issued 2h ago)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("decode output lacks %q:\n%s", want, out)
		}
	}
	exp := time.Unix(time.Now().Add(4*time.Minute+30*time.Second).Unix(), 0).UTC().Format(time.RFC3339)
	if !strings.Contains(out, "exp  "+exp) {
		t.Errorf("exp not shown in UTC as %s:\n%s", exp, out)
	}
	// Decoding never looks at keys: a token signed by anyone decodes.
	forged := jwttest.Sign(t, jwttest.NewEC(t, "ES256", "x"), nil, jwttest.Claims("https://any.example", "", -time.Hour))
	if code, out, _ := cliRun(t, "", "decode", forged); code != 0 || !strings.Contains(out, "expired 1h ago") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if code, out, _ := cliRun(t, "", "decode", "not-a-token"); code != 1 || !strings.Contains(out, "rejected: malformed") {
		t.Fatalf("garbage: exit %d\n%s", code, out)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 4*time.Minute + 59*time.Second: "4m",
		time.Hour: "1h", 65 * time.Minute: "1h5m", 50 * time.Hour: "2d2h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestBuiltBinaryJWTVerify builds ./cmd/caddy and runs `caddy jwt verify`
// for real: the subcommand is registered and exit codes reach the shell.
func TestBuiltBinaryJWTVerify(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f := newCLIFixture(t)
	run := func(tok string) (int, string) {
		cmd := exec.Command(bin, "jwt", "verify", "--issuer", f.issuer, "--jwks-file", f.jwksFile, "--audience", "api", tok)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run(f.token(t, nil)); code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "accepted") {
		t.Fatalf("valid: exit %d\n%s", code, out)
	}
	expired := f.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	if code, out := run(expired); code != 1 || !strings.Contains(out, "FAIL  exp") || !strings.HasSuffix(strings.TrimSpace(out), "rejected: expired (HTTP 401)") {
		t.Fatalf("expired: exit %d\n%s", code, out)
	}
	if code, out := run(""); code != 2 {
		t.Fatalf("empty token: exit %d\n%s", code, out)
	}
}

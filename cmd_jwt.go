package jwtauth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Exit codes of `caddy jwt`.
const (
	exitOK       = 0 // decoded, or verified and accepted
	exitRejected = 1 // the token was rejected (the reason code is printed)
	exitUsage    = 2 // bad flags, unreadable input or an invalid configuration
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "jwt",
		Usage: "decode <token|-> | verify (--issuer <iss> [--jwks-url <url>|--jwks-file <file>] [--audience <aud>] [--leeway <d>] | --config <Caddyfile>) [--dpop <proof> --method <m> --url <u>] [--cert <pem file>] <token|->",
		Short: "Decodes a JWT, or verifies it exactly as jwt_auth would",
		Long: `
Troubleshooting for the jwt_auth handler.

"decode" prints a token's header and claims with its times in UTC and
relative to now. Nothing is verified: the output is labelled UNVERIFIED.

"verify" runs the handler's own verifier and prints each step it ran
(size, decode, issuer, alg, key, signature, claim types, exp, nbf, iat,
max_lifetime, aud, typ, cnf, binding, each require rule) as pass or fail
with the values behind it, ending with the reason code that jwt_auth would
answer with. Settings come from flags, or with --config from the only
jwt_auth handler of a Caddyfile. Without --jwks-url or --jwks-file the keys
are found through OpenID Connect discovery from the issuer.

A sender-constrained token is checked as the request would present it:
--dpop <proof> presents it with the DPoP scheme and that DPoP header, for
the request --method (default GET) to --url; --cert <pem file> is the TLS
client certificate. Server nonces (dpop_nonce) are not checked here: their
secret lives in the server's storage.

A token argument of "-" reads the token from standard input.

Exit status: 0 accepted (or decoded), 1 rejected, 2 usage error.`,
		CobraFunc: func(cmd *cobra.Command) {
			// Our own flag parsing, so the command function is testable
			// without cobra and flags may follow the token.
			cmd.DisableFlagParsing = true
			cmd.RunE = func(_ *cobra.Command, args []string) error {
				if code := runJWT(args, os.Stdin, os.Stdout, os.Stderr); code != exitOK {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}

// runJWT is the `caddy jwt` command: args are what follows "jwt".
func runJWT(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: caddy jwt decode <token|->  |  caddy jwt verify [flags] <token|->")
		return exitUsage
	}
	switch args[0] {
	case "decode":
		return runDecode(args[1:], stdin, stdout, stderr)
	case "verify":
		return runVerify(args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: caddy jwt decode <token|->  |  caddy jwt verify [flags] <token|->  (caddy help jwt for more)")
		return exitOK
	default:
		fmt.Fprintf(stderr, "caddy jwt: unknown subcommand %q (want decode or verify)\n", args[0])
		return exitUsage
	}
}

// parseInterspersed parses flags anywhere among the arguments (Go's flag
// package stops at the first positional one) and returns the positionals.
func parseInterspersed(fs *goflag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// flagErrorCode: -h is a request, not a mistake; the flag package has
// already printed the usage or the error.
func flagErrorCode(err error) int {
	if errors.Is(err, goflag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// readToken returns the single token argument, or standard input for "-".
func readToken(positional []string, stdin io.Reader) (string, error) {
	if len(positional) != 1 {
		return "", fmt.Errorf("want exactly one token argument (or - for standard input), got %d", len(positional))
	}
	tok := positional[0]
	if tok == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return "", fmt.Errorf("reading standard input: %w", err)
		}
		tok = string(data)
	}
	// Pasted from a header, a token often keeps its scheme or a newline.
	tok = strings.TrimSpace(tok)
	if scheme, rest, ok := strings.Cut(tok, " "); ok && (strings.EqualFold(scheme, schemeBearer) || strings.EqualFold(scheme, schemeDPoP)) {
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		return "", errors.New("the token is empty")
	}
	return tok, nil
}

// runDecode prints a token without verifying anything.
func runDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := goflag.NewFlagSet("caddy jwt decode", goflag.ContinueOnError)
	fs.SetOutput(stderr)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return flagErrorCode(err)
	}
	tok, err := readToken(positional, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "caddy jwt decode:", err)
		return exitUsage
	}
	t, rej := decodeToken(tok)
	if rej != nil {
		fmt.Fprintf(stdout, "cannot decode: %v\nrejected: %s\n", rej, rej.Reason)
		return exitRejected
	}
	fmt.Fprintln(stdout, "UNVERIFIED: decoded only; neither the signature nor any claim was checked (use caddy jwt verify).")
	fmt.Fprintf(stdout, "\nheader:\n%s\n\nclaims:\n%s\n", indentJSON(t.Header), indentJSON(t.Claims))
	printTimes(stdout, t.Claims, time.Now())
	return exitOK
}

func indentJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("(unprintable: %v)", err)
	}
	return string(b)
}

// printTimes shows exp, nbf and iat in UTC and relative to now.
func printTimes(w io.Writer, claims map[string]any, now time.Time) {
	lines := []string{}
	for _, name := range []string{"iat", "nbf", "exp"} {
		at, ok, err := numericDate(claims, name)
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf("  %s  invalid: %v", name, err))
		case ok:
			lines = append(lines, fmt.Sprintf("  %s  %s  (%s)", name, utc(at), relativeTime(name, at, now)))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\ntimes (UTC, now %s):\n%s\n", utc(now), strings.Join(lines, "\n"))
	}
}

// verifyFlags are the settings of `caddy jwt verify`.
type verifyFlags struct {
	issuer, jwksURL, jwksFile, config string
	audience                          stringList
	leeway                            time.Duration
	// How the token is presented, for the binding checks.
	dpop, method, url, cert string
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (vf *verifyFlags) register(fs *goflag.FlagSet) {
	fs.StringVar(&vf.issuer, "issuer", "", "trusted issuer, compared byte for byte with iss")
	fs.StringVar(&vf.jwksURL, "jwks-url", "", "key set URL (default: OpenID Connect discovery from --issuer)")
	fs.StringVar(&vf.jwksFile, "jwks-file", "", "local JWKS or PEM file")
	fs.Var(&vf.audience, "audience", "accepted audience (repeatable)")
	fs.DurationVar(&vf.leeway, "leeway", defaultLeeway, "clock skew allowed for exp, nbf and iat")
	fs.StringVar(&vf.config, "config", "", "take the settings from this Caddyfile's only jwt_auth handler")
	fs.StringVar(&vf.dpop, "dpop", "", "DPoP proof: present the token with the DPoP scheme and this DPoP header")
	fs.StringVar(&vf.method, "method", http.MethodGet, "request method the DPoP proof is checked against")
	fs.StringVar(&vf.url, "url", "", "request URL the DPoP proof is checked against")
	fs.StringVar(&vf.cert, "cert", "", "PEM file with the TLS client certificate the token is presented over")
}

// presentationFlags are the flags that describe the request rather than
// the handler, so they combine with --config.
var presentationFlags = map[string]bool{"dpop": true, "method": true, "url": true, "cert": true}

// presentation is the request the flags describe: the token with the DPoP
// scheme and proof when --dpop is given, over a TLS client certificate
// when --cert is.
func (vf *verifyFlags) presentation(tok string) (*presentation, error) {
	p := &presentation{token: tok, method: vf.method, url: vf.url}
	if vf.dpop != "" {
		if vf.url == "" {
			return nil, errors.New("--dpop needs --url, the request URL the proof is for")
		}
		p.dpop, p.proof = true, strings.TrimSpace(vf.dpop)
	}
	if vf.cert != "" {
		cert, err := readCertificate(vf.cert)
		if err != nil {
			return nil, err
		}
		p.cert = cert
	}
	return p, nil
}

// readCertificate reads the first CERTIFICATE block of a PEM file.
func readCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --cert: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("--cert %s: no PEM CERTIFICATE block", path)
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("--cert %s: %w", path, err)
			}
			return cert, nil
		}
	}
}

// configFrom turns the flags into the handler's Config, so validation and
// defaults are exactly the handler's.
func (vf *verifyFlags) configFrom(fs *goflag.FlagSet) (*Config, error) {
	if vf.config != "" {
		var others []string
		fs.Visit(func(f *goflag.Flag) {
			if f.Name != "config" && !presentationFlags[f.Name] {
				others = append(others, "--"+f.Name)
			}
		})
		if len(others) > 0 {
			return nil, fmt.Errorf("--config takes every setting from the Caddyfile; drop %s", strings.Join(others, " "))
		}
		return configFromCaddyfile(vf.config)
	}
	if vf.issuer == "" {
		return nil, errors.New("--issuer (or --config) is required")
	}
	leeway := caddy.Duration(vf.leeway)
	cfg := &Config{
		Issuers:  []IssuerConfig{{Issuer: vf.issuer, JWKSURL: vf.jwksURL, JWKSFile: vf.jwksFile}},
		Audience: vf.audience,
		Leeway:   &leeway,
	}
	return cfg, cfg.validate()
}

// configFromCaddyfile adapts a Caddyfile as `caddy run` would and returns
// the settings of its only jwt_auth handler.
func configFromCaddyfile(path string) (*Config, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, errors.New("the caddyfile adapter is not compiled in")
	}
	adapted, _, err := adapter.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return nil, fmt.Errorf("adapting %s: %w", path, err)
	}
	var doc any
	if err := json.Unmarshal(adapted, &doc); err != nil {
		return nil, fmt.Errorf("reading adapted config: %w", err)
	}
	found := findJWTAuth(doc, nil)
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s has no jwt_auth handler", path)
	case 1:
	default:
		return nil, fmt.Errorf("%s has %d jwt_auth handlers; verify needs exactly one (use --issuer and friends instead)", path, len(found))
	}
	cfg := new(Config)
	if err := json.Unmarshal(found[0], cfg); err != nil {
		return nil, fmt.Errorf("reading the jwt_auth handler: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%s: jwt_auth: %w", path, err)
	}
	return cfg, nil
}

// findJWTAuth collects, anywhere in an adapted config (subroutes, handle
// blocks), each jwt_auth handler and authentication provider.
func findJWTAuth(node any, found []json.RawMessage) []json.RawMessage {
	switch n := node.(type) {
	case map[string]any:
		if n["handler"] == "jwt_auth" {
			raw, _ := json.Marshal(n)
			found = append(found, raw)
		}
		for _, v := range n {
			found = findJWTAuth(v, found)
		}
		if providers, ok := n["providers"].(map[string]any); ok && n["handler"] == "authentication" {
			if p, ok := providers["jwt_auth"]; ok {
				raw, _ := json.Marshal(p)
				found = append(found, raw)
			}
		}
	case []any:
		for _, v := range n {
			found = findJWTAuth(v, found)
		}
	}
	return found
}

// runVerify is `caddy jwt verify`.
func runVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := goflag.NewFlagSet("caddy jwt verify", goflag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf verifyFlags
	vf.register(fs)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return flagErrorCode(err)
	}
	tok, err := readToken(positional, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "caddy jwt verify:", err)
		return exitUsage
	}
	cfg, err := vf.configFrom(fs)
	if err != nil {
		fmt.Fprintln(stderr, "caddy jwt verify:", err)
		return exitUsage
	}
	pres, err := vf.presentation(tok)
	if err != nil {
		fmt.Fprintln(stderr, "caddy jwt verify:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*durationOr(cfg.FetchTimeout, defaultFetchTimeout))
	defer cancel()
	logger := newCLILogger(stderr)
	v, err := newVerifier(cfg, func(ic IssuerConfig) (keySource, error) {
		set, from, err := loadKeysOnce(ctx, cfg.sourceConfigFor(ic), logger)
		if err != nil {
			// Not fatal: the verifier answers keys_unavailable, as the
			// handler would while it has no set.
			fmt.Fprintf(stdout, "keys for %q: could not load from %s: %v\n", ic.Issuer, from, err)
		} else {
			fmt.Fprintf(stdout, "keys for %q: %d from %s\n", ic.Issuer, len(set.Keys), from)
		}
		return staticKeys{set}, nil
	}, verifierHooks{})
	if err != nil {
		fmt.Fprintln(stderr, "caddy jwt verify:", err)
		return exitUsage
	}
	if cfg.Resource != nil {
		fmt.Fprintf(stdout, "resource %q, metadata at %s\n", cfg.Resource.Resource, cfg.Resource.metadataURL())
	}
	tr := new(trace)
	if err := checkSize(tok, cfg.maxTokenSize(), tr); err != nil {
		return report(stdout, tr, err)
	}
	_, err = v.verifyPresented(ctx, tok, pres, tr)
	return report(stdout, tr, err)
}

// checkSize runs the handler's own extraction on the token as a Bearer
// credential, for its max_token_size rule (too_large comes before decoding).
func checkSize(tok string, maxSize int, tr *trace) error {
	r := &http.Request{Header: http.Header{"Authorization": {"Bearer " + tok}}, URL: &url.URL{}}
	if _, err := extractToken(r, defaultSources, maxSize); err != nil {
		return tr.fail("size", err)
	}
	tr.pass("size", "%d bytes, max_token_size %d", len(tok), maxSize)
	return nil
}

// newCLILogger shows the key loader's warnings (skipped keys, failed
// fetches) on stderr, without timestamps.
func newCLILogger(w io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey, enc.CallerKey = "", ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zap.WarnLevel))
}

// staticKeys is a keySource over a set loaded once: the CLI has no
// background loader, so an unknown kid is final.
type staticKeys struct{ set *keySet }

func (s staticKeys) keySet() *keySet                              { return s.set }
func (s staticKeys) KeysWanted()                                  {}
func (s staticKeys) RefreshForUnknownKid(context.Context) *keySet { return s.set }
func (s staticKeys) RetryAfter() time.Duration                    { return 0 }

// loadKeysOnce reads a key source one time with the handler's own source
// code, without its background loader and without storage (the CLI never
// persists). It returns the set and where it came from.
func loadKeysOnce(ctx context.Context, sc sourceConfig, logger *zap.Logger) (*keySet, string, error) {
	src := newKeySource(sc, &sourceUser{logger: logger, tuning: sc.sourceTuning})
	defer src.Destruct()
	err := src.loadOnce(ctx)
	return src.keySet(), src.status(time.Now()).URL, err
}

// report prints the trace, one pass/FAIL line per step the verifier ran,
// then the verdict, and returns the exit code.
func report(w io.Writer, tr *trace, err error) int {
	for _, step := range tr.steps {
		status := "pass"
		if !step.OK {
			status = "FAIL"
		}
		fmt.Fprintf(w, "  %-4s  %-13s %s\n", status, step.Name, step.Detail)
	}
	if err == nil {
		fmt.Fprintln(w, "accepted")
		return exitOK
	}
	reason := ReasonOf(err)
	if reason == "" {
		reason = ReasonMalformed
	}
	fmt.Fprintf(w, "rejected: %s (HTTP %d)\n", reason, statusOf(reason))
	return exitRejected
}

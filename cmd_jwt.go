package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
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
		Usage: "decode <token|-> | verify (--issuer <iss> [--jwks-url <url>|--jwks-file <file>] [--audience <aud>] [--leeway <d>] | --config <Caddyfile>) <token|->",
		Short: "Decodes a JWT, or verifies it exactly as jwt_auth would",
		Long: `
Troubleshooting for the jwt_auth handler.

"decode" prints a token's header and claims with its times in UTC and
relative to now. Nothing is verified: the output is labelled UNVERIFIED.

"verify" runs the handler's own verifier and prints each step (decode,
issuer, alg policy, key lookup, signature, each claim check with its clock
arithmetic) as pass or fail, ending with the reason code that jwt_auth would
answer with. Settings come from flags, or with --config from the only
jwt_auth handler of a Caddyfile. Without --jwks-url or --jwks-file the keys
are found through OpenID Connect discovery from the issuer.

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
	if scheme, rest, ok := strings.Cut(tok, " "); ok && strings.EqualFold(scheme, "Bearer") {
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

// relativeTime words a claim's time against now: "expires in 4m",
// "expired 1h ago", "issued 2h ago", "valid since 3m", "not valid for 5m".
func relativeTime(claim string, at, now time.Time) string {
	d := at.Sub(now)
	future := d > 0
	span := humanDuration(d.Abs())
	switch {
	case claim == "exp" && future:
		return "expires in " + span
	case claim == "exp":
		return "expired " + span + " ago"
	case claim == "nbf" && future:
		return "not valid for another " + span
	case claim == "nbf":
		return "valid since " + span + " ago"
	case future:
		return "issued " + span + " in the future"
	default:
		return "issued " + span + " ago"
	}
}

// humanDuration rounds d to its two largest units: 45s, 4m, 1h5m, 3d2h.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// verifyFlags are the settings of `caddy jwt verify`.
type verifyFlags struct {
	issuer, jwksURL, jwksFile, config string
	audience                          stringList
	leeway                            time.Duration
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
}

// configFrom turns the flags into the handler's Config, so validation and
// defaults are exactly the handler's.
func (vf *verifyFlags) configFrom(fs *goflag.FlagSet) (*Config, error) {
	if vf.config != "" {
		var others []string
		fs.Visit(func(f *goflag.Flag) {
			if f.Name != "config" {
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
	cfg := &Config{
		Issuers:  []IssuerConfig{{Issuer: vf.issuer, JWKSURL: vf.jwksURL, JWKSFile: vf.jwksFile}},
		Audience: vf.audience,
		Leeway:   caddy.Duration(vf.leeway),
	}
	if vf.leeway == 0 {
		cfg.Leeway = caddy.Duration(time.Nanosecond) // 0 in Config means the default; the user asked for none
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*durationOr(cfg.FetchTimeout, defaultFetchTimeout))
	defer cancel()
	now := time.Now()
	v, notes := cliVerifier(ctx, cfg, newCLILogger(stderr), now)
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	return explainVerify(ctx, stdout, v, cfg, tok, now)
}

// newCLILogger shows the key loader's warnings (skipped keys, failed
// fetches) on stderr, without timestamps.
func newCLILogger(w io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey, enc.CallerKey = "", ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zap.WarnLevel))
}

// staticKeys is a KeySource over a set loaded once: the CLI has no
// background refresh, so an unknown kid is final.
type staticKeys struct{ set *KeySet }

func (s staticKeys) KeySet() *KeySet                                      { return s.set }
func (s staticKeys) RefreshForUnknownKey(context.Context, string) *KeySet { return s.set }
func (s staticKeys) RetryAfter() time.Duration                            { return 0 }

// cliVerifier builds the same Verifier as the handler (newAuthenticator),
// over keys loaded once by the fetcher's own code (same URL rules, caps,
// discovery and parsing) instead of a background loop. It returns a note
// per issuer saying where its keys came from.
func cliVerifier(ctx context.Context, cfg *Config, logger *zap.Logger, now time.Time) (*Verifier, []string) {
	var notes []string
	policies := make([]*IssuerPolicy, 0, len(cfg.Issuers))
	for _, ic := range cfg.Issuers {
		set, from, err := loadKeysOnce(ctx, cfg.sourceConfigFor(ic), logger)
		if err != nil {
			notes = append(notes, fmt.Sprintf("keys for %q: could not load from %s: %v", ic.Issuer, from, err))
		} else {
			notes = append(notes, fmt.Sprintf("keys for %q: %d from %s", ic.Issuer, len(set.Keys), from))
		}
		aud, algs, types := cfg.effective(ic)
		policies = append(policies, &IssuerPolicy{Issuer: ic.Issuer, Algorithms: algs, Audience: aud, TokenTypes: types, Keys: staticKeys{set}})
	}
	return NewVerifier(policies, VerifierOptions{
		Leeway:      durationOr(cfg.Leeway, defaultLeeway),
		MaxLifetime: time.Duration(cfg.MaxLifetime),
		Require:     cfg.Require,
		Now:         func() time.Time { return now },
	}), notes
}

// loadKeysOnce reads a key source one time with a fetcher that never starts
// its loop. It returns the set and where it came from.
func loadKeysOnce(ctx context.Context, sc sourceConfig, logger *zap.Logger) (*KeySet, string, error) {
	f := newFetcher(sc, logger, nil) // no storage: the CLI never persists
	defer f.cancel()
	if sc.JWKSFile != "" {
		err := f.readFile()
		return f.KeySet(), sc.JWKSFile, err
	}
	ctx, cancel := context.WithTimeout(ctx, sc.FetchTimeout)
	defer cancel()
	_, err := f.fetch(ctx)
	f.mu.Lock()
	from := f.jwksURL // the discovered jwks_uri, once known
	f.mu.Unlock()
	if from == "" {
		from = sc.sourceURL()
	}
	return f.KeySet(), redactURL(from), err
}

// stepWriter prints one pass/fail line per verification step.
type stepWriter struct{ w io.Writer }

func (s stepWriter) line(status, step, format string, args ...any) {
	fmt.Fprintf(s.w, "  %-4s  %-13s %s\n", status, step, fmt.Sprintf(format, args...))
}

// explainVerify runs the verifier's exported steps in the order Verify runs
// them, printing each, and returns the exit code.
func explainVerify(ctx context.Context, w io.Writer, v *Verifier, cfg *Config, token string, now time.Time) int {
	out := stepWriter{w}
	fmt.Fprintf(w, "verifying at %s (leeway %s)\n", utc(now), v.leeway)
	if len(token) > cfg.maxTokenSize() {
		err := reject(ReasonTooLarge, "%d bytes is over max_token_size %d", len(token), cfg.maxTokenSize())
		out.line("FAIL", "size", "%s", detailOf(err))
		return finish(w, err)
	}
	out.line("pass", "size", "%d bytes ≤ max_token_size %d", len(token), cfg.maxTokenSize())
	t, rej := decodeToken(token)
	if rej != nil {
		out.line("FAIL", "decode", "%s", detailOf(rej))
		return finish(w, rej)
	}
	out.line("pass", "decode", "alg %s, kid %.128q, typ %.64q, iss %.128q", t.Alg, t.Kid, t.Typ, t.Issuer)
	issuer, key, err := v.SelectKey(ctx, t)
	explainSelectKey(out, v, t, issuer, key, err)
	if err != nil {
		return finish(w, err)
	}
	if !jose.Verify(t.Alg, key.Public, t.SigningInput(), t.Signature()) {
		err := reject(ReasonBadSignature, "signature does not verify with key %.64q", key.ID)
		out.line("FAIL", "signature", "%s", detailOf(err))
		return finish(w, err)
	}
	out.line("pass", "signature", "%s signature verifies with key %.128q", t.Alg, key.ID)
	_, err = v.CheckClaims(t, issuer)
	explainClaims(out, v, t, issuer, err, now)
	return finish(w, err)
}

// explainSelectKey splits SelectKey's one result into its three checks:
// its rejection's reason says which of them failed.
func explainSelectKey(out stepWriter, v *Verifier, t *jose.JWS, issuer *IssuerPolicy, key *jose.Key, err error) {
	reason := ReasonOf(err)
	if reason == ReasonWrongIssuer {
		out.line("FAIL", "issuer", "iss %.128q is not one of %q", t.Issuer, issuerNames(v))
		return
	}
	out.line("pass", "issuer", "iss %.128q is configured", t.Issuer)
	if reason == ReasonForbiddenAlg {
		out.line("FAIL", "alg-policy", "%s is not in %v", t.Alg, issuer.Algorithms)
		return
	}
	out.line("pass", "alg-policy", "%s is in %v", t.Alg, issuer.Algorithms)
	set := issuer.Keys.KeySet()
	switch {
	case reason == ReasonKeysUnavailable:
		out.line("FAIL", "key-lookup", "no usable key set for this issuer")
	case err != nil:
		out.line("FAIL", "key-lookup", "no %s key with kid %.128q; the set has kids %q", t.Alg, t.Kid, set.Kids())
	default:
		out.line("pass", "key-lookup", "kid %.128q found among %q", key.ID, set.Kids())
	}
}

func issuerNames(v *Verifier) []string {
	var names []string
	for _, p := range v.Issuers() {
		names = append(names, p.Issuer)
	}
	return names
}

// claimSteps are the checks of CheckClaims, in its order.
var claimSteps = []string{"exp", "nbf", "iat", "max_lifetime", "aud", "typ", "cnf", "require"}

// failedClaimStep names the claim check a CheckClaims rejection came from.
func failedClaimStep(err error) string {
	if err == nil {
		return ""
	}
	rej, _ := err.(*Rejection)
	detail := ""
	if rej != nil {
		detail = rej.Detail
	}
	switch ReasonOf(err) {
	case ReasonExpired:
		return "exp"
	case ReasonNotYetValid:
		if strings.HasPrefix(detail, "nbf") {
			return "nbf"
		}
		return "iat"
	case ReasonTooOld:
		return "max_lifetime"
	case ReasonWrongAudience:
		return "aud"
	case ReasonWrongType:
		return "typ"
	case ReasonBoundToken:
		return "cnf"
	case ReasonClaimMismatch:
		return "require"
	}
	for _, name := range []string{"nbf", "iat", "aud"} { // malformed
		if strings.HasPrefix(detail, name) {
			return name
		}
	}
	return "exp"
}

// explainClaims prints each claim check of CheckClaims with the values and
// clock arithmetic behind it. The verdicts are CheckClaims' own: checks
// before the failing one passed, the ones after it were not reached.
func explainClaims(out stepWriter, v *Verifier, t *jose.JWS, issuer *IssuerPolicy, err error, now time.Time) {
	failed := failedClaimStep(err)
	reached := true
	// A malformed date fails while all dates are read, before any check.
	timesOnly := ReasonOf(err) == ReasonMalformed && failed != "aud"
	for _, step := range claimSteps {
		switch {
		case step == failed && !timesOnly && isTimeStep(step):
			out.line("FAIL", step, "%s", describeTimeCheck(step, false, v, t, now))
			reached = false
		case step == failed:
			out.line("FAIL", step, "%s", detailOf(err))
			reached = false
		case !reached || (timesOnly && isTimeStep(step)):
			out.line("skip", step, "not reached")
		default:
			out.line("pass", step, "%s", describeClaimCheck(step, v, t, issuer, now))
		}
	}
}

// describeClaimCheck words a passed claim check for the step listing.
func describeClaimCheck(step string, v *Verifier, t *jose.JWS, issuer *IssuerPolicy, now time.Time) string {
	dates, _ := readTimes(t.Claims) // CheckClaims got past this step, so they parsed
	switch step {
	case "exp", "nbf", "iat":
		return describeTimeCheck(step, true, v, t, now)
	case "max_lifetime":
		if v.maxLifetime <= 0 {
			return "no max_lifetime configured"
		}
		start, from := now, "now"
		if dates.hasIat {
			start, from = dates.iat, "iat"
		}
		return fmt.Sprintf("exp − %s = %s ≤ %s", from, dates.exp.Sub(start), v.maxLifetime)
	case "aud":
		if len(issuer.Audience) == 0 {
			return "no audience configured: any aud is accepted"
		}
		return fmt.Sprintf("aud %s contains one of %q", indentCompact(t.Claims["aud"]), issuer.Audience)
	case "typ":
		if len(issuer.TokenTypes) == 0 {
			return "no token_type configured: any typ is accepted"
		}
		return fmt.Sprintf("typ %.64q is one of %q", t.Typ, issuer.TokenTypes)
	case "cnf":
		return "no cnf claim: the token is not bound to a key"
	default:
		if len(v.require) == 0 {
			return "no require rules"
		}
		return fmt.Sprintf("%d require rule(s) satisfied", len(v.require))
	}
}

func isTimeStep(step string) bool { return step == "exp" || step == "nbf" || step == "iat" }

// describeTimeCheck shows the clock arithmetic of an exp, nbf or iat check:
// exp must be after now − leeway; nbf and iat must not be after now + leeway.
func describeTimeCheck(step string, ok bool, v *Verifier, t *jose.JWS, now time.Time) string {
	at, present, err := numericDate(t.Claims, step)
	switch {
	case err != nil:
		return detailOf(err)
	case !present && step == "exp":
		return "exp is required"
	case !present:
		return "absent"
	}
	// exp passes when after now − leeway; nbf and iat when not after now + leeway.
	verb, bound := "is after", "now − leeway = "+utc(now.Add(-v.leeway))
	if step != "exp" {
		bound = "now + leeway = " + utc(now.Add(v.leeway))
	}
	if (step == "exp") != ok {
		verb = "is not after"
	}
	return fmt.Sprintf("%s %s (%s) %s %s", step, utc(at), relativeTime(step, at, now), verb, bound)
}

func indentCompact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

func detailOf(err error) string {
	if rej, ok := err.(*Rejection); ok && rej.Detail != "" {
		return rej.Detail
	}
	return err.Error()
}

// finish prints the verdict line and returns the exit code.
func finish(w io.Writer, err error) int {
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

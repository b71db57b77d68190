package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func TestReasonsIsACopyOfTheClosedList(t *testing.T) {
	got := Reasons()
	if len(got) == 0 || got[0] != ReasonMissing || got[len(got)-1] != ReasonKeysUnavailable {
		t.Fatalf("Reasons() = %v", got)
	}
	seen := map[Reason]bool{}
	for _, r := range got {
		if seen[r] {
			t.Fatalf("%s listed twice", r)
		}
		seen[r] = true
	}
	got[0] = "tampered"
	if Reasons()[0] != ReasonMissing {
		t.Fatal("Reasons() hands out the package's own list")
	}
}

func TestAsRejectionIsTheOneMatcher(t *testing.T) {
	rej := &Rejection{Reason: ReasonExpired, Detail: "exp", Issuer: "iss"}
	for _, c := range []struct {
		name   string
		err    error
		reason Reason
		ok     bool
	}{
		{"rejection", rej, ReasonExpired, true},
		{"wrapped rejection", fmt.Errorf("verify: %w", rej), ReasonExpired, true},
		{"bare reason", ReasonTooLarge, ReasonTooLarge, true},
		{"wrapped reason", fmt.Errorf("x: %w", ReasonKeysUnavailable), ReasonKeysUnavailable, true},
		{"other error", errors.New("boom"), "", false},
		{"nil", nil, "", false},
	} {
		got, ok := asRejection(c.err)
		if ok != c.ok || (ok && got.Reason != c.reason) || ReasonOf(c.err) != c.reason {
			t.Errorf("%s: asRejection = %v, %v; ReasonOf = %q; want %q", c.name, got, ok, ReasonOf(c.err), c.reason)
		}
	}
	if got, _ := asRejection(fmt.Errorf("w: %w", rej)); got != rej {
		t.Error("a wrapped rejection must come back as itself, with its issuer and detail")
	}
	if got := rejectionOf(errors.New("boom")); got.Reason != ReasonMalformed {
		t.Errorf("an error without a reason is answered as %s, want malformed", got.Reason)
	}
}

// TestRenderBothForms: one renderer for the handler and the provider; the
// provider differs only in answering 401, with a plain challenge where the
// handler's answer has none.
func TestRenderBothForms(t *testing.T) {
	a := &authenticator{cfg: &Config{}, logger: zap.NewNop(), sources: map[string]keySource{}}
	const realm = `Bearer realm="api.example"`
	invalidToken := func(r Reason) string {
		return realm + `, error="invalid_token", error_description="` + string(r) + `"`
	}
	cases := []struct {
		rej        *Rejection
		status     int // handler form; the provider form is always 401
		challenge  string
		provider   string // the provider's challenge when it differs
		retryAfter string
	}{
		{rej: &Rejection{Reason: ReasonMissing}, status: 401, challenge: realm},
		{rej: &Rejection{Reason: ReasonMultipleCredentials}, status: 400, challenge: realm + `, error="invalid_request", error_description="multiple_credentials"`},
		{rej: &Rejection{Reason: ReasonTooLarge}, status: 400, challenge: realm + `, error="invalid_request", error_description="too_large"`},
		{rej: &Rejection{Reason: ReasonExpired, Detail: "secret detail"}, status: 401, challenge: invalidToken(ReasonExpired)},
		{rej: &Rejection{Reason: ReasonBadSignature}, status: 401, challenge: invalidToken(ReasonBadSignature)},
		{rej: &Rejection{Reason: ReasonClaimMismatch}, status: 403, challenge: realm + `, error="insufficient_scope", error_description="claim_mismatch"`},
		{rej: &Rejection{Reason: ReasonClaimMismatch, Scope: `read "all"`}, status: 403,
			challenge: realm + `, error="insufficient_scope", error_description="claim_mismatch", scope="read \"all\""`},
		{rej: &Rejection{Reason: ReasonKeysUnavailable}, status: 503, challenge: "", provider: realm, retryAfter: "30"},
	}
	for _, c := range cases {
		for _, form := range []answerForm{handlerForm, providerForm} {
			status, challenge := c.status, c.challenge
			if form == providerForm {
				status = 401
				if c.provider != "" {
					challenge = c.provider
				}
			}
			name := fmt.Sprintf("%s/form%d", c.rej.Reason, form)
			r := httptest.NewRequest(http.MethodGet, "http://api.example:8443/x", nil)
			w := httptest.NewRecorder()
			v := verdict{result: resultOf(c.rej.Reason), rej: c.rej}
			err := a.refuse(w, r, v, form)
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != status || !errors.Is(he.Err, c.rej.Reason) || he.Err.Error() != string(c.rej.Reason) {
				t.Errorf("%s: error %#v, want status %d with the bare reason", name, err, status)
			}
			if got := w.Header().Values("WWW-Authenticate"); (challenge == "" && len(got) != 0) || (challenge != "" && !slices.Equal(got, []string{challenge})) {
				t.Errorf("%s: WWW-Authenticate %q, want %q", name, got, challenge)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("%s: Retry-After %q, want %q", name, got, c.retryAfter)
			}
		}
	}
}

func TestChallengeRendering(t *testing.T) {
	c := bearerChallenge("a\"b\\c\x01d")
	extended := c.with("error", "invalid_token")
	if got, want := c.String(), `Bearer realm="a\"b\\cd"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := extended.String(), `Bearer realm="a\"b\\cd", error="invalid_token"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if again := c.with("x", "y"); again.String() != `Bearer realm="a\"b\\cd", x="y"` || extended.String() != `Bearer realm="a\"b\\cd", error="invalid_token"` {
		t.Error("with must not share its params with another challenge")
	}
}

// requestWithReplacer is a request as Caddy's server prepares it: with a
// replacer and a vars map in its context.
func requestWithReplacer() (*http.Request, *caddy.Replacer) {
	repl := caddy.NewReplacer()
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	return httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx), repl
}

// TestRequestIdentityIsSharedAndTotal: every user key is answered ("" when
// anonymous or absent), and two handlers on one request share one provider,
// so an anonymous pass before a verified token cannot hide its claims.
func TestRequestIdentityIsSharedAndTotal(t *testing.T) {
	r, repl := requestWithReplacer()
	first := requestIdentity(r)
	for _, key := range []string{"http.auth.user.id", "http.auth.user.email", "http.auth.user.a.b"} {
		if v, ok := repl.Get(key); !ok || v != "" {
			t.Fatalf("anonymous %s = %v, %v; want \"\", true", key, v, ok)
		}
	}
	if _, ok := repl.Get("http.auth.other"); ok {
		t.Fatal("a key outside the user namespace must stay unknown")
	}
	second := requestIdentity(r)
	if second != first {
		t.Fatal("a second handler on the request installed another identity")
	}
	second.set(&verifiedToken{userID: "alice", claims: map[string]any{"id": "evil", "org": map[string]any{"name": "acme"}}})
	for key, want := range map[string]string{"http.auth.user.id": "alice", "http.auth.user.org.name": "acme", "http.auth.user.org.x": ""} {
		if v, _ := repl.GetString(key); v != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	}
	if v, _ := repl.GetString("http.vars." + identityVar); v != "" {
		t.Errorf("the identity leaks through vars as %q", v)
	}
}

package jwtauth

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
)

func init() {
	caddy.RegisterModule(Provider{})
}

// Interface guards.
var (
	_ caddy.Provisioner       = (*Provider)(nil)
	_ caddy.Validator         = (*Provider)(nil)
	_ caddy.CleanerUpper      = (*Provider)(nil)
	_ caddyauth.Authenticator = (*Provider)(nil)
)

// Provider is jwt_auth as a provider of Caddy's authentication handler
// (http.authentication.providers.jwt_auth), so a JWT can be one accepted
// credential beside others such as http_basic. It takes the same JSON fields
// as Handler and verifies identically, but every rejection becomes Caddy's
// 401 (with this module's WWW-Authenticate challenge), because the
// authentication handler knows no other answer. optional and require are
// config errors here: the handler cannot pass an anonymous request, and it
// cannot answer 403; report_only too, because it cannot let a request it
// rejects go on. JSON only; the Caddyfile form is the jwt_auth directive.
type Provider struct {
	Config

	auth *authenticator
}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.jwt_auth",
		New: func() caddy.Module { return new(Provider) },
	}
}

// Provision rejects the options the provider form cannot honour, then
// checks the configuration and acquires the key sources like the handler.
// Nothing is acquired when the configuration is refused.
func (p *Provider) Provision(ctx caddy.Context) error {
	if err := p.validateProviderOptions(); err != nil {
		return fmt.Errorf("jwt_auth provider: %w", err)
	}
	auth, err := newAuthenticator(ctx, &p.Config)
	if err != nil {
		return err
	}
	p.auth = auth
	warnLoggedSources(p.auth.logger, p.Sources)
	return nil
}

// validateProviderOptions refuses what Caddy's authentication handler cannot
// express: it has no anonymous pass and only ever answers 401.
func (p *Provider) validateProviderOptions() error {
	if p.ReportOnly {
		return errors.New("report_only is not supported in the authentication provider: it cannot pass a request it rejects (use the jwt_auth handler)")
	}
	if p.Optional {
		return errors.New("optional is not supported in the authentication provider (use the jwt_auth handler)")
	}
	if len(p.Require) > 0 {
		return errors.New("require is not supported in the authentication provider: it cannot answer 403 (use the jwt_auth handler)")
	}
	if p.Resource != nil {
		return errors.New("resource is not supported in the authentication provider: it cannot serve the resource metadata (use the jwt_auth handler)")
	}
	return nil
}

// Validate is satisfied once Provision has built the authenticator.
func (p *Provider) Validate() error {
	if p.auth == nil {
		return errors.New("jwt_auth provider: not provisioned")
	}
	return nil
}

// Cleanup releases the key sources Provision acquired, exactly once.
func (p *Provider) Cleanup() error {
	if p.auth == nil {
		return nil
	}
	auth := p.auth
	p.auth = nil
	return auth.release()
}

// Authenticate implements caddyauth.Authenticator. A valid token yields the
// user (id from user_claim; Metadata holds every top-level claim, rendered
// like placeholders), with claim headers set and, with strip_token, the
// credential removed. Any rejection sets the challenge and returns
// (User{}, false, nil): a rejected credential is not a technical failure,
// and the authentication handler answers 401.
func (p *Provider) Authenticate(w http.ResponseWriter, r *http.Request) (caddyauth.User, bool, error) {
	v := p.auth.decide(r)
	p.auth.setNonce(w, v)
	if !v.passes() {
		// The error is the handler's answer; here Caddy answers 401.
		_ = p.auth.refuse(w, r, v, providerForm)
		return caddyauth.User{}, false, nil
	}
	p.auth.pass(r, v)
	if v.res == nil {
		return caddyauth.User{}, true, nil // a preflight: no user
	}
	return p.userOf(v.res), true, nil
}

// userOf is the caddyauth.User of a verified token. Metadata holds the
// top-level claims (Caddy sets each as {http.auth.user.<name>}); nested
// values come through the handler's lazy provider (requestIdentity) as
// {http.auth.user.<dotted.path>}, and an absent claim is "". A claim named
// "id" is left out so it can never replace the user id.
func (p *Provider) userOf(res *verifiedToken) caddyauth.User {
	claims := res.Claims()
	user := caddyauth.User{Metadata: make(map[string]string, len(claims))}
	if v, ok := lookupClaim(claims, p.userClaim()); ok {
		user.ID = renderClaim(v)
	}
	for name, v := range claims {
		if name != "id" {
			user.Metadata[name] = renderClaim(v)
		}
	}
	return user
}

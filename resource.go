package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// wellKnownPrefix is the well-known URI suffix of RFC 9728 §3.
const wellKnownPrefix = "/.well-known/oauth-protected-resource"

// ResourceConfig makes the handler an OAuth 2.0 protected resource (RFC
// 9728): it publishes the resource's metadata, points every challenge to it
// and, unless an audience is configured, accepts only tokens whose aud is the
// resource (RFC 8707). This is what an MCP server's authorization needs.
type ResourceConfig struct {
	// Resource is the protected resource identifier (RFC 9728 §1.2), e.g.
	// https://mcp.example.com/mcp: an absolute https URL (http only for a
	// loopback host) with no query and no fragment. Required. It is
	// published exactly as written and, unless an audience is configured,
	// is the audience every token must carry.
	Resource string `json:"resource"`
	// ScopesSupported is the document's scopes_supported. Default: the
	// values of the require rules on scope or scp; none: the member is
	// absent.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResourceName is a human-readable name of the resource. Default: absent.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is the URL of developer documentation for the
	// resource, an absolute http(s) URL. Default: absent.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// ResourcePolicyURI is the URL of the resource's data-use policy, an
	// absolute http(s) URL. Default: absent.
	ResourcePolicyURI string `json:"resource_policy_uri,omitempty"`
	// ResourceTOSURI is the URL of the resource's terms of service, an
	// absolute http(s) URL. Default: absent.
	ResourceTOSURI string `json:"resource_tos_uri,omitempty"`
}

// validate checks the resource identifier (RFC 9728 §1.2: a URL with no
// fragment; a query would make the §3.1 metadata URL ambiguous) and the
// block's URLs.
func (rc *ResourceConfig) validate() error {
	if rc.Resource == "" {
		return errors.New("resource must not be empty")
	}
	if err := checkFetchURL(rc.Resource); err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	u, _ := url.Parse(rc.Resource) // parsed by checkFetchURL
	if strings.ContainsAny(rc.Resource, "?#") {
		return fmt.Errorf("resource %q must have no query and no fragment", redactURL(rc.Resource))
	}
	if u.User != nil {
		return fmt.Errorf("resource %q must have no userinfo", redactURL(rc.Resource))
	}
	for _, f := range []struct{ name, value string }{
		{"resource_documentation", rc.ResourceDocumentation},
		{"resource_policy_uri", rc.ResourcePolicyURI},
		{"resource_tos_uri", rc.ResourceTOSURI},
	} {
		if f.value == "" {
			continue
		}
		if err := checkWebURL(f.value); err != nil {
			return fmt.Errorf("resource %s: %w", f.name, err)
		}
	}
	for _, s := range rc.ScopesSupported {
		if !isScopeToken(s) {
			return fmt.Errorf("resource scopes_supported: %q is not a scope token (RFC 6749 §3.3)", s)
		}
	}
	return nil
}

// isScopeToken reports an RFC 6749 §3.3 scope-token: printable ASCII
// without space, '"' or '\', so a list of them joins with spaces and
// quotes safely.
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkWebURL accepts an absolute http or https URL with a host. These
// URLs are only published for people to read, never fetched, so http is
// allowed for any host.
func checkWebURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", redactURL(raw))
	}
	return nil
}

// metadataURL is the RFC 9728 §3.1 URL of the resource's metadata: the
// well-known suffix goes between the host and the path, and a path of "/"
// (or none) adds nothing after it. rc must be valid.
func (rc *ResourceConfig) metadataURL() *url.URL {
	u, _ := url.Parse(rc.Resource)
	path := u.Path
	if path == "/" {
		path = ""
	}
	m := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: wellKnownPrefix + path}
	if u.RawPath != "" {
		m.RawPath = wellKnownPrefix + u.RawPath
	}
	return m
}

// resourceInputs is what the document says about the rest of the
// configuration. It is built once, at Provision.
type resourceInputs struct {
	// Issuers are the configured issuers, in order.
	Issuers []string
	// Sources are the effective token sources (the default when none is
	// configured).
	Sources []TokenSource
	// Require are the claim rules; those on scope or scp name the scopes.
	Require []ClaimRule
	// DPoPAlgorithms are the accepted DPoP proof algorithms; nil when DPoP
	// is off.
	DPoPAlgorithms []string
	// DPoPRequired is true when only DPoP-bound tokens pass.
	DPoPRequired bool
	// MTLS is true when certificate-bound tokens are accepted (mtls
	// allowed or required).
	MTLS bool
}

// resourceDocument is the RFC 9728 §2 document, members in the order of
// that section. Nothing else is ever published.
type resourceDocument struct {
	Resource              string   `json:"resource"`
	AuthorizationServers  []string `json:"authorization_servers"`
	BearerMethods         []string `json:"bearer_methods_supported"`
	ScopesSupported       []string `json:"scopes_supported,omitempty"`
	ResourceName          string   `json:"resource_name,omitempty"`
	ResourceDocumentation string   `json:"resource_documentation,omitempty"`
	ResourcePolicyURI     string   `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI        string   `json:"resource_tos_uri,omitempty"`
	DPoPAlgorithms        []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPRequired          bool     `json:"dpop_bound_access_tokens_required,omitempty"`
	TLSCertificateBound   bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// protectedResource is a provisioned ResourceConfig: the document encoded
// once, and the challenge attributes that point to it.
type protectedResource struct {
	path        string // the well-known path the document is served at
	metadataURL string
	document    []byte
	length      string // len(document), for Content-Length
	// scope is the values of the require rules on scope or scp, for the
	// scope attribute of 401 challenges; "" when there are none.
	scope string
}

// newProtectedResource validates rc and prepares its document.
func newProtectedResource(rc *ResourceConfig, in resourceInputs) (*protectedResource, error) {
	if err := rc.validate(); err != nil {
		return nil, err
	}
	required := requiredScopes(in.Require)
	doc := resourceDocument{
		Resource:              rc.Resource,
		AuthorizationServers:  in.Issuers,
		BearerMethods:         bearerMethods(in.Sources),
		ScopesSupported:       rc.ScopesSupported,
		ResourceName:          rc.ResourceName,
		ResourceDocumentation: rc.ResourceDocumentation,
		ResourcePolicyURI:     rc.ResourcePolicyURI,
		ResourceTOSURI:        rc.ResourceTOSURI,
		DPoPAlgorithms:        in.DPoPAlgorithms,
		DPoPRequired:          in.DPoPAlgorithms != nil && in.DPoPRequired,
		TLSCertificateBound:   in.MTLS,
	}
	if len(doc.ScopesSupported) == 0 {
		doc.ScopesSupported = required
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // URLs with & stay readable; still valid JSON
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("resource metadata: %w", err)
	}
	m := rc.metadataURL()
	return &protectedResource{
		path:        m.Path,
		metadataURL: m.String(),
		document:    buf.Bytes(),
		length:      strconv.Itoa(buf.Len()),
		scope:       strings.Join(required, " "),
	}, nil
}

// bearerMethods names the RFC 6750 methods among the sources (RFC 9728 §2
// bearer_methods_supported): "header" for the Authorization header, "query"
// for the access_token query parameter. Cookies and other headers have no
// registered name; with none of the two the list is empty, which the RFC
// reads as "no bearer method".
func bearerMethods(sources []TokenSource) []string {
	methods := []string{}
	if slices.ContainsFunc(sources, func(s TokenSource) bool { return strings.EqualFold(s.Header, "Authorization") }) {
		methods = append(methods, "header")
	}
	if slices.ContainsFunc(sources, func(s TokenSource) bool { return s.Query == "access_token" }) {
		methods = append(methods, "query")
	}
	return methods
}

// requiredScopes lists the values of the require rules on scope or scp, in
// order, each once.
func requiredScopes(rules []ClaimRule) []string {
	var scopes []string
	for _, r := range rules {
		if !r.isScope() {
			continue
		}
		for _, v := range r.Values {
			if !slices.Contains(scopes, v) {
				scopes = append(scopes, v)
			}
		}
	}
	return scopes
}

// decorate adds the resource's auth-params to a challenge of
// the given status: resource_metadata on every one (RFC 9728 §5.1), and on
// a 401 the scopes the require rules ask for, so a client (an MCP client
// especially) knows what to request. A 403 names its failed rule's scopes
// itself.
func (p *protectedResource) decorate(c challenge, status int) challenge {
	c = c.with("resource_metadata", p.metadataURL)
	if status == http.StatusUnauthorized && p.scope != "" {
		c = c.with("scope", p.scope)
	}
	return c
}

// matches reports a request for the metadata document: its path is the
// well-known path exactly (no prefix, no trailing slash).
func (p *protectedResource) matches(r *http.Request) bool {
	return r.URL.Path == p.path
}

// allowedMethods is the Allow value of the metadata path.
const allowedMethods = "GET, HEAD, OPTIONS"

// ServeHTTP answers a request that matches: GET and HEAD get the document,
// OPTIONS (CORS preflights included: browser-based clients fetch the
// document cross-origin) gets the allowed methods, anything else 405. The
// document is public, so any origin may read it.
func (p *protectedResource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Content-Length", p.length)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(p.document)
		}
	case http.MethodOptions:
		h.Set("Allow", allowedMethods)
		h.Set("Access-Control-Allow-Origin", "*")
		if isPreflight(r) {
			h.Set("Access-Control-Allow-Methods", allowedMethods)
			// A wildcard is honoured for requests without credentials,
			// which is all this document ever gets (MCP clients send an
			// MCP-Protocol-Version header with it).
			h.Set("Access-Control-Allow-Headers", "*")
			h.Set("Access-Control-Max-Age", "3600")
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", allowedMethods)
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

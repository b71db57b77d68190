package jwttest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mode selects how the Server answers its key set URL, to simulate IdP failures.
type Mode int

// The modes. Modes other than Normal ignore SetBody, ETag and Cache-Control.
const (
	Normal    Mode = iota // serve the current JWKS, 200, application/json
	Down                  // connection refused: the listener is closed (leaving Down reopens on the same port)
	Status500             // 500 with a small body
	Garbage               // 200 with non-JSON bytes (still labelled application/json, as broken IdPs do)
	Empty                 // 200 with an empty body
	EmptySet              // 200 with {"keys":[]}
	Huge                  // 200 with a valid JSON JWKS of HugePadding+ bytes
)

// HugePadding is the length of the string member that Huge mode adds to the
// key set, so the body is always larger than 1 MiB.
const HugePadding = 1<<20 + 64<<10

// Server is a real HTTP JWKS (and OIDC discovery) endpoint with fault
// injection. It owns its net.Listener rather than using httptest.Server so
// that Down can close the port and a later mode can reopen the SAME address:
// the plugin under test is configured with a fixed URL.
type Server struct {
	t    testing.TB
	addr string // host:port, fixed for the Server's life
	// jwksPath is /jwks-<random>.json: unique per Server, so a key set a
	// module stored for an earlier Server on the same (reused) port is
	// never taken for this one's.
	jwksPath string

	mu           sync.Mutex
	cond         *sync.Cond // on mu; signalled when a generation's last handler ends
	keys         []*Key
	body         []byte // non-nil: served instead of JWKS(keys...)
	version      int    // bumped by SetKeys/SetBody so the ETag always changes
	mode         Mode
	delay        time.Duration
	cacheControl string
	etag         bool
	issuer       string // "" means URL()
	closed       bool
	gen          *generation // nil while Down or closed

	hits, notModified, discoveryHits atomic.Int64
}

// generation is one listen/serve cycle. A fresh http.Server is needed for
// each, because an http.Server cannot Serve again after Close.
type generation struct {
	srv    *http.Server
	stop   chan struct{} // closed on shutdown, wakes delayed handlers
	served chan struct{} // closed when Serve has returned
	active int           // handlers running, guarded by Server.mu
	closed bool          // guarded by Server.mu
}

// NewServer starts a server on 127.0.0.1 (random port) serving keys at
// JWKSURL() and discovery at /.well-known/openid-configuration. It is
// closed by t.Cleanup.
func NewServer(t testing.TB, keys ...*Key) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("jwttest: listen: %v", err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &Server{t: t, addr: l.Addr().String(), jwksPath: "/jwks-" + hex.EncodeToString(id[:]) + ".json", keys: keys, etag: true}
	s.cond = sync.NewCond(&s.mu)
	s.mu.Lock()
	s.serve(l)
	s.mu.Unlock()
	t.Cleanup(s.Close)
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:PORT.
func (s *Server) URL() string { return "http://" + s.addr }

// JWKSURL returns the key set's URL, unique per Server.
func (s *Server) JWKSURL() string { return s.URL() + s.jwksPath }

// SetKeys replaces the served keys (key rotation) and clears any SetBody.
func (s *Server) SetKeys(keys ...*Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys, s.body = keys, nil
	s.version++
}

// SetBody serves exactly b as the JWKS instead of one built from the keys;
// nil goes back to the keys.
func (s *Server) SetBody(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = b
	s.version++
}

// SetMode switches the failure mode. Down closes the listener and every open
// connection (so keep-alive clients also see the outage); any other mode
// after Down reopens the listener on the same address.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
	switch {
	case s.closed:
	case m == Down && s.gen != nil:
		s.shutdown()
	case m != Down && s.gen == nil:
		// The port was ours a moment ago; retry briefly in case the kernel
		// has not released it yet. Errorf, not Fatalf: SetMode may be called
		// off the test goroutine.
		var l net.Listener
		var err error
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if l, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			s.t.Errorf("jwttest: reopen %s: %v", s.addr, err)
			return
		}
		s.serve(l)
	}
}

// SetDelay makes the key set URL wait d before answering (a slow IdP). The
// handler still returns as soon as the client gives up or the server closes.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetCacheControl sets the Cache-Control value sent with the JWKS ("" = none).
func (s *Server) SetCacheControl(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheControl = v
}

// SetETag turns ETag support on (the default) or off. When on, the JWKS is
// sent with a strong ETag and a matching If-None-Match gets 304.
func (s *Server) SetETag(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etag = on
}

// SetIssuer sets the issuer in the discovery document ("" = URL()).
func (s *Server) SetIssuer(iss string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer = iss
}

// Hits returns how many requests reached the key set URL (in any mode but Down).
func (s *Server) Hits() int { return int(s.hits.Load()) }

// NotModified returns how many key set requests were answered 304.
func (s *Server) NotModified() int { return int(s.notModified.Load()) }

// DiscoveryHits returns how many requests reached the discovery document.
func (s *Server) DiscoveryHits() int { return int(s.discoveryHits.Load()) }

// Close stops the server and waits for its goroutines. It is idempotent and
// runs automatically at test cleanup.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.gen != nil {
		s.shutdown()
	}
}

// serve starts a generation on l. Call with s.mu held.
func (s *Server) serve(l net.Listener) {
	g := &generation{stop: make(chan struct{}), served: make(chan struct{})}
	g.srv = &http.Server{Handler: s.handler(g), ReadHeaderTimeout: 10 * time.Second}
	s.gen = g
	go func() {
		defer close(g.served)
		_ = g.srv.Serve(l) // always ErrServerClosed or a listener error after Close
	}()
}

// shutdown closes the current generation and waits until its Serve loop and
// handlers have returned, so tests leak no goroutines. Call with s.mu held
// (cond.Wait releases it while waiting, letting handlers finish).
func (s *Server) shutdown() {
	g := s.gen
	s.gen = nil
	g.closed = true
	close(g.stop)
	_ = g.srv.Close() // closes the listener and all connections: connection refused/reset
	<-g.served
	for g.active > 0 {
		s.cond.Wait()
	}
}

// handler serves one generation; g lets it tell whether it was shut down.
func (s *Server) handler(g *generation) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if g.closed {
			s.mu.Unlock()
			return
		}
		g.active++
		// Snapshot the state so the response is consistent even if a test
		// changes it mid-request.
		mode, delay, cc, etagOn, keys := s.mode, s.delay, s.cacheControl, s.etag, s.keys
		body := s.body
		if body == nil {
			body = JWKS(keys...)
		}
		etag := fmt.Sprintf(`"v%d-%x"`, s.version, sha256.Sum256(body))
		issuer := s.issuer
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			g.active--
			s.cond.Broadcast()
			s.mu.Unlock()
		}()

		switch r.URL.Path {
		case s.jwksPath:
		case "/.well-known/openid-configuration":
			s.discoveryHits.Add(1)
			if issuer == "" {
				issuer = s.URL()
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer":                                issuer,
				"jwks_uri":                              s.JWKSURL(),
				"authorization_endpoint":                s.URL() + "/authorize",
				"token_endpoint":                        s.URL() + "/token",
				"response_types_supported":              []string{"code"},
				"subject_types_supported":               []string{"public"},
				"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
			})
			return
		default:
			http.NotFound(w, r)
			return
		}

		s.hits.Add(1)
		if delay > 0 {
			timer := time.NewTimer(delay)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-r.Context().Done():
				return
			case <-g.stop:
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		switch mode {
		case Status500:
			http.Error(w, "jwttest: internal server error", http.StatusInternalServerError)
			return
		case Garbage:
			_, _ = w.Write([]byte("<html>this is not JSON</html>\x00\xff"))
			return
		case Empty:
			return
		case EmptySet:
			_, _ = w.Write(JWKSOf())
			return
		case Huge:
			jwks := make([]map[string]any, 0, len(keys)+1)
			for _, k := range keys {
				jwks = append(jwks, k.JWK())
			}
			jwks = append(jwks, map[string]any{
				"kty": "oct", "kid": "jwttest-padding", "k": strings.Repeat("A", HugePadding),
			})
			_, _ = w.Write(JWKSOf(jwks...))
			return
		}

		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if etagOn {
			w.Header().Set("ETag", etag)
			if etagMatch(r.Header.Get("If-None-Match"), etag) {
				s.notModified.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		_, _ = w.Write(body)
	})
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatch(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}

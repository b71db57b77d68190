package jwtauth

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Unit tests of the jwks_file source on real files. The end-to-end
// revocation through Caddy is TestLifecycleJWKSFileRevocationIgnoresMtime.

// newTestFileSource writes content to a fresh file and builds a file source
// for it, logging into an observer; the loop is not started.
func newTestFileSource(t *testing.T, content []byte) (*fileSource, string, *observer.ObservedLogs) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	s := newFileSource(sourceID{Issuer: "https://file.example/", JWKSFile: path}, &sourceUser{logger: zap.New(core)})
	t.Cleanup(func() { _ = s.Destruct() })
	return s, path, logs
}

// replaceKeepingMtime swaps path's content for content the way cp -p or
// rsync -t would: the new file carries the old modification time.
func replaceKeepingMtime(t *testing.T, path string, content []byte) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !after.ModTime().Equal(info.ModTime()) {
		t.Fatalf("mtime not restored: %v", err)
	}
}

func TestFileSourceFindsChangesByContentNotMtime(t *testing.T) {
	a, b := jwttest.NewEC(t, "ES256", "a"), jwttest.NewEC(t, "ES256", "b")
	s, path, logs := newTestFileSource(t, jwttest.JWKS(a, b))
	if err := s.read(); err != nil {
		t.Fatal(err)
	}
	loaded := s.state.Load()
	if s.keySet().Select("b", "ES256") == nil {
		t.Fatal("key b not loaded")
	}
	// Same content again: nothing is re-parsed or re-installed.
	if err := s.read(); err != nil || s.state.Load() != loaded {
		t.Fatalf("unchanged content re-installed the set (err %v)", err)
	}
	replaceKeepingMtime(t, path, jwttest.JWKS(a))
	if err := s.read(); err != nil {
		t.Fatal(err)
	}
	if s.keySet().Select("b", "ES256") != nil || s.keySet().Select("a", "ES256") == nil {
		t.Fatal("key b removed from the file (old mtime kept) is still served")
	}
	changed := logs.FilterMessage("key set changed").All()
	if len(changed) != 2 || changed[1].ContextMap()["removed"] == nil {
		t.Fatalf("want a second key-set-changed line naming the removed kid, got %d lines", len(changed))
	}
}

func TestFileSourceBadReadKeepsTheLastGoodSet(t *testing.T) {
	a := jwttest.NewEC(t, "ES256", "a")
	s, path, logs := newTestFileSource(t, jwttest.JWKS(a))
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	good := s.keySet()
	for _, c := range []struct {
		name  string
		spoil func()
	}{
		{"garbage", func() { replaceKeepingMtime(t, path, []byte("{not json")) }},
		{"no usable key", func() { replaceKeepingMtime(t, path, jwttest.JWKSOf()) }},
		{"missing", func() { _ = os.Remove(path) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.spoil()
			before := logs.FilterMessageSnippet("reading jwks_file failed").Len()
			s.poll()
			s.poll() // the same error again is not logged again
			if s.keySet() != good {
				t.Fatal("a bad read replaced the last good set")
			}
			if st := s.status(time.Now()); st.LastError == nil || *st.Source != "file" || st.URL != path {
				t.Fatalf("status after a bad read: %+v", st)
			}
			if n := logs.FilterMessageSnippet("reading jwks_file failed").Len() - before; n != 1 {
				t.Fatalf("%d warnings for two identical bad reads, want 1", n)
			}
		})
	}
	// A good file again: served, and the error is gone.
	if err := os.WriteFile(path, jwttest.JWKS(jwttest.NewEC(t, "ES256", "c")), 0o600); err != nil {
		t.Fatal(err)
	}
	s.poll()
	if s.keySet().Select("c", "ES256") == nil || s.status(time.Now()).LastError != nil {
		t.Fatal("recovery from a bad file")
	}
}

func TestFileSourcePollsOnItsOwn(t *testing.T) {
	a, b := jwttest.NewEC(t, "ES256", "a"), jwttest.NewEC(t, "ES256", "b")
	s, path, _ := newTestFileSource(t, jwttest.JWKS(a, b))
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	if ra := s.RetryAfter(); ra <= 0 || ra > filePollInterval {
		t.Fatalf("RetryAfter %s, want within the poll interval", ra)
	}
	replaceKeepingMtime(t, path, jwttest.JWKS(a))
	eventually(t, 5*time.Second, "the poll loop drops key b", func() bool {
		return s.keySet().Select("b", "ES256") == nil
	})
	// An unknown kid reads nothing extra: the poll loop is the only reader.
	if set := s.RefreshForUnknownKid(context.Background()); set != s.keySet() {
		t.Fatal("RefreshForUnknownKid returned another set")
	}
}

func TestFileSourceMissingAtStartIsAConfigError(t *testing.T) {
	s := newFileSource(sourceID{Issuer: "https://file.example/", JWKSFile: filepath.Join(t.TempDir(), "missing.json")}, &sourceUser{})
	if err := s.start(); err == nil {
		t.Fatal("a missing jwks_file started")
	}
	if s.ctx.Err() == nil {
		t.Fatal("a source that failed to start was not stopped")
	}
	if err := s.Destruct(); err != nil { // never started: returns at once
		t.Fatal(err)
	}
}

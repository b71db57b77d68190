package jwtauth

import (
	"fmt"
	"os"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// TestMain points Caddy's default storage at a fresh directory: fetchers
// persist key sets there (SPEC "Keys"), and a set left by an earlier run for
// a reused loopback port must never leak into this one.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jwtauth-storage-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddy.DefaultStorage = &certmagic.FileStorage{Path: dir}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

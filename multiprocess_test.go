package jwtauth

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// A fleet sharing a storage module starts while its IdP is down
// (docs/design.md, "Key sources"): two real Caddy processes built from
// ./cmd/caddy share a file_system storage directory. Instance 1 fetches and stores the set; the
// IdP goes down; instance 2 starts and accepts valid tokens from the stored
// set alone. Ports differ from the in-process Caddy's so both can run.

// buildCaddy compiles ./cmd/caddy once per test binary into dir.
func buildCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin
}

// caddyProcess is one running `caddy run`.
type caddyProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *strings.Builder
}

// startCaddyProcess runs bin with a Caddyfile on the given admin and http
// ports and the shared storage directory, and waits until it answers.
func startCaddyProcess(t *testing.T, bin, storage string, admin, port int, site string) *caddyProcess {
	t.Helper()
	dir := t.TempDir()
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	persist_config off
	skip_install_trust
	storage file_system %s
}

http://127.0.0.1:%d {
%s
}
`, admin, port, storage, port, site)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d/", port), logs: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("caddy on :%d logs:\n%s", port, logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url)
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy on :%d did not answer within 20s: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// status sends tok to the instance.
func (p *caddyProcess) status(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", p.url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMultiProcessFleetStartsFromSharedStorageWhileIssuerIsDown(t *testing.T) {
	bin := buildCaddy(t)
	storage := t.TempDir()
	f := newFixture(t)
	site := f.block("\trefresh_interval 1h") + "\n\trespond \"ok\""

	one := startCaddyProcess(t, bin, storage, 3011, 9181, site)
	eventually(t, 10*time.Second, "instance 1 loads the keys", func() bool {
		return one.status(t, f.token(t, nil)) == 200
	})
	stored := filepath.Join(storage, filepath.FromSlash(storageKey(f.jwks.JWKSURL())))
	eventually(t, 5*time.Second, "instance 1 stores the set at "+stored, func() bool {
		_, err := os.Stat(stored)
		return err == nil
	})

	f.jwks.SetMode(jwttest.Down)
	hits := f.jwks.Hits()
	two := startCaddyProcess(t, bin, storage, 3012, 9182, site)
	eventually(t, 10*time.Second, "instance 2 serves from the stored set", func() bool {
		return two.status(t, f.token(t, nil)) == 200
	})
	if f.jwks.Hits() != hits {
		t.Fatal("the issuer was reached although it is down")
	}
	// Still verified, not waved through: a token from another key fails.
	other := jwttest.NewEC(t, "ES256", f.key.Kid)
	if s := two.status(t, jwttest.Sign(t, other, nil, jwttest.Claims(f.issuer, "api", time.Minute))); s != 401 {
		t.Fatalf("forged token on instance 2: %d", s)
	}
	if s := one.status(t, f.token(t, nil)); s != 200 {
		t.Fatalf("instance 1 during the outage: %d", s)
	}
}

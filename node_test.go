package jwtauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Node.js peers of the end-to-end tests: code no one here wrote
// (oidc-provider, the MCP SDK, panva's dpop), installed by .ci/deps.

// nodeFor returns the node binary, failing (not skipping: CI counts a skip
// as a failure) when node or the peer's node_modules is missing.
func nodeFor(t *testing.T, dir, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for this test (install Node.js 20+): %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
		t.Fatalf("%s/node_modules is missing: run bash .ci/deps, as .ci/run does", dir)
	}
	return node
}

// startNode runs a Node.js server script of dir (which needs package pkg)
// with env ("NAME=value") added, and returns what follows readyPrefix on the
// first stdout line that starts with it. The server exits when its standard
// input closes, at the end of the test.
func startNode(t *testing.T, dir, pkg, readyPrefix string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(nodeFor(t, dir, pkg), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s stderr:\n%s", dir, args[0], stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), readyPrefix); ok {
				ready <- rest
			}
		}
	}()
	select {
	case rest := <-ready:
		return rest
	case <-time.After(20 * time.Second):
		t.Fatalf("%s %s did not start within 20s; stderr:\n%s", dir, args[0], stderr.String())
		return ""
	}
}

// runNode runs a one-shot Node.js script of dir (which needs package pkg)
// with in as JSON on its standard input, and decodes its JSON output into out.
func runNode(t *testing.T, dir, pkg, script string, in, out any) {
	t.Helper()
	node := nodeFor(t, dir, pkg)
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	output, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s/%s failed: %v\n%s", dir, script, err, stderr.String())
	}
	if err := json.Unmarshal(output, out); err != nil {
		t.Fatalf("%s/%s output: %v", dir, script, err)
	}
}

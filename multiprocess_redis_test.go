package jwtauth

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The fleet of multiprocess_fleet_test.go on a real Redis, through the
// storage module operators use (github.com/pberkel/caddy-storage-redis,
// whose locks are real). It needs redis-server on PATH (.ci/deps installs
// it) and a Caddy built with that module. Missing either is a failure, not
// a skip.

// redisCaddy is the Caddy binary with Redis storage: JWT_AUTH_REDIS_CADDY
// (.ci/run builds it once), else built now by .ci/redis-caddy.
func redisCaddy(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("JWT_AUTH_REDIS_CADDY"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("JWT_AUTH_REDIS_CADDY=%s: %v (build it with .ci/redis-caddy)", bin, err)
		}
		return bin
	}
	bin := filepath.Join(t.TempDir(), "caddy-redis")
	out, err := exec.Command("bash", filepath.Join(".ci", "redis-caddy"), bin).CombinedOutput()
	if err != nil {
		t.Fatalf("building a Caddy with Redis storage (.ci/redis-caddy): %v\n%s", err, out)
	}
	return bin
}

// redisServer is a redis-server process of the test's own, on a free
// loopback port, without persistence.
type redisServer struct {
	cmd  *exec.Cmd
	port int
	logs *lockedBuffer
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found on PATH: install it (Debian: `apt-get install -y redis-server`; .ci/run does)")
	}
	port := freePorts(t, 1)[0]
	logs := &lockedBuffer{}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--protected-mode", "yes")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &redisServer{cmd: cmd, port: port, logs: logs}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("redis-server logs:\n%s", logs.String())
		}
	})
	eventually(t, 10*time.Second, "redis-server accepts connections", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

// stop kills the server (as an outage would) and waits for it.
func (r *redisServer) stop() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// directive is the Caddyfile storage directive for this server (the
// module's syntax: host, port, timeout in seconds), with a key prefix of
// the test's own.
func (r *redisServer) directive(prefix string) string {
	return fmt.Sprintf("storage redis {\n\t\thost 127.0.0.1\n\t\tport %d\n\t\ttimeout 1\n\t\tkey_prefix %s\n\t}", r.port, prefix)
}

func TestMultiProcessFleetOnRedis(t *testing.T) {
	bin := redisCaddy(t)
	redis := startRedis(t)
	f := newFleetFixture(t)
	fleet := startFleet(t, bin, redis.directive("jwtauth-fleet-test"), f.site, 3, f.token(t, nil))
	f.measurePeriods(t, fleet)
	checkSharing(t, fleet)
	f.spray(t, fleet, 4*time.Second)
	f.rotate(t, fleet)

	// Redis goes away: the instances keep serving valid tokens, fetching
	// on their own, and each warns once.
	redis.stop()
	f.serveValid(t, fleet, 3*fleetMaxAge)
	expectStorageWarning(t, fleet)
	f.serveValid(t, fleet, 2*fleetMaxAge)
	expectOneStorageWarningEach(t, fleet)
}

package jwtauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// A fleet of real Caddy processes sharing one storage module shares the
// work of fetching (docs/design.md, "Key sources"): about one JWKS fetch per
// refresh period for the whole fleet, one per min_refresh_interval under an
// unknown-kid spray, a rotation picked up by all within one
// min_refresh_interval, and a storage fault that never fails a valid
// request. Run on a file_system storage here and on a real Redis
// (TestMultiProcessFleetOnRedis). The JWKS says max-age=2 with
// min_refresh_interval 1s, so ten seconds hold five refresh periods.

const (
	fleetMaxAge     = 2 * time.Second
	fleetMinRefresh = time.Second
	fleetWindow     = 10 * time.Second
	// fleetMaxPerPeriod is the bound on fetches per refresh period.
	fleetMaxPerPeriod = 1.2
)

// fleetSizes are the fleet sizes measured; JWT_AUTH_FLEET_SIZES (e.g.
// "1,3,5") overrides them, as BENCHMARKS.md does.
func fleetSizes(t *testing.T) []int {
	env := os.Getenv("JWT_AUTH_FLEET_SIZES")
	if env == "" {
		return []int{3, 5}
	}
	var sizes []int
	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("JWT_AUTH_FLEET_SIZES=%q: want sizes like 1,3,5", env)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// lockedBuffer collects a process's output; the test reads it while the
// process writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fleetInstance is one `caddy run` of a fleet.
type fleetInstance struct {
	url, admin string
	logs       *lockedBuffer
}

// freePorts returns n distinct loopback ports nobody listens on right now,
// all picked before any process starts (whose connections take ports too).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startFleet runs n instances of bin with the storage directive and site
// and waits until each serves a valid token. The first starts alone: Caddy
// creates its local CA in the storage at first start, and instances racing
// to create it can read each other's half-written one.
func startFleet(t *testing.T, bin, storage, site string, n int, valid string) []*fleetInstance {
	t.Helper()
	fleet := make([]*fleetInstance, n)
	ports := freePorts(t, 2*n)
	for i := range fleet {
		if i == 1 {
			waitServing(t, fleet[:1], valid)
		}
		admin, port := ports[2*i], ports[2*i+1]
		dir := t.TempDir()
		caddyfile := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\thttp_port %d\n\tpersist_config off\n\tskip_install_trust\n\t%s\n}\n\nhttp://127.0.0.1:%d {\n%s\n}\n",
			admin, port, storage, port, site)
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
			t.Fatal(err)
		}
		logs := &lockedBuffer{}
		cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		fleet[i] = &fleetInstance{url: fmt.Sprintf("http://127.0.0.1:%d/", port), admin: fmt.Sprintf("http://127.0.0.1:%d", admin), logs: logs}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("instance %d (:%d) logs:\n%s", i, port, logs.String())
			}
		})
	}
	waitServing(t, fleet, valid)
	return fleet
}

func waitServing(t *testing.T, fleet []*fleetInstance, valid string) {
	t.Helper()
	for i, in := range fleet {
		eventually(t, 30*time.Second, fmt.Sprintf("instance %d serves a valid token", i), func() bool {
			code, _ := in.try(valid)
			return code == http.StatusOK
		})
	}
}

// try sends tok; a transport error is status 0.
func (in *fleetInstance) try(tok string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, in.url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// fetchCounter sums a result of caddy_jwt_auth_jwks_fetches_total from the
// instance's admin /metrics.
func (in *fleetInstance) fetchCounter(t *testing.T, result string) float64 {
	t.Helper()
	resp, err := http.Get(in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "caddy_jwt_auth_jwks_fetches_total{") && strings.Contains(line, `result="`+result+`"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}

// source is the status endpoint's source of the instance's only issuer.
func (in *fleetInstance) source(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(in.admin + "/jwt_auth/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st statusResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Issuers) != 1 || st.Issuers[0].Source == nil {
		t.Fatalf("status: %v, %+v", err, st)
	}
	return *st.Issuers[0].Source
}

// fleetFixture is the issuer of a fleet run: a counting JWKS server with
// max-age=2 and the jwt_auth block every instance runs.
type fleetFixture struct {
	*e2eFixture
	site string
}

func newFleetFixture(t *testing.T) fleetFixture {
	f := newFixture(t)
	f.jwks.SetCacheControl(fmt.Sprintf("max-age=%d", int(fleetMaxAge/time.Second)))
	site := f.block(fmt.Sprintf("\tmin_refresh_interval %s\n\trefresh_interval 1h\n\tfetch_timeout 2s", fleetMinRefresh)) + "\n\trespond \"ok\""
	return fleetFixture{e2eFixture: f, site: site}
}

// serveValid sends a valid token to every instance, round-robin, for d,
// and fails on any other answer than 200.
func (f fleetFixture) serveValid(t *testing.T, fleet []*fleetInstance, d time.Duration) {
	t.Helper()
	tok := f.token(t, nil)
	for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
		in := fleet[i%len(fleet)]
		if code, err := in.try(tok); code != http.StatusOK {
			t.Fatalf("instance %s answered a valid token with %d (%v)", in.url, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// measurePeriods counts the fleet's fetches over fleetWindow of traffic
// and returns them per refresh period.
func (f fleetFixture) measurePeriods(t *testing.T, fleet []*fleetInstance) float64 {
	t.Helper()
	before := f.jwks.Hits()
	f.serveValid(t, fleet, fleetWindow)
	fetches := f.jwks.Hits() - before
	perPeriod := float64(fetches) / (float64(fleetWindow) / float64(fleetMaxAge))
	t.Logf("%d instances: %d fetches in %s = %.2f per %s refresh period", len(fleet), fetches, fleetWindow, perPeriod, fleetMaxAge)
	if perPeriod > fleetMaxPerPeriod {
		t.Errorf("%d instances: %.2f fetches per refresh period, want at most %.1f", len(fleet), perPeriod, fleetMaxPerPeriod)
	}
	return perPeriod
}

// checkSharing asserts that an operator can see the sharing: adopted sets
// in the metrics, and source "stored" in some instance's status.
func checkSharing(t *testing.T, fleet []*fleetInstance) {
	t.Helper()
	var adopted float64
	stored := 0
	for _, in := range fleet {
		adopted += in.fetchCounter(t, "adopted")
		if in.source(t) == "stored" {
			stored++
		}
	}
	if adopted == 0 || stored == 0 {
		t.Errorf("sharing not visible: adopted=%v in the metrics, %d instances with source \"stored\"", adopted, stored)
	}
}

// spray sends tokens with random kids round-robin across the fleet for d,
// with a valid token in between, and checks the fleet fetched at most once
// per min_refresh_interval.
func (f fleetFixture) spray(t *testing.T, fleet []*fleetInstance, d time.Duration) {
	t.Helper()
	valid := f.token(t, nil)
	before := f.jwks.Hits()
	start := time.Now()
	sent := 0
	for i := 0; time.Since(start) < d; i++ {
		in := fleet[i%len(fleet)]
		kid := fmt.Sprintf("spray-%d-%d", i, time.Now().UnixNano())
		tok := jwttest.Sign(t, jwttest.NewEC(t, "ES256", kid), nil, jwttest.Claims(f.issuer, "api", time.Minute))
		if code, err := in.try(tok); code != http.StatusUnauthorized {
			t.Fatalf("random kid on %s: %d (%v), want 401", in.url, code, err)
		}
		sent++
		if i%5 == 0 {
			if code, err := in.try(valid); code != http.StatusOK {
				t.Fatalf("valid token during the spray on %s: %d (%v)", in.url, code, err)
			}
		}
	}
	elapsed := time.Since(start)
	fetches := f.jwks.Hits() - before
	limit := int(elapsed/fleetMinRefresh) + 1
	t.Logf("%d instances: %d random-kid tokens in %s made %d fetches (at most %d allowed)", len(fleet), sent, elapsed.Round(time.Millisecond), fetches, limit)
	if fetches > limit {
		t.Errorf("unknown-kid spray: %d fetches in %s, want at most one per %s (%d)", fetches, elapsed, fleetMinRefresh, limit)
	}
}

// rotate publishes a new key and checks every instance accepts a token
// signed with it within one min_refresh_interval plus a read.
func (f fleetFixture) rotate(t *testing.T, fleet []*fleetInstance) {
	t.Helper()
	next := jwttest.NewEC(t, "ES256", "key-2")
	f.jwks.SetKeys(f.key, next)
	tok := jwttest.Sign(t, next, nil, jwttest.Claims(f.issuer, "api", time.Minute))
	start := time.Now()
	limit := fleetMinRefresh + time.Second // plus a read, and slack for a busy machine
	for i, in := range fleet {
		eventually(t, 2*limit, fmt.Sprintf("instance %d accepts the new key", i), func() bool {
			code, _ := in.try(tok)
			return code == http.StatusOK
		})
	}
	took := time.Since(start)
	t.Logf("%d instances: the new key accepted by all within %s", len(fleet), took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("rotation took %s to reach every instance, want within %s", took, limit)
	}
}

// expectStorageWarning waits until every instance has warned of the
// storage fault, and checks it warned once, not once per fetch.
func expectStorageWarning(t *testing.T, fleet []*fleetInstance) {
	t.Helper()
	for i, in := range fleet {
		eventually(t, 10*time.Second, fmt.Sprintf("instance %d warns of the storage fault", i), func() bool {
			return strings.Contains(in.logs.String(), storageWarning)
		})
	}
}

func expectOneStorageWarningEach(t *testing.T, fleet []*fleetInstance) {
	t.Helper()
	for i, in := range fleet {
		if n := strings.Count(in.logs.String(), storageWarning); n != 1 {
			t.Errorf("instance %d warned %d times of one storage fault, want once", i, n)
		}
	}
}

func TestMultiProcessFleetFetchesPerRefreshPeriod(t *testing.T) {
	bin := buildCaddy(t)
	for _, n := range fleetSizes(t) {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			f := newFleetFixture(t)
			fleet := startFleet(t, bin, "storage file_system "+t.TempDir(), f.site, n, f.token(t, nil))
			f.measurePeriods(t, fleet)
			if n > 1 {
				checkSharing(t, fleet)
			}
		})
	}
}

func TestMultiProcessFleetUnknownKidsRotationAndStorageFault(t *testing.T) {
	bin := buildCaddy(t)
	f := newFleetFixture(t)
	storage := t.TempDir()
	fleet := startFleet(t, bin, "storage file_system "+storage, f.site, 3, f.token(t, nil))
	f.spray(t, fleet, 5*time.Second)
	f.rotate(t, fleet)

	// The storage breaks: jwt_auth/jwks becomes a regular file, so every
	// read and write of a key set fails (file modes would not do: the tests
	// may run as root).
	jwks := filepath.Join(storage, filepath.FromSlash(strings.TrimSuffix(storagePrefix, "/")))
	if err := os.RemoveAll(jwks); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwks, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.serveValid(t, fleet, 3*fleetMaxAge) // every instance refreshes in this time
	expectStorageWarning(t, fleet)
	f.serveValid(t, fleet, 2*fleetMaxAge) // more refreshes, no more warnings
	expectOneStorageWarningEach(t, fleet)
}

package keyimport

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jose"
	"github.com/jwtauth-caddy/caddy-jwt-auth/internal/jwttest"
)

// Project Wycheproof JOSE vectors (Apache License 2.0; see
// testdata/wycheproof/README.md for the source, the snapshot, the licence
// and where the files are looked for).

// wycheproofFiles are the files used here with their SHA-256 at the pinned
// snapshot, so a silently changed vector file fails loudly.
var wycheproofFiles = map[string]string{
	"json_web_signature_test.json": "8e687a06fe8359f4ec51480f1a9f73c8faebd6f4c01b818b843b44eee54fd5d9",
	"json_web_key_test.json":       "be983255bce26406f97020ec5458b33930a90d5f868e604fcd569c300aba2862",
}

// wycheproofErrata are vectors whose expected result is wrong in the data
// itself: either outcome is acceptable, and the outcome is only logged.
var wycheproofErrata = map[string]string{
	"jws/372": "marked valid but the compact string contains '?': no strict base64url decoder accepts it",
	"jws/373": "marked valid but the compact string contains '?': no strict base64url decoder accepts it",
	// These two "invalid" vectors are byte for byte the valid tcId 357 (their padding was lost when the files were converted
	// to the v1 format), so no verifier can accept 357 and reject them.
	"jws/367": "invalidBase64Padding is identical to valid tcId 357 (padding lost in the v1 data)",
	"jws/370": "invalidBase64PaddingInPayload is identical to valid tcId 357 (padding lost in the v1 data)",
}

// wycheproofSameAs pins the errata above that claim two vectors are equal,
// so a corrected data file makes this test say so.
var wycheproofSameAs = map[string]string{"jws/367": "jws/357", "jws/370": "jws/357"}

// wycheproofDisagreements are vectors where our policy deliberately differs
// from Wycheproof's expectation. The test checks that each entry still
// disagrees, so the list stays true.
var wycheproofDisagreements = map[string]string{
	// RFC 7520 Figure 20 signs PS384 while the vector's key says alg PS256;
	// binding the key to its alg (RFC 8725 §3.1, Key.Fits) refuses it.
	"jws/346": "key alg PS256 vs header PS384 (vector erratum): a key is bound to its own alg",
	"jws/350": "key alg PS256 vs header PS384 (vector erratum): a key is bound to its own alg",
	// "ES521" is not a registered JWA name; such a key is skipped on load.
	"jws/347": "key alg ES521 is not a JWA algorithm (vector erratum): the key is skipped on load",
	"jws/351": "key alg ES521 is not a JWA algorithm (vector erratum): the key is skipped on load",
	// An HS256 key and an EC key in one set: a key is bound to its kid,
	// type and alg, and oct keys import only with AllowHMAC (without it,
	// this set rejects the token; see TestWycheproofMixedSetWithoutHMAC).
	"jwk/1": "mixed oct/EC set imported with AllowHMAC: the oct key verifies its own kid",
	// Select uses the first fitting key in set order; a set is not refused
	// for a repeated kid (IdPs publish such sets during rotation).
	"jwk/4": "duplicate kid: the first fitting key in set order is used, the set is not refused",
	// No ROCA (CVE-2017-15361) fingerprint test on RSA moduli: the IdP's
	// key generation is trusted, as every mainstream JOSE library does.
	"jwk/7": "ROCA-vulnerable RSA modulus is not detected",
}

// wpFile is the part of a Wycheproof v1 JOSE file the harness reads.
type wpFile struct {
	NumberOfTests int       `json:"numberOfTests"`
	Schema        string    `json:"schema"`
	TestGroups    []wpGroup `json:"testGroups"`
}

type wpGroup struct {
	Type    string          `json:"type"`
	Comment string          `json:"comment"`
	Private json.RawMessage `json:"private"`
	Public  json.RawMessage `json:"public"`
	Tests   []wpTest        `json:"tests"`
}

type wpTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	JWS     string   `json:"jws"`
	Result  string   `json:"result"`
	Flags   []string `json:"flags"`
}

// wycheproofDir is testdata/wycheproof, where the vectors are committed (see
// its README.md), or $WYCHEPROOF_DIR.
func wycheproofDir(t *testing.T) string {
	return jwttest.WycheproofDir(t, filepath.Join("testdata", "wycheproof"))
}

func loadWycheproof(t *testing.T, name string) *wpFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(wycheproofDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != wycheproofFiles[name] {
		t.Fatalf("%s has SHA-256 %s, want %s", name, got, wycheproofFiles[name])
	}
	var f wpFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range f.TestGroups {
		n += len(g.Tests)
	}
	if n != f.NumberOfTests || n == 0 {
		t.Fatalf("%s: %d tests, numberOfTests says %d", name, n, f.NumberOfTests)
	}
	return &f
}

// wpOutcome is what our code made of one vector.
type wpOutcome struct {
	accepted bool
	why      string // the stage that rejected it
}

// wycheproofImportOptions: HMAC is allowed, the most permissive import;
// every rejection below therefore holds for every configuration.
var wycheproofImportOptions = ImportOptions{AllowHMAC: true}

// verifyJWSLayer runs one vector through the JWS layer: strict decode
// (payload left as bytes), key selection, signature check.
func verifyJWSLayer(keys []*Key, loadErr error, token string) wpOutcome {
	t, err := jose.DecodeJWS(token)
	if err != nil {
		return wpOutcome{why: "decode: " + err.(*jose.Error).Kind.String()}
	}
	if loadErr != nil {
		return wpOutcome{why: "key set: " + loadErr.Error()}
	}
	key := Select(keys, t.Kid, t.Alg)
	if key == nil {
		return wpOutcome{why: "no key for kid/alg"}
	}
	if !jose.Verify(t.Alg, key.Public, t.SigningInput(), t.Signature()) {
		return wpOutcome{why: "signature"}
	}
	return wpOutcome{accepted: true}
}

// wpKeys imports the group's verification key(s): the public member when
// present, else the private one (oct keys have no public form). jwkSet says
// whether the member is already a JWKS (the JWK file) or a single JWK.
func wpKeys(g wpGroup, jwkSet bool) ([]*Key, error) {
	raw := g.Public
	if len(raw) == 0 {
		raw = g.Private
	}
	if len(raw) == 0 {
		return nil, errors.New("group has no key")
	}
	if !jwkSet {
		raw = json.RawMessage(`{"keys":[` + string(raw) + `]}`)
	}
	keys, _, err := ParseKeys(raw, wycheproofImportOptions)
	return keys, err
}

// checkWycheproof runs every vector of f through the JWS layer and checks
// the outcome against the expectation, the errata and the disagreement list.
func checkWycheproof(t *testing.T, prefix string, f *wpFile, jwkSet bool) {
	var (
		stats        = map[string]int{}
		disagreeSeen = map[string]bool{}
		byID         = map[string]string{}
	)
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			byID[fmt.Sprintf("%s/%d", prefix, tc.TcID)] = tc.JWS
		}
	}
	for id, same := range wycheproofSameAs {
		if strings.HasPrefix(id, prefix+"/") && byID[id] != byID[same] {
			t.Errorf("%s no longer equals %s: the data was corrected, revisit wycheproofErrata", id, same)
		}
	}
	for _, g := range f.TestGroups {
		keys, loadErr := wpKeys(g, jwkSet)
		for _, tc := range g.Tests {
			id := fmt.Sprintf("%s/%d", prefix, tc.TcID)
			t.Run(fmt.Sprintf("%d %s %s %s", tc.TcID, g.Comment, tc.Comment, tc.Result), func(t *testing.T) {
				got := verifyJWSLayer(keys, loadErr, tc.JWS)
				wantValid := tc.Result == "valid"
				agree := got.accepted == wantValid
				stats[fmt.Sprintf("%s:%v", tc.Result, got.accepted)]++
				switch {
				case wycheproofErrata[id] != "":
					t.Logf("erratum (%s): accepted=%v %s", wycheproofErrata[id], got.accepted, got.why)
				case wycheproofDisagreements[id] != "":
					disagreeSeen[id] = true
					if agree {
						t.Errorf("listed as a disagreement (%s) but now agrees: remove the entry", wycheproofDisagreements[id])
					}
				case !agree && wantValid:
					t.Errorf("valid vector rejected (%s), flags %v", got.why, tc.Flags)
				case !agree:
					t.Errorf("INVALID VECTOR ACCEPTED, flags %v", tc.Flags)
				}
				if tc.Result == "invalid" && got.accepted && wycheproofErrata[id] == "" && wycheproofDisagreements[id] == "" {
					t.Errorf("security: invalid vector accepted")
				}
			})
		}
	}
	for id, why := range wycheproofDisagreements {
		if strings.HasPrefix(id, prefix+"/") && !disagreeSeen[id] {
			t.Errorf("disagreement %s (%s) matches no vector", id, why)
		}
	}
	names := make([]string, 0, len(stats))
	for k := range stats {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, " %s=%d", k, stats[k])
	}
	t.Logf("%s outcomes (expected:accepted):%s", prefix, b.String())
}

// TestWycheproofJWS runs json_web_signature_test.json.
func TestWycheproofJWS(t *testing.T) {
	f := loadWycheproof(t, "json_web_signature_test.json")
	checkWycheproof(t, "jws", f, false)
}

// TestWycheproofJWK runs json_web_key_test.json: each group's key set goes
// through ParseKeys, then each token through the JWS layer.
func TestWycheproofJWK(t *testing.T) {
	f := loadWycheproof(t, "json_web_key_test.json")
	checkWycheproof(t, "jwk", f, true)
}

// TestWycheproofMixedSetWithoutHMAC: the mixed oct/EC set of jwk/1 imported
// without AllowHMAC keeps only the EC key, so the HS256 vector is refused:
// the disagreement is limited to imports that allow HMAC.
func TestWycheproofMixedSetWithoutHMAC(t *testing.T) {
	f := loadWycheproof(t, "json_web_key_test.json")
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			if tc.TcID != 1 {
				continue
			}
			keys, _, err := ParseKeys(g.Private, ImportOptions{})
			if err != nil {
				t.Fatalf("the EC key should load: %v", err)
			}
			if got := verifyJWSLayer(keys, nil, tc.JWS); got.accepted {
				t.Fatal("HS256 vector accepted without AllowHMAC")
			}
			return
		}
	}
	t.Fatal("tcId 1 not found")
}

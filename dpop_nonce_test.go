package jwtauth

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func TestNonceKeySharedThroughStorage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := &certmagic.FileStorage{Path: dir}
	b := &certmagic.FileStorage{Path: dir}
	keyA, err := loadNonceKey(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := loadNonceKey(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keyA) != nonceKeySize || !bytes.Equal(keyA, keyB) {
		t.Fatalf("instances on one storage got different secrets (%d and %d bytes)", len(keyA), len(keyB))
	}
	// A second load returns the stored secret, not a new one.
	again, err := loadNonceKey(ctx, a)
	if err != nil || !bytes.Equal(again, keyA) {
		t.Fatalf("reload changed the secret (err %v)", err)
	}

	step := time.Minute
	t0 := time.Unix(1_700_000_000, 0)
	na, nb := newDPoPNonces(keyA, step), newDPoPNonces(keyB, step)
	nonce := na.current(t0)
	if !nb.valid(nonce, t0) {
		t.Fatal("a nonce from one instance is refused by the other")
	}
	if !nb.valid(nonce, t0.Add(step)) {
		t.Fatal("the previous step's nonce is refused")
	}
	if nb.valid(nonce, t0.Add(2*step)) {
		t.Fatal("a nonce two steps old is accepted")
	}
	other := newDPoPNonces(bytes.Repeat([]byte{1}, nonceKeySize), step)
	if other.valid(nonce, t0) {
		t.Fatal("a nonce made with another secret is accepted")
	}
}

func TestNonceValidity(t *testing.T) {
	key := bytes.Repeat([]byte{7}, nonceKeySize)
	step := 60 * time.Second
	// t0 is the start of a step, so step boundaries are exact.
	t0 := time.Unix(1_700_000_040, 0)
	if t0.UnixNano()%int64(step) != 0 {
		t.Fatal("t0 is not at a step boundary")
	}
	n := newDPoPNonces(key, step)
	cur := n.current(t0)
	tests := []struct {
		name  string
		nonce string
		at    time.Time
		want  bool
	}{
		{"current", cur, t0, true},
		{"current, end of the step", cur, t0.Add(step - time.Nanosecond), true},
		{"previous step", cur, t0.Add(step), true},
		{"previous step, last instant", cur, t0.Add(2*step - time.Nanosecond), true},
		{"two steps old", cur, t0.Add(2 * step), false},
		{"from the future", n.current(t0.Add(step)), t0, false},
		{"empty", "", t0, false},
		{"not base64url", strings.Repeat("*", len(cur)), t0, false},
		{"truncated", cur[:len(cur)-2], t0, false},
		{"padded", cur + "=", t0, false},
		{"another step length", newDPoPNonces(key, 2*step).current(t0), t0, false},
		{"one bit off", flipLastChar(cur), t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := n.valid(tt.nonce, tt.at); got != tt.want {
				t.Fatalf("valid = %v, want %v", got, tt.want)
			}
		})
	}
	// RFC 9449 §8.1: a nonce is 1*NQCHAR; base64url is within it.
	for _, c := range cur {
		if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			t.Fatalf("nonce has %q, outside NQCHAR", c)
		}
	}
}

func flipLastChar(s string) string {
	last := s[len(s)-1]
	// Stay within the canonical alphabet for the final character of a
	// 32-byte value (its low 2 bits are zero): A, E, I, ... step by 4.
	repl := byte('A')
	if last == 'A' {
		repl = 'E'
	}
	return s[:len(s)-1] + string(repl)
}

func TestNonceKeyConcurrentCreationYieldsOneKey(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const instances = 4
	keys := make([][]byte, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			keys[i], errs[i] = loadNonceKey(ctx, &certmagic.FileStorage{Path: dir})
		})
	}
	wg.Wait()
	for i := range instances {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("instance %d created its own secret", i)
		}
	}
}

func TestNonceKeyWrongSizeIsAnError(t *testing.T) {
	ctx := context.Background()
	s := &certmagic.FileStorage{Path: t.TempDir()}
	if err := s.Store(ctx, nonceKeyStorageKey, []byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, err := loadNonceKey(ctx, s); err == nil || !strings.Contains(err.Error(), "5 bytes") {
		t.Fatalf("loadNonceKey = %v, want a size error", err)
	}
	// The stored value is left alone for the operator.
	if got, _ := s.Load(ctx, nonceKeyStorageKey); string(got) != "short" {
		t.Fatalf("stored value replaced with %d bytes", len(got))
	}
}

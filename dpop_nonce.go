package jwtauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/caddyserver/certmagic"
)

// nonceKeyStorageKey is where the DPoP nonce secret lives in Caddy storage.
// Every instance sharing the storage loads the same secret, so each accepts
// the nonces the others hand out, with no per-nonce state anywhere.
const nonceKeyStorageKey = "jwt_auth/dpop/nonce_key"

// nonceKeySize is the length of the nonce secret: a full SHA-256 block's
// worth of key strength for HMAC-SHA256.
const nonceKeySize = 32

// loadNonceKey returns the shared nonce secret, creating it on first use. The
// creation runs under the storage lock and re-reads after locking, so when
// several instances start together exactly one secret is written and all of
// them end up with it.
func loadNonceKey(ctx context.Context, storage certmagic.Storage) ([]byte, error) {
	key, err := readNonceKey(ctx, storage)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := storage.Lock(ctx, nonceKeyStorageKey); err != nil {
		return nil, fmt.Errorf("locking %s: %w", nonceKeyStorageKey, err)
	}
	defer func() {
		// An unlock failure leaves a stale lock that the storage expires
		// by itself; the secret is already stored, so it changes nothing.
		_ = storage.Unlock(context.WithoutCancel(ctx), nonceKeyStorageKey)
	}()
	key, err = readNonceKey(ctx, storage)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, nonceKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating the DPoP nonce secret: %w", err)
	}
	if err := storage.Store(ctx, nonceKeyStorageKey, key); err != nil {
		return nil, fmt.Errorf("storing %s: %w", nonceKeyStorageKey, err)
	}
	return key, nil
}

// readNonceKey loads the secret; a value of the wrong size is an error, not
// a reason to write a new one, which would invalidate every other
// instance's nonces.
func readNonceKey(ctx context.Context, storage certmagic.Storage) ([]byte, error) {
	key, err := storage.Load(ctx, nonceKeyStorageKey)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", nonceKeyStorageKey, err)
	}
	if len(key) != nonceKeySize {
		return nil, fmt.Errorf("%s holds %d bytes, want %d: delete it to have a new secret made", nonceKeyStorageKey, len(key), nonceKeySize)
	}
	return key, nil
}

// dpopNonces hands out and checks server nonces (RFC 9449 §9) statelessly:
// a nonce is base64url(HMAC-SHA256(secret, step)), where step counts whole
// step lengths since the Unix epoch. The nonce for the current step and the
// previous one are accepted, so a nonce stays good for one to two steps.
type dpopNonces struct {
	key  []byte
	step time.Duration
}

// newDPoPNonces returns a nonce source; step is the handler's dpop_max_age,
// so a nonce lives about as long as a proof may.
func newDPoPNonces(key []byte, step time.Duration) *dpopNonces {
	if step <= 0 {
		step = time.Minute
	}
	return &dpopNonces{key: key, step: step}
}

// current returns the nonce for now, for the DPoP-Nonce header.
func (n *dpopNonces) current(now time.Time) string {
	return base64.RawURLEncoding.EncodeToString(n.mac(n.stepOf(now)))
}

// valid reports whether nonce is the current or the previous step's nonce.
func (n *dpopNonces) valid(nonce string, now time.Time) bool {
	got, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	s := n.stepOf(now)
	// Both comparisons always run, so timing says nothing about which
	// step matched.
	cur := subtle.ConstantTimeCompare(got, n.mac(s))
	prev := subtle.ConstantTimeCompare(got, n.mac(s-1))
	return cur|prev == 1
}

func (n *dpopNonces) stepOf(now time.Time) int64 {
	return now.UnixNano() / int64(n.step)
}

// mac computes the nonce bytes of one step. The step length is part of the
// input so that handlers with different dpop_max_age never share nonces.
func (n *dpopNonces) mac(step int64) []byte {
	m := hmac.New(sha256.New, n.key)
	var buf [len("jwt_auth dpop nonce\x00") + 16]byte
	b := append(buf[:0], "jwt_auth dpop nonce\x00"...)
	b = binary.BigEndian.AppendUint64(b, uint64(n.step))
	b = binary.BigEndian.AppendUint64(b, uint64(step))
	m.Write(b)
	return m.Sum(nil)
}

package jwtauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// filePollInterval is how often a jwks_file is read again. Removing a key
// from the file is how an operator revokes it, so a change must take effect
// within seconds (docs/design.md, "Key sources"), whatever refresh_interval
// says.
const filePollInterval = 2 * time.Second

// fileSource serves a local JWKS or PEM file. Changes are found by content,
// not by modification time: cp -p, rsync -t, tar -x, coarse-mtime
// filesystems and two writes in one clock tick all keep the old mtime. The
// file is read every filePollInterval and parsed only when its SHA-256
// differs from the last read's; a bad read keeps the last good set.
type fileSource struct {
	sourceBase
	ctx     context.Context // from context.Background: outlives configs, not the pool entry
	cancel  context.CancelFunc
	started atomic.Bool   // start ran, so done will be closed
	done    chan struct{} // closed when loop returns

	mu        sync.Mutex // guards the fields below
	sum       [sha256.Size]byte
	lastError string    // the latest read's error, "" after a good one
	nextRead  time.Time // when the loop reads next, for Retry-After
}

func newFileSource(id sourceID, first *sourceUser) *fileSource {
	ctx, cancel := context.WithCancel(context.Background())
	s := &fileSource{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.init(id, first)
	return s
}

// start reads the file once, synchronously: a missing or broken file is a
// config error (and the source is dropped). Then the poll loop takes over.
func (s *fileSource) start() error {
	if err := s.read(); err != nil {
		s.cancel()
		return err
	}
	s.note(nil)
	s.started.Store(true)
	go s.loop(s.scheduleNext())
	return nil
}

// loadOnce reads the file one time.
func (s *fileSource) loadOnce(context.Context) error { return s.read() }

// Destruct stops the poll loop and waits for it.
func (s *fileSource) Destruct() error {
	s.cancel()
	if s.started.Load() {
		<-s.done
	}
	forgetIssuerMetrics(s.id.Issuer)
	return nil
}

func (s *fileSource) loop(first time.Duration) {
	defer close(s.done)
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		s.poll()
		timer.Reset(s.scheduleNext())
	}
}

// scheduleNext records when the next read comes and returns the delay.
func (s *fileSource) scheduleNext() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextRead = time.Now().Add(filePollInterval)
	return filePollInterval
}

// read loads the file when its content differs from the last good read's.
func (s *fileSource) read() error {
	data, err := os.ReadFile(s.id.JWKSFile)
	if err != nil {
		return fmt.Errorf("jwks_file: %w", err)
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	unchanged := sum == s.sum && s.state.Load() != nil
	s.mu.Unlock()
	if unchanged {
		return nil
	}
	set, warnings, err := parseKeySet(data, s.id.AllowHMAC)
	if err != nil {
		s.logWarnings(warnings)
		return fmt.Errorf("jwks_file %s: %w", s.id.JWKSFile, err)
	}
	s.mu.Lock()
	s.sum = sum
	s.mu.Unlock()
	s.logWarnings(warnings) // once per new content
	s.install(set, "file", s.id.JWKSFile, time.Now())
	return nil
}

// poll reads the file and warns about a failed read, once per distinct
// error: the file is read every few seconds and a broken one must not flood
// the log.
func (s *fileSource) poll() {
	err := s.read()
	if s.note(err) && err != nil && s.ctx.Err() == nil {
		s.logger().Warn("reading jwks_file failed; keeping the last good key set",
			zap.String("file", s.id.JWKSFile), zap.Error(err))
	}
}

// note records the latest read's outcome for the status and reports
// whether it differs from the previous read's.
func (s *fileSource) note(err error) (changed bool) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = msg != s.lastError
	s.lastError = msg
	return changed
}

// keySet implements keySource. A file set never goes stale: it is the
// operator's own.
func (s *fileSource) keySet() *keySet {
	if st := s.state.Load(); st != nil {
		return st.set
	}
	return nil
}

// KeysWanted implements keySource: the poll loop reads the file anyway.
func (s *fileSource) KeysWanted() {}

// RefreshForUnknownKid implements keySource: the poll loop already reads
// the file every few seconds, so an unknown kid reads nothing extra.
func (s *fileSource) RefreshForUnknownKid(context.Context) *keySet { return s.keySet() }

// RetryAfter implements keySource.
func (s *fileSource) RetryAfter() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(s.nextRead)
}

// status implements pooledSource.
func (s *fileSource) status(now time.Time) fetcherStatus {
	st, _ := s.baseStatus(now)
	st.URL = s.id.JWKSFile
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.nextRead.IsZero() {
		next := s.nextRead.UTC()
		st.NextRefresh = &next
	}
	if s.lastError != "" {
		msg := s.lastError
		st.LastError = &msg
	}
	return st
}

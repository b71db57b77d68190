package jwtauth

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// fetchers holds one key source per sourceID.poolKey, shared by every
// handler that names the same source and kept across config reloads: a
// reload with an unchanged source must not refetch or answer 503. This is
// the package's only mutable state besides the Prometheus collectors;
// caddy.UsagePool counts users and destructs the source when the last one
// releases it.
var fetchers = caddy.NewUsagePool()

// sourceLease is one acquisition of a pooled source: what release gives
// back.
type sourceLease struct {
	key  string
	user *sourceUser
	src  pooledSource
}

// acquire takes (or creates) the pooled source for sc and registers this
// config's logger, storage and tuning as its newest user. A source already
// running keeps its keys and schedule, so a reload causes no fetch and no
// 503.
func (a *authenticator) acquire(ctx caddy.Context, sc sourceConfig) (pooledSource, error) {
	user := &sourceUser{config: ctx.GetMetricsRegistry(), logger: a.logger, storage: contextStorage(ctx), tuning: sc.sourceTuning, reportOnly: a.cfg.ReportOnly}
	if a.resource != nil {
		user.resource = &resourceStatus{Resource: a.cfg.Resource.Resource, MetadataURL: a.resource.metadataURL}
	}
	key := sc.poolKey()
	val, loaded, err := fetchers.LoadOrNew(key, func() (caddy.Destructor, error) {
		src := newKeySource(sc, user)
		if err := src.start(); err != nil {
			return nil, err // start cleaned up; not Destruct, which reads the pool
		}
		return src, nil
	})
	if err != nil {
		// LoadOrNew counts a user even when it hands back another caller's
		// constructor error; that entry is already gone from the pool, so
		// there is nothing to release.
		return nil, err
	}
	src := val.(pooledSource)
	if loaded {
		warnTuning(a.logger, sc, src.base().users.add(user))
	}
	a.acquired = append(a.acquired, sourceLease{key: key, user: user, src: src})
	a.sources[sc.Issuer] = src
	return src, nil
}

// warnTuning names a source that handlers of one config tune differently:
// it has one schedule, and the newest handler's tuning is the one in force.
func warnTuning(logger *zap.Logger, sc sourceConfig, others []*sourceUser) {
	for _, o := range others {
		fields := append([]zap.Field{zap.String("issuer", sc.Issuer), zap.String("source", sc.name())}, sc.sourceTuning.fields()...)
		fields = append(fields, zap.Dict("not_in_use", o.tuning.fields()...))
		logger.Warn("handlers share this key source with different fetch settings; the values shown are in use for all of them", fields...)
	}
}

// release gives back every pooled source this authenticator acquired,
// unregistering its user first so the source falls back to the newest user
// still live. It is safe to call more than once: the list is emptied on the
// first call.
func (a *authenticator) release() error {
	var errs []error
	for _, l := range a.acquired {
		l.src.base().users.remove(l.user)
		if _, err := fetchers.Delete(l.key); err != nil {
			errs = append(errs, err)
		}
	}
	a.acquired = nil
	return errors.Join(errs...)
}

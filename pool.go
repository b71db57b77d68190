package jwtauth

import (
	"github.com/caddyserver/caddy/v2"
)

// fetchers holds one key fetcher per key source (sourceConfig.poolKey),
// shared by every handler that names the same source and kept across config
// reloads: a reload with an unchanged source must not refetch or answer 503.
// This is the package's only mutable state besides the Prometheus
// collectors; caddy.UsagePool counts users and destructs the fetcher when
// the last one releases it. Beside a fetcher, the pool may hold its
// report-only mark (report_only.go).
var fetchers = caddy.NewUsagePool()

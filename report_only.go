package jwtauth

// Report-only mode in GET /jwt_auth/status (README "Rolling out jwt_auth").
//
// The status endpoint reads only the key-source pool, so a report-only
// handler marks each key source it uses with a second pool entry beside the
// source's fetcher. The pool counts the holders exactly as it counts a
// fetcher's users: the mark is taken with the fetcher, given back by the same
// release, and gone with the last report-only handler. No other state is kept.

// reportOnlyMark is the value of a mark entry; it holds nothing.
type reportOnlyMark struct{}

// Destruct implements caddy.Destructor: a mark has nothing to release.
func (reportOnlyMark) Destruct() error { return nil }

// reportOnlyKey is the pool key of the mark of the source whose pool key is
// poolKey. A source's pool key is a JSON object, so the prefix keeps the two
// kinds of entry apart.
func reportOnlyKey(poolKey string) string { return "report_only:" + poolKey }

// markReportOnly takes a mark on the source whose pool key is poolKey, to be
// given back by release like the fetcher itself.
func (a *authenticator) markReportOnly(poolKey string) {
	key := reportOnlyKey(poolKey)
	fetchers.LoadOrStore(key, reportOnlyMark{})
	a.acquired = append(a.acquired, key)
}

// reportOnlyUsed reports whether a report-only handler uses the source sc.
func reportOnlyUsed(sc sourceConfig) bool {
	n, ok := fetchers.References(reportOnlyKey(sc.poolKey()))
	return ok && n > 0
}

#!/usr/bin/env bash
# End-to-end load benchmark: the dev Caddy with a baseline site (respond
# only) and two jwt_auth sites (the default token cache, and cache_size 0),
# loaded by wrk from a second process on the other core, contenders
# alternating within each round, medians printed with throughput and latency
# ratios against the baseline measured in the same run. See BENCHMARKS.md.
#
#   bash bench/run.sh                                   # defaults below, ~5 minutes
#   ALGS=ES256 SHAPES=idp CONNS=16 DURATION=3 ROUNDS=3 bash bench/run.sh
#
# Knobs (environment):
#   ALGS      algorithms                          "ES256 EdDSA RS256"
#   SHAPES    token shapes: idp (~1.1 KiB, IdP-shaped access token), small (~300 B)   "idp small"
#   CONNS     wrk connections, one run each       "16"
#   DURATION  seconds per wrk run                 3
#   ROUNDS    rounds per contender                3
#   TOKENS    distinct tokens per alg and shape   150000 (RS256: RS256_TOKENS, 60000:
#             signing RS256 costs ~1 ms a token, so its distinct default-cache runs
#             are shortened to the tokens they have, and say so)
#
# Modes, each with req/s, p50, p99 and p99/p50 (wrk --latency):
#   baseline        Caddy alone (respond), with the token in the header
#   repeated        default cache, one token repeated (a cache hit)
#   distinct        default cache, tokens that never repeat within the run
#   distinct_nc     cache_size 0, every request a full verification
#   haproxy         HAProxy's jwt_verify (OpenSSL) on the same key as PEM, one
#                   thread pinned like Caddy, distinct tokens: an outside peer,
#                   run for ES256 and RS256 when haproxy is installed
#                   (apt-get install haproxy) unless PEER=none. It checks the
#                   signature, alg, iss and exp, less than jwt_auth does.
# The ceiling of the distinct modes is 1 / (1/baseline + the raw stdlib
# signature check measured now by BenchmarkVerify/<alg>/stdlib).
set -euo pipefail
cd "$(dirname "$0")/.."

ALGS=${ALGS:-"ES256 EdDSA RS256"}
SHAPES=${SHAPES:-"idp small"}
CONNS=${CONNS:-"16"}
DURATION=${DURATION:-3}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-3}
TOKENS=${TOKENS:-150000}
RS256_TOKENS=${RS256_TOKENS:-60000}
PEER=${PEER:-haproxy}

command -v wrk >/dev/null || { echo "bench/run.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d)
caddy_pid=""
peer_pid=""
cleanup() {
	[ -n "$caddy_pid" ] && kill "$caddy_pid" 2>/dev/null && wait "$caddy_pid" 2>/dev/null
	[ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null && wait "$peer_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/gentokens" ./bench/gentokens

# Pin Caddy to core 0 (GOMAXPROCS=1) and wrk to core 1 when there are two,
# so the load generator never steals the server's CPU.
if [ "$(nproc)" -ge 2 ]; then server_cpu="taskset -c 0"; client_cpu="taskset -c 1"; else server_cpu=""; client_cpu=""; fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { sort -g | awk 'NR==1{min=$1} {max=$1} END {printf "%.0f–%.0f", min, max}'; }

# load conns seconds url out [wrk args...]: one wrk run; appends
# "rps p50_ms p99_ms wrapped" to out.
load() {
	local conns=$1 secs=$2 url=$3 out=$4; shift 4
	$client_cpu wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" "$@" | awk '
		function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
		/Requests\/sec/ {rps=$2}
		/^ +50%/ {p50=ms($2)}
		/^ +99%/ {p99=ms($2)}
		/^wrapped/ {w=$2}
		END {printf "%s %s %s %d\n", rps, p50, p99, w}' >>"$out"
}

start_caddy() { # dir
	local dir=$1
	cat >"$dir/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	persist_config off
	log {
		level ERROR
	}
}
http://127.0.0.1:18081 {
	respond "ok"
}
http://127.0.0.1:18082 {
	jwt_auth {
		issuer https://idp.example/
		jwks_file $dir/jwks.json
		audience api
	}
	respond "ok"
}
http://127.0.0.1:18083 {
	jwt_auth {
		issuer https://idp.example/
		jwks_file $dir/jwks.json
		audience api
		cache_size 0
	}
	respond "ok"
}
CADDY
	GOMAXPROCS=1 $server_cpu "$work/caddy" run --config "$dir/Caddyfile" >"$dir/caddy.log" 2>&1 &
	caddy_pid=$!
	for _ in $(seq 100); do
		curl -fs http://127.0.0.1:18081/ >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "caddy did not start:" >&2; cat "$dir/caddy.log" >&2; exit 1
}

stop_caddy() { kill "$caddy_pid"; wait "$caddy_pid" 2>/dev/null || true; caddy_pid=""; }

# start_peer dir alg: HAProxy on 127.0.0.1:18084 when it is installed, PEER
# is haproxy and its jwt_verify knows alg; returns 1 otherwise.
start_peer() {
	local dir=$1 alg=$2
	[ "$PEER" = haproxy ] && command -v haproxy >/dev/null || return 1
	case $alg in ES256 | RS256) ;; *) return 1 ;; esac
	cat >"$dir/haproxy.cfg" <<HAPROXY
global
	nbthread 1
defaults
	mode http
	timeout connect 1s
	timeout client 10s
	timeout server 10s
frontend jwt
	bind 127.0.0.1:18084
	http-request set-var(txn.bearer) http_auth_bearer
	http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
	http-request set-var(txn.now) date()
	http-request deny deny_status 401 unless { var(txn.alg) -m str $alg }
	http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$dir/pub.pem") -m int 1 }
	http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str "https://idp.example/" }
	http-request deny deny_status 401 if { var(txn.bearer),jwt_payload_query('\$.exp','int'),sub(txn.now) -m int lt 0 }
	http-request return status 200 content-type text/plain string "ok"
HAPROXY
	$server_cpu haproxy -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
	peer_pid=$!
	local token
	token=$(head -1 "$dir/tokens.txt")
	for _ in $(seq 50); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" http://127.0.0.1:18084/)" = 200 ] && return 0
		sleep 0.1
	done
	echo "haproxy did not accept the token:" >&2; cat "$dir/haproxy.log" >&2; exit 1
}

stop_peer() { [ -n "$peer_pid" ] && { kill "$peer_pid"; wait "$peer_pid" 2>/dev/null || true; }; peer_pid=""; }

# report alg shape conns mode file base ceiling: one table row of medians.
report() {
	local file=$5 base=$6 ceiling=$7
	local rps p50 p99 wrapped
	rps=$(cut -d' ' -f1 "$file" | median); p50=$(cut -d' ' -f2 "$file" | median); p99=$(cut -d' ' -f3 "$file" | median)
	wrapped=$(awk '{s+=$4} END {print s+0}' "$file")
	local vs_base vs_ceiling="—"
	vs_base=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2f", a/b}')
	[ "$ceiling" != "-" ] && vs_ceiling=$(awk -v a="$rps" -v c="$ceiling" 'BEGIN {printf "%.2f", a/c}')
	local note=""
	[ "$4" = distinct ] && [ "$wrapped" -gt 0 ] && note=" (tokens wrapped $wrapped×)"
	printf '%-6s %-5s %5s %-12s %8.0f %13s %8s %8s %8.2f %8.2f %8.2f%s\n' "$1" "$2" "$3" "$4" "$rps" "($(cut -d' ' -f1 "$file" | spread))" \
		"$vs_base" "$vs_ceiling" "$p50" "$p99" "$(awk -v a="$p99" -v b="$p50" 'BEGIN {print a/b}')" "$note"
}

printf '%-6s %-5s %5s %-12s %8s %13s %8s %8s %8s %8s %8s\n' alg shape conns mode "req/s" "(spread)" "÷base" "÷ceiling" "p50 ms" "p99 ms" "p99/p50"
for alg in $ALGS; do
	# The raw standard-library signature check, measured now on this machine.
	raw_ns=$(go test -run '^$' -bench "BenchmarkVerify/$alg/stdlib" -benchtime 2000x -count 5 . |
		awk '/ns\/op/ {print $3}' | median)
	n=$TOKENS
	[ "$alg" = RS256 ] && n=$RS256_TOKENS
	for shape in $SHAPES; do
		dir=$work/$alg-$shape
		mkdir -p "$dir"
		"$work/gentokens" -alg "$alg" -shape "$shape" -n "$n" -out "$dir"
		token=$(head -1 "$dir/tokens.txt")
		start_caddy "$dir"
		peer=false
		start_peer "$dir" "$alg" && peer=true
		next=1 # the first token of the file no distinct run has sent yet
		per_run=$((n / (ROUNDS * $(wc -w <<<"$CONNS"))))
		for conns in $CONNS; do
			for m in base rep dis nc peer; do : >"$work/$m"; done
			for _ in $(seq "$ROUNDS"); do # alternate contenders within each round
				load "$conns" "$DURATION" http://127.0.0.1:18081/ "$work/base" -H "Authorization: Bearer $token"
				load "$conns" "$DURATION" http://127.0.0.1:18082/ "$work/rep" -H "Authorization: Bearer $token"
				load "$conns" "$DURATION" http://127.0.0.1:18083/ "$work/nc" -s bench/distinct.lua -- "$dir/tokens.txt"
				$peer && load "$conns" "$DURATION" http://127.0.0.1:18084/ "$work/peer" -s bench/distinct.lua -- "$dir/tokens.txt"
				# Never more requests than fresh tokens: the cache_size 0 rate just
				# measured bounds this one, which does the same work and more.
				nc_rps=$(tail -1 "$work/nc" | cut -d' ' -f1)
				secs=$(awk -v n="$per_run" -v r="$nc_rps" -v d="$DURATION" 'BEGIN {s=int(n/(r*1.3)); if (s>d) s=d; if (s<1) s=1; print s}')
				load "$conns" "$secs" http://127.0.0.1:18082/ "$work/dis" -s bench/distinct.lua -- "$dir/tokens.txt" "$next" "$per_run"
				next=$((next + per_run))
				[ "$secs" -lt "$DURATION" ] && echo "# $alg $shape: distinct run shortened to ${secs}s (RS256_TOKENS/TOKENS)" >&2
			done
			base=$(cut -d' ' -f1 "$work/base" | median)
			ceiling=$(awk -v b="$base" -v r="$raw_ns" 'BEGIN {printf "%.0f", 1 / (1/b + r/1e9)}')
			report "$alg" "$shape" "$conns" baseline "$work/base" "$base" -
			report "$alg" "$shape" "$conns" repeated "$work/rep" "$base" -
			report "$alg" "$shape" "$conns" distinct "$work/dis" "$base" "$ceiling"
			report "$alg" "$shape" "$conns" distinct_nc "$work/nc" "$base" "$ceiling"
			$peer && report "$alg" "$shape" "$conns" haproxy "$work/peer" "$base" "$ceiling"
		done
		stop_caddy
		stop_peer
	done
	echo "# $alg raw stdlib verify: $(awk -v r="$raw_ns" 'BEGIN {printf "%.1f", r/1000}') µs (median of 5); ceiling = 1/(1/baseline + raw)"
done

#!/usr/bin/env bash
# End-to-end load benchmark: the dev Caddy with a baseline site (respond
# only) and jwt_auth sites, loaded by wrk from a second process on the other
# core, contenders alternating, medians printed with ratios against the
# baseline measured in the same run. See BENCHMARKS.md.
#
#   bash bench/run.sh                       # all algorithms, 1/16/256 connections
#   ALGS=ES256 CONNS=16 DURATION=3s ROUNDS=3 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ALGS=${ALGS:-"ES256 RS256 EdDSA"}
CONNS=${CONNS:-"1 16 256"}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
TOKENS=${TOKENS:-2000}

command -v wrk >/dev/null || { echo "bench/run.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d)
caddy_pid=""
cleanup() {
	[ -n "$caddy_pid" ] && kill "$caddy_pid" 2>/dev/null && wait "$caddy_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/gentokens" ./bench/gentokens

# Pin Caddy to core 0 (GOMAXPROCS=1) and wrk to core 1 when there are two,
# so the load generator never steals the server's CPU.
if [ "$(nproc)" -ge 2 ]; then server_cpu="taskset -c 0"; client_cpu="taskset -c 1"; else server_cpu=""; client_cpu=""; fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { sort -n | awk 'NR==1{min=$1} {max=$1} END {printf "%.0f–%.0f", min, max}'; }
rps() { awk '/Requests\/sec/ {print $2}'; }

load() { # conns url [wrk args...]
	local conns=$1 url=$2; shift 2
	$client_cpu wrk -t1 -c"$conns" -d"$DURATION" "$url" "$@" | rps
}

start_caddy() { # alg
	local dir=$work/$1
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

printf '%-6s %5s %12s %22s %8s %22s %8s %8s\n' alg conns "baseline" "repeated token" "ratio" "distinct tokens" "ceiling" "ratio"
for alg in $ALGS; do
	mkdir -p "$work/$alg"
	"$work/gentokens" -alg "$alg" -n "$TOKENS" -out "$work/$alg"
	token=$(head -1 "$work/$alg/tokens.txt")
	# The raw standard-library signature check, measured now on this machine.
	raw_ns=$(go test -run '^$' -bench "BenchmarkVerify/$alg/stdlib" -benchtime 2000x -count 5 . |
		awk '/ns\/op/ {print $3}' | median)
	start_caddy "$alg"
	for conns in $CONNS; do
		: >"$work/base" ; : >"$work/rep" ; : >"$work/dis"
		for _ in $(seq "$ROUNDS"); do   # alternate contenders within each round
			load "$conns" http://127.0.0.1:18081/ -H "Authorization: Bearer $token" >>"$work/base"
			load "$conns" http://127.0.0.1:18082/ -H "Authorization: Bearer $token" >>"$work/rep"
			load "$conns" http://127.0.0.1:18083/ -s bench/distinct.lua -- "$work/$alg/tokens.txt" >>"$work/dis"
		done
		base=$(median <"$work/base"); rep=$(median <"$work/rep"); dis=$(median <"$work/dis")
		ceiling=$(awk -v b="$base" -v r="$raw_ns" 'BEGIN {printf "%.0f", 1 / (1/b + r/1e9)}')
		printf '%-6s %5s %12.0f %12.0f (%8s) %8.2f %12.0f (%8s) %8.0f %8.2f\n' "$alg" "$conns" "$base" \
			"$rep" "$(spread <"$work/rep")" "$(awk -v a="$rep" -v b="$base" 'BEGIN {print a/b}')" \
			"$dis" "$(spread <"$work/dis")" "$ceiling" "$(awk -v a="$dis" -v c="$ceiling" 'BEGIN {print a/c}')"
	done
	stop_caddy
	echo "# $alg raw stdlib verify: $(awk -v r="$raw_ns" 'BEGIN {printf "%.1f", r/1000}') µs (median of 5)"
done

#!/usr/bin/env bash
# make bench-real: real-socket mode's request rate against nginx (Debian) on loopback,
# next to wrk (Debian) in the same run, with the same number of connections, keep-alive,
# one client thread each and the same duration (bench/bench-real.yaml: a closed loop of
# USERS connections, no think time). Each gets the machine to itself in turn. The last
# line is "real mode: N req/s, wrk: M req/s, ratio R" (R = N/M; the goal is R >= 0.8).
#   USERS=32 SECONDS=10 make bench-real
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-32}
secs=${SECONDS_RUN:-${SECS:-10}}
tmp=$(mktemp -d /tmp/lbchain-bench-real.XXXXXX)
trap 'bash scripts/standin-nginx.sh stop "$tmp/nginx" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
command -v wrk >/dev/null || { echo "bench-real: wrk is not installed (scripts/install-deps.sh)" >&2; exit 1; }
port=$(bash scripts/standin-nginx.sh start "$tmp/nginx")
echo "nodes: { web: \"127.0.0.1:$port\" }" > "$tmp/bind.yaml"
echo "== nginx on 127.0.0.1:$port; $users connections, keep-alive, ${secs} s each, one thread each"

./sim --real "$tmp/bind.yaml" --max-rate 100000000 --no-db --no-plots --no-pcap --quiet \
  --set "duration=${secs}s" --set "traffic.load.users=$users" --out "$tmp/out" \
  bench/bench-real.yaml
sum="$tmp/out/bench-real/summary.json"
n=$(jq '.variants[0].requests' "$sum")
ok=$(jq '.variants[0].outcomes["2xx"]' "$sum")
real_rps=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
echo "real mode: $n requests in ${secs} s ($ok 2xx): $real_rps req/s"

wrk -t1 -c"$users" -d"${secs}s" "http://127.0.0.1:$port/app1" > "$tmp/wrk.out"
wrk_rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$tmp/wrk.out")
sed 's/^/  wrk: /' "$tmp/wrk.out" | grep -E "Latency|Requests/sec|requests in"
ratio=$(awk -v a="$real_rps" -v b="$wrk_rps" 'BEGIN { printf "%.2f", a / b }')
echo "real mode: $real_rps req/s, wrk: $wrk_rps req/s, ratio $ratio"

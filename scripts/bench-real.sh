#!/usr/bin/env bash
# make bench-real: real-socket mode's request rate against nginx (Debian) on loopback,
# next to wrk (Debian) in the same run: the same number of connections, keep-alive, one
# client thread each, the same duration (bench/bench-real.yaml: a closed loop of USERS
# connections without think time, as wrk drives its connections). The two take turns,
# ROUNDS times (a shared machine's load drifts; alternating spreads it over both), and the
# medians are compared. Also printed: each tool's CPU time per request (user + system,
# from /usr/bin/time; real mode's includes building the scenario and writing its results,
# without the pictures, plots, pcap and results.db it does not need here), which depends
# less on the other processes on the machine than the rates do, and the load average
# before and after. The last line is "real mode: N req/s, wrk: M req/s, ratio R" (R = N/M;
# the goal is R >= 0.8).
#   USERS=32 SECS=5 ROUNDS=3 make bench-real     (SIM=path: another build of sim)
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-32}
secs=${SECS:-5}
rounds=${ROUNDS:-3}
sim=${SIM:-./sim}
tmp=$(mktemp -d /tmp/lbchain-bench-real.XXXXXX)
trap 'bash scripts/standin-nginx.sh stop "$tmp/nginx" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
command -v wrk >/dev/null || { echo "bench-real: wrk is not installed (scripts/install-deps.sh)" >&2; exit 1; }
port=$(bash scripts/standin-nginx.sh start "$tmp/nginx")
echo "nodes: { web: \"127.0.0.1:$port\" }" > "$tmp/bind.yaml"
echo "== nginx on 127.0.0.1:$port; $users connections, keep-alive, one client thread each;"
echo "   $rounds rounds of ${secs} s each, real mode and wrk taking turns; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %12s %12s %16s %16s\n" round "real req/s" "wrk req/s" "real us cpu/req" "wrk us cpu/req"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$tmp/real.rates"; : > "$tmp/wrk.rates"
for r in $(seq 1 "$rounds"); do
  rm -rf "$tmp/out"
  /usr/bin/time -f "%U %S" -o "$tmp/real.time" "$sim" --real "$tmp/bind.yaml" --max-rate 100000000 \
    --no-db --no-plots --no-pcap --no-pictures --quiet --set "duration=${secs}s" \
    --set "traffic.load.users=$users" --out "$tmp/out" bench/bench-real.yaml
  n=$(jq '.variants[0].requests' "$tmp/out/bench-real/summary.json")
  ok=$(jq '.variants[0].outcomes["2xx"]' "$tmp/out/bench-real/summary.json")
  [ "$n" = "$ok" ] || echo "bench-real: only $ok of $n requests answered 2xx" >&2
  real_rps=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  real_cpu=$(awk -v n="$n" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$tmp/real.time")

  /usr/bin/time -f "%U %S" -o "$tmp/wrk.time" wrk -t1 -c"$users" -d"${secs}s" \
    "http://127.0.0.1:$port/app1" > "$tmp/wrk.out"
  wrk_rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$tmp/wrk.out")
  wrk_n=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
  wrk_cpu=$(awk -v n="$wrk_n" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$tmp/wrk.time")
  printf "%-6s %12s %12s %16s %16s\n" "$r" "$real_rps" "$wrk_rps" "$real_cpu" "$wrk_cpu"
  echo "$real_rps" >> "$tmp/real.rates"
  echo "$wrk_rps" >> "$tmp/wrk.rates"
done
real_rps=$(median < "$tmp/real.rates")
wrk_rps=$(median < "$tmp/wrk.rates")
ratio=$(awk -v a="$real_rps" -v b="$wrk_rps" 'BEGIN { printf "%.2f", a / b }')
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "real mode: $real_rps req/s, wrk: $wrk_rps req/s, ratio $ratio"

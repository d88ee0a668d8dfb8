#!/usr/bin/env bash
# make bench-real: real-socket mode's request rate against nginx (Debian) on loopback,
# next to wrk (Debian) in the same run: the same number of connections, keep-alive, the
# same number of client threads (real mode --real-threads T, wrk -tT), the same duration
# (bench/bench-real.yaml: a closed loop of USERS connections without think time, as wrk
# drives its connections). Two thread counts are measured: one thread each, and THREADS
# each (default 2, wrk's own default). Within each round the four runs take turns (real
# and wrk at one thread, then at THREADS), ROUNDS times (a shared machine's load drifts;
# alternating spreads it over all of them), and the medians are compared. Also printed:
# each tool's CPU time per request (user + system, from /usr/bin/time; real mode's
# includes building the scenario and writing its results, without the pictures, plots,
# pcap and results.db it does not need here), which depends less on the other processes
# on the machine than the rates do, and the load average before and after. Then
# "T threads each: ..." (the THREADS comparison), "best of each: ..." (each tool's best
# median at either thread count), and the last line "real mode: N req/s, wrk: M req/s,
# ratio R" (R = N/M) at one client thread each: the comparison of the two clients' work
# per request, which does not depend on how many cores the machine has to spare for
# extra client threads beside nginx. The goal is R >= 0.8.
#   USERS=32 SECS=5 ROUNDS=3 THREADS=2 make bench-real     (SIM=path: another build of sim)
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-32}
secs=${SECS:-5}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
sim=${SIM:-./sim}
case "$threads" in ''|*[!0-9]*|0) echo "bench-real: THREADS must be an integer >= 1" >&2; exit 2;; esac
tmp=$(mktemp -d /tmp/lbchain-bench-real.XXXXXX)
trap 'bash scripts/standin-nginx.sh stop "$tmp/nginx" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
command -v wrk >/dev/null || { echo "bench-real: wrk is not installed (scripts/install-deps.sh)" >&2; exit 1; }
port=$(bash scripts/standin-nginx.sh start "$tmp/nginx")
echo "nodes: { web: \"127.0.0.1:$port\" }" > "$tmp/bind.yaml"
counts=1
[ "$threads" = 1 ] || counts="1 $threads"
echo "== nginx on 127.0.0.1:$port; $users connections, keep-alive; client threads each: ${counts/ /, then };"
echo "   $rounds rounds of ${secs} s each, real mode and wrk taking turns; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %8s %12s %12s %16s %16s\n" round threads "real req/s" "wrk req/s" "real us cpu/req" "wrk us cpu/req"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for t in $counts; do : > "$tmp/real.rates.$t"; : > "$tmp/wrk.rates.$t"; : > "$tmp/real.cpu.$t"; : > "$tmp/wrk.cpu.$t"; done
for r in $(seq 1 "$rounds"); do
  for t in $counts; do
    rm -rf "$tmp/out"
    /usr/bin/time -f "%U %S" -o "$tmp/real.time" "$sim" --real "$tmp/bind.yaml" --max-rate 100000000 \
      --real-threads "$t" --no-db --no-plots --no-pcap --no-pictures --quiet --set "duration=${secs}s" \
      --set "traffic.load.users=$users" --out "$tmp/out" bench/bench-real.yaml
    n=$(jq '.variants[0].requests' "$tmp/out/bench-real/summary.json")
    ok=$(jq '.variants[0].outcomes["2xx"]' "$tmp/out/bench-real/summary.json")
    [ "$n" = "$ok" ] || echo "bench-real: only $ok of $n requests answered 2xx" >&2
    real_rps=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    real_cpu=$(awk -v n="$n" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$tmp/real.time")

    /usr/bin/time -f "%U %S" -o "$tmp/wrk.time" wrk -t"$t" -c"$users" -d"${secs}s" \
      "http://127.0.0.1:$port/app1" > "$tmp/wrk.out"
    wrk_rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$tmp/wrk.out")
    wrk_n=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
    wrk_cpu=$(awk -v n="$wrk_n" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$tmp/wrk.time")
    printf "%-6s %8s %12s %12s %16s %16s\n" "$r" "$t" "$real_rps" "$wrk_rps" "$real_cpu" "$wrk_cpu"
    echo "$real_rps" >> "$tmp/real.rates.$t"
    echo "$wrk_rps" >> "$tmp/wrk.rates.$t"
    echo "$real_cpu" >> "$tmp/real.cpu.$t"
    echo "$wrk_cpu" >> "$tmp/wrk.cpu.$t"
  done
done
echo "== medians; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %8s %12s %12s %16s %16s %6s\n" "" threads "real req/s" "wrk req/s" "real us cpu/req" "wrk us cpu/req" ratio
for t in $counts; do
  rr=$(median < "$tmp/real.rates.$t")
  wr=$(median < "$tmp/wrk.rates.$t")
  echo "$rr $wr" > "$tmp/median.$t"
  printf "%-6s %8s %12s %12s %16s %16s %6s\n" median "$t" "$rr" "$wr" "$(median < "$tmp/real.cpu.$t")" \
    "$(median < "$tmp/wrk.cpu.$t")" "$(awk -v a="$rr" -v b="$wr" 'BEGIN { printf "%.2f", a / b }')"
done
line() { awk '{ printf "real mode: %s req/s, wrk: %s req/s, ratio %.2f\n", $1, $2, $1 / $2 }' "$tmp/median.$1"; }
# the best rate of each tool at either thread count, against each other
best() { awk -v c="$1" '{ print $c }' "$tmp"/median.* | sort -n | tail -1; }
rb=$(best 1); wb=$(best 2)
[ "$threads" = 1 ] || echo "$threads threads each: $(line "$threads")"
echo "best of each: real mode: $rb req/s, wrk: $wb req/s, ratio $(awk -v a="$rb" -v b="$wb" 'BEGIN { printf "%.2f", a / b }')"
line 1

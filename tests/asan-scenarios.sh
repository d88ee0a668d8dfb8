#!/usr/bin/env bash
# asan-scenarios.sh -- every scenario in scenarios/ run by a sim built with
# -fsanitize=address,undefined (`make asan` builds build-asan/sim and runs this), with loss
# and one-packet queues on every link of the run through the all-links key -- scenario links,
# cluster veths and vnet NICs alike -- and every output written (results.db, pcap, plots,
# report.html), so drops, retransmissions, the writers and the teardown of a run that ends
# with connections open all run under the sanitizers. Any sanitizer report fails the test,
# leaks included; so does an exit status other than 0 or 1 (expectations may fail under
# this much loss). Usage: bash tests/asan-scenarios.sh [SIM]  (default build-asan/sim)
set -u
SIM=${1:-build-asan/sim}
# One pass each: heavy loss (what once freed the capture under a dropped teardown RST),
# then a one-packet queue (1500 bytes) behind a 100 Mbit/s rate cap, with some loss.
IMPAIRMENTS=(
  'all-links={loss: 50%}'
  'all-links={loss: 2%, queue: 1500B, bandwidth: 100Mbps}'
)
# A sanitizer report exits with this status (and halts at the first report).
SAN_EXIT=86
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=$SAN_EXIT:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=$SAN_EXIT"
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$SIM" ]; then
  echo "asan-scenarios: $SIM is not built (make asan builds it)"
  exit 1
fi

for scn in scenarios/*.yaml; do
  name=$(basename "$scn" .yaml)
  size=()        # the production-sized cluster at 10 nodes and 100 Services (make bench
  [ "$name" = large-cluster ] &&   # runs it at full size)
    size=(--set 'cloud.aks.pools=[{name: system, count: 2}, {name: user, count: 8}]'
          --set cloud.aks.scale.services=100)
  for k in "${!IMPAIRMENTS[@]}"; do
    out="$tmp/$name-$k"
    "$SIM" -q --out "$out" --set "${IMPAIRMENTS[$k]}" "${size[@]}" "$scn" >"$out.log" 2>&1
    rc=$?
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$out.log" ||
       { [ "$rc" != 0 ] && [ "$rc" != 1 ]; }; then
      fail=$((fail + 1))
      echo "FAIL $name with ${IMPAIRMENTS[$k]}: exit $rc"
      grep -E -A25 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$out.log" | head -40 |
        sed 's/^/    /'
      [ "$rc" = 0 ] || [ "$rc" = 1 ] || tail -5 "$out.log" | sed 's/^/    /'
    elif [ ! -s "$out/$name/summary.json" ]; then
      fail=$((fail + 1))
      echo "FAIL $name with ${IMPAIRMENTS[$k]}: no summary.json written"
    else
      pass=$((pass + 1))
    fi
    rm -rf "$out"
  done
done
echo "asan-scenarios: $pass passed, $fail failed"
[ "$fail" = 0 ]

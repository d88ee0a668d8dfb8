#!/usr/bin/env bash
# cli.sh -- the command line as a user meets it: help and version, exit codes (0 ok,
# 1 expectation failed, 2 bad input), file:line:col errors, nothing written on bad input,
# --set, --variant, --trace-flow, --dump-iptables. Run by `make test` from the repo root.
set -u
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() {   # name, expected exit, command...
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" = "$want" ]; then pass=$((pass + 1))
  else fail=$((fail + 1)); echo "FAIL $name: exit $got, expected $want"; sed 's/^/    /' "$tmp/err" | head -5
  fi
}
contains() {   # name, file, text
  if grep -qF -- "$3" "$2"; then pass=$((pass + 1))
  else fail=$((fail + 1)); echo "FAIL $1: '$3' not in output"; sed 's/^/    /' "$2" | head -5
  fi
}

check help 0 ./sim --help;                  contains help-text "$tmp/out" "usage: sim"
check version 0 ./sim --version;            contains version-text "$tmp/out" "sim (lbchain)"
check no-args 2 ./sim
check missing-file 2 ./sim "$tmp/none.yaml"; contains missing-msg "$tmp/err" "none.yaml"

cat > "$tmp/bad.yaml" <<'Y'
name: bad
duration: 10s
nodes:
  a: { type: host }
links:
  - { between: [a, b], latncy: 1ms }
Y
mkdir -p "$tmp/res"
check bad-input 2 ./sim --out "$tmp/res" "$tmp/bad.yaml"
contains bad-position "$tmp/err" "bad.yaml:6:"
[ -z "$(ls -A "$tmp/res")" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL bad input wrote into --out"; }

check ok 0 ./sim -q --out "$tmp/res" scenarios/core-nat.yaml
[ -s "$tmp/res/core-nat/summary.json" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL no summary.json"; }
check one-variant 0 ./sim --check --variant masquerade scenarios/core-nat.yaml
contains one-variant-lines "$tmp/out" "expectations: 3 passed, 0 failed"
check bad-variant 2 ./sim --variant nope scenarios/core-nat.yaml
contains bad-variant-msg "$tmp/err" "no variant 'nope'"
# Breaking the NAT on purpose must fail the masquerade expectations: exit 1.
check expect-fails 1 ./sim --check --variant masquerade \
  --set 'nodes.nat.iptables=["-t nat -A PREROUTING -d 10.99.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.14:80"]' \
  scenarios/core-nat.yaml
contains expect-fails-line "$tmp/out" "FAIL  core-nat/masquerade"
check bad-set 2 ./sim --set 'traffic.browse.rate=fast' scenarios/core-nat.yaml
contains bad-set-msg "$tmp/err" "<command line>:1:"
check trace 0 ./sim -q --variant no-masquerade --trace-flow 1 scenarios/core-nat.yaml
contains trace-dnat "$tmp/out" "DNAT 10.99.0.10:80"
contains trace-rst "$tmp/out" "RST"
check dump 0 ./sim --dump-iptables nat scenarios/core-nat.yaml
contains dump-masq "$tmp/out" "-A POSTROUTING -o eth1 -j MASQUERADE"
check dump-unknown 2 ./sim --dump-iptables nosuch scenarios/core-nat.yaml

# Sweeps: 3 seeds x 2 variants in 2 worker processes; statistics printed; summary has 6 runs.
check seeds-jobs 0 ./sim --seeds 3 --jobs 2 --out "$tmp/sj" scenarios/core-nat.yaml
contains seeds-stats "$tmp/out" "across seeds (mean +- 95% confidence half-width"
n=$(grep -c '"seed":' "$tmp/sj/core-nat/summary.json" || true)
[ "$n" = 6 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL seeds-jobs: $n runs in summary.json, expected 6"; }
check bad-seeds 2 ./sim --seeds 0 scenarios/core-nat.yaml
check bad-jobs 2 ./sim --jobs x scenarios/core-nat.yaml
# Interrupted: SIGINT during a long run writes what it has, marked incomplete, exit 130.
./sim -q -v per-request --set duration=3600s --out "$tmp/int" scenarios/bench-chain.yaml \
  >"$tmp/int.out" 2>&1 &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid"
got=$?
[ "$got" = 130 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL interrupt: exit $got, expected 130"; }
grep -q '"complete":[[:space:]]*false' "$tmp/int/bench-chain/summary.json" 2>/dev/null \
  && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL interrupt: summary.json not marked incomplete"; }

# The causal chain of the AKS timeouts names the mechanism, from root cause to client.
check chain 0 ./sim --variant as-deployed scenarios/aks-dsr.yaml
contains chain-envoy "$tmp/out" "Envoy: no HTTPRoute matches"
contains chain-probe "$tmp/out" "probe HTTP GET / from 168.63.129.16"
contains chain-rule "$tmp/out" "rule http has no healthy backend"
contains chain-drop "$tmp/out" "(lb-no-healthy-backend)"
contains chain-client "$tmp/out" "client sees GET /app1 -> 504"

check explain-check 0 ./sim --check --explain --variant as-deployed scenarios/aks-dsr.yaml
contains explain-check-chain "$tmp/out" "rule http has no healthy backend"

# --validate: every check ./sim makes before running, then exit; nothing written.
check validate 0 ./sim --validate scenarios/core-nat.yaml scenarios/aks-dsr.yaml
contains validate-msg "$tmp/out" "scenarios/aks-dsr.yaml: 6 variants valid"
check validate-bad 2 ./sim --validate "$tmp/bad.yaml"
contains validate-bad-position "$tmp/err" "bad.yaml:6:"

# Seeds: all of 0 .. 2^64-1, nothing else; written exactly (summary.json: a JSON integer;
# results.db: INTEGER is signed 64-bit, so printf('%u', seed) gives the seed back).
check seed-negative 2 ./sim --seed -1 scenarios/core-nat.yaml
contains seed-negative-msg "$tmp/err" "--seed expects an integer from 0 to 18446744073709551615, got '-1'"
check seed-overflow 2 ./sim --seed 99999999999999999999 scenarios/core-nat.yaml
check seeds-overflow 2 ./sim --seed 18446744073709551615 --seeds 2 scenarios/core-nat.yaml
contains seeds-overflow-msg "$tmp/err" "would go past 18446744073709551615"
check seed-max 0 ./sim -q --no-pcap --no-plots -v masquerade --seed 18446744073709551615 \
  --out "$tmp/seed" scenarios/core-nat.yaml
contains seed-max-json "$tmp/seed/core-nat/summary.json" '"seed":	18446744073709551615'
[ "$(sqlite3 "$tmp/seed/core-nat/results.db" "select printf('%u', seed) from runs")" = 18446744073709551615 ] \
  && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL seed-max-db: results.db does not give the seed back"; }
# through --jobs workers too (the transfer keeps every digit)
check seed-jobs 0 ./sim -q --no-pcap --no-plots --no-db -v masquerade --seed 9007199254740993 \
  --seeds 2 --jobs 2 --out "$tmp/seedj" scenarios/core-nat.yaml
contains seed-jobs-1 "$tmp/seedj/core-nat/summary.json" '"seed":	9007199254740993'
contains seed-jobs-2 "$tmp/seedj/core-nat/summary.json" '"seed":	9007199254740994'

# Ctrl-C / SIGTERM while loading and validating: exit 130 within a second, nothing written.
# Two slow inputs: a big file (60,000 hosts on links to one router: seconds to load) and
# a small one whose 40 variants each build 20,000 nodes (seconds to validate).
awk 'BEGIN { print "name: slow-load\nduration: 10s\nnodes:\n  r: { type: router }";
             for (i = 0; i < 60000; i++) printf "  h%d: { type: host }\n", i;
             print "links:"; for (i = 0; i < 60000; i++) printf "  - { between: [h%d, r] }\n", i }' \
  > "$tmp/slow-load.yaml"
awk 'BEGIN { print "name: slow-validate\nduration: 10s\nnodes:\n  r: { type: router }\n" \
                   "  h: { type: host, count: 20000 }\nlinks:\n  - { between: [h, r] }\nvariants:";
             for (i = 0; i < 40; i++) printf "  v%d: { set: { links.0.latency: %dus } }\n", i, i + 1 }' \
  > "$tmp/slow-validate.yaml"
stop_during_load() {   # name, signal, delay (s), scenario
  local name=$1 sig=$2 delay=$3 file=$4
  rm -rf "$tmp/stop" && mkdir -p "$tmp/stop"
  ./sim --out "$tmp/stop" "$file" >"$tmp/stop.out" 2>"$tmp/stop.err" &
  local pid=$!
  sleep "$delay"
  local t0 t1 got
  t0=$(date +%s%N)
  kill "-$sig" "$pid"
  wait "$pid"
  got=$?
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  if [ "$got" = 130 ] && [ "$ms" -le 1000 ] && [ -z "$(ls -A "$tmp/stop")" ] &&
     grep -q "interrupted while loading and validating" "$tmp/stop.err"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name: exit $got after $ms ms (want 130 within 1000 ms, nothing in --out: $(ls -A "$tmp/stop"))"
    sed 's/^/    /' "$tmp/stop.err" | head -3
  fi
}
stop_during_load stop-loading INT 0.5 "$tmp/slow-load.yaml"
stop_during_load stop-loading-term TERM 1.5 "$tmp/slow-load.yaml"
stop_during_load stop-validating INT 2 "$tmp/slow-validate.yaml"

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]

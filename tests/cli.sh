#!/usr/bin/env bash
# cli.sh -- the command line as a user meets it: help and version, exit codes (0 ok,
# 1 expectation failed, 2 bad input), file:line:col errors, nothing written on bad input,
# --set (bad overrides and bad --real bindings files: file:line:col, nothing written),
# --variant, --trace-flow, --dump-iptables, --validate, exact seeds, a stop while
# loading (exit 130, nothing written), unique names; and results never lost: signals with
# --jobs, a worker killed with -9, two sims sharing --out, a hanging gnuplot, a full disk
# (a tmpfs, when root), the progress line on a narrow terminal. Run by `make test` from
# the repo root.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib.sh

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
# Bad --set overrides and bad bindings files (--real): exit 2, file:line:col of the
# mistake (a wrong key or an unknown name: the key's), and nothing written into --out.
# Every bindings file here fails before anything could be sent.
bad_input() {   # NAME WANT-TEXT ARGS...
  local name=$1 want=$2
  shift 2
  rm -rf "$tmp/nothing"
  check "$name" 2 ./sim --out "$tmp/nothing" "$@"
  contains "$name-msg" "$tmp/$name.err" "$want"
  [ ! -e "$tmp/nothing" ] && ok || bad "$name wrote into --out: $(ls -A "$tmp/nothing")"
}
bad_input set-bad-value "<command line>:1:21: error: rate: expected a rate like 50/s" \
  --set 'traffic.browse.rate=fast' scenarios/core-nat.yaml
bad_input set-no-equals "<command line>:1:1: error: bad override 'nope'; expected KEY=VALUE" \
  --set nope scenarios/core-nat.yaml
bad_input set-no-key "<command line>:1:1: error: bad override '=5'" \
  --set =5 scenarios/core-nat.yaml
bad_input set-bad-yaml "<command line>:1:11: error: invalid YAML" \
  --set 'duration=[' scenarios/core-nat.yaml
bad_input set-control-char "<command line>:1:11: error: control character 0x01" \
  --set $'duration=1\x01s' scenarios/core-nat.yaml
bad_input set-unknown-key "<command line>:1:16: error: unknown key 'rat' in traffic 'browse' (http-client); did you mean 'rate'?" \
  --set 'traffic.browse.rat=5/s' scenarios/core-nat.yaml
bad_input set-no-such-name "<command line>:1:7: error: cannot set 'nodes.nope.x': nodes has no 'nope'" \
  --set 'nodes.nope.x=1' scenarios/core-nat.yaml
bad_input set-empty-component "<command line>:1:9: error: bad key path 'traffic..rate'" \
  --set 'traffic..rate=5/s' scenarios/core-nat.yaml
# a variant's set: key points at its wrong component when written plain; at its quote when
# quoted (escapes may stand between)
mkdir -p "$tmp/vset"
cp -r scenarios/k8s scenarios/aks "$tmp/vset/"
sed 's/set: { cloud.aks.gateway-replicas: 3 }/set: { cloud.aks.gateway-replica: 3 }/' \
  scenarios/aks-dsr.yaml > "$tmp/vset/plain.yaml"
line=$(grep -n 'gateway-replica:' "$tmp/vset/plain.yaml" | cut -d: -f1)
bad_input variant-set-plain "plain.yaml:$line:22: error: unknown key 'gateway-replica' in cloud 'aks'" \
  "$tmp/vset/plain.yaml"
sed 's/set: { cloud.aks.gateway-replicas: 3 }/set: { "cloud.aks.gateway-replica": 3 }/' \
  scenarios/aks-dsr.yaml > "$tmp/vset/quoted.yaml"
bad_input variant-set-quoted "quoted.yaml:$line:12: error: unknown key 'gateway-replica' in cloud 'aks'" \
  "$tmp/vset/quoted.yaml"
printf 'nodes:\n  web0: { address: 127.0.0.1, prts: {80: 1} }\n' > "$tmp/key.bind.yaml"
bad_input bind-unknown-key "key.bind.yaml:2:31: error: nodes: web0: unknown key 'prts' (did you mean 'ports'?)" \
  --real "$tmp/key.bind.yaml" scenarios/core-nat.yaml
printf 'unbound: simulated\nnodes:\n  clinet0: 127.0.0.1\n' > "$tmp/name.bind.yaml"
bad_input bind-unknown-name "name.bind.yaml:3:3: error: nodes: 'clinet0' is not a node of variant masquerade (did you mean 'client0'?)" \
  --real "$tmp/name.bind.yaml" scenarios/core-nat.yaml
printf 'ports:\n  80: 8080\n  http: 8080\n' > "$tmp/port.bind.yaml"
bad_input bind-port-key "port.bind.yaml:3:3: error: ports: 'http' is not a port number (1-65535)" \
  --real "$tmp/port.bind.yaml" scenarios/core-nat.yaml
printf 'unbound: simulated\nno\0des: {}\n' > "$tmp/nul.bind.yaml"
bad_input bind-nul-byte "nul.bind.yaml:2:3: error: a NUL byte" \
  --real "$tmp/nul.bind.yaml" scenarios/core-nat.yaml
printf 'nodes: {}\n---\nnodes: {}\n' > "$tmp/docs.bind.yaml"
bad_input bind-two-docs "docs.bind.yaml:3:1: error: a bindings file holds one YAML document" \
  --real "$tmp/docs.bind.yaml" scenarios/core-nat.yaml
check trace 0 ./sim -q --variant no-masquerade --trace-flow 1 scenarios/core-nat.yaml
contains trace-dnat "$tmp/out" "DNAT 10.99.0.10:80"
contains trace-rst "$tmp/out" "RST"
# Each hop names the route it used: the client's default route, r1's route to the NAT's
# extra address, the NAT's connected route to web0.
contains trace-route-sender "$tmp/out" "client0  send to 10.99.0.10: route default via 10.0.0.2 dev eth0"
contains trace-route-router "$tmp/out" "r1  forward to 10.99.0.10: route 10.99.0.10/32 via 10.0.0.10 dev eth2"
contains trace-route-connected "$tmp/out" "nat  forward to 10.0.0.14: route 10.0.0.12/30 dev eth1"
# Routing like real hosts: with explicit routing and only a route to the VIP, the client
# has no route to the server that answers directly, so it sends no RST (dropped no-route).
check trace-no-route 0 ./sim -q --variant no-masquerade --trace-flow 1 \
  --set 'nodes.client.routing=explicit' --set 'nodes.client.routes=[{to: 10.99.0.10/32, dev: eth0}]' \
  scenarios/core-nat.yaml
contains trace-no-route-line "$tmp/out" "client0  send to 10.0.0.14: no route"
contains trace-no-route-drop "$tmp/out" "DROP no-route (client0 has no route to 10.0.0.14)"
# --describe gives a blackhole route its type.
check describe-route-type 0 ./sim --describe scenarios/routed-lan.yaml
contains describe-route-type-json "$tmp/out" '"blackhole"'
# A next hop that is not on a connected subnet: exit 2 at its position.
check bad-gateway 2 ./sim --check --set 'nodes.r1.gateway=10.9.9.1' scenarios/core-nat.yaml
contains bad-gateway-msg "$tmp/err" "<command line>:1:18: error: gateway 10.9.9.1 is not on a connected subnet of node 'r1'"
check dump 0 ./sim --dump-iptables nat scenarios/core-nat.yaml
contains dump-masq "$tmp/out" "-A POSTROUTING -o eth1 -j MASQUERADE"
check dump-unknown 2 ./sim --dump-iptables nosuch scenarios/core-nat.yaml
contains dump-unknown-lists "$tmp/err" "the variant's nodes: client0"

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

# ---- results are never lost ----
# Waits (at most 10 s) until process $1 has $2 children.
wait_children() {
  local i
  for i in $(seq 100); do [ "$(pgrep -P "$1" | wc -l)" -ge "$2" ] && return 0; sleep 0.1; done
  return 1
}
# Waits (at most 30 s) for background process $1 to end; kills its group if it does not.
# Sets $got to its exit status.
reap() {
  local i
  for i in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then echo "    (still running after 30 s: killed)"; kill -9 -- -"$1" 2>/dev/null; fi
  wait "$1"
  got=$?
}
runs_with() {   # results.db, status: how many runs have it
  sqlite3 "$1" "SELECT count(*) FROM runs WHERE status = '$2'" 2>/dev/null || echo 0
}

# SIGINT with --jobs: to the parent only, to one worker only, to the whole process group
# (a terminal's Ctrl-C). Both runs' results arrive, both are marked incomplete everywhere.
for who in parent worker group; do
  out="$tmp/sig-$who"
  setsid ./sim --jobs 2 --no-pcap --set duration=3600s --out "$out" scenarios/bench-chain.yaml \
    >"$out.out" 2>"$out.err" &
  pid=$!
  wait_children "$pid" 2 || bad "sig-$who: no workers started"
  sleep 1
  case $who in
    parent) kill -INT "$pid" ;;
    worker) kill -INT "$(pgrep -P "$pid" | head -1)" ;;
    group)  kill -INT -- -"$pid" ;;
  esac
  reap "$pid"
  [ "$got" = 130 ] && ok || { bad "sig-$who: exit $got, expected 130"; sed 's/^/    /' "$out.err" | head -5; }
  n=$(grep -c '"complete":[[:space:]]*false' "$out/bench-chain/summary.json" 2>/dev/null)
  [ "$n" = 2 ] && ok || bad "sig-$who: $n incomplete runs in summary.json, expected 2"
  n=$(runs_with "$out/bench-chain/results.db" incomplete)
  [ "$n" = 2 ] && ok || bad "sig-$who: $n incomplete runs in results.db, expected 2"
  n=$(grep -c '^INCOMPLETE' "$out.out")
  [ "$n" = 2 ] && ok || bad "sig-$who: $n INCOMPLETE lines in the table, expected 2"
  [ -s "$out/bench-chain/report.html" ] && ok || bad "sig-$who: no report.html"
done

# A worker killed with -9: its run is named with the signal, everything else is written,
# exit 3. One variant runs for an hour of simulated time, the other for a second.
sed -e 's/^variants:$/variants:\n  long: { set: { duration: 3600s } }/' \
    -e '/^expect:/,$d' -e '/^  keepalive: {}$/d' scenarios/bench-chain.yaml >"$tmp/sl.yaml"
out="$tmp/kill9"
setsid ./sim --jobs 2 --no-pcap --out "$out" "$tmp/sl.yaml" >"$out.out" 2>"$out.err" &
pid=$!
wait_children "$pid" 2
for i in $(seq 100); do [ "$(pgrep -P "$pid" | wc -l)" = 1 ] && break; sleep 0.1; done   # short one done
kill -9 "$(pgrep -P "$pid")"
reap "$pid"
[ "$got" = 3 ] && ok || { bad "kill9: exit $got, expected 3"; sed 's/^/    /' "$out.err" | head -5; }
contains kill9-msg "$out.err" "run bench-chain/long seed 1 died: its worker process"
contains kill9-signal "$out.err" "killed by signal 9"
contains kill9-table "$out.out" "LOST"
contains kill9-summary "$out/bench-chain/summary.json" '"output":	"run long seed 1"'
contains kill9-kept "$out/bench-chain/summary.json" '"name":	"per-request"'
[ "$(runs_with "$out/bench-chain/results.db" complete)" = 1 ] && ok || bad "kill9: the finished run is not in results.db"
[ -s "$out/bench-chain/report.html" ] && ok || bad "kill9: no report.html"
if command -v gnuplot >/dev/null; then
  [ -s "$out/bench-chain/latency-cdf.png" ] && ok || bad "kill9: no plots for the finished run"
fi

# Two processes sharing --out: the second is refused (exit 2, the holder's pid) and writes
# nothing; the first keeps every output. Another scenario in the same --out is not blocked.
out="$tmp/shared"
./sim -q --no-pcap -v per-request --set duration=3600s --out "$out" scenarios/bench-chain.yaml \
  >"$out.out" 2>"$out.err" &
pid=$!
for i in $(seq 100); do [ -s "$out/bench-chain/.lock" ] && break; sleep 0.1; done
check shared-second 2 timeout 60 ./sim -q --out "$out" scenarios/bench-chain.yaml
contains shared-msg "$tmp/err" "bench-chain is in use by pid $pid"
check shared-other 0 timeout 60 ./sim -q --no-pcap --out "$out" scenarios/core-nat.yaml
kill -INT "$pid"
reap "$pid"
[ "$got" = 130 ] && ok || bad "shared: first run exit $got, expected 130"
[ "$(sqlite3 "$out/bench-chain/results.db" 'SELECT count(*) FROM runs')" = 1 ] && ok \
  || bad "shared: the refused run wrote into results.db"
if command -v gnuplot >/dev/null; then
  [ -s "$out/bench-chain/latency-cdf.png" ] && [ -s "$out/bench-chain/outcomes.svg" ] && ok \
    || bad "shared: the first run's plots are missing"
fi

# A gnuplot that hangs: killed after --plot-timeout, reported; everything else written, exit 0.
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\nexec sleep 86421\n' >"$tmp/fakebin/gnuplot"
chmod +x "$tmp/fakebin/gnuplot"
PATH="$tmp/fakebin:$PATH" check gnuplot-hang 0 timeout 60 ./sim -q --plot-timeout 1 --out "$tmp/hang" scenarios/core-nat.yaml
contains gnuplot-hang-msg "$tmp/err" "gnuplot did not finish in 1 s: plots skipped"
contains gnuplot-hang-summary "$tmp/hang/core-nat/summary.json" '"reason":	"gnuplot did not finish in 1 s: plots skipped"'
contains gnuplot-hang-report "$tmp/hang/core-nat/report.html" "gnuplot did not finish in 1 s"
[ -s "$tmp/hang/core-nat/trace-masquerade.pcap" ] && ok || bad "gnuplot-hang: pcap missing"
pgrep -f "sleep 86421" >/dev/null && bad "gnuplot-hang: the fake gnuplot is still running" || ok
check bad-plot-timeout 2 ./sim --plot-timeout 0 scenarios/core-nat.yaml

# A full disk (a small tmpfs; needs root): the real cause, the rest written, exit 4.
mnt="$tmp/mnt"
mkdir -p "$mnt"
if mount -t tmpfs -o size=3m tmpfs "$mnt" 2>/dev/null; then
  trap 'umount "$mnt" 2>/dev/null; rm -rf "$tmp"' EXIT
  check full-pcap 4 timeout 60 ./sim -q --out "$mnt" scenarios/core-nat.yaml
  contains full-pcap-msg "$tmp/err" "trace-masquerade.pcap: No space left on device"
  contains full-pcap-summary "$mnt/core-nat/summary.json" '"output":	"trace-masquerade.pcap"'
  for f in summary.json report.html results.db trace-no-masquerade.pcap; do
    [ -s "$mnt/core-nat/$f" ] && ok || bad "full-pcap: $f not written"
  done
  [ -e "$mnt/core-nat/trace-masquerade.pcap" ] && bad "full-pcap: a partial pcap" || ok
  umount "$mnt"
  mount -t tmpfs -o size=200k tmpfs "$mnt"
  check full-all 4 timeout 60 ./sim -q --no-pictures --out "$mnt" scenarios/core-nat.yaml
  contains full-db-msg "$tmp/err" "database or disk is full (No space left on device)"
  if command -v gnuplot >/dev/null; then
    grep -q 'cannot write .*\.\(png\|svg\): No space left on device' "$tmp/err" && ok \
      || bad "full-all: plots do not say 'No space left on device'"
  fi
  contains full-all-line "$tmp/err" 'summary.json lists them under "missing"'
  contains full-all-summary "$mnt/core-nat/summary.json" '"kind":	"write-failed"'
  umount "$mnt"
else
  echo "cli: cannot mount a tmpfs (not root?): disk-full checks skipped"
fi

# The progress line on a narrow terminal with a long label: never as wide as the terminal,
# shortened in the middle, erased at the end (stdout elsewhere: the pty sees stderr only).
if command -v script >/dev/null; then
  sed 's/^name: bench-chain/name: a-scenario-name-far-too-long-for-a-narrow-terminal-of-fifty-columns/' \
    scenarios/bench-chain.yaml >"$tmp/longname.yaml"
  # an hour of simulated time, drawn about once a wall-second, interrupted after the
  # second drawing (at most 30 s)
  timeout 60 script -qec "stty cols 50; ./sim --no-pcap --no-plots --no-pictures --no-db -v per-request \
    --set duration=3600s --out '$tmp/tty' '$tmp/longname.yaml' >/dev/null & p=\$!; \
    for i in \$(seq 300); do [ \$(tr '\r' '\n' <'$tmp/tty.out' | grep -c %) -ge 2 ] && break; \
    sleep 0.1; done; kill -INT \$p; wait \$p" /dev/null >"$tmp/tty.out"
  widest=$(tr '\r' '\n' <"$tmp/tty.out" | awk '{ if (length > w) w = length } END { print w + 0 }')
  [ "$widest" -le 49 ] && ok || bad "progress: a line of $widest columns on a 50-column terminal"
  [ "$(tr '\r' '\n' <"$tmp/tty.out" | grep -c '%')" -ge 2 ] && ok || bad "progress: drawn fewer than twice"
  contains progress-shortened "$tmp/tty.out" "..."
  tr '\r' '\n' <"$tmp/tty.out" | grep -v '^$' | tail -1 | grep -qx ' *' && ok \
    || bad "progress: not erased at the end"
fi

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
contains validate-msg "$tmp/out" "scenarios/aks-dsr.yaml: 9 variants valid"
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
stop_during_load stop-loading-term TERM 0.5 "$tmp/slow-load.yaml"
stop_during_load stop-validating INT 2 "$tmp/slow-validate.yaml"

# Unique names and addresses: a collision is exit 2 naming both definitions, never an
# abort; a 97-node pool (its nodes reach the old fixed LB frontend .100) works, since the
# internal LB takes the first free address of the node subnet, as Azure allocates it.
check dup-cluster-nodes 2 ./sim --check \
  --set 'cloud.aks2={type: k8s-cluster, vnet: vnet, pools: [{name: user, count: 2}]}' scenarios/aks-dsr.yaml
contains dup-cluster-msg "$tmp/err" "<command line>:1:52: error: k8s-cluster 'aks2' pool 'user' node 0: node name 'aks-user-0' is already taken by node 'aks-user-0' of k8s-cluster 'aks' (scenarios/aks-dsr.yaml:46:3)"
# The kernel profile: a version that is not one, a sysctl out of the kernel's range, an
# unknown node image -- exit 2 at the value's line:col
check bad-kernel 2 ./sim --check --set 'nodes.client.kernel=six' scenarios/aks-dsr.yaml
contains bad-kernel-msg "$tmp/err" "<command line>:1:21: error: kernel 'six': expected a Linux version like \"5.15\" or \"6.6\""
check bad-linear 2 ./sim --check --set 'nodes.client.tcp={syn-linear-timeouts: 300}' scenarios/aks-dsr.yaml
contains bad-linear-msg "$tmp/err" "tcp syn-linear-timeouts: expected a whole number from 0 to 127; got 300"
check bad-early-retrans 2 ./sim --check --set 'nodes.client.tcp={early-retrans: 5}' scenarios/aks-dsr.yaml
contains bad-early-retrans-msg "$tmp/err" "<command line>:1:34: error: tcp early-retrans: expected a whole number from 0 to 4; got 5"
check bad-image 2 ./sim --check --set 'cloud.aks.node-image=windows' scenarios/aks-dsr.yaml
contains bad-image-msg "$tmp/err" "node-image"
# keepalive sysctls: whole seconds (the sysctl's unit), probes a u8; a pod's
# securityContext.sysctls before Kubernetes 1.29 (unsafe: kubelet refuses the pod)
check bad-ka-time 2 ./sim --validate --set 'nodes.client.tcp={keepalive-time: 1500ms}' scenarios/eks-idle-timeout.yaml
contains bad-ka-time-msg "$tmp/err" "<command line>:1:35: error: tcp keepalive-time: expected whole seconds from 1s to 2147483s"
check bad-ka-probes 2 ./sim --validate --set 'nodes.client.tcp={keepalive-probes: 256}' scenarios/eks-idle-timeout.yaml
contains bad-ka-probes-msg "$tmp/err" "tcp keepalive-probes: expected a whole number from 0 to 255; got 256"
check bad-node-sysctl 2 ./sim --validate --set 'cloud.eks.node-sysctls={keepalive-intvl: 0s}' scenarios/eks-idle-timeout.yaml
contains bad-node-sysctl-msg "$tmp/err" "node-sysctls keepalive-intvl: expected whole seconds"
# ICMP rate-limit sysctls: icmp_ratelimit in whole ms, the counts from 0; on a cluster's
# nodes only (not safe sysctls: gateway-sysctls has no icmp)
check bad-icmp-ratelimit 2 ./sim --check --set 'nodes.client.icmp={ratelimit: 1500us}' scenarios/aks-dsr.yaml
contains bad-icmp-ratelimit-msg "$tmp/err" "<command line>:1:31: error: icmp ratelimit: expected whole milliseconds from 0ms to 2147483647ms (the sysctl is in ms)"
check bad-icmp-ratemask 2 ./sim --check --set 'nodes.client.icmp={ratemask: 0x1g}' scenarios/aks-dsr.yaml
contains bad-icmp-ratemask-msg "$tmp/err" "icmp ratemask: expected a whole number like 0x1818 or 6168"
check bad-node-icmp 2 ./sim --validate --set 'cloud.eks.node-sysctls={icmp: {msgs-burst: -2}}' scenarios/eks-idle-timeout.yaml
contains bad-node-icmp-msg "$tmp/err" "<command line>:1:44: error: node-sysctls icmp msgs-burst: expected a whole number from 0 to 2147483647; got -2"
check gateway-icmp 2 ./sim --validate --set 'cloud.eks.gateway-sysctls={icmp: {ratelimit: 250ms}}' scenarios/eks-idle-timeout.yaml
contains gateway-icmp-msg "$tmp/err" "unknown key 'icmp'"
check node-icmp 0 ./sim --validate --set 'cloud.eks.node-sysctls={icmp: {ratelimit: 250ms, ratemask: 0x1810}}' scenarios/eks-idle-timeout.yaml
check unsafe-sysctl 2 ./sim --validate --set 'cloud.eks.kubernetes-version="1.28"' -v pod-sysctl-keepalive scenarios/eks-idle-timeout.yaml
contains unsafe-sysctl-msg "$tmp/err" "gateway-sysctls: net.ipv4.tcp_keepalive_* are safe sysctls from Kubernetes 1.29; on 1.28 kubelet refuses the pod (SysctlForbidden)"
# a conntrack entry forgotten under an idle connection: the causal chain names the
# expiry, the mid-stream pickup, the NAT chosen afresh and the pod's RST
check ct-pickup-chain 0 ./sim -q --explain --no-expect --no-db --no-pcap --no-pictures --no-plots \
  --out "$tmp/ctp" -v as-deployed --set duration=3720s scenarios/eks-conntrack-idle.yaml
contains ct-expiry-note "$tmp/out" "ESTABLISHED without a packet for 3600 s (nf_conntrack_tcp_timeout_established)"
contains ct-pickup-note "$tmp/out" "picked up as a new connection (nf_conntrack_tcp_loose=1), its NAT chosen afresh by the rules"
contains ct-pickup-snat "$tmp/out" "picked-up connection: SNAT 10.0.96.4:59688 -> 10.0.0.4:"
contains ct-pickup-rst "$tmp/out" "TCP RST sent (ACK for no connection (listener))"
# rolling updates: an unknown Deployment, a malformed maxSurge, both fenceposts 0
check rollout-nodep 2 ./sim --validate --set 'cloud.aks.rollouts=[{at: 1s, deployment: istio-ingress/nope}]' scenarios/aks-etp-local-drain.yaml
contains rollout-nodep-msg "$tmp/err" "<command line>:1:42: error: rollout: no Deployment istio-ingress/nope with pods in the cluster"
check rollout-surge 2 ./sim --validate --set 'cloud.aks.rollouts=[{at: 1s, deployment: istio-ingress/mtkc-gateway-istio, max-surge: lots}]' scenarios/aks-etp-local-drain.yaml
contains rollout-surge-msg "$tmp/err" "max-surge 'lots': expected a number or a percentage like 25%"
check rollout-zero 2 ./sim --validate --set 'cloud.aks.rollouts=[{at: 1s, deployment: istio-ingress/mtkc-gateway-istio, max-surge: 0, max-unavailable: 0%}]' scenarios/aks-etp-local-drain.yaml
contains rollout-zero-msg "$tmp/err" "max-surge and max-unavailable resolve to 0 for 2 replicas"
check dup-host-node 2 ./sim --check --set 'nodes.aks-user-0={type: host}' scenarios/aks-dsr.yaml
contains dup-host-msg "$tmp/err" "is already taken by host 'aks-user-0' (<command line>:1:7)"
check big-pool 0 ./sim --check \
  --set 'cloud.aks.pools=[{name: system, count: 1}, {name: user, count: 97}]' scenarios/aks-dsr.yaml
contains big-pool-all-pass "$tmp/out" "expectations: 18 passed, 0 failed"

# Request kinds and expectations on what came back: bad ones are exit 2 with the position
# of the expectation or of the kind's key, nothing written.
mkdir -p "$tmp/kinds-res"
kinds_yaml() {   # kinds_yaml EXPECTATION [KIND]
  cat > "$tmp/kinds.yaml" <<Y
name: kinds
duration: 3s
nodes:
  client: { type: host }
  web: { type: host }
links:
  - { between: [client, web], latency: 1ms }
apps:
  srv: { type: http-server, on: web, locations: [ { path: /a, body: alpha, headers: ["X-Served-By: web-a"] }, { path: /b, body: beta } ] }
traffic:
  browse:
    type: http-client
    from: client
    to: web
    rate: 50/s
    requests-mix:
      - { weight: 3, path: /a }
      - ${2:-"{ weight: 1, method: POST, path: /b, body: x=1 }"}
expect:
  "*":
    - 'browse.status_2xx_ratio == 1'
    - '$1'
Y
}
kinds_yaml 'browse.body_match_ratio("alpha") >= 0.6'
check kinds-ok 0 ./sim --check "$tmp/kinds.yaml"
contains kinds-ok-share "$tmp/out" 'browse.body_match_ratio("alpha") >= 0.6  -- 0.7'
kinds_yaml 'browse.header_match_ratio("x-served-by", "web-a") <= 0.1'
check kinds-header-fails 1 ./sim --check "$tmp/kinds.yaml"
kinds_yaml 'browse.bodymatch_ratio("alpha") >= 0.6'
check kinds-unknown-func 2 ./sim --out "$tmp/kinds-res" "$tmp/kinds.yaml"
contains kinds-unknown-func-msg "$tmp/err" "kinds.yaml:22:7: error: bad expectation 'browse.bodymatch_ratio(\"alpha\") >= 0.6': unknown function 'bodymatch_ratio'; did you mean 'body_match_ratio'?"
kinds_yaml 'browse.header_match_ratio("x-served-by") >= 0.6'
check kinds-arg-count 2 ./sim --check "$tmp/kinds.yaml"
contains kinds-arg-count-msg "$tmp/err" "kinds.yaml:22:7: error: bad expectation 'browse.header_match_ratio(\"x-served-by\") >= 0.6': header_match_ratio takes 2 arguments, got 1"
kinds_yaml 'browse.body_match_ratio(alpha) >= 0.6'
check kinds-unquoted 2 ./sim --check "$tmp/kinds.yaml"
contains kinds-unquoted-msg "$tmp/err" "kinds.yaml:22:7: error: bad expectation 'browse.body_match_ratio(alpha) >= 0.6': body_match_ratio: argument 1 at character 25 is not a quoted string"
kinds_yaml 'browse.requests > 0' '{ weight: 0, path: /b }'
check kinds-weight 2 ./sim --check "$tmp/kinds.yaml"
contains kinds-weight-msg "$tmp/err" "kinds.yaml:18:19: error: weight 0: expected a number > 0"
kinds_yaml 'browse.requests > 0' '{ path: /b, headers: ["x canary: true"] }'
check kinds-header 2 ./sim --check "$tmp/kinds.yaml"
contains kinds-header-msg "$tmp/err" "header 'x canary: true': the name is not an HTTP token"
kinds_yaml 'browse.requests > 0' '{ path: /b, headres: ["x-canary: true"] }'
check kinds-key 2 ./sim --check "$tmp/kinds.yaml"
contains kinds-key-msg "$tmp/err" "kinds.yaml:18:21: error: unknown key 'headres'"
[ -z "$(ls -A "$tmp/kinds-res")" ] && ok || bad "a bad expectation wrote into --out"

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]

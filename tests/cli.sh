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

# Unique names and addresses: a collision is exit 2 naming both definitions, never an
# abort; a 97-node pool (its nodes reach the old fixed LB frontend .100) works, since the
# internal LB takes the first free address of the node subnet, as Azure allocates it.
check dup-cluster-nodes 2 ./sim --check \
  --set 'cloud.aks2={type: k8s-cluster, vnet: vnet, pools: [{name: user, count: 2}]}' scenarios/aks-dsr.yaml
contains dup-cluster-msg "$tmp/err" "<command line>:1:52: error: k8s-cluster 'aks2' pool 'user' node 0: node name 'aks-user-0' is already taken by node 'aks-user-0' of k8s-cluster 'aks' (scenarios/aks-dsr.yaml:36:3)"
check dup-host-node 2 ./sim --check --set 'nodes.aks-user-0={type: host}' scenarios/aks-dsr.yaml
contains dup-host-msg "$tmp/err" "is already taken by host 'aks-user-0' (<command line>:1:1)"
check big-pool 0 ./sim --check \
  --set 'cloud.aks.pools=[{name: system, count: 1}, {name: user, count: 97}]' scenarios/aks-dsr.yaml
contains big-pool-all-pass "$tmp/out" "expectations: 10 passed, 0 failed"

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]

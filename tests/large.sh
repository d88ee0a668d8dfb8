#!/usr/bin/env bash
# large.sh -- scenarios/large-cluster.yaml scaled down with --set (the full size runs in
# `make bench`): its expectations pass; the rules kube-proxy's iptables mode makes the
# kernel traverse per new connection grow with the number of Services, one rule per
# Service in KUBE-SERVICES, as the linear walk does; the printed line and summary.json
# agree; the scale key's bad values are errors at their position. Run by `make test`.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib.sh

small=(--set 'cloud.aks.pools=[{name: system, count: 2}, {name: user, count: 8}]')
run() {   # services -> $tmp/rN: mean, p99, new connections (summary.json)
  ./sim --no-db --no-pcap --no-plots --no-pictures --out "$tmp/o$1" "${small[@]}" \
    --set "cloud.aks.scale.services=$1" scenarios/large-cluster.yaml >"$tmp/run$1.out" 2>&1 \
    || { bad "services=$1: exit $? (its expectations)"; sed 's/^/    /' "$tmp/run$1.out" | tail -8; }
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["variants"][0]["netfilter"]; print("%.1f %d %d" % (v["rules_traversed_mean"], v["rules_traversed_p99"], v["new_connections"]))' \
    "$tmp/o$1/large-cluster/summary.json" >"$tmp/r$1" 2>&1 || echo "0 0 0" >"$tmp/r$1"
}
run 100
run 300
read -r m100 p100 c100 <"$tmp/r100"
read -r m300 p300 c300 <"$tmp/r300"
# 200 more Services: 200 more KUBE-SERVICES rules before the gateway's rule for the
# connections entering a node, and 200 more for those that match no Service rule
if awk -v a="$m100" -v b="$m300" 'BEGIN { d = b - a; exit !(d > 190 && d < 210) }'; then ok
else bad "mean rules traversed: $m100 with 100 Services, $m300 with 300 (want +200)"; fi
if awk -v m="$m100" 'BEGIN { exit !(m > 100 && m < 160) }'; then ok
else bad "mean rules traversed with 100 Services: $m100 (want 100 to 160)"; fi
if [ "$c100" -gt 3000 ] && [ "$c100" = "$c300" ]; then ok
else bad "new connections: $c100 and $c300 (want the same, > 3000)"; fi
contains printed "$tmp/run100.out" "default: iptables: mean $(printf '%.0f' "$m100") rules traversed per new connection (p99 $p100;"

# the scale key's values are checked
check bad-services 2 ./sim --validate --set cloud.aks.scale.services=-1 scenarios/large-cluster.yaml
contains bad-services-msg "$tmp/err" "scale: services -1: expected 0 to 50000"
check bad-port 2 ./sim --validate --set cloud.aks.scale.port=70000 scenarios/large-cluster.yaml
contains bad-port-msg "$tmp/err" "scale: port 70000: expected 1 to 65535"

echo "large.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# large.sh -- scenarios/large-cluster.yaml scaled down with --set (the full size runs in
# `make bench`): its expectations pass; the rules kube-proxy's iptables mode makes the
# kernel traverse per new connection grow with the number of Services, one rule per
# Service in KUBE-SERVICES, as the linear walk does; the printed line and summary.json
# agree; the scale key's bad values are errors at their position. Variant nftables: the
# rules evaluated stay flat, its --dump-nft loads into the real kernel (as root) and lists
# back the same. Run by `make test`.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib.sh

small=(--set 'cloud.aks.pools=[{name: system, count: 2}, {name: user, count: 8}]')
run() {   # services [variant key what] -> $tmp/rN: mean, p99, new connections (summary.json)
  local v=${2:-default} key=${3:-netfilter} what=${4:-rules_traversed}
  ./sim --no-db --no-pcap --no-plots --no-pictures --out "$tmp/o$1$v" "${small[@]}" -v "$v" \
    --set "cloud.aks.scale.services=$1" scenarios/large-cluster.yaml >"$tmp/run$1$v.out" 2>&1 \
    || { bad "services=$1 $v: exit $? (its expectations)"; sed 's/^/    /' "$tmp/run$1$v.out" | tail -8; }
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["variants"][0][sys.argv[2]]; w=sys.argv[3]; print("%.1f %d %d" % (v[w + "_mean"], v[w + "_p99"], v["new_connections"]))' \
    "$tmp/o$1$v/large-cluster/summary.json" "$key" "$what" >"$tmp/r$1$v" 2>&1 || echo "0 0 0" >"$tmp/r$1$v"
}
run 100
run 300
mv "$tmp/r100default" "$tmp/r100"; mv "$tmp/r300default" "$tmp/r300"; mv "$tmp/run100default.out" "$tmp/run100.out"
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

# kube-proxy's nftables mode: one verdict-map lookup whatever the number of Services, so
# the rules evaluated per new connection stay where they are (and far below iptables')
run 100 nftables nftables rules_evaluated
run 300 nftables nftables rules_evaluated
read -r n100 np100 nc100 <"$tmp/r100nftables"
read -r n300 np300 nc300 <"$tmp/r300nftables"
if awk -v a="$n100" -v b="$n300" -v i="$m100" 'BEGIN { exit !(a > 5 && a < 25 && a == b && i > 4 * a) }'; then ok
else bad "nftables mean rules evaluated: $n100 with 100 Services, $n300 with 300 (want the same, 5 to 25; iptables $m100)"; fi
if [ "$nc100" -gt 3000 ]; then ok; else bad "nftables new connections: $nc100"; fi
contains printed-nft "$tmp/run100nftables.out" "nftables: nftables: mean $(printf '%.0f' "$n100") rules evaluated per new connection (p99 $np100;"
# its ruleset dump is nft syntax: the table, the dispatch maps, a service chain
./sim --dump-nft aks-user-0 -v nftables "${small[@]}" --set cloud.aks.scale.services=3 \
  scenarios/large-cluster.yaml >"$tmp/dump.nft" 2>"$tmp/err"
contains dump-table "$tmp/dump.nft" "table ip kube-proxy {"
contains dump-map "$tmp/dump.nft" "	map service-ips {"
contains dump-chain "$tmp/dump.nft" "	chain service-JOZQ3JPU-scale/svc-0/tcp/ {"
# and the kernel takes it: loaded with `nft -f` into a network namespace of its own (as
# root, where nft and namespaces exist; skipped otherwise), `nft list ruleset` prints it
# back the same but for the order of set elements (the kernel's hash order)
if [ "$(id -u)" = 0 ] && command -v nft >/dev/null && ip netns add "lbchain-large-nft-$$" 2>/dev/null; then
  trap 'ip netns del "lbchain-large-nft-$$" 2>/dev/null; rm -rf "$tmp"' EXIT
  if ip netns exec "lbchain-large-nft-$$" nft -f "$tmp/dump.nft" 2>"$tmp/nft.err" &&
     ip netns exec "lbchain-large-nft-$$" nft list ruleset >"$tmp/relist.nft" 2>>"$tmp/nft.err"; then ok
  else bad "nft -f refused the dump: $(head -3 "$tmp/nft.err")"; fi
  norm() {   # the listing with every set's elements sorted
    python3 -c 'import re,sys
t = "".join(l for l in open(sys.argv[1]) if not l.startswith("#"))
def s(m): return "elements = { " + ", ".join(sorted(x.strip() for x in m.group(1).split(","))) + " }"
print(re.sub(r"elements = \{ (.*?) \}", s, t, flags=re.S))' "$1"
  }
  if [ "$(norm "$tmp/dump.nft")" = "$(norm "$tmp/relist.nft")" ]; then ok
  else bad "nft list ruleset differs from --dump-nft"; diff <(norm "$tmp/dump.nft") <(norm "$tmp/relist.nft") | head -10; fi
  ip netns del "lbchain-large-nft-$$"
fi
# nftables mode needs Kubernetes 1.29
check nft-old-k8s 2 ./sim --validate -v nftables --set cloud.aks.kubernetes-version=1.28 scenarios/large-cluster.yaml
contains nft-old-k8s-msg "$tmp/err" "kube-proxy-mode nftables: kube-proxy has an nftables mode from Kubernetes 1.29"

# the scale key's values are checked
check bad-services 2 ./sim --validate --set cloud.aks.scale.services=-1 scenarios/large-cluster.yaml
contains bad-services-msg "$tmp/err" "scale: services -1: expected 0 to 50000"
check bad-port 2 ./sim --validate --set cloud.aks.scale.port=70000 scenarios/large-cluster.yaml
contains bad-port-msg "$tmp/err" "scale: port 70000: expected 1 to 65535"

echo "large.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# kubeproxy-fates.sh -- the kube-proxy packet-fate differential: random flows (to
# ClusterIPs, nodePorts and the LoadBalancer IP; from pods and from outside) are sent, one
# SYN each, through the real node namespaces of a stack built by realstack.sh, and through
# the simulator's netfilter on the same rules (sim --flow-fate); the DNAT target, SNAT or
# not, the rules taken and the drop point must agree flow by flow. Nodes in iptables mode
# are traced with xtables-monitor, nodes in nftables mode with nft monitor trace. See
# docs/REALCHAIN.md.
#
#   scripts/kubeproxy-fates.sh SCENARIO.yaml VARIANT [FLOWS [SEED]]
#
# It brings up its own quiet stack (realstack.sh up --cluster-only: no load balancers, so
# nothing but the flow moves a counter), and takes it down again, also on failure.
# Prints one line per flow and ends with "kube-proxy flows: F compared, G agree".
# Exit status: 0 all agree, 1 a flow disagrees, 77 no network namespaces (skipped).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIM=${SIM:-$ROOT/sim}
RS="$ROOT/scripts/realstack.sh"
SCENARIO=${1:?usage: kubeproxy-fates.sh SCENARIO.yaml VARIANT [FLOWS [SEED]]}
VARIANT=${2:?usage: kubeproxy-fates.sh SCENARIO.yaml VARIANT [FLOWS [SEED]]}
FLOWS=${3:-12}
SEED=${4:-1}
# Source ports of the test flows: one each, above the ephemeral range (nothing else uses them).
SPORT_BASE=61000
# How long after its SYN a flow's trace and conntrack entry are read (the SYN crosses the
# node within a millisecond; the monitor writes its lines as they come).
SETTLE=0.3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbchain-kpfates.XXXXXX")
STACK="$WORK/stack"
cleanup() {
    [ -e "$STACK/stack.env" ] && "$RS" down --dir "$STACK" >/dev/null 2>&1 || true
    [ -n "${KPFATES_KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

set +e
"$RS" up "$SCENARIO" -v "$VARIANT" --cluster-only --dir "$STACK" > "$WORK/up.log" 2>&1
rc=$?
set -e
if [ $rc = 77 ]; then
    cat "$WORK/up.log" >&2
    echo "kube-proxy flows: skipped (no network namespaces)"
    exit 77
fi
[ $rc = 0 ] || { cat "$WORK/up.log" >&2; exit 1; }
D="$STACK/describe.json"
P=$(. "$STACK/stack.env"; echo "$P")
# the namespace of a node of the stack (realstack.sh's naming)
ns() { printf '%s-%s' "$P" "${1//[^A-Za-z0-9_.-]/-}"; }

# ---- the flows: a seeded random choice among what the cluster offers -------------------------
# candidates, one per line: KIND SRC-NODE OBSERVED-NODE IN-IFACE SRC-ADDR DST-ADDR DST-PORT
jq -r '
  . as $d | .clusters[0] as $c
  | [$d.nodes[] | select(.role == "host") | . as $n | .interfaces[] | select(.fabric)
      | {node: $n.name, address: .address}] as $hosts
  | $hosts[0].node as $client
  | ($c.nodes | map({key: .name, value: .address}) | from_entries) as $naddr
  # pods and the node veth they arrive on
  | [ $d.nodes[] | select(.role == "k8s-node") | . as $n | .interfaces[] | select(.link)
      | {node: $n.name, veth: .name, pod: .link.node} ] as $veths
  | ($c.pods | map({key: .name, value: .}) | from_entries) as $pods
  | ($c.services[] | . as $s | .ports[] | . as $p |
      # ClusterIP from a pod: observed on the pod own node
      ( $veths[] | "clusterip-from-pod \(.pod) \(.node) \(.veth) \($pods[.pod].ip) \($s.cluster_ip) \($p.port)" ),
      ( select($p.node_port) |
        # nodePort from outside, on each node
        ( $c.nodes[] | "nodeport-from-outside \($client) \(.name) eth0 \($hosts[0].address) \(.address) \($p.node_port)" ),
        # nodePort of another node, from a pod (observed where it arrives)
        ( $veths[] as $v | $c.nodes[] | select(.name != $v.node)
          | "nodeport-from-pod \($v.pod) \(.name) eth0 \($pods[$v.pod].ip) \(.address) \($p.node_port)" ) ),
      ( select($s.load_balancer_ip) |
        # LB IP from outside (from every host: loadBalancerSourceRanges may let in only
        # some), delivered to each node as the floating-IP LB does
        ( $hosts[] as $h | $c.nodes[] | "lbip-from-outside \($h.node) \(.name) eth0 \($h.address) \($s.load_balancer_ip) \($p.port)" ),
        # LB IP from a pod: captured on the pod own node, it never reaches the LB
        ( $veths[] | "lbip-from-pod \(.pod) \(.node) \(.veth) \($pods[.pod].ip) \($s.load_balancer_ip) \($p.port)" ) ) )
' "$D" > "$WORK/candidates"
mapfile -t CAND < "$WORK/candidates"
[ ${#CAND[@]} -gt 0 ] || { echo "kubeproxy-fates: no flows to try in $SCENARIO/$VARIANT" >&2; exit 1; }

# every kind at least once, flows from outside to every node (with ETP Local: the nodes
# without a local endpoint drop them), then random picks (bash's RANDOM, seeded: the same
# flows each run)
RANDOM=$SEED
declare -a PICK=()
for kind in clusterip-from-pod nodeport-from-outside nodeport-from-pod lbip-from-outside lbip-from-pod; do
    mapfile -t of < <(grep "^$kind " "$WORK/candidates" || true)
    [ ${#of[@]} -gt 0 ] && PICK+=("${of[RANDOM % ${#of[@]}]}")
done
for node in $(jq -r '.clusters[0].nodes[].name' "$D"); do
    for kind in nodeport-from-outside lbip-from-outside; do
        mapfile -t of < <(grep "^$kind [^ ]* $node " "$WORK/candidates" || true)
        [ ${#of[@]} -gt 0 ] && PICK+=("${of[RANDOM % ${#of[@]}]}")
    done
done
# the LB IP from each host at least once (an allowed and a refused source, when the
# Service has loadBalancerSourceRanges: kube-proxy's KUBE-FW chain)
for host in $(jq -r '.nodes[] | select(.role == "host") | .name' "$D"); do
    mapfile -t of < <(grep "^lbip-from-outside $host " "$WORK/candidates" || true)
    [ ${#of[@]} -gt 0 ] && PICK+=("${of[RANDOM % ${#of[@]}]}")
done
while [ ${#PICK[@]} -lt "$FLOWS" ]; do PICK+=("${CAND[RANDOM % ${#CAND[@]}]}"); done

# ---- the real side: one SYN per flow, traced by the kernel ---------------------------------
# Each node traces the test flows' SYNs, so that nothing else -- not even a late
# retransmission of an earlier flow -- is attributed to a flow: an iptables node with a
# raw-table TRACE rule for their source ports (xtables-monitor prints every rule each one
# matches), an nftables node (kube-proxy in nftables mode: realstack.sh loaded
# nftables-NODE.nft) with a table of the test's own whose chains, ahead of every other at
# prerouting and output, set nftrace on them (`nft -a monitor trace` prints every rule
# that ran to its end, with its handle and verdict). The simulator reports the SYN's
# path too.
TRACE_TABLE=lbchain-fates-trace
SPORT_LAST=$((SPORT_BASE + ${#PICK[@]}))
declare -A MON NFT
while read -r kind name _; do
    [ "$kind" = nftables ] && NFT[$name]=1
done < "$STACK/render.list"
for node in $(jq -r '.nodes[] | select(.role == "k8s-node") | .name' "$D"); do
    nsn=$(ns "$node")
    if [ -n "${NFT[$node]:-}" ]; then
        {
            echo "table ip $TRACE_TABLE {"
            for hook in prerouting output; do
                # priority raw - 50: before conntrack (-200), kube-proxy's chains and the NAT
                echo "  chain $hook { type filter hook $hook priority raw - 50; policy accept;"
                echo "    tcp flags & (fin | syn | rst | ack) == syn tcp sport $((SPORT_BASE + 1))-$SPORT_LAST meta nftrace set 1; }"
            done
            echo "}"
        } | ip netns exec "$nsn" nft -f -
        ip netns exec "$nsn" stdbuf -oL nft -a monitor trace > "$WORK/trace-$node.txt" 2>&1 &
    else
        for chain in PREROUTING OUTPUT; do
            ip netns exec "$nsn" iptables -t raw -I "$chain" -p tcp --syn -m multiport --sports "$((SPORT_BASE + 1)):$SPORT_LAST" -j TRACE
        done
        ip netns exec "$nsn" stdbuf -oL xtables-monitor --trace > "$WORK/trace-$node.txt" 2>&1 &
    fi
    MON[$node]=$!
done
stop_monitors() { local p; for p in "${MON[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_monitors; cleanup' EXIT
sleep 0.5

: > "$WORK/flows"
i=0
for line in "${PICK[@]}"; do
    read -r kind src node iface saddr daddr dport <<< "$line"
    i=$((i + 1))
    sport=$((SPORT_BASE + i))
    obs="$WORK/observed-$i.txt"
    case $kind in
        lbip-from-outside)
            # the floating-IP LB delivers the frontend to this node, destination unchanged
            naddr=$(jq -r --arg n "$node" '.clusters[0].nodes[] | select(.name == $n) | .address' "$D")
            ip netns exec "$(ns "$src")" ip route replace "$daddr/32" via "$naddr" dev eth0 onlink ;;
    esac
    tfile="$WORK/trace-$node.txt"
    from=$(stat -c %s "$tfile")
    ip netns exec "$(ns "$src")" hping3 -q -S -c 1 -s "$sport" -k -p "$dport" "$daddr" > /dev/null 2>&1 || true
    sleep "$SETTLE"
    to=$(stat -c %s "$tfile")
    {
        if [ -n "${NFT[$node]:-}" ]; then
            # the node's own tables with their rules' handles (the trace names a rule by
            # its handle), then this flow's trace lines: those of the trace ids whose
            # "packet:" line has the flow's source port
            ip netns exec "$(ns "$node")" nft list tables | while read -r _ fam tbl; do
                [ "$tbl" = "$TRACE_TABLE" ] || ip netns exec "$(ns "$node")" nft -a list table "$fam" "$tbl"
            done
            tail -c +"$((from + 1))" "$tfile" | head -c "$((to - from))" |
                awk -v p="$sport" '/^trace id / && / packet: / { keep[$3] = ($0 ~ ("tcp sport " p " ")) }
                                   /^trace id / && keep[$3] { print }'
        else
            ip netns exec "$(ns "$node")" iptables-save
            # this flow's packets only: the trace blocks (PACKET line, then its TRACE lines,
            # tied by the trace id) whose ports are the flow's
            tail -c +"$((from + 1))" "$tfile" | head -c "$((to - from))" |
                awk -v p="$sport" '/^PACKET: / { id = $3; keep[id] = ($0 ~ ("SPORT=" p " ")) }
                                   /^ TRACE: / && keep[$3] { print }'
        fi
        ip netns exec "$(ns "$node")" conntrack -L -p tcp --orig-port-src "$sport" 2>/dev/null || true
    } > "$obs"
    case $kind in
        lbip-from-outside)
            ip netns exec "$(ns "$src")" ip route del "$daddr/32" ;;
    esac
    echo "$node $iface $saddr:$sport $daddr:$dport $obs # $kind from $src" >> "$WORK/flows"
done
stop_monitors

# ---- the simulated side, and the comparison ---------------------------------------------------
"$SIM" --flow-fate "$WORK/flows" -v "$VARIANT" --no-expect "$SCENARIO" > "$WORK/fates.json"
F=0 G=0
i=0
while IFS= read -r j; do
    i=$((i + 1))
    kind=$(sed -n "${i}p" "$WORK/flows" | sed 's/.*# //')
    F=$((F + 1))
    if [ "$(jq -r .agree <<< "$j")" = true ]; then
        G=$((G + 1))
        printf '  agree     %-52s %s\n' "$kind" "$(jq -r '"\(.src) > \(.dst) at \(.node): \(.sim.verdict)\(if .sim.dnat then " DNAT " + .sim.dnat else "" end)\(if .sim.snat then " SNAT" else "" end)\(if .sim.drop then " at " + .sim.drop else "" end)\(if (.sim.random|length) > 0 then " (random choice, seed +\(.seeds - 1))" else "" end)"' <<< "$j")"
    else
        printf '  DISAGREE  %-52s %s\n' "$kind" "$(jq -r '"\(.src) > \(.dst) at \(.node): " + (.differences | join("; "))' <<< "$j")"
    fi
done < "$WORK/fates.json"
echo "kube-proxy flows ($(basename "$SCENARIO" .yaml)/$VARIANT): $F compared, $G agree"
[ "$F" = "$G" ]

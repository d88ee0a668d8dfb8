#!/usr/bin/env bash
# realstack-l4.sh -- the L4 load balancer stand-in of the real chain (scripts/realstack.sh
# runs it inside the load balancer's own network namespace). It reads health verdicts, one
# line each, on stdin -- the format of `sim --real ... --probes-only --watch` (see
# docs/BINDINGS.md), e.g.
#     health ilb/http-30575 aks-user-1 initial -> down: HTTP 404 on GET / port 30575
# -- and keeps the namespace's netfilter rules in step with them:
#   azure: the Azure internal LB with floating IP. Packets to a frontend port are delivered
#          to a backend node with the destination unchanged (policy routing on a mark), the
#          node picked by a 5-tuple hash (HMARK) over the backends whose probe for that
#          rule is up; with none up, new flows are dropped. SYNs are not tracked (this
#          router sees one direction only: replies go from the node straight to the client,
#          and conntrack would call the handshake's ACK invalid); the first ACK is picked up
#          as an established connection (nf_conntrack_tcp_loose) and its node kept in the
#          connection mark, so established flows stay on their node when health changes.
#   nlb:   one AWS NLB node (a zone) with ip targets: DNAT to a pod picked by a 5-tuple hash
#          over the zone's targets that are up (all of them when none is: fail open), SNAT
#          to the node's own address, conntrack reversing both.
# usage: realstack-l4.sh azure|nlb CONF
# CONF (written by realstack.sh from `sim --describe`):
#   azure:  vip ADDR / rule PROTO PORT CHECKER / backend LABEL ADDR
#   nlb:    node ADDR / listener PORT TARGET-PORT CHECKER / target LABEL ADDR
# Every state change is printed as "l4 ..." on stdout.
set -euo pipefail

MODE=$1
CONF=$2
HASH_SEED=0x6c62636e         # HMARK's hash seed ("lbcn"): any fixed value
MARK_BASE=256                # marks 256 + i select backend i (routing table 256 + i)

declare -a B_LABEL B_ADDR R_PROTO R_PORT R_CHECK R_TPORT
declare -A STATE             # "checker label" -> initial|up|down
VIP=""
NODE_ADDR=""
while read -r kind a b c; do
    case $kind in
        vip) VIP=$a ;;
        node) NODE_ADDR=$a ;;
        rule) R_PROTO+=("$a"); R_PORT+=("$b"); R_CHECK+=("$c"); R_TPORT+=("$b") ;;
        listener) R_PROTO+=(tcp); R_PORT+=("$a"); R_TPORT+=("$b"); R_CHECK+=("$c") ;;
        backend|target) B_LABEL+=("$a"); B_ADDR+=("$b") ;;
        ''|'#'*) ;;
        *) echo "realstack-l4: $CONF: unknown line '$kind'" >&2; exit 2 ;;
    esac
done < "$CONF"
NB=${#B_LABEL[@]}
NR=${#R_PORT[@]}

chain() { echo "LBC-R$1"; }

# The healthy backends of rule r, as indexes.
healthy() {
    local r=$1 i out=()
    for ((i = 0; i < NB; i++)); do
        [ "${STATE["${R_CHECK[$r]} ${B_LABEL[$i]}"]:-initial}" = up ] && out+=("$i")
    done
    echo "${out[@]:-}"
}

# The chain of rule r as iptables-restore lines: a hash slot per usable backend, the slot
# mapped to the backend's mark. Declaring the chain in --noflush mode flushes it first.
rule_chain() {
    local r=$1 ch; ch=$(chain "$r")
    local -a use
    read -r -a use <<< "$(healthy "$r")"
    if [ "$MODE" = nlb ] && [ ${#use[@]} -eq 0 ]; then   # fail open: every target
        for ((i = 0; i < NB; i++)); do use+=("$i"); done
    fi
    echo ":$ch - [0:0]"
    if [ ${#use[@]} -eq 0 ]; then
        echo "-A $ch -j DROP"                        # Azure: no healthy backend, no new flows
        return
    fi
    echo "-A $ch -j HMARK --hmark-tuple src,dst,sport,dport,proto --hmark-mod ${#use[@]} --hmark-offset 1 --hmark-rnd $HASH_SEED"
    local k
    for ((k = 0; k < ${#use[@]}; k++)); do
        echo "-A $ch -m mark --mark $((k + 1)) -j MARK --set-mark $((MARK_BASE + use[k]))"
    done
    echo "-A $ch -j CONNMARK --save-mark"
}

apply() {
    local r
    { echo "*mangle"; for ((r = 0; r < NR; r++)); do rule_chain "$r"; done; echo "COMMIT"; } |
        iptables-restore --noflush
}

setup_azure() {
    local i r
    # one routing table per backend: the frontend delivered to it, destination unchanged
    for ((i = 0; i < NB; i++)); do
        ip rule add fwmark $((MARK_BASE + i)) lookup $((MARK_BASE + i))
        ip route replace "$VIP/32" via "${B_ADDR[$i]}" dev eth0 onlink table $((MARK_BASE + i))
    done
    ip route replace blackhole "$VIP/32"
    {
        echo "*raw"
        echo "-A PREROUTING -d $VIP/32 -p tcp --syn -j CT --notrack"
        echo "COMMIT"
        echo "*mangle"
        echo ":LBC-LB - [0:0]"
        for ((r = 0; r < NR; r++)); do echo ":$(chain "$r") - [0:0]"; done
        echo "-A PREROUTING -d $VIP/32 -j LBC-LB"
        echo "-A LBC-LB -j CONNMARK --restore-mark"
        echo "-A LBC-LB -m mark ! --mark 0 -j RETURN"
        for ((r = 0; r < NR; r++)); do
            echo "-A LBC-LB -p ${R_PROTO[$r]} --dport ${R_PORT[$r]} -j $(chain "$r")"
        done
        echo "-A LBC-LB -m mark --mark 0 -j DROP"   # no rule for this port
        echo "COMMIT"
    } | iptables-restore --noflush
}

setup_nlb() {
    local r i
    {
        echo "*mangle"
        echo ":LBC-LB - [0:0]"
        for ((r = 0; r < NR; r++)); do echo ":$(chain "$r") - [0:0]"; done
        echo "-A PREROUTING -d $NODE_ADDR/32 -m conntrack --ctstate NEW -j LBC-LB"
        for ((r = 0; r < NR; r++)); do
            echo "-A LBC-LB -p tcp --dport ${R_PORT[$r]} -j $(chain "$r")"
        done
        echo "COMMIT"
        echo "*nat"
        for ((r = 0; r < NR; r++)); do
            for ((i = 0; i < NB; i++)); do
                echo "-A PREROUTING -d $NODE_ADDR/32 -p tcp --dport ${R_PORT[$r]} -m mark --mark $((MARK_BASE + i)) -j DNAT --to-destination ${B_ADDR[$i]}:${R_TPORT[$r]}"
            done
        done
        echo "-A POSTROUTING -m conntrack --ctorigdst $NODE_ADDR/32 -j SNAT --to-source $NODE_ADDR"
        echo "COMMIT"
    } | iptables-restore --noflush
}

report() {
    local r
    for ((r = 0; r < NR; r++)); do
        local h; h=$(healthy "$r")
        local names=() i
        for i in $h; do names+=("${B_LABEL[$i]}"); done
        echo "l4 ${MODE} port ${R_PORT[$r]} (${R_CHECK[$r]}): ${#names[@]}/$NB up${names:+: ${names[*]}}"
    done
}

case $MODE in
    azure) setup_azure ;;
    nlb) setup_nlb ;;
    *) echo "usage: realstack-l4.sh azure|nlb CONF" >&2; exit 2 ;;
esac
apply
report

# health CHECKER LABEL STATE: ...   or   health CHECKER LABEL FROM -> TO: ...
while IFS= read -r line; do
    set -- $line
    [ "${1:-}" = health ] || continue
    checker=${2:-}; label=${3:-}
    if [ "${5:-}" = "->" ]; then to=${6%:}; else to=${4%:}; fi
    case $to in initial|up|down) ;; *) continue ;; esac
    known=0
    for ((r = 0; r < NR; r++)); do [ "${R_CHECK[$r]}" = "$checker" ] && known=1; done
    [ $known = 1 ] || continue
    [ "${STATE["$checker $label"]:-initial}" = "$to" ] && continue
    STATE["$checker $label"]=$to
    apply
    echo "l4 $checker $label -> $to"
    report
done

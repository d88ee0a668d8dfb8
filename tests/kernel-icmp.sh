#!/usr/bin/env bash
# kernel-icmp.sh -- this machine's kernel, in network namespaces of our own, against the
# simulator's ICMP rate limits: a client sends UDP datagrams on a schedule through a router
# (a veth pair) to a closed UDP port of the router, and to a prefix the router has no route
# for; the router's Icmp counters (OutDestUnreachs, OutRateLimitHost in /proc/net/snmp of
# its netns) against build/icmp_schedule (tests/icmp_schedule.c: libsim's node and
# src/net/icmp.c, the code ./sim runs) for the same schedule. A fresh pair per case, so
# each starts with fresh inet_peer buckets. Three more cases give the router's namespace
# non-default ICMP sysctls (icmp_ratelimit 250 ms; icmp_ratemask without port unreachable;
# icmp_msgs_per_sec 0), after checking that they are per-netns (the client's namespace
# keeps the defaults), and the model takes the same values. About 16 s.
# Skips (exit 0, a clear line) where namespaces cannot be made (not root, no ip netns).
# Usage: tests/kernel-icmp.sh [--print]   (--print: the measured figures only)
set -uo pipefail
cd "$(dirname "$0")/.."
IS=build/icmp_schedule
KCHECK=kernel-icmp
source tests/kernel-lib.sh

P="lbki$$"                                      # unique per run: others test concurrently
# every namespace by name up front: run_case runs in a subshell, whose changes to a list
# would not reach the trap
NS=()
for c in port noroute rl250 mask global; do NS+=("$P-$c-c" "$P-$c-r"); done
cleanup() { for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkns() { ip netns add "$1" 2>/dev/null || return 1; ip -n "$1" link set lo up; }
x() { ip netns exec "$@"; }

# schedules: T:N (N datagrams at T ms), as icmp_schedule takes them
PORT_SCHED="0:10$(for k in $(seq 12); do printf ',%d:1' $((k * 250)); done)"
NOROUTE_SCHED="0:10$(for k in $(seq 8); do printf ',%d:1' $((k * 500)); done),6500:10"
# icmp_ratelimit 250 ms: bursts of 10 whose per-destination tokens (6 x 250 ms at first,
# then 600, 100 + 700, 50 + 800 ms) stay 40 ms or more from a multiple of the cost, this
# kernel's HZ (the sysctl is kept in jiffies: 250 ms at HZ 250 is 63, 252 ms) included
RL_SCHED="0:10,600:10,1300:10,2100:10"
RL_SYSCTLS="icmp_ratelimit=250"
MASK_SCHED="0:10,250:10"
MASK_SYSCTLS="icmp_ratemask=6160"              # 0x1818 without type 3, dest unreachable
GLOBAL_SCHED="0:10,250:10"
GLOBAL_SYSCTLS="icmp_msgs_per_sec=0"            # an empty global bucket is never refilled

# case NAME DST SCHED [SYSCTLS]: a fresh client/router pair, the router's sysctls written
# (KEY=V,... under net.ipv4; each checked to be the router's own: the client's namespace
# still has the default, which the SYSCTLS must not be), the schedule sent from the client
# in one shell (bash's /dev/udp), the router's counters after: "sent host global"
snmp() { x "$1" awk '/^Icmp:/ {if (!h) {for (i = 1; i <= NF; i++) f[$i] = i; h = 1} else
    print $f["OutDestUnreachs"], $f["OutRateLimitHost"], $f["OutRateLimitGlobal"]}' \
    /proc/net/snmp; }
run_case() {
    local name=$1 dst=$2 sched=$3 sysctls=${4:-} c="$P-$1-c" r="$P-$1-r"
    mkns "$c" && mkns "$r" || { echo "netns"; return 1; }
    ip link add "${P}${name:0:1}c" netns "$c" type veth peer name "${P}${name:0:1}r" netns "$r"
    x "$c" ip link set "${P}${name:0:1}c" name v0
    x "$r" ip link set "${P}${name:0:1}r" name v0
    x "$c" ip addr add 198.18.1.1/24 dev v0 && x "$c" ip link set v0 up
    x "$r" ip addr add 198.18.1.2/24 dev v0 && x "$r" ip link set v0 up
    x "$c" ip route add default via 198.18.1.2
    x "$r" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    local kv k v rv cv
    for kv in ${sysctls//,/ }; do
        k=${kv%%=*} v=${kv#*=}
        x "$r" sh -c "echo $v > /proc/sys/net/ipv4/$k" || { echo "write $k"; return 1; }
        rv=$(x "$r" cat "/proc/sys/net/ipv4/$k") cv=$(x "$c" cat "/proc/sys/net/ipv4/$k")
        # icmp_ratelimit reads back in whole jiffies (250 -> 252 at HZ 250)
        [ "$rv" != "$cv" ] && [ $((rv - v)) -ge 0 ] && [ $((rv - v)) -lt 10 ] ||
            { echo "$k not per-netns: router $rv, client $cv after writing $v"; return 1; }
    done
    x "$c" ping -c 1 -W 2 198.18.1.2 > /dev/null 2>&1 # neighbours resolved, echo not limited
    read -r d0 h0 g0 <<< "$(snmp "$r")"
    # the schedule: sleep to each T (from the start), then N datagrams back to back
    x "$c" bash -c '
        t0=$(date +%s%N); IFS=, read -ra shots <<< "$2"
        for s in "${shots[@]}"; do
            t=${s%%:*}; n=${s##*:}
            while :; do
                now=$(( ($(date +%s%N) - t0) / 1000000 )); [ "$now" -ge "$t" ] && break
                sleep "$(printf "0.%03d" $(( t - now > 999 ? 999 : t - now )))"
            done
            for ((i = 0; i < n; i++)); do echo x > "/dev/udp/$1/9"; done 2> /dev/null
        done' - "$dst" "$sched"
    sleep 0.3
    read -r d1 h1 g1 <<< "$(snmp "$r")"
    echo "$((d1 - d0)) $((h1 - h0)) $((g1 - g0))"
}
port=$(run_case port 198.18.1.2 "$PORT_SCHED") || fail "port: $port"
noroute=$(run_case noroute 198.51.100.1 "$NOROUTE_SCHED") || fail "noroute: $noroute"
rl=$(run_case rl250 198.18.1.2 "$RL_SCHED" "$RL_SYSCTLS") || fail "rl250: $rl"
mask=$(run_case mask 198.18.1.2 "$MASK_SCHED" "$MASK_SYSCTLS") || fail "mask: $mask"
global=$(run_case global 198.18.1.2 "$GLOBAL_SCHED" "$GLOBAL_SYSCTLS") || fail "global: $global"
read -r port_sent port_host _ <<< "$port"
read -r nr_sent nr_host _ <<< "$noroute"
echo "kernel $(uname -r): closed UDP port, 10 datagrams then one every 250 ms for 3 s:" \
     "$port_sent port unreachables, $port_host refused per destination"
echo "  no route, 10 datagrams, one every 500 ms to 4 s, 10 at 6.5 s:" \
     "$nr_sent net unreachables, $nr_host refused per destination"
echo "  router sysctls, closed port (sent, refused per destination, refused globally):" \
     "$RL_SYSCTLS 10 at 0, 0.6, 1.3, 2.1 s: $rl; $MASK_SYSCTLS 10 at 0, 0.25 s: $mask;" \
     "$GLOBAL_SYSCTLS 10 at 0, 0.25 s: $global"
[ "${1:-}" = --print ] && exit 0

[ -x "$IS" ] || { fail "$IS missing (make build/icmp_schedule)"; exit 1; }
read -r _ s_port_sent _ s_port_host _ <<< "$("$IS" port "$PORT_SCHED")"
read -r _ s_nr_sent _ s_nr_host _ <<< "$("$IS" noroute "$NOROUTE_SCHED")"
[ "$port_sent" = "$s_port_sent" ] && [ "$port_host" = "$s_port_host" ] &&
    pass "closed port: kernel sent $port_sent, refused $port_host; simulator $s_port_sent, $s_port_host" ||
    fail "closed port: kernel sent $port_sent, refused $port_host; simulator $s_port_sent, $s_port_host"
[ "$nr_sent" = "$s_nr_sent" ] && [ "$nr_host" = "$s_nr_host" ] &&
    pass "no route: kernel sent $nr_sent, refused $nr_host per destination; simulator $s_nr_sent, $s_nr_host" ||
    fail "no route: kernel sent $nr_sent, refused $nr_host per destination; simulator $s_nr_sent, $s_nr_host"
# the sysctl cases: all three counters
sysctl_case() {    # NAME KERNEL-COUNTS SCHED SYSCTLS
    local s
    s=$("$IS" port "$3" "$4" | awk '{print $2, $4, $8}')
    [ "$2" = "$s" ] && pass "$1 ($4): kernel sent, refused per destination, globally: $2; simulator $s" ||
        fail "$1 ($4): kernel sent, refused per destination, globally: $2; simulator $s"
}
sysctl_case "ratelimit 250 ms" "$rl" "$RL_SCHED" "$RL_SYSCTLS"
sysctl_case "ratemask without port unreachable" "$mask" "$MASK_SCHED" "$MASK_SYSCTLS"
sysctl_case "msgs_per_sec 0" "$global" "$GLOBAL_SCHED" "$GLOBAL_SYSCTLS"
[ $fails = 0 ]

#!/usr/bin/env bash
# kernel-timers.sh -- this machine's kernel, in network namespaces of our own, against the
# simulator's kernel profile: the SYN retransmission schedule (exponential, and linear first
# with tcp_syn_linear_timeouts), connect()'s ETIMEDOUT time, the data retransmissions (the
# tail loss probe, then the RTO's backoff and tcp_retries2 give-up; no probe with
# tcp_early_retrans 0), keepalive (probes at tcp_keepalive_time, then every
# tcp_keepalive_intvl, the reset after tcp_keepalive_probes unanswered; the sysctls of the
# socket's own netns), FIN_WAIT2 (tcp_fin_timeout), TIME_WAIT (60 s) and conntrack's
# established / close-wait timeouts, default and as kube-proxy sets them. Short sysctls
# where the point is the schedule's shape, so the whole test takes about ten seconds. The
# simulator's numbers for the same sysctls come from build/tcp_schedule (tests/tcp_schedule.c:
# libsim's TCP and conntrack models, the code ./sim runs).
# Skips (exit 0, a clear line) where namespaces cannot be made (not root, no ip netns).
# Usage: tests/kernel-timers.sh [--print]   (--print: the measured figures only)
set -uo pipefail
cd "$(dirname "$0")/.."
KT=build/ktimer
TS=build/tcp_schedule
KCHECK=kernel-timers
source tests/kernel-lib.sh

command -v tcpdump >/dev/null && command -v conntrack >/dev/null && command -v iptables >/dev/null ||
    skip "tcpdump, conntrack or iptables missing (scripts/install-deps.sh)"
P="lbkt$$"                                      # unique per run: others test concurrently
NS=()
PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbchain-ktimers.XXXXXX")
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkns() { ip netns add "$1" 2>/dev/null || return 1; NS+=("$1"); ip -n "$1" link set lo up; }
mkns "$P-probe" || skip "cannot create a network namespace (ip netns add failed)"
x() { ip netns exec "$@"; }
sysctl_set() { x "$1" sh -c "echo $3 > /proc/sys/net/$2" 2>/dev/null; }
x "$P-probe" test -e /proc/sys/net/ipv4/tcp_syn_linear_timeouts && HAVE_LINEAR=1 || HAVE_LINEAR=0
KVER=$(uname -r)

# a ktimer with a control pipe: ctl_start NAME NS MODE PORT MAXSEC [SERVER] waits for
# "connected"; ctl_go NAME lets it go on (send, or close)
declare -A CTL
ctl_start() {
    mkfifo "$WORK/$1.in"
    x "$2" "$KT" "$3" "${6:-198.18.0.2}" "$4" "$5" < "$WORK/$1.in" > "$WORK/$1.out" &
    PIDS+=($!)
    exec {fd}>"$WORK/$1.in"
    CTL[$1]=$fd
    for _ in $(seq 50); do grep -q . "$WORK/$1.out" 2>/dev/null && break; sleep 0.1; done
    [ "$(head -1 "$WORK/$1.out")" = connected ] || fail "$1: $(head -1 "$WORK/$1.out")"
}
ctl_go() { echo go >&"${CTL[$1]}"; }

# ---- SYNs nobody answers: one namespace per profile, SYNs into a dummy interface ----------
# profile: name syn_retries linear_timeouts (linear skipped on kernels without the sysctl)
PROFILES=("exp2 2 0" "lin4r1 1 4" "lin2r2 2 2")
i=0
for prof in "${PROFILES[@]}"; do
    read -r name retries linear <<< "$prof"
    [ "$linear" != 0 ] && [ $HAVE_LINEAR = 0 ] && continue
    n="$P-$name"
    mkns "$n" || { fail "netns $n"; continue; }
    # a veth whose peer (same namespace, no address) discards frames for a MAC it does not
    # have: SYNs leave d0 and nobody answers (no dummy module needed)
    x "$n" ip link add d0 type veth peer name d1 && x "$n" ip addr add 198.19.$i.1/24 dev d0 &&
        x "$n" ip link set d0 up && x "$n" ip link set d1 up &&
        x "$n" ip neigh add 198.19.$i.2 lladdr 02:00:00:00:00:01 dev d0 nud permanent
    sysctl_set "$n" ipv4/tcp_syn_retries "$retries"
    [ $HAVE_LINEAR = 1 ] && sysctl_set "$n" ipv4/tcp_syn_linear_timeouts "$linear"
    x "$n" tcpdump -i d0 -nn -tt -l -U 'tcp[tcpflags] & tcp-syn != 0' > "$WORK/$name.syns" \
        2> "$WORK/$name.tcpdump" &
    PIDS+=($!)
    i=$((i + 1))
done
# the pair for data, FIN_WAIT2, TIME_WAIT and conntrack: a (client) <-veth-> b (server)
mkns "$P-a" && mkns "$P-b" || fail "netns pair"
ip link add "${P}va" netns "$P-a" type veth peer name "${P}vb" netns "$P-b"
x "$P-a" ip link set "${P}va" name v0
x "$P-b" ip link set "${P}vb" name v0
x "$P-a" ip addr add 198.18.0.1/24 dev v0 && x "$P-a" ip link set v0 up
x "$P-b" ip addr add 198.18.0.2/24 dev v0 && x "$P-b" ip link set v0 up
sysctl_set "$P-a" ipv4/tcp_retries2 3
sysctl_set "$P-a" ipv4/tcp_fin_timeout 2
# c, a second client of b (its own veth, 198.18.1.0/24) whose netns has no tail loss
# probe: tcp_early_retrans 0 (a and b keep the kernel's default)
mkns "$P-c" || fail "netns c"
ip link add "${P}vc" netns "$P-c" type veth peer name "${P}vd" netns "$P-b"
x "$P-c" ip link set "${P}vc" name v0
x "$P-b" ip link set "${P}vd" name v1
x "$P-c" ip addr add 198.18.1.1/24 dev v0 && x "$P-c" ip link set v0 up
x "$P-b" ip addr add 198.18.1.2/24 dev v1 && x "$P-b" ip link set v1 up
sysctl_set "$P-c" ipv4/tcp_retries2 3
sysctl_set "$P-c" ipv4/tcp_early_retrans 0
er_def=$(x "$P-a" cat /proc/sys/net/ipv4/tcp_early_retrans)
er_c=$(x "$P-c" cat /proc/sys/net/ipv4/tcp_early_retrans)
# keepalive: a's netns only (b and this machine keep 7200 s / 75 s / 9)
KA_TIME=2 KA_INTVL=1 KA_PROBES=3
sysctl_set "$P-a" ipv4/tcp_keepalive_time $KA_TIME
sysctl_set "$P-a" ipv4/tcp_keepalive_intvl $KA_INTVL
sysctl_set "$P-a" ipv4/tcp_keepalive_probes $KA_PROBES
ka_b=$(x "$P-b" cat /proc/sys/net/ipv4/tcp_keepalive_time)
# conntrack in b: a rule that needs it registers the hooks (like kube-proxy's rules)
x "$P-b" iptables -A INPUT -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT
x "$P-b" tcpdump -i v0 -nn -tt -l -U 'src host 198.18.0.1 and dst port 8080 and tcp[tcpflags] & tcp-push != 0' \
    > "$WORK/data.pkts" 2> "$WORK/data.tcpdump" &
PIDS+=($!)
x "$P-b" tcpdump -i v0 -nn -tt -l -U 'src host 198.18.0.1 and dst port 8084' \
    > "$WORK/ka.pkts" 2> "$WORK/ka.tcpdump" &
PIDS+=($!)
x "$P-b" tcpdump -i v1 -nn -tt -l -U 'src host 198.18.1.1 and dst port 8085 and tcp[tcpflags] & tcp-push != 0' \
    > "$WORK/data0.pkts" 2> "$WORK/data0.tcpdump" &
PIDS+=($!)
for f in "$WORK"/*.tcpdump; do       # tcpdump is listening before anything is sent
    for _ in $(seq 50); do grep -q "listening on" "$f" 2>/dev/null && break; sleep 0.1; done
done

# start every connect at once: the longest (9 s) bounds the test
i=0
for prof in "${PROFILES[@]}"; do
    read -r name retries linear <<< "$prof"
    [ -e "$WORK/$name.syns" ] || continue
    x "$P-$name" "$KT" connect 198.19.$i.2 80 40 > "$WORK/$name.connect" &
    PIDS+=($!)
    i=$((i + 1))
done
x "$P-b" "$KT" listen 198.18.0.2 8080 15 &
PIDS+=($!)
x "$P-b" "$KT" serve-close 198.18.0.2 8081 15 &
PIDS+=($!)
for port in 8082 8083 8084; do x "$P-b" "$KT" listen 198.18.0.2 $port 15 & PIDS+=($!); done
x "$P-b" "$KT" listen 198.18.1.2 8085 15 &
PIDS+=($!)
sleep 0.3
# keepalive: a connects with SO_KEEPALIVE alone, then b drops everything from a on 8084;
# a probes at 2, 3, 4 s and resets at 5 s (its netns's sysctls)
ctl_start ka "$P-a" keepalive 8084 15
x "$P-b" iptables -I INPUT -s 198.18.0.1 -p tcp --dport 8084 -m conntrack --ctstate ESTABLISHED -j DROP
# data: connect, then b drops everything from a; a's 100 bytes are retransmitted until
# tcp_retries2 (3) gives up: a loss probe first, then the RTOs. The same from c, without
# the probe (tcp_early_retrans 0)
ctl_start send "$P-a" send 8080 15
ctl_start send0 "$P-c" send 8085 15 198.18.1.2
x "$P-b" iptables -I INPUT -s 198.18.0.1 -p tcp --dport 8080 -m conntrack --ctstate ESTABLISHED -j DROP
x "$P-b" iptables -I INPUT -s 198.18.1.1 -p tcp --dport 8085 -m conntrack --ctstate ESTABLISHED -j DROP
ctl_go send
ctl_go send0
# FIN_WAIT2: a closes, b never does; a forgets the socket after tcp_fin_timeout (2 s).
# conntrack in b sees it ESTABLISHED, then CLOSE_WAIT (kernel defaults)
ctl_start fw2 "$P-a" close 8082 6
ct() { x "$P-b" conntrack -L -p tcp --dport "$1" --state "$2" 2>/dev/null | awk '{print $3; exit}'; }
ct_est_def=$(ct 8082 ESTABLISHED)
FW2_PORT=$(x "$P-a" ss -Htn state established dst 198.18.0.2 dport = 8082 | awk '{print $3}' | sed 's/.*://')
ctl_go fw2
t_close=$(date +%s.%N)
sleep 0.2
ct_cw_def=$(ct 8082 CLOSE_WAIT)
# TIME_WAIT: b closes first, then a: b holds the tuple in TIME_WAIT
ctl_start tw "$P-a" close 8081 6
sleep 0.2
ctl_go tw
sleep 0.2
tw=$(x "$P-b" ss -Htano state time-wait | grep -o 'timewait,[0-9.]*sec' | head -1 | tr -dc '0-9.')
# conntrack with kube-proxy's settings (24 h established, 1 h close-wait)
sysctl_set "$P-b" netfilter/nf_conntrack_tcp_timeout_established 86400
sysctl_set "$P-b" netfilter/nf_conntrack_tcp_timeout_close_wait 3600
ctl_start kp "$P-a" close 8083 6
ct_est_kp=$(ct 8083 ESTABLISHED)
ctl_go kp
sleep 0.2
ct_cw_kp=$(ct 8083 CLOSE_WAIT)
# FIN_WAIT2 gone?
fw2=""
while [ -n "$FW2_PORT" ]; do
    t=$(echo "$(date +%s.%N) - $t_close" | bc)
    if ! x "$P-a" ss -Htn state fin-wait-2 sport = "$FW2_PORT" | grep -q .; then fw2=$t; break; fi
    [ "$(echo "$t > 6" | bc)" = 1 ] && break
    sleep 0.05
done
for _ in $(seq 150); do [ "$(wc -l < "$WORK/send.out")" -ge 2 ] && break; sleep 0.1; done
data_res=$(sed -n 2p "$WORK/send.out")
for _ in $(seq 150); do [ "$(wc -l < "$WORK/send0.out")" -ge 2 ] && break; sleep 0.1; done
data0_res=$(sed -n 2p "$WORK/send0.out")
# the netns's TcpExtTCPLossProbes (MIB counters are per network namespace)
lossprobes() {
    x "$1" awk '/^TcpExt:/ { if (!h) { for (i = 2; i <= NF; i++) n[i] = $i; h = 1 }
        else for (i = 2; i <= NF; i++) if (n[i] == "TCPLossProbes") print $i }' /proc/net/netstat
}
tlp_a=$(lossprobes "$P-a")
tlp_c=$(lossprobes "$P-c")
for _ in $(seq 100); do [ "$(wc -l < "$WORK/ka.out")" -ge 2 ] && break; sleep 0.1; done
ka_res=$(sed -n 2p "$WORK/ka.out")
for name in exp2 lin4r1 lin2r2; do      # the connects (9 s at most) have finished
    [ -e "$WORK/$name.syns" ] || continue
    for _ in $(seq 100); do [ -s "$WORK/$name.connect" ] && break; sleep 0.1; done
done

# ---- what was measured -------------------------------------------------------------------
syn_times() {   # SYN send times relative to the first, rounded to 0.1 s
    awk 'NR == 1 {t0 = $1} {printf "%s%.1f", (NR > 1 ? "," : ""), $1 - t0}' "$1"
}
data_times() {
    awk 'NR == 1 {t0 = $1} {printf "%s%.2f", (NR > 1 ? "," : ""), $1 - t0}' "$1"
}
echo "kernel $KVER (tcp_syn_linear_timeouts: $([ $HAVE_LINEAR = 1 ] && echo present || echo absent))"
for prof in "${PROFILES[@]}"; do
    read -r name retries linear <<< "$prof"
    [ -e "$WORK/$name.syns" ] || { echo "  $name: skipped (no tcp_syn_linear_timeouts)"; continue; }
    printf '  syn-retries %s syn-linear-timeouts %s: SYNs at %s s; connect: %s s\n' \
        "$retries" "$linear" "$(syn_times "$WORK/$name.syns")" "$(cat "$WORK/$name.connect")"
done
echo "  data (tcp_retries2 3, tcp_early_retrans ${er_def:-?}): sent/retransmitted at" \
     "$(data_times "$WORK/data.pkts") s; recv: $data_res s; TCPLossProbes ${tlp_a:-?}"
echo "  data (tcp_retries2 3, tcp_early_retrans ${er_c:-?}): sent/retransmitted at" \
     "$(data_times "$WORK/data0.pkts") s; recv: $data0_res s; TCPLossProbes ${tlp_c:-?}"
ka_times() {   # keepalive probes (ACKs after the handshake) and the RST, from the SYN
    awk -v want="$1" '/Flags \[S\]/ {t0 = $1; next} t0 == "" {next}
        /Flags \[R/ {if (want == "rst") printf "%.1f", $1 - t0; next}
        $1 - t0 > 0.5 && want == "probes" {printf "%s%.1f", (n++ ? "," : ""), $1 - t0}' "$WORK/ka.pkts"
}
echo "  keepalive (tcp_keepalive_time $KA_TIME, _intvl $KA_INTVL, _probes $KA_PROBES in a's netns;" \
     "b's: ${ka_b:-?} s): probes at $(ka_times probes) s, RST at $(ka_times rst) s; recv: ${ka_res:-?} s"
echo "  FIN_WAIT2 (tcp_fin_timeout 2): gone after ${fw2:-?} s; TIME_WAIT timer ${tw:-?} s"
echo "  conntrack: established ${ct_est_def:-?} s, close-wait ${ct_cw_def:-?} s (defaults);" \
     "established ${ct_est_kp:-?} s, close-wait ${ct_cw_kp:-?} s (kube-proxy's sysctls)"
[ "${1:-}" = --print ] && exit 0

# ---- the simulator's schedule for the same sysctls -----------------------------------------
near() {        # near A B TOL: |A - B| <= TOL, element by element for comma lists
    awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { na = split(a, x, ","); nb = split(b, y, ",");
        if (na != nb) exit 1; for (i = 1; i <= na; i++) if (x[i] - y[i] > tol || y[i] - x[i] > tol) exit 1 }'
}
near_rel() {    # near_rel A B FRACTION: element by element, relative to B
    awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { na = split(a, x, ","); nb = split(b, y, ",");
        if (na != nb) exit 1; for (i = 1; i <= na; i++) if (x[i] - y[i] > f * y[i] || y[i] - x[i] > f * y[i]) exit 1 }'
}
for prof in "${PROFILES[@]}"; do
    read -r name retries linear <<< "$prof"
    [ -e "$WORK/$name.syns" ] || continue
    k=$(syn_times "$WORK/$name.syns")
    kc=$(awk '{print $2}' "$WORK/$name.connect")
    s=$($TS syn "syn-retries=$retries,syn-linear-timeouts=$linear" 2>&1)
    ss_=$(sed -n 's/^syn-sent-at //p' <<< "$s")
    sc=$(sed -n 's/^connect-fails-at \([0-9.]*\).*/\1/p' <<< "$s")
    # the kernel's timers run late by a few ms each (jiffies, timer slack): 3 % of the total
    if near "$k" "$ss_" 0.2 && near_rel "$kc" "$sc" 0.05 && grep -q '^ETIMEDOUT' "$WORK/$name.connect"; then
        pass "SYN schedule (syn-retries $retries, syn-linear-timeouts $linear): kernel $k s, ETIMEDOUT at $kc s; simulator $ss_ s, $sc s"
    else
        fail "SYN schedule (syn-retries $retries, linear $linear): kernel $k / $(cat "$WORK/$name.connect"); simulator $ss_ / $sc"
    fi
done
# data: the gaps between a's transmissions of its 100 bytes, then the gap to the give-up:
# the tail loss probe when the RTO would have fired (one segment, a short path: 2 * SRTT +
# rto_min, clamped to the RTO), the RTO retransmissions one RTO after it, backing off from
# the 200 ms floor, and the give-up (tcp_retries2 3) after 4 of them; c, with
# tcp_early_retrans 0, the RTOs alone. The simulator's for the same sysctls, with this
# kernel's profile (whose tcp_early_retrans default must be the netns's).
data_gaps() {   # data_gaps PKTS SECONDS: the gaps, then the gap to the give-up
    local kd klast kfirst
    kd=$(awk 'NR == 1 {t = $1; next} {printf "%s%.2f", (NR > 2 ? "," : ""), $1 - t; t = $1}' "$1")
    klast=$(awk '{t = $1} END {print t}' "$1")
    kfirst=$(awk 'NR == 1 {print $1}' "$1")
    echo "$kd,$(awk -v r="$2" -v a="$kfirst" -v b="$klast" 'BEGIN {printf "%.2f", r - (b - a)}')"
}
for run in "data ${data_res:-none ?} ${tlp_a:-?} ${er_def:-?}" "data0 ${data0_res:-none ?} ${tlp_c:-?} ${er_c:-?} ,early-retrans=0"; do
    read -r pk rc rt kprobes er opt <<< "$run"
    kd=$(data_gaps "$WORK/$pk.pkts" "$rt")
    s=$($TS data "kernel=$KVER,retries2=3${opt:-}" 2>&1)
    sd=$(sed -n 's/^data-intervals //p' <<< "$s")
    sprobes=$(sed -n 's/^data-loss-probes //p' <<< "$s")
    ser=$(sed -n 's/^early-retrans //p' <<< "$s")
    what="tcp_early_retrans $er: kernel gaps $kd s, TCPLossProbes $kprobes; simulator $sd s, $sprobes"
    # the kernel's timers run late by a few ms each (jiffies, timer slack): 10 %
    if [ "$rc" = ETIMEDOUT ] && near_rel "$kd" "$sd" 0.1 && [ "$kprobes" = "$sprobes" ] &&
       { [ -n "${opt:-}" ] || [ "$er" = "$ser" ]; }; then
        pass "data retransmissions (loss probe, RTOs from the 200 ms floor, tcp_retries2 3 gives up), $what"
    else
        fail "data retransmissions, $what; give-up $rc $rt s; simulator's tcp_early_retrans $ser"
    fi
done
# keepalive: probes at time, time + intvl, ...; the reset after `probes` unanswered
s=$($TS keepalive "keepalive-time=$KA_TIME,keepalive-intvl=$KA_INTVL,keepalive-probes=$KA_PROBES" 2>&1)
sp=$(sed -n 's/^keepalive-probes-at //p' <<< "$s")
sr=$(sed -n 's/^keepalive-reset-at //p' <<< "$s")
sf=$(sed -n 's/^keepalive-fails-at \([0-9.]*\).*/\1/p' <<< "$s")
kp=$(ka_times probes); kr=$(ka_times rst)
# ETIMEDOUT is timed from connect()'s return, the packets from the SYN: within 0.2 s
if [ "${ka_res%% *}" = ETIMEDOUT ] && near "$kp" "$sp" 0.2 && near "${kr:-0}" "$sr" 0.2 &&
   near "${ka_res#* }" "$sf" 0.2 && [ "${ka_b:-0}" = 7200 ]; then
    pass "keepalive: kernel probes at $kp s, RST at $kr s, ETIMEDOUT after ${ka_res#* } s; simulator $sp s, $sr s, $sf s (a's netns sysctls; b's netns kept 7200 s)"
else
    fail "keepalive: kernel probes $kp, RST ${kr:-none}, recv ${ka_res:-?}, b's time ${ka_b:-?}; simulator $sp, $sr, $sf"
fi
near "${fw2:-99}" 2 0.3 && pass "FIN_WAIT2: forgotten after tcp_fin_timeout (2 s): $(printf %.2f "$fw2") s" ||
    fail "FIN_WAIT2: ${fw2:-never} (expected 2 s)"
near "${tw:-0}" 59.5 1 && pass "TIME_WAIT: 60 s (TCP_TIMEWAIT_LEN; ss shows ${tw}s left)" ||
    fail "TIME_WAIT timer ${tw:-?} (expected 60 s)"
s=$($TS conntrack 2>&1)
se=$(sed -n 's/^conntrack-established //p' <<< "$s"); sw=$(sed -n 's/^conntrack-close-wait //p' <<< "$s")
s=$($TS conntrack kube-proxy 2>&1)
ke=$(sed -n 's/^conntrack-established //p' <<< "$s"); kw=$(sed -n 's/^conntrack-close-wait //p' <<< "$s")
if near "${ct_est_def:-0}" "$se" 2 && near "${ct_cw_def:-0}" "$sw" 2 &&
   near "${ct_est_kp:-0}" "$ke" 2 && near "${ct_cw_kp:-0}" "$kw" 2; then
    pass "conntrack timeouts: established $ct_est_def / $ct_est_kp s, close-wait $ct_cw_def / $ct_cw_kp s (kernel / kube-proxy's sysctls) = simulator $se / $ke, $sw / $kw"
else
    fail "conntrack: kernel $ct_est_def $ct_cw_def $ct_est_kp $ct_cw_kp; simulator $se $sw $ke $kw"
fi
[ $fails = 0 ] && echo "kernel-timers: all passed" || echo "kernel-timers: $fails failed"
exit $((fails > 0))

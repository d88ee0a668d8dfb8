#!/usr/bin/env bash
# realchain.sh -- the real chain's pieces as a user meets them: sim --describe / --render /
# --flow-fate / --no-expect on the command line, the rendered configurations accepted by
# nginx -t and haproxy -c, and (as root, where network namespaces exist) one stack built by
# scripts/realstack.sh answering through real kube-proxy rules, then removed without a
# trace -- also when `up` fails or is interrupted. make realtest is the full comparison.
set -uo pipefail
cd "$(dirname "$0")/.."
SIM=./sim
RS=scripts/realstack.sh
fails=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; fails=$((fails + 1)); }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbchain-realchain-test.XXXXXX")
STACKS=()
cleanup() {
    for s in "${STACKS[@]}"; do [ -e "$s/stack.env" ] && $RS down --dir "$s" >/dev/null 2>&1; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the command line ------------------------------------------------------------------------
out=$($SIM --describe -v etp-local scenarios/aks-dsr.yaml)
if jq -e '.variant == "etp-local" and (.load_balancers | map(.name) | index("ilb")) != null' <<< "$out" >/dev/null; then
    pass "--describe prints the variant as JSON"
else
    fail "--describe"
fi
[ "$($SIM --describe -v etp-local scenarios/aks-dsr.yaml | md5sum)" = "$(md5sum <<< "$out")" ] &&
    pass "--describe is deterministic" || fail "--describe differs between runs"

printf 'aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575\nnosuch eth0 1.2.3.4:1 5.6.7.8:2\n' > "$WORK/flows"
err=$($SIM --flow-fate "$WORK/flows" scenarios/aks-dsr.yaml 2>&1 >"$WORK/fate.out"); rc=$?
if [ $rc = 2 ] && grep -q "^$WORK/flows:2:1: error: no node 'nosuch'" <<< "$err" && [ ! -s "$WORK/fate.out" ]; then
    pass "--flow-fate: a bad line is file:line:col, exit 2, nothing written"
else
    fail "--flow-fate bad input (rc $rc: $err)"
fi
$SIM --set duration=20s scenarios/aks-dsr.yaml >/dev/null 2>&1; rc1=$?
$SIM --no-expect --no-db --no-pcap --no-plots -q --set duration=20s -v probe-tcp -o "$WORK/ne" scenarios/aks-dsr.yaml >/dev/null 2>&1; rc2=$?
[ $rc1 = 2 ] && [ $rc2 = 0 ] && pass "--no-expect: a shortened aks-dsr runs (without it: exit 2)" ||
    fail "--no-expect (rc $rc1, $rc2)"
$SIM --render /proc/nonexistent scenarios/aks-dsr.yaml >/dev/null 2>&1
[ $? = 3 ] && pass "--render into a directory that cannot be made: exit 3" || fail "--render bad dir"

# ---- the rendered configurations, as nginx and haproxy read them ---------------------------------
for sv in "aks-probe-404 as-deployed" "aks-dsr as-deployed" "aks-dsr etp-local" "aks-dsr route-for-root" \
          "eks-probe-404 with-health-route" "aks-canary-header with-canary-route"; do
    read -r scen var <<< "$sv"
    d="$WORK/render-$scen-$var"
    $SIM --render "$d" -v "$var" --no-expect "scenarios/$scen.yaml" > "$d.list" 2>&1 || { fail "render $scen/$var"; continue; }
    bad=""
    while read -r kind name file; do
        case $kind in
            pod|hc) nginx -t -q -c "$file" >/dev/null 2>"$d.err" || bad="$bad $name:$(head -1 "$d.err")" ;;
            haproxy) haproxy -c -q -f "$file" >/dev/null 2>"$d.err" || bad="$bad $name:$(head -1 "$d.err")" ;;
        esac
    done < "$d.list"
    [ -z "$bad" ] && pass "$scen/$var: every nginx and haproxy configuration is valid ($(wc -l < "$d.list") files)" ||
        fail "$scen/$var: invalid configurations:$bad"
done

# ---- a stack in network namespaces (root only) ------------------------------------------------
if [ "$(id -u)" != 0 ] || ! ip netns add "lbctest$$" 2>/dev/null; then
    echo "SKIP  realstack: network namespaces are not available here"
    [ $fails = 0 ]; exit
fi
ip netns del "lbctest$$"

S="$WORK/stack"
STACKS+=("$S")
if $RS up scenarios/aks-dsr.yaml -v probe-tcp --cluster-only --dir "$S" > "$WORK/up.log" 2>&1; then
    P=$(. "$S/stack.env"; echo "$P")
    pass "realstack up --cluster-only ($(wc -l < "$S/netns.list") namespaces)"
    # client -> node's nodePort -> kube-proxy DNAT + masquerade -> the gateway (nginx rendered
    # from the HTTPRoutes) -> the app pod; and the gateway's 404 for what no route matches
    np=$(jq -r '.clusters[0].services[] | select(.name == "mtkc-gateway-istio") | .ports[] | select(.name == "http") | .node_port' "$S/describe.json")
    body=$($RS exec --dir "$S" client -- curl -s -m 5 "http://10.224.0.5:$np/app1")
    code=$($RS exec --dir "$S" client -- curl -s -m 5 -o /dev/null -w '%{http_code}' "http://10.224.0.6:$np/nope")
    [ "$body" = "Hello from App 1" ] && [ "$code" = 404 ] &&
        pass "client -> nodePort -> kube-proxy -> gateway -> app: 'Hello from App 1'; no route: 404" ||
        fail "traffic through the stack ('$body', $code)"
    hc=$($RS exec --dir "$S" aks-user-0 -- iptables-save -t nat | grep -c '^-A KUBE-')
    [ "$hc" -gt 10 ] && pass "kube-proxy's rules loaded in the node namespace ($hc nat rules)" || fail "node rules ($hc)"
    $RS down --dir "$S" >/dev/null 2>&1
    left=$(ip netns list | grep -c "^$P-")
    [ "$left" = 0 ] && [ -z "$(cut -d' ' -f1 "$S/pids.list" 2>/dev/null)" ] &&
        pass "realstack down: no namespace or process left" || fail "realstack down left $left namespaces"
else
    cat "$WORK/up.log"
    fail "realstack up"
fi

# the L4 stand-in follows the health verdicts it is given (the prober's line format):
# no healthy node, no new flows; a node up, its flows delivered (floating IP, DSR replies);
# and App Gateway's haproxy through it
S4="$WORK/stack4"
STACKS+=("$S4")
if $RS up scenarios/aks-dsr.yaml -v etp-local --l4-health feed --dir "$S4" > "$WORK/up4.log" 2>&1; then
    feed="$S4/l4-ilb.health"
    chk=$(jq -r '.load_balancers[] | select(.name == "ilb") | .rules[] | select(.name == "http") | .probe.check.name' "$S4/describe.json")
    c0=$($RS exec --dir "$S4" client -- curl -s -m 1 -o /dev/null -w '%{http_code}' http://10.224.0.7/app1)
    echo "health $chk aks-system-0 initial -> up: HTTP 200 on GET /healthz port 1" > "$feed"
    sleep 0.3
    c1=$($RS exec --dir "$S4" client -- curl -s -m 2 -o /dev/null -w '%{http_code}' http://10.224.0.7/app1)
    c2=$($RS exec --dir "$S4" client -- curl -s -m 5 -o /dev/null -w '%{http_code}' http://20.50.0.10/app2)
    echo "health $chk aks-system-0 up -> down: HTTP 503 on GET /healthz port 1" > "$feed"
    sleep 0.3
    c3=$($RS exec --dir "$S4" client -- curl -s -m 1 -o /dev/null -w '%{http_code}' http://10.224.0.7/app1)
    [ "$c0/$c1/$c2/$c3" = "000/200/200/000" ] &&
        pass "L4 stand-in: no healthy node drops new flows; aks-system-0 up delivers them (also via App Gateway's haproxy); down again drops them" ||
        fail "L4 stand-in health (got $c0/$c1/$c2/$c3, want 000/200/200/000; $(tail -2 "$S4/l4-ilb.log" | tr '\n' ' '))"
    $RS down --dir "$S4" >/dev/null 2>&1
else
    cat "$WORK/up4.log"
    fail "realstack up --l4-health feed"
fi

# a failing up removes what it built: here nginx refuses to start, after every namespace
# exists
S2="$WORK/stack2"
STACKS+=("$S2")
mkdir -p "$WORK/bin"
printf '#!/bin/sh\necho "nginx: [emerg] refused by the test" >&2\nexit 1\n' > "$WORK/bin/nginx"
chmod +x "$WORK/bin/nginx"
PATH="$WORK/bin:$PATH" $RS up scenarios/aks-dsr.yaml -v probe-tcp --cluster-only --dir "$S2" > "$WORK/up2.log" 2>&1
rc=$?
left=0
while read -r ns; do ip netns list | grep -q "^$ns\b" && left=$((left + 1)); done < <(cat "$S2/netns.list" 2>/dev/null)
[ $rc != 0 ] && [ $left = 0 ] && grep -q "refused by the test" "$WORK/up2.log" &&
    pass "a failing up (nginx will not start) exits $rc, says why, and leaves nothing" ||
    fail "failing up (rc $rc, $left namespaces left)"
# ... and so does an interrupted one: its nginx starts take a second each (a wrapper before
# the real one), so the signal comes while it is still setting up, however fast the machine
mkdir -p "$WORK/slow"
printf '#!/bin/sh\nsleep 1\nexec %s "$@"\n' "$(command -v nginx)" > "$WORK/slow/nginx"
chmod +x "$WORK/slow/nginx"
S3="$WORK/stack3"
STACKS+=("$S3")
PATH="$WORK/slow:$PATH" $RS up scenarios/aks-dsr.yaml -v probe-tcp --cluster-only --dir "$S3" \
    > "$WORK/up3.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do [ -s "$S3/netns.list" ] && break; sleep 0.1; done
sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
left=0
while read -r ns; do ip netns list | grep -q "^$ns\b" && left=$((left + 1)); done < <(cat "$S3/netns.list" 2>/dev/null)
[ $rc != 0 ] && [ $left = 0 ] && pass "an interrupted up (SIGTERM) exits $rc and leaves nothing" ||
    fail "interrupted up (rc $rc, $left namespaces left)"

[ $fails = 0 ]

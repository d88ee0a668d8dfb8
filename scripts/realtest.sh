#!/usr/bin/env bash
# realtest.sh -- `make realtest`: simulation and reality side by side. Each variant below is
# built for real in network namespaces (scripts/realstack.sh), run in simulation and with
# `sim --real` against that stack from the client's namespace, and the two compared; then
# the kube-proxy packet-fate differential (scripts/kubeproxy-fates.sh). See
# docs/REALCHAIN.md for the stand-ins and what they cannot show.
#
# Tolerances (a row agrees when all hold):
#   - the share of 2xx answers within 2 points;
#   - the same dominant failure (the most frequent non-2xx status or failure class), when
#     either side has more than 2% failures;
#   - the same final health of every backend of the load balancers' own probes (checkers
#     present on both sides; kubelet's readiness probes are left out: the real chain has
#     no kubelet);
#   - rows marked `expect` run with the scenario's expectations on both sides: every
#     expectation's verdict the same, and every share an expectation measures (k/n
#     requests) within 3 standard errors of the other side's (the two-proportion binomial
#     SE, pooled: sqrt(p(1-p)(1/n1 + 1/n2))).
# REALTEST_VARIANTS=REGEX runs only the rows whose "scenario/variant" matches (extended
# regular expression), kube-proxy rows included.
# The last two lines are exactly
#   realtest: V variants compared, A agree
#   kube-proxy flows: F compared, G agree
# Exit status: 0 everything agrees, 1 something disagrees or failed; on a machine without
# network namespaces it says so and exits 0 (nothing could be compared).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIM=${SIM:-$ROOT/sim}
RS="$ROOT/scripts/realstack.sh"
cd "$ROOT"

# scenario, variant, duration[, expect]. Durations are shortened with --set (the scenarios' own run
# minutes); each is long enough for its mechanism to show: App Gateway's 20 s request
# timeout needs a few requests to complete (aks-dsr/as-deployed), the ALB's two failed
# checks 10 s apart take 10 s (eks-probe-404/as-deployed); the canary's shares need some
# thousand requests to be told apart from their bounds (aks-canary-header: 50/s).
VARIANTS=(
    "scenarios/aks-probe-404.yaml as-deployed 12s"
    "scenarios/aks-probe-404.yaml with-health-route 12s"
    "scenarios/aks-dsr.yaml as-deployed 28s"
    "scenarios/aks-dsr.yaml probe-tcp 12s"
    "scenarios/aks-dsr.yaml route-for-root 12s"
    "scenarios/aks-dsr.yaml etp-local 12s"
    "scenarios/aks-dsr.yaml etp-local-nftables 12s"
    "scenarios/eks-probe-404.yaml as-deployed 15s"
    "scenarios/eks-probe-404.yaml with-health-route 12s"
    "scenarios/aks-canary-header.yaml with-canary-route 30s expect"
    "scenarios/aks-canary-header.yaml without-canary-route 20s expect"
)
# kube-proxy packet-fate differential: ETP Cluster and ETP Local, loadBalancerSourceRanges,
# kube-proxy in iptables and in nftables mode; flows per variant
KP_VARIANTS=("scenarios/aks-dsr.yaml as-deployed" "scenarios/aks-dsr.yaml etp-local"
             "scenarios/aks-dsr.yaml etp-local-nftables"
             "scenarios/aks-source-ranges.yaml default" "scenarios/aks-source-ranges.yaml nftables")
KP_FLOWS=${KP_FLOWS:-12}
TOL_2XX=0.02            # 2xx share: 2 points
TOL_FAIL=0.02           # failures below this share on both sides: no dominant failure
TOL_SE=3                # expectation shares: standard errors
FILTER=${REALTEST_VARIANTS:-}
# "scenarios/x.yaml var ..." -> does "x/var" match the filter?
selected() {
    local scen var
    read -r scen var _ <<< "$1"
    [ -z "$FILTER" ] || [[ "$(basename "$scen" .yaml)/$var" =~ $FILTER ]]
}
if [ -n "$FILTER" ]; then
    sel=()
    for e in "${VARIANTS[@]}"; do selected "$e" && sel+=("$e"); done
    [ ${#sel[@]} -gt 0 ] || { echo "realtest: REALTEST_VARIANTS=$FILTER matches no variant" >&2; exit 2; }
    VARIANTS=("${sel[@]}")
    sel=()
    for e in "${KP_VARIANTS[@]}"; do selected "$e" && sel+=("$e"); done
    KP_VARIANTS=("${sel[@]+"${sel[@]}"}")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbchain-realtest.XXXXXX")
STACK=""
cleanup() {
    [ -n "$STACK" ] && [ -e "$STACK/stack.env" ] && "$RS" down --dir "$STACK" >/dev/null 2>&1 || true
    [ -n "${REALTEST_KEEP:-}" ] && echo "realtest: kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() {
    echo "realtest: SKIPPED -- $*"
    echo "realtest: 0 variants compared, 0 agree"
    echo "kube-proxy flows: 0 compared, 0 agree"
    exit 0
}

[ -x "$SIM" ] || { echo "realtest: $SIM is not built (make sim)" >&2; exit 1; }
if [ "$(id -u)" != 0 ] || ! ip netns add "lbcrt$$" 2>/dev/null; then
    skip "network namespaces are not available here (needs root with CAP_NET_ADMIN)"
fi
ip netns del "lbcrt$$"
if ! grep -q -- '--real' <<< "$("$SIM" --help 2>&1)"; then
    echo "realtest: this sim has no real-socket mode (--real): nothing to compare the simulation with" >&2
    exit 1
fi

# ---- one variant -----------------------------------------------------------------------------

# "2xx 0.0%, 504 100.0%": the outcome shares of a summary.json variant, by status for
# answered requests and by class for the rest, largest first (shares >= 0.5%).
shares() {
    jq -r '.variants[0] as $v | ($v.requests // 0) as $n
        | if $n == 0 then "no requests" else
          ([ ($v.outcomes | to_entries[] | select(.key | test("^[2-5]xx$") | not) | select(.value > 0) | {k: .key, n: .value}),
             ($v.statuses // {} | to_entries[] | select(.value > 0) | {k: .key, n: .value}) ]
           | sort_by(-.n) | map(select(.n / $n >= 0.005)) | map("\(.k) \(100 * .n / $n * 10 | round / 10)%") | join(", "))
          end' "$1"
}

# the median latency of a summary.json variant's completed requests, "20.1s" / "1.0ms"
p50() {
    jq -r '.variants[0].latency_s.p50 // empty | if . >= 1 then "\(. * 10 | round / 10)s"
           else "\(. * 10000 | round / 10)ms" end' "$1" 2>/dev/null
}

# share of 2xx, and the dominant failure ("-" when failures are below TOL_FAIL)
share2xx() { jq -r '.variants[0] | if (.requests // 0) == 0 then 0 else .outcomes["2xx"] / .requests end' "$1"; }
dominant() {
    jq -r --argjson tol "$TOL_FAIL" '.variants[0] as $v | ($v.requests // 0) as $n
        | [ ($v.outcomes | to_entries[] | select(.key | test("^[2-5]xx$") | not) | select(.value > 0) | {k: .key, n: .value}),
            ($v.statuses // {} | to_entries[] | select(.key | test("^2") | not) | select(.value > 0) | {k: .key, n: .value}) ]
        | sort_by(-.n) | if $n == 0 or length == 0 or ((map(.n) | add) / $n) < $tol then "-" else .[0].k end' "$1"
}

# final health per checker and target from results.db: "checker target state" lines; a
# target probed but never changing state is "unchanged" (still in the checker's initial
# state: up for a warm-started App Gateway or ALB, initial for an Azure LB's new backend)
verdicts() {
    sqlite3 -separator ' ' "$1" "
        WITH last AS (SELECT checker, target, MAX(t_s) AS t FROM health GROUP BY checker, target)
        SELECT h.checker, h.target, h.to_state FROM health h JOIN last l
          ON h.checker = l.checker AND h.target = l.target AND h.t_s = l.t
        WHERE h.checker NOT LIKE 'kubelet:%'
        UNION
        SELECT DISTINCT p.checker, p.target, 'unchanged' FROM probes p
        WHERE p.checker NOT LIKE 'kubelet:%'
          AND NOT EXISTS (SELECT 1 FROM health h WHERE h.checker = p.checker AND h.target = p.target)
        ORDER BY 1, 2;" 2>/dev/null | sort -u
}

# an expectation per line of a summary.json variant: "pass<TAB>value<TAB>k<TAB>n<TAB>expect"
# (k/n: the requests counted, from the detail "0.1 (68/683 requests ...)"; empty if none)
expectations() {
    jq -r '.variants[0].expectations // [] | .[]
        | ([(.detail // "") | capture("\\((?<k>[0-9]+)/(?<n>[0-9]+) ")] | .[0] // {k: "", n: ""}) as $c
        | [(.pass | tostring), (.value // "" | tostring), $c.k, $c.n, .expect] | @tsv' "$1"
}

# sim and real expectation lines side by side -> one line per disagreement
expect_diff() {
    paste "$1" "$2" | awk -F'\t' -v tol="$TOL_SE" '
        $5 != $10 { print "expectation lists differ: " $5 " vs " $10; next }
        $1 != $6 { print $5 ": sim " ($1 == "true" ? "pass" : "FAIL") ", real " ($6 == "true" ? "pass" : "FAIL"); next }
        $3 != "" && $8 != "" && $4 > 0 && $9 > 0 {
            a = $3 / $4; b = $8 / $9; p = ($3 + $8) / ($4 + $9)
            se = sqrt(p * (1 - p) * (1 / $4 + 1 / $9)); d = a - b; if (d < 0) d = -d
            if (d > tol * se + 1e-12)
                printf "%s: share %.4f vs %.4f, %.1f SE\n", $5, a, b, (se > 0 ? d / se : 99) }'
    [ "$(wc -l < "$1")" = "$(wc -l < "$2")" ] || echo "sim has $(wc -l < "$1") expectations, real $(wc -l < "$2")"
}

# "ilb/http-30575: aks-system-0 down, aks-user-0 down; appgw-0: 10.224.0.7 up" from
# verdict lines
verdict_summary() {
    awk '{ if ($1 != c) { printf "%s%s: ", (c != "" ? "; " : ""), $1; c = $1; sep = "" }
           printf "%s%s %s", sep, $2, $3; sep = ", " }' "$1"
}

ROWS=()
V=0 A=0
i=0
for entry in "${VARIANTS[@]}"; do
    read -r scen var dur mark <<< "$entry"
    i=$((i + 1))
    name="$(basename "$scen" .yaml)/$var"
    sets=(--set "duration=$dur")
    noexp=(--no-expect)
    [ "${mark:-}" = expect ] && noexp=()
    out="$WORK/$i"
    mkdir -p "$out"
    echo "realtest: $name ($dur)" >&2
    STACK="$out/stack"
    if ! "$RS" up "$scen" -v "$var" "${sets[@]}" --dir "$STACK" > "$out/up.log" 2>&1; then
        cat "$out/up.log" >&2
        ROWS+=("$(printf '%-39s %s' "$name" "FAILED: the real stack did not come up")")
        V=$((V + 1))
        continue
    fi
    client=$(jq -r '[.nodes[] | select(.role == "host") | .name][0]' "$STACK/describe.json")
    "$SIM" -q --no-pcap --no-plots "${noexp[@]}" -v "$var" "${sets[@]}" -o "$out/sim" "$scen" > "$out/sim.log" 2>&1 || true
    "$RS" exec --dir "$STACK" "$client" -- "$SIM" --real "$STACK/bindings.yaml" -q --no-pcap --no-plots \
        "${noexp[@]}" -v "$var" "${sets[@]}" -o "$out/real" "$scen" > "$out/real.log" 2>&1 || true
    "$RS" down --dir "$STACK" > /dev/null 2>&1 || true
    STACK=""
    s="$out/sim/$(basename "$scen" .yaml)"
    r="$out/real/$(basename "$scen" .yaml)"
    V=$((V + 1))
    if [ ! -f "$r/summary.json" ] || [ ! -f "$s/summary.json" ]; then
        tail -5 "$out/real.log" >&2
        ROWS+=("$(printf '%-39s %s' "$name" "FAILED: no $( [ -f "$s/summary.json" ] && echo real || echo simulated ) results")")
        continue
    fi
    verdicts "$s/results.db" > "$out/sim.verdicts"
    verdicts "$r/results.db" > "$out/real.verdicts"
    # compare only the checkers both sides ran
    join -j1 <(awk '{print $1}' "$out/sim.verdicts" | sort -u) <(awk '{print $1}' "$out/real.verdicts" | sort -u) > "$out/checkers"
    grep -F -w -f "$out/checkers" "$out/sim.verdicts" > "$out/sim.v" || true
    grep -F -w -f "$out/checkers" "$out/real.verdicts" > "$out/real.v" || true
    why=()
    s2=$(share2xx "$s/summary.json"); r2=$(share2xx "$r/summary.json")
    awk -v a="$s2" -v b="$r2" -v t="$TOL_2XX" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t + 1e-9) }' ||
        why+=("2xx $(awk -v a="$s2" 'BEGIN{printf "%.1f", 100*a}')% vs $(awk -v a="$r2" 'BEGIN{printf "%.1f", 100*a}')%")
    sd=$(dominant "$s/summary.json"); rd=$(dominant "$r/summary.json")
    [ "$sd" = "$rd" ] || why+=("dominant failure $sd vs $rd")
    cmp -s "$out/sim.v" "$out/real.v" || why+=("backend health differs: $(diff "$out/sim.v" "$out/real.v" | grep '^[<>]' | tr '\n' ';' | head -c 200)")
    [ -s "$out/sim.v" ] || why+=("no probe verdicts to compare")
    expnote=""
    if [ "${mark:-}" = expect ]; then
        expectations "$s/summary.json" > "$out/sim.exp"
        expectations "$r/summary.json" > "$out/real.exp"
        expect_diff "$out/sim.exp" "$out/real.exp" > "$out/exp.diff"
        ne=$(wc -l < "$out/sim.exp")
        if [ "$ne" = 0 ]; then why+=("no expectations to compare")
        elif [ -s "$out/exp.diff" ]; then why+=("$(tr '\n' ';' < "$out/exp.diff" | head -c 300)")
        fi
        expnote="; expectations: sim $(grep -c '^true' "$out/sim.exp")/$ne pass, real $(grep -c '^true' "$out/real.exp")/$ne pass"
        # the measured shares, side by side, for the log
        paste "$out/sim.exp" "$out/real.exp" | awk -F'\t' '{ printf "  %-62s sim %s (%s/%s) real %s (%s/%s)\n", $5, $2, $3, $4, $7, $8, $9 }' >&2
    fi
    ok=yes
    if [ ${#why[@]} -gt 0 ]; then ok="NO: $(IFS='; '; echo "${why[*]}")"; else A=$((A + 1)); fi
    if cmp -s "$out/sim.v" "$out/real.v"; then verd="both: $(verdict_summary "$out/sim.v")"
    else verd="sim: $(verdict_summary "$out/sim.v") | real: $(verdict_summary "$out/real.v")"; fi
    verd="$verd$expnote"
    ROWS+=("$(printf '%-38s | %-28s | %-28s | %-6s | %s' "$name" "$(shares "$s/summary.json") p50 $(p50 "$s/summary.json")" \
        "$(shares "$r/summary.json") p50 $(p50 "$r/summary.json")" "$ok" "$verd")")
done

echo
printf '%-38s | %-28s | %-28s | %-6s | %s\n' "variant" "sim outcomes" "real outcomes" "agree?" \
    "probe verdicts per backend (final state)"
for row in "${ROWS[@]}"; do echo "$row"; done
cat <<'NOTES'
notes: outcome shares are of the requests completed within the shortened duration (by
  status, or failure class). Latencies are shown, not compared: App Gateway's 504 comes
  after its 20 s request timeout in both, but the stand-in's timing is haproxy's (timeout
  connect), not App Gateway's internals. haproxy cannot tell a refused connection from a
  timed-out one (App Gateway: 502 vs 504); no variant here refuses. Backends "unchanged"
  kept their initial state (a warm-started App Gateway/ALB: up). Every stand-in
  difference: docs/REALCHAIN.md.
NOTES
echo

# ---- kube-proxy ------------------------------------------------------------------------------
F=0 G=0
for entry in "${KP_VARIANTS[@]}"; do
    read -r scen var <<< "$entry"
    set +e
    "$ROOT/scripts/kubeproxy-fates.sh" "$scen" "$var" "$KP_FLOWS" 1 > "$WORK/kp.out" 2>&1
    set -e
    grep -v '^kube-proxy flows' "$WORK/kp.out" || true
    line=$(grep '^kube-proxy flows' "$WORK/kp.out" | tail -1)
    f=$(sed -n 's/.*: \([0-9]*\) compared, \([0-9]*\) agree.*/\1/p' <<< "$line")
    g=$(sed -n 's/.*: \([0-9]*\) compared, \([0-9]*\) agree.*/\2/p' <<< "$line")
    F=$((F + ${f:-0})); G=$((G + ${g:-0}))
    echo "$line"
done

echo "realtest: $V variants compared, $A agree"
echo "kube-proxy flows: $F compared, $G agree"
[ "$V" = "$A" ] && [ "$F" = "$G" ] && { [ "$F" -gt 0 ] || [ ${#KP_VARIANTS[@]} = 0 ]; }

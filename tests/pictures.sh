#!/usr/bin/env bash
# pictures.sh -- the topology and packet-ladder pictures as a user gets them: aks-dsr
# as-deployed drawn with what its run saw (dropped SYNs at the internal LB with reason and
# count, every node down on the HTTP probe, the ladder's SYN retransmissions, probe 404 and
# 504), every SVG parsed as XML (xmllint) and every PNG decoded (pngcheck), the same bytes
# twice, TLS flights and the HTTP inside them in eks-https-targets' ladders, `sim --draw`
# without a run (also a shared segment, drawn as a box of its own), --no-pictures, and a
# PATH without Graphviz (the run still succeeds and says so). Run by `make test` from the
# repo root (SIM=path overrides).
set -u
SIM=${SIM:-./sim}
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then ok; else bad "$name"; fi; }
has() { grep -q -- "$2" "$1"; }
lacks() { ! grep -q -- "$2" "$1"; }
# Graphviz writes '-' in SVG text as &#45;
svg_has() { sed 's/&#45;/-/g' "$1" | grep -q -- "$2"; }

"$SIM" -q --out "$tmp/a" -v as-deployed scenarios/aks-dsr.yaml >"$tmp/out" 2>"$tmp/err"
check "sim ran (exit $?)" test -s "$tmp/a/aks-dsr/summary.json"
d=$tmp/a/aks-dsr
have_dot=0; command -v dot >/dev/null 2>&1 && have_dot=1
have_rsvg=0; command -v rsvg-convert >/dev/null 2>&1 && have_rsvg=1

# ---- the files ----
for f in topology.dot topology.mmd topology-as-deployed.dot topology-as-deployed.mmd \
         ladder-as-deployed.svg ladder-as-deployed.mmd; do
  check "$f written" test -s "$d/$f"
done
if [ $have_dot = 1 ]; then
  for f in topology.svg topology.png topology-as-deployed.svg topology-as-deployed.png; do
    check "$f written" test -s "$d/$f"
  done
else
  echo "pictures: Graphviz not installed: topology SVG/PNG checks skipped (apt-get install graphviz)"
fi
[ $have_rsvg = 1 ] && check "ladder-as-deployed.png written" test -s "$d/ladder-as-deployed.png"
check "no temporary files left" test -z "$(find "$d" -name '.*.tmp')"
if command -v xmllint >/dev/null 2>&1; then
  for f in "$d"/*.svg; do check "$(basename "$f") parses as XML" xmllint --noout "$f"; done
else
  echo "pictures: xmllint not installed: SVG parse checks skipped (apt-get install libxml2-utils)"
fi
if command -v pngcheck >/dev/null 2>&1; then
  for f in "$d"/*.png; do check "$(basename "$f") decodes" pngcheck -q "$f"; done
else
  echo "pictures: pngcheck not installed: PNG decode checks skipped (apt-get install pngcheck)"
fi

# ---- what the run saw, on the topology ----
t=$d/topology-as-deployed.dot
for n in client appgw-0 appgw-1 ilb aks-system-0 aks-user-0 aks-user-1 mtkc-gateway-istio-0 \
         sample-app-1-0 10.224.0.7 10.224.0.4 30575; do
  check "topology names $n" has "$t" "$n"
  [ $have_dot = 1 ] && check "topology.svg names $n" svg_has "$d/topology-as-deployed.svg" "$n"
done
drops=$(sed -n 's/.*"drops.lb-no-healthy-backend":[[:space:]]*\([0-9]*\).*/\1/p' "$d/summary.json" | head -1)
check "the run dropped SYNs at the LB ($drops)" test "${drops:-0}" -gt 1000
check "the LB's box says how many it dropped and why" \
  grep -q "ilb</B>.*dropped $drops packets: lb-no-healthy-backend, $drops of them SYNs" "$t"
check "the LB's box says its backends were down on the HTTP probe" \
  grep -q "ilb</B>.*3 of 3 backends DOWN on probe GET /: HTTP 404" "$t"
check "each LB -> node edge is marked down by the probe's 404" \
  test "$(grep -c 'DOWN from [0-9.]* s: HTTP 404' "$t")" = 3
check "App Gateway's member down after its own probes" has "$t" "DOWN from 90.000 s: connect timeout"
check "the design (topology.dot) has no run marks" test -z "$(grep -E 'DOWN|dropped' "$d/topology.dot")"
check "Mermaid topology" has "$d/topology-as-deployed.mmd" "flowchart LR"
check "Mermaid marks" has "$d/topology-as-deployed.mmd" "class n[0-9]* bad"

# ---- the packet ladder ----
l=$d/ladder-as-deployed.svg
for s in "5xx example: browse flow 9" "GET /app1" "SYN (retransmission 4), dropped at ilb: lb-no-healthy-backend" \
         "HTTP 404 Not Found" "HTTP 504 Gateway Time-out" "NAT dst" "backend aks-user-1 DOWN"; do
  check "ladder shows $s" has "$l" "$s"
done
check "ladder lanes in the direction of traffic" \
  test "$(grep -o '>\(client\|appgw-1\|ilb\|aks-user-1\|mtkc-gateway-istio-0\)</text>' "$l" | head -5 | tr -d '\n')" \
       = ">client</text>>appgw-1</text>>ilb</text>>aks-user-1</text>>mtkc-gateway-istio-0</text>"
check "Mermaid ladder" has "$d/ladder-as-deployed.mmd" "sequenceDiagram"
check "Mermaid ladder marks the drops" grep -q 'L[0-9]*-xL[0-9]*: .*SYN' "$d/ladder-as-deployed.mmd"

# ---- TLS in the ladders: the flights by name, the HTTP message inside application data ----
"$SIM" -q --no-plots --no-db --no-pcap --no-expect --set duration=3s --out "$tmp/tls" \
  -v as-deployed -v listener-without-hostname scenarios/eks-https-targets.yaml >/dev/null 2>&1
t=$tmp/tls/eks-https-targets
check "ladder: the ALB's ClientHello without SNI" has "$t/ladder-as-deployed.mmd" "TLS ClientHello (no SNI)"
check "ladder: Envoy's RST after it" grep -q 'L[0-9]*->>L[0-9]*: .* RST' "$t/ladder-as-deployed.mmd"
check "ladder: ServerHello of the working listener" has "$t/ladder-listener-without-hostname.mmd" "TLS ServerHello"
check "ladder: the request inside TLS" has "$t/ladder-listener-without-hostname.mmd" "GET /app1 in TLS"
check "ladder: the response inside TLS" has "$t/ladder-listener-without-hostname.mmd" "HTTP 200 OK in TLS"
check "TLS ladder SVG parses" xmllint --noout "$t/ladder-listener-without-hostname.svg"

# ---- the same bytes twice ----
"$SIM" -q --out "$tmp/b" -v as-deployed scenarios/aks-dsr.yaml >/dev/null 2>&1
for f in "$d"/topology* "$d"/ladder*; do
  check "$(basename "$f") identical in a second run" cmp -s "$f" "$tmp/b/aks-dsr/$(basename "$f")"
done

# ---- --draw: the topology without a run ----
"$SIM" --draw --out "$tmp/draw" scenarios/aks-dsr.yaml >"$tmp/draw.out" 2>"$tmp/draw.err"
check "--draw exits 0" test $? = 0
check "--draw writes topology.dot" test -s "$tmp/draw/aks-dsr/topology.dot"
# a shared segment is a box of its own, every member linked to it
"$SIM" --draw --out "$tmp/seg" scenarios/routed-lan.yaml >"$tmp/seg.out" 2>"$tmp/seg.err"
check "--draw routed-lan exits 0" test $? = 0
check "the segment drawn" has "$tmp/seg/routed-lan/topology.dot" "segment 10.0.1.0/24"
check "three members linked to the segment (n4)" \
  test "$(grep -c -- '-> n4 \[dir=none\]\|n4 -> n[0-9]* \[dir=none\]' "$tmp/seg/routed-lan/topology.dot")" = 3
check "--draw writes a topology per variant" test -s "$tmp/draw/aks-dsr/topology-etp-local.mmd"
check "--draw prints what it wrote" has "$tmp/draw.out" "aks-dsr/topology.mmd"
check "--draw simulates nothing" test ! -e "$tmp/draw/aks-dsr/summary.json"
check "--draw runs nothing (no table, no results folder)" lacks "$tmp/draw.out" "simulated"
check "--draw: the design equals a run's" cmp -s "$tmp/draw/aks-dsr/topology.dot" "$d/topology.dot"
"$SIM" --draw --out "$tmp/draw2" no-such.yaml >/dev/null 2>&1
check "--draw on a missing file exits 2" test $? = 2

# ---- --no-pictures ----
"$SIM" -q --no-pictures --out "$tmp/np" scenarios/core-nat.yaml >/dev/null 2>&1
check "--no-pictures draws nothing" test -z "$(ls "$tmp/np/core-nat" | grep -E 'topology|ladder')"

# ---- no Graphviz on PATH ----
mkdir -p "$tmp/bin"
for p in gnuplot rsvg-convert; do
  q=$(command -v "$p" 2>/dev/null) && ln -s "$q" "$tmp/bin/$p"
done
PATH="$tmp/bin" "$SIM" -q --out "$tmp/nodot" scenarios/core-nat.yaml >"$tmp/nodot.out" 2>"$tmp/nodot.err"
rc=$?
check "without Graphviz the run succeeds (exit $rc)" test $rc = 0
check "without Graphviz sim says so" has "$tmp/nodot.err" "graphviz not found: pictures skipped"
check "said once" test "$(grep -c 'graphviz not found' "$tmp/nodot.err")" = 1
check "without Graphviz the DOT and Mermaid text are written" test -s "$tmp/nodot/core-nat/topology.mmd"
check "without Graphviz no stale topology picture" test ! -e "$tmp/nodot/core-nat/topology.svg"
check "without Graphviz the report says why" has "$tmp/nodot/core-nat/report.html" "Graphviz (<code>dot</code>) was not found"
check "without Graphviz everything else is written" test -s "$tmp/nodot/core-nat/summary.json"

echo "pictures: $pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# make real-demo: real-socket mode end to end on this machine. Starts an nginx stand-in of
# the AKS chain on 127.0.0.0/8 (scripts/standin-nginx.sh: routes that answer, / answering
# 404, kube-proxy's /healthz per node, the health route), writes its bindings, then
#   1. the probe audit of aks-dsr as deployed and with the fix (--probes-only): the
#      internal LB's HTTP probe of / gets 404 on every node -> every node DOWN;
#      externalTrafficPolicy Local probes /healthz -> the node with the gateway UP;
#   2. aks-probe-404 (the fixed variant, shortened) played on real sockets with
#      --compare: the table, the probe verdicts, simulation and reality side by side;
# and leaves the results folder (results.db with runs of mode sim and real, requests with
# phase times, report.html with simulation vs reality). nginx is stopped at the end.
#   DEMO_OUT=results/real-demo make real-demo
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_OUT:-results/real-demo}
tmp=$(mktemp -d /tmp/lbchain-real-demo.XXXXXX)
trap 'bash scripts/standin-nginx.sh stop "$tmp/nginx" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
port=$(bash scripts/standin-nginx.sh start "$tmp/nginx")
mkdir -p "$out"
cp "$tmp/nginx/bindings.yaml" "$out/bindings.yaml"
echo "== nginx stand-in on 127.0.0.1-3:$port; bindings: $out/bindings.yaml"
sed 's/^/   /' "$out/bindings.yaml"

echo
echo "== 1. probe audit: ./sim --real $out/bindings.yaml --probes-only -v as-deployed -v etp-local scenarios/aks-dsr.yaml"
./sim --real "$out/bindings.yaml" --probes-only --out "$out" -v as-deployed -v etp-local \
  scenarios/aks-dsr.yaml

echo
echo "== 2. traffic and probes, simulated and real: ./sim --real $out/bindings.yaml --compare --set duration=20s -v with-health-route scenarios/aks-probe-404.yaml"
rc=0
./sim --real "$out/bindings.yaml" --compare --out "$out" --set duration=20s \
  -v with-health-route scenarios/aks-probe-404.yaml || rc=$?

db="$out/aks-probe-404/results.db"
echo
echo "== results in $out/aks-probe-404/: report.html, summary.json, results.db:"
sqlite3 -header -column "$db" "SELECT id, variant, mode, status, requests FROM runs ORDER BY id DESC LIMIT 2"
echo
sqlite3 -header -column "$db" "SELECT source, path, class, round(t_sent_s - t_start_s, 6) AS late_s,
  round(connect_s * 1e3, 3) AS connect_ms, round(ttfb_s * 1e3, 3) AS ttfb_ms,
  round(total_s * 1e3, 3) AS total_ms FROM requests
  WHERE run_id = (SELECT max(id) FROM runs WHERE mode = 'real') LIMIT 5"
exit $rc

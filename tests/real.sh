#!/usr/bin/env bash
# real.sh -- real-socket mode against real servers on 127.0.0.0/8 (nothing else is ever
# addressed): nginx (Debian) as a stand-in of the AKS chain (scripts/standin-nginx.sh:
# routes that answer, / answering 404, the health paths) and build/realsrv's misbehaving
# servers (tests/realsrv.c), all on dynamic ports, all stopped by a trap.
#   - every outcome class observed with real sockets and classified as the simulator
#     classifies the same failure (--compare --check: the same expectations hold in both);
#   - what a request carries (method, paths rotating, Host, body, Connection: close);
#   - probe verdicts against 404 on / and 200/503 on /healthz; --watch lines;
#   - the intended-time correction: a 1 s stall shows as ~1 s latencies for the requests
#     due in it, also when they could not even start (max-in-flight 1, counted as delayed);
#     a response timeout in it ends each request 300 ms after its send;
#   - TLS: Host and SNI kept through connect-to, verification on unless insecure: true;
#   - keep-alive connections the server closes while idle: a new one each, no busy loop;
#   - idle keep-alive connections are kept as the simulated client keeps them: a second
#     burst of requests reuses the first burst's connections;
#   - exit codes: --check 0 and 1, 5 when nothing is reached, 2 for bad bindings
#     (file:line:col, nothing written) and unbound names, 130 on SIGINT (written, marked
#     incomplete); nothing is sent without bindings or above the rate cap;
#   - results.db (mode real, bindings, phase times), summary.json, report.html with
#     simulation and reality side by side, an earlier simulated run as the baseline.
# Run by `make test` from the repo root; about half a minute (real runs take wall time).
set -u
SIM=${SIM:-./sim}
SRV=${SRV:-./build/realsrv}
tmp=$(mktemp -d /tmp/lbchain-real.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  bash scripts/standin-nginx.sh stop "$tmp/nginx" 2>/dev/null
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "real: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. tests/lib.sh
q() { sqlite3 "$1" "$2"; }

for tool in nginx sqlite3 jq curl; do
  command -v $tool >/dev/null 2>&1 || { bad "$tool is not installed (scripts/install-deps.sh)"; echo "real: $pass passed, $fail failed"; exit 1; }
done

# ---- servers ----------------------------------------------------------------------------
nport=$(bash scripts/standin-nginx.sh start "$tmp/nginx") || { bad "nginx did not start"; exit 1; }
# srv NAME MODE [options]: a realsrv in the background; its port in $tmp/NAME.port
srv() {
  local name=$1; shift
  "$SRV" "$1" "$tmp/$name.port" "${@:2}" --max-time 90 &
  pids+=($!)
}
srv silent silent
srv reset reset
srv closed close
srv garbage garbage
srv slow slow --delay 300
srv full full
srv ok ok
srv stall stall --stall-at 500 --stall-for 1000
srv stall1 stall --stall-at 500 --stall-for 1000
srv stall2 stall --stall-at 500 --stall-for 1000
srv bursts stall --stall-at 500 --stall-for 1000 --stall-every 2000
srv tick ok
refused=$("$SRV" port)          # nobody listens there
for n in silent reset closed garbage slow full ok stall stall1 stall2 bursts tick; do
  for _ in $(seq 1 50); do [ -s "$tmp/$n.port" ] && break; sleep 0.1; done
  [ -s "$tmp/$n.port" ] || bad "realsrv $n did not start"
  eval "p_$n=\$(cat \"$tmp/$n.port\")"
done

# ---- scenarios ----------------------------------------------------------------------------
# Outcome classes: each failure built in the simulation from its mechanism (no server: RST;
# an INPUT DROP: SYNs unanswered; REJECT tcp-reset on established packets: RST after the
# handshake; a 5 s service time against a 1 s response timeout) and in reality by a server.
cat > "$tmp/classes.yaml" <<'Y'
name: real-classes
seed: 7
duration: 3s
nodes:
  client: { type: host }
  ok: { type: host }
  notfound: { type: host }
  refused: { type: host }
  ctimeout: { type: host, iptables: ["-A INPUT -p tcp --dport 80 -j DROP"] }
  rtimeout: { type: host }
  reset: { type: host, iptables: ["-A INPUT -p tcp --dport 80 -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset"] }
  slow: { type: host }
links:
  - { between: [client, ok], latency: 100us }
  - { between: [client, notfound], latency: 100us }
  - { between: [client, refused], latency: 100us }
  - { between: [client, ctimeout], latency: 100us }
  - { between: [client, rtimeout], latency: 100us }
  - { between: [client, reset], latency: 100us }
  - { between: [client, slow], latency: 100us }
apps:
  web: { type: http-server, on: ok, locations: [ { path: /app1 } ] }
  web404: { type: http-server, on: notfound, locations: [ { path: /app1 } ] }
  webdrop: { type: http-server, on: ctimeout, locations: [ { path: / } ] }
  stuck: { type: http-server, on: rtimeout, locations: [ { path: /, service-time: 5s } ] }
  webrst: { type: http-server, on: reset, locations: [ { path: / } ] }
  sloth: { type: http-server, on: slow, locations: [ { path: /, service-time: 300ms } ] }
traffic:
  to-ok: { type: http-client, from: client, to: ok, path: /app1, rate: 5/s, arrival: constant, stop: 2s }
  to-404: { type: http-client, from: client, to: notfound, path: /, rate: 5/s, arrival: constant, stop: 2s }
  to-refused: { type: http-client, from: client, to: refused, rate: 5/s, arrival: constant, stop: 2s }
  to-silent-syn: { type: http-client, from: client, to: ctimeout, rate: 2/s, arrival: constant, stop: 1s, connect-timeout: 1s }
  to-stuck: { type: http-client, from: client, to: rtimeout, rate: 2/s, arrival: constant, stop: 1s, response-timeout: 1s }
  to-reset: { type: http-client, from: client, to: reset, rate: 5/s, arrival: constant, stop: 2s }
  to-slow: { type: http-client, from: client, to: slow, rate: 5/s, arrival: constant, stop: 2s }
expect:
  "*":
    - "to-ok.status_2xx_ratio == 1"
    - "to-404.status_404_ratio == 1"
    - "to-refused.refused_ratio == 1"
    - "to-silent-syn.connect_timeout_ratio == 1"
    - "to-stuck.response_timeout_ratio == 1"
    - "to-reset.reset_ratio == 1"
    - "to-slow.status_2xx_ratio == 1"
    - "to-slow.latency_p50 > 250ms"
    - "to-slow.latency_p50 < 600ms"
Y
cat > "$tmp/classes.bind.yaml" <<Y
scenario: real-classes
nodes:
  ok: "127.0.0.1:$nport"
  notfound: "127.0.0.1:$nport"
  refused: "127.0.0.1:$refused"
  ctimeout: "127.0.0.1:$p_full"
  rtimeout: "127.0.0.1:$p_silent"
  reset: "127.0.0.1:$p_reset"
  slow: "127.0.0.1:$p_slow"
Y
# What only reality has: a FIN instead of an answer, bytes that are not HTTP; and what a
# request carries (method, rotating paths, Host, body size, Connection: close).
cat > "$tmp/odd.yaml" <<'Y'
name: real-odd
seed: 7
duration: 2s
nodes:
  client: { type: host }
  closer: { type: host }
  liar: { type: host }
  echo: { type: host }
links:
  - { between: [client, closer] }
  - { between: [client, liar] }
  - { between: [client, echo] }
traffic:
  to-closer: { type: http-client, from: client, to: closer, rate: 4/s, arrival: constant, stop: 1s }
  to-liar: { type: http-client, from: client, to: liar, rate: 4/s, arrival: constant, stop: 1s }
  form: { type: http-client, from: client, to: echo, method: PUT, host: shop.example.com,
          path: [/a, /b, /c], request-size: 300, keepalive: false, rate: 6/s,
          arrival: constant, stop: 1s }
  mix: { type: http-client, from: client, to: echo, path: /m, headers: ["x-team: blue"],
         rate: 30/s, arrival: constant, stop: 1s,
         requests-mix: [ { weight: 3, path: /m/get },
                         { weight: 1, method: POST, path: /m/post, host: canary.example,
                           headers: ["x-canary: true", "x-team: red"], body: "hello=world" } ] }
expect:
  "*":
    - "to-closer.closed_ratio == 1"
    - "to-liar.status_2xx_ratio == 0"
    - "form.status_2xx_ratio == 1"
    - 'mix.body_match_ratio("ok") == 1'
    - 'mix.header_match_ratio("X-SERVED-BY", "realsrv") == 1'
    - 'to-liar.body_match_ratio("ok") == 0'
Y
cat > "$tmp/odd.bind.yaml" <<Y
nodes:
  closer: "127.0.0.1:$p_closed"
  liar: "127.0.0.1:$p_garbage"
  echo: "127.0.0.1:$p_ok"
Y
# The intended-time correction: open loop at 50/s into a server that stalls for 1 s, once
# with room for every request, once with one request in flight at a time; and once with a
# 300 ms response timeout (counted from each request's send, also on reused handles).
cat > "$tmp/stall.yaml" <<'Y'
name: real-stall
seed: 7
duration: 3s
nodes:
  client: { type: host }
  s: { type: host }
  s1: { type: host }
  s2: { type: host }
links:
  - { between: [client, s] }
  - { between: [client, s1] }
  - { between: [client, s2] }
apps:
  web: { type: http-server, on: "s*", locations: [ { path: / } ] }
traffic:
  open: { type: http-client, from: client, to: s, rate: 50/s, arrival: constant, stop: 2500ms }
  one-at-a-time: { type: http-client, from: client, to: s1, rate: 50/s, arrival: constant, stop: 2500ms }
  timeout: { type: http-client, from: client, to: s2, rate: 50/s, arrival: constant, stop: 2500ms,
             response-timeout: 300ms }
Y
cat > "$tmp/stall.bind.yaml" <<Y
nodes: { s: "127.0.0.1:$p_stall", s1: "127.0.0.1:$p_stall1", s2: "127.0.0.1:$p_stall2" }
traffic:
  one-at-a-time: { max-in-flight: 1 }
Y
# A run long enough to be interrupted.
cat > "$tmp/long.yaml" <<'Y'
name: real-long
seed: 7
duration: 60s
nodes:
  client: { type: host }
  s: { type: host }
links: [ { between: [client, s] } ]
apps:
  web: { type: http-server, on: s, locations: [ { path: / } ] }
traffic:
  tick: { type: http-client, from: client, to: s, rate: 20/s }
Y
echo "nodes: { s: \"127.0.0.1:$p_tick\" }" > "$tmp/long.bind.yaml"
echo "nodes: { s: \"127.0.0.1:$refused\" }" > "$tmp/nowhere.bind.yaml"

# TLS: an nginx with a certificate for shop.example.com; requests addressed to that name
# (Host and SNI), connected to 127.0.0.1 (connect-to); verification is on unless a
# binding says insecure: true.
mkdir -p "$tmp/tls/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/tls/key.pem" -out "$tmp/tls/cert.pem" \
  -days 1 -subj "/CN=shop.example.com" -addext "subjectAltName=DNS:shop.example.com" \
  >/dev/null 2>&1 || bad "openssl could not make a certificate"
tport=$("$SRV" port)
iport=$("$SRV" port)            # plain HTTP, closing idle keep-alive connections after 20 ms
cat > "$tmp/tls/nginx.conf" <<Y
worker_processes 1;
daemon off;
error_log $tmp/tls/error.log;
pid $tmp/tls/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $tmp/tls/tmp; proxy_temp_path $tmp/tls/tmp;
  fastcgi_temp_path $tmp/tls/tmp; uwsgi_temp_path $tmp/tls/tmp; scgi_temp_path $tmp/tls/tmp;
  # a ClientHello whose SNI names no server (or that has none) is refused, as Envoy
  # refuses one no filter chain matches: the client's outcome is tls-error
  server {
    listen 127.0.0.1:$tport ssl default_server;
    ssl_reject_handshake on;
  }
  server {
    listen 127.0.0.1:$tport ssl;
    server_name shop.example.com;
    ssl_certificate $tmp/tls/cert.pem;
    ssl_certificate_key $tmp/tls/key.pem;
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$iport;
    keepalive_timeout 20ms;
    location / { return 200 "ok\n"; }
  }
}
Y
nginx -c "$tmp/tls/nginx.conf" -p "$tmp/tls" >"$tmp/tls/nginx.out" 2>&1 &
pids+=($!)
cat > "$tmp/tls.yaml" <<'Y'
name: real-tls
seed: 7
duration: 2s
nodes:
  client: { type: host }
  shop: { type: host }
links: [ { between: [client, shop] } ]
apps:
  web: { type: http-server, on: shop, port: 443, locations: [ { path: / } ] }
traffic:
  verified: { type: http-client, from: client, to: shop, port: 443, host: shop.example.com, rate: 3/s, arrival: constant, stop: 1s }
  unverified: { type: http-client, from: client, to: shop, port: 443, host: shop.example.com, rate: 3/s, arrival: constant, stop: 1s }
  insecure: { type: http-client, from: client, to: shop, port: 443, host: shop.example.com, rate: 3/s, arrival: constant, stop: 1s }
  nosni: { type: http-client, from: client, to: shop, port: 443, rate: 3/s, arrival: constant, stop: 1s }
expect:
  "*":
    - "verified.status_2xx_ratio == 1"
    - "unverified.status_2xx_ratio == 0"
    - "insecure.status_2xx_ratio == 1"
    - "nosni.status_2xx_ratio == 0"
Y
cat > "$tmp/tls.bind.yaml" <<Y
traffic:
  verified: { url: "https://shop.example.com:$tport", connect-to: 127.0.0.1, tls: { ca-file: $tmp/tls/cert.pem } }
  unverified: { url: "https://shop.example.com:$tport", connect-to: 127.0.0.1 }
  insecure: { url: "https://shop.example.com:$tport", connect-to: 127.0.0.1, tls: { insecure: true } }
  nosni: { url: "https://127.0.0.1:$tport", tls: { insecure: true } }
Y
for _ in $(seq 1 50); do curl -sk -o /dev/null --connect-to "shop.example.com:$tport:127.0.0.1:$tport" "https://shop.example.com:$tport/" && break; sleep 0.1; done
# Keep-alive connections the server closes while idle: every request finds its connection
# closed and opens another. Real mode keeps an idle connection's socket in its epoll set
# (src/real/driver.c, watch_t); the FIN arriving there must not keep the loop spinning.
cat > "$tmp/idle.yaml" <<'Y'
name: real-idle
seed: 7
duration: 3s
nodes:
  client: { type: host }
  web: { type: host }
links: [ { between: [client, web] } ]
apps:
  site: { type: http-server, on: web, locations: [ { path: / } ] }
traffic:
  sparse: { type: http-client, from: client, to: web, rate: 10/s, arrival: constant, stop: 2500ms }
expect:
  "*":
    - "sparse.status_2xx_ratio == 1"
Y
echo "nodes: { web: \"127.0.0.1:$iport\" }" > "$tmp/idle.bind.yaml"

# Two bursts: the server stalls for 1 s twice, 2 s apart, and ~50 requests pile up in each;
# between them one is in flight at a time. The simulated client keeps its idle keep-alive
# connections (no limit, no idle timeout), so the second burst finds the first one's ~50
# connections idle and opens none. (libcurl's default pool limit, 4x the transfers in
# flight, had closed all but a few of them by then, and the second burst opened ~50 again.)
cat > "$tmp/bursts.yaml" <<'Y'
name: real-bursts
seed: 7
duration: 5s
nodes:
  client: { type: host }
  s: { type: host }
links:
  - { between: [client, s] }
apps:
  web: { type: http-server, on: s, locations: [ { path: / } ] }
traffic:
  open: { type: http-client, from: client, to: s, rate: 50/s, arrival: constant, stop: 4500ms }
Y
echo "nodes: { s: \"127.0.0.1:$p_bursts\" }" > "$tmp/bursts.bind.yaml"

# ---- the long ones, side by side (each waits on the wall clock) ----------------------------
"$SIM" --real "$tmp/classes.bind.yaml" --compare --check --out "$tmp/cls" "$tmp/classes.yaml" \
  >"$tmp/classes.out" 2>"$tmp/classes.err" &
j_classes=$!
"$SIM" --real "$tmp/odd.bind.yaml" --check --out "$tmp/odd" "$tmp/odd.yaml" \
  >"$tmp/odd.out" 2>"$tmp/odd.err" &
j_odd=$!
"$SIM" --real "$tmp/stall.bind.yaml" --max-rate 200 -q --out "$tmp/st" "$tmp/stall.yaml" \
  >"$tmp/stall.out" 2>"$tmp/stall.err" &
j_stall=$!
"$SIM" --real "$tmp/nginx/bindings.yaml" --probes-only --out "$tmp/audit" -v as-deployed \
  scenarios/aks-dsr.yaml >"$tmp/audit.out" 2>"$tmp/audit.err" &
j_audit=$!
"$SIM" --real "$tmp/nginx/bindings.yaml" --probes-only --watch --checker 'ilb/*' -v etp-local \
  --out "$tmp/watch" scenarios/aks-dsr.yaml >"$tmp/watch.out" 2>"$tmp/watch.err" &
j_watch=$!
"$SIM" --real "$tmp/tls.bind.yaml" --check --out "$tmp/tlsout" "$tmp/tls.yaml" \
  >"$tmp/tls.out" 2>"$tmp/tls.err" &
j_tls=$!
# (with proxies in the environment, which real mode never uses)
( TIMEFORMAT='%U %S'; time env http_proxy="http://127.0.0.1:$refused" ALL_PROXY="http://127.0.0.1:$refused" \
    "$SIM" --real "$tmp/idle.bind.yaml" --check -q --out "$tmp/idle" \
    "$tmp/idle.yaml" >"$tmp/idle.out" 2>"$tmp/idle.err" ) 2>"$tmp/idle.cpu" &
j_idle=$!
"$SIM" --real "$tmp/bursts.bind.yaml" -q --out "$tmp/bursts" "$tmp/bursts.yaml" \
  >"$tmp/bursts.out" 2>"$tmp/bursts.err" &
j_bursts=$!
pids+=($j_classes $j_odd $j_stall $j_audit $j_watch $j_tls $j_idle $j_bursts)

# ---- meanwhile: what must fail before anything is sent -------------------------------------
mkdir -p "$tmp/none"
printf 'nodes:\n  s: { address: 127.0.0.1, prts: {80: 1} }\n' > "$tmp/bad.bind.yaml"
check bad-bindings 2 "$SIM" --real "$tmp/bad.bind.yaml" --out "$tmp/none" "$tmp/long.yaml"
contains bad-bindings-pos "$tmp/bad-bindings.err" "bad.bind.yaml:2:"
contains bad-bindings-hint "$tmp/bad-bindings.err" "did you mean 'ports'"
check bad-bindings-yaml 2 "$SIM" --real "$SRV" --out "$tmp/none" "$tmp/long.yaml"
echo '{}' > "$tmp/empty.bind.yaml"
check unbound 2 "$SIM" --real "$tmp/empty.bind.yaml" --out "$tmp/none" -v etp-local scenarios/aks-dsr.yaml
contains unbound-list "$tmp/unbound.err" "needs these names bound"
contains unbound-node "$tmp/unbound.err" "nodes: aks-user-1"
contains unbound-hcnp "$tmp/unbound.err" "services: istio-ingress/mtkc-gateway-istio health-check-node-port"
contains unbound-frontend "$tmp/unbound.err" "elements: appgw"
contains unbound-skip "$tmp/unbound.err" 'skip: ["kubelet:*"]'
echo "nodes: { t: 127.0.0.1 }" > "$tmp/typo.bind.yaml"
check not-in-variant 2 "$SIM" --real "$tmp/typo.bind.yaml" --out "$tmp/none" "$tmp/long.yaml"
contains not-in-variant-msg "$tmp/not-in-variant.err" "typo.bind.yaml:1:"
check rate-cap 2 "$SIM" --real "$tmp/long.bind.yaml" --max-rate 10 --out "$tmp/none" "$tmp/long.yaml"
contains rate-cap-msg "$tmp/rate-cap.err" "above the cap of 10/s"
check no-bindings 2 "$SIM" --probes-only --out "$tmp/none" scenarios/aks-dsr.yaml
contains no-bindings-msg "$tmp/no-bindings.err" "needs --real FILE"
check no-bindings-compare 2 "$SIM" --compare "$tmp/long.yaml"
check real-with-jobs 2 "$SIM" --real "$tmp/long.bind.yaml" --jobs 2 "$tmp/long.yaml"
[ -z "$(ls -A "$tmp/none")" ] && ok || bad "a refused invocation wrote into --out"
[ ! -s "$tmp/tick.port.accepts" ] && ok || bad "a refused invocation connected to the server"
check unreachable 5 "$SIM" --real "$tmp/nowhere.bind.yaml" -q --set duration=1s --out "$tmp/unr" "$tmp/long.yaml"
contains unreachable-msg "$tmp/unreachable.err" "reached nothing"

# signal_after NAME SIG ARGS...: runs sim ARGS in the background (output in $tmp/NAME.out),
# sends SIG 1.5 s later; sets got (its exit status) and ms (how long it took to stop).
signal_after() {
  local name=$1 sig=$2 pid t0
  shift 2
  "$SIM" "$@" >"$tmp/$name.out" 2>&1 &
  pid=$!
  sleep 1.5
  t0=$(date +%s%N)
  kill -"$sig" "$pid"
  wait "$pid"
  got=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# Ctrl-C: stops within a second, writes what it measured, marked incomplete, exit 130.
signal_after int INT --real "$tmp/long.bind.yaml" -q --out "$tmp/int" "$tmp/long.yaml"
[ "$got" = 130 ] && ok || bad "interrupt: exit $got, expected 130"
[ "$ms" -lt 1000 ] && ok || bad "interrupt: took $ms ms to stop"
jq -e '.variants[0].complete == false and .variants[0].mode == "real" and .variants[0].requests > 10' \
  "$tmp/int/real-long/summary.json" >/dev/null 2>&1 && ok || bad "interrupt: summary.json not incomplete with requests"
[ "$(q "$tmp/int/real-long/results.db" "SELECT status || ' ' || mode FROM runs")" = "incomplete real" ] \
  && ok || bad "interrupt: results.db run not 'incomplete real'"

# ---- classes -------------------------------------------------------------------------------------
wait $j_classes; rc=$?
[ $rc = 0 ] && ok || { bad "classes: --compare --check exit $rc"; sed 's/^/    /' "$tmp/classes.out" | tail -30; head -5 "$tmp/classes.err"; }
contains classes-all "$tmp/classes.out" "expectations: 18 passed, 0 failed"
db="$tmp/cls/real-classes/results.db"
got=$(q "$db" "SELECT group_concat(m || ':' || c, ' ') FROM (SELECT r.mode AS m, count(DISTINCT q.class) AS c FROM requests q JOIN runs r ON r.id = q.run_id GROUP BY r.mode ORDER BY r.mode)")
[ "$got" = "real:6 sim:6" ] && ok || bad "classes: distinct classes per mode '$got'"
for cls in 2xx 4xx refused connect_timeout response_timeout reset; do
  s=$(q "$db" "SELECT count(*) FROM requests q JOIN runs r ON r.id = q.run_id WHERE r.mode = 'sim' AND q.class = '$cls'")
  r=$(q "$db" "SELECT count(*) FROM requests q JOIN runs r ON r.id = q.run_id WHERE r.mode = 'real' AND q.class = '$cls'")
  [ "$s" = "$r" ] && [ "$r" -gt 0 ] && ok || bad "class $cls: $s simulated, $r real"
done
[ "$(q "$db" "SELECT mode || ' ' || (bindings IS NOT NULL) FROM runs ORDER BY id")" = "sim 0
real 1" ] && ok || bad "classes: runs.mode/bindings"
[ "$(q "$db" "SELECT count(*) FROM requests q JOIN runs r ON r.id = q.run_id WHERE r.mode = 'real' AND (t_sent_s IS NULL OR total_s IS NULL)")" = 0 ] \
  && ok || bad "classes: real requests without phase times"
[ "$(q "$db" "SELECT count(*) FROM requests q JOIN runs r ON r.id = q.run_id WHERE r.mode = 'real' AND class = '2xx' AND (connect_s <= 0 AND ttfb_s <= 0)")" = 0 ] \
  && ok || bad "classes: 2xx without connect/ttfb times"
[ "$(q "$db" "SELECT count(*) FROM requests q JOIN runs r ON r.id = q.run_id WHERE r.mode = 'sim' AND t_sent_s IS NOT NULL")" = 0 ] \
  && ok || bad "classes: simulated requests with phase times"
contains classes-compare "$tmp/classes.out" "simulation vs reality, default"
html="$tmp/cls/real-classes/report.html"
contains report-section "$html" 'id="real">Simulation and reality'
contains report-real "$html" "default (real)"
contains report-sim "$html" "default (sim)"

wait $j_odd; rc=$?
[ $rc = 0 ] && ok || { bad "odd: --check exit $rc"; tail -12 "$tmp/odd.out"; }
db="$tmp/odd/real-odd/results.db"
[ "$(q "$db" "SELECT group_concat(DISTINCT outcome) FROM requests WHERE source = 'to-liar'")" = "bad-response" ] \
  && ok || bad "garbage: outcome $(q "$db" "SELECT group_concat(DISTINCT outcome) FROM requests WHERE source = 'to-liar'")"
[ "$(q "$db" "SELECT group_concat(DISTINCT class) FROM requests WHERE source = 'to-liar'")" = "other_error" ] \
  && ok || bad "garbage: not other_error"
req="$tmp/ok.port.requests"
contains carries-method "$req" "PUT /a host=shop.example.com connection=close length=300"
contains carries-rotation "$req" "PUT /b host=shop.example.com"
contains carries-rotation-c "$req" "PUT /c host=shop.example.com"
# request kinds: each kind's method, Host, headers (the source's, a kind's replacing one of
# the same name) and body; the same kinds in the same order as the simulation draws them
contains kind-post "$req" "POST /m/post host=canary.example connection= length=11 accept= x=x-team:red,x-canary:true body=hello=world"
grep -q "^GET /m/get host=127.0.0.1:$p_ok connection= length=0 accept= x=x-team:blue body=\$" "$req" && ok \
  || bad "kind-get: no plain GET /m/get with the source's header"
real_kinds=$(q "$db" "SELECT group_concat(path, ' ') FROM (SELECT path FROM requests WHERE source = 'mix' ORDER BY req_id)")
"$SIM" --quiet --out "$tmp/odd-sim" "$tmp/odd.yaml" >/dev/null 2>&1
sim_kinds=$(q "$tmp/odd-sim/real-odd/results.db" "SELECT group_concat(path, ' ') FROM (SELECT path FROM requests WHERE source = 'mix' ORDER BY req_id)")
[ -n "$real_kinds" ] && [ "$real_kinds" = "$sim_kinds" ] && case "$real_kinds" in *post*get*|*get*post*) true;; *) false;; esac \
  && ok || bad "kinds: real sent '$real_kinds', the simulation drew '$sim_kinds'"
# the request is the simulated client's: no Accept header of libcurl's own
[ "$(grep -c ' accept= ' "$req")" = "$(wc -l < "$req")" ] && [ -s "$req" ] && ok \
  || bad "requests carry an Accept header: $(grep -v ' accept= ' "$req" | head -1)"

wait $j_tls; rc=$?
[ $rc = 0 ] && ok || { bad "tls: --check exit $rc"; tail -8 "$tmp/tls.out"; head -3 "$tmp/tls.err"; }
[ "$(q "$tmp/tlsout/real-tls/results.db" "SELECT group_concat(DISTINCT outcome) FROM requests WHERE source = 'unverified'")" = "tls-error" ] \
  && ok || bad "tls: an unverifiable certificate is not a tls-error"
[ "$(q "$tmp/tlsout/real-tls/results.db" "SELECT group_concat(DISTINCT outcome) FROM requests WHERE source = 'nosni'")" = "tls-error" ] \
  && ok || bad "tls: a handshake refused for want of SNI is not a tls-error (as simulated)"
# the first request of a connection has a handshake after its connect (later ones reuse it)
[ "$(q "$tmp/tlsout/real-tls/results.db" "SELECT count(*) > 0 FROM requests WHERE source = 'verified' AND tls_s > connect_s AND connect_s > 0")" = 1 ] \
  && ok || bad "tls: no TLS phase time after the connect"

wait $j_idle; rc=$?
[ $rc = 0 ] && ok || { bad "idle: --check exit $rc"; tail -8 "$tmp/idle.out"; head -3 "$tmp/idle.err"; }
[ "$(q "$tmp/idle/real-idle/results.db" "SELECT count(*) FROM requests WHERE connect_s > 0")" = 25 ] \
  && ok || bad "idle: not every request on a new connection"
# a loop spinning on the idle sockets' FIN would use the 3 s run's CPU; it takes ~0.4 s
awk '{ exit !($1 + $2 < 1.5) }' "$tmp/idle.cpu" && ok || bad "idle: the run used $(cat "$tmp/idle.cpu") s of CPU"

wait $j_bursts; rc=$?
[ $rc = 0 ] && ok || { bad "bursts: exit $rc"; head -3 "$tmp/bursts.err"; }
db="$tmp/bursts/real-bursts/results.db"
first=$(q "$db" "SELECT count(*) FROM requests WHERE connect_s > 0 AND t_start_s < 2")
second=$(q "$db" "SELECT count(*) FROM requests WHERE connect_s > 0 AND t_start_s >= 2")
# the first burst needs ~50 connections; the second reuses them (a few new at most, where
# it piles up more requests than the first)
[ "$first" -ge 30 ] && [ "$second" -le 10 ] && ok ||
  bad "bursts: new connections $first in the first burst, $second in the second (want <= 10)"

# ---- the stall -------------------------------------------------------------------------------------
wait $j_stall; rc=$?
[ $rc = 0 ] && ok || { bad "stall: exit $rc"; head -5 "$tmp/stall.err"; }
db="$tmp/st/real-stall/results.db"
# 50/s from 0 to 2.5 s: all 125 requests of each source, none skipped
[ "$(q "$db" "SELECT group_concat(n) FROM (SELECT count(*) AS n FROM requests GROUP BY source ORDER BY source)")" = "125,125,125" ] \
  && ok || bad "stall: requests per source $(q "$db" "SELECT group_concat(n) FROM (SELECT count(*) AS n FROM requests GROUP BY source)")"
# the stall began 0.5 s after the first request: a request due at t in it waits until ~1.5 s
for src in open one-at-a-time; do
  res=$(q "$db" "SELECT count(*), max(abs((t_end_s - t_start_s) - (s.e - t_start_s))) FROM requests,
        (SELECT min(t_sent_s) + 1.5 AS e FROM requests) s
        WHERE source = '$src' AND t_start_s BETWEEN 0.65 AND 1.35")
  n=${res%%|*}; err=${res##*|}
  [ "$n" -ge 30 ] && awk "BEGIN{exit !($err < 0.15)}" && ok \
    || bad "stall $src: $n requests due in the stall, worst error $err s against ~1.5 s - due"
  mx=$(q "$db" "SELECT max(t_end_s - t_start_s) FROM requests WHERE source = '$src'")
  awk "BEGIN{exit !($mx > 0.85 && $mx < 1.3)}" && ok || bad "stall $src: max latency $mx s, expected ~1 s"
done
# one at a time: held requests could not even start (sent late), still counted from when due
late=$(q "$db" "SELECT count(*) FROM requests WHERE source = 'one-at-a-time' AND t_sent_s - t_start_s > 0.3")
[ "$late" -ge 20 ] && ok || bad "stall one-at-a-time: only $late requests sent late"
jq -e '.variants[0].delayed_requests >= 20 and .variants[0].counters["real.one-at-a-time.delayed"] >= 20' \
  "$tmp/st/real-stall/summary.json" >/dev/null && ok || bad "stall: delayed requests not counted"
# the response timeout: the requests sent into the stall end 300 ms after their send, none later
res=$(q "$db" "SELECT count(*), max(abs(t_end_s - t_sent_s - 0.3)) FROM requests
      WHERE source = 'timeout' AND class = 'response_timeout'")
n=${res%%|*}; err=${res##*|}
[ "$n" -ge 25 ] && awk "BEGIN{exit !($err < 0.1)}" && ok \
  || bad "stall timeout: $n response timeouts, worst error $err s against 300 ms from the send"
mx=$(q "$db" "SELECT max(t_end_s - t_sent_s) FROM requests WHERE source = 'timeout'")
awk "BEGIN{exit !($mx < 0.4)}" && ok || bad "stall timeout: a request took $mx s from its send"

# ---- probes ----------------------------------------------------------------------------------------
wait $j_audit; rc=$?
[ $rc = 0 ] && ok || { bad "audit: exit $rc"; head -5 "$tmp/audit.err"; }
contains audit-404 "$tmp/audit.out" "ilb/http-30575: aks-user-1 DOWN: HTTP 404 on GET / port $nport (Azure LB requires 200)"
contains audit-404-0 "$tmp/audit.out" "ilb/http-30575: aks-system-0 DOWN: HTTP 404 on GET / port $nport"
contains audit-tcp "$tmp/audit.out" "ilb/tcp-31048: aks-user-0 UP: connected on TCP connect port $nport"
# App Gateway's member is the internal LB's frontend, wherever the cloud allocated it
grep -qE "appgw-0: 10\.224\.[0-9.]+ UP: HTTP 200 on GET /healthz/ready port $nport\$" "$tmp/audit.out" \
  && ok || bad "audit-appgw: no 'appgw-0: <ilb frontend> UP: HTTP 200 ...' in audit.out"
db="$tmp/audit/aks-dsr/results.db"
[ "$(q "$db" "SELECT count(*) FROM health WHERE checker = 'ilb/http-30575' AND to_state = 'down' AND reason = 'HTTP 404'")" = 3 ] \
  && ok || bad "audit: health transitions to down in results.db"
kill -TERM $j_watch 2>/dev/null
wait $j_watch
contains watch-initial "$tmp/watch.out" "health ilb/http-30986 aks-user-0 initial: not probed yet, probing GET /healthz port $nport"
contains watch-up "$tmp/watch.out" "health ilb/http-30986 aks-system-0 initial -> up: HTTP 200 (localEndpoints 1) on GET /healthz port $nport"
contains watch-down "$tmp/watch.out" "health ilb/http-30986 aks-user-1 initial -> down: HTTP 503 (localEndpoints 0) on GET /healthz port $nport"
n=$(grep -c '^health ' "$tmp/watch.out")
[ "$n" = 6 ] && ok || bad "watch: $n health lines, expected 3 initial + 3 transitions"

# ---- an earlier simulation as the baseline; --check failing in reality ------------------------------
"$SIM" -q --out "$tmp/base" --set duration=3s -v with-health-route scenarios/aks-probe-404.yaml >/dev/null 2>&1
check baseline 0 "$SIM" --real "$tmp/nginx/bindings.yaml" --out "$tmp/base" --set duration=3s \
  -v with-health-route scenarios/aks-probe-404.yaml
contains baseline-used "$tmp/baseline.out" "(simulation: results.db run 1)"
grep -qE "^  2xx +100.0% \(40\) +100.0% \(40\)" "$tmp/baseline.out" && ok || bad "baseline: 2xx shares not 100% in both"
# backend states agree (latencies on a loaded machine may not: they are not asserted)
grep -E '^  (ilb|appgw)' "$tmp/baseline.out" | grep -q differs \
  && bad "baseline: a backend's state differs: $(grep -E '^  (ilb|appgw).*differs' "$tmp/baseline.out")" || ok
contains baseline-report "$tmp/base/aks-probe-404/report.html" "Simulation: run 1 of this folder"
jq -e '[.variants[] | .mode] == ["real"]' "$tmp/base/aks-probe-404/summary.json" >/dev/null \
  && ok || bad "baseline: summary.json should hold this invocation's run only"
sed "s/127.0.0.1:$nport\"        # App/127.0.0.1:$refused\"        # App/" "$tmp/nginx/bindings.yaml" > "$tmp/wrong.bind.yaml"
check check-fails 1 "$SIM" --real "$tmp/wrong.bind.yaml" --check --set duration=2s \
  -v with-health-route scenarios/aks-probe-404.yaml
contains check-fails-line "$tmp/check-fails.out" "FAIL  aks-probe-404/with-health-route (real): browse.status_2xx_ratio >= 0.999"

# ---- --real-threads 2: the work split over two threads, the totals as with one ----------------
# Closed loop: 5 users of 40 requests each (users 0, 2, 4 on one thread, 1 and 3 on the
# other): all 200 sent and answered only if both threads play their users; open loop: 40
# arrivals at 20/s, alternating between the threads: 40 only if each plays its own.
cat > "$tmp/threads.yaml" <<'Y'
name: real-threads
seed: 7
duration: 3s
nodes:
  client: { type: host }
  web: { type: host }
links: [ { between: [client, web] } ]
apps:
  site: { type: http-server, on: web, locations: [ { path: /app1 } ] }
traffic:
  users: { type: http-client, from: client, to: web, path: /app1, mode: closed, users: 5, requests: 40, ramp-up: 0s }
  arrivals: { type: http-client, from: client, to: web, path: /app1, rate: 20/s, arrival: constant, stop: 2s }
expect:
  "*":
    - "users.status_2xx_ratio == 1"
    - "arrivals.status_2xx_ratio == 1"
Y
echo "nodes: { web: \"127.0.0.1:$nport\" }" > "$tmp/threads.bind.yaml"
check threads 0 "$SIM" --real "$tmp/threads.bind.yaml" --real-threads 2 --check -q --out "$tmp/thr" "$tmp/threads.yaml"
db="$tmp/thr/real-threads/results.db"
# per source: requests, answered 200, distinct req_id
sent() { q "$db" "SELECT count(*) || ' ' || sum(status = 200) || ' ' || count(DISTINCT req_id) FROM requests WHERE source = '$1'"; }
[ "$(sent users)" = "200 200 200" ] && ok || bad "threads: users: $(sent users), expected 200 200 200"
[ "$(sent arrivals)" = "40 40 40" ] && ok || bad "threads: arrivals: $(sent arrivals), expected 40 40 40"
sed 's/"users.status_2xx_ratio == 1"/"users.status_4xx_ratio == 1"/' "$tmp/threads.yaml" > "$tmp/threads-fail.yaml"
check threads-check-fails 1 "$SIM" --real "$tmp/threads.bind.yaml" --real-threads 2 --check -q --set duration=1s \
  --out "$tmp/thr-fail" "$tmp/threads-fail.yaml"
# the global cap holds in total: 4 users without think time for 2 s under --max-rate 50 may
# send 50/s plus the cap's one second of burst, about 150 (each thread 25/s and its burst),
# not twice that
sed -e 's/users: 5, requests: 40,/users: 4,/' -e '/arrivals/d' -e 's/^duration: 3s/duration: 2s/' \
  "$tmp/threads.yaml" > "$tmp/threads-cap.yaml"
check threads-cap 0 "$SIM" --real "$tmp/threads.bind.yaml" --real-threads 2 --max-rate 50 -q \
  --out "$tmp/thr-cap" "$tmp/threads-cap.yaml"
n=$(jq '.variants[0].requests' "$tmp/thr-cap/real-threads/summary.json" 2>/dev/null)
[ "${n:-0}" -ge 100 ] && [ "${n:-0}" -le 165 ] && ok || bad "threads: $n requests under --max-rate 50 in 2 s, expected about 150"
# SIGTERM stops every thread within a second; what was measured is written, incomplete
signal_after thr-int TERM --real "$tmp/long.bind.yaml" --real-threads 2 -q --out "$tmp/thr-int" "$tmp/long.yaml"
[ "$got" = 130 ] && ok || bad "threads: SIGTERM: exit $got, expected 130"
[ "$ms" -lt 1000 ] && ok || bad "threads: SIGTERM: took $ms ms to stop"
jq -e '.variants[0].complete == false and .variants[0].requests > 10' \
  "$tmp/thr-int/real-long/summary.json" >/dev/null 2>&1 && ok || bad "threads: SIGTERM: summary.json not incomplete with requests"
for v in 0 65 two; do
  check "threads-bad-$v" 2 "$SIM" --real "$tmp/threads.bind.yaml" --real-threads "$v" --out "$tmp/none" "$tmp/threads.yaml"
  contains "threads-bad-$v-msg" "$tmp/threads-bad-$v.err" "--real-threads expects an integer from 1 to 64, got '$v'"
done
check threads-no-real 2 "$SIM" --real-threads 2 --out "$tmp/none" "$tmp/threads.yaml"
contains threads-no-real-msg "$tmp/threads-no-real.err" "--real-threads needs --real FILE"
[ -z "$(ls -A "$tmp/none" 2>/dev/null)" ] && ok || bad "threads: a refused invocation wrote into --out"

echo "real: $pass passed, $fail failed"
[ "$fail" = 0 ]

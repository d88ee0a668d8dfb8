#!/usr/bin/env bash
# standin-nginx.sh -- a small stand-in for the AKS chain on this machine's loopback, for
# real-socket mode's demo and tests: one nginx (Debian), one port, three addresses:
#   127.0.0.1  the node with the Istio gateway pod (aks-system-0): kube-proxy's
#              healthCheckNodePort /healthz answers 200 {"localEndpoints":1}
#   127.0.0.2, 127.0.0.3  the user nodes without one: /healthz answers 503 {"localEndpoints":0}
# and on every address, as the gateway answers through any node: /app1 and /app2 200 (the
# routes), /healthz/ready 200 (the health route), / 404 (no route for it, as Envoy answers).
# It also writes bindings for scenarios/aks-dsr.yaml and aks-probe-404.yaml: the App
# Gateway's and the internal LB's frontends and the nodes all on that port (an nginx is no
# load balancer: traffic reaches the "gateway" directly; docs/REAL-MODE.md).
#
#   scripts/standin-nginx.sh start DIR   config in DIR, nginx started; prints the port
#   scripts/standin-nginx.sh stop DIR    stops that nginx
# The port is picked free at start (build/realsrv port); nothing listens beyond 127.0.0.0/8.
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)

case "$cmd" in
start)
  mkdir -p "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  port=$("$here/build/realsrv" port)
  hc_ok='{"service":{"namespace":"istio-ingress","name":"mtkc-gateway-istio"},"localEndpoints":1,"serviceProxyHealthy":true}'
  hc_no='{"service":{"namespace":"istio-ingress","name":"mtkc-gateway-istio"},"localEndpoints":0,"serviceProxyHealthy":true}'
  common="
    location = / { return 404 \"no route for /\\n\"; }
    location /app1 { return 200 \"app1\\n\"; }
    location /app2 { return 200 \"app2\\n\"; }
    location /healthz/ready { return 200 \"ready\\n\"; }"
  cat > "$dir/nginx.conf" <<EOF
# written by scripts/standin-nginx.sh
worker_processes 1;
daemon off;
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  default_type text/plain;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location = /healthz { default_type application/json; return 200 '$hc_ok'; }$common
  }
  server {
    listen 127.0.0.2:$port;
    listen 127.0.0.3:$port;
    location = /healthz { default_type application/json; return 503 '$hc_no'; }$common
  }
}
EOF
  nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/nginx.out" 2>&1 &
  echo $! > "$dir/nginx.launcher.pid"
  for _ in $(seq 1 50); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/app1" 2>/dev/null; then break; fi
    sleep 0.1
  done
  curl -s -o /dev/null "http://127.0.0.1:$port/app1" || { cat "$dir/nginx.out" >&2; exit 1; }
  echo "$port" > "$dir/port"
  cat > "$dir/bindings.yaml" <<EOF
# bindings for the stand-in on 127.0.0.0/8 (scripts/standin-nginx.sh): every name on port $port
elements:
  appgw: "127.0.0.1:$port"        # App Gateway's frontend: the traffic goes here
  ilb: "127.0.0.1:$port"          # the internal LB's frontend, which App Gateway probes
nodes:
  aks-system-0: "127.0.0.1:$port" # has the gateway pod
  aks-user-0: "127.0.0.2:$port"
  aks-user-1: "127.0.0.3:$port"
skip: ["kubelet:*"]               # readiness probes of pods: no pods here
EOF
  echo "$port"
  ;;
stop)
  if [ -f "$dir/nginx.pid" ]; then kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true; fi
  if [ -f "$dir/nginx.launcher.pid" ]; then kill "$(cat "$dir/nginx.launcher.pid")" 2>/dev/null || true; fi
  rm -f "$dir/nginx.pid" "$dir/nginx.launcher.pid"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

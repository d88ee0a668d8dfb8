#!/usr/bin/env bash
# realstack.sh -- a scenario's chain built for real on this machine, in network namespaces,
# from lbchain's own description of it (sim --describe; sim --render: the stand-ins'
# configurations and each node's rules, exactly what --dump-iptables / --dump-nft print):
# real kernels (netfilter, conntrack, routing), real nginx pods, haproxy for the L7 load
# balancers and a router for the L4 ones. See docs/REALCHAIN.md.
#
#   scripts/realstack.sh up SCENARIO.yaml [-v VARIANT] [--set KEY=VALUE]... [options]
#   scripts/realstack.sh down [--dir DIR]
#   scripts/realstack.sh exec [--dir DIR] NODE -- COMMAND...    run in a node's namespace
#   scripts/realstack.sh status [--dir DIR]
#
# up options:
#   --dir DIR          where the stack keeps its state, configs and logs
#                      (default results/realstack/<prefix>; results/realstack/current links it)
#   --cluster-only     the cluster and the clients only: no L4/L7 load balancers (quiet
#                      nodes, for the kube-proxy packet-fate differential)
#   --l4-health MODE   prober (default): the L4 stand-ins follow lbchain's real prober
#                      (sim --real ... --probes-only --watch) run in their namespace;
#                      all-up: every backend counts as healthy (no probes; for debugging);
#                      feed: they read verdicts written to STATE/l4-<lb>[-<zone>].health,
#                      a named pipe, in the prober's line format (tests, experiments)
#
# Every namespace and process is named with a per-run prefix (lbc<6 hex>, or
# $REALSTACK_PREFIX when set), listed in the
# state directory and removed by `down` -- and by `up` itself when it fails. Nothing is
# configured outside the namespaces: the fabric is a bridge in its own namespace, every
# veth is created directly inside the namespaces it joins, and no namespace has a way out.
# Exit status: 0 ok, 2 bad usage, 77 network namespaces not available (skipped), 1 failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIM=${SIM:-$ROOT/sim}
HERE=$(cd "$(dirname "$0")" && pwd)
EXIT_SKIP=77

die() { echo "realstack: $*" >&2; exit 1; }
usage() { sed -n '6,/^# Every namespace/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and the tools.
check_namespaces() {
    local t="lbcprobe$$"
    for tool in ip iptables-restore nft conntrack nginx haproxy jq; do
        command -v "$tool" >/dev/null 2>&1 || { echo "realstack: $tool is not installed (scripts/install-deps.sh)" >&2; return 1; }
    done
    if ! ip netns add "$t" 2>/dev/null; then
        echo "realstack: network namespaces are not available here (needs root with CAP_NET_ADMIN)" >&2
        return 1
    fi
    ip netns del "$t"
}

sanitize() { printf '%s' "${1//[^A-Za-z0-9_.-]/-}"; }

# ---- state ---------------------------------------------------------------------------------
STATE=""      # the state directory
P=""          # the prefix

state_load() {
    local dir=${1:-$ROOT/results/realstack/current}
    [ -e "$dir/stack.env" ] || die "no stack in $dir (scripts/realstack.sh up first)"
    STATE=$(cd "$dir" && pwd -P)
    # shellcheck disable=SC1091
    . "$STATE/stack.env"
}

# Starts "$@" in namespace $1 in the background, named "<prefix>-$2" (its argv[0], what ps
# shows), its output in $STATE/$2.log; records its pid.
start() {
    local ns=$1 name=$2; shift 2
    ip netns exec "$ns" bash -c 'exec -a "$0" "$@"' "$P-$name" "$@" > "$STATE/$name.log" 2>&1 &
    echo "$! $name" >> "$STATE/pids.list"
}

teardown() {
    local dir=$1
    [ -d "$dir" ] || return 0
    if [ -f "$dir/pids.list" ]; then
        # the processes this stack started, by pid, newest first
        tac "$dir/pids.list" | while read -r pid name; do
            [ -n "$pid" ] || continue
            pkill -TERM -P "$pid" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
        done
        sleep 0.2
        tac "$dir/pids.list" | while read -r pid name; do
            [ -n "$pid" ] || continue
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        done
        rm -f "$dir/pids.list"
    fi
    if [ -f "$dir/netns.list" ]; then
        local ns
        # processes left in a namespace (an nginx worker, a daemon) go with it
        while read -r ns; do
            [ -n "$ns" ] || continue
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        done < "$dir/netns.list"
        while read -r ns; do
            [ -n "$ns" ] || continue
            ip netns del "$ns" 2>/dev/null || true
        done < "$dir/netns.list"
        rm -f "$dir/netns.list"
    fi
}

# ---- the plan: what to build, from the description ------------------------------------------
# Each line: a verb and its arguments, in the order they must happen.
plan() {
    jq -r --arg P "$P" --arg cluster_only "$CLUSTER_ONLY" '
      def san: gsub("[^A-Za-z0-9_.-]"; "-");
      def nsof($n): if $n.role == "l7-instance" then $P + "-" + ($n.element | san)
                    else $P + "-" + ($n.name | san) end;
      def ip2n: split(".") | map(tonumber) | .[0]*16777216 + .[1]*65536 + .[2]*256 + .[3];
      def inpfx($a; $p; $l): if $l == 0 then true else
          (($a|ip2n) - (($a|ip2n) % pow(2; 32 - $l))) == (($p|ip2n) - (($p|ip2n) % pow(2; 32 - $l))) end;
      . as $d
      | ($d.load_balancers | map({key: .name, value: .}) | from_entries) as $lbs
      # nodes that are built: L7 instances collapse into their element; --cluster-only
      # leaves the load balancers out
      | [ $d.nodes[]
          | select($cluster_only == "0" or (.role | IN("l7-instance","l4-probe","l4-node") | not)) ]
      | (map(select(.role == "l7-instance")) | group_by(.element) | map(.[0].name)) as $l7first
      | map(select(.role != "l7-instance" or (.name | IN($l7first[])))) as $built
      | [ $d.nodes[] | select(.role == "l7-instance") ] as $l7all
      | ($built | map(.name)) as $names
      # namespaces
      | ( $d.fabrics[] | "fabric \($P)-fab-\(.name|san) \(.name)" ),
        ( $built[] | "ns \(nsof(.)) \(.role) \(.name) \(.element // "-")" ),
      # fabric attachments: one veth per fabric interface, its far end on the bridge
        ( $built[] | . as $n | .interfaces[] | select(.fabric)
          | "attach \($P)-fab-\(.fabric|san) \(nsof($n)) \(.name)" ),
      # addresses: the interfaces own, then the extra ones (frontends) on lo
        ( $built[] | . as $n | select(.role != "l7-instance") | .interfaces[] | select(.address)
          | "addr \(nsof($n)) \(.name) \(.address)/\(.prefix_len)" ),
        ( $l7all[] | select(.name | IN($l7first[])) | . as $n
          | ($l7all | map(select(.element == $n.element)) | map(.interfaces[0].address + "/" + (.interfaces[0].prefix_len|tostring)) | unique)[]
          | "addr \(nsof($n)) \($n.interfaces[0].name) \(.)" ),
        ( $built[] | . as $n | ([ $l7all[] | select(.element == $n.element) | .addresses[] ] + .addresses) | unique[]
          | "lo \(nsof($n)) \(.)" ),
      # point-to-point links (pod veths), once each
        ( $built[] | . as $n | .interfaces[] | select(.link) | select(.link.node | IN($names[]))
          | select($n.name < .link.node)
          | "link \(nsof($n)) \(.name) \($P)-\(.link.node|san) \(.link.iface)" ),
      # routes of link interfaces as the simulator has them
        ( $built[] | . as $n | ([.interfaces[] | select(.link) | .name]) as $lk
          | .routes[] | select(.dev | IN($lk[]))
          | "route \(nsof($n)) \(.prefix) \(.via // "-") \(.dev)" ),
      # a fabric delivers by address: every other member on-link, extra prefixes (pod
      # CIDRs) via their node, frontends via the L4 router of their LB or on-link (an L7
      # stand-in or NLB node holds the address itself)
        ( $built[] | . as $n | .interfaces[] | select(.fabric) as $fif
          | ($d.fabrics[] | select(.name == $fif.fabric)) as $f
          | ( ([$f.attached[] | select(.node as $nn | ($names + ($l7all | map(.name))) | index($nn) != null)]
               | map(select(.node != $n.name))
               | map(select(($fif.address == null) or (inpfx(.address; $fif.address; $fif.prefix_len) | not)))
               | map(.address) | unique)[]
              | "route \(nsof($n)) \(.)/32 - \($fif.name)" ),
            ( $n.routes[] | select(.dev == $fif.name and .prefix == "0.0.0.0/0")
              | "route \(nsof($n)) 0.0.0.0/0 \(.via // "-") \($fif.name)" ),
            ( $f.routes[] | select(.node != $n.name) | select(.node | IN($names[]))
              | "route \(nsof($n)) \(.prefix) \(.via) \($fif.name)" ),
            ( $f.frontends[] | select(.element) | select($lbs[.element]) as $fe
              | $lbs[$fe.element] as $lb
              | if $lb.type == "azure-internal-lb" then
                  (if $cluster_only == "1" or $n.role == "l4-probe" then empty
                   else "route \(nsof($n)) \($fe.address)/32 \($lb.probe_source) \($fif.name)" end)
                else
                  (if $cluster_only == "1" then empty
                   elif ([ $l7all[] | select(.element == $n.element) | .addresses[] ] + $n.addresses | index($fe.address)) != null then empty
                   else "route \(nsof($n)) \($fe.address)/32 - \($fif.name)" end)
                end ) )
    ' "$STATE/describe.json"
}

# Builds the namespaces from the plan: one `ip -batch` in the root context creates every
# namespace and every veth pair (both ends created inside their namespaces), then one script
# per namespace sets its sysctls, interfaces, addresses and routes (`ip -batch`) and, on a
# node, loads kube-proxy's rules. Every namespace is listed in netns.list before it exists.
build() {
    local gen="$STATE/setup"
    mkdir -p "$gen"
    awk -v dir="$gen" -v state="$STATE" '
        function ns_script(ns) { return dir "/" ns ".sh" }
        function ns_batch(ns) { return dir "/" ns ".batch" }
        $1 == "fabric" || $1 == "ns" {
            print $2 >> (state "/netns.list")
            print "netns add " $2 > (dir "/root.batch")
            print "link set lo up" > ns_batch($2)
            role[$2] = ($1 == "fabric") ? "fabric" : $3
            order[++n] = $2
        }
        $1 == "fabric" { print "link add br0 type bridge" > ns_batch($2); print "link set br0 up" > ns_batch($2) }
        $1 == "attach" {
            port = "p" (++np)
            print "link add " port " netns " $2 " type veth peer name " $4 " netns " $3 > (dir "/root.batch")
            print "link set " port " master br0" > ns_batch($2)
            print "link set " port " up" > ns_batch($2)
            print "link set " $4 " up" > ns_batch($3)
        }
        $1 == "link" {
            print "link add " $3 " netns " $2 " type veth peer name " $5 " netns " $4 > (dir "/root.batch")
            print "link set " $3 " up" > ns_batch($2)
            print "link set " $5 " up" > ns_batch($4)
            veths[$2] = veths[$2] " " $3
        }
        $1 == "addr" { addrs[$2] = addrs[$2] "addr add " $4 " dev " $3 "\n" }
        $1 == "lo" { addrs[$2] = addrs[$2] "addr add " $3 "/32 dev lo\n" }
        $1 == "route" {
            if ($4 == "-") routes[$2] = routes[$2] "route replace " $3 " dev " $5 "\n"
            else routes[$2] = routes[$2] "route replace " $3 " via " $4 " dev " $5 " onlink\n"
        }
        END {
            for (i = 1; i <= n; i++) {
                ns = order[i]
                printf "%s%s", addrs[ns], routes[ns] > ns_batch(ns)
                close(ns_batch(ns))
                s = ns_script(ns)
                print "set -e" > s
                if (role[ns] != "fabric") {
                    # every namespace: no ICMP redirects sent or taken (the L4 router forwards
                    # out of the interface a packet came in on), loose reverse-path filtering
                    # for the asymmetric DSR path
                    print "sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0" > s
                }
                if (role[ns] == "k8s-node")
                    # what a Kubernetes node has: forwarding, kube-proxy route_localnet
                    # (localhost nodePorts), its conntrack timeouts (established 24 h,
                    # close-wait 1 h: KubeProxyConntrackConfiguration defaults)
                    print "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.route_localnet=1 net.netfilter.nf_conntrack_tcp_timeout_established=86400 net.netfilter.nf_conntrack_tcp_timeout_close_wait=3600" > s
                if (role[ns] == "l4-probe" || role[ns] == "l4-node" || role[ns] == "router")
                    print "sysctl -qw net.ipv4.ip_forward=1" > s
                print "ip -batch " ns_batch(ns) > s
                # node side of a pod veth is unnumbered: it answers the pod ARP for
                # everything (proxy ARP without delay, as CNI plugins set it)
                m = split(veths[ns], v, " ")
                for (k = 1; k <= m; k++)
                    if (v[k] != "")
                        print "sysctl -qw net.ipv4.conf." v[k] ".proxy_arp=1 net.ipv4.neigh." v[k] ".proxy_delay=0" > s
                close(s)
            }
        }' "$STATE/plan.txt"
    ip -batch "$gen/root.batch"
    local ns kind name file
    # kube-proxy's rules, exactly as the simulator wrote them (sim --render:
    # iptables-NODE.rules; nftables-NODE.nft in nftables mode)
    while read -r kind name file; do
        case $kind in
            iptables) echo "iptables-restore < $file" >> "$gen/$P-$(sanitize "$name").sh" ;;
            nftables) echo "nft -f $file" >> "$gen/$P-$(sanitize "$name").sh" ;;
        esac
    done < "$STATE/render.list"
    while read -r ns; do
        ip netns exec "$ns" sh "$gen/$ns.sh"
    done < "$STATE/netns.list"
}

# ---- up -----------------------------------------------------------------------------------
up() {
    local scenario="" variant="" dir="" l4health=prober
    local -a sets=()
    CLUSTER_ONLY=0
    while [ $# -gt 0 ]; do
        case $1 in
            -v|--variant) variant=$2; shift 2 ;;
            --set) sets+=(--set "$2"); shift 2 ;;
            --dir) dir=$2; shift 2 ;;
            --cluster-only) CLUSTER_ONLY=1; shift ;;
            --l4-health) l4health=$2; shift 2 ;;
            -h|--help) usage ;;
            -*) echo "realstack: unknown option $1" >&2; usage ;;
            *) [ -z "$scenario" ] || usage; scenario=$1; shift ;;
        esac
    done
    [ -n "$scenario" ] || usage
    case $l4health in prober|all-up|feed) ;; *) echo "realstack: --l4-health prober|all-up|feed" >&2; exit 2 ;; esac
    [ -x "$SIM" ] || die "$SIM is not built (make sim)"
    check_namespaces || exit $EXIT_SKIP

    P=${REALSTACK_PREFIX:-lbc$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}
    local link=0
    [ -n "$dir" ] || { dir=$ROOT/results/realstack/$P; link=1; }
    mkdir -p "$dir"
    STATE=$(cd "$dir" && pwd -P)
    : > "$STATE/netns.list"
    : > "$STATE/pids.list"
    local -a vopt=()
    [ -n "$variant" ] && vopt=(-v "$variant")
    local -a simargs=("${vopt[@]}" "${sets[@]}" --no-expect "$scenario")
    SCENARIO=$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")
    SETS=("${sets[@]}")
    # from here on, any failure removes what was built
    trap 'rc=$?; trap - EXIT INT TERM; if [ $rc -ne 0 ]; then echo "realstack: up failed; removing $P" >&2; teardown "$STATE"; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM

    "$SIM" --describe "${simargs[@]}" > "$STATE/describe.json"
    "$SIM" --render "$STATE" "${simargs[@]}" > "$STATE/render.list"
    VARIANT=$(jq -r .variant "$STATE/describe.json")
    {
        printf 'P=%q\nSCENARIO=%q\nVARIANT=%q\nCLUSTER_ONLY=%q\n' "$P" "$SCENARIO" "$VARIANT" "$CLUSTER_ONLY"
        printf 'SETS=(%s)\n' "$(printf '%q ' "${sets[@]}")"
    } > "$STATE/stack.env"
    # the default state directory is linked as results/realstack/current (down, exec, status)
    [ $link = 0 ] || ln -sfn "$STATE" "$ROOT/results/realstack/current"
    plan > "$STATE/plan.txt"

    build
    # pods and kube-proxy's health-check servers: nginx with the rendered configurations
    local kind name file
    while read -r kind name file; do
        case $kind in
            pod) start "$P-$(sanitize "$name")" "nginx-pod-$(sanitize "$name")" nginx -c "$file" ;;
            hc) start "$P-$(sanitize "$name")" "nginx-hc-$(sanitize "$name")" nginx -c "$file" ;;
        esac
    done < "$STATE/render.list"

    # bindings for ./sim --real: the chain uses the simulator's own addresses and ports
    printf '# real-socket mode against the stack %s (scripts/realstack.sh)\nscenario: %s\nunbound: simulated\n' \
        "$P" "$(jq -r .scenario "$STATE/describe.json")" > "$STATE/bindings.yaml"
    if [ "$CLUSTER_ONLY" = 0 ]; then
        # L4 load balancers first: the L7 ones probe through them from their first second
        start_l4 "$l4health"
        # L7 load balancers: haproxy, in the element's namespace
        while read -r kind name file; do
            [ "$kind" = haproxy ] || continue
            start "$P-$(sanitize "$name")" "haproxy-$(sanitize "$name")" haproxy -db -f "$file"
        done < "$STATE/render.list"
    fi

    wait_ready
    trap - EXIT INT TERM
    summary
}

# L4 load balancers: the Azure LB's router in its probe node's namespace, each NLB zone node
# in its own; their health from the prober (or all up).
start_l4() {
    local mode=$1 lb
    local n; n=$(jq '.load_balancers | length' "$STATE/describe.json")
    for ((lb = 0; lb < n; lb++)); do
        local type name; type=$(jq -r ".load_balancers[$lb].type" "$STATE/describe.json")
        name=$(jq -r ".load_balancers[$lb].name" "$STATE/describe.json")
        case $type in
            azure-internal-lb)
                local ns="$P-$(sanitize "$(jq -r ".load_balancers[$lb].probe_node" "$STATE/describe.json")")"
                local conf="$STATE/l4-$name.conf"
                jq -r ".load_balancers[$lb] |
                    \"vip \(.frontend)\",
                    (.rules[] | select(.probe.check) | \"rule \(.protocol) \(.frontend_port) \(.probe.check.name)\"),
                    (.backends[] | \"backend \(.label) \(.address)\")" "$STATE/describe.json" > "$conf"
                l4_run "$ns" "l4-$name" azure "$conf" "$mode" "$(jq -r ".load_balancers[$lb].rules[].probe.check.name // empty" "$STATE/describe.json" | sort -u | tr '\n' ' ')" ;;
            aws-nlb)
                local z nz; nz=$(jq ".load_balancers[$lb].zones | length" "$STATE/describe.json")
                for ((z = 0; z < nz; z++)); do
                    local zone node; zone=$(jq -r ".load_balancers[$lb].zones[$z].zone" "$STATE/describe.json")
                    node=$(jq -r ".load_balancers[$lb].zones[$z].node" "$STATE/describe.json")
                    local conf="$STATE/l4-$name-$zone.conf"
                    jq -r --arg zone "$zone" ".load_balancers[$lb] |
                        \"node \(.zones[] | select(.zone == \$zone) | .address)\",
                        (.listeners[] | . as \$l | .checks[] | select(.zone == \$zone) | \"listener \(\$l.port) \(\$l.target_port) \(.name)\"),
                        (.targets[] | select(.zone == \$zone) | \"target \(.label) \(.address)\")" \
                        "$STATE/describe.json" > "$conf"
                    l4_run "$P-$(sanitize "$node")" "l4-$name-$zone" nlb "$conf" "$mode" \
                        "$(jq -r --arg zone "$zone" ".load_balancers[$lb].listeners[].checks[] | select(.zone == \$zone) | .name" "$STATE/describe.json" | sort -u | tr '\n' ' ')"
                done ;;
        esac
    done
}

# Runs realstack-l4.sh in namespace $1, fed by the prober (its checkers $6), or by "up"
# verdicts for every backend (all-up). The command line goes into $STATE/$2.run.
l4_run() {
    local ns=$1 name=$2 mode=$3 conf=$4 health=$5 checkers=$6
    local run="$STATE/$name.run" c
    {
        echo "# the L4 stand-in $name: health verdicts | realstack-l4.sh"
        if [ "$health" = feed ]; then
            mkfifo "$STATE/$name.health"
            printf 'exec bash %q %q %q 0<> %q\n' "$HERE/realstack-l4.sh" "$mode" "$conf" "$STATE/$name.health"
        elif [ "$health" = all-up ]; then
            printf '{ '
            awk '$1 == "backend" || $1 == "target" { print $2 }' "$conf" | while read -r label; do
                for c in $checkers; do printf 'echo %q; ' "health $c $label up: forced (--l4-health all-up)"; done
            done
            printf 'exec sleep infinity; }'
        else
            local -a cmd=("$SIM" --real "$STATE/bindings.yaml" --probes-only --watch)
            for c in $checkers; do cmd+=(--checker "$c"); done
            # the prober runs as long as the stack lives, not the scenario's duration
            cmd+=(-v "$VARIANT" "${SETS[@]}" --set duration=24h --no-expect "$SCENARIO")
            printf '%q ' "${cmd[@]}"
        fi
        [ "$health" = feed ] || printf '| exec bash %q %q %q\n' "$HERE/realstack-l4.sh" "$mode" "$conf"
    } > "$run"
    start "$ns" "$name" bash "$run"
}

# Waits until every nginx and haproxy listens (their configurations name the ports).
wait_ready() {
    local t kind name file ns port missing
    for t in $(seq 1 100); do
        local pid pname
        while read -r pid pname; do
            kill -0 "$pid" 2>/dev/null ||
                die "$pname exited at start: $(tail -3 "$STATE/$pname.log" 2>/dev/null | tr '\n' ' ')"
        done < "$STATE/pids.list"
        missing=0
        while read -r kind name file; do
            case $kind in pod|hc) ;; haproxy) [ "$CLUSTER_ONLY" = 0 ] || continue ;; *) continue ;; esac
            ns="$P-$(sanitize "$name")"
            local listening; listening=$(ip netns exec "$ns" ss -Hltn | awk '{print $4}')
            for port in $(grep -oE '^\s*(listen|bind) [0-9.:]*[0-9]+;?$' "$file" | grep -oE '[0-9]+;?$' | tr -d ';'); do
                grep -qE ":$port\$" <<< "$listening" || { missing=1; break 2; }
            done
        done < "$STATE/render.list"
        [ $missing = 0 ] && return 0
        sleep 0.1
    done
    die "the stand-ins did not start listening within 10 s (logs in $STATE)"
}

summary() {
    local client
    client=$(jq -r '[.nodes[] | select(.role == "host") | .name][0] // empty' "$STATE/describe.json")
    echo "realstack: $P up: $(jq -r '"\(.scenario) variant \(.variant)"' "$STATE/describe.json"), $(wc -l < "$STATE/netns.list") namespaces, state in $STATE"
    echo "  bindings:  $STATE/bindings.yaml"
    if [ -n "$client" ]; then
        local t; t=$(jq -r '.traffic[0] | "\(.targets[0])"' "$STATE/describe.json")
        echo "  try:       scripts/realstack.sh exec $client -- curl -s http://$t/"
    fi
    echo "  down:      scripts/realstack.sh down --dir $STATE"
}

down() {
    local dir=""
    while [ $# -gt 0 ]; do
        case $1 in --dir) dir=$2; shift 2 ;; *) usage ;; esac
    done
    state_load "$dir"
    teardown "$STATE"
    echo "realstack: $P down"
}

# exec [--dir DIR] NODE -- COMMAND...
exec_in() {
    local dir=""
    [ "${1:-}" = --dir ] && { dir=$2; shift 2; }
    local node=${1:-}; shift || usage
    [ "${1:-}" = -- ] && shift
    [ -n "$node" ] && [ $# -gt 0 ] || usage
    state_load "$dir"
    local ns
    ns=$(jq -r --arg n "$node" --arg P "$P" '.nodes[] | select(.name == $n) |
        if .role == "l7-instance" then $P + "-" + (.element | gsub("[^A-Za-z0-9_.-]"; "-"))
        else $P + "-" + (.name | gsub("[^A-Za-z0-9_.-]"; "-")) end' "$STATE/describe.json")
    [ -n "$ns" ] || die "no node '$node' in the stack"
    exec ip netns exec "$ns" "$@"
}

status() {
    local dir=""
    [ "${1:-}" = --dir ] && dir=$2
    state_load "$dir"
    echo "stack $P: $SCENARIO variant $VARIANT, state in $STATE"
    echo "namespaces: $(wc -l < "$STATE/netns.list")"
    local pid name
    while read -r pid name; do
        if kill -0 "$pid" 2>/dev/null; then echo "  running  $name ($pid)"; else echo "  EXITED   $name ($pid)"; fi
    done < "$STATE/pids.list"
}

[ $# -ge 1 ] || usage
cmd=$1; shift
case $cmd in
    up) up "$@" ;;
    down) down "$@" ;;
    exec) exec_in "$@" ;;
    status) status "$@" ;;
    *) usage ;;
esac

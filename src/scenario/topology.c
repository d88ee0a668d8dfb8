/* topology.c -- the node element types "host" and "router", links between nodes and
 * shared segments (a link with `members`: an L2 fabric, net_fabric_params_t.l2), the
 * address plan (a /30 per link from 10.0.0.0/8 in link order unless `subnet` is given;
 * chosen or first-free host addresses on a segment), each node's own routes (`gateway`,
 * `routes`, checked as `ip route add` checks them), and automatic static routing for nodes
 * with `routing: auto`: from every node, BFS over links and segment hubs (ties broken by
 * link order) transiting only forwarding nodes; a node with one link gets a default route
 * via its peer, one whose only interface is on a segment via the segment's first router. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include "scenario_int.h"
#include "netfilter.h"
#include "tcp.h"

/* Defaults chosen for this simulator (not a vendor's): a datacenter-ish link. */
#define LINK_DEFAULT_BANDWIDTH "1Gbps"
#define LINK_DEFAULT_LATENCY "100us"
#define LINK_DEFAULT_QUEUE "0"          /* unlimited */
#define LINK_DEFAULT_LOSS "0"
/* The pool automatic link subnets come from, and their size (two hosts: .1 and .2). */
#define TOPO_POOL_PREFIX 0x0a000000u    /* 10.0.0.0/8 */
#define TOPO_POOL_PLEN 8
#define TOPO_LINK_PLEN 30
/* iptables commands per node: each command checks the node's whole table for loops and
 * misplaced NAT targets (as the kernel takes a whole new table per iptables command), so
 * N commands cost N^2; large rule sets come from kube-proxy's iptables-restore instead. */
#define NODE_IPTABLES_MAX 10000
/* Bounds on TCP parameters given in a scenario (Linux accepts these ranges). */
#define TCP_MSS_MIN 88                  /* TCP_MIN_MSS, include/net/tcp.h */
#define TCP_MSS_MAX 65495               /* 65535 - IP and TCP headers */
/* net.ipv4.tcp_keepalive_time / _intvl are whole seconds (proc_dointvec_jiffies, an int
 * of jiffies: INT_MAX / HZ with HZ 1000); tcp_keepalive_probes is a u8
 * (proc_dou8vec_minmax). Documentation/networking/ip-sysctl.rst. */
#define TCP_KEEPALIVE_SYSCTL_MAX_S 2147483
#define TCP_KEEPALIVE_SYSCTL_MAX_PROBES 255

/* A member of a shared segment (a link with `members`). */
static const elem_param_t member_params[] = {
    { "node", P_STR, NULL, "a node or group on the segment", NULL, NULL },
    { "address", P_STR, "", "its address on the segment, like 10.0.1.10 or 10.0.1.10/24 "
      "(default: the first free one of the subnet, in member order)", NULL, NULL },
    { "addresses", P_STRLIST, "[]", "more addresses on the same interface (a VIP), inside the "
      "subnet", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

const elem_param_t link_params[] = {
    { "between", P_STRLIST, "", "the two nodes (or groups) it joins, like [client, r1]",
      NULL, NULL },
    { "members", P_OBJLIST, "", "instead of between: a shared L2 segment (a switch) and the "
      "nodes on it, like [{ node: r1, address: 10.0.1.1 }, { node: web }]; needs subnet",
      member_params, NULL },
    { "name", P_STR, "", "a segment's name in traces (default segment<N>, N its position in "
      "links)", NULL, NULL },
    { "bandwidth", P_BANDWIDTH, LINK_DEFAULT_BANDWIDTH,
      "serialisation rate per direction, like 10Gbps (0: infinite)", NULL, NULL },
    { "latency", P_DURATION, LINK_DEFAULT_LATENCY, "one-way propagation delay, like 50us",
      NULL, NULL },
    { "queue", P_SIZE, LINK_DEFAULT_QUEUE, "bytes that may wait per direction, like 1MB "
      "(0: unlimited)", NULL, NULL },
    { "loss", P_RATIO, LINK_DEFAULT_LOSS, "packet loss probability per direction, like 1%",
      NULL, NULL },
    { "subnet", P_CIDR, "", "the link's subnet, like 10.10.0.0/30 (default: the next /30 "
      "of 10.0.0.0/8)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

/* TCP tunables: optional; anything not given keeps tcp_params_default() (Linux). */
static const elem_param_t tcp_tab[] = {
    { "syn-retries", P_INT, "", "SYN retransmissions before connect fails "
      "(net.ipv4.tcp_syn_retries)", NULL, NULL },
    { "syn-linear-timeouts", P_INT, "", "SYN retransmissions at the initial RTO before "
      "the exponential backoff, added to syn-retries (net.ipv4.tcp_syn_linear_timeouts; "
      "4 from Linux 6.5, absent before)", NULL, NULL },
    { "fin-timeout", P_DURATION, "", "FIN_WAIT2 of an orphaned connection "
      "(net.ipv4.tcp_fin_timeout)", NULL, NULL },
    { "conntrack-established", P_DURATION, "", "conntrack ESTABLISHED timeout "
      "(net.netfilter.nf_conntrack_tcp_timeout_established, 5 days)", NULL, NULL },
    { "conntrack-close-wait", P_DURATION, "", "conntrack CLOSE_WAIT timeout "
      "(nf_conntrack_tcp_timeout_close_wait, 60 s)", NULL, NULL },
    { "conntrack-fin-wait", P_DURATION, "", "conntrack FIN_WAIT timeout "
      "(nf_conntrack_tcp_timeout_fin_wait, 120 s)", NULL, NULL },
    { "conntrack-time-wait", P_DURATION, "", "conntrack TIME_WAIT timeout "
      "(nf_conntrack_tcp_timeout_time_wait, 120 s)", NULL, NULL },
    { "conntrack-syn-sent", P_DURATION, "", "conntrack SYN_SENT timeout "
      "(nf_conntrack_tcp_timeout_syn_sent, 120 s)", NULL, NULL },
    { "conntrack-max", P_INT, "", "conntrack entries before new connections are dropped "
      "(net.netfilter.nf_conntrack_max; 0: no limit)", NULL, NULL },
    { "synack-retries", P_INT, "", "SYN-ACK retransmissions (net.ipv4.tcp_synack_retries)",
      NULL, NULL },
    { "retries2", P_INT, "", "data retransmissions before the connection is dropped "
      "(net.ipv4.tcp_retries2)", NULL, NULL },
    { "early-retrans", P_INT, "", "3 or 4: a tail loss probe before the data RTO; 0: "
      "none (net.ipv4.tcp_early_retrans, 0..4; 3 from Linux 3.10)", NULL, NULL },
    { "rto-min", P_DURATION, "", "lower bound of the retransmission timeout (TCP_RTO_MIN)",
      NULL, NULL },
    { "rto-initial", P_DURATION, "", "initial retransmission timeout (TCP_TIMEOUT_INIT)",
      NULL, NULL },
    { "time-wait", P_DURATION, "", "TIME_WAIT length (TCP_TIMEWAIT_LEN)", NULL, NULL },
    { "delack", P_DURATION, "", "delayed ACK timeout (TCP_DELACK_MIN)", NULL, NULL },
    { "mss", P_INT, "", "maximum segment size in bytes", NULL, NULL },
    { "init-cwnd", P_INT, "", "initial congestion window in segments (TCP_INIT_CWND)",
      NULL, NULL },
    { "keepalive-time", P_DURATION, "", "idle before the first keepalive probe of a socket "
      "with SO_KEEPALIVE and no TCP_KEEPIDLE (net.ipv4.tcp_keepalive_time, 7200 s)", NULL,
      NULL },
    { "keepalive-intvl", P_DURATION, "", "between keepalive probes "
      "(net.ipv4.tcp_keepalive_intvl, 75 s)", NULL, NULL },
    { "keepalive-probes", P_INT, "", "unanswered keepalive probes before the reset "
      "(net.ipv4.tcp_keepalive_probes, 9)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

/* The ICMP rate-limit sysctls (net_icmp_limits_t): a host's or router's `icmp`, a
 * k8s-cluster's node-sysctls `icmp`. */
const elem_param_t elem_icmp_params[] = {
    { "ratelimit", P_DURATION, "", "tokens per ICMP error of the per-destination bucket, "
      "whole milliseconds; 0: no per-destination limit (net.ipv4.icmp_ratelimit, 1000 ms)",
      NULL, NULL },
    { "ratemask", P_STR, "", "the ICMP types both limits apply to, a bit per type, like "
      "0x1818 or 6168 (net.ipv4.icmp_ratemask, 0x1818: destination unreachable, source "
      "quench, time exceeded, parameter problem; fragmentation needed never)", NULL, NULL },
    { "msgs-per-sec", P_INT, "", "the global bucket's refill per second "
      "(net.ipv4.icmp_msgs_per_sec, 1000)", NULL, NULL },
    { "msgs-burst", P_INT, "", "the global bucket's size (net.ipv4.icmp_msgs_burst, 50)",
      NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

/* Each key cfg sets onto *l, in the ranges the kernel's handlers take (6.18's ipv4_net_table:
 * icmp_ratelimit proc_dointvec_ms_jiffies_minmax from 0, icmp_ratemask proc_dointvec (any
 * int, decimal or 0x hex), icmp_msgs_per_sec / _burst proc_dointvec_minmax from 0). */
int build_icmp_sysctls(build_ctx_t *ctx, const elem_cfg_t *cfg, const char *what,
                       net_icmp_limits_t *l)
{
    const elem_val_t *v;
    if ((v = elem_get(cfg, "ratelimit"))->set) {
        if (v->u.i < 0 || v->u.i % SIM_MS || v->u.i / SIM_MS > INT_MAX)
            return build_error(ctx, v->pos, "%s ratelimit: expected whole milliseconds from "
                               "0ms to %dms (the sysctl is in ms)", what, INT_MAX);
        l->ratelimit = v->u.i;
    }
    if ((v = elem_get(cfg, "ratemask"))->set) {
        char *end;
        errno = 0;
        long long m = strtoll(v->u.s, &end, 0);
        if (!*v->u.s || *end || errno || m < INT_MIN || m > INT_MAX)
            return build_error(ctx, v->pos, "%s ratemask: expected a whole number like 0x1818 "
                               "or 6168 (an int, a bit per ICMP type); got '%s'", what, v->u.s);
        l->ratemask = (uint32_t)(int32_t)m;
    }
    static const char *const counts[] = {"msgs-per-sec", "msgs-burst"};
    int *field[] = {&l->msgs_per_sec, &l->msgs_burst};
    for (int i = 0; i < 2; i++) {
        if (!(v = elem_get(cfg, counts[i]))->set) continue;
        if (v->u.i < 0 || v->u.i > INT_MAX)
            return build_error(ctx, v->pos, "%s %s: expected a whole number from 0 to %d; got "
                               "%lld", what, counts[i], INT_MAX, (long long)v->u.i);
        *field[i] = (int)v->u.i;
    }
    return 0;
}

/* A node's routing (node_routes): `routing`, `gateway` and `routes`. */
static const char *const routing_choices[] = { "auto", "explicit", NULL };
static const char *const route_type_choices[] = { "unicast", "blackhole", "unreachable",
                                                  "prohibit", NULL };
static const elem_param_t route_tab[] = {
    { "to", P_CIDR, NULL, "destination prefix, like 10.1.0.0/16 (0.0.0.0/0: the default "
      "route)", NULL, NULL },
    { "via", P_ADDR, "", "next hop, an address on one of the node's connected subnets",
      NULL, NULL },
    { "dev", P_STR, "", "outgoing interface, like eth1 (without via: the destination is "
      "on-link)", NULL, NULL },
    { "type", P_ENUM, "unicast", "unicast (via and/or dev), blackhole (dropped silently), "
      "unreachable (ICMP host unreachable; connect(): EHOSTUNREACH) or prohibit (ICMP "
      "admin prohibited; connect(): EACCES)", NULL, route_type_choices },
    { NULL, 0, NULL, NULL, NULL, NULL }
};
#define ROUTING_PARAMS \
    { "routing", P_ENUM, "auto", "auto: a route to every link subnet by breadth-first " \
      "search (single-interface nodes: a default route); explicit: connected subnets, " \
      "gateway and routes only", NULL, routing_choices }, \
    { "gateway", P_ADDR, "", "default gateway: a next hop on a connected subnet (the route " \
      "0.0.0.0/0)", NULL, NULL }, \
    { "routes", P_OBJLIST, "", "static routes, like [{ to: 10.1.0.0/16, via: 10.0.0.1 }, " \
      "{ to: 10.9.0.0/16, type: blackhole }]", route_tab, NULL },

#define NODE_PARAMS(FORWARDING) \
    { "type", P_STR, "", "host or router", NULL, NULL }, \
    { "count", P_INT, "1", "a group of N nodes named NAME0 .. NAME<N-1> when given", \
      NULL, NULL }, \
    { "forwarding", P_BOOL, FORWARDING, "routes packets between interfaces " \
      "(net.ipv4.ip_forward)", NULL, NULL }, \
    { "conntrack", P_BOOL, "false", "tracks connections even without NAT rules", NULL, NULL }, \
    { "tcp-loose", P_BOOL, "", "conntrack picks up mid-stream connections " \
      "(nf_conntrack_tcp_loose; default on, like Linux)", NULL, NULL }, \
    { "iptables", P_STRLIST, "[]", "iptables commands without the leading 'iptables', like " \
      "\"-t nat -A POSTROUTING -o eth1 -j MASQUERADE\"", NULL, NULL }, \
    { "addresses", P_STRLIST, "[]", "extra local IPv4 addresses, like [10.9.9.9]", NULL, NULL }, \
    ROUTING_PARAMS \
    { "kernel", P_STR, "", "Linux version whose sysctl defaults the node has, like \"6.6\" " \
      "(default " TCP_KERNEL_DEFAULT "); keys in tcp and icmp override them", NULL, NULL }, \
    { "tcp", P_OBJ, "", "TCP and conntrack sysctls (the kernel's defaults): syn-retries, " \
      "syn-linear-timeouts, synack-retries, retries2, early-retrans, fin-timeout, rto-min, " \
      "rto-initial, time-wait, delack, mss, init-cwnd, keepalive-time, keepalive-intvl, " \
      "keepalive-probes, conntrack-established, conntrack-close-wait, conntrack-fin-wait, " \
      "conntrack-time-wait, conntrack-syn-sent, conntrack-max", \
      tcp_tab, NULL }, \
    { "icmp", P_OBJ, "", "ICMP error rate-limit sysctls (the kernel's defaults): ratelimit, " \
      "ratemask, msgs-per-sec, msgs-burst", elem_icmp_params, NULL }, \
    { NULL, 0, NULL, NULL, NULL, NULL }

static const elem_param_t host_params[] = { NODE_PARAMS("false") };
static const elem_param_t router_params[] = { NODE_PARAMS("true") };

/* ---- node elements -------------------------------------------------------------------------- */

/* The node's kernel profile: `kernel`'s defaults (tcp_params_kernel), then each key of
 * `tcp` (t may be NULL). Conntrack keys change the node's netfilter parameters. */
static int apply_tcp(build_ctx_t *ctx, net_node_t *node, const elem_val_t *kernel,
                     const elem_cfg_t *t)
{
    bool any = kernel->set;
    for (size_t i = 0; t && i < t->n; i++) any |= t->vals[i].set;
    if (!any) return 0;
    tcp_params_t p;
    tcp_params_default(&p);
    if (kernel->set && tcp_params_kernel(&p, kernel->u.s) < 0)
        return build_error(ctx, kernel->pos, "kernel '%s': expected a Linux version like "
                           "\"5.15\" or \"6.6\"", kernel->u.s);
    if (!t) {
        tcp_stack_set_params(node, &p);
        return 0;
    }
    const elem_val_t *v;
#define INT_FIELD(key, field, lo, hi) \
    if ((v = elem_get(t, key))->set) { \
        if (v->u.i < (lo) || v->u.i > (hi)) \
            return build_error(ctx, v->pos, "tcp %s: expected a whole number from %d to %d; " \
                               "got %lld", key, (int)(lo), (int)(hi), (long long)v->u.i); \
        p.field = (__typeof__(p.field))v->u.i; \
    }
#define TIME_FIELD(key, field) \
    if ((v = elem_get(t, key))->set) { \
        if (v->u.i <= 0) \
            return build_error(ctx, v->pos, "tcp %s: expected a positive duration", key); \
        p.field = v->u.i; \
    }
    INT_FIELD("syn-retries", syn_retries, 0, 127)        /* Linux: MAX_TCP_SYNCNT 127 */
    INT_FIELD("syn-linear-timeouts", syn_linear_timeouts, 0, 127)   /* ..._max: 127 */
    INT_FIELD("synack-retries", synack_retries, 0, 127)
    INT_FIELD("retries2", retries2, 0, 127)
    INT_FIELD("early-retrans", early_retrans, 0, 4)     /* proc_dointvec_minmax 0..4 */
    INT_FIELD("mss", mss, TCP_MSS_MIN, TCP_MSS_MAX)
    INT_FIELD("init-cwnd", init_cwnd, 1, 65535)
    TIME_FIELD("rto-min", rto_min)
    TIME_FIELD("rto-initial", rto_initial)
    TIME_FIELD("time-wait", time_wait)
    TIME_FIELD("delack", delack)
    TIME_FIELD("fin-timeout", fin_timeout)
    INT_FIELD("keepalive-probes", keepalive_probes, 0, TCP_KEEPALIVE_SYSCTL_MAX_PROBES)
#define SECS_FIELD(key, field) \
    if ((v = elem_get(t, key))->set) { \
        if (v->u.i < SIM_S || v->u.i > (sim_time_t)TCP_KEEPALIVE_SYSCTL_MAX_S * SIM_S || \
            v->u.i % SIM_S) \
            return build_error(ctx, v->pos, "tcp %s: expected whole seconds from 1s to " \
                               "%ds (the sysctl is in seconds)", key, \
                               TCP_KEEPALIVE_SYSCTL_MAX_S); \
        p.field = v->u.i; \
    }
    SECS_FIELD("keepalive-time", keepalive_time)
    SECS_FIELD("keepalive-intvl", keepalive_intvl)
#undef SECS_FIELD
    tcp_stack_set_params(node, &p);
    bool ct = false;
    static const char *const ct_keys[] = {"conntrack-established", "conntrack-close-wait",
        "conntrack-fin-wait", "conntrack-time-wait", "conntrack-syn-sent", "conntrack-max"};
    for (size_t i = 0; i < sizeof ct_keys / sizeof ct_keys[0]; i++)
        ct |= elem_get(t, ct_keys[i])->set;
    if (ct) {
        nf_t *nf = nf_get(node);
        nf_params_t np = *nf_params(nf);
#define CT_FIELD(key, field) \
        if ((v = elem_get(t, key))->set) { \
            if (v->u.i <= 0) \
                return build_error(ctx, v->pos, "tcp %s: expected a positive duration", key); \
            np.field = v->u.i; \
        }
        CT_FIELD("conntrack-established", to_established)
        CT_FIELD("conntrack-close-wait", to_close_wait)
        CT_FIELD("conntrack-fin-wait", to_fin_wait)
        CT_FIELD("conntrack-time-wait", to_time_wait)
        CT_FIELD("conntrack-syn-sent", to_syn_sent)
#undef CT_FIELD
        if ((v = elem_get(t, "conntrack-max"))->set) {
            if (v->u.i < 0 || v->u.i > INT32_MAX)
                return build_error(ctx, v->pos, "tcp conntrack-max: expected a whole number "
                                   "from 0 to %d; got %lld", INT32_MAX, (long long)v->u.i);
            np.ct_max = (int)v->u.i;
        }
        nf_set_params(nf, &np);
    }
#undef INT_FIELD
#undef TIME_FIELD
    return 0;
}

static int node_setup(build_ctx_t *ctx, net_node_t *node, const elem_cfg_t *cfg)
{
    node->forwarding = elem_bool(cfg, "forwarding");
    const elem_val_t *ct = elem_get(cfg, "conntrack");
    const elem_val_t *loose = elem_get(cfg, "tcp-loose");
    const elem_val_t *ipt = elem_get(cfg, "iptables");
    if (ipt->u.strs.n > NODE_IPTABLES_MAX)
        return build_error(ctx, ipt->u.strs.pos[NODE_IPTABLES_MAX], "iptables: %zu commands; "
                           "expected at most %d per node", ipt->u.strs.n, NODE_IPTABLES_MAX);
    if (ct->u.b || loose->set || ipt->u.strs.n) {
        nf_t *nf = nf_get(node);
        nf_params_t p;
        nf_params_default(&p);
        p.conntrack = ct->u.b;
        if (loose->set) p.tcp_loose = loose->u.b;
        nf_set_params(nf, &p);
        for (size_t i = 0; i < ipt->u.strs.n; i++) {
            char err[256] = "";
            if (nf_exec(nf, ipt->u.strs.v[i], err, sizeof err) < 0) {
                const char *msg = err;
                if (strncmp(msg, "line ", 5) == 0 && strstr(msg, ": ")) msg = strstr(msg, ": ") + 2;
                return build_error(ctx, ipt->u.strs.pos[i], "iptables: %s", msg[0] ? msg :
                                   "rejected");
            }
        }
    }
    const elem_val_t *addrs = elem_get(cfg, "addresses");
    for (size_t i = 0; i < addrs->u.strs.n; i++) {
        uint32_t a;
        if (lb_ip_parse(addrs->u.strs.v[i], &a) < 0)
            return build_error(ctx, addrs->u.strs.pos[i], "addresses: expected an IPv4 address "
                               "like 10.9.9.9; got '%s'", addrs->u.strs.v[i]);
        net_node_addr_add(node, a);
    }
    const elem_val_t *tcp = elem_get(cfg, "tcp"), *kernel = elem_get(cfg, "kernel");
    int rc = apply_tcp(ctx, node, kernel, tcp->u.objs.n ? tcp->u.objs.v[0] : NULL);
    if (rc) return rc;
    /* the ICMP sysctls: the kernel's defaults (its version already checked by apply_tcp),
     * then `icmp` */
    if (kernel->set) net_icmp_limits_kernel(&node->icmp, kernel->u.s);
    const elem_val_t *icmp = elem_get(cfg, "icmp");
    return icmp->u.objs.n ? build_icmp_sysctls(ctx, icmp->u.objs.v[0], "icmp", &node->icmp) : 0;
}

static int node_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *cnt = elem_get(cfg, "count");
    int n = cnt->set ? (int)cnt->u.i : 1;
    if (n < 1) return build_error(ctx, cnt->pos, "count: expected a positive number");
    net_t *net = build_net(ctx);
    for (int k = 0; k < n; k++) {
        if (k % 4096 == 4095 && build_interrupted(ctx)) return LB_EINTR;
        char *nm = cnt->set ? lb_sprintf("%s%d", name, k) : lb_strdup(name);
        char what[300];
        snprintf(what, sizeof what, "%s '%s'", elem_str(cfg, "type"), name);
        if (build_check_name(ctx, cfg->pos, what, nm)) {
            lb_free(nm);
            return LB_EINVAL;
        }
        net_node_t *node = net_node_add(net, nm);
        lb_free(nm);
        int rc = node_setup(ctx, node, cfg);
        if (rc < 0) return rc;
    }
    return 0;
}

static const elem_type_t host_type = {
    "host", ELEM_NODE, "an end host: one or more interfaces, no forwarding", host_params,
    node_build
};
static const elem_type_t router_type = {
    "router", ELEM_NODE, "a Linux router: forwards between interfaces (ip_forward on)",
    router_params, node_build
};

void topology_register(void)
{
    elem_register(&host_type);
    elem_register(&router_type);
}

/* ---- address plan ---------------------------------------------------------------------------- */

typedef struct range { uint32_t lo, hi; elem_pos_t pos; } range_t;   /* inclusive */

/* Ranges compare equal when they overlap: in a tree of disjoint ranges (tsearch), finding
 * a new range finds one it overlaps. */
static int range_cmp(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    return x->hi < y->lo ? -1 : x->lo > y->hi ? 1 : 0;
}

static int range_lo_cmp(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void tree_nofree(void *p) { (void)p; }

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses a member's "10.0.1.10" or "10.0.1.10/24" inside prefix/plen (a host address: not
 * the subnet's own or broadcast address, except on a /31). 0 or an error at pos. */
static int member_addr(const char *key, const char *text, elem_pos_t pos, uint32_t prefix,
                       int plen, uint32_t *out, scn_diag_t *d)
{
    char a[40], sb[16];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    uint32_t ip;
    if (n >= sizeof a || (memcpy(a, text, n), a[n] = 0, lb_ip_parse(a, &ip) < 0))
        return diag_set(d, pos, LB_EINVAL, "%s: expected an IPv4 address like 10.0.1.10 or "
                        "10.0.1.10/%d; got '%s'", key, plen, text);
    if (slash) {
        char *end;
        long l = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || l != plen)
            return diag_set(d, pos, LB_EINVAL, "%s: '%s' does not match the segment's subnet "
                            "%s/%d; expected /%d or no prefix length", key, text,
                            lb_ip_str(prefix, sb), plen, plen);
    }
    uint32_t mask = lb_prefix_mask(plen);
    if ((ip & mask) != prefix || (plen < 31 && (ip == prefix || ip == (prefix | ~mask))))
        return diag_set(d, pos, LB_EINVAL, "%s: %s is not a host address of the segment's "
                        "subnet %s/%d", key, a, lb_ip_str(prefix, sb), plen);
    *out = ip;
    return 0;
}

/* A segment's addresses: the chosen ones (member `address`, and `addresses` on the same
 * interface) must be distinct host addresses of the subnet; the other members take the
 * free ones from the lowest up, in member order. */
static int plan_segment(scn_link_t *l, uint32_t prefix, int plen, scn_diag_t *d)
{
    LB_VEC(uint32_t) taken = { 0 };
    LB_VEC(elem_pos_t) where = { 0 };
    int rc = 0;
    for (size_t i = 0; i < l->members.n && rc == 0; i++) {
        const elem_val_t *a = elem_get(l->members.v[i].cfg, "address");
        const elem_val_t *x = elem_get(l->members.v[i].cfg, "addresses");
        if (i > 0 && l->members.v[i].cfg == l->members.v[i - 1].cfg) continue;  /* a group */
        if (a->set && a->u.s[0]) {
            uint32_t ip;
            if ((rc = member_addr("address", a->u.s, a->pos, prefix, plen, &ip, d)) < 0) break;
            l->members.v[i].addr = ip;
            lb_vec_push(&taken, ip);
            lb_vec_push(&where, a->pos);
        }
        if (x->u.strs.n && i + 1 < l->members.n && l->members.v[i + 1].cfg == l->members.v[i].cfg) {
            rc = diag_set(d, x->u.strs.pos[0], LB_EINVAL, "addresses: '%s' is a group; "
                          "expected addresses only for a single node",
                          elem_str(l->members.v[i].cfg, "node"));
            break;
        }
        for (size_t k = 0; k < x->u.strs.n && rc == 0; k++) {
            uint32_t ip;
            if ((rc = member_addr("addresses", x->u.strs.v[k], x->u.strs.pos[k], prefix, plen,
                                  &ip, d)) < 0) break;
            lb_vec_push(&taken, ip);
            lb_vec_push(&where, x->u.strs.pos[k]);
        }
    }
    /* duplicates: sort (address, position index) pairs */
    if (rc == 0 && taken.n > 1) {
        uint64_t *keys = lb_malloc(taken.n * sizeof *keys);
        for (size_t i = 0; i < taken.n; i++) keys[i] = (uint64_t)taken.v[i] << 32 | i;
        qsort(keys, taken.n, sizeof *keys, u64_cmp);
        for (size_t i = 1; i < taken.n && rc == 0; i++)
            if (keys[i] >> 32 == keys[i - 1] >> 32) {
                size_t first = (size_t)(keys[i - 1] & 0xffffffffu),
                       dup = (size_t)(keys[i] & 0xffffffffu);
                char b[16];
                rc = diag_set(d, where.v[dup], LB_EINVAL, "address %s is taken on this segment "
                              "already (line %d); expected distinct addresses",
                              lb_ip_str(taken.v[dup], b), where.v[first].line);
            }
        lb_free(keys);
    }
    if (rc == 0) {
        if (taken.n > 1) qsort(taken.v, taken.n, sizeof *taken.v, u32_cmp);
        uint32_t mask = lb_prefix_mask(plen);
        uint64_t next = plen == 31 ? prefix : (uint64_t)prefix + 1;
        uint64_t last = plen == 31 ? (uint64_t)prefix + 1 : (uint64_t)(prefix | ~mask) - 1;
        size_t ti = 0;
        for (size_t i = 0; i < l->members.n && rc == 0; i++) {
            if (l->members.v[i].addr) continue;
            for (;;) {
                while (ti < taken.n && taken.v[ti] < next) ti++;
                if (ti < taken.n && taken.v[ti] == next) next++;
                else break;
            }
            if (next > last) {
                char b[16];
                rc = diag_set(d, elem_get(l->members.v[i].cfg, "node")->pos, LB_EINVAL,
                              "members: the segment's subnet %s/%d has no address left for "
                              "node '%s'; expected a larger subnet", lb_ip_str(prefix, b),
                              plen, l->members.v[i].node);
                break;
            }
            l->members.v[i].addr = (uint32_t)next++;
        }
    }
    lb_vec_free(&taken);
    lb_vec_free(&where);
    return rc;
}

int topology_plan(scn_model_t *m, scn_diag_t *d)
{
    LB_VEC(range_t) res = { 0 };
    int rc = 0;
    /* extra addresses of node elements */
    for (size_t i = 0; i < m->elems[ELEM_NODE].n && rc == 0; i++) {
        const elem_val_t *a = elem_find(m->elems[ELEM_NODE].v[i].cfg, "addresses");
        if (!a || a->kind != P_STRLIST) continue;
        for (size_t k = 0; k < a->u.strs.n; k++) {
            uint32_t ip;
            if (lb_ip_parse(a->u.strs.v[k], &ip) < 0) {
                rc = diag_set(d, a->u.strs.pos[k], LB_EINVAL, "addresses: expected an IPv4 "
                              "address like 10.9.9.9; got '%s'", a->u.strs.v[k]);
                break;
            }
            range_t r = { ip, ip, a->u.strs.pos[k] };
            lb_vec_push(&res, r);
        }
    }
    size_t nextra = res.n;
    /* explicit subnets, disjoint from each other: a tree of those accepted so far */
    size_t nsub = 0;
    for (size_t i = 0; i < m->links.n; i++) nsub += elem_get(m->links.v[i].cfg, "subnet")->set;
    lb_vec_reserve(&res, nextra + nsub + 1);        /* the tree points into res: no moves */
    void *tree = NULL;
    for (size_t i = 0; i < m->links.n && rc == 0; i++) {
        scn_link_t *l = &m->links.v[i];
        const elem_val_t *sub = elem_get(l->cfg, "subnet");
        if (!sub->set) continue;
        assert(l->pairs.n == 1 || l->members.n);
        uint32_t p = sub->u.cidr.addr;
        int plen = sub->u.cidr.plen;
        char buf[16];
        if (plen > 31) {
            rc = diag_set(d, sub->pos, LB_EINVAL, "subnet: %s/%d has no room for two addresses; "
                          "expected a /31 or a shorter prefix", lb_ip_str(p, buf), plen);
            break;
        }
        uint32_t hi = p | ~lb_prefix_mask(plen);
        range_t r = { p, hi, sub->pos };
        if (tfind(&r, &tree, range_cmp)) {
            const range_t *o = NULL;            /* name the first link it overlaps */
            for (size_t k = nextra; k < res.n && !o; k++)
                if (range_cmp(&r, &res.v[k]) == 0) o = &res.v[k];
            rc = diag_set(d, sub->pos, LB_EINVAL, "subnet: %s/%d overlaps the subnet of the link "
                          "at line %d; expected disjoint subnets", lb_ip_str(p, buf), plen,
                          o->pos.line);
            break;
        }
        lb_vec_push(&res, r);
        tsearch(&res.v[res.n - 1], &tree, range_cmp);
        if (l->members.n) {
            rc = plan_segment(l, p, plen, d);
            continue;
        }
        scn_pair_t *pr = &l->pairs.v[0];
        pr->prefix = p;
        pr->plen = plen;
        pr->addr_a = plen == 31 ? p : p + 1;
        pr->addr_b = plen == 31 ? p + 1 : p + 2;
    }
    tdestroy(tree, tree_nofree);
    /* what automatic subnets must avoid, in address order: one pass below */
    if (res.n > 1) qsort(res.v, res.n, sizeof *res.v, range_lo_cmp);
    size_t ri = 0;
    /* automatic /30s */
    uint32_t size = 1u << (32 - TOPO_LINK_PLEN);
    uint64_t cur = TOPO_POOL_PREFIX;
    uint64_t end = (uint64_t)TOPO_POOL_PREFIX + (1ull << (32 - TOPO_POOL_PLEN));
    for (size_t i = 0; i < m->links.n && rc == 0; i++) {
        scn_link_t *l = &m->links.v[i];
        if (elem_get(l->cfg, "subnet")->set) continue;
        for (size_t k = 0; k < l->pairs.n; k++) {
            /* skip every reserved range that the block [cur, cur + size) would overlap;
             * cur only grows, so ranges ending before it are done with for good */
            for (;;) {
                while (ri < res.n && res.v[ri].hi < cur) ri++;
                if (cur >= end || ri == res.n || res.v[ri].lo > cur + size - 1) break;
                uint64_t past = (uint64_t)res.v[ri].hi + 1;
                for (size_t q = ri; q < res.n && res.v[q].lo <= cur + size - 1; q++)
                    if ((uint64_t)res.v[q].hi + 1 > past) past = (uint64_t)res.v[q].hi + 1;
                cur = (past + size - 1) / size * size;
            }
            if (cur >= end) {
                rc = diag_set(d, l->pos, LB_EINVAL, "out of automatic link subnets in 10.0.0.0/8; "
                              "expected fewer links or explicit subnets");
                break;
            }
            scn_pair_t *pr = &l->pairs.v[k];
            pr->prefix = (uint32_t)cur;
            pr->plen = TOPO_LINK_PLEN;
            pr->addr_a = (uint32_t)cur + 1;
            pr->addr_b = (uint32_t)cur + 2;
            cur += size;
        }
    }
    lb_vec_free(&res);
    return rc;
}

/* ---- links and routes --------------------------------------------------------------------------- */

/* The graph the automatic routes are computed on: vertices are the nodes (their ids) and,
 * after them, one hub per shared segment. An edge from a node: from is its interface, to the
 * peer's (NULL toward a hub); from a hub: from NULL, to the member's interface. v: the
 * vertex it leads to. */
typedef struct edge { net_iface_t *from, *to; uint32_t v; } edge_t;
typedef LB_VEC(uint32_t) u32vec_t;
typedef LB_VEC(edge_t) edges_t;

/* An extra address, its owner node and its position in element order; a group of the
 * owners of one address (owners[start .. start + n)), first: its first position. */
typedef struct extra { uint32_t addr; uint32_t owner; size_t pos; } extra_t;
typedef struct xgroup { uint32_t addr; size_t first, start, n; } xgroup_t;

static int extra_cmp(const void *a, const void *b)
{
    const extra_t *x = a, *y = b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int xgroup_cmp(const void *a, const void *b)
{
    const xgroup_t *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static void node_extra_names(const scn_elem_t *e, size_t k, char *buf, size_t n)
{
    if (e->group) snprintf(buf, n, "%s%zu", e->name, k);
    else snprintf(buf, n, "%s", e->name);
}

/* ---- static routes (routing, gateway, routes) ----------------------------------------------- */

/* The interface of node whose connected subnet holds a (NULL when none). */
static net_iface_t *connected_iface(const net_node_t *node, uint32_t a)
{
    for (size_t i = 0; i < node->ifaces.n; i++) {
        const net_iface_t *f = node->ifaces.v[i];
        if (f->addr && (a & lb_prefix_mask(f->plen)) == (f->addr & lb_prefix_mask(f->plen)))
            return node->ifaces.v[i];
    }
    return NULL;
}

/* "eth0 10.0.0.1/30, eth1 10.0.0.5/30" for messages. */
static void iface_list(const net_node_t *node, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < node->ifaces.n && at < n; i++) {
        char a[16];
        const net_iface_t *f = node->ifaces.v[i];
        at += (size_t)snprintf(buf + at, n - at, "%s%s %s/%d", i ? ", " : "", f->name,
                               lb_ip_str(f->addr, a), f->plen);
    }
    if (!node->ifaces.n) snprintf(buf, n, "no interfaces");
}

/* Adds one unicast route to prefix/plen via `via` (0: on-link) out of `dev` (NULL: the
 * interface whose subnet holds via), checking both as `ip route add` does: the next hop
 * must be on a connected subnet (of dev, when given), not the node's own address.
 * key ("via", "gateway") names the next hop's key; vpos/dpos locate it and dev. */
static int route_unicast(build_ctx_t *ctx, net_node_t *node, uint32_t prefix, int plen,
                         const char *key, uint32_t via, elem_pos_t vpos, const char *dev,
                         elem_pos_t dpos)
{
    char a[16], ifs[300];
    net_iface_t *out = NULL;
    if (dev && dev[0]) {
        for (size_t i = 0; i < node->ifaces.n && !out; i++)
            if (strcmp(node->ifaces.v[i]->name, dev) == 0) out = node->ifaces.v[i];
        if (!out) {
            iface_list(node, ifs, sizeof ifs);
            return build_error(ctx, dpos, "dev '%s': node '%s' has no such interface; it has "
                               "%s", dev, node->name, ifs);
        }
    }
    if (via) {
        if (net_node_is_local(node, via))
            return build_error(ctx, vpos, "%s %s is an address of node '%s' itself; expected "
                               "a neighbour's address", key, lb_ip_str(via, a), node->name);
        net_iface_t *on = connected_iface(node, via);
        if (out && out->addr &&
            (via & lb_prefix_mask(out->plen)) != (out->addr & lb_prefix_mask(out->plen))) {
            iface_list(node, ifs, sizeof ifs);
            return build_error(ctx, vpos, "via %s is not on the subnet of %s (node '%s': %s); "
                               "expected a next hop on %s's subnet (Linux: Nexthop has invalid "
                               "gateway)", lb_ip_str(via, a), out->name, node->name, ifs,
                               out->name);
        }
        if (!out) out = on;
        if (!out) {
            iface_list(node, ifs, sizeof ifs);
            return build_error(ctx, vpos, "%s %s is not on a connected subnet of node '%s' "
                               "(%s); expected a next hop on one of them (Linux: Nexthop has "
                               "invalid gateway)", key, lb_ip_str(via, a), node->name, ifs);
        }
    }
    assert(out);
    net_route_add(node, prefix, plen, via, out);
    return 0;
}

/* The node's own static routes from its element's `gateway` and `routes` (cfg), added
 * before any automatic route so that they win over one to the same prefix. A second route
 * to the same prefix is an error (`ip route add`: File exists). */
static int node_routes(build_ctx_t *ctx, net_node_t *node, const elem_cfg_t *cfg)
{
    const elem_val_t *gw = elem_find(cfg, "gateway"), *routes = elem_find(cfg, "routes");
    if (gw && gw->set) {
        int rc = route_unicast(ctx, node, 0, 0, "gateway", gw->u.addr, gw->pos, NULL,
                               gw->pos);
        if (rc < 0) return rc;
    }
    for (size_t i = 0; routes && i < routes->u.objs.n; i++) {
        const elem_cfg_t *r = routes->u.objs.v[i];
        const elem_val_t *to = elem_get(r, "to"), *via = elem_get(r, "via"),
                         *dev = elem_get(r, "dev"), *type = elem_get(r, "type");
        char a[16];
        uint32_t prefix = to->u.cidr.addr;
        int plen = to->u.cidr.plen;
        const net_route_t *o = net_route_find(node, prefix, plen);
        if (o) {
            bool connected = o->type == NET_RT_UNICAST && !o->gw && o->ifc->addr &&
                             o->plen == o->ifc->plen &&
                             (o->ifc->addr & lb_prefix_mask(o->plen)) == o->prefix;
            return build_error(ctx, to->pos, "to %s/%d: node '%s' has a route to this prefix "
                               "already (%s); expected one route per prefix (Linux: File "
                               "exists)", lb_ip_str(prefix, a), plen, node->name,
                               connected ? "its connected subnet" : plen == 0 && gw && gw->set
                               ? "the gateway" : "an earlier entry of routes");
        }
        int t = NET_RT_UNICAST;             /* route_type_choices are in NET_RT_* order */
        for (int k = 1; route_type_choices[k]; k++)
            if (strcmp(type->u.s, route_type_choices[k]) == 0) t = k;
        if (t != NET_RT_UNICAST) {
            if (via->set || dev->set)
                return build_error(ctx, via->set ? via->pos : dev->pos, "a %s route has no "
                                   "next hop; expected no via or dev with type %s", type->u.s,
                                   type->u.s);
            net_route_add_type(node, prefix, plen, t);
            continue;
        }
        if (!via->set && !(dev->set && dev->u.s[0]))
            return build_error(ctx, r->pos, "route to %s/%d: expected via (a next hop), dev "
                               "(an interface) or a type (blackhole, unreachable, prohibit)",
                               lb_ip_str(prefix, a), plen);
        int rc = route_unicast(ctx, node, prefix, plen, "via", via->set ? via->u.addr : 0,
                               via->pos, dev->set ? dev->u.s : NULL, dev->pos);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Static routes of every node element; explicit[id] = true for nodes with routing:
 * explicit (they get no automatic route). */
static int static_routes(build_ctx_t *ctx, const scn_model_t *m, bool *explicit_)
{
    net_t *net = build_net(ctx);
    for (size_t i = 0; i < m->elems[ELEM_NODE].n; i++) {
        const scn_elem_t *e = &m->elems[ELEM_NODE].v[i];
        const elem_val_t *mode = elem_find(e->cfg, "routing");
        const elem_val_t *gw = elem_find(e->cfg, "gateway"), *rt = elem_find(e->cfg, "routes");
        bool expl = mode && strcmp(mode->u.s, "explicit") == 0;
        if (!expl && !(gw && gw->set) && !(rt && rt->u.objs.n)) continue;
        for (int k = 0; k < e->count; k++) {
            char nm[300];
            node_extra_names(e, (size_t)k, nm, sizeof nm);
            net_node_t *node = net_node_find(net, nm);
            if (!node) continue;
            explicit_[node->id] = expl;
            int rc = node_routes(ctx, node, e->cfg);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

/* A shared segment: a fabric delivering by next hop (net_fabric_params_t.l2) with every
 * member attached at its planned address; the members' extra addresses on it (`addresses`)
 * are local to the member and resolve to its interface there. Adds the member -> hub and
 * hub -> member edges for the automatic routes. */
static int build_segment(build_ctx_t *ctx, const scn_link_t *l, size_t index, uint32_t hub,
                         edges_t *adj, u32vec_t *members)
{
    net_t *net = build_net(ctx);
    const char *nm = elem_str(l->cfg, "name");
    char def[32];
    snprintf(def, sizeof def, "segment%zu", index);
    net_fabric_params_t fp = {
        .latency = elem_int(l->cfg, "latency"),
        .bandwidth_bps = (uint64_t)elem_int(l->cfg, "bandwidth"),
        .queue_bytes = (uint64_t)elem_int(l->cfg, "queue"),
        .loss = elem_float(l->cfg, "loss"),
        .l2 = true,
    };
    net_fabric_t *fab = net_fabric_new(net, nm[0] ? nm : def, &fp);
    const elem_val_t *sub = elem_get(l->cfg, "subnet");
    for (size_t k = 0; k < l->members.n; k++) {
        const scn_member_t *mb = &l->members.v[k];
        net_node_t *node = net_node_find(net, mb->node);
        if (!node)
            return build_error(ctx, l->pos, "link: node '%s' was not created by its element",
                               mb->node);
        char ifname[16];
        snprintf(ifname, sizeof ifname, "eth%zu", node->ifaces.n);
        net_iface_t *ifc = net_iface_add(node, ifname, mb->addr, sub->u.cidr.plen);
        int rc = net_fabric_attach(fab, ifc);
        assert(rc == 0);
        const elem_val_t *x = elem_get(mb->cfg, "addresses");
        for (size_t j = 0; j < x->u.strs.n; j++) {
            uint32_t a;
            if (lb_ip_parse(x->u.strs.v[j], &a) < 0) continue;     /* planned: cannot be */
            net_node_addr_add(node, a);
            net_fabric_route(fab, a, 32, ifc);
        }
        edge_t to_hub = { ifc, NULL, hub }, from_hub = { NULL, ifc, node->id };
        lb_vec_push(&adj[node->id], to_hub);
        lb_vec_push(&adj[hub], from_hub);
        lb_vec_push(members, node->id);
        (void)rc;
    }
    return 0;
}

int topology_build_links(build_ctx_t *ctx, const scn_model_t *m)
{
    net_t *net = build_net(ctx);
    size_t nn = net_node_count(net);
    size_t nseg = 0;
    for (size_t i = 0; i < m->links.n; i++) nseg += m->links.v[i].members.n > 0;
    size_t nv = nn + nseg;                  /* vertices: nodes, then segment hubs */
    edges_t *adj = lb_calloc(nv ? nv : 1, sizeof *adj);
    /* every planned pair as (node a id, node b id), in link order */
    typedef struct pid { uint32_t a, b; const scn_pair_t *p; } pid_t_;
    LB_VEC(pid_t_) pids = { 0 };
    /* every segment: its subnet and members (node ids: segmembers[start .. start + n)) */
    typedef struct sid { uint32_t prefix; int plen; size_t start, n; } sid_t_;
    LB_VEC(sid_t_) sids = { 0 };
    u32vec_t segmembers = { 0 };
    bool *explicit_ = NULL;
    int rc = 0;
    for (size_t i = 0; i < m->links.n && rc == 0; i++) {
        const scn_link_t *l = &m->links.v[i];
        if (l->members.n) {
            const elem_val_t *sub = elem_get(l->cfg, "subnet");
            sid_t_ sd = { sub->u.cidr.addr, sub->u.cidr.plen, segmembers.n, 0 };
            rc = build_segment(ctx, l, i, (uint32_t)(nn + sids.n), adj, &segmembers);
            sd.n = segmembers.n - sd.start;
            lb_vec_push(&sids, sd);
            continue;
        }
        net_link_params_t lp = {
            .latency = elem_int(l->cfg, "latency"),
            .bandwidth_bps = (uint64_t)elem_int(l->cfg, "bandwidth"),
            .queue_bytes = (uint64_t)elem_int(l->cfg, "queue"),
            .loss = elem_float(l->cfg, "loss"),
        };
        for (size_t k = 0; k < l->pairs.n; k++) {
            const scn_pair_t *p = &l->pairs.v[k];
            net_node_t *a = net_node_find(net, p->a), *b = net_node_find(net, p->b);
            if (!a || !b) {
                rc = build_error(ctx, l->pos, "link: node '%s' was not created by its element",
                                 a ? p->b : p->a);
                break;
            }
            char na[16], nb[16];
            snprintf(na, sizeof na, "eth%zu", a->ifaces.n);
            snprintf(nb, sizeof nb, "eth%zu", b->ifaces.n);
            net_iface_t *ia = net_iface_add(a, na, p->addr_a, p->plen);
            net_iface_t *ib = net_iface_add(b, nb, p->addr_b, p->plen);
            net_link_new(net, ia, ib, &lp);
            assert(a->id < nn && b->id < nn);
            pid_t_ pid = { a->id, b->id, p };
            lb_vec_push(&pids, pid);
            edge_t ea = { ia, ib, b->id }, eb = { ib, ia, a->id };
            lb_vec_push(&adj[a->id], ea);
            lb_vec_push(&adj[b->id], eb);
        }
    }
    if (rc < 0) goto out;
    explicit_ = lb_calloc(nn ? nn : 1, sizeof *explicit_);
    if ((rc = static_routes(ctx, m, explicit_)) < 0) goto out;

    /* extra addresses: (address, owner id) in element order, then grouped by address:
     * owners sorted by (address, position), groups in order of first appearance */
    LB_VEC(extra_t) owners = { 0 };
    for (size_t i = 0; i < m->elems[ELEM_NODE].n; i++) {
        const scn_elem_t *e = &m->elems[ELEM_NODE].v[i];
        const elem_val_t *a = elem_find(e->cfg, "addresses");
        if (!a || a->kind != P_STRLIST || !a->u.strs.n) continue;
        for (int k = 0; k < e->count; k++) {
            char nm[300];
            node_extra_names(e, (size_t)k, nm, sizeof nm);
            net_node_t *node = net_node_find(net, nm);
            if (!node) continue;
            for (size_t j = 0; j < a->u.strs.n; j++) {
                extra_t x = { 0, node->id, owners.n };
                if (lb_ip_parse(a->u.strs.v[j], &x.addr) < 0) continue;
                lb_vec_push(&owners, x);
                /* Linux answers ARP for any local address on any interface (arp_ignore
                 * 0): on each segment the node is on, the address resolves to it */
                for (size_t f = 0; f < node->ifaces.n; f++)
                    if (node->ifaces.v[f]->fabric)
                        net_fabric_route(node->ifaces.v[f]->fabric, x.addr, 32,
                                         node->ifaces.v[f]);
            }
        }
    }
    if (owners.n > 1) qsort(owners.v, owners.n, sizeof *owners.v, extra_cmp);
    LB_VEC(xgroup_t) groups = { 0 };
    for (size_t i = 0; i < owners.n;) {
        size_t j = i;
        while (j < owners.n && owners.v[j].addr == owners.v[i].addr) j++;
        xgroup_t g = { owners.v[i].addr, owners.v[i].pos, i, j - i };
        lb_vec_push(&groups, g);
        i = j;
    }
    if (groups.n > 1) qsort(groups.v, groups.n, sizeof *groups.v, xgroup_cmp);

    /* BFS from every node over nodes and segment hubs */
    int32_t *order = lb_malloc(nv * sizeof *order);     /* discovery rank, -1: unreached */
    edge_t *first = lb_malloc(nv * sizeof *first);      /* first hop toward each vertex */
    uint32_t *queue = lb_malloc(nv * sizeof *queue);
    for (size_t s = 0; s < nn && rc == 0; s++) {
        net_node_t *src = net_node_at(net, s);
        if (adj[s].n == 0 || explicit_[s]) continue;
        if (s % 64 == 0 && build_interrupted(ctx)) {
            rc = LB_EINTR;
            break;
        }
        if (src->ifaces.n == 1 && adj[s].v[0].to) {     /* one point-to-point link */
            const edge_t *e = &adj[s].v[0];
            if (!net_route_find(src, 0, 0)) net_route_add(src, 0, 0, e->to->addr, e->from);
            continue;
        }
        if (src->ifaces.n == 1) {       /* on one segment: its first router is the gateway */
            const edges_t *hub = &adj[adj[s].v[0].v];
            const edge_t *gw = NULL;
            for (size_t j = 0; j < hub->n && !gw; j++)
                if (hub->v[j].v != s && net_node_at(net, hub->v[j].v)->forwarding)
                    gw = &hub->v[j];
            if (gw) {
                if (!net_route_find(src, 0, 0))
                    net_route_add(src, 0, 0, gw->to->addr, adj[s].v[0].from);
                continue;
            }
        }
        for (size_t i = 0; i < nv; i++) order[i] = -1;
        size_t qh = 0, qt = 0;
        int32_t rank = 0;
        order[s] = rank++;
        queue[qt++] = (uint32_t)s;
        while (qh < qt) {
            uint32_t u = queue[qh++];
            if (u != s && u < nn && !net_node_at(net, u)->forwarding) continue; /* no transit */
            for (size_t j = 0; j < adj[u].n; j++) {
                const edge_t *e = &adj[u].v[j];
                uint32_t v = e->v;
                if (order[v] >= 0) continue;
                order[v] = rank++;
                if (u == s) first[v] = *e;                  /* to: NULL toward a hub */
                else if (u >= nn && !first[u].to)           /* a segment s is on */
                    first[v] = (edge_t){ first[u].from, e->to, v };
                else first[v] = first[u];
                queue[qt++] = v;
            }
        }
        for (size_t i = 0; i < pids.n; i++) {
            const pid_t_ *q = &pids.v[i];
            if (q->a == s || q->b == s) continue;           /* connected route exists */
            int32_t ra = order[q->a], rb = order[q->b];
            if (ra < 0 && rb < 0) continue;
            uint32_t via = (rb < 0 || (ra >= 0 && ra < rb)) ? q->a : q->b;
            net_route_add(src, q->p->prefix, q->p->plen, first[via].to->addr, first[via].from);
        }
        for (size_t i = 0; i < sids.n; i++) {             /* toward the nearest member */
            const sid_t_ *q = &sids.v[i];
            int32_t best = -1;
            uint32_t via = 0;
            bool on = false;
            for (size_t j = q->start; j < q->start + q->n; j++) {
                uint32_t o = segmembers.v[j];
                on |= o == s;
                if (order[o] >= 0 && (best < 0 || order[o] < best)) {
                    best = order[o];
                    via = o;
                }
            }
            if (on || best < 0) continue;                   /* connected, or unreachable */
            net_route_add(src, q->prefix, q->plen, first[via].to->addr, first[via].from);
        }
        for (size_t g = 0; g < groups.n; g++) {
            const xgroup_t *x = &groups.v[g];
            if (net_node_is_local(src, x->addr)) continue;
            /* among owners of the same address, the nearest (the first of equals) */
            int32_t best = -1;
            uint32_t owner = 0;
            for (size_t j = x->start; j < x->start + x->n; j++) {
                uint32_t o = owners.v[j].owner;
                if (order[o] >= 0 && (best < 0 || order[o] < best)) {
                    best = order[o];
                    owner = o;
                }
            }
            if (best < 0 || owner == s) continue;
            net_route_add(src, x->addr, 32, first[owner].to->addr, first[owner].from);
        }
    }
    lb_free(order);
    lb_free(first);
    lb_free(queue);
    lb_vec_free(&owners);
    lb_vec_free(&groups);
out:
    lb_free(explicit_);
    lb_vec_free(&pids);
    lb_vec_free(&sids);
    lb_vec_free(&segmembers);
    for (size_t i = 0; i < nv; i++) lb_vec_free(&adj[i]);
    lb_free(adj);
    return rc;
}

/* aws_nlb.c -- AWS Network Load Balancer with ip targets (include/aws_nlb.h): what the AWS
 * Load Balancer Controller builds from a Service's annotations, the per-zone NLB nodes and
 * their VIPs, health checks per target group, the SNAT flow table, idle timeout and the
 * termination of flows whose target turns unhealthy.
 *
 * What AWS documents and this file follows (docs.aws.amazon.com/elasticloadbalancing/latest/
 * network/ unless noted):
 *  - Controller (kubernetes-sigs/aws-load-balancer-controller docs/guide/service/
 *    annotations.md; pkg/service/model_build_target_group.go, model_builder.go): reconciles
 *    Services with aws-load-balancer-type "external" (target type from nlb-target-type) or
 *    the deprecated "nlb-ip"; scheme internal by default; one listener and target group per
 *    Service port; health check TCP on traffic-port, interval 10, timeout 10, thresholds
 *    3/3, path "/" and success codes 200-399 for HTTP(S). The docs say the protocol
 *    defaults to HTTP (and the port to healthCheckNodePort) with externalTrafficPolicy
 *    Local, but the code does that for instance targets only; ip targets always get the
 *    defaults above, as here. Timeout and success codes are honoured (feature gate
 *    NLBHealthCheckAdvancedConfig, on by default). A named healthcheck-port resolves to the
 *    Service port's numeric targetPort.
 *  - load-balancer-target-groups.html, edit-target-group-attributes.html: client IP
 *    preservation is off by default for ip targets over TCP ("the source IP address is the
 *    private IP address of the Network Load Balancer"). The target answers that address, so
 *    replies come back through the node, which reverses the translation. The source port
 *    the node picks is not documented: here the next free port of NAT_PORT_LO..HI per
 *    (target, port), a range disjoint from the node's own sockets (its health checks).
 *  - network-load-balancers.html#availability-zones, target-group-cross-zone.html: one node
 *    per enabled zone; "When cross-zone load balancing is off, each load balancer node
 *    distributes traffic across only the registered targets in its Availability Zone";
 *    off by default for NLB.
 *  - introduction.html "How Network Load Balancer works": "the load balancer selects a
 *    target using a flow hash algorithm based on the protocol, source IP address, source
 *    port, destination IP address, destination port, and TCP sequence number"; "Each
 *    individual TCP connection is routed to a single target for the life of the
 *    connection." The hash here is lb_mix64 over those fields, seeded by the NLB's name,
 *    modulo the candidates in registration order.
 *  - target-group-health-checks.html: a new target gets traffic once it passed "the
 *    initial health checks" (one pass, the HEALTH_VENDOR_NLB preset); "If a target
 *    becomes unhealthy, the load balancer sends a TCP RST for packets received on the
 *    client connections associated with the target, unless the unhealthy target triggers
 *    the load balancer to fail open"; a zone without a healthy target leaves DNS; "If all
 *    targets fail health checks at the same time in all enabled Availability Zones, the
 *    load balancer fails open." target-group-health.html: routing failover -- "When the
 *    healthy targets in a zone fall below the threshold, the load balancer sends traffic
 *    to all targets that are available to the load balancer node, including unhealthy
 *    targets" (threshold: one healthy target by default). Modelled per node: a node whose
 *    view (its zone, or every zone with cross-zone on) has fewer healthy targets than
 *    min_healthy spreads new flows over every target in its view, initial ones included.
 *  - target-group-health.html "Unhealthy target connection termination"
 *    (target_health_state.unhealthy.connection_termination.enabled, default true;
 *    draining_interval_seconds, default 0, used with termination off): a flow whose target
 *    turns unhealthy ends at once (or after the draining interval) unless its node then
 *    fails open. As documented, the RST is sent in answer to the next packet of the flow
 *    -- from the client, and likewise from the target -- not proactively: an idle
 *    kept-alive connection learns it on its next request.
 *  - network-load-balancers.html#connection-idle-timeout: TCP idle timeout 350 s; "If a
 *    client or a target sends data after the idle timeout period elapses, it receives a
 *    TCP RST packet to indicate that the connection is no longer valid." Here every
 *    non-SYN packet of an ended or unknown flow is answered with a RST.
 *  - load-balancer-target-groups.html#deregistration-delay: a deregistering target gets no
 *    new flows; after deregistration_delay.timeout_seconds (300) its flows are closed if
 *    deregistration_delay.connection_termination.enabled (default false).
 *
 * Flow records live in a vector addressed by index (free list), found through the shared
 * l4flow index under two keys: the client's tuple as it arrives (KEY_FWD) and the target's
 * reply tuple (KEY_REV: target:port -> node:NAT port). Idle expiry is lazy, as in
 * models/azure/azure_lb.c: one timer per flow at last_seen + idle, re-armed when it fires early;
 * an ended flow is kept one idle period more (to answer late packets with a RST), then
 * reaped. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "aws_nlb.h"
#include "l4flow.h"
#include "tcp.h"

#define ANN "service.beta.kubernetes.io/"
/* ELB API limits the controller runs into (CreateTargetGroup): interval 5-300 s,
 * thresholds 2-10, timeout 2-120 s. */
#define HC_INTERVAL_MIN 5
#define HC_INTERVAL_MAX 300
#define HC_THRESHOLD_MIN 2
#define HC_THRESHOLD_MAX 10
#define HC_TIMEOUT_MIN 2
#define HC_TIMEOUT_MAX 120
/* Source ports of translated flows (not documented; see the file comment). */
#define NAT_PORT_LO 1024
#define NAT_PORT_HI 32767

enum { FLOW_LIVE = 1, FLOW_ENDED = 2 };
enum { END_IDLE = 1, END_UNHEALTHY, END_DEREG };
enum { KEY_FWD = 0, KEY_REV = 1 };

typedef struct flow {
    uint32_t client, taddr, zaddr;
    uint16_t cport, lport, tport, nport;
    uint8_t state, end;
    uint8_t zone, lst;
    uint32_t target;
    uint64_t trace;
    sim_time_t last_seen, ended_at;
    sim_handle_t timer;
    uint32_t next_free;         /* free list link, index + 1 */
} flow_t;

typedef struct target {
    uint32_t addr;
    char *label;
    size_t zone;
    size_t hidx;                /* index in its zone's checkers (same for every listener) */
    bool deregistered;
    sim_handle_t dereg;
    sim_handle_t drain[AWS_NLB_MAX_LISTENERS];
} target_t;

typedef struct hcref { struct aws_nlb *nlb; size_t l, z; } hcref_t;

typedef struct lstn {
    aws_nlb_listener_t l;       /* strings point at the copies */
    char *name, *tp_name;
    health_t *hc[AWS_NLB_MAX_ZONES];
    hcref_t ref[AWS_NLB_MAX_ZONES];
} lstn_t;

typedef struct znode {
    struct aws_nlb *nlb;
    size_t idx;
    char *zname;
    uint32_t addr;
    net_node_t *node;
    net_iface_t *nic;
    uint32_t next_port;
    LB_VEC(size_t) targets;     /* checker index -> target index */
    uint64_t state_note;        /* explain: why the node fails open */
} znode_t;

struct aws_nlb {
    net_t *net;
    sim_t *sim;
    net_fabric_t *fab;
    aws_nlb_params_t p;
    char *name, *hc_path, *hc_success;
    uint64_t seed;
    znode_t zones[AWS_NLB_MAX_ZONES];
    size_t nz;
    lstn_t lst[AWS_NLB_MAX_LISTENERS];
    size_t nl;
    LB_VEC(target_t *) targets;
    LB_VEC(flow_t) flows;
    uint32_t free_head;
    l4flow_index_t ix;
    LB_VEC(size_t) cand;        /* scratch: candidates of a new flow */
    aws_nlb_stats_t st;
};

/* ---- parameters and the controller's reading of the annotations ------------------------- */

void aws_nlb_params_default(aws_nlb_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->name = "nlb";
    p->internal = true;
    p->ip_targets = true;
    p->hc_proto = AWS_NLB_HC_TCP;
    p->hc_path = AWS_NLB_HC_PATH_DEFAULT;
    p->hc_success = AWS_NLB_HC_SUCCESS_DEFAULT;
    p->hc_interval_s = AWS_NLB_HC_INTERVAL_DEFAULT;
    p->hc_timeout_s = AWS_NLB_HC_TIMEOUT_DEFAULT;
    p->hc_healthy = p->hc_unhealthy = AWS_NLB_HC_THRESHOLD_DEFAULT;
    p->idle_timeout = AWS_NLB_TCP_IDLE_TIMEOUT;
    p->unhealthy_termination = true;
    p->dereg_delay = AWS_NLB_DEREG_DELAY_DEFAULT;
    p->min_healthy = AWS_NLB_MIN_HEALTHY_DEFAULT;
}

static const char *ann(const k8s_service_t *svc, const char *suffix)
{
    char key[160];
    snprintf(key, sizeof key, ANN "%s", suffix);
    return k8s_kv_get(&svc->meta.annotations, key);
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    while (isspace((unsigned char)*s)) s++;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s) return false;
    while (isspace((unsigned char)*end)) end++;
    if (*end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* Go's strconv.ParseBool, which the controller's annotation parser uses. */
static bool parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!strcmp(s, t[i])) { *out = true; return true; }
        if (!strcmp(s, f[i])) { *out = false; return true; }
    }
    return false;
}

/* The value of key in a stringMap annotation ("k1=v1, k2=v2") into buf; NULL if absent. */
static const char *map_get(const char *map, const char *key, char *buf, size_t n)
{
    if (!map) return NULL;
    size_t klen = strlen(key);
    const char *s = map;
    while (*s) {
        while (*s == ' ' || *s == ',') s++;
        const char *e = s + strcspn(s, ",");
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (eq) {
            const char *ke = eq;
            while (ke > s && ke[-1] == ' ') ke--;
            if ((size_t)(ke - s) == klen && !memcmp(s, key, klen)) {
                const char *v = eq + 1;
                while (v < e && *v == ' ') v++;
                const char *ve = e;
                while (ve > v && ve[-1] == ' ') ve--;
                snprintf(buf, n, "%.*s", (int)(ve - v), v);
                return buf;
            }
        }
        s = e;
    }
    return NULL;
}

#define FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
                       return LB_EINVAL; } while (0)

static int ann_int(const k8s_service_t *svc, const char *suffix, long lo, long hi, int *out,
                   char *err, size_t errlen)
{
    const char *v = ann(svc, suffix);
    if (!v) return 0;
    if (!parse_int(v, lo, hi, out))
        FAIL(ANN "%s: \"%s\": expected an integer from %ld to %ld", suffix, v, lo, hi);
    return 0;
}

static int ann_bool(const char *key, const char *v, bool *out, char *err, size_t errlen)
{
    if (v && !parse_bool(v, out)) FAIL("%s: \"%s\": expected true or false", key, v);
    return 0;
}

static int attr_seconds(const char *map, const char *key, long hi, sim_time_t *out, char *err,
                        size_t errlen)
{
    char b[64];
    const char *v = map_get(map, key, b, sizeof b);
    int s;
    if (!v) return 0;
    if (!parse_int(v, 0, hi, &s)) FAIL("%s=%s: expected seconds from 0 to %ld", key, v, hi);
    *out = (sim_time_t)s * SIM_S;
    return 0;
}

int aws_nlb_params_from_service(const k8s_service_t *svc, aws_nlb_params_t *p, char *err,
                                size_t errlen)
{
    aws_nlb_params_default(p);
    if (err && errlen) err[0] = 0;
    const char *type = ann(svc, "aws-load-balancer-type");
    if (svc->type != K8S_SVC_LOAD_BALANCER || !type ||
        (strcmp(type, "external") && strcmp(type, "nlb-ip"))) {
        if (err && errlen)
            snprintf(err, errlen, "not reconciled by the AWS Load Balancer Controller (needs "
                     "type LoadBalancer and " ANN "aws-load-balancer-type external or nlb-ip)");
        return LB_ENOENT;
    }
    p->name = svc->meta.name;
    if (!strcmp(type, "nlb-ip")) {
        p->ip_targets = true;
    } else {
        /* external: nlb-target-type decides; the controller's default is instance */
        const char *tt = ann(svc, "aws-load-balancer-nlb-target-type");
        if (tt && strcmp(tt, "ip") && strcmp(tt, "instance"))
            FAIL(ANN "aws-load-balancer-nlb-target-type: \"%s\": expected ip or instance", tt);
        p->ip_targets = tt && !strcmp(tt, "ip");
    }
    const char *internal = ann(svc, "aws-load-balancer-internal");
    if (ann_bool(ANN "aws-load-balancer-internal", internal, &p->internal, err, errlen))
        return LB_EINVAL;
    const char *scheme = ann(svc, "aws-load-balancer-scheme");      /* wins over internal */
    if (scheme) {
        if (!strcmp(scheme, "internal")) p->internal = true;
        else if (!strcmp(scheme, "internet-facing")) p->internal = false;
        else FAIL(ANN "aws-load-balancer-scheme: \"%s\": expected internal or internet-facing",
                  scheme);
    }
    /* listeners: one per TCP port */
    for (size_t i = 0; i < svc->ports.n; i++) {
        const k8s_service_port_t *sp = &svc->ports.v[i];
        if (sp->protocol && strcasecmp(sp->protocol, "TCP")) continue;    /* UDP: not modelled */
        if (p->n_listeners == AWS_NLB_MAX_LISTENERS)
            FAIL("more than %d TCP ports", AWS_NLB_MAX_LISTENERS);
        aws_nlb_listener_t *l = &p->listeners[p->n_listeners++];
        l->port = (uint16_t)sp->port;
        l->name = sp->name;
        l->target_port = (uint16_t)(sp->target_port.number ? sp->target_port.number
                                    : sp->target_port.name ? 0 : sp->port);
        l->target_port_name = sp->target_port.number ? NULL : sp->target_port.name;
    }
    /* health check */
    const char *proto = ann(svc, "aws-load-balancer-healthcheck-protocol");
    if (proto) {
        if (!strcasecmp(proto, "tcp")) p->hc_proto = AWS_NLB_HC_TCP;
        else if (!strcasecmp(proto, "http")) p->hc_proto = AWS_NLB_HC_HTTP;
        else if (!strcasecmp(proto, "https")) p->hc_proto = AWS_NLB_HC_HTTPS;
        else FAIL(ANN "aws-load-balancer-healthcheck-protocol: unsupported health check "
                  "protocol %s", proto);
    }
    const char *port = ann(svc, "aws-load-balancer-healthcheck-port");
    if (port && strcmp(port, "traffic-port")) {
        int n;
        if (parse_int(port, 1, 65535, &n)) {
            p->hc_port = (uint16_t)n;
        } else {
            /* a Service port name or number: its numeric targetPort (ip targets) */
            const k8s_service_port_t *sp = NULL;
            for (size_t i = 0; i < svc->ports.n && !sp; i++)
                if (svc->ports.v[i].name && !strcmp(svc->ports.v[i].name, port))
                    sp = &svc->ports.v[i];
            if (!sp) FAIL(ANN "aws-load-balancer-healthcheck-port: \"%s\": failed to resolve "
                          "healthCheckPort (no such Service port)", port);
            if (!sp->target_port.number && sp->target_port.name)
                FAIL(ANN "aws-load-balancer-healthcheck-port: \"%s\": cannot use named "
                     "healthCheckPort for IP TargetType when service's targetPort is a named "
                     "port", port);
            p->hc_port = (uint16_t)(sp->target_port.number ? sp->target_port.number : sp->port);
        }
    }
    const char *path = ann(svc, "aws-load-balancer-healthcheck-path");
    if (path) {
        if (path[0] != '/') FAIL(ANN "aws-load-balancer-healthcheck-path: \"%s\": must start "
                                 "with /", path);
        p->hc_path = path;
    }
    const char *codes = ann(svc, "aws-load-balancer-healthcheck-success-codes");
    if (codes) {
        health_matcher_t m;
        if (health_matcher_parse(&m, codes))
            FAIL(ANN "aws-load-balancer-healthcheck-success-codes: \"%s\": expected codes like "
                 "200-399", codes);
        p->hc_success = codes;
    }
    if (ann_int(svc, "aws-load-balancer-healthcheck-interval", HC_INTERVAL_MIN, HC_INTERVAL_MAX,
                &p->hc_interval_s, err, errlen) ||
        ann_int(svc, "aws-load-balancer-healthcheck-timeout", HC_TIMEOUT_MIN, HC_TIMEOUT_MAX,
                &p->hc_timeout_s, err, errlen) ||
        ann_int(svc, "aws-load-balancer-healthcheck-healthy-threshold", HC_THRESHOLD_MIN,
                HC_THRESHOLD_MAX, &p->hc_healthy, err, errlen) ||
        ann_int(svc, "aws-load-balancer-healthcheck-unhealthy-threshold", HC_THRESHOLD_MIN,
                HC_THRESHOLD_MAX, &p->hc_unhealthy, err, errlen))
        return LB_EINVAL;
    /* load balancer attributes; the deprecated single annotation wins on ties */
    char b[64];
    const char *attrs = ann(svc, "aws-load-balancer-attributes");
    const char *cz = map_get(attrs, "load_balancing.cross_zone.enabled", b, sizeof b);
    if (ann_bool("load_balancing.cross_zone.enabled", cz, &p->cross_zone, err, errlen))
        return LB_EINVAL;
    const char *czd = ann(svc, "aws-load-balancer-cross-zone-load-balancing-enabled");
    if (ann_bool(ANN "aws-load-balancer-cross-zone-load-balancing-enabled", czd, &p->cross_zone,
                 err, errlen))
        return LB_EINVAL;
    /* target group attributes */
    const char *tga = ann(svc, "aws-load-balancer-target-group-attributes");
    static const struct { const char *key; size_t off; } bools[] = {
        {"preserve_client_ip.enabled", offsetof(aws_nlb_params_t, preserve_client_ip)},
        {"deregistration_delay.connection_termination.enabled",
         offsetof(aws_nlb_params_t, dereg_termination)},
        {"target_health_state.unhealthy.connection_termination.enabled",
         offsetof(aws_nlb_params_t, unhealthy_termination)},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        const char *v = map_get(tga, bools[i].key, b, sizeof b);
        if (ann_bool(bools[i].key, v, (bool *)((char *)p + bools[i].off), err, errlen))
            return LB_EINVAL;
    }
    if (attr_seconds(tga, "deregistration_delay.timeout_seconds", 3600, &p->dereg_delay, err,
                     errlen) ||
        attr_seconds(tga, "target_health_state.unhealthy.draining_interval_seconds", 360000,
                     &p->unhealthy_draining, err, errlen))
        return LB_EINVAL;
    const char *mh = map_get(tga, "target_group_health.unhealthy_state_routing."
                             "minimum_healthy_targets.count", b, sizeof b);
    if (mh && !parse_int(mh, 1, 1000000, &p->min_healthy))
        FAIL("target_group_health.unhealthy_state_routing.minimum_healthy_targets.count=%s: "
             "expected a count >= 1", mh);
    /* static node addresses, one per subnet */
    const char *ips = ann(svc, "aws-load-balancer-private-ipv4-addresses");
    for (const char *s = ips; s && *s;) {
        while (*s == ' ' || *s == ',') s++;
        if (!*s) break;
        size_t n = strcspn(s, ",");
        char ip[32];
        snprintf(ip, sizeof ip, "%.*s", (int)(n < sizeof ip - 1 ? n : sizeof ip - 1), s);
        for (size_t k = strlen(ip); k && ip[k - 1] == ' '; k--) ip[k - 1] = 0;
        if (p->n_private_ips == AWS_NLB_MAX_ZONES)
            FAIL(ANN "aws-load-balancer-private-ipv4-addresses: more than %d addresses",
                 AWS_NLB_MAX_ZONES);
        if (lb_ip_parse(ip, &p->private_ips[p->n_private_ips]))
            FAIL(ANN "aws-load-balancer-private-ipv4-addresses: \"%s\" is not an IPv4 address",
                 ip);
        p->n_private_ips++;
        s += n;
    }
    return 0;
}

#undef FAIL

/* ---- small helpers --------------------------------------------------------------------- */

static inline target_t *tgt(const aws_nlb_t *nlb, size_t i) { return nlb->targets.v[i]; }

static health_state_t tstate(const aws_nlb_t *nlb, size_t l, const target_t *t)
{
    return health_target_state(nlb->lst[l].hc[t->zone], t->hidx);
}

static bool in_view(const aws_nlb_t *nlb, size_t z, const target_t *t)
{
    return !t->deregistered && (nlb->p.cross_zone || t->zone == z);
}

size_t aws_nlb_healthy_in_view(const aws_nlb_t *nlb, size_t l, size_t z)
{
    assert(l < nlb->nl && z < nlb->nz);
    size_t n = 0;
    for (size_t i = 0; i < nlb->targets.n; i++) {
        const target_t *t = tgt(nlb, i);
        if (in_view(nlb, z, t) && tstate(nlb, l, t) == HEALTH_UP) n++;
    }
    return n;
}

static bool fails_open(const aws_nlb_t *nlb, size_t l, size_t z)
{
    return aws_nlb_healthy_in_view(nlb, l, z) < (size_t)nlb->p.min_healthy;
}

static int listener_find(const aws_nlb_t *nlb, uint16_t port)
{
    for (size_t l = 0; l < nlb->nl; l++)
        if (nlb->lst[l].l.port == port) return (int)l;
    return -1;
}

/* A RST answering `in` as its destination would (RFC 793 "Reset Generation", the way
 * tcp_v4_send_reset builds it), sent into the fabric. */
static void rst_reply(aws_nlb_t *nlb, znode_t *zn, const pkt_t *in, const char *why)
{
    pkt_t *r = pkt_rst_reply(nlb->net, in);
    if (!r) return;
    nlb->st.rst_sent++;
    char ps[160];
    net_notef(nlb->net, zn->node->name, r->flow, "NLB RST (%s) in answer to %s", why,
              pkt_str(in, ps, sizeof ps));
    if (net_tracing(nlb->net, r->flow))
        net_tracef(nlb->net, zn->node->name, r, "RST (%s): %s", why, pkt_str(r, ps, sizeof ps));
    net_fabric_send(nlb->fab, r);
}

static const char *end_name(int end)
{
    switch (end) {
    case END_IDLE: return "idle timeout";
    case END_UNHEALTHY: return "target unhealthy";
    case END_DEREG: return "target deregistered";
    default: return "?";
    }
}

/* ---- the flow table -------------------------------------------------------------------- */

static void flow_timer_cb(sim_t *sim, void *a, void *b);

static void flow_arm(aws_nlb_t *nlb, uint32_t idx, sim_time_t when)
{
    flow_t *f = &nlb->flows.v[idx];
    sim_cancel(nlb->sim, &f->timer);
    f->timer = sim_schedule_at(nlb->sim, when, flow_timer_cb, nlb, (void *)(uintptr_t)idx);
}

static l4flow_key_t key_fwd(const flow_t *f)
{
    return l4flow_key(f->client, f->cport, f->zaddr, f->lport, NET_PROTO_TCP, KEY_FWD);
}

static l4flow_key_t key_rev(const flow_t *f)
{
    return l4flow_key(f->taddr, f->tport, f->zaddr, f->nport, NET_PROTO_TCP, KEY_REV);
}

static void flow_remove(aws_nlb_t *nlb, uint32_t idx)
{
    flow_t *f = &nlb->flows.v[idx];
    l4flow_key_t kf = key_fwd(f), kr = key_rev(f);
    int rc = l4flow_index_del(&nlb->ix, &kf);
    assert(rc == 0);
    rc = l4flow_index_del(&nlb->ix, &kr);
    assert(rc == 0);
    (void)rc;
    sim_cancel(nlb->sim, &f->timer);
    f->state = 0;
    f->next_free = nlb->free_head;
    nlb->free_head = idx + 1;
    nlb->st.flows_now--;
}

static void flow_end(aws_nlb_t *nlb, uint32_t idx, int end)
{
    flow_t *f = &nlb->flows.v[idx];
    sim_time_t now = sim_now(nlb->sim);
    f->state = FLOW_ENDED;
    f->end = (uint8_t)end;
    f->ended_at = now;
    if (end == END_IDLE) nlb->st.idle_expired++;
    else nlb->st.terminated++;
    if (net_tracing(nlb->net, f->trace)) {
        char b[32];
        net_tracef_flow(nlb->net, nlb->zones[f->zone].node->name, f->trace, "flow to %s ended "
                        "(%s; last packet at %s): its next packets get a RST",
                        tgt(nlb, f->target)->label, end_name(end),
                        sim_time_str(f->last_seen, b));
    }
    flow_arm(nlb, idx, now + nlb->p.idle_timeout);
}

static void flow_timer_cb(sim_t *sim, void *a, void *b)
{
    aws_nlb_t *nlb = a;
    uint32_t idx = (uint32_t)(uintptr_t)b;
    flow_t *f = &nlb->flows.v[idx];
    f->timer = (sim_handle_t){0};
    sim_time_t now = sim_now(sim), idle = nlb->p.idle_timeout;
    if (f->state == FLOW_LIVE) {
        if (now < f->last_seen + idle) flow_arm(nlb, idx, f->last_seen + idle);
        else flow_end(nlb, idx, END_IDLE);
    } else if (now < f->ended_at + idle) {
        flow_arm(nlb, idx, f->ended_at + idle);
    } else {
        flow_remove(nlb, idx);
    }
}

/* The flow at idx is still live (ends it lazily when it idled out before its timer ran). */
static bool flow_live(aws_nlb_t *nlb, uint32_t idx)
{
    flow_t *f = &nlb->flows.v[idx];
    if (f->state == FLOW_LIVE && sim_now(nlb->sim) >= f->last_seen + nlb->p.idle_timeout)
        flow_end(nlb, idx, END_IDLE);
    return f->state == FLOW_LIVE;
}

/* A free NAT source port on node zn toward taddr:tport, or 0. */
static uint16_t nat_port(aws_nlb_t *nlb, znode_t *zn, uint32_t taddr, uint16_t tport)
{
    uint32_t range = NAT_PORT_HI - NAT_PORT_LO + 1;
    for (uint32_t k = 0; k < range; k++) {
        uint16_t port = (uint16_t)(NAT_PORT_LO + (zn->next_port + k) % range);
        l4flow_key_t kr = l4flow_key(taddr, tport, zn->addr, port, NET_PROTO_TCP, KEY_REV);
        if (l4flow_index_get(&nlb->ix, &kr) < 0) {
            zn->next_port = (zn->next_port + k + 1) % range;
            return port;
        }
    }
    return 0;
}

/* ---- flows of a target that turns unhealthy or leaves ----------------------------------- */

/* Ends the live flows of target ti in listener l's target group (every listener when l is
 * -1). With check_open, flows at a node that now fails open are kept (the documented
 * "unless the unhealthy target triggers the load balancer to fail open"). */
static size_t terminate_flows(aws_nlb_t *nlb, int l, size_t ti, int end, bool check_open,
                              uint64_t cause)
{
    size_t n = 0;
    for (size_t i = 0; i < nlb->flows.n; i++) {
        flow_t *f = &nlb->flows.v[i];
        if (f->state != FLOW_LIVE || f->target != ti || (l >= 0 && f->lst != (size_t)l))
            continue;
        if (!flow_live(nlb, (uint32_t)i)) continue;
        if (check_open && fails_open(nlb, f->lst, f->zone)) continue;
        flow_end(nlb, (uint32_t)i, end);
        if (nlb->p.explain)
            explain_note(nlb->p.explain, nlb->zones[f->zone].node->name, f->trace, cause,
                         "flow to %s terminated (%s): its next packet gets a RST",
                         tgt(nlb, ti)->label, end_name(end));
        n++;
    }
    return n;
}

static void drain_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    hcref_t *ref = a;
    size_t ti = (size_t)(uintptr_t)b;
    aws_nlb_t *nlb = ref->nlb;
    target_t *t = tgt(nlb, ti);
    t->drain[ref->l] = (sim_handle_t){0};
    if (tstate(nlb, ref->l, t) != HEALTH_UP)
        terminate_flows(nlb, (int)ref->l, ti, END_UNHEALTHY, true,
                        explain_note(nlb->p.explain, nlb->zones[t->zone].node->name, 0, 0,
                                     "target %s: unhealthy draining interval over",
                                     t->label));
}

static void dereg_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    aws_nlb_t *nlb = a;
    size_t ti = (size_t)(uintptr_t)b;
    target_t *t = tgt(nlb, ti);
    t->dereg = (sim_handle_t){0};
    if (nlb->p.dereg_termination)
        terminate_flows(nlb, -1, ti, END_DEREG, false,
                        explain_note(nlb->p.explain, nlb->zones[t->zone].node->name, 0, 0,
                                     "target %s: deregistration delay over", t->label));
}

/* ---- health ------------------------------------------------------------------------------ */

static void on_health(health_t *hc, size_t hidx, health_state_t from, health_state_t to,
                      const health_result_t *last, void *data)
{
    hcref_t *ref = data;
    aws_nlb_t *nlb = ref->nlb;
    znode_t *zn = &nlb->zones[ref->z];
    size_t ti = zn->targets.v[hidx];
    target_t *t = tgt(nlb, ti);
    lstn_t *ls = &nlb->lst[ref->l];
    explain_t *ex = nlb->p.explain;
    uint64_t note = 0;
    if (ex) {
        uint64_t probe = explain_note(ex, zn->node->name, 0, explain_flow_last(ex, last->flow),
                                      "health check %s%s of %s port %u -> %s",
                                      health_params(hc)->proto == HEALTH_TCP ? "TCP connect"
                                      : "HTTP GET ", health_params(hc)->proto == HEALTH_TCP ? ""
                                      : health_params(hc)->path, t->label,
                                      nlb->p.hc_port ? nlb->p.hc_port : ls->l.target_port,
                                      last->reason);
        note = explain_note(ex, zn->node->name, 0, probe, "target %s %s -> %s in target group "
                            "of listener %u", t->label, health_state_name(from),
                            health_state_name(to), ls->l.port);
    }
    if (to == HEALTH_UP) {
        sim_cancel(nlb->sim, &t->drain[ref->l]);
    } else if (!t->deregistered) {
        size_t n = 0;
        if (nlb->p.unhealthy_termination)
            n = terminate_flows(nlb, (int)ref->l, ti, END_UNHEALTHY, true, note);
        else if (nlb->p.unhealthy_draining > 0 && !sim_pending(nlb->sim, &t->drain[ref->l]))
            t->drain[ref->l] = sim_schedule(nlb->sim, nlb->p.unhealthy_draining, drain_cb, ref,
                                            (void *)(uintptr_t)ti);
        if (n && ex)
            note = explain_note(ex, zn->node->name, 0, note, "%zu flow%s to %s terminated: "
                                "their next packets get a RST", n, n == 1 ? "" : "s", t->label);
    }
    if (!ex) return;
    /* each node whose view changed: fail open or not */
    for (size_t z = 0; z < nlb->nz; z++) {
        znode_t *zz = &nlb->zones[z];
        if (!in_view(nlb, z, t)) continue;
        if (fails_open(nlb, ref->l, z)) {
            zz->state_note = explain_note(ex, zz->node->name, 0, note, "listener %u: fewer "
                                          "than %d healthy target%s in view: routing failover, "
                                          "new flows go to every target (fail open)",
                                          ls->l.port, nlb->p.min_healthy,
                                          nlb->p.min_healthy == 1 ? "" : "s");
            explain_set_state(ex, zz->node->name, zz->state_note);
        } else if (zz->state_note) {
            bool any = false;               /* another target group may still fail open */
            for (size_t l = 0; l < nlb->nl && !any; l++) any = fails_open(nlb, l, z);
            if (!any) {
                zz->state_note = 0;
                explain_set_state(ex, zz->node->name, 0);
            }
        }
    }
}

/* ---- the data path ----------------------------------------------------------------------- */

static void forward(aws_nlb_t *nlb, flow_t *f, pkt_t *p)
{
    p->src = f->zaddr;
    p->sport = f->nport;
    p->dst = f->taddr;
    p->dport = f->tport;
    net_fabric_send(nlb->fab, p);
}

static void reply(aws_nlb_t *nlb, flow_t *f, pkt_t *p)
{
    p->src = f->zaddr;
    p->sport = f->lport;
    p->dst = f->client;
    p->dport = f->cport;
    net_fabric_send(nlb->fab, p);
}

static uint64_t flow_hash(const aws_nlb_t *nlb, const pkt_t *p)
{
    uint64_t a = (uint64_t)p->src << 32 | p->dst;
    uint64_t b = (uint64_t)p->sport << 48 | (uint64_t)p->dport << 32 | p->seq;
    return lb_mix64(lb_mix64(a ^ nlb->seed) ^ b ^ ((uint64_t)p->proto << 56));
}

/* A packet of an ended flow, or of none: RST in answer (idle timeout / unhealthy target). */
static void dead_packet(aws_nlb_t *nlb, znode_t *zn, pkt_t *p, const flow_t *f)
{
    char why[96];
    if (f) snprintf(why, sizeof why, "flow ended: %s", end_name(f->end));
    else snprintf(why, sizeof why, "no such flow");
    rst_reply(nlb, zn, p, why);
    net_drop(nlb->net, zn->node, p, f ? "nlb-flow-ended" : "nlb-no-flow",
             "%s: %s%s", zn->node->name, why,
             f && f->end == END_UNHEALTHY ? " (connection termination for unhealthy targets)" : "");
}

static void new_flow(aws_nlb_t *nlb, znode_t *zn, size_t l, pkt_t *p)
{
    size_t z = zn->idx;
    nlb->cand.n = 0;
    size_t healthy = 0;
    for (size_t i = 0; i < nlb->targets.n; i++) {
        const target_t *t = tgt(nlb, i);
        if (in_view(nlb, z, t) && tstate(nlb, l, t) == HEALTH_UP) {
            lb_vec_push(&nlb->cand, i);
            healthy++;
        }
    }
    bool open = healthy < (size_t)nlb->p.min_healthy;
    if (open) {
        nlb->cand.n = 0;
        for (size_t i = 0; i < nlb->targets.n; i++)
            if (in_view(nlb, z, tgt(nlb, i))) lb_vec_push(&nlb->cand, i);
    }
    if (!nlb->cand.n) {
        nlb->st.drop_no_target++;
        net_drop(nlb->net, zn->node, p, "nlb-no-target", "%s: listener %u: no registered target "
                 "in %s", zn->node->name, nlb->lst[l].l.port,
                 nlb->p.cross_zone ? "any zone" : "this zone (cross-zone load balancing off)");
        return;
    }
    uint64_t h = flow_hash(nlb, p);
    size_t ti = nlb->cand.v[h % nlb->cand.n];
    target_t *t = tgt(nlb, ti);
    uint16_t tport = nlb->lst[l].l.target_port;
    uint16_t nport = nat_port(nlb, zn, t->addr, tport);
    if (!nport) {
        nlb->st.drop_no_port++;
        net_drop(nlb->net, zn->node, p, "nlb-no-port", "%s: no free source port toward %s:%u",
                 zn->node->name, t->label, tport);
        return;
    }
    uint32_t idx;
    if (nlb->free_head) {
        idx = nlb->free_head - 1;
        nlb->free_head = nlb->flows.v[idx].next_free;
    } else {
        lb_vec_push(&nlb->flows, (flow_t){0});
        idx = (uint32_t)(nlb->flows.n - 1);
    }
    flow_t *f = &nlb->flows.v[idx];
    memset(f, 0, sizeof *f);
    f->client = p->src;
    f->cport = p->sport;
    f->zaddr = zn->addr;
    f->lport = p->dport;
    f->taddr = t->addr;
    f->tport = tport;
    f->nport = nport;
    f->state = FLOW_LIVE;
    f->zone = (uint8_t)z;
    f->lst = (uint8_t)l;
    f->target = (uint32_t)ti;
    f->trace = p->flow;
    f->last_seen = sim_now(nlb->sim);
    l4flow_key_t kf = key_fwd(f), kr = key_rev(f);
    int rc = l4flow_index_put(&nlb->ix, &kf, idx);
    assert(rc == 0);
    rc = l4flow_index_put(&nlb->ix, &kr, idx);
    assert(rc == 0);
    (void)rc;
    nlb->st.new_flows++;
    nlb->st.flows_now++;
    if (open) {
        nlb->st.fail_open_flows++;
        if (nlb->p.explain)
            explain_note(nlb->p.explain, zn->node->name, p->flow, zn->state_note, "listener %u: "
                         "no healthy target in view: fail open, new flow sent to %s",
                         nlb->lst[l].l.port, t->label);
    }
    flow_arm(nlb, idx, f->last_seen + nlb->p.idle_timeout);
    if (net_tracing(nlb->net, p->flow)) {
        char a[16];
        net_tracef(nlb->net, zn->node->name, p, "listener %u: new flow -> target %s:%u (flow "
                   "hash %016llx over %zu %s target%s in %s), source %s:%u",
                   nlb->lst[l].l.port, t->label, tport, (unsigned long long)h, nlb->cand.n,
                   open ? "(routing failover: fail open)" : "healthy",
                   nlb->cand.n == 1 ? "" : "s", nlb->p.cross_zone ? "all zones" : zn->zname,
                   lb_ip_str(zn->addr, a), nport);
    }
    forward(nlb, f, p);
}

static void vip_rx(net_fabric_t *fab, pkt_t *p, void *data)
{
    (void)fab;
    znode_t *zn = data;
    aws_nlb_t *nlb = zn->nlb;
    nlb->st.packets++;
    if (p->proto != NET_PROTO_TCP) {
        nlb->st.drop_no_listener++;
        net_drop(nlb->net, zn->node, p, "nlb-no-listener", "%s: no listener for this protocol "
                 "(UDP/TCP_UDP listeners are not modelled)", zn->node->name);
        return;
    }
    /* a target's reply to a translated flow */
    l4flow_key_t k = l4flow_key(p->src, p->sport, p->dst, p->dport, NET_PROTO_TCP, KEY_REV);
    int64_t idx = l4flow_index_get(&nlb->ix, &k);
    if (idx >= 0) {
        flow_t *f = &nlb->flows.v[idx];
        if (flow_live(nlb, (uint32_t)idx)) {
            f->last_seen = sim_now(nlb->sim);
            reply(nlb, f, p);
        } else {
            dead_packet(nlb, zn, p, f);
        }
        return;
    }
    /* a client's packet of a known flow */
    k = l4flow_key(p->src, p->sport, p->dst, p->dport, NET_PROTO_TCP, KEY_FWD);
    idx = l4flow_index_get(&nlb->ix, &k);
    bool syn = (p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
    if (idx >= 0) {
        flow_t *f = &nlb->flows.v[idx];
        if (flow_live(nlb, (uint32_t)idx)) {
            f->last_seen = sim_now(nlb->sim);
            if (net_tracing(nlb->net, p->flow))
                net_tracef(nlb->net, zn->node->name, p, "flow -> %s", tgt(nlb, f->target)->label);
            forward(nlb, f, p);
            return;
        }
        if (!syn) {
            dead_packet(nlb, zn, p, f);
            return;
        }
        flow_remove(nlb, (uint32_t)idx);      /* a new connection reuses the tuple */
    }
    int l = listener_find(nlb, p->dport);
    if (l < 0) {
        /* the node's own connections (health checks) use its ephemeral ports */
        const tcp_params_t *tp = tcp_stack_params(zn->node);
        if (p->dport >= tp->port_lo && p->dport <= tp->port_hi) {
            net_node_rx(zn->node, zn->nic, p);
            return;
        }
        nlb->st.drop_no_listener++;
        net_drop(nlb->net, zn->node, p, "nlb-no-listener", "%s: no listener on TCP port %u",
                 zn->node->name, p->dport);
        return;
    }
    if (!syn) {
        dead_packet(nlb, zn, p, NULL);
        return;
    }
    new_flow(nlb, zn, (size_t)l, p);
}

/* ---- construction ------------------------------------------------------------------------ */

static health_proto_t hc_proto(aws_nlb_hc_proto_t p)
{
    return p == AWS_NLB_HC_TCP ? HEALTH_TCP : HEALTH_HTTP;     /* HTTPS probed as HTTP */
}

aws_nlb_t *aws_nlb_new(net_t *net, net_fabric_t *fab, const aws_nlb_params_t *p,
                       const aws_nlb_zone_t *zones, size_t n_zones, char *err, size_t errlen)
{
#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); aws_nlb_free(nlb); return NULL; } \
                  while (0)
    aws_nlb_t *nlb = NULL;
    if (!n_zones || n_zones > AWS_NLB_MAX_ZONES)
        FAIL("needs 1 to %d availability zones", AWS_NLB_MAX_ZONES);
    if (!p->n_listeners || p->n_listeners > AWS_NLB_MAX_LISTENERS)
        FAIL("needs 1 to %d listeners", AWS_NLB_MAX_LISTENERS);
    if (!p->ip_targets)
        FAIL("instance targets are not modelled (set aws-load-balancer-nlb-target-type: ip)");
    if (p->preserve_client_ip)
        FAIL("client IP preservation with ip targets is not modelled");
    if (p->min_healthy < 1) FAIL("min_healthy must be >= 1");
    if (p->idle_timeout <= 0 || p->dereg_delay < 0 || p->unhealthy_draining < 0)
        FAIL("idle timeout must be > 0, delays >= 0");
    health_params_t hp;
    health_params_preset(&hp, HEALTH_VENDOR_NLB, hc_proto(p->hc_proto));
    hp.interval = (sim_time_t)p->hc_interval_s * SIM_S;
    hp.timeout = (sim_time_t)p->hc_timeout_s * SIM_S;
    hp.healthy_threshold = p->hc_healthy;
    hp.unhealthy_threshold = p->hc_unhealthy;
    hp.path = p->hc_path && *p->hc_path ? p->hc_path : AWS_NLB_HC_PATH_DEFAULT;
    if (health_matcher_parse(&hp.matcher, p->hc_success ? p->hc_success
                             : AWS_NLB_HC_SUCCESS_DEFAULT))
        FAIL("health check success codes '%s': expected codes like 200-399", p->hc_success);
    char perr[160];
    if (health_params_check(&hp, perr, sizeof perr)) FAIL("health check: %s", perr);

    nlb = lb_calloc(1, sizeof *nlb);
    nlb->net = net;
    nlb->sim = net_sim(net);
    nlb->fab = fab;
    nlb->p = *p;
    nlb->name = lb_strdup(p->name && *p->name ? p->name : "nlb");
    nlb->hc_path = lb_strdup(hp.path);
    nlb->hc_success = lb_strdup(p->hc_success ? p->hc_success : AWS_NLB_HC_SUCCESS_DEFAULT);
    nlb->p.name = nlb->name;
    nlb->p.hc_path = nlb->hc_path;
    nlb->p.hc_success = nlb->hc_success;
    nlb->seed = lb_hash_str(nlb->name);
    l4flow_index_init(&nlb->ix, nlb->seed);
    for (size_t i = 0; i < p->n_listeners; i++) {
        const aws_nlb_listener_t *in = &p->listeners[i];
        lstn_t *ls = &nlb->lst[i];
        nlb->nl = i + 1;
        ls->l = *in;
        ls->name = in->name ? lb_strdup(in->name) : NULL;
        ls->tp_name = in->target_port_name ? lb_strdup(in->target_port_name) : NULL;
        ls->l.name = ls->name;
        ls->l.target_port_name = ls->tp_name;
        if (!in->port || !in->target_port)
            FAIL("listener %u: %s", in->port, !in->port ? "port 0" :
                 "named targetPort must be resolved to a number first");
        for (size_t j = 0; j < i; j++)
            if (nlb->lst[j].l.port == in->port) FAIL("listener port %u twice", in->port);
    }
    for (size_t z = 0; z < n_zones; z++) {
        znode_t *zn = &nlb->zones[z];
        zn->nlb = nlb;
        zn->idx = z;
        zn->zname = lb_strdup(zones[z].name && *zones[z].name ? zones[z].name : "zone");
        nlb->nz = z + 1;
        for (size_t k = 0; k < z; k++)
            if (!strcmp(nlb->zones[k].zname, zn->zname)) FAIL("zone %s twice", zn->zname);
        uint32_t a = zones[z].addr ? zones[z].addr : z < p->n_private_ips ? p->private_ips[z] : 0;
        if (!a && zones[z].plen > 0 && zones[z].plen < 31)
            a = (zones[z].subnet | ~lb_prefix_mask(zones[z].plen)) - 1;
        if (!a) FAIL("zone %s: no address for the NLB node (give one, a private IP or a subnet)",
                     zn->zname);
        zn->addr = a;
        char *nname = lb_sprintf("%s-%s", nlb->name, zn->zname);
        if (net_node_find(net, nname)) {
            lb_free(nname);
            FAIL("a node named %s-%s exists already", nlb->name, zn->zname);
        }
        if (net_fabric_vip(fab, a, nname, vip_rx, zn)) {
            char ip[16];
            lb_free(nname);
            FAIL("zone %s: address %s is already in use in %s", zn->zname, lb_ip_str(a, ip),
                 net_fabric_name(fab));
        }
        zn->node = net_node_add(net, nname);
        lb_free(nname);
        zn->node->data = nlb;
        /* the address is the VIP; the node owns it for its own (health check) sockets */
        zn->nic = net_iface_add(zn->node, "eth0", 0, 0);
        net_fabric_attach(fab, zn->nic);
        net_node_addr_add(zn->node, a);
        net_route_add(zn->node, 0, 0, 0, zn->nic);
        hp.src = a;
        for (size_t l = 0; l < nlb->nl; l++) {
            lstn_t *ls = &nlb->lst[l];
            char *hname = lb_sprintf("%s/%u/%s", nlb->name, ls->l.port, zn->zname);
            int rc = 0;
            ls->hc[z] = health_new(zn->node, hname, &hp, p->metrics, &rc);
            lb_free(hname);
            if (!ls->hc[z]) FAIL("health check: %s", lb_strerror(rc));
            ls->ref[z] = (hcref_t){nlb, l, z};
            health_set_callback(ls->hc[z], on_health, &ls->ref[z]);
        }
    }
    return nlb;
#undef FAIL
}

void aws_nlb_free(aws_nlb_t *nlb)
{
    if (!nlb) return;
    for (size_t l = 0; l < nlb->nl; l++) {
        for (size_t z = 0; z < nlb->nz; z++) health_free(nlb->lst[l].hc[z]);
        lb_free(nlb->lst[l].name);
        lb_free(nlb->lst[l].tp_name);
    }
    for (size_t z = 0; z < nlb->nz; z++) {
        lb_free(nlb->zones[z].zname);
        lb_vec_free(&nlb->zones[z].targets);
    }
    for (size_t i = 0; i < nlb->targets.n; i++) {
        target_t *t = nlb->targets.v[i];
        sim_cancel(nlb->sim, &t->dereg);
        for (size_t l = 0; l < nlb->nl; l++) sim_cancel(nlb->sim, &t->drain[l]);
        lb_free(t->label);
        lb_free(t);
    }
    for (size_t i = 0; i < nlb->flows.n; i++)
        if (nlb->flows.v[i].state) sim_cancel(nlb->sim, &nlb->flows.v[i].timer);
    lb_vec_free(&nlb->targets);
    lb_vec_free(&nlb->flows);
    lb_vec_free(&nlb->cand);
    l4flow_index_free(&nlb->ix);
    lb_free(nlb->hc_path);
    lb_free(nlb->hc_success);
    lb_free(nlb->name);
    lb_free(nlb);
}

int aws_nlb_target_add(aws_nlb_t *nlb, uint32_t addr, const char *zone, const char *label)
{
    return aws_nlb_target_register(nlb, addr, zone, label, 0);
}

int aws_nlb_target_register(aws_nlb_t *nlb, uint32_t addr, const char *zone, const char *label,
                            sim_time_t lag)
{
    if (!addr || !zone) return LB_EINVAL;
    size_t z = 0;
    while (z < nlb->nz && strcmp(nlb->zones[z].zname, zone)) z++;
    if (z == nlb->nz) return LB_ENOENT;
    for (size_t i = 0; i < nlb->targets.n; i++)
        if (nlb->targets.v[i]->addr == addr) return LB_EEXIST;
    target_t *t = lb_calloc(1, sizeof *t);
    char ip[16];
    t->addr = addr;
    t->label = lb_strdup(label && *label ? label : lb_ip_str(addr, ip));
    t->zone = z;
    znode_t *zn = &nlb->zones[z];
    t->hidx = zn->targets.n;
    lb_vec_push(&zn->targets, nlb->targets.n);
    lb_vec_push(&nlb->targets, t);
    for (size_t l = 0; l < nlb->nl; l++) {
        uint16_t port = nlb->p.hc_port ? nlb->p.hc_port : nlb->lst[l].l.target_port;
        size_t h = health_target_add_after(nlb->lst[l].hc[z], addr, port, t->label, lag);
        assert(h == t->hidx);
        (void)h;
    }
    return (int)(nlb->targets.n - 1);
}

int aws_nlb_target_deregister(aws_nlb_t *nlb, size_t i)
{
    if (i >= nlb->targets.n) return LB_ENOENT;
    target_t *t = tgt(nlb, i);
    if (t->deregistered) return LB_ESTATE;
    t->deregistered = true;
    t->dereg = sim_schedule(nlb->sim, nlb->p.dereg_delay, dereg_cb, nlb, (void *)(uintptr_t)i);
    if (nlb->p.explain)
        explain_note(nlb->p.explain, nlb->zones[t->zone].node->name, 0, 0, "target %s "
                     "deregistered: no new flows; existing ones %s after %llds", t->label,
                     nlb->p.dereg_termination ? "are reset" : "may continue",
                     (long long)(nlb->p.dereg_delay / SIM_S));
    return 0;
}

/* ---- queries ------------------------------------------------------------------------------- */

const char *aws_nlb_name(const aws_nlb_t *nlb) { return nlb->name; }
size_t aws_nlb_zone_count(const aws_nlb_t *nlb) { return nlb->nz; }
size_t aws_nlb_listener_count(const aws_nlb_t *nlb) { return nlb->nl; }
size_t aws_nlb_target_count(const aws_nlb_t *nlb) { return nlb->targets.n; }

const char *aws_nlb_zone_name(const aws_nlb_t *nlb, size_t z)
{
    assert(z < nlb->nz);
    return nlb->zones[z].zname;
}

uint32_t aws_nlb_zone_addr(const aws_nlb_t *nlb, size_t z)
{
    assert(z < nlb->nz);
    return nlb->zones[z].addr;
}

net_node_t *aws_nlb_zone_node(const aws_nlb_t *nlb, size_t z)
{
    assert(z < nlb->nz);
    return nlb->zones[z].node;
}

const aws_nlb_listener_t *aws_nlb_listener(const aws_nlb_t *nlb, size_t l)
{
    assert(l < nlb->nl);
    return &nlb->lst[l].l;
}

uint32_t aws_nlb_target_addr(const aws_nlb_t *nlb, size_t i)
{
    assert(i < nlb->targets.n);
    return tgt(nlb, i)->addr;
}

size_t aws_nlb_target_zone(const aws_nlb_t *nlb, size_t i)
{
    assert(i < nlb->targets.n);
    return tgt(nlb, i)->zone;
}

const char *aws_nlb_target_label(const aws_nlb_t *nlb, size_t i)
{
    assert(i < nlb->targets.n);
    return tgt(nlb, i)->label;
}

const aws_nlb_params_t *aws_nlb_params(const aws_nlb_t *nlb) { return &nlb->p; }

health_state_t aws_nlb_target_state(const aws_nlb_t *nlb, size_t l, size_t i)
{
    assert(l < nlb->nl && i < nlb->targets.n);
    return tstate(nlb, l, tgt(nlb, i));
}

health_t *aws_nlb_health(const aws_nlb_t *nlb, size_t l, size_t z)
{
    assert(l < nlb->nl && z < nlb->nz);
    return nlb->lst[l].hc[z];
}

/* A zone is healthy for DNS when every target group has a healthy target it can use. */
static bool zone_healthy(const aws_nlb_t *nlb, size_t z)
{
    for (size_t l = 0; l < nlb->nl; l++)
        if (aws_nlb_healthy_in_view(nlb, l, z) < (size_t)nlb->p.min_healthy) return false;
    return true;
}

bool aws_nlb_zone_in_dns(const aws_nlb_t *nlb, size_t z)
{
    assert(z < nlb->nz);
    if (zone_healthy(nlb, z)) return true;
    for (size_t k = 0; k < nlb->nz; k++)
        if (zone_healthy(nlb, k)) return false;
    return true;                    /* no healthy zone: DNS fails open */
}

int aws_nlb_flow_target(const aws_nlb_t *nlb, uint32_t client, uint16_t cport, uint32_t addr,
                        uint16_t port)
{
    l4flow_key_t k = l4flow_key(client, cport, addr, port, NET_PROTO_TCP, KEY_FWD);
    int64_t idx = l4flow_index_get(&nlb->ix, &k);
    if (idx < 0) return -1;
    const flow_t *f = &nlb->flows.v[idx];
    if (f->state != FLOW_LIVE || sim_now(nlb->sim) >= f->last_seen + nlb->p.idle_timeout)
        return -1;
    return (int)f->target;
}

void aws_nlb_stats(const aws_nlb_t *nlb, aws_nlb_stats_t *out) { *out = nlb->st; }

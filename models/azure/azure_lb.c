/* azure_lb.c -- Azure Standard Load Balancer with an internal frontend (include/azure_lb.h):
 * the frontend's VIP handler, rules, backend pool, probes (health.h) from 168.63.129.16,
 * and the flow table that pins each flow to its backend.
 *
 * What Azure documents and this file follows (MicrosoftDocs/azure-docs, articles/load-balancer):
 *  - load-balancer-distribution-mode.md: default distribution is a 5-tuple hash (source IP,
 *    source port, destination IP, destination port, protocol). Azure's hash function is not
 *    public: here lb_mix64 over the tuple, seeded by the LB's name, modulo the backends
 *    that are healthy for the rule's probe, in pool order.
 *  - load-balancer-custom-probe-overview.md "Probe down behavior" (Standard SKU): a backend
 *    that probes down gets no new flows, "Established TCP connections to this backend
 *    endpoint continue"; all backends down: "No new flows are sent to the backend pool",
 *    established TCP flows continue. A new flow with no healthy backend is dropped here
 *    ("lb-no-healthy-backend"), so the client's SYNs go unanswered and its connect times
 *    out. ARM probe noHealthyBackendsBehavior "AllProbedUp" (params.fail_open) sends new
 *    flows to every backend instead.
 *  - load-balancer-floating-ip.md: with floating IP the packet reaches the backend with the
 *    frontend IP and port as destination; the rule's backend port must equal the frontend
 *    port. Without it the destination becomes the backend's IP and backend port, and
 *    Azure's host agent (VFP) translates the replies' source back to the frontend on the
 *    backend's host. That reverse translation needs a per-NIC egress hook net.h does not
 *    have: not modelled yet, so floating IP off is only faithful up to the backend.
 *  - load-balancer-tcp-idle-timeout.md / load-balancer-tcp-reset.md: idle timeout 4 min by
 *    default; an idle flow is forgotten silently unless "TCP reset on idle" is on, which
 *    sends RSTs to both ends. A later packet of a forgotten flow is dropped here
 *    ("lb-flow-expired"); a packet of no known flow that is not a SYN, "lb-no-flow".
 *  - Replies are not seen (Azure LB is pass-through: the backend answers the client
 *    directly, the DSR the seed articles describe).
 *
 * Flow table: flows live in a pool (flow_t, addressed by index so timers can name them)
 * and the 5-tuple index shared by the L4 LBs (include/l4flow.h), keyed by the 5-tuple as
 * the client sent it. Idle expiry is lazy: each flow has one timer at its last_seen +
 * idle_timeout; when it fires and the flow saw packets since, it is re-armed
 * for the new deadline -- one event per idle period, none per packet. An expired flow is
 * kept (state EXPIRED) for one more idle period so a late packet can be explained, then
 * reaped. A SYN that finds an EXPIRED flow starts a new flow in its place. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "azure_lb.h"
#include "l4flow.h"
#include "tcp.h"

#define HTTP_PROBE_PATH_DEFAULT CPA_PROBE_PATH_DEFAULT     /* "/" */

enum { FLOW_LIVE = 1, FLOW_EXPIRED = 2 };

typedef struct flow {
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t proto, state;
    uint32_t rule, backend;
    uint64_t trace;             /* trace id of the flow's packets */
    sim_time_t last_seen, expired_at;
    sim_handle_t timer;
    uint32_t c_nxt, c_ack;      /* client's next sequence number and last ACK (TCP reset) */
    bool c_has_ack;
    uint32_t next_free;         /* free list link (index + 1) */
} flow_t;

typedef struct lbprobe {
    struct azure_lb *lb;
    char *name;
    azure_probe_proto_t protocol;
    uint16_t port;
    char *path;
    sim_time_t interval;
    int threshold;
    health_t *hc;
    LB_VEC(size_t) rules;       /* rules using it */
} lbprobe_t;

typedef struct lbrule {
    azure_lb_rule_t r;          /* name and probe strings point at owned copies */
    char *name;
    lbprobe_t *probe;           /* NULL: no probe */
    sim_time_t down_since;      /* -1 while a backend is healthy */
} lbrule_t;

typedef struct backend {
    net_iface_t *ifc;
    char *label;
} backend_t;

struct azure_lb {
    net_t *net;
    sim_t *sim;
    net_fabric_t *fab;
    char *name;
    uint32_t frontend;
    azure_lb_params_t p;
    uint64_t seed;              /* hash seed from the name */
    net_node_t *probe_node;
    LB_VEC(backend_t) backends;
    LB_VEC(lbrule_t *) rules;
    LB_VEC(lbprobe_t *) probes;
    /* flow table */
    LB_VEC(flow_t) flows;
    uint32_t free_head;         /* index + 1, 0: empty */
    l4flow_index_t ix;          /* 5-tuple -> flow index */
    LB_VEC(size_t) healthy;     /* scratch for backend choice */
    azure_lb_event_cb ev_cb;
    void *ev_data;
    azure_lb_stats_t stats;
};

static const char *proto_slug(azure_probe_proto_t p)
{
    switch (p) {
    case AZURE_PROBE_TCP: return "tcp";
    case AZURE_PROBE_HTTP: return "http";
    case AZURE_PROBE_HTTPS: return "https";
    default: return "none";
    }
}

/* ---- parameters ------------------------------------------------------------------------ */

void azure_lb_params_default(azure_lb_params_t *p)
{
    memset(p, 0, sizeof *p);
    int rc = lb_ip_parse(AZURE_LB_PROBE_SRC, &p->probe_src);
    assert(rc == 0);
    (void)rc;
}

void azure_lb_rule_init(azure_lb_rule_t *r, uint16_t port)
{
    memset(r, 0, sizeof *r);
    r->protocol = NET_PROTO_TCP;
    r->frontend_port = r->backend_port = port;
    r->floating_ip = true;
    r->idle_timeout = AZURE_LB_IDLE_TIMEOUT_DEFAULT;
    r->probe.protocol = AZURE_PROBE_TCP;
    r->probe.port = port;
    r->probe.interval = AZURE_LB_PROBE_INTERVAL_DEFAULT;
    r->probe.threshold = AZURE_LB_PROBE_THRESHOLD_DEFAULT;
}

int azure_lb_probe_from_cpa(const cpa_probe_t *cp, azure_lb_probe_t *out)
{
    memset(out, 0, sizeof *out);
    if (!cp->lb_rule) return LB_ENOENT;
    switch (cp->protocol) {
    case CPA_PROBE_TCP: out->protocol = AZURE_PROBE_TCP; break;
    case CPA_PROBE_HTTP: out->protocol = AZURE_PROBE_HTTP; break;
    case CPA_PROBE_HTTPS: out->protocol = AZURE_PROBE_HTTPS; break;
    default: out->protocol = AZURE_PROBE_NONE; return 0;
    }
    if (cp->port <= 0 || cp->port > 65535) return LB_EINVAL;
    out->port = (uint16_t)cp->port;
    out->path = cp->path[0] ? cp->path : NULL;
    out->interval = (sim_time_t)cp->interval_s * SIM_S;
    out->threshold = cp->threshold;
    return 0;
}

/* ---- flow table ------------------------------------------------------------------------ */

static uint64_t tuple_hash(const azure_lb_t *lb, uint32_t src, uint16_t sport, uint32_t dst,
                           uint16_t dport, uint8_t proto)
{
    uint64_t a = lb_mix64(lb->seed ^ (((uint64_t)src << 32) | dst));
    uint64_t b = lb_mix64(((uint64_t)sport << 32) | ((uint64_t)dport << 16) | proto);
    return lb_mix64(a ^ (b + 0x9e3779b97f4a7c15ULL));
}

static flow_t *flow_lookup(const azure_lb_t *lb, uint32_t src, uint16_t sport, uint32_t dst,
                           uint16_t dport, uint8_t proto)
{
    l4flow_key_t k = l4flow_key(src, sport, dst, dport, proto, 0);
    int64_t idx = l4flow_index_get(&lb->ix, &k);
    return idx >= 0 ? &lb->flows.v[idx] : NULL;
}

/* A new flow's index (state and fields set by the caller), inserted in the index. */
static uint32_t flow_insert(azure_lb_t *lb, uint32_t src, uint16_t sport, uint32_t dst,
                            uint16_t dport, uint8_t proto)
{
    uint32_t idx;
    if (lb->free_head) {
        idx = lb->free_head - 1;
        lb->free_head = lb->flows.v[idx].next_free;
    } else {
        lb_vec_push(&lb->flows, (flow_t){0});
        idx = (uint32_t)(lb->flows.n - 1);
    }
    flow_t *f = &lb->flows.v[idx];
    memset(f, 0, sizeof *f);
    f->src = src, f->dst = dst, f->sport = sport, f->dport = dport, f->proto = proto;
    l4flow_key_t k = l4flow_key(src, sport, dst, dport, proto, 0);
    int rc = l4flow_index_put(&lb->ix, &k, idx);
    assert(rc == 0);
    (void)rc;
    lb->stats.flows_now++;
    return idx;
}

static void flow_remove(azure_lb_t *lb, uint32_t idx)
{
    flow_t *f = &lb->flows.v[idx];
    l4flow_key_t k = l4flow_key(f->src, f->sport, f->dst, f->dport, f->proto, 0);
    int rc = l4flow_index_del(&lb->ix, &k);
    assert(rc == 0);
    (void)rc;
    sim_cancel(lb->sim, &f->timer);
    f->state = 0;
    f->next_free = lb->free_head;
    lb->free_head = idx + 1;
    lb->stats.flows_now--;
}

/* ---- idle timeout ---------------------------------------------------------------------- */

static void flow_timer_cb(sim_t *sim, void *a, void *b);

static void flow_arm(azure_lb_t *lb, uint32_t idx, sim_time_t when)
{
    flow_t *f = &lb->flows.v[idx];
    sim_cancel(lb->sim, &f->timer);
    f->timer = sim_schedule_at(lb->sim, when, flow_timer_cb, lb, (void *)(uintptr_t)idx);
}

static sim_time_t rule_idle(const azure_lb_t *lb, const flow_t *f)
{
    return lb->rules.v[f->rule]->r.idle_timeout;
}

/* A TCP RST from `src:sport` to `dst:dport` with sequence `seq`, into the fabric. */
static void send_rst(azure_lb_t *lb, const flow_t *f, uint32_t src, uint16_t sport,
                     uint32_t dst, uint16_t dport, uint32_t seq, uint32_t ack,
                     net_iface_t *to)
{
    pkt_t *p = pkt_new(lb->net);
    p->flow = f->trace;
    p->proto = NET_PROTO_TCP;
    p->src = src, p->sport = sport, p->dst = dst, p->dport = dport;
    p->tcp_flags = TCP_RST | TCP_ACK;
    p->seq = seq;
    p->ack = ack;
    lb->stats.resets_sent++;
    if (to) net_fabric_send_to(lb->fab, to, p);
    else net_fabric_send(lb->fab, p);
}

/* The flow idled out: forget it (keep the entry one more period to explain late packets)
 * and, with TCP reset on, reset both ends with the sequence numbers each one expects. */
static void flow_expire(azure_lb_t *lb, uint32_t idx)
{
    flow_t *f = &lb->flows.v[idx];
    const lbrule_t *r = lb->rules.v[f->rule];
    sim_time_t now = sim_now(lb->sim);
    f->state = FLOW_EXPIRED;
    f->expired_at = now;
    lb->stats.idle_expired++;
    if (net_tracing(lb->net, f->trace)) {
        char b[32];
        net_tracef_flow(lb->net, lb->name, f->trace, "rule %s: flow idle since %s, idle "
                        "timeout %llds: forgotten%s", r->name, sim_time_str(f->last_seen, b),
                        (long long)(r->r.idle_timeout / SIM_S),
                        r->r.tcp_reset && f->proto == NET_PROTO_TCP ? ", RST to both ends" : "");
    }
    if (r->r.tcp_reset && f->proto == NET_PROTO_TCP && f->c_has_ack) {
        backend_t *be = &lb->backends.v[f->backend];
        /* to the client, as the frontend: it expects the server's next byte, c_ack */
        send_rst(lb, f, f->dst, f->dport, f->src, f->sport, f->c_ack, f->c_nxt, NULL);
        /* to the backend, as the client: it expects c_nxt */
        uint32_t bdst = r->r.floating_ip ? f->dst : be->ifc->addr;
        uint16_t bport = r->r.floating_ip ? f->dport : r->r.backend_port;
        send_rst(lb, f, f->src, f->sport, bdst, bport, f->c_nxt, f->c_ack, be->ifc);
    }
    flow_arm(lb, idx, now + r->r.idle_timeout);
}

static void flow_timer_cb(sim_t *sim, void *a, void *b)
{
    azure_lb_t *lb = a;
    uint32_t idx = (uint32_t)(uintptr_t)b;
    flow_t *f = &lb->flows.v[idx];
    f->timer = (sim_handle_t){0};
    sim_time_t now = sim_now(sim), idle = rule_idle(lb, f);
    if (f->state == FLOW_LIVE) {
        if (now < f->last_seen + idle) flow_arm(lb, idx, f->last_seen + idle);
        else flow_expire(lb, idx);
    } else {
        if (now < f->expired_at + idle) flow_arm(lb, idx, f->expired_at + idle);
        else flow_remove(lb, idx);
    }
}

/* ---- health ---------------------------------------------------------------------------- */

static void emit(azure_lb_t *lb, azure_lb_ev_kind_t kind, size_t rule, size_t backend,
                 health_state_t from, health_state_t to, const health_result_t *r)
{
    if (!lb->ev_cb) return;
    azure_lb_event_t ev = {.kind = kind, .t = r->t_done, .rule = rule, .backend = backend,
                           .from = from, .to = to, .probe = r};
    lb->ev_cb(lb, &ev, lb->ev_data);
}

/* A backend's health changed for a probe: events for every rule using the probe, and the
 * rules' "no healthy backend" bookkeeping. */
static void on_health(health_t *hc, size_t target, health_state_t from, health_state_t to,
                      const health_result_t *last, void *data)
{
    lbprobe_t *pr = data;
    azure_lb_t *lb = pr->lb;
    size_t healthy = health_count_healthy(hc);
    for (size_t k = 0; k < pr->rules.n; k++) {
        size_t ri = pr->rules.v[k];
        lbrule_t *r = lb->rules.v[ri];
        if (net_tracing(lb->net, last->flow))
            net_tracef_flow(lb->net, lb->name, last->flow, "rule %s: backend %s %s (%s); "
                            "%zu of %zu healthy", r->name, lb->backends.v[target].label,
                            to == HEALTH_UP ? "up" : "down", last->reason, healthy,
                            lb->backends.n);
        emit(lb, to == HEALTH_UP ? AZURE_LB_EV_BACKEND_UP : AZURE_LB_EV_BACKEND_DOWN, ri,
             target, from, to, last);
        if (to == HEALTH_UP && healthy == 1 && r->down_since >= 0) {
            r->down_since = -1;
            emit(lb, AZURE_LB_EV_RULE_UP, ri, target, from, to, last);
        } else if (to != HEALTH_UP && healthy == 0 && from == HEALTH_UP) {
            r->down_since = last->t_done;
            emit(lb, AZURE_LB_EV_RULE_DOWN, ri, target, from, to, last);
        }
    }
}

/* ---- the frontend's packet path ------------------------------------------------------------ */

static bool rule_backend_healthy(const lbrule_t *r, size_t b)
{
    return !r->probe || health_target_healthy(r->probe->hc, b);
}

static void forward(azure_lb_t *lb, const lbrule_t *r, const flow_t *f, pkt_t *p)
{
    backend_t *be = &lb->backends.v[f->backend];
    if (!r->r.floating_ip) {
        p->dst = be->ifc->addr;
        p->dport = r->r.backend_port;
    }
    net_fabric_send_to(lb->fab, be->ifc, p);
}

/* Client-side sequence tracking, for the RSTs of TCP reset on idle. */
static void track_seq(flow_t *f, const pkt_t *p)
{
    if (p->proto != NET_PROTO_TCP) return;
    uint32_t end = p->seq + p->len + ((p->tcp_flags & TCP_SYN) ? 1 : 0) +
                   ((p->tcp_flags & TCP_FIN) ? 1 : 0);
    if (!f->c_has_ack && !f->c_nxt) f->c_nxt = end;
    else if ((int32_t)(end - f->c_nxt) > 0) f->c_nxt = end;
    if (p->tcp_flags & TCP_ACK) {
        if (!f->c_has_ack || (int32_t)(p->ack - f->c_ack) > 0) f->c_ack = p->ack;
        f->c_has_ack = true;
    }
}

static void drop_no_healthy(azure_lb_t *lb, size_t ri, pkt_t *p)
{
    char why[768] = "";
    const lbrule_t *r = lb->rules.v[ri];
    azure_lb_rule_down_reason(lb, ri, why, sizeof why);
    lb->stats.drop_no_healthy++;
    net_drop(lb->net, NULL, p, "lb-no-healthy-backend", "%s: rule %s: no healthy backend "
             "for a new flow; %s", lb->name, r->name, why);
}

static void vip_rx(net_fabric_t *fab, pkt_t *p, void *data)
{
    (void)fab;
    azure_lb_t *lb = data;
    lb->stats.packets++;
    int ri = azure_lb_rule_find(lb, p->proto, p->dport);
    if (ri < 0) {
        lb->stats.drop_no_rule++;
        net_drop(lb->net, NULL, p, "lb-no-rule", "%s: no load-balancing rule for %s port %u",
                 lb->name, p->proto == NET_PROTO_TCP ? "TCP" : p->proto == NET_PROTO_UDP ?
                 "UDP" : "this protocol", p->dport);
        return;
    }
    lbrule_t *r = lb->rules.v[ri];
    sim_time_t now = sim_now(lb->sim);
    uint64_t h = tuple_hash(lb, p->src, p->sport, p->dst, p->dport, p->proto);
    flow_t *f = flow_lookup(lb, p->src, p->sport, p->dst, p->dport, p->proto);
    if (f && f->state == FLOW_LIVE && now >= f->last_seen + r->r.idle_timeout)
        flow_expire(lb, (uint32_t)(f - lb->flows.v));      /* its timer has not run yet */
    if (f && f->state == FLOW_LIVE) {
        f->last_seen = now;
        track_seq(f, p);
        if (net_tracing(lb->net, p->flow))
            net_tracef(lb->net, lb->name, p, "rule %s: flow -> %s", r->name,
                       lb->backends.v[f->backend].label);
        forward(lb, r, f, p);
        return;
    }
    bool starts = p->proto != NET_PROTO_TCP ||
                  (p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
    if (!starts) {
        if (f) {
            char b[32];
            lb->stats.drop_expired++;
            net_drop(lb->net, NULL, p, "lb-flow-expired", "%s: rule %s: flow idle-timed out "
                     "at %s (idle timeout %llds)%s", lb->name, r->name,
                     sim_time_str(f->expired_at, b), (long long)(r->r.idle_timeout / SIM_S),
                     r->r.tcp_reset ? "; both ends were reset" : "; silent drop");
        } else {
            lb->stats.drop_no_flow++;
            net_drop(lb->net, NULL, p, "lb-no-flow", "%s: rule %s: not a SYN and no flow state",
                     lb->name, r->name);
        }
        return;
    }
    /* a new flow: the hash picks among the backends healthy for this rule's probe */
    lb->healthy.n = 0;
    for (size_t b = 0; b < lb->backends.n; b++)
        if (rule_backend_healthy(r, b)) lb_vec_push(&lb->healthy, b);
    bool open = false;
    if (!lb->healthy.n && lb->p.fail_open) {
        for (size_t b = 0; b < lb->backends.n; b++) lb_vec_push(&lb->healthy, b);
        open = true;
    }
    if (!lb->healthy.n) {
        drop_no_healthy(lb, (size_t)ri, p);
        return;
    }
    size_t pick = lb->healthy.v[h % lb->healthy.n];
    uint32_t idx;
    if (f) idx = (uint32_t)(f - lb->flows.v);
    else idx = flow_insert(lb, p->src, p->sport, p->dst, p->dport, p->proto);
    f = &lb->flows.v[idx];
    f->state = FLOW_LIVE;
    f->rule = (uint32_t)ri;
    f->backend = (uint32_t)pick;
    f->trace = p->flow;
    f->last_seen = now;
    f->c_nxt = 0;
    f->c_ack = 0;
    f->c_has_ack = false;
    track_seq(f, p);
    lb->stats.new_flows++;
    flow_arm(lb, idx, now + r->r.idle_timeout);
    if (net_tracing(lb->net, p->flow))
        net_tracef(lb->net, lb->name, p, "rule %s: new flow -> backend %s (5-tuple hash "
                   "%016llx over %zu %s backend%s)%s", r->name, lb->backends.v[pick].label,
                   (unsigned long long)h, lb->healthy.n, open ? "(all probed down: fail open)"
                   : "healthy", lb->healthy.n == 1 ? "" : "s",
                   r->r.floating_ip ? ", floating IP" : "");
    forward(lb, r, f, p);
}

/* ---- construction -------------------------------------------------------------------------- */

azure_lb_t *azure_lb_new(net_t *net, net_fabric_t *fab, const char *name, uint32_t frontend,
                         const azure_lb_params_t *params, int *rc)
{
    int dummy;
    if (!rc) rc = &dummy;
    *rc = 0;
    if (!net || !fab || !name || !*name || !frontend) {
        *rc = LB_EINVAL;
        return NULL;
    }
    azure_lb_params_t p;
    if (params) p = *params;
    else azure_lb_params_default(&p);
    if (!p.probe_src) {
        *rc = LB_EINVAL;
        return NULL;
    }
    /* the probe source: one node per fabric, shared by every Azure LB in it */
    char *pname = lb_sprintf(AZURE_LB_PROBE_NODE_FMT, net_fabric_name(fab));
    net_node_t *pn = net_node_find(net, pname);
    if (pn) {
        if (!net_node_is_local(pn, p.probe_src) || pn->ifaces.n == 0 ||
            pn->ifaces.v[0]->fabric != fab) {
            lb_free(pname);
            *rc = LB_EEXIST;
            return NULL;
        }
    } else {
        pn = net_node_add(net, pname);
        net_iface_t *ifc = net_iface_add(pn, "eth0", p.probe_src, 32);
        if (net_fabric_attach(fab, ifc) < 0) {
            lb_free(pname);
            *rc = LB_EEXIST;        /* the node stays, unattached: harmless */
            return NULL;
        }
        net_route_add(pn, 0, 0, 0, ifc);
    }
    lb_free(pname);
    azure_lb_t *lb = lb_calloc(1, sizeof *lb);
    if (net_fabric_vip(fab, frontend, name, vip_rx, lb) < 0) {
        lb_free(lb);
        *rc = LB_EEXIST;
        return NULL;
    }
    lb->net = net;
    lb->sim = net_sim(net);
    lb->fab = fab;
    lb->name = lb_strdup(name);
    lb->frontend = frontend;
    lb->p = p;
    lb->seed = lb_hash_str(name);
    l4flow_index_init(&lb->ix, lb->seed);
    lb->probe_node = pn;
    return lb;
}

void azure_lb_free(azure_lb_t *lb)
{
    if (!lb) return;
    for (size_t i = 0; i < lb->probes.n; i++) {
        lbprobe_t *pr = lb->probes.v[i];
        health_free(pr->hc);
        lb_free(pr->name);
        lb_free(pr->path);
        lb_vec_free(&pr->rules);
        lb_free(pr);
    }
    for (size_t i = 0; i < lb->rules.n; i++) {
        lb_free(lb->rules.v[i]->name);
        lb_free(lb->rules.v[i]);
    }
    for (size_t i = 0; i < lb->backends.n; i++) lb_free(lb->backends.v[i].label);
    for (size_t i = 0; i < lb->flows.n; i++)
        if (lb->flows.v[i].state) sim_cancel(lb->sim, &lb->flows.v[i].timer);
    lb_vec_free(&lb->probes);
    lb_vec_free(&lb->rules);
    lb_vec_free(&lb->backends);
    lb_vec_free(&lb->flows);
    lb_vec_free(&lb->healthy);
    l4flow_index_free(&lb->ix);
    lb_free(lb->name);
    lb_free(lb);
}

int azure_lb_add_backend(azure_lb_t *lb, net_iface_t *ifc, const char *label)
{
    if (!ifc || ifc->fabric != lb->fab || !ifc->addr) return LB_EINVAL;
    for (size_t i = 0; i < lb->backends.n; i++)
        if (lb->backends.v[i].ifc == ifc) return LB_EEXIST;
    backend_t be = {.ifc = ifc, .label = lb_strdup(label && *label ? label : ifc->node->name)};
    lb_vec_push(&lb->backends, be);
    for (size_t i = 0; i < lb->probes.n; i++) {
        lbprobe_t *pr = lb->probes.v[i];
        size_t t = health_target_add(pr->hc, ifc->addr, pr->port, be.label);
        assert(t == lb->backends.n - 1);
        (void)t;
    }
    return (int)(lb->backends.n - 1);
}

static bool probe_same(const lbprobe_t *a, const azure_lb_probe_t *b, const char *path)
{
    return a->protocol == b->protocol && a->port == b->port && a->interval == b->interval &&
           a->threshold == b->threshold && strcmp(a->path ? a->path : "", path ? path : "") == 0;
}

static lbprobe_t *probe_by_name(azure_lb_t *lb, const char *name)
{
    for (size_t i = 0; i < lb->probes.n; i++)
        if (!strcmp(lb->probes.v[i]->name, name)) return lb->probes.v[i];
    return NULL;
}

/* The probe for a rule: an identical existing one, or a new checker over every backend. */
static int probe_get(azure_lb_t *lb, const azure_lb_probe_t *in, lbprobe_t **out)
{
    azure_lb_probe_t q = *in;
    if (!q.interval) q.interval = AZURE_LB_PROBE_INTERVAL_DEFAULT;
    if (!q.threshold) q.threshold = AZURE_LB_PROBE_THRESHOLD_DEFAULT;
    bool http = q.protocol == AZURE_PROBE_HTTP || q.protocol == AZURE_PROBE_HTTPS;
    const char *path = http ? (q.path && *q.path ? q.path : HTTP_PROBE_PATH_DEFAULT) : NULL;
    if (!q.port || q.interval < 0 || q.threshold < 1 || (path && path[0] != '/'))
        return LB_EINVAL;
    if (q.name && *q.name) {
        lbprobe_t *pr = probe_by_name(lb, q.name);
        if (pr) {
            if (!probe_same(pr, &q, path)) return LB_EEXIST;
            *out = pr;
            return 0;
        }
    } else {
        for (size_t i = 0; i < lb->probes.n; i++)
            if (probe_same(lb->probes.v[i], &q, path)) {
                *out = lb->probes.v[i];
                return 0;
            }
    }
    health_params_t hp;
    health_params_preset(&hp, HEALTH_VENDOR_AZURE_LB, http ? HEALTH_HTTP : HEALTH_TCP);
    hp.interval = q.interval;
    hp.healthy_threshold = hp.unhealthy_threshold = q.threshold;
    /* TCP: fails when the next probe goes out; HTTP(S): 30 s, bounded by the interval */
    hp.timeout = !http ? q.interval : q.interval < HEALTH_AZURE_LB_HTTP_TIMEOUT_MAX ?
                 q.interval : HEALTH_AZURE_LB_HTTP_TIMEOUT_MAX;
    if (path) hp.path = path;
    hp.tls = q.protocol == AZURE_PROBE_HTTPS;
    hp.fail_fast = lb->p.probe_fail_fast;
    hp.jitter = lb->p.probe_jitter;
    hp.src = lb->p.probe_src;
    char *pname = q.name && *q.name ? lb_strdup(q.name) : lb_sprintf("%s-%u",
                  proto_slug(q.protocol), q.port);
    for (int k = 2; probe_by_name(lb, pname); k++) {
        lb_free(pname);
        pname = lb_sprintf("%s-%u-%d", proto_slug(q.protocol), q.port, k);
    }
    char *hname = lb_sprintf("%s/%s", lb->name, pname);
    int rc = 0;
    health_t *hc = health_new(lb->probe_node, hname, &hp, lb->p.metrics, &rc);
    lb_free(hname);
    if (!hc) {
        lb_free(pname);
        return rc;
    }
    lbprobe_t *pr = lb_calloc(1, sizeof *pr);
    pr->lb = lb;
    pr->name = pname;
    pr->protocol = q.protocol;
    pr->port = q.port;
    pr->path = path ? lb_strdup(path) : NULL;
    pr->interval = q.interval;
    pr->threshold = q.threshold;
    pr->hc = hc;
    health_set_callback(hc, on_health, pr);
    for (size_t b = 0; b < lb->backends.n; b++)
        health_target_add(hc, lb->backends.v[b].ifc->addr, q.port, lb->backends.v[b].label);
    lb_vec_push(&lb->probes, pr);
    *out = pr;
    return 0;
}

int azure_lb_add_rule(azure_lb_t *lb, const azure_lb_rule_t *rule)
{
    azure_lb_rule_t r = *rule;
    if (r.protocol != NET_PROTO_TCP && r.protocol != NET_PROTO_UDP) return LB_EINVAL;
    if (!r.frontend_port || !r.backend_port) return LB_EINVAL;
    if (r.floating_ip && r.backend_port != r.frontend_port) return LB_EINVAL;
    if (r.idle_timeout < 0) return LB_EINVAL;
    if (!r.idle_timeout) r.idle_timeout = AZURE_LB_IDLE_TIMEOUT_DEFAULT;
    if (azure_lb_rule_find(lb, r.protocol, r.frontend_port) >= 0) return LB_EEXIST;
    lbprobe_t *pr = NULL;
    if (r.probe.protocol != AZURE_PROBE_NONE) {
        if (r.probe.protocol != AZURE_PROBE_TCP && r.probe.protocol != AZURE_PROBE_HTTP &&
            r.probe.protocol != AZURE_PROBE_HTTPS)
            return LB_EINVAL;
        int rc = probe_get(lb, &r.probe, &pr);
        if (rc < 0) return rc;
    }
    lbrule_t *lr = lb_calloc(1, sizeof *lr);
    lr->name = r.name && *r.name ? lb_strdup(r.name)
             : lb_sprintf("%s-%u", r.protocol == NET_PROTO_TCP ? "tcp" : "udp", r.frontend_port);
    lr->r = r;
    lr->r.name = lr->name;
    lr->probe = pr;
    if (pr) {
        lr->r.probe.name = pr->name;
        lr->r.probe.path = pr->path;
        lr->r.probe.interval = pr->interval;
        lr->r.probe.threshold = pr->threshold;
        lb_vec_push(&pr->rules, lb->rules.n);
    }
    bool any = !pr && lb->backends.n > 0;
    if (pr) any = health_count_healthy(pr->hc) > 0;
    lr->down_since = any ? -1 : sim_now(lb->sim);
    lb_vec_push(&lb->rules, lr);
    return (int)(lb->rules.n - 1);
}

/* ---- queries --------------------------------------------------------------------------------- */

const char *azure_lb_name(const azure_lb_t *lb) { return lb->name; }
uint32_t azure_lb_frontend(const azure_lb_t *lb) { return lb->frontend; }
net_node_t *azure_lb_probe_node(const azure_lb_t *lb) { return lb->probe_node; }
size_t azure_lb_backend_count(const azure_lb_t *lb) { return lb->backends.n; }
size_t azure_lb_rule_count(const azure_lb_t *lb) { return lb->rules.n; }

net_iface_t *azure_lb_backend_iface(const azure_lb_t *lb, size_t b)
{
    assert(b < lb->backends.n);
    return lb->backends.v[b].ifc;
}

const char *azure_lb_backend_label(const azure_lb_t *lb, size_t b)
{
    assert(b < lb->backends.n);
    return lb->backends.v[b].label;
}

const azure_lb_rule_t *azure_lb_rule(const azure_lb_t *lb, size_t ri)
{
    assert(ri < lb->rules.n);
    return &lb->rules.v[ri]->r;
}

int azure_lb_rule_find(const azure_lb_t *lb, uint8_t protocol, uint16_t frontend_port)
{
    for (size_t i = 0; i < lb->rules.n; i++)
        if (lb->rules.v[i]->r.protocol == protocol && lb->rules.v[i]->r.frontend_port ==
            frontend_port)
            return (int)i;
    return -1;
}

health_t *azure_lb_rule_health(const azure_lb_t *lb, size_t ri)
{
    assert(ri < lb->rules.n);
    return lb->rules.v[ri]->probe ? lb->rules.v[ri]->probe->hc : NULL;
}

bool azure_lb_backend_healthy(const azure_lb_t *lb, size_t ri, size_t b)
{
    assert(ri < lb->rules.n && b < lb->backends.n);
    return rule_backend_healthy(lb->rules.v[ri], b);
}

size_t azure_lb_rule_healthy_count(const azure_lb_t *lb, size_t ri)
{
    assert(ri < lb->rules.n);
    const lbrule_t *r = lb->rules.v[ri];
    return r->probe ? health_count_healthy(r->probe->hc) : lb->backends.n;
}

sim_time_t azure_lb_rule_down_since(const azure_lb_t *lb, size_t ri)
{
    if (azure_lb_rule_healthy_count(lb, ri) > 0) return -1;
    const lbrule_t *r = lb->rules.v[ri];
    return r->down_since >= 0 ? r->down_since : 0;
}

const char *azure_lb_rule_down_reason(const azure_lb_t *lb, size_t ri, char *buf, size_t n)
{
    if (!n || azure_lb_rule_healthy_count(lb, ri) > 0) return NULL;
    const lbrule_t *r = lb->rules.v[ri];
    size_t k = 0;
#define PUT(...) do { if (k < n) { int w_ = snprintf(buf + k, n - k, __VA_ARGS__); \
                                   if (w_ > 0) k += (size_t)w_; } } while (0)
    buf[0] = 0;
    if (!lb->backends.n) {
        PUT("the backend pool is empty");
        return buf;
    }
    const lbprobe_t *pr = r->probe;
    assert(pr);
    const health_params_t *hp = health_params(pr->hc);
    if (pr->path)
        PUT("probe %s (%s GET %s on port %u, 200 only, %d in a row)", pr->name,
            pr->protocol == AZURE_PROBE_HTTPS ? "HTTPS" : "HTTP", pr->path, pr->port,
            hp->unhealthy_threshold);
    else
        PUT("probe %s (TCP port %u, %d in a row)", pr->name, pr->port, hp->unhealthy_threshold);
    for (size_t b = 0; b < lb->backends.n; b++) {
        const health_result_t *f = health_target_last_failure(pr->hc, b);
        health_state_t st = health_target_state(pr->hc, b);
        PUT("%s %s %s: %s", b ? ";" : ":", lb->backends.v[b].label, health_state_name(st),
            f ? f->reason : "no probe answered yet");
    }
#undef PUT
    return buf;
}

int azure_lb_flow_backend(const azure_lb_t *lb, uint32_t src, uint16_t sport, uint32_t dst,
                          uint16_t dport, uint8_t proto)
{
    const flow_t *f = flow_lookup(lb, src, sport, dst, dport, proto);
    if (!f || f->state != FLOW_LIVE) return -1;
    if (sim_now(lb->sim) >= f->last_seen + lb->rules.v[f->rule]->r.idle_timeout) return -1;
    return (int)f->backend;
}

void azure_lb_set_event_cb(azure_lb_t *lb, azure_lb_event_cb cb, void *data)
{
    lb->ev_cb = cb;
    lb->ev_data = data;
}

void azure_lb_stats(const azure_lb_t *lb, azure_lb_stats_t *out) { *out = lb->stats; }

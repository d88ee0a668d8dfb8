/* istio_gateway.c -- Envoy in an Istio gateway pod as a vendor layer of the L7 proxy core:
 * per request, the listener (by port, then by hostname), the HTTPRoute rule
 * (gateway_api.h), the backend (weighted split), the endpoint (EDS, LEAST_REQUEST or round
 * robin), Envoy's local replies with their response flags, and Istio's default retry
 * policy; plus the Service and Deployment Istio's deployment controller creates for a
 * Gateway. Sources are cited in istio_gateway.h and at each decision below. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "istio_gateway.h"
#include "explain.h"

/* ---- Envoy's local replies ----------------------------------------------------------------
 * source/common/router/router.cc: Filter::onUpstreamReset builds the body "upstream
 * connect error or disconnect/reset before headers. [retried and the latest ]reset reason:
 * <reason>[, transport failure reason: <why>]" and the details
 * "upstream_reset_before_response_started{<reason>[|<why>]}" with spaces as '_';
 * streamResetReasonToResponseFlag maps connection failures and connect timeouts to UF and
 * connection termination to UC; a retriable failure with no retry left adds URX
 * (maybeRetryReset, NoRetryLimitExceeded). A refused connect is "delayed connect error:
 * 111" (ECONNREFUSED), an unreachable host 113 (EHOSTUNREACH). The route timeout answers
 * 504 "upstream request timeout", flag UT, details upstream_response_timeout. */
#define RESET_BODY "upstream connect error or disconnect/reset before headers. "
#define RB(why) RESET_BODY "reset reason: " why
#define RBR(why) RESET_BODY "retried and the latest reset reason: " why
#define EARLY "upstream_reset_before_response_started"

typedef struct envoy_reply {
    int status;
    bool retry;                 /* in Istio's default retryOn ("connect-failure") */
    int flag;                   /* enum flag */
    const char *body, *body_retried, *details;
} envoy_reply_t;

enum flag { F_NR, F_UH, F_UF, F_UT, F_UC, F_NC, F_DR, F_COUNT };
static const char *const FLAG_NAME[F_COUNT] = { "NR", "UH", "UF", "UT", "UC", "NC", "DR" };

static const envoy_reply_t ENVOY_REPLY[HTTP_OUTCOME_COUNT] = {
    [HTTP_OK] = { 0, false, F_COUNT, NULL, NULL, NULL },
    [HTTP_CONNECT_TIMEOUT] = { 503, true, F_UF, RB("connection timeout"),
        RBR("connection timeout"), EARLY "{connection_timeout}" },
    [HTTP_CONNECT_REFUSED] = { 503, true, F_UF,
        RB("remote connection failure, transport failure reason: delayed connect error: 111"),
        RBR("remote connection failure, transport failure reason: delayed connect error: 111"),
        EARLY "{remote_connection_failure|delayed_connect_error:_111}" },
    [HTTP_RESET] = { 503, false, F_UC, RB("connection termination"),
        RBR("connection termination"), EARLY "{connection_termination}" },
    [HTTP_RESPONSE_TIMEOUT] = { 504, false, F_UT, "upstream request timeout",
        "upstream request timeout", "upstream_response_timeout" },
    [HTTP_CLOSED] = { 503, false, F_UC, RB("connection termination"),
        RBR("connection termination"), EARLY "{connection_termination}" },
    /* connect() itself failing (no local port): a local connection failure */
    [HTTP_NO_PORT] = { 503, true, F_UF,
        RB("local connection failure, transport failure reason: immediate connect error: 99"),
        RBR("local connection failure, transport failure reason: immediate connect error: 99"),
        EARLY "{local_connection_failure|immediate_connect_error:_99}" },
    [HTTP_UNREACHABLE] = { 503, true, F_UF,
        RB("remote connection failure, transport failure reason: delayed connect error: 113"),
        RBR("remote connection failure, transport failure reason: delayed connect error: 113"),
        EARLY "{remote_connection_failure|delayed_connect_error:_113}" },
};
/* router.cc: "no healthy upstream" (details no_healthy_upstream); a missing cluster gets
 * clusterNotFoundResponseCode (503) with details cluster_not_found; no route: 404
 * route_not_found. Empty bodies otherwise. */
#define UH_BODY "no healthy upstream"
/* What pilot-agent's status server says while Envoy is not ready (its readiness check). */
#define NOT_READY_BODY "Envoy proxy is NOT ready"

/* ---- data ------------------------------------------------------------------------------------ */
typedef struct ep {
    uint32_t ip;
    uint16_t port;
    bool ready;
    uint32_t active;            /* requests in flight (Envoy's rq_active) */
} ep_t;

/* An Envoy cluster: one Service port, outbound|<port>||<svc>.<ns>.svc.cluster.local. */
typedef struct cluster {
    char *ns, *svc;
    int port;
    LB_VEC(ep_t) eps;
    LB_VEC(uint32_t) ready;     /* indexes of ready endpoints */
    uint64_t rr;                /* round-robin position */
} cluster_t;

typedef struct ltab {
    const gw_listener_t *l;
    gw_table_t *t;
    bool has_routes;            /* some route attached: Envoy has virtual hosts for it */
} ltab_t;

typedef struct pgrp {           /* one Envoy listener: every Gateway listener on a port */
    uint16_t port;
    LB_VEC(ltab_t) tabs;
} pgrp_t;

/* An HTTPS port's TLS: one filter chain per Gateway listener on it whose certificate
 * resolves, filter_chain_match.server_names = [hostname] (none without a hostname: then
 * any SNI and no SNI match), as Istio builds them (pilot/pkg/networking/core/gateway.go
 * buildGatewayListeners: one filter chain per server, SNI from its hosts). */
typedef struct tport {
    tls_server_cfg_t cfg;
    LB_VEC(tls_chain_t) chains;
} tport_t;

typedef struct rtimeout { char *ns, *name; size_t rule; sim_time_t t; } rtimeout_t;

struct istio_gw {
    net_node_t *node;
    net_t *net;
    sim_t *sim;
    char *name;
    istio_gw_opts_t o;
    const k8s_objects_t *objs;
    const k8s_gateway_t *gw;
    LB_VEC(pgrp_t) ports;
    LB_VEC(tport_t *) tls;
    LB_VEC(cluster_t *) clusters;
    LB_VEC(rtimeout_t) timeouts;
    l7_fail_action_t fail[HTTP_OUTCOME_COUNT];
    l7proxy_t *px;
    gsl_rng *rng;
    bool ready, draining;
    uint64_t flags[F_COUNT];
    char *c_flag[F_COUNT];
    char detail[600];           /* a composed detail, copied by the core at once */
};

#define TRACING(g, flow) net_tracing((g)->net, (flow))

void istio_gw_opts_init(istio_gw_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout = ISTIO_CONNECT_TIMEOUT_DEFAULT;
    o->request_timeout = ISTIO_REQUEST_TIMEOUT_DEFAULT;
    o->idle_timeout = ISTIO_IDLE_TIMEOUT_DEFAULT;
    o->num_retries = ISTIO_NUM_RETRIES_DEFAULT;
    o->lb_policy = ISTIO_LB_LEAST_REQUEST;
    o->ready = true;
    o->status_port = ISTIO_STATUS_PORT;
    o->host_mode = GW_HOST_ENVOY_VHOST;
}

static const char *ns_or_default(const char *ns)
{
    return ns ? ns : "default";
}

static void flag_hit(istio_gw_t *g, int f)
{
    if (f < 0 || f >= F_COUNT)
        return;
    g->flags[f]++;
    if (g->o.metrics)
        metrics_count(g->o.metrics, g->c_flag[f], sim_now(g->sim), 1);
}

/* ---- route tables ---------------------------------------------------------------------- */
static bool is_http_listener(const gw_listener_t *l)
{
    return l->protocol && (strcasecmp(l->protocol, "HTTP") == 0 ||
                           strcasecmp(l->protocol, "HTTPS") == 0);
}

static pgrp_t *port_find(istio_gw_t *g, uint16_t port)
{
    for (size_t i = 0; i < g->ports.n; i++)
        if (g->ports.v[i].port == port)
            return &g->ports.v[i];
    return NULL;
}

static void tables_build(istio_gw_t *g)
{
    gw_table_opts_t topts = { .host_mode = g->o.host_mode };
    for (size_t i = 0; i < g->gw->listeners.n; i++) {
        const gw_listener_t *l = &g->gw->listeners.v[i];
        if (!is_http_listener(l) || l->port <= 0 || l->port > 65535)
            continue;
        pgrp_t *p = port_find(g, (uint16_t)l->port);
        if (!p) {
            pgrp_t np = { .port = (uint16_t)l->port };
            lb_vec_push(&g->ports, np);
            p = &g->ports.v[g->ports.n - 1];
        }
        ltab_t lt = { .l = l, .t = gw_table_build(g->objs, g->gw, l, &topts) };
        size_t nr;
        const gw_route_status_t *rs = gw_table_routes(lt.t, &nr);
        for (size_t k = 0; k < nr && !lt.has_routes; k++)
            lt.has_routes = rs[k].attached;
        lb_vec_push(&p->tabs, lt);
    }
}

static void tables_free(istio_gw_t *g)
{
    for (size_t i = 0; i < g->ports.n; i++) {
        for (size_t j = 0; j < g->ports.v[i].tabs.n; j++)
            gw_table_free(g->ports.v[i].tabs.v[j].t);
        lb_vec_free(&g->ports.v[i].tabs);
    }
    lb_vec_free(&g->ports);
}

/* How well listener hostname lh matches the request host host[0..hl): -1 not at all, 0 a
 * listener without hostname, else more for more specific (exact over wildcard, longer). */
static int host_rank(const char *lh, const char *host, size_t hl)
{
    if (!lh || !*lh || (lh[0] == '*' && !lh[1]))
        return 0;
    if (!hl)
        return -1;
    size_t ll = strlen(lh);
    if (lh[0] == '*' && lh[1] == '.') {
        size_t sl = ll - 1;
        return hl > sl && strncasecmp(host + hl - sl, lh + 1, sl) == 0 ? 1 + (int)sl : -1;
    }
    return ll == hl && strncasecmp(lh, host, hl) == 0 ? 0x10000 + (int)ll : -1;
}

/* Istio merges every listener on a port into one Envoy route configuration with a virtual
 * host per hostname, and Envoy picks the most specific virtual host. Here: the most
 * specific listener hostname that matches, preferring listeners that have routes (a
 * listener without routes has no virtual host). NULL: no virtual host (404 NR). */
static const ltab_t *listener_for(const pgrp_t *p, const char *host)
{
    size_t hl = host ? strcspn(host, ":") : 0;
    const ltab_t *best = NULL;
    int best_key = -1;
    for (size_t i = 0; i < p->tabs.n; i++) {
        int r = host_rank(p->tabs.v[i].l->hostname, host, hl);
        if (r < 0)
            continue;
        int key = (p->tabs.v[i].has_routes ? 0x40000000 : 0) + r;
        if (key > best_key) {
            best_key = key;
            best = &p->tabs.v[i];
        }
    }
    return best;
}

/* ---- clusters and endpoints ------------------------------------------------------------ */
static cluster_t *cluster_get(istio_gw_t *g, const char *ns, const char *svc, int port)
{
    ns = ns_or_default(ns);
    for (size_t i = 0; i < g->clusters.n; i++) {
        cluster_t *c = g->clusters.v[i];
        if (c->port == port && strcmp(c->svc, svc) == 0 && strcmp(c->ns, ns) == 0)
            return c;
    }
    cluster_t *c = lb_calloc(1, sizeof(*c));
    c->ns = lb_strdup(ns);
    c->svc = lb_strdup(svc);
    c->port = port;
    lb_vec_push(&g->clusters, c);
    return c;
}

static ep_t *ep_find(cluster_t *c, uint32_t ip, uint16_t port)
{
    for (size_t i = 0; i < c->eps.n; i++)
        if (c->eps.v[i].ip == ip && c->eps.v[i].port == port)
            return &c->eps.v[i];
    return NULL;
}

void istio_gw_set_endpoints(istio_gw_t *g, const char *ns, const char *svc, int port,
                            const istio_endpoint_t *eps, size_t n)
{
    cluster_t *c = cluster_get(g, ns, svc, port);
    LB_VEC(ep_t) nv = { 0 };
    for (size_t i = 0; i < n; i++) {
        ep_t *old = ep_find(c, eps[i].ip, eps[i].port);
        ep_t e = { eps[i].ip, eps[i].port, eps[i].ready, old ? old->active : 0 };
        lb_vec_push(&nv, e);
    }
    lb_vec_free(&c->eps);
    c->eps.v = nv.v;
    c->eps.n = nv.n;
    c->eps.cap = nv.cap;
    c->ready.n = 0;
    for (size_t i = 0; i < c->eps.n; i++)
        if (c->eps.v[i].ready)
            lb_vec_push(&c->ready, (uint32_t)i);
}

/* One host pick (Envoy source/extensions/load_balancing_policies): least request with
 * equal weights is unweightedHostPick -- choice_count random hosts, the one with fewer
 * active requests wins, the first on a tie; round robin walks the ready hosts. */
static ep_t *pick_once(istio_gw_t *g, cluster_t *c)
{
    size_t n = c->ready.n;
    assert(n > 0);
    if (n == 1)
        return &c->eps.v[c->ready.v[0]];
    switch (g->o.lb_policy) {
    case ISTIO_LB_ROUND_ROBIN:
        return &c->eps.v[c->ready.v[c->rr++ % n]];
    case ISTIO_LB_RANDOM:
        return &c->eps.v[c->ready.v[gsl_rng_uniform_int(g->rng, n)]];
    default: {
        ep_t *cand = NULL;
        for (int k = 0; k < ISTIO_LEAST_REQUEST_CHOICES; k++) {
            ep_t *s = &c->eps.v[c->ready.v[gsl_rng_uniform_int(g->rng, n)]];
            if (!cand || s->active < cand->active)
                cand = s;
        }
        return cand;
    }
    }
}

/* The endpoint for this attempt; on a retry the previous_hosts predicate rejects hosts
 * already tried, reselecting up to ISTIO_HOST_SELECTION_RETRIES times and then taking the
 * last pick. NULL: no ready endpoint. */
static ep_t *pick(istio_gw_t *g, cluster_t *c, const l7_req_t *rq)
{
    if (!c->ready.n)
        return NULL;
    int tries = l7_req_attempts(rq) > 0 ? 1 + ISTIO_HOST_SELECTION_RETRIES : 1;
    ep_t *e = NULL;
    for (int i = 0; i < tries; i++) {
        e = pick_once(g, c);
        if (!l7_req_tried(rq, e->ip, e->port))
            break;
    }
    return e;
}

static const char *policy_name(int p)
{
    return p == ISTIO_LB_ROUND_ROBIN ? "round-robin" : p == ISTIO_LB_RANDOM ? "random"
                                                                             : "least-request";
}

/* ---- the vendor callbacks --------------------------------------------------------------- */
static sim_time_t rule_timeout(const istio_gw_t *g, const k8s_httproute_t *r, size_t rule)
{
    const char *ns = ns_or_default(r->meta.ns);
    for (size_t i = 0; i < g->timeouts.n; i++) {
        const rtimeout_t *t = &g->timeouts.v[i];
        if (t->rule == rule && strcmp(t->ns, ns) == 0 && r->meta.name &&
            strcmp(t->name, r->meta.name) == 0)
            return t->t;
    }
    return g->o.request_timeout;
}

static void local_reply(istio_gw_t *g, l7_decision_t *d, int flag, int status,
                        const char *body, const char *detail)
{
    l7_decision_answer(d, status, body, detail);
    flag_hit(g, flag);
}

static void forward_to(istio_gw_t *g, l7_req_t *rq, cluster_t *c, l7_decision_t *d,
                       sim_time_t timeout)
{
    uint64_t flow = l7_req_flow(rq);
    ep_t *e = pick(g, c, rq);
    if (!e) {
        if (TRACING(g, flow))
            net_tracef_flow(g->net, g->name, flow, "istio: %s/%s:%d has no ready endpoint "
                            "(%zu known): 503 UH", c->ns, c->svc, c->port, c->eps.n);
        net_notef(g->net, g->name, flow, "Envoy: %s/%s:%d has no ready endpoint -> 503 UH "
                  "no_healthy_upstream", c->ns, c->svc, c->port);
        local_reply(g, d, F_UH, 503, UH_BODY, "UH no_healthy_upstream");
        return;
    }
    if (TRACING(g, flow)) {
        char ip[16];
        net_tracef_flow(g->net, g->name, flow, "istio: endpoint %s:%u of %s/%s:%d picked "
                        "(%s, %zu ready, %u active)", lb_ip_str(e->ip, ip), e->port, c->ns,
                        c->svc, c->port, policy_name(g->o.lb_policy), c->ready.n, e->active);
    }
    e->active++;
    l7_decision_forward(d, e->ip, e->port, c);
    d->timeout = timeout;
}

static void route_cb(l7proxy_t *px, l7_req_t *rq, const http_msg_t *req, l7_decision_t *d,
                     void *data)
{
    (void)px;
    istio_gw_t *g = data;
    uint64_t flow = l7_req_flow(rq);
    if (l7_req_attempts(rq) > 0) {          /* a retry: same cluster, another host */
        cluster_t *c = l7_req_data(rq);
        assert(c);
        forward_to(g, rq, c, d, 0);
        return;
    }
    uint16_t port = l7_req_port(rq);
    if (port == g->o.status_port) {
        /* pilot-agent's status server behind Envoy's :15021 listener: only
         * /healthz/ready is routed, anything else is NR. */
        size_t pl = strcspn(req->path, "?");
        if (pl == strlen(ISTIO_READY_PATH) && memcmp(req->path, ISTIO_READY_PATH, pl) == 0) {
            if (g->ready)
                l7_decision_answer(d, 200, NULL, NULL);
            else
                l7_decision_answer(d, 503, NOT_READY_BODY, "- agent: " NOT_READY_BODY);
            return;
        }
        local_reply(g, d, F_NR, 404, NULL, "NR route_not_found");
        return;
    }
    const pgrp_t *p = port_find(g, port);
    const ltab_t *lt = p ? listener_for(p, req->host) : NULL;
    const gw_hit_t *hit = NULL;
    if (lt) {
        gw_header_t hdrs[HTTP_MAX_HEADERS];
        size_t nh = 0;
        for (int i = 0; i < req->n_headers && nh < HTTP_MAX_HEADERS; i++) {
            hdrs[nh].name = req->headers[i].name;
            hdrs[nh].value = req->headers[i].value;
            nh++;
        }
        gw_request_t gr = { .host = req->host, .method = req->method, .path = req->path,
                            .headers = hdrs, .n_headers = nh };
        hit = gw_table_match(lt->t, &gr);
    }
    if (!hit) {
        if (TRACING(g, flow))
            net_tracef_flow(g->net, g->name, flow, "istio: no route for %s%s on :%u "
                            "(listener %s): 404 NR route_not_found",
                            req->host ? req->host : "", req->path, port,
                            lt ? lt->l->name : "none");
        net_notef(g->net, g->name, flow, "Envoy: no HTTPRoute matches %s%s on port %u -> "
                  "404 NR route_not_found", req->host ? req->host : "", req->path, port);
        local_reply(g, d, F_NR, 404, NULL, "NR route_not_found");
        return;
    }
    const k8s_httproute_t *r = hit->route->route;
    if (TRACING(g, flow))
        net_tracef_flow(g->net, g->name, flow, "istio: route %s/%s rule %zu (host %s, "
                        "listener %s)", ns_or_default(r->meta.ns), r->meta.name, hit->rule,
                        hit->hostname, lt->l->name);
    const gw_backend_t *b = NULL;
    if (hit->status == 0) {
        b = hit->n_backends == 1 ? &hit->backends[0]
                                 : gw_hit_pick(hit, gsl_rng_uniform(g->rng));
    } else {
        for (size_t k = 0; k < hit->n_backends && !b; k++)  /* say why with the first */
            if (!hit->backends[k].valid)
                b = &hit->backends[k];
    }
    if (!b || !b->valid) {
        /* Istio programs a direct 500 for the share of invalid backendRefs. */
        const char *why = b && b->message ? b->message
                        : hit->n_backends ? "every backendRef has weight 0"
                                          : "the rule has no backendRefs";
        snprintf(g->detail, sizeof g->detail, "- direct_response (%s)", why);
        if (TRACING(g, flow))
            net_tracef_flow(g->net, g->name, flow, "istio: 500 direct_response: %s", why);
        local_reply(g, d, F_DR, 500, NULL, g->detail);
        return;
    }
    const char *svc = b->ref && b->ref->name ? b->ref->name : "";
    if (!b->port_found) {
        if (TRACING(g, flow))
            net_tracef_flow(g->net, g->name, flow, "istio: Service %s/%s has no port %d: "
                            "503 NC cluster_not_found", b->ns, svc, b->port);
        local_reply(g, d, F_NC, 503, NULL, "NC cluster_not_found");
        return;
    }
    cluster_t *c = cluster_get(g, b->ns, svc, b->port);
    l7_req_set_data(rq, c);
    forward_to(g, rq, c, d, rule_timeout(g, r, hit->rule));
}

static void upstream_end_cb(l7proxy_t *px, l7_req_t *rq, const l7_attempt_t *a,
                            l7_decision_t *d, void *data)
{
    (void)px; (void)rq;
    istio_gw_t *g = data;
    if (d->action != L7_ANSWER || a->outcome == HTTP_OK)
        return;
    const envoy_reply_t *er = &ENVOY_REPLY[a->outcome];
    bool urx = er->retry && g->o.num_retries > 0 && a->retries_left == 0 && !a->deadline;
    const char *body = a->attempt > 0 ? er->body_retried : er->body;
    snprintf(g->detail, sizeof g->detail, "%s%s %s", FLAG_NAME[er->flag], urx ? ",URX" : "",
             er->details);
    l7_decision_answer(d, er->status, body, g->detail);
    flag_hit(g, er->flag);
}

/* Envoy draining (the HTTP connection manager's drain: "For HTTP/1.1 ... the connection
 * manager adds Connection: close to the response", envoyproxy.io operations/draining):
 * clients close their keep-alive connections after the response. */
static void respond_cb(l7proxy_t *px, l7_req_t *rq, http_msg_t *resp, void *data)
{
    (void)px; (void)rq;
    istio_gw_t *g = data;
    if (g->draining) http_header_set(resp, "Connection", "close");
}

static void release_cb(l7proxy_t *px, void *target, uint32_t addr, uint16_t port, void *data)
{
    (void)px; (void)data;
    ep_t *e = target ? ep_find(target, addr, port) : NULL;
    if (e && e->active)
        e->active--;
}

/* ---- public API --------------------------------------------------------------------------- */
/* No filter chain for a ClientHello (or another TLS failure): Envoy's access log says
 * "- - -" 0 NR filter_chain_not_found; counted as the NR flag. */
static void tls_failed_cb(void *data, uint16_t port, uint64_t flow, const char *why)
{
    istio_gw_t *g = data;
    if (strstr(why, "filter_chain_not_found")) flag_hit(g, F_NR);
    if (g->o.explain)
        explain_note(g->o.explain, g->name, flow, explain_flow_last(g->o.explain, flow),
                     "Envoy port %u: %s", port, why);
    if (TRACING(g, flow))
        net_tracef_flow(g->net, g->name, flow, "envoy: \"- - -\" 0 NR filter_chain_not_found: %s",
                        why);
}

istio_gw_t *istio_gw_new(net_node_t *node, const k8s_objects_t *objs, const k8s_gateway_t *gw,
                         const istio_gw_opts_t *opts, int *rc)
{
    istio_gw_opts_t defo;
    if (!opts) {
        istio_gw_opts_init(&defo);
        opts = &defo;
    }
    if (!node || !gw) {
        if (rc)
            *rc = LB_EINVAL;
        return NULL;
    }
    istio_gw_t *g = lb_calloc(1, sizeof(*g));
    g->node = node;
    g->net = node->net;
    g->sim = net_sim(node->net);
    g->o = *opts;
    g->name = lb_strdup(opts->name && *opts->name ? opts->name : node->name);
    g->o.name = g->name;
    g->objs = objs;
    g->gw = gw;
    g->ready = opts->ready;
    char *stream = lb_sprintf("istio-gw:%s:lb", g->name);
    g->rng = sim_rng(g->sim, stream);
    lb_free(stream);
    for (int f = 0; f < F_COUNT; f++)
        g->c_flag[f] = lb_sprintf("%s.flag.%s", g->name, FLAG_NAME[f]);
    for (int i = 0; i < HTTP_OUTCOME_COUNT; i++)
        g->fail[i] = (l7_fail_action_t){ ENVOY_REPLY[i].status, ENVOY_REPLY[i].body,
                                         ENVOY_REPLY[i].details, ENVOY_REPLY[i].retry };
    tables_build(g);
    if (!g->ports.n) {
        if (rc)
            *rc = LB_EINVAL;
        istio_gw_free(g);
        return NULL;
    }
    LB_VEC(l7_listener_t) ls = { 0 };
    for (size_t i = 0; i < g->ports.n; i++) {
        const pgrp_t *p = &g->ports.v[i];
        bool https = p->tabs.n && strcasecmp(p->tabs.v[0].l->protocol, "HTTPS") == 0;
        l7_listener_t l = { p->port, https ? "https" : "http", NULL };
        if (https) {
            tport_t *tp = lb_calloc(1, sizeof *tp);
            for (size_t k = 0; k < p->tabs.n; k++) {
                const gw_listener_t *gl = p->tabs.v[k].l;
                const tls_cert_t *cert = gl->cert_ref && opts->cert_of
                                         ? opts->cert_of(gl->cert_ref, opts->cert_data) : NULL;
                if (!cert) continue;
                bool named = gl->hostname && *gl->hostname && strcmp(gl->hostname, "*") != 0;
                tls_chain_t ch = { gl->name, named ? (const char *const *)&gl->hostname : NULL,
                                   named ? 1 : 0, cert };
                lb_vec_push(&tp->chains, ch);
            }
            tls_server_cfg_default(&tp->cfg);       /* Envoy: TLS 1.3 max, reset on no match */
            tp->cfg.chains = tp->chains.v;
            tp->cfg.n_chains = tp->chains.n;
            lb_vec_push(&g->tls, tp);
            l.tls = &tp->cfg;
        }
        lb_vec_push(&ls, l);
    }
    l7_listener_t sl = { g->o.status_port, "http", NULL };
    lb_vec_push(&ls, sl);

    l7proxy_opts_t po;
    l7proxy_opts_init(&po);
    po.name = g->name;
    po.listeners = ls.v;
    po.n_listeners = ls.n;
    po.downstream_idle_timeout = opts->idle_timeout;
    po.downstream_so_keepalive = opts->downstream_so_keepalive;
    po.downstream_keepalive = opts->downstream_keepalive;
    po.upstream.keepalive = true;
    po.upstream.connect_timeout = opts->connect_timeout;
    po.upstream.idle_timeout = opts->idle_timeout;
    po.fail_map = g->fail;
    po.max_retries = opts->num_retries;
    po.retry_backoff_base = ISTIO_RETRY_BACKOFF_BASE;
    /* Istio's gateways: use_remote_address true (XFF gets the peer appended) and
     * X-Forwarded-Proto set from the listener. */
    po.xff = true;
    po.xfp = true;
    po.server = ISTIO_SERVER_HEADER;
    po.metrics = opts->metrics;
    po.flow_link = opts->flow_link;
    po.flow_link_data = opts->flow_link_data;
    po.tls_failed = tls_failed_cb;
    po.tls_failed_data = g;
    l7_vendor_t v = { .route = route_cb, .upstream_end = upstream_end_cb,
                      .release = release_cb, .respond = respond_cb, .data = g };
    int r = 0;
    g->px = l7proxy_new(node, &po, &v, &r);
    lb_vec_free(&ls);
    if (!g->px) {
        if (rc)
            *rc = r;
        istio_gw_free(g);
        return NULL;
    }
    if (rc)
        *rc = 0;
    return g;
}

void istio_gw_free(istio_gw_t *g)
{
    if (!g)
        return;
    l7proxy_free(g->px);
    tables_free(g);
    for (size_t i = 0; i < g->tls.n; i++) {
        lb_vec_free(&g->tls.v[i]->chains);
        lb_free(g->tls.v[i]);
    }
    lb_vec_free(&g->tls);
    for (size_t i = 0; i < g->clusters.n; i++) {
        cluster_t *c = g->clusters.v[i];
        lb_free(c->ns);
        lb_free(c->svc);
        lb_vec_free(&c->eps);
        lb_vec_free(&c->ready);
        lb_free(c);
    }
    lb_vec_free(&g->clusters);
    for (size_t i = 0; i < g->timeouts.n; i++) {
        lb_free(g->timeouts.v[i].ns);
        lb_free(g->timeouts.v[i].name);
    }
    lb_vec_free(&g->timeouts);
    for (int f = 0; f < F_COUNT; f++)
        lb_free(g->c_flag[f]);
    lb_free(g->name);
    lb_free(g);
}

void istio_gw_reload(istio_gw_t *g)
{
    /* Listener ports stay those of creation: a new port would need a new Envoy listener. */
    tables_free(g);
    tables_build(g);
}

int istio_gw_set_rule_timeout(istio_gw_t *g, const char *ns, const char *name, size_t rule,
                              sim_time_t timeout)
{
    ns = ns_or_default(ns);
    const k8s_httproute_t *r = NULL;
    for (size_t i = 0; g->objs && i < g->objs->routes.n && !r; i++) {
        const k8s_httproute_t *x = g->objs->routes.v[i];
        if (x->meta.name && name && strcmp(x->meta.name, name) == 0 &&
            strcmp(ns_or_default(x->meta.ns), ns) == 0)
            r = x;
    }
    if (!r || rule >= r->rules.n)
        return LB_ENOENT;
    for (size_t i = 0; i < g->timeouts.n; i++) {
        rtimeout_t *t = &g->timeouts.v[i];
        if (t->rule == rule && strcmp(t->ns, ns) == 0 && strcmp(t->name, name) == 0) {
            t->t = timeout;
            return 0;
        }
    }
    rtimeout_t t = { lb_strdup(ns), lb_strdup(name), rule, timeout };
    lb_vec_push(&g->timeouts, t);
    return 0;
}

void istio_gw_set_ready(istio_gw_t *g, bool ready) { g->ready = ready; }

void istio_gw_drain(istio_gw_t *g)
{
    g->draining = true;
    g->ready = false;
}
bool istio_gw_ready(const istio_gw_t *g) { return g->ready; }
l7proxy_t *istio_gw_proxy(istio_gw_t *g) { return g->px; }

uint64_t istio_gw_flag_count(const istio_gw_t *g, const char *flag)
{
    for (int f = 0; f < F_COUNT; f++)
        if (flag && strcmp(FLAG_NAME[f], flag) == 0)
            return g->flags[f];
    return 0;
}

void istio_gw_describe(const istio_gw_t *g, FILE *out)
{
    fprintf(out, "istio gateway %s (Gateway %s/%s), ready: %s\n", g->name,
            ns_or_default(g->gw->meta.ns), g->gw->meta.name, g->ready ? "yes" : "no");
    for (size_t i = 0; i < g->ports.n; i++)
        for (size_t j = 0; j < g->ports.v[i].tabs.n; j++)
            gw_table_describe(g->ports.v[i].tabs.v[j].t, out);
}

/* ---- the nginx stand-in (the real chain) ------------------------------------------------- */
typedef struct render_port { const istio_gw_t *g; const pgrp_t *p; } render_port_t;

static void render_walk(const char *host, const char *path,
                        bool (*fn)(const gw_cand_t *c, void *arg), void *arg, void *data)
{
    const render_port_t *rp = data;
    const ltab_t *lt = listener_for(rp->p, host);
    if (!lt) return;
    gw_request_t gr = { .host = host, .method = "GET", .path = path };
    gw_table_walk(lt->t, &gr, GW_WALK_CONDS, fn, arg);
}

static size_t render_endpoints(const char *ns, const char *svc, int port, uint32_t *ips,
                               uint16_t *ports, size_t max, void *data)
{
    const render_port_t *rp = data;
    ns = ns_or_default(ns);
    for (size_t i = 0; i < rp->g->clusters.n; i++) {
        const cluster_t *c = rp->g->clusters.v[i];
        if (c->port != port || strcmp(c->svc, svc) != 0 || strcmp(c->ns, ns) != 0) continue;
        for (size_t k = 0; k < c->ready.n && k < max; k++) {
            ips[k] = c->eps.v[c->ready.v[k]].ip;
            ports[k] = c->eps.v[c->ready.v[k]].port;
        }
        return c->ready.n;
    }
    return 0;
}

int istio_gw_render_nginx(const istio_gw_t *g, FILE *out)
{
    int skipped = 0;
    for (size_t i = 0; i < g->ports.n; i++) {
        const pgrp_t *p = &g->ports.v[i];
        const gw_table_t *tabs[64];
        size_t n = 0;
        for (size_t j = 0; j < p->tabs.n && n < 64; j++) tabs[n++] = p->tabs.v[j].t;
        render_port_t rp = { g, p };
        gw_nginx_t r = {
            .port = p->port, .tables = tabs, .n_tables = n,
            .walk = render_walk, .endpoints = render_endpoints, .data = &rp,
            .connect_timeout = g->o.connect_timeout, .request_timeout = g->o.request_timeout,
            .idle_timeout = g->o.idle_timeout, .num_retries = g->o.num_retries,
        };
        skipped += gw_nginx_render(out, &r);
    }
    /* pilot-agent's status server: only /healthz/ready, 200 while ready */
    fprintf(out, "    server {\n        listen %u;\n", g->o.status_port);
    fprintf(out, "        location = %s {\n            return %d \"%s\";\n        }\n",
            ISTIO_READY_PATH, g->ready ? 200 : 503, g->ready ? "" : NOT_READY_BODY);
    fprintf(out, "        location / {\n            return 404 \"\";\n        }\n    }\n");
    return skipped;
}

/* ---- the deployment controller ------------------------------------------------------------ */
static void kv_set(k8s_kvs_t *kv, const char *key, const char *value)
{
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->v[i].key, key) == 0) {
            lb_free(kv->v[i].value);
            kv->v[i].value = lb_strdup(value ? value : "");
            return;
        }
    k8s_kv_t e = { lb_strdup(key), lb_strdup(value ? value : "") };
    lb_vec_push(kv, e);
}

/* kube-gateway.yaml omits these from the annotations it copies. */
static bool annotation_omitted(const char *key)
{
    static const char *const omit[] = { "kubectl.kubernetes.io/last-applied-configuration",
        "gateway.istio.io/name-override", "gateway.istio.io/service-account",
        "gateway.istio.io/controller-version" };
    for (size_t i = 0; i < sizeof(omit) / sizeof(omit[0]); i++)
        if (strcmp(key, omit[i]) == 0)
            return true;
    return false;
}

/* extractInfrastructureMetadata: spec.infrastructure labels/annotations without the
 * gateway.networking.k8s.io/ prefix when given, else the Gateway's own. */
static void infra_add(const k8s_gateway_t *gw, bool labels, k8s_kvs_t *out)
{
    const k8s_kvs_t *inf = labels ? &gw->infra_labels : &gw->infra_annotations;
    const k8s_kvs_t *own = labels ? &gw->meta.labels : &gw->meta.annotations;
    bool from_infra = inf->n > 0;
    const k8s_kvs_t *src = from_infra ? inf : own;
    for (size_t i = 0; i < src->n; i++) {
        const char *k = src->v[i].key;
        if (!k || (from_infra && strncmp(k, "gateway.networking.k8s.io/", 26) == 0))
            continue;
        if (!labels && annotation_omitted(k))
            continue;
        kv_set(out, k, src->v[i].value);
    }
}

static const char *class_of(const k8s_gateway_t *gw)
{
    return gw->class_name && *gw->class_name ? gw->class_name : ISTIO_GATEWAY_CLASS_DEFAULT;
}

/* getDefaultName: "<name>-<class>", unless gateway.istio.io/name-override is set. */
static char *object_name(const k8s_gateway_t *gw)
{
    const char *ov = k8s_kv_get(&gw->meta.annotations, ISTIO_ANN_NAME_OVERRIDE);
    if (ov && *ov)
        return lb_strdup(ov);
    return lb_sprintf("%s-%s", gw->meta.name ? gw->meta.name : "", class_of(gw));
}

static void meta_fill(const k8s_gateway_t *gw, k8s_meta_t *m)
{
    m->name = object_name(gw);
    m->ns = gw->meta.ns ? lb_strdup(gw->meta.ns) : NULL;
    m->pos = gw->meta.pos;
    m->order = gw->meta.order;
    infra_add(gw, true, &m->labels);
    kv_set(&m->labels, ISTIO_LABEL_GATEWAY_NAME, gw->meta.name);
    kv_set(&m->labels, ISTIO_LABEL_GATEWAY_CLASS, class_of(gw));
    kv_set(&m->labels, ISTIO_LABEL_MANAGED, ISTIO_MANAGED_VALUE);
    infra_add(gw, false, &m->annotations);
}

static char *lower(const char *s)
{
    char *r = lb_strdup(s ? s : "");
    for (char *p = r; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return r;
}

static void svc_port_add(k8s_service_t *s, char *name, int port, char *app_protocol)
{
    k8s_service_port_t sp = {
        .name = name, .port = port, .target_port = { port, NULL }, .node_port = 0,
        .protocol = lb_strdup("TCP"), .app_protocol = app_protocol,
    };
    lb_vec_push(&s->ports, sp);
}

/* extractServicePorts and sanitizeListenerNameForPort. */
void istio_gw_service_fill(const k8s_gateway_t *gw, k8s_service_t *out)
{
    memset(out, 0, sizeof(*out));
    meta_fill(gw, &out->meta);
    const char *type = k8s_kv_get(&gw->meta.annotations, ISTIO_ANN_SERVICE_TYPE);
    out->type = type && strcmp(type, "ClusterIP") == 0 ? K8S_SVC_CLUSTER_IP
              : type && strcmp(type, "NodePort") == 0 ? K8S_SVC_NODE_PORT
              : K8S_SVC_LOAD_BALANCER;
    out->etp = K8S_ETP_CLUSTER;
    kv_set(&out->selector, ISTIO_LABEL_GATEWAY_NAME, gw->meta.name);
    svc_port_add(out, lb_strdup("status-port"), ISTIO_STATUS_PORT, lb_strdup("tcp"));
    for (size_t i = 0; i < gw->listeners.n; i++) {
        const gw_listener_t *l = &gw->listeners.v[i];
        bool seen = false;
        for (size_t j = 1; j < out->ports.n && !seen; j++)
            seen = out->ports.v[j].port == l->port;
        if (seen)
            continue;
        char *name;
        if (l->name && *l->name) {
            name = lb_strndup(l->name, 63);
            for (char *p = name; *p; p++)
                if (*p == '.')
                    *p = '-';
        } else {
            char *proto = lower(l->protocol);
            name = lb_sprintf("%s-%zu", proto, i);
            lb_free(proto);
        }
        svc_port_add(out, name, l->port, lower(l->protocol));
    }
}

void istio_gw_deployment_fill(const k8s_gateway_t *gw, k8s_deployment_t *out)
{
    memset(out, 0, sizeof(*out));
    meta_fill(gw, &out->meta);
    out->replicas = 1;
    kv_set(&out->selector, ISTIO_LABEL_GATEWAY_NAME, gw->meta.name);
    kv_set(&out->pod_labels, "sidecar.istio.io/inject", "false");
    kv_set(&out->pod_labels, "service.istio.io/canonical-name", out->meta.name);
    kv_set(&out->pod_labels, "service.istio.io/canonical-revision", "latest");
    infra_add(gw, true, &out->pod_labels);
    kv_set(&out->pod_labels, ISTIO_LABEL_GATEWAY_NAME, gw->meta.name);
    kv_set(&out->pod_labels, ISTIO_LABEL_GATEWAY_CLASS, class_of(gw));
    kv_set(&out->pod_labels, ISTIO_LABEL_MANAGED, ISTIO_MANAGED_VALUE);
    k8s_container_t c = { 0 };
    c.name = lb_strdup("istio-proxy");
    c.image = lb_strdup("istio/proxyv2");
    static const struct { const char *name; int port; } ports[] = {
        { "metrics", 15020 }, { "status-port", ISTIO_STATUS_PORT }, { "http-envoy-prom", 15090 },
    };
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        k8s_container_port_t cp = { lb_strdup(ports[i].name), ports[i].port, lb_strdup("TCP") };
        lb_vec_push(&c.ports, cp);
    }
    c.readiness = (k8s_probe_t){
        .kind = K8S_PROBE_HTTP, .path = lb_strdup(ISTIO_READY_PATH),
        .port = { ISTIO_STATUS_PORT, NULL }, .initial_delay_s = 0,
        .period_s = ISTIO_READY_PERIOD_S, .timeout_s = ISTIO_READY_TIMEOUT_S,
        .success_threshold = 1, .failure_threshold = ISTIO_READY_FAILURES,
    };
    lb_vec_push(&out->containers, c);
}

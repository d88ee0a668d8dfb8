/* l7proxy.c -- the L7 proxy core (see l7proxy.h for the request life cycle): listeners
 * (http_server), per-request state, upstream attempts over http_pool, the proposal that
 * follows an attempt (relay, retry, or the vendor's failure-table answer), the request
 * deadline, and forwarded-header rewriting. Requests (l7_req_t) and attempts (att_t) come
 * from free lists, so steady traffic allocates only the message copies.
 *
 * Upstream pools: http_pool has one response timeout per pool, measured from the request
 * sent. The per-attempt timeout (opts.upstream.response_timeout) and a request's deadline
 * share that mechanism: an attempt goes through the pool whose response timeout is the
 * smaller of the two, so that a hung upstream connection is aborted (RST) no later than
 * the deadline after the request was sent, as Envoy resets the upstream stream at its
 * route timeout. The answer itself is sent by the core's own deadline timer, which starts
 * when the request arrives (Envoy's route timeout also covers connecting and retries).
 * Requests with different deadlines therefore use different pools and do not share
 * kept-alive connections. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "l7proxy.h"

/* Targets remembered per request for l7_req_tried(); more attempts than this are
 * possible, the oldest ones are then forgotten. */
#define L7_TRIED_MAX 16
/* The answer when a vendor gives no failure table: 502 Bad Gateway (RFC 9110 15.6.3,
 * "received an invalid response from an inbound server"). */
static const l7_fail_action_t DEFAULT_FAIL = { 502, NULL, NULL, false };

typedef struct att att_t;
typedef struct lsn lsn_t;

struct lsn {
    l7proxy_t *px;
    uint16_t port;
    char *scheme;
    http_server_t *srv;
};

struct l7_req {
    l7proxy_t *px;
    http_exchange_t *ex;
    const http_msg_t *req;      /* the client's request, valid until answered */
    const lsn_t *lsn;
    uint64_t flow;
    uint32_t peer;
    uint16_t peer_port;
    int attempts;               /* attempts started */
    int retries;                /* retries granted */
    void *vdata;
    att_t *cur;                 /* the attempt in flight, if any */
    sim_handle_t deadline_h;    /* the request's deadline */
    sim_handle_t retry_h;       /* a retry waiting for its backoff */
    sim_time_t timeout;         /* 0: no deadline */
    sim_time_t t_start;
    struct { uint32_t addr; uint16_t port; } tried[L7_TRIED_MAX];
    int ntried;
    l7_req_t *prev, *next;      /* live list, or free list (next) */
};

/* One upstream attempt; it outlives its request when abandoned at the deadline (rq NULL)
 * until the pool reports its end. */
struct att {
    l7proxy_t *px;
    l7_req_t *rq;
    uint32_t addr;
    uint16_t port;
    void *target;
    bool released;
    int attempt;
    uint64_t down_flow, req_id;
    sim_time_t t_start;
    att_t *prev, *next;         /* in-flight list, or free list (next) */
};

typedef struct tpool { sim_time_t rt; http_pool_t *pool; } tpool_t;

struct l7proxy {
    net_node_t *node;
    net_t *net;
    sim_t *sim;
    char *name;
    l7proxy_opts_t o;           /* strings point at the copies below */
    char *via, *server;
    l7_vendor_t v;
    lsn_t *lsn;
    size_t nlsn;
    LB_VEC(tpool_t) pools;
    gsl_rng *rng;
    l7_req_t *live, *free_rq;
    att_t *atts, *free_att;
    l7proxy_stats_t st;
    char *c_requests, *c_local, *c_retries, *c_deadlines, *c_out[HTTP_OUTCOME_COUNT];
};

static void route_step(l7_req_t *rq);

#define TRACING(px, flow) net_tracing((px)->net, (flow))

/* ---- small helpers ---------------------------------------------------------------------- */
void l7proxy_opts_init(l7proxy_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->upstream.keepalive = true;
}

void l7_decision_answer(l7_decision_t *d, int status, const char *body, const char *detail)
{
    memset(d, 0, sizeof(*d));
    d->action = L7_ANSWER;
    d->status = status;
    d->body = body;
    d->detail = detail;
}

void l7_decision_forward(l7_decision_t *d, uint32_t addr, uint16_t port, void *target)
{
    memset(d, 0, sizeof(*d));
    d->action = L7_FORWARD;
    d->addr = addr;
    d->port = port;
    d->target = target;
}

static void count(l7proxy_t *px, const char *name)
{
    if (px->o.metrics)
        metrics_count(px->o.metrics, name, sim_now(px->sim), 1);
}

/* Removes header `name` (case-insensitive); returns whether it was there. */
static bool header_remove(http_msg_t *m, const char *name)
{
    for (int i = 0; i < m->n_headers; i++) {
        if (strcasecmp(m->headers[i].name, name) != 0)
            continue;
        lb_free(m->headers[i].name);
        lb_free(m->headers[i].value);
        memmove(&m->headers[i], &m->headers[i + 1],
                (size_t)(m->n_headers - i - 1) * sizeof(m->headers[0]));
        m->n_headers--;
        return true;
    }
    return false;
}

/* Hop-by-hop headers end at the proxy (RFC 9110 7.6.1); each side sets its own. */
static void strip_hop_by_hop(http_msg_t *m)
{
    static const char *const hop[] = { "Connection", "Keep-Alive", "Proxy-Connection",
                                       "TE", "Upgrade" };
    bool changed = false;
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        changed |= header_remove(m, hop[i]);
    if (changed)
        http_msg_update(m);
}

/* Appends `value` to a comma-separated list header (X-Forwarded-For, Via). */
static void header_append(http_msg_t *m, const char *name, const char *value)
{
    const char *old = http_header_get(m, name);
    if (!old || !*old) {
        http_header_set(m, name, value);
        return;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s, %s", old, value);
    http_header_set(m, name, buf);
}

/* ---- requests and attempts -------------------------------------------------------------- */
static l7_req_t *rq_alloc(l7proxy_t *px)
{
    l7_req_t *rq = px->free_rq;
    if (rq)
        px->free_rq = rq->next;
    else
        rq = lb_malloc(sizeof(*rq));
    memset(rq, 0, sizeof(*rq));
    rq->px = px;
    rq->next = px->live;
    if (px->live)
        px->live->prev = rq;
    px->live = rq;
    px->st.in_flight++;
    return rq;
}

static void rq_release(l7_req_t *rq)
{
    l7proxy_t *px = rq->px;
    assert(!rq->cur);
    sim_cancel(px->sim, &rq->deadline_h);
    sim_cancel(px->sim, &rq->retry_h);
    if (rq->prev) rq->prev->next = rq->next; else px->live = rq->next;
    if (rq->next) rq->next->prev = rq->prev;
    px->st.in_flight--;
    rq->prev = NULL;
    rq->next = px->free_rq;
    px->free_rq = rq;
}

static att_t *att_alloc(l7proxy_t *px)
{
    att_t *a = px->free_att;
    if (a)
        px->free_att = a->next;
    else
        a = lb_malloc(sizeof(*a));
    memset(a, 0, sizeof(*a));
    a->px = px;
    a->next = px->atts;
    if (px->atts)
        px->atts->prev = a;
    px->atts = a;
    return a;
}

static void att_free(att_t *a)
{
    l7proxy_t *px = a->px;
    if (a->prev) a->prev->next = a->next; else px->atts = a->next;
    if (a->next) a->next->prev = a->prev;
    a->prev = NULL;
    a->next = px->free_att;
    px->free_att = a;
}

/* The attempt no longer counts as active at its target (vendor least-request counts). */
static void att_release(att_t *a)
{
    l7proxy_t *px = a->px;
    if (a->released)
        return;
    a->released = true;
    if (px->v.release)
        px->v.release(px, a->target, a->addr, a->port, px->v.data);
}

/* ---- answering -------------------------------------------------------------------------- */
/* Sends resp (owned) to the client and ends the request. */
static void send_response(l7_req_t *rq, http_msg_t *resp)
{
    l7proxy_t *px = rq->px;
    if (px->server)
        http_header_set(resp, "Server", px->server);
    if (px->v.respond)
        px->v.respond(px, rq, resp, px->v.data);
    if (TRACING(px, rq->flow))
        net_tracef_flow(px->net, px->name, rq->flow, "l7: response %d%s%s after %.3f ms",
                        resp->status, resp->detail ? " " : "", resp->detail ? resp->detail : "",
                        (double)(sim_now(px->sim) - rq->t_start) / (double)SIM_MS);
    http_exchange_t *ex = rq->ex;
    rq_release(rq);
    http_respond(ex, resp);
}

static void answer(l7_req_t *rq, const l7_decision_t *d)
{
    l7proxy_t *px = rq->px;
    http_msg_t *resp = d->resp;
    if (!resp) {
        resp = http_response_new(d->status > 0 ? d->status : DEFAULT_FAIL.status, d->body, 0);
        if (d->body && *d->body)
            http_header_set(resp, "Content-Type", "text/plain");
    }
    if (d->detail)
        http_msg_set_detail(resp, d->detail);
    px->st.local_replies++;
    count(px, px->c_local);
    send_response(rq, resp);
}

static void relay(l7_req_t *rq, const http_msg_t *up)
{
    l7proxy_t *px = rq->px;
    http_msg_t *resp = http_msg_copy(up);
    strip_hop_by_hop(resp);
    px->st.relayed++;
    send_response(rq, resp);
}

static void reset(l7_req_t *rq)
{
    l7proxy_t *px = rq->px;
    px->st.resets++;
    if (TRACING(px, rq->flow))
        net_tracef_flow(px->net, px->name, rq->flow, "l7: resetting the client connection");
    http_exchange_t *ex = rq->ex;
    rq_release(rq);
    http_exchange_reset(ex);
}

/* ---- upstream attempts ------------------------------------------------------------------ */
/* The pool whose response timeout is min(per-attempt timeout, the request's deadline). */
static http_pool_t *pool_for(l7proxy_t *px, sim_time_t deadline)
{
    sim_time_t rt = px->o.upstream.response_timeout;
    if (deadline > 0 && (rt <= 0 || deadline < rt))
        rt = deadline;
    for (size_t i = 0; i < px->pools.n; i++)
        if (px->pools.v[i].rt == rt)
            return px->pools.v[i].pool;
    http_client_opts_t co = px->o.upstream;
    co.response_timeout = rt;
    tpool_t tp = { rt, http_pool_new(px->node, &co) };
    lb_vec_push(&px->pools, tp);
    return tp.pool;
}

static bool retry_status(const l7proxy_t *px, int status)
{
    for (size_t i = 0; i < px->o.n_retry_statuses; i++)
        if (px->o.retry_statuses[i] == status)
            return true;
    return false;
}

/* Envoy's JitteredExponentialBackOffStrategy (source/common/common/backoff_strategy.cc):
 * retry n waits random() % ((2^n - 1) * base) ms, capped at max (default 10 x base). */
static sim_time_t backoff(l7proxy_t *px, int n)
{
    sim_time_t base = px->o.retry_backoff_base;
    if (base <= 0)
        return 0;
    sim_time_t max = px->o.retry_backoff_max > 0 ? px->o.retry_backoff_max : 10 * base;
    int k = n < 1 ? 1 : n > 30 ? 30 : n;
    sim_time_t range = ((sim_time_t)1 << k) - 1;
    range = range > max / base ? max : range * base;
    sim_time_t unit = range >= SIM_MS ? SIM_MS : SIM_NS;
    uint64_t slots = (uint64_t)(range / unit);
    if (slots > 0xffffffffULL)
        slots = 0xffffffffULL;
    sim_time_t d = slots ? (sim_time_t)gsl_rng_uniform_int(px->rng, (unsigned long)slots) * unit
                         : 0;
    return d < max ? d : max;
}

/* The core's proposal after an attempt: relay, retry, or the failure table's answer. */
static void propose(l7_req_t *rq, l7_attempt_t *at, l7_decision_t *d)
{
    l7proxy_t *px = rq->px;
    int left = px->o.max_retries - rq->retries;
    at->retries_left = left > 0 ? left : 0;
    bool can_retry = at->retries_left > 0 && !at->deadline;
    if (at->outcome == HTTP_OK) {
        memset(d, 0, sizeof(*d));
        d->action = L7_PASS;
        if (can_retry && retry_status(px, at->status)) {
            d->action = L7_RETRY;
            d->delay = backoff(px, rq->retries + 1);
        }
        return;
    }
    const l7_fail_action_t *fa = px->o.fail_map ? &px->o.fail_map[at->outcome] : &DEFAULT_FAIL;
    l7_decision_answer(d, fa->status, fa->body, fa->detail);
    if (can_retry && fa->retry) {
        d->action = L7_RETRY;
        d->delay = backoff(px, rq->retries + 1);
    }
}

static void retry_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    l7_req_t *rq = a;
    rq->retry_h = (sim_handle_t){0};
    route_step(rq);
}

/* Carries out what follows an attempt (or the deadline). */
static void after(l7_req_t *rq, const l7_attempt_t *at, l7_decision_t *d)
{
    l7proxy_t *px = rq->px;
    if (d->action == L7_RETRY && at->deadline)
        propose(rq, (l7_attempt_t *)at, d);     /* the table's answer, never a retry */
    switch (d->action) {
    case L7_PASS:
        if (at->resp) {
            relay(rq, at->resp);
            return;
        }
        l7_decision_answer(d, DEFAULT_FAIL.status, NULL, NULL);
        answer(rq, d);
        return;
    case L7_RETRY:
        rq->retries++;
        px->st.retries++;
        count(px, px->c_retries);
        if (TRACING(px, rq->flow))
            net_tracef_flow(px->net, px->name, rq->flow, "l7: retry %d of %d in %.3f ms",
                            rq->retries, px->o.max_retries, (double)d->delay / (double)SIM_MS);
        rq->retry_h = sim_schedule(px->sim, d->delay > 0 ? d->delay : 0, retry_cb, rq, NULL);
        return;
    case L7_RESET:
        reset(rq);
        return;
    default:
        answer(rq, d);
        return;
    }
}

static void attempt_cb(const http_result_t *r, void *data)
{
    att_t *a = data;
    l7proxy_t *px = a->px;
    l7_req_t *rq = a->rq;
    px->st.outcomes[r->outcome]++;
    count(px, px->c_out[r->outcome]);
    if (r->flow && px->o.flow_link)
        px->o.flow_link(px->o.flow_link_data, a->down_flow, r->flow, a->req_id);
    if (r->flow && TRACING(px, r->flow))
        net_tracef_flow(px->net, px->name, r->flow, "l7: this connection served request %llu "
                        "of flow %llu: %s %d", (unsigned long long)a->req_id,
                        (unsigned long long)a->down_flow, http_outcome_name(r->outcome),
                        r->status);
    att_release(a);
    if (!rq) {                          /* abandoned at the deadline */
        att_free(a);
        return;
    }
    rq->cur = NULL;
    l7_attempt_t at = {
        .outcome = r->outcome, .status = r->status, .resp = r->resp,
        .addr = a->addr, .port = a->port, .target = a->target, .attempt = a->attempt,
        .flow = r->flow, .t_start = a->t_start, .t_done = r->t_done, .detail = r->detail,
    };
    att_free(a);
    if (TRACING(px, rq->flow)) {
        char ip[16];
        net_tracef_flow(px->net, px->name, rq->flow, "l7: upstream %s:%u (flow %llu): %s%s%.0d "
                        "in %.3f ms", lb_ip_str(at.addr, ip), at.port,
                        (unsigned long long)at.flow, http_outcome_name(at.outcome),
                        at.outcome == HTTP_OK ? ", status " : "", at.status,
                        (double)(at.t_done - at.t_start) / (double)SIM_MS);
    }
    l7_decision_t d;
    propose(rq, &at, &d);
    if (px->v.upstream_end)
        px->v.upstream_end(px, rq, &at, &d, px->v.data);
    after(rq, &at, &d);
}

static void deadline_cb(sim_t *sim, void *arg, void *b)
{
    (void)b;
    l7_req_t *rq = arg;
    l7proxy_t *px = rq->px;
    rq->deadline_h = (sim_handle_t){0};
    sim_cancel(sim, &rq->retry_h);
    px->st.deadlines++;
    count(px, px->c_deadlines);
    att_t *a = rq->cur;
    l7_attempt_t at = {
        .outcome = HTTP_RESPONSE_TIMEOUT, .deadline = true, .attempt = rq->attempts - 1,
        .t_start = rq->t_start, .t_done = sim_now(sim),
    };
    if (a) {
        at.addr = a->addr;
        at.port = a->port;
        at.target = a->target;
        at.t_start = a->t_start;
        a->rq = NULL;                   /* the pool's report will just free it */
        att_release(a);
        rq->cur = NULL;
    }
    if (TRACING(px, rq->flow))
        net_tracef_flow(px->net, px->name, rq->flow, "l7: request deadline (%.3f ms) passed%s",
                        (double)rq->timeout / (double)SIM_MS,
                        a ? ", abandoning the upstream attempt" : "");
    l7_decision_t d;
    propose(rq, &at, &d);
    if (px->v.upstream_end)
        px->v.upstream_end(px, rq, &at, &d, px->v.data);
    after(rq, &at, &d);
}

static void forward(l7_req_t *rq, const l7_decision_t *d)
{
    l7proxy_t *px = rq->px;
    att_t *a = att_alloc(px);
    a->rq = rq;
    a->addr = d->addr;
    a->port = d->port;
    a->target = d->target;
    a->attempt = rq->attempts++;
    a->down_flow = rq->flow;
    a->req_id = rq->req->req_id;
    a->t_start = sim_now(px->sim);
    rq->cur = a;
    int ti = rq->ntried < L7_TRIED_MAX ? rq->ntried++ : (rq->ntried++ % L7_TRIED_MAX);
    rq->tried[ti].addr = d->addr;
    rq->tried[ti].port = d->port;
    px->st.attempts++;
    if (a->attempt == 0 && d->timeout > 0) {
        rq->timeout = d->timeout;
        rq->deadline_h = sim_schedule(px->sim, d->timeout, deadline_cb, rq, NULL);
    }

    http_msg_t *up = http_msg_copy(rq->req);
    http_msg_set_detail(up, NULL);
    strip_hop_by_hop(up);
    if (d->host)
        http_header_set(up, "Host", d->host);
    if (px->o.xff) {
        char ip[16], v[32];
        lb_ip_str(rq->peer, ip);
        if (px->o.xff_port)
            snprintf(v, sizeof v, "%s:%u", ip, rq->peer_port);
        else
            snprintf(v, sizeof v, "%s", ip);
        header_append(up, "X-Forwarded-For", v);
    }
    if (px->o.xfp)
        http_header_set(up, "X-Forwarded-Proto", rq->lsn->scheme);
    if (px->via)
        header_append(up, "Via", px->via);
    if (TRACING(px, rq->flow)) {
        char ip[16];
        net_tracef_flow(px->net, px->name, rq->flow, "l7: forwarding to %s:%u (attempt %d)",
                        lb_ip_str(d->addr, ip), d->port, a->attempt + 1);
    }
    http_pool_request(pool_for(px, rq->timeout), d->addr, d->port, up, attempt_cb, a);
}

/* Asks the vendor what to do with rq (first time or a retry) and does it. */
static void route_step(l7_req_t *rq)
{
    l7proxy_t *px = rq->px;
    l7_decision_t d;
    l7_decision_answer(&d, DEFAULT_FAIL.status, NULL, NULL);
    px->v.route(px, rq, rq->req, &d, px->v.data);
    switch (d.action) {
    case L7_FORWARD:
        forward(rq, &d);
        return;
    case L7_RESET:
        reset(rq);
        return;
    default:
        answer(rq, &d);
        return;
    }
}

static void handle(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    lsn_t *l = data;
    l7proxy_t *px = l->px;
    l7_req_t *rq = rq_alloc(px);
    rq->ex = ex;
    rq->req = req;
    rq->lsn = l;
    rq->flow = http_exchange_flow(ex);
    rq->peer = http_exchange_peer_addr(ex);
    rq->peer_port = http_exchange_peer_port(ex);
    rq->t_start = sim_now(px->sim);
    px->st.requests++;
    count(px, px->c_requests);
    if (TRACING(px, rq->flow))
        net_tracef_flow(px->net, px->name, rq->flow, "l7: %s %s%s on :%u", req->method,
                        req->host ? req->host : "", req->path, l->port);
    route_step(rq);
}

/* ---- public API ------------------------------------------------------------------------- */
static void proxy_free_all(l7proxy_t *px)
{
    for (size_t i = 0; i < px->pools.n; i++)
        http_pool_free(px->pools.v[i].pool);    /* no callbacks */
    lb_vec_free(&px->pools);
    while (px->atts) {
        att_t *a = px->atts;
        px->atts = a->next;
        lb_free(a);
    }
    while (px->free_att) {
        att_t *a = px->free_att;
        px->free_att = a->next;
        lb_free(a);
    }
    while (px->live) {
        l7_req_t *rq = px->live;
        px->live = rq->next;
        sim_cancel(px->sim, &rq->deadline_h);
        sim_cancel(px->sim, &rq->retry_h);
        lb_free(rq);
    }
    while (px->free_rq) {
        l7_req_t *rq = px->free_rq;
        px->free_rq = rq->next;
        lb_free(rq);
    }
    for (size_t i = 0; i < px->nlsn; i++) {
        http_server_free(px->lsn[i].srv);       /* frees the exchanges left */
        lb_free(px->lsn[i].scheme);
    }
    lb_free(px->lsn);
    lb_free(px->c_requests);
    lb_free(px->c_local);
    lb_free(px->c_retries);
    lb_free(px->c_deadlines);
    for (int i = 0; i < HTTP_OUTCOME_COUNT; i++)
        lb_free(px->c_out[i]);
    lb_free(px->via);
    lb_free(px->server);
    lb_free(px->name);
    lb_free(px);
}

/* A client's TLS handshake on listener l failed: traced, counted, told to the vendor. */
static void tls_failed_cb(uint64_t flow, const char *why, void *data)
{
    lsn_t *l = data;
    l7proxy_t *px = l->px;
    if (net_tracing(px->net, flow))
        net_tracef_flow(px->net, px->name, flow, "l7: TLS handshake on port %u failed: %s",
                        l->port, why);
    if (px->o.tls_failed)
        px->o.tls_failed(px->o.tls_failed_data, l->port, flow, why);
}

l7proxy_t *l7proxy_new(net_node_t *node, const l7proxy_opts_t *opts, const l7_vendor_t *vendor,
                       int *rc)
{
    if (!node || !opts || !vendor || !vendor->route || !opts->listeners || !opts->n_listeners) {
        if (rc)
            *rc = LB_EINVAL;
        return NULL;
    }
    l7proxy_t *px = lb_calloc(1, sizeof(*px));
    px->node = node;
    px->net = node->net;
    px->sim = net_sim(node->net);
    px->o = *opts;
    px->v = *vendor;
    px->name = lb_strdup(opts->name && *opts->name ? opts->name : node->name);
    px->o.name = px->name;
    px->via = opts->via ? lb_strdup(opts->via) : NULL;
    px->server = opts->server ? lb_strdup(opts->server) : NULL;
    px->o.via = px->via;
    px->o.server = px->server;
    px->o.listeners = NULL;
    char *stream = lb_sprintf("l7proxy:%s:retry", px->name);
    px->rng = sim_rng(px->sim, stream);
    lb_free(stream);
    px->c_requests = lb_sprintf("%s.requests", px->name);
    px->c_local = lb_sprintf("%s.local_replies", px->name);
    px->c_retries = lb_sprintf("%s.retries", px->name);
    px->c_deadlines = lb_sprintf("%s.deadlines", px->name);
    for (int i = 0; i < HTTP_OUTCOME_COUNT; i++)
        px->c_out[i] = lb_sprintf("%s.upstream.%s", px->name, http_outcome_name(i));
    px->lsn = lb_calloc(opts->n_listeners, sizeof(lsn_t));
    if (opts->downstream_so_keepalive && tcp_keepalive_check(&opts->downstream_keepalive)) {
        if (rc)
            *rc = LB_EINVAL;
        proxy_free_all(px);
        return NULL;
    }
    for (size_t i = 0; i < opts->n_listeners; i++) {
        lsn_t *l = &px->lsn[i];
        l->px = px;
        l->port = opts->listeners[i].port;
        l->scheme = lb_strdup(opts->listeners[i].scheme ? opts->listeners[i].scheme : "http");
        http_server_opts_t so = { .keepalive_timeout = opts->downstream_idle_timeout,
                                  .so_keepalive = opts->downstream_so_keepalive,
                                  .keepalive = opts->downstream_keepalive,
                                  .tls = opts->listeners[i].tls,
                                  .tls_failed = opts->listeners[i].tls ? tls_failed_cb : NULL };
        int r = 0;
        l->srv = http_server_new(node, opts->addr, l->port, &so, handle, l, &r);
        px->nlsn = i + 1;
        if (!l->srv) {
            if (rc)
                *rc = r ? r : LB_EADDRINUSE;
            proxy_free_all(px);
            return NULL;
        }
    }
    if (rc)
        *rc = 0;
    return px;
}

void l7proxy_free(l7proxy_t *px)
{
    if (px)
        proxy_free_all(px);
}

net_node_t *l7proxy_node(const l7proxy_t *px) { return px->node; }
const char *l7proxy_name(const l7proxy_t *px) { return px->name; }
void l7proxy_stats(const l7proxy_t *px, l7proxy_stats_t *out) { *out = px->st; }

uint16_t l7_req_port(const l7_req_t *rq) { return rq->lsn->port; }
const char *l7_req_scheme(const l7_req_t *rq) { return rq->lsn->scheme; }
const http_msg_t *l7_req_request(const l7_req_t *rq) { return rq->req; }
uint64_t l7_req_flow(const l7_req_t *rq) { return rq->flow; }
uint32_t l7_req_peer_addr(const l7_req_t *rq) { return rq->peer; }
int l7_req_attempts(const l7_req_t *rq) { return rq->attempts; }
void l7_req_set_data(l7_req_t *rq, void *data) { rq->vdata = data; }
void *l7_req_data(const l7_req_t *rq) { return rq->vdata; }

bool l7_req_tried(const l7_req_t *rq, uint32_t addr, uint16_t port)
{
    int n = rq->ntried < L7_TRIED_MAX ? rq->ntried : L7_TRIED_MAX;
    for (int i = 0; i < n; i++)
        if (rq->tried[i].addr == addr && rq->tried[i].port == port)
            return true;
    return false;
}

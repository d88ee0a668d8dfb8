/* http_client.c -- the HTTP/1.1 client half: a connection pool per destination
 * (addr, port) that sends requests with connect and response timeouts and reports each
 * request's outcome exactly once. TCP errors map to outcomes as a client library sees
 * them (curl / Go net/http): connect ETIMEDOUT -> connect-timeout, ECONNREFUSED ->
 * refused, ECONNRESET -> reset, EOF before the response -> closed.
 *
 * Connection states (pconn_t.state) and the functions that move them:
 *   CONNECTING --connected cb / on_connected--> BUSY --response / on_recv--> IDLE
 *   IDLE --take_idle (a request)--> BUSY
 *   BUSY --response says close / on_recv--> DRAINING --FIN / on_eof--> freed
 *   any --TCP error, FIN while busy or idle, response timeout, idle timeout--> freed
 * A connection belongs to its destination (counted in dest->nconns) until it drains or is
 * freed; a request waiting for a connection sits in the destination's FIFO queue.
 * Requests (preq_t) come from a per-pool free list, so steady traffic allocates nothing.
 *
 * Timers: the response timeout and the idle timeout are the same for every request and
 * connection of a pool, so requests (appended when sent) and idle connections (appended
 * when they go idle) sit in deadline order in two lists, and each list has one timer at
 * its oldest entry's deadline. Neither a request nor a connection costs a timer event of
 * its own, and nothing is cancelled per request. */
#include <assert.h>
#include <string.h>
#include "http_int.h"

enum { PC_CONNECTING, PC_BUSY, PC_IDLE, PC_DRAINING };

typedef struct preq preq_t;
typedef struct pconn pconn_t;
typedef struct dest dest_t;

struct preq {
    http_pool_t *pool;
    dest_t *dest;
    http_msg_t *req;            /* owned until handed to TCP */
    http_result_cb cb;
    void *data;
    pconn_t *conn;              /* the connection carrying it, if any */
    sim_handle_t timer;         /* the deferred early failure */
    bool in_sent;               /* in the pool's sent list (response timeout running) */
    preq_t *sent_prev, *sent_next;
    int fail_outcome;           /* for the deferred failure */
    bool reused;
    uint64_t flow;              /* of the connection that carried it */
    uint32_t syn_rtx;           /* SYN retransmissions this request waited for */
    sim_time_t t_start, t_connected, t_sent;
    preq_t *next;               /* destination queue / free list */
    preq_t *all_prev, *all_next;/* the pool's live requests */
};

struct pconn {
    http_pool_t *pool;
    dest_t *dest;               /* NULL once draining */
    tcp_conn_t *tc;             /* NULL once let go */
    tls_conn_t *tls;            /* HTTPS: the TLS layer over tc */
    int state;                  /* PC_* */
    preq_t *cur;                /* CONNECTING / BUSY: the request it carries */
    pconn_t *idle_next, *idle_prev;   /* destination's idle stack (IDLE only) */
    pconn_t *all_next, *all_prev;     /* the pool's connections */
    sim_time_t idle_since;
    bool in_lru;                /* in the pool's idle list (idle timeout running) */
    pconn_t *lru_prev, *lru_next;
    uint64_t flow;
    uint32_t syn_rtx;
};

struct dest {
    uint32_t addr;
    uint16_t port;
    int nconns;                 /* CONNECTING + BUSY + IDLE */
    size_t nidle;
    pconn_t *idle;              /* top of the idle stack (most recently used) */
    preq_t *wq_head, *wq_tail;  /* requests waiting for a connection */
};

struct http_pool {
    net_node_t *node;
    sim_t *sim;
    http_client_opts_t opts;
    dest_t **dests;             /* open addressing, power-of-two size */
    size_t ndests, dcap;
    pconn_t *conns;
    size_t nconns;
    preq_t *reqs;               /* live requests */
    size_t nreqs;
    preq_t *free_reqs;
    preq_t *sent_head, *sent_tail;      /* requests awaiting a response, oldest first */
    sim_handle_t rt_timer;              /* at the oldest one's response deadline */
    pconn_t *lru_head, *lru_tail;       /* idle connections, oldest first */
    sim_handle_t idle_timer;            /* at the oldest one's idle deadline */
};

static void conn_drop(pconn_t *pc);
static void serve_waiting(dest_t *d, http_pool_t *pool);

#define TRACE(pool, flow, ...) HTTP_TRACE((pool)->node, (flow), __VA_ARGS__)

/* ---- deadline lists ---------------------------------------------------------------------- */
static void sent_leave(preq_t *r)
{
    http_pool_t *pool = r->pool;
    if (!r->in_sent)
        return;
    if (r->sent_prev) r->sent_prev->sent_next = r->sent_next; else pool->sent_head = r->sent_next;
    if (r->sent_next) r->sent_next->sent_prev = r->sent_prev; else pool->sent_tail = r->sent_prev;
    r->in_sent = false;
    r->sent_prev = r->sent_next = NULL;
}

static void lru_leave(pconn_t *pc)
{
    http_pool_t *pool = pc->pool;
    if (!pc->in_lru)
        return;
    if (pc->lru_prev) pc->lru_prev->lru_next = pc->lru_next; else pool->lru_head = pc->lru_next;
    if (pc->lru_next) pc->lru_next->lru_prev = pc->lru_prev; else pool->lru_tail = pc->lru_prev;
    pc->in_lru = false;
    pc->lru_prev = pc->lru_next = NULL;
}

/* Schedules a list's timer at its head's deadline unless it is already pending (a timer
 * that fires early just re-arms). */
static void arm(http_pool_t *pool, sim_handle_t *h, sim_time_t deadline, sim_event_cb cb)
{
    if (sim_pending(pool->sim, h))
        return;
    if (deadline < sim_now(pool->sim))
        deadline = sim_now(pool->sim);
    *h = sim_schedule_at(pool->sim, deadline, cb, pool, NULL);
}

/* ---- destinations ---------------------------------------------------------------------- */
static uint64_t dest_key(uint32_t addr, uint16_t port)
{
    return ((uint64_t)addr << 16) | port;
}

static dest_t **dest_slot(dest_t **tab, size_t cap, uint32_t addr, uint16_t port)
{
    size_t i = lb_mix64(dest_key(addr, port)) & (cap - 1);
    while (tab[i] && (tab[i]->addr != addr || tab[i]->port != port))
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static dest_t *dest_find(const http_pool_t *pool, uint32_t addr, uint16_t port)
{
    if (!pool->dcap)
        return NULL;
    return *dest_slot(pool->dests, pool->dcap, addr, port);
}

static dest_t *dest_get(http_pool_t *pool, uint32_t addr, uint16_t port)
{
    dest_t *d = dest_find(pool, addr, port);
    if (d)
        return d;
    if ((pool->ndests + 1) * 2 > pool->dcap) {
        size_t cap = pool->dcap ? pool->dcap * 2 : 16;
        dest_t **tab = lb_calloc(cap, sizeof(*tab));
        for (size_t i = 0; i < pool->dcap; i++)
            if (pool->dests[i])
                *dest_slot(tab, cap, pool->dests[i]->addr, pool->dests[i]->port) =
                    pool->dests[i];
        lb_free(pool->dests);
        pool->dests = tab;
        pool->dcap = cap;
    }
    d = lb_calloc(1, sizeof(*d));
    d->addr = addr;
    d->port = port;
    *dest_slot(pool->dests, pool->dcap, addr, port) = d;
    pool->ndests++;
    return d;
}

/* ---- requests -------------------------------------------------------------------------- */
static preq_t *req_alloc(http_pool_t *pool)
{
    preq_t *r = pool->free_reqs;
    if (r)
        pool->free_reqs = r->next;
    else
        r = lb_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->pool = pool;
    r->all_next = pool->reqs;
    if (pool->reqs)
        pool->reqs->all_prev = r;
    pool->reqs = r;
    pool->nreqs++;
    return r;
}

static void req_release(preq_t *r)
{
    http_pool_t *pool = r->pool;
    if (r->req)
        net_msg_unref(&r->req->base);
    sim_cancel(pool->sim, &r->timer);
    sent_leave(r);
    if (r->all_prev) r->all_prev->all_next = r->all_next; else pool->reqs = r->all_next;
    if (r->all_next) r->all_next->all_prev = r->all_prev;
    pool->nreqs--;
    r->next = pool->free_reqs;
    pool->free_reqs = r;
}

/* Ends a request: the result is copied out, the request recycled, then cb runs (it may
 * issue the next request at once, possibly reusing this slot and this connection). The
 * caller has already detached r from its connection and updated the pool, so that the
 * callback sees the pool as it is. */
static void finish_why(preq_t *r, int outcome, const http_msg_t *resp, const char *why)
{
    http_pool_t *pool = r->pool;
    sim_time_t now = sim_now(pool->sim);
    http_result_t res = {
        .outcome = outcome,
        .status = resp ? resp->status : 0,
        .resp = resp,
        .t_start = r->t_start,
        .t_connected = r->t_connected,
        .t_sent = r->t_sent,
        .t_done = now,
        .flow = r->flow,
        .reused = r->reused,
        .syn_retransmits = r->syn_rtx,
        .detail = why && *why ? why : NULL,
    };
    TRACE(pool, res.flow, "http client: %s, status %d, %.3f ms", http_outcome_name(outcome),
          res.status, (double)(now - r->t_start) / (double)SIM_MS);
    http_result_cb cb = r->cb;
    void *data = r->data;
    req_release(r);
    cb(&res, data);
}

static void finish(preq_t *r, int outcome, const http_msg_t *resp)
{
    finish_why(r, outcome, resp, NULL);
}

static void deferred_fail_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    preq_t *r = a;
    r->timer = (sim_handle_t){0};
    finish(r, r->fail_outcome, NULL);
}

/* Reports a failure found before any connection existed, from a zero-delay event, so
 * that the callback never runs inside http_pool_request. */
static void fail_later(preq_t *r, int outcome)
{
    r->fail_outcome = outcome;
    r->timer = sim_schedule(r->pool->sim, 0, deferred_fail_cb, r, NULL);
}

static void rt_timer_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    http_pool_t *pool = a;
    pool->rt_timer = (sim_handle_t){0};
    while (pool->sent_head &&
           pool->sent_head->t_sent + pool->opts.response_timeout <= sim_now(sim)) {
        preq_t *r = pool->sent_head;
        pconn_t *pc = r->conn;
        sent_leave(r);
        assert(pc && pc->cur == r && pc->tc);
        TRACE(pool, pc->flow, "http client: response timeout, aborting the connection");
        tcp_conn_t *tc = pc->tc;
        pc->tc = NULL;
        tcp_abort(tc);          /* what clients do: close(), which resets unread data */
        pc->cur = NULL;
        conn_drop(pc);
        finish(r, HTTP_RESPONSE_TIMEOUT, NULL);
    }
    if (pool->sent_head)
        arm(pool, &pool->rt_timer, pool->sent_head->t_sent + pool->opts.response_timeout,
            rt_timer_cb);
}

/* ---- connections ----------------------------------------------------------------------- */
static void idle_push(dest_t *d, pconn_t *pc)
{
    pc->idle_prev = NULL;
    pc->idle_next = d->idle;
    if (d->idle)
        d->idle->idle_prev = pc;
    d->idle = pc;
    d->nidle++;
}

static void idle_remove(dest_t *d, pconn_t *pc)
{
    if (pc->idle_prev) pc->idle_prev->idle_next = pc->idle_next; else d->idle = pc->idle_next;
    if (pc->idle_next) pc->idle_next->idle_prev = pc->idle_prev;
    pc->idle_next = pc->idle_prev = NULL;
    d->nidle--;
    lru_leave(pc);
}

/* Detaches a connection from its destination (it no longer counts toward the limit). */
static void conn_detach(pconn_t *pc)
{
    dest_t *d = pc->dest;
    if (!d)
        return;
    if (pc->state == PC_IDLE)
        idle_remove(d, pc);
    d->nconns--;
    pc->dest = NULL;
}

/* Frees a connection the app has let go of (tc already closed, aborted or failed), then
 * gives its destination slot to a waiting request. */
static void conn_drop(pconn_t *pc)
{
    http_pool_t *pool = pc->pool;
    dest_t *d = pc->dest;
    assert(!pc->tc && !pc->cur);
    conn_detach(pc);
    lru_leave(pc);
    if (pc->all_prev) pc->all_prev->all_next = pc->all_next; else pool->conns = pc->all_next;
    if (pc->all_next) pc->all_next->all_prev = pc->all_prev;
    pool->nconns--;
    tls_conn_free(pc->tls);
    lb_free(pc);
    if (d)
        serve_waiting(d, pool);
}

static void conn_close(pconn_t *pc)
{
    if (pc->tc) {
        tcp_conn_t *tc = pc->tc;
        pc->tc = NULL;
        tcp_close(tc);
    }
}

static void send_req(pconn_t *pc, preq_t *r)
{
    http_pool_t *pool = pc->pool;
    pc->state = PC_BUSY;
    pc->cur = r;
    r->conn = pc;
    r->flow = pc->flow;
    r->syn_rtx = r->reused ? 0 : pc->syn_rtx;
    r->t_sent = sim_now(pool->sim);
    http_msg_t *req = r->req;
    r->req = NULL;
    TRACE(pool, pc->flow, "http client: %s %s%s", req->method, req->path,
          r->reused ? " (reused connection)" : "");
    int rc = pc->tls ? tls_send(pc->tls, &req->base) : tcp_send(pc->tc, &req->base);
    net_msg_unref(&req->base);
    if (rc < 0) {               /* the connection is closing under us */
        conn_close(pc);
        pc->cur = NULL;
        conn_drop(pc);
        finish(r, HTTP_CLOSED, NULL);
        return;
    }
    if (pool->opts.response_timeout > 0) {
        r->in_sent = true;
        r->sent_next = NULL;
        r->sent_prev = pool->sent_tail;
        if (pool->sent_tail) pool->sent_tail->sent_next = r; else pool->sent_head = r;
        pool->sent_tail = r;
        arm(pool, &pool->rt_timer, pool->sent_head->t_sent + pool->opts.response_timeout,
            rt_timer_cb);
    }
}

static void idle_timer_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    http_pool_t *pool = a;
    pool->idle_timer = (sim_handle_t){0};
    while (pool->lru_head &&
           pool->lru_head->idle_since + pool->opts.idle_timeout <= sim_now(sim)) {
        pconn_t *pc = pool->lru_head;
        assert(pc->state == PC_IDLE);
        TRACE(pool, pc->flow, "http client: idle timeout, closing");
        conn_close(pc);
        conn_drop(pc);
    }
    if (pool->lru_head)
        arm(pool, &pool->idle_timer, pool->lru_head->idle_since + pool->opts.idle_timeout,
            idle_timer_cb);
}

/* A connection with nothing to carry: the next waiting request takes it, else it idles. */
static void conn_release(pconn_t *pc)
{
    http_pool_t *pool = pc->pool;
    dest_t *d = pc->dest;
    assert(d && pc->tc && !pc->cur);
    preq_t *r = d->wq_head;
    if (r) {
        d->wq_head = r->next;
        if (!d->wq_head)
            d->wq_tail = NULL;
        r->next = NULL;
        r->reused = true;
        r->t_connected = sim_now(pool->sim);
        send_req(pc, r);
        return;
    }
    pc->state = PC_IDLE;
    pc->idle_since = sim_now(pool->sim);
    idle_push(d, pc);
    if (pool->opts.idle_timeout > 0) {
        pc->in_lru = true;
        pc->lru_next = NULL;
        pc->lru_prev = pool->lru_tail;
        if (pool->lru_tail) pool->lru_tail->lru_next = pc; else pool->lru_head = pc;
        pool->lru_tail = pc;
        arm(pool, &pool->idle_timer, pool->lru_head->idle_since + pool->opts.idle_timeout,
            idle_timer_cb);
    }
}

static int connect_outcome(int rc)
{
    switch (rc) {
    case LB_ETIMEDOUT:      return HTTP_CONNECT_TIMEOUT;
    case LB_EHOSTUNREACH:   return HTTP_UNREACHABLE;
    case LB_ENETUNREACH:    return HTTP_UNREACHABLE;
    case LB_EACCES:         return HTTP_UNREACHABLE;    /* a prohibit route */
    case LB_EINVAL:         return HTTP_UNREACHABLE;    /* a blackhole route (or dst 0) */
    case LB_EADDRNOTAVAIL:  return HTTP_NO_PORT;
    case LB_ETLS:           return HTTP_TLS_ERROR;   /* connected, the handshake failed */
    default:                return HTTP_CONNECT_REFUSED;  /* ECONNREFUSED, RST on SYN */
    }
}

static int established_outcome(int rc)
{
    switch (rc) {
    case LB_EHOSTUNREACH:   return HTTP_UNREACHABLE;
    case LB_ENETUNREACH:    return HTTP_UNREACHABLE;
    case LB_ETIMEDOUT:      return HTTP_RESPONSE_TIMEOUT;  /* retransmissions gave up */
    case LB_ECLOSED:        return HTTP_CLOSED;
    case LB_ETLS:           return HTTP_TLS_ERROR;
    default:                return HTTP_RESET;
    }
}

static void on_connected(tcp_conn_t *c, void *data)
{
    pconn_t *pc = data;
    preq_t *r = pc->cur;
    assert(pc->state == PC_CONNECTING && r);
    pc->syn_rtx = tcp_conn_retransmits(c);
    r->t_connected = sim_now(pc->pool->sim);
    send_req(pc, r);
}

static void on_recv(tcp_conn_t *c, net_msg_t *msg, void *data)
{
    (void)c;
    pconn_t *pc = data;
    http_msg_t *resp = http_msg_from(msg);
    preq_t *r = pc->cur;
    if (!resp || resp->is_request || !r || pc->state != PC_BUSY)
        return;                 /* nothing asked for it: ignored, like unsolicited bytes */
    sent_leave(r);
    pc->cur = NULL;
    r->conn = NULL;
    /* our request's Connection: close was already applied when it was queued */
    bool keep = pc->pool->opts.keepalive && http_msg_keepalive(resp);
    dest_t *d = pc->dest;
    if (keep) {
        conn_release(pc);
    } else {
        conn_detach(pc);        /* the server closes; we close on its FIN */
        pc->state = PC_DRAINING;
        serve_waiting(d, pc->pool);
    }
    finish(r, HTTP_OK, resp);
}

static void on_eof(tcp_conn_t *c, void *data)
{
    (void)c;
    pconn_t *pc = data;
    preq_t *r = pc->cur;
    conn_close(pc);
    pc->cur = NULL;
    if (r)
        TRACE(pc->pool, pc->flow, "http client: peer closed before the response");
    conn_drop(pc);
    if (r)
        finish(r, HTTP_CLOSED, NULL);
}

static void on_error(tcp_conn_t *c, int rc, void *data)
{
    pconn_t *pc = data;
    preq_t *r = pc->cur;
    int outcome = 0;
    char why[160] = "";
    if (pc->tls && rc == LB_ETLS)
        snprintf(why, sizeof why, "%s", tls_conn_why(pc->tls));
    pc->tc = NULL;              /* the stack frees c after we return */
    pc->cur = NULL;
    if (r) {
        if (pc->state == PC_CONNECTING) {
            r->syn_rtx = tcp_conn_retransmits(c);
            outcome = connect_outcome(rc);
        } else {
            outcome = established_outcome(rc);
        }
        TRACE(pc->pool, pc->flow, "http client: %s%s%s", lb_strerror(rc), *why ? ": " : "",
              why);
    }
    conn_drop(pc);
    if (r)
        finish_why(r, outcome, NULL, why);
}

static const tcp_cbs_t client_cbs = {
    .connected = on_connected, .recv = on_recv, .eof = on_eof, .error = on_error,
};

/* connect() failed at once on the node's own route (net_route_error): the attempt gets a
 * flow id of its own and a note naming the route, so that the explanation says why. */
static void route_refused(http_pool_t *pool, const dest_t *d, preq_t *r, int rc)
{
    net_t *net = pool->node->net;
    char ip[16], rs[96];
    r->flow = net_flow_new(net);
    net_notef(net, pool->node->name, r->flow, "connect() to %s fails at once: %s (%s)",
              lb_ip_str(d->addr, ip), net_route_str(net_route_lookup(pool->node, d->addr), rs,
              sizeof rs), lb_strerror(rc));
}

/* Opens a connection for r (the destination has room). */
static void conn_open(http_pool_t *pool, dest_t *d, preq_t *r)
{
    pconn_t *pc = lb_calloc(1, sizeof(*pc));
    pc->pool = pool;
    pc->dest = d;
    pc->state = PC_CONNECTING;
    pc->cur = r;
    r->conn = pc;
    d->nconns++;
    pc->all_next = pool->conns;
    if (pool->conns)
        pool->conns->all_prev = pc;
    pool->conns = pc;
    pool->nconns++;
    tcp_connect_opts_t o = {
        .src = pool->opts.src, .sport = 0, .flow = 0, .timeout = pool->opts.connect_timeout,
    };
    int rc = 0;
    tcp_conn_t *tc = tcp_connect(pool->node, d->addr, d->port, &o, &client_cbs, pc, &rc);
    if (!tc) {
        pc->cur = NULL;
        r->conn = NULL;
        conn_drop(pc);
        if (rc == LB_ENETUNREACH || rc == LB_EHOSTUNREACH || rc == LB_EACCES || rc == LB_EINVAL)
            route_refused(pool, d, r, rc);
        fail_later(r, connect_outcome(rc ? rc : LB_EADDRNOTAVAIL));
        return;
    }
    pc->tc = tc;
    pc->flow = r->flow = tcp_conn_flow(tc);
    if (pool->opts.tls) {
        tls_client_cfg_t tc_cfg = *pool->opts.tls;
        char host[256] = "";
        if (!tc_cfg.sni && pool->opts.tls_sni_from_host && r->req && r->req->host) {
            snprintf(host, sizeof host, "%s", r->req->host);
            char *colon = strrchr(host, ':');
            if (colon) *colon = '\0';
            tc_cfg.sni = host;
        }
        pc->tls = tls_client_new(tc, &tc_cfg, &client_cbs, pc);
    }
}

/* Starts r: an idle connection, a new one, or the queue. */
static void start(http_pool_t *pool, dest_t *d, preq_t *r)
{
    if (d->idle) {
        pconn_t *pc = d->idle;
        idle_remove(d, pc);
        r->reused = true;
        r->t_connected = sim_now(pool->sim);
        send_req(pc, r);
    } else if (pool->opts.max_conns_per_dest <= 0 ||
               d->nconns < pool->opts.max_conns_per_dest) {
        conn_open(pool, d, r);
    } else {
        r->next = NULL;
        if (d->wq_tail) d->wq_tail->next = r; else d->wq_head = r;
        d->wq_tail = r;
    }
}

/* A destination slot freed up: the head of its queue opens a connection. */
static void serve_waiting(dest_t *d, http_pool_t *pool)
{
    while (d->wq_head && (pool->opts.max_conns_per_dest <= 0 ||
                          d->nconns < pool->opts.max_conns_per_dest)) {
        preq_t *r = d->wq_head;
        d->wq_head = r->next;
        if (!d->wq_head)
            d->wq_tail = NULL;
        r->next = NULL;
        conn_open(pool, d, r);
    }
}

/* ---- public API ------------------------------------------------------------------------ */
http_pool_t *http_pool_new(net_node_t *node, const http_client_opts_t *opts)
{
    http_pool_t *pool = lb_calloc(1, sizeof(*pool));
    pool->node = node;
    pool->sim = net_sim(node->net);
    if (opts)
        pool->opts = *opts;
    else
        pool->opts.keepalive = true;
    return pool;
}

void http_pool_free(http_pool_t *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->dcap; i++)     /* so that no drop opens a connection */
        if (pool->dests[i])
            pool->dests[i]->wq_head = pool->dests[i]->wq_tail = NULL;
    while (pool->conns) {
        pconn_t *pc = pool->conns;
        if (pc->tc) {
            tcp_conn_t *tc = pc->tc;
            pc->tc = NULL;
            tcp_abort(tc);
        }
        pc->cur = NULL;
        conn_drop(pc);
    }
    while (pool->reqs)
        req_release(pool->reqs);
    while (pool->free_reqs) {
        preq_t *r = pool->free_reqs;
        pool->free_reqs = r->next;
        lb_free(r);
    }
    for (size_t i = 0; i < pool->dcap; i++)
        lb_free(pool->dests[i]);
    lb_free(pool->dests);
    sim_cancel(pool->sim, &pool->rt_timer);
    sim_cancel(pool->sim, &pool->idle_timer);
    lb_free(pool);
}

void http_pool_request(http_pool_t *pool, uint32_t dst, uint16_t port, http_msg_t *req,
                       http_result_cb cb, void *data)
{
    preq_t *r = req_alloc(pool);
    r->req = req;
    r->cb = cb;
    r->data = data;
    r->t_start = sim_now(pool->sim);
    r->t_connected = r->t_sent = -1;
    if (!pool->opts.keepalive && http_msg_keepalive(req))
        http_header_set(req, "Connection", "close");
    dest_t *d = dest_get(pool, dst, port);
    r->dest = d;
    start(pool, d, r);
}

size_t http_pool_open_conns(const http_pool_t *pool) { return pool->nconns; }

size_t http_pool_idle_conns(const http_pool_t *pool, uint32_t dst, uint16_t port)
{
    const dest_t *d = dest_find(pool, dst, port);
    return d ? d->nidle : 0;
}

size_t http_pool_pending(const http_pool_t *pool) { return pool->nreqs; }

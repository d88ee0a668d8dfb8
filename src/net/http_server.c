/* http_server.c -- the HTTP/1.1 server half: accepts TCP connections, hands each request
 * to the handler as an exchange, and sends the responses in request order. Connections
 * persist unless the request or the response says "Connection: close" (the server then
 * closes first and holds TIME_WAIT, as nginx does); idle ones close after
 * keepalive_timeout (nginx ngx_http_set_keepalive / ngx_http_keepalive_handler).
 *
 * One connection serves one request at a time, like nginx: a request that arrives while
 * another is being served (pipelining) waits in the connection's queue, and its handler
 * runs once the previous response has been sent. So every connection embeds its single
 * exchange, and nothing is allocated per request.
 *
 * Keep-alive timeout: the timeout is the same for every connection of a server, so the
 * idle connections, appended when they go idle, are in deadline order; one timer per
 * server fires at the oldest one's deadline. Busy connections leave the list, so a
 * connection costs no timer event of its own.
 *
 * Lifetime of a connection (sconn_t):
 *   accept ---> live (tc != NULL) --- close / abort / TCP error ---> gone (tc == NULL)
 *   It is freed when it is gone and its exchange is not active; an active exchange on a
 *   gone connection ends when the app responds (the response is then just freed). */
#include <assert.h>
#include <string.h>
#include "http_int.h"

typedef struct sconn sconn_t;

struct http_exchange {
    sconn_t *conn;
    http_msg_t *req;            /* owned reference while active */
    bool active;
};

struct sconn {
    http_server_t *srv;
    tcp_conn_t *tc;             /* NULL once closed, aborted or failed */
    tls_conn_t *tls;            /* HTTPS: the TLS layer over tc */
    sconn_t *prev, *next;       /* the server's list of connections */
    http_exchange_t ex;
    LB_VEC(http_msg_t *) pend;  /* pipelined requests waiting (NULL = not HTTP) */
    size_t pend_head;
    uint32_t nreq;              /* requests dispatched on this connection */
    bool peer_eof;              /* the client sent FIN */
    sim_time_t idle_since;      /* valid while idle */
    bool idle;                  /* in the server's idle list */
    sconn_t *idle_prev, *idle_next;
    uint32_t peer_addr, local_addr;
    uint16_t peer_port;
    uint64_t flow;
};

struct http_server {
    net_node_t *node;
    sim_t *sim;
    uint32_t addr;
    uint16_t port;
    http_server_opts_t opts;
    http_handler_cb cb;
    void *data;
    sconn_t *conns;
    sconn_t *idle_head, *idle_tail;     /* idle connections, oldest first */
    sim_handle_t idle_timer;            /* at the oldest idle connection's deadline */
    http_server_stats_t stats;
};

static void dispatch_next(sconn_t *sc);

#define TRACE(sc, ...) HTTP_TRACE((sc)->srv->node, (sc)->flow, __VA_ARGS__)

static void idle_leave(sconn_t *sc)
{
    http_server_t *srv = sc->srv;
    if (!sc->idle)
        return;
    if (sc->idle_prev)
        sc->idle_prev->idle_next = sc->idle_next;
    else
        srv->idle_head = sc->idle_next;
    if (sc->idle_next)
        sc->idle_next->idle_prev = sc->idle_prev;
    else
        srv->idle_tail = sc->idle_prev;
    sc->idle = false;
    sc->idle_prev = sc->idle_next = NULL;
}

static void pend_clear(sconn_t *sc)
{
    for (size_t i = sc->pend_head; i < sc->pend.n; i++)
        if (sc->pend.v[i])
            net_msg_unref(&sc->pend.v[i]->base);
    sc->pend.n = sc->pend_head = 0;
}

static bool pend_empty(const sconn_t *sc) { return sc->pend_head == sc->pend.n; }

static void conn_free(sconn_t *sc)
{
    http_server_t *srv = sc->srv;
    assert(!sc->tc && !sc->ex.active);
    idle_leave(sc);
    pend_clear(sc);
    lb_vec_free(&sc->pend);
    if (sc->prev) sc->prev->next = sc->next; else srv->conns = sc->next;
    if (sc->next) sc->next->prev = sc->prev;
    srv->stats.conns_open--;
    tls_conn_free(sc->tls);
    lb_free(sc);
}

static void maybe_free(sconn_t *sc)
{
    if (!sc->tc && !sc->ex.active)
        conn_free(sc);
}

/* Lets go of the TCP connection: FIN after queued data (graceful) or RST. */
static void conn_shut(sconn_t *sc, bool graceful)
{
    if (!sc->tc)
        return;
    tcp_conn_t *tc = sc->tc;
    sc->tc = NULL;
    idle_leave(sc);
    pend_clear(sc);
    if (graceful)
        tcp_close(tc);
    else
        tcp_abort(tc);
}

static void idle_timer_cb(sim_t *sim, void *a, void *b);

static int conn_send(sconn_t *sc, http_msg_t *m)
{
    return sc->tls ? tls_send(sc->tls, &m->base) : tcp_send(sc->tc, &m->base);
}

static void idle_arm(http_server_t *srv)
{
    if (!srv->idle_head || sim_pending(srv->sim, &srv->idle_timer))
        return;
    sim_time_t when = srv->idle_head->idle_since + srv->opts.keepalive_timeout;
    if (when < sim_now(srv->sim))
        when = sim_now(srv->sim);
    srv->idle_timer = sim_schedule_at(srv->sim, when, idle_timer_cb, srv, NULL);
}

static void idle_timer_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    http_server_t *srv = a;
    srv->idle_timer = (sim_handle_t){0};
    while (srv->idle_head &&
           srv->idle_head->idle_since + srv->opts.keepalive_timeout <= sim_now(sim)) {
        sconn_t *sc = srv->idle_head;
        idle_leave(sc);
        srv->stats.idle_closed++;
        TRACE(sc, "http server: keep-alive timeout, closing");
        conn_shut(sc, true);
        maybe_free(sc);
    }
    idle_arm(srv);
}

static void go_idle(sconn_t *sc)
{
    http_server_t *srv = sc->srv;
    sc->idle_since = sim_now(srv->sim);
    if (srv->opts.keepalive_timeout <= 0)
        return;
    assert(!sc->idle);
    sc->idle = true;
    sc->idle_next = NULL;
    sc->idle_prev = srv->idle_tail;
    if (srv->idle_tail) srv->idle_tail->idle_next = sc; else srv->idle_head = sc;
    srv->idle_tail = sc;
    idle_arm(srv);
}

/* Answers a message that is not an HTTP request: 400 and close (nginx
 * ngx_http_parse_request_line failure -> NGX_HTTP_BAD_REQUEST, keepalive off). */
static void bad_request(sconn_t *sc)
{
    http_msg_t *resp = http_response_new(400, NULL, 0);
    http_header_set(resp, "Connection", "close");
    sc->srv->stats.responses++;
    conn_send(sc, resp);
    net_msg_unref(&resp->base);
    conn_shut(sc, true);
}

static void dispatch(sconn_t *sc, http_msg_t *req)
{
    http_server_t *srv = sc->srv;
    if (!req) {
        bad_request(sc);
        maybe_free(sc);
        return;
    }
    idle_leave(sc);
    sc->ex.conn = sc;
    sc->ex.req = req;
    sc->ex.active = true;
    sc->nreq++;
    srv->stats.requests++;
    TRACE(sc, "http server: %s %s", req->method, req->path);
    srv->cb(&sc->ex, req, srv->data);
    /* sc may be freed here (the handler responded and the connection closed) */
}

static void dispatch_next(sconn_t *sc)
{
    assert(sc->tc && !sc->ex.active);
    if (!pend_empty(sc)) {
        http_msg_t *req = sc->pend.v[sc->pend_head++];
        if (pend_empty(sc))
            sc->pend.n = sc->pend_head = 0;
        dispatch(sc, req);
    } else if (sc->peer_eof) {
        conn_shut(sc, true);
        maybe_free(sc);
    } else {
        go_idle(sc);
    }
}

/* ---- TCP callbacks ------------------------------------------------------------------- */
static void on_recv(tcp_conn_t *c, net_msg_t *msg, void *data)
{
    (void)c;
    sconn_t *sc = data;
    http_msg_t *req = http_msg_from(msg);
    if (req && !req->is_request)
        req = NULL;
    if (req)
        net_msg_ref(&req->base);
    if (sc->ex.active || !pend_empty(sc))
        lb_vec_push(&sc->pend, req);
    else
        dispatch(sc, req);
}

static void on_eof(tcp_conn_t *c, void *data)
{
    (void)c;
    sconn_t *sc = data;
    sc->peer_eof = true;
    if (!sc->ex.active && pend_empty(sc)) {
        conn_shut(sc, true);
        maybe_free(sc);
    }
}

static void on_error(tcp_conn_t *c, int rc, void *data)
{
    (void)c;
    sconn_t *sc = data;
    if (rc == LB_ETLS && sc->tls && sc->srv->opts.tls_failed)
        sc->srv->opts.tls_failed(sc->flow, tls_conn_why(sc->tls), sc->srv->data);
    sc->tc = NULL;              /* the stack frees c after we return */
    idle_leave(sc);
    pend_clear(sc);
    sc->srv->stats.conns_failed++;
    maybe_free(sc);
}

static const tcp_cbs_t server_cbs = {
    .connected = NULL, .recv = on_recv, .eof = on_eof, .error = on_error,
};

static void on_accept(tcp_conn_t *c, void *data)
{
    http_server_t *srv = data;
    sconn_t *sc = lb_calloc(1, sizeof(*sc));
    sc->srv = srv;
    sc->tc = c;
    sc->peer_addr = tcp_conn_raddr(c);
    sc->peer_port = tcp_conn_rport(c);
    sc->local_addr = tcp_conn_laddr(c);
    sc->flow = tcp_conn_flow(c);
    sc->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = sc;
    srv->conns = sc;
    srv->stats.conns_accepted++;
    srv->stats.conns_open++;
    if (srv->opts.tls)
        sc->tls = tls_server_new(c, srv->opts.tls, &server_cbs, sc);
    else
        tcp_conn_set_cbs(c, &server_cbs, sc);
    if (srv->opts.so_keepalive)
        (void)tcp_conn_set_keepalive(c, &srv->opts.keepalive);  /* checked by the owner */
    go_idle(sc);                /* nginx: client_header_timeout; modelled as keepalive */
}

/* ---- public API ------------------------------------------------------------------------ */
http_server_t *http_server_new(net_node_t *node, uint32_t addr, uint16_t port,
                               const http_server_opts_t *opts, http_handler_cb cb,
                               void *data, int *rc)
{
    http_server_t *srv = lb_calloc(1, sizeof(*srv));
    srv->node = node;
    srv->sim = net_sim(node->net);
    srv->addr = addr;
    srv->port = port;
    if (opts)
        srv->opts = *opts;
    else
        srv->opts.keepalive_timeout = HTTP_KEEPALIVE_TIMEOUT_DEFAULT;
    srv->cb = cb;
    srv->data = data;
    int r = tcp_listen(node, addr, port, on_accept, srv);
    if (rc)
        *rc = r;
    if (r < 0) {
        lb_free(srv);
        return NULL;
    }
    return srv;
}

/* Aborts every connection (RST) and frees the exchanges: the owner must not call
 * http_respond on this server's exchanges afterwards (cancel pending work first). */
void http_server_free(http_server_t *srv)
{
    if (!srv)
        return;
    tcp_unlisten(srv->node, srv->addr, srv->port);
    while (srv->conns) {
        sconn_t *sc = srv->conns;
        conn_shut(sc, false);
        if (sc->ex.active) {
            net_msg_unref(&sc->ex.req->base);
            sc->ex.req = NULL;
            sc->ex.active = false;
        }
        conn_free(sc);
    }
    sim_cancel(srv->sim, &srv->idle_timer);
    lb_free(srv);
}

void http_respond(http_exchange_t *ex, http_msg_t *resp)
{
    sconn_t *sc = ex->conn;
    http_server_t *srv = sc->srv;
    assert(ex->active);
    http_msg_t *req = ex->req;
    ex->req = NULL;
    ex->active = false;
    if (!sc->tc) {              /* the client went away meanwhile */
        net_msg_unref(&resp->base);
        net_msg_unref(&req->base);
        maybe_free(sc);
        return;
    }
    bool keep = http_msg_keepalive(req) && http_msg_keepalive(resp);
    if (srv->opts.max_requests_per_conn > 0 &&
        sc->nreq >= (uint32_t)srv->opts.max_requests_per_conn)
        keep = false;           /* nginx keepalive_requests */
    if (!keep && http_msg_keepalive(resp))
        http_header_set(resp, "Connection", "close");
    resp->req_id = req->req_id;
    net_msg_unref(&req->base);
    srv->stats.responses++;
    TRACE(sc, "http server: response %d%s", resp->status, keep ? "" : ", closing");
    int rc = conn_send(sc, resp);
    net_msg_unref(&resp->base);
    if (rc < 0 || !keep) {
        conn_shut(sc, true);
        maybe_free(sc);
        return;
    }
    dispatch_next(sc);
}

void http_exchange_reset(http_exchange_t *ex)
{
    sconn_t *sc = ex->conn;
    assert(ex->active);
    net_msg_unref(&ex->req->base);
    ex->req = NULL;
    ex->active = false;
    conn_shut(sc, false);
    maybe_free(sc);
}

uint32_t http_exchange_peer_addr(const http_exchange_t *ex) { return ex->conn->peer_addr; }
uint16_t http_exchange_peer_port(const http_exchange_t *ex) { return ex->conn->peer_port; }
uint32_t http_exchange_local_addr(const http_exchange_t *ex) { return ex->conn->local_addr; }
uint64_t http_exchange_flow(const http_exchange_t *ex) { return ex->conn->flow; }
net_node_t *http_exchange_node(const http_exchange_t *ex) { return ex->conn->srv->node; }
bool http_exchange_dead(const http_exchange_t *ex)
{
    return !ex->conn->tc || ex->conn->peer_eof;
}

void http_server_stats(const http_server_t *srv, http_server_stats_t *out)
{
    *out = srv->stats;
}

/* test_l7proxy.c -- the L7 proxy core on a small VNet (fabric, 1 ms one way): a client,
 * the proxy and two origin servers. A test vendor layer answers, forwards or resets;
 * checks exact request timing through the proxy, forwarded and relayed headers, upstream
 * keep-alive, the failure table, retries on another target (after a refusal, a per-attempt
 * timeout, a retriable status), the backoff range, the request deadline, release() and
 * flow links. */
#include <check.h>
#include <string.h>
#include "util.h"
#include "l7proxy.h"

#define LAT (1 * SIM_MS)

/* ---- an origin server that records what it received ------------------------------------ */
typedef struct origin {
    http_server_t *srv;
    sim_t *sim;
    int status;
    const char *body;
    sim_time_t delay;
    const char *conn_close;         /* answer with Connection: close */
    int hits;
    char xff[128], xfp[32], via[128], conn[32], host[64], custom[32];
} origin_t;

static void origin_send(origin_t *o, http_exchange_t *ex)
{
    http_msg_t *r = http_response_new(o->status, o->body, 0);
    http_header_set(r, "Server", "nginx");
    http_header_set(r, "Keep-Alive", "timeout=75");
    http_respond(ex, r);
}

static void origin_later(sim_t *sim, void *a, void *b)
{
    (void)sim;
    origin_send(a, b);
}

static void cp(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void origin_handle(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    origin_t *o = data;
    o->hits++;
    cp(o->xff, sizeof o->xff, http_header_get(req, "X-Forwarded-For"));
    cp(o->xfp, sizeof o->xfp, http_header_get(req, "X-Forwarded-Proto"));
    cp(o->via, sizeof o->via, http_header_get(req, "Via"));
    cp(o->conn, sizeof o->conn, http_header_get(req, "Connection"));
    cp(o->host, sizeof o->host, req->host);
    cp(o->custom, sizeof o->custom, http_header_get(req, "X-Custom"));
    if (o->delay > 0)
        sim_schedule(o->sim, o->delay, origin_later, o, ex);
    else
        origin_send(o, ex);
}

/* ---- the test vendor ------------------------------------------------------------------- */
enum { TV_FORWARD, TV_ANSWER, TV_RESET };
typedef struct tv {
    int mode;
    uint32_t addr[4];
    uint16_t port[4];
    int n;
    sim_time_t timeout;
    const char *host;
    int routes, ends, releases, responds;
    l7_attempt_t end[8];
    bool override_retry;            /* upstream_end turns every RETRY into 599 */
} tv_t;

static void tv_route(l7proxy_t *px, l7_req_t *rq, const http_msg_t *req, l7_decision_t *d,
                     void *data)
{
    (void)px; (void)req;
    tv_t *v = data;
    v->routes++;
    if (v->mode == TV_ANSWER) {
        l7_decision_answer(d, 418, "short and stout", "T teapot_detail");
        return;
    }
    if (v->mode == TV_RESET) {
        d->action = L7_RESET;
        return;
    }
    int k = 0;
    while (k < v->n - 1 && l7_req_tried(rq, v->addr[k], v->port[k]))
        k++;
    l7_decision_forward(d, v->addr[k], v->port[k], v);
    d->timeout = v->timeout;
    d->host = v->host;
}

static void tv_end(l7proxy_t *px, l7_req_t *rq, const l7_attempt_t *a, l7_decision_t *d,
                   void *data)
{
    (void)px; (void)rq;
    tv_t *v = data;
    if (v->ends < 8)
        v->end[v->ends] = *a;
    v->ends++;
    if (v->override_retry && d->action == L7_RETRY)
        l7_decision_answer(d, 599, NULL, "X vendor_said_no");
}

static void tv_release(l7proxy_t *px, void *target, uint32_t addr, uint16_t port, void *data)
{
    (void)px; (void)addr; (void)port;
    tv_t *v = data;
    ck_assert_ptr_eq(target, v);
    v->releases++;
}

static void tv_respond(l7proxy_t *px, l7_req_t *rq, http_msg_t *resp, void *data)
{
    (void)px; (void)rq;
    tv_t *v = data;
    v->responds++;
    http_header_set(resp, "X-Vendor", "yes");
}

/* ---- topology -------------------------------------------------------------------------- */
typedef struct res {
    int n;
    http_result_t r[16];
    char body[16][160], detail[16][160], server[16][32], vendor[16][8], ka[16][32];
} res_t;

typedef struct env {
    sim_t *sim;
    net_t *net;
    net_node_t *client, *proxy, *up1, *up2;
    uint32_t a_client, a_proxy, a_up1, a_up2;
    origin_t o1, o2;
    http_pool_t *pool;
    l7proxy_t *px;
    tv_t v;
    res_t res;
    int links;
    uint64_t link_down, link_up, link_req;
} env_t;

static net_node_t *host(env_t *e, net_fabric_t *f, const char *name, const char *ip,
                        uint32_t *addr)
{
    *addr = tu_ip(ip);
    return tu_fabric_host(e->net, f, name, ip, 16, false)->node;
}

static void origin_start(env_t *e, origin_t *o, net_node_t *n, uint16_t port, int status,
                         const char *body)
{
    memset(o, 0, sizeof(*o));
    o->sim = e->sim;
    o->status = status;
    o->body = body;
    int rc = -1;
    o->srv = http_server_new(n, 0, port, NULL, origin_handle, o, &rc);
    ck_assert_ptr_nonnull(o->srv);
}

static void env_new(env_t *e)
{
    memset(e, 0, sizeof(*e));
    net_fabric_t *f;
    tu_fabric_new(11, "vnet", LAT, &e->sim, &e->net, &f);
    e->client = host(e, f, "client", "10.1.0.1", &e->a_client);
    e->proxy = host(e, f, "proxy", "10.1.0.2", &e->a_proxy);
    e->up1 = host(e, f, "up1", "10.1.0.3", &e->a_up1);
    e->up2 = host(e, f, "up2", "10.1.0.4", &e->a_up2);
    origin_start(e, &e->o1, e->up1, 8080, 200, "one");
    origin_start(e, &e->o2, e->up2, 8080, 200, "two");
    e->pool = http_pool_new(e->client, NULL);
    e->v.mode = TV_FORWARD;
    e->v.addr[0] = e->a_up1;
    e->v.port[0] = 8080;
    e->v.addr[1] = e->a_up2;
    e->v.port[1] = 8080;
    e->v.n = 2;
}

static void flow_link(void *data, uint64_t down, uint64_t up, uint64_t req_id)
{
    env_t *e = data;
    e->links++;
    e->link_down = down;
    e->link_up = up;
    e->link_req = req_id;
}

/* The proxy on :80 (scheme http) and :443 (scheme https). */
static void proxy_start(env_t *e, l7proxy_opts_t *o)
{
    static const l7_listener_t ls[] = { { 80, "http", NULL }, { 443, "https", NULL } };
    o->listeners = ls;
    o->n_listeners = 2;
    o->flow_link = flow_link;
    o->flow_link_data = e;
    l7_vendor_t v = { .route = tv_route, .upstream_end = tv_end, .release = tv_release,
                      .respond = tv_respond, .data = &e->v };
    int rc = -1;
    e->px = l7proxy_new(e->proxy, o, &v, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(e->px);
}

static void env_free(env_t *e)
{
    http_pool_free(e->pool);
    l7proxy_free(e->px);
    http_server_free(e->o1.srv);
    http_server_free(e->o2.srv);
    net_free(e->net);
    sim_free(e->sim);
}

static void res_cb(const http_result_t *r, void *data)
{
    res_t *s = data;
    ck_assert_int_lt(s->n, 16);
    int i = s->n++;
    s->r[i] = *r;
    s->r[i].resp = NULL;
    const http_msg_t *m = r->resp;
    cp(s->body[i], sizeof s->body[i], m ? m->body : NULL);
    cp(s->detail[i], sizeof s->detail[i], m ? m->detail : NULL);
    cp(s->server[i], sizeof s->server[i], m ? http_header_get(m, "Server") : NULL);
    cp(s->vendor[i], sizeof s->vendor[i], m ? http_header_get(m, "X-Vendor") : NULL);
    cp(s->ka[i], sizeof s->ka[i], m ? http_header_get(m, "Keep-Alive") : NULL);
}

static void get(env_t *e, uint16_t port, const char *path)
{
    http_msg_t *q = http_request_new("GET", "shop.example.com", path, 0);
    http_header_set(q, "X-Forwarded-For", "192.0.2.7");
    http_header_set(q, "X-Custom", "kept");
    http_pool_request(e->pool, e->a_proxy, port, q, res_cb, &e->res);
}

static void run(env_t *e, sim_time_t d)
{
    sim_run(e->sim, sim_now(e->sim) + d);
}

/* get(), then run for d. */
static void get_run(env_t *e, uint16_t port, const char *path, sim_time_t d)
{
    get(e, port, path);
    run(e, d);
}

static l7proxy_stats_t stats(env_t *e)
{
    l7proxy_stats_t st;
    l7proxy_stats(e->px, &st);
    return st;
}

/* ---- tests ------------------------------------------------------------------------------ */
START_TEST(answer_directly)
{
    env_t e;
    env_new(&e);
    e.v.mode = TV_ANSWER;
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    o.server = "proxy/1";
    proxy_start(&e, &o);
    get_run(&e, 80, "/x", SIM_S);
    ck_assert_int_eq(e.res.n, 1);
    ck_assert_int_eq(e.res.r[0].outcome, HTTP_OK);
    ck_assert_int_eq(e.res.r[0].status, 418);
    ck_assert_str_eq(e.res.body[0], "short and stout");
    ck_assert_str_eq(e.res.detail[0], "T teapot_detail");
    ck_assert_str_eq(e.res.server[0], "proxy/1");
    ck_assert_str_eq(e.res.vendor[0], "yes");
    /* SYN 1 ms, SYN-ACK 1 ms, request 1 ms, answer 1 ms */
    ck_assert_int_eq(e.res.r[0].t_done - e.res.r[0].t_start, 4 * SIM_MS);
    l7proxy_stats_t st = stats(&e);
    ck_assert_uint_eq(st.requests, 1);
    ck_assert_uint_eq(st.local_replies, 1);
    ck_assert_uint_eq(st.attempts, 0);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_int_eq(e.v.releases, 0);
    env_free(&e);
}
END_TEST

START_TEST(forward_headers_and_keepalive)
{
    env_t e;
    env_new(&e);
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    o.xff = true;
    o.xfp = true;
    o.via = "1.1 proxy";
    o.server = "proxy/1";
    proxy_start(&e, &o);
    get_run(&e, 443, "/a", SIM_S);
    ck_assert_int_eq(e.res.n, 1);
    ck_assert_int_eq(e.res.r[0].status, 200);
    ck_assert_str_eq(e.res.body[0], "one");
    /* client handshake 2 ms + request 1 ms, upstream handshake 2 ms + request 1 ms,
     * response 1 ms to the proxy, 1 ms to the client */
    ck_assert_int_eq(e.res.r[0].t_done - e.res.r[0].t_start, 8 * SIM_MS);
    ck_assert_str_eq(e.o1.xff, "192.0.2.7, 10.1.0.1");
    ck_assert_str_eq(e.o1.xfp, "https");
    ck_assert_str_eq(e.o1.via, "1.1 proxy");
    ck_assert_str_eq(e.o1.host, "shop.example.com");
    ck_assert_str_eq(e.o1.custom, "kept");
    ck_assert_str_eq(e.res.server[0], "proxy/1");      /* the origin said nginx */
    ck_assert_str_eq(e.res.ka[0], "");                  /* hop-by-hop, not relayed */
    ck_assert_str_eq(e.res.vendor[0], "yes");
    ck_assert_int_eq(e.links, 1);
    ck_assert_uint_eq(e.link_down, e.res.r[0].flow);
    ck_assert_uint_ne(e.link_up, 0);
    ck_assert_uint_ne(e.link_up, e.link_down);
    ck_assert_int_eq(e.v.releases, 1);
    uint64_t first_up = e.link_up;
    /* second request: both connections are kept alive, so 4 one-way trips */
    get_run(&e, 443, "/b", SIM_S);
    ck_assert_int_eq(e.res.n, 2);
    ck_assert(e.res.r[1].reused);
    ck_assert_int_eq(e.res.r[1].t_done - e.res.r[1].t_start, 4 * SIM_MS);
    ck_assert_int_eq(e.o1.hits, 2);
    ck_assert_uint_eq(e.link_up, first_up);                /* the same upstream connection */
    ck_assert_uint_eq(e.link_down, e.res.r[1].flow);
    l7proxy_stats_t st = stats(&e);
    ck_assert_uint_eq(st.relayed, 2);
    ck_assert_uint_eq(st.attempts, 2);
    ck_assert_uint_eq(st.outcomes[HTTP_OK], 2);
    env_free(&e);
}
END_TEST

START_TEST(host_override_and_plain_scheme)
{
    env_t e;
    env_new(&e);
    e.v.host = "backend.internal";
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    o.xff = true;
    o.xff_port = true;
    o.xfp = true;
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.r[0].status, 200);
    ck_assert_str_eq(e.o1.host, "backend.internal");
    ck_assert_str_eq(e.o1.xfp, "http");
    /* the client's ephemeral port is the first of net.ipv4.ip_local_port_range or later */
    ck_assert(strncmp(e.o1.xff, "192.0.2.7, 10.1.0.1:", 20) == 0);
    ck_assert_str_eq(e.o1.via, "");
    ck_assert_str_eq(e.res.server[0], "nginx");
    env_free(&e);
}
END_TEST

static const l7_fail_action_t FAIL_MAP[HTTP_OUTCOME_COUNT] = {
    [HTTP_CONNECT_TIMEOUT] = { 504, "gw timeout", "connect_timeout", true },
    [HTTP_CONNECT_REFUSED] = { 502, "bad gateway", "refused", true },
    [HTTP_RESET] = { 502, "bad gateway", "reset", false },
    [HTTP_RESPONSE_TIMEOUT] = { 504, "gw timeout", "response_timeout", true },
    [HTTP_CLOSED] = { 502, "bad gateway", "closed", false },
    [HTTP_NO_PORT] = { 502, NULL, "no_port", false },
    [HTTP_UNREACHABLE] = { 502, NULL, "unreachable", false },
};

/* Default options with FAIL_MAP and max_retries. */
static l7proxy_opts_t fail_map_opts(int max_retries)
{
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    o.fail_map = FAIL_MAP;
    o.max_retries = max_retries;
    return o;
}

START_TEST(refused_then_retry_elsewhere)
{
    env_t e;
    env_new(&e);
    e.v.port[0] = 9999;                 /* nothing listens: RST */
    l7proxy_opts_t o = fail_map_opts(1);
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.n, 1);
    ck_assert_int_eq(e.res.r[0].status, 200);
    ck_assert_str_eq(e.res.body[0], "two");
    ck_assert_int_eq(e.v.routes, 2);
    ck_assert_int_eq(e.v.ends, 2);
    ck_assert_int_eq(e.v.end[0].outcome, HTTP_CONNECT_REFUSED);
    ck_assert_int_eq(e.v.end[0].attempt, 0);
    ck_assert_int_eq(e.v.end[0].retries_left, 1);
    ck_assert_uint_eq(e.v.end[0].addr, e.a_up1);
    ck_assert_int_eq(e.v.end[1].outcome, HTTP_OK);
    ck_assert_int_eq(e.v.end[1].attempt, 1);
    ck_assert_int_eq(e.v.end[1].retries_left, 0);
    /* no backoff: request at 3 ms, SYN+RST 2 ms, new handshake 2 ms, request 1 ms,
     * response 1 + 1 ms */
    ck_assert_int_eq(e.res.r[0].t_done - e.res.r[0].t_start, 10 * SIM_MS);
    ck_assert_int_eq(e.v.releases, 2);
    l7proxy_stats_t st = stats(&e);
    ck_assert_uint_eq(st.retries, 1);
    ck_assert_uint_eq(st.outcomes[HTTP_CONNECT_REFUSED], 1);
    ck_assert_uint_eq(st.outcomes[HTTP_OK], 1);
    env_free(&e);
}
END_TEST

START_TEST(refused_no_retry_left_maps)
{
    env_t e;
    env_new(&e);
    e.v.port[0] = 9999;
    e.v.n = 1;
    l7proxy_opts_t o = fail_map_opts(0);
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.r[0].status, 502);
    ck_assert_str_eq(e.res.body[0], "bad gateway");
    ck_assert_str_eq(e.res.detail[0], "refused");
    ck_assert_int_eq(e.v.ends, 1);
    /* without a failure table: a plain 502 (after the client saw the RST of its
     * kept-alive connection to the freed proxy) */
    l7proxy_free(e.px);
    run(&e, SIM_S);
    e.v.ends = 0;
    l7proxy_opts_init(&o);
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.n, 2);
    ck_assert_int_eq(e.res.r[1].status, 502);
    ck_assert_str_eq(e.res.detail[1], "");
    env_free(&e);
}
END_TEST

START_TEST(vendor_overrides_retry)
{
    env_t e;
    env_new(&e);
    e.v.port[0] = 9999;
    e.v.override_retry = true;
    l7proxy_opts_t o = fail_map_opts(3);
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.r[0].status, 599);
    ck_assert_str_eq(e.res.detail[0], "X vendor_said_no");
    ck_assert_int_eq(e.v.routes, 1);
    env_free(&e);
}
END_TEST

/* Application Gateway style: a per-attempt timeout, then the request on another member. */
START_TEST(per_try_timeout_retries_elsewhere)
{
    env_t e;
    env_new(&e);
    e.o1.delay = 5 * SIM_S;
    l7proxy_opts_t o = fail_map_opts(1);
    o.upstream.response_timeout = SIM_S;
    proxy_start(&e, &o);
    get_run(&e, 80, "/", 10 * SIM_S);
    ck_assert_int_eq(e.res.n, 1);
    ck_assert_int_eq(e.res.r[0].status, 200);
    ck_assert_str_eq(e.res.body[0], "two");
    ck_assert_int_eq(e.v.end[0].outcome, HTTP_RESPONSE_TIMEOUT);
    ck_assert(!e.v.end[0].deadline);
    /* the request left for up1 once connected, at 5 ms; timed out at 1.005 s; then
     * 2 ms handshake with up2, 1 ms request, 1 + 1 ms response */
    ck_assert_int_eq(e.res.r[0].t_done - e.res.r[0].t_start, SIM_S + 10 * SIM_MS);
    ck_assert_int_eq(e.o1.hits, 1);
    ck_assert_int_eq(e.o2.hits, 1);
    env_free(&e);
}
END_TEST

START_TEST(deadline_abandons_attempt)
{
    env_t e;
    env_new(&e);
    e.o1.delay = 3 * SIM_S;
    e.v.timeout = 500 * SIM_MS;
    e.v.n = 1;
    l7proxy_opts_t o = fail_map_opts(2);    /* no retry after the deadline all the same */
    proxy_start(&e, &o);
    get_run(&e, 80, "/", 10 * SIM_S);
    ck_assert_int_eq(e.res.n, 1);
    ck_assert_int_eq(e.res.r[0].status, 504);
    ck_assert_str_eq(e.res.detail[0], "response_timeout");
    /* the request reached the proxy at 3 ms; 500 ms later the answer, 1 ms back */
    ck_assert_int_eq(e.res.r[0].t_done - e.res.r[0].t_start, 504 * SIM_MS);
    ck_assert_int_eq(e.v.ends, 1);
    ck_assert(e.v.end[0].deadline);
    ck_assert_int_eq(e.v.end[0].outcome, HTTP_RESPONSE_TIMEOUT);
    ck_assert_int_eq(e.v.releases, 1);  /* at the deadline, not when the pool reports */
    l7proxy_stats_t st = stats(&e);
    ck_assert_uint_eq(st.deadlines, 1);
    ck_assert_uint_eq(st.retries, 0);
    ck_assert_uint_eq(st.in_flight, 0);
    /* the abandoned attempt's pool aborted it 500 ms after it was sent */
    ck_assert_uint_eq(st.outcomes[HTTP_RESPONSE_TIMEOUT], 1);
    ck_assert_int_eq(e.links, 1);
    env_free(&e);
}
END_TEST

START_TEST(retry_on_status_with_backoff)
{
    env_t e;
    env_new(&e);
    e.o1.status = 503;
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    static const int st503[] = { 503 };
    o.retry_statuses = st503;
    o.n_retry_statuses = 1;
    o.max_retries = 1;
    o.retry_backoff_base = 25 * SIM_MS;
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.r[0].status, 200);
    ck_assert_str_eq(e.res.body[0], "two");
    ck_assert_int_eq(e.v.end[0].status, 503);
    /* 8 ms to the first response, then a backoff in [0, 25 ms) whole ms, then 2 + 1 +
     * 1 + 1 ms to the second origin and back to the client */
    sim_time_t lat = e.res.r[0].t_done - e.res.r[0].t_start;
    ck_assert_int_ge(lat, 12 * SIM_MS);
    ck_assert_int_lt(lat, 12 * SIM_MS + 25 * SIM_MS);
    ck_assert_int_eq(lat % SIM_MS, 0);
    /* no budget left: the 503 is relayed */
    e.o2.status = 503;
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.r[1].status, 503);
    env_free(&e);
}
END_TEST

START_TEST(reset_action)
{
    env_t e;
    env_new(&e);
    e.v.mode = TV_RESET;
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    proxy_start(&e, &o);
    get_run(&e, 80, "/", SIM_S);
    ck_assert_int_eq(e.res.n, 1);
    ck_assert_int_eq(e.res.r[0].outcome, HTTP_RESET);
    ck_assert_uint_eq(stats(&e).resets, 1);
    env_free(&e);
}
END_TEST

START_TEST(free_with_requests_in_flight)
{
    env_t e;
    env_new(&e);
    e.o1.delay = 5 * SIM_S;
    e.v.n = 1;
    e.v.timeout = 2 * SIM_S;
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    proxy_start(&e, &o);
    get(&e, 80, "/");
    get_run(&e, 80, "/", SIM_S);
    ck_assert_uint_eq(stats(&e).in_flight, 2);
    l7proxy_free(e.px);                 /* timers cancelled, no callbacks */
    e.px = NULL;
    run(&e, 10 * SIM_S);
    ck_assert_int_eq(e.v.releases, 0);
    ck_assert_int_eq(e.v.ends, 0);
    ck_assert_int_eq(e.res.n, 2);       /* the client saw its connections reset */
    ck_assert_int_eq(e.res.r[0].outcome, HTTP_RESET);
    env_free(&e);
}
END_TEST

START_TEST(bad_options)
{
    env_t e;
    env_new(&e);
    l7proxy_opts_t o;
    l7proxy_opts_init(&o);
    l7_vendor_t v = { .route = tv_route, .data = &e.v };
    int rc = 0;
    ck_assert_ptr_null(l7proxy_new(e.proxy, &o, &v, &rc));      /* no listener */
    ck_assert_int_eq(rc, LB_EINVAL);
    static const l7_listener_t ls[] = { { 80, NULL, NULL }, { 80, NULL, NULL } };
    o.listeners = ls;
    o.n_listeners = 2;
    ck_assert_ptr_null(l7proxy_new(e.proxy, &o, &v, &rc));
    ck_assert_int_eq(rc, LB_EADDRINUSE);
    l7_vendor_t nov = { 0 };
    o.n_listeners = 1;
    ck_assert_ptr_null(l7proxy_new(e.proxy, &o, &nov, &rc));
    ck_assert_int_eq(rc, LB_EINVAL);
    l7proxy_t *px = l7proxy_new(e.proxy, &o, &v, &rc);         /* port 80 free again */
    ck_assert_ptr_nonnull(px);
    ck_assert_str_eq(l7proxy_name(px), "proxy");
    ck_assert_ptr_eq(l7proxy_node(px), e.proxy);
    l7proxy_free(px);
    env_free(&e);
}
END_TEST

Suite *suite_l7proxy(void)
{
    Suite *s = suite_create("l7proxy");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, answer_directly);
    tcase_add_test(tc, forward_headers_and_keepalive);
    tcase_add_test(tc, host_override_and_plain_scheme);
    tcase_add_test(tc, refused_then_retry_elsewhere);
    tcase_add_test(tc, refused_no_retry_left_maps);
    tcase_add_test(tc, vendor_overrides_retry);
    tcase_add_test(tc, per_try_timeout_retries_elsewhere);
    tcase_add_test(tc, deadline_abandons_attempt);
    tcase_add_test(tc, retry_on_status_with_backoff);
    tcase_add_test(tc, reset_action);
    tcase_add_test(tc, free_with_requests_in_flight);
    tcase_add_test(tc, bad_options);
    suite_add_tcase(s, tc);
    return s;
}

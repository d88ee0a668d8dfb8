/* test_http.c -- HTTP/1.1 over the simulated TCP on two hosts joined by one link: message
 * wire sizes, exact request timing, keep-alive vs close, nginx location matching, the
 * client's timeouts and error outcomes, the pool's limits, and the traffic client apps. */
#include <check.h>
#include <string.h>
#include "util.h"
#include "apps.h"
#include "element.h"
#include "scenario.h"

#define L (1 * SIM_MS)              /* link latency */
#define BW 8000000ULL               /* 8 Mbit/s: one byte takes exactly 1 us */
static sim_time_t ser(uint32_t bytes) { return (sim_time_t)bytes * SIM_US; }
/* Segment sizes on the wire: IP 20 + TCP 20 + options (20 on a SYN, 12 otherwise). */
#define SYN_BYTES 60
#define SEG_BYTES(payload) (52 + (payload))

typedef struct rlog {
    int n;
    http_result_t r[64];
    char body[64][200];
    http_pool_t *pool;              /* for callbacks that send the next request */
    uint32_t dst;
    uint16_t port;
    int more;                       /* requests still to send from the callback */
    const char *path;
} rlog_t;

static void log_cb(const http_result_t *r, void *data)
{
    rlog_t *lg = data;
    ck_assert_int_lt(lg->n, 64);
    lg->r[lg->n] = *r;
    lg->r[lg->n].resp = NULL;
    snprintf(lg->body[lg->n], sizeof(lg->body[0]), "%s",
             r->resp && r->resp->body ? r->resp->body : "");
    lg->n++;
    if (lg->more > 0) {
        lg->more--;
        http_pool_request(lg->pool, lg->dst, lg->port,
                          http_request_new("GET", "b", lg->path, 0), log_cb, lg);
    }
}

typedef struct env {
    tu_pair_t t;
    app_http_server_t *srv;
    http_pool_t *pool;
    rlog_t lg;
} env_t;

static const char *const no_headers[] = { NULL };

/* Server on b:80 with /hello (body "hello", service time svc) and the pool on a. */
static void env_new(env_t *e, double loss, sim_time_t svc, const http_client_opts_t *co,
                    sim_time_t keepalive_timeout)
{
    memset(e, 0, sizeof(*e));
    tu_pair_new(&e->t, 7, L, BW, loss);
    app_location_t loc;
    app_location_init(&loc, "/hello", APP_MATCH_PREFIX);
    loc.body = "hello";
    loc.service_time = (dist_t){ DIST_CONST, (double)svc, 0 };
    loc.headers = no_headers;
    app_http_server_opts_t so;
    app_http_server_opts_init(&so);
    so.keepalive_timeout = keepalive_timeout;
    int rc = -1;
    e->srv = app_http_server_new(e->t.b, 80, &loc, 1, &so, &rc);
    ck_assert_ptr_nonnull(e->srv);
    ck_assert_int_eq(rc, 0);
    e->pool = http_pool_new(e->t.a, co);
    e->lg.pool = e->pool;
    e->lg.dst = tu_ip("10.0.0.2");
    e->lg.port = 80;
    e->lg.path = "/hello";
}

static void env_free(env_t *e)
{
    http_pool_free(e->pool);
    app_http_server_free(e->srv);
    tu_pair_free(&e->t);
}

/* An app server on b:80 with the one location "/" answering `body` after `svc` (NULL and 0:
 * app_location_init's empty body and no service time). */
static app_http_server_t *root_server(tu_pair_t *t, const char *body, sim_time_t svc)
{
    app_location_t loc;
    app_location_init(&loc, "/", APP_MATCH_PREFIX);
    loc.body = body;
    loc.service_time = (dist_t){ DIST_CONST, (double)svc, 0 };
    return app_http_server_new(t->b, 80, &loc, 1, NULL, NULL);
}

/* The env's server statistics. */
static http_server_stats_t srv_stats(const env_t *e)
{
    http_server_stats_t ss;
    http_server_stats(app_http_server_http(e->srv), &ss);
    return ss;
}

static void get(env_t *e, const char *path, uint16_t port)
{
    http_pool_request(e->pool, e->lg.dst, port, http_request_new("GET", "b", path, 0), log_cb,
                      &e->lg);
}

/* ---- messages ---------------------------------------------------------------------------- */
START_TEST(msg_wire_sizes)
{
    http_msg_t *q = http_request_new("GET", "example.com", "/app1", 0);
    ck_assert_uint_eq(q->base.size, strlen("GET /app1 HTTP/1.1\r\nHost: example.com\r\n\r\n"));
    ck_assert_int_eq(q->base.kind, NET_MSG_HTTP);
    ck_assert_ptr_eq(http_msg_from(&q->base), q);
    ck_assert(http_msg_keepalive(q));
    http_header_set(q, "Connection", "close");
    ck_assert_uint_eq(q->base.size, strlen("GET /app1 HTTP/1.1\r\nHost: example.com\r\n"
                                           "Connection: close\r\n\r\n"));
    ck_assert(!http_msg_keepalive(q));
    ck_assert_str_eq(http_header_get(q, "connection"), "close");
    http_header_set(q, "connection", "keep-alive");          /* replaces, case-insensitive */
    ck_assert(http_msg_keepalive(q));
    ck_assert_int_eq(q->n_headers, 1);
    http_header_set(q, "Connection", "Upgrade, Close");      /* token list */
    ck_assert(!http_msg_keepalive(q));
    net_msg_unref(&q->base);

    http_msg_t *p = http_request_new("POST", NULL, "/x", 1000);
    ck_assert_ptr_null(p->host);
    ck_assert_uint_eq(p->base.size, strlen("POST /x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")
                      + 1000);
    net_msg_unref(&p->base);

    http_msg_t *r = http_response_new(200, "ok", 0);
    ck_assert_uint_eq(r->body_size, 2);
    ck_assert_uint_eq(r->base.size, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    ck_assert(!r->is_request);
    net_msg_unref(&r->base);

    r = http_response_new(404, NULL, 1234);
    ck_assert_uint_eq(r->base.size, strlen("HTTP/1.1 404 Not Found\r\nContent-Length: 1234"
                                           "\r\n\r\n") + 1234);
    http_msg_set_detail(r, "NR route_not_found");            /* not on the wire */
    ck_assert_uint_eq(r->base.size, strlen("HTTP/1.1 404 Not Found\r\nContent-Length: 1234"
                                           "\r\n\r\n") + 1234);
    ck_assert_str_eq(r->detail, "NR route_not_found");
    net_msg_unref(&r->base);

    r = http_response_new(204, NULL, 0);                      /* no Content-Length */
    ck_assert_uint_eq(r->base.size, strlen("HTTP/1.1 204 No Content\r\n\r\n"));
    net_msg_unref(&r->base);

    ck_assert_str_eq(http_reason_phrase(503), "Service Temporarily Unavailable");
    ck_assert_str_eq(http_outcome_name(HTTP_CONNECT_TIMEOUT), "connect-timeout");
}
END_TEST

/* ---- one request, exact time -------------------------------------------------------------- */
static char trace_buf[4096];

static void trace_obs(void *data, sim_time_t t, uint64_t flow, const char *where,
                      const char *text)
{
    (void)data; (void)t; (void)flow;
    size_t n = strlen(trace_buf);
    snprintf(trace_buf + n, sizeof(trace_buf) - n, "%s: %s\n", where, text);
}

START_TEST(get_200_exact_timing)
{
    env_t e;
    const sim_time_t svc = 3 * SIM_MS;
    env_new(&e, 0, svc, NULL, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    trace_buf[0] = 0;
    net_observer_t obs = { .trace = trace_obs };
    net_set_observer(e.t.net, &obs);
    net_trace_flow(e.t.net, 1);             /* the first connection */
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 1 * SIM_S);
    /* the HTTP steps appear in the flow's trace */
    ck_assert_msg(strstr(trace_buf, "a: http client: GET /hello\n"), "%s", trace_buf);
    ck_assert_msg(strstr(trace_buf, "b: http server: GET /hello\n"), "%s", trace_buf);
    ck_assert_msg(strstr(trace_buf, "b: http server: response 200\n"), "%s", trace_buf);
    ck_assert_msg(strstr(trace_buf, "a: http client: ok, status 200, 7.351 ms\n"), "%s",
                  trace_buf);
    ck_assert_int_eq(e.lg.n, 1);
    const http_result_t *r = &e.lg.r[0];
    ck_assert_int_eq(r->outcome, HTTP_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(e.lg.body[0], "hello");
    ck_assert(!r->reused);
    ck_assert_uint_eq(r->syn_retransmits, 0);
    ck_assert_uint_ne(r->flow, 0);
    uint32_t q = (uint32_t)strlen("GET /hello HTTP/1.1\r\nHost: b\r\n\r\n");
    uint32_t p = (uint32_t)strlen("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    /* SYN out, SYN-ACK back: connected */
    sim_time_t t_conn = 2 * (L + ser(SYN_BYTES));
    ck_assert_int_eq(r->t_start, 0);
    ck_assert_int_eq(r->t_connected, t_conn);
    ck_assert_int_eq(r->t_sent, t_conn);
    /* the handshake's ACK, then the request segment behind it on the same link (Linux
     * acknowledges the SYN-ACK at once, before the app writes); the server answers
     * after the service time, its ACK riding on the response */
    sim_time_t t_req_in = t_conn + ser(SEG_BYTES(0)) + ser(SEG_BYTES(q)) + L;
    sim_time_t t_done = t_req_in + svc + ser(SEG_BYTES(p)) + L;
    ck_assert_int_eq(r->t_done, t_done);
    env_free(&e);
}
END_TEST

/* ---- keep-alive vs close ------------------------------------------------------------------ */
START_TEST(keepalive_reuses_one_connection)
{
    env_t e;
    env_new(&e, 0, 0, NULL, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    e.lg.more = 9;                  /* each response triggers the next: 10 in all */
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 5 * SIM_S);
    ck_assert_int_eq(e.lg.n, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(e.lg.r[i].outcome, HTTP_OK);
        ck_assert_int_eq(e.lg.r[i].status, 200);
        ck_assert(e.lg.r[i].reused == (i > 0));
        ck_assert_uint_eq(e.lg.r[i].flow, e.lg.r[0].flow);
    }
    /* a reused request skips the handshake */
    ck_assert_int_eq(e.lg.r[1].t_connected, e.lg.r[1].t_start);
    tcp_stats_t sa = tu_tcp_stats(e.t.a), sb = tu_tcp_stats(e.t.b);
    ck_assert_uint_eq(sa.active_opens, 1);      /* one SYN */
    ck_assert_uint_eq(sb.passive_opens, 1);
    http_server_stats_t ss = srv_stats(&e);
    ck_assert_uint_eq(ss.conns_accepted, 1);
    ck_assert_uint_eq(ss.requests, 10);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 1);
    ck_assert_uint_eq(http_pool_idle_conns(e.pool, e.lg.dst, 80), 1);
    ck_assert_uint_eq(sb.time_wait_now, 0);
    env_free(&e);
}
END_TEST

START_TEST(close_opens_one_connection_per_request)
{
    env_t e;
    http_client_opts_t co = { .keepalive = false };
    env_new(&e, 0, 0, &co, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    e.lg.more = 9;
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 5 * SIM_S);
    ck_assert_int_eq(e.lg.n, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(e.lg.r[i].outcome, HTTP_OK);
        ck_assert(!e.lg.r[i].reused);
        if (i)
            ck_assert_uint_ne(e.lg.r[i].flow, e.lg.r[i - 1].flow);
    }
    tcp_stats_t sa = tu_tcp_stats(e.t.a), sb = tu_tcp_stats(e.t.b);
    ck_assert_uint_eq(sa.active_opens, 10);
    /* the server closed first each time: it holds TIME_WAIT (60 s), the client does not */
    ck_assert_uint_eq(sb.time_wait_now, 10);
    ck_assert_uint_eq(sa.time_wait_now, 0);
    ck_assert_uint_eq(sa.conns_now, 0);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    http_server_stats_t ss = srv_stats(&e);
    ck_assert_uint_eq(ss.conns_accepted, 10);
    ck_assert_uint_eq(ss.conns_open, 0);
    env_free(&e);
}
END_TEST

START_TEST(server_keepalive_timeout_closes_idle)
{
    env_t e;
    env_new(&e, 0, 0, NULL, 5 * SIM_S);
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 4 * SIM_S);
    ck_assert_int_eq(e.lg.n, 1);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 1);
    sim_run(e.t.sim, 6 * SIM_S);
    /* the server closed the idle connection; the pool dropped it on the FIN */
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    http_server_stats_t ss = srv_stats(&e);
    ck_assert_uint_eq(ss.idle_closed, 1);
    tcp_stats_t sb = tu_tcp_stats(e.t.b);
    ck_assert_uint_eq(sb.time_wait_now, 1);
    /* the next request opens a new connection */
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 7 * SIM_S);
    ck_assert_int_eq(e.lg.n, 2);
    ck_assert_int_eq(e.lg.r[1].outcome, HTTP_OK);
    ck_assert(!e.lg.r[1].reused);
    env_free(&e);
}
END_TEST

START_TEST(client_idle_timeout_closes_first)
{
    env_t e;
    http_client_opts_t co = { .keepalive = true, .idle_timeout = 2 * SIM_S };
    env_new(&e, 0, 0, &co, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 1500 * SIM_MS);
    get(&e, "/hello", 80);                  /* reuses it and restarts the idle clock */
    sim_run(e.t.sim, 3 * SIM_S);
    ck_assert_int_eq(e.lg.n, 2);
    ck_assert(e.lg.r[1].reused);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 1);
    sim_run(e.t.sim, 4 * SIM_S);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    tcp_stats_t sa = tu_tcp_stats(e.t.a), sb = tu_tcp_stats(e.t.b);
    ck_assert_uint_eq(sa.time_wait_now, 1);     /* the client closed first this time */
    ck_assert_uint_eq(sb.time_wait_now, 0);
    ck_assert_uint_eq(sb.conns_now, 0);
    env_free(&e);
}
END_TEST

/* A request sent on a kept-alive connection whose FIN from the server is in flight. */
static void late_get_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    get(a, "/hello", 80);
}

START_TEST(stale_connection_race)
{
    env_t e;
    env_new(&e, 0, 0, NULL, 1 * SIM_S);
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 500 * SIM_MS);
    ck_assert_int_eq(e.lg.n, 1);
    /* the server went idle when it sent the response: one link crossing before t_done */
    uint32_t p = (uint32_t)strlen("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    sim_time_t idle = e.lg.r[0].t_done - L - ser(SEG_BYTES(p));
    sim_schedule_at(e.t.sim, idle + SIM_S + L / 2, late_get_cb, &e, NULL);
    sim_run(e.t.sim, 3 * SIM_S);
    ck_assert_int_eq(e.lg.n, 2);
    ck_assert(e.lg.r[1].reused);
    ck_assert_msg(e.lg.r[1].outcome == HTTP_CLOSED || e.lg.r[1].outcome == HTTP_RESET,
                  "outcome %s", http_outcome_name(e.lg.r[1].outcome));
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    env_free(&e);
}
END_TEST

/* ---- locations ---------------------------------------------------------------------------- */
START_TEST(unmatched_path_gets_404)
{
    env_t e;
    env_new(&e, 0, 0, NULL, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    get(&e, "/nope", 80);
    get(&e, "/hell", 80);               /* shorter than the prefix: no match */
    sim_run(e.t.sim, SIM_S);
    ck_assert_int_eq(e.lg.n, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(e.lg.r[i].outcome, HTTP_OK);
        ck_assert_int_eq(e.lg.r[i].status, 404);
        ck_assert_msg(strstr(e.lg.body[i], "<title>404 Not Found</title>"), "%s",
                      e.lg.body[i]);
    }
    ck_assert_uint_eq(app_http_server_hits(e.srv, 1), 2);
    ck_assert_uint_eq(app_http_server_hits(e.srv, 0), 0);
    env_free(&e);
}
END_TEST

START_TEST(location_precedence)
{
    tu_pair_t t;
    tu_pair_new(&t, 3, L, 0, 0);
    app_location_t l[5];
    app_location_init(&l[0], "/", APP_MATCH_PREFIX);
    app_location_init(&l[1], "/app", APP_MATCH_PREFIX);
    app_location_init(&l[2], "/app", APP_MATCH_EXACT);
    app_location_init(&l[3], "/app/x", APP_MATCH_PREFIX);
    app_location_init(&l[4], "/exact-only", APP_MATCH_EXACT);
    for (int i = 0; i < 5; i++)
        l[i].status = 200 + i;
    app_http_server_t *s = app_http_server_new(t.b, 8080, l, 5, NULL, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(app_http_server_match(s, "/app"), 2);          /* exact wins */
    ck_assert_int_eq(app_http_server_match(s, "/app?x=1"), 2);      /* query ignored */
    ck_assert_int_eq(app_http_server_match(s, "/app/"), 1);
    ck_assert_int_eq(app_http_server_match(s, "/apple"), 1);        /* string prefix */
    ck_assert_int_eq(app_http_server_match(s, "/app/xyz"), 3);      /* longest prefix */
    ck_assert_int_eq(app_http_server_match(s, "/other"), 0);
    ck_assert_int_eq(app_http_server_match(s, "/exact-only/"), 0);  /* exact is exact */
    ck_assert_int_eq(app_http_server_match(s, "/exact-only"), 4);

    /* and over the wire */
    rlog_t lg = {0};
    http_pool_t *pool = http_pool_new(t.a, NULL);
    const char *paths[] = { "/app", "/app/", "/app/xyz", "/zzz" };
    const int want[] = { 202, 201, 203, 200 };
    for (int i = 0; i < 4; i++)
        http_pool_request(pool, tu_ip("10.0.0.2"), 8080, http_request_new("GET", "b",
                          paths[i], 0), log_cb, &lg);
    sim_run(t.sim, SIM_S);
    ck_assert_int_eq(lg.n, 4);
    for (int i = 0; i < 4; i++)         /* four connections, same RTT: done in order */
        ck_assert_int_eq(lg.r[i].status, want[i]);
    app_location_t none;
    app_location_init(&none, "/", APP_MATCH_PREFIX);
    int rc = 0;
    ck_assert_ptr_null(app_http_server_new(t.b, 8080, &none, 1, NULL, &rc));
    ck_assert_int_eq(rc, LB_EADDRINUSE);
    http_pool_free(pool);
    app_http_server_free(s);
    tu_pair_free(&t);
}
END_TEST

/* ---- timeouts and errors ------------------------------------------------------------------ */
START_TEST(response_timeout_at_exactly_the_timeout)
{
    env_t e;
    http_client_opts_t co = { .keepalive = true, .response_timeout = 2 * SIM_S };
    env_new(&e, 0, 5 * SIM_S, &co, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 10 * SIM_S);
    ck_assert_int_eq(e.lg.n, 1);
    const http_result_t *r = &e.lg.r[0];
    ck_assert_int_eq(r->outcome, HTTP_RESPONSE_TIMEOUT);
    ck_assert_int_eq(r->status, 0);
    ck_assert_int_eq(r->t_sent, 2 * (L + ser(SYN_BYTES)));
    ck_assert_int_eq(r->t_done, r->t_sent + 2 * SIM_S);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    /* the client reset the connection; the late response went nowhere */
    tcp_stats_t sa = tu_tcp_stats(e.t.a), sb = tu_tcp_stats(e.t.b);
    ck_assert_uint_ge(sa.rst_sent, 1);
    ck_assert_uint_eq(sb.conns_now, 0);
    http_server_stats_t ss = srv_stats(&e);
    ck_assert_uint_eq(ss.conns_failed, 1);
    ck_assert_uint_eq(ss.conns_open, 0);
    env_free(&e);
}
END_TEST

static void late_slow_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    env_t *e = a;
    get(e, "/slow", 80);
}

/* Many requests under one pool's response timeout: each times out at its own send time
 * plus the timeout, whatever completes around it. */
START_TEST(response_timeouts_many)
{
    env_t e;
    memset(&e, 0, sizeof(e));
    tu_pair_new(&e.t, 7, L, 0, 0);
    app_location_t l[2];
    app_location_init(&l[0], "/slow", APP_MATCH_EXACT);
    l[0].service_time = (dist_t){ DIST_CONST, 3.0 * SIM_S, 0 };
    app_location_init(&l[1], "/fast", APP_MATCH_EXACT);
    l[1].service_time = (dist_t){ DIST_CONST, 100.0 * SIM_MS, 0 };
    e.srv = app_http_server_new(e.t.b, 80, l, 2, NULL, NULL);
    http_client_opts_t co = { .keepalive = true, .response_timeout = SIM_S };
    e.pool = http_pool_new(e.t.a, &co);
    e.lg.dst = tu_ip("10.0.0.2");
    for (int i = 0; i < 8; i++)
        get(&e, i % 2 ? "/slow" : "/fast", 80);
    sim_schedule_at(e.t.sim, 500 * SIM_MS, late_slow_cb, &e, NULL);
    sim_run(e.t.sim, 10 * SIM_S);
    ck_assert_int_eq(e.lg.n, 9);
    int ok = 0, to = 0;
    for (int i = 0; i < 9; i++) {
        const http_result_t *r = &e.lg.r[i];
        if (r->outcome == HTTP_OK) {
            ok++;
            ck_assert_int_eq(r->t_done, r->t_sent + 100 * SIM_MS + 2 * L);
        } else {
            to++;
            ck_assert_int_eq(r->outcome, HTTP_RESPONSE_TIMEOUT);
            ck_assert_int_eq(r->t_done, r->t_sent + SIM_S);
        }
    }
    ck_assert_int_eq(ok, 4);
    ck_assert_int_eq(to, 5);
    /* the last one was sent on a connection a fast request had freed */
    ck_assert(e.lg.r[8].reused);
    ck_assert_int_eq(e.lg.r[8].t_done, 500 * SIM_MS + SIM_S);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 3);    /* four fast ones, one reused */
    env_free(&e);
}
END_TEST

START_TEST(connect_refused_without_server)
{
    env_t e;
    env_new(&e, 0, 0, NULL, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    get(&e, "/hello", 81);
    sim_run(e.t.sim, SIM_S);
    ck_assert_int_eq(e.lg.n, 1);
    ck_assert_int_eq(e.lg.r[0].outcome, HTTP_CONNECT_REFUSED);
    ck_assert_int_eq(e.lg.r[0].t_connected, -1);
    /* SYN out, RST back */
    ck_assert_int_eq(e.lg.r[0].t_done, L + ser(SYN_BYTES) + L + ser(SEG_BYTES(0)));
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    env_free(&e);
}
END_TEST

START_TEST(connect_timeout_when_syns_are_lost)
{
    env_t e;
    http_client_opts_t co = { .keepalive = true, .connect_timeout = 10 * SIM_S };
    env_new(&e, 1.0, 0, &co, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    get(&e, "/hello", 80);
    sim_run(e.t.sim, 60 * SIM_S);
    ck_assert_int_eq(e.lg.n, 1);
    ck_assert_int_eq(e.lg.r[0].outcome, HTTP_CONNECT_TIMEOUT);
    ck_assert_int_eq(e.lg.r[0].t_done, 10 * SIM_S);
    /* SYNs at 0, 1, 3 and 7 s (initial RTO 1 s, doubling): three retransmissions */
    ck_assert_uint_eq(e.lg.r[0].syn_retransmits, 3);
    ck_assert_uint_eq(http_pool_open_conns(e.pool), 0);
    env_free(&e);
}
END_TEST

START_TEST(no_free_port_and_no_route)
{
    env_t e;
    env_new(&e, 0, 100 * SIM_MS, NULL, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    tcp_params_t tp;
    tcp_params_default(&tp);
    tp.port_lo = tp.port_hi = 40000;        /* one ephemeral port */
    tcp_stack_set_params(e.t.a, &tp);
    get(&e, "/hello", 80);
    get(&e, "/hello", 80);                  /* needs a second connection: no port left */
    ck_assert_int_eq(e.lg.n, 0);            /* never reported from inside the call */
    http_pool_request(e.pool, tu_ip("192.168.7.7"), 80,
                      http_request_new("GET", NULL, "/", 0), log_cb, &e.lg);
    sim_run(e.t.sim, SIM_S);
    ck_assert_int_eq(e.lg.n, 3);
    /* the failures are reported at once (same simulated time), the success later */
    ck_assert_int_eq(e.lg.r[0].outcome, HTTP_NO_PORT);
    ck_assert_int_eq(e.lg.r[0].t_done, 0);
    ck_assert_int_eq(e.lg.r[1].outcome, HTTP_UNREACHABLE);
    ck_assert_int_eq(e.lg.r[1].t_done, 0);
    ck_assert_int_eq(e.lg.r[2].outcome, HTTP_OK);
    ck_assert_uint_eq(http_pool_pending(e.pool), 0);
    env_free(&e);
}
END_TEST

START_TEST(max_conns_per_dest_queues)
{
    env_t e;
    http_client_opts_t co = { .keepalive = true, .max_conns_per_dest = 1 };
    env_new(&e, 0, 10 * SIM_MS, &co, HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
    for (int i = 0; i < 3; i++)
        get(&e, "/hello", 80);
    ck_assert_uint_eq(http_pool_pending(e.pool), 3);
    sim_run(e.t.sim, SIM_S);
    ck_assert_int_eq(e.lg.n, 3);
    tcp_stats_t sa = tu_tcp_stats(e.t.a);
    ck_assert_uint_eq(sa.active_opens, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(e.lg.r[i].outcome, HTTP_OK);
        ck_assert(e.lg.r[i].reused == (i > 0));
        ck_assert_int_eq(e.lg.r[i].t_start, 0);
    }
    /* the waiting request got the connection when the previous response arrived */
    ck_assert_int_eq(e.lg.r[1].t_connected, e.lg.r[0].t_done);
    ck_assert_int_eq(e.lg.r[2].t_connected, e.lg.r[1].t_done);
    ck_assert_uint_eq(http_pool_pending(e.pool), 0);
    env_free(&e);
}
END_TEST

/* ---- the server half on its own ----------------------------------------------------------- */
typedef struct raw {
    int n;
    int status[8];
    sim_time_t t[8];
    bool eof;
    int err;
    http_msg_t *send[4];
    int nsend;
} raw_t;

static void raw_connected(tcp_conn_t *c, void *data)
{
    raw_t *r = data;
    for (int i = 0; i < r->nsend; i++) {    /* pipelined: all at once */
        ck_assert_int_eq(tcp_send(c, &r->send[i]->base), 0);
        net_msg_unref(&r->send[i]->base);
    }
}

static void raw_recv(tcp_conn_t *c, net_msg_t *msg, void *data)
{
    (void)c;
    raw_t *r = data;
    http_msg_t *m = http_msg_from(msg);
    ck_assert_ptr_nonnull(m);
    r->status[r->n] = m->status;
    r->t[r->n++] = sim_now(net_sim(tcp_conn_node(c)->net));
}

static void raw_eof(tcp_conn_t *c, void *data)
{
    ((raw_t *)data)->eof = true;
    tcp_close(c);
}

static void raw_error(tcp_conn_t *c, int rc, void *data)
{
    (void)c;
    ((raw_t *)data)->err = rc;
}

static const tcp_cbs_t raw_cbs = { raw_connected, raw_recv, raw_eof, raw_error };

/* a connects to b:80 with the raw callbacks (r's messages go out once connected); runs 1 s. */
static void raw_run(tu_pair_t *t, raw_t *r)
{
    int rc;
    ck_assert_ptr_nonnull(tcp_connect(t->a, tu_ip("10.0.0.2"), 80, NULL, &raw_cbs, r, &rc));
    sim_run(t->sim, SIM_S);
}

START_TEST(server_answers_pipelined_requests_in_order)
{
    tu_pair_t t;
    tu_pair_new(&t, 3, L, 0, 0);
    app_location_t l[2];
    app_location_init(&l[0], "/slow", APP_MATCH_EXACT);
    l[0].status = 201;
    l[0].service_time = (dist_t){ DIST_CONST, 50.0 * SIM_MS, 0 };
    app_location_init(&l[1], "/fast", APP_MATCH_EXACT);
    l[1].status = 202;
    app_http_server_t *s = app_http_server_new(t.b, 80, l, 2, NULL, NULL);
    raw_t r = { .nsend = 3 };
    r.send[0] = http_request_new("GET", "b", "/slow", 0);
    r.send[1] = http_request_new("GET", "b", "/fast", 0);
    r.send[2] = http_request_new("GET", "b", "/fast", 0);
    http_header_set(r.send[2], "Connection", "close");
    raw_run(&t, &r);
    /* in request order although /fast was ready first; the server processes one request
     * at a time (nginx), so the second waits for the first */
    ck_assert_int_eq(r.n, 3);
    ck_assert_int_eq(r.status[0], 201);
    ck_assert_int_eq(r.status[1], 202);
    ck_assert_int_eq(r.status[2], 202);
    ck_assert_int_eq(r.t[0], 4 * L + 50 * SIM_MS);  /* SYN, SYN-ACK, request, response */
    ck_assert_int_ge(r.t[1], r.t[0]);
    /* Connection: close on the last request: the server closed after answering it */
    ck_assert(r.eof);
    tcp_stats_t sb = tu_tcp_stats(t.b);
    ck_assert_uint_eq(sb.time_wait_now, 1);
    app_http_server_free(s);
    tu_pair_free(&t);
}
END_TEST

START_TEST(server_rejects_non_http_with_400)
{
    tu_pair_t t;
    tu_pair_new(&t, 3, L, 0, 0);
    app_http_server_t *s = root_server(&t, NULL, 0);
    raw_t r = { .nsend = 1 };
    r.send[0] = (http_msg_t *)(void *)net_msg_raw(100);     /* sent as a plain message */
    raw_run(&t, &r);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.status[0], 400);
    ck_assert(r.eof);
    app_http_server_free(s);
    tu_pair_free(&t);
}
END_TEST

/* A handler that exercises the exchange API: /reset resets, /later answers after 100 ms
 * unless the client is gone, anything else answers with the peer's address. */
typedef struct later { http_exchange_t *ex; int dead_seen; } later_t;

static void later_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    later_t *lt = a;
    if (http_exchange_dead(lt->ex))
        lt->dead_seen++;
    http_respond(lt->ex, http_response_new(200, "late", 0));
}

static void custom_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    later_t *lt = data;
    char buf[16];
    ck_assert_uint_eq(http_exchange_local_addr(ex), tu_ip("10.0.0.2"));
    ck_assert_ptr_nonnull(http_exchange_node(ex));
    ck_assert_uint_ne(http_exchange_flow(ex), 0);
    ck_assert_uint_ge(http_exchange_peer_port(ex), 32768);
    ck_assert(!http_exchange_dead(ex));
    if (strcmp(req->path, "/reset") == 0) {
        http_exchange_reset(ex);
    } else if (strcmp(req->path, "/later") == 0) {
        lt->ex = ex;
        sim_schedule(net_sim(http_exchange_node(ex)->net), 100 * SIM_MS, later_cb, lt, NULL);
    } else {
        http_respond(ex, http_response_new(200, lb_ip_str(http_exchange_peer_addr(ex), buf),
                                           0));
    }
}

START_TEST(server_exchange_api)
{
    tu_pair_t t;
    tu_pair_new(&t, 3, L, 0, 0);
    later_t lt = {0};
    http_server_opts_t so = { .keepalive_timeout = 0, .max_requests_per_conn = 2 };
    int rc = -1;
    http_server_t *srv = http_server_new(t.b, 0, 80, &so, custom_handler, &lt, &rc);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(rc, 0);
    http_client_opts_t co = { .keepalive = true, .response_timeout = 50 * SIM_MS };
    http_pool_t *pool = http_pool_new(t.a, &co);
    rlog_t lg = {0};
    uint32_t dst = tu_ip("10.0.0.2");
    http_pool_request(pool, dst, 80, http_request_new("GET", "b", "/who", 0), log_cb, &lg);
    sim_run(t.sim, SIM_S);
    ck_assert_int_eq(lg.n, 1);
    ck_assert_str_eq(lg.body[0], "10.0.0.1");
    /* max_requests_per_conn 2 (nginx keepalive_requests): the second response closes */
    http_pool_request(pool, dst, 80, http_request_new("GET", "b", "/who", 0), log_cb, &lg);
    sim_run(t.sim, 2 * SIM_S);
    ck_assert_int_eq(lg.n, 2);
    ck_assert(lg.r[1].reused);
    ck_assert_uint_eq(http_pool_open_conns(pool), 0);
    http_pool_request(pool, dst, 80, http_request_new("GET", "b", "/reset", 0), log_cb, &lg);
    sim_run(t.sim, 3 * SIM_S);
    ck_assert_int_eq(lg.n, 3);
    ck_assert(!lg.r[2].reused);
    ck_assert_int_eq(lg.r[2].outcome, HTTP_RESET);
    /* the client gives up after 50 ms and resets; the late answer sees a dead exchange */
    http_pool_request(pool, dst, 80, http_request_new("GET", "b", "/later", 0), log_cb, &lg);
    sim_run(t.sim, 4 * SIM_S);
    ck_assert_int_eq(lg.n, 4);
    ck_assert_int_eq(lg.r[3].outcome, HTTP_RESPONSE_TIMEOUT);
    ck_assert_int_eq(lt.dead_seen, 1);
    http_server_stats_t ss;
    http_server_stats(srv, &ss);
    ck_assert_uint_eq(ss.conns_accepted, 3);
    ck_assert_uint_eq(ss.requests, 4);
    ck_assert_uint_eq(ss.conns_open, 0);
    http_pool_free(pool);
    http_server_free(srv);
    tu_pair_free(&t);
}
END_TEST

/* ---- a proxy from the two halves ---------------------------------------------------------
 * What the L7 load balancers will do: accept on a server, forward each request through a
 * pool, answer with what comes back (502 when the upstream fails). a -- b -- c. */
typedef struct proxy { http_pool_t *pool; uint32_t upstream; uint16_t port; } proxy_t;

static void proxy_result(const http_result_t *r, void *data)
{
    http_exchange_t *ex = data;
    http_respond(ex, r->outcome == HTTP_OK ? http_msg_copy(r->resp)
                                           : http_response_new(502, NULL, 0));
}

static void proxy_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    proxy_t *p = data;
    char buf[16];
    http_msg_t *up = http_msg_copy(req);
    http_header_set(up, "X-Forwarded-For", lb_ip_str(http_exchange_peer_addr(ex), buf));
    ck_assert_uint_eq(up->base.size, req->base.size + strlen("X-Forwarded-For: 10.0.0.1\r\n"));
    http_pool_request(p->pool, p->upstream, p->port, up, proxy_result, ex);
}

static void xff_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    (void)data;
    const char *xff = http_header_get(req, "x-forwarded-for");
    http_respond(ex, http_response_new(200, xff ? xff : "none", 0));
}

START_TEST(proxy_from_server_and_pool)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *a = net_node_add(net, "a"), *b = net_node_add(net, "b");
    net_node_t *c = net_node_add(net, "c");
    net_link_params_t lp = { .latency = L };
    net_link_new(net, net_iface_add(a, "eth0", tu_ip("10.0.0.1"), 24),
                 net_iface_add(b, "eth0", tu_ip("10.0.0.2"), 24), &lp);
    net_link_new(net, net_iface_add(b, "eth1", tu_ip("10.0.1.1"), 24),
                 net_iface_add(c, "eth0", tu_ip("10.0.1.2"), 24), &lp);
    http_server_t *up = http_server_new(c, 0, 80, NULL, xff_handler, NULL, NULL);
    proxy_t px = { http_pool_new(b, NULL), tu_ip("10.0.1.2"), 80 };
    http_server_t *front = http_server_new(b, 0, 80, NULL, proxy_handler, &px, NULL);
    http_pool_t *client = http_pool_new(a, NULL);
    rlog_t lg = {0};
    http_pool_request(client, tu_ip("10.0.0.2"), 80, http_request_new("GET", "x", "/", 0),
                      log_cb, &lg);
    sim_run(sim, SIM_S);
    ck_assert_int_eq(lg.n, 1);
    ck_assert_int_eq(lg.r[0].status, 200);
    ck_assert_str_eq(lg.body[0], "10.0.0.1");   /* the upstream saw the client's address */
    /* two handshakes and two request/response crossings, one link each: 8 L */
    ck_assert_int_eq(lg.r[0].t_done, 8 * L);
    /* upstream port closed: the proxy's pool gets refused and answers 502 */
    px.port = 81;
    http_pool_request(client, tu_ip("10.0.0.2"), 80, http_request_new("GET", "x", "/", 0),
                      log_cb, &lg);
    sim_run(sim, 2 * SIM_S);
    ck_assert_int_eq(lg.n, 2);
    ck_assert_int_eq(lg.r[1].outcome, HTTP_OK);
    ck_assert_int_eq(lg.r[1].status, 502);
    ck_assert(lg.r[1].reused);
    http_pool_free(client);
    http_server_free(front);
    http_pool_free(px.pool);
    http_server_free(up);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* ---- traffic client app ------------------------------------------------------------------- */

/* Client options (app_http_client_opts_init) aimed at b alone: *dst, which must outlive the
 * options, is set to b's address. */
static void client_opts_b(app_http_client_opts_t *o, uint32_t *dst)
{
    *dst = tu_ip("10.0.0.2");
    app_http_client_opts_init(o);
    o->targets = dst;
    o->n_targets = 1;
}

static void client_run(int arrival, double rate, uint64_t *issued, uint64_t *ok,
                       uint64_t *in_bucket3)
{
    tu_pair_t t;
    tu_pair_new(&t, 11, L, 0, 0);
    app_http_server_t *s = root_server(&t, "ok", 0);
    metrics_t *m = metrics_new(SIM_S, 10 * SIM_S);
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.name = "browse";
    o.rate = rate;
    o.arrival = arrival;
    o.stop = 10 * SIM_S;
    int rc = -1;
    app_http_client_t *c = app_http_client_new(&t.a, 1, &o, m, &rc);
    ck_assert_ptr_nonnull(c);
    sim_run(t.sim, 11 * SIM_S);
    app_http_client_stats_t st;
    app_http_client_stats(c, &st);
    *issued = st.issued;
    ck_assert_uint_eq(st.completed, st.issued);
    int src = metrics_source_find(m, "browse");
    ck_assert_int_eq(src, 0);
    *ok = metrics_requests(m, src, 1u << M_2XX, (m_window_t){ 0, SIM_TIME_MAX });
    *in_bucket3 = metrics_bucket(m, src, 3, M_2XX);
    app_http_client_free(c);
    app_http_server_free(s);
    metrics_free(m);
    tu_pair_free(&t);
}

START_TEST(open_loop_constant_rate)
{
    uint64_t issued, ok, b3;
    client_run(APP_ARRIVAL_CONSTANT, 100, &issued, &ok, &b3);
    ck_assert_uint_eq(issued, 1000);
    ck_assert_uint_eq(ok, 1000);
    ck_assert_uint_eq(b3, 100);
}
END_TEST

START_TEST(open_loop_poisson_rate)
{
    uint64_t issued, ok, b3;
    client_run(APP_ARRIVAL_POISSON, 100, &issued, &ok, &b3);
    /* 1000 expected, standard deviation ~32 */
    ck_assert_msg(issued > 900 && issued < 1100, "%llu", (unsigned long long)issued);
    ck_assert_uint_eq(ok, issued);
    ck_assert_msg(b3 > 60 && b3 < 140, "%llu", (unsigned long long)b3);
    /* same seed, same result */
    uint64_t issued2, ok2, b32;
    client_run(APP_ARRIVAL_POISSON, 100, &issued2, &ok2, &b32);
    ck_assert_uint_eq(issued2, issued);
    ck_assert_uint_eq(b32, b3);
}
END_TEST

typedef struct seen { int n; int per_path[3]; sim_time_t last_start; } seen_t;

static void seen_cb(const http_result_t *r, const char *path, void *data)
{
    seen_t *s = data;
    s->n++;
    s->per_path[path[1] - 'a']++;
    if (r->t_start > s->last_start)
        s->last_start = r->t_start;
}

START_TEST(closed_loop_users_and_requests)
{
    tu_pair_t t;
    tu_pair_new(&t, 5, L, 0, 0);
    app_http_server_t *s = root_server(&t, NULL, 20 * SIM_MS);
    metrics_t *m = metrics_new(SIM_S, 20 * SIM_S);
    const char *paths[] = { "/a", "/b", "/c" };
    seen_t seen = {0};
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.name = "users";
    o.paths = paths;
    o.n_paths = 3;
    o.mode = APP_CLIENT_CLOSED;
    o.users = 3;
    o.requests = 4;
    o.think_time = (dist_t){ DIST_CONST, 100.0 * SIM_MS, 0 };
    o.on_result = seen_cb;
    o.on_result_data = &seen;
    app_http_client_t *c = app_http_client_new(&t.a, 1, &o, m, NULL);
    ck_assert_ptr_nonnull(c);
    sim_run(t.sim, 20 * SIM_S);
    app_http_client_stats_t st;
    app_http_client_stats(c, &st);
    ck_assert_uint_eq(st.issued, 12);
    ck_assert_uint_eq(st.completed, 12);
    ck_assert_int_eq(seen.n, 12);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(seen.per_path[i], 4);  /* paths rotate per request */
    /* users start spread over the 1 s ramp-up: 0, 1/3 s, 2/3 s; each cycle is
     * handshake-free after the first, so the last user's last request starts after 2/3 s */
    ck_assert_int_gt(seen.last_start, 666 * SIM_MS);
    ck_assert_uint_eq(metrics_requests(m, 0, 1u << M_2XX, (m_window_t){ 0, SIM_TIME_MAX }), 12);
    /* at most three connections: one per concurrent user */
    tcp_stats_t sa = tu_tcp_stats(t.a);
    ck_assert_uint_le(sa.active_opens, 3);
    app_http_client_free(c);
    app_http_server_free(s);
    metrics_free(m);
    tu_pair_free(&t);
}
END_TEST

START_TEST(client_stops_at_stop)
{
    tu_pair_t t;
    tu_pair_new(&t, 5, L, 0, 0);
    app_http_server_t *s = root_server(&t, NULL, 0);
    seen_t seen = {0};
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.mode = APP_CLIENT_CLOSED;
    o.users = 2;
    o.ramp_up = 0;
    o.start = 1 * SIM_S;
    o.stop = 3 * SIM_S;
    o.think_time = (dist_t){ DIST_CONST, 250.0 * SIM_MS, 0 };
    o.paths = (const char *const[]){ "/a" };
    o.n_paths = 1;
    o.on_result = seen_cb;
    o.on_result_data = &seen;
    app_http_client_t *c = app_http_client_new(&t.a, 1, &o, NULL, NULL);
    sim_run(t.sim, 10 * SIM_S);
    ck_assert_int_ge(seen.n, 2 * 7);
    ck_assert_int_lt(seen.last_start, 3 * SIM_S);
    ck_assert_int_ge(seen.last_start, 2500 * SIM_MS);
    /* nothing keeps the run going: idle connections time out (75 s), TIME_WAIT ends
     * (60 s), and then the queue is empty */
    int n = seen.n;
    sim_run(t.sim, SIM_TIME_MAX);
    ck_assert_uint_eq(sim_events_pending(t.sim), 0);
    ck_assert_int_eq(seen.n, n);
    ck_assert_int_lt(sim_now(t.sim), 200 * SIM_S);
    app_http_client_stats_t st;
    app_http_client_stats(c, &st);
    ck_assert_uint_eq(st.issued, st.completed);
    /* bad options are refused, not asserted */
    int rc = 0;
    o.users = 0;
    ck_assert_ptr_null(app_http_client_new(&t.a, 1, &o, NULL, &rc));
    ck_assert_int_eq(rc, LB_EINVAL);
    app_http_client_free(c);
    app_http_server_free(s);
    tu_pair_free(&t);
}
END_TEST

/* Every default of a parameter table parses (required parameters aside). */
static void check_defaults(const elem_param_t *params)
{
    char err[256];
    for (const elem_param_t *p = params; p->name; p++) {
        if (!p->def)
            continue;
        elem_param_t one[2] = { *p, { NULL, 0, NULL, NULL, NULL, NULL } };
        elem_cfg_t *c = elem_cfg_defaults(one, err, sizeof(err));
        ck_assert_msg(c != NULL, "%s: %s", p->name, err);
        if (strcmp(p->name, "keepalive-timeout") == 0)   /* nginx's 75 s */
            ck_assert_int_eq(elem_int(c, p->name), HTTP_KEEPALIVE_TIMEOUT_DEFAULT);
        if (strcmp(p->name, "ramp-up") == 0)
            ck_assert_int_eq(elem_int(c, p->name), APP_CLIENT_RAMP_UP_DEFAULT);
        if (strcmp(p->name, "port") == 0)
            ck_assert_int_eq(elem_int(c, p->name), 80);
        elem_cfg_free(c);
    }
}

static void host_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    snprintf(data, 64, "%s", req->host ? req->host : "(none)");
    http_respond(ex, http_response_new(200, NULL, 0));
}

START_TEST(client_host_header)
{
    tu_pair_t t;
    tu_pair_new(&t, 5, L, 0, 0);
    char seen80[64] = "", seen8080[64] = "", seen_named[64] = "";
    http_server_t *s80 = http_server_new(t.b, 0, 80, NULL, host_handler, seen80, NULL);
    http_server_t *s8080 = http_server_new(t.b, 0, 8080, NULL, host_handler, seen8080, NULL);
    http_server_t *s81 = http_server_new(t.b, 0, 81, NULL, host_handler, seen_named, NULL);
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.mode = APP_CLIENT_CLOSED;
    o.requests = 1;
    app_http_client_t *c1 = app_http_client_new(&t.a, 1, &o, NULL, NULL);
    o.port = 8080;
    app_http_client_t *c2 = app_http_client_new(&t.a, 1, &o, NULL, NULL);
    o.port = 81;
    o.host = "shop.example.com";
    app_http_client_t *c3 = app_http_client_new(&t.a, 1, &o, NULL, NULL);
    sim_run(t.sim, SIM_S);
    /* HTTP/1.1 requires Host (RFC 9112 3.2); for a bare address curl sends the address,
     * with the port when it is not 80 */
    ck_assert_str_eq(seen80, "10.0.0.2");
    ck_assert_str_eq(seen8080, "10.0.0.2:8080");
    ck_assert_str_eq(seen_named, "shop.example.com");
    app_http_client_free(c1);
    app_http_client_free(c2);
    app_http_client_free(c3);
    http_server_free(s80);
    http_server_free(s8080);
    http_server_free(s81);
    tu_pair_free(&t);
}
END_TEST

/* What a server saw of each request: kinds counted by method + path, the x-canary header,
 * the body size and the wire size. */
typedef struct kind_seen {
    int get_a, post_b, canary, plain, host_b;
    uint32_t post_body, post_wire, get_wire;
    char order[64];                 /* the first requests' kinds, 'a' or 'b' */
    size_t n;
} kind_seen_t;

static void kind_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    kind_seen_t *s = data;
    bool post = strcmp(req->method, "POST") == 0 && strcmp(req->path, "/b") == 0;
    bool get = strcmp(req->method, "GET") == 0 && strcmp(req->path, "/a") == 0;
    s->get_a += get;
    s->post_b += post;
    const char *c = http_header_get(req, "X-Canary");
    if (post) {
        s->canary += c && strcmp(c, "true") == 0;
        s->host_b += req->host && strcmp(req->host, "b.example") == 0;
        s->post_body = req->body_size;
        s->post_wire = req->base.size;
        ck_assert_str_eq(req->body, "x=1&y=2");
    }
    if (get) {
        s->plain += c && strcmp(c, "false") == 0;
        s->get_wire = req->base.size;
    }
    if (s->n + 1 < sizeof s->order)
        s->order[s->n++] = post ? 'b' : 'a';
    http_respond(ex, http_response_new(200, post ? "from b" : "from a", 0));
}

/* Request kinds: each request is one kind, drawn by weight from the node's kind stream;
 * a kind's headers add to (or replace) the source's; its body counts on the wire. */
static void run_kinds(uint64_t seed, kind_seen_t *s)
{
    tu_pair_t t;
    tu_pair_new(&t, seed, L, 0, 0);
    memset(s, 0, sizeof *s);
    http_server_t *srv = http_server_new(t.b, 0, 80, NULL, kind_handler, s, NULL);
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.name = "mix";
    o.rate = 100;
    o.requests = 400;
    static const char *const src_hdrs[] = { "X-Canary: false", "X-Team: web" };
    static const char *const b_hdrs[] = { "x-canary: true", "Host: b.example" };
    app_request_kind_t kinds[] = {
        { .weight = 3, .path = "/a", .body_size = -1 },
        { .weight = 1, .method = "POST", .path = "/b", .headers = b_hdrs, .n_headers = 2,
          .body = "x=1&y=2", .body_size = -1 },
    };
    o.headers = src_hdrs;
    o.n_headers = 2;
    o.kinds = kinds;
    o.n_kinds = 2;
    app_http_client_t *c = app_http_client_new(&t.a, 1, &o, NULL, NULL);
    ck_assert_ptr_nonnull(c);
    sim_run(t.sim, 10 * SIM_S);
    app_http_client_free(c);
    http_server_free(srv);
    tu_pair_free(&t);
}

START_TEST(client_request_kinds)
{
    kind_seen_t s, again;
    run_kinds(21, &s);
    ck_assert_int_eq(s.get_a + s.post_b, 400);
    /* 1 in 4 by weight: 100 expected, binomial sd ~8.7 */
    ck_assert_msg(s.post_b > 70 && s.post_b < 130, "%d POSTs of 400", s.post_b);
    ck_assert_int_eq(s.canary, s.post_b);           /* the kind's value replaced the source's */
    ck_assert_int_eq(s.plain, s.get_a);
    ck_assert_int_eq(s.host_b, s.post_b);
    ck_assert_uint_eq(s.post_body, 7);
    /* the POST carries its body and Content-Length: 7 on the wire; its headers differ from
     * the GET's by the method, path, Host and X-Canary values */
    http_msg_t *g = http_request_new("GET", "10.0.0.2", "/a", 0);
    http_header_set(g, "X-Canary", "false");
    http_header_set(g, "X-Team", "web");
    http_msg_t *p = http_request_new("POST", "b.example", "/b", 7);
    http_header_set(p, "X-Canary", "true");
    http_header_set(p, "X-Team", "web");
    ck_assert_uint_eq(s.get_wire, g->base.size);
    ck_assert_uint_eq(s.post_wire, p->base.size);
    /* POST +1, b.example +1, "true" -1, "Content-Length: 7\r\n" 19, the body 7 */
    ck_assert_uint_eq(p->base.size - g->base.size, 1 + 1 - 1 + 19 + 7);
    net_msg_unref(&g->base);
    net_msg_unref(&p->base);
    /* the same seed draws the same kinds in the same order; another seed others */
    run_kinds(21, &again);
    ck_assert_str_eq(again.order, s.order);
    run_kinds(22, &again);
    ck_assert_str_ne(again.order, s.order);
}
END_TEST

/* What the metrics saw of a response (a record hook). */
typedef struct resp_seen { char body[64], served[64], raw[64]; int n; } resp_seen_t;

static void resp_hook(void *data, const m_request_t *r)
{
    resp_seen_t *s = data;
    s->n++;
    snprintf(s->body, sizeof s->body, "%s", r->body ? r->body : "");
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, "x-served-by") == 0)
            snprintf(s->served, sizeof s->served, "%s", r->headers[i].value);
        if (strcasecmp(r->headers[i].name, "x-raw") == 0)
            snprintf(s->raw, sizeof s->raw, "%s", r->headers[i].value);
    }
}

/* nginx's $hostname in a response body or header is the serving node's name (a pod's:
 * its name), so a backend can say who served a request; the metrics see what came back. */
START_TEST(server_hostname_and_recorded_response)
{
    tu_pair_t t;
    tu_pair_new(&t, 5, L, 0, 0);
    static const char *const hdrs[] = { "X-Served-By: ${hostname}", "X-Raw: $hostnames" };
    app_location_t loc;
    app_location_init(&loc, "/", APP_MATCH_PREFIX);
    loc.body = "pod $hostname!";
    loc.headers = hdrs;
    loc.n_headers = 2;
    app_http_server_t *srv = app_http_server_new(t.b, 80, &loc, 1, NULL, NULL);
    metrics_t *m = metrics_new(SIM_S, 2 * SIM_S);
    resp_seen_t seen = { .n = 0 };
    metrics_set_record_hook(m, resp_hook, &seen);
    metrics_want(m, M_WANT_HEADERS);                /* headers are passed when asked for */
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.mode = APP_CLIENT_CLOSED;
    o.requests = 1;
    app_http_client_t *c = app_http_client_new(&t.a, 1, &o, m, NULL);
    sim_run(t.sim, SIM_S);
    ck_assert_int_eq(seen.n, 1);
    ck_assert_str_eq(seen.body, "pod b!");
    ck_assert_str_eq(seen.served, "b");
    ck_assert_str_eq(seen.raw, "$hostnames");       /* another variable: as written */
    app_http_client_free(c);
    app_http_server_free(srv);
    metrics_free(m);
    tu_pair_free(&t);
}
END_TEST

START_TEST(client_request_kinds_invalid)
{
    tu_pair_t t;
    tu_pair_new(&t, 5, L, 0, 0);
    uint32_t dst;
    app_http_client_opts_t o;
    client_opts_b(&o, &dst);
    o.rate = 10;
    app_request_kind_t k = { .weight = 0, .body_size = -1 };
    o.kinds = &k;
    o.n_kinds = 1;
    int rc = 0;
    ck_assert_ptr_null(app_http_client_new(&t.a, 1, &o, NULL, &rc));   /* weight 0 */
    ck_assert_int_eq(rc, LB_EINVAL);
    static const char *const bad[] = { "no colon" };
    k.weight = 1;
    k.headers = bad;
    k.n_headers = 1;
    ck_assert_ptr_null(app_http_client_new(&t.a, 1, &o, NULL, &rc));
    static const char *const clen[] = { "Content-Length: 5" };
    k.headers = clen;
    ck_assert_ptr_null(app_http_client_new(&t.a, 1, &o, NULL, &rc));
    ck_assert_ptr_nonnull(app_header_check("x y: 1"));
    ck_assert_ptr_null(app_header_check("x-canary: true"));
    tu_pair_free(&t);
}
END_TEST

START_TEST(element_types_registered)
{
    elem_register_builtin();
    const elem_type_t *srv = elem_type_find("http-server");
    const elem_type_t *cli = elem_type_find("http-client");
    ck_assert_ptr_nonnull(srv);
    ck_assert_ptr_nonnull(cli);
    ck_assert_int_eq(srv->section, ELEM_APP);
    ck_assert_int_eq(cli->section, ELEM_TRAFFIC);
    check_defaults(cli->params);
    check_defaults(srv->params);
    const elem_param_t *locs = NULL;
    for (const elem_param_t *p = srv->params; p->name; p++)
        if (strcmp(p->name, "locations") == 0)
            locs = p->sub;
    ck_assert_ptr_nonnull(locs);
    check_defaults(locs);
}
END_TEST

/* ---- the element types through the scenario loader and builder ---------------------------- */
#define SCN_TOPO \
    "name: t\nduration: 10s\n" \
    "nodes:\n" \
    "  c: { type: host, count: 2 }\n" \
    "  r: { type: router }\n" \
    "  web: { type: host, count: 2 }\n" \
    "links:\n" \
    "  - { between: [c, r], latency: 1ms }\n" \
    "  - { between: [r, web], latency: 1ms }\n"

static int build_yaml(const char *yaml, scn_t **s, scn_run_t **r, char *err, size_t n)
{
    scn_diag_t d;
    *s = NULL;
    *r = NULL;
    int rc = scn_load_string(yaml, "t.yaml", s, &d, NULL);
    if (rc == 0)
        rc = scn_run_new(*s, 0, scn_seed(*s), r, &d);
    if (rc < 0)
        snprintf(err, n, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    return rc;
}

START_TEST(elements_from_yaml)
{
    elem_register_builtin();
    const char *yaml = SCN_TOPO
        "apps:\n"
        "  site:\n"
        "    type: http-server\n"
        "    on: web\n"
        "    locations:\n"
        "      - { path: /app, body: hi }\n"
        "      - { path: /health, match: exact, status: 204 }\n"
        "      - { path: /big, body-size: 20KB, headers: [\"X-Test: 1\"] }\n"
        "traffic:\n"
        "  browse:\n"
        "    type: http-client\n"
        "    from: c\n"
        "    to: web\n"
        "    path: [/app, /health, /big, /missing]\n"
        "    rate: 100/s\n"
        "    arrival: constant\n";
    scn_t *s;
    scn_run_t *r;
    char err[1200];
    int rc = build_yaml(yaml, &s, &r, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    metrics_t *m = scn_run_metrics(r);
    int src = metrics_source_find(m, "browse");
    ck_assert_int_ge(src, 0);
    m_window_t all = { 0, SIM_TIME_MAX };
    /* 100/s over two client nodes, evenly interleaved: exactly 1000 in 10 s; the few still
     * in flight when the run ends are not recorded */
    uint64_t n = metrics_requests(m, src, M_ALL_CLASSES, all);
    ck_assert_msg(n >= 996 && n <= 1000, "%llu", (unsigned long long)n);
    uint64_t n2 = metrics_requests(m, src, 1u << M_2XX, all);
    uint64_t n4 = metrics_requests(m, src, 1u << M_4XX, all);
    ck_assert_uint_eq(n2 + n4, n);              /* paths rotate: 3 of 4 are served */
    ck_assert_msg(n4 >= 249 && n4 <= 250, "%llu", (unsigned long long)n4);
    /* each client node's first connection goes to its own target */
    tcp_stats_t w0, w1;
    tcp_stack_stats(scn_run_node(r, "web0"), &w0);
    tcp_stack_stats(scn_run_node(r, "web1"), &w1);
    ck_assert_uint_ge(w0.passive_opens, 1);
    ck_assert_uint_ge(w1.passive_opens, 1);
    /* the 20 KB body takes longer than the 2-byte one: p99 of 2xx is above p25 */
    ck_assert_int_gt(metrics_latency_q(m, src, 1u << M_2XX, 0.99, all),
                     metrics_latency_q(m, src, 1u << M_2XX, 0.25, all));
    scn_run_free(r);
    scn_free(s);
}
END_TEST

static const struct { const char *yaml, *want; } bad_elems[] = {
    { SCN_TOPO "traffic:\n  b: { type: http-client, from: c, to: web }\n",
      "t.yaml:11:6: http-client 'b': open mode needs a rate > 0 (e.g. rate: 50/s)" },
    { SCN_TOPO "traffic:\n  b: { type: http-client, from: c, to: nowhere, rate: 1/s }\n",
      "t.yaml:11:40: http-client 'b': 'nowhere' is neither an IPv4 address nor a node" },
    { SCN_TOPO "traffic:\n  b: { type: http-client, from: x, to: web, rate: 1/s }\n",
      "t.yaml:11:33: http-client 'b': no node matches 'x'" },
    { SCN_TOPO "traffic:\n  b: { type: http-client, from: c, to: web, rate: 1/s, path: app }\n",
      "t.yaml:11:62: path 'app' must start with '/'" },
    { SCN_TOPO "traffic:\n  b: { type: http-client, from: c, to: web, mode: closed, users: 0 }\n",
      "t.yaml:11:66: users 0: expected 1 to 1000000" },
    { SCN_TOPO "apps:\n  s: { type: http-server, on: web, locations: [ { path: x } ] }\n",
      "t.yaml:11:57: location path 'x' must start with '/'" },
    { SCN_TOPO "apps:\n  s: { type: http-server, on: web, port: 0, locations: [ { path: / } ] }\n",
      "t.yaml:11:42: port 0 is out of range (1-65535)" },
    { SCN_TOPO "apps:\n  s: { type: http-server, on: web, locations: [ { path: /, body: abc, "
      "body-size: 2B } ] }\n",
      "t.yaml:11:82: body-size 2 is smaller than the body (3 bytes) or too large" },
    { SCN_TOPO "apps:\n  s: { type: http-server, on: web, locations: [ { path: /, headers: [x] } ] }\n",
      "t.yaml:11:70: header 'x': expected \"Name: value\"" },
    { SCN_TOPO "apps:\n  s: { type: http-server, on: web0, locations: [ { path: / } ] }\n"
      "  s2: { type: http-server, on: web, locations: [ { path: / } ] }\n",
      "t.yaml:12:7: http-server 's2' on node 'web0': cannot listen on port 80: "
      "address already in use (by http-server 's' (t.yaml:11:3))" },
};

START_TEST(element_build_errors)
{
    elem_register_builtin();
    scn_t *s;
    scn_run_t *r;
    char err[1200];
    int rc = build_yaml(bad_elems[_i].yaml, &s, &r, err, sizeof(err));
    ck_assert_msg(rc < 0, "case %d built", _i);
    ck_assert_msg(strcmp(err, bad_elems[_i].want) == 0, "case %d:\n got: %s\nwant: %s", _i,
                  err, bad_elems[_i].want);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

Suite *suite_http(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, msg_wire_sizes);
    tcase_add_test(tc, get_200_exact_timing);
    tcase_add_test(tc, keepalive_reuses_one_connection);
    tcase_add_test(tc, close_opens_one_connection_per_request);
    tcase_add_test(tc, server_keepalive_timeout_closes_idle);
    tcase_add_test(tc, stale_connection_race);
    tcase_add_test(tc, client_idle_timeout_closes_first);
    tcase_add_test(tc, unmatched_path_gets_404);
    tcase_add_test(tc, location_precedence);
    tcase_add_test(tc, response_timeout_at_exactly_the_timeout);
    tcase_add_test(tc, response_timeouts_many);
    tcase_add_test(tc, connect_refused_without_server);
    tcase_add_test(tc, connect_timeout_when_syns_are_lost);
    tcase_add_test(tc, max_conns_per_dest_queues);
    tcase_add_test(tc, no_free_port_and_no_route);
    tcase_add_test(tc, server_answers_pipelined_requests_in_order);
    tcase_add_test(tc, server_rejects_non_http_with_400);
    tcase_add_test(tc, server_exchange_api);
    tcase_add_test(tc, proxy_from_server_and_pool);
    tcase_add_test(tc, open_loop_constant_rate);
    tcase_add_test(tc, open_loop_poisson_rate);
    tcase_add_test(tc, closed_loop_users_and_requests);
    tcase_add_test(tc, client_stops_at_stop);
    tcase_add_test(tc, client_host_header);
    tcase_add_test(tc, client_request_kinds);
    tcase_add_test(tc, client_request_kinds_invalid);
    tcase_add_test(tc, server_hostname_and_recorded_response);
    tcase_add_test(tc, element_types_registered);
    tcase_add_test(tc, elements_from_yaml);
    tcase_add_loop_test(tc, element_build_errors, 0,
                        (int)(sizeof(bad_elems) / sizeof(bad_elems[0])));
    suite_add_tcase(s, tc);
    return s;
}

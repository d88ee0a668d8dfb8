/* test_health.c -- the shared health checker on a two-host link (1 ms one way): exact
 * transition times for HTTP probes (404 from t=12 s), timeouts at exactly probe start +
 * timeout, TCP refusals and fail_fast, the initial state, what a probe request carries,
 * jitter from its random stream, status matchers and the vendor presets. */
#include <check.h>
#include <string.h>
#include "health.h"
#include "http.h"
#include "tcp.h"
#include "metrics.h"
#include "util.h"

#define L (1 * SIM_MS)          /* one-way link latency: an HTTP probe takes 4 L */

/* ---- a target server whose answer the test scripts ------------------------------------ */
enum { SRV_STATUS, SRV_SILENT, SRV_RESET };
typedef struct srv {
    int mode;
    int status;                         /* normal answer */
    int bad_status;                     /* answer in [bad_from, bad_to) */
    sim_time_t bad_from, bad_to;
    int requests;
    char path[64], host[64], ua[64], conn[16];
    uint32_t peer;
    uint16_t last_port;
    int distinct_ports;
} srv_t;

static void srv_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    srv_t *s = data;
    s->requests++;
    snprintf(s->path, sizeof s->path, "%s", req->path);
    snprintf(s->host, sizeof s->host, "%s", req->host ? req->host : "");
    const char *ua = http_header_get(req, "User-Agent");
    snprintf(s->ua, sizeof s->ua, "%s", ua ? ua : "");
    const char *cn = http_header_get(req, "Connection");
    snprintf(s->conn, sizeof s->conn, "%s", cn ? cn : "");
    s->peer = http_exchange_peer_addr(ex);
    if (http_exchange_peer_port(ex) != s->last_port) s->distinct_ports++;
    s->last_port = http_exchange_peer_port(ex);
    if (s->mode == SRV_SILENT) return;          /* never answers; freed with the server */
    if (s->mode == SRV_RESET) {
        http_exchange_reset(ex);
        return;
    }
    sim_time_t now = sim_now(net_sim(http_exchange_node(ex)->net));
    int st = (now >= s->bad_from && now < s->bad_to) ? s->bad_status : s->status;
    http_respond(ex, http_response_new(st, "ok", 2));
}

/* ---- transitions recorded by the callback ---------------------------------------------- */
typedef struct trans { sim_time_t t; size_t target; int from, to; char reason[96]; } trans_t;
typedef struct rec { int n; trans_t v[32]; } rec_t;

static void on_trans(health_t *hc, size_t target, health_state_t from, health_state_t to,
                     const health_result_t *last, void *data)
{
    rec_t *r = data;
    ck_assert(health_target_state(hc, target) == to);   /* state already changed */
    if (r->n >= 32) return;
    trans_t *t = &r->v[r->n++];
    t->t = last->t_done;
    t->target = target;
    t->from = from;
    t->to = to;
    snprintf(t->reason, sizeof t->reason, "%s", last->reason);
}

typedef struct fx {
    tu_pair_t net;
    srv_t srv;
    http_server_t *http;
    metrics_t *m;
    rec_t rec;
} fx_t;

static void fx_new(fx_t *f, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    tu_pair_new(&f->net, seed, L, 0, 0);
    f->srv.status = 200;
    f->srv.bad_from = f->srv.bad_to = SIM_TIME_MAX;
    int rc = 0;
    f->http = http_server_new(f->net.b, 0, 80, NULL, srv_handler, &f->srv, &rc);
    ck_assert_ptr_nonnull(f->http);
    f->m = metrics_new(SIM_S, 200 * SIM_S);
}

static void fx_free(fx_t *f, health_t *hc)
{
    health_free(hc);
    http_server_free(f->http);
    metrics_free(f->m);
    tu_pair_free(&f->net);
}

static health_params_t http_params(void)
{
    health_params_t p;
    health_params_default(&p);
    p.proto = HEALTH_HTTP;
    p.path = "/healthz";
    p.interval = 5 * SIM_S;
    p.timeout = 2 * SIM_S;
    p.healthy_threshold = 2;
    p.unhealthy_threshold = 2;
    ck_assert_int_eq(health_matcher_parse(&p.matcher, "200"), 0);
    return p;
}

static health_t *mk(fx_t *f, const health_params_t *p)
{
    int rc = -99;
    health_t *hc = health_new(f->net.a, "hc", p, f->m, &rc);
    ck_assert_ptr_nonnull(hc);
    ck_assert_int_eq(rc, 0);
    health_set_callback(hc, on_trans, &f->rec);
    return hc;
}

/* A TCP checker's parameters. */
static health_params_t tcp_params(sim_time_t interval, sim_time_t timeout, int healthy,
                                  int unhealthy)
{
    health_params_t p;
    health_params_default(&p);
    p.proto = HEALTH_TCP;
    p.interval = interval;
    p.timeout = timeout;
    p.healthy_threshold = healthy;
    p.unhealthy_threshold = unhealthy;
    return p;
}

/* A checker "hc" (mk) with its first target ip:port. */
static health_t *mk_target(fx_t *f, const health_params_t *p, const char *ip, uint16_t port,
                           const char *label)
{
    health_t *hc = mk(f, p);
    ck_assert_uint_eq(health_target_add(hc, tu_ip(ip), port, label), 0);
    return hc;
}

/* fx_new with the server in `mode`, and an HTTP checker (http_params) of 10.0.0.2:80. */
static health_t *http_fx(fx_t *f, uint64_t seed, int mode, const char *label)
{
    fx_new(f, seed);
    f->srv.mode = mode;
    health_params_t p = http_params();
    return mk_target(f, &p, "10.0.0.2", 80, label);
}

/* Transition k went from -> to at t for reason. */
static void assert_trans(const fx_t *f, int k, sim_time_t t, int from, int to,
                         const char *reason)
{
    ck_assert_int_eq(f->rec.v[k].t, t);
    ck_assert_int_eq(f->rec.v[k].from, from);
    ck_assert_int_eq(f->rec.v[k].to, to);
    ck_assert_str_eq(f->rec.v[k].reason, reason);
}

static int64_t ctr(fx_t *f, const char *name)
{
    return metrics_counter(f->m, name, (m_window_t){0, SIM_TIME_MAX});
}

/* Probes at 0, 5, 10, ... s. The target answers 404 in [12 s, 27 s): probes at 15, 20 and 25
 * fail, so with unhealthy threshold 2 it goes down when the 20 s probe's response arrives,
 * at 20 s + 4 L (SYN, SYN-ACK, request, response); the 30 s and 35 s probes pass, so with
 * healthy threshold 2 it is up again at 35 s + 4 L. */
START_TEST(http_404_exact_transition_times)
{
    fx_t f;
    health_t *hc = http_fx(&f, 1, SRV_STATUS, "b");
    f.srv.bad_status = 404;
    f.srv.bad_from = 12 * SIM_S;
    f.srv.bad_to = 27 * SIM_S;
    ck_assert_int_eq(health_target_state(hc, 0), HEALTH_INITIAL);
    ck_assert(!health_target_healthy(hc, 0));

    sim_run(f.net.sim, 20 * SIM_S + 4 * L - 1);
    ck_assert_int_eq(f.rec.n, 1);                   /* INITIAL -> UP at the first pass */
    assert_trans(&f, 0, 4 * L, HEALTH_INITIAL, HEALTH_UP, "HTTP 200");
    ck_assert(health_target_healthy(hc, 0));        /* one failure (15 s) is not enough */
    ck_assert_int_eq(health_target_streak(hc, 0, false), 1);

    sim_run(f.net.sim, 20 * SIM_S + 4 * L);
    ck_assert_int_eq(f.rec.n, 2);
    assert_trans(&f, 1, 20 * SIM_S + 4 * L, HEALTH_UP, HEALTH_DOWN, "HTTP 404");
    ck_assert(!health_target_healthy(hc, 0));
    ck_assert_uint_eq(health_count_healthy(hc), 0);
    ck_assert_int_eq(health_target_since(hc, 0), 20 * SIM_S + 4 * L);
    const health_result_t *lf = health_target_last_failure(hc, 0);
    ck_assert_ptr_nonnull(lf);
    ck_assert_int_eq(lf->status, 404);
    ck_assert(lf->hard);
    ck_assert_int_eq(lf->t_start, 20 * SIM_S);

    sim_run(f.net.sim, 41 * SIM_S);
    ck_assert_int_eq(f.rec.n, 3);
    ck_assert_int_eq(f.rec.v[2].t, 35 * SIM_S + 4 * L);
    ck_assert_int_eq(f.rec.v[2].to, HEALTH_UP);
    ck_assert(health_target_healthy(hc, 0));

    /* probes at 0..40 s (9), all answered by 41 s; failures at 15, 20, 25 */
    ck_assert_int_eq(ctr(&f, "probe.hc.ok"), 6);
    ck_assert_int_eq(ctr(&f, "probe.hc.fail"), 3);
    ck_assert_int_eq(ctr(&f, "health.hc.up"), 2);
    ck_assert_int_eq(ctr(&f, "health.hc.down"), 1);
    health_stats_t st;
    health_stats(hc, &st);
    ck_assert_uint_eq(st.probes, 9);
    ck_assert_uint_eq(st.ok, 6);
    ck_assert_uint_eq(st.fail, 3);
    ck_assert_int_eq(f.srv.requests, 9);
    fx_free(&f, hc);
}
END_TEST

/* A server that accepts but never answers: each probe fails at exactly start + timeout. */
START_TEST(http_response_timeout_exact)
{
    fx_t f;
    health_t *hc = http_fx(&f, 2, SRV_SILENT, NULL);
    ck_assert_str_eq(health_target_label(hc, 0), "10.0.0.2:80");
    sim_run(f.net.sim, 2 * SIM_S - 1);
    ck_assert_ptr_null(health_target_last(hc, 0));
    sim_run(f.net.sim, 2 * SIM_S);
    const health_result_t *r = health_target_last(hc, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->ok);
    ck_assert(!r->hard);
    ck_assert_int_eq(r->t_done, 2 * SIM_S);
    ck_assert_int_eq(r->err, LB_ETIMEDOUT);
    ck_assert_str_eq(r->reason, "response timeout");
    ck_assert_int_eq(health_target_state(hc, 0), HEALTH_INITIAL);
    sim_run(f.net.sim, 10 * SIM_S);
    /* INITIAL -> DOWN after two failures: the 5 s probe's timeout at 7 s */
    ck_assert_int_eq(f.rec.n, 1);
    assert_trans(&f, 0, 7 * SIM_S, HEALTH_INITIAL, HEALTH_DOWN, "response timeout");
    fx_free(&f, hc);
}
END_TEST

/* SYNs to an address nobody answers: "connect timeout" at start + timeout; and with
 * timeout == interval (Azure LB's TCP probe) the old probe's failure counts before the
 * next probe starts. */
START_TEST(tcp_connect_timeout_exact)
{
    fx_t f;
    fx_new(&f, 3);
    health_params_t p = tcp_params(5 * SIM_S, 5 * SIM_S, 2, 2);
    health_t *hc = mk_target(&f, &p, "10.0.0.3", 80, "ghost");
    sim_run(f.net.sim, 5 * SIM_S);
    const health_result_t *r = health_target_last(hc, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->t_start, 0);
    ck_assert_int_eq(r->t_done, 5 * SIM_S);
    ck_assert_str_eq(r->reason, "connect timeout");
    ck_assert_int_eq(f.rec.n, 0);
    sim_run(f.net.sim, 10 * SIM_S);
    ck_assert_int_eq(f.rec.n, 1);
    ck_assert_int_eq(f.rec.v[0].t, 10 * SIM_S);
    ck_assert_int_eq(f.rec.v[0].to, HEALTH_DOWN);
    ck_assert_str_eq(f.rec.v[0].reason, "connect timeout");
    ck_assert_int_eq(health_target_last(hc, 0)->t_start, 5 * SIM_S);
    /* SYNs were sent but nothing else: 1 s, 2 s... retransmits within each 5 s probe */
    tcp_stats_t ts;
    tcp_stack_stats(f.net.a, &ts);
    ck_assert_uint_eq(ts.active_opens, 3);          /* probes at 0, 5 and 10 s */
    ck_assert_uint_eq(ts.rst_sent, 0);
    fx_free(&f, hc);
}
END_TEST

static void accept_close(tcp_conn_t *c, void *data)
{
    (void)data;
    tcp_close(c);
}

/* TCP probe of a closed port: RST -> "connection refused" at 2 L, a hard failure; with
 * fail_fast the target is down at once. Once something listens, two passes bring it up. */
START_TEST(tcp_refused_fail_fast_then_up)
{
    fx_t f;
    fx_new(&f, 4);
    health_params_t p = tcp_params(5 * SIM_S, 2 * SIM_S, 2, 3);
    p.initial = HEALTH_UP;
    p.fail_fast = true;
    health_t *hc = mk_target(&f, &p, "10.0.0.2", 81, "b:81");
    ck_assert(health_target_healthy(hc, 0));
    sim_run(f.net.sim, 1 * SIM_S);
    ck_assert_int_eq(f.rec.n, 1);
    assert_trans(&f, 0, 2 * L, HEALTH_UP, HEALTH_DOWN, "connection refused");
    ck_assert_int_eq(health_target_last(hc, 0)->err, LB_ECONNREFUSED);
    ck_assert(health_target_last(hc, 0)->hard);

    ck_assert_int_eq(tcp_listen(f.net.b, 0, 81, accept_close, NULL), 0);
    sim_run(f.net.sim, 20 * SIM_S);
    ck_assert_int_eq(f.rec.n, 2);
    ck_assert_int_eq(f.rec.v[1].t, 10 * SIM_S + 2 * L);     /* passes at 5 and 10 s */
    ck_assert_int_eq(f.rec.v[1].to, HEALTH_UP);
    ck_assert_str_eq(f.rec.v[1].reason, "connected");
    fx_free(&f, hc);
}
END_TEST

/* Without fail_fast a RST is one failure among unhealthy_threshold; a reset exchange
 * (RST after the request) is "connection reset". */
START_TEST(reset_counts_toward_threshold)
{
    fx_t f;
    fx_new(&f, 5);
    f.srv.mode = SRV_RESET;
    health_params_t p = http_params();
    p.initial = HEALTH_UP;
    p.unhealthy_threshold = 3;
    health_t *hc = mk_target(&f, &p, "10.0.0.2", 80, NULL);
    sim_run(f.net.sim, 6 * SIM_S);
    ck_assert_int_eq(f.rec.n, 0);
    ck_assert_str_eq(health_target_last(hc, 0)->reason, "connection reset");
    ck_assert_int_eq(health_target_streak(hc, 0, false), 2);
    sim_run(f.net.sim, 11 * SIM_S);
    ck_assert_int_eq(f.rec.n, 1);
    ck_assert_int_eq(f.rec.v[0].t, 10 * SIM_S + 4 * L);     /* RST answers the request */
    ck_assert_str_eq(f.rec.v[0].reason, "connection reset");
    fx_free(&f, hc);
}
END_TEST

/* What an HTTP probe sends: GET path, Host, User-Agent, Connection: close, from a new
 * connection (new source port) every time, from the probing node. */
START_TEST(probe_request_contents)
{
    fx_t f;
    fx_new(&f, 6);
    health_params_t p;
    health_params_preset(&p, HEALTH_VENDOR_ALB, HEALTH_HTTP);
    p.path = "/healthz/ready";
    p.interval = 5 * SIM_S;
    health_t *hc = mk_target(&f, &p, "10.0.0.2", 80, NULL);
    sim_run(f.net.sim, 16 * SIM_S);
    ck_assert_int_eq(f.srv.requests, 4);
    ck_assert_int_eq(f.srv.distinct_ports, 4);
    ck_assert_str_eq(f.srv.path, "/healthz/ready");
    ck_assert_str_eq(f.srv.host, "10.0.0.2");
    ck_assert_str_eq(f.srv.ua, "ELB-HealthChecker/2.0");
    ck_assert_str_eq(f.srv.conn, "close");
    ck_assert_uint_eq(f.srv.peer, tu_ip("10.0.0.1"));
    http_server_stats_t ss;
    http_server_stats(f.http, &ss);
    ck_assert_uint_eq(ss.conns_accepted, 4);
    ck_assert_uint_eq(ss.conns_open, 0);
    /* a Host override and a non-80 port */
    health_free(hc);
    f.rec.n = 0;
    p.host = "health.example";
    hc = mk_target(&f, &p, "10.0.0.2", 80, NULL);
    sim_run(f.net.sim, 17 * SIM_S);
    ck_assert_str_eq(f.srv.host, "health.example");
    fx_free(&f, hc);
}
END_TEST

/* INITIAL needs initial_passes; 0 means healthy_threshold. */
START_TEST(initial_passes)
{
    fx_t f;
    fx_new(&f, 7);
    health_params_t p = http_params();
    p.healthy_threshold = 3;
    p.initial_passes = 0;
    health_t *hc = mk_target(&f, &p, "10.0.0.2", 80, NULL);
    sim_run(f.net.sim, 11 * SIM_S);
    ck_assert_int_eq(f.rec.n, 1);
    ck_assert_int_eq(f.rec.v[0].t, 10 * SIM_S + 4 * L);
    ck_assert_int_eq(f.rec.v[0].from, HEALTH_INITIAL);
    fx_free(&f, hc);
}
END_TEST

/* The first probe of each target is offset by uniform [0, jitter) from the stream
 * "health:<name>": reproducible for a seed, different between targets. */
static void first_starts(uint64_t seed, sim_time_t out[3])
{
    fx_t f;
    fx_new(&f, seed);
    health_params_t p = http_params();
    p.first_delay = 1 * SIM_S;
    p.jitter = 5 * SIM_S;
    health_t *hc = mk(&f, &p);
    for (int i = 0; i < 3; i++) health_target_add(hc, tu_ip("10.0.0.2"), 80, NULL);
    sim_run(f.net.sim, 6100 * SIM_MS);
    for (int i = 0; i < 3; i++) {
        const health_result_t *r = health_target_last(hc, i);
        ck_assert_ptr_nonnull(r);
        out[i] = r->t_start;
        ck_assert_int_ge(out[i], 1 * SIM_S);
        ck_assert_int_lt(out[i], 6 * SIM_S);
    }
    fx_free(&f, hc);
}

START_TEST(jitter_from_stream)
{
    sim_time_t a[3], b[3], c[3];
    first_starts(11, a);
    first_starts(11, b);
    first_starts(12, c);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(a[i], b[i]);
    ck_assert(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
    ck_assert(a[0] != c[0] || a[1] != c[1] || a[2] != c[2]);
}
END_TEST

START_TEST(matcher_parse)
{
    health_matcher_t m;
    ck_assert_int_eq(health_matcher_parse(&m, "200-399"), 0);
    ck_assert(health_matcher_match(&m, 200));
    ck_assert(health_matcher_match(&m, 302));
    ck_assert(health_matcher_match(&m, 399));
    ck_assert(!health_matcher_match(&m, 404));
    ck_assert(!health_matcher_match(&m, 199));
    ck_assert_int_eq(health_matcher_parse(&m, "200, 202,300-301"), 0);
    ck_assert_int_eq(m.n, 3);
    ck_assert(health_matcher_match(&m, 202));
    ck_assert(!health_matcher_match(&m, 201));
    ck_assert(health_matcher_match(&m, 301));
    health_matcher_t keep = m;
    const char *bad[] = {"", "20", "2000", "99", "600", "300-200", "200-", "200,", "abc",
                         "200;201", "1,2", "200,201,202,203,204,205,206,207,208"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(health_matcher_parse(&m, bad[i]) == LB_EINVAL, "accepted '%s'", bad[i]);
        ck_assert_int_eq(m.n, keep.n);
    }
    ck_assert_int_eq(health_matcher_parse(&m, NULL), LB_EINVAL);
}
END_TEST

START_TEST(vendor_presets)
{
    health_params_t p;
    health_params_preset(&p, HEALTH_VENDOR_AZURE_LB, HEALTH_HTTP);
    ck_assert_int_eq(p.interval, 5 * SIM_S);
    ck_assert_int_eq(p.timeout, 5 * SIM_S);             /* min(interval, 30 s) */
    ck_assert_int_eq(p.healthy_threshold, 2);
    ck_assert_int_eq(p.unhealthy_threshold, 2);
    ck_assert_int_eq(p.initial, HEALTH_INITIAL);
    ck_assert_int_eq(p.initial_passes, 1);
    ck_assert(health_matcher_match(&p.matcher, 200));
    ck_assert(!health_matcher_match(&p.matcher, 201));
    ck_assert(!health_matcher_match(&p.matcher, 301));
    ck_assert(!p.fail_fast);
    ck_assert_str_eq(p.user_agent, "Load Balancer Agent");
    health_params_preset(&p, HEALTH_VENDOR_AZURE_LB, HEALTH_TCP);
    ck_assert_int_eq(p.proto, HEALTH_TCP);
    ck_assert_int_eq(p.timeout, 5 * SIM_S);             /* fails when the next probe goes */
    health_params_preset(&p, HEALTH_VENDOR_APPGW, HEALTH_HTTP);
    ck_assert_int_eq(p.interval, 30 * SIM_S);
    ck_assert_int_eq(p.timeout, 30 * SIM_S);
    ck_assert_int_eq(p.unhealthy_threshold, 3);
    ck_assert_int_eq(p.healthy_threshold, 1);
    ck_assert_str_eq(p.host, "127.0.0.1");
    ck_assert_str_eq(p.path, "/");
    ck_assert(health_matcher_match(&p.matcher, 399));
    ck_assert(!health_matcher_match(&p.matcher, 404));
    health_params_preset(&p, HEALTH_VENDOR_ALB, HEALTH_HTTP);
    ck_assert_int_eq(p.interval, 30 * SIM_S);
    ck_assert_int_eq(p.timeout, 5 * SIM_S);
    ck_assert_int_eq(p.healthy_threshold, 5);
    ck_assert_int_eq(p.unhealthy_threshold, 2);
    ck_assert(!health_matcher_match(&p.matcher, 302));
    health_params_preset(&p, HEALTH_VENDOR_NLB, HEALTH_TCP);
    ck_assert_int_eq(p.interval, 10 * SIM_S);
    ck_assert_int_eq(p.timeout, 10 * SIM_S);
    ck_assert_int_eq(p.healthy_threshold, 3);
    ck_assert_int_eq(p.unhealthy_threshold, 3);
    ck_assert(health_matcher_match(&p.matcher, 399));

    char err[128] = "";
    health_params_default(&p);
    ck_assert_int_eq(health_params_check(&p, err, sizeof err), 0);
    p.unhealthy_threshold = 0;
    ck_assert_int_eq(health_params_check(&p, err, sizeof err), LB_EINVAL);
    ck_assert_str_eq(err, "thresholds must be >= 1");
    health_params_default(&p);
    p.path = "healthz";
    ck_assert_int_eq(health_params_check(&p, err, sizeof err), LB_EINVAL);
    tu_pair_t t;
    tu_pair_new(&t, 1, L, 0, 0);
    int rc = 0;
    ck_assert_ptr_null(health_new(t.a, "x", &p, NULL, &rc));
    ck_assert_int_eq(rc, LB_EINVAL);
    tu_pair_free(&t);
}
END_TEST

typedef struct tlog { int n; char line[64][160]; } tlog_t;
static void obs_trace(void *data, sim_time_t t, uint64_t flow, const char *where,
                      const char *text)
{
    (void)t, (void)flow;
    tlog_t *lg = data;
    if (lg->n < 64 && !strcmp(where, "hc")) snprintf(lg->line[lg->n++], 160, "%s", text);
}

/* The checker's decisions appear as trace lines on the probe connection's flow. */
START_TEST(trace_lines_on_probe_flow)
{
    fx_t f;
    health_t *hc = http_fx(&f, 9, SRV_STATUS, "b");
    tlog_t lg = {0};
    net_observer_t o = {.trace = obs_trace, .data = &lg};
    net_set_observer(f.net.net, &o);
    net_trace_flow(f.net.net, 1);                   /* the first probe's connection */
    sim_run(f.net.sim, 6 * SIM_S);
    ck_assert_int_eq(health_target_last(hc, 0)->flow, 2);   /* the 5 s probe: not traced */
    ck_assert_int_eq(lg.n, 3);
    ck_assert_str_eq(lg.line[0], "probe b: GET http://10.0.0.2/healthz");
    ck_assert_str_eq(lg.line[1], "probe of b: pass (HTTP 200), 1 in a row, state initial");
    ck_assert_str_eq(lg.line[2], "target b: initial -> up (HTTP 200)");
    fx_free(&f, hc);
}
END_TEST

/* Freeing the checker with probes in flight: no callbacks afterwards, nothing leaks. */
START_TEST(free_with_probes_in_flight)
{
    fx_t f;
    health_t *hc = http_fx(&f, 8, SRV_SILENT, NULL);
    health_target_add(hc, tu_ip("10.0.0.3"), 80, NULL);
    sim_run(f.net.sim, 1 * SIM_S);
    health_free(hc);
    sim_run(f.net.sim, 30 * SIM_S);
    ck_assert_int_eq(f.rec.n, 0);
    fx_free(&f, NULL);
}
END_TEST

Suite *suite_health(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("probes");
    tcase_add_test(tc, http_404_exact_transition_times);
    tcase_add_test(tc, http_response_timeout_exact);
    tcase_add_test(tc, tcp_connect_timeout_exact);
    tcase_add_test(tc, tcp_refused_fail_fast_then_up);
    tcase_add_test(tc, reset_counts_toward_threshold);
    tcase_add_test(tc, probe_request_contents);
    tcase_add_test(tc, initial_passes);
    tcase_add_test(tc, jitter_from_stream);
    tcase_add_test(tc, free_with_probes_in_flight);
    tcase_add_test(tc, trace_lines_on_probe_flow);
    suite_add_tcase(s, tc);
    tc = tcase_create("params");
    tcase_add_test(tc, matcher_parse);
    tcase_add_test(tc, vendor_presets);
    suite_add_tcase(s, tc);
    return s;
}

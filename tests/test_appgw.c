/* test_appgw.c -- Azure Application Gateway v2 (include/appgw.h) on a small VNet (fabric,
 * 1 ms one way): a client, a gateway with its instances behind a frontend IP, and backend
 * hosts running app_http_server. Pins the spread over instances, probe-driven membership
 * (404 on the probe path, warm and cold start), no fail-open (502 page and Server header),
 * the request timeout with its one retry on another member (200, or 504 alone), 502 on a
 * refused connection, and that every instance probes on its own. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include "util.h"
#include "appgw.h"
#include "apps.h"

#define LAT (1 * SIM_MS)            /* fabric, one way */
#define FRONTEND "10.2.0.100"
#define TIMEOUT_S 20                /* APPGW_REQUEST_TIMEOUT_DEFAULT */

/* A client's request through the gateway to a backend, in fabric latencies: client ->
 * frontend -> instance 2 (the frontend is a hop), the way back 1 (the instance answers
 * the client directly); 3-way handshake then request: the request reaches the instance
 * at 5; upstream handshake 2, request 1, response 1; back to the client 1. */
#define T_REQ_AT_INSTANCE (5 * LAT)
#define T_DIRECT (T_REQ_AT_INSTANCE + 4 * LAT + LAT)

typedef enum { BE_OK, BE_PROBE_404, BE_HANG, BE_CLOSED } be_kind_t;

typedef struct env {
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    net_node_t *client;
    net_node_t *be[2];
    app_http_server_t *srv[2];
    metrics_t *m;
    appgw_t *g;
    http_pool_t *pool;
    tu_res_t res;
} env_t;

static net_node_t *host(env_t *e, const char *name, const char *ip)
{
    return tu_fabric_host(e->net, e->fab, name, ip, 8, false)->node;
}

/* A backend "be-<i>" at 10.3.0.<i+1> answering /app with body "A"/"B": BE_OK also answers
 * the probe path /healthz; BE_PROBE_404 does not (nginx's 404); BE_HANG accepts and answers
 * /app only after 1000 s (/healthz at once); BE_CLOSED listens on nothing. */
static void backend(env_t *e, int i, be_kind_t kind)
{
    char name[16], ip[16];
    snprintf(name, sizeof name, "be-%d", i);
    snprintf(ip, sizeof ip, "10.3.0.%d", i + 1);
    e->be[i] = host(e, name, ip);
    if (kind == BE_CLOSED) return;
    app_location_t l[2];
    app_location_init(&l[0], "/app", APP_MATCH_PREFIX);
    l[0].body = i == 0 ? "A" : "B";
    if (kind == BE_HANG) l[0].service_time = (dist_t){DIST_CONST, (double)(1000 * SIM_S), 0};
    app_location_init(&l[1], "/healthz", APP_MATCH_PREFIX);
    l[1].body = "ok";
    int rc = -1;
    e->srv[i] = app_http_server_new(e->be[i], 80, l, kind == BE_PROBE_404 ? 1 : 2, NULL, &rc);
    ck_assert_ptr_nonnull(e->srv[i]);
}

static void env_new(env_t *e, be_kind_t k0, int n_be, be_kind_t k1, int instances, bool warm)
{
    memset(e, 0, sizeof *e);
    tu_fabric_new(11, "vnet", LAT, &e->sim, &e->net, &e->fab);
    e->client = host(e, "client", "10.1.0.10");
    backend(e, 0, k0);
    if (n_be > 1) backend(e, 1, k1);
    e->m = metrics_new(SIM_S, 600 * SIM_S);
    uint32_t members[2] = {tu_ip("10.3.0.1"), tu_ip("10.3.0.2")};
    appgw_params_t p;
    appgw_params_default(&p);
    p.frontend = tu_ip(FRONTEND);
    p.instances = instances;
    p.members = members;
    p.n_members = (size_t)n_be;
    p.probe_path = "/healthz";
    p.warm_start = warm;
    p.metrics = e->m;
    char err[256];
    e->g = appgw_new(e->net, e->fab, &p, err, sizeof err);
    ck_assert_msg(e->g != NULL, "%s", err);
    http_client_opts_t co = {.keepalive = false};       /* a new connection per request */
    e->pool = http_pool_new(e->client, &co);
}

static void env_free(env_t *e)
{
    http_pool_free(e->pool);
    appgw_free(e->g);
    for (int i = 0; i < 2; i++) app_http_server_free(e->srv[i]);
    metrics_free(e->m);
    net_free(e->net);
    sim_free(e->sim);
}

static void send_get(env_t *e, const char *path)
{
    http_pool_request(e->pool, tu_ip(FRONTEND), 80,
                      http_request_new("GET", "shop.example.com", path, 0), tu_res_cb,
                      &e->res);
}

/* One GET /app now; runs for d; returns its result slot. */
static int get(env_t *e, sim_time_t d)
{
    int i = e->res.n % TU_RES_MAX;
    send_get(e, "/app");
    sim_run(e->sim, sim_now(e->sim) + d);
    ck_assert_int_eq(e->res.n, i + 1);
    return i;
}

static uint64_t hits(env_t *e, int be)
{
    return e->srv[be] ? app_http_server_hits(e->srv[be], 0) : 0;
}

static int64_t counter(env_t *e, const char *name)
{
    return metrics_counter(e->m, name, (m_window_t){0, SIM_TIME_MAX});
}

/* Counter "appgw-<i>.<what>" summed over both instances. */
static int64_t both_instances(env_t *e, const char *what)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "appgw-0.%s", what);
    snprintf(b, sizeof b, "appgw-1.%s", what);
    return counter(e, a) + counter(e, b);
}

/* Result slot i is an HTTP answer with this status. */
static void assert_status(env_t *e, int i, int status)
{
    ck_assert_int_eq(e->res.r[i].outcome, HTTP_OK);
    ck_assert_int_eq(e->res.r[i].status, status);
}

/* ... answered by the gateway itself (its Server header). */
static void assert_local_reply(env_t *e, int i, int status)
{
    assert_status(e, i, status);
    ck_assert_str_eq(e->res.server[i], APPGW_SERVER_HEADER);
}

/* Both instances see n healthy members. */
static void assert_healthy_members(env_t *e, size_t n)
{
    ck_assert_uint_eq(appgw_healthy_members(e->g, 0), n);
    ck_assert_uint_eq(appgw_healthy_members(e->g, 1), n);
}

static sim_time_t took(env_t *e, int i)
{
    return e->res.r[i].t_done - e->res.r[i].t_start;
}

/* A warm gateway (2 instances) in front of be-0 of kind k0 and, with n_be 2, a healthy be-1;
 * at 1 s one GET /app, run for d. Returns its slot. */
static int warm_get(env_t *e, be_kind_t k0, int n_be, sim_time_t d)
{
    env_new(e, k0, n_be, BE_OK, 2, true);
    sim_run(e->sim, SIM_S);
    return get(e, d);
}

/* n GETs /app, each answered 200 by be-1 ("B"). */
static void served_by_b(env_t *e, int n)
{
    for (int k = 0; k < n; k++) {
        int i = get(e, 100 * SIM_MS);
        ck_assert_int_eq(e->res.r[i].status, 200);
        ck_assert_str_eq(e->res.body[i], "B");
    }
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(requests_spread_over_instances)
{
    env_t e;
    env_new(&e, BE_OK, 2, BE_OK, 2, true);
    sim_run(e.sim, SIM_S);
    for (int k = 0; k < 40; k++) {          /* 40 connections, one request each */
        send_get(&e, "/app");
        sim_run(e.sim, sim_now(e.sim) + 10 * SIM_MS);
    }
    sim_run(e.sim, sim_now(e.sim) + SIM_S);
    ck_assert_int_eq(e.res.n, 40);
    /* the first request from an instance to a member opens the upstream connection; the
     * others reuse it (backend keep-alive), 2 ms quicker */
    int opened = 0;
    for (int k = 0; k < 40; k++) {
        ck_assert_int_eq(e.res.r[k].status, 200);
        sim_time_t t = took(&e, k);
        if (t == T_DIRECT) opened++;
        else ck_assert_int_eq(t, T_DIRECT - 2 * LAT);
    }
    int64_t r0 = counter(&e, "appgw-0.requests"), r1 = counter(&e, "appgw-1.requests");
    ck_assert_int_ge(r0, 2);
    ck_assert_int_ge(r1, 2);
    ck_assert_int_eq(opened, 4);                /* 2 instances x 2 members */
    ck_assert_int_eq(r0 + r1, 40);
    /* each instance goes round-robin over both healthy members */
    ck_assert_int_gt(hits(&e, 0), 0);
    ck_assert_int_gt(hits(&e, 1), 0);
    ck_assert_int_eq(hits(&e, 0) + hits(&e, 1), 40);
    ck_assert_int_le(hits(&e, 0) > hits(&e, 1) ? hits(&e, 0) - hits(&e, 1)
                                               : hits(&e, 1) - hits(&e, 0), 2);
    env_free(&e);
}
END_TEST

/* Warm start: both members healthy at t=0; be-0 answers the probe path 404. Probes at 0,
 * 30, 60 s fail (4 ms each: handshake, GET, 404); the third crosses the unhealthy
 * threshold (3) at 60.004 s on both instances. */
START_TEST(probe_404_member_taken_out_warm)
{
    env_t e;
    env_new(&e, BE_PROBE_404, 2, BE_OK, 2, true);
    ck_assert_uint_eq(appgw_healthy_members(e.g, 0), 2);
    sim_run(e.sim, SIM_S);
    for (int k = 0; k < 8; k++) get(&e, 100 * SIM_MS);
    ck_assert_int_gt(hits(&e, 0), 0);           /* still in rotation: serves traffic */
    ck_assert_int_gt(hits(&e, 1), 0);
    sim_run(e.sim, 60 * SIM_S + 4 * LAT - 1);
    assert_healthy_members(&e, 2);
    ck_assert_int_eq(counter(&e, "probe.appgw-0.fail"), 2);
    sim_run(e.sim, 60 * SIM_S + 4 * LAT);
    assert_healthy_members(&e, 1);
    ck_assert_int_eq(counter(&e, "probe.appgw-0.fail"), 3);
    ck_assert_int_eq(counter(&e, "probe.appgw-1.fail"), 3);
    ck_assert_int_eq(counter(&e, "health.appgw-0.down"), 1);
    uint64_t a = hits(&e, 0), b = hits(&e, 1);
    sim_run(e.sim, 61 * SIM_S);
    served_by_b(&e, 8);
    ck_assert_uint_eq(hits(&e, 0), a);
    ck_assert_uint_eq(hits(&e, 1), b + 8);
    env_free(&e);
}
END_TEST

/* Cold start: members must pass a probe first; be-0 never does. */
START_TEST(probe_404_member_never_admitted_cold)
{
    env_t e;
    env_new(&e, BE_PROBE_404, 2, BE_OK, 2, false);
    ck_assert_uint_eq(appgw_healthy_members(e.g, 0), 0);
    sim_run(e.sim, 4 * LAT);                    /* first probes answered */
    assert_healthy_members(&e, 1);
    sim_run(e.sim, SIM_S);
    served_by_b(&e, 8);
    sim_run(e.sim, 100 * SIM_S);
    ck_assert_uint_eq(appgw_healthy_members(e.g, 0), 1);
    ck_assert_uint_eq(hits(&e, 0), 0);
    ck_assert_int_eq(counter(&e, "probe.appgw-0.fail"), 4);      /* 0, 30, 60, 90 s */
    ck_assert_int_eq(counter(&e, "probe.appgw-0.ok"), 4);
    env_free(&e);
}
END_TEST

static void assert_502_page(env_t *e, int i)
{
    assert_local_reply(e, i, 502);
    ck_assert_ptr_nonnull(strstr(e->res.body[i], "<title>502 Bad Gateway</title>"));
    ck_assert_ptr_nonnull(strstr(e->res.body[i], APPGW_SERVER_HEADER));
}

/* Every member failing its probe: 502 at once, nothing reaches a backend (no fail-open). */
START_TEST(no_healthy_member_502_no_fail_open)
{
    env_t e;
    env_new(&e, BE_PROBE_404, 2, BE_PROBE_404, 2, false);
    sim_run(e.sim, SIM_S);
    int i = get(&e, 100 * SIM_MS);
    assert_502_page(&e, i);
    ck_assert_int_eq(took(&e, i), T_REQ_AT_INSTANCE + LAT);
    ck_assert_uint_eq(hits(&e, 0) + hits(&e, 1), 0);
    env_free(&e);

    /* warm: served until the third failed probe (60 s), then 502 */
    env_new(&e, BE_PROBE_404, 2, BE_PROBE_404, 2, true);
    sim_run(e.sim, 59 * SIM_S);
    i = get(&e, 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 200);
    ck_assert_str_eq(e.res.server[i], "");          /* the backend's, relayed */
    sim_run(e.sim, 61 * SIM_S);
    uint64_t before = hits(&e, 0) + hits(&e, 1);
    for (int k = 0; k < 4; k++) assert_502_page(&e, get(&e, 100 * SIM_MS));
    ck_assert_uint_eq(hits(&e, 0) + hits(&e, 1), before);
    ck_assert_int_eq(both_instances(&e, "local_replies"), 4);
    env_free(&e);
}
END_TEST

/* be-0 accepts and never answers /app in time: the attempt's response timeout (the request
 * timeout, from the request sent at 7 ms) ends it, the request is retried on be-1. */
START_TEST(hanging_member_retried_on_other)
{
    env_t e;
    int i = warm_get(&e, BE_HANG, 2, 25 * SIM_S);
    assert_status(&e, i, 200);
    ck_assert_str_eq(e.res.body[i], "B");
    /* timeout at 7 ms + 20 s, then a new connection to be-1 (4 ms) and back (1 ms) */
    ck_assert_int_eq(took(&e, i), TIMEOUT_S * SIM_S + T_REQ_AT_INSTANCE + 2 * LAT + 4 * LAT + LAT);
    ck_assert_int_eq(both_instances(&e, "retries"), 1);
    ck_assert_uint_eq(hits(&e, 1), 1);
    env_free(&e);
}
END_TEST

/* A single member that hangs: nothing else to retry on -> 504 at the request timeout. */
START_TEST(hanging_single_member_504)
{
    env_t e;
    int i = warm_get(&e, BE_HANG, 1, 25 * SIM_S);
    assert_local_reply(&e, i, 504);
    ck_assert_int_eq(took(&e, i), TIMEOUT_S * SIM_S + T_REQ_AT_INSTANCE + 2 * LAT + LAT);
    env_free(&e);
}
END_TEST

/* Nothing listens on the member's port: its RST answers the SYN -> 502, not retried. */
START_TEST(refused_connection_502)
{
    env_t e;
    int i = warm_get(&e, BE_CLOSED, 1, 100 * SIM_MS);
    assert_local_reply(&e, i, 502);
    /* SYN 1 ms, RST 1 ms, 502 to the client 1 ms */
    ck_assert_int_eq(took(&e, i), T_REQ_AT_INSTANCE + 3 * LAT);
    ck_assert_int_eq(both_instances(&e, "retries"), 0);
    env_free(&e);
}
END_TEST

/* Each instance probes every member on its own, from its own address. */
START_TEST(instances_probe_independently)
{
    env_t e;
    env_new(&e, BE_OK, 2, BE_OK, 2, true);
    tu_capture_t *cap = lb_calloc(1, sizeof *cap);
    tu_capture_start(e.net, cap);
    sim_run(e.sim, 65 * SIM_S);                 /* probes at 0, 30 and 60 s */
    ck_assert_int_eq(counter(&e, "probe.appgw-0.ok"), 6);       /* 3 x 2 members */
    ck_assert_int_eq(counter(&e, "probe.appgw-1.ok"), 6);
    ck_assert_int_eq(counter(&e, "probe.appgw-0.fail"), 0);
    ck_assert_str_eq(net_node_find(e.net, "appgw-0")->name, appgw_instance_node(e.g, 0)->name);
    int syns[2][2] = {{0}};
    for (int k = 0; k < cap->n; k++) {
        const pkt_t *p = &cap->rec[k].p;
        if (p->tcp_flags != TCP_SYN || p->dport != 80) continue;
        int be = strcmp(cap->rec[k].where, "be-0") == 0 ? 0
               : strcmp(cap->rec[k].where, "be-1") == 0 ? 1 : -1;
        ck_assert_int_ge(be, 0);
        if (p->src == tu_ip("10.225.0.4")) syns[be][0]++;
        else if (p->src == tu_ip("10.225.0.5")) syns[be][1]++;
        else ck_abort_msg("probe from an unexpected source");
    }
    for (int be = 0; be < 2; be++)
        for (int in = 0; in < 2; in++) ck_assert_int_eq(syns[be][in], 3);
    net_set_observer(e.net, NULL);
    lb_free(cap);
    /* be-0 goes silent (it stops listening): each instance finds out from its own probes */
    app_http_server_free(e.srv[0]);
    e.srv[0] = NULL;
    sim_run(e.sim, 125 * SIM_S);                /* failures at 90, 120 s: threshold is 3 */
    ck_assert_uint_eq(appgw_healthy_members(e.g, 0), 2);
    sim_run(e.sim, 151 * SIM_S);
    assert_healthy_members(&e, 1);
    ck_assert_int_eq(counter(&e, "probe.appgw-0.fail"), 3);
    ck_assert_int_eq(counter(&e, "probe.appgw-1.fail"), 3);
    env_free(&e);
}
END_TEST

Suite *suite_appgw(void)
{
    Suite *s = suite_create("appgw");
    TCase *tc = tcase_create("appgw");
    tcase_add_test(tc, requests_spread_over_instances);
    tcase_add_test(tc, probe_404_member_taken_out_warm);
    tcase_add_test(tc, probe_404_member_never_admitted_cold);
    tcase_add_test(tc, no_healthy_member_502_no_fail_open);
    tcase_add_test(tc, hanging_member_retried_on_other);
    tcase_add_test(tc, hanging_single_member_504);
    tcase_add_test(tc, refused_connection_502);
    tcase_add_test(tc, instances_probe_independently);
    suite_add_tcase(s, tc);
    return s;
}

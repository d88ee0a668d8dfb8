/* test_aws_alb.c -- the AWS ALB in a VPC fabric (1 ms per delivery) with nodes in two zones
 * and an ip target group of two servers (standing in for the NLB's node addresses): the
 * defaults; a new target gets traffic only after its first passing check (503 before);
 * thresholds and their timing; fail open when every target is unhealthy; the ALB's own
 * 502 (refused, reset), 503 (no registered target), 504 (connect timeout 10 s, no
 * response within the 60 s idle timeout) with "Server: awselb/2.0" and its error page;
 * the HTTP listener's redirect to HTTPS and the HTTPS listener's X-Forwarded-Proto;
 * independent health checks per node; the frontend spreading clients over the nodes;
 * HTTPS targets (TLS without SNI or certificate check). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws_alb.h"
#include "http.h"
#include "tcp.h"
#include "tls.h"
#include "util.h"

#define L (1 * SIM_MS)
#define NT 2
#define NODE_A "10.0.1.50"
#define NODE_B "10.0.2.50"
#define FRONTEND "10.0.0.80"

typedef struct tgt {
    net_node_t *node;
    http_server_t *http;
    int root_status;                    /* health check path "/" */
    int app_requests;
    uint32_t hc_peers[4];
    int n_hc_peers;
    char xff[64], xfp[16];
} tgt_t;

typedef struct fx {
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    net_node_t *client;
    http_pool_t *pool;
    tgt_t t[NT];
    aws_alb_t *alb;
    explain_t *ex;
} fx_t;

static const char *tgt_ip[NT] = {"10.0.1.200", "10.0.2.200"};

static void tgt_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    tgt_t *t = data;
    if (!strcmp(req->path, "/")) {
        uint32_t peer = http_exchange_peer_addr(ex);
        bool seen = false;
        for (int i = 0; i < t->n_hc_peers; i++) seen |= t->hc_peers[i] == peer;
        if (!seen && t->n_hc_peers < 4) t->hc_peers[t->n_hc_peers++] = peer;
        http_respond(ex, http_response_new(t->root_status, NULL, 0));
        return;
    }
    if (!strcmp(req->path, "/hang")) return;           /* never answers */
    if (!strcmp(req->path, "/reset")) {
        http_exchange_reset(ex);
        return;
    }
    t->app_requests++;
    const char *xff = http_header_get(req, "X-Forwarded-For");
    const char *xfp = http_header_get(req, "X-Forwarded-Proto");
    snprintf(t->xff, sizeof t->xff, "%s", xff ? xff : "");
    snprintf(t->xfp, sizeof t->xfp, "%s", xfp ? xfp : "");
    http_respond(ex, http_response_new(200, t->node->name, 0));
}

/* targets: NT servers (n_targets of them in the target group, plus extra addresses) */
static void fx_new(fx_t *f, uint64_t seed, aws_alb_params_t *p, const uint32_t *targets,
                   size_t n_targets)
{
    memset(f, 0, sizeof *f);
    tu_fabric_new(seed, "vpc", L, &f->sim, &f->net, &f->fab);
    f->ex = explain_new(f->sim);
    p->explain = f->ex;
    f->client = tu_fabric_host(f->net, f->fab, "client", "10.0.3.5", 16, true)->node;
    http_client_opts_t co = {.keepalive = false};
    f->pool = http_pool_new(f->client, &co);
    http_server_opts_t so = {.keepalive_timeout = 0};
    for (int i = 0; i < NT; i++) {
        tgt_t *t = &f->t[i];
        char name[16];
        snprintf(name, sizeof name, "nlb-%c", 'a' + i);
        t->node = tu_fabric_host(f->net, f->fab, name, tgt_ip[i], 16, true)->node;
        t->root_status = 200;
        int rc = 0;
        t->http = http_server_new(t->node, 0, 80, &so, tgt_handler, t, &rc);
        ck_assert_ptr_nonnull(t->http);
    }
    uint32_t def[NT];
    if (!targets) {
        for (int i = 0; i < NT; i++) def[i] = tu_ip(tgt_ip[i]);
        targets = def;
        n_targets = NT;
    }
    p->targets = targets;
    p->n_targets = n_targets;
    aws_alb_zone_t zones[2] = {{.name = "a", .addr = tu_ip(NODE_A), .plen = 24},
                               {.name = "b", .addr = tu_ip(NODE_B), .plen = 24}};
    char err[256] = "";
    f->alb = aws_alb_new(f->net, f->fab, p, zones, 2, err, sizeof err);
    ck_assert_msg(f->alb != NULL, "%s", err);
}

static void fx_free(fx_t *f)
{
    http_pool_free(f->pool);
    aws_alb_free(f->alb);
    for (int i = 0; i < NT; i++) http_server_free(f->t[i].http);
    net_free(f->net);
    explain_free(f->ex);
    sim_free(f->sim);
}

static void get_at(fx_t *f, uint32_t addr, uint16_t port, const char *host, const char *path,
                   tu_res_t *r)
{
    http_pool_request(f->pool, addr, port, http_request_new("GET", host, path, 0), tu_res_cb, r);
}

static void get(fx_t *f, const char *path, tu_res_t *r)
{
    get_at(f, tu_ip(NODE_A), 80, "shop.example.com", path, r);
}

static void seed_hc(aws_alb_params_t *p)
{
    aws_alb_params_default(p);
    p->hc_interval_s = 10;
    p->hc_timeout_s = 5;
    p->hc_healthy = 2;
    p->hc_unhealthy = 2;
}

/* seed_hc with the targets in service from the start and checks kept out of the way. */
static void warm_hc(aws_alb_params_t *p)
{
    seed_hc(p);
    p->warm_start = true;
    p->hc_interval_s = 300;
}

static aws_alb_stats_t alb_stats(const fx_t *f)
{
    aws_alb_stats_t st;
    aws_alb_stats(f->alb, &st);
    return st;
}

static const char *page_502 =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(defaults)
{
    aws_alb_params_t p;
    aws_alb_params_default(&p);
    ck_assert_int_eq(p.http_port, 80);
    ck_assert_int_eq(p.http_action, AWS_ALB_HTTP_FORWARD);
    ck_assert_int_eq(p.https_port, 0);
    ck_assert_int_eq(p.idle_timeout, 60 * SIM_S);
    fx_t f;
    fx_new(&f, 1, &p, NULL, 0);
    const health_params_t *hp = health_params(aws_alb_health(f.alb, 0));
    ck_assert_int_eq(hp->proto, HEALTH_HTTP);
    ck_assert_str_eq(hp->path, "/");
    ck_assert_int_eq(hp->interval, 30 * SIM_S);
    ck_assert_int_eq(hp->timeout, 5 * SIM_S);
    ck_assert_int_eq(hp->healthy_threshold, 5);
    ck_assert_int_eq(hp->unhealthy_threshold, 2);
    ck_assert(health_matcher_match(&hp->matcher, 200));
    ck_assert(!health_matcher_match(&hp->matcher, 204));
    ck_assert_str_eq(hp->user_agent, "ELB-HealthChecker/2.0");
    ck_assert_uint_eq(aws_alb_node_count(f.alb), 2);
    ck_assert_str_eq(aws_alb_node(f.alb, 1)->name, "alb-b");
    ck_assert_uint_eq(aws_alb_node_addr(f.alb, 1), tu_ip(NODE_B));
    fx_free(&f);
    /* settings AWS refuses */
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    tu_fabric_new(1, "vpc", L, &sim, &net, &fab);
    aws_alb_zone_t z = {.name = "a", .addr = tu_ip(NODE_A)};
    char err[200];
    aws_alb_params_default(&p);
    p.hc_matcher = "200-599";
    ck_assert_ptr_null(aws_alb_new(net, fab, &p, &z, 1, err, sizeof err));
    ck_assert(strstr(err, "200 to 499") != NULL);
    aws_alb_params_default(&p);
    p.hc_timeout_s = 30;
    ck_assert_ptr_null(aws_alb_new(net, fab, &p, &z, 1, err, sizeof err));
    aws_alb_params_default(&p);
    p.http_action = AWS_ALB_HTTP_REDIRECT;
    ck_assert_ptr_null(aws_alb_new(net, fab, &p, &z, 1, err, sizeof err));
    ck_assert(strstr(err, "HTTPS") != NULL);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* New targets are "initial": a request before the first check passes gets the ALB's 503;
 * both pass at 4 L; then round robin. Target 0 answers 404 from 5 s: the 10 s and 20 s
 * checks fail (unhealthy 2), it is out at 20 s + 4 L; back to 200 at 25 s: the 30 s and
 * 40 s checks pass (healthy 2), in again at 40 s + 4 L. */
START_TEST(initial_thresholds_timing)
{
    fx_t f;
    aws_alb_params_t p;
    seed_hc(&p);
    fx_new(&f, 2, &p, NULL, 0);
    tu_res_t r = {0};
    get(&f, "/app", &r);                                /* arrives at 3 L: targets initial */
    sim_run(f.sim, 1 * SIM_S);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].status, 503);
    ck_assert_int_eq(r.r[0].t_done, 4 * L);
    ck_assert_str_eq(r.server[0], "awselb/2.0");
    ck_assert(strstr(r.body[0], "<title>503 Service Temporarily Unavailable</title>") != NULL);
    explain_outcome(f.ex, "client", M_5XX, r.r[0].flow, "503");
    char *text = tu_explain_text(f.ex, 1);
    ck_assert_msg(strstr(text, "503: no target has passed a health check yet") != NULL, "%s",
                  text);
    ck_assert_msg(strstr(text, "10.0.1.200 initial: no failed health check") != NULL, "%s",
                  text);
    free(text);
    health_t *hc = aws_alb_health(f.alb, 0);
    ck_assert_int_eq(health_target_since(hc, 0), 4 * L);
    ck_assert_int_eq(health_target_state(hc, 0), HEALTH_UP);
    for (int i = 0; i < 4; i++) get(&f, "/app", &r);
    sim_run(f.sim, 2 * SIM_S);
    ck_assert_int_eq(r.n, 5);
    for (int i = 1; i < 5; i++) ck_assert_int_eq(r.r[i].status, 200);
    ck_assert_int_eq(f.t[0].app_requests, 2);           /* round robin */
    ck_assert_int_eq(f.t[1].app_requests, 2);
    f.t[0].root_status = 404;
    sim_run(f.sim, 25 * SIM_S);
    ck_assert_int_eq(health_target_state(hc, 0), HEALTH_DOWN);
    ck_assert_int_eq(health_target_since(hc, 0), 20 * SIM_S + 4 * L);
    ck_assert_str_eq(health_target_last_failure(hc, 0)->reason, "HTTP 404");
    ck_assert_uint_eq(aws_alb_healthy_targets(f.alb, 0), 1);
    ck_assert_uint_eq(aws_alb_healthy_targets(f.alb, 1), 1);  /* node b checks on its own */
    for (int i = 0; i < 4; i++) get(&f, "/app", &r);
    f.t[0].root_status = 200;
    sim_run(f.sim, 40 * SIM_S + 4 * L - 1);
    ck_assert_int_eq(f.t[0].app_requests, 2);           /* all four went to target 1 */
    ck_assert_int_eq(f.t[1].app_requests, 6);
    ck_assert_int_eq(health_target_state(hc, 0), HEALTH_DOWN);
    sim_run(f.sim, 40 * SIM_S + 4 * L);
    ck_assert_int_eq(health_target_state(hc, 0), HEALTH_UP);
    /* each node checks each target, from its own address */
    for (int i = 0; i < NT; i++) {
        ck_assert_int_eq(f.t[i].n_hc_peers, 2);
        ck_assert_uint_eq(f.t[i].hc_peers[0] ^ f.t[i].hc_peers[1],
                          tu_ip(NODE_A) ^ tu_ip(NODE_B));
    }
    fx_free(&f);
}
END_TEST

/* Every target fails its checks: the ALB fails open and keeps forwarding to both. */
START_TEST(fail_open)
{
    fx_t f;
    aws_alb_params_t p;
    seed_hc(&p);
    fx_new(&f, 3, &p, NULL, 0);
    f.t[0].root_status = f.t[1].root_status = 500;
    sim_run(f.sim, 10 * SIM_S + 4 * L);                 /* initial -> down after 2 failures */
    ck_assert_int_eq(health_target_state(aws_alb_health(f.alb, 0), 0), HEALTH_DOWN);
    ck_assert_int_eq(health_target_state(aws_alb_health(f.alb, 0), 1), HEALTH_DOWN);
    ck_assert_uint_eq(aws_alb_healthy_targets(f.alb, 0), 0);
    tu_res_t r = {0};
    for (int i = 0; i < 4; i++) get(&f, "/app", &r);
    sim_run(f.sim, 11 * SIM_S);
    ck_assert_int_eq(r.n, 4);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(r.r[i].status, 200);
    ck_assert_int_eq(f.t[0].app_requests, 2);
    ck_assert_int_eq(f.t[1].app_requests, 2);
    aws_alb_stats_t st = alb_stats(&f);
    ck_assert_uint_eq(st.fail_open, 4);
    ck_assert_uint_eq(st.forwarded, 4);
    fx_free(&f);
}
END_TEST

/* The ALB's own errors, with exact timings (client -> node 1 L, node -> target 1 L):
 *   target port closed (RST to the SYN)         -> 502 at 6 L
 *   target resets with the request outstanding  -> 502
 *   nobody answers the SYN (10 s connect timeout)-> 504 at 3 L + 10 s + 1 L
 *   no response within the idle timeout (60 s)  -> 504 at 5 L + 60 s + 1 L
 *   no registered target                        -> 503 at 4 L */
START_TEST(error_mapping)
{
    fx_t f;
    aws_alb_params_t p;
    warm_hc(&p);
    fx_new(&f, 4, &p, NULL, 0);
    http_server_free(f.t[0].http);                      /* target 0: port 80 closed */
    f.t[0].http = NULL;
    tu_res_t r = {0};
    get(&f, "/app", &r);                                /* round robin: target 0 first */
    sim_run(f.sim, 1 * SIM_S);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].status, 502);
    ck_assert_int_eq(r.r[0].t_done, 6 * L);
    ck_assert_str_eq(r.body[0], page_502);
    ck_assert_str_eq(r.server[0], "awselb/2.0");
    get(&f, "/reset", &r);                              /* target 1 */
    sim_run(f.sim, 2 * SIM_S);
    ck_assert_int_eq(r.r[1].status, 502);
    get(&f, "/app", &r);                                /* target 0 again: 502 */
    get(&f, "/hang", &r);                               /* target 1 */
    sim_run(f.sim, 70 * SIM_S);
    ck_assert_int_eq(r.n, 4);
    ck_assert_int_eq(r.r[2].status, 502);
    ck_assert_int_eq(r.r[3].status, 504);
    ck_assert_int_eq(r.r[3].t_done - r.r[3].t_start, 60 * SIM_S + 6 * L);
    ck_assert(strstr(r.body[3], "504 Gateway Time-out") != NULL);
    aws_alb_stats_t st = alb_stats(&f);
    ck_assert_uint_eq(st.status_502, 3);
    ck_assert_uint_eq(st.status_504, 1);
    fx_free(&f);

    /* a target address nobody owns: SYNs vanish, 504 after the 10 s connect timeout */
    uint32_t ghost = tu_ip("10.0.9.9");
    warm_hc(&p);
    fx_new(&f, 5, &p, &ghost, 1);
    memset(&r, 0, sizeof r);
    get(&f, "/app", &r);
    sim_run(f.sim, 20 * SIM_S);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].status, 504);
    ck_assert_int_eq(r.r[0].t_done, 10 * SIM_S + 4 * L);
    fx_free(&f);

    /* an empty target group: 503 */
    seed_hc(&p);
    fx_new(&f, 6, &p, &ghost, 0);
    memset(&r, 0, sizeof r);
    get(&f, "/app", &r);
    sim_run(f.sim, 1 * SIM_S);
    ck_assert_int_eq(r.r[0].status, 503);
    ck_assert_int_eq(r.r[0].t_done, 4 * L);
    fx_free(&f);
}
END_TEST

/* HTTP 80 redirects to HTTPS 443 (301, Location keeps host without port, path and query);
 * the HTTPS listener forwards with X-Forwarded-Proto https and the client in XFF. */
START_TEST(redirect_and_https_listener)
{
    fx_t f;
    aws_alb_params_t p;
    seed_hc(&p);
    p.http_action = AWS_ALB_HTTP_REDIRECT;
    p.https_port = 443;
    fx_new(&f, 7, &p, NULL, 0);
    sim_run(f.sim, 1 * SIM_S);
    tu_res_t r = {0};
    get_at(&f, tu_ip(NODE_A), 80, "shop.example.com:80", "/cart?item=3", &r);
    get_at(&f, tu_ip(NODE_A), 443, "shop.example.com", "/cart", &r);
    sim_run(f.sim, 2 * SIM_S);
    ck_assert_int_eq(r.n, 2);
    ck_assert_int_eq(r.r[0].status, 301);
    ck_assert_str_eq(r.location[0], "https://shop.example.com:443/cart?item=3");
    ck_assert_str_eq(r.server[0], "awselb/2.0");
    ck_assert_int_eq(r.r[1].status, 200);
    int t = !strcmp(r.body[1], "nlb-a") ? 0 : 1;
    ck_assert_str_eq(f.t[t].xfp, "https");
    ck_assert_str_eq(f.t[t].xff, "10.0.3.5");
    aws_alb_stats_t st = alb_stats(&f);
    ck_assert_uint_eq(st.redirects, 1);
    fx_free(&f);
}
END_TEST

/* Target group protocol HTTPS: the ALB's health checks and requests go over TLS to port
 * 443 without SNI and without checking the certificate -- a self-signed, expired one with
 * another name is accepted (a chain without server names: 200); a server whose only
 * chain wants SNI gw.example.com resets the ClientHello: the check fails, and the
 * request (forwarded anyway: fail open) is the ALB's 502. */
START_TEST(https_targets_without_sni_or_validation)
{
    for (int named = 0; named < 2; named++) {
        fx_t f;
        aws_alb_params_t p;
        seed_hc(&p);
        p.target_https = true;
        p.target_port = 443;
        fx_new(&f, 8, &p, NULL, 0);
        tls_cert_spec_t cs = {"other.internal", "other.internal", NULL, 0, NULL, false,
                              1577836800 /* 2020-01-01 */, 1609459200 /* 2021-01-01 */};
        char err[100];
        tls_cert_t *crt = tls_cert_new(&cs, err, sizeof err);
        ck_assert_ptr_nonnull(crt);
        const char *names[1] = {"gw.example.com"};
        tls_chain_t chain = {"https", named ? names : NULL, named ? 1 : 0, crt};
        tls_server_cfg_t sc;
        tls_server_cfg_default(&sc);
        sc.chains = &chain;
        sc.n_chains = 1;
        http_server_opts_t so = {.keepalive_timeout = 0, .tls = &sc};
        http_server_t *srv[NT];
        for (int i = 0; i < NT; i++) {
            int rc = 0;
            srv[i] = http_server_new(f.t[i].node, 0, 443, &so, tgt_handler, &f.t[i], &rc);
            ck_assert_ptr_nonnull(srv[i]);
        }
        sim_run(f.sim, 30 * SIM_S);
        ck_assert_uint_eq(aws_alb_healthy_targets(f.alb, 0), named ? 0 : NT);
        tu_res_t r = {0};
        get(&f, "/app", &r);
        sim_run(f.sim, 31 * SIM_S);
        ck_assert_int_eq(r.n, 1);
        ck_assert_int_eq(r.r[0].status, named ? 502 : 200);
        if (!named) ck_assert_str_eq(f.t[0].xfp[0] ? f.t[0].xfp : f.t[1].xfp, "http");
        for (int i = 0; i < NT; i++) http_server_free(srv[i]);
        fx_free(&f);
        tls_cert_unref(crt);
    }
}
END_TEST

/* The frontend (standing in for the DNS name) spreads connections over both nodes. */
START_TEST(frontend_spreads_over_nodes)
{
    fx_t f;
    aws_alb_params_t p;
    seed_hc(&p);
    p.frontend = tu_ip(FRONTEND);
    fx_new(&f, 8, &p, NULL, 0);
    sim_run(f.sim, 1 * SIM_S);
    static tu_res_t r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 40; i++) get_at(&f, tu_ip(FRONTEND), 80, "shop", "/app", &r);
    sim_run(f.sim, 2 * SIM_S);
    ck_assert_int_eq(r.n, 40);
    for (int i = 0; i < 40; i++) ck_assert_int_eq(r.r[i].status, 200);
    aws_alb_stats_t st = alb_stats(&f);
    ck_assert_uint_eq(st.requests, 40);
    tcp_stats_t a, b;
    tcp_stack_stats(aws_alb_node(f.alb, 0), &a);
    tcp_stack_stats(aws_alb_node(f.alb, 1), &b);
    ck_assert_uint_ge(a.passive_opens, 10);
    ck_assert_uint_ge(b.passive_opens, 10);
    ck_assert_uint_eq(a.passive_opens + b.passive_opens, 40);
    fx_free(&f);
}
END_TEST

Suite *suite_aws_alb(void)
{
    Suite *s = suite_create("aws_alb");
    TCase *tc = tcase_create("alb");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, initial_thresholds_timing);
    tcase_add_test(tc, fail_open);
    tcase_add_test(tc, error_mapping);
    tcase_add_test(tc, redirect_and_https_listener);
    tcase_add_test(tc, frontend_spreads_over_nodes);
    tcase_add_test(tc, https_targets_without_sni_or_validation);
    suite_add_tcase(s, tc);
    return s;
}

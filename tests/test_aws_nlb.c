/* test_aws_nlb.c -- the AWS NLB (ip targets) in a VPC fabric (1 ms per delivery) with two
 * zones: what the controller reads from the Service's annotations; the address a target
 * sees (the NLB node's, NAT'd source port); health thresholds and their timing; zone-local
 * choice with cross-zone off and spread with it on; routing failover (fail open) per node
 * and for all zones, with DNS membership; flows of a target that turns unhealthy reset on
 * their next packet (not when the node fails open); idle timeout 350 s; deregistration;
 * and the shared l4flow index against a reference. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws_nlb.h"
#include "l4flow.h"
#include "http.h"
#include "tcp.h"
#include "util.h"

#define L (1 * SIM_MS)                  /* fabric latency per delivery */
#define NP 3                            /* pods: a0, a1 in zone a, b0 in zone b */
#define NLB_A "10.0.1.200"
#define NLB_B "10.0.2.200"
#define TPORT 8080
#define HC_PATH "/healthz"

typedef struct pod {
    net_node_t *node;
    http_server_t *http;
    int hc_status;                      /* answer to HC_PATH */
    int app_requests;
    uint32_t app_peer, hc_peer;         /* peers of the last app / health request */
    uint16_t app_peer_port;
} pod_t;

typedef struct fx {
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    net_node_t *client;
    http_pool_t *pool;
    pod_t pod[NP];
    aws_nlb_t *nlb;
    explain_t *ex;
    struct { char reason[32]; } drop[256];
    int ndrop;
} fx_t;

static const char *pod_ip[NP] = {"10.0.1.10", "10.0.1.11", "10.0.2.10"};
static const char *pod_zone[NP] = {"us-east-1a", "us-east-1a", "us-east-1b"};
static const char *pod_name[NP] = {"a0", "a1", "b0"};

static void obs_drop(void *data, const net_node_t *where, const pkt_t *p, const char *reason,
                     const char *detail)
{
    fx_t *f = data;
    if (f->ndrop < 256) snprintf(f->drop[f->ndrop++].reason, 32, "%s", reason);
    /* as the scenario runner does: the drop is a note of its flow, caused by the state of
     * the element that dropped it */
    const char *owner = where ? where->name : "network";
    explain_note(f->ex, owner, p->flow, explain_state(f->ex, owner), "dropped (%s): %s", reason,
                 detail ? detail : "");
}

static void obs_note(void *data, const char *where, uint64_t flow, const char *text)
{
    fx_t *f = data;
    explain_note(f->ex, where, flow, explain_state(f->ex, where), "%s", text);
}

static int drops(const fx_t *f, const char *reason)
{
    int n = 0;
    for (int i = 0; i < f->ndrop; i++) n += !strcmp(f->drop[i].reason, reason);
    return n;
}

static void pod_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    pod_t *p = data;
    if (!strcmp(req->path, HC_PATH)) {
        p->hc_peer = http_exchange_peer_addr(ex);
        http_respond(ex, http_response_new(p->hc_status, NULL, 0));
        return;
    }
    p->app_requests++;
    p->app_peer = http_exchange_peer_addr(ex);
    p->app_peer_port = http_exchange_peer_port(ex);
    http_respond(ex, http_response_new(200, p->node->name, 0));
}

/* The seed's health check: HTTP on traffic-port, interval 10 s, thresholds 2/2. */
static void seed_params(aws_nlb_params_t *p)
{
    aws_nlb_params_default(p);
    p->name = "nlb";
    p->n_listeners = 1;
    p->listeners[0] = (aws_nlb_listener_t){.port = 80, .target_port = TPORT};
    p->hc_proto = AWS_NLB_HC_HTTP;
    p->hc_path = HC_PATH;
    p->hc_healthy = p->hc_unhealthy = 2;
}

/* server keep-alive: 0 = never closes idle connections */
static void fx_new(fx_t *f, uint64_t seed, const aws_nlb_params_t *np, sim_time_t keepalive)
{
    memset(f, 0, sizeof *f);
    tu_fabric_new(seed, "vpc", L, &f->sim, &f->net, &f->fab);
    f->ex = explain_new(f->sim);
    net_observer_t o = {.drop = obs_drop, .note = obs_note, .data = f};
    net_set_observer(f->net, &o);
    f->client = tu_fabric_host(f->net, f->fab, "client", "10.0.3.5", 16, true)->node;
    http_client_opts_t co = {.keepalive = true};
    f->pool = http_pool_new(f->client, &co);
    aws_nlb_zone_t zones[2] = {{.name = "us-east-1a", .addr = tu_ip(NLB_A)},
                               {.name = "us-east-1b", .addr = tu_ip(NLB_B)}};
    char err[256] = "";
    aws_nlb_params_t pp = *np;
    pp.explain = f->ex;
    f->nlb = aws_nlb_new(f->net, f->fab, &pp, zones, 2, err, sizeof err);
    ck_assert_msg(f->nlb != NULL, "%s", err);
    http_server_opts_t so = {.keepalive_timeout = keepalive};
    for (int i = 0; i < NP; i++) {
        pod_t *p = &f->pod[i];
        p->node = tu_fabric_host(f->net, f->fab, pod_name[i], pod_ip[i], 16, true)->node;
        p->hc_status = 200;
        int rc = 0;
        p->http = http_server_new(p->node, 0, TPORT, &so, pod_handler, p, &rc);
        ck_assert_ptr_nonnull(p->http);
        ck_assert_int_eq(aws_nlb_target_add(f->nlb, tu_ip(pod_ip[i]), pod_zone[i], pod_name[i]),
                         i);
    }
}

static void fx_free(fx_t *f)
{
    http_pool_free(f->pool);
    aws_nlb_free(f->nlb);
    for (int i = 0; i < NP; i++) http_server_free(f->pod[i].http);
    net_free(f->net);
    explain_free(f->ex);
    sim_free(f->sim);
}

/* fx_new with seed_params. */
static void fx_seed(fx_t *f, uint64_t seed, sim_time_t keepalive)
{
    aws_nlb_params_t p;
    seed_params(&p);
    fx_new(f, seed, &p, keepalive);
}

static void get(fx_t *f, http_pool_t *pool, const char *nlb_ip, tu_res_t *res)
{
    http_pool_request(pool ? pool : f->pool, tu_ip(nlb_ip), 80,
                      http_request_new("GET", "app", "/app", 0), tu_res_cb, res);
}

/* A client pool of its own that opens a new connection per request. */
static http_pool_t *pool_without_keepalive(fx_t *f)
{
    http_client_opts_t co = {.keepalive = false};
    return http_pool_new(f->client, &co);
}

static aws_nlb_stats_t nlb_stats(const fx_t *f)
{
    aws_nlb_stats_t st;
    aws_nlb_stats(f->nlb, &st);
    return st;
}

static int pod_index(const char *name)
{
    for (int i = 0; i < NP; i++)
        if (!strcmp(name, pod_name[i])) return i;
    return -1;
}

/* At 1 s a request through node nlb_ip on the kept-alive pool, answered by 2 s; returns the
 * index of the pod that answered (r.body[0]). */
static int first_request(fx_t *f, const char *nlb_ip, tu_res_t *r)
{
    sim_run(f->sim, 1 * SIM_S);
    get(f, NULL, nlb_ip, r);
    sim_run(f->sim, 2 * SIM_S);
    return pod_index(r->body[0]);
}

/* A service with the given annotations (key/value pairs, NULL-terminated). */
typedef struct svcbuf { k8s_service_t s; } svcbuf_t;
static void svc_init(svcbuf_t *b, const char *const *kv)
{
    memset(b, 0, sizeof *b);
    b->s.meta.name = (char *)"mtkc-gateway-istio";
    b->s.meta.ns = (char *)"istio-ingress";
    b->s.type = K8S_SVC_LOAD_BALANCER;
    for (size_t i = 0; kv && kv[i]; i += 2) {
        k8s_kv_t e = {(char *)kv[i], (char *)kv[i + 1]};
        lb_vec_push(&b->s.meta.annotations, e);
    }
    k8s_service_port_t status = {.name = (char *)"status-port", .port = 15021,
                                 .target_port = {.number = 15021}, .protocol = (char *)"TCP",
                                 .app_protocol = (char *)"tcp"};
    k8s_service_port_t http = {.name = (char *)"http", .port = 80,
                               .target_port = {.number = 8080}, .protocol = (char *)"TCP",
                               .app_protocol = (char *)"http"};
    k8s_service_port_t dns = {.name = (char *)"dns", .port = 53, .protocol = (char *)"UDP"};
    lb_vec_push(&b->s.ports, status);
    lb_vec_push(&b->s.ports, http);
    lb_vec_push(&b->s.ports, dns);
}
static void svc_free(svcbuf_t *b)
{
    lb_vec_free(&b->s.meta.annotations);
    lb_vec_free(&b->s.ports);
}

#define A "service.beta.kubernetes.io/aws-load-balancer-"

/* ---- the controller's reading of the Service ---------------------------------------------- */

START_TEST(annotations_and_defaults)
{
    svcbuf_t b;
    aws_nlb_params_t p;
    char err[256];
    /* only the type: the controller's defaults (instance targets for "external") */
    const char *only_type[] = {A "type", "external", NULL};
    svc_init(&b, only_type);
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), 0);
    ck_assert(!p.ip_targets);
    ck_assert(p.internal);
    ck_assert_int_eq(p.hc_proto, AWS_NLB_HC_TCP);
    ck_assert_int_eq(p.hc_port, 0);                     /* traffic-port */
    ck_assert_int_eq(p.hc_interval_s, 10);
    ck_assert_int_eq(p.hc_timeout_s, 10);
    ck_assert_int_eq(p.hc_healthy, 3);
    ck_assert_int_eq(p.hc_unhealthy, 3);
    ck_assert_str_eq(p.hc_path, "/");
    ck_assert_str_eq(p.hc_success, "200-399");
    ck_assert(!p.cross_zone);
    ck_assert(!p.preserve_client_ip);
    ck_assert(p.unhealthy_termination);
    ck_assert_int_eq(p.idle_timeout, 350 * SIM_S);
    ck_assert_int_eq(p.dereg_delay, 300 * SIM_S);
    ck_assert(!p.dereg_termination);
    ck_assert_int_eq(p.min_healthy, 1);
    ck_assert_uint_eq(p.n_listeners, 2);                /* the UDP port gets none */
    ck_assert_int_eq(p.listeners[0].port, 15021);
    ck_assert_int_eq(p.listeners[1].port, 80);
    ck_assert_int_eq(p.listeners[1].target_port, 8080);
    ck_assert_str_eq(p.listeners[1].name, "http");
    ck_assert_str_eq(p.name, "mtkc-gateway-istio");
    svc_free(&b);

    /* the seed's Gateway: ip targets, internal, HTTP health check with its settings */
    const char *seed[] = {
        A "type", "external", A "nlb-target-type", "ip", A "scheme", "internal",
        A "healthcheck-protocol", "HTTP", A "healthcheck-port", "status-port",
        A "healthcheck-path", "/healthz/ready", A "healthcheck-interval", "10",
        A "healthcheck-healthy-threshold", "2", A "healthcheck-unhealthy-threshold", "2",
        A "healthcheck-timeout", "6", A "healthcheck-success-codes", "200-299",
        A "attributes", "load_balancing.cross_zone.enabled=true, deletion_protection.enabled=false",
        A "target-group-attributes", "deregistration_delay.timeout_seconds=30,"
        "deregistration_delay.connection_termination.enabled=true,"
        "target_health_state.unhealthy.connection_termination.enabled=false,"
        "target_health_state.unhealthy.draining_interval_seconds=60",
        A "private-ipv4-addresses", "10.0.1.200, 10.0.2.200",
        NULL};
    svc_init(&b, seed);
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), 0);
    ck_assert(p.ip_targets);
    ck_assert(p.internal);
    ck_assert_int_eq(p.hc_proto, AWS_NLB_HC_HTTP);
    ck_assert_int_eq(p.hc_port, 15021);                 /* the port name's targetPort */
    ck_assert_str_eq(p.hc_path, "/healthz/ready");
    ck_assert_int_eq(p.hc_interval_s, 10);
    ck_assert_int_eq(p.hc_timeout_s, 6);
    ck_assert_int_eq(p.hc_healthy, 2);
    ck_assert_int_eq(p.hc_unhealthy, 2);
    ck_assert_str_eq(p.hc_success, "200-299");
    ck_assert(p.cross_zone);
    ck_assert_int_eq(p.dereg_delay, 30 * SIM_S);
    ck_assert(p.dereg_termination);
    ck_assert(!p.unhealthy_termination);
    ck_assert_int_eq(p.unhealthy_draining, 60 * SIM_S);
    ck_assert_uint_eq(p.n_private_ips, 2);
    ck_assert_uint_eq(p.private_ips[0], tu_ip("10.0.1.200"));
    ck_assert_uint_eq(p.private_ips[1], tu_ip("10.0.2.200"));
    svc_free(&b);

    /* the deprecated cross-zone annotation wins over the attributes; scheme over internal */
    const char *tie[] = {A "type", "nlb-ip", A "cross-zone-load-balancing-enabled", "false",
                         A "attributes", "load_balancing.cross_zone.enabled=true",
                         A "internal", "true", A "scheme", "internet-facing",
                         A "healthcheck-port", "8443", NULL};
    svc_init(&b, tie);
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), 0);
    ck_assert(p.ip_targets);
    ck_assert(!p.cross_zone);
    ck_assert(!p.internal);
    ck_assert_int_eq(p.hc_port, 8443);
    svc_free(&b);

    /* not the controller's: no type, or the in-tree "nlb" */
    const char *intree[] = {A "type", "nlb", NULL};
    svc_init(&b, intree);
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), LB_ENOENT);
    svc_free(&b);
    svc_init(&b, NULL);
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), LB_ENOENT);
    svc_free(&b);

    /* values the controller or the ELB API rejects */
    const char *bad[][5] = {
        {A "healthcheck-interval", "3", NULL},
        {A "healthcheck-unhealthy-threshold", "1", NULL},
        {A "healthcheck-timeout", "ten", NULL},
        {A "healthcheck-protocol", "UDP", NULL},
        {A "healthcheck-port", "metrics", NULL},
        {A "healthcheck-success-codes", "2xx", NULL},
        {A "target-group-attributes", "preserve_client_ip.enabled=maybe", NULL},
        {A "private-ipv4-addresses", "10.0.1.300", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[] = {A "type", "external", bad[i][0], bad[i][1], NULL};
        svc_init(&b, kv);
        err[0] = 0;
        ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), LB_EINVAL);
        ck_assert_msg(strstr(err, bad[i][0] + strlen("service.beta.kubernetes.io/")) ||
                      strstr(err, "preserve_client_ip"), "%s", err);
        svc_free(&b);
    }
    /* a named healthcheck-port whose targetPort is named cannot be used with ip targets */
    const char *named[] = {A "type", "external", A "healthcheck-port", "http", NULL};
    svc_init(&b, named);
    b.s.ports.v[1].target_port = (k8s_port_ref_t){.name = (char *)"http-alt"};
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), LB_EINVAL);
    ck_assert(strstr(err, "named") != NULL);
    b.s.meta.annotations.n = 1;                         /* without it: listener keeps the name */
    ck_assert_int_eq(aws_nlb_params_from_service(&b.s, &p, err, sizeof err), 0);
    ck_assert_int_eq(p.listeners[1].target_port, 0);
    ck_assert_str_eq(p.listeners[1].target_port_name, "http-alt");
    svc_free(&b);
}
END_TEST

/* ---- the data path ------------------------------------------------------------------------ */

/* Through node a the target sees the node's address and a NAT'd port (client IP
 * preservation is off for ip targets); the client sees the answer from the node address.
 * Health checks come from the node of the target's own zone. */
START_TEST(target_sees_nlb_address)
{
    fx_t f;
    fx_seed(&f, 1, 0);
    sim_run(f.sim, 1 * SIM_S);
    for (int i = 0; i < NP; i++)
        ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, i), HEALTH_UP);
    ck_assert_uint_eq(f.pod[0].hc_peer, tu_ip(NLB_A));
    ck_assert_uint_eq(f.pod[1].hc_peer, tu_ip(NLB_A));
    ck_assert_uint_eq(f.pod[2].hc_peer, tu_ip(NLB_B));
    tu_res_t r = {0};
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, 2 * SIM_S);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].outcome, HTTP_OK);
    ck_assert_int_eq(r.r[0].status, 200);
    /* SYN, SYN-ACK: 2 hops each way (client -> NLB -> pod -> NLB -> client) */
    ck_assert_int_eq(r.r[0].t_connected - r.r[0].t_start, 4 * L);
    ck_assert_int_eq(r.r[0].t_done - r.r[0].t_start, 8 * L);
    int t = pod_index(r.body[0]);
    ck_assert_int_ge(t, 0);
    ck_assert_int_lt(t, 2);                             /* zone a */
    ck_assert_uint_eq(f.pod[t].app_peer, tu_ip(NLB_A));
    ck_assert_uint_eq(f.pod[t].app_peer_port, 1024);    /* the first NAT port */
    aws_nlb_stats_t st = nlb_stats(&f);
    ck_assert_uint_eq(st.new_flows, 1);
    ck_assert_uint_eq(st.flows_now, 1);
    ck_assert_uint_eq(st.fail_open_flows, 0);
    fx_free(&f);
}
END_TEST

static void set_hc(sim_t *sim, void *a, void *b)
{
    (void)sim;
    ((pod_t *)a)->hc_status = (int)(intptr_t)b;
}

/* HTTP health check every 10 s from t=0, thresholds 2/2: every target up after its first
 * pass (initial) at 4 L; a0 answers 503 from 15 s: the 20 s and 30 s checks fail, down at
 * 30 s + 4 L; 200 again from 35 s: the 40 s and 50 s checks pass, up at 50 s + 4 L. */
START_TEST(health_thresholds_and_timing)
{
    fx_t f;
    fx_seed(&f, 2, 0);
    health_t *hc = aws_nlb_health(f.nlb, 0, 0);
    ck_assert_uint_eq(health_target_count(hc), 2);      /* zone a's checker: a0, a1 */
    ck_assert_uint_eq(health_target_count(aws_nlb_health(f.nlb, 0, 1)), 1);
    sim_run(f.sim, 4 * L - 1);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_INITIAL);
    sim_run(f.sim, 4 * L);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_UP);
    ck_assert_int_eq(health_target_since(hc, 0), 4 * L);
    sim_schedule_at(f.sim, 15 * SIM_S, set_hc, &f.pod[0], (void *)(intptr_t)503);
    sim_schedule_at(f.sim, 35 * SIM_S, set_hc, &f.pod[0], (void *)(intptr_t)200);
    sim_run(f.sim, 30 * SIM_S + 4 * L - 1);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_UP);
    ck_assert_int_eq(health_target_streak(hc, 0, false), 1);
    sim_run(f.sim, 30 * SIM_S + 4 * L);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_DOWN);
    ck_assert_int_eq(health_target_since(hc, 0), 30 * SIM_S + 4 * L);
    ck_assert_str_eq(health_target_last_failure(hc, 0)->reason, "HTTP 503");
    ck_assert_uint_eq(aws_nlb_healthy_in_view(f.nlb, 0, 0), 1);
    sim_run(f.sim, 50 * SIM_S + 4 * L - 1);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_DOWN);
    sim_run(f.sim, 50 * SIM_S + 4 * L);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_UP);
    /* a TCP health check (the controller's default) passes on the handshake: up at 2 L */
    fx_free(&f);
    aws_nlb_params_t p;
    aws_nlb_params_default(&p);
    p.n_listeners = 1;
    p.listeners[0] = (aws_nlb_listener_t){.port = 80, .target_port = TPORT};
    fx_new(&f, 2, &p, 0);
    sim_run(f.sim, 2 * L - 1);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 2), HEALTH_INITIAL);
    sim_run(f.sim, 2 * L);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 2), HEALTH_UP);
    ck_assert_int_eq(health_params(aws_nlb_health(f.nlb, 0, 1))->interval, 10 * SIM_S);
    ck_assert_int_eq(health_params(aws_nlb_health(f.nlb, 0, 1))->unhealthy_threshold, 3);
    fx_free(&f);
}
END_TEST

/* Cross-zone off: 40 connections to node a only reach a0 and a1 (both); on: they reach b0
 * too. */
START_TEST(zone_local_and_cross_zone)
{
    for (int cz = 0; cz < 2; cz++) {
        fx_t f;
        aws_nlb_params_t p;
        seed_params(&p);
        p.cross_zone = cz;
        fx_new(&f, 3, &p, 0);
        sim_run(f.sim, 1 * SIM_S);
        http_pool_t *pool = pool_without_keepalive(&f);
        static tu_res_t r;
        memset(&r, 0, sizeof r);
        for (int i = 0; i < 40; i++) get(&f, pool, NLB_A, &r);
        sim_run(f.sim, 3 * SIM_S);
        ck_assert_int_eq(r.n, 40);
        int per[NP] = {0};
        for (int i = 0; i < 40; i++) {
            ck_assert_int_eq(r.r[i].status, 200);
            per[pod_index(r.body[i])]++;
        }
        ck_assert_int_ge(per[0], 5);
        ck_assert_int_ge(per[1], 5);
        if (cz) ck_assert_int_ge(per[2], 5);
        else ck_assert_int_eq(per[2], 0);
        ck_assert_int_eq(f.pod[2].app_requests, per[2]);
        for (int i = 0; i < NP; i++)                    /* the NLB's own node address */
            if (per[i]) ck_assert_uint_eq(f.pod[i].app_peer, tu_ip(NLB_A));
        http_pool_free(pool);
        fx_free(&f);
    }
}
END_TEST

/* Zone a's targets both fail their checks: node a fails open (routing failover to its own
 * zone's unhealthy targets), zone a leaves DNS; then b0 fails too: every zone in DNS
 * again, both nodes fail open. A new flow through node a still reaches zone a. */
START_TEST(fail_open_per_node_and_all)
{
    fx_t f;
    fx_seed(&f, 4, 0);
    sim_run(f.sim, 1 * SIM_S);
    ck_assert(aws_nlb_zone_in_dns(f.nlb, 0));
    ck_assert(aws_nlb_zone_in_dns(f.nlb, 1));
    f.pod[0].hc_status = f.pod[1].hc_status = 500;
    sim_run(f.sim, 20 * SIM_S + 4 * L - 1);             /* checks at 10 s and 20 s fail */
    ck_assert_uint_eq(aws_nlb_healthy_in_view(f.nlb, 0, 0), 2);
    ck_assert(aws_nlb_zone_in_dns(f.nlb, 0));
    sim_run(f.sim, 20 * SIM_S + 4 * L);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 0), HEALTH_DOWN);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 1), HEALTH_DOWN);
    ck_assert_uint_eq(aws_nlb_healthy_in_view(f.nlb, 0, 0), 0);
    ck_assert(!aws_nlb_zone_in_dns(f.nlb, 0));
    ck_assert(aws_nlb_zone_in_dns(f.nlb, 1));
    tu_res_t r = {0};
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, 21 * SIM_S);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.r[0].status, 200);
    ck_assert_int_lt(pod_index(r.body[0]), 2);          /* zone a, though unhealthy */
    aws_nlb_stats_t st = nlb_stats(&f);
    ck_assert_uint_eq(st.fail_open_flows, 1);
    f.pod[2].hc_status = 500;
    sim_run(f.sim, 40 * SIM_S + 4 * L);
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, 2), HEALTH_DOWN);
    ck_assert(aws_nlb_zone_in_dns(f.nlb, 0));
    ck_assert(aws_nlb_zone_in_dns(f.nlb, 1));
    tu_res_t r2 = {0};
    http_pool_t *pool = pool_without_keepalive(&f);
    get(&f, pool, NLB_B, &r2);
    sim_run(f.sim, 41 * SIM_S);
    ck_assert_int_eq(r2.n, 1);
    ck_assert_int_eq(r2.r[0].status, 200);
    ck_assert_str_eq(r2.body[0], "b0");
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.fail_open_flows, 2);
    ck_assert_uint_eq(st.terminated, 0);
    http_pool_free(pool);
    fx_free(&f);
}
END_TEST

/* A kept-alive connection through node a to target X; X's checks fail while the other
 * zone-a target stays healthy: X's flow is terminated, and the client's next request on it
 * is answered by the NLB with a RST (HTTP_RESET). The target's own next packet (its
 * keep-alive FIN) gets a RST too. A new connection then avoids X. */
START_TEST(flows_reset_when_target_unhealthy)
{
    fx_t f;
    fx_seed(&f, 5, 75 * SIM_S);
    tu_res_t r = {0};
    int x = first_request(&f, NLB_A, &r);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_lt(x, 2);
    ck_assert_uint_eq(http_pool_idle_conns(f.pool, tu_ip(NLB_A), 80), 1);
    f.pod[x].hc_status = 503;
    sim_run(f.sim, 20 * SIM_S + 4 * L);                 /* checks at 10 s and 20 s fail */
    ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, x), HEALTH_DOWN);
    aws_nlb_stats_t st = nlb_stats(&f);
    ck_assert_uint_eq(st.terminated, 1);
    ck_assert_uint_eq(st.rst_sent, 0);                  /* nothing sent yet: on next packet */
    get(&f, NULL, NLB_A, &r);                           /* reuses the kept-alive connection */
    sim_run(f.sim, 21 * SIM_S);
    ck_assert_int_eq(r.n, 2);
    ck_assert(r.r[1].reused);
    ck_assert_int_eq(r.r[1].outcome, HTTP_RESET);
    ck_assert_int_eq(r.r[1].t_done - r.r[1].t_start, 2 * L);   /* to node a and back */
    ck_assert_int_eq(drops(&f, "nlb-flow-ended"), 1);
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.rst_sent, 1);
    /* the causal chain of the reset request reaches the failed health checks */
    explain_outcome(f.ex, "client", M_RESET, r.r[1].flow, "connection reset");
    char *text = tu_explain_text(f.ex, 1);
    char want[160];
    snprintf(want, sizeof want, "health check HTTP GET /healthz of %s port 8080 -> HTTP 503",
             pod_name[x]);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    snprintf(want, sizeof want, "target %s up -> down in target group of listener 80",
             pod_name[x]);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    ck_assert_msg(strstr(text, "terminated (target unhealthy)") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "NLB RST (flow ended: target unhealthy)") != NULL, "%s", text);
    if (getenv("SHOW_CHAIN")) fputs(text, stderr);
    free(text);
    /* the server's keep-alive close (75 s after its response at ~1 s) meets a RST */
    http_server_stats_t ss;
    sim_run(f.sim, 80 * SIM_S);
    http_server_stats(f.pod[x].http, &ss);
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.rst_sent, 2);
    ck_assert_uint_eq(ss.idle_closed, 1);
    /* new flows through node a go to the other zone-a target */
    get(&f, NULL, NLB_A, &r);
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, 81 * SIM_S);
    ck_assert_int_eq(r.n, 4);
    ck_assert_int_eq(pod_index(r.body[2]), 1 - x);
    ck_assert_int_eq(pod_index(r.body[3]), 1 - x);
    fx_free(&f);
}
END_TEST

/* b0 is zone b's only target: when it turns unhealthy node b fails open, so its flow is
 * kept ("unless the unhealthy target triggers the load balancer to fail open"). With
 * termination off and no draining interval flows are kept as well. */
START_TEST(no_reset_when_failing_open)
{
    for (int term = 1; term >= 0; term--) {
        fx_t f;
        aws_nlb_params_t p;
        seed_params(&p);
        p.unhealthy_termination = term;
        fx_new(&f, 6, &p, 0);
        tu_res_t r = {0};
        int x = first_request(&f, term ? NLB_B : NLB_A, &r);
        f.pod[x].hc_status = 503;
        sim_run(f.sim, 21 * SIM_S);
        ck_assert_int_eq(aws_nlb_target_state(f.nlb, 0, x), HEALTH_DOWN);
        get(&f, NULL, term ? NLB_B : NLB_A, &r);
        sim_run(f.sim, 22 * SIM_S);
        ck_assert_int_eq(r.n, 2);
        ck_assert(r.r[1].reused);
        ck_assert_int_eq(r.r[1].outcome, HTTP_OK);
        ck_assert_int_eq(pod_index(r.body[1]), x);
        ck_assert_uint_eq(nlb_stats(&f).terminated, 0);
        fx_free(&f);
    }
}
END_TEST

/* Termination off with a 60 s draining interval: the flow lives on until 60 s after the
 * target went down (20 s + 4 L), then is reset on its next packet. */
START_TEST(unhealthy_draining_interval)
{
    fx_t f;
    aws_nlb_params_t p;
    seed_params(&p);
    p.unhealthy_termination = false;
    p.unhealthy_draining = 60 * SIM_S;
    fx_new(&f, 7, &p, 0);
    tu_res_t r = {0};
    int x = first_request(&f, NLB_A, &r);
    f.pod[x].hc_status = 503;
    sim_run(f.sim, 79 * SIM_S);
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, 80 * SIM_S + 4 * L);
    ck_assert_int_eq(r.r[1].outcome, HTTP_OK);
    ck_assert_uint_eq(nlb_stats(&f).terminated, 1);     /* at 80 s + 4 L */
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, 81 * SIM_S);
    ck_assert_int_eq(r.n, 3);
    ck_assert_int_eq(r.r[2].outcome, HTTP_RESET);
    fx_free(&f);
}
END_TEST

/* TCP idle timeout 350 s: a request 349 s after the last packet goes through; one 351 s
 * after it gets a RST ("no longer valid"); the ended flow is reaped 350 s later. */
START_TEST(idle_timeout_350s)
{
    fx_t f;
    fx_seed(&f, 8, 0);
    tu_res_t r = {0};
    first_request(&f, NLB_A, &r);
    sim_time_t last = r.r[0].t_done;                    /* the client's last packet: its ACK
                                                         * of the response, now */
    sim_run(f.sim, last + 349 * SIM_S);
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, last + 350 * SIM_S);
    ck_assert_int_eq(r.n, 2);
    ck_assert_int_eq(r.r[1].outcome, HTTP_OK);
    sim_time_t last2 = r.r[1].t_done;
    aws_nlb_stats_t st;
    sim_run(f.sim, last2 + 349 * SIM_S);
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.idle_expired, 0);
    sim_run(f.sim, last2 + 351 * SIM_S);
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.idle_expired, 1);
    ck_assert_uint_eq(st.flows_now, 1);                 /* kept to answer late packets */
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, last2 + 352 * SIM_S);
    ck_assert_int_eq(r.n, 3);
    ck_assert_int_eq(r.r[2].outcome, HTTP_RESET);
    ck_assert_int_eq(r.r[2].t_done - r.r[2].t_start, 2 * L);
    ck_assert_int_eq(drops(&f, "nlb-flow-ended"), 1);
    sim_run(f.sim, last2 + 702 * SIM_S);
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.flows_now, 0);
    /* a segment of a flow nobody knows (not a SYN) is answered with a RST as well */
    uint64_t rst = st.rst_sent;
    pkt_t *pk = tu_tcp_pkt(f.net, "10.0.3.5", 40000, NLB_A, 80, TCP_ACK);
    pk->seq = 1000;
    pk->ack = 2000;
    net_fabric_send(f.fab, pk);
    sim_run(f.sim, last2 + 703 * SIM_S);
    st = nlb_stats(&f);
    ck_assert_uint_eq(st.rst_sent, rst + 1);
    ck_assert_int_eq(drops(&f, "nlb-no-flow"), 1);
    fx_free(&f);
}
END_TEST

/* Deregistration (delay 5 s, connection termination on): new flows avoid the target at
 * once; its flow lives until the delay ends, then is reset. A target in a zone the NLB is
 * not enabled in is refused. */
START_TEST(deregistration)
{
    fx_t f;
    aws_nlb_params_t p;
    seed_params(&p);
    p.dereg_delay = 5 * SIM_S;
    p.dereg_termination = true;
    fx_new(&f, 9, &p, 0);
    ck_assert_int_eq(aws_nlb_target_add(f.nlb, tu_ip("10.0.9.9"), "us-east-1c", NULL),
                     LB_ENOENT);
    ck_assert_int_eq(aws_nlb_target_add(f.nlb, tu_ip(pod_ip[0]), "us-east-1a", NULL),
                     LB_EEXIST);
    tu_res_t r = {0};
    int x = first_request(&f, NLB_A, &r);
    ck_assert_int_eq(aws_nlb_target_deregister(f.nlb, (size_t)x), 0);
    ck_assert_int_eq(aws_nlb_target_deregister(f.nlb, (size_t)x), LB_ESTATE);
    http_pool_t *pool = pool_without_keepalive(&f);
    tu_res_t r2 = {0};
    for (int i = 0; i < 10; i++) get(&f, pool, NLB_A, &r2);
    get(&f, NULL, NLB_A, &r);                           /* the old flow still works */
    sim_run(f.sim, 3 * SIM_S);
    ck_assert_int_eq(r.r[1].outcome, HTTP_OK);
    ck_assert_int_eq(pod_index(r.body[1]), x);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(pod_index(r2.body[i]), 1 - x);
    sim_run(f.sim, 8 * SIM_S);
    get(&f, NULL, NLB_A, &r);
    sim_run(f.sim, 9 * SIM_S);
    ck_assert_int_eq(r.r[2].outcome, HTTP_RESET);
    http_pool_free(pool);
    fx_free(&f);
}
END_TEST

/* Construction errors: no listener, preserve_client_ip, instance targets, unresolved
 * named targetPort, an address taken, the subnet fallback address. */
START_TEST(construction)
{
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    tu_fabric_new(1, "vpc", L, &sim, &net, &fab);
    aws_nlb_params_t p;
    aws_nlb_zone_t z = {.name = "a", .subnet = tu_ip("10.0.1.0"), .plen = 24};
    char err[256];
    aws_nlb_params_default(&p);
    ck_assert_ptr_null(aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err));
    ck_assert(strstr(err, "listener") != NULL);
    p.n_listeners = 1;
    p.listeners[0] = (aws_nlb_listener_t){.port = 80, .target_port_name = "http"};
    ck_assert_ptr_null(aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err));
    ck_assert(strstr(err, "named targetPort") != NULL);
    p.listeners[0].target_port = 8080;
    p.preserve_client_ip = true;
    ck_assert_ptr_null(aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err));
    p.preserve_client_ip = false;
    p.ip_targets = false;
    ck_assert_ptr_null(aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err));
    ck_assert(strstr(err, "instance") != NULL);
    p.ip_targets = true;
    p.name = "n1";
    aws_nlb_t *n = aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err);
    ck_assert_msg(n != NULL, "%s", err);
    ck_assert_uint_eq(aws_nlb_zone_addr(n, 0), tu_ip("10.0.1.254"));
    ck_assert_str_eq(aws_nlb_zone_node(n, 0)->name, "n1-a");
    p.name = "n2";
    ck_assert_ptr_null(aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err));
    ck_assert(strstr(err, "already in use") != NULL);
    p.n_private_ips = 1;
    p.private_ips[0] = tu_ip("10.0.1.77");
    aws_nlb_t *n2 = aws_nlb_new(net, fab, &p, &z, 1, err, sizeof err);
    ck_assert_msg(n2 != NULL, "%s", err);
    ck_assert_uint_eq(aws_nlb_zone_addr(n2, 0), tu_ip("10.0.1.77"));
    aws_nlb_free(n);
    aws_nlb_free(n2);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* The shared index against a plain array, through growth and backward-shift deletions. */
START_TEST(l4flow_index_reference)
{
    enum { N = 3000 };
    static l4flow_key_t keys[N];
    static int64_t ref[N];
    l4flow_index_t ix;
    l4flow_index_init(&ix, 42);
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        s = lb_mix64(s + (uint64_t)i);
        keys[i] = l4flow_key((uint32_t)s, (uint16_t)(s >> 32), (uint32_t)(s >> 16) & 0xff,
                             80, NET_PROTO_TCP, (uint8_t)(i & 1));
        ref[i] = -1;
    }
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            uint64_t r = lb_mix64((uint64_t)(round * N + i));
            if (ref[i] < 0 && (r & 3) != 0) {
                ck_assert_int_eq(l4flow_index_put(&ix, &keys[i], (uint32_t)i), 0);
                ref[i] = i;
            } else if (ref[i] >= 0 && (r & 1)) {
                ck_assert_int_eq(l4flow_index_put(&ix, &keys[i], 1), LB_EEXIST);
                ck_assert_int_eq(l4flow_index_del(&ix, &keys[i]), 0);
                ck_assert_int_eq(l4flow_index_del(&ix, &keys[i]), LB_ENOENT);
                ref[i] = -1;
            }
        }
        size_t live = 0;
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(l4flow_index_get(&ix, &keys[i]), ref[i]);
            live += ref[i] >= 0;
        }
        ck_assert_uint_eq(l4flow_index_count(&ix), live);
    }
    /* the tag separates otherwise equal tuples */
    l4flow_key_t a = l4flow_key(1, 2, 3, 4, NET_PROTO_TCP, 0), b = a;
    b.tag = 1;
    l4flow_index_t j = {0};
    ck_assert_int_eq(l4flow_index_get(&j, &a), -1);
    ck_assert_int_eq(l4flow_index_put(&j, &a, 5), 0);
    ck_assert_int_eq(l4flow_index_get(&j, &b), -1);
    ck_assert_int_eq(l4flow_index_put(&j, &b, 6), 0);
    ck_assert_int_eq(l4flow_index_get(&j, &a), 5);
    ck_assert_int_eq(l4flow_index_get(&j, &b), 6);
    l4flow_index_free(&j);
    l4flow_index_free(&ix);
}
END_TEST

Suite *suite_aws_nlb(void)
{
    Suite *s = suite_create("aws_nlb");
    TCase *tc = tcase_create("nlb");
    tcase_add_test(tc, annotations_and_defaults);
    tcase_add_test(tc, target_sees_nlb_address);
    tcase_add_test(tc, health_thresholds_and_timing);
    tcase_add_test(tc, zone_local_and_cross_zone);
    tcase_add_test(tc, fail_open_per_node_and_all);
    tcase_add_test(tc, flows_reset_when_target_unhealthy);
    tcase_add_test(tc, no_reset_when_failing_open);
    tcase_add_test(tc, unhealthy_draining_interval);
    tcase_add_test(tc, idle_timeout_350s);
    tcase_add_test(tc, deregistration);
    tcase_add_test(tc, construction);
    tcase_add_test(tc, l4flow_index_reference);
    suite_add_tcase(s, tc);
    return s;
}

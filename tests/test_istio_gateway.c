/* test_istio_gateway.c -- the Istio gateway on a small VNet (fabric, 1 ms one way): a client,
 * the gateway pod and nginx-like app pods, with hand-built Kubernetes objects (the seed's
 * Gateway istio-ingress/mtkc-gateway, HTTPRoutes, Services, a ReferenceGrant). Checks
 * routing to EDS endpoints, Envoy's answers and flags (NR, 500 direct response, NC, UH,
 * UF with retries, UT), the health route fix, readiness on :15021, weighted splits,
 * endpoint picking, trace lines, and the Service/Deployment Istio generates. */
#include <check.h>
#include <string.h>
#include "util.h"
#include "apps.h"
#include "istio_gateway.h"
#include "cloud_provider_azure.h"

#define LAT (1 * SIM_MS)

/* ---- hand-built Kubernetes objects ----------------------------------------------------- */
static int order;

static void kv(k8s_kvs_t *v, const char *k, const char *val)
{
    k8s_kv_t e = { lb_strdup(k), lb_strdup(val) };
    lb_vec_push(v, e);
}

static void meta(k8s_meta_t *m, const char *ns, const char *name)
{
    m->ns = lb_strdup(ns);
    m->name = lb_strdup(name);
    m->order = order++;
}

static k8s_gateway_t *mk_gateway(k8s_objects_t *o, const char *ns, const char *name)
{
    k8s_gateway_t *g = lb_calloc(1, sizeof(*g));
    meta(&g->meta, ns, name);
    g->class_name = lb_strdup("istio");
    lb_vec_push(&o->gateways, g);
    return g;
}

static void mk_listener(k8s_gateway_t *g, const char *name, int port, const char *proto,
                        const char *hostname)
{
    gw_listener_t l = { lb_strdup(name), port, lb_strdup(proto),
                        hostname ? lb_strdup(hostname) : NULL, lb_strdup("All"), NULL };
    lb_vec_push(&g->listeners, l);
}

static void mk_service(k8s_objects_t *o, const char *ns, const char *name, int port, int target)
{
    k8s_service_t *s = lb_calloc(1, sizeof(*s));
    meta(&s->meta, ns, name);
    kv(&s->selector, "app", name);
    k8s_service_port_t p = { lb_strdup("http"), port, { target, NULL }, 0, lb_strdup("TCP"),
                             NULL };
    lb_vec_push(&s->ports, p);
    lb_vec_push(&o->services, s);
}

static k8s_httproute_t *mk_route(k8s_objects_t *o, const char *ns, const char *name,
                                 const char *section)
{
    k8s_httproute_t *r = lb_calloc(1, sizeof(*r));
    meta(&r->meta, ns, name);
    gw_parent_ref_t p = { lb_strdup("mtkc-gateway"), lb_strdup("istio-ingress"),
                          section ? lb_strdup(section) : NULL, 0 };
    lb_vec_push(&r->parents, p);
    lb_vec_push(&o->routes, r);
    return r;
}

static void add_backend(gw_route_rule_t *rule, const char *ns, const char *name, int port,
                        int weight)
{
    gw_backend_ref_t b = { NULL, NULL, lb_strdup(name), ns ? lb_strdup(ns) : NULL, port,
                           weight };
    lb_vec_push(&rule->backends, b);
}

/* A rule PathPrefix `path` -> ns/name:port (ns NULL: the route's). */
static gw_route_rule_t *add_rule(k8s_httproute_t *r, const char *path, const char *ns,
                                 const char *name, int port)
{
    gw_route_rule_t rule = { 0 };
    gw_route_match_t m = { .path_type = GW_PATH_PREFIX, .path = lb_strdup(path) };
    lb_vec_push(&rule.matches, m);
    if (name)
        add_backend(&rule, ns, name, port, 1);
    lb_vec_push(&r->rules, rule);
    return &r->rules.v[r->rules.n - 1];
}

static void mk_grant(k8s_objects_t *o, const char *ns, const char *from_ns)
{
    k8s_refgrant_t *g = lb_calloc(1, sizeof(*g));
    meta(&g->meta, ns, "allow-routes");
    gw_grant_from_t f = { lb_strdup(GW_API_GROUP), lb_strdup("HTTPRoute"), lb_strdup(from_ns) };
    lb_vec_push(&g->from, f);
    gw_grant_to_t t = { lb_strdup(""), lb_strdup("Service"), NULL };
    lb_vec_push(&g->to, t);
    lb_vec_push(&o->grants, g);
}

/* The seed's Gateway: listeners http 80 and https 443, routes from all namespaces. */
static k8s_gateway_t *seed_gateway(k8s_objects_t *o)
{
    k8s_gateway_t *g = mk_gateway(o, "istio-ingress", "mtkc-gateway");
    mk_listener(g, "http", 80, "HTTP", NULL);
    mk_listener(g, "https", 443, "HTTPS", NULL);
    kv(&g->meta.annotations, "service.beta.kubernetes.io/azure-load-balancer-internal", "true");
    kv(&g->meta.annotations, "kubectl.kubernetes.io/last-applied-configuration", "{}");
    kv(&g->meta.labels, "team", "platform");
    return g;
}

/* Rules of default/apps, by index. */
enum { R_APP1, R_APP2, R_SLOW, R_CROSS, R_CLOSED, R_EMPTY, R_SPLIT, R_BADPORT, R_MIXED,
       R_UNKNOWN_SVC };

static void seed_objects(k8s_objects_t *o)
{
    memset(o, 0, sizeof(*o));
    seed_gateway(o);
    mk_service(o, "default", "app1", 80, 8080);
    mk_service(o, "default", "app2", 80, 8080);
    mk_service(o, "default", "closed", 80, 9999);
    mk_service(o, "default", "empty", 80, 8080);
    mk_service(o, "default", "mixed", 80, 8080);
    mk_service(o, "default", "nobody", 80, 8080);
    mk_service(o, "other", "app3", 80, 8080);
    mk_service(o, "gateway-health", "health-responder", 80, 8080);
    k8s_httproute_t *r = mk_route(o, "default", "apps", NULL);
    add_rule(r, "/app1", NULL, "app1", 80);
    add_rule(r, "/app2", NULL, "app2", 80);
    add_rule(r, "/slow", NULL, "app1", 80);
    add_rule(r, "/cross", "other", "app3", 80);
    add_rule(r, "/closed", NULL, "closed", 80);
    add_rule(r, "/empty", NULL, "empty", 80);
    gw_route_rule_t *split = add_rule(r, "/split", NULL, "app1", 80);
    split->backends.v[0].weight = 3;
    add_backend(split, NULL, "app2", 80, 1);
    add_rule(r, "/badport", NULL, "app1", 81);
    add_rule(r, "/mixed", NULL, "mixed", 80);
    add_rule(r, "/nobody", NULL, "nobody", 80);
}

/* The fix from the articles: /healthz to the health responder in gateway-health. */
static void add_health_route(k8s_objects_t *o)
{
    k8s_httproute_t *r = mk_route(o, "gateway-health", "health", "http");
    add_rule(r, "/healthz", NULL, "health-responder", 80);
}

/* ---- topology -------------------------------------------------------------------------- */
typedef struct env {
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    net_node_t *client, *gwnode;
    uint32_t a_gw;
    app_http_server_t *app[5];      /* app1, app2, app3, health, app1b */
    k8s_objects_t objs;
    istio_gw_t *gw;
    http_pool_t *pool;
    metrics_t *m;
    tu_res_t res;
    char trace[64][256];
    int ntrace;
} env_t;

static net_node_t *host(env_t *e, const char *name, const char *ip)
{
    return tu_fabric_host(e->net, e->fab, name, ip, 8, false)->node;
}

static app_http_server_t *app(env_t *e, const char *name, const char *ip, const char *body)
{
    net_node_t *n = host(e, name, ip);
    app_location_t l[2];
    app_location_init(&l[0], "/", APP_MATCH_PREFIX);
    l[0].body = body;
    app_location_init(&l[1], "/slow", APP_MATCH_PREFIX);
    l[1].body = "slow";
    l[1].service_time = (dist_t){ DIST_CONST, (double)(5 * SIM_S), 0 };
    int rc = -1;
    app_http_server_t *s = app_http_server_new(n, 8080, l, 2, NULL, &rc);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void on_trace(void *data, sim_time_t t, uint64_t flow, const char *where,
                     const char *text)
{
    (void)t; (void)flow; (void)where;
    env_t *e = data;
    if (e->ntrace < 64)
        snprintf(e->trace[e->ntrace++], sizeof e->trace[0], "%s", text);
}

static bool traced(const env_t *e, const char *needle)
{
    for (int i = 0; i < e->ntrace; i++)
        if (strstr(e->trace[i], needle))
            return true;
    return false;
}

static void eps(env_t *e, const char *ns, const char *svc, const char *ip, uint16_t port,
                bool ready)
{
    istio_endpoint_t ep = { tu_ip(ip), port, ready };
    istio_gw_set_endpoints(e->gw, ns, svc, 80, &ep, 1);
}

static void env_new(env_t *e, const istio_gw_opts_t *go)
{
    memset(e, 0, sizeof(*e));
    tu_fabric_new(5, "vnet", LAT, &e->sim, &e->net, &e->fab);
    e->client = host(e, "client", "10.0.0.10");
    e->gwnode = host(e, "mtkc-gateway-istio-0", "10.244.0.10");
    e->a_gw = tu_ip("10.244.0.10");
    e->app[0] = app(e, "app1-0", "10.244.1.1", "app1");
    e->app[1] = app(e, "app2-0", "10.244.1.2", "app2");
    e->app[2] = app(e, "app3-0", "10.244.3.1", "app3");
    e->app[3] = app(e, "health-0", "10.244.2.1", "ok");
    e->app[4] = app(e, "app1-1", "10.244.1.3", "app1b");
    net_observer_t ob = { .trace = on_trace, .data = e };
    net_set_observer(e->net, &ob);
    seed_objects(&e->objs);
    e->m = metrics_new(SIM_S, 600 * SIM_S);
    istio_gw_opts_t o;
    if (go)
        o = *go;
    else
        istio_gw_opts_init(&o);
    o.name = "gw";
    o.metrics = e->m;
    int rc = -1;
    e->gw = istio_gw_new(e->gwnode, &e->objs, e->objs.gateways.v[0], &o, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(e->gw);
    eps(e, "default", "app1", "10.244.1.1", 8080, true);
    eps(e, "default", "app2", "10.244.1.2", 8080, true);
    eps(e, "default", "closed", "10.244.1.1", 9999, true);      /* nothing listens */
    eps(e, "default", "empty", "10.244.1.2", 8080, false);      /* not ready */
    eps(e, "other", "app3", "10.244.3.1", 8080, true);
    eps(e, "gateway-health", "health-responder", "10.244.2.1", 8080, true);
    istio_endpoint_t mixed[2] = { { tu_ip("10.244.1.1"), 9999, true },
                                  { tu_ip("10.244.1.2"), 8080, true } };
    istio_gw_set_endpoints(e->gw, "default", "mixed", 80, mixed, 2);
    e->pool = http_pool_new(e->client, NULL);
}

static void env_free(env_t *e)
{
    http_pool_free(e->pool);
    istio_gw_free(e->gw);
    for (int i = 0; i < 5; i++)
        app_http_server_free(e->app[i]);
    k8s_objects_free(&e->objs);
    metrics_free(e->m);
    net_free(e->net);
    sim_free(e->sim);
}

/* Sends GET host/path to the gateway on port and runs until it is answered (or d). */
static int get_host(env_t *e, uint16_t port, const char *hostname, const char *path,
                    sim_time_t d)
{
    int i = e->res.n % TU_RES_MAX;
    http_pool_request(e->pool, e->a_gw, port, http_request_new("GET", hostname, path, 0),
                      tu_res_cb, &e->res);
    sim_run(e->sim, sim_now(e->sim) + d);
    return i;
}

static int get(env_t *e, const char *path)
{
    return get_host(e, 80, "shop.example.com", path, 100 * SIM_MS);
}

static sim_time_t took(const env_t *e, int i)
{
    return e->res.r[i].t_done - e->res.r[i].t_start;
}

/* GET path (as get()), asserting the answer's status; returns the result's slot. */
static int get_status(env_t *e, const char *path, int status)
{
    int i = get(e, path);
    ck_assert_int_eq(e->res.r[i].status, status);
    return i;
}

/* GET path on the status port (:15021), asserting the answer's status; returns the slot. */
static int get_status_port(env_t *e, const char *path, int status)
{
    int i = get_host(e, ISTIO_STATUS_PORT, "10.244.0.10:15021", path, 100 * SIM_MS);
    ck_assert_int_eq(e->res.r[i].status, status);
    return i;
}

/* ---- tests ------------------------------------------------------------------------------ */
START_TEST(routes_to_endpoints)
{
    env_t e;
    env_new(&e, NULL);
    net_trace_flow(e.net, 1);           /* the client's first connection */
    int i = get(&e, "/app1");
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_OK);
    ck_assert_int_eq(e.res.r[i].status, 200);
    ck_assert_str_eq(e.res.body[i], "app1");
    ck_assert_str_eq(e.res.server[i], "istio-envoy");
    ck_assert_str_eq(e.res.detail[i], "");
    /* client handshake + request 3 ms, upstream handshake + request 3 ms, 2 ms back */
    ck_assert_int_eq(took(&e, i), 8 * SIM_MS);
    ck_assert(traced(&e, "istio: route default/apps rule 0"));
    ck_assert(traced(&e, "istio: endpoint 10.244.1.1:8080 of default/app1:80 picked"));
    ck_assert(traced(&e, "l7: upstream 10.244.1.1:8080"));
    i = get(&e, "/app2/deep/path");
    ck_assert_str_eq(e.res.body[i], "app2");
    get_status(&e, "/app10", 404);          /* PathPrefix matches whole path elements */
    /* the HTTPS listener terminates TLS; its certificateRefs resolve to nothing here, so
     * Envoy has no filter chain for it and resets a plain-HTTP request */
    i = get_host(&e, 443, "shop.example.com", "/app1", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_RESET);
    ck_assert_uint_eq(app_http_server_hits(e.app[0], 0), 1);
    env_free(&e);
}
END_TEST

START_TEST(unknown_path_is_nr)
{
    env_t e;
    env_new(&e, NULL);
    net_trace_flow(e.net, 1);
    int i = get_status(&e, "/unknown", 404);
    ck_assert_str_eq(e.res.detail[i], "NR route_not_found");
    ck_assert_str_eq(e.res.body[i], "");
    ck_assert_str_eq(e.res.server[i], "istio-envoy");
    ck_assert_int_eq(took(&e, i), 4 * SIM_MS);
    ck_assert(traced(&e, "istio: no route for shop.example.com/unknown on :80"));
    ck_assert_uint_eq(istio_gw_flag_count(e.gw, "NR"), 1);
    m_window_t all = { 0, SIM_TIME_MAX };
    ck_assert_int_eq(metrics_counter(e.m, "gw.flag.NR", all), 1);
    ck_assert_int_eq(metrics_counter(e.m, "gw.requests", all), 1);
    env_free(&e);
}
END_TEST

/* Failure 1 of the articles, and its fix. */
START_TEST(healthz_needs_the_health_route)
{
    env_t e;
    env_new(&e, NULL);
    int i = get_status(&e, "/healthz/ready", 404);
    ck_assert_str_eq(e.res.detail[i], "NR route_not_found");
    ck_assert_uint_eq(app_http_server_hits(e.app[3], 0), 0);
    add_health_route(&e.objs);
    istio_gw_reload(e.gw);
    i = get_status(&e, "/healthz/ready", 200);
    ck_assert_str_eq(e.res.body[i], "ok");
    ck_assert_uint_eq(app_http_server_hits(e.app[3], 0), 1);
    get_status(&e, "/", 404);               /* what an LB's default probe asks: still 404 */
    env_free(&e);
}
END_TEST

START_TEST(cross_namespace_needs_grant)
{
    env_t e;
    env_new(&e, NULL);
    int i = get_status(&e, "/cross", 500);
    ck_assert(strncmp(e.res.detail[i], "- direct_response (backendRef other/app3 not "
                      "accessible", 53) == 0);
    ck_assert_uint_eq(istio_gw_flag_count(e.gw, "DR"), 1);
    ck_assert_uint_eq(app_http_server_hits(e.app[2], 0), 0);
    mk_grant(&e.objs, "other", "default");
    istio_gw_reload(e.gw);
    i = get_status(&e, "/cross", 200);
    ck_assert_str_eq(e.res.body[i], "app3");
    env_free(&e);
}
END_TEST

START_TEST(no_ready_endpoints_is_uh)
{
    env_t e;
    env_new(&e, NULL);
    int i = get_status(&e, "/empty", 503);
    ck_assert_str_eq(e.res.body[i], "no healthy upstream");
    ck_assert_str_eq(e.res.detail[i], "UH no_healthy_upstream");
    i = get_status(&e, "/nobody", 503);     /* no EDS at all for the Service */
    ck_assert_str_eq(e.res.detail[i], "UH no_healthy_upstream");
    ck_assert_uint_eq(istio_gw_flag_count(e.gw, "UH"), 2);
    /* the pod turns ready */
    eps(&e, "default", "empty", "10.244.1.2", 8080, true);
    i = get_status(&e, "/empty", 200);
    ck_assert_str_eq(e.res.body[i], "app2");
    i = get_status(&e, "/badport", 503);    /* backendRef port the Service does not have */
    ck_assert_str_eq(e.res.detail[i], "NC cluster_not_found");
    env_free(&e);
}
END_TEST

START_TEST(closed_port_is_uf_after_retries)
{
    env_t e;
    env_new(&e, NULL);
    int i = get_status(&e, "/closed", 503);
    ck_assert_str_eq(e.res.detail[i], "UF,URX upstream_reset_before_response_started"
                     "{remote_connection_failure|delayed_connect_error:_111}");
    ck_assert_str_eq(e.res.body[i], "upstream connect error or disconnect/reset before "
                     "headers. retried and the latest reset reason: remote connection "
                     "failure, transport failure reason: delayed connect error: 111");
    l7proxy_stats_t st;
    l7proxy_stats(istio_gw_proxy(e.gw), &st);
    ck_assert_uint_eq(st.outcomes[HTTP_CONNECT_REFUSED], 1 + ISTIO_NUM_RETRIES_DEFAULT);
    ck_assert_uint_eq(st.retries, ISTIO_NUM_RETRIES_DEFAULT);
    /* 3 ms in, three SYN/RST round trips of 2 ms, backoffs below 25 and 75 ms, 1 ms out */
    sim_time_t lat = took(&e, i);
    ck_assert_int_ge(lat, 10 * SIM_MS);
    ck_assert_int_lt(lat, 10 * SIM_MS + 100 * SIM_MS);
    ck_assert_uint_eq(istio_gw_flag_count(e.gw, "UF"), 1);
    /* without retries: the first refusal answers, no URX, no "retried" */
    istio_gw_opts_t o;
    istio_gw_opts_init(&o);
    o.num_retries = 0;
    env_free(&e);
    env_new(&e, &o);
    i = get_status(&e, "/closed", 503);
    ck_assert_str_eq(e.res.detail[i], "UF upstream_reset_before_response_started"
                     "{remote_connection_failure|delayed_connect_error:_111}");
    ck_assert(strstr(e.res.body[i], "retried") == NULL);
    ck_assert_int_eq(took(&e, i), 6 * SIM_MS);
    env_free(&e);
}
END_TEST

/* One endpoint refuses, the other works: Istio's retry with previous_hosts hides it. */
START_TEST(retry_hides_one_bad_endpoint)
{
    env_t e;
    env_new(&e, NULL);
    for (int k = 0; k < 20; k++) {
        int i = get_status(&e, "/mixed", 200);
        ck_assert_str_eq(e.res.body[i], "app2");
    }
    l7proxy_stats_t st;
    l7proxy_stats(istio_gw_proxy(e.gw), &st);
    ck_assert_uint_gt(st.outcomes[HTTP_CONNECT_REFUSED], 0);
    ck_assert_uint_eq(st.retries, st.outcomes[HTTP_CONNECT_REFUSED]);
    ck_assert_uint_eq(st.outcomes[HTTP_OK], 20);
    env_free(&e);
}
END_TEST

START_TEST(route_timeout_is_ut)
{
    env_t e;
    env_new(&e, NULL);
    /* no timeout by default (ISTIO_DEFAULT_REQUEST_TIMEOUT 0): the 5 s answer arrives */
    int i = get_host(&e, 80, "shop.example.com", "/slow", 6 * SIM_S);
    ck_assert_int_eq(e.res.r[i].status, 200);
    ck_assert_str_eq(e.res.body[i], "slow");
    ck_assert_int_eq(istio_gw_set_rule_timeout(e.gw, "default", "apps", R_SLOW, SIM_S), 0);
    ck_assert_int_eq(istio_gw_set_rule_timeout(e.gw, "default", "apps", 99, SIM_S),
                     LB_ENOENT);
    ck_assert_int_eq(istio_gw_set_rule_timeout(e.gw, "default", "nope", 0, SIM_S),
                     LB_ENOENT);
    i = get_host(&e, 80, "shop.example.com", "/slow", 6 * SIM_S);
    ck_assert_int_eq(e.res.r[i].status, 504);
    ck_assert_str_eq(e.res.body[i], "upstream request timeout");
    ck_assert_str_eq(e.res.detail[i], "UT upstream_response_timeout");
    /* kept-alive client connection: 1 ms in, the 1 s route timeout, 1 ms out */
    ck_assert(e.res.r[i].reused);
    ck_assert_int_eq(took(&e, i), SIM_S + 2 * SIM_MS);
    ck_assert_uint_eq(istio_gw_flag_count(e.gw, "UT"), 1);
    env_free(&e);
}
END_TEST

START_TEST(readiness_on_status_port)
{
    env_t e;
    env_new(&e, NULL);
    get_status_port(&e, "/healthz/ready", 200);
    int i = get_status_port(&e, "/", 404);
    ck_assert_str_eq(e.res.detail[i], "NR route_not_found");
    istio_gw_set_ready(e.gw, false);
    ck_assert(!istio_gw_ready(e.gw));
    get_status_port(&e, "/healthz/ready", 503);
    /* traffic ports are not gated by readiness (kubelet's probe is) */
    get_status(&e, "/app1", 200);
    env_free(&e);
}
END_TEST

START_TEST(weighted_split)
{
    env_t e;
    env_new(&e, NULL);
    for (int k = 0; k < 400; k++)
        get_host(&e, 80, "shop.example.com", "/split", 10 * SIM_MS);
    ck_assert_int_eq(e.res.n, 400);
    uint64_t a1 = app_http_server_hits(e.app[0], 0), a2 = app_http_server_hits(e.app[1], 0);
    ck_assert_uint_eq(a1 + a2, 400);
    /* 3:1; binomial sd ~8.7 */
    ck_assert_uint_ge(a1, 270);
    ck_assert_uint_le(a1, 330);
    env_free(&e);
}
END_TEST

START_TEST(least_request_picks_ready_endpoints)
{
    env_t e;
    env_new(&e, NULL);
    istio_endpoint_t two[3] = { { tu_ip("10.244.1.1"), 8080, true },
                                { tu_ip("10.244.1.3"), 8080, true },
                                { tu_ip("10.244.1.9"), 8080, false } };   /* never picked */
    istio_gw_set_endpoints(e.gw, "default", "app1", 80, two, 3);
    int b1 = 0, b2 = 0;
    for (int k = 0; k < 100; k++) {
        int i = get_host(&e, 80, "shop.example.com", "/app1", 10 * SIM_MS);
        ck_assert_int_eq(e.res.r[i].status, 200);
        b1 += strcmp(e.res.body[i], "app1") == 0;
        b2 += strcmp(e.res.body[i], "app1b") == 0;
    }
    ck_assert_int_eq(b1 + b2, 100);
    ck_assert_int_ge(b1, 30);
    ck_assert_int_ge(b2, 30);
    /* two requests in flight on a slow path: the second goes to the idle endpoint unless
     * both random choices fall on the busy one */
    env_free(&e);
}
END_TEST

START_TEST(listener_hostnames)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = mk_gateway(&o, "istio-ingress", "mtkc-gateway");
    mk_listener(g, "a", 80, "HTTP", "a.example.com");
    mk_listener(g, "any", 80, "HTTP", NULL);
    mk_listener(g, "tcp", 9000, "TCP", NULL);
    mk_service(&o, "istio-ingress", "app1", 80, 8080);
    k8s_httproute_t *r = mk_route(&o, "istio-ingress", "only-a", "a");
    add_rule(r, "/app1", NULL, "app1", 80);

    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    tu_fabric_new(1, "vnet", LAT, &sim, &net, &fab);
    net_node_t *c = tu_fabric_host(net, fab, "c", "10.0.0.1", 8, false)->node;
    net_node_t *gn = tu_fabric_host(net, fab, "g", "10.0.0.2", 8, false)->node;
    net_node_t *an = tu_fabric_host(net, fab, "a", "10.0.0.3", 8, false)->node;
    app_location_t l;
    app_location_init(&l, "/", APP_MATCH_PREFIX);
    l.body = "a";
    int rc = -1;
    app_http_server_t *as = app_http_server_new(an, 8080, &l, 1, NULL, &rc);
    istio_gw_t *gw = istio_gw_new(gn, &o, g, NULL, &rc);
    ck_assert_ptr_nonnull(gw);
    istio_endpoint_t ep = { tu_ip("10.0.0.3"), 8080, true };
    istio_gw_set_endpoints(gw, "istio-ingress", "app1", 80, &ep, 1);
    http_pool_t *pool = http_pool_new(c, NULL);
    tu_res_t res = { 0 };
    http_pool_request(pool, tu_ip("10.0.0.2"), 80, http_request_new("GET", "a.example.com:80",
                      "/app1", 0), tu_res_cb, &res);
    sim_run(sim, SIM_S);
    http_pool_request(pool, tu_ip("10.0.0.2"), 80, http_request_new("GET", "b.example.com",
                      "/app1", 0), tu_res_cb, &res);
    sim_run(sim, 2 * SIM_S);
    ck_assert_int_eq(res.n, 2);
    ck_assert_int_eq(res.r[0].status, 200);
    ck_assert_str_eq(res.body[0], "a");
    ck_assert_int_eq(res.r[1].status, 404);
    ck_assert_str_eq(res.detail[1], "NR route_not_found");
    /* the TCP listener gets no Envoy listener here: connection refused */
    http_pool_request(pool, tu_ip("10.0.0.2"), 9000, http_request_new("GET", "x", "/", 0),
                      tu_res_cb, &res);
    sim_run(sim, 3 * SIM_S);
    ck_assert_int_eq(res.r[2].outcome, HTTP_CONNECT_REFUSED);
    http_pool_free(pool);
    istio_gw_free(gw);
    app_http_server_free(as);
    net_free(net);
    sim_free(sim);
    k8s_objects_free(&o);
}
END_TEST

START_TEST(no_http_listener)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = mk_gateway(&o, "ns", "tls-only");
    mk_listener(g, "tls", 443, "TLS", NULL);
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *n = net_node_add(net, "g");
    int rc = 0;
    ck_assert_ptr_null(istio_gw_new(n, &o, g, NULL, &rc));
    ck_assert_int_eq(rc, LB_EINVAL);
    net_free(net);
    sim_free(sim);
    k8s_objects_free(&o);
}
END_TEST

/* The Service Istio generates for g, added to (and owned by) o. */
static k8s_service_t *istio_service(k8s_objects_t *o, k8s_gateway_t *g)
{
    k8s_service_t *s = lb_calloc(1, sizeof(*s));
    istio_gw_service_fill(g, s);
    lb_vec_push(&o->services, s);
    return s;
}

static const k8s_service_port_t *port_named(const k8s_service_t *s, const char *name)
{
    for (size_t i = 0; i < s->ports.n; i++)
        if (strcmp(s->ports.v[i].name, name) == 0)
            return &s->ports.v[i];
    return NULL;
}

START_TEST(generated_service)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = seed_gateway(&o);
    mk_listener(g, "http-alt", 80, "HTTP", "alt.example.com");     /* same port: no new port */
    mk_listener(g, "grpc.v1", 8443, "HTTPS", NULL);
    k8s_service_t *s = istio_service(&o, g);
    ck_assert_str_eq(s->meta.name, "mtkc-gateway-istio");
    ck_assert_str_eq(s->meta.ns, "istio-ingress");
    ck_assert_int_eq(s->type, K8S_SVC_LOAD_BALANCER);
    ck_assert_int_eq(s->etp, K8S_ETP_CLUSTER);
    ck_assert_uint_eq(s->ports.n, 4);
    tu_assert_svc_port(&s->ports.v[0], "status-port", 15021, "tcp");
    const k8s_service_port_t *p = port_named(s, "http");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->port, 80);
    ck_assert_int_eq(p->target_port.number, 80);
    ck_assert_str_eq(p->protocol, "TCP");
    ck_assert_str_eq(p->app_protocol, "http");
    p = port_named(s, "https");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->port, 443);
    ck_assert_str_eq(p->app_protocol, "https");
    p = port_named(s, "grpc-v1");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->port, 8443);
    ck_assert_ptr_null(port_named(s, "http-alt"));
    ck_assert_str_eq(k8s_kv_get(&s->selector, "gateway.networking.k8s.io/gateway-name"),
                     "mtkc-gateway");
    ck_assert_uint_eq(s->selector.n, 1);
    ck_assert_str_eq(k8s_kv_get(&s->meta.labels, "team"), "platform");
    ck_assert_str_eq(k8s_kv_get(&s->meta.labels, "gateway.istio.io/managed"),
                     "istio.io-gateway-controller");
    ck_assert_str_eq(k8s_kv_get(&s->meta.labels, "gateway.networking.k8s.io/gateway-class-name"),
                     "istio");
    ck_assert_str_eq(k8s_kv_get(&s->meta.annotations,
                                "service.beta.kubernetes.io/azure-load-balancer-internal"),
                     "true");
    ck_assert_ptr_null(k8s_kv_get(&s->meta.annotations,
                                  "kubectl.kubernetes.io/last-applied-configuration"));
    ck_assert_ptr_eq(k8s_service_find(&o, "istio-ingress", "mtkc-gateway-istio"), s);

    /* annotations: service type and name override; infrastructure labels win */
    kv(&g->meta.annotations, "networking.istio.io/service-type", "ClusterIP");
    kv(&g->meta.annotations, "gateway.istio.io/name-override", "edge");
    kv(&g->infra_labels, "tier", "edge");
    kv(&g->infra_labels, "gateway.networking.k8s.io/x", "dropped");
    k8s_service_t *s2 = istio_service(&o, g);
    ck_assert_str_eq(s2->meta.name, "edge");
    ck_assert_int_eq(s2->type, K8S_SVC_CLUSTER_IP);
    ck_assert_str_eq(k8s_kv_get(&s2->meta.labels, "tier"), "edge");
    ck_assert_ptr_null(k8s_kv_get(&s2->meta.labels, "team"));
    ck_assert_ptr_null(k8s_kv_get(&s2->meta.labels, "gateway.networking.k8s.io/x"));
    ck_assert_ptr_null(k8s_kv_get(&s2->meta.annotations, "gateway.istio.io/name-override"));
    k8s_objects_free(&o);
}
END_TEST

START_TEST(generated_deployment)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = seed_gateway(&o);
    k8s_deployment_t *d = lb_calloc(1, sizeof(*d));
    istio_gw_deployment_fill(g, d);
    lb_vec_push(&o.deployments, d);
    ck_assert_str_eq(d->meta.name, "mtkc-gateway-istio");
    ck_assert_int_eq(d->replicas, 1);
    ck_assert(k8s_labels_match(&d->selector, &d->pod_labels));
    ck_assert_str_eq(k8s_kv_get(&d->pod_labels, "sidecar.istio.io/inject"), "false");
    ck_assert_uint_eq(d->containers.n, 1);
    const k8s_container_t *c = &d->containers.v[0];
    ck_assert_str_eq(c->name, "istio-proxy");
    ck_assert_uint_eq(c->ports.n, 3);
    ck_assert_int_eq(c->ports.v[1].port, 15021);
    ck_assert_int_eq(c->readiness.kind, K8S_PROBE_HTTP);
    ck_assert_str_eq(c->readiness.path, "/healthz/ready");
    ck_assert_int_eq(c->readiness.port.number, 15021);
    ck_assert_int_eq(c->readiness.period_s, 15);
    ck_assert_int_eq(c->readiness.failure_threshold, 4);
    /* the generated Service selects the generated pods */
    k8s_service_t *s = istio_service(&o, g);
    ck_assert(k8s_labels_match(&s->selector, &d->pod_labels));
    k8s_objects_free(&o);
}
END_TEST

/* The chain of MODELS.md's open question, first half: the generated Service's http port
 * has appProtocol http, so cloud-provider-azure (k8s >= 1.24, ETP Cluster) probes it with
 * HTTP GET /, and the gateway answers / with 404 NR unless a route matches it. */
START_TEST(generated_service_probe_path_gets_404)
{
    env_t e;
    env_new(&e, NULL);
    k8s_service_t *s = istio_service(&e.objs, e.objs.gateways.v[0]);
    for (size_t k = 0; k < s->ports.n; k++)
        s->ports.v[k].node_port = 30000 + (int)k;      /* what the API server allocates */
    size_t http = 0;
    while (http < s->ports.n && strcmp(s->ports.v[http].name, "http") != 0)
        http++;
    ck_assert_uint_lt(http, s->ports.n);
    cpa_probe_t p;
    ck_assert_int_eq(cpa_probe_for_port(s, http, NULL, &p), 0);
    ck_assert_int_eq(p.protocol, CPA_PROBE_HTTP);
    ck_assert_str_eq(p.path, "/");
    int i = get_status(&e, p.path, 404);
    ck_assert_str_eq(e.res.detail[i], "NR route_not_found");
    /* the status port stays a TCP probe: it would pass */
    ck_assert_int_eq(cpa_probe_for_port(s, 0, NULL, &p), 0);
    ck_assert_int_eq(p.protocol, CPA_PROBE_TCP);
    env_free(&e);
}
END_TEST

Suite *suite_istio_gateway(void)
{
    Suite *s = suite_create("istio_gateway");
    TCase *tc = tcase_create("envoy");
    tcase_add_test(tc, routes_to_endpoints);
    tcase_add_test(tc, unknown_path_is_nr);
    tcase_add_test(tc, healthz_needs_the_health_route);
    tcase_add_test(tc, cross_namespace_needs_grant);
    tcase_add_test(tc, no_ready_endpoints_is_uh);
    tcase_add_test(tc, closed_port_is_uf_after_retries);
    tcase_add_test(tc, retry_hides_one_bad_endpoint);
    tcase_add_test(tc, route_timeout_is_ut);
    tcase_add_test(tc, readiness_on_status_port);
    tcase_add_test(tc, weighted_split);
    tcase_add_test(tc, least_request_picks_ready_endpoints);
    tcase_add_test(tc, listener_hostnames);
    tcase_add_test(tc, no_http_listener);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("k8s");
    tcase_add_test(tk, generated_service);
    tcase_add_test(tk, generated_deployment);
    tcase_add_test(tk, generated_service_probe_path_gets_404);
    suite_add_tcase(s, tk);
    return s;
}

/* test_gateway_api.c -- Gateway API route tables: the seed's Gateway and HTTPRoutes (the
 * probe-404 story), every precedence rule of httproute_types.go, attachment and its
 * status reasons, hostname intersection, ReferenceGrant checks, weights, regular
 * expressions, the Envoy virtual-host variant, describe/explain output; and the shared
 * k8s object helpers (models/k8s/k8s_objects.c). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "gateway_api.h"

/* ---- object builders (everything lb_strdup'd: k8s_objects_free releases it) ------------- */
static char *sdup(const char *s)
{
    return s ? lb_strdup(s) : NULL;
}

static int order_seq;

static k8s_gateway_t *gateway(k8s_objects_t *o, const char *ns, const char *name)
{
    k8s_gateway_t *g = lb_calloc(1, sizeof *g);
    g->meta.ns = sdup(ns);
    g->meta.name = sdup(name);
    g->class_name = sdup("istio");
    lb_vec_push(&o->gateways, g);
    return g;
}

static void listener(k8s_gateway_t *g, const char *name, int port, const char *proto,
                     const char *host, const char *from)
{
    gw_listener_t l = { sdup(name), port, sdup(proto), sdup(host), sdup(from), NULL };
    lb_vec_push(&g->listeners, l);
}

static k8s_httproute_t *route(k8s_objects_t *o, const char *ns, const char *name)
{
    k8s_httproute_t *r = lb_calloc(1, sizeof *r);
    r->meta.ns = sdup(ns);
    r->meta.name = sdup(name);
    r->meta.order = order_seq++;
    lb_vec_push(&o->routes, r);
    return r;
}

static void parent(k8s_httproute_t *r, const char *name, const char *ns, const char *section,
                   int port)
{
    gw_parent_ref_t p = { sdup(name), sdup(ns), sdup(section), port };
    lb_vec_push(&r->parents, p);
}

static void hostname(k8s_httproute_t *r, const char *h)
{
    lb_vec_push(&r->hostnames, sdup(h));
}

static gw_route_rule_t *rule(k8s_httproute_t *r)
{
    gw_route_rule_t x = { 0 };
    lb_vec_push(&r->rules, x);
    return &r->rules.v[r->rules.n - 1];
}

static gw_route_match_t *match(gw_route_rule_t *ru, gw_path_type_t t, const char *path)
{
    gw_route_match_t m = { 0 };
    m.path_type = t;
    m.path = sdup(path);
    lb_vec_push(&ru->matches, m);
    return &ru->matches.v[ru->matches.n - 1];
}

static void header(gw_route_match_t *m, gw_value_type_t t, const char *n, const char *v)
{
    gw_header_match_t h = { t, sdup(n), sdup(v) };
    lb_vec_push(&m->headers, h);
}

static void query(gw_route_match_t *m, gw_value_type_t t, const char *n, const char *v)
{
    gw_header_match_t h = { t, sdup(n), sdup(v) };
    lb_vec_push(&m->query, h);
}

static void backend_gk(gw_route_rule_t *ru, const char *group, const char *kind,
                       const char *ns, const char *name, int port, int weight)
{
    gw_backend_ref_t b = { sdup(group), sdup(kind), sdup(name), sdup(ns), port, weight };
    lb_vec_push(&ru->backends, b);
}

static void backend(gw_route_rule_t *ru, const char *ns, const char *name, int port, int w)
{
    backend_gk(ru, "", "Service", ns, name, port, w);
}

static k8s_service_t *service(k8s_objects_t *o, const char *ns, const char *name, int port)
{
    k8s_service_t *s = lb_calloc(1, sizeof *s);
    s->meta.ns = sdup(ns);
    s->meta.name = sdup(name);
    k8s_service_port_t p = { 0 };
    p.name = sdup("http");
    p.port = port;
    p.target_port.number = port;
    p.protocol = sdup("TCP");
    lb_vec_push(&s->ports, p);
    lb_vec_push(&o->services, s);
    return s;
}

static void grant(k8s_objects_t *o, const char *ns, const char *fgroup, const char *fkind,
                  const char *from_ns, const char *to_name)
{
    k8s_refgrant_t *g = lb_calloc(1, sizeof *g);
    g->meta.ns = sdup(ns);
    g->meta.name = sdup("grant");
    gw_grant_from_t f = { sdup(fgroup), sdup(fkind), sdup(from_ns) };
    gw_grant_to_t t = { sdup(""), sdup("Service"), sdup(to_name) };
    lb_vec_push(&g->from, f);
    lb_vec_push(&g->to, t);
    lb_vec_push(&o->grants, g);
}

/* A simple Gateway gw/istio-ingress with listener http:80 from All. */
static k8s_gateway_t *simple_gw(k8s_objects_t *o)
{
    k8s_gateway_t *g = gateway(o, "istio-ingress", "gw");
    listener(g, "http", 80, "HTTP", NULL, "All");
    return g;
}

/* A route ns/name whose parent is the simple Gateway. */
static k8s_httproute_t *gw_route(k8s_objects_t *o, const char *ns, const char *name)
{
    k8s_httproute_t *r = route(o, ns, name);
    parent(r, "gw", "istio-ingress", NULL, 0);
    return r;
}

/* A new rule of r with one match: PathPrefix path. */
static gw_route_rule_t *prefix_rule(k8s_httproute_t *r, const char *path)
{
    gw_route_rule_t *ru = rule(r);
    match(ru, GW_PATH_PREFIX, path);
    return ru;
}

/* A route in ns/name attached to gw with one rule: match (type, path) -> svc ns/name:80. */
static gw_route_match_t *simple_route(k8s_objects_t *o, const char *ns, const char *name,
                                      gw_path_type_t t, const char *path)
{
    gw_route_rule_t *ru = rule(gw_route(o, ns, name));
    gw_route_match_t *m = match(ru, t, path);
    if (!k8s_service_find(o, ns, name))
        service(o, ns, name, 80);
    backend(ru, NULL, name, 80, 1);
    return m;
}

/* The table of g's listener li (default options). */
static gw_table_t *table(k8s_objects_t *o, k8s_gateway_t *g, size_t li)
{
    return gw_table_build(o, g, &g->listeners.v[li], NULL);
}

static void table_free(gw_table_t *t, k8s_objects_t *o)
{
    gw_table_free(t);
    k8s_objects_free(o);
}

static gw_request_t req(const char *host, const char *method, const char *path)
{
    return (gw_request_t){ .host = host, .method = method, .path = path };
}

/* What the table makes of host+method+path (NULL: nothing matches). */
static const gw_hit_t *hit(const gw_table_t *t, const char *host, const char *method,
                           const char *path)
{
    gw_request_t r = req(host, method, path);
    return gw_table_match(t, &r);
}

/* The name of the route serving host+path, or "404". */
static const char *serve(const gw_table_t *t, const char *host, const char *method,
                         const char *path)
{
    const gw_hit_t *h = hit(t, host, method, path);
    return h ? h->route->route->meta.name : "404";
}

static const gw_route_status_t *status_of(const gw_table_t *t, const char *name)
{
    size_t n;
    const gw_route_status_t *rs = gw_table_routes(t, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rs[i].route->meta.name, name) == 0)
            return &rs[i];
    return NULL;
}

static char *describe(const gw_table_t *t, const gw_request_t *r)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (r)
        gw_table_explain(t, r, f);
    else
        gw_table_describe(t, f);
    fclose(f);
    return buf;     /* free() */
}

/* ---- the seed --------------------------------------------------------------------------- */
/* The seed's Gateway, HTTPRoutes, Services and ReferenceGrants (eks-k8s/gateway.yaml,
 * httproutes.yaml, sample-api.yaml), written through the same C API a loader uses. */
static void seed_objects(k8s_objects_t *o, bool with_health_route)
{
    k8s_gateway_t *g = gateway(o, "istio-ingress", "mtkc-gateway");
    listener(g, "http", 80, "HTTP", NULL, "All");
    listener(g, "https", 443, "HTTPS", NULL, "All");
    static const struct { const char *ns, *name, *path, *svc; int port; } r[] = {
        { "gateway-health", "health-route", "/healthz", "health-responder", 80 },
        { "sample-apps", "app1-route", "/app1", "sample-app-1", 80 },
        { "sample-apps", "app2-route", "/app2", "sample-app-2", 80 },
        { "api-services", "users-api-route", "/api/users", "users-api", 8080 },
    };
    for (size_t i = with_health_route ? 0 : 1; i < sizeof r / sizeof *r; i++) {
        k8s_httproute_t *rt = route(o, r[i].ns, r[i].name);
        parent(rt, "mtkc-gateway", "istio-ingress", NULL, 0);
        gw_route_rule_t *ru = rule(rt);
        match(ru, GW_PATH_PREFIX, r[i].path);
        backend(ru, NULL, r[i].svc, r[i].port, 1);
        service(o, r[i].ns, r[i].svc, r[i].port);
        grant(o, r[i].ns, GW_API_GROUP, "HTTPRoute", r[i].ns, NULL);
    }
}

START_TEST(seed_routes)
{
    k8s_objects_t o = { 0 };
    seed_objects(&o, true);
    k8s_gateway_t *g = o.gateways.v[0];
    for (size_t li = 0; li < 2; li++) {
        gw_table_t *t = table(&o, g, li);
        size_t n;
        const gw_route_status_t *rs = gw_table_routes(t, &n);
        ck_assert_int_eq(n, 4);
        for (size_t i = 0; i < n; i++) {
            ck_assert(rs[i].attached);
            ck_assert(rs[i].accepted.status);
            ck_assert(rs[i].resolved_refs.status);
            ck_assert_int_eq(rs[i].n_hostnames, 1);
            ck_assert_str_eq(rs[i].hostnames[0], "*");
        }
        const gw_hit_t *h = hit(t, "10.224.0.100", "GET", "/healthz/ready");
        ck_assert_ptr_nonnull(h);
        ck_assert_str_eq(h->route->route->meta.name, "health-route");
        ck_assert_int_eq(h->status, 0);
        ck_assert_int_eq(h->n_backends, 1);
        ck_assert_str_eq(h->backends[0].svc->meta.name, "health-responder");
        ck_assert_int_eq(h->backends[0].port, 80);
        ck_assert(h->backends[0].port_found);
        ck_assert_ptr_eq(gw_hit_pick(h, 0.99), &h->backends[0]);
        ck_assert_str_eq(serve(t, "app.example.com", "GET", "/app1"), "app1-route");
        ck_assert_str_eq(serve(t, NULL, "GET", "/app1/info?x=1"), "app1-route");
        ck_assert_str_eq(serve(t, NULL, "GET", "/app2/"), "app2-route");
        ck_assert_str_eq(serve(t, NULL, "GET", "/app10"), "404");
        ck_assert_str_eq(serve(t, NULL, "POST", "/api/users"), "users-api-route");
        ck_assert_str_eq(serve(t, NULL, "GET", "/api/usersx"), "404");
        /* what the Azure LB's HTTP probe asks for on ETP Cluster: nothing serves "/" */
        ck_assert_str_eq(serve(t, NULL, "GET", "/"), "404");
        gw_table_free(t);
    }
    k8s_objects_free(&o);
}
END_TEST

/* Without the articles' fix (the health-route), the L7 LB's probe gets 404 NR. */
START_TEST(seed_probe_404_without_health_route)
{
    k8s_objects_t o = { 0 };
    seed_objects(&o, false);
    k8s_gateway_t *g = o.gateways.v[0];
    gw_table_t *t = table(&o, g, 0);
    gw_request_t rq = req(NULL, "GET", "/healthz/ready");
    ck_assert_ptr_null(gw_table_match(t, &rq));
    char *s = describe(t, &rq);
    ck_assert_ptr_nonnull(strstr(s, "=> 404: no route matches (Envoy response flag NR, "
                                    "route_not_found)"));
    ck_assert_ptr_nonnull(strstr(s, "HTTPRoute sample-apps/app1-route rule 0 (PathPrefix "
                                    "/app1, host *): path does not match"));
    free(s);
    table_free(t, &o);
}
END_TEST

/* ---- precedence ------------------------------------------------------------------------- */
START_TEST(path_precedence)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "a", "prefix-foo", GW_PATH_PREFIX, "/foo/");    /* trailing / ignored */
    simple_route(&o, "a", "prefix-foo-bar", GW_PATH_PREFIX, "/foo/bar");
    simple_route(&o, "a", "exact-foo-bar", GW_PATH_EXACT, "/foo/bar");
    simple_route(&o, "a", "regex", GW_PATH_REGEX, "/foo/[a-z]+");
    simple_route(&o, "a", "root", GW_PATH_PREFIX, "/");
    gw_table_t *t = table(&o, g, 0);
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo/bar"), "exact-foo-bar");   /* Exact first */
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo/bar/"), "prefix-foo-bar"); /* longest prefix */
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo/bar/x"), "prefix-foo-bar");
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo/barx"), "prefix-foo");      /* by element */
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo"), "prefix-foo");
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo/"), "prefix-foo");
    ck_assert_str_eq(serve(t, NULL, "GET", "/food"), "root");
    ck_assert_str_eq(serve(t, NULL, "GET", ""), "root");
    /* Regex ranks below every prefix (Istio getURIRank) */
    ck_assert_str_eq(serve(t, NULL, "GET", "/foo/abc"), "prefix-foo");
    table_free(t, &o);
}
END_TEST

START_TEST(method_header_query_precedence)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "a", "plain", GW_PATH_PREFIX, "/x");
    simple_route(&o, "a", "post", GW_PATH_PREFIX, "/x")->method = sdup("POST");
    gw_route_match_t *h1 = simple_route(&o, "a", "one-header", GW_PATH_PREFIX, "/x");
    header(h1, GW_MATCH_EXACT, "X-Env", "canary");
    gw_route_match_t *h2 = simple_route(&o, "a", "two-headers", GW_PATH_PREFIX, "/x");
    header(h2, GW_MATCH_EXACT, "x-env", "canary");
    header(h2, GW_MATCH_REGEX, "X-User", "[0-9]+");
    gw_route_match_t *q1 = simple_route(&o, "a", "query", GW_PATH_PREFIX, "/x");
    query(q1, GW_MATCH_EXACT, "v", "2");
    /* a method beats headers, headers beat query parameters */
    gw_route_match_t *mq = simple_route(&o, "a", "post-query", GW_PATH_PREFIX, "/x");
    mq->method = sdup("POST");
    query(mq, GW_MATCH_EXACT, "v", "2");
    gw_table_t *t = table(&o, g, 0);

    ck_assert_str_eq(serve(t, NULL, "GET", "/x"), "plain");
    ck_assert_str_eq(serve(t, NULL, "POST", "/x"), "post");
    ck_assert_str_eq(serve(t, NULL, "POST", "/x?v=2"), "post-query");
    ck_assert_str_eq(serve(t, NULL, "GET", "/x?a=1&v=2"), "query");
    ck_assert_str_eq(serve(t, NULL, "GET", "/x?v=22"), "plain");
    ck_assert_str_eq(serve(t, NULL, "GET", "/x?v=3&v=2"), "plain");   /* first value only */
    ck_assert_str_eq(serve(t, NULL, "GET", "/x?V=2"), "plain");       /* names are exact */
    gw_header_t hs[] = { { "x-ENV", "canary" }, { "X-User", "42" } };
    gw_request_t r = { .path = "/x?v=2", .headers = hs, .n_headers = 2 };
    ck_assert_str_eq(gw_table_match(t, &r)->route->route->meta.name, "two-headers");
    hs[1].value = "4a2";                            /* regex is anchored: no match */
    ck_assert_str_eq(gw_table_match(t, &r)->route->route->meta.name, "one-header");
    hs[0].value = "Canary";                         /* values are case-sensitive */
    ck_assert_str_eq(gw_table_match(t, &r)->route->route->meta.name, "query");
    r.method = "POST";
    ck_assert_str_eq(gw_table_match(t, &r)->route->route->meta.name, "post-query");
    table_free(t, &o);
}
END_TEST

START_TEST(route_age_name_and_rule_order)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "zz", "older", GW_PATH_PREFIX, "/same");    /* order 0 */
    simple_route(&o, "aa", "newer", GW_PATH_PREFIX, "/same");    /* order 1 */
    gw_table_t *t = table(&o, g, 0);
    ck_assert_str_eq(serve(t, NULL, "GET", "/same"), "older");   /* oldest first */
    table_free(t, &o);

    memset(&o, 0, sizeof o);
    g = simple_gw(&o);
    simple_route(&o, "ns-b", "a", GW_PATH_PREFIX, "/same");
    simple_route(&o, "ns-a", "z", GW_PATH_PREFIX, "/same");
    simple_route(&o, "ns", "y", GW_PATH_PREFIX, "/same");
    for (size_t i = 0; i < o.routes.n; i++)
        o.routes.v[i]->meta.order = 7;                          /* same creationTimestamp */
    t = table(&o, g, 0);
    /* "{namespace}/{name}": "ns-a/z" < "ns-b/a" < "ns/y" ('-' sorts before '/') */
    ck_assert_str_eq(serve(t, NULL, "GET", "/same"), "z");
    table_free(t, &o);

    /* within a route: the first rule, then the first match */
    memset(&o, 0, sizeof o);
    g = simple_gw(&o);
    k8s_httproute_t *r = gw_route(&o, "a", "multi");
    service(&o, "a", "s0", 80);
    service(&o, "a", "s1", 80);
    gw_route_rule_t *r0 = rule(r);
    match(r0, GW_PATH_PREFIX, "/other");
    match(r0, GW_PATH_PREFIX, "/dup");
    backend(r0, NULL, "s0", 80, 1);
    gw_route_rule_t *r1 = rule(r);
    match(r1, GW_PATH_PREFIX, "/dup");
    backend(r1, NULL, "s1", 80, 1);
    gw_route_rule_t *r2 = rule(r);                              /* no matches: PathPrefix / */
    backend(r2, NULL, "s1", 80, 1);
    t = table(&o, g, 0);
    const gw_hit_t *h = hit(t, NULL, NULL, "/dup/x");
    ck_assert_int_eq(h->rule, 0);
    ck_assert_int_eq(h->match, 1);
    h = hit(t, NULL, NULL, "/elsewhere");
    ck_assert_int_eq(h->rule, 2);
    ck_assert_int_eq(h->match, 0);
    table_free(t, &o);
}
END_TEST

START_TEST(hostname_precedence)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "a", "any", GW_PATH_PREFIX, "/");
    simple_route(&o, "a", "wild", GW_PATH_PREFIX, "/");
    hostname(o.routes.v[1], "*.example.com");
    simple_route(&o, "a", "wild-long", GW_PATH_PREFIX, "/");
    hostname(o.routes.v[2], "*.a.example.com");
    simple_route(&o, "a", "exact", GW_PATH_EXACT, "/only");
    hostname(o.routes.v[3], "foo.example.com");
    gw_table_t *t = table(&o, g, 0);
    ck_assert_str_eq(serve(t, "foo.example.com", "GET", "/only"), "exact");
    ck_assert_str_eq(serve(t, "FOO.Example.com:8080", "GET", "/only"), "exact");
    ck_assert_str_eq(serve(t, "bar.example.com", "GET", "/only"), "wild");
    ck_assert_str_eq(serve(t, "x.a.example.com", "GET", "/"), "wild-long");
    ck_assert_str_eq(serve(t, "x.y.example.com", "GET", "/"), "wild");
    ck_assert_str_eq(serve(t, "example.com", "GET", "/"), "any");   /* *. needs a label */
    ck_assert_str_eq(serve(t, "other.org", "GET", "/only"), "any");
    ck_assert_str_eq(serve(t, NULL, "GET", "/"), "any");
    /* the spec: an exact-host route that lacks the path does not hide the wildcard's */
    ck_assert_str_eq(serve(t, "foo.example.com", "GET", "/elsewhere"), "wild");
    gw_table_free(t);

    /* Envoy virtual hosts: foo.example.com is its own vhost, /elsewhere is not in it */
    gw_table_opts_t op = { .host_mode = GW_HOST_ENVOY_VHOST };
    t = gw_table_build(&o, g, &g->listeners.v[0], &op);
    ck_assert_str_eq(serve(t, "foo.example.com", "GET", "/only"), "exact");
    ck_assert_str_eq(serve(t, "foo.example.com", "GET", "/elsewhere"), "404");
    ck_assert_str_eq(serve(t, "bar.example.com", "GET", "/elsewhere"), "wild");
    ck_assert_str_eq(serve(t, "other.org", "GET", "/"), "any");
    gw_request_t rq = req("foo.example.com", "GET", "/elsewhere");
    char *s = describe(t, &rq);
    ck_assert_ptr_nonnull(strstr(s, "Envoy virtual host: foo.example.com"));
    ck_assert_ptr_nonnull(strstr(s, "HTTPRoute a/wild rule 0 (PathPrefix /, host "
                                    "*.example.com): another virtual host does not match"));
    free(s);
    table_free(t, &o);
}
END_TEST

/* Listener hostname x route hostnames: intersection, ignored names, ranking by the
 * route's own hostname. */
START_TEST(hostname_intersection)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = gateway(&o, "gw-ns", "gw");
    listener(g, "wild", 80, "HTTP", "*.example.com", "All");
    listener(g, "exact", 81, "HTTP", "a.example.com", "All");
    k8s_httproute_t *r = route(&o, "x", "mixed");
    parent(r, "gw", "gw-ns", "wild", 0);
    hostname(r, "foo.example.com");
    hostname(r, "test.example.net");                /* ignored, not an error */
    hostname(r, "*.com");                           /* narrows to *.example.com */
    r = route(&o, "x", "apex");
    parent(r, "gw", "gw-ns", NULL, 0);
    hostname(r, "example.com");
    r = route(&o, "x", "none");
    parent(r, "gw", "gw-ns", "wild", 0);
    r = route(&o, "x", "wild-on-exact");
    parent(r, "gw", "gw-ns", "exact", 0);
    hostname(r, "*.example.com");
    r = route(&o, "x", "exact-on-exact");
    parent(r, "gw", "gw-ns", "exact", 0);
    hostname(r, "a.example.com");
    for (size_t i = 0; i < o.routes.n; i++) {
        prefix_rule(o.routes.v[i], "/");
    }
    gw_table_t *t = table(&o, g, 0);
    const gw_route_status_t *rs = status_of(t, "mixed");
    ck_assert(rs->attached);
    ck_assert_int_eq(rs->n_hostnames, 2);
    ck_assert_str_eq(rs->hostnames[0], "foo.example.com");
    ck_assert_str_eq(rs->hostnames[1], "*.example.com");
    rs = status_of(t, "apex");
    ck_assert(!rs->attached);
    ck_assert(!rs->accepted.status);
    ck_assert_int_eq(rs->accepted.reason, GW_REASON_NO_MATCHING_LISTENER_HOSTNAME);
    ck_assert_ptr_nonnull(strstr(rs->accepted.message, "no hostnames matched parent "
                                                       "hostname \"*.example.com\" (listener wild)"));
    rs = status_of(t, "none");
    ck_assert_str_eq(rs->hostnames[0], "*.example.com");
    ck_assert(!status_of(t, "wild-on-exact")->attached);
    ck_assert(status_of(t, "wild-on-exact")->accepted.status);  /* on the other listener */
    /* no-backend rules: 500 */
    ck_assert_int_eq(hit(t, "foo.example.com", NULL, "/")->status, 500);
    /* mixed ranks by its own "*.com"; none wrote no hostname and ranks as any */
    ck_assert_str_eq(serve(t, "zz.example.com", "GET", "/"), "mixed");
    ck_assert_str_eq(serve(t, "zz.example.org", "GET", "/"), "404");
    gw_table_free(t);

    /* exact listener: both routes' effective hostname is a.example.com; the one that
     * wrote the exact name ranks first although it is newer */
    t = table(&o, g, 1);
    ck_assert_str_eq(status_of(t, "wild-on-exact")->hostnames[0], "a.example.com");
    ck_assert_str_eq(serve(t, "a.example.com", "GET", "/"), "exact-on-exact");
    table_free(t, &o);
}
END_TEST

START_TEST(regular_expressions)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "a", "items", GW_PATH_REGEX, "/v[0-9]+/items");
    gw_route_match_t *m = simple_route(&o, "a", "q", GW_PATH_PREFIX, "/q");
    query(m, GW_MATCH_REGEX, "id", "[a-f]+");
    simple_route(&o, "a", "bad", GW_PATH_REGEX, "/v[0-9");
    gw_table_t *t = table(&o, g, 0);
    ck_assert_str_eq(serve(t, NULL, "GET", "/v2/items"), "items");
    ck_assert_str_eq(serve(t, NULL, "GET", "/v12/items?page=2"), "items");
    ck_assert_str_eq(serve(t, NULL, "GET", "/v2/items/x"), "404");      /* full match */
    ck_assert_str_eq(serve(t, NULL, "GET", "/xv2/items"), "404");
    ck_assert_str_eq(serve(t, NULL, "GET", "/q?id=beef"), "q");
    ck_assert_str_eq(serve(t, NULL, "GET", "/q?x=1&id=beef#frag"), "q");
    ck_assert_str_eq(serve(t, NULL, "GET", "/q?id=beefy"), "404");
    const gw_route_status_t *rs = status_of(t, "bad");
    ck_assert(!rs->accepted.status);
    ck_assert_int_eq(rs->accepted.reason, GW_REASON_UNSUPPORTED_VALUE);
    ck_assert_ptr_nonnull(strstr(rs->accepted.message, "invalid RegularExpression path "
                                                       "\"/v[0-9\""));
    table_free(t, &o);
}
END_TEST

/* ---- attachment ------------------------------------------------------------------------- */
START_TEST(attachment_and_reasons)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = gateway(&o, "istio-ingress", "gw");
    listener(g, "http", 80, "HTTP", NULL, NULL);             /* from: Same (default) */
    listener(g, "https", 443, "HTTPS", NULL, "All");
    listener(g, "tcp", 9000, "TCP", NULL, "All");
    struct { const char *ns, *name, *section; int port; } rr[] = {
        { "istio-ingress", "same-ns", NULL, 0 },
        { "apps", "other-ns", NULL, 0 },                     /* http refuses, https takes */
        { "apps", "other-ns-http-only", "http", 0 },
        { "apps", "https-only", "https", 0 },
        { "apps", "bad-section", "nope", 0 },
        { "apps", "bad-port", NULL, 8080 },
        { "istio-ingress", "port-80", NULL, 80 },
        { "apps", "tcp-listener", "tcp", 0 },
        { "istio-ingress", "section-and-port", "http", 443 },
    };
    for (size_t i = 0; i < sizeof rr / sizeof *rr; i++) {
        k8s_httproute_t *r = route(&o, rr[i].ns, rr[i].name);
        parent(r, "gw", "istio-ingress", rr[i].section, rr[i].port);
        prefix_rule(r, "/");
    }
    k8s_httproute_t *r = route(&o, "istio-ingress", "default-parent-ns");
    parent(r, "gw", NULL, NULL, 0);                          /* namespace: the route's */
    r = route(&o, "apps", "other-gateway");
    parent(r, "gw", "elsewhere", NULL, 0);
    r = route(&o, "apps", "wrong-parent-ns");
    parent(r, "gw", NULL, NULL, 0);                          /* apps/gw does not exist */

    gw_table_t *t = table(&o, g, 0);
    size_t n;
    gw_table_routes(t, &n);
    ck_assert_int_eq(n, 10);                                 /* the last two are not ours */
    ck_assert_ptr_null(status_of(t, "other-gateway"));
    ck_assert_ptr_null(status_of(t, "wrong-parent-ns"));
    const struct { const char *name; bool attached, accepted; gw_reason_t reason;
                   const char *msg; } want[] = {
        { "same-ns", true, true, GW_REASON_ACCEPTED, "Route was valid" },
        { "other-ns", false, true, GW_REASON_ACCEPTED, "" },
        { "other-ns-http-only", false, false, GW_REASON_NOT_ALLOWED_BY_LISTENERS,
          "listener http takes routes from its own namespace istio-ingress only "
          "(allowedRoutes.namespaces.from: Same); the route is in namespace apps" },
        { "https-only", false, true, GW_REASON_ACCEPTED, "" },
        { "bad-section", false, false, GW_REASON_NO_MATCHING_PARENT,
          "Gateway istio-ingress/gw has no listener named \"nope\"" },
        { "bad-port", false, false, GW_REASON_NO_MATCHING_PARENT,
          "Gateway istio-ingress/gw has no listener on port 8080" },
        { "port-80", true, true, GW_REASON_ACCEPTED, "" },
        { "tcp-listener", false, false, GW_REASON_NOT_ALLOWED_BY_LISTENERS,
          "listener tcp has protocol TCP, which does not accept HTTPRoute" },
        { "section-and-port", false, false, GW_REASON_NO_MATCHING_PARENT,
          "no listener named \"http\" on port 443" },
        { "default-parent-ns", true, true, GW_REASON_ACCEPTED, "" },
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const gw_route_status_t *rs = status_of(t, want[i].name);
        ck_assert_msg(rs != NULL, "%s missing", want[i].name);
        ck_assert_msg(rs->attached == want[i].attached, "%s attached", want[i].name);
        ck_assert_msg(rs->accepted.status == want[i].accepted, "%s accepted", want[i].name);
        ck_assert_msg(rs->accepted.reason == want[i].reason, "%s: reason %s (%s)",
                      want[i].name, gw_reason_str(rs->accepted.reason), rs->accepted.message);
        ck_assert_msg(strstr(rs->accepted.message, want[i].msg), "%s: '%s'", want[i].name,
                      rs->accepted.message);
    }
    gw_table_free(t);

    t = table(&o, g, 1);     /* https: All */
    ck_assert(status_of(t, "other-ns")->attached);
    ck_assert(status_of(t, "https-only")->attached);
    ck_assert(!status_of(t, "port-80")->attached);
    ck_assert(!status_of(t, "other-ns-http-only")->attached);
    char *s = describe(t, NULL);
    ck_assert_ptr_nonnull(strstr(s, "Gateway istio-ingress/gw listener https (HTTPS port 443, "
                                    "hostname *, routes from All)"));
    ck_assert_ptr_nonnull(strstr(s, "HTTPRoute apps/bad-port: not attached to this listener\n"
                                    "  Accepted=False (NoMatchingParent): Gateway "
                                    "istio-ingress/gw has no listener on port 8080\n"));
    free(s);
    table_free(t, &o);
}
END_TEST

START_TEST(unsupported_values)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "a", "relative", GW_PATH_PREFIX, "app");
    gw_route_match_t *m = simple_route(&o, "a", "bad-header-re", GW_PATH_PREFIX, "/");
    header(m, GW_MATCH_REGEX, "X-A", "(");
    k8s_httproute_t *r = gw_route(&o, "a", "no-port");
    backend(rule(r), NULL, "svc", 0, 1);
    gw_table_t *t = table(&o, g, 0);
    static const char *const msgs[][2] = {
        { "relative", "path \"app\" must be an absolute path" },
        { "bad-header-re", "invalid RegularExpression for header \"X-A\"" },
        { "no-port", "port is required in backendRef svc" },
    };
    for (size_t i = 0; i < 3; i++) {
        const gw_route_status_t *rs = status_of(t, msgs[i][0]);
        ck_assert(!rs->attached);
        ck_assert_int_eq(rs->accepted.reason, GW_REASON_UNSUPPORTED_VALUE);
        ck_assert_msg(strstr(rs->accepted.message, msgs[i][1]), "%s", rs->accepted.message);
    }
    ck_assert_str_eq(serve(t, NULL, "GET", "/"), "404");
    table_free(t, &o);
}
END_TEST

/* ---- backends and ReferenceGrant -------------------------------------------------------- */
START_TEST(reference_grants)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    service(&o, "backend", "web", 80);
    service(&o, "backend", "api", 80);
    static const char *const names[] = { "no-grant", "granted", "wrong-grant-ns",
        "named-grant", "other-name", "wrong-from-kind", "wrong-from-group" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        k8s_httproute_t *r = route(&o, names[i], "r");
        lb_free(r->meta.name);
        r->meta.name = sdup(names[i]);
        parent(r, "gw", "istio-ingress", NULL, 0);
        gw_route_rule_t *ru = prefix_rule(r, "/");
        char host[64];
        snprintf(host, sizeof host, "%s.test", names[i]);
        hostname(r, host);
        backend(ru, "backend", i == 4 ? "api" : "web", 80, 1);
    }
    grant(&o, "backend", GW_API_GROUP, "HTTPRoute", "granted", NULL);
    grant(&o, "wrong-grant-ns", GW_API_GROUP, "HTTPRoute", "wrong-grant-ns", NULL);
    grant(&o, "backend", GW_API_GROUP, "HTTPRoute", "named-grant", "web");
    grant(&o, "backend", GW_API_GROUP, "HTTPRoute", "other-name", "web");
    grant(&o, "backend", GW_API_GROUP, "GRPCRoute", "wrong-from-kind", NULL);
    grant(&o, "backend", "networking.k8s.io", "HTTPRoute", "wrong-from-group", NULL);
    gw_table_t *t = table(&o, g, 0);
    const bool ok[] = { false, true, false, true, false, false, false };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const gw_route_status_t *rs = status_of(t, names[i]);
        ck_assert(rs->attached);
        ck_assert_msg(rs->resolved_refs.status == ok[i], "%s", names[i]);
        ck_assert_msg(rs->rules[0].backends[0].valid == ok[i], "%s", names[i]);
        char host[64];
        snprintf(host, sizeof host, "%s.test", names[i]);
        const gw_hit_t *h = hit(t, host, NULL, "/");
        ck_assert_int_eq(h->status, ok[i] ? 0 : 500);
        if (!ok[i]) {
            ck_assert_int_eq(rs->resolved_refs.reason, GW_REASON_REF_NOT_PERMITTED);
            char want[200];
            snprintf(want, sizeof want, "backendRef backend/%s not accessible to a HTTPRoute "
                     "in namespace \"%s\" (missing a ReferenceGrant in namespace backend?)",
                     i == 4 ? "api" : "web", names[i]);
            ck_assert_str_eq(rs->resolved_refs.message, want);
        }
    }
    gw_request_t q = req("granted.test", NULL, "/");
    char *s = describe(t, &q);
    ck_assert_ptr_nonnull(strstr(s, "served by HTTPRoute granted/granted rule 0 (PathPrefix /, "
                                    "host granted.test)"));
    ck_assert_ptr_nonnull(strstr(s, "-> Service backend/web port 80, weight 1\n"));
    free(s);
    table_free(t, &o);
}
END_TEST

START_TEST(backend_validity_and_weights)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    service(&o, "a", "v1", 80);
    service(&o, "a", "v2", 80);
    k8s_httproute_t *r = gw_route(&o, "a", "split");
    gw_route_rule_t *ru = prefix_rule(r, "/split");
    backend(ru, NULL, "v1", 80, 3);
    backend(ru, NULL, "v2", 80, 1);
    backend(ru, NULL, "v2", 80, 0);                          /* weight 0: never picked */
    ru = prefix_rule(r, "/half");
    backend(ru, NULL, "v1", 80, 1);
    backend(ru, NULL, "missing", 80, 1);                     /* BackendNotFound */
    ru = prefix_rule(r, "/kind");
    backend_gk(ru, "multicluster.x-k8s.io", "ServiceImport", NULL, "v1", 80, 1);
    backend_gk(ru, "", "Pod", NULL, "v1", 80, 1);
    ru = prefix_rule(r, "/port");
    backend(ru, NULL, "v1", 8080, 1);                        /* Service has no port 8080 */
    ru = prefix_rule(r, "/zero");
    backend(ru, NULL, "v1", 80, 0);
    gw_table_t *t = table(&o, g, 0);
    const gw_route_status_t *rs = status_of(t, "split");
    ck_assert(!rs->resolved_refs.status);
    ck_assert_int_eq(rs->resolved_refs.reason, GW_REASON_BACKEND_NOT_FOUND);
    ck_assert_str_eq(rs->resolved_refs.message, "Service a/missing not found");

    const gw_hit_t *h = hit(t, NULL, NULL, "/split");
    ck_assert_int_eq(h->status, 0);
    ck_assert_int_eq(h->total_weight, 4);
    ck_assert_int_eq(h->valid_weight, 4);
    int count[3] = { 0 };
    for (int i = 0; i < 1000; i++)
        count[gw_hit_pick(h, i / 1000.0) - h->backends]++;
    ck_assert_int_eq(count[0], 750);
    ck_assert_int_eq(count[1], 250);
    ck_assert_int_eq(count[2], 0);

    h = hit(t, NULL, NULL, "/half");            /* half the requests get 500 */
    ck_assert_int_eq(h->status, 0);
    ck_assert_int_eq(h->valid_weight, 1);
    ck_assert(gw_hit_pick(h, 0.25)->valid);
    ck_assert(!gw_hit_pick(h, 0.75)->valid);
    ck_assert_int_eq(gw_hit_pick(h, 0.75)->reason, GW_REASON_BACKEND_NOT_FOUND);

    h = hit(t, NULL, NULL, "/kind");
    ck_assert_int_eq(h->status, 500);
    ck_assert_int_eq(h->backends[0].reason, GW_REASON_INVALID_KIND);
    ck_assert_str_eq(h->backends[0].message, "referencing unsupported backendRef: group "
                     "\"multicluster.x-k8s.io\" kind \"ServiceImport\"");
    ck_assert_int_eq(h->backends[1].reason, GW_REASON_INVALID_KIND);

    h = hit(t, NULL, NULL, "/port");
    ck_assert_int_eq(h->status, 0);
    ck_assert(h->backends[0].valid);
    ck_assert(!h->backends[0].port_found);

    h = hit(t, NULL, NULL, "/zero");
    ck_assert_int_eq(h->status, 500);
    ck_assert_ptr_null(gw_hit_pick(h, 0.5));

    char *s = describe(t, NULL);
    ck_assert_ptr_nonnull(strstr(s, "-> INVALID a/missing port 80, weight 1: BackendNotFound: "
                                    "Service a/missing not found (this share gets 500)"));
    ck_assert_ptr_nonnull(strstr(s, "503 NC"));
    ck_assert_ptr_nonnull(strstr(s, "=> every request of this rule gets 500"));
    ck_assert_ptr_nonnull(strstr(s, "1. host *, PathPrefix /split -> HTTPRoute a/split rule 0"));
    free(s);
    table_free(t, &o);
}
END_TEST

/* ---- k8s object helpers ------------------------------------------------------------------ */
START_TEST(k8s_helpers)
{
    k8s_objects_t o = { 0 };
    k8s_service_t *s = service(&o, NULL, "dflt", 80);
    service(&o, "ns1", "svc", 80);
    k8s_kv_t a = { sdup("app"), sdup("web") }, b = { sdup("tier"), sdup("front") };
    lb_vec_push(&s->meta.labels, a);
    lb_vec_push(&s->meta.labels, b);
    ck_assert_str_eq(k8s_kv_get(&s->meta.labels, "tier"), "front");
    ck_assert_ptr_null(k8s_kv_get(&s->meta.labels, "nope"));
    ck_assert_ptr_null(k8s_kv_get(NULL, "tier"));
    k8s_kvs_t sel = { 0 };
    ck_assert(k8s_labels_match(&sel, &s->meta.labels));        /* empty selects all */
    k8s_kv_t x = { "app", "web" };
    lb_vec_push(&sel, x);
    ck_assert(k8s_labels_match(&sel, &s->meta.labels));
    x.value = "db";
    lb_vec_push(&sel, x);
    ck_assert(!k8s_labels_match(&sel, &s->meta.labels));
    lb_vec_free(&sel);
    ck_assert_ptr_eq(k8s_service_find(&o, "default", "dflt"), s);
    ck_assert_ptr_eq(k8s_service_find(&o, NULL, "dflt"), s);
    ck_assert_ptr_null(k8s_service_find(&o, "ns1", "dflt"));
    ck_assert_ptr_nonnull(k8s_service_find(&o, "ns1", "svc"));
    simple_gw(&o);
    ck_assert_ptr_nonnull(k8s_gateway_find(&o, "istio-ingress", "gw"));
    ck_assert_ptr_null(k8s_gateway_find(&o, "default", "gw"));
    ck_assert_ptr_null(k8s_configmap_find(&o, "default", "x"));
    k8s_objects_free(&o);
    ck_assert_int_eq(o.services.n + o.gateways.n, 0);
    k8s_objects_free(&o);                                       /* twice is harmless */
    k8s_objects_free(NULL);
}
END_TEST


/* ---- rendering as nginx (the real chain's gateway stand-in) ------------------------------ */
typedef struct render_ctx { const gw_table_t *t; } render_ctx_t;

static void render_walk(const char *host, const char *path,
                        bool (*fn)(const gw_cand_t *c, void *arg), void *arg, void *data)
{
    const render_ctx_t *c = data;
    gw_request_t r = req(host, "GET", path);
    gw_table_walk(c->t, &r, GW_WALK_CONDS, fn, arg);
}


/* A rendered text holds s. On failure the text goes to stderr, not into Check's message,
 * which has a size limit that a whole configuration exceeds. */
#define HAS_IN(text, s)                                                                   \
    do {                                                                                  \
        if (!strstr(text, s)) fprintf(stderr, "---- rendered:\n%s----\n", text);          \
        ck_assert_msg(strstr(text, s) != NULL, "missing: %s", s);                        \
    } while (0)
/* every Service has one ready endpoint 10.244.0.<port % 250>:8080, except "empty" */
static size_t render_eps(const char *ns, const char *svc, int port, uint32_t *ips,
                         uint16_t *ports, size_t max, void *data)
{
    (void)ns;
    (void)data;
    if (!strcmp(svc, "empty") || !max) return 0;
    ips[0] = 0x0af40000u | (uint32_t)(strlen(svc) % 250);
    ports[0] = (uint16_t)(8000 + port % 100);
    return 1;
}

START_TEST(render_nginx)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "default", "app", GW_PATH_PREFIX, "/app1");
    simple_route(&o, "default", "admin", GW_PATH_PREFIX, "/app1/admin/");
    simple_route(&o, "default", "root", GW_PATH_EXACT, "/");
    simple_route(&o, "default", "empty", GW_PATH_PREFIX, "/empty");
    /* a weighted rule: 3 parts to "app", 1 part to a Service that does not exist */
    gw_route_rule_t *ru = prefix_rule(gw_route(&o, "default", "split"), "/split");
    backend(ru, NULL, "app", 80, 3);
    backend(ru, NULL, "missing", 80, 1);
    /* a hostname of its own, and a header match (a map: see render_nginx_conditions) */
    k8s_httproute_t *shop = gw_route(&o, "default", "shop");
    hostname(shop, "shop.example.com");
    gw_route_rule_t *sr = prefix_rule(shop, "/app1");
    backend(sr, NULL, "admin", 80, 1);
    gw_route_match_t *hm = simple_route(&o, "default", "canary", GW_PATH_PREFIX, "/canary");
    header(hm, GW_MATCH_EXACT, "x-canary", "1");
    gw_table_opts_t opts = { GW_HOST_ENVOY_VHOST };
    gw_table_t *t = gw_table_build(&o, g, &g->listeners.v[0], &opts);
    render_ctx_t ctx = { t };
    const gw_table_t *tabs[] = { t };
    gw_nginx_t r = { .port = 80, .tables = tabs, .n_tables = 1, .walk = render_walk,
                     .endpoints = render_eps, .data = &ctx, .connect_timeout = 10 * SIM_S,
                     .idle_timeout = 3600 * SIM_S, .num_retries = 2 };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(gw_nginx_render(f, &r), 0);        /* everything expressed */
    fclose(f);
#define HAS(s) HAS_IN(text, s)
    ck_assert_ptr_null(strstr(text, "# not rendered"));
    HAS("        location = /canary {\n"
        "            # HTTPRoute default/canary rule 0 if header x-canary = 1\n"
        "            # otherwise no route: 404\n"
        "            if ($lbchain80_sel0 = status404) { return 404 \"\"; }");
    /* PathPrefix /app1: the path itself and what is below it, element by element */
    HAS("        location = /app1 {\n            # HTTPRoute default/app rule 0\n"
        "            proxy_pass http://gw80_default_app_80;");
    HAS("        location /app1/ {\n            # HTTPRoute default/app rule 0");
    /* a longer prefix (its trailing slash ignored) wins below it */
    HAS("        location /app1/admin/ {\n            # HTTPRoute default/admin rule 0");
    HAS("        location = / {\n            # HTTPRoute default/root rule 0");
    /* everything else: Envoy's 404 NR */
    HAS("        location / {\n            return 404 \"\";");
    /* a Service without ready endpoints: 503 UH, and no upstream for it */
    HAS("        location = /empty {\n            # HTTPRoute default/empty rule 0\n"
        "            return 503 \"no healthy upstream\";");
    ck_assert_ptr_null(strstr(text, "upstream gw80_default_empty_80"));
    /* weights: split_clients, the invalid backend's share answered 500 */
    HAS("split_clients \"${request_id}\" $lbchain80_split0 {\n        75.00% gw80_default_app_80;\n"
        "        * status500;\n    }");
    HAS("if ($lbchain80_split0 = status500) { return 500 \"\"; }");
    /* Envoy's connect timeout, retries (1 + 2 tries) and no outlier detection */
    HAS("proxy_connect_timeout 10s;");
    HAS("proxy_next_upstream_tries 3;");
    HAS("max_fails=0;");
    /* the route's own hostname: a server of its own, whose /app1 goes to its backend */
    HAS("        server_name shop.example.com;\n        location = /app1 {\n"
        "            # HTTPRoute default/shop rule 0");
    HAS("        listen 80 default_server;\n        server_name _;");
#undef HAS
    free(text);
    table_free(t, &o);
}
END_TEST

/* text of gw_nginx_render for table t on port */
static char *render_text(const gw_table_t *t, int port, int *skipped)
{
    static render_ctx_t ctx;
    ctx.t = t;
    const gw_table_t *tabs[] = { t };
    gw_nginx_t r = { .port = port, .tables = tabs, .n_tables = 1, .walk = render_walk,
                     .endpoints = render_eps, .data = &ctx, .connect_timeout = 10 * SIM_S,
                     .idle_timeout = 3600 * SIM_S, .num_retries = 2 };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *skipped = gw_nginx_render(f, &r);
    fclose(f);
    return text;
}

/* nginx -t on http-level text (skipped, with a note, where nginx is not installed):
 * 0 valid; else the exit status. */
static int nginx_check(const char *http)
{
    if (system("command -v nginx >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_gateway_api: nginx not installed: nginx -t skipped\n");
        return 0;
    }
    char dir[] = "/tmp/lbchain-gwapi-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/nginx.conf", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "daemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
            "events { worker_connections 64; }\nhttp {\n    access_log off;\n%s}\n",
            dir, dir, http);
    fclose(f);
    snprintf(cmd, sizeof cmd, "nginx -q -t -p %s/ -e %s/error.log -c %s >%s/out 2>&1", dir,
             dir, path, dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    return rc;
}

/* The request's route as nginx would pick it from the rendered selection maps. Not a test of
 * nginx itself: the real chain (make realtest) checks that. */
START_TEST(render_nginx_conditions)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "default", "stable", GW_PATH_PREFIX, "/app");
    gw_route_match_t *m = simple_route(&o, "default", "canary", GW_PATH_PREFIX, "/app");
    header(m, GW_MATCH_EXACT, "X-Canary", "true");       /* names: case-blind, '-' as '_' */
    m = simple_route(&o, "default", "beta", GW_PATH_PREFIX, "/app");
    header(m, GW_MATCH_REGEX, "x-canary", "be.*");
    query(m, GW_MATCH_EXACT, "v", "2.0");                 /* a '.' to escape */
    m = simple_route(&o, "default", "post", GW_PATH_PREFIX, "/app");
    m->method = sdup("POST");
    simple_route(&o, "default", "items", GW_PATH_REGEX, "/v[0-9]+/items");
    m = simple_route(&o, "default", "odd", GW_PATH_EXACT, "/odd");
    query(m, GW_MATCH_EXACT, "a-b", "1");                 /* no $arg_ variable for it */
    gw_table_t *t = table(&o, g, 0);
    /* the model's own order: method > more query params at equal headers > header */
    ck_assert_str_eq(serve(t, "x", "POST", "/app?v=2.0"), "post");
    gw_header_t hs[] = { { "x-canary", "beta" } };
    gw_request_t rq = { .host = "x", .path = "/app/1?v=2.0", .headers = hs, .n_headers = 1 };
    ck_assert_str_eq(gw_table_match(t, &rq)->route->route->meta.name, "beta");
    int skipped = -1;
    char *text = render_text(t, 80, &skipped);
    ck_assert_int_eq(skipped, 1);
#define HAS(s) HAS_IN(text, s)
    HAS("# not rendered (a header or query name nginx has no variable for): "
        "default/odd rule 0 match 0");
    HAS("    map $request_method $lbchain80_c0 {\n        \"~^POST$\" 1;\n        default 0;\n    }");
    HAS("    map $http_x_canary $lbchain80_c1 {\n        \"~^(?:be.*)$\" 1;\n");
    HAS("    map $arg_v $lbchain80_c2 {\n        \"~^2\\\\.0$\" 1;\n");
    HAS("    map $http_x_canary $lbchain80_c3 {\n        \"~^true$\" 1;\n");
    HAS("    map $uri $lbchain80_c4 {\n        \"~^(?:/v[0-9]+/items)$\" 1;\n");
    /* /app: post, then beta (a query match more), then canary, then stable; the regex
     * path ranks below every prefix, so "/" (no prefix) has it alone */
    HAS("    map \"$lbchain80_c0$lbchain80_c1$lbchain80_c2$lbchain80_c3\" $lbchain80_sel0 {\n"
        "        \"~^1...$\" gw80_default_post_80;\n"
        "        \"~^.11.$\" gw80_default_beta_80;\n"
        "        \"~^...1$\" gw80_default_canary_80;\n"
        "        default gw80_default_stable_80;\n    }");
    HAS("        location = /app {\n"
        "            # HTTPRoute default/post rule 0 if method = POST\n"
        "            # HTTPRoute default/beta rule 0 if header x-canary ~ be.*, query v = 2.0\n"
        "            # HTTPRoute default/canary rule 0 if header X-Canary = true\n"
        "            # otherwise HTTPRoute default/stable rule 0\n"
        "            if ($lbchain80_sel0 = status404) { return 404 \"\"; }\n");
    HAS("            proxy_pass http://$lbchain80_sel0;");
    HAS("        location /app/ {\n            # HTTPRoute default/post rule 0 if method = POST");
    HAS("    map \"$lbchain80_c4\" $lbchain80_sel1 {\n"
        "        \"~^1$\" gw80_default_items_80;\n        default status404;\n    }");
    HAS("        location / {\n"
        "            # HTTPRoute default/items rule 0 if path ~ /v[0-9]+/items\n"
        "            # otherwise no route: 404\n");
    HAS("            # HTTPRoute default/odd rule 0 if query a-b = 1 (not expressible in nginx: "
        "no traffic)\n");
    /* one selection map per distinct choice: /app and /app/ share sel0 */
    ck_assert_ptr_null(strstr(text, "$lbchain80_sel3 "));
#undef HAS
    ck_assert_int_eq(nginx_check(text), 0);
    free(text);
    table_free(t, &o);
}
END_TEST

/* A Gateway listening on two ports: one http block holds both, names carry the port. */
START_TEST(render_nginx_two_ports)
{
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    listener(g, "alt", 8080, "HTTP", NULL, "All");
    gw_route_rule_t *ru = prefix_rule(gw_route(&o, "default", "split"), "/split");
    service(&o, "default", "a", 80);
    service(&o, "default", "b", 80);
    backend(ru, NULL, "a", 80, 1);
    backend(ru, NULL, "b", 80, 1);
    gw_route_match_t *m = simple_route(&o, "default", "canary", GW_PATH_PREFIX, "/split");
    header(m, GW_MATCH_EXACT, "x-canary", "true");
    gw_table_t *t80 = table(&o, g, 0), *t8080 = table(&o, g, 1);
    int sk80, sk8080;
    char *a = render_text(t80, 80, &sk80), *b = render_text(t8080, 8080, &sk8080);
    ck_assert_int_eq(sk80 + sk8080, 0);
    ck_assert_ptr_nonnull(strstr(a, "upstream gw80_default_a_80 {"));
    ck_assert_ptr_nonnull(strstr(b, "upstream gw8080_default_a_80 {"));
    ck_assert_ptr_nonnull(strstr(b, "split_clients \"${request_id}\" $lbchain8080_split0 {"));
    ck_assert_ptr_nonnull(strstr(b, "map $http_x_canary $lbchain8080_c0 {"));
    ck_assert_ptr_nonnull(strstr(b, "        default $lbchain8080_split0;"));
    ck_assert_ptr_null(strstr(b, "lbchain80_"));
    ck_assert_ptr_null(strstr(b, "gw80_"));
    char *both = lb_sprintf("%s%s", a, b);
    ck_assert_int_eq(nginx_check(both), 0);
    /* the check can fail: the same port's text twice declares every name twice */
    char *twice = lb_sprintf("%s%s", a, a);
    ck_assert_int_ne(nginx_check(twice), 0);
    lb_free(both);
    lb_free(twice);
    free(a);
    free(b);
    gw_table_free(t80);
    table_free(t8080, &o);
}
END_TEST

/* ---- the rendered maps, answered by a real nginx on 127.0.0.1 ------------------------------ */
typedef struct agree_ctx {
    const gw_table_t *t;
    const char *svcs[8];
    int ports[8];                   /* each Service's one endpoint: 127.0.0.1:port */
    size_t n;
} agree_ctx_t;

static size_t agree_eps(const char *ns, const char *svc, int port, uint32_t *ips,
                        uint16_t *ports, size_t max, void *data)
{
    (void)ns;
    (void)port;
    const agree_ctx_t *c = data;
    for (size_t i = 0; i < c->n && max; i++)
        if (!strcmp(c->svcs[i], svc)) {
            ips[0] = 0x7f000001u;
            ports[0] = (uint16_t)c->ports[i];
            return 1;
        }
    return 0;
}

static void agree_walk(const char *host, const char *path,
                       bool (*fn)(const gw_cand_t *c, void *arg), void *arg, void *data)
{
    const agree_ctx_t *c = data;
    gw_request_t r = req(host, "GET", path);
    gw_table_walk(c->t, &r, GW_WALK_CONDS, fn, arg);
}

/* A port on 127.0.0.1 nothing listens on now (the kernel's choice). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u) };
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* One HTTP/1.0 request to 127.0.0.1:port; returns the status, the body in body ("" when
 * none), -1 when nothing answered within 5 s. */
static int http10(int port, const char *method, const char *target, const char *hdrs,
                  char *body, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(0x7f000001u) };
    body[0] = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char rq[1024], resp[4096];
    int k = snprintf(rq, sizeof rq, "%s %s HTTP/1.0\r\nHost: x\r\n%s\r\n", method, target, hdrs);
    if (write(fd, rq, (size_t)k) != k) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof resp && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = 0;
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, n, "%s", b ? b + 4 : "");
    return status;
}

/* For a set of requests, the route the model's gw_table_match picks and the backend the
 * rendered configuration reaches in a real nginx are the same (each Service's endpoint
 * answers its name). */
START_TEST(render_nginx_agrees_with_model)
{
    if (system("command -v nginx >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_gateway_api: nginx not installed: agreement not checked\n");
        return;
    }
    k8s_objects_t o = { 0 };
    k8s_gateway_t *g = simple_gw(&o);
    simple_route(&o, "default", "stable", GW_PATH_PREFIX, "/app");
    gw_route_match_t *m = simple_route(&o, "default", "canary", GW_PATH_PREFIX, "/app");
    header(m, GW_MATCH_EXACT, "X-Canary", "true");
    m = simple_route(&o, "default", "beta", GW_PATH_PREFIX, "/app");
    header(m, GW_MATCH_REGEX, "x-canary", "be.*");
    query(m, GW_MATCH_EXACT, "v", "2.0");
    m = simple_route(&o, "default", "post", GW_PATH_PREFIX, "/app");
    m->method = sdup("POST");
    simple_route(&o, "default", "items", GW_PATH_REGEX, "/v[0-9]+/items");
    m = simple_route(&o, "default", "exact", GW_PATH_EXACT, "/app/x");
    header(m, GW_MATCH_EXACT, "x-b", "1");
    gw_table_t *t = table(&o, g, 0);
    agree_ctx_t ctx = { .t = t, .svcs = { "stable", "canary", "beta", "post", "items", "exact" },
                        .n = 6 };
    for (size_t i = 0; i < ctx.n; i++) ctx.ports[i] = free_port();
    int gport = free_port();
    const gw_table_t *tabs[] = { t };
    gw_nginx_t r = { .port = gport, .tables = tabs, .n_tables = 1, .walk = agree_walk,
                     .endpoints = agree_eps, .data = &ctx, .connect_timeout = 5 * SIM_S,
                     .idle_timeout = 10 * SIM_S, .num_retries = 0 };
    char dir[] = "/tmp/lbchain-gwagree-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128], cmd[600];
    snprintf(path, sizeof path, "%s/nginx.conf", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
            "events { worker_connections 64; }\nhttp {\n    access_log off;\n", dir, dir);
    ck_assert_int_eq(gw_nginx_render(f, &r), 0);
    for (size_t i = 0; i < ctx.n; i++)
        fprintf(f, "    server {\n        listen 127.0.0.1:%d;\n        location / {\n"
                "            return 200 \"%s\";\n        }\n    }\n", ctx.ports[i], ctx.svcs[i]);
    fprintf(f, "}\n");
    fclose(f);
    /* daemonised: the listening sockets are bound when it returns */
    snprintf(cmd, sizeof cmd, "nginx -q -p %s/ -e %s/error.log -c %s >%s/out 2>&1", dir, dir,
             path, dir);
    int started = system(cmd);
    static const struct { const char *method, *target, *hdrs; } rq[] = {
        { "GET", "/app", "" },
        { "GET", "/app", "X-Canary: true\r\n" },
        { "GET", "/app/sub", "x-canary: true\r\n" },
        { "GET", "/app", "x-canary: TRUE\r\n" },            /* values: case counts */
        { "GET", "/app?v=2.0", "x-canary: beta\r\n" },
        { "GET", "/app?v=2x0", "x-canary: beta\r\n" },      /* '.' is escaped */
        { "GET", "/app?a=1&v=2.0", "x-canary: bet\r\n" },
        { "POST", "/app", "" },
        { "POST", "/app/sub", "x-canary: true\r\n" },       /* the method outranks headers */
        { "GET", "/v12/items", "" },
        { "GET", "/v/items", "" },
        { "GET", "/v12/items/more", "" },
        { "GET", "/appx", "" },
        { "GET", "/app/x", "x-b: 1\r\n" },                   /* Exact outranks the prefixes */
        { "GET", "/app/x", "x-b: 2\r\nx-canary: true\r\n" },
    };
    int agree = 0, n = (int)(sizeof rq / sizeof rq[0]);
    for (int i = 0; started == 0 && i < n; i++) {
        /* the model: the same request */
        gw_header_t hs[4];
        size_t nh = 0;
        char hbuf[256];
        snprintf(hbuf, sizeof hbuf, "%s", rq[i].hdrs);
        for (char *line = strtok(hbuf, "\r\n"); line && nh < 4; line = strtok(NULL, "\r\n")) {
            char *colon = strchr(line, ':');
            *colon = 0;
            hs[nh++] = (gw_header_t){ line, colon + 2 };
        }
        gw_request_t mr = { .host = "x", .method = rq[i].method, .path = rq[i].target,
                            .headers = hs, .n_headers = nh };
        const gw_hit_t *h = gw_table_match(t, &mr);
        const char *want = h ? h->route->route->meta.name : "404";
        char body[512];
        int st = http10(gport, rq[i].method, rq[i].target, rq[i].hdrs, body, sizeof body);
        char got[520];
        if (st == 200) snprintf(got, sizeof got, "%s", body);
        else snprintf(got, sizeof got, "%d", st);
        if (!strcmp(want, got)) agree++;
        else fprintf(stderr, "render_nginx_agrees_with_model: %s %s [%s]: model %s, nginx %s\n",
                     rq[i].method, rq[i].target, rq[i].hdrs, want, got);
    }
    snprintf(cmd, sizeof cmd, "nginx -q -s stop -p %s/ -e %s/error.log -c %s >/dev/null 2>&1",
             dir, dir, path);
    if (started == 0) ck_assert_int_eq(system(cmd), 0);
    /* the master removes its pid file on the way out: wait for it (bounded) */
    snprintf(path, sizeof path, "%s/nginx.pid", dir);
    for (int i = 0; i < 100 && access(path, F_OK) == 0; i++) usleep(20000);
    snprintf(cmd, sizeof cmd, "cat %s/out >&2; rm -rf '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(started == 0, "nginx did not start");
    ck_assert_int_eq(agree, n);
    table_free(t, &o);
}
END_TEST

Suite *suite_gateway_api(void)
{
    Suite *s = suite_create("gateway_api");
    TCase *tc = tcase_create("seed");
    tcase_add_test(tc, seed_routes);
    tcase_add_test(tc, seed_probe_404_without_health_route);
    suite_add_tcase(s, tc);
    tc = tcase_create("precedence");
    tcase_add_test(tc, path_precedence);
    tcase_add_test(tc, method_header_query_precedence);
    tcase_add_test(tc, route_age_name_and_rule_order);
    tcase_add_test(tc, hostname_precedence);
    tcase_add_test(tc, hostname_intersection);
    tcase_add_test(tc, regular_expressions);
    suite_add_tcase(s, tc);
    tc = tcase_create("status");
    tcase_add_test(tc, attachment_and_reasons);
    tcase_add_test(tc, unsupported_values);
    tcase_add_test(tc, reference_grants);
    tcase_add_test(tc, backend_validity_and_weights);
    tcase_add_test(tc, k8s_helpers);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, render_nginx);
    tcase_add_test(tc, render_nginx_conditions);
    tcase_add_test(tc, render_nginx_two_ports);
    tcase_add_test(tc, render_nginx_agrees_with_model);
    suite_add_tcase(s, tc);
    return s;
}

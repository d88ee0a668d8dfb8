/* test_cluster.c -- the cluster model (include/cluster.h) on a small VNet: AKS-like node
 * pools (system + user), manifests loaded from YAML strings (the seed's sample app with its
 * nginx heredoc, Services, the Istio Gateway), a client host in the fabric. Pins scheduling,
 * addressing, maxPods, Service allocation (and a full NodePort range), which pods a
 * Service selects, apps answering through kube-proxy, kubelet readiness and the
 * Service/pod Istio generates for a Gateway. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include "util.h"
#include "cluster.h"
#include "netfilter.h"
#include "manifests.h"
#include "apps.h"
#include "istio_gateway.h"

#define LAT (1 * SIM_MS)            /* fabric, one way */

/* ---- manifests ------------------------------------------------------------------------- */

/* The seed's sample app 1 (scenarios/aks/app1.yaml): name, replicas, extra pod-spec lines
 * (indent 6), extra readinessProbe lines (indent 12). */
static const char *APP_FMT =
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata:\n"
    "  name: %s\n"
    "  namespace: sample-apps\n"
    "spec:\n"
    "  replicas: %d\n"
    "  selector:\n"
    "    matchLabels: { app: %s }\n"
    "  template:\n"
    "    metadata:\n"
    "      labels: { app: %s }\n"
    "    spec:\n"
    "%s"
    "      containers:\n"
    "        - name: nginx\n"
    "          image: nginx:1.27-alpine\n"
    "          ports:\n"
    "            - containerPort: 8080\n"
    "              name: http\n"
    "          command: [\"/bin/sh\", \"-c\"]\n"
    "          args:\n"
    "            - |\n"
    "              cat > /etc/nginx/conf.d/default.conf << 'NGINX_EOF'\n"
    "              server {\n"
    "                  listen 8080;\n"
    "                  location /app1 { return 200 'Hello from App 1\\n'; }\n"
    "                  location /app1/health { return 200 'healthy\\n'; }\n"
    "                  location / { return 200 'Sample App 1 - Use /app1 endpoint\\n'; }\n"
    "              }\n"
    "              NGINX_EOF\n"
    "              nginx -g 'daemon off;'\n"
    "          readinessProbe:\n"
    "            httpGet: { path: /app1/health, port: 8080 }\n"
    "            periodSeconds: 5\n"
    "%s";

static const char *SVC_FMT =
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata:\n"
    "  name: %s\n"
    "  namespace: sample-apps\n"
    "spec:\n"
    "  type: %s\n"
    "%s"
    "  ports:\n"
    "    - { name: http, port: 80, targetPort: 8080%s }\n"
    "  selector: { app: %s }\n";

/* The seed's Gateway (scenarios/aks/gateway.yaml) and its HTTPRoute for /app1. */
static const char *GATEWAY_YAML =
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: Gateway\n"
    "metadata:\n"
    "  name: mtkc-gateway\n"
    "  namespace: istio-ingress\n"
    "spec:\n"
    "  gatewayClassName: istio\n"
    "  infrastructure:\n"
    "    annotations:\n"
    "      service.beta.kubernetes.io/azure-load-balancer-internal: \"true\"\n"
    "  listeners:\n"
    "    - name: http\n"
    "      port: 80\n"
    "      protocol: HTTP\n"
    "      allowedRoutes:\n"
    "        namespaces:\n"
    "          from: All\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: HTTPRoute\n"
    "metadata:\n"
    "  name: app1-route\n"
    "  namespace: sample-apps\n"
    "spec:\n"
    "  parentRefs:\n"
    "    - name: mtkc-gateway\n"
    "      namespace: istio-ingress\n"
    "  rules:\n"
    "    - matches:\n"
    "        - path: { type: PathPrefix, value: /app1 }\n"
    "      backendRefs:\n"
    "        - name: app1\n"
    "          port: 80\n";

/* scenarios/aks/gateway-etp-local.yaml: the generated Service patched to ETP Local. */
static const char *ETP_LOCAL_YAML =
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata:\n"
    "  name: mtkc-gateway-istio\n"
    "  namespace: istio-ingress\n"
    "  annotations:\n"
    "    service.beta.kubernetes.io/azure-load-balancer-internal: \"true\"\n"
    "spec:\n"
    "  type: LoadBalancer\n"
    "  externalTrafficPolicy: Local\n"
    "  selector:\n"
    "    gateway.networking.k8s.io/gateway-name: mtkc-gateway\n"
    "  ports:\n"
    "    - { name: status-port, port: 15021, appProtocol: tcp }\n"
    "    - { name: http, port: 80, appProtocol: http }\n";

#define USER_ONLY "      nodeSelector: { agentpool: user }\n"

static char *app_yaml(const char *name, int replicas, const char *spec_extra,
                      const char *probe_extra)
{
    return lb_sprintf(APP_FMT, name, replicas, name, name, spec_extra ? spec_extra : "",
                      probe_extra ? probe_extra : "");
}

static char *svc_yaml(const char *name, const char *type, const char *spec_extra,
                      const char *port_extra, const char *app)
{
    return lb_sprintf(SVC_FMT, name, type, spec_extra ? spec_extra : "",
                      port_extra ? port_extra : "", app);
}

/* ---- environment ----------------------------------------------------------------------- */

typedef struct env {
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    net_node_t *client;
    manifests_t *mf;
    metrics_t *m;
    cluster_t *c;
    http_pool_t *pool;
    tu_res_t res;
    char err[512];
    int line;                       /* manifests: next document's first line */
    void (*tune)(cluster_params_t *);   /* changes the parameters before the build; NULL */
} env_t;

static const cluster_taint_t critical_taint = {"CriticalAddonsOnly", "true", "NoSchedule"};

static void env_init(env_t *e, uint64_t seed)
{
    memset(e, 0, sizeof *e);
    tu_fabric_new(seed, "vnet", LAT, &e->sim, &e->net, &e->fab);
    e->client = tu_fabric_host(e->net, e->fab, "client", "10.1.0.10", 8, false)->node;
    e->mf = manifests_new();
    e->m = metrics_new(SIM_S, 600 * SIM_S);
    e->pool = http_pool_new(e->client, NULL);
    e->line = 1;
}

/* Adds a YAML stream (freed here when owned) as one file "k8s.yaml" per call. */
static void add(env_t *e, char *yaml, bool owned)
{
    scn_diag_t d;
    int rc = manifests_add_string(e->mf, yaml, "k8s.yaml", &d);
    if (rc) scn_diag_print(&d, stderr);
    ck_assert_int_eq(rc, 0);
    if (owned) lb_free(yaml);
}

/* Builds the cluster: system pool (1 node, optionally tainted) and user pool (2 nodes,
 * max_pods per node; 0: the default). */
static cluster_t *build_pools(env_t *e, bool taint_system, bool warm, int max_pods)
{
    cluster_pool_t pools[2] = {
        {.name = "system", .count = 1, .taints = taint_system ? &critical_taint : NULL,
         .n_taints = taint_system ? 1 : 0},
        {.name = "user", .count = 2, .max_pods = max_pods},
    };
    cluster_params_t p;
    cluster_params_default(&p);
    p.name = "aks";
    p.pools = pools;
    p.n_pools = 2;
    p.warm_start = warm;
    if (e->tune) e->tune(&p);
    e->c = cluster_new(e->net, e->fab, &p, manifests_objects(e->mf), e->m, e->err,
                       sizeof e->err);
    return e->c;
}

static cluster_t *build(env_t *e, bool taint_system, bool warm)
{
    return build_pools(e, taint_system, warm, 0);
}

/* A warm cluster (seed 1, system pool untainted) running `replicas` of the seed's app1 on
 * the user pool, with extra readinessProbe lines probe_extra. */
static void app1_cluster(env_t *e, int replicas, const char *probe_extra)
{
    env_init(e, 1);
    add(e, app_yaml("app1", replicas, USER_ONLY, probe_extra), true);
    ck_assert_ptr_nonnull(build(e, false, true));
}

/* The build failed with an error message starting with want. */
static void assert_build_error(env_t *e, bool taint_system, const char *want)
{
    ck_assert_ptr_null(build(e, taint_system, true));
    ck_assert_msg(strncmp(e->err, want, strlen(want)) == 0, "err: %s", e->err);
}

static void env_free(env_t *e)
{
    http_pool_free(e->pool);
    cluster_free(e->c);
    manifests_free(e->mf);
    metrics_free(e->m);
    net_free(e->net);
    sim_free(e->sim);
}

/* GET path from the client to ip:port; runs the simulation for d and returns the slot. */
static int get(env_t *e, const char *ip, uint16_t port, const char *path, sim_time_t d)
{
    int i = e->res.n % TU_RES_MAX;
    http_pool_request(e->pool, tu_ip(ip), port, http_request_new("GET", "app.example", path, 0),
                      tu_res_cb, &e->res);
    sim_run(e->sim, sim_now(e->sim) + d);
    ck_assert_int_eq(e->res.n, i + 1);
    return i;
}

static const char *host_of(cluster_t *c, size_t pod)
{
    return cluster_pod_at(c, pod)->host->node->name;
}

static int pods_on(cluster_t *c, const char *dep, const char *node)
{
    int k = 0;
    for (size_t i = 0; i < cluster_pod_count(c); i++) {
        cluster_pod_t *p = cluster_pod_at(c, i);
        if (strcmp(p->dep->meta.name, dep) == 0 && strcmp(p->host->node->name, node) == 0) k++;
    }
    return k;
}

/* Replicas of dep on aks-system-0, aks-user-0 and aks-user-1. */
static void assert_spread(cluster_t *c, const char *dep, int sys, int user0, int user1)
{
    ck_assert_int_eq(pods_on(c, dep, "aks-system-0"), sys);
    ck_assert_int_eq(pods_on(c, dep, "aks-user-0"), user0);
    ck_assert_int_eq(pods_on(c, dep, "aks-user-1"), user1);
}

static cluster_pod_t *pod_named(cluster_t *c, const char *name)
{
    for (size_t i = 0; i < cluster_pod_count(c); i++)
        if (strcmp(cluster_pod_at(c, i)->name, name) == 0) return cluster_pod_at(c, i);
    return NULL;
}

static const char *ip_str(uint32_t a)
{
    static char b[4][16];
    static int k;
    return lb_ip_str(a, b[k++ % 4]);
}

/* ---- scheduling ------------------------------------------------------------------------- */

START_TEST(replicas_spread_over_eligible_nodes)
{
    env_t e;
    env_init(&e, 1);
    add(&e, app_yaml("web", 3, NULL, NULL), true);          /* every node eligible */
    add(&e, app_yaml("user-app", 4, USER_ONLY, NULL), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    ck_assert_uint_eq(cluster_node_count(e.c), 3);
    ck_assert_str_eq(cluster_node_at(e.c, 0)->node->name, "aks-system-0");
    ck_assert_str_eq(cluster_node_at(e.c, 1)->node->name, "aks-user-0");
    ck_assert_str_eq(cluster_node_at(e.c, 2)->node->name, "aks-user-1");
    ck_assert_str_eq(cluster_node_at(e.c, 1)->pool, "user");
    ck_assert_uint_eq(cluster_pod_count(e.c), 7);
    /* one replica of web per node, then user-app two per user node, none on system */
    assert_spread(e.c, "web", 1, 1, 1);
    assert_spread(e.c, "user-app", 0, 2, 2);
    ck_assert_str_eq(cluster_pod_at(e.c, 0)->name, "web-0");
    ck_assert_str_eq(cluster_pod_at(e.c, 3)->name, "user-app-0");
    ck_assert_str_eq(cluster_pod_at(e.c, 3)->ns, "sample-apps");
    /* every pod runs nginx from its heredoc */
    for (size_t i = 0; i < cluster_pod_count(e.c); i++)
        ck_assert_int_eq(cluster_pod_at(e.c, i)->app_kind, CLUSTER_APP_NGINX);
    env_free(&e);
}
END_TEST

START_TEST(taint_keeps_pods_off_system_pool)
{
    env_t e;
    env_init(&e, 1);
    /* no toleration, no nodeSelector: the tainted system node is filtered out */
    add(&e, app_yaml("web", 3, NULL, NULL), true);
    /* the CriticalAddonsOnly toleration (Exists, as AKS add-ons carry) and a nodeSelector
     * for the system pool: lands there */
    add(&e, app_yaml("addon", 1,
                     "      nodeSelector: { agentpool: system }\n"
                     "      tolerations:\n"
                     "        - { key: CriticalAddonsOnly, operator: Exists }\n", NULL), true);
    /* toleration by value (Equal, true, NoSchedule), no nodeSelector: the system node is
     * eligible again and the spread puts the first replica on it (fewest pods) */
    add(&e, app_yaml("tolerant", 3,
                     "      tolerations:\n"
                     "        - { key: CriticalAddonsOnly, operator: Equal, value: \"true\","
                     " effect: NoSchedule }\n", NULL), true);
    ck_assert_ptr_nonnull(build(&e, true, true));
    assert_spread(e.c, "web", 0, 2, 1);
    ck_assert_int_eq(pods_on(e.c, "addon", "aks-system-0"), 1);
    assert_spread(e.c, "tolerant", 1, 1, 1);
    env_free(&e);
}
END_TEST

START_TEST(toleration_with_other_value_does_not_fit)
{
    env_t e;
    env_init(&e, 1);
    /* a Service document first, so the Deployment starts on a later line */
    char *svc = svc_yaml("addon", "ClusterIP", NULL, NULL, "addon");
    char *dep = app_yaml("addon", 1,
                         "      nodeSelector: { agentpool: system }\n"
                         "      tolerations:\n"
                         "        - { key: CriticalAddonsOnly, operator: Equal,"
                         " value: \"false\" }\n",
                         NULL);
    int svc_lines = 0;
    for (const char *s = svc; *s; s++) svc_lines += *s == '\n';
    char *both = lb_sprintf("%s---\n%s", svc, dep);
    lb_free(svc);
    lb_free(dep);
    add(&e, both, true);
    /* the Deployment's mapping starts after the Service and the "---" line, column 1 */
    char want[160];
    snprintf(want, sizeof want, "k8s.yaml:%d:1: Deployment sample-apps/addon: no node fits",
             svc_lines + 2);
    assert_build_error(&e, true, want);
    env_free(&e);
}
END_TEST

START_TEST(deployment_that_fits_no_node_is_an_error)
{
    env_t e;
    env_init(&e, 1);
    add(&e, app_yaml("gpu-job", 1, "      nodeSelector: { agentpool: gpu }\n", NULL), true);
    assert_build_error(&e, false, "k8s.yaml:1:1: Deployment sample-apps/gpu-job: no node fits");
    env_free(&e);
}
END_TEST

/* kubelet's maxPods: a node with no room left is filtered out (the scheduler's "Too many
 * pods"); replicas that find no node with room are an error, as they would stay Pending. */
START_TEST(max_pods_fills_nodes_then_pending)
{
    env_t e;
    env_init(&e, 1);
    add(&e, app_yaml("a", 3, USER_ONLY, NULL), true);     /* 2 + 1 */
    add(&e, app_yaml("b", 1, USER_ONLY, NULL), true);     /* the one place left */
    ck_assert_ptr_nonnull(build_pools(&e, true, true, 2));
    assert_spread(e.c, "a", 0, 2, 1);
    assert_spread(e.c, "b", 0, 0, 1);
    ck_assert_int_eq(cluster_node_at(e.c, 1)->max_pods, 2);
    ck_assert_int_eq(cluster_node_at(e.c, 0)->max_pods, CLUSTER_MAX_PODS_AKS);   /* default */
    env_free(&e);

    env_init(&e, 1);
    add(&e, app_yaml("a", 5, USER_ONLY, NULL), true);
    ck_assert_ptr_null(build_pools(&e, true, true, 2));
    ck_assert_str_eq(e.err, "k8s.yaml:1:1: Deployment sample-apps/a: 1 of its 5 replicas find no "
                            "node with room (the 2 nodes that fit are full: maxPods, the pool's "
                            "max-pods); they would stay Pending");
    env_free(&e);
}
END_TEST

/* Every NodePort of 30000-32767 taken: the next NodePort Service is an error at its
 * manifest (the API server: "range is full"), not an endless search for a free port. */
START_TEST(node_port_range_full_is_an_error)
{
    env_t e;
    env_init(&e, 1);
    int n = CLUSTER_NODEPORT_HI - CLUSTER_NODEPORT_LO + 1;
    LB_VEC(char) yaml = {0};
    for (int i = 0; i <= n; i++) {
        char *doc = lb_sprintf("---\napiVersion: v1\nkind: Service\nmetadata: { name: s%d, "
                               "namespace: default }\nspec: { type: NodePort, selector: { app: x }, "
                               "ports: [ { port: 80 } ] }\n", i);
        size_t l = strlen(doc);
        lb_vec_reserve(&yaml, yaml.n + l + 1);
        memcpy(yaml.v + yaml.n, doc, l + 1);
        yaml.n += l;
        lb_free(doc);
    }
    add(&e, yaml.v, false);
    lb_vec_free(&yaml);
    ck_assert_ptr_null(build(&e, false, true));
    char want[200];
    snprintf(want, sizeof want, "Service default/s%d: no free NodePort: all %d of 30000-32767 "
             "are allocated (the API server rejects it: range is full)", n, n);
    ck_assert_msg(strstr(e.err, want) != NULL, "err: %s", e.err);
    env_free(&e);
}
END_TEST

/* A Service selects the pods of every Deployment whose pod labels contain its selector, in
 * its namespace only, in pod order (kube-proxy's endpoints follow that order). */
START_TEST(service_selects_pods_by_labels)
{
    env_t e;
    env_init(&e, 1);
    static const char *DEP_FMT =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: %s, namespace: %s }\n"
        "spec:\n  replicas: %d\n  selector: { matchLabels: { app: %s } }\n"
        "  template:\n    metadata: { labels: { app: %s, tier: %s } }\n"
        "    spec: { containers: [ { name: c, image: nginx } ] }\n";
    add(&e, lb_sprintf(DEP_FMT, "web", "shop", 2, "web", "web", "front"), true);
    add(&e, lb_sprintf(DEP_FMT, "api", "shop", 1, "api", "api", "back"), true);
    add(&e, lb_sprintf(DEP_FMT, "web2", "shop", 1, "web2", "web2", "front"), true);
    add(&e, lb_sprintf(DEP_FMT, "other", "elsewhere", 1, "o", "o", "front"), true);
    add(&e, lb_strdup("apiVersion: v1\nkind: Service\nmetadata: { name: front, namespace: shop }\n"
                      "spec: { selector: { tier: front }, ports: [ { port: 80 } ] }\n"), true);
    add(&e, lb_strdup("apiVersion: v1\nkind: Service\nmetadata: { name: none, namespace: shop }\n"
                      "spec: { selector: { tier: front, app: api }, ports: [ { port: 80 } ] }\n"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    cluster_pod_t *out[8];
    size_t n = cluster_service_pods(e.c, cluster_service(e.c, "shop", "front"), out, 8);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(out[0]->name, "web-0");
    ck_assert_str_eq(out[1]->name, "web-1");
    ck_assert_str_eq(out[2]->name, "web2-0");
    ck_assert_uint_eq(cluster_service_pods(e.c, cluster_service(e.c, "shop", "none"), out, 8), 0);
    env_free(&e);
}
END_TEST

/* The `scale` key's synthetic workload: N Services with R pause pods each, scheduled
 * like any Deployment, allocated ClusterIPs after the manifests' Services, and written by
 * kube-proxy on every node. */
START_TEST(scale_generates_services_and_pods)
{
    env_t e;
    env_init(&e, 1);
    add(&e, lb_strdup("apiVersion: v1\nkind: Service\nmetadata: { name: front, namespace: web }\n"
                      "spec: { selector: { app: front }, ports: [ { port: 80 } ] }\n"), true);
    cluster_pool_t pools[1] = { {.name = "user", .count = 3} };
    cluster_params_t p;
    cluster_params_default(&p);
    p.name = "aks";
    p.pools = pools;
    p.n_pools = 1;
    p.warm_start = true;
    p.scale_services = 4;
    p.scale_replicas = 3;
    p.scale_port = 8000;
    p.scale_namespace = "bulk";
    p.scale_prefix = "s";
    e.c = cluster_new(e.net, e.fab, &p, manifests_objects(e.mf), e.m, e.err, sizeof e.err);
    ck_assert_msg(e.c != NULL, "%s", e.err);
    ck_assert_uint_eq(cluster_pod_count(e.c), 12);
    cluster_pod_t *out[8];
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "s-%d", i);
        k8s_service_t *s = cluster_service(e.c, "bulk", name);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(s->ports.v[0].port, 8000);
        ck_assert_uint_eq(cluster_service_pods(e.c, s, out, 8), 3);
        ck_assert_uint_gt(s->cluster_ip, cluster_service(e.c, "web", "front")->cluster_ip);
    }
    ck_assert_ptr_null(cluster_service(e.c, "bulk", "s-4"));
    ck_assert_int_eq(pods_on(e.c, "s-0", "aks-user-0") + pods_on(e.c, "s-0", "aks-user-1") +
                     pods_on(e.c, "s-0", "aks-user-2"), 3);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nf_save(nf_get(net_node_find(e.net, "aks-user-2")), f, false);
    fclose(f);
    int n = 0;
    for (const char *q = buf; (q = strstr(q, "-A KUBE-SERVICES -d ")); q++) n++;
    ck_assert_int_eq(n, 5);                     /* front and s-0 .. s-3 */
    ck_assert_ptr_nonnull(strstr(buf, "\"bulk/s-3 cluster IP\""));
    free(buf);
    env_free(&e);
}
END_TEST

/* ---- addressing --------------------------------------------------------------------------- */

START_TEST(node_and_pod_addresses)
{
    env_t e;
    app1_cluster(&e, 3, NULL);
    /* node i: node subnet 10.224.0.0/16 + 4 + i (Azure reserves .0-.3) */
    ck_assert_str_eq(ip_str(cluster_node_at(e.c, 0)->nic->addr), "10.224.0.4");
    ck_assert_str_eq(ip_str(cluster_node_at(e.c, 1)->nic->addr), "10.224.0.5");
    ck_assert_str_eq(ip_str(cluster_node_at(e.c, 2)->nic->addr), "10.224.0.6");
    ck_assert_int_eq(cluster_node_at(e.c, 2)->nic->plen, 16);
    ck_assert_str_eq(ip_str(cluster_node_at(e.c, 2)->pod_base), "10.244.2.0");
    /* pods: <pod CIDR>.<node index>.2, .3, ... */
    ck_assert_str_eq(host_of(e.c, 0), "aks-user-0");
    ck_assert_str_eq(ip_str(cluster_pod_at(e.c, 0)->ip), "10.244.1.2");
    ck_assert_str_eq(host_of(e.c, 1), "aks-user-1");
    ck_assert_str_eq(ip_str(cluster_pod_at(e.c, 1)->ip), "10.244.2.2");
    ck_assert_str_eq(host_of(e.c, 2), "aks-user-0");
    ck_assert_str_eq(ip_str(cluster_pod_at(e.c, 2)->ip), "10.244.1.3");
    /* the node routes the pod /32 to its veth; the pod's default route goes back */
    cluster_pod_t *p0 = cluster_pod_at(e.c, 0);
    const net_route_t *r = net_route_lookup(p0->host->node, p0->ip);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->plen, 32);
    ck_assert_ptr_eq(r->ifc->node, p0->host->node);
    ck_assert_ptr_ne(r->ifc, p0->host->nic);
    ck_assert_ptr_nonnull(net_route_lookup(p0->node, tu_ip("10.1.0.10")));
    /* the client reaches each pod IP directly through the fabric (pod /24 -> node):
     * handshake 2 x 1 ms, request 1 ms, response 1 ms, plus 4 veth crossings of 2 us */
    for (int k = 0; k < 3; k++) {
        int i = get(&e, ip_str(cluster_pod_at(e.c, (size_t)k)->ip), 8080, "/app1", 50 * SIM_MS);
        ck_assert_int_eq(e.res.r[i].outcome, HTTP_OK);
        ck_assert_int_eq(e.res.r[i].status, 200);
        ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
        ck_assert_int_eq(e.res.r[i].t_done - e.res.r[i].t_start,
                         4 * LAT + 4 * CLUSTER_VETH_LATENCY);
    }
    env_free(&e);
}
END_TEST

/* ---- services ----------------------------------------------------------------------------- */

static bool in_cidr(uint32_t a, const char *cidr)
{
    uint32_t p;
    int plen;
    ck_assert_int_eq(lb_cidr_parse(cidr, &p, &plen), 0);
    return (a & lb_prefix_mask(plen)) == (p & lb_prefix_mask(plen));
}

START_TEST(service_addresses_and_ports)
{
    env_t e;
    env_init(&e, 7);
    add(&e, app_yaml("app1", 2, USER_ONLY, NULL), true);
    add(&e, svc_yaml("plain", "ClusterIP", NULL, NULL, "app1"), true);
    add(&e, svc_yaml("np", "NodePort", NULL, NULL, "app1"), true);
    add(&e, svc_yaml("np-local", "NodePort", "  externalTrafficPolicy: Local\n", NULL, "app1"),
        true);
    add(&e, svc_yaml("lb-cluster", "LoadBalancer", NULL, NULL, "app1"), true);
    add(&e, svc_yaml("lb-local", "LoadBalancer", "  externalTrafficPolicy: Local\n", NULL, "app1"),
        true);
    add(&e, svc_yaml("fixed", "NodePort", NULL, ", nodePort: 30080", "app1"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    const char *names[] = {"plain", "np", "np-local", "lb-cluster", "lb-local", "fixed"};
    k8s_service_t *s[6];
    LB_VEC(int) ports = {0};
    for (int i = 0; i < 6; i++) {
        s[i] = cluster_service(e.c, "sample-apps", names[i]);
        ck_assert_ptr_nonnull(s[i]);
        /* ClusterIP in the service CIDR, not .0, .1 (kubernetes) or .10 (kube-dns), unique */
        ck_assert_msg(in_cidr(s[i]->cluster_ip, CLUSTER_SERVICE_CIDR_DEFAULT), "%s",
                      ip_str(s[i]->cluster_ip));
        ck_assert_uint_ne(s[i]->cluster_ip & 0xffff, 0);
        ck_assert_uint_ne(s[i]->cluster_ip & 0xffff, 1);
        ck_assert_uint_ne(s[i]->cluster_ip & 0xffff, 10);
        for (int k = 0; k < i; k++) ck_assert_uint_ne(s[i]->cluster_ip, s[k]->cluster_ip);
        int np = s[i]->ports.v[0].node_port;
        if (i == 0) {
            ck_assert_int_eq(np, 0);            /* ClusterIP: no NodePort */
        } else {
            ck_assert_int_ge(np, CLUSTER_NODEPORT_LO);
            ck_assert_int_le(np, CLUSTER_NODEPORT_HI);
            lb_vec_push(&ports, np);
        }
        /* healthCheckNodePort only for LoadBalancer with ETP Local */
        if (i == 4) {
            ck_assert_int_ge(s[i]->health_check_node_port, CLUSTER_NODEPORT_LO);
            ck_assert_int_le(s[i]->health_check_node_port, CLUSTER_NODEPORT_HI);
            lb_vec_push(&ports, s[i]->health_check_node_port);
        } else {
            ck_assert_int_eq(s[i]->health_check_node_port, 0);
        }
    }
    ck_assert_int_eq(s[5]->ports.v[0].node_port, 30080);  /* as written */
    ck_assert_uint_eq(ports.n, 6);
    for (size_t i = 0; i < ports.n; i++)
        for (size_t k = 0; k < i; k++) ck_assert_int_ne(ports.v[i], ports.v[k]);
    lb_vec_free(&ports);
    ck_assert_ptr_null(cluster_service(e.c, "default", "np"));
    /* kube-proxy on the node answers the healthCheckNodePort: one local endpoint on a user
     * node, none on the system node */
    ck_assert_int_eq(kp_health_local_endpoints(cluster_node_at(e.c, 1)->kp, "sample-apps",
                                               "lb-local"), 1);
    ck_assert_int_eq(kp_health_local_endpoints(cluster_node_at(e.c, 0)->kp, "sample-apps",
                                               "lb-local"), 0);
    ck_assert_int_eq(kp_health_local_endpoints(cluster_node_at(e.c, 0)->kp, "sample-apps",
                                               "lb-cluster"), -1);
    env_free(&e);
}
END_TEST

/* A nodePort written in a later manifest is never handed out at random before it: the
 * allocator knows every port a Service asks for (the API server's allocation bitmap). */
START_TEST(explicit_node_port_not_allocated_to_another_service)
{
    env_t e;
    env_init(&e, 3);
    add(&e, svc_yaml("first", "NodePort", NULL, NULL, "app1"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    int taken = cluster_service(e.c, "sample-apps", "first")->ports.v[0].node_port;
    env_free(&e);

    env_init(&e, 3);                          /* same seed: same random draw */
    add(&e, svc_yaml("first", "NodePort", NULL, NULL, "app1"), true);
    char extra[64];
    snprintf(extra, sizeof extra, ", nodePort: %d", taken);
    add(&e, svc_yaml("second", "NodePort", NULL, extra, "app1"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    ck_assert_int_eq(cluster_service(e.c, "sample-apps", "second")->ports.v[0].node_port, taken);
    ck_assert_int_ne(cluster_service(e.c, "sample-apps", "first")->ports.v[0].node_port, taken);
    env_free(&e);
}
END_TEST

/* ClusterIPs as the API server allocates them: a named one must be in the service CIDR
 * and not named twice; the others skip every named one; a full CIDR or NodePort range is
 * an error, not a hang. */
START_TEST(cluster_ips_and_exhaustion)
{
    env_t e;
    env_init(&e, 3);
    add(&e, svc_yaml("auto", "ClusterIP", NULL, NULL, "app1"), true);
    add(&e, svc_yaml("named", "ClusterIP", "  clusterIP: 10.0.0.16\n", NULL, "app1"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    ck_assert_str_eq(ip_str(cluster_service(e.c, "sample-apps", "named")->cluster_ip), "10.0.0.16");
    ck_assert_str_eq(ip_str(cluster_service(e.c, "sample-apps", "auto")->cluster_ip), "10.0.0.17");
    env_free(&e);

    env_init(&e, 3);
    add(&e, svc_yaml("a", "ClusterIP", "  clusterIP: 10.0.0.50\n", NULL, "app1"), true);
    add(&e, svc_yaml("b", "ClusterIP", "  clusterIP: 10.0.0.50\n", NULL, "app1"), true);
    assert_build_error(&e, false, "k8s.yaml:1:1: Service sample-apps/b: spec.clusterIP: provided "
                       "IP 10.0.0.50 is already allocated to Service sample-apps/a (k8s.yaml:1:1)");
    env_free(&e);

    env_init(&e, 3);
    add(&e, svc_yaml("a", "ClusterIP", "  clusterIP: 10.9.0.50\n", NULL, "app1"), true);
    assert_build_error(&e, false, "k8s.yaml:1:1: Service sample-apps/a: spec.clusterIP: provided "
                       "IP 10.9.0.50 is not in the service CIDR 10.0.0.0/16");
    env_free(&e);

    /* 2768 NodePorts exist; 2769 ports of NodePort Services need one each */
    env_init(&e, 3);
    LB_VEC(char) ports = {0};
    for (int i = 0; i < K8S_NODEPORT_MAX - K8S_NODEPORT_MIN + 2; i++) {
        char one[64];
        int n = snprintf(one, sizeof one, "%s{ name: p%d, port: %d }", i ? ", " : "", i, 1000 + i);
        for (int k = 0; k < n; k++) lb_vec_push(&ports, one[k]);
    }
    lb_vec_push(&ports, '\0');
    add(&e, lb_sprintf("apiVersion: v1\nkind: Service\nmetadata: { name: many, namespace: x }\n"
                       "spec: { type: NodePort, ports: [ %s ] }\n", ports.v), true);
    lb_vec_free(&ports);
    assert_build_error(&e, false, "k8s.yaml:1:1: Service x/many: no free NodePort: all 2768 of "
                       "30000-32767 are allocated (the API server rejects it: range is full)");
    env_free(&e);
}
END_TEST

/* ---- apps --------------------------------------------------------------------------------- */

START_TEST(nginx_pod_answers_its_locations)
{
    env_t e;
    app1_cluster(&e, 1, NULL);
    const char *ip = ip_str(cluster_pod_at(e.c, 0)->ip);
    ck_assert_str_eq(ip, "10.244.1.2");
    int i = get(&e, ip, 8080, "/app1", 50 * SIM_MS);
    ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
    i = get(&e, ip, 8080, "/app1/health", 50 * SIM_MS);
    ck_assert_str_eq(e.res.body[i], "healthy\n");
    i = get(&e, ip, 8080, "/app10", 50 * SIM_MS);      /* nginx prefixes are plain strings */
    ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
    i = get(&e, ip, 8080, "/other", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 200);
    ck_assert_str_eq(e.res.body[i], "Sample App 1 - Use /app1 endpoint\n");
    /* only port 8080 listens: port 80 of the pod refuses */
    i = get(&e, ip, 80, "/app1", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_CONNECT_REFUSED);
    env_free(&e);
}
END_TEST

START_TEST(nodeport_on_another_node_dnat_and_masquerade)
{
    env_t e;
    env_init(&e, 1);
    add(&e, app_yaml("app1", 1, "      nodeSelector: { kubernetes.io/hostname: aks-user-0 }\n",
                     NULL), true);
    add(&e, svc_yaml("app1", "NodePort", NULL, NULL, "app1"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    ck_assert_str_eq(host_of(e.c, 0), "aks-user-0");
    int np = cluster_service(e.c, "sample-apps", "app1")->ports.v[0].node_port;
    tu_capture_t *cap = lb_calloc(1, sizeof *cap);
    tu_capture_start(e.net, cap);
    /* to aks-user-1 (10.224.0.6): no local pod, ETP Cluster -> DNAT to the pod on
     * aks-user-0 and MASQUERADE to aks-user-1's address */
    int i = get(&e, "10.224.0.6", (uint16_t)np, "/app1", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_OK);
    ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
    /* client -> user-1 1 ms, user-1 -> user-0 1 ms, veth 2 us; the same back; x2 RTTs */
    ck_assert_int_eq(e.res.r[i].t_done - e.res.r[i].t_start,
                     4 * (2 * LAT + CLUSTER_VETH_LATENCY));
    int seen = 0;
    for (int k = 0; k < cap->n; k++) {
        const pkt_t *p = &cap->rec[k].p;
        if (strcmp(cap->rec[k].where, "app1-0") != 0 || p->dst != tu_ip("10.244.1.2")) continue;
        ck_assert_str_eq(ip_str(p->src), "10.224.0.6");     /* the pod sees the node */
        ck_assert_int_eq(p->dport, 8080);
        seen++;
    }
    ck_assert_int_ge(seen, 3);                  /* SYN, ACK + request, ... */
    /* the client only ever talked to the node's address and NodePort */
    for (int k = 0; k < cap->n; k++) {
        const pkt_t *p = &cap->rec[k].p;
        if (strcmp(cap->rec[k].where, "client") != 0) continue;
        ck_assert_str_eq(ip_str(p->src), "10.224.0.6");
        ck_assert_int_eq(p->sport, np);
    }
    net_set_observer(e.net, NULL);
    lb_free(cap);
    env_free(&e);
}
END_TEST

/* ---- readiness ---------------------------------------------------------------------------- */

/* kube-proxy on the pod's node has the pod (10.244.1.2) as a local, DNAT'd endpoint of
 * sample-apps/app1, or not. */
static void assert_local_endpoint(kp_t *kp, bool present)
{
    ck_assert_int_eq(kp_health_local_endpoints(kp, "sample-apps", "app1"), (present ? 1 : 0));
    char *rules = kp_restore_text(kp);
    ck_assert((strstr(rules, "--to-destination 10.244.1.2:8080") != NULL) == present);
    lb_free(rules);
}

START_TEST(readiness_gates_endpoints)
{
    env_t e;
    env_init(&e, 1);
    add(&e, app_yaml("app1", 1, "      nodeSelector: { kubernetes.io/hostname: aks-user-0 }\n",
                     "            initialDelaySeconds: 3\n"), true);
    add(&e, svc_yaml("app1", "LoadBalancer", "  externalTrafficPolicy: Local\n", NULL, "app1"),
        true);
    ck_assert_ptr_nonnull(build(&e, false, false));         /* cold start */
    cluster_pod_t *pod = cluster_pod_at(e.c, 0);
    kp_t *kp = pod->host->kp;
    k8s_service_t *svc = cluster_service(e.c, "sample-apps", "app1");
    int np = svc->ports.v[0].node_port;
    ck_assert_ptr_nonnull(pod->kubelet);
    ck_assert(!pod->ready);
    assert_local_endpoint(kp, false);
    /* no ready endpoint anywhere: kube-proxy REJECTs the NodePort (the node answers with
     * ICMP port unreachable) */
    int i = get(&e, "10.224.0.5", (uint16_t)np, "/app1", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_CONNECT_REFUSED);
    /* the first probe runs at initialDelaySeconds (3 s), passes, the pod turns Ready */
    sim_run(e.sim, 3 * SIM_S - 1);
    ck_assert(!pod->ready);
    sim_run(e.sim, 3 * SIM_S + 10 * SIM_MS);
    ck_assert(pod->ready);
    assert_local_endpoint(kp, true);
    ck_assert_int_eq(kp_health_local_endpoints(cluster_node_at(e.c, 2)->kp, "sample-apps",
                                               "app1"), 0);
    i = get(&e, "10.224.0.5", (uint16_t)np, "/app1", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_OK);
    ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
    /* the healthCheckNodePort answers 200 on the pod's node, 503 elsewhere */
    uint16_t hc = (uint16_t)svc->health_check_node_port;
    i = get(&e, "10.224.0.5", hc, "/healthz", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 200);
    i = get(&e, "10.224.0.6", hc, "/healthz", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 503);
    /* kubelet says NotReady: the endpoint goes */
    cluster_pod_set_ready(e.c, pod, false);
    ck_assert(!pod->ready);
    assert_local_endpoint(kp, false);
    i = get(&e, "10.224.0.5", hc, "/healthz", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 503);
    env_free(&e);
}
END_TEST

START_TEST(warm_start_pods_ready_at_zero)
{
    env_t e;
    app1_cluster(&e, 1, "            initialDelaySeconds: 3\n");
    ck_assert(cluster_pod_at(e.c, 0)->ready);
    sim_run(e.sim, 20 * SIM_S);                  /* probes keep passing */
    ck_assert(cluster_pod_at(e.c, 0)->ready);
    env_free(&e);
}
END_TEST

/* ---- Istio ------------------------------------------------------------------------------ */

/* A warm cluster (seed 1) with the seed's Gateway and app1 (its Service patched to ETP Local
 * when asked); returns the Service Istio generated. */
static k8s_service_t *istio_cluster(env_t *e, bool etp_local)
{
    env_init(e, 1);
    add(e, (char *)GATEWAY_YAML, false);
    add(e, app_yaml("app1", 1, USER_ONLY, NULL), true);
    add(e, svc_yaml("app1", "ClusterIP", NULL, NULL, "app1"), true);
    if (etp_local) add(e, (char *)ETP_LOCAL_YAML, false);
    ck_assert_ptr_nonnull(build(e, false, true));
    k8s_service_t *s = cluster_service(e->c, "istio-ingress", "mtkc-gateway-istio");
    ck_assert_ptr_nonnull(s);
    return s;
}

/* The pod of the Deployment Istio generated. */
static cluster_pod_t *gateway_pod(env_t *e)
{
    cluster_pod_t *gw = pod_named(e->c, "mtkc-gateway-istio-0");
    ck_assert_ptr_nonnull(gw);
    return gw;
}

/* An overlay of Istio's generated Service: its nodePort and loadBalancerSourceRanges take
 * effect (server-side apply keeps the fields Istio does not set), kube-proxy writes the
 * KUBE-FW chain for the ranges, and an extra port is kept. */
static const char *OVERLAY_YAML =
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata: { name: mtkc-gateway-istio, namespace: istio-ingress }\n"
    "spec:\n"
    "  type: LoadBalancer\n"
    "  loadBalancerIP: 10.224.0.200\n"
    "  loadBalancerSourceRanges: [10.1.0.0/16]\n"
    "  ports:\n"
    "    - { name: http, port: 80, nodePort: 30080 }\n"
    "    - { name: extra, port: 8443, nodePort: 30443 }\n";

START_TEST(istio_service_overlay_fields_take_effect)
{
    env_t e;
    env_init(&e, 1);
    add(&e, (char *)GATEWAY_YAML, false);
    add(&e, app_yaml("app1", 1, USER_ONLY, NULL), true);
    add(&e, svc_yaml("app1", "ClusterIP", NULL, NULL, "app1"), true);
    add(&e, (char *)OVERLAY_YAML, false);
    ck_assert_ptr_nonnull(build(&e, false, true));
    k8s_service_t *s = cluster_service(e.c, "istio-ingress", "mtkc-gateway-istio");
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->ports.n, 3);
    tu_assert_svc_port(&s->ports.v[1], "http", 80, "http");     /* Istio's appProtocol */
    ck_assert_int_eq(s->ports.v[1].node_port, 30080);
    ck_assert_int_eq(s->ports.v[2].port, 8443);
    ck_assert_int_eq(s->ports.v[2].node_port, 30443);
    ck_assert_uint_eq(s->source_ranges.n, 1);
    char *rules = kp_restore_text(cluster_node_at(e.c, 0)->kp);
    ck_assert_ptr_nonnull(strstr(rules, "-A KUBE-FW-"));
    ck_assert_ptr_nonnull(strstr(rules, "-s 10.1.0.0/16 -j KUBE-EXT-"));
    ck_assert_ptr_nonnull(strstr(rules, "--dport 30080"));
    lb_free(rules);
    env_free(&e);
}
END_TEST

START_TEST(istio_gateway_service_and_pod)
{
    env_t e;
    k8s_service_t *s = istio_cluster(&e, false);
    ck_assert_int_eq(s->type, K8S_SVC_LOAD_BALANCER);
    ck_assert_int_eq(s->etp, K8S_ETP_CLUSTER);
    ck_assert_uint_eq(s->ports.n, 2);
    tu_assert_svc_port(&s->ports.v[0], "status-port", 15021, "tcp");
    tu_assert_svc_port(&s->ports.v[1], "http", 80, "http");
    ck_assert_int_ge(s->ports.v[1].node_port, CLUSTER_NODEPORT_LO);
    ck_assert_int_eq(s->health_check_node_port, 0);
    ck_assert_str_eq(k8s_kv_get(&s->meta.annotations,
                                "service.beta.kubernetes.io/azure-load-balancer-internal"),
                     "true");
    /* the gateway pod runs Envoy; the app pod nginx */
    cluster_pod_t *gw = gateway_pod(&e);
    ck_assert_str_eq(gw->ns, "istio-ingress");
    ck_assert_int_eq(gw->app_kind, CLUSTER_APP_ISTIO);
    ck_assert_ptr_nonnull(gw->kubelet);          /* readiness on :15021/healthz/ready */
    ck_assert_int_eq(pod_named(e.c, "app1-0")->app_kind, CLUSTER_APP_NGINX);
    ck_assert_uint_eq(cluster_pod_count(e.c), 2);
    /* Envoy routes /app1 by EDS to the app pod; it has no route for /healthz/ready on
     * the listener port (404 NR) but answers it on the status port */
    const char *gip = ip_str(gw->ip);
    int i = get(&e, gip, 80, "/app1", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 200);
    ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
    i = get(&e, gip, 80, "/healthz/ready", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 404);
    i = get(&e, gip, ISTIO_STATUS_PORT, "/healthz/ready", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 200);
    /* through the generated Service's NodePort on any node */
    i = get(&e, "10.224.0.4", (uint16_t)s->ports.v[1].node_port, "/app1", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 200);
    ck_assert_str_eq(e.res.body[i], "Hello from App 1\n");
    /* an unready app pod leaves Envoy without a healthy upstream: 503 UH */
    cluster_pod_set_ready(e.c, pod_named(e.c, "app1-0"), false);
    i = get(&e, gip, 80, "/app1", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 503);
    ck_assert_int_eq(istio_gw_flag_count(gw->app, "UH"), 1);
    env_free(&e);
}
END_TEST

/* The pods' network namespaces: every pod starts from the kernel's defaults (6.6 here: the
 * linear SYN timeouts), the gateway pods add their securityContext.sysctls; the nodes'
 * own sysctls (set by the element on the node stacks) do not reach them. 6.6's global
 * ICMP bucket is the host's: each pod draws on its node's. */
static void tune_sysctls(cluster_params_t *p)
{
    ck_assert_int_eq(tcp_params_kernel(&p->pod_tcp, "6.6"), 0);
    ck_assert_int_eq(net_icmp_limits_kernel(&p->pod_icmp, "6.6"), 0);
    p->gateway_pod_tcp = p->pod_tcp;
    p->gateway_pod_tcp.keepalive_time = 120 * SIM_S;
    p->gateway_pod_tcp.keepalive_probes = 3;
}

START_TEST(pods_get_their_own_netns_sysctls)
{
    env_t e;
    env_init(&e, 1);
    e.tune = tune_sysctls;
    add(&e, (char *)GATEWAY_YAML, false);
    add(&e, app_yaml("app1", 1, USER_ONLY, NULL), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    const tcp_params_t *gw = tcp_stack_params(gateway_pod(&e)->node);
    const tcp_params_t *app = tcp_stack_params(pod_named(e.c, "app1-0")->node);
    ck_assert_int_eq(gw->keepalive_time, 120 * SIM_S);
    ck_assert_int_eq(gw->keepalive_probes, 3);
    ck_assert_int_eq(gw->keepalive_intvl, TCP_KEEPALIVE_INTVL_DEFAULT);
    ck_assert_int_eq(app->keepalive_time, TCP_KEEPALIVE_TIME_DEFAULT);
    ck_assert_int_eq(app->syn_linear_timeouts, 4);
    ck_assert_int_eq(gw->syn_linear_timeouts, 4);
    cluster_pod_t *app_pod = pod_named(e.c, "app1-0");
    ck_assert_ptr_eq(app_pod->node->icmp_host, app_pod->host->node);
    ck_assert_ptr_eq(gateway_pod(&e)->node->icmp_host, gateway_pod(&e)->host->node);
    ck_assert_ptr_null(app_pod->host->node->icmp_host);
    ck_assert_int_eq(app_pod->node->icmp.ratelimit, SIM_S);
    env_free(&e);
}
END_TEST

/* Counts app1's pods by phase and readiness. */
static void phases(cluster_t *c, int *running_ready, int *running_unready, int *terminating,
                   int *gone)
{
    *running_ready = *running_unready = *terminating = *gone = 0;
    for (size_t i = 0; i < cluster_pod_count(c); i++) {
        cluster_pod_t *p = cluster_pod_at(c, i);
        if (strncmp(p->name, "app1-", 5)) continue;
        if (p->phase == CLUSTER_POD_GONE) (*gone)++;
        else if (p->phase == CLUSTER_POD_TERMINATING) (*terminating)++;
        else if (p->ready) (*running_ready)++;
        else (*running_unready)++;
    }
}

/* A rolling update with maxSurge 1, maxUnavailable 0 of two nginx pods: one new pod at a
 * time, unready until its container starts and its readiness probe passes; then an old
 * pod terminates and the next new pod is created at once; the endpoints never have fewer
 * than two ready pods; at the end two new Ready pods serve and the old ones are gone. */
START_TEST(rolling_update_surge_one)
{
    env_t e;
    env_init(&e, 1);
    add(&e, app_yaml("app1", 2, USER_ONLY, NULL), true);
    add(&e, svc_yaml("app1", "NodePort", NULL, NULL, "app1"), true);
    ck_assert_ptr_nonnull(build(&e, false, true));
    cluster_rollout_opts_t o = {.max_surge = 1, .max_unavailable = 0, .pod_start = 2 * SIM_S,
                                .del = {0, 0, 0}};
    ck_assert_int_eq(cluster_rollout(e.c, "sample-apps", "nope", &o), LB_ENOENT);
    cluster_rollout_opts_t zero = o;
    zero.max_surge = 0;
    ck_assert_int_eq(cluster_rollout(e.c, "sample-apps", "app1", &zero), LB_EINVAL);
    sim_run(e.sim, 10 * SIM_S);
    ck_assert_int_eq(cluster_rollout(e.c, "sample-apps", "app1", &o), 0);
    ck_assert_int_eq(cluster_rollout(e.c, "sample-apps", "app1", &o), LB_ESTATE);
    int rr, ru, te, go;
    phases(e.c, &rr, &ru, &te, &go);
    ck_assert_int_eq(rr, 2);                    /* the old ones */
    ck_assert_int_eq(ru, 1);                    /* one surge pod, unready */
    ck_assert_int_eq(te + go, 0);
    cluster_pod_t *np = cluster_pod_find(e.c, "app1-2");
    ck_assert_ptr_nonnull(np);
    ck_assert_ptr_null(np->app);                /* containers not started yet */
    /* the Service still selects every pod (the new one inserted in its Deployment's
     * range), the new one not ready */
    cluster_pod_t *sel[8];
    ck_assert_uint_eq(cluster_service_pods(e.c, cluster_service(e.c, "sample-apps", "app1"),
                                           sel, 8), 3);
    sim_run(e.sim, 12 * SIM_S - 1);
    ck_assert(!np->ready);
    sim_run(e.sim, 12 * SIM_S + 10 * SIM_MS);  /* started at 12 s, probed at once: Ready */
    ck_assert(np->ready);
    ck_assert_ptr_nonnull(np->app);
    phases(e.c, &rr, &ru, &te, &go);
    ck_assert_int_eq(rr, 2);                    /* one old, one new */
    ck_assert_int_eq(te + go, 1);               /* an old one scaled down (nginx: gone) */
    ck_assert_int_eq(ru, 1);                    /* and the next new pod created at once */
    sim_run(e.sim, 60 * SIM_S);
    phases(e.c, &rr, &ru, &te, &go);
    ck_assert_int_eq(rr, 2);
    ck_assert_int_eq(ru + te, 0);
    ck_assert_int_eq(go, 2);
    ck_assert(cluster_pod_find(e.c, "app1-3")->ready);
    ck_assert(cluster_pod_find(e.c, "app1-0")->phase == CLUSTER_POD_GONE);
    /* the new pods serve through the Service's NodePort */
    k8s_service_t *svc = cluster_service(e.c, "sample-apps", "app1");
    int i = get(&e, "10.224.0.5", (uint16_t)svc->ports.v[0].node_port, "/app1", 100 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_OK);
    env_free(&e);
}
END_TEST

START_TEST(istio_service_patched_to_etp_local)
{
    env_t e;
    k8s_service_t *s = istio_cluster(&e, true);
    ck_assert_int_eq(s->etp, K8S_ETP_LOCAL);
    ck_assert_int_ge(s->health_check_node_port, CLUSTER_NODEPORT_LO);
    ck_assert_int_le(s->health_check_node_port, CLUSTER_NODEPORT_HI);
    ck_assert_int_ne(s->health_check_node_port, s->ports.v[0].node_port);
    ck_assert_int_ne(s->health_check_node_port, s->ports.v[1].node_port);
    ck_assert_uint_eq(s->ports.n, 2);            /* patched, not duplicated */
    int n = 0;
    for (size_t i = 0; i < cluster_pod_count(e.c); i++)
        n += strcmp(cluster_pod_at(e.c, i)->ns, "istio-ingress") == 0;
    ck_assert_int_eq(n, 1);
    /* kube-proxy's health server: 200 only on the node with the gateway pod */
    cluster_pod_t *gw = gateway_pod(&e);
    for (size_t k = 0; k < cluster_node_count(e.c); k++) {
        cluster_node_t *nd = cluster_node_at(e.c, k);
        int i = get(&e, ip_str(nd->nic->addr), (uint16_t)s->health_check_node_port, "/healthz",
                    50 * SIM_MS);
        ck_assert_int_eq(e.res.r[i].status, nd == gw->host ? 200 : 503);
    }
    env_free(&e);
}
END_TEST

static void count_cb(cluster_t *c, cluster_pod_t *pod, void *data)
{
    (void)c;
    (void)pod;
    (*(int *)data)++;
}

/* Deleting the gateway pod (ETP Local): terminating at once -- the healthCheckNodePort
 * answers 503 while KUBE-SVL still uses the serving, terminating pod; after preStop the
 * drain (readiness 503, Connection: close on responses), then exit: the endpoint goes. */
START_TEST(gateway_pod_deletion_lifecycle)
{
    env_t e;
    k8s_service_t *s = istio_cluster(&e, true);
    cluster_pod_t *gw = gateway_pod(&e);
    kp_t *kp = gw->host->kp;
    const char *node = ip_str(gw->host->nic->addr);
    char nodeip[32];
    snprintf(nodeip, sizeof nodeip, "%s", node);
    uint16_t hc = (uint16_t)s->health_check_node_port, np = (uint16_t)s->ports.v[1].node_port;
    int calls = 0;
    cluster_watch_pods(e.c, count_cb, &calls);
    sim_run(e.sim, SIM_S);
    cluster_delete_opts_t o = {.pre_stop = 2 * SIM_S, .grace = 30 * SIM_S, .drain = 3 * SIM_S};
    sim_time_t t0 = sim_now(e.sim);
    cluster_pod_delete(e.c, gw, &o);
    ck_assert_int_eq(gw->phase, CLUSTER_POD_TERMINATING);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(kp_health_local_endpoints(kp, "istio-ingress", "mtkc-gateway-istio"), 0);
    int i = get(&e, nodeip, hc, "/healthz", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].status, 503);
    char *rules = kp_restore_text(kp);          /* terminating but serving: still used */
    ck_assert_ptr_null(strstr(rules, "has no local endpoints"));
    lb_free(rules);
    i = get(&e, nodeip, np, "/healthz/ready", 50 * SIM_MS);
    ck_assert_int_eq(e.res.r[i].outcome, HTTP_OK);
    cluster_pod_delete(e.c, gw, &o);            /* twice: nothing more */
    ck_assert_int_eq(calls, 1);
    /* SIGTERM after preStop: draining, readiness 503, still answering with close */
    sim_run(e.sim, t0 + 2 * SIM_S + SIM_MS);
    ck_assert(!istio_gw_ready(gw->app));
    /* exit after the drain: the pod leaves the endpoints; it was the only one: REJECT */
    sim_run(e.sim, t0 + 5 * SIM_S + SIM_MS);
    ck_assert_int_eq(gw->phase, CLUSTER_POD_GONE);
    ck_assert_ptr_null(gw->app);
    ck_assert_int_eq(calls, 2);
    rules = kp_restore_text(kp);
    ck_assert_ptr_nonnull(strstr(rules, "has no endpoints"));
    lb_free(rules);
    env_free(&e);
}
END_TEST

Suite *suite_cluster(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("scheduling");
    tcase_add_test(tc, replicas_spread_over_eligible_nodes);
    tcase_add_test(tc, taint_keeps_pods_off_system_pool);
    tcase_add_test(tc, toleration_with_other_value_does_not_fit);
    tcase_add_test(tc, deployment_that_fits_no_node_is_an_error);
    tcase_add_test(tc, max_pods_fills_nodes_then_pending);
    suite_add_tcase(s, tc);
    tc = tcase_create("addressing");
    tcase_add_test(tc, node_and_pod_addresses);
    tcase_add_test(tc, service_addresses_and_ports);
    tcase_add_test(tc, explicit_node_port_not_allocated_to_another_service);
    tcase_add_test(tc, node_port_range_full_is_an_error);
    tcase_add_test(tc, service_selects_pods_by_labels);
    tcase_add_test(tc, scale_generates_services_and_pods);
    tcase_add_test(tc, cluster_ips_and_exhaustion);
    suite_add_tcase(s, tc);
    tc = tcase_create("apps");
    tcase_add_test(tc, nginx_pod_answers_its_locations);
    tcase_add_test(tc, nodeport_on_another_node_dnat_and_masquerade);
    suite_add_tcase(s, tc);
    tc = tcase_create("readiness");
    tcase_add_test(tc, readiness_gates_endpoints);
    tcase_add_test(tc, warm_start_pods_ready_at_zero);
    suite_add_tcase(s, tc);
    tc = tcase_create("istio");
    tcase_add_test(tc, istio_gateway_service_and_pod);
    tcase_add_test(tc, istio_service_overlay_fields_take_effect);
    tcase_add_test(tc, istio_service_patched_to_etp_local);
    tcase_add_test(tc, pods_get_their_own_netns_sysctls);
    tcase_add_test(tc, rolling_update_surge_one);
    tcase_add_test(tc, gateway_pod_deletion_lifecycle);
    suite_add_tcase(s, tc);
    return s;
}

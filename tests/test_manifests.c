/* test_manifests.c -- Kubernetes manifests into k8s objects: the seed deployment's real
 * manifests (skipped when ../shared/seed is absent), the API defaults, a table of bad
 * manifests with their exact "file:line:col: message", warnings once per field, and the
 * scenario's kubernetes section with files, variants and kubernetes-remove/-add/-set. */
#include <check.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "manifests.h"
#include "nginx_conf.h"
#include "scenario.h"
#include "scenario/scenario_int.h"

static char *diag_text(const scn_diag_t *d)
{
    return lb_sprintf("%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
}

/* Long texts: Check cannot carry them in a failure message, so print both. */
#define ck_text_eq(got, want) do { const char *g_ = (got), *w_ = (want); \
        if (strcmp(g_, w_) != 0) fprintf(stderr, "--- got:\n%s--- want:\n%s---\n", g_, w_); \
        ck_assert_msg(strcmp(g_, w_) == 0, "texts differ (printed above)"); } while (0)

#define CK_DIAG(rc, d) ck_assert_msg((rc) == 0, "%s:%d:%d: %s", (d).file, (d).line, (d).col, (d).msg)

/* Everything a set's warnings print, as one string (caller frees). */
static char *warnings_text(const manifests_t *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    manifests_print_warnings(m, f);
    fclose(f);
    return buf;
}

static manifests_t *load_text(const char *yaml)
{
    manifests_t *m = manifests_new();
    scn_diag_t d;
    int rc = manifests_add_string(m, yaml, "m.yaml", &d);
    CK_DIAG(rc, d);
    return m;
}

static const k8s_deployment_t *dep_find(const k8s_objects_t *o, const char *ns, const char *name)
{
    for (size_t i = 0; i < o->deployments.n; i++)
        if (!strcmp(o->deployments.v[i]->meta.ns, ns) && !strcmp(o->deployments.v[i]->meta.name, name))
            return o->deployments.v[i];
    return NULL;
}

static const k8s_httproute_t *route_find(const k8s_objects_t *o, const char *ns, const char *name)
{
    for (size_t i = 0; i < o->routes.n; i++)
        if (!strcmp(o->routes.v[i]->meta.ns, ns) && !strcmp(o->routes.v[i]->meta.name, name))
            return o->routes.v[i];
    return NULL;
}

static const k8s_refgrant_t *grant_find(const k8s_objects_t *o, const char *ns, const char *name)
{
    for (size_t i = 0; i < o->grants.n; i++)
        if (!strcmp(o->grants.v[i]->meta.ns, ns) && !strcmp(o->grants.v[i]->meta.name, name))
            return o->grants.v[i];
    return NULL;
}

/* ---- the seed deployment's manifests -------------------------------------------------------- */

/* The seed folder: /work/shared/seed/eks-k8s, or ../shared/seed/eks-k8s from the repo. */
static const char *seed_dir(void)
{
    static const char *const dirs[] = { "/work/shared/seed/eks-k8s", "../shared/seed/eks-k8s" };
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode)) return dirs[i];
    }
    return NULL;
}

/* health-responder.yaml's args item, as its author wrote it (the block scalar's text). */
static const char health_script[] =
    "cat > /etc/nginx/conf.d/default.conf << 'NGINX_EOF'\n"
    "server {\n"
    "    listen 8080;\n"
    "    server_name _;\n"
    "    access_log off;\n"
    "\n"
    "    location /healthz {\n"
    "        default_type text/plain;\n"
    "        return 200 'healthy\\n';\n"
    "    }\n"
    "\n"
    "    location /healthz/ready {\n"
    "        default_type text/plain;\n"
    "        return 200 'ready\\n';\n"
    "    }\n"
    "\n"
    "    location /healthz/live {\n"
    "        default_type text/plain;\n"
    "        return 200 'live\\n';\n"
    "    }\n"
    "\n"
    "    location / {\n"
    "        default_type text/plain;\n"
    "        return 200 'ok\\n';\n"
    "    }\n"
    "}\n"
    "NGINX_EOF\n"
    "nginx -g 'daemon off;'\n";

START_TEST(seed_manifests)
{
    const char *dir = seed_dir();
    if (!dir) {
        fprintf(stderr, "manifests: seed_manifests skipped: no /work/shared/seed/eks-k8s or "
                "../shared/seed/eks-k8s (a fresh clone has no ../shared)\n");
        return;
    }
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s/*.yaml", dir);
    glob_t g;
    ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
    ck_assert_uint_eq(g.gl_pathc, 9);
    manifests_t *m = manifests_new();
    scn_diag_t d;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        int rc = manifests_add_file(m, g.gl_pathv[i], &d);
        CK_DIAG(rc, d);
    }
    const k8s_objects_t *o = manifests_objects(m);
    ck_assert_uint_eq(o->namespaces.n, 4);
    ck_assert_uint_eq(o->configmaps.n, 1);
    ck_assert_uint_eq(o->deployments.n, 4);
    ck_assert_uint_eq(o->services.n, 4);
    ck_assert_uint_eq(o->gateways.n, 1);
    ck_assert_uint_eq(o->routes.n, 4);
    ck_assert_uint_eq(o->grants.n, 3);

    /* Namespaces: cluster-scoped, with the ambient label */
    ck_assert_str_eq(o->namespaces.v[0]->meta.name, "istio-ingress");
    ck_assert_str_eq(o->namespaces.v[0]->meta.ns, "");
    ck_assert_str_eq(k8s_kv_get(&o->namespaces.v[3]->meta.labels, "istio.io/dataplane-mode"), "ambient");

    /* the Gateway: listeners, allowedRoutes All, infrastructure labels and annotations */
    const k8s_gateway_t *gw = k8s_gateway_find(o, "istio-ingress", "mtkc-gateway");
    ck_assert_ptr_nonnull(gw);
    ck_assert_str_eq(gw->class_name, "istio");
    ck_assert_int_eq(gw->meta.pos.line, 14);
    ck_assert_int_eq(gw->meta.pos.col, 1);
    ck_assert_ptr_nonnull(strstr(gw->meta.pos.file, "gateway.yaml"));
    ck_assert_uint_eq(gw->listeners.n, 2);
    ck_assert_str_eq(gw->listeners.v[0].name, "http");
    ck_assert_int_eq(gw->listeners.v[0].port, 80);
    ck_assert_str_eq(gw->listeners.v[0].protocol, "HTTP");
    ck_assert_ptr_null(gw->listeners.v[0].hostname);
    ck_assert_str_eq(gw->listeners.v[0].routes_from, "All");
    ck_assert_str_eq(gw->listeners.v[1].name, "https");
    ck_assert_int_eq(gw->listeners.v[1].port, 443);
    ck_assert_str_eq(gw->listeners.v[1].protocol, "HTTPS");
    ck_assert_str_eq(gw->listeners.v[1].routes_from, "All");
    ck_assert_uint_eq(gw->infra_labels.n, 1);
    ck_assert_str_eq(k8s_kv_get(&gw->infra_labels, "role"), "system");
    ck_assert_uint_eq(gw->infra_annotations.n, 7);
    ck_assert_str_eq(gw->infra_annotations.v[0].key, "service.beta.kubernetes.io/aws-load-balancer-type");
    ck_assert_str_eq(gw->infra_annotations.v[0].value, "external");
    ck_assert_str_eq(k8s_kv_get(&gw->infra_annotations,
                                "service.beta.kubernetes.io/aws-load-balancer-scheme"), "internal");
    ck_assert_str_eq(k8s_kv_get(&gw->infra_annotations,
                                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval"), "10");

    /* HTTPRoutes */
    const k8s_httproute_t *hr = route_find(o, "gateway-health", "health-route");
    ck_assert_ptr_nonnull(hr);
    ck_assert_uint_eq(hr->parents.n, 1);
    ck_assert_str_eq(hr->parents.v[0].name, "mtkc-gateway");
    ck_assert_str_eq(hr->parents.v[0].ns, "istio-ingress");
    ck_assert_ptr_null(hr->parents.v[0].section);
    ck_assert_int_eq(hr->parents.v[0].port, 0);
    ck_assert_uint_eq(hr->hostnames.n, 0);
    ck_assert_uint_eq(hr->rules.n, 1);
    ck_assert_uint_eq(hr->rules.v[0].matches.n, 1);
    ck_assert_int_eq(hr->rules.v[0].matches.v[0].path_type, GW_PATH_PREFIX);
    ck_assert_str_eq(hr->rules.v[0].matches.v[0].path, "/healthz");
    ck_assert_ptr_null(hr->rules.v[0].matches.v[0].method);
    ck_assert_uint_eq(hr->rules.v[0].backends.n, 1);
    const gw_backend_ref_t *b = &hr->rules.v[0].backends.v[0];
    ck_assert_str_eq(b->group, "");
    ck_assert_str_eq(b->kind, "Service");
    ck_assert_str_eq(b->name, "health-responder");
    ck_assert_ptr_null(b->ns);
    ck_assert_int_eq(b->port, 80);
    ck_assert_int_eq(b->weight, 1);
    static const struct { const char *ns, *name, *path, *backend; int port; } routes[] = {
        { "sample-apps", "app1-route", "/app1", "sample-app-1", 80 },
        { "sample-apps", "app2-route", "/app2", "sample-app-2", 80 },
        { "api-services", "users-api-route", "/api/users", "users-api", 8080 },
    };
    for (size_t i = 0; i < 3; i++) {
        const k8s_httproute_t *r = route_find(o, routes[i].ns, routes[i].name);
        ck_assert_msg(r != NULL, "%s", routes[i].name);
        ck_assert_str_eq(r->parents.v[0].name, "mtkc-gateway");
        ck_assert_str_eq(r->rules.v[0].matches.v[0].path, routes[i].path);
        ck_assert_int_eq(r->rules.v[0].matches.v[0].path_type, GW_PATH_PREFIX);
        ck_assert_str_eq(r->rules.v[0].backends.v[0].name, routes[i].backend);
        ck_assert_int_eq(r->rules.v[0].backends.v[0].port, routes[i].port);
    }
    /* load order stands in for creationTimestamp: within httproutes.yaml, top to bottom */
    ck_assert_int_lt(hr->meta.order, route_find(o, "sample-apps", "app1-route")->meta.order);
    ck_assert_int_lt(route_find(o, "sample-apps", "app1-route")->meta.order,
                     route_find(o, "sample-apps", "app2-route")->meta.order);

    /* ReferenceGrants */
    const k8s_refgrant_t *rg = grant_find(o, "gateway-health", "allow-gateway-health");
    ck_assert_ptr_nonnull(rg);
    ck_assert_uint_eq(rg->from.n, 1);
    ck_assert_str_eq(rg->from.v[0].group, "gateway.networking.k8s.io");
    ck_assert_str_eq(rg->from.v[0].kind, "HTTPRoute");
    ck_assert_str_eq(rg->from.v[0].ns, "gateway-health");
    ck_assert_uint_eq(rg->to.n, 1);
    ck_assert_str_eq(rg->to.v[0].group, "");
    ck_assert_str_eq(rg->to.v[0].kind, "Service");
    ck_assert_ptr_null(rg->to.v[0].name);
    ck_assert_ptr_nonnull(grant_find(o, "sample-apps", "allow-sample-apps"));
    ck_assert_ptr_nonnull(grant_find(o, "api-services", "allow-api-services"));

    /* Deployments: replicas, labels, probes, ports, the nginx heredoc verbatim */
    const k8s_deployment_t *hd = dep_find(o, "gateway-health", "health-responder");
    ck_assert_ptr_nonnull(hd);
    ck_assert_int_eq(hd->replicas, 2);
    ck_assert_str_eq(k8s_kv_get(&hd->selector, "app"), "health-responder");
    ck_assert_str_eq(k8s_kv_get(&hd->pod_labels, "app"), "health-responder");
    ck_assert_uint_eq(hd->containers.n, 1);
    const k8s_container_t *c = &hd->containers.v[0];
    ck_assert_str_eq(c->name, "nginx");
    ck_assert_str_eq(c->image, "nginx:1.27-alpine");
    ck_assert_uint_eq(c->ports.n, 1);
    ck_assert_int_eq(c->ports.v[0].port, 8080);
    ck_assert_str_eq(c->ports.v[0].name, "http");
    ck_assert_str_eq(c->ports.v[0].protocol, "TCP");
    ck_assert_int_eq(c->readiness.kind, K8S_PROBE_HTTP);
    ck_assert_str_eq(c->readiness.path, "/healthz/ready");
    ck_assert_int_eq(c->readiness.port.number, 8080);
    ck_assert_int_eq(c->readiness.initial_delay_s, 5);
    ck_assert_int_eq(c->readiness.period_s, 5);
    ck_assert_int_eq(c->readiness.timeout_s, 1);
    ck_assert_int_eq(c->readiness.success_threshold, 1);
    ck_assert_int_eq(c->readiness.failure_threshold, 3);
    ck_assert_int_eq(c->liveness.kind, K8S_PROBE_HTTP);
    ck_assert_str_eq(c->liveness.path, "/healthz/live");
    ck_assert_int_eq(c->liveness.period_s, 10);
    ck_assert_str_eq(c->nginx_conf, health_script);
    ck_assert_uint_eq(c->config_maps.n, 0);

    const k8s_deployment_t *a1 = dep_find(o, "sample-apps", "sample-app-1");
    ck_assert_int_eq(a1->replicas, 2);
    ck_assert_str_eq(k8s_kv_get(&a1->pod_labels, "version"), "v1");
    ck_assert_str_eq(a1->containers.v[0].readiness.path, "/app1/health");
    ck_assert_ptr_nonnull(strstr(a1->containers.v[0].nginx_conf,
        "    location /app1/info {\n        default_type application/json;\n        return 200 "
        "'{\"app\":\"sample-app-1\",\"version\":\"1.0\",\"namespace\":\"sample-apps\"}\\n';\n    }\n"));

    /* users-api takes its config from the ConfigMap it mounts (twice: listed once) */
    const k8s_deployment_t *ua = dep_find(o, "api-services", "users-api");
    ck_assert_ptr_null(ua->containers.v[0].nginx_conf);
    ck_assert_uint_eq(ua->containers.v[0].config_maps.n, 1);
    ck_assert_str_eq(ua->containers.v[0].config_maps.v[0], "users-api-config");
    ck_assert_int_eq(ua->containers.v[0].readiness.period_s, 10);
    ck_assert_int_eq(ua->containers.v[0].liveness.initial_delay_s, 10);
    ck_assert_int_eq(ua->containers.v[0].liveness.period_s, 15);
    const k8s_configmap_t *cm = k8s_configmap_find(o, "api-services", "users-api-config");
    ck_assert_ptr_nonnull(cm);
    ck_assert_uint_eq(cm->data.n, 2);
    ck_assert_str_eq(cm->data.v[0].key, "nginx.conf");
    ck_assert_ptr_eq(strstr(cm->data.v[0].value, "server {\n    listen 8080;\n"), cm->data.v[0].value);
    ck_assert_ptr_nonnull(strstr(k8s_kv_get(&cm->data, "users.json"), "\"name\": \"Alice Smith\""));

    /* what the nginx model makes of them (nginx_conf.h reads both forms) */
    nginx_server_t srv;
    nginx_warnings_t w = { 0 };
    ck_assert_int_eq(nginx_conf_from_container(o, hd->meta.ns, c, &srv, &w), 0);
    ck_assert_int_eq(srv.listen_port, 8080);
    ck_assert_uint_eq(srv.n_locs, 4);
    nginx_server_free(&srv);
    nginx_warnings_free(&w);
    ck_assert_int_eq(nginx_conf_from_container(o, ua->meta.ns, &ua->containers.v[0], &srv, &w), 0);
    ck_assert_int_eq(srv.listen_port, 8080);
    nginx_server_free(&srv);
    nginx_warnings_free(&w);

    /* Services: ClusterIP, targetPort, protocol default */
    const k8s_service_t *s1 = k8s_service_find(o, "sample-apps", "sample-app-1");
    ck_assert_int_eq(s1->type, K8S_SVC_CLUSTER_IP);
    ck_assert_int_eq(s1->etp, K8S_ETP_CLUSTER);
    ck_assert_uint_eq(s1->ports.n, 1);
    ck_assert_str_eq(s1->ports.v[0].name, "http");
    ck_assert_int_eq(s1->ports.v[0].port, 80);
    ck_assert_int_eq(s1->ports.v[0].target_port.number, 8080);
    ck_assert_str_eq(s1->ports.v[0].protocol, "TCP");
    ck_assert_ptr_null(s1->ports.v[0].app_protocol);
    ck_assert_str_eq(k8s_kv_get(&s1->selector, "app"), "sample-app-1");
    ck_assert_int_eq(k8s_service_find(o, "api-services", "users-api")->ports.v[0].port, 8080);

    /* the HTTPS listener's certificate reference (tls.certificateRefs[0].name) */
    const k8s_gateway_t *sg = o->gateways.v[0];
    ck_assert_str_eq(sg->listeners.v[1].protocol, "HTTPS");
    ck_assert_str_eq(sg->listeners.v[1].cert_ref, "istio-gateway-tls");
    /* warnings: resources in all four Deployments once, and the comment-only document
     * after gateway.yaml's last "---" in the summary */
    ck_assert_uint_eq(manifests_warning_count(m), 2);
    const manifests_warning_t *w0 = manifests_warning_at(m, 0);
    ck_assert_str_eq(w0->kind, "Deployment");
    ck_assert_str_eq(w0->field, "spec.template.spec.containers[].resources");
    ck_assert_int_eq(w0->count, 4);
    ck_assert_int_eq(w0->pos.line, 60);
    ck_assert_int_eq(w0->pos.col, 11);
    ck_assert(!w0->harmless);
    char *text = warnings_text(m);
    char *want = lb_sprintf(
        "%s/app1-deployment.yaml:60:11: warning: Deployment field spec.template.spec.containers[].resources is not modelled (ignored)\n"
        "%s/gateway.yaml:123:1: note: ignored 1 item that does not affect the model: document with only comments (1)\n",
        dir, dir);
    ck_text_eq(text, want);
    free(text);
    lb_free(want);
    manifests_free(m);
    globfree(&g);
}
END_TEST

/* ---- API defaults ------------------------------------------------------------------------------ */

static const char defaults_yaml[] =
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata: { name: web }\n"
    "spec:\n"
    "  selector: { app: web }\n"
    "  ports: [ { port: 80 } ]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata: { name: gw, namespace: edge }\n"
    "spec:\n"
    "  type: LoadBalancer\n"
    "  externalTrafficPolicy: Local\n"
    "  healthCheckNodePort: 32000\n"
    "  loadBalancerIP: 10.224.0.100\n"
    "  ports:\n"
    "    - { name: http, port: 80, targetPort: http, appProtocol: http, nodePort: 30080 }\n"
    "    - { name: status-port, port: 15021, protocol: TCP }\n"
    "---\n"
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata: { name: web }\n"
    "spec:\n"
    "  selector: { matchLabels: { app: web } }\n"
    "  template:\n"
    "    metadata: { labels: { app: web, tier: fe } }\n"
    "    spec:\n"
    "      nodeSelector: { agentpool: user }\n"
    "      tolerations: [ { key: CriticalAddonsOnly, operator: Exists }, { key: k, value: v, effect: NoSchedule } ]\n"
    "      containers:\n"
    "        - name: web\n"
    "          image: nginx\n"
    "          ports: [ { containerPort: 80 } ]\n"
    "          readinessProbe: { httpGet: { port: 80 } }\n"
    "          livenessProbe: { tcpSocket: { port: http }, failureThreshold: 5 }\n"
    "        - name: sidecar\n"
    "          image: busybox\n"
    "          command: [/bin/sh]\n"
    "          args: [-c, echo hi]\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1beta1\n"
    "kind: Gateway\n"
    "metadata: { name: g, namespace: edge }\n"
    "spec:\n"
    "  gatewayClassName: istio\n"
    "  listeners: [ { name: http, port: 80, protocol: HTTP, hostname: \"*.example.com\" } ]\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: HTTPRoute\n"
    "metadata: { name: empty, namespace: edge }\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: HTTPRoute\n"
    "metadata: { name: r, namespace: edge }\n"
    "spec:\n"
    "  parentRefs: [ { name: g, sectionName: http, port: 80 } ]\n"
    "  hostnames: [ a.example.com ]\n"
    "  rules:\n"
    "    - backendRefs: [ { name: web, namespace: default, port: 80, weight: 3 } ]\n"
    "    - matches:\n"
    "        - headers: [ { name: x-env, value: canary } ]\n"
    "          queryParams: [ { type: RegularExpression, name: v, value: \"^2\" } ]\n"
    "          method: POST\n"
    "        - path: { type: Exact, value: /x }\n"
    "      backendRefs: [ { name: web, port: 80, weight: 0 }, { group: example.com, kind: Bucket, name: b } ]\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1alpha2\n"
    "kind: ReferenceGrant\n"
    "metadata: { name: rg }\n"
    "spec:\n"
    "  from: [ { group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: edge } ]\n"
    "  to: [ { group: \"\", kind: Service, name: web } ]\n";

START_TEST(api_defaults)
{
    manifests_t *m = load_text(defaults_yaml);
    const k8s_objects_t *o = manifests_objects(m);
    /* Service defaults: namespace default, ClusterIP, TCP, targetPort = port, ETP Cluster */
    const k8s_service_t *s = k8s_service_find(o, "default", "web");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->meta.ns, "default");
    ck_assert_str_eq(s->meta.pos.file, "m.yaml");
    ck_assert_int_eq(s->meta.pos.line, 1);
    ck_assert_int_eq(s->meta.order, 0);
    ck_assert_int_eq(s->type, K8S_SVC_CLUSTER_IP);
    ck_assert_int_eq(s->etp, K8S_ETP_CLUSTER);
    ck_assert_ptr_null(s->ports.v[0].name);
    ck_assert_int_eq(s->ports.v[0].target_port.number, 80);
    ck_assert_ptr_null(s->ports.v[0].target_port.name);
    ck_assert_str_eq(s->ports.v[0].protocol, "TCP");
    ck_assert_int_eq(s->ports.v[0].node_port, 0);
    ck_assert_uint_eq(s->cluster_ip, 0);
    /* a LoadBalancer with ETP Local, a named targetPort and given ports */
    const k8s_service_t *lb = k8s_service_find(o, "edge", "gw");
    ck_assert_int_eq(lb->meta.order, 1);
    ck_assert_int_eq(lb->meta.pos.line, 8);
    ck_assert_int_eq(lb->type, K8S_SVC_LOAD_BALANCER);
    ck_assert_int_eq(lb->etp, K8S_ETP_LOCAL);
    ck_assert_int_eq(lb->health_check_node_port, 32000);
    char ip[16];
    ck_assert_str_eq(lb_ip_str(lb->lb_ip, ip), "10.224.0.100");
    ck_assert_str_eq(lb->ports.v[0].target_port.name, "http");
    ck_assert_int_eq(lb->ports.v[0].target_port.number, 0);
    ck_assert_int_eq(lb->ports.v[0].node_port, 30080);
    ck_assert_str_eq(lb->ports.v[0].app_protocol, "http");
    ck_assert_int_eq(lb->ports.v[1].target_port.number, 15021);

    /* Deployment: replicas 1, probe defaults, tolerations, the shell script */
    const k8s_deployment_t *d = o->deployments.v[0];
    ck_assert_int_eq(d->replicas, 1);
    ck_assert_str_eq(k8s_kv_get(&d->node_selector, "agentpool"), "user");
    ck_assert_uint_eq(d->tolerations.n, 2);
    ck_assert_str_eq(d->tolerations.v[0].op, "Exists");
    ck_assert_ptr_null(d->tolerations.v[0].effect);
    ck_assert_str_eq(d->tolerations.v[1].op, "Equal");
    ck_assert_str_eq(d->tolerations.v[1].value, "v");
    ck_assert_str_eq(d->tolerations.v[1].effect, "NoSchedule");
    const k8s_container_t *c = &d->containers.v[0];
    ck_assert_str_eq(c->ports.v[0].protocol, "TCP");
    ck_assert_ptr_null(c->ports.v[0].name);
    ck_assert_int_eq(c->readiness.kind, K8S_PROBE_HTTP);
    ck_assert_str_eq(c->readiness.path, "/");
    ck_assert_int_eq(c->readiness.port.number, 80);
    ck_assert_int_eq(c->readiness.initial_delay_s, 0);
    ck_assert_int_eq(c->readiness.period_s, 10);
    ck_assert_int_eq(c->readiness.timeout_s, 1);
    ck_assert_int_eq(c->readiness.success_threshold, 1);
    ck_assert_int_eq(c->readiness.failure_threshold, 3);
    ck_assert_int_eq(c->liveness.kind, K8S_PROBE_TCP);
    ck_assert_str_eq(c->liveness.port.name, "http");
    ck_assert_int_eq(c->liveness.failure_threshold, 5);
    ck_assert_ptr_null(c->nginx_conf);
    ck_assert_int_eq(d->containers.v[1].readiness.kind, K8S_PROBE_NONE);
    ck_assert_str_eq(d->containers.v[1].nginx_conf, "echo hi");

    /* Gateway v1beta1: allowedRoutes from Same by default */
    const k8s_gateway_t *g = k8s_gateway_find(o, "edge", "g");
    ck_assert_str_eq(g->listeners.v[0].routes_from, "Same");
    ck_assert_str_eq(g->listeners.v[0].hostname, "*.example.com");
    ck_assert_uint_eq(g->infra_annotations.n, 0);

    /* HTTPRoute without spec: one rule matching PathPrefix "/", no backends */
    const k8s_httproute_t *e = route_find(o, "edge", "empty");
    ck_assert_uint_eq(e->parents.n, 0);
    ck_assert_uint_eq(e->rules.n, 1);
    ck_assert_uint_eq(e->rules.v[0].matches.n, 1);
    ck_assert_int_eq(e->rules.v[0].matches.v[0].path_type, GW_PATH_PREFIX);
    ck_assert_str_eq(e->rules.v[0].matches.v[0].path, "/");
    ck_assert_uint_eq(e->rules.v[0].backends.n, 0);
    const k8s_httproute_t *r = route_find(o, "edge", "r");
    ck_assert_ptr_null(r->parents.v[0].ns);
    ck_assert_str_eq(r->parents.v[0].section, "http");
    ck_assert_int_eq(r->parents.v[0].port, 80);
    ck_assert_str_eq(r->hostnames.v[0], "a.example.com");
    /* a rule without matches matches PathPrefix "/" */
    ck_assert_uint_eq(r->rules.v[0].matches.n, 1);
    ck_assert_str_eq(r->rules.v[0].matches.v[0].path, "/");
    ck_assert_str_eq(r->rules.v[0].backends.v[0].ns, "default");
    ck_assert_int_eq(r->rules.v[0].backends.v[0].weight, 3);
    /* a match without a path is PathPrefix "/" too; headers Exact by default */
    const gw_route_match_t *m0 = &r->rules.v[1].matches.v[0];
    ck_assert_int_eq(m0->path_type, GW_PATH_PREFIX);
    ck_assert_str_eq(m0->path, "/");
    ck_assert_int_eq(m0->headers.v[0].type, GW_MATCH_EXACT);
    ck_assert_str_eq(m0->headers.v[0].name, "x-env");
    ck_assert_int_eq(m0->query.v[0].type, GW_MATCH_REGEX);
    ck_assert_str_eq(m0->query.v[0].value, "^2");
    ck_assert_str_eq(m0->method, "POST");
    ck_assert_int_eq(r->rules.v[1].matches.v[1].path_type, GW_PATH_EXACT);
    ck_assert_int_eq(r->rules.v[1].backends.v[0].weight, 0);
    ck_assert_str_eq(r->rules.v[1].backends.v[1].kind, "Bucket");
    ck_assert_int_eq(r->rules.v[1].backends.v[1].port, 0);    /* only Services need a port */

    /* ReferenceGrant v1alpha2 */
    ck_assert_str_eq(o->grants.v[0]->to.v[0].name, "web");
    ck_assert_str_eq(o->grants.v[0]->meta.ns, "default");
    ck_assert_uint_eq(manifests_warning_count(m), 0);
    manifests_free(m);
}
END_TEST

/* ---- bad manifests ------------------------------------------------------------------------------- */

#define SVC "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: shop }\n"
#define DEP "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n"
#define POD "spec:\n  selector: { matchLabels: { app: web } }\n  template:\n" \
            "    metadata: { labels: { app: web } }\n    spec:\n"
#define RT "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r }\n"

static const struct bad { const char *yaml, *want; } bad_cases[] = {
    { "kind: Service\nmetadata: { name: web }\n",
      "m.yaml:1:1: Service has no apiVersion; expected apiVersion: v1" },
    { "apiVersion: v1\nmetadata: { name: web }\n",
      "m.yaml:1:1: manifest has no kind; expected one of: Namespace, ConfigMap, Deployment, Service, Gateway, HTTPRoute, ReferenceGrant" },
    { "apiVersion: v1\nkind: Service\nmetadata: { namespace: shop }\n",
      "m.yaml:3:11: Service: metadata: missing required field 'name'" },
    { "apiVersion: v1\nkind: Service\n",
      "m.yaml:1:1: Service: missing required field 'metadata'" },
    { SVC "spec:\n  ports: [ { port: http } ]\n",
      "m.yaml:5:20: Service shop/web: spec.ports[0].port: expected an integer; got 'http'" },
    { SVC "spec:\n  ports: [ { port: \"80\" } ]\n",
      "m.yaml:5:20: Service shop/web: spec.ports[0].port: expected an integer; got the string \"80\" (write it without quotes)" },
    { SVC "spec:\n  ports: [ { port: 80, targetPort: \"8080\" } ]\n",
      "m.yaml:5:36: Service shop/web: spec.ports[0].targetPort: '8080' is neither a port number (1-65535) nor a port name (up to 15 lowercase letters, digits and '-', with a letter); write the number without quotes" },
    { SVC "spec:\n  ports: [ { port: 70000 } ]\n",
      "m.yaml:5:20: Service shop/web: spec.ports[0].port: expected an integer from 1 to 65535; got 70000" },
    { "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: web }\n",
      "m.yaml:2:7: kind 'Ingress' is not modelled; supported kinds: Namespace, ConfigMap, Deployment, Service, Gateway, HTTPRoute, ReferenceGrant" },
    { "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: { name: web }\n",
      "m.yaml:2:7: kind 'Deploymnet' is not modelled; did you mean 'Deployment'? supported kinds: Namespace, ConfigMap, Deployment, Service, Gateway, HTTPRoute, ReferenceGrant" },
    { "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: { name: web }\n",
      "m.yaml:1:13: apiVersion 'extensions/v1beta1' is not supported for Deployment; expected apps/v1" },
    { "apiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\nmetadata: { name: g }\n",
      "m.yaml:1:13: apiVersion 'gateway.networking.k8s.io/v1' is not supported for ReferenceGrant; expected gateway.networking.k8s.io/v1beta1 or gateway.networking.k8s.io/v1alpha2" },
    { RT "spec:\n  rules:\n    - matches: [ { path: { type: Prefix, value: /app1 } } ]\n",
      "m.yaml:6:34: HTTPRoute default/r: spec.rules[0].matches[0].path.type: 'Prefix' is not valid; did you mean 'PathPrefix'? (one of: Exact, PathPrefix, RegularExpression)" },
    { RT "spec:\n  rules:\n    - matches: [ { path: { value: app1 } } ]\n",
      "m.yaml:6:35: HTTPRoute default/r: spec.rules[0].matches[0].path.value: 'app1' must be an absolute path and start with '/' when type is PathPrefix" },
    { RT "spec:\n  rules:\n    - backendRefs: [ { name: web } ]\n",
      "m.yaml:6:22: HTTPRoute default/r: spec.rules[0].backendRefs[0]: must have port for Service reference" },
    { RT "spec:\n  parentRefs: [ { kind: Service, name: web } ]\n",
      "m.yaml:5:17: HTTPRoute default/r: spec.parentRefs[0]: a parent of kind 'Service' (group 'gateway.networking.k8s.io') is not modelled; expected a Gateway (group gateway.networking.k8s.io)" },
    { SVC "spec:\n  type: LoadBalancer\n  externalTrafficPolicy: local\n  ports: [ { port: 80 } ]\n",
      "m.yaml:6:26: Service shop/web: spec.externalTrafficPolicy: 'local' is not valid; did you mean 'Local'? (one of: Cluster, Local)" },
    { SVC "spec:\n  externalTrafficPolicy: Local\n  ports: [ { port: 80 } ]\n",
      "m.yaml:5:26: Service shop/web: spec.externalTrafficPolicy: may only be set for externally-accessible services (type NodePort or LoadBalancer); this Service is ClusterIP" },
    { SVC "spec:\n  type: ExternalName\n",
      "m.yaml:5:9: Service shop/web: spec.type: 'ExternalName' is not modelled; expected ClusterIP, NodePort or LoadBalancer" },
    { SVC "spec:\n  ports: [ { port: 80 }, { port: 81 } ]\n",
      "m.yaml:5:12: Service shop/web: spec.ports[0]: missing required field 'name'" },
    { SVC "spec: { ports: [ { port: 80 } ] }\n---\n" SVC "spec: { ports: [ { port: 81 } ] }\n",
      "m.yaml:6:1: Service shop/web is defined twice; the first is at m.yaml:1:1" },
    /* NodePorts: the API server's range and allocator */
    { SVC "spec: { loadBalancerSourceRanges: [10.0.0.0/8], ports: [ { port: 80 } ] }\n",
      "m.yaml:4:35: Service shop/web: spec.loadBalancerSourceRanges: may only be used when type is 'LoadBalancer'" },
    { SVC "spec: { type: LoadBalancer, loadBalancerSourceRanges: [10.0.0.0/33], ports: [ { port: 80 } ] }\n",
      "m.yaml:4:56: Service shop/web: spec.loadBalancerSourceRanges[0]: expected a CIDR like 10.0.0.0/8" },
    { SVC "spec: { type: NodePort, ports: [ { port: 80, nodePort: 80 } ] }\n",
      "m.yaml:4:56: Service shop/web: spec.ports[0].nodePort: provided port 80 is not in the valid range; expected 30000-32767 (the API server's --service-node-port-range)" },
    { SVC "spec: { type: NodePort, ports: [ { name: a, port: 80, nodePort: 30080 },\n"
          "                          { name: b, port: 81, nodePort: 30080 } ] }\n",
      "m.yaml:5:58: Service shop/web: spec.ports[1].nodePort: provided port 30080 is already allocated to another port of this Service" },
    { "apiVersion: v1\nkind: Service\nmetadata: { name: a, namespace: shop }\n"
      "spec: { type: NodePort, ports: [ { port: 80, nodePort: 30080 } ] }\n---\n"
      SVC "spec: { type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 30080,\n"
          "        ports: [ { port: 80 } ] }\n",
      "m.yaml:9:80: Service shop/web: spec.healthCheckNodePort: provided port 30080 is already allocated to Service shop/a (m.yaml:1:1)" },
    { "apiVersion: v1\nkind: Service\nmetadata: { name: Web }\n",
      "m.yaml:3:19: Service: metadata.name: 'Web' is not a valid name; expected up to 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit" },
    { "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web_1, namespace: shop }\n",
      "m.yaml:3:19: Deployment: metadata.name: 'web_1' is not a valid name; expected up to 253 lowercase letters, digits, '.' and '-', starting with a letter or digit and ending with a letter or digit" },
    { "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, labels: { version: 1 } }\n",
      "m.yaml:3:41: ConfigMap: metadata.labels.version: expected a string; got the number 1 (quote it: \"1\")" },
    { "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\ndata: { enabled: yes }\n",
      "m.yaml:4:18: ConfigMap default/c: data.enabled: expected a string; got the boolean yes (quote it: \"yes\")" },
    { DEP "spec:\n  selector: { matchLabels: { app: api } }\n  template:\n    metadata: { labels: { app: web } }\n"
          "    spec: { containers: [ { name: c, image: nginx } ] }\n",
      "m.yaml:5:13: Deployment default/web: spec.selector: selector does not match template labels; expected every matchLabels pair in spec.template.metadata.labels" },
    { DEP "spec:\n  template: {}\n",
      "m.yaml:5:3: Deployment default/web: spec: missing required field 'selector'" },
    { DEP POD "      containers: []\n",
      "m.yaml:9:7: Deployment default/web: spec.template.spec: missing required field 'containers'" },
    { DEP POD "      containers:\n        - { name: c, image: nginx, readinessProbe: { httpGet: { port: 80 }, tcpSocket: { port: 80 } } }\n",
      "m.yaml:10:52: Deployment default/web: spec.template.spec.containers[0].readinessProbe: may not specify more than 1 handler type (httpGet and tcpSocket)" },
    { DEP POD "      containers:\n        - { name: c, image: nginx, livenessProbe: { exec: {}, successThreshold: 2 } }\n",
      "m.yaml:10:81: Deployment default/web: spec.template.spec.containers[0].livenessProbe.successThreshold: must be 1 for a liveness probe; got 2" },
    { DEP POD "      containers:\n        - { name: c, image: nginx, volumeMounts: [ { name: conf, mountPath: /etc/nginx } ] }\n",
      "m.yaml:10:60: Deployment default/web: spec.template.spec.containers[0].volumeMounts[0].name: no volume 'conf' in spec.template.spec.volumes" },
    { DEP POD "      containers:\n        - { name: c }\n",
      "m.yaml:10:11: Deployment default/web: spec.template.spec.containers[0]: missing required field 'image'" },
    { "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g }\n"
      "spec:\n  gatewayClassName: istio\n  listeners: [ { name: web, port: 80, protocol: http } ]\n",
      "m.yaml:6:49: Gateway default/g: spec.listeners[0].protocol: 'http' is not valid; did you mean 'HTTP'? (one of: HTTP, HTTPS, TLS, TCP, UDP)" },
    { "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g }\n"
      "spec:\n  gatewayClassName: istio\n  listeners:\n    - { name: a, port: 80, protocol: HTTP }\n"
      "    - { name: a, port: 81, protocol: HTTP }\n",
      "m.yaml:8:15: Gateway default/g: spec.listeners[1].name: duplicate listener name 'a' (also spec.listeners[0]); expected unique names" },
    { "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: { name: g }\n"
      "spec:\n  from: [ { kind: HTTPRoute, namespace: a } ]\n  to: [ { group: \"\", kind: Service } ]\n",
      "m.yaml:5:11: ReferenceGrant default/g: spec.from[0]: missing required field 'group'" },
    { "- apiVersion: v1\n",
      "m.yaml:1:1: a manifest must be a mapping with apiVersion, kind and metadata; got a list" },
};

START_TEST(bad_manifests)
{
    const struct bad *b = &bad_cases[_i];
    manifests_t *m = manifests_new();
    scn_diag_t d;
    int rc = manifests_add_string(m, b->yaml, "m.yaml", &d);
    ck_assert_msg(rc == LB_EINVAL, "case %d: rc %d (%s)", _i, rc, lb_strerror(rc));
    char *got = diag_text(&d);
    ck_assert_msg(strcmp(got, b->want) == 0, "case %d\n got: %s\nwant: %s", _i, got, b->want);
    lb_free(got);
    /* a rejected manifest leaves nothing behind, not even its warnings */
    const k8s_objects_t *o = manifests_objects(m);
    size_t n = o->namespaces.n + o->configmaps.n + o->deployments.n + o->services.n +
               o->gateways.n + o->routes.n + o->grants.n;
    ck_assert_uint_le(n, 1);    /* the duplicate case keeps its first Service */
    ck_assert_uint_eq(manifests_warning_count(m), 0);
    manifests_free(m);
}
END_TEST

/* ---- warnings ------------------------------------------------------------------------------------- */

START_TEST(warnings_once)
{
    static const char yaml[] =
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: web\n"
        "  creationTimestamp: null\n"
        POD
        "      serviceAccountName: web\n"
        "      containers:\n"
        "        - name: a\n"
        "          image: nginx\n"
        "          imagePullPolicy: IfNotPresent\n"
        "          resources: { limits: { cpu: 100m } }\n"
        "          env: [ { name: A, value: b } ]\n"
        "        - name: b\n"
        "          image: nginx\n"
        "          resources: { limits: { cpu: 100m } }\n"
        "          startupProbe: { httpGet: { port: 80 } }\n"
        "          readinessProbe: { httpGet: { port: 80, scheme: HTTPS, httpHeaders: [] } }\n"
        "status: { replicas: 1 }\n"
        "---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: api }\n" POD
        "      containers: [ { name: a, image: nginx, resources: {} } ]\n"
        "status: {}\n"
        "---\n"
        "# nothing but a comment\n"
        "---\n"
        SVC "spec:\n  sessionAffinity: None\n  externalIPs: [1.2.3.4]\n  ports: [ { port: 80 } ]\n";
    manifests_t *m = load_text(yaml);
    char *text = warnings_text(m);
    ck_text_eq(text,
        "m.yaml:11:7: warning: Deployment field spec.template.spec.serviceAccountName is not modelled (ignored)\n"
        "m.yaml:16:11: warning: Deployment field spec.template.spec.containers[].resources is not modelled (ignored)\n"
        "m.yaml:17:11: warning: Deployment field spec.template.spec.containers[].env is not modelled (ignored)\n"
        "m.yaml:21:11: warning: Deployment field spec.template.spec.containers[].startupProbe is not modelled (ignored)\n"
        "m.yaml:22:50: warning: Deployment field spec.template.spec.containers[].readinessProbe.httpGet.scheme is not modelled (ignored)\n"
        "m.yaml:22:65: warning: Deployment field spec.template.spec.containers[].readinessProbe.httpGet.httpHeaders is not modelled (ignored)\n"
        "m.yaml:43:3: warning: Service field spec.externalIPs is not modelled (ignored)\n"
        "m.yaml:5:3: note: ignored 6 items that do not affect the model: Deployment metadata.creationTimestamp (1), "
        "Deployment spec.template.spec.containers[].imagePullPolicy (1), Deployment status (2), "
        "document with only comments (1), Service spec.sessionAffinity (1)\n");
    free(text);
    /* counts: resources in three containers of two Deployments */
    const manifests_warning_t *w = NULL;
    for (size_t i = 0; i < manifests_warning_count(m); i++)
        if (!strcmp(manifests_warning_at(m, i)->field, "spec.template.spec.containers[].resources"))
            w = manifests_warning_at(m, i);
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(w->kind, "Deployment");
    ck_assert_int_eq(w->count, 3);
    ck_assert_int_eq(w->pos.line, 16);
    ck_assert(!w->harmless);
    ck_assert_uint_eq(manifests_warning_count(m), 12);
    manifests_free(m);

    /* sessionAffinity other than the default is not harmless; neither is an HTTPS probe */
    m = load_text(SVC "spec:\n  sessionAffinity: ClientIP\n  ports: [ { port: 80 } ]\n");
    text = warnings_text(m);
    ck_assert_str_eq(text, "m.yaml:5:3: warning: Service field spec.sessionAffinity is not modelled (ignored)\n");
    free(text);
    manifests_free(m);
}
END_TEST

/* ---- the scenario's kubernetes section ------------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *rel, const char *text)
{
    char *path = lb_sprintf("%s/%s", tmpdir, rel);
    for (char *slash = strchr(path + strlen(tmpdir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        mkdir(path, 0700);      /* EEXIST is fine */
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    lb_free(path);
}

static void tmp_setup(void)
{
    elem_register_builtin();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lbchain-manifests-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
    char *cmd = lb_sprintf("rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    lb_free(cmd);
}

static const char gw_file[] =
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: Gateway\n"
    "metadata: { name: mtkc-gateway, namespace: istio-ingress }\n"
    "spec:\n"
    "  gatewayClassName: istio\n"
    "  listeners: [ { name: http, port: 80, protocol: HTTP, allowedRoutes: { namespaces: { from: All } } } ]\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: HTTPRoute\n"
    "metadata: { name: health-route, namespace: gateway-health }\n"
    "spec:\n"
    "  parentRefs: [ { name: mtkc-gateway, namespace: istio-ingress } ]\n"
    "  rules: [ { matches: [ { path: { value: /healthz } } ], backendRefs: [ { name: health-responder, port: 80 } ] } ]\n"
    "---\n"
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata: { name: sample-app-1, namespace: sample-apps }\n"
    "spec:\n"
    "  replicas: 2\n"
    "  selector: { matchLabels: { app: a1 } }\n"
    "  template:\n"
    "    metadata: { labels: { app: a1 } }\n"
    "    spec: { containers: [ { name: nginx, image: nginx, resources: {} } ] }\n";

static const char scn_yaml[] =
    "name: aks\n"
    "duration: 10s\n"
    "kubernetes:\n"
    "  - file: k8s/gateway.yaml\n"
    "  - apiVersion: v1\n"
    "    kind: Service\n"
    "    metadata: { name: mtkc-gateway-istio, namespace: istio-ingress }\n"
    "    spec:\n"
    "      type: LoadBalancer\n"
    "      ports: [ { name: http, port: 80, appProtocol: http } ]\n"
    "variants:\n"
    "  as-deployed: {}\n"
    "  etp-local:\n"
    "    set:\n"
    "      kubernetes-set:\n"
    "        Service/istio-ingress/mtkc-gateway-istio.spec.externalTrafficPolicy: Local\n"
    "        Deployment/sample-apps/sample-app-1.spec.replicas: 0\n"
    "        Service/istio-ingress/mtkc-gateway-istio.metadata.annotations[service.beta.kubernetes.io/port_80_health-probe_protocol]: Tcp\n"
    "        Service/istio-ingress/mtkc-gateway-istio.spec.ports.1: { name: status-port, port: 15021 }\n"
    "  no-health-route:\n"
    "    set:\n"
    "      kubernetes-remove: [HTTPRoute/gateway-health/health-route]\n"
    "  root-route:\n"
    "    set:\n"
    "      kubernetes-add:\n"
    "        - apiVersion: gateway.networking.k8s.io/v1\n"
    "          kind: HTTPRoute\n"
    "          metadata: { name: root, namespace: istio-ingress }\n"
    "          spec: { parentRefs: [ { name: mtkc-gateway } ] }\n";

START_TEST(scenario_section)
{
    write_file("sub/k8s/gateway.yaml", gw_file);
    write_file("sub/aks.yaml", scn_yaml);
    char *path = lb_sprintf("%s/sub/aks.yaml", tmpdir);
    char *wbuf = NULL;
    size_t wlen = 0;
    FILE *warn = open_memstream(&wbuf, &wlen);
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load(path, &s, &d, warn);
    CK_DIAG(rc, d);
    ck_assert_uint_eq(scn_variant_count(s), 4);

    /* as deployed: the file's objects (positions in the file, relative to the scenario's
     * directory), then the inline Service */
    const k8s_objects_t *o = scn_variant_k8s(s, 0);
    ck_assert_ptr_nonnull(o);
    const k8s_gateway_t *gw = k8s_gateway_find(o, "istio-ingress", "mtkc-gateway");
    ck_assert_ptr_nonnull(gw);
    char *gwfile = lb_sprintf("%s/sub/k8s/gateway.yaml", tmpdir);
    ck_assert_str_eq(gw->meta.pos.file, gwfile);
    ck_assert_int_eq(gw->meta.pos.line, 1);
    ck_assert_int_eq(gw->meta.order, 0);
    const k8s_service_t *svc = k8s_service_find(o, "istio-ingress", "mtkc-gateway-istio");
    ck_assert_str_eq(svc->meta.pos.file, path);
    ck_assert_int_eq(svc->meta.pos.line, 5);
    ck_assert_int_eq(svc->meta.order, 3);
    ck_assert_int_eq(svc->etp, K8S_ETP_CLUSTER);
    ck_assert_uint_eq(svc->ports.n, 1);
    ck_assert_uint_eq(o->routes.n, 1);
    ck_assert_int_eq(o->deployments.v[0]->replicas, 2);
    ck_assert_str_eq(o->routes.v[0]->rules.v[0].matches.v[0].path, "/healthz");

    /* etp-local: fields set by address, an annotation key with dots, a list item appended */
    o = scn_variant_k8s(s, 1);
    svc = k8s_service_find(o, "istio-ingress", "mtkc-gateway-istio");
    ck_assert_int_eq(svc->etp, K8S_ETP_LOCAL);
    ck_assert_str_eq(k8s_kv_get(&svc->meta.annotations,
                                "service.beta.kubernetes.io/port_80_health-probe_protocol"), "Tcp");
    ck_assert_uint_eq(svc->ports.n, 2);
    ck_assert_int_eq(svc->ports.v[1].port, 15021);
    ck_assert_int_eq(o->deployments.v[0]->replicas, 0);
    ck_assert_uint_eq(o->routes.n, 1);

    /* no-health-route: the same deployment without the health route */
    o = scn_variant_k8s(s, 2);
    ck_assert_uint_eq(o->routes.n, 0);
    ck_assert_uint_eq(o->gateways.n, 1);
    ck_assert_uint_eq(o->services.n, 1);

    /* root-route: one more HTTPRoute, newer than the others */
    o = scn_variant_k8s(s, 3);
    ck_assert_uint_eq(o->routes.n, 2);
    ck_assert_str_eq(o->routes.v[1]->meta.name, "root");
    ck_assert_int_gt(o->routes.v[1]->meta.order, o->routes.v[0]->meta.order);
    ck_assert_int_eq(o->routes.v[1]->meta.pos.line, 26);

    /* warnings: none until flushed, then once (not once per variant), then never again */
    fflush(warn);
    ck_assert_uint_eq(wlen, 0);
    scn_run_t *r = NULL;
    rc = scn_run_new(s, 1, 1, &r, &d);
    CK_DIAG(rc, d);
    scn_run_free(r);
    scn_warnings_flush(s);
    fflush(warn);
    char *want = lb_sprintf("%s:23:56: warning: Deployment field spec.template.spec.containers[].resources "
                            "is not modelled (ignored)\n", gwfile);
    ck_text_eq(wbuf, want);
    lb_free(want);

    /* command-line overrides rebuild the variants (the whole kubernetes-set is replaced) */
    rc = scn_override(s, "kubernetes-set={Deployment/sample-apps/sample-app-1.spec.replicas: 5}", &d);
    CK_DIAG(rc, d);
    for (size_t v = 0; v < 4; v++)
        ck_assert_int_eq(scn_variant_k8s(s, v)->deployments.v[0]->replicas, 5);
    ck_assert_int_eq(k8s_service_find(scn_variant_k8s(s, 1), "istio-ingress",
                                      "mtkc-gateway-istio")->etp, K8S_ETP_CLUSTER);
    scn_free(s);
    fclose(warn);
    free(wbuf);
    lb_free(gwfile);
    lb_free(path);
}
END_TEST

/* A scenario without a kubernetes section has no objects. */
START_TEST(scenario_without_section)
{
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string("name: t\nduration: 1s\n", "t.yaml", &s, &d, NULL);
    CK_DIAG(rc, d);
    ck_assert_ptr_null(scn_variant_k8s(s, 0));
    scn_free(s);
    rc = scn_load_string("name: t\nduration: 1s\nkubernetes: []\n", "t.yaml", &s, &d, NULL);
    CK_DIAG(rc, d);
    ck_assert_ptr_nonnull(scn_variant_k8s(s, 0));
    ck_assert_uint_eq(scn_variant_k8s(s, 0)->services.n, 0);
    scn_free(s);
}
END_TEST

/* build_k8s: what an element's build function sees. */
static const k8s_objects_t *seen_objs;
static int seen_replicas;
static int probe_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    (void)name;
    (void)cfg;
    seen_objs = build_k8s(ctx);
    seen_replicas = seen_objs ? seen_objs->deployments.v[0]->replicas : -1;
    return 0;
}
static const elem_param_t probe_params[] = { { NULL, 0, NULL, NULL, NULL, NULL } };
static const elem_type_t probe_type = { "k8s-test-probe", ELEM_APP, "test: reads build_k8s",
                                        probe_params, probe_build };

START_TEST(scenario_build_k8s)
{
    if (!elem_type_find(probe_type.name)) elem_register(&probe_type);
    static const char yaml[] =
        "name: t\nduration: 1s\n"
        "apps: { p: { type: k8s-test-probe } }\n"
        "kubernetes:\n"
        "  - apiVersion: apps/v1\n"
        "    kind: Deployment\n"
        "    metadata: { name: web }\n"
        "    spec:\n"
        "      selector: { matchLabels: { app: web } }\n"
        "      template: { metadata: { labels: { app: web } }, spec: { containers: [ { name: c, image: nginx } ] } }\n"
        "variants:\n"
        "  one: {}\n"
        "  none: { set: { kubernetes-set: { Deployment/web.spec.replicas: 0 } } }\n";
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(yaml, "t.yaml", &s, &d, NULL);
    CK_DIAG(rc, d);
    for (size_t v = 0; v < 2; v++) {
        scn_run_t *r = NULL;
        seen_objs = NULL;
        rc = scn_run_new(s, v, 1, &r, &d);
        CK_DIAG(rc, d);
        ck_assert_ptr_eq(seen_objs, scn_variant_k8s(s, v));
        ck_assert_int_eq(seen_replicas, v == 0 ? 1 : 0);
        scn_run_free(r);
    }
    scn_free(s);
    /* and without a kubernetes section: NULL */
    rc = scn_load_string("name: t\nduration: 1s\napps: { p: { type: k8s-test-probe } }\n", "t.yaml",
                         &s, &d, NULL);
    CK_DIAG(rc, d);
    scn_run_t *r = NULL;
    seen_objs = (const k8s_objects_t *)&seen_replicas;
    CK_DIAG(scn_run_new(s, 0, 1, &r, &d), d);
    ck_assert_ptr_null(seen_objs);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

#define SHDR "name: t\nduration: 1s\n"
#define SVC_ITEM "  - { apiVersion: v1, kind: Service, metadata: { name: gw, namespace: edge }, " \
                 "spec: { type: LoadBalancer, ports: [ { port: 80 } ] } }\n"

static const struct bad scn_bad_cases[] = {
    { SHDR "kubernetes: { file: x.yaml }\n",
      "t.yaml:3:13: kubernetes: expected a list of manifests and { file: PATH } items; got a mapping" },
    { SHDR "kubernetes:\n  - files: x.yaml\n",
      "t.yaml:4:5: kubernetes: unknown key 'files'; did you mean 'file'? expected an inline manifest (apiVersion, kind, metadata, ...) or { file: PATH }" },
    { SHDR "kubernetes:\n  - k8s/x.yaml\n",
      "t.yaml:4:5: kubernetes: expected an inline manifest (apiVersion, kind, metadata, ...) or { file: PATH }; got a scalar" },
    { SHDR "kubernetes:\n  - { file: nowhere/x.yaml }\n",
      "t.yaml:4:13: file: cannot read 'nowhere/x.yaml': No such file or directory" },
    { SHDR "kubernetes:\n  - { file: nowhere/*.yaml }\n",
      "t.yaml:4:13: file: no file matches 'nowhere/*.yaml'" },
    { SHDR "kubernetes:\n  - { file: x.yaml, namespace: a }\n",
      "t.yaml:4:21: kubernetes: unknown key 'namespace' in a file item; expected only file: PATH" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-remove: [Service/edge/gw2]\n",
      "t.yaml:5:21: kubernetes-remove: no manifest 'Service/edge/gw2'; did you mean 'Service/edge/gw'?" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-remove: gw\n",
      "t.yaml:5:20: kubernetes-remove: 'gw' is not an object address; expected KIND/NAMESPACE/NAME like HTTPRoute/gateway-health/health-route" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { Service/default/gw.spec.type: NodePort }\n",
      "t.yaml:5:19: kubernetes-set: no manifest 'Service/default/gw'; did you mean 'Service/edge/gw'?" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { Deployment/shop/api.spec.replicas: 0 }\n",
      "t.yaml:5:19: kubernetes-set: no manifest 'Deployment/shop/api'; expected KIND/NAMESPACE/NAME of one of: Service/edge/gw" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { Service/edge/gw: {} }\n",
      "t.yaml:5:19: kubernetes-set: 'Service/edge/gw' names an object but no field; expected Service/edge/gw.field.path, like Service/edge/gw.spec" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { spec.replicas: 0 }\n",
      "t.yaml:5:19: kubernetes-set: 'spec.replicas' does not start with an object address; expected KIND/NAMESPACE/NAME.field, like Service/istio-ingress/web.spec.externalTrafficPolicy" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { Service/edge/gw.spec.ports.3.port: 81 }\n",
      "t.yaml:5:19: kubernetes-set: cannot set 'Service/edge/gw.spec.ports.3.port': spec.ports is a list of 1; expected an index from 0 to 1 (1 appends), got '3'" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { Service/edge/gw.spec.type.x: 1 }\n",
      "t.yaml:5:19: kubernetes-set: cannot set 'Service/edge/gw.spec.type.x': spec.type is a scalar, not a mapping or a list" },
    { SHDR "kubernetes:\n" SVC_ITEM "kubernetes-set: { \"Service/edge/gw.metadata.annotations[a.b\": 1 }\n",
      "t.yaml:5:19: kubernetes-set: bad field path 'metadata.annotations[a.b'; expected names separated by dots, list indexes like ports.0, and [key] for keys with dots (annotations[service.beta.kubernetes.io/x])" },
    /* a bad value set by a variant is reported at the variant's own line */
    { SHDR "kubernetes:\n" SVC_ITEM "variants:\n  a: {}\n  b:\n    set:\n      kubernetes-set:\n"
           "        Service/edge/gw.spec.externalTrafficPolicy: local\n",
      "t.yaml:10:53: Service edge/gw: spec.externalTrafficPolicy: 'local' is not valid; did you mean 'Local'? (one of: Cluster, Local)" },
    { SHDR "kubernetes:\n" SVC_ITEM "variants:\n  b:\n    set:\n      kubernetes-set:\n"
           "        Service/edge/gw.spec.ports.0.port: eighty\n",
      "t.yaml:9:44: Service edge/gw: spec.ports[0].port: expected an integer; got 'eighty'" },
};

START_TEST(scenario_bad)
{
    const struct bad *b = &scn_bad_cases[_i];
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(b->yaml, "t.yaml", &s, &d, NULL);
    ck_assert_msg(rc < 0, "case %d loaded", _i);
    char *got = diag_text(&d);
    ck_assert_msg(strcmp(got, b->want) == 0, "case %d\n got: %s\nwant: %s", _i, got, b->want);
    lb_free(got);
}
END_TEST

/* kube_path_set: "kubernetes.KIND/NS/NAME.field" keys add up in kubernetes-set. */
START_TEST(scenario_path_set)
{
    scn_node_t *tree = NULL, *v1 = NULL, *v2 = NULL;
    scn_diag_t d;
    CK_DIAG(yt_parse_one(SHDR "kubernetes:\n" SVC_ITEM, "t.yaml", 0, &tree, &d), d);
    CK_DIAG(yt_parse_one("Local", "<command line>", 60, &v1, &d), d);
    CK_DIAG(yt_parse_one("{ a.b/c: x }", "<command line>", 60, &v2, &d), d);
    elem_pos_t kpos = { "<command line>", 1, 1 };
    ck_assert_int_eq(kube_path_set(tree, "Service/edge/gw.spec.externalTrafficPolicy", kpos, v1), 0);
    ck_assert_int_eq(kube_path_set(tree, "Service/edge/gw.metadata.annotations", kpos, v2), 0);
    manifests_t *m = NULL;
    CK_DIAG(kube_load(tree, NULL, &m, &d), d);
    const k8s_service_t *svc = k8s_service_find(manifests_objects(m), "edge", "gw");
    ck_assert_int_eq(svc->etp, K8S_ETP_LOCAL);
    ck_assert_str_eq(k8s_kv_get(&svc->meta.annotations, "a.b/c"), "x");
    manifests_free(m);
    /* a bad value names the override's own position */
    yt_free(v1);
    CK_DIAG(yt_parse_one("Locl", "<command line>", 60, &v1, &d), d);
    ck_assert_int_eq(kube_path_set(tree, "Service/edge/gw.spec.externalTrafficPolicy", kpos, v1), 0);
    ck_assert_int_eq(kube_load(tree, NULL, &m, &d), LB_EINVAL);
    char *got = diag_text(&d);
    ck_assert_str_eq(got, "<command line>:1:61: Service edge/gw: spec.externalTrafficPolicy: 'Locl' "
                          "is not valid; did you mean 'Local'? (one of: Cluster, Local)");
    lb_free(got);
    ck_assert_ptr_null(m);
    yt_free(v1);
    yt_free(v2);
    yt_free(tree);
}
END_TEST

Suite *suite_manifests(void)
{
    Suite *s = suite_create("manifests");
    TCase *tc = tcase_create("convert");
    tcase_add_test(tc, seed_manifests);
    tcase_add_test(tc, api_defaults);
    tcase_add_loop_test(tc, bad_manifests, 0, (int)(sizeof bad_cases / sizeof *bad_cases));
    tcase_add_test(tc, warnings_once);
    suite_add_tcase(s, tc);
    tc = tcase_create("scenario");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, scenario_section);
    tcase_add_test(tc, scenario_without_section);
    tcase_add_test(tc, scenario_build_k8s);
    tcase_add_test(tc, scenario_path_set);
    tcase_add_loop_test(tc, scenario_bad, 0, (int)(sizeof scn_bad_cases / sizeof *scn_bad_cases));
    suite_add_tcase(s, tc);
    return s;
}

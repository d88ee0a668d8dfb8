/* test_cloud_provider_azure.c -- cloud-provider-azure's probe choice, one table row per
 * rule of buildHealthProbeRulesForPort / getExpectedLBRules and per row of the
 * loadbalancer.md tables: ETP Local, appProtocol before/after 1.24, overrides, limits. */
#include <check.h>
#include <string.h>
#include "cloud_provider_azure.h"

/* A Service of type LoadBalancer with ports http:80 (nodePort 30080) and
 * status-port:15021 (31021, appProtocol tcp) unless a row says otherwise. */
typedef struct row {
    const char *name;
    k8s_etp_t etp;
    const char *app_protocol;       /* of the port under test (index 0) */
    const char *protocol;           /* "TCP" default */
    const char *ann[4][2];          /* annotations */
    int minor;                      /* 0: default */
    const char *ccm;                /* cloud-provider-azure release, NULL: newest of the line */
    bool basic, shared;
    bool not_lb;
    int port_no;                    /* service port number under test (default 80) */
    /* expected */
    int rc;
    bool lb_rule;
    cpa_proto_t proto;
    int port;
    const char *path;
    int interval, threshold;
    const char *why;                /* substring of why */
} row_t;

#define HC 32001                    /* healthCheckNodePort */
#define A(k) "service.beta.kubernetes.io/" k

static const row_t rows[] = {
    { .name = "ETP Local: kube-proxy healthCheckNodePort /healthz",
      .etp = K8S_ETP_LOCAL, .app_protocol = "http",
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = HC, .path = "/healthz",
      .interval = 5, .threshold = 2, .why = "externalTrafficPolicy Local" },
    { .name = "ETP Local: global interval applies to the node probe",
      .etp = K8S_ETP_LOCAL, .ann = { { A("azure-load-balancer-health-probe-interval"), "10" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = HC, .path = "/healthz",
      .interval = 10, .threshold = 2, .why = "service annotation" },
    { .name = "ETP Cluster appProtocol http on 1.29: HTTP / on the nodePort (the AKS failure)",
      .app_protocol = "http", .minor = 29,
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "appProtocol 'http'" },
    { .name = "ETP Cluster appProtocol http on 1.24 (first version)",
      .app_protocol = "http", .minor = 24,
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "since Kubernetes 1.24" },
    { .name = "ETP Cluster appProtocol http on 1.23: TCP",
      .app_protocol = "http", .minor = 23,
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "ignored before Kubernetes 1.24" },
    { .name = "ETP Cluster appProtocol http on 1.23 with request-path: HTTP custom path",
      .app_protocol = "http", .minor = 23,
      .ann = { { A("azure-load-balancer-health-probe-request-path"), "/healthz/ready" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/healthz/ready",
      .interval = 5, .threshold = 2, .why = "uses appProtocol only then" },
    { .name = "ETP Cluster, no appProtocol: TCP on the nodePort",
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "default TCP" },
    { .name = "ETP Cluster appProtocol tcp (Istio status-port): TCP",
      .app_protocol = "tcp", .port_no = 15021,
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 31021, .path = "",
      .interval = 5, .threshold = 2, .why = "appProtocol 'tcp'" },
    { .name = "appProtocol https on Standard: HTTPS /",
      .app_protocol = "https",
      .lb_rule = true, .proto = CPA_PROBE_HTTPS, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "HTTPS probe" },
    { .name = "appProtocol https on Basic: TCP",
      .app_protocol = "https", .basic = true,
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "Basic LB has no HTTPS" },
    { .name = "appProtocol HTTP in capitals",
      .app_protocol = " HTTP ",
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "HTTP probe" },
    { .name = "unsupported appProtocol with a path: TCP",
      .app_protocol = "kubernetes.io/h2c",
      .ann = { { A("azure-load-balancer-health-probe-request-path"), "/x" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "not a probe protocol" },
    { .name = "port protocol annotation beats appProtocol",
      .app_protocol = "http", .ann = { { A("port_80_health-probe_protocol"), "Tcp" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "port_80_health-probe_protocol=Tcp" },
    { .name = "appProtocol beats the global protocol annotation",
      .app_protocol = "http",
      .ann = { { A("azure-load-balancer-health-probe-protocol"), "tcp" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "appProtocol" },
    { .name = "global protocol annotation without appProtocol",
      .ann = { { A("azure-load-balancer-health-probe-protocol"), "http" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "azure-load-balancer-health-probe-protocol=http" },
    { .name = "global request-path",
      .app_protocol = "http",
      .ann = { { A("azure-load-balancer-health-probe-request-path"), "/healthz/ready" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/healthz/ready",
      .interval = 5, .threshold = 2, .why = "path from service.beta" },
    { .name = "port request-path beats the global one",
      .app_protocol = "http",
      .ann = { { A("azure-load-balancer-health-probe-request-path"), "/global" },
               { A("port_80_health-probe_request-path"), "/port" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/port",
      .interval = 5, .threshold = 2, .why = "port_80_health-probe_request-path" },
    { .name = "request-path ignored for TCP",
      .ann = { { A("azure-load-balancer-health-probe-request-path"), "/healthz" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "TCP probe" },
    { .name = "probe port override by service port number -> its nodePort",
      .app_protocol = "http", .ann = { { A("port_80_health-probe_port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 31021, .path = "/",
      .interval = 5, .threshold = 2, .why = "nodePort 31021 of service port 15021" },
    { .name = "probe port override by port name",
      .ann = { { A("port_80_health-probe_port"), "Status-Port" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 31021, .path = "",
      .interval = 5, .threshold = 2, .why = "service port 'status-port'" },
    { .name = "probe port override by a plain number",
      .ann = { { A("port_80_health-probe_port"), "30000" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30000, .path = "",
      .interval = 5, .threshold = 2, .why = "port 30000" },
    { .name = "probe port override naming nothing: rejected",
      .ann = { { A("port_80_health-probe_port"), "nosuch" } },
      .rc = LB_EINVAL, .lb_rule = true, .why = "port nosuch not found in service" },
    { .name = "probe port override out of range: rejected",
      .ann = { { A("port_80_health-probe_port"), "70000" } },
      .rc = LB_EINVAL, .lb_rule = true, .why = "out of range" },
    { .name = "ETP Local with a port probe override (loadbalancer.md istio example)",
      .etp = K8S_ETP_LOCAL, .app_protocol = "https", .port_no = 443,
      .ann = { { A("port_443_health-probe_protocol"), "http" },
               { A("port_443_health-probe_port"), "30000" },
               { A("port_443_health-probe_request-path"), "/healthz/ready" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30000, .path = "/healthz/ready",
      .interval = 5, .threshold = 2, .why = "names its own probe port" },
    { .name = "global num-of-probe",
      .ann = { { A("azure-load-balancer-health-probe-num-of-probe"), "5" },
               { A("port_443_health-probe_num-of-probe"), "4" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 5, .why = "threshold 5 (service annotation)" },
    { .name = "port num-of-probe beats the global one (loadbalancer.md example)",
      .port_no = 443, .app_protocol = "HTTPS",
      .ann = { { A("azure-load-balancer-health-probe-num-of-probe"), "5" },
               { A("port_443_health-probe_num-of-probe"), "4" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTPS, .port = 30443, .path = "/",
      .interval = 5, .threshold = 4, .why = "threshold 4 (port annotation)" },
    { .name = "port interval",
      .ann = { { A("port_80_health-probe_interval"), "15" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 15, .threshold = 2, .why = "interval 15 s (port annotation)" },
    { .name = "interval below 5: rejected",
      .ann = { { A("azure-load-balancer-health-probe-interval"), "4" } },
      .rc = LB_EINVAL, .lb_rule = true, .why = "minimum value of interval is 5" },
    { .name = "num-of-probe below 2: rejected",
      .ann = { { A("port_80_health-probe_num-of-probe"), "1" } },
      .rc = LB_EINVAL, .lb_rule = true, .why = "minimum value of num-of-probe is 2" },
    { .name = "interval * num-of-probe >= 120: rejected",
      .ann = { { A("azure-load-balancer-health-probe-interval"), "20" },
               { A("azure-load-balancer-health-probe-num-of-probe"), "6" } },
      .rc = LB_EINVAL, .lb_rule = true, .why = "less than 120" },
    { .name = "interval * num-of-probe = 119 accepted",
      .ann = { { A("azure-load-balancer-health-probe-interval"), "17" },
               { A("azure-load-balancer-health-probe-num-of-probe"), "7" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 17, .threshold = 7, .why = "interval 17 s" },
    { .name = "interval not a number: rejected",
      .ann = { { A("azure-load-balancer-health-probe-interval"), "5s" } },
      .rc = LB_EINVAL, .lb_rule = true, .why = "is not an integer" },
    { .name = "no_lb_rule: no rule, no probe",
      .app_protocol = "http", .ann = { { A("port_80_no_lb_rule"), "true" } },
      .lb_rule = false, .proto = CPA_PROBE_NONE, .why = "no load-balancing rule" },
    { .name = "no_probe_rule: rule without probe",
      .etp = K8S_ETP_LOCAL, .ann = { { A("port_80_no_probe_rule"), "True" } },
      .lb_rule = true, .proto = CPA_PROBE_NONE, .why = "has no health probe" },
    { .name = "no_probe_rule=false is ignored",
      .ann = { { A("port_80_no_probe_rule"), "false" } },
      .lb_rule = true, .proto = CPA_PROBE_TCP, .port = 30080, .path = "",
      .interval = 5, .threshold = 2, .why = "TCP probe" },
    { .name = "UDP port: no probe",
      .protocol = "UDP", .lb_rule = true, .proto = CPA_PROBE_NONE, .why = "is UDP" },
    { .name = "UDP port with ETP Local: the node probe",
      .protocol = "UDP", .etp = K8S_ETP_LOCAL,
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = HC, .path = "/healthz",
      .interval = 5, .threshold = 2, .why = "healthCheckNodePort" },
    { .name = "shared probe mode, ETP Cluster: kube-proxy :10256/healthz",
      .app_protocol = "http", .shared = true,
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 10256, .path = "/healthz",
      .interval = 5, .threshold = 2, .why = "shared health probe mode" },
    { .name = "shared probe mode, ETP Local keeps the node probe",
      .etp = K8S_ETP_LOCAL, .shared = true,
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = HC, .path = "/healthz",
      .interval = 5, .threshold = 2, .why = "healthCheckNodePort" },
    /* The version table: istio/istio#56189's workaround (probe 15021 /healthz/ready for
     * the http port) by cloud-provider-azure release (cloud-provider-azure#1499, #1505). */
    { .name = "probe port 15021 on v1.26.0: honoured, the status port's nodePort",
      .app_protocol = "http", .minor = 26, .ccm = "v1.26.0",
      .ann = { { A("port_80_health-probe_port"), "15021" },
               { A("port_80_health-probe_request-path"), "/healthz/ready" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 31021, .path = "/healthz/ready",
      .interval = 5, .threshold = 2, .why = "service port 15021" },
    { .name = "probe port on v1.25.5: ignored, HTTP /healthz/ready on port 80's nodePort",
      .app_protocol = "http", .minor = 25, .ccm = "v1.25.5",
      .ann = { { A("port_80_health-probe_port"), "15021" },
               { A("port_80_health-probe_request-path"), "/healthz/ready" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/healthz/ready",
      .interval = 5, .threshold = 2, .why = "ignored: cloud-provider-azure v1.25.5 predates" },
    { .name = "probe port on v1.25.6 (backport #2823): honoured",
      .app_protocol = "http", .minor = 25, .ccm = "v1.25.6",
      .ann = { { A("port_80_health-probe_port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 31021, .path = "/",
      .interval = 5, .threshold = 2, .why = "service port 15021" },
    { .name = "probe port on v1.24.11: ignored; v1.24.12 (#2824) honours it",
      .app_protocol = "http", .minor = 24, .ccm = "v1.24.11",
      .ann = { { A("port_80_health-probe_port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "v1.24.11 predates" },
    { .name = "probe port on v1.24.12: honoured",
      .app_protocol = "http", .minor = 24, .ccm = "v1.24.12",
      .ann = { { A("port_80_health-probe_port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 31021, .path = "/",
      .interval = 5, .threshold = 2, .why = "service port 15021" },
    { .name = "probe protocol tcp on the 1.23 line (backport never merged): ignored",
      .app_protocol = "http", .minor = 24, .ccm = "v1.23.30",
      .ann = { { A("port_80_health-probe_protocol"), "Tcp" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "port_80_health-probe_protocol ignored" },
    { .name = "a misspelt key (health-probe-port) is just another annotation: ignored",
      .app_protocol = "http", .minor = 29,
      .ann = { { A("port_80_health-probe-port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "appProtocol 'http'" },
    { .name = "ETP Local with a probe port on v1.28.0: ignored, healthCheckNodePort (#4629)",
      .etp = K8S_ETP_LOCAL, .app_protocol = "http", .minor = 28, .ccm = "v1.28.0",
      .ann = { { A("port_80_health-probe_port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = HC, .path = "/healthz",
      .interval = 5, .threshold = 2, .why = "predates health-probe_port with" },
    { .name = "ETP Local with a probe port on v1.28.1: the port's own probe",
      .etp = K8S_ETP_LOCAL, .app_protocol = "http", .minor = 28, .ccm = "v1.28.1",
      .ann = { { A("port_80_health-probe_port"), "15021" } },
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 31021, .path = "/",
      .interval = 5, .threshold = 2, .why = "names its own probe port" },
    { .name = "shared probe mode on v1.28.4: not there, the per-port probe",
      .app_protocol = "http", .minor = 28, .ccm = "v1.28.4", .shared = true,
      .lb_rule = true, .proto = CPA_PROBE_HTTP, .port = 30080, .path = "/",
      .interval = 5, .threshold = 2, .why = "appProtocol" },
    { .name = "ClusterIP service: no LB rule",
      .not_lb = true, .lb_rule = false, .proto = CPA_PROBE_NONE, .why = "not of type" },
};

static void add_kv(k8s_kvs_t *kv, const char *k, const char *v)
{
    k8s_kv_t e = { lb_strdup(k), lb_strdup(v) };
    lb_vec_push(kv, e);
}

static void add_port(k8s_service_t *s, const char *name, int port, int node_port,
                     const char *proto, const char *app)
{
    k8s_service_port_t p = { 0 };
    p.name = lb_strdup(name);
    p.port = port;
    p.target_port.number = port;
    p.node_port = node_port;
    p.protocol = lb_strdup(proto ? proto : "TCP");
    p.app_protocol = app ? lb_strdup(app) : NULL;
    lb_vec_push(&s->ports, p);
}

START_TEST(probe_table)
{
    const row_t *r = &rows[_i];
    k8s_objects_t o = { 0 };
    k8s_service_t *s = lb_calloc(1, sizeof *s);
    lb_vec_push(&o.services, s);
    s->meta.name = lb_strdup("mtkc-gateway-istio");
    s->meta.ns = lb_strdup("istio-ingress");
    s->type = r->not_lb ? K8S_SVC_CLUSTER_IP : K8S_SVC_LOAD_BALANCER;
    s->etp = r->etp;
    s->health_check_node_port = r->etp == K8S_ETP_LOCAL ? HC : 0;
    int pn = r->port_no ? r->port_no : 80;
    add_port(s, pn == 443 ? "https" : pn == 15021 ? "status-port" : "http", pn,
             pn == 443 ? 30443 : pn == 15021 ? 31021 : 30080, r->protocol, r->app_protocol);
    if (pn != 15021)
        add_port(s, "status-port", 15021, 31021, NULL, "tcp");
    for (int i = 0; i < 4 && r->ann[i][0]; i++)
        add_kv(&s->meta.annotations, r->ann[i][0], r->ann[i][1]);

    cpa_opts_t opts;
    cpa_opts_init(&opts);
    if (r->minor)
        opts.k8s_minor = r->minor;
    opts.basic_sku = r->basic;
    if (r->ccm)
        ck_assert_int_eq(cpa_opts_set_ccm_version(&opts, r->ccm), 0);
    if (r->shared)
        opts.mode = CPA_MODE_SHARED;
    cpa_probe_t p;
    int rc = cpa_probe_for_port(s, 0, &opts, &p);
    ck_assert_msg(rc == r->rc, "%s: rc %d want %d (%s)", r->name, rc, r->rc, p.why);
    ck_assert_msg(strstr(p.why, r->why), "%s: why '%s' lacks '%s'", r->name, p.why, r->why);
    ck_assert_msg(p.lb_rule == r->lb_rule, "%s: lb_rule", r->name);
    if (rc == 0) {
        ck_assert_msg(p.protocol == r->proto, "%s: protocol %s want %s (%s)", r->name,
                      cpa_proto_str(p.protocol), cpa_proto_str(r->proto), p.why);
        if (r->proto != CPA_PROBE_NONE) {
            ck_assert_msg(p.port == r->port, "%s: port %d want %d", r->name, p.port, r->port);
            ck_assert_msg(strcmp(p.path, r->path) == 0, "%s: path '%s' want '%s'", r->name,
                          p.path, r->path);
            ck_assert_msg(p.interval_s == r->interval, "%s: interval %d", r->name,
                          p.interval_s);
            ck_assert_msg(p.threshold == r->threshold, "%s: threshold %d", r->name,
                          p.threshold);
        }
    } else {
        ck_assert_int_eq(p.protocol, CPA_PROBE_NONE);
    }
    k8s_objects_free(&o);
    ck_assert_int_eq(o.services.n, 0);
}
END_TEST

/* The auto-deployed Istio gateway Service as the AKS articles had it: both ports probed,
 * and only the HTTP listener port gets the HTTP probe on '/'. */
START_TEST(istio_gateway_service)
{
    k8s_service_t s = { 0 };
    s.type = K8S_SVC_LOAD_BALANCER;
    add_port(&s, "status-port", 15021, 31021, NULL, "tcp");
    add_port(&s, "http", 80, 30080, NULL, "http");
    cpa_probe_t p;
    ck_assert_int_eq(cpa_probe_for_port(&s, 0, NULL, &p), 0);
    ck_assert_int_eq(p.protocol, CPA_PROBE_TCP);
    ck_assert_int_eq(p.port, 31021);
    ck_assert_int_eq(cpa_probe_for_port(&s, 1, NULL, &p), 0);
    ck_assert_int_eq(p.protocol, CPA_PROBE_HTTP);
    ck_assert_int_eq(p.port, 30080);
    ck_assert_str_eq(p.path, "/");
    ck_assert_int_eq(cpa_probe_for_port(&s, 2, NULL, &p), LB_EINVAL);
    ck_assert_int_eq(cpa_probe_for_port(NULL, 0, NULL, &p), LB_EINVAL);
    /* the fix: ETP Local */
    s.etp = K8S_ETP_LOCAL;
    s.health_check_node_port = 31999;
    ck_assert_int_eq(cpa_probe_for_port(&s, 1, NULL, &p), 0);
    ck_assert_int_eq(p.protocol, CPA_PROBE_HTTP);
    ck_assert_int_eq(p.port, 31999);
    ck_assert_str_eq(p.path, "/healthz");
    for (size_t i = 0; i < s.ports.n; i++) {
        lb_free(s.ports.v[i].name);
        lb_free(s.ports.v[i].protocol);
        lb_free(s.ports.v[i].app_protocol);
    }
    lb_vec_free(&s.ports);
}
END_TEST

START_TEST(versions)
{
    cpa_opts_t o;
    cpa_opts_init(&o);
    ck_assert_int_eq(o.k8s_minor, CPA_K8S_MINOR_DEFAULT);
    ck_assert_int_eq(cpa_opts_set_version(&o, "1.23"), 0);
    ck_assert_int_eq(o.k8s_minor, 23);
    ck_assert_int_eq(cpa_opts_set_version(&o, "v1.29.4"), 0);
    ck_assert_int_eq(o.k8s_minor, 29);
    ck_assert_int_eq(cpa_opts_set_version(&o, "1.30.0"), 0);
    ck_assert_int_eq(o.k8s_minor, 30);
    ck_assert_int_eq(cpa_opts_set_version(&o, "2.0"), LB_EINVAL);
    ck_assert_int_eq(cpa_opts_set_version(&o, "1.x"), LB_EINVAL);
    ck_assert_int_eq(cpa_opts_set_version(&o, "1.29b"), LB_EINVAL);
    ck_assert_int_eq(cpa_opts_set_version(&o, NULL), LB_EINVAL);
    ck_assert_int_eq(o.k8s_minor, 30);
    ck_assert_str_eq(cpa_proto_str(CPA_PROBE_HTTPS), "Https");
    /* cloud-provider-azure releases: the newest patch of the cluster's line by default */
    char b[32];
    cpa_opts_init(&o);
    ck_assert_str_eq(cpa_ccm_version_str(&o, b, sizeof b), "v1.29.x");
    ck_assert(cpa_has(&o, CPA_F_PORT_PROBE_PORT) && cpa_has(&o, CPA_F_SHARED_PROBE));
    ck_assert_int_eq(cpa_opts_set_ccm_version(&o, "v1.24.11"), 0);
    ck_assert_str_eq(cpa_ccm_version_str(&o, b, sizeof b), "v1.24.11");
    ck_assert(!cpa_has(&o, CPA_F_PORT_PROBE_PORT));
    ck_assert_int_eq(cpa_opts_set_ccm_version(&o, "1.24"), 0);
    ck_assert(cpa_has(&o, CPA_F_PORT_PROBE_PORT));          /* newest 1.24 patch */
    ck_assert(!cpa_has(&o, CPA_F_LOCAL_PROBE_PORT));
    ck_assert_int_eq(cpa_opts_set_ccm_version(&o, "v1.27.9"), 0);
    ck_assert(cpa_has(&o, CPA_F_LOCAL_PROBE_PORT) && !cpa_has(&o, CPA_F_SHARED_PROBE));
    ck_assert_int_eq(cpa_opts_set_ccm_version(&o, "v1.28.5"), 0);
    ck_assert(cpa_has(&o, CPA_F_SHARED_PROBE));
    const char *bad[] = {"2.24.1", "v1.", "v1.24.", "v1.24.1x", "1.0", "v1.24.1.2", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(cpa_opts_set_ccm_version(&o, bad[i]) == LB_EINVAL, "%s", bad[i]);
    ck_assert_str_eq(cpa_proto_str(CPA_PROBE_NONE), "none");
}
END_TEST

Suite *suite_cloud_provider_azure(void)
{
    Suite *s = suite_create("cloud_provider_azure");
    TCase *tc = tcase_create("probe");
    tcase_add_loop_test(tc, probe_table, 0, (int)(sizeof rows / sizeof *rows));
    tcase_add_test(tc, istio_gateway_service);
    tcase_add_test(tc, versions);
    suite_add_tcase(s, tc);
    return s;
}

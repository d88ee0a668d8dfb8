/* test_realchain.c -- what the simulator hands to the real chain (src/realchain): the
 * description of a built variant (addresses, roles, the Azure LB's probe as
 * cloud-provider-azure derives it, App Gateway's probe, Services and healthCheckNodePorts),
 * the stand-ins' configurations (haproxy: no fail-open for App Gateway, fail-open for the
 * ALB, the probe and its initial state; nginx for pods, the gateway and kube-proxy's
 * health-check servers; the nodes' rules, iptables or nftables), and flow fates with and
 * without an observation of a kernel (iptables counters or trace, nft monitor trace),
 * including the random endpoint choice and a disagreement. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cJSON.h>
#include "netfilter.h"
#include "nftables.h"
#include "realchain.h"

static scn_t *load(const char *path)
{
    scn_t *s;
    scn_diag_t d;
    scn_ignore_expectations(false);
    ck_assert_msg(scn_load(path, &s, &d, NULL) == 0, "%s: %s", path, d.msg);
    return s;
}

static scn_run_t *build(scn_t *s, const char *variant)
{
    int v = scn_variant_find(s, variant);
    ck_assert_int_ge(v, 0);
    scn_run_t *r;
    scn_diag_t d;
    ck_assert_int_eq(scn_run_new(s, (size_t)v, scn_seed(s), &r, &d), 0);
    sim_run(scn_run_sim(r), 0);
    return r;
}

static cJSON *describe(const char *path, const char *variant)
{
    scn_t *s = load(path);
    scn_run_t *r = build(s, variant);
    char *text = NULL, err[200];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(realchain_describe(s, r, f, err, sizeof err), 0);
    fclose(f);
    cJSON *j = cJSON_Parse(text);
    ck_assert_ptr_nonnull(j);
    free(text);
    scn_run_free(r);
    scn_free(s);
    return j;
}

static cJSON *find(cJSON *arr, const char *key, const char *value)
{
    cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(e, key);
        if (cJSON_IsString(k) && !strcmp(k->valuestring, value)) return e;
    }
    return NULL;
}

static const char *str(cJSON *o, const char *key)
{
    cJSON *k = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsString(k), "no string %s", key);
    return k->valuestring;
}

static double num(cJSON *o, const char *key)
{
    cJSON *k = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(k), "no number %s", key);
    return k->valuedouble;
}

#define GET(o, k) cJSON_GetObjectItemCaseSensitive(o, k)

START_TEST(describe_aks)
{
    cJSON *j = describe("scenarios/aks-dsr.yaml", "as-deployed");
    ck_assert_int_eq((int)num(j, "format"), REALCHAIN_DESCRIBE_FORMAT);
    ck_assert_str_eq(str(j, "variant"), "as-deployed");
    cJSON *nodes = GET(j, "nodes");
    ck_assert_str_eq(str(find(nodes, "name", "aks-user-0"), "role"), "k8s-node");
    ck_assert_str_eq(str(find(nodes, "name", "mtkc-gateway-istio-0"), "role"), "pod");
    ck_assert_str_eq(str(find(nodes, "name", "appgw-1"), "role"), "l7-instance");
    ck_assert_str_eq(str(find(nodes, "name", "azure-lb-probe@vnet"), "role"), "l4-probe");
    ck_assert_str_eq(str(find(nodes, "name", "client"), "role"), "host");
    /* App Gateway's instances hold its frontend */
    cJSON *ag = find(nodes, "name", "appgw-0");
    ck_assert_str_eq(cJSON_GetArrayItem(GET(ag, "addresses"), 0)->valuestring, "20.50.0.10");
    /* the fabric: pod CIDRs routed to their node, frontends owned by their LBs */
    cJSON *vnet = find(GET(j, "fabrics"), "name", "vnet");
    ck_assert_str_eq(str(find(GET(vnet, "routes"), "prefix", "10.244.1.0/24"), "node"), "aks-user-0");
    ck_assert_str_eq(str(find(GET(vnet, "frontends"), "address", "10.224.0.7"), "element"), "ilb");
    ck_assert_str_eq(str(find(GET(vnet, "frontends"), "address", "20.50.0.10"), "element"), "appgw");
    /* the internal LB's http rule: HTTP / on the node port, 200 only, 5 s, 2 in a row */
    cJSON *lbs = GET(j, "load_balancers");
    cJSON *ilb = find(lbs, "name", "ilb");
    ck_assert_str_eq(str(ilb, "no_healthy_backend"), "drop");
    cJSON *rule = find(GET(ilb, "rules"), "name", "http");
    ck_assert(cJSON_IsTrue(GET(rule, "floating_ip")));
    cJSON *probe = GET(rule, "probe");
    ck_assert_str_eq(str(probe, "protocol"), "http");
    ck_assert_str_eq(str(probe, "path"), "/");
    cJSON *check = GET(probe, "check");
    ck_assert_str_eq(str(check, "statuses"), "200");
    ck_assert_int_eq((int)num(check, "interval_s"), 5);
    ck_assert_int_eq((int)num(check, "unhealthy_threshold"), 2);
    ck_assert_str_eq(str(check, "source"), "168.63.129.16");
    /* ... on the nodePort the cluster gave the gateway Service's http port */
    cJSON *svc = find(GET(cJSON_GetArrayItem(GET(j, "clusters"), 0), "services"), "name",
                      "mtkc-gateway-istio");
    cJSON *http = find(GET(svc, "ports"), "name", "http");
    ck_assert_int_eq((int)num(probe, "port"), (int)num(http, "node_port"));
    ck_assert_str_eq(str(svc, "external_traffic_policy"), "Cluster");
    ck_assert(cJSON_IsNull(GET(svc, "health_check_node_port")));
    ck_assert_str_eq(str(cJSON_GetArrayItem(GET(http, "endpoints"), 0), "pod"), "mtkc-gateway-istio-0");
    /* App Gateway: its custom probe, warm start, 502 without fail-open */
    cJSON *appgw = find(lbs, "name", "appgw");
    ck_assert(cJSON_IsFalse(GET(appgw, "fail_open")));
    ck_assert_int_eq((int)num(appgw, "no_healthy_status"), 502);
    cJSON *ap = GET(appgw, "probe");
    ck_assert_str_eq(str(ap, "path"), "/healthz/ready");
    ck_assert_str_eq(str(ap, "host"), "127.0.0.1");
    ck_assert_str_eq(str(ap, "statuses"), "200-399");
    ck_assert_str_eq(str(ap, "initial"), "up");
    ck_assert_int_eq((int)num(ap, "unhealthy_threshold"), 3);
    ck_assert_str_eq(str(cJSON_GetArrayItem(GET(j, "traffic"), 0), "to"), "appgw");
    cJSON_Delete(j);

    /* ETP Local: the probe moves to kube-proxy's healthCheckNodePort, which answers 200
     * only where a gateway pod runs */
    j = describe("scenarios/aks-dsr.yaml", "etp-local");
    cJSON *cl = cJSON_GetArrayItem(GET(j, "clusters"), 0);
    svc = find(GET(cl, "services"), "name", "mtkc-gateway-istio");
    int hcnp = (int)num(svc, "health_check_node_port");
    probe = GET(find(GET(find(GET(j, "load_balancers"), "name", "ilb"), "rules"), "name", "http"), "probe");
    ck_assert_int_eq((int)num(probe, "port"), hcnp);
    ck_assert_str_eq(str(probe, "path"), "/healthz");
    cJSON *hcs = GET(cl, "health_check_node_ports");
    ck_assert_int_eq((int)num(find(hcs, "node", "aks-system-0"), "local_endpoints"), 1);
    ck_assert_int_eq((int)num(find(hcs, "node", "aks-user-0"), "local_endpoints"), 0);
    cJSON_Delete(j);
}
END_TEST

START_TEST(describe_eks)
{
    cJSON *j = describe("scenarios/eks-probe-404.yaml", "as-deployed");
    cJSON *lbs = GET(j, "load_balancers");
    cJSON *nlb = find(lbs, "name", "nlb");
    ck_assert(cJSON_IsTrue(GET(nlb, "source_nat")));
    ck_assert_str_eq(str(find(GET(nlb, "zones"), "zone", "eu-west-1a"), "address"), "10.0.64.254");
    /* ip targets: the gateway pods, each in its node's zone; checked by TCP */
    ck_assert_str_eq(str(find(GET(nlb, "targets"), "label", "mtkc-gateway-istio-1"), "zone"),
                     "eu-west-1b");
    cJSON *chk = cJSON_GetArrayItem(GET(cJSON_GetArrayItem(GET(nlb, "listeners"), 0), "checks"), 0);
    ck_assert_str_eq(str(chk, "protocol"), "tcp");
    ck_assert_int_eq((int)num(chk, "unhealthy_threshold"), 2);
    cJSON *alb = find(lbs, "name", "alb");
    ck_assert(cJSON_IsTrue(GET(alb, "fail_open")));
    ck_assert_int_eq(cJSON_GetArraySize(GET(alb, "members")), 2);
    ck_assert_str_eq(str(GET(alb, "probe"), "statuses"), "200");
    ck_assert_str_eq(str(find(GET(j, "nodes"), "name", "nlb-eu-west-1a"), "role"), "l4-node");
    cJSON_Delete(j);
}
END_TEST

/* ---- rendering ---------------------------------------------------------------------------- */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s", path);
    char *buf = NULL;
    size_t len = 0;
    ck_assert(getdelim(&buf, &len, '\0', f) >= 0);
    fclose(f);
    return buf;
}

static char *render(const char *scenario, const char *variant, char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/lbchain-test-render-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    scn_t *s = load(scenario);
    scn_run_t *r = build(s, variant);
    char *list = NULL, err[300];
    size_t len = 0;
    FILE *f = open_memstream(&list, &len);
    ck_assert_msg(realchain_render(r, dir, f, err, sizeof err) == 0, "%s", err);
    fclose(f);
    scn_run_free(r);
    scn_free(s);
    return list;
}

static char *file_in(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return slurp(path);
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

#define HAS(text, s) ck_assert_msg(strstr(text, s) != NULL, "missing: %s", s)

START_TEST(render_aks)
{
    char dir[64];
    char *list = render("scenarios/aks-dsr.yaml", "as-deployed", dir, sizeof dir);
    HAS(list, "haproxy appgw ");
    HAS(list, "pod mtkc-gateway-istio-0 ");
    HAS(list, "iptables aks-user-1 ");
    ck_assert_ptr_null(strstr(list, "hc "));        /* ETP Cluster: no healthCheckNodePort */
    char *cfg = file_in(dir, "appgw.haproxy.cfg");
    HAS(cfg, "bind 20.50.0.10:80");
    /* no fail-open: App Gateway's own 502 when no member is up */
    HAS(cfg, "http-request return status 502");
    HAS(cfg, "if { nbsrv(appgw_members) eq 0 }");
    ck_assert_ptr_null(strstr(cfg, "appgw_all"));
    /* the probe exactly as configured, from the instance's address */
    HAS(cfg, "http-check send meth GET uri /healthz/ready ver HTTP/1.1 hdr Host 127.0.0.1");
    HAS(cfg, "http-check expect rstatus ^(2[0-9][0-9]|3[0-9][0-9])$");
    HAS(cfg, "server m0 10.224.0.7:80 source 10.225.0.4 check port 80 inter 30s fall 3 rise 1");
    HAS(cfg, "timeout connect 20s");            /* the request timeout */
    HAS(cfg, "retries 0");                      /* one member: nothing to retry on */
    /* warm start: up, three failures from down */
    char *st = file_in(dir, "appgw.haproxy.state");
    HAS(st, "appgw_probe0 1 m0 10.224.0.7 2 0 1 1 0 1 0 3 6");
    char *ep = file_in(dir, "appgw.haproxy.errorpage");
    HAS(ep, "HTTP/1.1 504 Gateway Time-out");
    char *gw = file_in(dir, "pod-mtkc-gateway-istio-0.nginx.conf");
    HAS(gw, "location = /app1 {");
    HAS(gw, "location /healthz/ {");
    HAS(gw, "return 404 \"\";    # Envoy: NR route_not_found");
    HAS(gw, "listen 15021;");
    char *app = file_in(dir, "pod-sample-app-1-0.nginx.conf");
    HAS(app, "listen 8080;");
    HAS(app, "return 200 \"Hello from App 1\\n\";");
    char *rules = file_in(dir, "iptables-aks-user-0.rules");
    HAS(rules, "-A KUBE-NODEPORTS -p tcp");
    free(list); free(cfg); free(st); free(ep); free(gw); free(app); free(rules);
    rm_rf(dir);

    /* a new App Gateway (aks-probe-404): down until a probe passes; ETP Local: kube-proxy's
     * health-check servers, 200 with a local gateway pod, 503 without */
    list = render("scenarios/aks-probe-404.yaml", "as-deployed", dir, sizeof dir);
    st = file_in(dir, "appgw.haproxy.state");
    HAS(st, "appgw_probe0 1 m0 10.224.0.7 0 0 1 1 0 1 0 0 6");
    char *hc0 = file_in(dir, "hc-aks-system-0.nginx.conf"), *hc1 = file_in(dir, "hc-aks-user-0.nginx.conf");
    HAS(hc0, "return 200 \"{\\n\\t\\\"service\\\": {");
    HAS(hc0, "\\\"localEndpoints\\\": 1,");
    HAS(hc1, "return 503 ");
    HAS(hc1, "add_header X-Load-Balancing-Endpoint-Weight \"0\" always;");
    free(list); free(st); free(hc0); free(hc1);
    rm_rf(dir);

    /* kube-proxy in nftables mode: each node's ruleset for `nft -f`, no iptables file */
    list = render("scenarios/aks-dsr.yaml", "etp-local-nftables", dir, sizeof dir);
    HAS(list, "nftables aks-user-0 ");
    ck_assert_ptr_null(strstr(list, "iptables "));
    rules = file_in(dir, "nftables-aks-user-0.nft");
    HAS(rules, "table ip kube-proxy {\n");
    HAS(rules, "\tchain nodeport-endpoints-check {\n");
    free(list); free(rules);
    rm_rf(dir);
}
END_TEST

START_TEST(render_eks)
{
    char dir[64];
    char *list = render("scenarios/eks-probe-404.yaml", "as-deployed", dir, sizeof dir);
    char *cfg = file_in(dir, "alb.haproxy.cfg");
    /* fail open: every target when none is healthy */
    HAS(cfg, "use_backend alb_all if { nbsrv(alb_members) eq 0 }");
    HAS(cfg, "backend alb_all");
    HAS(cfg, "hdr Host 10.0.64.254 hdr User-Agent ELB-HealthChecker/2.0");
    HAS(cfg, "http-check expect rstatus ^(200)$");
    HAS(cfg, "inter 10s fall 2 rise 2");
    HAS(cfg, "timeout check 5s");
    HAS(cfg, "bind 52.16.0.10:80");
    free(list);
    free(cfg);
    rm_rf(dir);
}
END_TEST

/* ---- flow fates ------------------------------------------------------------------------- */
static char *fates(const char *scenario, const char *variant, const char *flows, int *rc,
                   scn_diag_t *d)
{
    scn_t *s = load(scenario);
    FILE *in = fmemopen((void *)flows, strlen(flows), "r");
    char *out = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&out, &len);
    *rc = realchain_flow_fate(s, (size_t)scn_variant_find(s, variant), scn_seed(s), in, "flows",
                              o, d);
    fclose(o);
    fclose(in);
    scn_free(s);
    return out;
}

/* flow_fate on one flow ("NODE IFACE SRC DST") observed in obs */
static char *fate_of(const char *scenario, const char *variant, const char *flow,
                     const char *obs, int *rc)
{
    char flows[600];
    snprintf(flows, sizeof flows, "%s %s\n", flow, obs);
    scn_diag_t d;
    return fates(scenario, variant, flows, rc, &d);
}

/* The kernel's observation of flow and the simulator agree (with this DNAT, if given). */
static void agrees(const char *scenario, const char *variant, const char *flow,
                   const char *obs, const char *dnat)
{
    int rc;
    char *out = fate_of(scenario, variant, flow, obs, &rc);
    ck_assert_int_eq(rc, 0);
    HAS(out, "\"agree\":true");
    if (dnat) {
        char want[80];
        snprintf(want, sizeof want, "\"dnat\":\"%s\"", dnat);
        HAS(out, want);
    }
    free(out);
}

START_TEST(fate_simulated)
{
    scn_diag_t d;
    int rc;
    /* ETP Cluster: a nodePort from outside is DNATed to the gateway pod and masqueraded;
     * the LB IP (floating IP) the same way; a pod's ClusterIP flow is DNATed at random */
    char *out = fates("scenarios/aks-dsr.yaml", "as-deployed",
                      "aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575\n"
                      "# a comment\n\n"
                      "aks-user-0 eth0 203.0.113.10:40002 10.224.0.7:80\n"
                      "aks-user-0 veth1 10.244.1.2:40003 10.0.0.17:80\n", &rc, &d);
    ck_assert_int_eq(rc, 0);
    char *l2 = strchr(out, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    HAS(out, "\"verdict\":\"forward\",\"out\":\"eth0\",\"dnat\":\"10.244.0.3:80\",\"snat\":\"10.224.0.5:");
    HAS(out, "\"nat/KUBE-NODEPORTS#2\"");
    HAS(l2, "\"nat/KUBE-SERVICES#7\"");
    HAS(l3, "\"random\":[{\"chain\":\"KUBE-SVC-QKZVLQVEYDAHPSIX\"}]");
    HAS(l3, "\"choices\":[\"10.244.1.3:8080\",\"10.244.2.3:8080\"]");
    HAS(l3, "\"snat\":null");
    free(out);
    /* ETP Local on a node without a gateway pod: dropped by kube-proxy's filter rule */
    out = fates("scenarios/aks-dsr.yaml", "etp-local",
                "aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575\n", &rc, &d);
    ck_assert_int_eq(rc, 0);
    HAS(out, "\"verdict\":\"drop\"");
    HAS(out, "\"drop\":\"filter/KUBE-EXTERNAL-SERVICES#4\"");
    free(out);
    /* the same in nftables mode: the no-endpoint-nodeports map's drop; nft rules named by
     * their position in the chain, the verdict map's random choice among endpoint chains */
    out = fates("scenarios/aks-dsr.yaml", "etp-local-nftables",
                "aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575\n"
                "aks-user-0 veth1 10.244.1.2:40003 10.0.0.17:80\n", &rc, &d);
    ck_assert_int_eq(rc, 0);
    l2 = strchr(out, '\n') + 1;
    HAS(out, "\"verdict\":\"drop\",\"out\":null,\"dnat\":null,\"snat\":null,"
             "\"drop\":\"kube-proxy/nodeport-endpoints-check#1\",\"rules\":["
             "\"kube-proxy/filter-prerouting#1\",\"kube-proxy/nat-prerouting#1\","
             "\"kube-proxy/services#2\",\"kube-proxy/filter-input#1\","
             "\"kube-proxy/nodeport-endpoints-check#1\"]");
    HAS(l2, "\"random\":[{\"chain\":\"service-E3JNB5VW-sample-apps/sample-app-2/tcp/http\"}]");
    HAS(l2, "\"choices\":[\"10.244.1.3:8080\",\"10.244.2.3:8080\"]");
    free(out);
}
END_TEST

START_TEST(fate_bad_input)
{
    scn_diag_t d;
    int rc;
    char *out = fates("scenarios/aks-dsr.yaml", "as-deployed",
                      "aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575\n"
                      "aks-user-9 eth0 203.0.113.10:40001 10.224.0.5:30575\n", &rc, &d);
    ck_assert_int_eq(rc, LB_EINVAL);
    ck_assert_int_eq(d.line, 2);
    ck_assert_int_eq(d.col, 1);
    HAS(d.msg, "no node 'aks-user-9'");
    ck_assert_str_eq(out, "");                  /* nothing written on bad input */
    free(out);
    out = fates("scenarios/aks-dsr.yaml", "as-deployed",
                "aks-user-0 eth7 203.0.113.10:40001 10.224.0.5:30575\n", &rc, &d);
    ck_assert_int_eq(rc, LB_EINVAL);
    ck_assert_int_eq(d.col, 12);
    free(out);
    out = fates("scenarios/aks-dsr.yaml", "as-deployed",
                "aks-user-0 eth0 203.0.113.10 10.224.0.5:30575\n", &rc, &d);
    ck_assert_int_eq(rc, LB_EINVAL);
    HAS(d.msg, "bad source");
    free(out);
}
END_TEST

/* An observation as the real chain writes it: the node's rules (with the counters the
 * kernel would show after the flow's SYN) and its conntrack entry. */
static void observe(const char *path, const char *rules_file_scn, const char *variant,
                    const char *node, const char *const *taken, const char *ct)
{
    scn_t *s = load(rules_file_scn);
    scn_run_t *r = build(s, variant);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    nf_save(nf_get(scn_run_node(r, node)), m, true);
    fclose(m);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    /* counters: "[1:60]" on the rules named in taken ("nat/KUBE-SERVICES#7"), else 0 */
    char table[32] = "";
    static struct { char key[128]; int n; } seen[1024];
    int nseen = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '*') snprintf(table, sizeof table, "%s", line + 1);
        char *a = strstr(line, "-A ");
        if (line[0] != '[' || !a) {
            fprintf(f, "%s\n", line);
            continue;
        }
        char chain[64], key[128];
        sscanf(a + 3, "%63s", chain);
        snprintf(key, sizeof key, "%s/%s", table, chain);
        int k;
        for (k = 0; k < nseen && strcmp(seen[k].key, key); k++) {}
        if (k == nseen) {
            snprintf(seen[nseen].key, sizeof seen[nseen].key, "%s", key);
            seen[nseen++].n = 0;
        }
        char id[200];
        snprintf(id, sizeof id, "%s#%d", key, ++seen[k].n);
        bool hit = false;
        for (const char *const *t = taken; *t; t++) hit |= !strcmp(*t, id);
        fprintf(f, "[%d:%d] %s\n", hit, hit ? 60 : 0, a);
    }
    fprintf(f, "%s\n", ct);
    fclose(f);
    free(text);
    scn_run_free(r);
    scn_free(s);
}

/* A rule the kernel traced: its id and the verdict `nft monitor trace` shows. */
typedef struct traced {
    const char *id, *verdict;
} traced_t;

/* An observation of an nftables node as the real chain writes it: the node's tables as
 * `nft -a list table` prints them (each chain and rule with a handle: here counting down
 * from 900, so that handles and positions differ), then `nft -a monitor trace` lines for
 * the rules in taken (and for the test's own trace table, which is not listed), then the
 * conntrack entry. */
static void observe_nft(const char *path, const char *scenario, const char *variant,
                        const char *node, const traced_t *taken, const char *ct)
{
    scn_t *s = load(scenario);
    scn_run_t *r = build(s, variant);
    char *text = NULL, *trace = NULL;
    size_t len = 0, tlen = 0;
    FILE *m = open_memstream(&text, &len);
    nft_list(nf_get(scn_run_node(r, node)), m);
    fclose(m);
    FILE *f = fopen(path, "w"), *t = open_memstream(&trace, &tlen);
    ck_assert_ptr_nonnull(f);
    fprintf(t, "trace id 0badcafe ip lbchain-fates-trace prerouting packet: iif \"eth0\" "
               "tcp sport 40001 tcp flags == syn\n"
               "trace id 0badcafe ip lbchain-fates-trace prerouting rule tcp sport 40001 "
               "meta nftrace set 1 # handle 3 (verdict continue)\n"
               "trace id 0badcafe ip lbchain-fates-trace prerouting policy accept\n");
    char table[64] = "", chain[256] = "";
    int n = 0, handle = 900;
    bool in_chain = false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *w = line + strspn(line, "\t");
        char name[256];
        if (sscanf(w, "table ip %63s {", table) == 1) {
            fprintf(f, "%s # handle 1\n", line);
        } else if (sscanf(w, "chain %255s {", name) == 1) {
            snprintf(chain, sizeof chain, "%s", name);
            n = 0;
            in_chain = true;
            fprintf(f, "%s # handle %d\n", line, handle--);
        } else if (in_chain && !strcmp(w, "}")) {
            in_chain = false;
            fprintf(f, "%s\n", line);
        } else if (in_chain && strncmp(w, "type ", 5) && strncmp(w, "comment ", 8)) {
            int h = handle--;
            char id[400];
            snprintf(id, sizeof id, "%s/%s#%d", table, chain, ++n);
            fprintf(f, "%s # handle %d\n", line, h);
            for (const traced_t *k = taken; k->id; k++)
                if (!strcmp(k->id, id))
                    fprintf(t, "trace id 0badcafe ip %s %s rule %s # handle %d (verdict %s)\n",
                            table, chain, w, h, k->verdict);
        } else {
            fprintf(f, "%s\n", line);
        }
    }
    fclose(t);
    fprintf(f, "%s%s\n", trace, ct);
    fclose(f);
    free(text);
    free(trace);
    scn_run_free(r);
    scn_free(s);
}

START_TEST(fate_compared)
{
    char dir[] = "/tmp/lbchain-test-fate-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char obs[200], flows[600];
    snprintf(obs, sizeof obs, "%s/observed.txt", dir);
    /* the kernel took what the simulator takes for a nodePort flow from outside */
    static const char *const nodeport[] = {
        "nat/PREROUTING#1", "nat/KUBE-SERVICES#8", "nat/KUBE-NODEPORTS#2",
        "nat/KUBE-EXT-KMIM4RERSAS4SQZ5#1", "nat/KUBE-MARK-MASQ#1",
        "nat/KUBE-EXT-KMIM4RERSAS4SQZ5#2", "nat/KUBE-SVC-KMIM4RERSAS4SQZ5#2",
        "nat/KUBE-SEP-VYE6ALGM3Y2OS43H#2", "filter/FORWARD#1", "filter/FORWARD#2",
        "filter/KUBE-FORWARD#2", "nat/POSTROUTING#1", "nat/KUBE-POSTROUTING#2",
        "nat/KUBE-POSTROUTING#3", NULL };
    observe(obs, "scenarios/aks-dsr.yaml", "as-deployed", "aks-user-0", nodeport,
            "tcp      6 9 CLOSE src=203.0.113.10 dst=10.224.0.5 sport=40001 dport=30575 "
            "src=10.244.0.3 dst=10.224.0.5 sport=80 dport=2543 mark=0 use=1");
    snprintf(flows, sizeof flows, "aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575 %s\n", obs);
    scn_diag_t d;
    int rc;
    char *out = fates("scenarios/aks-dsr.yaml", "as-deployed", flows, &rc, &d);
    ck_assert_int_eq(rc, 0);
    HAS(out, "\"agree\":true");
    free(out);
    /* the same observation against ETP Local's rules: the simulator drops, the kernel did
     * not -- the differential says so */
    out = fates("scenarios/aks-dsr.yaml", "etp-local", flows, &rc, &d);
    ck_assert_int_eq(rc, 0);
    HAS(out, "\"agree\":false");
    HAS(out, "verdict: simulator drop, kernel forward");
    free(out);
    /* a random choice: the kernel picked the second endpoint; the simulator is rerun with
     * other seeds until it does too, and then agrees */
    static const char *const clusterip[] = {
        "nat/PREROUTING#1", "nat/KUBE-SERVICES#2", "nat/KUBE-SVC-QKZVLQVEYDAHPSIX#3",
        "nat/KUBE-SEP-KGDXFYY527PAQLF4#2", "filter/FORWARD#1", "filter/FORWARD#2",
        "filter/FORWARD#3", "filter/FORWARD#4", "nat/POSTROUTING#1", "nat/KUBE-POSTROUTING#1",
        NULL };
    observe(obs, "scenarios/aks-dsr.yaml", "as-deployed", "aks-user-0", clusterip,
            "tcp      6 9 CLOSE src=10.244.1.2 dst=10.0.0.17 sport=40003 dport=80 "
            "src=10.244.2.3 dst=10.244.1.2 sport=8080 dport=40003 mark=0 use=1");
    agrees("scenarios/aks-dsr.yaml", "as-deployed", "aks-user-0 veth1 10.244.1.2:40003 "
           "10.0.0.17:80", obs, "10.244.2.3:8080");
    /* an endpoint the rules do not allow: no seed makes the simulator choose it */
    observe(obs, "scenarios/aks-dsr.yaml", "as-deployed", "aks-user-0", clusterip,
            "tcp      6 9 CLOSE src=10.244.1.2 dst=10.0.0.17 sport=40003 dport=80 "
            "src=10.244.2.9 dst=10.244.1.2 sport=8080 dport=40003 mark=0 use=1");
    out = fate_of("scenarios/aks-dsr.yaml", "as-deployed", "aks-user-0 veth1 10.244.1.2:40003 "
                  "10.0.0.17:80", obs, &rc);
    HAS(out, "\"agree\":false");
    HAS(out, "kernel 10.244.2.9:8080");
    free(out);
    rm_rf(dir);
}
END_TEST

/* The same in nftables mode, from `nft -a monitor trace`: rules found by handle; a drop
 * through a verdict map; rules with verdict continue (a mark set) count as taken. */
START_TEST(fate_compared_nft)
{
    char dir[] = "/tmp/lbchain-test-fate-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char obs[200], flows[600];
    snprintf(obs, sizeof obs, "%s/observed.txt", dir);
    scn_diag_t d;
    int rc;
    /* ETP Local, a nodePort on a node without a gateway pod: no-endpoint-nodeports drops */
    static const traced_t nodeport[] = {
        {"kube-proxy/filter-prerouting#1", "jump firewall-check"},
        {"kube-proxy/nat-prerouting#1", "jump services"},
        {"kube-proxy/services#2", "goto external-VXK5TES7"},
        {"kube-proxy/filter-input#1", "jump nodeport-endpoints-check"},
        {"kube-proxy/nodeport-endpoints-check#1", "drop"}, {NULL, NULL} };
    observe_nft(obs, "scenarios/aks-dsr.yaml", "etp-local-nftables", "aks-user-0", nodeport, "");
    snprintf(flows, sizeof flows, "aks-user-0 eth0 203.0.113.10:40001 10.224.0.5:30575 %s\n", obs);
    char *out = fates("scenarios/aks-dsr.yaml", "etp-local-nftables", flows, &rc, &d);
    ck_assert_int_eq(rc, 0);
    HAS(out, "\"real\":{\"verdict\":\"drop\",\"out\":null,\"dnat\":null,\"snat\":null,"
             "\"drop\":\"kube-proxy/nodeport-endpoints-check#1\"");
    HAS(out, "\"agree\":true");
    free(out);
    /* loadBalancerSourceRanges, an allowed client: firewall-ips lets it on to the
     * external chain, which marks it for masquerade (a rule with verdict continue), and
     * masquerading takes it (the mark cleared: continue; masquerade) */
    static const traced_t lbip[] = {
        {"kube-proxy/filter-prerouting#1", "jump firewall-check"},
        {"kube-proxy/firewall-check#1", "goto firewall-SB3IP4X3"},
        {"kube-proxy/nat-prerouting#1", "jump services"},
        {"kube-proxy/services#1", "goto external-SB3IP4X3"},
        {"kube-proxy/external-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http#1", "jump mark-for-masquerade"},
        {"kube-proxy/mark-for-masquerade#1", "continue"},
        {"kube-proxy/external-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http#2", "goto service-SB3IP4X3"},
        {"kube-proxy/service-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http#2", "goto endpoint-NCSMW5HP"},
        {"kube-proxy/endpoint-NCSMW5HP-istio-ingress/mtkc-gateway-istio/tcp/http__10.244.0.3/80#2", "accept"},
        {"kube-proxy/filter-forward#1", "jump service-endpoints-check"},
        {"kube-proxy/filter-forward#2", "jump cluster-ips-check"},
        {"kube-proxy/nat-postrouting#1", "jump masquerading"},
        {"kube-proxy/masquerading#2", "continue"},
        {"kube-proxy/masquerading#3", "accept"}, {NULL, NULL} };
    const char *ct = "tcp      6 8 CLOSE src=203.0.113.10 dst=10.224.0.7 sport=40001 dport=80 "
                     "src=10.244.0.3 dst=10.224.0.5 sport=80 dport=64557 mark=0 use=1";
    observe_nft(obs, "scenarios/aks-source-ranges.yaml", "nftables", "aks-user-0", lbip, ct);
    snprintf(flows, sizeof flows, "aks-user-0 eth0 203.0.113.10:40001 10.224.0.7:80 %s\n", obs);
    out = fates("scenarios/aks-source-ranges.yaml", "nftables", flows, &rc, &d);
    ck_assert_int_eq(rc, 0);
    HAS(out, "\"agree\":true");
    HAS(out, "\"dnat\":\"10.244.0.3:80\",\"snat\":\"10.224.0.5:64557\"");
    free(out);
    /* without the mark set in the kernel's trace, the rule is the simulator's only */
    traced_t nomark[sizeof lbip / sizeof lbip[0]];
    size_t nn = 0;
    for (size_t i = 0; i < sizeof lbip / sizeof lbip[0]; i++)
        if (!lbip[i].id || strcmp(lbip[i].id, "kube-proxy/mark-for-masquerade#1") != 0)
            nomark[nn++] = lbip[i];
    observe_nft(obs, "scenarios/aks-source-ranges.yaml", "nftables", "aks-user-0", nomark, ct);
    out = fates("scenarios/aks-source-ranges.yaml", "nftables", flows, &rc, &d);
    HAS(out, "\"agree\":false");
    HAS(out, "rule kube-proxy/mark-for-masquerade#1 taken only by the simulator");
    free(out);
    /* the kernel's random choice through numgen's verdict map: found with another seed */
    static const traced_t clusterip[] = {
        {"kube-proxy/filter-prerouting#1", "jump firewall-check"},
        {"kube-proxy/nat-prerouting#1", "jump services"},
        {"kube-proxy/services#1", "goto service-E3JNB5VW"},
        {"kube-proxy/service-E3JNB5VW-sample-apps/sample-app-2/tcp/http#2", "goto endpoint-T265WDHP"},
        {"kube-proxy/endpoint-T265WDHP-sample-apps/sample-app-2/tcp/http__10.244.2.3/8080#2", "accept"},
        {"kube-proxy/filter-forward#1", "jump service-endpoints-check"},
        {"kube-proxy/filter-forward#2", "jump cluster-ips-check"},
        {"kube-proxy/nat-postrouting#1", "jump masquerading"},
        {"kube-proxy/masquerading#1", "return"}, {NULL, NULL} };
    observe_nft(obs, "scenarios/aks-dsr.yaml", "etp-local-nftables", "aks-user-0", clusterip,
                "tcp      6 9 CLOSE src=10.244.1.2 dst=10.0.0.17 sport=40003 dport=80 "
                "src=10.244.2.3 dst=10.244.1.2 sport=8080 dport=40003 mark=0 use=1");
    agrees("scenarios/aks-dsr.yaml", "etp-local-nftables", "aks-user-0 veth1 10.244.1.2:40003 "
           "10.0.0.17:80", obs, "10.244.2.3:8080");
    rm_rf(dir);
}
END_TEST

START_TEST(no_expect)
{
    /* aks-dsr's windows reach 120 s: shortened, it only loads without its expectations */
    scn_t *s;
    scn_diag_t d;
    scn_ignore_expectations(false);
    ck_assert_int_eq(scn_load("scenarios/aks-dsr.yaml", &s, &d, NULL), 0);
    ck_assert_int_eq(scn_override(s, "duration=20s", &d), LB_EINVAL);
    HAS(d.msg, "expectation window");
    scn_free(s);
    scn_ignore_expectations(true);
    ck_assert_int_eq(scn_load("scenarios/aks-dsr.yaml", &s, &d, NULL), 0);
    ck_assert_int_eq(scn_override(s, "duration=20s", &d), 0);
    scn_run_t *r;
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    scn_verdict_t *v;
    ck_assert_uint_eq(scn_run_check(r, &v), 0);
    lb_free(v);
    scn_run_free(r);
    scn_free(s);
    scn_ignore_expectations(false);
}
END_TEST

Suite *suite_realchain(void)
{
    Suite *s = suite_create("realchain");
    TCase *tc = tcase_create("describe");
    tcase_add_test(tc, describe_aks);
    tcase_add_test(tc, describe_eks);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, render_aks);
    tcase_add_test(tc, render_eks);
    suite_add_tcase(s, tc);
    tc = tcase_create("fate");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, fate_simulated);
    tcase_add_test(tc, fate_bad_input);
    tcase_add_test(tc, fate_compared);
    tcase_add_test(tc, fate_compared_nft);
    tcase_add_test(tc, no_expect);
    suite_add_tcase(s, tc);
    return s;
}

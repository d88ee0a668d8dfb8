/* test_kube_proxy.c -- kube-proxy's iptables rules and healthCheckNodePort: chain-name
 * hashes against real values, rule-by-rule text for ETP Cluster/Local with one and three
 * endpoints, local/remote/none, upstream proxier_test.go's TestOverallIPTablesRules
 * reproduced, the text loaded into a node's netfilter, and packets through nodes: DNAT +
 * MASQUERADE for Cluster, client IP kept or nf-drop for Local, the health-check server. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "kube_proxy.h"
#include "netfilter.h"
#include "http.h"
#include "tcp.h"
#include "util.h"

/* ---- text helpers ------------------------------------------------------------------------ */

/* Index of the line equal to `l` in text (0-based), or -1. */
#define HAS(text, l) ck_assert_msg(tu_line_at(text, l) >= 0, "missing line: %s\n--- in:\n%.2000s", l, text)
#define HASNT(text, l) ck_assert_msg(tu_line_at(text, l) < 0, "unexpected line: %s", l)

static int count_prefix(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, n)) c++;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return c;
}

/* The "-A chain ..." lines of one table ("*nat" section) of text, in order, each ending
 * in a newline. Caller frees. */
static char *chain_rules(const char *text, const char *table, const char *chain)
{
    char *out = calloc(1, strlen(text) + 1);
    char pfx[64];
    snprintf(pfx, sizeof pfx, "-A %s ", chain);
    bool in = false;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (p[0] == '*') in = k == strlen(table) + 1 && !memcmp(p + 1, table, k - 1);
        else if (in && !strncmp(p, pfx, strlen(pfx))) strncat(out, p, k), strcat(out, "\n");
        if (!e) break;
        p = e + 1;
    }
    return out;
}

/* Replaces every `from` in s (in place; to is not longer than from). */
static void replace_all(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    for (char *p = strstr(s, from); p; p = strstr(p + tl, from)) {
        memmove(p + tl, p + fl, strlen(p + fl) + 1);
        memcpy(p, to, tl);
    }
}

/* (not inlined: GCC 12 takes the memstream buffer for a dangling pointer then) */
__attribute__((noinline)) static char *save_text(net_node_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nf_save(nf_get(n), f, false);
    fclose(f);
    return buf;
}

/* ---- chain names -------------------------------------------------------------------------- */

/* An independent computation of portProtoHash: EVP SHA-256 and a bit-at-a-time RFC 4648
 * base32 encoder (Go's base32.StdEncoding), first 16 characters. */
static void hand_hash(const char *text, char out[17])
{
    unsigned char d[32];
    unsigned int dl = 0;
    ck_assert(EVP_Digest(text, strlen(text), d, &dl, EVP_sha256(), NULL) == 1);
    ck_assert_uint_eq(dl, 32);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for (int c = 0; c < 16; c++) {
        int v = 0;
        for (int b = 0; b < 5; b++) {
            int bit = c * 5 + b;
            v = v << 1 | ((d[bit / 8] >> (7 - bit % 8)) & 1);
        }
        out[c] = alpha[v];
    }
    out[16] = '\0';
}

/* kube-proxy writes the node's conntrack sysctls at start: 24 h established, 1 h
 * close-wait, nf_conntrack_max = max(32768 * cpus, 131072). */
START_TEST(conntrack_sysctls_applied)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *n = net_node_add(net, "n");
    const nf_params_t *p = nf_params(nf_get(n));
    ck_assert_int_eq(p->to_established, 432000 * SIM_S);
    kp_config_t kc;
    kp_config_default(&kc);
    kp_t *kp = kp_new(n, &kc);
    p = nf_params(nf_get(n));
    ck_assert_int_eq(p->to_established, 86400 * SIM_S);
    ck_assert_int_eq(p->to_close_wait, 3600 * SIM_S);
    ck_assert_int_eq(p->ct_max, 131072);
    ck_assert_int_eq(p->to_time_wait, 120 * SIM_S);     /* not kube-proxy's business */
    kp_free(kp);
    kc.node_cpus = 16;
    ck_assert_int_eq(kp_conntrack_max(&kc), 524288);
    kc.conntrack_max_per_core = 0;
    ck_assert_int_eq(kp_conntrack_max(&kc), 0);
    net_free(net);
    sim_free(sim);
}
END_TEST

START_TEST(chain_names_match_real_ones)
{
    char c[KP_CHAIN_MAX], spn[128];
    /* pkg/proxy/iptables/proxier_test.go (TestOverallIPTablesRules and friends) */
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SVC-", "ns1/svc1:p80", "tcp", NULL),
                     "KUBE-SVC-XPGD46QRK7WJZT7O");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SEP-", "ns1/svc1:p80", "tcp", "10.180.0.1:80"),
                     "KUBE-SEP-SXIVWICOYRO3J4NJ");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-EXT-", "ns2/svc2:p80", "tcp", NULL),
                     "KUBE-EXT-GNZBNJ2PO5MGZ6GT");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SVL-", "ns2/svc2:p80", "tcp", NULL),
                     "KUBE-SVL-GNZBNJ2PO5MGZ6GT");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SEP-", "ns2/svc2:p80", "tcp", "10.180.0.2:80"),
                     "KUBE-SEP-RS4RBKLTHTF2IUXJ");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-FW-", "ns5/svc5:p80", "tcp", NULL),
                     "KUBE-FW-NUKIZ6OKUXPJNT4C");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SEP-", "ns4/svc4:p80", "tcp", "10.180.0.5:80"),
                     "KUBE-SEP-C6EBXVWJJZMIWKLZ");
    /* chains every real cluster has (iptables-save / nft list ruleset of kubeadm nodes):
     * kubernetes:https and kube-dns */
    kp_service_port_name(spn, sizeof spn, "default", "kubernetes", "https");
    ck_assert_str_eq(spn, "default/kubernetes:https");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SVC-", spn, "tcp", NULL), "KUBE-SVC-NPX46M4PTMTKRN6Y");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SVC-", "kube-system/kube-dns:dns", "udp", NULL),
                     "KUBE-SVC-TCOU7JCQXEZGVUNU");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SVC-", "kube-system/kube-dns:dns-tcp", "tcp", NULL),
                     "KUBE-SVC-ERIFXISQEP7F7OF4");
    /* unnamed port: no colon (ServicePortName.String / fmtPortName) */
    kp_service_port_name(spn, sizeof spn, "default", "web", "");
    ck_assert_str_eq(spn, "default/web");
    kp_service_port_name(spn, sizeof spn, "default", "web", NULL);
    ck_assert_str_eq(spn, "default/web");
    /* by hand, from the algorithm (also Python: base64.b32encode(sha256(...))[:16]) */
    char h[17];
    hand_hash("istio-ingress/mtkc-gateway-istio:httptcp", h);
    ck_assert_str_eq(h, "KMIM4RERSAS4SQZ5");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SVC-", "istio-ingress/mtkc-gateway-istio:http", "tcp",
                                   NULL), "KUBE-SVC-KMIM4RERSAS4SQZ5");
    hand_hash("istio-ingress/mtkc-gateway-istio:httptcp10.244.1.10:8080", h);
    ck_assert_str_eq(h, "VZ7DE4AOO3I5IDWB");
    ck_assert_str_eq(kp_chain_name(c, "KUBE-SEP-", "istio-ingress/mtkc-gateway-istio:http", "tcp",
                                   "10.244.1.10:8080"), "KUBE-SEP-VZ7DE4AOO3I5IDWB");
}
END_TEST

/* ---- rule text ------------------------------------------------------------------------------ */

#define GW_SPN "istio-ingress/mtkc-gateway-istio:http"
#define GW_SVC "KUBE-SVC-KMIM4RERSAS4SQZ5"
#define GW_SVL "KUBE-SVL-KMIM4RERSAS4SQZ5"
#define GW_EXT "KUBE-EXT-KMIM4RERSAS4SQZ5"

static kp_t *gw_proxy(net_node_t *node)
{
    kp_config_t c;
    kp_config_default(&c);
    c.node_name = "aks-user-0";
    c.cluster_cidr = (kp_cidr_t){ tu_ip("10.244.0.0"), 16 };
    return kp_new(node, &c);
}

static uint32_t gw_lb;
static void gw_service(kp_service_port_t *sp, kp_policy_t etp, const kp_endpoint_t *eps,
                       size_t n)
{
    gw_lb = tu_ip("10.240.0.100");
    memset(sp, 0, sizeof *sp);
    sp->ns = "istio-ingress";
    sp->name = "mtkc-gateway-istio";
    sp->port_name = "http";
    sp->cluster_ip = tu_ip("10.0.114.5");
    sp->port = 80;
    sp->node_port = 31380;
    sp->lb_ips = &gw_lb;
    sp->n_lb_ips = 1;
    sp->external_policy = etp;
    sp->health_check_node_port = etp == KP_POLICY_LOCAL ? 32100 : 0;
    sp->endpoints = eps;
    sp->n_endpoints = n;
}

static kp_endpoint_t ep(const char *ip, const char *node)
{
    return (kp_endpoint_t){ tu_ip(ip), 8080, node, true, true, false };
}

/* gw_service into sp, set on kp (which must accept it). */
static void gw_set(kp_t *kp, kp_service_port_t *sp, kp_policy_t etp, const kp_endpoint_t *eps,
                   size_t n)
{
    gw_service(sp, etp, eps, n);
    ck_assert_int_eq(kp_service_set(kp, sp), 0);
}

/* The restore text (lb_free it) once gw_set has set the gateway service on kp. */
static char *gw_text(kp_t *kp, kp_policy_t etp, const kp_endpoint_t *eps, size_t n)
{
    kp_service_port_t sp;
    gw_set(kp, &sp, etp, eps, n);
    return kp_restore_text(kp);
}

/* kp_sync that must succeed. */
static void sync_ok(kp_t *kp)
{
    char err[256];
    ck_assert_msg(kp_sync(kp, err, sizeof err) == 0, "%s", err);
}

/* The whole restore text of ETP Cluster with one remote endpoint, written out by hand from
 * proxier.go syncProxyRules (chain lines first, then rules in the order it writes them). */
START_TEST(cluster_one_remote_endpoint_exact)
{
    kp_t *kp = gw_proxy(NULL);
    kp_endpoint_t e[1] = { ep("10.244.1.10", "aks-user-1") };
    char *t = gw_text(kp, KP_POLICY_CLUSTER, e, 1);
    const char *want =
        "*filter\n"
        ":KUBE-SERVICES - [0:0]\n"
        ":KUBE-EXTERNAL-SERVICES - [0:0]\n"
        ":KUBE-FORWARD - [0:0]\n"
        ":KUBE-NODEPORTS - [0:0]\n"
        ":KUBE-PROXY-FIREWALL - [0:0]\n"
        ":KUBE-FIREWALL - [0:0]\n"
        "-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x00004000/0x00004000 -j ACCEPT\n"
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "COMMIT\n"
        "*nat\n"
        ":KUBE-SERVICES - [0:0]\n"
        ":KUBE-NODEPORTS - [0:0]\n"
        ":KUBE-POSTROUTING - [0:0]\n"
        ":KUBE-MARK-MASQ - [0:0]\n"
        ":" GW_EXT " - [0:0]\n"
        ":" GW_SVC " - [0:0]\n"
        ":KUBE-SEP-VZ7DE4AOO3I5IDWB - [0:0]\n"
        "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN\n"
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000\n"
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n"
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000\n"
        "-A KUBE-SERVICES -m comment --comment \"" GW_SPN " cluster IP\" -m tcp -p tcp -d 10.0.114.5 --dport 80 -j " GW_SVC "\n"
        "-A KUBE-SERVICES -m comment --comment \"" GW_SPN " loadbalancer IP\" -m tcp -p tcp -d 10.240.0.100 --dport 80 -j " GW_EXT "\n"
        "-A KUBE-NODEPORTS -m comment --comment " GW_SPN " -m tcp -p tcp --dport 31380 -j " GW_EXT "\n"
        "-A " GW_SVC " -m comment --comment \"" GW_SPN " cluster IP\" -m tcp -p tcp -d 10.0.114.5 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ\n"
        "-A " GW_EXT " -m comment --comment \"masquerade traffic for " GW_SPN " external destinations\" -j KUBE-MARK-MASQ\n"
        "-A " GW_EXT " -j " GW_SVC "\n"
        "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> 10.244.1.10:8080\" -j KUBE-SEP-VZ7DE4AOO3I5IDWB\n"
        "-A KUBE-SEP-VZ7DE4AOO3I5IDWB -m comment --comment " GW_SPN " -s 10.244.1.10 -j KUBE-MARK-MASQ\n"
        "-A KUBE-SEP-VZ7DE4AOO3I5IDWB -m comment --comment " GW_SPN " -m tcp -p tcp -j DNAT --to-destination 10.244.1.10:8080\n"
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n"
        "COMMIT\n";
    tu_assert_text_eq(t, want);
    lb_free(t);
    kp_free(kp);
}
END_TEST

/* ETP Local, three endpoints of which one is on this node: KUBE-SVC spreads over all three
 * in "ip:port" string order with 1/3, 1/2, then unconditional; KUBE-SVL has the local one;
 * KUBE-EXT short-circuits pods and the host, then falls to KUBE-SVL. */
START_TEST(local_three_endpoints_rules)
{
    kp_t *kp = gw_proxy(NULL);
    kp_endpoint_t e[3] = { ep("10.244.2.7", "aks-user-0"), ep("10.244.10.3", "aks-user-2"),
                           ep("10.244.1.9", "aks-user-1") };
    char *t = gw_text(kp, KP_POLICY_LOCAL, e, 3);
    char sep[3][KP_CHAIN_MAX], l[512];
    const char *order[3] = { "10.244.1.9:8080", "10.244.10.3:8080", "10.244.2.7:8080" };
    for (int i = 0; i < 3; i++) kp_chain_name(sep[i], "KUBE-SEP-", GW_SPN, "tcp", order[i]);

    /* KUBE-SVC: string order (10.244.1.9 < 10.244.10.3 < 10.244.2.7), probabilities %0.10f */
    snprintf(l, sizeof l, "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> %s\" -m statistic "
             "--mode random --probability 0.3333333333 -j %s", order[0], sep[0]);
    int i0 = tu_line_at(t, l);
    snprintf(l, sizeof l, "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> %s\" -m statistic "
             "--mode random --probability 0.5000000000 -j %s", order[1], sep[1]);
    int i1 = tu_line_at(t, l);
    snprintf(l, sizeof l, "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> %s\" -j %s",
             order[2], sep[2]);
    int i2 = tu_line_at(t, l);
    ck_assert_msg(i0 >= 0 && i1 == i0 + 1 && i2 == i1 + 1, "KUBE-SVC rules %d %d %d in:\n%.2000s",
                  i0, i1, i2, t);
    /* KUBE-SVL: only the local endpoint, unconditional */
    snprintf(l, sizeof l, "-A " GW_SVL " -m comment --comment \"" GW_SPN " -> 10.244.2.7:8080\" "
             "-j %s", sep[2]);
    HAS(t, l);
    ck_assert_int_eq(count_prefix(t, "-A " GW_SVL " "), 1);
    ck_assert_int_eq(count_prefix(t, "-A " GW_SVC " "), 4);     /* masq + 3 endpoints */
    /* KUBE-EXT for Local, in this order */
    const char *ext[4] = {
        "-A " GW_EXT " -m comment --comment \"pod traffic for " GW_SPN " external destinations\" -s 10.244.0.0/16 -j " GW_SVC,
        "-A " GW_EXT " -m comment --comment \"masquerade LOCAL traffic for " GW_SPN " external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        "-A " GW_EXT " -m comment --comment \"route LOCAL traffic for " GW_SPN " external destinations\" -m addrtype --src-type LOCAL -j " GW_SVC,
        "-A " GW_EXT " -j " GW_SVL,
    };
    int first = tu_line_at(t, ext[0]);
    ck_assert_int_ge(first, 0);
    for (int i = 1; i < 4; i++) ck_assert_int_eq(tu_line_at(t, ext[i]), first + i);
    ck_assert_int_eq(count_prefix(t, "-A " GW_EXT " "), 4);
    HASNT(t, "-A " GW_EXT " -m comment --comment \"masquerade traffic for " GW_SPN
          " external destinations\" -j KUBE-MARK-MASQ");
    /* every endpoint has its SEP chain (allLocallyReachableEndpoints = cluster endpoints) */
    for (int i = 0; i < 3; i++) {
        snprintf(l, sizeof l, ":%s - [0:0]", sep[i]);
        HAS(t, l);
    }
    HAS(t, "-A KUBE-NODEPORTS -m comment --comment \"" GW_SPN " health check node port\" -m tcp -p tcp --dport 32100 -j ACCEPT");
    ck_assert_ptr_null(strstr(t, "has no"));
    lb_free(t);
    kp_free(kp);
}
END_TEST

/* ETP Local on a node without a local endpoint: KUBE-EXT keeps the short-circuits but has
 * no jump to KUBE-SVL (which does not exist); the filter table DROPs external traffic
 * with the real comment; the health-check port is still accepted. */
START_TEST(local_no_local_endpoint_rules)
{
    kp_t *kp = gw_proxy(NULL);
    kp_endpoint_t e[1] = { ep("10.244.1.10", "aks-user-1") };
    char *t = gw_text(kp, KP_POLICY_LOCAL, e, 1);
    HAS(t, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"" GW_SPN " has no local endpoints\" -m tcp -p tcp -d 10.240.0.100 --dport 80 -j DROP");
    HAS(t, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"" GW_SPN " has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 31380 -j DROP");
    ck_assert_int_eq(count_prefix(t, "-A KUBE-EXTERNAL-SERVICES "), 2);
    ck_assert_ptr_null(strstr(t, "KUBE-SVL-"));
    ck_assert_int_eq(count_prefix(t, "-A " GW_EXT " "), 3);
    HASNT(t, "-A " GW_EXT " -j " GW_SVL);
    /* the clusterIP still goes to the cluster-wide chain (internalTrafficPolicy Cluster) */
    HAS(t, "-A KUBE-SERVICES -m comment --comment \"" GW_SPN " cluster IP\" -m tcp -p tcp -d 10.0.114.5 --dport 80 -j " GW_SVC);
    HAS(t, "-A KUBE-SERVICES -m comment --comment \"" GW_SPN " loadbalancer IP\" -m tcp -p tcp -d 10.240.0.100 --dport 80 -j " GW_EXT);
    HAS(t, "-A KUBE-NODEPORTS -m comment --comment \"" GW_SPN " health check node port\" -m tcp -p tcp --dport 32100 -j ACCEPT");
    lb_free(t);
    kp_free(kp);
}
END_TEST

/* No endpoints anywhere: no nat chains for the service, REJECT in the filter table for the
 * clusterIP (KUBE-SERVICES), the LB IP and the NodePort (KUBE-EXTERNAL-SERVICES). Same for
 * Local. */
START_TEST(no_endpoints_reject)
{
    for (int pol = 0; pol < 2; pol++) {
        kp_t *kp = gw_proxy(NULL);
        char *t = gw_text(kp, pol ? KP_POLICY_LOCAL : KP_POLICY_CLUSTER, NULL, 0);
        HAS(t, "-A KUBE-SERVICES -m comment --comment \"" GW_SPN " has no endpoints\" -m tcp -p tcp -d 10.0.114.5 --dport 80 -j REJECT");
        HAS(t, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"" GW_SPN " has no endpoints\" -m tcp -p tcp -d 10.240.0.100 --dport 80 -j REJECT");
        HAS(t, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"" GW_SPN " has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 31380 -j REJECT");
        ck_assert_ptr_null(strstr(t, "KMIM4RERSAS4SQZ5"));
        ck_assert_ptr_null(strstr(t, "KUBE-SEP-"));
        ck_assert_int_eq(count_prefix(t, "-A KUBE-SERVICES "), 2);   /* REJECT + nodeports */
        lb_free(t);
        kp_free(kp);
    }
}
END_TEST

/* Endpoint conditions (topology.go CategorizeEndpoints): unready endpoints are left out;
 * with none ready anywhere the serving+terminating ones are used; for Local, a local
 * terminating endpoint serves when no local one is ready. */
START_TEST(terminating_fallback)
{
    kp_t *kp = gw_proxy(NULL);
    kp_endpoint_t e[3] = { ep("10.244.1.10", "aks-user-1"), ep("10.244.2.10", "aks-user-0"),
                           ep("10.244.3.10", "aks-user-2") };
    e[2].ready = e[2].serving = false;                     /* not ready: never used */
    char *t = gw_text(kp, KP_POLICY_CLUSTER, e, 3);
    ck_assert_int_eq(count_prefix(t, "-A " GW_SVC " "), 3);   /* masq + 2 */
    ck_assert_ptr_null(strstr(t, "10.244.3.10"));
    lb_free(t);
    /* everything terminating: 1.10 still serving, 2.10 not */
    ck_assert_int_eq(kp_endpoint_conditions(kp, tu_ip("10.244.1.10"), false, true, true), 1);
    ck_assert_int_eq(kp_endpoint_conditions(kp, tu_ip("10.244.2.10"), false, false, true), 1);
    ck_assert_int_eq(kp_endpoint_conditions(kp, tu_ip("10.244.2.10"), false, false, true), 0);
    t = kp_restore_text(kp);
    HAS(t, "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> 10.244.1.10:8080\" -j KUBE-SEP-VZ7DE4AOO3I5IDWB");
    ck_assert_int_eq(count_prefix(t, "-A " GW_SVC " "), 2);
    ck_assert_ptr_null(strstr(t, "has no"));
    lb_free(t);
    /* Local: the local endpoint terminating but serving is used by KUBE-SVL */
    kp_service_port_t sp;
    gw_service(&sp, KP_POLICY_LOCAL, e, 3);
    sp.endpoints = (kp_endpoint_t[]){ ep("10.244.1.10", "aks-user-1"),
                                      { tu_ip("10.244.2.10"), 8080, "aks-user-0", false, true, true } };
    sp.n_endpoints = 2;
    ck_assert_int_eq(kp_service_set(kp, &sp), 0);
    t = kp_restore_text(kp);
    char sep[KP_CHAIN_MAX], l[256];
    kp_chain_name(sep, "KUBE-SEP-", GW_SPN, "tcp", "10.244.2.10:8080");
    snprintf(l, sizeof l, "-A " GW_SVL " -m comment --comment \"" GW_SPN " -> 10.244.2.10:8080\" -j %s", sep);
    HAS(t, l);
    snprintf(l, sizeof l, ":%s - [0:0]", sep);          /* merged into the SEP chains */
    HAS(t, l);
    HAS(t, "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> 10.244.1.10:8080\" -j KUBE-SEP-VZ7DE4AOO3I5IDWB");
    lb_free(t);
    kp_free(kp);
}
END_TEST

/* ProxyTerminatingEndpoints off (kube-proxy before 1.26): a local endpoint that is only
 * serving+terminating is not used -- ETP Local has no local endpoint and drops; with no
 * ready endpoint anywhere, Cluster has none and rejects. */
START_TEST(terminating_gate_off)
{
    kp_config_t c;
    kp_config_default(&c);
    ck_assert(c.terminating_endpoints);
    c.node_name = "aks-user-0";
    c.cluster_cidr = (kp_cidr_t){ tu_ip("10.244.0.0"), 16 };
    c.terminating_endpoints = false;
    kp_t *kp = kp_new(NULL, &c);
    kp_service_port_t sp;
    kp_endpoint_t e[2] = { ep("10.244.1.10", "aks-user-1"),
                           { tu_ip("10.244.2.10"), 8080, "aks-user-0", false, true, true } };
    gw_service(&sp, KP_POLICY_LOCAL, e, 2);
    ck_assert_int_eq(kp_service_set(kp, &sp), 0);
    char *t = kp_restore_text(kp);
    ck_assert_ptr_null(strstr(t, "10.244.2.10"));
    ck_assert_ptr_nonnull(strstr(t, "has no local endpoints"));
    lb_free(t);
    /* everything terminating: nothing to use anywhere -> REJECT */
    ck_assert_int_eq(kp_endpoint_conditions(kp, tu_ip("10.244.1.10"), false, true, true), 1);
    t = kp_restore_text(kp);
    ck_assert_ptr_nonnull(strstr(t, "has no endpoints"));
    ck_assert_ptr_null(strstr(t, "-j KUBE-SEP-"));
    lb_free(t);
    kp_free(kp);
}
END_TEST

/* Configuration knobs: masquerade bit, random-fully, be_liberal, localhostNodePorts,
 * nodePortAddresses, masqueradeAll, no clusterCIDR, large-cluster mode. */
START_TEST(config_variants)
{
    kp_config_t c;
    kp_config_default(&c);
    ck_assert_int_eq(c.masquerade_bit, 14);
    c.node_name = "n";
    c.masquerade_bit = 15;
    c.random_fully = false;
    c.conntrack_tcp_be_liberal = true;
    c.localhost_nodeports = false;
    c.masquerade_all = true;
    kp_t *kp = kp_new(NULL, &c);
    kp_endpoint_t e[1] = { ep("10.244.1.10", "x") };
    kp_service_port_t sp;
    gw_service(&sp, KP_POLICY_CLUSTER, e, 1);
    kp_service_set(kp, &sp);
    char *t = kp_restore_text(kp);
    HAS(t, "-A KUBE-POSTROUTING -m mark ! --mark 0x00008000/0x00008000 -j RETURN");
    HAS(t, "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE");
    HASNT(t, "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP");
    ck_assert_ptr_null(strstr(t, "KUBE-FIREWALL"));
    HAS(t, "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS");
    HAS(t, "-A " GW_SVC " -m comment --comment \"" GW_SPN " cluster IP\" -m tcp -p tcp -d 10.0.114.5 --dport 80 -j KUBE-MARK-MASQ");
    lb_free(t);
    kp_free(kp);

    /* nodePortAddresses 10.240.0.0/16: one KUBE-SERVICES tail rule per matching node IP;
     * no clusterCIDR: no "! -s" masquerade rule */
    tu_pair_t p;
    tu_pair_new(&p, 1, SIM_MS, 0, 0);
    net_iface_add(p.a, "eth1", tu_ip("10.240.0.4"), 16);
    kp_cidr_t np = { tu_ip("10.240.0.0"), 16 };
    kp_config_default(&c);
    c.node_name = "a";
    c.nodeport_addresses = &np;
    c.n_nodeport_addresses = 1;
    kp = kp_new(p.a, &c);
    kp_service_set(kp, &sp);
    t = kp_restore_text(kp);
    HAS(t, "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -d 10.240.0.4 -j KUBE-NODEPORTS");
    ck_assert_int_eq(count_prefix(t, "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports"), 1);
    ck_assert_ptr_null(strstr(t, "KUBE-FIREWALL"));       /* 127.0.0.1 not in the list */
    ck_assert_int_eq(count_prefix(t, "-A " GW_SVC " "), 1);
    lb_free(t);
    kp_free(kp);
    tu_pair_free(&p);

    /* more than 1000 endpoints: per-endpoint comments go */
    kp_config_default(&c);
    c.node_name = "n";
    kp = kp_new(NULL, &c);
    size_t n = KP_LARGE_CLUSTER_ENDPOINTS + 1;
    kp_endpoint_t *many = calloc(n, sizeof *many);
    for (size_t i = 0; i < n; i++)
        many[i] = (kp_endpoint_t){ tu_ip("10.0.0.0") + (uint32_t)i + 1, 80, "x", true, true, false };
    gw_service(&sp, KP_POLICY_CLUSTER, many, n);
    kp_service_set(kp, &sp);
    t = kp_restore_text(kp);
    char sep[KP_CHAIN_MAX], l[256];
    kp_chain_name(sep, "KUBE-SEP-", GW_SPN, "tcp", "10.0.0.1:80");
    snprintf(l, sizeof l, "-A %s -s 10.0.0.1 -j KUBE-MARK-MASQ", sep);
    HAS(t, l);
    ck_assert_ptr_null(strstr(t, " -> 10.0.0.1:80"));
    lb_free(t);
    free(many);
    kp_free(kp);
}
END_TEST

/* ---- upstream TestOverallIPTablesRules ---------------------------------------------------- */

/* proxier_test.go TestOverallIPTablesRules expected output (kubernetes master), with the two
 * 1.30 additions taken out for 1.29: `-m nfacct` on the INVALID rule and the localhost
 * NodePort rules. Its fake proxier writes the mark as "0x4000" and lacks --random-fully. */
static const char upstream_expected[] =
    "*filter\n"
    ":KUBE-NODEPORTS - [0:0]\n"
    ":KUBE-SERVICES - [0:0]\n"
    ":KUBE-EXTERNAL-SERVICES - [0:0]\n"
    ":KUBE-FIREWALL - [0:0]\n"
    ":KUBE-FORWARD - [0:0]\n"
    ":KUBE-PROXY-FIREWALL - [0:0]\n"
    "-A KUBE-NODEPORTS -m comment --comment \"ns2/svc2:p80 health check node port\" -m tcp -p tcp --dport 30000 -j ACCEPT\n"
    "-A KUBE-SERVICES -m comment --comment \"ns6/svc6:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT\n"
    "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP\n"
    "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP\n"
    "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP\n"
    "-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n"
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A KUBE-PROXY-FIREWALL -m comment --comment \"ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP\n"
    "COMMIT\n"
    "*nat\n"
    ":KUBE-NODEPORTS - [0:0]\n"
    ":KUBE-SERVICES - [0:0]\n"
    ":KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]\n"
    ":KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]\n"
    ":KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]\n"
    ":KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]\n"
    ":KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]\n"
    ":KUBE-MARK-MASQ - [0:0]\n"
    ":KUBE-POSTROUTING - [0:0]\n"
    ":KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]\n"
    ":KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]\n"
    ":KUBE-SEP-OYPFS5VJICHGATKP - [0:0]\n"
    ":KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]\n"
    ":KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]\n"
    ":KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]\n"
    ":KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]\n"
    ":KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]\n"
    ":KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]\n"
    ":KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]\n"
    ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n"
    "-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
    "-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK\n"
    "-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n"
    "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
    "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
    "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 external IP\" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
    "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 loadbalancer IP\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
    "-A KUBE-SERVICES -m comment --comment \"ns3/svc3:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK\n"
    "-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK\n"
    "-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 external IP\" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK\n"
    "-A KUBE-SERVICES -m comment --comment \"ns5/svc5:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C\n"
    "-A KUBE-SERVICES -m comment --comment \"ns5/svc5:p80 loadbalancer IP\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C\n"
    "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n"
    "-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment \"masquerade traffic for ns4/svc4:p80 external destinations\" -j KUBE-MARK-MASQ\n"
    "-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK\n"
    "-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"pod traffic for ns2/svc2:p80 external destinations\" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
    "-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"masquerade LOCAL traffic for ns2/svc2:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n"
    "-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"route LOCAL traffic for ns2/svc2:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
    "-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment \"masquerade traffic for ns5/svc5:p80 external destinations\" -j KUBE-MARK-MASQ\n"
    "-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C\n"
    "-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment \"masquerade traffic for ns3/svc3:p80 external destinations\" -j KUBE-MARK-MASQ\n"
    "-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK\n"
    "-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 loadbalancer IP\" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n"
    "-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment \"other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL\"\n"
    "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
    "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
    "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n"
    "-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80\n"
    "-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80\n"
    "-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80\n"
    "-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80\n"
    "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80\n"
    "-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80\n"
    "-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 -> 10.180.0.4:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC\n"
    "-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 -> 10.180.0.5:80\" -j KUBE-SEP-C6EBXVWJJZMIWKLZ\n"
    "-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -j KUBE-SEP-RS4RBKLTHTF2IUXJ\n"
    "-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 -> 10.180.0.3:80\" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN\n"
    "-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 -> 10.180.0.3:80\" -j KUBE-SEP-I77PXRDZVX7PMWMN\n"
    "-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment \"ns3/svc3:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment \"ns3/svc3:p80 -> 10.180.0.3:80\" -j KUBE-SEP-OYPFS5VJICHGATKP\n"
    "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ\n"
    "COMMIT\n";

/* The upstream test's six services (makeTestService / makeTestEndpointSlice calls). */
static void upstream_services(kp_t *kp)
{
    static uint32_t ext2, lb2, ext4, lb5;
    ext2 = tu_ip("192.168.99.22");
    lb2 = tu_ip("1.2.3.4");
    ext4 = tu_ip("192.168.99.33");
    lb5 = tu_ip("5.6.7.8");
    static kp_cidr_t range5;
    range5 = (kp_cidr_t){ tu_ip("203.0.113.0"), 25 };
    kp_endpoint_t e1 = { tu_ip("10.180.0.1"), 80, NULL, true, true, false };
    kp_endpoint_t e2 = { tu_ip("10.180.0.2"), 80, NULL, true, true, false };  /* no nodeName */
    kp_endpoint_t e3 = { tu_ip("10.180.0.3"), 80, NULL, true, true, false };
    kp_endpoint_t e4[2] = { { tu_ip("10.180.0.4"), 80, NULL, true, true, false },
                            { tu_ip("10.180.0.5"), 80, "test-node", true, true, false } };
    kp_service_port_t s[6] = {
        { .ns = "ns1", .name = "svc1", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.41"),
          .port = 80, .endpoints = &e1, .n_endpoints = 1 },
        { .ns = "ns2", .name = "svc2", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.42"),
          .port = 80, .node_port = 3001, .lb_ips = &lb2, .n_lb_ips = 1, .external_ips = &ext2,
          .n_external_ips = 1, .external_policy = KP_POLICY_LOCAL, .health_check_node_port = 30000,
          .endpoints = &e2, .n_endpoints = 1 },
        { .ns = "ns3", .name = "svc3", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.43"),
          .port = 80, .node_port = 3003, .endpoints = &e3, .n_endpoints = 1 },
        { .ns = "ns4", .name = "svc4", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.44"),
          .port = 80, .external_ips = &ext4, .n_external_ips = 1, .endpoints = e4, .n_endpoints = 2 },
        { .ns = "ns5", .name = "svc5", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.45"),
          .port = 80, .node_port = 3002, .lb_ips = &lb5, .n_lb_ips = 1,
          .health_check_node_port = 30000,       /* ETP Cluster: ignored, as kube-proxy does */
          .lb_source_ranges = &range5, .n_lb_source_ranges = 1, .affinity_client_ip = true,
          .affinity_timeout_s = 10800, .endpoints = &e3, .n_endpoints = 1 },
        { .ns = "ns6", .name = "svc6", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.46"),
          .port = 80 },
    };
    for (int i = 0; i < 6; i++) ck_assert_int_eq(kp_service_set(kp, &s[i]), 0);
}

START_TEST(upstream_overall_rules)
{
    kp_config_t c;
    kp_config_default(&c);
    c.node_name = "test-node";
    c.cluster_cidr = (kp_cidr_t){ tu_ip("10.0.0.0"), 8 };
    c.random_fully = false;
    kp_t *kp = kp_new(NULL, &c);
    upstream_services(kp);
    char *t = kp_restore_text(kp);
    replace_all(t, "0x00004000", "0x4000");
    /* same chain declarations per table, same rules in the same order per chain (upstream
     * sorts chains by name; within KUBE-SERVICES/KUBE-NODEPORTS by service, which is our
     * insertion order here) */
    const char *tables[2] = { "filter", "nat" };
    for (const char *p = upstream_expected; *p;) {
        const char *e = strchr(p, '\n');
        char l[512];
        snprintf(l, sizeof l, "%.*s", (int)(e - p), p);
        if (l[0] == ':') HAS(t, l);
        p = e + 1;
    }
    ck_assert_int_eq(count_prefix(t, ":"), count_prefix(upstream_expected, ":"));
    ck_assert_int_eq(count_prefix(t, "-A "), count_prefix(upstream_expected, "-A "));
    const char *chains[] = { "KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES",
        "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-MARK-MASQ",
        "KUBE-POSTROUTING", "KUBE-EXT-4SW47YFZTEDKD3PK", "KUBE-EXT-GNZBNJ2PO5MGZ6GT",
        "KUBE-EXT-NUKIZ6OKUXPJNT4C", "KUBE-EXT-X27LE4BHSL4DOUIK", "KUBE-FW-NUKIZ6OKUXPJNT4C",
        "KUBE-SEP-C6EBXVWJJZMIWKLZ", "KUBE-SEP-I77PXRDZVX7PMWMN", "KUBE-SEP-OYPFS5VJICHGATKP",
        "KUBE-SEP-RS4RBKLTHTF2IUXJ", "KUBE-SEP-SXIVWICOYRO3J4NJ", "KUBE-SEP-UKSFD7AGPMPPLUHC",
        "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SVC-GNZBNJ2PO5MGZ6GT", "KUBE-SVC-NUKIZ6OKUXPJNT4C",
        "KUBE-SVC-X27LE4BHSL4DOUIK", "KUBE-SVC-XPGD46QRK7WJZT7O" };
    for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++)
        for (int k = 0; k < 2; k++) {
            char *want = chain_rules(upstream_expected, tables[k], chains[i]);
            char *got = chain_rules(t, tables[k], chains[i]);
            ck_assert_msg(!strcmp(want, got), "%s %s:\nwant:\n%.1500sgot:\n%.1500s", tables[k], chains[i],
                          want, got);
            free(want);
            free(got);
        }
    lb_free(t);

    /* and it loads: iptables-restore accepts it (no jump rules: plain restore) */
    tu_pair_t p;
    tu_pair_new(&p, 1, SIM_MS, 0, 0);
    t = kp_restore_text(kp);
    char err[256];
    ck_assert_msg(nf_restore(nf_get(p.a), t, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(nf_rule_count(nf_get(p.a)), count_prefix(t, "-A "));
    lb_free(t);
    tu_pair_free(&p);
    kp_free(kp);
}
END_TEST

/* ---- into a node's netfilter ---------------------------------------------------------------- */

/* kp_sync: jumps as on a node (kubelet's KUBE-FIREWALL first, kube-proxy's prepended), the
 * restore applied with --noflush, iptables-save spelling, idempotent re-sync, stale chains
 * removed, foreign rules in built-in chains kept. */
START_TEST(sync_into_netfilter)
{
    tu_pair_t p;
    tu_pair_new(&p, 1, SIM_MS, 0, 0);
    nf_t *nf = nf_get(p.a);
    char err[256];
    ck_assert_int_eq(nf_exec(nf, "-t filter -A INPUT -p tcp --dport 22 -j ACCEPT", err, sizeof err), 0);
    kp_t *kp = gw_proxy(p.a);
    kp_endpoint_t e[3] = { ep("10.244.2.7", "aks-user-0"), ep("10.244.10.3", "aks-user-2"),
                           ep("10.244.1.9", "aks-user-1") };
    kp_service_port_t sp;
    gw_set(kp, &sp, KP_POLICY_LOCAL, e, 3);
    sync_ok(kp);
    char *s = save_text(p.a);
    const char *input[] = {
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
        "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
    };
    int i0 = tu_line_at(s, input[0]);
    ck_assert_int_ge(i0, 0);
    for (int i = 1; i < 5; i++) ck_assert_msg(tu_line_at(s, input[i]) == i0 + i, "%s", input[i]);
    const char *fwd[] = {
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    };
    i0 = tu_line_at(s, fwd[0]);
    ck_assert_int_ge(i0, 0);
    for (int i = 1; i < 4; i++) ck_assert_int_eq(tu_line_at(s, fwd[i]), i0 + i);
    HAS(s, "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
    HAS(s, "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
    HAS(s, "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING");
    /* iptables-save spelling of what kube-proxy wrote */
    HAS(s, "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN");
    char sep[KP_CHAIN_MAX], l[256];
    kp_chain_name(sep, "KUBE-SEP-", GW_SPN, "tcp", "10.244.2.7:8080");
    snprintf(l, sizeof l, "-A %s -s 10.244.2.7/32 -m comment --comment \"" GW_SPN "\" -j KUBE-MARK-MASQ", sep);
    HAS(s, l);
    char sep19[KP_CHAIN_MAX];
    kp_chain_name(sep19, "KUBE-SEP-", GW_SPN, "tcp", "10.244.1.9:8080");
    snprintf(l, sizeof l, "-A " GW_SVC " -m comment --comment \"" GW_SPN " -> 10.244.1.9:8080\" "
             "-m statistic --mode random --probability 0.33333333349 -j %s", sep19);
    HAS(s, l);                              /* iptables-save prints the kernel's fixed point */
    free(s);
    int64_t rules = (int64_t)nf_rule_count(nf);

    /* idempotent: a second sync adds no jump and changes nothing */
    sync_ok(kp);
    ck_assert_int_eq((int64_t)nf_rule_count(nf), rules);
    /* two endpoints go: their SEP chains are deleted (-X), the rest stays */
    kp_endpoint_t e2[1] = { ep("10.244.2.7", "aks-user-0") };
    ck_assert_int_eq(kp_endpoints_set(kp, "istio-ingress", "mtkc-gateway-istio", "http", e2, 1), 1);
    char *t = kp_restore_text(kp);
    kp_chain_name(sep, "KUBE-SEP-", GW_SPN, "tcp", "10.244.1.9:8080");
    snprintf(l, sizeof l, "-X %s", sep);
    HAS(t, l);
    lb_free(t);
    sync_ok(kp);
    s = save_text(p.a);
    snprintf(l, sizeof l, ":%s - [0:0]", sep);
    HASNT(s, l);
    ck_assert_int_eq(count_prefix(s, ":KUBE-SEP-"), 1);
    HAS(s, "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT");
    free(s);
    t = kp_restore_text(kp);                 /* nothing stale any more */
    ck_assert_ptr_null(strstr(t, "\n-X "));
    lb_free(t);
    /* the service goes away entirely */
    ck_assert_int_eq(kp_service_delete(kp, "istio-ingress", "mtkc-gateway-istio", "http", "TCP"), 0);
    ck_assert_int_eq(kp_service_delete(kp, "istio-ingress", "mtkc-gateway-istio", "http", "TCP"),
                     LB_ENOENT);
    sync_ok(kp);
    s = save_text(p.a);
    ck_assert_ptr_null(strstr(s, "KMIM4RERSAS4SQZ5"));
    free(s);
    kp_free(kp);
    tu_pair_free(&p);
}
END_TEST

/* ---- packets through nodes -------------------------------------------------------------------
 * client 203.0.113.2 --- eth1 203.0.113.1 [n1 aks-user-0] eth0 10.240.0.4 --- 10.240.0.5 [n2]
 *                                    cbr0 10.244.0.1                         cbr0 10.244.1.1
 *                                         |                                        |
 *                                pod-a 10.244.0.10                        pod-b 10.244.1.10
 * The LB frontend 10.240.0.100 arrives at n1 unchanged (floating IP). */

typedef struct topo {
    sim_t *sim;
    net_t *net;
    net_node_t *client, *n1, *n2, *pa, *pb;
    kp_t *kp;
    tu_obs_t *obs;              /* everything the network reports */
    int accepted_a, accepted_b;
    bool connected;
    int error;
    uint32_t raddr;
} topo_t;

static void topo_new(topo_t *t)
{
    memset(t, 0, sizeof *t);
    tu_kp_net_t k;
    tu_kp_net_new(&k, false);
    t->sim = k.sim;
    t->net = k.net;
    t->client = k.client;
    t->n1 = k.n1;
    t->n2 = k.n2;
    t->pa = k.pa;
    t->pb = k.pb;
    t->obs = k.obs;
    t->kp = gw_proxy(t->n1);
}

static void topo_free(topo_t *t)
{
    kp_free(t->kp);
    net_free(t->net);
    sim_free(t->sim);
    lb_free(t->obs);
}

static void accept_a(tcp_conn_t *c, void *d) { (void)c; ((topo_t *)d)->accepted_a++; }
static void accept_b(tcp_conn_t *c, void *d) { (void)c; ((topo_t *)d)->accepted_b++; }
static void on_connected(tcp_conn_t *c, void *d)
{
    topo_t *t = d;
    t->connected = true;
    t->raddr = tcp_conn_raddr(c);
}
static void on_error(tcp_conn_t *c, int rc, void *d) { (void)c; ((topo_t *)d)->error = rc; }

/* Connects client -> LB:80 with the service's endpoints as given; runs `secs` seconds. */
static tcp_conn_t *topo_connect(topo_t *t, kp_policy_t etp, const kp_endpoint_t *eps, size_t n,
                                int secs)
{
    kp_service_port_t sp;
    gw_set(t->kp, &sp, etp, eps, n);
    sync_ok(t->kp);
    ck_assert_int_eq(tcp_listen(t->pa, 0, 8080, accept_a, t), 0);
    ck_assert_int_eq(tcp_listen(t->pb, 0, 8080, accept_b, t), 0);
    tcp_cbs_t cbs = { .connected = on_connected, .error = on_error };
    tcp_connect_opts_t o = { .timeout = 5 * SIM_S };
    int rc = 0;
    tcp_conn_t *c = tcp_connect(t->client, tu_ip("10.240.0.100"), 80, &o, &cbs, t, &rc);
    ck_assert_ptr_nonnull(c);
    sim_run(t->sim, (sim_time_t)secs * SIM_S);
    return c;
}

/* The first SYN captured arriving at node `where`. */
static const pkt_t *first_syn(const topo_t *t, const char *where)
{
    const tu_capture_t *cap = &t->obs->cap;
    for (int i = 0; i < cap->n; i++)
        if (!strcmp(cap->rec[i].where, where) && (cap->rec[i].p.tcp_flags & TCP_SYN) &&
            !(cap->rec[i].p.tcp_flags & TCP_ACK))
            return &cap->rec[i].p;
    return NULL;
}

/* ETP Cluster, the only endpoint on another node: n1 DNATs to the pod and MASQUERADEs
 * with its own eth0 address; the reply is reverse-translated; the client sees the LB IP. */
START_TEST(e2e_cluster_dnat_masquerade)
{
    topo_t t;
    topo_new(&t);
    kp_endpoint_t e[1] = { ep("10.244.1.10", "aks-user-1") };
    tcp_conn_t *c = topo_connect(&t, KP_POLICY_CLUSTER, e, 1, 1);
    const pkt_t *syn = first_syn(&t, "pod-b");
    ck_assert_ptr_nonnull(syn);
    ck_assert_uint_eq(syn->src, tu_ip("10.240.0.4"));       /* node IP: SNAT */
    ck_assert_uint_eq(syn->dst, tu_ip("10.244.1.10"));
    ck_assert_uint_eq(syn->dport, 8080);
    ck_assert_uint_eq(syn->mark, 0);                         /* cleared by --xor-mark */
    ck_assert(t.connected);
    ck_assert_uint_eq(t.raddr, tu_ip("10.240.0.100"));
    ck_assert_int_eq(t.accepted_b, 1);
    ck_assert_int_eq(t.accepted_a, 0);
    ck_assert_int_eq(t.obs->ndrop, 0);
    const ct_entry_t *ce = nf_ct_lookup(nf_get(t.n1), NET_PROTO_TCP, tu_ip("203.0.113.2"),
                                        tcp_conn_lport(c), tu_ip("10.240.0.100"), 80);
    ck_assert_ptr_nonnull(ce);
    ck_assert(nf_ct_is_dnat(ce) && nf_ct_is_snat(ce));
    nf_tuple_t r = nf_ct_tuple(ce, 1);
    ck_assert_uint_eq(r.src, tu_ip("10.244.1.10"));
    ck_assert_uint_eq(r.dst, tu_ip("10.240.0.4"));
    /* the rules that did it counted the SYN */
    ck_assert_int_eq(nf_rule_packets(nf_get(t.n1), "nat", GW_EXT, 1), 1);
    ck_assert_int_eq(nf_rule_packets(nf_get(t.n1), "nat", "KUBE-POSTROUTING", 3), 1);
    topo_free(&t);
}
END_TEST

/* ETP Local with a pod on this node: delivered to it with the client's address kept. */
START_TEST(e2e_local_keeps_client_ip)
{
    topo_t t;
    topo_new(&t);
    kp_endpoint_t e[2] = { ep("10.244.0.10", "aks-user-0"), ep("10.244.1.10", "aks-user-1") };
    topo_connect(&t, KP_POLICY_LOCAL, e, 2, 1);
    const pkt_t *syn = first_syn(&t, "pod-a");
    ck_assert_ptr_nonnull(syn);
    ck_assert_uint_eq(syn->src, tu_ip("203.0.113.2"));      /* client IP preserved */
    ck_assert_uint_eq(syn->dst, tu_ip("10.244.0.10"));
    ck_assert(t.connected);
    ck_assert_uint_eq(t.raddr, tu_ip("10.240.0.100"));
    ck_assert_int_eq(t.accepted_a, 1);
    ck_assert_int_eq(t.accepted_b, 0);
    ck_assert_ptr_null(first_syn(&t, "pod-b"));
    ck_assert_int_eq(t.obs->ndrop, 0);
    ck_assert_int_eq(nf_rule_packets(nf_get(t.n1), "nat", "KUBE-POSTROUTING", 3), 0);
    topo_free(&t);
}
END_TEST

/* ETP Local, no endpoint on this node: the SYN (and its retransmissions) are dropped at
 * n1 by the filter rule "... has no local endpoints"; nothing reaches the remote pod. */
START_TEST(e2e_local_no_local_endpoint_dropped)
{
    topo_t t;
    topo_new(&t);
    kp_endpoint_t e[1] = { ep("10.244.1.10", "aks-user-1") };
    topo_connect(&t, KP_POLICY_LOCAL, e, 1, 6);
    ck_assert(!t.connected);
    ck_assert_int_eq(t.error, LB_ETIMEDOUT);
    ck_assert_ptr_null(first_syn(&t, "pod-b"));
    ck_assert_ptr_null(first_syn(&t, "n2"));
    /* SYNs at 0, 1 and 3 s (Linux RTO 1 s doubling) before the 5 s connect timeout */
    ck_assert_int_eq(t.obs->ndrop, 3);
    for (int i = 0; i < t.obs->ndrop; i++) {
        ck_assert_str_eq(t.obs->drop[i].where, "n1");
        ck_assert_str_eq(t.obs->drop[i].reason, "nf-drop");
        ck_assert_msg(strstr(t.obs->drop[i].detail, GW_SPN " has no local endpoints"), "%s",
                      t.obs->drop[i].detail);
    }
    topo_free(&t);
}
END_TEST

/* ---- healthCheckNodePort ----------------------------------------------------------------------- */

typedef struct hres { int n, status; char body[512], ctype[64], nosniff[32], weight[16]; } hres_t;

static void on_hc(const http_result_t *r, void *d)
{
    hres_t *h = d;
    h->n++;
    h->status = r->outcome == HTTP_OK ? r->status : -r->outcome;
    h->body[0] = h->ctype[0] = h->nosniff[0] = h->weight[0] = '\0';
    if (!r->resp) return;
    snprintf(h->body, sizeof h->body, "%s", r->resp->body ? r->resp->body : "");
    const char *v = http_header_get(r->resp, "content-type");
    snprintf(h->ctype, sizeof h->ctype, "%s", v ? v : "");
    v = http_header_get(r->resp, "X-Content-Type-Options");
    snprintf(h->nosniff, sizeof h->nosniff, "%s", v ? v : "");
    v = http_header_get(r->resp, "X-Load-Balancing-Endpoint-Weight");
    snprintf(h->weight, sizeof h->weight, "%s", v ? v : "");
}

static void probe(topo_t *t, http_pool_t *pool, hres_t *h)
{
    http_pool_request(pool, tu_ip("203.0.113.1"), 32100,
                      http_request_new("GET", "203.0.113.1", "/healthz", 0), on_hc, h);
    sim_run(t->sim, sim_now(t->sim) + SIM_S);
}

START_TEST(health_check_node_port)
{
    topo_t t;
    topo_new(&t);
    kp_endpoint_t e[2] = { ep("10.244.0.10", "aks-user-0"), ep("10.244.1.10", "aks-user-1") };
    kp_service_port_t sp;
    gw_set(t.kp, &sp, KP_POLICY_LOCAL, e, 2);
    /* a second port of the same service, same pod IP: still one local endpoint */
    sp.port_name = "https";
    sp.port = 443;
    sp.node_port = 31443;
    ck_assert_int_eq(kp_service_set(t.kp, &sp), 0);
    sync_ok(t.kp);
    ck_assert_int_eq(kp_health_local_endpoints(t.kp, "istio-ingress", "mtkc-gateway-istio"), 1);
    ck_assert_int_eq(kp_health_local_endpoints(t.kp, "istio-ingress", "other"), -1);

    http_pool_t *pool = http_pool_new(t.client, NULL);
    hres_t h = {0};
    probe(&t, pool, &h);
    ck_assert_int_eq(h.n, 1);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.body, "{\n\t\"service\": {\n\t\t\"namespace\": \"istio-ingress\",\n\t\t"
                     "\"name\": \"mtkc-gateway-istio\"\n\t},\n\t\"localEndpoints\": 1,\n\t"
                     "\"serviceProxyHealthy\": true\n}");
    ck_assert_str_eq(h.ctype, "application/json");
    ck_assert_str_eq(h.nosniff, "nosniff");
    ck_assert_str_eq(h.weight, "1");

    /* the pod goes unready: after the sync, 503 and localEndpoints 0; the LB IP now drops */
    ck_assert_int_eq(kp_endpoint_conditions(t.kp, tu_ip("10.244.0.10"), false, false, false), 2);
    probe(&t, pool, &h);
    ck_assert_int_eq(h.status, 200);                          /* not synced yet */
    sync_ok(t.kp);
    probe(&t, pool, &h);
    ck_assert_int_eq(h.status, 503);
    ck_assert_ptr_nonnull(strstr(h.body, "\"localEndpoints\": 0,"));
    ck_assert_str_eq(h.weight, "0");
    char *txt = kp_restore_text(t.kp);
    HAS(txt, "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"" GW_SPN " has no local endpoints\" -m tcp -p tcp -d 10.240.0.100 --dport 80 -j DROP");
    lb_free(txt);

    /* ready again, but kube-proxy itself unhealthy: 503, serviceProxyHealthy false */
    kp_endpoint_conditions(t.kp, tu_ip("10.244.0.10"), true, true, false);
    sync_ok(t.kp);
    kp_set_healthy(t.kp, false);
    probe(&t, pool, &h);
    ck_assert_int_eq(h.status, 503);
    ck_assert_ptr_nonnull(strstr(h.body, "\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": false\n}"));
    kp_set_healthy(t.kp, true);
    probe(&t, pool, &h);
    ck_assert_int_eq(h.status, 200);
    ck_assert_uint_eq(kp_health_requests(t.kp, "istio-ingress", "mtkc-gateway-istio", 200), 3);
    ck_assert_uint_eq(kp_health_requests(t.kp, "istio-ingress", "mtkc-gateway-istio", 503), 2);

    /* switched to ETP Cluster: the health-check server closes (connection refused) */
    gw_service(&sp, KP_POLICY_CLUSTER, e, 2);
    kp_service_set(t.kp, &sp);
    kp_service_delete(t.kp, "istio-ingress", "mtkc-gateway-istio", "https", NULL);
    http_pool_free(pool);
    sync_ok(t.kp);
    ck_assert_int_eq(kp_health_local_endpoints(t.kp, "istio-ingress", "mtkc-gateway-istio"), -1);
    pool = http_pool_new(t.client, NULL);
    probe(&t, pool, &h);
    ck_assert_int_eq(h.status, -HTTP_CONNECT_REFUSED);
    http_pool_free(pool);
    topo_free(&t);
}
END_TEST

/* Kube-proxies sharing a text cache share their service ports and restore texts; one that
 * changes an endpoint's conditions or the endpoints changes its own rules only, and gets
 * the rules a kube-proxy without the cache writes after the same calls. */
START_TEST(shared_store_changes_stay_local)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    kp_text_cache_t *tc = kp_text_cache_new();
    kp_config_t cfg;
    kp_config_default(&cfg);
    kp_t *kp[4];
    net_node_t *n[4];
    char *before[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "aks-user-%d", i);
        n[i] = net_node_add(net, name);
        cfg.text_cache = i < 3 ? tc : NULL;         /* kp[3]: the reference, alone */
        kp[i] = kp_new(n[i], &cfg);
    }
    kp_endpoint_t e[2] = { ep("10.244.0.10", "aks-user-0"), ep("10.244.1.10", "aks-user-1") };
    kp_service_port_t sp;
    for (int i = 0; i < 4; i++) {
        gw_set(kp[i], &sp, KP_POLICY_CLUSTER, e, 2);
        sync_ok(kp[i]);
        before[i] = save_text(n[i]);
        if (i) tu_assert_text_eq(strchr(before[i], '\n'), strchr(before[0], '\n'));
    }
    /* kp[0] and the reference see pod 10.244.0.10 go unready */
    ck_assert_int_eq(kp_endpoint_conditions(kp[0], tu_ip("10.244.0.10"), false, false, false), 1);
    ck_assert_int_eq(kp_endpoint_conditions(kp[3], tu_ip("10.244.0.10"), false, false, false), 1);
    for (int i = 0; i < 4; i++) sync_ok(kp[i]);
    char *a = save_text(n[0]), *r = save_text(n[3]), *b = save_text(n[1]), *c = save_text(n[2]);
    tu_assert_text_eq(strchr(a, '\n'), strchr(r, '\n'));
    ck_assert_ptr_null(strstr(a, "--probability"));         /* one endpoint left */
    tu_assert_text_eq(b, before[1]);
    tu_assert_text_eq(c, before[2]);
    free(a), free(r), free(b);
    /* kp[1] and the reference: the endpoints replaced */
    ck_assert_int_eq(kp_endpoints_set(kp[1], "istio-ingress", "mtkc-gateway-istio", NULL, e + 1, 1), 1);
    ck_assert_int_eq(kp_endpoints_set(kp[3], "istio-ingress", "mtkc-gateway-istio", NULL, e + 1, 1), 1);
    for (int i = 0; i < 4; i++) sync_ok(kp[i]);
    b = save_text(n[1]), r = save_text(n[3]);
    tu_assert_text_eq(strchr(b, '\n'), strchr(r, '\n'));
    free(b), free(r);
    char *c2 = save_text(n[2]);
    tu_assert_text_eq(c2, c);
    free(c), free(c2);
    /* kp[0], holding its copy alone, changes it in place after a resync: its rules follow */
    for (int i = 0; i < 4; i++) sync_ok(kp[i]);
    ck_assert_int_eq(kp_endpoint_conditions(kp[0], tu_ip("10.244.0.10"), true, true, false), 1);
    ck_assert_int_eq(kp_endpoints_set(kp[3], "istio-ingress", "mtkc-gateway-istio", NULL, e, 2), 1);
    sync_ok(kp[0]);
    sync_ok(kp[3]);
    a = save_text(n[0]), r = save_text(n[3]);
    tu_assert_text_eq(strchr(a, '\n'), strchr(r, '\n'));
    ck_assert_ptr_nonnull(strstr(a, "--probability"));
    free(a), free(r);
    for (int i = 0; i < 4; i++) {
        free(before[i]);
        kp_free(kp[i]);
    }
    kp_text_cache_free(tc);
    net_free(net);
    sim_free(sim);
}
END_TEST

Suite *suite_kube_proxy(void)
{
    Suite *s = suite_create("kube_proxy");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, chain_names_match_real_ones);
    tcase_add_test(tc, conntrack_sysctls_applied);
    tcase_add_test(tc, cluster_one_remote_endpoint_exact);
    tcase_add_test(tc, local_three_endpoints_rules);
    tcase_add_test(tc, local_no_local_endpoint_rules);
    tcase_add_test(tc, no_endpoints_reject);
    tcase_add_test(tc, terminating_fallback);
    tcase_add_test(tc, terminating_gate_off);
    tcase_add_test(tc, config_variants);
    tcase_add_test(tc, upstream_overall_rules);
    suite_add_tcase(s, tc);
    tc = tcase_create("node");
    tcase_add_test(tc, sync_into_netfilter);
    tcase_add_test(tc, e2e_cluster_dnat_masquerade);
    tcase_add_test(tc, e2e_local_keeps_client_ip);
    tcase_add_test(tc, e2e_local_no_local_endpoint_dropped);
    tcase_add_test(tc, health_check_node_port);
    tcase_add_test(tc, shared_store_changes_stay_local);
    suite_add_tcase(s, tc);
    return s;
}

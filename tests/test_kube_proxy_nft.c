/* test_kube_proxy_nft.c -- kube-proxy's nftables mode: chain names against upstream's
 * (proxier_test.go TestOverallNFTablesRules), the transaction proxier.go writes, the whole
 * ruleset as `nft list ruleset` prints it, packets through a node with the same fates as
 * the iptables mode (ClusterIP, NodePort, LoadBalancer with ETP Cluster and Local, no
 * endpoints, source ranges), what differs for real (NodePorts only on the primary
 * address), and the rules evaluated per new connection, which do not grow with the
 * number of Services. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kube_proxy.h"
#include "netfilter.h"
#include "nftables.h"
#include "tcp.h"
#include "util.h"

#define HAS(text, l) ck_assert_msg(tu_line_at(text, l) >= 0, "missing line: %s\n--- in:\n%.2500s", l, text)
#define HASNT(text, l) ck_assert_msg(tu_line_at(text, l) < 0, "unexpected line: %s", l)


static kp_t *proxy(net_node_t *node, kp_mode_t mode, const char *name, const char *cidr, int plen)
{
    kp_config_t c;
    kp_config_default(&c);
    c.node_name = name;
    c.cluster_cidr = (kp_cidr_t){ tu_ip(cidr), plen };
    c.mode = mode;
    return kp_new(node, &c);
}

/* ---- the text: names and rules as proxier.go writes them ------------------------------------ */

/* Upstream's six services (TestOverallNFTablesRules), affinity left out (refused here). */
START_TEST(upstream_names_and_rules)
{
    kp_t *kp = proxy(NULL, KP_MODE_NFTABLES, "test-node", "10.0.0.0", 8);
    static uint32_t lb2, ext2, ext4, lb5;
    lb2 = tu_ip("1.2.3.4");
    ext2 = tu_ip("192.168.99.22");
    ext4 = tu_ip("192.168.99.33");
    lb5 = tu_ip("5.6.7.8");
    kp_cidr_t range5 = { tu_ip("203.0.113.0"), 25 };
    kp_endpoint_t e1 = { tu_ip("10.180.0.1"), 80, NULL, true, true, false };
    kp_endpoint_t e2 = { tu_ip("10.180.0.2"), 80, NULL, true, true, false };
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
          .lb_source_ranges = &range5, .n_lb_source_ranges = 1, .endpoints = &e3, .n_endpoints = 1 },
        { .ns = "ns6", .name = "svc6", .port_name = "p80", .cluster_ip = tu_ip("172.30.0.46"),
          .port = 80 },
    };
    for (int i = 0; i < 6; i++) ck_assert_int_eq(kp_service_set(kp, &s[i]), 0);
    char *t = kp_nft_text(kp);
#define T "add rule ip kube-proxy "
    /* the hashes are upstream's */
    HAS(t, "add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80");
    HAS(t, T "service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade");
    HAS(t, T "service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }");
    HAS(t, T "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade");
    HAS(t, T "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80");
    HAS(t, "add element ip kube-proxy cluster-ips { 172.30.0.41 }");
    HAS(t, "add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }");
    /* svc2: ETP Local, its only endpoint not local: external traffic dropped */
    HAS(t, T "external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit pod traffic\"");
    HAS(t, T "external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"");
    HAS(t, T "external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit local traffic\"");
    HAS(t, "add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }");
    HAS(t, "add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }");
    HAS(t, "add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment \"ns2/svc2:p80\" : drop }");
    HAS(t, "add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment \"ns2/svc2:p80\" : drop }");
    HAS(t, "add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment \"ns2/svc2:p80\" : drop }");
    /* svc3, svc4: external chains masquerade */
    HAS(t, T "external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade");
    HAS(t, T "external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80");
    HAS(t, T "service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }");
    /* svc5: source ranges */
    HAS(t, T "firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop");
    HAS(t, "add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }");
    HAS(t, "add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80");
    /* svc6: no endpoints at all */
    HAS(t, "add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment \"ns6/svc6:p80\" : goto reject-chain }");
    HASNT(t, "add chain ip kube-proxy service-Y3O5BOQO-ns6/svc6/tcp/p80");
    /* setupNFTables */
    HAS(t, "add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }");
    HAS(t, T "filter-input ct state new jump nodeport-endpoints-check");
    HAS(t, T "cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"");
    HAS(t, T "masquerading mark and 0x00004000 == 0 return");
    HAS(t, T "masquerading masquerade fully-random");
    HAS(t, T "services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports");
#undef T
    lb_free(t);
    kp_free(kp);
}
END_TEST

/* The whole ruleset on a node, ETP Cluster with one remote endpoint, as `nft list ruleset`
 * prints it -- written out from proxier.go's setupNFTables and syncProxyRules. */
static const char one_service_ruleset[] =
"table ip kube-proxy {\n"
"\tcomment \"rules for kube-proxy\"\n"
"\tset cluster-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"Active ClusterIPs\"\n\t\telements = { 10.0.114.5 }\n\t}\n\n"
"\tset nodeport-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"IPs that accept NodePort traffic\"\n\t\telements = { 203.0.113.1 }\n\t}\n\n"
"\tmap no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"vmap to drop or reject packets to services with no endpoints\"\n\t}\n\n"
"\tmap no-endpoint-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"vmap to drop or reject packets to service nodeports with no endpoints\"\n\t}\n\n"
"\tmap firewall-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"destinations that are subject to LoadBalancerSourceRanges\"\n\t}\n\n"
"\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\"\n"
"\t\telements = { 10.0.114.5 . tcp . 80 : goto service-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http,\n"
"\t\t\t     10.240.0.100 . tcp . 80 : goto external-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http }\n\t}\n\n"
"\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"NodePort traffic\"\n"
"\t\telements = { tcp . 31380 : goto external-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http }\n\t}\n\n"
"\tchain filter-prerouting {\n\t\ttype filter hook prerouting priority dstnat - 10; policy accept;\n\t\tct state new jump firewall-check\n\t}\n\n"
"\tchain filter-input {\n\t\ttype filter hook input priority -110; policy accept;\n\t\tct state new jump nodeport-endpoints-check\n\t\tct state new jump service-endpoints-check\n\t}\n\n"
"\tchain filter-forward {\n\t\ttype filter hook forward priority -110; policy accept;\n\t\tct state new jump service-endpoints-check\n\t\tct state new jump cluster-ips-check\n\t}\n\n"
"\tchain filter-output {\n\t\ttype filter hook output priority -110; policy accept;\n\t\tct state new jump service-endpoints-check\n\t\tct state new jump firewall-check\n\t}\n\n"
"\tchain filter-output-post-dnat {\n\t\ttype filter hook output priority -90; policy accept;\n\t\tct state new jump cluster-ips-check\n\t}\n\n"
"\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n\n"
"\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n\n"
"\tchain nat-postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tjump masquerading\n\t}\n\n"
"\tchain nodeport-endpoints-check {\n\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports\n\t}\n\n"
"\tchain service-endpoints-check {\n\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\t}\n\n"
"\tchain firewall-check {\n\t\tip daddr . meta l4proto . th dport vmap @firewall-ips\n\t}\n\n"
"\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"
"\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports\n\t}\n\n"
"\tchain masquerading {\n\t\tmeta mark & 0x00004000 == 0x00000000 return\n\t\tmeta mark set meta mark ^ 0x00004000\n\t\tmasquerade fully-random\n\t}\n\n"
"\tchain cluster-ips-check {\n\t\tip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n"
"\t\tip daddr 10.0.0.0/16 drop comment \"Drop traffic to unallocated ClusterIPs\"\n\t}\n\n"
"\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark | 0x00004000\n\t}\n\n"
"\tchain reject-chain {\n\t\tcomment \"helper for @no-endpoint-services / @no-endpoint-nodeports\"\n\t\treject\n\t}\n\n"
"\tchain endpoint-2OHGFGP5-istio-ingress/mtkc-gateway-istio/tcp/http__10.244.1.10/8080 {\n"
"\t\tip saddr 10.244.1.10 jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to 10.244.1.10:8080\n\t}\n\n"
"\tchain service-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http {\n"
"\t\tip daddr 10.0.114.5 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n"
"\t\tnumgen random mod 1 vmap { 0 : goto endpoint-2OHGFGP5-istio-ingress/mtkc-gateway-istio/tcp/http__10.244.1.10/8080 }\n\t}\n\n"
"\tchain external-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http {\n"
"\t\tjump mark-for-masquerade\n\t\tgoto service-SB3IP4X3-istio-ingress/mtkc-gateway-istio/tcp/http\n\t}\n"
"}\n";

/* ---- packets through a node ---------------------------------------------------------------------
 * client 203.0.113.2 --- eth1 203.0.113.1 [n1 aks-user-0] eth0 10.240.0.4 --- 10.240.0.5 [n2]
 *                                    cbr0 10.244.0.1                         cbr0 10.244.1.1
 *                                pod-a 10.244.0.10                        pod-b 10.244.1.10
 * n1's primary address is its first, 203.0.113.1. The LB frontend 10.240.0.100 arrives at
 * n1 unchanged (floating IP). */
typedef struct topo {
    sim_t *sim;
    net_t *net;
    net_node_t *client, *n1, *n2, *pa, *pb;
    kp_t *kp;
    tu_obs_t *obs;
    int accepted_a, accepted_b;
    bool connected;
    int error;
} topo_t;

static void topo_new(topo_t *t, kp_mode_t mode, bool service_cidr)
{
    memset(t, 0, sizeof *t);
    tu_kp_net_t k;
    tu_kp_net_new(&k, true);
    t->sim = k.sim;
    t->net = k.net;
    t->client = k.client;
    t->n1 = k.n1;
    t->n2 = k.n2;
    t->pa = k.pa;
    t->pb = k.pb;
    t->obs = k.obs;
    kp_config_t c;
    kp_config_default(&c);
    c.node_name = "aks-user-0";
    c.cluster_cidr = (kp_cidr_t){ tu_ip("10.244.0.0"), 16 };
    c.mode = mode;
    if (service_cidr) c.service_cidr = (kp_cidr_t){ tu_ip("10.0.0.0"), 16 };
    t->kp = kp_new(t->n1, &c);
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
static void on_connected(tcp_conn_t *c, void *d) { (void)c; ((topo_t *)d)->connected = true; }
static void on_error(tcp_conn_t *c, int rc, void *d) { (void)c; ((topo_t *)d)->error = rc; }

static uint32_t lb_ip;
static kp_cidr_t range;

/* The gateway Service: ClusterIP 10.0.114.5:80, NodePort 31380, LB 10.240.0.100. */
static void gw(kp_service_port_t *sp, kp_policy_t etp, const kp_endpoint_t *eps, size_t n,
               const char *src_range)
{
    lb_ip = tu_ip("10.240.0.100");
    memset(sp, 0, sizeof *sp);
    sp->ns = "istio-ingress";
    sp->name = "mtkc-gateway-istio";
    sp->port_name = "http";
    sp->cluster_ip = tu_ip("10.0.114.5");
    sp->port = 80;
    sp->node_port = 31380;
    sp->lb_ips = &lb_ip;
    sp->n_lb_ips = 1;
    sp->external_policy = etp;
    sp->health_check_node_port = etp == KP_POLICY_LOCAL ? 32100 : 0;
    sp->endpoints = eps;
    sp->n_endpoints = n;
    if (src_range) {
        lb_cidr_parse(src_range, &range.addr, &range.plen);
        sp->lb_source_ranges = &range;
        sp->n_lb_source_ranges = 1;
    }
}

static kp_endpoint_t ep(const char *ip, const char *node)
{
    return (kp_endpoint_t){ tu_ip(ip), 8080, node, true, true, false };
}

static void sync_ok(kp_t *kp)
{
    char err[256];
    ck_assert_msg(kp_sync(kp, err, sizeof err) == 0, "%s", err);
}

/* What happened to one connection attempt. */
typedef struct fate {
    bool connected;
    int error, accepted_a, accepted_b;
    uint32_t syn_src;               /* the first SYN's source at the pod that got it */
    int ndrop;
    char reason[32];                /* the first drop's */
    double rules_mean;              /* at n1: rules per new connection */
} fate_t;

typedef struct flow { const char *from, *to; uint16_t port; kp_policy_t etp; int neps;
                      const char *range; } flow_t;

static fate_t run_flow(kp_mode_t mode, const flow_t *f, int extra_services)
{
    topo_t t;
    topo_new(&t, mode, false);
    kp_endpoint_t e[2] = { ep("10.244.1.10", "aks-user-1"), ep("10.244.0.10", "aks-user-0") };
    kp_service_port_t sp;
    /* neps: 1 = remote pod-b, 2 = both, -1 = local pod-a only, 0 = none */
    for (int i = 0; i < extra_services; i++) {         /* written before the gateway's */
        char name[32];
        snprintf(name, sizeof name, "svc-%d", i);
        kp_endpoint_t x = ep("10.244.1.10", "aks-user-1");
        kp_service_port_t s = { .ns = "scale", .name = name, .cluster_ip = tu_ip("10.0.1.0") + (uint32_t)i,
                                .port = 80, .endpoints = &x, .n_endpoints = 1 };
        ck_assert_int_eq(kp_service_set(t.kp, &s), 0);
    }
    gw(&sp, f->etp, f->neps == -1 ? &e[1] : e, f->neps < 0 ? 1 : (size_t)f->neps, f->range);
    ck_assert_int_eq(kp_service_set(t.kp, &sp), 0);
    sync_ok(t.kp);
    ck_assert_int_eq(tcp_listen(t.pa, 0, 8080, accept_a, &t), 0);
    ck_assert_int_eq(tcp_listen(t.pb, 0, 8080, accept_b, &t), 0);
    tcp_cbs_t cbs = { .connected = on_connected, .error = on_error };
    tcp_connect_opts_t o = { .timeout = 5 * SIM_S };
    int rc = 0;
    net_node_t *from = !strcmp(f->from, "pod-a") ? t.pa : t.client;
    ck_assert_ptr_nonnull(tcp_connect(from, tu_ip(f->to), f->port, &o, &cbs, &t, &rc));
    sim_run(t.sim, 6 * SIM_S);
    fate_t r = { t.connected, t.error, t.accepted_a, t.accepted_b, 0, t.obs->ndrop, "", 0 };
    const pkt_t *s = tu_obs_cap(t.obs, t.accepted_a ? "pod-a" : "pod-b", 0);
    if (s) r.syn_src = s->src;
    if (t.obs->ndrop) snprintf(r.reason, sizeof r.reason, "%s", t.obs->drop[0].reason);
    nf_walk_summary_t ws;
    nf_walk_node(nf_get(t.n1), &ws);
    r.rules_mean = ws.mean;
    ck_assert(nft_active(nf_get(t.n1)) == (mode == KP_MODE_NFTABLES));
    topo_free(&t);
    return r;
}

/* Both modes; asserts the same fate and returns it. */
static fate_t both(const flow_t *f)
{
    fate_t a = run_flow(KP_MODE_IPTABLES, f, 0), b = run_flow(KP_MODE_NFTABLES, f, 0);
    ck_assert_msg(a.connected == b.connected && a.error == b.error && a.accepted_a == b.accepted_a &&
                  a.accepted_b == b.accepted_b && a.syn_src == b.syn_src && a.ndrop == b.ndrop &&
                  !strcmp(a.reason, b.reason),
                  "%s -> %s:%u: iptables connected %d error %d a %d b %d src %08x drops %d %s; "
                  "nftables connected %d error %d a %d b %d src %08x drops %d %s", f->from, f->to,
                  f->port, a.connected, a.error, a.accepted_a, a.accepted_b, a.syn_src, a.ndrop,
                  a.reason, b.connected, b.error, b.accepted_a, b.accepted_b, b.syn_src, b.ndrop,
                  b.reason);
    return b;
}

START_TEST(same_fates_cluster_ip)
{
    /* a pod: DNAT, its own address kept */
    flow_t f = { "pod-a", "10.0.114.5", 80, KP_POLICY_CLUSTER, 1, NULL };
    fate_t r = both(&f);
    ck_assert(r.connected);
    ck_assert_int_eq(r.accepted_b, 1);
    ck_assert_uint_eq(r.syn_src, tu_ip("10.244.0.10"));
    /* from outside the cluster CIDR: masqueraded to the node's eth0 */
    flow_t g = { "client", "10.0.114.5", 80, KP_POLICY_CLUSTER, 1, NULL };
    r = both(&g);
    ck_assert(r.connected);
    ck_assert_uint_eq(r.syn_src, tu_ip("10.240.0.4"));
}
END_TEST

START_TEST(same_fates_node_port_and_lb)
{
    flow_t f = { "client", "203.0.113.1", 31380, KP_POLICY_CLUSTER, 1, NULL };
    fate_t r = both(&f);
    ck_assert(r.connected);
    ck_assert_int_eq(r.accepted_b, 1);
    ck_assert_uint_eq(r.syn_src, tu_ip("10.240.0.4"));
    flow_t g = { "client", "10.240.0.100", 80, KP_POLICY_CLUSTER, 1, NULL };
    r = both(&g);
    ck_assert(r.connected);
    ck_assert_uint_eq(r.syn_src, tu_ip("10.240.0.4"));
    ck_assert_int_eq(r.ndrop, 0);
}
END_TEST

START_TEST(same_fates_etp_local)
{
    /* a local endpoint: the client's address kept */
    flow_t f = { "client", "10.240.0.100", 80, KP_POLICY_LOCAL, 2, NULL };
    fate_t r = both(&f);
    ck_assert(r.connected);
    ck_assert_int_eq(r.accepted_a, 1);
    ck_assert_int_eq(r.accepted_b, 0);
    ck_assert_uint_eq(r.syn_src, tu_ip("203.0.113.2"));
    /* none here: every SYN dropped at n1 */
    flow_t g = { "client", "10.240.0.100", 80, KP_POLICY_LOCAL, 1, NULL };
    r = both(&g);
    ck_assert(!r.connected);
    ck_assert_int_eq(r.error, LB_ETIMEDOUT);
    ck_assert_int_eq(r.ndrop, 3);
    ck_assert_str_eq(r.reason, "nf-drop");
    /* the same on the NodePort */
    flow_t h = { "client", "203.0.113.1", 31380, KP_POLICY_LOCAL, 1, NULL };
    r = both(&h);
    ck_assert(!r.connected);
    ck_assert_str_eq(r.reason, "nf-drop");
}
END_TEST

START_TEST(same_fates_no_endpoints)
{
    const flow_t fl[3] = { { "pod-a", "10.0.114.5", 80, KP_POLICY_CLUSTER, 0, NULL },
                           { "client", "10.240.0.100", 80, KP_POLICY_CLUSTER, 0, NULL },
                           { "client", "203.0.113.1", 31380, KP_POLICY_CLUSTER, 0, NULL } };
    for (int i = 0; i < 3; i++) {
        fate_t r = both(&fl[i]);
        ck_assert(!r.connected);
        ck_assert_int_eq(r.error, LB_ECONNREFUSED);      /* ICMP port unreachable */
        ck_assert_str_eq(r.reason, "nf-reject");
    }
}
END_TEST

START_TEST(same_fates_source_ranges)
{
    flow_t f = { "client", "10.240.0.100", 80, KP_POLICY_CLUSTER, 1, "198.51.100.0/24" };
    fate_t r = both(&f);
    ck_assert(!r.connected);
    ck_assert_str_eq(r.reason, "nf-drop");
    flow_t g = { "client", "10.240.0.100", 80, KP_POLICY_CLUSTER, 1, "203.0.113.0/24" };
    r = both(&g);
    ck_assert(r.connected);
    /* NodePorts are not subject to the ranges, in both modes */
    flow_t h = { "client", "203.0.113.1", 31380, KP_POLICY_CLUSTER, 1, "198.51.100.0/24" };
    r = both(&h);
    ck_assert(r.connected);
}
END_TEST

/* A real difference: nftables mode defaults --nodeport-addresses to "primary" (server.go
 * platformApplyDefaults), so a NodePort on the node's other address is not served: the
 * SYN reaches n1's own TCP, which has no listener there and resets. iptables mode serves
 * every local address. */
START_TEST(node_port_only_on_primary_address)
{
    flow_t f = { "client", "10.240.0.4", 31380, KP_POLICY_CLUSTER, 1, NULL };
    fate_t a = run_flow(KP_MODE_IPTABLES, &f, 0), b = run_flow(KP_MODE_NFTABLES, &f, 0);
    ck_assert(a.connected);
    ck_assert(!b.connected);
    ck_assert_int_eq(b.error, LB_ECONNREFUSED);
    ck_assert_int_eq(b.ndrop, 0);
}
END_TEST

/* Rules per new connection: iptables walks one KUBE-SERVICES rule per Service before the
 * gateway's; nftables looks the destination up in service-ips, whatever the number. */
START_TEST(rules_per_connection_constant)
{
    flow_t f = { "client", "10.240.0.100", 80, KP_POLICY_CLUSTER, 1, NULL };
    fate_t n0 = run_flow(KP_MODE_NFTABLES, &f, 0), n50 = run_flow(KP_MODE_NFTABLES, &f, 50);
    fate_t i0 = run_flow(KP_MODE_IPTABLES, &f, 0), i50 = run_flow(KP_MODE_IPTABLES, &f, 50);
    ck_assert(n0.connected && n50.connected && i0.connected && i50.connected);
    /* n1: PREROUTING filter-prerouting 1 + firewall-check 1, nat-prerouting 1 + services 1
     * + external 2 (jump, goto) + mark-for-masquerade 1 + service 2 + endpoint 2 = 11;
     * FORWARD filter-forward 2 + service-endpoints-check 1 + cluster-ips-check 1 = 4;
     * POSTROUTING nat-postrouting 1 + masquerading 3 = 4: 19 */
    ck_assert_double_eq(n0.rules_mean, 19);
    ck_assert_double_eq(n50.rules_mean, n0.rules_mean);
    ck_assert_msg(i50.rules_mean >= i0.rules_mean + 50, "iptables %g -> %g", i0.rules_mean,
                  i50.rules_mean);
}
END_TEST

/* kp_sync on a node: the ruleset exactly, then a re-sync after a change. */
START_TEST(ruleset_listed_exactly)
{
    topo_t t;
    topo_new(&t, KP_MODE_NFTABLES, true);
    kp_endpoint_t e = ep("10.244.1.10", "aks-user-1");
    kp_service_port_t sp;
    gw(&sp, KP_POLICY_CLUSTER, &e, 1, NULL);
    ck_assert_int_eq(kp_service_set(t.kp, &sp), 0);
    sync_ok(t.kp);
    char *s = tu_nft_list(t.n1);
    tu_assert_text_eq(s, one_service_ruleset);
    free(s);
    /* iptables untouched by kube-proxy in this mode */
    ck_assert_uint_eq(nf_rule_count(nf_get(t.n1)), 0);
    /* no endpoints any more: the chains go, the no-endpoint maps take the addresses */
    ck_assert_int_eq(kp_endpoints_set(t.kp, "istio-ingress", "mtkc-gateway-istio", NULL, NULL, 0), 1);
    sync_ok(t.kp);
    s = tu_nft_list(t.n1);
    ck_assert_ptr_null(strstr(s, "chain service-SB3IP4X3"));
    ck_assert_ptr_nonnull(strstr(s, "10.240.0.100 . tcp . 80 comment \"istio-ingress/mtkc-gateway-istio:http\" : goto reject-chain"));
    free(s);
    ck_assert_int_eq(nft_set_size(nf_get(t.n1), "kube-proxy", "service-ips"), 0);
    ck_assert_int_eq(nft_set_size(nf_get(t.n1), "kube-proxy", "no-endpoint-services"), 2);
    topo_free(&t);
}
END_TEST

/* An unallocated ClusterIP (from 1.33, with the ServiceCIDR): dropped in filter-forward. */
START_TEST(unallocated_cluster_ip_dropped)
{
    topo_t t;
    topo_new(&t, KP_MODE_NFTABLES, true);
    kp_endpoint_t e = ep("10.244.1.10", "aks-user-1");
    kp_service_port_t sp;
    gw(&sp, KP_POLICY_CLUSTER, &e, 1, NULL);
    ck_assert_int_eq(kp_service_set(t.kp, &sp), 0);
    sync_ok(t.kp);
    tcp_cbs_t cbs = { .connected = on_connected, .error = on_error };
    tcp_connect_opts_t o = { .timeout = 2 * SIM_S };
    int rc = 0;
    ck_assert_ptr_nonnull(tcp_connect(t.pa, tu_ip("10.0.200.1"), 80, &o, &cbs, &t, &rc));
    sim_run(t.sim, 3 * SIM_S);
    ck_assert(!t.connected);
    ck_assert_int_ge(t.obs->ndrop, 1);
    ck_assert_str_eq(t.obs->drop[0].reason, "nf-drop");
    ck_assert_msg(strstr(t.obs->drop[0].detail, "nft kube-proxy/filter-forward -> cluster-ips-check "
                         "rule 2: ip daddr 10.0.0.0/16 drop"), "%s", t.obs->drop[0].detail);
    /* a ClusterIP's other port: rejected (rule 1) */
    t.error = 0;
    ck_assert_ptr_nonnull(tcp_connect(t.pa, tu_ip("10.0.114.5"), 443, &o, &cbs, &t, &rc));
    sim_run(t.sim, 6 * SIM_S);
    ck_assert_int_eq(t.error, LB_ECONNREFUSED);
    topo_free(&t);
}
END_TEST

/* Nodes with the same Services share one ruleset (a cache), each with its own
 * nodeport-ips; session affinity's dynamic sets are refused. */
START_TEST(shared_between_nodes)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *a = net_node_add(net, "a"), *b = net_node_add(net, "b");
    net_iface_add(a, "eth0", tu_ip("10.240.0.4"), 24);
    net_iface_add(b, "eth0", tu_ip("10.240.0.5"), 24);
    nft_cache_t *cache = nft_cache_new();
    kp_config_t c;
    kp_config_default(&c);
    c.cluster_cidr = (kp_cidr_t){ tu_ip("10.244.0.0"), 16 };
    c.mode = KP_MODE_NFTABLES;
    c.nft_cache = cache;
    c.node_name = "a";
    kp_t *ka = kp_new(a, &c);
    c.node_name = "b";
    kp_t *kb = kp_new(b, &c);
    kp_endpoint_t e = ep("10.244.1.10", "x");
    kp_service_port_t sp;
    gw(&sp, KP_POLICY_CLUSTER, &e, 1, NULL);
    ck_assert_int_eq(kp_service_set(ka, &sp), 0);
    ck_assert_int_eq(kp_service_set(kb, &sp), 0);
    sync_ok(ka);
    sync_ok(kb);
    char *la = tu_nft_list(a), *lb = tu_nft_list(b);
    char *pa = strstr(la, "elements = { 10.240.0.4 }");
    ck_assert_ptr_nonnull(pa);
    ck_assert_ptr_nonnull(strstr(lb, "elements = { 10.240.0.5 }"));
    pa[22] = '5';                                       /* otherwise the same */
    ck_assert_str_eq(la, lb);
    free(la);
    free(lb);
    sp.affinity_client_ip = true;
    ck_assert_int_eq(kp_service_set(ka, &sp), 0);
    char err[256];
    ck_assert_int_eq(kp_sync(ka, err, sizeof err), LB_EPARSE);
    ck_assert_msg(strstr(err, "not modelled"), "%s", err);
    kp_free(ka);
    kp_free(kb);
    net_free(net);
    nft_cache_free(cache);
    sim_free(sim);
}
END_TEST

Suite *suite_kube_proxy_nft(void)
{
    Suite *s = suite_create("kube_proxy_nft");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, upstream_names_and_rules);
    tcase_add_test(tc, ruleset_listed_exactly);
    tcase_add_test(tc, same_fates_cluster_ip);
    tcase_add_test(tc, same_fates_node_port_and_lb);
    tcase_add_test(tc, same_fates_etp_local);
    tcase_add_test(tc, same_fates_no_endpoints);
    tcase_add_test(tc, same_fates_source_ranges);
    tcase_add_test(tc, node_port_only_on_primary_address);
    tcase_add_test(tc, rules_per_connection_constant);
    tcase_add_test(tc, unallocated_cluster_ip_dropped);
    tcase_add_test(tc, shared_between_nodes);
    suite_add_tcase(s, tc);
    return s;
}

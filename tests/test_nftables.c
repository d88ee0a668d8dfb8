/* test_nftables.c -- the nftables model: `nft -f` transactions (errors with their line,
 * all or nothing), `nft list ruleset` output byte for byte as nft 1.0.6 printed it for the
 * same transaction (captured from a network namespace), loops refused from the base
 * chains only as the kernel does, verdict maps, priorities among the iptables tables,
 * and rulesets shared between nodes with per-node set copies. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "netfilter.h"
#include "nftables.h"
#include "util.h"


/* A kube-proxy-like transaction and what `nft list ruleset` printed after `nft -f` of it
 * (nft 1.0.6, Linux 6.x). */
static const char real_in[] =
"add table ip kube-proxy { comment \"rules for kube-proxy\" ; }\n"
"add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }\n"
"add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }\n"
"add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority srcnat ; }\n"
"add chain ip kube-proxy mark-for-masquerade\n"
"add chain ip kube-proxy masquerading\n"
"add chain ip kube-proxy services\n"
"add chain ip kube-proxy cluster-ips-check\n"
"add chain ip kube-proxy reject-chain { comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; }\n"
"add set ip kube-proxy cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }\n"
"add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }\n"
"add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }\n"
"add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }\n"
"add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }\n"
"add rule ip kube-proxy filter-prerouting ct state new jump cluster-ips-check\n"
"add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000\n"
"add rule ip kube-proxy masquerading mark and 0x4000 == 0 return\n"
"add rule ip kube-proxy masquerading mark set mark xor 0x4000\n"
"add rule ip kube-proxy masquerading masquerade fully-random\n"
"add rule ip kube-proxy nat-postrouting jump masquerading\n"
"add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n"
"add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\"\n"
"add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips\n"
"add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports\n"
"add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n"
"add rule ip kube-proxy reject-chain reject\n"
"add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80\n"
"add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80\n"
"add chain ip kube-proxy external-X-ns1/svc1/tcp/p80\n"
"add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade\n"
"add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }\n"
"add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade\n"
"add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80\n"
"add rule ip kube-proxy external-X-ns1/svc1/tcp/p80 ip saddr 10.0.0.0/8 goto service-ULMVA6XW-ns1/svc1/tcp/p80 comment \"short-circuit pod traffic\"\n"
"add rule ip kube-proxy external-X-ns1/svc1/tcp/p80 fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"\n"
"add rule ip kube-proxy external-X-ns1/svc1/tcp/p80 ip saddr != { 203.0.113.0/25, 1.2.3.4 } drop\n"
"add element ip kube-proxy cluster-ips { 172.30.0.41 }\n"
"add element ip kube-proxy nodeport-ips { 10.0.0.4 }\n"
"add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }\n"
"add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment \"ns6/svc6:p80\" : goto reject-chain }\n"
"add element ip kube-proxy service-nodeports { tcp . 30001 : goto external-X-ns1/svc1/tcp/p80 }\n";

static const char real_out[] =
"table ip kube-proxy {\n"
"\tcomment \"rules for kube-proxy\"\n"
"\tset cluster-ips {\n"
"\t\ttype ipv4_addr\n"
"\t\tcomment \"Active ClusterIPs\"\n"
"\t\telements = { 172.30.0.41 }\n"
"\t}\n"
"\n"
"\tset nodeport-ips {\n"
"\t\ttype ipv4_addr\n"
"\t\tcomment \"IPs that accept NodePort traffic\"\n"
"\t\telements = { 10.0.0.4 }\n"
"\t}\n"
"\n"
"\tmap service-ips {\n"
"\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
"\t\tcomment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\"\n"
"\t\telements = { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }\n"
"\t}\n"
"\n"
"\tmap service-nodeports {\n"
"\t\ttype inet_proto . inet_service : verdict\n"
"\t\tcomment \"NodePort traffic\"\n"
"\t\telements = { tcp . 30001 : goto external-X-ns1/svc1/tcp/p80 }\n"
"\t}\n"
"\n"
"\tmap no-endpoint-services {\n"
"\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
"\t\tcomment \"vmap to drop or reject packets to services with no endpoints\"\n"
"\t\telements = { 172.30.0.46 . tcp . 80 comment \"ns6/svc6:p80\" : goto reject-chain }\n"
"\t}\n"
"\n"
"\tchain filter-prerouting {\n"
"\t\ttype filter hook prerouting priority dstnat - 10; policy accept;\n"
"\t\tct state new jump cluster-ips-check\n"
"\t}\n"
"\n"
"\tchain filter-output-post-dnat {\n"
"\t\ttype filter hook output priority -90; policy accept;\n"
"\t}\n"
"\n"
"\tchain nat-postrouting {\n"
"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
"\t\tjump masquerading\n"
"\t}\n"
"\n"
"\tchain mark-for-masquerade {\n"
"\t\tmeta mark set meta mark | 0x00004000\n"
"\t}\n"
"\n"
"\tchain masquerading {\n"
"\t\tmeta mark & 0x00004000 == 0x00000000 return\n"
"\t\tmeta mark set meta mark ^ 0x00004000\n"
"\t\tmasquerade fully-random\n"
"\t}\n"
"\n"
"\tchain services {\n"
"\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"
"\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports\n"
"\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n"
"\t}\n"
"\n"
"\tchain cluster-ips-check {\n"
"\t\tip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n"
"\t\tip daddr 172.30.0.0/16 drop comment \"Drop traffic to unallocated ClusterIPs\"\n"
"\t}\n"
"\n"
"\tchain reject-chain {\n"
"\t\tcomment \"helper for @no-endpoint-services / @no-endpoint-nodeports\"\n"
"\t\treject\n"
"\t}\n"
"\n"
"\tchain service-ULMVA6XW-ns1/svc1/tcp/p80 {\n"
"\t\tip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade\n"
"\t\tnumgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }\n"
"\t}\n"
"\n"
"\tchain endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 {\n"
"\t\tip saddr 10.180.0.1 jump mark-for-masquerade\n"
"\t\tmeta l4proto tcp dnat to 10.180.0.1:80\n"
"\t}\n"
"\n"
"\tchain external-X-ns1/svc1/tcp/p80 {\n"
"\t\tip saddr 10.0.0.0/8 goto service-ULMVA6XW-ns1/svc1/tcp/p80 comment \"short-circuit pod traffic\"\n"
"\t\tfib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"\n"
"\t\tip saddr != { 1.2.3.4, 203.0.113.0/25 } drop\n"
"\t}\n"
"}\n";

START_TEST(listing_as_nft_prints_it)
{
    tu_pair_t p;
    tu_pair_new(&p, 1, SIM_MS, 0, 0);
    char err[256];
    ck_assert_msg(nft_apply(nf_get(p.a), real_in, err, sizeof err) == 0, "%s", err);
    char *s = tu_nft_list(p.a);
    ck_assert_str_eq(s, real_out);
    free(s);
    ck_assert_uint_eq(nft_rule_count(nf_get(p.a)), 19);
    ck_assert_int_eq(nft_set_size(nf_get(p.a), "kube-proxy", "service-ips"), 1);
    ck_assert_int_eq(nft_set_size(nf_get(p.a), "kube-proxy", "nosuch"), -1);
    tu_pair_free(&p);
}
END_TEST

/* Errors name the line; nothing of a failed transaction stays. */
START_TEST(errors_all_or_nothing)
{
    tu_pair_t p;
    tu_pair_new(&p, 1, SIM_MS, 0, 0);
    nf_t *nf = nf_get(p.a);
    char err[256];
    static const struct { const char *text, *msg; int rc; } bad[] = {
        { "add table inet x", "line 1: family 'inet' is not modelled (only ip)", LB_EPARSE },
        { "add table ip t\nadd rule ip t nosuch accept", "line 2: no such chain: nosuch", LB_ENOENT },
        { "add table ip t\nadd chain ip t c\nadd rule ip t c jump d", "line 3: no such chain: d", LB_ENOENT },
        { "add table ip t\nadd chain ip t c\nadd rule ip t c ip daddr 10.0.0.1/8 accept",
          "line 3: expected an IPv4 address, prefix, @set or { ... }, got '10.0.0.1/8'", LB_EPARSE },
        { "add table ip t\nadd chain ip t c\nadd rule ip t c tcp sport 80 accept",
          "line 3: tcp: only dport is modelled", LB_EPARSE },
        { "add table ip t\nadd set ip t s { type ipv4_addr ; }\nadd element ip t s { 10.0.0.0/8 }",
          "line 3: set member 10.0.0.0/8 cannot be a prefix: set s has no interval flag", LB_EPARSE },
        { "add table ip t\nadd set ip t s { type ipv4_addr ; flags dynamic,timeout ; }",
          "line 2: set flag 'dynamic' is not modelled (interval, constant are; dynamic and "
          "timeout sets are not)", LB_EPARSE },
        { "add table ip t\nadd chain ip t b { type filter hook input priority 0 ; }\n"
          "add chain ip t c\nadd chain ip t d\nadd rule ip t b jump c\nadd rule ip t c jump d\n"
          "add rule ip t d jump c", "line 7: jump loop through chain c", LB_EINVAL },
        { "add table ip t\nadd chain ip t c\nadd rule ip t c accept drop",
          "line 3: 'drop' after a terminal statement", LB_EPARSE },
        /* statements where the kernel's validate functions refuse them (each refused by
         * nft -f on 6.18 with "Operation not supported") */
        { "add table ip t\nadd chain ip t c { type filter hook prerouting priority 0 ; }\n"
          "add rule ip t c dnat to 10.0.0.1",
          "line 3: dnat in chain c: type filter hook prerouting; it runs only in nat chains at "
          "prerouting, output (the kernel answers: Operation not supported)", LB_EINVAL },
        { "add table ip t\nadd chain ip t c { type nat hook postrouting priority 100 ; }\n"
          "add rule ip t c dnat to 10.0.0.1",
          "line 3: dnat in chain c: type nat hook postrouting; it runs only in nat chains at "
          "prerouting, output (the kernel answers: Operation not supported)", LB_EINVAL },
        { "add table ip t\nadd chain ip t c { type nat hook input priority 100 ; }\n"
          "add rule ip t c masquerade",
          "line 3: masquerade in chain c: type nat hook input; it runs only in nat chains at "
          "postrouting (the kernel answers: Operation not supported)", LB_EINVAL },
        { "add table ip t\nadd chain ip t r\nadd chain ip t c { type nat hook prerouting "
          "priority -100 ; }\nadd rule ip t r masquerade\nadd rule ip t c jump r",
          "line 5: masquerade in chain r (reached from chain c): type nat hook prerouting; it "
          "runs only in nat chains at postrouting (the kernel answers: Operation not supported)",
          LB_EINVAL },
        { "add table ip t\nadd chain ip t r\nadd map ip t m { type ipv4_addr . inet_proto . "
          "inet_service : verdict ; }\nadd chain ip t c { type nat hook postrouting priority "
          "100 ; }\nadd rule ip t r dnat to 10.0.0.1\nadd element ip t m { 1.2.3.4 . tcp . 80 "
          ": jump r }\nadd rule ip t c ip daddr . meta l4proto . th dport vmap @m",
          "line 7: dnat in chain r (reached from chain c): type nat hook postrouting; it runs "
          "only in nat chains at prerouting, output (the kernel answers: Operation not "
          "supported)", LB_EINVAL },
        { "add table ip t\nadd chain ip t c { type filter hook postrouting priority 0 ; }\n"
          "add rule ip t c reject",
          "line 3: reject in chain c: type filter hook postrouting; it runs only in chains at "
          "prerouting, input, forward, output (the kernel answers: Operation not supported)",
          LB_EINVAL },
        { "add table ip t\nadd chain ip t c { comment \"x ; }", "line 2: unterminated string", LB_EPARSE },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = nft_apply(nf, bad[i].text, err, sizeof err);
        ck_assert_msg(rc == bad[i].rc, "case %zu: rc %d (%s)", i, rc, err);
        ck_assert_str_eq(err, bad[i].msg);
        ck_assert(!nft_active(nf));
    }
    /* where the kernel takes them: dnat in a nat chain at output, reject at prerouting
     * (filter or nat), a masquerade in a chain no base chain reaches (checked when one
     * does), all accepted by nft -f on 6.18 */
    static const char *const good[] = {
        "add table ip t\nadd chain ip t c { type nat hook output priority -100 ; }\n"
        "add rule ip t c dnat to 10.0.0.1",
        "add table ip t\nadd chain ip t c { type filter hook prerouting priority 0 ; }\n"
        "add rule ip t c reject",
        "add table ip t\nadd chain ip t c { type nat hook prerouting priority -100 ; }\n"
        "add rule ip t c reject",
        "add table ip t\nadd chain ip t r\nadd rule ip t r masquerade",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        ck_assert_msg(nft_apply(nf, good[i], err, sizeof err) == 0, "good %zu: %s", i, err);
        ck_assert_int_eq(nft_apply(nf, "flush ruleset", err, sizeof err), 0);
    }
    /* a loop below no base chain is accepted, as by the kernel */
    ck_assert_msg(nft_apply(nf, "add table ip t\nadd chain ip t c\nadd rule ip t c goto c", err,
                            sizeof err) == 0, "%s", err);
    /* then a failing transaction leaves it as it was */
    ck_assert_int_eq(nft_apply(nf, "add chain ip t e\nadd rule ip t e bogus", err, sizeof err),
                     LB_EPARSE);
    char *s = tu_nft_list(p.a);
    ck_assert_str_eq(s, "table ip t {\n\tchain c {\n\t\tgoto c\n\t}\n}\n");
    free(s);
    tu_pair_free(&p);
}
END_TEST

/* Two nodes a - b, everything they see observed (lb_free the result after tu_pair_free). */
static tu_obs_t *observed_pair(tu_pair_t *p)
{
    tu_pair_new(p, 1, SIM_MS, 0, 0);
    tu_obs_t *obs = lb_calloc(1, sizeof *obs);
    tu_obs_start(p->net, obs);
    return obs;
}

/* The model's rules at their hooks and priorities: a drop in an nftables filter chain at
 * prerouting -110 happens before the iptables nat table's DNAT would; a prefix set and a
 * verdict map. */
START_TEST(verdicts_and_priorities)
{
    tu_pair_t p;
    tu_obs_t *obs = observed_pair(&p);
    char err[256];
    nf_t *nf = nf_get(p.b);
    ck_assert_int_eq(nf_exec(nf, "-t nat -A PREROUTING -p tcp --dport 80 -j DNAT "
                             "--to-destination 10.0.0.2:8080", err, sizeof err), 0);
    ck_assert_msg(nft_apply(nf,
        "add table ip f\n"
        "add chain ip f pre { type filter hook prerouting priority -110 ; }\n"
        "add chain ip f in { type filter hook input priority 0 ; }\n"
        "add chain ip f deny\n"
        "add map ip f ports { type inet_proto . inet_service : verdict ; }\n"
        "add element ip f ports { tcp . 80 : jump deny, tcp . 81 : accept }\n"
        "add rule ip f deny ip saddr != { 10.9.0.0/16, 192.168.0.0/24 } drop\n"
        "add rule ip f pre meta l4proto . th dport vmap @ports\n"
        "add rule ip f in tcp dport 8080 counter reject with tcp reset\n", err, sizeof err) == 0, "%s", err);
    pkt_t *syn = tu_tcp_pkt(p.net, "10.0.0.1", 4000, "10.0.0.2", 80, TCP_SYN);
    net_node_rx(p.b, p.b->ifaces.v[0], syn);
    ck_assert_int_eq(obs->ndrop, 1);
    ck_assert_str_eq(obs->drop[0].reason, "nf-drop");
    ck_assert_str_eq(obs->drop[0].detail, "nft f/pre -> deny rule 1: ip saddr != { 10.9.0.0/16, "
                     "192.168.0.0/24 } drop");
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "PREROUTING", 1), 0);      /* never reached */
    /* port 81: accepted by the map, no DNAT rule matches, INPUT rejects nothing */
    syn = tu_tcp_pkt(p.net, "10.0.0.1", 4001, "10.0.0.2", 81, TCP_SYN);
    net_node_rx(p.b, p.b->ifaces.v[0], syn);
    ck_assert_int_eq(obs->ndrop, 1);
    /* port 80 from an allowed source: the deny chain returns, the map's jump continues,
     * iptables' DNAT to 8080 binds, and the nftables input chain rejects it */
    syn = tu_tcp_pkt(p.net, "10.9.0.5", 4002, "10.0.0.2", 80, TCP_SYN);
    net_node_rx(p.b, p.b->ifaces.v[0], syn);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "PREROUTING", 1), 1);
    int k = tu_obs_drop_find(obs, "b", "nf-reject");    /* after its RST, which has no route */
    ck_assert_int_ge(k, 1);
    ck_assert_str_eq(obs->drop[k].detail, "nft f/in rule 1: tcp dport 8080 counter reject with tcp reset");
    tu_pair_free(&p);
    lb_free(obs);
}
END_TEST

/* A traced flow's rules as the kernel's nft_trace_packet() reports them: every rule that
 * ran to its end with its verdict -- "continue" for one without (a mark set, a counter),
 * "accept" for a NAT statement, "drop" for reject -- and none whose match failed. */
START_TEST(trace_as_kernel)
{
    tu_pair_t p;
    tu_obs_t *obs = observed_pair(&p);
    char err[256];
    nf_t *nf = nf_get(p.b);
    ck_assert_msg(nft_apply(nf,
        "add table ip k\n"
        "add chain ip k pre { type nat hook prerouting priority dstnat ; }\n"
        "add chain ip k in { type filter hook input priority 0 ; }\n"
        "add chain ip k mark\n"
        "add rule ip k mark meta mark set meta mark | 0x4000\n"
        "add rule ip k pre ip saddr 10.9.9.9 drop\n"
        "add rule ip k pre counter\n"
        "add rule ip k pre tcp dport 80 jump mark\n"
        "add rule ip k pre tcp dport 80 dnat to 10.0.0.2:8080\n"
        "add rule ip k in tcp dport 8080 reject\n", err, sizeof err) == 0, "%s", err);
    pkt_t *syn = tu_tcp_pkt(p.net, "10.0.0.1", 4000, "10.0.0.2", 80, TCP_SYN);
    syn->flow = net_flow_new(p.net);
    net_trace_flow(p.net, syn->flow);
    net_node_rx(p.b, p.b->ifaces.v[0], syn);
    ck_assert(!tu_obs_trace_has(obs, "nft k/pre rule 1 "));        /* saddr did not match */
    ck_assert(tu_obs_trace_has(obs, "b: nft k/pre rule 2 matched: counter (verdict continue)"));
    ck_assert(tu_obs_trace_has(obs, "b: nft k/pre rule 3 matched: tcp dport 80 jump mark "
                                    "(verdict jump mark)"));
    ck_assert(tu_obs_trace_has(obs, "b: nft k/mark rule 1 matched: meta mark set meta mark | "
                                    "0x00004000 (verdict continue)"));
    ck_assert(tu_obs_trace_has(obs, "b: nft k/pre rule 4 matched: tcp dport 80 dnat to "
                                    "10.0.0.2:8080 (verdict accept)"));
    ck_assert(tu_obs_trace_has(obs, "b: nft k/in rule 1 matched: tcp dport 8080 reject "
                                    "(verdict drop)"));
    tu_pair_free(&p);
    lb_free(obs);
}
END_TEST

/* A masquerade the kernel cannot bind (no universe-scope address anywhere in the netns:
 * nf_nat_masquerade_ipv4 answers NF_DROP) is traced with the drop the binding returned,
 * not as accepted. */
START_TEST(trace_masquerade_without_address)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    tu_obs_t *obs = lb_calloc(1, sizeof *obs);
    tu_obs_start(net, obs);
    net_node_t *a = net_node_add(net, "a"), *b = net_node_add(net, "b"),
               *c = net_node_add(net, "c");
    net_iface_t *a0 = net_iface_add(a, "eth0", tu_ip("10.0.0.1"), 24);
    net_iface_t *b0 = net_iface_add(b, "eth0", 0, 0), *b1 = net_iface_add(b, "eth1", 0, 0);
    net_iface_t *c0 = net_iface_add(c, "eth0", tu_ip("10.0.1.5"), 24);
    net_link_params_t lp = {.latency = SIM_MS};
    net_link_new(net, a0, b0, &lp);
    net_link_new(net, b1, c0, &lp);
    net_route_add(b, tu_ip("10.0.1.0"), 24, 0, b1);
    b->forwarding = true;
    char err[256];
    ck_assert_msg(nft_apply(nf_get(b),
        "add table ip k\n"
        "add chain ip k post { type nat hook postrouting priority srcnat ; }\n"
        "add rule ip k post masquerade\n", err, sizeof err) == 0, "%s", err);
    pkt_t *syn = tu_tcp_pkt(net, "10.0.0.1", 4000, "10.0.1.5", 80, TCP_SYN);
    syn->flow = net_flow_new(net);
    net_trace_flow(net, syn->flow);
    net_node_rx(b, b0, syn);
    ck_assert(tu_obs_trace_has(obs, "b: nft k/post rule 1 matched: masquerade (verdict drop)"));
    ck_assert(!tu_obs_trace_has(obs, "(verdict accept)"));
    ck_assert_int_ge(tu_obs_drop_find(obs, "b", "nf-drop"), 0);
    net_free(net);
    sim_free(sim);
    lb_free(obs);
}
END_TEST

/* Two nodes share a ruleset from the cache; a set change on one is its own. */
START_TEST(shared_rulesets)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *a = net_node_add(net, "a"), *b = net_node_add(net, "b");
    nft_cache_t *c = nft_cache_new();
    uint64_t key[2] = { 1, 2 };
    const char *text = "add table ip t\nadd set ip t s { type ipv4_addr ; }\nadd chain ip t c\n"
                       "add rule ip t c ip daddr @s drop\n";
    char err[256];
    ck_assert(!nft_cache_has(c, key));
    ck_assert_int_eq(nft_apply_shared(nf_get(a), c, key, text, err, sizeof err), 0);
    ck_assert(nft_cache_has(c, key));
    ck_assert_int_eq(nft_apply_shared(nf_get(b), c, key, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nft_apply(nf_get(a), "add element ip t s { 10.0.0.1 }", err, sizeof err), 0);
    ck_assert_int_eq(nft_set_size(nf_get(a), "t", "s"), 1);
    ck_assert_int_eq(nft_set_size(nf_get(b), "t", "s"), 0);
    /* anything else makes a private copy first */
    ck_assert_int_eq(nft_apply(nf_get(b), "add chain ip t d", err, sizeof err), 0);
    char *la = tu_nft_list(a), *lb = tu_nft_list(b);
    ck_assert_ptr_null(strstr(la, "chain d"));
    ck_assert_ptr_nonnull(strstr(lb, "chain d"));
    ck_assert_ptr_nonnull(strstr(la, "elements = { 10.0.0.1 }"));
    free(la);
    free(lb);
    uint64_t other[2] = { 3, 4 };
    ck_assert_int_eq(nft_apply_shared(nf_get(b), c, other, NULL, err, sizeof err), LB_ENOENT);
    nft_cache_free(c);                  /* the nodes keep theirs */
    ck_assert_int_eq(nft_set_size(nf_get(a), "t", "s"), 1);
    net_free(net);
    sim_free(sim);
}
END_TEST

Suite *suite_nftables(void)
{
    Suite *s = suite_create("nftables");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, listing_as_nft_prints_it);
    tcase_add_test(tc, trace_as_kernel);
    tcase_add_test(tc, trace_masquerade_without_address);
    tcase_add_test(tc, errors_all_or_nothing);
    tcase_add_test(tc, verdicts_and_priorities);
    tcase_add_test(tc, shared_rulesets);
    suite_add_tcase(s, tc);
    return s;
}

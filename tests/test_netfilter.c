/* test_netfilter.c -- netfilter and conntrack: iptables-restore/save round trip of
 * kube-proxy output, parse errors with exact messages, rule matching, the statistic split,
 * DNAT + MASQUERADE through a router with NAT reversal, conntrack INVALID/loose, REJECT
 * tcp-reset, ICMP errors from behind a DNAT, TCP state timeouts and expiry, port clashes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "netfilter.h"
#include "tcp.h"
#include "util.h"

/* ---- helpers: commands that must succeed, a three-node topology, a lone node ----------- */

/* nf_exec / nf_restore that must succeed. */
static void exec_ok(nf_t *nf, const char *cmd)
{
    char err[256];
    ck_assert_msg(nf_exec(nf, cmd, err, sizeof err) == 0, "%s: %s", cmd, err);
}

static void restore_ok(nf_t *nf, const char *text)
{
    char err[256];
    ck_assert_msg(nf_restore(nf, text, err, sizeof err) == 0, "%s", err);
}

typedef struct topo {
    sim_t *sim;
    net_t *net;
    net_node_t *a, *r, *b;
    net_iface_t *ia, *ra, *rb, *ib;
    tu_obs_t *o;                /* records everything the network reports */
} topo_t;

/* a 10.0.0.1/24 --- 10.0.0.254 [r] 10.0.1.254 --- 10.0.1.2/24 b; 1 ms links. A and B drop
 * TCP in INPUT (after the capture) so that no TCP stack answers behind the test's back.
 * Returns R's netfilter. */
static nf_t *topo_new_ex(topo_t *t, uint64_t seed, bool drop_tcp)
{
    memset(t, 0, sizeof *t);
    t->sim = sim_new(seed);
    t->net = net_new(t->sim);
    t->a = net_node_add(t->net, "a");
    t->r = net_node_add(t->net, "r");
    t->b = net_node_add(t->net, "b");
    t->ia = net_iface_add(t->a, "eth0", tu_ip("10.0.0.1"), 24);
    t->ra = net_iface_add(t->r, "eth0", tu_ip("10.0.0.254"), 24);
    t->rb = net_iface_add(t->r, "eth1", tu_ip("10.0.1.254"), 24);
    t->ib = net_iface_add(t->b, "eth0", tu_ip("10.0.1.2"), 24);
    t->r->forwarding = true;
    net_route_add(t->a, 0, 0, tu_ip("10.0.0.254"), t->ia);
    net_route_add(t->b, 0, 0, tu_ip("10.0.1.254"), t->ib);
    net_link_params_t lp = { .latency = 1 * SIM_MS };
    net_link_new(t->net, t->ia, t->ra, &lp);
    net_link_new(t->net, t->rb, t->ib, &lp);
    t->o = lb_calloc(1, sizeof *t->o);
    tu_obs_start(t->net, t->o);
    if (drop_tcp) {
        exec_ok(nf_get(t->a), "-A INPUT -p tcp -j DROP");
        exec_ok(nf_get(t->b), "-A INPUT -p tcp -j DROP");
    }
    return nf_get(t->r);
}

static nf_t *topo_new(topo_t *t, uint64_t seed) { return topo_new_ex(t, seed, true); }

static void topo_free(topo_t *t)
{
    net_free(t->net);
    sim_free(t->sim);
    lb_free(t->o);
}

/* One node `name` with eth0 10.0.0.1/24, for calling nf_hook directly. Returns its
 * netfilter. */
typedef struct host { sim_t *sim; net_t *net; net_node_t *n; net_iface_t *eth; } host_t;

static nf_t *host_new(host_t *h, uint64_t seed, const char *name)
{
    h->sim = sim_new(seed);
    h->net = net_new(h->sim);
    h->n = net_node_add(h->net, name);
    h->eth = net_iface_add(h->n, "eth0", tu_ip("10.0.0.1"), 24);
    return nf_get(h->n);
}

static void host_free(host_t *h)
{
    net_free(h->net);
    sim_free(h->sim);
}

/* A UDP datagram src:sport -> dst:dport, no payload. */
static pkt_t *udp_pkt(net_t *net, const char *src, uint16_t sport, const char *dst,
                      uint16_t dport)
{
    pkt_t *p = tu_tcp_seg(net, src, sport, dst, dport, 0, 0, 0);
    p->proto = NET_PROTO_UDP;
    return p;
}

static void run_for(topo_t *t, sim_time_t d) { sim_run(t->sim, sim_now(t->sim) + d); }

/* The i-th packet (0-based) that arrived at node `where`, which must exist. */
static const pkt_t *arrived(const topo_t *t, const char *where, int i)
{
    const pkt_t *p = tu_obs_cap(t->o, where, i);
    ck_assert_msg(p != NULL, "no packet %d arrived at %s", i, where);
    return p;
}

/* kube-proxy's rules for a ClusterIP-like VIP 10.96.0.10:80 -> 10.0.1.2:8080 with
 * masquerade (KUBE-MARK-MASQ / KUBE-POSTROUTING as proxier.go writes them), plus the
 * KUBE-FORWARD filter chain and a FORWARD policy of DROP. */
static const char *kube_rules =
    "*filter\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD DROP [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":KUBE-FORWARD - [0:0]\n"
    "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n"
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "COMMIT\n"
    "*nat\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    ":KUBE-SERVICES - [0:0]\n"
    ":KUBE-MARK-MASQ - [0:0]\n"
    ":KUBE-POSTROUTING - [0:0]\n"
    ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n"
    ":KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]\n"
    "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
    "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
    "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n"
    "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
    "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
    "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n"
    "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
    "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:dns cluster IP\" -m udp -p udp -d 10.96.0.10 --dport 53 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
    "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.0.1.2:8080\" -j KUBE-SEP-SXIVWICOYRO3J4NJ\n"
    "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.0.1.2 -j KUBE-MARK-MASQ\n"
    "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:8080\n"
    "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m udp -p udp -j DNAT --to-destination 10.0.1.2:5353\n"
    "COMMIT\n";

/* topo_new_ex with kube_rules loaded into R; returns R's netfilter. */
static nf_t *topo_kube(topo_t *t, uint64_t seed, bool drop_tcp)
{
    nf_t *nf = topo_new_ex(t, seed, drop_tcp);
    restore_ok(nf, kube_rules);
    return nf;
}

/* ---- parse / save ----------------------------------------------------------------------- */

static char *save_str(const nf_t *nf, bool counters)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nf_save(nf, f, counters);
    fclose(f);
    return buf;
}

START_TEST(restore_save_roundtrip)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n1");
    const char *text =
        "# Generated by iptables-save v1.8.7 on Thu Jan  1 00:00:00 2024\n"
        "*filter\n"
        ":INPUT ACCEPT [0:0]\n"
        ":FORWARD ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n"
        ":KUBE-FIREWALL - [0:0]\n"
        ":KUBE-SERVICES - [0:0]\n"
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
        "-A INPUT -j KUBE-FIREWALL\n"
        "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
        "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j REJECT\n"
        "COMMIT\n"
        "*nat\n"
        ":PREROUTING ACCEPT [0:0]\n"
        ":INPUT ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n"
        ":POSTROUTING ACCEPT [0:0]\n"
        ":KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]\n"
        ":KUBE-MARK-MASQ - [0:0]\n"
        ":KUBE-NODEPORTS - [0:0]\n"
        ":KUBE-POSTROUTING - [0:0]\n"
        ":KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]\n"
        ":KUBE-SEP-ZX7GRIZKSNUQ3LAJ - [0:0]\n"
        ":KUBE-SERVICES - [0:0]\n"
        ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n"
        ":KUBE-SVL-XPGD46QRK7WJZT7O - [0:0]\n"
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n"
        "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
        "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 external IP\" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O\n"
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n"
        "-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment \"pod traffic for ns1/svc1:p80 external destinations\" -s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
        "-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment \"masquerade LOCAL traffic for ns1/svc1:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n"
        "-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment \"route LOCAL traffic for ns1/svc1:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
        "-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O\n"
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n"
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ\n"
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80\n"
        "-A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -s 10.180.2.1 -j KUBE-MARK-MASQ\n"
        "-A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -m recent --set --name KUBE-SEP-ZX7GRIZKSNUQ3LAJ --mask 255.255.255.255 --rsource -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:80\n"
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.2.1:80\" -m recent --name KUBE-SEP-ZX7GRIZKSNUQ3LAJ --rcheck --seconds 10800 --reap -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ\n"
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ\n"
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.2.1:80\" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ\n"
        "-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.2.1:80\" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ\n"
        "COMMIT\n";
    restore_ok(nf, text);
    ck_assert_uint_eq(nf_rule_count(nf), 27);
    char *s1 = save_str(nf, false);
    /* iptables-save's canonical forms: addresses with /32, header matches first, the
     * implicit -m tcp, quoting only where needed, MARK as --set-xmark, 11 decimals */
    const char *expect[] = {
        "# Generated by lbchain\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-SERVICES - [0:0]\n",
        "\n-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block "
        "incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n",
        "\n-A KUBE-SERVICES -d 172.30.0.42/32 -p tcp -m comment --comment \"ns2/svc2:p80 has "
        "no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\n",
        "\n-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment \"ns1/svc1:p80 "
        "cluster IP\" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n",
        "\n-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n",
        "\n-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n",
        "-j MASQUERADE --random-fully\n",
        "\n-A KUBE-SEP-SXIVWICOYRO3J4NJ -p tcp -m comment --comment \"ns1/svc1:p80\" -m tcp "
        "-j DNAT --to-destination 10.180.0.1:80\n",
        "-m recent --set --name KUBE-SEP-ZX7GRIZKSNUQ3LAJ --mask 255.255.255.255 --rsource -m tcp",
        "-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-ZX7GRIZKSNUQ3LAJ --mask "
        "255.255.255.255 --rsource -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ\n",
        "-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ\n",
        "\n-A KUBE-SVC-XPGD46QRK7WJZT7O -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp",
        "\n-A KUBE-SVC-XPGD46QRK7WJZT7O ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment "
        "--comment \"ns1/svc1:p80 cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n",
        "COMMIT\n# Completed by lbchain\n# Generated by lbchain\n*nat\n:PREROUTING ACCEPT [0:0]\n"
        ":INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        ":KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]\n",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        bool neg = i == 11;                     /* the unnegated form must not appear */
        ck_assert_msg((strstr(s1, expect[i]) != NULL) != neg, "%s\n---- in ----\n%s",
                      expect[i], s1);
    }
    exec_ok(nf, "-A INPUT -m comment --comment \"it's a \\\"test\\\" \\\\ ok\" -j ACCEPT");
    free(s1);
    s1 = save_str(nf, false);
    ck_assert_ptr_nonnull(strstr(s1, "-A INPUT -m comment --comment \"it\\'s a \\\"test\\\" \\\\ ok\" -j ACCEPT\n"));
    /* read back into another node: identical text */
    nf_t *nf2 = nf_get(net_node_add(h.net, "n2"));
    restore_ok(nf2, s1);
    char *s2 = save_str(nf2, false);
    ck_assert_str_eq(s1, s2);
    /* and with counters: "[p:b] -A" lines and chain counters survive too */
    char *c1 = save_str(nf, true);
    ck_assert_ptr_nonnull(strstr(c1, "[0:0] -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"));
    nf_t *nf3 = nf_get(net_node_add(h.net, "n3"));
    restore_ok(nf3, c1);
    char *c2 = save_str(nf3, true);
    ck_assert_str_eq(c1, c2);
    free(s1);
    free(s2);
    free(c1);
    free(c2);
    host_free(&h);
}
END_TEST

START_TEST(restore_noflush_and_exec)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n");
    char err[256];
    exec_ok(nf, "-t nat -N KUBE-SERVICES");
    exec_ok(nf, "-t nat -I PREROUTING -m comment --comment \"kubernetes service "
            "portals\" -j KUBE-SERVICES");
    exec_ok(nf, "iptables -w 5 -t nat -C PREROUTING -m comment --comment "
            "\"kubernetes service portals\" -j KUBE-SERVICES");
    ck_assert_int_eq(nf_exec(nf, "-t nat -C PREROUTING -j KUBE-SERVICES", err, sizeof err),
                     LB_ENOENT);
    /* --noflush (kube-proxy): built-in PREROUTING keeps its jump; a declared chain is
     * flushed and refilled; an old chain is declared then deleted */
    const char *sync1 =
        "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n"
        "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp --dport 443 -j KUBE-SVC-A\n"
        "-A KUBE-SVC-A -p tcp -j DNAT --to-destination 10.0.0.5:6443\nCOMMIT\n";
    ck_assert_msg(nf_restore_flags(nf, sync1, NF_RESTORE_NOFLUSH, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(nf_rule_count(nf), 3);
    const char *sync2 =
        "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-B - [0:0]\n:KUBE-SVC-A - [0:0]\n"
        "-A KUBE-SERVICES -d 10.96.0.2/32 -p tcp --dport 80 -j KUBE-SVC-B\n"
        "-A KUBE-SVC-B -p tcp -j DNAT --to-destination 10.0.0.6:8080\n-X KUBE-SVC-A\nCOMMIT\n";
    ck_assert_msg(nf_restore_flags(nf, sync2, NF_RESTORE_NOFLUSH, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(nf_rule_count(nf), 3);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "PREROUTING", 1), 0);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-SVC-A", 1), -1);
    /* without --noflush the table is replaced whole */
    restore_ok(nf, "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
    ck_assert_uint_eq(nf_rule_count(nf), 0);
    /* -I position, -D by number and by spec, -P, -F, -X */
    exec_ok(nf, "-A INPUT -s 10.0.0.1 -j ACCEPT");
    exec_ok(nf, "-A INPUT -s 10.0.0.3 -j ACCEPT");
    exec_ok(nf, "-I INPUT 2 -s 10.0.0.2 -j ACCEPT");
    ck_assert_int_eq(nf_exec(nf, "-I INPUT 5 -s 10.0.0.9 -j ACCEPT", err, sizeof err), LB_EPARSE);
    ck_assert_str_eq(err, "line 1: -I INPUT 5: index of insertion too big");
    char *s = save_str(nf, false);
    ck_assert_ptr_nonnull(strstr(s, "-A INPUT -s 10.0.0.1/32 -j ACCEPT\n-A INPUT -s 10.0.0.2/32 "
                                    "-j ACCEPT\n-A INPUT -s 10.0.0.3/32 -j ACCEPT\n"));
    free(s);
    exec_ok(nf, "-D INPUT -s 10.0.0.2/32 -j ACCEPT");
    exec_ok(nf, "-D INPUT 1");
    ck_assert_uint_eq(nf_rule_count(nf), 1);
    exec_ok(nf, "-P FORWARD DROP");
    s = save_str(nf, false);
    ck_assert_ptr_nonnull(strstr(s, ":FORWARD DROP [0:0]\n"));
    free(s);
    exec_ok(nf, "-N MYCHAIN");
    ck_assert_int_eq(nf_exec(nf, "-N MYCHAIN", err, sizeof err), LB_EEXIST);
    exec_ok(nf, "-A MYCHAIN -j DROP");
    exec_ok(nf, "-A INPUT -j MYCHAIN");
    ck_assert_int_eq(nf_exec(nf, "-X MYCHAIN", err, sizeof err), LB_EPARSE);
    ck_assert_str_eq(err, "line 1: cannot delete chain MYCHAIN: it is not empty");
    exec_ok(nf, "-F MYCHAIN");
    ck_assert_int_eq(nf_exec(nf, "-X MYCHAIN", err, sizeof err), LB_EPARSE);
    ck_assert_str_eq(err, "line 1: cannot delete chain MYCHAIN: rules jump to it");
    exec_ok(nf, "-F");
    exec_ok(nf, "-X");
    ck_assert_uint_eq(nf_rule_count(nf), 0);
    host_free(&h);
}
END_TEST

START_TEST(parse_errors)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n");
    char err[256];
    static const struct { const char *cmd; int rc; const char *msg; } cases[] = {
        { "-A INPUT -p tcp --bogus 1 -j ACCEPT", LB_EPARSE, "line 1: unknown option \"--bogus\"" },
        { "-A INPUT --dport 80 -j DROP", LB_EPARSE, "line 1: unknown option \"--dport\"" },
        { "-A NOPE -j ACCEPT", LB_ENOENT, "line 1: no chain named \"NOPE\" in table filter" },
        { "-t nat -A PREROUTING -j KUBE-SVC-X", LB_ENOENT,
          "line 1: -j KUBE-SVC-X: no chain or target named \"KUBE-SVC-X\" in table nat" },
        { "-A INPUT -s 10.0.0.300 -j DROP", LB_EPARSE, "line 1: -s: invalid address \"10.0.0.300\"" },
        { "-A INPUT -d 10.0.0.0/33 -j DROP", LB_EPARSE, "line 1: -d: invalid address \"10.0.0.0/33\"" },
        { "-A INPUT -p tcp --dport 99999 -j DROP", LB_EPARSE,
          "line 1: invalid port/service \"99999\" specified" },
        { "-A INPUT -p bogus -j DROP", LB_EPARSE, "line 1: unknown protocol \"bogus\" specified" },
        { "-A INPUT -m physdev --physdev-in x -j DROP", LB_EPARSE,
          "line 1: match \"physdev\" is not supported" },
        { "-A INPUT -m tcp --dport 80 -j DROP", LB_EPARSE, "line 1: -m tcp needs -p tcp" },
        { "-A INPUT -j DNAT --to-destination 1.2.3.4", LB_EPARSE,
          "line 1: DNAT is only valid in the nat table" },
        { "-t nat -A PREROUTING -j DNAT", LB_EPARSE, "line 1: DNAT needs --to-destination" },
        { "-t nat -A PREROUTING -j DNAT --to-destination 1.2.3.4:80", LB_EPARSE,
          "line 1: DNAT: a port needs -p tcp, udp or sctp" },
        { "-t nat -A POSTROUTING -j DNAT --to-destination 1.2.3.4", LB_EPARSE,
          "line 1: DNAT in chain POSTROUTING rule 1 is reached from POSTROUTING; DNAT is valid "
          "only in PREROUTING and OUTPUT" },
        { "-A INPUT -j REJECT --reject-with tcp-reset", LB_EPARSE,
          "line 1: REJECT --reject-with tcp-reset needs -p tcp" },
        { "-A INPUT -j REJECT --reject-with icmp-bogus", LB_EPARSE,
          "line 1: REJECT: unknown --reject-with type \"icmp-bogus\"" },
        { "-A INPUT -m statistic --mode nth --every 2 -j DROP", LB_EPARSE,
          "line 1: statistic: --mode nth is not supported (only random)" },
        { "-A INPUT -m statistic --mode random --probability 1.5 -j DROP", LB_EPARSE,
          "line 1: --probability: \"1.5\" is not in 0..1" },
        { "-A INPUT -m conntrack --ctstate BOGUS -j DROP", LB_EPARSE,
          "line 1: --ctstate: bad state \"BOGUS\"" },
        { "-A INPUT -m comment --comment \"oops -j DROP", LB_EPARSE,
          "line 1: unterminated quoted string" },
        { "-A INPUT -j LOG", LB_EPARSE, "line 1: target LOG is not supported" },
        { "-A INPUT -j MARK", LB_EPARSE, "line 1: MARK needs exactly one of --set-xmark, "
          "--set-mark, --and-mark, --or-mark, --xor-mark" },
        { "-P INPUT REJECT", LB_EPARSE, "line 1: -P INPUT: bad policy \"REJECT\" (ACCEPT or DROP)" },
        { "-X INPUT", LB_EPARSE, "line 1: cannot delete built-in chain INPUT" },
        { "-t bogus -A INPUT -j DROP", LB_EPARSE, "line 1: unknown table \"bogus\"" },
        { "-s 10.0.0.1", LB_EPARSE, "line 1: no command specified" },
        { "-A INPUT -j INPUT", LB_EPARSE, "line 1: cannot jump to built-in chain INPUT" },
        { "-A INPUT ! -j DROP", LB_EPARSE, "line 1: \"!\" before -j" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = nf_exec(nf, cases[i].cmd, err, sizeof err);
        ck_assert_msg(rc == cases[i].rc, "%s: rc %d (%s)", cases[i].cmd, rc, err);
        ck_assert_msg(!strcmp(err, cases[i].msg), "%s:\n got  %s\n want %s", cases[i].cmd, err,
                      cases[i].msg);
    }
    ck_assert_uint_eq(nf_rule_count(nf), 0);
    /* restore: line numbers count every line; a failed table is not applied */
    static const struct { const char *text; const char *msg; } rcases[] = {
        { "*filter\n:FOO - [0:0]\n-A FOO -j BAR\nCOMMIT\n",
          "line 3: -j BAR: no chain or target named \"BAR\" in table filter" },
        { "# c\n*nat\n-A PREROUTING -j ACCEPT\n", "line 3: COMMIT expected at the end of the "
          "input (table nat)" },
        { "-A INPUT -j ACCEPT\n", "line 1: no table specified (a *table line must come first)" },
        { "*filter\n-t nat -A INPUT -j ACCEPT\nCOMMIT\n",
          "line 2: -t cannot be used in restore input (use *table)" },
        { "*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n",
          "line 7: table filter: chain loop through A" },
        { "*filter\n:FOO ACCEPT [0:0]\nCOMMIT\n",
          "line 2: user chain FOO cannot have policy \"ACCEPT\"" },
        { "*filter\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
          "line 2: table filter has no built-in chain PREROUTING" },
    };
    for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
        int rc = nf_restore(nf, rcases[i].text, err, sizeof err);
        ck_assert_msg(rc < 0, "%s accepted", rcases[i].text);
        ck_assert_msg(!strcmp(err, rcases[i].msg), "got  %s\nwant %s", err, rcases[i].msg);
        ck_assert_uint_eq(nf_rule_count(nf), 0);
    }
    host_free(&h);
}
END_TEST

/* ---- matching -------------------------------------------------------------------------------- */

static void hook_input(nf_t *nf, net_iface_t *in, pkt_t *p)
{
    ck_assert_int_eq(nf_hook(nf, NF_INPUT, p, in, NULL), NF_ACCEPT);
    pkt_free(in->node->net, p);
}

START_TEST(rule_matching)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n");
    net_iface_t *cni = net_iface_add(h.n, "cni0", tu_ip("10.244.0.1"), 24);
    const char *rules[] = {
        "-A INPUT -s 10.1.0.0/16",                          /* 1 */
        "-A INPUT ! -s 10.1.0.0/16",                        /* 2 */
        "-A INPUT -p tcp --dport 80",                       /* 3 */
        "-A INPUT -p tcp -m tcp ! --dport 80",              /* 4 */
        "-A INPUT -p udp --sport 1000:2000",                /* 5 */
        "-A INPUT -m mark --mark 0x4000/0x4000",            /* 6 */
        "-A INPUT -m addrtype --dst-type LOCAL",            /* 7 */
        "-A INPUT -m addrtype ! --src-type LOCAL",          /* 8 */
        "-A INPUT -i eth+",                                 /* 9 */
        "-A INPUT -o eth0",                                 /* 10: never at INPUT */
        "-A INPUT ! -i cni0 -d 10.0.0.0/255.255.255.0",     /* 11 */
        "-A INPUT -p tcp -j MARK --or-mark 0x1",            /* 12 */
        "-A INPUT -m mark --mark 0x1",                      /* 13: sees 12's mark, exact */
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        exec_ok(nf, rules[i]);
    pkt_t *p;
    p = tu_tcp_seg(h.net, "10.1.2.3", 5000, "10.0.0.1", 80, TCP_SYN, 1, 0);    /* eth0 */
    hook_input(nf, h.eth, p);
    p = tu_tcp_seg(h.net, "10.2.2.3", 5000, "10.0.0.1", 443, TCP_SYN, 1, 0);
    p->mark = 0x4001;
    hook_input(nf, h.eth, p);
    p = udp_pkt(h.net, "10.1.9.9", 1500, "10.244.0.7", 53);                     /* cni0 */
    hook_input(nf, cni, p);
    p = tu_tcp_seg(h.net, "10.0.0.1", 2500, "10.0.0.1", 22, TCP_SYN, 1, 0);    /* local src */
    p->proto = NET_PROTO_UDP;
    hook_input(nf, cni, p);
    static const int64_t want[] = { 2, 2, 1, 1, 1, 1, 3, 3, 2, 0, 2, 2, 1 };
    for (int i = 0; i < 13; i++)
        ck_assert_msg(nf_rule_packets(nf, "filter", "INPUT", i + 1) == want[i],
                      "rule %d: %lld packets, want %lld", i + 1,
                      (long long)nf_rule_packets(nf, "filter", "INPUT", i + 1), (long long)want[i]);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "INPUT", 14), -1);
    host_free(&h);
}
END_TEST

/* kube-proxy's 1/3, 1/2, rest chain: 10,000 new connections split evenly (each endpoint
 * 3333 +- 3 sigma ~ 141), and the same seed gives exactly the same split. */
static void split_run(uint64_t seed, int64_t out[3])
{
    host_t h;
    nf_t *nf = host_new(&h, seed, "node-1");
    const char *text =
        "*filter\n:SVC - [0:0]\n:EP1 - [0:0]\n:EP2 - [0:0]\n:EP3 - [0:0]\n"
        "-A INPUT -j SVC\n"
        "-A SVC -m statistic --mode random --probability 0.33333333349 -j EP1\n"
        "-A SVC -m statistic --mode random --probability 0.50000000000 -j EP2\n"
        "-A SVC -j EP3\n"
        "-A EP1 -j ACCEPT\n-A EP2 -j ACCEPT\n-A EP3 -j ACCEPT\nCOMMIT\n";
    restore_ok(nf, text);
    for (int i = 0; i < 10000; i++)
        hook_input(nf, h.eth, tu_tcp_seg(h.net, "10.9.0.1", (uint16_t)(1024 + i), "10.0.0.1",
                                         80, TCP_SYN, 1, 0));
    for (int k = 0; k < 3; k++) {
        char ch[8];
        snprintf(ch, sizeof ch, "EP%d", (k + 1) % 100);
        out[k] = nf_rule_packets(nf, "filter", ch, 1);
    }
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "SVC", 1), out[0]);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "SVC", 2), out[1]);
    host_free(&h);
}

START_TEST(statistic_split)
{
    int64_t a[3], b[3], c[3];
    split_run(42, a);
    split_run(42, b);
    split_run(43, c);
    ck_assert_int_eq(a[0] + a[1] + a[2], 10000);
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(llabs(a[k] - 3333) < 200, "endpoint %d got %lld", k + 1, (long long)a[k]);
        ck_assert_int_eq(a[k], b[k]);
    }
    ck_assert(a[0] != c[0] || a[1] != c[1]);
}
END_TEST

/* ---- DNAT + MASQUERADE through R, NAT reversal, later packets skip nat ------------------- */

START_TEST(dnat_masquerade_end_to_end)
{
    topo_t t;
    nf_t *nf = topo_kube(&t, 1, true);
    uint64_t flow = net_flow_new(t.net);
    net_trace_flow(t.net, flow);
    /* A: SYN to the VIP */
    pkt_t *syn = tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.96.0.10", 80, TCP_SYN, 1000, 0);
    syn->flow = flow;
    net_node_output(t.a, syn);
    run_for(&t, 10 * SIM_MS);
    const pkt_t *atb = arrived(&t, "b", 0);
    ck_assert_uint_eq(atb->src, tu_ip("10.0.1.254"));      /* MASQUERADE: R's eth1 */
    ck_assert_uint_eq(atb->sport, 40000);                   /* port kept: no clash */
    ck_assert_uint_eq(atb->dst, tu_ip("10.0.1.2"));
    ck_assert_uint_eq(atb->dport, 8080);
    ck_assert_uint_eq(atb->mark, 0);                        /* KUBE-POSTROUTING cleared it */
    const ct_entry_t *e = nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), 40000,
                                       tu_ip("10.96.0.10"), 80);
    ck_assert_ptr_nonnull(e);
    ck_assert(nf_ct_is_dnat(e) && nf_ct_is_snat(e));
    ck_assert_int_eq(nf_ct_tcp_state(e), NF_TCP_SYN_SENT);
    nf_tuple_t rt = nf_ct_tuple(e, 1);
    ck_assert_uint_eq(rt.src, tu_ip("10.0.1.2"));
    ck_assert_uint_eq(rt.sport, 8080);
    ck_assert_uint_eq(rt.dst, tu_ip("10.0.1.254"));
    ck_assert_uint_eq(rt.dport, 40000);
    ck_assert_ptr_eq(nf_ct_lookup(nf, NET_PROTO_TCP, rt.src, rt.sport, rt.dst, rt.dport), e);
    /* B answers to R's address; A sees the VIP */
    pkt_t *sa = tu_tcp_seg(t.net, "10.0.1.2", 8080, "10.0.1.254", 40000, TCP_SYN | TCP_ACK, 5000, 1001);
    sa->flow = flow;
    net_node_output(t.b, sa);
    run_for(&t, 10 * SIM_MS);
    const pkt_t *ata = arrived(&t, "a", 0);
    ck_assert_uint_eq(ata->tcp_flags, TCP_SYN | TCP_ACK);
    ck_assert_uint_eq(ata->src, tu_ip("10.96.0.10"));
    ck_assert_uint_eq(ata->sport, 80);
    ck_assert_uint_eq(ata->dst, tu_ip("10.0.0.1"));
    ck_assert_uint_eq(ata->dport, 40000);
    ck_assert_int_eq(nf_ct_tcp_state(e), NF_TCP_SYN_RECV);
    /* A's ACK: conntrack carries it, the nat chains do not see it */
    pkt_t *ack = tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.96.0.10", 80, TCP_ACK, 1001, 5001);
    ack->flow = flow;
    net_node_output(t.a, ack);
    run_for(&t, 10 * SIM_MS);
    const pkt_t *atb2 = arrived(&t, "b", 1);
    ck_assert_uint_eq(atb2->src, tu_ip("10.0.1.254"));
    ck_assert_uint_eq(atb2->dport, 8080);
    ck_assert_int_eq(nf_ct_tcp_state(e), NF_TCP_ESTABLISHED);
    ck_assert(nf_ct_assured(e));
    ck_assert_int_eq(nf_ct_expires(e), 21 * SIM_MS + 432000 * SIM_S);    /* ACK at R: 21 ms */
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "PREROUTING", 1), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-SERVICES", 1), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-SEP-SXIVWICOYRO3J4NJ", 2), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-POSTROUTING", 3), 1);
    /* filter saw every packet: SYN by its mark, SYN-ACK and ACK as ESTABLISHED */
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "FORWARD", 1), 3);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "KUBE-FORWARD", 1), 0);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "KUBE-FORWARD", 2), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "KUBE-FORWARD", 3), 2);
    ck_assert_uint_eq(nf_ct_count(nf), 1);
    /* the trace explains it */
    ck_assert(tu_obs_trace_has(t.o, "r: nat/PREROUTING -> KUBE-SERVICES rule 1 matched: "
                                    "-d 10.96.0.10/32 -p tcp -m comment --comment "
                                    "\"ns1/svc1:p80 cluster IP\" -m tcp --dport 80 "
                                    "-j KUBE-SVC-XPGD46QRK7WJZT7O"));
    ck_assert(tu_obs_trace_has(t.o, "r: DNAT dst 10.96.0.10:80 -> 10.0.1.2:8080"));
    ck_assert(tu_obs_trace_has(t.o, "r: SNAT src 10.0.0.1:40000 -> 10.0.1.254:40000"));
    ck_assert(tu_obs_trace_has(t.o, "r: un-SNAT dst 10.0.1.254:40000 -> 10.0.0.1:40000"));
    ck_assert(tu_obs_trace_has(t.o, "r: un-DNAT src 10.0.1.2:8080 -> 10.96.0.10:80"));
    ck_assert(tu_obs_trace_has(t.o, "r: ct: ESTABLISHED (reply)"));
    /* conntrack -L */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nf_ct_dump(nf, f);
    fclose(f);
    ck_assert_str_eq(buf, "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.96.0.10 sport=40000 "
                          "dport=80 src=10.0.1.2 dst=10.0.1.254 sport=8080 dport=40000 [ASSURED] "
                          "mark=0 use=1\n");
    free(buf);
    topo_free(&t);
}
END_TEST

/* Two clients behind R with the same source port, masqueraded to one address toward B:
 * the second keeps nothing -- its port moves to the next free one. */
START_TEST(masquerade_port_clash)
{
    topo_t t;
    nf_t *nf = topo_new(&t, 1);
    char err[256];
    exec_ok(nf, "-t nat -A POSTROUTING -o eth1 -j MASQUERADE");
    net_node_addr_add(t.a, tu_ip("10.0.0.7"));
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.0.1.2", 80, TCP_SYN, 1, 0));
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.7", 40000, "10.0.1.2", 80, TCP_SYN, 1, 0));
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.7", 40001, "10.0.1.2", 80, TCP_SYN, 1, 0));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 3);
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 0)->sport, 40000);
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 1)->sport, 40001);
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 2)->sport, 40002);   /* 40001 was taken meanwhile */
    for (int i = 0; i < 3; i++) ck_assert_uint_eq(tu_obs_cap(t.o, "b", i)->src, tu_ip("10.0.1.254"));
    ck_assert_uint_eq(nf_ct_count(nf), 3);
    /* -R replaces in place; --random-fully draws the port from the node's stream */
    ck_assert_int_eq(nf_exec(nf, "-t nat -R POSTROUTING 2 -j MASQUERADE", err, sizeof err), LB_EPARSE);
    ck_assert_str_eq(err, "line 1: -R POSTROUTING: rule number 2 does not exist");
    exec_ok(nf, "-t nat -R POSTROUTING 1 -o eth1 -p tcp -j MASQUERADE");
    ck_assert_uint_eq(nf_rule_count(nf), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "POSTROUTING", 1), 0);
    exec_ok(nf, "-t nat -I POSTROUTING -o eth1 -p udp -j MASQUERADE --random-fully");
    pkt_t *u = udp_pkt(t.net, "10.0.0.1", 5000, "10.0.1.2", 53);
    net_node_output(t.a, u);
    run_for(&t, 10 * SIM_MS);
    const pkt_t *ub = arrived(&t, "b", 3);
    ck_assert_uint_eq(ub->proto, NET_PROTO_UDP);
    ck_assert_uint_ge(ub->sport, 1024);
    ck_assert_uint_ne(ub->sport, 5000);
    topo_free(&t);
}
END_TEST

/* Two VIPs DNATed to one backend, same client port, no SNAT rule: the second reply tuple
 * would clash, so the null source binding at POSTROUTING moves its port (get_unique_tuple). */
START_TEST(dnat_null_binding_clash)
{
    topo_t t;
    nf_t *nf = topo_new(&t, 1);
    exec_ok(nf, "-t nat -A PREROUTING -d 10.96.0.10 -p tcp -j DNAT --to-destination 10.0.1.2:8080");
    exec_ok(nf, "-t nat -A PREROUTING -d 10.96.0.11 -p tcp -j DNAT --to-destination 10.0.1.2:8080");
    uint64_t flow = net_flow_new(t.net);
    net_trace_flow(t.net, flow);
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.96.0.10", 80, TCP_SYN, 1, 0));
    pkt_t *p = tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.96.0.11", 80, TCP_SYN, 1, 0);
    p->flow = flow;
    net_node_output(t.a, p);
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 2);
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 0)->src, tu_ip("10.0.0.1"));
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 0)->sport, 40000);
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 1)->src, tu_ip("10.0.0.1"));
    ck_assert_uint_eq(tu_obs_cap(t.o, "b", 1)->sport, 40001);
    ck_assert(tu_obs_trace_has(t.o, "NAT binding: SNAT 10.0.0.1:40000 -> 10.0.0.1:40001 "
                                    "(port clash: source port moved)"));
    const ct_entry_t *e = nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), 40000,
                                       tu_ip("10.96.0.11"), 80);
    ck_assert_ptr_nonnull(e);
    ck_assert(nf_ct_is_snat(e) && nf_ct_is_dnat(e));
    /* B's answer on the moved port goes back to A's original port, from the second VIP */
    net_node_output(t.b, tu_tcp_seg(t.net, "10.0.1.2", 8080, "10.0.0.1", 40001, TCP_SYN | TCP_ACK, 9, 2));
    run_for(&t, 10 * SIM_MS);
    const pkt_t *ata = arrived(&t, "a", 0);
    ck_assert_uint_eq(ata->src, tu_ip("10.96.0.11"));
    ck_assert_uint_eq(ata->dport, 40000);
    topo_free(&t);
}
END_TEST

/* ---- conntrack INVALID and tcp_loose ---------------------------------------------------------- */

START_TEST(ct_invalid_and_loose)
{
    topo_t t;
    nf_t *nf = topo_new(&t, 1);
    exec_ok(nf, "-A FORWARD -m conntrack --ctstate INVALID -j DROP");
    /* a SYN-ACK nobody asked for */
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 80, "10.0.1.2", 41000, TCP_SYN | TCP_ACK, 7, 8));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 0);
    int d = tu_obs_drop_find(t.o, "r", "ct-invalid");
    ck_assert_int_ge(d, 0);
    ck_assert_str_eq(t.o->drop[d].detail, "filter/FORWARD rule 1: -m conntrack --ctstate INVALID -j DROP");
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "FORWARD", 1), 1);
    ck_assert_uint_eq(nf_ct_count(nf), 0);
    /* loose (default): a mid-stream ACK is picked up as NEW, state ESTABLISHED, but only
     * for the unacknowledged timeout until a reply is seen */
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 41001, "10.0.1.2", 80, TCP_ACK, 100, 200));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 1);
    const ct_entry_t *e = nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), 41001,
                                       tu_ip("10.0.1.2"), 80);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(nf_ct_tcp_state(e), NF_TCP_ESTABLISHED);
    ck_assert_int_eq(nf_ct_expires(e), 10 * SIM_MS + 1 * SIM_MS + 300 * SIM_S);
    /* not loose: the same is INVALID */
    nf_params_t pp;
    nf_params_default(&pp);
    pp.tcp_loose = false;
    nf_set_params(nf, &pp);
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 41002, "10.0.1.2", 80, TCP_ACK, 100, 200));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "FORWARD", 1), 2);
    ck_assert_uint_eq(nf_ct_count(nf), 1);
    topo_free(&t);
}
END_TEST

/* The state a packet gets, by calling nf_hook directly: NEW, ESTABLISHED, INVALID. */
START_TEST(ct_packet_states)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n");
    nf_params_t pp;
    nf_params_default(&pp);
    pp.conntrack = true;
    nf_set_params(nf, &pp);
    struct { const char *src; uint16_t sp; const char *dst; uint16_t dp; uint8_t fl;
             enum nf_hook h; int state; int tcp; } steps[] = {
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_SYN, NF_PREROUTING, CT_NEW, NF_TCP_SYN_SENT },
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_SYN, NF_PREROUTING, CT_NEW, NF_TCP_SYN_SENT },
        { "10.0.0.1", 80, "10.0.0.9", 5555, TCP_SYN | TCP_ACK, NF_OUTPUT, CT_ESTABLISHED, NF_TCP_SYN_RECV },
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_ACK, NF_PREROUTING, CT_ESTABLISHED, NF_TCP_ESTABLISHED },
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_SYN | TCP_ACK, NF_PREROUTING, CT_INVALID, NF_TCP_ESTABLISHED },
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_FIN | TCP_ACK, NF_PREROUTING, CT_ESTABLISHED, NF_TCP_FIN_WAIT },
        { "10.0.0.1", 80, "10.0.0.9", 5555, TCP_ACK, NF_OUTPUT, CT_ESTABLISHED, NF_TCP_CLOSE_WAIT },
        { "10.0.0.1", 80, "10.0.0.9", 5555, TCP_FIN | TCP_ACK, NF_OUTPUT, CT_ESTABLISHED, NF_TCP_LAST_ACK },
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_ACK, NF_PREROUTING, CT_ESTABLISHED, NF_TCP_TIME_WAIT },
        { "10.0.0.9", 5555, "10.0.0.1", 80, TCP_SYN, NF_PREROUTING, CT_NEW, NF_TCP_SYN_SENT },
    };
    sim_time_t timeouts[NF_TCP_STATE_COUNT] = {
        [NF_TCP_SYN_SENT] = 120 * SIM_S, [NF_TCP_SYN_RECV] = 60 * SIM_S,
        [NF_TCP_ESTABLISHED] = 432000 * SIM_S, [NF_TCP_FIN_WAIT] = 120 * SIM_S,
        [NF_TCP_CLOSE_WAIT] = 60 * SIM_S, [NF_TCP_LAST_ACK] = 30 * SIM_S,
        [NF_TCP_TIME_WAIT] = 120 * SIM_S };
    uint32_t seq = 100;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sim_run(h.sim, sim_now(h.sim) + SIM_S);
        pkt_t *p = tu_tcp_seg(h.net, steps[i].src, steps[i].sp, steps[i].dst, steps[i].dp,
                              steps[i].fl, seq++, 0);
        enum nf_hook h2 = steps[i].h == NF_PREROUTING ? NF_INPUT : NF_POSTROUTING;
        ck_assert_int_eq(nf_hook(nf, steps[i].h, p, steps[i].h == NF_PREROUTING ? h.eth : NULL,
                                 steps[i].h == NF_OUTPUT ? h.eth : NULL), NF_ACCEPT);
        ck_assert_msg(p->ct_state == steps[i].state, "step %zu: state %s", i,
                      nf_ct_state_name(p->ct_state));
        ck_assert_int_eq(nf_hook(nf, h2, p, h2 == NF_INPUT ? h.eth : NULL,
                                 h2 == NF_POSTROUTING ? h.eth : NULL), NF_ACCEPT);
        pkt_free(h.net, p);
        const ct_entry_t *e = nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.9"), 5555,
                                           tu_ip("10.0.0.1"), 80);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(nf_ct_tcp_state(e) == steps[i].tcp, "step %zu: tcp state %s", i,
                      nf_ct_tcp_state_name(nf_ct_tcp_state(e)));
        if (steps[i].state != CT_INVALID && i != 3)
            ck_assert_int_eq(nf_ct_expires(e), sim_now(h.sim) + timeouts[steps[i].tcp]);
    }
    ck_assert_uint_eq(nf_ct_count(nf), 1);
    /* a reply RST before any reply: the entry is deleted at once (nf_conntrack_proto_tcp.c) */
    pkt_t *rst = tu_tcp_seg(h.net, "10.0.0.1", 80, "10.0.0.9", 5555, TCP_RST | TCP_ACK, 0, 201);
    ck_assert_int_eq(nf_hook(nf, NF_OUTPUT, rst, NULL, h.eth), NF_ACCEPT);
    ck_assert_int_eq(rst->ct_state, CT_ESTABLISHED);
    ck_assert_int_eq(nf_hook(nf, NF_POSTROUTING, rst, NULL, h.eth), NF_ACCEPT);
    pkt_free(h.net, rst);
    ck_assert_uint_eq(nf_ct_count(nf), 0);
    /* a UDP packet with no entry is NEW; ICMP echo reply without a request is INVALID */
    pkt_t *u = udp_pkt(h.net, "10.0.0.9", 1, "10.0.0.1", 2);
    nf_hook(nf, NF_PREROUTING, u, h.eth, NULL);
    ck_assert_int_eq(u->ct_state, CT_NEW);
    pkt_free(h.net, u);
    pkt_t *ic = tu_tcp_seg(h.net, "10.0.0.9", 0, "10.0.0.1", 0, 0, 0, 0);
    ic->proto = NET_PROTO_ICMP;
    ic->icmp_type = 0;
    nf_hook(nf, NF_PREROUTING, ic, h.eth, NULL);
    ck_assert_int_eq(ic->ct_state, CT_INVALID);
    pkt_free(h.net, ic);
    host_free(&h);
}
END_TEST

/* ---- REJECT and ICMP errors ------------------------------------------------------------------- */

START_TEST(reject_tcp_reset)
{
    topo_t t;
    nf_t *nf = topo_kube(&t, 1, true);
    exec_ok(nf, "-I FORWARD -d 10.0.1.2 -p tcp --dport 8080 -j REJECT --reject-with tcp-reset");
    /* SYN to the VIP, DNATed, then rejected in FORWARD: the RST is attached to the
     * connection, so A gets it from the VIP, not from the backend */
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.96.0.10", 80, TCP_SYN, 1000, 0));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 0);
    const pkt_t *rst = arrived(&t, "a", 0);
    ck_assert_uint_eq(rst->tcp_flags, TCP_RST | TCP_ACK);
    ck_assert_uint_eq(rst->seq, 0);
    ck_assert_uint_eq(rst->ack, 1001);                    /* isn + 1 */
    ck_assert_uint_eq(rst->src, tu_ip("10.96.0.10"));
    ck_assert_uint_eq(rst->sport, 80);
    ck_assert_uint_eq(rst->dport, 40000);
    int d = tu_obs_drop_find(t.o, "r", "nf-reject");
    ck_assert_int_ge(d, 0);
    ck_assert_str_eq(t.o->drop[d].detail, "filter/FORWARD rule 1: -d 10.0.1.2/32 -p tcp -m tcp "
                     "--dport 8080 -j REJECT --reject-with tcp-reset");
    ck_assert_uint_eq(nf_ct_count(nf), 0);                /* the dropped SYN left nothing */
    /* an ACK-bearing segment gets seq = its ack and a bare RST */
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40001, "10.0.1.2", 8080, TCP_ACK, 5, 77));
    run_for(&t, 10 * SIM_MS);
    rst = arrived(&t, "a", 1);
    ck_assert_uint_eq(rst->tcp_flags, TCP_RST);
    ck_assert_uint_eq(rst->seq, 77);
    ck_assert_uint_eq(rst->src, tu_ip("10.0.1.2"));
    topo_free(&t);
}
END_TEST

/* B has no UDP socket: its ICMP port-unreachable (about R's masqueraded packet) must reach A
 * from the VIP, quoting A's own packet (icmp_error_message + nf_nat_icmp_reply_translation). */
START_TEST(icmp_error_from_behind_dnat)
{
    topo_t t;
    nf_t *nf = topo_kube(&t, 1, true);
    pkt_t *u = udp_pkt(t.net, "10.0.0.1", 33000, "10.96.0.10", 53);
    u->len = 40;
    net_node_output(t.a, u);
    run_for(&t, 10 * SIM_MS);
    const pkt_t *atb = arrived(&t, "b", 0);
    ck_assert_uint_eq(atb->dport, 5353);
    ck_assert_uint_eq(atb->src, tu_ip("10.0.1.254"));
    const pkt_t *ic = arrived(&t, "a", 0);
    ck_assert_uint_eq(ic->proto, NET_PROTO_ICMP);
    ck_assert_uint_eq(ic->icmp_type, ICMP_DEST_UNREACH);
    ck_assert_uint_eq(ic->icmp_code, ICMP_PORT_UNREACH);
    ck_assert_uint_eq(ic->src, tu_ip("10.96.0.10"));
    ck_assert_uint_eq(ic->dst, tu_ip("10.0.0.1"));
    ck_assert_uint_eq(ic->inner.src, tu_ip("10.0.0.1"));
    ck_assert_uint_eq(ic->inner.sport, 33000);
    ck_assert_uint_eq(ic->inner.dst, tu_ip("10.96.0.10"));
    ck_assert_uint_eq(ic->inner.dport, 53);
    ck_assert_uint_eq(ic->inner.proto, NET_PROTO_UDP);
    /* RELATED passed KUBE-FORWARD's RELATED,ESTABLISHED rule */
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "KUBE-FORWARD", 3), 1);
    topo_free(&t);
}
END_TEST

/* ---- expiry ---------------------------------------------------------------------------------- */

START_TEST(ct_expiry)
{
    topo_t t;
    nf_t *nf = topo_new(&t, 1);
    exec_ok(nf, "-t nat -A POSTROUTING -o eth1 -j MASQUERADE");
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.0.1.2", 80, TCP_SYN, 1, 0));
    pkt_t *u = udp_pkt(t.net, "10.0.0.1", 5000, "10.0.1.2", 53);
    net_node_output(t.a, u);
    run_for(&t, 10 * SIM_MS);                   /* SYN passed R at 1 ms */
    ck_assert_uint_eq(nf_ct_count(nf), 2);
    /* UDP: 30 s unreplied */
    sim_run(t.sim, 1 * SIM_MS + 30 * SIM_S - 1);
    ck_assert_uint_eq(nf_ct_count(nf), 2);
    sim_run(t.sim, 1 * SIM_MS + 30 * SIM_S);
    ck_assert_uint_eq(nf_ct_count(nf), 1);
    ck_assert_ptr_null(nf_ct_lookup(nf, NET_PROTO_UDP, tu_ip("10.0.0.1"), 5000, tu_ip("10.0.1.2"), 53));
    /* TCP SYN_SENT: 120 s */
    sim_run(t.sim, 1 * SIM_MS + 120 * SIM_S - 1);
    ck_assert_ptr_nonnull(nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), 40000, tu_ip("10.0.1.2"), 80));
    sim_run(t.sim, 1 * SIM_MS + 120 * SIM_S);
    ck_assert_ptr_null(nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), 40000, tu_ip("10.0.1.2"), 80));
    ck_assert_uint_eq(nf_ct_count(nf), 0);
    /* the periodic sweep reclaims them and then stops: the queue drains */
    sim_run(t.sim, SIM_TIME_MAX);
    ck_assert_uint_eq(sim_events_pending(t.sim), 0);
    ck_assert_int_le(sim_now(t.sim), 140 * SIM_S);
    /* a new connection on the expired tuple is NEW again and walks the nat chain */
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.0.1.2", 80, TCP_SYN, 1, 0));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "POSTROUTING", 1), 3);
    /* a dropped first packet leaves no entry behind */
    exec_ok(nf, "-P FORWARD DROP");
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40010, "10.0.1.2", 80, TCP_SYN, 1, 0));
    run_for(&t, 10 * SIM_MS);
    ck_assert_int_ge(tu_obs_drop_find(t.o, "r", "nf-drop"), 0);
    ck_assert_str_eq(t.o->drop[tu_obs_drop_find(t.o, "r", "nf-drop")].detail, "filter/FORWARD policy DROP");
    ck_assert_uint_eq(nf_ct_count(nf), 1);
    topo_free(&t);
}
END_TEST

/* nf_conntrack_max: a connection finding the table full is dropped ("nf_conntrack: table
 * full, dropping packet"); established ones keep flowing. */
START_TEST(ct_table_full)
{
    topo_t t;
    nf_t *nf = topo_new(&t, 1);
    exec_ok(nf, "-t nat -A POSTROUTING -o eth1 -j MASQUERADE");
    nf_params_t pp = *nf_params(nf);
    ck_assert_int_eq(pp.ct_max, NF_CT_MAX_DEFAULT);
    pp.ct_max = 2;
    nf_set_params(nf, &pp);
    for (int i = 0; i < 3; i++)
        net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", (uint16_t)(40000 + i), "10.0.1.2", 80,
                                        TCP_SYN, 1, 0));
    run_for(&t, 10 * SIM_MS);
    ck_assert_uint_eq(nf_ct_count(nf), 2);
    int d = tu_obs_drop_find(t.o, "r", "ct-table-full");
    ck_assert_int_ge(d, 0);
    ck_assert_ptr_null(nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), 40002, tu_ip("10.0.1.2"), 80));
    /* a retransmitted SYN of a tracked connection still passes */
    net_node_output(t.a, tu_tcp_seg(t.net, "10.0.0.1", 40000, "10.0.1.2", 80, TCP_SYN, 1, 0));
    run_for(&t, 10 * SIM_MS);
    ck_assert_uint_eq(nf_ct_count(nf), 2);
    topo_free(&t);
}
END_TEST

/* ---- fast path -------------------------------------------------------------------------------- */

START_TEST(fast_path_untouched)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n");
    pkt_t *p = tu_tcp_seg(h.net, "10.0.0.9", 1, "10.0.0.1", 2, TCP_SYN, 1, 0);
    for (int k = 0; k < NF_HOOK_COUNT; k++)
        ck_assert_int_eq(nf_hook(nf, (enum nf_hook)k, p, h.eth, h.eth), NF_ACCEPT);
    ck_assert_int_eq(p->ct_state, CT_NONE);
    ck_assert_ptr_null(p->ct);
    ck_assert_uint_eq(nf_ct_count(nf), 0);
    pkt_free(h.net, p);
    char *s = save_str(nf, false);
    ck_assert_str_eq(s, "");                      /* nothing touched, nothing printed */
    free(s);
    host_free(&h);
}
END_TEST

/* ---- session affinity (xt_recent) -------------------------------------------------------------- */

START_TEST(recent_affinity)
{
    host_t h;
    nf_t *nf = host_new(&h, 7, "n");
    const char *text =
        "*filter\n:SVC - [0:0]\n:SEP1 - [0:0]\n:SEP2 - [0:0]\n-A INPUT -j SVC\n"
        "-A SVC -m recent --name SEP1 --rcheck --seconds 10 --reap -j SEP1\n"
        "-A SVC -m recent --name SEP2 --rcheck --seconds 10 --reap -j SEP2\n"
        "-A SVC -m statistic --mode random --probability 0.5 -j SEP1\n"
        "-A SVC -j SEP2\n"
        "-A SEP1 -m recent --set --name SEP1 --mask 255.255.255.255 --rsource -j ACCEPT\n"
        "-A SEP2 -m recent --set --name SEP2 --mask 255.255.255.255 --rsource -j ACCEPT\n"
        "COMMIT\n";
    restore_ok(nf, text);
    for (int i = 0; i < 20; i++)
        hook_input(nf, h.eth, tu_tcp_seg(h.net, "10.9.9.9", (uint16_t)(2000 + i), "10.0.0.1", 80, TCP_SYN, 1, 0));
    int64_t s1 = nf_rule_packets(nf, "filter", "SEP1", 1), s2 = nf_rule_packets(nf, "filter", "SEP2", 1);
    ck_assert_int_eq(s1 + s2, 20);
    ck_assert(s1 == 20 || s2 == 20);               /* one client, one endpoint */
    /* after --seconds of silence the address is reaped and chosen afresh */
    sim_run(h.sim, 11 * SIM_S);
    hook_input(nf, h.eth, tu_tcp_seg(h.net, "10.9.9.9", 3000, "10.0.0.1", 80, TCP_SYN, 1, 0));
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "SVC", 1) + nf_rule_packets(nf, "filter", "SVC", 2), 19);
    host_free(&h);
}
END_TEST


/* ---- real TCP stacks through the router ------------------------------------------------------ */

/* A connects to the VIP with its own TCP stack; B's listener sees R's address; the reply
 * comes back through the un-NAT; the close walks conntrack to TIME_WAIT. */
START_TEST(tcp_connection_through_dnat)
{
    topo_t t;
    nf_t *nf = topo_kube(&t, 3, false);
    /* the server answers each message with 1000 bytes; the client closes on the answer */
    tu_side_t srv = { .sim = t.sim, .reply = 1000, .close_on_eof = true };
    tu_side_t cli = { .sim = t.sim, .close_on_recv = true };
    ck_assert_int_eq(tcp_listen(t.b, 0, 8080, tu_side_accept, &srv), 0);
    int rc = 0;
    cli.c = tcp_connect(t.a, tu_ip("10.96.0.10"), 80, NULL, &tu_side_cbs, &cli, &rc);
    ck_assert_ptr_nonnull(cli.c);
    uint16_t cport = tcp_conn_lport(cli.c);
    run_for(&t, 100 * SIM_MS);
    ck_assert_int_eq(cli.connected, 1);
    ck_assert_int_eq(srv.accepted, 1);
    ck_assert_uint_eq(srv.peer, tu_ip("10.0.1.254"));
    ck_assert_uint_eq(srv.peer_port, cport);
    net_msg_t *m = net_msg_raw(500);
    ck_assert_int_eq(tcp_send(cli.c, m), 0);
    net_msg_unref(m);
    run_for(&t, 100 * SIM_MS);
    ck_assert_int_eq(srv.recvs, 1);
    ck_assert_uint_eq(srv.bytes, 500);
    ck_assert_uint_eq(cli.bytes, 1000);
    run_for(&t, 100 * SIM_MS);                  /* both FINs and their ACKs */
    ck_assert_int_eq(srv.eofs, 1);
    const ct_entry_t *e = nf_ct_lookup(nf, NET_PROTO_TCP, tu_ip("10.0.0.1"), cport,
                                       tu_ip("10.96.0.10"), 80);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(nf_ct_tcp_state(e), NF_TCP_TIME_WAIT);
    ck_assert(nf_ct_assured(e));
    ck_assert_int_le(nf_ct_expires(e), sim_now(t.sim) + 120 * SIM_S);
    ck_assert_int_gt(nf_ct_expires(e), sim_now(t.sim) + 119 * SIM_S);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-SERVICES", 1), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "filter", "KUBE-FORWARD", 1), 0);   /* no INVALID */
    ck_assert_int_eq(tu_obs_drop_find(t.o, "r", "nf-drop"), -1);
    topo_free(&t);
}
END_TEST

/* REJECT in FORWARD behind the DNAT: the ICMP port-unreachable (or the RST) reaches A's
 * socket, which matches it only if conntrack translated it back to A's own tuple. */
static void refused_case(const char *reject_with)
{
    topo_t t;
    nf_t *nf = topo_kube(&t, 4, false);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "-I FORWARD -d 10.0.1.2 -p tcp --dport 8080 -j REJECT%s%s",
             reject_with ? " --reject-with " : "", reject_with ? reject_with : "");
    exec_ok(nf, cmd);
    tu_side_t cli = { .sim = t.sim, .close_on_recv = true };
    int rc = 0;
    cli.c = tcp_connect(t.a, tu_ip("10.96.0.10"), 80, NULL, &tu_side_cbs, &cli, &rc);
    ck_assert_ptr_nonnull(cli.c);
    run_for(&t, 100 * SIM_MS);
    ck_assert_int_eq(cli.errors, 1);
    ck_assert_int_eq(cli.rc, LB_ECONNREFUSED);
    ck_assert_int_eq(cli.t_error, 2 * SIM_MS);          /* one round trip to R */
    ck_assert_int_eq(tu_obs_cap_count(t.o, "b"), 0);
    ck_assert_uint_eq(nf_ct_count(nf), 0);
    topo_free(&t);
}

START_TEST(tcp_refused_by_reject)
{
    refused_case(NULL);                 /* icmp-port-unreachable */
    refused_case("tcp-reset");
}
END_TEST

/* ---- the dispatch index and the rules traversed per new connection ------------------------ */

/* A SYN from 10.9.x.y:sport to dst:dport through PREROUTING and POSTROUTING (a forwarded
 * packet's path), freed after; returns the PREROUTING verdict and the destination after. */
static int forward_one(host_t *h, nf_t *nf, pkt_t *p, uint32_t *dst, uint16_t *dport)
{
    int v = nf_hook(nf, NF_PREROUTING, p, h->eth, NULL);
    if (v != NF_ACCEPT) return v;
    *dst = p->dst;
    *dport = p->dport;
    v = nf_hook(nf, NF_POSTROUTING, p, NULL, h->eth);
    if (v == NF_ACCEPT) pkt_free(h->net, p);
    return v;
}

/* KUBE-SERVICES with 100 clusterIP rules: a connection to the 50th service is evaluated
 * against 50 rules, one to no service against all 100 (plus the last rule), as the
 * kernel's linear walk does; the index must report the same. */
START_TEST(rules_traversed_count)
{
    host_t h;
    nf_t *nf = host_new(&h, 1, "n");
    char text[65536];
    int k = snprintf(text, sizeof text, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n"
                     "-A PREROUTING -j KUBE-SERVICES\n");
    for (int i = 1; i <= 100; i++)
        k += snprintf(text + k, sizeof text - (size_t)k, "-A KUBE-SERVICES -d 10.96.0.%d/32 "
                      "-p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.%d:8080\n", i, i);
    k += snprintf(text + k, sizeof text - (size_t)k, "-A KUBE-SERVICES -m addrtype --dst-type "
                  "LOCAL -j KUBE-NODEPORTS\nCOMMIT\n");
    restore_ok(nf, text);
    uint32_t dst;
    uint16_t dport;
    pkt_t *p = tu_tcp_seg(h.net, "10.9.0.1", 40000, "10.96.0.50", 80, TCP_SYN, 1, 0);
    ck_assert_int_eq(forward_one(&h, nf, p, &dst, &dport), NF_ACCEPT);
    ck_assert_uint_eq(dst, tu_ip("10.244.1.50"));
    nf_walk_summary_t w;
    nf_walk_node(nf, &w);
    ck_assert_uint_eq(w.conns, 1);
    ck_assert_uint_eq(w.rules, 1 + 50);            /* PREROUTING's jump, then 50 */
    p = tu_tcp_seg(h.net, "10.9.0.1", 40001, "10.96.1.1", 80, TCP_SYN, 1, 0);
    ck_assert_int_eq(forward_one(&h, nf, p, &dst, &dport), NF_ACCEPT);
    nf_walk_node(nf, &w);
    ck_assert_uint_eq(w.conns, 2);
    ck_assert_uint_eq(w.rules, 51 + 1 + 101);
    ck_assert_uint_eq(w.max, 102);
    ck_assert_uint_eq(w.p50, 51);
    /* the same connection's next packet is not a new connection: no sample */
    p = tu_tcp_seg(h.net, "10.9.0.1", 40000, "10.96.0.50", 80, TCP_ACK, 2, 1);
    forward_one(&h, nf, p, &dst, &dport);
    nf_walk_node(nf, &w);
    ck_assert_uint_eq(w.conns, 2);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-SERVICES", 50), 1);
    ck_assert_int_eq(nf_rule_packets(nf, "nat", "KUBE-SERVICES", 101), 0);
    host_free(&h);
}
END_TEST

/* A tiny deterministic generator for the differential test. */
static uint32_t lcg(uint32_t *s) { *s = *s * 1664525u + 1013904223u; return *s >> 8; }

/* Rules of every kind the index must classify or leave alone (exact /32 + port, any
 * destination + port, port ranges, negations, masks, statistic and recent before and
 * after the port match, MARK, RETURN, jumps), run with and without the index. */
static char *mixed_rules(void)
{
    size_t cap = 1 << 20, k = 0;
    char *t = lb_calloc(1, cap);
    uint32_t s = 7;
    k += (size_t)snprintf(t + k, cap - k, "*nat\n:SVCS - [0:0]\n:NP - [0:0]\n:SEP - [0:0]\n"
                          ":RET - [0:0]\n-A PREROUTING -j SVCS\n"
                          "-A SEP -p tcp -m statistic --mode random --probability 0.5 -j DNAT "
                          "--to-destination 10.244.0.1:8080\n"
                          "-A SEP -p tcp -j DNAT --to-destination 10.244.0.2:8080\n"
                          "-A SEP -p udp -j DNAT --to-destination 10.244.0.3:53\n"
                          "-A RET -p tcp -m tcp --dport 81 -j RETURN\n-A RET -j MARK --or-mark 0x8\n");
    for (int i = 0; i < 20; i++)
        k += (size_t)snprintf(t + k, cap - k, "-A NP -p %s -m %s --dport %d -j SEP\n",
                              i % 3 ? "tcp" : "udp", i % 3 ? "tcp" : "udp", 30000 + i * 7);
    for (int i = 0; i < 400; i++) {
        int ip = (int)(lcg(&s) % 60), port = 80 + (int)(lcg(&s) % 4);
        const char *tgt[] = { "-j SEP", "-j RET", "-j MARK --or-mark 0x2", "",
                              "-j ACCEPT", "-j RETURN" };
        const char *tg = tgt[lcg(&s) % 6];
        switch (lcg(&s) % 9) {
        case 0: case 1: case 2:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS -d 10.96.0.%d/32 -p tcp -m tcp "
                                  "--dport %d %s\n", ip, port, tg);
            break;
        case 3:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS -p udp -m udp --dport %d %s\n", port,
                                  tg);
            break;
        case 4:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS -d 10.96.0.%d/32 -p tcp -m statistic "
                                  "--mode random --probability 0.3 -m tcp --dport %d %s\n", ip,
                                  port, tg);
            break;
        case 5:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS ! -d 10.96.0.%d/32 -p tcp -m tcp "
                                  "--dport %d -j MARK --or-mark 0x4\n", ip, port);
            break;
        case 6:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS -d 10.96.0.0/26 -p tcp -m tcp "
                                  "--dport %d:%d %s\n", port, port + 1, tg);
            break;
        case 7:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS -d 10.96.0.%d/32 -p tcp -m tcp ! "
                                  "--dport %d -m mark --mark 0x2/0x2 %s\n", ip, port, tg);
            break;
        default:
            k += (size_t)snprintf(t + k, cap - k, "-A SVCS -d 10.96.0.%d/32 -p tcp -m tcp "
                                  "--dport %d -m recent --name r%d --set %s\n", ip, port,
                                  i % 3, tg);
        }
    }
    k += (size_t)snprintf(t + k, cap - k, "-A SVCS -m addrtype --dst-type LOCAL -j NP\n"
                          "-A SVCS -j SEP\nCOMMIT\n");
    return t;
}

static char *mixed_run(bool linear, nf_walk_summary_t *w, uint64_t *digest)
{
    host_t h;
    nf_t *nf = host_new(&h, 3, "n");
    nf_params_t pa = *nf_params(nf);
    pa.linear = linear;
    nf_set_params(nf, &pa);
    char *text = mixed_rules();
    restore_ok(nf, text);
    lb_free(text);
    uint32_t s = 11;
    uint64_t d = 1469598103934665603ull;
    for (int i = 0; i < 3000; i++) {
        char dst[24];
        uint32_t r = lcg(&s) % 10;
        if (r < 7) snprintf(dst, sizeof dst, "10.96.0.%u", lcg(&s) % 64);
        else if (r < 9) snprintf(dst, sizeof dst, "10.0.0.1");   /* local: node ports */
        else snprintf(dst, sizeof dst, "10.97.0.%u", lcg(&s) % 5);
        uint16_t dport = (uint16_t)(r == 7 || r == 8 ? 30000 + lcg(&s) % 140 : 79 + lcg(&s) % 6);
        pkt_t *p = tu_tcp_seg(h.net, "10.9.0.1", (uint16_t)(1024 + i), dst, dport, TCP_SYN, 1, 0);
        if (lcg(&s) % 4 == 0) p->proto = NET_PROTO_UDP;
        uint32_t od = 0;
        uint16_t op = 0;
        int v = forward_one(&h, nf, p, &od, &op);
        d = (d ^ (uint64_t)v) * 1099511628211ull;
        d = (d ^ od) * 1099511628211ull;
        d = (d ^ op) * 1099511628211ull;
    }
    *digest = d;
    nf_walk_node(nf, w);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nf_save(nf, f, true);
    fclose(f);
    host_free(&h);
    return buf;
}

/* The index changes nothing but speed: verdicts, NAT, every counter and the rules
 * traversed are those of the linear walk. */
START_TEST(index_same_as_linear)
{
    nf_walk_summary_t wl, wi;
    uint64_t dl, di;
    char *lin = mixed_run(true, &wl, &dl);
    char *idx = mixed_run(false, &wi, &di);
    ck_assert_msg(strcmp(idx, lin) == 0, "iptables-save -c differs with the index");
    ck_assert_uint_eq(di, dl);
    ck_assert_uint_eq(wi.conns, wl.conns);
    ck_assert_uint_eq(wi.rules, wl.rules);
    ck_assert_uint_eq(wi.max, wl.max);
    ck_assert_uint_gt(wl.conns, 1000);
    ck_assert_uint_gt(wl.rules, wl.conns * 50);     /* the walks were long */
    free(lin);
    free(idx);
}
END_TEST

/* ---- shared tables ------------------------------------------------------------------------ */

static char *save_c(const nf_t *nf)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nf_save(nf, f, true);
    fclose(f);
    return buf;
}

static const uint64_t text_key[2] = { 0x1234, 0x5678 };   /* names kp_like's text */

/* kube-proxy's steps: its jump (nf_exec), then the restore -- keyed (as kube-proxy does
 * with its text cache) when flags has NF_RESTORE_SHARED and keyed is set. */
static void kp_like_k(nf_t *nf, const char *text, int flags, bool keyed)
{
    char err[256];
    nf_exec(nf, "-t nat -N KUBE-SERVICES", err, sizeof err);
    if (nf_exec(nf, "-t nat -C PREROUTING -j KUBE-SERVICES", err, sizeof err))
        exec_ok(nf, "-t nat -I PREROUTING -j KUBE-SERVICES");
    int rc = keyed ? nf_restore_keyed(nf, text, flags, text_key, err, sizeof err)
                   : nf_restore_flags(nf, text, flags, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
}

static void kp_like(nf_t *nf, const char *text, int flags) { kp_like_k(nf, text, flags, false); }

static void syns(host_t *h, nf_t *nf, const char *dst, int n, uint16_t *sport)
{
    for (int i = 0; i < n; i++) {
        uint32_t d;
        uint16_t dp;
        forward_one(h, nf, tu_tcp_seg(h->net, "10.9.0.1", (*sport)++, dst, 80, TCP_SYN, 1, 0),
                    &d, &dp);
    }
}

/* Two nodes of one network restoring the same kube-proxy-like text share one table, yet
 * each keeps its own counters, and a second restore (remembered: not parsed again on the
 * second node) carries them over exactly as private tables do: kept for the built-in
 * chains' rules, zero for the flushed chains. A change on one node unshares its table. */
START_TEST(shared_tables_keep_node_counters)
{
    bool keyed = _i == 1;                   /* loop test: 0 hashed texts, 1 keyed */
    char text[8192];
    int k = snprintf(text, sizeof text, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-A - [0:0]\n");
    for (int i = 1; i <= 30; i++)
        k += snprintf(text + k, sizeof text - (size_t)k, "-A KUBE-SERVICES -d 10.96.0.%d/32 -p "
                      "tcp -m tcp --dport 80 -j KUBE-SEP-A\n", i);
    snprintf(text + k, sizeof text - (size_t)k, "-A KUBE-SEP-A -p tcp -j DNAT "
             "--to-destination 10.244.0.5:8080\nCOMMIT\n");
    host_t h, r1, r2;
    nf_t *a = host_new(&h, 1, "a");
    net_node_t *nb = net_node_add(h.net, "b");
    net_iface_t *beth = net_iface_add(nb, "eth0", tu_ip("10.0.0.2"), 24);
    nf_t *b = nf_get(nb);
    nf_t *ra = host_new(&r1, 1, "a"), *rb = host_new(&r2, 1, "b");
    host_t hb = { h.sim, h.net, nb, beth };
    uint16_t sp = 1000;
    kp_like_k(a, text, NF_RESTORE_NOFLUSH | NF_RESTORE_SHARED, keyed);
    kp_like_k(b, text, NF_RESTORE_NOFLUSH | NF_RESTORE_SHARED, keyed);
    kp_like(ra, text, NF_RESTORE_NOFLUSH);
    kp_like(rb, text, NF_RESTORE_NOFLUSH);
    ck_assert(nf_table_shared(a, "nat") && nf_table_shared(b, "nat"));
    ck_assert(!nf_table_shared(ra, "nat"));
    syns(&h, a, "10.96.0.3", 5, &sp);
    syns(&r1, ra, "10.96.0.3", 5, &sp);
    syns(&hb, b, "10.96.0.30", 2, &sp);
    syns(&r2, rb, "10.96.0.30", 2, &sp);
    syns(&hb, b, "10.96.1.1", 1, &sp);
    syns(&r2, rb, "10.96.1.1", 1, &sp);
    ck_assert_int_eq(nf_rule_packets(a, "nat", "KUBE-SERVICES", 3), 5);
    ck_assert_int_eq(nf_rule_packets(b, "nat", "KUBE-SERVICES", 3), 0);
    for (int round = 0; round < 2; round++) {
        char *x = save_c(a), *y = save_c(ra);
        ck_assert_str_eq(x, y);
        free(x);
        free(y);
        x = save_c(b);
        y = save_c(rb);
        ck_assert_str_eq(x, y);
        free(x);
        free(y);
        kp_like_k(a, text, NF_RESTORE_NOFLUSH | NF_RESTORE_SHARED, keyed);   /* parsed */
        kp_like_k(b, text, NF_RESTORE_NOFLUSH | NF_RESTORE_SHARED, keyed);   /* remembered */
        kp_like(ra, text, NF_RESTORE_NOFLUSH);
        kp_like(rb, text, NF_RESTORE_NOFLUSH);
        ck_assert_int_eq(nf_rule_packets(a, "nat", "PREROUTING", 1), 5 + 3 * round);
        ck_assert_int_eq(nf_rule_packets(a, "nat", "KUBE-SERVICES", 3), 0);
        syns(&h, a, "10.96.0.7", 3, &sp);
        syns(&r1, ra, "10.96.0.7", 3, &sp);
    }
    exec_ok(a, "-t nat -A PREROUTING -p udp -j ACCEPT");
    ck_assert(!nf_table_shared(a, "nat"));
    ck_assert(nf_table_shared(b, "nat"));
    exec_ok(ra, "-t nat -A PREROUTING -p udp -j ACCEPT");
    char *x = save_c(a), *y = save_c(ra);
    ck_assert_str_eq(x, y);
    free(x);
    free(y);
    host_free(&r1);
    host_free(&r2);
    host_free(&h);
}
END_TEST

Suite *suite_netfilter(void)
{
    Suite *s = suite_create("netfilter");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, restore_save_roundtrip);
    tcase_add_test(tc, restore_noflush_and_exec);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, rule_matching);
    tcase_add_test(tc, statistic_split);
    tcase_add_test(tc, fast_path_untouched);
    tcase_add_test(tc, recent_affinity);
    suite_add_tcase(s, tc);
    tc = tcase_create("conntrack");
    tcase_add_test(tc, dnat_masquerade_end_to_end);
    tcase_add_test(tc, masquerade_port_clash);
    tcase_add_test(tc, dnat_null_binding_clash);
    tcase_add_test(tc, ct_invalid_and_loose);
    tcase_add_test(tc, ct_packet_states);
    tcase_add_test(tc, reject_tcp_reset);
    tcase_add_test(tc, icmp_error_from_behind_dnat);
    tcase_add_test(tc, ct_expiry);
    tcase_add_test(tc, ct_table_full);
    tcase_add_test(tc, tcp_connection_through_dnat);
    tcase_add_test(tc, tcp_refused_by_reject);
    tcase_add_test(tc, rules_traversed_count);
    tcase_add_test(tc, index_same_as_linear);
    tcase_add_loop_test(tc, shared_tables_keep_node_counters, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

/* test_net.c -- the packet network core: longest-prefix routing, link serialisation and
 * propagation timing, tail drop, loss, forwarding and TTL, fabrics and VIP handlers, and
 * drop accounting with reasons, route types (blackhole, unreachable, prohibit) and what a
 * connect() and a router make of them. Packets are UDP except in the connect() cases. */
#include <check.h>
#include <string.h>
#include "net.h"
#include "tcp.h"
#include "util.h"

typedef struct rxlog { int n; sim_time_t t[64]; uint32_t src[64], dst[64]; uint8_t ttl[64]; } rxlog_t;

static int udp_rx(net_node_t *node, pkt_t *p, void *data)
{
    rxlog_t *l = data;
    if (l->n < 64) {
        l->t[l->n] = sim_now(net_sim(node->net));
        l->src[l->n] = p->src;
        l->dst[l->n] = p->dst;
        l->ttl[l->n] = p->ttl;
        l->n++;
    }
    pkt_free(node->net, p);
    return 0;
}

/* Makes node n log the UDP datagrams it receives into l. */
static void rx_log(net_node_t *n, rxlog_t *l)
{
    n->udp_rx = udp_rx;
    n->udp_rx_data = l;
}

static pkt_t *udp(net_t *net, uint32_t src, uint32_t dst, uint32_t len)
{
    pkt_t *p = pkt_new(net);
    p->proto = NET_PROTO_UDP;
    p->src = src;
    p->dst = dst;
    p->sport = 1000;
    p->dport = 53;
    p->len = len;
    return p;
}

/* a sends n datagrams of len bytes to b, back to back, and the run goes on until all is
 * delivered or dropped. */
static void burst_ab(tu_pair_t *t, int n, uint32_t len)
{
    for (int i = 0; i < n; i++) net_node_output(t->a, udp(t->net, 0, tu_ip("10.0.0.2"), len));
    sim_run(t->sim, SIM_TIME_MAX);
}

START_TEST(route_longest_prefix)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *n = net_node_add(net, "r");
    net_iface_t *e0 = net_iface_add(n, "eth0", tu_ip("10.0.0.1"), 24);
    net_iface_t *e1 = net_iface_add(n, "eth1", tu_ip("10.1.0.1"), 16);
    net_route_add(n, 0, 0, tu_ip("10.0.0.254"), e0);
    net_route_add(n, tu_ip("10.1.5.0"), 24, tu_ip("10.0.0.9"), e0);
    ck_assert_ptr_eq(net_route_lookup(n, tu_ip("10.1.7.7"))->ifc, e1);
    ck_assert_ptr_eq(net_route_lookup(n, tu_ip("10.1.5.7"))->ifc, e0);
    ck_assert_uint_eq(net_route_lookup(n, tu_ip("10.1.5.7"))->gw, tu_ip("10.0.0.9"));
    ck_assert_uint_eq(net_route_lookup(n, tu_ip("8.8.8.8"))->gw, tu_ip("10.0.0.254"));
    ck_assert(net_node_is_local(n, tu_ip("10.1.0.1")));
    ck_assert(!net_node_is_local(n, tu_ip("10.1.0.2")));
    ck_assert_uint_eq(net_node_src_for(n, tu_ip("10.1.9.9")), tu_ip("10.1.0.1"));
    net_free(net);
    sim_free(sim);
}
END_TEST

/* 1000 payload + 28 header bytes at 8 Mbps = 1.028 ms, plus 1 ms latency. Back-to-back
 * packets leave one serialisation time apart. */
START_TEST(link_timing)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, 1 * SIM_MS, 8000000, 0);
    rxlog_t log = {0};
    rx_log(t.b, &log);
    burst_ab(&t, 3, 1000);
    ck_assert_int_eq(log.n, 3);
    sim_time_t ser = 1028 * SIM_US;
    for (int i = 0; i < 3; i++) ck_assert_int_eq(log.t[i], (i + 1) * ser + 1 * SIM_MS);
    ck_assert_uint_eq(log.src[0], tu_ip("10.0.0.1"));   /* source filled from the route */
    tu_pair_free(&t);
}
END_TEST

START_TEST(link_queue_tail_drop)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, 0, 8000000, 0);
    net_link_params_t lp = *net_link_params(t.link);
    lp.queue_bytes = 3000;          /* backlog counts every byte not yet serialised */
    net_link_set_params(t.link, &lp);
    rxlog_t log = {0};
    rx_log(t.b, &log);
    burst_ab(&t, 6, 1000);
    /* the first goes on the wire (1028 bytes backlog), the second joins (2056), the third
     * would make 3084 > 3000: it and the rest are tail-dropped */
    ck_assert_int_eq(log.n, 2);
    const char **r;
    const uint64_t *c;
    ck_assert_int_eq(net_drop_reasons(t.net, &r, &c), 1);
    ck_assert_str_eq(r[0], "queue-full");
    ck_assert_uint_eq(c[0], 4);
    tu_pair_free(&t);
}
END_TEST

/* all-links reaches a link whatever its own parameters: its queue caps a link that has
 * none (with a bandwidth cap, since an infinite link never queues), and its loss adds to
 * the link's own; zeros change nothing. */
START_TEST(all_links_caps_every_link)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, 0, 0, 0);                /* no bandwidth, no queue, no loss */
    net_all_links_t all = { .queue_bytes = 3000, .bandwidth_bps = 8000000 };
    net_set_all_links(t.net, &all);
    rxlog_t log = {0};
    rx_log(t.b, &log);
    burst_ab(&t, 6, 1000);                      /* as link_queue_tail_drop: 2 pass, 4 drop */
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.t[1], 2 * 1028 * SIM_US);  /* 1028 bytes at 8 Mbit/s: 1028 us */
    ck_assert_uint_eq(net_drops_total(t.net), 4);
    tu_pair_free(&t);

    tu_pair_new(&t, 1, 0, 0, 0.5);
    all = (net_all_links_t){ .loss = 1.0 };
    net_set_all_links(t.net, &all);
    for (int i = 0; i < 20; i++) net_node_output(t.a, udp(t.net, 0, tu_ip("10.0.0.2"), 10));
    sim_run(t.sim, SIM_TIME_MAX);
    const char **r;
    const uint64_t *c;
    ck_assert_int_eq(net_drop_reasons(t.net, &r, &c), 1);
    ck_assert_str_eq(r[0], "link-loss");
    ck_assert_uint_eq(c[0], 20);
    tu_pair_free(&t);

    /* a fabric: loss and the NIC queue alike */
    sim_t *sim;
    net_t *net;
    net_fabric_t *vnet;
    tu_fabric_new(1, "vnet", 0, &sim, &net, &vnet);
    net_node_t *a = tu_fabric_host(net, vnet, "a", "10.1.0.4", 24, false)->node;
    net_node_t *b = tu_fabric_host(net, vnet, "b", "10.1.0.5", 24, false)->node;
    log.n = 0;
    rx_log(b, &log);
    all = (net_all_links_t){ .queue_bytes = 1500, .bandwidth_bps = 8000000 };
    net_set_all_links(net, &all);
    for (int i = 0; i < 3; i++) net_node_output(a, udp(net, 0, tu_ip("10.1.0.5"), 1000));
    all = (net_all_links_t){ .loss = 1.0 };
    net_set_all_links(net, &all);
    net_node_output(a, udp(net, 0, tu_ip("10.1.0.5"), 10));
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(net_drop_reasons(net, &r, &c), 2);
    ck_assert_str_eq(r[0], "queue-full");
    ck_assert_uint_eq(c[0], 2);                 /* the second would wait behind the first */
    ck_assert_str_eq(r[1], "fabric-loss");
    ck_assert_uint_eq(c[1], 1);
    ck_assert_int_eq(log.n, 1);
    net_free(net);
    sim_free(sim);
}
END_TEST

START_TEST(link_loss_rate_and_determinism)
{
    int got[2];
    for (int k = 0; k < 2; k++) {
        tu_pair_t t;
        tu_pair_new(&t, 99, 10 * SIM_US, 0, 0.1);
        rxlog_t log = {0};
        rx_log(t.b, &log);
        for (int i = 0; i < 10000; i++) {
            net_node_output(t.a, udp(t.net, 0, tu_ip("10.0.0.2"), 10));
            if (i % 50 == 0) log.n = 0;         /* keep the small log from filling */
        }
        sim_run(t.sim, SIM_TIME_MAX);
        got[k] = (int)net_drops_total(t.net);
        tu_pair_free(&t);
    }
    ck_assert_int_eq(got[0], got[1]);
    ck_assert_int_ge(got[0], 900);
    ck_assert_int_le(got[0], 1100);
}
END_TEST

/* a - r - b: r forwards and decrements TTL; with forwarding off the packet is dropped with
 * reason "not-forwarding"; a packet to an unknown net is dropped "no-route". */
static void chain3(sim_t **sim, net_t **net, net_node_t **a, net_node_t **r, net_node_t **b)
{
    *sim = sim_new(1);
    *net = net_new(*sim);
    *a = net_node_add(*net, "a");
    *r = net_node_add(*net, "r");
    *b = net_node_add(*net, "b");
    net_link_params_t lp = {.latency = 100 * SIM_US};
    net_iface_t *a0 = net_iface_add(*a, "eth0", tu_ip("10.0.1.2"), 24);
    net_iface_t *r0 = net_iface_add(*r, "eth0", tu_ip("10.0.1.1"), 24);
    net_iface_t *r1 = net_iface_add(*r, "eth1", tu_ip("10.0.2.1"), 24);
    net_iface_t *b0 = net_iface_add(*b, "eth0", tu_ip("10.0.2.2"), 24);
    net_link_new(*net, a0, r0, &lp);
    net_link_new(*net, r1, b0, &lp);
    net_route_add(*a, 0, 0, tu_ip("10.0.1.1"), a0);
    net_route_add(*b, 0, 0, tu_ip("10.0.2.1"), b0);
}

START_TEST(forwarding_ttl_and_drops)
{
    sim_t *sim;
    net_t *net;
    net_node_t *a, *r, *b;
    chain3(&sim, &net, &a, &r, &b);
    rxlog_t log = {0};
    rx_log(b, &log);
    net_node_output(a, udp(net, 0, tu_ip("10.0.2.2"), 10));
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(log.n, 0);                     /* r is not a router yet */
    r->forwarding = true;
    sim_time_t t0 = sim_now(sim);
    net_node_output(a, udp(net, 0, tu_ip("10.0.2.2"), 10));
    net_node_output(a, udp(net, 0, tu_ip("192.168.1.1"), 10));
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.ttl[0], 63);
    ck_assert_int_eq(log.t[0] - t0, 200 * SIM_US); /* two links of 100 us, no bandwidth */
    const char **rs;
    const uint64_t *cs;
    size_t n = net_drop_reasons(net, &rs, &cs);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(rs[0], "not-forwarding");
    ck_assert_str_eq(rs[1], "no-route");
    net_free(net);
    sim_free(sim);
}
END_TEST

/* Route types on a forwarding router (ip_error(), net/ipv4/route.c, as a connect() through
 * a Linux router in network namespaces reports it): a blackhole drops silently, an
 * unreachable route answers ICMP host unreachable, prohibit answers admin prohibited
 * (code 13), no route answers net unreachable; a connect() from behind it fails with
 * EHOSTUNREACH, EHOSTUNREACH and ENETUNREACH, and times out against the blackhole. */
START_TEST(route_types_on_a_router)
{
    sim_t *sim;
    net_t *net;
    net_node_t *a, *r, *b;
    chain3(&sim, &net, &a, &r, &b);
    r->forwarding = true;
    net_route_add_type(r, tu_ip("10.5.0.0"), 16, NET_RT_BLACKHOLE);
    net_route_add_type(r, tu_ip("10.6.0.0"), 16, NET_RT_UNREACHABLE);
    net_route_add_type(r, tu_ip("10.7.0.0"), 16, NET_RT_PROHIBIT);
    tu_obs_t *o = lb_calloc(1, sizeof *o);
    tu_obs_start(net, o);
    static const char *const dst[] = {"10.5.0.1", "10.6.0.1", "10.7.0.1", "192.168.1.1"};
    static const int want_rc[] = {LB_ETIMEDOUT, LB_EHOSTUNREACH, LB_EHOSTUNREACH,
                                  LB_ENETUNREACH};
    static const char *const want_drop[] = {"route-blackhole", "route-unreachable",
                                            "route-prohibit", "no-route"};
    static const int want_code[] = {-1, ICMP_HOST_UNREACH, ICMP_ADMIN_PROHIBITED,
                                    ICMP_NET_UNREACH};
    for (int k = 0; k < 4; k++) {
        tu_side_t side = {.sim = sim};
        int rc = 0;
        int before = tu_obs_cap_count(o, "a");
        tcp_connect_opts_t opt = {.timeout = 5 * SIM_S};
        side.c = tcp_connect(a, tu_ip(dst[k]), 80, &opt, &tu_side_cbs, &side, &rc);
        ck_assert_ptr_nonnull(side.c);              /* a's default route is unicast */
        sim_time_t t0 = sim_now(sim);
        sim_run(sim, t0 + 10 * SIM_S);
        ck_assert_int_eq(side.errors, 1);
        ck_assert_int_eq(side.rc, want_rc[k]);
        ck_assert_int_ge(tu_obs_drop_find(o, "r", want_drop[k]), 0);
        int icmps = 0;
        for (int i = before; i < tu_obs_cap_count(o, "a"); i++) {
            const pkt_t *p = tu_obs_cap(o, "a", i);
            if (p->proto != NET_PROTO_ICMP) continue;
            icmps++;
            ck_assert_int_eq(p->icmp_type, ICMP_DEST_UNREACH);
            ck_assert_int_eq(p->icmp_code, want_code[k]);
            ck_assert_int_eq(p->src, tu_ip("10.0.1.1"));
        }
        ck_assert_int_eq(icmps, want_code[k] < 0 ? 0 : 1);
        if (want_code[k] >= 0) ck_assert_int_lt(side.t_error - t0, SIM_MS);  /* first SYN */
    }
    lb_free(o);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* The ICMP rate-limit tests' network: chain3 with r forwarding, everything observed, one
 * traced flow. */
typedef struct rlnet {
    sim_t *sim;
    net_t *net;
    net_node_t *a, *r, *b;
    tu_obs_t *o;
    uint64_t flow;
} rlnet_t;

static void rlnet_new(rlnet_t *t)
{
    chain3(&t->sim, &t->net, &t->a, &t->r, &t->b);
    t->r->forwarding = true;
    t->o = lb_calloc(1, sizeof *t->o);
    tu_obs_start(t->net, t->o);
    t->flow = net_flow_new(t->net);
    net_trace_flow(t->net, t->flow);
}

static void rlnet_free(rlnet_t *t)
{
    net_free(t->net);
    sim_free(t->sim);
    lb_free(t->o);
}

/* ICMP errors a node sent `to` since capture index `from`, with the given type. */
static int icmps_at(const tu_obs_t *o, const char *to, int from, int type)
{
    int k = 0;
    for (int i = from; i < tu_obs_cap_count(o, to); i++) {
        const pkt_t *p = tu_obs_cap(o, to, i);
        k += p->proto == NET_PROTO_ICMP && p->icmp_type == type;
    }
    return k;
}

/* a sends n datagrams to dst back to back at the current time (ttl 64 unless given), all
 * of the traced flow `flow`; then the run goes on for `run`. */
static void udp_burst(sim_t *sim, net_t *net, net_node_t *a, uint32_t src, uint32_t dst,
                      int n, int ttl, uint64_t flow, sim_time_t run)
{
    for (int i = 0; i < n; i++) {
        pkt_t *p = udp(net, src, dst, 10);
        if (ttl) p->ttl = (uint8_t)ttl;
        p->flow = flow;
        net_node_output(a, p);
    }
    sim_run(sim, sim_now(sim) + run);
}

/* The per-destination limit (icmpv4_xrlim_allow -> inet_peer_xrlim_allow, Linux 6.18):
 * a fresh peer has 6 x icmp_ratelimit of tokens, each port unreachable costs one
 * icmp_ratelimit, so 10 datagrams to a closed UDP port at once get 6 answers; then,
 * probed every 250 ms, one answer per second. Without the ratemask's type 3 every
 * datagram is answered. */
START_TEST(icmp_port_unreachable_rate_limit)
{
    rlnet_t t;
    rlnet_new(&t);
    sim_t *sim = t.sim;
    net_t *net = t.net;
    net_node_t *a = t.a, *b = t.b;
    tu_obs_t *o = t.o;
    uint64_t flow = t.flow;
    udp_burst(sim, net, a, 0, tu_ip("10.0.2.2"), 10, 0, flow, 250 * SIM_MS);
    ck_assert_int_eq(icmps_at(o, "a", 0, ICMP_DEST_UNREACH), 6);
    ck_assert(tu_obs_trace_has(o, "per-destination ICMP rate limit"));
    int answered[12];
    for (int k = 0; k < 12; k++) {                  /* t = 0.25 s .. 3 s */
        int before = tu_obs_cap_count(o, "a");
        udp_burst(sim, net, a, 0, tu_ip("10.0.2.2"), 1, 0, 0, 250 * SIM_MS);
        answered[k] = icmps_at(o, "a", before, ICMP_DEST_UNREACH);
    }
    for (int k = 0; k < 12; k++) ck_assert_int_eq(answered[k], k % 4 == 3);  /* 1 s, 2 s, 3 s */
    net_icmp_stats_t st = net_node_icmp_stats(b);
    ck_assert_uint_eq(st.sent, 9);
    ck_assert_uint_eq(st.ratelimit_host, 13);
    ck_assert_uint_eq(st.ratelimit_global, 0);
    ck_assert_uint_eq(st.ip_error, 0);
    b->icmp.ratemask = 0;                           /* no type limited: all answered */
    int before = tu_obs_cap_count(o, "a");
    udp_burst(sim, net, a, 0, tu_ip("10.0.2.2"), 10, 0, 0, 250 * SIM_MS);
    ck_assert_int_eq(icmps_at(o, "a", before, ICMP_DEST_UNREACH), 10);
    rlnet_free(&t);
}
END_TEST

/* A router without a route (ip_error(), net/ipv4/route.c): its own per-source bucket
 * (5 s, 1 s per error) and icmp_ratelimit's share the sender's inet_peer tokens, so an
 * error costs 2 s: 10 datagrams at once get 2 net unreachables (the third is refused by
 * the per-destination limit, the rest by ip_error()). A datagram every 500 ms keeps the
 * bucket empty: each second's tokens go to ip_error() and nothing is answered. After
 * 5.5 s of quiet the bucket is full again: 2 more. */
START_TEST(icmp_no_route_rate_limit)
{
    rlnet_t t;
    rlnet_new(&t);
    sim_t *sim = t.sim;
    net_t *net = t.net;
    net_node_t *a = t.a, *r = t.r;
    tu_obs_t *o = t.o;
    uint64_t flow = t.flow;
    udp_burst(sim, net, a, 0, tu_ip("192.168.1.1"), 10, 0, flow, 500 * SIM_MS);
    ck_assert_int_eq(icmps_at(o, "a", 0, ICMP_DEST_UNREACH), 2);
    ck_assert(tu_obs_trace_has(o, "ip_error() rate limit"));
    ck_assert(tu_obs_trace_has(o, "per-destination ICMP rate limit"));
    net_icmp_stats_t st = net_node_icmp_stats(r);
    ck_assert_uint_eq(st.sent, 2);
    ck_assert_uint_eq(st.ratelimit_host, 1);
    ck_assert_uint_eq(st.ip_error, 7);
    int before = tu_obs_cap_count(o, "a");
    for (int k = 0; k < 9; k++)                     /* t = 0.5 s .. 4.5 s */
        udp_burst(sim, net, a, 0, tu_ip("192.168.1.1"), 1, 0, 0, k < 8 ? 500 * SIM_MS : 0);
    sim_run(sim, 10 * SIM_S);
    ck_assert_int_eq(icmps_at(o, "a", before, ICMP_DEST_UNREACH), 0);
    before = tu_obs_cap_count(o, "a");
    udp_burst(sim, net, a, 0, tu_ip("192.168.1.1"), 10, 0, 0, SIM_S);
    ck_assert_int_eq(icmps_at(o, "a", before, ICMP_DEST_UNREACH), 2);
    ck_assert_uint_eq(net_node_icmp_stats(r).sent, 4);
    rlnet_free(&t);
}
END_TEST

/* The node-wide limit (icmp_global_allow, per network namespace in 6.18): 100 TTL-expired
 * datagrams from 100 different sources at once, each a fresh peer with its own tokens, get
 * about icmp_msgs_burst (50) time-exceeded errors: each error takes 0, 1 or 2 credits
 * (icmp_global_consume, drawn from the node's seeded stream), the rest are refused until
 * HZ/50 has passed. The same seed gives the same count. */
static uint64_t global_limit_run(uint64_t *limited, int burst)
{
    sim_t *sim;
    net_t *net;
    net_node_t *a, *r, *b;
    chain3(&sim, &net, &a, &r, &b);
    r->forwarding = true;
    if (burst >= 0) r->icmp.msgs_burst = burst;
    for (int i = 0; i < 100; i++)
        net_node_output(a, ({ pkt_t *p = udp(net, tu_ip("10.0.1.100") + (uint32_t)i,
                                               tu_ip("10.0.2.2"), 10); p->ttl = 1; p; }));
    sim_run(sim, SIM_S);
    net_icmp_stats_t st = net_node_icmp_stats(r);
    ck_assert_uint_eq(st.ratelimit_host, 0);
    ck_assert_uint_eq(st.sent + st.ratelimit_global, 100);
    *limited = st.ratelimit_global;
    net_free(net);
    sim_free(sim);
    return st.sent;
}

START_TEST(icmp_global_rate_limit)
{
    uint64_t limited, limited2;
    uint64_t sent = global_limit_run(&limited, -1);
    ck_assert_uint_gt(sent, 25);                    /* at most 2 credits each of 50 */
    ck_assert_uint_lt(sent, 100);
    ck_assert_uint_gt(limited, 0);
    ck_assert_uint_eq(global_limit_run(&limited2, -1), sent);
}
END_TEST

/* The sysctls change the suppression. icmp_ratelimit 250 ms: a fresh peer holds 6 x 250 ms
 * of tokens, so 10 datagrams to a closed port at t = 0 get 6 answers, 10 more at 0.6 s get
 * 2 (600 ms of tokens), at 1.3 s 3 (100 + 700 ms), at 2.1 s 3 (50 + 800 ms) -- with the
 * default 1 s: 6, 0, 1, 1. The same schedule as tests/kernel-icmp.sh's ratelimit case. */
static void ratelimit_schedule(sim_time_t ratelimit, int got[4])
{
    rlnet_t t;
    rlnet_new(&t);
    if (ratelimit >= 0) t.b->icmp.ratelimit = ratelimit;
    static const int at_ms[] = {0, 600, 1300, 2100};
    for (int k = 0; k < 4; k++) {
        sim_run(t.sim, at_ms[k] * SIM_MS);
        int before = tu_obs_cap_count(t.o, "a");
        udp_burst(t.sim, t.net, t.a, 0, tu_ip("10.0.2.2"), 10, 0, 0, 100 * SIM_MS);
        got[k] = icmps_at(t.o, "a", before, ICMP_DEST_UNREACH);
    }
    net_icmp_stats_t st = net_node_icmp_stats(t.b);
    ck_assert_uint_eq(st.sent + st.ratelimit_host, 40);
    rlnet_free(&t);
}

START_TEST(icmp_ratelimit_sysctl)
{
    int got[4];
    ratelimit_schedule(250 * SIM_MS, got);
    ck_assert_int_eq(got[0], 6);
    ck_assert_int_eq(got[1], 2);
    ck_assert_int_eq(got[2], 3);
    ck_assert_int_eq(got[3], 3);
    ratelimit_schedule(-1, got);                    /* the default, 1 s */
    ck_assert_int_eq(got[0], 6);
    ck_assert_int_eq(got[1], 0);
    ck_assert_int_eq(got[2], 1);
    ck_assert_int_eq(got[3], 1);
    ratelimit_schedule(0, got);                     /* 0: no per-destination limit */
    for (int k = 0; k < 4; k++) ck_assert_int_eq(got[k], 10);
}
END_TEST

/* icmp_ratemask: without bit 3 (0x1810) port unreachables pass neither limit; with bit 3
 * alone (0x8) they are limited as by default. Fragmentation needed is never limited. */
START_TEST(icmp_ratemask_sysctl)
{
    static const uint32_t masks[] = {0x1810, 0x8, 0x1818};
    static const int want[] = {10, 6, 6};
    for (int m = 0; m < 3; m++) {
        rlnet_t t;
        rlnet_new(&t);
        t.b->icmp.ratemask = masks[m];
        udp_burst(t.sim, t.net, t.a, 0, tu_ip("10.0.2.2"), 10, 0, 0, 100 * SIM_MS);
        ck_assert_int_eq(icmps_at(t.o, "a", 0, ICMP_DEST_UNREACH), want[m]);
        ck_assert_uint_eq(net_node_icmp_stats(t.b).ratelimit_host, (uint64_t)(10 - want[m]));
        rlnet_free(&t);
    }
}
END_TEST

/* icmp_msgs_per_sec 0: icmp_global_allow() never refills an empty bucket (incr 0), so a
 * namespace that never had credit sends no rate-limited error at all: the router's 10
 * time-exceeded errors to 10 fresh sources are all refused by the global limit, while
 * echo replies (type 0, not in the ratemask) still go out. A smaller icmp_msgs_burst lets
 * fewer of a burst through. */
START_TEST(icmp_msgs_sysctls)
{
    sim_t *sim;
    net_t *net;
    net_node_t *a, *r, *b;
    chain3(&sim, &net, &a, &r, &b);
    r->forwarding = true;
    r->icmp.msgs_per_sec = 0;
    for (int i = 0; i < 10; i++)
        net_node_output(a, ({ pkt_t *p = udp(net, tu_ip("10.0.1.100") + (uint32_t)i,
                                               tu_ip("10.0.2.2"), 10); p->ttl = 1; p; }));
    sim_run(sim, 5 * SIM_S);
    net_icmp_stats_t st = net_node_icmp_stats(r);
    ck_assert_uint_eq(st.sent, 0);
    ck_assert_uint_eq(st.ratelimit_global, 10);
    net_free(net);
    sim_free(sim);
    uint64_t limited, sent50 = global_limit_run(&limited, -1);
    uint64_t sent10 = global_limit_run(&limited, 10);
    ck_assert_uint_lt(sent10, sent50);
    ck_assert_uint_lt(sent10, 25);                  /* about 10: a credit each on average */
    ck_assert_uint_gt(sent10, 4);                   /* at most 2 credits each of 10 */
}
END_TEST

/* Before 6.12 the global bucket is the host's (icmp_global), and so are icmp_msgs_per_sec
 * and _burst: a netns sharing it (icmp_host: a pod on its node) is refused when its host's
 * bucket is, whatever its own values. net_icmp_limits_kernel() says which kernels. */
START_TEST(icmp_global_bucket_of_the_host)
{
    for (int shared = 0; shared < 2; shared++) {
        rlnet_t t;
        rlnet_new(&t);
        t.r->icmp.msgs_per_sec = 0;                 /* the "host": nothing from its bucket */
        if (shared) t.b->icmp_host = t.r;
        udp_burst(t.sim, t.net, t.a, 0, tu_ip("10.0.2.2"), 3, 0, t.flow, 100 * SIM_MS);
        net_icmp_stats_t st = net_node_icmp_stats(t.b);
        ck_assert_uint_eq(st.sent, shared ? 0 : 3);
        ck_assert_uint_eq(st.ratelimit_global, shared ? 3 : 0);
        if (shared) ck_assert(tu_obs_trace_has(t.o, "shared with the host r"));
        rlnet_free(&t);
    }
    net_icmp_limits_t l;
    ck_assert_int_eq(net_icmp_limits_kernel(&l, "6.6.44-azl3"), 0);
    ck_assert(!l.global_per_netns);
    ck_assert_int_eq(l.msgs_per_sec, 1000);
    ck_assert_int_eq(l.msgs_burst, 50);
    ck_assert_int_eq(net_icmp_limits_kernel(&l, "6.11"), 0);
    ck_assert(!l.global_per_netns);
    ck_assert_int_eq(net_icmp_limits_kernel(&l, "6.12"), 0);
    ck_assert(l.global_per_netns);
    ck_assert_int_eq(net_icmp_limits_kernel(&l, "6.18"), 0);
    ck_assert(l.global_per_netns);
    ck_assert_int_eq(l.ratemask, 0x1818);
    ck_assert_int_eq(l.ratelimit, SIM_S);
    ck_assert_int_eq(net_icmp_limits_kernel(&l, "6.x"), LB_EINVAL);
}
END_TEST

/* The same route types on the sending host itself: connect() fails at once, as Linux's
 * ip_route_connect() does (fib_props[]): EINVAL, EHOSTUNREACH, EACCES, and ENETUNREACH
 * without a route; nothing is sent. A datagram meeting them is dropped with the route's
 * reason and no ICMP. Lookups stay longest-prefix first: a /24 unicast route inside a
 * blackholed /16 still goes out. */
START_TEST(route_types_on_the_sender)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *a = net_node_add(net, "a"), *r = net_node_add(net, "r");
    net_node_t *b = net_node_add(net, "b");
    net_link_params_t lp = {.latency = 100 * SIM_US};
    net_iface_t *a0 = net_iface_add(a, "eth0", tu_ip("10.0.1.2"), 24);
    net_link_new(net, a0, net_iface_add(r, "eth0", tu_ip("10.0.1.1"), 24), &lp);
    net_link_new(net, net_iface_add(r, "eth1", tu_ip("10.0.2.1"), 24),
                 net_iface_add(b, "eth0", tu_ip("10.0.2.2"), 24), &lp);
    r->forwarding = true;
    /* a: its connected /24, no default route, explicit routes only */
    net_route_add_type(a, tu_ip("10.0.0.0"), 16, NET_RT_BLACKHOLE);
    net_route_add(a, tu_ip("10.0.2.0"), 24, tu_ip("10.0.1.1"), a0);
    net_route_add_type(a, tu_ip("10.6.0.0"), 16, NET_RT_UNREACHABLE);
    net_route_add_type(a, tu_ip("10.7.0.0"), 16, NET_RT_PROHIBIT);
    static const char *const dst[] = {"10.0.9.1", "10.6.0.1", "10.7.0.1", "192.168.1.1"};
    static const int want[] = {LB_EINVAL, LB_EHOSTUNREACH, LB_EACCES, LB_ENETUNREACH};
    for (int k = 0; k < 4; k++) {
        int rc = 0;
        ck_assert_ptr_null(tcp_connect(a, tu_ip(dst[k]), 80, NULL, NULL, NULL, &rc));
        ck_assert_int_eq(rc, want[k]);
        ck_assert_int_eq(net_route_error(net_route_lookup(a, tu_ip(dst[k]))), want[k]);
    }
    char buf[96];
    ck_assert_str_eq(net_route_str(net_route_lookup(a, tu_ip("10.0.9.1")), buf, sizeof buf),
                     "blackhole 10.0.0.0/16");
    ck_assert_str_eq(net_route_str(net_route_lookup(a, tu_ip("10.0.2.2")), buf, sizeof buf),
                     "10.0.2.0/24 via 10.0.1.1 dev eth0");
    ck_assert_str_eq(net_route_str(net_route_lookup(a, tu_ip("10.0.1.9")), buf, sizeof buf),
                     "10.0.1.0/24 dev eth0");
    ck_assert_str_eq(net_route_str(NULL, buf, sizeof buf), "no route");
    ck_assert_ptr_eq(net_route_find(a, tu_ip("10.6.0.0"), 16)->ifc, NULL);
    ck_assert_ptr_null(net_route_find(a, tu_ip("10.6.0.0"), 24));
    rxlog_t log = {0};
    rx_log(b, &log);
    tu_obs_t *o = lb_calloc(1, sizeof *o);
    tu_obs_start(net, o);
    net_node_output(a, udp(net, 0, tu_ip("10.0.2.2"), 10));     /* the /24 inside the /16 */
    net_node_output(a, udp(net, 0, tu_ip("10.0.9.1"), 10));
    net_node_output(a, udp(net, 0, tu_ip("10.7.0.1"), 10));
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(o->ndrop, 2);
    ck_assert_str_eq(o->drop[0].reason, "route-blackhole");
    ck_assert_str_eq(o->drop[1].reason, "route-prohibit");
    ck_assert_int_eq(tu_obs_cap_count(o, "r"), 1);                 /* only the datagram */
    lb_free(o);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* Many typed and unicast routes: the indexed lookup finds what a scan finds. */
START_TEST(route_types_indexed)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *n = net_node_add(net, "r");
    net_iface_t *e0 = net_iface_add(n, "eth0", tu_ip("10.0.0.1"), 24);
    for (int i = 0; i < 64; i++) {
        uint32_t p = tu_ip("10.64.0.0") + ((uint32_t)i << 8);
        if (i % 4 == 0) net_route_add(n, p, 24, tu_ip("10.0.0.2"), e0);
        else net_route_add_type(n, p, 24, NET_RT_BLACKHOLE + i % 3);
    }
    net_route_add_type(n, tu_ip("10.64.1.128"), 25, NET_RT_PROHIBIT);
    ck_assert(n->route_index.cap > 0);
    for (int i = 0; i < 64; i++) {
        uint32_t d = tu_ip("10.64.0.9") + ((uint32_t)i << 8);
        const net_route_t *r = net_route_lookup(n, d);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->type, i % 4 == 0 ? NET_RT_UNICAST : NET_RT_BLACKHOLE + i % 3);
        ck_assert_ptr_eq(net_route_find(n, d & 0xffffff00u, 24), r);
    }
    ck_assert_int_eq(net_route_lookup(n, tu_ip("10.64.1.200"))->type, NET_RT_PROHIBIT);
    ck_assert_int_eq(net_route_lookup(n, tu_ip("10.64.1.100"))->type, NET_RT_BLACKHOLE + 1);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* A shared L2 segment delivers to whoever holds the next hop: a datagram to h2, routed via
 * the router g, reaches g, not h2, although h2 is on the segment (an Ethernet frame goes to
 * the gateway's MAC); an extra address routed to h2 on the segment (a VIP) reaches h2; a
 * neighbour nobody holds fails after NET_NEIGH_FAIL_DELAY with ICMP host unreachable, and
 * a connect() to it reports EHOSTUNREACH then (Linux: 3.08 s in network namespaces). */
START_TEST(segment_delivers_by_next_hop)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_fabric_params_t fp = {.latency = 50 * SIM_US, .l2 = true};
    net_fabric_t *lan = net_fabric_new(net, "lan", &fp);
    net_node_t *h1 = net_node_add(net, "h1"), *h2 = net_node_add(net, "h2");
    net_node_t *g = net_node_add(net, "g");
    net_iface_t *i1 = net_iface_add(h1, "eth0", tu_ip("10.0.1.10"), 24);
    net_iface_t *i2 = net_iface_add(h2, "eth0", tu_ip("10.0.1.20"), 24);
    net_iface_t *ig = net_iface_add(g, "eth0", tu_ip("10.0.1.1"), 24);
    ck_assert_int_eq(net_fabric_attach(lan, i1), 0);
    ck_assert_int_eq(net_fabric_attach(lan, i2), 0);
    ck_assert_int_eq(net_fabric_attach(lan, ig), 0);
    net_node_addr_add(h2, tu_ip("10.0.1.100"));
    ck_assert_int_eq(net_fabric_route(lan, tu_ip("10.0.1.100"), 32, i2), 0);
    net_route_add(h1, tu_ip("10.0.1.20"), 32, tu_ip("10.0.1.1"), i1);   /* via g */
    rxlog_t l2 = {0}, lg = {0};
    rx_log(h2, &l2);
    rx_log(g, &lg);
    net_node_output(h1, udp(net, 0, tu_ip("10.0.1.20"), 10));
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(lg.n, 0);                      /* g does not forward: dropped there */
    ck_assert_int_eq(l2.n, 0);
    g->forwarding = true;                           /* now g sends it back onto the segment */
    net_node_output(h1, udp(net, 0, tu_ip("10.0.1.20"), 10));
    net_node_output(h1, udp(net, 0, tu_ip("10.0.1.100"), 10));     /* on-link: the VIP */
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(l2.n, 2);
    ck_assert_int_eq(l2.ttl[0], 64);                /* the VIP, direct: 50 us */
    ck_assert_int_eq(l2.ttl[1], 63);                /* through g: twice 50 us */
    /* nobody holds 10.0.1.77 */
    tu_obs_t *o = lb_calloc(1, sizeof *o);
    tu_obs_start(net, o);
    tu_side_t side = {.sim = sim};
    int rc;
    sim_time_t t0 = sim_now(sim);
    side.c = tcp_connect(h1, tu_ip("10.0.1.77"), 80, NULL, &tu_side_cbs, &side, &rc);
    ck_assert_ptr_nonnull(side.c);
    sim_run(sim, t0 + 10 * SIM_S);
    ck_assert_int_eq(side.errors, 1);
    ck_assert_int_eq(side.rc, LB_EHOSTUNREACH);
    ck_assert_int_eq(side.t_error - t0, NET_NEIGH_FAIL_DELAY);
    ck_assert_int_ge(tu_obs_drop_find(o, "h1", "neigh-failed"), 0);
    lb_free(o);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* Fabric: delivery by address after the fabric latency; a VIP handler receives packets for
 * its address and forwards them to a backend keeping the destination (floating IP). */
typedef struct vipctx { int n; net_iface_t *backend; } vipctx_t;
static void vip_handler(net_fabric_t *fab, pkt_t *p, void *data)
{
    vipctx_t *v = data;
    v->n++;
    net_fabric_send_to(fab, v->backend, p);
}

START_TEST(fabric_delivery_and_vip)
{
    sim_t *sim;
    net_t *net;
    net_fabric_t *vnet;
    tu_fabric_new(1, "vnet", 500 * SIM_US, &sim, &net, &vnet);
    net_node_t *c = tu_fabric_host(net, vnet, "c", "10.224.0.4", 16, false)->node;
    net_iface_t *si = tu_fabric_host(net, vnet, "s", "10.224.0.5", 16, false);
    net_node_t *s = si->node;
    net_node_addr_add(s, tu_ip("10.224.0.100"));    /* floating IP: backend owns the VIP */
    vipctx_t v = {0, si};
    ck_assert_int_eq(net_fabric_vip(vnet, tu_ip("10.224.0.100"), "ilb", vip_handler, &v), 0);
    rxlog_t log = {0};
    rx_log(s, &log);
    net_node_output(c, udp(net, 0, tu_ip("10.224.0.5"), 10));
    net_node_output(c, udp(net, 0, tu_ip("10.224.0.100"), 10));
    net_node_output(c, udp(net, 0, tu_ip("10.224.9.9"), 10));
    sim_run(sim, SIM_TIME_MAX);
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.t[0], 500 * SIM_US);
    ck_assert_int_eq(log.t[1], 1000 * SIM_US);       /* two fabric hops via the LB */
    ck_assert_uint_eq(log.dst[1], tu_ip("10.224.0.100"));
    ck_assert_int_eq(v.n, 1);
    const char **rs;
    const uint64_t *cs;
    ck_assert_int_eq(net_drop_reasons(net, &rs, &cs), 1);
    ck_assert_str_eq(rs[0], "fabric-no-destination");
    net_free(net);
    sim_free(sim);
}
END_TEST

/* Who holds what, and dynamic allocation: first free after the four reserved addresses,
 * skipping interfaces, VIPs and routed prefixes; the last address is never given. */
START_TEST(fabric_holder_and_alloc)
{
    sim_t *sim;
    net_t *net;
    net_fabric_t *vnet;
    tu_fabric_new(1, "vnet", 0, &sim, &net, &vnet);
    net_iface_t *a = tu_fabric_host(net, vnet, "a", "10.1.0.4", 29, false);
    vipctx_t v = {0, a};
    ck_assert_int_eq(net_fabric_vip(vnet, tu_ip("10.1.0.5"), "lb", vip_handler, &v), 0);
    ck_assert_int_eq(net_fabric_vip(vnet, tu_ip("10.1.0.5"), "lb2", vip_handler, &v), LB_EEXIST);
    ck_assert_int_eq(net_fabric_vip(vnet, tu_ip("10.1.0.4"), "lb2", vip_handler, &v), LB_EEXIST);
    ck_assert_int_eq(net_fabric_route(vnet, tu_ip("10.2.0.0"), 24, a), 0);
    ck_assert_int_eq(net_fabric_route(vnet, tu_ip("10.2.0.0"), 24, a), LB_EEXIST);
    ck_assert_str_eq(net_fabric_holder(vnet, tu_ip("10.1.0.4"), 32, NULL, NULL), "a");
    ck_assert_str_eq(net_fabric_holder(vnet, tu_ip("10.1.0.5"), 32, NULL, NULL), "lb");
    ck_assert_ptr_null(net_fabric_holder(vnet, tu_ip("10.1.0.6"), 32, NULL, NULL));
    uint32_t at = 0;
    int at_plen = 0;
    ck_assert_str_eq(net_fabric_holder(vnet, tu_ip("10.2.0.0"), 16, &at, &at_plen), "a");
    ck_assert_uint_eq(at, tu_ip("10.2.0.0"));
    ck_assert_int_eq(at_plen, 24);
    ck_assert_str_eq(net_fabric_holder(vnet, tu_ip("10.1.0.0"), 24, &at, &at_plen), "a");
    ck_assert_uint_eq(at, tu_ip("10.1.0.4"));
    ck_assert_int_eq(at_plen, 32);
    uint32_t got = 0;
    ck_assert_int_eq(net_fabric_alloc(vnet, tu_ip("10.1.0.0"), 29, &got), 0);
    ck_assert_uint_eq(got, tu_ip("10.1.0.6"));                  /* .4 and .5 are held */
    tu_fabric_host(net, vnet, "b", "10.1.0.6", 29, false);
    ck_assert_int_eq(net_fabric_alloc(vnet, tu_ip("10.1.0.0"), 29, &got), LB_ENOMEM);  /* .7: last */
    ck_assert_int_eq(net_fabric_alloc(vnet, tu_ip("10.2.0.0"), 20, &got), 0);
    ck_assert_uint_eq(got, tu_ip("10.2.1.0"));                  /* past the routed /24 */
    ck_assert_int_eq(net_fabric_alloc(vnet, tu_ip("10.3.0.0"), 30, &got), LB_EINVAL);
    net_free(net);
    sim_free(sim);
}
END_TEST

/* The indexed lookups (routes per prefix length, a held run skipped by binary search)
 * answer as a scan of every entry would: allocation, who holds a range, and which
 * interface a routed address reaches, over random tables of exact addresses and routes. */
typedef struct ref_route { uint32_t prefix; int plen; net_iface_t *ifc; } ref_route_t;

static bool ref_held(const uint32_t *addrs, size_t na, const ref_route_t *rt, size_t nr,
                     uint32_t lo, uint32_t hi)
{
    for (size_t i = 0; i < na; i++)
        if (addrs[i] >= lo && addrs[i] <= hi) return true;
    for (size_t i = 0; i < nr; i++) {
        uint32_t rhi = rt[i].prefix | ~lb_prefix_mask(rt[i].plen);
        if (rt[i].prefix <= hi && rhi >= lo) return true;
    }
    return false;
}

START_TEST(fabric_indexes_match_a_scan)
{
    sim_t *sim;
    net_t *net;
    net_fabric_t *vnet;
    tu_fabric_new(1, "vnet", 0, &sim, &net, &vnet);
    net_iface_t *ifc[3] = {tu_fabric_host(net, vnet, "a", "10.9.0.1", 16, false),
                           tu_fabric_host(net, vnet, "b", "10.9.0.2", 16, false),
                           tu_fabric_host(net, vnet, "c", "10.9.0.3", 16, false)};
    uint32_t addrs[400] = {tu_ip("10.9.0.1"), tu_ip("10.9.0.2"), tu_ip("10.9.0.3")};
    size_t na = 3, nr = 0;
    ref_route_t rt[200];
    uint64_t x = 12345;                         /* a fixed LCG: the same tables every run */
#define NEXT() (x = x * 6364136223846793005ULL + 1442695040888963407ULL, (uint32_t)(x >> 33))
    uint32_t base = tu_ip("10.1.0.0");
    while (na < 400) {                          /* exact addresses, dense in 10.1.0.0/22 */
        uint32_t a = base + NEXT() % 1024;
        if (net_fabric_route(vnet, a, 32, ifc[na % 3]) == 0) addrs[na++] = a;
    }
    for (int k = 0; k < 400 && nr < 200; k++) {  /* routes of /20 .. /31 in 10.0.0.0/12 */
        int plen = 20 + (int)(NEXT() % 12);
        uint32_t p = (tu_ip("10.0.0.0") + (NEXT() & 0xfffff)) & lb_prefix_mask(plen);
        if (ref_held(addrs, na, NULL, 0, p, p | ~lb_prefix_mask(plen))) continue;
        bool dup = false;
        for (size_t i = 0; i < nr; i++) dup |= rt[i].prefix == p && rt[i].plen == plen;
        ck_assert_int_eq(net_fabric_route(vnet, p, plen, ifc[k % 3]), dup ? LB_EEXIST : 0);
        if (!dup) rt[nr++] = (ref_route_t){p, plen, ifc[k % 3]};
    }
    for (int k = 0; k < 2000; k++) {
        int plen = 20 + (int)(NEXT() % 10);     /* allocation in a /20 .. /29 */
        uint32_t sub = (tu_ip("10.0.0.0") + (NEXT() & 0xfffff)) & lb_prefix_mask(plen);
        uint32_t want = 0, got = 0;
        int want_rc = LB_ENOMEM;
        for (uint64_t a = sub + 4; a <= (sub | ~lb_prefix_mask(plen)) - 1; a++)
            if (!ref_held(addrs, na, rt, nr, (uint32_t)a, (uint32_t)a)) {
                want = (uint32_t)a;
                want_rc = 0;
                break;
            }
        ck_assert_int_eq(net_fabric_alloc(vnet, sub, plen, &got), want_rc);
        if (want_rc == 0) ck_assert_uint_eq(got, want);
        int qp = 16 + (int)(NEXT() % 17);       /* who holds a /16 .. /32 */
        uint32_t q = (tu_ip("10.0.0.0") + (NEXT() & 0xfffff)) & lb_prefix_mask(qp), at = 0;
        int at_plen = 0;
        uint32_t qhi = q | ~lb_prefix_mask(qp);
        const char *h = net_fabric_holder(vnet, q, qp, &at, &at_plen);
        ck_assert_int_eq(h != NULL, ref_held(addrs, na, rt, nr, q, qhi));
        if (h) ck_assert(at <= qhi && (at | ~lb_prefix_mask(at_plen)) >= q);
    }
    /* a routed address is delivered to the longest route's interface */
    for (size_t i = 0; i < nr; i++) {
        uint32_t a = rt[i].prefix + (NEXT() & ~lb_prefix_mask(rt[i].plen));
        const ref_route_t *best = NULL;
        for (size_t k = 0; k < nr; k++)
            if ((a & lb_prefix_mask(rt[k].plen)) == rt[k].prefix && (!best || rt[k].plen > best->plen))
                best = &rt[k];
        uint32_t at = 0;
        int at_plen = 0;
        ck_assert_str_eq(net_fabric_holder(vnet, a, 32, &at, &at_plen), best->ifc->node->name);
        ck_assert_uint_eq(at, best->prefix);
        ck_assert_int_eq(at_plen, best->plen);
    }
#undef NEXT
    net_free(net);
    sim_free(sim);
}
END_TEST

START_TEST(packet_pool_reuse_and_str)
{
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    pkt_t *p = tu_tcp_pkt(net, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_SYN);
    p->msg = net_msg_raw(100);
    char buf[160];
    ck_assert_str_eq(pkt_str(p, buf, sizeof buf),
                     "10.0.0.1:40000 > 10.0.0.2:80 TCP [S] seq=0 ack=0 len=0");
    ck_assert_uint_eq(pkt_wire_bytes(p), 60);
    pkt_t *q = pkt_clone(net, p);
    ck_assert_int_eq(p->msg->refs, 2);
    ck_assert_uint_ne(q->id, p->id);
    pkt_free(net, p);
    ck_assert_int_eq(q->msg->refs, 1);
    pkt_free(net, q);
    ck_assert_uint_eq(net_flow_new(net), 1);
    ck_assert_uint_eq(net_flow_new(net), 2);
    net_free(net);
    sim_free(sim);
}
END_TEST

Suite *suite_net(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, route_longest_prefix);
    tcase_add_test(tc, link_timing);
    tcase_add_test(tc, link_queue_tail_drop);
    tcase_add_test(tc, link_loss_rate_and_determinism);
    tcase_add_test(tc, all_links_caps_every_link);
    tcase_add_test(tc, forwarding_ttl_and_drops);
    tcase_add_test(tc, route_types_on_a_router);
    tcase_add_test(tc, route_types_on_the_sender);
    tcase_add_test(tc, route_types_indexed);
    tcase_add_test(tc, segment_delivers_by_next_hop);
    tcase_add_test(tc, fabric_delivery_and_vip);
    tcase_add_test(tc, fabric_holder_and_alloc);
    tcase_add_test(tc, fabric_indexes_match_a_scan);
    tcase_add_test(tc, packet_pool_reuse_and_str);
    tcase_add_test(tc, icmp_port_unreachable_rate_limit);
    tcase_add_test(tc, icmp_no_route_rate_limit);
    tcase_add_test(tc, icmp_global_rate_limit);
    tcase_add_test(tc, icmp_ratelimit_sysctl);
    tcase_add_test(tc, icmp_ratemask_sysctl);
    tcase_add_test(tc, icmp_msgs_sysctls);
    tcase_add_test(tc, icmp_global_bucket_of_the_host);
    suite_add_tcase(s, tc);
    return s;
}

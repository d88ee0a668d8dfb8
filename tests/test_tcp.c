/* test_tcp.c -- TCP against Linux behaviour on two hosts joined by one link: handshake
 * timing, SYN/SYN-ACK retransmission schedules and give-up times, RST and ICMP errors,
 * FIN/TIME_WAIT lifetimes and reuse, delivery under loss, bandwidth-limited transfer time,
 * delayed ACKs, backlog overflow, timeouts, and memory bounded by live connections. */
#include <check.h>
#include <string.h>
#include "tcp.h"
#include "util.h"

#define LAT (5 * SIM_MS)
#define BW 100000000ULL     /* 100 Mbps */

/* Serialisation time of `bytes` on a link of bw bits/s, rounded up as link.c does. */
static sim_time_t ser(uint32_t bytes, uint64_t bw)
{
    return bw ? (sim_time_t)(((uint64_t)bytes * 8 * SIM_S + bw - 1) / bw) : 0;
}

#define SYN_BYTES (NET_IP_HDR + NET_TCP_HDR + NET_TCP_SYN_OPTS)
#define ACK_BYTES (NET_IP_HDR + NET_TCP_HDR + NET_TCP_OPTS)

/* ---- the two ends, recording their callbacks (tu_side_t): a connects to b:80 ---- */
static tcp_conn_t *connect_ab(tu_pair_t *t, tu_side_t *cl, uint16_t sport)
{
    tcp_connect_opts_t o = {.sport = sport};
    int rc = 1;
    cl->sim = t->sim;
    cl->c = tcp_connect(t->a, tu_ip("10.0.0.2"), 80, &o, &tu_side_cbs, cl, &rc);
    ck_assert_ptr_nonnull(cl->c);
    ck_assert_int_eq(rc, 0);
    return cl->c;
}

static void listen_b(tu_pair_t *t, tu_side_t *sv)
{
    sv->sim = t->sim;
    ck_assert_int_eq(tcp_listen(t->b, 0, 80, tu_side_accept, sv), 0);
}

/* sv listens on b:80, cl connects from a (sport 0: ephemeral), and the run goes on to 1 s:
 * the connection is long established. */
static void established_ab(tu_pair_t *t, tu_side_t *cl, tu_side_t *sv, uint16_t sport)
{
    listen_b(t, sv);
    connect_ab(t, cl, sport);
    sim_run(t->sim, SIM_S);
}

/* The side saw exactly one error, rc, at time t. */
static void assert_error(const tu_side_t *s, int rc, sim_time_t t)
{
    ck_assert_int_eq(s->errors, 1);
    ck_assert_int_eq(s->rc, rc);
    ck_assert_int_eq(s->t_error, t);
}

/* ---- a network observer recording drops and arrivals ---- */
typedef struct obs_rec { sim_time_t t; uint8_t flags; uint32_t len, seq; char where[8]; } obs_rec_t;
typedef struct obs {
    int ndrop, nrx;
    obs_rec_t drop[256], rx[4096];
    char trace[4096];           /* the traced flow's lines (net_trace_flow) */
} obs_t;

static void obs_drop(void *d, const net_node_t *where, const pkt_t *p, const char *reason,
                     const char *detail)
{
    obs_t *o = d;
    (void)reason;
    (void)detail;
    if (p->proto != NET_PROTO_TCP || o->ndrop >= 256) return;
    obs_rec_t *r = &o->drop[o->ndrop++];
    r->t = sim_now(net_sim(where->net));
    r->flags = p->tcp_flags;
    r->len = p->len;
    r->seq = p->seq;
    snprintf(r->where, sizeof r->where, "%s", where->name);
}

static void obs_capture(void *d, sim_time_t t, const char *where, const pkt_t *p)
{
    obs_t *o = d;
    if (p->proto != NET_PROTO_TCP || o->nrx >= 4096) return;
    obs_rec_t *r = &o->rx[o->nrx++];
    r->t = t;
    r->flags = p->tcp_flags;
    r->len = p->len;
    r->seq = p->seq;
    snprintf(r->where, sizeof r->where, "%s", where);
}

static void obs_trace(void *d, sim_time_t t, uint64_t flow, const char *where,
                      const char *text)
{
    obs_t *o = d;
    (void)t, (void)flow;
    size_t n = strlen(o->trace);
    snprintf(o->trace + n, sizeof o->trace - n, "%s: %s\n", where, text);
}

static void obs_start(net_t *net, obs_t *o)
{
    memset(o, 0, sizeof *o);
    net_observer_t ob = {.drop = obs_drop, .capture = obs_capture, .trace = obs_trace,
                         .data = o};
    net_set_observer(net, &ob);
}

/* ---- handshake ---- */

START_TEST(handshake_timing)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, BW, 0);
    tu_side_t cl = {0}, sv = {0};
    listen_b(&t, &sv);
    tcp_conn_t *c = connect_ab(&t, &cl, 0);
    ck_assert_int_eq(tcp_conn_state(c), TCP_SYN_SENT);
    ck_assert_uint_ge(tcp_conn_lport(c), 32768);
    ck_assert_uint_le(tcp_conn_lport(c), 60999);
    sim_run(t.sim, SIM_S);
    sim_time_t one = LAT + ser(SYN_BYTES, BW);
    ck_assert_int_eq(cl.connected, 1);
    ck_assert_int_eq(cl.t_connected, 2 * one);
    ck_assert_int_eq(sv.accepted, 1);
    ck_assert_int_eq(sv.t_accepted, 2 * one + LAT + ser(ACK_BYTES, BW));
    ck_assert_int_eq(tcp_conn_state(c), TCP_ESTABLISHED);
    ck_assert_int_eq(tcp_conn_state(sv.c), TCP_ESTABLISHED);
    ck_assert_int_eq(tcp_conn_srtt(c), 2 * one);
    ck_assert_int_eq(tcp_conn_retransmits(c), 0);
    ck_assert_uint_eq(tcp_conn_rport(sv.c), tcp_conn_lport(c));
    ck_assert_uint_eq(tcp_conn_flow(sv.c), tcp_conn_flow(c));
    tcp_stats_t sa = tu_tcp_stats(t.a), sb = tu_tcp_stats(t.b);
    ck_assert_uint_eq(sa.active_opens, 1);
    ck_assert_uint_eq(sb.passive_opens, 1);
    ck_assert_uint_eq(sa.conns_now, 1);
    ck_assert_uint_eq(sb.conns_now, 1);
    tu_pair_free(&t);
}
END_TEST

/* SYNs from a (params p; NULL: defaults) into a black hole: the SYNs leave at want[0..n)
 * seconds and connect() fails with ETIMEDOUT at fail_s. */
static void assert_syn_schedule(const tcp_params_t *p, const int *want, int n, int fail_s)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 1.0);
    if (p) tcp_stack_set_params(t.a, p);
    obs_t *o = lb_calloc(1, sizeof *o);
    obs_start(t.net, o);
    tu_side_t cl = {0};
    connect_ab(&t, &cl, 0);
    sim_run(t.sim, 300 * SIM_S);
    ck_assert_int_eq(o->ndrop, n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(o->drop[i].t, want[i] * SIM_S);
        ck_assert_uint_eq(o->drop[i].flags, TCP_SYN);
    }
    assert_error(&cl, LB_ETIMEDOUT, fail_s * SIM_S);
    tcp_stats_t s = tu_tcp_stats(t.a);
    ck_assert_uint_eq(s.syn_retransmits, (unsigned)(n - 1));
    ck_assert_uint_eq(s.timeouts, 1);
    ck_assert_uint_eq(s.conns_now, 0);
    lb_free(o);
    tu_pair_free(&t);
}

/* SYNs into a black hole: 0, 1, 3, 7, 15, 31, 63 s, then ETIMEDOUT at 127 s. */
START_TEST(syn_retransmit_schedule)
{
    static const int want[] = {0, 1, 3, 7, 15, 31, 63};
    assert_syn_schedule(NULL, want, 7, 127);
}
END_TEST

START_TEST(syn_retries_two)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 1.0);
    tcp_params_t p;
    tcp_params_default(&p);
    p.syn_retries = 2;
    tcp_stack_set_params(t.a, &p);
    tu_side_t cl = {0};
    connect_ab(&t, &cl, 0);
    sim_run(t.sim, 300 * SIM_S);
    assert_error(&cl, LB_ETIMEDOUT, 7 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).syn_retransmits, 2);
    tu_pair_free(&t);
}
END_TEST

/* Linux >= 6.5 (tcp_syn_linear_timeouts 4): SYNs at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s
 * and ETIMEDOUT at 131 s (tests/kernel-timers.sh measures the same on this kernel). */
START_TEST(syn_linear_timeouts_schedule)
{
    tcp_params_t p;
    ck_assert_int_eq(tcp_params_kernel(&p, "6.6.44-azl3"), 0);
    ck_assert_int_eq(p.syn_linear_timeouts, 4);
    static const int want[] = {0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67};
    assert_syn_schedule(&p, want, 11, 131);
}
END_TEST

/* The time rule (tcp_model_timeout of syn-retries from the first SYN) ends the linear
 * retransmissions early when syn-retries is small: 1 and 4 give SYNs at 0, 1, 2 and
 * ETIMEDOUT at 3 s, as measured on 6.18. Kernels before 6.5 have the classic 5.15 profile. */
START_TEST(syn_linear_time_rule)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 1.0);
    tcp_params_t p;
    ck_assert_int_eq(tcp_params_kernel(&p, "5.15"), 0);
    ck_assert_int_eq(p.syn_linear_timeouts, 0);
    ck_assert_int_eq(p.syn_retries, 6);
    ck_assert_int_eq(tcp_params_kernel(&p, "3.2"), 0);
    ck_assert_int_eq(p.syn_retries, 5);
    ck_assert_int_eq(tcp_params_kernel(&p, "six"), LB_EINVAL);
    ck_assert_int_eq(tcp_params_kernel(&p, "6.x"), LB_EINVAL);
    tcp_params_default(&p);
    p.syn_retries = 1;
    p.syn_linear_timeouts = 4;
    tcp_stack_set_params(t.a, &p);
    tu_side_t cl = {0};
    connect_ab(&t, &cl, 0);
    sim_run(t.sim, 300 * SIM_S);
    assert_error(&cl, LB_ETIMEDOUT, 3 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).syn_retransmits, 2);
    tu_pair_free(&t);
}
END_TEST

/* opts.timeout cuts the SYN retransmissions short. */
START_TEST(connect_timeout)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 1.0);
    tu_side_t cl = {.sim = t.sim};
    tcp_connect_opts_t o = {.timeout = 2500 * SIM_MS};
    int rc;
    cl.c = tcp_connect(t.a, tu_ip("10.0.0.2"), 80, &o, &tu_side_cbs, &cl, &rc);
    ck_assert_ptr_nonnull(cl.c);
    sim_run(t.sim, 300 * SIM_S);
    assert_error(&cl, LB_ETIMEDOUT, 2500 * SIM_MS);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* RST|ACK from a closed port: ECONNREFUSED one RTT after the SYN. */
START_TEST(rst_closed_port)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, BW, 0);
    tu_side_t cl = {0};
    connect_ab(&t, &cl, 0);
    sim_run(t.sim, 10 * SIM_S);
    assert_error(&cl, LB_ECONNREFUSED, 2 * LAT + ser(SYN_BYTES, BW) + ser(ACK_BYTES, BW));
    ck_assert_uint_eq(tu_tcp_stats(t.b).rst_sent, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).rst_recv, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* ICMP net unreachable from a router in SYN_SENT is a hard error. */
START_TEST(icmp_unreachable_in_syn_sent)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    t.b->forwarding = true;
    net_route_add(t.a, tu_ip("10.0.1.0"), 24, tu_ip("10.0.0.2"), t.a->ifaces.v[0]);
    tu_side_t cl = {.sim = t.sim};
    int rc;
    cl.c = tcp_connect(t.a, tu_ip("10.0.1.5"), 80, NULL, &tu_side_cbs, &cl, &rc);
    ck_assert_ptr_nonnull(cl.c);
    sim_run(t.sim, 10 * SIM_S);
    /* b has no route: ICMP net unreachable, which Linux turns into ENETUNREACH
     * (icmp_err_convert[]; a connect() through a router without the route says "Network
     * is unreachable") */
    assert_error(&cl, LB_ENETUNREACH, 2 * LAT);
    /* no route at all: connect() fails at once, ENETUNREACH as well */
    tcp_conn_t *c = tcp_connect(t.a, tu_ip("192.168.9.9"), 80, NULL, &tu_side_cbs, &cl, &rc);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(rc, LB_ENETUNREACH);
    tu_pair_free(&t);
}
END_TEST

/* Sets the link's loss rate (1.0: nothing gets through). */
static void set_loss(net_link_t *link, double loss)
{
    net_link_params_t lp = *net_link_params(link);
    lp.loss = loss;
    net_link_set_params(link, &lp);
}

/* The passive side retransmits its SYN-ACK at 1, 3, 7, 15, 31 s and drops the request
 * at 63 s (tcp_synack_retries 5). */
static void cut_link(sim_t *sim, void *a, void *b) { (void)sim; (void)b; set_loss(a, 1.0); }

START_TEST(synack_retransmit_schedule)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    obs_t *o = lb_calloc(1, sizeof *o);
    obs_start(t.net, o);
    tu_side_t cl = {0}, sv = {0};
    listen_b(&t, &sv);
    connect_ab(&t, &cl, 0);
    /* the SYN arrives at b at LAT; cut the link just after, before the SYN-ACK leaves b */
    sim_schedule(t.sim, LAT, cut_link, t.link, NULL);
    sim_run(t.sim, LAT + 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 1);
    sim_run(t.sim, 100 * SIM_S);
    static const int want[] = {0, 1, 3, 7, 15, 31};
    int k = 0;
    for (int i = 0; i < o->ndrop; i++) {
        if (strcmp(o->drop[i].where, "b") != 0) continue;
        ck_assert_uint_eq(o->drop[i].flags, TCP_SYN | TCP_ACK);
        ck_assert_int_lt(k, 6);
        ck_assert_int_eq(o->drop[i].t, LAT + want[k] * SIM_S);
        k++;
    }
    ck_assert_int_eq(k, 6);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);
    ck_assert_int_eq(sv.accepted, 0);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

/* ---- data ---- */

static void send_bytes(tcp_conn_t *c, uint32_t n)
{
    net_msg_t *m = net_msg_raw(n);
    ck_assert_int_eq(tcp_send(c, m), 0);
    net_msg_unref(m);
}


/* A pair a - b (one link, LAT), a connection a -> b established, then everything observed
 * (lb_free the result). */
static obs_t *observed_established(tu_pair_t *t, tu_side_t *cl, tu_side_t *sv)
{
    tu_pair_new(t, 1, LAT, 0, 0);
    obs_t *o = lb_calloc(1, sizeof *o);
    established_ab(t, cl, sv, 0);
    obs_start(t->net, o);
    return o;
}
/* A small message is ACKed by the delayed-ACK timer, 40 ms after it arrived. */
START_TEST(delayed_ack_single_segment)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    obs_t *o = observed_established(&t, &cl, &sv);
    send_bytes(cl.c, 100);
    sim_run(t.sim, 2 * SIM_S);
    ck_assert_int_eq(sv.recvs, 1);
    ck_assert_int_eq(sv.t_recv, SIM_S + LAT);
    ck_assert_int_eq(o->nrx, 2);
    ck_assert_str_eq(o->rx[1].where, "a");
    ck_assert_uint_eq(o->rx[1].flags, TCP_ACK);
    ck_assert_int_eq(o->rx[1].t, SIM_S + LAT + 40 * SIM_MS + LAT);
    ck_assert_uint_eq(tu_tcp_stats(t.b).delayed_acks, 1);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

/* 1 MB over 10 Mbps: the link is the bottleneck; ACKs every second segment. */
START_TEST(bulk_transfer_bandwidth)
{
    const uint64_t bw = 10000000ULL;
    const uint32_t size = 1 << 20;
    tu_pair_t t;
    tu_pair_new(&t, 3, SIM_MS, bw, 0);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    tcp_stats_t b0 = tu_tcp_stats(t.b);
    net_msg_t *m = net_msg_raw(size);
    ck_assert_int_eq(tcp_send(cl.c, m), 0);
    sim_run(t.sim, 10 * SIM_S);
    ck_assert_int_eq(sv.recvs, 1);
    ck_assert_ptr_eq(sv.last, m);
    ck_assert_uint_eq(sv.bytes, size);
    net_msg_unref(m);
    /* 1448-byte payloads (MSS 1460 less timestamps): 725 segments, 1500 bytes each on
     * the wire except the last */
    const tcp_params_t *p = tcp_stack_params(t.a);
    uint32_t mss = p->mss - NET_TCP_OPTS;
    uint32_t nseg = (size + mss - 1) / mss;
    uint64_t wire = (uint64_t)size + (uint64_t)nseg * ACK_BYTES;
    sim_time_t ideal = ser((uint32_t)wire, bw) + SIM_MS;
    sim_time_t took = sv.t_recv - SIM_S;
    ck_assert_int_ge(took, ideal);
    ck_assert_int_le(took, ideal + 5 * SIM_MS);
    ck_assert_uint_eq(tu_tcp_stats(t.a).data_segs_out, nseg);
    ck_assert_uint_eq(tu_tcp_stats(t.a).retransmits, 0);
    uint64_t acks = tu_tcp_stats(t.b).acks_out - b0.acks_out;
    ck_assert_uint_ge(acks, nseg / 2);
    ck_assert_uint_le(acks, nseg / 2 + 2);
    tu_pair_free(&t);
}
END_TEST

/* Messages over a lossy link arrive intact, in order, once each. */
typedef struct order_rec { int n; net_msg_t *want[64]; bool bad; } order_rec_t;
static order_rec_t g_order;
static void order_recv(tcp_conn_t *c, net_msg_t *m, void *d)
{
    (void)c;
    tu_side_t *s = d;
    s->recvs++;
    s->bytes += m->size;
    s->t_recv = sim_now(s->sim);
    if (g_order.n >= 64 || g_order.want[g_order.n] != m) g_order.bad = true;
    g_order.n++;
}
static const tcp_cbs_t order_cbs = {NULL, order_recv, NULL, tu_side_error};
static void order_accept(tcp_conn_t *c, void *d)
{
    tu_side_t *s = d;
    s->accepted++;
    s->c = c;
    tcp_conn_set_cbs(c, &order_cbs, s);
}

START_TEST(lossy_link_delivers_intact)
{
    uint64_t retrans = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        tu_pair_t t;
        tu_pair_new(&t, seed, 2 * SIM_MS, BW, 0.01);
        tu_side_t cl = {0}, sv = {.sim = t.sim};
        ck_assert_int_eq(tcp_listen(t.b, 0, 80, order_accept, &sv), 0);
        connect_ab(&t, &cl, 0);
        sim_run(t.sim, 5 * SIM_S);
        ck_assert_int_eq(cl.connected, 1);
        memset(&g_order, 0, sizeof g_order);
        /* one 100 KB message, then a train of odd sizes */
        for (int i = 0; i < 40; i++) {
            net_msg_t *m = net_msg_raw(i == 0 ? 100 * 1024 : 1 + (uint32_t)i * 977 % 5000);
            g_order.want[i] = m;
            ck_assert_int_eq(tcp_send(cl.c, m), 0);
            net_msg_unref(m);
        }
        sim_run(t.sim, 120 * SIM_S);
        ck_assert_int_eq(sv.recvs, 40);
        ck_assert_int_eq(g_order.n, 40);
        ck_assert(!g_order.bad);    /* each message once, in order (same object) */
        uint64_t want_bytes = 100 * 1024;
        for (int i = 1; i < 40; i++) want_bytes += 1 + (uint32_t)i * 977 % 5000;
        ck_assert_uint_eq(sv.bytes, want_bytes);
        ck_assert_int_eq(cl.errors, 0);
        retrans += tu_tcp_stats(t.a).retransmits;
        tu_pair_free(&t);
    }
    ck_assert_uint_gt(retrans, 0);
}
END_TEST

/* Same train of messages with heavy loss in both directions: still exactly once. */
START_TEST(heavy_loss_order)
{
    tu_pair_t t;
    tu_pair_new(&t, 11, SIM_MS, BW, 0.0);
    tu_side_t cl = {0}, sv = {.sim = t.sim};
    ck_assert_int_eq(tcp_listen(t.b, 0, 80, order_accept, &sv), 0);
    connect_ab(&t, &cl, 0);
    sim_run(t.sim, SIM_S);
    set_loss(t.link, 0.1);
    memset(&g_order, 0, sizeof g_order);
    uint64_t want_bytes = 0;
    for (int i = 0; i < 30; i++) {
        uint32_t sz = 500 + (uint32_t)i * 1231 % 9000;
        want_bytes += sz;
        net_msg_t *m = net_msg_raw(sz);
        g_order.want[i] = m;
        ck_assert_int_eq(tcp_send(cl.c, m), 0);
        net_msg_unref(m);
    }
    sim_run(t.sim, 400 * SIM_S);
    ck_assert_int_eq(cl.errors, 0);
    ck_assert_int_eq(sv.recvs, 30);
    ck_assert(!g_order.bad);
    ck_assert_uint_eq(sv.bytes, want_bytes);
    tcp_stats_t s = tu_tcp_stats(t.a);
    ck_assert_uint_gt(s.retransmits, 0);
    ck_assert_uint_gt(s.fast_retransmits + s.rto_expiries, 0);
    tu_pair_free(&t);
}
END_TEST

/* Data retransmissions give up after tcp_retries2 (time-based, ~924.6 s). */
START_TEST(data_retries2_timeout)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    cut_link(t.sim, t.link, NULL);
    send_bytes(cl.c, 1000);
    sim_run(t.sim, 3000 * SIM_S);
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ETIMEDOUT);
    /* RTO from srtt 10 ms: 210 ms. A tail loss probe first, when the RTO would have
     * fired (PTO 2 * 10 + 200 ms, clamped to the 210 ms RTO), the RTOs from there; Linux's
     * timeout for 15 retries from 200 ms is (2^10 - 1) * 0.2 + 6 * 120 = 924.6 s from the
     * first RTO retransmission; it fires at the first RTO expiry after. */
    ck_assert_int_eq(cl.t_error - SIM_S, (934830 + 210) * SIM_MS);
    ck_assert_uint_eq(tu_tcp_stats(t.a).rto_expiries, 15);
    ck_assert_uint_eq(tu_tcp_stats(t.a).tlp_probes, 1);
    tu_pair_free(&t);
}
END_TEST

/* tcp_retries2 3: Linux measures the give-up from the first RTO retransmission
 * (retrans_stamp after tcp_retransmit_skb; the tail loss probe before it does not count),
 * so it retransmits 4 times, not 3 (measured on 6.18: the probe at 0.21 s, 4 RTO
 * retransmissions 0.20 .. 1.66 s apart, then ETIMEDOUT 3.4 s later, 6.70 s after the send;
 * tests/kernel-timers.sh). */
START_TEST(data_retries2_from_first_retransmission)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, 10 * SIM_US, 0, 0);
    tcp_params_t p;
    tcp_params_default(&p);
    p.retries2 = 3;
    tcp_stack_set_params(t.a, &p);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    cut_link(t.sim, t.link, NULL);
    sim_time_t t0 = sim_now(t.sim);
    send_bytes(cl.c, 100);
    sim_run(t.sim, 100 * SIM_S);
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ETIMEDOUT);
    ck_assert_uint_eq(tu_tcp_stats(t.a).rto_expiries, 4);
    ck_assert_uint_eq(tu_tcp_stats(t.a).tlp_probes, 1);
    /* the probe at 0.2 s, RTOs 0.2, 0.4, 0.8, 1.6, 3.2 s after it (+ the 20 us RTT): the
     * give-up at about 6.4 s */
    ck_assert_int_ge(cl.t_error - t0, 6400 * SIM_MS);
    ck_assert_int_le(cl.t_error - t0, 6500 * SIM_MS);
    tu_pair_free(&t);
}
END_TEST

/* ---- tail loss probe (tcp_schedule_loss_probe, tcp_send_loss_probe) ---- */

/* The data segments a sent into a cut link, in order: their times and sequence numbers. */
static int data_drops(const obs_t *o, sim_time_t *t, uint32_t *seq, int max)
{
    int k = 0;
    for (int i = 0; i < o->ndrop && k < max; i++) {
        if (strcmp(o->drop[i].where, "a") != 0 || !o->drop[i].len) continue;
        t[k] = o->drop[i].t;
        seq[k++] = o->drop[i].seq;
    }
    return k;
}

/* One segment unanswered (srtt 10 ms, RTO 210 ms): the probe goes when the RTO would have
 * (2 * srtt + rto_min = 220 ms, clamped to the RTO), resending it; the RTOs follow one RTO
 * after the probe. tcp_early_retrans 0 (or 2, the 3.5 .. 3.9 default): no probe, the RTO
 * at 210 ms. As measured on 6.18 (tests/kernel-timers.sh). */
static void probe_schedule(int early_retrans, const int *want_ms, int n, uint64_t probes)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tcp_params_t p;
    tcp_params_default(&p);
    p.early_retrans = early_retrans;
    tcp_stack_set_params(t.a, &p);
    obs_t *o = lb_calloc(1, sizeof *o);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    obs_start(t.net, o);
    set_loss(t.link, 1.0);
    send_bytes(cl.c, 100);
    sim_run(t.sim, SIM_S + want_ms[n - 1] * SIM_MS + 1);
    sim_time_t at[8];
    uint32_t seq[8];
    ck_assert_int_eq(data_drops(o, at, seq, 8), n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(at[i], SIM_S + want_ms[i] * SIM_MS);
        ck_assert_uint_eq(seq[i], seq[0]);
    }
    ck_assert_uint_eq(tu_tcp_stats(t.a).tlp_probes, probes);
    ck_assert_uint_eq(tu_tcp_stats(t.a).retransmits, (uint64_t)n - 1);
    lb_free(o);
    tu_pair_free(&t);
}

START_TEST(tlp_one_segment)
{
    static const int with[] = {0, 210, 420, 840}, without[] = {0, 210, 630};
    probe_schedule(3, with, 4, 1);
    probe_schedule(4, with, 4, 1);
    probe_schedule(0, without, 3, 0);
    probe_schedule(2, without, 3, 0);
    tcp_params_t p;
    ck_assert_int_eq(tcp_params_kernel(&p, "3.10"), 0);
    ck_assert_int_eq(p.early_retrans, 3);
    ck_assert_int_eq(tcp_params_kernel(&p, "3.9"), 0);
    ck_assert_int_eq(p.early_retrans, 2);
    ck_assert_int_eq(tcp_params_kernel(&p, "3.4"), 0);
    ck_assert_int_eq(p.early_retrans, 0);
}
END_TEST

/* More than one segment out: PTO = 2 * srtt + 2 ms (TCP_TIMEOUT_MIN_US) = 22 ms, and the
 * probe resends the last segment; the RTO, restarted by the probe, resends the first. */
START_TEST(tlp_last_segment)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    obs_t *o = observed_established(&t, &cl, &sv);
    set_loss(t.link, 1.0);
    uint32_t mss = tcp_stack_params(t.a)->mss - NET_TCP_OPTS;
    send_bytes(cl.c, 3 * mss);
    sim_run(t.sim, SIM_S + 300 * SIM_MS);
    sim_time_t at[8];
    uint32_t seq[8];
    ck_assert_int_eq(data_drops(o, at, seq, 8), 5);
    ck_assert_int_eq(at[2], SIM_S);
    ck_assert_int_eq(at[3], SIM_S + 22 * SIM_MS);
    ck_assert_uint_eq(seq[3], seq[0] + 2 * mss);
    ck_assert_int_eq(at[4], SIM_S + (22 + 210) * SIM_MS);
    ck_assert_uint_eq(seq[4], seq[0]);
    ck_assert_uint_eq(tu_tcp_stats(t.a).tlp_probes, 1);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

/* With unsent data the peer's window takes, the probe is the next new segment, sent
 * whatever the congestion window says (tcp_write_xmit with push_one 2): no retransmission. */
START_TEST(tlp_new_data)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tcp_params_t p;
    tcp_params_default(&p);
    p.init_cwnd = 2;
    tcp_stack_set_params(t.a, &p);
    obs_t *o = lb_calloc(1, sizeof *o);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    obs_start(t.net, o);
    set_loss(t.link, 1.0);
    uint32_t mss = p.mss - NET_TCP_OPTS;
    send_bytes(cl.c, 5 * mss);
    sim_run(t.sim, SIM_S + 100 * SIM_MS);
    sim_time_t at[8];
    uint32_t seq[8];
    ck_assert_int_eq(data_drops(o, at, seq, 8), 3);
    ck_assert_int_eq(at[2], SIM_S + 22 * SIM_MS);
    ck_assert_uint_eq(seq[2], seq[0] + 2 * mss);
    ck_assert_uint_eq(tu_tcp_stats(t.a).tlp_probes, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).retransmits, 0);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

typedef struct later { tcp_conn_t *c; uint32_t n; } later_t;
static void send_later(sim_t *sim, void *a, void *b)
{
    (void)sim, (void)b;
    later_t *l = a;
    send_bytes(l->c, l->n);
}
static void heal_link(sim_t *sim, void *a, void *b) { (void)sim, (void)b; set_loss(a, 0); }

/* Two 1000-byte messages 1 ms apart, the second lost: the probe 22 ms later repairs it
 * (the receiver, with 2000 bytes unacknowledged, ACKs at once). That ACK reaches
 * tlp_high_seq but not beyond: it could be the original's, with the probe's D-SACK to
 * come, so tcp_process_tlp_ack waits; the ACK of the next data, beyond it, proves the
 * loss: a cwnd reduction (TCPLossProbeRecovery), no RTO. */
START_TEST(tlp_repairs_tail_loss)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    obs_t *o = observed_established(&t, &cl, &sv);
    net_trace_flow(t.net, tcp_conn_flow(cl.c));
    later_t l = {cl.c, 1000};
    send_bytes(cl.c, 1000);
    sim_schedule(t.sim, 500 * SIM_US, cut_link, t.link, NULL);
    sim_schedule(t.sim, SIM_MS, send_later, &l, NULL);
    sim_schedule(t.sim, 1500 * SIM_US, heal_link, t.link, NULL);
    sim_run(t.sim, SIM_S + 50 * SIM_MS);
    ck_assert_int_eq(sv.recvs, 2);
    ck_assert_int_eq(sv.t_recv, SIM_S + (1 + 22 + 5) * SIM_MS);
    tcp_stats_t s = tu_tcp_stats(t.a);
    ck_assert_uint_eq(s.tlp_probes, 1);
    ck_assert_uint_eq(s.retransmits, 1);
    ck_assert_uint_eq(s.tlp_recoveries, 0);
    send_bytes(cl.c, 1000);
    sim_run(t.sim, SIM_S + 500 * SIM_MS);
    s = tu_tcp_stats(t.a);
    ck_assert_int_eq(sv.recvs, 3);
    ck_assert_uint_eq(s.tlp_recoveries, 1);
    ck_assert_uint_eq(s.tlp_probes, 1);
    ck_assert_uint_eq(s.rto_expiries, 0);
    ck_assert_msg(strstr(o->trace, "tail loss probe: retransmit of the last segment, seq "),
                  "%s", o->trace);
    ck_assert_msg(strstr(o->trace, "past the loss probe"), "%s", o->trace);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

/* Two 100-byte messages: the receiver delays its ACK 40 ms, longer than the 22 ms probe
 * timeout, so the probe is spurious. The receiver answers the duplicate at once with a
 * D-SACK, which ends the episode without a cwnd reduction; later ACKs change nothing. */
START_TEST(tlp_spurious_dsack)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    obs_t *o = observed_established(&t, &cl, &sv);
    net_trace_flow(t.net, tcp_conn_flow(cl.c));
    send_bytes(cl.c, 100);
    send_bytes(cl.c, 100);
    sim_run(t.sim, SIM_S + 100 * SIM_MS);
    ck_assert_int_eq(sv.recvs, 2);
    tcp_stats_t s = tu_tcp_stats(t.a);
    ck_assert_uint_eq(s.tlp_probes, 1);
    ck_assert_uint_eq(s.retransmits, 1);
    /* the probe reached b at 27 ms and was answered at once, not by the delayed ACK */
    int acks = 0;
    for (int i = 0; i < o->nrx; i++)
        if (!strcmp(o->rx[i].where, "a") && !o->rx[i].len) {
            ck_assert_int_eq(o->rx[i].t, SIM_S + (22 + 2 * 5) * SIM_MS);
            acks++;
        }
    ck_assert_int_eq(acks, 1);
    send_bytes(cl.c, 100);
    sim_run(t.sim, SIM_S + 500 * SIM_MS);
    ck_assert_int_eq(sv.recvs, 3);
    ck_assert_uint_eq(tu_tcp_stats(t.a).tlp_recoveries, 0);
    ck_assert_msg(strstr(o->trace, "D-SACK for the loss probe"), "%s", o->trace);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

/* ---- closing ---- */

/* Ends the side's connection with how (tcp_close or tcp_abort). */
static void end_conn(tu_side_t *s, void (*how)(tcp_conn_t *c))
{
    how(s->c);
    s->c = NULL;
}

/* Client closes first: FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT on the client, CLOSE_WAIT ->
 * LAST_ACK -> gone on the server; the tuple stays taken for exactly 60 s. */
static void close_cb(sim_t *sim, void *a, void *b) { (void)sim; (void)b; end_conn(a, tcp_close); }

START_TEST(fin_and_time_wait)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, BW, 0);
    tu_side_t cl = {0}, sv = {.close_on_eof = true};
    established_ab(&t, &cl, &sv, 40000);
    send_bytes(cl.c, 3000);
    sim_run(t.sim, 2 * SIM_S);
    ck_assert_uint_eq(sv.bytes, 3000);
    sim_schedule(t.sim, 0, close_cb, &cl, NULL);
    sim_run(t.sim, 2 * SIM_S + LAT + ser(ACK_BYTES, BW));
    /* the FIN has just reached b: CLOSE_WAIT, eof, close -> LAST_ACK with FIN sent */
    ck_assert_int_eq(sv.eofs, 1);
    ck_assert_int_eq(sv.t_eof, 2 * SIM_S + LAT + ser(ACK_BYTES, BW));
    sim_time_t tw_at = 2 * SIM_S + 2 * (LAT + ser(ACK_BYTES, BW));
    sim_run(t.sim, tw_at);
    tcp_stats_t sa = tu_tcp_stats(t.a);
    ck_assert_uint_eq(sa.time_wait_now, 1);
    ck_assert_uint_eq(sa.conns_now, 0);
    sim_run(t.sim, tw_at + LAT + ser(ACK_BYTES, BW));
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);
    /* the tuple is taken while in TIME_WAIT */
    int rc = 0;
    tcp_connect_opts_t o = {.sport = 40000};
    tu_side_t cl2 = {.sim = t.sim};
    ck_assert_ptr_null(tcp_connect(t.a, tu_ip("10.0.0.2"), 80, &o, &tu_side_cbs, &cl2, &rc));
    ck_assert_int_eq(rc, LB_EADDRINUSE);
    sim_run(t.sim, tw_at + 60 * SIM_S - 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 1);
    sim_run(t.sim, tw_at + 60 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 0);
    ck_assert_ptr_nonnull(tcp_connect(t.a, tu_ip("10.0.0.2"), 80, &o, &tu_side_cbs, &cl2, &rc));
    ck_assert_int_eq(cl.errors + sv.errors, 0);
    tu_pair_free(&t);
}
END_TEST

/* The server closes first (HTTP/1.0 style), so TIME_WAIT is on the server; a new SYN
 * from the same client port, with an ISN above the old sequence space, reopens it. */
START_TEST(syn_reopens_time_wait)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, BW, 0);
    tu_side_t cl = {.close_on_eof = true}, sv = {.reply = 500, .close_after_reply = true};
    established_ab(&t, &cl, &sv, 41000);
    send_bytes(cl.c, 200);
    sim_run(t.sim, 2 * SIM_S);
    ck_assert_int_eq(cl.recvs, 1);
    ck_assert_int_eq(cl.eofs, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).time_wait_now, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    tu_side_t cl2 = {0};
    connect_ab(&t, &cl2, 41000);
    sim_run(t.sim, 3 * SIM_S);
    ck_assert_int_eq(cl2.connected, 1);
    ck_assert_int_eq(cl2.t_connected, 2 * SIM_S + 2 * (LAT + ser(SYN_BYTES, BW)));
    ck_assert_uint_eq(tu_tcp_stats(t.b).time_wait_reused, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).time_wait_now, 0);
    ck_assert_int_eq(sv.accepted, 2);
    tu_pair_free(&t);
}
END_TEST

/* tcp_abort: RST; the peer reports ECONNRESET half an RTT later. */
static void abort_cb(sim_t *sim, void *a, void *b) { (void)sim; (void)b; end_conn(a, tcp_abort); }

START_TEST(abort_resets_peer)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, BW, 0);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    sim_schedule(t.sim, 0, abort_cb, &cl, NULL);
    sim_run(t.sim, 2 * SIM_S);
    assert_error(&sv, LB_ECONNRESET, SIM_S + LAT + ser(ACK_BYTES, BW));
    ck_assert_uint_eq(tu_tcp_stats(t.a).rst_sent, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* Data reaching a socket the app has closed is answered with a RST (Linux). */
START_TEST(data_after_close_resets)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, BW, 0);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    /* the server closes while the client's data is in flight */
    send_bytes(cl.c, 1000);
    sim_schedule(t.sim, 0, close_cb, &sv, NULL);
    sim_run(t.sim, 2 * SIM_S);
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ECONNRESET);
    ck_assert_int_eq(sv.recvs, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.b).rst_sent, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* The app idle timeout reports ETIMEDOUT and closes with a FIN. */
START_TEST(idle_timeout)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tu_side_t cl = {0}, sv = {.close_on_eof = true};
    listen_b(&t, &sv);
    connect_ab(&t, &cl, 0);
    tcp_conn_set_idle_timeout(cl.c, 3 * SIM_S);
    sim_run(t.sim, SIM_S);
    send_bytes(cl.c, 10);       /* activity at 1 s; the delayed ACK arrives at 1.05 s */
    sim_run(t.sim, 20 * SIM_S);
    assert_error(&cl, LB_ETIMEDOUT, SIM_S + 2 * LAT + 40 * SIM_MS + 3 * SIM_S);
    ck_assert_int_eq(sv.eofs, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* A full SYN queue drops SYNs silently; the client's SYN retransmission gets in later. */
START_TEST(backlog_full_drops_syn)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tcp_params_t p;
    tcp_params_default(&p);
    p.backlog = 2;
    tcp_stack_set_params(t.b, &p);
    tu_side_t sv = {0};
    listen_b(&t, &sv);
    tu_side_t cl[3] = {{0}};
    for (int i = 0; i < 3; i++) connect_ab(&t, &cl[i], 0);
    sim_run(t.sim, 5 * SIM_S);
    ck_assert_int_eq(cl[0].t_connected, 2 * LAT);
    ck_assert_int_eq(cl[1].t_connected, 2 * LAT);
    ck_assert_int_eq(cl[2].t_connected, SIM_S + 2 * LAT);
    ck_assert_uint_eq(tu_tcp_stats(t.b).listen_drops, 1);
    const char **reasons;
    const uint64_t *counts;
    size_t n = net_drop_reasons(t.net, &reasons, &counts);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(reasons[i], "tcp-backlog-full") == 0) {
            found = true;
            ck_assert_uint_eq(counts[i], 1);
        }
    ck_assert(found);
    ck_assert_int_eq(sv.accepted, 3);
    tu_pair_free(&t);
}
END_TEST

/* A SYN whose ISN is not above the TIME_WAIT's sequence space (the old connection sent
 * more than the ISN clock advanced) gets an ACK; the client answers it with a RST, which
 * ends the TIME_WAIT, and its SYN retransmission 1 s later gets in. */
START_TEST(old_syn_to_time_wait)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tu_side_t cl = {.close_on_eof = true}, sv = {.close_on_recv = true};
    listen_b(&t, &sv);
    connect_ab(&t, &cl, 42000);
    send_bytes(cl.c, 4 << 20);      /* queued in SYN_SENT, sent once connected */
    while (!sv.recvs) sim_run(t.sim, sim_now(t.sim) + SIM_MS);
    ck_assert_uint_eq(sv.bytes, 4 << 20);
    /* the server closed on receipt; its TIME_WAIT holds a sequence space 4 MB past the
     * old ISN, more than the 64 ns ISN clock advances in the 0.2 s this took */
    ck_assert_int_lt(sv.t_recv, 200 * SIM_MS);
    sim_run(t.sim, sv.t_recv + 3 * LAT);
    ck_assert_uint_eq(tu_tcp_stats(t.b).time_wait_now, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    tu_side_t cl2 = {0};
    connect_ab(&t, &cl2, 42000);
    sim_time_t t0 = sim_now(t.sim);
    sim_run(t.sim, 5 * SIM_S);
    ck_assert_int_eq(cl2.connected, 1);
    ck_assert_int_eq(cl2.t_connected, t0 + SIM_S + 2 * LAT);
    ck_assert_uint_eq(tu_tcp_stats(t.a).rst_sent, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).time_wait_reused, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.b).time_wait_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* The final ACK is lost: the LAST_ACK side retransmits its FIN, TIME_WAIT answers with
 * an ACK and restarts its 60 s. */
static void restore_link(sim_t *sim, void *a, void *b) { (void)sim; (void)b; set_loss(a, 0); }

START_TEST(time_wait_acks_fin_retransmission)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tu_side_t cl = {0}, sv = {.close_on_eof = true};
    established_ab(&t, &cl, &sv, 0);
    /* close at 1 s: FIN at b at 1.005, FIN+ACK at a at 1.010, final ACK lost */
    sim_time_t tw_at = SIM_S + 2 * LAT;
    sim_schedule(t.sim, 0, close_cb, &cl, NULL);
    sim_schedule_at(t.sim, tw_at, cut_link, t.link, NULL);
    sim_schedule_at(t.sim, tw_at + SIM_MS, restore_link, t.link, NULL);
    sim_run(t.sim, tw_at + 100 * SIM_MS);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 1);
    sim_run(t.sim, tw_at + SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.b).retransmits, 1);
    /* restarted when the FIN came again, about 0.2 s after it began */
    sim_run(t.sim, tw_at + 60 * SIM_S + 100 * SIM_MS);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 1);
    sim_run(t.sim, tw_at + 61 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 0);
    tu_pair_free(&t);
}
END_TEST

/* Hand-made segments from b to a (a has the connection). */
static void inject(tu_pair_t *t, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                   uint32_t ack)
{
    net_node_output(t->b, tu_tcp_seg(t->net, "10.0.0.2", sport, "10.0.0.1", dport, flags, seq,
                                     ack));
}

/* RFC 5961: an in-window RST that is not exactly rcv_nxt earns a challenge ACK; the exact
 * one resets. A stray ACK for no connection gets RST seq = its ack. */
START_TEST(rst_rules)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    obs_t *o = lb_calloc(1, sizeof *o);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 43000);
    send_bytes(sv.c, 10);
    sim_run(t.sim, 2 * SIM_S);
    /* a's rcv_nxt = b's snd_nxt; b's view: next seq it would send */
    uint32_t rcv_nxt = 0;
    obs_start(t.net, o);
    tcp_stats_t a0 = tu_tcp_stats(t.a);
    /* b sends one more byte-less ACK to learn the numbers from the capture */
    send_bytes(sv.c, 1);
    sim_run(t.sim, 3 * SIM_S);
    ck_assert_int_ge(o->nrx, 1);
    ck_assert_str_eq(o->rx[0].where, "a");
    rcv_nxt = o->rx[0].seq + 1;
    o->nrx = 0;
    inject(&t, 80, 43000, TCP_RST, rcv_nxt + 100, 0);
    sim_run(t.sim, 4 * SIM_S);
    ck_assert_int_eq(cl.errors, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.a).acks_out, a0.acks_out + 2);  /* delayed + challenge */
    inject(&t, 80, 43000, TCP_RST, rcv_nxt, 0);
    sim_run(t.sim, 5 * SIM_S);
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ECONNRESET);
    /* stray ACK to a closed port */
    o->nrx = 0;
    inject(&t, 80, 9999, TCP_ACK, 5, 777);
    sim_run(t.sim, 6 * SIM_S);
    ck_assert_int_eq(o->nrx, 2);
    ck_assert_str_eq(o->rx[1].where, "b");
    ck_assert_uint_eq(o->rx[1].flags, TCP_RST);
    ck_assert_uint_eq(o->rx[1].seq, 777);
    lb_free(o);
    tu_pair_free(&t);
}
END_TEST

/* An orphaned FIN_WAIT2 (the peer never closes) lasts tcp_fin_timeout, then goes
 * silently; the peer's late FIN then meets no socket and gets a RST. */
START_TEST(fin_wait2_timeout)
{
    tu_pair_t t;
    tu_pair_new(&t, 1, LAT, 0, 0);
    tu_side_t cl = {0}, sv = {0};
    established_ab(&t, &cl, &sv, 0);
    sim_schedule(t.sim, 0, close_cb, &cl, NULL);
    /* the peer's delayed ACK of our FIN is back: FIN_WAIT2 */
    sim_time_t fw2_at = SIM_S + 2 * LAT + 40 * SIM_MS;
    sim_run(t.sim, fw2_at + 60 * SIM_S - 1);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 1);
    ck_assert_int_eq(sv.eofs, 1);
    sim_run(t.sim, fw2_at + 60 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).conns_now, 0);
    ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 0);
    sim_schedule(t.sim, 0, close_cb, &sv, NULL);
    sim_run(t.sim, fw2_at + 61 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).rst_sent, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).rst_recv, 1);
    ck_assert_uint_eq(tu_tcp_stats(t.b).conns_now, 0);     /* LAST_ACK ended by the RST */
    tu_pair_free(&t);
}
END_TEST

/* Ephemeral ports: distinct while in use (TIME_WAIT included), LB_EADDRNOTAVAIL when
 * the range is exhausted, and the same choices for the same seed. */
START_TEST(ephemeral_ports)
{
    uint16_t first[2] = {0, 0};
    for (int run = 0; run < 2; run++) {
        tu_pair_t t;
        tu_pair_new(&t, 9, LAT, 0, 0);
        tcp_params_t p;
        tcp_params_default(&p);
        p.port_lo = 50000;
        p.port_hi = 50003;
        tcp_stack_set_params(t.a, &p);
        tu_side_t sv = {.close_on_eof = true}, cl[5] = {{0}};
        listen_b(&t, &sv);
        uint16_t seen = 0;
        for (int i = 0; i < 4; i++) {
            tcp_conn_t *c = connect_ab(&t, &cl[i], 0);
            uint16_t port = tcp_conn_lport(c);
            ck_assert_uint_ge(port, 50000);
            ck_assert_uint_le(port, 50003);
            ck_assert(!(seen & (1u << (port - 50000))));
            seen |= (uint16_t)(1u << (port - 50000));
            if (i == 0) first[run] = port;
        }
        int rc = 0;
        cl[4].sim = t.sim;
        ck_assert_ptr_null(tcp_connect(t.a, tu_ip("10.0.0.2"), 80, NULL, &tu_side_cbs, &cl[4],
                                       &rc));
        ck_assert_int_eq(rc, LB_EADDRNOTAVAIL);
        /* the client closes them all: the ports stay taken by TIME_WAIT for 60 s */
        sim_run(t.sim, SIM_S);
        for (int i = 0; i < 4; i++) close_cb(t.sim, &cl[i], NULL);
        sim_run(t.sim, 2 * SIM_S);
        ck_assert_uint_eq(tu_tcp_stats(t.a).time_wait_now, 4);
        ck_assert_ptr_null(tcp_connect(t.a, tu_ip("10.0.0.2"), 80, NULL, &tu_side_cbs, &cl[4],
                                       &rc));
        ck_assert_int_eq(rc, LB_EADDRNOTAVAIL);
        sim_run(t.sim, 62 * SIM_S);
        ck_assert_ptr_nonnull(tcp_connect(t.a, tu_ip("10.0.0.2"), 80, NULL, &tu_side_cbs,
                                          &cl[4], &rc));
        /* listening twice on a port is refused */
        ck_assert_int_eq(tcp_listen(t.b, tu_ip("10.0.0.2"), 80, tu_side_accept, &sv),
                         LB_EADDRINUSE);
        ck_assert_int_eq(tcp_unlisten(t.b, 0, 80), 0);
        ck_assert_int_eq(tcp_unlisten(t.b, 0, 80), LB_ENOENT);
        tu_pair_free(&t);
    }
    ck_assert_uint_eq(first[0], first[1]);
}
END_TEST

/* ---- memory ---- */

/* 100,000 sequential request/response connections, server closes first. Live
 * connections stay tiny; TIME_WAIT tuples on the server are reopened by new SYNs as the
 * client's ports wrap; everything is gone after the TIME_WAIT period. */
typedef struct seq_run {
    tu_pair_t *t;
    int started, done, max_live, errors;
    tu_side_t sv;
} seq_run_t;

static void seq_start(seq_run_t *r);

static void seq_connected(tcp_conn_t *c, void *d)
{
    (void)d;
    send_bytes(c, 120);
}

static void seq_recv(tcp_conn_t *c, net_msg_t *m, void *d)
{
    (void)c;
    (void)m;
    (void)d;
}

static void seq_eof(tcp_conn_t *c, void *d)
{
    seq_run_t *r = d;
    tcp_close(c);
    r->done++;
    int live = (int)(tu_tcp_stats(r->t->a).conns_now + tu_tcp_stats(r->t->b).conns_now);
    if (live > r->max_live) r->max_live = live;
    seq_start(r);
}

static void seq_error(tcp_conn_t *c, int rc, void *d)
{
    (void)c;
    (void)rc;
    seq_run_t *r = d;
    r->errors++;
    seq_start(r);
}

static const tcp_cbs_t seq_cbs = {seq_connected, seq_recv, seq_eof, seq_error};

static void seq_start(seq_run_t *r)
{
    if (r->started >= 100000) return;
    r->started++;
    int rc;
    tcp_conn_t *c = tcp_connect(r->t->a, tu_ip("10.0.0.2"), 80, NULL, &seq_cbs, r, &rc);
    if (!c) r->errors++;
}

START_TEST(sequential_connections_memory)
{
    tu_pair_t t;
    tu_pair_new(&t, 5, 20 * SIM_US, 0, 0);
    seq_run_t *r = lb_calloc(1, sizeof *r);
    r->t = &t;
    r->sv = (tu_side_t){.sim = t.sim, .reply = 300, .close_after_reply = true};
    ck_assert_int_eq(tcp_listen(t.b, 0, 80, tu_side_accept, &r->sv), 0);
    seq_start(r);
    sim_run(t.sim, 1000 * SIM_S);
    ck_assert_int_eq(r->errors, 0);
    ck_assert_int_eq(r->done, 100000);
    ck_assert_int_le(r->max_live, 3);
    tcp_stats_t sa = tu_tcp_stats(t.a), sb = tu_tcp_stats(t.b);
    ck_assert_uint_eq(sa.conns_now, 0);
    ck_assert_uint_eq(sb.conns_now, 0);
    ck_assert_uint_eq(sa.time_wait_now, 0);
    ck_assert_uint_eq(sb.time_wait_now, 0);
    ck_assert_uint_eq(sb.passive_opens, 100000);
    ck_assert_uint_gt(sb.time_wait_reused, 0);
    ck_assert_uint_eq(sa.retransmits + sb.retransmits, 0);
    lb_free(r);
    tu_pair_free(&t);
}
END_TEST

Suite *suite_tcp(void)
{
    Suite *s = suite_create("tcp");
    TCase *tc = tcase_create("handshake");
    tcase_add_test(tc, handshake_timing);
    tcase_add_test(tc, syn_retransmit_schedule);
    tcase_add_test(tc, syn_retries_two);
    tcase_add_test(tc, syn_linear_timeouts_schedule);
    tcase_add_test(tc, syn_linear_time_rule);
    tcase_add_test(tc, connect_timeout);
    tcase_add_test(tc, rst_closed_port);
    tcase_add_test(tc, icmp_unreachable_in_syn_sent);
    tcase_add_test(tc, synack_retransmit_schedule);
    tcase_add_test(tc, backlog_full_drops_syn);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_add_test(tc, delayed_ack_single_segment);
    tcase_add_test(tc, bulk_transfer_bandwidth);
    tcase_add_test(tc, lossy_link_delivers_intact);
    tcase_add_test(tc, heavy_loss_order);
    tcase_add_test(tc, data_retries2_timeout);
    tcase_add_test(tc, data_retries2_from_first_retransmission);
    suite_add_tcase(s, tc);

    tc = tcase_create("tlp");
    tcase_add_test(tc, tlp_one_segment);
    tcase_add_test(tc, tlp_last_segment);
    tcase_add_test(tc, tlp_new_data);
    tcase_add_test(tc, tlp_repairs_tail_loss);
    tcase_add_test(tc, tlp_spurious_dsack);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_test(tc, fin_and_time_wait);
    tcase_add_test(tc, syn_reopens_time_wait);
    tcase_add_test(tc, abort_resets_peer);
    tcase_add_test(tc, data_after_close_resets);
    tcase_add_test(tc, idle_timeout);
    tcase_add_test(tc, old_syn_to_time_wait);
    tcase_add_test(tc, time_wait_acks_fin_retransmission);
    tcase_add_test(tc, rst_rules);
    tcase_add_test(tc, fin_wait2_timeout);
    tcase_add_test(tc, ephemeral_ports);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, sequential_connections_memory);
    suite_add_tcase(s, tc);
    return s;
}

/* test_tcp_keepalive.c -- TCP keepalive (src/net/tcp_keepalive.c) against Linux's
 * tcp_keepalive_timer: the probe schedule (idle, then every intvl), the ACK that answers a
 * probe and resets the count, the give-up after cnt probes with a RST and ETIMEDOUT, a RST
 * in answer, the sysctl defaults, setsockopt's limits, and probes that wait for data in
 * flight. Two hosts a (client) and b (server) on one link. */
#include <check.h>
#include <string.h>
#include "tcp.h"
#include "util.h"

#define LAT (5 * SIM_MS)

static void setup(tu_pair_t *t, tu_side_t *cl, tu_side_t *sv)
{
    tu_pair_new(t, 1, LAT, 0, 0);
    cl->sim = sv->sim = t->sim;
    ck_assert_int_eq(tcp_listen(t->b, 0, 80, tu_side_accept, sv), 0);
    tcp_connect_opts_t o = {0};
    int rc = 1;
    cl->c = tcp_connect(t->a, tu_ip("10.0.0.2"), 80, &o, &tu_side_cbs, cl, &rc);
    ck_assert_ptr_nonnull(cl->c);
    sim_run(t->sim, SIM_S);
    ck_assert_int_eq(cl->connected, 1);
    ck_assert_int_eq(sv->accepted, 1);
}

static void set_loss(tu_pair_t *t, double loss)
{
    net_link_params_t lp = *net_link_params(t->link);
    lp.loss = loss;
    net_link_set_params(t->link, &lp);
}

/* A probe every `idle` of silence: the peer answers each, nothing fails, and the peer's
 * answer postpones the next probe by a whole idle period. */
START_TEST(probes_answered)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    setup(&t, &cl, &sv);
    tu_capture_t *cap = lb_calloc(1, sizeof *cap);
    tu_capture_start(t.net, cap);
    sim_time_t est = 2 * LAT;       /* the SYN-ACK arrived at 10 ms */
    tcp_keepalive_t ka = {.idle = 10 * SIM_S, .intvl = 2 * SIM_S, .cnt = 3};
    ck_assert_int_eq(tcp_conn_set_keepalive(cl.c, &ka), 0);
    sim_run(t.sim, 35 * SIM_S);
    tcp_stats_t sa = tu_tcp_stats(t.a);
    ck_assert_uint_eq(sa.keepalive_probes, 3);      /* 10.01 s, 20.02 s, 30.03 s */
    ck_assert_uint_eq(sa.keepalive_timeouts, 0);
    ck_assert_int_eq(cl.errors, 0);
    ck_assert_int_eq(sv.errors, 0);
    ck_assert_int_eq(tcp_conn_state(cl.c), TCP_ESTABLISHED);
    /* The first probe reaches b at est + 10 s + LAT; b's dup ACK (no delay) comes back at
     * + 2 LAT and restarts the idle period. */
    int k = 0;
    for (int i = 0; i < cap->n; i++) {
        const pkt_t *p = &cap->rec[i].p;
        if (strcmp(cap->rec[i].where, "b") || p->tcp_flags != TCP_ACK || p->len) continue;
        if (cap->rec[i].t < 2 * SIM_S) continue;
        sim_time_t want = est + 10 * SIM_S + LAT + k * (10 * SIM_S + 2 * LAT);
        ck_assert_int_eq(cap->rec[i].t, want);
        k++;
    }
    ck_assert_int_eq(k, 3);
    lb_free(cap);
    tu_pair_free(&t);
}
END_TEST

/* A silent peer: cnt probes intvl apart, then a RST and ETIMEDOUT, at idle + cnt * intvl
 * (Linux: 7200 + 9 x 75 s with the defaults). */
START_TEST(silent_peer_gives_up)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    setup(&t, &cl, &sv);
    tcp_keepalive_t ka = {.idle = 10 * SIM_S, .intvl = 2 * SIM_S, .cnt = 3};
    ck_assert_int_eq(tcp_conn_set_keepalive(cl.c, &ka), 0);
    set_loss(&t, 1.0);
    sim_run(t.sim, 60 * SIM_S);
    sim_time_t est = 2 * LAT;
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ETIMEDOUT);
    ck_assert_int_eq(cl.t_error, est + 10 * SIM_S + 3 * 2 * SIM_S);
    tcp_stats_t sa = tu_tcp_stats(t.a);
    ck_assert_uint_eq(sa.keepalive_probes, 3);
    ck_assert_uint_eq(sa.keepalive_timeouts, 1);
    ck_assert_uint_eq(sa.conns_now, 0);
    ck_assert_int_eq(sv.errors, 0);          /* the RST was lost too: b never knew */
    tu_pair_free(&t);
}
END_TEST

/* The stack's sysctls are the defaults: nothing for 7200 s, then 9 probes 75 s apart. */
START_TEST(sysctl_defaults)
{
    tcp_params_t p;
    tcp_params_default(&p);
    ck_assert_int_eq(p.keepalive_time, 7200 * SIM_S);
    ck_assert_int_eq(p.keepalive_intvl, 75 * SIM_S);
    ck_assert_int_eq(p.keepalive_probes, 9);
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    setup(&t, &cl, &sv);
    tcp_keepalive_t ka = {0};
    ck_assert_int_eq(tcp_conn_set_keepalive(cl.c, &ka), 0);
    set_loss(&t, 1.0);
    sim_run(t.sim, 7200 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).keepalive_probes, 0);
    sim_run(t.sim, 8000 * SIM_S);
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ETIMEDOUT);
    ck_assert_int_eq(cl.t_error, 2 * LAT + 7200 * SIM_S + 9 * 75 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).keepalive_probes, 9);
    tu_pair_free(&t);
}
END_TEST

/* A peer that lost the connection answers the probe with a RST: ECONNRESET at once. */
START_TEST(rst_answer)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    setup(&t, &cl, &sv);
    tcp_keepalive_t ka = {.idle = 5 * SIM_S, .intvl = SIM_S, .cnt = 5};
    ck_assert_int_eq(tcp_conn_set_keepalive(cl.c, &ka), 0);
    /* b forgets the connection silently: its RST is lost, then the link comes back. */
    set_loss(&t, 1.0);
    tcp_abort(sv.c);
    sv.c = NULL;
    sim_run(t.sim, 2 * SIM_S);
    set_loss(&t, 0.0);
    sim_run(t.sim, 20 * SIM_S);
    ck_assert_int_eq(cl.errors, 1);
    ck_assert_int_eq(cl.rc, LB_ECONNRESET);
    ck_assert_int_eq(cl.t_error, 2 * LAT + 5 * SIM_S + 2 * LAT);
    ck_assert_uint_eq(tu_tcp_stats(t.a).keepalive_probes, 1);
    tu_pair_free(&t);
}
END_TEST

/* Server side: keepalive set on an accepted connection (socket options of a listener) probes
 * the client the same way; switching it off stops the probes. */
START_TEST(accepted_side_and_off)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    setup(&t, &cl, &sv);
    tcp_keepalive_t ka = {.idle = 3 * SIM_S, .intvl = SIM_S, .cnt = 2};
    ck_assert_int_eq(tcp_conn_set_keepalive(sv.c, &ka), 0);
    sim_run(t.sim, 10 * SIM_S);
    uint64_t n = tu_tcp_stats(t.b).keepalive_probes;
    ck_assert_uint_eq(n, 3);        /* about 3.0x, 6.0x, 9.0x s */
    ck_assert_int_eq(tcp_conn_set_keepalive(sv.c, NULL), 0);
    sim_run(t.sim, 30 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.b).keepalive_probes, n);
    ck_assert_int_eq(cl.errors + sv.errors, 0);
    tu_pair_free(&t);
}
END_TEST

/* Data in flight holds the probes back (the retransmission timer watches the peer); a
 * later setsockopt re-arms for what is left of the new idle time. */
START_TEST(data_in_flight_and_rearm)
{
    tu_pair_t t;
    tu_side_t cl = {0}, sv = {0};
    setup(&t, &cl, &sv);
    tcp_keepalive_t ka = {.idle = 100 * SIM_S, .intvl = SIM_S, .cnt = 2};
    ck_assert_int_eq(tcp_conn_set_keepalive(cl.c, &ka), 0);
    sim_run(t.sim, 50 * SIM_S);
    ka.idle = 10 * SIM_S;           /* idle already 50 s > 10 s: probe now */
    ck_assert_int_eq(tcp_conn_set_keepalive(cl.c, &ka), 0);
    sim_run(t.sim, 50 * SIM_S + SIM_MS);
    ck_assert_uint_eq(tu_tcp_stats(t.a).keepalive_probes, 1);
    /* Now data that is never acknowledged: retransmissions, no probes. */
    set_loss(&t, 1.0);
    net_msg_t *m = net_msg_raw(100);
    ck_assert_int_eq(tcp_send(cl.c, m), 0);
    net_msg_unref(m);
    sim_run(t.sim, 120 * SIM_S);
    ck_assert_uint_eq(tu_tcp_stats(t.a).keepalive_probes, 1);
    ck_assert_uint_gt(tu_tcp_stats(t.a).retransmits, 3);
    tu_pair_free(&t);
}
END_TEST

/* setsockopt's limits: whole seconds 1..32767, 1..127 probes. */
START_TEST(limits)
{
    tcp_keepalive_t ok = {.idle = 32767 * SIM_S, .intvl = SIM_S, .cnt = 127};
    ck_assert_int_eq(tcp_keepalive_check(&ok), 0);
    ck_assert_int_eq(tcp_keepalive_check(NULL), 0);
    tcp_keepalive_t bad[] = {
        {.idle = 32768 * SIM_S}, {.intvl = SIM_MS * 500}, {.idle = -SIM_S}, {.cnt = 128},
        {.cnt = -1}, {.idle = 1500 * SIM_MS},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(tcp_keepalive_check(&bad[i]), LB_EINVAL);
    ck_assert_int_eq(tcp_conn_set_keepalive(NULL, &ok), LB_EINVAL);
}
END_TEST

Suite *suite_tcp_keepalive(void)
{
    Suite *s = suite_create("tcp_keepalive");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, probes_answered);
    tcase_add_test(tc, silent_peer_gives_up);
    tcase_add_test(tc, sysctl_defaults);
    tcase_add_test(tc, rst_answer);
    tcase_add_test(tc, accepted_side_and_off);
    tcase_add_test(tc, data_in_flight_and_rearm);
    tcase_add_test(tc, limits);
    suite_add_tcase(s, tc);
    return s;
}

/* test_engine.c -- the event kernel: (time, sequence) ordering pinned against a naive
 * sorted-list reference, cancellation, handles after recycling, run limits, and random
 * streams that are deterministic and independent. */
#include <check.h>
#include <stdlib.h>
#include "engine.h"
#include "lb.h"

/* ---- ordering against a reference ---- */
typedef struct { sim_time_t t; uint64_t seq; int id; bool cancelled; } ref_ev_t;
typedef struct { int *order; int n; sim_t *sim; } log_t;
static log_t g_log;

static void log_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    ck_assert_int_eq(sim_now(sim), sim_now(g_log.sim));
    g_log.order[g_log.n++] = (int)(intptr_t)a;
}

static int ref_cmp(const void *x, const void *y)
{
    const ref_ev_t *a = x, *b = y;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

START_TEST(order_matches_reference)
{
    enum { N = 20000 };
    sim_t *sim = sim_new(7);
    gsl_rng *r = sim_rng(sim, "test");
    ref_ev_t *ref = lb_calloc(N, sizeof *ref);
    sim_handle_t *h = lb_calloc(N, sizeof *h);
    g_log = (log_t){lb_calloc(N, sizeof(int)), 0, sim};
    for (int i = 0; i < N; i++) {
        /* few distinct times so that ties are common */
        sim_time_t t = (sim_time_t)gsl_rng_uniform_int(r, 50) * SIM_MS;
        ref[i] = (ref_ev_t){t, (uint64_t)i, i, false};
        h[i] = sim_schedule_at(sim, t, log_cb, (void *)(intptr_t)i, NULL);
    }
    for (int i = 0; i < N; i += 7) {
        ck_assert(sim_cancel(sim, &h[i]));
        ref[i].cancelled = true;
    }
    qsort(ref, N, sizeof *ref, ref_cmp);
    sim_run(sim, SIM_TIME_MAX);
    int k = 0;
    for (int i = 0; i < N; i++) {
        if (ref[i].cancelled) continue;
        ck_assert_int_eq(g_log.order[k], ref[i].id);
        k++;
    }
    ck_assert_int_eq(k, g_log.n);
    lb_free(ref);
    lb_free(h);
    lb_free(g_log.order);
    sim_free(sim);
}
END_TEST

/* Events scheduled from callbacks at the current time run after those already queued
 * for that time (FIFO on ties), like libuv's timer rule. */
static void chain_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    int id = (int)(intptr_t)a;
    g_log.order[g_log.n++] = id;
    if (id < 3) sim_schedule(sim, 0, chain_cb, (void *)(intptr_t)(id + 10), NULL);
}

START_TEST(same_time_fifo)
{
    sim_t *sim = sim_new(1);
    int order[16];
    g_log = (log_t){order, 0, sim};
    for (int i = 0; i < 3; i++) sim_schedule(sim, 5, chain_cb, (void *)(intptr_t)i, NULL);
    sim_run(sim, SIM_TIME_MAX);
    int want[] = {0, 1, 2, 10, 11, 12};
    ck_assert_int_eq(g_log.n, 6);
    for (int i = 0; i < 6; i++) ck_assert_int_eq(order[i], want[i]);
    ck_assert_int_eq(sim_now(sim), 5);
    sim_free(sim);
}
END_TEST

static void nop_cb(sim_t *sim, void *a, void *b) { (void)sim; (void)a; (void)b; }

START_TEST(stale_handle_is_harmless)
{
    sim_t *sim = sim_new(1);
    sim_handle_t h1 = sim_schedule(sim, 10, nop_cb, NULL, NULL);
    ck_assert(sim_pending(sim, &h1));
    ck_assert_int_eq(sim_handle_time(sim, &h1), 10);
    sim_run(sim, SIM_TIME_MAX);
    ck_assert(!sim_pending(sim, &h1));
    /* h2 is due at the same time h1 was; cancelling the stale h1 must not touch h2 */
    sim_handle_t h2 = sim_schedule_at(sim, 10, nop_cb, NULL, NULL);
    ck_assert_int_eq(h1.time, h2.time);
    ck_assert(!sim_cancel(sim, &h1));
    ck_assert(sim_pending(sim, &h2));
    ck_assert(sim_cancel(sim, &h2));
    ck_assert(!sim_pending(sim, &h2));
    ck_assert_int_eq(sim_run(sim, SIM_TIME_MAX), 0);
    sim_free(sim);
}
END_TEST

/* Cancelled events interleaved with live ones at equal times, many rounds: the
 * cancelled set must stay consistent through deletions (backward-shift). */
START_TEST(cancel_churn)
{
    sim_t *sim = sim_new(3);
    int order[64];
    g_log = (log_t){order, 0, sim};
    for (int round = 0; round < 2000; round++) {
        sim_handle_t h[8];
        for (int i = 0; i < 8; i++) h[i] = sim_schedule(sim, (i % 3) * 10, nop_cb, NULL, NULL);
        for (int i = 0; i < 8; i += 2) ck_assert(sim_cancel(sim, &h[i]));
        for (int i = 1; i < 8; i += 2) ck_assert(sim_pending(sim, &h[i]));
        ck_assert_int_eq(sim_run(sim, SIM_TIME_MAX), 4);
        for (int i = 1; i < 8; i += 2) ck_assert(!sim_pending(sim, &h[i]));
    }
    ck_assert_int_eq(sim_events_pending(sim), 0);
    sim_free(sim);
}
END_TEST

/* Long timers cancelled early must not pile up until their deadlines: the queue keeps
 * about as many entries as live timers, and the live ones still run in order. */
START_TEST(cancelled_long_timers_are_purged)
{
    sim_t *sim = sim_new(5);
    int order[8];
    g_log = (log_t){order, 0, sim};
    sim_schedule(sim, 100 * SIM_S, log_cb, (void *)(intptr_t)1, NULL);
    for (int i = 0; i < 100000; i++) {
        sim_handle_t h = sim_schedule(sim, 60 * SIM_S + i, nop_cb, NULL, NULL);
        ck_assert(sim_cancel(sim, &h));
        ck_assert_int_le(sim_events_pending(sim), 2 * 1024 + 2);
    }
    sim_schedule(sim, 50 * SIM_S, log_cb, (void *)(intptr_t)0, NULL);
    ck_assert_int_eq(sim_run(sim, SIM_TIME_MAX), 2);
    ck_assert_int_eq(g_log.n, 2);
    ck_assert_int_eq(order[0], 0);
    ck_assert_int_eq(order[1], 1);
    sim_free(sim);
}
END_TEST

START_TEST(run_until_stops_and_advances)
{
    sim_t *sim = sim_new(1);
    sim_schedule(sim, 5 * SIM_S, nop_cb, NULL, NULL);
    sim_schedule(sim, 15 * SIM_S, nop_cb, NULL, NULL);
    ck_assert_int_eq(sim_run(sim, 10 * SIM_S), 1);
    ck_assert_int_eq(sim_now(sim), 10 * SIM_S);
    ck_assert_int_eq(sim_events_pending(sim), 1);
    ck_assert_int_eq(sim_run(sim, 20 * SIM_S), 1);
    ck_assert_int_eq(sim_now(sim), 20 * SIM_S);
    sim_free(sim);
}
END_TEST

START_TEST(rng_streams_deterministic_and_independent)
{
    sim_t *a = sim_new(42), *b = sim_new(42), *c = sim_new(43);
    /* creating another stream first must not perturb stream "x" */
    (void)sim_rng(b, "other");
    unsigned long xa = gsl_rng_get(sim_rng(a, "x")), xb = gsl_rng_get(sim_rng(b, "x"));
    unsigned long xc = gsl_rng_get(sim_rng(c, "x")), ya = gsl_rng_get(sim_rng(a, "y"));
    ck_assert_uint_eq(xa, xb);
    ck_assert_uint_ne(xa, xc);
    ck_assert_uint_ne(xa, ya);
    ck_assert_ptr_eq(sim_rng(a, "x"), sim_rng(a, "x"));
    sim_free(a);
    sim_free(b);
    sim_free(c);
}
END_TEST

START_TEST(time_str_format)
{
    char buf[32];
    ck_assert_str_eq(sim_time_str(127 * SIM_S + 5, buf), "127.000000005s");
    ck_assert_str_eq(sim_time_str(0, buf), "0.000000000s");
}
END_TEST

Suite *suite_engine(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, order_matches_reference);
    tcase_add_test(tc, same_time_fifo);
    tcase_add_test(tc, stale_handle_is_harmless);
    tcase_add_test(tc, cancel_churn);
    tcase_add_test(tc, cancelled_long_timers_are_purged);
    tcase_add_test(tc, run_until_stops_and_advances);
    tcase_add_test(tc, rng_streams_deterministic_and_independent);
    tcase_add_test(tc, time_str_format);
    suite_add_tcase(s, tc);
    return s;
}

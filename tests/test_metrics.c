/* test_metrics.c -- the metrics aggregator: latency quantiles against the exact order
 * statistics of 100,000 lognormal samples, bucket windows, classes, sources, counters and
 * the record hook. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "metrics.h"
#include "http.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static m_window_t all_time(void) { return (m_window_t){ 0, SIM_TIME_MAX }; }

static void req_at(metrics_t *m, int src, sim_time_t start, sim_time_t lat, int cls)
{
    m_request_t r = { .source = src, .t_start = start, .t_end = start + lat, .cls = cls };
    metrics_request(m, &r);
}

START_TEST(quantiles_lognormal)
{
    enum { N = 100000 };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 12345);
    int64_t *v = malloc(N * sizeof(*v));
    metrics_t *m = metrics_new(SIM_S, 60 * SIM_S);
    int s = metrics_source(m, "web");
    double sum = 0;
    for (int i = 0; i < N; i++) {
        /* median 5 ms, sigma 1: spans ~100 us .. ~500 ms, many octaves */
        v[i] = (int64_t)gsl_ran_lognormal(rng, log(5e6), 1.0);
        sum += (double)v[i];
        /* spread over the 60 buckets and two classes; quantiles must merge them */
        req_at(m, s, (sim_time_t)(i % 60) * SIM_S + 1000, v[i], i % 3 ? M_2XX : M_5XX);
    }
    qsort(v, N, sizeof(*v), cmp_i64);
    const double qs[] = { 0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1 };
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        size_t rank = (size_t)ceil(qs[i] * N);
        if (rank < 1)
            rank = 1;
        double exact = (double)v[rank - 1];
        sim_time_t got = metrics_latency_q(m, -1, M_ALL_CLASSES, qs[i], all_time());
        ck_assert_msg(fabs((double)got - exact) / exact < 0.01,
                      "q=%g: got %lld, exact %.0f", qs[i], (long long)got, exact);
        /* and the finer 0.4% bound the 128 sub-buckets promise */
        ck_assert_msg(fabs((double)got - exact) / exact <= 1.0 / 256 + 1e-9,
                      "q=%g: got %lld, exact %.0f", qs[i], (long long)got, exact);
    }
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES, all_time()), N);
    ck_assert_int_eq(metrics_requests(m, s, 1u << M_5XX, all_time()), (N + 2) / 3);
    double mean = metrics_latency_mean(m, s, M_ALL_CLASSES, all_time());
    ck_assert_double_eq_tol(mean, sum / N, sum / N * 1e-9);
    free(v);
    metrics_free(m);
    gsl_rng_free(rng);
}
END_TEST

START_TEST(quantile_small_values_exact)
{
    metrics_t *m = metrics_new(SIM_S, 10 * SIM_S);
    int s = metrics_source(m, "a");
    for (int i = 1; i <= 100; i++)
        req_at(m, s, 0, i, M_2XX);            /* 1..100 ns: below 128, stored exactly */
    ck_assert_int_eq(metrics_latency_q(m, s, M_ALL_CLASSES, 0.5, all_time()), 50);
    ck_assert_int_eq(metrics_latency_q(m, s, M_ALL_CLASSES, 0.99, all_time()), 99);
    ck_assert_int_eq(metrics_latency_q(m, s, M_ALL_CLASSES, 1.0, all_time()), 100);
    ck_assert_int_eq(metrics_latency_q(m, s, M_ALL_CLASSES, 0.0, all_time()), 1);
    /* none in the window / class -> -1 */
    ck_assert_int_eq(metrics_latency_q(m, s, 1u << M_4XX, 0.5, all_time()), -1);
    ck_assert_int_eq(metrics_latency_q(m, s, M_ALL_CLASSES, 0.5,
                                       (m_window_t){ SIM_S, 2 * SIM_S }), -1);
    ck_assert_double_eq(metrics_latency_mean(m, s, 1u << M_4XX, all_time()), -1.0);
    metrics_free(m);
}
END_TEST

START_TEST(windows_round_to_buckets)
{
    metrics_t *m = metrics_new(SIM_S, 10 * SIM_S);
    ck_assert_int_eq(metrics_bucket_count(m), 10);
    ck_assert_int_eq(metrics_bucket_width(m), SIM_S);
    int s = metrics_source(m, "a");
    req_at(m, s, 500 * SIM_MS, 10 * SIM_MS, M_2XX);     /* bucket 0 */
    req_at(m, s, 1 * SIM_S, 20 * SIM_MS, M_2XX);        /* bucket 1 */
    req_at(m, s, 1999 * SIM_MS, 30 * SIM_MS, M_5XX);    /* bucket 1 */
    req_at(m, s, 9500 * SIM_MS, 40 * SIM_MS, M_RESET);  /* bucket 9 */
    req_at(m, s, 15 * SIM_S, 50 * SIM_MS, M_RESET);     /* past the end: bucket 9 */
    ck_assert_int_eq(metrics_bucket(m, s, 0, M_2XX), 1);
    ck_assert_int_eq(metrics_bucket(m, s, 1, M_2XX), 1);
    ck_assert_int_eq(metrics_bucket(m, s, 1, M_5XX), 1);
    ck_assert_int_eq(metrics_bucket(m, s, 9, M_RESET), 2);
    ck_assert_int_eq(metrics_bucket(m, s, 10, M_RESET), 0);
    m_window_t w12 = { SIM_S, 2 * SIM_S };
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES, w12), 2);
    /* from inside bucket 0: bucket 0 starts before it, so it is out */
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES,
                                      (m_window_t){ 500 * SIM_MS, 2 * SIM_S }), 2);
    /* to inside bucket 1: bucket 1 starts inside the window, so it is in */
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES,
                                      (m_window_t){ 0, 1500 * SIM_MS }), 3);
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES, (m_window_t){ 9 * SIM_S,
                                      SIM_TIME_MAX }), 2);
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES, (m_window_t){ 9 * SIM_S,
                                      10 * SIM_S }), 2);
    ck_assert_int_eq(metrics_requests(m, s, M_ALL_CLASSES, (m_window_t){ 3 * SIM_S,
                                      3 * SIM_S }), 0);
    ck_assert_int_eq(metrics_requests(m, s, M_FAILED, all_time()), 2);
    ck_assert_int_eq(metrics_requests(m, s, (1u << M_2XX) | (1u << M_5XX), all_time()), 3);
    /* quantile per window: bucket 1 holds 20 ms and 30 ms */
    sim_time_t p100 = metrics_latency_q(m, s, M_ALL_CLASSES, 1.0, w12);
    ck_assert_msg(llabs(p100 - 30 * SIM_MS) <= 30 * SIM_MS / 256, "%lld", (long long)p100);
    sim_time_t p50 = metrics_latency_q(m, s, M_ALL_CLASSES, 0.5, w12);
    ck_assert_msg(llabs(p50 - 20 * SIM_MS) <= 20 * SIM_MS / 256, "%lld", (long long)p50);
    ck_assert_double_eq(metrics_latency_mean(m, s, M_ALL_CLASSES, w12), 25.0 * SIM_MS);
    metrics_free(m);
}
END_TEST

START_TEST(default_bucket_and_partial_last)
{
    metrics_t *m = metrics_new(0, 2500 * SIM_MS);
    ck_assert_int_eq(metrics_bucket_width(m), METRICS_BUCKET_DEFAULT);
    ck_assert_int_eq(metrics_bucket_count(m), 3);
    metrics_free(m);
    m = metrics_new(250 * SIM_MS, 0);
    ck_assert_int_eq(metrics_bucket_count(m), 1);
    metrics_free(m);
}
END_TEST

START_TEST(sources)
{
    metrics_t *m = metrics_new(SIM_S, 5 * SIM_S);
    int a = metrics_source(m, "browse");
    int b = metrics_source(m, "probe");
    ck_assert_int_eq(a, 0);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(metrics_source(m, "browse"), 0);
    ck_assert_int_eq(metrics_source_find(m, "probe"), 1);
    ck_assert_int_eq(metrics_source_find(m, "nope"), -1);
    ck_assert_int_eq(metrics_source_count(m), 2);
    ck_assert_str_eq(metrics_source_name(m, 1), "probe");
    ck_assert_ptr_null(metrics_source_name(m, 2));
    for (int i = 0; i < 7; i++)
        req_at(m, a, i * 100 * SIM_MS, SIM_MS, M_2XX);
    for (int i = 0; i < 3; i++)
        req_at(m, b, 2 * SIM_S, 4 * SIM_MS, M_4XX);
    ck_assert_int_eq(metrics_requests(m, a, M_ALL_CLASSES, all_time()), 7);
    ck_assert_int_eq(metrics_requests(m, b, M_ALL_CLASSES, all_time()), 3);
    ck_assert_int_eq(metrics_requests(m, -1, M_ALL_CLASSES, all_time()), 10);
    ck_assert_int_eq(metrics_requests(m, 5, M_ALL_CLASSES, all_time()), 0);
    ck_assert_int_eq(metrics_bucket(m, -1, 2, M_4XX), 3);
    sim_time_t p = metrics_latency_q(m, -1, M_ALL_CLASSES, 0.75, all_time());
    ck_assert_msg(llabs(p - 4 * SIM_MS) <= 4 * SIM_MS / 256, "%lld", (long long)p);
    p = metrics_latency_q(m, -1, M_ALL_CLASSES, 0.7, all_time());
    ck_assert_msg(llabs(p - SIM_MS) <= SIM_MS / 256, "%lld", (long long)p);
    metrics_free(m);
}
END_TEST

START_TEST(counters)
{
    metrics_t *m = metrics_new(SIM_S, 10 * SIM_S);
    metrics_count(m, "drops.ct-invalid", 500 * SIM_MS, 1);
    metrics_count(m, "drops.ct-invalid", 1500 * SIM_MS, 2);
    metrics_count(m, "probes", 3 * SIM_S, 5);
    metrics_count(m, "drops.ct-invalid", 20 * SIM_S, 4);     /* past the end: last bucket */
    metrics_count(m, "probes", 3 * SIM_S, -2);
    ck_assert_int_eq(metrics_counter(m, "drops.ct-invalid", all_time()), 7);
    ck_assert_int_eq(metrics_counter(m, "drops.ct-invalid",
                                     (m_window_t){ SIM_S, 2 * SIM_S }), 2);
    ck_assert_int_eq(metrics_counter(m, "drops.ct-invalid",
                                     (m_window_t){ 9 * SIM_S, SIM_TIME_MAX }), 4);
    ck_assert_int_eq(metrics_counter(m, "probes", all_time()), 3);
    ck_assert_int_eq(metrics_counter(m, "unknown", all_time()), 0);
    ck_assert_str_eq(metrics_counter_name(m, 0), "drops.ct-invalid");
    ck_assert_str_eq(metrics_counter_name(m, 1), "probes");
    ck_assert_ptr_null(metrics_counter_name(m, 2));
    /* many names: lookups survive the index growing */
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        metrics_count(m, name, (i % 10) * SIM_S, i);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        metrics_count(m, name, 0, 1);
        ck_assert_int_eq(metrics_counter(m, name, all_time()), i + 1);
        ck_assert_str_eq(metrics_counter_name(m, 2 + (size_t)i), name);
    }
    ck_assert_int_eq(metrics_counter(m, "probes", all_time()), 3);
    metrics_free(m);
}
END_TEST

static void hook(void *data, const m_request_t *r)
{
    int *calls = data;
    calls[0]++;
    calls[1] += r->status;
}

START_TEST(record_hook)
{
    metrics_t *m = metrics_new(SIM_S, 10 * SIM_S);
    int calls[2] = { 0, 0 };
    metrics_set_record_hook(m, hook, calls);
    int s = metrics_source(m, "a");
    m_request_t r = { .source = s, .t_start = SIM_S, .t_end = 2 * SIM_S, .cls = M_2XX,
                      .status = 200, .path = "/x" };
    metrics_request(m, &r);
    r.status = 404;
    r.cls = M_4XX;
    metrics_request(m, &r);
    ck_assert_int_eq(calls[0], 2);
    ck_assert_int_eq(calls[1], 604);
    ck_assert_int_eq(metrics_requests(m, s, 1u << M_4XX, all_time()), 1);
    metrics_free(m);
}
END_TEST

START_TEST(classes)
{
    ck_assert_int_eq(m_class_of(HTTP_OK, 200), M_2XX);
    ck_assert_int_eq(m_class_of(HTTP_OK, 204), M_2XX);
    ck_assert_int_eq(m_class_of(HTTP_OK, 302), M_3XX);
    ck_assert_int_eq(m_class_of(HTTP_OK, 404), M_4XX);
    ck_assert_int_eq(m_class_of(HTTP_OK, 503), M_5XX);
    ck_assert_int_eq(m_class_of(HTTP_OK, 101), M_OTHER_ERR);
    ck_assert_int_eq(m_class_of(HTTP_CONNECT_TIMEOUT, 0), M_CONNECT_TIMEOUT);
    ck_assert_int_eq(m_class_of(HTTP_CONNECT_REFUSED, 0), M_REFUSED);
    ck_assert_int_eq(m_class_of(HTTP_RESET, 0), M_RESET);
    ck_assert_int_eq(m_class_of(HTTP_RESPONSE_TIMEOUT, 0), M_RESPONSE_TIMEOUT);
    ck_assert_int_eq(m_class_of(HTTP_CLOSED, 0), M_CLOSED);
    ck_assert_int_eq(m_class_of(HTTP_NO_PORT, 0), M_OTHER_ERR);
    ck_assert_int_eq(m_class_of(HTTP_UNREACHABLE, 0), M_OTHER_ERR);
    ck_assert_str_eq(m_class_name(M_2XX), "2xx");
    ck_assert_str_eq(m_class_name(M_CONNECT_TIMEOUT), "connect_timeout");
    ck_assert_str_eq(m_class_name(M_OTHER_ERR), "other_error");
    ck_assert_str_eq(m_class_name(M_CLASS_COUNT), "unknown");
}
END_TEST

Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, quantiles_lognormal);
    tcase_add_test(tc, quantile_small_values_exact);
    tcase_add_test(tc, windows_round_to_buckets);
    tcase_add_test(tc, default_bucket_and_partial_last);
    tcase_add_test(tc, sources);
    tcase_add_test(tc, counters);
    tcase_add_test(tc, record_hook);
    tcase_add_test(tc, classes);
    suite_add_tcase(s, tc);
    return s;
}

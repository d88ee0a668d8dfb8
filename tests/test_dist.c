/* test_dist.c -- units (durations, sizes, bandwidths, rates, ratios) with their errors,
 * distribution text forms, and sample means of every distribution over 100,000 draws. */
#include <check.h>
#include <math.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "lb.h"
#include "dist.h"

START_TEST(durations)
{
    static const struct { const char *s; sim_time_t want; } ok[] = {
        { "30s", 30 * SIM_S }, { "250ms", 250 * SIM_MS }, { "10us", 10 * SIM_US },
        { "5ns", 5 }, { "2m", 120 * SIM_S }, { "1h", 3600 * SIM_S }, { "0", 0 },
        { "1.5s", 1500 * SIM_MS }, { " 50 us ", 50 * SIM_US }, { "0.1s", 100 * SIM_MS },
        { "3min", 180 * SIM_S }, { "0ms", 0 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        sim_time_t t = -1;
        ck_assert_msg(unit_duration(ok[i].s, &t) == 0, "%s", ok[i].s);
        ck_assert_int_eq(t, ok[i].want);
    }
    static const char *const bad[] = { "5 parsecs", "fast", "5", "-1s", "", "s", "1.2.3s",
                                       "10 s s", "1e3s", "99999999999h" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sim_time_t t = 77;
        ck_assert_msg(unit_duration(bad[i], &t) == LB_EPARSE, "'%s' accepted", bad[i]);
        ck_assert_int_eq(t, 77);
    }
    ck_assert_int_eq(unit_duration(NULL, &(sim_time_t){ 0 }), LB_EPARSE);
}
END_TEST

START_TEST(duration_str_roundtrip)
{
    char buf[32];
    ck_assert_str_eq(unit_duration_str(90 * SIM_S, buf, sizeof buf), "90s");
    ck_assert_str_eq(unit_duration_str(250 * SIM_MS, buf, sizeof buf), "250ms");
    ck_assert_str_eq(unit_duration_str(1500 * SIM_US, buf, sizeof buf), "1500us");
    ck_assert_str_eq(unit_duration_str(7, buf, sizeof buf), "7ns");
    ck_assert_str_eq(unit_duration_str(0, buf, sizeof buf), "0s");
    sim_time_t vals[] = { 1, 999, 1000, 123456789, 60 * SIM_S, 3 * SIM_MS + 1 };
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        sim_time_t back;
        ck_assert_int_eq(unit_duration(unit_duration_str(vals[i], buf, sizeof buf), &back), 0);
        ck_assert_int_eq(back, vals[i]);
    }
}
END_TEST

START_TEST(sizes)
{
    static const struct { const char *s; uint64_t want; } ok[] = {
        { "1KB", 1000 }, { "1KiB", 1024 }, { "1MB", 1000000 }, { "200B", 200 },
        { "1500", 1500 }, { "1MiB", 1048576 }, { "1.5KB", 1500 }, { "2GB", 2000000000ull },
        { "0", 0 }, { "64kb", 64000 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t v = 0;
        ck_assert_msg(unit_size(ok[i].s, &v) == 0, "%s", ok[i].s);
        ck_assert_uint_eq(v, ok[i].want);
    }
    static const char *const bad[] = { "1 parsec", "1.5", "KB", "-1KB", "1Kbps", "lots" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t v;
        ck_assert_msg(unit_size(bad[i], &v) == LB_EPARSE, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(bandwidths)
{
    static const struct { const char *s; uint64_t want; } ok[] = {
        { "10Gbps", 10000000000ull }, { "100Mbps", 100000000 }, { "1.5Kbps", 1500 },
        { "800bps", 800 }, { "0", 0 }, { "1gbps", 1000000000 }, { "2Tbps", 2000000000000ull },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t v = 0;
        ck_assert_msg(unit_bandwidth(ok[i].s, &v) == 0, "%s", ok[i].s);
        ck_assert_uint_eq(v, ok[i].want);
    }
    static const char *const bad[] = { "10", "10GB", "fast", "10 Gbit", "-1Mbps" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t v;
        ck_assert_msg(unit_bandwidth(bad[i], &v) == LB_EPARSE, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(rates_and_ratios)
{
    double v;
    ck_assert_int_eq(unit_rate("50/s", &v), 0);
    ck_assert_double_eq(v, 50);
    ck_assert_int_eq(unit_rate("3000/min", &v), 0);
    ck_assert_double_eq(v, 50);
    ck_assert_int_eq(unit_rate("2/ms", &v), 0);
    ck_assert_double_eq(v, 2000);
    ck_assert_int_eq(unit_rate("7200/h", &v), 0);
    ck_assert_double_eq(v, 2);
    ck_assert_int_eq(unit_rate("0", &v), 0);
    ck_assert_double_eq(v, 0);
    ck_assert_int_eq(unit_rate("50", &v), LB_EPARSE);
    ck_assert_int_eq(unit_rate("50/fortnight", &v), LB_EPARSE);
    ck_assert_int_eq(unit_rate("/s", &v), LB_EPARSE);

    ck_assert_int_eq(unit_ratio("1%", &v), 0);
    ck_assert_double_eq_tol(v, 0.01, 1e-15);
    ck_assert_int_eq(unit_ratio("0.5%", &v), 0);
    ck_assert_double_eq_tol(v, 0.005, 1e-15);
    ck_assert_int_eq(unit_ratio("0.25", &v), 0);
    ck_assert_double_eq(v, 0.25);
    ck_assert_int_eq(unit_ratio("1", &v), 0);
    ck_assert_double_eq(v, 1);
    ck_assert_int_eq(unit_ratio("100%", &v), 0);
    ck_assert_double_eq(v, 1);
    ck_assert_int_eq(unit_ratio("1.5", &v), LB_EPARSE);
    ck_assert_int_eq(unit_ratio("150%", &v), LB_EPARSE);
    ck_assert_int_eq(unit_ratio("5 parsecs", &v), LB_EPARSE);
    ck_assert_int_eq(unit_ratio("-1%", &v), LB_EPARSE);
}
END_TEST

START_TEST(dist_forms)
{
    dist_t d;
    char err[256], buf[64];
    ck_assert_int_eq(dist_parse("5ms", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.kind, DIST_CONST);
    ck_assert_double_eq(d.a, 5e6);
    ck_assert_int_eq(dist_parse("exp(5ms)", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.kind, DIST_EXP);
    ck_assert_double_eq(d.a, 5e6);
    ck_assert_int_eq(dist_parse("uniform(1ms, 9ms)", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.kind, DIST_UNIFORM);
    ck_assert_double_eq(d.a, 1e6);
    ck_assert_double_eq(d.b, 9e6);
    ck_assert_double_eq(dist_mean(&d), 5e6);
    ck_assert_str_eq(dist_str(&d, buf, sizeof buf), "uniform(1ms,9ms)");
    ck_assert_int_eq(dist_parse("normal(5ms,1ms)", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.kind, DIST_NORMAL);
    ck_assert_int_eq(dist_parse(" lognormal( 5ms , 2ms ) ", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.kind, DIST_LOGNORMAL);
    ck_assert_double_eq(d.b, 2e6);
    ck_assert_str_eq(dist_str(&d, buf, sizeof buf), "lognormal(5ms,2ms)");
    ck_assert_int_eq(dist_parse("0", &d, err, sizeof err), 0);
    ck_assert_int_eq(d.kind, DIST_CONST);

    static const struct { const char *s, *msg; } bad[] = {
        { "poisson(5ms)", "unknown distribution 'poisson'; expected one of: exp, uniform, normal, lognormal" },
        { "exp(5ms", "expected ')' at the end of 'exp(5ms'" },
        { "exp(5ms,1ms)", "exp() takes 1 duration, like exp(5ms); got 'exp(5ms,1ms)'" },
        { "uniform(5ms)", "uniform() takes 2 durations, like uniform(1ms,9ms); got 'uniform(5ms)'" },
        { "uniform(9ms,1ms)", "uniform(low,high) needs low <= high; got 'uniform(9ms,1ms)'" },
        { "exp(0)", "the mean of 'exp(0)' must be positive" },
        { "exp(fast)", "exp() takes 1 duration, like exp(5ms); got 'exp(fast)'" },
        { "fast", "expected a duration like 5ms or a distribution like exp(5ms), uniform(1ms,9ms), normal(5ms,1ms), lognormal(5ms,2ms); got 'fast'" },
        { "exp(5ms) x", "expected ')' at the end of 'exp(5ms) x'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        ck_assert_msg(dist_parse(bad[i].s, &d, err, sizeof err) == LB_EPARSE, "%s", bad[i].s);
        ck_assert_str_eq(err, bad[i].msg);
    }
}
END_TEST

static double sample_mean(const char *text, int n, double *var)
{
    dist_t d;
    char err[128];
    ck_assert_int_eq(dist_parse(text, &d, err, sizeof err), 0);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 12345);
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; i++) {
        sim_time_t x = dist_sample(&d, r);
        ck_assert_int_ge(x, 0);
        sum += (double)x;
        sum2 += (double)x * (double)x;
    }
    gsl_rng_free(r);
    double mean = sum / n;
    if (var) *var = sum2 / n - mean * mean;
    return mean;
}

START_TEST(sample_means)
{
    const int n = 100000;
    double var;
    double m = sample_mean("exp(5ms)", n, &var);
    ck_assert_msg(fabs(m - 5e6) / 5e6 < 0.02, "exp mean %g", m);
    ck_assert_msg(fabs(sqrt(var) - 5e6) / 5e6 < 0.03, "exp sd %g", sqrt(var));
    m = sample_mean("uniform(1ms,9ms)", n, &var);
    ck_assert_msg(fabs(m - 5e6) / 5e6 < 0.02, "uniform mean %g", m);
    m = sample_mean("normal(5ms,1ms)", n, &var);
    ck_assert_msg(fabs(m - 5e6) / 5e6 < 0.02, "normal mean %g", m);
    ck_assert_msg(fabs(sqrt(var) - 1e6) / 1e6 < 0.03, "normal sd %g", sqrt(var));
    m = sample_mean("lognormal(5ms,2ms)", n, &var);
    ck_assert_msg(fabs(m - 5e6) / 5e6 < 0.02, "lognormal mean %g", m);
    ck_assert_msg(fabs(sqrt(var) - 2e6) / 2e6 < 0.05, "lognormal sd %g", sqrt(var));
    m = sample_mean("7ms", 1000, &var);
    ck_assert_double_eq(m, 7e6);
    ck_assert_double_eq(var, 0);
    /* truncation at 0: never negative even when most of the mass is below 0 */
    m = sample_mean("normal(1us,1ms)", 10000, NULL);
    ck_assert(m > 0);
}
END_TEST

Suite *suite_dist(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, durations);
    tcase_add_test(tc, duration_str_roundtrip);
    tcase_add_test(tc, sizes);
    tcase_add_test(tc, bandwidths);
    tcase_add_test(tc, rates_and_ratios);
    suite_add_tcase(s, tc);
    tc = tcase_create("distributions");
    tcase_add_test(tc, dist_forms);
    tcase_add_test(tc, sample_means);
    suite_add_tcase(s, tc);
    return s;
}

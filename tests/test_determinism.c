/* test_determinism.c -- the same scenario and seed give byte-identical summaries; another
 * seed gives a different one. Runs scenarios/core-nat.yaml through the same path as the
 * CLI: load, build, run, collect, summary.json. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "report.h"
#include "scenario.h"

/* Runs every variant of the scenario with `seed` and returns summary.json's text. */
static char *summary_for(const char *path, uint64_t seed)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_msg(scn_load(path, &s, &d, NULL) == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    size_t n = scn_variant_count(s);
    rep_variant_t *v = calloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        scn_run_t *r;
        ck_assert_int_eq(scn_run_new(s, i, seed, &r, &d), 0);
        scn_run_execute(r, NULL, NULL);
        scn_verdict_t *vd;
        size_t nv = scn_run_check(r, &vd);
        rep_variant_collect(&v[i], r, scn_variant_name(s, i), seed, vd, nv);
        scn_run_free(r);
    }
    char dir[] = "/tmp/lbchain-det-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(rep_write_summary(dir, s, v, n, NULL), 0);
    char file[256];
    snprintf(file, sizeof file, "%s/summary.json", dir);
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    unlink(file);
    rmdir(dir);
    for (size_t i = 0; i < n; i++) rep_variant_free(&v[i]);
    free(v);
    scn_free(s);
    return strdup(buf);
}

START_TEST(same_seed_identical_other_seed_differs)
{
    char *a = summary_for("scenarios/core-nat.yaml", 42);
    char *b = summary_for("scenarios/core-nat.yaml", 42);
    char *c = summary_for("scenarios/core-nat.yaml", 43);
    ck_assert(strlen(a) > 500);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    free(a);
    free(b);
    free(c);
}
END_TEST

Suite *suite_determinism(void)
{
    Suite *s = suite_create("determinism");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, same_seed_identical_other_seed_differs);
    suite_add_tcase(s, tc);
    return s;
}

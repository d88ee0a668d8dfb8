/* test_explain.c -- causal chains: a client failure walked back through a proxy's
 * upstream flow, an LB drop, the LB's all-down state and the probe results behind it;
 * ordering by time; bounded memory (old flow notes forgotten, state notes kept). */
#include <check.h>
#include <string.h>
#include "explain.h"

static void at(sim_t *sim, sim_time_t t) { sim_run(sim, t); }

START_TEST(chain_from_client_to_root_cause)
{
    sim_t *sim = sim_new(1);
    explain_t *ex = explain_new(sim);
    at(sim, 10 * SIM_S);
    uint64_t probe = explain_note(ex, "probe.ilb", 0, 0, "HTTP GET / to aks-user-0:31380 -> 404");
    uint64_t down = explain_note(ex, "ilb", 0, probe, "backend aks-user-0 unhealthy");
    uint64_t none = explain_note(ex, "ilb", 0, down, "no healthy backend for rule http-80");
    at(sim, 12 * SIM_S);
    explain_link(ex, 7, 8);                             /* client flow 7 served over 8 */
    explain_note(ex, "ilb", 8, none, "SYN dropped: no healthy backend");
    explain_note(ex, "unrelated", 9, 0, "something else");
    at(sim, 42 * SIM_S);
    explain_note(ex, "appgw-0", 7, 0, "upstream connect timeout -> 504");
    explain_outcome(ex, "browse", M_5XX, 7, "504 from appgw");
    explain_outcome(ex, "browse", M_5XX, 11, "a second example is not kept");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(explain_print(ex, NULL, f), 1);
    fclose(f);
    const char *order[] = {"-> 404", "unhealthy", "no healthy backend for rule", "SYN dropped",
                           "connect timeout -> 504"};
    const char *p = buf;
    for (int i = 0; i < 5; i++) {
        const char *q = strstr(p, order[i]);
        ck_assert_msg(q != NULL, "missing or out of order: %s\n%s", order[i], buf);
        p = q;
    }
    ck_assert_ptr_null(strstr(buf, "something else"));
    ck_assert_ptr_nonnull(strstr(buf, "browse: 5xx, e.g. flow 7"));
    free(buf);
    explain_free(ex);
    sim_free(sim);
}
END_TEST

START_TEST(bounded_and_state_notes_survive)
{
    sim_t *sim = sim_new(1);
    explain_t *ex = explain_new(sim);
    uint64_t root = explain_note(ex, "lb", 0, 0, "all backends down");
    for (uint64_t fl = 1; fl <= 3 * EXPLAIN_MAX_NOTES; fl++)
        explain_note(ex, "n", fl, root, "drop");
    ck_assert_uint_ne(explain_flow_last(ex, 3 * EXPLAIN_MAX_NOTES), 0);
    explain_outcome(ex, "c", M_CONNECT_TIMEOUT, 3 * EXPLAIN_MAX_NOTES, "timeout");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    explain_print(ex, NULL, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "all backends down"));   /* pinned outlives ring */
    free(buf);
    ck_assert_uint_eq(explain_note(NULL, "x", 0, 0, "NULL-safe"), 0);
    explain_free(ex);
    sim_free(sim);
}
END_TEST

Suite *suite_explain(void)
{
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, chain_from_client_to_root_cause);
    tcase_add_test(tc, bounded_and_state_notes_survive);
    suite_add_tcase(s, tc);
    return s;
}

/* test_lb.c -- the project basics of include/lb.h: error messages, the hash index
 * (lookups against a linear-search reference through growth, colliding hashes and
 * removals) and parsing 64-bit unsigned integers (seeds). */
#include <check.h>
#include <string.h>
#include "lb.h"

START_TEST(error_messages)
{
    ck_assert_str_eq(lb_strerror(LB_EINTR), "interrupted");
    ck_assert_str_eq(lb_strerror(LB_EIO), "input/output error");
    ck_assert_str_eq(lb_strerror(-1000), "unknown error");
}
END_TEST

/* Every position stored under hash h, in probing order, into out; returns how many. */
static size_t all_of(const lb_index_t *ix, uint64_t h, size_t *out, size_t max)
{
    size_t n = 0;
    for (size_t it, p = lb_index_first(ix, h, &it); p != LB_INDEX_NONE; p = lb_index_next(ix, h, &it))
        if (n < max) out[n++] = p;
    return n;
}

static bool has(const size_t *v, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x) return true;
    return false;
}

START_TEST(index_matches_reference)
{
    enum { N = 5000, H = 997 };             /* many positions per hash: long probe runs */
    lb_index_t ix = { 0 };
    ck_assert_uint_eq(lb_index_first(&ix, 1, &(size_t){ 0 }), LB_INDEX_NONE);   /* empty */
    static uint64_t hash[N];
    static bool live[N];
    for (size_t i = 0; i < N; i++) {
        hash[i] = i % 3 ? lb_hash_str((char[]){ (char)('a' + i % 26), 0 }) : (uint64_t)(i % H);
        lb_index_add(&ix, hash[i], i);
        live[i] = true;
    }
    /* remove every third position, then every position whose hash is 5 */
    for (size_t i = 0; i < N; i++)
        if (i % 3 == 1 || hash[i] == 5) {
            lb_index_remove(&ix, hash[i], i);
            live[i] = false;
        }
    lb_index_remove(&ix, 12345, 7);                 /* absent: a no-op */
    size_t got[N];
    for (size_t i = 0; i < N; i++) {
        size_t n = all_of(&ix, hash[i], got, N), want = 0;
        for (size_t k = 0; k < N; k++)
            if (hash[k] == hash[i] && live[k]) {
                want++;
                ck_assert_msg(has(got, n, k), "position %zu missing under its hash", k);
            }
        ck_assert_uint_eq(n, want);
    }
    lb_index_clear(&ix);
    ck_assert_uint_eq(ix.n, 0);
    ck_assert_uint_eq(all_of(&ix, hash[0], got, N), 0);
    lb_index_add(&ix, 42, 3);
    ck_assert_uint_eq(lb_index_first(&ix, 42, &(size_t){ 0 }), 3);
    lb_index_free(&ix);
    ck_assert_ptr_null(ix.slots);
}
END_TEST

START_TEST(parse_u64)
{
    uint64_t v = 7;
    ck_assert_int_eq(lb_parse_u64("0", &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(lb_parse_u64("18446744073709551615", &v), 0);
    ck_assert(v == UINT64_MAX);
    ck_assert_int_eq(lb_parse_u64("9007199254740993", &v), 0);     /* 2^53 + 1: exact */
    ck_assert(v == 9007199254740993ull);
    static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "0x10", "1e3",
                                       "18446744073709551616", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 7;
        ck_assert_msg(lb_parse_u64(bad[i], &v) == LB_EPARSE, "'%s' accepted", bad[i]);
        ck_assert_uint_eq(v, 7);
    }
}
END_TEST

Suite *suite_lb(void)
{
    Suite *s = suite_create("lb");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_messages);
    tcase_add_test(tc, index_matches_reference);
    tcase_add_test(tc, parse_u64);
    suite_add_tcase(s, tc);
    return s;
}

/* test_tls.c -- the TLS layer (src/net/tls.c) on two hosts joined by one link: handshake
 * round trips of TLS 1.2 and 1.3 with the CPU times, SNI and filter-chain choice (match,
 * wildcard, no match -> RST), certificate name checks, chain validation on and off, expiry,
 * alerts. The records' bytes are checked by tshark in tests/pcap.sh. */
#include <check.h>
#include <string.h>
#include "util.h"
#include "http.h"
#include "tls.h"

#define L (1 * SIM_MS)              /* one-way link latency; the bandwidth is unbounded */

typedef struct world {
    tu_pair_t t;
    tls_cert_t *root, *leaf, *other_root;
    tls_chain_t chain;
    const char *names[1];
    tls_server_cfg_t scfg;
    http_server_t *srv;
    http_pool_t *pool;
    tls_client_cfg_t ccfg;
    const tls_cert_t *roots[1];
    int n;
    http_result_t r;
    char detail[160];
} world_t;

static void handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    (void)req; (void)data;
    http_respond(ex, http_response_new(200, "ok", 2));
}

static void result_cb(const http_result_t *r, void *data)
{
    world_t *w = data;
    w->n++;
    w->r = *r;
    w->r.resp = NULL;
    snprintf(w->detail, sizeof w->detail, "%s", r->detail ? r->detail : "");
}

static tls_cert_t *cert(const char *subject, const char *dns, tls_cert_t *issuer, bool ca,
                        int64_t nb, int64_t na)
{
    const char *names[1] = { dns };
    tls_cert_spec_t s = { subject, subject, names, dns ? 1 : 0, issuer, ca, nb, na };
    char err[100];
    tls_cert_t *c = tls_cert_new(&s, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Server on b:443 with one chain (server name `name`, NULL: none); client config on a. */
static void world_new(world_t *w, const char *name, int server_max, int client_max)
{
    memset(w, 0, sizeof *w);
    tu_pair_new(&w->t, 3, L, 0, 0);
    w->root = cert("Root", NULL, NULL, true, 0, 0);
    w->other_root = cert("Other", NULL, NULL, true, 0, 0);
    w->leaf = cert("gw.example.com", "gw.example.com", w->root, false, 0, 0);
    w->names[0] = name;
    w->chain = (tls_chain_t){ "https", name ? w->names : NULL, name ? 1 : 0, w->leaf };
    tls_server_cfg_default(&w->scfg);
    w->scfg.max_version = server_max;
    w->scfg.chains = &w->chain;
    w->scfg.n_chains = 1;
    http_server_opts_t so = { .keepalive_timeout = 0, .tls = &w->scfg };
    int rc = 0;
    w->srv = http_server_new(w->t.b, 0, 443, &so, handler, w, &rc);
    ck_assert_ptr_nonnull(w->srv);
    tls_client_cfg_default(&w->ccfg);
    w->ccfg.max_version = client_max;
    w->roots[0] = w->root;
    w->ccfg.roots = w->roots;
    w->ccfg.n_roots = 1;
}

static void world_get(world_t *w)
{
    http_client_opts_t co = { .keepalive = true, .tls = &w->ccfg };
    w->pool = http_pool_new(w->t.a, &co);
    http_pool_request(w->pool, tu_ip("10.0.0.2"), 443,
                      http_request_new("GET", "gw.example.com", "/", 0), result_cb, w);
    sim_run(w->t.sim, 10 * SIM_S);
    ck_assert_int_eq(w->n, 1);
}

static void world_free(world_t *w)
{
    http_pool_free(w->pool);
    http_server_free(w->srv);
    tu_pair_free(&w->t);
    tls_cert_unref(w->leaf);
    tls_cert_unref(w->root);
    tls_cert_unref(w->other_root);
}

/* TLS 1.3: SYN/SYN-ACK (1 RTT), ClientHello -> server flight after the server's CPU (1
 * RTT), client CPU, then Finished + request -> response (1 RTT). */
START_TEST(handshake_13_one_round_trip)
{
    world_t w;
    world_new(&w, "gw.example.com", 13, 13);
    w.ccfg.sni = "gw.example.com";
    world_get(&w);
    ck_assert_int_eq(w.r.outcome, HTTP_OK);
    ck_assert_int_eq(w.r.status, 200);
    sim_time_t expect = 3 * 2 * L + TLS_SERVER_CPU_DEFAULT + TLS_CLIENT_CPU_DEFAULT;
    ck_assert_int_eq(w.r.t_connected - w.r.t_start, expect - 2 * L);
    ck_assert_int_eq(w.r.t_done - w.r.t_start, expect);
    world_free(&w);
}
END_TEST

/* TLS 1.2 (the server's maximum): one more round trip before the request. */
START_TEST(handshake_12_two_round_trips)
{
    world_t w;
    world_new(&w, "gw.example.com", 12, 13);
    w.ccfg.sni = "gw.example.com";
    world_get(&w);
    ck_assert_int_eq(w.r.outcome, HTTP_OK);
    sim_time_t expect = 4 * 2 * L + TLS_SERVER_CPU_DEFAULT + TLS_CLIENT_CPU_DEFAULT;
    ck_assert_int_eq(w.r.t_done - w.r.t_start, expect);
    world_free(&w);
}
END_TEST

/* SNI against the chain's server names: no SNI or another name -> Envoy resets and the
 * client says tls-error (class other_error); a chain without names takes a ClientHello
 * without SNI; an IP literal is never sent as SNI. */
START_TEST(sni_match_and_mismatch)
{
    static const struct { const char *chain, *sni; int outcome; const char *detail; } t[] = {
        { "gw.example.com", NULL, HTTP_TLS_ERROR, "reset after ClientHello without SNI" },
        { "gw.example.com", "www.example.com", HTTP_TLS_ERROR,
          "reset after ClientHello SNI www.example.com" },
        { "gw.example.com", "10.0.0.2", HTTP_TLS_ERROR, "reset after ClientHello without SNI" },
        { NULL, "10.0.0.2", HTTP_OK, "" },
        { NULL, NULL, HTTP_OK, "" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        world_t w;
        world_new(&w, t[i].chain, 13, 13);
        w.ccfg.sni = t[i].sni;
        world_get(&w);
        ck_assert_int_eq(w.r.outcome, t[i].outcome);
        ck_assert_str_eq(w.detail, t[i].detail);
        if (t[i].outcome != HTTP_OK)
            ck_assert_int_eq(m_class_of(w.r.outcome, 0), M_OTHER_ERR);
        world_free(&w);
    }
}
END_TEST

/* Validation on: the name must match and the root must be trusted; off: anything goes. */
START_TEST(verify_name_and_root)
{
    world_t w;
    world_new(&w, NULL, 12, 12);
    w.ccfg.verify = true;
    w.ccfg.verify_name = "other.example.com";
    world_get(&w);
    ck_assert_int_eq(w.r.outcome, HTTP_TLS_ERROR);
    ck_assert_msg(strstr(w.detail, "does not match other.example.com") &&
                  strstr(w.detail, "bad_certificate"), "%s", w.detail);
    world_free(&w);

    world_new(&w, NULL, 12, 12);
    w.ccfg.verify = true;
    w.ccfg.verify_name = "gw.example.com";
    w.roots[0] = w.other_root;
    world_get(&w);
    ck_assert_int_eq(w.r.outcome, HTTP_TLS_ERROR);
    ck_assert_msg(strstr(w.detail, "unknown_ca"), "%s", w.detail);
    world_free(&w);

    world_new(&w, NULL, 12, 12);
    w.ccfg.verify = false;
    w.roots[0] = w.other_root;
    world_get(&w);
    ck_assert_int_eq(w.r.outcome, HTTP_OK);
    world_free(&w);
}
END_TEST

/* TLS to a plain HTTP server: its 400 is not a ServerHello ("wrong version number"). */
START_TEST(tls_to_plain_server)
{
    world_t w;
    world_new(&w, NULL, 13, 13);
    http_server_free(w.srv);
    int rc = 0;
    w.srv = http_server_new(w.t.b, 0, 443, NULL, handler, &w, &rc);
    world_get(&w);
    ck_assert_int_eq(w.r.outcome, HTTP_TLS_ERROR);
    ck_assert_str_eq(w.detail, "the server answered without TLS (wrong version number)");
    world_free(&w);
}
END_TEST

START_TEST(names_and_expiry)
{
    ck_assert(tls_name_match("*.example.com", "gw.example.com"));
    ck_assert(!tls_name_match("*.example.com", "a.b.example.com"));
    ck_assert(!tls_name_match("*.example.com", "example.com"));
    ck_assert(tls_name_match("GW.example.com", "gw.EXAMPLE.com"));
    ck_assert(tls_is_ip_literal("127.0.0.1"));
    ck_assert(!tls_is_ip_literal("gw.example.com"));
    tls_cert_t *root = cert("Root", NULL, NULL, true, 0, 0);
    tls_cert_t *old = cert("old.example.com", NULL, root, false, 1000, 2000);
    const tls_cert_t *roots[] = { root };
    char why[160];
    ck_assert_int_eq(tls_cert_verify(old, roots, 1, "old.example.com", 1500, why, sizeof why), 0);
    ck_assert_int_eq(tls_cert_verify(old, roots, 1, "old.example.com", 2001, why, sizeof why),
                     TLS_ALERT_CERTIFICATE_EXPIRED);
    ck_assert_int_eq(tls_cert_verify(old, roots, 1, "x.example.com", 1500, why, sizeof why),
                     TLS_ALERT_BAD_CERTIFICATE);
    /* filter chain precedence: exact, then wildcard, then no names */
    const char *ex[] = { "gw.example.com" }, *wc[] = { "*.example.com" };
    tls_chain_t ch[3] = { { "any", NULL, 0, old }, { "wild", wc, 1, old }, { "exact", ex, 1, old } };
    tls_server_cfg_t sc;
    tls_server_cfg_default(&sc);
    sc.chains = ch;
    sc.n_chains = 3;
    ck_assert_str_eq(tls_server_select(&sc, "gw.example.com")->name, "exact");
    ck_assert_str_eq(tls_server_select(&sc, "a.example.com")->name, "wild");
    ck_assert_str_eq(tls_server_select(&sc, NULL)->name, "any");
    sc.chains = ch + 1;
    sc.n_chains = 2;
    ck_assert_ptr_null(tls_server_select(&sc, NULL));
    tls_cert_unref(old);
    tls_cert_unref(root);
}
END_TEST

Suite *suite_tls(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, handshake_13_one_round_trip);
    tcase_add_test(tc, handshake_12_two_round_trips);
    tcase_add_test(tc, sni_match_and_mismatch);
    tcase_add_test(tc, verify_name_and_root);
    tcase_add_test(tc, tls_to_plain_server);
    tcase_add_test(tc, names_and_expiry);
    suite_add_tcase(s, tc);
    return s;
}

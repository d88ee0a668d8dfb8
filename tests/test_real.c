/* test_real.c -- real-socket mode without sockets: the bindings loader (every key, every
 * mistake with its file:line:col), the classification of libcurl results into the
 * simulator's outcome classes, and plans resolved against built scenario variants
 * (destinations, port rules, unbound names in one message, names not in the variant, the
 * rate cap). tests/real.sh drives real sockets on loopback. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../src/real/real_int.h"
#include "metrics.h"

/* ---- bindings ------------------------------------------------------------------------------ */

static real_bindings_t *load_ok(const char *text)
{
    real_bindings_t *b = NULL;
    scn_diag_t d = {0};
    int rc = real_bindings_load_string(text, "b.yaml", &b, &d);
    ck_assert_msg(rc == 0, "unexpected error %s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    return b;
}

/* Loads text expecting an error at line:col whose message contains want. */
static void load_bad(const char *text, int line, int col, const char *want)
{
    real_bindings_t *b = NULL;
    scn_diag_t d = {0};
    int rc = real_bindings_load_string(text, "b.yaml", &b, &d);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(b);
    ck_assert_str_eq(d.file, "b.yaml");
    ck_assert_msg(d.line == line && d.col == col, "at %d:%d, wanted %d:%d: %s", d.line, d.col,
                  line, col, d.msg);
    ck_assert_msg(strstr(d.msg, want), "message '%s' lacks '%s'", d.msg, want);
}

START_TEST(bindings_every_key)
{
    real_bindings_t *b = load_ok(
        "scenario: aks-dsr\n"
        "unbound: simulated\n"
        "traffic:\n"
        "  browse:\n"
        "    url: https://shop.example.com:8443\n"
        "    connect-to: 20.50.1.10:443\n"
        "    max-rate: 50/s\n"
        "    max-in-flight: 64\n"
        "    tls: { ca-file: ca.pem, cert-file: c.pem, key-file: k.pem }\n"
        "elements:\n"
        "  appgw: 20.50.1.10\n"
        "  nlb: [10.0.64.254, \"10.0.65.254:8080\"]\n"
        "  ilb: { address: lb.internal, ports: { 80: 8080 } }\n"
        "nodes: { aks-user-0: \"127.0.0.2:41000\" }\n"
        "pods: { mtkc-gateway-istio-0: 10.244.0.3 }\n"
        "addresses: { \"10.0.0.9\": 192.168.1.9 }\n"
        "services:\n"
        "  istio-ingress/mtkc-gateway-istio:\n"
        "    node-ports: { http: 31380, 15021: 30021 }\n"
        "    health-check-node-port: 32100\n"
        "ports: { 15021: 15022 }\n"
        "skip: [\"kubelet:*\", appgw-1]\n"
        "tls: { insecure: true }\n");
    ck_assert_str_eq(b->scenario, "aks-dsr");
    ck_assert(b->unbound_simulated);
    ck_assert_uint_eq(b->traffic.n, 1);
    rb_traffic_t *t = &b->traffic.v[0];
    ck_assert_str_eq(t->scheme, "https");
    ck_assert_str_eq(t->url_host, "shop.example.com");
    ck_assert_int_eq(t->url_port, 8443);
    ck_assert_str_eq(t->connect_to, "20.50.1.10:443");
    ck_assert_double_eq(t->max_rate, 50);
    ck_assert_int_eq(t->max_in_flight, 64);
    ck_assert(t->tls.set && !t->tls.insecure);
    ck_assert_str_eq(t->tls.key_file, "k.pem");
    ck_assert_uint_eq(b->elements.n, 3);
    ck_assert_uint_eq(b->elements.v[1].eps.n, 2);
    ck_assert_int_eq(b->elements.v[1].eps.v[1].port, 8080);
    ck_assert_str_eq(b->elements.v[2].eps.v[0].host, "lb.internal");
    ck_assert_int_eq(b->elements.v[2].eps.v[0].ports.v[0].sim, 80);
    ck_assert_int_eq(b->elements.v[2].eps.v[0].ports.v[0].real, 8080);
    ck_assert_int_eq(b->nodes.v[0].eps.v[0].port, 41000);
    ck_assert_str_eq(b->nodes.v[0].eps.v[0].host, "127.0.0.2");
    ck_assert_uint_eq(b->services.n, 1);
    ck_assert_str_eq(b->services.v[0].node_ports.v[0].port_name, "http");
    ck_assert_int_eq(b->services.v[0].node_ports.v[1].port_num, 15021);
    ck_assert_int_eq(b->services.v[0].hcnp, 32100);
    ck_assert_int_eq(b->ports.v[0].real, 15022);
    ck_assert_uint_eq(b->skip.n, 2);
    ck_assert(b->tls.insecure);
    real_bindings_free(b);
}
END_TEST

START_TEST(bindings_empty_and_insecure_default)
{
    real_bindings_t *b = load_ok("");
    ck_assert(!b->unbound_simulated && !b->tls.insecure && !b->tls.set);
    real_bindings_free(b);
    b = load_ok("{}\n");
    real_bindings_free(b);
    b = load_ok("tls: { ca-file: x.pem }\n");
    ck_assert(b->tls.set && !b->tls.insecure);      /* verification stays on */
    real_bindings_free(b);
}
END_TEST

START_TEST(bindings_errors_have_positions)
{
    load_bad("nodez: {}\n", 1, 8, "unknown key 'nodez' (did you mean 'nodes'?)");
    load_bad("nodes:\n  aks-user-0: 10.0.0.1:99999\n", 2, 15, "port after ':' must be 1-65535");
    load_bad("nodes:\n  aks-user-0: \"10.0.0.1 x\"\n", 2, 15, "not an address");
    load_bad("elements:\n  ilb: { adress: 10.0.0.1 }\n", 2, 18, "did you mean 'address'");
    load_bad("elements:\n  ilb: { address: 10.0.0.1, ports: { http: 80 } }\n", 2, 44,
             "'http' is not a port number");
    load_bad("traffic:\n  browse: { url: ftp://x }\n", 2, 18, "scheme 'ftp'");
    load_bad("traffic:\n  browse: { url: \"http://x/app1\" }\n", 2, 18, "has a path");
    load_bad("traffic:\n  browse: { url: \"::\" }\n", 2, 18, "is not a URL");
    load_bad("traffic:\n  browse: { max-rate: fast }\n", 2, 23, "expected a rate");
    load_bad("traffic:\n  browse: { max-in-flight: 0 }\n", 2, 28, "1 to 100000");
    load_bad("traffic:\n  browse: { connect-to: \"1.2.3.4:\" }\n", 2, 25, "ADDRESS:PORT");
    load_bad("tls: { cert-file: c.pem }\n", 1, 6, "go together");
    load_bad("tls: { insecure: maybe }\n", 1, 18, "true or false");
    load_bad("unbound: ignore\n", 1, 10, "error or simulated");
    load_bad("services:\n  mtkc-gateway: { health-check-node-port: 1 }\n", 2, 17,
             "namespace/name");
    load_bad("services:\n  a/b: { node-ports: { http: 0 } }\n", 2, 30, "1 to 65535");
    load_bad("addresses: { gw: 10.0.0.1 }\n", 1, 18, "not an IPv4 address");
    load_bad("ports: [80]\n", 1, 8, "expected a mapping");
    load_bad("- a\n- b\n", 1, 1, "bindings: expected a mapping");
    load_bad("nodes: {}\n---\nnodes: {}\n", 3, 1, "one YAML document");
    load_bad("nodes: { a: 1\n", 2, 1, "");                    /* YAML syntax */
}
END_TEST

START_TEST(bindings_missing_file)
{
    real_bindings_t *b = NULL;
    scn_diag_t d = {0};
    ck_assert_int_eq(real_bindings_load("/nonexistent/b.yaml", &b, &d), LB_EIO);
    ck_assert_ptr_null(b);
    ck_assert(strstr(d.msg, "No such file") || strstr(d.msg, "cannot"));
}
END_TEST

/* ---- classification ------------------------------------------------------------------------ */

static void cls(CURLcode rc, long err, long status, bool connected, bool ours, int outcome,
                int lb_err, int klass)
{
    real_outcome_t o;
    real_classify(rc, err, status, connected, ours, &o);
    ck_assert_msg(o.outcome == outcome, "curl %d errno %ld: outcome %s, wanted %s", rc, err,
                  http_outcome_name(o.outcome), http_outcome_name(outcome));
    ck_assert_int_eq(o.err, lb_err);
    ck_assert_str_eq(m_class_name(m_class_of(o.outcome, o.status)), m_class_name(klass));
}

START_TEST(classify_like_the_simulator)
{
    cls(CURLE_OK, 0, 200, true, false, HTTP_OK, 0, M_2XX);
    cls(CURLE_OK, 0, 404, true, false, HTTP_OK, 0, M_4XX);
    cls(CURLE_OK, 0, 504, true, false, HTTP_OK, 0, M_5XX);
    cls(CURLE_OK, 0, 999, true, false, HTTP_OK, 0, M_OTHER_ERR);
    cls(CURLE_COULDNT_CONNECT, ECONNREFUSED, 0, false, false, HTTP_CONNECT_REFUSED,
        LB_ECONNREFUSED, M_REFUSED);
    cls(CURLE_COULDNT_CONNECT, ETIMEDOUT, 0, false, false, HTTP_CONNECT_TIMEOUT,
        LB_ETIMEDOUT, M_CONNECT_TIMEOUT);
    cls(CURLE_COULDNT_CONNECT, EHOSTUNREACH, 0, false, false, HTTP_UNREACHABLE,
        LB_EHOSTUNREACH, M_OTHER_ERR);
    cls(CURLE_OPERATION_TIMEDOUT, 0, 0, false, false, HTTP_CONNECT_TIMEOUT, LB_ETIMEDOUT,
        M_CONNECT_TIMEOUT);
    cls(CURLE_OPERATION_TIMEDOUT, 0, 0, true, false, HTTP_RESPONSE_TIMEOUT, LB_ETIMEDOUT,
        M_RESPONSE_TIMEOUT);
    cls(CURLE_OK, 0, 0, true, true, HTTP_RESPONSE_TIMEOUT, LB_ETIMEDOUT, M_RESPONSE_TIMEOUT);
    cls(CURLE_GOT_NOTHING, 0, 0, true, false, HTTP_CLOSED, LB_ECLOSED, M_CLOSED);
    cls(CURLE_GOT_NOTHING, ECONNRESET, 0, true, false, HTTP_RESET, LB_ECONNRESET, M_RESET);
    cls(CURLE_PARTIAL_FILE, 0, 200, true, false, HTTP_CLOSED, LB_ECLOSED, M_CLOSED);
    cls(CURLE_RECV_ERROR, ECONNRESET, 0, true, false, HTTP_RESET, LB_ECONNRESET, M_RESET);
    cls(CURLE_SEND_ERROR, EPIPE, 0, true, false, HTTP_RESET, LB_ECONNRESET, M_RESET);
    cls(CURLE_COULDNT_RESOLVE_HOST, 0, 0, false, false, HTTP_DNS_ERROR, LB_EHOSTUNREACH,
        M_OTHER_ERR);
    cls(CURLE_PEER_FAILED_VERIFICATION, 0, 0, true, false, HTTP_TLS_ERROR, LB_EIO,
        M_OTHER_ERR);
    cls(CURLE_SSL_CONNECT_ERROR, ECONNRESET, 0, true, false, HTTP_RESET, LB_ECONNRESET,
        M_RESET);
    cls(CURLE_WEIRD_SERVER_REPLY, 0, 0, true, false, HTTP_BAD_RESPONSE, LB_EPARSE,
        M_OTHER_ERR);
    cls(CURLE_UNSUPPORTED_PROTOCOL, 0, 0, true, false, HTTP_BAD_RESPONSE, LB_EPARSE,
        M_OTHER_ERR);
    cls(CURLE_OUT_OF_MEMORY, 0, 0, true, false, HTTP_OTHER_ERROR, LB_EIO, M_OTHER_ERR);
}
END_TEST

/* The probe reasons real mode derives through health_result_fail are the simulator's. */
START_TEST(probe_reasons_like_the_simulator)
{
    static const struct { CURLcode rc; long err; bool conn; const char *reason; bool hard; } t[] = {
        {CURLE_COULDNT_CONNECT, ECONNREFUSED, false, "connection refused", true},
        {CURLE_OPERATION_TIMEDOUT, 0, false, "connect timeout", false},
        {CURLE_OPERATION_TIMEDOUT, 0, true, "response timeout", false},
        {CURLE_RECV_ERROR, ECONNRESET, true, "connection reset", true},
        {CURLE_GOT_NOTHING, 0, true, "closed before response", false},
        {CURLE_WEIRD_SERVER_REPLY, 0, true, "malformed response", true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        real_outcome_t o;
        real_classify(t[i].rc, t[i].err, 0, t[i].conn, false, &o);
        health_result_t r = {0};
        health_result_fail(&r, o.err, o.connected);
        ck_assert_str_eq(r.reason, t[i].reason);
        ck_assert_int_eq(r.hard, t[i].hard);
    }
    health_matcher_t m;
    ck_assert_int_eq(health_matcher_parse(&m, "200"), 0);
    health_result_t r = {0};
    health_result_http(&r, &m, 200, "{\"service\":{\"namespace\":\"a\",\"name\":\"b\"},"
                       "\"localEndpoints\":1,\"serviceProxyHealthy\":true}");
    ck_assert(r.ok);
    ck_assert_str_eq(r.reason, "HTTP 200");
    ck_assert_str_eq(r.note, "localEndpoints 1");
    health_result_http(&r, &m, 404, "<html>not found</html>");
    ck_assert(!r.ok && r.hard);
    ck_assert_str_eq(r.reason, "HTTP 404");
    ck_assert_str_eq(r.note, "");
}
END_TEST

Suite *suite_real(void)
{
    Suite *s = suite_create("real");
    TCase *tc = tcase_create("bindings");
    tcase_add_test(tc, bindings_every_key);
    tcase_add_test(tc, bindings_empty_and_insecure_default);
    tcase_add_test(tc, bindings_errors_have_positions);
    tcase_add_test(tc, bindings_missing_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("classify");
    tcase_add_test(tc, classify_like_the_simulator);
    tcase_add_test(tc, probe_reasons_like_the_simulator);
    suite_add_tcase(s, tc);
    return s;
}

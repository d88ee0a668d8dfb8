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
#include "scenario.h"

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
        "    node-ports: { http: 31380, 15021: 30021, 8080-alt: 30080 }\n"
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
    ck_assert_str_eq(b->services.v[0].node_ports.v[2].port_name, "8080-alt");  /* a name */
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

/* Every mistake, where it is reported, and what the message says. */
static const struct { const char *text; int line, col; const char *want; } bad_cases[] = {
    {"nodez: {}\n", 1, 1, "unknown key 'nodez' (did you mean 'nodes'?)"},
    {"nodes:\n  aks-user-0: 10.0.0.1:99999\n", 2, 15, "port after ':' must be 1-65535"},
    {"nodes:\n  aks-user-0: \"10.0.0.1 x\"\n", 2, 15, "not an address"},
    {"elements:\n  ilb: { adress: 10.0.0.1 }\n", 2, 10, "did you mean 'address'"},
    {"elements:\n  ilb: { address: 10.0.0.1, ports: { http: 80 } }\n", 2, 38,
     "'http' is not a port number"},
    {"traffic:\n  browse: { url: ftp://x }\n", 2, 18, "scheme 'ftp'"},
    {"traffic:\n  browse: { url: \"http://x/app1\" }\n", 2, 18, "has a path"},
    {"traffic:\n  browse: { url: \"::\" }\n", 2, 18, "is not a URL"},
    {"traffic:\n  browse: { max-rate: fast }\n", 2, 23, "expected a rate"},
    {"traffic:\n  browse: { max-in-flight: 0 }\n", 2, 28, "1 to 100000"},
    {"traffic:\n  browse: { connect-to: \"1.2.3.4:\" }\n", 2, 25, "ADDRESS:PORT"},
    {"tls: { cert-file: c.pem }\n", 1, 6, "go together"},
    {"tls: { insecure: maybe }\n", 1, 18, "true or false"},
    {"unbound: ignore\n", 1, 10, "error or simulated"},
    {"services:\n  mtkc-gateway: { health-check-node-port: 1 }\n", 2, 3, "namespace/name"},
    {"services:\n  a/b: { node-ports: { 70000: 1 } }\n", 2, 24, "port 70000 is out of range"},
    {"services:\n  a/b: { nodeports: {} }\n", 2, 10, "unknown key 'nodeports'"},
    {"traffic:\n  browse:\n    url: http://x\n    max-rate: 5/s\n    tlss: {}\n", 5, 5,
     "unknown key 'tlss' (did you mean 'tls'?)"},
    {"ports:\n  80: 8080\n  0: 1\n", 3, 3, "'0' is not a port number"},
    {"elements:\n  nlb: []\n", 2, 8, "an empty list"},
    /* numbers are digits only: no sign, no spaces (which strtol would let through) */
    {"ports: { \"+80\": 8080 }\n", 1, 10, "'+80' is not a port number"},
    {"ports: { 80: \" 8080\" }\n", 1, 14, "got ' 8080'"},
    {"ports: { 80: [8080] }\n", 1, 14, "got a list"},
    {"nodes: { a: \"10.0.0.1:+80\" }\n", 1, 13, "port after ':' must be 1-65535"},
    {"traffic: { b: { connect-to: \"1.2.3.4: 80\" } }\n", 1, 29, "ADDRESS:PORT"},
    {"traffic: { b: { max-in-flight: \"+5\" } }\n", 1, 32, "1 to 100000"},
    {"traffic: { b: { max-in-flight: 100001 } }\n", 1, 32, "1 to 100000"},
    {"services:\n  a/b: { node-ports: { http: 0 } }\n", 2, 30, "1 to 65535"},
    {"addresses: { gw: 10.0.0.1 }\n", 1, 14, "not an IPv4 address"},
    {"ports: [80]\n", 1, 8, "expected a mapping"},
    {"- a\n- b\n", 1, 1, "bindings: expected a mapping"},
    {"nodes: {}\n---\nnodes: {}\n", 3, 1, "one YAML document"},
    {"nodes: { a: 1\n", 2, 1, ""},                          /* YAML syntax */
    {"nodes: [[", 1, 10, "invalid YAML"},   /* the end of a last line without a break */
};

START_TEST(bindings_errors_have_positions)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        load_bad(bad_cases[i].text, bad_cases[i].line, bad_cases[i].col, bad_cases[i].want);
}
END_TEST

/* A NUL byte inside the file is an error where it is, not the end of the file: what
 * follows it (here an unknown key) would otherwise be dropped unread. The scenario
 * loader's scn_docs_load_buffer, which the bindings loader uses, says the same. */
START_TEST(bindings_nul_byte_has_position)
{
    static const char text[] = "nodes: {}\nun\0bound: simulated\nnodez: {}\n";
    real_bindings_t *b = NULL;
    scn_diag_t d = {0};
    ck_assert_int_lt(real_bindings_load_buffer(text, sizeof text - 1, "b.yaml", &b, &d), 0);
    ck_assert_ptr_null(b);
    ck_assert_msg(d.line == 2 && d.col == 3 && strstr(d.msg, "NUL byte"), "%d:%d: %s", d.line,
                  d.col, d.msg);
    scn_docs_t *docs = NULL;
    memset(&d, 0, sizeof d);
    ck_assert_int_lt(scn_docs_load_buffer(text, sizeof text - 1, "m.yaml", &docs, &d), 0);
    ck_assert_ptr_null(docs);
    ck_assert_msg(d.line == 2 && d.col == 3 && !strcmp(d.file, "m.yaml"), "%s:%d:%d", d.file,
                  d.line, d.col);
    /* without a NUL, the buffer needs no terminator: len bytes are the file */
    static const char two[] = "nodes: {}\nnodez: {}\n";
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(real_bindings_load_buffer(two, 10, "b.yaml", &b, &d), 0);
    ck_assert_str_eq(real_bindings_text(b), "# bindings file: b.yaml\nnodes: {}\n");
    real_bindings_free(b);
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
    /* the sender's own prohibit and blackhole routes (connect(): EACCES, EINVAL), as the
     * simulated client classifies them */
    cls(CURLE_COULDNT_CONNECT, EACCES, 0, false, false, HTTP_UNREACHABLE, LB_EACCES,
        M_OTHER_ERR);
    cls(CURLE_COULDNT_CONNECT, EINVAL, 0, false, false, HTTP_UNREACHABLE, LB_EINVAL,
        M_OTHER_ERR);
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
    cls(CURLE_PEER_FAILED_VERIFICATION, 0, 0, true, false, HTTP_TLS_ERROR, LB_ETLS,
        M_OTHER_ERR);
    /* Envoy resetting a ClientHello without a filter chain: tls-error, as simulated */
    cls(CURLE_SSL_CONNECT_ERROR, ECONNRESET, 0, true, false, HTTP_TLS_ERROR, LB_ETLS,
        M_OTHER_ERR);
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

/* ---- plans against built variants ------------------------------------------------------------- */

static scn_t *load_scn(const char *path)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_msg(scn_load(path, &s, &d, NULL) == 0, "%s:%d: %s", d.file, d.line, d.msg);
    return s;
}

/* Builds variant `variant` of s and plans it with bindings text; returns the plan (or
 * NULL, *err set) and the run in *r. */
static real_plan_t *plan_for(scn_t *s, const char *variant, const char *bind,
                             const real_opts_t *ro, scn_run_t **r, real_bindings_t **b,
                             char **err)
{
    scn_diag_t d;
    int v = scn_variant_find(s, variant);
    ck_assert_int_ge(v, 0);
    ck_assert_int_eq(scn_run_new(s, (size_t)v, scn_seed(s), r, &d), 0);
    *b = load_ok(bind);
    real_opts_t o;
    real_opts_init(&o);
    if (ro) o = *ro;
    real_plan_t *p = NULL;
    *err = NULL;
    int rc = real_plan_new(*b, *r, &o, &p, err);
    ck_assert_int_eq(rc == 0, p != NULL);
    return p;
}

static const rp_target_t *target_of(const real_plan_t *p, const char *checker, const char *label)
{
    for (size_t c = 0; c < p->checkers.n; c++)
        for (size_t i = 0; i < p->checkers.v[c]->targets.n; i++)
            if (!strcmp(p->checkers.v[c]->name, checker) &&
                !strcmp(p->checkers.v[c]->targets.v[i].label, label))
                return &p->checkers.v[c]->targets.v[i];
    return NULL;
}

/* aks-dsr with ETP Local: the probe on the healthCheckNodePort goes to each node's real
 * address and the bound port; the traffic to App Gateway's frontend; the port rules in
 * their order of precedence. */
START_TEST(plan_resolves_aks)
{
    scn_t *s = load_scn("scenarios/aks-dsr.yaml");
    scn_run_t *r;
    real_bindings_t *b;
    char *err;
    real_plan_t *p = plan_for(s, "etp-local",
        "elements: { appgw: \"192.0.2.10:8080\", ilb: { address: 192.0.2.100, ports: { 80: 8081 } } }\n"
        "nodes:\n"
        "  aks-system-0: 192.0.2.4\n"
        "  aks-user-0: { address: 192.0.2.5, ports: { 30986: 9999 } }\n"
        "  aks-user-1: \"192.0.2.6:7777\"\n"
        "services: { istio-ingress/mtkc-gateway-istio: { health-check-node-port: 32100 } }\n"
        "skip: [\"kubelet:*\"]\n", NULL, &r, &b, &err);
    ck_assert_msg(p, "%s", err ? err : "");
    const rp_target_t *t = target_of(p, "ilb/http-30986", "aks-system-0");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->host, "192.0.2.4");
    ck_assert_int_eq(t->port, 32100);                       /* the Service binding */
    ck_assert_str_eq(t->url, "http://192.0.2.4:32100/healthz");
    t = target_of(p, "ilb/http-30986", "aks-user-0");
    ck_assert_int_eq(t->port, 9999);                        /* the endpoint's own map */
    t = target_of(p, "ilb/http-30986", "aks-user-1");
    ck_assert_int_eq(t->port, 7777);                        /* the endpoint's :PORT */
    uint32_t ilb;                       /* the frontend the cloud allocated */
    ck_assert_uint_eq(scn_run_addrs(r, "ilb", &ilb, 1), 1);
    char ilb_label[16];
    t = target_of(p, "appgw-0", lb_ip_str(ilb, ilb_label));
    ck_assert_str_eq(t->url, "http://192.0.2.100:8081/healthz/ready");
    ck_assert_str_eq(t->host_header, "Host: 127.0.0.1");    /* App Gateway's probe host */
    ck_assert_int_eq(t->ck->p->matcher.r[0].lo, 200);
    ck_assert_int_eq(t->ck->p->matcher.r[0].hi, 399);
    ck_assert_ptr_null(target_of(p, "kubelet:mtkc-gateway-istio-0", "mtkc-gateway-istio-0"));
    ck_assert_uint_eq(p->sources.n, 1);
    ck_assert_str_eq(p->sources.v[0]->dests.v[0].url_base, "http://192.0.2.10:8080");
    size_t ck, tg;
    uint64_t req;
    real_plan_counts(p, &req, &ck, &tg);
    ck_assert_uint_eq(ck, 3);                               /* ilb probe, 2 App Gateways */
    ck_assert_uint_eq(tg, 5);
    ck_assert(req > 4000 && req < 5000);                    /* 20/s from 1 s to 240 s */
    real_plan_free(p);
    real_bindings_free(b);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

START_TEST(plan_lists_every_unbound_name)
{
    scn_t *s = load_scn("scenarios/aks-dsr.yaml");
    scn_run_t *r;
    real_bindings_t *b;
    char *err;
    real_plan_t *p = plan_for(s, "as-deployed", "nodes: { aks-user-0: 192.0.2.5 }\n", NULL,
                              &r, &b, &err);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(err);
    static const char *const want[] = {
        "b.yaml: error: variant as-deployed of aks-dsr needs these names bound:",
        "elements: appgw", "elements: ilb", "nodes: aks-system-0", "nodes: aks-user-1",
        "services: istio-ingress/mtkc-gateway-istio node-ports: http",
        "services: istio-ingress/mtkc-gateway-istio node-ports: status-port",
        "pods: mtkc-gateway-istio-0", "skip: [\"kubelet:*\"]",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(err, want[i]), "'%s' not in:\n%s", want[i], err);
    ck_assert_msg(!strstr(err, "nodes: aks-user-0 "), "a bound node listed:\n%s", err);
    /* elements come first, then nodes, services, pods */
    ck_assert(strstr(err, "elements: appgw") < strstr(err, "nodes: aks-system-0"));
    ck_assert(strstr(err, "services:") < strstr(err, "pods:"));
    lb_free(err);
    real_bindings_free(b);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

START_TEST(plan_names_not_in_variant)
{
    scn_t *s = load_scn("scenarios/aks-dsr.yaml");
    static const struct { const char *bind, *want; } t[] = {
        {"unbound: simulated\nnodes:\n  aks-usr-1: 10.0.0.1\n",
         "b.yaml:3:3: error: nodes: 'aks-usr-1' is not a node of variant etp-local (did you mean 'aks-user-1'?)"},
        {"unbound: simulated\nelements: { apgw: 10.0.0.1 }\n",
         "b.yaml:2:13: error: elements: 'apgw' is not an element with a frontend of variant etp-local (did you mean 'appgw'?)"},
        {"unbound: simulated\ntraffic: { brows: { max-in-flight: 3 } }\n",
         "b.yaml:2:12: error: traffic: 'brows' is not a traffic source of variant etp-local (did you mean 'browse'?)"},
        {"unbound: simulated\nservices: { istio-ingress/mtkc-gateway-istio: { node-ports: { https: 1 } } }\n",
         "b.yaml:2:63: error: services: istio-ingress/mtkc-gateway-istio has no port 'https' (its ports: status-port (15021), http (80))"},
        {"unbound: simulated\nservices: { a/b: { health-check-node-port: 1 } }\n",
         "b.yaml:2:13: error: services: 'a/b' is not a Service of variant etp-local"},
        {"unbound: simulated\nscenario: eks-probe-404\n",
         "these bindings are for scenario 'eks-probe-404', not 'aks-dsr'"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        scn_run_t *r;
        real_bindings_t *b;
        char *err;
        real_plan_t *p = plan_for(s, "etp-local", t[i].bind, NULL, &r, &b, &err);
        ck_assert_ptr_null(p);
        ck_assert_msg(err && strstr(err, t[i].want), "case %zu: '%s' not in '%s'", i, t[i].want,
                      err ? err : "(none)");
        lb_free(err);
        real_bindings_free(b);
        scn_run_free(r);
    }
    scn_free(s);
}
END_TEST

/* unbound: simulated keeps the simulator's addresses and ports (a chain built with them). */
START_TEST(plan_identity)
{
    scn_t *s = load_scn("scenarios/aks-dsr.yaml");
    scn_run_t *r;
    real_bindings_t *b;
    char *err;
    real_opts_t o;
    real_opts_init(&o);
    o.probes_only = true;
    static const char *const ilb[] = {"ilb/*"};
    o.checkers = ilb;
    o.n_checkers = 1;
    real_plan_t *p = plan_for(s, "as-deployed", "unbound: simulated\n", &o, &r, &b, &err);
    ck_assert_msg(p, "%s", err ? err : "");
    ck_assert_uint_eq(p->sources.n, 0);                     /* probes only */
    ck_assert_uint_eq(p->checkers.n, 2);                    /* ilb/tcp-31048, ilb/http-30575 */
    const rp_target_t *t = target_of(p, "ilb/http-30575", "aks-user-1");
    ck_assert_str_eq(t->url, "http://10.224.0.6:30575/");
    real_plan_free(p);
    real_bindings_free(b);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* An open-loop rate above the cap is refused before anything is sent; the bindings'
 * max-rate lowers the cap for its source. */
START_TEST(plan_rate_cap)
{
    scn_t *s = load_scn("scenarios/aks-dsr.yaml");
    scn_run_t *r;
    real_bindings_t *b;
    char *err;
    real_opts_t o;
    real_opts_init(&o);
    o.max_rate = 10;
    real_plan_t *p = plan_for(s, "etp-local", "unbound: simulated\n", &o, &r, &b, &err);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "traffic browse sends 20 requests/s, above the cap of 10/s: "
                          "nothing was sent"), "%s", err);
    lb_free(err);
    real_bindings_free(b);
    scn_run_free(r);
    p = plan_for(s, "etp-local", "unbound: simulated\ntraffic: { browse: { max-rate: 5/s } }\n",
                 NULL, &r, &b, &err);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "above the bindings' max-rate of 5/s"), "%s", err);
    lb_free(err);
    real_bindings_free(b);
    scn_run_free(r);
    p = plan_for(s, "etp-local", "unbound: simulated\n", NULL, &r, &b, &err);
    ck_assert_ptr_nonnull(p);                                /* 20/s under the default 100 */
    real_plan_free(p);
    real_bindings_free(b);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* The intended times real mode computes ahead are the times the simulation sends at, for
 * the same seed: Poisson from a group of client nodes (one stream each), and constant. */
typedef struct starts { LB_VEC(sim_time_t) t; } starts_t;
static void start_hook(void *data, const m_request_t *q)
{
    starts_t *s = data;
    lb_vec_push(&s->t, q->t_start);
}

static int cmp_time(const void *a, const void *b)
{
    sim_time_t x = *(const sim_time_t *)a, y = *(const sim_time_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(plan_schedule_is_the_simulations)
{
    static const char *const arrivals[] = {"poisson", "constant"};
    for (int k = 0; k < 2; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "name: sched\nseed: 11\nduration: 5s\n"
                 "nodes: { c: { type: host, count: 3 }, w: { type: host } }\n"
                 "links: [ { between: [c, w] } ]\n"
                 "apps: { web: { type: http-server, on: w, locations: [ { path: / } ] } }\n"
                 "traffic: { t: { type: http-client, from: c, to: w, rate: 40/s, "
                 "arrival: %s, start: 500ms, stop: 4s } }\n", arrivals[k]);
        scn_t *s;
        scn_diag_t d;
        ck_assert_int_eq(scn_load_string(text, "sched.yaml", &s, &d, NULL), 0);
        /* the simulation: when each request was started */
        scn_run_t *r;
        ck_assert_int_eq(scn_run_new(s, 0, 11, &r, &d), 0);
        starts_t st = {0};
        metrics_set_record_hook(scn_run_metrics(r), start_hook, &st);
        scn_run_execute(r, NULL, NULL);
        scn_run_free(r);
        /* real mode's plan of the same variant and seed */
        ck_assert_int_eq(scn_run_new(s, 0, 11, &r, &d), 0);
        real_bindings_t *b = load_ok("unbound: simulated\n");
        real_opts_t o;
        real_opts_init(&o);
        real_plan_t *p;
        char *err;
        ck_assert_int_eq(real_plan_new(b, r, &o, &p, &err), 0);
        LB_VEC(sim_time_t) planned = {0};
        for (size_t n = 0; n < p->sources.v[0]->nodes.n; n++) {
            const rp_cnode_t *cn = &p->sources.v[0]->nodes.v[n];
            for (size_t i = 0; i < cn->n_times; i++) lb_vec_push(&planned, cn->times[i]);
        }
        ck_assert_uint_eq(p->sources.v[0]->nodes.n, 3);
        ck_assert_uint_gt(st.t.n, 100);
        ck_assert_uint_eq(planned.n, st.t.n);
        qsort(planned.v, planned.n, sizeof *planned.v, cmp_time);
        qsort(st.t.v, st.t.n, sizeof *st.t.v, cmp_time);
        for (size_t i = 0; i < planned.n; i++)
            ck_assert_msg(planned.v[i] == st.t.v[i], "%s: request %zu at %lld planned, %lld "
                          "simulated", arrivals[k], i, (long long)planned.v[i],
                          (long long)st.t.v[i]);
        lb_vec_free(&planned);
        lb_vec_free(&st.t);
        real_plan_free(p);
        real_bindings_free(b);
        scn_run_free(r);
        scn_free(s);
    }
}
END_TEST

/* The shared state machine: thresholds, the initial pass, fail-fast. */
START_TEST(state_machine_steps)
{
    health_params_t p;
    health_params_preset(&p, HEALTH_VENDOR_AZURE_LB, HEALTH_HTTP);   /* 2 and 2, 1 to start */
    health_sm_t sm;
    health_sm_init(&sm, &p);
    ck_assert_int_eq(sm.state, HEALTH_INITIAL);
    ck_assert(!health_sm_step(&sm, &p, false, true));
    ck_assert(health_sm_step(&sm, &p, false, true));        /* second failure: down */
    ck_assert_int_eq(sm.state, HEALTH_DOWN);
    ck_assert(!health_sm_step(&sm, &p, true, false));
    ck_assert(health_sm_step(&sm, &p, true, false));        /* second pass: up */
    ck_assert_int_eq(sm.state, HEALTH_UP);
    p.fail_fast = true;
    ck_assert(health_sm_step(&sm, &p, false, true));        /* a 404: down at once */
    ck_assert_int_eq(sm.state, HEALTH_DOWN);
    health_sm_init(&sm, &p);
    ck_assert(health_sm_step(&sm, &p, true, false));        /* one pass proves a new one */
    ck_assert_int_eq(sm.state, HEALTH_UP);
}
END_TEST

/* --real-threads: every user and arrival on exactly one thread, round robin; the caps'
 * shares add up to the totals (in flight: at least one each). */
START_TEST(threads_split_the_work)
{
    for (int n = 1; n <= 5; n++) {
        int per[5] = {0};
        for (uint64_t i = 0; i < 23; i++) {
            int t = real_thread_of(i, n);
            ck_assert_int_ge(t, 0);
            ck_assert_int_lt(t, n);
            ck_assert_int_eq(t, (int)(i % (uint64_t)n));
            per[t]++;
        }
        for (int t = 0; t < n; t++)             /* 23 over n: shares differ by at most one */
            ck_assert_int_le(per[0] - per[t], 1);
        for (int m = 1; m <= 300; m += 37) {
            int sum = 0;
            for (int t = 0; t < n; t++) {
                int share = real_thread_in_flight(m, n, t);
                ck_assert_int_ge(share, 1);
                ck_assert_int_le(share, (m + n - 1) / n);
                sum += share;
            }
            ck_assert_int_eq(sum, m >= n ? m : n);
        }
        ck_assert_double_eq_tol(real_thread_rate(100, n) * n, 100, 1e-9);
        ck_assert_double_eq(real_thread_rate(0, n), 0);
    }
    ck_assert_int_eq(real_thread_in_flight(1, 2, 1), 1);    /* a thread is never starved */
    ck_assert_int_eq(real_thread_in_flight(256, 3, 0), 86);
    ck_assert_int_eq(real_thread_in_flight(256, 3, 2), 85);
}
END_TEST

Suite *suite_real(void)
{
    Suite *s = suite_create("real");
    TCase *tc = tcase_create("bindings");
    tcase_add_test(tc, bindings_every_key);
    tcase_add_test(tc, bindings_empty_and_insecure_default);
    tcase_add_test(tc, bindings_errors_have_positions);
    tcase_add_test(tc, bindings_nul_byte_has_position);
    tcase_add_test(tc, bindings_missing_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("classify");
    tcase_add_test(tc, classify_like_the_simulator);
    tcase_add_test(tc, probe_reasons_like_the_simulator);
    tcase_add_test(tc, state_machine_steps);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, plan_resolves_aks);
    tcase_add_test(tc, plan_lists_every_unbound_name);
    tcase_add_test(tc, plan_names_not_in_variant);
    tcase_add_test(tc, plan_identity);
    tcase_add_test(tc, plan_rate_cap);
    tcase_add_test(tc, plan_schedule_is_the_simulations);
    tcase_add_test(tc, threads_split_the_work);
    suite_add_tcase(s, tc);
    return s;
}

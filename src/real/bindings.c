/* bindings.c -- the bindings file of real-socket mode (docs/BINDINGS.md): YAML through the
 * scenario loader's positioned tree (scn_docs_load), every key checked, every mistake a
 * "file:line:col: message" -- the same diagnostics and exit status as a bad scenario.
 * What the names mean is decided later, against a built run (plan.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "real_int.h"
#include "dist.h"
#include "element.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct ld { real_bindings_t *b; scn_diag_t *diag; } ld_t;

#define FAIL(pos, ...) scn_diag_set(l->diag, (pos), LB_EINVAL, __VA_ARGS__)

static const char *kind_desc(const scn_node_t *n)
{
    switch (scn_node_kind(n)) {
    case SCN_MAP: return "a mapping";
    case SCN_SEQ: return "a list";
    case SCN_NULL: return "nothing";
    default: return "a scalar";
    }
}

static int want(ld_t *l, const scn_node_t *n, scn_node_kind_t k, const char *what)
{
    if (scn_node_kind(n) == k) return 0;
    return FAIL(scn_node_pos(n), "%s: expected %s, got %s", what,
                k == SCN_MAP ? "a mapping" : k == SCN_SEQ ? "a list" : "a value", kind_desc(n));
}

/* Checks that every key of map is one of keys[] (NULL-terminated). */
static int known_keys(ld_t *l, const scn_node_t *map, const char *const *keys, const char *what)
{
    size_t nk = 0;
    while (keys[nk]) nk++;
    for (size_t i = 0; i < scn_node_len(map); i++) {
        const char *k = scn_node_key(map, i);
        bool ok = false;
        for (size_t j = 0; j < nk && !ok; j++) ok = strcmp(k, keys[j]) == 0;
        if (ok) continue;
        const char *close = elem_closest(k, keys, nk);
        elem_pos_t pos = scn_node_key_pos(map, i);
        if (close) return FAIL(pos, "%s: unknown key '%s' (did you mean '%s'?)", what, k, close);
        return FAIL(pos, "%s: unknown key '%s'", what, k);
    }
    return 0;
}

/* Whole number from the first n characters of s: decimal digits only (no sign, no
 * spaces, which strtol would take), at most 9 of them. -1 if it is not one. */
static long digits(const char *s, size_t n)
{
    if (n == 0 || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A port number 1..65535 written as s[0..n), or -1. */
static int port_num(const char *s, size_t n)
{
    long v = digits(s, n);
    return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* A port number 1..65535 from a scalar. */
static int port_of(ld_t *l, const scn_node_t *n, const char *what, int *out)
{
    const char *s = scn_node_kind(n) == SCN_SCALAR ? scn_node_str(n) : NULL;
    int v = s ? port_num(s, strlen(s)) : -1;
    if (v < 0)
        return FAIL(scn_node_pos(n), "%s: expected a port number from 1 to 65535, got %s%s%s",
                    what, s ? "'" : "", s ? s : kind_desc(n), s ? "'" : "");
    *out = v;
    return 0;
}

/* A port number from a map key (keys are text; pos is the key's). */
static int key_port(ld_t *l, const char *k, elem_pos_t pos, const char *what, int *out)
{
    int v = port_num(k, strlen(k));
    if (v < 0) return FAIL(pos, "%s: '%s' is not a port number (1-65535)", what, k);
    *out = v;
    return 0;
}

static int str_of(ld_t *l, const scn_node_t *n, const char *what, const char **out)
{
    const char *s = scn_node_str(n);
    if (scn_node_kind(n) != SCN_SCALAR || !s || !*s)
        return FAIL(scn_node_pos(n), "%s: expected a non-empty string, got %s", what,
                    kind_desc(n));
    *out = s;
    return 0;
}

static int bool_of(ld_t *l, const scn_node_t *n, const char *what, bool *out)
{
    const char *s = scn_node_kind(n) == SCN_SCALAR ? scn_node_str(n) : NULL;
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes"))) *out = true;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "no"))) *out = false;
    else return FAIL(scn_node_pos(n), "%s: expected true or false", what);
    return 0;
}

/* A host: an IPv4 address or a DNS name (letters, digits, '-', '.'). */
static bool host_ok(const char *h)
{
    if (!*h || strlen(h) > 253) return false;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.') return false;
    return true;
}

static int portmap_of(ld_t *l, const scn_node_t *n, const char *what, rb_portmaps_t *out)
{
    int rc = want(l, n, SCN_MAP, what);
    for (size_t i = 0; i < scn_node_len(n) && rc == 0; i++) {
        rb_portmap_t pm;
        rc = key_port(l, scn_node_key(n, i), scn_node_key_pos(n, i), what, &pm.sim);
        if (rc == 0) rc = port_of(l, scn_node_at(n, i), what, &pm.real);
        if (rc == 0) lb_vec_push(out, pm);
    }
    return rc;
}

/* "HOST" or "HOST:PORT" or {address, ports}. */
static int endpoint_of(ld_t *l, const scn_node_t *n, const char *what, rb_endpoint_t *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->pos = scn_node_pos(n);
    if (scn_node_kind(n) == SCN_SCALAR) {
        const char *s = scn_node_str(n);
        const char *colon = strchr(s, ':');
        char *host = colon ? lb_strndup(s, (size_t)(colon - s)) : lb_strdup(s);
        ep->host = host;
        if (!host_ok(host))
            return FAIL(ep->pos, "%s: '%s' is not an address (an IPv4 address or a host "
                        "name, optionally with :PORT)", what, s);
        if (colon) {
            ep->port = port_num(colon + 1, strlen(colon + 1));
            if (ep->port < 0)
                return FAIL(ep->pos, "%s: '%s': the port after ':' must be 1-65535", what, s);
        }
        return 0;
    }
    int rc = want(l, n, SCN_MAP, what);
    static const char *const keys[] = {"address", "ports", NULL};
    if (rc == 0) rc = known_keys(l, n, keys, what);
    const scn_node_t *a = scn_node_get(n, "address");
    if (rc == 0 && !a) return FAIL(ep->pos, "%s: needs an address", what);
    const char *h = NULL;
    if (rc == 0) rc = str_of(l, a, what, &h);
    if (rc == 0) {
        ep->host = lb_strdup(h);
        if (!host_ok(h))
            return FAIL(scn_node_pos(a), "%s: '%s' is not an address (an IPv4 address or a "
                        "host name)", what, h);
    }
    const scn_node_t *p = scn_node_get(n, "ports");
    if (rc == 0 && p) rc = portmap_of(l, p, what, &ep->ports);
    return rc;
}

static void endpoint_clear(rb_endpoint_t *ep)
{
    lb_free(ep->host);
    lb_vec_free(&ep->ports);
}

/* A section mapping names to endpoints (a list of endpoints when `lists`). */
static int names_of(ld_t *l, const scn_node_t *n, const char *section, bool lists,
                    rb_names_t *out)
{
    int rc = want(l, n, SCN_MAP, section);
    for (size_t i = 0; i < scn_node_len(n) && rc == 0; i++) {
        const scn_node_t *v = scn_node_at(n, i);
        rb_named_t nm = {lb_strdup(scn_node_key(n, i)), scn_node_key_pos(n, i),
                         scn_node_pos(v), {0}};
        char what[300];
        snprintf(what, sizeof what, "%s: %s", section, nm.name);
        if (lists && scn_node_kind(v) == SCN_SEQ) {
            if (scn_node_len(v) == 0) rc = FAIL(nm.vpos, "%s: an empty list", what);
            for (size_t k = 0; k < scn_node_len(v) && rc == 0; k++) {
                rb_endpoint_t ep;
                rc = endpoint_of(l, scn_node_at(v, k), what, &ep);
                lb_vec_push(&nm.eps, ep);
            }
        } else {
            rb_endpoint_t ep;
            rc = endpoint_of(l, v, what, &ep);
            lb_vec_push(&nm.eps, ep);
        }
        lb_vec_push(out, nm);
    }
    return rc;
}

static int tls_of(ld_t *l, const scn_node_t *n, const char *what, rb_tls_t *t)
{
    static const char *const keys[] = {"ca-file", "cert-file", "key-file", "insecure", NULL};
    int rc = want(l, n, SCN_MAP, what);
    if (rc == 0) rc = known_keys(l, n, keys, what);
    t->set = true;
    const char *s;
    const scn_node_t *x;
    if (rc == 0 && (x = scn_node_get(n, "ca-file")) && (rc = str_of(l, x, what, &s)) == 0)
        t->ca_file = lb_strdup(s);
    if (rc == 0 && (x = scn_node_get(n, "cert-file")) && (rc = str_of(l, x, what, &s)) == 0)
        t->cert_file = lb_strdup(s);
    if (rc == 0 && (x = scn_node_get(n, "key-file")) && (rc = str_of(l, x, what, &s)) == 0)
        t->key_file = lb_strdup(s);
    if (rc == 0 && (x = scn_node_get(n, "insecure"))) rc = bool_of(l, x, what, &t->insecure);
    if (rc == 0 && !t->cert_file != !t->key_file)
        rc = FAIL(scn_node_pos(n), "%s: cert-file and key-file go together", what);
    return rc;
}

static void tls_clear(rb_tls_t *t)
{
    lb_free(t->ca_file);
    lb_free(t->cert_file);
    lb_free(t->key_file);
}

/* url: http[s]://host[:port][/] -- parsed with libcurl's own URL parser. */
static int url_of(ld_t *l, const scn_node_t *n, const char *what, rb_traffic_t *t)
{
    const char *s;
    int rc = str_of(l, n, what, &s);
    if (rc) return rc;
    t->url = lb_strdup(s);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = FAIL(scn_node_pos(n), "%s: '%s' is not a URL (expected http://HOST[:PORT] or "
                  "https://HOST[:PORT])", what, s);
    } else if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
        rc = FAIL(scn_node_pos(n), "%s: scheme '%s' is not supported (http or https)", what,
                  scheme);
    } else {
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        curl_url_get(u, CURLUPART_QUERY, &query, 0);
        if ((path && strcmp(path, "/") && *path) || query)
            rc = FAIL(scn_node_pos(n), "%s: '%s' has a path or query; the paths are the "
                      "scenario's (write only scheme://host[:port])", what, s);
        t->scheme = lb_strdup(scheme);
        t->url_host = lb_strdup(host);
        t->url_port = port ? atoi(port) : 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static int traffic_of(ld_t *l, const scn_node_t *n, real_bindings_t *b)
{
    static const char *const keys[] = {"url", "connect-to", "max-rate", "max-in-flight",
                                       "tls", NULL};
    int rc = want(l, n, SCN_MAP, "traffic");
    for (size_t i = 0; i < scn_node_len(n) && rc == 0; i++) {
        const scn_node_t *v = scn_node_at(n, i);
        rb_traffic_t t = {.name = lb_strdup(scn_node_key(n, i)), .pos = scn_node_key_pos(n, i)};
        char what[300];
        snprintf(what, sizeof what, "traffic: %s", t.name);
        rc = want(l, v, SCN_MAP, what);
        if (rc == 0) rc = known_keys(l, v, keys, what);
        const scn_node_t *x;
        if (rc == 0 && (x = scn_node_get(v, "url"))) rc = url_of(l, x, what, &t);
        if (rc == 0 && (x = scn_node_get(v, "connect-to"))) {
            const char *s;
            rc = str_of(l, x, what, &s);
            if (rc == 0) {
                t.connect_to = lb_strdup(s);
                const char *colon = strchr(s, ':');
                char *h = colon ? lb_strndup(s, (size_t)(colon - s)) : lb_strdup(s);
                if (!host_ok(h) || (colon && port_num(colon + 1, strlen(colon + 1)) < 0))
                    rc = FAIL(scn_node_pos(x), "%s: connect-to '%s': expected ADDRESS or "
                              "ADDRESS:PORT", what, s);
                lb_free(h);
            }
        }
        if (rc == 0 && (x = scn_node_get(v, "max-rate"))) {
            const char *s = scn_node_str(x);
            if (!s || unit_rate(s, &t.max_rate) < 0 || !(t.max_rate > 0))
                rc = FAIL(scn_node_pos(x), "%s: max-rate: expected a rate like 50/s", what);
        }
        if (rc == 0 && (x = scn_node_get(v, "max-in-flight"))) {
            const char *s = scn_node_kind(x) == SCN_SCALAR ? scn_node_str(x) : NULL;
            long m = s ? digits(s, strlen(s)) : -1;
            if (m < 1 || m > REAL_MAX_IN_FLIGHT_MAX)
                rc = FAIL(scn_node_pos(x), "%s: max-in-flight: expected 1 to %d", what,
                          REAL_MAX_IN_FLIGHT_MAX);
            t.max_in_flight = (int)m;
        }
        if (rc == 0 && (x = scn_node_get(v, "tls"))) rc = tls_of(l, x, what, &t.tls);
        lb_vec_push(&b->traffic, t);
    }
    return rc;
}

static int services_of(ld_t *l, const scn_node_t *n, real_bindings_t *b)
{
    static const char *const keys[] = {"node-ports", "health-check-node-port", NULL};
    int rc = want(l, n, SCN_MAP, "services");
    for (size_t i = 0; i < scn_node_len(n) && rc == 0; i++) {
        const scn_node_t *v = scn_node_at(n, i);
        const char *name = scn_node_key(n, i);
        rb_service_t s = {.name = lb_strdup(name), .pos = scn_node_key_pos(n, i)};
        char what[300];
        snprintf(what, sizeof what, "services: %s", name);
        const char *slash = strchr(name, '/');
        if (!slash || slash == name || !slash[1] || strchr(slash + 1, '/'))
            rc = FAIL(s.pos, "services: '%s': expected namespace/name", name);
        if (rc == 0) rc = want(l, v, SCN_MAP, what);
        if (rc == 0) rc = known_keys(l, v, keys, what);
        const scn_node_t *x;
        if (rc == 0 && (x = scn_node_get(v, "node-ports"))) {
            rc = want(l, x, SCN_MAP, what);
            for (size_t k = 0; k < scn_node_len(x) && rc == 0; k++) {
                const char *pk = scn_node_key(x, k);
                rb_nodeport_t np = {.pos = scn_node_key_pos(x, k)};
                if (*pk && !pk[strspn(pk, "0123456789")]) {     /* a number, else a name */
                    np.port_num = port_num(pk, strlen(pk));
                    if (np.port_num < 0)
                        rc = FAIL(np.pos, "%s: node-ports: port %s is out of range", what, pk);
                } else {
                    np.port_name = lb_strdup(pk);
                }
                if (rc == 0) rc = port_of(l, scn_node_at(x, k), what, &np.real);
                lb_vec_push(&s.node_ports, np);
            }
        }
        if (rc == 0 && (x = scn_node_get(v, "health-check-node-port"))) {
            s.hcnp_pos = scn_node_pos(x);
            rc = port_of(l, x, what, &s.hcnp);
        }
        lb_vec_push(&b->services, s);
    }
    return rc;
}

/* ---- the file ----------------------------------------------------------------------------- */

static int load_root(ld_t *l, const scn_node_t *root)
{
    static const char *const keys[] = {"scenario", "unbound", "traffic", "elements", "nodes",
                                       "pods", "addresses", "services", "ports", "skip", "tls",
                                       NULL};
    real_bindings_t *b = l->b;
    if (!root || scn_node_kind(root) == SCN_NULL) return 0;        /* an empty file: {} */
    int rc = want(l, root, SCN_MAP, "bindings");
    if (rc == 0) rc = known_keys(l, root, keys, "bindings");
    const scn_node_t *x;
    const char *s;
    if (rc == 0 && (x = scn_node_get(root, "scenario")) && (rc = str_of(l, x, "scenario", &s)) == 0) {
        b->scenario = lb_strdup(s);
        b->scenario_pos = scn_node_pos(x);
    }
    if (rc == 0 && (x = scn_node_get(root, "unbound"))) {
        s = scn_node_str(x);
        if (s && !strcmp(s, "simulated")) b->unbound_simulated = true;
        else if (!s || strcmp(s, "error"))
            rc = FAIL(scn_node_pos(x), "unbound: expected error or simulated, got '%s'",
                      s ? s : kind_desc(x));
    }
    if (rc == 0 && (x = scn_node_get(root, "traffic"))) rc = traffic_of(l, x, b);
    if (rc == 0 && (x = scn_node_get(root, "elements"))) rc = names_of(l, x, "elements", true, &b->elements);
    if (rc == 0 && (x = scn_node_get(root, "nodes"))) rc = names_of(l, x, "nodes", false, &b->nodes);
    if (rc == 0 && (x = scn_node_get(root, "pods"))) rc = names_of(l, x, "pods", false, &b->pods);
    if (rc == 0 && (x = scn_node_get(root, "addresses"))) {
        rc = names_of(l, x, "addresses", false, &b->addresses);
        for (size_t i = 0; i < b->addresses.n && rc == 0; i++) {
            uint32_t ip;
            if (lb_ip_parse(b->addresses.v[i].name, &ip) < 0)
                rc = FAIL(b->addresses.v[i].pos, "addresses: '%s' is not an IPv4 address",
                          b->addresses.v[i].name);
        }
    }
    if (rc == 0 && (x = scn_node_get(root, "services"))) rc = services_of(l, x, b);
    if (rc == 0 && (x = scn_node_get(root, "ports"))) rc = portmap_of(l, x, "ports", &b->ports);
    if (rc == 0 && (x = scn_node_get(root, "skip"))) {
        if (scn_node_kind(x) == SCN_SCALAR) {
            lb_vec_push(&b->skip, lb_strdup(scn_node_str(x)));
        } else {
            rc = want(l, x, SCN_SEQ, "skip");
            for (size_t i = 0; i < scn_node_len(x) && rc == 0; i++)
                if ((rc = str_of(l, scn_node_at(x, i), "skip", &s)) == 0)
                    lb_vec_push(&b->skip, lb_strdup(s));
        }
    }
    if (rc == 0 && (x = scn_node_get(root, "tls"))) rc = tls_of(l, x, "tls", &b->tls);
    return rc;
}

/* docs parsed from text (len bytes, no NUL among them: the parser refuses one) */
static int load_docs(scn_docs_t *docs, const char *path, const char *text, size_t len,
                     real_bindings_t **out, scn_diag_t *diag)
{
    real_bindings_t *b = lb_calloc(1, sizeof *b);
    b->path = lb_strdup(path);
    b->text = lb_sprintf("# bindings file: %s\n%.*s", path, (int)len, text);
    b->docs = docs;
    ld_t l = {b, diag};
    int rc = 0;
    if (scn_docs_count(docs) > 1)
        rc = scn_diag_set(diag, scn_node_pos(scn_docs_at(docs, 1)), LB_EINVAL,
                          "a bindings file holds one YAML document");
    if (rc == 0) rc = load_root(&l, scn_docs_at(docs, 0));
    if (rc < 0) {
        real_bindings_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int real_bindings_load(const char *path, real_bindings_t **out, scn_diag_t *diag)
{
    size_t len;
    char *text = scn_read_file(path, &len, diag);
    if (!text) return LB_EIO;
    int rc = real_bindings_load_buffer(text, len, path, out, diag);
    lb_free(text);
    return rc;
}

int real_bindings_load_buffer(const char *text, size_t len, const char *fname,
                              real_bindings_t **out, scn_diag_t *diag)
{
    scn_docs_t *docs;
    int rc = scn_docs_load_buffer(text, len, fname, &docs, diag);
    if (rc < 0) return rc;
    return load_docs(docs, fname, text, len, out, diag);
}

int real_bindings_load_string(const char *text, const char *fname, real_bindings_t **out,
                              scn_diag_t *diag)
{
    return real_bindings_load_buffer(text, strlen(text), fname, out, diag);
}

static void names_free(rb_names_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        for (size_t k = 0; k < v->v[i].eps.n; k++) endpoint_clear(&v->v[i].eps.v[k]);
        lb_vec_free(&v->v[i].eps);
        lb_free(v->v[i].name);
    }
    lb_vec_free(v);
}

void real_bindings_free(real_bindings_t *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->traffic.n; i++) {
        rb_traffic_t *t = &b->traffic.v[i];
        lb_free(t->name);
        lb_free(t->url);
        lb_free(t->scheme);
        lb_free(t->url_host);
        lb_free(t->connect_to);
        tls_clear(&t->tls);
    }
    lb_vec_free(&b->traffic);
    names_free(&b->elements);
    names_free(&b->nodes);
    names_free(&b->pods);
    names_free(&b->addresses);
    for (size_t i = 0; i < b->services.n; i++) {
        for (size_t k = 0; k < b->services.v[i].node_ports.n; k++)
            lb_free(b->services.v[i].node_ports.v[k].port_name);
        lb_vec_free(&b->services.v[i].node_ports);
        lb_free(b->services.v[i].name);
    }
    lb_vec_free(&b->services);
    lb_vec_free(&b->ports);
    for (size_t i = 0; i < b->skip.n; i++) lb_free(b->skip.v[i]);
    lb_vec_free(&b->skip);
    tls_clear(&b->tls);
    lb_free(b->scenario);
    scn_docs_free(b->docs);
    lb_free(b->text);
    lb_free(b->path);
    lb_free(b);
}

const char *real_bindings_path(const real_bindings_t *b) { return b->path; }
const char *real_bindings_text(const real_bindings_t *b) { return b->text; }

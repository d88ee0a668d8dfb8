/* http_server_app.c -- an nginx-like HTTP server application: fixed responses per
 * location with nginx's matching rules (exact `location = /x` first, else the longest
 * prefix; src/http/ngx_http_core_module.c ngx_http_core_find_location), an optional
 * service time per location, and nginx's default 404 for everything else. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "apps.h"
#include "nginx_conf.h"

/* nginx's built-in 404 page (src/http/ngx_http_special_response.c, ngx_http_error_404_page
 * + ngx_http_error_tail with server_tokens off). */
static const char NGINX_404_BODY[] =
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

typedef struct loc {
    char *path;
    size_t len;
    int match;
    int status;
    char *body;
    uint32_t body_size;
    dist_t service_time;
    bool zero_service;
    LB_VEC(http_header_t) headers;
} loc_t;

/* A response waiting for its service time. */
typedef struct pend {
    app_http_server_t *app;
    http_exchange_t *ex;
    int loc;
    sim_handle_t timer;
    struct pend *prev, *next;
} pend_t;

struct app_http_server {
    net_node_t *node;
    sim_t *sim;
    http_server_t *srv;
    uint16_t port;
    gsl_rng *rng;
    loc_t *locs;
    size_t n;
    uint64_t *hits;             /* n + 1: the last counts 404s */
    pend_t *pending, *spare;
};

void app_location_init(app_location_t *l, const char *path, int match)
{
    memset(l, 0, sizeof(*l));
    l->path = path;
    l->match = match;
    l->status = 200;
    l->body_size = -1;
    l->service_time = (dist_t){ DIST_CONST, 0, 0 };
}

void app_http_server_opts_init(app_http_server_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->keepalive_timeout = HTTP_KEEPALIVE_TIMEOUT_DEFAULT;
    o->name = "http-server";
}

int app_http_server_match(const app_http_server_t *s, const char *path)
{
    size_t plen = strcspn(path, "?");   /* locations match the URI without its query */
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < s->n; i++) {
        const loc_t *l = &s->locs[i];
        if (l->match == APP_MATCH_EXACT) {
            if (l->len == plen && memcmp(l->path, path, plen) == 0)
                return (int)i;
        } else if (l->len <= plen && memcmp(l->path, path, l->len) == 0 &&
                   (best < 0 || l->len > best_len)) {
            best = (int)i;
            best_len = l->len;
        }
    }
    return best;
}

static http_msg_t *make_response(const app_http_server_t *s, int li)
{
    if (li < 0) {
        http_msg_t *r = http_response_new(404, NGINX_404_BODY, 0);
        http_header_set(r, "Content-Type", "text/html");
        return r;
    }
    const loc_t *l = &s->locs[li];
    http_msg_t *r = http_response_new(l->status, l->body, l->body_size);
    for (size_t i = 0; i < l->headers.n; i++)
        http_header_set(r, l->headers.v[i].name, l->headers.v[i].value);
    return r;
}

static void pend_unlink(app_http_server_t *s, pend_t *p)
{
    if (p->prev) p->prev->next = p->next; else s->pending = p->next;
    if (p->next) p->next->prev = p->prev;
    p->next = s->spare;
    s->spare = p;
}

static void service_done_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    pend_t *p = a;
    app_http_server_t *s = p->app;
    http_exchange_t *ex = p->ex;
    int li = p->loc;
    pend_unlink(s, p);
    http_respond(ex, make_response(s, li));
}

static void handle(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    app_http_server_t *s = data;
    int li = app_http_server_match(s, req->path);
    s->hits[li < 0 ? s->n : (size_t)li]++;
    sim_time_t delay = 0;
    if (li >= 0 && !s->locs[li].zero_service)
        delay = dist_sample(&s->locs[li].service_time, s->rng);
    if (delay <= 0) {
        http_respond(ex, make_response(s, li));
        return;
    }
    pend_t *p = s->spare;
    if (p)
        s->spare = p->next;
    else
        p = lb_malloc(sizeof(*p));
    p->app = s;
    p->ex = ex;
    p->loc = li;
    p->prev = NULL;
    p->next = s->pending;
    if (s->pending)
        s->pending->prev = p;
    s->pending = p;
    p->timer = sim_schedule(s->sim, delay, service_done_cb, p, NULL);
}

static void header_split(const char *line, http_header_t *h)
{
    const char *colon = strchr(line, ':');
    size_t nlen = colon ? (size_t)(colon - line) : strlen(line);
    while (nlen && line[nlen - 1] == ' ')
        nlen--;
    h->name = lb_strndup(line, nlen);
    const char *v = colon ? colon + 1 : "";
    while (*v == ' ' || *v == '\t')
        v++;
    h->value = lb_strdup(v);
}

/* The host name nginx's $hostname gives on node: gethostname(), which in a pod is the
 * pod's name (Kubernetes sets a pod's hostname to metadata.name); a pod node whose name
 * was qualified to be unique ("<cluster>/<pod>") answers with the last part. */
static const char *node_hostname(const net_node_t *node)
{
    const char *slash = strrchr(node->name, '/');
    return slash ? slash + 1 : node->name;
}

/* s with nginx's variable $hostname (or ${hostname}) replaced by host (ngx_http_variables.c:
 * a variable name runs over letters, digits and '_'); other text as it is. Caller frees. */
static char *expand_hostname(const char *s, const char *host)
{
    LB_VEC(char) out = {0};
    size_t hl = strlen(host);
    while (*s) {
        size_t skip = 0;
        if (strncmp(s, "${hostname}", 11) == 0)
            skip = 11;
        else if (strncmp(s, "$hostname", 9) == 0 && !isalnum((unsigned char)s[9]) && s[9] != '_')
            skip = 9;
        if (skip) {
            for (size_t i = 0; i < hl; i++)
                lb_vec_push(&out, host[i]);
            s += skip;
        } else {
            lb_vec_push(&out, *s++);
        }
    }
    lb_vec_push(&out, '\0');
    return out.v;
}

static void locs_free(loc_t *locs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lb_free(locs[i].path);
        lb_free(locs[i].body);
        for (size_t j = 0; j < locs[i].headers.n; j++) {
            lb_free(locs[i].headers.v[j].name);
            lb_free(locs[i].headers.v[j].value);
        }
        lb_vec_free(&locs[i].headers);
    }
    lb_free(locs);
}

app_http_server_t *app_http_server_new(net_node_t *node, uint16_t port,
                                       const app_location_t *locs, size_t n,
                                       const app_http_server_opts_t *opts, int *rc)
{
    app_http_server_opts_t defo;
    if (!opts) {
        app_http_server_opts_init(&defo);
        opts = &defo;
    }
    app_http_server_t *s = lb_calloc(1, sizeof(*s));
    s->node = node;
    s->sim = net_sim(node->net);
    s->port = port;
    s->n = n;
    s->locs = lb_calloc(n ? n : 1, sizeof(loc_t));
    s->hits = lb_calloc(n + 1, sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        const app_location_t *in = &locs[i];
        loc_t *l = &s->locs[i];
        l->path = lb_strdup(in->path ? in->path : "/");
        l->len = strlen(l->path);
        l->match = in->match;
        l->status = in->status;
        l->body = in->body && *in->body ? expand_hostname(in->body, node_hostname(node)) : NULL;
        size_t blen = l->body ? strlen(l->body) : 0;
        l->body_size = in->body_size < 0 || (size_t)in->body_size < blen ? (uint32_t)blen
                                                                         : (uint32_t)in->body_size;
        l->service_time = in->service_time;
        l->zero_service = in->service_time.kind == DIST_CONST && in->service_time.a <= 0;
        for (size_t j = 0; j < in->n_headers; j++) {
            http_header_t h;
            header_split(in->headers[j], &h);
            char *v = expand_hostname(h.value, node_hostname(node));
            lb_free(h.value);
            h.value = v;
            lb_vec_push(&l->headers, h);
        }
    }
    char *stream = lb_sprintf("http-server:%s:%s", opts->name ? opts->name : "http-server",
                              node->name);
    s->rng = sim_rng(s->sim, stream);
    lb_free(stream);
    http_server_opts_t so = { .keepalive_timeout = opts->keepalive_timeout };
    s->srv = http_server_new(node, opts->addr, port, &so, handle, s, rc);
    if (!s->srv) {
        locs_free(s->locs, s->n);
        lb_free(s->hits);
        lb_free(s);
        return NULL;
    }
    return s;
}

void app_http_server_free(app_http_server_t *s)
{
    if (!s)
        return;
    while (s->pending) {
        pend_t *p = s->pending;
        sim_cancel(s->sim, &p->timer);
        pend_unlink(s, p);
    }
    while (s->spare) {
        pend_t *p = s->spare;
        s->spare = p->next;
        lb_free(p);
    }
    http_server_free(s->srv);
    locs_free(s->locs, s->n);
    lb_free(s->hits);
    lb_free(s);
}

http_server_t *app_http_server_http(app_http_server_t *s) { return s->srv; }

uint64_t app_http_server_hits(const app_http_server_t *s, int loc)
{
    if (loc < 0 || (size_t)loc > s->n)
        return 0;
    return s->hits[loc];
}

int app_http_server_render_nginx(const app_http_server_t *s, FILE *out, const char *indent)
{
    app_location_t *locs = lb_calloc(s->n ? s->n : 1, sizeof *locs);
    LB_VEC(char *) hdrs = {0};
    size_t *first = lb_calloc(s->n + 1, sizeof *first);
    for (size_t i = 0; i < s->n; i++) {
        first[i] = hdrs.n;
        for (size_t k = 0; k < s->locs[i].headers.n; k++) {
            char *h = lb_sprintf("%s: %s", s->locs[i].headers.v[k].name,
                                 s->locs[i].headers.v[k].value);
            lb_vec_push(&hdrs, h);
        }
    }
    for (size_t i = 0; i < s->n; i++) {     /* the vector is final: take pointers */
        const loc_t *l = &s->locs[i];
        app_location_init(&locs[i], l->path, l->match);
        locs[i].status = l->status;
        locs[i].body = l->body;
        locs[i].body_size = l->body_size;
        locs[i].service_time = l->service_time;
        locs[i].headers = (const char *const *)hdrs.v + first[i];
        locs[i].n_headers = l->headers.n;
    }
    int approx = nginx_conf_render_server(out, s->port, locs, s->n, indent);
    for (size_t i = 0; i < hdrs.n; i++) lb_free(hdrs.v[i]);
    lb_vec_free(&hdrs);
    lb_free(first);
    lb_free(locs);
    return approx;
}

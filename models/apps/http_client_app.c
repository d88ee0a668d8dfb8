/* http_client_app.c -- the traffic client: open-loop arrivals (constant spacing or a
 * Poisson process) or closed-loop users with think time, over one HTTP connection pool
 * per client node; every finished request is recorded in the metrics under the traffic
 * source's name. Random draws come from "traffic:<name>" (one node) or
 * "traffic:<name>:<node>" (a group), so adding a source never perturbs another. */
#include <assert.h>
#include <math.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <gsl/gsl_randist.h>
#include "apps.h"
#include "explain.h"

typedef struct cnode cnode_t;

/* A closed-loop user, or (idx -1) the open-loop arrival process of a node. */
typedef struct user {
    cnode_t *cn;
    int idx;
    int64_t issued;
    sim_handle_t timer;         /* next request (think time / start / next arrival) */
} user_t;

/* One request in flight: what the record needs once the outcome is known. */
typedef struct rctx {
    user_t *u;
    const char *path;           /* owned by the client */
    const char *method;
    uint64_t req_id;
    struct rctx *next;          /* free list */
    struct rctx *prev_live, *next_live;     /* in flight (freed with the client) */
} rctx_t;

struct cnode {
    app_http_client_t *c;
    net_node_t *node;
    http_pool_t *pool;
    gsl_rng *rng;
    gsl_rng *kind_rng;          /* request kinds (several only); NULL: one kind */
    size_t idx;
    user_t arrivals;            /* open loop: the timer */
    app_arrivals_t arr;         /* open loop: the arrival process */
    user_t *users;              /* closed loop */
    size_t next_path, next_target;
    size_t last_target;         /* where the latest request went: likeliest to be idle */
};

struct app_http_client {
    app_http_client_opts_t o;   /* strings and arrays below are owned copies */
    char *name, *method, *host;
    char **paths;
    uint32_t *targets;
    char **target_hosts;        /* Host header per target when opts.host is empty */
    app_req_spec_t *specs;      /* the request kinds, resolved (n_specs >= 1) */
    size_t n_specs;
    LB_VEC(char *) strs;        /* strings the specs point at */
    sim_t *sim;
    metrics_t *m;
    int source;
    cnode_t *nodes;
    size_t n;
    rctx_t *spare, *live;
    uint64_t seq;
    app_http_client_stats_t st;
};

void app_http_client_opts_init(app_http_client_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->name = "client";
    o->port = APP_HTTP_DEFAULT_PORT;
    o->method = "GET";
    o->mode = APP_CLIENT_OPEN;
    o->arrival = APP_ARRIVAL_POISSON;
    o->users = 1;
    o->think_time = (dist_t){ DIST_CONST, 0, 0 };
    o->ramp_up = APP_CLIENT_RAMP_UP_DEFAULT;
    o->keepalive = true;
}

static void issue(user_t *u);
static void client_release(app_http_client_t *c);

static bool may_start(const app_http_client_t *c, sim_time_t t)
{
    return c->o.stop <= 0 || t < c->o.stop;
}

static void user_timer_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    user_t *u = a;
    u->timer = (sim_handle_t){0};
    issue(u);
}

bool app_arrivals_init(app_arrivals_t *a, const app_http_client_opts_t *o, size_t idx,
                       size_t n, gsl_rng *rng)
{
    memset(a, 0, sizeof *a);
    a->arrival = o->arrival;
    a->start = o->start;
    a->stop = o->stop;
    a->rng = rng;
    a->period = 1e9 * (double)n / o->rate;
    /* nodes interleave so that the sum is evenly spaced at 1/rate */
    a->offset = (sim_time_t)llround(1e9 * (double)idx / o->rate);
    if (o->requests > 0) {
        int64_t base = o->requests / (int64_t)n;
        a->limit = base + ((int64_t)idx < o->requests % (int64_t)n);
        if (a->limit == 0)
            return false;
    }
    return true;
}

sim_time_t app_arrivals_next(app_arrivals_t *a, sim_time_t now)
{
    if (a->limit > 0 && a->issued >= a->limit)
        return -1;
    sim_time_t t;
    if (a->arrival == APP_ARRIVAL_CONSTANT) {
        /* from the start, not from the previous arrival: no rounding drift */
        t = a->start + a->offset + (sim_time_t)llround((double)a->issued * a->period);
    } else {
        double gap = gsl_ran_exponential(a->rng, a->period);
        t = (a->issued == 0 ? a->start : a->last) + (sim_time_t)llround(gap);
    }
    if (t < now)
        t = now;
    if (a->stop > 0 && t >= a->stop)
        return -1;
    a->last = t;
    return t;
}

sim_time_t app_user_start(const app_http_client_opts_t *o, size_t idx, size_t n, int i)
{
    size_t total = n * (size_t)o->users;
    size_t j = idx * (size_t)o->users + (size_t)i;
    return o->start + (sim_time_t)((double)o->ramp_up * (double)j / (double)total);
}

/* Open loop: schedules this node's next arrival. */
static void arrival_schedule(cnode_t *cn)
{
    app_http_client_t *c = cn->c;
    sim_time_t t = app_arrivals_next(&cn->arr, sim_now(c->sim));
    if (t >= 0)
        cn->arrivals.timer = sim_schedule_at(c->sim, t, user_timer_cb, &cn->arrivals, NULL);
}

/* Picks the target (an index): one with an idle connection (from the rotation point on), else the
 * next in the rotation, which a new connection will go to. */
static size_t pick_target(cnode_t *cn)
{
    app_http_client_t *c = cn->c;
    size_t n = c->o.n_targets;
    if (n == 1)
        return 0;
    if (c->o.keepalive && http_pool_open_conns(cn->pool) > 0) {
        if (http_pool_idle_conns(cn->pool, c->targets[cn->last_target], c->o.port))
            return cn->last_target;
        for (size_t i = 0; i < n; i++) {
            size_t k = (cn->next_target + i) % n;
            if (http_pool_idle_conns(cn->pool, c->targets[k], c->o.port)) {
                cn->last_target = k;
                return k;
            }
        }
    }
    cn->last_target = cn->next_target++ % n;
    return cn->last_target;
}

static void on_result(const http_result_t *r, void *data);

static void issue(user_t *u)
{
    cnode_t *cn = u->cn;
    app_http_client_t *c = cn->c;
    if (!may_start(c, sim_now(c->sim)))
        return;
    rctx_t *x = c->spare;
    if (x)
        c->spare = x->next;
    else
        x = lb_malloc(sizeof(*x));
    x->u = u;
    x->prev_live = NULL;
    x->next_live = c->live;
    if (c->live)
        c->live->prev_live = x;
    c->live = x;
    const app_req_spec_t *k = &c->specs[app_req_spec_pick(c->specs, c->n_specs, cn->kind_rng)];
    x->path = k->path ? k->path : c->paths[cn->next_path++ % c->o.n_paths];
    x->method = k->method;
    x->req_id = ++c->seq;
    u->issued++;
    if (u->idx < 0)
        cn->arr.issued++;
    c->st.issued++;
    size_t ti = pick_target(cn);
    http_msg_t *req = http_request_new(k->method, k->host ? k->host : c->target_hosts[ti],
                                       x->path, k->body_size);
    for (size_t i = 0; i < k->n_hdrs; i++)
        http_header_set(req, k->hdr_names[i], k->hdr_values[i]);
    if (k->body)
        req->body = lb_strdup(k->body);
    req->req_id = x->req_id;
    http_pool_request(cn->pool, c->targets[ti], c->o.port, req, on_result, x);
    if (u->idx < 0)
        arrival_schedule(cn);
}

static void on_result(const http_result_t *r, void *data)
{
    rctx_t *x = data;
    user_t *u = x->u;
    cnode_t *cn = u->cn;
    app_http_client_t *c = cn->c;
    const char *path = x->path;
    c->st.completed++;
    c->st.outcomes[r->outcome]++;
    if (r->reused)
        c->st.reused++;
    if (c->m) {
        m_header_t hs[HTTP_MAX_HEADERS];
        size_t nh = 0;
        bool hdrs = r->resp && (metrics_wants(c->m) & M_WANT_HEADERS);  /* only if looked at */
        for (int i = 0; hdrs && i < r->resp->n_headers; i++)
            hs[nh++] = (m_header_t){ r->resp->headers[i].name, r->resp->headers[i].value };
        m_request_t mr = {
            .source = c->source,
            .t_start = r->t_start,
            .t_end = r->t_done,
            .cls = m_class_of(r->outcome, r->status),
            .status = r->status,
            .outcome = r->outcome,
            .flow = r->flow,
            .req_id = x->req_id,
            .path = path,
            .body = r->resp ? r->resp->body : NULL,
            .headers = nh ? hs : NULL,
            .n_headers = nh,
        };
        metrics_request(c->m, &mr);
    }
    int cls = m_class_of(r->outcome, r->status);
    if (c->o.explain && cls != M_2XX) {
        const char *detail = r->resp && r->resp->detail ? r->resp->detail : "";
        char what[200];
        if (r->outcome == HTTP_OK)
            snprintf(what, sizeof what, "%s %s -> %d %s", x->method, path, r->status, detail);
        else
            snprintf(what, sizeof what, "%s %s -> %s after %.3fs", x->method, path,
                     http_outcome_name(r->outcome), (double)(r->t_done - r->t_start) / SIM_S);
        explain_note(c->o.explain, c->name, r->flow, 0, "client sees %s", what);
        explain_outcome(c->o.explain, c->name, cls, r->flow, what);
    }
    if (x->prev_live) x->prev_live->next_live = x->next_live; else c->live = x->next_live;
    if (x->next_live) x->next_live->prev_live = x->prev_live;
    x->next = c->spare;
    c->spare = x;
    if (c->o.on_result)
        c->o.on_result(r, path, c->o.on_result_data);
    if (u->idx < 0)
        return;                 /* open loop: arrivals do not wait for outcomes */
    if (c->o.requests > 0 && u->issued >= c->o.requests)
        return;
    sim_time_t think = dist_sample(&c->o.think_time, cn->rng);
    if (think <= 0 && r->t_done == r->t_start)
        think = APP_CLIENT_MIN_CYCLE;
    if (!may_start(c, sim_now(c->sim) + think))
        return;
    if (think <= 0)
        issue(u);
    else
        u->timer = sim_schedule(c->sim, think, user_timer_cb, u, NULL);
}

/* ---- request kinds ----------------------------------------------------------------------- */
const char *app_header_check(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return "expected \"Name: value\"";
    for (const char *p = h; p < colon; p++)     /* RFC 9110 5.1: field-name = token */
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return "the name is not an HTTP token (letters, digits, -, _ ...)";
    if (colon - h == 14 && strncasecmp(h, "Content-Length", 14) == 0)
        return "Content-Length follows the body: set body or body-size instead";
    return NULL;
}

size_t app_req_spec_pick(const app_req_spec_t *k, size_t n, gsl_rng *rng)
{
    if (n <= 1 || !rng)
        return 0;
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += k[i].weight;
    double x = gsl_rng_uniform(rng) * total, cum = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        cum += k[i].weight;
        if (x < cum)
            return i;
    }
    return n - 1;
}

static char *keep(app_http_client_t *c, const char *s)
{
    char *d = lb_strdup(s);
    lb_vec_push(&c->strs, d);
    return d;
}

/* Sets header line h ("Name: value") in spec k: replaces a header of that name (names
 * compare case-blind), else appends; Host goes to k->host. False: no room left. */
static bool spec_header(app_http_client_t *c, app_req_spec_t *k, const char *h)
{
    const char *colon = strchr(h, ':');
    char *name = lb_strndup(h, (size_t)(colon - h));
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    char *value = lb_strndup(v, vl);
    bool ok = true;
    if (strcasecmp(name, "Host") == 0) {
        k->host = keep(c, value);
    } else {
        size_t i = 0;
        while (i < k->n_hdrs && strcasecmp(k->hdr_names[i], name) != 0)
            i++;
        if (i == k->n_hdrs && i == APP_CLIENT_MAX_HEADERS) {
            ok = false;
        } else {
            if (i == k->n_hdrs)
                k->n_hdrs++;
            k->hdr_names[i] = keep(c, name);
            k->hdr_values[i] = keep(c, value);
        }
    }
    lb_free(name);
    lb_free(value);
    return ok;
}

/* Resolves kind kd (NULL: the shorthand) into k; false on a bad header. */
static bool spec_resolve(app_http_client_t *c, const app_request_kind_t *kd, app_req_spec_t *k)
{
    const app_http_client_opts_t *o = &c->o;
    k->weight = kd ? kd->weight : 1;
    k->method = kd && kd->method && *kd->method ? keep(c, kd->method) : c->method;
    k->host = kd && kd->host && *kd->host ? keep(c, kd->host) : c->host;
    k->path = kd && kd->path && *kd->path ? keep(c, kd->path) : NULL;
    k->hdr_names = lb_calloc(APP_CLIENT_MAX_HEADERS, sizeof(char *));
    k->hdr_values = lb_calloc(APP_CLIENT_MAX_HEADERS, sizeof(char *));
    for (size_t i = 0; i < o->n_headers; i++)
        if (app_header_check(o->headers[i]) || !spec_header(c, k, o->headers[i]))
            return false;
    for (size_t i = 0; kd && i < kd->n_headers; i++)
        if (app_header_check(kd->headers[i]) || !spec_header(c, k, kd->headers[i]))
            return false;
    const char *body = kd && kd->body ? kd->body : o->body;
    size_t len = body ? strlen(body) : 0;
    int64_t size = kd && kd->body_size >= 0 ? kd->body_size
                 : kd && kd->body ? (int64_t)len : (int64_t)o->request_size;
    if (size < (int64_t)len)
        size = (int64_t)len;
    if (size > UINT32_MAX || (kd && !(kd->weight > 0)))
        return false;
    k->body = body && *body ? keep(c, body) : NULL;
    k->body_size = (uint32_t)size;
    return true;
}

static void start_node(cnode_t *cn, size_t nnodes)
{
    app_http_client_t *c = cn->c;
    if (c->o.mode == APP_CLIENT_OPEN) {
        cn->arrivals.cn = cn;
        cn->arrivals.idx = -1;
        if (app_arrivals_init(&cn->arr, &c->o, cn->idx, nnodes, cn->rng))
            arrival_schedule(cn);
        return;
    }
    cn->users = lb_calloc((size_t)c->o.users, sizeof(user_t));
    for (int i = 0; i < c->o.users; i++) {
        user_t *u = &cn->users[i];
        u->cn = cn;
        u->idx = i;
        sim_time_t t = app_user_start(&c->o, cn->idx, nnodes, i);
        if (t < sim_now(c->sim))
            t = sim_now(c->sim);
        if (may_start(c, t))
            u->timer = sim_schedule_at(c->sim, t, user_timer_cb, u, NULL);
    }
}

app_http_client_t *app_http_client_new(net_node_t *const *nodes, size_t n,
                                       const app_http_client_opts_t *opts, metrics_t *m,
                                       int *rc)
{
    int bad = n == 0 || !opts || opts->n_targets == 0 ||
              (opts->mode == APP_CLIENT_OPEN && !(opts->rate > 0)) ||
              (opts->mode == APP_CLIENT_CLOSED && opts->users < 1) ||
              opts->requests < 0;
    if (rc)
        *rc = bad ? LB_EINVAL : 0;
    if (bad)
        return NULL;
    app_http_client_t *c = lb_calloc(1, sizeof(*c));
    c->o = *opts;
    c->name = lb_strdup(opts->name ? opts->name : "client");
    c->method = lb_strdup(opts->method && *opts->method ? opts->method : "GET");
    c->host = opts->host && *opts->host ? lb_strdup(opts->host) : NULL;
    c->o.n_paths = opts->n_paths ? opts->n_paths : 1;
    c->paths = lb_calloc(c->o.n_paths, sizeof(char *));
    for (size_t i = 0; i < c->o.n_paths; i++)
        c->paths[i] = lb_strdup(opts->n_paths ? opts->paths[i] : "/");
    c->targets = lb_malloc(opts->n_targets * sizeof(uint32_t));
    memcpy(c->targets, opts->targets, opts->n_targets * sizeof(uint32_t));
    c->target_hosts = lb_calloc(opts->n_targets, sizeof(char *));
    for (size_t i = 0; i < opts->n_targets; i++) {
        /* what curl sends for http://ADDR[:PORT]/: the port only when not the default */
        char buf[16];
        lb_ip_str(c->targets[i], buf);
        c->target_hosts[i] = opts->port == APP_HTTP_DEFAULT_PORT
            ? lb_strdup(buf) : lb_sprintf("%s:%u", buf, (unsigned)opts->port);
    }
    c->o.name = c->name;
    c->o.method = c->method;
    c->o.host = c->host;
    c->o.paths = (const char *const *)c->paths;
    c->o.targets = c->targets;
    c->n_specs = opts->n_kinds ? opts->n_kinds : 1;
    c->specs = lb_calloc(c->n_specs, sizeof(app_req_spec_t));
    bool ok = true;
    for (size_t i = 0; i < c->n_specs; i++)
        ok &= spec_resolve(c, opts->n_kinds ? &opts->kinds[i] : NULL, &c->specs[i]);
    /* the options' copies of what the specs resolved (kinds are read through the specs) */
    c->o.headers = NULL;
    c->o.n_headers = 0;
    c->o.body = NULL;
    c->o.kinds = NULL;
    c->o.n_kinds = 0;
    if (!ok) {
        if (rc)
            *rc = LB_EINVAL;
        c->n = 0;
        c->nodes = NULL;
        client_release(c);
        return NULL;
    }
    c->sim = net_sim(nodes[0]->net);
    c->m = m;
    c->source = m ? metrics_source(m, c->name) : -1;
    c->n = n;
    c->nodes = lb_calloc(n, sizeof(cnode_t));
    http_client_opts_t po = {
        .keepalive = opts->keepalive,
        .connect_timeout = opts->connect_timeout,
        .response_timeout = opts->response_timeout,
    };
    for (size_t i = 0; i < n; i++) {
        cnode_t *cn = &c->nodes[i];
        cn->c = c;
        cn->node = nodes[i];
        cn->idx = i;
        cn->pool = http_pool_new(nodes[i], &po);
        /* each node's rotation starts at its own target, so that a group of clients
         * spreads its first connections instead of all opening to the first target */
        cn->next_target = i % opts->n_targets;
        char *stream = app_http_client_stream(c, i);
        cn->rng = sim_rng(c->sim, stream);
        lb_free(stream);
        if (c->n_specs > 1) {
            stream = app_http_client_kind_stream(c, i);
            cn->kind_rng = sim_rng(c->sim, stream);
            lb_free(stream);
        }
    }
    net_app_register(nodes[0]->net, APP_HTTP_CLIENT_KIND, c);
    for (size_t i = 0; i < n; i++)
        start_node(&c->nodes[i], n);
    return c;
}

void app_http_client_free(app_http_client_t *c)
{
    if (!c)
        return;
    net_app_unregister(c->nodes[0].node->net, c);
    for (size_t i = 0; i < c->n; i++) {
        cnode_t *cn = &c->nodes[i];
        sim_cancel(c->sim, &cn->arrivals.timer);
        if (cn->users)
            for (int j = 0; j < c->o.users; j++)
                sim_cancel(c->sim, &cn->users[j].timer);
        lb_free(cn->users);
    }
    for (size_t i = 0; i < c->n; i++)     /* in-flight requests end without callbacks */
        http_pool_free(c->nodes[i].pool);
    while (c->live) {
        rctx_t *x = c->live;
        c->live = x->next_live;
        lb_free(x);
    }
    while (c->spare) {
        rctx_t *x = c->spare;
        c->spare = x->next;
        lb_free(x);
    }
    client_release(c);
}

/* Frees what app_http_client_new allocated before the nodes (also on its failure). */
static void client_release(app_http_client_t *c)
{
    for (size_t i = 0; i < c->n_specs; i++) {
        lb_free(c->specs[i].hdr_names);
        lb_free(c->specs[i].hdr_values);
    }
    lb_free(c->specs);
    for (size_t i = 0; i < c->strs.n; i++)
        lb_free(c->strs.v[i]);
    lb_vec_free(&c->strs);
    for (size_t i = 0; i < c->o.n_paths; i++)
        lb_free(c->paths[i]);
    lb_free(c->paths);
    for (size_t i = 0; i < c->o.n_targets; i++)
        lb_free(c->target_hosts[i]);
    lb_free(c->target_hosts);
    lb_free(c->targets);
    lb_free(c->name);
    lb_free(c->method);
    lb_free(c->host);
    lb_free(c->nodes);
    lb_free(c);
}

void app_http_client_stats(const app_http_client_t *c, app_http_client_stats_t *out)
{
    *out = c->st;
}

const app_http_client_opts_t *app_http_client_opts(const app_http_client_t *c) { return &c->o; }
size_t app_http_client_node_count(const app_http_client_t *c) { return c->n; }

net_node_t *app_http_client_node(const app_http_client_t *c, size_t i)
{
    assert(i < c->n);
    return c->nodes[i].node;
}

const app_req_spec_t *app_http_client_kinds(const app_http_client_t *c, size_t *n)
{
    *n = c->n_specs;
    return c->specs;
}

char *app_http_client_kind_stream(const app_http_client_t *c, size_t i)
{
    char *s = app_http_client_stream(c, i);
    char *k = lb_sprintf("%s/kinds", s);
    lb_free(s);
    return k;
}

char *app_http_client_stream(const app_http_client_t *c, size_t i)
{
    return c->n == 1 ? lb_sprintf("traffic:%s", c->name)
                     : lb_sprintf("traffic:%s:%s", c->name, c->nodes[i].node->name);
}

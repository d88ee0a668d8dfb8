/* build.c -- turns one variant's model into a live simulation: a fresh sim, net and
 * metrics; an observer that counts drops ("drops", "drops.<reason>") and prints traced
 * flows; node elements, links and routes, cloud elements, apps, then traffic, each through
 * the registry's build function and a build_ctx_t. Also running and checking a run. */
#include <assert.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include "scenario_int.h"
#include "explain.h"
#include "netfilter.h"

/* Metrics bucket width (DESIGN: per-second series) and how often (in events) sim_run
 * calls the progress hook, which then looks at the wall clock. */
#define RUN_BUCKET SIM_S
#define RUN_PROGRESS_EVENTS 65536
#define RUN_PROGRESS_WALL_NS 1000000000LL

/* Set from a signal handler (SIGINT/SIGTERM): loading, building and runs stop at their
 * next check. */
static volatile sig_atomic_t stop_requested;

typedef struct named { char *name, *kind; void *obj; } named_t;
typedef struct on_free { void (*fn)(void *); void *obj; } on_free_t;
typedef struct drop_name { const char *reason; char *counter; } drop_name_t;
/* Which element created the network's nodes [from, to) (node ids are creation order). */
typedef struct origin { const scn_elem_t *e; size_t from, to; } origin_t;

struct build_ctx {
    scn_run_t *run;
    sim_t *sim;
    net_t *net;
    metrics_t *metrics;
    const scn_model_t *model;
    scn_diag_t *diag;
    bool failed;
    FILE *warn;
    LB_VEC(named_t) objs;
    lb_index_t obj_index;           /* hash of (name, kind) -> objs position */
    LB_VEC(on_free_t) on_free;
    LB_VEC(net_node_t **) results;  /* arrays handed out by build_nodes */
    LB_VEC(origin_t) origins;       /* built elements; the last one may be in progress */
};

struct scn_run {
    scn_t *scn;
    size_t variant;
    char *variant_name;
    scn_model_t *model;             /* one reference held */
    build_ctx_t ctx;
    sim_t *sim;
    net_t *net;
    metrics_t *metrics;
    LB_VEC(drop_name_t) drop_names;
    explain_t *explain;             /* causal notes for the failure chains */
    scn_sink_t sinks[SCN_MAX_SINKS];
    size_t n_sinks;
    bool complete;
    char *mode, *bindings;          /* played by another executor (NULL: simulated) */
    sim_time_t played_until;
    FILE *trace_out;
    uint64_t *status_counts;        /* per expectation (ST_STATUS_RATIO), via the record hook */
    void (*progress)(double, void *);
    void *progress_data;
    int64_t last_wall;
};

/* ---- build context API ----------------------------------------------------------------------- */

sim_t *build_sim(build_ctx_t *ctx) { return ctx->sim; }
net_t *build_net(build_ctx_t *ctx) { return ctx->net; }
metrics_t *build_metrics(build_ctx_t *ctx) { return ctx->metrics; }
explain_t *build_explain(build_ctx_t *ctx) { return ctx->run->explain; }

void *build_get_ref(build_ctx_t *ctx, const elem_val_t *ref, const char *kind,
                    const char *type, const char *name)
{
    void *obj = build_get(ctx, ref->u.s, kind);
    if (!obj)
        build_error(ctx, ref->pos, "%s '%s': '%s' is not a %s element defined before it",
                    type, name, ref->u.s, kind);
    return obj;
}

typedef struct addrs { size_t n; uint32_t v[]; } addrs_t;

void build_put_addrs(build_ctx_t *ctx, const char *name, const uint32_t *v, size_t n)
{
    addrs_t *a = lb_malloc(sizeof *a + n * sizeof *v);
    a->n = n;
    memcpy(a->v, v, n * sizeof *v);
    build_on_free(ctx, lb_free, a);
    build_put(ctx, name, "addrs", a);
}

/* The addresses element `name` published: count, up to max into out. */
static size_t published(build_ctx_t *ctx, const char *name, uint32_t *out, size_t max)
{
    const addrs_t *a = build_get(ctx, name, "addrs");
    if (!a) return 0;
    for (size_t i = 0; i < a->n && i < max; i++) out[i] = a->v[i];
    return a->n;
}

size_t build_addrs(build_ctx_t *ctx, const char *ref, uint32_t *out, size_t max)
{
    uint32_t ip;
    if (lb_ip_parse(ref, &ip) == 0) {
        if (max) out[0] = ip;
        return 1;
    }
    return published(ctx, ref, out, max);
}
sim_time_t build_duration(build_ctx_t *ctx) { return ctx->model->duration; }
const scn_model_t *build_model(build_ctx_t *ctx) { return ctx->model; }
const k8s_objects_t *build_k8s(build_ctx_t *ctx)
{
    return ctx->model->kube ? manifests_objects(ctx->model->kube) : NULL;
}

int build_error(build_ctx_t *ctx, elem_pos_t pos, const char *fmt, ...)
{
    if (pos.line <= 0 && ctx->origins.n)    /* a default value: the element being built */
        pos = ctx->origins.v[ctx->origins.n - 1].e->pos;
    if (!ctx->failed) {
        va_list ap;
        va_start(ap, fmt);
        diag_vset(ctx->diag, pos, LB_EINVAL, fmt, ap);
        va_end(ap);
        ctx->failed = true;
    }
    return LB_EINVAL;
}

void build_warn(build_ctx_t *ctx, elem_pos_t pos, const char *fmt, ...)
{
    if (!ctx->warn) return;
    va_list ap;
    va_start(ap, fmt);
    if (pos.line > 0) fprintf(ctx->warn, "%s:%d:%d: warning: ", pos.file, pos.line, pos.col);
    else fprintf(ctx->warn, "%s: warning: ", pos.file ? pos.file : "<scenario>");
    vfprintf(ctx->warn, fmt, ap);
    fputc('\n', ctx->warn);
    va_end(ap);
}

static uint64_t obj_hash(const char *name, const char *kind)
{
    return lb_hash_str(name) ^ lb_mix64(lb_hash_str(kind));
}

static named_t *obj_find(build_ctx_t *ctx, const char *name, const char *kind)
{
    uint64_t h = obj_hash(name, kind);
    for (size_t it, i = lb_index_first(&ctx->obj_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&ctx->obj_index, h, &it))
        if (strcmp(ctx->objs.v[i].name, name) == 0 && strcmp(ctx->objs.v[i].kind, kind) == 0)
            return &ctx->objs.v[i];
    return NULL;
}

void build_put(build_ctx_t *ctx, const char *name, const char *kind, void *obj)
{
    named_t *o = obj_find(ctx, name, kind);
    if (o) {
        o->obj = obj;
        return;
    }
    named_t n = { lb_strdup(name), lb_strdup(kind), obj };
    lb_vec_push(&ctx->objs, n);
    lb_index_add(&ctx->obj_index, obj_hash(name, kind), ctx->objs.n - 1);
}

void *build_get(build_ctx_t *ctx, const char *name, const char *kind)
{
    named_t *o = obj_find(ctx, name, kind);
    return o ? o->obj : NULL;
}

size_t build_nodes(build_ctx_t *ctx, const char *ref, net_node_t ***out)
{
    LB_VEC(net_node_t *) v = { 0 };
    net_node_t *n = net_node_find(ctx->net, ref);
    const scn_elem_t *g = model_elem(ctx->model, ELEM_NODE, ref);
    if (n) {
        lb_vec_push(&v, n);
    } else if (g && g->group) {
        for (int k = 0; k < g->count; k++) {
            char nm[300];
            snprintf(nm, sizeof nm, "%s%d", g->name, k);
            if ((n = net_node_find(ctx->net, nm))) lb_vec_push(&v, n);
        }
    } else if (strpbrk(ref, "*?[")) {
        for (size_t i = 0; i < net_node_count(ctx->net); i++) {
            n = net_node_at(ctx->net, i);
            if (fnmatch(ref, n->name, 0) == 0) lb_vec_push(&v, n);
        }
    }
    lb_vec_reserve(&v, 1);
    lb_vec_push(&ctx->results, v.v);
    *out = v.v;
    return v.n;
}

/* ---- where names and addresses came from (collision errors name both definitions) ---- */

static void origin_elem(const scn_elem_t *e, char *buf, size_t n)
{
    snprintf(buf, n, "%s '%s' (%s:%d:%d)", e->type->name, e->name, e->pos.file, e->pos.line,
             e->pos.col);
}

void build_origin(build_ctx_t *ctx, const char *owner, char *buf, size_t n)
{
    net_node_t *nd = net_node_find(ctx->net, owner);
    for (size_t i = 0; i < ctx->origins.n; i++) {
        const origin_t *o = &ctx->origins.v[i];
        size_t to = i + 1 == ctx->origins.n ? net_node_count(ctx->net) : o->to;
        bool made = nd && nd->id >= o->from && nd->id < to;
        if (!made && (nd || strcmp(o->e->name, owner) != 0)) continue;
        char el[400];
        origin_elem(o->e, el, sizeof el);
        if (made && strcmp(o->e->name, owner) != 0) snprintf(buf, n, "node '%s' of %s", owner, el);
        else snprintf(buf, n, "%s", el);
        return;
    }
    snprintf(buf, n, "'%s'", owner);
}

int build_check_name(build_ctx_t *ctx, elem_pos_t pos, const char *what, const char *name)
{
    if (!net_node_find(ctx->net, name)) return 0;
    char first[512];
    build_origin(ctx, name, first, sizeof first);
    build_error(ctx, pos, "%s: node name '%s' is already taken by %s; expected unique node "
                "names", what, name, first);
    return LB_EEXIST;
}

int build_check_addr(build_ctx_t *ctx, elem_pos_t pos, const char *what, net_fabric_t *fab,
                     uint32_t prefix, int plen)
{
    uint32_t at = 0;
    int at_plen = 32;
    const char *holder = net_fabric_holder(fab, prefix, plen, &at, &at_plen);
    if (!holder) return 0;
    char first[512], a[16], b[24];
    build_origin(ctx, holder, first, sizeof first);
    lb_ip_str(prefix, a);
    lb_ip_str(at, b);
    if (at_plen < 32) snprintf(b + strlen(b), sizeof b - strlen(b), "/%d", at_plen);
    const char *fn = net_fabric_name(fab);
    if (plen == 32)
        build_error(ctx, pos, "%s %s is already used in vnet '%s' by %s; expected an address "
                    "nothing else in '%s' has", what, a, fn, first, fn);
    else
        build_error(ctx, pos, "%s %s/%d overlaps %s in vnet '%s', used by %s; expected a range "
                    "nothing else in '%s' uses", what, a, plen, b, fn, first, fn);
    return LB_EEXIST;
}

void build_on_free(build_ctx_t *ctx, void (*fn)(void *obj), void *obj)
{
    on_free_t f = { fn, obj };
    lb_vec_push(&ctx->on_free, f);
}

/* ---- observer ----------------------------------------------------------------------------------- */

static void obs_drop(void *data, const net_node_t *where, const pkt_t *p, const char *reason,
                     const char *detail)
{
    scn_run_t *r = data;
    for (size_t i = 0; i < r->n_sinks; i++)
        if (r->sinks[i].drop)
            r->sinks[i].drop(r->sinks[i].data, sim_now(r->sim), where ? where->name : "network",
                             p, reason, detail);
    if (r->explain && p->flow) {
        /* the element that dropped it: the node, else the detail's "NAME:" prefix, or
         * "NAME/RULE" for details of the form "NAME: rule RULE: ..." (load balancers) */
        char owner[128] = "";
        if (where) snprintf(owner, sizeof owner, "%s", where->name);
        else if (detail) {
            size_t n = strcspn(detail, ":");
            if (n < 64 && detail[n] == ':') {
                memcpy(owner, detail, n);
                owner[n] = '\0';
                if (strncmp(detail + n, ": rule ", 7) == 0) {
                    const char *rule = detail + n + 7;
                    size_t k = strcspn(rule, ":");
                    if (rule[k] == ':' && k < 60) {
                        owner[n] = '/';
                        memcpy(owner + n + 1, rule, k);
                        owner[n + 1 + k] = '\0';
                    }
                }
            }
        }
        char ps[160];
        pkt_str(p, ps, sizeof ps);
        char *seq = strstr(ps, " seq=");        /* the addresses and flags say enough */
        if (seq) *seq = '\0';
        uint64_t cause = explain_state(r->explain, owner);
        explain_note(r->explain, owner[0] ? owner : "network", p->flow, cause,
                     "dropped %s (%s)%s%s", ps, reason, cause ? "" : ": ",
                     cause ? "" : (detail ? detail : ""));
    }
    sim_time_t t = sim_now(r->sim);
    /* reason slugs are static strings: cache their counter names (pointer, then text) */
    const char *counter = NULL;
    for (size_t i = 0; i < r->drop_names.n && !counter; i++)
        if (r->drop_names.v[i].reason == reason) counter = r->drop_names.v[i].counter;
    for (size_t i = 0; i < r->drop_names.n && !counter; i++)
        if (strcmp(r->drop_names.v[i].counter + 6, reason) == 0) counter = r->drop_names.v[i].counter;
    if (!counter) {
        drop_name_t dn = { reason, lb_sprintf("drops.%s", reason) };
        lb_vec_push(&r->drop_names, dn);
        counter = dn.counter;
    }
    metrics_count(r->metrics, "drops", t, 1);
    metrics_count(r->metrics, counter, t, 1);
}

static void obs_trace(void *data, sim_time_t t, uint64_t flow, const char *where,
                      const char *text);
static void obs_note(void *data, const char *where, uint64_t flow, const char *text);

static void obs_capture(void *data, sim_time_t t, const char *where, const pkt_t *p)
{
    scn_run_t *r = data;
    for (size_t i = 0; i < r->n_sinks; i++)
        if (r->sinks[i].packet) r->sinks[i].packet(r->sinks[i].data, t, where, p);
}

int scn_run_add_sink(scn_run_t *r, const scn_sink_t *sink)
{
    if (r->n_sinks == SCN_MAX_SINKS) return LB_ENOMEM;
    if (sink->m.request || sink->m.probe || sink->m.health) {
        int rc = metrics_add_hooks(r->metrics, &sink->m);
        if (rc) return rc;                  /* nothing registered */
    }
    r->sinks[r->n_sinks++] = *sink;
    if (sink->packet) {
        net_observer_t obs = { obs_drop, obs_trace, obs_capture, obs_note, r };
        net_set_observer(r->net, &obs);
    }
    return 0;
}

size_t scn_run_remove_sink(scn_run_t *r, const void *data)
{
    size_t k = 0;
    bool packets = false;
    for (size_t i = 0; i < r->n_sinks; i++)
        if (r->sinks[i].data != data) {
            packets |= r->sinks[i].packet != NULL;
            r->sinks[k++] = r->sinks[i];
        }
    size_t removed = r->n_sinks - k;
    r->n_sinks = k;
    metrics_remove_hooks(r->metrics, data);
    if (!packets) {                         /* no packet sink left: stop the per-hop calls */
        net_observer_t obs = { obs_drop, obs_trace, NULL, obs_note, r };
        net_set_observer(r->net, &obs);
    }
    return removed;
}

void scn_run_stop(scn_run_t *r) { sim_stop(r->sim); }
bool scn_run_complete(const scn_run_t *r) { return r->complete; }
sim_time_t scn_run_end_time(const scn_run_t *r) { return r->mode ? r->played_until : sim_now(r->sim); }
const char *scn_run_mode(const scn_run_t *r) { return r->mode ? r->mode : "sim"; }
const char *scn_run_bindings(const scn_run_t *r) { return r->bindings; }
scn_t *scn_run_scenario(const scn_run_t *r) { return r->scn; }

void scn_run_set_played(scn_run_t *r, const char *mode, const char *bindings,
                        sim_time_t t_end, bool complete)
{
    lb_free(r->mode);
    lb_free(r->bindings);
    r->mode = lb_strdup(mode);
    r->bindings = bindings ? lb_strdup(bindings) : NULL;
    r->played_until = t_end;
    r->complete = complete;
}

static void obs_note(void *data, const char *where, uint64_t flow, const char *text)
{
    scn_run_t *r = data;
    explain_note(r->explain, where, flow, explain_state(r->explain, where), "%s", text);
}

static void obs_trace(void *data, sim_time_t t, uint64_t flow, const char *where,
                      const char *text)
{
    (void)flow;
    scn_run_t *r = data;
    if (!r->trace_out) return;
    fprintf(r->trace_out, "  %lld.%09llds  %s  %s\n", (long long)(t / SIM_S),
            (long long)(t % SIM_S), where, text);
}

/* Window membership exactly as metrics.c counts it: by the bucket of the start time
 * (past the end: the last bucket); [from, to) selects buckets [ceil(from/w), ceil(to/w)),
 * and a `to` at or past the end selects through the last bucket. */
static bool in_window(const metrics_t *m, sim_time_t t, sim_time_t from, sim_time_t to)
{
    sim_time_t w = metrics_bucket_width(m);
    int64_t nb = (int64_t)metrics_bucket_count(m);
    int64_t b = t / w;
    if (b >= nb) b = nb - 1;
    int64_t lo = (from + w - 1) / w, hi = (to + w - 1) / w;
    if (hi >= nb) hi = nb;
    return b >= lo && b < hi;
}

static void record_hook(void *data, const m_request_t *q)
{
    scn_run_t *r = data;
    for (size_t i = 0; i < r->model->expects.n; i++) {
        const scn_expect_t *e = &r->model->expects.v[i];
        if (e->stat == ST_STATUS_RATIO ? q->status != e->status
                                       : !expect_response_matches(e, q)) continue;
        if (!in_window(r->metrics, q->t_start, e->from, e->to < 0 ? r->model->duration : e->to))
            continue;
        if (e->source && q->source != metrics_source_find(r->metrics, e->source)) continue;
        r->status_counts[i]++;
    }
}

/* ---- runs ---------------------------------------------------------------------------------------- */

/* Teardown, in this order. Freeing an element may still act on the network -- an HTTP
 * pool aborts its connections, TCP sends an RST for each, a lossy link or a full queue
 * drops it -- and the events that would deliver anything never run. So:
 *   1. the run goes quiet: sinks and metrics hooks are detached (their owners may have
 *      freed them already), the network observer and flow tracing are switched off;
 *      what the teardown sends or drops is counted by the network alone;
 *   2. the elements are freed in the reverse of their build order (build_on_free);
 *   3. then the network (nodes, links, fabrics, the packet pool), the explanation layer,
 *      the metrics and the simulator with its pending events. */
void scn_run_free(scn_run_t *r)
{
    if (!r) return;
    build_ctx_t *ctx = &r->ctx;
    while (r->n_sinks) scn_run_remove_sink(r, r->sinks[r->n_sinks - 1].data);
    if (r->metrics) metrics_remove_hooks(r->metrics, r);   /* record_hook */
    if (r->net) {
        net_trace_flow(r->net, 0);
        net_set_observer(r->net, NULL);
    }
    for (size_t i = ctx->on_free.n; i-- > 0;) ctx->on_free.v[i].fn(ctx->on_free.v[i].obj);
    lb_vec_free(&ctx->on_free);
    for (size_t i = 0; i < ctx->objs.n; i++) {
        lb_free(ctx->objs.v[i].name);
        lb_free(ctx->objs.v[i].kind);
    }
    lb_vec_free(&ctx->objs);
    lb_index_free(&ctx->obj_index);
    for (size_t i = 0; i < ctx->results.n; i++) lb_free(ctx->results.v[i]);
    lb_vec_free(&ctx->results);
    lb_vec_free(&ctx->origins);
    if (r->net) net_free(r->net);
    explain_free(r->explain);
    if (r->metrics) metrics_free(r->metrics);
    if (r->sim) sim_free(r->sim);
    for (size_t i = 0; i < r->drop_names.n; i++) lb_free(r->drop_names.v[i].counter);
    lb_vec_free(&r->drop_names);
    lb_free(r->status_counts);
    model_unref(r->model);
    lb_free(r->mode);
    lb_free(r->bindings);
    lb_free(r->variant_name);
    lb_free(r);
}

bool build_interrupted(build_ctx_t *ctx)
{
    if (!stop_requested) return false;
    if (!ctx->failed) {
        diag_set(ctx->diag, (elem_pos_t){ ctx->model->tree->pos.file, 0, 0 }, LB_EINTR,
                 "interrupted while building variant '%s'", ctx->run->variant_name);
        ctx->failed = true;
    }
    return true;
}

static int build_section(build_ctx_t *ctx, elem_section_t sec)
{
    const scn_model_t *m = ctx->model;
    for (size_t i = 0; i < m->elems[sec].n; i++) {
        const scn_elem_t *e = &m->elems[sec].v[i];
        if (build_interrupted(ctx)) return LB_EINTR;
        origin_t o = { e, net_node_count(ctx->net), 0 };
        lb_vec_push(&ctx->origins, o);
        int rc = e->type->build(ctx, e->name, e->cfg);
        ctx->origins.v[ctx->origins.n - 1].to = net_node_count(ctx->net);
        if (rc < 0 || ctx->failed) {
            if (!ctx->failed)
                build_error(ctx, e->pos, "%s '%s' (%s) could not be built: %s",
                            sec == ELEM_NODE ? "node" : sec == ELEM_APP ? "app"
                            : sec == ELEM_TRAFFIC ? "traffic" : "cloud element",
                            e->name, e->type->name, lb_strerror(rc));
            return LB_EINVAL;
        }
    }
    return 0;
}

int scn_run_new(scn_t *s, size_t v, uint64_t seed, scn_run_t **out, scn_diag_t *diag)
{
    if (v >= scn_variant_count(s))
        return diag_set(diag, (elem_pos_t){ scn_file(s), 0, 0 }, LB_EINVAL,
                        "no variant number %zu; the scenario has %zu", v, scn_variant_count(s));
    scn_warnings_flush(s);      /* load warnings, once, before the first run's own */
    scn_run_t *r = lb_calloc(1, sizeof *r);
    r->scn = s;
    r->variant = v;
    r->variant_name = lb_strdup(scn_variant_name(s, v));
    r->model = scn_variant_model(s, v);
    r->model->refs++;
    r->sim = sim_new(seed);
    r->net = net_new(r->sim);
    net_set_all_links(r->net, &r->model->all_links);
    r->explain = explain_new(r->sim);
    r->metrics = metrics_new(RUN_BUCKET, r->model->duration);
    r->status_counts = lb_calloc(r->model->expects.n + 1, sizeof *r->status_counts);
    scn_diag_t local;
    build_ctx_t *ctx = &r->ctx;
    ctx->run = r;
    ctx->sim = r->sim;
    ctx->net = r->net;
    ctx->metrics = r->metrics;
    ctx->model = r->model;
    ctx->diag = diag ? diag : &local;
    ctx->warn = scn_warn_stream(s);
    net_observer_t obs = { obs_drop, obs_trace, NULL, obs_note, r };
    net_set_observer(r->net, &obs);
    bool status_hook = false;
    for (size_t i = 0; i < r->model->expects.n; i++) {
        int st = r->model->expects.v[i].stat;
        status_hook |= st == ST_STATUS_RATIO || st == ST_BODY_MATCH || st == ST_HEADER_MATCH;
        if (st == ST_BODY_MATCH) metrics_want(r->metrics, M_WANT_BODY);
        if (st == ST_HEADER_MATCH) metrics_want(r->metrics, M_WANT_HEADERS);
    }
    if (status_hook) metrics_set_record_hook(r->metrics, record_hook, r);

    int rc = build_section(ctx, ELEM_NODE);
    if (rc == 0) rc = topology_build_links(ctx, r->model);
    if (rc == 0 && ctx->failed) rc = LB_EINVAL;
    if (rc == 0) rc = build_section(ctx, ELEM_CLOUD);
    if (rc == 0) rc = build_section(ctx, ELEM_APP);
    if (rc == 0) rc = build_section(ctx, ELEM_TRAFFIC);
    if (rc == 0 && build_interrupted(ctx)) rc = LB_EINTR;
    if (rc < 0) {
        /* whatever failed while a stop was requested may have failed because of it */
        if (stop_requested && diag) {
            build_interrupted(ctx);
            diag_set(diag, (elem_pos_t){ scn_file(s), 0, 0 }, LB_EINTR, "interrupted while "
                     "building variant '%s'", r->variant_name);
        }
        scn_run_free(r);
        return stop_requested ? LB_EINTR : LB_EINVAL;
    }
    *out = r;
    return 0;
}

void *scn_run_object(scn_run_t *r, const char *kind, size_t i, const char **name)
{
    for (size_t k = 0; k < r->ctx.objs.n; k++)
        if (strcmp(r->ctx.objs.v[k].kind, kind) == 0 && i-- == 0) {
            if (name) *name = r->ctx.objs.v[k].name;
            return r->ctx.objs.v[k].obj;
        }
    return NULL;
}

size_t scn_run_addrs(scn_run_t *r, const char *name, uint32_t *out, size_t max)
{
    return published(&r->ctx, name, out, max);
}

sim_t *scn_run_sim(scn_run_t *r) { return r->sim; }
explain_t *scn_run_explain(scn_run_t *r) { return r->explain; }
net_t *scn_run_net(scn_run_t *r) { return r->net; }
metrics_t *scn_run_metrics(scn_run_t *r) { return r->metrics; }
const char *scn_run_variant(const scn_run_t *r) { return r->variant_name; }
sim_time_t scn_run_duration(const scn_run_t *r) { return r->model->duration; }
net_node_t *scn_run_node(scn_run_t *r, const char *name) { return net_node_find(r->net, name); }

/* Element i of the run in build order: sections in the order scn_run_new builds them. */
static const scn_elem_t *run_element(const scn_run_t *r, size_t i)
{
    static const elem_section_t order[] = { ELEM_NODE, ELEM_CLOUD, ELEM_APP, ELEM_TRAFFIC };
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        size_t n = r->model->elems[order[k]].n;
        if (i < n) return &r->model->elems[order[k]].v[i];
        i -= n;
    }
    return NULL;
}

size_t scn_run_element_count(const scn_run_t *r)
{
    size_t n = 0;
    for (int k = 0; k < ELEM_KIND_COUNT; k++) n += r->model->elems[k].n;
    return n;
}
const char *scn_run_element_name(const scn_run_t *r, size_t i) { return run_element(r, i)->name; }
const elem_type_t *scn_run_element_type(const scn_run_t *r, size_t i) { return run_element(r, i)->type; }
const elem_cfg_t *scn_run_element_cfg(const scn_run_t *r, size_t i) { return run_element(r, i)->cfg; }
void scn_run_set_trace(scn_run_t *r, uint64_t flow, FILE *out)
{
    r->trace_out = out;
    net_trace_flow(r->net, out ? flow : 0);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);     /* progress display only, never results */
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void scn_request_stop(void) { stop_requested = 1; }
bool scn_stop_requested(void) { return stop_requested != 0; }
bool build_stop_requested(void) { return stop_requested != 0; }

static void progress_cb(sim_t *sim, void *data)
{
    scn_run_t *r = data;
    if (stop_requested) {
        sim_stop(sim);
        return;
    }
    if (!r->progress) return;
    int64_t now = wall_ns();
    if (now - r->last_wall < RUN_PROGRESS_WALL_NS) return;
    r->last_wall = now;
    r->progress((double)sim_now(sim) / (double)r->model->duration, r->progress_data);
}

/* Rules per new connection as counters for expectations, recorded once at the end of the
 * run (docs/SCENARIO-FORMAT.md "Counters"): over the nodes in iptables mode and over those
 * with an nftables ruleset, the rounded mean and the connections sampled. */
static void walk_counters(scn_run_t *r)
{
    static const struct { bool nft; const char *conns, *mean; } kinds[] = {
        { false, "iptables.new_connections", "iptables.rules_per_new_connection" },
        { true, "nftables.new_connections", "nftables.rules_per_new_connection" },
    };
    sim_time_t t = sim_now(r->sim);
    for (size_t i = 0; i < 2; i++) {
        nf_walk_summary_t ws;
        nf_walk_net_nft(r->net, kinds[i].nft, &ws);
        if (!ws.conns) continue;
        metrics_count(r->metrics, kinds[i].conns, t, (int64_t)ws.conns);
        metrics_count(r->metrics, kinds[i].mean, t, (int64_t)llround(ws.mean));
    }
}

int scn_run_execute(scn_run_t *r, void (*progress)(double frac, void *data), void *data)
{
    r->progress = progress;
    r->progress_data = data;
    r->last_wall = wall_ns();
    sim_set_progress(r->sim, RUN_PROGRESS_EVENTS, progress_cb, r);    /* also: stop checks */
    if (!stop_requested) sim_run(r->sim, r->model->duration);
    sim_set_progress(r->sim, 0, NULL, NULL);
    r->complete = !stop_requested && sim_now(r->sim) >= r->model->duration;
    walk_counters(r);
    if (progress && r->complete) progress(1.0, data);
    return 0;
}

size_t scn_run_check(scn_run_t *r, scn_verdict_t **out)
{
    size_t n = r->model->expects.n;
    scn_verdict_t *v = lb_calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        expect_eval(&r->model->expects.v[i], r->metrics, r->model->duration, r->status_counts[i],
                    &v[i]);
        v[i].variant = scn_run_variant(r);
    }
    *out = v;
    return n;
}

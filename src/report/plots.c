/* plots.c -- the series behind the plots (from a run's sink and metrics) and the plots: one
 * gnuplot script, data inline as $blocks, piped to a gnuplot child that writes PNG and SVG.
 * Safety rule: a string from a scenario reaches gnuplot only inside a single-quoted string
 * (gp_str), where gnuplot interprets nothing. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cJSON.h>
#include "plots.h"

/* ---- the series ------------------------------------------------------------------------- */
rep_plot_t *rep_plot_new(sim_time_t width, size_t n_buckets, sim_time_t end)
{
    assert(width > 0);
    rep_plot_t *p = lb_calloc(1, sizeof *p);
    p->width = width;
    p->n_buckets = n_buckets;
    p->end = end;
    p->complete = true;
    return p;
}

void rep_plot_free(void *ptr)
{
    rep_plot_t *p = ptr;
    if (!p) return;
    for (size_t i = 0; i < p->sources.n; i++) {
        lb_free(p->sources.v[i].name);
        lb_free(p->sources.v[i].counts);
    }
    lb_vec_free(&p->sources);
    lb_vec_free(&p->cdf);
    for (size_t i = 0; i < p->health.n; i++) {
        lb_free(p->health.v[i].checker);
        lb_free(p->health.v[i].target);
        lb_vec_free(&p->health.v[i].changes);
    }
    lb_vec_free(&p->health);
    lb_free(p);
}

int rep_plot_source(rep_plot_t *p, const char *name)
{
    for (size_t i = 0; i < p->sources.n; i++)
        if (strcmp(p->sources.v[i].name, name) == 0) return (int)i;
    rep_plot_source_t s = {
        .name = lb_strdup(name),
        .counts = lb_calloc(p->n_buckets ? p->n_buckets * M_CLASS_COUNT : 1, sizeof(uint64_t)),
    };
    lb_vec_push(&p->sources, s);
    return (int)p->sources.n - 1;
}

static int health_state(const char *s)
{
    if (!s) return REP_HEALTH_OTHER;
    if (!strcmp(s, "initial")) return REP_HEALTH_INITIAL;
    if (!strcmp(s, "up")) return REP_HEALTH_UP;
    if (!strcmp(s, "down")) return REP_HEALTH_DOWN;
    return REP_HEALTH_OTHER;
}

void rep_plot_health(rep_plot_t *p, const char *checker, const char *target, sim_time_t t,
                     const char *from, const char *to)
{
    if (!checker) checker = "";
    if (!target) target = "";
    if (p->n_changes >= REP_PLOT_MAX_CHANGES) {
        p->health_truncated = true;
        return;
    }
    rep_health_series_t *hs = NULL;
    for (size_t i = p->health.n; i-- > 0;)          /* recent series first */
        if (!strcmp(p->health.v[i].checker, checker) && !strcmp(p->health.v[i].target, target)) {
            hs = &p->health.v[i];
            break;
        }
    if (!hs) {
        rep_health_series_t ns = {.checker = lb_strdup(checker), .target = lb_strdup(target)};
        lb_vec_push(&p->health, ns);
        hs = &p->health.v[p->health.n - 1];
        if (from && t > 0) {                /* the state it had since the start */
            rep_health_change_t c0 = {0, health_state(from)};
            lb_vec_push(&hs->changes, c0);
            p->n_changes++;
        }
    }
    rep_health_change_t c = {t, health_state(to)};
    lb_vec_push(&hs->changes, c);
    p->n_changes++;
}

/* ---- serialising (--jobs workers) ------------------------------------------------------
 * {"width":ns,"buckets":n,"end":ns,"complete":b,"truncated":b,
 *  "sources":[{"name":s,"counts":[[bucket,class,count],...]}],   (non-zero cells only)
 *  "cdf":[[latency_s,q],...], "health":[{"checker":s,"target":s,"t":[ns..],"s":[state..]}]}
 * Integers are written as integers, doubles with 17 digits: both read back exactly
 * (integers below 2^53: 104 days in ns). */
/* Upper bound on source x bucket cells accepted from text (80 bytes each): against
 * garbage asking for gigabytes; 100 sources over a day of 1 s buckets is 8.64 M. */
#define REP_PLOT_MAX_CELLS 10000000u

/* Numbers as written by us, not cJSON's "%1.15g then close enough": exact round trips. */
static cJSON *jint(int64_t x)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)x);
    return cJSON_CreateRaw(b);
}

static cJSON *jdbl(double x)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", isfinite(x) ? x : 0);
    return cJSON_CreateRaw(b);
}

static cJSON *jarr(cJSON *a, cJSON *b, cJSON *c)
{
    cJSON *x = cJSON_CreateArray();
    cJSON_AddItemToArray(x, a);
    cJSON_AddItemToArray(x, b);
    if (c) cJSON_AddItemToArray(x, c);
    return x;
}

char *rep_plot_serialize(const rep_plot_t *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "width", jint(p->width));
    cJSON_AddItemToObject(o, "buckets", jint((int64_t)p->n_buckets));
    cJSON_AddItemToObject(o, "end", jint(p->end));
    cJSON_AddBoolToObject(o, "complete", p->complete);
    cJSON_AddBoolToObject(o, "truncated", p->health_truncated);
    cJSON *srcs = cJSON_AddArrayToObject(o, "sources");
    for (size_t i = 0; i < p->sources.n; i++) {
        cJSON *so = cJSON_CreateObject();
        cJSON_AddStringToObject(so, "name", p->sources.v[i].name);
        cJSON *cs = cJSON_AddArrayToObject(so, "counts");
        for (size_t b = 0; b < p->n_buckets; b++)
            for (int c = 0; c < M_CLASS_COUNT; c++) {
                uint64_t k = p->sources.v[i].counts[b * M_CLASS_COUNT + c];
                if (!k) continue;
                cJSON_AddItemToArray(cs, jarr(jint((int64_t)b), jint(c), jint((int64_t)k)));
            }
        cJSON_AddItemToArray(srcs, so);
    }
    cJSON *cdf = cJSON_AddArrayToObject(o, "cdf");
    for (size_t k = 0; k < p->cdf.n; k++)
        cJSON_AddItemToArray(cdf, jarr(jdbl(p->cdf.v[k].latency_s), jdbl(p->cdf.v[k].q), NULL));
    cJSON *hl = cJSON_AddArrayToObject(o, "health");
    for (size_t i = 0; i < p->health.n; i++) {
        const rep_health_series_t *hs = &p->health.v[i];
        cJSON *ho = cJSON_CreateObject();
        cJSON_AddStringToObject(ho, "checker", hs->checker);
        cJSON_AddStringToObject(ho, "target", hs->target);
        cJSON *ts = cJSON_AddArrayToObject(ho, "t"), *ss = cJSON_AddArrayToObject(ho, "s");
        for (size_t k = 0; k < hs->changes.n; k++) {
            cJSON_AddItemToArray(ts, jint(hs->changes.v[k].t));
            cJSON_AddItemToArray(ss, jint(hs->changes.v[k].state));
        }
        cJSON_AddItemToArray(hl, ho);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* A number of o in [lo, hi] (integral when whole), or false. */
static bool get_num(const cJSON *x, double lo, double hi, bool whole, double *out)
{
    if (!cJSON_IsNumber(x)) return false;
    double d = x->valuedouble;
    if (!(d >= lo && d <= hi) || (whole && d != floor(d))) return false;
    *out = d;
    return true;
}

int rep_plot_deserialize(const char *text, rep_plot_t **out)
{
    *out = NULL;
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    if (!o) return LB_EPARSE;
    rep_plot_t *p = NULL;
    const double tmax = 9007199254740992.0;                /* 2^53 */
    double w, nb, end;
    if (!get_num(cJSON_GetObjectItemCaseSensitive(o, "width"), 1, tmax, true, &w) ||
        !get_num(cJSON_GetObjectItemCaseSensitive(o, "buckets"), 0, REP_PLOT_MAX_CELLS, true, &nb) ||
        !get_num(cJSON_GetObjectItemCaseSensitive(o, "end"), 0, tmax, true, &end))
        goto bad;
    p = rep_plot_new((sim_time_t)w, (size_t)nb, (sim_time_t)end);
    p->complete = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "complete"));
    p->health_truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated"));
    const cJSON *x, *srcs = cJSON_GetObjectItemCaseSensitive(o, "sources");
    if (srcs && !cJSON_IsArray(srcs)) goto bad;
    cJSON_ArrayForEach(x, srcs) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(x, "name");
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(x, "counts"), *t;
        if (!cJSON_IsString(name) || !cJSON_IsArray(cs) ||
            (double)(p->sources.n + 1) * (nb ? nb : 1) > REP_PLOT_MAX_CELLS)
            goto bad;
        int si = rep_plot_source(p, name->valuestring);
        cJSON_ArrayForEach(t, cs) {
            double b, c, k;
            if (cJSON_GetArraySize(t) != 3 ||
                !get_num(cJSON_GetArrayItem(t, 0), 0, nb - 1, true, &b) ||
                !get_num(cJSON_GetArrayItem(t, 1), 0, M_CLASS_COUNT - 1, true, &c) ||
                !get_num(cJSON_GetArrayItem(t, 2), 0, tmax, true, &k))
                goto bad;
            p->sources.v[si].counts[(size_t)b * M_CLASS_COUNT + (size_t)c] = (uint64_t)k;
        }
    }
    const cJSON *cdf = cJSON_GetObjectItemCaseSensitive(o, "cdf");
    if (cdf && !cJSON_IsArray(cdf)) goto bad;
    cJSON_ArrayForEach(x, cdf) {
        rep_cdf_point_t pt;
        if (cJSON_GetArraySize(x) != 2 ||
            !get_num(cJSON_GetArrayItem(x, 0), 0, tmax, false, &pt.latency_s) ||
            !get_num(cJSON_GetArrayItem(x, 1), 0, 1, false, &pt.q))
            goto bad;
        lb_vec_push(&p->cdf, pt);
    }
    const cJSON *hl = cJSON_GetObjectItemCaseSensitive(o, "health");
    if (hl && !cJSON_IsArray(hl)) goto bad;
    cJSON_ArrayForEach(x, hl) {
        const cJSON *ck = cJSON_GetObjectItemCaseSensitive(x, "checker");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(x, "target");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(x, "t");
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(x, "s");
        if (!cJSON_IsString(ck) || !cJSON_IsString(tg) || !cJSON_IsArray(ts) ||
            !cJSON_IsArray(ss) || cJSON_GetArraySize(ts) != cJSON_GetArraySize(ss))
            goto bad;
        rep_health_series_t hs = {.checker = lb_strdup(ck->valuestring),
                                  .target = lb_strdup(tg->valuestring)};
        lb_vec_push(&p->health, hs);
        rep_health_series_t *h = &p->health.v[p->health.n - 1];
        for (const cJSON *ti = ts->child, *si = ss->child; ti && si; ti = ti->next, si = si->next) {
            double t, st;
            if (p->n_changes >= REP_PLOT_MAX_CHANGES || !get_num(ti, -tmax, tmax, true, &t) ||
                !get_num(si, 0, REP_HEALTH_OTHER, true, &st))
                goto bad;
            rep_health_change_t c = {(sim_time_t)t, (int)st};
            lb_vec_push(&h->changes, c);
            p->n_changes++;
        }
    }
    cJSON_Delete(o);
    *out = p;
    return 0;
bad:
    cJSON_Delete(o);
    rep_plot_free(p);
    return LB_EPARSE;
}

/* ---- collecting from a run -------------------------------------------------------------
 * The state of an attached run lives in a small list keyed by the run (compared, never
 * hashed), because rep_variant_collect clears the rep_variant_t between attach and
 * collect. A lock, for runs on several threads. */
typedef struct attached {
    const scn_run_t *r;
    rep_plot_t *p;
    struct attached *next;
} attached_t;
static attached_t *g_attached;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* Removes and returns the state of r (NULL: none), its sink detached from r. */
static rep_plot_t *take(scn_run_t *r)
{
    rep_plot_t *p = NULL;
    pthread_mutex_lock(&g_lock);
    for (attached_t **a = &g_attached; *a; a = &(*a)->next)
        if ((*a)->r == r) {
            attached_t *dead = *a;
            p = dead->p;
            *a = dead->next;
            lb_free(dead);
            break;
        }
    pthread_mutex_unlock(&g_lock);
    if (p) scn_run_remove_sink(r, p);
    return p;
}

static void on_health(void *data, const m_health_t *h)
{
    rep_plot_health(data, h->checker, h->target, h->t, h->from, h->to);
}

static rep_plot_t *plot_for_run(scn_run_t *r)
{
    metrics_t *m = scn_run_metrics(r);
    return rep_plot_new(metrics_bucket_width(m), metrics_bucket_count(m), scn_run_duration(r));
}

void rep_plots_attach(scn_run_t *r, rep_variant_t *v)
{
    (void)v;
    rep_plot_free(take(r));                 /* a stale entry of a run freed uncollected */
    rep_plot_t *p = plot_for_run(r);
    scn_sink_t sink = {.m = {.health = on_health, .data = p}};
    if (scn_run_add_sink(r, &sink)) {
        fprintf(stderr, "sim: plots: no free sink slot; health timelines skipped\n");
        rep_plot_free(p);
        return;
    }
    attached_t *a = lb_malloc(sizeof *a);
    a->r = r;
    a->p = p;
    pthread_mutex_lock(&g_lock);
    a->next = g_attached;
    g_attached = a;
    pthread_mutex_unlock(&g_lock);
}

void rep_plots_detach(scn_run_t *r)
{
    rep_plot_free(take(r));
}

/* The latency distribution is sampled at these fractions: every 1/REP_CDF_STEPS, then
 * finer in the tail, where a few slow requests hide. */
#define REP_CDF_STEPS 200
static const double cdf_tail[] = {0.996, 0.997, 0.998, 0.999, 0.9995, 0.9999, 1.0};

static void cdf_add(rep_plot_t *p, sim_time_t lat, double q)
{
    double s = (double)lat / SIM_S;
    /* the same latency again: one vertical step (keep the first point, at q = 0) */
    if (p->cdf.n > 1 && p->cdf.v[p->cdf.n - 1].latency_s == s) {
        p->cdf.v[p->cdf.n - 1].q = q;
        return;
    }
    rep_cdf_point_t pt = {s, q};
    lb_vec_push(&p->cdf, pt);
}

void rep_plot_cdf(rep_plot_t *p, sim_time_t (*quantile)(double q, void *data), void *data)
{
    p->cdf.n = 0;
    for (int k = 0; k < REP_CDF_STEPS; k++) {
        double q = (double)k / REP_CDF_STEPS;
        cdf_add(p, quantile(q, data), q);
    }
    for (size_t k = 0; k < sizeof cdf_tail / sizeof cdf_tail[0]; k++)
        cdf_add(p, quantile(cdf_tail[k], data), cdf_tail[k]);
}

/* Requests that got a response, whatever the status: the CDF's population. */
#define DONE_CLASSES ((1u << M_2XX) | (1u << M_3XX) | (1u << M_4XX) | (1u << M_5XX))

static sim_time_t metrics_q(double q, void *data)
{
    const m_window_t all = {0, SIM_TIME_MAX};
    return metrics_latency_q(data, -1, DONE_CLASSES, q, all);
}

void rep_plots_collect(scn_run_t *r, rep_variant_t *v)
{
    metrics_t *m = scn_run_metrics(r);
    rep_plot_t *p = take(r);
    if (!p) p = plot_for_run(r);
    p->complete = scn_run_complete(r);
    sim_time_t now = scn_run_end_time(r), dur = scn_run_duration(r);
    p->end = p->complete || now > dur ? dur : now;
    size_t nb = metrics_bucket_count(m);
    assert(nb == p->n_buckets);
    for (size_t i = 0; i < metrics_source_count(m); i++) {
        int k = rep_plot_source(p, metrics_source_name(m, (int)i));
        uint64_t *cnt = p->sources.v[k].counts;
        for (size_t b = 0; b < nb; b++)
            for (int c = 0; c < M_CLASS_COUNT; c++)
                cnt[b * M_CLASS_COUNT + c] = metrics_bucket(m, (int)i, b, c);
    }
    const m_window_t all = {0, SIM_TIME_MAX};
    p->cdf.n = 0;
    if (metrics_requests(m, -1, DONE_CLASSES, all)) rep_plot_cdf(p, metrics_q, m);
    if (v->plot && v->plot_free) v->plot_free(v->plot);
    v->plot = p;
    v->plot_free = rep_plot_free;
}

/* ---- which plots ------------------------------------------------------------------------ */
static const char *const how_cdf =
    "One line per variant. For a latency on the horizontal axis (milliseconds, logarithmic "
    "scale), the height of a line is the fraction of that variant's completed requests (any "
    "HTTP status) that took at most that long, from the client's first byte to the full "
    "response. A line further left is faster; a line that reaches the top late has a slow "
    "tail. Requests that never got a response (timeouts, resets, refusals) are not in this "
    "plot: the outcomes plot shows them.";
static const char *const how_outcomes =
    "One panel per variant (and per traffic source when the scenario has several). The "
    "stacked areas show, second by second (by the time each request started), how many "
    "requests per second ended in each outcome: a 2xx success, an HTTP error returned by a "
    "proxy or an application (4xx, 5xx), or a failure without any response (connect "
    "timeout, refused, reset, response timeout, closed). A colour that appears or "
    "disappears marks the moment something broke or recovered.";
static const char *const how_health =
    "Each row is one backend target as one load balancer's health checker sees it: the "
    "checker's name, then the target. Green while the checker counts the target up, red "
    "while it counts it down, grey before its first verdict. Rows are grouped by load "
    "balancer (dashed lines). A load balancer sends new connections only to targets it "
    "considers up; some fail open when every target is down.";
static const char *const how_hops =
    "The path of one request that succeeded, hop by hop: the request on its way to the "
    "application, then the response on its way back to the client. Each bar starts when "
    "the first byte reached one node and ends when it reached the next; the number beside "
    "it is that hop's time in milliseconds. The longest bars are where this request's "
    "latency went.";

/* name with every byte outside [A-Za-z0-9._-] as '_', not starting with '.' */
static void slug(char *out, size_t len, const char *name)
{
    size_t k = 0;
    for (const char *c = name; *c && k + 1 < len && k < 48; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || (*c == '.' && k);
        out[k++] = ok ? *c : '_';
    }
    if (!k && len > 1) out[k++] = '_';
    out[k] = '\0';
}

typedef LB_VEC(rep_plot_file_t) filevec_t;

/* Another entry of the same variant (and grid point) by the same executor (a seed
 * sweep). */
static bool name_repeats(const rep_variant_t *v, size_t n, size_t i)
{
    for (size_t k = 0; k < n; k++)
        if (k != i && v[k].name && v[i].name && rep_variant_same_kind(&v[k], &v[i]))
            return true;
    return false;
}

void rep_plots_label(const rep_variant_t *v, size_t n, size_t i, char *buf, size_t len)
{
    rep_variant_label(v, n, i, buf, len);
    size_t l = strlen(buf);
    if (v[i].plot && ((rep_plot_t *)v[i].plot)->runs > 1 && l < len)
        snprintf(buf + l, len - l, " (%u seeds)", ((rep_plot_t *)v[i].plot)->runs);
    else if (name_repeats(v, n, i) && l < len)
        snprintf(buf + l, len - l, " (seed %llu)", (unsigned long long)v[i].seed);
}

/* ---- a sweep's view: one entry per variant and grid point --------------------------------- */

/* The sum of the plot series of v[idx[0..k)] (runs of one group, the first of them with
 * plot data first): outcome counts added bucket by bucket, latency quantiles averaged
 * point by point (the runs sample the same fractions), the first run's health. */
static rep_plot_t *plot_sum(const rep_variant_t *v, const size_t *idx, size_t k)
{
    const rep_plot_t *p0 = v[idx[0]].plot;
    size_t nb = 0;
    sim_time_t end = 0;
    for (size_t j = 0; j < k; j++) {
        const rep_plot_t *p = v[idx[j]].plot;
        if (p->n_buckets > nb) nb = p->n_buckets;
        if (p->end > end) end = p->end;
    }
    rep_plot_t *q = rep_plot_new(p0->width, nb, end);
    q->runs = (unsigned)k;
    size_t ncdf = 0;
    for (size_t j = 0; j < k; j++) {
        const rep_plot_t *p = v[idx[j]].plot;
        q->complete &= p->complete;
        for (size_t s = 0; s < p->sources.n; s++) {
            int t = rep_plot_source(q, p->sources.v[s].name);
            for (size_t b = 0; b < p->n_buckets * M_CLASS_COUNT; b++)
                q->sources.v[t].counts[b] += p->sources.v[s].counts[b];
        }
        if (!p->cdf.n) continue;
        if (!q->cdf.n) {
            for (size_t c = 0; c < p->cdf.n; c++) lb_vec_push(&q->cdf, p->cdf.v[c]);
            ncdf = 1;
        } else if (p->cdf.n == q->cdf.n) {
            for (size_t c = 0; c < p->cdf.n; c++) q->cdf.v[c].latency_s += p->cdf.v[c].latency_s;
            ncdf++;
        }
    }
    for (size_t c = 0; c < q->cdf.n; c++) q->cdf.v[c].latency_s /= (double)ncdf;
    for (size_t h = 0; h < p0->health.n; h++) {
        const rep_health_series_t *hs = &p0->health.v[h];
        rep_health_series_t c = { lb_strdup(hs->checker), lb_strdup(hs->target), {0} };
        for (size_t j = 0; j < hs->changes.n; j++) lb_vec_push(&c.changes, hs->changes.v[j]);
        lb_vec_push(&q->health, c);
    }
    q->n_changes = p0->n_changes;
    q->health_truncated = p0->health_truncated;
    return q;
}

rep_variant_t *rep_plots_view(const rep_variant_t *v, size_t n, size_t *m)
{
    *m = 0;
    size_t with = 0;
    for (size_t i = 0; i < n; i++) with += v[i].plot != NULL;
    if (with <= REP_PLOTS_PER_RUN_MAX || !rep_seed_stats_apply(v, n)) return NULL;
    rep_seed_group_t *g;
    size_t ng = rep_seed_groups(v, n, &g);
    rep_variant_t *out = lb_calloc(ng, sizeof *out);
    size_t *idx = lb_calloc(n, sizeof *idx);
    for (size_t gi = 0; gi < ng; gi++) {
        const rep_variant_t *f = &v[g[gi].first];
        size_t k = 0;
        for (size_t i = g[gi].first; i < n; i++)
            if (v[i].plot && rep_variant_same_kind(&v[i], f)) idx[k++] = i;
        rep_variant_t *e = &out[(*m)++];
        e->name = lb_strdup(f->name);
        e->point = f->point ? lb_strdup(f->point) : NULL;
        snprintf(e->mode, sizeof e->mode, "%s", f->mode);
        snprintf(e->run_id, sizeof e->run_id, "%s", f->run_id);
        e->seed = f->seed;
        e->complete = f->complete;
        if (k) {
            e->plot = plot_sum(v, idx, k);
            e->plot_free = rep_plot_free;
            const rep_variant_t *h = &v[idx[0]];
            e->seed = h->seed;
            if (h->n_hops) {
                e->hops = lb_calloc(h->n_hops, sizeof *e->hops);
                memcpy(e->hops, h->hops, h->n_hops * sizeof *e->hops);
                e->n_hops = h->n_hops;
            }
            snprintf(e->hops_title, sizeof e->hops_title, "%s", h->hops_title);
        }
    }
    lb_free(idx);
    lb_free(g);
    return out;
}

void rep_plots_view_free(rep_variant_t *view, size_t m)
{
    for (size_t i = 0; view && i < m; i++) rep_variant_free(&view[i]);
    lb_free(view);
}

static void add_file(filevec_t *fs, const char *prefix, const rep_variant_t *v, size_t n,
                     int i, const char *title, const char *how)
{
    rep_plot_file_t f = {.variant = i, .title = title, .how = how};
    if (i < 0) {
        snprintf(f.name, sizeof f.name, "%s", prefix);
    } else {
        char s[64], id[128];
        const char *real = !strcmp(v[i].mode, "real") ? "-real" : "";
        if (v[i].point && v[i].run_id[0])       /* a grid: the run id tells them apart */
            snprintf(id, sizeof id, "%.64s%s-%s", v[i].name, real, v[i].run_id);
        else if (name_repeats(v, n, (size_t)i))
            snprintf(id, sizeof id, "%.64s%s-seed%llu", v[i].name, real,
                     (unsigned long long)v[i].seed);
        else
            snprintf(id, sizeof id, "%s%s", v[i].name ? v[i].name : "", real);
        slug(s, sizeof s, id);
        snprintf(f.name, sizeof f.name, "%s-%s", prefix, s);
        for (int k = 1;; k++) {
            bool dup = false;
            for (size_t j = 0; j < fs->n && !dup; j++) dup = !strcmp(fs->v[j].name, f.name);
            if (!dup) break;
            snprintf(f.name, sizeof f.name, "%s-%s-%d", prefix, s, i + k);
        }
    }
    lb_vec_push(fs, f);
}

size_t rep_plots_files(const rep_variant_t *v, size_t n, rep_plot_file_t **out)
{
    filevec_t fs = {0};
    bool any = false;
    for (size_t i = 0; i < n; i++) any |= v[i].plot != NULL;
    if (any) {
        add_file(&fs, "latency-cdf", v, n, -1, "Latency of completed requests", how_cdf);
        add_file(&fs, "outcomes", v, n, -1, "Client outcomes per second", how_outcomes);
    }
    for (size_t i = 0; i < n; i++) {
        const rep_plot_t *p = v[i].plot;
        if (p && p->health.n)
            add_file(&fs, "health", v, n, (int)i, "Backend health over time", how_health);
        if (v[i].hops && v[i].n_hops >= 2)
            add_file(&fs, "hops", v, n, (int)i, "One successful request, hop by hop", how_hops);
    }
    *out = fs.v;
    return fs.n;
}

/* ---- gnuplot script: strings and colours ------------------------------------------------ */
size_t rep_utf8_char(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    if (c < 0x80) return c ? 1 : 0;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;           /* overlong */
        if (c == 0xed) hi = 0x9f;           /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;           /* past U+10FFFF */
    } else return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xbf) return 0;
    return n;
}

/* Longest label, in characters, before it is cut with "...". */
#define GP_LABEL_MAX 60

/* Writes s as a gnuplot single-quoted string. Inside one gnuplot interprets nothing: no
 * backslash escapes, no `command` or @macro substitution; a quote is written twice. A
 * newline would end the command, so control characters become spaces; bytes that are not
 * UTF-8 become '?' (the SVG must stay valid XML); at most max characters. */
static void gp_str(FILE *f, const char *s, size_t max)
{
    fputc('\'', f);
    size_t chars = 0;
    while (s && *s) {
        if (chars++ == max) {
            fputs("...", f);
            break;
        }
        size_t n = rep_utf8_char(s);
        unsigned char c = (unsigned char)*s;
        if (n == 0) fputc('?', f), n = 1;
        else if (n == 1 && (c < 0x20 || c == 0x7f)) fputc(' ', f);
        else if (n == 1 && c == '\'') fputs("''", f);
        else if (n == 2 && c == 0xc2 && (unsigned char)s[1] < 0xa0) fputc(' ', f);   /* C1 */
        else fwrite(s, 1, n, f);
        s += n;
    }
    fputc('\'', f);
}

/* gp_str of "a: b" (a label of two scenario strings) */
static void gp_str2(FILE *f, const char *a, const char *sep, const char *b)
{
    char *t = lb_sprintf("%s%s%s", a ? a : "", sep, b ? b : "");
    gp_str(f, t, 2 * GP_LABEL_MAX);
    lb_free(t);
}

static const char *const class_colour[M_CLASS_COUNT] = {
    [M_2XX] = "#2ca02c", [M_3XX] = "#17becf", [M_4XX] = "#ff7f0e", [M_5XX] = "#d62728",
    [M_CONNECT_TIMEOUT] = "#9467bd", [M_REFUSED] = "#8c564b", [M_RESET] = "#e377c2",
    [M_RESPONSE_TIMEOUT] = "#bcbd22", [M_CLOSED] = "#7f7f7f", [M_OTHER_ERR] = "#303030",
};
static const char *const class_label[M_CLASS_COUNT] = {
    [M_2XX] = "2xx", [M_3XX] = "3xx", [M_4XX] = "4xx", [M_5XX] = "5xx",
    [M_CONNECT_TIMEOUT] = "connect timeout", [M_REFUSED] = "refused", [M_RESET] = "reset",
    [M_RESPONSE_TIMEOUT] = "response timeout", [M_CLOSED] = "closed",
    [M_OTHER_ERR] = "other error",
};
static const char *const variant_colour[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
};
enum { N_VARIANT_COLOURS = sizeof variant_colour / sizeof variant_colour[0] };
static const unsigned health_rgb[] = {
    [REP_HEALTH_INITIAL] = 0xc7c7c7, [REP_HEALTH_UP] = 0x2ca02c,
    [REP_HEALTH_DOWN] = 0xd62728, [REP_HEALTH_OTHER] = 0xff7f0e,
};
static const char *const health_label[] = {
    [REP_HEALTH_INITIAL] = "not probed yet", [REP_HEALTH_UP] = "up",
    [REP_HEALTH_DOWN] = "down", [REP_HEALTH_OTHER] = "other state",
};

static double sec(sim_time_t t) { return (double)t / SIM_S; }

/* A figure: its data blocks are written first (once), then its commands once per
 * terminal. w, h: pixels. */
typedef struct fig { int w, h; } fig_t;

typedef struct ctx {
    const scn_t *s;
    const rep_variant_t *v;
    size_t n;
    FILE *data;                             /* data blocks */
    FILE *cmds;                             /* the current figure's commands */
} ctx_t;

/* ---- latency CDF ------------------------------------------------------------------------ */
static fig_t fig_cdf(ctx_t *c)
{
    FILE *d = c->data, *f = c->cmds;
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < c->n; i++) {
        const rep_plot_t *p = c->v[i].plot;
        if (!p || !p->cdf.n) continue;
        fprintf(d, "$cdf%zu << EOD\n", i);
        for (size_t k = 0; k < p->cdf.n; k++) {
            double ms = fmax(p->cdf.v[k].latency_s * 1e3, 1e-6);    /* log axis: > 0 */
            lo = fmin(lo, ms);
            hi = fmax(hi, ms);
            fprintf(d, "%.9g %.9g\n", ms, p->cdf.v[k].q);
        }
        fputs("EOD\n", d);
    }
    if (!(hi > 0)) lo = 0.1, hi = 1000;
    lo = pow(10, floor(log10(lo)));
    hi = pow(10, ceil(log10(hi)));
    if (hi <= lo) hi = lo * 10;
    fputs("set title ", f);
    gp_str2(f, scn_name(c->s), ": ", "latency of completed requests (CDF)");
    fprintf(f, "\nset xlabel 'latency (ms, log scale)'\n"
               "set ylabel 'fraction of completed requests'\n"
               "set logscale x 10\nset format x '%%g'\n"
               "set xrange [%.9g:%.9g]\nset yrange [0:1.02]\nset ytics 0.1\n"
               "set grid xtics mxtics ytics lc rgb '#dddddd'\n"
               "set key bottom right box opaque\n", lo, hi);
    fputs("plot ", f);
    size_t lines = 0, total = 0;
    for (size_t i = 0; i < c->n; i++) total += c->v[i].plot != NULL;
    for (size_t i = 0; i < c->n; i++) {
        const rep_plot_t *p = c->v[i].plot;
        if (!p) continue;
        /* earlier lines wider, so a later line on top of one leaves it visible */
        double step = total > 1 ? fmin(2.0, 6.0 / (double)(total - 1)) : 0;
        double lw = 1.5 + step * (double)(total - 1 - lines);
        fputs(lines++ ? ", \\\n     " : "", f);
        const char *colour = variant_colour[i % N_VARIANT_COLOURS];
        char label[256];
        rep_plots_label(c->v, c->n, i, label, sizeof label);
        int dt = (int)(i / N_VARIANT_COLOURS) % 5 + 1;
        if (p->cdf.n) {
            fprintf(f, "$cdf%zu using 1:2 with steps lw %.1f dt %d lc rgb '%s' title ", i, lw, dt,
                    colour);
            gp_str(f, label, GP_LABEL_MAX);
        } else {
            fprintf(f, "NaN with lines lw %.1f dt %d lc rgb '%s' title ", lw, dt, colour);
            gp_str2(f, label, "", " (no completed requests)");
        }
    }
    if (!lines) fputs("NaN notitle", f);
    fputs("\n", f);
    return (fig_t){900, 520};
}

/* ---- outcomes per second ---------------------------------------------------------------- */
/* Columns of the outcome panels: the traffic sources of every variant, in order of first
 * appearance; more than this many are summed into one column. */
#define OUTCOME_MAX_COLUMNS 3

typedef LB_VEC(const char *) names_t;

static void counts_of(const rep_plot_t *p, const char *src, size_t b, uint64_t out[])
{
    memset(out, 0, M_CLASS_COUNT * sizeof out[0]);
    if (b >= p->n_buckets) return;
    for (size_t k = 0; k < p->sources.n; k++)
        if (!src || !strcmp(p->sources.v[k].name, src))
            for (int cl = 0; cl < M_CLASS_COUNT; cl++)
                out[cl] += p->sources.v[k].counts[b * M_CLASS_COUNT + cl];
}

static fig_t fig_outcomes(ctx_t *c)
{
    FILE *d = c->data, *f = c->cmds;
    names_t srcs = {0};
    unsigned seen = 0;                      /* classes with any request */
    size_t rows = 0;
    double xmax = 0;
    size_t panels = 0;                      /* entries with plot data, of which `rows` drawn */
    for (size_t i = 0; i < c->n; i++) {
        const rep_plot_t *p = c->v[i].plot;
        if (!p) continue;
        if (panels++ >= REP_PLOTS_MAX_PANELS) continue;
        rows++;
        xmax = fmax(xmax, sec(p->end));
        for (size_t k = 0; k < p->sources.n; k++) {
            bool have = false;
            for (size_t j = 0; j < srcs.n && !have; j++)
                have = !strcmp(srcs.v[j], p->sources.v[k].name);
            if (!have) lb_vec_push(&srcs, p->sources.v[k].name);
            for (size_t b = 0; b < p->n_buckets; b++)
                for (int cl = 0; cl < M_CLASS_COUNT; cl++)
                    if (p->sources.v[k].counts[b * M_CLASS_COUNT + cl]) seen |= 1u << cl;
        }
    }
    bool summed = srcs.n > OUTCOME_MAX_COLUMNS || srcs.n == 0;
    double ymax_all = 0;
    size_t cols = summed ? 1 : srcs.n;
    if (!(xmax > 0)) xmax = 1;

    fprintf(f, "set multiplot layout %zu,%zu title ", rows, cols);
    char what[160] = "client outcomes per second";
    if (panels > rows)
        snprintf(what, sizeof what, "client outcomes per second (the first %zu of %zu)", rows,
                 panels);
    gp_str2(f, scn_name(c->s), ": ", what);
    fputs(" font ',12'\n", f);
    fprintf(f, "set xlabel 'time since start (s)'\nset ylabel 'requests/s'\n"
               "set xrange [0:%.9g]\nset grid ytics lc rgb '#dddddd'\n"
               "set style fill solid 0.9 noborder\nset key outside right top\n", xmax);
    for (size_t i = 0, drawn = 0; i < c->n && drawn < rows; i++) {
        const rep_plot_t *p = c->v[i].plot;
        if (!p) continue;
        drawn++;
        double w = sec(p->width);
        double runs = p->runs > 1 ? (double)p->runs : 1;    /* a group's sums: their mean */
        for (size_t j = 0; j < cols; j++) {
            const char *src = summed ? NULL : srcs.v[j];
            fprintf(d, "$out%zu_%zu << EOD\n", i, j);
            uint64_t cnt[M_CLASS_COUNT];
            size_t nb = p->n_buckets;
            for (size_t b = 0; b < nb; b++) {        /* each bucket as a flat step */
                double t = (double)b * w;
                double bw = fmin(w, sec(p->end) - t);            /* a cut last bucket */
                if (!(bw > 0)) bw = w;
                counts_of(p, src, b, cnt);
                double cum[M_CLASS_COUNT], sum = 0;
                int k = 0;
                for (int cl = 0; cl < M_CLASS_COUNT; cl++)
                    if (seen & (1u << cl)) cum[k++] = sum += (double)cnt[cl] / bw / runs;
                ymax_all = fmax(ymax_all, sum);
                for (int edge = 0; edge < 2; edge++) {
                    fprintf(d, "%.9g", t + edge * w);
                    for (int j2 = 0; j2 < k; j2++) fprintf(d, " %.9g", cum[j2]);
                    fputc('\n', d);
                }
            }
            fputs("EOD\n", d);
            char *title, label[256];
            rep_plots_label(c->v, c->n, i, label, sizeof label);
            if (summed || cols == 1)
                title = lb_sprintf("%s%s", label, summed && srcs.n > 1 ? " (all traffic)" : "");
            else
                title = lb_sprintf("%s: traffic %s", label, src);
            if (!p->complete) {
                char *t2 = lb_sprintf("%s (interrupted at %.1f s)", title, sec(p->end));
                lb_free(title);
                title = t2;
            }
            fputs("set title ", f);
            gp_str(f, title, 2 * GP_LABEL_MAX);
            lb_free(title);
            fputs("\nset yrange [0:outcomes_ymax]\n", f);   /* one scale: panels compare */
            /* stacked: the total first, each class below it drawn over it */
            fputs("plot ", f);
            int col = 1 + __builtin_popcount(seen);
            bool first = true;
            for (int cl = M_CLASS_COUNT - 1; cl >= 0; cl--) {
                if (!(seen & (1u << cl))) continue;
                fprintf(f, "%s$out%zu_%zu using 1:%d with filledcurves x1 lc rgb '%s' title '%s'",
                        first ? "" : ", \\\n     ", i, j, col--, class_colour[cl],
                        class_label[cl]);
                first = false;
            }
            if (first) fputs("NaN title 'no requests'", f);
            fputs("\n", f);
        }
    }
    fputs("unset multiplot\n", f);
    fprintf(d, "outcomes_ymax = %.9g\n", ymax_all > 0 ? ymax_all * 1.05 : 1.0);
    lb_vec_free(&srcs);
    return (fig_t){cols == 1 ? 1000 : 1400, (int)(70 + 240 * rows)};
}

/* ---- health timeline -------------------------------------------------------------------- */
static int cmp_series(const void *a, const void *b, void *arg)
{
    const rep_plot_t *p = arg;
    const rep_health_series_t *x = &p->health.v[*(const size_t *)a];
    const rep_health_series_t *y = &p->health.v[*(const size_t *)b];
    int r = strcmp(x->checker, y->checker);
    return r ? r : strcmp(x->target, y->target);
}

/* The load balancer of a checker: its name up to the first '/' ("ilb/http-30575"). */
static size_t group_len(const char *checker)
{
    const char *sl = strchr(checker, '/');
    return sl ? (size_t)(sl - checker) : strlen(checker);
}

static fig_t fig_health(ctx_t *c, size_t vi)
{
    FILE *d = c->data, *f = c->cmds;
    const rep_plot_t *p = c->v[vi].plot;
    size_t n = p->health.n;
    size_t *ord = lb_malloc(n * sizeof *ord);
    for (size_t i = 0; i < n; i++) ord[i] = i;
    qsort_r(ord, n, sizeof *ord, cmp_series, (void *)p);
    double end = sec(p->end);
    if (!(end > 0)) end = 1;

    fprintf(d, "$health%zu << EOD\n", vi);
    for (size_t k = 0; k < n; k++) {
        const rep_health_series_t *hs = &p->health.v[ord[k]];
        size_t y = n - 1 - k;               /* first row on top */
        for (size_t j = 0; j < hs->changes.n; j++) {
            double a = fmax(0, sec(hs->changes.v[j].t));
            double b = j + 1 < hs->changes.n ? sec(hs->changes.v[j + 1].t) : end;
            a = fmin(a, end);
            b = fmin(b, end);
            if (b <= a) continue;
            int st = hs->changes.v[j].state;
            fprintf(d, "%zu %.9g %.9g %u\n", y, a, b, health_rgb[st]);
        }
    }
    fputs("EOD\n", d);

    char label[256];
    rep_plots_label(c->v, c->n, vi, label, sizeof label);
    char *title = lb_sprintf("%s: backend health as each load balancer's checker sees it%s",
                             label, p->health_truncated ? " (first changes only)" : "");
    fputs("set title ", f);
    gp_str(f, title, 2 * GP_LABEL_MAX);
    lb_free(title);
    fprintf(f, "\nset xlabel 'time since start (s)'\nset xrange [0:%.9g]\n"
               "set yrange [-0.6:%.1f]\nset ytics scale 0\nset grid xtics lc rgb '#dddddd'\n"
               "set style fill solid 1.0 noborder\n"
               "set key outside right top vertical\n", end, (double)n - 0.4);
    for (size_t k = 0; k < n; k++) {
        const rep_health_series_t *hs = &p->health.v[ord[k]];
        fputs("set ytics add (", f);
        gp_str2(f, hs->checker, "  ", hs->target);
        fprintf(f, " %zu)\n", n - 1 - k);
        if (k + 1 < n) {
            const char *nx = p->health.v[ord[k + 1]].checker;
            size_t g = group_len(hs->checker);
            if (g != group_len(nx) || strncmp(hs->checker, nx, g))
                fprintf(f, "set arrow from graph 0, first %.1f to graph 1, first %.1f nohead "
                           "dt 2 lc rgb '#888888'\n", (double)(n - 1 - k) - 0.5,
                        (double)(n - 1 - k) - 0.5);
        }
    }
    unsigned used = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < p->health.v[k].changes.n; j++)
            used |= 1u << p->health.v[k].changes.v[j].state;
    fprintf(f, "plot $health%zu using (($2+$3)/2):1:(($3-$2)/2):(0.35):4 with boxxyerror "
               "lc rgb variable notitle", vi);
    static const int key_order[] = {REP_HEALTH_UP, REP_HEALTH_DOWN, REP_HEALTH_INITIAL,
                                    REP_HEALTH_OTHER};
    for (size_t k = 0; k < sizeof key_order / sizeof key_order[0]; k++)
        if (used & (1u << key_order[k]))
            fprintf(f, ", \\\n     NaN with boxes lc rgb '#%06x' title '%s'",
                    health_rgb[key_order[k]], health_label[key_order[k]]);
    fputc('\n', f);
    lb_free(ord);
    return (fig_t){1000, (int)(150 + 24 * n)};
}

/* ---- one request's hops ----------------------------------------------------------------- */
static fig_t fig_hops(ctx_t *c, size_t vi)
{
    FILE *d = c->data, *f = c->cmds;
    const rep_variant_t *v = &c->v[vi];
    size_t ns = v->n_hops - 1;              /* segments */
    sim_time_t t0 = v->hops[0].t;
    double total = 0;
    fprintf(d, "$hops%zu << EOD\n", vi);
    for (size_t k = 0; k < ns; k++) {
        double a = (double)(v->hops[k].t - t0) / SIM_MS;
        double b = (double)(v->hops[k + 1].t - t0) / SIM_MS;
        if (b < a) { double t = a; a = b; b = t; }
        total = fmax(total, b);
        fprintf(d, "%zu %.9g %.9g\n", ns - 1 - k, a, b);
    }
    fputs("EOD\n", d);
    char ht[sizeof v->hops_title + 1];
    snprintf(ht, sizeof ht, "%.*s", (int)sizeof v->hops_title, v->hops_title);
    char label[256];
    rep_plots_label(c->v, c->n, vi, label, sizeof label);
    fputs("set title ", f);
    gp_str2(f, label, ": ", ht[0] ? ht : "one successful request");
    fprintf(f, "\nset xlabel 'time since the request started (ms)'\n"
               "set xrange [0:%.9g]\nset yrange [-0.6:%.1f]\nset ytics scale 0\n"
               "set grid xtics lc rgb '#dddddd'\nset style fill solid 1.0 noborder\n",
            total > 0 ? total * 1.25 : 1.0, (double)ns - 0.4);
    for (size_t k = 0; k < ns; k++) {
        char a[sizeof v->hops[0].where + 1], b[sizeof a];
        snprintf(a, sizeof a, "%.*s", (int)sizeof v->hops[k].where, v->hops[k].where);
        snprintf(b, sizeof b, "%.*s", (int)sizeof v->hops[k].where, v->hops[k + 1].where);
        fputs("set ytics add (", f);
        gp_str2(f, a, " \xe2\x86\x92 ", b);
        fprintf(f, " %zu)\n", ns - 1 - k);
    }
    fprintf(f, "plot $hops%zu using (($2+$3)/2):1:(($3-$2)/2):(0.3) with boxxyerror "
               "lc rgb '#4472c4' notitle, \\\n"
               "     $hops%zu using 3:1:(sprintf(' %%.3f ms', $3-$2)) with labels left "
               "notitle\n", vi, vi);
    return (fig_t){1000, (int)(150 + 30 * ns)};
}

/* ---- running gnuplot -------------------------------------------------------------------- */
bool rep_plots_gnuplot(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        const char *e = strchr(path, ':');
        size_t dl = e ? (size_t)(e - path) : strlen(path);
        int w = snprintf(buf, len, "%.*s/gnuplot", (int)dl, dl ? path : ".");
        struct stat st;
        if (w > 0 && (size_t)w < len && !stat(buf, &st) && S_ISREG(st.st_mode) &&
            !access(buf, X_OK))
            return true;
        path += dl + (e ? 1 : 0);
    }
    if (len) buf[0] = '\0';
    return false;
}


/* gnuplot's error output as one line: its non-empty lines joined by " / " (the caret
 * lines under the failing command dropped). */
static void squeeze(char *out, size_t len, const char *in)
{
    size_t k = 0;
    out[0] = '\0';
    while (*in && k + 1 < len) {
        const char *e = strchr(in, '\n');
        size_t n = e ? (size_t)(e - in) : strlen(in);
        size_t a = 0;
        while (a < n && (in[a] == ' ' || in[a] == '\t' || in[a] == '\r')) a++;
        bool caret = a < n && in[a] == '^' && strspn(in + a, "^ \t\r") >= n - a;
        if (a < n && !caret) {
            int w = snprintf(out + k, len - k, "%s%.*s", k ? " / " : "", (int)(n - a), in + a);
            if (w < 0) break;
            k += (size_t)w;
            if (k >= len) { k = len - 1; break; }
        }
        in += n + (e ? 1 : 0);
    }
    for (size_t i = 0; out[i]; i++)
        if ((unsigned char)out[i] < 0x20) out[i] = ' ';
}

/* How much of gnuplot's error output is kept for the message. */
#define GP_ERR_KEEP 2048
/* Plots drawn by one gnuplot process. Each picture comes back on a pipe of its own, so
 * one process has 2 * GP_BATCH of them open (far below the usual 1024 descriptors). */
#define GP_BATCH 32
/* The first descriptor gnuplot gets a picture pipe on (after stdin, stdout, stderr). */
#define GP_FIRST_FD 3
/* How often a wait for gnuplot looks at the stop flag when no signal woke it. */
#define GP_STOP_POLL_MS 200

/* One picture on its way from gnuplot to its temporary file. */
typedef struct gp_out {
    char tmp[4096];             /* dir/.<name>.<ext>.tmp */
    char dst[4096];             /* dir/<name>.<ext> */
    int pipe_r;                 /* what gnuplot writes; -1 at its end */
    int file;                   /* the temporary file; -1 when closed or failed */
    uint64_t bytes;
    int errnum;                 /* errno of the first failed write; the rest is drained */
} gp_out_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_out(gp_out_t *o, const char *buf, size_t n)
{
    while (n && o->file >= 0) {
        ssize_t w = write(o->file, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            o->errnum = w < 0 ? errno : EIO;
            close(o->file);
            o->file = -1;
            return;
        }
        buf += w;
        n -= (size_t)w;
        o->bytes += (uint64_t)w;
    }
}

/* Runs `prog -d` (no init files) with the script on its stdin, in a process group of its
 * own (a terminal's Ctrl-C reaches the simulator only, which decides). Picture k of outs
 * is written by gnuplot to descriptor GP_FIRST_FD + k ('/dev/fd/N' in the script), a pipe
 * whose bytes this process writes to outs[k].tmp itself, so a full disk is seen here as
 * the errno of a write (gnuplot does not check its own writes). Its stdout goes to
 * /dev/null, its stderr is kept for the message. Writing and reading are interleaved
 * (poll), so a chatty gnuplot never deadlocks a pipe; SIGPIPE is blocked while writing
 * (a gnuplot that dies early gives EPIPE, not a dead simulator). After timeout_ms, or
 * once *stop is non-zero, the process group is killed. Returns 0; LB_ETIMEDOUT or
 * LB_ESTATE (stopped) with "... plots skipped" in err; LB_EIO when gnuplot failed or a
 * file could not be written (strerror in err). */
static int run_gnuplot(const char *prog, const char *script, size_t len, gp_out_t *outs,
                       size_t nout, const rep_plots_opts_t *opt, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, ep[2] = {-1, -1}, devnull = -1;
    int *pw = lb_malloc((nout + 3) * sizeof *pw);       /* child ends, then stdin/out/err */
    int *hi = lb_malloc((nout + 3) * sizeof *hi);       /* the child's copies, out of the way */
    size_t made = 0;
    bool ok = !pipe2(in, O_CLOEXEC) && !pipe2(ep, O_CLOEXEC) &&
              (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0;
    for (; ok && made < nout; made++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC)) { ok = false; break; }
        outs[made].pipe_r = p[0];
        pw[made] = p[1];
    }
    if (!ok) {
        lb_errf(err, errlen, "cannot start gnuplot: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0) close(in[i]);
            if (ep[i] >= 0) close(ep[i]);
        }
        if (devnull >= 0) close(devnull);
        for (size_t k = 0; k < made; k++) close(outs[k].pipe_r), close(pw[k]), outs[k].pipe_r = -1;
        lb_free(pw);
        lb_free(hi);
        return LB_EIO;
    }
    pw[nout] = in[0];
    pw[nout + 1] = devnull;
    pw[nout + 2] = ep[1];
    pid_t pid = fork();
    if (pid == 0) {
        /* the child: async-signal-safe calls only. Every descriptor it keeps is first
         * copied above the numbers it will occupy, then put in place. */
        setpgid(0, 0);
        int base = GP_FIRST_FD + (int)nout;
        for (size_t k = 0; k < nout + 3; k++)
            if ((hi[k] = fcntl(pw[k], F_DUPFD_CLOEXEC, base)) < 0) _exit(126);
        for (size_t k = 0; k < nout; k++)
            if (dup2(hi[k], GP_FIRST_FD + (int)k) < 0) _exit(126);
        if (dup2(hi[nout], 0) < 0 || dup2(hi[nout + 1], 1) < 0 || dup2(hi[nout + 2], 2) < 0)
            _exit(126);
        execl(prog, "gnuplot", "-d", (char *)NULL);
        _exit(127);
    }
    if (pid > 0) setpgid(pid, pid);             /* whichever of the two runs first */
    for (size_t k = 0; k < nout + 3; k++) close(pw[k]);
    close(ep[1]);
    lb_free(pw);
    lb_free(hi);
    if (pid < 0) {
        lb_errf(err, errlen, "cannot start gnuplot: %s", strerror(errno));
        close(in[1]);
        close(ep[0]);
        for (size_t k = 0; k < nout; k++) close(outs[k].pipe_r), outs[k].pipe_r = -1;
        return LB_EIO;
    }
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);

    double timeout_s = opt && opt->timeout_s > 0 ? opt->timeout_s : REP_PLOTS_TIMEOUT_S;
    int64_t deadline = mono_ms() + (int64_t)(timeout_s * 1000);
    char *ebuf = lb_malloc(GP_ERR_KEEP + 1);
    char *buf = lb_malloc(65536);
    struct pollfd *pf = lb_malloc((nout + 2) * sizeof *pf);
    size_t elen = 0, off = 0;
    int wfd = in[1], efd = ep[0];
    int rc = 0;
    if (len == 0) close(wfd), wfd = -1;
    for (;;) {
        size_t open_fds = efd >= 0;
        pf[0] = (struct pollfd){efd, POLLIN, 0};
        pf[1] = (struct pollfd){wfd, POLLOUT, 0};
        for (size_t k = 0; k < nout; k++) {
            pf[2 + k] = (struct pollfd){outs[k].pipe_r, POLLIN, 0};
            open_fds += outs[k].pipe_r >= 0;
        }
        if (!open_fds) break;                    /* gnuplot (and anything it started) ended */
        bool stopped = opt && opt->stop && *opt->stop;
        int64_t left = deadline - mono_ms();
        if (stopped || left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            if (stopped) lb_errf(err, errlen, "interrupted: plots skipped");
            else lb_errf(err, errlen, "gnuplot did not finish in %g s: plots skipped", timeout_s);
            rc = stopped ? LB_ESTATE : LB_ETIMEDOUT;
            break;
        }
        if (opt && opt->stop && left > GP_STOP_POLL_MS) left = GP_STOP_POLL_MS;
        if (poll(pf, nout + 2, (int)left) < 0) {    /* negative fds are ignored */
            if (errno == EINTR) continue;
            lb_errf(err, errlen, "waiting for gnuplot: %s", strerror(errno));
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            rc = LB_EIO;
            break;
        }
        if (wfd >= 0 && pf[1].revents) {
            ssize_t w = write(wfd, script + off, len - off);
            if (w > 0) off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == len) {
                close(wfd);                 /* done, or gnuplot stopped reading */
                wfd = -1;
            }
        }
        if (efd >= 0 && pf[0].revents) {
            ssize_t r = read(efd, buf, 65536);
            if (r > 0) {
                size_t keep = (size_t)r < GP_ERR_KEEP - elen ? (size_t)r : GP_ERR_KEEP - elen;
                memcpy(ebuf + elen, buf, keep);
                elen += keep;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(efd);
                efd = -1;
            }
        }
        for (size_t k = 0; k < nout; k++) {
            if (outs[k].pipe_r < 0 || !pf[2 + k].revents) continue;
            ssize_t r = read(outs[k].pipe_r, buf, 65536);
            if (r > 0) write_out(&outs[k], buf, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(outs[k].pipe_r);
                outs[k].pipe_r = -1;
            }
        }
    }
    ebuf[elen] = '\0';
    if (wfd >= 0) close(wfd);
    if (efd >= 0) close(efd);
    for (size_t k = 0; k < nout; k++)
        if (outs[k].pipe_r >= 0) close(outs[k].pipe_r), outs[k].pipe_r = -1;
    lb_free(buf);
    lb_free(pf);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || off != len)) {
        char msg[512];
        squeeze(msg, sizeof msg, ebuf);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            lb_errf(err, errlen, "cannot run %s", prog);
        else if (WIFSIGNALED(status))
            lb_errf(err, errlen, "gnuplot killed by signal %d%s%s", WTERMSIG(status),
                    msg[0] ? ": " : "", msg);
        else
            lb_errf(err, errlen, "gnuplot failed: %s", msg[0] ? msg : "no message");
        rc = LB_EIO;
    }
    lb_free(ebuf);
    return rc;
}

/* ---- writing ---------------------------------------------------------------------------- */
static const char *const exts[] = {"png", "svg"};

/* Removes dir/<name>.<ext> (final: true) and dir/.<name>.<ext>.tmp of every file. */
static void remove_files(const char *dir, const rep_plot_file_t *fs, size_t n, bool final)
{
    char path[4096];
    for (size_t i = 0; i < n; i++)
        for (int e = 0; e < 2; e++) {
            snprintf(path, sizeof path, "%s/.%s.%s.tmp", dir, fs[i].name, exts[e]);
            unlink(path);
            if (!final) continue;
            snprintf(path, sizeof path, "%s/%s.%s", dir, fs[i].name, exts[e]);
            unlink(path);
        }
}

/* The script of plots fs[0..nf): data blocks, then every figure once per terminal; the
 * PNG of figure i goes to descriptor GP_FIRST_FD + 2i, its SVG to the next. */
static char *build_script(const scn_t *s, const rep_variant_t *v, size_t n,
                          const rep_plot_file_t *fs, size_t nf, size_t *len)
{
    char *data = NULL, *out = NULL;
    size_t dlen = 0, olen = 0;
    ctx_t c = {.s = s, .v = v, .n = n, .data = open_memstream(&data, &dlen)};
    FILE *o = open_memstream(&out, &olen);
    if (!c.data || !o) {
        fprintf(stderr, "sim: plots: out of memory\n");
        abort();
    }
    fputs("# lbchain plots (generated; data inline)\nset encoding utf8\n", c.data);
    char **bodies = lb_calloc(nf, sizeof *bodies);
    fig_t *figs = lb_calloc(nf, sizeof *figs);
    for (size_t i = 0; i < nf; i++) {
        size_t blen = 0;
        c.cmds = open_memstream(&bodies[i], &blen);
        if (!c.cmds) abort();
        fputs("reset\n", c.cmds);
        if (!strcmp(fs[i].name, "latency-cdf")) figs[i] = fig_cdf(&c);
        else if (!strcmp(fs[i].name, "outcomes")) figs[i] = fig_outcomes(&c);
        else if (!strncmp(fs[i].name, "health-", 7)) figs[i] = fig_health(&c, (size_t)fs[i].variant);
        else figs[i] = fig_hops(&c, (size_t)fs[i].variant);
        fclose(c.cmds);
    }
    fclose(c.data);
    fputs(data, o);
    for (size_t i = 0; i < nf; i++) {
        fprintf(o, "set terminal pngcairo size %d,%d font 'Sans,10' noenhanced "
                   "background rgb 'white'\n", figs[i].w, figs[i].h);
        fprintf(o, "set output '/dev/fd/%zu'\n%sunset output\n", GP_FIRST_FD + 2 * i, bodies[i]);
        fprintf(o, "set terminal svg size %d,%d font 'Arial,11' noenhanced "
                   "background rgb 'white'\n", figs[i].w, figs[i].h);
        fprintf(o, "set output '/dev/fd/%zu'\n%sunset output\n", GP_FIRST_FD + 2 * i + 1,
                bodies[i]);
        free(bodies[i]);
    }
    fputs("exit\n", o);
    fclose(o);
    free(data);
    lb_free(bodies);
    lb_free(figs);
    *len = olen;
    return out;
}

/* Draws fs[0..nf) (at most GP_BATCH) with one gnuplot into their temporary files. */
static int draw_batch(const char *prog, const char *dir, const scn_t *s,
                      const rep_variant_t *v, size_t n, const rep_plot_file_t *fs, size_t nf,
                      const rep_plots_opts_t *opt, char *err, size_t errlen)
{
    size_t nout = 2 * nf;
    gp_out_t *outs = lb_calloc(nout, sizeof *outs);
    int rc = 0;
    for (size_t k = 0; k < nout; k++) {
        gp_out_t *o = &outs[k];
        snprintf(o->tmp, sizeof o->tmp, "%s/.%s.%s.tmp", dir, fs[k / 2].name, exts[k % 2]);
        snprintf(o->dst, sizeof o->dst, "%s/%s.%s", dir, fs[k / 2].name, exts[k % 2]);
        o->pipe_r = -1;
        o->file = rc ? -1 : open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (!rc && o->file < 0) {
            lb_errf(err, errlen, "cannot write %s: %s", o->dst, strerror(errno));
            rc = LB_EIO;
        }
    }
    if (!rc) {
        size_t len;
        char *script = build_script(s, v, n, fs, nf, &len);
        rc = run_gnuplot(prog, script, len, outs, nout, opt, err, errlen);
        free(script);
    }
    for (size_t k = 0; k < nout; k++) {
        gp_out_t *o = &outs[k];
        if (o->file >= 0 && close(o->file) && !o->errnum) o->errnum = errno;
        o->file = -1;
        if (rc) continue;
        if (o->errnum) {
            lb_errf(err, errlen, "cannot write %s: %s", o->dst, strerror(o->errnum));
            rc = LB_EIO;
        } else if (!o->bytes) {
            lb_errf(err, errlen, "gnuplot wrote no %s", o->dst);
            rc = LB_EIO;
        }
    }
    lb_free(outs);
    return rc;
}

int rep_plots_write(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n,
                    const rep_plots_opts_t *opt, char *err, size_t errlen)
{
    size_t m;
    rep_variant_t *view = rep_plots_view(v, n, &m);
    if (view) {
        int rc = rep_plots_write(dir, s, view, m, opt, err, errlen);
        rep_plots_view_free(view, m);
        return rc;
    }
    rep_plot_file_t *fs;
    size_t nf = rep_plots_files(v, n, &fs);
    if (err && errlen) err[0] = '\0';
    if (!nf) return 0;
    int rc = 0;
    char prog[4096];
    if (!rep_plots_gnuplot(prog, sizeof prog)) {
        lb_errf(err, errlen, "gnuplot not found: plots skipped");
        rc = LB_ENOENT;
        goto out;
    }
    for (size_t i = 0; i < nf && !rc; i += GP_BATCH)
        rc = draw_batch(prog, dir, s, v, n, fs + i, nf - i < GP_BATCH ? nf - i : GP_BATCH, opt,
                        err, errlen);
    char tmp[4096], dst[4096];
    for (size_t i = 0; i < nf && !rc; i++)
        for (int e = 0; e < 2 && !rc; e++) {
            snprintf(tmp, sizeof tmp, "%s/.%s.%s.tmp", dir, fs[i].name, exts[e]);
            snprintf(dst, sizeof dst, "%s/%s.%s", dir, fs[i].name, exts[e]);
            if (rename(tmp, dst)) {
                lb_errf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
                rc = LB_EIO;
            }
        }
out:
    if (rc) remove_files(dir, fs, nf, true);
    lb_free(fs);
    return rc;
}

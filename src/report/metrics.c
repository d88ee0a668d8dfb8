/* metrics.c -- per-source, per-time-bucket request counts and latency histograms, and
 * named per-bucket counters. Memory depends on sources x buckets x latency spread, never
 * on the number of requests.
 *
 * Latency histogram (log-linear, as HdrHistogram): a value v (ns) below 128 has its own
 * slot; above, v in [2^k, 2^(k+1)) falls in one of 128 equal sub-buckets of that octave.
 * A sub-bucket is 2^(k-7) wide, so reporting its midpoint is off by at most
 * 2^(k-8) / 2^k = 1/256 (0.4%) of the value. Octaves are allocated on first use, and a
 * histogram exists only for the (source, bucket, class) cells that saw a request.
 * Each octave keeps its total, so a quantile scans octaves first, then 128 slots of one.
 *
 * Windows: a request belongs to the bucket of its start time (past the end: the last
 * bucket). A window [from, to) selects the buckets whose start time lies in it, i.e.
 * [ceil(from/w), ceil(to/w)) -- so [60s, 180s) with 1 s buckets is buckets 60..179, and a
 * window edge inside a bucket excludes that bucket on the left and includes it on the
 * right. A `to` at or past the end selects through the last bucket. */
#include <assert.h>
#include <math.h>
#include <string.h>
#include "lb.h"
#include "metrics.h"
#include "http.h"

#define H_SUB_BITS 7
#define H_SUB (1 << H_SUB_BITS)             /* linear sub-buckets per octave */
#define H_OCTAVES (64 - H_SUB_BITS)         /* octave 0: [0,128); o >= 1: [2^(o+6), 2^(o+7)) */

typedef struct hist {
    uint64_t count;
    double sum;                             /* of latencies, ns (for the mean) */
    uint64_t ocount[H_OCTAVES];
    uint64_t *oct[H_OCTAVES];               /* H_SUB slots each, NULL until used */
} hist_t;

typedef struct bucket {
    uint64_t n[M_CLASS_COUNT];
    hist_t *h[M_CLASS_COUNT];
} bucket_t;

#define STATUS_MAX 600                      /* HTTP statuses 100..599 */

typedef struct source {
    char *name;
    bucket_t *b;                            /* nb buckets */
    uint64_t *status;                       /* totals by HTTP status (STATUS_MAX) */
} source_t;

typedef struct counter {
    char *name;
    int64_t *v;                             /* nb buckets */
} counter_t;

struct metrics {
    sim_time_t width;
    size_t nb;
    LB_VEC(source_t) sources;
    lb_index_t source_index;                /* name hash -> sources position */
    LB_VEC(counter_t) counters;             /* first-seen order */
    lb_index_t counter_index;               /* name hash -> counters position */
    m_hooks_t hooks[METRICS_MAX_HOOKS];
    size_t n_hooks;
    unsigned wants;                         /* M_WANT_* */
};

/* ---- histogram -------------------------------------------------------------------------- */
static void h_index(sim_time_t v, int *o, int *sub)
{
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    if (u < H_SUB) {
        *o = 0;
        *sub = (int)u;
        return;
    }
    int k = 63 - __builtin_clzll(u);
    *o = k - (H_SUB_BITS - 1);
    *sub = (int)((u >> (k - H_SUB_BITS)) - H_SUB);
}

static sim_time_t h_value(int o, int sub)
{
    if (o == 0)
        return sub;
    int shift = o - 1;                      /* k - H_SUB_BITS with k = o + 6 */
    uint64_t lo = (uint64_t)(sub + H_SUB) << shift;
    uint64_t w = (uint64_t)1 << shift;
    return (sim_time_t)(lo + (w - 1) / 2);
}

static void h_add(hist_t *h, sim_time_t v)
{
    int o, sub;
    h_index(v, &o, &sub);
    assert(o >= 0 && o < H_OCTAVES && sub >= 0 && sub < H_SUB);
    if (!h->oct[o])
        h->oct[o] = lb_calloc(H_SUB, sizeof(uint64_t));
    h->oct[o][sub]++;
    h->ocount[o]++;
    h->count++;
    h->sum += (double)(v < 0 ? 0 : v);
}

static void h_free(hist_t *h)
{
    if (!h)
        return;
    for (int o = 0; o < H_OCTAVES; o++)
        lb_free(h->oct[o]);
    lb_free(h);
}

/* ---- setup ------------------------------------------------------------------------------ */
metrics_t *metrics_new(sim_time_t bucket, sim_time_t duration)
{
    metrics_t *m = lb_calloc(1, sizeof(*m));
    m->width = bucket > 0 ? bucket : METRICS_BUCKET_DEFAULT;
    m->nb = duration > 0 ? (size_t)((duration + m->width - 1) / m->width) : 1;
    if (m->nb == 0)
        m->nb = 1;
    return m;
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->sources.n; i++) {
        source_t *s = &m->sources.v[i];
        for (size_t b = 0; b < m->nb; b++)
            for (int c = 0; c < M_CLASS_COUNT; c++)
                h_free(s->b[b].h[c]);
        lb_free(s->b);
        lb_free(s->status);
        lb_free(s->name);
    }
    lb_vec_free(&m->sources);
    for (size_t i = 0; i < m->counters.n; i++) {
        lb_free(m->counters.v[i].name);
        lb_free(m->counters.v[i].v);
    }
    lb_vec_free(&m->counters);
    lb_index_free(&m->counter_index);
    lb_index_free(&m->source_index);
    lb_free(m);
}

void metrics_want(metrics_t *m, unsigned what) { m->wants |= what; }
unsigned metrics_wants(const metrics_t *m) { return m->wants; }

int metrics_add_hooks(metrics_t *m, const m_hooks_t *h)
{
    if (m->n_hooks == METRICS_MAX_HOOKS) return LB_ENOMEM;
    m->hooks[m->n_hooks++] = *h;
    return 0;
}

size_t metrics_remove_hooks(metrics_t *m, const void *data)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_hooks; i++)
        if (m->hooks[i].data != data) m->hooks[k++] = m->hooks[i];
    size_t removed = m->n_hooks - k;
    m->n_hooks = k;
    return removed;
}

void metrics_set_record_hook(metrics_t *m, m_record_cb cb, void *data)
{
    m_hooks_t h = {.request = cb, .data = data};
    int rc = metrics_add_hooks(m, &h);
    assert(rc == 0);            /* a fixed, small number of observers: a programming error */
    (void)rc;
}

void metrics_probe(metrics_t *m, const m_probe_t *p)
{
    for (size_t i = 0; i < m->n_hooks; i++)
        if (m->hooks[i].probe) m->hooks[i].probe(m->hooks[i].data, p);
}

void metrics_health(metrics_t *m, const m_health_t *h)
{
    for (size_t i = 0; i < m->n_hooks; i++)
        if (m->hooks[i].health) m->hooks[i].health(m->hooks[i].data, h);
}

int metrics_source_find(const metrics_t *m, const char *name)
{
    uint64_t h = lb_hash_str(name);
    for (size_t it, i = lb_index_first(&m->source_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&m->source_index, h, &it))
        if (strcmp(m->sources.v[i].name, name) == 0)
            return (int)i;
    return -1;
}

int metrics_source(metrics_t *m, const char *name)
{
    int i = metrics_source_find(m, name);
    if (i >= 0)
        return i;
    source_t s = { .name = lb_strdup(name), .b = lb_calloc(m->nb, sizeof(bucket_t)) };
    lb_vec_push(&m->sources, s);
    lb_index_add(&m->source_index, lb_hash_str(name), m->sources.n - 1);
    return (int)m->sources.n - 1;
}

size_t metrics_source_count(const metrics_t *m) { return m->sources.n; }

const char *metrics_source_name(const metrics_t *m, int i)
{
    return i >= 0 && (size_t)i < m->sources.n ? m->sources.v[i].name : NULL;
}

size_t metrics_bucket_count(const metrics_t *m) { return m->nb; }
sim_time_t metrics_bucket_width(const metrics_t *m) { return m->width; }

static size_t bucket_of(const metrics_t *m, sim_time_t t)
{
    if (t <= 0)
        return 0;
    sim_time_t b = t / m->width;
    return (size_t)b >= m->nb ? m->nb - 1 : (size_t)b;
}

/* Buckets [*b0, *b1) whose start time lies in [w.from, w.to). */
static void window_buckets(const metrics_t *m, m_window_t w, size_t *b0, size_t *b1)
{
    sim_time_t end = (sim_time_t)m->nb * m->width;
    *b0 = w.from <= 0 ? 0 : w.from >= end ? m->nb
        : (size_t)((w.from + m->width - 1) / m->width);
    *b1 = w.to <= 0 ? 0 : w.to > end - m->width ? m->nb
        : (size_t)((w.to + m->width - 1) / m->width);
    if (*b1 < *b0)
        *b1 = *b0;
}

/* ---- recording -------------------------------------------------------------------------- */
void metrics_request(metrics_t *m, const m_request_t *r)
{
    assert(r->source >= 0 && (size_t)r->source < m->sources.n);
    assert(r->cls >= 0 && r->cls < M_CLASS_COUNT);
    source_t *src = &m->sources.v[r->source];
    bucket_t *b = &src->b[bucket_of(m, r->t_start)];
    b->n[r->cls]++;
    if (r->status > 0 && r->status < STATUS_MAX) {
        if (!src->status) src->status = lb_calloc(STATUS_MAX, sizeof *src->status);
        src->status[r->status]++;
    }
    if (!b->h[r->cls])
        b->h[r->cls] = lb_calloc(1, sizeof(hist_t));
    h_add(b->h[r->cls], r->t_end - r->t_start);
    for (size_t i = 0; i < m->n_hooks; i++)
        if (m->hooks[i].request) m->hooks[i].request(m->hooks[i].data, r);
}

static counter_t *counter_find(const metrics_t *m, const char *name, uint64_t h)
{
    for (size_t it, i = lb_index_first(&m->counter_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&m->counter_index, h, &it))
        if (strcmp(m->counters.v[i].name, name) == 0)
            return &m->counters.v[i];
    return NULL;
}

uint64_t metrics_status_total(const metrics_t *m, int source, int status)
{
    if (status <= 0 || status >= STATUS_MAX) return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < m->sources.n; i++)
        if ((source < 0 || (size_t)source == i) && m->sources.v[i].status)
            n += m->sources.v[i].status[status];
    return n;
}

void metrics_count(metrics_t *m, const char *name, sim_time_t t, int64_t delta)
{
    uint64_t h = lb_hash_str(name);
    counter_t *c = counter_find(m, name, h);
    if (!c) {
        counter_t nc = { .name = lb_strdup(name), .v = lb_calloc(m->nb, sizeof(int64_t)) };
        lb_vec_push(&m->counters, nc);
        lb_index_add(&m->counter_index, h, m->counters.n - 1);
        c = &m->counters.v[m->counters.n - 1];
    }
    c->v[bucket_of(m, t)] += delta;
}

/* ---- queries ---------------------------------------------------------------------------- */
static void source_range(const metrics_t *m, int source, size_t *s0, size_t *s1)
{
    if (source < 0) {
        *s0 = 0;
        *s1 = m->sources.n;
    } else if ((size_t)source < m->sources.n) {
        *s0 = (size_t)source;
        *s1 = *s0 + 1;
    } else {
        *s0 = *s1 = 0;
    }
}

uint64_t metrics_requests(const metrics_t *m, int source, unsigned classes, m_window_t w)
{
    size_t s0, s1, b0, b1;
    uint64_t n = 0;
    source_range(m, source, &s0, &s1);
    window_buckets(m, w, &b0, &b1);
    for (size_t s = s0; s < s1; s++)
        for (size_t b = b0; b < b1; b++)
            for (int c = 0; c < M_CLASS_COUNT; c++)
                if (classes & (1u << c))
                    n += m->sources.v[s].b[b].n[c];
    return n;
}

/* The histograms a query covers; caller frees. */
static size_t select_hists(const metrics_t *m, int source, unsigned classes, m_window_t w,
                           const hist_t ***out)
{
    size_t s0, s1, b0, b1, n = 0;
    LB_VEC(const hist_t *) v = {0};
    source_range(m, source, &s0, &s1);
    window_buckets(m, w, &b0, &b1);
    for (size_t s = s0; s < s1; s++)
        for (size_t b = b0; b < b1; b++)
            for (int c = 0; c < M_CLASS_COUNT; c++) {
                const hist_t *h = m->sources.v[s].b[b].h[c];
                if ((classes & (1u << c)) && h && h->count) {
                    lb_vec_push(&v, h);
                    n++;
                }
            }
    *out = v.v;
    return n;
}

sim_time_t metrics_latency_q(const metrics_t *m, int source, unsigned classes, double q,
                             m_window_t w)
{
    const hist_t **hs;
    size_t nh = select_hists(m, source, classes, w, &hs);
    uint64_t total = 0;
    for (size_t i = 0; i < nh; i++)
        total += hs[i]->count;
    sim_time_t res = -1;
    if (total == 0)
        goto out;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    /* the rank-th smallest value, rank = ceil(q * total), at least 1 */
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank < 1)
        rank = 1;
    if (rank > total)
        rank = total;
    uint64_t cum = 0;
    for (int o = 0; o < H_OCTAVES; o++) {
        uint64_t ot = 0;
        for (size_t i = 0; i < nh; i++)
            ot += hs[i]->ocount[o];
        if (cum + ot < rank) {
            cum += ot;
            continue;
        }
        for (int sub = 0; sub < H_SUB; sub++) {
            uint64_t st = 0;
            for (size_t i = 0; i < nh; i++)
                if (hs[i]->oct[o])
                    st += hs[i]->oct[o][sub];
            cum += st;
            if (cum >= rank) {
                res = h_value(o, sub);
                goto out;
            }
        }
        assert(!"octave totals disagree with their slots");
    }
out:
    lb_free(hs);
    return res;
}

double metrics_latency_mean(const metrics_t *m, int source, unsigned classes, m_window_t w)
{
    const hist_t **hs;
    size_t nh = select_hists(m, source, classes, w, &hs);
    uint64_t n = 0;
    double sum = 0;
    for (size_t i = 0; i < nh; i++) {
        n += hs[i]->count;
        sum += hs[i]->sum;
    }
    lb_free(hs);
    return n ? sum / (double)n : -1.0;
}

int64_t metrics_counter(const metrics_t *m, const char *name, m_window_t w)
{
    const counter_t *c = counter_find(m, name, lb_hash_str(name));
    if (!c)
        return 0;
    size_t b0, b1;
    int64_t v = 0;
    window_buckets(m, w, &b0, &b1);
    for (size_t b = b0; b < b1; b++)
        v += c->v[b];
    return v;
}

const char *metrics_counter_name(const metrics_t *m, size_t i)
{
    return i < m->counters.n ? m->counters.v[i].name : NULL;
}

uint64_t metrics_bucket(const metrics_t *m, int source, size_t b, int c)
{
    size_t s0, s1;
    uint64_t n = 0;
    if (b >= m->nb || c < 0 || c >= M_CLASS_COUNT)
        return 0;
    source_range(m, source, &s0, &s1);
    for (size_t s = s0; s < s1; s++)
        n += m->sources.v[s].b[b].n[c];
    return n;
}

/* ---- classes ---------------------------------------------------------------------------- */
const char *m_class_name(int c)
{
    static const char *const names[M_CLASS_COUNT] = {
        [M_2XX] = "2xx", [M_3XX] = "3xx", [M_4XX] = "4xx", [M_5XX] = "5xx",
        [M_CONNECT_TIMEOUT] = "connect_timeout", [M_REFUSED] = "refused",
        [M_RESET] = "reset", [M_RESPONSE_TIMEOUT] = "response_timeout",
        [M_CLOSED] = "closed", [M_OTHER_ERR] = "other_error",
    };
    return c >= 0 && c < M_CLASS_COUNT ? names[c] : "unknown";
}

int m_class_of(int outcome, int status)
{
    switch (outcome) {
    case HTTP_OK:
        if (status >= 200 && status < 300) return M_2XX;
        if (status >= 300 && status < 400) return M_3XX;
        if (status >= 400 && status < 500) return M_4XX;
        if (status >= 500 && status < 600) return M_5XX;
        return M_OTHER_ERR;
    case HTTP_CONNECT_TIMEOUT:  return M_CONNECT_TIMEOUT;
    case HTTP_CONNECT_REFUSED:  return M_REFUSED;
    case HTTP_RESET:            return M_RESET;
    case HTTP_RESPONSE_TIMEOUT: return M_RESPONSE_TIMEOUT;
    case HTTP_CLOSED:           return M_CLOSED;
    default:                    return M_OTHER_ERR;   /* no-port, unreachable */
    }
}

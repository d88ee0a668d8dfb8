/* engine.c -- the discrete-event kernel: a radix heap of events keyed by
 * (time, sequence), cancel-by-marking, and named GSL random streams.
 *
 * Radix heap (Ahuja, Mehlhorn, Orlin, Tarjan 1990): simulated time never goes backwards,
 * so an event lives in bucket bitlen(time XOR last), where `last` is the time of the
 * latest minimum. Bucket 0 holds events at exactly `last`. Pushing is an append; when
 * bucket 0 runs dry the lowest non-empty bucket is scanned for its minimum, which becomes
 * `last`, and its events are redistributed into lower buckets. Each event moves at most
 * 64 times, and all traffic is sequential memory.
 * Tie order: all events of one time sit in one bucket (the invariant keeps equal keys
 * together), and appends and redistributions preserve relative order, so within a time
 * events come out in sequence (insertion) order -- tests/test_engine.c pins this.
 * Cancelling records the sequence number in a small hash set; the entry is skipped when
 * popped. Keys pop in increasing (time, seq) order, so "has run" is key <= last popped.
 * A long timer cancelled early (a connection's FIN_WAIT2 timer, say) would otherwise sit
 * in the queue until its deadline, so memory would follow the rate of cancellations
 * rather than the live timers: when cancelled entries are at least half the queue, one
 * pass removes them all (amortised O(1) per cancel) and shrinks oversized buckets. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "lb.h"


typedef struct hent {
    sim_time_t time;
    uint64_t seq;
    sim_event_cb cb;
    void *a, *b;
} hent_t;

typedef struct rng_stream {
    char *name;
    uint64_t hash;
    gsl_rng *rng;
} rng_stream_t;

typedef struct bucket { hent_t *v; size_t n, cap; } bucket_t;

/* Purge cancelled entries once there are this many and they are half the queue. */
#define CANCEL_PURGE_MIN 1024

/* Open-addressing set of cancelled sequence numbers (0 = empty slot). */
typedef struct seqset {
    uint64_t *slot;
    size_t cap, n;
} seqset_t;

struct sim {
    sim_time_t now;
    uint64_t seed;
    uint64_t next_seq;
    uint64_t events_run;
    sim_time_t last_time;       /* key of the last popped event */
    uint64_t last_seq;
    bool stopped;
    bucket_t bk[64];            /* times are >= 0, so time ^ last < 2^63: 64 buckets */
    uint64_t nonempty;          /* bit i: bucket i has events */
    size_t b0_head;             /* bucket 0 is a FIFO: next to pop */
    sim_time_t rlast;           /* the radix heap's `last` */
    size_t heap_n;
    seqset_t cancelled;
    LB_VEC(rng_stream_t) rngs;
    lb_index_t rng_index;       /* stream name hash -> rngs position */
    uint64_t progress_every;
    sim_progress_cb progress_cb;
    void *progress_data;
};

sim_t *sim_new(uint64_t seed)
{
    sim_t *s = lb_calloc(1, sizeof *s);
    s->seed = seed;
    s->next_seq = 1;
    return s;
}

void sim_free(sim_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->rngs.n; i++) {
        gsl_rng_free(s->rngs.v[i].rng);
        lb_free(s->rngs.v[i].name);
    }
    lb_vec_free(&s->rngs);
    lb_index_free(&s->rng_index);
    lb_free(s->cancelled.slot);
    for (int i = 0; i < 64; i++) lb_free(s->bk[i].v);
    lb_free(s);
}

sim_time_t sim_now(const sim_t *s) { return s->now; }
uint64_t sim_seed(const sim_t *s) { return s->seed; }
uint64_t sim_events_run(const sim_t *s) { return s->events_run; }
uint64_t sim_events_pending(const sim_t *s) { return s->heap_n; }

/* ---- the cancelled set ---- */
static size_t seq_home(const seqset_t *c, uint64_t seq) { return lb_mix64(seq) & (c->cap - 1); }

static bool seqset_has(const seqset_t *c, uint64_t seq)
{
    if (!c->n) return false;
    for (size_t i = seq_home(c, seq);; i = (i + 1) & (c->cap - 1)) {
        if (c->slot[i] == seq) return true;
        if (c->slot[i] == 0) return false;
    }
}

static void seqset_add(seqset_t *c, uint64_t seq)
{
    if ((c->n + 1) * 2 > c->cap) {
        seqset_t old = *c;
        c->cap = old.cap ? old.cap * 2 : 64;
        c->slot = lb_calloc(c->cap, sizeof *c->slot);
        c->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slot[i]) seqset_add(c, old.slot[i]);
        lb_free(old.slot);
    }
    size_t i = seq_home(c, seq);
    while (c->slot[i]) i = (i + 1) & (c->cap - 1);
    c->slot[i] = seq;
    c->n++;
}

/* Removes seq, shifting later probes back so that lookups stay correct. */
static void seqset_del(seqset_t *c, uint64_t seq)
{
    size_t mask = c->cap - 1, i = seq_home(c, seq);
    while (c->slot[i] != seq) i = (i + 1) & mask;
    c->slot[i] = 0;
    c->n--;
    for (size_t j = (i + 1) & mask; c->slot[j]; j = (j + 1) & mask) {
        size_t home = seq_home(c, c->slot[j]);
        /* move slot[j] into the hole at i if its home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            c->slot[i] = c->slot[j];
            c->slot[j] = 0;
            i = j;
        }
    }
}

/* ---- the radix heap ---- */
static inline int bucket_of(sim_time_t t, sim_time_t last)
{
    assert(t >= 0 && last >= 0);
    uint64_t x = (uint64_t)t ^ (uint64_t)last;
    return x ? 64 - __builtin_clzll(x) : 0;
}

static inline void bucket_append(bucket_t *bk, const hent_t *e)
{
    if (bk->n == bk->cap) {
        bk->cap = bk->cap ? bk->cap * 2 : 64;
        bk->v = lb_realloc(bk->v, bk->cap * sizeof *bk->v);
    }
    bk->v[bk->n++] = *e;
}

static inline void heap_push(sim_t *s, const hent_t *e)
{
    int i = bucket_of(e->time, s->rlast);
    bucket_append(&s->bk[i], e);
    s->nonempty |= 1ULL << i;
    s->heap_n++;
}

/* Makes bucket 0 non-empty if any event is queued and the minimum is <= until.
 * Returns false when the queue is empty or the next event is later than until. */
static bool heap_ready(sim_t *s, sim_time_t until)
{
    bucket_t *b0 = &s->bk[0];
    if (s->b0_head < b0->n) return s->rlast <= until;
    b0->n = 0;
    s->b0_head = 0;
    s->nonempty &= ~1ULL;
    if (s->heap_n == 0) return false;
    assert(s->nonempty);
    int i = __builtin_ctzll(s->nonempty);
    bucket_t *bk = &s->bk[i];
    sim_time_t m = bk->v[0].time;
    for (size_t k = 1; k < bk->n; k++)
        if (bk->v[k].time < m) m = bk->v[k].time;
    if (m > until) return false;
    s->rlast = m;
    size_t n = bk->n;
    bk->n = 0;
    s->nonempty &= ~(1ULL << i);
    for (size_t k = 0; k < n; k++) {
        int j = bucket_of(bk->v[k].time, m);
        bucket_append(&s->bk[j], &bk->v[k]);
        s->nonempty |= 1ULL << j;
    }
    return true;
}

sim_handle_t sim_schedule_at(sim_t *s, sim_time_t when, sim_event_cb cb, void *a, void *b)
{
    assert(when >= s->now);
    assert(cb);
    hent_t e = {when, s->next_seq++, cb, a, b};
    heap_push(s, &e);
    return (sim_handle_t){when, e.seq};
}

sim_handle_t sim_schedule(sim_t *s, sim_time_t delay, sim_event_cb cb, void *a, void *b)
{
    assert(delay >= 0);
    return sim_schedule_at(s, s->now + delay, cb, a, b);
}

static bool has_run(const sim_t *s, const sim_handle_t *h)
{
    return h->time < s->last_time || (h->time == s->last_time && h->seq <= s->last_seq);
}

bool sim_pending(const sim_t *s, const sim_handle_t *h)
{
    return h->seq != 0 && !has_run(s, h) && !seqset_has(&s->cancelled, h->seq);
}

sim_time_t sim_handle_time(const sim_t *s, const sim_handle_t *h)
{
    return sim_pending(s, h) ? h->time : SIM_TIME_MAX;
}

/* Removes every cancelled entry from the buckets (order of the rest kept) and empties
 * the cancelled set: every seq in the set is still queued, so all are found. */
static void purge_cancelled(sim_t *s)
{
    for (int i = 0; i < 64; i++) {
        bucket_t *bk = &s->bk[i];
        size_t from = i == 0 ? s->b0_head : 0, w = from;
        for (size_t k = from; k < bk->n; k++)
            if (!seqset_has(&s->cancelled, bk->v[k].seq)) bk->v[w++] = bk->v[k];
        s->heap_n -= bk->n - w;
        bk->n = w;
        if (i != 0 && w == 0) s->nonempty &= ~(1ULL << i);
        if (bk->cap > 1024 && bk->n < bk->cap / 4) {
            bk->cap = bk->n * 2 > 64 ? bk->n * 2 : 64;
            bk->v = lb_realloc(bk->v, bk->cap * sizeof *bk->v);
        }
    }
    memset(s->cancelled.slot, 0, s->cancelled.cap * sizeof *s->cancelled.slot);
    s->cancelled.n = 0;
}

bool sim_cancel(sim_t *s, sim_handle_t *h)
{
    bool was = sim_pending(s, h);
    if (was) {
        seqset_add(&s->cancelled, h->seq);
        if (s->cancelled.n >= CANCEL_PURGE_MIN && s->cancelled.n * 2 >= s->heap_n)
            purge_cancelled(s);
    }
    h->time = 0;
    h->seq = 0;
    return was;
}

void sim_stop(sim_t *s) { s->stopped = true; }

void sim_set_progress(sim_t *s, uint64_t every, sim_progress_cb cb, void *data)
{
    s->progress_every = every;
    s->progress_cb = cb;
    s->progress_data = data;
}

uint64_t sim_run(sim_t *s, sim_time_t until)
{
    uint64_t ran = 0, next_progress = s->progress_every;
    s->stopped = false;
    while (!s->stopped && heap_ready(s, until)) {
        hent_t top = s->bk[0].v[s->b0_head++];
        s->heap_n--;
        s->last_time = top.time;
        s->last_seq = top.seq;
        if (s->cancelled.n && seqset_has(&s->cancelled, top.seq)) {
            seqset_del(&s->cancelled, top.seq);
            continue;
        }
        s->now = top.time;
        top.cb(s, top.a, top.b);
        ran++;
        if (s->progress_cb && ran >= next_progress) {
            next_progress += s->progress_every;
            s->progress_cb(s, s->progress_data);
        }
    }
    s->events_run += ran;
    if (!s->stopped && until != SIM_TIME_MAX && s->now < until)
        s->now = until;
    return ran;
}

gsl_rng *sim_rng_fresh(const sim_t *s, const char *name)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) {
        fprintf(stderr, "out of memory (gsl_rng_alloc)\n");
        abort();
    }
    /* mt19937 takes 32 bits of seed; mix seed and name so streams are independent. */
    uint64_t seed = lb_mix64(s->seed * 0x9e3779b97f4a7c15ULL ^ lb_hash_str(name));
    gsl_rng_set(r, (unsigned long)(seed ^ (seed >> 32)) & 0xffffffffUL);
    return r;
}

gsl_rng *sim_rng(sim_t *s, const char *name)
{
    uint64_t h = lb_hash_str(name);
    for (size_t it, i = lb_index_first(&s->rng_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&s->rng_index, h, &it))
        if (strcmp(s->rngs.v[i].name, name) == 0) return s->rngs.v[i].rng;
    gsl_rng *r = sim_rng_fresh(s, name);
    rng_stream_t st = {lb_strdup(name), h, r};
    lb_vec_push(&s->rngs, st);
    lb_index_add(&s->rng_index, h, s->rngs.n - 1);
    return r;
}

const char *sim_time_str(sim_time_t t, char *buf)
{
    const char *sign = t < 0 ? "-" : "";
    if (t < 0) t = -t;
    snprintf(buf, 32, "%s%lld.%09llds", sign, (long long)(t / SIM_S), (long long)(t % SIM_S));
    return buf;
}

/* explain.c -- causal chains: notes in a ring (the newest EXPLAIN_MAX_NOTES), notes about
 * element state (flow 0) also pinned so they outlive the ring, a direct-mapped table from
 * flow to its latest note and from a downstream flow to its upstream flow, and, per
 * (traffic source, outcome class), a chain captured when the first example happens --
 * captured then because the ring may have moved on by the end of the run.
 *
 * A note's id is its sequence number; ring slot = id % EXPLAIN_MAX_NOTES, valid while the
 * slot still holds that id. Each note also points at the previous note of its flow, so a
 * flow's notes are walked newest to oldest. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "explain.h"
#include "lb.h"

#define FLOW_TAB (1u << 17)         /* direct-mapped: collisions forget the older flow */
#define PINNED_MAX 20000
#define FLOW_NOTES_MAX 12           /* notes of one flow walked into a chain */

typedef struct note {
    uint64_t id, flow, cause, prev;  /* prev: previous note of the same flow */
    sim_time_t t;
    char where[40];
    char text[200];
} note_t;

typedef struct flow_ent { uint64_t flow, last, up; } flow_ent_t;
typedef struct owner_state { char *owner; uint64_t note; } owner_state_t;

typedef struct example {
    char *source;
    int cls;
    uint64_t flow;
    sim_time_t t;
    char *text;
    note_t *chain;                   /* time order */
    size_t n;
} example_t;

struct explain {
    sim_t *sim;
    note_t *ring;
    uint64_t next_id;
    note_t *pinned;                  /* flow-0 notes, in id order */
    size_t n_pinned;
    flow_ent_t *flows;
    LB_VEC(example_t) examples;
    LB_VEC(owner_state_t) states;
};

explain_t *explain_new(sim_t *sim)
{
    explain_t *ex = lb_calloc(1, sizeof *ex);
    ex->sim = sim;
    ex->next_id = 1;
    return ex;
}

/* The tables (~37 MB) are made on the first note or link: a run that is only built (the
 * validation of every variant before anything runs) never pays for them. */
static void tables(explain_t *ex)
{
    if (ex->ring) return;
    ex->ring = lb_calloc(EXPLAIN_MAX_NOTES, sizeof *ex->ring);
    ex->pinned = lb_calloc(PINNED_MAX, sizeof *ex->pinned);
    ex->flows = lb_calloc(FLOW_TAB, sizeof *ex->flows);
}

void explain_free(explain_t *ex)
{
    if (!ex) return;
    for (size_t i = 0; i < ex->examples.n; i++) {
        lb_free(ex->examples.v[i].source);
        lb_free(ex->examples.v[i].text);
        lb_free(ex->examples.v[i].chain);
    }
    lb_vec_free(&ex->examples);
    for (size_t i = 0; i < ex->states.n; i++) lb_free(ex->states.v[i].owner);
    lb_vec_free(&ex->states);
    lb_free(ex->ring);
    lb_free(ex->pinned);
    lb_free(ex->flows);
    lb_free(ex);
}

static const flow_ent_t no_flow;

static const flow_ent_t *flow_slot(const explain_t *ex, uint64_t flow)
{
    return ex->flows ? &ex->flows[lb_mix64(flow) & (FLOW_TAB - 1)] : &no_flow;
}

static flow_ent_t *flow_slot_mut(explain_t *ex, uint64_t flow)
{
    tables(ex);
    return &ex->flows[lb_mix64(flow) & (FLOW_TAB - 1)];
}

/* The note with this id, from the ring or the pinned list; NULL when forgotten. */
static const note_t *note_get(const explain_t *ex, uint64_t id)
{
    if (!id || !ex->ring) return NULL;
    const note_t *n = &ex->ring[id % EXPLAIN_MAX_NOTES];
    if (n->id == id) return n;
    size_t lo = 0, hi = ex->n_pinned;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ex->pinned[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < ex->n_pinned && ex->pinned[lo].id == id ? &ex->pinned[lo] : NULL;
}

uint64_t explain_note(explain_t *ex, const char *where, uint64_t flow, uint64_t cause,
                      const char *fmt, ...)
{
    if (!ex) return 0;
    tables(ex);
    uint64_t id = ex->next_id++;
    note_t *n = &ex->ring[id % EXPLAIN_MAX_NOTES];
    memset(n, 0, sizeof *n);
    n->id = id;
    n->flow = flow;
    n->cause = cause;
    n->t = sim_now(ex->sim);
    snprintf(n->where, sizeof n->where, "%s", where ? where : "-");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->text, sizeof n->text, fmt, ap);
    va_end(ap);
    if (flow) {
        flow_ent_t *f = flow_slot_mut(ex, flow);
        if (f->flow != flow) *f = (flow_ent_t){flow, 0, 0};
        n->prev = f->last;
        f->last = id;
    } else if (ex->n_pinned < PINNED_MAX) {
        ex->pinned[ex->n_pinned++] = *n;
    }
    return id;
}

void explain_set_state(explain_t *ex, const char *owner, uint64_t note)
{
    if (!ex || !owner) return;
    for (size_t i = 0; i < ex->states.n; i++)
        if (strcmp(ex->states.v[i].owner, owner) == 0) {
            ex->states.v[i].note = note;
            return;
        }
    owner_state_t st = {lb_strdup(owner), note};
    lb_vec_push(&ex->states, st);
}

uint64_t explain_state(const explain_t *ex, const char *owner)
{
    if (!ex || !owner) return 0;
    for (size_t i = 0; i < ex->states.n; i++)
        if (strcmp(ex->states.v[i].owner, owner) == 0) return ex->states.v[i].note;
    return 0;
}

uint64_t explain_flow_last(const explain_t *ex, uint64_t flow)
{
    if (!ex || !flow) return 0;
    const flow_ent_t *f = flow_slot(ex, flow);
    return f->flow == flow ? f->last : 0;
}

void explain_link(explain_t *ex, uint64_t down, uint64_t up)
{
    if (!ex || !down || !up) return;
    flow_ent_t *f = flow_slot_mut(ex, down);
    if (f->flow != down) *f = (flow_ent_t){down, 0, 0};
    f->up = up;
}

uint64_t explain_flow_up(const explain_t *ex, uint64_t down)
{
    if (!ex || !down) return 0;
    const flow_ent_t *f = flow_slot(ex, down);
    return f->flow == down ? f->up : 0;
}

/* ---- chains ---- */

typedef LB_VEC(note_t) notes_t;

static bool have(const notes_t *v, uint64_t id)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i].id == id) return true;
    return false;
}

/* Adds a note and, transitively, what caused it. */
static void add_with_causes(const explain_t *ex, notes_t *out, const note_t *n)
{
    for (int depth = 0; n && depth < EXPLAIN_CHAIN_MAX && !have(out, n->id); depth++) {
        lb_vec_push(out, *n);
        n = note_get(ex, n->cause);
    }
}

/* Adds a flow's notes (and their causes), then those of the flows it was served over. */
static void add_flow(const explain_t *ex, notes_t *out, uint64_t flow, int depth)
{
    if (!flow || depth > 4) return;
    int k = 0;
    for (const note_t *n = note_get(ex, explain_flow_last(ex, flow));
         n && k < FLOW_NOTES_MAX; n = note_get(ex, n->prev), k++)
        add_with_causes(ex, out, n);
    const flow_ent_t *f = flow_slot(ex, flow);
    if (f->flow == flow && f->up && f->up != flow) add_flow(ex, out, f->up, depth + 1);
}

static int by_time(const void *a, const void *b)
{
    const note_t *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void explain_outcome(explain_t *ex, const char *source, int cls, uint64_t flow,
                     const char *text)
{
    if (!ex || cls == M_2XX) return;
    for (size_t i = 0; i < ex->examples.n; i++)
        if (ex->examples.v[i].cls == cls && strcmp(ex->examples.v[i].source, source) == 0)
            return;
    notes_t chain = {0};
    add_flow(ex, &chain, flow, 0);
    if (chain.n) qsort(chain.v, chain.n, sizeof *chain.v, by_time);
    example_t e = {lb_strdup(source), cls, flow, sim_now(ex->sim), lb_strdup(text ? text : ""),
                   chain.v, chain.n};
    lb_vec_push(&ex->examples, e);
}

size_t explain_print(const explain_t *ex, const metrics_t *m, FILE *out)
{
    if (!ex) return 0;
    for (size_t i = 0; i < ex->examples.n; i++) {
        const example_t *e = &ex->examples.v[i];
        char t[32];
        uint64_t count = 0;
        if (m) {
            int src = metrics_source_find(m, e->source);
            m_window_t all = {0, SIM_TIME_MAX};
            if (src >= 0) count = metrics_requests(m, src, 1u << e->cls, all);
        }
        fprintf(out, "\n%s: %s", e->source, m_class_name(e->cls));
        if (count) fprintf(out, " (%llu requests)", (unsigned long long)count);
        fprintf(out, ", e.g. flow %llu at %s: %s\n", (unsigned long long)e->flow,
                sim_time_str(e->t, t), e->text);
        size_t from = e->n > EXPLAIN_CHAIN_MAX ? e->n - EXPLAIN_CHAIN_MAX : 0;
        if (from) fprintf(out, "    ... %zu earlier steps\n", from);
        for (size_t k = from; k < e->n; k++) {
            const note_t *a = &e->chain[k];
            bool seen = false;             /* printed already: it is listed as a repeat */
            for (size_t j = from; j < k && !seen; j++)
                seen = strcmp(e->chain[j].where, a->where) == 0 &&
                       strcmp(e->chain[j].text, a->text) == 0;
            if (seen) continue;
            fprintf(out, "  %14s  %-16s %s\n", sim_time_str(a->t, t), a->where, a->text);
            size_t again = 0;
            for (size_t j = k + 1; j < e->n; j++) {
                if (strcmp(e->chain[j].where, a->where) || strcmp(e->chain[j].text, a->text))
                    continue;
                if (!again++) fprintf(out, "  %14s  %-16s   (again at ", "", "");
                else fprintf(out, ", ");
                fprintf(out, "%s", sim_time_str(e->chain[j].t, t));
            }
            if (again) fprintf(out, ")\n");
        }
        if (!e->n) fprintf(out, "    (no recorded cause: the flow's notes were not kept)\n");
    }
    return ex->examples.n;
}

size_t explain_example_count(const explain_t *ex) { return ex ? ex->examples.n : 0; }

bool explain_example_at(const explain_t *ex, size_t i, const char **source, int *cls,
                        uint64_t *flow, sim_time_t *t)
{
    if (!ex || i >= ex->examples.n) return false;
    const example_t *e = &ex->examples.v[i];
    *source = e->source;
    *cls = e->cls;
    *flow = e->flow;
    *t = e->t;
    return true;
}

bool explain_example_note(const explain_t *ex, size_t i, size_t k, sim_time_t *t,
                          const char **where, uint64_t *flow, const char **text)
{
    if (!ex || i >= ex->examples.n || k >= ex->examples.v[i].n) return false;
    const note_t *n = &ex->examples.v[i].chain[k];
    *t = n->t;
    *where = n->where;
    *flow = n->flow;
    *text = n->text;
    return true;
}

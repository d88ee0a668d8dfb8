/* draw_int.h -- declarations shared inside the pictures module (draw.c: topology and the
 * run's recorder; ladder.c: packet ladders). Private to src/report. */
#ifndef DRAW_INT_H
#define DRAW_INT_H

#include <stdio.h>
#include "draw.h"
#include "explain.h"

/* ---- the topology model ------------------------------------------------------------------
 * Items (boxes), groups (Graphviz clusters / Mermaid subgraphs, nested by parent) and
 * edges, in the order built; ids are indexes. Every string is owned (lb_malloc). */
enum dr_kind {
    DR_CLIENT, DR_L7, DR_L4, DR_L4PROBE, DR_KPROXY, DR_GWPOD, DR_POD, DR_HOST, DR_ROUTER,
    DR_KIND_COUNT
};
enum dr_mark { DR_MARK_NONE, DR_MARK_BAD, DR_MARK_PATH };

typedef LB_VEC(char *) dr_strs_t;

typedef struct dr_item {
    int kind;                   /* enum dr_kind */
    int group;                  /* -1: top level */
    char *title;
    dr_strs_t lines;            /* details under the title */
    dr_strs_t marks;            /* what the run saw here (drops, state) */
    int mark;                   /* enum dr_mark */
    dr_strs_t names;            /* net node / element names that are this item (owned) */
    char *role;                 /* one line for a ladder lane: "node 10.224.0.5" */
    bool hidden;                /* a ladder lane only (a probe source, a node's own box) */
} dr_item_t;

typedef struct dr_group {
    int parent;                 /* -1: top level */
    char *label;
    int style;                  /* 0 plain, 1 cloud element, 2 cluster, 3 pool/zone, 4 node */
} dr_group_t;

typedef struct dr_edge {
    int from, to;
    char *label;                /* NULL: none */
    char *mark_text;            /* what the run saw on it; NULL: nothing */
    int mark;                   /* enum dr_mark */
    bool dashed;                /* a link, not a traffic direction */
} dr_edge_t;

typedef struct dr_addr { uint32_t addr; int item; } dr_addr_t;
typedef struct dr_checker { char *name, *what; int from; } dr_checker_t;

typedef struct dr_graph {
    char *title;
    LB_VEC(dr_item_t) items;
    LB_VEC(dr_group_t) groups;
    LB_VEC(dr_edge_t) edges;
    dr_strs_t notes;            /* graph-level notes (drops with no element, the path) */
    /* lookups: addresses to items (frontends, node and pod addresses) */
    LB_VEC(dr_addr_t) addrs;
    /* health checkers to the item probing and how targets map to items */
    LB_VEC(dr_checker_t) checkers;
} dr_graph_t;

/* Reads the built run r (of scenario s) into g. */
void dr_graph_build(dr_graph_t *g, scn_t *s, scn_run_t *r);
void dr_graph_free(dr_graph_t *g);
/* The item a node or element name is, or -1. */
int dr_item_named(const dr_graph_t *g, const char *name);
int dr_item_addr(const dr_graph_t *g, uint32_t addr);

/* ---- what the run saw -------------------------------------------------------------------- */
/* A note of an example's causal chain, copied out of the run (explain.h). */
typedef struct dr_note { sim_time_t t; uint64_t flow; char *where, *text; } dr_note_t;

typedef struct dr_example {
    int source, cls;            /* metrics source, enum m_class */
    uint64_t flow, req_id;
    sim_time_t t_start, t_end;
    int status;
    char path[96];
    uint64_t chain[8];          /* the client flow, then the upstream flows serving it */
    size_t n_chain;
    char *source_name;          /* copied from the run by draw_rec_write */
    LB_VEC(dr_note_t) notes;    /* its causal chain (none for the success) */
} dr_example_t;

/* Drops by (element, reason); health changes by (checker, target). */
typedef struct dr_drop {
    char *owner;
    const char *reason;             /* == reason_own */
    char *reason_own;
    uint64_t count, syns;
    sim_time_t first;
} dr_drop_t;
typedef struct dr_health {
    char *checker, *target, *reason;    /* reason: the probe result of the first DOWN */
    sim_time_t first_down, last_up;
    bool down;                      /* down at the end */
    int downs;
} dr_health_t;

struct draw_rec {
    metrics_t *m;
    explain_t *ex;
    LB_VEC(dr_drop_t) drops;
    LB_VEC(dr_health_t) health;
    LB_VEC(dr_example_t) examples;      /* failures: first per (source, class); + one 2xx */
    bool have_success;
    /* kept from draw_rec_write to draw_rec_finish: the run is gone by then */
    dr_graph_t g;
    bool have_graph, complete;
};

/* The element a drop is attributed to: the node, else the detail's "NAME:" prefix (a load
 * balancer or a fabric), as the causal notes do. Into buf; returns buf. */
const char *dr_drop_owner(const char *where, const char *detail, char *buf, size_t len);

/* ---- ladders (ladder.c) ---------------------------------------------------------------- */
/* Replays variant `variant` of s with seed up to rec's last example, records the example
 * flows' packets and writes DIR/<stem>.svg and <stem>.mmd (stem "ladder-<v>"). g is the
 * variant's topology (lanes' roles); rec's examples carry their notes and source names
 * (the first run is freed by then, so the two runs never take memory together). Returns 0
 * (also when there is nothing to draw: no file then), or LB_EIO with a message in err. */
int dr_ladder_write(const draw_rec_t *rec, const dr_graph_t *g, scn_t *s, size_t variant,
                    uint64_t seed, const char *dir, const char *stem, char *err, size_t errlen);

/* ---- shared text helpers ------------------------------------------------------------------ */
/* A formatted, owned string (lb_sprintf) pushed onto v. */
void dr_strs_add(dr_strs_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dr_strs_free(dr_strs_t *v);
/* Seconds with 3 decimals ("21.017 s"), or ms below one second. */
const char *dr_time_str(sim_time_t t, char *buf, size_t len);
/* Writes text (len bytes) to dir/name atomically; 0 or LB_EIO with err. */
int dr_write_file(const char *dir, const char *name, const char *text, size_t len,
                  char *err, size_t errlen);

#endif

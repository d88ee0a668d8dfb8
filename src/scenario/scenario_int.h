/* scenario_int.h -- declarations shared inside src/scenario and private to it: the
 * positioned YAML tree, the validated model of one variant (what build.c turns into a
 * simulation), parsed expectations, and diagnostics helpers. */
#ifndef SCENARIO_INT_H
#define SCENARIO_INT_H

#include <stdarg.h>
#include "scenario.h"
#include "element.h"
#include "manifests.h"

typedef struct scn_files scn_files_t;

/* ---- diagnostics ------------------------------------------------------------------------ */
/* Fills *d with pos and the formatted message (first error wins when d->msg is set and
 * keep_first); returns rc. d may be NULL. */
#define diag_set scn_diag_set       /* include/scenario.h */
int diag_vset(scn_diag_t *d, elem_pos_t pos, int rc, const char *fmt, va_list ap);
/* Appends "a, b, c" (at most max names, then ", ...") to buf. */
void names_join(char *buf, size_t n, const char *const *names, size_t count, size_t max);

/* ---- the positioned YAML tree -------------------------------------------------------------
 * Every node keeps where it was written (1-based line and column). Maps keep their keys in
 * file order (duplicates are rejected while parsing). Scalars keep their text; a plain
 * empty/~/null scalar is SCN_NULL. Strings in pos.file are not owned by the tree: they
 * belong to the scn_t (file names) or are static ("<command line>", "<default>").
 * Nodes are shared (an alias, the variants' trees, manifests taken from the scenario) and
 * counted: each owner holds a reference (yt_ref), yt_free drops one. A node with more than
 * one reference is never changed in place: yt_own first gives the caller its own shallow
 * copy (copy on write), so a variant that sets one key copies only the path to it. */
struct scn_node {
    scn_node_kind_t kind;
    elem_pos_t pos;
    char *str;                  /* SCN_SCALAR and SCN_NULL: the text ("" for null) */
    bool quoted;                /* written in quotes */
    int refs;                   /* owners; freed when the last one lets go */
    size_t n, cap;              /* SCN_MAP: pairs; SCN_SEQ: items */
    char **keys;                /* SCN_MAP */
    elem_pos_t *kpos;           /* SCN_MAP: position of each key */
    scn_node_t **v;             /* SCN_MAP values, SCN_SEQ items */
    lb_index_t *index;          /* SCN_MAP with many keys: key hash -> pair */
};

/* Bounds on what one scenario reads: bytes per file (the scenario and each `file:`
 * include; far above real manifests, far below memory trouble), and bytes and YAML nodes
 * (aliases counted as copies) over all the files one scenario includes. */
#define SCN_MAX_FILE_BYTES (16 << 20)
#define SCN_MAX_INCLUDE_BYTES (64 << 20)
#define SCN_MAX_INCLUDE_NODES (4u << 20)

/* Parses every document of text. *docs (array and nodes) is owned by the caller:
 * free each with yt_free, the array with lb_free. col_off > 0 means a one-line
 * command-line value that starts at column col_off + 1: columns shift right by col_off
 * and positions past the line point just after its end. *nodes (may be NULL) gets the
 * node count with aliases counted as copies. 0, or LB_EPARSE (LB_EINTR on a stop
 * request) with *diag. */
int yt_parse(const char *text, size_t len, const char *fname, int col_off,
             scn_node_t ***docs, size_t *ndocs, size_t *nodes, scn_diag_t *diag);
/* Parses exactly one document (an empty text gives a null node). */
int yt_parse_one(const char *text, const char *fname, int col_off, scn_node_t **out,
                 scn_diag_t *diag);
int yt_parse_one_n(const char *text, size_t len, const char *fname, int col_off,
                   scn_node_t **out, scn_diag_t *diag);
scn_node_t *yt_new(scn_node_kind_t kind, elem_pos_t pos, const char *str);
/* Another reference to n (NULL-safe); returns n. */
scn_node_t *yt_ref(const scn_node_t *n);
/* Makes *slot the caller's own (a shallow copy, children shared, when it is shared) and
 * returns it: call before changing a node. */
scn_node_t *yt_own(scn_node_t **slot);
/* yt_own on map[key]; NULL when the key is absent. map must be owned. */
scn_node_t *yt_own_key(scn_node_t *map, const char *key);
void yt_free(scn_node_t *n);                          /* drops a reference; NULL-safe */
/* Map lookup (NULL if absent or n is not a map); *idx gets the pair index when given. */
scn_node_t *yt_get(const scn_node_t *map, const char *key, size_t *idx);
/* Appends or replaces map[key] = v (v's reference taken). map must be owned. */
void yt_map_set(scn_node_t *map, const char *key, elem_pos_t kpos, scn_node_t *v);
void yt_seq_push(scn_node_t *seq, scn_node_t *v);    /* seq must be owned */
/* Reads a whole regular file of at most SCN_MAX_FILE_BYTES, NUL-terminated (caller frees);
 * never blocks (FIFOs, devices and directories are refused). NULL with *diag (LB_EIO). */
char *scn_read_file(const char *path, size_t *len, scn_diag_t *diag);
/* scn_docs_load, also telling the bytes read and the nodes parsed (either may be NULL). */
int scn_docs_load_counted(const char *path, scn_docs_t **out, size_t *bytes, size_t *nodes,
                          scn_diag_t *diag);
/* "a mapping", "a list", "a string", "nothing" -- for messages. */
const char *yt_kind_desc(const scn_node_t *n);

/* ---- element configuration from the tree (element.c) ------------------------------------ */
/* Validates map against params and converts every value. `what` names the object in
 * messages ("link", "node 'r1'"). Keys listed in `extra` are accepted and skipped (the
 * loader's own keys, e.g. "type" when the table lacks it). 0 or LB_EINVAL with *diag. */
int elem_cfg_from_node(const elem_param_t *params, const scn_node_t *map, const char *what,
                       const char *const *extra, elem_cfg_t **out, scn_diag_t *diag);
/* The value of `name` or NULL when the table has no such parameter (no assert). */
const elem_val_t *elem_find(const elem_cfg_t *c, const char *name);
/* Levenshtein distance (bytes). */
size_t elem_distance(const char *a, const char *b);
/* Closest of names to s, or NULL; same rule as elem_closest. */
const char *closest_name(const char *s, const char *const *names, size_t n);

/* ---- validated model of one variant (validate.c) ----------------------------------------- */
typedef struct scn_elem {
    char *name;
    const elem_type_t *type;
    elem_cfg_t *cfg;
    elem_pos_t pos;
    bool group;                 /* `count` given: members are name0 .. name<count-1> */
    int count;
} scn_elem_t;

/* One point-to-point link after group expansion: node names and the address plan
 * (a gets addr_a, b gets addr_b, both in prefix/plen). */
typedef struct scn_pair {
    char *a, *b;
    uint32_t prefix, addr_a, addr_b;
    int plen;
} scn_pair_t;
/* One member of a shared segment (a link with `members`) after group expansion: its node,
 * the address it gets (planned by topology_plan) and its member entry (segment_params:
 * node, address, addresses). */
typedef struct scn_member {
    char *node;
    uint32_t addr;
    const elem_cfg_t *cfg;      /* borrowed from the link's cfg */
} scn_member_t;
typedef struct scn_link {
    elem_cfg_t *cfg;            /* link_params */
    elem_pos_t pos;
    LB_VEC(scn_pair_t) pairs;   /* one per member after group expansion */
    LB_VEC(scn_member_t) members;   /* a segment: every node on it (pairs empty) */
} scn_link_t;

/* A parsed expectation (expect.c). */
enum { EX_LT, EX_LE, EX_GT, EX_GE, EX_EQ, EX_NE };
enum { ST_REQUESTS, ST_COMPLETED, ST_RATIO, ST_STATUS_RATIO, ST_LATENCY_Q, ST_LATENCY_MEAN,
       ST_COUNTER, ST_BODY_MATCH, ST_HEADER_MATCH };
typedef struct scn_expect {
    char *text;                 /* as written */
    elem_pos_t pos;
    char *variant;              /* the expect key it came from ("*" or a variant name) */
    char *source;               /* traffic name; NULL: all traffic ("client") */
    int stat;                   /* ST_* */
    unsigned classes;           /* ST_RATIO: numerator classes */
    int status;                 /* ST_STATUS_RATIO: the exact status code */
    double q;                   /* ST_LATENCY_Q */
    char *counter;              /* ST_COUNTER */
    char *arg[2];               /* ST_BODY_MATCH: the text; ST_HEADER_MATCH: name, value */
    int op;                     /* EX_* */
    double number;
    sim_time_t from, to;        /* window; to = -1: the run's duration */
} scn_expect_t;

/* A node that the node elements create: a single node (member -1) or a group's member. */
typedef struct scn_nodename { uint32_t elem; int32_t member; } scn_nodename_t;

typedef struct scn_model {
    int refs;                   /* the scn_t and each run hold one */
    char *name, *description;
    uint64_t seed;
    sim_time_t duration;
    net_all_links_t all_links;  /* the all-links key (zeros: none) */
    LB_VEC(scn_elem_t) elems[ELEM_KIND_COUNT];
    lb_index_t elem_index[ELEM_KIND_COUNT];     /* hash of a name -> elems[sec] position */
    LB_VEC(scn_nodename_t) node_names;          /* every node name, in element order */
    lb_index_t node_index;                      /* hash of a node name -> node_names */
    LB_VEC(scn_link_t) links;
    LB_VEC(scn_expect_t) expects;   /* only those applying to this variant */
    scn_node_t *tree;           /* the resolved tree (P_ANY values point into it) */
    manifests_t *kube;          /* the kubernetes section's objects; NULL without one */
    bool kube_warned;           /* its warnings were printed (scn_warnings_flush) */
} scn_model_t;

/* Validates a resolved tree (its reference taken) into a model for variant `variant`
 * (NULL: the base, whose expectations are not kept). variants lists every variant name for
 * `expect` keys; files (may be NULL) is the scenario's cache of included files. */
int model_new(scn_node_t *tree, const char *variant, const char *const *variants,
              size_t nvariants, scn_files_t *files, scn_model_t **out, scn_diag_t *diag);
void model_unref(scn_model_t *m);
/* The element named `name` in section sec, or NULL. */
const scn_elem_t *model_elem(const scn_model_t *m, elem_section_t sec, const char *name);

/* ---- variants and the scn_t (variant.c) ------------------------------------------------------ */
/* Records that the scenario being loaded (or re-resolved by scn_override) read `path`
 * with this text; nothing when no scenario is being loaded (scn_sources_*). */
void scn_src_note(const char *path, const char *text, size_t len);
scn_model_t *scn_variant_model(const scn_t *s, size_t v);
FILE *scn_warn_stream(const scn_t *s);
/* Sets the dotted `path` in *root to value (shared; the path to it is copied on write, so
 * *root may be replaced by the caller's own copy). kpos locates the path for errors; when
 * `literal` (the path's text stands at kpos as written: a command-line key, a plain key in
 * a file), each component's errors and its key's position point at the component. */
int variant_set(scn_node_t **root, const char *path, elem_pos_t kpos, bool literal,
                const scn_node_t *value, scn_diag_t *diag);

/* ---- expectations (expect.c) --------------------------------------------------------------- */
int expect_parse(const char *text, elem_pos_t pos, scn_expect_t *e, scn_diag_t *diag);
void expect_clear(scn_expect_t *e);
/* Whether request q counts for e's numerator by what came back: ST_BODY_MATCH and
 * ST_HEADER_MATCH (expect.c's matching rules); false for other statistics. */
bool expect_response_matches(const scn_expect_t *e, const m_request_t *q);
/* Evaluates e; status_count is the count of requests in the window that the record hook
 * (build.c) counted for e: the exact status (ST_STATUS_RATIO) or a response match
 * (ST_BODY_MATCH, ST_HEADER_MATCH). */
void expect_eval(const scn_expect_t *e, const metrics_t *m, sim_time_t duration,
                 uint64_t status_count, scn_verdict_t *out);

/* ---- the kubernetes section (manifests.c) -------------------------------------------------------- */
/* The files a scenario includes (`file:` items): each is read and parsed once, however
 * many variants name it, and together they stay within SCN_MAX_INCLUDE_BYTES and
 * SCN_MAX_INCLUDE_NODES. */
scn_files_t *scn_files_new(void);
void scn_files_free(scn_files_t *f);                  /* NULL-safe */
/* Loads `kubernetes` (inline manifests, { file: PATH }), applies kubernetes-remove,
 * kubernetes-add and kubernetes-set, and converts everything. files may be NULL (files are
 * then read for this call only). *out is NULL when the tree has none of these keys. 0, or
 * an error with *d (nothing allocated). */
int kube_load(const scn_node_t *tree, scn_files_t *files, manifests_t **out, scn_diag_t *d);
/* A set:/override key "kubernetes.KIND/NS/NAME.field" (rest: after "kubernetes.") as an
 * entry of the tree's kubernetes-set mapping (created when missing). Returns 0. For
 * variant_set: keys "kubernetes.<digit>..." still index the kubernetes list. root must be
 * owned (yt_own). */
int kube_path_set(scn_node_t *root, const char *rest, elem_pos_t kpos, const scn_node_t *value);

/* ---- topology (topology.c) ----------------------------------------------------------------- */
extern const elem_param_t link_params[];
/* Plans every link's addresses (explicit subnets first, then the next free /30 of
 * 10.0.0.0/8 in link order, skipping explicit subnets and extra node addresses). */
int topology_plan(scn_model_t *m, scn_diag_t *diag);
/* Creates interfaces and links for every model link (in order), then static routes. */
int topology_build_links(build_ctx_t *ctx, const scn_model_t *m);
void topology_register(void);
/* Calls every model's `void NAME_register(void)` (in models/), in the order of their
 * source paths: a table the Makefile generates (build/gen/elem_types.c). */
void elem_register_models(void);

/* ---- build context (build.c) --------------------------------------------------------------- */
const scn_model_t *build_model(build_ctx_t *ctx);

#endif

/* element.h -- the registry of element types and their typed parameters. A model
 * registers a type ("router", "http-server", later "azure-internal-lb") with a table of
 * parameters (name, kind, default, doc) and a build function. The scenario loader
 * validates YAML against the table (unknown keys get the closest valid name), converts
 * units, and calls build() with typed values -- models never see YAML, and a unit test
 * can fill an elem_cfg_t by hand and call the same build function. This header is the
 * boundary between models and the scenario layer: everything a model needs from the
 * builder (build_ctx_t, build_error, build_get...) is declared here and implemented by
 * src/scenario/; models never include scenario.h (tests/layers.sh checks it). */
#ifndef ELEMENT_H
#define ELEMENT_H

#include <stdio.h>
#include "lb.h"
#include "engine.h"
#include "dist.h"
#include "net.h"
#include "metrics.h"

/* The Kubernetes objects of a variant (include/k8s.h, which includes this header). */
typedef struct k8s_objects k8s_objects_t;

typedef enum {
    P_STR, P_INT, P_FLOAT, P_BOOL,
    P_DURATION,     /* sim_time_t ns; "30s" */
    P_SIZE,         /* bytes; "1KB" */
    P_BANDWIDTH,    /* bits/s; "10Gbps" */
    P_RATE,         /* per second; "50/s" */
    P_RATIO,        /* 0..1; "1%" */
    P_DIST,         /* dist_t; "exp(5ms)" */
    P_ADDR,         /* IPv4; "10.0.0.1" */
    P_CIDR,         /* IPv4 prefix; "10.0.0.0/24" */
    P_ENUM,         /* one of param->choices */
    P_STRLIST,      /* list of strings (a scalar is a list of one) */
    P_OBJLIST,      /* list of objects validated against param->sub */
    P_OBJ,          /* one object validated against param->sub */
    P_ANY           /* raw subtree kept as-is (manifests, iptables lines) */
} elem_kind_t;

typedef struct elem_param {
    const char *name;
    elem_kind_t kind;
    const char *def;                /* default as text, parsed like YAML input; NULL: required;
                                     * "": optional without a value (zero, set = false; P_STR
                                     * gets "", P_OBJ gets its fields' defaults) */
    const char *doc;                /* one line for --help-types and the README */
    const struct elem_param *sub;   /* P_OBJ/P_OBJLIST: fields, terminated by {NULL} */
    const char *const *choices;     /* P_ENUM: NULL-terminated */
} elem_param_t;

/* Where a value came from, for file:line:col errors. */
typedef struct elem_pos { const char *file; int line, col; } elem_pos_t;

typedef struct elem_cfg elem_cfg_t;
typedef struct elem_val {
    elem_kind_t kind;
    bool set;                       /* given in the scenario (false: default) */
    elem_pos_t pos;
    union {
        char *s;                    /* P_STR, P_ENUM */
        int64_t i;                  /* P_INT, P_DURATION, P_SIZE, P_BANDWIDTH */
        double f;                   /* P_FLOAT, P_RATE, P_RATIO */
        bool b;
        uint32_t addr;              /* P_ADDR */
        struct { uint32_t addr; int plen; } cidr;
        dist_t dist;
        struct { char **v; elem_pos_t *pos; size_t n; } strs;     /* P_STRLIST */
        struct { elem_cfg_t **v; size_t n; } objs;                /* P_OBJLIST, P_OBJ(n=1) */
        void *any;                  /* P_ANY: the loader's tree node (scenario.h) */
    } u;
} elem_val_t;

/* One configured object: values in the order of its parameter table. */
struct elem_cfg {
    const elem_param_t *params;
    size_t n;
    elem_val_t *vals;
    elem_pos_t pos;                 /* the object's own position */
    char *name;                     /* element name (key in its section), may be NULL */
};
/* Value of parameter `name` (asserts it exists in the table: a programming error). */
const elem_val_t *elem_get(const elem_cfg_t *c, const char *name);
const char *elem_str(const elem_cfg_t *c, const char *name);
int64_t elem_int(const elem_cfg_t *c, const char *name);
double elem_float(const elem_cfg_t *c, const char *name);
bool elem_bool(const elem_cfg_t *c, const char *name);
/* A configuration with every default applied (for tests and for models' own use).
 * Required parameters (def NULL) are left zero with set = false. NULL with err when a
 * default text does not parse (a bug in the table). Free with elem_cfg_free. */
elem_cfg_t *elem_cfg_defaults(const elem_param_t *params, char *err, size_t errlen);
/* Sets parameter `name` from text parsed like scenario YAML ("250ms", "[a, b]", "{x: 1}");
 * marks it set. For tests and tools that fill a configuration by hand. P_ANY cannot be set.
 * Returns 0, LB_ENOENT (no such parameter) or LB_EINVAL, with a message in err. */
int elem_set(elem_cfg_t *c, const char *name, const char *text, char *err, size_t errlen);
void elem_cfg_free(elem_cfg_t *c);

/* Build context: what a build function may touch. Defined by the scenario builder. */
typedef struct build_ctx build_ctx_t;

typedef enum { ELEM_NODE, ELEM_APP, ELEM_TRAFFIC, ELEM_CLOUD, ELEM_KIND_COUNT } elem_section_t;

typedef struct elem_type {
    const char *name;               /* "router" */
    elem_section_t section;         /* which scenario section holds it */
    const char *doc;
    const elem_param_t *params;     /* terminated by {NULL} */
    /* Builds one element named `name`. Errors: return LB_EINVAL after build_error(). */
    int (*build)(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg);
} elem_type_t;

void elem_register(const elem_type_t *t);           /* duplicate names: assert */
const elem_type_t *elem_type_find(const char *name);
size_t elem_type_count(void);
const elem_type_t *elem_type_at(size_t i);
/* Registers every built-in type once: the scenario core's own (host, router, link) and each
 * model's `void NAME_register(void)`, found by the Makefile (see elem_register_models). */
void elem_register_builtin(void);
/* Levenshtein-closest of candidates to s, or NULL if nothing is close. */
const char *elem_closest(const char *s, const char *const *candidates, size_t n);

/* ---- building: the builder as element build functions see it (src/scenario/build.c) ---- */
sim_t *build_sim(build_ctx_t *ctx);
net_t *build_net(build_ctx_t *ctx);
metrics_t *build_metrics(build_ctx_t *ctx);
/* The run's causal notes (include/explain.h). */
struct explain *build_explain(build_ctx_t *ctx);
sim_time_t build_duration(build_ctx_t *ctx);
/* The Kubernetes objects of the variant being built (scn_variant_k8s), NULL when the
 * scenario has no kubernetes section. Shared by every run of the variant: read-only. */
const k8s_objects_t *build_k8s(build_ctx_t *ctx);
/* True when a stop was requested (scn_request_stop); the build then fails with LB_EINTR.
 * Element builders that loop over many things call it now and then. */
bool build_interrupted(build_ctx_t *ctx);
/* Whether a stop was requested (scn_request_stop), for a model's own long loops that have
 * no ctx (a callback such as cluster_params_t.interrupted). */
bool build_stop_requested(void);
/* Records an error at pos (the first one wins) and returns LB_EINVAL. */
int build_error(build_ctx_t *ctx, elem_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void build_warn(build_ctx_t *ctx, elem_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Named objects shared between elements (kind is a short tag: "node", "http-server"). */
void build_put(build_ctx_t *ctx, const char *name, const char *kind, void *obj);
void *build_get(build_ctx_t *ctx, const char *name, const char *kind);
/* The object of kind `kind` that element `ref` (a string parameter) names, or NULL after
 * reporting "<type> '<name>': '<ref>' is not a <kind> element defined before it". */
void *build_get_ref(build_ctx_t *ctx, const elem_val_t *ref, const char *kind,
                    const char *type, const char *name);
/* Resolves a node reference: a node name, a group name (an element with count: N yields
 * name0..nameN-1), or a glob ("web*"). Returns how many; *out is owned by ctx. */
size_t build_nodes(build_ctx_t *ctx, const char *ref, net_node_t ***out);
/* An element's frontend addresses (an LB's, one per zone for an NLB): published by the
 * element, resolved by whoever names it (a traffic `to:`, a backend pool). */
void build_put_addrs(build_ctx_t *ctx, const char *name, const uint32_t *addrs, size_t n);
/* Resolves ref: an IPv4 address, or an element that published addresses. Writes up to max
 * into out and returns how many there are (0: neither). */
size_t build_addrs(build_ctx_t *ctx, const char *ref, uint32_t *out, size_t max);
/* Where `owner` came from, for messages: "<type> '<name>' (file:line:col)" for an element,
 * "node 'N' of <type> '<name>' (file:line:col)" for a node an element created, else
 * "'owner'". */
void build_origin(build_ctx_t *ctx, const char *owner, char *buf, size_t n);
/* Names and addresses that must be unique, checked by the element about to create them.
 * Each returns 0 when `name` is free / nothing in fab holds an address of prefix/plen
 * (plen 32: one address); otherwise it reports, at pos, what collides with what and where
 * the first came from ("...already taken by node 'aks-user-0' of k8s-cluster 'aks'
 * (s.yaml:9:3)") and returns LB_EEXIST. `what` starts the message ("k8s-cluster 'aks2'
 * pool 'user'", "frontend-ip"). */
int build_check_name(build_ctx_t *ctx, elem_pos_t pos, const char *what, const char *name);
int build_check_addr(build_ctx_t *ctx, elem_pos_t pos, const char *what, net_fabric_t *fab,
                     uint32_t prefix, int plen);
/* The ICMP rate-limit sysctls of a node's kernel (net_icmp_limits_t), as the `icmp` key of
 * hosts and routers and of a k8s-cluster's node-sysctls: the keys, and each key cfg sets
 * onto *l, range-checked as the kernel checks them; 0, or a build error at the bad value
 * whose message starts with `what` ("icmp ratelimit: ..."). */
extern const elem_param_t elem_icmp_params[];
int build_icmp_sysctls(build_ctx_t *ctx, const elem_cfg_t *cfg, const char *what,
                       net_icmp_limits_t *l);
/* Runs fn(obj) when the run is freed (models free their state here). */
void build_on_free(build_ctx_t *ctx, void (*fn)(void *obj), void *obj);

#endif

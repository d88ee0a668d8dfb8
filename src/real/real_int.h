/* real_int.h -- private to src/real: the loaded bindings (bindings.c fills them, plan.c
 * resolves a run's destinations through them), the resolved plan (plan.c builds it,
 * driver.c plays it) and the classification of libcurl results (classify.c). */
#ifndef REAL_INT_H
#define REAL_INT_H

#include <curl/curl.h>
#include "real.h"
#include "apps.h"
#include "health.h"

/* ---- bindings ---------------------------------------------------------------------------- */
typedef struct rb_portmap { int sim, real; } rb_portmap_t;
typedef LB_VEC(rb_portmap_t) rb_portmaps_t;

/* One endpoint: `10.0.0.5`, `10.0.0.5:8080` or {address, ports}. */
typedef struct rb_endpoint {
    char *host;                     /* IPv4 address or DNS name */
    int port;                       /* every port of the name goes here; 0: no such rule */
    rb_portmaps_t ports;            /* simulated -> real, for this name only */
    elem_pos_t pos;
} rb_endpoint_t;

/* A bound name (element, node, pod, address) with one or more endpoints. */
typedef struct rb_named {
    char *name;
    elem_pos_t pos;                 /* the name's (the key's) */
    elem_pos_t vpos;                /* its value's: the endpoint or the list */
    LB_VEC(rb_endpoint_t) eps;
} rb_named_t;
typedef LB_VEC(rb_named_t) rb_names_t;

typedef struct rb_tls {
    char *ca_file, *cert_file, *key_file;   /* NULL: none */
    bool insecure;
    bool set;                       /* a `tls:` block was given */
} rb_tls_t;

typedef struct rb_traffic {
    char *name;
    elem_pos_t pos;                 /* the name's (the key's) */
    char *url;                      /* NULL: the source's `to:` as bound */
    char *scheme, *url_host;        /* parsed from url */
    int url_port;                   /* 0: the scheme's */
    char *connect_to;               /* "IP" or "IP:PORT", NULL: none */
    double max_rate;                /* 0: only the global cap */
    int max_in_flight;              /* 0: REAL_MAX_IN_FLIGHT_DEFAULT */
    rb_tls_t tls;                   /* tls.set false: the top-level one */
} rb_traffic_t;

/* pos: the port key's, as the service's is its name's */
typedef struct rb_nodeport { char *port_name; int port_num; int real; elem_pos_t pos; } rb_nodeport_t;
typedef struct rb_service {
    char *name;                     /* "namespace/name" */
    elem_pos_t pos;
    LB_VEC(rb_nodeport_t) node_ports;
    int hcnp;                       /* health-check-node-port; 0: not bound */
    elem_pos_t hcnp_pos;
} rb_service_t;

struct real_bindings {
    char *path;
    char *text;                     /* "# bindings file: PATH" + the file as loaded */
    scn_docs_t *docs;               /* owns the file name the positions point at */
    char *scenario;                 /* NULL: any */
    elem_pos_t scenario_pos;
    bool unbound_simulated;
    LB_VEC(rb_traffic_t) traffic;
    rb_names_t elements, nodes, pods, addresses;
    LB_VEC(rb_service_t) services;
    rb_portmaps_t ports;
    LB_VEC(char *) skip;
    rb_tls_t tls;
};

/* ---- the plan: a run's traffic and probes with real destinations (plan.c) ------------------ */
typedef struct rp_checker rp_checker_t;
typedef struct rp_source rp_source_t;

/* One health check target. */
typedef struct rp_target {
    rp_checker_t *ck;
    size_t idx;                     /* in the simulated checker */
    const char *label;              /* the checker's label (borrowed from the run) */
    char *host;                     /* real address */
    int port;                       /* real port */
    char *url;                      /* the probe URL (HTTP) or tcp host:port for display */
    char *host_header;              /* "Host: ..." line, NULL: curl's (the real address) */
    char *connect_to;               /* HTTPS probe with SNI: "SNI:port:host:port" (the URL
                                     * names the SNI, so curl sends it), else NULL */
    sim_time_t first;               /* first probe, from the start (first_delay + jitter) */
    /* state while running */
    health_sm_t sm;
    sim_time_t next;                /* next probe */
    health_result_t last, last_fail;
    bool has_last, has_fail;
    int in_flight;
} rp_target_t;

struct rp_checker {
    const health_t *hc;             /* the simulated checker (parameters, names) */
    const char *name;
    const health_params_t *p;       /* its parameters (owned by hc) */
    char *c_ok, *c_fail, *c_up, *c_down;    /* counter names, as the simulator's */
    LB_VEC(rp_target_t) targets;
};

/* A real destination of a traffic source (one per simulated target address). */
typedef struct rp_dest {
    char *url_base;                 /* "http://10.1.2.3:8080" or "https://host:443" */
    char *connect_to;               /* CURLOPT_CONNECT_TO entry, NULL: none */
} rp_dest_t;

/* A request kind of a source as libcurl sends it (plan.c builds it once per kind). */
typedef struct rp_kind {
    const app_req_spec_t *spec;     /* the simulated client's (borrowed) */
    struct curl_slist *hdrs;        /* Host, the kind's headers, Connection: close, Expect: */
    char *body;                     /* body_len bytes: the text, then zeros; NULL: none */
    long body_len;                  /* spec->body_size, at most REAL_BODY_MAX */
} rp_kind_t;
/* Request body bytes real mode sends at most (the rest of a larger body_size is not). */
#define REAL_BODY_MAX 65536

/* One client node of a source: its schedule and streams. */
typedef struct rp_cnode {
    rp_source_t *src;
    size_t idx;
    gsl_rng *rng;                   /* a fresh copy of the node's "traffic:..." stream */
    gsl_rng *kind_rng;              /* and of its kind stream (several kinds), else NULL */
    sim_time_t *times;              /* open loop: every intended time, computed ahead */
    size_t n_times;
    size_t next_path, next_dest;
} rp_cnode_t;
/* rng, kind_rng, next_path and next_dest are shared by the driver's threads (under the
 * run's lock when there are several); a node's connection pool (CURLSH) is per thread. */

struct rp_source {
    const app_http_client_opts_t *o;    /* the simulated client's options (borrowed) */
    const char *name;
    int metric;                     /* metrics source index */
    const rb_traffic_t *bind;       /* may be NULL */
    const rb_tls_t *tls;            /* the traffic binding's, else the top-level one */
    LB_VEC(rp_dest_t) dests;
    char *host_header;              /* "Host: <scenario host>" or NULL */
    rp_kind_t *kinds;               /* n_kinds >= 1, as the simulated client resolved them */
    size_t n_kinds;
    double max_rate;                /* requests/s for this source (cap and binding) */
    int max_in_flight;
    LB_VEC(rp_cnode_t) nodes;
    char *c_delayed;                /* counter "real.<name>.delayed" */
    uint64_t planned;               /* open loop: requests computed ahead */
    uint64_t seq;                   /* requests started (req_id), over all threads */
};

struct real_plan {
    scn_run_t *run;
    const real_bindings_t *b;
    real_opts_t o;
    double max_rate;
    LB_VEC(rp_source_t *) sources;
    LB_VEC(rp_checker_t *) checkers;
    /* results */
    uint64_t delayed, requests, reached_requests, probes, reached_probes;
    bool executed;
};

/* ---- threads (driver.c): how --real-threads N splits a run ------------------------------- */
/* The thread (0..n-1) that plays closed-loop user i of a source (users numbered node by
 * node: node k's user u is k * users + u) or open-loop arrival i of a client node (its
 * i-th intended time): i % n. Probes are thread 0's. */
int real_thread_of(uint64_t i, int n);
/* Thread t's share of a source's max-in-flight m over n threads: m / n, the remainder
 * going one each to the first threads, at least 1 (so the shares add up to m when
 * m >= n, to n otherwise). */
int real_thread_in_flight(int m, int n, int t);
/* Thread t's share of a rate cap (requests/s; 0: none) over n threads: r / n. */
double real_thread_rate(double r, int n);

/* ---- classification (classify.c) ---------------------------------------------------------- */
/* What one finished curl transfer was, in the simulator's terms. */
typedef struct real_outcome {
    int outcome;                    /* enum http_outcome */
    int status;                     /* HTTP status when outcome == HTTP_OK */
    int err;                        /* LB_E* for a failure (health_result_fail), 0 when OK */
    bool connected;                 /* a connection was made (before the failure) */
} real_outcome_t;
/* Classifies curl's result code, the OS errno it saw (CURLINFO_OS_ERRNO), the response
 * status (0: none) and whether the connection was made (connect time > 0 or a reused
 * connection), exactly as src/net/http_client.c and models/lb/health.c classify the
 * simulated equivalents (see classify.c's table). timed_out_by_us: the driver aborted
 * the transfer at its response deadline. */
void real_classify(CURLcode rc, long os_errno, long status, bool connected,
                   bool timed_out_by_us, real_outcome_t *out);

#endif

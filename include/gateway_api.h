/* gateway_api.h -- the effective HTTP route table of one Gateway listener, built from
 * Kubernetes Gateway API objects the way a conformant implementation (Istio) does:
 * which HTTPRoutes attach (parentRefs, allowedRoutes, hostnames), their status
 * conditions with human-readable messages, each rule's backends (ReferenceGrant checks),
 * and request matching with the API's precedence rules. Sources: sigs.k8s.io/gateway-api
 * apis/v1/httproute_types.go, gateway_types.go, shared_types.go, referencegrant_types.go;
 * istio/istio pilot/pkg/config/kube/gateway/conversion.go (sortHTTPRoutes, getURIRank,
 * buildDestination). The table references the k8s objects it was built from: they must
 * outlive it. Matching allocates nothing (hot path of the gateway proxy model). */
#ifndef GATEWAY_API_H
#define GATEWAY_API_H

#include <stdio.h>
#include "k8s.h"

/* Route condition reasons (shared_types.go RouteConditionReason). */
typedef enum {
    GW_REASON_ACCEPTED,                     /* Accepted=True */
    GW_REASON_NOT_ALLOWED_BY_LISTENERS,     /* allowedRoutes (namespace, kind) refuse it */
    GW_REASON_NO_MATCHING_LISTENER_HOSTNAME,/* no hostname intersects the listener's */
    GW_REASON_NO_MATCHING_PARENT,           /* sectionName/port match no listener */
    GW_REASON_UNSUPPORTED_VALUE,            /* e.g. an invalid regular expression */
    GW_REASON_RESOLVED_REFS,                /* ResolvedRefs=True */
    GW_REASON_REF_NOT_PERMITTED,            /* cross-namespace backendRef without grant */
    GW_REASON_BACKEND_NOT_FOUND,            /* the Service does not exist */
    GW_REASON_INVALID_KIND,                 /* backendRef not to a core Service */
} gw_reason_t;
/* The API's spelling: "Accepted", "NotAllowedByListeners", ... */
const char *gw_reason_str(gw_reason_t r);

typedef struct gw_condition {
    bool status;                    /* True / False */
    gw_reason_t reason;
    char *message;
} gw_condition_t;

/* The gateway.networking.k8s.io group, and the ReferenceGrant `from` a route needs. */
#define GW_API_GROUP "gateway.networking.k8s.io"

/* One backendRef of a rule, resolved. */
typedef struct gw_backend {
    const gw_backend_ref_t *ref;
    const char *ns;                 /* the Service's namespace (ref->ns or the route's) */
    const k8s_service_t *svc;       /* NULL when invalid */
    int port;
    int weight;                     /* share of the rule's traffic (0: none) */
    bool valid;                     /* false: Envoy answers 500 for this share */
    bool port_found;                /* the Service exposes `port`; if not, Istio programs no
                                     * cluster and Envoy answers 503 (NC) */
    gw_reason_t reason;             /* why invalid (GW_REASON_RESOLVED_REFS when valid) */
    char *message;                  /* NULL when valid */
} gw_backend_t;

typedef struct gw_rule_status {
    gw_backend_t *backends;
    size_t n_backends;
    int total_weight, valid_weight;
} gw_rule_status_t;

/* A route with a parentRef to this listener's Gateway. */
typedef struct gw_route_status {
    const k8s_httproute_t *route;
    bool attached;                  /* attached to *this* listener (its rules are in the table) */
    gw_condition_t accepted;        /* for the Gateway (any of its listeners) */
    gw_condition_t resolved_refs;
    char **hostnames;               /* effective on this listener ("*": any) */
    size_t n_hostnames;
    gw_rule_status_t *rules;        /* parallel to route->rules */
    size_t n_rules;
} gw_route_status_t;

/* The result of matching a request: the rule that serves it. */
typedef struct gw_hit {
    const gw_route_status_t *route;
    size_t rule, match;             /* indexes into route->route->rules / .matches */
    const char *hostname;           /* the route hostname that matched ("*": any) */
    int status;                     /* 0: forward to a backend; 500: none is valid */
    const gw_backend_t *backends;   /* the rule's backends (valid or not) */
    size_t n_backends;
    int total_weight, valid_weight;
} gw_hit_t;

typedef struct gw_header { const char *name, *value; } gw_header_t;
typedef struct gw_request {
    const char *host;               /* Host header; the port is ignored; NULL: none */
    const char *method;             /* NULL: "GET" */
    const char *path;               /* may carry "?query" */
    const gw_header_t *headers;
    size_t n_headers;
} gw_request_t;

/* How a request's Host selects among route hostnames.
 * GW_HOST_SPEC: httproute_types.go -- hostname specificity is the first precedence key
 *   among all rules that match the request (a wildcard route still serves a path the
 *   exact-host routes do not have).
 * GW_HOST_ENVOY_VHOST: what Istio programs -- one Envoy virtual host per hostname; Envoy
 *   picks the most specific domain first and never falls back to a less specific one
 *   (envoy route_config virtual_hosts domain matching), so such a path gets 404. */
typedef enum { GW_HOST_SPEC, GW_HOST_ENVOY_VHOST } gw_host_mode_t;
typedef struct gw_table_opts {
    gw_host_mode_t host_mode;       /* GW_HOST_SPEC */
} gw_table_opts_t;

typedef struct gw_table gw_table_t;

/* Builds the route table of listener l of Gateway gw (l must be one of gw's listeners)
 * from the HTTPRoutes, Services and ReferenceGrants in o. opts NULL: defaults. Never
 * fails on bad input: problems become route conditions. Free with gw_table_free. */
gw_table_t *gw_table_build(const k8s_objects_t *o, const k8s_gateway_t *gw,
                           const gw_listener_t *l, const gw_table_opts_t *opts);
void gw_table_free(gw_table_t *t);

/* Every route with a parentRef to the Gateway, in input order (attached or not). */
const gw_route_status_t *gw_table_routes(const gw_table_t *t, size_t *n);

/* The rule serving req, or NULL: no route matches (Envoy: 404, response flag NR,
 * route_not_found). The hit lives as long as the table. */
const gw_hit_t *gw_table_match(const gw_table_t *t, const gw_request_t *req);

/* ---- walking the match order ----------------------------------------------------------------
 * The one ordering walk behind gw_table_match and the nginx renderer: the table's entries in
 * precedence order whose host (and, in GW_HOST_ENVOY_VHOST mode, the chosen virtual host)
 * and path accept the request. With GW_WALK_CONDS the walk does not test a match's method,
 * headers, query parameters and RegularExpression path: it hands them to the callback as
 * conditions instead, so that a caller can express them elsewhere (nginx maps). */
typedef enum { GW_COND_METHOD, GW_COND_HEADER, GW_COND_QUERY, GW_COND_PATH } gw_cond_kind_t;
typedef struct gw_cond {
    gw_cond_kind_t kind;
    const char *name;               /* header or query parameter name; NULL otherwise */
    const char *value;              /* the method, value, or the path's regular expression */
    bool regex;                     /* value is a RegularExpression (full match) */
} gw_cond_t;
typedef struct gw_cand {
    const gw_hit_t *hit;
    const gw_cond_t *conds;         /* GW_WALK_CONDS: what else the entry requires */
    size_t n_conds;                 /* 0 without GW_WALK_CONDS (everything was tested) */
} gw_cand_t;
#define GW_WALK_CONDS 1u
/* Calls fn for each accepting entry in precedence order until it returns false; returns how
 * many calls were made. */
size_t gw_table_walk(const gw_table_t *t, const gw_request_t *req, unsigned flags,
                     bool (*fn)(const gw_cand_t *c, void *arg), void *arg);

/* Picks the backend for a uniform u in [0,1) by weight (weight-0 backends never), the
 * way Envoy's weighted clusters split traffic; NULL when the rule has no weight. The
 * caller answers 500 when the backend is not valid. */
const gw_backend_t *gw_hit_pick(const gw_hit_t *h, double u);

/* Writes the table: the listener, each route with its conditions, hostnames, rules,
 * matches and backends, then the match order (first match wins). For explanations
 * and --explain. */
void gw_table_describe(const gw_table_t *t, FILE *out);
/* Says which rule serves req and why, or why nothing does (404 NR / 500). */
void gw_table_explain(const gw_table_t *t, const gw_request_t *req, FILE *out);

/* ---- rendering as nginx ------------------------------------------------------------------
 * The real chain runs nginx in place of Envoy (Envoy is not packaged for Debian); its
 * configuration comes from here, so that both answer from the same route tables. */
typedef struct gw_nginx {
    int port;                               /* the listener port */
    const gw_table_t *const *tables;        /* every Gateway listener on that port */
    size_t n_tables;
    /* Walks the rules that may serve host/path on this port, as the proxy decides it
     * (listener choice by host, then gw_table_walk with GW_WALK_CONDS); no call: 404. */
    void (*walk)(const char *host, const char *path, bool (*fn)(const gw_cand_t *c, void *arg),
                 void *arg, void *data);
    /* The ready endpoints (pod IP, target port) of Service ns/svc port `port`, up to max;
     * returns how many there are. */
    size_t (*endpoints)(const char *ns, const char *svc, int port, uint32_t *ips,
                        uint16_t *ports, size_t max, void *data);
    void *data;
    sim_time_t connect_timeout;             /* upstream connect timeout */
    sim_time_t request_timeout;             /* route timeout, 0: none (idle_timeout bounds) */
    sim_time_t idle_timeout;
    int num_retries;                        /* retries on connect failure, another host */
} gw_nginx_t;
/* Writes http-level nginx configuration for one listener port: upstream blocks (least
 * connections, never marked failed), split_clients for weighted backends, maps for method,
 * header, query and regex-path matches, and a server per hostname plus a default server
 * whose locations answer as the route table does: see the comment above gw_nginx_render in
 * models/k8s/gateway_api.c. Every name it declares carries the port (gw<port>_...,
 * $lbchain<port>_...), so that the ports of one Gateway share one http block. Returns how
 * many route matches nginx cannot express (a query parameter whose name is not an nginx
 * variable name), each named in a comment; such a match takes no traffic in nginx. */
int gw_nginx_render(FILE *out, const gw_nginx_t *r);

#endif

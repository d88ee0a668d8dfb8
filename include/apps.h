/* apps.h -- application elements built on http.h: an nginx-like HTTP server (locations
 * with exact / prefix matching, a fixed status and body, a service time) and a traffic
 * client (open loop at a rate, or closed loop with users and think time) that records
 * every request in the metrics. apps_register() makes them the "http-server" and
 * "http-client" element types; tests and other models (a health responder, app pods)
 * build them through this C API, without YAML. */
#ifndef APPS_H
#define APPS_H

#include "http.h"
#include "dist.h"
#include "metrics.h"

/* Registers "http-server" (ELEM_APP) and "http-client" (ELEM_TRAFFIC). */
void apps_register(void);

/* ---- HTTP server ------------------------------------------------------------------------
 * Location matching follows nginx (ngx_http_core_find_location): an exact location
 * (`location = /x`) equal to the path wins; otherwise the longest prefix location (plain
 * string prefix: /app matches /app10); the query string is ignored. No match: 404 with
 * nginx's default error page. */
enum app_match { APP_MATCH_PREFIX, APP_MATCH_EXACT };

typedef struct app_location {
    const char *path;               /* "/healthz" */
    int match;                      /* APP_MATCH_* */
    int status;                     /* 200 */
    const char *body;               /* small text body, may be NULL or "" */
    int64_t body_size;              /* bytes; -1: strlen(body) */
    dist_t service_time;            /* time before the response is sent; const 0: at once */
    const char *const *headers;     /* "Name: value" lines */
    size_t n_headers;
} app_location_t;
/* A location for path with status 200, no body, no service time. */
void app_location_init(app_location_t *l, const char *path, int match);

typedef struct app_http_server_opts {
    uint32_t addr;                  /* 0: any local address */
    sim_time_t keepalive_timeout;   /* HTTP_KEEPALIVE_TIMEOUT_DEFAULT (nginx 75 s); 0: never */
    const char *name;               /* the random stream is "http-server:<name>:<node>" */
} app_http_server_opts_t;
void app_http_server_opts_init(app_http_server_opts_t *o);

typedef struct app_http_server app_http_server_t;
/* Listens on node:port and answers from the locations (copied). opts NULL: defaults.
 * NULL with *rc on failure (LB_EADDRINUSE). */
app_http_server_t *app_http_server_new(net_node_t *node, uint16_t port,
                                       const app_location_t *locs, size_t n,
                                       const app_http_server_opts_t *opts, int *rc);
/* Cancels responses still waiting for their service time, then frees the server. */
void app_http_server_free(app_http_server_t *s);
http_server_t *app_http_server_http(app_http_server_t *s);
/* Index of the location that serves path, or -1 (-> 404). */
int app_http_server_match(const app_http_server_t *s, const char *path);
/* Writes an nginx `server` block that answers as this server does (its port and
 * locations; nginx_conf_render_server), for the real chain's pods. Returns how many
 * locations nginx cannot reproduce exactly. */
int app_http_server_render_nginx(const app_http_server_t *s, FILE *out, const char *indent);
/* Requests answered per location (index n: the 404s). */
uint64_t app_http_server_hits(const app_http_server_t *s, int loc);

/* ---- HTTP traffic client ----------------------------------------------------------------
 * One client per node, each with its own connection pool. Open loop: requests arrive at
 * `rate` (total over the nodes, split evenly), evenly spaced (constant) or as a Poisson
 * process, whatever happens to earlier ones. Closed loop: `users` per node, each sends a
 * request, waits for its outcome, thinks, and sends the next; user starts are spread
 * evenly over ramp_up. No request starts at or after `stop`. Targets rotate round-robin
 * per new connection: a request reuses an idle connection to any target, else opens one
 * to the next target. Paths rotate round-robin per request. */
enum app_client_mode { APP_CLIENT_OPEN, APP_CLIENT_CLOSED };
enum app_arrival { APP_ARRIVAL_POISSON, APP_ARRIVAL_CONSTANT };

/* HTTP's well-known port (RFC 9110 4.2.1). */
#define APP_HTTP_DEFAULT_PORT 80
/* Closed-loop users start spread evenly over this: a load tester's ramp-up (JMeter's
 * Thread Group ramp-up period defaults to 1 s). */
#define APP_CLIENT_RAMP_UP_DEFAULT SIM_S
/* Simulator guard, not client behaviour: a closed-loop user whose request ended the
 * instant it started (e.g. no free port) and that has no think time waits this long, so
 * that simulated time advances. */
#define APP_CLIENT_MIN_CYCLE SIM_MS

/* ---- request kinds ----------------------------------------------------------------------
 * What one request of a source looks like. A source sends one kind (the shorthand: its
 * own method, host, path rotation, headers, body) or draws, per request, one of several
 * kinds with probability weight / sum of weights from the node's kind stream
 * (app_http_client_kind_stream), so the choice is seeded and the same in real mode. A
 * field a kind leaves unset (NULL, -1) is the source's. */
/* Request headers one kind may carry (the source's and its own, merged): room is left in
 * HTTP_MAX_HEADERS for what proxies add (X-Forwarded-For, X-Forwarded-Proto, Via...). */
#define APP_CLIENT_MAX_HEADERS 8
typedef struct app_request_kind {
    double weight;                  /* > 0, relative to the other kinds' */
    const char *method;             /* NULL: the source's */
    const char *host;               /* NULL: the source's (NULL there: the target's) */
    const char *path;               /* NULL: the source's path rotation */
    const char *const *headers;     /* "Name: value", added to (or replacing) the source's */
    size_t n_headers;
    const char *body;               /* request body text; NULL: the source's */
    int64_t body_size;              /* bytes on the wire (>= strlen(body)); -1: the length
                                     * of body, else the source's request_size */
} app_request_kind_t;

/* A kind with everything resolved (the source's values filled in), as both executors
 * send it. Owned by the client. */
typedef struct app_req_spec {
    double weight;
    const char *method;
    const char *host;               /* NULL: the target's address, as curl sends */
    const char *path;               /* NULL: the source's path rotation */
    char **hdr_names, **hdr_values; /* n_hdrs each; Host is in `host`, not here */
    size_t n_hdrs;
    const char *body;               /* NULL: body_size zero bytes */
    uint32_t body_size;
} app_req_spec_t;

typedef struct app_http_client_opts {
    const char *name;               /* traffic source: metrics source, random stream */
    const uint32_t *targets;        /* destination addresses (at least one) */
    size_t n_targets;
    uint16_t port;                  /* 80 */
    const char *method;             /* "GET" */
    const char *host;               /* Host header; NULL or "": the target's address
                                     * (":port" unless 80), as curl sends for a bare IP */
    const char *const *paths;       /* rotate per request; none: "/" */
    size_t n_paths;
    int mode;                       /* APP_CLIENT_* */
    double rate;                    /* open loop: requests per second, all nodes together */
    int arrival;                    /* APP_ARRIVAL_* */
    int users;                      /* closed loop: per node (1) */
    dist_t think_time;              /* closed loop (0) */
    sim_time_t ramp_up;             /* closed loop: APP_CLIENT_RAMP_UP_DEFAULT */
    int64_t requests;               /* 0: unlimited; closed: per user; open: in total */
    uint32_t request_size;          /* body bytes (0) */
    const char *const *headers;     /* "Name: value" request headers of every kind */
    size_t n_headers;
    const char *body;               /* request body text (NULL: request_size zero bytes) */
    const app_request_kind_t *kinds;    /* several kinds drawn by weight; n_kinds 0: one */
    size_t n_kinds;
    bool keepalive;                 /* true */
    sim_time_t connect_timeout;     /* 0: TCP's own (syn_retries) */
    sim_time_t response_timeout;    /* 0: none */
    sim_time_t start;               /* first request (0) */
    sim_time_t stop;                /* no request starts at or after it; 0: never */
    /* optional: sees every result after it was recorded (tests, proxies' own probes) */
    void (*on_result)(const http_result_t *r, const char *path, void *data);
    void *on_result_data;
    struct explain *explain;        /* failed requests become examples of failure chains */
} app_http_client_opts_t;
void app_http_client_opts_init(app_http_client_opts_t *o);

typedef struct app_http_client app_http_client_t;
/* Every client of a network, in creation order: net_app_at(net, APP_HTTP_CLIENT_KIND, i). */
#define APP_HTTP_CLIENT_KIND "http-client"
/* Starts traffic from each of nodes[0..n) (strings and arrays in opts are copied).
 * m may be NULL (nothing recorded). Returns NULL with *rc = LB_EINVAL for bad opts. */
app_http_client_t *app_http_client_new(net_node_t *const *nodes, size_t n,
                                       const app_http_client_opts_t *opts, metrics_t *m,
                                       int *rc);
/* Stops the traffic and frees the pools (requests in flight end without a record). */
void app_http_client_free(app_http_client_t *c);

typedef struct app_http_client_stats {
    uint64_t issued, completed;
    uint64_t outcomes[HTTP_OUTCOME_COUNT];
    uint64_t reused;                /* completed over a kept-alive connection */
} app_http_client_stats_t;
void app_http_client_stats(const app_http_client_t *c, app_http_client_stats_t *out);

/* What real mode needs to play the same traffic: the options as built (owned copies:
 * name, method, host, paths, targets, port...; on_result and explain are the
 * simulator's; headers, body and kinds are not kept there: app_http_client_kinds has
 * them resolved), the client nodes, and each node's random stream name. */
const app_http_client_opts_t *app_http_client_opts(const app_http_client_t *c);
size_t app_http_client_node_count(const app_http_client_t *c);
net_node_t *app_http_client_node(const app_http_client_t *c, size_t i);
/* "traffic:<name>" for a single node, "traffic:<name>:<node>" in a group. Caller frees. */
char *app_http_client_stream(const app_http_client_t *c, size_t i);
/* The stream node i draws request kinds from: its stream name + "/kinds" (a stream of its
 * own, so that a mix perturbs neither the arrivals nor the think times). Caller frees. */
char *app_http_client_kind_stream(const app_http_client_t *c, size_t i);
/* The resolved kinds (at least one: the shorthand when opts.n_kinds is 0). */
const app_req_spec_t *app_http_client_kinds(const app_http_client_t *c, size_t *n);
/* Index of the kind of the next request: 0 without a draw for a single kind, else one
 * uniform draw from rng against the cumulative weights. */
size_t app_req_spec_pick(const app_req_spec_t *k, size_t n, gsl_rng *rng);
/* Checks one request header line "Name: value" (a token name; not Content-Length, which
 * body-size decides); returns NULL when it is fine, else why not (a static string). */
const char *app_header_check(const char *h);

/* ---- the schedule, shared by the simulator and real mode ---------------------------------
 * Open loop: the arrival process of client node idx of n. Constant: evenly spaced from
 * start, the nodes interleaved so that the sum is evenly spaced at 1/rate (computed from
 * start, no rounding drift). Poisson: exponential gaps with mean n/rate from the node's
 * stream, the first one after start. The simulator schedules each arrival as an event;
 * real mode computes the same times ahead from a fresh copy of the same stream. */
typedef struct app_arrivals {
    int arrival;                    /* APP_ARRIVAL_* */
    sim_time_t start, stop;         /* stop 0: never */
    sim_time_t offset;              /* constant: this node's phase */
    double period;                  /* mean gap between this node's arrivals, ns */
    int64_t limit;                  /* this node's share of `requests`; 0: unlimited */
    int64_t issued;                 /* arrivals issued so far (the caller counts them) */
    sim_time_t last;                /* the time of the latest arrival returned */
    gsl_rng *rng;                   /* Poisson gaps (borrowed) */
} app_arrivals_t;
/* Returns false when node idx has no share of a `requests` limit (it sends nothing). */
bool app_arrivals_init(app_arrivals_t *a, const app_http_client_opts_t *o, size_t idx,
                       size_t n, gsl_rng *rng);
/* The time of the arrival after the `issued` ones so far, not before `now` (a time that
 * has passed becomes now); -1 when there is none: the limit is reached (no draw), or the
 * time is at or after stop. */
sim_time_t app_arrivals_next(app_arrivals_t *a, sim_time_t now);
/* Closed loop: when user i of client node idx (of n nodes) starts: users spread evenly
 * over ramp_up from start. */
sim_time_t app_user_start(const app_http_client_opts_t *o, size_t idx, size_t n, int i);

#endif

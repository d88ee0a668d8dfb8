/* l7proxy.h -- the L7 proxy core that Envoy (istio_gateway.h), Azure Application Gateway
 * and AWS ALB are built from: a node that terminates HTTP on one or more listener ports
 * (http_server) and forwards over its own upstream connection pool (http_pool). For each
 * request a vendor layer (l7_vendor_t) decides: answer directly, forward to a target it
 * chose, or reset. When an upstream attempt ends the core proposes what to do next from the
 * vendor's parameters (a failure table indexed by enum http_outcome, a retry budget, the
 * statuses to retry on) and the vendor may change that proposal: retry on another target,
 * answer with a status, or relay the response. The core holds no vendor's numbers.
 *
 * Life of a request (l7_req_t), and the function that moves it:
 *   handler (exchange arrives) --vendor.route--> ANSWER / RESET: done (answer)
 *                                            --> FORWARD: attempt() on the pool
 *   attempt ends (attempt_cb) --proposal + vendor.upstream_end--> PASS: relay, done
 *                                                             --> ANSWER: done
 *                                                             --> RETRY: after the
 *        backoff (retry_cb) vendor.route is asked again (l7_req_attempts() > 0)
 *   request deadline (deadline_cb): the attempt in flight is abandoned, the failure table's
 *        HTTP_RESPONSE_TIMEOUT entry is proposed (no retry), done.
 * Forwarded requests are copies of the client's (http_msg_copy) with hop-by-hop headers
 * removed and X-Forwarded-For / X-Forwarded-Proto / Via added as configured. */
#ifndef L7PROXY_H
#define L7PROXY_H

#include "http.h"
#include "metrics.h"

typedef struct l7proxy l7proxy_t;
typedef struct l7_req l7_req_t;

/* What to do with a request (route) or after an attempt (upstream_end). */
enum l7_action {
    L7_ANSWER,      /* answer locally: status, body, detail (or a whole response) */
    L7_FORWARD,     /* route only: send to addr:port */
    L7_RESET,       /* reset the client connection (no response) */
    L7_PASS,        /* upstream_end only: relay the upstream response */
    L7_RETRY        /* upstream_end only: ask route() again after `delay` */
};

typedef struct l7_decision {
    int action;                 /* enum l7_action */
    /* L7_ANSWER */
    int status;
    const char *body;           /* small text body (copied), NULL: none */
    const char *detail;         /* why, for explanations (copied): Envoy "NR route_not_found" */
    http_msg_t *resp;           /* optional: a complete response instead (ownership taken) */
    /* L7_FORWARD */
    uint32_t addr;
    uint16_t port;
    const char *host;           /* Host header for the upstream request, NULL: the client's */
    void *target;               /* the vendor's handle of the target, given back to release() */
    sim_time_t timeout;         /* first FORWARD only: the whole request's deadline from now,
                                 * across retries (Envoy route timeout); 0: none */
    /* L7_RETRY */
    sim_time_t delay;           /* backoff before route() is asked again */
} l7_decision_t;

/* Helpers that fill a decision. */
void l7_decision_answer(l7_decision_t *d, int status, const char *body, const char *detail);
void l7_decision_forward(l7_decision_t *d, uint32_t addr, uint16_t port, void *target);

/* One upstream attempt as it ended. */
typedef struct l7_attempt {
    int outcome;                /* enum http_outcome */
    bool deadline;              /* the request's deadline passed (outcome is then
                                 * HTTP_RESPONSE_TIMEOUT and no retry is possible) */
    int status;                 /* response status when outcome == HTTP_OK */
    const http_msg_t *resp;     /* borrowed; NULL unless HTTP_OK */
    uint32_t addr;
    uint16_t port;
    void *target;
    int attempt;                /* 0: the first attempt of the request */
    int retries_left;           /* what the retry budget still allows */
    uint64_t flow;              /* the upstream connection's trace id (0: none yet) */
    sim_time_t t_start, t_done;
    const char *detail;         /* HTTP_TLS_ERROR: why the handshake failed; else NULL */
} l7_attempt_t;

/* The vendor's table entry for one failure kind (enum http_outcome), e.g. Envoy:
 * HTTP_CONNECT_REFUSED -> { 503, "upstream connect error ...", "UF ...", retry = true }. */
typedef struct l7_fail_action {
    int status;                 /* the answer when not retried */
    const char *body;
    const char *detail;
    bool retry;                 /* retry while the budget allows */
} l7_fail_action_t;

/* The vendor layer. route is required; the others may be NULL. Callbacks must not free
 * the proxy. */
typedef struct l7_vendor {
    /* A request arrived (or a retry is due: l7_req_attempts(rq) > 0). Fill d. The core
     * pre-fills d as "answer 502" so that an empty route() is still an answer. */
    void (*route)(l7proxy_t *px, l7_req_t *rq, const http_msg_t *req, l7_decision_t *d,
                  void *data);
    /* An attempt ended; d holds the core's proposal (PASS, RETRY or ANSWER from the
     * failure table); change it if needed. RETRY is ignored once a.deadline is set. */
    void (*upstream_end)(l7proxy_t *px, l7_req_t *rq, const l7_attempt_t *a,
                         l7_decision_t *d, void *data);
    /* A forwarded attempt stopped counting as active (ended, or abandoned at the
     * deadline): for least-request counts. Called once per FORWARD. */
    void (*release)(l7proxy_t *px, void *target, uint32_t addr, uint16_t port, void *data);
    /* Every response (relayed or local) just before it is sent: add vendor headers. */
    void (*respond)(l7proxy_t *px, l7_req_t *rq, http_msg_t *resp, void *data);
    void *data;
} l7_vendor_t;

/* A listener port; scheme is what X-Forwarded-Proto says ("http", "https"). With tls
 * the listener terminates TLS (include/tls.h; borrowed: keep it alive while the proxy
 * runs); without, an "https" listener speaks plain HTTP (models that do not configure
 * TLS on it). */
typedef struct l7_listener {
    uint16_t port;
    const char *scheme;
    const tls_server_cfg_t *tls;
} l7_listener_t;

typedef struct l7proxy_opts {
    const char *name;           /* traces, counters ("<name>.requests"), random stream
                                 * "l7proxy:<name>:retry"; NULL: the node's name */
    uint32_t addr;              /* listen address, 0: any */
    const l7_listener_t *listeners;
    size_t n_listeners;
    sim_time_t downstream_idle_timeout;     /* idle client keep-alive; 0: never */
    /* TCP keepalive on accepted client connections (socket options on the listeners, as
     * Envoy's listener socket_options set them); false: off. */
    bool downstream_so_keepalive;
    tcp_keepalive_t downstream_keepalive;
    /* Upstream pool: keepalive, connect_timeout, response_timeout (per attempt, from the
     * request sent), idle_timeout, max_conns_per_dest, src. */
    http_client_opts_t upstream;
    const l7_fail_action_t *fail_map;       /* HTTP_OUTCOME_COUNT entries (index HTTP_OK
                                             * unused); NULL: 502, no retry */
    int max_retries;                        /* retry budget per request */
    const int *retry_statuses;              /* responses that are retried like failures */
    size_t n_retry_statuses;
    /* Retry backoff (Envoy's jittered exponential): retry n (1-based) waits a uniform
     * whole number of ms in [0, min((2^n - 1) * base, max)); base 0: no wait. */
    sim_time_t retry_backoff_base, retry_backoff_max;
    bool xff;                   /* append the client address to X-Forwarded-For */
    bool xff_port;              /* ... as "addr:port" (Application Gateway) */
    bool xfp;                   /* set X-Forwarded-Proto to the listener's scheme */
    const char *via;            /* appended to Via, NULL: none */
    const char *server;         /* Server header of every response, NULL: untouched */
    metrics_t *metrics;         /* counters, may be NULL */
    /* "flow up serves the request req_id of flow down", once per attempt that had a
     * connection (explanations link the two halves). May be NULL. */
    void (*flow_link)(void *data, uint64_t down_flow, uint64_t up_flow, uint64_t req_id);
    void *flow_link_data;
    /* A downstream TLS handshake failed on a listener (why: tls_conn_why); may be NULL. */
    void (*tls_failed)(void *data, uint16_t port, uint64_t flow, const char *why);
    void *tls_failed_data;
} l7proxy_opts_t;
/* Zero everything; upstream keep-alive on; no retries, no headers, no timeouts. */
void l7proxy_opts_init(l7proxy_opts_t *o);

/* Listens on every listener port of node. opts and vendor are copied (strings too; the
 * fail_map and retry_statuses arrays are borrowed and must outlive the proxy). NULL with
 * *rc: LB_EINVAL (no listener, no route callback), LB_EADDRINUSE. */
l7proxy_t *l7proxy_new(net_node_t *node, const l7proxy_opts_t *opts, const l7_vendor_t *vendor,
                       int *rc);
/* Drops requests in flight (their clients get nothing), closes the pools and listeners.
 * No callback runs. NULL-safe. Must not be called from one of its callbacks. */
void l7proxy_free(l7proxy_t *px);

net_node_t *l7proxy_node(const l7proxy_t *px);
const char *l7proxy_name(const l7proxy_t *px);

typedef struct l7proxy_stats {
    uint64_t requests;          /* requests received */
    uint64_t local_replies;     /* answered by the proxy itself */
    uint64_t relayed;           /* upstream responses relayed */
    uint64_t resets;            /* client connections reset */
    uint64_t attempts;          /* upstream attempts started */
    uint64_t retries;
    uint64_t deadlines;         /* requests ended by their deadline */
    uint64_t outcomes[HTTP_OUTCOME_COUNT];  /* of the attempts that ended */
    uint64_t in_flight;         /* requests not answered yet */
} l7proxy_stats_t;
void l7proxy_stats(const l7proxy_t *px, l7proxy_stats_t *out);

/* ---- the request, for vendor callbacks (valid until it is answered) ------------------- */
uint16_t l7_req_port(const l7_req_t *rq);           /* listener port it arrived on */
const char *l7_req_scheme(const l7_req_t *rq);
const http_msg_t *l7_req_request(const l7_req_t *rq);
uint64_t l7_req_flow(const l7_req_t *rq);           /* the client connection's trace id */
uint32_t l7_req_peer_addr(const l7_req_t *rq);
int l7_req_attempts(const l7_req_t *rq);            /* attempts already made */
/* Whether addr:port was already tried for this request (Envoy previous_hosts). */
bool l7_req_tried(const l7_req_t *rq, uint32_t addr, uint16_t port);
void l7_req_set_data(l7_req_t *rq, void *data);     /* the vendor's slot, NULL at start */
void *l7_req_data(const l7_req_t *rq);

#endif

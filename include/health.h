/* health.h -- the active health checker every load-balancer model shares (App Gateway,
 * Azure LB, ALB, NLB): targets probed from one node every interval, each probe on its own
 * TCP connection, TCP (handshake) or HTTP (GET, status matcher), and a per-target state
 * machine whose transitions carry the reason ("HTTP 404", "connect timeout").
 *
 * Vendor behaviour is parameters, never code: health_params_preset() gives each vendor's
 * documented defaults (sources in models/lb/health.c, which also draws the state machine). */
#ifndef HEALTH_H
#define HEALTH_H

#include "net.h"
#include "metrics.h"
#include "tls.h"

typedef struct health health_t;

typedef enum { HEALTH_TCP, HEALTH_HTTP } health_proto_t;

/* Per-target state. INITIAL is "registered, not yet proven": it gets no traffic. */
typedef enum { HEALTH_INITIAL, HEALTH_UP, HEALTH_DOWN } health_state_t;
const char *health_state_name(int state);       /* "initial", "up", "down" */

/* HTTP status matcher: a list of inclusive ranges. */
#define HEALTH_MATCHER_MAX 8
typedef struct health_matcher {
    int n;
    struct { int lo, hi; } r[HEALTH_MATCHER_MAX];
} health_matcher_t;
/* Parses "200", "200-399" or "200,202,300-399" (ALB's Matcher.HttpCode syntax; App
 * Gateway's "200-399" is one range). Returns 0 or LB_EINVAL (bad syntax, status outside
 * 100..599, lo > hi, more than HEALTH_MATCHER_MAX ranges); *m is unchanged on error. */
int health_matcher_parse(health_matcher_t *m, const char *text);
bool health_matcher_match(const health_matcher_t *m, int status);

/* Vendors with documented probe defaults (see health_params_preset in models/lb/health.c for
 * the values and their sources). */
typedef enum {
    HEALTH_VENDOR_AZURE_LB,     /* Azure Standard LB as cloud-provider-azure configures it */
    HEALTH_VENDOR_APPGW,        /* Azure Application Gateway v2, default probe */
    HEALTH_VENDOR_ALB,          /* AWS ALB target group */
    HEALTH_VENDOR_NLB           /* AWS NLB via the AWS Load Balancer Controller */
} health_vendor_t;

/* Azure LB HTTP(S) probe timeout: 30 s, or the interval when shorter
 * (load-balancer-custom-probe-overview.md "Probe interval & timeout"). */
#define HEALTH_AZURE_LB_HTTP_TIMEOUT_MAX (30 * SIM_S)

typedef struct health_params {
    health_proto_t proto;
    bool tls;                       /* HTTPS: the probe is wrapped in TLS (include/tls.h) */
    tls_client_cfg_t tls_cfg;       /* with tls: SNI, verification (strings copied, roots
                                     * borrowed); max_version 0: tls_client_cfg_default, no
                                     * SNI and no verification, as load balancers' probes */
    const char *who;                /* who sends it, for verdicts: "Azure LB", "kubelet" */
    const char *path;               /* HTTP request path ("/") */
    const char *host;               /* Host header; NULL or "": the target's address
                                     * (":port" unless 80) */
    const char *user_agent;         /* NULL: no User-Agent header */
    health_matcher_t matcher;       /* HTTP: statuses that pass */
    sim_time_t interval;            /* between probe starts, per target (> 0) */
    sim_time_t timeout;             /* from probe start to a result (> 0): no handshake,
                                     * or no full response, by then = failure */
    int healthy_threshold;          /* consecutive passes DOWN -> UP (>= 1) */
    int unhealthy_threshold;        /* consecutive failures UP/INITIAL -> DOWN (>= 1) */
    health_state_t initial;         /* HEALTH_INITIAL or HEALTH_UP for a new target */
    int initial_passes;             /* consecutive passes INITIAL -> UP; 0: healthy_threshold */
    bool fail_fast;                 /* an explicit rejection (status not matched, RST on
                                     * connect or later) marks the target DOWN at once */
    sim_time_t first_delay;         /* first probe of a target this long after it is added */
    sim_time_t jitter;              /* plus uniform [0, jitter) from stream "health:<name>",
                                     * drawn per target in the order targets are added */
    uint32_t src;                   /* source address of the probes; 0: the route's */
} health_params_t;
/* Generic defaults: HTTP GET / matching 200-399, interval 10 s, timeout 5 s, thresholds
 * 2/2, initial HEALTH_INITIAL with one pass, no jitter. */
void health_params_default(health_params_t *p);
/* The documented defaults of a vendor for protocol proto (see models/lb/health.c). */
void health_params_preset(health_params_t *p, health_vendor_t v, health_proto_t proto);
/* LB_EINVAL with a message in err for inconsistent parameters. */
int health_params_check(const health_params_t *p, char *err, size_t errlen);

/* The result of one probe. */
typedef struct health_result {
    bool ok;
    bool hard;                      /* an explicit rejection (bad status, RST), not silence */
    int status;                     /* HTTP status, 0 when no response */
    int err;                        /* 0, or the LB_E* code of the connection's failure */
    char reason[96];                /* "HTTP 200", "connected", "HTTP 404", "connect timeout",
                                     * "response timeout", "connection refused", ... */
    char note[48];                  /* what the response body says, when it says something
                                     * a verdict needs ("localEndpoints 0"); "" if nothing */
    sim_time_t t_start, t_done;
    uint64_t flow;                  /* the probe connection's trace id */
} health_result_t;

/* A failed probe: err is the LB_E* code of its connection's failure (LB_ECONNREFUSED,
 * LB_ECONNRESET, LB_ETIMEDOUT before / after the handshake as `connected` says,
 * LB_ECLOSED, LB_EHOSTUNREACH, ...). Fills ok, hard, err and the reason exactly as the
 * simulated checker words it ("connection refused", "connect timeout"...). Shared with
 * real mode's prober, so both executors classify alike. */
void health_result_fail(health_result_t *r, int err, bool connected);
/* An HTTP response with status and (may be NULL) body text: ok when the matcher accepts
 * the status, else a hard failure; reason "HTTP <status>", note from the body
 * (kube-proxy's healthCheckNodePort JSON: "localEndpoints N"). */
void health_result_http(health_result_t *r, const health_matcher_t *m, int status,
                        const char *body);

/* The verdict on one target as its load balancer acts on it, for people:
 *   "ilb/http-30575: aks-user-1 DOWN: HTTP 404 on GET / port 30575 (Azure LB requires 200)"
 * state and the streaks (passes, fails) from the state machine, last the latest result
 * (NULL: not probed yet), port the port the probes went to. Writes into buf (n bytes). */
void health_verdict(const health_params_t *p, const char *checker, const char *label,
                    int port, health_state_t state, int passes, int fails,
                    const health_result_t *last, char *buf, size_t n);
/* "GET /healthz port 32100", "GET (TLS) / port 443" or "TCP connect port 30575". */
void health_probe_desc(const health_params_t *p, int port, char *buf, size_t n);

/* ---- the per-target state machine (pure: no time, no I/O) --------------------------------
 * drawn in models/lb/health.c; the simulated checker and real mode's prober both step it. */
typedef struct health_sm {
    health_state_t state;
    int passes, fails;              /* current streaks */
} health_sm_t;
/* A new target: state p->initial, no streaks. */
void health_sm_init(health_sm_t *sm, const health_params_t *p);
/* Counts one result (ok, and hard for a failure) and performs the transition it causes:
 * returns true when the state changed (sm->state is the new state, streaks reset). */
bool health_sm_step(health_sm_t *sm, const health_params_t *p, bool ok, bool hard);

/* Called on every state change of a target, after the state changed; `last` is the
 * probe result that caused it. The callback may query the checker but not free it. */
typedef void (*health_transition_cb)(health_t *hc, size_t target, health_state_t from,
                                     health_state_t to, const health_result_t *last,
                                     void *data);

/* A checker named `name` (metrics "probe.<name>.ok|fail", "health.<name>.up|down"; random
 * stream "health:<name>"; trace `where`) probing from node. params are copied (strings
 * too). m may be NULL. Returns NULL with *rc = LB_EINVAL for bad params. Probing of a
 * target starts when it is added. */
health_t *health_new(net_node_t *node, const char *name, const health_params_t *params,
                     metrics_t *m, int *rc);
/* Stops probing: probes in flight are closed (no callbacks). Call before net_free. NULL-safe. */
void health_free(health_t *hc);
void health_set_callback(health_t *hc, health_transition_cb cb, void *data);
const char *health_name(const health_t *hc);
const health_params_t *health_params(const health_t *hc);
/* The node the probes leave from. */
net_node_t *health_node(const health_t *hc);
/* Every checker of a network, in creation order (net_app_at(net, HEALTH_APP_KIND, i)). */
#define HEALTH_APP_KIND "health"

/* Adds a target addr:port with a label for explanations (copied; NULL: "ip:port") and
 * returns its index (0, 1, ... in order). Its first probe runs after first_delay + jitter. */
size_t health_target_add(health_t *hc, uint32_t addr, uint16_t port, const char *label);
/* The same with its first probe `delay` later (a target a load balancer has registered but
 * not started checking yet; it stays in p.initial meanwhile). */
size_t health_target_add_after(health_t *hc, uint32_t addr, uint16_t port, const char *label,
                               sim_time_t delay);
size_t health_target_count(const health_t *hc);
const char *health_target_label(const health_t *hc, size_t i);
uint32_t health_target_addr(const health_t *hc, size_t i);
uint16_t health_target_port(const health_t *hc, size_t i);
/* The delay before target i's first probe (first_delay plus its jitter draw). */
sim_time_t health_target_first(const health_t *hc, size_t i);
health_state_t health_target_state(const health_t *hc, size_t i);
bool health_target_healthy(const health_t *hc, size_t i);     /* state == HEALTH_UP */
size_t health_count_healthy(const health_t *hc);
/* The last completed probe of target i, or NULL before its first result. */
const health_result_t *health_target_last(const health_t *hc, size_t i);
/* The last failed probe of target i, or NULL if none failed yet. */
const health_result_t *health_target_last_failure(const health_t *hc, size_t i);
/* Time of the last state change of target i (the time it was added if none). */
sim_time_t health_target_since(const health_t *hc, size_t i);
/* Consecutive passes / failures counted toward the next transition. */
int health_target_streak(const health_t *hc, size_t i, bool passes);

typedef struct health_stats {
    uint64_t probes, ok, fail, up, down;    /* up/down: transitions */
} health_stats_t;
void health_stats(const health_t *hc, health_stats_t *out);

#endif

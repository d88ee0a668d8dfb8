/* metrics.h -- what a run measured, aggregated as it happens so memory does not grow with
 * the number of requests: per traffic source and per time bucket (1 s by default), counts
 * of each outcome class and a log-linear latency histogram; plus named counters (drops by
 * reason, probes, health transitions). Expectations and summary.json read from here; a
 * record hook lets richer sinks (SQLite, later) see every request. */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>
#include "engine.h"

typedef struct metrics metrics_t;

/* Outcome classes of one request, as the client saw it. */
enum m_class {
    M_2XX, M_3XX, M_4XX, M_5XX,
    M_CONNECT_TIMEOUT, M_REFUSED, M_RESET, M_RESPONSE_TIMEOUT, M_CLOSED, M_OTHER_ERR,
    M_CLASS_COUNT
};
const char *m_class_name(int c);   /* "2xx", "connect_timeout", ... */
/* The class of a client's result: enum http_outcome (http.h) and the status for HTTP_OK.
 * A response outside 200-599, no-port and unreachable count as M_OTHER_ERR. */
int m_class_of(int outcome, int status);

/* Real mode only (include/real.h): a request measured on a real socket. t_start of the
 * record is when it was due (its intended time, so a stalled target shows as latency);
 * t_sent when it actually started; the rest are libcurl's phase times, each from t_sent
 * to the end of that phase (name resolved, TCP connected, TLS done, first response byte,
 * done), -1 when the phase was not reached. */
typedef struct m_phases {
    sim_time_t t_sent;
    sim_time_t dns, connect, tls, ttfb, total;
} m_phases_t;

/* A response header as the client received it. */
typedef struct m_header { const char *name, *value; } m_header_t;

typedef struct m_request {
    int source;                     /* from metrics_source() */
    sim_time_t t_start, t_end;
    int cls;                        /* enum m_class */
    int status;                     /* HTTP status or 0 */
    int outcome;                    /* enum http_outcome */
    uint64_t flow;
    uint64_t req_id;
    const char *path;
    const char *body;               /* first bytes of the response body, may be NULL (real
                                     * mode: only when M_WANT_BODY, up to METRICS_BODY_MAX) */
    const m_header_t *headers;      /* response headers, only when M_WANT_HEADERS (both
                                     * executors); NULL when none */
    size_t n_headers;
    const m_phases_t *phases;       /* real mode; NULL in a simulation */
} m_request_t;

/* Sees every recorded request; r and its strings are borrowed for the call only. */
typedef void (*m_record_cb)(void *data, const m_request_t *r);

/* One active health check result (an LB's probe, a kubelet readiness probe). */
typedef struct m_probe {
    const char *checker;            /* the health checker's name, e.g. "ilb/http-30575" */
    const char *target;             /* its target's label, e.g. "aks-user-0" */
    sim_time_t t;                   /* when the result was known */
    bool ok;
    int status;                     /* HTTP status, 0 for TCP or no response */
    const char *reason;             /* "HTTP 404", "connect timeout", "connected" */
    uint64_t flow;
} m_probe_t;
/* A target's health state change (state names: "initial", "up", "down"). */
typedef struct m_health {
    const char *checker, *target;
    sim_time_t t;
    const char *from, *to;
    const char *reason;             /* the probe result that caused it */
} m_health_t;

/* Observers of what is recorded; any callback may be NULL. Up to METRICS_MAX_HOOKS. */
#define METRICS_MAX_HOOKS 8
typedef struct m_hooks {
    void (*request)(void *data, const m_request_t *r);
    void (*probe)(void *data, const m_probe_t *p);
    void (*health)(void *data, const m_health_t *h);
    void *data;
} m_hooks_t;

/* What recorders of responses must keep for the observers (expectations on bodies or
 * headers): a response's headers (both executors) and, in real mode, its body are passed
 * on only when asked, as they cost per request. The simulation always passes small
 * bodies (it has them as text). */
enum { M_WANT_BODY = 1, M_WANT_HEADERS = 2 };
/* Response body bytes real mode keeps for matching (a body match looks at these). */
#define METRICS_BODY_MAX 4096
void metrics_want(metrics_t *m, unsigned what);   /* adds to the set */
unsigned metrics_wants(const metrics_t *m);

/* Bucket width default: one second. */
#define METRICS_BUCKET_DEFAULT SIM_S
/* bucket <= 0: METRICS_BUCKET_DEFAULT. Buckets: ceil(duration / bucket), at least 1;
 * requests and counts past the end go into the last bucket. */
metrics_t *metrics_new(sim_time_t bucket, sim_time_t duration);
void metrics_free(metrics_t *m);
/* Adds a request hook (same as metrics_add_hooks with only .request). */
void metrics_set_record_hook(metrics_t *m, m_record_cb cb, void *data);
/* Adds observers; returns 0 or LB_ENOMEM when METRICS_MAX_HOOKS are already set. */
int metrics_add_hooks(metrics_t *m, const m_hooks_t *h);
/* Removes every hook whose data is `data` (the others keep their order); returns how many.
 * An observer calls it before it frees `data`: nothing is reported to it afterwards. */
size_t metrics_remove_hooks(metrics_t *m, const void *data);
/* Reports a probe result / a health transition to the hooks (nothing is stored). */
void metrics_probe(metrics_t *m, const m_probe_t *p);
void metrics_health(metrics_t *m, const m_health_t *h);
/* Index of a named source (traffic stream), created on first use. */
int metrics_source(metrics_t *m, const char *name);
int metrics_source_find(const metrics_t *m, const char *name);   /* -1 if none */
size_t metrics_source_count(const metrics_t *m);
const char *metrics_source_name(const metrics_t *m, int i);
/* Records one finished request (in the bucket of r->t_start; latency t_end - t_start),
 * then calls the record hook. r->source must come from metrics_source(). */
void metrics_request(metrics_t *m, const m_request_t *r);
/* Adds to a named counter at time t (kept per bucket too). */
void metrics_count(metrics_t *m, const char *name, sim_time_t t, int64_t delta);

/* Queries. source -1 means all sources. A request belongs to the window [from, to) by its
 * start time. classes is a bitmask of (1 << M_*). Windows are rounded to whole buckets:
 * the window holds the buckets whose start time lies in [from, to), i.e. bucket indices
 * [ceil(from/width), ceil(to/width)); a `to` past the end reaches the last bucket
 * (use SIM_TIME_MAX for "to the end"). */
typedef struct m_window { sim_time_t from, to; } m_window_t;
uint64_t metrics_requests(const metrics_t *m, int source, unsigned classes, m_window_t w);
/* Latency quantile (q in [0,1]) over requests in the window whose class is in `classes`;
 * returns -1 when there are none. Relative error below 1%. */
sim_time_t metrics_latency_q(const metrics_t *m, int source, unsigned classes, double q,
                             m_window_t w);
/* Mean latency in ns (exact, not from the histogram); -1 when there are none. */
double metrics_latency_mean(const metrics_t *m, int source, unsigned classes, m_window_t w);
/* Sum of a counter over the window's buckets; 0 for an unknown name. */
int64_t metrics_counter(const metrics_t *m, const char *name, m_window_t w);
/* Responses with exactly this HTTP status over the whole run (source -1: all). */
uint64_t metrics_status_total(const metrics_t *m, int source, int status);
/* Iterates counters: returns the name of counter i or NULL past the end. */
const char *metrics_counter_name(const metrics_t *m, size_t i);
size_t metrics_bucket_count(const metrics_t *m);
sim_time_t metrics_bucket_width(const metrics_t *m);
/* Count of class c for source s in bucket b. */
uint64_t metrics_bucket(const metrics_t *m, int source, size_t b, int c);

#define M_ALL_CLASSES ((1u << M_CLASS_COUNT) - 1)
#define M_FAILED ((1u << M_CONNECT_TIMEOUT) | (1u << M_REFUSED) | (1u << M_RESET) | \
                  (1u << M_RESPONSE_TIMEOUT) | (1u << M_CLOSED) | (1u << M_OTHER_ERR))

#endif

/* driver.c -- plays a plan (plan.c) on the wall clock on one or more threads
 * (--real-threads N, see "Threads" below). On each, one libcurl multi handle carries its
 * requests (and on thread 0 every probe), driven through libcurl's socket interface on an
 * epoll set (the sockets libcurl wants watched, idle keep-alive connections left in it:
 * watch_t; and libcurl's own timer); a timer heap holds what is due (open-loop arrivals
 * computed ahead, closed-loop users, probe ticks, response deadlines, retries of
 * requests held by the in-flight bound or the rate cap). Everything measured
 * goes into the run's metrics, as the simulated client and checker record it, with times
 * relative to the start.
 *
 * The loop:
 *
 *   start: t0 = CLOCK_MONOTONIC; first arrivals, users, probe ticks into the heap
 *   loop:  stop requested (SIGINT/SIGTERM)? duration reached? audit decided? -> end
 *          fire due timers          (start transfers: curl_multi_add_handle)
 *          epoll_wait               (until the next timer of ours or libcurl's, at most
 *                                    REAL_POLL_MAX_MS) -> curl_multi_socket_action per
 *                                    ready socket, or for libcurl's timeout
 *          curl_multi_info_read     (finished transfers: classify, record, next request)
 *   end:   transfers in flight are abandoned without a record (as the simulator leaves
 *          requests unfinished at its duration); the run is marked played.
 *
 * Requests: latency is counted from the intended time (t_start of the record), so a
 * stalled target shows as latency and not as fewer requests; the actual start and
 * libcurl's phase times travel in m_phases_t. The response timeout starts when the
 * request is handed to the connection (CURLOPT_PREREQFUNCTION), as in http_client.c.
 * Probes: one fresh connection each (FRESH_CONNECT, FORBID_REUSE), the checker's
 * timeout from the probe's start, results through health_result_fail/_http and the
 * shared state machine health_sm_step.
 *
 * Threads: with N > 1, each thread is a drv_t of its own (multi handle, epoll set, timer
 * heap, watch table, request handles, per-source running state srun_t, and each client
 * node's connection pool, CURLSH, which libcurl does not let threads share without lock
 * functions), all set up before the common start t0 and torn down after every thread has
 * ended. Thread t plays the closed-loop users i and the open-loop arrivals i of each
 * client node with i % N == t (real_thread_of), thread 0 the probes; each thread holds
 * its share of the in-flight bound and of the rate caps (real_thread_in_flight,
 * real_thread_rate), so the totals hold. What they share goes under the run's one mutex
 * (drun_t.mu, taken only when N > 1): the metrics, the plan's counters, each client
 * node's streams and rotations (rng, kind_rng, next_path, next_dest) and the sources'
 * request numbers (req_id). Only thread 0 takes signals (the others block them) and
 * turns scn_stop_requested() into the run's stop flag; every thread ends by itself at the
 * flag or the duration. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "real_int.h"

/* Bytes of a probe's response body kept (kube-proxy's JSON is ~150 bytes). */
#define PROBE_BODY_MAX 1024
/* Bursts the rate cap tolerates: one second's worth of requests (a GCRA with this
 * tolerance), so an open-loop Poisson source below the cap is not held back. */
#define CAP_TOLERANCE SIM_S
/* Socket events taken from epoll at once. */
#define EPOLL_BATCH 256

/* The simulated client keeps every idle keep-alive connection until the server closes it
 * (src/net/http_client.c: no limit on a pool's connections, no idle timeout), so libcurl
 * must not close one for its own reasons either: not to keep its connection pool at 4x
 * the transfers in flight (CURLMOPT_MAXCONNECTS' default: after a burst, most of the
 * burst's connections were closed as the transfers finished, and the next burst opened
 * them again), nor after 118 s idle (CURLOPT_MAXAGE_CONN's default: a request after a
 * longer pause went out on a new connection where the simulated one reuses the old one
 * and meets whatever timed it out on the way, which is what idle-timeout scenarios are
 * about). Bounded anyway: the connections open are at most the transfers ever in flight
 * at once. */
#define REAL_MAX_IDLE_CONNS 1000000L
#define REAL_MAX_IDLE_AGE_S ((long)INT_MAX)

enum { T_ARRIVAL, T_USER, T_PROBE, T_DEADLINE, T_RETRY };

typedef struct timer { sim_time_t t; uint64_t seq; int kind; void *obj; } timer_t_;

typedef struct srun srun_t;

typedef struct user {
    srun_t *sr;
    rp_cnode_t *cn;
    int idx;
    int64_t issued;
} user_t;

/* A request held back (in-flight bound, rate cap): started in order when allowed. */
typedef struct pending {
    rp_cnode_t *cn;
    user_t *u;                      /* NULL: open loop */
    sim_time_t due;
    struct pending *next;
} pending_t;

/* What the epoll set holds for one descriptor. libcurl drops a keep-alive connection's
 * socket (CURL_POLL_REMOVE) when its request ends and asks for it again when the next
 * request takes the connection, often after that request has been answered already
 * (loopback answers before libcurl looks). So such a socket stays in the set, unwanted,
 * and is deleted only when an event comes for it while unwanted (the server closed the
 * idle connection): a reused connection costs no epoll_ctl. This holds only for sockets
 * whose closing we see: connection sockets (opened by open_cb, closed by close_cb, which
 * forgets them; the kernel drops a closed descriptor from the set) that were waiting to
 * read, i.e. connected (libcurl closes a socket that never connected, which it watched
 * for writing only, without close_cb). Any other socket (the resolver's) is deleted as
 * soon as libcurl removes it. */
typedef struct watch {
    uint32_t events;                /* EPOLLIN / EPOLLOUT as registered */
    bool in_set;
    bool wanted;                    /* libcurl watches it (not removed since) */
    bool conn;                      /* opened by open_cb and not closed since */
} watch_t;

typedef struct xfer xfer_t;
typedef struct drv drv_t;
struct xfer {
    drv_t *d;
    CURL *e;
    int kind;                       /* T_ARRIVAL (a request) or T_PROBE */
    srun_t *sr;                     /* requests: their source's run */
    rp_cnode_t *cn;
    user_t *u;
    rp_target_t *tg;
    sim_time_t due, sent;
    sim_time_t rt;                  /* response timeout from the request's send; 0: none */
    sim_time_t deadline;            /* this request's response deadline; 0: none yet */
    bool deadline_queued;           /* a T_DEADLINE of x is in the heap (at most one) */
    bool prereq;                    /* the request went out on a connection */
    bool active;
    uint64_t req_id;
    const char *path;
    struct curl_slist *connect_to;
    const rp_dest_t *dst;           /* requests: the destination and path the URL is for */
    const char *url_path;
    CURLU *uh;                      /* that URL parsed once (CURLOPT_CURLU), NULL: none */
    char body[PROBE_BODY_MAX + 1];
    size_t body_len;
    struct curl_slist *hdrs;        /* probes: their own */
    const rp_kind_t *rkind;         /* requests: the kind the handle is set up for */
    char *rbody;                    /* requests: the response body's first bytes when the
                                     * metrics want it (M_WANT_BODY), else NULL */
    size_t rbody_len;
    xfer_t *next_free;
};

/* Per-source running state (one per thread). */
struct srun {
    rp_source_t *s;
    struct curl_slist *hdrs;
    int max_in_flight;              /* this thread's share of s->max_in_flight */
    double max_rate;                /* and of s->max_rate */
    CURLSH **share;                 /* per client node: its connections on this thread */
    size_t *next_time;              /* open loop, per client node: this thread's next
                                     * arrival (an index into cn->times) */
    int in_flight;
    pending_t *q_head, *q_tail;
    sim_time_t tat;                 /* GCRA: theoretical arrival time */
    bool retry_armed;
    user_t *users;                  /* closed loop: per node * users */
    xfer_t *free;                   /* reusable request handles */
    pending_t *pfree;               /* reusable queue entries */
    bool plain;                     /* every destination is http:// (no TLS ever) */
    bool literal;                   /* every destination connects to an IP literal */
};

/* What the threads of a run share. */
typedef struct drun {
    int n;                          /* threads */
    bool threaded;                  /* n > 1: shared state under mu */
    pthread_mutex_t mu;
    atomic_bool stop;               /* thread 0 saw a stop request, or a thread failed */
} drun_t;

struct drv {
    real_plan_t *p;
    metrics_t *m;
    drun_t *r;
    int tid;                        /* 0..r->n - 1 */
    sim_time_t t_end;               /* when this thread's loop ended */
    bool complete;                  /* and whether at the duration (or audit decided) */
    CURLM *multi;
    struct timespec t0;
    sim_time_t end;
    LB_VEC(timer_t_) heap;
    uint64_t seq;
    LB_VEC(srun_t) src;
    sim_time_t cap_tat;             /* the global cap's GCRA */
    double cap_rate;                /* this thread's share of the cap */
    LB_VEC(xfer_t *) all;           /* every xfer allocated (freed at the end) */
    int active;
    bool audit;
    int epfd;                       /* the sockets libcurl asks to watch */
    LB_VEC(watch_t) watch;          /* by descriptor: what epfd holds for it */
    sim_time_t curl_due;            /* libcurl's timer (CURLMOPT_TIMERFUNCTION); -1: none */
    FILE *out;
};

/* Response headers a request's record carries at most (M_WANT_HEADERS). */
#define REAL_RESP_HEADERS_MAX 64

/* The run's lock around what the threads share; nothing to take with one thread. */
static inline void lock(drv_t *d)
{
    if (d->r->threaded) pthread_mutex_lock(&d->r->mu);
}

static inline void unlock(drv_t *d)
{
    if (d->r->threaded) pthread_mutex_unlock(&d->r->mu);
}

int real_thread_of(uint64_t i, int n)
{
    assert(n >= 1);
    return (int)(i % (uint64_t)n);
}

int real_thread_in_flight(int m, int n, int t)
{
    assert(n >= 1 && t >= 0 && t < n);
    int share = m / n + (t < m % n ? 1 : 0);
    return share > 0 ? share : 1;
}

double real_thread_rate(double r, int n)
{
    assert(n >= 1);
    return r / n;
}

static sim_time_t now_ns(const drv_t *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (sim_time_t)(ts.tv_sec - d->t0.tv_sec) * SIM_S + (ts.tv_nsec - d->t0.tv_nsec);
}

/* ---- the timer heap: (time, sequence) ---------------------------------------------------------- */

static bool before(const timer_t_ *a, const timer_t_ *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(drv_t *d, sim_time_t t, int kind, void *obj)
{
    timer_t_ x = {t, d->seq++, kind, obj};
    lb_vec_push(&d->heap, x);
    size_t i = d->heap.n - 1;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!before(&d->heap.v[i], &d->heap.v[up])) break;
        timer_t_ tmp = d->heap.v[i];
        d->heap.v[i] = d->heap.v[up];
        d->heap.v[up] = tmp;
        i = up;
    }
}

static timer_t_ heap_pop(drv_t *d)
{
    timer_t_ top = d->heap.v[0];
    d->heap.v[0] = d->heap.v[--d->heap.n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->heap.n && before(&d->heap.v[l], &d->heap.v[m])) m = l;
        if (r < d->heap.n && before(&d->heap.v[r], &d->heap.v[m])) m = r;
        if (m == i) break;
        timer_t_ tmp = d->heap.v[i];
        d->heap.v[i] = d->heap.v[m];
        d->heap.v[m] = tmp;
        i = m;
    }
    return top;
}

/* ---- transfers ---------------------------------------------------------------------------------- */

static size_t discard_cb(char *ptr, size_t size, size_t n, void *data)
{
    (void)ptr;
    (void)data;
    return size * n;
}

/* A request's response body: its first METRICS_BODY_MAX bytes kept for matching. */
static size_t keep_resp_cb(char *ptr, size_t size, size_t n, void *data)
{
    xfer_t *x = data;
    size_t len = size * n, room = METRICS_BODY_MAX - x->rbody_len;
    if (len < room) room = len;
    memcpy(x->rbody + x->rbody_len, ptr, room);
    x->rbody_len += room;
    x->rbody[x->rbody_len] = '\0';
    return len;
}

static size_t keep_cb(char *ptr, size_t size, size_t n, void *data)
{
    xfer_t *x = data;
    size_t len = size * n, room = PROBE_BODY_MAX - x->body_len;
    if (len < room) room = len;
    memcpy(x->body + x->body_len, ptr, room);
    x->body_len += room;
    x->body[x->body_len] = '\0';
    return len;
}

static void heap_push(drv_t *d, sim_time_t t, int kind, void *obj);

/* CURLOPT_PREREQFUNCTION: connected (or reused), the request is about to be sent; its
 * response deadline starts now, as in http_client.c. A handle has at most one T_DEADLINE
 * in the heap: a later request's deadline is later (the same timeout, counted from a
 * later send), so the entry an earlier request left moves on to it when it fires
 * (fire) instead of every request adding one that waits out its full timeout. */
static int prereq_cb(void *data, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    xfer_t *x = data;
    x->prereq = true;
    if (x->rt > 0) {
        x->deadline = now_ns(x->d) + x->rt;
        if (!x->deadline_queued) heap_push(x->d, x->deadline, T_DEADLINE, x);
        x->deadline_queued = true;
    }
    return CURL_PREREQFUNC_OK;
}

static watch_t *watch_of(drv_t *d, curl_socket_t s)
{
    size_t i = (size_t)s;
    if (i >= d->watch.n) {
        lb_vec_reserve(&d->watch, i + 1);
        memset(d->watch.v + d->watch.n, 0, (i + 1 - d->watch.n) * sizeof *d->watch.v);
        d->watch.n = i + 1;
    }
    return &d->watch.v[i];
}

/* CURLOPT_OPENSOCKETFUNCTION: a connection's socket, as libcurl would open it. */
static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    if (s != CURL_SOCKET_BAD) *watch_of(clientp, s) = (watch_t){.conn = true};
    return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: a closed socket has left the epoll set. */
static int close_cb(void *clientp, curl_socket_t s)
{
    *watch_of(clientp, s) = (watch_t){0};
    return close(s);
}

/* Every transfer's sockets go through open_cb and close_cb (see watch_t). */
static void set_sockets(CURL *e, drv_t *d)
{
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, d);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, d);
}

static void set_tls(CURL *e, const rb_tls_t *t)
{
    if (t->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file) curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    if (t->key_file) curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    if (t->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static xfer_t *xfer_new(drv_t *d)
{
    xfer_t *x = lb_calloc(1, sizeof *x);
    x->d = d;
    x->e = curl_easy_init();
    if (!x->e) {
        fprintf(stderr, "sim: real mode: curl_easy_init failed\n");
        abort();
    }
    lb_vec_push(&d->all, x);
    return x;
}

/* A request handle of source run sr with everything that does not change per request. */
static xfer_t *req_handle(drv_t *d, srun_t *sr, rp_cnode_t *cn)
{
    xfer_t *x = sr->free;
    if (x && x->cn == cn) {
        sr->free = x->next_free;
        return x;
    }
    for (xfer_t **pp = &sr->free; *pp; pp = &(*pp)->next_free)
        if ((*pp)->cn == cn) {
            x = *pp;
            *pp = x->next_free;
            return x;
        }
    x = xfer_new(d);
    x->kind = T_ARRIVAL;
    x->sr = sr;
    x->cn = cn;
    const app_http_client_opts_t *o = sr->s->o;
    CURL *e = x->e;
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");     /* straight to the target, never a proxy
                                                      (nor the environment read per request) */
    set_sockets(e, d);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (metrics_wants(d->m) & M_WANT_BODY) {
        x->rbody = lb_malloc(METRICS_BODY_MAX + 1);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_resp_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    } else {
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
    }
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    if (sr->share[cn->idx]) curl_easy_setopt(e, CURLOPT_SHARE, sr->share[cn->idx]);
    /* an address literal resolves to itself: nothing in libcurl's DNS cache to expire,
     * so it is not swept after every transfer (Curl_hostcache_prune in multi_done) */
    if (sr->literal) curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, -1L);
    if (!o->keepalive) curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, REAL_MAX_IDLE_AGE_S);
    if (o->connect_timeout > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)((o->connect_timeout + SIM_MS - 1) / SIM_MS));
    if (sr->plain) {
        /* no TLS on any destination: no CA file and path for libcurl to copy into
         * every new transfer's connection (twice: Curl_clone_primary_ssl_config) */
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, NULL);
    } else {
        set_tls(e, sr->s->tls);
    }
    return x;
}

/* Sets up x's handle for request kind k (plan.c built its header list and body once):
 * method, headers, body. Nothing to do when the handle's last request was of kind k. */
static void apply_kind(xfer_t *x, const rp_kind_t *k)
{
    if (x->rkind == k) return;
    CURL *e = x->e;
    const char *m = k->spec->method;
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);              /* back to a plain GET */
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    if (k->body_len > 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, k->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, k->body);
        if (strcmp(m, "POST")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->hdrs);
    x->rkind = k;
}

/* The request URL of x, handed to libcurl parsed (CURLOPT_CURLU): libcurl 7.88 parses a
 * string URL and prints it back for every transfer, a sixth of its work per request; a
 * parsed one it only copies. The string goes too (the effective URL, messages); a URL
 * the parser refuses goes as a string only, for libcurl to refuse as it would. */
static void set_url(xfer_t *x, const char *url)
{
    curl_easy_setopt(x->e, CURLOPT_URL, url);
    if (!x->uh) x->uh = curl_url();
    bool ok = x->uh && curl_url_set(x->uh, CURLUPART_URL, url, 0) == CURLUE_OK;
    curl_easy_setopt(x->e, CURLOPT_CURLU, ok ? x->uh : NULL);
}

/* Starts a request of source run sr that was due at `due`. */
static void req_start(drv_t *d, srun_t *sr, rp_cnode_t *cn, user_t *u, sim_time_t due)
{
    rp_source_t *s = sr->s;
    const app_http_client_opts_t *o = s->o;
    xfer_t *x = req_handle(d, sr, cn);
    x->u = u;
    x->due = due;
    x->sent = now_ns(d);
    x->prereq = false;
    x->active = true;
    x->deadline = 0;
    lock(d);                        /* the source's numbers, the node's stream and rotations */
    x->req_id = ++s->seq;
    const rp_kind_t *k = &s->kinds[app_req_spec_pick(s->kinds[0].spec, s->n_kinds, cn->kind_rng)];
    size_t np = o->n_paths ? o->n_paths : 1;
    x->path = k->spec->path ? k->spec->path : o->n_paths ? o->paths[cn->next_path++ % np] : "/";
    const rp_dest_t *dst = &s->dests.v[cn->next_dest++ % s->dests.n];
    unlock(d);
    apply_kind(x, k);
    x->rbody_len = 0;
    if (x->rbody) x->rbody[0] = '\0';
    if (dst != x->dst) {
        curl_slist_free_all(x->connect_to);
        x->connect_to = dst->connect_to ? curl_slist_append(NULL, dst->connect_to) : NULL;
        curl_easy_setopt(x->e, CURLOPT_CONNECT_TO, x->connect_to);
    }
    if (dst != x->dst || x->path != x->url_path) {  /* the same URL again: nothing to do */
        char url[2048];
        snprintf(url, sizeof url, "%s%s", dst->url_base, x->path);
        x->dst = dst;
        x->url_path = x->path;
        set_url(x, url);
    }
    x->rt = o->response_timeout;
    sr->in_flight++;
    d->active++;
    curl_multi_add_handle(d->multi, x->e);
}

static void pending_free(pending_t *l)
{
    while (l) {
        pending_t *next = l->next;
        lb_free(l);
        l = next;
    }
}

/* GCRA: when may a request start (now if allowed; the retry time otherwise)? */
static sim_time_t gcra_allowed(sim_time_t tat, double rate, sim_time_t now)
{
    if (rate <= 0) return now;
    return tat - CAP_TOLERANCE > now ? tat - CAP_TOLERANCE : now;
}

static void gcra_take(sim_time_t *tat, double rate, sim_time_t now)
{
    if (rate <= 0) return;
    if (*tat < now) *tat = now;
    *tat += (sim_time_t)llround(1e9 / rate);
}

/* Starts held requests of sr while the bounds allow; arms a retry for the rate cap. */
static void drain_queue(drv_t *d, srun_t *sr)
{
    while (sr->q_head && sr->in_flight < sr->max_in_flight) {
        sim_time_t now = now_ns(d);
        sim_time_t a = gcra_allowed(sr->tat, sr->max_rate, now);
        sim_time_t g = gcra_allowed(d->cap_tat, d->cap_rate, now);
        if (g > a) a = g;
        if (a > now) {
            if (!sr->retry_armed) {
                sr->retry_armed = true;
                heap_push(d, a, T_RETRY, sr);
            }
            return;
        }
        pending_t *pd = sr->q_head;
        sr->q_head = pd->next;
        if (!sr->q_head) sr->q_tail = NULL;
        gcra_take(&sr->tat, sr->max_rate, now);
        gcra_take(&d->cap_tat, d->cap_rate, now);
        req_start(d, sr, pd->cn, pd->u, pd->due);
        pd->next = sr->pfree;
        sr->pfree = pd;
    }
}

/* A request is due: start it, or hold it (counted as delayed). */
static void req_due(drv_t *d, srun_t *sr, rp_cnode_t *cn, user_t *u, sim_time_t due)
{
    sim_time_t now = now_ns(d);
    if (!sr->q_head && sr->in_flight < sr->max_in_flight &&
        gcra_allowed(sr->tat, sr->max_rate, now) <= now &&
        gcra_allowed(d->cap_tat, d->cap_rate, now) <= now) {
        gcra_take(&sr->tat, sr->max_rate, now);
        gcra_take(&d->cap_tat, d->cap_rate, now);
        req_start(d, sr, cn, u, due);
        return;
    }
    pending_t *pd = sr->pfree;
    if (pd) sr->pfree = pd->next;
    else pd = lb_malloc(sizeof *pd);
    *pd = (pending_t){.cn = cn, .u = u, .due = due};
    if (sr->q_tail) sr->q_tail->next = pd;
    else sr->q_head = pd;
    sr->q_tail = pd;
    lock(d);
    d->p->delayed++;
    metrics_count(d->m, sr->s->c_delayed, due, 1);
    unlock(d);
    drain_queue(d, sr);
}

/* ---- probes -------------------------------------------------------------------------------------- */

static void probe_start(drv_t *d, rp_target_t *tg)
{
    xfer_t *x = xfer_new(d);
    x->kind = T_PROBE;
    x->tg = tg;
    x->sent = x->due = now_ns(d);
    x->active = true;
    CURL *e = x->e;
    const health_params_t *p = tg->ck->p;
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    set_sockets(e, d);
    curl_easy_setopt(e, CURLOPT_URL, tg->url);
    if (tg->connect_to) {
        x->connect_to = curl_slist_append(NULL, tg->connect_to);
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, x->connect_to);
    }
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)((p->timeout + SIM_MS - 1) / SIM_MS));
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (p->proto == HEALTH_TCP) {
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
        if (tg->host_header) x->hdrs = curl_slist_append(x->hdrs, tg->host_header);
        x->hdrs = curl_slist_append(x->hdrs, "Connection: close");
        x->hdrs = curl_slist_append(x->hdrs, "Accept:");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
        if (p->user_agent) curl_easy_setopt(e, CURLOPT_USERAGENT, p->user_agent);
        if (p->tls) {                   /* load balancers' probes do not verify */
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
    tg->in_flight++;
    d->active++;
    curl_multi_add_handle(d->multi, e);
}

static void result_text(const health_result_t *r, char *buf, size_t n)
{
    if (r->note[0]) snprintf(buf, n, "%s (%s)", r->reason, r->note);
    else snprintf(buf, n, "%s", r->reason);
}

static void watch_line(drv_t *d, const rp_target_t *tg, health_state_t from,
                       const health_result_t *r)
{
    char probe[300], res[160];
    health_probe_desc(tg->ck->p, tg->port, probe, sizeof probe);
    if (!r) {
        fprintf(d->out, "health %s %s %s: %s, probing %s\n", tg->ck->name, tg->label,
                health_state_name(tg->sm.state), tg->sm.state == HEALTH_INITIAL
                ? "not probed yet" : "initial state", probe);
    } else {
        result_text(r, res, sizeof res);
        fprintf(d->out, "health %s %s %s -> %s: %s on %s\n", tg->ck->name, tg->label,
                health_state_name(from), health_state_name(tg->sm.state), res, probe);
    }
    fflush(d->out);
}

static void probe_done(drv_t *d, xfer_t *x, const real_outcome_t *o, long status,
                       sim_time_t now)
{
    rp_target_t *tg = x->tg;
    rp_checker_t *ck = tg->ck;
    const health_params_t *p = ck->p;
    tg->in_flight--;
    health_result_t r = {0};
    if (o->outcome == HTTP_OK && p->proto == HEALTH_TCP) {
        r.ok = true;
        snprintf(r.reason, sizeof r.reason, "connected");
    } else if (o->outcome == HTTP_OK) {
        health_result_http(&r, &p->matcher, (int)status, x->body_len ? x->body : NULL);
    } else {
        health_result_fail(&r, o->err, o->connected);
        if (o->outcome == HTTP_DNS_ERROR) snprintf(r.reason, sizeof r.reason, "name not resolved");
    }
    r.t_start = x->sent;
    r.t_done = now;
    lock(d);                        /* the metrics and the plan's counters */
    d->p->probes++;
    if (o->connected || o->outcome == HTTP_OK) d->p->reached_probes++;
    tg->last = r;
    tg->has_last = true;
    if (!r.ok) {
        tg->last_fail = r;
        tg->has_fail = true;
    }
    m_probe_t mp = {ck->name, tg->label, now, r.ok, r.status, r.reason, 0};
    metrics_probe(d->m, &mp);
    metrics_count(d->m, r.ok ? ck->c_ok : ck->c_fail, now, 1);
    health_state_t from = tg->sm.state;
    if (health_sm_step(&tg->sm, p, r.ok, r.hard)) {
        metrics_count(d->m, tg->sm.state == HEALTH_UP ? ck->c_up : ck->c_down, now, 1);
        m_health_t mh = {ck->name, tg->label, now, health_state_name(from),
                         health_state_name(tg->sm.state), r.reason};
        metrics_health(d->m, &mh);
        if (d->p->o.watch) watch_line(d, tg, from, &r);
    }
    unlock(d);
}

/* The probe audit is over when every target has a result and has left INITIAL. */
static bool audit_decided(const drv_t *d)
{
    for (size_t c = 0; c < d->p->checkers.n; c++) {
        const rp_checker_t *ck = d->p->checkers.v[c];
        for (size_t i = 0; i < ck->targets.n; i++)
            if (!ck->targets.v[i].has_last || ck->targets.v[i].sm.state == HEALTH_INITIAL)
                return false;
    }
    return true;
}

/* ---- finishing transfers ------------------------------------------------------------------------ */

static srun_t *srun_of(drv_t *d, rp_source_t *s)
{
    for (size_t i = 0; i < d->src.n; i++)
        if (d->src.v[i].s == s) return &d->src.v[i];
    return NULL;
}

static void user_next(drv_t *d, srun_t *sr, user_t *u, sim_time_t now)
{
    const app_http_client_opts_t *o = sr->s->o;
    if (o->requests > 0 && u->issued >= o->requests) return;
    lock(d);                        /* the node's stream */
    sim_time_t think = dist_sample(&o->think_time, u->cn->rng);
    unlock(d);
    sim_time_t due = now + think;
    if ((o->stop > 0 && due >= o->stop) || due >= d->end) return;
    if (think > 0) {
        heap_push(d, due, T_USER, u);
        return;
    }
    u->issued++;                    /* no think time: the next request at once */
    req_due(d, sr, u->cn, u, due);
}

static sim_time_t us_ns(curl_off_t us) { return (sim_time_t)us * SIM_US; }

/* A request ended (con: libcurl's connect time): recorded, and the next one due. */
static void req_done(drv_t *d, xfer_t *x, const real_outcome_t *o, curl_off_t con,
                     sim_time_t now)
{
    srun_t *sr = x->sr;
    rp_source_t *s = sr->s;
    curl_off_t dns = 0, tls = 0, ttfb = 0, total = 0;
    curl_easy_getinfo(x->e, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(x->e, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(x->e, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
    curl_easy_getinfo(x->e, CURLINFO_TOTAL_TIME_T, &total);
    m_phases_t ph = {x->sent, us_ns(dns), us_ns(con), us_ns(tls), us_ns(ttfb),
                     total ? us_ns(total) : now - x->sent};
    m_request_t mr = {
        .source = s->metric, .t_start = x->due, .t_end = now,
        .cls = m_class_of(o->outcome, o->status), .status = o->status, .outcome = o->outcome,
        .req_id = x->req_id, .path = x->path, .phases = &ph,
        .body = x->rbody && o->outcome == HTTP_OK ? x->rbody : NULL,
    };
    m_header_t hs[REAL_RESP_HEADERS_MAX];
    if (o->outcome == HTTP_OK && (metrics_wants(d->m) & M_WANT_HEADERS)) {
        /* the last response's own headers (not a 100 Continue's nor a trailer) */
        struct curl_header *h = NULL;
        while (mr.n_headers < REAL_RESP_HEADERS_MAX &&
               (h = curl_easy_nextheader(x->e, CURLH_HEADER, -1, h)))
            hs[mr.n_headers++] = (m_header_t){h->name, h->value};
        mr.headers = hs;
    }
    lock(d);
    metrics_request(d->m, &mr);
    d->p->requests++;
    if (o->connected || o->outcome == HTTP_OK) d->p->reached_requests++;
    unlock(d);
    sr->in_flight--;
    user_t *u = x->u;
    x->next_free = sr->free;
    sr->free = x;
    if (u) user_next(d, sr, u, now);
    drain_queue(d, sr);
}

/* Ends transfer x (finished by curl with rc, or by our deadline when ours). */
static void finish(drv_t *d, xfer_t *x, CURLcode rc, bool ours)
{
    sim_time_t now = now_ns(d);
    long status = 0, oserr = 0;
    curl_off_t con = 0;
    curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->e, CURLINFO_OS_ERRNO, &oserr);
    curl_easy_getinfo(x->e, CURLINFO_CONNECT_TIME_T, &con);
    curl_multi_remove_handle(d->multi, x->e);
    x->active = false;
    x->deadline = 0;
    d->active--;
    bool connected = x->prereq || con > 0;
    real_outcome_t o;
    real_classify(rc, oserr, status, connected, ours, &o);
    if (x->kind == T_PROBE) {
        probe_done(d, x, &o, status, now);
        curl_slist_free_all(x->hdrs);
        x->hdrs = NULL;
        curl_easy_cleanup(x->e);            /* closes the probe's connection */
        x->e = NULL;
    } else {
        req_done(d, x, &o, con, now);
    }
}

/* ---- libcurl's socket interface ------------------------------------------------------------ */

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl wants (see watch_t for REMOVE). */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    (void)socketp;
    drv_t *d = userp;
    watch_t *w = watch_of(d, s);
    if (what == CURL_POLL_REMOVE) {
        w->wanted = false;
        if (w->in_set && !(w->conn && w->events == EPOLLIN)) {
            epoll_ctl(d->epfd, EPOLL_CTL_DEL, s, NULL);
            w->in_set = false;
        }
        return 0;
    }
    uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = events, .data.fd = s};
    w->wanted = true;
    if (!w->in_set) {
        if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
            epoll_ctl(d->epfd, EPOLL_CTL_MOD, s, &ev);
        w->in_set = true;
    } else if (w->events != events) {
        epoll_ctl(d->epfd, EPOLL_CTL_MOD, s, &ev);
    }
    w->events = events;
    return 0;
}

/* An event for s: hands it to libcurl, or deletes s from the set if libcurl removed it. */
static void watch_event(drv_t *d, const struct epoll_event *ev)
{
    int s = ev->data.fd;
    watch_t *w = watch_of(d, s);
    if (!w->wanted) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, s, NULL);
        w->in_set = false;
        return;
    }
    int flags = (ev->events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                (ev->events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                (ev->events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
    int running;
    curl_multi_socket_action(d->multi, s, flags, &running);
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants curl_multi_socket_action(TIMEOUT). */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    drv_t *d = userp;
    d->curl_due = timeout_ms < 0 ? -1 : now_ns(d) + (sim_time_t)timeout_ms * SIM_MS;
    return 0;
}

/* After curl_multi_socket_action: finished transfers. */
static void collect(drv_t *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = msg->data.result;
        finish(d, x, rc, false);
    }
}

/* ---- the loop ------------------------------------------------------------------------------------- */

static void fire(drv_t *d, const timer_t_ *t)
{
    switch (t->kind) {
    case T_ARRIVAL: {
        rp_cnode_t *cn = t->obj;            /* this thread's arrivals: every n-th */
        srun_t *sr = srun_of(d, cn->src);
        size_t *i = &sr->next_time[cn->idx];
        sim_time_t due = cn->times[*i];
        *i += (size_t)d->r->n;
        if (*i < cn->n_times) heap_push(d, cn->times[*i], T_ARRIVAL, cn);
        req_due(d, sr, cn, NULL, due);
        break;
    }
    case T_USER: {
        user_t *u = t->obj;
        u->issued++;
        req_due(d, u->sr, u->cn, u, t->t);
        break;
    }
    case T_PROBE: {
        rp_target_t *tg = t->obj;
        probe_start(d, tg);
        tg->next = t->t + tg->ck->p->interval;
        heap_push(d, tg->next, T_PROBE, tg);
        break;
    }
    case T_DEADLINE: {
        xfer_t *x = t->obj;
        x->deadline_queued = false;
        if (!x->active || !x->deadline) break;          /* no request waiting for one */
        if (x->deadline <= t->t) {
            finish(d, x, CURLE_OK, true);
        } else {                                        /* a later request's: move on */
            heap_push(d, x->deadline, T_DEADLINE, x);
            x->deadline_queued = true;
        }
        break;
    }
    case T_RETRY: {
        srun_t *sr = t->obj;
        sr->retry_armed = false;
        drain_queue(d, sr);
        break;
    }
    }
}

/* Does destination d connect to an IP address literal (the connect-to entry's address
 * "HOST:PORT:ADDR:PORT", else the URL's host)? */
static bool dest_literal(const rp_dest_t *d)
{
    char h[256];
    const char *p = d->url_base, *e;
    if (d->connect_to) {
        p = strchr(d->connect_to, ':');
        p = p ? strchr(p + 1, ':') : NULL;
        if (!p) return false;
        p++;
    } else {
        p = strstr(p, "://");
        if (!p) return false;
        p += 3;
    }
    if (*p == '[') {                                /* [IPv6] */
        e = strchr(++p, ']');
    } else {
        e = p + strcspn(p, ":/");
    }
    if (!e || (size_t)(e - p) >= sizeof h) return false;
    memcpy(h, p, (size_t)(e - p));
    h[e - p] = '\0';
    unsigned char a[16];
    return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* Sets up thread t's driver of run r: its multi handle, epoll set and per-source state
 * with its shares of the caps. Nothing is sent. 0, or LB_EIO with a message on stderr
 * (d is then freed with drv_free all the same). */
static int drv_init(drv_t *d, real_plan_t *p, drun_t *r, int t)
{
    *d = (drv_t){.p = p, .m = scn_run_metrics(p->run), .r = r, .tid = t,
                 .end = scn_run_duration(p->run),
                 .cap_rate = real_thread_rate(p->max_rate, r->n),
                 .out = p->o.out ? p->o.out : stdout, .curl_due = -1, .epfd = -1};
    d->audit = p->o.probes_only && !p->o.watch;
    d->multi = curl_multi_init();
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!d->multi || d->epfd < 0) {
        fprintf(stderr, "sim: real mode: curl_multi_init or epoll_create failed\n");
        return LB_EIO;
    }
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, REAL_MAX_IDLE_CONNS);
    for (size_t i = 0; i < p->sources.n; i++) {
        rp_source_t *s = p->sources.v[i];
        srun_t sr = {.s = s, .plain = true, .literal = true,
                     .max_in_flight = real_thread_in_flight(s->max_in_flight, r->n, t),
                     .max_rate = real_thread_rate(s->max_rate, r->n)};
        for (size_t k = 0; k < s->dests.n; k++) {
            sr.plain &= !strncmp(s->dests.v[k].url_base, "http://", 7);
            sr.literal &= dest_literal(&s->dests.v[k]);
        }
        sr.share = lb_calloc(s->nodes.n, sizeof *sr.share);
        sr.next_time = lb_calloc(s->nodes.n, sizeof *sr.next_time);
        for (size_t k = 0; k < s->nodes.n; k++) {
            sr.share[k] = curl_share_init();
            if (sr.share[k])
                curl_share_setopt(sr.share[k], CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
            sr.next_time[k] = (size_t)t;            /* arrivals t, t + n, ... */
        }
        if (s->o->mode == APP_CLIENT_CLOSED)
            sr.users = lb_calloc(s->nodes.n * (size_t)s->o->users, sizeof *sr.users);
        lb_vec_push(&d->src, sr);
    }
    return 0;
}

/* Puts d's first arrivals, its users' first requests and (thread 0) the probe ticks into
 * its heap, at times from the common start d->t0. */
static void drv_start(drv_t *d)
{
    for (size_t i = 0; i < d->src.n; i++) {
        srun_t *sr = &d->src.v[i];
        rp_source_t *s = sr->s;
        for (size_t k = 0; k < s->nodes.n; k++) {
            rp_cnode_t *cn = &s->nodes.v[k];
            if (s->o->mode == APP_CLIENT_OPEN) {
                if (sr->next_time[k] < cn->n_times)
                    heap_push(d, cn->times[sr->next_time[k]], T_ARRIVAL, cn);
                continue;
            }
            for (int uu = 0; uu < s->o->users; uu++) {
                size_t ui = k * (size_t)s->o->users + (size_t)uu;
                if (real_thread_of(ui, d->r->n) != d->tid) continue;
                user_t *u = &sr->users[ui];
                u->sr = sr;
                u->cn = cn;
                u->idx = uu;
                sim_time_t t = app_user_start(s->o, k, s->nodes.n, uu);
                if ((s->o->stop <= 0 || t < s->o->stop) && t < d->end)
                    heap_push(d, t, T_USER, u);
            }
        }
    }
    if (d->tid != 0) return;
    for (size_t c = 0; c < d->p->checkers.n; c++) {
        rp_checker_t *ck = d->p->checkers.v[c];
        for (size_t i = 0; i < ck->targets.n; i++) {
            rp_target_t *tg = &ck->targets.v[i];
            tg->next = tg->first;
            heap_push(d, tg->first, T_PROBE, tg);
            if (d->p->o.watch) watch_line(d, tg, tg->sm.state, NULL);
        }
    }
}

/* One thread's loop (pthread start routine; thread 0 runs it on the caller's thread):
 * until the run's stop flag (thread 0 raises it on scn_stop_requested()), the duration,
 * or, in the audit, every verdict decided. Sets d->t_end and d->complete. */
static void *drv_loop(void *arg)
{
    drv_t *d = arg;
    real_plan_t *p = d->p;
    bool pwait2 = true;
    for (;;) {
        sim_time_t now = now_ns(d);
        if (d->tid == 0 && scn_stop_requested()) atomic_store(&d->r->stop, true);
        if (atomic_load_explicit(&d->r->stop, memory_order_relaxed)) {
            d->t_end = now;
            break;
        }
        if (now >= d->end || (d->audit && p->checkers.n && audit_decided(d))) {
            d->t_end = now < d->end ? now : d->end;
            d->complete = true;
            break;
        }
        while (d->heap.n && d->heap.v[0].t <= now) {
            timer_t_ t = heap_pop(d);
            fire(d, &t);
        }
        int running = 0;
        if (d->curl_due >= 0 && d->curl_due <= now_ns(d)) {
            d->curl_due = -1;
            curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            collect(d);
        }
        now = now_ns(d);
        sim_time_t next = d->heap.n ? d->heap.v[0].t : d->end;
        if (d->curl_due >= 0 && d->curl_due < next) next = d->curl_due;
        if (next > d->end) next = d->end;
        sim_time_t wait = next <= now ? 0 : next - now;
        if (wait > REAL_POLL_MAX_MS * SIM_MS) wait = REAL_POLL_MAX_MS * SIM_MS;
        /* to the nanosecond (epoll_pwait2, Linux 5.11): arrivals leave when they are due;
         * to the millisecond where it is missing (older kernels, valgrind) */
        struct timespec ts = {wait / SIM_S, wait % SIM_S};
        struct epoll_event ev[EPOLL_BATCH];
        int k = pwait2 ? epoll_pwait2(d->epfd, ev, EPOLL_BATCH, &ts, NULL) : -1;
        if (k < 0 && errno == ENOSYS) pwait2 = false;
        if (!pwait2) k = epoll_wait(d->epfd, ev, EPOLL_BATCH, (int)((wait + SIM_MS - 1) / SIM_MS));
        for (int i = 0; i < k; i++) watch_event(d, &ev[i]);
        if (k > 0) collect(d);
    }
    return NULL;
}

/* Frees what drv_init and the loop made; transfers in flight are abandoned without a
 * record, as the simulator leaves them. */
static void drv_free(drv_t *d)
{
    for (size_t i = 0; i < d->all.n; i++) {
        xfer_t *x = d->all.v[i];
        if (x->active) curl_multi_remove_handle(d->multi, x->e);
        if (x->e) curl_easy_cleanup(x->e);
        curl_slist_free_all(x->hdrs);
        curl_slist_free_all(x->connect_to);
        if (x->uh) curl_url_cleanup(x->uh);
        lb_free(x->rbody);
        lb_free(x);
    }
    lb_vec_free(&d->all);
    for (size_t i = 0; i < d->src.n; i++) {
        srun_t *sr = &d->src.v[i];
        pending_free(sr->q_head);
        pending_free(sr->pfree);
        curl_slist_free_all(sr->hdrs);
        lb_free(sr->users);
        for (size_t k = 0; k < sr->s->nodes.n; k++)
            if (sr->share[k]) curl_share_cleanup(sr->share[k]);
        lb_free(sr->share);
        lb_free(sr->next_time);
    }
    lb_vec_free(&d->src);
    lb_vec_free(&d->heap);
    if (d->multi) curl_multi_cleanup(d->multi);
    if (d->epfd >= 0) close(d->epfd);
    lb_vec_free(&d->watch);
}

int real_plan_execute(real_plan_t *p)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "sim: real mode: libcurl could not be initialised\n");
            return LB_EIO;
        }
        curl_ready = true;
    }
    int n = p->o.probes_only || p->o.threads < 1 ? 1 : p->o.threads;
    assert(n <= REAL_THREADS_MAX);
    drun_t r = {.n = n, .threaded = n > 1};
    pthread_mutex_init(&r.mu, NULL);
    atomic_init(&r.stop, false);
    drv_t *ds = lb_calloc((size_t)n, sizeof *ds);
    for (int t = 0; t < n; t++) ds[t].epfd = -1;       /* (drv_free of one not set up) */
    int rc = 0;
    for (int t = 0; t < n && !rc; t++) rc = drv_init(&ds[t], p, &r, t);
    if (!rc) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int t = 0; t < n; t++) {
            ds[t].t0 = t0;
            drv_start(&ds[t]);
        }
        /* the other threads take no signals: SIGINT/SIGTERM reach thread 0's wait */
        pthread_t *th = lb_calloc((size_t)n, sizeof *th);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int started = 1;
        for (; started < n; started++)
            if (pthread_create(&th[started], NULL, drv_loop, &ds[started])) {
                fprintf(stderr, "sim: real mode: could not start thread %d of %d\n",
                        started + 1, n);
                atomic_store(&r.stop, true);
                rc = LB_EIO;
                break;
            }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        drv_loop(&ds[0]);
        for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
        lb_free(th);
    }
    bool complete = true;
    sim_time_t t_end = 0;
    for (int t = 0; t < n; t++) {
        complete &= ds[t].complete;
        if (ds[t].t_end > t_end) t_end = ds[t].t_end;
        drv_free(&ds[t]);
    }
    lb_free(ds);
    pthread_mutex_destroy(&r.mu);
    if (rc) return rc;
    p->executed = true;
    scn_run_set_played(p->run, "real", real_bindings_text(p->b), t_end, complete);
    return 0;
}

bool real_plan_unreachable(const real_plan_t *p)
{
    return p->executed && p->requests + p->probes > 0 &&
           p->reached_requests + p->reached_probes == 0;
}

/* ---- verdicts ------------------------------------------------------------------------------------ */

size_t real_plan_probes(const real_plan_t *p, rep_probe_t **out)
{
    size_t n = 0;
    for (size_t c = 0; c < p->checkers.n; c++) n += p->checkers.v[c]->targets.n;
    *out = n ? lb_calloc(n, sizeof **out) : NULL;
    size_t k = 0;
    for (size_t c = 0; c < p->checkers.n; c++) {
        const rp_checker_t *ck = p->checkers.v[c];
        for (size_t i = 0; i < ck->targets.n; i++) {
            const rp_target_t *tg = &ck->targets.v[i];
            rep_probe_t *r = &(*out)[k++];
            snprintf(r->checker, sizeof r->checker, "%s", ck->name);
            snprintf(r->target, sizeof r->target, "%s", tg->label);
            snprintf(r->state, sizeof r->state, "%s", health_state_name(tg->sm.state));
            snprintf(r->initial, sizeof r->initial, "%s", health_state_name(ck->p->initial));
            health_verdict(ck->p, ck->name, tg->label, tg->port, tg->sm.state, tg->sm.passes,
                           tg->sm.fails, tg->has_last ? &tg->last : NULL, r->line,
                           sizeof r->line);
        }
    }
    return n;
}

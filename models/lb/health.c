/* health.c -- the shared active health checker (include/health.h): periodic TCP or HTTP
 * probes, each on a fresh TCP connection opened with tcp.h, a per-target state machine
 * with thresholds, and the vendor presets with their sources. L4 and L7 LB models (Azure
 * LB, App Gateway, ALB, NLB) all probe through this file.
 *
 * Per-target state machine (apply_result performs every transition, set_state records it):
 *
 *   added (initial = INITIAL)                           added (initial = UP)
 *        |                                                   |
 *        v          initial_passes passes in a row           v
 *   +---------+ --------------------------------------> +---------+
 *   | INITIAL |                                         |   UP    |
 *   +---------+                                         +---------+
 *        |                                                |     ^
 *        | unhealthy_threshold failures in a row,         |     | healthy_threshold
 *        | or one hard failure when fail_fast   (same) -> |     | passes in a row
 *        v                                                v     |
 *   +-----------------------------------------------------------------+
 *   |                              DOWN                               |
 *   +-----------------------------------------------------------------+
 *
 *   INITIAL and DOWN get no traffic; only UP counts as healthy. A pass resets the failure
 *   streak and a failure resets the pass streak; a transition resets both.
 *
 * One probe (probe_t): tick -> tcp_connect (deadline armed at start + timeout)
 *   TCP:  connected -> pass, close (FIN)      error -> failure with the error's reason
 *   HTTP: connected -> GET path (Connection: close) -> response: status in matcher? pass
 *         : "HTTP <status>"; FIN before a response: "closed before response"
 *   deadline first -> "connect timeout" (no handshake yet: the socket is dropped, nothing
 *         sent) or "response timeout" (the connection is closed).
 * Probes are started every `interval` whatever happened to earlier ones (a probe slower
 * than the interval overlaps the next); results apply in completion order. The deadline
 * is scheduled before the next tick, so with timeout == interval the old probe's timeout
 * counts before the next probe starts. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "health.h"
#include <cJSON.h>
#include "tcp.h"
#include "http.h"

/* ---- vendor defaults ---------------------------------------------------------------------
 * Azure Standard LB (articles/load-balancer/load-balancer-custom-probe-overview.md;
 * cloud-provider-azure pkg/consts/consts.go; ARM ProbePropertiesFormat):
 *   interval 5 s and probeThreshold 2 as cloud-provider-azure sets them (ARM's own interval
 *   default is 15 s); HTTP passes only on 200; "The health probe is successful once after
 *   the VM boots" marks a new backend up: INITIAL with one pass; TCP probe timeout "N/A
 *   (probes will fail once the configured probe interval duration has passed and the next
 *   probe has been sent)" -> timeout = interval; HTTP/S probe timeout 30 s, bounded by the
 *   interval ("minimum of the probe interval and 30-second timeout period").
 *   Older revisions of the same page: "Regardless of configured time-out threshold, HTTP(S)
 *   probes will automatically probe down an instance if the server returns any status code
 *   that is not HTTP 200 OK or if the connection is terminated via TCP reset" -- that is
 *   fail_fast = true; the default follows the current probeThreshold semantics ("After
 *   failing the number of consecutive probes equal to this value, the endpoint will be
 *   taken out of rotation"). The probe's User-Agent, "Load Balancer Agent", is what backend
 *   access logs show (not in the docs).
 * Application Gateway v2 (articles/application-gateway/application-gateway-probe-overview.md):
 *   default probe GET <proto>://127.0.0.1:<port>/, interval 30 s, timeout 30 s, unhealthy
 *   threshold 3, 200-399 healthy, "When server A responds successfully to one request ...
 *   it is added back as healthy": healthy threshold 1. The state of a new member before its
 *   first probe is not documented (the portal shows "Unknown"): INITIAL, one pass.
 * AWS ALB (elasticloadbalancing/latest/application/target-group-health-checks): HTTP /,
 *   interval 30 s, timeout 5 s, healthy 5, unhealthy 2, matcher 200; "After your target is
 *   registered, it must pass one health check to be considered healthy"; User-Agent
 *   ELB-HealthChecker/2.0.
 * AWS NLB via the AWS Load Balancer Controller (docs/guide/service/annotations.md):
 *   TCP, interval 10 s, timeout 10 s, healthy 3, unhealthy 3, HTTP success codes 200-399.
 *   New targets must pass "the initial health checks"; how many is not stated: one pass,
 *   as for ALB (set initial_passes 0 to require healthy_threshold). */
#define AZ_LB_INTERVAL          (5 * SIM_S)     /* cloud-provider-azure default */
#define AZ_LB_THRESHOLD         2               /* cloud-provider-azure num-of-probe */
#define AZ_LB_USER_AGENT        "Load Balancer Agent"
#define APPGW_INTERVAL          (30 * SIM_S)
#define APPGW_TIMEOUT           (30 * SIM_S)
#define APPGW_UNHEALTHY         3
#define APPGW_HEALTHY           1
#define APPGW_HOST              "127.0.0.1"
#define ALB_INTERVAL            (30 * SIM_S)
#define ALB_TIMEOUT             (5 * SIM_S)
#define ALB_HEALTHY             5
#define ALB_UNHEALTHY           2
#define ELB_USER_AGENT          "ELB-HealthChecker/2.0"
#define NLB_INTERVAL            (10 * SIM_S)
#define NLB_TIMEOUT             (10 * SIM_S)
#define NLB_THRESHOLD           3
/* Generic defaults (health_params_default): a common middle ground, not a vendor's. */
#define GEN_INTERVAL            (10 * SIM_S)
#define GEN_TIMEOUT             (5 * SIM_S)
#define GEN_THRESHOLD           2

typedef struct target target_t;
typedef struct probe probe_t;

/* One probe in flight. Owned by its target's list until it finishes. */
struct probe {
    target_t *t;
    tcp_conn_t *c;              /* NULL once the connection is let go */
    tls_conn_t *tls;            /* HTTPS probes: the TLS layer over c */
    sim_handle_t deadline;
    sim_time_t t_start;
    uint64_t flow;
    bool connected;
    probe_t *prev, *next;
};

struct target {
    health_t *hc;
    size_t idx;
    uint32_t addr;
    uint16_t port;
    char *label;
    char *host;                 /* Host header of HTTP probes */
    health_sm_t sm;             /* state and streaks */
    sim_time_t first;           /* delay of the first probe (first_delay + jitter) */
    sim_time_t since;
    health_result_t last, last_fail;
    bool has_last, has_fail;
    sim_handle_t tick;
    probe_t *probes;            /* in flight */
};

struct health {
    net_t *net;
    sim_t *sim;
    net_node_t *node;
    char *name;
    health_params_t p;          /* strings owned */
    metrics_t *m;
    char *m_ok, *m_fail, *m_up, *m_down;
    health_transition_cb cb;
    void *cb_data;
    gsl_rng *rng;               /* jitter; NULL when jitter is 0 */
    LB_VEC(target_t *) targets;
    health_stats_t stats;
};

/* ---- parameters ------------------------------------------------------------------------ */

const char *health_state_name(int s)
{
    switch (s) {
    case HEALTH_INITIAL: return "initial";
    case HEALTH_UP: return "up";
    case HEALTH_DOWN: return "down";
    default: return "?";
    }
}

static bool parse_status(const char **s, int *out)
{
    const char *p = *s;
    int v = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) v = v * 10 + (*p++ - '0'), digits++;
    if (digits != 3 || v < 100 || v > 599) return false;
    *s = p;
    *out = v;
    return true;
}

int health_matcher_parse(health_matcher_t *m, const char *text)
{
    health_matcher_t r = {0};
    const char *s = text;
    if (!s || !*s) return LB_EINVAL;
    for (;;) {
        while (*s == ' ') s++;
        int lo, hi;
        if (!parse_status(&s, &lo)) return LB_EINVAL;
        hi = lo;
        if (*s == '-') {
            s++;
            if (!parse_status(&s, &hi) || hi < lo) return LB_EINVAL;
        }
        if (r.n == HEALTH_MATCHER_MAX) return LB_EINVAL;
        r.r[r.n].lo = lo;
        r.r[r.n].hi = hi;
        r.n++;
        while (*s == ' ') s++;
        if (!*s) break;
        if (*s++ != ',') return LB_EINVAL;
    }
    *m = r;
    return 0;
}

bool health_matcher_match(const health_matcher_t *m, int status)
{
    for (int i = 0; i < m->n; i++)
        if (status >= m->r[i].lo && status <= m->r[i].hi) return true;
    return false;
}

static health_matcher_t range(int lo, int hi)
{
    health_matcher_t m = {.n = 1};
    m.r[0].lo = lo;
    m.r[0].hi = hi;
    return m;
}

void health_params_default(health_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->proto = HEALTH_HTTP;
    p->path = "/";
    p->matcher = range(200, 399);
    p->interval = GEN_INTERVAL;
    p->timeout = GEN_TIMEOUT;
    p->healthy_threshold = p->unhealthy_threshold = GEN_THRESHOLD;
    p->initial = HEALTH_INITIAL;
    p->initial_passes = 1;
}

void health_params_preset(health_params_t *p, health_vendor_t v, health_proto_t proto)
{
    health_params_default(p);
    p->proto = proto;
    switch (v) {
    case HEALTH_VENDOR_AZURE_LB:
        p->who = "Azure LB";
        p->interval = AZ_LB_INTERVAL;
        p->healthy_threshold = p->unhealthy_threshold = AZ_LB_THRESHOLD;
        p->matcher = range(200, 200);
        p->initial_passes = 1;
        p->timeout = proto == HEALTH_TCP ? p->interval
                   : p->interval < HEALTH_AZURE_LB_HTTP_TIMEOUT_MAX ? p->interval
                   : HEALTH_AZURE_LB_HTTP_TIMEOUT_MAX;
        p->user_agent = AZ_LB_USER_AGENT;
        break;
    case HEALTH_VENDOR_APPGW:
        p->who = "App Gateway";
        p->interval = APPGW_INTERVAL;
        p->timeout = APPGW_TIMEOUT;
        p->unhealthy_threshold = APPGW_UNHEALTHY;
        p->healthy_threshold = APPGW_HEALTHY;
        p->host = APPGW_HOST;
        p->initial_passes = 1;
        break;
    case HEALTH_VENDOR_ALB:
        p->who = "ALB";
        p->interval = ALB_INTERVAL;
        p->timeout = ALB_TIMEOUT;
        p->healthy_threshold = ALB_HEALTHY;
        p->unhealthy_threshold = ALB_UNHEALTHY;
        p->matcher = range(200, 200);
        p->initial_passes = 1;
        p->user_agent = ELB_USER_AGENT;
        break;
    case HEALTH_VENDOR_NLB:
        p->who = "NLB";
        p->interval = NLB_INTERVAL;
        p->timeout = NLB_TIMEOUT;
        p->healthy_threshold = p->unhealthy_threshold = NLB_THRESHOLD;
        p->initial_passes = 1;
        p->user_agent = ELB_USER_AGENT;
        break;
    }
}

int health_params_check(const health_params_t *p, char *err, size_t errlen)
{
    const char *e = NULL;
    if (p->proto != HEALTH_TCP && p->proto != HEALTH_HTTP) e = "unknown probe protocol";
    else if (p->interval <= 0) e = "interval must be > 0";
    else if (p->timeout <= 0) e = "timeout must be > 0";
    else if (p->healthy_threshold < 1 || p->unhealthy_threshold < 1)
        e = "thresholds must be >= 1";
    else if (p->initial_passes < 0) e = "initial_passes must be >= 0";
    else if (p->initial != HEALTH_INITIAL && p->initial != HEALTH_UP)
        e = "initial state must be initial or up";
    else if (p->first_delay < 0 || p->jitter < 0) e = "first_delay and jitter must be >= 0";
    else if (p->proto == HEALTH_HTTP && (!p->path || p->path[0] != '/'))
        e = "HTTP probe path must start with '/'";
    else if (p->proto == HEALTH_HTTP && p->matcher.n == 0) e = "HTTP probe needs a status matcher";
    if (!e) return 0;
    if (err && errlen) snprintf(err, errlen, "%s", e);
    return LB_EINVAL;
}

/* ---- checker ----------------------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s && *s ? lb_strdup(s) : NULL; }

health_t *health_new(net_node_t *node, const char *name, const health_params_t *params,
                     metrics_t *m, int *rc)
{
    int dummy;
    if (!rc) rc = &dummy;
    *rc = 0;
    if (!node || !name || !*name || !params || health_params_check(params, NULL, 0) < 0) {
        *rc = LB_EINVAL;
        return NULL;
    }
    health_t *hc = lb_calloc(1, sizeof *hc);
    hc->net = node->net;
    hc->sim = net_sim(node->net);
    hc->node = node;
    hc->name = lb_strdup(name);
    hc->p = *params;
    hc->p.path = dup_or_null(params->path);
    hc->p.host = dup_or_null(params->host);
    hc->p.user_agent = dup_or_null(params->user_agent);
    hc->p.who = dup_or_null(params->who);
    if (!params->tls_cfg.max_version) tls_client_cfg_default(&hc->p.tls_cfg);
    hc->p.tls_cfg.sni = dup_or_null(hc->p.tls_cfg.sni);
    hc->p.tls_cfg.verify_name = dup_or_null(hc->p.tls_cfg.verify_name);
    hc->m = m;
    hc->m_ok = lb_sprintf("probe.%s.ok", name);
    hc->m_fail = lb_sprintf("probe.%s.fail", name);
    hc->m_up = lb_sprintf("health.%s.up", name);
    hc->m_down = lb_sprintf("health.%s.down", name);
    if (params->jitter > 0) {
        char s[256];
        snprintf(s, sizeof s, "health:%s", name);
        hc->rng = sim_rng(hc->sim, s);
    }
    net_app_register(hc->net, HEALTH_APP_KIND, hc);
    return hc;
}

/* Lets go of a probe's connection: a graceful close (a connecting socket is just dropped). */
static void probe_release(probe_t *pr)
{
    if (pr->c) {
        tcp_conn_set_cbs(pr->c, NULL, NULL);
        tcp_close(pr->c);
        pr->c = NULL;
    }
}

static void probe_unlink_free(health_t *hc, probe_t *pr)
{
    target_t *t = pr->t;
    sim_cancel(hc->sim, &pr->deadline);
    tls_conn_free(pr->tls);
    if (pr->prev) pr->prev->next = pr->next;
    else t->probes = pr->next;
    if (pr->next) pr->next->prev = pr->prev;
    lb_free(pr);
}

void health_free(health_t *hc)
{
    if (!hc) return;
    net_app_unregister(hc->net, hc);
    for (size_t i = 0; i < hc->targets.n; i++) {
        target_t *t = hc->targets.v[i];
        sim_cancel(hc->sim, &t->tick);
        while (t->probes) {
            probe_release(t->probes);
            probe_unlink_free(hc, t->probes);
        }
        lb_free(t->label);
        lb_free(t->host);
        lb_free(t);
    }
    lb_vec_free(&hc->targets);
    lb_free((char *)hc->p.path);
    lb_free((char *)hc->p.host);
    lb_free((char *)hc->p.user_agent);
    lb_free((char *)hc->p.who);
    lb_free((char *)hc->p.tls_cfg.sni);
    lb_free((char *)hc->p.tls_cfg.verify_name);
    lb_free(hc->m_ok);
    lb_free(hc->m_fail);
    lb_free(hc->m_up);
    lb_free(hc->m_down);
    lb_free(hc->name);
    lb_free(hc);
}

void health_set_callback(health_t *hc, health_transition_cb cb, void *data)
{
    hc->cb = cb;
    hc->cb_data = data;
}

const char *health_name(const health_t *hc) { return hc->name; }
const health_params_t *health_params(const health_t *hc) { return &hc->p; }
net_node_t *health_node(const health_t *hc) { return hc->node; }

/* ---- the state machine ------------------------------------------------------------------- */

void health_sm_init(health_sm_t *sm, const health_params_t *p)
{
    sm->state = p->initial;
    sm->passes = sm->fails = 0;
}

/* Every transition of the diagram at the top of this file. */
bool health_sm_step(health_sm_t *sm, const health_params_t *p, bool ok, bool hard)
{
    if (ok) {
        sm->fails = 0;
        sm->passes++;
    } else {
        sm->passes = 0;
        sm->fails++;
    }
    health_state_t to = sm->state;
    bool down = !ok && (sm->fails >= p->unhealthy_threshold || (p->fail_fast && hard));
    switch (sm->state) {
    case HEALTH_INITIAL: {
        int need = p->initial_passes > 0 ? p->initial_passes : p->healthy_threshold;
        if (ok && sm->passes >= need) to = HEALTH_UP;
        else if (down) to = HEALTH_DOWN;
        break;
    }
    case HEALTH_UP:
        if (down) to = HEALTH_DOWN;
        break;
    case HEALTH_DOWN:
        if (ok && sm->passes >= p->healthy_threshold) to = HEALTH_UP;
        break;
    }
    if (to == sm->state) return false;
    sm->state = to;
    sm->passes = sm->fails = 0;
    return true;
}

/* Records the transition the state machine just made (from -> t->sm.state). */
static void set_state(target_t *t, health_state_t from, const health_result_t *r)
{
    health_t *hc = t->hc;
    health_state_t to = t->sm.state;
    t->since = r->t_done;
    if (to == HEALTH_UP) {
        hc->stats.up++;
        if (hc->m) metrics_count(hc->m, hc->m_up, r->t_done, 1);
    } else {
        hc->stats.down++;
        if (hc->m) metrics_count(hc->m, hc->m_down, r->t_done, 1);
    }
    if (net_tracing(hc->net, r->flow))
        net_tracef_flow(hc->net, hc->name, r->flow, "target %s: %s -> %s (%s)", t->label,
                        health_state_name(from), health_state_name(to), r->reason);
    if (hc->m) {
        m_health_t mh = {hc->name, t->label, r->t_done, health_state_name(from),
                         health_state_name(to), r->reason};
        metrics_health(hc->m, &mh);
    }
    if (hc->cb) hc->cb(hc, t->idx, from, to, r, hc->cb_data);
}

/* Counts one result and performs the transition it causes, if any. */
static void apply_result(target_t *t, const health_result_t *r)
{
    health_t *hc = t->hc;
    t->last = *r;
    t->has_last = true;
    hc->stats.probes++;
    if (hc->m) {
        m_probe_t mp = {hc->name, t->label, r->t_done, r->ok, r->status, r->reason, r->flow};
        metrics_probe(hc->m, &mp);
    }
    if (r->ok) {
        hc->stats.ok++;
        if (hc->m) metrics_count(hc->m, hc->m_ok, r->t_done, 1);
    } else {
        hc->stats.fail++;
        if (hc->m) metrics_count(hc->m, hc->m_fail, r->t_done, 1);
        t->last_fail = *r;
        t->has_fail = true;
    }
    health_state_t from = t->sm.state;
    int streak = 1 + (r->ok ? t->sm.passes : t->sm.fails);
    bool changed = health_sm_step(&t->sm, &hc->p, r->ok, r->hard);
    if (net_tracing(hc->net, r->flow))
        net_tracef_flow(hc->net, hc->name, r->flow, "probe of %s: %s (%s), %d in a row, "
                        "state %s", t->label, r->ok ? "pass" : "fail", r->reason, streak,
                        health_state_name(from));
    if (changed) set_state(t, from, r);
}

/* ---- verdicts ----------------------------------------------------------------------------- */

void health_probe_desc(const health_params_t *p, int port, char *buf, size_t n)
{
    if (p->proto == HEALTH_TCP) snprintf(buf, n, "TCP connect port %d", port);
    else snprintf(buf, n, "%s %s port %d", p->tls ? "GET (TLS)" : "GET", p->path, port);
}

void health_verdict(const health_params_t *p, const char *checker, const char *label,
                    int port, health_state_t state, int passes, int fails,
                    const health_result_t *last, char *buf, size_t n)
{
    char probe[300], st[16], crit[160] = "", streak[96] = "", res[160];
    health_probe_desc(p, port, probe, sizeof probe);
    snprintf(st, sizeof st, "%s", health_state_name(state));
    for (char *c = st; *c; c++) *c = (char)(*c - 'a' + 'A');
    if (!last) {
        snprintf(buf, n, "%s: %s %s: not probed yet (%s)", checker, label, st, probe);
        return;
    }
    if (!last->ok && p->proto == HEALTH_HTTP && p->matcher.n) {
        char m[100] = "";
        for (int i = 0; i < p->matcher.n; i++) {
            size_t len = strlen(m);
            if (p->matcher.r[i].lo == p->matcher.r[i].hi)
                snprintf(m + len, sizeof m - len, "%s%d", i ? "," : "", p->matcher.r[i].lo);
            else
                snprintf(m + len, sizeof m - len, "%s%d-%d", i ? "," : "", p->matcher.r[i].lo,
                         p->matcher.r[i].hi);
        }
        bool one = p->matcher.n == 1 && p->matcher.r[0].lo == p->matcher.r[0].hi;
        snprintf(crit, sizeof crit, " (%s %s %s)", p->who ? p->who : "the checker",
                 one ? "requires" : "accepts", m);
    }
    if (state == HEALTH_UP && !last->ok)
        snprintf(streak, sizeof streak, ", %d of %d failures before down", fails,
                 p->unhealthy_threshold);
    else if (state == HEALTH_DOWN && last->ok)
        snprintf(streak, sizeof streak, ", %d of %d passes before up", passes,
                 p->healthy_threshold);
    else if (state == HEALTH_INITIAL)
        snprintf(streak, sizeof streak, ", %d of %d %s", last->ok ? passes : fails,
                 last->ok ? (p->initial_passes > 0 ? p->initial_passes : p->healthy_threshold)
                          : p->unhealthy_threshold, last->ok ? "passes before up"
                                                             : "failures before down");
    if (last->note[0]) snprintf(res, sizeof res, "%s (%s)", last->reason, last->note);
    else snprintf(res, sizeof res, "%s", last->reason);
    snprintf(buf, n, "%s: %s %s: %s on %s%s%s", checker, label, st, res, probe, crit, streak);
}

/* ---- results ------------------------------------------------------------------------------ */

void health_result_fail(health_result_t *r, int err, bool connected)
{
    const char *why;
    bool hard = false;
    switch (err) {
    case LB_ECONNREFUSED: hard = true; why = "connection refused"; break;
    case LB_ECONNRESET: hard = true; why = "connection reset"; break;
    case LB_ETIMEDOUT: why = connected ? "response timeout" : "connect timeout"; break;
    case LB_EHOSTUNREACH: why = "host unreachable"; break;
    case LB_ENETUNREACH: why = "network unreachable"; break;
    case LB_EADDRNOTAVAIL: why = "no free source port"; break;
    case LB_ECLOSED: why = "closed before response"; break;
    case LB_EPARSE: hard = true; why = "malformed response"; break;
    case LB_ETLS: hard = true; why = "TLS handshake failed"; break;
    default: why = lb_strerror(err); break;
    }
    r->ok = false;
    r->hard = hard;
    r->status = 0;
    r->err = err;
    snprintf(r->reason, sizeof r->reason, "%s", why);
}

/* kube-proxy's healthCheckNodePort body (pkg/proxy/healthcheck/service_health.go):
 * {"service":{...},"localEndpoints":N,"serviceProxyHealthy":true} */
static void body_note(char *note, size_t n, const char *body)
{
    note[0] = '\0';
    if (!body || !*body) return;
    cJSON *j = cJSON_Parse(body);
    const cJSON *le = j ? cJSON_GetObjectItemCaseSensitive(j, "localEndpoints") : NULL;
    if (cJSON_IsNumber(le)) snprintf(note, n, "localEndpoints %d", le->valueint);
    cJSON_Delete(j);
}

void health_result_http(health_result_t *r, const health_matcher_t *m, int status,
                        const char *body)
{
    r->ok = health_matcher_match(m, status);
    r->hard = !r->ok;
    r->status = status;
    r->err = 0;
    snprintf(r->reason, sizeof r->reason, "HTTP %d", status);
    body_note(r->note, sizeof r->note, body);
}

/* Ends a probe with result r (outcome fields set); the caller has already let go of (or
 * lost) the connection. */
static void probe_finish(probe_t *pr, health_result_t *r)
{
    target_t *t = pr->t;
    health_t *hc = t->hc;
    r->t_start = pr->t_start;
    r->t_done = sim_now(hc->sim);
    r->flow = pr->flow;
    probe_unlink_free(hc, pr);
    apply_result(t, r);
}

static void probe_fail(probe_t *pr, int err, bool connected)
{
    health_result_t r = {0};
    health_result_fail(&r, err, connected);
    probe_finish(pr, &r);
}

static void on_connected(tcp_conn_t *c, void *data)
{
    probe_t *pr = data;
    health_t *hc = pr->t->hc;
    pr->connected = true;
    if (hc->p.proto == HEALTH_TCP) {
        probe_release(pr);
        health_result_t r = {.ok = true};
        snprintf(r.reason, sizeof r.reason, "connected");
        probe_finish(pr, &r);
        return;
    }
    http_msg_t *req = http_request_new("GET", pr->t->host, hc->p.path, 0);
    if (hc->p.user_agent) http_header_set(req, "User-Agent", hc->p.user_agent);
    http_header_set(req, "Connection", "close");
    int rc = pr->tls ? tls_send(pr->tls, &req->base) : tcp_send(c, &req->base);
    net_msg_unref(&req->base);
    assert(rc == 0);
    (void)rc;
}

static void on_recv(tcp_conn_t *c, net_msg_t *msg, void *data)
{
    (void)c;
    probe_t *pr = data;
    health_t *hc = pr->t->hc;
    const http_msg_t *resp = http_msg_from(msg);
    probe_release(pr);
    if (!resp || resp->is_request) {
        probe_fail(pr, LB_EPARSE, true);
        return;
    }
    health_result_t r = {0};
    health_result_http(&r, &hc->p.matcher, resp->status, resp->body);
    probe_finish(pr, &r);
}

static void on_eof(tcp_conn_t *c, void *data)
{
    (void)c;
    probe_t *pr = data;
    probe_release(pr);
    probe_fail(pr, LB_ECLOSED, true);
}

static void on_error(tcp_conn_t *c, int rc, void *data)
{
    (void)c;
    probe_t *pr = data;
    pr->c = NULL;                   /* the stack frees it after this callback */
    if (rc == LB_ETLS && pr->tls && *tls_conn_why(pr->tls)) {
        health_result_t r = {0};
        health_result_fail(&r, rc, true);
        snprintf(r.reason, sizeof r.reason, "TLS: %s", tls_conn_why(pr->tls));
        probe_finish(pr, &r);
        return;
    }
    probe_fail(pr, rc, pr->connected);
}

static const tcp_cbs_t probe_cbs = {
    .connected = on_connected, .recv = on_recv, .eof = on_eof, .error = on_error,
};

static void deadline_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    probe_t *pr = a;
    bool connected = pr->connected;
    probe_release(pr);
    probe_fail(pr, LB_ETIMEDOUT, connected);
}

static void start_probe(target_t *t)
{
    health_t *hc = t->hc;
    probe_t *pr = lb_calloc(1, sizeof *pr);
    pr->t = t;
    pr->t_start = sim_now(hc->sim);
    pr->flow = net_flow_new(hc->net);
    pr->next = t->probes;
    if (t->probes) t->probes->prev = pr;
    t->probes = pr;
    if (net_tracing(hc->net, pr->flow)) {
        if (hc->p.proto == HEALTH_HTTP)
            net_tracef_flow(hc->net, hc->name, pr->flow, "probe %s: GET http://%s%s",
                            t->label, t->host, hc->p.path);
        else
            net_tracef_flow(hc->net, hc->name, pr->flow, "probe %s: TCP connect", t->label);
    }
    tcp_connect_opts_t o = {.src = hc->p.src, .flow = pr->flow};
    int rc = 0;
    pr->c = tcp_connect(hc->node, t->addr, t->port, &o, &probe_cbs, pr, &rc);
    if (!pr->c) {
        probe_fail(pr, rc, false);
        return;
    }
    if (hc->p.tls)
        pr->tls = tls_client_new(pr->c, &hc->p.tls_cfg, &probe_cbs, pr);
    pr->deadline = sim_schedule(hc->sim, hc->p.timeout, deadline_cb, pr, NULL);
}

static void tick_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    target_t *t = a;
    start_probe(t);                 /* its deadline is queued before the next tick */
    t->tick = sim_schedule(sim, t->hc->p.interval, tick_cb, t, NULL);
}

size_t health_target_add(health_t *hc, uint32_t addr, uint16_t port, const char *label)
{
    return health_target_add_after(hc, addr, port, label, 0);
}

size_t health_target_add_after(health_t *hc, uint32_t addr, uint16_t port, const char *label,
                               sim_time_t delay)
{
    target_t *t = lb_calloc(1, sizeof *t);
    char ip[16];
    lb_ip_str(addr, ip);
    t->hc = hc;
    t->idx = hc->targets.n;
    t->addr = addr;
    t->port = port;
    t->label = label && *label ? lb_strdup(label) : lb_sprintf("%s:%u", ip, port);
    if (hc->p.host) t->host = lb_strdup(hc->p.host);
    else if (port == 80) t->host = lb_strdup(ip);
    else t->host = lb_sprintf("%s:%u", ip, port);
    health_sm_init(&t->sm, &hc->p);
    t->since = sim_now(hc->sim);
    lb_vec_push(&hc->targets, t);
    t->first = hc->p.first_delay + (delay > 0 ? delay : 0);
    if (hc->rng) t->first += (sim_time_t)(gsl_rng_uniform(hc->rng) * (double)hc->p.jitter);
    t->tick = sim_schedule(hc->sim, t->first, tick_cb, t, NULL);
    return t->idx;
}

/* ---- queries ----------------------------------------------------------------------------- */

size_t health_target_count(const health_t *hc) { return hc->targets.n; }

static const target_t *tgt(const health_t *hc, size_t i)
{
    assert(i < hc->targets.n);
    return hc->targets.v[i];
}

const char *health_target_label(const health_t *hc, size_t i) { return tgt(hc, i)->label; }
health_state_t health_target_state(const health_t *hc, size_t i) { return tgt(hc, i)->sm.state; }
bool health_target_healthy(const health_t *hc, size_t i) { return tgt(hc, i)->sm.state == HEALTH_UP; }
uint32_t health_target_addr(const health_t *hc, size_t i) { return tgt(hc, i)->addr; }
uint16_t health_target_port(const health_t *hc, size_t i) { return tgt(hc, i)->port; }
sim_time_t health_target_first(const health_t *hc, size_t i) { return tgt(hc, i)->first; }
sim_time_t health_target_since(const health_t *hc, size_t i) { return tgt(hc, i)->since; }

size_t health_count_healthy(const health_t *hc)
{
    size_t n = 0;
    for (size_t i = 0; i < hc->targets.n; i++) n += hc->targets.v[i]->sm.state == HEALTH_UP;
    return n;
}

const health_result_t *health_target_last(const health_t *hc, size_t i)
{
    const target_t *t = tgt(hc, i);
    return t->has_last ? &t->last : NULL;
}

const health_result_t *health_target_last_failure(const health_t *hc, size_t i)
{
    const target_t *t = tgt(hc, i);
    return t->has_fail ? &t->last_fail : NULL;
}

int health_target_streak(const health_t *hc, size_t i, bool passes)
{
    const target_t *t = tgt(hc, i);
    return passes ? t->sm.passes : t->sm.fails;
}

void health_stats(const health_t *hc, health_stats_t *out) { *out = hc->stats; }

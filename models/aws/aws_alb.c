/* aws_alb.c -- AWS Application Load Balancer (include/aws_alb.h): nodes per zone, each an
 * L7 proxy whose vendor layer redirects or forwards, picks a target of the ip target group
 * round robin among the healthy ones (or all unhealthy ones when none is healthy: fail
 * open), answers 503 when it has no target to use, and maps upstream failures to the
 * ALB's own 502 and 504 pages. Every node health-checks every target itself.
 *
 * What AWS documents and this file follows (docs.aws.amazon.com/elasticloadbalancing/latest/
 * application/):
 *  - target-group-health-checks.html: HTTP, traffic-port, path /, interval 30 s, timeout
 *    5 s, healthy 5, unhealthy 2, matcher 200 (200-499 allowed); "After your target is
 *    registered, it must pass one health check to be considered healthy" (the
 *    HEALTH_VENDOR_ALB preset); "If a target group contains only unhealthy registered
 *    targets, the load balancer routes requests to all those targets, regardless of their
 *    health status." Here: with no healthy target, round robin over the unhealthy (DOWN)
 *    ones; targets still "initial" take no traffic, so a target group whose targets are
 *    all initial answers 503 like an empty one (what AWS answers then is not documented).
 *  - load-balancer-troubleshooting.html: 502 "The load balancer received a TCP RST from
 *    the target when attempting to establish a connection", "The target closed the
 *    connection with a TCP RST or a TCP FIN while the load balancer had an outstanding
 *    request to the target", "The target response is malformed", ICMP unreachable; 503
 *    "The target groups for the load balancer have no registered targets"; 504 "The load
 *    balancer failed to establish a connection to the target before the connection
 *    timeout expired (10 seconds)", "The load balancer established a connection to the
 *    target but the target did not respond before the idle timeout period elapsed". The
 *    ALB does not retry on another target.
 *  - application-load-balancers.html#connection-idle-timeout: 60 s, for the client side and
 *    the target side; load-balancer-listeners.html#redirect-actions: a redirect keeps
 *    host, path and query (#{host}, #{path}, #{query}) and answers HTTP_301 or HTTP_302;
 *    the Location names the port ("https://host:443/path" as ALBs send it).
 *  - x-forwarded-headers.html: X-Forwarded-For gets the client IP appended,
 *    X-Forwarded-Proto the listener's protocol. (X-Forwarded-Port is not added: l7proxy.h
 *    has no hook to add a header to forwarded requests.)
 *  - Error pages: the ALB's own responses carry "Server: awselb/2.0" and a small HTML
 *    body (as observed on real ALBs; the text is not documented).
 *  - Cross-zone load balancing is always on for ALB: every node uses every target. */
#include <stdio.h>
#include <string.h>
#include "aws_alb.h"
#include "l7proxy.h"

typedef struct anode {
    struct aws_alb *alb;
    size_t idx;
    char name[80];
    net_node_t *node;
    net_iface_t *nic;
    l7proxy_t *px;
    health_t *hc;
    size_t rr;                      /* round-robin position */
    uint64_t state_note;            /* explain: why requests get 503 / fail open */
    aws_alb_stats_t st;
} anode_t;

struct aws_alb {
    net_t *net;
    net_fabric_t *fab;
    aws_alb_params_t p;
    char *name, *hc_path, *hc_matcher;
    tls_client_cfg_t tls;           /* target_https: no SNI, no certificate check */
    uint32_t *targets;
    LB_VEC(anode_t *) nodes;
};

/* The ALB's answers to upstream failures (load-balancer-troubleshooting.html). */
static const l7_fail_action_t alb_fail_map[HTTP_OUTCOME_COUNT] = {
    [HTTP_CONNECT_TIMEOUT] = {504, NULL, "no connection to the target within the 10 s "
                              "connect timeout", false},
    [HTTP_CONNECT_REFUSED] = {502, NULL, "target refused the connection (RST)", false},
    [HTTP_RESET] = {502, NULL, "target reset the connection with the request outstanding",
                    false},
    [HTTP_RESPONSE_TIMEOUT] = {504, NULL, "no response from the target within the idle "
                               "timeout", false},
    [HTTP_CLOSED] = {502, NULL, "target closed the connection with the request outstanding",
                     false},
    [HTTP_NO_PORT] = {502, NULL, "no local port for the target connection", false},
    [HTTP_UNREACHABLE] = {502, NULL, "target unreachable (ICMP)", false},
    [HTTP_TLS_ERROR] = {502, NULL, "TLS handshake error with the target", false},
};

void aws_alb_params_default(aws_alb_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->name = "alb";
    p->http_port = 80;
    p->http_action = AWS_ALB_HTTP_FORWARD;
    p->redirect_status = AWS_ALB_REDIRECT_DEFAULT;
    p->target_port = 80;
    p->hc_path = AWS_ALB_HC_PATH_DEFAULT;
    p->hc_matcher = AWS_ALB_HC_MATCHER_DEFAULT;
    p->hc_interval_s = AWS_ALB_HC_INTERVAL_DEFAULT;
    p->hc_timeout_s = AWS_ALB_HC_TIMEOUT_DEFAULT;
    p->hc_healthy = AWS_ALB_HC_HEALTHY_DEFAULT;
    p->hc_unhealthy = AWS_ALB_HC_UNHEALTHY_DEFAULT;
    p->idle_timeout = AWS_ALB_IDLE_TIMEOUT_DEFAULT;
}

/* ---- the ALB's own responses ------------------------------------------------------------- */

static const char *page_title(int status)
{
    switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 502: return "Bad Gateway";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    default: return http_reason_phrase(status);
    }
}

static http_msg_t *alb_page(int status, const char *detail)
{
    char body[256];
    const char *t = page_title(status);
    snprintf(body, sizeof body, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
             "<center><h1>%d %s</h1></center>\r\n</body>\r\n</html>\r\n", status, t, status, t);
    http_msg_t *m = http_response_new(status, body, 0);
    http_header_set(m, "Server", AWS_ALB_SERVER);
    http_header_set(m, "Content-Type", "text/html");
    if (detail) http_msg_set_detail(m, detail);
    return m;
}

static void count_status(anode_t *an, int status)
{
    if (status == 502) an->st.status_502++;
    else if (status == 503) an->st.status_503++;
    else if (status == 504) an->st.status_504++;
}

/* Why node an has no target to use, for explanations: each target's state and last failure. */
static uint64_t no_target_cause(anode_t *an)
{
    aws_alb_t *alb = an->alb;
    explain_t *ex = alb->p.explain;
    if (!ex) return 0;
    if (an->state_note) return an->state_note;
    char why[512] = "";
    uint64_t cause = 0;
    for (size_t i = 0; i < alb->p.n_targets; i++) {
        const health_result_t *f = health_target_last_failure(an->hc, i);
        size_t len = strlen(why);
        snprintf(why + len, sizeof why - len, "%s%s %s: %s", i ? "; " : "",
                 health_target_label(an->hc, i), health_state_name(health_target_state(an->hc, i)),
                 f ? f->reason : "no failed health check");
        if (f && !cause) cause = explain_flow_last(ex, f->flow);
    }
    an->state_note = explain_note(ex, an->name, 0, cause, "no target can take traffic: %s",
                                  alb->p.n_targets ? why : "the target group is empty");
    return an->state_note;
}

/* ---- the vendor layer -------------------------------------------------------------------- */

static void redirect(anode_t *an, l7_req_t *rq, const http_msg_t *req, l7_decision_t *d)
{
    aws_alb_t *alb = an->alb;
    char host[128], loc[512], ip[16];
    const char *h = req->host && *req->host ? req->host : lb_ip_str(an->nic->addr, ip);
    snprintf(host, sizeof host, "%s", h);
    char *colon = strchr(host, ':');
    if (colon) *colon = 0;                      /* #{host} is the name without the port */
    snprintf(loc, sizeof loc, "https://%s:%u%s", host, alb->p.https_port,
             req->path ? req->path : "/");
    http_msg_t *m = alb_page(alb->p.redirect_status, NULL);
    http_header_set(m, "Location", loc);
    l7_decision_answer(d, alb->p.redirect_status, NULL, "listener redirect to HTTPS");
    d->resp = m;
    an->st.redirects++;
    if (net_tracing(alb->net, l7_req_flow(rq)))
        net_tracef_flow(alb->net, an->name, l7_req_flow(rq), "listener %u: redirect %d to %s",
                        l7_req_port(rq), alb->p.redirect_status, loc);
}

static void route(l7proxy_t *px, l7_req_t *rq, const http_msg_t *req, l7_decision_t *d,
                  void *data)
{
    (void)px;
    anode_t *an = data;
    aws_alb_t *alb = an->alb;
    an->st.requests++;
    if (alb->p.http_action == AWS_ALB_HTTP_REDIRECT && l7_req_port(rq) == alb->p.http_port) {
        redirect(an, rq, req, d);
        return;
    }
    size_t n = alb->p.n_targets;
    bool open = false;
    size_t pick = n;
    for (size_t k = 0; k < n && pick == n; k++) {
        size_t m = (an->rr + k) % n;
        if (health_target_state(an->hc, m) == HEALTH_UP) pick = m;
    }
    if (pick == n) {
        /* no healthy target: fail open over the unhealthy ones */
        for (size_t k = 0; k < n && pick == n; k++) {
            size_t m = (an->rr + k) % n;
            if (health_target_state(an->hc, m) == HEALTH_DOWN) pick = m;
        }
        open = pick < n;
    }
    if (pick == n) {
        const char *why = n ? "no target has passed a health check yet"
                            : "the target group has no registered targets";
        l7_decision_answer(d, 503, NULL, why);
        d->resp = alb_page(503, why);
        count_status(an, 503);
        explain_t *ex = alb->p.explain;
        if (ex)
            explain_note(ex, an->name, l7_req_flow(rq), no_target_cause(an), "503: %s", why);
        return;
    }
    an->rr = pick + 1;
    an->st.forwarded++;
    if (open) {
        an->st.fail_open++;
        if (alb->p.explain)
            explain_note(alb->p.explain, an->name, l7_req_flow(rq), no_target_cause(an),
                         "every target unhealthy: fail open, request sent to %s anyway",
                         health_target_label(an->hc, pick));
    }
    if (net_tracing(alb->net, l7_req_flow(rq)))
        net_tracef_flow(alb->net, an->name, l7_req_flow(rq), "target group: %s target %s:%u "
                        "(round robin)", open ? "fail open ->" : "healthy",
                        health_target_label(an->hc, pick), alb->p.target_port);
    l7_decision_forward(d, alb->targets[pick], alb->p.target_port, NULL);
}

static void upstream_end(l7proxy_t *px, l7_req_t *rq, const l7_attempt_t *a, l7_decision_t *d,
                         void *data)
{
    (void)px;
    anode_t *an = data;
    aws_alb_t *alb = an->alb;
    if (d->action != L7_ANSWER) return;
    int status = d->status;
    const char *detail = d->detail;
    d->resp = alb_page(status, detail);
    count_status(an, status);
    if (alb->p.explain)
        explain_note(alb->p.explain, an->name, l7_req_flow(rq),
                     explain_flow_last(alb->p.explain, a->flow), "target %s: %s -> %d",
                     http_outcome_name(a->outcome), detail ? detail : "", status);
}

static void flow_link(void *data, uint64_t down, uint64_t up, uint64_t req_id)
{
    (void)req_id;
    explain_link(data, down, up);
}

static void health_cb(health_t *hc, size_t target, health_state_t from, health_state_t to,
                      const health_result_t *last, void *data)
{
    anode_t *an = data;
    explain_t *ex = an->alb->p.explain;
    if (!ex) return;
    uint64_t probe = explain_note(ex, an->name, 0, explain_flow_last(ex, last->flow),
                                  "health check GET %s to %s -> %s", health_params(hc)->path,
                                  health_target_label(hc, target), last->reason);
    uint64_t n = explain_note(ex, an->name, 0, probe, "target %s %s -> %s",
                              health_target_label(hc, target), health_state_name(from),
                              health_state_name(to));
    if (health_count_healthy(hc) == 0) {
        an->state_note = explain_note(ex, an->name, 0, n, "no healthy target: requests %s",
                                      to == HEALTH_DOWN ? "fail open to the unhealthy targets"
                                      : "get 503");
        explain_set_state(ex, an->name, an->state_note);
    } else {
        an->state_note = 0;
        explain_set_state(ex, an->name, 0);
    }
}

/* ---- the frontend: stands in for DNS, spreading connections over the nodes ---- */

static void frontend_cb(net_fabric_t *fab, pkt_t *p, void *data)
{
    aws_alb_t *alb = data;
    uint64_t h = lb_mix64(((uint64_t)p->src << 32 | p->dst) ^
                          lb_mix64((uint64_t)p->sport << 16 | p->dport |
                                   (uint64_t)p->proto << 32));
    anode_t *an = alb->nodes.v[h % alb->nodes.n];
    net_fabric_send_to(fab, an->nic, p);
}

/* ---- construction ------------------------------------------------------------------------ */

aws_alb_t *aws_alb_new(net_t *net, net_fabric_t *fab, const aws_alb_params_t *p,
                       const aws_alb_zone_t *zones, size_t n_zones, char *err, size_t errlen)
{
    aws_alb_t *alb = NULL;
#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); aws_alb_free(alb); return NULL; } \
                  while (0)
    if (!n_zones || n_zones > AWS_ALB_MAX_ZONES)
        FAIL("needs 1 to %d availability zones", AWS_ALB_MAX_ZONES);
    if (!p->http_port && !p->https_port) FAIL("needs an HTTP or an HTTPS listener");
    if (p->http_port && p->http_port == p->https_port) FAIL("HTTP and HTTPS on the same port");
    if (p->http_port && p->http_action == AWS_ALB_HTTP_REDIRECT) {
        if (!p->https_port) FAIL("a redirect to HTTPS needs the HTTPS listener port");
        if (p->redirect_status != 301 && p->redirect_status != 302)
            FAIL("redirect status %d: HTTP_301 or HTTP_302", p->redirect_status);
    }
    if (!p->target_port) FAIL("target port 0");
    if (p->idle_timeout <= 0) FAIL("idle timeout must be > 0");
    health_params_t hp;
    health_params_preset(&hp, HEALTH_VENDOR_ALB, HEALTH_HTTP);
    hp.path = p->hc_path && *p->hc_path ? p->hc_path : AWS_ALB_HC_PATH_DEFAULT;
    hp.interval = (sim_time_t)p->hc_interval_s * SIM_S;
    hp.timeout = (sim_time_t)p->hc_timeout_s * SIM_S;
    hp.healthy_threshold = p->hc_healthy;
    hp.unhealthy_threshold = p->hc_unhealthy;
    hp.initial = p->warm_start ? HEALTH_UP : HEALTH_INITIAL;
    tls_client_cfg_t tls;
    tls_client_cfg_default(&tls);                   /* no SNI, no verification */
    if (p->target_https) {
        hp.tls = true;
        hp.tls_cfg = tls;
    }
    const char *matcher = p->hc_matcher && *p->hc_matcher ? p->hc_matcher
                          : AWS_ALB_HC_MATCHER_DEFAULT;
    if (health_matcher_parse(&hp.matcher, matcher))
        FAIL("health check matcher '%s': expected codes like 200 or 200-299", matcher);
    for (int i = 0; i < hp.matcher.n; i++)
        if (hp.matcher.r[i].lo < 200 || hp.matcher.r[i].hi > 499)
            FAIL("health check matcher '%s': ALB accepts codes from 200 to 499", matcher);
    char perr[160];
    if (health_params_check(&hp, perr, sizeof perr)) FAIL("health check: %s", perr);
    if (hp.timeout >= hp.interval)
        FAIL("health check timeout (%d s) must be smaller than the interval (%d s)",
             p->hc_timeout_s, p->hc_interval_s);

    alb = lb_calloc(1, sizeof *alb);
    alb->net = net;
    alb->fab = fab;
    alb->p = *p;
    alb->name = lb_strdup(p->name && *p->name ? p->name : "alb");
    alb->tls = tls;
    alb->hc_path = lb_strdup(hp.path);
    alb->hc_matcher = lb_strdup(matcher);
    alb->p.name = alb->name;
    alb->p.hc_path = alb->hc_path;
    alb->p.hc_matcher = alb->hc_matcher;
    alb->targets = lb_calloc(p->n_targets ? p->n_targets : 1, sizeof *alb->targets);
    if (p->n_targets) memcpy(alb->targets, p->targets, p->n_targets * sizeof *alb->targets);
    alb->p.targets = alb->targets;
    if (p->frontend && net_fabric_vip(fab, p->frontend, alb->name, frontend_cb, alb))
        FAIL("frontend address is already in use in %s", net_fabric_name(fab));
    for (size_t z = 0; z < n_zones; z++) {
        anode_t *an = lb_calloc(1, sizeof *an);
        an->alb = alb;
        an->idx = z;
        lb_vec_push(&alb->nodes, an);
        snprintf(an->name, sizeof an->name, "%s-%s", alb->name,
                 zones[z].name && *zones[z].name ? zones[z].name : "zone");
        if (!zones[z].addr) FAIL("zone %s: no node address", an->name);
        if (net_node_find(net, an->name)) FAIL("a node named %s exists already", an->name);
        an->node = net_node_add(net, an->name);
        an->node->data = alb;
        an->nic = net_iface_add(an->node, "eth0", zones[z].addr, zones[z].plen ? zones[z].plen
                                : 32);
        if (net_fabric_attach(fab, an->nic)) {
            char ip[16];
            FAIL("zone %s: address %s is already in use in %s", an->name,
                 lb_ip_str(zones[z].addr, ip), net_fabric_name(fab));
        }
        net_route_add(an->node, 0, 0, 0, an->nic);
        if (p->frontend) net_node_addr_add(an->node, p->frontend);
        hp.src = zones[z].addr;
        int rc = 0;
        an->hc = health_new(an->node, an->name, &hp, p->metrics, &rc);
        if (!an->hc) FAIL("health check: %s", lb_strerror(rc));
        health_set_callback(an->hc, health_cb, an);
        for (size_t i = 0; i < p->n_targets; i++) {
            char label[32];
            lb_ip_str(p->targets[i], label);
            health_target_add(an->hc, p->targets[i], p->hc_port ? p->hc_port : p->target_port,
                              label);
        }
        l7proxy_opts_t o;
        l7proxy_opts_init(&o);
        o.name = an->name;
        l7_listener_t li[2];
        size_t nli = 0;
        if (p->http_port) li[nli++] = (l7_listener_t){p->http_port, "http", NULL};
        if (p->https_port) li[nli++] = (l7_listener_t){p->https_port, "https", NULL};
        o.listeners = li;
        o.n_listeners = nli;
        o.downstream_idle_timeout = p->idle_timeout;
        o.upstream.keepalive = true;
        o.upstream.connect_timeout = AWS_ALB_CONNECT_TIMEOUT;
        o.upstream.response_timeout = p->idle_timeout;
        o.upstream.idle_timeout = p->idle_timeout;
        o.upstream.src = zones[z].addr;
        if (p->target_https) o.upstream.tls = &alb->tls;   /* tls_sni_from_host off */
        o.fail_map = alb_fail_map;
        o.xff = true;
        o.xfp = true;
        o.metrics = p->metrics;
        o.flow_link = p->explain ? flow_link : NULL;
        o.flow_link_data = p->explain;
        l7_vendor_t v = {route, upstream_end, NULL, NULL, an};
        an->px = l7proxy_new(an->node, &o, &v, &rc);
        if (!an->px) FAIL("node %s: %s", an->name, lb_strerror(rc));
    }
    return alb;
#undef FAIL
}

void aws_alb_free(aws_alb_t *alb)
{
    if (!alb) return;
    for (size_t i = 0; i < alb->nodes.n; i++) {
        l7proxy_free(alb->nodes.v[i]->px);
        health_free(alb->nodes.v[i]->hc);
        lb_free(alb->nodes.v[i]);
    }
    lb_vec_free(&alb->nodes);
    lb_free(alb->targets);
    lb_free(alb->hc_path);
    lb_free(alb->hc_matcher);
    lb_free(alb->name);
    lb_free(alb);
}

const char *aws_alb_name(const aws_alb_t *alb) { return alb->name; }
size_t aws_alb_node_count(const aws_alb_t *alb) { return alb->nodes.n; }
net_node_t *aws_alb_node(const aws_alb_t *alb, size_t i) { return alb->nodes.v[i]->node; }
uint32_t aws_alb_node_addr(const aws_alb_t *alb, size_t i) { return alb->nodes.v[i]->nic->addr; }
health_t *aws_alb_health(const aws_alb_t *alb, size_t i) { return alb->nodes.v[i]->hc; }
const aws_alb_params_t *aws_alb_params(const aws_alb_t *alb) { return &alb->p; }

size_t aws_alb_healthy_targets(const aws_alb_t *alb, size_t i)
{
    return health_count_healthy(alb->nodes.v[i]->hc);
}

void aws_alb_stats(const aws_alb_t *alb, aws_alb_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < alb->nodes.n; i++) {
        const aws_alb_stats_t *s = &alb->nodes.v[i]->st;
        out->requests += s->requests;
        out->forwarded += s->forwarded;
        out->fail_open += s->fail_open;
        out->redirects += s->redirects;
        out->status_502 += s->status_502;
        out->status_503 += s->status_503;
        out->status_504 += s->status_504;
    }
}

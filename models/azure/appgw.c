/* appgw.c -- Azure Application Gateway v2 (include/appgw.h): the frontend spreads client
 * connections over the instances by a 5-tuple hash; each instance is an L7 proxy whose
 * vendor layer picks a healthy backend member round-robin, answers 502 when its own probes
 * see no healthy member (App Gateway has no fail-open), maps upstream failures to 502/504,
 * and retries a timed-out request once on another member. Every instance probes the pool
 * independently. The "azure-app-gateway" element builds one from a scenario. */
#include <stdio.h>
#include <string.h>
#include "appgw.h"
#include "element.h"
#include "health.h"
#include "l7proxy.h"

typedef struct instance {
    struct appgw *g;
    size_t idx;
    net_node_t *node;
    net_iface_t *nic;
    l7proxy_t *px;
    health_t *hc;
    size_t rr;                      /* round-robin position */
    uint64_t state_note;            /* explain: why no member is healthy */
    char name[64];
} instance_t;

struct appgw {
    net_t *net;
    net_fabric_t *fab;
    appgw_params_t p;
    char *name;
    char *backend_host;
    tls_client_cfg_t tls;           /* backend settings HTTPS: live traffic's handshakes */
    uint32_t *members;
    LB_VEC(instance_t *) inst;
};

/* Upstream failures, per http-response-codes.md and troubleshooting-502: a refused or reset
 * connection is a 502; a timeout is retried once on another member, then 504. */
static const l7_fail_action_t appgw_fail_map[HTTP_OUTCOME_COUNT] = {
    [HTTP_CONNECT_TIMEOUT] = {504, NULL, "backend connect timeout (request timeout)", true},
    [HTTP_CONNECT_REFUSED] = {502, NULL, "backend refused the connection", false},
    [HTTP_RESET] = {502, NULL, "backend reset the connection", false},
    [HTTP_RESPONSE_TIMEOUT] = {504, NULL, "backend response timeout (request timeout)", true},
    [HTTP_CLOSED] = {502, NULL, "backend closed the connection before responding", false},
    [HTTP_NO_PORT] = {502, NULL, "no local port for the backend connection", false},
    [HTTP_UNREACHABLE] = {502, NULL, "backend unreachable", false},
    [HTTP_TLS_ERROR] = {502, NULL, "TLS handshake with the backend failed", false},
};

void appgw_params_default(appgw_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->name = "appgw";
    p->instances = 2;
    p->listener_port = 80;
    p->backend_port = 80;
    p->request_timeout = APPGW_REQUEST_TIMEOUT_DEFAULT;
    lb_cidr_parse("10.225.0.0/24", &p->subnet, &p->plen);
}

static const char *bad_gateway_body =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>" APPGW_SERVER_HEADER
    "</center>\r\n</body>\r\n</html>\r\n";

/* ---- the vendor layer ---- */

static void route(l7proxy_t *px, l7_req_t *rq, const http_msg_t *req, l7_decision_t *d,
                  void *data)
{
    (void)px;
    (void)req;
    instance_t *in = data;
    appgw_t *g = in->g;
    size_t n = g->p.n_members;
    for (size_t k = 0; k < n; k++) {
        size_t m = (in->rr + k) % n;
        if (!health_target_healthy(in->hc, m)) continue;
        if (l7_req_tried(rq, g->members[m], g->p.backend_port)) continue;
        in->rr = m + 1;
        l7_decision_forward(d, g->members[m], g->p.backend_port, NULL);
        if (g->backend_host) d->host = g->backend_host;    /* settings: host name override */
        return;
    }
    /* nothing healthy (or nothing untried on a retry) */
    bool retry = l7_req_attempts(rq) > 0;
    l7_decision_answer(d, retry ? 504 : 502, retry ? NULL : bad_gateway_body,
                       retry ? "no other healthy backend member to retry on"
                             : "no healthy backend member (all probes failing)");
    if (g->p.explain) {
        /* the cause: the latest failed probe of a member (its flow's own notes, e.g. the
         * backend's 404, come along) */
        char why[256] = "";
        uint64_t cause = in->state_note;
        for (size_t m = 0; m < n; m++) {
            const health_result_t *f = health_target_last_failure(in->hc, m);
            size_t len = strlen(why);
            snprintf(why + len, sizeof why - len, "%s%s %s: %s", m ? "; " : "",
                     health_target_label(in->hc, m), health_state_name(health_target_state(in->hc, m)),
                     f ? f->reason : "not probed yet");
            if (f && !cause) {
                uint64_t pf = explain_flow_last(g->p.explain, f->flow);
                cause = explain_note(g->p.explain, in->name, 0, pf, "probe GET %s to %s -> %s",
                                     health_params(in->hc)->path,
                                     health_target_label(in->hc, m), f->reason);
                in->state_note = cause;
            }
        }
        explain_note(g->p.explain, in->name, l7_req_flow(rq), cause, "%s: %s",
                     retry ? "504" : "502 (no fail-open)", retry ? "no other member" : why);
    }
}

static void upstream_end(l7proxy_t *px, l7_req_t *rq, const l7_attempt_t *a, l7_decision_t *d,
                         void *data)
{
    (void)px;
    instance_t *in = data;
    appgw_t *g = in->g;
    if (a->outcome != HTTP_OK && g->p.explain)
        explain_note(g->p.explain, in->name, l7_req_flow(rq), explain_flow_last(g->p.explain, a->flow),
                     "upstream attempt %d to backend: %s%s%s%s -> %s", a->attempt + 1,
                     http_outcome_name(a->outcome), a->detail ? " (" : "",
                     a->detail ? a->detail : "", a->detail ? ")" : "",
                     d->action == L7_RETRY ? "retry on another member" : "answer the client");
}

static void respond(l7proxy_t *px, l7_req_t *rq, http_msg_t *resp, void *data)
{
    (void)px;
    (void)rq;
    (void)data;
    if (resp->status == 502 || resp->status == 504)
        http_header_set(resp, "Server", APPGW_SERVER_HEADER);
}

static void flow_link(void *data, uint64_t down, uint64_t up, uint64_t req_id)
{
    (void)req_id;
    explain_link(data, down, up);
}

static void health_cb(health_t *hc, size_t target, health_state_t from, health_state_t to,
                      const health_result_t *last, void *data)
{
    (void)from;
    instance_t *in = data;
    explain_t *ex = in->g->p.explain;
    if (!ex) return;
    uint64_t probe = last ? explain_note(ex, in->name, 0, explain_flow_last(ex, last->flow),
                                         "probe GET %s to %s -> %s", health_params(hc)->path,
                                         health_target_label(hc, target), last->reason)
                          : 0;
    uint64_t n = explain_note(ex, in->name, 0, probe ? probe : in->state_note,
                              "backend member %s %s", health_target_label(hc, target),
                              health_state_name(to));
    if (health_count_healthy(hc) == 0) {
        in->state_note = explain_note(ex, in->name, 0, n, "no healthy backend member: "
                                      "requests get 502");
        explain_set_state(ex, in->name, in->state_note);
    } else {
        in->state_note = 0;
        explain_set_state(ex, in->name, 0);
    }
}

/* ---- the frontend: Azure spreads connections over the instances ---- */

static void frontend_cb(net_fabric_t *fab, pkt_t *p, void *data)
{
    appgw_t *g = data;
    uint64_t h = lb_mix64(((uint64_t)p->src << 32 | p->dst) ^
                          lb_mix64((uint64_t)p->sport << 16 | p->dport | (uint64_t)p->proto << 32));
    instance_t *in = g->inst.v[h % g->inst.n];
    net_fabric_send_to(fab, in->nic, p);
}

/* ---- construction ---- */

void appgw_instance_name(const char *name, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s-%d", name, i);
}

appgw_t *appgw_new(net_t *net, net_fabric_t *fab, const appgw_params_t *p, char *err,
                   size_t errlen)
{
    if (p->instances < 1 || !p->n_members || !p->frontend) {
        snprintf(err, errlen, "needs at least one instance, one backend member and a frontend");
        return NULL;
    }
    appgw_t *g = lb_calloc(1, sizeof *g);
    g->net = net;
    g->fab = fab;
    g->p = *p;
    g->name = lb_strdup(p->name);
    g->p.name = g->name;
    g->members = lb_malloc(p->n_members * sizeof *g->members);
    memcpy(g->members, p->members, p->n_members * sizeof *g->members);
    g->p.members = g->members;
    g->backend_host = p->backend_host && *p->backend_host ? lb_strdup(p->backend_host) : NULL;
    g->p.backend_host = g->backend_host;
    tls_client_cfg_default(&g->tls);
    g->tls.max_version = 12;
    g->tls.verify = true;
    g->tls.roots = p->trusted_roots;
    g->tls.n_roots = p->n_trusted_roots;
    g->tls.sni = g->backend_host;
    g->tls.verify_name = g->backend_host;
    if (net_fabric_vip(fab, p->frontend, g->name, frontend_cb, g)) {
        snprintf(err, errlen, "frontend address is already in use in the vnet");
        appgw_free(g);
        return NULL;
    }
    health_params_t hp;
    health_params_preset(&hp, HEALTH_VENDOR_APPGW, HEALTH_HTTP);
    hp.path = p->probe_path ? p->probe_path : APPGW_DEFAULT_PROBE_PATH;
    hp.host = p->probe_host ? p->probe_host : APPGW_DEFAULT_PROBE_HOST;
    if (p->probe_interval) hp.interval = p->probe_interval;
    if (p->probe_timeout) hp.timeout = p->probe_timeout;
    if (p->probe_unhealthy_threshold) hp.unhealthy_threshold = p->probe_unhealthy_threshold;
    if (p->warm_start) hp.initial = HEALTH_UP;
    if (p->backend_https) {
        hp.tls = true;
        hp.tls_cfg = g->tls;
        /* probe SNI: custom probe host > settings host name > pool FQDN (ours are IPs) */
        const char *sni = p->probe_host ? p->probe_host : g->backend_host;
        hp.tls_cfg.sni = sni && !tls_is_ip_literal(sni) ? sni : NULL;
        hp.tls_cfg.verify_name = hp.tls_cfg.sni;
    }
    if (p->probe_match && health_matcher_parse(&hp.matcher, p->probe_match)) {
        snprintf(err, errlen, "probe match '%s': expected statuses like 200-399", p->probe_match);
        appgw_free(g);
        return NULL;
    }
    char perr[200];
    if (health_params_check(&hp, perr, sizeof perr)) {
        snprintf(err, errlen, "probe: %s", perr);
        appgw_free(g);
        return NULL;
    }
    for (int i = 0; i < p->instances; i++) {
        instance_t *in = lb_calloc(1, sizeof *in);
        in->g = g;
        in->idx = (size_t)i;
        appgw_instance_name(g->name, i, in->name, sizeof in->name);
        lb_vec_push(&g->inst, in);
        uint32_t addr;
        if (net_node_find(net, in->name) || net_fabric_alloc(fab, p->subnet, p->plen, &addr)) {
            char a[16];
            if (net_node_find(net, in->name))
                snprintf(err, errlen, "node name '%s' is already taken", in->name);
            else
                snprintf(err, errlen, "subnet %s/%d has no free address left for instance %d",
                         lb_ip_str(p->subnet, a), p->plen, i);
            appgw_free(g);
            return NULL;
        }
        in->node = net_node_add(net, in->name);
        in->nic = net_iface_add(in->node, "eth0", addr, p->plen);
        net_fabric_attach(fab, in->nic);
        net_route_add(in->node, 0, 0, p->subnet + 1, in->nic);
        net_node_addr_add(in->node, p->frontend);   /* the frontend reaches it unchanged */
        int rc = 0;
        in->hc = health_new(in->node, in->name, &hp, p->metrics, &rc);
        health_set_callback(in->hc, health_cb, in);
        for (size_t m = 0; m < p->n_members; m++) {
            char label[32];
            lb_ip_str(p->members[m], label);
            health_target_add(in->hc, p->members[m], p->backend_port, label);
        }
        l7proxy_opts_t o;
        l7proxy_opts_init(&o);
        o.name = in->name;
        l7_listener_t li = {p->listener_port, "http", NULL};
        o.listeners = &li;
        o.n_listeners = 1;
        o.upstream.keepalive = true;
        o.upstream.connect_timeout = p->request_timeout;
        o.upstream.response_timeout = p->request_timeout;
        o.upstream.src = in->nic->addr;
        if (p->backend_https) {
            o.upstream.tls = &g->tls;
            o.upstream.tls_sni_from_host = !g->backend_host;
        }
        o.fail_map = appgw_fail_map;
        o.max_retries = APPGW_RETRIES;
        o.xff = true;
        o.xff_port = true;
        o.xfp = true;
        o.metrics = p->metrics;
        o.flow_link = p->explain ? flow_link : NULL;
        o.flow_link_data = p->explain;
        l7_vendor_t v = {route, upstream_end, NULL, respond, in};
        in->px = l7proxy_new(in->node, &o, &v, &rc);
        if (!in->px) {
            snprintf(err, errlen, "instance %s: %s", in->name, lb_strerror(rc));
            appgw_free(g);
            return NULL;
        }
    }
    return g;
}

void appgw_free(appgw_t *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->inst.n; i++) {
        l7proxy_free(g->inst.v[i]->px);
        health_free(g->inst.v[i]->hc);
        lb_free(g->inst.v[i]);
    }
    lb_vec_free(&g->inst);
    lb_free(g->members);
    lb_free(g->backend_host);
    lb_free(g->name);
    lb_free(g);
}

size_t appgw_instance_count(const appgw_t *g) { return g->inst.n; }
net_node_t *appgw_instance_node(const appgw_t *g, size_t i) { return g->inst.v[i]->node; }
size_t appgw_healthy_members(const appgw_t *g, size_t i) { return health_count_healthy(g->inst.v[i]->hc); }
const appgw_params_t *appgw_params(const appgw_t *g) { return &g->p; }
health_t *appgw_instance_health(const appgw_t *g, size_t i) { return g->inst.v[i]->hc; }
uint32_t appgw_instance_addr(const appgw_t *g, size_t i) { return g->inst.v[i]->nic->addr; }

/* ---- the "azure-app-gateway" element ---- */

static const elem_param_t probe_params[] = {
    {"path", P_STR, "", "custom probe path (empty: the default probe, GET /)", NULL, NULL},
    {"host", P_STR, "", "Host header (empty: 127.0.0.1, as the default probe)", NULL, NULL},
    {"interval", P_DURATION, "30s", "between probes", NULL, NULL},
    {"timeout", P_DURATION, "30s", "probe timeout", NULL, NULL},
    {"unhealthy-threshold", P_INT, "3", "consecutive failures to mark a member unhealthy", NULL, NULL},
    {"match", P_STR, APPGW_PROBE_MATCH_DEFAULT, "healthy statuses", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const char *const backend_protos[] = {"http", "https", NULL};

static const elem_param_t appgw_elem_params[] = {
    {"type", P_STR, NULL, "azure-app-gateway", NULL, NULL},
    {"vnet", P_STR, NULL, "the vnet element it is deployed in", NULL, NULL},
    {"frontend-ip", P_ADDR, "20.50.0.10", "frontend IP (clients: `to: <this element>`)", NULL, NULL},
    {"subnet", P_CIDR, "10.225.0.0/24", "the gateway's subnet (instances at .4, .5, ...)", NULL, NULL},
    {"instances", P_INT, "2", "instances (each probes independently)", NULL, NULL},
    {"port", P_INT, "80", "listener port (HTTP)", NULL, NULL},
    {"backends", P_STRLIST, NULL, "backend pool: IPv4 addresses or elements with a frontend "
     "(e.g. an azure-internal-lb)", NULL, NULL},
    {"backend-port", P_INT, "80", "backend settings port", NULL, NULL},
    {"backend-protocol", P_ENUM, "http", "backend settings protocol (https: end-to-end TLS, "
     "TLS 1.2, certificate checked)", NULL, backend_protos},
    {"backend-host-name", P_STR, "", "backend settings host name override: the SNI and the "
     "name the backend certificate must match (empty: none)", NULL, NULL},
    {"trusted-root-certificates", P_STRLIST, "", "backend settings trusted root "
     "certificates: tls-certificate elements defined before this gateway", NULL, NULL},
    {"request-timeout", P_DURATION, "20s", "backend settings request timeout", NULL, NULL},
    {"probe", P_OBJ, "", "custom health probe (absent: the default probe)", probe_params, NULL},
    {"warm-start", P_BOOL, "true", "the gateway was running before t=0 with its members "
     "healthy; false: a new gateway, members get traffic after their first passing probe",
     NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

typedef struct appgw_elem { appgw_t *g; uint32_t frontend; const tls_cert_t **roots; } appgw_elem_t;

static void appgw_elem_free(void *obj)
{
    appgw_elem_t *e = obj;
    appgw_free(e->g);
    lb_free(e->roots);
    lb_free(e);
}

static int appgw_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *vnet = elem_get(cfg, "vnet");
    net_fabric_t *fab = build_get_ref(ctx, vnet, "fabric", "azure-app-gateway", name);
    if (!fab) return LB_EINVAL;
    appgw_params_t p;
    appgw_params_default(&p);
    p.name = name;
    p.frontend = elem_get(cfg, "frontend-ip")->u.addr;
    const elem_val_t *sub = elem_get(cfg, "subnet");
    p.subnet = sub->u.cidr.addr & lb_prefix_mask(sub->u.cidr.plen);
    p.plen = sub->u.cidr.plen;
    p.instances = (int)elem_int(cfg, "instances");
    p.listener_port = (uint16_t)elem_int(cfg, "port");
    char what[300];
    snprintf(what, sizeof what, "azure-app-gateway '%s': frontend-ip", name);
    if (build_check_addr(ctx, elem_get(cfg, "frontend-ip")->pos, what, fab, p.frontend, 32))
        return LB_EINVAL;
    for (int i = 0; i < p.instances && i < APPGW_MAX_INSTANCES; i++) {
        char nn[128];
        appgw_instance_name(name, i, nn, sizeof nn);
        snprintf(what, sizeof what, "azure-app-gateway '%s' instance %d", name, i);
        if (build_check_name(ctx, cfg->pos, what, nn)) return LB_EINVAL;
    }
    p.backend_port = (uint16_t)elem_int(cfg, "backend-port");
    p.request_timeout = elem_get(cfg, "request-timeout")->u.i;
    if (p.instances < 1 || p.instances > APPGW_MAX_INSTANCES)
        return build_error(ctx, elem_get(cfg, "instances")->pos, "instances %d: expected 1 to "
                           "%d (the v2 maximum)", p.instances, APPGW_MAX_INSTANCES);
    const elem_val_t *be = elem_get(cfg, "backends");
    LB_VEC(uint32_t) members = {0};
    for (size_t i = 0; i < be->u.strs.n; i++) {
        uint32_t a[16];
        size_t k = build_addrs(ctx, be->u.strs.v[i], a, 16);
        for (size_t j = 0; j < k && j < 16; j++) lb_vec_push(&members, a[j]);
        if (!k) {
            lb_vec_free(&members);
            return build_error(ctx, be->u.strs.pos[i], "backend '%s': neither an IPv4 address "
                               "nor an element with a frontend defined before this gateway",
                               be->u.strs.v[i]);
        }
    }
    p.members = members.v;
    p.n_members = members.n;
    const elem_val_t *pr = elem_get(cfg, "probe");
    if (pr->set && pr->u.objs.n) {
        const elem_cfg_t *pc = pr->u.objs.v[0];
        const char *path = elem_str(pc, "path"), *host = elem_str(pc, "host");
        p.probe_path = path && *path ? path : NULL;
        p.probe_host = host && *host ? host : NULL;
        p.probe_interval = elem_get(pc, "interval")->u.i;
        p.probe_timeout = elem_get(pc, "timeout")->u.i;
        p.probe_unhealthy_threshold = (int)elem_int(pc, "unhealthy-threshold");
        p.probe_match = elem_str(pc, "match");
    }
    p.warm_start = elem_bool(cfg, "warm-start");
    p.backend_https = strcmp(elem_str(cfg, "backend-protocol"), "https") == 0;
    const char *bh = elem_str(cfg, "backend-host-name");
    p.backend_host = bh && *bh ? bh : NULL;
    const elem_val_t *tr = elem_get(cfg, "trusted-root-certificates");
    LB_VEC(const tls_cert_t *) roots = {0};
    for (size_t i = 0; i < tr->u.strs.n; i++) {
        const tls_cert_t *rc = build_get(ctx, tr->u.strs.v[i], "tls-cert");
        if (!rc) {
            lb_vec_free(&members);
            lb_vec_free(&roots);
            return build_error(ctx, tr->u.strs.pos[i], "trusted root '%s': not a "
                               "tls-certificate element defined before this gateway",
                               tr->u.strs.v[i]);
        }
        lb_vec_push(&roots, rc);
    }
    p.trusted_roots = roots.v;
    p.n_trusted_roots = roots.n;
    p.metrics = build_metrics(ctx);
    p.explain = build_explain(ctx);
    char err[256];
    appgw_t *g = appgw_new(build_net(ctx), fab, &p, err, sizeof err);
    lb_vec_free(&members);
    if (!g) {
        lb_vec_free(&roots);
        return build_error(ctx, cfg->pos, "azure-app-gateway '%s': %s", name, err);
    }
    appgw_elem_t *e = lb_calloc(1, sizeof *e);
    e->g = g;
    e->roots = roots.v;             /* the gateway borrows the array */
    e->frontend = p.frontend;
    build_on_free(ctx, appgw_elem_free, e);
    build_put_addrs(ctx, name, &e->frontend, 1);
    build_put(ctx, name, "appgw", g);
    return 0;
}

static const elem_type_t appgw_type = {
    "azure-app-gateway", ELEM_CLOUD,
    "Azure Application Gateway v2: L7 proxy instances with their own probes of the backend "
    "pool; 502 when no member is healthy, 504 after a timed-out request's retry",
    appgw_elem_params, appgw_build,
};

void appgw_register(void) { elem_register(&appgw_type); }

/* describe.c -- `sim --describe`: one built variant as JSON (include/realchain.h, format in
 * docs/DESCRIBE.md). Three layers: the elements as configured (every parameter, defaults
 * applied), the network as built (nodes, interfaces, routes, fabrics, links), and what the
 * models made of it (clusters, load balancers, traffic) read back through the models'
 * own accessors -- so a consumer sees the parameters the simulation uses, not a second
 * reading of the YAML. Output depends only on the scenario, variant and seed. */
#include <stdio.h>
#include <string.h>
#include <cJSON.h>
#include "realchain.h"
#include "aws_nlb.h"
#include "azure_lb.h"
#include "cluster.h"
#include "health.h"
#include "istio_gateway.h"
#include "kube_proxy.h"
#include "realchain_int.h"

static double secs(sim_time_t t) { return (double)t / SIM_S; }

static void add_ip(cJSON *o, const char *key, uint32_t a)
{
    char b[16];
    if (a) cJSON_AddStringToObject(o, key, lb_ip_str(a, b));
    else cJSON_AddNullToObject(o, key);
}

static void add_cidr(cJSON *o, const char *key, uint32_t a, int plen)
{
    char b[16], s[24];
    snprintf(s, sizeof s, "%s/%d", lb_ip_str(a, b), plen);
    cJSON_AddStringToObject(o, key, s);
}

static cJSON *ip_item(uint32_t a)
{
    char b[16];
    return cJSON_CreateString(lb_ip_str(a, b));
}

/* ---- element configurations ------------------------------------------------------------- */

static cJSON *cfg_json(const elem_cfg_t *c);

static cJSON *val_json(const elem_param_t *p, const elem_val_t *v)
{
    char b[64];
    switch (p->kind) {
    case P_STR:
    case P_ENUM: return cJSON_CreateString(v->u.s ? v->u.s : "");
    case P_INT:
    case P_SIZE:
    case P_BANDWIDTH: return cJSON_CreateNumber((double)v->u.i);
    case P_DURATION: return cJSON_CreateNumber(secs(v->u.i));
    case P_FLOAT:
    case P_RATE:
    case P_RATIO: return cJSON_CreateNumber(v->u.f);
    case P_BOOL: return cJSON_CreateBool(v->u.b);
    case P_DIST: return cJSON_CreateString(dist_str(&v->u.dist, b, sizeof b));
    case P_ADDR: return v->u.addr ? ip_item(v->u.addr) : cJSON_CreateNull();
    case P_CIDR: {
        char ip[16];
        snprintf(b, sizeof b, "%s/%d", lb_ip_str(v->u.cidr.addr, ip), v->u.cidr.plen);
        return cJSON_CreateString(b);
    }
    case P_STRLIST: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < v->u.strs.n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(v->u.strs.v[i]));
        return a;
    }
    case P_OBJ:
        return v->u.objs.n ? cfg_json(v->u.objs.v[0]) : cJSON_CreateNull();
    case P_OBJLIST: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < v->u.objs.n; i++) cJSON_AddItemToArray(a, cfg_json(v->u.objs.v[i]));
        return a;
    }
    case P_ANY: return cJSON_CreateString("(yaml)");   /* manifests: described by the model */
    }
    return cJSON_CreateNull();
}

static cJSON *cfg_json(const elem_cfg_t *c)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < c->n; i++)
        cJSON_AddItemToObject(o, c->params[i].name, val_json(&c->params[i], &c->vals[i]));
    return o;
}

/* The value of parameter `name` of c, or NULL when its table has none. */
static const elem_val_t *cfg_val(const elem_cfg_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->params[i].name, name) == 0) return &c->vals[i];
    return NULL;
}

/* ---- node roles: which element owns which net node --------------------------------------- */

typedef struct role { const net_node_t *node; const char *role, *element; } role_t;
typedef LB_VEC(role_t) roles_t;

static void role_set(roles_t *rs, const net_node_t *n, const char *role, const char *element)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].node == n) return;           /* the first owner wins */
    role_t r = {n, role, element};
    lb_vec_push(rs, r);
}

static const role_t *role_of(const roles_t *rs, const net_node_t *n)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].node == n) return &rs->v[i];
    return NULL;
}

void *realchain_object(scn_run_t *r, const char *name, const char *kind)
{
    const char *nm;
    void *obj;
    for (size_t i = 0; (obj = scn_run_object(r, kind, i, &nm)); i++)
        if (strcmp(nm, name) == 0) return obj;
    return NULL;
}

/* ---- health checks ---------------------------------------------------------------------- */

cJSON *realchain_health_json(const health_t *hc)
{
    const health_params_t *p = health_params(hc);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", health_name(hc));
    cJSON_AddStringToObject(o, "protocol", p->proto == HEALTH_HTTP ? "http" : "tcp");
    if (p->proto == HEALTH_HTTP) {
        cJSON_AddStringToObject(o, "path", p->path ? p->path : "/");
        if (p->host && *p->host) cJSON_AddStringToObject(o, "host", p->host);
        else cJSON_AddNullToObject(o, "host");
        if (p->user_agent) cJSON_AddStringToObject(o, "user_agent", p->user_agent);
        char m[128];
        realchain_matcher_str(&p->matcher, m, sizeof m);
        cJSON_AddStringToObject(o, "statuses", m);
    }
    cJSON_AddNumberToObject(o, "interval_s", secs(p->interval));
    cJSON_AddNumberToObject(o, "timeout_s", secs(p->timeout));
    cJSON_AddNumberToObject(o, "healthy_threshold", p->healthy_threshold);
    cJSON_AddNumberToObject(o, "unhealthy_threshold", p->unhealthy_threshold);
    cJSON_AddStringToObject(o, "initial", health_state_name(p->initial));
    cJSON_AddNumberToObject(o, "initial_passes",
                            p->initial_passes ? p->initial_passes : p->healthy_threshold);
    cJSON_AddBoolToObject(o, "fail_fast", p->fail_fast);
    cJSON_AddNumberToObject(o, "first_delay_s", secs(p->first_delay));
    if (p->src) add_ip(o, "source", p->src);
    cJSON *t = cJSON_AddArrayToObject(o, "targets");
    for (size_t i = 0; i < health_target_count(hc); i++)
        cJSON_AddItemToArray(t, cJSON_CreateString(health_target_label(hc, i)));
    return o;
}

const char *realchain_matcher_str(const health_matcher_t *m, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < m->n; i++) {
        size_t len = strlen(buf);
        if (m->r[i].lo == m->r[i].hi)
            snprintf(buf + len, n - len, "%s%d", i ? "," : "", m->r[i].lo);
        else
            snprintf(buf + len, n - len, "%s%d-%d", i ? "," : "", m->r[i].lo, m->r[i].hi);
    }
    return buf;
}

/* ---- the cluster ------------------------------------------------------------------------ */

static const char *svc_type(k8s_svc_type_t t)
{
    return t == K8S_SVC_LOAD_BALANCER ? "LoadBalancer" : t == K8S_SVC_NODE_PORT ? "NodePort"
                                                                                : "ClusterIP";
}

static bool svc_selects(const k8s_service_t *s, const cluster_pod_t *pod)
{
    return s->selector.n && strcmp(s->meta.ns, pod->ns) == 0 &&
           k8s_labels_match(&s->selector, &pod->dep->pod_labels);
}

static cJSON *kvs_json(const k8s_kvs_t *kv)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < kv->n; i++) cJSON_AddStringToObject(o, kv->v[i].key, kv->v[i].value);
    return o;
}

static cJSON *service_json(cluster_t *c, const k8s_service_t *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "namespace", s->meta.ns);
    cJSON_AddStringToObject(o, "name", s->meta.name);
    cJSON_AddStringToObject(o, "type", svc_type(s->type));
    add_ip(o, "cluster_ip", s->cluster_ip);
    add_ip(o, "load_balancer_ip", s->lb_ip);
    cJSON_AddStringToObject(o, "external_traffic_policy", s->etp == K8S_ETP_LOCAL ? "Local"
                                                                                   : "Cluster");
    if (s->health_check_node_port)
        cJSON_AddNumberToObject(o, "health_check_node_port", s->health_check_node_port);
    else
        cJSON_AddNullToObject(o, "health_check_node_port");
    cJSON_AddItemToObject(o, "selector", kvs_json(&s->selector));
    cJSON_AddItemToObject(o, "annotations", kvs_json(&s->meta.annotations));
    cJSON *ports = cJSON_AddArrayToObject(o, "ports");
    for (size_t i = 0; i < s->ports.n; i++) {
        const k8s_service_port_t *sp = &s->ports.v[i];
        cJSON *p = cJSON_CreateObject();
        if (sp->name) cJSON_AddStringToObject(p, "name", sp->name);
        else cJSON_AddNullToObject(p, "name");
        cJSON_AddNumberToObject(p, "port", sp->port);
        cJSON_AddStringToObject(p, "protocol", sp->protocol ? sp->protocol : "TCP");
        if (sp->app_protocol) cJSON_AddStringToObject(p, "app_protocol", sp->app_protocol);
        else cJSON_AddNullToObject(p, "app_protocol");
        if (sp->target_port.name) cJSON_AddStringToObject(p, "target_port", sp->target_port.name);
        else cJSON_AddNumberToObject(p, "target_port", sp->target_port.number ? sp->target_port.number
                                                                              : sp->port);
        if (sp->node_port) cJSON_AddNumberToObject(p, "node_port", sp->node_port);
        else cJSON_AddNullToObject(p, "node_port");
        cJSON *eps = cJSON_AddArrayToObject(p, "endpoints");
        for (size_t k = 0; k < cluster_pod_count(c); k++) {
            cluster_pod_t *pod = cluster_pod_at(c, k);
            if (!svc_selects(s, pod)) continue;
            int tp = cluster_pod_target_port(pod, sp);
            if (!tp) continue;
            cJSON *e = cJSON_CreateObject();
            add_ip(e, "ip", pod->ip);
            cJSON_AddNumberToObject(e, "port", tp);
            cJSON_AddStringToObject(e, "pod", pod->name);
            cJSON_AddStringToObject(e, "node", pod->host->node->name);
            cJSON_AddBoolToObject(e, "ready", pod->ready);
            cJSON_AddItemToArray(eps, e);
        }
        cJSON_AddItemToArray(ports, p);
    }
    return o;
}

static cJSON *cluster_json(const char *name, cluster_t *c, roles_t *roles)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "kubernetes_version", cluster_version(c));
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    for (size_t i = 0; i < cluster_node_count(c); i++) {
        cluster_node_t *n = cluster_node_at(c, i);
        role_set(roles, n->node, "k8s-node", name);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", n->node->name);
        cJSON_AddStringToObject(j, "pool", n->pool);
        if (n->zone) cJSON_AddStringToObject(j, "zone", n->zone);
        else cJSON_AddNullToObject(j, "zone");
        add_ip(j, "address", n->nic->addr);
        add_cidr(j, "pod_cidr", n->pod_base, 24);
        cJSON_AddItemToObject(j, "labels", kvs_json(&n->labels));
        cJSON_AddItemToArray(nodes, j);
    }
    cJSON *pods = cJSON_AddArrayToObject(o, "pods");
    for (size_t i = 0; i < cluster_pod_count(c); i++) {
        cluster_pod_t *pod = cluster_pod_at(c, i);
        role_set(roles, pod->node, "pod", name);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", pod->name);
        cJSON_AddStringToObject(j, "node_name", pod->node->name);   /* its net node */
        cJSON_AddStringToObject(j, "namespace", pod->ns);
        cJSON_AddStringToObject(j, "deployment", pod->dep->meta.name);
        cJSON_AddStringToObject(j, "node", pod->host->node->name);
        add_ip(j, "ip", pod->ip);
        cJSON_AddBoolToObject(j, "ready", pod->ready);
        cJSON_AddStringToObject(j, "app", pod->app_kind == CLUSTER_APP_NGINX ? "nginx"
                                : pod->app_kind == CLUSTER_APP_ISTIO ? "istio-gateway" : "none");
        cJSON_AddItemToObject(j, "labels", kvs_json(&pod->dep->pod_labels));
        cJSON_AddItemToArray(pods, j);
    }
    /* every Service the cluster runs (the manifests' and those Istio generated) */
    cJSON *svcs = cJSON_AddArrayToObject(o, "services");
    for (size_t i = 0; i < cluster_service_count(c); i++)
        cJSON_AddItemToArray(svcs, service_json(c, cluster_service_at(c, i)));
    /* kube-proxy's healthCheckNodePort servers, per node */
    cJSON *hc = cJSON_AddArrayToObject(o, "health_check_node_ports");
    for (size_t i = 0; i < cluster_service_count(c); i++) {
        const k8s_service_t *s = cluster_service_at(c, i);
        if (s->etp != K8S_ETP_LOCAL || !s->health_check_node_port) continue;
        for (size_t k = 0; k < cluster_node_count(c); k++) {
            cluster_node_t *n = cluster_node_at(c, k);
            int le = kp_health_local_endpoints(n->kp, s->meta.ns, s->meta.name);
            if (le < 0) continue;
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "node", n->node->name);
            cJSON_AddStringToObject(j, "service", s->meta.name);
            cJSON_AddStringToObject(j, "namespace", s->meta.ns);
            cJSON_AddNumberToObject(j, "port", s->health_check_node_port);
            cJSON_AddNumberToObject(j, "local_endpoints", le);
            cJSON_AddItemToArray(hc, j);
        }
    }
    return o;
}

/* ---- load balancers --------------------------------------------------------------------- */

static const char *azure_proto(azure_probe_proto_t p)
{
    switch (p) {
    case AZURE_PROBE_TCP: return "tcp";
    case AZURE_PROBE_HTTP: return "http";
    case AZURE_PROBE_HTTPS: return "https";
    default: return "none";
    }
}

static cJSON *azure_lb_json(const char *name, azure_lb_t *lb, const elem_cfg_t *cfg,
                            roles_t *roles)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "type", "azure-internal-lb");
    cJSON_AddStringToObject(o, "layer", "l4");
    add_ip(o, "frontend", azure_lb_frontend(lb));
    net_node_t *pn = azure_lb_probe_node(lb);
    role_set(roles, pn, "l4-probe", name);
    cJSON_AddStringToObject(o, "probe_node", pn->name);
    add_ip(o, "probe_source", net_node_addr(pn));
    const elem_val_t *fo = cfg_val(cfg, "fail-open");
    cJSON_AddStringToObject(o, "no_healthy_backend", fo && fo->u.b ? "all" : "drop");
    cJSON_AddStringToObject(o, "distribution", "5-tuple hash");
    cJSON_AddBoolToObject(o, "direct_server_return", true);
    cJSON *be = cJSON_AddArrayToObject(o, "backends");
    for (size_t i = 0; i < azure_lb_backend_count(lb); i++) {
        net_iface_t *ifc = azure_lb_backend_iface(lb, i);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "node", ifc->node->name);
        cJSON_AddStringToObject(j, "label", azure_lb_backend_label(lb, i));
        add_ip(j, "address", ifc->addr);
        cJSON_AddItemToArray(be, j);
    }
    cJSON *rules = cJSON_AddArrayToObject(o, "rules");
    for (size_t i = 0; i < azure_lb_rule_count(lb); i++) {
        const azure_lb_rule_t *r = azure_lb_rule(lb, i);
        cJSON *j = cJSON_CreateObject();
        if (r->name) cJSON_AddStringToObject(j, "name", r->name);
        else cJSON_AddNullToObject(j, "name");
        cJSON_AddStringToObject(j, "protocol", r->protocol == NET_PROTO_UDP ? "udp" : "tcp");
        cJSON_AddNumberToObject(j, "frontend_port", r->frontend_port);
        cJSON_AddNumberToObject(j, "backend_port", r->backend_port);
        cJSON_AddBoolToObject(j, "floating_ip", r->floating_ip);
        cJSON_AddNumberToObject(j, "idle_timeout_s", secs(r->idle_timeout ? r->idle_timeout
                                                          : AZURE_LB_IDLE_TIMEOUT_DEFAULT));
        cJSON_AddBoolToObject(j, "tcp_reset", r->tcp_reset);
        cJSON *pj = cJSON_AddObjectToObject(j, "probe");
        cJSON_AddStringToObject(pj, "protocol", azure_proto(r->probe.protocol));
        if (r->probe.protocol != AZURE_PROBE_NONE) {
            cJSON_AddNumberToObject(pj, "port", r->probe.port);
            if (r->probe.protocol != AZURE_PROBE_TCP)
                cJSON_AddStringToObject(pj, "path", r->probe.path ? r->probe.path : "/");
        }
        health_t *hc = azure_lb_rule_health(lb, i);
        if (hc) cJSON_AddItemToObject(pj, "check", realchain_health_json(hc));
        cJSON_AddItemToArray(rules, j);
    }
    return o;
}

static cJSON *l7_json(const realchain_l7_t *l, roles_t *roles)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", l->name);
    cJSON_AddStringToObject(o, "type", l->type);
    cJSON_AddStringToObject(o, "layer", "l7");
    add_ip(o, "frontend", l->frontend);
    cJSON_AddNumberToObject(o, "listener_port", l->port);
    if (l->https_port) cJSON_AddNumberToObject(o, "https_port", l->https_port);
    if (l->http_action) cJSON_AddStringToObject(o, "http_action", l->http_action);
    cJSON *inst = cJSON_AddArrayToObject(o, "instances");
    for (size_t i = 0; i < l->n_instances; i++) {
        role_set(roles, l->instance[i], "l7-instance", l->name);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "node", l->instance[i]->name);
        add_ip(j, "address", l->instance_addr[i]);
        cJSON_AddItemToArray(inst, j);
    }
    cJSON *m = cJSON_AddArrayToObject(o, "members");
    for (size_t i = 0; i < l->n_members; i++) cJSON_AddItemToArray(m, ip_item(l->members[i]));
    cJSON_AddNumberToObject(o, "backend_port", l->member_port);
    cJSON_AddNumberToObject(o, "connect_timeout_s", secs(l->connect_timeout));
    cJSON_AddNumberToObject(o, "request_timeout_s", secs(l->response_timeout));
    cJSON_AddNumberToObject(o, "retries", l->retries);
    cJSON_AddBoolToObject(o, "fail_open", l->fail_open);
    cJSON_AddNumberToObject(o, "no_healthy_status", l->no_healthy_status);
    cJSON_AddNumberToObject(o, "timeout_status", l->timeout_status);
    cJSON_AddNumberToObject(o, "connect_error_status", l->refused_status);
    cJSON_AddStringToObject(o, "balance", "round-robin");
    if (l->probe) cJSON_AddItemToObject(o, "probe", realchain_health_json(l->probe));
    return o;
}

static cJSON *nlb_json(const char *name, aws_nlb_t *nlb, roles_t *roles)
{
    const aws_nlb_params_t *p = aws_nlb_params(nlb);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "type", "aws-nlb");
    cJSON_AddStringToObject(o, "layer", "l4");
    cJSON_AddStringToObject(o, "targets_type", "ip");
    cJSON_AddBoolToObject(o, "source_nat", !p->preserve_client_ip);
    cJSON_AddBoolToObject(o, "cross_zone", p->cross_zone);
    cJSON_AddStringToObject(o, "no_healthy_backend", "all");
    cJSON_AddStringToObject(o, "distribution", "5-tuple hash");
    cJSON_AddNumberToObject(o, "idle_timeout_s", secs(p->idle_timeout));
    cJSON *zones = cJSON_AddArrayToObject(o, "zones");
    for (size_t z = 0; z < aws_nlb_zone_count(nlb); z++) {
        net_node_t *n = aws_nlb_zone_node(nlb, z);
        role_set(roles, n, "l4-node", name);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "zone", aws_nlb_zone_name(nlb, z));
        cJSON_AddStringToObject(j, "node", n->name);
        add_ip(j, "address", aws_nlb_zone_addr(nlb, z));
        cJSON_AddItemToArray(zones, j);
    }
    cJSON *ls = cJSON_AddArrayToObject(o, "listeners");
    for (size_t l = 0; l < aws_nlb_listener_count(nlb); l++) {
        const aws_nlb_listener_t *li = aws_nlb_listener(nlb, l);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "port", li->port);
        cJSON_AddNumberToObject(j, "target_port", li->target_port);
        cJSON *checks = cJSON_AddArrayToObject(j, "checks");
        for (size_t z = 0; z < aws_nlb_zone_count(nlb); z++) {
            cJSON *c = realchain_health_json(aws_nlb_health(nlb, l, z));
            cJSON_AddStringToObject(c, "zone", aws_nlb_zone_name(nlb, z));
            cJSON_AddItemToArray(checks, c);
        }
        cJSON_AddItemToArray(ls, j);
    }
    cJSON *ts = cJSON_AddArrayToObject(o, "targets");
    for (size_t i = 0; i < aws_nlb_target_count(nlb); i++) {
        cJSON *j = cJSON_CreateObject();
        add_ip(j, "address", aws_nlb_target_addr(nlb, i));
        cJSON_AddStringToObject(j, "zone", aws_nlb_zone_name(nlb, aws_nlb_target_zone(nlb, i)));
        cJSON_AddStringToObject(j, "label", aws_nlb_target_label(nlb, i));
        cJSON_AddItemToArray(ts, j);
    }
    return o;
}

/* ---- the network ------------------------------------------------------------------------- */

static cJSON *node_json(const net_node_t *n, const roles_t *roles)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", n->name);
    const role_t *r = role_of(roles, n);
    cJSON_AddStringToObject(o, "role", r ? r->role : "other");
    if (r && r->element) cJSON_AddStringToObject(o, "element", r->element);
    else cJSON_AddNullToObject(o, "element");
    cJSON_AddBoolToObject(o, "forwarding", n->forwarding);
    cJSON *ifs = cJSON_AddArrayToObject(o, "interfaces");
    for (size_t i = 0; i < n->ifaces.n; i++) {
        const net_iface_t *ifc = n->ifaces.v[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", ifc->name);
        add_ip(j, "address", ifc->addr);
        cJSON_AddNumberToObject(j, "prefix_len", ifc->plen);
        if (ifc->fabric) {
            cJSON_AddStringToObject(j, "fabric", net_fabric_name(ifc->fabric));
        } else if (ifc->link) {
            const net_iface_t *peer = net_link_peer(ifc);
            cJSON *lk = cJSON_AddObjectToObject(j, "link");
            cJSON_AddStringToObject(lk, "node", peer->node->name);
            cJSON_AddStringToObject(lk, "iface", peer->name);
        }
        cJSON_AddItemToArray(ifs, j);
    }
    /* addresses beyond the interfaces' own (frontends held, probe sources) */
    cJSON *extra = cJSON_AddArrayToObject(o, "addresses");
    for (size_t i = 0; i < n->local_addrs.n; i++) {
        bool on_iface = false;
        for (size_t k = 0; k < n->ifaces.n; k++) on_iface |= n->ifaces.v[k]->addr == n->local_addrs.v[i];
        if (!on_iface) cJSON_AddItemToArray(extra, ip_item(n->local_addrs.v[i]));
    }
    cJSON *routes = cJSON_AddArrayToObject(o, "routes");
    for (size_t i = 0; i < n->routes.n; i++) {
        const net_route_t *rt = &n->routes.v[i];
        cJSON *j = cJSON_CreateObject();
        add_cidr(j, "prefix", rt->prefix, rt->plen);
        add_ip(j, "via", rt->gw);
        cJSON_AddStringToObject(j, "dev", rt->ifc ? rt->ifc->name : "");
        if (rt->type != NET_RT_UNICAST)
            cJSON_AddStringToObject(j, "type", net_route_type_name(rt->type));
        cJSON_AddItemToArray(routes, j);
    }
    return o;
}

/* The load balancer whose frontend (or NLB zone address) addr is. */
static const char *frontend_owner(const cJSON *lbs, uint32_t addr)
{
    char ip[16];
    lb_ip_str(addr, ip);
    const cJSON *lb;
    cJSON_ArrayForEach(lb, lbs) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(lb, "frontend");
        if (cJSON_IsString(f) && strcmp(f->valuestring, ip) == 0)
            return cJSON_GetObjectItemCaseSensitive(lb, "name")->valuestring;
        const cJSON *z;
        cJSON_ArrayForEach(z, cJSON_GetObjectItemCaseSensitive(lb, "zones")) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(z, "address");
            if (cJSON_IsString(a) && strcmp(a->valuestring, ip) == 0)
                return cJSON_GetObjectItemCaseSensitive(lb, "name")->valuestring;
        }
    }
    return NULL;
}

static cJSON *fabric_json(const net_fabric_t *f, const cJSON *lbs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", net_fabric_name(f));
    cJSON *att = cJSON_AddArrayToObject(o, "attached");
    cJSON *vips = cJSON_AddArrayToObject(o, "frontends");
    uint32_t a;
    net_iface_t *ifc;
    for (size_t i = 0; net_fabric_addr_at(f, i, &a, &ifc); i++) {
        cJSON *j = cJSON_CreateObject();
        add_ip(j, "address", a);
        if (ifc) {
            cJSON_AddStringToObject(j, "node", ifc->node->name);
            cJSON_AddStringToObject(j, "iface", ifc->name);
            cJSON_AddItemToArray(att, j);
        } else {
            /* the element whose frontend (or NLB node address) it is */
            const char *owner = frontend_owner(lbs, a);
            if (owner) cJSON_AddStringToObject(j, "element", owner);
            else cJSON_AddNullToObject(j, "element");
            cJSON_AddItemToArray(vips, j);
        }
    }
    /* unnumbered interfaces attached (an NLB node: its address is a frontend) */
    cJSON *routes = cJSON_AddArrayToObject(o, "routes");
    uint32_t pfx;
    int plen;
    for (size_t i = 0; net_fabric_route_at(f, i, &pfx, &plen, &ifc); i++) {
        cJSON *j = cJSON_CreateObject();
        add_cidr(j, "prefix", pfx, plen);
        cJSON_AddStringToObject(j, "node", ifc->node->name);
        cJSON_AddStringToObject(j, "iface", ifc->name);
        add_ip(j, "via", ifc->addr);
        cJSON_AddItemToArray(routes, j);
    }
    return o;
}

/* ---- traffic ------------------------------------------------------------------------------ */

static cJSON *traffic_json(scn_run_t *r, const char *name, const elem_cfg_t *cfg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    const elem_val_t *to = cfg_val(cfg, "to");
    cJSON *t = cJSON_AddArrayToObject(o, "targets");
    if (to && to->u.s) {
        uint32_t a[16];
        size_t n = scn_run_addrs(r, to->u.s, a, 16);
        if (!n) {
            net_node_t *nd = scn_run_node(r, to->u.s);
            if (nd && net_node_addr(nd)) a[n++] = net_node_addr(nd);
            else if (lb_ip_parse(to->u.s, &a[0]) == 0) n = 1;
        }
        for (size_t i = 0; i < n && i < 16; i++) cJSON_AddItemToArray(t, ip_item(a[i]));
        cJSON_AddStringToObject(o, "to", to->u.s);
    }
    const elem_val_t *from = cfg_val(cfg, "from");
    if (from && from->u.s) cJSON_AddStringToObject(o, "from", from->u.s);
    return o;
}

/* ---- the whole description -------------------------------------------------------------- */

static const char *section_name(elem_section_t s)
{
    static const char *const names[] = {"nodes", "apps", "traffic", "cloud"};
    return s < ELEM_KIND_COUNT ? names[s] : "?";
}

int realchain_describe(scn_t *s, scn_run_t *r, FILE *out, char *err, size_t errlen)
{
    roles_t roles = {0};
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "format", REALCHAIN_DESCRIBE_FORMAT);
    cJSON_AddStringToObject(root, "scenario", scn_name(s));
    cJSON_AddStringToObject(root, "file", scn_file(s));
    cJSON_AddStringToObject(root, "variant", scn_run_variant(r));
    char seed_text[24];                 /* exact, as in summary.json (a double is not) */
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)sim_seed(scn_run_sim(r)));
    cJSON_AddRawToObject(root, "seed", seed_text);
    cJSON_AddNumberToObject(root, "duration_s", secs(scn_run_duration(r)));
    cJSON *elems = cJSON_AddArrayToObject(root, "elements");
    cJSON *clusters = cJSON_CreateArray();
    cJSON *lbs = cJSON_CreateArray();
    cJSON *traffic = cJSON_CreateArray();
    net_t *net = scn_run_net(r);
    for (size_t i = 0; i < scn_run_element_count(r); i++) {
        const char *name = scn_run_element_name(r, i);
        const elem_type_t *t = scn_run_element_type(r, i);
        const elem_cfg_t *cfg = scn_run_element_cfg(r, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", name);
        cJSON_AddStringToObject(e, "type", t->name);
        cJSON_AddStringToObject(e, "section", section_name(t->section));
        cJSON_AddItemToObject(e, "config", cfg_json(cfg));
        cJSON_AddItemToArray(elems, e);
        void *obj;
        realchain_l7_t l7;
        if ((obj = realchain_object(r, name, "cluster")))
            cJSON_AddItemToArray(clusters, cluster_json(name, obj, &roles));
        else if ((obj = realchain_object(r, name, "azure-lb")))
            cJSON_AddItemToArray(lbs, azure_lb_json(name, obj, cfg, &roles));
        else if (realchain_l7_read(r, name, &l7))
            cJSON_AddItemToArray(lbs, l7_json(&l7, &roles));
        else if ((obj = realchain_object(r, name, "aws-nlb")))
            cJSON_AddItemToArray(lbs, nlb_json(name, obj, &roles));
        if (t->section == ELEM_TRAFFIC) cJSON_AddItemToArray(traffic, traffic_json(r, name, cfg));
        if (t->section == ELEM_NODE) {        /* hosts and routers: the node, or a group */
            net_node_t *n = scn_run_node(r, name);
            if (n) role_set(&roles, n, t->name, name);
            for (int k = 0; !n && k < 10000; k++) {
                char nm[300];
                snprintf(nm, sizeof nm, "%s%d", name, k);
                net_node_t *m = scn_run_node(r, nm);
                if (!m) break;
                role_set(&roles, m, t->name, name);
            }
        }
    }
    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    for (size_t i = 0; i < net_node_count(net); i++)
        cJSON_AddItemToArray(nodes, node_json(net_node_at(net, i), &roles));
    cJSON *fabs = cJSON_AddArrayToObject(root, "fabrics");
    for (size_t i = 0; i < net_fabric_count(net); i++)
        cJSON_AddItemToArray(fabs, fabric_json(net_fabric_at(net, i), lbs));
    cJSON_AddItemToObject(root, "clusters", clusters);
    cJSON_AddItemToObject(root, "load_balancers", lbs);
    cJSON_AddItemToObject(root, "traffic", traffic);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    lb_vec_free(&roles);
    int rc = 0;
    if (!text || fputs(text, out) == EOF || fputc('\n', out) == EOF || fflush(out)) {
        lb_errf(err, errlen, "cannot write the description");
        rc = LB_EIO;
    }
    free(text);
    return rc;
}

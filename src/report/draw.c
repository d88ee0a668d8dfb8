/* draw.c -- the topology picture (include/draw.h): the built run read through the models'
 * views into a small graph (items, nested groups, edges), the run's marks laid on it, and
 * the graph written as Graphviz DOT (HTML-like labels, rankdir=LR) and as a Mermaid
 * flowchart; the recorder of what a run saw; rendering through `dot` and rsvg-convert.
 *
 * Layout decisions (Graphviz does the placing): groups are clusters -- an L7 load balancer
 * with its instances, an NLB with its zone nodes, a Kubernetes cluster holding one group
 * per (pool, zone) holding one group per node, whose boxes are kube-proxy (when a load
 * balancer sends to the node) and the pods running there. So a packet that kube-proxy
 * sends to a gateway pod on another node is an edge from one node's group to another's. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "draw_int.h"
#include "appgw.h"
#include "aws_alb.h"
#include "aws_nlb.h"
#include "azure_lb.h"
#include "cluster.h"
#include "gateway_api.h"
#include "health.h"
#include "helper.h"
#include "plots.h"

/* ---- text helpers ----------------------------------------------------------------------- */

void dr_strs_add(dr_strs_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *own = lb_malloc((size_t)(n > 0 ? n : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(own, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    va_end(ap);
    lb_vec_push(v, own);
}

void dr_strs_free(dr_strs_t *v)
{
    for (size_t i = 0; i < v->n; i++) lb_free(v->v[i]);
    lb_vec_free(v);
}

const char *dr_time_str(sim_time_t t, char *buf, size_t len)
{
    if (t < SIM_S) snprintf(buf, len, "%.3f ms", (double)t / (double)SIM_MS);
    else snprintf(buf, len, "%.3f s", (double)t / (double)SIM_S);
    return buf;
}

int dr_write_file(const char *dir, const char *name, const char *text, size_t len, char *err,
                  size_t errlen)
{
    return rep_write_atomic(dir, name, text, len, err, errlen);
}

void draw_put_xml(FILE *f, const char *s)
{
    while (s && *s) {
        size_t n = rep_utf8_char(s);
        unsigned char c = (unsigned char)*s;
        if (n == 0) {
            fputs("\xef\xbf\xbd", f);               /* U+FFFD */
            n = 1;
        } else if (n > 1) {
            if (n == 2 && c == 0xc2 && (unsigned char)s[1] < 0xa0) fputc(' ', f);   /* C1 */
            else fwrite(s, 1, n, f);
        } else {
            switch (c) {
            case '&': fputs("&amp;", f); break;
            case '<': fputs("&lt;", f); break;
            case '>': fputs("&gt;", f); break;
            case '"': fputs("&quot;", f); break;
            case '\'': fputs("&#39;", f); break;
            case '\n': case '\t': fputc(c, f); break;
            default: fputc(c < 0x20 || c == 0x7f ? ' ' : c, f);
            }
        }
        s += n;
    }
}

void draw_put_mermaid(FILE *f, const char *s)
{
    while (s && *s) {
        size_t n = rep_utf8_char(s);
        unsigned char c = (unsigned char)*s;
        if (n == 0) {
            fputs("#65533;", f);
            n = 1;
        } else if (n > 1) {
            if (n == 2 && c == 0xc2 && (unsigned char)s[1] < 0xa0) fputc(' ', f);
            else fwrite(s, 1, n, f);
        } else if (c == '-' && s[1] == '>') {   /* "->" reads as an arrow, not as #62; */
            fputs("\u2192", f);
            n = 2;
        } else if (c == '\n') fputs("<br/>", f);
        else if (c < 0x20 || c == 0x7f) fputc(' ', f);
        else if (strchr("\"#;%<>&`", c))       /* a quote ends a label, '#' starts an */
            fprintf(f, "#%u;", c);              /* entity, ';' and '#' end a message, '%' */
        else                                    /* a comment, <>& are HTML */
            fputc(c, f);
        s += n;
    }
}

/* name with every character other than [A-Za-z0-9._-] as '_' (what plots.c does too). */
static void sanitize(const char *name, char *out, size_t len)
{
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < len; p++)
        out[k++] = (char)(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-')
                          ? *p : '_');
    out[k] = '\0';
}

void draw_variant_stem(const scn_t *s, size_t i, char *buf, size_t len)
{
    char mine[128], other[128];
    sanitize(scn_variant_name(s, i), mine, sizeof mine);
    bool clash = false;
    for (size_t j = 0; j < scn_variant_count(s) && !clash; j++) {
        if (j == i) continue;
        sanitize(scn_variant_name(s, j), other, sizeof other);
        clash = strcmp(mine, other) == 0;
    }
    if (clash) snprintf(buf, len, "%s-%zu", mine, i);
    else snprintf(buf, len, "%s", mine);
}

/* ---- the graph -------------------------------------------------------------------------- */

static int item_add(dr_graph_t *g, int kind, int group, const char *title)
{
    dr_item_t it;
    memset(&it, 0, sizeof it);
    it.kind = kind;
    it.group = group;
    it.title = lb_strdup(title);
    lb_vec_push(&g->items, it);
    return (int)g->items.n - 1;
}

static void item_name(dr_graph_t *g, int item, const char *name)
{
    dr_strs_add(&g->items.v[item].names, "%s", name);
}

static int group_add(dr_graph_t *g, int parent, int style, const char *label)
{
    dr_group_t gr = {parent, lb_strdup(label), style};
    lb_vec_push(&g->groups, gr);
    return (int)g->groups.n - 1;
}

static void addr_add(dr_graph_t *g, uint32_t addr, int item)
{
    if (!addr) return;
    dr_addr_t a = {addr, item};
    lb_vec_push(&g->addrs, a);
}

static int edge_find(const dr_graph_t *g, int from, int to)
{
    for (size_t i = 0; i < g->edges.n; i++)
        if (g->edges.v[i].from == from && g->edges.v[i].to == to) return (int)i;
    return -1;
}

/* Adds from -> to once; a label joins the existing one ("a, b") when it is new. */
static int edge_add(dr_graph_t *g, int from, int to, const char *label, bool dashed)
{
    if (from < 0 || to < 0 || from == to) return -1;
    int e = edge_find(g, from, to);
    if (e < 0 && dashed) e = edge_find(g, to, from);
    if (e >= 0) {
        dr_edge_t *x = &g->edges.v[e];
        if (label && *label && (!x->label || !strstr(x->label, label))) {
            char *j = x->label ? lb_sprintf("%s, %s", x->label, label) : lb_strdup(label);
            lb_free(x->label);
            x->label = j;
        }
        return e;
    }
    dr_edge_t x;
    memset(&x, 0, sizeof x);
    x.from = from;
    x.to = to;
    x.label = label && *label ? lb_strdup(label) : NULL;
    x.dashed = dashed;
    lb_vec_push(&g->edges, x);
    return (int)g->edges.n - 1;
}

int dr_item_named(const dr_graph_t *g, const char *name)
{
    if (!name) return -1;
    for (size_t i = 0; i < g->items.n; i++)
        for (size_t k = 0; k < g->items.v[i].names.n; k++)
            if (strcmp(g->items.v[i].names.v[k], name) == 0) return (int)i;
    return -1;
}

int dr_item_addr(const dr_graph_t *g, uint32_t addr)
{
    for (size_t i = 0; i < g->addrs.n; i++)
        if (g->addrs.v[i].addr == addr) return g->addrs.v[i].item;
    return -1;
}

void dr_graph_free(dr_graph_t *g)
{
    lb_free(g->title);
    for (size_t i = 0; i < g->items.n; i++) {
        dr_item_t *it = &g->items.v[i];
        lb_free(it->title);
        lb_free(it->role);
        dr_strs_free(&it->lines);
        dr_strs_free(&it->marks);
        dr_strs_free(&it->names);
    }
    lb_vec_free(&g->items);
    for (size_t i = 0; i < g->groups.n; i++) lb_free(g->groups.v[i].label);
    lb_vec_free(&g->groups);
    for (size_t i = 0; i < g->edges.n; i++) {
        lb_free(g->edges.v[i].label);
        lb_free(g->edges.v[i].mark_text);
    }
    lb_vec_free(&g->edges);
    dr_strs_free(&g->notes);
    lb_vec_free(&g->addrs);
    for (size_t i = 0; i < g->checkers.n; i++) {
        lb_free(g->checkers.v[i].name);
        lb_free(g->checkers.v[i].what);
    }
    lb_vec_free(&g->checkers);
    memset(g, 0, sizeof *g);
}

static void checker_add(dr_graph_t *g, const health_t *hc, int from)
{
    if (!hc) return;
    const health_params_t *p = health_params(hc);
    char what[160];
    if (p->proto == HEALTH_HTTP)
        snprintf(what, sizeof what, "probe GET %s", p->path ? p->path : "/");
    else
        snprintf(what, sizeof what, "probe TCP");
    dr_checker_t c = {lb_strdup(health_name(hc)), lb_strdup(what), from};
    lb_vec_push(&g->checkers, c);
}

/* The value of parameter `name` in c, or NULL when its table has none. */
static const elem_val_t *cfg_val(const elem_cfg_t *c, const char *name)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->params[i].name, name) == 0) return &c->vals[i];
    return NULL;
}

typedef LB_VEC(net_node_t *) nodes_t;

static bool claimed(const nodes_t *c, const net_node_t *n)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i] == n) return true;
    return false;
}

/* The nodes a node reference names: the node itself, or a group's name0, name1, ... */
static void nodes_of(scn_run_t *r, const char *ref, nodes_t *out)
{
    net_node_t *n = ref ? scn_run_node(r, ref) : NULL;
    if (n) {
        lb_vec_push(out, n);
        return;
    }
    for (int k = 0; ref && k < 100000; k++) {
        char nm[300];
        snprintf(nm, sizeof nm, "%s%d", ref, k);
        net_node_t *m = scn_run_node(r, nm);
        if (!m) break;
        lb_vec_push(out, m);
    }
}

/* Groups of more hosts than this are one box ("client x10"). */
#define DR_GROUP_COLLAPSE 3

/* Boxes for the nodes of one node reference (claimed from now on); returns the first. */
static int hosts_add(dr_graph_t *g, scn_run_t *r, const char *ref, int kind, nodes_t *cl,
                     const char *extra)
{
    nodes_t ns = {0};
    nodes_of(r, ref, &ns);
    int first = -1;
    char ip[16], ip2[16];
    size_t fresh = 0;
    for (size_t i = 0; i < ns.n; i++) fresh += !claimed(cl, ns.v[i]);
    if (ns.n > DR_GROUP_COLLAPSE && fresh == ns.n) {
        char t[160];
        snprintf(t, sizeof t, "%s x%zu", ref, ns.n);
        first = item_add(g, kind, -1, t);
        dr_strs_add(&g->items.v[first].lines, "%s ... %s", lb_ip_str(net_node_addr(ns.v[0]), ip),
                     lb_ip_str(net_node_addr(ns.v[ns.n - 1]), ip2));
        for (size_t i = 0; i < ns.n; i++) {
            item_name(g, first, ns.v[i]->name);
            addr_add(g, net_node_addr(ns.v[i]), first);
            lb_vec_push(cl, ns.v[i]);
        }
    } else {
        for (size_t i = 0; i < ns.n; i++) {
            int k = dr_item_named(g, ns.v[i]->name);
            if (k < 0) {
                k = item_add(g, kind, -1, ns.v[i]->name);
                item_name(g, k, ns.v[i]->name);
                for (size_t a = 0; a < ns.v[i]->local_addrs.n; a++) {
                    dr_strs_add(&g->items.v[k].lines, "%s",
                                lb_ip_str(ns.v[i]->local_addrs.v[a], ip));
                    addr_add(g, ns.v[i]->local_addrs.v[a], k);
                }
                lb_vec_push(cl, ns.v[i]);
            }
            if (first < 0) first = k;
        }
    }
    if (first >= 0 && extra && *extra) dr_strs_add(&g->items.v[first].lines, "%s", extra);
    if (first >= 0 && !g->items.v[first].role)
        g->items.v[first].role = lb_sprintf("%s %s", kind == DR_CLIENT ? "client" :
                                            kind == DR_ROUTER ? "router" : "host",
                                            ns.n ? lb_ip_str(net_node_addr(ns.v[0]), ip) : "");
    lb_vec_free(&ns);
    return first;
}

/* The box of the shared segment (an L2 fabric) interface f is on, made at first use and
 * found by the name "segment:<fabric name>": the segment's name and subnet. */
static int segment_item(dr_graph_t *g, const net_iface_t *f)
{
    char key[200], ip[16];
    snprintf(key, sizeof key, "segment:%s", net_fabric_name(f->fabric));
    int k = dr_item_named(g, key);
    if (k >= 0) return k;
    k = item_add(g, DR_ROUTER, -1, net_fabric_name(f->fabric));
    item_name(g, k, key);
    dr_strs_add(&g->items.v[k].lines, "segment %s/%d",
                lb_ip_str(f->addr & lb_prefix_mask(f->plen), ip), f->plen);
    g->items.v[k].role = lb_sprintf("segment %s/%d", ip, f->plen);
    return k;
}

/* Pending edges to whatever owns an address, resolved once every box exists. */
typedef struct pend { int from; uint32_t addr; char label[64]; } pend_t;
typedef LB_VEC(pend_t) pends_t;

static void pend_add(pends_t *p, int from, uint32_t addr, const char *label)
{
    pend_t x = {from, addr, ""};
    snprintf(x.label, sizeof x.label, "%s", label ? label : "");
    lb_vec_push(p, x);
}

static void l7_add(dr_graph_t *g, const char *name, const char *what, uint32_t frontend,
                   int port, size_t n, net_node_t *(*node)(const void *, size_t),
                   uint32_t (*addr)(const void *, size_t), health_t *(*hc)(const void *, size_t),
                   const void *obj, const uint32_t *members, size_t n_members, int be_port,
                   nodes_t *cl, pends_t *pend)
{
    char ip[16], label[300], probe[160] = "";
    if (n && hc(obj, 0)) {
        const health_params_t *p = health_params(hc(obj, 0));
        if (p->proto == HEALTH_HTTP)
            snprintf(probe, sizeof probe, "\nprobe GET %s every %.0f s, down after %d",
                     p->path ? p->path : "/", (double)p->interval / SIM_S,
                     p->unhealthy_threshold);
        else
            snprintf(probe, sizeof probe, "\nprobe TCP every %.0f s", (double)p->interval / SIM_S);
    }
    snprintf(label, sizeof label, "%s %s\nfrontend %s:%d%s", what, name,
             lb_ip_str(frontend, ip), port, probe);
    int grp = group_add(g, -1, 1, label);
    for (size_t i = 0; i < n; i++) {
        net_node_t *nd = node(obj, i);
        int it = item_add(g, DR_L7, grp, nd->name);
        item_name(g, it, nd->name);
        if (i == 0) item_name(g, it, name);
        dr_strs_add(&g->items.v[it].lines, "%s", lb_ip_str(addr(obj, i), ip));
        g->items.v[it].role = lb_sprintf("%s %s", what, lb_ip_str(addr(obj, i), ip));
        addr_add(g, addr(obj, i), it);
        addr_add(g, frontend, it);
        lb_vec_push(cl, nd);
        checker_add(g, hc(obj, i), it);
        char pl[32];
        snprintf(pl, sizeof pl, ":%d", be_port);
        for (size_t m = 0; m < n_members; m++) pend_add(pend, it, members[m], m ? NULL : pl);
    }
}

static net_node_t *appgw_node_v(const void *o, size_t i) { return appgw_instance_node(o, i); }
static uint32_t appgw_addr_v(const void *o, size_t i) { return appgw_instance_addr(o, i); }
static health_t *appgw_hc_v(const void *o, size_t i) { return appgw_instance_health(o, i); }
static net_node_t *alb_node_v(const void *o, size_t i) { return aws_alb_node(o, i); }
static uint32_t alb_addr_v(const void *o, size_t i) { return aws_alb_node_addr(o, i); }
static health_t *alb_hc_v(const void *o, size_t i) { return aws_alb_health(o, i); }

static const char *probe_proto(azure_probe_proto_t p)
{
    return p == AZURE_PROBE_TCP ? "TCP" : p == AZURE_PROBE_HTTP ? "HTTP"
         : p == AZURE_PROBE_HTTPS ? "HTTPS" : "none";
}

static void azure_lb_add(dr_graph_t *g, const char *name, azure_lb_t *lb, const elem_cfg_t *cfg,
                         nodes_t *cl)
{
    char ip[16];
    int it = item_add(g, DR_L4, -1, name);
    item_name(g, it, name);
    dr_item_t *x = &g->items.v[it];
    dr_strs_add(&x->lines, "Azure internal LB, frontend %s", lb_ip_str(azure_lb_frontend(lb), ip));
    x->role = lb_sprintf("Azure internal LB %s", ip);
    addr_add(g, azure_lb_frontend(lb), it);
    for (size_t i = 0; i < azure_lb_rule_count(lb); i++) {
        const azure_lb_rule_t *ru = azure_lb_rule(lb, i);
        char probe[120];
        if (ru->probe.protocol == AZURE_PROBE_NONE) snprintf(probe, sizeof probe, "no probe");
        else if (ru->probe.protocol == AZURE_PROBE_TCP)
            snprintf(probe, sizeof probe, "probe TCP :%d", ru->probe.port);
        else
            snprintf(probe, sizeof probe, "probe %s GET %s :%d", probe_proto(ru->probe.protocol),
                     ru->probe.path ? ru->probe.path : "/", ru->probe.port);
        dr_strs_add(&g->items.v[it].lines, "rule %s :%u \u2192 :%u%s, %s", ru->name ? ru->name : "?",
                    ru->frontend_port, ru->backend_port, ru->floating_ip ? " floating IP" : "",
                    probe);
        checker_add(g, azure_lb_rule_health(lb, i), it);
    }
    const elem_val_t *fo = cfg_val(cfg, "fail-open");
    dr_strs_add(&g->items.v[it].lines, "no healthy backend: %s",
                fo && fo->u.b ? "send to all" : "drop new flows");
    /* the probe source: a lane of its own in the ladders, not drawn here */
    net_node_t *pn = azure_lb_probe_node(lb);
    int p = item_add(g, DR_L4PROBE, -1, pn->name);
    item_name(g, p, pn->name);
    g->items.v[p].role = lb_sprintf("%s probe %s", name, lb_ip_str(net_node_addr(pn), ip));
    g->items.v[p].hidden = true;
    addr_add(g, net_node_addr(pn), p);
    lb_vec_push(cl, pn);
}

static void nlb_add(dr_graph_t *g, const char *name, aws_nlb_t *nlb, nodes_t *cl, pends_t *pend)
{
    const aws_nlb_params_t *p = aws_nlb_params(nlb);
    char label[300], ip[16];
    size_t k = (size_t)snprintf(label, sizeof label, "NLB %s: ip targets, %s, cross-zone %s",
                                name, p->preserve_client_ip ? "client IP kept" : "SNAT",
                                p->cross_zone ? "on" : "off");
    for (size_t l = 0; l < aws_nlb_listener_count(nlb) && k < sizeof label; l++) {
        const aws_nlb_listener_t *li = aws_nlb_listener(nlb, l);
        k += (size_t)snprintf(label + k, sizeof label - k, "%s:%u \u2192 :%u", l ? ", " : "\n",
                              li->port, li->target_port);
    }
    int grp = group_add(g, -1, 1, label);
    int zi[AWS_NLB_MAX_ZONES];
    for (size_t z = 0; z < aws_nlb_zone_count(nlb) && z < AWS_NLB_MAX_ZONES; z++) {
        net_node_t *n = aws_nlb_zone_node(nlb, z);
        zi[z] = item_add(g, DR_L4, grp, n->name);
        item_name(g, zi[z], n->name);
        if (z == 0) item_name(g, zi[z], name);
        dr_strs_add(&g->items.v[zi[z]].lines, "zone %s, %s", aws_nlb_zone_name(nlb, z),
                    lb_ip_str(aws_nlb_zone_addr(nlb, z), ip));
        g->items.v[zi[z]].role = lb_sprintf("NLB node %s", ip);
        addr_add(g, aws_nlb_zone_addr(nlb, z), zi[z]);
        lb_vec_push(cl, n);
        for (size_t l = 0; l < aws_nlb_listener_count(nlb); l++)
            checker_add(g, aws_nlb_health(nlb, l, z), zi[z]);
    }
    for (size_t t = 0; t < aws_nlb_target_count(nlb); t++) {
        size_t tz = aws_nlb_target_zone(nlb, t);
        for (size_t z = 0; z < aws_nlb_zone_count(nlb) && z < AWS_NLB_MAX_ZONES; z++)
            if (p->cross_zone || z == tz) pend_add(pend, zi[z], aws_nlb_target_addr(nlb, t), NULL);
    }
}

/* The node pointers an Azure LB sends to (its backends' NICs). */
static void lb_backend_nodes(scn_run_t *r, nodes_t *out)
{
    azure_lb_t *lb;
    for (size_t i = 0; (lb = scn_run_object(r, "azure-lb", i, NULL)); i++)
        for (size_t b = 0; b < azure_lb_backend_count(lb); b++)
            lb_vec_push(out, azure_lb_backend_iface(lb, b)->node);
}

static bool pod_selected(const k8s_service_t *s, const cluster_pod_t *pod)
{
    return s->selector.n && strcmp(s->meta.ns, pod->ns) == 0 &&
           k8s_labels_match(&s->selector, &pod->dep->pod_labels);
}

/* "/app1", "= /", "~ ^/x" for a route match. */
static void match_str(const gw_route_match_t *m, char *buf, size_t len)
{
    const char *p = m->path ? m->path : "/";
    if (m->path_type == GW_PATH_EXACT) snprintf(buf, len, "= %s", p);
    else if (m->path_type == GW_PATH_REGEX) snprintf(buf, len, "~ %s", p);
    else snprintf(buf, len, "%s", p);
}

/* Gateway pod -> app pods: the HTTPRoutes attached to its Gateway (gateway_api.c's own
 * table), each valid backend Service's pods, labelled with the rule's paths. */
static void routes_add(dr_graph_t *g, cluster_t *c, const k8s_objects_t *objs,
                       const cluster_pod_t *gwp, int from)
{
    const char *gwname = k8s_kv_get(&gwp->dep->pod_labels, "gateway.networking.k8s.io/gateway-name");
    k8s_gateway_t *gw = objs && gwname ? k8s_gateway_find(objs, gwp->ns, gwname) : NULL;
    if (!gw) return;
    for (size_t l = 0; l < gw->listeners.n; l++) {
        gw_table_t *t = gw_table_build(objs, gw, &gw->listeners.v[l], NULL);
        size_t nr;
        const gw_route_status_t *rs = gw_table_routes(t, &nr);
        for (size_t i = 0; i < nr; i++) {
            if (!rs[i].attached) continue;
            for (size_t ri = 0; ri < rs[i].n_rules; ri++) {
                const gw_route_rule_t *rule = &rs[i].route->rules.v[ri];
                char paths[160] = "";
                size_t k = 0;
                for (size_t m = 0; m < rule->matches.n && k < sizeof paths; m++) {
                    char one[100];
                    match_str(&rule->matches.v[m], one, sizeof one);
                    k += (size_t)snprintf(paths + k, sizeof paths - k, "%s%s", m ? ", " : "", one);
                }
                if (!rule->matches.n) snprintf(paths, sizeof paths, "/");
                for (size_t b = 0; b < rs[i].rules[ri].n_backends; b++) {
                    const gw_backend_t *be = &rs[i].rules[ri].backends[b];
                    if (!be->valid || !be->svc) continue;
                    k8s_service_t *svc = cluster_service(c, be->ns, be->svc->meta.name);
                    if (!svc) continue;
                    cluster_pod_t *pods[64];
                    size_t np = cluster_service_pods(c, svc, pods, 64);
                    for (size_t p = 0; p < np && p < 64; p++)
                        edge_add(g, from, dr_item_named(g, pods[p]->node->name), paths, false);
                }
            }
        }
        gw_table_free(t);
    }
}

static void cluster_add(dr_graph_t *g, const char *name, cluster_t *c, const k8s_objects_t *objs,
                        const nodes_t *lb_nodes, nodes_t *cl)
{
    char label[300], ip[16];
    snprintf(label, sizeof label, "cluster %s, Kubernetes %s", name, cluster_version(c));
    int top = group_add(g, -1, 2, label);
    /* pool/zone groups, then one group per node */
    LB_VEC(int) node_grp = {0};
    LB_VEC(int) kp_item = {0};
    for (size_t i = 0; i < cluster_node_count(c); i++) {
        cluster_node_t *n = cluster_node_at(c, i);
        char pz[200];
        if (n->zone) snprintf(pz, sizeof pz, "pool %s, zone %s", n->pool, n->zone);
        else snprintf(pz, sizeof pz, "pool %s", n->pool);
        int pg = -1;
        for (size_t k = 0; k < g->groups.n && pg < 0; k++)
            if (g->groups.v[k].parent == top && strcmp(g->groups.v[k].label, pz) == 0) pg = (int)k;
        if (pg < 0) pg = group_add(g, top, 3, pz);
        snprintf(label, sizeof label, "node %s, %s", n->node->name, lb_ip_str(n->nic->addr, ip));
        int ng = group_add(g, pg, 4, label);
        lb_vec_push(&node_grp, ng);
        int kp = -1;
        if (claimed(lb_nodes, n->node)) {
            kp = item_add(g, DR_KPROXY, ng, "kube-proxy");
            item_name(g, kp, n->node->name);
            addr_add(g, n->nic->addr, kp);
            g->items.v[kp].role = lb_sprintf("node (kube-proxy) %s", ip);
            for (size_t s = 0; s < cluster_service_count(c); s++) {
                const k8s_service_t *sv = cluster_service_at(c, s);
                if (sv->type == K8S_SVC_CLUSTER_IP) continue;
                for (size_t p = 0; p < sv->ports.n; p++) {
                    const k8s_service_port_t *sp = &sv->ports.v[p];
                    if (!sp->node_port) continue;
                    char tp[64];
                    if (sp->target_port.name) snprintf(tp, sizeof tp, "%s", sp->target_port.name);
                    else snprintf(tp, sizeof tp, "%d", sp->target_port.number ? sp->target_port.number
                                                                               : sp->port);
                    dr_strs_add(&g->items.v[kp].lines, "%s:%d, nodePort %d \u2192 pod :%s",
                                sv->lb_ip ? lb_ip_str(sv->lb_ip, ip) : sv->meta.name, sp->port,
                                sp->node_port, tp);
                }
                dr_strs_add(&g->items.v[kp].lines, "%s: %s", sv->etp == K8S_ETP_LOCAL
                            ? "ETP Local" : "ETP Cluster", sv->etp == K8S_ETP_LOCAL
                            ? "DNAT to a pod on this node" : "DNAT + SNAT to any pod");
            }
        }
        if (kp < 0) {                   /* the node itself, for the ladders' lanes */
            int h = item_add(g, DR_KPROXY, ng, n->node->name);
            item_name(g, h, n->node->name);
            g->items.v[h].role = lb_sprintf("node %s", ip);
            g->items.v[h].hidden = true;
        }
        lb_vec_push(&kp_item, kp);
        lb_vec_push(cl, n->node);
    }
    /* pods in their node's group */
    for (size_t i = 0; i < cluster_pod_count(c); i++) {
        cluster_pod_t *pod = cluster_pod_at(c, i);
        size_t ni = 0;
        while (ni < cluster_node_count(c) && cluster_node_at(c, ni) != pod->host) ni++;
        bool gw = pod->app_kind == CLUSTER_APP_ISTIO;
        int it = item_add(g, gw ? DR_GWPOD : DR_POD, ni < node_grp.n ? node_grp.v[ni] : top,
                          pod->name);
        item_name(g, it, pod->node->name);
        dr_strs_add(&g->items.v[it].lines, "%s, %s", lb_ip_str(pod->ip, ip),
                    gw ? "Envoy (Istio gateway)" : pod->app_kind == CLUSTER_APP_NGINX ? "nginx"
                                                                                        : "pod");
        if (!pod->ready) dr_strs_add(&g->items.v[it].lines, "not ready");
        g->items.v[it].role = lb_sprintf("%s %s", gw ? "gateway pod" : "pod", ip);
        addr_add(g, pod->ip, it);
        lb_vec_push(cl, pod->node);
    }
    /* a node group with nothing in it would vanish: say so */
    for (size_t i = 0; i < node_grp.n; i++) {
        bool any = false;
        for (size_t k = 0; k < g->items.n && !any; k++)
            any = g->items.v[k].group == node_grp.v[i] && !g->items.v[k].hidden;
        if (!any) item_add(g, DR_HOST, node_grp.v[i], "no pods");
    }
    /* kube-proxy -> the pods of the Services load balancers send to the nodes */
    for (size_t i = 0; i < cluster_node_count(c); i++) {
        if (kp_item.v[i] < 0) continue;
        cluster_node_t *n = cluster_node_at(c, i);
        for (size_t s = 0; s < cluster_service_count(c); s++) {
            const k8s_service_t *sv = cluster_service_at(c, s);
            if (sv->type != K8S_SVC_LOAD_BALANCER) continue;
            for (size_t p = 0; p < cluster_pod_count(c); p++) {
                cluster_pod_t *pod = cluster_pod_at(c, p);
                if (!pod_selected(sv, pod)) continue;
                if (sv->etp == K8S_ETP_LOCAL && pod->host != n) continue;
                edge_add(g, kp_item.v[i], dr_item_named(g, pod->node->name), NULL, false);
            }
        }
    }
    for (size_t i = 0; i < cluster_pod_count(c); i++) {
        cluster_pod_t *pod = cluster_pod_at(c, i);
        if (pod->app_kind == CLUSTER_APP_ISTIO)
            routes_add(g, c, objs, pod, dr_item_named(g, pod->node->name));
    }
    lb_vec_free(&node_grp);
    lb_vec_free(&kp_item);
}

/* Breadth-first distance of each item from the clients over link edges (for orienting
 * undirected links left to right). */
static void link_orient(dr_graph_t *g)
{
    size_t n = g->items.n;
    int *dist = lb_malloc((n ? n : 1) * sizeof *dist);
    for (size_t i = 0; i < n; i++) dist[i] = g->items.v[i].kind == DR_CLIENT ? 0 : -1;
    for (bool more = true; more;) {
        more = false;
        for (size_t e = 0; e < g->edges.n; e++) {
            dr_edge_t *x = &g->edges.v[e];
            if (!x->dashed) continue;
            if (dist[x->from] >= 0 && (dist[x->to] < 0 || dist[x->to] > dist[x->from] + 1)) {
                dist[x->to] = dist[x->from] + 1;
                more = true;
            }
            if (dist[x->to] >= 0 && (dist[x->from] < 0 || dist[x->from] > dist[x->to] + 1)) {
                dist[x->from] = dist[x->to] + 1;
                more = true;
            }
        }
    }
    for (size_t e = 0; e < g->edges.n; e++) {
        dr_edge_t *x = &g->edges.v[e];
        if (x->dashed && dist[x->to] >= 0 && dist[x->from] > dist[x->to]) {
            int t = x->from;
            x->from = x->to;
            x->to = t;
        }
    }
    lb_free(dist);
}

void dr_graph_build(dr_graph_t *g, scn_t *s, scn_run_t *r)
{
    memset(g, 0, sizeof *g);
    g->title = lb_sprintf("%s: %s", scn_name(s), scn_run_variant(r));
    int vi = scn_variant_find(s, scn_run_variant(r));
    const k8s_objects_t *objs = vi >= 0 ? scn_variant_k8s(s, (size_t)vi) : NULL;
    nodes_t cl = {0}, lb_nodes = {0};
    pends_t pend = {0};
    /* clients first: the traffic sources' nodes */
    for (size_t i = 0; i < scn_run_element_count(r); i++) {
        if (scn_run_element_type(r, i)->section != ELEM_TRAFFIC) continue;
        const elem_val_t *from = cfg_val(scn_run_element_cfg(r, i), "from");
        if (from && from->u.s) hosts_add(g, r, from->u.s, DR_CLIENT, &cl, NULL);
    }
    void *obj;
    const char *name;
    for (size_t i = 0; (obj = scn_run_object(r, "appgw", i, &name)); i++) {
        const appgw_params_t *p = appgw_params(obj);
        l7_add(g, name, "Application Gateway", p->frontend, p->listener_port,
               appgw_instance_count(obj), appgw_node_v, appgw_addr_v, appgw_hc_v, obj,
               p->members, p->n_members, p->backend_port, &cl, &pend);
    }
    for (size_t i = 0; (obj = scn_run_object(r, "aws-alb", i, &name)); i++) {
        const aws_alb_params_t *p = aws_alb_params(obj);
        l7_add(g, name, "ALB", p->frontend, p->http_port, aws_alb_node_count(obj), alb_node_v,
               alb_addr_v, alb_hc_v, obj, p->targets, p->n_targets, p->target_port, &cl, &pend);
    }
    for (size_t i = 0; i < scn_run_element_count(r); i++) {
        const char *en = scn_run_element_name(r, i);
        void *lb = NULL;
        for (size_t k = 0; (obj = scn_run_object(r, "azure-lb", k, &name)) && !lb; k++)
            if (strcmp(name, en) == 0) lb = obj;
        if (lb) azure_lb_add(g, en, lb, scn_run_element_cfg(r, i), &cl);
    }
    for (size_t i = 0; (obj = scn_run_object(r, "aws-nlb", i, &name)); i++)
        nlb_add(g, name, obj, &cl, &pend);
    lb_backend_nodes(r, &lb_nodes);
    for (size_t i = 0; (obj = scn_run_object(r, "cluster", i, &name)); i++)
        cluster_add(g, name, obj, objs, &lb_nodes, &cl);
    /* hosts and routers nobody else drew, by element (groups collapse) */
    for (size_t i = 0; i < scn_run_element_count(r); i++) {
        const elem_type_t *t = scn_run_element_type(r, i);
        if (t->section != ELEM_NODE) continue;
        hosts_add(g, r, scn_run_element_name(r, i),
                  strcmp(t->name, "router") == 0 ? DR_ROUTER : DR_HOST, &cl, NULL);
    }
    net_t *net = scn_run_net(r);
    for (size_t i = 0; i < net_node_count(net); i++) {
        net_node_t *n = net_node_at(net, i);
        if (!claimed(&cl, n)) hosts_add(g, r, n->name, DR_HOST, &cl, NULL);
    }
    /* links between drawn hosts and routers */
    for (size_t i = 0; i < net_node_count(net); i++) {
        net_node_t *n = net_node_at(net, i);
        int a = dr_item_named(g, n->name);
        if (a < 0 || g->items.v[a].kind > DR_ROUTER || (g->items.v[a].kind != DR_HOST &&
            g->items.v[a].kind != DR_ROUTER && g->items.v[a].kind != DR_CLIENT))
            continue;
        for (size_t k = 0; k < n->ifaces.n; k++) {
            net_iface_t *f = n->ifaces.v[k];
            net_iface_t *peer = net_link_peer(f);
            int b = peer ? dr_item_named(g, peer->node->name) : -1;
            if (!peer && f->fabric && net_fabric_params(f->fabric)->l2)
                b = segment_item(g, f);
            if (b >= 0 && b != a) edge_add(g, a, b, NULL, true);
        }
    }
    /* Azure LB -> the nodes it balances over (kube-proxy boxes) */
    for (size_t i = 0; (obj = scn_run_object(r, "azure-lb", i, &name)); i++) {
        int from = dr_item_named(g, name);
        for (size_t b = 0; b < azure_lb_backend_count(obj); b++)
            edge_add(g, from, dr_item_named(g, azure_lb_backend_iface(obj, b)->node->name), NULL,
                     false);
    }
    for (size_t i = 0; i < pend.n; i++) {
        int to = dr_item_addr(g, pend.v[i].addr);
        edge_add(g, pend.v[i].from, to, pend.v[i].label, false);
    }
    /* traffic: clients -> what they send to */
    for (size_t i = 0; i < scn_run_element_count(r); i++) {
        if (scn_run_element_type(r, i)->section != ELEM_TRAFFIC) continue;
        const elem_cfg_t *cfg = scn_run_element_cfg(r, i);
        const elem_val_t *from = cfg_val(cfg, "from"), *to = cfg_val(cfg, "to");
        const elem_val_t *path = cfg_val(cfg, "path");
        if (!from || !from->u.s || !to || !to->u.s) continue;
        char label[200];
        size_t k = (size_t)snprintf(label, sizeof label, "%s", scn_run_element_name(r, i));
        if (path && path->kind == P_STRLIST)
            for (size_t p = 0; p < path->u.strs.n && k < sizeof label; p++)
                k += (size_t)snprintf(label + k, sizeof label - k, "%s%s", p ? ", " : ": ",
                                      path->u.strs.v[p]);
        else if (path && path->kind == P_STR && path->u.s)
            snprintf(label + k, sizeof label - k, ": %s", path->u.s);
        nodes_t fromn = {0}, ton = {0};
        nodes_of(r, from->u.s, &fromn);
        uint32_t a[16];
        size_t na = scn_run_addrs(r, to->u.s, a, 16);
        if (!na && lb_ip_parse(to->u.s, &a[0]) == 0) na = 1;
        if (!na) nodes_of(r, to->u.s, &ton);
        bool first = true;
        int prev = -1;
        for (size_t c = 0; c < fromn.n; c++) {
            int fi = dr_item_named(g, fromn.v[c]->name);
            if (fi == prev) continue;           /* a collapsed group: one box */
            prev = fi;
            for (size_t x = 0; x < na && x < 16; x++)
                for (size_t m = 0; m < g->addrs.n; m++)
                    if (g->addrs.v[m].addr == a[x]) {
                        edge_add(g, fi, g->addrs.v[m].item, first ? label : NULL, false);
                        first = false;
                    }
            for (size_t x = 0; x < ton.n; x++) {
                edge_add(g, fi, dr_item_named(g, ton.v[x]->name), first ? label : NULL, false);
                first = false;
            }
        }
        lb_vec_free(&fromn);
        lb_vec_free(&ton);
    }
    link_orient(g);
    lb_vec_free(&cl);
    lb_vec_free(&lb_nodes);
    lb_vec_free(&pend);
}

/* ---- what the run saw, on the graph ----------------------------------------------------- */

const char *dr_drop_owner(const char *where, const char *detail, char *buf, size_t len)
{
    buf[0] = '\0';
    if (where && strcmp(where, "network") != 0) {
        snprintf(buf, len, "%s", where);
    } else if (detail) {
        size_t n = strcspn(detail, ":");
        if (detail[n] == ':' && n < len) snprintf(buf, len, "%.*s", (int)n, detail);
    }
    if (!buf[0]) snprintf(buf, len, "network");
    return buf;
}

/* Adds a mark line to an item once. */
static void mark_line(dr_item_t *it, const char *text)
{
    for (size_t i = 0; i < it->marks.n; i++)
        if (strcmp(it->marks.v[i], text) == 0) return;
    dr_strs_add(&it->marks, "%s", text);
}

static void item_mark(dr_item_t *it, int mark)
{
    if (mark == DR_MARK_BAD || it->mark == DR_MARK_NONE) it->mark = mark;
}

/* Marks edges along a successful request's path: each pair of consecutive hops, directly
 * or through one box between (a load balancer the packets pass without a node). */
static void mark_path(dr_graph_t *g, const rep_variant_t *v)
{
    int prev = -1;
    size_t marked = 0;
    for (size_t i = 0; i < v->n_hops; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s", v->hops[i].where);
        char *sp = strstr(nm, " (connected)");
        if (sp) *sp = '\0';
        int it = dr_item_named(g, nm);
        if (it < 0 || it == prev || g->items.v[it].hidden) continue;   /* a node passed */
        if (prev >= 0) {
            int e = edge_find(g, prev, it);
            if (e < 0) e = edge_find(g, it, prev);
            if (e >= 0) {
                g->edges.v[e].mark = g->edges.v[e].mark == DR_MARK_BAD ? DR_MARK_BAD : DR_MARK_PATH;
                marked++;
            } else {
                for (size_t x = 0; x < g->items.n; x++) {
                    int a = edge_find(g, prev, (int)x), b = edge_find(g, (int)x, it);
                    if (a < 0 || b < 0) {
                        a = edge_find(g, it, (int)x);
                        b = edge_find(g, (int)x, prev);
                    }
                    if (a < 0 || b < 0) continue;
                    if (g->edges.v[a].mark != DR_MARK_BAD) g->edges.v[a].mark = DR_MARK_PATH;
                    if (g->edges.v[b].mark != DR_MARK_BAD) g->edges.v[b].mark = DR_MARK_PATH;
                    item_mark(&g->items.v[x], DR_MARK_PATH);
                    marked++;
                    break;
                }
            }
        }
        item_mark(&g->items.v[it], DR_MARK_PATH);
        prev = it;
    }
    if (marked) dr_strs_add(&g->notes, "green: the path of a successful request, %s", v->hops_title);
}

/* The health checker's box and a target label's box. */
static const dr_checker_t *checker_find(const dr_graph_t *g, const char *name)
{
    for (size_t i = 0; i < g->checkers.n; i++)
        if (strcmp(g->checkers.v[i].name, name) == 0) return &g->checkers.v[i];
    return NULL;
}

static int target_item(const dr_graph_t *g, const char *label)
{
    uint32_t a;
    if (lb_ip_parse(label, &a) == 0) return dr_item_addr(g, a);
    return dr_item_named(g, label);
}

static void mark_run(dr_graph_t *g, const draw_rec_t *rec, const rep_variant_t *v)
{
    char t1[32], t2[32];
    /* health: per checker, the targets it had down, on the edge to each */
    for (size_t i = 0; i < rec->health.n; i++) {
        const dr_health_t *h = &rec->health.v[i];
        if (!h->downs) continue;
        const dr_checker_t *c = checker_find(g, h->checker);
        if (!c) continue;
        int to = target_item(g, h->target);
        char text[200];
        if (h->down)
            snprintf(text, sizeof text, "DOWN from %s: %s", dr_time_str(h->first_down, t1, sizeof t1),
                     h->reason ? h->reason : "probe failed");
        else
            snprintf(text, sizeof text, "DOWN %s to %s: %s", dr_time_str(h->first_down, t1, sizeof t1),
                     dr_time_str(h->last_up, t2, sizeof t2), h->reason ? h->reason : "probe failed");
        int e = to >= 0 ? edge_find(g, c->from, to) : -1;
        if (e >= 0 && !g->edges.v[e].mark_text) {
            g->edges.v[e].mark = DR_MARK_BAD;
            g->edges.v[e].mark_text = lb_strdup(text);
        } else if (to >= 0 && e < 0) {
            dr_strs_add(&g->items.v[to].marks, "%s (%s)", text, h->checker);
            item_mark(&g->items.v[to], DR_MARK_BAD);
        }
    }
    /* per checker: how many of its targets were down, and by which probe */
    for (size_t k = 0; k < g->checkers.n; k++) {
        const dr_checker_t *c = &g->checkers.v[k];
        size_t down = 0, all = 0;
        const char *reason = NULL;
        for (size_t i = 0; i < rec->health.n; i++) {
            if (strcmp(rec->health.v[i].checker, c->name)) continue;
            all++;
            if (rec->health.v[i].downs) {
                down++;
                if (!reason) reason = rec->health.v[i].reason;
            }
        }
        if (!down) continue;
        char line[300];
        snprintf(line, sizeof line, "%zu of %zu backends DOWN on %s: %s", down, all, c->what,
                 reason ? reason : "failed");
        mark_line(&g->items.v[c->from], line);
        item_mark(&g->items.v[c->from], DR_MARK_BAD);
    }
    /* drops, at the element that dropped them */
    for (size_t i = 0; i < rec->drops.n; i++) {
        const dr_drop_t *d = &rec->drops.v[i];
        int it = dr_item_named(g, d->owner);
        char syn[48] = "";
        if (d->syns) snprintf(syn, sizeof syn, ", %llu of them SYNs", (unsigned long long)d->syns);
        if (it >= 0) {
            dr_strs_add(&g->items.v[it].marks, "dropped %llu packets: %s%s",
                        (unsigned long long)d->count, d->reason, syn);
            item_mark(&g->items.v[it], DR_MARK_BAD);
        } else {
            dr_strs_add(&g->notes, "%s dropped %llu packets: %s%s", d->owner,
                        (unsigned long long)d->count, d->reason, syn);
        }
    }
    bool bad = false;
    for (size_t i = 0; i < g->items.n; i++) bad |= g->items.v[i].mark == DR_MARK_BAD;
    for (size_t e = 0; e < g->edges.n; e++) bad |= g->edges.v[e].mark == DR_MARK_BAD;
    if (bad)
        dr_strs_add(&g->notes, "red: what the run saw fail -- backends a load balancer had DOWN "
                    "(by which probe, its answer, since when) and packets dropped (where, why, "
                    "how many)");
    if (v) mark_path(g, v);
}

/* ---- DOT ----------------------------------------------------------------------------------- */

static const char *const kind_fill[DR_KIND_COUNT] = {
    [DR_CLIENT] = "#ddf4ff", [DR_L7] = "#fff8c5", [DR_L4] = "#fbefff", [DR_L4PROBE] = "#fbefff",
    [DR_KPROXY] = "#eaeef2", [DR_GWPOD] = "#dafbe1", [DR_POD] = "#ffffff", [DR_HOST] = "#ffffff",
    [DR_ROUTER] = "#eaeef2",
};
static const char *const group_fill[] = {"#ffffff", "#fffdf0", "#f6f8fa", "#ffffff", "#f6f8fa"};
#define DR_RED "#cf222e"
#define DR_GREEN "#1a7f37"
#define DR_GREY "#57606a"

/* A label's text as HTML-like DOT: lines split at '\n'. */
static void dot_text(FILE *f, const char *s)
{
    while (s && *s) {
        size_t n = strcspn(s, "\n");
        char *line = lb_strndup(s, n);
        draw_put_xml(f, line);
        lb_free(line);
        s += n;
        if (*s) {
            fputs("<BR/>", f);
            s++;
        }
    }
}

static void dot_item(FILE *f, const dr_graph_t *g, size_t i, int indent)
{
    const dr_item_t *it = &g->items.v[i];
    if (it->hidden) return;
    fprintf(f, "%*sn%zu [label=<<B>", indent, "", i);
    dot_text(f, it->title);
    fputs("</B>", f);
    for (size_t k = 0; k < it->lines.n; k++) {
        fputs("<BR/><FONT POINT-SIZE=\"9\" COLOR=\"" DR_GREY "\">", f);
        dot_text(f, it->lines.v[k]);
        fputs("</FONT>", f);
    }
    for (size_t k = 0; k < it->marks.n; k++) {
        fputs("<BR/><FONT POINT-SIZE=\"9\" COLOR=\"" DR_RED "\"><B>", f);
        dot_text(f, it->marks.v[k]);
        fputs("</B></FONT>", f);
    }
    fprintf(f, ">, fillcolor=\"%s\"", kind_fill[it->kind]);
    if (it->mark == DR_MARK_BAD) fputs(", color=\"" DR_RED "\", penwidth=2.5", f);
    else if (it->mark == DR_MARK_PATH) fputs(", color=\"" DR_GREEN "\", penwidth=2", f);
    if (it->kind == DR_ROUTER) fputs(", shape=box3d", f);
    fputs("];\n", f);
}

static void dot_group(FILE *f, const dr_graph_t *g, int parent, int indent)
{
    for (size_t i = 0; i < g->items.n; i++)
        if (g->items.v[i].group == parent) dot_item(f, g, i, indent);
    for (size_t k = 0; k < g->groups.n; k++) {
        const dr_group_t *gr = &g->groups.v[k];
        if (gr->parent != parent) continue;
        fprintf(f, "%*ssubgraph cluster_%zu {\n%*slabel=<", indent, "", k, indent + 2, "");
        for (const char *t = gr->label; *t;) {      /* lines left-aligned */
            size_t m = strcspn(t, "\n");
            char *line = lb_strndup(t, m);
            draw_put_xml(f, line);
            lb_free(line);
            fputs("<BR ALIGN=\"LEFT\"/>", f);
            t += m + (t[m] ? 1 : 0);
        }
        fprintf(f, ">;\n%*sstyle=\"rounded,filled\"; fillcolor=\"%s\"; color=\"#afb8c1\"; labeljust=l;\n",
                indent + 2, "", group_fill[gr->style]);
        dot_group(f, g, (int)k, indent + 2);
        fprintf(f, "%*s}\n", indent, "");
    }
}

static char *graph_dot(const dr_graph_t *g, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    fputs("// topology drawn by lbchain's sim (render: dot -Tsvg)\ndigraph topology {\n", f);
    fputs("  graph [rankdir=LR, newrank=true, nodesep=0.18, ranksep=0.55, fontname=\"DejaVu Sans\","
          " fontsize=11, labeljust=l, labelloc=t, label=<<B>", f);
    dot_text(f, g->title);
    fputs("</B>", f);
    for (size_t i = 0; i < g->notes.n; i++) {
        fputs("<BR ALIGN=\"LEFT\"/><FONT POINT-SIZE=\"10\">", f);
        dot_text(f, g->notes.v[i]);
        fputs("</FONT>", f);
    }
    fputs("<BR ALIGN=\"LEFT\"/>>];\n", f);
    fputs("  node [shape=box, style=\"rounded,filled\", fontname=\"DejaVu Sans\", fontsize=10, "
          "margin=\"0.10,0.05\", color=\"#8c959f\"];\n"
          "  edge [fontname=\"DejaVu Sans\", fontsize=9, color=\"#6e7781\", fontcolor=\"" DR_GREY
          "\", arrowsize=0.7];\n", f);
    dot_group(f, g, -1, 2);
    for (size_t e = 0; e < g->edges.n; e++) {
        const dr_edge_t *x = &g->edges.v[e];
        fprintf(f, "  n%d -> n%d [", x->from, x->to);
        bool sep = false;
        if (x->label || x->mark_text) {
            fputs("label=<", f);
            if (x->label) dot_text(f, x->label);
            if (x->mark_text) {
                fprintf(f, "%s<FONT COLOR=\"" DR_RED "\"><B>", x->label ? "<BR/>" : "");
                dot_text(f, x->mark_text);
                fputs("</B></FONT>", f);
            }
            fputs(">", f);
            sep = true;
        }
        if (x->dashed) fprintf(f, "%sdir=none", sep ? ", " : ""), sep = true;
        if (x->mark == DR_MARK_BAD)
            fprintf(f, "%scolor=\"" DR_RED "\", penwidth=2, style=dashed", sep ? ", " : "");
        else if (x->mark == DR_MARK_PATH)
            fprintf(f, "%scolor=\"" DR_GREEN "\", penwidth=2.5", sep ? ", " : "");
        fputs("];\n", f);
    }
    fputs("}\n", f);
    fclose(f);
    return text;
}

/* ---- Mermaid -------------------------------------------------------------------------------- */

static void mmd_label(FILE *f, const dr_item_t *it)
{
    fputs("[\"", f);
    draw_put_mermaid(f, it->title);
    for (size_t k = 0; k < it->lines.n; k++) {
        fputs("<br/>", f);
        draw_put_mermaid(f, it->lines.v[k]);
    }
    for (size_t k = 0; k < it->marks.n; k++) {
        fputs("<br/>", f);
        draw_put_mermaid(f, it->marks.v[k]);
    }
    fputs("\"]", f);
}

static void mmd_group(FILE *f, const dr_graph_t *g, int parent, int indent)
{
    for (size_t i = 0; i < g->items.n; i++) {
        const dr_item_t *it = &g->items.v[i];
        if (it->group != parent || it->hidden) continue;
        fprintf(f, "%*sn%zu", indent, "", i);
        mmd_label(f, it);
        fputc('\n', f);
    }
    for (size_t k = 0; k < g->groups.n; k++) {
        if (g->groups.v[k].parent != parent) continue;
        fprintf(f, "%*ssubgraph g%zu[\"", indent, "", k);
        draw_put_mermaid(f, g->groups.v[k].label);
        fputs("\"]\n", f);
        mmd_group(f, g, (int)k, indent + 2);
        fprintf(f, "%*send\n", indent, "");
    }
}

static char *graph_mermaid(const dr_graph_t *g, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    fputs("%% topology drawn by lbchain's sim: ", f);
    draw_put_mermaid(f, g->title);
    fputs("\nflowchart LR\n", f);
    mmd_group(f, g, -1, 2);
    for (size_t e = 0; e < g->edges.n; e++) {
        const dr_edge_t *x = &g->edges.v[e];
        fprintf(f, "  n%d %s", x->from, x->dashed ? "---" : "-->");
        if (x->label || x->mark_text) {
            fputs("|\"", f);
            if (x->label) draw_put_mermaid(f, x->label);
            if (x->mark_text) {
                if (x->label) fputs("<br/>", f);
                draw_put_mermaid(f, x->mark_text);
            }
            fputs("\"|", f);
        }
        fprintf(f, " n%d\n", x->to);
    }
    fputs("  classDef bad stroke:" DR_RED ",stroke-width:3px\n"
          "  classDef path stroke:" DR_GREEN ",stroke-width:2px\n", f);
    for (size_t i = 0; i < g->items.n; i++)
        if (g->items.v[i].mark && !g->items.v[i].hidden)
            fprintf(f, "  class n%zu %s\n", i, g->items.v[i].mark == DR_MARK_BAD ? "bad" : "path");
    for (size_t e = 0; e < g->edges.n; e++)
        if (g->edges.v[e].mark)
            fprintf(f, "  linkStyle %zu stroke:%s,stroke-width:%s\n", e,
                    g->edges.v[e].mark == DR_MARK_BAD ? DR_RED : DR_GREEN,
                    g->edges.v[e].mark == DR_MARK_BAD ? "2px" : "3px");
    for (size_t i = 0; i < g->notes.n; i++) {
        fputs("  %% ", f);
        draw_put_mermaid(f, g->notes.v[i]);
        fputc('\n', f);
    }
    fclose(f);
    return text;
}

/* Writes <stem>.dot and <stem>.mmd of g into dir. */
static int graph_write(const dr_graph_t *g, const char *dir, const char *stem, char *err,
                       size_t errlen)
{
    size_t len;
    char name[300];
    char *dot = graph_dot(g, &len);
    snprintf(name, sizeof name, "%s.dot", stem);
    int rc = dr_write_file(dir, name, dot, len, err, errlen);
    free(dot);
    if (rc) return rc;
    char *mmd = graph_mermaid(g, &len);
    snprintf(name, sizeof name, "%s.mmd", stem);
    rc = dr_write_file(dir, name, mmd, len, err, errlen);
    free(mmd);
    return rc;
}

/* ---- the recorder -------------------------------------------------------------------------- */

static void rec_drop(void *data, sim_time_t t, const char *where, const pkt_t *p,
                     const char *reason, const char *detail)
{
    draw_rec_t *d = data;
    char owner[128];
    dr_drop_owner(where, detail, owner, sizeof owner);
    dr_drop_t *x = NULL;
    for (size_t i = 0; i < d->drops.n && !x; i++)
        if ((d->drops.v[i].reason == reason || strcmp(d->drops.v[i].reason, reason) == 0) &&
            strcmp(d->drops.v[i].owner, owner) == 0)
            x = &d->drops.v[i];
    if (!x) {
        dr_drop_t n = {lb_strdup(owner), NULL, lb_strdup(reason), 0, 0, t};
        n.reason = n.reason_own;
        lb_vec_push(&d->drops, n);
        x = &d->drops.v[d->drops.n - 1];
    }
    x->count++;
    if (p && p->proto == NET_PROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        x->syns++;
}

static void rec_health(void *data, const m_health_t *h)
{
    draw_rec_t *d = data;
    dr_health_t *x = NULL;
    for (size_t i = 0; i < d->health.n && !x; i++)
        if (strcmp(d->health.v[i].checker, h->checker) == 0 &&
            strcmp(d->health.v[i].target, h->target) == 0)
            x = &d->health.v[i];
    if (!x) {
        dr_health_t n = {lb_strdup(h->checker), lb_strdup(h->target), NULL, 0, 0, false, 0};
        lb_vec_push(&d->health, n);
        x = &d->health.v[d->health.n - 1];
    }
    if (h->to && strcmp(h->to, "down") == 0) {
        if (!x->downs++) {
            x->first_down = h->t;
            x->reason = lb_strdup(h->reason ? h->reason : "probe failed");
        }
        x->down = true;
    } else if (h->to && strcmp(h->to, "up") == 0 && x->down) {
        x->down = false;
        x->last_up = h->t;
    }
}

static void rec_request(void *data, const m_request_t *q)
{
    draw_rec_t *d = data;
    if (q->cls == M_2XX) {
        if (d->have_success) return;
        d->have_success = true;
    } else {
        for (size_t i = 0; i < d->examples.n; i++)
            if (d->examples.v[i].source == q->source && d->examples.v[i].cls == q->cls) return;
    }
    if (d->examples.n >= DRAW_LADDER_EXAMPLES) return;
    dr_example_t e;
    memset(&e, 0, sizeof e);
    e.source = q->source;
    e.cls = q->cls;
    e.flow = q->flow;
    e.req_id = q->req_id;
    e.t_start = q->t_start;
    e.t_end = q->t_end;
    e.status = q->status;
    snprintf(e.path, sizeof e.path, "%s", q->path ? q->path : "/");
    /* the upstream flows serving it, as the capture's hop recorder follows them */
    for (uint64_t f = q->flow; f && e.n_chain < 8; f = explain_flow_up(d->ex, f)) {
        bool again = false;
        for (size_t i = 0; i < e.n_chain; i++) again |= e.chain[i] == f;
        if (again) break;
        e.chain[e.n_chain++] = f;
    }
    lb_vec_push(&d->examples, e);
}

draw_rec_t *draw_rec_attach(scn_run_t *r, char *err, size_t errlen)
{
    draw_rec_t *d = lb_calloc(1, sizeof *d);
    d->m = scn_run_metrics(r);
    d->ex = scn_run_explain(r);
    scn_sink_t sink;
    memset(&sink, 0, sizeof sink);
    sink.m.request = rec_request;
    sink.m.health = rec_health;
    sink.m.data = d;
    sink.drop = rec_drop;
    sink.data = d;
    if (scn_run_add_sink(r, &sink)) {
        lb_errf(err, errlen, "pictures: no sink slot left on the run");
        lb_free(d);
        return NULL;
    }
    return d;
}

void draw_rec_free(draw_rec_t *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->drops.n; i++) {
        lb_free(d->drops.v[i].owner);
        lb_free(d->drops.v[i].reason_own);
    }
    lb_vec_free(&d->drops);
    for (size_t i = 0; i < d->health.n; i++) {
        lb_free(d->health.v[i].checker);
        lb_free(d->health.v[i].target);
        lb_free(d->health.v[i].reason);
    }
    lb_vec_free(&d->health);
    for (size_t i = 0; i < d->examples.n; i++) {
        dr_example_t *e = &d->examples.v[i];
        lb_free(e->source_name);
        for (size_t k = 0; k < e->notes.n; k++) {
            lb_free(e->notes.v[k].where);
            lb_free(e->notes.v[k].text);
        }
        lb_vec_free(&e->notes);
    }
    lb_vec_free(&d->examples);
    if (d->have_graph) dr_graph_free(&d->g);
    lb_free(d);
}

static void unlink_in(const char *dir, const char *stem, const char *ext)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext);
    unlink(path);
}

/* explain's example of (source, class), or -1. */
static int explain_example(const explain_t *ex, const char *source, int cls)
{
    const char *s;
    int c;
    uint64_t f;
    sim_time_t t;
    for (size_t i = 0; explain_example_at(ex, i, &s, &c, &f, &t); i++)
        if (c == cls && strcmp(s, source) == 0) return (int)i;
    return -1;
}

int draw_rec_write(draw_rec_t *d, scn_t *s, size_t variant, scn_run_t *r,
                   const rep_variant_t *v, const char *dir, char *err, size_t errlen)
{
    char stem[160], name[200];
    draw_variant_stem(s, variant, stem, sizeof stem);
    if (d->have_graph) dr_graph_free(&d->g);
    dr_graph_build(&d->g, s, r);
    d->have_graph = true;
    mark_run(&d->g, d, v);
    snprintf(name, sizeof name, "topology-%s", stem);
    int rc = graph_write(&d->g, dir, name, err, errlen);
    /* what the ladders need from the run, copied: the source names, the chains' notes */
    explain_t *ex = scn_run_explain(r);
    metrics_t *m = scn_run_metrics(r);
    for (size_t i = 0; i < d->examples.n; i++) {
        dr_example_t *e = &d->examples.v[i];
        const char *src = metrics_source_name(m, e->source);
        lb_free(e->source_name);
        e->source_name = lb_strdup(src ? src : "?");
        int xi = e->cls == M_2XX ? -1 : explain_example(ex, e->source_name, e->cls);
        sim_time_t nt;
        const char *where, *text;
        uint64_t nf;
        for (size_t k = 0; xi >= 0 &&
             explain_example_note(ex, (size_t)xi, k, &nt, &where, &nf, &text); k++) {
            dr_note_t n = {nt, nf, lb_strdup(where), lb_strdup(text)};
            lb_vec_push(&e->notes, n);
        }
    }
    d->complete = scn_run_complete(r) && !scn_stop_requested();
    return rc;
}

int draw_rec_finish(draw_rec_t *d, scn_t *s, size_t variant, uint64_t seed, const char *dir,
                    const draw_render_opts_t *ro, char *err, size_t errlen)
{
    char stem[160], name[200];
    draw_variant_stem(s, variant, stem, sizeof stem);
    snprintf(name, sizeof name, "ladder-%s", stem);
    unlink_in(dir, name, "svg");
    unlink_in(dir, name, "png");
    unlink_in(dir, name, "mmd");
    int rc = 0;
    if (d->have_graph && d->complete && !scn_stop_requested())
        rc = dr_ladder_write(d, &d->g, s, variant, seed, dir, name, err, errlen);
    if (!rc && ro) {
        rc = draw_render_file(dir, name, ro, err, errlen);
        snprintf(name, sizeof name, "topology-%s", stem);
        if (!rc) rc = draw_render_file(dir, name, ro, err, errlen);
    }
    return rc;
}

int draw_design_write(scn_t *s, size_t variant, uint64_t seed, const char *dir,
                      const char *stem, scn_diag_t *dg)
{
    scn_run_t *r;
    if (scn_run_new(s, variant, seed, &r, dg)) return LB_EINVAL;
    sim_run(scn_run_sim(r), 0);                 /* t = 0 set-up: rule syncs, addresses */
    dr_graph_t g;
    dr_graph_build(&g, s, r);
    lb_free(g.title);
    g.title = lb_sprintf("%s: %s, as built", scn_name(s), scn_variant_name(s, variant));
    memset(dg, 0, sizeof *dg);
    int rc = graph_write(&g, dir, stem, dg->msg, sizeof dg->msg);
    dr_graph_free(&g);
    scn_run_free(r);
    return rc;
}

/* ---- rendering -------------------------------------------------------------------------- */

/* Renames dir/.<stem>.<ext>.tmp to dir/<stem>.<ext>; false (and unlinks it) on failure. */
static bool put_in_place(const char *dir, const char *stem, const char *ext, bool keep)
{
    char tmp[4400], dst[4400];
    snprintf(tmp, sizeof tmp, "%s/.%s.%s.tmp", dir, stem, ext);
    snprintf(dst, sizeof dst, "%s/%s.%s", dir, stem, ext);
    struct stat st;
    if (keep && !stat(tmp, &st) && st.st_size > 0 && !rename(tmp, dst)) return true;
    unlink(tmp);
    return false;
}

int draw_render_file(const char *dir, const char *stem, const draw_render_opts_t *o, char *err,
                     size_t errlen)
{
    bool ladder = strncmp(stem, "ladder-", 7) == 0;
    char prog[4096], in[4400], t1[4400], t2[4400];
    if (o && o->stop && *o->stop) {
        lb_errf(err, errlen, "interrupted: pictures skipped");
        return LB_ESTATE;
    }
    if (!ladder) unlink_in(dir, stem, "svg");
    unlink_in(dir, stem, "png");
    snprintf(in, sizeof in, "%s/%s.%s", dir, stem, ladder ? "svg" : "dot");
    if (access(in, R_OK) != 0) return 0;        /* nothing to draw */
    if (!rep_helper_find(ladder ? "rsvg-convert" : "dot", prog, sizeof prog)) return 0;
    rep_helper_opts_t ho = {o ? o->timeout_s : 0, o ? o->stop : NULL};
    char *out;
    size_t outlen;
    int rc;
    if (ladder) {
        snprintf(t1, sizeof t1, "-o%s/.%s.png.tmp", dir, stem);
        const char *const argv[] = {"rsvg-convert", "-f", "png", "-b", "white", t1, in, NULL};
        rc = rep_helper_run(prog, argv, "", 0, &out, &outlen, &ho, err, errlen);
    } else {                                    /* one dot: the SVG and the PNG */
        snprintf(t1, sizeof t1, "-o%s/.%s.svg.tmp", dir, stem);
        snprintf(t2, sizeof t2, "-o%s/.%s.png.tmp", dir, stem);
        const char *const argv[] = {"dot", "-Tsvg", t1, "-Tpng", t2, in, NULL};
        rc = rep_helper_run(prog, argv, "", 0, &out, &outlen, &ho, err, errlen);
    }
    if (!rc) lb_free(out);
    bool ok = put_in_place(dir, stem, "png", !rc);
    if (!ladder) ok = put_in_place(dir, stem, "svg", !rc && ok) && ok;
    if (!rc && !ok) {
        lb_errf(err, errlen, "%s wrote no %s/%s.%s", ladder ? "rsvg-convert" : "dot", dir, stem,
                ladder ? "png" : "svg");
        rc = LB_EIO;
    }
    if (rc) {                                   /* never half a picture */
        unlink_in(dir, stem, "png");
        if (!ladder) unlink_in(dir, stem, "svg");
    }
    return rc;
}

int draw_render_check(char *err, size_t errlen)
{
    char prog[4096];
    if (!rep_helper_find("dot", prog, sizeof prog)) {
        lb_errf(err, errlen, "graphviz not found: pictures skipped");
        return LB_ENOENT;
    }
    if (!rep_helper_find("rsvg-convert", prog, sizeof prog)) {
        lb_errf(err, errlen, "rsvg-convert not found: ladder PNGs skipped");
        return LB_ENOENT;
    }
    return 0;
}

/* plan.c -- what real mode will send, resolved against a built run: each traffic source
 * of the run (app_http_client_t, with the options the scenario gave it) and each health
 * checker the models configured (health_t, with its parameters and targets), every
 * simulated destination mapped to a real one through the bindings (docs/BINDINGS.md):
 *
 *   address: what owns it in the run  ->  bindings section
 *     `addresses` literal                            addresses
 *     a frontend an element published (build_put_addrs)   elements (one per address)
 *     a cluster node's NIC / a pod's IP              nodes / pods
 *     any other node's local address (hosts)         nodes
 *   port: endpoint `ports` / `:PORT`, else a Service's nodePort or healthCheckNodePort
 *     (services), else the top-level `ports`, else the same port.
 *
 * Everything that is not bound is collected and reported in one message; names in the
 * bindings that the variant does not have are errors with their file:line:col. Open-loop
 * schedules are computed here, ahead, from fresh copies of the simulator's streams. */
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "real_int.h"
#include "cluster.h"
#include "element.h"

/* Open-loop rates are compared with the cap with this much slack (floating point). */
#define RATE_EPSILON 1e-9

typedef struct unbound { char *section, *name, *use; } unbound_t;

typedef struct pl {
    real_plan_t *p;
    const real_bindings_t *b;
    scn_run_t *r;
    net_t *net;
    LB_VEC(unbound_t) unb;
    LB_VEC(cluster_t *) clusters;
    char *err;                      /* first hard error (a bound name not in the variant) */
    LB_VEC(char *) rate_err;        /* rates above the cap */
} pl_t;

enum { OWN_ADDRESS, OWN_ELEMENT, OWN_NODE, OWN_POD };
static const char *const own_section[] = {"addresses", "elements", "nodes", "pods"};

void real_opts_init(real_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->max_rate = REAL_MAX_RATE_DEFAULT;
    o->out = stdout;
    o->threads = 1;
}

/* "file:line:col: error: " + message, the first one kept. */
static void hard_error(pl_t *l, elem_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hard_error(pl_t *l, elem_pos_t pos, const char *fmt, ...)
{
    if (l->err) return;
    va_list ap;
    va_start(ap, fmt);
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    l->err = lb_sprintf("%s:%d:%d: error: %s", pos.file, pos.line, pos.col, msg);
}

static void add_unbound(pl_t *l, const char *section, const char *name, const char *use)
{
    for (size_t i = 0; i < l->unb.n; i++)
        if (!strcmp(l->unb.v[i].section, section) && !strcmp(l->unb.v[i].name, name)) return;
    unbound_t u = {lb_strdup(section), lb_strdup(name), lb_strdup(use)};
    lb_vec_push(&l->unb, u);
}

static const rb_named_t *named_find(const rb_names_t *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->v[i].name, name)) return &v->v[i];
    return NULL;
}

/* What owns simulated address addr in the run. */
static int owner(pl_t *l, uint32_t addr, const char **name, size_t *index)
{
    *index = 0;
    const char *nm;
    uint32_t a[64];
    for (size_t i = 0; scn_run_object(l->r, "addrs", i, &nm); i++) {
        size_t n = scn_run_addrs(l->r, nm, a, 64);
        for (size_t k = 0; k < n && k < 64; k++)
            if (a[k] == addr) {
                *name = nm;
                *index = k;
                return OWN_ELEMENT;
            }
    }
    for (size_t c = 0; c < l->clusters.n; c++) {
        cluster_t *cl = l->clusters.v[c];
        for (size_t i = 0; i < cluster_node_count(cl); i++) {
            cluster_node_t *cn = cluster_node_at(cl, i);
            if (cn->nic && cn->nic->addr == addr) {
                *name = cn->node->name;
                return OWN_NODE;
            }
        }
        for (size_t i = 0; i < cluster_pod_count(cl); i++)
            if (cluster_pod_at(cl, i)->ip == addr) {
                *name = cluster_pod_at(cl, i)->name;
                return OWN_POD;
            }
    }
    for (size_t i = 0; i < net_node_count(l->net); i++) {
        net_node_t *n = net_node_at(l->net, i);
        if (net_node_is_local(n, addr)) {
            *name = n->name;
            return OWN_NODE;
        }
    }
    *name = NULL;
    return OWN_ADDRESS;
}

/* The endpoint bound to simulated address addr, or NULL (unbound, recorded; or
 * `unbound: simulated`, *identity set). */
static const rb_endpoint_t *endpoint_for(pl_t *l, uint32_t addr, const char *use,
                                         bool *identity)
{
    *identity = false;
    char ip[16];
    lb_ip_str(addr, ip);
    const rb_named_t *nm = named_find(&l->b->addresses, ip);
    if (nm) return &nm->eps.v[0];
    const char *name;
    size_t index;
    int kind = owner(l, addr, &name, &index);
    if (kind != OWN_ADDRESS) {
        const rb_names_t *sec = kind == OWN_ELEMENT ? &l->b->elements
                              : kind == OWN_NODE ? &l->b->nodes : &l->b->pods;
        nm = named_find(sec, name);
        if (nm) {
            if (nm->eps.n == 1) return &nm->eps.v[0];     /* one endpoint for all */
            if (index < nm->eps.n) return &nm->eps.v[index];
            uint32_t a[64];
            hard_error(l, nm->vpos, "elements: %s has %zu frontend addresses; the list gives "
                       "%zu (one endpoint for all, or one per address)", name,
                       scn_run_addrs(l->r, name, a, 64), nm->eps.n);
            return NULL;
        }
    }
    if (l->b->unbound_simulated) {
        *identity = true;
        return NULL;
    }
    char label[300];
    if (kind == OWN_ELEMENT && index > 0) snprintf(label, sizeof label, "%s (address %zu)", name, index + 1);
    add_unbound(l, own_section[kind], kind == OWN_ADDRESS ? ip : kind == OWN_ELEMENT && index > 0
                ? label : name, use);
    return NULL;
}

/* The real port for simulated port `port` of a destination bound to ep (NULL: identity
 * or unbound). */
static int port_for(pl_t *l, const rb_endpoint_t *ep, int port, const char *use)
{
    if (ep) {
        for (size_t i = 0; i < ep->ports.n; i++)
            if (ep->ports.v[i].sim == port) return ep->ports.v[i].real;
        if (ep->port) return ep->port;
    }
    for (size_t c = 0; c < l->clusters.n; c++) {
        cluster_t *cl = l->clusters.v[c];
        for (size_t s = 0; s < cluster_service_count(cl); s++) {
            const k8s_service_t *svc = cluster_service_at(cl, s);
            char ref[300];
            snprintf(ref, sizeof ref, "%s/%s", svc->meta.ns, svc->meta.name);
            const rb_service_t *sb = NULL;
            for (size_t k = 0; k < l->b->services.n && !sb; k++)
                if (!strcmp(l->b->services.v[k].name, ref)) sb = &l->b->services.v[k];
            if (svc->health_check_node_port == port) {
                if (sb && sb->hcnp) return sb->hcnp;
                if (l->b->unbound_simulated) return port;
                char what[400], u[600];
                snprintf(what, sizeof what, "%s health-check-node-port", ref);
                snprintf(u, sizeof u, "simulated %d; %s", port, use);
                add_unbound(l, "services", what, u);
                return port;
            }
            for (size_t q = 0; q < svc->ports.n; q++) {
                const k8s_service_port_t *sp = &svc->ports.v[q];
                if (sp->node_port != port) continue;
                for (size_t k = 0; sb && k < sb->node_ports.n; k++) {
                    const rb_nodeport_t *np = &sb->node_ports.v[k];
                    if ((np->port_name && sp->name && !strcmp(np->port_name, sp->name)) ||
                        (!np->port_name && np->port_num == sp->port))
                        return np->real;
                }
                if (l->b->unbound_simulated) return port;
                char what[400], u[600];
                snprintf(what, sizeof what, "%s node-ports: %s", ref, sp->name ? sp->name : "");
                if (!sp->name) snprintf(what, sizeof what, "%s node-ports: %d", ref, sp->port);
                snprintf(u, sizeof u, "simulated nodePort %d; %s", port, use);
                add_unbound(l, "services", what, u);
                return port;
            }
        }
    }
    for (size_t i = 0; i < l->b->ports.n; i++)
        if (l->b->ports.v[i].sim == port) return l->b->ports.v[i].real;
    return port;
}

/* Resolves simulated addr:port into *host (owned) and *port; false when unbound. */
static bool resolve(pl_t *l, uint32_t addr, int sport, const char *use, char **host, int *port)
{
    bool identity;
    const rb_endpoint_t *ep = endpoint_for(l, addr, use, &identity);
    size_t before = l->unb.n;
    *port = port_for(l, ep, sport, use);
    if (!ep && !identity) return false;
    char ip[16];
    *host = lb_strdup(ep ? ep->host : lb_ip_str(addr, ip));
    return l->unb.n == before;
}

/* ---- checks of the bindings against the variant ---------------------------------------------- */

/* A bound name must be one of names[0..n) of the variant: else an error at its position,
 * with the closest existing name. */
static void must_exist(pl_t *l, const char *section, const char *what, const char *name,
                       elem_pos_t pos, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(names[k], name)) return;
    const char *close = elem_closest(name, names, n);
    hard_error(l, pos, "%s: '%s' is not %s of variant %s%s%s%s", section, name, what,
               scn_run_variant(l->r), close ? " (did you mean '" : "", close ? close : "",
               close ? "'?)" : "");
}

static void check_names(pl_t *l)
{
    const real_bindings_t *b = l->b;
    scn_t *s = scn_run_scenario(l->r);
    if (b->scenario && strcmp(b->scenario, scn_name(s)))
        hard_error(l, b->scenario_pos, "these bindings are for scenario '%s', not '%s'",
                   b->scenario, scn_name(s));
    /* traffic sources, elements that published frontends, nodes */
    LB_VEC(const char *) names = {0};
    app_http_client_t *c;
    for (size_t i = 0; (c = net_app_at(l->net, APP_HTTP_CLIENT_KIND, i)); i++)
        lb_vec_push(&names, app_http_client_opts(c)->name);
    for (size_t i = 0; i < b->traffic.n; i++)
        must_exist(l, "traffic", "a traffic source", b->traffic.v[i].name, b->traffic.v[i].pos,
                   names.v, names.n);
    names.n = 0;
    const char *nm;
    for (size_t i = 0; scn_run_object(l->r, "addrs", i, &nm); i++) lb_vec_push(&names, nm);
    for (size_t i = 0; i < b->elements.n; i++)
        must_exist(l, "elements", "an element with a frontend", b->elements.v[i].name,
                   b->elements.v[i].pos, names.v, names.n);
    names.n = 0;
    for (size_t i = 0; i < net_node_count(l->net); i++)
        lb_vec_push(&names, net_node_at(l->net, i)->name);
    for (size_t i = 0; i < b->nodes.n; i++)
        must_exist(l, "nodes", "a node", b->nodes.v[i].name, b->nodes.v[i].pos, names.v,
                   names.n);
    lb_vec_free(&names);
    /* pods: other variants may have other replicas -- a warning */
    for (size_t i = 0; i < b->pods.n; i++) {
        bool found = false;
        for (size_t c2 = 0; c2 < l->clusters.n && !found; c2++)
            found = cluster_pod_find(l->clusters.v[c2], b->pods.v[i].name) != NULL;
        if (!found)
            fprintf(stderr, "%s:%d:%d: warning: pods: '%s' is not a pod of variant %s\n",
                    b->pods.v[i].pos.file, b->pods.v[i].pos.line, b->pods.v[i].pos.col,
                    b->pods.v[i].name, scn_run_variant(l->r));
    }
    /* services and their ports */
    for (size_t i = 0; i < b->services.n; i++) {
        const rb_service_t *sb = &b->services.v[i];
        const k8s_service_t *svc = NULL;
        for (size_t c2 = 0; c2 < l->clusters.n && !svc; c2++)
            svc = cluster_service_ref(l->clusters.v[c2], sb->name);
        if (!svc) {
            hard_error(l, sb->pos, "services: '%s' is not a Service of variant %s", sb->name,
                       scn_run_variant(l->r));
            continue;
        }
        for (size_t k = 0; k < sb->node_ports.n; k++) {
            const rb_nodeport_t *np = &sb->node_ports.v[k];
            bool found = false;
            for (size_t q = 0; q < svc->ports.n && !found; q++)
                found = np->port_name ? svc->ports.v[q].name && !strcmp(np->port_name,
                                                                        svc->ports.v[q].name)
                                      : np->port_num == svc->ports.v[q].port;
            if (!found) {
                char ports[256] = "";
                for (size_t q = 0; q < svc->ports.n; q++) {
                    size_t len = strlen(ports);
                    snprintf(ports + len, sizeof ports - len, "%s%s (%d)", q ? ", " : "",
                             svc->ports.v[q].name ? svc->ports.v[q].name : "-",
                             svc->ports.v[q].port);
                }
                hard_error(l, np->pos, "services: %s has no port '%s' (its ports: %s)",
                           sb->name, np->port_name ? np->port_name : "", ports);
            }
        }
    }
}

/* ---- traffic sources -------------------------------------------------------------------------- */

static const rb_traffic_t *traffic_bind(const real_bindings_t *b, const char *name)
{
    for (size_t i = 0; i < b->traffic.n; i++)
        if (!strcmp(b->traffic.v[i].name, name)) return &b->traffic.v[i];
    return NULL;
}

static void source_free(rp_source_t *s)
{
    for (size_t i = 0; i < s->dests.n; i++) {
        lb_free(s->dests.v[i].url_base);
        lb_free(s->dests.v[i].connect_to);
    }
    lb_vec_free(&s->dests);
    for (size_t i = 0; i < s->nodes.n; i++) {
        if (s->nodes.v[i].rng) gsl_rng_free(s->nodes.v[i].rng);
        if (s->nodes.v[i].kind_rng) gsl_rng_free(s->nodes.v[i].kind_rng);
        lb_free(s->nodes.v[i].times);
    }
    lb_vec_free(&s->nodes);
    for (size_t i = 0; i < s->n_kinds; i++) {
        curl_slist_free_all(s->kinds[i].hdrs);
        lb_free(s->kinds[i].body);
    }
    lb_free(s->kinds);
    lb_free(s->host_header);
    lb_free(s->c_delayed);
    lb_free(s);
}

/* The request kinds of client c as libcurl sends them: each kind's header list (its Host,
 * its headers, no Accept of libcurl's own, Connection: close without keep-alive, an empty
 * Expect: so that a body goes at once, as the simulated client sends it) and body bytes,
 * built once. */
static void plan_kinds(rp_source_t *s, const app_http_client_t *c)
{
    size_t n;
    const app_req_spec_t *k = app_http_client_kinds(c, &n);
    s->kinds = lb_calloc(n, sizeof *s->kinds);
    s->n_kinds = n;
    for (size_t i = 0; i < n; i++) {
        rp_kind_t *rk = &s->kinds[i];
        rk->spec = &k[i];
        if (k[i].host) {
            char *h = lb_sprintf("Host: %s", k[i].host);
            rk->hdrs = curl_slist_append(rk->hdrs, h);
            lb_free(h);
        }
        for (size_t j = 0; j < k[i].n_hdrs; j++) {
            /* "Name;" is curl's way to send a header with an empty value */
            char *h = *k[i].hdr_values[j] ? lb_sprintf("%s: %s", k[i].hdr_names[j],
                                                       k[i].hdr_values[j])
                                          : lb_sprintf("%s;", k[i].hdr_names[j]);
            rk->hdrs = curl_slist_append(rk->hdrs, h);
            lb_free(h);
        }
        /* without libcurl's default Accept header (any type), unless the kind sets one, the
         * request is the simulated client's: request line, Host, its headers, Content-Length */
        bool accept = false;
        for (size_t j = 0; j < k[i].n_hdrs; j++) accept |= !strcasecmp(k[i].hdr_names[j], "Accept");
        if (!accept) rk->hdrs = curl_slist_append(rk->hdrs, "Accept:");
        if (!s->o->keepalive) rk->hdrs = curl_slist_append(rk->hdrs, "Connection: close");
        if (k[i].body_size > 0) {
            rk->hdrs = curl_slist_append(rk->hdrs, "Expect:");
            rk->body_len = k[i].body_size < REAL_BODY_MAX ? (long)k[i].body_size : REAL_BODY_MAX;
            rk->body = lb_calloc((size_t)rk->body_len, 1);
            if (k[i].body) {
                size_t bl = strlen(k[i].body);
                memcpy(rk->body, k[i].body, bl < (size_t)rk->body_len ? bl : (size_t)rk->body_len);
            }
        }
    }
}

static void plan_source(pl_t *l, app_http_client_t *c)
{
    const app_http_client_opts_t *o = app_http_client_opts(c);
    rp_source_t *s = lb_calloc(1, sizeof *s);
    lb_vec_push(&l->p->sources, s);
    s->o = o;
    s->name = o->name;
    s->metric = metrics_source(scn_run_metrics(l->r), o->name);
    s->bind = traffic_bind(l->b, o->name);
    s->tls = s->bind && s->bind->tls.set ? &s->bind->tls : &l->b->tls;
    s->c_delayed = lb_sprintf("real.%s.delayed", o->name);
    bool host = o->host && *o->host;
    if (host) s->host_header = lb_sprintf("Host: %s", o->host);
    plan_kinds(s, c);
    s->max_rate = l->p->max_rate;
    if (s->bind && s->bind->max_rate > 0 && s->bind->max_rate < s->max_rate)
        s->max_rate = s->bind->max_rate;
    s->max_in_flight = s->bind && s->bind->max_in_flight ? s->bind->max_in_flight
                                                         : REAL_MAX_IN_FLIGHT_DEFAULT;
    if (s->bind && s->bind->url) {
        const rb_traffic_t *t = s->bind;
        bool tls = !strcmp(t->scheme, "https");
        int port = t->url_port ? t->url_port : tls ? 443 : 80;
        /* addressed to the scenario's host (Host and SNI), connected to url's host */
        bool by_host = host && !strchr(o->host, ':');
        const char *uhost = by_host ? o->host : t->url_host;
        rp_dest_t d = {lb_sprintf("%s://%s:%d", t->scheme, uhost, port), NULL};
        if (t->connect_to) {
            const char *colon = strchr(t->connect_to, ':');
            d.connect_to = colon ? lb_sprintf("%s:%d:%s", uhost, port, t->connect_to)
                                 : lb_sprintf("%s:%d:%s:%d", uhost, port, t->connect_to, port);
        } else if (by_host && strcmp(o->host, t->url_host)) {
            d.connect_to = lb_sprintf("%s:%d:%s:%d", uhost, port, t->url_host, port);
        }
        lb_vec_push(&s->dests, d);
    } else {
        for (size_t i = 0; i < o->n_targets; i++) {
            char ip[16], use[300];
            snprintf(use, sizeof use, "traffic %s -> %s:%u", o->name, lb_ip_str(o->targets[i], ip),
                     (unsigned)o->port);
            char *h = NULL;
            int port;
            if (!resolve(l, o->targets[i], o->port, use, &h, &port)) {
                lb_free(h);
                continue;
            }
            rp_dest_t d = {lb_sprintf("http://%s:%d", h, port), NULL};
            lb_free(h);
            lb_vec_push(&s->dests, d);
        }
    }
    /* the rate cap: open loop is checked here, closed loop is paced while running */
    if (o->mode == APP_CLIENT_OPEN && o->rate > s->max_rate + RATE_EPSILON) {
        char *m = lb_sprintf("traffic %s sends %g requests/s, above the %s of %g/s: nothing "
                             "was sent (raise it with %s, or lower the scenario's rate with "
                             "--set traffic.%s.rate=%g/s)", o->name, o->rate,
                             s->max_rate < l->p->max_rate ? "bindings' max-rate" : "cap",
                             s->max_rate, s->max_rate < l->p->max_rate
                             ? "max-rate in the bindings" : "--max-rate N", o->name,
                             s->max_rate);
        lb_vec_push(&l->rate_err, m);
    }
    sim_t *sim = scn_run_sim(l->r);
    size_t n = app_http_client_node_count(c);
    for (size_t i = 0; i < n; i++) {
        rp_cnode_t cn = {.src = s, .idx = i};
        char *stream = app_http_client_stream(c, i);
        cn.rng = sim_rng_fresh(sim, stream);
        lb_free(stream);
        if (s->n_kinds > 1) {
            stream = app_http_client_kind_stream(c, i);
            cn.kind_rng = sim_rng_fresh(sim, stream);
            lb_free(stream);
        }
        /* each node's rotation starts at its own target, as the simulated client's */
        cn.next_dest = s->dests.n ? i % s->dests.n : 0;
        if (o->mode == APP_CLIENT_OPEN) {
            app_arrivals_t a;
            if (app_arrivals_init(&a, o, i, n, cn.rng)) {
                LB_VEC(sim_time_t) v = {0};
                sim_time_t t;
                while ((t = app_arrivals_next(&a, 0)) >= 0 && t < scn_run_duration(l->r)) {
                    lb_vec_push(&v, t);
                    a.issued++;
                }
                cn.times = v.v;
                cn.n_times = v.n;
                s->planned += v.n;
            }
        }
        lb_vec_push(&s->nodes, cn);
    }
}

/* ---- health checkers ---------------------------------------------------------------------------- */

static bool glob_any(char *const *globs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], name, 0) == 0) return true;
    return false;
}

static void checker_free(rp_checker_t *ck)
{
    for (size_t i = 0; i < ck->targets.n; i++) {
        lb_free(ck->targets.v[i].host);
        lb_free(ck->targets.v[i].url);
        lb_free(ck->targets.v[i].host_header);
        lb_free(ck->targets.v[i].connect_to);
    }
    lb_vec_free(&ck->targets);
    lb_free(ck->c_ok);
    lb_free(ck->c_fail);
    lb_free(ck->c_up);
    lb_free(ck->c_down);
    lb_free(ck);
}

static void plan_checker(pl_t *l, const health_t *hc)
{
    const char *name = health_name(hc);
    if (l->p->o.n_checkers && !glob_any((char *const *)l->p->o.checkers, l->p->o.n_checkers, name))
        return;
    if (glob_any(l->b->skip.v, l->b->skip.n, name)) return;
    rp_checker_t *ck = lb_calloc(1, sizeof *ck);
    lb_vec_push(&l->p->checkers, ck);
    ck->hc = hc;
    ck->name = name;
    ck->p = health_params(hc);
    ck->c_ok = lb_sprintf("probe.%s.ok", name);
    ck->c_fail = lb_sprintf("probe.%s.fail", name);
    ck->c_up = lb_sprintf("health.%s.up", name);
    ck->c_down = lb_sprintf("health.%s.down", name);
    for (size_t i = 0; i < health_target_count(hc); i++) {
        uint32_t addr = health_target_addr(hc, i);
        int sport = health_target_port(hc, i);
        char ip[16], use[300];
        snprintf(use, sizeof use, "%s probes %s:%d", name, lb_ip_str(addr, ip), sport);
        rp_target_t t = {.ck = ck, .idx = i, .label = health_target_label(hc, i),
                         .first = health_target_first(hc, i)};
        if (!resolve(l, addr, sport, use, &t.host, &t.port)) {
            lb_free(t.host);
            continue;
        }
        const char *sni = ck->p->tls ? ck->p->tls_cfg.sni : NULL;
        if (ck->p->proto == HEALTH_HTTP && sni && *sni && !tls_is_ip_literal(sni)) {
            /* the simulated probe's SNI (tls.h): curl sends the URL's host name */
            t.url = lb_sprintf("https://%s:%d%s", sni, t.port, ck->p->path);
            t.connect_to = lb_sprintf("%s:%d:%s:%d", sni, t.port, t.host, t.port);
        } else if (ck->p->proto == HEALTH_HTTP)
            t.url = lb_sprintf("%s://%s:%d%s", ck->p->tls ? "https" : "http", t.host, t.port,
                               ck->p->path);
        else
            t.url = lb_sprintf("http://%s:%d/", t.host, t.port);   /* CONNECT_ONLY */
        if (ck->p->host && *ck->p->host) t.host_header = lb_sprintf("Host: %s", ck->p->host);
        health_sm_init(&t.sm, ck->p);
        lb_vec_push(&ck->targets, t);
    }
}

/* ---- the plan --------------------------------------------------------------------------------- */

static char *unbound_message(pl_t *l)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) abort();
    scn_t *sc = scn_run_scenario(l->r);
    fprintf(f, "%s: error: variant %s of %s needs these names bound:\n", l->b->path,
            scn_run_variant(l->r), scn_name(sc));
    bool pods = false;
    static const char *const order[] = {"elements", "nodes", "services", "pods", "addresses"};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        for (size_t i = 0; i < l->unb.n; i++) {
            const unbound_t *u = &l->unb.v[i];
            if (strcmp(u->section, order[k])) continue;
            char head[400];
            snprintf(head, sizeof head, "%s: %s", u->section, u->name);
            fprintf(f, "  %-40s (%s)\n", head, u->use);
            pods |= !strcmp(u->section, "pods");
        }
    fprintf(f, "  (or skip health checkers you do not want run: skip: [\"%s\"]; "
            "docs/BINDINGS.md)", pods ? "kubelet:*" : "NAME-GLOB");
    fclose(f);
    char *out = lb_strdup(s);
    free(s);
    return out;
}

int real_plan_new(const real_bindings_t *b, scn_run_t *r, const real_opts_t *o,
                  real_plan_t **out, char **err)
{
    *out = NULL;
    *err = NULL;
    real_plan_t *p = lb_calloc(1, sizeof *p);
    p->run = r;
    p->b = b;
    p->o = *o;
    p->max_rate = o->max_rate > 0 ? o->max_rate : REAL_MAX_RATE_DEFAULT;
    pl_t l = {.p = p, .b = b, .r = r, .net = scn_run_net(r)};
    void *obj;
    for (size_t i = 0; (obj = scn_run_object(r, "cluster", i, NULL)); i++)
        lb_vec_push(&l.clusters, (cluster_t *)obj);
    check_names(&l);
    if (!o->probes_only && !o->watch) {
        app_http_client_t *c;
        for (size_t i = 0; (c = net_app_at(l.net, APP_HTTP_CLIENT_KIND, i)); i++)
            plan_source(&l, c);
        double total = 0;
        for (size_t i = 0; i < p->sources.n; i++)
            if (p->sources.v[i]->o->mode == APP_CLIENT_OPEN) total += p->sources.v[i]->o->rate;
        if (total > p->max_rate + RATE_EPSILON && !l.rate_err.n)
            lb_vec_push(&l.rate_err, lb_sprintf("the traffic sources send %g requests/s "
                        "together, above the cap of %g/s: nothing was sent (raise it with "
                        "--max-rate N)", total, p->max_rate));
    }
    health_t *hc;
    for (size_t i = 0; (hc = net_app_at(l.net, HEALTH_APP_KIND, i)); i++) plan_checker(&l, hc);
    int rc = 0;
    if (l.err) {
        *err = l.err;
        l.err = NULL;
        rc = LB_EINVAL;
    } else if (l.unb.n) {
        *err = unbound_message(&l);
        rc = LB_EINVAL;
    } else if (l.rate_err.n) {
        *err = lb_sprintf("%s: error: %s", scn_file(scn_run_scenario(r)), l.rate_err.v[0]);
        rc = LB_EINVAL;
    } else if (!p->sources.n && !p->checkers.n) {
        *err = lb_sprintf("%s: error: nothing to send in variant %s: no traffic source%s and "
                          "no health checker left (skip: and --checker select them)", b->path,
                          scn_run_variant(r), o->probes_only || o->watch ? " (probes only)" : "");
        rc = LB_EINVAL;
    }
    for (size_t i = 0; i < l.unb.n; i++) {
        lb_free(l.unb.v[i].section);
        lb_free(l.unb.v[i].name);
        lb_free(l.unb.v[i].use);
    }
    lb_vec_free(&l.unb);
    for (size_t i = 0; i < l.rate_err.n; i++) lb_free(l.rate_err.v[i]);
    lb_vec_free(&l.rate_err);
    lb_vec_free(&l.clusters);
    lb_free(l.err);
    if (rc) {
        real_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void real_plan_free(real_plan_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->sources.n; i++) source_free(p->sources.v[i]);
    lb_vec_free(&p->sources);
    for (size_t i = 0; i < p->checkers.n; i++) checker_free(p->checkers.v[i]);
    lb_vec_free(&p->checkers);
    lb_free(p);
}

void real_plan_counts(const real_plan_t *p, uint64_t *requests, size_t *checkers,
                      size_t *targets)
{
    uint64_t n = 0;
    size_t t = 0;
    for (size_t i = 0; i < p->sources.n; i++) n += p->sources.v[i]->planned;
    for (size_t i = 0; i < p->checkers.n; i++) t += p->checkers.v[i]->targets.n;
    if (requests) *requests = n;
    if (checkers) *checkers = p->checkers.n;
    if (targets) *targets = t;
}

uint64_t real_plan_delayed(const real_plan_t *p) { return p->delayed; }

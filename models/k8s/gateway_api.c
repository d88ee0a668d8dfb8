/* gateway_api.c -- one Gateway listener's effective HTTPRoute table (see gateway_api.h for
 * the sources). Building: every route with a parentRef to the Gateway gets an Accepted
 * condition (parentRef sectionName/port -> listeners; allowedRoutes kinds and namespaces;
 * hostname intersection), a ResolvedRefs condition (backendRef kind, ReferenceGrant,
 * Service existence), and -- if attached to this listener -- one table entry per
 * (effective hostname, rule, match). Entries are sorted once by the precedence of
 * httproute_types.go; matching walks them and the first entry that matches wins.
 * Invariant: t->entries is sorted by entry_cmp and every entry's route is attached. */
#include <assert.h>
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "gateway_api.h"

const char *gw_reason_str(gw_reason_t r)
{
    switch (r) {
    case GW_REASON_ACCEPTED: return "Accepted";
    case GW_REASON_NOT_ALLOWED_BY_LISTENERS: return "NotAllowedByListeners";
    case GW_REASON_NO_MATCHING_LISTENER_HOSTNAME: return "NoMatchingListenerHostname";
    case GW_REASON_NO_MATCHING_PARENT: return "NoMatchingParent";
    case GW_REASON_UNSUPPORTED_VALUE: return "UnsupportedValue";
    case GW_REASON_RESOLVED_REFS: return "ResolvedRefs";
    case GW_REASON_REF_NOT_PERMITTED: return "RefNotPermitted";
    case GW_REASON_BACKEND_NOT_FOUND: return "BackendNotFound";
    case GW_REASON_INVALID_KIND: return "InvalidKind";
    }
    return "Unknown";
}

/* ---- data ---------------------------------------------------------------------------------- */
typedef struct smatch {             /* a header or query-parameter matcher */
    const char *name, *value;
    regex_t *re;                    /* RegularExpression type, else NULL */
} smatch_t;

/* URI match ranks of Istio's getURIRank: Exact > Prefix > Regex. */
enum { RANK_REGEX = 1, RANK_PREFIX = 2, RANK_EXACT = 3 };

typedef struct entry {
    const gw_route_status_t *rs;
    const gw_route_match_t *m;
    size_t rule, match;
    const char *host;               /* effective hostname ("*": any) */
    int host_exact, host_len;       /* ranking hostname: non-wildcard chars, chars */
    int path_rank, path_len;
    char *path;                     /* normalised value (owned) */
    regex_t *path_re;
    const char *method;
    smatch_t *hdrs, *qs;
    size_t n_hdrs, n_qs;
    gw_cond_t *conds;               /* method, headers, queries, regex path: for walks */
    size_t n_conds;
    const char *route_key;          /* "{namespace}/{name}" */
    int order;                      /* creationTimestamp stand-in */
    gw_hit_t hit;
} entry_t;

typedef struct route_priv {
    char *key;                      /* "{namespace}/{name}" */
    const char **orig;              /* per effective hostname: the hostname to rank by */
} route_priv_t;

struct gw_table {
    const k8s_gateway_t *gw;
    const gw_listener_t *l;
    gw_table_opts_t opts;
    gw_route_status_t *routes;
    route_priv_t *priv;
    size_t n_routes;
    entry_t *entries;
    size_t n_entries;
};

/* The default of HTTPRouteRule.matches: one PathPrefix "/". */
static const gw_route_match_t default_match = { .path_type = GW_PATH_PREFIX, .path = "/" };

static const char *ns_of(const k8s_meta_t *m)
{
    return m->ns ? m->ns : "default";
}

static void cond_set(gw_condition_t *c, bool status, gw_reason_t reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cond_set(gw_condition_t *c, bool status, gw_reason_t reason, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lb_free(c->message);
    c->status = status;
    c->reason = reason;
    c->message = lb_strdup(buf);
}

/* ---- hostnames ------------------------------------------------------------------------------ */
static bool is_any(const char *h)
{
    return !h || !*h || (h[0] == '*' && !h[1]);
}

static bool is_wild(const char *h)
{
    return h[0] == '*' && h[1] == '.';
}

/* name (exact or "*.x") lies within wildcard w = "*.sfx": a suffix match on whole labels
 * ("*.example.com" covers foo.example.com and foo.bar.example.com, not example.com). */
static bool within_wild(const char *name, const char *w)
{
    const char *sfx = w + 1;        /* ".sfx" */
    size_t nl = strlen(name), sl = strlen(sfx);
    return nl > sl && strcasecmp(name + nl - sl, sfx) == 0;
}

/* Listener/route hostname intersection (httproute_types.go Hostnames): the more specific
 * of the two when one covers the other, else NULL. */
static const char *intersect(const char *lh, const char *rh)
{
    if (is_any(lh))
        return rh;
    if (strcasecmp(lh, rh) == 0)
        return rh;
    if (is_wild(lh) && within_wild(rh, lh))
        return rh;
    if (is_wild(rh) && within_wild(lh, rh))
        return lh;
    return NULL;
}

/* Precedence of a hostname: "Characters in a matching non-wildcard hostname", then
 * "Characters in a matching hostname"; no hostname ranks below everything. */
static void host_rank(const char *h, int *exact, int *len)
{
    if (is_any(h)) {
        *exact = *len = 0;
        return;
    }
    *len = (int)strlen(h);
    *exact = is_wild(h) ? 0 : *len;
}

/* Does `pattern` accept the request host host[0..hl)? Exact names compare case-blind. */
static bool host_match(const char *pattern, const char *host, size_t hl)
{
    if (is_any(pattern))
        return true;
    if (!hl)
        return false;
    if (is_wild(pattern)) {
        const char *sfx = pattern + 1;
        size_t sl = strlen(sfx);
        return hl > sl && strncasecmp(host + hl - sl, sfx, sl) == 0;
    }
    return strlen(pattern) == hl && strncasecmp(pattern, host, hl) == 0;
}

/* ---- regular expressions ------------------------------------------------------------------- */
/* Envoy's safe_regex (RE2) must match the whole value; here POSIX ERE (<regex.h>) anchored
 * as ^(re)$. Dialect differences: RE2 has \d \w \s, (?i), non-greedy *? and (?:...) that
 * POSIX ERE lacks (glibc does accept \w \s); POSIX has backreferences RE2 rejects. Returns
 * a compiled regex or NULL with err filled. */
static regex_t *regex_new(const char *re, char *err, size_t n)
{
    char *anchored = lb_sprintf("^(%s)$", re);
    regex_t *r = lb_malloc(sizeof(*r));
    int rc = regcomp(r, anchored, REG_EXTENDED);
    lb_free(anchored);
    if (rc) {
        regerror(rc, r, err, n);
        lb_free(r);
        return NULL;
    }
    return r;
}

static void regex_del(regex_t *r)
{
    if (r) {
        regfree(r);
        lb_free(r);
    }
}

/* Whole-string match of s[0..n) (REG_STARTEND: no copy, no allocation). */
static bool regex_full(const regex_t *r, const char *s, size_t n)
{
    regmatch_t m[1] = { { 0, (regoff_t)n } };
    return regexec(r, s, 1, m, REG_STARTEND) == 0;
}

/* ---- ReferenceGrant --------------------------------------------------------------------------- */
/* referencegrant_types.go: a grant in the target namespace whose `from` has (group
 * gateway.networking.k8s.io, kind HTTPRoute, the route's namespace) and whose `to` has
 * the backend's group and kind, with no name or the backend's name. */
static bool grant_allows(const k8s_objects_t *o, const char *route_ns, const char *to_ns,
                         const char *group, const char *kind, const char *name)
{
    for (size_t i = 0; i < o->grants.n; i++) {
        const k8s_refgrant_t *g = o->grants.v[i];
        if (strcmp(ns_of(&g->meta), to_ns) != 0)
            continue;
        bool from = false, to = false;
        for (size_t j = 0; j < g->from.n && !from; j++) {
            const gw_grant_from_t *f = &g->from.v[j];
            from = f->group && strcmp(f->group, GW_API_GROUP) == 0 && f->kind &&
                   strcmp(f->kind, "HTTPRoute") == 0 && f->ns && strcmp(f->ns, route_ns) == 0;
        }
        for (size_t j = 0; j < g->to.n && !to; j++) {
            const gw_grant_to_t *t = &g->to.v[j];
            to = strcmp(t->group ? t->group : "", group) == 0 && t->kind &&
                 strcmp(t->kind, kind) == 0 && (!t->name || strcmp(t->name, name) == 0);
        }
        if (from && to)
            return true;
    }
    return false;
}

/* ---- building ----------------------------------------------------------------------------- */
static bool targets_gateway(const gw_parent_ref_t *p, const k8s_httproute_t *r,
                            const k8s_gateway_t *gw)
{
    const char *pns = p->ns ? p->ns : ns_of(&r->meta);
    return p->name && gw->meta.name && strcmp(p->name, gw->meta.name) == 0 &&
           strcmp(pns, ns_of(&gw->meta)) == 0;
}

static bool listener_takes_httproute(const gw_listener_t *l)
{
    /* gateway_types.go: HTTP and HTTPS listeners support HTTPRoute; TLS -> TLSRoute,
     * TCP -> TCPRoute, UDP -> UDPRoute. */
    return !l->protocol || strcasecmp(l->protocol, "HTTP") == 0 ||
           strcasecmp(l->protocol, "HTTPS") == 0;
}

typedef LB_VEC(char *) strs_t;
typedef LB_VEC(const char *) cstrs_t;

/* Effective hostnames of route r on listener l, with the hostname each ranks by (the
 * route's own, "SHOULD evaluate precedence using the original hostnames configured on
 * the Route"). Returns false when the route names hostnames and none intersects. */
static bool route_hosts(const k8s_httproute_t *r, const gw_listener_t *l, strs_t *eff,
                        cstrs_t *orig)
{
    if (!r->hostnames.n) {
        /* The route configured no hostname: it serves the listener's, and ranks as "any"
         * (it has no original hostname to rank by). */
        if (eff) {
            lb_vec_push(eff, lb_strdup(is_any(l->hostname) ? "*" : l->hostname));
            lb_vec_push(orig, "*");
        }
        return true;
    }
    bool any = false;
    for (size_t i = 0; i < r->hostnames.n; i++) {
        const char *e = intersect(l->hostname, r->hostnames.v[i]);
        if (!e)
            continue;               /* "MUST be ignored" */
        any = true;
        if (!eff)
            continue;
        size_t j;
        for (j = 0; j < eff->n && strcasecmp(eff->v[j], e) != 0; j++)
            ;
        if (j < eff->n) {           /* same effective name: keep the better-ranked origin */
            int ex0, l0, ex1, l1;
            host_rank(orig->v[j], &ex0, &l0);
            host_rank(r->hostnames.v[i], &ex1, &l1);
            if (ex1 > ex0 || (ex1 == ex0 && l1 > l0))
                orig->v[j] = r->hostnames.v[i];
            continue;
        }
        lb_vec_push(eff, lb_strdup(e));
        lb_vec_push(orig, r->hostnames.v[i]);
    }
    return any;
}

/* Accepted condition and attachment to t->l (httproute_types.go ParentRefs, shared_types.go
 * reasons; Istio's messages where it has one). Failure reasons rank by how far the
 * route got: NoMatchingParent < NotAllowedByListeners < NoMatchingListenerHostname. */
static void attach(const gw_table_t *t, const k8s_httproute_t *r, gw_route_status_t *rs,
                   route_priv_t *rp)
{
    const k8s_gateway_t *gw = t->gw;
    const char *rns = ns_of(&r->meta), *gns = ns_of(&gw->meta);
    int best = -1;
    char msg[400] = "";
    for (size_t i = 0; i < r->parents.n; i++) {
        const gw_parent_ref_t *p = &r->parents.v[i];
        if (!targets_gateway(p, r, gw))
            continue;
        bool matched = false;
        for (size_t j = 0; j < gw->listeners.n; j++) {
            const gw_listener_t *l = &gw->listeners.v[j];
            if ((p->section && (!l->name || strcmp(p->section, l->name) != 0)) ||
                (p->port && p->port != l->port))
                continue;
            matched = true;
            if (!listener_takes_httproute(l)) {
                if (best < 1) {
                    best = 1;
                    snprintf(msg, sizeof msg, "listener %s has protocol %s, which does not "
                             "accept HTTPRoute", l->name, l->protocol);
                }
                continue;
            }
            const char *from = l->routes_from ? l->routes_from : "Same";
            bool ok = strcmp(from, "All") == 0 ||
                      (strcmp(from, "Same") == 0 && strcmp(rns, gns) == 0);
            if (!ok) {
                if (best < 1) {
                    best = 1;
                    if (strcmp(from, "Same") == 0)
                        snprintf(msg, sizeof msg, "listener %s takes routes from its own "
                                 "namespace %s only (allowedRoutes.namespaces.from: Same); "
                                 "the route is in namespace %s", l->name, gns, rns);
                    else
                        snprintf(msg, sizeof msg, "listener %s: allowedRoutes.namespaces.from"
                                 " %s is not modelled (only Same and All)", l->name, from);
                }
                continue;
            }
            if (!route_hosts(r, l, NULL, NULL)) {
                if (best < 2) {
                    best = 2;
                    snprintf(msg, sizeof msg, "no hostnames matched parent hostname \"%s\" "
                             "(listener %s)", l->hostname, l->name);
                }
                continue;
            }
            best = 3;
            if (l == t->l && !rs->attached) {
                rs->attached = true;
                strs_t eff = { 0 };
                cstrs_t orig = { 0 };
                route_hosts(r, l, &eff, &orig);
                rs->hostnames = eff.v;
                rs->n_hostnames = eff.n;
                rp->orig = orig.v;
            }
        }
        if (!matched && best < 0) {
            best = 0;
            if (p->section && p->port)
                snprintf(msg, sizeof msg, "Gateway %s/%s has no listener named \"%s\" on "
                         "port %d", gns, gw->meta.name, p->section, p->port);
            else if (p->section)
                snprintf(msg, sizeof msg, "Gateway %s/%s has no listener named \"%s\"", gns,
                         gw->meta.name, p->section);
            else if (p->port)
                snprintf(msg, sizeof msg, "Gateway %s/%s has no listener on port %d", gns,
                         gw->meta.name, p->port);
            else
                snprintf(msg, sizeof msg, "Gateway %s/%s has no listeners", gns,
                         gw->meta.name);
        }
    }
    static const gw_reason_t reasons[] = { GW_REASON_NO_MATCHING_PARENT,
        GW_REASON_NOT_ALLOWED_BY_LISTENERS, GW_REASON_NO_MATCHING_LISTENER_HOSTNAME };
    if (best == 3)
        cond_set(&rs->accepted, true, GW_REASON_ACCEPTED, "Route was valid");
    else
        cond_set(&rs->accepted, false, reasons[best < 0 ? 0 : best], "%s", msg);
}

/* ResolvedRefs and each rule's backends (Istio buildDestination order: the ReferenceGrant
 * check first, then kind, then existence). */
static void resolve(const k8s_objects_t *o, const k8s_httproute_t *r, gw_route_status_t *rs)
{
    const char *rns = ns_of(&r->meta);
    rs->n_rules = r->rules.n;
    rs->rules = lb_calloc(r->rules.n ? r->rules.n : 1, sizeof(gw_rule_status_t));
    const gw_backend_t *first_bad = NULL;
    for (size_t i = 0; i < r->rules.n; i++) {
        const gw_route_rule_t *rule = &r->rules.v[i];
        gw_rule_status_t *st = &rs->rules[i];
        st->n_backends = rule->backends.n;
        st->backends = lb_calloc(rule->backends.n ? rule->backends.n : 1, sizeof(gw_backend_t));
        for (size_t j = 0; j < rule->backends.n; j++) {
            const gw_backend_ref_t *b = &rule->backends.v[j];
            gw_backend_t *be = &st->backends[j];
            const char *group = b->group ? b->group : "", *kind = b->kind ? b->kind : "Service";
            const char *name = b->name ? b->name : "";
            be->ref = b;
            be->ns = b->ns ? b->ns : rns;
            be->port = b->port;
            be->weight = b->weight > 0 ? b->weight : 0;
            be->reason = GW_REASON_RESOLVED_REFS;
            if (strcmp(be->ns, rns) != 0 && !grant_allows(o, rns, be->ns, group, kind, name)) {
                be->reason = GW_REASON_REF_NOT_PERMITTED;
                be->message = lb_sprintf("backendRef %s/%s not accessible to a HTTPRoute in "
                                         "namespace \"%s\" (missing a ReferenceGrant in "
                                         "namespace %s?)", be->ns, name, rns, be->ns);
            } else if (strcmp(group, "") != 0 || strcmp(kind, "Service") != 0) {
                be->reason = GW_REASON_INVALID_KIND;
                be->message = lb_sprintf("referencing unsupported backendRef: group \"%s\" "
                                         "kind \"%s\"", group, kind);
            } else if (!(be->svc = k8s_service_find(o, be->ns, name))) {
                be->reason = GW_REASON_BACKEND_NOT_FOUND;
                be->message = lb_sprintf("Service %s/%s not found", be->ns, name);
            } else {
                be->valid = true;
                for (size_t k = 0; k < be->svc->ports.n; k++)
                    be->port_found |= be->svc->ports.v[k].port == be->port;
            }
            st->total_weight += be->weight;
            if (be->valid)
                st->valid_weight += be->weight;
            else if (!first_bad)
                first_bad = be;
        }
    }
    if (first_bad)
        cond_set(&rs->resolved_refs, false, first_bad->reason, "%s", first_bad->message);
    else
        cond_set(&rs->resolved_refs, true, GW_REASON_RESOLVED_REFS, "All references resolved");
}

static const gw_route_match_t *match_at(const gw_route_rule_t *rule, size_t i)
{
    return rule->matches.n ? &rule->matches.v[i] : &default_match;
}

/* Values the API's validation (CRD CEL rules) or Istio reject: the route is not Accepted
 * (reason UnsupportedValue). Returns false with a message. */
static bool route_valid(const k8s_httproute_t *r, char *msg, size_t n)
{
    char err[200];
    for (size_t i = 0; i < r->rules.n; i++) {
        const gw_route_rule_t *rule = &r->rules.v[i];
        size_t nm = rule->matches.n ? rule->matches.n : 1;
        for (size_t j = 0; j < nm; j++) {
            const gw_route_match_t *m = match_at(rule, j);
            const char *p = m->path ? m->path : "/";
            if (m->path_type == GW_PATH_REGEX) {
                regex_t *re = regex_new(p, err, sizeof err);
                if (!re) {
                    snprintf(msg, n, "rule %zu: invalid RegularExpression path \"%s\": %s",
                             i, p, err);
                    return false;
                }
                regex_del(re);
            } else if (p[0] != '/') {
                snprintf(msg, n, "rule %zu: path \"%s\" must be an absolute path and start "
                         "with '/'", i, p);
                return false;
            }
            for (int q = 0; q < 2; q++) {
                const gw_header_match_t *v = q ? m->query.v : m->headers.v;
                size_t cnt = q ? m->query.n : m->headers.n;
                for (size_t k = 0; k < cnt; k++) {
                    if (v[k].type != GW_MATCH_REGEX)
                        continue;
                    regex_t *re = regex_new(v[k].value ? v[k].value : "", err, sizeof err);
                    if (!re) {
                        snprintf(msg, n, "rule %zu: invalid RegularExpression for %s \"%s\": "
                                 "%s", i, q ? "query parameter" : "header", v[k].name, err);
                        return false;
                    }
                    regex_del(re);
                }
            }
        }
        for (size_t j = 0; j < rule->backends.n; j++) {
            const gw_backend_ref_t *b = &rule->backends.v[j];
            bool svc = (!b->group || !*b->group) && (!b->kind || strcmp(b->kind, "Service") == 0);
            if (svc && b->port <= 0) {
                /* "Port is required when the referent is a Kubernetes Service." */
                snprintf(msg, n, "rule %zu: port is required in backendRef %s", i,
                         b->name ? b->name : "");
                return false;
            }
        }
    }
    return true;
}

/* Header/query matchers, deduplicated: "If multiple entries specify equivalent ... names,
 * only the first entry with an equivalent name MUST be considered" (header names
 * case-insensitive, query names exact). */
static smatch_t *matchers(const gw_header_match_t *v, size_t n, bool fold, size_t *out_n)
{
    smatch_t *s = lb_calloc(n ? n : 1, sizeof(*s));
    size_t k = 0;
    char err[200];
    for (size_t i = 0; i < n; i++) {
        const char *name = v[i].name ? v[i].name : "";
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = fold ? strcasecmp(s[j].name, name) == 0 : strcmp(s[j].name, name) == 0;
        if (dup)
            continue;
        s[k].name = name;
        s[k].value = v[i].value ? v[i].value : "";
        if (v[i].type == GW_MATCH_REGEX) {
            s[k].re = regex_new(s[k].value, err, sizeof err);
            assert(s[k].re);        /* route_valid rejected such routes already */
        }
        k++;
    }
    *out_n = k;
    return s;
}

static void entry_init(entry_t *e, const gw_route_status_t *rs, const route_priv_t *rp,
                       size_t hi, size_t ri, size_t mi, gw_host_mode_t mode)
{
    const gw_route_rule_t *rule = &rs->route->rules.v[ri];
    const gw_route_match_t *m = match_at(rule, mi);
    char err[200];
    memset(e, 0, sizeof(*e));
    e->rs = rs;
    e->m = m;
    e->rule = ri;
    e->match = mi;
    e->host = rs->hostnames[hi];
    /* The specification ranks by the route's own hostname; Envoy's virtual-host choice
     * ranks the domain it was programmed with (the effective hostname). */
    host_rank(mode == GW_HOST_SPEC ? rp->orig[hi] : e->host, &e->host_exact, &e->host_len);
    const char *p = m->path ? m->path : "/";
    switch (m->path_type) {
    case GW_PATH_EXACT:
        e->path_rank = RANK_EXACT;
        e->path = lb_strdup(p);
        break;
    case GW_PATH_REGEX:
        e->path_rank = RANK_REGEX;
        e->path = lb_strdup(p);
        e->path_re = regex_new(p, err, sizeof err);
        assert(e->path_re);         /* route_valid rejected such routes already */
        break;
    default: {
        /* "When specified, a trailing `/` is ignored." (Istio createURIMatch) */
        size_t n = strlen(p);
        if (n > 1 && p[n - 1] == '/')
            n--;
        e->path_rank = RANK_PREFIX;
        e->path = lb_strndup(p, n);
        break;
    }
    }
    e->path_len = (int)strlen(e->path);
    e->method = m->method;
    e->hdrs = matchers(m->headers.v, m->headers.n, true, &e->n_hdrs);
    e->qs = matchers(m->query.v, m->query.n, false, &e->n_qs);
    e->conds = lb_calloc(2 + e->n_hdrs + e->n_qs, sizeof(gw_cond_t));
    if (e->method)
        e->conds[e->n_conds++] = (gw_cond_t){ GW_COND_METHOD, NULL, e->method, false };
    for (size_t i = 0; i < e->n_hdrs; i++)
        e->conds[e->n_conds++] = (gw_cond_t){ GW_COND_HEADER, e->hdrs[i].name,
                                              e->hdrs[i].value, e->hdrs[i].re != NULL };
    for (size_t i = 0; i < e->n_qs; i++)
        e->conds[e->n_conds++] = (gw_cond_t){ GW_COND_QUERY, e->qs[i].name, e->qs[i].value,
                                              e->qs[i].re != NULL };
    if (e->path_rank == RANK_REGEX)
        e->conds[e->n_conds++] = (gw_cond_t){ GW_COND_PATH, NULL, e->path, true };
    e->route_key = rp->key;
    e->order = rs->route->meta.order;
    const gw_rule_status_t *st = &rs->rules[ri];
    e->hit = (gw_hit_t){
        .route = rs, .rule = ri, .match = mi, .hostname = e->host,
        /* all backendRefs invalid, none given, or all weight 0: 500 for what the rule
         * matches (httproute_types.go BackendRefs) */
        .status = st->valid_weight > 0 ? 0 : 500,
        .backends = st->backends, .n_backends = st->n_backends,
        .total_weight = st->total_weight, .valid_weight = st->valid_weight,
    };
}

/* Precedence (httproute_types.go, Istio sortHTTPRoutes): hostname specificity; Exact >
 * Prefix > Regex; longer value; a method match; more header matches; more query matches;
 * the oldest route; "{namespace}/{name}" alphabetically; rule order; match order. The
 * effective hostname string after the rank only groups equal hosts (two different
 * hostnames of equal rank never both match one request). */
static int entry_cmp(const void *pa, const void *pb)
{
    const entry_t *a = pa, *b = pb;
    int d;
    if ((d = b->host_exact - a->host_exact) || (d = b->host_len - a->host_len))
        return d;
    if ((d = strcasecmp(a->host, b->host)))
        return d;
    if ((d = b->path_rank - a->path_rank) || (d = b->path_len - a->path_len))
        return d;
    if ((d = (b->method != NULL) - (a->method != NULL)))
        return d;
    if (a->n_hdrs != b->n_hdrs)
        return a->n_hdrs > b->n_hdrs ? -1 : 1;
    if (a->n_qs != b->n_qs)
        return a->n_qs > b->n_qs ? -1 : 1;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    if ((d = strcmp(a->route_key, b->route_key)))
        return d;
    if (a->rule != b->rule)
        return a->rule < b->rule ? -1 : 1;
    if (a->match != b->match)
        return a->match < b->match ? -1 : 1;
    return strcmp(a->host, b->host);
}

gw_table_t *gw_table_build(const k8s_objects_t *o, const k8s_gateway_t *gw,
                           const gw_listener_t *l, const gw_table_opts_t *opts)
{
    /* a programming error, not bad input: l must be one of gw's listeners */
    assert(gw && l && l >= gw->listeners.v && l < gw->listeners.v + gw->listeners.n);
    gw_table_t *t = lb_calloc(1, sizeof(*t));
    t->gw = gw;
    t->l = l;
    if (opts)
        t->opts = *opts;
    size_t n = 0;
    for (size_t i = 0; o && i < o->routes.n; i++)
        for (size_t j = 0; j < o->routes.v[i]->parents.n; j++)
            if (targets_gateway(&o->routes.v[i]->parents.v[j], o->routes.v[i], gw)) {
                n++;
                break;
            }
    t->routes = lb_calloc(n ? n : 1, sizeof(gw_route_status_t));
    t->priv = lb_calloc(n ? n : 1, sizeof(route_priv_t));
    size_t entries = 0;
    for (size_t i = 0; o && i < o->routes.n; i++) {
        const k8s_httproute_t *r = o->routes.v[i];
        bool mine = false;
        for (size_t j = 0; j < r->parents.n && !mine; j++)
            mine = targets_gateway(&r->parents.v[j], r, gw);
        if (!mine)
            continue;
        gw_route_status_t *rs = &t->routes[t->n_routes];
        route_priv_t *rp = &t->priv[t->n_routes++];
        rs->route = r;
        rp->key = lb_sprintf("%s/%s", ns_of(&r->meta), r->meta.name ? r->meta.name : "");
        resolve(o, r, rs);
        char msg[400];
        if (!route_valid(r, msg, sizeof msg)) {
            cond_set(&rs->accepted, false, GW_REASON_UNSUPPORTED_VALUE, "%s", msg);
            continue;
        }
        attach(t, r, rs, rp);
        if (!rs->attached)
            continue;
        for (size_t ri = 0; ri < r->rules.n; ri++)
            entries += rs->n_hostnames *
                       (r->rules.v[ri].matches.n ? r->rules.v[ri].matches.n : 1);
    }
    t->entries = lb_calloc(entries ? entries : 1, sizeof(entry_t));
    for (size_t i = 0; i < t->n_routes; i++) {
        const gw_route_status_t *rs = &t->routes[i];
        if (!rs->attached)
            continue;
        for (size_t h = 0; h < rs->n_hostnames; h++)
            for (size_t ri = 0; ri < rs->route->rules.n; ri++) {
                size_t nm = rs->route->rules.v[ri].matches.n;
                for (size_t mi = 0; mi < (nm ? nm : 1); mi++)
                    entry_init(&t->entries[t->n_entries++], rs, &t->priv[i], h, ri, mi,
                               t->opts.host_mode);
            }
    }
    if (t->n_entries > 1)
        qsort(t->entries, t->n_entries, sizeof(entry_t), entry_cmp);
    return t;
}

void gw_table_free(gw_table_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_entries; i++) {
        entry_t *e = &t->entries[i];
        lb_free(e->path);
        regex_del(e->path_re);
        for (size_t j = 0; j < e->n_hdrs; j++)
            regex_del(e->hdrs[j].re);
        for (size_t j = 0; j < e->n_qs; j++)
            regex_del(e->qs[j].re);
        lb_free(e->hdrs);
        lb_free(e->qs);
        lb_free(e->conds);
    }
    lb_free(t->entries);
    for (size_t i = 0; i < t->n_routes; i++) {
        gw_route_status_t *rs = &t->routes[i];
        lb_free(rs->accepted.message);
        lb_free(rs->resolved_refs.message);
        for (size_t j = 0; j < rs->n_hostnames; j++)
            lb_free(rs->hostnames[j]);
        lb_free(rs->hostnames);
        for (size_t j = 0; j < rs->n_rules; j++) {
            for (size_t k = 0; k < rs->rules[j].n_backends; k++)
                lb_free(rs->rules[j].backends[k].message);
            lb_free(rs->rules[j].backends);
        }
        lb_free(rs->rules);
        lb_free(t->priv[i].key);
        lb_free(t->priv[i].orig);
    }
    lb_free(t->routes);
    lb_free(t->priv);
    lb_free(t);
}

const gw_route_status_t *gw_table_routes(const gw_table_t *t, size_t *n)
{
    *n = t->n_routes;
    return t->routes;
}

/* ---- matching ------------------------------------------------------------------------------ */
typedef struct req_view {
    const char *host;
    size_t host_len;
    const char *method;
    const char *path;
    size_t path_len;                /* up to '?' or '#' */
    const char *query;              /* after '?', up to '#'; NULL if none */
    size_t query_len;
    const gw_request_t *req;
} req_view_t;

static void view(const gw_request_t *req, req_view_t *v)
{
    memset(v, 0, sizeof(*v));
    v->req = req;
    v->host = req->host ? req->host : "";
    /* "Implementations MUST ignore any port value specified in the HTTP Host header" */
    if (v->host[0] == '[') {
        const char *e = strchr(v->host, ']');
        v->host_len = e ? (size_t)(e - v->host) + 1 : strlen(v->host);
    } else {
        v->host_len = strcspn(v->host, ":");
    }
    v->method = req->method ? req->method : "GET";
    v->path = req->path && *req->path ? req->path : "/";
    v->path_len = strcspn(v->path, "?#");
    if (v->path[v->path_len] == '?') {
        v->query = v->path + v->path_len + 1;
        v->query_len = strcspn(v->query, "#");
    }
}

static bool path_match(const entry_t *e, const req_view_t *v)
{
    size_t n = (size_t)e->path_len;
    switch (e->path_rank) {
    case RANK_EXACT:
        return v->path_len == n && memcmp(v->path, e->path, n) == 0;
    case RANK_REGEX:
        return regex_full(e->path_re, v->path, v->path_len);
    default:
        /* PathPrefix matches whole path elements: /abc matches /abc, /abc/, /abc/def,
         * not /abcd; "/" matches everything. */
        if (n == 1 && e->path[0] == '/')
            return true;
        return v->path_len >= n && memcmp(v->path, e->path, n) == 0 &&
               (v->path_len == n || v->path[n] == '/');
    }
}

static bool value_match(const smatch_t *s, const char *val, size_t n)
{
    if (s->re)
        return regex_full(s->re, val, n);
    return strlen(s->value) == n && memcmp(s->value, val, n) == 0;
}

/* The first request header of that name (names compare case-blind). */
static const char *header_of(const gw_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i].name && strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value ? req->headers[i].value : "";
    return NULL;
}

/* The first value of query parameter `name` ("recommended ... match against the first
 * value"); values are compared as sent (no percent-decoding). */
static bool query_of(const req_view_t *v, const char *name, const char **val, size_t *n)
{
    size_t nl = strlen(name);
    const char *q = v->query, *end = q ? q + v->query_len : NULL;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - q) == nl && memcmp(q, name, nl) == 0) {
            *val = eq ? eq + 1 : pe;
            *n = (size_t)(pe - *val);
            return true;
        }
        q = amp ? amp + 1 : end;
    }
    return false;
}

/* NULL when e matches the request, else what did not match (for explanations). */
static const char *entry_test(const entry_t *e, const req_view_t *v)
{
    if (!host_match(e->host, v->host, v->host_len))
        return "host";
    if (!path_match(e, v))
        return "path";
    if (e->method && strcmp(e->method, v->method) != 0)
        return "method";
    for (size_t i = 0; i < e->n_hdrs; i++) {
        const char *h = header_of(v->req, e->hdrs[i].name);
        if (!h || !value_match(&e->hdrs[i], h, strlen(h)))
            return "header";
    }
    for (size_t i = 0; i < e->n_qs; i++) {
        const char *val;
        size_t n;
        if (!query_of(v, e->qs[i].name, &val, &n) || !value_match(&e->qs[i], val, n))
            return "query parameter";
    }
    return NULL;
}

/* The ordering walk: calls fn(entry, index, arg) for the entries accepting the request, in
 * precedence order, until fn returns false; returns the number of calls. In Envoy mode the
 * virtual host is chosen first, by domain alone (exact, then the longest wildcard, then
 * "*"), and only its entries are walked; *vhost gets it. With GW_WALK_CONDS only host and
 * (non-regex) path are tested: the rest is the caller's (the entry's conds). */
static size_t walk_entries(const gw_table_t *t, const req_view_t *v, unsigned flags,
                           const char **vhost, bool (*fn)(const entry_t *e, size_t i, void *arg),
                           void *arg)
{
    *vhost = NULL;
    size_t i = 0, calls = 0;
    if (t->opts.host_mode == GW_HOST_ENVOY_VHOST) {
        for (; i < t->n_entries; i++)
            if (host_match(t->entries[i].host, v->host, v->host_len))
                break;
        if (i == t->n_entries)
            return 0;
        *vhost = t->entries[i].host;
    }
    for (; i < t->n_entries; i++) {
        const entry_t *e = &t->entries[i];
        if (*vhost && strcasecmp(e->host, *vhost) != 0)
            break;                  /* entries of one host are contiguous */
        bool ok;
        if (flags & GW_WALK_CONDS)
            ok = host_match(e->host, v->host, v->host_len) &&
                 (e->path_rank == RANK_REGEX || path_match(e, v));
        else
            ok = !entry_test(e, v);
        if (!ok)
            continue;
        calls++;
        if (!fn(e, i, arg))
            break;
    }
    return calls;
}

static bool first_entry(const entry_t *e, size_t i, void *arg)
{
    (void)e;
    *(long *)arg = (long)i;
    return false;
}

/* Index of the serving entry, or -1; *vhost gets the chosen virtual host (Envoy mode). */
static long match_index(const gw_table_t *t, const req_view_t *v, const char **vhost)
{
    long hit = -1;
    walk_entries(t, v, 0, vhost, first_entry, &hit);
    return hit;
}

typedef struct walk_arg {
    unsigned flags;
    bool (*fn)(const gw_cand_t *c, void *arg);
    void *arg;
} walk_arg_t;

static bool cand_entry(const entry_t *e, size_t i, void *arg)
{
    (void)i;
    const walk_arg_t *w = arg;
    gw_cand_t c = { &e->hit, e->conds, (w->flags & GW_WALK_CONDS) ? e->n_conds : 0 };
    return w->fn(&c, w->arg);
}

size_t gw_table_walk(const gw_table_t *t, const gw_request_t *req, unsigned flags,
                     bool (*fn)(const gw_cand_t *c, void *arg), void *arg)
{
    req_view_t v;
    view(req, &v);
    const char *vhost;
    walk_arg_t w = { flags, fn, arg };
    return walk_entries(t, &v, flags, &vhost, cand_entry, &w);
}

const gw_hit_t *gw_table_match(const gw_table_t *t, const gw_request_t *req)
{
    req_view_t v;
    view(req, &v);
    const char *vhost;
    long i = match_index(t, &v, &vhost);
    return i < 0 ? NULL : &t->entries[i].hit;
}

const gw_backend_t *gw_hit_pick(const gw_hit_t *h, double u)
{
    if (!h || h->total_weight <= 0)
        return NULL;
    double x = u * h->total_weight;
    int acc = 0;
    const gw_backend_t *last = NULL;
    for (size_t i = 0; i < h->n_backends; i++) {
        if (h->backends[i].weight <= 0)
            continue;
        acc += h->backends[i].weight;
        last = &h->backends[i];
        if (x < acc)
            return last;
    }
    return last;                    /* u == 1.0 or rounding */
}

/* ---- describing ----------------------------------------------------------------------------- */
static void match_str(const gw_route_match_t *m, char *buf, size_t n)
{
    static const char *const types[] = { "PathPrefix", "Exact", "RegularExpression" };
    size_t k = (size_t)snprintf(buf, n, "%s %s", types[m->path_type], m->path ? m->path : "/");
    if (m->method && k < n)
        k += (size_t)snprintf(buf + k, n - k, ", method %s", m->method);
    for (int q = 0; q < 2; q++) {
        const gw_header_match_t *v = q ? m->query.v : m->headers.v;
        size_t cnt = q ? m->query.n : m->headers.n;
        for (size_t i = 0; i < cnt && k < n; i++)
            k += (size_t)snprintf(buf + k, n - k, ", %s %s %s %s", q ? "query" : "header",
                                  v[i].name, v[i].type == GW_MATCH_REGEX ? "~" : "=",
                                  v[i].value);
    }
}

static void backend_line(const gw_backend_t *b, FILE *out)
{
    const char *name = b->ref->name ? b->ref->name : "";
    if (b->valid)
        fprintf(out, "      -> Service %s/%s port %d, weight %d%s\n", b->ns, name, b->port,
                b->weight, b->port_found ? "" :
                " (the Service has no such port: Envoy has no cluster for it, 503 NC)");
    else
        fprintf(out, "      -> INVALID %s/%s port %d, weight %d: %s: %s (this share gets 500)\n",
                b->ns, name, b->port, b->weight, gw_reason_str(b->reason), b->message);
}

static void listener_line(const gw_table_t *t, FILE *out)
{
    const gw_listener_t *l = t->l;
    fprintf(out, "Gateway %s/%s listener %s (%s port %d, hostname %s, routes from %s)\n",
            ns_of(&t->gw->meta), t->gw->meta.name, l->name ? l->name : "?",
            l->protocol ? l->protocol : "HTTP", l->port, is_any(l->hostname) ? "*" : l->hostname,
            l->routes_from ? l->routes_from : "Same");
}

static void entry_line(const entry_t *e, size_t idx, FILE *out)
{
    char m[256];
    match_str(e->m, m, sizeof m);
    fprintf(out, "  %zu. host %s, %s -> HTTPRoute %s rule %zu", idx, e->host, m, e->route_key,
            e->rule);
    if (e->hit.status)
        fprintf(out, " (500: no valid backend)");
    fputc('\n', out);
}

void gw_table_describe(const gw_table_t *t, FILE *out)
{
    listener_line(t, out);
    if (!t->n_routes)
        fprintf(out, "  no HTTPRoute references this Gateway\n");
    for (size_t i = 0; i < t->n_routes; i++) {
        const gw_route_status_t *rs = &t->routes[i];
        fprintf(out, "HTTPRoute %s: %s\n", t->priv[i].key,
                rs->attached ? "attached to this listener" : "not attached to this listener");
        fprintf(out, "  Accepted=%s (%s): %s\n", rs->accepted.status ? "True" : "False",
                gw_reason_str(rs->accepted.reason), rs->accepted.message);
        fprintf(out, "  ResolvedRefs=%s (%s): %s\n", rs->resolved_refs.status ? "True" : "False",
                gw_reason_str(rs->resolved_refs.reason), rs->resolved_refs.message);
        if (rs->attached) {
            fprintf(out, "  hostnames:");
            for (size_t h = 0; h < rs->n_hostnames; h++)
                fprintf(out, " %s", rs->hostnames[h]);
            fputc('\n', out);
        }
        for (size_t r = 0; r < rs->n_rules; r++) {
            const gw_route_rule_t *rule = &rs->route->rules.v[r];
            size_t nm = rule->matches.n ? rule->matches.n : 1;
            for (size_t j = 0; j < nm; j++) {
                char m[256];
                match_str(match_at(rule, j), m, sizeof m);
                fprintf(out, "  rule %zu%s %s\n", r, j ? " or" : ":", m);
            }
            const gw_rule_status_t *st = &rs->rules[r];
            if (!st->n_backends)
                fprintf(out, "      -> no backendRefs: 500\n");
            for (size_t b = 0; b < st->n_backends; b++)
                backend_line(&st->backends[b], out);
            if (st->n_backends && !st->valid_weight)
                fprintf(out, "      => every request of this rule gets 500\n");
        }
    }
    fprintf(out, "Match order (first match wins; no match: 404, response flag NR, "
            "route_not_found)%s:\n", t->opts.host_mode == GW_HOST_ENVOY_VHOST ?
            " -- Envoy virtual hosts: the most specific matching host is chosen first" : "");
    if (!t->n_entries)
        fprintf(out, "  (empty: every request gets 404)\n");
    for (size_t i = 0; i < t->n_entries; i++)
        entry_line(&t->entries[i], i + 1, out);
}

void gw_table_explain(const gw_table_t *t, const gw_request_t *req, FILE *out)
{
    req_view_t v;
    view(req, &v);
    const char *vhost;
    long hit = match_index(t, &v, &vhost);
    fprintf(out, "%s %.*s%s host %.*s on ", v.method, (int)v.path_len, v.path,
            v.query ? "?..." : "", (int)v.host_len, v.host_len ? v.host : "(none)");
    listener_line(t, out);
    if (vhost)
        fprintf(out, "  Envoy virtual host: %s\n", vhost);
    if (hit >= 0) {
        const entry_t *e = &t->entries[hit];
        char m[256];
        match_str(e->m, m, sizeof m);
        fprintf(out, "  served by HTTPRoute %s rule %zu (%s, host %s), entry %ld of %zu\n",
                e->route_key, e->rule, m, e->host, hit + 1, t->n_entries);
        for (long i = 0; i < hit; i++) {
            const char *why = entry_test(&t->entries[i], &v);
            if (vhost && strcasecmp(t->entries[i].host, vhost) != 0)
                continue;
            fprintf(out, "    before it, HTTPRoute %s rule %zu did not match: %s\n",
                    t->entries[i].route_key, t->entries[i].rule, why);
        }
        for (size_t b = 0; b < e->hit.n_backends; b++)
            backend_line(&e->hit.backends[b], out);
        if (e->hit.status)
            fprintf(out, "  => 500: %s\n", !e->hit.n_backends ? "the rule has no backendRefs" :
                    e->hit.total_weight ? "none of the rule's backends is valid" :
                    "every backendRef has weight 0");
        return;
    }
    fprintf(out, "  => 404: no route matches (Envoy response flag NR, route_not_found)\n");
    if (!t->n_entries)
        fprintf(out, "    the listener has no attached routes\n");
    for (size_t i = 0; i < t->n_entries; i++) {
        const entry_t *e = &t->entries[i];
        char m[256];
        match_str(e->m, m, sizeof m);
        const char *why = vhost && strcasecmp(e->host, vhost) != 0 ?
            "another virtual host" : entry_test(e, &v);
        fprintf(out, "    HTTPRoute %s rule %zu (%s, host %s): %s does not match\n",
                e->route_key, e->rule, m, e->host, why);
    }
    for (size_t i = 0; i < t->n_routes; i++)
        if (!t->routes[i].attached)
            fprintf(out, "    HTTPRoute %s is not attached: %s: %s\n", t->priv[i].key,
                    gw_reason_str(t->routes[i].accepted.reason), t->routes[i].accepted.message);
}

/* ---- rendering as nginx (the real chain's gateway stand-in) -------------------------------
 * nginx chooses a server by Host (exact name, then wildcard, then the default server) and a
 * location by path (`= exact` first, then the longest prefix): the same shape as Envoy's
 * virtual host and Gateway API's precedence for path matches. So the renderer lists every
 * hostname and every path the routes name, turns each path into nginx locations (Exact P:
 * `= P`; PathPrefix P: `= P` and `P/`, which is Gateway API's element-wise prefix; and `/`
 * for the rest), and walks the caller's match order -- the model's own gw_table_walk with
 * GW_WALK_CONDS -- for that host and a path that only that location covers. The rules the
 * walk yields, up to the first that needs nothing beyond host and path, are the location's
 * candidates in precedence order. A rule's action: 404 (no route), 500 (no valid backend),
 * 503 (no ready endpoint, or a port the Service lacks), or proxy_pass to the rule's
 * backends (split_clients by weight). One candidate: the location takes its action. More:
 * the method, header, query-parameter and RegularExpression-path conditions become maps
 * from $request_method, $http_<name> (lower case, '-' as '_'), $arg_<name> or $uri to "1"
 * or "0" (`$lbchain<port>_c<N>`, full-match regular expressions: exact values escaped), and
 * a selection map from the concatenated bits to the first candidate whose bits are all set
 * (nginx tries a map's regular expressions in order), the default being the unconditional
 * candidate or 404 (`$lbchain<port>_sel<N>`); the location answers by that variable.
 * Differences from Envoy: an absent header is the empty string to nginx (a regex accepting
 * "" matches it; Envoy requires the header); nginx's $arg_ compares names case-blind and
 * decodes nothing, $uri is percent-decoded with slashes merged; header names holding '_'
 * and query names that are not nginx variable names cannot be expressed: such a match is
 * named in a comment and takes no traffic. Regular expressions are PCRE in nginx, POSIX
 * ERE in the model: the same for the common subset. */

/* A path no route can name: what a location covers beyond its own listed paths. */
#define GW_NGINX_OTHER ".lbchain-other"
/* A Host no route or listener can name: what the default server answers. */
#define GW_NGINX_OTHER_HOST "lbchain-other.invalid"

static void strs_add(strs_t *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], s) == 0) return;
    lb_vec_push(v, lb_strdup(s));
}

static size_t strs_find(const strs_t *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], s) == 0) return i;
    return v->n;
}

static void strs_free(strs_t *v)
{
    for (size_t i = 0; i < v->n; i++) lb_free(v->v[i]);
    lb_vec_free(v);
}

/* Upstream names: "gw<port>_<ns>_<svc>_<svcport>" with anything but [A-Za-z0-9_] as '_'. */
static void upstream_name(char *out, size_t n, int lport, const char *ns, const char *svc,
                          int port)
{
    snprintf(out, n, "gw%d_%s_%s_%d", lport, ns, svc, port);
    for (char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_') *c = '_';
}

typedef struct upstream { char *name; const char *ns, *svc; int port; size_t n_eps; } upstream_t;

typedef struct render {
    const gw_nginx_t *r;
    LB_VEC(upstream_t) ups;
    int splits;
    strs_t conds;                   /* "source pattern" of each condition map, by index */
    strs_t sels;                    /* each selection map's body, by index */
    strs_t skipped;                 /* matches nginx cannot express */
    LB_VEC(const gw_hit_t *) hits;  /* rules whose target is known, and their targets */
    strs_t targets;
    FILE *decl;                     /* upstream, split_clients and map blocks */
} render_t;

/* The upstream for backend b: declared once; no block when it has no ready endpoint. */
static const upstream_t *upstream_for(render_t *rd, const gw_backend_t *b)
{
    char name[256];
    upstream_name(name, sizeof name, rd->r->port, b->ns, b->ref->name, b->port);
    for (size_t i = 0; i < rd->ups.n; i++)
        if (strcmp(rd->ups.v[i].name, name) == 0) return &rd->ups.v[i];
    uint32_t ips[256];
    uint16_t ports[256];
    size_t n = rd->r->endpoints(b->ns, b->ref->name, b->port, ips, ports, 256, rd->r->data);
    if (n > 256) n = 256;
    upstream_t u = {lb_strdup(name), b->ns, b->ref->name, b->port, n};
    if (n) {
        /* Envoy: LEAST_REQUEST, no outlier detection (max_fails=0: never taken out) */
        fprintf(rd->decl, "    upstream %s {\n        least_conn;\n", name);
        for (size_t i = 0; i < n; i++) {
            char ip[16];
            fprintf(rd->decl, "        server %s:%u max_fails=0;\n", lb_ip_str(ips[i], ip),
                    ports[i]);
        }
        fprintf(rd->decl, "        keepalive 32;\n    }\n");
    }
    lb_vec_push(&rd->ups, u);
    return &rd->ups.v[rd->ups.n - 1];
}

/* Where rule h sends a request (NULL: no route): "status<code>", an upstream name, or a
 * split_clients variable whose values are either. */
static void hit_target_new(render_t *rd, const gw_hit_t *h, char *out, size_t outn);
static void hit_target(render_t *rd, const gw_hit_t *h, char *out, size_t outn)
{
    for (size_t i = 0; h && i < rd->hits.n; i++)
        if (rd->hits.v[i] == h) {
            snprintf(out, outn, "%s", rd->targets.v[i]);
            return;
        }
    hit_target_new(rd, h, out, outn);
    if (h) {
        lb_vec_push(&rd->hits, h);
        lb_vec_push(&rd->targets, lb_strdup(out));
    }
}

static void hit_target_new(render_t *rd, const gw_hit_t *h, char *out, size_t outn)
{
    if (!h || h->status) {
        snprintf(out, outn, "status%d", h ? h->status : 404);
        return;
    }
    size_t n = 0;
    char what[64][256];
    int weight[64];
    for (size_t i = 0; i < h->n_backends && n < 64; i++) {
        const gw_backend_t *b = &h->backends[i];
        if (b->weight <= 0) continue;
        weight[n] = b->weight;
        if (!b->valid) snprintf(what[n], sizeof what[n], "status500");
        else if (!b->port_found) snprintf(what[n], sizeof what[n], "status503");  /* NC */
        else {
            const upstream_t *u = upstream_for(rd, b);
            if (u->n_eps) snprintf(what[n], sizeof what[n], "%s", u->name);
            else snprintf(what[n], sizeof what[n], "status503");        /* UH */
        }
        n++;
    }
    if (n == 1) {
        snprintf(out, outn, "%s", what[0]);
        return;
    }
    /* Envoy's weighted clusters: a share of requests per backend */
    snprintf(out, outn, "$lbchain%d_split%d", rd->r->port, rd->splits++);
    fprintf(rd->decl, "    split_clients \"${request_id}\" %s {\n", out);
    int total = 0;
    for (size_t i = 0; i < n; i++) total += weight[i];
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            fprintf(rd->decl, "        %.2f%% %s;\n", 100.0 * weight[i] / total, what[i]);
        else
            fprintf(rd->decl, "        * %s;\n", what[i]);
    }
    fprintf(rd->decl, "    }\n");
}

/* A location's body answering by target (see hit_target). */
static void target_action(const render_t *rd, FILE *out, const char *target, bool any_status)
{
    const gw_nginx_t *r = rd->r;
    if (strncmp(target, "status", 6) == 0) {
        int code = atoi(target + 6);
        fprintf(out, "            return %d \"%s\";%s\n", code,
                code == 503 ? "no healthy upstream" : "",
                code == 404 ? "    # Envoy: NR route_not_found" :
                code == 500 ? "    # every backendRef invalid" : "");
        return;
    }
    if (target[0] == '$') {
        if (any_status)
            fprintf(out, "            if (%s = status404) { return 404 \"\"; }\n", target);
        fprintf(out, "            if (%s = status500) { return 500 \"\"; }\n", target);
        fprintf(out, "            if (%s = status503) { return 503 \"no healthy upstream\"; }\n",
                target);
    }
    fprintf(out, "            proxy_pass http://%s;\n", target);
    fprintf(out, "            proxy_http_version 1.1;\n");
    fprintf(out, "            proxy_set_header Connection \"\";\n");
    fprintf(out, "            proxy_set_header Host $http_host;\n");
    fprintf(out, "            proxy_connect_timeout %llds;\n",
            (long long)((r->connect_timeout + SIM_S - 1) / SIM_S));
    sim_time_t rt = r->request_timeout ? r->request_timeout : r->idle_timeout;
    fprintf(out, "            proxy_read_timeout %llds;\n", (long long)((rt + SIM_S - 1) / SIM_S));
    /* Istio's retry policy: connect failures, on another host, num_retries times */
    fprintf(out, "            proxy_next_upstream error timeout;\n");
    fprintf(out, "            proxy_next_upstream_tries %d;\n", 1 + r->num_retries);
    /* Envoy answers upstream connect failures 503 (UF); nginx would say 502/504 */
    fprintf(out, "            error_page 502 504 =503 @lbchain_uf;\n");
}

static void hit_comment(FILE *out, const gw_hit_t *h, const char *pre)
{
    fprintf(out, "            # %sHTTPRoute %s/%s rule %zu", pre, ns_of(&h->route->route->meta),
            h->route->route->meta.name, h->rule);
}

/* A full-match PCRE for a condition, quoted for nginx.conf: exact values escaped. */
static void cond_pattern(const gw_cond_t *c, char *out, size_t n)
{
    char re[1200];
    size_t k = 0;
    const char *v = c->value ? c->value : "";
    if (c->regex) {
        k = (size_t)snprintf(re, sizeof re, "^(?:%s)$", v);
    } else {
        re[k++] = '^';
        for (; *v && k + 3 < sizeof re; v++) {
            if (strchr("\\^$.|?*+()[]{}/", *v)) re[k++] = '\\';
            re[k++] = *v;
        }
        re[k++] = '$';
        re[k] = 0;
    }
    /* nginx quoted strings: \" \' \\ are escapes (and \t \n \r): double every backslash */
    k = 0;
    out[k++] = '"';
    out[k++] = '~';
    for (const char *p = re; *p && k + 4 < n; p++) {
        if (*p == '\\' || *p == '"' || *p == '\'') out[k++] = '\\';
        out[k++] = *p;
    }
    out[k++] = '"';
    out[k] = 0;
}

/* The nginx variable holding condition c's subject, or false when nginx has none. */
static bool cond_source(const gw_cond_t *c, char *out, size_t n)
{
    const char *name = c->name ? c->name : "";
    switch (c->kind) {
    case GW_COND_METHOD: snprintf(out, n, "$request_method"); return true;
    case GW_COND_PATH: snprintf(out, n, "$uri"); return true;
    case GW_COND_HEADER:
    case GW_COND_QUERY: {
        bool hdr = c->kind == GW_COND_HEADER;
        size_t k = (size_t)snprintf(out, n, hdr ? "$http_" : "$arg_");
        if (!*name) return false;
        for (const char *p = name; *p && k + 1 < n; p++) {
            unsigned char ch = (unsigned char)*p;
            if (isalnum(ch)) out[k++] = hdr ? (char)tolower(ch) : (char)ch;
            else if (hdr && ch == '-') out[k++] = '_';
            else if (!hdr && ch == '_') out[k++] = '_';
            else return false;          /* '_' in a header name is ambiguous with '-' */
        }
        out[k] = 0;
        return true;
    }
    }
    return false;
}

/* The index of condition c's bit map (declared once), or -1 when nginx cannot test it. */
static long cond_bit(render_t *rd, const gw_cond_t *c)
{
    char src[300], pat[2600], key[3000];
    if (!cond_source(c, src, sizeof src)) return -1;
    cond_pattern(c, pat, sizeof pat);
    snprintf(key, sizeof key, "%s %s", src, pat);
    size_t i = strs_find(&rd->conds, key);
    if (i == rd->conds.n) {
        lb_vec_push(&rd->conds, lb_strdup(key));
        fprintf(rd->decl, "    map %s $lbchain%d_c%zu {\n        %s 1;\n        default 0;\n"
                "    }\n", src, rd->r->port, i, pat);
    }
    return (long)i;
}

static void cond_str(const gw_cond_t *c, char *out, size_t n)
{
    static const char *const kinds[] = { "method", "header", "query", "path" };
    snprintf(out, n, "%s%s%s %s %s", kinds[c->kind], c->name ? " " : "", c->name ? c->name : "",
             c->regex ? "~" : "=", c->value ? c->value : "");
}

typedef LB_VEC(gw_cand_t) cands_t;

static bool collect_cand(const gw_cand_t *c, void *arg)
{
    cands_t *v = arg;
    lb_vec_push(v, *c);
    return c->n_conds > 0;          /* the first unconditional candidate ends the list */
}

/* One location: its candidates by walking the match order for host and path. */
static void location_render(render_t *rd, FILE *out, const char *host, const char *path)
{
    cands_t cs = { 0 };
    rd->r->walk(host, path, collect_cand, &cs, rd->r->data);
    char target[300];
    if (!cs.n || !cs.v[0].n_conds) {
        const gw_hit_t *h = cs.n ? cs.v[0].hit : NULL;
        if (h) {
            hit_comment(out, h, "");
            fputc('\n', out);
        }
        hit_target(rd, h, target, sizeof target);
        target_action(rd, out, target, false);
        lb_vec_free(&cs);
        return;
    }
    /* conditional candidates: a bit per condition; the first candidate whose bits are all
     * set serves (need[i]: candidate i's bits as '1' or '.'; "": not expressible) */
    enum { MAXB = 64 };
    long bits[MAXB];
    size_t nb = 0, nc = 0;
    char (*need)[MAXB + 1] = lb_calloc(cs.n, sizeof(*need));
    const gw_hit_t *dflt = NULL;
    for (; nc < cs.n; nc++) {
        const gw_cand_t *c = &cs.v[nc];
        if (!c->n_conds) {
            dflt = c->hit;
            hit_comment(out, c->hit, "otherwise ");
            fputc('\n', out);
            break;
        }
        hit_comment(out, c->hit, "");
        memset(need[nc], '.', MAXB);
        bool ok = true;
        for (size_t k = 0; k < c->n_conds; k++) {
            char cstr[300];
            cond_str(&c->conds[k], cstr, sizeof cstr);
            fprintf(out, "%s %s", k ? "," : " if", cstr);
            long bit = cond_bit(rd, &c->conds[k]);
            size_t pos = 0;
            while (pos < nb && bits[pos] != bit) pos++;
            if (bit < 0 || (pos == nb && nb == MAXB)) {
                ok = false;
                continue;
            }
            if (pos == nb) bits[nb++] = bit;
            need[nc][pos] = '1';
        }
        if (!ok) {
            need[nc][0] = 0;
            char *s = lb_sprintf("%s/%s rule %zu match %zu", ns_of(&c->hit->route->route->meta),
                                 c->hit->route->route->meta.name, c->hit->rule, c->hit->match);
            strs_add(&rd->skipped, s);
            lb_free(s);
            fprintf(out, " (not expressible in nginx: no traffic)");
        }
        fputc('\n', out);
    }
    if (!dflt) fprintf(out, "            # otherwise no route: 404\n");
    char *body = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&body, &blen);
    if (!f) abort();                /* out of memory */
    fprintf(f, "\"");
    for (size_t k = 0; k < nb; k++) fprintf(f, "$lbchain%d_c%ld", rd->r->port, bits[k]);
    fprintf(f, "\" $SEL {\n");
    for (size_t i = 0; i < nc; i++) {
        if (!need[i][0]) continue;
        hit_target(rd, cs.v[i].hit, target, sizeof target);
        fprintf(f, "        \"~^%.*s$\" %s;\n", (int)nb, need[i], target);
    }
    hit_target(rd, dflt, target, sizeof target);
    fprintf(f, "        default %s;\n    }\n", target);
    fclose(f);
    lb_free(need);
    size_t sel = strs_find(&rd->sels, body);
    if (sel == rd->sels.n) {
        lb_vec_push(&rd->sels, lb_strdup(body));
        char *at = strstr(body, "$SEL");
        fprintf(rd->decl, "    map %.*s$lbchain%d_sel%zu%s", (int)(at - body), body, rd->r->port,
                sel, at + 4);
    }
    free(body);
    snprintf(target, sizeof target, "$lbchain%d_sel%zu", rd->r->port, sel);
    target_action(rd, out, target, true);
    lb_vec_free(&cs);
}

/* Locations for one path match (Exact P: "= P"; PathPrefix P: "= P" and "P/" or "/"). */
static void path_locations(const gw_route_match_t *m, strs_t *locs)
{
    const char *p = m->path ? m->path : "/";
    if (m->path_type == GW_PATH_EXACT) {
        char *s = lb_sprintf("= %s", p);
        strs_add(locs, s);
        lb_free(s);
        return;
    }
    size_t n = strlen(p);
    if (n > 1 && p[n - 1] == '/') n--;
    if (n == 1) return;                     /* "/": the catch-all, always there */
    char *e = lb_sprintf("= %.*s", (int)n, p), *pre = lb_sprintf("%.*s/", (int)n, p);
    strs_add(locs, e);
    strs_add(locs, pre);
    lb_free(e);
    lb_free(pre);
}

int gw_nginx_render(FILE *out, const gw_nginx_t *r)
{
    strs_t hosts = {0}, locs = {0};
    for (size_t t = 0; t < r->n_tables; t++) {
        const gw_table_t *tab = r->tables[t];
        if (tab->l->hostname && *tab->l->hostname && strcmp(tab->l->hostname, "*") != 0)
            strs_add(&hosts, tab->l->hostname);
        for (size_t i = 0; i < tab->n_routes; i++) {
            const gw_route_status_t *rs = &tab->routes[i];
            if (!rs->attached) continue;
            for (size_t h = 0; h < rs->n_hostnames; h++)
                if (strcmp(rs->hostnames[h], "*") != 0) strs_add(&hosts, rs->hostnames[h]);
            for (size_t ri = 0; ri < rs->route->rules.n; ri++) {
                const gw_route_rule_t *rule = &rs->route->rules.v[ri];
                for (size_t mi = 0; mi < rule->matches.n; mi++)
                    if (rule->matches.v[mi].path_type != GW_PATH_REGEX)
                        path_locations(&rule->matches.v[mi], &locs);
            }
        }
    }
    strs_add(&locs, "/");
    render_t rd = {.r = r};
    char *decl_text = NULL, *srv_text = NULL;
    size_t decl_len = 0, srv_len = 0;
    rd.decl = open_memstream(&decl_text, &decl_len);
    FILE *srv = open_memstream(&srv_text, &srv_len);
    if (!rd.decl || !srv) abort();              /* out of memory */
    for (size_t hi = 0; hi <= hosts.n; hi++) {
        bool dflt = hi == hosts.n;
        const char *host = dflt ? GW_NGINX_OTHER_HOST : hosts.v[hi];
        fprintf(srv, "    server {\n        listen %d%s;\n        server_name %s;\n", r->port,
                dflt ? " default_server" : "", dflt ? "_" : host);
        for (size_t li = 0; li < locs.n; li++) {
            const char *loc = locs.v[li];
            char path[1024];
            if (loc[0] == '=') snprintf(path, sizeof path, "%s", loc + 2);
            else snprintf(path, sizeof path, "%s%s", loc, GW_NGINX_OTHER);
            fprintf(srv, "        location %s {\n", loc);
            location_render(&rd, srv, host, path);
            fprintf(srv, "        }\n");
        }
        fprintf(srv, "        location @lbchain_uf {\n            return 503 \"upstream connect "
                "error or disconnect/reset before headers\";\n        }\n    }\n");
    }
    fclose(rd.decl);
    fclose(srv);
    fprintf(out, "    # Gateway listener port %d, rendered from the HTTPRoutes by lbchain\n", r->port);
    for (size_t i = 0; i < rd.skipped.n; i++)
        fprintf(out, "    # not rendered (a header or query name nginx has no variable for): "
                "%s\n", rd.skipped.v[i]);
    fputs(decl_text, out);
    fputs(srv_text, out);
    free(decl_text);
    free(srv_text);
    int n_skipped = (int)rd.skipped.n;
    for (size_t i = 0; i < rd.ups.n; i++) lb_free(rd.ups.v[i].name);
    lb_vec_free(&rd.ups);
    strs_free(&rd.conds);
    strs_free(&rd.sels);
    strs_free(&rd.skipped);
    strs_free(&rd.targets);
    lb_vec_free(&rd.hits);
    strs_free(&hosts);
    strs_free(&locs);
    return n_skipped;
}

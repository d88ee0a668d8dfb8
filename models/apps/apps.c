/* apps.c -- the "http-server" and "http-client" element types: their parameter tables
 * (names, defaults with sources, docs) and build functions that turn a validated
 * configuration into app_http_server_new / app_http_client_new calls, one per node of
 * the referenced node or group. */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include "apps.h"
#include "element.h"

/* ---- http-server ----------------------------------------------------------------------- */
static const char *const match_choices[] = { "prefix", "exact", NULL };

static const elem_param_t location_params[] = {
    { "path", P_STR, NULL, "URI path of the location, e.g. /healthz", NULL, NULL },
    { "match", P_ENUM, "prefix", "exact (nginx `location = /x`, wins) or prefix (longest "
      "prefix wins)", NULL, match_choices },
    { "status", P_INT, "200", "response status", NULL, NULL },
    { "body", P_STR, "", "response body text", NULL, NULL },
    { "body-size", P_SIZE, "", "body bytes on the wire (default: the length of body)",
      NULL, NULL },
    { "service-time", P_DIST, "0", "time to produce the response, e.g. exp(5ms)", NULL, NULL },
    { "headers", P_STRLIST, "", "extra response headers, \"Name: value\"", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL },
};

static const elem_param_t server_params[] = {
    { "on", P_STR, NULL, "node, group or glob the server runs on (one server per node)",
      NULL, NULL },
    { "port", P_INT, "80", "TCP port", NULL, NULL },
    { "address", P_ADDR, "0.0.0.0", "listen address (0.0.0.0: any)", NULL, NULL },
    /* nginx ngx_http_core_module: keepalive_timeout 75s */
    { "keepalive-timeout", P_DURATION, "75s", "idle keep-alive connections are closed "
      "after this (nginx default 75s; 0: never)", NULL, NULL },
    { "locations", P_OBJLIST, NULL, "what the server answers; no match: 404", location_params,
      NULL },
    { NULL, 0, NULL, NULL, NULL, NULL },
};

static void server_free(void *obj) { app_http_server_free(obj); }

static int check_port(build_ctx_t *ctx, const elem_val_t *v)
{
    if (v->u.i < 1 || v->u.i > 65535)
        return build_error(ctx, v->pos, "port %lld is out of range (1-65535)",
                           (long long)v->u.i);
    return 0;
}

static int server_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *on = elem_get(cfg, "on");
    const elem_val_t *port = elem_get(cfg, "port");
    const elem_val_t *locs = elem_get(cfg, "locations");
    int rc = check_port(ctx, port);
    if (rc < 0)
        return rc;
    net_node_t **nodes;
    size_t nn = build_nodes(ctx, on->u.s, &nodes);
    if (nn == 0)
        return build_error(ctx, on->pos, "http-server '%s': no node matches '%s'", name,
                           on->u.s);
    if (locs->u.objs.n == 0)
        return build_error(ctx, locs->pos, "http-server '%s': needs at least one location",
                           name);
    size_t n = locs->u.objs.n;
    app_location_t *al = lb_calloc(n, sizeof(*al));
    for (size_t i = 0; i < n && rc == 0; i++) {
        const elem_cfg_t *lc = locs->u.objs.v[i];
        const elem_val_t *path = elem_get(lc, "path");
        const elem_val_t *status = elem_get(lc, "status");
        const elem_val_t *bsize = elem_get(lc, "body-size");
        const elem_val_t *hdrs = elem_get(lc, "headers");
        const char *body = elem_str(lc, "body");
        app_location_init(&al[i], path->u.s,
                          strcmp(elem_str(lc, "match"), "exact") == 0 ? APP_MATCH_EXACT
                                                                      : APP_MATCH_PREFIX);
        if (path->u.s[0] != '/')
            rc = build_error(ctx, path->pos, "location path '%s' must start with '/'",
                             path->u.s);
        else if (status->u.i < 100 || status->u.i > 599)
            rc = build_error(ctx, status->pos, "status %lld is not an HTTP status (100-599)",
                             (long long)status->u.i);
        else if (bsize->set && (bsize->u.i > UINT32_MAX || (uint64_t)bsize->u.i < strlen(body)))
            rc = build_error(ctx, bsize->pos, "body-size %lld is smaller than the body "
                             "(%zu bytes) or too large", (long long)bsize->u.i, strlen(body));
        for (size_t j = 0; j < hdrs->u.strs.n && rc == 0; j++) {
            const char *h = hdrs->u.strs.v[j];
            const char *colon = strchr(h, ':');
            if (!colon || colon == h)
                rc = build_error(ctx, hdrs->u.strs.pos[j], "header '%s': expected "
                                 "\"Name: value\"", h);
        }
        al[i].status = (int)status->u.i;
        al[i].body = body;
        al[i].body_size = bsize->set ? bsize->u.i : -1;
        al[i].service_time = elem_get(lc, "service-time")->u.dist;
        al[i].headers = (const char *const *)hdrs->u.strs.v;
        al[i].n_headers = hdrs->u.strs.n;
    }
    app_http_server_opts_t o;
    app_http_server_opts_init(&o);
    o.addr = elem_get(cfg, "address")->u.addr;
    o.keepalive_timeout = elem_get(cfg, "keepalive-timeout")->u.i;
    o.name = name;
    for (size_t i = 0; i < nn && rc == 0; i++) {
        int err = 0;
        app_http_server_t *s = app_http_server_new(nodes[i], (uint16_t)port->u.i, al, n, &o,
                                                   &err);
        char key[300], first[600] = "";
        snprintf(key, sizeof key, "%s:%lld", nodes[i]->name, (long long)port->u.i);
        const char *owner = build_get(ctx, key, "http-listener");
        if (!s && owner) {
            char by[500];
            build_origin(ctx, owner, by, sizeof by);
            snprintf(first, sizeof first, " (by %s)", by);
        }
        if (!s)
            rc = build_error(ctx, port->set ? port->pos : cfg->pos, "http-server '%s' on "
                             "node '%s': cannot listen on port %lld: %s%s", name,
                             nodes[i]->name, (long long)port->u.i, lb_strerror(err), first);
        else {
            build_on_free(ctx, server_free, s);
            build_put(ctx, key, "http-listener", (void *)name);
        }
    }
    lb_free(al);
    return rc;
}

/* ---- http-client ----------------------------------------------------------------------- */
static const char *const mode_choices[] = { "open", "closed", NULL };
static const char *const arrival_choices[] = { "poisson", "constant", NULL };

static const elem_param_t kind_params[] = {
    { "weight", P_FLOAT, "1", "relative share of the source's requests (> 0)", NULL, NULL },
    { "method", P_STR, "", "request method (default: the source's)", NULL, NULL },
    { "host", P_STR, "", "Host header (default: the source's)", NULL, NULL },
    { "path", P_STR, "", "request path (default: the source's path rotation)", NULL, NULL },
    { "headers", P_STRLIST, "", "request headers \"Name: value\", added to the source's "
      "(the same name: this kind's value)", NULL, NULL },
    { "body", P_STR, "", "request body text (default: the source's)", NULL, NULL },
    { "body-size", P_SIZE, "", "request body bytes on the wire (default: the length of "
      "body, else the source's request-size)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL },
};

static const elem_param_t client_params[] = {
    { "from", P_STR, NULL, "node, group or glob sending the traffic (one client per node)",
      NULL, NULL },
    { "to", P_STR, NULL, "destination: an IPv4 address, a cloud element's frontend (e.g. appgw), or nodes whose primary addresses "
      "are used round-robin per new connection", NULL, NULL },
    { "port", P_INT, "80", "destination port", NULL, NULL },
    { "method", P_STR, "GET", "request method", NULL, NULL },
    { "host", P_STR, "", "Host header (empty: the target's address, as curl sends)", NULL,
      NULL },
    { "path", P_STRLIST, "/", "request path; several rotate round-robin", NULL, NULL },
    { "mode", P_ENUM, "open", "open: arrivals at `rate`; closed: `users` that wait for each "
      "response", NULL, mode_choices },
    { "rate", P_RATE, "", "open loop: total request rate, split evenly over the client nodes",
      NULL, NULL },
    { "arrival", P_ENUM, "poisson", "open loop: poisson or constant spacing", NULL,
      arrival_choices },
    { "users", P_INT, "1", "closed loop: users per client node", NULL, NULL },
    { "think-time", P_DIST, "0", "closed loop: pause between a response and the next request",
      NULL, NULL },
    /* APP_CLIENT_RAMP_UP_DEFAULT (JMeter's ramp-up default) */
    { "ramp-up", P_DURATION, "1s", "closed loop: users start spread evenly over this", NULL,
      NULL },
    { "requests", P_INT, "0", "stop after this many (closed: per user; open: in total); "
      "0: unlimited", NULL, NULL },
    { "request-size", P_SIZE, "0", "request body bytes (at least the length of body)",
      NULL, NULL },
    { "headers", P_STRLIST, "", "request headers \"Name: value\" (e.g. \"x-canary: true\"; "
      "Host: as host)", NULL, NULL },
    { "body", P_STR, "", "request body text (its bytes count on the wire; Content-Length "
      "follows)", NULL, NULL },
    { "requests-mix", P_OBJLIST, "", "several request kinds in one source, each request "
      "drawn by weight from the source's seeded stream; a kind's unset keys are the "
      "source's", kind_params, NULL },
    { "keepalive", P_BOOL, "true", "reuse connections (false: Connection: close)", NULL,
      NULL },
    { "connect-timeout", P_DURATION, "0s", "give up connecting after this (0: TCP's SYN "
      "retries, ~127 s)", NULL, NULL },
    { "response-timeout", P_DURATION, "0s", "abort when the response has not arrived this "
      "long after the request was sent (0: none)", NULL, NULL },
    { "start", P_DURATION, "0s", "time of the first request", NULL, NULL },
    { "stop", P_DURATION, "0s", "no request starts at or after this (0: the scenario's "
      "duration)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL },
};

static void client_free(void *obj) { app_http_client_free(obj); }

static bool method_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n >= sizeof(((http_msg_t *)0)->method))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)m[i]))
            return false;
    return true;
}

/* Checks the header lines of base (the source's; may be NULL) and hv (a kind's) with
 * their positions: each a valid line, together at most APP_CLIENT_MAX_HEADERS distinct
 * names besides Host. Returns 0 or a build error. */
static int check_headers(build_ctx_t *ctx, const elem_val_t *hv, const elem_val_t *base)
{
    const char *names[2 * APP_CLIENT_MAX_HEADERS + 2];
    size_t n = 0;
    const elem_val_t *lists[2] = { base, hv };
    for (int l = 0; l < 2; l++) {
        if (!lists[l])
            continue;
        for (size_t j = 0; j < lists[l]->u.strs.n; j++) {
            const char *h = lists[l]->u.strs.v[j];
            const char *why = app_header_check(h);
            if (why)
                return build_error(ctx, lists[l]->u.strs.pos[j], "header '%s': %s", h, why);
            size_t nl = (size_t)(strchr(h, ':') - h);
            if (nl == 4 && strncasecmp(h, "Host", 4) == 0)
                continue;
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++)
                seen = strlen(names[k]) >= nl && strncasecmp(names[k], h, nl) == 0 &&
                       names[k][nl] == ':';
            if (seen)
                continue;
            if (n == APP_CLIENT_MAX_HEADERS)
                return build_error(ctx, lists[l]->u.strs.pos[j], "header '%s': more than %d "
                                   "request headers (proxies add theirs)", h,
                                   APP_CLIENT_MAX_HEADERS);
            names[n++] = h;
        }
    }
    return 0;
}

static int client_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *from = elem_get(cfg, "from");
    const elem_val_t *to = elem_get(cfg, "to");
    const elem_val_t *port = elem_get(cfg, "port");
    const elem_val_t *method = elem_get(cfg, "method");
    const elem_val_t *paths = elem_get(cfg, "path");
    const elem_val_t *rate = elem_get(cfg, "rate");
    const elem_val_t *users = elem_get(cfg, "users");
    const elem_val_t *requests = elem_get(cfg, "requests");
    const elem_val_t *rsize = elem_get(cfg, "request-size");
    const elem_val_t *stop = elem_get(cfg, "stop");
    bool closed = strcmp(elem_str(cfg, "mode"), "closed") == 0;
    int rc = check_port(ctx, port);
    if (rc < 0)
        return rc;
    if (!method_ok(method->u.s))
        return build_error(ctx, method->pos, "method '%s': expected an upper-case token of "
                           "at most 7 letters, e.g. GET", method->u.s);
    for (size_t i = 0; i < paths->u.strs.n; i++)
        if (paths->u.strs.v[i][0] != '/')
            return build_error(ctx, paths->u.strs.pos[i], "path '%s' must start with '/'",
                               paths->u.strs.v[i]);
    if (!closed && !(rate->u.f > 0))
        return build_error(ctx, rate->set ? rate->pos : cfg->pos, "http-client '%s': open "
                           "mode needs a rate > 0 (e.g. rate: 50/s)", name);
    if (closed && (users->u.i < 1 || users->u.i > 1000000))
        return build_error(ctx, users->pos, "users %lld: expected 1 to 1000000",
                           (long long)users->u.i);
    if (requests->u.i < 0)
        return build_error(ctx, requests->pos, "requests must not be negative");
    if (rsize->u.i > UINT32_MAX)
        return build_error(ctx, rsize->pos, "request-size is too large");
    const elem_val_t *hdrs = elem_get(cfg, "headers");
    const elem_val_t *mix = elem_get(cfg, "requests-mix");
    rc = check_headers(ctx, hdrs, NULL);
    if (rc < 0)
        return rc;
    size_t nk = mix->u.objs.n;
    app_request_kind_t *kinds = nk ? lb_calloc(nk, sizeof(*kinds)) : NULL;
    for (size_t i = 0; i < nk && rc == 0; i++) {
        const elem_cfg_t *kc = mix->u.objs.v[i];
        const elem_val_t *w = elem_get(kc, "weight");
        const elem_val_t *km = elem_get(kc, "method");
        const elem_val_t *kp = elem_get(kc, "path");
        const elem_val_t *kb = elem_get(kc, "body");
        const elem_val_t *ks = elem_get(kc, "body-size");
        const elem_val_t *kh = elem_get(kc, "headers");
        size_t blen = strlen(kb->u.s);
        if (!(w->u.f > 0) || !isfinite(w->u.f))
            rc = build_error(ctx, w->pos, "weight %g: expected a number > 0", w->u.f);
        else if (km->set && !method_ok(km->u.s))
            rc = build_error(ctx, km->pos, "method '%s': expected an upper-case token of "
                             "at most 7 letters, e.g. POST", km->u.s);
        else if (kp->set && kp->u.s[0] != '/')
            rc = build_error(ctx, kp->pos, "path '%s' must start with '/'", kp->u.s);
        else if (ks->set && (ks->u.i > UINT32_MAX || (uint64_t)ks->u.i < blen))
            rc = build_error(ctx, ks->pos, "body-size %lld is smaller than the body (%zu "
                             "bytes) or too large", (long long)ks->u.i, blen);
        else
            rc = check_headers(ctx, kh, hdrs);
        kinds[i] = (app_request_kind_t){
            .weight = w->u.f,
            .method = km->set ? km->u.s : NULL,
            .host = elem_get(kc, "host")->set ? elem_str(kc, "host") : NULL,
            .path = kp->set ? kp->u.s : NULL,
            .headers = (const char *const *)kh->u.strs.v,
            .n_headers = kh->u.strs.n,
            .body = kb->set ? kb->u.s : NULL,
            .body_size = ks->set ? ks->u.i : -1,
        };
    }
    if (rc < 0) {
        lb_free(kinds);
        return rc;
    }

    net_node_t **from_nodes;
    size_t nfrom = build_nodes(ctx, from->u.s, &from_nodes);
    if (nfrom == 0) {
        lb_free(kinds);
        return build_error(ctx, from->pos, "http-client '%s': no node matches '%s'", name,
                           from->u.s);
    }
    /* copy: the ctx may reuse its array for the next resolution */
    net_node_t **src = lb_malloc(nfrom * sizeof(*src));
    memcpy(src, from_nodes, nfrom * sizeof(*src));

    LB_VEC(uint32_t) targets = {0};
    uint32_t a, pub[16];
    size_t npub = build_addrs(ctx, to->u.s, pub, 16);   /* an IPv4, or e.g. `to: appgw` */
    if (npub) {
        for (size_t i = 0; i < npub && i < 16; i++) lb_vec_push(&targets, pub[i]);
    } else {
        net_node_t **tn;
        size_t nt = build_nodes(ctx, to->u.s, &tn);
        for (size_t i = 0; i < nt && rc == 0; i++) {
            a = net_node_addr(tn[i]);
            if (!a)
                rc = build_error(ctx, to->pos, "http-client '%s': node '%s' has no address",
                                 name, tn[i]->name);
            lb_vec_push(&targets, a);
        }
        if (nt == 0 && rc == 0)
            rc = build_error(ctx, to->pos, "http-client '%s': '%s' is neither an IPv4 "
                             "address nor a node", name, to->u.s);
    }
    if (rc == 0) {
        app_http_client_opts_t o;
        app_http_client_opts_init(&o);
        o.name = name;
        o.targets = targets.v;
        o.n_targets = targets.n;
        o.port = (uint16_t)port->u.i;
        o.method = method->u.s;
        o.host = elem_str(cfg, "host");
        o.explain = build_explain(ctx);
        o.paths = (const char *const *)paths->u.strs.v;
        o.n_paths = paths->u.strs.n;
        o.mode = closed ? APP_CLIENT_CLOSED : APP_CLIENT_OPEN;
        o.rate = rate->u.f;
        o.arrival = strcmp(elem_str(cfg, "arrival"), "constant") == 0 ? APP_ARRIVAL_CONSTANT
                                                                       : APP_ARRIVAL_POISSON;
        o.users = (int)users->u.i;
        o.think_time = elem_get(cfg, "think-time")->u.dist;
        o.ramp_up = elem_get(cfg, "ramp-up")->u.i;
        o.requests = requests->u.i;
        o.request_size = (uint32_t)rsize->u.i;
        o.headers = (const char *const *)hdrs->u.strs.v;
        o.n_headers = hdrs->u.strs.n;
        o.body = elem_get(cfg, "body")->set ? elem_str(cfg, "body") : NULL;
        o.kinds = kinds;
        o.n_kinds = nk;
        o.keepalive = elem_bool(cfg, "keepalive");
        o.connect_timeout = elem_get(cfg, "connect-timeout")->u.i;
        o.response_timeout = elem_get(cfg, "response-timeout")->u.i;
        o.start = elem_get(cfg, "start")->u.i;
        o.stop = stop->u.i > 0 ? stop->u.i : build_duration(ctx);
        int err = 0;
        app_http_client_t *c = app_http_client_new(src, nfrom, &o, build_metrics(ctx), &err);
        if (!c)
            rc = build_error(ctx, cfg->pos, "http-client '%s': %s", name, lb_strerror(err));
        else
            build_on_free(ctx, client_free, c);
    }
    lb_vec_free(&targets);
    lb_free(src);
    lb_free(kinds);
    return rc;
}

/* ---- registration ---------------------------------------------------------------------- */
static const elem_type_t server_type = {
    .name = "http-server",
    .section = ELEM_APP,
    .doc = "an nginx-like HTTP/1.1 server answering fixed responses per location",
    .params = server_params,
    .build = server_build,
};

static const elem_type_t client_type = {
    .name = "http-client",
    .section = ELEM_TRAFFIC,
    .doc = "HTTP/1.1 traffic: open loop at a rate or closed loop with users; every request "
           "is recorded under the element's name",
    .params = client_params,
    .build = client_build,
};

void apps_register(void)
{
    elem_register(&server_type);
    elem_register(&client_type);
}

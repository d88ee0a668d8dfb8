/* render.c -- `sim --render DIR`: the configuration files of the real chain's stand-ins,
 * rendered from the models of one built variant (include/realchain.h):
 *   - haproxy for each L7 load balancer (App Gateway, ALB): listener, members, the probe
 *     exactly as the model's health checker is configured (path, Host, User-Agent,
 *     interval, timeout, thresholds, accepted statuses) with its initial state loaded from
 *     a server-state file, the model's timeouts and retries, and what it does when no
 *     member is healthy -- App Gateway answers 502 itself (`http-request return` when
 *     `nbsrv()` of the checked backend is 0), the ALB fails open (a second backend with the
 *     same members, unchecked, chosen when none is healthy);
 *   - nginx for each pod: the app's locations (models/apps/http_server_app.c through
 *     nginx_conf.c) or the Istio gateway's route tables (istio_gateway.c through
 *     gateway_api.c);
 *   - nginx for each node's kube-proxy healthCheckNodePort servers (kube_proxy.c's own
 *     response);
 *   - each node's rules: iptables-NODE.rules (iptables-save form) and, for kube-proxy in
 *     nftables mode, nftables-NODE.nft (`nft list ruleset` form, loaded with `nft -f`).
 * What haproxy and nginx cannot reproduce is listed in docs/REALCHAIN.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "realchain.h"
#include "apps.h"
#include "cluster.h"
#include "health.h"
#include "http.h"
#include "istio_gateway.h"
#include "kube_proxy.h"
#include "netfilter.h"
#include "nftables.h"
#include "nginx_conf.h"
#include "realchain_int.h"

/* haproxy's statistics page inside the load balancer's own network namespace (its
 * loopback is private to it, so a fixed port cannot clash with anything). */
#define REALCHAIN_HAPROXY_STATS "127.0.0.1:8404"
/* Client-side timeouts of the stand-ins: App Gateway and the ALB close idle client
 * connections after 60 s (MODELS.md). */
#define REALCHAIN_CLIENT_IDLE_S 60

/* ---- files ----------------------------------------------------------------------------- */

typedef struct outfile { FILE *f; char *path, *tmp; } outfile_t;

static int file_open(outfile_t *o, const char *dir, const char *name, char *err, size_t n)
{
    o->path = lb_sprintf("%s/%s", dir, name);
    o->tmp = lb_sprintf("%s/.%s.tmp", dir, name);
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
        lb_errf(err, n, "%s: %s", o->tmp, strerror(errno));
        lb_free(o->path);
        lb_free(o->tmp);
        return LB_EIO;
    }
    return 0;
}

/* Closes and renames into place; prints "<kind> <name> <path>" to list (may be NULL). */
static int file_close(outfile_t *o, FILE *list, const char *kind, const char *name, char *err,
                      size_t n)
{
    int rc = 0;
    if (ferror(o->f) | (fclose(o->f) != 0) || rename(o->tmp, o->path) != 0) {
        lb_errf(err, n, "%s: %s", o->path, strerror(errno));
        remove(o->tmp);
        rc = LB_EIO;
    } else if (list) {
        fprintf(list, "%s %s %s\n", kind, name, o->path);
    }
    lb_free(o->path);
    lb_free(o->tmp);
    return rc;
}

/* A name usable in a file name: '/' and spaces become '_'. */
static void safe_name(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s", name);
    for (char *c = out; *c; c++)
        if (*c == '/' || *c == ' ') *c = '_';
}

static long secs_up(sim_time_t t) { return (long)((t + SIM_S - 1) / SIM_S); }

/* ---- haproxy --------------------------------------------------------------------------- */

/* An anchored regular expression for the matcher's status ranges (haproxy's `http-check
 * expect rstatus`): "200-399" -> ^(2[0-9][0-9]|3[0-9][0-9])$. Exact for whole hundreds and
 * for single codes; other ranges are spelled out code by code. */
static void matcher_regex(const health_matcher_t *m, char *out, size_t n)
{
    size_t k = (size_t)snprintf(out, n, "^(");
    bool first = true;
    for (int i = 0; i < m->n; i++)
        for (int c = m->r[i].lo; c <= m->r[i].hi && k < n; c++) {
            if (c % 100 == 0 && c + 99 <= m->r[i].hi) {
                k += (size_t)snprintf(out + k, n - k, "%s%d[0-9][0-9]", first ? "" : "|", c / 100);
                c += 99;
            } else {
                k += (size_t)snprintf(out + k, n - k, "%s%d", first ? "" : "|", c);
            }
            first = false;
        }
    if (k < n) snprintf(out + k, n - k, ")$");
}

static void quote_hdr(FILE *f, const char *s)
{
    /* haproxy words: backslash-escape spaces and quotes */
    for (; *s; s++) {
        if (*s == ' ' || *s == '"' || *s == '\'' || *s == '\\' || *s == '#') fputc('\\', f);
        fputc(*s, f);
    }
}

static int render_haproxy(const realchain_l7_t *lb, const char *dir, FILE *list, char *err,
                          size_t n)
{
    const health_params_t *hp = health_params(lb->probe);
    char fname[300], sname[300], ename[300], ip[16], src[16];
    snprintf(fname, sizeof fname, "%s.haproxy.cfg", lb->name);
    snprintf(sname, sizeof sname, "%s.haproxy.state", lb->name);
    snprintf(ename, sizeof ename, "%s.haproxy.errorpage", lb->name);
    lb_ip_str(lb->instance_addr[0], src);

    /* the page haproxy sends when it could not connect (its 503): the vendor's answer */
    outfile_t ef;
    int rc = file_open(&ef, dir, ename, err, n);
    if (rc) return rc;
    fprintf(ef.f, "HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nServer: %s\r\n"
            "Connection: close\r\n\r\n<html><body><h1>%d %s</h1></body></html>\r\n",
            lb->timeout_status, http_reason_phrase(lb->timeout_status), lb->server_header,
            lb->timeout_status, http_reason_phrase(lb->timeout_status));
    if ((rc = file_close(&ef, NULL, NULL, NULL, err, n))) return rc;

    /* initial probe state: haproxy counts a server's health from 0 to rise+fall-1, UP from
     * rise; a server starts UP one failure from DOWN, so the model's initial state is
     * loaded from a server-state file: UP with every failure still to come, or DOWN with
     * `initial_passes` passes to go */
    int rise = hp->healthy_threshold, fall = hp->unhealthy_threshold;
    int ipass = hp->initial_passes ? hp->initial_passes : rise;
    if (ipass > rise) ipass = rise;
    bool up = hp->initial == HEALTH_UP;
    int health = up ? rise + fall - 1 : rise - ipass;
    outfile_t sf;
    if ((rc = file_open(&sf, dir, sname, err, n))) return rc;
    fprintf(sf.f, "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state "
            "srv_uweight srv_iweight srv_time_since_last_change srv_check_status "
            "srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id "
            "srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
            "srv_check_addr srv_agent_addr srv_agent_port\n");
    for (size_t i = 0; i < lb->n_members; i++)
        fprintf(sf.f, "%zu %s_probe%zu 1 m%zu %s %d 0 1 1 0 1 0 %d 6 0 0 0 - %u - 0 0 - - 0\n",
                10 + i, lb->name, i, i, lb_ip_str(lb->members[i], ip), up ? 2 : 0, health,
                lb->member_port);
    if ((rc = file_close(&sf, NULL, NULL, NULL, err, n))) return rc;

    outfile_t f;
    if ((rc = file_open(&f, dir, fname, err, n))) return rc;
    FILE *o = f.f;
    fprintf(o, "# %s '%s' stand-in, rendered by lbchain from the model's parameters.\n",
            lb->kind, lb->name);
    fprintf(o, "global\n    pidfile %s/%s.haproxy.pid\n    server-state-file %s/%s\n"
            "    maxconn 4096\n\n", dir, lb->name, dir, sname);
    fprintf(o, "defaults\n    mode http\n    load-server-state-from-file global\n"
            "    option http-keep-alive\n    timeout client %ds\n    timeout http-request %ds\n"
            "    timeout http-keep-alive %ds\n\n", REALCHAIN_CLIENT_IDLE_S,
            REALCHAIN_CLIENT_IDLE_S, REALCHAIN_CLIENT_IDLE_S);
    fprintf(o, "listen stats\n    bind %s\n    stats enable\n    stats uri /stats\n\n",
            REALCHAIN_HAPROXY_STATS);
    fprintf(o, "frontend %s\n", lb->name);
    for (size_t i = 0; i < lb->n_listen; i++)
        fprintf(o, "    bind %s:%u\n", lb_ip_str(lb->listen[i], ip), lb->port);
    fprintf(o, "    option forwardfor\n");
    if (lb->fail_open) {
        fprintf(o, "    # no healthy member: fail open, send to all members\n"
                "    use_backend %s_all if { nbsrv(%s_members) eq 0 }\n", lb->name, lb->name);
    } else {
        fprintf(o, "    # no healthy member: the %s answers %d itself (no fail-open)\n"
                "    http-request return status %d content-type text/html string \"",
                lb->kind, lb->no_healthy_status, lb->no_healthy_status);
        for (const char *c = lb->no_healthy_body; *c; c++) {
            if (*c == '\r') continue;
            if (*c == '\n') fputs(" ", o);
            else if (*c == '"' || *c == '\\') fprintf(o, "\\%c", *c);
            else fputc(*c, o);
        }
        fprintf(o, "\" hdr Server \"%s\" if { nbsrv(%s_members) eq 0 }\n", lb->server_header,
                lb->name);
    }
    fprintf(o, "    default_backend %s_members\n\n", lb->name);
    for (int all = 0; all <= (lb->fail_open ? 1 : 0); all++) {
        fprintf(o, "backend %s_%s\n    balance roundrobin\n", lb->name, all ? "all" : "members");
        fprintf(o, "    timeout connect %lds\n    timeout server %lds\n",
                secs_up(lb->connect_timeout), secs_up(lb->response_timeout));
        /* a timed-out request is retried on another member, if there is one */
        int retries = lb->n_members > 1 ? lb->retries : 0;
        if (retries > 0)
            fprintf(o, "    retries %d\n    option redispatch 1\n"
                    "    retry-on conn-failure response-timeout\n", retries);
        else
            fprintf(o, "    retries 0\n");
        fprintf(o, "    errorfile 503 %s/%s\n", dir, ename);
        for (size_t i = 0; i < lb->n_members; i++) {
            fprintf(o, "    server m%zu %s:%u source %s", i, lb_ip_str(lb->members[i], ip),
                    lb->member_port, src);
            if (!all) fprintf(o, " track %s_probe%zu/m%zu", lb->name, i, i);
            fputc('\n', o);
        }
        fputc('\n', o);
    }
    /* the probe: one backend per member, so that each carries its own Host */
    char re[512];
    matcher_regex(&hp->matcher, re, sizeof re);
    for (size_t i = 0; i < lb->n_members; i++) {
        char host[64];
        if (hp->host && *hp->host) snprintf(host, sizeof host, "%s", hp->host);
        else if (lb->probe_port == 80) lb_ip_str(lb->members[i], host);
        else snprintf(host, sizeof host, "%s:%u", lb_ip_str(lb->members[i], ip), lb->probe_port);
        fprintf(o, "backend %s_probe%zu\n", lb->name, i);
        /* a probe's timeout runs from its start: haproxy's check connect timeout is
         * min(timeout connect, inter), then `timeout check` bounds the reply */
        fprintf(o, "    timeout connect %lds\n    timeout server %lds\n    timeout check %lds\n",
                secs_up(hp->timeout), secs_up(hp->timeout), secs_up(hp->timeout));
        if (hp->proto == HEALTH_HTTP) {
            fprintf(o, "    option httpchk\n    http-check send meth GET uri %s ver HTTP/1.1 "
                    "hdr Host ", hp->path ? hp->path : "/");
            quote_hdr(o, host);
            if (hp->user_agent) {
                fprintf(o, " hdr User-Agent ");
                quote_hdr(o, hp->user_agent);
            }
            fprintf(o, " hdr Connection close\n    http-check expect rstatus %s\n", re);
        }
        fprintf(o, "    server m%zu %s:%u source %s check port %u inter %lds fall %d rise %d\n\n",
                i, lb_ip_str(lb->members[i], ip), lb->member_port, src, lb->probe_port,
                secs_up(hp->interval), fall, rise);
    }
    return file_close(&f, list, "haproxy", lb->name, err, n);
}

/* ---- nginx ------------------------------------------------------------------------------ */

static void nginx_head(FILE *o, const char *dir, const char *base, const char *what)
{
    fprintf(o, "# %s, rendered by lbchain from the model.\n", what);
    fprintf(o, "daemon off;\nworker_processes 1;\nuser root;\npid %s/%s.pid;\n"
            "error_log %s/%s.log warn;\nevents { worker_connections 1024; }\n", dir, base, dir,
            base);
    fprintf(o, "http {\n    access_log off;\n    server_tokens off;\n");
    fprintf(o, "    client_body_temp_path %s/tmp-%s/body;\n    proxy_temp_path %s/tmp-%s/proxy;\n"
            "    fastcgi_temp_path %s/tmp-%s/fastcgi;\n    uwsgi_temp_path %s/tmp-%s/uwsgi;\n"
            "    scgi_temp_path %s/tmp-%s/scgi;\n", dir, base, dir, base, dir, base, dir, base,
            dir, base);
    fprintf(o, "    geo $%s { default \"$\"; }\n", NGINX_DOLLAR_VAR);
}

/* Opens DIR/<prefix>-<name>.nginx.conf for one nginx stand-in (its temp directory made)
 * and writes its main part up to the open http block. */
static int nginx_open(outfile_t *f, const char *dir, const char *prefix, const char *name,
                      const char *what, char *err, size_t n)
{
    char base[300], fname[320], sn[256], tmpdir[600];
    safe_name(sn, sizeof sn, name);
    snprintf(base, sizeof base, "%s-%s.nginx", prefix, sn);
    snprintf(fname, sizeof fname, "%s.conf", base);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp-%s", dir, base);
    if (mkdir(tmpdir, 0755) && errno != EEXIST) {
        lb_errf(err, n, "%s: %s", tmpdir, strerror(errno));
        return LB_EIO;
    }
    int rc = file_open(f, dir, fname, err, n);
    if (rc == 0) nginx_head(f->f, dir, base, what);
    return rc;
}

static int render_pod(cluster_pod_t *pod, const char *dir, FILE *list, char *err, size_t n)
{
    if (pod->app_kind != CLUSTER_APP_NGINX && pod->app_kind != CLUSTER_APP_ISTIO) return 0;
    bool istio = pod->app_kind == CLUSTER_APP_ISTIO;
    char what[400];
    snprintf(what, sizeof what, istio ? "Istio gateway pod %s/%s (stands in for Envoy: the "
             "HTTPRoutes rendered by gateway_api.c)" : "pod %s/%s (its nginx configuration "
             "from the manifest)", pod->ns, pod->name);
    outfile_t f;
    int rc = nginx_open(&f, dir, "pod", pod->name, what, err, n);
    if (rc) return rc;
    if (istio) istio_gw_render_nginx(pod->app, f.f);
    else app_http_server_render_nginx(pod->app, f.f, "    ");
    fprintf(f.f, "}\n");
    return file_close(&f, list, "pod", pod->name, err, n);
}

/* kube-proxy's healthCheckNodePort servers on one node: each answers every request with
 * the response kube_proxy.c builds now. */
static int render_hc(cluster_t *c, cluster_node_t *nd, const char *dir, FILE *list, char *err,
                     size_t n)
{
    bool any = false;
    for (size_t i = 0; i < cluster_service_count(c) && !any; i++) {
        const k8s_service_t *s = cluster_service_at(c, i);
        any = kp_health_port(nd->kp, s->meta.ns, s->meta.name) != 0;
    }
    if (!any) return 0;
    char what[400];
    snprintf(what, sizeof what, "kube-proxy healthCheckNodePort servers of node %s",
             nd->node->name);
    outfile_t f;
    int rc = nginx_open(&f, dir, "hc", nd->node->name, what, err, n);
    if (rc) return rc;
    for (size_t i = 0; i < cluster_service_count(c); i++) {
        const k8s_service_t *s = cluster_service_at(c, i);
        uint16_t port = kp_health_port(nd->kp, s->meta.ns, s->meta.name);
        if (!port) continue;
        http_msg_t *m = kp_health_response(nd->kp, s->meta.ns, s->meta.name);
        char *hdr[HTTP_MAX_HEADERS];
        size_t nh = 0;
        for (int k = 0; k < m->n_headers; k++)
            hdr[nh++] = lb_sprintf("%s: %s", m->headers[k].name, m->headers[k].value);
        app_location_t loc;
        app_location_init(&loc, "/", APP_MATCH_PREFIX);     /* any path (hcHandler) */
        loc.status = m->status;
        loc.body = m->body;
        loc.headers = (const char *const *)hdr;
        loc.n_headers = nh;
        fprintf(f.f, "    # %s/%s: %d local endpoint(s)\n", s->meta.ns, s->meta.name,
                kp_health_local_endpoints(nd->kp, s->meta.ns, s->meta.name));
        nginx_conf_render_server(f.f, port, &loc, 1, "    ");
        for (size_t k = 0; k < nh; k++) lb_free(hdr[k]);
        net_msg_unref(&m->base);
    }
    fprintf(f.f, "}\n");
    return file_close(&f, list, "hc", nd->node->name, err, n);
}

/* A node's netfilter rules: in iptables-save form (what --dump-iptables prints), for
 * iptables-restore in the node's namespace, and, when the node has an nftables ruleset
 * (kube-proxy in nftables mode), in `nft list ruleset` form (what --dump-nft prints), for
 * `nft -f`. The iptables file is left out when the node has only nftables rules. */
static int render_rules(net_node_t *nd, const char *dir, FILE *list, char *err, size_t n)
{
    char fname[300], sn[256];
    safe_name(sn, sizeof sn, nd->name);
    nf_t *nf = nf_get(nd);
    outfile_t f;
    int rc = 0;
    if (!nft_active(nf) || nf_rule_count(nf) > 0) {
        snprintf(fname, sizeof fname, "iptables-%s.rules", sn);
        rc = file_open(&f, dir, fname, err, n);
        if (rc) return rc;
        nf_save(nf, f.f, false);
        rc = file_close(&f, list, "iptables", nd->name, err, n);
    }
    if (rc == 0 && nft_active(nf)) {
        snprintf(fname, sizeof fname, "nftables-%s.nft", sn);
        rc = file_open(&f, dir, fname, err, n);
        if (rc) return rc;
        nft_list(nf, f.f);
        rc = file_close(&f, list, "nftables", nd->name, err, n);
    }
    return rc;
}

int realchain_render(scn_run_t *r, const char *dir, FILE *out, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) && errno != EEXIST) {
        lb_errf(err, errlen, "%s: %s", dir, strerror(errno));
        return LB_EIO;
    }
    int rc = 0;
    for (size_t i = 0; i < scn_run_element_count(r) && rc == 0; i++) {
        const char *name = scn_run_element_name(r, i);
        void *obj;
        realchain_l7_t l7;
        if (realchain_l7_read(r, name, &l7)) {
            if (l7.n_instances && l7.port && l7.probe)
                rc = render_haproxy(&l7, dir, out, err, errlen);
        } else if ((obj = realchain_object(r, name, "cluster"))) {
            cluster_t *c = obj;
            for (size_t k = 0; k < cluster_pod_count(c) && rc == 0; k++)
                rc = render_pod(cluster_pod_at(c, k), dir, out, err, errlen);
            for (size_t k = 0; k < cluster_node_count(c) && rc == 0; k++)
                rc = render_hc(c, cluster_node_at(c, k), dir, out, err, errlen);
            for (size_t k = 0; k < cluster_node_count(c) && rc == 0; k++)
                rc = render_rules(cluster_node_at(c, k)->node, dir, out, err, errlen);
        }
    }
    return rc;
}

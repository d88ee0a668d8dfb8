/* test_nginx_conf.c -- the nginx config reader: the seed's real configs (heredoc in the
 * container args, ConfigMap with an alias'd file) served by the nginx-like server, the
 * tokenizer (quotes, escapes, comments, errors with lines), the directive subset, the
 * warnings for everything unsupported, and shell heredoc extraction. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nginx_conf.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------------------------ */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = lb_malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

/* The seed file, from /work/shared/seed or ../shared/seed; NULL (and the test skips with
 * a message) when neither exists, as in a fresh clone. */
static char *seed(const char *name)
{
    static const char *const dirs[] = { "../shared/seed/eks-k8s", "/work/shared/seed/eks-k8s" };
    for (size_t i = 0; i < 2; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dirs[i], name);
        char *t = slurp(p);
        if (t)
            return t;
    }
    fprintf(stderr, "nginx_conf: seed %s not found (no ../shared): test skipped\n", name);
    return NULL;
}

/* The YAML literal block scalar that follows the line containing `key` (ending in "|"),
 * de-indented the way a YAML loader does: what the manifest loader hands the model. */
static char *yaml_block(const char *text, const char *key)
{
    const char *k = strstr(text, key);
    ck_assert_msg(k != NULL, "no %s in the seed", key);
    const char *line = strchr(k, '\n') + 1;
    int indent = (int)strspn(line, " ");
    size_t cap = strlen(line) + 1, n = 0;
    char *out = lb_malloc(cap);
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        int sp = (int)strspn(line, " ");
        if (len > (size_t)sp && sp < indent)
            break;                          /* a less-indented line ends the block */
        if (len > (size_t)indent) {
            memcpy(out + n, line + indent, len - indent);
            n += len - indent;
        }
        out[n++] = '\n';
        line = eol ? eol + 1 : line + len;
    }
    while (n >= 2 && out[n - 1] == '\n' && out[n - 2] == '\n')
        n--;                                /* YAML "clip" chomping */
    out[n] = 0;
    return out;
}

static const app_location_t *loc(const nginx_server_t *s, const char *path, int match)
{
    for (size_t i = 0; i < s->n_locs; i++)
        if (strcmp(s->locs[i].path, path) == 0 && s->locs[i].match == match)
            return &s->locs[i];
    return NULL;
}

static bool has_header(const app_location_t *l, const char *h)
{
    for (size_t i = 0; i < l->n_headers; i++)
        if (strcmp(l->headers[i], h) == 0)
            return true;
    return false;
}

/* Some warning at `line` (0: any) contains `text`. */
static bool warned(const nginx_warnings_t *w, int line, const char *text)
{
    for (size_t i = 0; i < w->n; i++)
        if ((!line || w->v[i].line == line) && strstr(w->v[i].msg, text))
            return true;
    return false;
}

static void dump(const nginx_warnings_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        fprintf(stderr, "  line %d: %s\n", w->v[i].line, w->v[i].msg);
}

static int parse(const char *text, nginx_server_t *s, nginx_warnings_t *w)
{
    memset(w, 0, sizeof *w);
    return nginx_conf_parse(text, NULL, NULL, s, w);
}

/* ---- the seed ----------------------------------------------------------------------------- */
static void check_app(const char *file, int n, const char *body)
{
    char *yaml = seed(file);
    if (!yaml)
        return;
    k8s_container_t c = { 0 };
    c.name = "nginx";
    /* k8s.h: the loader joins command and args with "\n" */
    char *script = yaml_block(yaml, "- |");
    c.nginx_conf = lb_sprintf("/bin/sh\n-c\n%s", script);
    lb_free(script);
    nginx_server_t s;
    nginx_warnings_t w = { 0 };
    ck_assert_int_eq(nginx_conf_from_container(NULL, "sample-apps", &c, &s, &w), 0);
    if (w.n)
        dump(&w);
    ck_assert_int_eq(w.n, 0);
    ck_assert_int_eq(s.listen_port, 8080);
    ck_assert_str_eq(s.server_name, "_");
    ck_assert_int_eq(s.n_locs, 4);
    ck_assert_ptr_nonnull(strstr(s.source, "/etc/nginx/conf.d/default.conf"));
    char p[32], info[128], hb[64];
    snprintf(p, sizeof p, "/app%d", n);
    const app_location_t *l = loc(&s, p, APP_MATCH_PREFIX);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->status, 200);
    ck_assert_str_eq(l->body, body);
    ck_assert_int_eq(l->body_size, -1);
    ck_assert(has_header(l, "Content-Type: text/plain"));
    snprintf(p, sizeof p, "/app%d/info", n);
    l = loc(&s, p, APP_MATCH_PREFIX);
    ck_assert_ptr_nonnull(l);
    snprintf(info, sizeof info, "{\"app\":\"sample-app-%d\",\"version\":\"1.0\",\"namespace\":"
             "\"sample-apps\"}\n", n);
    ck_assert_str_eq(l->body, info);
    ck_assert(has_header(l, "Content-Type: application/json"));
    snprintf(p, sizeof p, "/app%d/health", n);
    ck_assert_str_eq(loc(&s, p, APP_MATCH_PREFIX)->body, "healthy\n");
    snprintf(hb, sizeof hb, "Sample App %d - Use /app%d endpoint\n", n, n);
    ck_assert_str_eq(loc(&s, "/", APP_MATCH_PREFIX)->body, hb);
    nginx_server_free(&s);
    nginx_warnings_free(&w);
    lb_free(c.nginx_conf);
    lb_free(yaml);
}

START_TEST(seed_app1_app2)
{
    check_app("app1-deployment.yaml", 1, "Hello from App 1\n");
    check_app("app2-deployment.yaml", 2, "Hello from App 2\n");
}
END_TEST

/* The health responder's config behind the real server's nginx matching: /healthz/ready
 * is its own location, /healthzfoo still matches /healthz (plain string prefix). */
START_TEST(seed_health_responder_served)
{
    char *yaml = seed("health-responder.yaml");
    if (!yaml)
        return;
    k8s_container_t c = { 0 };
    c.name = "nginx";
    c.nginx_conf = yaml_block(yaml, "- |");
    nginx_server_t s;
    nginx_warnings_t w = { 0 };
    ck_assert_int_eq(nginx_conf_from_container(NULL, "gateway-health", &c, &s, &w), 0);
    ck_assert_int_eq(w.n, 0);           /* access_log off is accepted silently */
    tu_pair_t t;
    tu_pair_new(&t, 1, SIM_US, 0, 0);
    int rc = 0;
    app_http_server_t *srv = app_http_server_new(t.b, (uint16_t)s.listen_port, s.locs,
                                                 s.n_locs, NULL, &rc);
    ck_assert_ptr_nonnull(srv);
    static const struct { const char *path, *body; } want[] = {
        { "/healthz", "healthy\n" }, { "/healthz/ready", "ready\n" },
        { "/healthz/live", "live\n" }, { "/healthz/ready?x=1", "ready\n" },
        { "/healthzfoo", "healthy\n" }, { "/", "ok\n" }, { "/anything", "ok\n" },
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int li = app_http_server_match(srv, want[i].path);
        ck_assert_msg(li >= 0, "%s", want[i].path);
        ck_assert_msg(strcmp(s.locs[li].body, want[i].body) == 0, "%s -> %s", want[i].path,
                      s.locs[li].body);
    }
    app_http_server_free(srv);
    tu_pair_free(&t);
    nginx_server_free(&s);
    nginx_warnings_free(&w);
    lb_free(c.nginx_conf);
    lb_free(yaml);
}
END_TEST

/* users-api: nginx.conf from a ConfigMap key, `alias` to the users.json key. */
START_TEST(seed_users_api_configmap)
{
    char *yaml = seed("sample-api.yaml");
    if (!yaml)
        return;
    k8s_objects_t o = { 0 };
    k8s_configmap_t *cm = lb_calloc(1, sizeof *cm);
    cm->meta.name = lb_strdup("users-api-config");
    cm->meta.ns = lb_strdup("api-services");
    k8s_kv_t a = { lb_strdup("nginx.conf"), yaml_block(yaml, "nginx.conf: |") };
    k8s_kv_t b = { lb_strdup("users.json"), yaml_block(yaml, "users.json: |") };
    lb_vec_push(&cm->data, a);
    lb_vec_push(&cm->data, b);
    lb_vec_push(&o.configmaps, cm);
    k8s_container_t c = { 0 };
    c.name = "users-api";
    char *mounts[] = { "users-api-config" };
    c.config_maps.v = mounts;
    c.config_maps.n = 1;
    nginx_server_t s;
    nginx_warnings_t w = { 0 };
    ck_assert_int_eq(nginx_conf_from_container(&o, "api-services", &c, &s, &w), 0);
    if (w.n)
        dump(&w);
    ck_assert_int_eq(w.n, 0);
    ck_assert_int_eq(s.listen_port, 8080);
    ck_assert_str_eq(s.source, "ConfigMap api-services/users-api-config key nginx.conf");
    ck_assert_int_eq(s.n_locs, 4);
    const app_location_t *l = loc(&s, "/api/users", APP_MATCH_EXACT);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->status, 200);
    ck_assert_str_eq(l->body, b.value);
    ck_assert_ptr_nonnull(strstr(l->body, "\"name\": \"Carol Williams\""));
    ck_assert(has_header(l, "Content-Type: application/json"));
    /* /api/users/x names "users.json/x": 404 */
    ck_assert_int_eq(loc(&s, "/api/users", APP_MATCH_PREFIX)->status, 404);
    l = loc(&s, "/health", APP_MATCH_PREFIX);
    ck_assert_int_eq(l->status, 200);
    ck_assert_str_eq(l->body, "{\"status\": \"healthy\"}");
    ck_assert(has_header(l, "Content-Type: application/json"));
    l = loc(&s, "/", APP_MATCH_PREFIX);
    ck_assert_int_eq(l->status, 404);
    ck_assert_str_eq(l->body, "{\"error\": \"not found\"}");
    nginx_server_free(&s);
    nginx_warnings_free(&w);

    /* the same container without the ConfigMap defined: nothing found, and said so */
    k8s_objects_t none = { 0 };
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(nginx_conf_from_container(&none, "api-services", &c, &s, &w), LB_ENOENT);
    ck_assert(warned(&w, 0, "mounts ConfigMap api-services/users-api-config, which is not "
                     "defined"));
    nginx_server_free(&s);
    nginx_warnings_free(&w);
    k8s_objects_free(&o);
    lb_free(yaml);
}
END_TEST

/* ---- tokenizer ---------------------------------------------------------------------------- */
START_TEST(tokens_quotes_escapes_comments)
{
    const char *conf =
        "# a comment line\n"
        "server {   # trailing comment\n"
        "  listen 127.0.0.1:9090 default_server;\n"
        "  location = /q { return 200 \"dq \\\"x\\\" \\t tab\\n\"; }\n"
        "  location /s { return 200 'it\\'s \\\\ back #not-a-comment'; }\n"
        "  location /w { return 200 a#b\\;c; }\n"
        "  location =/glued { return 201; }\n"
        "  location ^~/pre { return 202 'multi\n"
        "line'; }\n"
        "}\n";
    nginx_server_t s;
    nginx_warnings_t w;
    ck_assert_int_eq(parse(conf, &s, &w), 0);
    if (w.n)
        dump(&w);
    ck_assert_int_eq(w.n, 0);
    ck_assert_int_eq(s.listen_port, 9090);
    ck_assert_str_eq(loc(&s, "/q", APP_MATCH_EXACT)->body, "dq \"x\" \t tab\n");
    ck_assert_str_eq(loc(&s, "/s", APP_MATCH_PREFIX)->body, "it's \\ back #not-a-comment");
    /* nginx keeps the backslash of escapes other than \" \' \\ \t \r \n */
    ck_assert_str_eq(loc(&s, "/w", APP_MATCH_PREFIX)->body, "a#b\\;c");
    ck_assert_int_eq(loc(&s, "/glued", APP_MATCH_EXACT)->status, 201);
    ck_assert_ptr_null(loc(&s, "/glued", APP_MATCH_EXACT)->body);
    ck_assert_str_eq(loc(&s, "/pre", APP_MATCH_PREFIX)->body, "multi\nline");
    /* without default_type: the nginx image's application/octet-stream */
    ck_assert(has_header(loc(&s, "/q", APP_MATCH_EXACT),
                         "Content-Type: " NGINX_DEFAULT_TYPE));
    nginx_server_free(&s);
    nginx_warnings_free(&w);
}
END_TEST

START_TEST(syntax_errors_with_lines)
{
    static const struct { const char *conf; int line; const char *msg; } bad[] = {
        { "server {\n listen 80;\n location / { return 200 'x' }\n}\n", 3, "unexpected \"}\"" },
        { "server {\n listen 80\n}\n", 3, "unexpected \"}\"" },
        { "server {\n listen 80;\n", 3, "expecting \"}\" (block opened on line 1)" },
        { "server {\n return 200 'abc;\n}\n", 4, "single-quoted string opened on line 2" },
        { "}\n", 1, "unexpected \"}\"" },
        { "server {\n ;\n}\n", 2, "unexpected \";\"" },
        { "server {\n return 200 'a'x;\n}\n", 2, "unexpected \"x\" after a quoted" },
        { "server { listen 80; }\nworker_processes", 2, "expecting \";\" or \"}\"" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        nginx_server_t s;
        nginx_warnings_t w;
        ck_assert_msg(parse(bad[i].conf, &s, &w) == LB_EPARSE, "case %zu parsed", i);
        ck_assert_msg(w.n == 1 && w.v[0].line == bad[i].line && strstr(w.v[0].msg, bad[i].msg),
                      "case %zu: line %d '%s'", i, w.n ? w.v[0].line : -1,
                      w.n ? w.v[0].msg : "");
        ck_assert_int_eq(s.n_locs, 0);
        nginx_server_free(&s);
        nginx_warnings_free(&w);
    }
    nginx_server_t s;
    nginx_warnings_t w;
    ck_assert_int_eq(parse("# nothing\nevents {}\n", &s, &w), LB_ENOENT);
    ck_assert(warned(&w, 0, "no server block"));
    nginx_server_free(&s);
    nginx_warnings_free(&w);
    ck_assert_int_eq(nginx_conf_parse(NULL, NULL, NULL, &s, NULL), LB_ENOENT);
}
END_TEST

/* ---- directives --------------------------------------------------------------------------- */
START_TEST(unsupported_directives_warn)
{
    const char *conf =
        "upstream app { server 10.0.0.1; }\n"                          /* 1 */
        "server {\n"                                                   /* 2 */
        "  listen 443 ssl;\n"                                          /* 3 */
        "  listen 8443;\n"                                             /* 4 */
        "  rewrite ^/old /new;\n"                                      /* 5 */
        "  location ~ \\.php$ { return 403; }\n"                       /* 6 */
        "  location /api { proxy_pass http://app; }\n"                 /* 7 */
        "  location /x { if ($x) { return 500; } return 200 'x'; }\n"  /* 8 */
        "  location /n { location /n/m { return 200; } return 204; }\n"/* 9 */
        "  location @fallback { return 502; }\n"                       /* 10 */
        "  location /v { return 200 'host=$host'; }\n"                 /* 11 */
        "  location /static { }\n"                                     /* 12 */
        "  location /dir { alias /data/; }\n"                          /* 13 */
        "  location /file { alias /data/f.txt; }\n"                    /* 14 */
        "  location /v { return 200; }\n"                              /* 15 */
        "  location /t { return 200 'a'; return 500; }\n"              /* 16 */
        "  include /etc/nginx/extra/*.conf;\n"                         /* 17 */
        "}\n"
        "server { listen 81; }\n";                                     /* 19 */
    nginx_server_t s;
    nginx_warnings_t w;
    ck_assert_int_eq(parse(conf, &s, &w), 0);
    ck_assert(warned(&w, 1, "directive \"upstream\" outside server"));
    ck_assert(warned(&w, 3, "TLS is not modelled"));
    ck_assert(warned(&w, 4, "second listen port 8443"));
    ck_assert(warned(&w, 5, "directive \"rewrite\" in server"));
    ck_assert(warned(&w, 6, "regular-expression location \"~ \\.php$\""));
    ck_assert(warned(&w, 7, "directive \"proxy_pass\" in location /api"));
    ck_assert(warned(&w, 7, "no return or alias"));
    ck_assert(warned(&w, 8, "directive \"if\" in location /x"));
    ck_assert(warned(&w, 9, "nested location \"/n/m\""));
    ck_assert(warned(&w, 10, "named location \"@fallback\""));
    ck_assert(warned(&w, 11, "sent literally"));
    ck_assert(warned(&w, 12, "no return or alias"));
    ck_assert(warned(&w, 13, "alias to a directory"));
    ck_assert(warned(&w, 14, "alias file /data/f.txt is not provided (no ConfigMap key f.txt)"));
    ck_assert(warned(&w, 15, "duplicate location \"/v\""));
    ck_assert(warned(&w, 16, "second \"return\""));
    ck_assert(warned(&w, 17, "include /etc/nginx/extra/*.conf is not followed"));
    ck_assert(warned(&w, 19, "only the first server block"));
    ck_assert_int_eq(w.n, 18);
    ck_assert_int_eq(s.listen_port, 443);
    ck_assert_int_eq(loc(&s, "/x", APP_MATCH_PREFIX)->status, 200);   /* return still runs */
    ck_assert_int_eq(loc(&s, "/n", APP_MATCH_PREFIX)->status, 204);
    ck_assert_str_eq(loc(&s, "/v", APP_MATCH_PREFIX)->body, "host=$host");
    ck_assert_int_eq(loc(&s, "/static", APP_MATCH_PREFIX)->status, 404);
    ck_assert_ptr_nonnull(strstr(loc(&s, "/static", APP_MATCH_PREFIX)->body,
                                 "<title>404 Not Found</title>"));
    ck_assert_int_eq(loc(&s, "/file", APP_MATCH_PREFIX)->status, 404);
    ck_assert_str_eq(loc(&s, "/t", APP_MATCH_PREFIX)->body, "a");
    ck_assert_ptr_null(loc(&s, "@fallback", APP_MATCH_PREFIX));
    ck_assert_int_eq(s.n_locs, 8);      /* /api /x /n /v /static /dir /file /t; none for ~ @ */
    nginx_server_free(&s);
    nginx_warnings_free(&w);
}
END_TEST

START_TEST(returns_types_and_headers)
{
    const char *conf =
        "http {\n"
        " server {\n"
        "  listen 8000;\n"
        "  default_type text/html;\n"
        "  add_header X-Srv yes;\n"
        "  location /r301 { return 301 https://example.com/new; }\n"
        "  location /bare { return https://example.com/; }\n"
        "  location /nc { return 204; }\n"
        "  location /own { add_header X-Own 1; add_header X-Err 2 always; return 500 'e'; }\n"
        "  location /inh { return 200 'i'; }\n"
        "  location /json { default_type application/json; return 503 '{}'; }\n"
        "  location /page.html { default_type text/plain; return 200 'p'; }\n"
        "  location /bad { return abc; }\n"
        " }\n"
        "}\n";
    nginx_server_t s;
    nginx_warnings_t w;
    ck_assert_int_eq(parse(conf, &s, &w), 0);
    ck_assert_int_eq(s.listen_port, 8000);
    const app_location_t *l = loc(&s, "/r301", APP_MATCH_PREFIX);
    ck_assert_int_eq(l->status, 301);
    /* nginx sends its built-in page with a redirect */
    ck_assert_str_eq(l->body, "<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n"
                     "<body>\r\n<center><h1>301 Moved Permanently</h1></center>\r\n"
                     "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n");
    ck_assert(has_header(l, "Content-Type: text/html"));
    ck_assert(has_header(l, "Location: https://example.com/new"));
    ck_assert(has_header(l, "X-Srv: yes"));
    l = loc(&s, "/bare", APP_MATCH_PREFIX);
    ck_assert_int_eq(l->status, 302);
    ck_assert(has_header(l, "Location: https://example.com/"));
    l = loc(&s, "/nc", APP_MATCH_PREFIX);
    ck_assert_int_eq(l->status, 204);
    ck_assert_int_eq(l->n_headers, 1);   /* X-Srv only: no body, no Content-Type */
    l = loc(&s, "/own", APP_MATCH_PREFIX);
    /* a location with its own add_header does not inherit the server's; on 500 only the
     * `always` one is added */
    ck_assert(!has_header(l, "X-Srv: yes"));
    ck_assert(!has_header(l, "X-Own: 1"));
    ck_assert(has_header(l, "X-Err: 2"));
    ck_assert(has_header(l, "Content-Type: text/html"));
    l = loc(&s, "/inh", APP_MATCH_PREFIX);
    ck_assert(has_header(l, "X-Srv: yes"));
    ck_assert(has_header(l, "Content-Type: text/html"));
    l = loc(&s, "/json", APP_MATCH_PREFIX);
    ck_assert_int_eq(l->status, 503);
    ck_assert(has_header(l, "Content-Type: application/json"));
    ck_assert(!has_header(l, "X-Srv: yes"));   /* 503 is not in add_header's list */
    /* the URI's extension decides before default_type */
    ck_assert(has_header(loc(&s, "/page.html", APP_MATCH_PREFIX), "Content-Type: text/html"));
    ck_assert(warned(&w, 13, "invalid return code \"abc\""));
    ck_assert_int_eq(w.n, 2);           /* + /bad has no return */
    nginx_server_free(&s);
    nginx_warnings_free(&w);

    /* a server-level return answers everything */
    ck_assert_int_eq(parse("server { listen 80; location /a { return 200 'a'; }\n"
                           "return 301 https://elsewhere/; }", &s, &w), 0);
    ck_assert_int_eq(s.n_locs, 1);
    ck_assert_str_eq(s.locs[0].path, "/");
    ck_assert_int_eq(s.locs[0].status, 301);
    ck_assert(warned(&w, 2, "never reached"));
    nginx_server_free(&s);
    nginx_warnings_free(&w);

    /* no listen: port 80 */
    ck_assert_int_eq(parse("server { location / { return 200 'x'; } }", &s, &w), 0);
    ck_assert_int_eq(s.listen_port, NGINX_LISTEN_DEFAULT);
    ck_assert_ptr_null(s.server_name);
    nginx_server_free(&s);
    nginx_warnings_free(&w);
}
END_TEST

/* ---- heredocs ----------------------------------------------------------------------------- */
START_TEST(heredoc_forms)
{
    char *body, *target;
    bool expands;
    const char *quoted = "set -e\ncat > /etc/nginx/conf.d/default.conf << 'EOF'\nserver {}\nEOF\n"
                         "nginx -g 'daemon off;'\n";
    ck_assert_int_eq(nginx_conf_heredoc(quoted, &body, &target, &expands), 0);
    ck_assert_str_eq(body, "server {}\n");
    ck_assert_str_eq(target, "/etc/nginx/conf.d/default.conf");
    ck_assert(!expands);
    lb_free(body);
    lb_free(target);

    const char *bare = "cat >/etc/nginx/nginx.conf <<EOF\nx $uri\nEOF";
    ck_assert_int_eq(nginx_conf_heredoc(bare, &body, &target, &expands), 0);
    ck_assert_str_eq(body, "x $uri\n");
    ck_assert_str_eq(target, "/etc/nginx/nginx.conf");
    ck_assert(expands);
    lb_free(body);
    lb_free(target);

    const char *tabs = "tee /tmp/a.conf <<-\"END\"\n\tserver {\n\t}\n\tEND\necho done\n";
    ck_assert_int_eq(nginx_conf_heredoc(tabs, &body, &target, &expands), 0);
    ck_assert_str_eq(body, "server {\n}\n");
    ck_assert_str_eq(target, "/tmp/a.conf");
    ck_assert(!expands);
    lb_free(body);
    lb_free(target);

    /* first heredoc writes a non-.conf file: the .conf one wins */
    const char *two = "cat > /usr/share/nginx/html/index.html <<'A'\n<h1>hi</h1>\nA\n"
                      "cat > /etc/nginx/conf.d/x.conf <<'B'\nserver { }\nB\n";
    ck_assert_int_eq(nginx_conf_heredoc(two, &body, NULL, &expands), 0);
    ck_assert_str_eq(body, "server { }\n");
    lb_free(body);

    /* unterminated: bash reads to end of file */
    ck_assert_int_eq(nginx_conf_heredoc("cat > a.conf <<'X'\nline1\nline2\n", &body, NULL,
                                        &expands), 0);
    ck_assert_str_eq(body, "line1\nline2\n");
    lb_free(body);

    ck_assert_int_eq(nginx_conf_heredoc("cat <<< 'here string'\necho\n", &body, NULL,
                                        &expands), LB_ENOENT);
    ck_assert_int_eq(nginx_conf_heredoc("nginx -g 'daemon off;'", &body, &target, &expands),
                     LB_ENOENT);
    ck_assert_ptr_null(body);
    ck_assert_ptr_null(target);
}
END_TEST

/* An unquoted delimiter: the shell eats nginx's $variables before nginx starts. */
START_TEST(heredoc_unquoted_expands)
{
    k8s_container_t c = { 0 };
    c.name = "web";
    c.nginx_conf = "cat > /etc/nginx/conf.d/default.conf <<EOF\n"
                   "server {\n"
                   "  listen 8080;\n"
                   "  location /who { return 200 'uri=$uri host=${host}\\$x'; }\n"
                   "}\n"
                   "EOF\n"
                   "exec nginx -g 'daemon off;'\n";
    nginx_server_t s;
    nginx_warnings_t w = { 0 };
    ck_assert_int_eq(nginx_conf_from_container(NULL, "default", &c, &s, &w), 0);
    ck_assert_str_eq(loc(&s, "/who", APP_MATCH_PREFIX)->body, "uri= host=$x");
    /* lines count in the heredoc body, the text nginx reads */
    ck_assert(warned(&w, 3, "expands \"$uri\" to an empty string"));
    ck_assert(warned(&w, 3, "sent literally"));      /* nginx then sees the escaped $x */
    nginx_server_free(&s);
    nginx_warnings_free(&w);

    /* the config itself (no script) is accepted too */
    c.nginx_conf = "server { listen 9000; location = /x { return 200 'x'; } }";
    ck_assert_int_eq(nginx_conf_from_container(NULL, "default", &c, &s, &w), 0);
    ck_assert_int_eq(s.listen_port, 9000);
    ck_assert_str_eq(s.source, "nginx config of container web");
    nginx_server_free(&s);
    nginx_warnings_free(&w);

    c.nginx_conf = "echo no config here";
    ck_assert_int_eq(nginx_conf_from_container(NULL, "default", &c, &s, &w), LB_ENOENT);
    ck_assert_int_eq(nginx_conf_from_container(NULL, "default", NULL, &s, &w), LB_ENOENT);
    nginx_server_free(&s);
    nginx_warnings_free(&w);
}
END_TEST


/* What nginx_conf_render_server writes parses back into the same locations: the real
 * chain's nginx pods answer as the model does. */
static void same_locations(const nginx_server_t *a, const nginx_server_t *b)
{
    ck_assert_int_eq(a->listen_port, b->listen_port);
    size_t nb = b->n_locs;
    /* the renderer adds `location / { return 404; }` when nothing covers "/" */
    if (nb == a->n_locs + 1 && !strcmp(b->locs[nb - 1].path, "/") && b->locs[nb - 1].status == 404)
        nb--;
    ck_assert_uint_eq(a->n_locs, nb);
    for (size_t i = 0; i < a->n_locs; i++) {
        const app_location_t *x = &a->locs[i], *y = &b->locs[i];
        ck_assert_str_eq(x->path, y->path);
        ck_assert_int_eq(x->match, y->match);
        ck_assert_int_eq(x->status, y->status);
        ck_assert_str_eq(x->body ? x->body : "", y->body ? y->body : "");
        ck_assert_uint_eq(x->n_headers, y->n_headers);
        for (size_t k = 0; k < x->n_headers; k++) {
            bool found = false;
            for (size_t j = 0; j < y->n_headers && !found; j++) found = !strcmp(x->headers[k], y->headers[j]);
            ck_assert_msg(found, "header %s of %s lost", x->headers[k], x->path);
        }
    }
}

START_TEST(render_round_trip)
{
    static const char *const confs[] = {
        "server {\n listen 8080;\n"
        " location /app1 { return 200 'Hello from App 1\\n'; }\n"
        " location /app1/health { return 200 'healthy\\n'; }\n"
        " location / { return 200 'Sample App 1 - Use /app1 endpoint\\n'; }\n}\n",
        "server {\n listen 8000;\n default_type text/html;\n add_header X-Srv yes;\n"
        " location /r301 { return 301 https://example.com/new; }\n"
        " location /nc { return 204; }\n"
        " location = /exact { return 200 \"say \\\"hi\\\"\\t\"; }\n"
        " location /own { add_header X-Own 1; add_header X-Err 2 always; return 500 'e'; }\n"
        " location /json { default_type application/json; return 503 '{}'; }\n"
        " location /gone { return 404; }\n}\n",
    };
    for (size_t c = 0; c < sizeof confs / sizeof confs[0]; c++) {
        nginx_server_t a, b;
        nginx_warnings_t w = {0};
        ck_assert_int_eq(nginx_conf_parse(confs[c], NULL, NULL, &a, &w), 0);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ck_assert_int_eq(nginx_conf_render_server(f, a.listen_port, a.locs, a.n_locs, "  "), 0);
        fclose(f);
        nginx_warnings_t w2 = {0};
        ck_assert_msg(nginx_conf_parse(text, NULL, NULL, &b, &w2) == 0, "%s", text);
        ck_assert_msg(w2.n == 0, "warning on the rendered config: %s\n%s", w2.v[0].msg, text);
        same_locations(&a, &b);
        free(text);
        nginx_server_free(&a);
        nginx_server_free(&b);
        nginx_warnings_free(&w);
        nginx_warnings_free(&w2);
    }
}
END_TEST

START_TEST(render_quotes_and_approximations)
{
    app_location_t l;
    app_location_init(&l, "/x", APP_MATCH_EXACT);
    l.body = "cost: $5 \"now\"\n";
    l.service_time = (dist_t){DIST_CONST, 2e6, 0};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    /* a service time nginx cannot wait: one approximation, said in a comment */
    ck_assert_int_eq(nginx_conf_render_server(f, 81, &l, 1, NULL), 1);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "listen 81;"));
    ck_assert_ptr_nonnull(strstr(text, "location = /x {"));
    ck_assert_ptr_nonnull(strstr(text, "return 200 \"cost: ${" NGINX_DOLLAR_VAR "}5 \\\"now\\\"\\n\";"));
    ck_assert_ptr_nonnull(strstr(text, "# the model waits a service time"));
    ck_assert_ptr_nonnull(strstr(text, "location / {\n        return 404;"));
    free(text);
}
END_TEST

/* $hostname is evaluated (the serving pod's name, models/apps/http_server_app.c): no
 * warning for it; other variables are still sent literally, with one. */
START_TEST(hostname_variable_not_warned)
{
    const char *conf =
        "server {\n"                                                       /* 1 */
        "  location /a { add_header X-Served-By $hostname; return 200 'pod ${hostname}'; }\n"
        "  location /b { add_header X-Req $request_id; return 200 '$hostnames'; }\n"
        "}\n";
    nginx_server_t s;
    nginx_warnings_t w;
    ck_assert_int_eq(parse(conf, &s, &w), 0);
    ck_assert(!warned(&w, 2, "sent literally"));
    ck_assert(warned(&w, 3, "add_header value has nginx variables"));
    ck_assert(warned(&w, 3, "return text has nginx variables"));
    nginx_server_free(&s);
    nginx_warnings_free(&w);
}
END_TEST

Suite *suite_nginx_conf(void)
{
    Suite *s = suite_create("nginx_conf");
    TCase *tc = tcase_create("seed");
    tcase_add_test(tc, seed_app1_app2);
    tcase_add_test(tc, seed_health_responder_served);
    tcase_add_test(tc, seed_users_api_configmap);
    suite_add_tcase(s, tc);
    tc = tcase_create("parse");
    tcase_add_test(tc, tokens_quotes_escapes_comments);
    tcase_add_test(tc, syntax_errors_with_lines);
    tcase_add_test(tc, unsupported_directives_warn);
    tcase_add_test(tc, returns_types_and_headers);
    tcase_add_test(tc, hostname_variable_not_warned);
    suite_add_tcase(s, tc);
    tc = tcase_create("heredoc");
    tcase_add_test(tc, heredoc_forms);
    tcase_add_test(tc, heredoc_unquoted_expands);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, render_round_trip);
    tcase_add_test(tc, render_quotes_and_approximations);
    suite_add_tcase(s, tc);
    return s;
}

/* nginx_conf.c -- nginx server configs from manifests: a tokenizer that follows
 * ngx_conf_read_token (src/core/ngx_conf_file.c), a directive tree, and an interpreter
 * for the subset the nginx-like server models (listen, server_name, location [=|^~],
 * return, default_type, alias, add_header); everything else becomes a warning. Also the
 * shell-heredoc extraction and the lookup of a container's config (heredoc or ConfigMap).
 * Data flow: text -> lex -> ndir_t tree (freed after use) -> nginx_server_t (owned). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "nginx_conf.h"

/* ---- warnings ----------------------------------------------------------------------------- */
static void warn(nginx_warnings_t *w, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(nginx_warnings_t *w, int line, const char *fmt, ...)
{
    if (!w)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    nginx_warning_t x = { line, lb_strdup(buf) };
    lb_vec_push(w, x);
}

void nginx_warnings_free(nginx_warnings_t *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        lb_free(w->v[i].msg);
    lb_vec_free(w);
}

/* ---- server storage ----------------------------------------------------------------------- */
static void server_init(nginx_server_t *s)
{
    memset(s, 0, sizeof(*s));
    s->listen_port = NGINX_LISTEN_DEFAULT;
}

/* Takes ownership of p (freed by nginx_server_free); returns it. */
static void *own(nginx_server_t *s, void *p)
{
    lb_vec_push(&s->owned_, p);
    return p;
}

static char *own_str(nginx_server_t *s, const char *str)
{
    return own(s, lb_strdup(str));
}

void nginx_server_free(nginx_server_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->owned_.n; i++)
        lb_free(s->owned_.v[i]);
    lb_vec_free(&s->owned_);
    lb_free(s->locs);
    lb_free(s->server_name);
    lb_free(s->source);
    server_init(s);
}

/* ---- tokenizer (ngx_conf_read_token) ------------------------------------------------------ */
enum { T_WORD, T_SEMI, T_OPEN, T_CLOSE, T_EOF, T_ERR };

typedef struct lex {
    const char *p;
    int line;
    char err[160];
} lex_t;

/* nginx processes these escapes in every word, quoted or not: \" \' \\ -> the character,
 * \t \r \n -> tab, CR, LF; any other backslash stays. */
static char *unescape(const char *s, size_t n)
{
    char *out = lb_malloc(n + 1), *d = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[i + 1];
            if (c == '"' || c == '\'' || c == '\\') {
                *d++ = c;
                i++;
                continue;
            }
            if (c == 't' || c == 'r' || c == 'n') {
                *d++ = c == 't' ? '\t' : c == 'r' ? '\r' : '\n';
                i++;
                continue;
            }
        }
        *d++ = s[i];
    }
    *d = 0;
    return out;
}

static int lex_next(lex_t *lx, char **word, int *line)
{
    const char *p = lx->p;
    for (;;) {
        if (!*p) {
            lx->p = p;
            *line = lx->line;
            return T_EOF;
        }
        if (*p == '\n') {
            lx->line++;
            p++;
        } else if (isspace((unsigned char)*p)) {
            p++;
        } else if (*p == '#') {            /* a comment starts only where a word could */
            while (*p && *p != '\n')
                p++;
        } else {
            break;
        }
    }
    *line = lx->line;
    char c = *p;
    if (c == ';' || c == '{' || c == '}') {
        lx->p = p + 1;
        return c == ';' ? T_SEMI : c == '{' ? T_OPEN : T_CLOSE;
    }
    if (c == '"' || c == '\'') {
        const char *start = ++p;
        while (*p && *p != c) {
            if (*p == '\\' && p[1]) {
                if (p[1] == '\n')
                    lx->line++;
                p += 2;
                continue;
            }
            if (*p == '\n')
                lx->line++;
            p++;
        }
        if (!*p) {
            snprintf(lx->err, sizeof lx->err, "unexpected end of file in a %s-quoted string "
                     "opened on line %d", c == '"' ? "double" : "single", *line);
            *line = lx->line;                   /* nginx reports where the file ended */
            return T_ERR;
        }
        *word = unescape(start, (size_t)(p - start));
        p++;
        /* need_space: after a closing quote only a separator may follow */
        if (*p && !isspace((unsigned char)*p) && *p != ';' && *p != '{') {
            snprintf(lx->err, sizeof lx->err, "unexpected \"%c\" after a quoted string", *p);
            lb_free(*word);
            return T_ERR;
        }
        lx->p = p;
        return T_WORD;
    }
    const char *start = p;
    for (;;) {
        if (*p == '\\' && p[1]) {
            if (p[1] == '\n')
                lx->line++;
            p += 2;
            continue;
        }
        if (!*p || isspace((unsigned char)*p) || *p == ';')
            break;
        if (*p == '{' && !(p > start && p[-1] == '$'))   /* ${var} stays in the word */
            break;
        p++;
    }
    *word = unescape(start, (size_t)(p - start));
    lx->p = p;
    return T_WORD;
}

/* ---- directive tree ----------------------------------------------------------------------- */
typedef struct ndir ndir_t;
typedef LB_VEC(ndir_t) ndirs_t;
struct ndir {
    int line;
    LB_VEC(char *) w;               /* name and arguments */
    bool block;
    ndirs_t kids;
};

static void dirs_free(ndirs_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        for (size_t j = 0; j < d->v[i].w.n; j++)
            lb_free(d->v[i].w.v[j]);
        lb_vec_free(&d->v[i].w);
        dirs_free(&d->v[i].kids);
    }
    lb_vec_free(d);
}

/* Parses directives up to the matching '}' (or EOF at top level). Returns 0 or LB_EPARSE
 * with lx->err set and *eline the line of the error. */
static int parse_block(lex_t *lx, ndirs_t *out, bool top, int open_line, int *eline)
{
    ndir_t cur = { 0 };
    int rc = 0;
    for (;;) {
        char *word = NULL;
        int line;
        int t = lex_next(lx, &word, &line);
        *eline = line;
        if (t == T_ERR) {
            rc = LB_EPARSE;
            break;
        }
        if (t == T_WORD) {
            if (!cur.w.n)
                cur.line = line;
            lb_vec_push(&cur.w, word);
            continue;
        }
        if (t == T_EOF) {
            if (cur.w.n) {
                snprintf(lx->err, sizeof lx->err, "unexpected end of file, expecting \";\" "
                         "or \"}\" after \"%s\"", cur.w.v[0]);
                rc = LB_EPARSE;
            } else if (!top) {
                snprintf(lx->err, sizeof lx->err, "unexpected end of file, expecting \"}\" "
                         "(block opened on line %d)", open_line);
                rc = LB_EPARSE;
            }
            break;
        }
        if (t == T_CLOSE) {
            if (cur.w.n || top) {
                snprintf(lx->err, sizeof lx->err, "unexpected \"}\"");
                rc = LB_EPARSE;
            }
            break;
        }
        if (!cur.w.n) {
            snprintf(lx->err, sizeof lx->err, "unexpected \"%s\"", t == T_SEMI ? ";" : "{");
            rc = LB_EPARSE;
            break;
        }
        if (t == T_OPEN) {
            cur.block = true;
            rc = parse_block(lx, &cur.kids, false, cur.line, eline);
            if (rc) {
                lb_vec_push(out, cur);      /* freed with the tree */
                return rc;
            }
        }
        lb_vec_push(out, cur);
        memset(&cur, 0, sizeof cur);
    }
    if (cur.w.n || cur.kids.n) {
        lb_vec_push(out, cur);
    }
    return rc;
}

/* ---- interpretation ----------------------------------------------------------------------- */
typedef LB_VEC(char *) strvec_t;
typedef LB_VEC(bool) boolvec_t;

/* Inherited server-level settings. */
typedef struct srv_ctx {
    nginx_server_t *s;
    nginx_warnings_t *w;
    nginx_file_cb files;
    void *data;
    const char *default_type;       /* server-level default_type, or NULL */
    strvec_t add_headers;           /* server-level add_header name, value pairs (borrowed) */
    boolvec_t add_always;
    LB_VEC(app_location_t) locs;
    LB_VEC(const char *) declared;  /* location URIs as written (duplicate check) */
    LB_VEC(int) declared_match;
} srv_ctx_t;

/* Directives that change nothing the model observes: accepted without a warning. */
static bool is_noop(const char *name)
{
    static const char *const noop[] = { "access_log", "error_log", "log_not_found",
        "server_tokens", "charset", "sendfile", "tcp_nopush", "tcp_nodelay", "log_format",
        "open_log_file_cache", NULL };
    for (size_t i = 0; noop[i]; i++)
        if (strcmp(name, noop[i]) == 0)
            return true;
    return false;
}

/* mime.types of the nginx image, the entries a test scenario plausibly serves. */
static const char *mime_of(const char *uri)
{
    static const struct { const char *ext, *type; } mime[] = {
        { "html", "text/html" }, { "htm", "text/html" }, { "css", "text/css" },
        { "txt", "text/plain" }, { "json", "application/json" },
        { "js", "application/javascript" }, { "xml", "text/xml" }, { "png", "image/png" },
        { "svg", "image/svg+xml" }, { "ico", "image/x-icon" },
    };
    const char *slash = strrchr(uri, '/');
    const char *dot = strrchr(slash ? slash : uri, '.');
    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof mime / sizeof *mime; i++)
        if (strcmp(dot + 1, mime[i].ext) == 0)
            return mime[i].type;
    return NULL;
}

/* ngx_http_headers_module: add_header applies to these codes unless `always` is given. */
static bool add_header_applies(int status, bool always)
{
    static const int ok[] = { 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 };
    if (always)
        return true;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (ok[i] == status)
            return true;
    return false;
}

static bool is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* ngx_http_special_response.c: built-in pages (ngx_http_error_pages) that nginx sends
 * for a redirect, or for `return 4xx/5xx;` without text, or a failed file lookup. The
 * tail is ngx_http_error_tail with the version hidden, as the server model's own 404. */
#define NGINX_ERROR_PAGE_FMT \
    "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n" \
    "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

static bool has_error_page(int code)
{
    return is_redirect(code) || (code >= 400 && code <= 417) || code == 421 ||
           code == 429 || (code >= 494 && code <= 497) || (code >= 500 && code <= 505) ||
           code == 507;
}

typedef struct loc_cfg {
    int line;
    const char *path;
    int match;
    bool has_return;
    int status;
    const char *text;               /* return text (body, or URL for redirects) */
    const char *alias;
    const char *default_type;
    strvec_t add_headers;           /* name, value pairs borrowed from the tree */
    boolvec_t add_always;
} loc_cfg_t;

static void push_loc(srv_ctx_t *c, const char *path, int match, int status, const char *body,
                     const char *ctype, const char *location, const loc_cfg_t *lc)
{
    nginx_server_t *s = c->s;
    app_location_t l;
    app_location_init(&l, own_str(s, path), match);
    l.status = status;
    l.body = body ? own_str(s, body) : NULL;
    strvec_t h = { 0 };
    if (!body && has_error_page(status)) {
        /* nginx finalizes such a request with its built-in page */
        l.body = own(s, lb_sprintf(NGINX_ERROR_PAGE_FMT, status, http_reason_phrase(status),
                                   status, http_reason_phrase(status)));
        ctype = "text/html";
    }
    if (ctype)
        lb_vec_push(&h, own(s, lb_sprintf("Content-Type: %s", ctype)));
    if (location)
        lb_vec_push(&h, own(s, lb_sprintf("Location: %s", location)));
    /* add_header is inherited from the server only if the location has none. */
    bool local = lc->add_headers.n > 0;
    size_t n = local ? lc->add_headers.n : c->add_headers.n;
    for (size_t i = 0; i < n; i += 2) {
        const char *name = local ? lc->add_headers.v[i] : c->add_headers.v[i];
        const char *val = local ? lc->add_headers.v[i + 1] : c->add_headers.v[i + 1];
        bool always = local ? lc->add_always.v[i / 2] : c->add_always.v[i / 2];
        if (add_header_applies(status, always))
            lb_vec_push(&h, own(s, lb_sprintf("%s: %s", name, val)));
    }
    if (h.n) {
        l.headers = (const char *const *)own(s, h.v);
        l.n_headers = h.n;
    } else {
        lb_vec_free(&h);
    }
    lb_vec_push(&c->locs, l);
}

/* Parses `return code [text]` / `return URL` into lc. */

/* Whether text has an nginx variable other than $hostname, which the server evaluates
 * (models/apps/http_server_app.c: the node's host name). */
static bool has_other_vars(const char *text)
{
    for (const char *p = strchr(text, '$'); p; p = strchr(p + 1, '$')) {
        if (strncmp(p, "${hostname}", 11) == 0) continue;
        if (strncmp(p, "$hostname", 9) == 0 && !isalnum((unsigned char)p[9]) && p[9] != '_')
            continue;
        return true;
    }
    return false;
}

static void parse_return(srv_ctx_t *c, const ndir_t *d, loc_cfg_t *lc)
{
    if (lc->has_return) {
        warn(c->w, d->line, "second \"return\" in the same block never runs (the first one "
             "ends request processing)");
        return;
    }
    if (d->w.n < 2 || d->w.n > 3) {
        warn(c->w, d->line, "invalid number of arguments in \"return\": ignored");
        return;
    }
    const char *a = d->w.v[1];
    char *end;
    long code = strtol(a, &end, 10);
    if (*end || end == a) {
        /* `return URL`: 302 when it starts with http://, https:// or $scheme */
        if (d->w.n == 2 && (strncmp(a, "http://", 7) == 0 || strncmp(a, "https://", 8) == 0
                            || strncmp(a, "$scheme", 7) == 0)) {
            lc->has_return = true;
            lc->status = 302;
            lc->text = a;
            return;
        }
        warn(c->w, d->line, "invalid return code \"%s\": ignored", a);
        return;
    }
    if (code < 0 || code > 999) {
        warn(c->w, d->line, "invalid return code \"%s\": ignored", a);
        return;
    }
    lc->has_return = true;
    lc->status = (int)code;
    lc->text = d->w.n == 3 ? d->w.v[2] : NULL;
    if (lc->text && has_other_vars(lc->text))
        warn(c->w, d->line, "return text has nginx variables ($...) other than $hostname "
             "(the pod's name): they are sent literally, not evaluated");
}

static void parse_add_header(srv_ctx_t *c, const ndir_t *d, strvec_t *h, boolvec_t *a)
{
    if (d->w.n >= 3 && has_other_vars(d->w.v[2]))
        warn(c->w, d->line, "add_header value has nginx variables ($...) other than "
             "$hostname (the pod's name): they are sent literally, not evaluated");
    if (d->w.n < 3 || d->w.n > 4 || (d->w.n == 4 && strcmp(d->w.v[3], "always") != 0)) {
        warn(c->w, d->line, "invalid \"add_header\": ignored");
        return;
    }
    lb_vec_push(h, d->w.v[1]);
    lb_vec_push(h, d->w.v[2]);
    lb_vec_push(a, d->w.n == 4);
}

static void location(srv_ctx_t *c, const ndir_t *d)
{
    loc_cfg_t lc = { 0 };
    lc.line = d->line;
    const char *mod = NULL, *uri = NULL;
    if (d->w.n == 3) {
        mod = d->w.v[1];
        uri = d->w.v[2];
    } else if (d->w.n == 2) {
        uri = d->w.v[1];
        /* nginx also accepts the modifier glued to the URI: `location =/x` */
        if (uri[0] == '=' && uri[1]) {
            mod = "=";
            uri++;
        } else if (uri[0] == '^' && uri[1] == '~' && uri[2]) {
            mod = "^~";
            uri += 2;
        } else if (uri[0] == '~') {
            mod = uri[1] == '*' ? "~*" : "~";
        }
    } else {
        warn(c->w, d->line, "invalid number of arguments in \"location\": block ignored");
        return;
    }
    if (!d->block) {
        warn(c->w, d->line, "\"location\" without a block: ignored");
        return;
    }
    if (mod && (strcmp(mod, "~") == 0 || strcmp(mod, "~*") == 0)) {
        warn(c->w, d->line, "regular-expression location \"%s %s\" is not modelled: block "
             "ignored (requests it would take fall to prefix locations)", mod, uri);
        return;
    }
    if (uri[0] == '@') {
        warn(c->w, d->line, "named location \"%s\" is not modelled: ignored", uri);
        return;
    }
    if (mod && strcmp(mod, "=") != 0 && strcmp(mod, "^~") != 0) {
        warn(c->w, d->line, "unknown location modifier \"%s\": block ignored", mod);
        return;
    }
    lc.path = uri;
    lc.match = mod && strcmp(mod, "=") == 0 ? APP_MATCH_EXACT : APP_MATCH_PREFIX;
    for (size_t i = 0; i < c->declared.n; i++)
        if (c->declared_match.v[i] == lc.match && strcmp(c->declared.v[i], uri) == 0) {
            /* ngx_http_core_module: "duplicate location" is an [emerg]: nginx -t fails */
            warn(c->w, d->line, "duplicate location \"%s\": nginx refuses this config "
                 "([emerg] duplicate location); the first one is kept here", uri);
            return;
        }
    lb_vec_push(&c->declared, uri);
    lb_vec_push(&c->declared_match, lc.match);
    for (size_t i = 0; i < d->kids.n; i++) {
        const ndir_t *k = &d->kids.v[i];
        const char *name = k->w.v[0];
        if (strcmp(name, "return") == 0 && !k->block) {
            parse_return(c, k, &lc);
        } else if (strcmp(name, "default_type") == 0 && k->w.n == 2 && !k->block) {
            lc.default_type = k->w.v[1];
        } else if (strcmp(name, "alias") == 0 && k->w.n == 2 && !k->block) {
            lc.alias = k->w.v[1];
        } else if (strcmp(name, "add_header") == 0 && !k->block) {
            parse_add_header(c, k, &lc.add_headers, &lc.add_always);
        } else if (is_noop(name) && !k->block) {
            continue;
        } else if (strcmp(name, "location") == 0) {
            warn(c->w, k->line, "nested location \"%s\" is not modelled: ignored",
                 k->w.n > 1 ? k->w.v[k->w.n - 1] : "");
        } else {
            warn(c->w, k->line, "directive \"%s\" in location %s is not modelled: ignored",
                 name, uri);
        }
    }
    const char *dtype = lc.default_type ? lc.default_type :
                        c->default_type ? c->default_type : NGINX_DEFAULT_TYPE;
    /* ngx_http_set_content_type: the URI's extension first, then default_type. */
    const char *ctype = mime_of(uri) ? mime_of(uri) : dtype;
    if (lc.has_return) {
        /* The rewrite phase runs before content: return wins over alias. */
        if (lc.alias)
            warn(c->w, d->line, "location %s has both return and alias: return wins", uri);
        if (is_redirect(lc.status) && lc.text)
            push_loc(c, uri, lc.match, lc.status, NULL, NULL, lc.text, &lc);
        else
            push_loc(c, uri, lc.match, lc.status, lc.text, lc.text ? ctype : NULL, NULL, &lc);
    } else if (lc.alias) {
        size_t al = strlen(lc.alias);
        const char *text = NULL;
        if (al && lc.alias[al - 1] == '/') {
            warn(c->w, d->line, "alias to a directory (%s) is not modelled: location %s "
                 "answers 404 here", lc.alias, uri);
            push_loc(c, uri, lc.match, 404, NULL, NULL, NULL, &lc);
        } else if (!c->files || c->files(lc.alias, &text, c->data) != 0) {
            warn(c->w, d->line, "alias file %s is not provided (no ConfigMap key %s): nginx "
                 "answers 404", lc.alias, strrchr(lc.alias, '/') ? strrchr(lc.alias, '/') + 1
                                                                : lc.alias);
            push_loc(c, uri, lc.match, 404, NULL, NULL, NULL, &lc);
        } else {
            /* The file is the URI's remainder after the location prefix appended to the
             * alias: only the location's own URI names the file itself; a longer URI
             * names "<file><rest>", which does not exist -> 404. */
            push_loc(c, uri, APP_MATCH_EXACT, 200, text, ctype, NULL, &lc);
            if (lc.match == APP_MATCH_PREFIX)
                push_loc(c, uri, APP_MATCH_PREFIX, 404, NULL, NULL, NULL, &lc);
        }
    } else {
        warn(c->w, d->line, "location %s has no return or alias: nginx would serve static "
             "files from its root, which is not modelled (answers 404 here)", uri);
        push_loc(c, uri, lc.match, 404, NULL, NULL, NULL, &lc);
    }
    lb_vec_free(&lc.add_headers);
    lb_vec_free(&lc.add_always);
}

/* `listen` forms: 8080, *:8080, 1.2.3.4:8080, [::]:8080, localhost:8080, unix:/path. */
static int listen_port(const char *a)
{
    if (strncmp(a, "unix:", 5) == 0)
        return -1;
    const char *colon = strrchr(a, ':');
    const char *num = colon ? colon + 1 : a;
    char *end;
    long p = strtol(num, &end, 10);
    if (end == num || *end || p < 1 || p > 65535)
        return colon ? -1 : 0;      /* 0: an address without port -> 80 */
    return (int)p;
}

static void server_block(srv_ctx_t *c, const ndir_t *d)
{
    nginx_server_t *s = c->s;
    bool listened = false;
    const ndir_t *srv_return = NULL;
    loc_cfg_t srv_lc = { 0 };
    /* First pass: server-level settings that locations inherit, wherever they appear. */
    for (size_t i = 0; i < d->kids.n; i++) {
        const ndir_t *k = &d->kids.v[i];
        const char *name = k->w.v[0];
        if (strcmp(name, "default_type") == 0 && k->w.n == 2)
            c->default_type = k->w.v[1];
        else if (strcmp(name, "add_header") == 0)
            parse_add_header(c, k, &c->add_headers, &c->add_always);
    }
    for (size_t i = 0; i < d->kids.n; i++) {
        const ndir_t *k = &d->kids.v[i];
        const char *name = k->w.v[0];
        if (strcmp(name, "listen") == 0 && !k->block && k->w.n >= 2) {
            int p = listen_port(k->w.v[1]);
            if (p < 0) {
                warn(c->w, k->line, "listen %s is not a TCP port: ignored", k->w.v[1]);
                continue;
            }
            if (p == 0)
                p = NGINX_LISTEN_DEFAULT;
            for (size_t j = 2; j < k->w.n; j++)
                if (strcmp(k->w.v[j], "ssl") == 0 || strcmp(k->w.v[j], "quic") == 0)
                    warn(c->w, k->line, "listen %s %s: TLS is not modelled, the port "
                         "speaks plain HTTP here", k->w.v[1], k->w.v[j]);
            if (!listened) {
                s->listen_port = p;
                listened = true;
            } else if (p != s->listen_port) {
                warn(c->w, k->line, "second listen port %d is not modelled (the server "
                     "listens on %d)", p, s->listen_port);
            }
        } else if (strcmp(name, "server_name") == 0 && !k->block) {
            if (!s->server_name && k->w.n >= 2)
                s->server_name = lb_strdup(k->w.v[1]);
        } else if (strcmp(name, "location") == 0) {
            location(c, k);
        } else if (strcmp(name, "return") == 0 && !k->block) {
            parse_return(c, k, &srv_lc);
            if (srv_lc.has_return && !srv_return)
                srv_return = k;
        } else if (strcmp(name, "default_type") == 0 || strcmp(name, "add_header") == 0) {
            continue;                               /* first pass */
        } else if (is_noop(name) && !k->block) {
            continue;
        } else if (strcmp(name, "include") == 0) {
            warn(c->w, k->line, "include %s is not followed", k->w.n > 1 ? k->w.v[1] : "");
        } else {
            warn(c->w, k->line, "directive \"%s\" in server is not modelled: ignored", name);
        }
    }
    if (srv_return) {
        /* A server-level return runs in the server rewrite phase, before any location
         * is chosen: every request gets it. */
        if (c->locs.n)
            warn(c->w, srv_return->line, "server-level \"return\" answers every request: "
                 "the %zu location(s) are never reached", c->locs.n);
        c->locs.n = 0;
        const char *dtype = c->default_type ? c->default_type : NGINX_DEFAULT_TYPE;
        if (is_redirect(srv_lc.status) && srv_lc.text)
            push_loc(c, "/", APP_MATCH_PREFIX, srv_lc.status, NULL, NULL, srv_lc.text, &srv_lc);
        else
            push_loc(c, "/", APP_MATCH_PREFIX, srv_lc.status, srv_lc.text,
                     srv_lc.text ? dtype : NULL, NULL, &srv_lc);
    }
}

/* Walks the top level (a conf.d file is in http context; a full nginx.conf has http{}). */
static void walk(srv_ctx_t *c, const ndirs_t *dirs, int *servers, bool in_http)
{
    for (size_t i = 0; i < dirs->n; i++) {
        const ndir_t *d = &dirs->v[i];
        const char *name = d->w.v[0];
        if (strcmp(name, "server") == 0 && d->block) {
            if ((*servers)++ == 0)
                server_block(c, d);
            else
                warn(c->w, d->line, "only the first server block is modelled: this one is "
                     "ignored");
        } else if (strcmp(name, "http") == 0 && d->block && !in_http) {
            walk(c, &d->kids, servers, true);
        } else if (strcmp(name, "events") == 0 && d->block) {
            continue;
        } else if (!in_http && !d->block && (strcmp(name, "user") == 0 ||
                   strcmp(name, "worker_processes") == 0 || strcmp(name, "pid") == 0)) {
            continue;
        } else if (is_noop(name) && !d->block) {
            continue;
        } else if (strcmp(name, "include") == 0) {
            warn(c->w, d->line, "include %s is not followed", d->w.n > 1 ? d->w.v[1] : "");
        } else {
            warn(c->w, d->line, "directive \"%s\" outside server is not modelled: ignored",
                 name);
        }
    }
}

int nginx_conf_parse(const char *text, nginx_file_cb files, void *data, nginx_server_t *out,
                     nginx_warnings_t *w)
{
    server_init(out);
    if (!text)
        return LB_ENOENT;
    lex_t lx = { .p = text, .line = 1 };
    ndirs_t top = { 0 };
    int eline = 0;
    int rc = parse_block(&lx, &top, true, 0, &eline);
    if (rc) {
        warn(w, eline, "%s", lx.err);
        dirs_free(&top);
        return rc;
    }
    srv_ctx_t c = { .s = out, .w = w, .files = files, .data = data };
    int servers = 0;
    walk(&c, &top, &servers, false);
    dirs_free(&top);
    lb_vec_free(&c.add_headers);
    lb_vec_free(&c.add_always);
    lb_vec_free(&c.declared);
    lb_vec_free(&c.declared_match);
    if (!servers) {
        lb_vec_free(&c.locs);
        warn(w, 0, "no server block");
        return LB_ENOENT;
    }
    out->locs = c.locs.v;
    out->n_locs = c.locs.n;
    return 0;
}

/* ---- shell heredoc ------------------------------------------------------------------------ */
static bool shell_word_char(char c)
{
    return c && !isspace((unsigned char)c) && !strchr(";&|<>()", c);
}

/* The redirect target on the heredoc's line before `<<`: `cat > FILE`, `cat >>FILE`,
 * `tee FILE`. */
static char *heredoc_target(const char *line, const char *here)
{
    const char *gt = NULL;
    for (const char *p = line; p < here; p++)
        if (*p == '>')
            gt = p;
    const char *p;
    if (gt) {
        p = gt + 1;
    } else {
        const char *tee = NULL;
        for (const char *q = line; q + 3 <= here; q++)
            if (strncmp(q, "tee", 3) == 0 && (q == line || isspace((unsigned char)q[-1])) &&
                isspace((unsigned char)q[3]))
                tee = q;
        if (!tee)
            return NULL;
        p = tee + 3;
        while (p < here && isspace((unsigned char)*p))
            p++;
        while (p < here && *p == '-') {        /* tee -a FILE */
            while (p < here && !isspace((unsigned char)*p))
                p++;
            while (p < here && isspace((unsigned char)*p))
                p++;
        }
    }
    while (p < here && (*p == ' ' || *p == '\t'))
        p++;
    const char *s = p;
    while (p < here && shell_word_char(*p))
        p++;
    if (p == s)
        return NULL;
    char *t = lb_strndup(s, (size_t)(p - s));
    /* strip simple quoting of the file name */
    size_t n = strlen(t);
    if (n >= 2 && (t[0] == '\'' || t[0] == '"') && t[n - 1] == t[0]) {
        memmove(t, t + 1, n - 2);
        t[n - 2] = 0;
    }
    return t;
}

/* One heredoc starting at `here` ("<<"): fills the outputs, returns where scanning may
 * continue (after the body), or NULL when the operator is malformed. */
static const char *heredoc_at(const char *script, const char *here, char **body,
                              char **target, bool *expands)
{
    const char *p = here + 2;
    bool strip_tabs = false;
    if (*p == '<')                                  /* <<< is a here-string */
        return NULL;
    if (*p == '-') {
        strip_tabs = true;
        p++;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    /* The delimiter is the word with quotes removed; any quoting disables expansion. */
    char delim[128];
    size_t dn = 0;
    bool quoted = false;
    while (shell_word_char(*p) && dn + 1 < sizeof delim) {
        if (*p == '\'' || *p == '"') {
            char q = *p++;
            quoted = true;
            while (*p && *p != q && *p != '\n' && dn + 1 < sizeof delim)
                delim[dn++] = *p++;
            if (*p == q)
                p++;
            continue;
        }
        if (*p == '\\') {
            quoted = true;
            p++;
            continue;
        }
        delim[dn++] = *p++;
    }
    delim[dn] = 0;
    if (!dn)
        return NULL;
    const char *line = here;
    while (line > script && line[-1] != '\n')
        line--;
    const char *eol = strchr(p, '\n');
    if (!eol)
        return NULL;
    const char *start = eol + 1, *q = start, *stop = NULL, *next = NULL;
    while (*q) {
        const char *le = strchr(q, '\n');
        size_t len = le ? (size_t)(le - q) : strlen(q);
        const char *l = q;
        if (strip_tabs)
            while (l < q + len && *l == '\t')
                l++;
        size_t ll = (size_t)(q + len - l);
        if (ll && l[ll - 1] == '\r')
            ll--;
        if (ll == dn && memcmp(l, delim, dn) == 0) {
            stop = q;
            next = le ? le + 1 : q + len;
            break;
        }
        q = le ? le + 1 : q + len;
    }
    if (!stop) {                    /* bash: "here-document delimited by end-of-file" */
        stop = q;
        next = q;
    }
    /* copy, stripping leading tabs for <<- */
    size_t n = (size_t)(stop - start);
    char *b = lb_malloc(n + 1), *d = b;
    bool bol = true;
    for (const char *s = start; s < stop; s++) {
        if (bol && strip_tabs && *s == '\t')
            continue;
        bol = *s == '\n';
        *d++ = *s;
    }
    *d = 0;
    *body = b;
    *target = heredoc_target(line, here);
    *expands = !quoted;
    return next;
}

int nginx_conf_heredoc(const char *script, char **body, char **target, bool *expands)
{
    *body = NULL;
    if (target)
        *target = NULL;
    if (!script)
        return LB_ENOENT;
    char *first_body = NULL, *first_target = NULL;
    bool first_expands = false;
    const char *p = script;
    while ((p = strstr(p, "<<"))) {
        char *b, *t;
        bool e;
        const char *next = heredoc_at(script, p, &b, &t, &e);
        if (!next) {
            p += 2;
            while (*p == '<')
                p++;
            continue;
        }
        size_t tl = t ? strlen(t) : 0;
        if (t && tl >= 5 && strcmp(t + tl - 5, ".conf") == 0) {
            lb_free(first_body);
            lb_free(first_target);
            *body = b;
            if (target)
                *target = t;
            else
                lb_free(t);
            *expands = e;
            return 0;
        }
        if (!first_body) {
            first_body = b;
            first_target = t;
            first_expands = e;
        } else {
            lb_free(b);
            lb_free(t);
        }
        p = next;
    }
    if (!first_body)
        return LB_ENOENT;
    *body = first_body;
    if (target)
        *target = first_target;
    else
        lb_free(first_target);
    *expands = first_expands;
    return 0;
}

/* What the shell does to an unquoted heredoc body: $NAME and ${NAME} expand (to "" --
 * nothing is set in the container's script environment that the config could use),
 * \$ \` \\ and backslash-newline are unescaped. Lines that changed are warned about. */
static char *shell_expand(const char *body, nginx_warnings_t *w)
{
    size_t n = strlen(body);
    char *out = lb_malloc(n + 1), *d = out;
    int line = 1, warned_line = 0;
    for (const char *s = body; *s; ) {
        if (*s == '\\' && (s[1] == '$' || s[1] == '`' || s[1] == '\\')) {
            *d++ = s[1];
            s += 2;
            continue;
        }
        if (*s == '\\' && s[1] == '\n') {
            s += 2;
            line++;
            continue;
        }
        if (*s == '$' && (s[1] == '{' || isalpha((unsigned char)s[1]) || s[1] == '_')) {
            const char *v = s + 1;
            if (*v == '{') {
                const char *e = strchr(v, '}');
                v = e ? e + 1 : v + 1;
            } else {
                while (isalnum((unsigned char)*v) || *v == '_')
                    v++;
            }
            if (warned_line != line) {
                warn(w, line, "the heredoc delimiter is unquoted, so the shell expands "
                     "\"%.*s\" to an empty string before nginx reads the config",
                     (int)(v - s), s);
                warned_line = line;
            }
            s = v;
            continue;
        }
        if (*s == '\n')
            line++;
        *d++ = *s++;
    }
    *d = 0;
    return out;
}

/* ---- containers --------------------------------------------------------------------------- */
typedef struct cm_files {
    const k8s_objects_t *o;
    const char *ns;
    const k8s_container_t *c;
} cm_files_t;

/* alias /usr/share/nginx/html/users.json -> key users.json of a mounted ConfigMap. */
static int cm_file(const char *path, const char **text, void *data)
{
    const cm_files_t *f = data;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < f->c->config_maps.n; i++) {
        const k8s_configmap_t *cm = k8s_configmap_find(f->o, f->ns, f->c->config_maps.v[i]);
        const char *v = cm ? k8s_kv_get(&cm->data, base) : NULL;
        if (v) {
            *text = v;
            return 0;
        }
    }
    return LB_ENOENT;
}

/* A cheap test for "this text has a server block": a `server` word followed by '{'. */
static bool has_server_block(const char *t)
{
    for (const char *p = t; (p = strstr(p, "server")); p += 6) {
        if (p > t && !isspace((unsigned char)p[-1]) && p[-1] != '{' && p[-1] != ';')
            continue;
        const char *q = p + 6;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '{')
            return true;
    }
    return false;
}

static int parse_with_source(const char *text, cm_files_t *f, nginx_server_t *out,
                             nginx_warnings_t *w, char *source)
{
    int rc = nginx_conf_parse(text, cm_file, f, out, w);
    out->source = source;
    return rc;
}

int nginx_conf_from_container(const k8s_objects_t *o, const char *ns,
                              const k8s_container_t *c, nginx_server_t *out,
                              nginx_warnings_t *w)
{
    server_init(out);
    if (!c)
        return LB_ENOENT;
    cm_files_t f = { o, ns, c };
    const char *cname = c->name ? c->name : "?";
    if (c->nginx_conf) {
        char *body = NULL, *target = NULL;
        bool expands;
        if (nginx_conf_heredoc(c->nginx_conf, &body, &target, &expands) == 0 &&
            !has_server_block(body)) {
            lb_free(body);                  /* a heredoc, but no server block in it */
            lb_free(target);
        } else if (body) {
            if (expands) {
                char *x = shell_expand(body, w);
                lb_free(body);
                body = x;
            }
            char *src = lb_sprintf("heredoc writing %s in the command of container %s",
                                   target ? target : "(stdout)", cname);
            int rc = parse_with_source(body, &f, out, w, src);
            lb_free(body);
            lb_free(target);
            return rc;
        }
        if (has_server_block(c->nginx_conf))
            return parse_with_source(c->nginx_conf, &f, out, w,
                                     lb_sprintf("nginx config of container %s", cname));
    }
    /* Mounted ConfigMaps: conventional keys first, then any *.conf key. */
    static const char *const keys[] = { "nginx.conf", "default.conf", NULL };
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->config_maps.n; i++) {
            const k8s_configmap_t *cm = k8s_configmap_find(o, ns, c->config_maps.v[i]);
            if (!cm)
                continue;
            for (size_t j = 0; j < cm->data.n; j++) {
                const char *k = cm->data.v[j].key, *v = cm->data.v[j].value;
                size_t kl = strlen(k);
                bool want = false;
                if (pass == 0) {
                    for (size_t x = 0; keys[x]; x++)
                        want |= strcmp(k, keys[x]) == 0;
                } else {
                    want = kl > 5 && strcmp(k + kl - 5, ".conf") == 0;
                }
                if (want && v && has_server_block(v))
                    return parse_with_source(v, &f, out, w,
                        lb_sprintf("ConfigMap %s/%s key %s", ns ? ns : "default",
                                   cm->meta.name, k));
            }
        }
    }
    for (size_t i = 0; i < c->config_maps.n; i++)
        if (!k8s_configmap_find(o, ns, c->config_maps.v[i]))
            warn(w, 0, "container %s mounts ConfigMap %s/%s, which is not defined", cname,
                 ns ? ns : "default", c->config_maps.v[i]);
    return LB_ENOENT;
}

/* ---- rendering: locations back into an nginx server block ------------------------------- */

void nginx_conf_quote(FILE *out, const char *text)
{
    fputc('"', out);
    for (const char *s = text ? text : ""; *s; s++) {
        switch (*s) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '$': fputs("${" NGINX_DOLLAR_VAR "}", out); break;   /* no escape for $ */
        default: fputc(*s, out);
        }
    }
    fputc('"', out);
}

/* "Name: value" -> name (length) and value. */
static bool header_split(const char *h, size_t *nlen, const char **val)
{
    const char *c = strchr(h, ':');
    if (!c) return false;
    *nlen = (size_t)(c - h);
    for (c++; *c == ' '; c++) {}
    *val = c;
    return true;
}

static bool header_is(const char *h, size_t nlen, const char *name)
{
    return strlen(name) == nlen && strncasecmp(h, name, nlen) == 0;
}

int nginx_conf_render_server(FILE *out, int port, const app_location_t *locs, size_t n,
                             const char *indent)
{
    const char *in = indent ? indent : "";
    int approx = 0;
    bool root = false;
    fprintf(out, "%sserver {\n%s    listen %d;\n", in, in, port);
    for (size_t i = 0; i < n; i++) {
        const app_location_t *l = &locs[i];
        root |= l->match == APP_MATCH_PREFIX && strcmp(l->path, "/") == 0;
        fprintf(out, "%s    location %s%s {\n", in, l->match == APP_MATCH_EXACT ? "= " : "",
                l->path);
        if (l->service_time.kind != DIST_CONST || l->service_time.a != 0) {
            fprintf(out, "%s        # the model waits a service time here; nginx answers at "
                    "once\n", in);
            approx++;
        }
        const char *location = NULL;
        for (size_t k = 0; k < l->n_headers; k++) {
            size_t nl;
            const char *v;
            if (!header_split(l->headers[k], &nl, &v)) continue;
            if (header_is(l->headers[k], nl, "Content-Type")) {
                fprintf(out, "%s        default_type ", in);
                nginx_conf_quote(out, v);
                fputs(";\n", out);
            } else if (header_is(l->headers[k], nl, "Location")) {
                location = v;
            } else {
                fprintf(out, "%s        add_header %.*s ", in, (int)nl, l->headers[k]);
                nginx_conf_quote(out, v);
                fputs(" always;\n", out);
            }
        }
        const char *body = l->body ? l->body : "";
        if (l->body_size >= 0 && (size_t)l->body_size != strlen(body)) {
            fprintf(out, "%s        # the model sends %lld body bytes; nginx sends the text "
                    "below\n", in, (long long)l->body_size);
            approx++;
        }
        bool ctype = false;
        for (size_t k = 0; k < l->n_headers; k++) {
            size_t nl;
            const char *v;
            ctype |= header_split(l->headers[k], &nl, &v) && header_is(l->headers[k], nl, "Content-Type");
        }
        if (!location && !*body && !ctype) {        /* no text: no body, no Content-Type */
            fprintf(out, "%s        return %d;\n", in, l->status);
        } else {
            fprintf(out, "%s        return %d ", in, l->status);
            nginx_conf_quote(out, location ? location : body);
            fputs(";\n", out);
        }
        fprintf(out, "%s    }\n", in);
    }
    if (!root)          /* the model answers 404 where no location matches */
        fprintf(out, "%s    location / {\n%s        return 404;\n%s    }\n", in, in, in);
    fprintf(out, "%s}\n", in);
    return approx;
}

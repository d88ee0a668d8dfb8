/* nginx_conf.h -- reads an nginx server configuration the way the seed manifests write
 * it (a shell heredoc in the container's command/args, or a ConfigMap key mounted as
 * conf.d/default.conf with other keys as files) and turns it into the listen port and
 * the app_location_t list of the nginx-like server (apps.h). The parser follows nginx's
 * own tokenizer (src/core/ngx_conf_file.c ngx_conf_read_token): words, '...' and "..."
 * strings with \" \' \\ \t \r \n escapes, # comments, ';' and { } blocks. Directives the
 * model does not implement (regex locations, proxy_pass, rewrite, if, ...) are never
 * dropped silently: each becomes a warning with its line number. */
#ifndef NGINX_CONF_H
#define NGINX_CONF_H

#include "apps.h"
#include "k8s.h"

/* nginx's default listen port when a server has no `listen`: *:80 when the master runs
 * as root, as in the nginx image (nginx.org/en/docs/http/ngx_http_core_module.html#listen). */
#define NGINX_LISTEN_DEFAULT 80
/* The nginx image's /etc/nginx/nginx.conf sets `default_type application/octet-stream;`
 * in its http block (ngx_http_core default is text/plain). */
#define NGINX_DEFAULT_TYPE "application/octet-stream"
/* The directory the nginx image serves by default (`root /usr/share/nginx/html`). */
#define NGINX_HTML_ROOT "/usr/share/nginx/html"

typedef struct nginx_warning {
    int line;                       /* 1-based line in the text nginx reads (for a heredoc:
                                     * its body); 0: not bound to a line */
    char *msg;
} nginx_warning_t;
typedef LB_VEC(nginx_warning_t) nginx_warnings_t;
void nginx_warnings_free(nginx_warnings_t *w);

/* One server block. locs[i].path/body/headers point into storage owned by the server;
 * everything is released by nginx_server_free. */
typedef struct nginx_server {
    int listen_port;                /* NGINX_LISTEN_DEFAULT when absent */
    char *server_name;              /* first server_name, NULL if absent */
    app_location_t *locs;
    size_t n_locs;
    char *source;                   /* where the config was found, for explanations */
    LB_VEC(void *) owned_;          /* private: strings and arrays to free */
} nginx_server_t;
void nginx_server_free(nginx_server_t *s);

/* Resolves a file named by `alias` to its contents: returns 0 with *text (borrowed,
 * must outlive the parse) or LB_ENOENT. */
typedef int (*nginx_file_cb)(const char *path, const char **text, void *data);

/* Parses config text (an nginx conf.d file: one or more `server` blocks, optionally
 * inside `http { }`). The first server block is used; others are warned about. files may
 * be NULL (then every alias is a warning). Returns 0 (even with warnings), LB_EPARSE for
 * text nginx itself would reject (unbalanced braces, a missing ';', an unterminated
 * string), with a warning saying where, or LB_ENOENT when there is no server block.
 * *out is always initialised and must be freed with nginx_server_free. */
int nginx_conf_parse(const char *text, nginx_file_cb files, void *data, nginx_server_t *out,
                     nginx_warnings_t *w);

/* Finds the heredoc in a shell script: `cat > FILE << 'EOF'` ... `EOF` (also <<EOF,
 * <<"EOF", <<-EOF). *body gets a copy of the heredoc text, *target the file it is
 * written to (both lb_free'd by the caller; target may be NULL if not wanted).
 * *expands is true when the delimiter was unquoted, i.e. the shell expands $... in the
 * body. Returns 0, or LB_ENOENT when the script has no heredoc. The first heredoc whose
 * target ends in ".conf" wins; otherwise the first one. */
int nginx_conf_heredoc(const char *script, char **body, char **target, bool *expands);

/* Builds the nginx server of a container of a Deployment in namespace ns. The config
 * is looked up, in order, (1) as a heredoc with a server block in c->nginx_conf (the
 * container's command and args joined, k8s.h), preferring one that writes a *.conf file;
 * an unquoted delimiter gets the shell's $-expansion, with a warning per line; (2) as
 * config text itself in c->nginx_conf; (3) in the ConfigMaps the container mounts
 * (c->config_maps): the key nginx.conf, default.conf, or any key ending in .conf whose
 * text has a server block. o may be NULL when nothing is mounted.
 * An `alias /dir/NAME;` is served from key NAME of a mounted ConfigMap (subPath mounts:
 * the file name is the key). Returns 0, LB_ENOENT when no config is found, LB_EPARSE as
 * nginx_conf_parse. *out is initialised in every case. */
int nginx_conf_from_container(const k8s_objects_t *o, const char *ns,
                              const k8s_container_t *c, nginx_server_t *out,
                              nginx_warnings_t *w);

/* ---- rendering (the real chain's pods run real nginx with these) ------------------------
 * The variable a rendered config uses for a literal '$' (nginx strings have no escape for
 * it): the http block must declare `geo $NGINX_DOLLAR_VAR { default "$"; }`. */
#define NGINX_DOLLAR_VAR "lbchain_dollar"
/* Writes text as an nginx double-quoted string (\" \\ \n \r \t escapes, '$' as the
 * variable above). */
void nginx_conf_quote(FILE *out, const char *text);
/* Writes an nginx `server` block listening on `port` that answers as the nginx-like server
 * model with these locations does (apps.h): `location = P` (exact) or `location P`
 * (prefix) each with `return STATUS "BODY"`, its Content-Type as default_type, a Location
 * header as the redirect target, other headers as `add_header ... always`, and a
 * `location /` answering 404 when no location covers "/" (the model's no-match answer).
 * Every line starts with indent (may be NULL). Returns how many locations nginx cannot
 * reproduce exactly (a service time, a body size beyond its text); each has a comment. */
int nginx_conf_render_server(FILE *out, int port, const app_location_t *locs, size_t n,
                             const char *indent);

#endif

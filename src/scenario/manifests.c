/* manifests.c -- Kubernetes manifests (the positioned YAML tree) into k8s_objects_t, with
 * the API's defaults and the API server's validation messages at file:line:col, and
 * warnings for every field the model does not use; then the scenario's `kubernetes:`
 * section (inline manifests, { file: PATH } read once per scenario within bounds,
 * kubernetes-remove/-add/-set, manifests found by an index of their addresses). Sources for
 * defaults and checks: k8s.io/api core/v1 + apps/v1 types.go, kubernetes
 * pkg/apis/core/validation/validation.go, pkg/apis/apps/validation, sigs.k8s.io/gateway-api
 * apis/v1 (kubebuilder defaults and CEL rules). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "manifests.h"
#include "scenario_int.h"

/* Deepest field path we build in messages (spec.rules[].matches[].headers[].name is 5). */
#define MF_MAX_DEPTH 32
/* API limits used in checks: ports (core/v1), backendRef weight (gateway-api
 * shared_types.go: Maximum=1000000), metadata.name (DNS-1123 subdomain, 253). */
#define MF_PORT_MAX 65535
#define MF_WEIGHT_MAX 1000000
#define MF_NAME_MAX 253
#define MF_LABEL_MAX 63
#define MF_PORT_NAME_MAX 15

/* ---- the set -------------------------------------------------------------------------------- */

/* Warnings, one per (kind, field), found by a hash of both (lb_vec_* work on it). */
typedef struct warnvec {
    manifests_warning_t *v;
    size_t n, cap;
    lb_index_t index;
} warnvec_t;

struct manifests {
    k8s_objects_t objs;
    lb_index_t names;               /* hash of (kind, namespace, name) -> position in its kind */
    LB_VEC(char *) files;           /* interned file names for positions */
    warnvec_t warns;
    int next_order;
    /* the Service each NodePort a manifest names is allocated to (the API server's
     * allocator; ports drawn at random later skip these) */
    const k8s_service_t *node_port_owner[K8S_NODEPORT_MAX - K8S_NODEPORT_MIN + 1];
};

manifests_t *manifests_new(void) { return lb_calloc(1, sizeof(manifests_t)); }

static void warns_clear(warnvec_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        lb_free(w->v[i].kind);
        lb_free(w->v[i].field);
    }
    lb_vec_free(w);
    lb_index_free(&w->index);
}

static uint64_t warn_hash(const char *kind, const char *field)
{
    return lb_hash_str(kind) ^ lb_mix64(lb_hash_str(field));
}

void manifests_free(manifests_t *m)
{
    if (!m) return;
    k8s_objects_free(&m->objs);
    lb_index_free(&m->names);
    for (size_t i = 0; i < m->files.n; i++) lb_free(m->files.v[i]);
    lb_vec_free(&m->files);
    warns_clear(&m->warns);
    lb_free(m);
}

const k8s_objects_t *manifests_objects(const manifests_t *m) { return &m->objs; }
size_t manifests_warning_count(const manifests_t *m) { return m->warns.n; }
const manifests_warning_t *manifests_warning_at(const manifests_t *m, size_t i)
{
    return i < m->warns.n ? &m->warns.v[i] : NULL;
}

/* Positions point at a file name the set owns, so objects outlive the YAML they came from. */
static elem_pos_t intern_pos(manifests_t *m, elem_pos_t pos)
{
    const char *f = pos.file ? pos.file : "<manifest>";
    for (size_t i = 0; i < m->files.n; i++)
        if (strcmp(m->files.v[i], f) == 0) {
            pos.file = m->files.v[i];
            return pos;
        }
    lb_vec_push(&m->files, lb_strdup(f));
    pos.file = m->files.v[m->files.n - 1];
    return pos;
}

/* Adds one occurrence of (kind, field) to w; the first occurrence keeps its position. */
static void warn_add(warnvec_t *w, const char *kind, const char *field, elem_pos_t pos,
                     int count, bool harmless)
{
    uint64_t h = warn_hash(kind, field);
    for (size_t it, i = lb_index_first(&w->index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&w->index, h, &it))
        if (strcmp(w->v[i].kind, kind) == 0 && strcmp(w->v[i].field, field) == 0) {
            w->v[i].count += count;
            return;
        }
    manifests_warning_t x = { lb_strdup(kind), lb_strdup(field), pos, count, harmless };
    lb_vec_push(w, x);
    lb_index_add(&w->index, h, w->n - 1);
}

/* ---- printing warnings ---------------------------------------------------------------------------- */

void manifests_print_warnings_n(const manifests_t *const *sets, size_t n, FILE *out)
{
    /* (kind, field) once over all sets: the first set that has it gives position and count
     * (the sets are the same manifests seen by several variants, so counts are not summed) */
    LB_VEC(const manifests_warning_t *) seen = { 0 };
    lb_index_t seen_index = { 0 };
    for (size_t s = 0; s < n; s++) {
        if (!sets[s]) continue;
        for (size_t i = 0; i < sets[s]->warns.n; i++) {
            const manifests_warning_t *w = &sets[s]->warns.v[i];
            uint64_t h = warn_hash(w->kind, w->field);
            bool dup = false;
            for (size_t it, k = lb_index_first(&seen_index, h, &it); k != LB_INDEX_NONE && !dup;
                 k = lb_index_next(&seen_index, h, &it))
                dup = strcmp(seen.v[k]->kind, w->kind) == 0 && strcmp(seen.v[k]->field, w->field) == 0;
            if (!dup) {
                lb_vec_push(&seen, w);
                lb_index_add(&seen_index, h, seen.n - 1);
            }
        }
    }
    lb_index_free(&seen_index);
    const manifests_warning_t *first_harmless = NULL;
    int harmless = 0;
    for (size_t k = 0; k < seen.n; k++) {
        const manifests_warning_t *w = seen.v[k];
        if (w->harmless) {
            if (!first_harmless) first_harmless = w;
            harmless += w->count;
            continue;
        }
        fprintf(out, "%s:%d:%d: warning: %s field %s is not modelled (ignored)\n", w->pos.file,
                w->pos.line, w->pos.col, w->kind, w->field);
    }
    if (first_harmless) {
        const elem_pos_t *p = &first_harmless->pos;
        fprintf(out, "%s:%d:%d: note: ignored %d item%s that do%s not affect the model: ", p->file,
                p->line, p->col, harmless, harmless == 1 ? "" : "s", harmless == 1 ? "es" : "");
        bool first = true;
        for (size_t k = 0; k < seen.n; k++) {
            const manifests_warning_t *w = seen.v[k];
            if (!w->harmless) continue;
            if (w->kind[0])
                fprintf(out, "%s%s %s (%d)", first ? "" : ", ", w->kind, w->field, w->count);
            else
                fprintf(out, "%sdocument with only comments (%d)", first ? "" : ", ", w->count);
            first = false;
        }
        fputc('\n', out);
    }
    lb_vec_free(&seen);
}

void manifests_print_warnings(const manifests_t *m, FILE *out)
{
    manifests_print_warnings_n(&m, 1, out);
}

/* ---- conversion context ----------------------------------------------------------------------------
 * While one manifest is converted, `path` is where we are ("spec.ports[0].port", for errors)
 * and `wpath` the same with list items as "[]" (for warnings, once per field). */
typedef struct conv {
    manifests_t *m;
    scn_diag_t *diag;
    const char *kind;
    char who[400];                  /* "Service istio-ingress/web" */
    char path[512], wpath[512];
    size_t plen[MF_MAX_DEPTH], wlen[MF_MAX_DEPTH];
    int depth;
    warnvec_t warns;                /* merged into the set when the manifest is accepted */
} conv_t;

static void append(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
    size_t l = strlen(buf);
    snprintf(buf + l, cap - l, "%s%s%s", a, b, c);
}

/* A map key in a path: "[key]" when it has a dot (annotation and label keys), so paths
 * read the way kubernetes-set addresses them. */
static void push(conv_t *c, const char *key)
{
    assert(c->depth < MF_MAX_DEPTH);
    c->plen[c->depth] = strlen(c->path);
    c->wlen[c->depth] = strlen(c->wpath);
    c->depth++;
    bool br = strchr(key, '.') != NULL;
    const char *sep = br ? "[" : c->path[0] ? "." : "";
    append(c->path, sizeof c->path, sep, key, br ? "]" : "");
    sep = br ? "[" : c->wpath[0] ? "." : "";
    append(c->wpath, sizeof c->wpath, sep, key, br ? "]" : "");
}

static void push_index(conv_t *c, size_t i)
{
    assert(c->depth < MF_MAX_DEPTH);
    c->plen[c->depth] = strlen(c->path);
    c->wlen[c->depth] = strlen(c->wpath);
    c->depth++;
    char idx[32];
    snprintf(idx, sizeof idx, "[%zu]", i);
    append(c->path, sizeof c->path, idx, "", "");
    append(c->wpath, sizeof c->wpath, "[]", "", "");
}

static void pop(conv_t *c)
{
    assert(c->depth > 0);
    c->depth--;
    c->path[c->plen[c->depth]] = 0;
    c->wpath[c->wlen[c->depth]] = 0;
}

/* "Kind ns/name: path: message" at the node's position; returns LB_EINVAL. */
static int cerr(conv_t *c, const scn_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cerr(conv_t *c, const scn_node_t *at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->path[0])
        return diag_set(c->diag, at->pos, LB_EINVAL, "%s: %s: %s", c->who, c->path, msg);
    return diag_set(c->diag, at->pos, LB_EINVAL, "%s: %s", c->who, msg);
}

/* A NodePort the Service s names at v (field: its name, pushed by the caller): in the
 * range, and not allocated to another Service already, or an error naming that one. */
static int claim_node_port(conv_t *c, const scn_node_t *v, const k8s_service_t *s, int port)
{
    if (port < K8S_NODEPORT_MIN || port > K8S_NODEPORT_MAX)
        return cerr(c, v, "provided port %d is not in the valid range; expected %d-%d (the API "
                    "server's --service-node-port-range)", port, K8S_NODEPORT_MIN,
                    K8S_NODEPORT_MAX);
    const k8s_service_t **owner = &c->m->node_port_owner[port - K8S_NODEPORT_MIN];
    if (*owner == s)
        return cerr(c, v, "provided port %d is already allocated to another port of this "
                    "Service", port);
    if (*owner)
        return cerr(c, v, "provided port %d is already allocated to Service %s/%s (%s:%d:%d)",
                    port, (*owner)->meta.ns, (*owner)->meta.name, (*owner)->meta.pos.file,
                    (*owner)->meta.pos.line, (*owner)->meta.pos.col);
    *owner = s;
    return 0;
}

/* Fields the model never needs and that never change behaviour: what the API server
 * writes back (status, server-set metadata, defaults that kubectl get -o yaml prints).
 * They are counted in one summary line. A value, when given, must match. */
static const struct { const char *field, *value; } harmless_fields[] = {
    { "status", NULL },
    { "metadata.uid", NULL }, { "metadata.resourceVersion", NULL },
    { "metadata.generation", NULL }, { "metadata.creationTimestamp", NULL },
    { "metadata.managedFields", NULL }, { "metadata.selfLink", NULL },
    { "spec.finalizers", NULL },                                   /* Namespace */
    { "spec.template.metadata.creationTimestamp", NULL },
    { "spec.revisionHistoryLimit", NULL }, { "spec.progressDeadlineSeconds", NULL },
    { "spec.template.spec.restartPolicy", "Always" },
    { "spec.template.spec.dnsPolicy", "ClusterFirst" },
    { "spec.template.spec.schedulerName", "default-scheduler" },
    { "spec.template.spec.containers[].imagePullPolicy", NULL },
    { "spec.template.spec.containers[].terminationMessagePath", NULL },
    { "spec.template.spec.containers[].terminationMessagePolicy", NULL },
    { "spec.template.spec.volumes[].configMap.defaultMode", NULL },
    { "spec.sessionAffinity", "None" },                            /* Service */
    { "spec.internalTrafficPolicy", "Cluster" },
    { "spec.ipFamilies", NULL }, { "spec.ipFamilyPolicy", "SingleStack" },
    { "spec.clusterIPs", NULL },
};

static bool is_harmless(const char *wpath, const scn_node_t *v)
{
    for (size_t i = 0; i < sizeof harmless_fields / sizeof *harmless_fields; i++) {
        if (strcmp(harmless_fields[i].field, wpath) != 0) continue;
        if (!harmless_fields[i].value) return true;
        return v->kind == SCN_SCALAR && strcmp(v->str, harmless_fields[i].value) == 0;
    }
    return false;
}

/* Every key of map not in `known` (NULL-terminated) becomes a warning. */
static void check_fields(conv_t *c, const scn_node_t *map, const char *const *known)
{
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (size_t k = 0; known[k] && !ok; k++) ok = strcmp(known[k], map->keys[i]) == 0;
        if (ok) continue;
        push(c, map->keys[i]);
        warn_add(&c->warns, c->kind, c->wpath, intern_pos(c->m, map->kpos[i]), 1,
                 is_harmless(c->wpath, map->v[i]));
        pop(c);
    }
}

/* ---- scalar readers ---------------------------------------------------------------------------------
 * A key written with no value (`key:` or `key: ~`) is unset, as in the API. */

static const scn_node_t *val(const scn_node_t *map, const char *key)
{
    const scn_node_t *v = yt_get(map, key, NULL);
    return v && v->kind != SCN_NULL ? v : NULL;
}

/* YAML 1.1 as kubectl reads it (go-yaml v2 resolve.go): which plain scalars are not
 * strings. "number", "boolean" or NULL. */
static const char *nonstring_type(const scn_node_t *v)
{
    if (v->kind != SCN_SCALAR || v->quoted) return NULL;
    static const char *const bools[] = { "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No",
                                         "NO", "true", "True", "TRUE", "false", "False", "FALSE",
                                         "on", "On", "ON", "off", "Off", "OFF", NULL };
    for (size_t i = 0; bools[i]; i++)
        if (strcmp(v->str, bools[i]) == 0) return "boolean";
    const char *s = v->str;
    if (strcmp(s, ".inf") == 0 || strcmp(s, "-.inf") == 0 || strcmp(s, ".nan") == 0 ||
        strcmp(s, ".Inf") == 0 || strcmp(s, ".NaN") == 0)
        return "number";
    if (*s == '+' || *s == '-') s++;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o') && s[2]) {
        s += 2;
        while (isxdigit((unsigned char)*s)) s++;
        return *s ? NULL : "number";
    }
    bool digits = false;
    while (isdigit((unsigned char)*s)) { s++; digits = true; }
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s)) { s++; digits = true; }
    }
    if (!digits) return NULL;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!isdigit((unsigned char)*s)) return NULL;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s ? NULL : "number";
}

static int scalar_str(conv_t *c, const scn_node_t *v, char **out)
{
    if (v->kind != SCN_SCALAR)
        return cerr(c, v, "expected a string; got %s", yt_kind_desc(v));
    const char *t = nonstring_type(v);
    if (t)
        return cerr(c, v, "expected a string; got the %s %s (quote it: \"%s\")", t, v->str, v->str);
    lb_free(*out);
    *out = lb_strdup(v->str);
    return 0;
}

static int missing(conv_t *c, const scn_node_t *map, const char *key)
{
    return cerr(c, map, "missing required field '%s'", key);
}

/* Reads map[key] as a string into *out (replacing it); absent leaves *out alone. */
static int read_str(conv_t *c, const scn_node_t *map, const char *key, bool required, char **out)
{
    const scn_node_t *v = val(map, key);
    if (!v) return required ? missing(c, map, key) : 0;
    push(c, key);
    int rc = scalar_str(c, v, out);
    pop(c);
    return rc;
}

static int scalar_int(conv_t *c, const scn_node_t *v, long lo, long hi, int *out)
{
    if (v->kind != SCN_SCALAR)
        return cerr(c, v, "expected an integer; got %s", yt_kind_desc(v));
    if (v->quoted)
        return cerr(c, v, "expected an integer; got the string \"%s\" (write it without quotes)",
                    v->str);
    char *end;
    errno = 0;
    long x = strtol(v->str, &end, 10);
    if (!*v->str || *end || errno || isspace((unsigned char)*v->str))
        return cerr(c, v, "expected an integer; got '%s'", v->str);
    if (x < lo || x > hi)
        return cerr(c, v, "expected an integer from %ld to %ld; got %ld", lo, hi, x);
    *out = (int)x;
    return 0;
}

static int read_int(conv_t *c, const scn_node_t *map, const char *key, bool required, long lo,
                    long hi, int *out)
{
    const scn_node_t *v = val(map, key);
    if (!v) return required ? missing(c, map, key) : 0;
    push(c, key);
    int rc = scalar_int(c, v, lo, hi, out);
    pop(c);
    return rc;
}

/* The choice s most likely meant: the same ignoring case, one containing the other
 * ("Prefix" -> "PathPrefix"), else the Levenshtein-closest. */
static const char *closest_choice(const char *s, const char *const *choices)
{
    size_t n = 0;
    while (choices[n]) n++;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, choices[i]) == 0) return choices[i];
    if (strlen(s) >= 3)
        for (size_t i = 0; i < n; i++)
            if (strcasestr(choices[i], s) || strcasestr(s, choices[i])) return choices[i];
    return closest_name(s, choices, n);
}

/* map[key] must be one of choices (case-sensitive, as the API); *idx gets its index.
 * Absent leaves *idx alone. */
static int read_enum(conv_t *c, const scn_node_t *map, const char *key, const char *const *choices,
                     int *idx)
{
    const scn_node_t *v = val(map, key);
    if (!v) return 0;
    push(c, key);
    char *s = NULL;
    int rc = scalar_str(c, v, &s);
    if (rc == 0) {
        rc = LB_EINVAL;
        for (int i = 0; choices[i]; i++)
            if (strcmp(s, choices[i]) == 0) { *idx = i; rc = 0; }
        if (rc < 0) {
            char list[300] = "";
            size_t n = 0;
            while (choices[n]) n++;
            names_join(list, sizeof list, choices, n, 20);
            const char *close = closest_choice(s, choices);
            if (close)
                rc = cerr(c, v, "'%s' is not valid; did you mean '%s'? (one of: %s)", s, close, list);
            else
                rc = cerr(c, v, "'%s' is not valid; expected one of: %s", s, list);
        }
    }
    lb_free(s);
    pop(c);
    return rc;
}

/* A mapping of strings (labels, annotations, data, matchLabels, nodeSelector). */
static int read_kvs(conv_t *c, const scn_node_t *map, const char *key, k8s_kvs_t *out)
{
    const scn_node_t *v = val(map, key);
    if (!v) return 0;
    push(c, key);
    int rc = 0;
    if (v->kind != SCN_MAP) rc = cerr(c, v, "expected a mapping of strings; got %s", yt_kind_desc(v));
    for (size_t i = 0; rc == 0 && i < v->n; i++) {
        push(c, v->keys[i]);
        char *s = NULL;
        if (v->v[i]->kind == SCN_NULL) s = lb_strdup("");
        else rc = scalar_str(c, v->v[i], &s);
        pop(c);
        if (rc < 0) break;
        k8s_kv_t kv = { lb_strdup(v->keys[i]), s };
        lb_vec_push(out, kv);
    }
    pop(c);
    return rc;
}

/* A list node for map[key] (NULL when absent); error when it is not a list. */
static int read_list(conv_t *c, const scn_node_t *map, const char *key, const scn_node_t **out)
{
    *out = val(map, key);
    if (!*out || (*out)->kind == SCN_SEQ) return 0;
    push(c, key);
    int rc = cerr(c, *out, "expected a list; got %s", yt_kind_desc(*out));
    pop(c);
    return rc;
}

/* map[key] must be a mapping (NULL when absent). */
static int read_map(conv_t *c, const scn_node_t *map, const char *key, bool required,
                    const scn_node_t **out)
{
    *out = val(map, key);
    if (!*out) return required ? missing(c, map, key) : 0;
    if ((*out)->kind == SCN_MAP) return 0;
    push(c, key);
    int rc = cerr(c, *out, "expected a mapping; got %s", yt_kind_desc(*out));
    pop(c);
    return rc;
}

static int read_strlist(conv_t *c, const scn_node_t *map, const char *key, void *vec)
{
    LB_VEC(char *) *out = vec;
    const scn_node_t *l;
    int rc = read_list(c, map, key, &l);
    if (rc < 0 || !l) return rc;
    push(c, key);
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        push_index(c, i);
        char *s = NULL;
        rc = scalar_str(c, l->v[i], &s);
        if (rc == 0) lb_vec_push(out, s);
        pop(c);
    }
    pop(c);
    return rc;
}

/* validation.go IsValidPortName (IANA_SVC_NAME): 1-15 of [a-z0-9-], a letter, no "--",
 * no '-' at either end. */
static bool port_name_ok(const char *s)
{
    size_t n = strlen(s);
    bool letter = false;
    if (!n || n > MF_PORT_NAME_MAX || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--")) return false;
    for (size_t i = 0; i < n; i++) {
        if (islower((unsigned char)s[i])) letter = true;
        else if (!isdigit((unsigned char)s[i]) && s[i] != '-') return false;
    }
    return letter;
}

/* IntOrString port: a number 1..65535 or a port name. */
static int read_port_ref(conv_t *c, const scn_node_t *map, const char *key, bool required,
                         k8s_port_ref_t *out)
{
    const scn_node_t *v = val(map, key);
    if (!v) return required ? missing(c, map, key) : 0;
    push(c, key);
    int rc = 0;
    if (v->kind != SCN_SCALAR) {
        rc = cerr(c, v, "expected a port number or name; got %s", yt_kind_desc(v));
    } else if (nonstring_type(v)) {
        rc = scalar_int(c, v, 1, MF_PORT_MAX, &out->number);
    } else if (!port_name_ok(v->str)) {
        bool digits = *v->str && strspn(v->str, "0123456789") == strlen(v->str);
        rc = cerr(c, v, "'%s' is neither a port number (1-%d) nor a port name (up to %d lowercase "
                  "letters, digits and '-', with a letter)%s", v->str, MF_PORT_MAX, MF_PORT_NAME_MAX,
                  digits ? "; write the number without quotes" : "");
    } else {
        lb_free(out->name);
        out->name = lb_strdup(v->str);
    }
    pop(c);
    return rc;
}

/* RFC 1123 names: a label (namespaces, Service names: DNS-1035 also starts with a
 * letter) or a subdomain (most objects). validation.go IsDNS1123Label/Subdomain. */
static bool dns_name_ok(const char *s, bool label, bool letter_first)
{
    size_t n = strlen(s);
    if (!n || n > (label ? MF_LABEL_MAX : MF_NAME_MAX)) return false;
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1])) return false;
    if (letter_first && !islower((unsigned char)s[0])) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '-' ||
              (ch == '.' && !label)))
            return false;
    }
    return true;
}

static int check_name(conv_t *c, const scn_node_t *at, const char *s, bool label, bool letter_first)
{
    if (dns_name_ok(s, label, letter_first)) return 0;
    return cerr(c, at, "'%s' is not a valid name; expected up to %d lowercase letters, digits%s "
                "and '-', starting with a letter%s and ending with a letter or digit", s,
                label ? MF_LABEL_MAX : MF_NAME_MAX, label ? "" : ", '.'",
                letter_first ? "" : " or digit");
}

/* ---- kinds ---------------------------------------------------------------------------------------- */

enum { K_NAMESPACE, K_CONFIGMAP, K_DEPLOYMENT, K_SERVICE, K_GATEWAY, K_HTTPROUTE, K_REFGRANT,
       K_COUNT };

#define GW_GROUP "gateway.networking.k8s.io"
#define GW_V1 "gateway.networking.k8s.io/v1"
#define GW_V1BETA1 "gateway.networking.k8s.io/v1beta1"
#define GW_V1ALPHA2 "gateway.networking.k8s.io/v1alpha2"

static const struct kind_def {
    const char *name;
    const char *versions[3];        /* accepted apiVersions, first is the preferred one */
    bool namespaced;
    bool dns_label;                 /* name is an RFC 1123 label (else a subdomain) */
} kinds[K_COUNT] = {
    [K_NAMESPACE] = { "Namespace", { "v1" }, false, true },
    [K_CONFIGMAP] = { "ConfigMap", { "v1" }, true, false },
    [K_DEPLOYMENT] = { "Deployment", { "apps/v1" }, true, false },
    [K_SERVICE] = { "Service", { "v1" }, true, true },
    [K_GATEWAY] = { "Gateway", { GW_V1, GW_V1BETA1 }, true, false },
    [K_HTTPROUTE] = { "HTTPRoute", { GW_V1, GW_V1BETA1 }, true, false },
    [K_REFGRANT] = { "ReferenceGrant", { GW_V1BETA1, GW_V1ALPHA2 }, true, false },
};

static const char *const kind_names[] = { "Namespace", "ConfigMap", "Deployment", "Service",
                                          "Gateway", "HTTPRoute", "ReferenceGrant", NULL };

/* The meta of object i of kind k in o (NULL past the end). */
static k8s_meta_t *meta_at(const k8s_objects_t *o, int k, size_t i)
{
    switch (k) {
    case K_NAMESPACE: return i < o->namespaces.n ? &o->namespaces.v[i]->meta : NULL;
    case K_CONFIGMAP: return i < o->configmaps.n ? &o->configmaps.v[i]->meta : NULL;
    case K_DEPLOYMENT: return i < o->deployments.n ? &o->deployments.v[i]->meta : NULL;
    case K_SERVICE: return i < o->services.n ? &o->services.v[i]->meta : NULL;
    case K_GATEWAY: return i < o->gateways.n ? &o->gateways.v[i]->meta : NULL;
    case K_HTTPROUTE: return i < o->routes.n ? &o->routes.v[i]->meta : NULL;
    case K_REFGRANT: return i < o->grants.n ? &o->grants.v[i]->meta : NULL;
    }
    return NULL;
}

/* ---- metadata ---------------------------------------------------------------------------------------- */

static int conv_meta(conv_t *c, const scn_node_t *doc, const struct kind_def *kd, k8s_meta_t *meta)
{
    const scn_node_t *md;
    int rc = read_map(c, doc, "metadata", true, &md);
    if (rc < 0) return rc;
    push(c, "metadata");
    rc = read_str(c, md, "name", true, &meta->name);
    if (rc == 0) {
        push(c, "name");
        rc = check_name(c, val(md, "name"), meta->name, kd->dns_label, kd == &kinds[K_SERVICE]);
        pop(c);
    }
    if (rc == 0 && kd->namespaced) {
        rc = read_str(c, md, "namespace", false, &meta->ns);
        if (rc == 0 && meta->ns) {
            push(c, "namespace");
            rc = check_name(c, val(md, "namespace"), meta->ns, true, false);
            pop(c);
        }
        if (!meta->ns) meta->ns = lb_strdup("default");
    } else if (!kd->namespaced) {
        meta->ns = lb_strdup("");       /* cluster-scoped: the API ignores metadata.namespace */
    }
    if (rc == 0) rc = read_kvs(c, md, "labels", &meta->labels);
    if (rc == 0) rc = read_kvs(c, md, "annotations", &meta->annotations);
    static const char *const known[] = { "name", "namespace", "labels", "annotations", NULL };
    if (rc == 0) check_fields(c, md, known);
    pop(c);
    if (rc == 0) {
        if (kd->namespaced)
            snprintf(c->who, sizeof c->who, "%s %s/%s", kd->name, meta->ns, meta->name);
        else
            snprintf(c->who, sizeof c->who, "%s %s", kd->name, meta->name);
    }
    return rc;
}

/* ---- Namespace, ConfigMap ------------------------------------------------------------------------------ */

static int conv_namespace(conv_t *c, const scn_node_t *doc, k8s_namespace_t *ns)
{
    (void)ns;
    const scn_node_t *spec;
    int rc = read_map(c, doc, "spec", false, &spec);
    if (rc == 0 && spec) {
        static const char *const known[] = { NULL };
        push(c, "spec");
        check_fields(c, spec, known);
        pop(c);
    }
    return rc;
}

static int conv_configmap(conv_t *c, const scn_node_t *doc, k8s_configmap_t *cm)
{
    return read_kvs(c, doc, "data", &cm->data);
}

/* ---- Deployment ---------------------------------------------------------------------------------------- */

static const char *const probe_handlers[] = { "httpGet", "tcpSocket", "exec", "grpc", NULL };

/* core/v1 Probe defaults (types.go): period 10 s, timeout 1 s, success 1, failure 3. */
#define PROBE_PERIOD_DEFAULT 10
#define PROBE_TIMEOUT_DEFAULT 1
#define PROBE_SUCCESS_DEFAULT 1
#define PROBE_FAILURE_DEFAULT 3
/* kubelet: an httpGet without a path requests "/" (prober/http.go formats the URL). */
#define PROBE_HTTP_PATH_DEFAULT "/"

static void probe_defaults(k8s_probe_t *p)
{
    p->period_s = PROBE_PERIOD_DEFAULT;
    p->timeout_s = PROBE_TIMEOUT_DEFAULT;
    p->success_threshold = PROBE_SUCCESS_DEFAULT;
    p->failure_threshold = PROBE_FAILURE_DEFAULT;
}

static int conv_probe(conv_t *c, const scn_node_t *ctr, const char *key, bool liveness,
                      k8s_probe_t *p)
{
    probe_defaults(p);
    const scn_node_t *pr;
    int rc = read_map(c, ctr, key, false, &pr);
    if (rc < 0 || !pr) return rc;
    push(c, key);
    const char *handler = NULL;
    for (size_t i = 0; probe_handlers[i] && rc == 0; i++) {
        if (!val(pr, probe_handlers[i])) continue;
        if (handler)
            rc = cerr(c, pr, "may not specify more than 1 handler type (%s and %s)", handler,
                      probe_handlers[i]);
        handler = probe_handlers[i];
    }
    if (rc == 0 && !handler)
        rc = cerr(c, pr, "must specify a handler type; expected httpGet, tcpSocket or exec");
    const scn_node_t *h = NULL;
    bool grpc = rc == 0 && strcmp(handler, "grpc") == 0;
    if (rc == 0 && !grpc) rc = read_map(c, pr, handler, true, &h);
    if (rc == 0 && grpc) {
        p->kind = K8S_PROBE_NONE;       /* grpc probes are not modelled: a warning below */
    } else if (rc == 0) {
        push(c, handler);
        if (strcmp(handler, "httpGet") == 0) {
            /* scheme HTTP is the default and what the model does; HTTPS is a warning */
            const scn_node_t *scheme = val(h, "scheme");
            bool plain = scheme && scheme->kind == SCN_SCALAR && strcmp(scheme->str, "HTTP") == 0;
            static const char *const known[] = { "path", "port", NULL };
            static const char *const known_http[] = { "path", "port", "scheme", NULL };
            p->kind = K8S_PROBE_HTTP;
            rc = read_str(c, h, "path", false, &p->path);
            if (rc == 0 && !p->path) p->path = lb_strdup(PROBE_HTTP_PATH_DEFAULT);
            if (rc == 0) rc = read_port_ref(c, h, "port", true, &p->port);
            if (rc == 0) check_fields(c, h, plain ? known_http : known);
        } else if (strcmp(handler, "tcpSocket") == 0) {
            static const char *const known[] = { "port", NULL };
            p->kind = K8S_PROBE_TCP;
            rc = read_port_ref(c, h, "port", true, &p->port);
            if (rc == 0) check_fields(c, h, known);
        } else {
            static const char *const known[] = { NULL };
            p->kind = K8S_PROBE_EXEC;       /* the command itself is not modelled */
            check_fields(c, h, known);
        }
        pop(c);
    }
    if (rc == 0) rc = read_int(c, pr, "initialDelaySeconds", false, 0, INT_MAX, &p->initial_delay_s);
    if (rc == 0) rc = read_int(c, pr, "periodSeconds", false, 1, INT_MAX, &p->period_s);
    if (rc == 0) rc = read_int(c, pr, "timeoutSeconds", false, 1, INT_MAX, &p->timeout_s);
    if (rc == 0) rc = read_int(c, pr, "successThreshold", false, 1, INT_MAX, &p->success_threshold);
    if (rc == 0) rc = read_int(c, pr, "failureThreshold", false, 1, INT_MAX, &p->failure_threshold);
    if (rc == 0 && liveness && p->success_threshold != 1) {
        push(c, "successThreshold");
        rc = cerr(c, val(pr, "successThreshold"), "must be 1 for a liveness probe; got %d",
                  p->success_threshold);
        pop(c);
    }
    static const char *const known[] = { "httpGet", "tcpSocket", "exec", "initialDelaySeconds",
                                         "periodSeconds", "timeoutSeconds", "successThreshold",
                                         "failureThreshold", NULL };
    if (rc == 0) check_fields(c, pr, known);
    pop(c);
    return rc;
}

/* The shell script of `sh -c SCRIPT` in command + args: where the seed manifests write
 * their nginx config as a heredoc. NULL when the container runs no shell script. */
static char *shell_script(const char *const *argv, size_t argc)
{
    static const char *const shells[] = { "sh", "bash", "ash", "dash", "zsh", NULL };
    for (size_t i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-c") != 0) continue;
        const char *base = strrchr(argv[i - 1], '/');
        base = base ? base + 1 : argv[i - 1];
        for (size_t k = 0; shells[k]; k++)
            if (strcmp(base, shells[k]) == 0) return lb_strdup(argv[i + 1]);
    }
    return NULL;
}

typedef struct volume { const char *name, *config_map; } volume_t;
typedef LB_VEC(volume_t) volvec_t;

static int conv_container(conv_t *c, const scn_node_t *n, const volvec_t *vols, k8s_container_t *ct)
{
    if (n->kind != SCN_MAP) return cerr(c, n, "expected a container (a mapping); got %s", yt_kind_desc(n));
    int rc = read_str(c, n, "name", true, &ct->name);
    if (rc == 0) {
        push(c, "name");
        rc = check_name(c, val(n, "name"), ct->name, true, false);
        pop(c);
    }
    if (rc == 0) rc = read_str(c, n, "image", true, &ct->image);
    const scn_node_t *ports = NULL;
    if (rc == 0) rc = read_list(c, n, "ports", &ports);
    for (size_t i = 0; ports && rc == 0 && i < ports->n; i++) {
        push(c, "ports");
        push_index(c, i);
        const scn_node_t *p = ports->v[i];
        k8s_container_port_t cp = { 0 };
        if (p->kind != SCN_MAP) rc = cerr(c, p, "expected a port (a mapping); got %s", yt_kind_desc(p));
        if (rc == 0) rc = read_int(c, p, "containerPort", true, 1, MF_PORT_MAX, &cp.port);
        if (rc == 0) rc = read_str(c, p, "name", false, &cp.name);
        if (rc == 0 && cp.name && !port_name_ok(cp.name)) {
            push(c, "name");
            rc = cerr(c, val(p, "name"), "'%s' is not a valid port name; expected up to %d lowercase "
                      "letters, digits and '-', with a letter", cp.name, MF_PORT_NAME_MAX);
            pop(c);
        }
        static const char *const protos[] = { "TCP", "UDP", "SCTP", NULL };
        int proto = 0;
        if (rc == 0) rc = read_enum(c, p, "protocol", protos, &proto);
        cp.protocol = lb_strdup(protos[proto]);
        static const char *const known[] = { "containerPort", "name", "protocol", NULL };
        if (rc == 0) check_fields(c, p, known);
        lb_vec_push(&ct->ports, cp);    /* pushed even on error: freed with the object */
        pop(c);
        pop(c);
    }
    if (rc == 0) rc = conv_probe(c, n, "readinessProbe", false, &ct->readiness);
    if (rc == 0) rc = conv_probe(c, n, "livenessProbe", true, &ct->liveness);
    /* command + args: the shell script that writes the nginx config (nginx_conf.h) */
    LB_VEC(char *) argv = { 0 };
    if (rc == 0) rc = read_strlist(c, n, "command", &argv);
    if (rc == 0) rc = read_strlist(c, n, "args", &argv);
    if (rc == 0) ct->nginx_conf = shell_script((const char *const *)argv.v, argv.n);
    for (size_t i = 0; i < argv.n; i++) lb_free(argv.v[i]);
    lb_vec_free(&argv);
    /* volumeMounts: which ConfigMaps the container sees */
    const scn_node_t *mounts = NULL;
    if (rc == 0) rc = read_list(c, n, "volumeMounts", &mounts);
    for (size_t i = 0; mounts && rc == 0 && i < mounts->n; i++) {
        push(c, "volumeMounts");
        push_index(c, i);
        const scn_node_t *vm = mounts->v[i];
        char *vname = NULL, *path = NULL, *sub = NULL;
        if (vm->kind != SCN_MAP) rc = cerr(c, vm, "expected a volume mount (a mapping); got %s", yt_kind_desc(vm));
        if (rc == 0) rc = read_str(c, vm, "name", true, &vname);
        if (rc == 0) rc = read_str(c, vm, "mountPath", true, &path);
        if (rc == 0) rc = read_str(c, vm, "subPath", false, &sub);
        const volume_t *vol = NULL;
        for (size_t k = 0; rc == 0 && k < vols->n && !vol; k++)
            if (strcmp(vols->v[k].name, vname) == 0) vol = &vols->v[k];
        if (rc == 0 && !vol) {
            push(c, "name");
            rc = cerr(c, val(vm, "name"), "no volume '%s' in spec.template.spec.volumes", vname);
            pop(c);
        }
        if (rc == 0 && vol->config_map) {
            bool dup = false;
            for (size_t k = 0; k < ct->config_maps.n && !dup; k++)
                dup = strcmp(ct->config_maps.v[k], vol->config_map) == 0;
            if (!dup) lb_vec_push(&ct->config_maps, lb_strdup(vol->config_map));
        }
        static const char *const known[] = { "name", "mountPath", "subPath", "readOnly", NULL };
        if (rc == 0) check_fields(c, vm, known);
        lb_free(vname);
        lb_free(path);
        lb_free(sub);
        pop(c);
        pop(c);
    }
    static const char *const known[] = { "name", "image", "ports", "readinessProbe",
                                         "livenessProbe", "command", "args", "volumeMounts", NULL };
    if (rc == 0) check_fields(c, n, known);
    return rc;
}

static int conv_tolerations(conv_t *c, const scn_node_t *pod, k8s_deployment_t *d)
{
    const scn_node_t *l;
    int rc = read_list(c, pod, "tolerations", &l);
    for (size_t i = 0; l && rc == 0 && i < l->n; i++) {
        push(c, "tolerations");
        push_index(c, i);
        const scn_node_t *t = l->v[i];
        k8s_toleration_t tol = { 0 };
        static const char *const ops[] = { "Equal", "Exists", NULL };
        static const char *const effects[] = { "NoSchedule", "PreferNoSchedule", "NoExecute", NULL };
        int op = 0, eff = -1;
        if (t->kind != SCN_MAP) rc = cerr(c, t, "expected a toleration (a mapping); got %s", yt_kind_desc(t));
        if (rc == 0) rc = read_str(c, t, "key", false, &tol.key);
        if (rc == 0) rc = read_enum(c, t, "operator", ops, &op);
        if (rc == 0) rc = read_str(c, t, "value", false, &tol.value);
        if (rc == 0) rc = read_enum(c, t, "effect", effects, &eff);
        tol.op = lb_strdup(ops[op]);
        if (eff >= 0) tol.effect = lb_strdup(effects[eff]);
        static const char *const known[] = { "key", "operator", "value", "effect", NULL };
        if (rc == 0) check_fields(c, t, known);
        lb_vec_push(&d->tolerations, tol);
        pop(c);
        pop(c);
    }
    return rc;
}

static int conv_volumes(conv_t *c, const scn_node_t *pod, volvec_t *vols)
{
    const scn_node_t *l;
    int rc = read_list(c, pod, "volumes", &l);
    for (size_t i = 0; l && rc == 0 && i < l->n; i++) {
        push(c, "volumes");
        push_index(c, i);
        const scn_node_t *v = l->v[i];
        volume_t vol = { 0 };
        const scn_node_t *cm = NULL;
        char *name = NULL, *cm_name = NULL;
        if (v->kind != SCN_MAP) rc = cerr(c, v, "expected a volume (a mapping); got %s", yt_kind_desc(v));
        if (rc == 0) rc = read_str(c, v, "name", true, &name);
        if (rc == 0) rc = read_map(c, v, "configMap", false, &cm);
        if (rc == 0 && cm) {
            static const char *const known[] = { "name", NULL };
            push(c, "configMap");
            rc = read_str(c, cm, "name", true, &cm_name);
            if (rc == 0) check_fields(c, cm, known);
            pop(c);
        }
        if (rc == 0) {      /* the strings stay in the tree, which outlives the conversion */
            vol.name = val(v, "name")->str;
            vol.config_map = cm ? val(cm, "name")->str : NULL;
            lb_vec_push(vols, vol);
        }
        lb_free(name);
        lb_free(cm_name);
        static const char *const known[] = { "name", "configMap", NULL };
        if (rc == 0) check_fields(c, v, known);
        pop(c);
        pop(c);
    }
    return rc;
}

static int conv_deployment(conv_t *c, const scn_node_t *doc, k8s_deployment_t *d)
{
    d->replicas = 1;            /* apps/v1 DeploymentSpec.replicas default */
    const scn_node_t *spec, *sel = NULL, *tpl = NULL, *tmeta = NULL, *pod = NULL, *ctrs = NULL;
    int rc = read_map(c, doc, "spec", true, &spec);
    if (rc < 0) return rc;
    push(c, "spec");
    rc = read_int(c, spec, "replicas", false, 0, INT_MAX, &d->replicas);
    if (rc == 0) rc = read_map(c, spec, "selector", true, &sel);
    if (rc == 0) {
        push(c, "selector");
        rc = read_kvs(c, sel, "matchLabels", &d->selector);
        if (rc == 0 && !d->selector.n)
            rc = cerr(c, sel, "empty selector is invalid for deployment; expected matchLabels");
        static const char *const known[] = { "matchLabels", NULL };
        if (rc == 0) check_fields(c, sel, known);
        pop(c);
    }
    if (rc == 0) rc = read_map(c, spec, "template", true, &tpl);
    if (rc == 0) {
        push(c, "template");
        rc = read_map(c, tpl, "metadata", false, &tmeta);
        if (rc == 0 && tmeta) {
            push(c, "metadata");
            rc = read_kvs(c, tmeta, "labels", &d->pod_labels);
            static const char *const known[] = { "labels", NULL };
            if (rc == 0) check_fields(c, tmeta, known);
            pop(c);
        }
        if (rc == 0 && !k8s_labels_match(&d->selector, &d->pod_labels)) {
            pop(c);
            push(c, "selector");
            rc = cerr(c, sel, "selector does not match template labels; expected every matchLabels "
                      "pair in spec.template.metadata.labels");
            pop(c);
            push(c, "template");
        }
        if (rc == 0) rc = read_map(c, tpl, "spec", true, &pod);
        volvec_t vols = { 0 };
        if (rc == 0) {
            push(c, "spec");
            rc = read_kvs(c, pod, "nodeSelector", &d->node_selector);
            if (rc == 0) rc = conv_tolerations(c, pod, d);
            if (rc == 0) rc = conv_volumes(c, pod, &vols);
            if (rc == 0) rc = read_list(c, pod, "containers", &ctrs);
            if (rc == 0 && (!ctrs || ctrs->n == 0)) rc = missing(c, pod, "containers");
            for (size_t i = 0; ctrs && rc == 0 && i < ctrs->n; i++) {
                push(c, "containers");
                push_index(c, i);
                k8s_container_t zero = { 0 };
                lb_vec_push(&d->containers, zero);
                rc = conv_container(c, ctrs->v[i], &vols, &d->containers.v[d->containers.n - 1]);
                pop(c);
                pop(c);
            }
            static const char *const known[] = { "nodeSelector", "tolerations", "volumes",
                                                 "containers", NULL };
            if (rc == 0) check_fields(c, pod, known);
            pop(c);
        }
        lb_vec_free(&vols);
        static const char *const known[] = { "metadata", "spec", NULL };
        if (rc == 0) check_fields(c, tpl, known);
        pop(c);
    }
    static const char *const known[] = { "replicas", "selector", "template", NULL };
    if (rc == 0) check_fields(c, spec, known);
    pop(c);
    return rc;
}

/* ---- Service ------------------------------------------------------------------------------------------ */

static int conv_service(conv_t *c, const scn_node_t *doc, k8s_service_t *s)
{
    const scn_node_t *spec, *ports = NULL;
    int rc = read_map(c, doc, "spec", true, &spec);
    if (rc < 0) return rc;
    push(c, "spec");
    static const char *const types[] = { "ClusterIP", "NodePort", "LoadBalancer", "ExternalName", NULL };
    int type = 0, etp = -1;
    rc = read_enum(c, spec, "type", types, &type);
    if (rc == 0 && type == 3) {
        push(c, "type");
        rc = cerr(c, val(spec, "type"), "'ExternalName' is not modelled; expected ClusterIP, NodePort "
                  "or LoadBalancer");
        pop(c);
    }
    s->type = type == 1 ? K8S_SVC_NODE_PORT : type == 2 ? K8S_SVC_LOAD_BALANCER : K8S_SVC_CLUSTER_IP;
    bool external = s->type != K8S_SVC_CLUSTER_IP;
    if (rc == 0) rc = read_kvs(c, spec, "selector", &s->selector);
    if (rc == 0) rc = read_list(c, spec, "ports", &ports);
    if (rc == 0 && (!ports || !ports->n)) rc = missing(c, spec, "ports");
    for (size_t i = 0; ports && rc == 0 && i < ports->n; i++) {
        push(c, "ports");
        push_index(c, i);
        const scn_node_t *p = ports->v[i];
        k8s_service_port_t sp = { 0 };
        static const char *const protos[] = { "TCP", "UDP", "SCTP", NULL };
        int proto = 0;
        if (p->kind != SCN_MAP) rc = cerr(c, p, "expected a port (a mapping); got %s", yt_kind_desc(p));
        if (rc == 0) rc = read_str(c, p, "name", ports->n > 1, &sp.name);
        if (rc == 0 && sp.name && !dns_name_ok(sp.name, true, false)) {
            push(c, "name");
            rc = check_name(c, val(p, "name"), sp.name, true, false);
            pop(c);
        }
        for (size_t k = 0; rc == 0 && sp.name && k < s->ports.n; k++)
            if (s->ports.v[k].name && strcmp(s->ports.v[k].name, sp.name) == 0) {
                push(c, "name");
                rc = cerr(c, val(p, "name"), "duplicate port name '%s' (also spec.ports[%zu])",
                          sp.name, k);
                pop(c);
            }
        if (rc == 0) rc = read_int(c, p, "port", true, 1, MF_PORT_MAX, &sp.port);
        if (rc == 0) rc = read_port_ref(c, p, "targetPort", false, &sp.target_port);
        if (rc == 0 && !sp.target_port.name && !sp.target_port.number)
            sp.target_port.number = sp.port;        /* default: same as port */
        if (rc == 0) rc = read_int(c, p, "nodePort", false, 1, MF_PORT_MAX, &sp.node_port);
        if (rc == 0 && sp.node_port && !external) {
            push(c, "nodePort");
            rc = cerr(c, val(p, "nodePort"), "may not be used when type is 'ClusterIP'");
            pop(c);
        } else if (rc == 0 && sp.node_port) {
            push(c, "nodePort");
            rc = claim_node_port(c, val(p, "nodePort"), s, sp.node_port);
            pop(c);
        }
        if (rc == 0) rc = read_enum(c, p, "protocol", protos, &proto);
        sp.protocol = lb_strdup(protos[proto]);
        if (rc == 0) rc = read_str(c, p, "appProtocol", false, &sp.app_protocol);
        static const char *const known[] = { "name", "port", "targetPort", "nodePort", "protocol",
                                             "appProtocol", NULL };
        if (rc == 0) check_fields(c, p, known);
        lb_vec_push(&s->ports, sp);
        pop(c);
        pop(c);
    }
    static const char *const etps[] = { "Cluster", "Local", NULL };
    if (rc == 0) rc = read_enum(c, spec, "externalTrafficPolicy", etps, &etp);
    if (rc == 0 && etp >= 0 && !external) {
        push(c, "externalTrafficPolicy");
        rc = cerr(c, val(spec, "externalTrafficPolicy"), "may only be set for externally-accessible "
                  "services (type NodePort or LoadBalancer); this Service is ClusterIP");
        pop(c);
    }
    s->etp = etp == 1 ? K8S_ETP_LOCAL : K8S_ETP_CLUSTER;
    if (rc == 0) rc = read_int(c, spec, "healthCheckNodePort", false, 1, MF_PORT_MAX,
                               &s->health_check_node_port);
    if (rc == 0 && s->health_check_node_port &&
        !(s->type == K8S_SVC_LOAD_BALANCER && s->etp == K8S_ETP_LOCAL)) {
        push(c, "healthCheckNodePort");
        rc = cerr(c, val(spec, "healthCheckNodePort"), "may only be set when type is 'LoadBalancer' "
                  "and externalTrafficPolicy is 'Local'");
        pop(c);
    } else if (rc == 0 && s->health_check_node_port) {
        push(c, "healthCheckNodePort");
        rc = claim_node_port(c, val(spec, "healthCheckNodePort"), s, s->health_check_node_port);
        pop(c);
    }
    static const struct { const char *key; size_t off; } ips[] = {
        { "clusterIP", offsetof(k8s_service_t, cluster_ip) },
        { "loadBalancerIP", offsetof(k8s_service_t, lb_ip) },
    };
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        const scn_node_t *v = val(spec, ips[i].key);
        if (!v) continue;
        push(c, ips[i].key);
        char *str = NULL;
        rc = scalar_str(c, v, &str);
        if (rc == 0 && strcmp(str, "None") == 0)
            rc = cerr(c, v, "'None' (a headless Service) is not modelled; expected an IPv4 address "
                      "or nothing");
        else if (rc == 0 && lb_ip_parse(str, (uint32_t *)((char *)s + ips[i].off)) < 0)
            rc = cerr(c, v, "expected an IPv4 address like 10.0.0.10; got '%s'", str);
        lb_free(str);
        pop(c);
    }
    s->has_selector = val(spec, "selector") != NULL;
    const scn_node_t *ranges = NULL;
    if (rc == 0) rc = read_list(c, spec, "loadBalancerSourceRanges", &ranges);
    if (rc == 0 && ranges && ranges->n && s->type != K8S_SVC_LOAD_BALANCER) {
        push(c, "loadBalancerSourceRanges");
        rc = cerr(c, val(spec, "loadBalancerSourceRanges"), "may only be used when type is "
                  "'LoadBalancer'");
        pop(c);
    }
    for (size_t i = 0; ranges && rc == 0 && i < ranges->n; i++) {
        push(c, "loadBalancerSourceRanges");
        push_index(c, i);
        char *str = NULL;
        rc = scalar_str(c, ranges->v[i], &str);
        uint32_t a = 0;
        int plen = -1;
        char *slash = rc == 0 ? strchr(str, '/') : NULL;
        if (slash) {
            *slash = '\0';
            char *end;
            long l = strtol(slash + 1, &end, 10);
            if (*end == '\0' && slash[1] && l >= 0 && l <= 32) plen = (int)l;
        }
        if (rc == 0 && (plen < 0 || lb_ip_parse(str, &a) < 0))
            rc = cerr(c, ranges->v[i], "expected a CIDR like 10.0.0.0/8");
        else if (rc == 0) {
            struct k8s_cidr r = { a & lb_prefix_mask(plen), plen };
            lb_vec_push(&s->source_ranges, r);
        }
        lb_free(str);
        pop(c);
        pop(c);
    }
    static const char *const known[] = { "type", "selector", "ports", "externalTrafficPolicy",
                                         "healthCheckNodePort", "clusterIP", "loadBalancerIP",
                                         "loadBalancerSourceRanges", NULL };
    if (rc == 0) check_fields(c, spec, known);
    pop(c);
    return rc;
}

/* ---- Gateway -------------------------------------------------------------------------------------------- */

static int conv_gateway(conv_t *c, const scn_node_t *doc, k8s_gateway_t *g)
{
    const scn_node_t *spec, *ls = NULL, *infra = NULL;
    int rc = read_map(c, doc, "spec", true, &spec);
    if (rc < 0) return rc;
    push(c, "spec");
    rc = read_str(c, spec, "gatewayClassName", true, &g->class_name);
    if (rc == 0) rc = read_list(c, spec, "listeners", &ls);
    if (rc == 0 && (!ls || !ls->n)) rc = missing(c, spec, "listeners");
    for (size_t i = 0; ls && rc == 0 && i < ls->n; i++) {
        push(c, "listeners");
        push_index(c, i);
        const scn_node_t *l = ls->v[i], *ar = NULL, *nsn = NULL;
        gw_listener_t gl = { 0 };
        /* gateway_types.go ProtocolType: core HTTP, HTTPS, TLS, TCP, UDP */
        static const char *const protos[] = { "HTTP", "HTTPS", "TLS", "TCP", "UDP", NULL };
        static const char *const froms[] = { "Same", "All", "Selector", NULL };
        int proto = -1, from = 0;       /* allowedRoutes.namespaces.from default Same */
        if (l->kind != SCN_MAP) rc = cerr(c, l, "expected a listener (a mapping); got %s", yt_kind_desc(l));
        if (rc == 0) rc = read_str(c, l, "name", true, &gl.name);
        if (rc == 0) {
            push(c, "name");
            rc = check_name(c, val(l, "name"), gl.name, false, false);
            pop(c);
        }
        for (size_t k = 0; rc == 0 && k < g->listeners.n; k++)
            if (strcmp(g->listeners.v[k].name, gl.name) == 0) {
                push(c, "name");
                rc = cerr(c, val(l, "name"), "duplicate listener name '%s' (also "
                          "spec.listeners[%zu]); expected unique names", gl.name, k);
                pop(c);
            }
        if (rc == 0) rc = read_str(c, l, "hostname", false, &gl.hostname);
        if (rc == 0) rc = read_int(c, l, "port", true, 1, MF_PORT_MAX, &gl.port);
        if (rc == 0 && !val(l, "protocol")) rc = missing(c, l, "protocol");
        if (rc == 0) rc = read_enum(c, l, "protocol", protos, &proto);
        if (proto >= 0) gl.protocol = lb_strdup(protos[proto]);
        if (rc == 0) rc = read_map(c, l, "allowedRoutes", false, &ar);
        if (rc == 0 && ar) {
            push(c, "allowedRoutes");
            rc = read_map(c, ar, "namespaces", false, &nsn);
            if (rc == 0 && nsn) {
                push(c, "namespaces");
                rc = read_enum(c, nsn, "from", froms, &from);
                static const char *const known[] = { "from", NULL };
                if (rc == 0) check_fields(c, nsn, known);
                pop(c);
            }
            static const char *const known[] = { "namespaces", NULL };
            if (rc == 0) check_fields(c, ar, known);
            pop(c);
        }
        gl.routes_from = lb_strdup(froms[from]);
        const scn_node_t *tn = NULL, *refs = NULL;
        if (rc == 0) rc = read_map(c, l, "tls", false, &tn);
        if (rc == 0 && tn) {        /* tls.certificateRefs: the Secret names (first one used) */
            push(c, "tls");
            rc = read_list(c, tn, "certificateRefs", &refs);
            for (size_t k = 0; refs && rc == 0 && k < refs->n; k++) {
                push(c, "certificateRefs");
                push_index(c, k);
                char *nm = NULL;
                if (refs->v[k]->kind != SCN_MAP)
                    rc = cerr(c, refs->v[k], "expected a reference (a mapping with name); got %s",
                              yt_kind_desc(refs->v[k]));
                if (rc == 0) rc = read_str(c, refs->v[k], "name", true, &nm);
                if (rc == 0 && !gl.cert_ref) gl.cert_ref = nm;
                else lb_free(nm);
                static const char *const rk[] = { "name", "namespace", "kind", "group", NULL };
                if (rc == 0) check_fields(c, refs->v[k], rk);
                pop(c);
                pop(c);
            }
            static const char *const tk[] = { "mode", "certificateRefs", NULL };
            if (rc == 0) check_fields(c, tn, tk);
            pop(c);
        }
        static const char *const known[] = { "name", "hostname", "port", "protocol",
                                             "allowedRoutes", "tls", NULL };
        if (rc == 0) check_fields(c, l, known);
        lb_vec_push(&g->listeners, gl);
        pop(c);
        pop(c);
    }
    if (rc == 0) rc = read_map(c, spec, "infrastructure", false, &infra);
    if (rc == 0 && infra) {
        push(c, "infrastructure");
        rc = read_kvs(c, infra, "labels", &g->infra_labels);
        if (rc == 0) rc = read_kvs(c, infra, "annotations", &g->infra_annotations);
        static const char *const known[] = { "labels", "annotations", NULL };
        if (rc == 0) check_fields(c, infra, known);
        pop(c);
    }
    static const char *const known[] = { "gatewayClassName", "listeners", "infrastructure", NULL };
    if (rc == 0) check_fields(c, spec, known);
    pop(c);
    return rc;
}

/* ---- HTTPRoute ----------------------------------------------------------------------------------------------- */

static int conv_value_matches(conv_t *c, const scn_node_t *m, const char *key, void *vec)
{
    LB_VEC(gw_header_match_t) *out = vec;
    const scn_node_t *l;
    int rc = read_list(c, m, key, &l);
    for (size_t i = 0; l && rc == 0 && i < l->n; i++) {
        push(c, key);
        push_index(c, i);
        const scn_node_t *h = l->v[i];
        gw_header_match_t hm = { 0 };
        static const char *const types[] = { "Exact", "RegularExpression", NULL };
        int type = 0;                   /* HeaderMatchType default Exact */
        if (h->kind != SCN_MAP) rc = cerr(c, h, "expected a match (a mapping); got %s", yt_kind_desc(h));
        if (rc == 0) rc = read_enum(c, h, "type", types, &type);
        hm.type = type ? GW_MATCH_REGEX : GW_MATCH_EXACT;
        if (rc == 0) rc = read_str(c, h, "name", true, &hm.name);
        if (rc == 0) rc = read_str(c, h, "value", true, &hm.value);
        static const char *const known[] = { "type", "name", "value", NULL };
        if (rc == 0) check_fields(c, h, known);
        lb_vec_push(out, hm);
        pop(c);
        pop(c);
    }
    return rc;
}

/* httproute_types.go HTTPRouteMatch; path default { type: PathPrefix, value: "/" }. */
static int conv_match(conv_t *c, const scn_node_t *m, gw_route_match_t *gm)
{
    gm->path_type = GW_PATH_PREFIX;
    if (m->kind != SCN_MAP) return cerr(c, m, "expected a match (a mapping); got %s", yt_kind_desc(m));
    const scn_node_t *path;
    int rc = read_map(c, m, "path", false, &path);
    if (rc == 0 && path) {
        push(c, "path");
        static const char *const types[] = { "Exact", "PathPrefix", "RegularExpression", NULL };
        int type = 1;
        rc = read_enum(c, path, "type", types, &type);
        gm->path_type = type == 0 ? GW_PATH_EXACT : type == 1 ? GW_PATH_PREFIX : GW_PATH_REGEX;
        if (rc == 0) rc = read_str(c, path, "value", false, &gm->path);
        /* CEL: value must be an absolute path when type is Exact or PathPrefix */
        if (rc == 0 && gm->path && gm->path_type != GW_PATH_REGEX && gm->path[0] != '/') {
            push(c, "value");
            rc = cerr(c, val(path, "value"), "'%s' must be an absolute path and start with '/' when "
                      "type is %s", gm->path, types[type]);
            pop(c);
        }
        static const char *const known[] = { "type", "value", NULL };
        if (rc == 0) check_fields(c, path, known);
        pop(c);
    }
    if (!gm->path) gm->path = lb_strdup("/");
    if (rc == 0) rc = conv_value_matches(c, m, "headers", &gm->headers);
    if (rc == 0) rc = conv_value_matches(c, m, "queryParams", &gm->query);
    static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                           "OPTIONS", "TRACE", "PATCH", NULL };
    int method = -1;
    if (rc == 0) rc = read_enum(c, m, "method", methods, &method);
    if (method >= 0) gm->method = lb_strdup(methods[method]);
    static const char *const known[] = { "path", "headers", "queryParams", "method", NULL };
    if (rc == 0) check_fields(c, m, known);
    return rc;
}

static int conv_backend(conv_t *c, const scn_node_t *b, gw_backend_ref_t *br)
{
    if (b->kind != SCN_MAP) return cerr(c, b, "expected a backendRef (a mapping); got %s", yt_kind_desc(b));
    br->weight = 1;                     /* BackendRef.weight default 1 */
    int rc = read_str(c, b, "group", false, &br->group);
    if (rc == 0) rc = read_str(c, b, "kind", false, &br->kind);
    if (!br->group) br->group = lb_strdup("");
    if (!br->kind) br->kind = lb_strdup("Service");
    if (rc == 0) rc = read_str(c, b, "name", true, &br->name);
    if (rc == 0) rc = read_str(c, b, "namespace", false, &br->ns);
    if (rc == 0) rc = read_int(c, b, "port", false, 1, MF_PORT_MAX, &br->port);
    /* CEL on BackendObjectReference: "Must have port for Service reference" */
    if (rc == 0 && !br->port && !br->group[0] && strcmp(br->kind, "Service") == 0)
        rc = cerr(c, b, "must have port for Service reference");
    if (rc == 0) rc = read_int(c, b, "weight", false, 0, MF_WEIGHT_MAX, &br->weight);
    static const char *const known[] = { "group", "kind", "name", "namespace", "port", "weight", NULL };
    if (rc == 0) check_fields(c, b, known);
    return rc;
}

static int conv_rule(conv_t *c, const scn_node_t *r, gw_route_rule_t *rule)
{
    if (r->kind != SCN_MAP) return cerr(c, r, "expected a rule (a mapping); got %s", yt_kind_desc(r));
    const scn_node_t *ms, *bs = NULL;
    int rc = read_list(c, r, "matches", &ms);
    if (rc == 0 && !yt_get(r, "matches", NULL)) {
        /* HTTPRouteRule.matches default: [{ path: { type: PathPrefix, value: "/" } }] */
        gw_route_match_t gm = { .path_type = GW_PATH_PREFIX, .path = lb_strdup("/") };
        lb_vec_push(&rule->matches, gm);
    }
    for (size_t i = 0; ms && rc == 0 && i < ms->n; i++) {
        push(c, "matches");
        push_index(c, i);
        gw_route_match_t zero = { 0 };
        lb_vec_push(&rule->matches, zero);
        rc = conv_match(c, ms->v[i], &rule->matches.v[rule->matches.n - 1]);
        pop(c);
        pop(c);
    }
    if (rc == 0) rc = read_list(c, r, "backendRefs", &bs);
    for (size_t i = 0; bs && rc == 0 && i < bs->n; i++) {
        push(c, "backendRefs");
        push_index(c, i);
        gw_backend_ref_t zero = { 0 };
        lb_vec_push(&rule->backends, zero);
        rc = conv_backend(c, bs->v[i], &rule->backends.v[rule->backends.n - 1]);
        pop(c);
        pop(c);
    }
    static const char *const known[] = { "matches", "backendRefs", NULL };
    if (rc == 0) check_fields(c, r, known);
    return rc;
}

static int conv_httproute(conv_t *c, const scn_node_t *doc, k8s_httproute_t *r)
{
    const scn_node_t *spec, *ps = NULL, *rules = NULL;
    int rc = read_map(c, doc, "spec", false, &spec);
    if (rc < 0) return rc;
    static const scn_node_t empty = { .kind = SCN_MAP };
    if (!spec) spec = &empty;
    push(c, "spec");
    rc = read_list(c, spec, "parentRefs", &ps);
    for (size_t i = 0; ps && rc == 0 && i < ps->n; i++) {
        push(c, "parentRefs");
        push_index(c, i);
        const scn_node_t *p = ps->v[i];
        gw_parent_ref_t pr = { 0 };
        char *group = NULL, *kind = NULL;
        if (p->kind != SCN_MAP) rc = cerr(c, p, "expected a parentRef (a mapping); got %s", yt_kind_desc(p));
        if (rc == 0) rc = read_str(c, p, "name", true, &pr.name);
        if (rc == 0) rc = read_str(c, p, "namespace", false, &pr.ns);
        if (rc == 0) rc = read_str(c, p, "sectionName", false, &pr.section);
        if (rc == 0) rc = read_int(c, p, "port", false, 1, MF_PORT_MAX, &pr.port);
        if (rc == 0) rc = read_str(c, p, "group", false, &group);
        if (rc == 0) rc = read_str(c, p, "kind", false, &kind);
        /* ParentReference defaults: group gateway.networking.k8s.io, kind Gateway */
        if (rc == 0 && ((group && strcmp(group, GW_GROUP) != 0) ||
                        (kind && strcmp(kind, "Gateway") != 0)))
            rc = cerr(c, p, "a parent of kind '%s' (group '%s') is not modelled; expected a "
                      "Gateway (group %s)", kind ? kind : "Gateway", group ? group : GW_GROUP,
                      GW_GROUP);
        lb_free(group);
        lb_free(kind);
        static const char *const known[] = { "name", "namespace", "sectionName", "port", "group",
                                             "kind", NULL };
        if (rc == 0) check_fields(c, p, known);
        lb_vec_push(&r->parents, pr);
        pop(c);
        pop(c);
    }
    if (rc == 0) rc = read_strlist(c, spec, "hostnames", &r->hostnames);
    if (rc == 0) rc = read_list(c, spec, "rules", &rules);
    if (rc == 0 && !rules) {
        /* HTTPRouteSpec.rules default: one rule matching PathPrefix "/" (no backends) */
        gw_route_rule_t rule = { 0 };
        gw_route_match_t gm = { .path_type = GW_PATH_PREFIX, .path = lb_strdup("/") };
        lb_vec_push(&rule.matches, gm);
        lb_vec_push(&r->rules, rule);
    }
    for (size_t i = 0; rules && rc == 0 && i < rules->n; i++) {
        push(c, "rules");
        push_index(c, i);
        gw_route_rule_t zero = { 0 };
        lb_vec_push(&r->rules, zero);
        rc = conv_rule(c, rules->v[i], &r->rules.v[r->rules.n - 1]);
        pop(c);
        pop(c);
    }
    static const char *const known[] = { "parentRefs", "hostnames", "rules", NULL };
    if (rc == 0 && spec != &empty) check_fields(c, spec, known);
    pop(c);
    return rc;
}

/* ---- ReferenceGrant --------------------------------------------------------------------------------------- */

/* group is required but may be "" (the core group); `group:` with no value reads as "". */
static int read_group(conv_t *c, const scn_node_t *map, char **out)
{
    if (!yt_get(map, "group", NULL)) return missing(c, map, "group");
    int rc = read_str(c, map, "group", false, out);
    if (rc == 0 && !*out) *out = lb_strdup("");
    return rc;
}

static int conv_refgrant(conv_t *c, const scn_node_t *doc, k8s_refgrant_t *g)
{
    const scn_node_t *spec, *from = NULL, *to = NULL;
    int rc = read_map(c, doc, "spec", true, &spec);
    if (rc < 0) return rc;
    push(c, "spec");
    rc = read_list(c, spec, "from", &from);
    if (rc == 0 && (!from || !from->n)) rc = missing(c, spec, "from");
    for (size_t i = 0; from && rc == 0 && i < from->n; i++) {
        push(c, "from");
        push_index(c, i);
        const scn_node_t *f = from->v[i];
        gw_grant_from_t gf = { 0 };
        if (f->kind != SCN_MAP) rc = cerr(c, f, "expected a mapping; got %s", yt_kind_desc(f));
        if (rc == 0) rc = read_group(c, f, &gf.group);
        if (rc == 0) rc = read_str(c, f, "kind", true, &gf.kind);
        if (rc == 0) rc = read_str(c, f, "namespace", true, &gf.ns);
        static const char *const known[] = { "group", "kind", "namespace", NULL };
        if (rc == 0) check_fields(c, f, known);
        lb_vec_push(&g->from, gf);
        pop(c);
        pop(c);
    }
    if (rc == 0) rc = read_list(c, spec, "to", &to);
    if (rc == 0 && (!to || !to->n)) rc = missing(c, spec, "to");
    for (size_t i = 0; to && rc == 0 && i < to->n; i++) {
        push(c, "to");
        push_index(c, i);
        const scn_node_t *t = to->v[i];
        gw_grant_to_t gt = { 0 };
        if (t->kind != SCN_MAP) rc = cerr(c, t, "expected a mapping; got %s", yt_kind_desc(t));
        if (rc == 0) rc = read_group(c, t, &gt.group);
        if (rc == 0) rc = read_str(c, t, "kind", true, &gt.kind);
        if (rc == 0) rc = read_str(c, t, "name", false, &gt.name);
        static const char *const known[] = { "group", "kind", "name", NULL };
        if (rc == 0) check_fields(c, t, known);
        lb_vec_push(&g->to, gt);
        pop(c);
        pop(c);
    }
    static const char *const known[] = { "from", "to", NULL };
    if (rc == 0) check_fields(c, spec, known);
    pop(c);
    return rc;
}

/* ---- one manifest ---------------------------------------------------------------------------------------- */

static int kind_error(scn_diag_t *d, const scn_node_t *kn)
{
    char list[300] = "";
    names_join(list, sizeof list, kind_names, K_COUNT, K_COUNT);
    const char *close = closest_choice(kn->str, kind_names);
    if (close && strcasecmp(close, kn->str) != 0 && !strcasestr(close, kn->str) &&
        elem_distance(close, kn->str) > 3)
        close = NULL;
    if (close)
        return diag_set(d, kn->pos, LB_EINVAL, "kind '%s' is not modelled; did you mean '%s'? "
                        "supported kinds: %s", kn->str, close, list);
    return diag_set(d, kn->pos, LB_EINVAL, "kind '%s' is not modelled; supported kinds: %s",
                    kn->str, list);
}

/* Which kind and apiVersion; K_COUNT... on error. */
static int doc_kind(const scn_node_t *doc, int *k, scn_diag_t *d)
{
    char list[300] = "";
    names_join(list, sizeof list, kind_names, K_COUNT, K_COUNT);
    const scn_node_t *kn = val(doc, "kind");
    if (!kn)
        return diag_set(d, doc->pos, LB_EINVAL, "manifest has no kind; expected one of: %s", list);
    if (kn->kind != SCN_SCALAR)
        return diag_set(d, kn->pos, LB_EINVAL, "kind: expected a string; got %s", yt_kind_desc(kn));
    *k = -1;
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp(kinds[i].name, kn->str) == 0) *k = i;
    if (*k < 0) return kind_error(d, kn);
    const struct kind_def *kd = &kinds[*k];
    const scn_node_t *av = val(doc, "apiVersion");
    char want[200] = "";
    for (size_t i = 0; i < 3 && kd->versions[i]; i++)
        append(want, sizeof want, i ? " or " : "", kd->versions[i], "");
    if (!av)
        return diag_set(d, doc->pos, LB_EINVAL, "%s has no apiVersion; expected apiVersion: %s",
                        kd->name, want);
    if (av->kind != SCN_SCALAR)
        return diag_set(d, av->pos, LB_EINVAL, "apiVersion: expected a string; got %s",
                        yt_kind_desc(av));
    for (size_t i = 0; i < 3 && kd->versions[i]; i++)
        if (strcmp(av->str, kd->versions[i]) == 0) return 0;
    return diag_set(d, av->pos, LB_EINVAL, "apiVersion '%s' is not supported for %s; expected %s",
                    av->str, kd->name, want);
}

/* Warnings of one manifest (one file) by line and column. */
static int cmp_warn_pos(const void *a, const void *b)
{
    const manifests_warning_t *x = a, *y = b;
    if (x->pos.line != y->pos.line) return x->pos.line < y->pos.line ? -1 : 1;
    return (x->pos.col > y->pos.col) - (x->pos.col < y->pos.col);
}

int manifests_add(manifests_t *m, const scn_node_t *doc, scn_diag_t *diag)
{
    if (doc->kind == SCN_NULL) {       /* "---" followed by nothing but comments */
        warn_add(&m->warns, "", "", intern_pos(m, doc->pos), 1, true);
        return 0;
    }
    if (doc->kind != SCN_MAP)
        return diag_set(diag, doc->pos, LB_EINVAL, "a manifest must be a mapping with apiVersion, "
                        "kind and metadata; got %s", yt_kind_desc(doc));
    int k = 0;
    int rc = doc_kind(doc, &k, diag);
    if (rc < 0) return rc;
    const struct kind_def *kd = &kinds[k];
    conv_t c = { .m = m, .diag = diag, .kind = kd->name };
    snprintf(c.who, sizeof c.who, "%s", kd->name);
    k8s_objects_t tmp = { 0 };
    k8s_meta_t *meta = NULL;
    void *obj = NULL;
    switch (k) {
#define NEW(vec, T) do { T *o_ = lb_calloc(1, sizeof *o_); lb_vec_push(&tmp.vec, o_); \
                         meta = &o_->meta; obj = o_; } while (0)
    case K_NAMESPACE: NEW(namespaces, k8s_namespace_t); break;
    case K_CONFIGMAP: NEW(configmaps, k8s_configmap_t); break;
    case K_DEPLOYMENT: NEW(deployments, k8s_deployment_t); break;
    case K_SERVICE: NEW(services, k8s_service_t); break;
    case K_GATEWAY: NEW(gateways, k8s_gateway_t); break;
    case K_HTTPROUTE: NEW(routes, k8s_httproute_t); break;
    case K_REFGRANT: NEW(grants, k8s_refgrant_t); break;
#undef NEW
    }
    assert(meta && obj);
    rc = conv_meta(&c, doc, kd, meta);
    uint64_t name_hash = 0;
    if (rc == 0) {
        /* positions of other kinds may share the hash: the names tell them apart */
        name_hash = lb_mix64((uint64_t)k) ^ lb_hash_str(meta->ns) ^ lb_mix64(lb_hash_str(meta->name));
        for (size_t it, i = lb_index_first(&m->names, name_hash, &it); i != LB_INDEX_NONE && rc == 0;
             i = lb_index_next(&m->names, name_hash, &it)) {
            const k8s_meta_t *o = meta_at(&m->objs, k, i);
            if (o && strcmp(o->name, meta->name) == 0 && strcmp(o->ns, meta->ns) == 0)
                rc = diag_set(diag, doc->pos, LB_EINVAL, "%s is defined twice; the first is at "
                              "%s:%d:%d", c.who, o->pos.file, o->pos.line, o->pos.col);
        }
    }
    if (rc == 0) {
        switch (k) {
        case K_NAMESPACE: rc = conv_namespace(&c, doc, obj); break;
        case K_CONFIGMAP: rc = conv_configmap(&c, doc, obj); break;
        case K_DEPLOYMENT: rc = conv_deployment(&c, doc, obj); break;
        case K_SERVICE: rc = conv_service(&c, doc, obj); break;
        case K_GATEWAY: rc = conv_gateway(&c, doc, obj); break;
        case K_HTTPROUTE: rc = conv_httproute(&c, doc, obj); break;
        case K_REFGRANT: rc = conv_refgrant(&c, doc, obj); break;
        }
    }
    if (rc == 0) {
        static const char *const known[] = { "apiVersion", "kind", "metadata", "spec", NULL };
        static const char *const known_cm[] = { "apiVersion", "kind", "metadata", "data", NULL };
        check_fields(&c, doc, k == K_CONFIGMAP ? known_cm : known);
    }
    assert(rc < 0 || c.depth == 0);
    if (rc < 0) {
        k8s_objects_free(&tmp);
        warns_clear(&c.warns);
        return rc;
    }
    meta->pos = intern_pos(m, doc->pos);
    meta->order = m->next_order++;
    size_t at = 0;                  /* its position among the objects of its kind */
    switch (k) {
#define PUSH(vec) do { lb_vec_push(&m->objs.vec, tmp.vec.v[0]); at = m->objs.vec.n - 1; } while (0)
    case K_NAMESPACE: PUSH(namespaces); break;
    case K_CONFIGMAP: PUSH(configmaps); break;
    case K_DEPLOYMENT: PUSH(deployments); break;
    case K_SERVICE: PUSH(services); break;
    case K_GATEWAY: PUSH(gateways); break;
    case K_HTTPROUTE: PUSH(routes); break;
    case K_REFGRANT: PUSH(grants); break;
#undef PUSH
    }
    lb_index_add(&m->names, name_hash, at);
    lb_vec_free(&tmp.namespaces);
    lb_vec_free(&tmp.configmaps);
    lb_vec_free(&tmp.deployments);
    lb_vec_free(&tmp.services);
    lb_vec_free(&tmp.gateways);
    lb_vec_free(&tmp.routes);
    lb_vec_free(&tmp.grants);
    if (c.warns.n) qsort(c.warns.v, c.warns.n, sizeof *c.warns.v, cmp_warn_pos);   /* file order */
    for (size_t i = 0; i < c.warns.n; i++)
        warn_add(&m->warns, c.warns.v[i].kind, c.warns.v[i].field, c.warns.v[i].pos,
                 c.warns.v[i].count, c.warns.v[i].harmless);
    warns_clear(&c.warns);
    return 0;
}

int manifests_add_docs(manifests_t *m, const scn_docs_t *docs, scn_diag_t *diag)
{
    for (size_t i = 0; i < scn_docs_count(docs); i++) {
        int rc = manifests_add(m, scn_docs_at(docs, i), diag);
        if (rc < 0) return rc;
    }
    return 0;
}

int manifests_add_file(manifests_t *m, const char *path, scn_diag_t *diag)
{
    scn_docs_t *docs = NULL;
    int rc = scn_docs_load(path, &docs, diag);
    if (rc < 0) return rc;
    rc = manifests_add_docs(m, docs, diag);
    scn_docs_free(docs);
    return rc;
}

int manifests_add_string(manifests_t *m, const char *text, const char *fname, scn_diag_t *diag)
{
    scn_docs_t *docs = NULL;
    int rc = scn_docs_load_string(text, fname, &docs, diag);
    if (rc < 0) return rc;
    rc = manifests_add_docs(m, docs, diag);
    scn_docs_free(docs);
    return rc;
}

/* ---- the scenario's kubernetes section --------------------------------------------------------------------
 * `kubernetes` lists inline manifests and { file: PATH } items (PATH relative to the file
 * that names it; a glob picks several files, in name order). Then, in this order:
 * `kubernetes-remove` drops objects by address, `kubernetes-add` appends more items (as
 * `kubernetes`), `kubernetes-set` changes fields: "KIND/NAMESPACE/NAME.field.path" ->
 * value. An address is KIND/NAMESPACE/NAME, or KIND/NAME for a Namespace or an object in
 * namespace default. Everything happens on copies of the YAML, so an error in a value
 * set by a variant points at the variant's own line. */

/* The address forms of a manifest (doc_addr), kept beside k->docs. */
typedef struct kaddr { char *full, *brief; } kaddr_t;

typedef struct kload {
    LB_VEC(scn_node_t *) docs;      /* references, in load order; NULL: removed */
    LB_VEC(kaddr_t) addrs;          /* docs' addresses, once addr_index has run */
    lb_index_t index;               /* hash of a full or brief address -> docs position */
    scn_files_t *files;             /* keeps file names (positions) alive until conversion */
    scn_diag_t *d;
} kload_t;

static void addrs_clear(kload_t *k)
{
    for (size_t i = 0; i < k->addrs.n; i++) {
        lb_free(k->addrs.v[i].full);
        lb_free(k->addrs.v[i].brief);
    }
    k->addrs.n = 0;
    lb_index_clear(&k->index);
}

static void kload_free(kload_t *k)
{
    for (size_t i = 0; i < k->docs.n; i++) yt_free(k->docs.v[i]);
    lb_vec_free(&k->docs);
    addrs_clear(k);
    lb_vec_free(&k->addrs);
    lb_index_free(&k->index);
}

/* path relative to the directory of ref_file (the file the reference is written in). */
static char *resolve_path(const char *ref_file, const char *path)
{
    if (path[0] == '/' || !ref_file || ref_file[0] == '<') return lb_strdup(path);
    const char *slash = strrchr(ref_file, '/');
    if (!slash) return lb_strdup(path);
    return lb_sprintf("%.*s/%s", (int)(slash - ref_file), ref_file, path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the scenario's included files: path -> parsed documents, read once ---- */

typedef struct sfile { char *path; scn_docs_t *docs; } sfile_t;
struct scn_files {
    LB_VEC(sfile_t) v;
    lb_index_t index;               /* hash of path -> v position */
    size_t bytes, nodes;            /* read so far, against the SCN_MAX_INCLUDE_* bounds */
};

scn_files_t *scn_files_new(void) { return lb_calloc(1, sizeof(scn_files_t)); }

void scn_files_free(scn_files_t *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->v.n; i++) {
        lb_free(f->v.v[i].path);
        scn_docs_free(f->v.v[i].docs);
    }
    lb_vec_free(&f->v);
    lb_index_free(&f->index);
    lb_free(f);
}

/* The documents of path (read and parsed on first use); errors point at the `file:` item f
 * and name the file. */
static int files_get(scn_files_t *fs, const scn_node_t *f, const char *path,
                     const scn_docs_t **out, scn_diag_t *d)
{
    uint64_t h = lb_hash_str(path);
    for (size_t it, i = lb_index_first(&fs->index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&fs->index, h, &it))
        if (strcmp(fs->v.v[i].path, path) == 0) {
            *out = fs->v.v[i].docs;
            return 0;
        }
    if (scn_stop_requested())
        return diag_set(d, f->pos, LB_EINTR, "interrupted while reading '%s'", path);
    scn_docs_t *docs = NULL;
    size_t bytes = 0, nodes = 0;
    scn_diag_t why = { 0 };
    int rc = scn_docs_load_counted(path, &docs, &bytes, &nodes, &why);
    if (rc == LB_EIO) {         /* cannot be read: say so at the item that names it */
        const char *msg = why.msg;
        if (strncmp(msg, "cannot ", 7) == 0 && strstr(msg, ": ")) msg = strstr(msg, ": ") + 2;
        return diag_set(d, f->pos, LB_EIO, "file: cannot read '%s': %s", path, msg);
    }
    if (rc < 0) {
        if (d) *d = why;
        return rc;
    }
    if (fs->bytes + bytes > SCN_MAX_INCLUDE_BYTES || fs->nodes + nodes > SCN_MAX_INCLUDE_NODES) {
        scn_docs_free(docs);
        return diag_set(d, f->pos, LB_EIO, "file: '%s' takes the files this scenario includes "
                        "past %d MiB or %u YAML nodes (aliases counted as copies); expected "
                        "fewer or smaller files", path, SCN_MAX_INCLUDE_BYTES >> 20,
                        SCN_MAX_INCLUDE_NODES);
    }
    fs->bytes += bytes;
    fs->nodes += nodes;
    sfile_t e = { lb_strdup(path), docs };
    lb_vec_push(&fs->v, e);
    lb_index_add(&fs->index, h, fs->v.n - 1);
    *out = docs;
    return 0;
}

static int load_one_file(kload_t *k, const scn_node_t *f, const char *path)
{
    const scn_docs_t *docs = NULL;
    int rc = files_get(k->files, f, path, &docs, k->d);
    if (rc < 0) return rc;
    for (size_t i = 0; i < scn_docs_count(docs); i++)
        lb_vec_push(&k->docs, yt_ref(scn_docs_at(docs, i)));
    return 0;
}

static int load_file_item(kload_t *k, const scn_node_t *item, const char *section)
{
    for (size_t i = 0; i < item->n; i++)
        if (strcmp(item->keys[i], "file") != 0)
            return diag_set(k->d, item->kpos[i], LB_EINVAL, "%s: unknown key '%s' in a file item; "
                            "expected only file: PATH", section, item->keys[i]);
    const scn_node_t *f = yt_get(item, "file", NULL);
    if (f->kind != SCN_SCALAR || !f->str[0])
        return diag_set(k->d, f->pos, LB_EINVAL, "file: expected the path of a YAML file of "
                        "manifests, like k8s/gateway.yaml; got %s", yt_kind_desc(f));
    char *path = resolve_path(f->pos.file, f->str);
    int rc = 0;
    if (!strpbrk(f->str, "*?[")) {
        rc = load_one_file(k, f, path);
    } else {
        glob_t g;
        int gr = glob(path, GLOB_NOSORT, NULL, &g);
        if (gr == GLOB_NOMATCH || (gr == 0 && g.gl_pathc == 0))
            rc = diag_set(k->d, f->pos, LB_EIO, "file: no file matches '%s'", path);
        else if (gr != 0)
            rc = diag_set(k->d, f->pos, LB_EIO, "file: cannot list '%s'", path);
        if (gr == 0) {
            qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, cmp_str);   /* not locale order */
            for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) rc = load_one_file(k, f, g.gl_pathv[i]);
        }
        if (gr == 0 || gr == GLOB_NOMATCH) globfree(&g);
    }
    lb_free(path);
    return rc;
}

static int load_items(kload_t *k, const scn_node_t *list, const char *section)
{
    if (!list || list->kind == SCN_NULL) return 0;
    if (list->kind != SCN_SEQ)
        return diag_set(k->d, list->pos, LB_EINVAL, "%s: expected a list of manifests and "
                        "{ file: PATH } items; got %s", section, yt_kind_desc(list));
    static const char *const manifest_keys[] = { "apiVersion", "kind", "metadata", "spec", "data" };
    for (size_t i = 0; i < list->n; i++) {
        const scn_node_t *it = list->v[i];
        bool manifest = false;
        for (size_t j = 0; it->kind == SCN_MAP && j < 5 && !manifest; j++)
            manifest = yt_get(it, manifest_keys[j], NULL) != NULL;
        if (it->kind == SCN_MAP && yt_get(it, "file", NULL) && !manifest) {
            int rc = load_file_item(k, it, section);
            if (rc < 0) return rc;
        } else if (manifest) {
            lb_vec_push(&k->docs, yt_ref(it));
        } else if (it->kind == SCN_MAP && it->n) {
            static const char *const file_key[] = { "file" };
            const char *close = closest_name(it->keys[0], file_key, 1);
            return diag_set(k->d, it->kpos[0], LB_EINVAL, "%s: unknown key '%s'; %sexpected an "
                            "inline manifest (apiVersion, kind, metadata, ...) or { file: PATH }",
                            section, it->keys[0], close ? "did you mean 'file'? " : "");
        } else {
            return diag_set(k->d, it->pos, LB_EINVAL, "%s: expected an inline manifest (apiVersion, "
                            "kind, metadata, ...) or { file: PATH }; got %s", section,
                            yt_kind_desc(it));
        }
    }
    return 0;
}

/* The full address of a manifest ("Kind/ns/name"; "Namespace/name") and, when it has one,
 * the short form ("Kind/name" for namespace default). False without kind or name. */
static bool doc_addr(const scn_node_t *doc, char *full, char *brief, size_t n)
{
    const scn_node_t *kind = val(doc, "kind"), *md = val(doc, "metadata");
    const scn_node_t *name = md ? val(md, "name") : NULL, *ns = md ? val(md, "namespace") : NULL;
    if (!kind || kind->kind != SCN_SCALAR || !name || name->kind != SCN_SCALAR) return false;
    const char *nss = ns && ns->kind == SCN_SCALAR ? ns->str : "default";
    brief[0] = 0;
    if (strcmp(kind->str, "Namespace") == 0) {
        snprintf(full, n, "%s/%s", kind->str, name->str);
        return true;
    }
    snprintf(full, n, "%s/%s/%s", kind->str, nss, name->str);
    if (strcmp(nss, "default") == 0) snprintf(brief, n, "%s/%s", kind->str, name->str);
    return true;
}

/* "did you mean" among every manifest's address, then the first few of them. */
static int no_such_object(kload_t *k, elem_pos_t pos, const char *section, const char *addr,
                          const char *extra)
{
    LB_VEC(char *) names = { 0 };
    char full[600], brief[600];
    for (size_t i = 0; i < k->docs.n; i++)
        if (k->docs.v[i] && doc_addr(k->docs.v[i], full, brief, sizeof full))
            lb_vec_push(&names, lb_strdup(full));
    const char *close = closest_name(addr, (const char *const *)names.v, names.n);
    char list[400] = "";
    names_join(list, sizeof list, (const char *const *)names.v, names.n, 8);
    int rc;
    if (close)
        rc = diag_set(k->d, pos, LB_EINVAL, "%s: no manifest '%s'%s; did you mean '%s'?", section,
                      addr, extra, close);
    else
        rc = diag_set(k->d, pos, LB_EINVAL, "%s: no manifest '%s'%s; expected KIND/NAMESPACE/NAME "
                      "of one of: %s", section, addr, extra, names.n ? list : "(none)");
    for (size_t i = 0; i < names.n; i++) lb_free(names.v[i]);
    lb_vec_free(&names);
    return rc;
}

/* The address forms of document i into k->addrs.v[i] and the index. */
static void addr_add(kload_t *k, size_t i)
{
    char full[600], brief[600];
    kaddr_t *a = &k->addrs.v[i];
    a->full = a->brief = NULL;
    if (!k->docs.v[i] || !doc_addr(k->docs.v[i], full, brief, sizeof full)) return;
    a->full = lb_strdup(full);
    lb_index_add(&k->index, lb_hash_str(full), i);
    if (brief[0]) {
        a->brief = lb_strdup(brief);
        lb_index_add(&k->index, lb_hash_str(brief), i);
    }
}

/* Indexes every document's address forms (after the documents change). */
static void addr_index(kload_t *k)
{
    addrs_clear(k);
    lb_vec_reserve(&k->addrs, k->docs.n);
    k->addrs.n = k->docs.n;
    for (size_t i = 0; i < k->docs.n; i++) addr_add(k, i);
}

/* Document i changed (kubernetes-set may rename it): index it anew. */
static void addr_reindex(kload_t *k, size_t i)
{
    kaddr_t *a = &k->addrs.v[i];
    if (a->full) lb_index_remove(&k->index, lb_hash_str(a->full), i);
    if (a->brief) lb_index_remove(&k->index, lb_hash_str(a->brief), i);
    lb_free(a->full);
    lb_free(a->brief);
    addr_add(k, i);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Calls fn on every document (in order, removed ones skipped) whose full or brief address
 * is the first len bytes of addr; returns how many. */
static size_t addr_each(kload_t *k, const char *addr, size_t len,
                        void (*fn)(kload_t *k, size_t i, void *data), void *data)
{
    char *key = lb_strndup(addr, len);
    uint64_t h = lb_hash_str(key);
    LB_VEC(size_t) hits = { 0 };
    for (size_t it, i = lb_index_first(&k->index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&k->index, h, &it)) {
        const kaddr_t *a = &k->addrs.v[i];
        if (k->docs.v[i] && ((a->full && strcmp(a->full, key) == 0) ||
                             (a->brief && strcmp(a->brief, key) == 0)))
            lb_vec_push(&hits, i);
    }
    lb_free(key);
    /* in document order, once each (probing order is neither) */
    if (hits.n > 1) qsort(hits.v, hits.n, sizeof *hits.v, cmp_size);
    size_t n = 0;
    for (size_t x = 0; x < hits.n; x++)
        if (x == 0 || hits.v[x] != hits.v[x - 1]) {
            if (fn) fn(k, hits.v[x], data);
            n++;
        }
    lb_vec_free(&hits);
    return n;
}

static void remove_doc(kload_t *k, size_t i, void *data)
{
    (void)data;
    yt_free(k->docs.v[i]);
    k->docs.v[i] = NULL;
}

static void first_doc(kload_t *k, size_t i, void *data)
{
    (void)k;
    size_t *first = data;
    if (*first == LB_INDEX_NONE || i < *first) *first = i;
}

static int remove_one(kload_t *k, const scn_node_t *a)
{
    if (a->kind != SCN_SCALAR)
        return diag_set(k->d, a->pos, LB_EINVAL, "kubernetes-remove: expected an object address "
                        "like HTTPRoute/gateway-health/health-route; got %s", yt_kind_desc(a));
    if (!strchr(a->str, '/'))
        return diag_set(k->d, a->pos, LB_EINVAL, "kubernetes-remove: '%s' is not an object address; "
                        "expected KIND/NAMESPACE/NAME like HTTPRoute/gateway-health/health-route",
                        a->str);
    size_t removed = addr_each(k, a->str, strlen(a->str), remove_doc, NULL);
    return removed ? 0 : no_such_object(k, a->pos, "kubernetes-remove", a->str, "");
}

static int apply_remove(kload_t *k, const scn_node_t *list)
{
    if (!list || list->kind == SCN_NULL) return 0;
    if (list->kind != SCN_SCALAR && list->kind != SCN_SEQ)
        return diag_set(k->d, list->pos, LB_EINVAL, "kubernetes-remove: expected a list of object "
                        "addresses like [HTTPRoute/gateway-health/health-route]; got %s",
                        yt_kind_desc(list));
    addr_index(k);
    int rc = 0;
    if (list->kind == SCN_SCALAR) rc = remove_one(k, list);
    for (size_t i = 0; list->kind == SCN_SEQ && i < list->n && rc == 0; i++)
        rc = remove_one(k, list->v[i]);
    size_t kept = 0;                /* close the gaps, keeping the order */
    for (size_t i = 0; i < k->docs.n; i++)
        if (k->docs.v[i]) k->docs.v[kept++] = k->docs.v[i];
    k->docs.n = kept;
    addrs_clear(k);
    return rc;
}

typedef LB_VEC(char *) strvec_t;

/* "spec.ports.0.name", "metadata.annotations[a.b/c]": components, or -1 on bad syntax. */
static int split_field_path(const char *s, strvec_t *out)
{
    const char *p = s;
    for (;;) {
        if (*p == '[') {
            const char *q = strchr(p, ']');
            if (!q || q == p + 1) return -1;
            const char *a = p + 1, *b = q;
            if (b - a >= 2 && (*a == '"' || *a == '\'') && b[-1] == *a) { a++; b--; }
            lb_vec_push(out, lb_strndup(a, (size_t)(b - a)));
            p = q + 1;
        } else {
            size_t len = strcspn(p, ".[");
            if (!len) return -1;
            lb_vec_push(out, lb_strndup(p, len));
            p += len;
        }
        if (!*p) return 0;
        if (*p == '.') {
            p++;
            if (!*p) return -1;
        } else if (*p != '[') {
            return -1;
        }
    }
}

static int set_one(kload_t *k, const char *key, elem_pos_t kpos, const scn_node_t *value)
{
    /* the longest object address that the key starts with, followed by '.' or '[' (the
     * first such document when several have it) */
    size_t di = LB_INDEX_NONE, best = 0;
    for (size_t l = strlen(key); l > 0 && di == LB_INDEX_NONE; l--)
        if (key[l] == '.' || key[l] == '[') {
            addr_each(k, key, l, first_doc, &di);
            best = l;
        }
    if (di == LB_INDEX_NONE && addr_each(k, key, strlen(key), NULL, NULL))
        return diag_set(k->d, kpos, LB_EINVAL, "kubernetes-set: '%s' names an object but no "
                        "field; expected %s.field.path, like %s.spec", key, key, key);
    if (di == LB_INDEX_NONE) {
        /* name the object part (up to the third '/' component's first '.') in the error */
        const char *s3 = strchr(key, '/');
        s3 = s3 ? strchr(s3 + 1, '/') : NULL;
        const char *dot = strchr(s3 ? s3 : key, '.');
        char *addr = lb_strndup(key, dot ? (size_t)(dot - key) : strlen(key));
        int rc = strchr(key, '/') ?
            no_such_object(k, kpos, "kubernetes-set", addr, "") :
            diag_set(k->d, kpos, LB_EINVAL, "kubernetes-set: '%s' does not start with an object "
                     "address; expected KIND/NAMESPACE/NAME.field, like "
                     "Service/istio-ingress/web.spec.externalTrafficPolicy", key);
        lb_free(addr);
        return rc;
    }
    strvec_t comps = { 0 };
    int rc = 0;
    const char *rest = key + best + (key[best] == '.');
    if (split_field_path(rest, &comps) < 0)
        rc = diag_set(k->d, kpos, LB_EINVAL, "kubernetes-set: bad field path '%s'; expected names "
                      "separated by dots, list indexes like ports.0, and [key] for keys with dots "
                      "(annotations[service.beta.kubernetes.io/x])", rest);
    /* copy on write: the document may be shared with the scenario and other variants */
    scn_node_t **slot = &k->docs.v[di];
    char where[600] = "";
    for (size_t i = 0; rc == 0 && i < comps.n; i++) {
        const char *comp = comps.v[i];
        bool last = i + 1 == comps.n;
        scn_node_t *cur = *slot;
        if (cur->kind == SCN_MAP) {
            cur = yt_own(slot);
            if (last) {
                yt_map_set(cur, comp, kpos, yt_ref(value));
                break;
            }
            size_t ci;
            scn_node_t *child = yt_get(cur, comp, &ci);
            if (!child || child->kind == SCN_NULL) {
                yt_map_set(cur, comp, kpos, yt_new(SCN_MAP, kpos, NULL));
                yt_get(cur, comp, &ci);
            }
            slot = &cur->v[ci];
        } else if (cur->kind == SCN_SEQ) {
            char *end;
            long idx = strtol(comp, &end, 10);
            if (!isdigit((unsigned char)*comp) || *end || idx < 0 || (size_t)idx > cur->n) {
                rc = diag_set(k->d, kpos, LB_EINVAL, "kubernetes-set: cannot set '%s': %s is a "
                              "list of %zu; expected an index from 0 to %zu (%zu appends), got '%s'",
                              key, where, cur->n, cur->n, cur->n, comp);
                break;
            }
            cur = yt_own(slot);
            if ((size_t)idx == cur->n)
                yt_seq_push(cur, last ? yt_ref(value) : yt_new(SCN_MAP, kpos, NULL));
            else if (last) {
                yt_free(cur->v[idx]);
                cur->v[idx] = yt_ref(value);
            }
            if (last) break;
            slot = &cur->v[idx];
        } else {
            rc = diag_set(k->d, kpos, LB_EINVAL, "kubernetes-set: cannot set '%s': %s is %s, not a "
                          "mapping or a list", key, where, yt_kind_desc(cur));
            break;
        }
        size_t l = strlen(where);
        snprintf(where + l, sizeof where - l, "%s%s", l ? "." : "", comp);
    }
    if (rc == 0) addr_reindex(k, di);           /* kind or metadata may have changed */
    for (size_t i = 0; i < comps.n; i++) lb_free(comps.v[i]);
    lb_vec_free(&comps);
    return rc;
}

static int apply_set(kload_t *k, const scn_node_t *map)
{
    if (!map || map->kind == SCN_NULL) return 0;
    if (map->kind != SCN_MAP)
        return diag_set(k->d, map->pos, LB_EINVAL, "kubernetes-set: expected a mapping of "
                        "KIND/NAMESPACE/NAME.field paths to values, like { "
                        "Service/istio-ingress/web.spec.externalTrafficPolicy: Local }; got %s",
                        yt_kind_desc(map));
    addr_index(k);
    for (size_t i = 0; i < map->n; i++) {
        int rc = set_one(k, map->keys[i], map->kpos[i], map->v[i]);
        if (rc < 0) return rc;
    }
    addrs_clear(k);
    return 0;
}

int kube_load(const scn_node_t *tree, scn_files_t *files, manifests_t **out, scn_diag_t *d)
{
    *out = NULL;
    const scn_node_t *items = yt_get(tree, "kubernetes", NULL);
    const scn_node_t *rem = yt_get(tree, "kubernetes-remove", NULL);
    const scn_node_t *add = yt_get(tree, "kubernetes-add", NULL);
    const scn_node_t *set = yt_get(tree, "kubernetes-set", NULL);
    if (!items && !rem && !add && !set) return 0;
    scn_files_t *own = files ? NULL : scn_files_new();
    kload_t k = { .d = d, .files = files ? files : own };
    int rc = load_items(&k, items, "kubernetes");
    if (rc == 0) rc = apply_remove(&k, rem);
    if (rc == 0) rc = load_items(&k, add, "kubernetes-add");
    if (rc == 0) rc = apply_set(&k, set);
    manifests_t *m = manifests_new();
    for (size_t i = 0; rc == 0 && i < k.docs.n; i++) {
        if (i % 1024 == 0 && scn_stop_requested())
            rc = diag_set(d, k.docs.v[i]->pos, LB_EINTR, "interrupted while converting manifests");
        else
            rc = manifests_add(m, k.docs.v[i], d);
    }
    kload_free(&k);
    scn_files_free(own);
    if (rc < 0) {
        manifests_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* For variant_set: "kubernetes.KIND/NS/NAME.field" as a set: or command-line key becomes
 * the entry "KIND/NS/NAME.field" of the tree's kubernetes-set (created when missing), so
 * such keys add up instead of replacing each other. `rest` is the part after
 * "kubernetes.". */
int kube_path_set(scn_node_t *root, const char *rest, elem_pos_t kpos, const scn_node_t *value)
{
    assert(root->kind == SCN_MAP && root->refs == 1);
    scn_node_t *ks = yt_get(root, "kubernetes-set", NULL);
    if (!ks || ks->kind != SCN_MAP)
        yt_map_set(root, "kubernetes-set", kpos, yt_new(SCN_MAP, kpos, NULL));
    ks = yt_own_key(root, "kubernetes-set");
    yt_map_set(ks, rest, kpos, yt_ref(value));
    return 0;
}

/* ---- scenario accessors -------------------------------------------------------------------------------------- */

const k8s_objects_t *scn_variant_k8s(const scn_t *s, size_t v)
{
    if (v >= scn_variant_count(s)) return NULL;
    const scn_model_t *m = scn_variant_model(s, v);
    return m->kube ? manifests_objects(m->kube) : NULL;
}

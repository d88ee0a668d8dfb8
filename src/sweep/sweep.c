/* sweep.c -- a sweep's definition: the grid of --sweep, the scenario loaded once per grid
 * point with its overrides applied in key order, the content hash of the scenario's files,
 * the canonical list of runs with their stable ids; which shard this process is; and a
 * sweep rebuilt from the definition and files a results.db keeps.
 *
 * Canonical order: run index = ((variant * points) + point) * seeds + seed offset, with the
 * variants in the order named (-v) or written, and grid points counted with the last axis
 * changing fastest. A shard takes the runs whose index is I mod N, so every shard gets
 * some of every variant. Ids and hashes are SHA-256 (libcrypto's EVP interface). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cJSON.h>
#include <openssl/evp.h>
#include "report.h"
#include "sweep.h"

#define CLI "<command line>"
/* The layout of the definition (sweeps.spec); another one is not read. */
#define SPEC_FORMAT 1

typedef struct axis { char *key; LB_VEC(char *) values; LB_VEC(int) cols; } axis_t;
/* An override: its key, "KEY=VALUE", where it came from (-1: --set; else the axis) and
 * the column its value starts at in that argument. */
typedef struct ovr { const char *key; char *text; int axis; int col; } ovr_t;
typedef struct src { char *path; char *text; size_t len; } src_t;

struct sweep {
    char *file;
    LB_VEC(axis_t) axes;
    LB_VEC(ovr_t) sets;             /* the --set overrides: one per key (the last), sorted;
                                     * text owned, key in set_keys */
    LB_VEC(char *) set_keys;
    LB_VEC(size_t) variants;
    uint64_t seed;
    size_t seeds, npoints;
    bool no_expect;
    scn_t **scns;                   /* one per point */
    char **labels, **ovr;           /* per point */
    LB_VEC(sweep_run_t) runs;
    char hash[SWEEP_HASH_HEX + 1], key[SWEEP_ID_HEX + 1];
    char *spec;
    LB_VEC(src_t) srcs;             /* relative paths; [0] the scenario file */
    const char **src_paths, **src_texts;        /* the same as arrays (sweep_sources) */
    size_t *src_lens;
    size_t *by_id, id_cap;          /* run index + 1 by id (open addressing); 0: empty */
};

/* ---- hashing ------------------------------------------------------------------------------ */

typedef struct sha { EVP_MD_CTX *c; } sha_t;

static void sha_begin(sha_t *h)
{
    h->c = EVP_MD_CTX_new();
    if (!h->c || EVP_DigestInit_ex(h->c, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "sim: libcrypto cannot hash (SHA-256)\n");
        abort();
    }
}

/* Adds len bytes, then a NUL separator (so "ab","c" and "a","bc" differ). */
static void sha_add(sha_t *h, const void *p, size_t len)
{
    EVP_DigestUpdate(h->c, p, len);
    EVP_DigestUpdate(h->c, "", 1);
}
static void sha_adds(sha_t *h, const char *s) { sha_add(h, s, strlen(s)); }

/* The digest as hex, truncated to `hex` digits, into out (hex + 1 bytes). */
static void sha_end(sha_t *h, char *out, size_t hex)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->c, d, &n);
    EVP_MD_CTX_free(h->c);
    for (size_t i = 0; i < hex / 2 && i < n; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[hex] = '\0';
}

void sweep_run_id(const char *version, const char *hash, const char *variant, uint64_t seed,
                  const char *overrides, char *out)
{
    char sd[32];
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)seed);
    sha_t h;
    sha_begin(&h);
    sha_adds(&h, "lbchain-run");
    sha_adds(&h, version);
    sha_adds(&h, hash);
    sha_adds(&h, variant);
    sha_adds(&h, sd);
    sha_adds(&h, overrides);
    sha_end(&h, out, SWEEP_ID_HEX);
}

/* ---- paths --------------------------------------------------------------------------------- */

/* path made absolute (against the working directory) with "." and ".." resolved
 * lexically, as the loader's "dir/path" strings are; caller frees. */
static char *abs_norm(const char *path)
{
    char cwd[4096] = "/";
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "/");
    char *full = path[0] == '/' ? lb_strdup(path) : lb_sprintf("%s/%s", cwd, path);
    LB_VEC(char *) parts = {0};
    for (char *save, *t = strtok_r(full, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, ".")) continue;
        if (!strcmp(t, "..")) {
            if (parts.n) parts.n--;
            continue;
        }
        lb_vec_push(&parts, t);
    }
    size_t len = 1;
    for (size_t i = 0; i < parts.n; i++) len += strlen(parts.v[i]) + 1;
    char *out = lb_malloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < parts.n; i++) k += (size_t)sprintf(out + k, "/%s", parts.v[i]);
    if (!k) out[k++] = '/';
    out[k] = '\0';
    lb_vec_free(&parts);
    lb_free(full);
    return out;
}

/* The scenario's files relative to the deepest directory holding them all. */
static void layout(sweep_t *sw, const scn_t *s)
{
    size_t n = scn_source_count(s);
    char **abs = lb_calloc(n, sizeof *abs);
    for (size_t i = 0; i < n; i++) abs[i] = abs_norm(scn_source_path(s, i));
    char *root = lb_strdup(abs[0]);
    *strrchr(root, '/') = '\0';                         /* "" for a file in "/" */
    for (size_t i = 1; i < n; i++) {
        size_t rl = strlen(root);
        while (!(strncmp(abs[i], root, rl) == 0 && abs[i][rl] == '/')) {
            char *sl = strrchr(root, '/');
            if (!sl) { root[0] = '\0'; break; }
            *sl = '\0';
            rl = strlen(root);
        }
    }
    size_t rl = strlen(root);
    for (size_t i = 0; i < n; i++) {
        bool dup = false;                   /* one file opened by two spellings */
        for (size_t k = 0; k < i && !dup; k++) dup = !strcmp(abs[k], abs[i]);
        if (dup) continue;
        size_t len;
        const char *text = scn_source_text(s, i, &len);
        src_t f = { lb_strdup(abs[i] + rl + 1), lb_malloc(len + 1), len };
        memcpy(f.text, text, len);
        f.text[len] = '\0';
        lb_vec_push(&sw->srcs, f);
    }
    for (size_t i = 0; i < n; i++) lb_free(abs[i]);
    lb_free(abs);
    lb_free(root);
    sw->src_paths = lb_calloc(sw->srcs.n, sizeof *sw->src_paths);
    sw->src_texts = lb_calloc(sw->srcs.n, sizeof *sw->src_texts);
    sw->src_lens = lb_calloc(sw->srcs.n, sizeof *sw->src_lens);
    for (size_t i = 0; i < sw->srcs.n; i++) {
        sw->src_paths[i] = sw->srcs.v[i].path;
        sw->src_texts[i] = sw->srcs.v[i].text;
        sw->src_lens[i] = sw->srcs.v[i].len;
    }
}

static int cmp_src(const void *a, const void *b)
{
    return strcmp(((const src_t *)a)->path, ((const src_t *)b)->path);
}

/* SHA-256 over "main" and the scenario file's path, then every file (by path): its path,
 * its length and its bytes. */
static void content_hash(sweep_t *sw)
{
    size_t n = sw->srcs.n;
    src_t *sorted = lb_calloc(n, sizeof *sorted);
    memcpy(sorted, sw->srcs.v, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_src);
    sha_t h;
    sha_begin(&h);
    sha_adds(&h, "lbchain-scenario");
    sha_adds(&h, sw->srcs.v[0].path);
    for (size_t i = 0; i < n; i++) {
        char len[32];
        snprintf(len, sizeof len, "%zu", sorted[i].len);
        sha_adds(&h, sorted[i].path);
        sha_adds(&h, len);
        sha_add(&h, sorted[i].text, sorted[i].len);
    }
    sha_end(&h, sw->hash, SWEEP_HASH_HEX);
    lb_free(sorted);
}

/* ---- the grid ------------------------------------------------------------------------------- */

static int cli_error(scn_diag_t *d, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cli_error(scn_diag_t *d, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return scn_diag_set(d, (elem_pos_t){ CLI, 1, col }, LB_EINVAL, "%s", msg);
}

/* "KEY=V1,V2,..." into an axis. Values are split at commas outside brackets, braces and
 * quotes, so a value may be a YAML flow list: --sweep 'k=[a, b],[c]'. */
static int axis_parse(const char *arg, axis_t *a, scn_diag_t *d)
{
    memset(a, 0, sizeof *a);
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli_error(d, 1, "--sweep expects KEY=V1,V2,... (e.g. traffic.browse.rate="
                         "50/s,100/s), got '%s'", arg);
    a->key = lb_strndup(arg, (size_t)(eq - arg));
    const char *p = eq + 1, *start = p;
    int depth = 0;
    char quote = 0;
    for (;; p++) {
        char c = *p;
        if (quote) {
            if (c == quote) quote = 0;
            else if (!c) break;
            continue;
        }
        if (c == '\'' || c == '"') quote = c;
        else if (c == '[' || c == '{') depth++;
        else if ((c == ']' || c == '}') && depth > 0) depth--;
        else if ((c == ',' && depth == 0) || !c) {
            int col = (int)(start - arg) + 1;
            if (!c && depth)
                return cli_error(d, col, "--sweep %s: unbalanced brackets in '%s'", a->key,
                                 start);
            if (p == start)
                return cli_error(d, col, "--sweep %s: empty value; expected values separated "
                                 "by commas, like %s=50/s,100/s", a->key, a->key);
            char *v = lb_strndup(start, (size_t)(p - start));
            for (size_t i = 0; i < a->values.n; i++)
                if (!strcmp(a->values.v[i], v)) {
                    cli_error(d, col, "--sweep %s: value '%s' is given twice", a->key, v);
                    lb_free(v);
                    return LB_EINVAL;
                }
            lb_vec_push(&a->values, v);
            lb_vec_push(&a->cols, col);
            start = p + 1;
        }
        if (!c) break;
    }
    if (quote)
        return cli_error(d, (int)(start - arg) + 1, "--sweep %s: unbalanced quote in '%s'",
                         a->key, start);
    return 0;
}

static void axis_free(axis_t *a)
{
    lb_free(a->key);
    for (size_t i = 0; i < a->values.n; i++) lb_free(a->values.v[i]);
    lb_vec_free(&a->values);
    lb_vec_free(&a->cols);
}

/* The value index of axis a at point p (the last axis changes fastest). */
static size_t value_at(const sweep_t *sw, size_t p, size_t a)
{
    for (size_t k = sw->axes.n; k-- > a + 1;) p /= sw->axes.v[k].values.n;
    return p % sw->axes.v[a].values.n;
}

static int cmp_ovr(const void *a, const void *b)
{
    return strcmp(((const ovr_t *)a)->key, ((const ovr_t *)b)->key);
}

/* The overrides of point p (the --set ones and the point's values), in key order. Caller
 * frees the array (not the strings, which belong to sw, except the axis texts: freed). */
static ovr_t *point_ovr(const sweep_t *sw, size_t p, size_t *n)
{
    *n = sw->sets.n + sw->axes.n;
    ovr_t *o = lb_calloc(*n ? *n : 1, sizeof *o);
    if (sw->sets.n) memcpy(o, sw->sets.v, sw->sets.n * sizeof *o);
    for (size_t a = 0; a < sw->axes.n; a++) {
        const axis_t *ax = &sw->axes.v[a];
        size_t k = value_at(sw, p, a);
        o[sw->sets.n + a] = (ovr_t){ ax->key, lb_sprintf("%s=%s", ax->key, ax->values.v[k]),
                                      (int)a, ax->cols.v[k] };
    }
    if (*n > 1) qsort(o, *n, sizeof *o, cmp_ovr);
    return o;
}

static void point_ovr_free(ovr_t *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (o[i].axis >= 0) lb_free(o[i].text);
    lb_free(o);
}

/* Loads point p's scenario with its overrides. An error in a --sweep value points into
 * the --sweep argument. */
static int load_point(sweep_t *sw, size_t p, FILE *warn, scn_diag_t *d)
{
    int rc = scn_load(sw->file, &sw->scns[p], d, p == 0 ? warn : NULL);
    if (rc) return rc;
    size_t n;
    ovr_t *o = point_ovr(sw, p, &n);
    LB_VEC(char) lines = {0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = scn_override(sw->scns[p], o[i].text, d);
        if (rc && o[i].axis >= 0 && !strcmp(d->file, CLI)) {
            /* scn_override counts columns in "KEY=VALUE": move them into the argument */
            int vstart = (int)strlen(o[i].key) + 2;
            if (d->col >= vstart) d->col += o[i].col - vstart;
            char *msg = lb_sprintf("--sweep %s, value %d: %s", o[i].key,
                                   (int)value_at(sw, p, (size_t)o[i].axis) + 1, d->msg);
            snprintf(d->msg, sizeof d->msg, "%.*s", (int)sizeof d->msg - 1, msg);
            lb_free(msg);
        }
        size_t l = strlen(o[i].text);
        lb_vec_reserve(&lines, lines.n + l + 2);
        memcpy(lines.v + lines.n, o[i].text, l);
        lines.n += l;
        lines.v[lines.n++] = '\n';
    }
    lb_vec_reserve(&lines, lines.n + 1);
    if (lines.n) lines.n--;                 /* no newline after the last */
    lines.v[lines.n] = '\0';
    sw->ovr[p] = lines.v;
    LB_VEC(char) label = {0};
    for (size_t a = 0; a < sw->axes.n; a++) {
        char *kv = lb_sprintf("%s%s=%s", a ? " " : "", sw->axes.v[a].key,
                              sw->axes.v[a].values.v[value_at(sw, p, a)]);
        size_t l = strlen(kv);
        lb_vec_reserve(&label, label.n + l + 1);
        memcpy(label.v + label.n, kv, l + 1);
        label.n += l;
        lb_free(kv);
    }
    sw->labels[p] = label.v ? label.v : lb_strdup("");
    point_ovr_free(o, n);
    return rc;
}

/* Whether scenario b was read from exactly the files a was. */
static bool same_sources(const scn_t *a, const scn_t *b)
{
    if (scn_source_count(a) != scn_source_count(b) || scn_sources_changed(b)) return false;
    for (size_t i = 0; i < scn_source_count(a); i++) {
        size_t la, lb;
        const char *ta = scn_source_text(a, i, &la), *tb = scn_source_text(b, i, &lb);
        if (strcmp(scn_source_path(a, i), scn_source_path(b, i)) || la != lb ||
            memcmp(ta, tb, la))
            return false;
    }
    return true;
}

/* The canonical definition (sweeps.spec). */
static char *spec_json(const sweep_t *sw)
{
    const scn_t *s = sw->scns[0];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "format", SPEC_FORMAT);
    cJSON_AddStringToObject(o, "main", sw->srcs.v[0].path);
    cJSON *vs = cJSON_AddArrayToObject(o, "variants");
    for (size_t i = 0; i < sw->variants.n; i++)
        cJSON_AddItemToArray(vs, cJSON_CreateString(scn_variant_name(s, sw->variants.v[i])));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)sw->seed);
    cJSON_AddStringToObject(o, "first_seed", seed);        /* 64-bit: not a JSON number */
    cJSON_AddNumberToObject(o, "seeds", (double)sw->seeds);
    cJSON *sets = cJSON_AddArrayToObject(o, "set");
    for (size_t i = 0; i < sw->sets.n; i++)
        cJSON_AddItemToArray(sets, cJSON_CreateString(sw->sets.v[i].text));
    cJSON *grid = cJSON_AddArrayToObject(o, "sweep");
    for (size_t a = 0; a < sw->axes.n; a++) {
        cJSON *ax = cJSON_CreateObject();
        cJSON_AddStringToObject(ax, "key", sw->axes.v[a].key);
        cJSON *vals = cJSON_AddArrayToObject(ax, "values");
        for (size_t k = 0; k < sw->axes.v[a].values.n; k++)
            cJSON_AddItemToArray(vals, cJSON_CreateString(sw->axes.v[a].values.v[k]));
        cJSON_AddItemToArray(grid, ax);
    }
    cJSON_AddBoolToObject(o, "no_expect", sw->no_expect);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = lb_strdup(t);
    cJSON_free(t);
    return out;
}

/* An id's slot: its 64 bits are a SHA-256 prefix, as good a hash as any. */
static size_t id_slot(const char *id, size_t cap)
{
    return (size_t)strtoull(id, NULL, 16) & (cap - 1);
}

/* The table sweep_run_find looks ids up in (a sweep has up to millions of runs). */
static void index_ids(sweep_t *sw)
{
    sw->id_cap = 16;
    while (sw->id_cap < 2 * sw->runs.n) sw->id_cap *= 2;
    sw->by_id = lb_calloc(sw->id_cap, sizeof *sw->by_id);
    for (size_t i = 0; i < sw->runs.n; i++) {
        size_t k = id_slot(sw->runs.v[i].id, sw->id_cap);
        while (sw->by_id[k]) k = (k + 1) & (sw->id_cap - 1);
        sw->by_id[k] = i + 1;
    }
}

int sweep_new(const char *file, const sweep_opts_t *o, sweep_t **out, scn_diag_t *d)
{
    *out = NULL;
    memset(d, 0, sizeof *d);
    sweep_t *sw = lb_calloc(1, sizeof *sw);
    sw->file = lb_strdup(file);
    sw->no_expect = o->no_expect;
    sw->seeds = o->seeds > 1 ? o->seeds : 1;
    scn_ignore_expectations(o->no_expect);
    int rc = 0;
    /* --set: the last of each key, sorted by key */
    for (size_t i = 0; i < o->n_sets && rc == 0; i++) {
        const char *eq = strchr(o->sets[i], '=');
        if (!eq || eq == o->sets[i]) {
            rc = cli_error(d, 1, "bad override '%s'; expected KEY=VALUE like "
                           "traffic.browse.rate=100/s", o->sets[i]);
            break;
        }
        char *key = lb_strndup(o->sets[i], (size_t)(eq - o->sets[i]));
        bool later = false;
        for (size_t k = i + 1; k < o->n_sets && !later; k++)
            later = !strncmp(o->sets[k], key, strlen(key)) && o->sets[k][strlen(key)] == '=';
        if (later) {
            lb_free(key);
            continue;
        }
        lb_vec_push(&sw->set_keys, key);
        ovr_t ov = { key, lb_strdup(o->sets[i]), -1, 0 };
        lb_vec_push(&sw->sets, ov);
    }
    if (rc == 0 && sw->sets.n > 1) qsort(sw->sets.v, sw->sets.n, sizeof *sw->sets.v, cmp_ovr);
    sw->npoints = 1;
    for (size_t i = 0; i < o->n_axes && rc == 0; i++) {
        axis_t a;
        rc = axis_parse(o->axes[i], &a, d);
        for (size_t k = 0; rc == 0 && k < sw->axes.n; k++)
            if (!strcmp(sw->axes.v[k].key, a.key))
                rc = cli_error(d, 1, "--sweep %s is given twice; give every value of a key in "
                               "one --sweep", a.key);
        for (size_t k = 0; rc == 0 && k < sw->sets.n; k++)
            if (!strcmp(sw->sets.v[k].key, a.key))
                rc = cli_error(d, 1, "--sweep %s: the key is also fixed with --set; a key is "
                               "either set or swept", a.key);
        if (rc == 0 && sw->npoints * a.values.n > 1000000)
            rc = cli_error(d, 1, "--sweep: more than a million grid points");
        if (rc) {
            axis_free(&a);
            break;
        }
        sw->npoints *= a.values.n;
        lb_vec_push(&sw->axes, a);
    }
    if (rc) {
        sweep_free(sw);
        return rc;
    }
    sw->scns = lb_calloc(sw->npoints, sizeof *sw->scns);
    sw->labels = lb_calloc(sw->npoints, sizeof *sw->labels);
    sw->ovr = lb_calloc(sw->npoints, sizeof *sw->ovr);
    for (size_t p = 0; p < sw->npoints && rc == 0; p++) {
        rc = load_point(sw, p, o->warn, d);
        if (rc == 0 && (p ? !same_sources(sw->scns[0], sw->scns[p])
                          : scn_sources_changed(sw->scns[0])))
            rc = scn_diag_set(d, (elem_pos_t){ file, 0, 0 }, LB_EIO, "the scenario's files "
                              "changed while it was being loaded; run again once they are "
                              "written");
    }
    if (rc) {
        sweep_free(sw);
        return rc;
    }
    scn_t *s = sw->scns[0];
    if (o->n_variants) {
        for (size_t i = 0; i < o->n_variants; i++) {
            int v = scn_variant_find(s, o->variants[i]);
            if (v < 0) {
                char list[400] = "";
                for (size_t k = 0; k < scn_variant_count(s); k++) {
                    size_t l = strlen(list);
                    snprintf(list + l, sizeof list - l, " %s", scn_variant_name(s, k));
                }
                rc = scn_diag_set(d, (elem_pos_t){ file, 0, 0 }, LB_EINVAL,
                                  "no variant '%s'; variants are:%s", o->variants[i], list);
                sweep_free(sw);
                return rc;
            }
            lb_vec_push(&sw->variants, (size_t)v);
        }
    } else {
        for (size_t i = 0; i < scn_variant_count(s); i++) lb_vec_push(&sw->variants, i);
    }
    sw->seed = o->has_seed ? o->seed : scn_seed(s);
    if (sw->seeds > 1 && sw->seed > UINT64_MAX - (uint64_t)(sw->seeds - 1)) {
        rc = scn_diag_set(d, (elem_pos_t){ file, 0, 0 }, LB_EINVAL, "--seeds %zu from seed %"
                          PRIu64 " would go past %" PRIu64 "; expected a smaller seed or fewer "
                          "seeds", sw->seeds, sw->seed, UINT64_MAX);
        sweep_free(sw);
        return rc;
    }
    layout(sw, s);
    content_hash(sw);
    sw->spec = spec_json(sw);
    sha_t h;
    sha_begin(&h);
    sha_adds(&h, "lbchain-sweep");
    sha_adds(&h, LB_VERSION);
    sha_adds(&h, sw->hash);
    sha_adds(&h, sw->spec);
    sha_end(&h, sw->key, SWEEP_ID_HEX);
    for (size_t v = 0; v < sw->variants.n; v++)
        for (size_t p = 0; p < sw->npoints; p++)
            for (size_t k = 0; k < sw->seeds; k++) {
                sweep_run_t r = { sw->runs.n, sw->variants.v[v], p, sw->seed + k, "" };
                sweep_run_id(LB_VERSION, sw->hash, scn_variant_name(s, r.variant), r.seed,
                             sw->ovr[p], r.id);
                lb_vec_push(&sw->runs, r);
            }
    index_ids(sw);
    *out = sw;
    return 0;
}

void sweep_free(sweep_t *sw)
{
    if (!sw) return;
    for (size_t p = 0; sw->scns && p < sw->npoints; p++) {
        scn_free(sw->scns[p]);
        lb_free(sw->labels[p]);
        lb_free(sw->ovr[p]);
    }
    lb_free(sw->scns);
    lb_free(sw->labels);
    lb_free(sw->ovr);
    for (size_t a = 0; a < sw->axes.n; a++) axis_free(&sw->axes.v[a]);
    lb_vec_free(&sw->axes);
    for (size_t i = 0; i < sw->set_keys.n; i++) lb_free(sw->set_keys.v[i]);
    lb_vec_free(&sw->set_keys);
    for (size_t i = 0; i < sw->sets.n; i++) lb_free(sw->sets.v[i].text);
    lb_vec_free(&sw->sets);
    lb_vec_free(&sw->variants);
    lb_vec_free(&sw->runs);
    lb_free(sw->by_id);
    for (size_t i = 0; i < sw->srcs.n; i++) {
        lb_free(sw->srcs.v[i].path);
        lb_free(sw->srcs.v[i].text);
    }
    lb_vec_free(&sw->srcs);
    lb_free(sw->src_paths);
    lb_free(sw->src_texts);
    lb_free(sw->src_lens);
    lb_free(sw->spec);
    lb_free(sw->file);
    lb_free(sw);
}

scn_t *sweep_scn(const sweep_t *sw, size_t p) { return p < sw->npoints ? sw->scns[p] : NULL; }
size_t sweep_point_count(const sweep_t *sw) { return sw->npoints; }
size_t sweep_axis_count(const sweep_t *sw) { return sw->axes.n; }
const char *sweep_axis_key(const sweep_t *sw, size_t a) { return sw->axes.v[a].key; }
const char *sweep_point_value(const sweep_t *sw, size_t p, size_t a)
{
    return sw->axes.v[a].values.v[value_at(sw, p, a)];
}
const char *sweep_point_label(const sweep_t *sw, size_t p) { return sw->labels[p]; }
const char *sweep_overrides(const sweep_t *sw, size_t p) { return sw->ovr[p]; }
size_t sweep_run_count(const sweep_t *sw) { return sw->runs.n; }
const sweep_run_t *sweep_run_at(const sweep_t *sw, size_t i)
{
    return i < sw->runs.n ? &sw->runs.v[i] : NULL;
}
long sweep_run_find(const sweep_t *sw, const char *id)
{
    if (!id || strlen(id) != SWEEP_ID_HEX || strspn(id, "0123456789abcdef") != SWEEP_ID_HEX)
        return -1;
    for (size_t k = id_slot(id, sw->id_cap); sw->by_id[k]; k = (k + 1) & (sw->id_cap - 1))
        if (!strcmp(sw->runs.v[sw->by_id[k] - 1].id, id)) return (long)(sw->by_id[k] - 1);
    return -1;
}
const char *sweep_file(const sweep_t *sw) { return sw->file; }
size_t sweep_seeds(const sweep_t *sw) { return sw->seeds; }
const char *sweep_hash(const sweep_t *sw) { return sw->hash; }
const char *sweep_spec(const sweep_t *sw) { return sw->spec; }
const char *sweep_key(const sweep_t *sw) { return sw->key; }
size_t sweep_source_count(const sweep_t *sw) { return sw->srcs.n; }
size_t sweep_sources(const sweep_t *sw, const char *const **paths, const char *const **texts,
                     const size_t **lens)
{
    *paths = sw->src_paths;
    *texts = sw->src_texts;
    *lens = sw->src_lens;
    return sw->srcs.n;
}
const char *sweep_source_path(const sweep_t *sw, size_t i) { return sw->srcs.v[i].path; }
const char *sweep_source_text(const sweep_t *sw, size_t i, size_t *len)
{
    if (len) *len = sw->srcs.v[i].len;
    return sw->srcs.v[i].text;
}

/* ---- a sweep from a results.db ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(path);
}

/* A relative path without "..", "." or empty components (what layout() writes). */
static bool safe_rel(const char *p)
{
    if (!*p || p[0] == '/') return false;
    for (const char *c = p; *c;) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (!l || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.')) return false;
        c += l + (e ? 1 : 0);
    }
    return true;
}

/* Writes len bytes to dir/rel, making its directories. 0 or LB_EIO. */
static int put_file(const char *dir, const char *rel, const char *text, size_t len)
{
    char *path = lb_sprintf("%s/%s", dir, rel);
    char *sl = strrchr(path, '/');
    *sl = '\0';
    int rc = rep_mkdirs(path) ? LB_EIO : 0;
    *sl = '/';
    FILE *f = rc ? NULL : fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len) rc = LB_EIO;
    if (f && fclose(f)) rc = LB_EIO;
    lb_free(path);
    return rc;
}

int sweep_from_stored(const char *spec, const char *label, const char *const *paths,
                      const char *const *texts, const size_t *lens, size_t nfiles,
                      FILE *warn, sweep_t **out, scn_diag_t *d)
{
    *out = NULL;
    memset(d, 0, sizeof *d);
    elem_pos_t here = { "results.db", 0, 0 };
    cJSON *o = cJSON_Parse(spec);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    const cJSON *main = cJSON_GetObjectItemCaseSensitive(o, "main");
    if (!o || !cJSON_IsNumber(fmt) || fmt->valueint != SPEC_FORMAT || !cJSON_IsString(main) ||
        !safe_rel(main->valuestring)) {
        cJSON_Delete(o);
        return scn_diag_set(d, here, LB_EPARSE, "the sweep's definition is not one this "
                            "version of lbchain reads");
    }
    for (size_t i = 0; i < nfiles; i++)
        if (!safe_rel(paths[i])) {
            cJSON_Delete(o);
            return scn_diag_set(d, here, LB_EPARSE, "scenario file '%s': not a path inside "
                                "the scenario's directory", paths[i]);
        }
    /* where the files go: under the directory the label names, so that the scenario loads
     * under the name it was run with (scenarios/x.yaml), when the label allows it */
    const char *mrel = main->valuestring;
    size_t ll = label ? strlen(label) : 0, ml = strlen(mrel);
    char *prefix = lb_strdup("");
    if (label && label[0] != '/' && !strstr(label, "..") && ll >= ml &&
        !strcmp(label + ll - ml, mrel) && (ll == ml || label[ll - ml - 1] == '/')) {
        lb_free(prefix);
        prefix = lb_strndup(label, ll - ml);        /* "" or "dir/" */
    }
    const char *tmpdir = getenv("TMPDIR");
    char *tmp = lb_sprintf("%s/lbchain-sweep-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int rc = mkdtemp(tmp) ? 0 : LB_EIO;
    if (rc) scn_diag_set(d, here, LB_EIO, "cannot make a temporary directory %s: %s", tmp,
                         strerror(errno));
    for (size_t i = 0; i < nfiles && rc == 0; i++) {
        char *rel = lb_sprintf("%s%s", prefix, paths[i]);
        rc = put_file(tmp, rel, texts[i], lens[i]);
        if (rc) scn_diag_set(d, here, LB_EIO, "cannot write %s/%s: %s", tmp, rel,
                             strerror(errno));
        lb_free(rel);
    }
    /* the options the definition holds */
    LB_VEC(const char *) variants = {0}, sets = {0};
    LB_VEC(char *) axes = {0};
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "variants"))
        if (cJSON_IsString(x)) lb_vec_push(&variants, x->valuestring);
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "set"))
        if (cJSON_IsString(x)) lb_vec_push(&sets, x->valuestring);
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "sweep")) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(x, "key"), *v;
        LB_VEC(char) arg = {0};
        char *head = lb_sprintf("%s=", cJSON_IsString(k) ? k->valuestring : "");
        size_t hl = strlen(head);
        lb_vec_reserve(&arg, hl + 1);
        memcpy(arg.v, head, hl + 1);
        arg.n = hl;
        lb_free(head);
        bool first = true;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(x, "values")) {
            size_t l = cJSON_IsString(v) ? strlen(v->valuestring) : 0;
            lb_vec_reserve(&arg, arg.n + l + 2);
            if (!first) arg.v[arg.n++] = ',';
            if (l) memcpy(arg.v + arg.n, v->valuestring, l);
            arg.n += l;
            arg.v[arg.n] = '\0';
            first = false;
        }
        lb_vec_push(&axes, arg.v);
    }
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "first_seed");
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(o, "seeds");
    sweep_opts_t so = {
        .variants = variants.v, .n_variants = variants.n, .has_seed = true,
        .seed = cJSON_IsString(seed) ? strtoull(seed->valuestring, NULL, 10) : 0,
        .seeds = cJSON_IsNumber(seeds) ? (size_t)seeds->valuedouble : 1,
        .sets = sets.v, .n_sets = sets.n, .axes = (const char *const *)axes.v,
        .n_axes = axes.n,
        .no_expect = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "no_expect")),
        .warn = warn,
    };
    if (rc == 0) {
        int here_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (here_fd < 0 || chdir(tmp)) {
            rc = scn_diag_set(d, here, LB_EIO, "cannot enter %s: %s", tmp, strerror(errno));
        } else {
            char *file = lb_sprintf("%s%s", prefix, mrel);
            rc = sweep_new(file, &so, out, d);
            lb_free(file);
            if (fchdir(here_fd)) {
                rc = scn_diag_set(d, here, LB_EIO, "cannot return to the working directory: "
                                  "%s", strerror(errno));
                sweep_free(*out);
                *out = NULL;
            }
        }
        if (here_fd >= 0) close(here_fd);
    }
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    lb_free(tmp);
    lb_free(prefix);
    lb_vec_free(&variants);
    lb_vec_free(&sets);
    for (size_t i = 0; i < axes.n; i++) lb_free(axes.v[i]);
    lb_vec_free(&axes);
    cJSON_Delete(o);
    return rc;
}

/* ---- shards ----------------------------------------------------------------------------------- */

/* A decimal integer from 0 to 10^9 (all of s). */
static bool parse_index(const char *s, long *out)
{
    if (!s || !*s || strlen(s) > 10) return false;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c)) return false;
    long v = strtol(s, NULL, 10);
    if (v > 1000000000L) return false;
    *out = v;
    return true;
}

int sweep_shard_resolve(const char *arg, long shards, long *i, long *n, char *err,
                        size_t errlen)
{
    *i = *n = 0;
    if (arg) {
        const char *sl = strchr(arg, '/');
        char *ip = sl ? lb_strndup(arg, (size_t)(sl - arg)) : lb_strdup(arg);
        bool ok = parse_index(ip, i) && (!sl || parse_index(sl + 1, n));
        lb_free(ip);
        if (!ok) {
            lb_errf(err, errlen, "--shard expects I/N (shard I of N, counted from 0), got '%s'",
                    arg);
            return LB_EINVAL;
        }
        if (!sl) {
            if (!shards) {
                lb_errf(err, errlen, "--shard %s: how many shards? give --shard %s/N or "
                        "--shards N", arg, arg);
                return LB_EINVAL;
            }
            *n = shards;
        } else if (shards && shards != *n) {
            lb_errf(err, errlen, "--shard %s and --shards %ld disagree", arg, shards);
            return LB_EINVAL;
        }
    } else if (getenv("JOB_COMPLETION_INDEX")) {
        const char *e = getenv("JOB_COMPLETION_INDEX");
        if (!parse_index(e, i)) {
            lb_errf(err, errlen, "JOB_COMPLETION_INDEX is '%s', not an index", e);
            return LB_EINVAL;
        }
        if (!shards) {
            lb_errf(err, errlen, "--shard in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX=%s) "
                    "needs --shards N: the pod is not told the Job's completions", e);
            return LB_EINVAL;
        }
        *n = shards;
    } else if (getenv("SLURM_ARRAY_TASK_ID")) {
        const char *e = getenv("SLURM_ARRAY_TASK_ID");
        if (!parse_index(e, i)) {
            lb_errf(err, errlen, "SLURM_ARRAY_TASK_ID is '%s', not an index", e);
            return LB_EINVAL;
        }
        if (shards) {
            *n = shards;            /* the task id is the shard: a resubmitted subset works */
        } else {
            long cnt, lo, hi;
            const char *ce = getenv("SLURM_ARRAY_TASK_COUNT"), *le = getenv("SLURM_ARRAY_TASK_MIN"),
                       *he = getenv("SLURM_ARRAY_TASK_MAX");
            if (!parse_index(ce, &cnt) || !parse_index(le, &lo) || !parse_index(he, &hi) ||
                cnt < 1 || hi - lo + 1 != cnt) {
                lb_errf(err, errlen, "--shard in a Slurm job array: SLURM_ARRAY_TASK_COUNT, "
                        "_MIN and _MAX (%s, %s, %s) do not describe consecutive indices; give "
                        "--shards N (the task id is then the shard)", ce ? ce : "unset",
                        le ? le : "unset", he ? he : "unset");
                return LB_EINVAL;
            }
            *i -= lo;
            *n = cnt;
        }
    } else {
        lb_errf(err, errlen, "--shard without I/N takes the shard from JOB_COMPLETION_INDEX (a "
                "Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (a Slurm job array); neither "
                "is set");
        return LB_EINVAL;
    }
    if (*n < 1 || *i < 0 || *i >= *n) {
        lb_errf(err, errlen, "shard %ld of %ld: expected 0 <= I < N", *i, *n);
        return LB_EINVAL;
    }
    return 0;
}

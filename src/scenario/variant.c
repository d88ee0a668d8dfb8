/* variant.c -- the scn_t: loading a scenario file, its variants and command-line
 * overrides. Each variant is the base tree (shared, copied on write along the paths that
 * change), its `set:` paths applied, then every KEY=VALUE override applied, then
 * validated into its own model -- so an error in an override points at the override's own
 * line (or "<command line>:1:COL"). */
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "scenario_int.h"

#define CLI_FILE "<command line>"
#define DEFAULT_VARIANT "default"

typedef struct scn_variant {
    char *name, *description;
    elem_pos_t pos;
    const scn_node_t *set;      /* points into s->base (a mapping) or NULL */
    scn_model_t *model;
} scn_variant_t;

typedef struct scn_ovr {
    char *path;
    elem_pos_t kpos;
    scn_node_t *value;
} scn_ovr_t;

/* A file the scenario was read from: the scenario file itself (first), then every
 * manifest file it includes, each once, with the text as read. */
typedef struct scn_src {
    char *path;                 /* as opened (relative to the working directory or absolute) */
    char *text;
    size_t len;
} scn_src_t;

struct scn {
    char *file;
    scn_node_t *base;
    scn_files_t *files;             /* included files, read once */
    LB_VEC(scn_variant_t) variants;
    LB_VEC(scn_ovr_t) ovr;
    scn_model_t *base_model;
    FILE *warn;
    LB_VEC(scn_src_t) srcs;
    bool srcs_changed;          /* a file read twice gave two different texts */
    bool warned;                    /* scn_warnings_flush has seen the current models */
};

/* The scenario whose files are being read (set around its loading and re-resolving, so
 * that scn_docs_load can record what it reads; one thread loads scenarios). */
static scn_t *g_reading;

void scn_src_note(const char *path, const char *text, size_t len)
{
    scn_t *s = g_reading;
    if (!s) return;
    for (size_t i = 0; i < s->srcs.n; i++)
        if (!strcmp(s->srcs.v[i].path, path)) {
            if (s->srcs.v[i].len != len || memcmp(s->srcs.v[i].text, text, len))
                s->srcs_changed = true;
            return;
        }
    scn_src_t src = { lb_strdup(path), lb_malloc(len + 1), len };
    memcpy(src.text, text, len);
    src.text[len] = '\0';
    lb_vec_push(&s->srcs, src);
}

/* ---- dotted paths -------------------------------------------------------------------------------- */

static int path_error_missing(scn_diag_t *d, elem_pos_t kpos, const char *path,
                              const scn_node_t *in, const char *inname, const char *comp)
{
    char list[400] = "";
    names_join(list, sizeof list, (const char *const *)in->keys, in->n, 30);
    const char *close = closest_name(comp, (const char *const *)in->keys, in->n);
    char hint[160] = "";
    if (close) snprintf(hint, sizeof hint, "did you mean '%s'? ", close);
    return diag_set(d, kpos, LB_EINVAL, "cannot set '%s': %s has no '%s'; %s%s has: %s", path,
                    inname, comp, hint, inname, in->n ? list : "(nothing)");
}

/* Where component i of a dotted path starts: kpos moved along the path's text when the text
 * stands there as written (`literal`), else the path's own position. */
static elem_pos_t comp_pos(elem_pos_t kpos, bool literal, size_t off)
{
    if (literal && off < (size_t)(1 << 20)) kpos.col += (int)off;
    return kpos;
}

int variant_set(scn_node_t **root, const char *path, elem_pos_t kpos, bool literal,
                const scn_node_t *value, scn_diag_t *d)
{
    /* "kubernetes.KIND/NS/NAME.field.path": a field of a manifest (manifests.c) */
    if (strncmp(path, "kubernetes.", 11) == 0 && !isdigit((unsigned char)path[11]) &&
        (*root)->kind == SCN_MAP)
        return kube_path_set(yt_own(root), path + 11, kpos, value);
    /* split into components */
    LB_VEC(char *) comps = { 0 };
    LB_VEC(elem_pos_t) cpos = { 0 };    /* where each component starts, for its errors */
    int rc = 0;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char *c = lb_strndup(p, n);
        lb_vec_push(&comps, c);
        lb_vec_push(&cpos, comp_pos(kpos, literal, (size_t)(p - path)));
        if (n == 0) {
            rc = diag_set(d, cpos.v[cpos.n - 1], LB_EINVAL, "bad key path '%s'; expected dotted "
                          "names like traffic.browse.rate or links.0.loss", path);
            break;
        }
        if (!dot) break;
        p = dot + 1;
    }
    if (rc == 0 && (strcmp(comps.v[0], "variants") == 0 || strcmp(comps.v[0], "expect") == 0))
        rc = diag_set(d, cpos.v[0], LB_EINVAL, "cannot set '%s': variants and overrides cannot change "
                      "'%s'; expected a path into name, seed, duration, nodes, links, apps, "
                      "traffic or cloud", path, comps.v[0]);
    if (rc == 0 && (*root)->kind != SCN_MAP)
        rc = diag_set(d, kpos, LB_EINVAL, "cannot set '%s': the scenario is not a mapping", path);
    /* copy on write: each node on the path becomes this tree's own before it changes */
    scn_node_t **slot = root;
    char curname[300] = "the scenario";
    for (size_t i = 0; rc == 0 && i < comps.n; i++) {
        const char *comp = comps.v[i];
        elem_pos_t at = cpos.v[i];
        bool last = i + 1 == comps.n;
        scn_node_t *cur = *slot;
        if (cur->kind == SCN_SEQ) {
            char *end;
            long idx = strtol(comp, &end, 10);
            if (!isdigit((unsigned char)*comp) || *end || idx < 0 || (size_t)idx >= cur->n) {
                rc = diag_set(d, at, LB_EINVAL, "cannot set '%s': %s is a list of %zu; expected "
                              "an index from 0 to %zu, got '%s'", path, curname, cur->n,
                              cur->n ? cur->n - 1 : 0, comp);
                break;
            }
            cur = yt_own(slot);
            if (last) {
                yt_free(cur->v[idx]);
                cur->v[idx] = yt_ref(value);
                break;
            }
            slot = &cur->v[idx];
        } else if (cur->kind == SCN_MAP) {
            size_t ci;
            scn_node_t *child = yt_get(cur, comp, &ci);
            /* sections and element names must exist; all-links is a plain mapping */
            if (!last && !child && i < 2 && !(i == 0 && strcmp(comp, "all-links") == 0)) {
                rc = path_error_missing(d, at, path, cur, curname, comp);
                break;
            }
            cur = yt_own(slot);
            if (last) {
                yt_map_set(cur, comp, at, yt_ref(value));
                break;
            }
            if (!child || child->kind == SCN_NULL) {
                /* inside an element: create the intermediate object */
                yt_map_set(cur, comp, at, yt_new(SCN_MAP, at, NULL));
                yt_get(cur, comp, &ci);
            }
            slot = &cur->v[ci];
        } else {
            rc = diag_set(d, at, LB_EINVAL, "cannot set '%s': %s is %s, not a mapping or a list",
                          path, curname, yt_kind_desc(cur));
            break;
        }
        size_t l = strlen(curname);
        if (i == 0) snprintf(curname, sizeof curname, "%s", comp);
        else snprintf(curname + l, sizeof curname - l, ".%s", comp);
    }
    for (size_t i = 0; i < comps.n; i++) lb_free(comps.v[i]);
    lb_vec_free(&comps);
    lb_vec_free(&cpos);
    return rc;
}

/* ---- resolution ------------------------------------------------------------------------------------ */

/* Does `key` stand as written at kpos in the text the scenario was read from (a plain key;
 * not a quoted one, whose position is its quote and whose text may hold escapes)? */
static bool key_literal(const scn_t *s, elem_pos_t kpos, const char *key)
{
    for (size_t i = 0; i < s->srcs.n; i++) {
        const scn_src_t *src = &s->srcs.v[i];
        if (!kpos.file || strcmp(src->path, kpos.file)) continue;
        const char *t = src->text, *end = t + src->len;
        for (int l = 1; l < kpos.line && t < end; l++) {
            const char *nl = memchr(t, '\n', (size_t)(end - t));
            t = nl ? nl + 1 : end;
        }
        size_t kl = strlen(key);
        if (kpos.col < 1 || (size_t)(end - t) < (size_t)kpos.col - 1) return false;
        t += kpos.col - 1;
        return (size_t)(end - t) >= kl && memcmp(t, key, kl) == 0;
    }
    return false;
}

static int apply_overrides(const scn_t *s, scn_node_t **tree, scn_diag_t *d)
{
    for (size_t i = 0; i < s->ovr.n; i++) {
        int rc = variant_set(tree, s->ovr.v[i].path, s->ovr.v[i].kpos, true, s->ovr.v[i].value, d);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Rebuilds the base model and every variant's model; all or nothing. */
static int resolve(scn_t *s, scn_diag_t *d)
{
    size_t nv = s->variants.n;
    const char **names = lb_calloc(nv, sizeof *names);
    for (size_t i = 0; i < nv; i++) names[i] = s->variants.v[i].name;
    scn_model_t *base = NULL;
    scn_model_t **models = lb_calloc(nv, sizeof *models);
    /* every tree shares the base's nodes; only what a variant sets is copied */
    scn_node_t *tree = yt_ref(s->base);
    int rc = apply_overrides(s, &tree, d);
    if (rc == 0) rc = model_new(tree, NULL, names, nv, s->files, &base, d);
    else yt_free(tree);
    for (size_t v = 0; v < nv && rc == 0; v++) {
        const scn_variant_t *var = &s->variants.v[v];
        if (scn_stop_requested()) {
            rc = diag_set(d, var->pos, LB_EINTR, "interrupted while validating variant '%s'",
                          var->name);
            break;
        }
        tree = yt_ref(s->base);
        for (size_t k = 0; var->set && k < var->set->n && rc == 0; k++)
            rc = variant_set(&tree, var->set->keys[k], var->set->kpos[k],
                             key_literal(s, var->set->kpos[k], var->set->keys[k]), var->set->v[k], d);
        if (rc == 0) rc = apply_overrides(s, &tree, d);
        if (rc == 0) rc = model_new(tree, var->name, names, nv, s->files, &models[v], d);
        else yt_free(tree);
    }
    if (rc == 0) {
        s->warned = false;
        model_unref(s->base_model);
        s->base_model = base;
        for (size_t v = 0; v < nv; v++) {
            model_unref(s->variants.v[v].model);
            s->variants.v[v].model = models[v];
        }
    } else {
        model_unref(base);
        for (size_t v = 0; v < nv; v++) model_unref(models[v]);
    }
    lb_free(models);
    lb_free(names);
    return rc;
}

static const elem_param_t variant_params[] = {
    { "description", P_STR, "", "free text shown in reports", NULL, NULL },
    { "set", P_ANY, "", "a mapping of dotted keys (traffic.browse.rate) to values", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

static bool name_ok(const char *s)
{
    if (!isalpha((unsigned char)*s)) return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_')) return false;
    return true;
}

static int load_variants(scn_t *s, scn_diag_t *d)
{
    const scn_node_t *vs = yt_get(s->base, "variants", NULL);
    if (vs && vs->kind != SCN_NULL && vs->kind != SCN_MAP)
        return diag_set(d, vs->pos, LB_EINVAL, "variants: expected a mapping of variant names to "
                        "{ description, set }; got %s", yt_kind_desc(vs));
    if (!vs || vs->kind == SCN_NULL || vs->n == 0) {
        scn_variant_t v = { lb_strdup(DEFAULT_VARIANT), lb_strdup(""), s->base->pos, NULL, NULL };
        lb_vec_push(&s->variants, v);
        return 0;
    }
    for (size_t i = 0; i < vs->n; i++) {
        const char *name = vs->keys[i];
        if (!name_ok(name))
            return diag_set(d, vs->kpos[i], LB_EINVAL, "bad variant name '%s'; expected letters, "
                            "digits, '-' and '_', starting with a letter", name);
        const scn_node_t *body = vs->v[i];
        const scn_node_t *set = NULL;
        char *desc = NULL;
        if (body->kind != SCN_NULL) {
            char what[200];
            snprintf(what, sizeof what, "variant '%s'", name);
            elem_cfg_t *cfg = NULL;
            int rc = elem_cfg_from_node(variant_params, body, what, NULL, &cfg, d);
            if (rc < 0) return rc;
            desc = lb_strdup(elem_str(cfg, "description"));
            set = elem_get(cfg, "set")->u.any;
            elem_cfg_free(cfg);
            if (set && set->kind == SCN_NULL) set = NULL;
            if (set && set->kind != SCN_MAP) {
                lb_free(desc);
                return diag_set(d, set->pos, LB_EINVAL, "set: expected a mapping of dotted keys "
                                "to values, like { traffic.browse.rate: 100/s }; got %s",
                                yt_kind_desc(set));
            }
        }
        scn_variant_t v = { lb_strdup(name), desc ? desc : lb_strdup(""), vs->kpos[i], set, NULL };
        lb_vec_push(&s->variants, v);
    }
    return 0;
}

/* ---- public ------------------------------------------------------------------------------------------ */

void scn_free(scn_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->variants.n; i++) {
        lb_free(s->variants.v[i].name);
        lb_free(s->variants.v[i].description);
        model_unref(s->variants.v[i].model);
    }
    lb_vec_free(&s->variants);
    for (size_t i = 0; i < s->ovr.n; i++) {
        lb_free(s->ovr.v[i].path);
        yt_free(s->ovr.v[i].value);
    }
    lb_vec_free(&s->ovr);
    model_unref(s->base_model);
    yt_free(s->base);
    scn_files_free(s->files);
    lb_free(s->file);
    for (size_t i = 0; i < s->srcs.n; i++) {
        lb_free(s->srcs.v[i].path);
        lb_free(s->srcs.v[i].text);
    }
    lb_vec_free(&s->srcs);
    lb_free(s);
}

int scn_load_string(const char *text, const char *fname, scn_t **out, scn_diag_t *diag,
                    FILE *warn)
{
    return scn_load_buffer(text, strlen(text), fname, out, diag, warn);
}

int scn_load_buffer(const char *text, size_t len, const char *fname, scn_t **out,
                    scn_diag_t *diag, FILE *warn)
{
    elem_register_builtin();
    scn_t *s = lb_calloc(1, sizeof *s);
    s->file = lb_strdup(fname ? fname : "<string>");
    s->files = scn_files_new();
    s->warn = warn;
    scn_diag_t local;
    if (!diag) diag = &local;
    memset(diag, 0, sizeof *diag);
    scn_t *outer = g_reading;
    g_reading = s;
    scn_src_note(s->file, text, len);
    int rc = yt_parse_one_n(text, len, s->file, 0, &s->base, diag);
    if (rc == 0) rc = load_variants(s, diag);
    if (rc == 0) rc = resolve(s, diag);
    g_reading = outer;
    if (rc < 0) {
        scn_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int scn_load(const char *path, scn_t **out, scn_diag_t *diag, FILE *warn)
{
    size_t len;
    char *text = scn_read_file(path, &len, diag);
    if (!text) return LB_EIO;
    int rc = scn_load_buffer(text, len, path, out, diag, warn);
    lb_free(text);
    return rc;
}

int scn_override(scn_t *s, const char *kv, scn_diag_t *diag)
{
    const char *eq = strchr(kv, '=');
    elem_pos_t kpos = { CLI_FILE, 1, 1 };
    if (!eq || eq == kv)
        return diag_set(diag, kpos, LB_EINVAL, "bad override '%s'; expected KEY=VALUE like "
                        "traffic.browse.rate=100/s", kv);
    char *key = lb_strndup(kv, (size_t)(eq - kv));
    scn_node_t *value = NULL;
    int rc = yt_parse_one(eq + 1, CLI_FILE, (int)(eq - kv) + 1, &value, diag);
    if (rc < 0) {
        lb_free(key);
        return rc;
    }
    scn_ovr_t o = { key, kpos, value };
    lb_vec_push(&s->ovr, o);
    scn_t *outer = g_reading;
    g_reading = s;
    rc = resolve(s, diag);
    g_reading = outer;
    if (rc < 0) {
        s->ovr.n--;
        lb_free(key);
        yt_free(value);
    }
    return rc;
}

const char *scn_name(const scn_t *s) { return s->base_model->name; }
const char *scn_description(const scn_t *s) { return s->base_model->description; }
const char *scn_file(const scn_t *s) { return s->file; }
size_t scn_source_count(const scn_t *s) { return s->srcs.n; }
const char *scn_source_path(const scn_t *s, size_t i)
{
    return i < s->srcs.n ? s->srcs.v[i].path : NULL;
}
const char *scn_source_text(const scn_t *s, size_t i, size_t *len)
{
    if (i >= s->srcs.n) return NULL;
    if (len) *len = s->srcs.v[i].len;
    return s->srcs.v[i].text;
}
bool scn_sources_changed(const scn_t *s) { return s->srcs_changed; }
uint64_t scn_seed(const scn_t *s) { return s->base_model->seed; }
sim_time_t scn_duration(const scn_t *s) { return s->base_model->duration; }
size_t scn_variant_count(const scn_t *s) { return s->variants.n; }
const char *scn_variant_name(const scn_t *s, size_t i)
{
    return i < s->variants.n ? s->variants.v[i].name : NULL;
}
const char *scn_variant_description(const scn_t *s, size_t i)
{
    return i < s->variants.n ? s->variants.v[i].description : NULL;
}
int scn_variant_find(const scn_t *s, const char *name)
{
    for (size_t i = 0; i < s->variants.n; i++)
        if (strcmp(s->variants.v[i].name, name) == 0) return (int)i;
    return -1;
}
scn_model_t *scn_variant_model(const scn_t *s, size_t v)
{
    assert(v < s->variants.n);
    return s->variants.v[v].model;
}
FILE *scn_warn_stream(const scn_t *s) { return s->warn; }

void scn_warnings_flush(scn_t *s)
{
    if (s->warned) return;          /* every run calls it: nothing new since the last time */
    s->warned = true;
    LB_VEC(const manifests_t *) sets = { 0 };
    bool pending = false;
    for (size_t v = 0; v < scn_variant_count(s); v++) {
        scn_model_t *m = scn_variant_model(s, v);
        if (!m->kube) continue;
        pending |= !m->kube_warned;
        m->kube_warned = true;
        lb_vec_push(&sets, m->kube);
    }
    FILE *w = scn_warn_stream(s);
    if (pending && w) manifests_print_warnings_n(sets.v, sets.n, w);
    lb_vec_free(&sets);
}

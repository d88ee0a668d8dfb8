/* element.c -- the registry of element types, typed configurations (elem_cfg_t), and
 * their conversion from the positioned YAML tree: every value is checked against its
 * parameter's kind with a file:line:col message that says what was expected, and
 * unknown keys get the closest valid name. Defaults are parsed like scenario input. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "scenario_int.h"

#include "apps.h"

/* ---- registry ------------------------------------------------------------------------------ */

static LB_VEC(const elem_type_t *) registry;

void elem_register(const elem_type_t *t)
{
    assert(t && t->name && t->params && t->build);
    assert(!elem_type_find(t->name));
    lb_vec_push(&registry, t);
}

const elem_type_t *elem_type_find(const char *name)
{
    for (size_t i = 0; i < registry.n; i++)
        if (strcmp(registry.v[i]->name, name) == 0) return registry.v[i];
    return NULL;
}

size_t elem_type_count(void) { return registry.n; }
const elem_type_t *elem_type_at(size_t i) { return i < registry.n ? registry.v[i] : NULL; }

void vnet_register(void);          /* models/vnet.c */
void cluster_register(void);       /* models/cluster_elem.c */
void azure_ilb_register(void);     /* models/azure_ilb_elem.c */
void appgw_register(void);         /* models/appgw.c */
void aws_register(void);           /* models/aws_elems.c */
void tls_cert_register(void);      /* models/tls_cert_elem.c */

void elem_register_builtin(void)
{
    static bool done;
    if (done) return;
    done = true;
    topology_register();
    apps_register();
    vnet_register();
    cluster_register();
    azure_ilb_register();
    appgw_register();
    aws_register();
    tls_cert_register();
}

/* ---- closest names --------------------------------------------------------------------------- */

size_t elem_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = lb_malloc((lb + 1) * sizeof *row);
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    lb_free(row);
    return d;
}

const char *closest_name(const char *s, const char *const *names, size_t n)
{
    size_t len = strlen(s);
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = elem_distance(s, names[i]);
        size_t longer = len > strlen(names[i]) ? len : strlen(names[i]);
        /* never "suggest" a name that shares nothing with s */
        if (d <= limit && d < longer && d < bestd) { best = names[i]; bestd = d; }
    }
    return best;
}

const char *elem_closest(const char *s, const char *const *candidates, size_t n)
{
    return closest_name(s, candidates, n);
}

/* ---- configurations --------------------------------------------------------------------------- */

static size_t param_count(const elem_param_t *params)
{
    size_t n = 0;
    while (params[n].name) n++;
    return n;
}

static int param_index(const elem_cfg_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->params[i].name, name) == 0) return (int)i;
    return -1;
}

const elem_val_t *elem_find(const elem_cfg_t *c, const char *name)
{
    int i = param_index(c, name);
    return i < 0 ? NULL : &c->vals[i];
}

const elem_val_t *elem_get(const elem_cfg_t *c, const char *name)
{
    int i = param_index(c, name);
    assert(i >= 0 && "elem_get: no such parameter");
    return &c->vals[i];
}

const char *elem_str(const elem_cfg_t *c, const char *name)
{
    const elem_val_t *v = elem_get(c, name);
    assert(v->kind == P_STR || v->kind == P_ENUM);
    return v->u.s;
}

int64_t elem_int(const elem_cfg_t *c, const char *name)
{
    const elem_val_t *v = elem_get(c, name);
    assert(v->kind == P_INT || v->kind == P_DURATION || v->kind == P_SIZE ||
           v->kind == P_BANDWIDTH);
    return v->u.i;
}

double elem_float(const elem_cfg_t *c, const char *name)
{
    const elem_val_t *v = elem_get(c, name);
    if (v->kind == P_INT) return (double)v->u.i;
    assert(v->kind == P_FLOAT || v->kind == P_RATE || v->kind == P_RATIO);
    return v->u.f;
}

bool elem_bool(const elem_cfg_t *c, const char *name)
{
    const elem_val_t *v = elem_get(c, name);
    assert(v->kind == P_BOOL);
    return v->u.b;
}

static void val_clear(elem_val_t *v)
{
    switch (v->kind) {
    case P_STR: case P_ENUM: lb_free(v->u.s); break;
    case P_STRLIST:
        for (size_t i = 0; i < v->u.strs.n; i++) lb_free(v->u.strs.v[i]);
        lb_free(v->u.strs.v);
        lb_free(v->u.strs.pos);
        break;
    case P_OBJLIST: case P_OBJ:
        for (size_t i = 0; i < v->u.objs.n; i++) elem_cfg_free(v->u.objs.v[i]);
        lb_free(v->u.objs.v);
        break;
    default: break;
    }
    memset(&v->u, 0, sizeof v->u);
}

void elem_cfg_free(elem_cfg_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) val_clear(&c->vals[i]);
    lb_free(c->vals);
    lb_free(c->name);
    lb_free(c);
}

static elem_cfg_t *cfg_alloc(const elem_param_t *params, elem_pos_t pos)
{
    elem_cfg_t *c = lb_calloc(1, sizeof *c);
    c->params = params;
    c->n = param_count(params);
    c->vals = lb_calloc(c->n ? c->n : 1, sizeof *c->vals);
    c->pos = pos;
    for (size_t i = 0; i < c->n; i++) c->vals[i].kind = params[i].kind;
    return c;
}

/* ---- conversion of one value --------------------------------------------------------------------- */

static int kind_error(scn_diag_t *d, const elem_param_t *p, const scn_node_t *node,
                      const char *expected)
{
    if (node->kind == SCN_SCALAR)
        return diag_set(d, node->pos, LB_EINVAL, "%s: expected %s; got '%s'", p->name, expected,
                        node->str);
    return diag_set(d, node->pos, LB_EINVAL, "%s: expected %s; got %s", p->name, expected,
                    yt_kind_desc(node));
}

static bool parse_int(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s)) return false;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF" };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcmp(s, yes[i]) == 0) { *out = true; return true; }
        if (strcmp(s, no[i]) == 0) { *out = false; return true; }
    }
    return false;
}

static int conv_obj(const elem_param_t *p, const scn_node_t *node, const char *what,
                    elem_cfg_t **out, scn_diag_t *d)
{
    if (node->kind != SCN_MAP) return kind_error(d, p, node, "a mapping of keys");
    char sub[256];
    snprintf(sub, sizeof sub, "%s %s", what, p->name);
    return elem_cfg_from_node(p->sub, node, sub, NULL, out, d);
}

/* Converts node into v (v->kind already set, v->u empty). */
static int conv_value(const elem_param_t *p, const scn_node_t *node, const char *what,
                      elem_val_t *v, scn_diag_t *d)
{
    v->pos = node->pos;
    const char *s = node->kind == SCN_SCALAR ? node->str : NULL;
    char err[256];
    switch (p->kind) {
    case P_STR:
        if (!s) return kind_error(d, p, node, "a string");
        v->u.s = lb_strdup(s);
        return 0;
    case P_INT:
        if (!s || !parse_int(s, &v->u.i)) return kind_error(d, p, node, "an integer");
        return 0;
    case P_FLOAT:
        if (!s || !parse_float(s, &v->u.f)) return kind_error(d, p, node, "a number");
        return 0;
    case P_BOOL:
        if (!s || !parse_bool(s, &v->u.b)) return kind_error(d, p, node, "true or false");
        return 0;
    case P_DURATION:
        if (!s || unit_duration(s, &v->u.i) < 0)
            return kind_error(d, p, node, "a duration like 30s, 250ms, 10us");
        return 0;
    case P_SIZE: {
        uint64_t x;
        if (!s || unit_size(s, &x) < 0)
            return kind_error(d, p, node, "a size like 1500B, 64KB, 1MiB");
        v->u.i = (int64_t)x;
        return 0;
    }
    case P_BANDWIDTH: {
        uint64_t x;
        if (!s || unit_bandwidth(s, &x) < 0)
            return kind_error(d, p, node, "a bandwidth like 10Gbps, 100Mbps, 800bps");
        v->u.i = (int64_t)x;
        return 0;
    }
    case P_RATE:
        if (!s || unit_rate(s, &v->u.f) < 0)
            return kind_error(d, p, node, "a rate like 50/s, 3000/min, 2/ms");
        return 0;
    case P_RATIO:
        if (!s || unit_ratio(s, &v->u.f) < 0)
            return kind_error(d, p, node, "a ratio like 1% or 0.01 (between 0 and 1)");
        return 0;
    case P_DIST:
        if (!s) return kind_error(d, p, node, "a distribution like 5ms or exp(5ms)");
        if (dist_parse(s, &v->u.dist, err, sizeof err) < 0)
            return diag_set(d, node->pos, LB_EINVAL, "%s: %s", p->name, err);
        return 0;
    case P_ADDR:
        if (!s || lb_ip_parse(s, &v->u.addr) < 0)
            return kind_error(d, p, node, "an IPv4 address like 10.0.0.1");
        return 0;
    case P_CIDR: {
        uint32_t a;
        int plen;
        if (!s || !strchr(s, '/') || lb_cidr_parse(s, &a, &plen) < 0)
            return kind_error(d, p, node, "an IPv4 prefix like 10.0.0.0/24");
        if (a & ~lb_prefix_mask(plen)) {
            char buf[16];
            return diag_set(d, node->pos, LB_EINVAL, "%s: '%s' has host bits set; expected %s/%d",
                            p->name, s, lb_ip_str(a & lb_prefix_mask(plen), buf), plen);
        }
        v->u.cidr.addr = a;
        v->u.cidr.plen = plen;
        return 0;
    }
    case P_ENUM: {
        size_t n = 0;
        while (p->choices[n]) n++;
        if (s)
            for (size_t i = 0; i < n; i++)
                if (strcmp(s, p->choices[i]) == 0) { v->u.s = lb_strdup(s); return 0; }
        char list[256] = "";
        names_join(list, sizeof list, (const char *const *)p->choices, n, 20);
        const char *close = s ? closest_name(s, (const char *const *)p->choices, n) : NULL;
        if (close)
            return diag_set(d, node->pos, LB_EINVAL, "%s: unknown value '%s'; did you mean '%s'? "
                            "(one of: %s)", p->name, s, close, list);
        char exp[300];
        snprintf(exp, sizeof exp, "one of: %s", list);
        return kind_error(d, p, node, exp);
    }
    case P_STRLIST: {
        if (s) {
            v->u.strs.v = lb_malloc(sizeof(char *));
            v->u.strs.pos = lb_malloc(sizeof(elem_pos_t));
            v->u.strs.v[0] = lb_strdup(s);
            v->u.strs.pos[0] = node->pos;
            v->u.strs.n = 1;
            return 0;
        }
        if (node->kind != SCN_SEQ) return kind_error(d, p, node, "a list of strings");
        for (size_t i = 0; i < node->n; i++)
            if (node->v[i]->kind != SCN_SCALAR)
                return diag_set(d, node->v[i]->pos, LB_EINVAL, "%s: expected a list of strings; "
                                "item %zu is %s", p->name, i + 1, yt_kind_desc(node->v[i]));
        v->u.strs.n = node->n;
        v->u.strs.v = lb_calloc(node->n ? node->n : 1, sizeof(char *));
        v->u.strs.pos = lb_calloc(node->n ? node->n : 1, sizeof(elem_pos_t));
        for (size_t i = 0; i < node->n; i++) {
            v->u.strs.v[i] = lb_strdup(node->v[i]->str);
            v->u.strs.pos[i] = node->v[i]->pos;
        }
        return 0;
    }
    case P_OBJLIST: {
        if (node->kind != SCN_SEQ) return kind_error(d, p, node, "a list of mappings");
        v->u.objs.v = lb_calloc(node->n ? node->n : 1, sizeof(elem_cfg_t *));
        for (size_t i = 0; i < node->n; i++) {
            int rc = conv_obj(p, node->v[i], what, &v->u.objs.v[i], d);
            if (rc < 0) return rc;
            v->u.objs.n = i + 1;
        }
        return 0;
    }
    case P_OBJ: {
        v->u.objs.v = lb_calloc(1, sizeof(elem_cfg_t *));
        int rc = conv_obj(p, node, what, &v->u.objs.v[0], d);
        if (rc == 0) v->u.objs.n = 1;
        return rc;
    }
    case P_ANY:
        v->u.any = (void *)node;
        return 0;
    }
    return diag_set(d, node->pos, LB_EINVAL, "%s: unsupported parameter kind", p->name);
}

/* Parsed default texts, by the address of the (static) text: every element of a type
 * uses the same defaults, so each is parsed once per process. The trees live as long as
 * the process (reachable from here). */
static struct {
    LB_VEC(struct default_tree { const char *text; scn_node_t *node; }) v;
    lb_index_t index;
} defaults;

static int default_tree(const char *text, scn_node_t **out, scn_diag_t *d)
{
    uint64_t h = lb_mix64((uint64_t)(uintptr_t)text);
    for (size_t it, i = lb_index_first(&defaults.index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&defaults.index, h, &it))
        if (defaults.v.v[i].text == text) {
            *out = defaults.v.v[i].node;
            return 0;
        }
    scn_node_t *node = NULL;
    int rc = yt_parse_one(text, "<default>", 0, &node, d);
    if (rc < 0) return rc;
    struct default_tree e = { text, node };
    lb_vec_push(&defaults.v, e);
    lb_index_add(&defaults.index, h, defaults.v.n - 1);
    *out = node;
    return 0;
}

/* Applies p's default into v; "" means optional without a value. */
static int apply_default(const elem_param_t *p, const char *what, elem_val_t *v, scn_diag_t *d)
{
    v->set = false;
    v->pos = (elem_pos_t){ "<default>", 0, 0 };
    if (!p->def || !*p->def) {
        if (p->kind == P_STR && p->def) v->u.s = lb_strdup("");
        if (p->kind == P_OBJ && p->def) {        /* an absent object: all its defaults */
            v->u.objs.v = lb_calloc(1, sizeof(elem_cfg_t *));
            char err[256];
            v->u.objs.v[0] = elem_cfg_defaults(p->sub, err, sizeof err);
            if (!v->u.objs.v[0])
                return diag_set(d, v->pos, LB_EINVAL, "default of %s %s: %s", what, p->name, err);
            v->u.objs.n = 1;
        }
        return 0;
    }
    scn_node_t *node = NULL;
    int rc = default_tree(p->def, &node, d);
    if (rc == 0 && node->kind == SCN_NULL) return 0;
    if (rc == 0) {
        rc = conv_value(p, node, what, v, d);
        if (p->kind == P_ANY) v->u.any = NULL;   /* a default is no tree of the scenario */
    }
    v->pos = (elem_pos_t){ "<default>", 0, 0 };
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", d ? d->msg : "");
        return diag_set(d, v->pos, LB_EINVAL, "bad default for %s %s ('%s'): %s", what, p->name,
                        p->def, why);
    }
    return 0;
}

elem_cfg_t *elem_cfg_defaults(const elem_param_t *params, char *err, size_t errlen)
{
    elem_cfg_t *c = cfg_alloc(params, (elem_pos_t){ "<default>", 0, 0 });
    scn_diag_t d = { 0 };
    for (size_t i = 0; i < c->n; i++)
        if (apply_default(&params[i], "element", &c->vals[i], &d) < 0) {
            if (err && errlen) snprintf(err, errlen, "%s", d.msg);
            elem_cfg_free(c);
            return NULL;
        }
    return c;
}

int elem_set(elem_cfg_t *c, const char *name, const char *text, char *err, size_t errlen)
{
    int i = param_index(c, name);
    if (i < 0) {
        if (err && errlen) snprintf(err, errlen, "no parameter '%s'", name);
        return LB_ENOENT;
    }
    scn_diag_t d = { 0 };
    scn_node_t *node = NULL;
    int rc = yt_parse_one(text, "<elem_set>", 0, &node, &d);
    if (rc == 0) {
        elem_val_t v = { .kind = c->params[i].kind };
        if (node->kind == SCN_NULL) rc = apply_default(&c->params[i], "element", &v, &d);
        else rc = conv_value(&c->params[i], node, "element", &v, &d);
        if (rc == 0 && v.kind == P_ANY && node->kind != SCN_NULL) {
            rc = diag_set(&d, node->pos, LB_EINVAL, "%s: P_ANY cannot be set from text", name);
        }
        if (rc == 0) {
            val_clear(&c->vals[i]);
            v.set = node->kind != SCN_NULL;
            c->vals[i] = v;
        } else {
            val_clear(&v);
        }
        yt_free(node);
    }
    if (rc < 0 && err && errlen) snprintf(err, errlen, "%s", d.msg);
    return rc < 0 ? LB_EINVAL : 0;
}

/* ---- conversion of an object ---------------------------------------------------------------------- */

int elem_cfg_from_node(const elem_param_t *params, const scn_node_t *map, const char *what,
                       const char *const *extra, elem_cfg_t **out, scn_diag_t *d)
{
    if (!map || map->kind != SCN_MAP)
        return diag_set(d, map ? map->pos : (elem_pos_t){ 0 }, LB_EINVAL,
                        "%s: expected a mapping of keys; got %s", what, yt_kind_desc(map));
    elem_cfg_t *c = cfg_alloc(params, map->pos);
    int rc = 0;
    /* unknown keys first, in file order */
    for (size_t k = 0; k < map->n && rc == 0; k++) {
        const char *key = map->keys[k];
        if (param_index(c, key) >= 0) continue;
        bool skip = false;
        for (size_t e = 0; extra && extra[e]; e++) skip |= strcmp(extra[e], key) == 0;
        if (skip) continue;
        LB_VEC(const char *) names = { 0 };
        for (size_t e = 0; extra && extra[e]; e++) lb_vec_push(&names, extra[e]);
        for (size_t i = 0; i < c->n; i++) lb_vec_push(&names, params[i].name);
        const char *close = closest_name(key, names.v, names.n);
        if (close) {
            rc = diag_set(d, map->kpos[k], LB_EINVAL, "unknown key '%s' in %s; did you mean '%s'?",
                          key, what, close);
        } else {
            char list[400] = "";
            names_join(list, sizeof list, names.v, names.n, 30);
            rc = diag_set(d, map->kpos[k], LB_EINVAL, "unknown key '%s' in %s; valid keys are: %s",
                          key, what, list);
        }
        lb_vec_free(&names);
    }
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        const elem_param_t *p = &params[i];
        size_t k;
        const scn_node_t *node = yt_get(map, p->name, &k);
        if (node && node->kind != SCN_NULL) {
            rc = conv_value(p, node, what, &c->vals[i], d);
            c->vals[i].set = true;
        } else if (!p->def) {
            rc = diag_set(d, node ? node->pos : map->pos, LB_EINVAL,
                          "missing required key '%s' in %s; expected %s", p->name, what,
                          p->doc ? p->doc : "a value");
        } else {
            rc = apply_default(p, what, &c->vals[i], d);
        }
    }
    if (rc < 0) {
        elem_cfg_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

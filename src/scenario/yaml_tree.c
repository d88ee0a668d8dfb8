/* yaml_tree.c -- YAML text into the positioned tree of scenario_int.h, with libyaml's
 * event API. Each node records file:line:col (1-based); duplicate map keys and non-scalar
 * keys are errors; anchors/aliases are expanded by copying (bounded, against alias bombs).
 * Also the read-only public view of the tree (scn_node_*) and multi-document loading. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include "scenario_int.h"

/* Bounds on hostile input: nesting depth and total nodes (aliases expand by copying). */
#define YT_MAX_DEPTH 200
#define YT_MAX_NODES (1u << 20)

/* ---- diagnostics ---------------------------------------------------------------------------- */

int diag_vset(scn_diag_t *d, elem_pos_t pos, int rc, const char *fmt, va_list ap)
{
    if (!d) return rc;
    snprintf(d->file, sizeof d->file, "%s", pos.file ? pos.file : "");
    d->line = pos.line;
    d->col = pos.col;
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    return rc;
}

int scn_diag_set(scn_diag_t *d, elem_pos_t pos, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vset(d, pos, rc, fmt, ap);
    va_end(ap);
    return rc;
}

void scn_diag_print(const scn_diag_t *d, FILE *out)
{
    if (d->line > 0)
        fprintf(out, "%s:%d:%d: error: %s\n", d->file, d->line, d->col, d->msg);
    else
        fprintf(out, "%s: error: %s\n", d->file[0] ? d->file : "<input>", d->msg);
}

void names_join(char *buf, size_t n, const char *const *names, size_t count, size_t max)
{
    size_t len = strlen(buf);
    for (size_t i = 0; i < count && len + 1 < n; i++) {
        if (i == max) { snprintf(buf + len, n - len, ", ..."); return; }
        snprintf(buf + len, n - len, "%s%s", i ? ", " : "", names[i]);
        len = strlen(buf);
    }
}

/* ---- nodes ----------------------------------------------------------------------------------- */

scn_node_t *yt_new(scn_node_kind_t kind, elem_pos_t pos, const char *str)
{
    scn_node_t *n = lb_calloc(1, sizeof *n);
    n->kind = kind;
    n->pos = pos;
    if (kind == SCN_SCALAR || kind == SCN_NULL) n->str = lb_strdup(str ? str : "");
    return n;
}

static void grow(scn_node_t *n)
{
    if (n->n < n->cap) return;
    n->cap = n->cap ? n->cap * 2 : 4;
    n->v = lb_realloc(n->v, n->cap * sizeof *n->v);
    if (n->kind == SCN_MAP) {
        n->keys = lb_realloc(n->keys, n->cap * sizeof *n->keys);
        n->kpos = lb_realloc(n->kpos, n->cap * sizeof *n->kpos);
    }
}

void yt_seq_push(scn_node_t *seq, scn_node_t *v)
{
    assert(seq->kind == SCN_SEQ);
    grow(seq);
    seq->v[seq->n++] = v;
}

void yt_map_set(scn_node_t *map, const char *key, elem_pos_t kpos, scn_node_t *v)
{
    assert(map->kind == SCN_MAP);
    size_t i;
    if (yt_get(map, key, &i)) {
        yt_free(map->v[i]);
        map->v[i] = v;
        map->kpos[i] = kpos;
        return;
    }
    grow(map);
    map->keys[map->n] = lb_strdup(key);
    map->kpos[map->n] = kpos;
    map->v[map->n++] = v;
}

scn_node_t *yt_get(const scn_node_t *map, const char *key, size_t *idx)
{
    if (!map || map->kind != SCN_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0) {
            if (idx) *idx = i;
            return map->v[i];
        }
    return NULL;
}

scn_node_t *yt_copy(const scn_node_t *n)
{
    if (!n) return NULL;
    scn_node_t *c = yt_new(n->kind, n->pos, n->str);
    c->quoted = n->quoted;
    if (n->kind == SCN_MAP)
        for (size_t i = 0; i < n->n; i++) yt_map_set(c, n->keys[i], n->kpos[i], yt_copy(n->v[i]));
    else if (n->kind == SCN_SEQ)
        for (size_t i = 0; i < n->n; i++) yt_seq_push(c, yt_copy(n->v[i]));
    return c;
}

void yt_free(scn_node_t *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) {
        yt_free(n->v[i]);
        if (n->keys) lb_free(n->keys[i]);
    }
    lb_free(n->v);
    lb_free(n->keys);
    lb_free(n->kpos);
    lb_free(n->str);
    lb_free(n);
}

const char *yt_kind_desc(const scn_node_t *n)
{
    if (!n) return "nothing";
    switch (n->kind) {
    case SCN_NULL: return "nothing";
    case SCN_SCALAR: return "a scalar";
    case SCN_MAP: return "a mapping";
    case SCN_SEQ: return "a list";
    }
    return "?";
}

static size_t count_nodes(const scn_node_t *n)
{
    size_t c = 1;
    for (size_t i = 0; i < n->n; i++) c += count_nodes(n->v[i]);
    return c;
}

/* ---- parsing ------------------------------------------------------------------------------------ */

typedef struct anchor { char *name; scn_node_t *node; } anchor_t;

typedef struct ystate {
    yaml_parser_t p;
    const char *fname;
    int col_off;
    size_t len;
    scn_diag_t *diag;
    LB_VEC(anchor_t) anchors;
    size_t nodes;
} ystate_t;

static elem_pos_t mark_pos(const ystate_t *st, yaml_mark_t m)
{
    elem_pos_t pos = { st->fname, (int)m.line + 1, (int)m.column + 1 };
    if (st->col_off > 0 && m.line > 0)      /* one-line value: "past its end" */
        return (elem_pos_t){ st->fname, 1, st->col_off + (int)st->len + 1 };
    if (m.line == 0) pos.col += st->col_off;
    return pos;
}

static int syntax_error(ystate_t *st)
{
    const yaml_parser_t *p = &st->p;
    if (p->error == YAML_MEMORY_ERROR) {
        fprintf(stderr, "lbchain: libyaml out of memory\n");
        abort();
    }
    const char *problem = p->problem ? p->problem : "malformed input";
    if (p->error == YAML_READER_ERROR) {
        elem_pos_t pos = mark_pos(st, p->mark);
        return diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: %s (byte %zu); expected UTF-8 text",
                        problem, p->problem_offset);
    }
    elem_pos_t pos = mark_pos(st, p->problem_mark);
    if (p->context) {
        elem_pos_t c = mark_pos(st, p->context_mark);
        return diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: %s (%s at %d:%d)", problem,
                        p->context, c.line, c.col);
    }
    return diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: %s", problem);
}

static int next(ystate_t *st, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&st->p, ev)) return syntax_error(st);
    return 0;
}

static void add_anchor(ystate_t *st, const yaml_char_t *name, scn_node_t *n)
{
    if (!name) return;
    anchor_t a = { lb_strdup((const char *)name), n };
    lb_vec_push(&st->anchors, a);
}

static int parse_node(ystate_t *st, yaml_event_t *ev, int depth, scn_node_t **out);

static int parse_map(ystate_t *st, yaml_event_t *start, int depth, scn_node_t **out)
{
    scn_node_t *map = yt_new(SCN_MAP, mark_pos(st, start->start_mark), NULL);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next(st, &ev)) < 0) break;
        if (ev.type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&ev); break; }
        elem_pos_t kpos = mark_pos(st, ev.start_mark);
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            rc = diag_set(st->diag, kpos, LB_EPARSE,
                          "a mapping key must be a plain name; got a %s",
                          ev.type == YAML_ALIAS_EVENT ? "alias" : "collection");
            break;
        }
        size_t klen = ev.data.scalar.length;
        char *key = lb_strndup((const char *)ev.data.scalar.value, klen);
        yaml_event_delete(&ev);
        if (strlen(key) != klen) {
            rc = diag_set(st->diag, kpos, LB_EPARSE, "a mapping key contains a NUL byte");
            lb_free(key);
            break;
        }
        size_t idx;
        if (yt_get(map, key, &idx)) {
            rc = diag_set(st->diag, kpos, LB_EPARSE,
                          "duplicate key '%s'; it is already defined at line %d, column %d",
                          key, map->kpos[idx].line, map->kpos[idx].col);
            lb_free(key);
            break;
        }
        scn_node_t *val = NULL;
        if ((rc = next(st, &ev)) < 0) { lb_free(key); break; }
        rc = parse_node(st, &ev, depth + 1, &val);
        if (rc < 0) { lb_free(key); break; }
        grow(map);
        map->keys[map->n] = key;
        map->kpos[map->n] = kpos;
        map->v[map->n++] = val;
    }
    if (rc < 0) { yt_free(map); return rc; }
    *out = map;
    return 0;
}

static int parse_seq(ystate_t *st, yaml_event_t *start, int depth, scn_node_t **out)
{
    scn_node_t *seq = yt_new(SCN_SEQ, mark_pos(st, start->start_mark), NULL);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next(st, &ev)) < 0) break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) { yaml_event_delete(&ev); break; }
        scn_node_t *item = NULL;
        if ((rc = parse_node(st, &ev, depth + 1, &item)) < 0) break;
        yt_seq_push(seq, item);
    }
    if (rc < 0) { yt_free(seq); return rc; }
    *out = seq;
    return 0;
}

static bool is_null_text(const char *s)
{
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* Consumes ev (the first event of a node) and whatever events the node spans. */
static int parse_node(ystate_t *st, yaml_event_t *ev, int depth, scn_node_t **out)
{
    elem_pos_t pos = mark_pos(st, ev->start_mark);
    int rc = 0;
    if (depth > YT_MAX_DEPTH) {
        yaml_event_delete(ev);
        return diag_set(st->diag, pos, LB_EPARSE, "nesting deeper than %d levels", YT_MAX_DEPTH);
    }
    if (++st->nodes > YT_MAX_NODES) {
        yaml_event_delete(ev);
        return diag_set(st->diag, pos, LB_EPARSE, "more than %u YAML nodes", YT_MAX_NODES);
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (strlen(v) != ev->data.scalar.length) {
            rc = diag_set(st->diag, pos, LB_EPARSE, "a string contains a NUL byte");
            break;
        }
        *out = yt_new(plain && is_null_text(v) ? SCN_NULL : SCN_SCALAR, pos, v);
        (*out)->quoted = !plain;
        add_anchor(st, ev->data.scalar.anchor, *out);
        break;
    }
    case YAML_MAPPING_START_EVENT:
        rc = parse_map(st, ev, depth, out);
        if (rc == 0) add_anchor(st, ev->data.mapping_start.anchor, *out);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = parse_seq(st, ev, depth, out);
        if (rc == 0) add_anchor(st, ev->data.sequence_start.anchor, *out);
        break;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const anchor_t *a = NULL;
        for (size_t i = st->anchors.n; i-- > 0;)
            if (strcmp(st->anchors.v[i].name, name) == 0) { a = &st->anchors.v[i]; break; }
        if (!a) {
            rc = diag_set(st->diag, pos, LB_EPARSE, "alias '*%s' refers to no anchor defined "
                          "before it; expected '&%s' earlier in the document", name, name);
            break;
        }
        st->nodes += count_nodes(a->node);
        if (st->nodes > YT_MAX_NODES) {
            rc = diag_set(st->diag, pos, LB_EPARSE, "more than %u YAML nodes after expanding "
                          "aliases", YT_MAX_NODES);
            break;
        }
        *out = yt_copy(a->node);
        break;
    }
    default:
        rc = diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: unexpected event");
        break;
    }
    yaml_event_delete(ev);
    return rc;
}

int yt_parse(const char *text, size_t len, const char *fname, int col_off,
             scn_node_t ***docs, size_t *ndocs, scn_diag_t *diag)
{
    ystate_t st = { .fname = fname, .col_off = col_off, .len = len, .diag = diag };
    LB_VEC(scn_node_t *) out = { 0 };
    int rc = 0;
    if (!yaml_parser_initialize(&st.p)) {
        fprintf(stderr, "lbchain: libyaml out of memory\n");
        abort();
    }
    yaml_parser_set_input_string(&st.p, (const unsigned char *)text, len);
    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if ((rc = next(&st, &ev)) < 0) break;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; yaml_event_delete(&ev); break;
        case YAML_STREAM_START_EVENT: case YAML_DOCUMENT_END_EVENT: yaml_event_delete(&ev); break;
        case YAML_DOCUMENT_START_EVENT: {
            yaml_event_delete(&ev);
            for (size_t i = 0; i < st.anchors.n; i++) lb_free(st.anchors.v[i].name);
            st.anchors.n = 0;           /* anchors are per document */
            scn_node_t *root = NULL;
            if ((rc = next(&st, &ev)) < 0) break;
            if ((rc = parse_node(&st, &ev, 0, &root)) < 0) break;
            lb_vec_push(&out, root);
            break;
        }
        default:
            yaml_event_delete(&ev);
            rc = diag_set(diag, mark_pos(&st, st.p.mark), LB_EPARSE, "invalid YAML: unexpected event");
            break;
        }
    }
    for (size_t i = 0; i < st.anchors.n; i++) lb_free(st.anchors.v[i].name);
    lb_vec_free(&st.anchors);
    yaml_parser_delete(&st.p);
    if (rc < 0) {
        for (size_t i = 0; i < out.n; i++) yt_free(out.v[i]);
        lb_vec_free(&out);
        return rc;
    }
    *docs = out.v;
    *ndocs = out.n;
    return 0;
}

int yt_parse_one(const char *text, const char *fname, int col_off, scn_node_t **out,
                 scn_diag_t *diag)
{
    scn_node_t **docs = NULL;
    size_t n = 0;
    int rc = yt_parse(text, strlen(text), fname, col_off, &docs, &n, diag);
    if (rc < 0) return rc;
    if (n > 1) {
        elem_pos_t pos = docs[1]->pos;
        for (size_t i = 0; i < n; i++) yt_free(docs[i]);
        lb_free(docs);
        return diag_set(diag, pos, LB_EPARSE, "a second YAML document ('---'); expected one "
                        "document");
    }
    *out = n ? docs[0] : yt_new(SCN_NULL, (elem_pos_t){ fname, 1, 1 + col_off }, "");
    lb_free(docs);
    return 0;
}

/* ---- public read-only view --------------------------------------------------------------------- */

scn_node_kind_t scn_node_kind(const scn_node_t *n) { return n->kind; }
elem_pos_t scn_node_pos(const scn_node_t *n) { return n->pos; }
const char *scn_node_str(const scn_node_t *n)
{
    return (n->kind == SCN_SCALAR || n->kind == SCN_NULL) ? n->str : NULL;
}
size_t scn_node_len(const scn_node_t *n)
{
    return (n->kind == SCN_MAP || n->kind == SCN_SEQ) ? n->n : 0;
}
const char *scn_node_key(const scn_node_t *n, size_t i)
{
    return (n->kind == SCN_MAP && i < n->n) ? n->keys[i] : NULL;
}
const scn_node_t *scn_node_at(const scn_node_t *n, size_t i)
{
    return ((n->kind == SCN_MAP || n->kind == SCN_SEQ) && i < n->n) ? n->v[i] : NULL;
}
const scn_node_t *scn_node_get(const scn_node_t *n, const char *key) { return yt_get(n, key, NULL); }

struct scn_docs {
    char *file;
    scn_node_t **docs;
    size_t n;
};

int scn_docs_load_string(const char *text, const char *fname, scn_docs_t **out, scn_diag_t *diag)
{
    scn_docs_t *d = lb_calloc(1, sizeof *d);
    d->file = lb_strdup(fname ? fname : "<string>");
    int rc = yt_parse(text, strlen(text), d->file, 0, &d->docs, &d->n, diag);
    if (rc < 0) {
        lb_free(d->file);
        lb_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* Reads a whole file into a NUL-terminated buffer (caller frees). */
char *scn_read_file(const char *path, size_t *len, scn_diag_t *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_set(diag, (elem_pos_t){ path, 0, 0 }, LB_EIO, "cannot open: %s", strerror(errno));
        return NULL;
    }
    LB_VEC(char) buf = { 0 };
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        lb_vec_reserve(&buf, buf.n + got + 1);
        memcpy(buf.v + buf.n, chunk, got);
        buf.n += got;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        lb_vec_free(&buf);
        diag_set(diag, (elem_pos_t){ path, 0, 0 }, LB_EIO, "cannot read: %s", strerror(errno));
        return NULL;
    }
    lb_vec_reserve(&buf, buf.n + 1);
    buf.v[buf.n] = 0;
    *len = buf.n;
    return buf.v;
}

int scn_docs_load(const char *path, scn_docs_t **out, scn_diag_t *diag)
{
    size_t len;
    char *text = scn_read_file(path, &len, diag);
    if (!text) return LB_EIO;
    scn_src_note(path, text, len);          /* part of the scenario being loaded, if any */
    scn_docs_t *d = lb_calloc(1, sizeof *d);
    d->file = lb_strdup(path);
    int rc = yt_parse(text, len, d->file, 0, &d->docs, &d->n, diag);
    lb_free(text);
    if (rc < 0) {
        lb_free(d->file);
        lb_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

size_t scn_docs_count(const scn_docs_t *d) { return d->n; }
const scn_node_t *scn_docs_at(const scn_docs_t *d, size_t i) { return i < d->n ? d->docs[i] : NULL; }

void scn_docs_free(scn_docs_t *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) yt_free(d->docs[i]);
    lb_free(d->docs);
    lb_free(d->file);
    lb_free(d);
}

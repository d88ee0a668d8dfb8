/* yaml_tree.c -- YAML text into the positioned tree of scenario_int.h, with libyaml's
 * event API. Each node records file:line:col (1-based); duplicate map keys and non-scalar
 * keys are errors; an alias shares the anchored node (counted as a copy against a node
 * budget, against alias bombs). Also reading files (regular files only, bounded), the
 * read-only public view of the tree (scn_node_*) and multi-document loading. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "scenario_int.h"

/* Bounds on hostile input: nesting depth, and nodes per file counting every alias as the
 * copy it stands for (what a reader that walks the tree would visit). */
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

/* ---- nodes -----------------------------------------------------------------------------------
 * Nodes are shared, not copied: an alias, a variant's tree and a manifest taken from the
 * scenario all point at the same nodes and hold a reference each (refs). A shared node is
 * never changed: whoever wants to change one first makes its own shallow copy of it with
 * yt_own (copy on write), so changing a few keys of a variant copies only the path from
 * the root to them. */

scn_node_t *yt_new(scn_node_kind_t kind, elem_pos_t pos, const char *str)
{
    scn_node_t *n = lb_calloc(1, sizeof *n);
    n->kind = kind;
    n->pos = pos;
    n->refs = 1;
    if (kind == SCN_SCALAR || kind == SCN_NULL) n->str = lb_strdup(str ? str : "");
    return n;
}

scn_node_t *yt_ref(const scn_node_t *n)
{
    scn_node_t *m = (scn_node_t *)n;       /* the count is bookkeeping, not content */
    if (m) m->refs++;
    return m;
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

/* Maps with more keys than this get a hash index of their keys (smaller ones are
 * searched in order, which is faster for them). */
#define YT_INDEX_MIN 8

static void index_key(scn_node_t *map, size_t i)
{
    if (map->index) {
        lb_index_add(map->index, lb_hash_str(map->keys[i]), i);
    } else if (map->n > YT_INDEX_MIN) {
        map->index = lb_calloc(1, sizeof *map->index);
        for (size_t k = 0; k < map->n; k++) lb_index_add(map->index, lb_hash_str(map->keys[k]), k);
    }
}

/* Appends key (taken) -> v (taken); the key must not be there yet. */
static void map_append(scn_node_t *map, char *key, elem_pos_t kpos, scn_node_t *v)
{
    grow(map);
    map->keys[map->n] = key;
    map->kpos[map->n] = kpos;
    map->v[map->n++] = v;
    index_key(map, map->n - 1);
}

void yt_seq_push(scn_node_t *seq, scn_node_t *v)
{
    assert(seq->kind == SCN_SEQ && seq->refs == 1);
    grow(seq);
    seq->v[seq->n++] = v;
}

void yt_map_set(scn_node_t *map, const char *key, elem_pos_t kpos, scn_node_t *v)
{
    assert(map->kind == SCN_MAP && map->refs == 1);
    size_t i;
    if (yt_get(map, key, &i)) {
        yt_free(map->v[i]);
        map->v[i] = v;
        map->kpos[i] = kpos;
        return;
    }
    map_append(map, lb_strdup(key), kpos, v);
}

scn_node_t *yt_get(const scn_node_t *map, const char *key, size_t *idx)
{
    if (!map || map->kind != SCN_MAP) return NULL;
    if (map->index) {
        uint64_t h = lb_hash_str(key);
        for (size_t it, i = lb_index_first(map->index, h, &it); i != LB_INDEX_NONE;
             i = lb_index_next(map->index, h, &it))
            if (strcmp(map->keys[i], key) == 0) {
                if (idx) *idx = i;
                return map->v[i];
            }
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0) {
            if (idx) *idx = i;
            return map->v[i];
        }
    return NULL;
}

scn_node_t *yt_own(scn_node_t **slot)
{
    scn_node_t *n = *slot;
    if (n->refs == 1) return n;
    scn_node_t *c = yt_new(n->kind, n->pos, n->str);
    c->quoted = n->quoted;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == SCN_MAP) map_append(c, lb_strdup(n->keys[i]), n->kpos[i], yt_ref(n->v[i]));
        else yt_seq_push(c, yt_ref(n->v[i]));
    }
    yt_free(n);
    *slot = c;
    return c;
}

scn_node_t *yt_own_key(scn_node_t *map, const char *key)
{
    size_t i;
    if (!yt_get(map, key, &i)) return NULL;
    return yt_own(&map->v[i]);
}

void yt_free(scn_node_t *n)
{
    if (!n || --n->refs > 0) return;
    for (size_t i = 0; i < n->n; i++) {
        yt_free(n->v[i]);
        if (n->keys) lb_free(n->keys[i]);
    }
    if (n->index) lb_index_free(n->index);
    lb_free(n->index);
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

/* ---- parsing ------------------------------------------------------------------------------------ */

/* An anchor and how many nodes it stands for (aliases inside it expanded). */
typedef struct anchor { char *name; scn_node_t *node; size_t weight; } anchor_t;

typedef struct ystate {
    yaml_parser_t p;
    const char *text;
    const char *fname;
    int col_off;
    size_t len;
    scn_diag_t *diag;
    LB_VEC(anchor_t) anchors;
    size_t nodes;               /* as if every alias were a copy: the expansion budget */
    size_t events;
    size_t nchars;              /* characters of the text, as libyaml's mark.index counts */
    yaml_mark_t end;            /* the end of the text, as offset_mark counts */
} ystate_t;

static elem_pos_t mark_pos(const ystate_t *st, yaml_mark_t m)
{
    /* At the end of a text whose last line has no line break, libyaml moves its mark to
     * the start of a line that is not there: the end is where the text ends. */
    if (m.index >= st->nchars && m.line > st->end.line) m = st->end;
    elem_pos_t pos = { st->fname, (int)m.line + 1, (int)m.column + 1 };
    if (st->col_off > 0 && m.line > 0)      /* one-line value: "past its end" */
        return (elem_pos_t){ st->fname, 1, st->col_off + (int)st->len + 1 };
    if (m.line == 0) pos.col += st->col_off;
    return pos;
}

/* The mark of byte `off` of the text, counted as libyaml counts: lines end at LF, CR LF
 * or a lone CR; columns count characters (UTF-8 sequences), not bytes; a leading UTF-8
 * byte-order mark is not a character. */
static yaml_mark_t offset_mark(const ystate_t *st, size_t off)
{
    yaml_mark_t m = { off, 0, 0 };
    size_t i = st->len >= 3 && memcmp(st->text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    for (; i < off && i < st->len; i++) {
        unsigned char c = (unsigned char)st->text[i];
        if (c == '\n' || (c == '\r' && (i + 1 >= st->len || st->text[i + 1] != '\n'))) {
            m.line++;
            m.column = 0;
        } else if (c != '\r' && (c & 0xc0) != 0x80) {
            m.column++;
        }
    }
    return m;
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
        /* the offending byte itself, not where the scanner had got to; for a bad trailing
         * byte, the start of its sequence (the character a reader sees as wrong) */
        size_t o = p->problem_offset < st->len ? p->problem_offset : st->len;
        const unsigned char *t = (const unsigned char *)st->text;
        if (strstr(problem, "trailing"))
            for (int k = 0; k < 3 && o > 0 && (t[o] & 0xc0) != 0xc0; k++) o--;
        elem_pos_t pos = mark_pos(st, offset_mark(st, o));
        if (o >= st->len)
            return diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: %s; expected UTF-8 text",
                            problem);
        if (t[o] == 0)
            return diag_set(st->diag, pos, LB_EPARSE, "a NUL byte; expected UTF-8 text (a "
                            "UTF-16 file? convert it with iconv -f UTF-16 -t UTF-8)");
        if (strstr(problem, "UTF-8") || strstr(problem, "Unicode"))
            return diag_set(st->diag, pos, LB_EPARSE, "invalid UTF-8 at byte 0x%02X (%s); "
                            "expected UTF-8 text", t[o], problem);
        return diag_set(st->diag, pos, LB_EPARSE, "control character 0x%02X (%s); expected "
                        "printable UTF-8 text", t[o], problem);
    }
    elem_pos_t pos = mark_pos(st, p->problem_mark);
    if (p->context) {
        elem_pos_t c = mark_pos(st, p->context_mark);
        return diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: %s (%s at %d:%d)", problem,
                        p->context, c.line, c.col);
    }
    return diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: %s", problem);
}

/* How often (in events) parsing looks for a stop request (SIGINT/SIGTERM). */
#define YT_STOP_EVENTS 4096

static int next(ystate_t *st, yaml_event_t *ev)
{
    if (++st->events % YT_STOP_EVENTS == 0 && scn_stop_requested())
        return diag_set(st->diag, mark_pos(st, st->p.mark), LB_EINTR, "interrupted while loading");
    if (!yaml_parser_parse(&st->p, ev)) return syntax_error(st);
    return 0;
}

static void add_anchor(ystate_t *st, const yaml_char_t *name, scn_node_t *n, size_t weight)
{
    if (!name) return;
    anchor_t a = { lb_strdup((const char *)name), n, weight };
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
        map_append(map, key, kpos, val);
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
    size_t before = st->nodes;
    int rc = 0;
    if (depth > YT_MAX_DEPTH) {
        yaml_event_delete(ev);
        return diag_set(st->diag, pos, LB_EPARSE, "nesting deeper than %d levels", YT_MAX_DEPTH);
    }
    if (++st->nodes > YT_MAX_NODES) {
        yaml_event_delete(ev);
        return diag_set(st->diag, pos, LB_EPARSE, "more than %u YAML nodes; expected a smaller "
                        "file", YT_MAX_NODES);
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
        add_anchor(st, ev->data.scalar.anchor, *out, 1);
        break;
    }
    case YAML_MAPPING_START_EVENT:
        rc = parse_map(st, ev, depth, out);
        if (rc == 0) add_anchor(st, ev->data.mapping_start.anchor, *out, st->nodes - before);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = parse_seq(st, ev, depth, out);
        if (rc == 0) add_anchor(st, ev->data.sequence_start.anchor, *out, st->nodes - before);
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
        /* the alias shares the anchored node; the budget counts it as the copy it means */
        st->nodes += a->weight - 1;
        if (st->nodes > YT_MAX_NODES) {
            rc = diag_set(st->diag, pos, LB_EPARSE, "more than %u YAML nodes after expanding "
                          "aliases (alias '*%s' stands for %zu); expected fewer or smaller "
                          "aliases", YT_MAX_NODES, name, a->weight);
            break;
        }
        *out = yt_ref(a->node);
        break;
    }
    default:
        rc = diag_set(st->diag, pos, LB_EPARSE, "invalid YAML: unexpected event");
        break;
    }
    yaml_event_delete(ev);
    return rc;
}

/* UTF-16 and UTF-32 text (which libyaml would decode) is refused up front, at 1:1: the
 * loader's positions and messages are UTF-8. */
static int check_encoding(ystate_t *st)
{
    const unsigned char *t = (const unsigned char *)st->text;
    const char *what = NULL;
    if (st->len >= 4 && ((t[0] == 0 && t[1] == 0 && t[2] == 0xfe && t[3] == 0xff) ||
                         (t[0] == 0xff && t[1] == 0xfe && t[2] == 0 && t[3] == 0)))
        what = "UTF-32";
    else if (st->len >= 2 && ((t[0] == 0xff && t[1] == 0xfe) || (t[0] == 0xfe && t[1] == 0xff)))
        what = "UTF-16";
    if (!what) return 0;
    return diag_set(st->diag, mark_pos(st, (yaml_mark_t){ 0, 0, 0 }), LB_EPARSE, "%s text "
                    "(byte-order mark %02X %02X); expected UTF-8 (convert it with iconv -f %s "
                    "-t UTF-8)", what, t[0], t[1], what);
}

int yt_parse(const char *text, size_t len, const char *fname, int col_off,
             scn_node_t ***docs, size_t *ndocs, size_t *nodes, scn_diag_t *diag)
{
    ystate_t st = { .text = text, .fname = fname, .col_off = col_off, .len = len, .diag = diag };
    LB_VEC(scn_node_t *) out = { 0 };
    st.end = offset_mark(&st, len);
    for (size_t i = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0; i < len; i++)
        st.nchars += ((unsigned char)text[i] & 0xc0) != 0x80;
    int rc = check_encoding(&st);
    if (rc < 0) return rc;
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
    if (nodes) *nodes = st.nodes;
    return 0;
}

int yt_parse_one(const char *text, const char *fname, int col_off, scn_node_t **out,
                 scn_diag_t *diag)
{
    return yt_parse_one_n(text, strlen(text), fname, col_off, out, diag);
}

int yt_parse_one_n(const char *text, size_t len, const char *fname, int col_off,
                   scn_node_t **out, scn_diag_t *diag)
{
    scn_node_t **docs = NULL;
    size_t n = 0;
    int rc = yt_parse(text, len, fname, col_off, &docs, &n, NULL, diag);
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
elem_pos_t scn_node_key_pos(const scn_node_t *n, size_t i)
{
    return (n->kind == SCN_MAP && i < n->n) ? n->kpos[i] : n->pos;
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

/* The one parser entry of the scn_docs_* loaders: len bytes, so that a NUL byte inside is
 * an error at its position rather than the end of the text; *nodes as yt_parse counts. */
static int docs_parse(const char *text, size_t len, const char *fname, size_t *nodes,
                      scn_docs_t **out, scn_diag_t *diag)
{
    scn_docs_t *d = lb_calloc(1, sizeof *d);
    d->file = lb_strdup(fname ? fname : "<string>");
    int rc = yt_parse(text, len, d->file, 0, &d->docs, &d->n, nodes, diag);
    if (rc < 0) {
        lb_free(d->file);
        lb_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int scn_docs_load_buffer(const char *text, size_t len, const char *fname, scn_docs_t **out,
                         scn_diag_t *diag)
{
    return docs_parse(text, len, fname, NULL, out, diag);
}

int scn_docs_load_string(const char *text, const char *fname, scn_docs_t **out, scn_diag_t *diag)
{
    return docs_parse(text, strlen(text), fname, NULL, out, diag);
}

/* What a file is, for "not a regular file" messages. */
static const char *file_type(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

char *scn_read_file(const char *path, size_t *len, scn_diag_t *diag)
{
    elem_pos_t at = { path, 0, 0 };
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        diag_set(diag, at, LB_EIO, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        diag_set(diag, at, LB_EIO, "cannot read: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        diag_set(diag, at, LB_EIO, "%s; expected a regular YAML file", file_type(sb.st_mode));
        close(fd);
        return NULL;
    }
    if (sb.st_size > SCN_MAX_FILE_BYTES) {
        diag_set(diag, at, LB_EIO, "%lld bytes; expected at most %d (%d MiB)",
                 (long long)sb.st_size, SCN_MAX_FILE_BYTES, SCN_MAX_FILE_BYTES >> 20);
        close(fd);
        return NULL;
    }
    /* read at most the limit + 1 bytes: the file may grow after fstat */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = lb_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > SCN_MAX_FILE_BYTES) break;
            cap = cap * 2 > (size_t)SCN_MAX_FILE_BYTES + 1 ? (size_t)SCN_MAX_FILE_BYTES + 1 : cap * 2;
            buf = lb_realloc(buf, cap + 1);
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            diag_set(diag, at, LB_EIO, "cannot read: %s", strerror(errno));
            lb_free(buf);
            close(fd);
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (n > SCN_MAX_FILE_BYTES) {
        diag_set(diag, at, LB_EIO, "more than %d bytes (it grew while being read); expected at "
                 "most %d MiB", SCN_MAX_FILE_BYTES, SCN_MAX_FILE_BYTES >> 20);
        lb_free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int scn_docs_load(const char *path, scn_docs_t **out, scn_diag_t *diag)
{
    return scn_docs_load_counted(path, out, NULL, NULL, diag);
}

int scn_docs_load_counted(const char *path, scn_docs_t **out, size_t *bytes, size_t *nodes,
                          scn_diag_t *diag)
{
    size_t len;
    char *text = scn_read_file(path, &len, diag);
    if (!text) return LB_EIO;
    scn_src_note(path, text, len);          /* part of the scenario being loaded, if any */
    if (bytes) *bytes = len;
    int rc = docs_parse(text, len, path, nodes, out, diag);
    lb_free(text);
    return rc;
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

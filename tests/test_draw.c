/* test_draw.c -- the pictures module: the escapers (XML for DOT labels and SVG, entity codes
 * for Mermaid) against hostile text, file stems, the helper-process runner (output, exit
 * status, timeout), and a scenario whose path is hostile drawn end to end: topology DOT
 * accepted by Graphviz (when installed) and Mermaid labels that cannot break out, a ladder
 * from a replay with the run's packets, identical text twice. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "draw.h"
#include "helper.h"
#include "scenario.h"

static const char *const hostile = "a\"b'c{d}e[f]g<h>i|j;k#l%m`n&o-->p==q\nr\\s\x01t\xff";

/* fn's output for s (caller frees). */
static char *put(void (*fn)(FILE *, const char *), const char *s)
{
    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    fn(f, s);
    fclose(f);
    buf[sizeof buf - 1] = '\0';
    return strdup(buf);
}

/* Mermaid label text: no character that ends a label or a message, starts a comment or
 * is HTML -- only entity codes and <br/> for those. */
static bool mermaid_safe(const char *s)
{
    while (*s) {
        if (*s == '#') {
            const char *e = s + 1;
            while (*e >= '0' && *e <= '9') e++;
            if (e == s + 1 || *e != ';') return false;
            s = e + 1;
        } else if (strncmp(s, "<br/>", 5) == 0) {
            s += 5;
        } else if (strchr("\"<>;%`&\n", *s)) {
            return false;
        } else {
            s++;
        }
    }
    return true;
}

START_TEST(escape_xml)
{
    char *t = put(draw_put_xml, hostile);
    ck_assert_ptr_null(strpbrk(t, "<>\"'\x01"));
    ck_assert_ptr_nonnull(strstr(t, "a&quot;b&#39;c{d}e[f]g&lt;h&gt;i|j;k#l%m`n&amp;o--&gt;p==q\nr\\s t"));
    ck_assert_ptr_nonnull(strstr(t, "\xef\xbf\xbd"));       /* invalid UTF-8: U+FFFD */
    /* every '&' starts an entity */
    for (const char *a = strchr(t, '&'); a; a = strchr(a + 1, '&'))
        ck_assert(strncmp(a, "&amp;", 5) == 0 || strncmp(a, "&lt;", 4) == 0 ||
                  strncmp(a, "&gt;", 4) == 0 || strncmp(a, "&quot;", 6) == 0 ||
                  strncmp(a, "&#39;", 5) == 0);
    free(t);
    t = put(draw_put_xml, "caf\xc3\xa9 \xe2\x86\x92 ok");   /* UTF-8 kept */
    ck_assert_str_eq(t, "caf\xc3\xa9 \xe2\x86\x92 ok");
    free(t);
}
END_TEST

START_TEST(escape_mermaid)
{
    char *t = put(draw_put_mermaid, hostile);
    ck_assert_msg(mermaid_safe(t), "unsafe: %s", t);
    ck_assert_ptr_nonnull(strstr(t, "a#34;b'c{d}e[f]g#60;h#62;i|j#59;k#35;l#37;m#96;n#38;o-\u2192p==q"
                                    "<br/>r\\s t"));
    free(t);
    t = put(draw_put_mermaid, "GET /app1 (flow 9): 1.5 ms");
    ck_assert_str_eq(t, "GET /app1 (flow 9): 1.5 ms");
    free(t);
}
END_TEST

START_TEST(stems)
{
    scn_t *s;
    scn_diag_t d;
    const char *y =
        "name: st\nseed: 1\nduration: 1s\nnodes: { h: { type: host } }\n"
        "variants: { a-b: {}, a_b: {} }\n";
    ck_assert_msg(scn_load_string(y, "st.yaml", &s, &d, NULL) == 0, "%s", d.msg);
    char b[64];
    draw_variant_stem(s, 0, b, sizeof b);
    ck_assert_str_eq(b, "a-b");
    draw_variant_stem(s, 1, b, sizeof b);
    ck_assert_str_eq(b, "a_b");
    scn_free(s);
}
END_TEST

START_TEST(helper_runs)
{
    char cat[4096], sh[4096], err[512];
    if (!rep_helper_find("cat", cat, sizeof cat) || !rep_helper_find("sh", sh, sizeof sh))
        return;
    ck_assert(!rep_helper_find("no-such-program-lbchain", err, sizeof err));
    static const char *const a_cat[] = {"cat", NULL};
    char *out;
    size_t len;
    /* more than a pipe's buffer each way: the poll loop must interleave */
    size_t n = 1 << 20;
    char *in = malloc(n);
    for (size_t i = 0; i < n; i++) in[i] = (char)('a' + i % 26);
    ck_assert_int_eq(rep_helper_run(cat, a_cat, in, n, &out, &len, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(in, out, n) == 0);
    lb_free(out);
    free(in);
    /* a failure: its message */
    static const char *const a_fail[] = {"sh", "-c", "echo 'bad input' >&2; exit 3", NULL};
    ck_assert_int_eq(rep_helper_run(sh, a_fail, "", 0, &out, &len, NULL, err, sizeof err), LB_EIO);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "sh failed: bad input"), "%s", err);
    /* a hang: killed at the deadline, with what it started */
    static const char *const a_hang[] = {"sh", "-c", "sleep 30 & sleep 30", NULL};
    rep_helper_opts_t o = {0.3, NULL};
    ck_assert_int_eq(rep_helper_run(sh, a_hang, "", 0, &out, &len, &o, err, sizeof err),
                     LB_ETIMEDOUT);
    ck_assert_msg(strstr(err, "did not finish in 0.3 s"), "%s", err);
    /* stopped */
    volatile sig_atomic_t stop = 1;
    rep_helper_opts_t so = {10, &stop};
    ck_assert_int_eq(rep_helper_run(sh, a_hang, "", 0, &out, &len, &so, err, sizeof err),
                     LB_ESTATE);
}
END_TEST

/* ---- a scenario drawn end to end ------------------------------------------------------- */

static const char *const scenario =
    "name: hostile\nseed: 1\nduration: 2s\n"
    "nodes:\n  client: { type: host }\n  r1: { type: router }\n  web: { type: host }\n"
    "links:\n  - { between: [client, r1] }\n  - { between: [r1, web] }\n"
    "apps:\n  site: { type: http-server, on: web, port: 80,\n"
    "         locations: [ { path: '/x\"{y}-->z;#%', status: 200 } ] }\n"
    "traffic:\n  browse: { type: http-client, from: client, to: web, port: 80,\n"
    "            path: '/x\"{y}-->z;#%', rate: 5/s }\n"
    "variants:\n  v1: {}\n";

static char *tmpdir(void)
{
    char *d = lb_strdup("/tmp/lbchain-draw-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void rmtree(char *d)
{
    DIR *dir = opendir(d);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char *p = lb_sprintf("%s/%s", d, e->d_name);
        unlink(p);
        lb_free(p);
    }
    if (dir) closedir(dir);
    rmdir(d);
    lb_free(d);
}

static char *slurp(const char *dir, const char *name)
{
    char *p = lb_sprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    lb_free(p);
    if (!f) return NULL;
    LB_VEC(char) b = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        lb_vec_reserve(&b, b.n + n + 1);
        memcpy(b.v + b.n, buf, n);
        b.n += n;
    }
    fclose(f);
    lb_vec_reserve(&b, b.n + 1);
    b.v[b.n] = '\0';
    return b.v;
}

/* Every label of a Mermaid file ("..." after [ or |, Note/participant/message text) safe. */
static void check_mermaid(const char *text)
{
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        char *line = lb_strndup(l, n);
        const char *q = strchr(line, '"');
        if (q) {                                /* ["..."] or |"..."| */
            const char *e = strchr(q + 1, '"');
            ck_assert_msg(e, "unterminated label: %s", line);
            char *lab = lb_strndup(q + 1, (size_t)(e - q - 1));
            ck_assert_msg(mermaid_safe(lab), "unsafe label: %s", line);
            ck_assert_msg(!strchr(e + 1, '"') || strstr(e + 1, "[\"") || strstr(e + 1, "|\""),
                          "stray quote: %s", line);
            lb_free(lab);
        }
        const char *colon = strstr(line, ": ");
        if (!q && colon && (strstr(line, "->>") || strstr(line, "-x") || strstr(line, "Note ")))
            ck_assert_msg(mermaid_safe(colon + 2), "unsafe text: %s", line);
        ck_assert_msg(!strstr(line, "/x\""), "raw scenario text: %s", line);
        lb_free(line);
        l += n + (l[n] ? 1 : 0);
    }
}

START_TEST(hostile_scenario)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_msg(scn_load_string(scenario, "hostile.yaml", &s, &d, NULL) == 0, "%s", d.msg);
    char *dir = tmpdir();
    /* the design */
    ck_assert_int_eq(draw_design_write(s, 0, 1, dir, "topology", &d), 0);
    char *dot = slurp(dir, "topology.dot"), *mmd = slurp(dir, "topology.mmd");
    ck_assert_ptr_nonnull(dot);
    ck_assert_ptr_nonnull(strstr(dot, "browse: /x&quot;{y}--&gt;z;#%"));
    ck_assert_ptr_null(strstr(dot, "/x\""));
    ck_assert_ptr_nonnull(strstr(mmd, "flowchart LR"));
    ck_assert_ptr_nonnull(strstr(mmd, "browse: /x#34;{y}-\u2192z#59;#35;#37;"));
    check_mermaid(mmd);
    /* the run, with the recorder, and its pictures */
    scn_run_t *r;
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    char err[512];
    draw_rec_t *rec = draw_rec_attach(r, err, sizeof err);
    ck_assert_ptr_nonnull(rec);
    scn_run_execute(r, NULL, NULL);
    rep_variant_t v;
    memset(&v, 0, sizeof v);
    ck_assert_int_eq(draw_rec_write(rec, s, 0, r, &v, dir, err, sizeof err), 0);
    scn_run_free(r);
    ck_assert_int_eq(draw_rec_finish(rec, s, 0, 1, dir, NULL, err, sizeof err), 0);
    draw_rec_free(rec);
    char *lsvg = slurp(dir, "ladder-v1.svg"), *lmmd = slurp(dir, "ladder-v1.mmd");
    ck_assert_ptr_nonnull(lsvg);
    ck_assert_ptr_nonnull(lmmd);
    ck_assert_ptr_nonnull(strstr(lsvg, "GET /x&quot;{y}--&gt;z;#%"));
    ck_assert_ptr_nonnull(strstr(lsvg, ">SYN<"));
    ck_assert_ptr_nonnull(strstr(lsvg, ">HTTP 200 OK<"));
    ck_assert_ptr_null(strstr(lsvg, "/x\""));
    ck_assert_ptr_nonnull(strstr(lmmd, "sequenceDiagram"));
    ck_assert_ptr_nonnull(strstr(lmmd, "participant"));
    check_mermaid(lmmd);
    /* the same again: the same bytes */
    char *dir2 = tmpdir();
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    rec = draw_rec_attach(r, err, sizeof err);
    scn_run_execute(r, NULL, NULL);
    ck_assert_int_eq(draw_rec_write(rec, s, 0, r, &v, dir2, err, sizeof err), 0);
    scn_run_free(r);
    ck_assert_int_eq(draw_rec_finish(rec, s, 0, 1, dir2, NULL, err, sizeof err), 0);
    draw_rec_free(rec);
    char *lsvg2 = slurp(dir2, "ladder-v1.svg"), *t1 = slurp(dir, "topology-v1.dot"),
         *t2 = slurp(dir2, "topology-v1.dot");
    ck_assert_str_eq(lsvg, lsvg2);
    ck_assert_str_eq(t1, t2);
    /* Graphviz accepts the DOT */
    char prog[4096];
    if (rep_helper_find("dot", prog, sizeof prog)) {
        ck_assert_int_eq(draw_render_file(dir, "topology", NULL, err, sizeof err), 0);
        char *svg = slurp(dir, "topology.svg");
        ck_assert_ptr_nonnull(svg);
        ck_assert_ptr_nonnull(strstr(svg, "browse: /x&quot;{y}&#45;&#45;&gt;z;#%"));
        lb_free(svg);
    } else {
        fprintf(stderr, "test_draw: Graphviz not installed: DOT not rendered\n");
    }
    lb_free(dot);
    lb_free(mmd);
    lb_free(lsvg);
    lb_free(lsvg2);
    lb_free(lmmd);
    lb_free(t1);
    lb_free(t2);
    rmtree(dir);
    rmtree(dir2);
    scn_free(s);
}
END_TEST

Suite *suite_draw(void)
{
    Suite *s = suite_create("draw");
    TCase *tc = tcase_create("escape");
    tcase_add_test(tc, escape_xml);
    tcase_add_test(tc, escape_mermaid);
    tcase_add_test(tc, stems);
    suite_add_tcase(s, tc);
    tc = tcase_create("helper");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, helper_runs);
    suite_add_tcase(s, tc);
    tc = tcase_create("scenario");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hostile_scenario);
    suite_add_tcase(s, tc);
    return s;
}

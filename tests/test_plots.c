/* test_plots.c -- plots and report.html: series from a real run, their JSON round trip,
 * PNG/SVG from gnuplot on synthetic data (byte-identical twice), hostile names that must
 * not run commands, gnuplot missing or failing, the HTML's escaping and embedded plots.
 * Checks that need gnuplot are skipped with a message without it. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "plots.h"
#include "explain.h"

/* ---- helpers ------------------------------------------------------------------------------ */
static char *tmpdir_new(void)
{
    char *d = lb_strdup("/tmp/lbchain-plots-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void tmpdir_free(char *d)
{
    DIR *dir = opendir(d);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = lb_sprintf("%s/%s", d, e->d_name);
        unlink(p);
        lb_free(p);
    }
    if (dir) closedir(dir);
    rmdir(d);
    lb_free(d);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = lb_malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = '\0';
    if (len) *len = got;
    return b;
}

static char *slurp2(const char *dir, const char *name)
{
    char *p = lb_sprintf("%s/%s", dir, name);
    char *t = slurp(p, NULL);
    lb_free(p);
    return t;
}

/* Whether dir/name (asserted to exist) contains needle. */
static bool file_has(const char *dir, const char *name, const char *needle)
{
    char *t = slurp2(dir, name);
    ck_assert_msg(t != NULL, "%s/%s missing", dir, name);
    bool r = strstr(t, needle) != NULL;
    lb_free(t);
    return r;
}

static bool exists(const char *dir, const char *name)
{
    char *p = lb_sprintf("%s/%s", dir, name);
    struct stat st;
    bool r = stat(p, &st) == 0;
    lb_free(p);
    return r;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static bool have_gnuplot(const char *test)
{
    char gp[4096];
    if (rep_plots_gnuplot(gp, sizeof gp)) return true;
    fprintf(stderr, "plots: %s: gnuplot not on PATH, gnuplot-dependent checks skipped\n", test);
    return false;
}

static scn_t *scenario(const char *text)
{
    scn_t *s;
    scn_diag_t d;
    elem_register_builtin();
    int rc = scn_load_string(text, "t.yaml", &s, &d, NULL);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    return s;
}

/* Frees what a test made: its output directory (when not NULL), n variants and s. */
static void cleanup(char *dir, rep_variant_t *v, int n, scn_t *s)
{
    if (dir) tmpdir_free(dir);
    for (int i = 0; i < n; i++) rep_variant_free(&v[i]);
    scn_free(s);
}

/* PATH as it is now (lb_free it); path_restore puts it back. */
static char *path_save(void)
{
    return lb_strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
}

static void path_restore(char *path)
{
    setenv("PATH", path, 1);
    lb_free(path);
}

/* A run of variant 0 of s, seed 1 (asserting it is created). */
static scn_run_t *new_run(scn_t *s)
{
    scn_run_t *r;
    scn_diag_t d;
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    return r;
}

/* A variant with synthetic series: `secs` one-second buckets of one source, 2xx then
 * 5xx after half-time, a latency CDF, two health series, and hops when hops > 0. */
static void synth_variant(rep_variant_t *v, const char *name, const char *source, int secs,
                          int hops)
{
    memset(v, 0, sizeof *v);
    v->name = lb_strdup(name);
    v->seed = 42;
    v->complete = true;
    rep_plot_t *p = rep_plot_new(SIM_S, (size_t)secs, secs * SIM_S);
    int s = rep_plot_source(p, source);
    for (int b = 0; b < secs; b++) {
        p->sources.v[s].counts[b * M_CLASS_COUNT + (b < secs / 2 ? M_2XX : M_5XX)] = 20;
        p->sources.v[s].counts[b * M_CLASS_COUNT + M_CONNECT_TIMEOUT] = (uint64_t)(b % 3);
    }
    for (int k = 0; k <= 20; k++) {
        rep_cdf_point_t pt = {0.001 * (1 + k * k), k / 20.0};
        lb_vec_push(&p->cdf, pt);
    }
    rep_plot_health(p, "ilb/http-30575", "aks-user-0", 5 * SIM_S, "initial", "down");
    rep_plot_health(p, "ilb/http-30575", "aks-user-1", 5 * SIM_S, "initial", "up");
    rep_plot_health(p, "appgw-0", "10.224.0.100", 60 * SIM_S, "up", "down");
    v->plot = p;
    v->plot_free = rep_plot_free;
    v->requests = (uint64_t)secs * 21;
    v->by_class[M_2XX] = (uint64_t)(secs / 2) * 20;
    v->by_class[M_5XX] = (uint64_t)(secs - secs / 2) * 20;
    v->latency_p50 = 0.1;
    v->latency_p99 = 0.4;
    if (hops) {
        v->n_hops = (size_t)hops;
        v->hops = lb_calloc((size_t)hops, sizeof *v->hops);
        for (int i = 0; i < hops; i++) {
            snprintf(v->hops[i].where, sizeof v->hops[i].where, "node-%d", i);
            v->hops[i].t = 10 * SIM_S + i * 250 * SIM_US;
        }
        snprintf(v->hops_title, sizeof v->hops_title, "GET /app1 (flow 12): %.3f ms",
                 (hops - 1) * 0.25);
    }
}

/* ---- collection from a run ------------------------------------------------------------- */
/* 10 requests per second at constant spacing from 50 ms over a 1 ms link, for 3 s. */
static const char *run_yaml =
    "name: plots-run\n"
    "duration: 3s\n"
    "nodes:\n"
    "  client: { type: host }\n"
    "  web: { type: host }\n"
    "links:\n"
    "  - { between: [client, web], latency: 1ms }\n"
    "apps:\n"
    "  site: { type: http-server, on: web, locations: [ { path: / } ] }\n"
    "traffic:\n"
    "  browse: { type: http-client, from: client, to: web, rate: 10/s, arrival: constant,\n"
    "            start: 50ms }\n";

START_TEST(collect_from_run)
{
    scn_t *s = scenario(run_yaml);
    scn_run_t *r = new_run(s);
    rep_variant_t v;
    memset(&v, 0, sizeof v);
    rep_plots_attach(r, &v);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    /* health transitions reach the sink through the run's metrics hooks */
    metrics_t *m = scn_run_metrics(r);
    m_health_t h1 = {"lb/http", "web", 2 * SIM_S, "initial", "down", "HTTP 404"};
    m_health_t h2 = {"lb/http", "web", 2500 * SIM_MS, "down", "up", "HTTP 200"};
    metrics_health(m, &h1);
    metrics_health(m, &h2);
    scn_verdict_t *vd = NULL;
    size_t nv = scn_run_check(r, &vd);
    /* rep_variant_collect clears v: the series must survive it */
    rep_variant_collect(&v, r, "default", 1, vd, nv);
    rep_plots_collect(r, &v);
    const rep_plot_t *p = v.plot;
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq((void *)v.plot_free, (void *)rep_plot_free);
    ck_assert(p->complete);
    ck_assert_int_eq(p->end, 3 * SIM_S);
    ck_assert_int_eq(p->width, SIM_S);
    ck_assert_uint_eq(p->n_buckets, 3);
    ck_assert_uint_eq(p->sources.n, 1);
    ck_assert_str_eq(p->sources.v[0].name, "browse");
    for (size_t b = 0; b < 3; b++) {
        ck_assert_uint_eq(p->sources.v[0].counts[b * M_CLASS_COUNT + M_2XX], 10);
        for (int c = 0; c < M_CLASS_COUNT; c++)
            ck_assert_uint_eq(p->sources.v[0].counts[b * M_CLASS_COUNT + c],
                              metrics_bucket(m, 0, b, c));
    }
    /* the CDF: from q = 0 at the fastest request to q = 1 at the slowest, never falling;
     * a request over a 1 ms link takes at least one round trip */
    ck_assert_uint_ge(p->cdf.n, 2);
    ck_assert_double_eq(p->cdf.v[0].q, 0);
    ck_assert_double_eq(p->cdf.v[p->cdf.n - 1].q, 1);
    m_window_t all = {0, SIM_TIME_MAX};
    ck_assert_double_eq_tol(p->cdf.v[p->cdf.n - 1].latency_s,
                            (double)metrics_latency_q(m, -1, M_ALL_CLASSES, 1, all) / SIM_S, 1e-12);
    for (size_t k = 1; k < p->cdf.n; k++) {
        ck_assert(p->cdf.v[k].q > p->cdf.v[k - 1].q);
        ck_assert(p->cdf.v[k].latency_s > p->cdf.v[k - 1].latency_s || k == 1);
    }
    ck_assert(p->cdf.v[0].latency_s >= 0.002 * 0.99 && p->cdf.v[0].latency_s < 0.05);
    /* health: "initial" since 0, down at 2 s, up at 2.5 s */
    ck_assert_uint_eq(p->health.n, 1);
    ck_assert_str_eq(p->health.v[0].checker, "lb/http");
    ck_assert_uint_eq(p->health.v[0].changes.n, 3);
    ck_assert_int_eq(p->health.v[0].changes.v[0].t, 0);
    ck_assert_int_eq(p->health.v[0].changes.v[0].state, REP_HEALTH_INITIAL);
    ck_assert_int_eq(p->health.v[0].changes.v[1].t, 2 * SIM_S);
    ck_assert_int_eq(p->health.v[0].changes.v[1].state, REP_HEALTH_DOWN);
    ck_assert_int_eq(p->health.v[0].changes.v[2].state, REP_HEALTH_UP);
    scn_run_free(r);
    rep_variant_free(&v);
    scn_free(s);
}
END_TEST

/* Collect without attach: counts and CDF, no health; detach of an unknown run is harmless. */
START_TEST(collect_without_attach)
{
    scn_t *s = scenario(run_yaml);
    scn_run_t *r = new_run(s);
    rep_plots_detach(r);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    rep_variant_t v;
    memset(&v, 0, sizeof v);
    rep_plots_collect(r, &v);
    rep_plots_collect(r, &v);               /* again: replaces, no leak */
    const rep_plot_t *p = v.plot;
    ck_assert_uint_eq(p->health.n, 0);
    uint64_t total = 0;
    for (size_t b = 0; b < p->n_buckets; b++)
        total += p->sources.v[0].counts[b * M_CLASS_COUNT + M_2XX];
    ck_assert_uint_eq(total, 30);
    scn_run_free(r);
    rep_plot_free(v.plot);
    scn_free(s);
}
END_TEST

START_TEST(health_limit)
{
    rep_plot_t *p = rep_plot_new(SIM_S, 10, 10 * SIM_S);
    for (int i = 0; i < REP_PLOT_MAX_CHANGES + 5; i++)
        rep_plot_health(p, "c", "t", i, NULL, i % 2 ? "up" : "down");
    ck_assert_uint_eq(p->n_changes, REP_PLOT_MAX_CHANGES);
    ck_assert(p->health_truncated);
    rep_plot_health(p, "c", "t2", 1, NULL, "weird");
    ck_assert_uint_eq(p->health.n, 1);      /* dropped whole, new series too */
    rep_plot_free(p);
}
END_TEST

/* ---- serialising ------------------------------------------------------------------------ */
START_TEST(serialize_round_trip)
{
    rep_variant_t v;
    synth_variant(&v, "a", "browse", 6, 0);
    rep_plot_t *p = v.plot;
    p->complete = false;
    p->end = 5500 * SIM_MS;
    char *text = rep_plot_serialize(p);
    rep_plot_t *q;
    ck_assert_int_eq(rep_plot_deserialize(text, &q), 0);
    ck_assert_int_eq(q->width, p->width);
    ck_assert_uint_eq(q->n_buckets, 6);
    ck_assert_int_eq(q->end, 5500 * SIM_MS);
    ck_assert(!q->complete);
    ck_assert_uint_eq(q->sources.n, 1);
    ck_assert_mem_eq(q->sources.v[0].counts, p->sources.v[0].counts,
                     6 * M_CLASS_COUNT * sizeof(uint64_t));
    ck_assert_uint_eq(q->cdf.n, p->cdf.n);
    for (size_t k = 0; k < p->cdf.n; k++) {
        ck_assert_double_eq(q->cdf.v[k].latency_s, p->cdf.v[k].latency_s);
        ck_assert_double_eq(q->cdf.v[k].q, p->cdf.v[k].q);
    }
    ck_assert_uint_eq(q->health.n, 3);
    ck_assert_uint_eq(q->n_changes, p->n_changes);
    ck_assert_str_eq(q->health.v[2].checker, "appgw-0");
    ck_assert_int_eq(q->health.v[2].changes.v[1].t, 60 * SIM_S);
    ck_assert_int_eq(q->health.v[2].changes.v[1].state, REP_HEALTH_DOWN);
    char *again = rep_plot_serialize(q);
    ck_assert_str_eq(again, text);
    free(again);
    free(text);
    rep_plot_free(q);
    rep_variant_free(&v);
}
END_TEST

START_TEST(deserialize_garbage)
{
    static const char *const bad[] = {
        "", "{", "[]", "{}", "null",
        "{\"width\":0,\"buckets\":1,\"end\":0}",
        "{\"width\":1e9,\"buckets\":-1,\"end\":0}",
        "{\"width\":1e9,\"buckets\":1e12,\"end\":0}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"sources\":{}}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"sources\":[{\"name\":1,\"counts\":[]}]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"sources\":[{\"name\":\"a\",\"counts\":[[2,0,1]]}]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"sources\":[{\"name\":\"a\",\"counts\":[[0,10,1]]}]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"sources\":[{\"name\":\"a\",\"counts\":[[0,1]]}]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"sources\":[{\"name\":\"a\",\"counts\":[[0.5,1,1]]}]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"cdf\":[[1,2]]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"cdf\":[[\"x\",0.5]]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"health\":[{\"checker\":\"c\",\"target\":\"t\","
        "\"t\":[1,2],\"s\":[1]}]}",
        "{\"width\":1e9,\"buckets\":2,\"end\":0,\"health\":[{\"checker\":\"c\",\"target\":\"t\","
        "\"t\":[1],\"s\":[7]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rep_plot_t *p = (rep_plot_t *)1;
        ck_assert_msg(rep_plot_deserialize(bad[i], &p) == LB_EPARSE, "accepted: %s", bad[i]);
        ck_assert_ptr_null(p);
    }
    rep_plot_t *p;
    ck_assert_int_eq(rep_plot_deserialize(NULL, &p), LB_EPARSE);
    ck_assert_int_eq(rep_plot_deserialize("{\"width\":1e9,\"buckets\":0,\"end\":0}", &p), 0);
    ck_assert_uint_eq(p->n_buckets, 0);
    rep_plot_free(p);
}
END_TEST


/* A sweep too big for a figure per run: one entry per variant and grid point, its
 * outcomes summed (drawn as their mean), its latency quantiles averaged, its first seed's
 * health and hops; a small one is drawn run by run. */
START_TEST(sweep_view)
{
    enum { N = 2 * (REP_PLOTS_PER_RUN_MAX / 2 + 1) };        /* just over the limit */
    rep_variant_t v[N];
    for (int i = 0; i < N; i++) {
        synth_variant(&v[i], i % 2 ? "b" : "a", "browse", 4, i < 2 ? 3 : 0);
        v[i].seed = 42 + (uint64_t)i / 2;
        rep_plot_t *p = v[i].plot;
        for (size_t k = 0; k < p->cdf.n; k++) p->cdf.v[k].latency_s = 0.001 * (double)(i / 2 + 1);
    }
    size_t m;
    ck_assert_ptr_null(rep_plots_view(v, REP_PLOTS_PER_RUN_MAX, &m));   /* small: as it is */
    rep_variant_t *w = rep_plots_view(v, N, &m);
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(m, 2);
    ck_assert_str_eq(w[0].name, "a");
    ck_assert_str_eq(w[1].name, "b");
    const rep_plot_t *p = w[1].plot;
    ck_assert_uint_eq(p->runs, N / 2);
    ck_assert_uint_eq(p->sources.v[0].counts[0 * M_CLASS_COUNT + M_2XX], 20 * (N / 2));
    double mean = 0;                                 /* seeds 1..N/2 milliseconds */
    for (int k = 1; k <= N / 2; k++) mean += 0.001 * k;
    ck_assert_double_eq_tol(p->cdf.v[3].latency_s, mean / (N / 2), 1e-12);
    ck_assert_uint_eq(p->health.n, 3);
    ck_assert_uint_eq(w[1].n_hops, 3);                  /* seed 42's */
    ck_assert_uint_eq(w[1].seed, 42);
    char label[64];
    rep_plots_label(w, m, 1, label, sizeof label);
    char want[64];
    snprintf(want, sizeof want, "b (%d seeds)", N / 2);
    ck_assert_str_eq(label, want);
    rep_plot_file_t *fs;
    size_t nf = rep_plots_files(w, m, &fs);
    ck_assert_uint_eq(nf, 2 + 2 * 2);                   /* cdf, outcomes, health+hops x 2 */
    lb_free(fs);
    rep_plots_view_free(w, m);
    for (int i = 0; i < N; i++) rep_variant_free(&v[i]);
}
END_TEST

/* ---- file names and strings ------------------------------------------------------------- */
START_TEST(file_names)
{
    rep_variant_t v[4];
    synth_variant(&v[0], "as-deployed", "browse", 4, 3);
    synth_variant(&v[1], "../a b", "browse", 4, 1);        /* one hop: no hops plot */
    synth_variant(&v[2], "as-deployed", "browse", 4, 0);   /* same name, other seed */
    v[2].seed = 43;
    synth_variant(&v[3], "x", "browse", 4, 0);
    rep_plot_free(v[3].plot);
    v[3].plot = NULL;                                       /* nothing collected */
    rep_plot_file_t *fs;
    size_t nf = rep_plots_files(v, 4, &fs);
    ck_assert_uint_eq(nf, 6);
    ck_assert_str_eq(fs[0].name, "latency-cdf");
    ck_assert_int_eq(fs[0].variant, -1);
    ck_assert_str_eq(fs[1].name, "outcomes");
    ck_assert_str_eq(fs[2].name, "health-as-deployed-seed42");
    ck_assert_str_eq(fs[3].name, "hops-as-deployed-seed42");
    ck_assert_int_eq(fs[3].variant, 0);
    ck_assert_str_eq(fs[4].name, "health-_._a_b");
    ck_assert_str_eq(fs[5].name, "health-as-deployed-seed43");
    char label[64];
    rep_plots_label(v, 4, 2, label, sizeof label);
    ck_assert_str_eq(label, "as-deployed (seed 43)");
    rep_plots_label(v, 4, 1, label, sizeof label);
    ck_assert_str_eq(label, "../a b");
    lb_free(fs);
    ck_assert_uint_eq(rep_plots_files(v + 3, 1, &fs), 0);
    ck_assert_ptr_null(fs);
    for (int i = 0; i < 4; i++) rep_variant_free(&v[i]);
}
END_TEST

START_TEST(utf8_char)
{
    ck_assert_uint_eq(rep_utf8_char("a"), 1);
    ck_assert_uint_eq(rep_utf8_char(""), 0);
    ck_assert_uint_eq(rep_utf8_char("\xc3\xa9"), 2);            /* é */
    ck_assert_uint_eq(rep_utf8_char("\xe2\x86\x92"), 3);        /* → */
    ck_assert_uint_eq(rep_utf8_char("\xf0\x9f\x98\x80"), 4);    /* emoji */
    ck_assert_uint_eq(rep_utf8_char("\xc3"), 0);                /* cut */
    ck_assert_uint_eq(rep_utf8_char("\xc0\xaf"), 0);            /* overlong '/' */
    ck_assert_uint_eq(rep_utf8_char("\xed\xa0\x80"), 0);        /* surrogate */
    ck_assert_uint_eq(rep_utf8_char("\xf4\x90\x80\x80"), 0);    /* > U+10FFFF */
    ck_assert_uint_eq(rep_utf8_char("\xff"), 0);
}
END_TEST

/* ---- gnuplot ------------------------------------------------------------------------------ */
static bool is_png(const char *dir, const char *name)
{
    char *t = slurp2(dir, name);
    bool ok = t && !memcmp(t, "\x89PNG\r\n\x1a\n", 8);
    lb_free(t);
    return ok;
}

static bool is_svg(const char *dir, const char *name)
{
    char *t = slurp2(dir, name);
    bool ok = t && strstr(t, "<svg") && strstr(t, "</svg>");
    lb_free(t);
    return ok;
}

START_TEST(write_png_and_svg)
{
    if (!have_gnuplot("write_png_and_svg")) return;
    scn_t *s = scenario("name: plots-synth\nduration: 40s\n");
    rep_variant_t v[2];
    synth_variant(&v[0], "as-deployed", "browse", 40, 6);
    synth_variant(&v[1], "etp-local", "browse", 40, 0);
    char *dir = tmpdir_new(), err[256];
    ck_assert_int_eq(rep_plots_write(dir, s, v, 2, NULL, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    static const char *const want[] = {"latency-cdf", "outcomes", "health-as-deployed",
                                       "hops-as-deployed", "health-etp-local"};
    for (size_t i = 0; i < 5; i++) {
        char png[96], svg[96], tmp[96];
        snprintf(png, sizeof png, "%s.png", want[i]);
        snprintf(svg, sizeof svg, "%s.svg", want[i]);
        ck_assert_msg(is_png(dir, png), "%s is not a PNG", png);
        ck_assert_msg(is_svg(dir, svg), "%s is not an SVG", svg);
        snprintf(tmp, sizeof tmp, ".%s.png.tmp", want[i]);
        ck_assert(!exists(dir, tmp));
    }
    ck_assert(!exists(dir, "hops-etp-local.png"));
    /* what the plots say: titles, legend entries, hop labels */
    ck_assert(file_has(dir, "latency-cdf.svg", "plots-synth: latency of completed requests (CDF)"));
    ck_assert(file_has(dir, "latency-cdf.svg", "etp-local"));
    ck_assert(file_has(dir, "outcomes.svg", "connect timeout"));
    ck_assert(file_has(dir, "outcomes.svg", ">5xx<"));
    ck_assert(!file_has(dir, "outcomes.svg", ">4xx<"));     /* no 4xx in the data */
    ck_assert(file_has(dir, "hops-as-deployed.svg", "node-0 \xe2\x86\x92 node-1"));
    ck_assert(file_has(dir, "hops-as-deployed.svg", "0.250 ms"));
    ck_assert(file_has(dir, "hops-as-deployed.svg", "GET /app1 (flow 12): 1.250 ms"));
    ck_assert(file_has(dir, "health-as-deployed.svg", "ilb/http-30575  aks-user-0"));
    ck_assert(file_has(dir, "health-as-deployed.svg", "not probed yet"));
    cleanup(dir, v, 2, s);
}
END_TEST

START_TEST(write_deterministic)
{
    if (!have_gnuplot("write_deterministic")) return;
    scn_t *s = scenario("name: plots-synth\nduration: 20s\n");
    rep_variant_t v[2];
    synth_variant(&v[0], "a", "browse", 20, 4);
    synth_variant(&v[1], "b", "browse", 20, 4);
    char *d1 = tmpdir_new(), *d2 = tmpdir_new(), err[256];
    ck_assert_int_eq(rep_plots_write(d1, s, v, 2, NULL, err, sizeof err), 0);
    ck_assert_int_eq(rep_plots_write(d2, s, v, 2, NULL, err, sizeof err), 0);
    ck_assert_int_eq(rep_html_write(d1, s, v, 2, NULL, err, sizeof err), 0);
    ck_assert_int_eq(rep_html_write(d2, s, v, 2, NULL, err, sizeof err), 0);
    static const char *const files[] = {"latency-cdf.png", "latency-cdf.svg", "outcomes.png",
                                        "outcomes.svg", "health-a.png", "hops-b.svg",
                                        "report.html"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t l1 = 0, l2 = 0;
        char *p1 = lb_sprintf("%s/%s", d1, files[i]), *p2 = lb_sprintf("%s/%s", d2, files[i]);
        char *a = slurp(p1, &l1), *b = slurp(p2, &l2);
        ck_assert_msg(a && b && l1 == l2 && l1 > 0 && !memcmp(a, b, l1), "%s differs", files[i]);
        lb_free(a), lb_free(b), lb_free(p1), lb_free(p2);
    }
    tmpdir_free(d1);
    tmpdir_free(d2);
    cleanup(NULL, v, 2, s);
}
END_TEST

/* Names that would run a command if they ended gnuplot's string: the file must not appear,
 * and the plots must still be drawn with the names as text. */
START_TEST(hostile_names)
{
    if (!have_gnuplot("hostile_names")) return;
    char *dir = tmpdir_new(), err[512];
    struct stat st;
    bool pwned_before = stat("/tmp/pwned", &st) == 0;
    char *n0 = lb_strdup("x\" ; system \"touch /tmp/pwned");
    char *n1 = lb_sprintf("y' ; system 'touch %s/pwned1' ; '", dir);
    char *n2 = lb_sprintf("z`touch %s/pwned2`\\' @n\nsystem 'touch %s/pwned3'\n\x01\xff", dir, dir);
    char *src = lb_sprintf("s'; system('touch %s/pwned4'); '", dir);
    scn_t *s = scenario("name: plots-hostile\nduration: 10s\n");
    rep_variant_t v[3];
    synth_variant(&v[0], n0, src, 10, 3);
    synth_variant(&v[1], n1, src, 10, 3);
    synth_variant(&v[2], n2, "other", 10, 0);
    snprintf(v[0].hops[1].where, sizeof v[0].hops[1].where, "h' . system('touch %s/pwned5') . '",
             dir);
    snprintf(v[1].hops_title, sizeof v[1].hops_title, "t' ; system 'touch %s/pwned6' ; '", dir);
    rep_plot_health(v[2].plot, "c'; system 'touch /tmp/x'; '", "t\\'\n!touch /tmp/y", SIM_S,
                    NULL, "up");
    int rc = rep_plots_write(dir, s, v, 3, NULL, err, sizeof err);
    if (!pwned_before) ck_assert_msg(stat("/tmp/pwned", &st) != 0, "/tmp/pwned was created");
    for (int k = 1; k <= 6; k++) {
        char name[24];
        snprintf(name, sizeof name, "pwned%d", k);
        ck_assert_msg(!exists(dir, name), "%s was created", name);
    }
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert(file_has(dir, "latency-cdf.svg", "x\" ; system \"touch /tmp/pwned"));
    ck_assert(file_has(dir, "latency-cdf.svg", "y' ; system 'touch"));
    /* the names still label the plots, quotes intact, newline and bad bytes neutralised */
    ck_assert(file_has(dir, "outcomes.svg", "system 'touch"));
    ck_assert(!file_has(dir, "outcomes.svg", "\xff"));
    ck_assert_int_eq(rep_html_write(dir, s, v, 3, NULL, err, sizeof err), 0);
    ck_assert(file_has(dir, "report.html", "x&quot; ; system &quot;touch /tmp/pwned"));
    ck_assert(file_has(dir, "report.html", "y&#39; ; system &#39;touch"));
    cleanup(dir, v, 3, s);
    lb_free(n0), lb_free(n1), lb_free(n2), lb_free(src);
}
END_TEST

/* ---- gnuplot missing or failing ---------------------------------------------------------- */
START_TEST(no_gnuplot)
{
    scn_t *s = scenario("name: plots-nognuplot\nduration: 10s\n");
    rep_variant_t v;
    synth_variant(&v, "a", "browse", 10, 3);
    char *dir = tmpdir_new(), err[256];
    char *stale = lb_sprintf("%s/outcomes.svg", dir);     /* from an earlier run */
    FILE *f = fopen(stale, "w");
    fputs("<svg>old</svg>", f);
    fclose(f);
    char *path = path_save();
    setenv("PATH", "/nonexistent", 1);
    char gp[64];
    ck_assert(!rep_plots_gnuplot(gp, sizeof gp));
    ck_assert_int_eq(rep_plots_write(dir, s, &v, 1, NULL, err, sizeof err), LB_ENOENT);
    ck_assert_str_eq(err, "gnuplot not found: plots skipped");
    ck_assert(!exists(dir, "outcomes.svg"));                /* no stale picture */
    ck_assert(!exists(dir, "latency-cdf.png"));
    ck_assert_int_eq(rep_html_write(dir, s, &v, 1, NULL, err, sizeof err), 0);
    char *html = slurp2(dir, "report.html");
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_nonnull(strstr(html, "gnuplot was not found on PATH"));
    ck_assert_ptr_null(strstr(html, "data:image"));
    ck_assert_ptr_nonnull(strstr(html, "<h2 id=\"outcomes\">"));
    lb_free(html);
    path_restore(path);
    lb_free(stale);
    cleanup(dir, &v, 1, s);
}
END_TEST

/* A fake gnuplot on PATH: `body` is its shell script. */
static char *fake_gnuplot(const char *body)
{
    char *bin = tmpdir_new();
    char *p = lb_sprintf("%s/gnuplot", bin);
    FILE *f = fopen(p, "w");
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(p, 0755);
    lb_free(p);
    setenv("PATH", bin, 1);
    return bin;
}

START_TEST(gnuplot_fails)
{
    scn_t *s = scenario("name: plots-fail\nduration: 10s\n");
    rep_variant_t v;
    synth_variant(&v, "a", "browse", 10, 3);
    char *dir = tmpdir_new(), err[256];
    char *path = path_save();
    /* an error message: reported, nothing left behind */
    char *bin = fake_gnuplot("/bin/cat >/dev/null; echo 'plot $x' >&2; echo '     ^' >&2; "
                             "echo 'line 3: boom' >&2; exit 1");
    ck_assert_int_eq(rep_plots_write(dir, s, &v, 1, NULL, err, sizeof err), LB_EIO);
    ck_assert_str_eq(err, "gnuplot failed: plot $x / line 3: boom");
    tmpdir_free(bin);
    /* success without output files */
    bin = fake_gnuplot("/bin/cat >/dev/null; exit 0");
    ck_assert_int_eq(rep_plots_write(dir, s, &v, 1, NULL, err, sizeof err), LB_EIO);
    ck_assert_ptr_nonnull(strstr(err, "gnuplot wrote no"));
    tmpdir_free(bin);
    /* exits at once without reading a large script: EPIPE, not SIGPIPE */
    rep_variant_t big;
    synth_variant(&big, "big", "browse", 100000, 0);
    bin = fake_gnuplot("exit 0");
    ck_assert_int_eq(rep_plots_write(dir, s, &big, 1, NULL, err, sizeof err), LB_EIO);
    tmpdir_free(bin);
    /* killed by a signal */
    bin = fake_gnuplot("kill -9 $$");
    ck_assert_int_eq(rep_plots_write(dir, s, &v, 1, NULL, err, sizeof err), LB_EIO);
    ck_assert_ptr_nonnull(strstr(err, "signal 9"));
    tmpdir_free(bin);
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) files += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 0);
    path_restore(path);
    rep_variant_free(&big);
    cleanup(dir, &v, 1, s);
}
END_TEST

/* True while a process whose command line starts with `cmd` exists. */
static bool process_running(const char *cmd)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], line[256] = "";
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++) if (!line[i]) line[i] = ' ';
        found = !strncmp(line, cmd, strlen(cmd));
    }
    closedir(d);
    return found;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs rep_plots_write with a fake gnuplot (shell `body`) that never finishes and starts
 * `sleeper`: it must return within 5 s, leave no process and no plot file behind. Returns
 * its code; its message in err. */
static int write_with_stuck_gnuplot(const char *body, const char *sleeper,
                                    const rep_plots_opts_t *o, char *err, size_t errlen)
{
    scn_t *s = scenario("name: plots-stuck\nduration: 10s\n");
    rep_variant_t v;
    synth_variant(&v, "a", "browse", 10, 3);
    char *dir = tmpdir_new(), *path = path_save(), *bin = fake_gnuplot(body);
    double t0 = now_s();
    int rc = rep_plots_write(dir, s, &v, 1, o, err, errlen);
    ck_assert_double_lt(now_s() - t0, 5.0);
    for (int i = 0; i < 100 && process_running(sleeper); i++) usleep(20000);
    ck_assert(!process_running(sleeper));
    ck_assert(!exists(dir, "latency-cdf.png"));
    ck_assert(!exists(dir, ".latency-cdf.png.tmp"));
    tmpdir_free(bin);
    path_restore(path);
    cleanup(dir, &v, 1, s);
    return rc;
}

/* A gnuplot that never finishes, with a child of its own: its process group is killed
 * after the timeout and the plots are reported skipped. */
START_TEST(gnuplot_hangs)
{
    char err[256];
    rep_plots_opts_t o = {.timeout_s = 0.5};
    ck_assert_int_eq(write_with_stuck_gnuplot("/bin/sleep 97531 & wait", "/bin/sleep 97531",
                                              &o, err, sizeof err), LB_ETIMEDOUT);
    ck_assert_str_eq(err, "gnuplot did not finish in 0.5 s: plots skipped");
}
END_TEST

static volatile sig_atomic_t stop_flag;
static void on_alarm(int sig) { (void)sig; stop_flag = 1; }

/* A stop request (the simulator got SIGINT, here a timer 0.3 s in) ends a gnuplot long
 * before its timeout. */
START_TEST(gnuplot_stopped)
{
    char err[256];
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, &old);
    stop_flag = 0;
    rep_plots_opts_t o = {.timeout_s = 30, .stop = &stop_flag};
    struct itimerval it = {{0, 0}, {0, 300000}};
    setitimer(ITIMER_REAL, &it, NULL);
    ck_assert_int_eq(write_with_stuck_gnuplot("exec /bin/sleep 97532", "/bin/sleep 97532", &o,
                                              err, sizeof err), LB_ESTATE);
    ck_assert_str_eq(err, "interrupted: plots skipped");
    sigaction(SIGALRM, &old, NULL);
}
END_TEST

/* More plots than one gnuplot draws (32): several processes, every file there. */
START_TEST(many_plots)
{
    if (!have_gnuplot("many_plots")) return;
    scn_t *s = scenario("name: plots-many\nduration: 6s\n");
    enum { NV = 20 };
    rep_variant_t v[NV];
    for (int i = 0; i < NV; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%02d", i);
        synth_variant(&v[i], name, "browse", 6, 2);
    }
    char *dir = tmpdir_new(), err[256];
    rep_plot_file_t *fs;
    size_t nf = rep_plots_files(v, NV, &fs);
    ck_assert_uint_eq(nf, 2 + 2 * NV);
    ck_assert_int_eq(rep_plots_write(dir, s, v, NV, NULL, err, sizeof err), 0);
    for (size_t i = 0; i < nf; i++) {
        char png[96], svg[96];
        snprintf(png, sizeof png, "%s.png", fs[i].name);
        snprintf(svg, sizeof svg, "%s.svg", fs[i].name);
        ck_assert_msg(is_png(dir, png), "%s is not a PNG", png);
        ck_assert_msg(is_svg(dir, svg), "%s is not an SVG", svg);
    }
    lb_free(fs);
    cleanup(dir, v, NV, s);
}
END_TEST

/* ---- report.html -------------------------------------------------------------------------- */
START_TEST(html_report)
{
    scn_t *s = scenario("name: plots-html\ndescription: \"Chain <b>&</b> \\\"quotes\\\"\"\n"
                        "duration: 30s\n"
                        "variants:\n  as-deployed: { description: \"ETP <Local>\" }\n"
                        "  fixed: {}\n");
    rep_variant_t v[2];
    synth_variant(&v[0], "as-deployed", "browse", 30, 4);
    synth_variant(&v[1], "<script>alert(1)</script>", "browse", 30, 0);
    v[1].complete = false;
    ((rep_plot_t *)v[1].plot)->complete = false;
    ((rep_plot_t *)v[1].plot)->end = 12 * SIM_S;
    v[0].explain = strdup("\nbrowse: 5xx (300 requests), e.g. flow 3 <at> 15s\n"
                          "   15.0s  appgw  502 & \"no healthy backend\"\n");
    v[0].n_rows = 1;
    v[0].rows = lb_calloc(1, sizeof *v[0].rows);
    v[0].rows[0].requests = 630;
    v[0].rows[0].by_class[M_2XX] = 300;
    v[0].rows[0].by_class[M_5XX] = 300;
    v[0].rows[0].by_class[M_CONNECT_TIMEOUT] = 30;
    v[0].rows[0].latency_p50 = 0.0015;
    v[0].rows[0].latency_p99 = 20.07;
    snprintf(v[0].rows[0].errors, sizeof v[0].rows[0].errors, "502 48%%");
    v[0].n_verdicts = 2;
    v[0].verdicts = lb_calloc(2, sizeof *v[0].verdicts);
    v[0].verdicts[0] = (scn_verdict_t){.text = "browse.status_2xx_ratio >= 0.9", .pass = false};
    snprintf(v[0].verdicts[0].detail, sizeof v[0].verdicts[0].detail, "0.476 (300/630 < x)");
    v[0].verdicts[1] = (scn_verdict_t){.text = "browse.requests > 600", .pass = true};
    char *dir = tmpdir_new(), err[256];
    bool gp = have_gnuplot("html_report");
    if (gp) ck_assert_int_eq(rep_plots_write(dir, s, v, 2, NULL, err, sizeof err), 0);
    ck_assert_int_eq(rep_html_write(dir, s, v, 2, NULL, err, sizeof err), 0);
    ck_assert(!exists(dir, ".report.html.tmp"));
    char *h = slurp2(dir, "report.html");
    ck_assert_ptr_nonnull(h);
    ck_assert(!strncmp(h, "<!DOCTYPE html>", 15));
    ck_assert_ptr_nonnull(strstr(h, "</html>\n"));
    /* scenario strings escaped, never raw */
    ck_assert_ptr_nonnull(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    ck_assert_ptr_null(strstr(h, "<script"));
    ck_assert_ptr_nonnull(strstr(h, "Chain &lt;b&gt;&amp;&lt;/b&gt; &quot;quotes&quot;"));
    ck_assert_ptr_nonnull(strstr(h, "ETP &lt;Local&gt;"));
    ck_assert_ptr_nonnull(strstr(h, "flow 3 &lt;at&gt; 15s"));
    ck_assert_ptr_nonnull(strstr(h, "502 &amp; &quot;no healthy backend&quot;"));
    /* content */
    ck_assert_ptr_nonnull(strstr(h, "How to read this report"));
    ck_assert_ptr_nonnull(strstr(h, "1 of 2 expectations failed."));
    ck_assert_ptr_nonnull(strstr(h, "<span class=\"fail\">FAIL</span>"));
    ck_assert_ptr_nonnull(strstr(h, "<span class=\"pass\">PASS</span>"));
    ck_assert_ptr_nonnull(strstr(h, "browse.status_2xx_ratio &gt;= 0.9"));
    ck_assert_ptr_nonnull(strstr(h, "<th>connect timeout</th>"));
    ck_assert_ptr_null(strstr(h, "<th>4xx</th>"));             /* never happened */
    ck_assert_ptr_nonnull(strstr(h, "47.6%<span>300</span>"));
    ck_assert_ptr_nonnull(strstr(h, "1.50&nbsp;ms"));
    ck_assert_ptr_nonnull(strstr(h, "20.07&nbsp;s"));
    ck_assert_ptr_nonnull(strstr(h, "<b>interrupted</b> at 12.0&nbsp;s of 30.0&nbsp;s"));
    ck_assert_ptr_nonnull(strstr(h, "No failed requests in: <b>&lt;script&gt;"));
    /* self-contained: nothing fetched from anywhere */
    ck_assert_ptr_null(strstr(h, "src=\"http"));
    ck_assert_ptr_null(strstr(h, "src=\"//"));
    ck_assert_ptr_null(strstr(h, "@import"));
    ck_assert_ptr_null(strstr(h, "url("));
    if (gp) {
        rep_plot_file_t *fs;
        size_t nf = rep_plots_files(v, 2, &fs);
        ck_assert_uint_eq(nf, 5);
        ck_assert_uint_eq(count_of(h, "src=\"data:image/svg+xml;base64,PD94bWwg"), nf);
        ck_assert_ptr_nonnull(strstr(h, "<h3>Backend health over time: &lt;script&gt;"));
        ck_assert_ptr_null(strstr(h, "has no plots"));
        lb_free(fs);
    }
    lb_free(h);
    /* the directory cannot be written: an error, not a crash */
    char *gone = lb_sprintf("%s/missing/dir", dir);
    ck_assert_int_eq(rep_html_write(gone, s, v, 2, NULL, err, sizeof err), LB_EIO);
    ck_assert_ptr_nonnull(strstr(err, "cannot write"));
    lb_free(gone);
    cleanup(dir, v, 2, s);
}
END_TEST

/* A variant without plot data or rows (e.g. from an older worker): the page still says so. */
START_TEST(html_without_plot_data)
{
    scn_t *s = scenario("name: plots-bare\nduration: 5s\n");
    rep_variant_t v;
    memset(&v, 0, sizeof v);
    v.name = lb_strdup("default");
    v.complete = true;
    v.requests = 10;
    v.by_class[M_2XX] = 10;
    v.latency_p50 = v.latency_p99 = NAN;
    char *dir = tmpdir_new(), err[256];
    ck_assert_int_eq(rep_plots_write(dir, s, &v, 1, NULL, err, sizeof err), 0);   /* nothing to do */
    ck_assert_int_eq(rep_html_write(dir, s, &v, 1, NULL, err, sizeof err), 0);
    ck_assert(file_has(dir, "report.html", "no plot data was collected"));
    ck_assert(file_has(dir, "report.html", "100.0%<span>10</span>"));
    ck_assert(file_has(dir, "report.html", "This scenario states no expectations."));
    ck_assert(file_has(dir, "report.html", "No request failed in any variant"));
    cleanup(dir, &v, 1, s);
}
END_TEST

Suite *suite_plots(void)
{
    Suite *s = suite_create("plots");
    TCase *tc = tcase_create("series");
    tcase_add_test(tc, collect_from_run);
    tcase_add_test(tc, collect_without_attach);
    tcase_add_test(tc, health_limit);
    tcase_add_test(tc, serialize_round_trip);
    tcase_add_test(tc, deserialize_garbage);
    tcase_add_test(tc, file_names);
    tcase_add_test(tc, utf8_char);
    suite_add_tcase(s, tc);
    tc = tcase_create("gnuplot");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, write_png_and_svg);
    tcase_add_test(tc, write_deterministic);
    tcase_add_test(tc, hostile_names);
    tcase_add_test(tc, no_gnuplot);
    tcase_add_test(tc, gnuplot_fails);
    tcase_add_test(tc, gnuplot_hangs);
    tcase_add_test(tc, gnuplot_stopped);
    tcase_add_test(tc, many_plots);
    tcase_add_test(tc, sweep_view);
    suite_add_tcase(s, tc);
    tc = tcase_create("html");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, html_report);
    tcase_add_test(tc, html_without_plot_data);
    suite_add_tcase(s, tc);
    return s;
}

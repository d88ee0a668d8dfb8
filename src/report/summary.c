/* summary.c -- summary.json (cJSON) and the terminal tables: variants by outcome and
 * expectation verdicts. Contains nothing that varies between runs of the same scenario
 * and seed (no wall time, no dates), so summaries compare byte for byte. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cJSON.h>
#include "explain.h"
#include "report.h"

static double secs(sim_time_t t) { return t < 0 ? NAN : (double)t / SIM_S; }

/* One table row: outcomes of source src (-1: all) and its three most frequent errors. */
static void fill_row(rep_row_t *row, const metrics_t *m, int src)
{
    m_window_t all = {0, SIM_TIME_MAX};
    unsigned ok = (1u << M_2XX) | (1u << M_3XX) | (1u << M_4XX) | (1u << M_5XX);
    if (src >= 0) snprintf(row->source, sizeof row->source, "%s", metrics_source_name(m, src));
    row->requests = metrics_requests(m, src, M_ALL_CLASSES, all);
    for (int c = 0; c < M_CLASS_COUNT; c++)
        row->by_class[c] = metrics_requests(m, src, 1u << c, all);
    row->latency_p50 = secs(metrics_latency_q(m, src, ok, 0.50, all));
    row->latency_p99 = secs(metrics_latency_q(m, src, ok, 0.99, all));
    int top[3] = {0, 0, 0};
    uint64_t topn[3] = {0, 0, 0};
    for (int st = 400; st < 600; st++) {
        uint64_t c = metrics_status_total(m, src, st);
        for (int k = 0; k < 3; k++)
            if (c > topn[k]) {
                for (int j = 2; j > k; j--) top[j] = top[j - 1], topn[j] = topn[j - 1];
                top[k] = st;
                topn[k] = c;
                break;
            }
    }
    for (int k = 0, len = 0; k < 3 && topn[k]; k++) {
        int w = snprintf(row->errors + len, sizeof row->errors - (size_t)len, "%s%d %.0f%%",
                         k ? ", " : "", top[k], 100.0 * (double)topn[k] / (double)row->requests);
        if (w < 0 || (size_t)(len + w) >= sizeof row->errors) break;
        len += w;
    }
}

void rep_variant_collect(rep_variant_t *v, scn_run_t *r, const char *name, uint64_t seed,
                         scn_verdict_t *verdicts, size_t n_verdicts)
{
    memset(v, 0, sizeof *v);
    metrics_t *m = scn_run_metrics(r);
    m_window_t all = {0, SIM_TIME_MAX};
    unsigned ok = (1u << M_2XX) | (1u << M_3XX) | (1u << M_4XX) | (1u << M_5XX);
    v->name = lb_strdup(name);
    v->seed = seed;
    v->events = sim_events_run(scn_run_sim(r));
    v->requests = metrics_requests(m, -1, M_ALL_CLASSES, all);
    for (int c = 0; c < M_CLASS_COUNT; c++)
        v->by_class[c] = metrics_requests(m, -1, 1u << c, all);
    v->latency_p50 = secs(metrics_latency_q(m, -1, ok, 0.50, all));
    v->latency_p90 = secs(metrics_latency_q(m, -1, ok, 0.90, all));
    v->latency_p99 = secs(metrics_latency_q(m, -1, ok, 0.99, all));
    v->latency_mean = v->requests ? metrics_latency_mean(m, -1, ok, all) / SIM_S : NAN;
    size_t ns = metrics_source_count(m);
    v->n_rows = 1 + (ns > 1 ? ns : 0);
    v->rows = lb_calloc(v->n_rows, sizeof *v->rows);
    for (size_t i = 0; i < v->n_rows; i++)
        fill_row(&v->rows[i], m, i == 0 ? -1 : (int)i - 1);
    v->verdicts = verdicts;
    v->n_verdicts = n_verdicts;
    size_t len = 0;
    FILE *ef = open_memstream(&v->explain, &len);
    if (ef) {
        explain_print(scn_run_explain(r), m, ef);
        fclose(ef);
    }

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddNumberToObject(o, "events", (double)v->events);
    cJSON_AddNumberToObject(o, "requests", (double)v->requests);
    cJSON *oc = cJSON_AddObjectToObject(o, "outcomes");
    for (int c = 0; c < M_CLASS_COUNT; c++)
        cJSON_AddNumberToObject(oc, m_class_name(c), (double)v->by_class[c]);
    cJSON *lat = cJSON_AddObjectToObject(o, "latency_s");
    double lv[] = {v->latency_p50, v->latency_p90, v->latency_p99, v->latency_mean};
    const char *ln[] = {"p50", "p90", "p99", "mean"};
    for (int i = 0; i < 4; i++) {
        if (isnan(lv[i])) cJSON_AddNullToObject(lat, ln[i]);
        else cJSON_AddNumberToObject(lat, ln[i], lv[i]);
    }
    cJSON *sts = cJSON_AddObjectToObject(o, "statuses");
    for (int st = 100; st < 600; st++) {
        uint64_t c = metrics_status_total(m, -1, st);
        if (c) {
            char k[16];
            snprintf(k, sizeof k, "%d", st);
            cJSON_AddNumberToObject(sts, k, (double)c);
        }
    }
    cJSON *srcs = cJSON_AddObjectToObject(o, "sources");
    for (size_t i = 0; i < metrics_source_count(m); i++) {
        cJSON *so = cJSON_AddObjectToObject(srcs, metrics_source_name(m, (int)i));
        for (int c = 0; c < M_CLASS_COUNT; c++)
            cJSON_AddNumberToObject(so, m_class_name(c),
                                    (double)metrics_requests(m, (int)i, 1u << c, all));
    }
    cJSON *cnt = cJSON_AddObjectToObject(o, "counters");
    const char *cn;
    for (size_t i = 0; (cn = metrics_counter_name(m, i)); i++)
        cJSON_AddNumberToObject(cnt, cn, (double)metrics_counter(m, cn, all));
    cJSON_AddStringToObject(o, "explanations", v->explain ? v->explain : "");
    cJSON *ex = cJSON_AddArrayToObject(o, "expectations");
    for (size_t i = 0; i < n_verdicts; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "expect", verdicts[i].text);
        cJSON_AddBoolToObject(e, "pass", verdicts[i].pass);
        if (isnan(verdicts[i].value)) cJSON_AddNullToObject(e, "value");
        else cJSON_AddNumberToObject(e, "value", verdicts[i].value);
        cJSON_AddStringToObject(e, "detail", verdicts[i].detail);
        cJSON_AddItemToArray(ex, e);
    }
    v->json = o;
}

void rep_variant_free(rep_variant_t *v)
{
    lb_free(v->name);
    lb_free(v->verdicts);
    free(v->explain);                 /* from open_memstream */
    lb_free(v->rows);
    if (v->plot && v->plot_free) v->plot_free(v->plot);
    lb_free(v->hops);
    if (v->json) cJSON_Delete(v->json);
    memset(v, 0, sizeof *v);
}

int rep_mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return LB_EIO;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return LB_EIO;
    return 0;
}

/* Writes text to dir/name through a temporary file and rename(2). */
static int write_atomic(const char *dir, const char *name, const char *text)
{
    char tmp[4096], dst[4096];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "sim: cannot write %s: %s\n", tmp, strerror(errno));
        return LB_EIO;
    }
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, dst) != 0) {
        fprintf(stderr, "sim: cannot write %s: %s\n", dst, strerror(errno));
        unlink(tmp);
        return LB_EIO;
    }
    return 0;
}

int rep_write_summary(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scenario", scn_name(s));
    cJSON_AddStringToObject(root, "description", scn_description(s) ? scn_description(s) : "");
    cJSON_AddNumberToObject(root, "duration_s", (double)scn_duration(s) / SIM_S);
    size_t failed = 0, total = 0;
    cJSON *arr = cJSON_AddArrayToObject(root, "variants");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemReferenceToArray(arr, v[i].json);
        for (size_t k = 0; k < v[i].n_verdicts; k++, total++) failed += !v[i].verdicts[k].pass;
    }
    cJSON_AddNumberToObject(root, "expectations", (double)total);
    cJSON_AddNumberToObject(root, "expectations_failed", (double)failed);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t len = strlen(text);
    char *withnl = lb_malloc(len + 2);
    memcpy(withnl, text, len);
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    cJSON_free(text);
    int rc = write_atomic(dir, "summary.json", withnl);
    lb_free(withnl);
    return rc;
}

static void pct(char *buf, size_t n, uint64_t part, uint64_t whole)
{
    if (!whole) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.1f%%", 100.0 * (double)part / (double)whole);
}

static void ms(char *buf, size_t n, double s)
{
    if (isnan(s)) snprintf(buf, n, "-");
    else if (s < 1) snprintf(buf, n, "%.2fms", s * 1e3);
    else snprintf(buf, n, "%.2fs", s);
}

void rep_print_table(FILE *out, const scn_t *s, const rep_variant_t *v, size_t n)
{
    static const int cols[] = {M_2XX, M_3XX, M_4XX, M_5XX, M_CONNECT_TIMEOUT, M_REFUSED,
                               M_RESET, M_RESPONSE_TIMEOUT, M_CLOSED};
    enum { NC = sizeof cols / sizeof cols[0] };
    int w = 7;
    for (size_t i = 0; i < n; i++)
        for (size_t r = v[i].n_rows > 1 ? 1 : 0; r < v[i].n_rows; r++) {
            int len = (int)(strlen(v[i].name) + (r ? 1 + strlen(v[i].rows[r].source) : 0));
            if (len > w) w = len;
        }
    char d[32];
    fprintf(out, "\n%s  (%s simulated)\n", scn_name(s), sim_time_str(scn_duration(s), d));
    fprintf(out, "%-*s %9s", w, v && n && v[0].n_rows > 1 ? "variant/traffic" : "variant",
            "requests");
    int cw[NC];
    for (int c = 0; c < NC; c++) {
        cw[c] = (int)strlen(m_class_name(cols[c]));
        if (cw[c] < 7) cw[c] = 7;
        fprintf(out, " %*s", cw[c], m_class_name(cols[c]));
    }
    fprintf(out, " %9s %9s  %s\n", "p50", "p99", "errors");
    for (size_t i = 0; i < n; i++)
        for (size_t r = v[i].n_rows > 1 ? 1 : 0; r < v[i].n_rows; r++) {
            const rep_row_t *row = &v[i].rows[r];
            char label[160];
            snprintf(label, sizeof label, "%s%s%s", v[i].name, r ? "/" : "", r ? row->source : "");
            fprintf(out, "%-*s %9llu", w, label, (unsigned long long)row->requests);
            for (int c = 0; c < NC; c++) {
                char b[16];
                pct(b, sizeof b, row->by_class[cols[c]], row->requests);
                fprintf(out, " %*s", cw[c], row->by_class[cols[c]] ? b : "-");
            }
            char a[16], b[16];
            ms(a, sizeof a, row->latency_p50);
            ms(b, sizeof b, row->latency_p99);
            fprintf(out, " %9s %9s  %s\n", a, b, row->errors[0] ? row->errors : "-");
        }
}

void rep_print_explanations(FILE *out, const rep_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!v[i].explain || !v[i].explain[0]) continue;
        fprintf(out, "\nwhy requests failed in %s:%s", v[i].name, v[i].explain);
    }
}

size_t rep_print_verdicts(FILE *out, const scn_t *s, const rep_variant_t *v, size_t n)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i].n_verdicts; k++) {
            const scn_verdict_t *e = &v[i].verdicts[k];
            failed += !e->pass;
            fprintf(out, "%s  %s/%s: %s  -- %s\n", e->pass ? "PASS" : "FAIL", scn_name(s),
                    v[i].name, e->text, e->detail);
        }
    return failed;
}

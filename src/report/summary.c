/* summary.c -- summary.json (cJSON) and the terminal tables: variants by outcome and
 * expectation verdicts. Contains nothing that varies between runs of the same scenario
 * and seed (no wall time, no dates), so summaries compare byte for byte. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cJSON.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include "explain.h"
#include "health.h"
#include "netfilter.h"
#include "plots.h"
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

/* Every health checker of a simulated run: each target's state and last result. */
static void collect_probes(rep_variant_t *v, scn_run_t *r)
{
    net_t *net = scn_run_net(r);
    health_t *hc;
    size_t n = 0;
    for (size_t i = 0; (hc = net_app_at(net, HEALTH_APP_KIND, i)); i++) n += health_target_count(hc);
    if (!n) return;
    v->probes = lb_calloc(n, sizeof *v->probes);
    for (size_t i = 0; (hc = net_app_at(net, HEALTH_APP_KIND, i)); i++)
        for (size_t t = 0; t < health_target_count(hc); t++) {
            rep_probe_t *p = &v->probes[v->n_probes++];
            health_state_t st = health_target_state(hc, t);
            snprintf(p->checker, sizeof p->checker, "%s", health_name(hc));
            snprintf(p->target, sizeof p->target, "%s", health_target_label(hc, t));
            snprintf(p->state, sizeof p->state, "%s", health_state_name(st));
            snprintf(p->initial, sizeof p->initial, "%s",
                     health_state_name(health_params(hc)->initial));
            health_verdict(health_params(hc), health_name(hc), health_target_label(hc, t),
                           health_target_port(hc, t), st, health_target_streak(hc, t, true),
                           health_target_streak(hc, t, false), health_target_last(hc, t),
                           p->line, sizeof p->line);
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
    snprintf(v->mode, sizeof v->mode, "%s", scn_run_mode(r));
    v->seed = seed;
    v->complete = scn_run_complete(r);
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

    if (!strcmp(v->mode, "sim")) collect_probes(v, r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "mode", v->mode);
    char seed_text[24];                 /* exact: a JSON number holds any integer, a double */
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);  /* does not */
    cJSON_AddRawToObject(o, "seed", seed_text);
    cJSON_AddBoolToObject(o, "complete", v->complete);
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
    if (!strcmp(v->mode, "sim")) {
        /* iptables nodes under "netfilter", nodes with an nftables ruleset under "nftables" */
        static const struct { bool nft; const char *key, *what; } kinds[] = {
            { false, "netfilter", "rules_traversed" }, { true, "nftables", "rules_evaluated" } };
        for (size_t k = 0; k < 2; k++) {
            nf_walk_summary_t ws;
            char name[64];
            nf_walk_net_nft(scn_run_net(r), kinds[k].nft, &ws);
            if (!ws.conns) continue;
            cJSON *nw = cJSON_AddObjectToObject(o, kinds[k].key);
            cJSON_AddNumberToObject(nw, "new_connections", (double)ws.conns);
            cJSON_AddNumberToObject(nw, kinds[k].what, (double)ws.rules);
            snprintf(name, sizeof name, "%s_mean", kinds[k].what);
            cJSON_AddNumberToObject(nw, name, ws.mean);
            snprintf(name, sizeof name, "%s_p50", kinds[k].what);
            cJSON_AddNumberToObject(nw, name, (double)ws.p50);
            snprintf(name, sizeof name, "%s_p99", kinds[k].what);
            cJSON_AddNumberToObject(nw, name, (double)ws.p99);
            snprintf(name, sizeof name, "%s_max", kinds[k].what);
            cJSON_AddNumberToObject(nw, name, (double)ws.max);
        }
    }
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

/* Adds the probe verdicts to v's summary.json object (when they are shown). */
static void json_probes(rep_variant_t *v)
{
    if (!v->json || !v->show_probes) return;
    cJSON_DeleteItemFromObjectCaseSensitive(v->json, "probes");
    cJSON *a = cJSON_AddArrayToObject(v->json, "probes");
    for (size_t i = 0; i < v->n_probes; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "checker", v->probes[i].checker);
        cJSON_AddStringToObject(o, "target", v->probes[i].target);
        cJSON_AddStringToObject(o, "state", v->probes[i].state);
        cJSON_AddStringToObject(o, "verdict", v->probes[i].line);
        cJSON_AddItemToArray(a, o);
    }
    if (!strcmp(v->mode, "real")) {
        cJSON_DeleteItemFromObjectCaseSensitive(v->json, "delayed_requests");
        cJSON_AddNumberToObject(v->json, "delayed_requests", (double)v->delayed);
    }
}

void rep_variant_show_probes(rep_variant_t *v)
{
    v->show_probes = true;
    json_probes(v);
}

/* Puts item (named key) into object o right after its member `after` (at the end when o
 * has none). cJSON has no insertion into objects: the list is linked by hand (cJSON keeps
 * child->prev pointing at the last member). */
static void json_insert_after(cJSON *o, const char *after, const char *key, cJSON *item)
{
    cJSON *tmp = cJSON_CreateObject();
    cJSON_AddItemToObject(tmp, key, item);          /* names the item */
    cJSON_DetachItemViaPointer(tmp, item);
    cJSON_Delete(tmp);
    cJSON *a = o->child;
    while (a && strcmp(a->string, after)) a = a->next;
    if (!a) {
        cJSON_AddItemToArray(o, item);
        return;
    }
    item->prev = a;
    item->next = a->next;
    if (a->next) a->next->prev = item;
    else o->child->prev = item;
    a->next = item;
}

void rep_variant_set_run(rep_variant_t *v, const char *run_id, const char *const *keys,
                         const char *const *values, size_t n)
{
    snprintf(v->run_id, sizeof v->run_id, "%s", run_id ? run_id : "");
    lb_free(v->point);
    v->point = NULL;
    if (n) {
        LB_VEC(char) b = {0};
        for (size_t i = 0; i < n; i++) {
            char *kv = lb_sprintf("%s%s=%s", i ? " " : "", keys[i], values[i]);
            size_t l = strlen(kv);
            lb_vec_reserve(&b, b.n + l + 1);
            memcpy(b.v + b.n, kv, l + 1);
            b.n += l;
            lb_free(kv);
        }
        v->point = b.v;
    }
    if (!v->json) return;
    cJSON_DeleteItemFromObjectCaseSensitive(v->json, "run_id");
    cJSON_DeleteItemFromObjectCaseSensitive(v->json, "point");
    if (n) {
        cJSON *pt = cJSON_CreateObject();
        for (size_t i = 0; i < n; i++) cJSON_AddStringToObject(pt, keys[i], values[i]);
        json_insert_after(v->json, "seed", "point", pt);
    }
    if (v->run_id[0])
        json_insert_after(v->json, "seed", "run_id", cJSON_CreateString(v->run_id));
}

void rep_variant_free(rep_variant_t *v)
{
    lb_free(v->name);
    lb_free(v->point);
    lb_free(v->probes);
    lb_free(v->verdicts);
    for (size_t i = 0; v->verdict_text && i < v->n_verdicts; i++) lb_free(v->verdict_text[i]);
    lb_free(v->verdict_text);
    free(v->explain);                 /* from open_memstream */
    lb_free(v->rows);
    if (v->plot && v->plot_free) v->plot_free(v->plot);
    lb_free(v->hops);
    lb_vec_free(&v->missing);
    if (v->json) cJSON_Delete(v->json);
    memset(v, 0, sizeof *v);
}

void rep_missing_add(rep_missings_t *m, int kind, const char *output, const char *fmt, ...)
{
    rep_missing_t e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    snprintf(e.output, sizeof e.output, "%s", output);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.reason, sizeof e.reason, fmt, ap);
    va_end(ap);
    lb_vec_push(m, e);
}

const char *rep_missing_kind_name(int kind)
{
    switch (kind) {
    case REP_MISSING_WRITE_FAILED: return "write-failed";
    case REP_MISSING_RUN_LOST: return "run-lost";
    case REP_MISSING_RUN_ABSENT: return "run-missing";
    default: return "skipped";
    }
}

static cJSON *missing_json(const rep_missings_t *m)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; m && i < m->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "output", m->v[i].output);
        cJSON_AddStringToObject(e, "reason", m->v[i].reason);
        cJSON_AddStringToObject(e, "kind", rep_missing_kind_name(m->v[i].kind));
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

static void missing_from_json(const cJSON *arr, rep_missings_t *m)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "kind");
        int kind = REP_MISSING_SKIPPED;
        for (int c = REP_MISSING_SKIPPED; c <= REP_MISSING_RUN_ABSENT; c++)
            if (cJSON_IsString(k) && !strcmp(k->valuestring, rep_missing_kind_name(c))) kind = c;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "output");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "reason");
        rep_missing_add(m, kind, cJSON_IsString(o) ? o->valuestring : "",
                        "%s", cJSON_IsString(r) ? r->valuestring : "");
    }
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

int rep_write_atomic(const char *dir, const char *name, const char *text, size_t len,
                     char *err, size_t errlen)
{
    char tmp[4096], dst[4096];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
        return LB_EIO;
    }
    /* the first failure's errno: a full disk shows in fwrite or in fclose's flush */
    int e = 0;
    if (fwrite(text, 1, len, f) != len) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (!e && rename(tmp, dst) != 0) e = errno;
    if (e) {
        if (err && errlen) snprintf(err, errlen, "cannot write %s: %s", dst, strerror(e));
        unlink(tmp);
        return LB_EIO;
    }
    return 0;
}

static cJSON *seed_stats_json(const rep_variant_t *v, size_t n);

int rep_write_summary(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n,
                      const rep_missings_t *missing)
{
    return rep_write_summary_sweep(dir, s, v, n, missing, NULL);
}

int rep_write_summary_sweep(const char *dir, const scn_t *s, const rep_variant_t *v,
                            size_t n, const rep_missings_t *missing,
                            const rep_sweep_info_t *sw)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scenario", scn_name(s));
    cJSON_AddStringToObject(root, "description", scn_description(s) ? scn_description(s) : "");
    cJSON_AddNumberToObject(root, "duration_s", (double)scn_duration(s) / SIM_S);
    if (sw) {
        cJSON_AddStringToObject(root, "lbchain_version", sw->version);
        cJSON_AddStringToObject(root, "scenario_hash", sw->scenario_hash);
        cJSON *so = cJSON_AddObjectToObject(root, "sweep");
        cJSON_AddStringToObject(so, "key", sw->key);
        cJSON *def = sw->spec ? cJSON_Parse(sw->spec) : NULL;
        cJSON_AddItemToObject(so, "definition", def ? def : cJSON_CreateNull());
        cJSON_AddNumberToObject(so, "runs", (double)sw->runs);
        if (sw->shard) cJSON_AddStringToObject(so, "shard", sw->shard);
    }
    size_t failed = 0, total = 0;
    cJSON *arr = cJSON_AddArrayToObject(root, "variants");
    for (size_t i = 0; i < n; i++) {
        if (v[i].db_run) continue;          /* a baseline read from results.db */
        cJSON_AddItemReferenceToArray(arr, v[i].json);
        for (size_t k = 0; k < v[i].n_verdicts; k++, total++) failed += !v[i].verdicts[k].pass;
    }
    if (rep_seed_stats_apply(v, n)) cJSON_AddItemToObject(root, "across_seeds", seed_stats_json(v, n));
    cJSON_AddNumberToObject(root, "expectations", (double)total);
    cJSON_AddNumberToObject(root, "expectations_failed", (double)failed);
    cJSON_AddItemToObject(root, "missing", missing_json(missing));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t len = strlen(text);
    char *withnl = lb_malloc(len + 2);
    memcpy(withnl, text, len);
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    cJSON_free(text);
    char err[512];
    int rc = rep_write_atomic(dir, "summary.json", withnl, len + 1, err, sizeof err);
    if (rc) fprintf(stderr, "sim: %s\n", err);
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

static bool is_real(const rep_variant_t *v) { return !strcmp(v->mode, "real"); }

/* The same variant and grid point run by the same executor (entries that differ by seed
 * only). */
bool rep_variant_same_kind(const rep_variant_t *a, const rep_variant_t *b)
{
    return strcmp(a->name, b->name) == 0 && is_real(a) == is_real(b) &&
           strcmp(a->point ? a->point : "", b->point ? b->point : "") == 0;
}
#define same_run_kind rep_variant_same_kind

void rep_variant_label(const rep_variant_t *v, size_t n, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s", v[i].name ? v[i].name : "", v[i].name ? rep_mode_tag(v, n, i) : "",
             v[i].point ? " [" : "", v[i].point ? v[i].point : "", v[i].point ? "]" : "");
}

const char *rep_mode_tag(const rep_variant_t *v, size_t n, size_t i)
{
    if (is_real(&v[i])) return " (real)";
    for (size_t j = 0; j < n; j++)
        if (is_real(&v[j]) && !strcmp(v[j].name, v[i].name)) return " (sim)";
    return "";
}

/* True when another run of the same variant comes before i (seed sweeps). */
static bool repeated_before(const rep_variant_t *v, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (same_run_kind(&v[j], &v[i])) return true;
    return false;
}

static bool repeated(const rep_variant_t *v, size_t n, size_t i)
{
    for (size_t j = 0; j < n; j++)
        if (j != i && same_run_kind(&v[j], &v[i])) return true;
    return false;
}

void rep_print_table(FILE *out, const scn_t *s, const rep_variant_t *v, size_t n)
{
    static const int cols[] = {M_2XX, M_3XX, M_4XX, M_5XX, M_CONNECT_TIMEOUT, M_REFUSED,
                               M_RESET, M_RESPONSE_TIMEOUT, M_CLOSED};
    enum { NC = sizeof cols / sizeof cols[0] };
    int w = 7;
    for (size_t i = 0; i < n; i++)
        for (size_t r = v[i].n_rows > 1 ? 1 : 0; r < v[i].n_rows; r++) {
            char lb[512];
            rep_variant_label(v, n, i, lb, sizeof lb);
            int len = (int)(strlen(lb) + (r ? 1 + strlen(v[i].rows[r].source) : 0)) +
                      (repeated(v, n, i) ? 22 : 0);
            if (len > w) w = len;
        }
    char d[32];
    bool any_real = false, any_sim = false;
    for (size_t i = 0; i < n; i++) {
        any_real |= is_real(&v[i]);
        any_sim |= !is_real(&v[i]);
    }
    fprintf(out, "\n%s  (%s %s)\n", scn_name(s), sim_time_str(scn_duration(s), d),
            !any_real ? "simulated" : any_sim ? "simulated and on real sockets"
                                             : "on real sockets");
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
            char label[600];
            rep_variant_label(v, n, i, label, sizeof label);
            int len = (int)strlen(label);
            if (repeated(v, n, i) && len > 0 && (size_t)len < sizeof label)
                len += snprintf(label + len, sizeof label - (size_t)len, " #%llu",
                                (unsigned long long)v[i].seed);
            if (r && len > 0 && (size_t)len < sizeof label)
                snprintf(label + len, sizeof label - (size_t)len, "/%s", row->source);
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

void rep_print_probes(FILE *out, const rep_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!v[i].show_probes || (!v[i].n_probes && !v[i].delayed)) continue;
        fprintf(out, "\nprobe verdicts, %s%s%s:\n", v[i].name, rep_mode_tag(v, n, i),
                is_real(&v[i]) ? " (as each load balancer would see its backends)" : "");
        if (!v[i].n_probes) fprintf(out, "  (no health checker probed)\n");
        for (size_t k = 0; k < v[i].n_probes; k++) fprintf(out, "  %s\n", v[i].probes[k].line);
        if (is_real(&v[i]) && v[i].delayed)
            fprintf(out, "  %llu requests could not start when due (max-in-flight or the rate "
                    "cap); their latency counts from when they were due\n",
                    (unsigned long long)v[i].delayed);
    }
}

/* "1234567" -> "1,234,567" */
static const char *thousands(uint64_t x, char buf[32])
{
    char d[24];
    int n = snprintf(d, sizeof d, "%llu", (unsigned long long)x), k = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = d[i];
    }
    buf[k] = '\0';
    return buf;
}

void rep_print_netfilter(FILE *out, const rep_variant_t *v, size_t n)
{
    static const struct { const char *key, *mean, *p99, *line; } kinds[] = {
        { "netfilter", "rules_traversed_mean", "rules_traversed_p99",
          "iptables: mean %s rules traversed per new connection" },
        { "nftables", "rules_evaluated_mean", "rules_evaluated_p99",
          "nftables: mean %s rules evaluated per new connection" } };
    bool first = true;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 2; k++) {
            const cJSON *nw = v[i].json ? cJSON_GetObjectItemCaseSensitive(v[i].json, kinds[k].key)
                                        : NULL;
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(nw, "new_connections");
            const cJSON *mean = cJSON_GetObjectItemCaseSensitive(nw, kinds[k].mean);
            const cJSON *p99 = cJSON_GetObjectItemCaseSensitive(nw, kinds[k].p99);
            if (!cJSON_IsNumber(c) || !cJSON_IsNumber(mean) || !cJSON_IsNumber(p99) ||
                repeated_before(v, i))
                continue;
            char label[512], a[32], b[32], d[32], what[128];
            rep_variant_label(v, n, i, label, sizeof label);
            snprintf(what, sizeof what, kinds[k].line,
                     thousands((uint64_t)(mean->valuedouble + 0.5), a));
            fprintf(out, "%s%s: %s (p99 %s; %s connections counted at each node they entered)\n",
                    first ? "\n" : "", label, what, thousands((uint64_t)p99->valuedouble, b),
                    thousands((uint64_t)c->valuedouble, d));
            first = false;
        }
}

void rep_print_explanations(FILE *out, const rep_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!v[i].explain || !v[i].explain[0] || repeated_before(v, i)) continue;
        char label[512];
        rep_variant_label(v, n, i, label, sizeof label);
        fprintf(out, "\nwhy requests failed in %s:%s", label, v[i].explain);
    }
}

size_t rep_print_verdicts(FILE *out, const scn_t *s, const rep_variant_t *v, size_t n)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i].n_verdicts; k++) {
            const scn_verdict_t *e = &v[i].verdicts[k];
            char label[512];
            rep_variant_label(v, n, i, label, sizeof label);
            failed += !e->pass;
            fprintf(out, "%s  %s/%s: %s  -- %s\n", e->pass ? "PASS" : "FAIL", scn_name(s),
                    label, e->text, e->detail);
        }
    return failed;
}

/* ---- --jobs: results through a pipe ---- */

static cJSON *num_or_null(double x) { return isnan(x) ? cJSON_CreateNull() : cJSON_CreateNumber(x); }
static double get_num(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}
/* A count from JSON: 0 for anything that is not one (NaN, negative, too large) -- stored
 * results come from a file and may be damaged. */
static uint64_t to_u64(double x) { return x >= 0 && x < 1.8e19 ? (uint64_t)x : 0; }
static uint64_t get_u64(const cJSON *o, const char *k) { return to_u64(get_num(o, k)); }
static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : "";
}

char *rep_variant_serialize(const rep_variant_t *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddStringToObject(o, "mode", v->mode);
    char seed_text[24];                 /* a string: cJSON reads numbers as doubles */
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)v->seed);
    cJSON_AddStringToObject(o, "seed", seed_text);
    cJSON_AddStringToObject(o, "run_id", v->run_id);
    if (v->point) cJSON_AddStringToObject(o, "point", v->point);
    cJSON_AddNumberToObject(o, "events", (double)v->events);
    cJSON_AddNumberToObject(o, "requests", (double)v->requests);
    cJSON_AddBoolToObject(o, "complete", v->complete);
    cJSON *bc = cJSON_AddArrayToObject(o, "by_class");
    for (int c = 0; c < M_CLASS_COUNT; c++) cJSON_AddItemToArray(bc, cJSON_CreateNumber((double)v->by_class[c]));
    cJSON_AddItemToObject(o, "p50", num_or_null(v->latency_p50));
    cJSON_AddItemToObject(o, "p90", num_or_null(v->latency_p90));
    cJSON_AddItemToObject(o, "p99", num_or_null(v->latency_p99));
    cJSON_AddItemToObject(o, "mean", num_or_null(v->latency_mean));
    cJSON_AddStringToObject(o, "explain", v->explain ? v->explain : "");
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    for (size_t i = 0; i < v->n_rows; i++) {
        const rep_row_t *r = &v->rows[i];
        cJSON *ro = cJSON_CreateObject();
        cJSON_AddStringToObject(ro, "source", r->source);
        cJSON_AddNumberToObject(ro, "requests", (double)r->requests);
        cJSON *rc = cJSON_AddArrayToObject(ro, "by_class");
        for (int c = 0; c < M_CLASS_COUNT; c++) cJSON_AddItemToArray(rc, cJSON_CreateNumber((double)r->by_class[c]));
        cJSON_AddItemToObject(ro, "p50", num_or_null(r->latency_p50));
        cJSON_AddItemToObject(ro, "p99", num_or_null(r->latency_p99));
        cJSON_AddStringToObject(ro, "errors", r->errors);
        cJSON_AddItemToArray(rows, ro);
    }
    cJSON *vd = cJSON_AddArrayToObject(o, "verdicts");
    for (size_t i = 0; i < v->n_verdicts; i++) {
        const scn_verdict_t *e = &v->verdicts[i];
        cJSON *eo = cJSON_CreateObject();
        cJSON_AddStringToObject(eo, "text", e->text);
        cJSON_AddBoolToObject(eo, "pass", e->pass);
        cJSON_AddItemToObject(eo, "value", num_or_null(e->value));
        cJSON_AddStringToObject(eo, "detail", e->detail);
        cJSON_AddItemToArray(vd, eo);
    }
    cJSON_AddItemToObject(o, "summary", cJSON_Duplicate(v->json, 1));
    if (v->plot) {
        char *pt = rep_plot_serialize(v->plot);
        if (pt) cJSON_AddStringToObject(o, "plot", pt);
        free(pt);
    }
    cJSON *hops = cJSON_AddArrayToObject(o, "hops");
    for (size_t i = 0; i < v->n_hops; i++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "where", v->hops[i].where);
        cJSON_AddNumberToObject(h, "t", (double)v->hops[i].t);
        cJSON_AddItemToArray(hops, h);
    }
    cJSON_AddStringToObject(o, "hops_title", v->hops_title);
    cJSON_AddItemToObject(o, "missing", missing_json(&v->missing));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int rep_variant_deserialize(const char *text, rep_variant_t *v)
{
    memset(v, 0, sizeof *v);
    cJSON *o = cJSON_Parse(text);
    if (!o) return LB_EPARSE;
    v->name = lb_strdup(get_str(o, "name"));
    snprintf(v->mode, sizeof v->mode, "%s", *get_str(o, "mode") ? get_str(o, "mode") : "sim");
    if (lb_parse_u64(get_str(o, "seed"), &v->seed)) v->seed = get_u64(o, "seed");
    snprintf(v->run_id, sizeof v->run_id, "%s", get_str(o, "run_id"));
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "point")))
        v->point = lb_strdup(get_str(o, "point"));
    v->events = get_u64(o, "events");
    v->requests = get_u64(o, "requests");
    v->complete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "complete"));
    const cJSON *bc = cJSON_GetObjectItemCaseSensitive(o, "by_class");
    for (int c = 0; c < M_CLASS_COUNT; c++) {
        const cJSON *x = cJSON_GetArrayItem(bc, c);
        v->by_class[c] = cJSON_IsNumber(x) ? to_u64(x->valuedouble) : 0;
    }
    v->latency_p50 = get_num(o, "p50");
    v->latency_p90 = get_num(o, "p90");
    v->latency_p99 = get_num(o, "p99");
    v->latency_mean = get_num(o, "mean");
    v->explain = strdup(get_str(o, "explain"));       /* freed with free(), as memstream's */
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
    v->n_rows = (size_t)cJSON_GetArraySize(rows);
    v->rows = lb_calloc(v->n_rows ? v->n_rows : 1, sizeof *v->rows);
    for (size_t i = 0; i < v->n_rows; i++) {
        const cJSON *ro = cJSON_GetArrayItem(rows, (int)i);
        rep_row_t *r = &v->rows[i];
        snprintf(r->source, sizeof r->source, "%s", get_str(ro, "source"));
        r->requests = get_u64(ro, "requests");
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(ro, "by_class");
        for (int c = 0; c < M_CLASS_COUNT; c++) {
            const cJSON *x = cJSON_GetArrayItem(rc, c);
            r->by_class[c] = cJSON_IsNumber(x) ? to_u64(x->valuedouble) : 0;
        }
        r->latency_p50 = get_num(ro, "p50");
        r->latency_p99 = get_num(ro, "p99");
        snprintf(r->errors, sizeof r->errors, "%s", get_str(ro, "errors"));
    }
    const cJSON *vd = cJSON_GetObjectItemCaseSensitive(o, "verdicts");
    v->n_verdicts = (size_t)cJSON_GetArraySize(vd);
    v->verdicts = lb_calloc(v->n_verdicts ? v->n_verdicts : 1, sizeof *v->verdicts);
    v->verdict_text = lb_calloc(v->n_verdicts ? v->n_verdicts : 1, sizeof(char *));
    for (size_t i = 0; i < v->n_verdicts; i++) {
        const cJSON *eo = cJSON_GetArrayItem(vd, (int)i);
        v->verdict_text[i] = lb_strdup(get_str(eo, "text"));
        v->verdicts[i].text = v->verdict_text[i];
        v->verdicts[i].variant = v->name;
        v->verdicts[i].pass = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(eo, "pass"));
        v->verdicts[i].value = get_num(eo, "value");
        snprintf(v->verdicts[i].detail, sizeof v->verdicts[i].detail, "%s", get_str(eo, "detail"));
    }
    const char *pt = get_str(o, "plot");
    rep_plot_t *plot = NULL;
    if (*pt && rep_plot_deserialize(pt, &plot) == 0) {
        v->plot = plot;
        v->plot_free = (void (*)(void *))rep_plot_free;
    }
    const cJSON *hops = cJSON_GetObjectItemCaseSensitive(o, "hops");
    v->n_hops = (size_t)cJSON_GetArraySize(hops);
    if (v->n_hops) v->hops = lb_calloc(v->n_hops, sizeof *v->hops);
    for (size_t i = 0; i < v->n_hops; i++) {
        const cJSON *h = cJSON_GetArrayItem(hops, (int)i);
        snprintf(v->hops[i].where, sizeof v->hops[i].where, "%s", get_str(h, "where"));
        v->hops[i].t = (sim_time_t)(get_u64(h, "t") & INT64_MAX);
    }
    snprintf(v->hops_title, sizeof v->hops_title, "%s", get_str(o, "hops_title"));
    missing_from_json(cJSON_GetObjectItemCaseSensitive(o, "missing"), &v->missing);
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(o, "summary");
    v->json = sm ? cJSON_Duplicate(sm, 1) : cJSON_CreateObject();
    if (cJSON_HasObjectItem(v->json, "seed")) {     /* parsed back as a double: exact again */
        char seed_text[24];
        snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)v->seed);
        cJSON_ReplaceItemInObjectCaseSensitive(v->json, "seed", cJSON_CreateRaw(seed_text));
    }
    cJSON_Delete(o);
    return 0;
}

/* ---- --seeds: means with 95% confidence intervals ---- */

static void ci(const double *x, size_t n, double *mean, double *half)
{
    *mean = gsl_stats_mean(x, 1, n);
    *half = n > 1 ? gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) * gsl_stats_sd(x, 1, n) / sqrt((double)n)
                  : NAN;
}

static void fmt_ci(char *buf, size_t len, double mean, double half, double scale, const char *unit)
{
    if (isnan(mean)) snprintf(buf, len, "-");
    else if (isnan(half)) snprintf(buf, len, "%.4g%s", mean * scale, unit);
    else snprintf(buf, len, "%.4g%s +- %.2g", mean * scale, unit, half * scale);
}

/* An entry's group key, for sorting: variant, executor, grid point. */
typedef struct gkey { const rep_variant_t *v; size_t i; } gkey_t;

static int cmp_gkey(const void *pa, const void *pb)
{
    const gkey_t *a = pa, *b = pb;
    int c = strcmp(a->v->name ? a->v->name : "", b->v->name ? b->v->name : "");
    if (!c) c = (int)is_real(a->v) - (int)is_real(b->v);
    if (!c) c = strcmp(a->v->point ? a->v->point : "", b->v->point ? b->v->point : "");
    if (!c) c = a->i < b->i ? -1 : a->i > b->i;
    return c;
}

static int cmp_group_first(const void *pa, const void *pb)
{
    const rep_seed_group_t *a = pa, *b = pb;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* Each entry's group: sorted by key (n log n, for sweeps of thousands of runs), then
 * the groups in order of their first entry. */
size_t rep_seed_groups(const rep_variant_t *v, size_t n, rep_seed_group_t **out)
{
    *out = NULL;
    if (!n) return 0;
    gkey_t *k = lb_calloc(n, sizeof *k);
    for (size_t i = 0; i < n; i++) k[i] = (gkey_t){ &v[i], i };
    qsort(k, n, sizeof *k, cmp_gkey);
    double *a = lb_calloc(n, sizeof *a), *b = lb_calloc(n, sizeof *b),
           *c = lb_calloc(n, sizeof *c), *d = lb_calloc(n, sizeof *d);
    LB_VEC(rep_seed_group_t) gs = {0};
    for (size_t s = 0, e; s < n; s = e) {
        size_t cnt = 0, kl = 0;
        for (e = s; e < n && rep_variant_same_kind(k[e].v, k[s].v); e++) {
            const rep_variant_t *x = k[e].v;
            double req = (double)x->requests;
            a[cnt] = req ? (double)x->by_class[M_2XX] / req : NAN;
            uint64_t failed = 0;
            for (int cl = M_CONNECT_TIMEOUT; cl < M_CLASS_COUNT; cl++) failed += x->by_class[cl];
            b[cnt] = req ? (double)failed / req : NAN;
            cnt++;
            if (!isnan(x->latency_p50)) {
                c[kl] = x->latency_p50;
                d[kl] = x->latency_p99;
                kl++;
            }
        }
        rep_seed_group_t g = { .first = k[s].i, .runs = cnt };
        ci(a, cnt, &g.ok.mean, &g.ok.half);
        ci(b, cnt, &g.failed.mean, &g.failed.half);
        g.p50 = g.p99 = (rep_stat_t){ NAN, NAN };
        if (kl) {
            ci(c, kl, &g.p50.mean, &g.p50.half);
            ci(d, kl, &g.p99.mean, &g.p99.half);
        }
        lb_vec_push(&gs, g);
    }
    qsort(gs.v, gs.n, sizeof *gs.v, cmp_group_first);
    lb_free(k);
    lb_free(a);
    lb_free(b);
    lb_free(c);
    lb_free(d);
    *out = gs.v;
    return gs.n;
}

bool rep_seed_stats_apply(const rep_variant_t *v, size_t n)
{
    rep_seed_group_t *g;
    size_t ng = rep_seed_groups(v, n, &g);
    lb_free(g);
    return ng < n;
}

/* "across_seeds": one object per group, each statistic as {"mean", "ci95"} (the
 * confidence interval's half-width; null with one run). */
static cJSON *seed_stats_json(const rep_variant_t *v, size_t n)
{
    rep_seed_group_t *g;
    size_t ng = rep_seed_groups(v, n, &g);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < ng; i++) {
        const rep_variant_t *f = &v[g[i].first];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "variant", f->name);
        cJSON_AddStringToObject(o, "mode", f->mode);
        const cJSON *pt = f->json ? cJSON_GetObjectItemCaseSensitive(f->json, "point") : NULL;
        if (pt) cJSON_AddItemToObject(o, "point", cJSON_Duplicate(pt, 1));
        cJSON_AddNumberToObject(o, "runs", (double)g[i].runs);
        const rep_stat_t *st[] = {&g[i].ok, &g[i].failed, &g[i].p50, &g[i].p99};
        const char *names[] = {"status_2xx_ratio", "failed_ratio", "latency_p50_s",
                               "latency_p99_s"};
        for (int k = 0; k < 4; k++) {
            cJSON *x = cJSON_AddObjectToObject(o, names[k]);
            cJSON_AddItemToObject(x, "mean", num_or_null(st[k]->mean));
            cJSON_AddItemToObject(x, "ci95", num_or_null(st[k]->half));
        }
        cJSON_AddItemToArray(arr, o);
    }
    lb_free(g);
    return arr;
}

void rep_print_seed_stats(FILE *out, const rep_variant_t *v, size_t n)
{
    rep_seed_group_t *g;
    size_t ng = rep_seed_groups(v, n, &g);
    int w = 22;
    for (size_t i = 0; i < ng; i++) {
        char label[512];
        rep_variant_label(v, n, g[i].first, label, sizeof label);
        if ((int)strlen(label) > w) w = (int)strlen(label);
    }
    fprintf(out, "\nacross seeds (mean +- 95%% confidence half-width, Student's t):\n");
    fprintf(out, "%-*s %5s %22s %22s %22s %22s\n", w, "variant", "seeds", "2xx %", "failed %",
            "p50 ms", "p99 ms");
    for (size_t i = 0; i < ng; i++) {
        char s1[40], s2[40], s3[40], s4[40], label[512];
        fmt_ci(s1, sizeof s1, g[i].ok.mean, g[i].ok.half, 100, "");
        fmt_ci(s2, sizeof s2, g[i].failed.mean, g[i].failed.half, 100, "");
        fmt_ci(s3, sizeof s3, g[i].p50.mean, g[i].p50.half, 1e3, "");
        fmt_ci(s4, sizeof s4, g[i].p99.mean, g[i].p99.half, 1e3, "");
        rep_variant_label(v, n, g[i].first, label, sizeof label);
        fprintf(out, "%-*s %5zu %22s %22s %22s %22s\n", w, label, g[i].runs, s1, s2, s3, s4);
    }
    lb_free(g);
}

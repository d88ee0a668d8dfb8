/* compare.c -- simulation and reality side by side. For each variant played on real
 * sockets (rep_variant_t.mode "real"), its simulated counterpart -- run alongside with
 * --compare, or an earlier simulated run of the same scenario, variant and seed taken
 * from results.db (db_run > 0) -- compared class by class, on the p50/p99 latencies and
 * backend by backend on the health checkers' verdicts. What differs beyond these
 * tolerances is flagged (in the terminal and in report.html):
 *   - an outcome class's share of requests more than REP_CMP_SHARE_POINTS apart;
 *   - p50 or p99 more than REP_CMP_LATENCY_FACTOR times apart AND more than
 *     REP_CMP_LATENCY_FLOOR_S apart (a simulated hop takes what the scenario's links say,
 *     a real one on loopback takes microseconds: small absolute gaps are not findings);
 *   - a backend in another health state (up/down/initial) at the end. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "report.h"

static bool is_real(const rep_variant_t *v) { return !strcmp(v->mode, "real"); }

const rep_variant_t *rep_compare_peer(const rep_variant_t *v, size_t n, size_t i)
{
    if (!is_real(&v[i])) return NULL;
    const rep_variant_t *db = NULL;
    for (size_t j = 0; j < n; j++) {
        if (is_real(&v[j]) || strcmp(v[j].name, v[i].name) || v[j].seed != v[i].seed) continue;
        if (!v[j].db_run) return &v[j];         /* run alongside wins */
        if (!db) db = &v[j];
    }
    return db;
}

static void share(char *buf, size_t n, uint64_t k, uint64_t total)
{
    if (!total) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.1f%% (%llu)", 100.0 * (double)k / (double)total,
                  (unsigned long long)k);
}

static void secs(char *buf, size_t n, double s)
{
    if (isnan(s)) snprintf(buf, n, "-");
    else if (s < 1) snprintf(buf, n, "%.2fms", s * 1e3);
    else snprintf(buf, n, "%.2fs", s);
}

static bool latency_differs(double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) != isnan(b);
    double lo = fmin(a, b), hi = fmax(a, b);
    return hi - lo > REP_CMP_LATENCY_FLOOR_S && hi > REP_CMP_LATENCY_FACTOR * lo;
}

size_t rep_compare_rows(const rep_variant_t *sim, const rep_variant_t *real,
                        rep_cmp_row_t **out)
{
    LB_VEC(rep_cmp_row_t) rows = {0};
    rep_cmp_row_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.what, sizeof r.what, "requests");
    snprintf(r.sim, sizeof r.sim, "%llu", (unsigned long long)sim->requests);
    snprintf(r.real, sizeof r.real, "%llu", (unsigned long long)real->requests);
    lb_vec_push(&rows, r);
    for (int c = 0; c < M_CLASS_COUNT; c++) {
        if (!sim->by_class[c] && !real->by_class[c]) continue;
        memset(&r, 0, sizeof r);
        snprintf(r.what, sizeof r.what, "%s", m_class_name(c));
        share(r.sim, sizeof r.sim, sim->by_class[c], sim->requests);
        share(r.real, sizeof r.real, real->by_class[c], real->requests);
        double a = sim->requests ? 100.0 * (double)sim->by_class[c] / (double)sim->requests : 0;
        double b = real->requests ? 100.0 * (double)real->by_class[c] / (double)real->requests : 0;
        r.differs = fabs(a - b) > REP_CMP_SHARE_POINTS;
        lb_vec_push(&rows, r);
    }
    const double lat[2][2] = {{sim->latency_p50, real->latency_p50},
                              {sim->latency_p99, real->latency_p99}};
    for (int k = 0; k < 2; k++) {
        memset(&r, 0, sizeof r);
        snprintf(r.what, sizeof r.what, "%s", k ? "p99" : "p50");
        secs(r.sim, sizeof r.sim, lat[k][0]);
        secs(r.real, sizeof r.real, lat[k][1]);
        r.differs = latency_differs(lat[k][0], lat[k][1]);
        lb_vec_push(&rows, r);
    }
    for (size_t i = 0; i < real->n_probes; i++) {
        const rep_probe_t *rp = &real->probes[i];
        const rep_probe_t *sp = NULL;
        for (size_t k = 0; k < sim->n_probes && !sp; k++)
            if (!strcmp(sim->probes[k].checker, rp->checker) &&
                !strcmp(sim->probes[k].target, rp->target))
                sp = &sim->probes[k];
        memset(&r, 0, sizeof r);
        snprintf(r.what, sizeof r.what, "%s %s", rp->checker, rp->target);
        snprintf(r.sim, sizeof r.sim, "%s", sp ? sp->state : "(not simulated)");
        snprintf(r.real, sizeof r.real, "%s", rp->state);
        r.differs = !sp || strcmp(sp->state, rp->state);
        r.probe = true;
        lb_vec_push(&rows, r);
    }
    *out = rows.v;
    return rows.n;
}

void rep_print_compare(FILE *out, const rep_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_real(&v[i])) continue;
        const rep_variant_t *sim = rep_compare_peer(v, n, i);
        if (!sim) {
            fprintf(out, "\n%s: no simulated run to compare with (--compare runs one; an "
                    "earlier one in the results folder's results.db is used too)\n", v[i].name);
            continue;
        }
        rep_cmp_row_t *rows;
        size_t nr = rep_compare_rows(sim, &v[i], &rows), bad = 0;
        fprintf(out, "\nsimulation vs reality, %s (seed %llu)%s:\n", v[i].name,
                (unsigned long long)v[i].seed, sim->db_run ? "" : "");
        if (sim->db_run)
            fprintf(out, "  (simulation: results.db run %lld)\n", (long long)sim->db_run);
        fprintf(out, "  %-44s %-18s %-18s\n", "", "simulated", "real");
        for (size_t k = 0; k < nr; k++) {
            fprintf(out, "  %-44.44s %-18s %-18s%s\n", rows[k].what, rows[k].sim, rows[k].real,
                    rows[k].differs ? "  << differs" : "");
            bad += rows[k].differs;
        }
        if (bad)
            fprintf(out, "  %zu difference%s beyond tolerance (class shares %.0f points, "
                    "latency x%.0f and %.0f ms, backend states)\n", bad, bad == 1 ? "" : "s",
                    REP_CMP_SHARE_POINTS, REP_CMP_LATENCY_FACTOR, REP_CMP_LATENCY_FLOOR_S * 1e3);
        else
            fprintf(out, "  simulation and reality agree within tolerance\n");
        lb_free(rows);
    }
}

void rep_compare_trim(rep_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const rep_variant_t *sim = rep_compare_peer(v, n, i);
        if (!sim) continue;
        rep_variant_t *sv = (rep_variant_t *)sim;
        size_t k = 0;
        for (size_t j = 0; j < sv->n_probes; j++) {
            bool probed = false;
            for (size_t r = 0; r < v[i].n_probes && !probed; r++)
                probed = !strcmp(v[i].probes[r].checker, sv->probes[j].checker) &&
                         !strcmp(v[i].probes[r].target, sv->probes[j].target);
            if (probed) sv->probes[k++] = sv->probes[j];
        }
        sv->n_probes = k;
        if (sv->show_probes) rep_variant_show_probes(sv);   /* summary.json follows */
    }
}

/* merge.c -- `sim --merge OUT_DIR SHARD_DIR...`: the shards' results.db combined into one
 * (rep_db_merge_into: ATTACH, a batch of files at a time), after checking that they are
 * shards of one sweep (same scenario content hash, lbchain version and definition); the
 * runs of the sweep no shard has, and runs two shards both have, named; and the sweep's
 * summary.json, plots and report.html written from the merged file alone -- the sweep is
 * rebuilt from the definition and scenario files the file keeps, each run's results from
 * its stored results, so nothing depends on the machine that merges.
 *
 *   read every shard (read-only) -> refuse a mix (exit 2, nothing written)
 *   -> rebuild the sweep, list its runs in order -> pick one run per id (a complete one
 *      first; the first shard given wins a tie) -> copy into OUT_DIR/.results.db.merging,
 *      rename to results.db -> read the stored results back -> print, plots, report,
 *      summary */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "db.h"
#include "plots.h"
#include "report.h"
#include "sweep.h"

enum { EXIT_OK = 0, EXIT_EXPECT = 1, EXIT_INPUT = 2, EXIT_MISSING = 3, EXIT_OUTPUT = 4 };

typedef struct shard {
    char *dir;                      /* as given */
    char *db;                       /* its results.db */
    rep_db_shard_t s;
} shard_t;

/* The results.db of a shard argument: the file itself, or DIR/results.db. NULL with a
 * message on stderr. */
static char *shard_db(const char *arg)
{
    struct stat st;
    if (stat(arg, &st)) {
        fprintf(stderr, "sim: --merge: %s: %s\n", arg, strerror(errno));
        return NULL;
    }
    char *p = S_ISDIR(st.st_mode) ? lb_sprintf("%s/results.db", arg) : lb_strdup(arg);
    if (S_ISDIR(st.st_mode) && stat(p, &st)) {
        fprintf(stderr, "sim: --merge: %s has no results.db (not a shard's folder?)\n", arg);
        lb_free(p);
        return NULL;
    }
    return p;
}

/* Whether a and b name the same file or folder. */
static bool same_path(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* Checks that every shard holds the sweep of the first one; prints why not. */
static bool one_sweep(const shard_t *sh, size_t n)
{
    const rep_db_sweep_rec_t *ref = NULL;
    const char *refdir = NULL;
    for (size_t k = 0; k < n; k++) {
        if (!sh[k].s.sweeps.n) {
            fprintf(stderr, "sim: --merge: %s holds no sweep (%zu runs written by an older "
                    "lbchain, or none at all)\n", sh[k].dir, sh[k].s.runs.n);
            return false;
        }
        for (size_t i = 0; i < sh[k].s.sweeps.n; i++) {
            const rep_db_sweep_rec_t *w = &sh[k].s.sweeps.v[i];
            if (!ref) {
                ref = w;
                refdir = sh[k].dir;
            }
            if (strcmp(w->scenario_hash, ref->scenario_hash)) {
                fprintf(stderr, "sim: --merge: %s is from another scenario than %s: scenario "
                        "content hash %.16s... (%s), not %.16s... (%s); the scenario file or a "
                        "file it includes differs\n", sh[k].dir, refdir, w->scenario_hash,
                        w->scenario, ref->scenario_hash, ref->scenario);
                return false;
            }
            if (strcmp(w->version, ref->version)) {
                fprintf(stderr, "sim: --merge: %s was written by lbchain %s, %s by lbchain %s; "
                        "run every shard with the same version\n", sh[k].dir, w->version,
                        refdir, ref->version);
                return false;
            }
            if (strcmp(w->key, ref->key)) {
                fprintf(stderr, "sim: --merge: %s holds another sweep of %s than %s (other "
                        "variants, seeds, overrides or grid):\n  %s: %s\n  %s: %s\n", sh[k].dir,
                        w->scenario, refdir, sh[k].dir, w->spec, refdir, ref->spec);
                return false;
            }
        }
    }
    if (strcmp(ref->version, LB_VERSION)) {
        fprintf(stderr, "sim: --merge: the shards were written by lbchain %s; this is lbchain %s: "
                "merge them with the version that ran them\n", ref->version, LB_VERSION);
        return false;
    }
    return true;
}

/* Where stored results go back: run index -> entry. */
typedef struct back { const sweep_t *sw; rep_variant_t *res; bool *have; } back_t;

static void back_cb(const char *run_key, const char *result, void *data)
{
    back_t *b = data;
    long i = sweep_run_find(b->sw, run_key);
    if (i < 0) return;
    if (b->have[i]) rep_variant_free(&b->res[i]);
    if (rep_variant_deserialize(result, &b->res[i]) == 0) b->have[i] = true;
    else b->have[i] = false;
}

/* "run <variant> [<point>] seed <N>" */
static void run_name(const sweep_t *sw, size_t i, char *buf, size_t len)
{
    const sweep_run_t *r = sweep_run_at(sw, i);
    const char *pt = sweep_point_label(sw, r->point);
    snprintf(buf, len, "run %s%s%s%s seed %llu", scn_variant_name(sweep_scn(sw, 0), r->variant),
             *pt ? " [" : "", pt, *pt ? "]" : "", (unsigned long long)r->seed);
}

/* Removes path and the WAL files SQLite may have beside it. */
static void remove_db(const char *path)
{
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char *p = lb_sprintf("%s%s", path, sfx[i]);
        unlink(p);
        lb_free(p);
    }
}

int sweep_merge(const char *out_dir, const char *const *args, size_t n,
                const sweep_merge_opts_t *o)
{
    int rc = EXIT_OK;
    char err[1024];
    shard_t *sh = lb_calloc(n, sizeof *sh);
    sweep_t *sw = NULL;
    rep_variant_t *res = NULL;
    bool *have = NULL;
    int lock = -1;
    /* 1. read every shard; refuse a mix before anything is written */
    for (size_t k = 0; k < n && rc == EXIT_OK; k++) {
        sh[k].dir = lb_strdup(args[k]);
        if (!(sh[k].db = shard_db(args[k]))) {
            rc = EXIT_INPUT;
            break;
        }
        if (same_path(args[k], out_dir)) {
            fprintf(stderr, "sim: --merge: the output folder %s is one of the shards\n", out_dir);
            rc = EXIT_INPUT;
            break;
        }
        for (size_t j = 0; j < k; j++)
            if (same_path(sh[j].db, sh[k].db)) {
                fprintf(stderr, "sim: --merge: %s is given twice\n", args[k]);
                rc = EXIT_INPUT;
            }
        if (rc == EXIT_OK && rep_db_shard_read(sh[k].db, &sh[k].s, err, sizeof err)) {
            fprintf(stderr, "sim: --merge: %s\n", err);
            rc = EXIT_INPUT;
        }
    }
    if (rc == EXIT_OK && !one_sweep(sh, n)) rc = EXIT_INPUT;
    /* 2. the sweep, from the definition and files the first shard keeps */
    const rep_db_sweep_rec_t *ref = rc == EXIT_OK ? &sh[0].s.sweeps.v[0] : NULL;
    if (rc == EXIT_OK) {
        const rep_db_shard_t *s0 = &sh[0].s;
        size_t nf = s0->files.n;
        const char **paths = lb_calloc(nf + 1, sizeof *paths), **texts = lb_calloc(nf + 1, sizeof *texts);
        size_t *lens = lb_calloc(nf + 1, sizeof *lens);
        for (size_t i = 0; i < nf; i++) {
            paths[i] = s0->files.v[i].path;
            texts[i] = s0->files.v[i].text;
            lens[i] = s0->files.v[i].len;
        }
        scn_diag_t d;
        if (!nf) {
            fprintf(stderr, "sim: --merge: %s keeps no scenario files for its sweep\n", sh[0].db);
            rc = EXIT_INPUT;
        } else if (sweep_from_stored(ref->spec, ref->scenario_file, paths, texts, lens, nf,
                                     NULL, &sw, &d)) {
            fprintf(stderr, "sim: --merge: the sweep kept in %s cannot be loaded again:\n",
                    sh[0].db);
            scn_diag_print(&d, stderr);
            rc = EXIT_INPUT;
        } else if (strcmp(sweep_hash(sw), ref->scenario_hash) || strcmp(sweep_key(sw), ref->key)) {
            fprintf(stderr, "sim: --merge: the scenario files kept in %s do not hash to the "
                    "sweep's (%.16s..., key %s); the file is damaged\n", sh[0].db,
                    ref->scenario_hash, ref->key);
            rc = EXIT_INPUT;
        }
        lb_free(paths);
        lb_free(texts);
        lb_free(lens);
    }
    if (rc != EXIT_OK) goto done;
    /* 3. one run per id: a complete one first (the first shard given wins), else the
     * latest incomplete one */
    size_t nr = sweep_run_count(sw);
    rep_db_pick_t *picks = lb_calloc(nr ? nr : 1, sizeof *picks);
    int *got = lb_calloc(nr ? nr : 1, sizeof *got);     /* 0 none, 1 incomplete, 2 complete */
    size_t *from = lb_calloc(nr ? nr : 1, sizeof *from);
    size_t dups = 0, strays = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < sh[k].s.runs.n; j++) {
            const rep_db_shard_run_t *r = &sh[k].s.runs.v[j];
            long i = r->run_key ? sweep_run_find(sw, r->run_key) : -1;
            if (i < 0) {
                strays++;
                continue;
            }
            int g = r->complete ? 2 : 1;
            if (got[i] == 2 && g == 2) {
                char name[600];
                run_name(sw, (size_t)i, name, sizeof name);
                fprintf(stderr, "sim: --merge: duplicate: %s (id %s) is in %s and in %s; "
                        "kept the one from %s\n", name, r->run_key, sh[from[i]].dir,
                        sh[k].dir, sh[from[i]].dir);
                dups++;
                continue;
            }
            if (g < got[i]) continue;
            got[i] = g;
            from[i] = k;
            picks[i] = (rep_db_pick_t){ k, r->id, (int64_t)i + 1 };
        }
    size_t npick = 0;
    rep_missings_t miss = {0};
    bool *picked = lb_calloc(nr ? nr : 1, sizeof *picked);
    for (size_t i = 0; i < nr; i++) {
        char name[600];
        run_name(sw, i, name, sizeof name);
        if (!got[i]) {
            rep_missing_add(&miss, REP_MISSING_RUN_ABSENT, name, "no shard has this run (id "
                            "%s); run the shard that holds it (index %zu mod N) again",
                            sweep_run_at(sw, i)->id, i);
            continue;
        }
        if (got[i] == 1)
            rep_missing_add(&miss, REP_MISSING_RUN_ABSENT, name, "only an interrupted run (id "
                            "%s) is in %s; run that shard again to complete it",
                            sweep_run_at(sw, i)->id, sh[from[i]].dir);
        picks[npick++] = picks[i];
        picked[i] = true;
    }
    if (strays)
        fprintf(stderr, "sim: --merge: %zu run%s in the shards belong to no run of the sweep "
                "(real-socket runs, or runs without an id): left out\n", strays,
                strays == 1 ? "" : "s");
    /* 4. the merged file, written under a temporary name and renamed into place */
    char *tmp = NULL, *dst = NULL;
    if (rep_mkdirs(out_dir)) {
        fprintf(stderr, "sim: --merge: cannot create %s: %s\n", out_dir, strerror(errno));
        rc = EXIT_OUTPUT;
    } else {
        int lrc = rep_dir_lock(out_dir, 0, NULL, &lock, err, sizeof err);
        if (lrc == LB_EEXIST) {
            fprintf(stderr, "sim: --merge: %s; use another OUT_DIR, or wait until it ends\n", err);
            rc = EXIT_INPUT;
        } else if (lrc) {
            fprintf(stderr, "sim: --merge: %s\n", err);
            rc = EXIT_OUTPUT;
        } else if (err[0]) {
            fprintf(stderr, "sim: %s\n", err);
        }
    }
    if (rc == EXIT_OK) {
        tmp = lb_sprintf("%s/.results.db.merging", out_dir);
        dst = lb_sprintf("%s/results.db", out_dir);
        remove_db(tmp);
        const char **dbs = lb_calloc(n, sizeof *dbs);
        for (size_t k = 0; k < n; k++) dbs[k] = sh[k].db;
        if (rep_db_merge_into(tmp, dbs, n, picks, npick, o->attach_max, ref->key, err,
                              sizeof err)) {
            fprintf(stderr, "sim: --merge: %s\n", err);
            rc = EXIT_OUTPUT;
        } else {
            remove_db(dst);                     /* an earlier merge's, with its WAL files */
            if (rename(tmp, dst)) {
                fprintf(stderr, "sim: --merge: cannot rename %s to %s: %s\n", tmp, dst,
                        strerror(errno));
                rc = EXIT_OUTPUT;
            }
        }
        if (rc != EXIT_OK) remove_db(tmp);
        lb_free(dbs);
    }
    lb_free(got);
    lb_free(from);
    lb_free(picks);
    if (rc != EXIT_OK) {
        lb_free(tmp);
        lb_free(dst);
        lb_free(picked);
        lb_vec_free(&miss);
        goto done;
    }
    /* 5. the results, read back from the merged file, in the sweep's order */
    rep_db_t *db = NULL;
    res = lb_calloc(nr ? nr : 1, sizeof *res);
    have = lb_calloc(nr ? nr : 1, sizeof *have);
    if (rep_db_open(dst, &db, err, sizeof err) == 0) {
        back_t b = { sw, res, have };
        if (rep_db_results(db, ref->key, false, back_cb, &b, err, sizeof err)) {
            fprintf(stderr, "sim: --merge: %s\n", err);
            rc = EXIT_OUTPUT;
        }
        rep_db_close(db);
    } else {
        fprintf(stderr, "sim: --merge: %s\n", err);
        rc = EXIT_OUTPUT;
    }
    lb_free(tmp);
    lb_free(dst);
    size_t m = 0;
    for (size_t i = 0; i < nr; i++) {
        if (!have[i] && picked[i]) {
            char name[600];
            run_name(sw, i, name, sizeof name);
            rep_missing_add(&miss, REP_MISSING_RUN_ABSENT, name, "its stored results (id %s) "
                            "cannot be read: the shard's results.db is damaged, or was written "
                            "without them", sweep_run_at(sw, i)->id);
        }
        if (!have[i]) continue;
        for (size_t k = 0; k < res[i].missing.n; k++) lb_vec_push(&miss, res[i].missing.v[k]);
        res[m++] = res[i];
    }
    lb_free(picked);
    scn_t *s = sweep_scn(sw, 0);
    size_t failed = 0;
    if (!o->quiet && !o->check) {
        rep_print_table(stdout, s, res, m);
        if (rep_seed_stats_apply(res, m)) rep_print_seed_stats(stdout, res, m);
    }
    if ((!o->quiet && !o->check) || o->explain) rep_print_explanations(stdout, res, m);
    if (!o->quiet) {
        if (!o->check) printf("\n");
        failed = rep_print_verdicts(stdout, s, res, m);
    } else {
        for (size_t i = 0; i < m; i++)
            for (size_t k = 0; k < res[i].n_verdicts; k++) failed += !res[i].verdicts[k].pass;
    }
    size_t absent = 0;
    for (size_t i = 0; i < miss.n; i++) {
        if (miss.v[i].kind != REP_MISSING_RUN_ABSENT) continue;
        absent++;
        if (!o->quiet) printf("MISSING     %s/%s: %s\n", scn_name(s), miss.v[i].output + 4,
                              miss.v[i].reason);
    }
    /* 6. plots, report.html, summary.json (in that order, as a run writes them) */
    if (!o->no_plots) {
        rep_plots_opts_t po = { o->plot_timeout, o->stop };
        int prc = rep_plots_write(out_dir, s, res, m, &po, err, sizeof err);
        if (prc) {
            fprintf(stderr, "sim: %s\n", err);
            rep_missing_add(&miss, prc == LB_EIO ? REP_MISSING_WRITE_FAILED : REP_MISSING_SKIPPED,
                            "plots", "%s", err);
        }
    }
    if (rep_html_write(out_dir, s, res, m, &miss, err, sizeof err)) {
        fprintf(stderr, "sim: %s\n", err);
        rep_missing_add(&miss, REP_MISSING_WRITE_FAILED, "report.html", "%s", err);
    }
    rep_sweep_info_t info = { LB_VERSION, sweep_hash(sw), sweep_key(sw), sweep_spec(sw), nr,
                              NULL };
    if (rep_write_summary_sweep(out_dir, s, res, m, &miss, &info)) rc = EXIT_OUTPUT;
    for (size_t i = 0; i < miss.n; i++)
        if (miss.v[i].kind == REP_MISSING_WRITE_FAILED) rc = EXIT_OUTPUT;
    if (!o->quiet)
        printf("\nmerged %zu of the sweep's %zu runs from %zu shard%s into %s/%s%s\n", m, nr, n,
               n == 1 ? "" : "s", out_dir, dups ? " (duplicates left out: see above)" : "",
               absent ? "; runs are missing (exit status 3)" : "");
    if (o->check) {
        size_t total = 0;
        for (size_t i = 0; i < m; i++) total += res[i].n_verdicts;
        printf("expectations: %zu passed, %zu failed\n", total - failed, failed);
    }
    /* as a run's: missing runs (3) before an output not written (4) before expectations */
    if (absent) rc = EXIT_MISSING;
    if (rc == EXIT_OK && failed) rc = EXIT_EXPECT;
    for (size_t i = 0; i < m; i++) rep_variant_free(&res[i]);
    lb_vec_free(&miss);
done:
    if (lock >= 0) close(lock);
    lb_free(res);
    lb_free(have);
    sweep_free(sw);
    for (size_t k = 0; k < n; k++) {
        lb_free(sh[k].dir);
        lb_free(sh[k].db);
        rep_db_shard_free(&sh[k].s);
    }
    lb_free(sh);
    return rc;
}

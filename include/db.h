/* db.h -- results.db: one SQLite file that every run of every scenario appends to (runs,
 * requests, probes, health transitions, drops, per-second series, counters, expectation
 * verdicts; schema in docs/RESULTS-DB.md). A run buffers its rows in a private temporary
 * database while it executes and copies them into the file in one short write transaction
 * at its end, so several processes can share one file and a run killed before its end
 * leaves nothing behind.
 *
 *   rep_db_open(path)            file + schema (WAL, busy timeout, foreign keys)
 *     rep_db_run_begin(db, s, r) attaches a sink to r, opens the buffer
 *       scn_run_execute(r)       rows go into the buffer (prepared INSERTs)
 *     rep_db_run_end(dr, r, v)   series, counters, verdicts; buffer -> file; frees dr
 *   rep_db_close(db)
 */
#ifndef DB_H
#define DB_H

#include <stddef.h>
#include <stdint.h>
#include "scenario.h"
#include "report.h"

/* The schema this code writes; a file with another version is refused by rep_db_open. */
#define REP_DB_SCHEMA_VERSION 3
/* How long a writer waits for another process's write transaction (SQLite busy timeout). */
#define REP_DB_BUSY_TIMEOUT_MS 60000
/* Page cache of a run's buffer: up to this many KiB of rows stay in memory, the rest
 * spills to an unlinked temporary file (SQLite temp database: $SQLITE_TMPDIR, $TMPDIR,
 * /var/tmp). */
#define REP_DB_BUFFER_CACHE_KIB 65536

typedef struct rep_db rep_db_t;
typedef struct rep_db_run rep_db_run_t;

/* Opens path (creating the file and the schema when missing; an existing file must have
 * schema version REP_DB_SCHEMA_VERSION, or 1 or 2, which are upgraded in place: real
 * mode's columns, then run ids and sweeps are added), puts it in WAL mode and closes it
 * again: the
 * handle keeps the path only, holds no SQLite connection between calls, and so may be
 * opened before a fork() and used in the children. Returns 0 and *out, or LB_EINVAL (empty
 * path, ":memory:") / LB_EIO (cannot open or create, not a database, other schema) with a
 * message in err. */
int rep_db_open(const char *path, rep_db_t **out, char *err, size_t errlen);
/* Frees the handle. NULL-safe. Runs begun on it must have ended (or been discarded). */
void rep_db_close(rep_db_t *db);
const char *rep_db_path(const rep_db_t *db);
/* The id (runs.id) the last successful rep_db_run_end on this handle wrote; 0 if none. */
int64_t rep_db_last_run_id(const rep_db_t *db);

/* Starts buffering run r (after scn_run_new, before scn_run_execute): attaches a sink that
 * records every request, probe, health transition and drop into a private temporary
 * database. variant is the variant's name (its description is looked up in s), run_group
 * groups runs of one invocation (the results folder's name, say; may be NULL). Returns the
 * recorder, or NULL with a message in err (no sink slot left, buffer not creatable). */
rep_db_run_t *rep_db_run_begin(rep_db_t *db, scn_t *s, scn_run_t *r, const char *variant,
                               uint64_t seed, const char *run_group, char *err,
                               size_t errlen);
/* Finishes a run that has executed (before scn_run_free): adds its per-second series
 * (metrics buckets per source and class, counters per bucket) and the nv verdicts v to the
 * buffer, then copies everything into the file in one write transaction (BEGIN IMMEDIATE,
 * waiting up to REP_DB_BUSY_TIMEOUT_MS for other writers) with status 'complete' or
 * 'incomplete' (scn_run_complete). Detaches dr's sink from r and frees dr in every case. Returns 0, or LB_EIO with a message in err
 * (then nothing of the run is in the file); LB_EINVAL for a NULL dr. */
int rep_db_run_end(rep_db_run_t *dr, scn_run_t *r, const scn_verdict_t *v, size_t nv,
                   char *err, size_t errlen);
/* A run's place in a sweep (include/sweep.h), written into its runs row: run_key (its
 * stable id), sweep_key, sweep_index (its place in the sweep's order; -1: none),
 * scenario_hash, version (lbchain's), overrides (canonical "KEY=VALUE" lines). Strings are
 * copied; NULL ones are stored as NULL. replace_incomplete: a resumed shard's run, which
 * replaces (deletes, with its rows) an incomplete run of the same key in the same
 * transaction. Call between rep_db_run_begin and rep_db_run_end. */
typedef struct rep_db_ident {
    const char *run_key, *sweep_key, *scenario_hash, *version, *overrides;
    int64_t sweep_index;
    bool replace_incomplete;
} rep_db_ident_t;
void rep_db_run_identify(rep_db_run_t *dr, const rep_db_ident_t *id);
/* The run's results as rep_variant_serialize writes them (copied), stored with the run in
 * run_results, so that summary.json, plots and report.html can be rebuilt from the file.
 * Call before rep_db_run_end. */
void rep_db_run_set_result(rep_db_run_t *dr, const char *text);
/* Drops a run's buffer without writing anything (the run failed to execute, say), and
 * detaches its sink. Before scn_run_free, like rep_db_run_end. */
void rep_db_run_discard(rep_db_run_t *dr);
/* Rows buffered so far (requests, probes, health, drops), e.g. for a rate measurement. */
uint64_t rep_db_run_rows(const rep_db_run_t *dr);

/* For each real run in v[0..n) without a simulated counterpart in v: the latest complete
 * simulated run of the same scenario, variant and seed in db's file, appended to *v as an
 * entry with db_run set (outcomes, latency percentiles and CDF, per-second outcomes,
 * probe verdicts and health changes, as far as the file has them). *v must come from
 * lb_malloc/lb_calloc (it is grown); *n is updated. Quietly adds nothing when the file has
 * no such run or cannot be read. */
void rep_db_attach_baselines(rep_db_t *db, const scn_t *s, rep_variant_t **v, size_t *n);

/* ---- sweeps (include/sweep.h; src/report/db_sweep.c) --------------------------------------
 * A sweep's definition and its scenario's files (sweeps, scenario_files), so that its
 * runs can be checked, merged and reported on without the original files. */
typedef struct rep_db_sweep {
    const char *key, *scenario, *scenario_file, *scenario_hash, *version;
    const char *spec;                 /* the definition, JSON */
    int64_t runs;                     /* runs in the whole sweep */
    size_t n_files;                   /* the scenario's files; [0] the scenario file */
    const char *const *paths;
    const char *const *texts;
    const size_t *lens;
} rep_db_sweep_t;
/* Records sw (a sweep already in the file is left as it is; files once per content hash).
 * 0 or LB_EIO with a message in err. */
int rep_db_sweep_put(rep_db_t *db, const rep_db_sweep_t *sw, char *err, size_t errlen);
/* How many runs of the file belong to no sweep or to another sweep than `key` (a shard's
 * folder must hold its own sweep only); the other sweep's key (or "") into other. A count
 * >= 0, or LB_EIO with a message in err. */
int rep_db_foreign_runs(rep_db_t *db, const char *key, char *other, size_t len, char *err,
                        size_t errlen);
/* Calls cb(run_key, result) for every run of sweep `sweep_key` that has stored results
 * (rep_db_run_set_result), complete ones only if asked, in the order they were written
 * (a later run of the same key comes after). 0, or LB_EIO with a message in err. */
typedef void (*rep_db_result_cb)(const char *run_key, const char *result, void *data);
int rep_db_results(rep_db_t *db, const char *sweep_key, bool complete_only,
                   rep_db_result_cb cb, void *data, char *err, size_t errlen);

/* A shard's file as --merge sees it (read without writing to it). */
typedef struct rep_db_sweep_rec {
    char *key, *scenario, *scenario_file, *scenario_hash, *version, *spec;
    int64_t runs;
} rep_db_sweep_rec_t;
typedef struct rep_db_shard_run {
    int64_t id;
    char *run_key, *sweep_key;        /* NULL for a run outside any sweep */
    bool complete;
    char *variant;
    uint64_t seed;
    double t_end_s;
} rep_db_shard_run_t;
typedef struct rep_db_file { char *path, *text; size_t len; } rep_db_file_t;
typedef struct rep_db_shard {
    int schema;
    LB_VEC(rep_db_sweep_rec_t) sweeps;
    LB_VEC(rep_db_shard_run_t) runs;  /* every run, by id */
    LB_VEC(rep_db_file_t) files;      /* the first sweep's scenario files, the scenario first */
} rep_db_shard_t;
/* Reads path's sweeps, runs and scenario files. 0; LB_EINVAL (not a results database, or
 * another schema version) or LB_EIO, with a message in err and nothing allocated. */
int rep_db_shard_read(const char *path, rep_db_shard_t *out, char *err, size_t errlen);
void rep_db_shard_free(rep_db_shard_t *s);
/* One run to copy: run old_id of shard file `shard` becomes run new_id. */
typedef struct rep_db_pick { size_t shard; int64_t old_id, new_id; } rep_db_pick_t;
/* Creates the results database out_path (which must not exist) and copies the picked
 * runs, every row of theirs, sweep `sweep_key` and its scenario's files into it from the
 * shard files, attaching at most attach_max of them at once (read-only; capped at
 * SQLite's SQLITE_LIMIT_ATTACHED), one transaction per batch. 0, or LB_EIO with a message
 * in err (out_path is then incomplete: the caller removes it). */
int rep_db_merge_into(const char *out_path, const char *const *shards, size_t nshards,
                      const rep_db_pick_t *picks, size_t npicks, size_t attach_max,
                      const char *sweep_key, char *err, size_t errlen);

#endif

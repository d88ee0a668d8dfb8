/* sweep.h -- sweeps beyond one machine. A sweep is one scenario (known by the content hash
 * of its file and every file it includes), the variants run, the seeds, and a parameter
 * grid (--sweep KEY=V1,V2,...: every combination of the axes' values, crossed with the
 * variants and the seeds). Its runs have a canonical order and a stable id each; shard I
 * of N runs those whose index is I mod N. The sweep's definition and its scenario files go
 * into every results.db it writes, so --merge (src/sweep/merge.c) can tell shards of one
 * sweep from others, name the runs missing, and rebuild the summary and report without
 * the original files; --emit-job (src/sweep/emit.c) writes the Kubernetes Indexed Job or
 * the Slurm job array that runs the shards.
 *
 *   sweep_new(file, opts)     the scenario loaded once per grid point (overrides applied
 *                             in key order), its files hashed, the runs listed in order
 *   sweep_run_at(sw, i)       run i: variant, grid point, seed, stable id
 *   sweep_shard_resolve(...)  I/N from --shard, JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_*
 *   sweep_merge(...)          shard databases -> one database, summary and report
 *   sweep_emit(...)           a Kubernetes Indexed Job manifest or a Slurm array script
 */
#ifndef SWEEP_H
#define SWEEP_H

#include <signal.h>
#include <stdio.h>
#include "scenario.h"

/* A run id and a sweep key: the first 16 hex digits (64 bits) of a SHA-256. */
#define SWEEP_ID_HEX 16
/* The scenario content hash: a whole SHA-256, 64 hex digits. */
#define SWEEP_HASH_HEX 64

/* What the command line says about the sweep. Arrays are borrowed. */
typedef struct sweep_opts {
    const char *const *variants;      /* -v NAME, in order; none: every variant */
    size_t n_variants;
    bool has_seed;                    /* --seed N; else the scenario's seed */
    uint64_t seed;
    size_t seeds;                     /* --seeds N (0 or 1: one seed) */
    const char *const *sets;          /* --set KEY=VALUE, as given */
    size_t n_sets;
    const char *const *axes;          /* --sweep KEY=V1,V2,... */
    size_t n_axes;
    bool no_expect;                   /* --no-expect (part of the sweep's definition) */
    FILE *warn;                       /* load warnings (of the first grid point only) */
} sweep_opts_t;

/* One run of the sweep. */
typedef struct sweep_run {
    size_t index;                     /* its place in the canonical order */
    size_t variant;                   /* index into the scenario's variants */
    size_t point;                     /* grid point (0 when there is no grid) */
    uint64_t seed;
    char id[SWEEP_ID_HEX + 1];        /* the stable run id */
} sweep_run_t;

typedef struct sweep sweep_t;

/* Loads the scenario file once per grid point, each with the --set overrides and the
 * point's values applied in key order (so a key's more specific override applies after
 * a mapping set at its parent), checks the variants named, and lists the runs: for each
 * variant (in the order named), each grid point (the last axis changing fastest), each
 * seed. Returns 0 and *out, or LB_EINVAL/LB_EIO/LB_EPARSE with *d filled (file:line:col;
 * "<command line>:1:COL" for an override or a --sweep argument) and nothing allocated. */
int sweep_new(const char *file, const sweep_opts_t *o, sweep_t **out, scn_diag_t *d);
void sweep_free(sweep_t *sw);

/* The scenario of grid point p (owned by the sweep). */
scn_t *sweep_scn(const sweep_t *sw, size_t p);
size_t sweep_point_count(const sweep_t *sw);
/* The grid's axes: their keys, and the value of axis a at point p. */
size_t sweep_axis_count(const sweep_t *sw);
const char *sweep_axis_key(const sweep_t *sw, size_t a);
const char *sweep_point_value(const sweep_t *sw, size_t p, size_t a);
/* "KEY=V KEY2=V2" for point p; "" when the sweep has no grid. */
const char *sweep_point_label(const sweep_t *sw, size_t p);
/* Every override of point p in canonical (key) order, "KEY=VALUE" one a line: what a run
 * id hashes. */
const char *sweep_overrides(const sweep_t *sw, size_t p);

size_t sweep_run_count(const sweep_t *sw);
const sweep_run_t *sweep_run_at(const sweep_t *sw, size_t i);
/* The index of the run with this id, or -1. */
long sweep_run_find(const sweep_t *sw, const char *id);
/* The scenario file as given, the scenario's name, its variants in sweep order. */
const char *sweep_file(const sweep_t *sw);
size_t sweep_seeds(const sweep_t *sw);

/* The scenario content hash: SHA-256 over the scenario file and every file it includes,
 * each named by its path relative to the directory that holds them all (so the same
 * files hash the same wherever they are mounted). */
const char *sweep_hash(const sweep_t *sw);
/* The sweep's definition as canonical JSON (the files' layout, variants, seeds, --set
 * overrides, grid, --no-expect) and its key: hash(version, content hash, definition). */
const char *sweep_spec(const sweep_t *sw);
const char *sweep_key(const sweep_t *sw);
/* The scenario's files: path relative to their common directory (source 0 is the
 * scenario file), and text. */
size_t sweep_source_count(const sweep_t *sw);
const char *sweep_source_path(const sweep_t *sw, size_t i);
const char *sweep_source_text(const sweep_t *sw, size_t i, size_t *len);
/* The same as three arrays (owned by the sweep): paths, texts, lengths; returns the count. */
size_t sweep_sources(const sweep_t *sw, const char *const **paths, const char *const **texts,
                     const size_t **lens);

/* A run id: the first 16 hex digits of SHA-256("lbchain-run", version, content hash,
 * variant, seed, overrides) (NUL-separated). out gets SWEEP_ID_HEX + 1 bytes. */
void sweep_run_id(const char *version, const char *hash, const char *variant, uint64_t seed,
                  const char *overrides, char *out);

/* Rebuilds a sweep from what a results.db stores (its definition and files; the label is
 * the scenario file name to show): the files are written into a temporary directory,
 * loaded from there, and removed. Same returns as sweep_new; LB_EPARSE for a definition
 * that is not this version's JSON. */
int sweep_from_stored(const char *spec, const char *label, const char *const *paths,
                      const char *const *texts, const size_t *lens, size_t nfiles,
                      FILE *warn, sweep_t **out, scn_diag_t *d);

/* ---- shards ---------------------------------------------------------------------------- */
/* Which shard this process is. arg is --shard's value ("I/N" or "I"; NULL when --shard was
 * given without one), shards is --shards N (0: not given). Without I, it comes from the
 * environment: JOB_COMPLETION_INDEX (a Kubernetes Indexed Job; N from --shards) or
 * SLURM_ARRAY_TASK_ID (a Slurm job array; N from --shards, else SLURM_ARRAY_TASK_COUNT
 * with I counted from SLURM_ARRAY_TASK_MIN, for an array of consecutive indices). Returns 0
 * with 0 <= *i < *n, or LB_EINVAL with a message in err. */
int sweep_shard_resolve(const char *arg, long shards, long *i, long *n, char *err,
                        size_t errlen);
/* Whether run index belongs to shard i of n. */
static inline bool sweep_in_shard(size_t index, long i, long n)
{
    return (long)(index % (size_t)n) == i;
}

/* ---- merging shards (src/sweep/merge.c) ------------------------------------------------- */
typedef struct sweep_merge_opts {
    size_t attach_max;                /* shard files attached at once (<= SQLite's limit) */
    double plot_timeout;              /* seconds per gnuplot; 0: the default */
    bool no_plots, quiet, check, explain;
    volatile sig_atomic_t *stop;      /* a signal stops gnuplot (may be NULL) */
} sweep_merge_opts_t;
/* The default and the most shard files attached at once: SQLite's default
 * SQLITE_MAX_ATTACHED (sqlite.org/limits.html). */
#define SWEEP_MERGE_ATTACH_DEFAULT 10
/* Merges the results.db of each shard directory (or file) into out_dir/results.db and
 * writes out_dir's summary.json, plots and report.html from it, printing the table, the
 * statistics across seeds, the verdicts and what is missing or duplicated. Shards of
 * another scenario (content hash), lbchain version or sweep are refused before anything is
 * written. Returns a process exit status: 0; 1 an expectation failed; 2 bad input
 * (message on stderr, nothing written); 3 runs of the sweep are missing or incomplete;
 * 4 an output could not be written. */
int sweep_merge(const char *out_dir, const char *const *shards, size_t n,
                const sweep_merge_opts_t *o);

/* ---- job files (src/sweep/emit.c) ------------------------------------------------------- */
typedef struct sweep_emit_opts {
    const char *kind;                 /* "k8s" or "slurm" */
    long shards;                      /* N */
    int jobs;                         /* --jobs inside each shard (CPUs asked per shard) */
    const char *image;                /* k8s: the container image holding sim */
    const char *pvc;                  /* k8s: the PersistentVolumeClaim for the results */
    const char *out;                  /* slurm: the results directory (shared file system) */
    const char *sim;                  /* slurm: the sim program's path */
    int backoff_per_index;            /* k8s: retries per index */
    const char *const *args;          /* the sweep options, passed through as given */
    size_t n_args;
} sweep_emit_opts_t;
/* Retries of one shard (a pod that failed for another reason than bad input or a
 * disruption) before Kubernetes marks its index failed. */
#define SWEEP_EMIT_BACKOFF_PER_INDEX 3
/* Writes the Kubernetes manifest (a ConfigMap with the scenario's files and an Indexed
 * Job) or the Slurm script (a job array and the merge as a job depending on it) for sw to
 * out. 0, or LB_EINVAL with a message in err (a name Kubernetes would refuse, a missing
 * parameter). */
int sweep_emit(const sweep_t *sw, const sweep_emit_opts_t *o, FILE *out, char *err,
               size_t errlen);

#endif

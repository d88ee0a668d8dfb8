/* report.h -- results of a run as files: summary.json (cJSON) now; SQLite, pcap, plots and
 * the HTML report hang off the same per-variant results later. Every writer writes to a
 * temporary file and renames it into place, so an interrupted run never leaves a partial
 * file behind. */
#ifndef REPORT_H
#define REPORT_H

#include <signal.h>
#include <stdio.h>
#include "scenario.h"

/* Key numbers of one finished variant, gathered from its run before it is freed. */
/* Outcomes of one traffic source (or all of them) in one variant, for the table. */
typedef struct rep_row {
    char source[64];                  /* "" for all sources together */
    uint64_t requests;
    uint64_t by_class[M_CLASS_COUNT];
    double latency_p50, latency_p99;  /* seconds; NAN if none */
    char errors[96];                  /* the most frequent 4xx/5xx statuses, "504 24%, 502 76%" */
} rep_row_t;

/* An output a run was meant to give and did not: a file that could not be written, a
 * run whose process died, a run an interrupt kept from starting, plots skipped. Listed in
 * summary.json ("missing") and report.html; src/main.c turns the kinds into exit codes. */
enum rep_missing_kind {
    REP_MISSING_SKIPPED,          /* no gnuplot, gnuplot timed out, not run: interrupted */
    REP_MISSING_WRITE_FAILED,     /* the file system refused it (a full disk, say) */
    REP_MISSING_RUN_LOST,         /* the run's process died: its results are lost */
    REP_MISSING_RUN_ABSENT,       /* --merge: a run of the sweep no shard has (complete) */
};
typedef struct rep_missing {
    char output[256];             /* "trace-a.pcap", "plots", "run a seed 1", ... */
    char reason[512];             /* the cause, with strerror's text for a failed write */
    int kind;                     /* enum rep_missing_kind */
} rep_missing_t;
typedef LB_VEC(rep_missing_t) rep_missings_t;
/* Appends one entry (reason printf-style). */
void rep_missing_add(rep_missings_t *m, int kind, const char *output, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "skipped", "write-failed", "run-lost", "run-missing". */
const char *rep_missing_kind_name(int kind);

/* One hop of a request's path: when its first byte reached `where`. */
typedef struct rep_hop { char where[64]; sim_time_t t; } rep_hop_t;

/* How a health checker saw one target when the run ended (shown for real runs and with
 * --compare): its state and health_verdict's line. */
typedef struct rep_probe {
    char checker[64], target[64];
    char state[12];                   /* "initial", "up", "down" */
    char initial[12];                 /* the state it started in ("initial" or "up") */
    char line[384];
} rep_probe_t;

typedef struct rep_variant {
    char *name;
    char mode[8];                     /* "sim", or "real" (played by src/real) */
    uint64_t seed;
    char run_id[24];                  /* the run's stable id (include/sweep.h); "" if none */
    char *point;                      /* the sweep's grid point, "KEY=V KEY2=V2"; NULL when
                                       * the sweep has no grid (owned) */
    uint64_t events;
    uint64_t requests;
    uint64_t by_class[M_CLASS_COUNT];
    double latency_p50, latency_p90, latency_p99, latency_mean;   /* seconds; NAN if none */
    size_t n_verdicts;
    scn_verdict_t *verdicts;          /* owned */
    void *json;                       /* cJSON object for summary.json (owned) */
    char *explain;                    /* causal chains of the failures, as printed (owned) */
    rep_row_t *rows;                  /* [0]: all sources; then one per source when > 1 */
    size_t n_rows;
    bool complete;                    /* false: interrupted before its duration */
    rep_probe_t *probes;              /* every checker's targets at the end (owned) */
    size_t n_probes;
    bool show_probes;                 /* print them and put them in summary.json */
    uint64_t delayed;                 /* real: requests held back by max-in-flight or the
                                       * rate cap (their latency counts from when due) */
    int64_t db_run;                   /* > 0: not run now but read from results.db (that
                                       * run's id), a baseline for a real run; not written */
    char **verdict_text;              /* owned copies of verdict texts (deserialized only) */
    /* for plots and the HTML report (include/plots.h fills them) */
    void *plot;                       /* series collected from the run (plots.h) */
    void (*plot_free)(void *plot);
    rep_hop_t *hops;                  /* one successful request's path (capture.h), owned */
    size_t n_hops;
    char hops_title[160];
    rep_missings_t missing;           /* this run's outputs that could not be written */
} rep_variant_t;

/* Fills v from a finished run and its verdicts (takes ownership of verdicts): for a
 * simulated run also the probe verdicts of every health checker; a played run's come from
 * its executor (real_plan_probes). */
void rep_variant_collect(rep_variant_t *v, scn_run_t *r, const char *name, uint64_t seed,
                         scn_verdict_t *verdicts, size_t n_verdicts);
void rep_variant_free(rep_variant_t *v);
/* Gives v its stable run id and, for a sweep with a grid, its point (the n keys and the
 * values they had); both go into summary.json after "seed" ("run_id", "point"). */
void rep_variant_set_run(rep_variant_t *v, const char *run_id, const char *const *keys,
                         const char *const *values, size_t n);
/* Whether a and b are runs of the same variant, grid point and executor (they differ by
 * seed at most). */
bool rep_variant_same_kind(const rep_variant_t *a, const rep_variant_t *b);
/* Marks v's probe verdicts (and, for a real run, its delayed requests) as shown: printed
 * by rep_print_probes and written into summary.json. Call after they are filled. */
void rep_variant_show_probes(rep_variant_t *v);
/* Prints the probe verdicts of the variants that show them, one line per target. */
void rep_print_probes(FILE *out, const rep_variant_t *v, size_t n);
/* One line per variant whose summary has "netfilter" (the rules the kernel traverses per
 * new connection, include/netfilter.h nf_walk_net): "VARIANT: iptables: mean 2,103 rules
 * traversed per new connection (p99 4,010; N connections counted at each node they
 * entered)". */
void rep_print_netfilter(FILE *out, const rep_variant_t *v, size_t n);

/* ---- simulation vs reality (src/report/compare.c) ------------------------------------------- */
/* Tolerances beyond which a difference is flagged (see compare.c). */
#define REP_CMP_SHARE_POINTS 5.0          /* an outcome class's share, percentage points */
#define REP_CMP_LATENCY_FACTOR 2.0        /* p50/p99: this many times apart ... */
#define REP_CMP_LATENCY_FLOOR_S 0.010     /* ... and more than this many seconds apart */
typedef struct rep_cmp_row {
    char what[140];                   /* "2xx", "p99", "ilb/http-30575 aks-user-0" */
    char sim[96], real[96];
    bool differs;                     /* beyond tolerance */
    bool probe;                       /* a backend's health state */
} rep_cmp_row_t;
/* The simulated counterpart of real entry i (same variant and seed): one run alongside,
 * else one read from results.db; NULL when none or entry i is not real. */
const rep_variant_t *rep_compare_peer(const rep_variant_t *v, size_t n, size_t i);
/* Requests, each outcome class either saw, p50, p99 and every backend the real run
 * probed. Returns the count; *out (lb_free) holds the rows. */
size_t rep_compare_rows(const rep_variant_t *sim, const rep_variant_t *real,
                        rep_cmp_row_t **out);
/* Keeps in each real entry's simulated counterpart only the probe verdicts of backends
 * the real run probed (the simulation also has those nobody probes from here). */
void rep_compare_trim(rep_variant_t *v, size_t n);
/* For each real entry: its rows against its counterpart, differences flagged. */
void rep_print_compare(FILE *out, const rep_variant_t *v, size_t n);

/* A variant's results as one line of JSON (everything but plot data and hops), for
 * worker processes (--jobs) to hand results to the parent; caller frees with free(). */
char *rep_variant_serialize(const rep_variant_t *v);
/* The reverse; 0 or LB_EPARSE. v is zeroed first. */
int rep_variant_deserialize(const char *text, rep_variant_t *v);
/* A mean with its 95% confidence half-width (Student's t, GSL); half is NAN with one
 * value, both are NAN with none. */
typedef struct rep_stat { double mean, half; } rep_stat_t;
/* The runs of one variant (and grid point, and executor) over seeds. */
typedef struct rep_seed_group {
    size_t first;                     /* the group's first entry in v */
    size_t runs;                      /* how many entries */
    rep_stat_t ok;                    /* 2xx ratio */
    rep_stat_t failed;                /* ratio of requests without a response */
    rep_stat_t p50, p99;              /* latency of responses, seconds (runs with any) */
} rep_seed_group_t;
/* Groups v's runs by rep_variant_same_kind (in order of first appearance) and computes
 * each group's statistics. Returns the count; *out (lb_free) holds them. */
size_t rep_seed_groups(const rep_variant_t *v, size_t n, rep_seed_group_t **out);
/* Whether some group has more than one run (then summary.json has "across_seeds"). */
bool rep_seed_stats_apply(const rep_variant_t *v, size_t n);
/* Prints, per variant (and grid point) run with several seeds, the mean and 95%
 * confidence interval of the 2xx ratio, the failed ratio and the p50/p99 latencies. */
void rep_print_seed_stats(FILE *out, const rep_variant_t *v, size_t n);
/* How tables name entry i of v: its variant name, the executor's tag (rep_mode_tag) and
 * its grid point in brackets, "masquerade [traffic.browse.rate=100/s]". */
void rep_variant_label(const rep_variant_t *v, size_t n, size_t i, char *buf, size_t len);

/* Writes DIR/summary.json for a scenario's variants, with `missing` (may be NULL) as its
 * "missing" list: [{"output", "reason", "kind"}], [] when nothing is missing, and, when
 * some variant ran with several seeds, "across_seeds" (rep_seed_groups). 0 or LB_EIO
 * (message on stderr, with strerror's text: "No space left on device"). */
int rep_write_summary(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n,
                      const rep_missings_t *missing);
/* The sweep the variants belong to (include/sweep.h), as summary.json reports it. */
typedef struct rep_sweep_info {
    const char *version;              /* lbchain's */
    const char *scenario_hash;        /* content hash of the scenario's files */
    const char *key;                  /* the sweep's key */
    const char *spec;                 /* its definition (JSON text) */
    size_t runs;                      /* runs in the whole sweep */
    const char *shard;                /* "I/N" in a shard's summary; NULL otherwise */
} rep_sweep_info_t;
/* rep_write_summary with "lbchain_version", "scenario_hash" and "sweep" (key,
 * definition, runs, shard) after "duration_s"; sw may be NULL (then the same as
 * rep_write_summary). */
int rep_write_summary_sweep(const char *dir, const scn_t *s, const rep_variant_t *v,
                            size_t n, const rep_missings_t *missing,
                            const rep_sweep_info_t *sw);
/* How entry i of v is told apart from a run of the same variant by the other executor:
 * " (real)" for a real run, " (sim)" for a simulated one that has a real counterpart in
 * v, "" otherwise. */
const char *rep_mode_tag(const rep_variant_t *v, size_t n, size_t i);
/* Prints the variants-by-outcome table. */
void rep_print_table(FILE *out, const scn_t *s, const rep_variant_t *v, size_t n);
/* Prints each variant's causal chains (nothing for variants without failures). */
void rep_print_explanations(FILE *out, const rep_variant_t *v, size_t n);
/* Prints one line per expectation; returns the number that failed. */
size_t rep_print_verdicts(FILE *out, const scn_t *s, const rep_variant_t *v, size_t n);
/* Writes len bytes of text to DIR/name through a temporary file renamed into place, so
 * an interrupted write never leaves a partial file. 0, or LB_EIO with "cannot write
 * DIR/name: <strerror>" in err (the temporary file is removed). */
int rep_write_atomic(const char *dir, const char *name, const char *text, size_t len,
                     char *err, size_t errlen);
/* mkdir -p. 0 or LB_EIO. */
int rep_mkdirs(const char *path);
/* One writer per results folder (src/report/outdir.c): a POSIX record lock on DIR/.lock
 * (created; it holds the pid) for the life of the process or until close(*fd). With
 * wait_s > 0, a lock held by another process is tried again once a second for that long
 * (*stop, when set, ends the wait). Returns 0 and *fd; LB_EEXIST when another process
 * holds it (err: "DIR is in use by pid N (...)"); LB_EIO when DIR/.lock cannot be
 * created; LB_ESTATE when *stop ended the wait. On a file system without record locks:
 * 0, *fd, and a warning in err. */
int rep_dir_lock(const char *dir, int wait_s, volatile sig_atomic_t *stop, int *fd,
                 char *err, size_t errlen);

#endif

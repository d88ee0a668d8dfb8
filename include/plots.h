/* plots.h -- the pictures of a run: latency CDF, client outcomes per second, backend health
 * timelines and one request's hop-by-hop breakdown, drawn by gnuplot (a separate process
 * fed one script through a pipe) as PNG and SVG; and report.html, one self-contained page
 * with the tables, verdicts, causal chains and those plots for an architecture review.
 *
 * Use, per variant:  scn_run_new -> rep_plots_attach(r, v) -> scn_run_execute -> ...
 *   -> rep_variant_collect(v, ...) -> rep_plots_collect(r, v) -> scn_run_free(r);
 * then once for the scenario: rep_plots_write(dir, ...) and rep_html_write(dir, ...).
 * rep_plots_attach keeps its state with the run, not in v, so rep_variant_collect (which
 * clears v) may come before or after rep_plots_collect. */
#ifndef PLOTS_H
#define PLOTS_H

#include <signal.h>
#include "report.h"

/* ---- the series one variant's plots need (rep_variant_t.plot) ------------------------- */
enum rep_health_state {
    REP_HEALTH_INITIAL,        /* not probed yet ("initial") */
    REP_HEALTH_UP,
    REP_HEALTH_DOWN,
    REP_HEALTH_OTHER           /* a state name the plots do not know */
};

typedef struct rep_health_change { sim_time_t t; int state; } rep_health_change_t;
/* One target as one health checker sees it: the state changes in time order. */
typedef struct rep_health_series {
    char *checker, *target;                 /* owned */
    LB_VEC(rep_health_change_t) changes;
} rep_health_series_t;

/* Requests of one traffic source per time bucket and outcome class. */
typedef struct rep_plot_source {
    char *name;                             /* owned */
    uint64_t *counts;                       /* [bucket * M_CLASS_COUNT + class], owned */
} rep_plot_source_t;

/* A point of the latency distribution of completed requests (2xx-5xx): a fraction q of
 * them took at most latency_s seconds. */
typedef struct rep_cdf_point { double latency_s, q; } rep_cdf_point_t;

/* At most this many health changes are kept per run (a flapping target over hours);
 * later ones are dropped and health_truncated is set. */
#define REP_PLOT_MAX_CHANGES 100000

typedef struct rep_plot {
    sim_time_t width;                       /* bucket width (metrics_bucket_width) */
    size_t n_buckets;
    sim_time_t end;                         /* the run's duration, or when it was stopped */
    bool complete;                          /* false: interrupted at `end` */
    LB_VEC(rep_plot_source_t) sources;
    LB_VEC(rep_cdf_point_t) cdf;            /* ascending q; empty: no completed requests */
    LB_VEC(rep_health_series_t) health;     /* in order of first appearance */
    size_t n_changes;
    bool health_truncated;
    unsigned runs;                          /* > 1: a sweep's group of this many seeds:
                                             * sources hold their sums (drawn as the mean),
                                             * cdf their mean quantiles, health and hops
                                             * the first seed's (rep_plots_view) */
} rep_plot_t;

/* An empty series set: n_buckets buckets of `width` (> 0), ending at `end`, complete. */
rep_plot_t *rep_plot_new(sim_time_t width, size_t n_buckets, sim_time_t end);
/* Frees p and everything in it (the rep_variant_t.plot_free of plots made here). */
void rep_plot_free(void *p);
/* The index of source `name`, added (all counts 0) on first use. */
int rep_plot_source(rep_plot_t *p, const char *name);
/* Records a health state change from state `from` to `to` ("initial", "up", "down";
 * others: REP_HEALTH_OTHER). The first change of a target at t > 0 also records `from`
 * (may be NULL) as its state since time 0. */
void rep_plot_health(rep_plot_t *p, const char *checker, const char *target, sim_time_t t,
                     const char *from, const char *to);

/* Fills p's latency distribution by sampling quantile(q, data) (the latency of fraction
 * q of the completed requests, ns) at the fractions the plots use. */
void rep_plot_cdf(rep_plot_t *p, sim_time_t (*quantile)(double q, void *data), void *data);

/* The series as one line of JSON, for worker processes (--jobs) to hand them to the
 * parent with the rest of rep_variant_t; caller frees with free(). */
char *rep_plot_serialize(const rep_plot_t *p);
/* The reverse: 0 and *out (rep_plot_free), or LB_EPARSE with nothing allocated. */
int rep_plot_deserialize(const char *text, rep_plot_t **out);

/* ---- collecting from a run ------------------------------------------------------------- */
/* Attaches a sink to r recording its health transitions. v is not touched (see above)
 * and may be NULL.
 * Prints a warning and does nothing more when r has no free sink slot. */
void rep_plots_attach(scn_run_t *r, rep_variant_t *v);
/* After the run: copies the per-second outcome counts of every source and the latency
 * distribution from r's metrics, with the health changes recorded since attach (none
 * without attach), into v->plot (replacing any; v->plot_free = rep_plot_free). */
void rep_plots_collect(scn_run_t *r, rep_variant_t *v);
/* Forgets the state kept for r when it will not be collected (an error path). Both
 * detach the sink from r: call one of them before scn_run_free. */
void rep_plots_detach(scn_run_t *r);

/* Bytes in the valid UTF-8 character at s (1-4); 0 for an invalid sequence or at the end
 * of the string. (Keeps scenario strings valid in SVG and HTML.) */
size_t rep_utf8_char(const char *s);

/* ---- writing --------------------------------------------------------------------------- */
/* One plot, as rep_plots_write names it: DIR/<name>.png and DIR/<name>.svg. */
typedef struct rep_plot_file {
    char name[80];                          /* "latency-cdf", "outcomes", "health-<variant>" */
    int variant;                            /* index into v[]; -1: all variants in one */
    const char *title;                      /* static text */
    const char *how;                        /* how to read it (static text) */
} rep_plot_file_t;
/* The plots rep_plots_write draws for these variants (those with data): latency-cdf and
 * outcomes when any variant has plot series, health-<v> per variant with health changes,
 * hops-<v> per variant with >= 2 hops. <v> is the variant name with every character but
 * [A-Za-z0-9._-] replaced by '_' (and a suffix when two collide). Returns the count;
 * *out (lb_free) is NULL when 0. */
size_t rep_plots_files(const rep_variant_t *v, size_t n, rep_plot_file_t **out);
/* How plots and the report name entry i of v: its variant name (and grid point), with
 * " (seed N)" when another entry has the same name (--seeds), or " (K seeds)" for an
 * entry of rep_plots_view. */
void rep_plots_label(const rep_variant_t *v, size_t n, size_t i, char *buf, size_t len);
/* More entries with plot data than this, some of them seeds of one variant (and grid
 * point), and the plots draw one entry per variant instead of one per run (a figure per
 * run of a 100-seed sweep is neither readable nor drawable: a panel of client outcomes
 * per run passes Cairo's 32767-pixel limit after 136 runs). */
#define REP_PLOTS_PER_RUN_MAX 32
/* At most this many panels of client outcomes are drawn (the first ones; the title says
 * how many there were). */
#define REP_PLOTS_MAX_PANELS 100
/* What the plots draw for v[0..n): NULL when that is v itself; else (more than
 * REP_PLOTS_PER_RUN_MAX entries with plot data, seeds among them) one entry per group of
 * rep_seed_groups, in order, with the group's outcomes summed and latency quantiles
 * averaged (plot->runs = the seeds) and its first seed's health and hops; *m entries,
 * freed with rep_plots_view_free. rep_plots_write and report.html use it themselves. */
rep_variant_t *rep_plots_view(const rep_variant_t *v, size_t n, size_t *m);
void rep_plots_view_free(rep_variant_t *view, size_t m);
/* The gnuplot program on PATH as a full path in buf; false when there is none. */
bool rep_plots_gnuplot(char *buf, size_t len);
/* How long one gnuplot process may take before it is killed and the plots are skipped.
 * The slowest plot set of scenarios/ (compare-chains, 20 figures) takes 0.6 s, a 20-seed
 * sweep of it (160 figures in 5 processes) 5.4 s on a 2-core VM: one process draws 32
 * figures in about 1 s, so 60 s only stops a gnuplot that hangs. */
#define REP_PLOTS_TIMEOUT_S 60.0

typedef struct rep_plots_opts {
    double timeout_s;                       /* per gnuplot process; <= 0: REP_PLOTS_TIMEOUT_S */
    volatile sig_atomic_t *stop;            /* NULL, or gnuplot is killed once *stop != 0
                                             * (checked at least every 200 ms) */
} rep_plots_opts_t;

/* Draws every plot of rep_plots_files into dir (which must exist) as PNG (pngcairo) and
 * SVG, with one gnuplot process per 32 plots in a process group of its own. Each picture
 * reaches this process through a pipe and is written here to a temporary file, renamed
 * into place once all are drawn. Returns 0 (also when there is nothing to plot);
 * LB_ENOENT with "gnuplot not found: plots skipped" in err when gnuplot is not on PATH;
 * LB_ETIMEDOUT with "gnuplot did not finish in N s: plots skipped" when a gnuplot ran
 * longer than o->timeout_s (its process group is killed); LB_ESTATE with "interrupted:
 * plots skipped" when *o->stop became non-zero; LB_EIO with gnuplot's message when it
 * fails, or "cannot write FILE: <strerror>" (a full disk: "No space left on device").
 * On failure no plot files of these names are left in dir (older ones are removed), so
 * the report never shows stale pictures. o may be NULL (defaults). Same data, same
 * files, byte for byte. */
int rep_plots_write(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n,
                    const rep_plots_opts_t *o, char *err, size_t errlen);

/* Writes DIR/report.html: scenario name and description, how to read the page, the
 * variants, the outcomes table, the expectation verdicts, the causal chains and every
 * plot of rep_plots_files found in dir (SVG inlined as a data: URI, else PNG), or a note
 * saying why there are none; a banner lists `missing` (may be NULL), whose "plots" entry
 * also says why plots are absent. No external resources; every scenario string is
 * HTML-escaped. 0, or LB_EIO with a message in err. */
int rep_html_write(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n,
                   const rep_missings_t *missing, char *err, size_t errlen);

#endif

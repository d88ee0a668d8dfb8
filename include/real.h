/* real.h -- real-socket mode: a second executor of a built scenario run. The run (from
 * scn_run_new, never executed) already holds the traffic sources' configurations, the
 * health checkers the models configured, the metrics and the expectations; real mode
 * maps their simulated destinations to real ones through a bindings file
 * (docs/BINDINGS.md), plays the traffic on the wall clock with libcurl's multi interface
 * (the same schedule, from the same seeded streams), sends the same probes through the
 * same health state machine, and records everything into the run's own metrics, so
 * expectations, summary.json, results.db, plots and report.html work unchanged.
 *
 *   real_bindings_load(path)         the YAML file, file:line:col errors
 *   scn_run_new(s, v, seed)          the variant, built as for a simulation
 *   real_plan_new(b, run, opts)      every name resolved (or one error listing the
 *                                    unbound ones), rates checked against the cap
 *   real_plan_execute(plan)          wall clock, real sockets; metrics filled
 *   real_plan_probes(plan)           each probed backend as its load balancer sees it
 *   real_plan_free(plan)
 */
#ifndef REAL_H
#define REAL_H

#include <stdio.h>
#include "report.h"
#include "scenario.h"

/* Default of --max-rate: requests per second over all traffic sources of a run. A guard
 * against pointing a scenario written for simulation (10000/s, say) at a live system. */
#define REAL_MAX_RATE_DEFAULT 100.0
/* Requests of one source in flight at once, unless its binding says max-in-flight. */
#define REAL_MAX_IN_FLIGHT_DEFAULT 256
/* Most a binding's max-in-flight may say (a bound on what one source holds open). */
#define REAL_MAX_IN_FLIGHT_MAX 100000
/* How often the driver looks at the stop flag (SIGINT/SIGTERM) at the latest: Ctrl-C
 * stops a run well within a second. */
#define REAL_POLL_MAX_MS 100
/* Most threads --real-threads may ask for. */
#define REAL_THREADS_MAX 64

/* ---- bindings (src/real/bindings.c) ------------------------------------------------------ */
typedef struct real_bindings real_bindings_t;
/* Loads and checks a bindings file. 0 and *out, or LB_EIO / LB_EPARSE / LB_EINVAL with
 * *diag ("file:line:col: message") and nothing allocated. */
int real_bindings_load(const char *path, real_bindings_t **out, scn_diag_t *diag);
/* The same for len bytes of text (which need not end in a NUL; a NUL inside is an error
 * at its position), reported as file fname; load_string takes a C string. */
int real_bindings_load_buffer(const char *text, size_t len, const char *fname,
                              real_bindings_t **out, scn_diag_t *diag);
int real_bindings_load_string(const char *text, const char *fname, real_bindings_t **out,
                              scn_diag_t *diag);
void real_bindings_free(real_bindings_t *b);
const char *real_bindings_path(const real_bindings_t *b);
/* "# bindings file: PATH" and the file's text as loaded (what results.db records). */
const char *real_bindings_text(const real_bindings_t *b);

/* ---- plan and execution (src/real/plan.c, src/real/driver.c) ---------------------------- */
typedef struct real_opts {
    double max_rate;                /* requests/s over all sources; <= 0: the default */
    bool probes_only;               /* no traffic: the probe audit */
    bool watch;                     /* probes until stopped or the duration; one line per
                                     * transition on `out` (docs/BINDINGS.md) */
    const char *const *checkers;    /* globs selecting health checkers; none: all */
    size_t n_checkers;
    FILE *out;                      /* watch lines and notes (stdout) */
    int threads;                    /* driver threads, 1..REAL_THREADS_MAX (1); the probe
                                     * audit (probes_only) always runs on one */
} real_opts_t;
void real_opts_init(real_opts_t *o);

typedef struct real_plan real_plan_t;
/* Resolves every traffic source and health checker of run r through b. Returns 0 and
 * *out, or LB_EINVAL with *err (caller lb_frees) holding the whole message: a name bound
 * but not in the variant ("file:line:col: ..."), the unbound names (one message listing
 * all of them), a rate above the cap. Nothing is sent. r must outlive the plan. */
int real_plan_new(const real_bindings_t *b, scn_run_t *r, const real_opts_t *o,
                  real_plan_t **out, char **err);
void real_plan_free(real_plan_t *p);
/* Requests the plan will send (open loop, computed ahead; closed loop: 0) and the health
 * checkers and targets it will probe. */
void real_plan_counts(const real_plan_t *p, uint64_t *requests, size_t *checkers,
                      size_t *targets);

/* Plays the plan on the wall clock, on o.threads threads (one for the probe audit; how
 * they split the work: src/real/driver.c, docs/REAL-MODE.md), until the scenario's
 * duration (the probe audit: until every target's state is decided),
 * scn_request_stop() (SIGINT/SIGTERM: within REAL_POLL_MAX_MS), or, with watch, a stop.
 * Records every request, probe and health transition into the run's metrics (times
 * relative to the start), then marks the run played (scn_run_set_played: complete or
 * not). Returns 0, or LB_EIO with a message on stderr when libcurl cannot be set up or
 * a thread cannot be started. */
int real_plan_execute(real_plan_t *p);
/* True when nothing was reached at all: every request and every probe failed before a
 * connection was made (refused, connect timeout, unreachable, DNS or TLS failure). */
bool real_plan_unreachable(const real_plan_t *p);
/* The verdict on every probed target (rep_probe_t, include/report.h): returns how many,
 * *out owned by the caller (lb_free), NULL when none. */
size_t real_plan_probes(const real_plan_t *p, rep_probe_t **out);
/* Requests that waited for a free slot (max-in-flight) or for the rate cap. */
uint64_t real_plan_delayed(const real_plan_t *p);

#endif

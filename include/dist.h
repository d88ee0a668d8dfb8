/* dist.h -- random distributions for service times, think times and inter-arrival gaps,
 * sampled through GSL from a named stream. Text forms (the scenario loader parses them):
 *   "5ms" (constant), "exp(5ms)" (exponential with that mean), "uniform(1ms,9ms)",
 *   "normal(5ms,1ms)" (truncated at 0 by redrawing), "lognormal(5ms,2ms)" (mean, stddev).
 * Decimal numbers are allowed everywhere ("1.5s"); units are listed in
 * docs/SCENARIO-FORMAT.md. */
#ifndef DIST_H
#define DIST_H

#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "engine.h"

typedef enum { DIST_CONST, DIST_EXP, DIST_UNIFORM, DIST_NORMAL, DIST_LOGNORMAL } dist_kind_t;
typedef struct dist { dist_kind_t kind; double a, b; } dist_t;   /* a, b in ns */

/* Parses text into d. Returns 0, or LB_EPARSE with a message in err. */
int dist_parse(const char *text, dist_t *d, char *err, size_t errlen);
/* Draws one sample (ns, >= 0). */
sim_time_t dist_sample(const dist_t *d, gsl_rng *r);
double dist_mean(const dist_t *d);
/* Formats back to the text form; returns buf. */
const char *dist_str(const dist_t *d, char *buf, size_t n);

/* Unit parsing shared by the loader and the CLI. Each returns 0 or LB_EPARSE.
 *   durations: "30s" "250ms" "10us" "5ns" "2m" "1h" (bare 0 allowed)
 *   sizes:     "1KB"=1000 "1KiB"=1024 "1MB" "200B" or a bare integer (bytes)
 *   bandwidth: "10Gbps" "100Mbps" "1.5Kbps" "800bps"
 *   rates:     "50/s" "3000/min" "2/ms"   -> events per second
 *   ratios:    "1%" "0.5%" or a number in [0,1] */
int unit_duration(const char *s, sim_time_t *out);
int unit_size(const char *s, uint64_t *out);
int unit_bandwidth(const char *s, uint64_t *out);
int unit_rate(const char *s, double *out);
int unit_ratio(const char *s, double *out);
/* Formats a duration in the largest unit that divides it exactly ("90s", "250ms",
 * "1500us", "7ns"); returns buf. unit_duration() reads it back to the same value. */
const char *unit_duration_str(sim_time_t t, char *buf, size_t n);

#endif

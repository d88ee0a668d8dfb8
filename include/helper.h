/* helper.h -- running a helper program (Graphviz's dot, rsvg-convert) as a separate
 * process: found on PATH, fed its input on stdin, its output collected from stdout, its
 * error output kept for the message, killed (with its process group) after a timeout or
 * when the run is interrupted. The pictures (include/draw.h) use it; plots.c runs gnuplot
 * with its own loop (several output pipes) -- the two can share this one day. */
#ifndef HELPER_H
#define HELPER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* How long one helper process may take before it is killed. Graphviz lays out the
 * largest topology of scenarios/ (compare-chains, two chains, 30 boxes) in 0.2 s on a
 * 2-core VM; 60 s only stops one that hangs. */
#define REP_HELPER_TIMEOUT_S 60.0
/* Output kept from a helper's stdout at most (a PNG of a large picture is a few MB). */
#define REP_HELPER_MAX_OUTPUT (64u << 20)

typedef struct rep_helper_opts {
    double timeout_s;                       /* <= 0: REP_HELPER_TIMEOUT_S */
    volatile sig_atomic_t *stop;            /* NULL, or the helper is killed once *stop != 0 */
} rep_helper_opts_t;

/* The program `name` on PATH as a full path in buf; false when there is none. */
bool rep_helper_find(const char *name, char *buf, size_t len);

/* Runs prog (a full path) with argv (argv[0] its name, NULL-terminated) in a process group
 * of its own, writes in[0..inlen) to its stdin and collects its stdout into *out (lb_malloc,
 * NUL-terminated, *outlen bytes; caller frees). Returns 0 when it exited 0; else, with
 * nothing in *out: LB_ETIMEDOUT ("<name> did not finish in N s"), LB_ESTATE ("interrupted"),
 * LB_EIO ("<name> failed: <its error output on one line>", or what could not be started),
 * LB_ENOMEM (more than REP_HELPER_MAX_OUTPUT bytes of output). o may be NULL. */
int rep_helper_run(const char *prog, const char *const argv[], const char *in, size_t inlen,
                   char **out, size_t *outlen, const rep_helper_opts_t *o, char *err,
                   size_t errlen);

#endif

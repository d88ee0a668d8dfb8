/* draw.h -- the two pictures every architecture review starts from, for each scenario run:
 *
 *   topology   the chain as it was built, left to right in the direction of traffic:
 *              clients, L7 load balancer instances (App Gateway, ALB), L4 load balancers
 *              (Azure internal LB with its frontend and rules, NLB nodes per zone), the
 *              cluster's nodes grouped by pool and zone with kube-proxy's hop, gateway pods
 *              and app pods, plain hosts and routers -- read from the built run through the
 *              models' own views (the same ones --describe uses). Written as Graphviz DOT
 *              and rendered by `dot` (a separate process) to SVG and PNG, and as a Mermaid
 *              flowchart. The per-variant picture also colours what the run saw: backends a
 *              load balancer had down (by which probe, and the probe's answer), where
 *              packets were dropped (reason and count), the path of a successful request.
 *   ladder     per variant, a sequence diagram of the example request of each failure
 *              class (the flow the causal chain names) and of one successful request: one
 *              vertical line per element on the path, one arrow per packet in time order
 *              (SYN and its retransmissions, the probe and its answer, the 502/504 to the
 *              client), NAT rewrites and drops marked, simulated times on the side, with
 *              the chain's notes (a probe's result, a backend going down) where they
 *              happened. Laid out here as SVG (rendered to PNG by rsvg-convert) and written
 *              as a Mermaid sequenceDiagram.
 *
 * The ladder's packets come from a replay: the run itself keeps no packets (its recorder
 * sees only requests, health changes and drops -- no per-packet cost); afterwards the
 * variant is built again with the same seed and run up to the moment the last example
 * finished, recording only the packets of the example flows. Determinism (same scenario,
 * same seed, same events) makes the replay's flow numbers those of the run; the replay
 * checks that each example ends the same way, else that ladder is left out with a note.
 *
 * Files (in the run's folder; <v> is the variant name with every character other than
 * [A-Za-z0-9._-] replaced by '_', plus "-<index>" when two variants collide):
 *   topology.{dot,mmd,svg,png}       the design as built, first variant run, no run marks
 *   topology-<v>.{dot,mmd,svg,png}   variant v as built, with what its run saw
 *   ladder-<v>.{mmd,svg,png}         variant v's example requests packet by packet
 * Each variant's files are written and rendered as its run finishes (in its worker process
 * with --jobs); the caller says once per scenario what was missing (draw_render_check).
 * Every scenario string is escaped for DOT (HTML-like labels), SVG and Mermaid (entity
 * codes). */
#ifndef DRAW_H
#define DRAW_H

#include <signal.h>
#include "report.h"

/* At most this many examples (failure classes and the success) per ladder, packets per
 * example drawn (the first and last halves are kept, the middle is summarised), and
 * flows whose packets a replay records. */
#define DRAW_LADDER_EXAMPLES 6
#define DRAW_LADDER_ROWS 80
#define DRAW_LADDER_FLOWS 64

typedef struct draw_rec draw_rec_t;

/* Attaches the recorder of what a run saw (health changes, drops, the example requests
 * and the upstream flows that served them) to r, after scn_run_new and before
 * scn_run_execute. Returns NULL with a message in err when r has no free sink slot. */
draw_rec_t *draw_rec_attach(scn_run_t *r, char *err, size_t errlen);

/* After the run (r still alive; v collected, its hops from the capture when there is
 * one): writes topology-<v>.dot/.mmd of variant `variant` of s with the run's marks, and
 * copies out of r what the ladders need. Returns 0, or LB_EIO with a message in err. */
int draw_rec_write(draw_rec_t *d, scn_t *s, size_t variant, scn_run_t *r,
                   const rep_variant_t *v, const char *dir, char *err, size_t errlen);
/* After draw_rec_write and scn_run_free of the run (so that the replay does not take
 * memory beside it): replays the variant with `seed` up to its last example and writes
 * ladder-<v>.svg/.mmd (none when the run had no example request, or was interrupted),
 * then with ro renders ladder-<v> and topology-<v> (draw_render_file). Returns 0, or an
 * error with a message in err (LB_EIO, or a helper's). */
typedef struct draw_render_opts draw_render_opts_t;
int draw_rec_finish(draw_rec_t *d, scn_t *s, size_t variant, uint64_t seed, const char *dir,
                    const draw_render_opts_t *ro, char *err, size_t errlen);
void draw_rec_free(draw_rec_t *d);      /* NULL-safe */

/* Builds variant `variant` of s with seed (its t = 0 set-up run, nothing simulated) and
 * writes its topology without run marks as <stem>.dot and <stem>.mmd into dir (`sim
 * --draw`, and topology.* of every run). 0, LB_EINVAL with *d (the variant does not
 * build), or LB_EIO with a message in d->msg. */
int draw_design_write(scn_t *s, size_t variant, uint64_t seed, const char *dir,
                      const char *stem, scn_diag_t *d);

/* The file stem of variant i of s: "<v>" as above. */
void draw_variant_stem(const scn_t *s, size_t i, char *buf, size_t len);

struct draw_render_opts {
    double timeout_s;                   /* per helper process; <= 0: REP_HELPER_TIMEOUT_S */
    volatile sig_atomic_t *stop;        /* NULL, or helpers are killed once *stop != 0 */
};

/* Renders one picture of dir: a topology <stem>.dot to <stem>.svg and <stem>.png by one
 * Graphviz `dot`, or a ladder (stem "ladder-...") <stem>.svg to <stem>.png by
 * rsvg-convert; outputs through temporary names renamed into place, older ones removed
 * first, so a failed rendering never leaves a stale or half picture. Returns 0 -- also
 * when the input or the tool is missing (nothing drawn; draw_render_check says so) -- or
 * the helper's error (LB_EIO, LB_ETIMEDOUT) with a message in err; LB_ESTATE ("interrupted:
 * pictures skipped") without starting anything once *o->stop is set. */
int draw_render_file(const char *dir, const char *stem, const draw_render_opts_t *o,
                     char *err, size_t errlen);
/* What is missing to draw: LB_ENOENT with "graphviz not found: pictures skipped" (no
 * `dot` on PATH: no topology pictures; the .dot/.mmd text and the ladders' SVG are still
 * written) or "rsvg-convert not found: ladder PNGs skipped"; else 0. */
int draw_render_check(char *err, size_t errlen);

/* The escapers: s as text inside a Graphviz HTML-like label, SVG text or HTML (report.html
 * uses it too): XML escaped, invalid UTF-8 as U+FFFD, control characters other than newline
 * and tab as spaces (labels are split at newlines before); and as Mermaid label or message
 * text: the characters that could end or change it -- '"' (ends a quoted label), '#'
 * (starts an entity code), ';' and '#' (end a sequence message), '%' (comments), '<', '>',
 * '&' (HTML), '`' (markdown strings) -- as #NNN; entity codes, newlines as <br/>, "->" as
 * U+2192 (an arrow reads better than "-#62;"). Arrows,
 * brackets, braces and '|' are harmless inside a quoted label or a message (checked with
 * Mermaid 11), so names like aks-user-1 stay as they are: Mermaid 11.17's render() was
 * seen to leave entity codes undecoded in labels, so fewer of them read better. */
void draw_put_xml(FILE *f, const char *s);
void draw_put_mermaid(FILE *f, const char *s);

#endif

/* explain.h -- the causal story of a run. Models note what they decided and why (a probe's
 * result, a health transition, "no healthy backend", a proxy's upstream failure), each note
 * tied to a flow and to the note that caused it; proxies link the downstream flow to the
 * upstream flow that serves it; drops attach to their flow. After the run, for each class of
 * client failure, one example request is walked back to its root cause and printed with
 * times:
 *
 *   connect_timeout (1131 requests), e.g. flow 812 from client0 at 12.3s:
 *     10.000s  probe.ilb  probe HTTP GET / to aks-user-0:31380 -> 404 (NR route_not_found)
 *     10.000s  ilb        backend aks-user-0 unhealthy (2 consecutive failures)
 *     10.000s  ilb        no healthy backend for rule http-80
 *     12.300s  ilb        SYN 10.225.0.4:41234 > 10.224.0.7:80 dropped: no healthy backend
 *     42.300s  appgw-0    upstream connect timeout -> 504
 *
 * Memory is bounded: notes for flows are kept for at most EXPLAIN_MAX_FLOWS flows (oldest
 * forgotten first); notes without a flow (state changes) are kept up to EXPLAIN_MAX_NOTES.
 * Every function is NULL-safe on the explain_t, so models work without one (unit tests). */
#ifndef EXPLAIN_H
#define EXPLAIN_H

#include <stdio.h>
#include "engine.h"
#include "metrics.h"

#define EXPLAIN_MAX_FLOWS 65536
#define EXPLAIN_MAX_NOTES 100000
#define EXPLAIN_CHAIN_MAX 24        /* notes printed per chain */

typedef struct explain explain_t;

explain_t *explain_new(sim_t *sim);
void explain_free(explain_t *ex);

/* Records a note and returns its id (> 0; 0 when ex is NULL or full). `flow` is the flow
 * it concerns (0: a state change of an element), `cause` the id of the note that led to
 * it (0: none known). */
uint64_t explain_note(explain_t *ex, const char *where, uint64_t flow, uint64_t cause,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The note describing element `owner`'s current state ("rule http has no healthy
 * backend"); a drop or decision attributed to owner takes it as its cause. note 0 clears. */
void explain_set_state(explain_t *ex, const char *owner, uint64_t note);
uint64_t explain_state(const explain_t *ex, const char *owner);
/* The latest note about a flow (0: none). */
uint64_t explain_flow_last(const explain_t *ex, uint64_t flow);
/* A proxy serves the request of flow `down` over the connection of flow `up`. */
void explain_link(explain_t *ex, uint64_t down, uint64_t up);
/* The upstream flow that served flow `down` (0: none known). */
uint64_t explain_flow_up(const explain_t *ex, uint64_t down);
/* A client saw outcome class `cls` (enum m_class) on flow; the first example of each
 * (source, class) is kept for the chains. */
void explain_outcome(explain_t *ex, const char *source, int cls, uint64_t flow,
                     const char *text);
/* Prints one chain per failure class seen (classes other than 2xx), with the count from m
 * when given. Returns the number of chains printed. */
size_t explain_print(const explain_t *ex, const metrics_t *m, FILE *out);

/* Read-only views of the chains (the packet ladders, include/draw.h): the examples in the
 * order they happened, each with its traffic source, class, client flow and the time the
 * client saw the outcome; and note k of example i's chain in time order (flow 0: a state
 * change). Strings live as long as ex. Each returns false past the end. */
size_t explain_example_count(const explain_t *ex);
bool explain_example_at(const explain_t *ex, size_t i, const char **source, int *cls,
                        uint64_t *flow, sim_time_t *t);
bool explain_example_note(const explain_t *ex, size_t i, size_t k, sim_time_t *t,
                          const char **where, uint64_t *flow, const char **text);

#endif

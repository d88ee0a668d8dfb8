/* engine.h -- the discrete-event kernel: simulated time, the event queue, cancellation,
 * and named random-number streams. Knows nothing about networks.
 *
 * Ordering rule: events run in (time, sequence) order, where sequence is the global
 * insertion counter; two events at the same time run in the order they were scheduled.
 * tests/test_engine.c pins this against a naive sorted-list reference. */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdint.h>
#include <stdbool.h>
#include <gsl/gsl_rng.h>

typedef int64_t sim_time_t;            /* nanoseconds since the start of the run */
#define SIM_NS ((sim_time_t)1)
#define SIM_US ((sim_time_t)1000)
#define SIM_MS ((sim_time_t)1000000)
#define SIM_S  ((sim_time_t)1000000000)
#define SIM_TIME_MAX INT64_MAX

typedef struct sim sim_t;

/* An event callback gets the simulator and the two opaque arguments given at scheduling. */
typedef void (*sim_event_cb)(sim_t *sim, void *a, void *b);

/* A handle to a scheduled event: its (time, sequence) key, which is unique. It stays safe
 * to cancel after the event ran: events pop in key order, so an event has run exactly when
 * its key is at or below the last key popped. Zero-initialise (seq 0 = no event). */
typedef struct sim_handle {
    sim_time_t time;
    uint64_t seq;
} sim_handle_t;

/* Creates a simulator whose random streams derive from seed. Never NULL. */
sim_t *sim_new(uint64_t seed);
/* Frees the simulator, its pending events and its random streams. */
void sim_free(sim_t *sim);

sim_time_t sim_now(const sim_t *sim);
uint64_t sim_seed(const sim_t *sim);

/* Schedules cb(sim, a, b) at now + delay (delay >= 0, asserted). Returns a handle. */
sim_handle_t sim_schedule(sim_t *sim, sim_time_t delay, sim_event_cb cb, void *a, void *b);
/* Schedules at an absolute time >= now (asserted). */
sim_handle_t sim_schedule_at(sim_t *sim, sim_time_t when, sim_event_cb cb, void *a, void *b);
/* Cancels by marking: the event stays queued but will not run (cancelled entries are
 * purged in bulk when they are half the queue). Stale or zero handles are ignored.
 * Returns true if a pending event was cancelled. Clears *h; a copy of a cancelled handle
 * must not be used afterwards. */
bool sim_cancel(sim_t *sim, sim_handle_t *h);
/* True while the handle's event is queued and not cancelled. */
bool sim_pending(const sim_t *sim, const sim_handle_t *h);
/* Absolute time of a pending event; SIM_TIME_MAX when not pending. */
sim_time_t sim_handle_time(const sim_t *sim, const sim_handle_t *h);

/* Runs events until the queue is empty, sim_stop() is called, or the next event is later
 * than `until`; then sets now = min(until, time of last event run) ... precisely: when it
 * returns because of `until`, now == until. Returns the number of events run. */
uint64_t sim_run(sim_t *sim, sim_time_t until);
/* Makes sim_run return after the current event. */
void sim_stop(sim_t *sim);

/* Statistics. */
uint64_t sim_events_run(const sim_t *sim);
uint64_t sim_events_pending(const sim_t *sim);   /* includes cancelled, not yet popped */

/* Progress hook: called from sim_run about every `every_events` events (0 disables). */
typedef void (*sim_progress_cb)(sim_t *sim, void *data);
void sim_set_progress(sim_t *sim, uint64_t every_events, sim_progress_cb cb, void *data);

/* Named random streams (GSL mt19937). The stream for a name is seeded from
 * hash(seed, name), so adding a stream never perturbs another. Created on first use;
 * owned by the simulator. */
gsl_rng *sim_rng(sim_t *sim, const char *name);
/* A new generator in the state stream `name` of this simulator starts in, whatever has
 * been drawn from the simulator's own copy: real mode replays a stream's draws with it.
 * The caller frees it with gsl_rng_free. */
gsl_rng *sim_rng_fresh(const sim_t *sim, const char *name);

/* Formats a time as "12.345678s" into buf (>= 32 bytes); returns buf. */
const char *sim_time_str(sim_time_t t, char *buf);

#endif

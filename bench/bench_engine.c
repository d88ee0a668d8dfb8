/* bench_engine.c -- the classic hold model: N pending events; each event, when it runs,
 * schedules one successor at now + Exp(mean). Measures events per wall-second.
 * Usage: build/bench_engine [pending=100000] [events=20000000] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <gsl/gsl_randist.h>
#include "engine.h"

static gsl_rng *g_r;
static double *g_incr;
static size_t g_ni, g_k;

static void hold_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    double d = g_incr[g_k++ & (g_ni - 1)];
    sim_schedule(sim, (sim_time_t)d, hold_cb, a, NULL);
}

int main(int argc, char **argv)
{
    size_t pending = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    uint64_t events = argc > 2 ? strtoull(argv[2], NULL, 10) : 20000000;
    sim_t *sim = sim_new(1);
    g_r = sim_rng(sim, "hold");
    /* pre-drawn exponential increments (mean 1 ms) so the benchmark times the queue */
    g_ni = 1 << 20;
    g_incr = malloc(g_ni * sizeof *g_incr);
    for (size_t i = 0; i < g_ni; i++) g_incr[i] = gsl_ran_exponential(g_r, 1e6);
    for (size_t i = 0; i < pending; i++)
        sim_schedule(sim, (sim_time_t)gsl_ran_exponential(g_r, 1e6), hold_cb, NULL, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ran = 0;
    while (ran < events) {
        sim_time_t horizon = sim_now(sim) + 10 * SIM_MS;
        ran += sim_run(sim, horizon);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("hold model: %zu pending, %llu events in %.3f s = %.2f M events/s\n", pending,
           (unsigned long long)ran, wall, ran / wall / 1e6);
    sim_free(sim);
    free(g_incr);
    return 0;
}

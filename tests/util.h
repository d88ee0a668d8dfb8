/* util.h -- helpers shared by the unit tests: small topologies built through the public
 * C API, so every suite exercises the same calls the scenario builder uses. */
#ifndef TESTS_UTIL_H
#define TESTS_UTIL_H

#include "net.h"

/* Two hosts "a" (10.0.0.1/24) and "b" (10.0.0.2/24) on one link with the given params. */
typedef struct tu_pair { sim_t *sim; net_t *net; net_node_t *a, *b; net_link_t *link; } tu_pair_t;
void tu_pair_new(tu_pair_t *t, uint64_t seed, sim_time_t latency, uint64_t bw_bps, double loss);
void tu_pair_free(tu_pair_t *t);
/* Records every packet each node sees on the wire (for assertions), via the observer. */
typedef struct tu_capture { int n; struct { sim_time_t t; pkt_t p; char where[32]; } rec[4096]; } tu_capture_t;
void tu_capture_start(net_t *net, tu_capture_t *cap);
/* The ip of "10.x.y.z" as a uint32 (asserting it parses). */
uint32_t tu_ip(const char *s);

#endif

/* realchain_int.h -- declarations shared inside src/realchain (private to the module). */
#ifndef REALCHAIN_INT_H
#define REALCHAIN_INT_H

#include <cJSON.h>
#include "health.h"
#include "scenario.h"

/* A health checker's parameters as they are used (protocol, path, Host, statuses, interval,
 * timeout, thresholds, initial state) and its targets' labels. Caller owns the object. */
cJSON *realchain_health_json(const health_t *hc);
/* "200-399" / "200,202" from a matcher, into buf; returns buf. */
const char *realchain_matcher_str(const health_matcher_t *m, char *buf, size_t n);

/* The object element `name` shared under `kind` (scn_run_object), or NULL. */
void *realchain_object(scn_run_t *r, const char *name, const char *kind);

#endif

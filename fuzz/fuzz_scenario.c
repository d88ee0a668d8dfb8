/* fuzz_scenario.c -- libFuzzer target for the scenario loader: any bytes as a scenario
 * file (scn_load_buffer: YAML, encodings, anchors and aliases, variants, overrides,
 * manifests and their `file:` includes, validation), then building the first variants as
 * ./sim validates them. It must never crash, hang or leak: bad input is an error with a
 * position. Run from scenarios/ (`make fuzz` does) so that seeds' includes resolve. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "scenario.h"
#include "scenario/scenario_int.h"

/* Building is the slow part: only small models are built, and only their first variants
 * (the loader has validated every variant already). */
#define FUZZ_BUILD_VARIANTS 2
#define FUZZ_BUILD_MAX_NODES 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scn_t *s = NULL;
    scn_diag_t d;
    if (scn_load_buffer((const char *)data, size, "fuzz.yaml", &s, &d, NULL) < 0) {
        if (!d.msg[0]) __builtin_trap();        /* every error says what is wrong */
        return 0;
    }
    /* a command-line override on top, as ./sim --set would apply it */
    scn_override(s, "seed=7", &d);
    for (size_t v = 0; v < scn_variant_count(s) && v < FUZZ_BUILD_VARIANTS; v++) {
        const scn_model_t *m = scn_variant_model(s, v);
        if (m->node_names.n > FUZZ_BUILD_MAX_NODES) break;
        scn_run_t *r = NULL;
        if (scn_run_new(s, v, 1, &r, &d) == 0) scn_run_free(r);
    }
    scn_free(s);
    return 0;
}

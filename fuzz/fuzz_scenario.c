/* fuzz_scenario.c -- libFuzzer target for the scenario loader: any bytes as a scenario
 * file (scn_load_buffer: YAML, encodings, anchors and aliases, variants, manifests and
 * their `file:` includes, validation), then command-line overrides -- each line of the
 * input that starts with "#!set " (a YAML comment) is one KEY=VALUE, as --set gives it --
 * then building the first variants as ./sim validates them. It must never crash, hang or
 * leak: bad input is an error with a message. Run from scenarios/ (`make fuzz` does) so
 * that seeds' includes resolve. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "scenario.h"
#include "scenario/scenario_int.h"

/* Building is the slow part: only small models are built, and only their first variants
 * (the loader has validated every variant already). */
#define FUZZ_BUILD_VARIANTS 2
#define FUZZ_BUILD_MAX_NODES 512
#define FUZZ_MAX_OVERRIDES 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scn_t *s = NULL;
    scn_diag_t d;
    if (scn_load_buffer((const char *)data, size, "fuzz.yaml", &s, &d, NULL) < 0) {
        if (!d.msg[0]) __builtin_trap();        /* every error says what is wrong */
        return 0;
    }
    /* command-line overrides on top, as ./sim --set applies them */
    int overrides = 0;
    for (size_t i = 0; i + 6 <= size && overrides < FUZZ_MAX_OVERRIDES; i++) {
        if ((i > 0 && data[i - 1] != '\n') || memcmp(data + i, "#!set ", 6) != 0) continue;
        size_t end = i + 6;
        while (end < size && data[end] != '\n' && data[end] != '\0') end++;
        char kv[512];
        size_t n = end - (i + 6) < sizeof kv - 1 ? end - (i + 6) : sizeof kv - 1;
        memcpy(kv, data + i + 6, n);
        kv[n] = 0;
        if (scn_override(s, kv, &d) < 0 && !d.msg[0]) __builtin_trap();
        overrides++;
    }
    for (size_t v = 0; v < scn_variant_count(s) && v < FUZZ_BUILD_VARIANTS; v++) {
        const scn_model_t *m = scn_variant_model(s, v);
        if (m->node_names.n > FUZZ_BUILD_MAX_NODES) break;
        scn_run_t *r = NULL;
        if (scn_run_new(s, v, 1, &r, &d) == 0) scn_run_free(r);
    }
    scn_free(s);
    return 0;
}

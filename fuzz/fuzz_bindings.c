/* fuzz_bindings.c -- libFuzzer target for real-socket mode's bindings loader: any bytes
 * as a bindings file (real_bindings_load_buffer, the code path of `./sim --real FILE`:
 * YAML, every key and value, endpoints, URLs through libcurl's parser), then, when the
 * file loads, resolved against every variant of one fixed scenario (real_plan_new, as
 * ./sim does before anything is sent: names not in the variant, unbound names, ports, the
 * rate cap). Nothing is sent. It must never crash, hang or leak: bad input is an error
 * with a message. The scenario (aks-dsr.yaml, or $FUZZ_BINDINGS_SCENARIO) is loaded and
 * built once; run from scenarios/ (`make fuzz` does). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "real.h"
#include "scenario.h"

/* The scenario's variants, built once (real_plan_new only reads a run). */
static scn_t *g_scn;
static scn_run_t *g_runs[16];
static size_t g_nruns;

static void setup(void)
{
    const char *path = getenv("FUZZ_BINDINGS_SCENARIO");
    if (!path) path = "aks-dsr.yaml";
    scn_diag_t d;
    if (scn_load(path, &g_scn, &d, NULL) < 0) {
        scn_diag_print(&d, stderr);
        fprintf(stderr, "fuzz_bindings: run from scenarios/ or set FUZZ_BINDINGS_SCENARIO\n");
        abort();
    }
    for (size_t v = 0; v < scn_variant_count(g_scn) && g_nruns < 16; v++) {
        if (scn_run_new(g_scn, v, scn_seed(g_scn), &g_runs[g_nruns], &d) < 0) {
            scn_diag_print(&d, stderr);
            abort();
        }
        g_nruns++;
    }
}

/* Whether line:col is in the text: line 1 .. lines, col >= 1. Lines end where YAML 1.1
 * (libyaml) says: LF, CR LF, a lone CR, and NEL, LS, PS. */
static int pos_in(const uint8_t *data, size_t size, int line, int col)
{
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')) ||
                 (data[i] == 0xc2 && i + 1 < size && data[i + 1] == 0x85) ||
                 (data[i] == 0xe2 && i + 2 < size && data[i + 1] == 0x80 &&
                  (data[i + 2] == 0xa8 || data[i + 2] == 0xa9));
    return line >= 1 && line <= lines && col >= 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_scn) setup();
    real_bindings_t *b = NULL;
    scn_diag_t d = {0};
    if (real_bindings_load_buffer((const char *)data, size, "fuzz.bind.yaml", &b, &d) < 0) {
        /* every error says what is wrong, and where in the file */
        if (!d.msg[0] || strcmp(d.file, "fuzz.bind.yaml") || !pos_in(data, size, d.line, d.col))
            __builtin_trap();
        return 0;
    }
    real_opts_t o;
    real_opts_init(&o);
    for (size_t i = 0; i < g_nruns; i++) {
        real_plan_t *p = NULL;
        char *err = NULL;
        if (real_plan_new(b, g_runs[i], &o, &p, &err) < 0) {
            /* about the bindings file (a name: its position; unbound names: the list), or
             * about the scenario (the rate cap) */
            if (!err || p || (strncmp(err, "fuzz.bind.yaml:", 15) &&
                              strncmp(err, scn_file(g_scn), strlen(scn_file(g_scn)))))
                __builtin_trap();
            lb_free(err);
        } else {
            if (!p || err) __builtin_trap();
            real_plan_free(p);
        }
    }
    real_bindings_free(b);
    return 0;
}

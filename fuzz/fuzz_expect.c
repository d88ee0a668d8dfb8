/* fuzz_expect.c -- libFuzzer target for the expectation parser (expect.c): any text as
 * one expectation, "METRIC OP NUMBER [after T] [before T] | between A and B". It must never
 * crash: a bad expectation is an error with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "scenario/scenario_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;                     /* expectations are YAML strings: no NUL inside */
    scn_expect_t e;
    scn_diag_t d = { 0 };
    elem_pos_t pos = { "fuzz.yaml", 1, 1 };
    if (expect_parse(text, pos, &e, &d) == 0) expect_clear(&e);
    else if (!d.msg[0]) __builtin_trap();
    free(text);
    return 0;
}

#!/usr/bin/env bash
# layers.sh -- the dependency direction engine <- net <- models <- scenario <- main: no
# source in models/ reaches, directly or through another header, a header of the layers
# above it (the scenario loader and builder, the results writers, real mode, the real
# chain). Models talk to the builder through include/element.h and emit into the sinks'
# interfaces (metrics.h, explain.h), which are allowed. Each file's header closure comes
# from the compiler (cc -MM). A planted offender checks that the check can fail.
# Run by `make test` from the repo root; `bash tests/layers.sh FILE...` checks those files.
set -u
CC=${CC:-cc}
FORBIDDEN='^(include/(scenario|manifests|report|db|capture|plots|draw|helper|real|realchain)\.h|src/(scenario|report|real|realchain)/.*)$'

# Prints "FILE: HEADER" for each forbidden header FILE includes; returns 1 if any.
check() {
  local f deps rc=0
  for f in "$@"; do
    deps=$("$CC" -MM -MG -Iinclude -Isrc -D_GNU_SOURCE "$f" 2>/dev/null) ||
      { echo "$f: cannot list its includes"; rc=1; continue; }
    for h in $(echo "$deps" | sed -e 's/^[^:]*://' -e 's/\\$//'); do
      if [[ $h =~ $FORBIDDEN ]]; then echo "$f: includes $h (a layer above models)"; rc=1; fi
    done
  done
  return $rc
}

if [ $# -gt 0 ]; then check "$@"; exit; fi

pass=0 fail=0
if check models/*/*.c; then pass=$((pass + 1)); else fail=$((fail + 1)); fi

# The check itself: a model file that includes scenario.h must be caught.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/models/x"
printf '#include "element.h"\n#include "scenario.h"\n' > "$tmp/models/x/bad.c"
if check "$tmp/models/x/bad.c" > "$tmp/out"; then
  echo "FAIL the planted models/x/bad.c including scenario.h was not caught"
  fail=$((fail + 1))
elif ! grep -q 'include/scenario.h' "$tmp/out"; then
  echo "FAIL the planted offender was reported without naming scenario.h:"; cat "$tmp/out"
  fail=$((fail + 1))
else
  pass=$((pass + 1))
fi

echo "layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

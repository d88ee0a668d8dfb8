#!/usr/bin/env bash
# fuzz-regress.sh -- every input that once crashed, hung or exhausted the loader or a run
# (issue 8's reproducers, the fuzzer's findings: tests/fuzz/regress/*.yaml) through
# SIM --check; NAME.args, when present, adds arguments (one a line; @OUT@ is a fresh
# temporary directory, so `--out @OUT@` writes every output and exercises the writers and
# a run's teardown). Each must end with exit 0, 1 or 2 within
# REGRESS_SECONDS and REGRESS_MEMORY_KB; exit 2 must say where (file:line:col) or why;
# NAME.want, when present, is text stderr or stdout must contain (for an input that must
# work: its expectations' summary line). With a sanitizer build (make asan passes
# build-asan/sim) any sanitizer report fails the input too, and the memory limit is the
# sanitizer's own (an address-space limit would stop ASan's shadow memory).
# Bindings files (tests/fuzz/regress/bindings/*.yaml, fuzz_bindings' findings) go through
# SIM --validate --real FILE scenarios/aks-dsr.yaml (loaded and resolved against every
# variant; nothing is sent), each with a NAME.want: its first error line.
# Usage: bash tests/fuzz-regress.sh [SIM]  (default ./sim). Run by `make test` from the
# repo root.
set -u
SIM=${1:-./sim}
limit_s=${REGRESS_SECONDS:-30}
limit_kb=${REGRESS_MEMORY_KB:-4000000}
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sanitized=false
if grep -qa __asan_init "$SIM"; then
  sanitized=true
  limit_s=$((limit_s * 4))
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=86:hard_rss_limit_mb=$((limit_kb / 1024))"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
fi
# one input: NAME, the .want file or "", then the command; counts it passed or failed
replay() {
  local name=$1 want=$2
  shift 2
  if $sanitized; then
    timeout -k 2 "$limit_s" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  else
    (ulimit -v "$limit_kb"; exec timeout -k 2 "$limit_s" "$@") </dev/null >"$tmp/out" 2>"$tmp/err"
  fi
  local rc=$? why=""
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/err"; then
    why="sanitizer report"
  else
    case $rc in
      0|1) ;;
      2) grep -q "error:" "$tmp/err" || why="exit 2 without an error message" ;;
      124|137) why="did not finish within ${limit_s} s" ;;
      *) why="exit $rc" ;;
    esac
  fi
  if [ -z "$why" ] && [ -n "$want" ] && ! cat "$tmp/err" "$tmp/out" | grep -qF -- "$(head -1 "$want")"; then
    why="output lacks: $(head -1 "$want")"
  fi
  if [ -z "$why" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name: $why"
    grep -E -A25 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/err" | head -30 | sed 's/^/    /'
    sed 's/^/    /' "$tmp/err" | head -5
  fi
}
for f in tests/fuzz/regress/*.yaml; do
  name=$(basename "$f" .yaml)
  rm -rf "$tmp/o"
  args=()
  if [ -f "tests/fuzz/regress/$name.args" ]; then
    while IFS= read -r a; do args+=("${a//@OUT@/$tmp/o}"); done <"tests/fuzz/regress/$name.args"
  fi
  want=tests/fuzz/regress/$name.want
  [ -f "$want" ] || want=""
  replay "$name" "$want" "$SIM" --check "${args[@]}" "$f"
done
for f in tests/fuzz/regress/bindings/*.yaml; do
  name=bindings/$(basename "$f" .yaml)
  want=tests/fuzz/regress/$name.want
  if [ ! -f "$want" ]; then
    fail=$((fail + 1))
    echo "FAIL $name: no $want (the first error line it must give)"
    continue
  fi
  replay "$name" "$want" "$SIM" --validate --real "$f" scenarios/aks-dsr.yaml
done
echo "fuzz-regress: $pass passed, $fail failed"
[ "$fail" = 0 ]

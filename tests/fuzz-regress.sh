#!/usr/bin/env bash
# fuzz-regress.sh -- every input that once crashed, hung or exhausted the loader (issue 8's
# reproducers, the fuzzer's findings: tests/fuzz/regress/*.yaml) through ./sim --check.
# Each must end with exit 0, 1 or 2 within REGRESS_SECONDS and REGRESS_MEMORY_KB of
# address space; exit 2 must say where (file:line:col) or why; NAME.want, when present, is
# text stderr must contain. Run by `make test` from the repo root. Nothing is written.
set -u
limit_s=${REGRESS_SECONDS:-30}
limit_kb=${REGRESS_MEMORY_KB:-4000000}
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in tests/fuzz/regress/*.yaml; do
  name=$(basename "$f" .yaml)
  (ulimit -v "$limit_kb"; exec timeout -k 2 "$limit_s" ./sim --check "$f") \
    </dev/null >"$tmp/out" 2>"$tmp/err"
  rc=$?
  why=""
  case $rc in
    0|1) ;;
    2) grep -q "error:" "$tmp/err" || why="exit 2 without an error message" ;;
    124|137) why="did not finish within ${limit_s} s" ;;
    *) why="exit $rc" ;;
  esac
  want=tests/fuzz/regress/$name.want
  if [ -z "$why" ] && [ -f "$want" ] && ! grep -qF -- "$(head -1 "$want")" "$tmp/err"; then
    why="stderr lacks: $(head -1 "$want")"
  fi
  if [ -z "$why" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name: $why"
    sed 's/^/    /' "$tmp/err" | head -5
  fi
done
echo "fuzz-regress: $pass passed, $fail failed"
[ "$fail" = 0 ]

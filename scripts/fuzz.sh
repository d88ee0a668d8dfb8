#!/usr/bin/env bash
# fuzz.sh -- make fuzz: runs each libFuzzer target for SECONDS, then prints what it did.
#   scripts/fuzz.sh SECONDS build-fuzz/fuzz_scenario build-fuzz/fuzz_expect ...
#   scripts/fuzz.sh --coverage [TARGET...]   line coverage of src/scenario and
#                                  src/real/bindings.c reached by the corpora (default: all)
# Targets run from scenarios/, so that the seeds' `file:` includes resolve. Corpora live in
# build-fuzz/corpus-<target>/ and grow run after run; findings are written to
# build-fuzz/crash-*, leak-*, timeout-*, oom-* (copy them into tests/fuzz/regress/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build-fuzz
mkdir -p "$out"

# Seeds for the expectation parser: every expectation written in the scenarios.
expect_seeds() {
  mkdir -p "$out/seeds-expect"
  grep -ho '"[a-z][a-z0-9_.-]*\.[a-z0-9_.]* *[<>=!]=\? *[^"]*"' scenarios/*.yaml docs/*.md |
    tr -d '"' | sort -u | awk -v d="$out/seeds-expect" '{ f = sprintf("%s/e%04d", d, NR); print > f; close(f) }'
}

if [ "${1:-}" = "--coverage" ]; then
  # the same targets built for source-based coverage, run over the corpora once
  shift
  targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(scenario expect bindings)
  cov=$out/cov
  rm -rf "$cov"
  mkdir -p "$cov"
  flags="-O1 -g -fprofile-instr-generate -fcoverage-mapping -fsanitize=fuzzer"
  libs=$(pkg-config --libs gsl sqlite3 libcjson yaml-0.1 libpcap libcrypto libcurl)
  srcs=$(ls src/*/*.c models/*/*.c)
  # the library once (the generated element table included), then one binary per target
  mkdir -p "$cov/obj"
  objs=()
  for c in $srcs build/gen/elem_types.c; do
    [ -f "$c" ] || continue
    o=$cov/obj/$(echo "$c" | tr / _).o
    clang-14 -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc $(pkg-config --cflags libcjson) $flags \
      -c -o "$o" "$c"
    objs+=("$o")
  done
  objects=()
  for t in "${targets[@]}"; do
    clang-14 -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc $(pkg-config --cflags libcjson) $flags \
      -o "$cov/fuzz_$t" fuzz/fuzz_$t.c "${objs[@]}" $libs -lm
    (cd scenarios && LLVM_PROFILE_FILE="$cov/$t.profraw" "$cov/fuzz_$t" -runs=0 \
       "$out/corpus-$t" >/dev/null 2>&1 || true)
    [ ${#objects[@]} -eq 0 ] && objects=("$cov/fuzz_$t") || objects+=(-object "$cov/fuzz_$t")
  done
  llvm-profdata-14 merge -o "$cov/all.profdata" "$cov"/*.profraw
  llvm-cov-14 report "${objects[@]}" -instr-profile="$cov/all.profdata" \
    src/scenario/*.c src/real/bindings.c src/util/lb.c
  exit 0
fi

secs=$1
shift
expect_seeds
status=0
for bin in "$@"; do
  t=$(basename "$bin")
  t=${t#fuzz_}
  corpus=$out/corpus-$t
  mkdir -p "$corpus"
  case $t in
    scenario) seeds=("$root/scenarios" "$root/fuzz/seeds" "$root/tests/fuzz/regress")
              dict=$root/fuzz/scenario.dict
              maxlen=16384 ;;
    expect)   seeds=("$out/seeds-expect"); dict=$root/fuzz/expect.dict; maxlen=256 ;;
    bindings) seeds=("$root/fuzz/seeds-bindings" "$root/tests/fuzz/regress/bindings")
              dict=$root/fuzz/bindings.dict
              maxlen=4096 ;;
  esac
  echo "== fuzz_$t: $secs s (corpus $corpus)"
  log=$out/fuzz-$t.log
  # -timeout: one input may take at most 25 s (a hang is a finding); -rss_limit_mb: so may
  # 2 GB of memory; no -fork: the numbers below are those of one process
  (cd "$root/scenarios" &&
   "$root/$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=$maxlen \
     -dict="$dict" -print_final_stats=1 -artifact_prefix="$out/" \
     "$corpus" "${seeds[@]}") >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true
  grep -E '^Done [0-9]+ runs' "$log" || true
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  grep -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|Test unit written' "$log" || true
done
exit $status

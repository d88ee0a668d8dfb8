#!/usr/bin/env bash
# shard.sh -- sweeps beyond one machine, as a user runs them: three shard processes at
# once, then --merge, give the same tables and a byte-identical summary.json as one --jobs
# run of the same sweep (also attaching one shard file at a time, and when the --jobs run's
# own folder is merged again); an interrupted shard resumes and completes; shards of another
# sweep or scenario, and a shard folder of another sweep, are refused (exit 2, nothing
# written); runs missing from the shards are named (exit 3); duplicates are reported; the
# Slurm script, submitted through a stand-in sbatch and its jobs run as Slurm would, ends
# in the same summary. Run by `make test` from the repo root.
set -u
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. tests/lib.sh

same() {   # name, file, file
  if cmp -s "$2" "$3"; then ok
  else bad "$1: $2 and $3 differ"; diff "$2" "$3" | head -6 | sed 's/^/    /'
  fi
}
# Every table of a results.db by run id, leaving out what only names a row in one file
# (runs.id, run_id) or a folder (run_group, scenario_file).
dump() {
  local db=$1 t cols
  sqlite3 "$db" "SELECT run_key, scenario, variant, variant_description, seed, duration_s,
    t_end_s, bucket_s, status, events, requests, mode, bindings, sweep_key, sweep_index,
    scenario_hash, lbchain_version, overrides FROM runs ORDER BY run_key"
  for t in requests probes health drops series counters expectations run_results; do
    cols=$(sqlite3 "$db" "SELECT group_concat('t.' || name, ', ') FROM pragma_table_info('$t')
                          WHERE name != 'run_id'")
    echo "== $t"
    sqlite3 "$db" "SELECT r.run_key, $cols FROM $t t JOIN runs r ON r.id = t.run_id
                   ORDER BY r.run_key, t.rowid"
  done
  sqlite3 "$db" "SELECT key, scenario, scenario_hash, lbchain_version, definition, runs FROM sweeps;
                 SELECT scenario_hash, path, main, hex(content) FROM scenario_files ORDER BY path"
}
same_tables() {   # name, db, db
  dump "$2" >"$tmp/a.dump"; dump "$3" >"$tmp/b.dump"
  same "$1" "$tmp/a.dump" "$tmp/b.dump"
  [ "$(sqlite3 "$3" 'SELECT count(*) FROM requests')" -gt 100 ] && ok || bad "$1: no requests"
}
# Waits (at most 30 s) for background process $1 to end; sets $got to its exit status.
reap() {
  local i
  for i in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && { echo "    (still running after 30 s: killed)"; kill -9 "$1"; }
  wait "$1"
  got=$?
}

# A sweep of core-nat: 2 variants x 2 rates x 3 seeds = 12 runs, 10 s each. Its
# expectation of more than 1300 requests cannot hold in 10 s: the --jobs run and the
# merge exit 1; a shard leaves expectations to the merge and exits 0.
SWEEP=(--seeds 3 --sweep 'traffic.browse.rate=40/s,60/s' --set duration=10s --no-pcap)
check reference 1 ./sim -q "${SWEEP[@]}" --jobs 2 --out "$tmp/ref" scenarios/core-nat.yaml
REF=$tmp/ref/core-nat
KEY=$(jq -r .sweep.key "$REF/summary.json")            # shards write into sweep-<key>/
n=$(sqlite3 "$REF/results.db" "SELECT count(DISTINCT run_key) FROM runs")
[ "$n" = 12 ] && ok || bad "reference: $n run ids in results.db, expected 12"

pids=()
for i in 0 1 2; do
  jobs=(); [ "$i" = 1 ] && jobs=(--jobs 2)
  ./sim -q "${SWEEP[@]}" "${jobs[@]}" --shard "$i/3" --out "$tmp/sh" scenarios/core-nat.yaml \
    >"$tmp/shard$i.out" 2>"$tmp/shard$i.err" &
  pids+=($!)
done
for i in 0 1 2; do
  reap "${pids[$i]}"
  [ "$got" = 0 ] && ok || { bad "shard $i/3: exit $got, expected 0"; head -3 "$tmp/shard$i.err"; }
done
pids=()
SH=$tmp/sh/core-nat/sweep-$KEY
[ -d "$SH" ] && ok || bad "shards: no $SH"
n=$(sqlite3 "$SH/shard-1-of-3/results.db" "SELECT group_concat(sweep_index, ',') FROM
      (SELECT sweep_index FROM runs ORDER BY sweep_index)")
[ "$n" = "1,4,7,10" ] && ok || bad "shard 1/3 ran runs $n, expected 1,4,7,10 (index mod 3)"
contains shard-summary "$SH/shard-1-of-3/summary.json" '"shard":	"1/3"'

check merge 1 ./sim -q --merge "$tmp/merged" "$SH"/shard-*-of-3
same merge-summary "$REF/summary.json" "$tmp/merged/summary.json"
same_tables merge-tables "$REF/results.db" "$tmp/merged/results.db"
[ -s "$tmp/merged/report.html" ] && ok || bad "merge: no report.html"
contains merge-report "$tmp/merged/report.html" "Across seeds"
# one shard file attached at a time: the same file
check merge-batch 1 ./sim -q --no-plots --merge-batch 1 --merge "$tmp/merged1" "$SH"/shard-*-of-3
same_tables merge-batch-tables "$tmp/merged/results.db" "$tmp/merged1/results.db"
# a report regenerated later from the --jobs run's own results.db
check regenerate 1 ./sim -q --no-plots --merge "$tmp/again" "$REF"
same regenerate-summary "$REF/summary.json" "$tmp/again/summary.json"

# ---- refused: shards of another sweep or scenario, a shard folder of another sweep ----
check other-sweep-shard 0 ./sim -q --seeds 2 --set duration=10s --no-pcap --shard 0/1 \
  --out "$tmp/other" scenarios/core-nat.yaml
check mixed-sweeps 2 ./sim -q --merge "$tmp/mix" "$SH/shard-0-of-3" "$tmp/other/core-nat"/sweep-*/shard-0-of-1
contains mixed-sweeps-msg "$tmp/err" "holds another sweep of core-nat"
[ -e "$tmp/mix" ] && bad "mixed-sweeps: wrote $tmp/mix" || ok
mkdir -p "$tmp/cn"
sed 's/^duration: 30s/duration: 31s/' scenarios/core-nat.yaml >"$tmp/cn/core-nat.yaml"
check changed-scenario-shard 0 ./sim -q "${SWEEP[@]}" --shard 0/3 --out "$tmp/chg" "$tmp/cn/core-nat.yaml"
check mixed-scenarios 2 ./sim -q --merge "$tmp/mix" "$SH/shard-1-of-3" "$tmp/chg/core-nat"/sweep-*/shard-0-of-3
contains mixed-scenarios-msg "$tmp/err" "is from another scenario"
[ -e "$tmp/mix" ] && bad "mixed-scenarios: wrote $tmp/mix" || ok
# another sweep into the same --out: its own folder, the first one untouched; a shard
# folder that holds another sweep's runs (copied there) is refused, nothing run
before=$(sqlite3 "$SH/shard-0-of-3/results.db" "SELECT count(*) FROM runs")
check another-sweep-folder 0 ./sim -q --seeds 2 --set duration=10s --no-pcap --shard 0/3 \
  --out "$tmp/sh" scenarios/core-nat.yaml
[ "$(ls -d "$tmp/sh/core-nat"/sweep-* | wc -l)" = 2 ] && ok || bad "another-sweep-folder: not a folder of its own"
[ "$(sqlite3 "$SH/shard-0-of-3/results.db" "SELECT count(*) FROM runs")" = "$before" ] && ok \
  || bad "another-sweep-folder: runs were written into the first sweep's shard"
other=$(ls -d "$tmp/sh/core-nat"/sweep-* | grep -v "$KEY")
cp "$SH/shard-0-of-3/results.db" "$other/shard-0-of-3/results.db"
rm -f "$other/shard-0-of-3/results.db-wal" "$other/shard-0-of-3/results.db-shm"
check reused-folder 2 ./sim -q --seeds 2 --set duration=10s --no-pcap --shard 0/3 \
  --out "$tmp/sh" scenarios/core-nat.yaml
contains reused-folder-msg "$tmp/err" "holds 4 runs of another sweep"
[ "$(sqlite3 "$other/shard-0-of-3/results.db" "SELECT count(*) FROM runs")" = 4 ] && ok \
  || bad "reused-folder: runs were written"
# a shard written by another lbchain (its version changed in the file)
cp -r "$SH/shard-2-of-3" "$tmp/oldver"
sqlite3 "$tmp/oldver/results.db" "UPDATE sweeps SET lbchain_version = '0.0.9';
                                  UPDATE runs SET lbchain_version = '0.0.9'"
check other-version 2 ./sim -q --merge "$tmp/mix" "$SH/shard-0-of-3" "$tmp/oldver"
contains other-version-msg "$tmp/err" "was written by lbchain 0.0.9"
[ -e "$tmp/mix" ] && bad "other-version: wrote $tmp/mix" || ok
mkdir -p "$tmp/junk"
echo "not a database" >"$tmp/junk/results.db"
check merge-junk 2 ./sim -q --merge "$tmp/mix" "$SH/shard-0-of-3" "$tmp/junk"
contains merge-junk-msg "$tmp/err" "junk/results.db"
[ -e "$tmp/mix" ] && bad "merge-junk: wrote $tmp/mix" || ok
check merge-self 2 ./sim -q --merge "$SH/shard-0-of-3" "$SH/shard-0-of-3"
check merge-nothing 2 ./sim -q --merge "$tmp/none"
check merge-not-a-shard 2 ./sim -q --merge "$tmp/none" "$tmp/cn"

# ---- missing and duplicate runs ----
check missing 3 ./sim --no-plots --merge "$tmp/part" "$SH/shard-0-of-3" "$SH/shard-2-of-3"
[ "$(grep -c '^MISSING ' "$tmp/out")" = 4 ] && ok || bad "missing: $(grep -c '^MISSING ' "$tmp/out") MISSING lines, expected 4"
id=$(sqlite3 "$SH/shard-1-of-3/results.db" "SELECT run_key FROM runs ORDER BY sweep_index LIMIT 1")
contains missing-id "$tmp/out" "no shard has this run (id $id)"
[ "$(grep -c '"kind":	"run-missing"' "$tmp/part/summary.json")" = 4 ] && ok \
  || bad "missing: summary.json does not list 4 runs as run-missing"
check duplicates 1 ./sim -q --no-plots --merge "$tmp/dup" "$SH"/shard-*-of-3 "$REF"
[ "$(grep -c 'duplicate: ' "$tmp/err")" = 12 ] && ok || bad "duplicates: $(grep -c 'duplicate: ' "$tmp/err") reported, expected 12"
same duplicates-summary "$REF/summary.json" "$tmp/dup/summary.json"

# ---- an interrupted shard resumes and completes ----
# bench-chain per-request, a grid of two durations: run 0 (2 s simulated) takes a fraction
# of a CPU-second, run 1 (40 s) about 2.5. SIGINT 0.8 s after run 0 is in results.db lands
# inside run 1 (past its build, which a loaded machine can stretch beyond 0.2 s: then the
# signal stopped the sweep before run 1 and nothing of it was written): run 0 is kept, run 1
# is written incomplete (exit 130). Run again: run 0 is skipped, run 1 replaced by a
# complete one.
LONG=(-v per-request --sweep duration=2s,40s --no-expect --no-pcap --no-plots)
check long-reference 0 ./sim -q "${LONG[@]}" --jobs 2 --out "$tmp/lref" scenarios/bench-chain.yaml
LKEY=$(jq -r .sweep.key "$tmp/lref/bench-chain/summary.json")
./sim -q "${LONG[@]}" --shard 0/1 --out "$tmp/long" scenarios/bench-chain.yaml \
  >"$tmp/long.out" 2>"$tmp/long.err" &
pid=$!
pids=("$pid")
LDB=$tmp/long/bench-chain/sweep-$LKEY/shard-0-of-1/results.db
for i in $(seq 600); do
  [ "$(sqlite3 "$LDB" "SELECT count(*) FROM runs WHERE status = 'complete'" 2>/dev/null)" = 1 ] && break
  sleep 0.05
done
sleep 0.8
kill -INT "$pid"
reap "$pid"
pids=()
[ "$got" = 130 ] && ok || { bad "interrupted shard: exit $got, expected 130"; head -3 "$tmp/long.err"; }
n=$(sqlite3 "$LDB" "SELECT group_concat(status, ',') FROM (SELECT status FROM runs ORDER BY id)")
[ "$n" = "complete,incomplete" ] && ok || bad "interrupted shard: runs $n, expected complete,incomplete"
first=$(sqlite3 "$LDB" "SELECT id || run_key FROM runs WHERE status = 'complete'")
check resumed 0 ./sim "${LONG[@]}" --shard 0/1 --out "$tmp/long" scenarios/bench-chain.yaml
contains resumed-msg "$tmp/err" "2 of its 2 runs; 1 already complete"
n=$(sqlite3 "$LDB" "SELECT group_concat(status, ',') FROM (SELECT status FROM runs ORDER BY sweep_index)")
[ "$n" = "complete,complete" ] && ok || bad "resumed shard: runs $n, expected two complete"
[ "$(sqlite3 "$LDB" "SELECT id || run_key FROM runs WHERE sweep_index = 0")" = "$first" ] && ok \
  || bad "resumed shard: the run already complete was run again"
check long-merge 0 ./sim -q --merge "$tmp/lmerged" "$tmp/long/bench-chain/sweep-$LKEY/shard-0-of-1"
same long-summary "$tmp/lref/bench-chain/summary.json" "$tmp/lmerged/summary.json"
same_tables long-tables "$tmp/lref/bench-chain/results.db" "$tmp/lmerged/results.db"

# ---- the Slurm script, submitted through a stand-in sbatch ----
mkdir -p "$tmp/bin" "$tmp/jobs"
cat >"$tmp/bin/sbatch" <<'SB'
#!/bin/bash
# A stand-in for Slurm's sbatch: keeps the job script (standard input) and the options,
# answers a job id as --parsable does ("id;cluster").
id=$((100 + $(ls "$SBATCH_DIR" | grep -c '\.sh$')))
cat >"$SBATCH_DIR/job-$id.sh"
printf '%s\n' "$@" >"$SBATCH_DIR/job-$id.args"
echo "$id;test"
SB
chmod +x "$tmp/bin/sbatch"
check slurm-emit 0 ./sim --emit-job slurm --shards 3 "${SWEEP[@]}" --out "$tmp/slurm" scenarios/core-nat.yaml
cp "$tmp/out" "$tmp/slurm.sh"
bash -n "$tmp/slurm.sh" && ok || bad "slurm: the script is not valid bash"
SBATCH_DIR=$tmp/jobs PATH="$tmp/bin:$PATH" check slurm-submit 0 bash "$tmp/slurm.sh"
contains slurm-array "$tmp/jobs/job-100.sh" "#SBATCH --array=0-2"
contains slurm-output "$tmp/jobs/job-100.sh" "#SBATCH --output=$tmp/slurm/core-nat/sweep-$KEY/logs/shard-%a.out"
contains slurm-dependency "$tmp/jobs/job-101.args" "--dependency=afterany:100"
for i in 0 1 2; do      # each task as Slurm runs it: its index in the environment
  SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=2 \
    check "slurm-task-$i" 0 bash "$tmp/jobs/job-100.sh"
done
check slurm-merge 1 bash "$tmp/jobs/job-101.sh"
same slurm-summary "$REF/summary.json" "$tmp/slurm/core-nat/sweep-$KEY/merged/summary.json"

# ---- the Kubernetes manifest (its structure: tests/test_sweep.c) ----
check k8s-no-image 2 ./sim --emit-job k8s --shards 3 --pvc results scenarios/core-nat.yaml
contains k8s-no-image-msg "$tmp/err" "needs --image IMAGE"
check k8s-emit 0 ./sim --emit-job k8s --shards 3 --image lbchain:test --pvc results \
  "${SWEEP[@]}" scenarios/core-nat.yaml
contains k8s-job "$tmp/out" "completionMode: Indexed"
check k8s-one-scenario 2 ./sim --emit-job k8s --shards 3 --image i --pvc p scenarios/core-nat.yaml scenarios/aks-dsr.yaml
check shards-needs-emit 2 ./sim --shards 3 scenarios/core-nat.yaml

echo "shard: $pass passed, $fail failed"
[ "$fail" = 0 ]

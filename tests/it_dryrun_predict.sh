#!/usr/bin/env bash
# The makespan prediction of the dry run: `--dry-run JOB --ranks ...` with the rate from --rate,
# from the run folder's sweep.log, or measured; bad option values get one line and status 2.
# No MPI, no data (the job fixes its sizes).
set -u
TEST=it_dryrun_predict
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DS_BIN:-$ROOT/bin/distill_sweep}
fail() { echo "FAIL: $TEST: $*"; exit 1; }
[ -x "$BIN" ] || fail "$BIN not built (make bin/distill_sweep)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ds_it_XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

cat >"$WORK/p.job" <<EOF
[run]
name = p
results = $WORK/results
threads = 1
[data]
train_samples = 256
test_samples = 64
[train]
epochs = 2
batch = 32
[distill]
temperatures = 20
[attack fgsm]
kind = fgsm
samples = 64
shard = 16
EOF

# expect_usage PATTERN ARGS...: status 2 and exactly one line on stderr matching PATTERN.
expect_usage() {
    local pat=$1 st=0
    shift
    "$BIN" "$@" >"$WORK/out" 2>"$WORK/err" || st=$?
    [ $st -eq 2 ] || fail "status $st (expected 2) for: $*: $(cat "$WORK/err")"
    [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "not one line for: $*: $(cat "$WORK/err")"
    grep -q -- "$pat" "$WORK/err" || fail "expected '$pat' for: $*, got: $(cat "$WORK/err")"
}
J=$WORK/p.job
expect_usage "^distill_sweep: --ranks: '0' is not an integer >= 1$" --dry-run "$J" --ranks 0
expect_usage "^distill_sweep: --ranks: 'abc' is not an integer >= 1$" --dry-run "$J" --ranks abc
expect_usage "^distill_sweep: --ranks: '' is not an integer >= 1$" --dry-run "$J" --ranks 16,,64
expect_usage "^distill_sweep: --ranks: '8x' is not an integer >= 1$" --dry-run "$J" --ranks 4,8x
expect_usage "^distill_sweep: --ranks needs a value$" --dry-run "$J" --ranks
expect_usage "^distill_sweep: --rate: '-1' is not a rate > 0 (GFLOP/s per rank)$" --dry-run "$J" --ranks 4 --rate -1
expect_usage "^distill_sweep: --rate: 'fast' is not a number$" --dry-run "$J" --ranks 4 --rate fast
expect_usage '^distill_sweep: --gang-max needs a whole number from 1 to 256$' --dry-run "$J" --ranks 4 --gang-max 0
expect_usage "^distill_sweep: --comm-ms: '-2' is negative$" --dry-run "$J" --ranks 4 --comm-ms -2
expect_usage "need --ranks" --dry-run "$J" --rate 5
expect_usage "go with --dry-run" "$J" --ranks 4

# --rate: the rate line, then one table per rank count; on one rank makespan = work, 100%.
"$BIN" --dry-run "$J" --ranks 1,3 --rate 2 --gang-max 4 --comm-ms 1.5 >"$WORK/out" 2>&1 || fail "--rate: $(cat "$WORK/out")"
grep -qx "rate given: 2 GFLOP/s per rank (--rate)" "$WORK/out" || fail "no rate line: $(cat "$WORK/out")"
grep -q "^prediction on 1 ranks (communication 1.5 ms per step and extra gang rank):" "$WORK/out" || fail "no table for 1 rank"
grep -q "^prediction on 3 ranks" "$WORK/out" || fail "no table for 3 ranks"
[ "$(grep -c '^  gangs that grow (<= 4) ' "$WORK/out")" -eq 2 ] || fail "no growing-gang rows: $(cat "$WORK/out")"
row=$(grep -m1 '^  one rank per task (today)' "$WORK/out")
set -- $row
[ "$6" = "$7" ] && [ "$9" = "100.0%" ] || fail "one rank: makespan $6, work $7, utilisation $9: $row"
# Without --ranks: the plan only, as before.
"$BIN" --dry-run "$J" >"$WORK/plain" 2>&1 || fail "--dry-run: $(cat "$WORK/plain")"
grep -q "prediction\|rate" "$WORK/plain" && fail "--dry-run without --ranks predicts"
head -n "$(wc -l <"$WORK/plain")" "$WORK/out" | cmp -s - "$WORK/plain" || fail "the plan part changed with --ranks"

# The run folder's sweep.log: the rates of its finished tasks (a resumed session too).
mkdir -p "$WORK/results/p"
cat >"$WORK/results/p/sweep.log" <<EOF
2026-12-01T12:00:00Z [00:00:00] distill_sweep x: job p.job, run results/p
2026-12-01T12:00:10Z [00:00:10] done   baseline (rank 1, epochs 0-2 of 2, 10.0 s) | 1/9 done, 0 running | ETA 00:01:00
2026-12-01T12:10:00Z [00:00:00] distill_sweep x: job p.job, run results/p
2026-12-01T12:10:02Z [00:00:02] done   attack/baseline/fgsm/0-16 (rank 1, 0.5 s) | 2/9 done, 0 running | ETA 00:01:00
EOF
"$BIN" --dry-run "$J" --ranks 2 >"$WORK/out" 2>&1 || fail "from sweep.log: $(cat "$WORK/out")"
grep -q "^rates from $WORK/results/p/sweep.log (2 lines of this plan), GFLOP/s per rank (lines): overall .*, training 3.1 (1), attack fgsm 1.3 (1), the others at the overall" "$WORK/out" ||
    fail "no calibration line: $(grep -v '^ ' "$WORK/out" | tail -5)"

# Neither: a short measurement of the engine (says so, and why the log did not serve).
echo "2026-12-01T12:00:10Z [00:00:10] done   other/task (rank 1, 10.0 s) | x" >"$WORK/results/p/sweep.log"
"$BIN" --dry-run "$J" --ranks 2 >"$WORK/out" 2>&1 || fail "measured: $(cat "$WORK/out")"
grep -q "^rate measured: [0-9]* training steps of batch 32 on random data, 1 engine thread(s): .* GFLOP/s per rank .*no finished task of this plan" "$WORK/out" ||
    fail "no measurement line: $(grep -v '^ ' "$WORK/out" | tail -5)"
echo "PASS: $TEST"

#!/usr/bin/env bash
# Bad input ends with a clear message, a non-zero status, no hang, and no lost result: job-file
# errors (file:line), a missing dataset, an unusable results folder, a job that changed under an
# existing run (refused; --new-run starts <run>-2), a second sweep on a run in use, a worker
# that dies (kill -9) — and the rerun after it finishes the run —, a full results folder
# (injected ENOSPC everywhere, and a real tmpfs where one can be mounted).
TEST=it_sweep_errors
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# expect_fail NP JOB PATTERN [args]: the sweep fails and its output matches PATTERN.
expect_fail() {
    local np=$1 job=$2 pat=$3
    shift 3
    local st=0
    timeout 120 "$MPIRUN" -np "$np" "$BIN" "$job" --no-progress "$@" >"$WORK/out.log" 2>&1 || st=$?
    [ $st -ne 0 ] || fail "expected a failure matching '$pat' for $job: $(cat "$WORK/out.log")"
    [ $st -ne 124 ] || fail "the sweep hung on $job"
    grep -q -- "$pat" "$WORK/out.log" || fail "expected '$pat' for $job, got: $(cat "$WORK/out.log")"
}

# ---- Job files: messages with file:line, from the dry run and from a 2-rank sweep ----
write_job "$WORK/good.job" e
sed 's/^epochs = 1/epochs = one/' "$WORK/good.job" >"$WORK/bad1.job"
expect_fail 2 "$WORK/bad1.job" "bad1.job:10: \[train\] epochs: expected an integer"
[ "$(grep -c 'bad1.job:10' "$WORK/out.log")" -eq 1 ] || fail "the job error was printed more than once"
sed 's/^kind = jsma/kind = jsma\neps = 0.3/' "$WORK/good.job" >"$WORK/bad2.job"
"$BIN" --dry-run "$WORK/bad2.job" >"$WORK/out.log" 2>&1 && fail "--dry-run accepted an fgsm key in a jsma section"
grep -q "bad2.job:25: \[attack jsma\] unknown key 'eps'" "$WORK/out.log" || fail "dry run: $(cat "$WORK/out.log")"
sed 's/^samples = 64/samples = 200/' "$WORK/good.job" >"$WORK/bad3.job"
expect_fail 1 "$WORK/bad3.job" "bad3.job:17: \[attack fgsm\]: test samples \[0, 200) do not fit in the test set of 128"
expect_fail 1 "$WORK/nonexistent.job" "nonexistent.job: cannot open the job file"

# ---- A missing dataset ----
[ -e "$WORK/results/e" ] && fail "a run folder was created for an impossible job"
sed "s|^dir = .*|dir = $WORK/nodata|" "$WORK/good.job" >"$WORK/nodata.job"
expect_fail 2 "$WORK/nodata.job" "MNIST not found in $WORK/nodata"
[ -e "$WORK/results/e" ] && fail "a run folder was created without data"

# ---- A results folder that cannot be created (a file is in the way) ----
touch "$WORK/afile"
sed "s|^results = .*|results = $WORK/afile/results|" "$WORK/good.job" >"$WORK/nofolder.job"
expect_fail 2 "$WORK/nofolder.job" "afile: not a folder"

# ---- A job that changed under an existing run ----
DS_FAULT=journaled@0#2 run_sweep 2 "$WORK/good.job" "$WORK/g1.log" && fail "crash hook did not fire"
cp "$WORK/results/e/tasks/done.log" "$WORK/done.before"
sed 's/^epochs = 1/epochs = 2/' "$WORK/good.job" >"$WORK/changed.job"
expect_fail 2 "$WORK/changed.job" "results/e/run.txt: the run was made with train.baseline_epochs = 1, this job has 2: use a new run name"
grep -q -- "--new-run" "$WORK/out.log" || fail "the refusal does not mention --new-run"
cmp -s "$WORK/done.before" "$WORK/results/e/tasks/done.log" || fail "the refused run touched the journal"
DS_FAULT=journaled@0#1 run_sweep 1 "$WORK/changed.job" "$WORK/new.log" --new-run
grep -q "starting or resuming $WORK/results/e-2 instead (--new-run)" "$WORK/new.log" || fail "--new-run: $(head -5 "$WORK/new.log")"
[ -s "$WORK/results/e-2/tasks/done.log" ] || fail "--new-run did not run in e-2"

# ---- A worker dies (SIGKILL when it receives T1/soft); rank 0 only coordinates ----
st=0
DS_FAULT=task-start=T1/soft@1 timeout 120 "$MPIRUN" -np 2 "$BIN" "$WORK/good.job" --no-progress \
    --coordinator-only >"$WORK/die.log" 2>&1 || st=$?
[ $st -ne 0 ] && [ $st -ne 124 ] || fail "worker death: status $st: $(tail "$WORK/die.log")"
grep -qi "signal 9\|killed" "$WORK/die.log" || fail "worker death not reported: $(cat "$WORK/die.log")"
grep -q "start  T1/soft" "$WORK/die.log" || fail "T1/soft never started"
[ "$(wc -l <"$WORK/results/e/tasks/done.log")" -ge 2 ] || fail "completed results lost after the worker died"
# ---- Two sweeps on one run folder at once ----
"$MPIRUN" -np 1 "$BIN" "$WORK/good.job" --no-progress >"$WORK/first.log" 2>&1 &
first=$!
for _ in $(seq 100); do grep -q "already done" "$WORK/first.log" && break; sleep 0.1; done
expect_fail 1 "$WORK/good.job" "is in use by another distill_sweep"
"$BIN" --reduce "$WORK/results/e" >"$WORK/out.log" 2>&1 && fail "--reduce ran beside a running sweep"
grep -q "is in use by a running sweep" "$WORK/out.log" || fail "--reduce beside a sweep: $(cat "$WORK/out.log")"
kill_run $first

kept=$(wc -l <"$WORK/results/e/tasks/done.log")
run_sweep 2 "$WORK/good.job" "$WORK/after.log" || fail "rerun after the worker died failed: $(tail "$WORK/after.log")"
[ "$(wc -l <"$WORK/results/e/tasks/done.log")" -eq 34 ] || fail "rerun did not complete the run"
grep -q "$kept already done (resuming)" "$WORK/after.log" || fail "rerun did not resume: $(head -3 "$WORK/after.log")"
# ---- A full disk while a rank writes an attack shard (injected ENOSPC, works everywhere;
# tests/faults/fault_full_disk.sh has more moments) ----
sed 's/^name = e$/name = nospc/' "$WORK/good.job" >"$WORK/nospc.job"
DS_FAULT='h5-write=atk-:enospc' expect_fail 2 "$WORK/nospc.job" "atk-.*\.h5\.tmp: .*No space left on device"
grep -q "not starting more tasks (the results folder is full); the completed ones are kept" "$WORK/out.log" ||
    fail "injected ENOSPC: no clear message: $(cat "$WORK/out.log")"
kept=$(wc -l <"$WORK/results/nospc/tasks/done.log")
ls "$WORK"/results/nospc/tasks/*.tmp >/dev/null 2>&1 && fail "injected ENOSPC: a .tmp was left behind"
run_sweep 2 "$WORK/nospc.job" "$WORK/nospc2.log" || fail "injected ENOSPC: rerun failed: $(tail "$WORK/nospc2.log")"
grep -q "$kept already done (resuming)" "$WORK/nospc2.log" || fail "injected ENOSPC: rerun did not resume"

# ---- A full results folder (a 5 MB tmpfs; only where mounting is allowed, e.g. as root) ----
full="not tested (cannot mount a tmpfs here)"
mkdir -p "$WORK/full"
if mount -t tmpfs -o size=5m tmpfs "$WORK/full" 2>/dev/null; then
    trap 'umount "$WORK/full" 2>/dev/null; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
    sed "s|^results = .*|results = $WORK/full|; s/^epochs = 1/epochs = 2/" "$WORK/good.job" >"$WORK/full.job"
    expect_fail 2 "$WORK/full.job" "No space left on device"
    grep -q "not starting more tasks (the results folder is full); the completed ones are kept" "$WORK/out.log" ||
        fail "disk full: no clear message: $(cat "$WORK/out.log")"
    kept=$(wc -l <"$WORK/full/e/tasks/done.log")
    [ "$kept" -ge 1 ] || fail "disk full: no completed task kept"
    ls "$WORK"/full/e/tasks/*.tmp >/dev/null 2>&1 && fail "disk full: a .tmp was left behind"
    mount -o remount,size=100m "$WORK/full" || fail "cannot grow the tmpfs"
    run_sweep 2 "$WORK/full.job" "$WORK/full2.log" || fail "disk full: rerun failed: $(tail "$WORK/full2.log")"
    grep -q "$kept already done (resuming)" "$WORK/full2.log" || fail "disk full: rerun did not resume"
    umount "$WORK/full"
    full="disk full tested"
fi
pass "$((SECONDS - start)) s; injected ENOSPC tested ($kept tasks kept); $full"

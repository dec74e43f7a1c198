#!/usr/bin/env bash
# Durability: a sweep killed at any moment (the coordinator, mpirun, or every rank, with
# kill -9) and started again with the same command resumes, redoes no completed task, continues
# a training from its last epoch checkpoint, and ends with results identical to an uninterrupted
# run.
TEST=it_sweep_resume
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# Two epochs per model, so that trainings leave checkpoints to resume from.
reference_run 2

# started_again LOG1 LOG2: tasks completed in the first run that the second one started again.
started_again() {
    local id
    for id in $(sed -n 's/^\[[0-9:]*\] done   \([^ ]*\) .*/\1/p' "$1"); do
        grep -q "\] start  $id \[" "$2" && echo "$id"
    done
}
# journaled RUN_DIR: the ids in the journal.
journaled() { cut -d' ' -f1 "$1/tasks/done.log" 2>/dev/null; }

# ---- A: the coordinator dies (SIGKILL) right after recording its 7th task; rerun with -np 3 ----
sed 's/^name = ref/name = a/' "$WORK/ref.job" >"$WORK/a.job"
DS_FAULT=journaled@0#7 run_sweep 2 "$WORK/a.job" "$WORK/a1.log" && fail "A: the crash hook did not fire"
[ "$(wc -l <"$WORK/results/a/tasks/done.log")" -eq 7 ] || fail "A: journal has $(wc -l <"$WORK/results/a/tasks/done.log") lines after the crash, expected 7"
run_sweep 3 "$WORK/a.job" "$WORK/a2.log" || fail "A: rerun failed: $(tail -20 "$WORK/a2.log")"
grep -q "7 already done (resuming)" "$WORK/a2.log" || fail "A: rerun did not resume from 7 tasks: $(head -5 "$WORK/a2.log")"
again=$(started_again "$WORK/a1.log" "$WORK/a2.log")
[ -z "$again" ] || fail "A: completed tasks started again: $again"
digest "$WORK/results/a" | cmp -s - "$WORK/ref.digest" || fail "A: results differ from the uninterrupted run"

# ---- B: kill -9 of mpirun and of every rank in the middle of trainings; rerun the same command ----
sed 's/^name = ref/name = b/' "$WORK/ref.job" >"$WORK/b.job"
"$MPIRUN" -np 2 "$BIN" "$WORK/b.job" --no-progress >"$WORK/b1.log" 2>&1 &
mpipid=$!
# Wait until at least 3 tasks are recorded and some training has a checkpoint (or 60 s).
for _ in $(seq 600); do
    n=$(cat "$WORK/results/b/tasks/done.log" 2>/dev/null | wc -l)
    if [ "$n" -ge 3 ] && ls "$WORK"/results/b/tasks/*.ckpt.h5 >/dev/null 2>&1; then break; fi
    kill -0 $mpipid 2>/dev/null || break
    sleep 0.1
done
kill_run $mpipid
before=$(journaled "$WORK/results/b")
nbefore=$(echo "$before" | grep -c . || true)
[ "$nbefore" -lt "$ntasks" ] || fail "B: the run finished before it could be killed"
had_ckpt=0
ls "$WORK"/results/b/tasks/*.ckpt.h5 >/dev/null 2>&1 && had_ckpt=1
run_sweep 2 "$WORK/b.job" "$WORK/b2.log" || fail "B: rerun failed: $(tail -20 "$WORK/b2.log")"
for id in $before; do
    grep -q "\] start  $id \[" "$WORK/b2.log" && fail "B: completed task $id started again"
done
if [ $had_ckpt = 1 ]; then
    grep -q "resuming from the checkpoint after epoch" "$WORK/b2.log" ||
        fail "B: a checkpoint existed but no training resumed from it: $(grep -i ckpt "$WORK/b2.log")"
fi
digest "$WORK/results/b" | cmp -s - "$WORK/ref.digest" || fail "B: results differ from the uninterrupted run"
ls "$WORK"/results/b/tasks/*.tmp "$WORK"/results/b/tasks/*.ckpt.h5 >/dev/null 2>&1 && fail "B: leftovers after the rerun"

pass "$((SECONDS - start)) s; killed after 7 and after $nbefore of $ntasks tasks$([ $had_ckpt = 1 ] && echo ', resumed a training from its checkpoint')"

#!/usr/bin/env bash
# Trainings on gangs of ranks: a sweep at -np 1 and at -np 4 with gangs (8 chunks per batch, so
# every training can take all 4 ranks) gives identical task files and summary; a gang member
# killed with SIGKILL in the middle of an epoch ends the job, and the rerun resumes from the
# last checkpoint (possibly on another gang) and ends identical to the uninterrupted run.
TEST=it_sweep_gangs
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# write_gang_job FILE NAME: write_job's DAG with 3-epoch trainings, chunks of 4 samples
# (8 per batch of 32) and fewer attack samples.
write_gang_job() {
    write_job "$1" "$2" 3
    sed -i 's/^batch = 32$/batch = 32\nchunk = 4/; s/^samples = 64$/samples = 32/' "$1"
}

write_gang_job "$WORK/one.job" one
run_sweep 1 "$WORK/one.job" "$WORK/one.log" || fail "-np 1 failed: $(tail -20 "$WORK/one.log")"
digest "$WORK/results/one" >"$WORK/one.digest"

write_gang_job "$WORK/four.job" one # the same job (and run name) in another results folder
sed -i "s|^results = .*|results = $WORK/results4|" "$WORK/four.job"
run_sweep 4 "$WORK/four.job" "$WORK/four.log" --gang-max 4 || fail "-np 4 failed: $(tail -20 "$WORK/four.log")"
grep -q 'start  warmstart \[train\] on ranks 0,1,2,3 (gang of 4)' "$WORK/four.log" ||
    fail "-np 4: the warm start (alone in the plan at first) did not run on a gang of 4: $(grep warmstart "$WORK/four.log")"
grep -q 'done   [^ ]* (gang of [234] from rank' "$WORK/four.log" || fail "-np 4: no training ended on a gang"
digest "$WORK/results4/one" >"$WORK/four.digest"
cmp -s "$WORK/one.digest" "$WORK/four.digest" ||
    fail "-np 1 and -np 4 with gangs differ: $(diff "$WORK/one.digest" "$WORK/four.digest")"
ngang=$(grep -c '(gang of' "$WORK/four.log")

# SIGKILL of rank 2 at its 30th training step: past the warm start (8 steps on every member),
# inside a 3-epoch training (8 steps an epoch) whose checkpoint after epoch 1 exists.
write_gang_job "$WORK/kill.job" one
sed -i "s|^results = .*|results = $WORK/results-kill|" "$WORK/kill.job"
DS_FAULT='train-step@2#30:kill' run_sweep 4 "$WORK/kill.job" "$WORK/kill1.log" --gang-max 4 &&
    fail "the run with a killed rank 2 exited 0: $(tail -5 "$WORK/kill1.log")"
ls "$WORK/results-kill/one/tasks/"*.ckpt.h5 >/dev/null 2>&1 ||
    fail "no training checkpoint when rank 2 was killed: $(tail -8 "$WORK/kill1.log")"
run_sweep 4 "$WORK/kill.job" "$WORK/kill2.log" --gang-max 4 || fail "the rerun failed: $(tail -20 "$WORK/kill2.log")"
grep -q 'resuming from the checkpoint after epoch' "$WORK/kill2.log" ||
    fail "the rerun resumed no training from its checkpoint: $(head -20 "$WORK/kill2.log")"
digest "$WORK/results-kill/one" >"$WORK/kill.digest"
cmp -s "$WORK/one.digest" "$WORK/kill.digest" ||
    fail "killed and resumed differs from -np 1: $(diff "$WORK/one.digest" "$WORK/kill.digest")"
pass "$((SECONDS - start)) s, $(wc -l <"$WORK/one.digest") outputs identical for -np 1, -np 4 with gangs ($ngang gang lines) and after a SIGKILL of a gang member"

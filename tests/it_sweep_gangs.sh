#!/usr/bin/env bash
# Trainings on gangs of ranks: a sweep at -np 1 and at -np 4 with gangs (8 chunks per batch, so
# every training can take all 4 ranks) gives identical task files and summary; a gang member
# killed with SIGKILL in the middle of an epoch ends the job, and the rerun resumes from the
# last checkpoint (possibly on another gang) and ends identical to the uninterrupted run; so does
# a member that hangs, once the others' --gang-timeout ends the job.
# The job: no warm start and one temperature, so that at the start the teacher (the critical
# path) is given all 4 ranks and the baseline starts when the first of them is free, alone, and
# usually grows at one of its epoch boundaries once the teacher is done.
TEST=it_sweep_gangs
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# write_gang_job FILE NAME: write_job's DAG with 4-epoch trainings, chunks of 4 samples
# (8 per batch of 32), no warm start, T = 20 only, fewer attack samples.
write_gang_job() {
    write_job "$1" "$2" 4
    sed -i 's/^batch = 32$/batch = 32\nchunk = 4/; s/^samples = 64$/samples = 32/;
            s/^warm_start = 1$/warm_start = 0/; s/^temperatures = 1 20$/temperatures = 20/' "$1"
}

write_gang_job "$WORK/one.job" one
run_sweep 1 "$WORK/one.job" "$WORK/one.log" || fail "-np 1 failed: $(tail -20 "$WORK/one.log")"
digest "$WORK/results/one" >"$WORK/one.digest"

write_gang_job "$WORK/four.job" one # the same job (and run name) in another results folder
sed -i "s|^results = .*|results = $WORK/results4|" "$WORK/four.job"
run_sweep 4 "$WORK/four.job" "$WORK/four.log" --gang-max 4 || fail "-np 4 failed: $(tail -20 "$WORK/four.log")"
grep -q 'start  T20/teacher \[train\] on ranks 0,1,2,3 (gang of 4)' "$WORK/four.log" ||
    fail "-np 4: the teacher did not start on a gang of 4: $(grep -E 'start  (T20|baseline)' "$WORK/four.log")"
grep -q 'done   T20/teacher (gang of 4 from rank 0, epochs 0-4 of 4, ' "$WORK/four.log" ||
    fail "-np 4: the teacher did not end on its gang: $(grep 'done   T20/teacher' "$WORK/four.log")"
digest "$WORK/results4/one" >"$WORK/four.digest"
cmp -s "$WORK/one.digest" "$WORK/four.digest" ||
    fail "-np 1 and -np 4 with gangs differ: $(diff "$WORK/one.digest" "$WORK/four.digest")"
ngang=$(grep -c '(gang of' "$WORK/four.log")
grown=$(grep -c '^\[[0-9:]*\] grow   ' "$WORK/four.log")

# SIGKILL of rank 2 at its 12th training step: in the middle of the teacher's second epoch (8
# steps an epoch), on its gang of 4, after the checkpoint of epoch 1.
write_gang_job "$WORK/kill.job" one
sed -i "s|^results = .*|results = $WORK/results-kill|" "$WORK/kill.job"
DS_FAULT='train-step@2#12:kill' run_sweep 4 "$WORK/kill.job" "$WORK/kill1.log" --gang-max 4 &&
    fail "the run with a killed rank 2 exited 0: $(tail -5 "$WORK/kill1.log")"
grep -q 'start  T20/teacher \[train\] on ranks 0,1,2,3 (gang of 4)' "$WORK/kill1.log" ||
    fail "the killed run's teacher was not on a gang of 4: $(head -5 "$WORK/kill1.log")"
grep -q 'done   T20/teacher' "$WORK/kill1.log" && fail "the teacher finished before rank 2 was killed"
[ -s "$WORK/results-kill/one/tasks/T20-teacher.ckpt.h5" ] ||
    fail "no teacher checkpoint when rank 2 was killed: $(tail -8 "$WORK/kill1.log")"
run_sweep 4 "$WORK/kill.job" "$WORK/kill2.log" --gang-max 4 || fail "the rerun failed: $(tail -20 "$WORK/kill2.log")"
grep -q 'T20/teacher: resuming from the checkpoint after epoch 1 of 4' "$WORK/kill2.log" ||
    fail "the rerun resumed no training from its checkpoint: $(head -20 "$WORK/kill2.log")"
digest "$WORK/results-kill/one" >"$WORK/kill.digest"
cmp -s "$WORK/one.digest" "$WORK/kill.digest" ||
    fail "killed and resumed differs from -np 1: $(diff "$WORK/one.digest" "$WORK/kill.digest")"
# A member that hangs (alive, silent) in the middle of an epoch: the others give up after
# --gang-timeout and end the job with one line; the rerun ends identical.
write_gang_job "$WORK/hang.job" one
sed -i "s|^results = .*|results = $WORK/results-hang|" "$WORK/hang.job"
t0=$SECONDS
DS_FAULT='train-step@2#12:hang' run_sweep 4 "$WORK/hang.job" "$WORK/hang1.log" --gang-max 4 --gang-timeout 5 &&
    fail "the run with a hung rank 2 exited 0: $(tail -5 "$WORK/hang1.log")"
grep -q 'gang T20/teacher (4 ranks): .* got no answer from its members within 5 s; aborting the job' "$WORK/hang1.log" ||
    fail "no gang timeout message: $(grep -v '^\[' "$WORK/hang1.log" | head -8)"
[ $((SECONDS - t0)) -lt 120 ] || fail "the hung gang took $((SECONDS - t0)) s to end the job"
run_sweep 4 "$WORK/hang.job" "$WORK/hang2.log" --gang-max 4 || fail "the rerun after the hang failed: $(tail -20 "$WORK/hang2.log")"
digest "$WORK/results-hang/one" >"$WORK/hang.digest"
cmp -s "$WORK/one.digest" "$WORK/hang.digest" ||
    fail "hung and resumed differs from -np 1: $(diff "$WORK/one.digest" "$WORK/hang.digest")"
pass "$((SECONDS - start)) s, $(wc -l <"$WORK/one.digest") outputs identical for -np 1, -np 4 with gangs ($ngang gang lines, $grown gangs grown at a boundary) and after a SIGKILL and a hang of a gang member"

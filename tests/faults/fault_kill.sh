#!/usr/bin/env bash
# Fault (a): kill -9 at 21 moments of a CI-sized sweep (2 ranks; rank 0 is the coordinator and
# also works): the coordinator's rank, a worker, any rank and mpirun; during training, soft
# labels and attacks; during and right after an HDF5 write; around a journal line; during the
# reduction; at start-up; and twice in a row. After each, rerunning the same command finishes
# the run, starts no journaled task again, leaves no .tmp file, and ends with task outputs and a
# summary.csv identical to an uninterrupted run's.
#
# The in-process moments use DS_FAULT (include/ds_fault.h: POINT[=TEXT][@RANK][#N]), which
# SIGKILLs the process exactly there; mpirun then ends the job. A rank is named only where the
# plan guarantees it gets there (both ranks train from the start; rank 0 alone journals and
# reduces); elsewhere the first rank to get there dies (each counts its own passes). The
# others kill mpirun and every rank from outside, when the run reaches a state.
# MOMENTS="name ..." runs only those (debugging).
TEST=fault_kill
source "$(dirname "$0")/../tools/sweep_env.sh"
start=$SECONDS

reference_run 2

journaled() { cut -d' ' -f1 "$WORK/results/$1/tasks/done.log" 2>/dev/null; }
new_job() { sed "s/^name = ref/name = $1/" "$WORK/ref.job" >"$WORK/$1.job"; }

# finish NAME: reruns, checks that no journaled task started again and the results.
finish() {
    local before id log="$WORK/$1.rerun.log"
    before=$(journaled "$1")
    run_sweep 2 "$WORK/$1.job" "$log" || fail "$1: rerun failed: $(tail -20 "$log")"
    for id in $before; do
        [ "$id" = reduce ] && continue
        grep -q "\] start  $id \[" "$log" && fail "$1: journaled task $id started again"
    done
    digest "$WORK/results/$1" | cmp -s - "$WORK/ref.digest" || fail "$1: results differ from the uninterrupted run"
    ls "$WORK/results/$1"/tasks/*.tmp "$WORK/results/$1"/*.tmp "$WORK/results/$1"/.*.tmp >/dev/null 2>&1 &&
        fail "$1: .tmp files left: $(ls -a "$WORK/results/$1" "$WORK/results/$1/tasks" | grep tmp)"
    done_moments=$((done_moments + 1))
    summary="$summary $1($(echo "$before" | grep -c .)/$ntasks)"
}

# inject NAME FAULT: a run with DS_FAULT=FAULT that must die at that point, then finish NAME.
inject() {
    [ -n "${MOMENTS:-}" ] && ! [[ " $MOMENTS " == *" $1 "* ]] && return 0 # a chosen few (debugging)
    new_job "$1"
    DS_FAULT=$2 run_sweep 2 "$WORK/$1.job" "$WORK/$1.log" && fail "$1: DS_FAULT=$2: the run did not die"
    grep -q "DS_FAULT: kill -9 at" "$WORK/$1.log" || fail "$1: DS_FAULT=$2 never fired: $(tail -5 "$WORK/$1.log")"
    finish "$1"
}

# kill_when NAME CONDITION: starts the sweep of job NAME, evaluates CONDITION every 20 ms and
# kill -9s mpirun and every rank as soon as it holds (or after 60 s).
kill_when() {
    "$MPIRUN" -np 2 "$BIN" "$WORK/$1.job" --no-progress >>"$WORK/$1.log" 2>&1 &
    local pid=$! i
    for i in $(seq 3000); do
        eval "$2" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    kill_run $pid
}
done_moments=0
summary=

# ---- training: mid-step, right after a checkpoint, while writing a checkpoint or a model ----
inject train0 'train-step@0#3'              # the coordinator's rank, inside an epoch
inject train1 'train-step@1#12'             # a worker, in the second epoch of its first training
inject epoch1 'epoch-end@1#1'               # a worker, right after its first checkpoint
inject cp0 'h5-write=.ckpt.h5@0#1'          # the coordinator's rank, writing a checkpoint
inject cp1 'h5-write=.ckpt.h5@1#2'          # a worker, writing its second checkpoint
inject model 'h5-write=teacher.h5'          # a rank writing a trained teacher
inject renamed 'h5-commit=student.h5'       # a model in place but not yet journaled
inject soft 'soft-labels'                   # a rank labelling the training set
# ---- attacks ----
inject attack2 'attack-batch#2'             # a rank inside an attack
inject attack5 'attack-batch#5'
inject shard 'h5-write=atk-'                # a rank writing an attack shard
inject shardin 'h5-commit=atk-#2'           # an attack shard in place, not yet journaled
inject transfer 'task-start=transfer'       # a rank, as it receives a transfer task
# ---- the journal (the coordinator) ----
inject journal0 'journal@0#4'               # before the 4th line
inject journaled0 "journaled@0#$ntasks"   # the last task journaled, the reducer not started
# ---- the reduction ----
inject reduceh5 'h5-write=summary.h5@0'     # writing summary.h5 (staged)
inject reduceout1 'reduce-output@0#1'       # one output moved into place, the others staged
inject reduceout3 'reduce-output@0#3'
# ---- from outside: mpirun and every rank ----
new_job s
kill_when s '[ -d "$WORK/results/s" ]'      # start-up: as soon as the run folder exists
finish s
new_job m
kill_when m 'grep -q "start  T20/student" "$WORK/m.log"' # a student starting
finish m
new_job d                                   # twice: after 3 tasks, then after 5 more
kill_when d '[ "$(journaled d | wc -l)" -ge 3 ]'
d1=$(journaled d | wc -l)
kill_when d "[ \"\$(journaled d | wc -l)\" -ge $((d1 + 5)) ]"
d2=$(journaled d | wc -l)
[ "$d2" -lt "$ntasks" ] || fail "d: the second run finished before it could be killed"
finish d

[ -n "${MOMENTS:-}" ] || [ "$done_moments" -eq 21 ] || fail "only $done_moments moments checked"
pass "$((SECONDS - start)) s; 21 moments (name(journaled/total)):$summary"

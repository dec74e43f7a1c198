#!/usr/bin/env bash
# Fault (b): the results folder fills up. Where a tmpfs cannot be mounted (tests/it_sweep_errors.sh
# mounts one when it can), DS_FAULT=...:enospc makes one write fail exactly as a full disk does
# (ENOSPC): the second attack shard of a rank, a checkpoint on rank 0, a line of the journal, and the
# reducer's summary.h5. Each time: exit non-zero, one clear "No space left on device" line
# naming the file, no new task started after it, every journaled task's file intact (same data
# as an uninterrupted run), no .tmp left; the rerun with space completes, identical to the
# uninterrupted run.
TEST=fault_full_disk
source "$(dirname "$0")/../tools/sweep_env.sh"
start=$SECONDS

reference_run 2

# intact NAME: every task file the journal of run NAME lists holds the reference's data.
intact() {
    local f line n=0
    for f in $(cut -d' ' -f2 "$WORK/results/$1/tasks/done.log"); do
        line="$(basename "$f") $(h5dump -A 0 "$WORK/results/$1/$f" | tail -n +2 | md5sum | cut -d' ' -f1)"
        grep -qxF "$line" "$WORK/ref.digest" || fail "$1: journaled $f differs from the uninterrupted run's"
        n=$((n + 1))
    done
    echo $n
}

# full NAME FAULT WHAT: a run where FAULT fills the disk; WHAT is the file the error must name.
full() {
    sed "s/^name = ref/name = $1/" "$WORK/ref.job" >"$WORK/$1.job"
    DS_FAULT=$2 run_sweep 2 "$WORK/$1.job" "$WORK/$1.log" && fail "$1: exited 0 on a full disk"
    grep -q "DS_FAULT: ENOSPC at" "$WORK/$1.log" || fail "$1: DS_FAULT=$2 never fired"
    grep -E "$3.*No space left on device" "$WORK/$1.log" | grep -q . ||
        fail "$1: no 'No space left on device' error naming $3: $(grep -v '^\[rank' "$WORK/$1.log" | tail -5)"
    local R="$WORK/results/$1" kept
    kept=$(intact "$1")
    ls "$R"/tasks/*.tmp "$R"/*.tmp "$R"/.*.tmp >/dev/null 2>&1 && fail "$1: .tmp files left"
    [ -e "$R/summary.csv" ] && fail "$1: a summary table was written by the failed run"
    run_sweep 2 "$WORK/$1.job" "$WORK/$1.rerun.log" || fail "$1: rerun failed: $(tail "$WORK/$1.rerun.log")"
    grep -q "$kept already done (resuming)" "$WORK/$1.rerun.log" || fail "$1: rerun did not resume the $kept kept tasks"
    digest "$R" | cmp -s - "$WORK/ref.digest" || fail "$1: the rerun's results differ from the uninterrupted run"
    summary="$summary $1($kept kept)"
}
summary=
full shard 'h5-write=atk-#2:enospc' 'atk-[^ ]*\.h5\.tmp'
grep -q "not starting more tasks (the results folder is full); the completed ones are kept" "$WORK/shard.log" ||
    fail "shard: no 'not starting more tasks' line: $(grep -v '^\[rank' "$WORK/shard.log" | tail -5)"
full checkpoint 'h5-write=.ckpt.h5@0#1:enospc' '\.ckpt\.h5\.tmp'
full journal 'journal@0#6:enospc' 'done\.log'
full reduce 'h5-write=summary.h5@0:enospc' 'summary\.h5'
pass "$((SECONDS - start)) s;$summary"

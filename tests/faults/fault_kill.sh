#!/usr/bin/env bash
# Fault (c): kill -9 of mpirun and every rank at moments tests/it_sweep_resume.sh does not cover:
# during start-up (run folder being created), just before the reducer (the last task), and twice in
# a row (the resumed run is killed too). Each time the same command finishes the run, redoes
# no journaled task, and ends identical to an uninterrupted run.
TEST=fault_kill
source "$(dirname "$0")/../tools/sweep_env.sh"
start=$SECONDS

write_job "$WORK/ref.job" ref
run_sweep 2 "$WORK/ref.job" "$WORK/ref.log" || fail "reference run failed: $(tail -20 "$WORK/ref.log")"
digest "$WORK/results/ref" >"$WORK/ref.digest"
ntasks=$(wc -l <"$WORK/results/ref/tasks/done.log")

# kill_when NAME LOG CONDITION: starts the sweep of job NAME, runs CONDITION (a shell command)
# every 20 ms and kill -9s everything as soon as it holds (or after 60 s).
kill_when() {
    "$MPIRUN" -np 2 "$BIN" "$WORK/$1.job" --no-progress >"$2" 2>&1 &
    local pid=$! i
    for i in $(seq 3000); do
        eval "$3" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    kill_run $pid
}
journaled() { cut -d' ' -f1 "$WORK/results/$1/tasks/done.log" 2>/dev/null; }
# finish NAME LOG: reruns, checks that no journaled task started again and the results.
finish() {
    local before id
    before=$(journaled "$1")
    run_sweep 2 "$WORK/$1.job" "$2" || fail "$1: rerun failed: $(tail -20 "$2")"
    for id in $before; do
        [ "$id" = reduce ] && continue
        grep -q "\] start  $id \[" "$2" && fail "$1: journaled task $id started again"
    done
    digest "$WORK/results/$1" | cmp -s - "$WORK/ref.digest" || fail "$1: results differ from the uninterrupted run"
    ls "$WORK/results/$1"/tasks/*.tmp "$WORK/results/$1"/*.tmp >/dev/null 2>&1 && fail "$1: .tmp files left"
    return 0
}
for n in s r d; do sed "s/^name = ref/name = $n/" "$WORK/ref.job" >"$WORK/$n.job"; done

# ---- start-up: as soon as the run folder exists ----
kill_when s "$WORK/s1.log" '[ -d "$WORK/results/s" ]'
finish s "$WORK/s2.log"

# ---- the reducer: the coordinator dies (SIGKILL, test hook) right after journaling the last
# task before the reducer ----
DS_SWEEP_TEST_CRASH_AFTER=$((ntasks - 1)) run_sweep 2 "$WORK/r.job" "$WORK/r1.log" &&
    fail "r: the crash hook did not fire"
r_before=$(journaled r | wc -l)
[ "$r_before" -eq $((ntasks - 1)) ] || fail "r: $r_before tasks journaled, expected $((ntasks - 1))"
[ -e "$WORK/results/r/summary.csv" ] && fail "r: the reducer ran before the crash"
finish r "$WORK/r2.log"

# ---- twice: after 3 tasks, then the resumed run after 5 more ----
kill_when d "$WORK/d1.log" '[ "$(journaled d | wc -l)" -ge 3 ]'
d1=$(journaled d | wc -l)
kill_when d "$WORK/d2.log" "[ \"\$(journaled d | wc -l)\" -ge $((d1 + 5)) ]"
d2=$(journaled d | wc -l)
[ "$d2" -lt "$ntasks" ] || fail "d: the second run finished before it could be killed"
finish d "$WORK/d3.log"
pass "$((SECONDS - start)) s; killed at start-up, with $r_before of $ntasks tasks journaled (before the reducer), and twice (after $d1, then $d2)"

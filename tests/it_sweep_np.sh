#!/usr/bin/env bash
# The full DAG at -np 1, 3 and 5 on synthetic data: every task done, outputs where the layout
# says, and identical results (every task's data, and summary.csv when the reducer is built).
TEST=it_sweep_np
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

write_job "$WORK/np.job" np
"$BIN" --dry-run "$WORK/np.job" >"$WORK/dry.txt" 2>&1 || fail "--dry-run failed: $(cat "$WORK/dry.txt")"
ntasks=$(grep -c '^ *[0-9][0-9]*  ' "$WORK/dry.txt")
[ "$ntasks" -eq 35 ] || fail "--dry-run lists $ntasks tasks, expected 35: $(cat "$WORK/dry.txt")"
grep -q 'attack/T20/student/transfer/0-32' "$WORK/dry.txt" || fail "--dry-run lacks the transfer task"

for np in 1 3 5; do
    run_sweep $np "$WORK/np.job" "$WORK/np$np.log" || fail "-np $np failed: $(tail -20 "$WORK/np$np.log")"
    run="$WORK/results/np"
    [ -s "$run/job.ini" ] && [ -s "$run/run.txt" ] || fail "-np $np: no job.ini or run.txt"
    [ "$(wc -l <"$run/tasks/done.log")" -eq 34 ] || fail "-np $np: done.log has $(wc -l <"$run/tasks/done.log") lines, expected 34"
    for f in warmstart baseline T1-teacher T1-soft T1-student T20-teacher T20-soft T20-student \
        atk-baseline-fgsm-000048 atk-T20-student-transfer-000000 atk-T1-student-cw-000000; do
        [ -s "$run/tasks/$f.h5" ] || fail "-np $np: tasks/$f.h5 missing"
    done
    ls "$run"/tasks/*.tmp "$run"/tasks/*.ckpt.h5 >/dev/null 2>&1 && fail "-np $np: leftover .tmp or checkpoint"
    h5dump -A 0 -d /T20/student/fc3/bias "$run/tasks/T20-student.h5" >/dev/null ||
        fail "-np $np: T20-student.h5 is not a model group"
    h5dump -a /task "$run/tasks/T1-soft.h5" | grep -q 'T1/soft' || fail "-np $np: no provenance on T1-soft.h5"
    [ "$(grep -c '\] start ' "$WORK/np$np.log")" -eq 34 ] || fail "-np $np: not 34 task starts"
    digest "$run" >"$WORK/digest$np.txt"
    mv "$run" "$WORK/results/np-$np"
done
cmp -s "$WORK/digest1.txt" "$WORK/digest3.txt" || fail "-np 1 and -np 3 differ: $(diff "$WORK/digest1.txt" "$WORK/digest3.txt")"
cmp -s "$WORK/digest1.txt" "$WORK/digest5.txt" || fail "-np 1 and -np 5 differ: $(diff "$WORK/digest1.txt" "$WORK/digest5.txt")"
# With 3 ranks the work really was spread.
grep -q 'on rank 2$' "$WORK/np3.log" || fail "-np 3: rank 2 ran no task"
pass "$((SECONDS - start)) s, $(wc -l <"$WORK/digest1.txt") outputs identical for -np 1, 3, 5"

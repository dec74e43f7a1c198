#!/usr/bin/env bash
# Fault (b): damaged files found at restart, beyond tests/it_sweep_corrupt.sh: zero-length task
# files (a model, soft labels, an attack shard), a bit flip in a model's data and one in its
# superblock, and training checkpoints that are empty, truncated or bit-flipped. Each is
# detected and redone, never trusted: the rerun ends identical to an intact run.
TEST=fault_corrupt
source "$(dirname "$0")/../tools/sweep_env.sh"
start=$SECONDS

# flip FILE OFFSET: xor one byte with 0x10 (a bit of a float's exponent or of a header field).
flip() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\x$(printf %02x $((b ^ 16)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

reference_run 2

# ---- task files: a copy of the finished run, damaged ----
cp -a "$WORK/results/ref" "$WORK/results/z"
sed 's/^name = ref/name = z/' "$WORK/ref.job" >"$WORK/z.job"
T="$WORK/results/z/tasks"
: >"$T/T1-teacher.h5"
: >"$T/T20-soft.h5"
: >"$T/atk-baseline-jsma-000004.h5"
flip "$T/baseline.h5" $(($(stat -c %s "$T/baseline.h5") / 2))
flip "$T/T1-student.h5" 9 # superblock
run_sweep 2 "$WORK/z.job" "$WORK/z.log" || fail "rerun over damaged task files failed: $(tail -20 "$WORK/z.log")"
for f in T1-teacher.h5 T20-soft.h5 atk-baseline-jsma-000004.h5; do
    grep -q "$f has the wrong size" "$WORK/z.log" || fail "zero-length $f not reported: $(head -12 "$WORK/z.log")"
done
for f in baseline.h5 T1-student.h5; do
    grep -q "$f does not match its checksum" "$WORK/z.log" || fail "bit flip in $f not reported"
done
started=$(sed -n 's/^\[[0-9:]*\] start  \([^ ]*\) .*/\1/p' "$WORK/z.log" | sort | tr '\n' ' ')
expected=$(printf '%s\n' T1/teacher T20/soft attack/baseline/jsma/4-5 baseline T1/student | sort | tr '\n' ' ')
[ "$started" = "$expected" ] || fail "rerun started [$started], expected [$expected]"
digest "$WORK/results/z" | cmp -s - "$WORK/ref.digest" || fail "task files: results differ from the intact run"

# ---- checkpoints: freeze a run while a training has one, keep a snapshot ----
snap=
for try in 1 2 3 4 5; do
    sed "s/^name = ref/name = k$try/" "$WORK/ref.job" >"$WORK/k$try.job"
    "$MPIRUN" -np 2 "$BIN" "$WORK/k$try.job" --no-progress >"$WORK/k$try.log" 2>&1 &
    mpipid=$!
    for _ in $(seq 600); do
        ls "$WORK"/results/k$try/tasks/*.ckpt.h5 >/dev/null 2>&1 && break
        kill -0 $mpipid 2>/dev/null || break
        sleep 0.05
    done
    ranks=$(pgrep -P $mpipid || true)
    [ -n "$ranks" ] && kill -STOP $ranks 2>/dev/null
    cp -a "$WORK/results/k$try" "$WORK/snap"
    kill_run $mpipid
    if ls "$WORK"/snap/tasks/*.ckpt.h5 >/dev/null 2>&1; then snap=k$try; break; fi
    rm -rf "$WORK/snap"
done
[ -n "$snap" ] || fail "no run could be frozen while a training had a checkpoint"
rm -f "$WORK"/snap/lock
nckpt=$(ls "$WORK"/snap/tasks/*.ckpt.h5 | wc -l)

for v in ${FAULT_VARIANTS:-empty truncated flipped}; do
    cp -a "$WORK/snap" "$WORK/results/$v"
    sed "s/^name = ref/name = $v/" "$WORK/ref.job" >"$WORK/$v.job"
    for c in "$WORK"/results/$v/tasks/*.ckpt.h5; do
        case $v in
        empty) : >"$c" ;;
        truncated) truncate -s $(($(stat -c %s "$c") * 2 / 3)) "$c" ;;
        flipped) flip "$c" $(($(stat -c %s "$c") / 4)) && flip "$c" $(($(stat -c %s "$c") * 3 / 4)) ;; # a weight, a velocity
        esac
    done
    run_sweep 2 "$WORK/$v.job" "$WORK/$v.log" || fail "$v checkpoints: rerun failed: $(tail -20 "$WORK/$v.log")"
    n=$(grep -c "ignoring an unreadable checkpoint" "$WORK/$v.log" || true)
    [ "$n" = "$nckpt" ] || fail "$v checkpoints: $n of $nckpt reported as unreadable: $(grep -i checkpoint "$WORK/$v.log")"
    grep -q "resuming from the checkpoint" "$WORK/$v.log" && fail "$v checkpoints: a training resumed from one"
    digest "$WORK/results/$v" | cmp -s - "$WORK/ref.digest" ||
        fail "$v checkpoints: results differ from the intact run"
done
pass "$((SECONDS - start)) s; 5 damaged task files redone; $nckpt checkpoint(s) empty, truncated, bit-flipped: ignored, identical results"

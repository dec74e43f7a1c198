#!/usr/bin/env bash
# Restart over damaged task files: a truncated model, a corrupted attack shard (same size,
# one byte changed), a deleted soft-label file, a garbage checkpoint, a stale .tmp and a torn
# journal line. The rerun redoes exactly the damaged tasks and ends identical to the intact run.
TEST=it_sweep_corrupt
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

write_job "$WORK/c.job" c
run_sweep 2 "$WORK/c.job" "$WORK/c1.log" || fail "first run failed: $(tail -20 "$WORK/c1.log")"
T="$WORK/results/c/tasks"
digest "$WORK/results/c" >"$WORK/c.digest"

size=$(stat -c %s "$T/T20-student.h5")
truncate -s $((size / 2)) "$T/T20-student.h5"
size=$(stat -c %s "$T/atk-baseline-fgsm-000016.h5")
printf '\x5a' | dd of="$T/atk-baseline-fgsm-000016.h5" bs=1 seek=$((size - 100)) conv=notrunc status=none
cmp -s "$T/atk-baseline-fgsm-000016.h5" <(true) && fail "could not corrupt the file"
rm "$T/T1-soft.h5"
head -c 3000 /dev/urandom >"$T/T20-student.ckpt.h5"
echo "half-written" >"$T/atk-T1-student-fgsm-000000.h5.tmp"
printf 'T1/student tasks/T1-student.h5 999' >>"$T/done.log"

run_sweep 2 "$WORK/c.job" "$WORK/c2.log" || fail "rerun failed: $(tail -20 "$WORK/c2.log")"
grep -q "T20-student.h5 has the wrong size" "$WORK/c2.log" || fail "truncation not reported: $(head -12 "$WORK/c2.log")"
grep -q "atk-baseline-fgsm-000016.h5 does not match its checksum" "$WORK/c2.log" || fail "corruption not reported"
grep -q "T1-soft.h5 is missing" "$WORK/c2.log" || fail "missing file not reported"
grep -q "ignoring 1 torn or corrupted line" "$WORK/c2.log" || fail "torn journal line not reported"
grep -q "removed the half-written .*atk-T1-student-fgsm-000000.h5.tmp" "$WORK/c2.log" || fail "stale .tmp not reported"
grep -q "T20/student: ignoring an unreadable checkpoint" "$WORK/c2.log" || fail "garbage checkpoint not reported"
started=$(sed -n 's/^\[[0-9:]*\] start  \([^ ]*\) .*/\1/p' "$WORK/c2.log" | sort | tr '\n' ' ')
expected="T1/soft T20/student attack/baseline/fgsm/16-32 "
[ "$started" = "$(echo $expected | tr ' ' '\n' | sort | tr '\n' ' ')" ] || fail "rerun started [$started], expected [$expected]"
[ -e "$T/T20-student.h5.corrupt" ] && [ -e "$T/atk-baseline-fgsm-000016.h5.corrupt" ] || fail "damaged files not kept aside as .corrupt"
ls "$T"/*.tmp >/dev/null 2>&1 && fail "stale .tmp left"
digest "$WORK/results/c" | cmp -s - "$WORK/c.digest" || fail "results differ from the intact run: $(digest "$WORK/results/c" | diff - "$WORK/c.digest")"
pass "$((SECONDS - start)) s; 3 damaged tasks redone, identical results"

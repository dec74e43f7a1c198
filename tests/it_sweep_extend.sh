#!/usr/bin/env bash
# Extending a finished run: a job that adds an attack configuration and a model to an existing
# one runs only the new tasks on the run folder; every task file, journal line and summary row
# of the finished run stays byte-identical and untouched, and summary.csv gains the new rows.
# A job with a changed epoch count is then refused with one line, and nothing in the folder
# changes.
TEST=it_sweep_extend
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# base_job FILE [EPOCHS]: baseline, T20 teacher and student, FGSM on the baseline and student.
base_job() {
    cat >"$1" <<EOF
[run]
name = x
results = $WORK/results
seed = 3
[data]
dir = $WORK/data
train_samples = 128
test_samples = 32
[train]
epochs = ${2:-1}
batch = 32
[distill]
temperatures = 20
[attack fgsm]
kind = fgsm
samples = 32
shard = 16
EOF
}
run=$WORK/results/x
# snapshot: every file of the run folder with its size, mtime in ns and CRC.
snapshot() {
    (cd "$run" && find . -type f | sort | while read -r f; do
        echo "$f $(stat -c '%s %.9Y' "$f") $(cksum <"$f" | cut -d' ' -f1)"
    done)
}
started() { sed -n 's/^\[[0-9:]*\] start  \([^ ]*\) .*/\1/p' "$1" | sort; }

# ---- 1: the run, to completion ----
base_job "$WORK/x.job"
run_sweep 2 "$WORK/x.job" "$WORK/1.log" || fail "first run failed: $(tail -20 "$WORK/1.log")"
(cd "$run/tasks" && for f in *.h5; do echo "$f $(stat -c '%s %.9Y' "$f") $(cksum <"$f")"; done) \
    >"$WORK/tasks.before"
cp "$run/tasks/done.log" "$WORK/done.before"
cp "$run/summary.csv" "$WORK/summary.before"
[ "$(wc -l <"$WORK/done.before")" -eq 8 ] || fail "first run journaled $(wc -l <"$WORK/done.before") tasks, expected 8"

# ---- 2: + [attack logits] (baseline and student), + T20/teacher in fgsm's models ----
base_job "$WORK/ext.job"
sed -i 's/^shard = 16$/shard = 16\nmodels = baseline students T20\/teacher/' "$WORK/ext.job"
printf '[attack logits]\nkind = fgsm\nspace = logits\neps = 0.2\nsamples = 16\n' >>"$WORK/ext.job"
added="+ models of fgsm: T20/teacher, + attack logits (2 models)"
"$BIN" --dry-run "$WORK/ext.job" >"$WORK/dry.log" 2>&1 || fail "--dry-run failed: $(cat "$WORK/dry.log")"
grep -qx "$run exists: a sweep of this job would extend the run: $added" "$WORK/dry.log" ||
    fail "--dry-run does not say what the extension adds: $(tail -3 "$WORK/dry.log")"
grep -qx "$run exists: 8 of 12 tasks done" "$WORK/dry.log" || fail "--dry-run: $(tail -2 "$WORK/dry.log")"
run_sweep 2 "$WORK/ext.job" "$WORK/2.log" || fail "the extension failed: $(tail -20 "$WORK/2.log")"
grep -qx "$run: extending the run: $added" "$WORK/2.log" ||
    fail "no 'extending the run' line: $(head -5 "$WORK/2.log")"
grep -q "; 12 tasks, 8 already done (resuming)" "$WORK/2.log" || fail "the extension did not resume from 8 tasks"
printf '%s\n' attack/T20/teacher/fgsm/0-16 attack/T20/teacher/fgsm/16-32 \
    attack/baseline/logits/0-16 attack/T20/student/logits/0-16 | sort >"$WORK/new.ids"
started "$WORK/2.log" | cmp -s - "$WORK/new.ids" ||
    fail "the extension ran other tasks than the new ones: $(started "$WORK/2.log" | tr '\n' ' ')"
# The journal: the old lines, byte for byte, then one line per new task.
head -c "$(stat -c %s "$WORK/done.before")" "$run/tasks/done.log" | cmp -s - "$WORK/done.before" ||
    fail "the old journal lines changed"
tail -n +9 "$run/tasks/done.log" | cut -d' ' -f1 | sort | cmp -s - "$WORK/new.ids" ||
    fail "the journal's new lines are not the new tasks: $(tail -n +9 "$run/tasks/done.log")"
# Every old task file untouched (size, mtime, CRC).
while read -r f rest; do
    [ "$f $(stat -c '%s %.9Y' "$run/tasks/$f") $(cksum <"$run/tasks/$f")" = "$f $rest" ] ||
        fail "old task file $f was rewritten or touched"
done <"$WORK/tasks.before"
[ "$(ls "$run"/tasks/*.h5 | wc -l)" -eq $(($(wc -l <"$WORK/tasks.before") + 4)) ] ||
    fail "expected 4 new task files: $(ls "$run/tasks")"
# summary.csv: the old rows byte-identical, plus one row per new (model, attack).
grep -vxF -f "$run/summary.csv" "$WORK/summary.before" >"$WORK/lost" &&
    fail "summary rows changed or lost: $(cat "$WORK/lost")"
[ "$(wc -l <"$run/summary.csv")" -eq $(($(wc -l <"$WORK/summary.before") + 3)) ] ||
    fail "summary.csv has $(wc -l <"$run/summary.csv") lines, expected 3 more than $(wc -l <"$WORK/summary.before")"
# (the attack column is the kind; the params tell the two FGSM configurations apart)
for row in "T20/teacher,20,fgsm,eps=0.3 space=softmax " "baseline,1,fgsm,eps=0.2 space=logits " \
    "T20/student,20,fgsm,eps=0.2 space=logits "; do
    grep -q "^$row" "$run/summary.csv" || fail "no summary row '$row...': $(cat "$run/summary.csv")"
done
cmp -s "$run/job.ini" "$WORK/ext.job" || fail "job.ini is not the extending job"
grep -qx "attack.logits.kind = fgsm" "$run/run.txt" || fail "run.txt lacks the new attack"

# ---- 3: a changed epoch count is refused with one line; nothing in the folder changes ----
snapshot >"$WORK/snap.before"
base_job "$WORK/changed.job" 2
st=0
run_sweep 1 "$WORK/changed.job" "$WORK/3.log" || st=$?
[ $st -ne 0 ] || fail "a job with another epoch count was accepted"
msg="distill_sweep: $run/run.txt: the run was made with train.baseline_epochs = 1, this job has 2: use a new run name (extending a run may only add attack configurations or models to one), or pass --new-run to start $run-2"
[ "$(grep -c '^distill_sweep:' "$WORK/3.log")" -eq 1 ] && grep -qxF "$msg" "$WORK/3.log" ||
    fail "the refusal is not the one line expected: $(cat "$WORK/3.log")"
snapshot | cmp -s - "$WORK/snap.before" ||
    fail "the refused job changed the folder: $(snapshot | diff "$WORK/snap.before" - | head)"
"$BIN" --dry-run "$WORK/changed.job" >"$WORK/dry3.log" 2>&1
grep -qF "$run exists but a sweep of this job would refuse it (the run was made with train.baseline_epochs = 1, this job has 2)" "$WORK/dry3.log" ||
    fail "--dry-run of the changed job: $(tail -2 "$WORK/dry3.log")"

pass "$((SECONDS - start)) s; 8 tasks, then 4 new ones and the reducer"

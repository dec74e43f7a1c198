#!/usr/bin/env bash
# The reducer end to end: a tiny sweep on synthetic data (warm start, baseline, T in {1, 100},
# the papers' FGSM and JSMA, a transfer attack), then checks the values of every output against
# the task files, recomputed here from h5dump's output: CSV header and row order, n / successes /
# rates per row, records concatenated in sample order, models and soft labels bit-identical,
# the same CSV when reduced again, and a missing or changed task file refused without touching the
# previous outputs. About 20 s on 2 cores.
TEST=it_reduce
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

cat >"$WORK/red.job" <<EOF
; it_reduce.sh: synthetic data, the papers' FGSM and JSMA plus a transfer attack
[run]
name = red
results = $WORK/results
seed = 3
threads = 1
[data]
dir = $WORK/data
[train]
epochs = 1
warm_start = 1
batch = 32
[distill]
temperatures = 1 100
[attack fgsm]
kind = fgsm
models = baseline students
samples = 48
shard = 16
[attack jsma]
kind = jsma
models = baseline students
samples = 1
[attack transfer]
kind = transfer
source = baseline
craft = fgsm
models = students
samples = 16
EOF
run="$WORK/results/red"
run_sweep 1 "$WORK/red.job" "$WORK/sweep.log" || fail "the sweep failed: $(tail -5 "$WORK/sweep.log")"
grep -q 'done   reduce' "$WORK/sweep.log" || fail "the sweep did not reduce: $(tail -3 "$WORK/sweep.log")"
outputs="weights.h5 soft_labels.h5 adversarial.h5 summary.h5 summary.csv summary-seeds.csv summary.md figure1.dat figure1.gp"
for f in $outputs; do [ -s "$run/$f" ] || fail "$f missing or empty"; done
ls -a "$run" | grep -q '^\.reduce-' && fail "staged .reduce-* files left behind: $(ls -a "$run")"
csv="$run/summary.csv"

# ---- The CSV: exact header, rows in plan order ----
[ "$(head -1 "$csv")" = "model,temperature,attack,params,n,successes,success_rate,clean_accuracy,zero_grad_share,seed,success_lo,success_hi,config" ] ||
    fail "summary.csv header: $(head -1 "$csv")"
expected="baseline,1,fgsm baseline,1,jsma T1/student,1,fgsm T1/student,1,jsma T1/student,1,transfer \
T100/student,100,fgsm T100/student,100,jsma T100/student,100,transfer"
got=$(tail -n +2 "$csv" | cut -d, -f1-3 | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$expected" ] || fail "rows (model,temperature,attack) in the wrong order: '$got', expected '$expected'"
grep -q '^baseline,1,fgsm,eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32,48,' "$csv" || fail "params/n of the FGSM row: $(sed -n 2p "$csv")"
grep -q '^T100/student,100,transfer,source=baseline craft=fgsm eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32,16,' "$csv" ||
    fail "params/n of the transfer row: $(tail -1 "$csv")"

# records FILE DATASET: one line per record "index label target clean_pred adv_pred success
# zero_grad" from h5dump's text (11 values per compound element, in field order).
records() {
    h5dump -d "$2" "$1" | awk '
        /DATA \{/ { on = 1; next }
        on && /^ *-?[0-9][0-9.e+-]*,?$/ { gsub(/[ ,]/, ""); v[k++] = $0
            if (k == 11) { print v[0], v[1], v[2], v[3], v[4], v[5], v[6]; k = 0 } }'
}
# stats: "n successes success_rate clean_accuracy zero_grad_share" of records on stdin, the
# rates printed like the reducer (%.17g of the same double divisions).
stats() {
    awk '{ n++; s += $6; z += $7; c += ($4 == $2) }
         END { if (!n) { print "0 0 0 0 0"; exit }
               printf "%d %d %.17g %.17g %.17g\n", n, s, s / n, c / n, z / n }'
}

# One seed: summary-seeds.csv has the same rows, n_seeds 1, mean = min = max = the row's rate.
paste -d, <(tail -n +2 "$csv" | cut -d, -f1-4,7) <(tail -n +2 "$run/summary-seeds.csv" | cut -d, -f1-7,9,10) |
    awk -F, '$1 != $6 || $2 != $7 || $3 != $8 || $4 != $9 || $10 != 1 || $11 != 3 || $5 != $12 || $5 != $13 || $5 != $14 { bad = 1; print }
             END { exit bad }' || fail "summary-seeds.csv of one seed is not summary.csv's rows with n_seeds 1"
[ "$(wc -l <"$run/summary-seeds.csv")" -eq "$(wc -l <"$csv")" ] || fail "summary-seeds.csv has not one row per summary.csv row"

# ---- Every row against adversarial.h5 and against the shards themselves ----
tail -n +2 "$csv" | while IFS=, read -r model temp attack params n succ rate clean zero seed lo hi; do
    [ "$seed" = 3 ] || fail "$model $attack: seed column '$seed', the job's seed is 3"
    awk -v l="$lo" -v r="$rate" -v h="$hi" 'BEGIN { exit !(0 <= l && l <= r && r <= h && h <= 1) }' ||
        fail "$model $attack: Wilson interval [$lo, $hi] does not hold the rate $rate in [0, 1]"
    group="/$model/$attack" # the configurations of this job are named like their kind
    records "$run/adversarial.h5" "$group/records" >"$WORK/merged.txt"
    read -r rn rs rr rc rz <<<"$(stats <"$WORK/merged.txt")"
    [ "$rn $rs $rr $rc $rz" = "$n $succ $rate $clean $zero" ] ||
        fail "$model $attack: summary.csv says '$n $succ $rate $clean $zero', adversarial.h5 records give '$rn $rs $rr $rc $rz'"
    # The shards in sample order (zero-padded first sample in the name), concatenated.
    : >"$WORK/shards.txt"
    for shard in $(ls "$run/tasks/atk-${model//\//-}-$attack-"*.h5 | sort); do
        records "$shard" "/$attack/records" >>"$WORK/shards.txt"
    done
    [ -s "$WORK/shards.txt" ] || fail "no shards for $model $attack"
    cmp -s "$WORK/merged.txt" "$WORK/shards.txt" ||
        fail "$group/records is not the shards' records in sample order"
    sort -s -n -k1,1 "$WORK/merged.txt" | cmp -s - "$WORK/merged.txt" || fail "$group/records not in sample order"
    h5dump -a "$group/params" "$run/adversarial.h5" | grep -qF "\"$params\"" ||
        fail "$group has no params attribute '$params'"
done || exit 1
h5dump -a /baseline/fgsm/eps "$run/adversarial.h5" | grep -q '0.3' || fail "/baseline/fgsm has no eps attribute"
[ "$(h5dump -d summary -A 0 "$run/summary.h5" | grep -c '"T100/student"')" -eq 3 ] ||
    fail "summary.h5 does not have the 3 T100/student rows"

# ---- Models and soft labels bit-identical to the task files ----
bin() { h5dump -d "$2" -b LE -o "$3" "$1" >/dev/null || fail "h5dump $1 $2 failed"; }
# (test_reduce.c compares every model bit by bit; h5dump's text of two is enough here)
for m in warmstart T100/student; do
    # %.9g prints every float32 exactly: equal text means equal bits, shapes and attributes.
    task="$run/tasks/${m//\//-}.h5"
    h5dump -m %.9g -g "/$m" "$task" | tail -n +2 >"$WORK/a.txt"
    h5dump -m %.9g -g "/$m" "$run/weights.h5" | tail -n +2 >"$WORK/b.txt"
    [ "$(grep -c 'DATASET "weight"' "$WORK/a.txt")" -eq 7 ] && grep -q 'ATTRIBUTE "test_accuracy"' "$WORK/a.txt" ||
        fail "h5dump of /$m in $task lacks its layers or attributes"
    cmp -s "$WORK/a.txt" "$WORK/b.txt" || fail "weights.h5 /$m differs from $task: $(diff "$WORK/a.txt" "$WORK/b.txt" | head -5)"
done
bin "$run/tasks/T100-student.h5" /T100/student/fc3/weight "$WORK/a.bin"
bin "$run/weights.h5" /T100/student/fc3/weight "$WORK/b.bin"
[ "$(stat -c %s "$WORK/a.bin")" -eq 8000 ] && cmp -s "$WORK/a.bin" "$WORK/b.bin" || fail "weights.h5 fc3 weights not bit-identical"
train_n=$(awk '$1 == "train_n" { print $2 }' "$run/run.txt")
for t in 1 100; do
    bin "$run/tasks/T$t-soft.h5" /soft_labels "$WORK/a.bin"
    bin "$run/soft_labels.h5" "/T$t" "$WORK/b.bin"
    [ "$(stat -c %s "$WORK/a.bin")" -eq $((train_n * 10 * 4)) ] && cmp -s "$WORK/a.bin" "$WORK/b.bin" ||
        fail "soft_labels.h5 /T$t differs from tasks/T$t-soft.h5"
done

# ---- summary.md beside the papers ----
md="$run/summary.md"
for s in '| baseline test accuracy | 99.51 |' '| distilled (T=100 student) test accuracy | 99.05 |' \
    '| FGSM eps=0.3 success on the baseline | 88.03 |' '| FGSM eps=0.3 success at T=100 | below 1.5 |' \
    '| JSMA success on the baseline | ~96-97 (reported) |' '| JSMA success at T=100 | 0.45 |' \
    '## Success-rate definitions'; do
    grep -qF -- "$s" "$md" || fail "summary.md lacks '$s'"
done
# The FGSM baseline success beside 88.03 is the CSV's rate in percent with 2 decimals.
rate=$(grep '^baseline,1,fgsm,' "$csv" | cut -d, -f7)
grep -qF "| FGSM eps=0.3 success on the baseline | 88.03 | $(awk -v r="$rate" 'BEGIN { printf "%.2f", 100 * r }') |" "$md" ||
    fail "summary.md's FGSM baseline rate is not summary.csv's ($rate)"

# ---- Figure ----
if command -v gnuplot >/dev/null; then
    [ "$(head -c 4 "$run/figure1.png" | tail -c 3)" = PNG ] || fail "figure1.png is not a PNG"
    grep -q '<svg' "$run/figure1.svg" || fail "figure1.svg is not SVG"
fi
grep -q '^# index 2: \[attack transfer\]' "$run/figure1.dat" || fail "figure1.dat lacks the transfer curve"
grep -q "^100 " "$run/figure1.dat" || fail "figure1.dat lacks the T=100 points"

# ---- Reduced again: byte-identical tables ----
cp "$csv" "$WORK/csv.1" && cp "$md" "$WORK/md.1"
"$BIN" --reduce "$run" >"$WORK/r2.log" 2>&1 || fail "--reduce failed: $(cat "$WORK/r2.log")"
cmp -s "$csv" "$WORK/csv.1" || fail "summary.csv differs when reduced again: $(diff "$WORK/csv.1" "$csv")"
cmp -s "$md" "$WORK/md.1" || fail "summary.md differs when reduced again"

# ---- gnuplot missing: a warning, the tables still written ----
rm "$csv"
DS_GNUPLOT=/nonexistent/gnuplot "$BIN" --reduce "$run" >"$WORK/r3.log" 2>&1 || fail "--reduce without gnuplot failed: $(cat "$WORK/r3.log")"
grep -q 'warning: /nonexistent/gnuplot not found' "$WORK/r3.log" || fail "no warning without gnuplot: $(cat "$WORK/r3.log")"
cmp -s "$csv" "$WORK/csv.1" || fail "summary.csv not rewritten (or different) without gnuplot"
[ -s "$run/figure1.gp" ] && [ -s "$run/figure1.dat" ] || fail "figure1.gp/.dat missing without gnuplot"

# ---- A missing or changed task file: a clear error, previous outputs untouched ----
snapshot() { (cd "$run" && md5sum $outputs figure1.png figure1.svg 2>/dev/null); }
snapshot >"$WORK/before.md5"
shard="$run/tasks/atk-T100-student-fgsm-000016.h5"
mv "$shard" "$WORK/shard.h5"
"$BIN" --reduce "$run" >"$WORK/r4.log" 2>&1 && fail "--reduce succeeded with a missing task file"
grep -q '1 of 22 tasks are not done: attack/T100/student/fgsm/16-32 (tasks/atk-T100-student-fgsm-000016.h5 is missing)' "$WORK/r4.log" ||
    fail "unclear message for a missing task file: $(cat "$WORK/r4.log")"
mv "$WORK/shard.h5" "$shard"
cp "$run/tasks/T1-soft.h5" "$WORK/soft.h5"
printf 'x' >>"$run/tasks/T1-soft.h5"
"$BIN" --reduce "$run" >"$WORK/r5.log" 2>&1 && fail "--reduce succeeded with a changed task file"
grep -q 'T1/soft (tasks/T1-soft.h5 has the wrong size (truncated or rewritten))' "$WORK/r5.log" ||
    fail "unclear message for a changed task file: $(cat "$WORK/r5.log")"
cp "$WORK/soft.h5" "$run/tasks/T1-soft.h5"
snapshot | cmp -s - "$WORK/before.md5" || fail "a failed reduction changed the outputs"
ls -a "$run" | grep -q '^\.reduce-' && fail "a failed reduction left staged files: $(ls -a "$run")"
"$BIN" --reduce "$run" >"$WORK/r6.log" 2>&1 || fail "--reduce after restoring the files failed: $(cat "$WORK/r6.log")"
cmp -s "$csv" "$WORK/csv.1" || fail "summary.csv differs after restoring the files"

pass "$((SECONDS - start)) s, $(($(wc -l <"$csv") - 1)) rows checked"

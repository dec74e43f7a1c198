#!/usr/bin/env bash
# Replicates ([run] seeds) on synthetic data: a sweep with seeds = 3 7 computes, replicate by
# replicate, exactly what two one-seed sweeps with seed = 3 and seed = 7 compute (every dataset
# of every task file, number for number, and the summary rows), resumes with nothing to redo,
# and [train] init = glorot reaches the sweep's and `distill_sweep train`'s fresh models.
TEST=it_seeds
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# job FILE NAME SEED_LINE [TRAIN_LINES]: warm start, T in {1, 20}, FGSM on every default model,
# JSMA on one named model, a transfer from a teacher (source and models resolve per replicate).
job() {
    cat >"$1" <<EOF
[run]
name = $2
results = $WORK/results
$3
[data]
dir = $WORK/data
[train]
epochs = 1
warm_start = 1
batch = 32
${4:-}
[distill]
temperatures = 1 20
[attack fgsm]
kind = fgsm
samples = 64
shard = 32
[attack jsma]
kind = jsma
gamma = 0.04
first = 3
samples = 1
models = T20/student
[attack transfer]
kind = transfer
craft = fgsm
source = T1/teacher
samples = 32
EOF
}
job "$WORK/two.job" two "seeds = 3 7"
job "$WORK/s3.job" s3 "seed = 3"
job "$WORK/s7.job" s7 "seed = 7"

"$BIN" --dry-run "$WORK/two.job" >"$WORK/dry.txt" 2>&1 || fail "--dry-run failed: $(cat "$WORK/dry.txt")"
"$BIN" --dry-run "$WORK/s3.job" >"$WORK/dry3.txt" 2>&1 || fail "--dry-run failed: $(cat "$WORK/dry3.txt")"
n1=$(grep -c '^ *[0-9][0-9]*  ' "$WORK/dry3.txt")
n2=$(grep -c '^ *[0-9][0-9]*  ' "$WORK/dry.txt")
[ "$n2" -eq $((2 * n1 - 1)) ] || fail "--dry-run: $n2 tasks with two seeds, $n1 with one"
for s in 3 7; do
    grep -q "^  seed $s (s$s/): $((n1 - 1)) tasks (6 trainings, 2 soft labels, $((n1 - 9)) attack shards)" \
        "$WORK/dry.txt" || fail "--dry-run: no line for seed $s: $(head -5 "$WORK/dry.txt")"
done
grep -q "^  total: 2 replicates, $n2 tasks" "$WORK/dry.txt" || fail "--dry-run: no total line"
grep -q "attack/s7/T20/student/transfer/0-32 " "$WORK/dry.txt" || fail "--dry-run lacks s7's transfer"
grep -q "replicates" "$WORK/dry3.txt" && fail "--dry-run of one seed prints replicates"

for j in two s3 s7; do
    run_sweep 2 "$WORK/$j.job" "$WORK/$j.log" || fail "$j failed: $(tail -20 "$WORK/$j.log")"
done
two="$WORK/results/two"
[ "$(wc -l <"$two/tasks/done.log")" -eq $((n2 - 1)) ] || fail "two: done.log has $(wc -l <"$two/tasks/done.log") lines"

# dataset FILE PATH...: the datasets' types, shapes and every number (floats in full), in the
# order given, without their names.
dataset() {
    local f=$1 args=() p
    shift
    for p in "$@"; do args+=(-d "$p"); done
    h5dump -A 0 -m '%.17g' "${args[@]}" "$f" | grep -v '^HDF5 "\|^DATASET "'
}

# Replicate s<k> of the two-seed run against the one-seed run with seed k: the same task files
# (tasks/X.h5 there is tasks/s<k>-X.h5 or tasks/atk-s<k>-X.h5 here), the same datasets (a
# model's group /baseline there is /s<k>/baseline here), the same numbers.
compared=0
for k in 3 7; do
    one="$WORK/results/s$k"
    nf=0
    for f in $(cd "$one/tasks" && ls *.h5); do
        case $f in atk-*) g="atk-s$k-${f#atk-}" ;; *) g="s$k-$f" ;; esac
        [ -s "$two/tasks/$g" ] || fail "s$k: no tasks/$g (for tasks/$f)"
        paths=$(h5ls -r "$one/tasks/$f" | awk '$2 == "Dataset" {print $1}')
        paths2=$(h5ls -r "$two/tasks/$g" | awk '$2 == "Dataset" {print $1}')
        [ -n "$paths" ] || fail "s$k: no datasets in $f"
        # The same datasets, under /s<k> where the one-seed file has a model group.
        [ "$(echo "$paths2" | sed "s|^/s$k/|/|")" = "$paths" ] ||
            fail "s$k: $g holds $(echo $paths2), $f holds $(echo $paths)"
        dataset "$one/tasks/$f" $paths >"$WORK/a.txt" || fail "s$k: h5dump $f failed"
        dataset "$two/tasks/$g" $paths2 >"$WORK/b.txt" || fail "s$k: h5dump $g failed"
        np=$(echo "$paths" | wc -l)
        [ "$(grep -c '^ *DATA {' "$WORK/a.txt")" -eq "$np" ] || fail "s$k: $f: not $np datasets dumped"
        cmp -s "$WORK/a.txt" "$WORK/b.txt" ||
            fail "s$k: the datasets of $g differ from those of the one-seed sweep's $f"
        compared=$((compared + np))
        nf=$((nf + 1))
    done
    [ "$nf" -eq $((n1 - 1)) ] || fail "s$k: $nf task files in the one-seed run, expected $((n1 - 1))"
    # Provenance: the replicate's seed.
    h5dump -a /seed "$two/tasks/s$k-baseline.h5" | grep -q "(0): $k\$" || fail "s$k: provenance seed is not $k"
    # Merged files: models under /s<k>/, soft labels /s<k>/T20, the same numbers.
    dataset "$one/weights.h5" /T20/student/fc3/weight /warmstart/conv1/weight >"$WORK/a.txt" &&
        dataset "$two/weights.h5" "/s$k/T20/student/fc3/weight" "/s$k/warmstart/conv1/weight" >"$WORK/b.txt" &&
        [ "$(grep -c '^ *DATA {' "$WORK/b.txt")" -eq 2 ] && cmp -s "$WORK/a.txt" "$WORK/b.txt" ||
        fail "s$k: weights.h5 /s$k/T20/student or /s$k/warmstart differs"
    dataset "$one/soft_labels.h5" /T20 >"$WORK/a.txt" && dataset "$two/soft_labels.h5" "/s$k/T20" >"$WORK/b.txt" &&
        grep -q '^ *DATA {' "$WORK/b.txt" && cmp -s "$WORK/a.txt" "$WORK/b.txt" ||
        fail "s$k: soft_labels.h5 /s$k/T20 differs"
    # summary.csv: the replicate's rows, model names without the prefix, equal the one-seed rows.
    grep "^s$k/" "$two/summary.csv" | sed "s|^s$k/||" >"$WORK/rows$k.csv"
    tail -n +2 "$one/summary.csv" | grep -v '^$' >"$WORK/one$k.csv"
    [ -s "$WORK/one$k.csv" ] || fail "s$k: no rows in the one-seed summary.csv"
    cmp -s "$WORK/rows$k.csv" "$WORK/one$k.csv" ||
        fail "s$k: summary.csv rows differ: $(diff "$WORK/rows$k.csv" "$WORK/one$k.csv" | head -5)"
done
head -1 "$two/summary.csv" | cmp -s - <(head -1 "$WORK/results/s3/summary.csv") || fail "summary.csv headers differ"

# A rerun finds everything done.
run_sweep 2 "$WORK/two.job" "$WORK/two-again.log" || fail "rerun failed: $(tail -20 "$WORK/two-again.log")"
grep -q '\] start ' "$WORK/two-again.log" && fail "the rerun redid tasks: $(grep '\] start ' "$WORK/two-again.log" | head -3)"

# [train] init = glorot: with a vanishing learning rate the trained weights are the initial ones:
# conv1 (fan_in 9, fan_out 288) inside +-sqrt(6/297) = 0.1421 (PyTorch's bound is 1/3), fc3's
# biases 0 (within the vanishing steps).
# maxabs FILE PATH: the largest |value| of a float dataset.
maxabs() {
    h5dump -A 0 -y -w 0 -m '%.9g' -d "$2" "$1" | sed -n '/DATA {/,/}/{/DATA {/d;/}/d;p}' | tr ',' '\n' |
        awk 'NF {v = $1 + 0; if (v < 0) v = -v; if (v > m) m = v} END {printf "%.9g\n", m}'
}
job "$WORK/g.job" g "seed = 5" "init = glorot
lr = 1e-30"
sed -i '/^\[attack/,$d' "$WORK/g.job"
run_sweep 1 "$WORK/g.job" "$WORK/g.log" || fail "glorot sweep failed: $(tail -20 "$WORK/g.log")"
for m in baseline warmstart; do
    w=$(maxabs "$WORK/results/g/tasks/$m.h5" "/$m/conv1/weight")
    b=$(maxabs "$WORK/results/g/tasks/$m.h5" "/$m/fc3/bias")
    awk -v w="$w" -v b="$b" 'BEGIN {exit !(w <= 0.1421339 && w > 0.13 && b < 1e-20)}' ||
        fail "glorot sweep: $m conv1 max |w| $w (expected in (0.13, 0.1421]), fc3 max |b| $b"
done
OMP_NUM_THREADS=1 "$BIN" train --data "$WORK/data" --out "$WORK/g.h5" --epochs 1 --batch 32 --lr 1e-30 \
    --init-kind glorot --threads 1 >"$WORK/gtrain.log" 2>&1 || fail "train --init-kind glorot: $(tail -5 "$WORK/gtrain.log")"
grep -q '^initialisation glorot$' "$WORK/gtrain.log" || fail "train does not say its initialisation"
w=$(maxabs "$WORK/g.h5" /baseline/conv1/weight)
awk -v w="$w" 'BEGIN {exit !(w <= 0.1421339 && w > 0.13)}' || fail "train --init-kind glorot: conv1 max |w| $w"
"$BIN" train --data "$WORK/data" --out "$WORK/p.h5" --epochs 1 --lr 1e-30 --init-kind xavier >"$WORK/bad.log" 2>&1 &&
    fail "--init-kind xavier accepted"
grep -q "init-kind: unknown init 'xavier'" "$WORK/bad.log" || fail "--init-kind xavier: $(cat "$WORK/bad.log")"
pass "$((SECONDS - start)) s, $compared datasets identical per replicate, summary rows equal"

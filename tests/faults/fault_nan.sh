#!/usr/bin/env bash
# Fault (a): NaN/Inf in training. 'distill_sweep train --lr 1e6' and a sweep whose job trains
# with lr = 1e6 both end with a clear error naming the model and the epoch, exit non-zero, and
# leave no file holding a non-finite value and no summary table.
TEST=fault_nan
source "$(dirname "$0")/../tools/sweep_env.sh"
start=$SECONDS

# ---- the train command ----
st=0
"$BIN" train --data "$WORK/data" --epochs 2 --batch 32 --lr 1e6 --threads 1 \
    --out "$WORK/nan.h5" --checkpoint "$WORK/nan.ckpt.h5" >"$WORK/train.log" 2>&1 || st=$?
[ $st -ne 0 ] || fail "train --lr 1e6 exited 0: $(tail -3 "$WORK/train.log")"
msg=$(grep '^distill_sweep: ' "$WORK/train.log")
[ "$(echo "$msg" | wc -l)" = 1 ] || fail "train: expected one error line, got: $msg"
echo "$msg" | grep -q "$WORK/nan.h5:baseline: training diverged: .* epoch 1" ||
    fail "train: the error does not name the model and the epoch: $msg"
[ ! -e "$WORK/nan.h5" ] || fail "train: wrote $WORK/nan.h5 after diverging"
ls "$WORK"/*.tmp >/dev/null 2>&1 && fail "train: left a .tmp file"

# ---- a sweep ----
write_job "$WORK/n.job" n
sed -i 's/^batch = 32$/batch = 32\nlr = 1e6/' "$WORK/n.job"
grep -q '^lr = 1e6' "$WORK/n.job" || fail "could not set lr in the job"
st=0
run_sweep 2 "$WORK/n.job" "$WORK/sweep.log" || st=$?
[ $st -ne 0 ] || fail "the sweep exited 0: $(tail -5 "$WORK/sweep.log")"
grep -Eq "(warmstart|baseline|T[0-9]+/(teacher|student)).*training diverged: .*epoch [0-9]+" "$WORK/sweep.log" ||
    fail "the sweep's error does not name the model and the epoch: $(tail -5 "$WORK/sweep.log")"
R="$WORK/results/n"
for f in summary.csv summary.md summary.h5 weights.h5 soft_labels.h5 adversarial.h5; do
    [ ! -e "$R/$f" ] || fail "the failed sweep wrote $f"
done
for f in "$R"/tasks/*.h5; do
    [ -e "$f" ] || continue
    h5dump "$f" | grep -Eiq '(^|[ ,(])-?(nan|inf)([ ,)]|$)' && fail "$f holds a non-finite value"
done
ls "$R"/tasks/*.tmp >/dev/null 2>&1 && fail "the sweep left a .tmp file"
pass "$((SECONDS - start)) s; train: $(echo "$msg" | cut -c1-90)...; sweep: $(grep -m1 -o 'training diverged[^(]*' "$WORK/sweep.log")"

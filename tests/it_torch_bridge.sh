#!/usr/bin/env bash
# The PyTorch bridge (scripts/ds_torch.py) both ways, on models trained by the smoke sweep
# (jobs/smoke.job's trainings of the baseline and at T=100; MNIST from $MNIST_DIR or data/mnist,
# else a synthetic MNIST-format set of 2,000 training and 1,000 test images, tests/tools/gen_idx.c):
#   a  the module's logits equal `distill_sweep eval --logits`'s on the first N test samples
#      within 1e-4, relative to the sample's largest logit when that exceeds 1 (the T=100
#      student's logits reach ~1000, where float32's spacing is 6e-5..1.2e-4), and both print
#      the same accuracy line;
#   b  FGSM eps 0.3 in PyTorch with our gradient (ds_torch.fgsm) succeeds within 0.5 points of
#      `distill_sweep attack --attack fgsm --eps 0.3`, over all N samples;
#   c  the T=100 student exported from PyTorch without our attributes (export, from a module and
#      from a torch.save'd state_dict) is an external model: eval gives the original's accuracy
#      at T=1 or --temperature; FGSM (softmax and logits_T), JSMA, C&W L2 and transfer print
#      exactly what they print on the original at the same temperature; a wrong shape and a
#      missing dataset are refused naming the dataset, by distill_sweep and by ds_torch alike.
# Needs python3-torch and python3-h5py for /usr/bin/python3 ($TORCH_PYTHON): otherwise one SKIP
# line (scripts/deps.sh --torch installs them). About a minute on 2 cores.
TEST=it_torch_bridge
PY=${TORCH_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import torch, h5py' >/dev/null 2>&1; then
    echo "SKIP: $TEST: $PY cannot import torch and h5py (install python3-torch python3-h5py: scripts/deps.sh --torch)"
    exit 0
fi
mnist=${MNIST_DIR:-}
source "$(dirname "$0")/tools/sweep_env.sh" # unsets MNIST_DIR
start=$SECONDS
N=1000
export PYTHONPATH=$ROOT/scripts

if [ -n "$mnist" ] || ls "$ROOT"/data/mnist/train-images-idx3-ubyte* >/dev/null 2>&1; then
    export MNIST_DIR=${mnist:-$ROOT/data/mnist}
    data_note="MNIST"
else
    mkdir -p "$WORK/mnist" && "$WORK/gen_idx" "$WORK/mnist" 2000 $N 7 || fail "cannot write the synthetic dataset"
    export MNIST_DIR=$WORK/mnist
    data_note="synthetic MNIST (no \$MNIST_DIR, no data/mnist)"
fi

# The smoke sweep's trainings for the baseline and T=100 (its [attack] sections and T=1 dropped:
# on the synthetic set, T=1's teacher diverges at lr 0.1), results in $WORK.
awk '/^\[/ { skip = ($0 ~ /^\[attack/) } !skip' "$ROOT/jobs/smoke.job" |
    sed -e "s|^\[run\]|[run]\nresults = $WORK/results|" -e 's/^temperatures = .*/temperatures = 100/' >"$WORK/smoke.job"
run_sweep 2 "$WORK/smoke.job" "$WORK/sweep.log" || fail "the smoke sweep failed: $(tail -5 "$WORK/sweep.log")"
W=$WORK/results/smoke/weights.h5
[ -s "$W" ] || fail "no $W"

# ds_torch ARGS...: scripts/ds_torch.py with the torch interpreter, 1 thread.
ds_torch() { OMP_NUM_THREADS=1 "$PY" "$ROOT/scripts/ds_torch.py" "$@" --threads 1; }
# rate_counts: "attempts successes" of the first "success X% of N attempts (S)" line on stdin.
rate_counts() { sed -n 's/.*success [0-9.]*% of \([0-9]*\) attempts (\([0-9]*\)).*/\1 \2/p' | head -n 1; }

# ---- a, b: our models in PyTorch ----
summary=""
for g in baseline T100/student; do
    tag=${g//\//-}
    "$BIN" eval --model "$W:$g" --count $N --threads 1 --logits "$WORK/$tag.c.csv" >"$WORK/$tag.c.out" 2>&1 ||
        fail "eval --logits $g: $(cat "$WORK/$tag.c.out")"
    ds_torch "$W:$g" --count $N --logits "$WORK/$tag.py.csv" --fgsm 0.3 >"$WORK/$tag.py.out" 2>&1 ||
        fail "ds_torch.py $g: $(cat "$WORK/$tag.py.out")"
    c_acc=$(head -n 1 "$WORK/$tag.c.out")
    py_acc=$(head -n 1 "$WORK/$tag.py.out")
    [ "$c_acc" = "$py_acc" ] || fail "$g: accuracy lines differ: distill_sweep '$c_acc', ds_torch '$py_acc'"
    [ "$(wc -l <"$WORK/$tag.c.csv")" = $N ] && [ "$(wc -l <"$WORK/$tag.py.csv")" = $N ] ||
        fail "$g: expected $N logit rows: $(wc -l "$WORK/$tag.c.csv" "$WORK/$tag.py.csv")"
    diff=$(paste -d, "$WORK/$tag.c.csv" "$WORK/$tag.py.csv" | awk -F, '
        $1 != $13 || $2 != $14 { print "row " NR ": index/label " $1 "," $2 " vs " $13 "," $14; exit }
        { s = 1; for (k = 3; k <= 12; k++) { a = $k < 0 ? -$k : $k; if (a > s) s = a }
          for (k = 3; k <= 12; k++) { d = $k - $(k + 12); d = d < 0 ? -d : d
              if (d > m) m = d; if (d / s > r) r = d / s } }
        END { printf "%.3g %.3g\n", m, r }')
    case $diff in row*) fail "$g: $diff" ;; esac
    read -r dmax drel <<<"$diff"
    awk -v r="$drel" 'BEGIN { exit !(r <= 1e-4) }' ||
        fail "$g: logits differ by up to $dmax (relative $drel > 1e-4)"
    "$BIN" attack --model "$W:$g" --attack fgsm --eps 0.3 --count $N --threads 1 >"$WORK/$tag.fgsm" 2>&1 ||
        fail "attack fgsm $g: $(cat "$WORK/$tag.fgsm")"
    read -r cn cs <<<"$(rate_counts <"$WORK/$tag.fgsm")"
    read -r pn ps <<<"$(grep '^fgsm' "$WORK/$tag.py.out" | rate_counts)"
    [ "$cn" = $N ] && [ "$pn" = $N ] || fail "$g: FGSM attempts $cn (C) and $pn (torch), expected $N"
    awk -v a="$cs" -v b="$ps" -v n=$N 'BEGIN { d = 100 * (a - b) / n; exit !(d <= 0.5 && d >= -0.5) }' ||
        fail "$g: FGSM eps 0.3 success: $cs/$N in C, $ps/$N in PyTorch (more than 0.5 points apart)"
    summary="$summary $g: logits max |dz| $dmax (rel $drel), FGSM $cs vs $ps of $N;"
done

# ---- c: a network from PyTorch in our tools ----
S=$W:T100/student
"$PY" - "$S" "$WORK" <<'EOF' || fail "export from PyTorch failed"
import sys, torch, ds_torch
spec, work = sys.argv[1], sys.argv[2]
m = ds_torch.load(spec)
assert (m.temperature, m.role) == (100.0, "student"), (m.temperature, m.role)
assert ds_torch.export(m, f"{work}/ext.h5:net") == f"{work}/ext.h5:net"
torch.save(m.state_dict(), f"{work}/state.pt")
e = ds_torch.load(f"{work}/ext.h5", temperature=100)
assert (e.temperature, e.role, e.epochs, e.spec) == (100.0, "external", 0, f"{work}/ext.h5:net"), vars(e)
assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), e.state_dict().values()))
EOF
"$PY" "$ROOT/scripts/ds_torch.py" export "$WORK/state.pt" "$WORK/ext2.h5:net" >/dev/null 2>&1 || fail "ds_torch.py export STATE.pt failed"
# The exported file holds the weights only, bit for bit those of the original.
h5dump -A "$WORK/ext.h5" | grep -q ATTRIBUTE && fail "ext.h5 carries attributes: $(h5dump -A "$WORK/ext.h5" | grep -m3 ATTRIBUTE)"
for l in conv1 conv4 fc1 fc3; do
    for p in weight bias; do
        a=$(h5dump -d "/T100/student/$l/$p" "$W" | sed -n '/DATA {/,$p' | md5sum)
        for f in ext ext2; do
            b=$(h5dump -d "/net/$l/$p" "$WORK/$f.h5" | sed -n '/DATA {/,$p' | md5sum)
            [ "$a" = "$b" ] || fail "$f.h5 $l/$p differs from the original's"
        done
    done
done

orig_acc=$(sed -n 's/.*: test accuracy \(.*\)/\1/p' "$WORK/T100-student.c.out")
"$BIN" eval --model "$WORK/ext.h5" --count $N --threads 1 >"$WORK/ext.eval" 2>&1 || fail "eval of the external model: $(cat "$WORK/ext.eval")"
[ "$(cat "$WORK/ext.eval")" = "$WORK/ext.h5:net: external at T=1, 0 epochs: test accuracy $orig_acc" ] ||
    fail "eval of the external model: '$(cat "$WORK/ext.eval")', expected its accuracy $orig_acc at T=1"
"$BIN" eval --model "$WORK/ext2.h5:net" --count $N --threads 1 --temperature 100 >"$WORK/ext.eval" 2>&1
[ "$(cat "$WORK/ext.eval")" = "$WORK/ext2.h5:net: external at T=100, 0 epochs: test accuracy $orig_acc" ] ||
    fail "eval --temperature 100 of the external model: '$(cat "$WORK/ext.eval")'"
ds_torch "$WORK/ext.h5" --count $N --temperature 100 >"$WORK/ext.py" 2>&1
[ "$(cat "$WORK/ext.py")" = "$WORK/ext.h5:net: external at T=100, 0 epochs: test accuracy $orig_acc" ] ||
    fail "ds_torch.py on the external model: '$(cat "$WORK/ext.py")'"

# Every attack on the original and on the external copy at T=100: the same output.
"$BIN" attack --model "$W:baseline" --attack fgsm --count 50 --threads 1 --out "$WORK/src.h5" >/dev/null 2>&1 ||
    fail "crafting the transfer source failed"
attacks=("fgsm --eps 0.3" "fgsm --eps 0.3 --space logits_T" "jsma --count 2" "jsma --count 1 --space logits_T"
    "cw-l2 --count 2 --steps 2 --iterations 20" "transfer --source $WORK/src.h5")
for a in "${attacks[@]}"; do
    # shellcheck disable=SC2086
    "$BIN" attack --model "$S" --attack $a --temperature 100 --threads 1 >"$WORK/orig.atk" 2>&1 ||
        fail "attack $a on the original: $(tail -2 "$WORK/orig.atk")"
    # shellcheck disable=SC2086
    "$BIN" attack --model "$WORK/ext.h5:net" --attack $a --temperature 100 --threads 1 >"$WORK/ext.atk" 2>&1 ||
        fail "attack $a on the external model: $(tail -2 "$WORK/ext.atk")"
    grep -q "^model $WORK/ext.h5:net: trained at T=100, role external$" "$WORK/ext.atk" ||
        fail "attack $a: model line '$(head -n 1 "$WORK/ext.atk")'"
    diff <(tail -n +2 "$WORK/orig.atk") <(tail -n +2 "$WORK/ext.atk") >/dev/null ||
        fail "attack $a: the external copy gives other results: $(diff <(tail -n +2 "$WORK/orig.atk") <(tail -n +2 "$WORK/ext.atk") | head -4)"
    grep -q 'success [0-9.]*% of [1-9][0-9]* attempts' "$WORK/ext.atk" || fail "attack $a: no success line: $(cat "$WORK/ext.atk")"
done

# A wrong shape and a missing dataset in a group without attributes: refused by name.
"$PY" - "$WORK" <<'EOF' || fail "cannot write the damaged external files"
import sys, h5py, numpy as np
w = sys.argv[1]
for name, edit in (("shape", lambda f: (f["net/fc1"].__delitem__("weight"),
                                        f["net/fc1"].create_dataset("weight", data=np.zeros((200, 1000), np.float32)))),
                   ("missing", lambda f: f["net/fc3"].__delitem__("bias"))):
    with h5py.File(f"{w}/ext.h5", "r") as src, h5py.File(f"{w}/{name}.h5", "w") as f:
        src.copy("net", f)
        edit(f)
EOF
for c in "shape:net/fc1/weight: expected [200,1024], found [200,1000]" "missing:net/fc3/bias: missing dataset"; do
    f=$WORK/${c%%:*}.h5 want="$WORK/${c%%:*}.h5: ${c#*:}"
    got=$("$BIN" eval --model "$f" 2>&1) && fail "eval accepted $f"
    [ "$got" = "distill_sweep: $want" ] || fail "eval of $f: '$got', expected 'distill_sweep: $want'"
    got=$("$BIN" attack --model "$f" --attack fgsm --count 1 2>&1) && fail "attack accepted $f"
    [ "$got" = "distill_sweep: $want" ] || fail "attack on $f: '$got'"
    got=$(ds_torch "$f" 2>&1) && fail "ds_torch.py accepted $f"
    [ "$got" = "ds_torch.py: $want" ] || fail "ds_torch.py on $f: '$got', expected 'ds_torch.py: $want'"
done

pass "$data_note, N=$N:$summary external model: eval and 6 attacks identical, $((SECONDS - start)) s"

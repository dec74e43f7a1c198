#!/usr/bin/env bash
# Does flushing denormals (FTZ/DAZ) change training? Side by side in one run, on a quiet machine:
# a T=1 warm start (1 epoch on the first 20,000 MNIST training samples), then from it one T=100
# teacher epoch with the flush (the default) and with DS_NO_FTZ=1, twice each in the order
# flush, keep, keep, flush; prints the load, each time, and how many weights differ.
#   MNIST_DIR=... bash tests/bench/ftz_train.sh        (needs bin/distill_sweep, python3-h5py)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=bin/distill_sweep
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" train --train-count 20000 --epochs 1 --threads 1 --out "$WORK/ws.h5" | tail -n 1
for mode in flush keep keep flush; do
    out=$WORK/t100-$mode.h5
    rm -f "$out"
    nf=0; [[ $mode == keep ]] && nf=1
    start=$(date +%s.%N)
    DS_NO_FTZ=$nf "$BIN" train --train-count 20000 --epochs 1 --temperature 100 --init "$WORK/ws.h5" \
        --threads 1 --out "$out" | tail -n 1
    echo "bench ftz_train_$mode $(echo "$(date +%s.%N) - $start" | bc) s"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$WORK/t100-flush.h5" "$WORK/t100-keep.h5" <<'PY'
import sys, h5py
a, b = (h5py.File(p, "r")["teacher"] for p in sys.argv[1:])
n = d = 0
for layer in a:
    for k in ("weight", "bias"):
        x, y = a[layer][k][()], b[layer][k][()]
        n += x.size
        d += int((x != y).sum())
print(f"weights that differ with and without the flush: {d} of {n}")
PY

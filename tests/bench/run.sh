#!/usr/bin/env bash
# Runs the benchmarks; what 'make bench' does. Usage: tests/bench/run.sh BENCH_BIN_DIR
#
# Every line on stdout is "bench <name> <value> <unit>":
#   1. every executable BENCH_BIN_DIR/bench_* (the C benchmarks), OPENBLAS_NUM_THREADS=1;
#      bench_gang (the gang reductions) under scripts/mpirun.sh -np 2;
#   2. right after them, every tests/bench/torch_*.py with /usr/bin/python3 if it has torch
#      (scripts/deps.sh --bench installs it), so that the C and PyTorch figures are taken side by
#      side (these machines drift by ~10% over minutes);
#   3. "bench ratio_X <X / torch_X> x" for every X printed both by a C and a torch benchmark;
#   4. if MNIST is found ($MNIST_DIR or data/mnist) and bin/distill_sweep exists, the peak
#      resident memory of a one-epoch full-MNIST training process: train_peak_rss_mb (default
#      engine and chunk), _chunk8 (jobs/paper.job's chunk), _gemm (the GEMM engine);
#   5. "bench done".
# Environment: BENCH_SECONDS and BENCH_ONLY (passed on to the benchmarks; BENCH_ONLY=square,cw
# limits the attack benchmarks to those figures), TORCH_PYTHON (default /usr/bin/python3),
# BENCH_TRAIN_TIMEOUT (seconds for the training run of step 4, default 1800), DS_BIN (the program
# step 4 runs, default bin/distill_sweep).
# Exits 1 if a benchmark program failed (after running everything else), 2 on bad usage.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BENCH_BIN_DIR" >&2
    exit 2
fi
bin_dir=$1
if [[ -d $bin_dir ]]; then
    bin_dir=$(cd "$bin_dir" && pwd)
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root

torch_python=${TORCH_PYTHON:-/usr/bin/python3}
train_timeout=${BENCH_TRAIN_TIMEOUT:-1800}
ds_bin=${DS_BIN:-bin/distill_sweep}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ds_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log=$tmp/bench.log  # every bench line printed so far, for the ratios
: >"$log"
status=0

# run_bench NAME CMD...: runs CMD with one BLAS thread, passes its stdout through and records it.
run_bench() {
    local name=$1 rc
    shift
    echo "== $name" >&2
    set +e
    OPENBLAS_NUM_THREADS=1 "$@" | tee -a "$log"
    rc=${PIPESTATUS[0]}
    set -e
    if ((rc != 0)); then
        echo "bench note ${name}_failed 0 (exit status $rc)" | tee -a "$log"
        status=1
    fi
}

# 1. The C benchmarks.
shopt -s nullglob
c_benches=()
for prog in "$bin_dir"/bench_*; do
    [[ -f $prog && -x $prog ]] && c_benches+=("$prog")
done
if ((${#c_benches[@]} == 0)); then
    echo "bench note c_benchmarks_missing 0 (no executable bench_* in $1)"
fi
for prog in "${c_benches[@]}"; do
    case $(basename "$prog") in
        bench_gang) run_bench bench_gang bash scripts/mpirun.sh -np 2 "$prog" ;; # a gang of 2 ranks
        *) run_bench "$(basename "$prog")" "$prog" ;;
    esac
done

# 2. The PyTorch twins, right after.
if "$torch_python" -c 'import torch' >/dev/null 2>&1; then
    for py in tests/bench/torch_*.py; do
        run_bench "$(basename "$py" .py)" "$torch_python" "$py"
    done
else
    echo "bench note torch_skipped 0 (python3-torch not installed: scripts/deps.sh --bench)"
fi

# 3. Ratios C / torch for every name printed by both.
awk '
    $1 == "bench" && NF >= 3 && $3 ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ {
        if (!($2 in v)) order[++n] = $2
        v[$2] = $3
    }
    END {
        for (i = 1; i <= n; i++) {
            x = order[i]
            t = "torch_" x
            if (x ~ /^torch_/ || !(t in v)) continue
            if (v[t] + 0 == 0) printf "bench note ratio_%s_undefined 0 (%s is 0)\n", x, t
            else printf "bench ratio_%s %.2f x\n", x, v[x] / v[t]
        }
    }' "$log"

# 4. Peak resident memory of a full-MNIST training process.
mnist_dir=
for d in "${MNIST_DIR:-}" data/mnist; do
    if [[ -n $d && ( -f $d/train-images-idx3-ubyte.gz || -f $d/train-images-idx3-ubyte ) ]]; then
        mnist_dir=$d
        break
    fi
done
if [[ -z $mnist_dir ]]; then
    echo "bench note train_peak_rss_skipped 0 (no MNIST: set MNIST_DIR or run scripts/get_mnist.sh)"
elif [[ ! -x $ds_bin ]]; then
    echo "bench note train_peak_rss_skipped 0 ($ds_bin not built)"
elif [[ ! -x /usr/bin/time ]]; then
    echo "bench note train_peak_rss_skipped 0 (/usr/bin/time missing: scripts/deps.sh)"
else
    # At the default chunk (32) and at jobs/paper.job's 8 (more chunk-gradient buffers), with the
    # default engine, and the GEMM engine at 32 for comparison.
    for variant in "train_peak_rss_mb:32:onednn" "train_peak_rss_mb_chunk8:8:onednn" \
                   "train_peak_rss_mb_gemm:32:gemm"; do
        IFS=: read -r name chunk engine <<<"$variant"
        echo "== $name (distill_sweep train, 1 epoch, chunk $chunk, engine $engine, $mnist_dir)" >&2
        train_cmd=("$ds_bin" train --data "$mnist_dir" --epochs 1 --out "$tmp/m.h5" --threads 2
                   --chunk "$chunk" --engine "$engine")
        set +e
        OPENBLAS_NUM_THREADS=1 timeout "$train_timeout" \
            /usr/bin/time -o "$tmp/rss" -f %M "${train_cmd[@]}" >"$tmp/train.log" 2>&1
        rc=$?
        set -e
        kb=$(tail -n 1 "$tmp/rss" 2>/dev/null || true)
        if ((rc == 0)) && [[ $kb =~ ^[0-9]+$ ]]; then
            awk -v kb="$kb" -v name="$name" 'BEGIN { printf "bench %s %.1f MB\n", name, kb / 1024 }'
        else
            if ((rc == 124)); then why="timed out after ${train_timeout} s"; else why="exit status $rc"; fi
            echo "bench note ${name}_failed 0 (${train_cmd[*]}: $why)"
            echo "-- last lines of its output:" >&2
            tail -n 5 "$tmp/train.log" >&2 || true
        fi
    done
fi

echo "bench done"
exit "$status"
